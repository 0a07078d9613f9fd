"""Hybrid retrieval on Chroma: a BM25 index that belongs to a collection and is updated with every write.

:class:`HybridCollection` wraps a chromadb collection. Every write made through it (``add``, ``upsert``,
``update``, ``delete``, and :func:`jepa_rag.chroma.ingest` given a HybridCollection) updates the collection's
:class:`~jepa_rag.lexical_store.LexicalStore` in time proportional to the batch, and
:meth:`HybridCollection.hybrid_query` fuses Chroma's cosine top-``depth`` with BM25's top-``depth``
(:class:`jepa_rag.fusion.Fusion`, the collection's checkpoint's weight by default), both sides filtered by ``where``
/ ``where_document`` before fusion. Anything it does not override goes to the wrapped collection, so LangChain's
``Chroma`` and LlamaIndex's ``ChromaVectorStore`` can write through it too.

Where the lexical store lives: ``<PersistentClient path>/jepa_rag_lexical/<collection id>/`` for an embedded client,
``<lexical_dir>/<collection id>/`` for a Chroma server (``lexical_dir`` is then required: every process and machine
writing the collection must share that folder), and only in memory for an ``EphemeralClient``.

What a query costs: one read of the store's commit counter (O(1)); Chroma's top-``depth``; tantivy's top-``depth``
over postings; BM25 of the dense side's candidates (those ids' postings only); each side's whole-collection mean
and spread from maintained moments and a fixed-size sample (:mod:`jepa_rag.lexical_store`); and one ``get`` of the
winners' texts and metadata by id. Nothing per query or per write walks the collection and no process holds its text.

Writes: under the folder's lock (``flock``: other processes and threads wait, a dead holder releases it) a write
reads the touched ids' current vectors (O(batch)), journals them, writes to Chroma, reads back what Chroma now holds
for those ids and applies exactly that to the lexical store. A writer killed at any point leaves either no journal
or one that the next writer or reader replays from the collection, so the two sides never silently disagree.

The collection is the source of truth: a store that is missing, of an older format or damaged is rebuilt from it
once (reading every record: the only O(collection) step, done on first use and on repair), and
:meth:`HybridCollection.refresh` rebuilds on demand after writes that bypassed this API.

Other processes: with a Chroma server (``HttpClient``) and a shared ``lexical_dir``, a long-running reader sees other
processes' writes on both sides at its next query. An embedded ``PersistentClient`` is single-process (Chroma does
not reload another process's vector writes), so a reader that notices another process's write to its collection
raises :class:`~jepa_rag.errors.StaleCollectionError` pointing at ``chroma run`` instead of answering from half-stale
data.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import json
import os
import socket
import threading
import uuid
import warnings
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from jepa_rag.encoder import MAX_QUERY_CHARS, validate_texts
from jepa_rag.errors import InvalidInputError, LexicalIndexError, StaleCollectionError, StorageFullError
from jepa_rag.fsutil import atomic_write_bytes
from jepa_rag.fusion import Fusion, fusion_of
from jepa_rag.fusion_choice import N_QUERIES, FusionChoice
from jepa_rag.lexical_store import LexicalStore, UnsupportedFilter, where_query
from jepa_rag.lexical_store import cosine_moments, folder_lock, key_of
from jepa_rag.lexical_store import tokenize as _tokenize

from .adapters import require

require("chromadb", "chroma", "jepa_rag.chroma_hybrid (HybridCollection)")

__all__ = ["HybridCollection", "hybrid_collection"]

FOLDER_NAME = "jepa_rag_lexical"
FUSION_KEY = "jepa_rag:fusion"  # the collection metadata key holding its chosen lexical weight (a JSON FusionChoice)
CURRENT = "current.json"
FORMAT = "jepa-rag-lexical-store"
PAGE = 2000  # records read per ``get`` when (re)building a store from its collection
MAX_N_RESULTS = 10_000
FILTER_WIDEN = (4, 16)  # how much deeper BM25 looks when a filter can only be checked on its candidates
#: identifies this process among the writers of a store (the store records who committed last)
PROCESS_TOKEN = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"

_OPEN_STORES: dict[str, LexicalStore] = {}
_DENSE_POOL = ThreadPoolExecutor(max_workers=4, thread_name_prefix="jepa-rag-dense")
_OPEN_GUARD = threading.Lock()


def _is_http_client(client: Any) -> bool:
    impl = str(getattr(client.get_settings(), "chroma_api_impl", ""))
    return "fastapi" in impl.lower()


class HybridCollection:
    """A chromadb collection plus its BM25 index, kept in step (see the module docstring for how).

    Build one with :func:`hybrid_collection`, or wrap an open collection: ``HybridCollection(client, collection)``.
    ``lexical_dir`` is where lexical stores are kept (one subfolder per collection id); it defaults to a folder
    inside a ``PersistentClient``'s path, is required for an ``HttpClient`` (a Chroma server), and an
    ``EphemeralClient`` keeps the store in memory. ``fusion`` overrides the checkpoint's stored fusion.
    """

    def __init__(self, client: Any, collection: Any, *, lexical_dir: str | os.PathLike | None = None,
                 fusion: Fusion | None = None):
        if isinstance(collection, HybridCollection):
            collection = collection.collection
        if fusion is not None and not isinstance(fusion, Fusion):
            raise InvalidInputError(f"fusion must be a jepa_rag.fusion.Fusion, got {type(fusion).__name__}")
        self._client = client
        self._collection = collection
        self._fusion = fusion
        self._fusion_given = fusion is not None
        self._warned_choice = False
        self._http = _is_http_client(client)
        self._folder = self._resolve_folder(lexical_dir)
        self._store: LexicalStore | None = None
        self._baseline_seq: int | None = None
        self._open_lock = threading.Lock()
        self._warned_lexical = False
        #: how the lexical store was obtained: ``built`` (from the collection) or ``loaded`` (from disk)
        self.refreshes: Counter[str] = Counter()

    # ---------------------------------------------------------------------------------------- plumbing
    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") or name in ("_collection", "_client"):
            raise AttributeError(name)
        return getattr(self._collection, name)

    def __repr__(self) -> str:
        where = str(self._folder) if self._folder is not None else "memory"
        return f"HybridCollection({self._collection.name!r}, lexical index in {where})"

    @property
    def collection(self) -> Any:
        """The wrapped chromadb collection (writes made on it directly bypass the lexical bookkeeping)."""
        return self._collection

    @property
    def folder(self) -> Path | None:
        """This collection's lexical-store folder, or None when it is kept in memory only."""
        return self._folder

    @property
    def fusion(self) -> Fusion:
        """The fusion used by :meth:`hybrid_query`: the one given, else the collection's checkpoint's, with the
        lexical weight the collection stores (:meth:`choose_fusion`) where it stores one."""
        if self._fusion is None:
            fusion = fusion_of(self._checkpoint())
            choice = self.fusion_choice
            if choice is not None:
                fusion = dataclasses.replace(fusion, lexical_weight=choice.lexical_weight)
            self._fusion = fusion
        return self._fusion

    @property
    def fusion_choice(self) -> FusionChoice | None:
        """The lexical weight this collection stores and the evidence behind it (:meth:`choose_fusion`), or None."""
        raw = (self._collection.metadata or {}).get(FUSION_KEY)
        if raw is None:
            return None
        try:
            return FusionChoice.from_dict(json.loads(raw))
        except (ValueError, TypeError, InvalidInputError):
            if not self._warned_choice:
                warnings.warn(f"collection {self._collection.name!r}: its stored fusion choice is damaged and is "
                              "ignored (the checkpoint's weight is used); choose_fusion() stores a new one",
                              RuntimeWarning, stacklevel=2)
                self._warned_choice = True
            return None

    def choose_fusion(self, mode: str | float = "auto", *, embedding_function: Any = None, seed: int = 0,
                      n_queries: int = N_QUERIES, force: bool = False, progress: bool = False) -> FusionChoice:
        """Choose this collection's lexical weight and store it with the collection (its metadata, key
        ``jepa_rag:fusion``), where :attr:`fusion` and every later process read it.

        ``mode``: ``"auto"`` chooses from pseudo-queries cut out of a fixed sample of the collection's own documents
        (:mod:`jepa_rag.fusion_choice`: the checkpoint's weight stays unless another beats it by a paired test); a
        stored automatic choice is kept until the collection has doubled or halved since (``force=True`` chooses
        again). ``"checkpoint"`` stores the checkpoint's weight, a number in [0, 1] that weight. The cost of
        ``"auto"`` is fixed: ``n_queries`` pseudo-queries and their targets encoded (``embedding_function``:
        the collection's own by default), and one top-k search per pseudo-query on each side.
        """
        from jepa_rag.fusion_choice import choose_for_collection

        prior = fusion_of(self._checkpoint()).lexical_weight
        count = self._collection.count()
        if mode == "checkpoint":
            choice = FusionChoice(prior, "the checkpoint's weight (chosen on dev judgments), as asked", prior, prior,
                                  0, mode="checkpoint", documents=count)
        elif isinstance(mode, (int, float)) and not isinstance(mode, bool):
            if not 0.0 <= float(mode) <= 1.0:
                raise InvalidInputError(f"choose_fusion: a weight must be in [0, 1], got {mode!r}")
            choice = FusionChoice(float(mode), f"set to {float(mode):g} by the user", prior, float(mode), 0,
                                  mode="fixed", documents=count)
        elif mode == "auto":
            stored = self.fusion_choice
            if (not force and stored is not None and stored.mode == "auto" and stored.prior_weight == prior
                    and stored.documents > 0 and stored.documents / 2 <= count <= stored.documents * 2):
                return stored
            choice = choose_for_collection(self, embedding_function=embedding_function, prior=prior, seed=seed,
                                           n_queries=n_queries, progress=progress)
            choice = dataclasses.replace(choice, documents=count)
        else:
            raise InvalidInputError(f"choose_fusion: mode must be 'auto', 'checkpoint' or a weight in [0, 1], "
                                    f"got {mode!r}")
        stored = json.dumps(choice.to_dict())
        self._collection.modify(metadata={**(self._collection.metadata or {}), FUSION_KEY: stored})
        choice = FusionChoice.from_dict(json.loads(stored))  # what every later reader gets
        if not self._fusion_given:
            self._fusion = None
        return choice

    def _checkpoint(self) -> str | None:
        stored = (self._collection.configuration_json or {}).get("embedding_function") or {}
        if stored.get("name") != "jepa_rag":
            return None
        return (stored.get("config") or {}).get("checkpoint")

    def _resolve_folder(self, lexical_dir: str | os.PathLike | None) -> Path | None:
        if lexical_dir is not None:
            root = Path(lexical_dir).expanduser().resolve()
        elif self._http:
            raise InvalidInputError(
                "a Chroma server's collection needs lexical_dir=<folder> for its lexical index (the server's own "
                "folder is not reachable from here); give every client of this collection the same folder")
        else:
            settings = self._client.get_settings()
            if not getattr(settings, "is_persistent", False) or not settings.persist_directory:
                return None
            root = Path(settings.persist_directory).expanduser().resolve() / FOLDER_NAME
        return root / str(self._collection.id)

    # ---------------------------------------------------------------------------------------- the store
    @contextlib.contextmanager
    def _folder_lock(self) -> Iterator[None]:
        """The folder's lock, also when the store itself is not open yet (a rebuild swaps stores under it)."""
        if self._folder is None:
            with self._memory_store().lock():
                yield
            return
        with folder_lock(self._folder):
            yield

    def _memory_store(self) -> LexicalStore:
        key = f"memory:{id(self._client)}:{self._collection.id}"
        with _OPEN_GUARD:
            store = _OPEN_STORES.get(key)
            if store is None:
                store = _OPEN_STORES[key] = LexicalStore(None)
        return store

    def _current_name(self) -> str | None:
        try:
            current = json.loads((self._folder / CURRENT).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        name = current.get("store") if isinstance(current, dict) and current.get("format") == FORMAT else None
        return name if isinstance(name, str) and name.startswith("store-") and "/" not in name else None

    def _open(self) -> LexicalStore:
        """This collection's store, opened once per process (built from the collection when there is none)."""
        if self._store is not None and not self._store.retired:
            return self._store
        with self._open_lock:
            if self._store is not None and not self._store.retired:
                return self._store
            if self._folder is None:
                store = self._memory_store()
                if not store.built:
                    with store.lock():
                        if not store.built:
                            self._fill(store)
                self._store = store
                return store
            name = self._current_name()
            store = self._try_open(name) if name else None
            if store is None or not store.built:
                with self._folder_lock():
                    name = self._current_name()
                    store = self._try_open(name) if name else None
                    if store is None or not store.built:
                        store = self._rebuild_locked()
            else:
                self.refreshes["loaded"] += 1
            self._store = store
            return store

    def _try_open(self, name: str) -> LexicalStore | None:
        try:
            return LexicalStore(self._folder / name)
        except LexicalIndexError as exc:
            warnings.warn(f"rebuilding the lexical index of {self._collection.name!r}: {exc}", RuntimeWarning,
                          stacklevel=4)
            return None

    def _rebuild_locked(self) -> LexicalStore:
        """A fresh store filled from the collection, then made current atomically; the old one is retired."""
        old_name = self._current_name()
        name = f"store-{uuid.uuid4().hex[:12]}"
        store = LexicalStore(self._folder / name)
        self._fill(store)
        atomic_write_bytes(self._folder / CURRENT, json.dumps({"format": FORMAT, "store": name}).encode(),
                           sync_dir=True)
        if old_name and old_name != name:
            with contextlib.suppress(LexicalIndexError):
                LexicalStore(self._folder / old_name).retire()
        for entry in self._folder.iterdir():  # stores nothing names any more (and the old single-index format)
            if entry.name not in (name, old_name, "lock", CURRENT) and not entry.name.startswith(CURRENT):
                _remove_tree(entry)
        self.refreshes["built"] += 1
        return store

    def _fill(self, store: LexicalStore) -> None:
        """Read every record page by page into ``store`` (the one O(collection) step: first use and repair)."""
        read = 0
        while True:
            page = self._collection.get(include=["documents", "metadatas", "embeddings"], limit=PAGE, offset=read)
            n = len(page["ids"])
            if n == 0 and read > 0:
                break
            vectors = page.get("embeddings")
            has = vectors is not None and len(vectors) == n
            final = {i: (doc, meta, vectors[j] if has else None)
                     for j, (i, doc, meta) in enumerate(zip(page["ids"], page["documents"] or [None] * n,
                                                             page["metadatas"] or [None] * n))}
            store.commit(final, {}, writer=PROCESS_TOKEN, has_vectors=has)
            read += n
            if n < PAGE:
                break

    def _recover(self, store: LexicalStore) -> None:
        """Replay a journal a killed writer left (caller holds the lock)."""
        pending = store.pending()
        if pending is not None:
            store.commit(self._records(list(pending)), pending, writer=PROCESS_TOKEN)

    def _reader(self) -> LexicalStore:
        """The store, caught up with every commit; refuses answers an embedded client cannot keep consistent."""
        store = self._open()
        try:
            changed = store.sync()
        except LexicalIndexError as exc:
            warnings.warn(f"rebuilding the lexical index of {self._collection.name!r}: {exc}", RuntimeWarning,
                          stacklevel=3)
            store = self._rebuild()
            changed = store.sync()
        if store.retired:
            self._store = None
            return self._reader()
        if store.has_pending:
            self._recover_if_writer_died(store)
        if self._baseline_seq is None:
            self._baseline_seq = store.seq
        elif changed and not self._http and self._folder is not None and store.seq > self._baseline_seq:
            writer = store.last_writer
            if writer and writer.split(":")[:2] != PROCESS_TOKEN.split(":")[:2]:
                raise StaleCollectionError(
                    f"collection {self._collection.name!r} was written by another process ({writer.split(':')[0]}, "
                    f"pid {writer.split(':')[1]}) since this process opened it. An embedded chromadb "
                    "PersistentClient does not see another process's vector writes, so dense and BM25 results would "
                    "disagree. Serve the collection from one process, or run a Chroma server (`chroma run --path "
                    "<folder>`) and open it with chromadb.HttpClient plus a shared lexical_dir in every process.")
        return store

    def _recover_if_writer_died(self, store: LexicalStore) -> None:
        """A journal without a live writer holding the lock: replay it now rather than wait for the next write."""
        if self._folder is None:
            return
        with folder_lock(self._folder, blocking=False) as held:
            if held:  # else a live writer holds it and will clear its own journal
                self._recover(store)
                store.sync()

    def _rebuild(self) -> LexicalStore:
        with self._open_lock:
            if self._folder is None:
                store = self._memory_store()
                with store.lock():
                    store.reset()
                    self._fill(store)
            else:
                with self._folder_lock():
                    store = self._rebuild_locked()
            self._store = store
            self._baseline_seq = None
            return store

    def lexical_index(self) -> LexicalStore:
        """The lexical store of this collection, caught up with every commit."""
        return self._reader()

    def lexical_ids(self) -> list[str]:
        """Every id the lexical side holds (a diagnostic: it walks the whole index)."""
        return self._reader().ids()

    def refresh(self) -> LexicalStore:
        """Rebuild the lexical store from the collection now (after writes that bypassed this API)."""
        return self._rebuild()

    # ---------------------------------------------------------------------------------------- writes
    def _records(self, ids: Sequence[str]) -> dict[str, tuple | None]:
        """What the collection holds now for ``ids``: ``(text, metadata, vector)``, None where absent."""
        out: dict[str, tuple | None] = dict.fromkeys(ids)
        for start in range(0, len(ids), PAGE):
            got = self._collection.get(ids=list(ids[start:start + PAGE]),
                                       include=["documents", "metadatas", "embeddings"])
            n = len(got["ids"])
            vectors = got.get("embeddings")
            for j, i in enumerate(got["ids"]):
                out[i] = ((got["documents"] or [None] * n)[j], (got["metadatas"] or [None] * n)[j],
                          vectors[j] if vectors is not None and len(vectors) == n else None)
        return out

    def _write(self, method: str, ids: Sequence[str], kwargs: dict[str, Any]) -> None:
        try:
            self._write_locked(method, ids, kwargs)
        except OSError as exc:
            if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG) and not isinstance(exc, StorageFullError):
                raise StorageFullError(exc.errno, f"no space left on {self._folder}: the write reached Chroma but "
                                       "not its lexical index; free space and write again (the next write or query "
                                       "replays it)") from exc
            raise

    def _write_locked(self, method: str, ids: Sequence[str], kwargs: dict[str, Any]) -> None:
        ids = list(dict.fromkeys(ids))
        store = self._open()
        with self._folder_lock():
            store.sync()
            if store.retired:
                self._store = None
                store = self._open()
            self._recover(store)
            before = self._records(ids)
            old = {i: (r[2] if r is not None else None) for i, r in before.items()}
            store.begin(old)
            written = False
            try:
                getattr(self._collection, method)(**kwargs)
                written = True
            finally:  # whatever Chroma holds now (also after a refused write) is what the store must describe
                final = _known_result(method, kwargs, before) if written else None
                store.commit(final if final is not None else self._records(ids), old, writer=PROCESS_TOKEN)

    @staticmethod
    def _ids(ids: Any) -> list[str]:
        if ids is None:
            raise InvalidInputError("ids: a HybridCollection needs explicit ids for every write")
        if isinstance(ids, str):
            return [ids]
        return list(ids)

    def _embed(self, kwargs: dict[str, Any]) -> dict[str, Any]:
        """Embed documents before taking the lock, so readers wait for Chroma's write only, not the encoder."""
        ef = getattr(self._collection, "_embedding_function", None)
        if kwargs.get("documents") is not None and kwargs.get("embeddings") is None and ef is not None:
            kwargs["embeddings"] = ef(list(kwargs["documents"]))
        return kwargs

    def add(self, ids: Any, embeddings: Any = None, metadatas: Any = None, documents: Any = None,
            **kwargs: Any) -> None:
        """chromadb's ``add`` (existing ids are kept as they were, as chromadb does), keeping BM25 in step."""
        kw = self._embed(dict(ids=ids, embeddings=embeddings, metadatas=metadatas, documents=documents, **kwargs))
        self._write("add", self._ids(ids), kw)

    def upsert(self, ids: Any, embeddings: Any = None, metadatas: Any = None, documents: Any = None,
               **kwargs: Any) -> None:
        """chromadb's ``upsert``, keeping BM25 in step."""
        kw = self._embed(dict(ids=ids, embeddings=embeddings, metadatas=metadatas, documents=documents, **kwargs))
        self._write("upsert", self._ids(ids), kw)

    def update(self, ids: Any, embeddings: Any = None, metadatas: Any = None, documents: Any = None,
               **kwargs: Any) -> None:
        """chromadb's ``update``, keeping BM25 in step."""
        kw = self._embed(dict(ids=ids, embeddings=embeddings, metadatas=metadatas, documents=documents, **kwargs))
        self._write("update", self._ids(ids), kw)

    def delete(self, ids: Any = None, where: Any = None, where_document: Any = None, **kwargs: Any) -> None:
        """chromadb's ``delete`` (by ids, ``where`` and/or ``where_document``), keeping BM25 in step."""
        if ids is None and where is None and where_document is None:
            raise InvalidInputError("delete: give ids, where or where_document (nothing would be deleted)")
        if isinstance(ids, str):
            ids = [ids]
        matched = self._collection.get(ids=ids, where=where, where_document=where_document, include=[])["ids"]
        if matched:
            self._write("delete", matched, dict(ids=list(matched), **kwargs))

    def ingest(self, ids: Sequence[str], documents: Sequence[str], **kwargs: Any) -> int:
        """:func:`jepa_rag.chroma.ingest` through this collection (batched, idempotent, resumable)."""
        from .chroma import ingest

        return ingest(self, ids, documents, **kwargs)

    # ---------------------------------------------------------------------------------------- hybrid search
    def hybrid_query(self, query_texts: Sequence[str], n_results: int = 10, *,
                     query_embeddings: Any = None, depth: int | None = None, fusion: Fusion | None = None,
                     where: Mapping | None = None, where_document: Mapping | None = None,
                     ) -> dict[str, list[list[Any]]]:
        """Dense (Chroma cosine, top ``depth``) and BM25 (top ``depth``) results fused into the ``n_results`` best.

        ``where`` / ``where_document`` are chromadb filters, applied to both sides before fusion: a document they
        exclude is never returned. ``query_embeddings`` skips embedding the queries (their texts are still needed
        for BM25). Returns a dict like chromadb's ``query``: ``ids``, ``documents``, ``metadatas`` and ``scores``
        (the fused score), plus ``dense_scores`` (cosine similarity) and ``lexical_scores`` (BM25), None where a side
        did not return the document; one list per query, best first.
        """
        queries = validate_texts(query_texts, "query_texts")
        if not queries:
            raise InvalidInputError("query_texts: empty list; give at least one query")
        if isinstance(n_results, bool) or not isinstance(n_results, int) or not 1 <= n_results <= MAX_N_RESULTS:
            raise InvalidInputError(f"n_results must be an integer from 1 to {MAX_N_RESULTS}, got {n_results!r}")
        if depth is not None and (isinstance(depth, bool) or not isinstance(depth, int)
                                  or not 1 <= depth <= MAX_N_RESULTS):
            raise InvalidInputError(f"depth must be an integer from 1 to {MAX_N_RESULTS}, got {depth!r}")
        if fusion is not None and not isinstance(fusion, Fusion):
            raise InvalidInputError(f"fusion must be a jepa_rag.fusion.Fusion, got {type(fusion).__name__}")
        fusion = fusion or self.fusion
        depth = max(depth or fusion.depth, n_results)
        try:
            store = self._reader()
        except (LexicalIndexError, OSError) as exc:  # derived data never blocks an answer: dense alone, said once
            if not self._warned_lexical:
                warnings.warn(f"hybrid_query on {self._collection.name!r} answers from the dense side only: its "
                              f"lexical index is unavailable ({exc})", RuntimeWarning, stacklevel=2)
                self._warned_lexical = True
            store = None
        out: dict[str, list[list[Any]]] = {k: [] for k in ("ids", "documents", "metadatas", "scores",
                                                            "dense_scores", "lexical_scores")}
        cosine = self._space() == "cosine"
        moments = store.moments if cosine and store is not None else None
        ef = getattr(self._collection, "_embedding_function", None)
        if query_embeddings is None and ef is not None:
            query_embeddings = ef.embed_query(queries)
        dense_kwargs: dict[str, Any] = {"n_results": depth, "include": ["distances"],
                                        "where": where, "where_document": where_document}
        if query_embeddings is not None:
            dense_kwargs["query_embeddings"] = query_embeddings
        else:
            dense_kwargs["query_texts"] = queries
        # Chroma's search runs in a worker thread (its Rust core releases the GIL) while BM25's candidates are found
        dense_future = _DENSE_POOL.submit(self._collection.query, **dense_kwargs)
        try:
            lexical_filter = where_query(store, where) if where and store is not None else None
            post_filter = where_document is not None
        except UnsupportedFilter:
            lexical_filter, post_filter = None, True
        # a query's first MAX_QUERY_CHARS characters are what BM25 matches (the encoder cuts queries alike)
        tokens = _tokenize([q[:MAX_QUERY_CHARS] for q in queries]) if store is not None else [[] for _ in queries]
        try:
            lexical_hits = [([], True) if store is None else self._lexical(
                store, toks, depth, lexical_filter, where if post_filter else None, where_document) for toks in tokens]
            # what needs no dense result is computed while Chroma searches
            dense_stats = _dense_stats(query_embeddings, moments) if moments is not None else None
            bm25_stats = [store.bm25_moments(toks, [(key, score) for key, score, _ in hits],
                                             complete and not where and not where_document)
                          if dense_stats is not None else None for toks, (hits, complete) in zip(tokens, lexical_hits)]
        finally:
            dense = dense_future.result()
        to_similarity = self._similarity()
        # both sides are ranked by key (a hash of the id, read from a column for BM25's hits): only the winners'
        # ids and records are read from stored documents
        ids_of: dict[int, str] = {}
        address_of: dict[int, Any] = {}
        per_query = []
        for q, toks in enumerate(tokens):
            dense_pairs = []
            for i, d in zip(dense["ids"][q], dense["distances"][q]):
                key = key_of(i)
                ids_of[key] = i
                dense_pairs.append((key, to_similarity(d)))
            hits, complete = lexical_hits[q]
            lexical = [(key, score) for key, score, _ in hits]
            address_of.update((key, addr) for key, _, addr in hits)
            if dense_stats is None:
                fused = fusion.fuse(dense_pairs, lexical, n_results)
            else:  # exact BM25 for every candidate of either side, normalised like the whole-corpus retriever
                seen = {key for key, _ in lexical}
                rest = [key for key, _ in dense_pairs if key not in seen]
                # a dense candidate BM25 did not return scores at most its lowest hit, so below a full list of
                # fusion.depth hits it is cut from the lexical side (and takes that side's floor), and where the hits
                # hold every matching document it scores 0: only a shorter, incomplete list needs its exact BM25
                extra = (store.scores_of(toks, [ids_of[key] for key in rest])
                         if rest and not complete and len(lexical) < fusion.depth else {})
                exact = sorted(lexical + [(key, extra.get(key, 0.0)) for key in rest], key=lambda pair: -pair[1])
                fused = fusion.fuse(dense_pairs, exact, n_results, corpus_stats=(dense_stats[q], bm25_stats[q]))
            per_query.append((fused, dict(dense_pairs), dict(lexical)))
        winners = {key for fused, _, _ in per_query for key, _ in fused}
        records: dict[str, tuple] = {}
        if store is not None:
            records.update(store.records_at([address_of[k] for k in winners if k in address_of]))
            ids_of.update((key_of(i), i) for i in records)
            records.update(store.records([ids_of[k] for k in winners if k not in address_of]))
        missing = [ids_of[k] for k in winners if k in ids_of and ids_of[k] not in records]
        if missing:  # records without text live in Chroma only
            got = self._collection.get(ids=missing, include=["documents", "metadatas"])
            n = len(got["ids"])
            records.update(zip(got["ids"], zip(got.get("documents") or [None] * n,
                                               got.get("metadatas") or [None] * n)))
        for fused, dense_by_key, lexical_by_key in per_query:
            # a winner whose record is gone was deleted since the candidates were found
            fused = [(k, s) for k, s in fused if ids_of.get(k) in records]
            out["ids"].append([ids_of[k] for k, _ in fused])
            out["scores"].append([s for _, s in fused])
            out["documents"].append([records[ids_of[k]][0] for k, _ in fused])
            out["metadatas"].append([records[ids_of[k]][1] for k, _ in fused])
            out["dense_scores"].append([dense_by_key.get(k) for k, _ in fused])
            out["lexical_scores"].append([lexical_by_key.get(k) for k, _ in fused])
        return out

    def _lexical(self, store: LexicalStore, tokens: list[str], depth: int, lexical_filter: Any,
                 check_where: Mapping | None, check_document: Mapping | None) -> tuple[list[tuple], bool]:
        """BM25's top ``depth`` ``(key, score, address)`` passing the filters, and whether it holds every matching
        document. A filter the store cannot express is checked on widening candidate lists through the collection
        (``get`` by id)."""
        if check_where is None and check_document is None:
            hits = store.search(tokens, depth, where=lexical_filter)
            return hits, len(hits) < depth
        kept: list[tuple] = []
        for widen in FILTER_WIDEN:
            hits = store.search(tokens, depth * widen, where=lexical_filter)
            if not hits:
                return [], True
            ids = store.ids_at([addr for _, _, addr in hits])
            allowed = set(self._collection.get(ids=ids, where=check_where, where_document=check_document,
                                               include=[])["ids"])
            kept = [hit for hit, i in zip(hits, ids) if i in allowed]
            if len(kept) >= depth or len(hits) < depth * widen:
                return kept[:depth], len(hits) < depth * widen and len(kept) <= depth
        return kept[:depth], False

    def _space(self) -> str:
        config = self._collection.configuration_json or {}
        return (config.get("hnsw") or config.get("spann") or {}).get("space", "l2")

    def _similarity(self):
        """Chroma distance -> similarity: ``1 - d`` in the cosine and ip spaces, ``-d`` in l2."""
        space = self._space()
        if space in ("cosine", "ip"):
            return lambda d: 1.0 - float(d)
        return lambda d: -float(d)


def _known_result(method: str, kwargs: dict[str, Any], before: Mapping[str, tuple | None]) -> dict | None:
    """What Chroma holds after an ``add`` or ``upsert``, for the ids known without reading them back: an ``add``
    keeps existing records as they were and stores new ones as given; an ``upsert`` stores new ids as given (an
    existing one may merge metadata, so it is read back). None: read everything back."""
    ids, docs, vecs, metas = (kwargs.get(k) for k in ("ids", "documents", "embeddings", "metadatas"))
    if method not in ("add", "upsert") or isinstance(ids, str) or docs is None or vecs is None:
        return None
    ids, docs = list(ids), list(docs)
    metas = list(metas) if metas is not None else [None] * len(ids)
    if not len(ids) == len(docs) == len(vecs) == len(metas) or len(set(ids)) != len(ids):
        return None
    given = {i: (d, m or None, v) for i, d, m, v in zip(ids, docs, metas, vecs)}
    if method == "add":
        return {i: (before[i] if before.get(i) is not None else given[i]) for i in ids}
    if any(before.get(i) is not None for i in ids):
        return None
    return given


def _dense_stats(query_embeddings: Any, moments: tuple[np.ndarray, np.ndarray]) -> list[tuple[float, float]] | None:
    """Per query (mean, std) of its cosine similarity to every document, from the documents' first two moments."""
    if query_embeddings is None:
        return None
    q = np.asarray(query_embeddings, dtype=np.float64)
    if q.ndim != 2 or q.shape[1] != moments[0].size:
        return None
    q /= np.maximum(np.linalg.norm(q, axis=1, keepdims=True), 1e-12)
    mean, std = cosine_moments(q, moments)
    return [(float(m), float(s)) for m, s in zip(mean, std)]


def _remove_tree(path: Path) -> None:
    import shutil

    if path.is_dir():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(OSError):
            path.unlink()


def resolve_fusion(collection: HybridCollection, fusion: Any) -> Fusion:
    """What a framework retriever's ``fusion=`` means: ``None`` the collection's (its stored weight, else the
    checkpoint's); ``"auto"``, ``"checkpoint"`` or a weight: :meth:`HybridCollection.choose_fusion` (stored with the
    collection), then the collection's; a :class:`~jepa_rag.fusion.Fusion` itself."""
    if isinstance(fusion, Fusion):
        return fusion
    if fusion is not None:
        if not (fusion in ("auto", "checkpoint") or (isinstance(fusion, (int, float))
                                                      and not isinstance(fusion, bool))):
            raise InvalidInputError(f"fusion must be None, 'auto', 'checkpoint', a weight in [0, 1] or a "
                                    f"jepa_rag.fusion.Fusion, got {fusion!r}")
        collection.choose_fusion(fusion)
    return collection.fusion


def hybrid_collection(client: Any, name: str, embedding_function: Any = None, *,
                      lexical_dir: str | os.PathLike | None = None, fusion: Fusion | None = None,
                      create: bool = True) -> HybridCollection:
    """Open (or create) collection ``name`` with :func:`jepa_rag.chroma.get_or_create_collection` and wrap
    it in a :class:`HybridCollection` (embedding-space checks included).

    ``lexical_dir`` is required for an ``HttpClient`` (a Chroma server); ``fusion`` overrides the checkpoint's.
    """
    from .chroma import get_or_create_collection

    collection = get_or_create_collection(client, name, embedding_function, create=create)
    return HybridCollection(client, collection, lexical_dir=lexical_dir, fusion=fusion)
