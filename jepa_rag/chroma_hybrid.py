"""Hybrid retrieval on Chroma: a BM25 index that belongs to a collection and is kept in step with it.

:class:`HybridCollection` wraps a chromadb collection. Every write made through it (``add``, ``upsert``,
``update``, ``delete``, and :func:`jepa_rag.chroma.ingest` given a HybridCollection) marks the collection, and
:meth:`HybridCollection.hybrid_query` fuses Chroma's cosine top-``depth`` with BM25's top-``depth``
(:class:`jepa_rag.fusion.Fusion`, the collection's checkpoint's weight by default). Anything it does not override
goes to the wrapped collection, so LangChain's ``Chroma`` and LlamaIndex's ``ChromaVectorStore`` can write
through it too.

The collection is the source of truth; the lexical index is derived from its documents, so a crash can lose
nothing: at worst the index is rebuilt. Where it lives: ``<PersistentClient path>/jepa_rag_lexical/<collection
id>/`` for an embedded client, ``<lexical_dir>/<collection id>/`` for a Chroma server (``lexical_dir`` is then
required), and only in memory for an ``EphemeralClient``.

Staleness check (two cheap calls per query: the collection's metadata and ``count()``):

- a *generation* stamp lives in the collection's metadata (key :data:`GENERATION_KEY`). A write through this API
  takes the folder's lock (``flock``, so other processes and threads using the folder wait), sets the stamp to
  ``dirty:<folder>:<token>``, writes, then sets it to ``clean:<token>``. A saved index records the generation and
  the count it was built at, and is served only when both still match and the generation is clean.
- a dirty stamp seen while holding the lock of the folder that wrote it means that writer died mid-write (a
  live one would hold the lock): the index is rebuilt from the collection and the stamp cleaned. A dirty stamp
  from another folder (a writer on another machine) is never trusted: the index is rebuilt for every query, and
  not saved, until that writer cleans it (or :meth:`HybridCollection.refresh` is called once it has stopped).
- a save writes a fresh folder, then atomically replaces ``current.json`` (which names it and holds the stamp
  and a sha256 of the indexed ids and texts): a kill leaves the old index or the new one, never a mix, and the
  stamp always describes the files it names. Loading a saved index reads the collection's records anyway (their
  texts and metadatas are kept in memory with the index, so a query needs no extra round trip for them) and
  rebuilds when the digest differs.

What it detects: every write through this API, from any process or machine sharing the collection; writes that
bypass it (plain chromadb calls on the collection) when they change ``count()``, and any bypassing change of texts
when a process next loads the saved index. What a process already holding the index cannot detect: a bypassing
write that keeps the count (an ``update``/``upsert`` of existing ids, or as many deletes as adds): call
:meth:`HybridCollection.refresh` after writing around this API.

bm25s indexes are rebuilt, not updated in place; rebuilds are lazy: writes only mark the collection, and the
next query rebuilds once, however many writes came before it (about 2 s for SciFact's 5K documents on a shared
2-core Xeon). Each write costs two extra metadata updates (the stamps; ~20 ms each on an embedded client here),
which batching (:func:`~jepa_rag.chroma.ingest`) amortises. Memory: the BM25 index plus the records' texts
and metadatas (for SciFact's 5K documents: 9.7 MB of index and 7.4 MB of text; 39 MB at the peak of a build). ``hybrid_query`` takes no ``where`` filter (BM25
has no metadata), and deleting a collection leaves its index folder behind (named by the collection id, never
reused).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import socket
import threading
import uuid
import warnings
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from jepa_rag.encoder import validate_texts
from jepa_rag.errors import InvalidInputError, LexicalIndexError
from jepa_rag.fsutil import atomic_write_bytes
from jepa_rag.fusion import Fusion, fusion_of
from jepa_rag.lexical import LexicalIndex, top_positive

from .adapters import require

require("chromadb", "chroma", "jepa_rag.chroma_hybrid (HybridCollection)")

try:  # POSIX: a lock the kernel drops when its holder dies, even under SIGKILL
    import fcntl
except ImportError:  # pragma: no cover  (Windows: the lock is per process only)
    fcntl = None

__all__ = ["GENERATION_KEY", "HybridCollection", "hybrid_collection"]

GENERATION_KEY = "jepa_rag:lexical_generation"
FOLDER_NAME = "jepa_rag_lexical"
CURRENT = "current.json"
FORMAT_VERSION = 1
PAGE = 5000  # documents read per ``get`` when rebuilding
BUILD_ATTEMPTS = 3

_PROCESS_LOCKS: dict[str, threading.Lock] = {}
_PROCESS_LOCKS_GUARD = threading.Lock()


def _is_clean(generation: str | None) -> bool:
    return generation is None or generation.startswith("clean:")


def _dirty_owner(generation: str | None) -> str | None:
    if generation is None or not generation.startswith("dirty:"):
        return None
    return generation.split(":")[1]


class _Snapshot(NamedTuple):
    """The BM25 index and every record's (text, metadata), read together at ``stamp``, with the first two moments
    of the records' unit-length vectors (``None`` when some record has none)."""

    index: LexicalIndex
    records: dict[str, tuple[Any, Any]]
    stamp: tuple
    moments: tuple[np.ndarray, np.ndarray] | None = None


class _Moments:
    """Sum of unit vectors and of their outer products, page by page: a query's cosine similarities to every
    document then have mean ``q·μ`` and variance ``qᵀMq - (q·μ)²`` without keeping the vectors."""

    def __init__(self) -> None:
        self.n, self.total, self.outer, self.complete = 0, None, None, True

    def add(self, embeddings: Any, n: int) -> None:
        if embeddings is None or len(embeddings) != n:
            self.complete = self.complete and n == 0
            return
        if n == 0:
            return
        x = np.asarray(embeddings, dtype=np.float64)
        x /= np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
        self.total = x.sum(0) if self.total is None else self.total + x.sum(0)
        self.outer = x.T @ x if self.outer is None else self.outer + x.T @ x
        self.n += n

    def result(self) -> tuple[np.ndarray, np.ndarray] | None:
        if not self.complete or self.n == 0:
            return None
        return self.total / self.n, self.outer / self.n


def _texts(records: dict[str, tuple[Any, Any]]) -> tuple[list[str], list[str]]:
    """The ids and texts BM25 indexes: records without text have nothing to match."""
    pairs = [(i, doc) for i, (doc, _) in records.items() if isinstance(doc, str) and doc.strip()]
    return [i for i, _ in pairs], [t for _, t in pairs]


def _digest(ids: list[str], texts: list[str]) -> str:
    h = hashlib.sha256()
    for i, t in zip(ids, texts):
        h.update(i.encode("utf-8", "surrogatepass") + b"\0" + t.encode("utf-8", "surrogatepass") + b"\0")
    return h.hexdigest()


def _is_http_client(client: Any) -> bool:
    impl = str(getattr(client.get_settings(), "chroma_api_impl", ""))
    return "fastapi" in impl.lower()


class HybridCollection:
    """A chromadb collection plus its BM25 index, kept in step (see the module docstring for how).

    Build one with :func:`hybrid_collection`, or wrap an open collection: ``HybridCollection(client, collection)``.
    ``lexical_dir`` is where lexical indexes are kept (one subfolder per collection id); it defaults to a folder
    inside a ``PersistentClient``'s path, is required for an ``HttpClient`` (a Chroma server), and an
    ``EphemeralClient`` keeps the index in memory. ``fusion`` overrides the checkpoint's stored fusion.
    """

    def __init__(self, client: Any, collection: Any, *, lexical_dir: str | os.PathLike | None = None,
                 fusion: Fusion | None = None):
        if isinstance(collection, HybridCollection):
            collection = collection.collection
        self._client = client
        self._collection = collection
        self._fusion = fusion
        self._folder = self._resolve_folder(lexical_dir)
        self._owner = self._owner_id()
        self._snapshot: _Snapshot | None = None
        self._position_cache: tuple[LexicalIndex, dict[str, int]] | None = None
        self._memory_lock = threading.Lock()
        #: how the lexical index was obtained: ``built`` (from the collection) or ``loaded`` (from disk)
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
        """This collection's lexical-index folder, or None when it is kept in memory only."""
        return self._folder

    @property
    def fusion(self) -> Fusion:
        """The fusion used by :meth:`hybrid_query`: the one given, else the collection's checkpoint's."""
        if self._fusion is None:
            self._fusion = fusion_of(self._checkpoint())
        return self._fusion

    def _checkpoint(self) -> str | None:
        stored = (self._collection.configuration_json or {}).get("embedding_function") or {}
        if stored.get("name") != "jepa_rag":
            return None
        return (stored.get("config") or {}).get("checkpoint")

    def _resolve_folder(self, lexical_dir: str | os.PathLike | None) -> Path | None:
        if lexical_dir is not None:
            root = Path(lexical_dir).expanduser().resolve()
        elif _is_http_client(self._client):
            raise InvalidInputError(
                "a Chroma server's collection needs lexical_dir=<folder> for its lexical index (the server's own "
                "folder is not reachable from here); give every client of this collection on this machine the "
                "same folder")
        else:
            settings = self._client.get_settings()
            if not getattr(settings, "is_persistent", False) or not settings.persist_directory:
                return None
            root = Path(settings.persist_directory).expanduser().resolve() / FOLDER_NAME
        return root / str(self._collection.id)

    def _owner_id(self) -> str:
        """Who writes here: one id per (machine, folder), or per process for an in-memory index."""
        where = str(self._folder) if self._folder is not None else f"memory:{os.getpid()}:{self._collection.id}"
        return hashlib.sha256(f"{socket.gethostname()}\0{where}".encode()).hexdigest()[:16]

    @contextlib.contextmanager
    def _lock(self) -> Iterator[None]:
        """The folder's lock: excludes every writer and rebuilder using this folder, across processes."""
        if self._folder is None or fcntl is None:
            with _PROCESS_LOCKS_GUARD:
                plock = _PROCESS_LOCKS.setdefault(self._owner, threading.Lock())
            with plock:
                yield
            return
        self._folder.mkdir(parents=True, exist_ok=True)
        with open(self._folder / "lock", "a+b") as fh:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh.fileno(), fcntl.LOCK_UN)

    def _generation(self) -> str | None:
        model = self._client.get_collection(self._collection.name, embedding_function=None)
        return (model.metadata or {}).get(GENERATION_KEY)

    def _set_generation(self, generation: str) -> None:
        current = self._client.get_collection(self._collection.name, embedding_function=None).metadata or {}
        self._collection.modify(metadata={**current, GENERATION_KEY: generation})

    def _stamp(self) -> tuple[str | None, int]:
        return self._generation(), self._collection.count()

    # ---------------------------------------------------------------------------------------- writes
    @contextlib.contextmanager
    def _writing(self) -> Iterator[None]:
        """Mark the collection dirty, let the caller write, mark it clean; an exception leaves it dirty."""
        token = uuid.uuid4().hex
        with self._lock():
            self._set_generation(f"dirty:{self._owner}:{token}")
            yield
            self._set_generation(f"clean:{token}")

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
        with self._writing():
            self._collection.add(**kw)

    def upsert(self, ids: Any, embeddings: Any = None, metadatas: Any = None, documents: Any = None,
               **kwargs: Any) -> None:
        """chromadb's ``upsert``, keeping BM25 in step."""
        kw = self._embed(dict(ids=ids, embeddings=embeddings, metadatas=metadatas, documents=documents, **kwargs))
        with self._writing():
            self._collection.upsert(**kw)

    def update(self, ids: Any, embeddings: Any = None, metadatas: Any = None, documents: Any = None,
               **kwargs: Any) -> None:
        """chromadb's ``update``, keeping BM25 in step."""
        kw = self._embed(dict(ids=ids, embeddings=embeddings, metadatas=metadatas, documents=documents, **kwargs))
        with self._writing():
            self._collection.update(**kw)

    def delete(self, ids: Any = None, where: Any = None, where_document: Any = None, **kwargs: Any) -> None:
        """chromadb's ``delete``, keeping BM25 in step."""
        with self._writing():
            self._collection.delete(ids=ids, where=where, where_document=where_document, **kwargs)

    def ingest(self, ids: Sequence[str], documents: Sequence[str], **kwargs: Any) -> int:
        """:func:`jepa_rag.chroma.ingest` through this collection (batched, idempotent, resumable)."""
        from .chroma import ingest

        return ingest(self, ids, documents, **kwargs)

    # ---------------------------------------------------------------------------------------- the lexical index
    def lexical_index(self) -> LexicalIndex:
        """The BM25 index of the collection's documents as they are now, rebuilt or reloaded when needed."""
        return self._fresh().index

    def _fresh(self) -> _Snapshot:
        """The fresh snapshot: two cheap calls (generation and count) when nothing changed since last time."""
        stamp = self._stamp()
        with self._memory_lock:
            if self._snapshot is not None and self._snapshot.stamp == stamp and _is_clean(stamp[0]):
                return self._snapshot
        with self._lock():
            return self._refresh_locked(force=False)

    def refresh(self) -> LexicalIndex:
        """Rebuild the lexical index from the collection now and mark the collection clean.

        For after writes that bypassed this API without changing ``count()``, or to clear the mark of a writer on
        another machine that died mid-write. Only call it when no other writer is running.
        """
        with self._lock():
            return self._refresh_locked(force=True).index

    def _refresh_locked(self, force: bool) -> _Snapshot:
        generation = self._generation()
        if force or _dirty_owner(generation) == self._owner:
            # holding the lock of the folder that marked it: that writer died mid-write (or a write failed);
            # whatever it left in the collection is what the rebuilt index will describe
            self._set_generation(f"clean:{uuid.uuid4().hex}")
        stamp = self._stamp()
        with self._memory_lock:
            if not force and self._snapshot is not None and self._snapshot.stamp == stamp and _is_clean(stamp[0]):
                return self._snapshot
        for _ in range(BUILD_ATTEMPTS):
            records, stamp, settled, moments = self._read_all()
            if settled:  # else a write landed while the records were read: read them again
                break
        clean = settled and _is_clean(stamp[0])
        ids, texts = _texts(records)
        digest = _digest(ids, texts)
        index = self._load(stamp, digest) if clean and not force else None
        loaded = index is not None
        if loaded:
            self.refreshes["loaded"] += 1
        else:
            index = LexicalIndex(ids, texts, show_progress_bar=False)
            self.refreshes["built"] += 1
        snapshot = _Snapshot(index, records, stamp, moments)
        if not clean:
            warnings.warn(
                f"collection {self._collection.name!r} is being written by another writer (generation "
                f"{stamp[0]!r}); its lexical index is rebuilt for every query until that write is marked clean "
                "(HybridCollection.refresh() clears the mark of a writer that died)", RuntimeWarning, stacklevel=3)
            return snapshot
        if not loaded:
            self._save(index, stamp, digest)
        with self._memory_lock:
            self._snapshot = snapshot
        return snapshot

    def _read_all(self) -> tuple[dict[str, tuple[Any, Any]], tuple, bool, tuple | None]:
        """Every record's text and metadata (and its vectors' moments); settled when no write landed while reading
        them."""
        before = self._stamp()
        records: dict[str, tuple[Any, Any]] = {}
        moments = _Moments()
        read = 0
        while True:
            page = None
            if moments.complete:
                try:
                    page = self._collection.get(include=["documents", "metadatas", "embeddings"], limit=PAGE,
                                                offset=read)
                except Exception:  # noqa: BLE001 - an embedded client may not see vectors another process wrote
                    moments.complete = False
            if page is None:
                page = self._collection.get(include=["documents", "metadatas"], limit=PAGE, offset=read)
            n = len(page["ids"])
            read += n
            records.update(zip(page["ids"], zip(page["documents"] or [None] * n, page["metadatas"] or [None] * n)))
            moments.add(page.get("embeddings"), n)
            if n < PAGE:
                break
        after = self._stamp()
        return records, after, before == after and read == after[1] == len(records), moments.result()

    def _stamp_record(self, stamp: tuple) -> dict[str, Any]:
        return {"format_version": FORMAT_VERSION, "collection_id": str(self._collection.id),
                "generation": stamp[0], "count": stamp[1]}

    def _load(self, stamp: tuple, digest: str) -> LexicalIndex | None:
        """The saved index when its stamp and its documents' digest match; None when missing, stale or corrupt."""
        if self._folder is None:
            return None
        try:
            current = json.loads((self._folder / CURRENT).read_text(encoding="utf-8"))
            if not isinstance(current, dict) or not isinstance(current.get("index"), str):
                return None
        except (OSError, ValueError):
            return None
        if {k: current.get(k) for k in self._stamp_record(stamp)} != self._stamp_record(stamp):
            return None
        if current.get("texts_sha256") != digest:  # same stamp, other texts: a write that bypassed this API
            return None
        try:
            return LexicalIndex.load(self._folder / Path(current["index"]).name)
        except LexicalIndexError as exc:
            warnings.warn(f"rebuilding the lexical index of {self._collection.name!r}: {exc}", RuntimeWarning,
                          stacklevel=4)
            return None

    def _save(self, index: LexicalIndex, stamp: tuple, digest: str) -> None:
        """Write a new index folder, then point ``current.json`` at it; old folders go once nothing names them."""
        if self._folder is None:
            return
        name = f"index-{uuid.uuid4().hex[:12]}"
        index.save(self._folder / name)
        atomic_write_bytes(self._folder / CURRENT, json.dumps(
            {**self._stamp_record(stamp), "texts_sha256": digest, "index": name}).encode(), sync_dir=True)
        for old in self._folder.iterdir():
            if old.name != name and (old.name.startswith("index-") or old.name.startswith(".index-")):
                _remove_tree(old)

    # ---------------------------------------------------------------------------------------- hybrid search
    def hybrid_query(self, query_texts: Sequence[str], n_results: int = 10, *,
                     query_embeddings: Any = None, depth: int | None = None,
                     fusion: Fusion | None = None) -> dict[str, list[list[Any]]]:
        """Dense (Chroma cosine, top ``depth``) and BM25 (top ``depth``) results fused into the ``n_results`` best.

        ``query_embeddings`` skips embedding the queries (their texts are still needed for BM25). Returns a dict
        like chromadb's ``query``: ``ids``, ``documents``, ``metadatas`` and ``scores`` (the fused score), plus
        ``dense_scores`` (cosine similarity) and ``lexical_scores`` (BM25), None where a side did not return
        the document; one list per query, best first.
        """
        queries = validate_texts(query_texts, "query_texts")
        if isinstance(n_results, bool) or not isinstance(n_results, int) or n_results < 1:
            raise InvalidInputError(f"n_results must be a positive integer, got {n_results!r}")
        fusion = fusion or self.fusion
        depth = max(depth or fusion.depth, n_results)
        out: dict[str, list[list[Any]]] = {k: [] for k in ("ids", "documents", "metadatas", "scores",
                                                            "dense_scores", "lexical_scores")}
        # distances only: the texts of the few fused winners are fetched afterwards, not those of 2 x depth candidates
        dense_kwargs: dict[str, Any] = {"n_results": depth, "include": ["distances"]}
        snapshot = self._fresh()
        cosine = self._space() == "cosine"
        ef = getattr(self._collection, "_embedding_function", None)
        if query_embeddings is None and cosine and snapshot.moments is not None and ef is not None:
            query_embeddings = ef.embed_query(queries)  # also needed for the corpus statistics below
        if query_embeddings is not None:
            dense_kwargs["query_embeddings"] = query_embeddings
        else:
            dense_kwargs["query_texts"] = queries
        dense = self._collection.query(**dense_kwargs)
        index = snapshot.index
        bm25 = index.score_all(queries) if len(index) else np.zeros((len(queries), 0), np.float32)
        lexical = [top_positive(row, index.ids, depth) for row in bm25]
        stats = self._corpus_stats(query_embeddings, bm25, snapshot.moments) if cosine else None
        position = self._positions(index) if stats is not None else {}
        to_similarity = self._similarity()
        per_query = []
        for q in range(len(queries)):
            dense_pairs = [(i, to_similarity(d)) for i, d in zip(dense["ids"][q], dense["distances"][q])]
            if stats is None:
                fused = fusion.fuse(dense_pairs, lexical[q], n_results)
            else:  # exact BM25 for every candidate of either side, normalised like the whole-corpus retriever
                candidates = list(dict.fromkeys([i for i, _ in lexical[q]] + [i for i, _ in dense_pairs]))
                exact = [(i, float(bm25[q, position[i]]) if i in position else 0.0) for i in candidates]
                exact.sort(key=lambda pair: -pair[1])
                fused = fusion.fuse(dense_pairs, exact, n_results, corpus_stats=stats[q])
            per_query.append((fused, dict(dense_pairs), dict(lexical[q])))
        records = snapshot.records
        missing = sorted({i for fused, _, _ in per_query for i, _ in fused} - records.keys())
        if missing:  # written since the snapshot was read: Chroma returned them, so fetch them
            got = self._collection.get(ids=missing, include=["documents", "metadatas"])
            records = {**records, **dict(zip(got["ids"], zip(got["documents"] or [], got["metadatas"] or [])))}
        for fused, dense_by_id, lexical_by_id in per_query:
            fused = [(i, s) for i, s in fused if i in records]  # deleted since the index was read
            out["ids"].append([i for i, _ in fused])
            out["scores"].append([s for _, s in fused])
            out["documents"].append([records[i][0] for i, _ in fused])
            out["metadatas"].append([records[i][1] for i, _ in fused])
            out["dense_scores"].append([dense_by_id.get(i) for i, _ in fused])
            out["lexical_scores"].append([lexical_by_id.get(i) for i, _ in fused])
        return out

    @staticmethod
    def _corpus_stats(query_embeddings: Any, bm25: np.ndarray, moments: tuple | None) -> list | None:
        """Per query ``((dense mean, dense std), (BM25 mean, BM25 std))`` over the whole collection, or None when
        the dense side's cannot be had (no query vectors, or records without vectors)."""
        if query_embeddings is None or moments is None or bm25.shape[1] == 0:
            return None
        mu, second = moments
        q = np.asarray(query_embeddings, dtype=np.float64)
        q /= np.maximum(np.linalg.norm(q, axis=1, keepdims=True), 1e-12)
        mean = q @ mu
        var = ((q @ second) * q).sum(axis=1) - mean**2  # BLAS; einsum here took ~2 ms a query
        return [((float(m), float(np.sqrt(max(v, 0.0)))), (float(row.mean()), float(row.std())))
                for m, v, row in zip(mean, var, bm25)]

    def _positions(self, index: LexicalIndex) -> dict[str, int]:
        """id -> column of ``index.score_all``, built once per index (per query it cost ~1 ms on 5K documents)."""
        cached = self._position_cache
        if cached is None or cached[0] is not index:
            cached = self._position_cache = (index, {i: j for j, i in enumerate(index.ids)})
        return cached[1]

    def _space(self) -> str:
        config = self._collection.configuration_json or {}
        return (config.get("hnsw") or config.get("spann") or {}).get("space", "l2")

    def _similarity(self):
        """Chroma distance -> similarity: ``1 - d`` in the cosine and ip spaces, ``-d`` in l2."""
        space = self._space()
        if space in ("cosine", "ip"):
            return lambda d: 1.0 - float(d)
        return lambda d: -float(d)


def _remove_tree(path: Path) -> None:
    import shutil

    if path.is_dir():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(OSError):
            path.unlink()


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
