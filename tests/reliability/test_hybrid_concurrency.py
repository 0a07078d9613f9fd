"""Several writers at once on one hybrid collection: the BM25 index ends holding exactly the collection's
documents, and no query in between is ever answered from an index that misses an acknowledged write.

Two processes ingest halves of the crash corpus into one Chroma server collection (sharing a lexical folder, as
two workers on one machine would) while this process queries; threads share an embedded collection.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import uuid
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path


from .test_crash_ingest import BATCH, _check, _config, _reported

ROOT = Path(__file__).resolve().parents[2]


def _in_step(hybrid) -> list[str]:
    indexed = hybrid.lexical_ids()
    stored = hybrid.collection.get(include=[])["ids"]
    assert len(indexed) == len(set(indexed)) and set(indexed) == set(stored)
    return indexed


def test_two_processes_ingest_into_one_server_collection(tmp_path, crash_corpus, predictor_checkpoint,
                                                         minilm_dir, chroma_server_factory):
    from jepa_rag.chroma import JEPAEmbeddingFunction
    from jepa_rag.chroma_hybrid import hybrid_collection

    ids, docs, _ = crash_corpus
    server = chroma_server_factory()
    lexical_dir = str(tmp_path / "lexical")
    base = _config(tmp_path, predictor_checkpoint, minilm_dir, host=server.host, port=server.port,
                   lexical_dir=lexical_dir)
    half = len(ids) // 2
    cfgs = [{**base, "start": 0, "stop": half, "progress": str(tmp_path / "a.jsonl")},
            {**base, "start": half, "progress": str(tmp_path / "b.jsonl")}]
    ef = JEPAEmbeddingFunction(predictor_checkpoint, base_model=minilm_dir)
    hybrid = hybrid_collection(server.client(), base["collection"], ef, lexical_dir=lexical_dir)
    procs = [subprocess.Popen([sys.executable, "-m", "tests.reliability.hybrid_ingest_crash_child", json.dumps(c)],
                              cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT) for c in cfgs]
    checked = 0
    caught = warnings.catch_warnings(record=True)
    seen = caught.__enter__()
    warnings.simplefilter("always")
    try:
        while any(p.poll() is None for p in procs):
            # every batch a writer acknowledged before this query began is in the BM25 index it answers from
            acknowledged = {i for c in cfgs for i in _reported(Path(c["progress"]))}
            indexed = hybrid.lexical_ids()
            assert not acknowledged - set(indexed), "a query was served from an index missing a write"
            assert len(indexed) == len(set(indexed))
            checked += 1
        outputs = [p.communicate(timeout=60)[0].decode(errors="replace") for p in procs]
    finally:
        caught.__exit__(None, None, None)
        for p in procs:
            p.kill()
            p.wait(timeout=30)
    assert all(p.returncode == 0 for p in procs), outputs
    # the readers' checksum checks race the writers' commits and merges without mistaking them for damage
    assert not [w for w in seen if "rebuilding" in str(w.message)]
    assert checked > 0
    _check(hybrid.collection, crash_corpus, ids, complete=True)
    assert sorted(_in_step(hybrid)) == sorted(ids)
    print(f"{checked} lexical-index checks while two processes wrote {len(ids) // BATCH} batches")


def test_threads_write_and_query_one_embedded_collection(tmp_path, predictor_checkpoint, minilm_dir):
    import chromadb

    from jepa_rag.chroma import JEPAEmbeddingFunction
    from jepa_rag.chroma_hybrid import HybridCollection, hybrid_collection

    ef = JEPAEmbeddingFunction(predictor_checkpoint, base_model=minilm_dir)
    client = chromadb.PersistentClient(path=str(tmp_path / "db"))
    name = f"threads-{uuid.uuid4().hex[:8]}"
    first = hybrid_collection(client, name, ef)
    words = ["amber", "basalt", "cobalt", "dolomite"]
    errors: list[BaseException] = []
    stop = threading.Event()

    def writer(w: int) -> None:
        col = HybridCollection(client, first.collection)  # its own object, as another thread's code would hold
        for i in range(6):
            col.upsert(ids=[f"{words[w]}-{i}"], documents=[f"A note on {words[w]} sample {i}."])
        col.delete(ids=[f"{words[w]}-0"])

    def reader() -> None:
        col = HybridCollection(client, first.collection)
        while not stop.is_set():
            try:
                indexed = col.lexical_ids()
                assert len(indexed) == len(set(indexed))
            except BaseException as exc:  # noqa: BLE001 - reported by the main thread
                errors.append(exc)
                return
            stop.wait(0.01)  # a query every 10 ms, not a busy loop starving the writers of the lock

    readers = [threading.Thread(target=reader) for _ in range(2)]
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        for t in readers:
            t.start()
        with ThreadPoolExecutor(len(words)) as pool:
            list(pool.map(writer, range(len(words))))
        stop.set()
        for t in readers:
            t.join()
    assert not errors, errors
    assert not [w for w in seen if "rebuilding" in str(w.message)]
    expected = {f"{w}-{i}" for w in words for i in range(1, 6)}
    assert set(_in_step(first)) == expected
    assert first.hybrid_query(["cobalt sample 3"], n_results=1)["ids"] == [["cobalt-3"]]
