"""Chroma: :class:`JEPAEmbeddingFunction`, registered with chromadb's embedding-function registry.

Why registered: chromadb stores each collection's embedding function as ``{"name", "config"}`` and rebuilds it
with ``build_from_config`` when the collection is reopened without one, in a new process or from a Chroma server.
Our config records the checkpoint (``"default"``, ``"none"`` or a folder), the base model override, the device, the
precision (only when not ``"auto"``) and the sha256 of the heads' and base model's weights; rebuilding refuses a
checkpoint whose weights no longer match. Precision is not part of the embedding space: bf16 and fp32 vectors of one
checkpoint agree to cosine >= 0.9997, so either can query a collection built with the other. The cache settings
(``use_cache``, ``cache_dir``, ``cache_queries``) belong to the machine that runs the function, not to the
collection, so they are not stored: a function rebuilt from a collection's config uses the defaults.

Why :func:`get_or_create_collection`: chromadb only compares embedding-function *names* when a collection is
reopened, so ``client.get_collection(name, embedding_function=JEPAEmbeddingFunction(other_checkpoint))`` would
silently mix two embedding spaces. Open collections through :func:`get_or_create_collection` (or call
:func:`check_collection`) to get an :class:`~jepa_rag.errors.EmbeddingSpaceConflictError` instead. Never switch a
collection's checkpoint with ``collection.modify(configuration=...)``: chromadb stores the new record before our
``validate_config_update`` can refuse it.

Documents (``__call__``) take the document route; queries (``embed_query``, which chromadb calls for
``collection.query(query_texts=...)``) take the query route. The default space is cosine, matching the
checkpoints' scoring, so Chroma's distance is ``1 - cosine similarity``.

:func:`ingest` loads many documents batch by batch with idempotent upserts and a progress callback: re-running it
after a crash or a server restart completes the collection without duplicates. A repeated id keeps its first
document, with a warning (chromadb itself raises ``DuplicateIDError`` for duplicates within one call, and its
``add`` silently keeps the stored record when an id already exists); empty documents are skipped the same way; a query vector of the wrong dimension is refused by chromadb
(``InvalidArgumentError: Collection expecting embedding with dimension of 384, got 10``).
"""

from __future__ import annotations

import os
import time
import warnings
from collections.abc import Callable, Sequence
from typing import Any

from jepa_rag.chunking import chunk_records
from jepa_rag.corpus_audit import clean_corpus
from jepa_rag.encoder import validate_texts
from jepa_rag.errors import InvalidInputError

from .adapters import (
    DEFAULT,
    NAME_KEYS_REQUIRED,
    EmbeddingSpaceConflictError,
    check_precision,
    describe,
    from_hf_habits,
    identity,
    load_encoder,
    normalize_base_model,
    normalize_checkpoint,
    require,
    same_space,
)

require("chromadb", "chroma", "jepa_rag.chroma (JEPAEmbeddingFunction)")

from chromadb.api.types import Documents, EmbeddingFunction, Embeddings, Space, validate_metadatas  # noqa: E402
from chromadb.errors import NotFoundError  # noqa: E402
from chromadb.utils.embedding_functions import register_embedding_function  # noqa: E402

NAME = "jepa_rag"

__all__ = ["NAME", "EmbeddingSpaceConflictError", "JEPAEmbeddingFunction", "check_collection",
           "get_or_create_collection", "ingest"]


@register_embedding_function
class JEPAEmbeddingFunction(EmbeddingFunction[Documents]):
    """A jepa-rag checkpoint as a Chroma embedding function.

    ``JEPAEmbeddingFunction()`` loads the checkpoint shipped with jepa-rag; ``checkpoint=`` takes a checkpoint
    folder or ``"none"`` (the plain base model), ``base_model=`` a local model folder or Hub id (``model_name=``,
    as Chroma's ``SentenceTransformerEmbeddingFunction`` takes it, is the same), ``device=`` a torch device,
    ``precision=`` the frozen base's arithmetic (``"auto"``: bf16 where the hardware computes it
    natively, else fp32; or ``"fp32"``, ``"bf16"``). Documents' base vectors are cached on disk (``use_cache``,
    ``cache_dir``); queries stay in a bounded in-memory LRU unless ``cache_queries=True``.
    """

    def __init__(self, checkpoint: str | os.PathLike | None = DEFAULT, base_model: str | os.PathLike | None = None,
                 device: str | None = None, precision: str = "auto", *, use_cache: bool = True,
                 cache_dir: str | os.PathLike | None = None, cache_queries: bool = False, **habits: Any):
        habits = from_hf_habits({**habits, "base_model": base_model, "device": device}, "JEPAEmbeddingFunction")
        base_model, device = habits.pop("base_model"), habits.pop("device")
        if habits:
            raise TypeError(f"JEPAEmbeddingFunction got unexpected keyword arguments {sorted(habits)}")
        self.checkpoint = normalize_checkpoint(checkpoint)
        self.base_model = normalize_base_model(base_model)
        self.device = device
        self.precision = check_precision(precision)
        self.use_cache, self.cache_dir, self.cache_queries = use_cache, cache_dir, cache_queries
        self._encoder = load_encoder(self.checkpoint, self.base_model, device, precision, use_cache=use_cache,
                                     cache_dir=cache_dir, cache_queries=cache_queries)
        self._identity = identity(self._encoder)

    @property
    def encoder(self):
        """The underlying :class:`jepa_rag.JEPAEncoder`."""
        return self._encoder

    # ---------------------------------------------------------------------------------------- embedding
    def __call__(self, input: Documents) -> Embeddings:
        """Document route: what chromadb calls for ``add``/``upsert`` with ``documents=``.

        ``input`` must be a non-empty list of non-blank strings (chromadb refuses an empty result); anything else,
        a bare string included, raises :class:`jepa_rag.InvalidInputError` naming the item.
        """
        texts = validate_texts(input, "documents")
        if not texts:
            raise InvalidInputError("documents: empty list; a Chroma embedding function needs at least one document")
        return list(self._encoder.encode_documents(texts))

    def embed_query(self, input: Documents) -> Embeddings:
        """Query route: what chromadb calls for ``query(query_texts=...)``."""
        return list(self._encoder.encode_queries(input))

    # ---------------------------------------------------------------------------------------- chromadb protocol
    @staticmethod
    def name() -> str:
        return NAME

    def default_space(self) -> Space:
        return "cosine" if self._encoder.scoring == "cosine" else "l2"

    def supported_spaces(self) -> list[Space]:
        """Cosine checkpoints with unit-length vectors rank identically under cosine, ip and l2."""
        if self._encoder.scoring != "cosine":
            return ["l2"]
        return ["cosine", "ip", "l2"] if self._encoder.normalize else ["cosine"]

    def get_config(self) -> dict[str, Any]:
        config: dict[str, Any] = {"checkpoint": self.checkpoint, **self._identity}
        if self.base_model is not None:
            config["base_model"] = self.base_model
        if self.device is not None:
            config["device"] = self.device
        if self.precision != "auto":  # absent means auto (configs stored before "auto" existed meant fp32: same space)
            config["precision"] = self.precision
        return config

    @staticmethod
    def validate_config(config: dict[str, Any]) -> None:
        missing = [k for k in NAME_KEYS_REQUIRED if k not in (config or {})]
        if missing:
            raise ValueError(f"jepa_rag embedding function config lacks {missing}: {config!r}")

    @staticmethod
    def build_from_config(config: dict[str, Any]) -> "JEPAEmbeddingFunction":
        """Rebuild from a stored config, refusing a checkpoint whose weights changed since the collection was built."""
        JEPAEmbeddingFunction.validate_config(config)
        device = config.get("device")
        if device and str(device).startswith("cuda"):
            import torch

            if not torch.cuda.is_available():
                warnings.warn(f"collection was built on device {device!r}, which is not available here; using the CPU",
                              RuntimeWarning, stacklevel=2)
                device = None
        ef = JEPAEmbeddingFunction(config["checkpoint"], config.get("base_model"), device,
                                   config.get("precision", "auto"))
        live = ef.get_config()
        if not same_space(config, live):
            raise EmbeddingSpaceConflictError(
                f"this collection was embedded with {describe(config)}, but {config['checkpoint']} now loads "
                f"{describe(live)}; its vectors would not match new ones. Re-index the collection, or restore the "
                "original checkpoint.")
        return ef

    def validate_config_update(self, old_config: dict[str, Any], new_config: dict[str, Any]) -> None:
        """Refuse ``collection.modify(configuration={"embedding_function": other_checkpoint})``.

        Caveat (chromadb 1.5.9): ``modify`` stores the new configuration *before* calling this, so the error comes
        too late to keep the old record; never switch checkpoints with ``modify``, re-index into a new collection.
        """
        if not same_space(old_config, new_config):
            raise EmbeddingSpaceConflictError(
                f"cannot switch a collection from {describe(old_config)} to {describe(new_config)}: the stored "
                "vectors would be in another embedding space. Re-index into a new collection instead.")

    def __repr__(self) -> str:
        return (f"JEPAEmbeddingFunction(checkpoint={self.checkpoint!r}, base_model={self.base_model!r}, "
                f"device={self.device!r}, precision={self.precision!r})")


def _stored(collection: Any) -> dict[str, Any] | None:
    stored = (collection.configuration_json or {}).get("embedding_function")
    if not stored or stored.get("type") != "known":
        return None
    return stored


def _warn_unverifiable(collection: Any) -> None:
    if collection.count() > 0:
        warnings.warn(
            f"collection {collection.name!r} records no embedding function, so jepa-rag cannot verify that its "
            "vectors come from the same checkpoint", UserWarning, stacklevel=3)


def check_collection(collection: Any, embedding_function: JEPAEmbeddingFunction) -> None:
    """Raise :class:`EmbeddingSpaceConflictError` unless ``collection`` was built with the same checkpoint.

    A collection that recorded no embedding function (made with precomputed vectors, or by a tool that passes
    none) cannot be checked: that only warns, and only when it already holds vectors.
    """
    stored = _stored(collection)
    if stored is None:
        _warn_unverifiable(collection)
        return
    if stored.get("name") != NAME:
        raise EmbeddingSpaceConflictError(
            f"collection {collection.name!r} was embedded with Chroma embedding function {stored.get('name')!r}, "
            f"not jepa-rag's; querying it with {describe(embedding_function.get_config())} would mix embedding "
            "spaces. Use another collection name.")
    config = stored.get("config") or {}
    if not same_space(config, embedding_function.get_config()):
        raise EmbeddingSpaceConflictError(
            f"collection {collection.name!r} was embedded with {describe(config)}, but it was opened with "
            f"{describe(embedding_function.get_config())}. Vectors from different checkpoints live in different "
            "embedding spaces and cannot be mixed: open it without an embedding function to use the stored "
            "checkpoint, or index into another collection name.")


def get_or_create_collection(client: Any, name: str, embedding_function: JEPAEmbeddingFunction | None = None, *,
                             metadata: dict[str, Any] | None = None, configuration: dict[str, Any] | None = None,
                             create: bool = True) -> Any:
    """Open collection ``name`` on any chromadb client (embedded or HTTP), checking its embedding space.

    - ``embedding_function=None`` and the collection exists: the stored checkpoint is rebuilt from its config.
    - ``embedding_function=None`` and it does not: it is created with ``JEPAEmbeddingFunction()`` (the default
      checkpoint), in the function's default space (cosine).
    - an explicit function: the collection is opened or created with it; a collection built with a different
      checkpoint raises :class:`EmbeddingSpaceConflictError`.

    ``create=False`` raises chromadb's ``NotFoundError`` for a missing collection.
    """
    if embedding_function is None:
        try:
            existing = client.get_collection(name, embedding_function=None)
        except NotFoundError:
            if not create:
                raise
            embedding_function = JEPAEmbeddingFunction()
        else:
            stored = _stored(existing)
            if stored is None:
                _warn_unverifiable(existing)
                return existing
            if stored.get("name") != NAME:
                raise EmbeddingSpaceConflictError(
                    f"collection {name!r} was embedded with Chroma embedding function {stored.get('name')!r}, "
                    "not jepa-rag's; open it with that function, or use another collection name")
            embedding_function = JEPAEmbeddingFunction.build_from_config(stored.get("config") or {})
            return client.get_collection(name, embedding_function=embedding_function)
    if create:
        collection = client.get_or_create_collection(
            name, embedding_function=embedding_function, metadata=metadata, configuration=configuration)
    else:
        collection = client.get_collection(name, embedding_function=embedding_function)
    check_collection(collection, embedding_function)
    return collection


def _chunker(collection: Any, chunking: Any) -> Any:
    from jepa_rag.chunking import Chunker

    if isinstance(chunking, Chunker):
        return chunking
    if chunking is not True:
        raise InvalidInputError(f"chunking must be True, False or a jepa_rag.chunking.Chunker, got {chunking!r}")
    ef = getattr(collection, "_embedding_function", None)
    encoder = getattr(ef, "encoder", None)
    if encoder is None:
        raise InvalidInputError("chunking=True needs a collection with jepa-rag's embedding function (its base "
                                "model's tokenizer counts the tokens); pass chunking=Chunker(tokenizer) otherwise")
    return Chunker.for_encoder(encoder)


def _transient(exc: BaseException) -> bool:
    """A connection that failed or broke (a Chroma server restarting), as opposed to a refused request."""
    if isinstance(exc, ConnectionError):
        return True
    try:
        import httpx
    except ImportError:  # pragma: no cover  (chromadb depends on httpx)
        return False
    return isinstance(exc, httpx.TransportError)


def ingest(collection: Any, ids: Sequence[str], documents: Sequence[str], *,
           metadatas: Sequence[dict[str, Any]] | None = None, batch_size: int = 32,
           on_batch: Callable[[int, list[str]], None] | None = None, retries: int = 3,
           retry_wait: float = 1.0, chunking: Any = False) -> int:
    """Upsert ``documents`` under ``ids`` into ``collection`` batch by batch; safe to re-run after a crash.

    Why upsert: each batch is one ``collection.upsert`` call keyed by id, so running the same ingest again after a
    crash, a kill or a Chroma server restart rewrites what was already stored instead of duplicating it, and
    completes the rest. (chromadb's ``add`` silently skips ids that already exist, keeping their old text and
    vector.) Everything is checked before the first write, so bad input never leaves a half-filled collection:
    ids must be non-empty strings and documents strings (:class:`jepa_rag.InvalidInputError` names the first
    offender); metadatas, if given, one per document. Empty or whitespace-only documents and repeated ids (the
    first wins) are skipped with one warning (:func:`jepa_rag.corpus_audit.clean_corpus`).

    ``on_batch(done, batch_ids)`` runs after chromadb has acknowledged each batch (``done`` documents so far): from
    then on the batch survives a crash of this process or a restart of the server, so it is the place to record
    progress. A batch that fails on a broken connection (a server restarting) is retried up to ``retries`` times,
    ``retry_wait`` seconds apart, doubling each time; other errors are raised at once. Returns the number of
    documents written (the skipped ones not counted).

    ``chunking=True`` (or a :class:`jepa_rag.chunking.Chunker`) stores each document as token-aware chunks that
    fit the base model's window (:mod:`jepa_rag.chunking`; ``True`` counts with the collection's own base model):
    ids ``<id>#<index>``, metadata ``source`` (the document id), ``chunk``, ``start``/``end`` (the character span
    in the document), ``sha256`` and ``chunking``, besides the document's own; ``done`` and the result then count
    chunks. Re-ingesting a changed document overwrites its chunks by id; delete ``where={"source": id}`` first
    when it may have shrunk (``jepa-rag ingest`` mirrors a folder that way). The default ``batch_size`` keeps a few
    seconds of encoding between acknowledgements on a CPU.
    """
    if isinstance(ids, (str, bytes)):
        raise InvalidInputError("ids: expected a list of strings, got a single string; wrap it in a list")
    ids = list(ids)
    if isinstance(documents, (str, bytes)) or not hasattr(documents, "__iter__"):
        validate_texts(documents, "documents")  # names what it got instead of a list
    documents = list(documents)
    for j, doc in enumerate(documents):  # strings only: a dict is no Chroma document
        if not isinstance(doc, str):
            raise InvalidInputError(f"documents[{j}]: expected a string, got {type(doc).__name__} ({doc!r:.40})")
    if len(ids) != len(documents):
        raise InvalidInputError(f"got {len(ids)} ids for {len(documents)} documents; give one id per document")
    metadatas = list(metadatas) if metadatas is not None else None
    if metadatas is not None and len(metadatas) != len(ids):
        raise InvalidInputError(f"got {len(metadatas)} metadatas for {len(ids)} documents")
    # the corpus rule (jepa_rag.corpus_audit): empty documents and repeated ids (first wins) skipped, said once
    clean = clean_corpus(ids, documents, metadatas, what="documents")
    ids, texts, metadatas = clean.ids, clean.texts, clean.metadatas
    if chunking is not False and chunking is not None:
        ids, texts, metadatas = chunk_records(_chunker(collection, chunking), ids, texts, metadatas)
    if metadatas is not None:
        validate_metadatas(metadatas)
    if not isinstance(batch_size, int) or batch_size < 1:
        raise InvalidInputError(f"batch_size must be a positive integer, got {batch_size!r}")
    done = 0
    for start in range(0, len(ids), batch_size):
        batch = slice(start, start + batch_size)
        kwargs: dict[str, Any] = {"ids": ids[batch], "documents": texts[batch]}
        if metadatas is not None:
            kwargs["metadatas"] = metadatas[batch]
        wait = retry_wait
        for attempt in range(retries + 1):
            try:
                collection.upsert(**kwargs)
                break
            except Exception as exc:
                from jepa_rag.storage_full import storage_full_error

                full = storage_full_error(collection, exc)  # chromadb's own error never says "disk full"
                if full is not None:
                    raise full from exc
                if attempt == retries or not _transient(exc):
                    raise
                warnings.warn(f"ingest: batch at {start} failed ({exc!r}); retrying in {wait:g} s", RuntimeWarning,
                              stacklevel=2)
                time.sleep(wait)
                wait *= 2
        done += len(kwargs["ids"])
        if on_batch is not None:
            on_batch(done, kwargs["ids"])
    return done
