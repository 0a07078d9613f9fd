"""Fault injection on the base-vector cache: truncated, random-byte and bad-header files, an address-space limit and
a file-size limit. No case may kill the process, serve a wrong vector, or leave the cache unusable."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from .cache_damage_child import fingerprint, texts_and_vectors

ROOT = Path(__file__).resolve().parents[2]
N = 3000


def _child(*args: str) -> tuple[dict, str]:
    """Run the child; its read's counts and its stderr."""
    proc = subprocess.run([sys.executable, "-m", "tests.reliability.cache_damage_child", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, f"exit {proc.returncode} (135 = SIGBUS): {proc.stderr[-2000:]}"
    return json.loads(proc.stdout.strip().splitlines()[-1]), proc.stderr


@pytest.fixture
def filled(tmp_path) -> Path:
    """A cache of N checksummed vectors; returns its database file."""
    _child("fill", str(tmp_path), str(N))
    return tmp_path / fingerprint("small").key / "vectors.mdb"


def _read(db: Path) -> tuple[dict, str]:
    return _child("read", str(db.parent.parent), str(N))


def _refill(db: Path) -> dict:
    """Add every vector again (what re-encoding does) and read them back."""
    return _child("fill", str(db.parent.parent), str(N))[0]


def _aside(db: Path) -> list[str]:
    return sorted(p.name for p in db.parent.glob("vectors.mdb.corrupt-*") if not p.name.endswith("-lock"))


@pytest.mark.parametrize("keep", [0.5, 3 / 4096])  # half the file; shorter than its header
def test_a_truncated_cache_is_set_aside_not_a_sigbus(filled, keep):
    os.truncate(filled, int(filled.stat().st_size * keep))
    counts, stderr = _read(filled)
    assert counts["missing"] == N and counts["wrong"] == 0  # a cache: an empty one costs time, never the process
    assert len(_aside(filled)) == 1 and "vectors.mdb.corrupt-" in stderr
    assert _refill(filled)["missing"] == 0  # the fresh cache works


def test_random_bytes_never_serve_a_wrong_vector(filled):
    rng = np.random.default_rng(7)
    size = filled.stat().st_size
    with open(filled, "r+b") as fh:  # 40 bursts of 16 random bytes past the two header pages
        for offset in rng.integers(2 * 4096, size - 16, 40):
            fh.seek(int(offset))
            fh.write(rng.bytes(16))
    counts, stderr = _read(filled)
    assert counts["wrong"] == 0
    assert counts["damaged"] > 0 and "failed the checksum" in stderr
    assert _refill(filled) == {**counts, "missing": 0, "damaged": 0}  # damaged entries are rewritten by add


def test_a_bad_header_is_set_aside_in_process(filled, caplog):
    from jepa_rag import EmbeddingCache

    with open(filled, "r+b") as fh:
        fh.seek(16)
        fh.write(b"\xff" * 24)  # meta page 0: magic, version, address
    texts, vectors = texts_and_vectors(N, "small")
    with caplog.at_level(logging.WARNING, logger="jepa_rag"):
        cache = EmbeddingCache(fingerprint("small"), filled.parent.parent)
        assert len(cache) == 0
    assert "bad header" in caplog.text and len(_aside(filled)) == 1
    out = cache.embed(texts[:10], lambda chunk: vectors[[texts.index(t) for t in chunk]])
    np.testing.assert_array_equal(out, vectors[:10])
    assert not cache.lookup(texts[:10])[1]


def test_opens_and_grows_under_an_address_space_limit(tmp_path):
    # 16 GB as a batch scheduler sets it: a fixed 1 TiB map failed with lmdb.MemoryError. The child starts from a
    # 1 MiB map, which 300 vectors of 16 KiB (5 pages each) outgrow several times over
    counts, _ = _child("rlimit_as", str(tmp_path), "300", str(16_000_000_000))
    assert counts["missing"] == 0 and counts["wrong"] == 0 and counts["map_size"] >= 4 << 20


def test_a_full_file_system_skips_the_write_and_keeps_answering(tmp_path):
    # RLIMIT_FSIZE stands in for a full disk (mounting a small tmpfs needs privileges CI lacks): LMDB's writes past
    # 1 MiB fail with EFBIG; the cache warns, keeps what was committed, and every read still answers
    counts, stderr = _child("rlimit_fsize", str(tmp_path), str(N), str(1 << 20))
    assert 0 < counts["missing"] < N and counts["wrong"] == 0
    assert "cannot store vectors" in stderr
    assert _refill(tmp_path / fingerprint("small").key / "vectors.mdb")["missing"] == 0  # room again: completes


def test_old_format_entries_empty_reads_and_odd_dimensions(tmp_path):
    from jepa_rag import EmbeddingCache, Fingerprint
    from jepa_rag.cache import _key

    cache = EmbeddingCache(Fingerprint("toy/odd", "cd" * 32, 128, True, 5), tmp_path)  # 20 bytes, padded to 24
    assert cache.lookup([])[0].shape == (0, 5) and cache.lookup([])[1] == []
    vectors = np.arange(10, dtype=np.float32).reshape(2, 5)
    cache.add(["a", "b"], vectors)
    got, missing = cache.lookup(["a", "never", "b"])
    assert missing == [1] and np.array_equal(got[[0, 2]], vectors)
    # a value written before checksums (exactly the vector's bytes) is still served, unverified
    with cache._store.shared() as env, env.begin(write=True) as txn:
        txn.put(_key("old"), vectors[0].tobytes())
    got, missing = cache.lookup(["old"])
    assert missing == [] and np.array_equal(got[0], vectors[0])
