"""The per-collection fusion choice as a serving collection makes it (issue 25): ``HybridCollection.choose_fusion``.

    python -m experiments.fusion_choice_serving [--seeds 0] [--sizes 10000 100000] [--out runs/fusion_choice_serving.json]

Two parts:

- **Agreement on dev collections** (SciFact, NFCorpus, MS MARCO as in ``experiments.fusion_choice``): each corpus goes
  into an in-memory Chroma collection with the default checkpoint's document vectors (from the verified precomputed
  base vectors) wrapped in a HybridCollection, and ``choose_fusion("auto", seed=s)`` chooses from the lexical
  store's sample with the serving sides (Chroma's top k, the maintained moments, tantivy). Its weight is set beside
  the exact sides' choice of ``benchmarks/results/fusion_choice.json`` and scored on dev through ``hybrid_query``.
  Pseudo-queries and targets are encoded by MPNet (bf16 where native) through the base-vector cache.
- **Cost by size**: collections of recombined BEIR text (``experiments.scale.make_docs``), ``choose_fusion`` timed
  with a stand-in embedding function (random unit vectors: the encoding is the fixed 2 x n_queries texts, measured
  apart in ``fusion_choice.md``), so what is left is what grows with the collection.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks._support import cpu_model

ROOT = Path(__file__).resolve().parent.parent


def _collection(name: str, ids, texts, vectors, ef, client):
    from jepa_rag.chroma_hybrid import HybridCollection

    col = client.create_collection(name, embedding_function=ef, configuration={"hnsw": {"space": "cosine"}})
    hc = HybridCollection(client, col)
    for i in range(0, len(ids), 1000):
        hc.add(ids=list(ids[i:i + 1000]), documents=list(texts[i:i + 1000]),
               embeddings=np.asarray(vectors[i:i + 1000], dtype=np.float32))
    return hc


def agreement(seeds: list[int], log=print) -> list[dict]:
    import chromadb

    from experiments.fusion_choice import load, pseudo_encoder
    from jepa_rag import JEPAEncoder, evaluate_run
    from jepa_rag.chroma import JEPAEmbeddingFunction

    exact = json.loads((ROOT / "benchmarks" / "results" / "fusion_choice.json").read_text())
    enc = JEPAEncoder.from_pretrained("default", precision="fp32")
    penc = pseudo_encoder()
    ef = JEPAEmbeddingFunction("default", precision=penc.precision)
    client = chromadb.EphemeralClient()
    rows = []
    loaded: dict = {}
    for name in ("scifact", "nfcorpus", "msmarco"):
        col = loaded[name] = load(name, enc, loaded)
        hc = _collection(f"fc-{name}", col.ids, col.texts, col.doc_vectors, ef, client)
        dev = col.splits["dev"]
        for seed in seeds:
            t = time.perf_counter()
            choice = hc.choose_fusion("auto", seed=seed, force=True)
            secs = time.perf_counter() - t
            choices = exact["collections"].get(name, {}).get("choices", [])
            exact_w = choices[seed]["lexical_weight"] if seed < len(choices) else None  # seeds 0, 1, 2 in order
            # dev through the serving path at the chosen weight (queries' vectors from the same encoder)
            qtexts = [dev_query for dev_query in _dev_queries(name, dev)]
            qvec = enc.apply_heads(enc.embed_base(qtexts), "query")
            run = {}
            for start in range(0, len(qtexts), 64):
                res = hc.hybrid_query(qtexts[start:start + 64], 10, query_embeddings=qvec[start:start + 64])
                for q, ids_, scores in zip(dev.query_ids[start:start + 64], res["ids"], res["scores"]):
                    run[q] = dict(zip(ids_, map(float, scores)))
            ndcg = evaluate_run(dev.qrels, run, ignore_identical_ids=name != "msmarco")["metrics"]["ndcg@10"]
            row = {"collection": name, "seed": seed, "serving_chosen": choice.lexical_weight,
                   "serving_best": choice.best_weight, "p_value": choice.p_value, "n_queries": choice.n_queries,
                   "exact_chosen": exact_w, "dev_ndcg10_serving_at_chosen": round(ndcg, 4), "seconds": round(secs, 1),
                   "reason": choice.reason}
            log(json.dumps(row))
            rows.append(row)
    return rows


def _dev_queries(name: str, dev) -> list[str]:
    from jepa_rag.data import beir_folder, load_beir, load_msmarco_pairs

    if name == "msmarco":
        pairs = load_msmarco_pairs()
        by_id = dict(zip(pairs.query_ids, pairs.queries))
    else:
        by_id = load_beir(beir_folder(name), {"scifact": "train", "nfcorpus": "dev"}[name]).queries
    return [by_id[q] for q in dev.query_ids]


class _StandIn:
    """An embedding function of random unit vectors with a query route (the cost of encoding is left out)."""

    def __init__(self):
        self.rng = np.random.default_rng(0)

    def _vecs(self, texts):
        v = self.rng.normal(size=(len(texts), 768)).astype(np.float32)
        return list(v / np.linalg.norm(v, axis=1, keepdims=True))

    def __call__(self, input):  # noqa: A002 (chromadb's name)
        return self._vecs(input)

    def embed_query(self, input):  # noqa: A002
        return self._vecs(input)


def cost(sizes: list[int], log=print) -> list[dict]:
    import chromadb

    from experiments.scale import _sources, make_docs

    texts, vecs, _, _ = _sources()
    out = []
    for n in sizes:
        with tempfile.TemporaryDirectory(dir=ROOT / "runs") as work:
            client = chromadb.PersistentClient(path=work)
            from jepa_rag.chroma_hybrid import HybridCollection

            col = client.create_collection(f"cost-{n}", configuration={"hnsw": {"space": "cosine"}})
            hc = HybridCollection(client, col)
            t = time.perf_counter()
            for start in range(0, n, 1000):
                ids, docs, embs, metas = make_docs(start, min(start + 1000, n), texts, vecs)
                hc.add(ids=ids, documents=docs, embeddings=embs, metadatas=metas)
            build = time.perf_counter() - t
            timings = []
            for seed in (0, 1, 2):
                t = time.perf_counter()
                choice = hc.choose_fusion("auto", embedding_function=_StandIn(), seed=seed, force=True)
                timings.append(time.perf_counter() - t)
            row = {"documents": n, "choose_seconds": [round(x, 2) for x in timings],
                   "n_queries": choice.n_queries, "build_seconds": round(build, 1)}
            log(json.dumps(row))
            out.append(row)
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seeds", type=int, nargs="*", default=[0])
    p.add_argument("--sizes", type=int, nargs="*", default=[10_000, 100_000])
    p.add_argument("--out", type=Path, default=ROOT / "runs" / "fusion_choice_serving.json")
    args = p.parse_args()
    (ROOT / "runs").mkdir(exist_ok=True)
    res = json.loads(args.out.read_text()) if args.out.exists() else {}  # a part not re-run keeps its rows
    res["cpu"] = cpu_model()
    if args.sizes:
        res["cost"] = cost(args.sizes)
        args.out.write_text(json.dumps(res, indent=1))
    if args.seeds:
        res["agreement"] = agreement(args.seeds)
    args.out.write_text(json.dumps(res, indent=1))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
