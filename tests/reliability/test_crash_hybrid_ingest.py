"""Crash safety of a hybrid ingest: after a SIGKILL mid-way and a re-run, the dense collection and the lexical
(BM25) index both hold every acknowledged document exactly once, embedded and on a Chroma server.

A child ingests 2,400 documents through a :class:`~jepa_rag.chroma_hybrid.HybridCollection` (upserts of 100, each
journalled in the lexical store before Chroma's write and applied to it after) and reads the lexical store after
every acknowledged batch; the test SIGKILLs it part-way, or as soon as a write has journalled its batch, so the kill
lands in an upsert, a tantivy commit or a state transaction.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from .test_crash_ingest import BATCH, _check, _config, _reported

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX")

ROOT = Path(__file__).resolve().parents[2]


def _journal_rows(folder: Path) -> int | None:
    """Rows in the current lexical store's journal (read as another process would), None before there is one."""
    import sqlite3

    try:
        current = json.loads((folder / "current.json").read_text())
        with sqlite3.connect(f"file:{folder / current['store'] / 'state.sqlite'}?mode=ro", uri=True) as db:
            return db.execute("SELECT COUNT(*) FROM journal").fetchone()[0]
    except (OSError, ValueError, KeyError, sqlite3.Error):
        return None


def _marked_dirty(cfg: dict) -> bool:
    """Whether a write has journalled its batch and not yet applied it (the kill then lands inside a write)."""
    import chromadb

    client = (chromadb.PersistentClient(path=cfg["path"]) if "path" in cfg
              else chromadb.HttpClient(host=cfg["host"], port=cfg["port"]))
    collection_id = client.get_collection(cfg["collection"], embedding_function=None).id
    root = Path(cfg["lexical_dir"]) if cfg.get("lexical_dir") else Path(cfg["path"]) / "jepa_rag_lexical"
    return bool(_journal_rows(root / str(collection_id)))


def _run_and_kill(cfg: dict, tmp: Path, after_batches: int, delay: float | str) -> list[str]:
    """SIGKILL the child ``delay`` seconds after ``after_batches`` batches were reported, or, with ``"dirty"``,
    as soon as after that a write has marked the collection dirty (the kill then lands inside a write)."""
    progress = Path(cfg["progress"])
    with open(tmp / "child.out", "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "tests.reliability.hybrid_ingest_crash_child", json.dumps(cfg)],
            cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 180
    try:
        while len(_reported(progress)) < after_batches * BATCH:
            if proc.poll() is not None:
                pytest.fail(f"ingest child exited ({proc.returncode}) before the kill:\n"
                            f"{(tmp / 'child.out').read_text(errors='replace')[-3000:]}")
            if time.monotonic() > deadline:
                pytest.fail("ingest child too slow")
            time.sleep(0.002)
        if delay == "dirty":
            while not _marked_dirty(cfg):
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail("the ingest child never marked the collection dirty")
        else:
            time.sleep(delay)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    reported = _reported(progress)
    assert after_batches * BATCH <= len(reported) < cfg["n"]  # killed part-way
    return reported


def _state(hybrid) -> str:
    """Where the kill left things: whether a write's journal was left behind."""
    rows = _journal_rows(hybrid.folder)
    return "no lexical store yet" if rows is None else f"{rows} journalled ids left by the killed writer"


def _check_lexical(hybrid, crash_corpus, reported: list[str], complete: bool = False) -> None:
    """The BM25 index holds exactly the collection's documents, each once, every reported one among them."""
    ids, docs, _ = crash_corpus
    if not complete:
        print("after the kill:", _state(hybrid))
    indexed = hybrid.lexical_ids()
    stored = hybrid.collection.get(include=[])["ids"]
    assert len(indexed) == len(set(indexed)), "a document indexed twice"
    assert set(indexed) == set(stored), "the BM25 index and the collection disagree"
    assert not set(reported) - set(indexed), "an acknowledged document is missing from the BM25 index"
    if complete:
        assert sorted(indexed) == sorted(ids)
    probe = reported[len(reported) // 3]
    number = docs[ids.index(probe)].split(":")[0]  # "Record 1234": its number is a term of that document only
    store = hybrid.lexical_index()
    hit = store.search(store.tokenize([number])[0], 1)
    assert store.ids_at([addr for _, _, addr in hit]) == [probe]
    # a fresh client finds the store up to date: loaded, not rebuilt
    again = type(hybrid)(hybrid._client, hybrid.collection, lexical_dir=hybrid.folder.parent)
    assert sorted(again.lexical_ids()) == sorted(indexed) and again.refreshes == {"loaded": 1}


def _rerun(hybrid, crash_corpus) -> None:
    ids, docs, _ = crash_corpus
    assert hybrid.ingest(ids, docs, batch_size=BATCH) == len(ids)


@pytest.mark.parametrize("after_batches, delay", [(2, 0.0), (9, 0.0), (4, "dirty"), (12, "dirty")])
def test_sigkill_mid_hybrid_ingest_embedded(tmp_path, crash_corpus, predictor_checkpoint, minilm_dir,
                                            after_batches, delay):
    import chromadb

    from jepa_rag.chroma_hybrid import hybrid_collection

    cfg = _config(tmp_path, predictor_checkpoint, minilm_dir, path=str(tmp_path / "db"))
    reported = _run_and_kill(cfg, tmp_path, after_batches, delay)

    hybrid = hybrid_collection(chromadb.PersistentClient(path=cfg["path"]), cfg["collection"])
    _check(hybrid.collection, crash_corpus, reported)
    _check_lexical(hybrid, crash_corpus, reported)

    _rerun(hybrid_collection(chromadb.PersistentClient(path=cfg["path"]), cfg["collection"]), crash_corpus)
    _check(hybrid.collection, crash_corpus, crash_corpus[0], complete=True)
    _check_lexical(hybrid, crash_corpus, crash_corpus[0], complete=True)


def test_sigkill_mid_hybrid_ingest_on_a_server(tmp_path, crash_corpus, predictor_checkpoint, minilm_dir,
                                              chroma_server_factory):
    from jepa_rag.chroma_hybrid import hybrid_collection

    server = chroma_server_factory()
    lexical_dir = str(tmp_path / "lexical")
    cfg = _config(tmp_path, predictor_checkpoint, minilm_dir, host=server.host, port=server.port,
                  lexical_dir=lexical_dir)
    reported = _run_and_kill(cfg, tmp_path, 5, "dirty")
    server.restart(hard=True)  # the server crashes too, and comes back on the same --path

    hybrid = hybrid_collection(server.client(), cfg["collection"], lexical_dir=lexical_dir)
    _check(hybrid.collection, crash_corpus, reported)
    _check_lexical(hybrid, crash_corpus, reported)

    _rerun(hybrid_collection(server.client(), cfg["collection"], lexical_dir=lexical_dir), crash_corpus)
    _check(hybrid.collection, crash_corpus, crash_corpus[0], complete=True)
    _check_lexical(hybrid, crash_corpus, crash_corpus[0], complete=True)
