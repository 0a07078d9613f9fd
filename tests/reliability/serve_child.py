"""A long-serving process: distinct queries and document batches through the LlamaIndex adapter, as a RAG server
sees them. Run by ``test_serving_load`` under ``ulimit -n 1024``.

    python -m tests.reliability.serve_child <stub|real> <checkpoint> <base_model> <cache_dir> <queries> <documents>

``stub`` replaces the base model's forward pass with a deterministic function of the text (the cache and the
adapter are what is under test, and 100,000 MiniLM passes would take many minutes); ``real`` runs the model.
Prints ``RESULT {...}`` with the peak RSS, the open descriptors and the files under the cache folder.
"""

from __future__ import annotations

import hashlib
import json
import os
import resource
import sys
from pathlib import Path

import numpy as np


def stub_encoder(dim: int):
    def encode(texts: list[str], batch_size: int | None = None) -> np.ndarray:
        out = np.empty((len(texts), dim), np.float32)
        for i, t in enumerate(texts):
            seed = int.from_bytes(hashlib.sha256(t.encode()).digest()[:8], "little")
            out[i] = np.random.default_rng(seed).normal(size=dim)
        return out

    return encode


def main() -> None:
    mode, checkpoint, base_model, cache_dir = sys.argv[1:5]
    n_queries, n_documents = int(sys.argv[5]), int(sys.argv[6])
    from llama_index.embeddings.jepa_rag import JEPAEmbedding

    import torch

    # one query at a time is a one-row forward pass: a second intra-op thread only adds synchronisation, and on a
    # loaded 2-core box its spin-waits made each pass take ~100x longer
    torch.set_num_threads(1)
    embed = JEPAEmbedding(checkpoint=checkpoint, base_model=base_model, cache_dir=cache_dir)
    if mode == "stub":
        embed.encoder._encode_with_base = stub_encoder(embed.encoder.fingerprint.dim)
    batch = 256
    for start in range(0, max(n_queries, n_documents), batch):
        docs = [f"document {i}: a passage about topic {i % 97} and detail {i * 7919 % 10007}"
                for i in range(start, min(start + batch, n_documents))]
        if docs:
            vectors = embed.get_text_embedding_batch(docs)
            assert len(vectors) == len(docs) and np.isfinite(vectors).all()
        for i in range(start, min(start + batch, n_queries)):
            vector = embed.get_query_embedding(f"user question {i}: what about topic {i % 89}?")
            assert len(vector) == embed.encoder.dim
    files = [p for p in Path(cache_dir).rglob("*") if p.is_file()]
    print("RESULT " + json.dumps({
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "open_fds": len(os.listdir("/proc/self/fd")) if os.path.isdir("/proc/self/fd") else None,
        "cache_files": sorted(str(p.relative_to(cache_dir)) for p in files),
        "cached_vectors": len(embed.encoder.cache),
        "query_lru": len(embed.encoder._query_lru),
    }), flush=True)


if __name__ == "__main__":
    main()
