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
    with pytest.raises(InvalidInputError, match="duplicate"):
        HybridRetriever(minilm_encoder, ["a", "a"], CORPUS[:2])
    with pytest.raises(InvalidInputError, match="ids differ"):
        HybridRetriever(minilm_encoder, IDS[:1], CORPUS[:1], lexical=LexicalIndex(["x"], ["y z"]))
    with pytest.raises(InvalidInputError):
        retriever.retrieve("cats")
    with pytest.raises(InvalidInputError, match="k must be"):
        retriever.retrieve(["cats"], k=0)


def test_empty_corpus(minilm_encoder):
    assert HybridRetriever(minilm_encoder, [], []).retrieve(["cats"], k=3) == [[]]
