"""The serving path of hybrid retrieval (a Chroma collection + its BM25 index, ``HybridCollection.hybrid_query``)
against the exact retriever, on BEIR, with the default checkpoint's stored fusion.

    python -m experiments.hybrid_serving [--split dev|test] [--depths 30 50] [--out runs/hybrid_serving_<split>.json]

The serving path sees only each side's top ``depth`` candidates. It normalises them with the whole collection's
score statistics (the dense side's from the first two moments of the stored vectors, BM25's exact over its top
``depth`` plus an estimate from document frequencies for the rest: :mod:`jepa_rag.lexical_store`), which is what
the exact retriever does over the whole corpus, so it should rank alike; the candidate-list normalisation is scored
too. BM25 alone is scored both ways (bm25s over every document vs the collection's tantivy store). Per set, paired
tests over the queries (t-test and Wilcoxon) compare the store's BM25 with bm25s and the serving path with the exact
retriever.
``dev`` = SciFact ``qrels/train.tsv`` + NFCorpus ``qrels/dev.tsv``. Base vectors: the verified precomputed files;
the collection is an in-memory Chroma.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import chromadb

from jepa_rag.chroma import JEPAEmbeddingFunction, get_or_create_collection
from jepa_rag.chroma_hybrid import HybridCollection
from jepa_rag import JEPAEncoder, LexicalIndex, evaluate_run
from jepa_rag.data import beir_folder, load_beir
from jepa_rag.fusion import fusion_of
from jepa_rag.metrics import paired_test
from jepa_rag.precomputed import import_beir_embeddings
from jepa_rag.retriever import HybridRetriever

SPLITS = {"dev": {"scifact": "train", "nfcorpus": "dev"}, "test": {"scifact": "test", "nfcorpus": "test"}}


def run(split: str, depths: list[int]) -> dict:
    encoder = JEPAEncoder.from_pretrained("default", precision="fp32")
    fusion = fusion_of(encoder.checkpoint_path)
    out: dict = {"split": split, "fusion": fusion.to_dict(), "sets": {}}
    for name, ds_split in SPLITS[split].items():
        folder = beir_folder(name)
        ds = load_beir(folder, ds_split)
        import_beir_embeddings(encoder, folder, "auto")
        ids, texts = ds.corpus_texts()
        qids = list(ds.queries)
        queries = [ds.queries[q] for q in qids]
        docs = encoder.apply_heads(encoder.embed_base(texts), "document")
        qvecs = encoder.apply_heads(encoder.embed_base(queries), "query")
        exact = HybridRetriever(encoder, ids, texts, fusion=fusion)
        exact_run = {q: dict(hits) for q, hits in zip(qids, exact.retrieve(queries, k=100))}
        client = chromadb.EphemeralClient()
        col = get_or_create_collection(client, f"serving-{name}", JEPAEmbeddingFunction("default", precision="fp32"))
        for s in range(0, len(ids), 1000):
            col.add(ids=ids[s:s + 1000], embeddings=docs[s:s + 1000], documents=texts[s:s + 1000])
        hybrid = HybridCollection(client, col, fusion=fusion)
        bm25 = LexicalIndex(ids, texts)
        runs = {"exact": exact_run,
                "bm25_exact": {q: dict(hits) for q, hits in zip(qids, bm25.search(queries, 100))}}
        store = hybrid.lexical_index()
        tokens = store.tokenize(queries)
        runs["bm25_store"] = {}
        for q, t in zip(qids, tokens):
            hits = store.search(t, 100)
            runs["bm25_store"][q] = dict(zip(store.ids_at([a for _, _, a in hits]), [s for _, s, _ in hits]))
        runs["serving"] = _serve(hybrid, qids, queries, qvecs)
        for depth in depths:
            runs[f"serving_depth{depth}"] = _serve(hybrid, qids, queries, qvecs, depth)
        store._moments = None  # the same candidates, normalised over the candidate lists only
        runs["serving_candidate_norm"] = _serve(hybrid, qids, queries, qvecs)
        scored = {k: evaluate_run(ds.qrels, r, ignore_identical_ids=True) for k, r in runs.items()}
        out["sets"][name] = {k: v["metrics"]["ndcg@10"] for k, v in scored.items()}
        per_query = {k: v["per_query"]["ndcg@10"] for k, v in scored.items()}
        out.setdefault("paired", {})[name] = {
            f"{a} vs {b}": paired_test(per_query[a], per_query[b])
            for a, b in (("bm25_store", "bm25_exact"), ("serving", "exact"))}
        print(name, ds_split, out["sets"][name], out["paired"][name], flush=True)
    keys = list(next(iter(out["sets"].values())))
    for k in keys:
        out[f"mean_{k}"] = sum(v[k] for v in out["sets"].values()) / len(out["sets"])
    return out


def _serve(hybrid, qids, queries, qvecs, depth: int | None = None) -> dict:
    run: dict = {}
    for s in range(0, len(qids), 64):
        part = slice(s, s + 64)
        res = hybrid.hybrid_query(queries[part], n_results=10, query_embeddings=qvecs[part], depth=depth)
        run.update({q: dict(zip(i, sc)) for q, i, sc in zip(qids[part], res["ids"], res["scores"])})
    return run


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--split", choices=list(SPLITS), default="dev")
    p.add_argument("--depths", type=int, nargs="*", default=[],
                   help="also serve with these candidate depths per side (the fusion's own is 100)")
    p.add_argument("--out", default=None)
    args = p.parse_args()
    res = run(args.split, args.depths)
    out = Path(args.out or Path(__file__).resolve().parent.parent / "runs" / f"hybrid_serving_{args.split}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(res, indent=2) + "\n")
    print(json.dumps({k: v for k, v in res.items() if k.startswith("mean")}, indent=2))


if __name__ == "__main__":
    main()
