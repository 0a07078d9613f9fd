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
from typing import Any

from llama_index.core.vector_stores.types import VectorStoreQuery, VectorStoreQueryMode, VectorStoreQueryResult
from llama_index.vector_stores.chroma import ChromaVectorStore
from pydantic import PrivateAttr

log = logging.getLogger("jepa_rag")

__all__ = ["JEPAChromaVectorStore"]


def _space(collection: Any) -> str | None:
    config = getattr(collection, "configuration_json", None) or {}
    index = config.get("hnsw") or config.get("spann") or {}
    return index.get("space")


class JEPAChromaVectorStore(ChromaVectorStore):
    """A ``ChromaVectorStore`` whose node scores are cosine similarities (``1 - cosine distance``).

    Build it with :func:`~integrations.llamaindex.jepa_chroma_vector_store`. ``embed_model`` is the
    :class:`~integrations.llamaindex.JEPAEmbedding` of the collection's checkpoint: pass it to
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
