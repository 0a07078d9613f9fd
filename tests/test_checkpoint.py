import json
from dataclasses import replace

import pytest
import torch

from jepa_rag import (
    Checkpoint,
    CheckpointError,
    HeadConfig,
    JEPAEncoder,
    JEPAHeads,
    ModelConfig,
    load_checkpoint,
    save_checkpoint,
)
from jepa_rag import checkpoint as ckpt_mod


def _make(fp, base_model="some/model", dim=None, predictor=True):
    d = dim or fp.dim
    cfg = ModelConfig(base_model=base_model, projection=HeadConfig(fp.dim, d),
                      predictor=HeadConfig(d, d) if predictor else None,
                      query_route="predictor" if predictor else "projection")
    return Checkpoint(cfg, fp, JEPAHeads(cfg).state_dict(), training={"seed": 3}, metrics={"dev": {"ndcg@10": 0.5}})


def test_round_trip(tmp_path, minilm_fingerprint):
    ck = _make(minilm_fingerprint)
    save_checkpoint(ck, tmp_path / "c")
    assert sorted(p.name for p in (tmp_path / "c").iterdir()) == ["adapter_config.json", "model.safetensors"]
    back = load_checkpoint(tmp_path / "c")
    assert back.config == ck.config and back.fingerprint == ck.fingerprint
    assert back.training == {"seed": 3} and back.metrics["dev"]["ndcg@10"] == 0.5
    for k, v in ck.state_dict.items():
        assert torch.equal(back.state_dict[k], v)


def test_refuses_missing(tmp_path):
    with pytest.raises(CheckpointError, match="not found"):
        load_checkpoint(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(CheckpointError, match="missing adapter_config.json"):
        load_checkpoint(tmp_path / "empty")


def test_refuses_corrupt_json(tmp_path, minilm_fingerprint):
    save_checkpoint(_make(minilm_fingerprint), tmp_path / "c")
    (tmp_path / "c" / "adapter_config.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="corrupt"):
        load_checkpoint(tmp_path / "c")


def test_refuses_truncated_weights(tmp_path, minilm_fingerprint):
    save_checkpoint(_make(minilm_fingerprint), tmp_path / "c")
    w = tmp_path / "c" / "model.safetensors"
    w.write_bytes(w.read_bytes()[:-100])
    with pytest.raises(CheckpointError, match="corrupt or truncated"):
        load_checkpoint(tmp_path / "c")


def test_refuses_unknown_format_version(tmp_path, minilm_fingerprint):
    save_checkpoint(_make(minilm_fingerprint), tmp_path / "c")
    p = tmp_path / "c" / "adapter_config.json"
    meta = json.loads(p.read_text())
    meta["format_version"] = 99
    p.write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match="unknown format_version 99"):
        load_checkpoint(tmp_path / "c")


def test_refuses_other_base_model(tmp_path, minilm_dir, minilm_fingerprint):
    other = replace(minilm_fingerprint, weights_sha256="0" * 64, model_id="someone/else")
    save_checkpoint(_make(other, base_model=str(minilm_dir)), tmp_path / "c")
    with pytest.raises(CheckpointError, match="heads only work on the model they were trained on"):
        JEPAEncoder.from_pretrained(tmp_path / "c", base_model=str(minilm_dir))


def test_refuses_dimension_mismatch(tmp_path, minilm_dir, minilm_fingerprint):
    ck = _make(minilm_fingerprint, base_model=str(minilm_dir))
    save_checkpoint(ck, tmp_path / "c")
    # config claims a 768-d base while the weights and base are 384-d
    p = tmp_path / "c" / "adapter_config.json"
    meta = json.loads(p.read_text())
    meta["model"]["projection"]["in_dim"] = 768
    p.write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match="config_sha256 does not match"):
        load_checkpoint(tmp_path / "c")
    del meta["config_sha256"]  # as a checkpoint written before the hash: the dimension check still refuses it
    p.write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match="768-d input but the base model gives 384-d"):
        load_checkpoint(tmp_path / "c")
    # weights of the wrong shape for the config
    ck2 = _make(minilm_fingerprint, base_model=str(minilm_dir), dim=128)
    ck2.config = _make(minilm_fingerprint, base_model=str(minilm_dir)).config
    save_checkpoint(ck2, tmp_path / "d")
    with pytest.raises(CheckpointError, match="dimension mismatch"):
        JEPAEncoder.from_pretrained(tmp_path / "d", base_model=str(minilm_dir))


def test_atomic_save_keeps_old_checkpoint_on_crash(tmp_path, minilm_fingerprint, monkeypatch):
    good = _make(minilm_fingerprint)
    save_checkpoint(good, tmp_path / "c")

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(ckpt_mod, "save_file", boom)
    with pytest.raises(OSError):
        save_checkpoint(_make(minilm_fingerprint, predictor=False), tmp_path / "c")
    back = load_checkpoint(tmp_path / "c")  # the old one, intact
    assert back.config.predictor is not None
    assert [p.name for p in tmp_path.iterdir()] == ["c"]  # no temp folder left behind


def test_no_pickle_in_package():
    """Checkpoints and caches never unpickle: no torch.load / pickle.load / allow_pickle=True anywhere."""
    import pathlib

    root = pathlib.Path(__file__).resolve().parent.parent
    offenders = []
    for folder in ("jepa_rag", "train", "integrations"):
        for f in (root / folder).rglob("*.py"):
            text = f.read_text()
            for bad in ("torch.load(", "pickle.load", "allow_pickle=True", "trust_remote_code=True"):
                if bad in text:
                    offenders.append(f"{f.relative_to(root)}: {bad}")
    assert offenders == []
