"""A full file system under an ingest: chromadb raises ``InternalError('Error in compaction: Failed to apply logs to
the metadata segment')``, which never says why; ingest raises StorageFullError naming the folder instead, and the
store stays usable. RLIMIT_FSIZE (lowered for this test's writes only) stands in for a full disk: mounting a small
tmpfs needs privileges CI lacks."""

from __future__ import annotations

import errno
import json
import resource
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

import pytest

from jepa_rag import JEPARagError
from jepa_rag.chroma import ingest
from jepa_rag.errors import StorageFullError

from .toy_embedding import ToyEmbedding

ROOT = Path(__file__).resolve().parents[2]
# chromadb's client in the process whose write failed stays wedged (its next get() never returns): the store is
# checked, and the ingest finished, from a fresh process, as a user would re-run it
CHECK = """
import json, sys
import chromadb
from tests.reliability.toy_embedding import ToyEmbedding
col = chromadb.PersistentClient(path=sys.argv[1]).get_collection("full", embedding_function=ToyEmbedding())
ids = json.loads(sys.argv[2])
before = len(col.get(ids=ids)["ids"])
col.upsert(ids=ids, documents=[f"document {i}" for i in ids])
print(json.dumps([before, col.count()]))
"""


@contextmanager
def file_size_limit(limit: int):
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, hard))  # Python ignores SIGXFSZ: writes fail with EFBIG
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))


def test_an_ingest_out_of_space_says_so(tmp_path):
    chromadb = pytest.importorskip("chromadb")
    path = tmp_path / "db"
    collection = chromadb.PersistentClient(path=str(path)).get_or_create_collection(
        "full", embedding_function=ToyEmbedding())
    ids = [f"d{i}" for i in range(20_000)]
    docs = [f"document number {i} " * 20 for i in range(20_000)]
    done: list[int] = []
    with file_size_limit(3_000_000), pytest.raises(StorageFullError) as raised:
        ingest(collection, ids, docs, batch_size=500, on_batch=lambda n, _: done.append(n))
    assert isinstance(raised.value, JEPARagError) and raised.value.errno == errno.ENOSPC
    assert f"no space left on {path}" in str(raised.value)
    assert done, "the limit left no room for a first batch"
    acked = ids[:done[-1]]
    proc = subprocess.run([sys.executable, "-c", CHECK, str(path), json.dumps(acked)], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    before, after = json.loads(proc.stdout.strip().splitlines()[-1])
    assert before == len(acked) and after >= len(acked)  # every acknowledged batch kept; writable again
