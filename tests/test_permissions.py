"""What jepa-rag writes gets the permissions the user's umask gives, like any file they make (issue 22): a
checkpoint or a lexical index is renamed into place from a temporary folder, which must not leave it
``drwx------`` / ``-rw-------``."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from jepa_rag import LexicalIndex, load_checkpoint, save_checkpoint


@pytest.fixture()
def umask_022():
    old = os.umask(0o022)
    yield
    os.umask(old)


def _modes(folder: Path) -> set[tuple[str, int]]:
    return {(p.name, stat.S_IMODE(p.stat().st_mode)) for p in [folder, *folder.iterdir()]}


def test_saved_checkpoint_follows_the_umask(tmp_path, predictor_checkpoint, umask_022):
    out = save_checkpoint(load_checkpoint(predictor_checkpoint), tmp_path / "ckpt")
    assert _modes(out) == {("ckpt", 0o755)} | {(p.name, 0o644) for p in out.iterdir()}
    out = save_checkpoint(load_checkpoint(out), out)  # replacing one in place too
    assert stat.S_IMODE(out.stat().st_mode) == 0o755


def test_saved_lexical_index_follows_the_umask(tmp_path, umask_022):
    LexicalIndex(["a", "b"], ["alpha beta", "beta gamma"]).save(tmp_path / "bm25")
    folder = tmp_path / "bm25"
    assert _modes(folder) == {("bm25", 0o755)} | {(p.name, 0o644) for p in folder.iterdir()}
