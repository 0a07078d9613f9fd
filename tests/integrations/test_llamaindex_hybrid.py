"""LlamaIndex: JEPAHybridNodeRetriever over a Chroma-backed VectorStoreIndex, in a query engine (MockLLM, offline),
embedded and against a real Chroma server."""

from __future__ import annotations

import asyncio
import uuid

import pytest

pytest.importorskip("llama_index.vector_stores.chroma")
chromadb = pytest.importorskip("chromadb")

RARE = ["The zyxwv handshake resends lost frames twice.", "Quartzite ridges weather slowly in dry climates."]


@pytest.fixture(scope="module")
def embed_model(predictor_checkpoint, minilm_dir):
    from llama_index.embeddings.jepa_rag import JEPAEmbedding

    return JEPAEmbedding(predictor_checkpoint, base_model=minilm_dir)


@pytest.fixture(params=["embedded", "server"])
def placed(request, tmp_path):
    """``(client, lexical_dir)``."""
    if request.param == "embedded":
        return chromadb.PersistentClient(path=str(tmp_path / "db")), None
    host, port = request.getfixturevalue("chroma_server")
    return chromadb.HttpClient(host=host, port=port), tmp_path / "lexical"


@pytest.fixture
def index(placed, embed_model, passages):
    from llama_index.core import Document, StorageContext, VectorStoreIndex

    from llama_index.vector_stores.jepa_rag import jepa_chroma_vector_store

    client, lexical_dir = placed
    store = jepa_chroma_vector_store(client, f"li-hybrid-{uuid.uuid4().hex[:12]}", embed_model,
                                     hybrid=True, lexical_dir=lexical_dir)
    docs = [Document(text=t, doc_id=i) for i, t in passages.items()]
    docs += [Document(text=t, doc_id=f"rare{j}") for j, t in enumerate(RARE)]
    return VectorStoreIndex.from_documents(docs, storage_context=StorageContext.from_defaults(vector_store=store),
                                           embed_model=embed_model)


def test_retrieves_fused_nodes(index, queries, passages):
    from llama_index.core.schema import NodeWithScore

    from llama_index.retrievers.jepa_rag import JEPAHybridNodeRetriever

    retriever = JEPAHybridNodeRetriever(index, similarity_top_k=2)
    hits = retriever.retrieve("zyxwv")
    assert len(hits) == 2 and all(isinstance(h, NodeWithScore) for h in hits)
    assert hits[0].node.get_content() == RARE[0] and hits[0].node.ref_doc_id == "rare0"
    assert hits[0].score >= hits[1].score
    tops = [retriever.retrieve(q)[0].node.ref_doc_id for q in queries]
    assert tops == ["paris", "photosynthesis", "jupiter"]
    got = asyncio.run(retriever.aretrieve(queries[0]))
    assert [h.node.node_id for h in got] == [h.node.node_id for h in retriever.retrieve(queries[0])]


def test_in_a_query_engine_with_a_mock_llm(index):
    from llama_index.core.llms import MockLLM
    from llama_index.core.query_engine import RetrieverQueryEngine

    from llama_index.retrievers.jepa_rag import JEPAHybridNodeRetriever

    engine = RetrieverQueryEngine.from_args(JEPAHybridNodeRetriever(index, similarity_top_k=1), llm=MockLLM())
    response = engine.query("What does the zyxwv handshake do?")
    assert [n.node.get_content() for n in response.source_nodes] == [RARE[0]]
    assert RARE[0] in str(response)  # MockLLM echoes the prompt, which holds the retrieved context


def test_insert_and_delete_keep_bm25_in_step(index):
    from llama_index.core import Document

    from llama_index.retrievers.jepa_rag import JEPAHybridNodeRetriever

    retriever = JEPAHybridNodeRetriever(index, similarity_top_k=1)
    retriever.retrieve("zyxwv")
    index.insert(Document(text="Xylophones chime brightly in the orchestra.", doc_id="xylo"))
    index.delete_ref_doc("rare0")
    assert retriever.retrieve("xylophones")[0].node.ref_doc_id == "xylo"
    assert retriever.retrieve("zyxwv")[0].node.ref_doc_id != "rare0"
    hybrid = retriever.hybrid_collection
    assert sorted(hybrid.lexical_ids()) == sorted(hybrid.collection.get()["ids"])


def test_a_plain_store_needs_its_client(placed, embed_model):
    from jepa_rag.errors import InvalidInputError

    from llama_index.retrievers.jepa_rag import JEPAHybridNodeRetriever

    from llama_index.vector_stores.jepa_rag import jepa_chroma_vector_store

    client, lexical_dir = placed
    store = jepa_chroma_vector_store(client, f"li-plain-{uuid.uuid4().hex[:12]}", embed_model)
    with pytest.raises(InvalidInputError, match="hybrid=True"):
        JEPAHybridNodeRetriever(store)
    retriever = JEPAHybridNodeRetriever(store, client=client, lexical_dir=lexical_dir)
    assert retriever.retrieve("anything") == []


def test_metadata_filters_apply_to_both_sides(placed, embed_model, passages):
    from llama_index.core import Document, StorageContext, VectorStoreIndex
    from llama_index.core.vector_stores.types import FilterOperator, MetadataFilter, MetadataFilters

    from llama_index.retrievers.jepa_rag import JEPAHybridNodeRetriever
    from llama_index.vector_stores.jepa_rag import jepa_chroma_vector_store

    client, lexical_dir = placed
    store = jepa_chroma_vector_store(client, f"li-filter-{uuid.uuid4().hex[:12]}", embed_model, hybrid=True,
                                     lexical_dir=lexical_dir)
    docs = [Document(text=t, doc_id=i, metadata={"shelf": "plain"}) for i, t in passages.items()]
    docs += [Document(text=t, doc_id=f"rare{j}", metadata={"shelf": f"rare{j}"}) for j, t in enumerate(RARE)]
    index = VectorStoreIndex.from_documents(docs, storage_context=StorageContext.from_defaults(vector_store=store),
                                            embed_model=embed_model)
    only_plain = MetadataFilters(filters=[MetadataFilter(key="shelf", value="plain")])
    hits = JEPAHybridNodeRetriever(index, similarity_top_k=4, filters=only_plain).retrieve("zyxwv handshake")
    assert hits and all(h.node.metadata["shelf"] == "plain" for h in hits)
    not_rare0 = MetadataFilters(filters=[MetadataFilter(key="shelf", value="rare0", operator=FilterOperator.NE)])
    hits = JEPAHybridNodeRetriever(index, similarity_top_k=3, filters=not_rare0).retrieve("zyxwv")
    assert all(h.node.ref_doc_id != "rare0" for h in hits)
    with pytest.raises(TypeError):
        JEPAHybridNodeRetriever(index, filter={"shelf": "plain"})


def test_the_collection_weight_is_visible_and_settable(index):
    from llama_index.retrievers.jepa_rag import JEPAHybridNodeRetriever

    from jepa_rag.fusion import Fusion

    r = JEPAHybridNodeRetriever(index)
    prior = r.fusion.lexical_weight
    assert isinstance(r.fusion, Fusion) and r.fusion_choice is None
    assert JEPAHybridNodeRetriever(index, fusion=0.1).fusion.lexical_weight == 0.1
    again = JEPAHybridNodeRetriever(index)
    assert again.fusion.lexical_weight == 0.1 and again.fusion_choice.mode == "fixed"
    auto = JEPAHybridNodeRetriever(index, fusion="auto")  # 5 nodes: too little evidence, the checkpoint's weight
    assert auto.fusion.lexical_weight == prior and "too little evidence" in auto.fusion_choice.reason
    assert auto.retrieve("zyxwv handshake")[0].node.text.startswith("The zyxwv")
