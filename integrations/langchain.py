"""LangChain: :class:`JEPAEmbeddings` and a Chroma retriever whose scores mean what LangChain users expect.

Why the routes are split: LangChain calls ``embed_documents`` when indexing and ``embed_query`` when searching;
a JEPA checkpoint may send queries through its predictor head while documents only take the projection, so each
method is bound to its route here. The async methods run the encoder in a worker thread (``asyncio.to_thread``)
so a forward pass never blocks the event loop.

Why :func:`jepa_chroma_vectorstore`: ``langchain_chroma.Chroma`` creates collections in the l2 space by default,
where ``similarity_search_with_relevance_scores`` gives numbers that are hard to read. Our collections use the
cosine space and the cosine relevance function, so a relevance of 1 means identical direction and 0 means
unrelated; the collection also records the checkpoint, so reopening it with another one fails loudly.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

from ._common import DEFAULT, load_encoder, normalize_base_model, normalize_checkpoint, require

require("langchain_core", "langchain", "integrations.langchain (JEPAEmbeddings)")

from langchain_core.embeddings import Embeddings  # noqa: E402
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator  # noqa: E402

__all__ = ["JEPAEmbeddings", "cosine_relevance", "jepa_chroma_retriever", "jepa_chroma_vectorstore"]


class JEPAEmbeddings(BaseModel, Embeddings):
    """A jepa-rag checkpoint as LangChain ``Embeddings``.

    ``JEPAEmbeddings()`` loads the checkpoint shipped with jepa-rag; ``checkpoint=`` takes a checkpoint folder or
    ``"none"`` (the plain base model), ``base_model=`` a local model folder or Hub id, ``device=`` a torch device.
    ``precision="bf16"`` runs the frozen base in bfloat16 (~1.7× faster on CPU, same embedding space as fp32).
    """

    model_config = ConfigDict(extra="forbid", protected_namespaces=())

    checkpoint: str = Field(default=DEFAULT, description="'default', 'none' or a jepa-rag checkpoint folder.")
    base_model: str | None = Field(default=None, description="Base model folder or id; None: the checkpoint's.")
    device: str | None = Field(default=None, description="Torch device; None: the encoder's default (CPU).")
    precision: str = Field(default="fp32", description="The frozen base's arithmetic: 'fp32' or 'bf16' "
                           "(~1.7x faster on CPU, SciFact NDCG@10 within 0.002).")

    _encoder: Any = PrivateAttr(default=None)

    @field_validator("checkpoint", mode="before")
    @classmethod
    def _checkpoint(cls, value: Any) -> str:
        return normalize_checkpoint(value)

    @field_validator("base_model", mode="before")
    @classmethod
    def _base_model(cls, value: Any) -> str | None:
        return normalize_base_model(value)

    def __init__(self, **data: Any):
        super().__init__(**data)
        # load now, outside pydantic validation, so a bad checkpoint raises jepa-rag's own error
        self._encoder = load_encoder(self.checkpoint, self.base_model, self.device, self.precision)

    @property
    def encoder(self):
        """The underlying :class:`jepa_rag.JEPAEncoder` (shared by every adapter using the same checkpoint)."""
        if self._encoder is None:
            self._encoder = load_encoder(self.checkpoint, self.base_model, self.device, self.precision)
        return self._encoder

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        """Document route, one encoder call for the whole list (a bare string is refused, not split into characters)."""
        return self.encoder.encode_documents(texts).tolist()

    def embed_query(self, text: str) -> list[float]:
        """Query route (through the predictor when the checkpoint routes queries there)."""
        return self.encoder.encode_queries([text])[0].tolist()

    async def aembed_documents(self, texts: list[str]) -> list[list[float]]:
        return await asyncio.to_thread(self.embed_documents, texts)

    async def aembed_query(self, text: str) -> list[float]:
        return await asyncio.to_thread(self.embed_query, text)


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
    (the default checkpoint). Raises :class:`~integrations.EmbeddingSpaceConflictError` when the collection was
    built with another checkpoint (not another precision). Extra keyword arguments go to ``Chroma``.
    """
    require("langchain_chroma", "langchain", "jepa_chroma_vectorstore")
    import chromadb
    from langchain_chroma import Chroma

    from .chroma import JEPAEmbeddingFunction, get_or_create_collection

    if client is not None and persist_directory is not None:
        raise ValueError("pass either client or persist_directory, not both")
    if client is None:
        client = (chromadb.PersistentClient(path=os.fspath(persist_directory)) if persist_directory is not None
                  else chromadb.EphemeralClient())
    embeddings = embeddings if embeddings is not None else JEPAEmbeddings()
    ef = JEPAEmbeddingFunction(embeddings.checkpoint, embeddings.base_model, embeddings.device, embeddings.precision)
    # creates the collection in the cosine space (so Chroma picks its cosine relevance function, 1 - distance),
    # or refuses a collection built with another checkpoint
    collection = get_or_create_collection(client, collection_name, ef)
    index = collection.configuration_json.get("hnsw") or collection.configuration_json.get("spann") or {}
    if index.get("space") == "cosine":
        chroma_kwargs.setdefault("relevance_score_fn", cosine_relevance)
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
