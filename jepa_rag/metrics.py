"""Retrieval metrics through pytrec_eval (BEIR's evaluator), exact search, and paired significance tests."""

from __future__ import annotations

import numpy as np
import pytrec_eval
from scipy import stats

from .encoder import similarity
from .errors import InvalidInputError
from .fusion import best_indices

Run = dict[str, dict[str, float]]
Qrels = dict[str, dict[str, int]]


def exact_search(
    q_emb: np.ndarray, query_ids: list[str], d_emb: np.ndarray, doc_ids: list[str], *,
    scoring: str = "cosine", top_k: int = 1000, batch: int = 256,
) -> Run:
    """Score every query against every document; keep the ``top_k`` best per query (ties: corpus order)."""
    if len(q_emb) != len(query_ids) or len(d_emb) != len(doc_ids):
        raise InvalidInputError("exact_search: embeddings and ids differ in length")
    k = min(top_k, len(doc_ids))
    run: Run = {}
    for start in range(0, len(query_ids), batch):
        scores = similarity(q_emb[start:start + batch], d_emb, scoring)
        for row, qid in enumerate(query_ids[start:start + batch]):
            run[qid] = {doc_ids[j]: float(scores[row, j]) for j in best_indices(scores[row], k)}
    return run


def evaluate_run(qrels: Qrels, run: Run, *, ignore_identical_ids: bool = True) -> dict:
    """NDCG@10, Recall@100 and MRR@10 (pytrec_eval), averaged over the judged queries, plus per-query values.

    ``ignore_identical_ids`` drops a document whose id equals the query's (BEIR's rule, for data sets where
    queries are also documents). Queries with judgments but no retrieved documents count as 0.
    """
    if ignore_identical_ids:
        run = {q: {d: s for d, s in docs.items() if d != q} for q, docs in run.items()}
    qrels = {q: {d: int(g) for d, g in rel.items()} for q, rel in qrels.items()}
    full = pytrec_eval.RelevanceEvaluator(qrels, {"ndcg_cut.10", "recall.100"}).evaluate(run)
    top10 = {q: dict(sorted(docs.items(), key=lambda kv: (-kv[1], kv[0]))[:10]) for q, docs in run.items()}
    rr = pytrec_eval.RelevanceEvaluator(qrels, {"recip_rank"}).evaluate(top10)
    per_query: dict[str, dict[str, float]] = {"ndcg@10": {}, "recall@100": {}, "mrr@10": {}}
    for qid in qrels:
        per_query["ndcg@10"][qid] = full.get(qid, {}).get("ndcg_cut_10", 0.0)
        per_query["recall@100"][qid] = full.get(qid, {}).get("recall_100", 0.0)
        per_query["mrr@10"][qid] = rr.get(qid, {}).get("recip_rank", 0.0)
    means = {m: float(np.mean(list(v.values()))) if v else 0.0 for m, v in per_query.items()}
    return {"metrics": means, "per_query": per_query, "num_queries": len(qrels)}


def paired_test(a: dict[str, float], b: dict[str, float]) -> dict:
    """Two-sided paired tests over the queries both dicts share: t-test and Wilcoxon signed-rank.

    Returns the mean difference (a − b), both p-values and the number of queries. Identical inputs give p = 1.
    """
    common = sorted(set(a) & set(b))
    if not common:
        raise InvalidInputError("paired_test: the two runs share no query")
    x = np.array([a[q] for q in common])
    y = np.array([b[q] for q in common])
    diff = x - y
    if np.allclose(diff, 0):
        return {"mean_diff": 0.0, "p_ttest": 1.0, "p_wilcoxon": 1.0, "n": len(common)}
    p_t = float(stats.ttest_rel(x, y).pvalue)
    nz = diff[diff != 0]
    p_w = float(stats.wilcoxon(nz).pvalue) if len(nz) > 0 else 1.0
    return {"mean_diff": float(diff.mean()), "p_ttest": p_t, "p_wilcoxon": p_w, "n": len(common)}
