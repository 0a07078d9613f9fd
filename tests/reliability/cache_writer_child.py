"""A process writing to an embedding cache, for the two-writer and SIGKILL tests.

    python -m tests.reliability.cache_writer_child <cache_root> <prefix> <batches> <batch_size>

Writes ``batches`` batches of deterministic vectors (texts ``<prefix>-<batch>-<row>``) and prints ``ACK <batch>``
after each batch's transaction has committed, so a parent that kills it knows which batches must survive.
"""

from __future__ import annotations

import hashlib
import sys

import numpy as np

from jepa_rag import EmbeddingCache, Fingerprint

FP = Fingerprint("toy/model", "ab" * 32, 128, True, 16)


def texts_of(prefix: str, batch: int, batch_size: int) -> list[str]:
    return [f"{prefix}-{batch}-{row}" for row in range(batch_size)]


def vectors_of(texts: list[str]) -> np.ndarray:
    """The vector every writer stores for a text: a function of the text alone, so any reader can check it."""
    out = np.empty((len(texts), FP.dim), np.float32)
    for i, t in enumerate(texts):
        seed = int.from_bytes(hashlib.sha256(t.encode()).digest()[:8], "little")
        out[i] = np.random.default_rng(seed).normal(size=FP.dim)
    return out


def main() -> None:
    root, prefix, batches, batch_size = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    cache = EmbeddingCache(FP, root)
    for b in range(batches):
        texts = texts_of(prefix, b, batch_size)
        cache.add(texts, vectors_of(texts))
        print(f"ACK {b}", flush=True)


if __name__ == "__main__":
    main()
