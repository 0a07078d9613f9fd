"""LlamaIndex: :class:`JEPAEmbedding`, a ``BaseEmbedding`` backed by a jepa-rag checkpoint.

Why the routes are split: LlamaIndex calls ``_get_query_embedding`` for questions and ``_get_text_embedding(s)``
for nodes; a JEPA checkpoint may send queries through its predictor head while documents only take the
projection, so each hook is bound to its route here. ``_get_text_embeddings`` hands the whole batch to one encoder
call (LlamaIndex batches by ``embed_batch_size``), and the async hooks run the encoder in a worker thread so an
event loop serving other requests is never blocked by a forward pass.

:func:`jepa_chroma_vector_store` opens a Chroma collection that records the checkpoint (see
:mod:`integrations.chroma`), so reopening the index with another checkpoint fails loudly instead of mixing
embedding spaces. Its node scores are cosine similarities, the same numbers LangChain and Chroma give for the same
query and document (LlamaIndex's own ``ChromaVectorStore`` would report ``exp(cosine - 1)``).
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

from jepa_rag.encoder import validate_texts

from ._common import (
    CACHE_DIR_HELP,
    CACHE_QUERIES_HELP,
    DEFAULT,
    PRECISION_HELP,
    USE_CACHE_HELP,
    load_encoder,
    normalize_base_model,
    normalize_checkpoint,
    require,
)

require("llama_index.core", "llamaindex", "integrations.llamaindex (JEPAEmbedding)")

from llama_index.core.base.base_retriever import BaseRetriever  # noqa: E402
from llama_index.core.base.embeddings.base import BaseEmbedding, Embedding  # noqa: E402
from llama_index.core.schema import NodeWithScore, QueryBundle, TextNode  # noqa: E402
from pydantic import Field, PrivateAttr  # noqa: E402

__all__ = ["JEPAEmbedding", "JEPAHybridNodeRetriever", "jepa_chroma_vector_store"]


class JEPAEmbedding(BaseEmbedding):
    """A jepa-rag checkpoint as a LlamaIndex embedding model.

    ``JEPAEmbedding()`` loads the checkpoint shipped with jepa-rag; ``checkpoint=`` takes a checkpoint folder or
    ``"none"`` (the plain base model), ``base_model=`` a local model folder or Hub id, ``device=`` a torch device.
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
        checkpoint = normalize_checkpoint(checkpoint)
        base_model = normalize_base_model(base_model)
        cache_dir = os.fspath(cache_dir) if cache_dir is not None else None
        # loaded before pydantic validation, so a bad checkpoint or precision raises jepa-rag's own error
        encoder = load_encoder(checkpoint, base_model, device, precision, use_cache=use_cache, cache_dir=cache_dir,
                               cache_queries=cache_queries)
        kwargs.setdefault("model_name", f"jepa-rag:{encoder.fingerprint.model_id}:{checkpoint}")
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


def jepa_chroma_vector_store(client: Any, collection_name: str, embed_model: JEPAEmbedding | None = None, *,
                             hybrid: bool = False, lexical_dir: str | os.PathLike | None = None):
    """A :class:`~integrations.llamaindex_chroma.JEPAChromaVectorStore` (a ``ChromaVectorStore`` whose node scores
    are cosine similarities, as in LangChain and Chroma) over ``collection_name``, whose collection records
    ``embed_model``'s checkpoint.

    ``hybrid=True`` routes the store's writes through a :class:`~integrations.chroma_lexical.HybridCollection`,
    so the BM25 index that :class:`JEPAHybridNodeRetriever` fuses stays in step with every node LlamaIndex adds or
    deletes; ``lexical_dir`` names its folder (required for a Chroma server, see that class).

    Pass the result to ``StorageContext.from_defaults(vector_store=...)`` (new index) or
    ``VectorStoreIndex.from_vector_store(...)`` (reopened index), with ``embed_model`` as the index's embed model;
    the collection's function uses ``embed_model``'s precision (which never conflicts with the stored one).
    With ``embed_model=None`` an existing collection is reopened with the checkpoint it was built with, and
    ``store.embed_model`` holds that checkpoint's :class:`JEPAEmbedding` (it also fills LlamaIndex's
    ``Settings.embed_model`` when nothing was set there, so a reopened index never falls back to OpenAI). Raises
    :class:`~integrations.EmbeddingSpaceConflictError` when the collection was built with another checkpoint.
    """
    require("llama_index.vector_stores.chroma", "llamaindex", "jepa_chroma_vector_store")
    from .chroma import JEPAEmbeddingFunction, get_or_create_collection
    from .llamaindex_chroma import JEPAChromaVectorStore

    ef = None
    if embed_model is not None:
        ef = JEPAEmbeddingFunction(embed_model.checkpoint, embed_model.base_model, embed_model.device,
                                   embed_model.precision, use_cache=embed_model.use_cache,
                                   cache_dir=embed_model.cache_dir, cache_queries=embed_model.cache_queries)
    collection = get_or_create_collection(client, collection_name, ef)
    if hybrid:
        from .chroma_lexical import HybridCollection

        collection = HybridCollection(client, collection, lexical_dir=lexical_dir)
    store = JEPAChromaVectorStore(chroma_collection=collection)
    if embed_model is None:
        ef = getattr(collection, "_embedding_function", None)
        if isinstance(ef, JEPAEmbeddingFunction):
            embed_model = JEPAEmbedding(ef.checkpoint, ef.base_model, ef.device, ef.precision)
    if embed_model is not None:
        store.attach_embed_model(embed_model)
    return store


class JEPAHybridNodeRetriever(BaseRetriever):
    """Hybrid retrieval over a Chroma-backed index: Chroma's cosine search fused with BM25 over the same nodes.

    ``index_or_store`` is a ``VectorStoreIndex`` (or its ``ChromaVectorStore``) made with
    ``jepa_chroma_vector_store(..., hybrid=True)``; a store made without it is wrapped here when ``client`` (the
    chromadb client it lives on) is given, but then writes made through the store bypass the BM25 bookkeeping
    (only count changes are noticed). Returns ``similarity_top_k`` nodes scored by the fused score, with the
    fusion weight the collection's checkpoint stores unless ``fusion`` is given; works in
    ``RetrieverQueryEngine`` like any retriever.
    """

    def __init__(self, index_or_store: Any, similarity_top_k: int = 4, *, depth: int | None = None,
                 fusion: Any = None, client: Any = None, lexical_dir: str | os.PathLike | None = None,
                 **kwargs: Any):
        from jepa_rag.errors import InvalidInputError

        from .chroma_lexical import HybridCollection

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
        self.fusion = fusion
        super().__init__(**kwargs)

    @property
    def hybrid_collection(self):
        """The :class:`~integrations.chroma_lexical.HybridCollection` behind this retriever."""
        return self._hybrid

    def _retrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        text = query_bundle.query_str
        embedding = query_bundle.embedding
        if embedding is None and self._embed_model is not None:
            embedding = self._embed_model.get_query_embedding(text)
        res = self._hybrid.hybrid_query([text], self.similarity_top_k, depth=self.depth, fusion=self.fusion,
                                        query_embeddings=None if embedding is None else [embedding])
        return [NodeWithScore(node=_node(i, doc, meta), score=score)
                for i, doc, meta, score in zip(res["ids"][0], res["documents"][0], res["metadatas"][0],
                                               res["scores"][0])]

    async def _aretrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        return await asyncio.to_thread(self._retrieve, query_bundle)


def _node(node_id: str, text: str | None, metadata: dict | None):
    """A node as ChromaVectorStore rebuilds it: from LlamaIndex's stored node JSON, else a plain TextNode."""
    from llama_index.core.vector_stores.utils import metadata_dict_to_node

    try:
        return metadata_dict_to_node(metadata or {}, text=text)
    except Exception:  # noqa: BLE001 - records not written by LlamaIndex carry no node JSON
        return TextNode(id_=node_id, text=text or "", metadata=dict(metadata or {}))
