"""One meaning of "score": the same query and document give the same number, their cosine similarity along the
query and document routes, in LlamaIndex, LangChain and Chroma."""

from __future__ import annotations

import numpy as np
import pytest

QUERY = "how do plants make sugar?"
DOCS = {"photo": "Photosynthesis turns light, water and carbon dioxide into glucose.",
        "volcano": "Volcanoes erupt when magma reaches the surface."}


@pytest.fixture(scope="module")
def collection_setup(tmp_path_factory, predictor_checkpoint, minilm_dir):
    import chromadb

    from jepa_rag.chroma import JEPAEmbeddingFunction, get_or_create_collection

    path = tmp_path_factory.mktemp("scores")
    ef = JEPAEmbeddingFunction(predictor_checkpoint, base_model=minilm_dir, precision="fp32")
    client = chromadb.PersistentClient(path=str(path))
    get_or_create_collection(client, "scores", ef).add(ids=list(DOCS), documents=list(DOCS.values()))
    q = ef.encoder.encode_queries([QUERY])[0]
    d = ef.encoder.encode_documents(list(DOCS.values()))
    cosine = {i: float(v @ q / (np.linalg.norm(v) * np.linalg.norm(q))) for i, v in zip(DOCS, d)}
    return client, ef, cosine


def test_chroma_llamaindex_and_langchain_agree_on_the_cosine(collection_setup, predictor_checkpoint, minilm_dir):
    from llama_index.core import VectorStoreIndex

    from jepa_rag.chroma import get_or_create_collection
    from langchain_jepa_rag import JEPAEmbeddings, jepa_chroma_vectorstore
    from llama_index.embeddings.jepa_rag import JEPAEmbedding
    from llama_index.vector_stores.jepa_rag import jepa_chroma_vector_store

    client, ef, cosine = collection_setup
    res = get_or_create_collection(client, "scores", ef).query(query_texts=[QUERY], n_results=2)
    chroma = {i: 1.0 - d for i, d in zip(res["ids"][0], res["distances"][0])}

    embed = JEPAEmbedding(checkpoint=predictor_checkpoint, base_model=minilm_dir, precision="fp32")
    store = jepa_chroma_vector_store(client, "scores", embed)
    nodes = VectorStoreIndex.from_vector_store(store, embed_model=embed).as_retriever(similarity_top_k=2).retrieve(QUERY)
    llamaindex = {n.node.node_id: n.score for n in nodes}

    embeddings = JEPAEmbeddings(str(predictor_checkpoint), base_model=str(minilm_dir), precision="fp32")
    pairs = jepa_chroma_vectorstore("scores", embeddings, client=client).similarity_search_with_relevance_scores(
        QUERY, k=2)
    langchain = {doc.id: score for doc, score in pairs}

    for name, got in (("chroma", chroma), ("llamaindex", llamaindex), ("langchain", langchain)):
        assert set(got) == set(DOCS), name
        for i in DOCS:
            assert got[i] == pytest.approx(max(0.0, cosine[i]), abs=1e-4), (name, i, got[i], cosine[i])
    assert cosine["photo"] > cosine["volcano"]


def test_reopening_a_store_without_an_embed_model_never_falls_back_to_openai(collection_setup, monkeypatch):
    from llama_index.core import Settings, VectorStoreIndex

    from llama_index.embeddings.jepa_rag import JEPAEmbedding

    from llama_index.vector_stores.jepa_rag import jepa_chroma_vector_store

    client, ef, cosine = collection_setup
    monkeypatch.setattr(Settings, "_embed_model", None)
    store = jepa_chroma_vector_store(client, "scores")  # the checkpoint the collection was built with
    assert isinstance(store.embed_model, JEPAEmbedding)
    assert store.embed_model.checkpoint == ef.checkpoint
    hits = VectorStoreIndex.from_vector_store(store).as_retriever(similarity_top_k=1).retrieve(QUERY)
    assert hits[0].node.node_id == "photo"
    assert hits[0].score == pytest.approx(cosine["photo"], abs=2e-3)  # bf16 or fp32, whichever 'auto' picked here


def test_langchain_embeddings_take_the_checkpoint_positionally(predictor_checkpoint, minilm_dir):
    from langchain_jepa_rag import JEPAEmbeddings

    a = JEPAEmbeddings(str(predictor_checkpoint), base_model=str(minilm_dir))
    b = JEPAEmbeddings(checkpoint=str(predictor_checkpoint), base_model=str(minilm_dir))
    assert a.checkpoint == b.checkpoint and a.encoder is b.encoder
    assert JEPAEmbeddings(checkpoint=None, base_model=str(minilm_dir)).checkpoint == "none"


def test_langchain_store_over_an_l2_collection_warns(tmp_path, predictor_checkpoint, minilm_dir):
    import chromadb

    from jepa_rag.chroma import JEPAEmbeddingFunction
    from langchain_jepa_rag import JEPAEmbeddings, jepa_chroma_vectorstore

    client = chromadb.PersistentClient(path=str(tmp_path))
    ef = JEPAEmbeddingFunction(predictor_checkpoint, base_model=minilm_dir)
    client.create_collection("l2-notes", embedding_function=ef, configuration={"hnsw": {"space": "l2"}})
    with pytest.warns(UserWarning, match="'l2' space"):
        jepa_chroma_vectorstore("l2-notes", JEPAEmbeddings(str(predictor_checkpoint), base_model=str(minilm_dir)),
                                client=client)
