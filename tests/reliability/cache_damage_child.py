"""A process that uses an embedding cache under a damaged file or a resource limit, for the fault-injection tests.

    python -m tests.reliability.cache_damage_child fill <root> <n>         # store n vectors, read them back
    python -m tests.reliability.cache_damage_child read <root> <n>         # read them back

Each prints the read's counts as JSON: missing, wrong (served but not the vector stored), damaged, map_size.
    python -m tests.reliability.cache_damage_child rlimit_as <root> <n> <bytes>     # under ulimit -v: fill + read
    python -m tests.reliability.cache_damage_child rlimit_fsize <root> <n> <bytes>  # under ulimit -f: fill + read

Why a child process: a read past the end of a truncated memory map is a SIGBUS, which would kill pytest itself; a
child that dies shows up as its exit status (135) instead. It imports only the cache (no torch): it starts in a
second.
"""

from __future__ import annotations

import json
import resource
import sys

import numpy as np

import jepa_rag.cache as cache_module
from jepa_rag.cache import EmbeddingCache
from jepa_rag.base_model import Fingerprint

DIMS = {"small": 64, "large": 4096}


def fingerprint(size: str) -> Fingerprint:
    return Fingerprint("toy/model", "ab" * 32, 128, True, DIMS[size])


def texts_and_vectors(n: int, size: str) -> tuple[list[str], np.ndarray]:
    """Deterministic: every process computes the same vectors, so a reader can tell a wrong one."""
    return [f"text {i}" for i in range(n)], np.random.default_rng(0).normal(size=(n, DIMS[size])).astype(np.float32)


def fill(cache: EmbeddingCache, texts: list[str], vectors: np.ndarray) -> None:
    for start in range(0, len(texts), 256):
        cache.add(texts[start:start + 256], vectors[start:start + 256])


def counts(cache: EmbeddingCache, texts: list[str], vectors: np.ndarray) -> dict:
    got, missing = cache.lookup(texts)
    served = np.setdiff1d(np.arange(len(texts)), missing)
    wrong = int((~np.all(got[served] == vectors[served], axis=1)).sum())
    env = cache._store.env
    return {"missing": len(missing), "wrong": wrong, "damaged": cache.damaged_entries,
            "map_size": env.info()["map_size"] if env is not None else 0}


def main() -> None:
    mode, root, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    size = "large" if mode == "rlimit_as" else "small"
    if mode == "rlimit_as":  # a first map of 1 MiB, so that a few hundred vectors make it grow several times
        cache_module.MIN_MAP_SIZE = 1 << 20
    if mode in ("rlimit_as", "rlimit_fsize"):
        limit = int(sys.argv[4])
        kind = resource.RLIMIT_AS if mode == "rlimit_as" else resource.RLIMIT_FSIZE
        resource.setrlimit(kind, (limit, resource.getrlimit(kind)[1]))
    texts, vectors = texts_and_vectors(n, size)
    cache = EmbeddingCache(fingerprint(size), root)
    if mode != "read":
        fill(cache, texts, vectors)
    print(json.dumps(counts(cache, texts, vectors)), flush=True)


if __name__ == "__main__":
    main()
