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
import warnings
from typing import Any

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

require("langchain_core", "langchain", "integrations.langchain (JEPAEmbeddings)")

from langchain_core.callbacks import AsyncCallbackManagerForRetrieverRun, CallbackManagerForRetrieverRun  # noqa: E402
from langchain_core.documents import Document  # noqa: E402
from langchain_core.embeddings import Embeddings  # noqa: E402
from langchain_core.retrievers import BaseRetriever  # noqa: E402
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator  # noqa: E402

__all__ = ["JEPAEmbeddings", "JEPAHybridRetriever", "cosine_relevance", "jepa_chroma_retriever",
           "jepa_chroma_vectorstore"]


_UNSET = object()


class JEPAEmbeddings(BaseModel, Embeddings):
    """A jepa-rag checkpoint as LangChain ``Embeddings``.

    ``JEPAEmbeddings()`` loads the checkpoint shipped with jepa-rag; ``checkpoint=`` takes a checkpoint folder or
    ``"none"`` (the plain base model), ``base_model=`` a local model folder or Hub id, ``device=`` a torch device.
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
        super().__init__(**data)
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


class JEPAHybridRetriever(BaseRetriever):
    """Hybrid retrieval: a cosine Chroma search (:func:`jepa_chroma_vectorstore`) fused with BM25 over the same
    documents, the fusion weight the checkpoint stores (chosen on dev judgments).

    ``JEPAHybridRetriever(collection_name=..., persist_directory=... | client=..., k=4)`` opens the collection
    like :func:`jepa_chroma_vectorstore`; ``vectorstore`` then holds that store, whose writes (``add_texts``,
    ``add_documents``, ``delete``) keep the BM25 index in step (see :mod:`integrations.chroma_lexical`). With a
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
        from .chroma_lexical import HybridCollection

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
        """The :class:`~integrations.chroma_lexical.HybridCollection` behind this retriever."""
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
