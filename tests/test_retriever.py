import numpy as np
import pytest

from jepa_rag import Fusion, HybridRetriever, InvalidInputError, LexicalIndex, fusion_of

from .helpers import DOCS

IDS = list(DOCS)
CORPUS = [{"title": t, "text": x} for t, x in DOCS.values()]


@pytest.fixture(scope="module")
def retriever(minilm_encoder):
    return HybridRetriever(minilm_encoder, IDS, CORPUS, fusion=Fusion(lexical_weight=0.3))


def test_retrieve_ranks_fused_scores_best_first(retriever):
    res = retriever.retrieve(["which pets purr?", "moon and ocean tides"], k=3)
    assert [hits[0][0] for hits in res] == ["007", "13"]
    for hits in res:
        assert len(hits) == 3 and [s for _, s in hits] == sorted((s for _, s in hits), reverse=True)
    assert len(retriever.retrieve(["cats"], k=100)[0]) == len(IDS)


def test_weights_zero_and_one_are_dense_and_bm25(minilm_encoder, retriever):
    query = ["a drink of leaves steeped in water"]
    dense_only = HybridRetriever(minilm_encoder, IDS, CORPUS, fusion=Fusion(lexical_weight=0.0),
                                 lexical=retriever.lexical)
    d, _ = retriever.scores(query)
    best_dense = [IDS[i] for i in (-d[0]).argsort()[:3]]
    assert [i for i, _ in dense_only.retrieve(query, k=3)[0]] == best_dense
    bm25_only = HybridRetriever(minilm_encoder, IDS, CORPUS, fusion=Fusion(lexical_weight=1.0),
                                lexical=retriever.lexical)
    assert bm25_only.retrieve(query, k=1)[0][0][0] == retriever.lexical.search(query, k=1)[0][0][0]


def test_default_fusion_comes_from_the_checkpoint(minilm_encoder):
    r = HybridRetriever(minilm_encoder, IDS[:2], CORPUS[:2])
    assert r.fusion == fusion_of(None)


def test_bad_input_is_refused(minilm_encoder, retriever):
    with pytest.raises(InvalidInputError, match="differ in length"):
        HybridRetriever(minilm_encoder, IDS[:2], CORPUS)
    assert HybridRetriever(minilm_encoder, ["a", "a"], CORPUS[:2]).ids == ["a"]  # the first wins, with a warning
    with pytest.raises(InvalidInputError, match="ids differ"):
        HybridRetriever(minilm_encoder, IDS[:1], CORPUS[:1], lexical=LexicalIndex(["x"], ["y z"]))
    with pytest.raises(InvalidInputError):
        retriever.retrieve("cats")
    with pytest.raises(InvalidInputError, match="k must be"):
        retriever.retrieve(["cats"], k=0)


def test_empty_corpus(minilm_encoder):
    assert HybridRetriever(minilm_encoder, [], []).retrieve(["cats"], k=3) == [[]]


# ------------------------------------------------------------------------------------------------ choose_fusion
def _dev(dense, lexical, qrels, name="dev"):
    from jepa_rag.retriever import DevScores

    docs = [f"d{j}" for j in range(np.asarray(dense).shape[1])]
    return DevScores(name, np.asarray(dense, float), np.asarray(lexical, float), [f"q{i}" for i in range(len(qrels))],
                     docs, qrels, ignore_identical_ids=False)


def test_choose_fusion_keeps_the_prior_unless_the_choice_wins_significantly():
    from jepa_rag.retriever import choose_fusion

    prior = Fusion(lexical_weight=0.25)
    # every weight ranks the one judged document first: all tie, so the grid's first entry (dense only) "wins"
    tie = _dev([[0.9, 0.1, 0.0]] * 4, [[5.0, 1.0, 0.0]] * 4, {f"q{i}": {"d0": 1} for i in range(4)})
    chosen, record = choose_fusion([tie], prior=prior, p_value=0.05)
    assert chosen == prior and record["guard"]["kept_choice"] is False
    assert choose_fusion([tie])[0].lexical_weight == 0.0  # without the guard: the tie's first entry
    # BM25 finds what dense misses on every one of 30 queries: the choice beats the prior by far
    rng = np.random.default_rng(0)
    dense = rng.normal(size=(30, 50))
    lexical = np.zeros((30, 50))
    qrels = {}
    for i in range(30):
        target = int(np.argmin(dense[i]))
        lexical[i, target] = 10.0
        qrels[f"q{i}"] = {f"d{target}": 1}
    chosen, record = choose_fusion([_dev(dense, lexical, qrels)], prior=Fusion(lexical_weight=0.0), p_value=0.05)
    assert chosen.lexical_weight >= 0.5 and record["guard"]["kept_choice"] is True
