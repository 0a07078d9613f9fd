"""LangChain: JEPAEmbeddings in a cosine-space Chroma store whose relevance scores are cosine similarities."""

from __future__ import annotations

import asyncio
import threading

import numpy as np
import pytest

from ..helpers import slow_encoder_calls, with_ticker

COLLECTION = "lc_docs"


@pytest.fixture(scope="module")
def embeddings(predictor_checkpoint, minilm_dir):
    from langchain_jepa_rag import JEPAEmbeddings

    return JEPAEmbeddings(checkpoint=str(predictor_checkpoint), base_model=str(minilm_dir), precision="fp32")


def _cos(a, b) -> float:
    a, b = np.asarray(a), np.asarray(b)
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def test_retriever_on_a_persistent_index(tmp_path, embeddings, passages, queries):
    from langchain_jepa_rag import cosine_relevance, jepa_chroma_retriever, jepa_chroma_vectorstore

    store = jepa_chroma_vectorstore(COLLECTION, embeddings, persist_directory=tmp_path)
    store.add_texts(list(passages.values()), ids=list(passages))
    assert store._collection.configuration["hnsw"]["space"] == "cosine"
    assert store._select_relevance_score_fn() is cosine_relevance

    retriever = jepa_chroma_retriever(COLLECTION, embeddings, persist_directory=tmp_path, k=2)
    top = [retriever.invoke(q) for q in queries]
    assert [docs[0].id for docs in top] == ["paris", "photosynthesis", "jupiter"]
    assert all(len(docs) == 2 for docs in top)


@pytest.mark.filterwarnings("error:Relevance scores must be between 0 and 1")
def test_relevance_scores_are_cosine_similarities(tmp_path, embeddings, passages, queries):
    """1 = same direction, as LangChain users expect; computed from the query route vs the document route."""
    from langchain_jepa_rag import jepa_chroma_vectorstore

    store = jepa_chroma_vectorstore(COLLECTION, embeddings, persist_directory=tmp_path)
    store.add_texts(list(passages.values()), ids=list(passages))
    hits = store.similarity_search_with_relevance_scores(queries[0], k=len(passages))
    q = embeddings.embed_query(queries[0])
    for doc, score in hits:
        cos = _cos(q, embeddings.embed_documents([passages[doc.id]])[0])
        assert score == pytest.approx(max(cos, 0.0), abs=1e-4)
    assert hits[0][0].id == "paris" and 0.0 < hits[0][1] <= 1.0
    assert [s for _, s in hits] == sorted((s for _, s in hits), reverse=True)
    # a document whose vector is the query vector itself scores 1
    store._collection.add(ids=["self"], embeddings=[q], documents=["the query vector itself"])
    best = store.similarity_search_with_relevance_scores(queries[0], k=1)[0]
    assert best[0].id == "self" and best[1] == pytest.approx(1.0, abs=1e-4)


def test_reopening_with_another_checkpoint_is_refused(tmp_path, embeddings, passages, other_checkpoint, minilm_dir):
    from jepa_rag.errors import EmbeddingSpaceConflictError
    from langchain_jepa_rag import JEPAEmbeddings, jepa_chroma_vectorstore

    jepa_chroma_vectorstore(COLLECTION, embeddings, persist_directory=tmp_path).add_texts(list(passages.values()))
    other = JEPAEmbeddings(checkpoint=str(other_checkpoint), base_model=str(minilm_dir))
    with pytest.raises(EmbeddingSpaceConflictError, match="different embedding spaces"):
        jepa_chroma_vectorstore(COLLECTION, other, persist_directory=tmp_path)


def test_async_methods_run_off_the_event_loop(monkeypatch, embeddings):
    threads = slow_encoder_calls(monkeypatch, embeddings.encoder)

    async def main():
        return await embeddings.aembed_query("a question"), await embeddings.aembed_documents(["one passage", "another"])

    (q, d), ticks, _ = asyncio.run(with_ticker(main()))
    assert len(q) == embeddings.encoder.dim and len(d) == 2
    assert ticks >= 15
    assert threading.get_ident() not in threads


def test_embed_documents_is_one_encoder_call(monkeypatch, embeddings):
    calls = []
    original = embeddings.encoder.encode_documents
    monkeypatch.setattr(embeddings.encoder, "encode_documents", lambda t, **kw: calls.append(list(t)) or original(t, **kw))
    assert len(embeddings.embed_documents(["a b", "c d", "e f"])) == 3
    assert calls == [["a b", "c d", "e f"]]


def test_retriever_against_a_chroma_server(chroma_server, embeddings, passages, queries, other_checkpoint,
                                           minilm_dir):
    import uuid

    import chromadb

    from jepa_rag.errors import EmbeddingSpaceConflictError
    from langchain_jepa_rag import JEPAEmbeddings, jepa_chroma_retriever, jepa_chroma_vectorstore

    host, port = chroma_server
    name = f"lc-{uuid.uuid4().hex[:12]}"
    store = jepa_chroma_vectorstore(name, embeddings, client=chromadb.HttpClient(host=host, port=port))
    store.add_texts(list(passages.values()), ids=list(passages))
    retriever = jepa_chroma_retriever(name, embeddings, client=chromadb.HttpClient(host=host, port=port), k=1)
    assert [retriever.invoke(q)[0].id for q in queries] == ["paris", "photosynthesis", "jupiter"]
    other = JEPAEmbeddings(checkpoint=str(other_checkpoint), base_model=str(minilm_dir))
    with pytest.raises(EmbeddingSpaceConflictError):
        jepa_chroma_vectorstore(name, other, client=chromadb.HttpClient(host=host, port=port))


# ------------------------------------------------------------------------------------------------ precision
def test_bf16_embeddings_are_close_to_fp32(embeddings, predictor_checkpoint, minilm_dir, passages, queries):
    from langchain_jepa_rag import JEPAEmbeddings

    fast = JEPAEmbeddings(checkpoint=str(predictor_checkpoint), base_model=str(minilm_dir), precision="bf16")
    assert fast.precision == "bf16" and fast.encoder.precision == "bf16" and fast.encoder is not embeddings.encoder
    docs = list(passages.values())
    pairs = list(zip(fast.embed_documents(docs), embeddings.embed_documents(docs)))
    pairs += [(fast.embed_query(q), embeddings.embed_query(q)) for q in queries]
    assert min(_cos(a, b) for a, b in pairs) > 0.99
    assert not all(np.array_equal(a, b) for a, b in pairs), "bf16 gave bit-identical vectors"


def test_vectorstore_passes_precision_and_it_never_conflicts(tmp_path, embeddings, predictor_checkpoint, minilm_dir,
                                                             passages, queries):
    import chromadb

    from langchain_jepa_rag import JEPAEmbeddings, jepa_chroma_retriever, jepa_chroma_vectorstore

    fast = JEPAEmbeddings(checkpoint=str(predictor_checkpoint), base_model=str(minilm_dir), precision="bf16")
    jepa_chroma_vectorstore(COLLECTION, fast, persist_directory=tmp_path).add_texts(
        list(passages.values()), ids=list(passages))
    stored = chromadb.PersistentClient(path=str(tmp_path)).get_collection(COLLECTION).configuration_json
    assert stored["embedding_function"]["config"]["precision"] == "bf16"
    retriever = jepa_chroma_retriever(COLLECTION, embeddings, persist_directory=tmp_path, k=1)  # fp32: no conflict
    assert [retriever.invoke(q)[0].id for q in queries] == ["paris", "photosynthesis", "jupiter"]


def test_unknown_precision_is_refused(predictor_checkpoint, minilm_dir):
    from jepa_rag.errors import ConfigError

    from langchain_jepa_rag import JEPAEmbeddings

    with pytest.raises(ConfigError, match=r"precision must be one of \['auto', 'fp32', 'bf16'\], got 'half'"):
        JEPAEmbeddings(checkpoint=str(predictor_checkpoint), base_model=str(minilm_dir), precision="half")


def test_an_empty_text_gets_a_vector_so_add_texts_keeps_its_batch(tmp_path, embeddings, passages, queries):
    """LangChain pairs every text with a vector: one empty text warns instead of aborting the batch."""
    from langchain_jepa_rag import jepa_chroma_vectorstore

    texts = [*passages.values(), "", "   "]
    n = len(texts)
    with pytest.warns(UserWarning, match=rf"2 of {n} documents are empty"):
        vecs = embeddings.embed_documents(texts)
    assert len(vecs) == n and np.isfinite(vecs).all()
    assert vecs[0] == pytest.approx(embeddings.embed_documents([texts[0]])[0], abs=1e-5)
    assert vecs[-2] == pytest.approx(vecs[-1], abs=1e-6)  # both the empty text's vector
    store = jepa_chroma_vectorstore(COLLECTION, embeddings, persist_directory=tmp_path)
    with pytest.warns(UserWarning, match="empty"):
        store.add_texts(texts, ids=[*passages, "blank", "spaces"])
    assert store.similarity_search(queries[0], k=1)[0].id == "paris"
    with pytest.raises(Exception, match=r"documents\[1\]: expected a string"):
        embeddings.embed_documents(["fine", None])
