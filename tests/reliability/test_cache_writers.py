"""The base-vector cache under several writers and under SIGKILL: nothing acknowledged is lost, nothing is mixed up.

Writers are real processes (``cache_writer_child``) sharing one cache folder; every vector is a function of its
text, so a reader can check each row it gets back.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from jepa_rag import EmbeddingCache

from .cache_writer_child import FP, texts_of, vectors_of

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX")
ROOT = Path(__file__).resolve().parents[2]


def _writer(root: Path, prefix: str, batches: int, batch_size: int) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "tests.reliability.cache_writer_child", str(root), prefix,
                             str(batches), str(batch_size)], cwd=ROOT, stdout=subprocess.PIPE, text=True)


def _check_all(cache: EmbeddingCache, texts: list[str]) -> None:
    got, missing = cache.lookup(texts)
    assert missing == []
    np.testing.assert_array_equal(got, vectors_of(texts))


def test_two_processes_write_while_a_third_reads(tmp_path):
    a, b = _writer(tmp_path, "a", 40, 64), _writer(tmp_path, "b", 40, 64)
    reader = EmbeddingCache(FP, tmp_path)
    seen_rows = 0
    while a.poll() is None or b.poll() is None:  # reads during writes: every row found is the right one
        probe = texts_of("a", random.randrange(40), 64) + texts_of("b", random.randrange(40), 64)
        got, missing = reader.lookup(probe)
        found = [i for i in range(len(probe)) if i not in set(missing)]
        np.testing.assert_array_equal(got[found], vectors_of([probe[i] for i in found]))
        seen_rows += len(found)
        time.sleep(0.01)
    assert a.wait() == 0 and b.wait() == 0
    fresh = EmbeddingCache(FP, tmp_path)
    assert len(fresh) == 2 * 40 * 64
    for prefix in "ab":
        _check_all(fresh, [t for n in range(40) for t in texts_of(prefix, n, 64)])
    assert sorted(p.name for p in fresh.dir.iterdir()) == ["fingerprint.json", "vectors.mdb", "vectors.mdb-lock"]


@pytest.mark.parametrize("delay", [0.05, 0.2, 0.5, 1.0])
def test_sigkill_mid_write_keeps_every_acknowledged_batch(tmp_path, delay):
    proc = _writer(tmp_path, "k", 100_000, 256)
    acked: list[int] = []
    deadline = time.monotonic() + delay
    reader = threading.Thread(target=lambda: acked.extend(int(line.split()[1]) for line in proc.stdout
                                                           if line.startswith("ACK")))
    reader.start()
    while time.monotonic() < deadline or not acked:
        time.sleep(0.01)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    reader.join()
    cache = EmbeddingCache(FP, tmp_path)  # opens: the database is intact
    _check_all(cache, [t for n in acked for t in texts_of("k", n, 256)])
    # at most the batch in flight is beyond the acknowledged ones, and it is whole or absent
    assert len(cache) in (len(acked) * 256, (len(acked) + 1) * 256)
    cache.add(texts_of("after", 0, 4), vectors_of(texts_of("after", 0, 4)))  # and writable again
    _check_all(EmbeddingCache(FP, tmp_path), texts_of("after", 0, 4))


def test_threads_adding_to_one_cache(tmp_path):
    cache = EmbeddingCache(FP, tmp_path)
    batches = [texts_of("t", i, 5) for i in range(16)]
    threads = [threading.Thread(target=cache.add, args=(texts, vectors_of(texts))) for texts in batches]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    _check_all(EmbeddingCache(FP, tmp_path), [t for texts in batches for t in texts])
