"""LlamaIndex: :class:`JEPAEmbedding`, a ``BaseEmbedding`` backed by a jepa-rag checkpoint.

Why the routes are split: LlamaIndex calls ``_get_query_embedding`` for questions and ``_get_text_embedding(s)``
for nodes; a JEPA checkpoint may send queries through its predictor head while documents only take the
projection, so each hook is bound to its route here. ``_get_text_embeddings`` hands the whole batch to one encoder
call (LlamaIndex batches by ``embed_batch_size``), and the async hooks run the encoder in a worker thread so an
event loop serving other requests is never blocked by a forward pass.

:func:`jepa_chroma_vector_store` opens a Chroma collection that records the checkpoint (see
:mod:`integrations.chroma`), so reopening the index with another checkpoint fails loudly instead of mixing
embedding spaces. Note that LlamaIndex's ``ChromaVectorStore`` reports ``exp(-distance)`` as the node score; with
the cosine space that is ``exp(cosine - 1)``: same order as cosine, 1 for an identical vector.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

from jepa_rag.encoder import validate_texts

from ._common import DEFAULT, load_encoder, normalize_base_model, normalize_checkpoint, require

require("llama_index.core", "llamaindex", "integrations.llamaindex (JEPAEmbedding)")

from llama_index.core.base.embeddings.base import BaseEmbedding, Embedding  # noqa: E402
from pydantic import Field, PrivateAttr  # noqa: E402

__all__ = ["JEPAEmbedding", "jepa_chroma_vector_store"]


class JEPAEmbedding(BaseEmbedding):
    """A jepa-rag checkpoint as a LlamaIndex embedding model.

    ``JEPAEmbedding()`` loads the checkpoint shipped with jepa-rag; ``checkpoint=`` takes a checkpoint folder or
    ``"none"`` (the plain base model), ``base_model=`` a local model folder or Hub id, ``device=`` a torch device.
    ``precision="bf16"`` runs the frozen base in bfloat16 (~1.7× faster on CPU, same embedding space as fp32).
    """

    checkpoint: str = Field(default=DEFAULT, description="'default', 'none' or a jepa-rag checkpoint folder.")
    base_model: str | None = Field(default=None, description="Base model folder or id; None: the checkpoint's.")
    device: str | None = Field(default=None, description="Torch device; None: the encoder's default (CPU).")
    precision: str = Field(default="fp32", description="The frozen base's arithmetic: 'fp32' or 'bf16' "
                           "(~1.7x faster on CPU, SciFact NDCG@10 within 0.002).")
    embed_batch_size: int = Field(default=32, gt=0, le=2048, description="Texts per encoder call.")

    _encoder: Any = PrivateAttr(default=None)

    def __init__(self, checkpoint: str | os.PathLike | None = DEFAULT, base_model: str | os.PathLike | None = None,
                 device: str | None = None, precision: str = "fp32", **kwargs: Any):
        checkpoint = normalize_checkpoint(checkpoint)
        base_model = normalize_base_model(base_model)
        # loaded before pydantic validation, so a bad checkpoint or precision raises jepa-rag's own error
        encoder = load_encoder(checkpoint, base_model, device, precision)
        kwargs.setdefault("model_name", f"jepa-rag:{encoder.fingerprint.model_id}:{checkpoint}")
        super().__init__(checkpoint=checkpoint, base_model=base_model, device=device, precision=precision, **kwargs)
        self._encoder = encoder

    @classmethod
    def class_name(cls) -> str:
        return "JEPAEmbedding"

    @property
    def encoder(self):
        """The underlying :class:`jepa_rag.JEPAEncoder` (shared by every adapter using the same checkpoint)."""
        if self._encoder is None:  # built via model_validate/from_dict, which skip __init__
            self._encoder = load_encoder(self.checkpoint, self.base_model, self.device, self.precision)
        return self._encoder

    # ---------------------------------------------------------------------------------------- query route
    def _get_query_embedding(self, query: str) -> Embedding:
        return self.encoder.encode_queries([query])[0].tolist()

    async def _aget_query_embedding(self, query: str) -> Embedding:
        return await asyncio.to_thread(self._get_query_embedding, query)

    # ---------------------------------------------------------------------------------------- document route
    def _get_text_embedding(self, text: str) -> Embedding:
        return self.encoder.encode_documents([text])[0].tolist()

    def _get_text_embeddings(self, texts: list[str]) -> list[Embedding]:
        return self.encoder.encode_documents(texts).tolist()

    def get_text_embedding_batch(self, texts: list[str], show_progress: bool = False, **kwargs: Any) -> list[Embedding]:
        """LlamaIndex's batching, after refusing a bare string (which it would embed character by character)."""
        return super().get_text_embedding_batch(validate_texts(texts, "documents"), show_progress, **kwargs)

    async def aget_text_embedding_batch(self, texts: list[str], show_progress: bool = False,
                                        **kwargs: Any) -> list[Embedding]:
        return await super().aget_text_embedding_batch(validate_texts(texts, "documents"), show_progress, **kwargs)

    async def _aget_text_embedding(self, text: str) -> Embedding:
        return await asyncio.to_thread(self._get_text_embedding, text)

    async def _aget_text_embeddings(self, texts: list[str]) -> list[Embedding]:
        return await asyncio.to_thread(self._get_text_embeddings, texts)


def jepa_chroma_vector_store(client: Any, collection_name: str, embed_model: JEPAEmbedding | None = None):
    """A ``ChromaVectorStore`` over ``collection_name`` whose collection records ``embed_model``'s checkpoint.

    Pass the result to ``StorageContext.from_defaults(vector_store=...)`` (new index) or
    ``VectorStoreIndex.from_vector_store(...)`` (reopened index), with ``embed_model`` as the index's embed model;
    the collection's function uses ``embed_model``'s precision (which never conflicts with the stored one).
    With ``embed_model=None`` an existing collection is reopened with the checkpoint it was built with. Raises
    :class:`~integrations.EmbeddingSpaceConflictError` when the collection was built with another checkpoint.
    """
    require("llama_index.vector_stores.chroma", "llamaindex", "jepa_chroma_vector_store")
    from llama_index.vector_stores.chroma import ChromaVectorStore

    from .chroma import JEPAEmbeddingFunction, get_or_create_collection

    ef = None
    if embed_model is not None:
        ef = JEPAEmbeddingFunction(embed_model.checkpoint, embed_model.base_model, embed_model.device,
                                   embed_model.precision)
    collection = get_or_create_collection(client, collection_name, ef)
    return ChromaVectorStore(chroma_collection=collection)
