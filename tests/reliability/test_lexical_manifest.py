"""Fault injection on a saved lexical index's manifest: a one-byte id edit or two swapped ids used to load silently
(the document lost or swapped its BM25 matches); a killed save's temp folder stayed forever."""

from __future__ import annotations

import json
import os
import socket

import pytest

from jepa_rag import LexicalIndexError
from jepa_rag.lexical import LexicalIndex

IDS = ["D-0005", "D-0006", "D-0007"]
TEXTS = ["pumps need pressure sensors", "volcanoes erupt magma", "plants make glucose from light"]


@pytest.fixture
def saved(tmp_path):
    folder = tmp_path / "bm25"
    LexicalIndex(IDS, TEXTS).save(folder)
    return folder


@pytest.mark.parametrize("edit", [
    lambda text: text.replace("D-0005", "D-9005"),
    lambda text: text.replace("D-0005", "@").replace("D-0006", "D-0005").replace("@", "D-0006"),
])
def test_an_edited_manifest_is_refused(saved, edit):
    manifest = saved / "manifest.json"
    manifest.write_text(edit(manifest.read_text()))
    with pytest.raises(LexicalIndexError, match="manifest_sha256 does not match"):
        LexicalIndex.load(saved)
    LexicalIndex(IDS, TEXTS).save(saved)  # rebuilt from its documents, it loads and ranks again
    assert LexicalIndex.load(saved).search(["magma"], 1) == LexicalIndex(IDS, TEXTS).search(["magma"], 1)


def test_a_format_1_index_says_rebuild(saved):
    manifest = saved / "manifest.json"
    meta = json.loads(manifest.read_text())
    meta["format_version"] = 1
    del meta["manifest_sha256"]
    manifest.write_text(json.dumps(meta))
    with pytest.raises(LexicalIndexError, match="Rebuild the index"):
        LexicalIndex.load(saved)


def test_the_next_save_removes_what_killed_saves_left(saved):
    dead = 2**22 + 12345  # above the default pid_max: no process has it
    assert not os.path.exists(f"/proc/{dead}")
    leftovers = [saved.parent / f".bm25.tmp{socket.gethostname()}-{dead}-0123abcd",
                 saved.parent / f".bm25.old{dead}.89abcdef"]
    alive = saved.parent / f".bm25.tmp{socket.gethostname()}-{os.getpid()}-0123abcd"  # a save in progress
    for folder in [*leftovers, alive]:
        folder.mkdir()
        (folder / "params.index.json").write_text("{}")
    LexicalIndex(IDS, TEXTS).save(saved)
    assert not any(p.exists() for p in leftovers) and alive.exists()
    assert LexicalIndex.load(saved).ids == IDS
