"""Two writers on one embedding cache (two processes, or two threads) never overwrite each other's shards."""

from __future__ import annotations

import threading

import numpy as np

from jepa_rag import EmbeddingCache, Fingerprint

FP = Fingerprint("toy/model", "ab" * 32, 128, True, 4)


def _vectors(texts: list[str], seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    v = rng.normal(size=(len(texts), FP.dim))
    return (v / np.linalg.norm(v, axis=1, keepdims=True)).astype(np.float32)


def test_two_processes_sharing_a_cache_folder_keep_both_shards(tmp_path):
    """Two caches opened on the same folder before either writes (as two processes would) both commit shard 0.

    Each must claim its own shard file: otherwise the second overwrites the first's vectors, or, interleaved, pairs
    one writer's keys with the other's vectors (wrong embeddings served for every later run).
    """
    a, b = EmbeddingCache(FP, tmp_path), EmbeddingCache(FP, tmp_path)
    ta, tb = [f"a{i}" for i in range(8)], [f"b{i}" for i in range(8)]
    va, vb = _vectors(ta, 1), _vectors(tb, 2)
    a.add(ta, va)
    b.add(tb, vb)
    fresh = EmbeddingCache(FP, tmp_path)
    for texts, expected in ((ta, va), (tb, vb)):
        got, missing = fresh.lookup(texts)
        assert missing == []
        np.testing.assert_array_equal(got, expected)


def test_interleaved_writers_never_pair_keys_with_foreign_vectors(tmp_path, monkeypatch):
    """Writer A's vectors land, then B writes a whole shard, then A's keys land: each shard stays self-consistent."""
    from jepa_rag import cache as cache_mod

    a, b = EmbeddingCache(FP, tmp_path), EmbeddingCache(FP, tmp_path)
    ta, tb = [f"a{i}" for i in range(8)], [f"b{i}" for i in range(8)]
    va, vb = _vectors(ta, 1), _vectors(tb, 2)
    original = cache_mod._atomic_write_bytes
    done = threading.Event()

    def interleave(path, write):
        original(path, write)
        if path.suffix == ".npy" and threading.current_thread().name == "writer-a" and not done.is_set():
            done.set()
            b.add(tb, vb)  # the other process commits a whole shard right between A's two writes

    monkeypatch.setattr(cache_mod, "_atomic_write_bytes", interleave)
    t = threading.Thread(target=a.add, args=(ta, va), name="writer-a")
    t.start()
    t.join()
    fresh = EmbeddingCache(FP, tmp_path)
    for texts, expected in ((ta, va), (tb, vb)):
        got, missing = fresh.lookup(texts)
        assert missing == []
        np.testing.assert_array_equal(got, expected)


def test_threads_adding_to_one_cache(tmp_path):
    cache = EmbeddingCache(FP, tmp_path)
    batches = {i: ([f"t{i}-{j}" for j in range(5)], _vectors([""] * 5, i)) for i in range(16)}
    threads = [threading.Thread(target=cache.add, args=batch) for batch in batches.values()]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    fresh = EmbeddingCache(FP, tmp_path)
    for texts, expected in batches.values():
        got, missing = fresh.lookup(texts)
        assert missing == []
        np.testing.assert_array_equal(got, expected)
