"""LangChain hybrid retriever: :class:`JEPAHybridRetriever` (a cosine Chroma search fused with BM25)."""

from __future__ import annotations

import asyncio
from typing import Any

from langchain_core.callbacks import AsyncCallbackManagerForRetrieverRun, CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from pydantic import ConfigDict, Field, PrivateAttr

from .embeddings import JEPAEmbeddings
from .vectorstores import jepa_chroma_vectorstore

__all__ = ["JEPAHybridRetriever"]


class JEPAHybridRetriever(BaseRetriever):
    """Hybrid retrieval: a cosine Chroma search (:func:`jepa_chroma_vectorstore`) fused with BM25 over the same
    documents, the fusion weight the checkpoint stores (chosen on dev judgments).

    ``JEPAHybridRetriever(collection_name=..., persist_directory=... | client=..., k=4)`` opens the collection
    like :func:`jepa_chroma_vectorstore`; ``vectorstore`` then holds that store, whose writes (``add_texts``,
    ``add_documents``, ``delete``) keep the BM25 index in step (see :mod:`jepa_rag.chroma_hybrid`). With a
    Chroma server (``client=chromadb.HttpClient(...)``) ``lexical_dir`` names a local folder for the BM25 index.
    ``k`` may also be given per call: ``retriever.invoke(query, k=10)``. Each returned Document carries
    ``hybrid_score`` (fused), ``dense_score`` (cosine similarity) and ``lexical_score`` (BM25; None where that side
    did not return it) in its metadata.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    collection_name: str = "jepa_rag"
    embeddings: JEPAEmbeddings | None = None
    client: Any = None
    persist_directory: str | None = None
    lexical_dir: str | None = None
    k: int = Field(default=4, ge=1)
    depth: int | None = Field(default=None, ge=1, description="Candidates per side; None: the fusion's depth.")
    fusion: Any = Field(default=None, description="A jepa_rag.fusion.Fusion; None: the checkpoint's.")
    vectorstore: Any = None

    _hybrid: Any = PrivateAttr(default=None)

    def model_post_init(self, context: Any) -> None:
        from jepa_rag.chroma_hybrid import HybridCollection

        if self.vectorstore is None:
            self.vectorstore = jepa_chroma_vectorstore(self.collection_name, self.embeddings, client=self.client,
                                                       persist_directory=self.persist_directory)
        store = self.vectorstore
        if self.embeddings is None:
            self.embeddings = store.embeddings
        hybrid = store._collection
        if not isinstance(hybrid, HybridCollection):
            hybrid = HybridCollection(store._client, hybrid, lexical_dir=self.lexical_dir, fusion=self.fusion)
            # langchain_chroma writes through this attribute: routing it via HybridCollection keeps BM25 in step
            store._chroma_collection = hybrid
        self._hybrid = hybrid

    @property
    def hybrid_collection(self):
        """The :class:`~jepa_rag.chroma_hybrid.HybridCollection` behind this retriever."""
        return self._hybrid

    def _search(self, query: str, k: int | None) -> list[Document]:
        k = self.k if k is None else k
        vector = self.embeddings.embed_query(query)
        res = self._hybrid.hybrid_query([query], k, query_embeddings=[vector], depth=self.depth,
                                        fusion=self.fusion)
        return [Document(id=i, page_content=doc or "",
                         metadata={**(meta or {}), "hybrid_score": s, "dense_score": d, "lexical_score": lx})
                for i, doc, meta, s, d, lx in zip(res["ids"][0], res["documents"][0], res["metadatas"][0],
                                                  res["scores"][0], res["dense_scores"][0],
                                                  res["lexical_scores"][0])]

    def _get_relevant_documents(self, query: str, *, run_manager: CallbackManagerForRetrieverRun,
                                k: int | None = None) -> list[Document]:
        return self._search(query, k)

    async def _aget_relevant_documents(self, query: str, *, run_manager: AsyncCallbackManagerForRetrieverRun,
                                       k: int | None = None) -> list[Document]:
        return await asyncio.to_thread(self._search, query, k)
