"""LangChain ``Embeddings`` backed by a jepa-rag checkpoint: :class:`JEPAEmbeddings`.

Why the routes are split: LangChain calls ``embed_documents`` when indexing and ``embed_query`` when searching;
a JEPA checkpoint may send queries through its predictor head while documents only take the projection, so each
method is bound to its route here. The async methods run the encoder in a worker thread (``asyncio.to_thread``)
so a forward pass never blocks the event loop.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

from langchain_core.embeddings import Embeddings
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator

from jepa_rag.adapters import (
    CACHE_DIR_HELP,
    CACHE_QUERIES_HELP,
    DEFAULT,
    PRECISION_HELP,
    embed_documents_keeping_empty,
    USE_CACHE_HELP,
    from_hf_habits,
    load_encoder,
    normalize_base_model,
    normalize_checkpoint,
)

__all__ = ["JEPAEmbeddings"]


_UNSET = object()


class JEPAEmbeddings(BaseModel, Embeddings):
    """A jepa-rag checkpoint as LangChain ``Embeddings``.

    ``JEPAEmbeddings()`` loads the checkpoint shipped with jepa-rag; ``checkpoint=`` takes a checkpoint folder or
    ``"none"`` (the plain base model), ``base_model=`` a local model folder or Hub id (``model_name=``, as
    ``HuggingFaceEmbeddings`` users write it, is the same: it must be the model the checkpoint was trained on, any
    model with ``checkpoint="none"``), ``device=`` a torch device (``model_kwargs={"device": ...}`` too).
    ``precision`` is the frozen base's arithmetic (default ``"auto"``: bfloat16 where the hardware computes it
    natively, fp32 elsewhere; the same embedding space either way). Documents' base vectors are cached on disk
    (``use_cache``, ``cache_dir``); queries stay in a bounded in-memory LRU unless ``cache_queries=True``.
    """

    model_config = ConfigDict(extra="forbid", protected_namespaces=())

    checkpoint: str = Field(default=DEFAULT, description="'default', 'none' or a jepa-rag checkpoint folder.")
    base_model: str | None = Field(default=None, description="Base model folder or id; None: the checkpoint's.")
    device: str | None = Field(default=None, description="Torch device; None: the encoder's default (CPU).")
    precision: str = Field(default="auto", description=PRECISION_HELP)
    use_cache: bool = Field(default=True, description=USE_CACHE_HELP)
    cache_dir: str | None = Field(default=None, description=CACHE_DIR_HELP)
    cache_queries: bool = Field(default=False, description=CACHE_QUERIES_HELP)

    _encoder: Any = PrivateAttr(default=None)

    @field_validator("checkpoint", mode="before")
    @classmethod
    def _checkpoint(cls, value: Any) -> str:
        return normalize_checkpoint(value)

    @field_validator("cache_dir", mode="before")
    @classmethod
    def _cache_dir(cls, value: Any) -> str | None:
        return os.fspath(value) if value is not None else None

    @field_validator("base_model", mode="before")
    @classmethod
    def _base_model(cls, value: Any) -> str | None:
        return normalize_base_model(value)

    def __init__(self, checkpoint: Any = _UNSET, **data: Any):
        """``JEPAEmbeddings("path/to/checkpoint")`` and ``JEPAEmbeddings(checkpoint=...)`` alike, as in LlamaIndex."""
        if checkpoint is not _UNSET:
            data["checkpoint"] = checkpoint
        super().__init__(**from_hf_habits(data, "JEPAEmbeddings"))
        # load now, outside pydantic validation, so a bad checkpoint raises jepa-rag's own error
        self._encoder = self._load()

    def _load(self):
        return load_encoder(self.checkpoint, self.base_model, self.device, self.precision, use_cache=self.use_cache,
                            cache_dir=self.cache_dir, cache_queries=self.cache_queries)

    @property
    def encoder(self):
        """The underlying :class:`jepa_rag.JEPAEncoder` (shared by every adapter using the same checkpoint)."""
        if self._encoder is None:
            self._encoder = self._load()
        return self._encoder

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        """Document route, one encoder call for the whole list (a bare string is refused, not split into characters).
        One vector per text: an empty text gets the base model's vector of the empty text, with a warning."""
        return embed_documents_keeping_empty(self.encoder, texts).tolist()

    def embed_query(self, text: str) -> list[float]:
        """Query route (through the predictor when the checkpoint routes queries there)."""
        return self.encoder.encode_queries([text])[0].tolist()

    async def aembed_documents(self, texts: list[str]) -> list[list[float]]:
        return await asyncio.to_thread(self.embed_documents, texts)

    async def aembed_query(self, text: str) -> list[float]:
        return await asyncio.to_thread(self.embed_query, text)
