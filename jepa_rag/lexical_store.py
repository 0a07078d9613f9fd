"""The lexical side of a hybrid collection, on disk and updated in place: tantivy BM25 plus a small SQLite state.

Why tantivy: its segments take adds and deletes in time proportional to the batch, a commit is atomic, one writer
and any number of readers share a folder, top-k uses block-max WAND over postings, and the index is memory-mapped,
so a process holds neither the corpus nor a copy of the index in its heap. Texts are tokenised as the exact
retriever's :class:`~jepa_rag.lexical.LexicalIndex` does (bm25s' tokenizer: lower case, English stopwords, Snowball
stemming) and indexed as whitespace-separated stems, so both agree on what a term is; tantivy scores them with
Lucene's BM25 at k1 = 1.2 (bm25s uses 1.5). Chosen on dev (SciFact train + NFCorpus dev, mean NDCG@10,
``python -m experiments.hybrid_serving``): tantivy's own scores 0.4944 BM25 alone and 0.5489 fused, against 0.4908 /
0.5461 with its candidates rescored as bm25s scores them (and 0.4918 / 0.5452 for the exact bm25s retriever).
Each record's text and metadata are stored too, so a query fetches its winners from here by id.

The state (``state.sqlite``, WAL) holds what fusion needs beyond postings, maintained per write in O(batch):

- ``seq``: bumped by every commit, so a reader's staleness check is one small read;
- the first two moments of the documents' unit-length vectors (a 768-d sum and a 768 x 768 sum of outer
  products, with a sha256), from which each query's whole-collection cosine mean and spread follow;
- a journal: a write records the ids it touches and their old vectors before it changes the collection, and clears
  them in the transaction that applies the moments. A writer killed in between leaves the journal; the next writer
  (or a reader that gets the lock) replays it from what the collection then holds, so the lexical side ends
  describing the collection, never a mix.

A query's BM25 mean and spread over the whole collection come from its exact top documents plus, for the rest,
each distinct term's document frequency (every other matching document taken to hold the term once at average
length, which tantivy scores as the term's idf): on dev this ranks as well as a 1-2K-document sample did (0.5489 vs
0.5487) at a fraction of the cost.

A damaged state or index raises :class:`~jepa_rag.errors.LexicalIndexError` (the moments are checked against their
hash, tantivy checks its own metadata on open, and every committed index file's CRC-32 is verified once, by the
writer that made it or the first reader to meet it: :mod:`jepa_rag.segment_checksums`) and the caller rebuilds the
store from the collection, which is the source of truth.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import math
import os
import random
import sqlite3
import threading
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from . import segment_checksums
from .errors import LexicalIndexError
from .lexical import STEMMER_LANGUAGE, STOPWORDS

try:  # POSIX: a lock the kernel drops when its holder dies, even under SIGKILL
    import fcntl
except ImportError:  # pragma: no cover  (Windows: the lock is per process only)
    fcntl = None

__all__ = ["LexicalStore", "folder_lock", "key_of", "tokenize", "where_query"]

FORMAT = "jepa-rag-lexical-store"
FORMAT_VERSION = 2
K1 = 1.2  # tantivy's BM25: idf * (1 + k1) * tf / (tf + k1 * (1 - b + b * length / average length))
BM25_B = 0.75  # so a document holding a term once at average length scores that term's idf
WRITER_HEAP = 20_000_000
_MEMORY_LOCKS: dict[str, threading.RLock] = {}
_MEMORY_LOCKS_GUARD = threading.Lock()


def tokenize(texts: Sequence[str]) -> list[list[str]]:
    """bm25s' tokenizer with the exact retriever's settings (lower case, English stopwords, Snowball stems)."""
    import bm25s
    import Stemmer

    if not texts:
        return []
    return bm25s.tokenize(list(texts), stopwords=STOPWORDS, stemmer=Stemmer.Stemmer(STEMMER_LANGUAGE),
                          return_ids=False, show_progress=False)


@contextlib.contextmanager
def folder_lock(folder: Path, *, blocking: bool = True) -> Iterator[bool]:
    """An exclusive ``flock`` on ``folder/lock``: processes and threads using the folder wait; the kernel releases it
    when its holder dies, even under SIGKILL. Yields whether it is held (``blocking=False`` yields False at once when
    another holder has it)."""
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "lock", "a+b") as fh:
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def cosine_moments(unit_queries: np.ndarray, moments: tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Each unit query's cosine mean and standard deviation over every stored document, from the documents' mean
    ``m`` and second moment ``S`` (:attr:`LexicalStore.moments`): mean ``q·m``, variance ``qᵀSq − (q·m)²``."""
    mu, second = moments
    mean = unit_queries @ mu
    # the 768 x 768 product in the second moment's float32 (half the memory read per query), through einsum's own
    # loop rather than BLAS: a threaded BLAS call per query (~0.03 ms of work) keeps its worker threads spinning
    # on the cores Chroma's search needs, which doubled a hybrid query's p95 on two cores
    q32 = unit_queries.astype(second.dtype)
    var = (np.einsum("qi,ij->qj", q32, second) * q32).sum(axis=1, dtype=np.float64) - mean**2
    return mean, np.sqrt(np.maximum(var, 0.0))


@functools.lru_cache(maxsize=16_384)  # the ids a query path sees again and again; bounded
def key_of(doc_id: str) -> int:
    """A document's 64-bit key: what a query ranks by, so that only winners need their stored id read."""
    return int.from_bytes(hashlib.sha256(doc_id.encode("utf-8", "surrogatepass")).digest()[:8], "big")


def _schema():
    import tantivy

    sb = tantivy.SchemaBuilder()
    sb.add_text_field("id", stored=True, tokenizer_name="raw", index_option="basic")
    sb.add_text_field("body", tokenizer_name="whitespace", index_option="freq")
    sb.add_json_field("meta", tokenizer_name="raw", index_option="basic")
    # the id's 64-bit hash as a column: a query reads its hits' keys in one call instead of a stored document each
    sb.add_unsigned_field("key", fast=True)
    # the record as Chroma holds it, so a query fetches its winners from here instead of a round trip to Chroma
    sb.add_bytes_field("text", stored=True, indexed=False)
    sb.add_bytes_field("metadata", stored=True, indexed=False)
    return sb.build()


def _vector(value: Any) -> np.ndarray | None:
    if value is None:
        return None
    v = np.asarray(value, dtype=np.float64).reshape(-1)
    n = np.linalg.norm(v)
    return v / n if n > 0 else v


class LexicalStore:
    """One collection's BM25 index and fusion state in ``folder`` (``None``: in memory, for one process only).

    Readers call :meth:`sync` (cheap when nothing changed) and then search; writers hold :meth:`lock` and call
    :meth:`begin` before changing the collection and :meth:`commit` after.
    """

    def __init__(self, folder: str | os.PathLike | None):
        import tantivy

        self.folder = Path(folder) if folder is not None else None
        self._schema = _schema()
        self._thread_lock = threading.RLock()
        try:
            if self.folder is None:
                self._index = tantivy.Index(self._schema)
                self._db = sqlite3.connect(":memory:", check_same_thread=False, isolation_level=None)
            else:
                (self.folder / "index").mkdir(parents=True, exist_ok=True)
                self._index = tantivy.Index(self._schema, path=str(self.folder / "index"), reuse=True)
                self._db = sqlite3.connect(str(self.folder / "state.sqlite"), check_same_thread=False,
                                           isolation_level=None, timeout=60)
                self._db.execute("PRAGMA journal_mode=WAL")
                self._db.execute("PRAGMA synchronous=FULL")
            self._init_state()
        except (OSError, ValueError, sqlite3.DatabaseError) as exc:
            raise LexicalIndexError(f"{self.folder or 'memory'}: cannot open the lexical store ({exc})") from None
        self._seen_seq: int | None = None
        self._state: dict[str, str] = {}
        self._moments: tuple[np.ndarray, np.ndarray] | None = None
        self._searcher = None
        self._memory_key = f"memory:{id(self)}"

    # ------------------------------------------------------------------------------------------ state
    def _init_state(self) -> None:
        with self._transaction():
            self._db.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
            self._db.execute("CREATE TABLE IF NOT EXISTS moments (k INTEGER PRIMARY KEY CHECK (k = 0), n INTEGER, "
                             "complete INTEGER, dim INTEGER, total BLOB, outer_ BLOB, sha256 TEXT)")
            self._db.execute("CREATE TABLE IF NOT EXISTS journal (id TEXT PRIMARY KEY, old BLOB)")
            # the index files whose checksum was verified, as they were then (segment files never change)
            self._db.execute("CREATE TABLE IF NOT EXISTS checked (name TEXT PRIMARY KEY, size INTEGER, "
                             "mtime_ns INTEGER)")
            defaults = {"format": FORMAT, "format_version": str(FORMAT_VERSION), "seq": "0", "writer": "",
                        "built": "0"}
            for key, value in defaults.items():
                self._db.execute("INSERT OR IGNORE INTO meta VALUES (?, ?)", (key, value))
        meta = self._meta()
        if meta.get("format") != FORMAT or meta.get("format_version") != str(FORMAT_VERSION):
            raise LexicalIndexError(f"{self.folder}: not a jepa-rag lexical store of format version {FORMAT_VERSION}")

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[None]:
        with self._thread_lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def _meta(self) -> dict[str, str]:
        with self._thread_lock:
            return dict(self._db.execute("SELECT key, value FROM meta").fetchall())

    @property
    def seq(self) -> int:
        """How many commits this store had seen at the last :meth:`sync` (each write is one)."""
        if self._seen_seq is None:
            self.sync()
        return self._seen_seq

    @property
    def built(self) -> bool:
        """Whether the store was ever filled from its collection (a new, empty store is not)."""
        return self._meta().get("built") == "1"

    @property
    def last_writer(self) -> str:
        """Who made the last commit seen by :meth:`sync` (``host:pid:token``)."""
        return self._state.get("writer", "")

    @property
    def retired(self) -> bool:
        """Whether a rebuild replaced this store (as of the last :meth:`sync`): reopen the current one."""
        return self._state.get("retired") == "1"

    @property
    def has_pending(self) -> bool:
        """Whether a journal was present at the last :meth:`sync` (a writer is running, or one died)."""
        return self._state.get("pending") == "1"

    def retire(self) -> None:
        """Mark this store replaced, so every process reading it moves to the current one at its next query."""
        with self._transaction():
            self._db.execute("INSERT OR REPLACE INTO meta VALUES ('retired', '1')")
            self._db.execute("UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'seq'")

    # ------------------------------------------------------------------------------------------ locking
    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """Exclusive across the processes and threads sharing this folder (``flock``, released if the holder dies)."""
        if self.folder is None or fcntl is None:
            with _MEMORY_LOCKS_GUARD:
                lock = _MEMORY_LOCKS.setdefault(str(self.folder) if self.folder else self._memory_key,
                                                threading.RLock())
            with lock:
                yield
            return
        with folder_lock(self.folder):
            yield

    # ------------------------------------------------------------------------------------------ writing
    def pending(self) -> dict[str, np.ndarray | None] | None:
        """The journal a killed writer left (ids it touched and their old vectors), or None when there is none."""
        with self._thread_lock:
            rows = self._db.execute("SELECT id, old FROM journal").fetchall()
        if not rows:
            return None
        return {i: (None if old is None else np.frombuffer(old, dtype=np.float64)) for i, old in rows}

    def begin(self, old_vectors: Mapping[str, Any]) -> None:
        """Journal the ids about to change and their current vectors (None: absent), before the collection changes."""
        rows = []
        for doc_id, vec in old_vectors.items():
            v = _vector(vec)
            rows.append((doc_id, None if v is None else v.tobytes()))
        with self._transaction():
            self._db.executemany("INSERT OR REPLACE INTO journal VALUES (?, ?)", rows)

    def commit(self, final: Mapping[str, tuple[str | None, Mapping | None, Any] | None],
               old_vectors: Mapping[str, Any], *, writer: str, has_vectors: bool = True) -> None:
        """Make the store describe ``final`` for these ids (``(text, metadata, vector)``, or None where the
        collection no longer holds the id) and clear the journal; ``old_vectors`` are what the moments held."""
        ids = list(final)
        texts = {i: r[0] for i, r in final.items() if r is not None and isinstance(r[0], str)}
        order = list(texts)
        tokens = dict(zip(order, tokenize([texts[i] for i in order])))
        # records without text have nothing to match: they count in the vector moments, not in BM25
        self._index_write(ids, {i: (tokens[i], final[i]) for i in ids if i in tokens})
        # the writer checks what it just wrote (a merge's output included), so readers need only stat the files
        committed, checked = self._check_files(strict=False)
        with self._transaction():
            self._record_checked(committed, checked)
            self._apply_moments(old_vectors, {i: (None if r is None else r[2]) for i, r in final.items()},
                                has_vectors)
            self._db.execute("DELETE FROM journal")
            self._db.execute("UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'seq'")
            self._db.execute("UPDATE meta SET value = ? WHERE key = 'writer'", (writer,))
            self._db.execute("UPDATE meta SET value = '1' WHERE key = 'built'")

    def _index_write(self, ids: Sequence[str], records: Mapping[str, tuple[list[str] | None, tuple]]) -> None:
        import tantivy

        try:
            writer = self._index.writer(heap_size=WRITER_HEAP, num_threads=1)
        except ValueError as exc:
            raise LexicalIndexError(f"{self.folder}: cannot open the lexical index for writing ({exc})") from None
        try:
            for doc_id in ids:
                writer.delete_documents_by_term("id", doc_id)
            for doc_id, (toks, record) in records.items():
                doc = tantivy.Document()
                doc.add_text("id", doc_id)
                doc.add_text("body", " ".join(toks))
                doc.add_unsigned("key", key_of(doc_id))
                doc.add_bytes("text", record[0].encode("utf-8", "surrogatepass"))
                doc.add_bytes("metadata", json.dumps(record[1] or {}, ensure_ascii=False).encode("utf-8"))
                meta = _json_metadata(record[1])
                if meta:
                    doc.add_json("meta", meta)
                writer.add_document(doc)
            writer.commit()
            writer.wait_merging_threads()
        except BaseException:
            with contextlib.suppress(Exception):
                writer.rollback()
            raise

    def _apply_moments(self, old: Mapping[str, Any], new: Mapping[str, Any], has_vectors: bool) -> None:
        row = self._db.execute("SELECT n, complete, dim, total, outer_, sha256 FROM moments").fetchone()
        if row is None:
            n, complete, total, outer = 0, 1, None, None
        else:
            n, complete, dim, total_b, outer_b, digest = row
            total, outer = self._decode_moments(dim, total_b, outer_b, digest)
        complete = int(complete and has_vectors)
        for vecs, sign in ((old, -1.0), (new, 1.0)):
            rows = [v for v in (_vector(vec) for vec in vecs.values()) if v is not None]
            if not rows:
                continue
            if total is None:
                total, outer = np.zeros_like(rows[0]), np.zeros((rows[0].size, rows[0].size))
            if any(v.size != total.size for v in rows):
                complete = 0
                rows = [v for v in rows if v.size == total.size]
            x = np.stack(rows)
            total += sign * x.sum(axis=0)
            outer += sign * (x.T @ x)  # one BLAS call per batch, not one outer product per vector
            n += int(sign) * len(rows)
        if total is None:
            return
        total_b, outer_b = total.tobytes(), outer.tobytes()
        digest = hashlib.sha256(total_b + outer_b).hexdigest()
        self._db.execute("INSERT OR REPLACE INTO moments VALUES (0, ?, ?, ?, ?, ?, ?)",
                         (n, complete, total.size, total_b, outer_b, digest))

    def _check_files(self, *, strict: bool) -> tuple[list[str] | None, dict[str, tuple[int, int]]]:
        """Verify the checksum of every committed index file not verified before (by any process: the ``checked``
        table, trusted while a file's size and mtime are what was checked). Returns the committed files and those
        newly verified, for the caller to record. Damage raises :class:`LexicalIndexError` (``strict``) or is left
        unrecorded, for the next reader to find."""
        if self.folder is None:
            return None, {}
        index_dir = self.folder / "index"
        try:
            names = segment_checksums.committed_files(index_dir)
            with self._thread_lock:
                rows = self._db.execute("SELECT name, size, mtime_ns FROM checked").fetchall()
            known = {n: (size, mtime) for n, size, mtime in rows}
        except segment_checksums.FileDamaged as exc:
            if strict:
                raise LexicalIndexError(str(exc)) from None
            return None, {}
        except sqlite3.DatabaseError as exc:
            raise LexicalIndexError(f"{self.folder}: cannot read the lexical store's state ({exc})") from None
        fresh: dict[str, tuple[int, int]] = {}
        for name in names:
            path = index_dir / name
            try:
                st = path.stat()
                if known.get(name) == (st.st_size, st.st_mtime_ns):
                    continue
                fresh[name] = segment_checksums.check(path)
            except (OSError, segment_checksums.FileDamaged) as exc:
                with contextlib.suppress(segment_checksums.FileDamaged):
                    if name not in segment_checksums.committed_files(index_dir):
                        continue  # merged away by a writer since meta.json was read
                if strict:
                    raise LexicalIndexError(f"{self.folder}: damaged lexical index file: {exc}") from None
        return names, fresh

    def _record_checked(self, committed: list[str] | None, checked: Mapping[str, tuple[int, int]]) -> None:
        self._db.executemany("INSERT OR REPLACE INTO checked VALUES (?, ?, ?)",
                             [(n, size, mtime) for n, (size, mtime) in checked.items()])
        if committed is not None:  # files no commit names any more
            keep = set(committed)
            gone = [(n,) for (n,) in self._db.execute("SELECT name FROM checked").fetchall() if n not in keep]
            self._db.executemany("DELETE FROM checked WHERE name = ?", gone)

    def _decode_moments(self, dim, total_b, outer_b, digest) -> tuple[np.ndarray, np.ndarray]:
        if (not isinstance(total_b, bytes) or not isinstance(outer_b, bytes)
                or hashlib.sha256(total_b + outer_b).hexdigest() != digest
                or len(total_b) != dim * 8 or len(outer_b) != dim * dim * 8):
            raise LexicalIndexError(f"{self.folder}: the stored vector moments are corrupt")
        return (np.frombuffer(total_b, dtype=np.float64).copy(),
                np.frombuffer(outer_b, dtype=np.float64).reshape(dim, dim).copy())

    def reset(self) -> None:
        """Empty the store (before a rebuild from the collection)."""
        try:
            writer = self._index.writer(heap_size=WRITER_HEAP, num_threads=1)
            writer.delete_all_documents()
            writer.commit()
            writer.wait_merging_threads()
        except ValueError as exc:
            raise LexicalIndexError(f"{self.folder}: cannot reset the lexical index ({exc})") from None
        with self._transaction():
            for table in ("moments", "journal"):
                self._db.execute(f"DELETE FROM {table}")  # noqa: S608 - fixed names
            self._db.execute("UPDATE meta SET value = '0' WHERE key = 'built'")
            self._db.execute("UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'seq'")

    # ------------------------------------------------------------------------------------------ reading
    def sync(self) -> bool:
        """Catch up with commits made since the last call (by this or another process); True when there were any.

        One small read when nothing changed; otherwise the index reader is reloaded and the moments re-read:
        O(dimension²), never O(collection)."""
        with self._thread_lock:
            try:
                rows = self._db.execute("SELECT key, value FROM meta UNION ALL "
                                        "SELECT 'pending', EXISTS(SELECT 1 FROM journal)").fetchall()
            except sqlite3.DatabaseError as exc:
                raise LexicalIndexError(f"{self.folder}: cannot read the lexical store's state ({exc})") from None
            state = {k: str(v) for k, v in rows}
            self._state = state
            seq = int(state["seq"])
            if seq == self._seen_seq and self._searcher is not None:
                return False
            row = self._db.execute("SELECT n, complete, dim, total, outer_, sha256 FROM moments").fetchone()
            moments = None
            if row is not None and row[0] > 0 and row[1]:
                total, outer = self._decode_moments(*row[2:])
                # the second moment in float32 (a query's variance needs ~1e-5 relative precision, not 1e-16)
                moments = (total / row[0], (outer / row[0]).astype(np.float32))
            try:
                self._index.reload()
                self._searcher = self._index.searcher()
            except ValueError as exc:
                raise LexicalIndexError(f"{self.folder}: cannot read the lexical index ({exc})") from None
            _, checked = self._check_files(strict=True)
            if checked:
                with contextlib.suppress(sqlite3.DatabaseError):  # a cache for other processes: best effort
                    with self._transaction():
                        self._record_checked(None, checked)
            self._moments, self._seen_seq = moments, seq
            return True

    @property
    def moments(self) -> tuple[np.ndarray, np.ndarray] | None:
        """(mean, second moment) of the documents' unit vectors, or None when some document has no vector."""
        return self._moments

    def __len__(self) -> int:
        if self._searcher is None:
            self.sync()
        return int(self._searcher.num_docs)

    def _query(self, tokens: Sequence[str]):
        import tantivy

        return tantivy.Query.boolean_query(
            [(tantivy.Occur.Should, tantivy.Query.term_query(self._schema, "body", t)) for t in set(tokens)])

    def _idf(self, tokens: Sequence[str]) -> dict[str, tuple[int, float]]:
        """(document frequency, idf) per distinct term, as tantivy's BM25 computes them."""
        n = len(self)
        out = {}
        for term in set(tokens):
            df = int(self._searcher.doc_freq("body", term))
            out[term] = (df, math.log(1.0 + (n - df + 0.5) / (df + 0.5)))
        return out

    def search(self, tokens: Sequence[str], k: int, *, where: Any = None) -> list[tuple[int, float, Any]]:
        """The ``k`` best ``(key, BM25, address)`` for one tokenised query, best first (documents with no shared
        term are left out); ``where`` is a tantivy filter query from :func:`where_query`. :meth:`ids_at` and
        :meth:`records_at` read what an address holds."""
        import tantivy

        if not tokens or self._searcher is None:
            return []
        query = self._query(tokens)
        if where is not None:
            query = tantivy.Query.boolean_query([(tantivy.Occur.Must, query), (tantivy.Occur.Must, where)])
        hits = [(score, addr) for score, addr in self._searcher.search(query, int(k), count=False).hits if score > 0]
        if not hits:
            return []
        keys = self._searcher.fast_field_values("key", [addr for _, addr in hits])
        return [(key, float(score), addr) for key, (score, addr) in zip(keys, hits)]

    def _by_ids(self, ids: Sequence[str], query=None):
        import tantivy

        restrict = tantivy.Query.term_set_query(self._schema, "id", list(ids))
        if query is None:
            return self._searcher.search(restrict, len(ids), count=False).hits
        query = tantivy.Query.boolean_query([(tantivy.Occur.Must, query),
                                             (tantivy.Occur.Must, tantivy.Query.const_score_query(restrict, 0.0))])
        return self._searcher.search(query, len(ids), count=False).hits

    def scores_of(self, tokens: Sequence[str], ids: Sequence[str]) -> dict[int, float]:
        """BM25 of one tokenised query for the given ids only, by key (absent: 0); touches those ids' postings only."""
        if not tokens or not ids or self._searcher is None:
            return {}
        hits = self._by_ids(ids, self._query(tokens))
        if not hits:
            return {}
        keys = self._searcher.fast_field_values("key", [addr for _, addr in hits])
        return {key: float(score) for key, (score, _) in zip(keys, hits)}

    def ids_at(self, addresses: Sequence[Any]) -> list[str]:
        searcher = self._searcher
        return [searcher.doc(addr)["id"][0] for addr in addresses]

    def records_at(self, addresses: Sequence[Any]) -> dict[str, tuple[str, dict | None]]:
        """``id -> (text, metadata)`` stored at these addresses (from :meth:`search` on the current searcher)."""
        searcher = self._searcher
        out = {}
        for addr in addresses:
            doc = searcher.doc(addr)
            text, meta = (doc["text"] or [b""])[0], (doc["metadata"] or [b"{}"])[0]
            out[doc["id"][0]] = (bytes(text).decode("utf-8", "surrogatepass"), json.loads(bytes(meta)) or None)
        return out

    def records(self, ids: Sequence[str]) -> dict[str, tuple[str, dict | None]]:
        """``(text, metadata)`` of the given ids as the collection held them at their last write (absent: left out)."""
        if not ids or self._searcher is None:
            return {}
        return self.records_at([addr for _, addr in self._by_ids(ids)])

    def sample(self, n: int, *, seed: int = 0) -> dict[str, tuple[str, dict | None]]:
        """About ``n`` records (``id -> (text, metadata)``), a seeded uniform sample: the documents whose key (a
        hash of the id) falls in a random window sized to hold ``n`` of them. Reads the key column and the sampled
        records only, never every record's text."""
        import tantivy

        self.sync()
        total = len(self)
        if total == 0 or n < 1:
            return {}
        space = 1 << 64
        span = space if n >= total else min(space, -(-space * n // total))
        start = random.Random(seed).randrange(space)
        windows = [(start, min(start + span, space) - 1)]
        if start + span > space:
            windows.append((0, start + span - space - 1))
        addresses = []
        for lo, hi in windows:
            query = tantivy.Query.range_query(self._schema, "key", tantivy.FieldType.Unsigned, lo, hi)
            addresses += [addr for _, addr in self._searcher.search(query, max(4 * n, 100), count=False).hits]
        return self.records_at(addresses)

    def bm25_moments(self, tokens: Sequence[str], head: Sequence[tuple[Any, float]],
                     complete_head: bool) -> tuple[float, float]:
        """This query's BM25 mean and spread over the whole store: exact over ``head`` (its top documents); every
        other document matching a term is taken to hold it once at average length (``complete_head``: ``head`` holds
        every matching document, so the rest score 0). O(terms), from document frequencies."""
        n = len(self)
        if n == 0:
            return 0.0, 0.0
        head_scores = np.asarray([pair[1] for pair in head], dtype=np.float64)
        total, squares = float(head_scores.sum()), float((head_scores**2).sum())
        if n > len(head) and not complete_head and tokens:
            for df, idf in self._idf(tokens).values():  # a repeated query term counts once, as in _query
                matches = max(df - len(head), 0)
                total += matches * idf
                squares += matches * idf * idf
        mean = total / n
        return mean, math.sqrt(max(squares / n - mean * mean, 0.0))

    def ids(self) -> list[str]:
        """Every indexed id (a diagnostic: it walks the whole index)."""
        import tantivy

        self.sync()
        n = len(self)
        if n == 0:
            return []
        searcher = self._searcher
        hits = searcher.search(tantivy.Query.all_query(), n, count=False).hits
        return [searcher.doc(addr)["id"][0] for _, addr in hits]

    def tokenize(self, texts: Sequence[str]) -> list[list[str]]:
        return tokenize(texts)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._db.close()


def _json_metadata(metadata: Mapping | None) -> dict[str, Any]:
    """The metadata values a filter can match exactly in tantivy (strings, integers, booleans)."""
    out: dict[str, Any] = {}
    for key, value in (metadata or {}).items():
        if isinstance(value, (str, bool, int)) and not isinstance(value, float):
            out[str(key)] = value
    return out


class UnsupportedFilter(Exception):
    """A ``where`` the lexical store cannot express; the caller filters candidates through the collection."""


def where_query(schema_store: LexicalStore, where: Mapping | None):
    """A chromadb ``where`` as a tantivy filter query: equality, ``$eq``, ``$in``, ``$and``, ``$or`` on string,
    integer and boolean values; anything else raises :class:`UnsupportedFilter`."""
    import tantivy

    schema = schema_store._schema

    def term(key: str, value: Any):
        if isinstance(value, float) or not isinstance(value, (str, int, bool)):
            raise UnsupportedFilter(key)
        return tantivy.Query.term_query(schema, f"meta.{_escape(key)}", value)

    def build(node: Mapping):
        if not isinstance(node, Mapping) or not node:
            raise UnsupportedFilter(node)
        clauses = []
        for key, value in node.items():
            if key in ("$and", "$or"):
                if not isinstance(value, list) or not value:
                    raise UnsupportedFilter(key)
                parts = [build(v) for v in value]
                occur = tantivy.Occur.Must if key == "$and" else tantivy.Occur.Should
                clauses.append(tantivy.Query.boolean_query([(occur, p) for p in parts]))
            elif key.startswith("$"):
                raise UnsupportedFilter(key)
            elif isinstance(value, Mapping):
                if len(value) != 1:
                    raise UnsupportedFilter(key)
                (op, operand), = value.items()
                if op == "$eq":
                    clauses.append(term(key, operand))
                elif op == "$in" and isinstance(operand, list) and operand:
                    clauses.append(tantivy.Query.boolean_query(
                        [(tantivy.Occur.Should, term(key, v)) for v in operand]))
                else:
                    raise UnsupportedFilter(op)
            else:
                clauses.append(term(key, value))
        if len(clauses) == 1:
            return clauses[0]
        return tantivy.Query.boolean_query([(tantivy.Occur.Must, c) for c in clauses])

    if where is None:
        return None
    return tantivy.Query.const_score_query(build(where), 0.0)


def _escape(key: str) -> str:
    return key.replace("\\", "\\\\").replace(".", "\\.")
