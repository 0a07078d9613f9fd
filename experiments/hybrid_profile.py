"""Where a hybrid query's time goes on a large collection (issue 21): each stage timed alone, query by query.

    python -m experiments.hybrid_profile --documents 200000 [--queries 300] [--path runs/hybrid_profile]

Builds (once; kept in ``--path``) an embedded Chroma collection of ``--documents`` recombined BEIR documents with
precomputed vectors (``experiments.scale.make_docs``, as ``python -m experiments.scale`` builds them), then times,
for ``--queries`` real BEIR queries drawn with seed 0: Chroma's top 10 (default include) and top 100 (distances
only), the lexical store's BM25 top 100, BM25 of the dense top 100 (``LexicalStore.scores_of``, which
``hybrid_query`` calls only for a BM25 list shorter than the fusion's depth) and the whole
``HybridCollection.hybrid_query``. Prints p50 / p95 in milliseconds and the CPU.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    import chromadb

    from experiments.scale import _cpu, _sources, make_docs
    from jepa_rag import lexical_store
    from jepa_rag.chroma_hybrid import HybridCollection

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--documents", type=int, default=200_000)
    p.add_argument("--queries", type=int, default=300)
    p.add_argument("--path", type=Path, default=ROOT / "runs" / "hybrid_profile")
    args = p.parse_args()
    texts, vecs, queries, qvecs = _sources()
    client = chromadb.PersistentClient(path=str(args.path / f"db{args.documents}"))
    col = client.get_or_create_collection("profile", configuration={"hnsw": {"space": "cosine"}},
                                          embedding_function=None)
    hc = HybridCollection(client, col)
    for start in range(col.count(), args.documents, 1000):  # resumes a partial build
        ids, docs, embs, metas = make_docs(start, min(start + 1000, args.documents), texts, vecs)
        hc.add(ids=ids, documents=docs, embeddings=embs, metadatas=metas)
    pick = np.random.default_rng(0).choice(len(queries), args.queries, replace=False)
    store = hc.lexical_index()
    hc.hybrid_query([queries[pick[0]]], 10, query_embeddings=qvecs[pick[:1]])
    times: dict[str, list[float]] = {k: [] for k in ("dense top 10", "dense top 100", "BM25 top 100",
                                                      "BM25 of the dense top 100", "hybrid_query")}

    def timed(name, fn, *a, **kw):
        t = time.perf_counter()
        out = fn(*a, **kw)
        times[name].append(time.perf_counter() - t)
        return out

    for i in pick:
        q, text = qvecs[i:i + 1], queries[i]
        toks = lexical_store.tokenize([text])[0]
        timed("dense top 10", col.query, query_embeddings=q, n_results=10)
        dense = timed("dense top 100", col.query, query_embeddings=q, n_results=100, include=["distances"])
        timed("BM25 top 100", store.search, toks, 100)
        timed("BM25 of the dense top 100", store.scores_of, toks, dense["ids"][0])
        timed("hybrid_query", hc.hybrid_query, [text], 10, query_embeddings=q)
    print(f"{args.documents:,} documents, {args.queries} queries, {_cpu()}")
    for name, v in times.items():
        ms = np.asarray(v) * 1000
        print(f"{name}: p50 {np.percentile(ms, 50):.2f} ms, p95 {np.percentile(ms, 95):.2f} ms")


if __name__ == "__main__":
    main()
