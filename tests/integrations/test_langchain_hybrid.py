"""LangChain: JEPAHybridRetriever (cosine Chroma search fused with BM25), LangChain's standard retriever suite
included, embedded and against a real Chroma server."""

from __future__ import annotations

import asyncio
import uuid

import pytest

pytest.importorskip("langchain_chroma")

from langchain_jepa_rag import JEPAHybridRetriever  # noqa: E402

RARE = {"zyx": "The zyxwv handshake resends lost frames twice.",
        "qua": "Quartzite ridges weather slowly in dry climates."}


@pytest.fixture(scope="module")
def embeddings(predictor_checkpoint, minilm_dir):
    from langchain_jepa_rag import JEPAEmbeddings

    return JEPAEmbeddings(checkpoint=str(predictor_checkpoint), base_model=str(minilm_dir))


@pytest.fixture(params=["embedded", "server"])
def where(request, tmp_path) -> dict:
    """Constructor arguments that place the collection: a persistent folder, or a server + a lexical folder."""
    if request.param == "embedded":
        return {"persist_directory": str(tmp_path / "db")}
    import chromadb

    host, port = request.getfixturevalue("chroma_server")
    return {"client": chromadb.HttpClient(host=host, port=port), "lexical_dir": str(tmp_path / "lexical"),
            "collection_name": f"lc-hybrid-{uuid.uuid4().hex[:12]}"}


@pytest.fixture
def retriever(where, embeddings, passages) -> JEPAHybridRetriever:
    r = JEPAHybridRetriever(embeddings=embeddings, k=3, **where)
    docs = {**passages, **RARE}
    r.vectorstore.add_texts(list(docs.values()), ids=list(docs), metadatas=[{"topic": i} for i in docs])
    return r


def test_fused_results_with_scores_in_metadata(retriever, queries):
    hits = retriever.invoke("zyxwv")
    assert len(hits) == 3 and hits[0].id == "zyx" and hits[0].metadata["topic"] == "zyx"
    assert hits[0].metadata["lexical_score"] > 0
    scores = [d.metadata["hybrid_score"] for d in hits]
    assert scores == sorted(scores, reverse=True)
    assert all(0.0 <= d.metadata["dense_score"] <= 1.0 for d in hits)
    assert [retriever.invoke(q, k=1)[0].id for q in queries] == ["paris", "photosynthesis", "jupiter"]


def test_async_matches_sync(retriever, queries):
    async def run():
        return await asyncio.gather(*(retriever.ainvoke(q) for q in queries))

    got = asyncio.run(run())
    assert [[d.id for d in docs] for docs in got] == [[d.id for d in retriever.invoke(q)] for q in queries]


def test_vectorstore_writes_keep_bm25_in_step(retriever, where, embeddings):
    store = retriever.vectorstore
    assert retriever.invoke("xylophones")[0].metadata["lexical_score"] is None
    store.add_texts(["Xylophones chime brightly in the orchestra."], ids=["xylo"])
    store.delete(ids=["zyx"])
    assert retriever.invoke("xylophones", k=1)[0].id == "xylo"
    assert all(d.id != "zyx" and d.metadata["lexical_score"] is None for d in retriever.invoke("zyxwv"))
    assert sorted(retriever.hybrid_collection.lexical_ids()) == sorted(store.get()["ids"])
    # another retriever on the same collection (a new process would do the same) sees the same documents
    again = JEPAHybridRetriever(embeddings=embeddings, k=1, **where)
    assert again.invoke("xylophones")[0].id == "xylo"


def test_filters_as_a_vectorstore_retriever_takes_them(where, embeddings, retriever):
    """search_kwargs={"filter": ...} (VectorStoreRetriever's form) and a per-call filter apply to both sides: a
    filtered-out document never comes back, even when it is BM25's only match."""
    kwargs = {k: v for k, v in where.items() if k != "collection_name"}
    if "collection_name" in where:
        kwargs["collection_name"] = where["collection_name"]
    only_qua = JEPAHybridRetriever(embeddings=embeddings, search_kwargs={"k": 3, "filter": {"topic": "qua"}},
                                   vectorstore=retriever.vectorstore, lexical_dir=where.get("lexical_dir"))
    assert [d.id for d in only_qua.invoke("zyxwv handshake")] == ["qua"]
    assert all(d.metadata["topic"] != "zyx" for d in retriever.invoke("zyxwv", filter={"topic": {"$ne": "zyx"}}))
    hits = retriever.invoke("frames", k=3, where_document={"$contains": "Quartzite"})
    assert [d.id for d in hits] == ["qua"]


def test_the_collection_weight_is_visible_and_settable(embeddings, tmp_path, passages):
    from jepa_rag.fusion import Fusion

    place = {"embeddings": embeddings, "persist_directory": str(tmp_path / "db")}
    r = JEPAHybridRetriever(**place)
    prior = r.fusion.lexical_weight
    assert isinstance(r.fusion, Fusion) and r.fusion_choice is None
    fixed = JEPAHybridRetriever(**place, fusion=0.6)  # stored with the collection ...
    assert fixed.fusion.lexical_weight == 0.6 and fixed.fusion_choice.mode == "fixed"
    later = JEPAHybridRetriever(**place)  # ... so the next retriever on it uses it
    assert later.fusion.lexical_weight == 0.6 and "by the user" in later.fusion_choice.reason
    assert JEPAHybridRetriever(**place, fusion="checkpoint").fusion.lexical_weight == prior
    assert JEPAHybridRetriever(**place, fusion=Fusion(lexical_weight=0.9)).fusion.lexical_weight == 0.9
    auto = JEPAHybridRetriever(**place, fusion="auto")
    auto.vectorstore.add_texts(list(passages.values()))
    assert auto.fusion_choice.mode == "auto" and auto.fusion.lexical_weight == auto.fusion_choice.lexical_weight
    with pytest.raises(Exception, match="fusion must be"):
        JEPAHybridRetriever(**place, fusion="best")


def test_unknown_arguments_raise(embeddings, tmp_path):
    with pytest.raises(ValueError, match="search_kwargs"):
        JEPAHybridRetriever(embeddings=embeddings, persist_directory=str(tmp_path), search_kwargs={"filtr": {}})
    with pytest.raises(ValueError):
        JEPAHybridRetriever(embeddings=embeddings, persist_directory=str(tmp_path), filter={"a": 1})


try:
    from langchain_tests.integration_tests import RetrieversIntegrationTests
except ImportError:  # a dev dependency (pip install 'jepa-rag[dev]')
    RetrieversIntegrationTests = None

if RetrieversIntegrationTests is not None:
    class TestJEPAHybridRetrieverStandard(RetrieversIntegrationTests):
        """LangChain's standard retriever suite on an embedded persistent collection."""

        @pytest.fixture(autouse=True)
        def _params(self, tmp_path, embeddings, passages):
            self._constructor_params = {"embeddings": embeddings, "persist_directory": str(tmp_path / "db"),
                                        "collection_name": "standard"}
            seed = JEPAHybridRetriever(**self._constructor_params)
            seed.vectorstore.add_texts(list(passages.values()), ids=list(passages))

        @property
        def retriever_constructor(self) -> type[JEPAHybridRetriever]:
            return JEPAHybridRetriever

        @property
        def retriever_constructor_params(self) -> dict:
            return self._constructor_params

        @property
        def retriever_query_example(self) -> str:
            return "Which planet is the biggest?"
