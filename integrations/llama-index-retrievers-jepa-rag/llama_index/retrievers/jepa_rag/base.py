"""LlamaIndex hybrid retriever from jepa-rag: :class:`JEPAHybridNodeRetriever` (Chroma cosine search fused with BM25)."""

from __future__ import annotations

import asyncio
import os
from typing import Any

from llama_index.core.base.base_retriever import BaseRetriever
from llama_index.core.schema import NodeWithScore, QueryBundle, TextNode

from jepa_rag.chroma_hybrid import HybridCollection, resolve_fusion
from jepa_rag.errors import InvalidInputError

__all__ = ["JEPAHybridNodeRetriever"]


class JEPAHybridNodeRetriever(BaseRetriever):
    """Hybrid retrieval over a Chroma-backed index: Chroma's cosine search fused with BM25 over the same nodes.

    ``index_or_store`` is a ``VectorStoreIndex`` (or its ``ChromaVectorStore``) made with
    ``jepa_chroma_vector_store(..., hybrid=True)``; a store made without it is wrapped here when ``client`` (the
    chromadb client it lives on) is given, but then writes made through the store bypass the BM25 bookkeeping
    (only count changes are noticed). Returns ``similarity_top_k`` nodes scored by the fused score; works in
    ``RetrieverQueryEngine`` like any retriever. The BM25 weight is the one the collection stores (``jepa-rag
    ingest`` chooses it from the collection's own documents), else the checkpoint's; ``fusion="auto"`` chooses and
    stores it now (kept until the collection doubles or halves), ``"checkpoint"`` or a number in [0, 1] sets it, a
    :class:`jepa_rag.fusion.Fusion` overrides it for this retriever. ``fusion`` then holds the Fusion in use and
    ``fusion_choice`` the collection's stored choice and its evidence. ``filters`` (LlamaIndex ``MetadataFilters``, as
    ``VectorIndexRetriever`` takes them) and ``where_document`` (a chromadb document filter) apply to both sides
    before fusion.
    """

    def __init__(self, index_or_store: Any, similarity_top_k: int = 4, *, depth: int | None = None,
                 fusion: Any = None, client: Any = None, lexical_dir: str | os.PathLike | None = None,
                 filters: Any = None, where_document: dict | None = None, **kwargs: Any):
        store = getattr(index_or_store, "vector_store", index_or_store)
        collection = getattr(store, "_collection", None)
        if collection is None:
            raise InvalidInputError(f"expected a Chroma-backed VectorStoreIndex or ChromaVectorStore, got "
                                    f"{type(index_or_store).__name__}")
        if not isinstance(collection, HybridCollection):
            if client is None:
                raise InvalidInputError(
                    "this ChromaVectorStore was not made with jepa_chroma_vector_store(..., hybrid=True): pass "
                    "client=<its chromadb client> so its collection can be wrapped")
            collection = HybridCollection(client, collection, lexical_dir=lexical_dir)
        if isinstance(similarity_top_k, bool) or not isinstance(similarity_top_k, int) or similarity_top_k < 1:
            raise InvalidInputError(f"similarity_top_k must be a positive integer, got {similarity_top_k!r}")
        self._hybrid = collection
        self._embed_model = getattr(index_or_store, "_embed_model", None)
        self.similarity_top_k = similarity_top_k
        self.depth = depth
        self.fusion = resolve_fusion(collection, fusion)
        self.filters = filters
        self.where_document = where_document
        self._where = _chroma_where(filters)
        super().__init__(**kwargs)

    @property
    def hybrid_collection(self):
        """The :class:`~jepa_rag.chroma_hybrid.HybridCollection` behind this retriever."""
        return self._hybrid

    @property
    def fusion_choice(self):
        """The collection's stored :class:`~jepa_rag.fusion_choice.FusionChoice` (weight, reason, evidence), or None."""
        return self._hybrid.fusion_choice

    def _retrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        text = query_bundle.query_str
        embedding = query_bundle.embedding
        if embedding is None and self._embed_model is not None:
            embedding = self._embed_model.get_query_embedding(text)
        res = self._hybrid.hybrid_query([text], self.similarity_top_k, depth=self.depth, fusion=self.fusion,
                                        query_embeddings=None if embedding is None else [embedding],
                                        where=self._where, where_document=self.where_document)
        return [NodeWithScore(node=_node(i, doc, meta), score=score)
                for i, doc, meta, score in zip(res["ids"][0], res["documents"][0], res["metadatas"][0],
                                               res["scores"][0])]

    async def _aretrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        return await asyncio.to_thread(self._retrieve, query_bundle)


def _chroma_where(filters: Any) -> dict | None:
    """LlamaIndex ``MetadataFilters`` as a chromadb ``where``, translated as ``ChromaVectorStore`` does."""
    if filters is None:
        return None
    from llama_index.core.vector_stores.types import MetadataFilters
    from llama_index.vector_stores.chroma.base import _to_chroma_filter

    if not isinstance(filters, MetadataFilters):
        raise InvalidInputError(f"filters must be llama_index MetadataFilters, got {type(filters).__name__}")
    return _to_chroma_filter(filters) or None


def _node(node_id: str, text: str | None, metadata: dict | None):
    """A node as ChromaVectorStore rebuilds it: from LlamaIndex's stored node JSON, else a plain TextNode."""
    from llama_index.core.vector_stores.utils import metadata_dict_to_node

    try:
        return metadata_dict_to_node(metadata or {}, text=text)
    except Exception:  # noqa: BLE001 - records not written by LlamaIndex carry no node JSON
        return TextNode(id_=node_id, text=text or "", metadata=dict(metadata or {}))
