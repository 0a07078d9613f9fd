"""LangChain hybrid retriever: :class:`JEPAHybridRetriever` (a cosine Chroma search fused with BM25)."""

from __future__ import annotations

import asyncio
from typing import Any

from langchain_core.callbacks import AsyncCallbackManagerForRetrieverRun, CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from pydantic import ConfigDict, Field, PrivateAttr

from jepa_rag.chroma_hybrid import resolve_fusion

from .embeddings import JEPAEmbeddings
from .vectorstores import jepa_chroma_vectorstore

__all__ = ["JEPAHybridRetriever"]

SEARCH_KWARGS = frozenset({"k", "filter", "where_document"})


class JEPAHybridRetriever(BaseRetriever):
    """Hybrid retrieval: a cosine Chroma search (:func:`jepa_chroma_vectorstore`) fused with BM25 over the same
    documents, with the BM25 weight the collection stores (``jepa-rag ingest`` chooses it from the collection's own
    documents), else the checkpoint's (chosen on dev judgments). ``fusion="auto"`` chooses and stores it now (kept
    until the collection doubles or halves), ``"checkpoint"`` or a number in [0, 1] sets it, a
    :class:`jepa_rag.fusion.Fusion` overrides everything for this retriever. After construction ``fusion`` holds the
    :class:`~jepa_rag.fusion.Fusion` in use and ``fusion_choice`` the collection's stored choice and its evidence.

    ``JEPAHybridRetriever(collection_name=..., persist_directory=... | client=..., k=4)`` opens the collection
    like :func:`jepa_chroma_vectorstore`; ``vectorstore`` then holds that store, whose writes (``add_texts``,
    ``add_documents``, ``delete``) keep the BM25 index in step (see :mod:`jepa_rag.chroma_hybrid`). With a
    Chroma server (``client=chromadb.HttpClient(...)``) ``lexical_dir`` names a local folder for the BM25 index.
    ``search_kwargs`` takes what a ``VectorStoreRetriever``'s does: ``{"k": 10, "filter": {"topic": "news"},
    "where_document": {"$contains": "error"}}`` (chromadb filters, applied to both sides before fusion); unknown keys
    raise. ``k``, ``filter`` and ``where_document`` may also be given per call:
    ``retriever.invoke(query, k=10, filter={...})``. Each returned Document carries
    ``hybrid_score`` (fused), ``dense_score`` (cosine similarity) and ``lexical_score`` (BM25; None where that side
    did not return it) in its metadata.
    """

    # unknown constructor arguments raise instead of being silently dropped
    model_config = ConfigDict(arbitrary_types_allowed=True, extra="forbid")

    collection_name: str = "jepa_rag"
    embeddings: JEPAEmbeddings | None = None
    client: Any = None
    persist_directory: str | None = None
    lexical_dir: str | None = None
    k: int = Field(default=4, ge=1)
    depth: int | None = Field(default=None, ge=1, description="Candidates per side; None: the fusion's depth.")
    fusion: Any = Field(default=None, description="None: the collection's stored weight, else the checkpoint's; "
                                                  "'auto', 'checkpoint' or a weight in [0, 1]: chosen and stored "
                                                  "with the collection; a jepa_rag.fusion.Fusion: this one.")
    vectorstore: Any = None
    search_kwargs: dict = Field(default_factory=dict, description="k, filter, where_document (VectorStoreRetriever "
                                                                  "style).")

    _hybrid: Any = PrivateAttr(default=None)

    def model_post_init(self, context: Any) -> None:
        from jepa_rag.chroma_hybrid import HybridCollection

        unknown = sorted(set(self.search_kwargs) - SEARCH_KWARGS)
        if unknown:
            raise ValueError(f"search_kwargs: unknown key(s) {unknown}; JEPAHybridRetriever takes {sorted(SEARCH_KWARGS)}")

        if self.vectorstore is None:
            self.vectorstore = jepa_chroma_vectorstore(self.collection_name, self.embeddings, client=self.client,
                                                       persist_directory=self.persist_directory)
        store = self.vectorstore
        if self.embeddings is None:
            self.embeddings = store.embeddings
        hybrid = store._collection
        if not isinstance(hybrid, HybridCollection):
            hybrid = HybridCollection(store._client, hybrid, lexical_dir=self.lexical_dir)
            # langchain_chroma writes through this attribute: routing it via HybridCollection keeps BM25 in step
            store._chroma_collection = hybrid
        self._hybrid = hybrid
        self.fusion = resolve_fusion(hybrid, self.fusion)

    @property
    def fusion_choice(self):
        """The collection's stored :class:`~jepa_rag.fusion_choice.FusionChoice` (weight, reason, evidence), or None."""
        return self._hybrid.fusion_choice

    @property
    def hybrid_collection(self):
        """The :class:`~jepa_rag.chroma_hybrid.HybridCollection` behind this retriever."""
        return self._hybrid

    def _search(self, query: str, k: int | None, filter: dict | None, where_document: dict | None) -> list[Document]:
        k = k if k is not None else self.search_kwargs.get("k", self.k)
        where = filter if filter is not None else self.search_kwargs.get("filter")
        where_document = where_document if where_document is not None else self.search_kwargs.get("where_document")
        vector = self.embeddings.embed_query(query)
        res = self._hybrid.hybrid_query([query], k, query_embeddings=[vector], depth=self.depth,
                                        fusion=self.fusion, where=where or None, where_document=where_document or None)
        return [Document(id=i, page_content=doc or "",
                         metadata={**(meta or {}), "hybrid_score": s, "dense_score": d, "lexical_score": lx})
                for i, doc, meta, s, d, lx in zip(res["ids"][0], res["documents"][0], res["metadatas"][0],
                                                  res["scores"][0], res["dense_scores"][0],
                                                  res["lexical_scores"][0])]

    def _get_relevant_documents(self, query: str, *, run_manager: CallbackManagerForRetrieverRun,
                                k: int | None = None, filter: dict | None = None,
                                where_document: dict | None = None) -> list[Document]:
        return self._search(query, k, filter, where_document)

    async def _aget_relevant_documents(self, query: str, *, run_manager: AsyncCallbackManagerForRetrieverRun,
                                       k: int | None = None, filter: dict | None = None,
                                       where_document: dict | None = None) -> list[Document]:
        return await asyncio.to_thread(self._search, query, k, filter, where_document)
