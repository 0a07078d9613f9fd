"""Malicious and corrupt checkpoint configs: each refused with a typed CheckpointError before the heads are built
(an edited hidden_mult=2000 used to allocate 2.5 GB for 65 s; NaN, inf and huge sizes reached the allocator; deep
JSON nesting raised RecursionError)."""

from __future__ import annotations

import json
import shutil

import pytest

from jepa_rag import CheckpointError, load_checkpoint
from jepa_rag.checkpoint import config_sha256


@pytest.fixture
def checkpoint(tmp_path, predictor_checkpoint):
    dst = tmp_path / "ck"
    shutil.copytree(predictor_checkpoint, dst)
    return dst


def _edit(folder, change, *, rehash: bool = True) -> None:
    """Change the config; ``rehash`` also recomputes config_sha256, as a deliberate forger would."""
    path = folder / "adapter_config.json"
    meta = json.loads(path.read_text())
    change(meta)
    if rehash:
        meta["config_sha256"] = config_sha256(meta)
    path.write_text(json.dumps(meta))


def _head(**values):
    return lambda meta: meta["model"]["predictor"].update(values)


def test_an_edited_config_fails_its_hash(checkpoint):
    _edit(checkpoint, _head(hidden_mult=2000.0), rehash=False)
    with pytest.raises(CheckpointError, match="config_sha256 does not match"):
        load_checkpoint(checkpoint)


@pytest.mark.parametrize(("values", "message"), [
    ({"hidden_mult": 2000.0}, "hidden_mult must be in"),
    ({"hidden_mult": float("nan")}, "hidden_mult must be a finite number"),
    ({"hidden_mult": float("inf")}, "hidden_mult must be a finite number"),
    ({"dropout": float("nan")}, "dropout must be a finite number"),
    ({"in_dim": 10**30, "out_dim": 10**30}, "in_dim must be an integer in"),
    ({"out_dim": -5}, "out_dim must be an integer in"),
    ({"in_dim": True}, "in_dim must be an integer in"),
    ({"hidden_mult": 3.0}, "dimension mismatch"),  # within bounds, but not what the weights hold
])
def test_bad_sizes_are_refused_before_allocation(checkpoint, values, message):
    _edit(checkpoint, _head(**values))
    with pytest.raises(CheckpointError, match=message):
        load_checkpoint(checkpoint)


def test_deep_and_huge_json_are_refused(checkpoint):
    path = checkpoint / "adapter_config.json"
    text = path.read_text()
    path.write_text(text[:-1] + ', "training2": ' + "[" * 200_000 + "]" * 200_000 + "}")
    with pytest.raises(CheckpointError, match="nested too deeply"):
        load_checkpoint(checkpoint)
    path.write_text(text[:-1] + ', "pad": "' + "x" * (17 << 20) + '"}')
    with pytest.raises(CheckpointError, match="more than a checkpoint config holds"):
        load_checkpoint(checkpoint)


def test_checkpoints_without_the_config_hash_load_under_the_same_bounds(checkpoint):
    from jepa_rag.encoder import DEFAULT_CHECKPOINT

    if DEFAULT_CHECKPOINT.is_dir():  # the shipped checkpoint predates config_sha256
        assert "config_sha256" not in json.loads((DEFAULT_CHECKPOINT / "adapter_config.json").read_text())
        assert load_checkpoint(DEFAULT_CHECKPOINT).config.projection.in_dim == 768
    _edit(checkpoint, lambda meta: meta.pop("config_sha256"), rehash=False)
    assert load_checkpoint(checkpoint).config is not None
    _edit(checkpoint, _head(hidden_mult=2000.0), rehash=False)
    with pytest.raises(CheckpointError, match="hidden_mult must be in"):
        load_checkpoint(checkpoint)


def test_the_cli_reports_a_corrupt_config_as_an_error(checkpoint, minilm_dir, tmp_path, capsys):
    from jepa_rag.cli import main

    _edit(checkpoint, _head(hidden_mult=float("inf")))
    rc = main(["query", "anything", "--collection", "notes", "--path", str(tmp_path / "index"),
               "--checkpoint", str(checkpoint), "--base-model", str(minilm_dir)])
    err = capsys.readouterr().err
    assert rc == 1 and err.startswith("error:") and "hidden_mult must be a finite number" in err
