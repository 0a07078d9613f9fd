"""LlamaIndex's ``ChromaVectorStore`` with jepa-rag's meaning of a score, and no fall-through to OpenAI.

Why: LlamaIndex's ``ChromaVectorStore`` reports ``exp(-distance)`` as a node's score; in a cosine collection that is
``exp(cosine - 1)`` (a cosine of 0.457 shows as 0.581), so a threshold tuned on LangChain's or Chroma's numbers
would not carry over. :class:`JEPAChromaVectorStore` reports the cosine similarity itself, as our LangChain and
Chroma integrations do.

Why the embed model travels with the store: ``VectorStoreIndex.from_vector_store(store)`` without ``embed_model``
falls back to ``Settings.embed_model``, which LlamaIndex resolves to OpenAI. The store knows the checkpoint its
collection was built with, so it fills that empty default with it (a model the user set is never replaced).
"""

from __future__ import annotations

import logging
import math
import os
from typing import Any

from llama_index.core.vector_stores.types import VectorStoreQuery, VectorStoreQueryMode, VectorStoreQueryResult
from llama_index.vector_stores.chroma import ChromaVectorStore
from pydantic import PrivateAttr

from jepa_rag.chroma import JEPAEmbeddingFunction, get_or_create_collection
from jepa_rag.chroma_hybrid import HybridCollection
from llama_index.embeddings.jepa_rag import JEPAEmbedding

log = logging.getLogger("jepa_rag")

__all__ = ["JEPAChromaVectorStore", "jepa_chroma_vector_store"]


def _space(collection: Any) -> str | None:
    config = getattr(collection, "configuration_json", None) or {}
    index = config.get("hnsw") or config.get("spann") or {}
    return index.get("space")


class JEPAChromaVectorStore(ChromaVectorStore):
    """A ``ChromaVectorStore`` whose node scores are cosine similarities (``1 - cosine distance``).

    Build it with :func:`jepa_chroma_vector_store`. ``embed_model`` is the
    :class:`~llama_index.embeddings.jepa_rag.JEPAEmbedding` of the collection's checkpoint: pass it to
    ``VectorStoreIndex.from_vector_store(store, embed_model=store.embed_model)`` (it is also what LlamaIndex gets when
    no embed model was set anywhere).
    """

    _embed_model: Any = PrivateAttr(default=None)

    @classmethod
    def class_name(cls) -> str:
        return "JEPAChromaVectorStore"

    @property
    def embed_model(self):
        return self._embed_model

    def attach_embed_model(self, embed_model: Any) -> None:
        from llama_index.core import Settings

        self._embed_model = embed_model
        if getattr(Settings, "_embed_model", None) is None:
            log.info("LlamaIndex has no embed model set: using %s for this store (never OpenAI's default)",
                     embed_model.model_name)
            Settings.embed_model = embed_model

    def query(self, query: VectorStoreQuery, **kwargs: Any) -> VectorStoreQueryResult:
        result = super().query(query, **kwargs)
        if (query.query_embedding and query.mode != VectorStoreQueryMode.MMR and result.similarities
                and _space(self._collection) == "cosine"):
            # exp(-d) back to d, then cosine = 1 - d; clipped like LangChain's relevance: rounding gives 1.0000002
            result.similarities = [min(1.0, 1.0 + math.log(s)) if s > 0 else -1.0 for s in result.similarities]
        return result


def jepa_chroma_vector_store(client: Any, collection_name: str, embed_model: JEPAEmbedding | None = None, *,
                             hybrid: bool = False, lexical_dir: str | os.PathLike | None = None):
    """A :class:`JEPAChromaVectorStore` (a ``ChromaVectorStore`` whose node scores
    are cosine similarities, as in LangChain and Chroma) over ``collection_name``, whose collection records
    ``embed_model``'s checkpoint.

    ``hybrid=True`` routes the store's writes through a :class:`~jepa_rag.chroma_hybrid.HybridCollection`,
    so the BM25 index that :class:`JEPAHybridNodeRetriever` fuses stays in step with every node LlamaIndex adds or
    deletes; ``lexical_dir`` names its folder (required for a Chroma server, see that class).

    Pass the result to ``StorageContext.from_defaults(vector_store=...)`` (new index) or
    ``VectorStoreIndex.from_vector_store(...)`` (reopened index), with ``embed_model`` as the index's embed model;
    the collection's function uses ``embed_model``'s precision (which never conflicts with the stored one).
    With ``embed_model=None`` an existing collection is reopened with the checkpoint it was built with, and
    ``store.embed_model`` holds that checkpoint's :class:`JEPAEmbedding` (it also fills LlamaIndex's
    ``Settings.embed_model`` when nothing was set there, so a reopened index never falls back to OpenAI). Raises
    :class:`~jepa_rag.errors.EmbeddingSpaceConflictError` when the collection was built with another checkpoint.
    """
    ef = None
    if embed_model is not None:
        ef = JEPAEmbeddingFunction(embed_model.checkpoint, embed_model.base_model, embed_model.device,
                                   embed_model.precision, use_cache=embed_model.use_cache,
                                   cache_dir=embed_model.cache_dir, cache_queries=embed_model.cache_queries)
    collection = get_or_create_collection(client, collection_name, ef)
    if hybrid:
        collection = HybridCollection(client, collection, lexical_dir=lexical_dir)
    store = JEPAChromaVectorStore(chroma_collection=collection)
    if embed_model is None:
        ef = getattr(collection, "_embedding_function", None)
        if isinstance(ef, JEPAEmbeddingFunction):
            embed_model = JEPAEmbedding(ef.checkpoint, ef.base_model, ef.device, ef.precision)
    if embed_model is not None:
        store.attach_embed_model(embed_model)
    return store
