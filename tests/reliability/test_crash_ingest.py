"""Crash safety of ingest: a SIGKILL mid-way, or a Chroma server crashing or restarting, loses nothing acknowledged.

A child process ingests 2,400 documents with :func:`jepa_rag.chroma.ingest` (idempotent upserts, 100 per
batch) and appends a line to a progress file after each batch chromadb acknowledged; the test SIGKILLs it part-way.
After reopening, every batch the child reported is present exactly once with its text and vector, nothing outside
the corpus is there, queries answer, and running the ingest again completes the collection without duplicates.
The server variant also crashes (SIGKILL) and restarts (SIGTERM) the server on the same ``--path`` between and
during batches.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
import warnings
from pathlib import Path

import numpy as np
import pytest

from ..chroma_server import listening_addresses

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX")

ROOT = Path(__file__).resolve().parents[2]
BATCH = 100


def _reported(progress: Path) -> list[str]:
    """Ids of the batches the child reported as committed (a line the kill cut short is no report)."""
    if not progress.exists():
        return []
    text = progress.read_text(encoding="utf-8")
    return [i for line in text.split("\n")[:-1] for i in json.loads(line)["ids"]]


def _run_and_kill(cfg: dict, tmp: Path, after_batches: int) -> list[str]:
    """Start the ingest child, SIGKILL it as soon as ``after_batches`` batches are reported; the reported ids."""
    progress = Path(cfg["progress"])
    with open(tmp / "child.out", "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "tests.reliability.ingest_crash_child", json.dumps(cfg)],
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
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    reported = _reported(progress)
    assert after_batches * BATCH <= len(reported) < len(cfg_ids(cfg))  # killed part-way
    return reported


def cfg_ids(cfg: dict) -> range:
    return range(cfg["n"])


def _check(collection, crash_corpus, reported: list[str], complete: bool = False) -> dict:
    """Every reported document present once, with its text and vector; nothing foreign; queries answer."""
    ids, docs, vectors = crash_corpus
    index = {doc_id: i for i, doc_id in enumerate(ids)}
    stored = collection.get(include=["documents", "embeddings"])
    got = stored["ids"]
    assert len(got) == len(set(got)) == collection.count(), "duplicate records"
    assert set(got) <= set(ids), "records outside the corpus"
    lost = sorted(set(reported) - set(got))
    assert lost == [], f"{len(lost)} acknowledged documents lost, e.g. {lost[:3]}"
    rows = [index[i] for i in got]
    assert stored["documents"] == [docs[r] for r in rows], "a stored text differs from the one ingested"
    np.testing.assert_allclose(np.asarray(stored["embeddings"]), vectors[rows], atol=1e-5)
    if complete:
        assert set(got) == set(ids)
    probe = reported[len(reported) // 2]
    hit = collection.query(query_texts=[docs[index[probe]]], n_results=3)
    assert hit["ids"][0][0] == probe
    return {"stored": len(got), "reported": len(reported), "lost": len(lost)}


def _config(tmp: Path, predictor_checkpoint, minilm_dir, **where) -> dict:
    from .conftest import N_DOCS

    return {**where, "collection": f"crash-{uuid.uuid4().hex[:8]}", "checkpoint": str(predictor_checkpoint),
            "base_model": str(minilm_dir), "n": N_DOCS, "batch_size": BATCH, "progress": str(tmp / "progress.jsonl")}


@pytest.mark.parametrize("after_batches", [2, 9])
def test_sigkill_mid_ingest_into_embedded_chroma(tmp_path, crash_corpus, predictor_checkpoint, minilm_dir,
                                                  after_batches):
    import chromadb

    from jepa_rag.chroma import JEPAEmbeddingFunction, get_or_create_collection, ingest

    cfg = _config(tmp_path, predictor_checkpoint, minilm_dir, path=str(tmp_path / "db"))
    reported = _run_and_kill(cfg, tmp_path, after_batches)

    client = chromadb.PersistentClient(path=cfg["path"])
    collection = get_or_create_collection(client, cfg["collection"])  # reopened with its stored checkpoint
    _check(collection, crash_corpus, reported)

    ids, docs, _ = crash_corpus
    ef = JEPAEmbeddingFunction(predictor_checkpoint, base_model=minilm_dir)
    batches = []
    assert ingest(get_or_create_collection(client, cfg["collection"], ef), ids, docs, batch_size=BATCH,
                  on_batch=lambda done, b: batches.append(b)) == len(ids)
    assert len(batches) == len(ids) // BATCH
    _check(collection, crash_corpus, ids, complete=True)


def test_chroma_server_crashes_and_restarts_around_an_ingest(tmp_path, crash_corpus, predictor_checkpoint,
                                                            minilm_dir, chroma_server_factory):
    from jepa_rag.chroma import JEPAEmbeddingFunction, get_or_create_collection, ingest

    server = chroma_server_factory()
    assert set(listening_addresses(server.port)) == {"127.0.0.1"}
    cfg = _config(tmp_path, predictor_checkpoint, minilm_dir, host=server.host, port=server.port)

    # 1. the ingesting client is SIGKILLed, then the server crashes (SIGKILL) and comes back on the same --path
    reported = _run_and_kill(cfg, tmp_path, 5)
    server.restart(hard=True)
    collection = get_or_create_collection(server.client(), cfg["collection"])
    _check(collection, crash_corpus, reported)

    # 2. the ingest is run again while the server is restarted (SIGTERM) every 6 batches and crashes once more
    #    mid-way (SIGKILL, back 0.3 s later): broken connections are retried, upserts make that safe
    ids, docs, _ = crash_corpus
    ef = JEPAEmbeddingFunction(predictor_checkpoint, base_model=minilm_dir)
    crash: list[threading.Thread] = []
    events = {"graceful restarts": 0, "crashes": 1}

    def crash_and_restart():
        time.sleep(0.01)
        server.kill()
        time.sleep(0.3)
        server.start()

    def on_batch(done: int, batch_ids: list[str]) -> None:
        for t in crash:
            t.join()
        n = done // BATCH
        if n == 9:
            crash.append(threading.Thread(target=crash_and_restart))
            crash[-1].start()
            events["crashes"] += 1
        elif n % 6 == 0:
            server.restart()
            events["graceful restarts"] += 1

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        written = ingest(get_or_create_collection(server.client(), cfg["collection"], ef), ids, docs,
                         batch_size=BATCH, on_batch=on_batch, retries=6, retry_wait=0.25)
    for t in crash:
        t.join()
    assert written == len(ids)
    assert events == {"graceful restarts": 4, "crashes": 2}
    retried = [w for w in caught if "retrying" in str(w.message)]
    print(f"ingest retried {len(retried)} batch(es) after the server went away")

    server.restart()
    _check(get_or_create_collection(server.client(), cfg["collection"]), crash_corpus, ids, complete=True)
    assert set(listening_addresses(server.port)) == {"127.0.0.1"}
