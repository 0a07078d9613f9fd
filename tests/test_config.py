from pathlib import Path

import pytest

from jepa_rag import ConfigError, TrainConfig, load_train_config
from jepa_rag.config import apply_overrides


def test_overrides_nested_and_typed():
    d = apply_overrides({"optim": {"lr": 1.0}}, ["optim.lr=2.5e-4", "seed=3", "model.predictor=null"])
    assert d == {"optim": {"lr": 2.5e-4}, "seed": 3, "model": {"predictor": None}}
    cfg = load_train_config(None, ["optim.lr=2e-4"])  # YAML 1.1 reads 2e-4 as a string: coerced
    assert cfg.optim.lr == 2e-4
    with pytest.raises(ConfigError, match="optim.epochs must be an integer"):
        load_train_config(None, ["optim.epochs=two"])


def test_unknown_key_is_named(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("optim:\n  lrr: 1\n")
    with pytest.raises(ConfigError, match=r"unknown config key\(s\): optim.lrr"):
        load_train_config(str(p))


def test_bad_choice_and_consistency():
    with pytest.raises(ConfigError, match="loss.contrastive must be one of"):
        load_train_config(None, ["loss.contrastive=cosine"])
    with pytest.raises(ConfigError, match="needs a predictor head"):
        load_train_config(None, ["model.predictor=null", "model.query_route=predictor", "loss.lambda_predictive=1"])
    with pytest.raises(ConfigError, match="config file not found"):
        load_train_config("/nonexistent.yaml")


def test_every_shipped_config_loads():
    import pathlib

    root = pathlib.Path(__file__).resolve().parent.parent / "train" / "configs"
    files = sorted(root.rglob("*.yaml"))
    assert len(files) >= 7
    for f in files:
        assert isinstance(load_train_config(str(f)), TrainConfig)


def test_negatives_per_pair_checks():
    configs = Path(__file__).resolve().parents[1] / "train" / "configs"
    base = str(configs / "msmarco_infonce.yaml")
    load_train_config(base, ["data.negatives_per_pair=0"]).validate()  # InfoNCE: in-batch negatives alone
    with pytest.raises(ConfigError, match="negatives_per_pair must be ≥ 0"):
        load_train_config(base, ["data.negatives_per_pair=-1"]).validate()
    with pytest.raises(ConfigError, match="max_positives_per_query must be ≥ 1"):
        load_train_config(base, ["data.max_positives_per_query=0"]).validate()
    with pytest.raises(ConfigError, match="triplet' needs a hard negative"):
        load_train_config(str(configs / "seed" / "jepa_10k_e2.yaml"), ["data.negatives_per_pair=0"]).validate()
