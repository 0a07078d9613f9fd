"""A collection's own lexical weight: chosen from its documents, stored with it, read by every later process."""

from __future__ import annotations

import json

import numpy as np
import pytest

from jepa_rag.errors import InvalidInputError
from jepa_rag.fusion_choice import FusionChoice, store_lexical_side
from jepa_rag.lexical_store import LexicalStore, tokenize

from ..test_fusion_choice import corpus

chromadb = pytest.importorskip("chromadb")


@pytest.fixture(scope="module")
def ef(predictor_checkpoint, minilm_dir):
    from jepa_rag.chroma import JEPAEmbeddingFunction

    return JEPAEmbeddingFunction(predictor_checkpoint, base_model=minilm_dir)


def _texts(n: int):
    ids, docs = corpus(n)
    return ids, [(d["title"] + ". " if d["title"] else "") + d["text"] for d in docs]


def _store(ids, texts) -> LexicalStore:
    store = LexicalStore(None)
    store.begin({})
    store.commit({i: (t, None, None) for i, t in zip(ids, texts)}, {}, writer="test", has_vectors=False)
    store.sync()
    return store


def test_store_side_scores_a_target_as_the_engine_scores_the_same_text():
    ids, texts = _texts(30)
    store = _store(ids, texts)
    queries = ["gamma delta doc3 doc3", "omicron doc7"]
    side = store_lexical_side(store, texts)(queries, [texts[3], texts[7]], 5)
    for q, want in enumerate(["d3", "d7"]):
        found = dict(side.top[q])
        assert side.top[q][0][0] == want
        assert side.target[q] == pytest.approx(found[want], rel=0.02)  # tantivy stores lengths quantised
    assert (side.std > 0).all() and (side.mean > 0).all()


def test_a_store_sample_is_seeded_uniform_and_reads_only_the_sample():
    ids, texts = _texts(400)
    store = _store(ids, texts)
    a, b = store.sample(50, seed=1), store.sample(50, seed=2)
    assert a == store.sample(50, seed=1) and set(a) != set(b)
    assert 20 <= len(a) <= 100 and all(a[i][0] == texts[ids.index(i)] for i in a)
    assert set(store.sample(500)) == set(ids)
    assert store.sample(0) == {} and LexicalStore(None).sample(5) == {}
    # uniform: every document turns up across seeds
    seen = set().union(*(store.sample(40, seed=s) for s in range(60)))
    assert len(seen) > 0.9 * len(ids)


def test_choose_fusion_stores_the_weight_with_the_collection(tmp_path, ef):
    from jepa_rag.chroma_hybrid import FUSION_KEY, hybrid_collection

    ids, texts = _texts(90)
    col = hybrid_collection(chromadb.PersistentClient(path=str(tmp_path / "db")), "fusion-choice", ef)
    col.add(ids=ids, documents=texts)
    prior = col.fusion.lexical_weight
    assert col.fusion_choice is None

    choice = col.choose_fusion("auto", n_queries=40)
    assert isinstance(choice, FusionChoice) and choice.mode == "auto" and choice.documents == 90
    assert choice.n_queries >= 30 and len(choice.per_weight) >= 21 and choice.prior_weight == prior
    assert col.fusion.lexical_weight == choice.lexical_weight
    stored = json.loads(col.metadata[FUSION_KEY])
    assert stored["lexical_weight"] == choice.lexical_weight and stored["reason"] == choice.reason

    # another process (a fresh client) reads the same choice; an unchanged collection keeps it without work
    again = hybrid_collection(chromadb.PersistentClient(path=str(tmp_path / "db")), "fusion-choice", ef)
    assert again.fusion_choice == choice and again.fusion.lexical_weight == choice.lexical_weight
    assert again.choose_fusion("auto") == choice

    fixed = again.choose_fusion(0.6)
    assert fixed.mode == "fixed" and again.fusion.lexical_weight == 0.6 and "by the user" in fixed.reason
    assert again.choose_fusion("checkpoint").lexical_weight == prior == again.fusion.lexical_weight
    assert again.hybrid_query(["gamma delta doc3"], 3)["ids"][0]
    for bad in ("best", 1.5, True, None):
        with pytest.raises(InvalidInputError, match="choose_fusion"):
            again.choose_fusion(bad)


def test_a_damaged_stored_choice_is_ignored_with_one_warning(ef):
    from jepa_rag.chroma_hybrid import FUSION_KEY, hybrid_collection

    col = hybrid_collection(chromadb.EphemeralClient(), "fusion-damaged", ef)
    col.add(ids=["a", "b"], documents=["one text", "another text"])
    prior = col.fusion.lexical_weight
    col.collection.modify(metadata={FUSION_KEY: "{not json"})
    fresh = hybrid_collection(col._client, "fusion-damaged", ef)
    with pytest.warns(RuntimeWarning, match="damaged"):
        assert fresh.fusion.lexical_weight == prior
    # too few documents for evidence: the checkpoint's weight, said why
    choice = fresh.choose_fusion("auto")
    assert choice.lexical_weight == prior and "too little evidence" in choice.reason


def test_the_dense_side_matches_brute_force_cosine(ef):
    from jepa_rag.chroma_hybrid import hybrid_collection
    from jepa_rag.fusion_choice import store_dense_side

    ids, texts = _texts(40)
    col = hybrid_collection(chromadb.EphemeralClient(), "fusion-dense", ef)
    col.add(ids=ids, documents=texts)
    docs = np.asarray(ef(texts), dtype=np.float64)
    docs /= np.linalg.norm(docs, axis=1, keepdims=True)
    side = store_dense_side(col.collection.query, lambda q: np.asarray(ef.embed_query(q)),
                            lambda t: np.asarray(ef(t)), col.lexical_index().moments)
    s = side(["gamma delta doc3"], [texts[3]], 5)
    q = np.asarray(ef.embed_query(["gamma delta doc3"]), dtype=np.float64)[0]
    q /= np.linalg.norm(q)
    scores = docs @ q
    assert s.mean[0] == pytest.approx(scores.mean(), abs=1e-4)
    assert s.std[0] == pytest.approx(scores.std(), abs=1e-4)
    assert s.target[0] == pytest.approx(scores[3], abs=1e-4)
    assert [i for i, _ in s.top[0]] == [ids[j] for j in np.argsort(-scores)[:5]]
    assert tokenize(["Gamma"]) == [["gamma"]]
