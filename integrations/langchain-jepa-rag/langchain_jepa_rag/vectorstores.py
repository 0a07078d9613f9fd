"""LangChain's Chroma vector store with cosine scores: :func:`jepa_chroma_vectorstore` and :func:`jepa_chroma_retriever`.

Why: ``langchain_chroma.Chroma`` creates collections in the l2 space by default, where
``similarity_search_with_relevance_scores`` gives numbers that are hard to read. Our collections use the cosine
space and the cosine relevance function, so a relevance of 1 means identical direction and 0 means unrelated; the
collection also records the checkpoint, so reopening it with another one fails loudly.
"""

from __future__ import annotations

import os
import warnings
from typing import Any

from .embeddings import JEPAEmbeddings

__all__ = ["cosine_relevance", "jepa_chroma_retriever", "jepa_chroma_vectorstore"]


def cosine_relevance(distance: float) -> float:
    """Chroma's cosine distance is ``1 - cos``; relevance is ``cos`` clipped to [0, 1].

    Why clipped: LangChain warns about relevance outside [0, 1], which float rounding (1.0000002 for an identical
    vector) and unrelated texts (cos < 0) would otherwise trigger; ranking is by distance either way.
    """
    return min(1.0, max(0.0, 1.0 - distance))


def jepa_chroma_vectorstore(collection_name: str = "jepa_rag", embeddings: JEPAEmbeddings | None = None, *,
                            client: Any = None, persist_directory: str | os.PathLike | None = None,
                            **chroma_kwargs: Any):
    """A ``langchain_chroma.Chroma`` over a cosine-space collection that records ``embeddings``' checkpoint.

    Pass ``client`` (any chromadb client, embedded or HTTP) or ``persist_directory`` (an embedded, persistent
    index in that folder); neither gives an in-memory index. ``embeddings=None`` uses ``JEPAEmbeddings()``
    (the default checkpoint). Raises :class:`~jepa_rag.errors.EmbeddingSpaceConflictError` when the collection was
    built with another checkpoint (not another precision). Extra keyword arguments go to ``Chroma``.
    """
    import chromadb
    from langchain_chroma import Chroma

    from jepa_rag.chroma import JEPAEmbeddingFunction, get_or_create_collection

    if client is not None and persist_directory is not None:
        raise ValueError("pass either client or persist_directory, not both")
    if client is None:
        client = (chromadb.PersistentClient(path=os.fspath(persist_directory)) if persist_directory is not None
                  else chromadb.EphemeralClient())
    embeddings = embeddings if embeddings is not None else JEPAEmbeddings()
    ef = JEPAEmbeddingFunction(embeddings.checkpoint, embeddings.base_model, embeddings.device, embeddings.precision,
                               use_cache=embeddings.use_cache, cache_dir=embeddings.cache_dir,
                               cache_queries=embeddings.cache_queries)
    # creates the collection in the cosine space (so Chroma picks its cosine relevance function, 1 - distance),
    # or refuses a collection built with another checkpoint
    collection = get_or_create_collection(client, collection_name, ef)
    index = collection.configuration_json.get("hnsw") or collection.configuration_json.get("spann") or {}
    if index.get("space") == "cosine":
        chroma_kwargs.setdefault("relevance_score_fn", cosine_relevance)
    else:
        warnings.warn(
            f"collection {collection_name!r} uses the {index.get('space', 'unknown')!r} space (made outside "
            "jepa-rag, e.g. by Chroma.from_documents), so its scores are not cosine similarities and a threshold "
            "tuned elsewhere will not carry over; re-index into a collection made by jepa_chroma_vectorstore",
            UserWarning, stacklevel=2)
    return Chroma(collection_name=collection_name, embedding_function=embeddings, client=client, **chroma_kwargs)


def jepa_chroma_retriever(collection_name: str = "jepa_rag", embeddings: JEPAEmbeddings | None = None, *,
                          client: Any = None, persist_directory: str | os.PathLike | None = None, k: int = 4,
                          search_type: str = "similarity", search_kwargs: dict[str, Any] | None = None,
                          **chroma_kwargs: Any):
    """``jepa_chroma_vectorstore(...).as_retriever(...)``: the top ``k`` documents for each query.

    ``search_type="similarity_score_threshold"`` with ``search_kwargs={"score_threshold": 0.5}`` keeps only
    documents whose cosine similarity to the query is at least 0.5.
    """
    store = jepa_chroma_vectorstore(collection_name, embeddings, client=client, persist_directory=persist_directory,
                                    **chroma_kwargs)
    kwargs = {"k": k, **(search_kwargs or {})}
    return store.as_retriever(search_type=search_type, search_kwargs=kwargs)
