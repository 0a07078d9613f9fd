"""LlamaIndex embedding model backed by a jepa-rag checkpoint: :class:`JEPAEmbedding`.

Why the routes are split: LlamaIndex calls ``_get_query_embedding`` for questions and ``_get_text_embedding(s)``
for nodes; a JEPA checkpoint may send queries through its predictor head while documents only take the
projection, so each hook is bound to its route here. ``_get_text_embeddings`` hands the whole batch to one encoder
call (LlamaIndex batches by ``embed_batch_size``), and the async hooks run the encoder in a worker thread so an
event loop serving other requests is never blocked by a forward pass.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

from llama_index.core.base.embeddings.base import BaseEmbedding, Embedding
from pydantic import Field, PrivateAttr

from jepa_rag.adapters import (
    CACHE_DIR_HELP,
    CACHE_QUERIES_HELP,
    DEFAULT,
    OWN_LABEL,
    PRECISION_HELP,
    USE_CACHE_HELP,
    embed_documents_keeping_empty,
    validate_documents_allowing_empty,
    from_hf_habits,
    load_encoder,
    normalize_base_model,
    normalize_checkpoint,
)

__all__ = ["JEPAEmbedding"]


class JEPAEmbedding(BaseEmbedding):
    """A jepa-rag checkpoint as a LlamaIndex embedding model.

    ``JEPAEmbedding()`` loads the checkpoint shipped with jepa-rag; ``checkpoint=`` takes a checkpoint folder or
    ``"none"`` (the plain base model), ``base_model=`` a local model folder or Hub id (``model_name=``, as
    ``HuggingFaceEmbedding`` users write it, is the same: it must be the model the checkpoint was trained on, any
    model with ``checkpoint="none"``), ``device=`` a torch device.
    ``precision`` is the frozen base's arithmetic (default ``"auto"``: bfloat16 where the hardware computes it
    natively, fp32 elsewhere; the same embedding space either way). Documents' base vectors are cached on disk
    (``use_cache``, ``cache_dir``); queries stay in a bounded in-memory LRU unless ``cache_queries=True``.
    """

    checkpoint: str = Field(default=DEFAULT, description="'default', 'none' or a jepa-rag checkpoint folder.")
    base_model: str | None = Field(default=None, description="Base model folder or id; None: the checkpoint's.")
    device: str | None = Field(default=None, description="Torch device; None: the encoder's default (CPU).")
    precision: str = Field(default="auto", description=PRECISION_HELP)
    use_cache: bool = Field(default=True, description=USE_CACHE_HELP)
    cache_dir: str | None = Field(default=None, description=CACHE_DIR_HELP)
    cache_queries: bool = Field(default=False, description=CACHE_QUERIES_HELP)
    embed_batch_size: int = Field(default=32, gt=0, le=2048, description="Texts per encoder call.")

    _encoder: Any = PrivateAttr(default=None)

    def __init__(self, checkpoint: str | os.PathLike | None = DEFAULT, base_model: str | os.PathLike | None = None,
                 device: str | None = None, precision: str = "auto", *, use_cache: bool = True,
                 cache_dir: str | os.PathLike | None = None, cache_queries: bool = False, **kwargs: Any):
        kwargs = from_hf_habits({**kwargs, "base_model": base_model, "device": device}, "JEPAEmbedding")
        base_model, device = kwargs.pop("base_model"), kwargs.pop("device")
        checkpoint = normalize_checkpoint(checkpoint)
        base_model = normalize_base_model(base_model)
        cache_dir = os.fspath(cache_dir) if cache_dir is not None else None
        # loaded before pydantic validation, so a bad checkpoint or precision raises jepa-rag's own error
        encoder = load_encoder(checkpoint, base_model, device, precision, use_cache=use_cache, cache_dir=cache_dir,
                               cache_queries=cache_queries)
        kwargs["model_name"] = f"{OWN_LABEL}{encoder.fingerprint.model_id}:{checkpoint}"
        super().__init__(checkpoint=checkpoint, base_model=base_model, device=device, precision=precision,
                         use_cache=use_cache, cache_dir=cache_dir, cache_queries=cache_queries, **kwargs)
        self._encoder = encoder

    @classmethod
    def class_name(cls) -> str:
        return "JEPAEmbedding"

    @property
    def encoder(self):
        """The underlying :class:`jepa_rag.JEPAEncoder` (shared by every adapter using the same checkpoint)."""
        if self._encoder is None:  # built via model_validate/from_dict, which skip __init__
            self._encoder = load_encoder(self.checkpoint, self.base_model, self.device, self.precision,
                                         use_cache=self.use_cache, cache_dir=self.cache_dir,
                                         cache_queries=self.cache_queries)
        return self._encoder

    # ---------------------------------------------------------------------------------------- query route
    def _get_query_embedding(self, query: str) -> Embedding:
        return self.encoder.encode_queries([query])[0].tolist()

    async def _aget_query_embedding(self, query: str) -> Embedding:
        return await asyncio.to_thread(self._get_query_embedding, query)

    # ---------------------------------------------------------------------------------------- document route
    def _get_text_embedding(self, text: str) -> Embedding:
        return embed_documents_keeping_empty(self.encoder, [text])[0].tolist()

    def _get_text_embeddings(self, texts: list[str]) -> list[Embedding]:
        # one vector per node: an empty node's text gets the base model's vector of the empty text, with a warning
        return embed_documents_keeping_empty(self.encoder, texts).tolist()

    def get_text_embedding_batch(self, texts: list[str], show_progress: bool = False, **kwargs: Any) -> list[Embedding]:
        """LlamaIndex's batching, after refusing a bare string (which it would embed character by character)."""
        return super().get_text_embedding_batch(validate_documents_allowing_empty(texts), show_progress, **kwargs)

    async def aget_text_embedding_batch(self, texts: list[str], show_progress: bool = False,
                                        **kwargs: Any) -> list[Embedding]:
        return await super().aget_text_embedding_batch(validate_documents_allowing_empty(texts), show_progress, **kwargs)

    async def _aget_text_embedding(self, text: str) -> Embedding:
        return await asyncio.to_thread(self._get_text_embedding, text)

    async def _aget_text_embeddings(self, texts: list[str]) -> list[Embedding]:
        return await asyncio.to_thread(self._get_text_embeddings, texts)
