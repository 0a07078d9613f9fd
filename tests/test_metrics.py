import math

import numpy as np
import pytest

from jepa_rag import evaluate_run, exact_search, paired_test

QRELS = {"q1": {"d1": 1, "d2": 1}, "q2": {"d3": 2, "d4": 1}, "q3": {"d9": 1}}
RUN = {
    "q1": {"d1": 0.9, "x": 0.8, "d2": 0.7},        # relevant at ranks 1 and 3
    "q2": {"y": 0.9, "d4": 0.8, "d3": 0.1},        # grade 1 at rank 2, grade 2 at rank 3
    "q3": {"q3": 1.0, "z": 0.5},                    # only itself (ignored) and a miss
}


def test_metrics_hand_checked():
    res = evaluate_run(QRELS, RUN, ignore_identical_ids=True)
    pq = res["per_query"]
    # q1: DCG = 1 + 1/log2(4); IDCG = 1 + 1/log2(3)
    assert pq["ndcg@10"]["q1"] == pytest.approx((1 + 0.5) / (1 + 1 / math.log2(3)), rel=1e-6)
    # q2 (trec_eval uses the grade as gain): DCG = 1/log2(3) + 2/log2(4); IDCG = 2 + 1/log2(3)
    assert pq["ndcg@10"]["q2"] == pytest.approx((1 / math.log2(3) + 1) / (2 + 1 / math.log2(3)), rel=1e-6)
    assert pq["ndcg@10"]["q3"] == 0.0
    assert pq["mrr@10"] == {"q1": 1.0, "q2": 0.5, "q3": 0.0}
    assert pq["recall@100"] == {"q1": 1.0, "q2": 1.0, "q3": 0.0}
    assert res["metrics"]["mrr@10"] == pytest.approx(0.5)
    assert res["num_queries"] == 3


def test_identical_ids_are_ignored():
    qrels = {"q3": {"q3": 1}}
    assert evaluate_run(qrels, RUN, ignore_identical_ids=True)["metrics"]["ndcg@10"] == 0.0
    assert evaluate_run(qrels, RUN, ignore_identical_ids=False)["metrics"]["ndcg@10"] == 1.0


def test_mrr_is_cut_at_10():
    run = {"q": {f"n{i}": 1.0 - i / 100 for i in range(10)} | {"rel": 0.0}}
    assert evaluate_run({"q": {"rel": 1}}, run)["metrics"]["mrr@10"] == 0.0


def test_matches_beir_evaluator():
    from beir.retrieval.evaluation import EvaluateRetrieval

    ndcg, _map, recall, _p = EvaluateRetrieval.evaluate(QRELS, RUN, [10, 100], ignore_identical_ids=True)
    ours = evaluate_run(QRELS, RUN)["metrics"]
    assert ours["ndcg@10"] == pytest.approx(ndcg["NDCG@10"], abs=1e-4)
    assert ours["recall@100"] == pytest.approx(recall["Recall@100"], abs=1e-4)


def test_exact_search_cosine_and_euclidean():
    q = np.array([[1.0, 0.0]])
    d = np.array([[2.0, 0.0], [0.0, 1.0], [0.9, 0.1]])
    run = exact_search(q, ["q"], d, ["a", "b", "c"], scoring="cosine", top_k=2)
    assert set(run["q"]) == {"a", "c"} and run["q"]["a"] == pytest.approx(1.0)
    run = exact_search(q, ["q"], d, ["a", "b", "c"], scoring="euclidean", top_k=1)
    assert set(run["q"]) == {"c"}


def test_paired_test():
    a = {f"q{i}": 0.5 + 0.01 * (i % 3) for i in range(50)}
    assert paired_test(a, a)["p_ttest"] == 1.0
    b = {q: v - 0.1 for q, v in a.items()}
    b["q0"] += 0.05
    res = paired_test(a, b)
    assert res["p_ttest"] < 1e-6 and res["mean_diff"] > 0 and res["n"] == 50
