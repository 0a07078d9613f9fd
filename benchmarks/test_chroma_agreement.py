"""Retrieval through Chroma (HNSW, cosine space) must agree with exact search for the same checkpoint.

SciFact test, the shipped default checkpoint: NDCG@10 from the Chroma collection's top-100 must be within 0.005
of :func:`jepa_rag.evaluate.evaluate_beir`'s exact search. Precomputed base embeddings stand in for the base
encoder (imported only after verification), so this measures Chroma + heads, not MPNet's speed.
"""

from __future__ import annotations

import json

import pytest

from benchmarks._support import output_dir
from jepa_rag import JEPAEncoder, evaluate_run, load_beir
from jepa_rag.data import beir_folder
from jepa_rag.encoder import DEFAULT_CHECKPOINT
from jepa_rag.evaluate import evaluate_beir



def test_chroma_hnsw_agrees_with_exact_search(mpnet, tmp_path, benchmark):
    chromadb = pytest.importorskip("chromadb", reason="chromadb not installed (pip install 'jepa-rag[chroma]')")
    from jepa_rag.chroma import JEPAEmbeddingFunction, get_or_create_collection, ingest

    checkpoint = "default" if DEFAULT_CHECKPOINT.is_dir() else "none"
    exact = evaluate_beir(JEPAEncoder.from_pretrained(checkpoint, precision="fp32"), "scifact")  # also imports the base vectors
    ds = load_beir(beir_folder("scifact"), "test")
    ids, texts = ds.corpus_texts()
    client = chromadb.PersistentClient(path=str(tmp_path / "chroma"))
    collection = get_or_create_collection(client, "scifact", JEPAEmbeddingFunction(checkpoint, precision="fp32"))
    ingest(collection, ids, texts, batch_size=512)
    qids = list(ds.queries)

    def search():
        res = collection.query(query_texts=[ds.queries[q] for q in qids], n_results=100, include=["distances"])
        return {q: {d: 1.0 - dist for d, dist in zip(res["ids"][i], res["distances"][i])} for i, q in enumerate(qids)}

    run = benchmark.pedantic(search, rounds=1, iterations=1)
    via_chroma = evaluate_run(ds.qrels, run)["metrics"]
    row = {"checkpoint": checkpoint, "exact": exact["metrics"], "chroma_hnsw": via_chroma,
           "ndcg@10_diff": via_chroma["ndcg@10"] - exact["metrics"]["ndcg@10"]}
    (output_dir() / "chroma_agreement.json").write_text(json.dumps(row, indent=2))
    benchmark.extra_info.update(row)
    assert collection.count() == len(ids)
    assert abs(row["ndcg@10_diff"]) <= 0.005, row
