"""Every adapter sends queries along the query route and documents along the document route.

With the predictor checkpoint the two routes give different vectors for the same text, so comparing each adapter's
output with ``encode_queries`` / ``encode_documents`` shows which route it took.
"""

from __future__ import annotations

import numpy as np
import pytest

TEXTS = ["What is the capital of France?", "Paris is the capital of France."]


@pytest.fixture(scope="module")
def encoder(predictor_checkpoint, minilm_dir):
    from jepa_rag.adapters import load_encoder

    return load_encoder(predictor_checkpoint, minilm_dir)


@pytest.fixture(scope="module")
def expected(encoder):
    return encoder.encode_queries(TEXTS), encoder.encode_documents(TEXTS)


def test_routes_differ_with_the_predictor_checkpoint(encoder, expected):
    q, d = expected
    assert encoder.query_route == "predictor"
    assert q.shape == d.shape == (2, encoder.dim)
    assert not np.allclose(q, d, atol=1e-3)
    # the same text, two routes: related but clearly not the same vector
    cos = (q * d).sum(1) / (np.linalg.norm(q, axis=1) * np.linalg.norm(d, axis=1))
    assert (cos < 0.9999).all()


def test_llamaindex_routes(predictor_checkpoint, minilm_dir, expected):
    from llama_index.embeddings.jepa_rag import JEPAEmbedding

    q, d = expected
    emb = JEPAEmbedding(checkpoint=predictor_checkpoint, base_model=minilm_dir)
    np.testing.assert_allclose(emb.get_query_embedding(TEXTS[0]), q[0], atol=1e-5)
    np.testing.assert_allclose(emb.get_text_embedding(TEXTS[0]), d[0], atol=1e-5)
    np.testing.assert_allclose(emb.get_text_embedding_batch(TEXTS), d, atol=1e-5)


def test_langchain_routes(predictor_checkpoint, minilm_dir, expected):
    from langchain_jepa_rag import JEPAEmbeddings

    q, d = expected
    emb = JEPAEmbeddings(checkpoint=str(predictor_checkpoint), base_model=str(minilm_dir))
    np.testing.assert_allclose(emb.embed_query(TEXTS[0]), q[0], atol=1e-5)
    np.testing.assert_allclose(emb.embed_documents(TEXTS), d, atol=1e-5)


def test_chroma_routes(predictor_checkpoint, minilm_dir, expected):
    from jepa_rag.chroma import JEPAEmbeddingFunction

    q, d = expected
    ef = JEPAEmbeddingFunction(predictor_checkpoint, base_model=minilm_dir)
    np.testing.assert_allclose(np.stack(ef.embed_query(TEXTS)), q, atol=1e-5)
    np.testing.assert_allclose(np.stack(ef(TEXTS)), d, atol=1e-5)


def test_chroma_collection_queries_take_the_query_route(predictor_checkpoint, minilm_dir, expected, tmp_path):
    """chromadb itself calls ``embed_query`` for ``query_texts``: distances are 1 - cos(query route, doc route)."""
    import chromadb

    from jepa_rag.chroma import JEPAEmbeddingFunction, get_or_create_collection

    q, d = expected
    ef = JEPAEmbeddingFunction(predictor_checkpoint, base_model=minilm_dir)
    col = get_or_create_collection(chromadb.PersistentClient(str(tmp_path)), "routes", ef)
    col.add(ids=["doc"], documents=[TEXTS[1]])
    res = col.query(query_texts=[TEXTS[0]], n_results=1)
    cos = float(q[0] @ d[1] / (np.linalg.norm(q[0]) * np.linalg.norm(d[1])))
    assert res["distances"][0][0] == pytest.approx(1.0 - cos, abs=1e-4)


@pytest.mark.parametrize("framework", ["llamaindex", "langchain", "chroma"])
def test_zero_argument_construction_loads_the_default_checkpoint(monkeypatch, framework):
    """No arguments means checkpoint='default' (the one jepa-rag ships), not the vanilla model."""
    from jepa_rag import adapters
    from jepa_rag.encoder import JEPAEncoder

    calls = []

    class Stop(Exception):
        pass

    def fake_from_pretrained(checkpoint="default", **kw):
        calls.append((checkpoint, kw))
        raise Stop

    monkeypatch.setattr(adapters, "_ENCODERS", {})
    monkeypatch.setattr(JEPAEncoder, "from_pretrained", fake_from_pretrained)
    if framework == "llamaindex":
        from llama_index.embeddings.jepa_rag import JEPAEmbedding as cls
    elif framework == "langchain":
        from langchain_jepa_rag import JEPAEmbeddings as cls
    else:
        from jepa_rag.chroma import JEPAEmbeddingFunction as cls
    with pytest.raises(Stop):
        cls()
    assert calls == [("default", {"base_model": None, "device": None, "precision": "auto", "use_cache": True,
                                  "cache_dir": None, "cache_queries": False})]


@pytest.mark.parametrize("framework", ["llamaindex", "langchain", "chroma"])
def test_a_bad_checkpoint_raises_jepa_rags_own_error(tmp_path, framework):
    """Not wrapped in a pydantic ValidationError: ``except jepa_rag.JEPARagError`` keeps working."""
    from jepa_rag import CheckpointError

    if framework == "llamaindex":
        from llama_index.embeddings.jepa_rag import JEPAEmbedding as cls
    elif framework == "langchain":
        from langchain_jepa_rag import JEPAEmbeddings as cls
    else:
        from jepa_rag.chroma import JEPAEmbeddingFunction as cls
    with pytest.raises(CheckpointError, match="checkpoint not found"):
        cls(checkpoint=str(tmp_path / "missing"))
