"""The lexical side of a hybrid collection, on disk and updated in place: tantivy BM25 plus a small SQLite state.

Why tantivy: its segments take adds and deletes in time proportional to the batch, a commit is atomic, one writer
and any number of readers share a folder, top-k uses block-max WAND over postings, and the index is memory-mapped,
so a process holds neither the corpus text nor a copy of the index in its heap. Texts are tokenised as the exact
retriever's :class:`~jepa_rag.lexical.LexicalIndex` does (bm25s' tokenizer: lower case, English stopwords, Snowball
stemming) and indexed as whitespace-separated stems, so the two sides agree on what a term is. tantivy's BM25 has
k1 = 1.2 built in, which ranks measurably worse here than bm25s' k1 = 1.5 (BM25-alone NDCG@10 0.6766 / 0.3191 vs
0.6863 / 0.3217 on SciFact / NFCorpus test): so tantivy picks twice ``k`` candidates by its own BM25 and they are
rescored exactly as bm25s scores them (Lucene variant, k1 = 1.5, b = 0.75, the document's stored stems giving its term
counts and length).

The state (``state.sqlite``, WAL) holds what fusion needs beyond postings, each maintained per write in O(batch):

- ``seq``: bumped by every commit, so a reader's staleness check is one indexed row read;
- the first two moments of the documents' unit-length vectors (a 768-d sum and a 768 x 768 sum of outer
  products), from which each query's whole-collection cosine mean and spread follow without touching a vector;
- a bounded uniform sample of the documents' term counts (ids whose hash falls below a threshold that halves when
  the sample doubles): with the exact top-k it estimates each query's whole-collection BM25 mean and spread;
- a journal: a write records the ids it touches and their old vectors before it changes the collection, and clears
  them in the same transaction that applies the moments. A writer killed between the two leaves the journal; the
  next writer (or a reader that gets the lock) replays it from what the collection then holds, so the lexical side
  ends holding the collection's state, never a mix.

Every value read back is checked (the moments carry a sha256; tantivy checks its own files on open); a damaged
store raises :class:`~jepa_rag.errors.LexicalIndexError` and the caller rebuilds it from the collection, which is
the source of truth.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import sqlite3
import threading
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .errors import LexicalIndexError
from .lexical import STEMMER_LANGUAGE, STOPWORDS

try:  # POSIX: a lock the kernel drops when its holder dies, even under SIGKILL
    import fcntl
except ImportError:  # pragma: no cover  (Windows: the lock is per process only)
    fcntl = None

__all__ = ["LexicalStore", "tokenize"]

FORMAT = "jepa-rag-lexical-store"
FORMAT_VERSION = 1
K1, B = 1.5, 0.75  # bm25s' defaults (the exact retriever's); candidates are rescored with them
CANDIDATES = 1.5  # tantivy returns this many times k candidates for rescoring
SAMPLE_TARGET = 2048  # documents the BM25-moment sample keeps (between this and twice this once the store is larger)
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


def id_hash(doc_id: str) -> float:
    """A uniform number in [0, 1) fixed by the id: whether a document is in the sample never depends on history."""
    return int.from_bytes(hashlib.sha256(doc_id.encode("utf-8", "surrogatepass")).digest()[:8], "big") / 2.0**64


def _schema():
    import tantivy

    sb = tantivy.SchemaBuilder()
    sb.add_text_field("id", stored=True, tokenizer_name="raw", index_option="basic")
    sb.add_text_field("body", stored=True, tokenizer_name="whitespace", index_option="freq")
    sb.add_json_field("meta", tokenizer_name="raw", index_option="basic")
    sb.add_unsigned_field("len", fast=True)
    return sb.build()


def _vector(value: Any) -> np.ndarray | None:
    if value is None:
        return None
    v = np.asarray(value, dtype=np.float64).reshape(-1)
    n = np.linalg.norm(v)
    return v / n if n > 0 else v


class _Sample:
    """The in-memory form of the sample: an inverted index over a few thousand documents' term counts."""

    def __init__(self, rows: Iterable[tuple[str, int, str]]):
        self.ids: list[str] = []
        lens: list[int] = []
        postings: dict[str, tuple[list[int], list[int]]] = {}
        for j, (doc_id, length, tf_json) in enumerate(rows):
            self.ids.append(doc_id)
            lens.append(length)
            for term, tf in json.loads(tf_json).items():
                entry = postings.setdefault(term, ([], []))
                entry[0].append(j)
                entry[1].append(tf)
        self.lens = np.asarray(lens, dtype=np.float64)
        self.postings = {t: (np.asarray(a, dtype=np.int64), np.asarray(b, dtype=np.float64))
                         for t, (a, b) in postings.items()}
        self.position = {d: j for j, d in enumerate(self.ids)}

    @property
    def avgdl(self) -> float:
        """The collection's mean document length in stems, estimated from the sample (exact while it holds all)."""
        return max(float(self.lens.mean()), 1.0) if self.ids else 1.0

    def scores(self, idf: Mapping[str, float], times: Mapping[str, int]) -> np.ndarray:
        """BM25 of one query (``idf`` and multiplicity per term) against every sampled document."""
        out = np.zeros(len(self.ids), dtype=np.float64)
        if not self.ids:
            return out
        norm = K1 * (1.0 - B + B * self.lens / self.avgdl)
        for term, count in times.items():
            hit = self.postings.get(term)
            if hit is None:
                continue
            rows, tf = hit
            out[rows] += count * idf[term] * tf / (tf + norm[rows])
        return out


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
        self._seen_sample: int | None = None
        self._state: dict[str, str] = {}
        self._moments: tuple[np.ndarray, np.ndarray] | None = None
        self._sample = _Sample([])
        self._searcher = None
        self._memory_key = f"memory:{id(self)}"

    # ------------------------------------------------------------------------------------------ state
    def _init_state(self) -> None:
        with self._transaction():
            self._db.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
            self._db.execute("CREATE TABLE IF NOT EXISTS moments (k INTEGER PRIMARY KEY CHECK (k = 0), n INTEGER, "
                             "complete INTEGER, dim INTEGER, total BLOB, outer_ BLOB, sha256 TEXT)")
            self._db.execute("CREATE TABLE IF NOT EXISTS journal (id TEXT PRIMARY KEY, old BLOB)")
            self._db.execute("CREATE TABLE IF NOT EXISTS sample (id TEXT PRIMARY KEY, h REAL, len INTEGER, "
                             "tf TEXT)")
            defaults = {"format": FORMAT, "format_version": str(FORMAT_VERSION), "seq": "0", "sample_seq": "0",
                        "tau": "1.0", "writer": "", "built": "0"}
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
        with open(self.folder / "lock", "a+b") as fh:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh.fileno(), fcntl.LOCK_UN)

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
        with self._transaction():
            self._apply_moments(old_vectors, {i: (None if r is None else r[2]) for i, r in final.items()},
                                has_vectors)
            self._apply_sample(ids, tokens)
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
                # padded with spaces so that ``str.count(" stem ")`` counts whole stems when rescoring
                doc.add_text("body", f" {' '.join(toks or ())} ")
                doc.add_unsigned("len", len(toks or ()))
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
            for vec in vecs.values():
                v = _vector(vec)
                if v is None:
                    continue
                if total is None:
                    total, outer = np.zeros_like(v), np.zeros((v.size, v.size))
                if v.size != total.size:
                    complete = 0
                    continue
                total += sign * v
                outer += sign * np.outer(v, v)
                n += int(sign)
        if total is None:
            return
        total_b, outer_b = total.tobytes(), outer.tobytes()
        digest = hashlib.sha256(total_b + outer_b).hexdigest()
        self._db.execute("INSERT OR REPLACE INTO moments VALUES (0, ?, ?, ?, ?, ?, ?)",
                         (n, complete, total.size, total_b, outer_b, digest))

    def _decode_moments(self, dim, total_b, outer_b, digest) -> tuple[np.ndarray, np.ndarray]:
        if (not isinstance(total_b, bytes) or not isinstance(outer_b, bytes)
                or hashlib.sha256(total_b + outer_b).hexdigest() != digest
                or len(total_b) != dim * 8 or len(outer_b) != dim * dim * 8):
            raise LexicalIndexError(f"{self.folder}: the stored vector moments are corrupt")
        return (np.frombuffer(total_b, dtype=np.float64).copy(),
                np.frombuffer(outer_b, dtype=np.float64).reshape(dim, dim).copy())

    def _apply_sample(self, ids: Sequence[str], tokens: Mapping[str, list[str]]) -> None:
        tau = float(self._db.execute("SELECT value FROM meta WHERE key = 'tau'").fetchone()[0])
        self._db.executemany("DELETE FROM sample WHERE id = ?", [(i,) for i in ids])
        rows = []
        for doc_id, toks in tokens.items():
            h = id_hash(doc_id)
            if h < tau:
                rows.append((doc_id, h, len(toks), json.dumps(Counter(toks), separators=(",", ":"))))
        self._db.executemany("INSERT INTO sample VALUES (?, ?, ?, ?)", rows)
        size = self._db.execute("SELECT COUNT(*) FROM sample").fetchone()[0]
        while size > 2 * SAMPLE_TARGET:  # halve the threshold: still a uniform sample, of half the size
            tau /= 2.0
            self._db.execute("DELETE FROM sample WHERE h >= ?", (tau,))
            size = self._db.execute("SELECT COUNT(*) FROM sample").fetchone()[0]
        self._db.execute("UPDATE meta SET value = ? WHERE key = 'tau'", (repr(tau),))
        if ids:
            self._db.execute("UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'sample_seq'")

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
            for table in ("moments", "journal", "sample"):
                self._db.execute(f"DELETE FROM {table}")  # noqa: S608 - fixed names
            self._db.execute("UPDATE meta SET value = '1.0' WHERE key = 'tau'")
            self._db.execute("UPDATE meta SET value = '0' WHERE key = 'built'")
            self._db.execute("UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'seq'")
            self._db.execute("UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'sample_seq'")

    # ------------------------------------------------------------------------------------------ reading
    def sync(self) -> bool:
        """Catch up with commits made since the last call (by this or another process); True when there were any.

        One small read when nothing changed; otherwise the index reader is reloaded and the moments (and, when it
        changed, the sample) re-read: O(dimension² + sample), never O(collection)."""
        with self._thread_lock:
            try:
                rows = self._db.execute("SELECT key, value FROM meta UNION ALL "
                                        "SELECT 'pending', EXISTS(SELECT 1 FROM journal)").fetchall()
            except sqlite3.DatabaseError as exc:
                raise LexicalIndexError(f"{self.folder}: cannot read the lexical store's state ({exc})") from None
            state = {k: str(v) for k, v in rows}
            self._state = state
            seq, sample_seq = int(state["seq"]), int(state["sample_seq"])
            if seq == self._seen_seq and self._searcher is not None:
                return False
            row = self._db.execute("SELECT n, complete, dim, total, outer_, sha256 FROM moments").fetchone()
            moments = None
            if row is not None and row[0] > 0 and row[1]:
                total, outer = self._decode_moments(*row[2:])
                moments = (total / row[0], outer / row[0])
            if sample_seq != self._seen_sample:
                self._sample = _Sample(self._db.execute("SELECT id, len, tf FROM sample ORDER BY id").fetchall())
                self._seen_sample = sample_seq
            try:
                self._index.reload()
                self._searcher = self._index.searcher()
            except ValueError as exc:
                raise LexicalIndexError(f"{self.folder}: cannot read the lexical index ({exc})") from None
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

    def _idf(self, tokens: Sequence[str]) -> dict[str, float]:
        n = len(self)
        searcher = self._searcher
        out = {}
        for term in set(tokens):
            df = int(searcher.doc_freq("body", term))
            out[term] = math.log(1.0 + (n - df + 0.5) / (df + 0.5))
        return out

    def _rescore(self, hits, idf: Mapping[str, float], times: Mapping[str, int]) -> list[tuple[str, float]]:
        """bm25s' BM25 of each hit, from its stored stems."""
        if not hits:
            return []
        searcher = self._searcher
        addrs = [addr for _, addr in hits]
        norms = K1 * (1.0 - B + B * np.asarray(searcher.fast_field_values("len", addrs), dtype=np.float64)
                      / self._sample.avgdl)
        terms = [(f" {t} ", count * idf[t]) for t, count in times.items()]
        out = []
        for addr, norm in zip(addrs, norms.tolist()):
            doc = searcher.doc(addr)
            body = (doc["body"] or [""])[0]
            score = 0.0
            for padded, weight in terms:
                tf = body.count(padded)
                if tf:
                    score += weight * tf / (tf + norm)
            out.append((doc["id"][0], score))
        return out

    def search(self, tokens: Sequence[str], k: int, *, where: Any = None) -> list[tuple[str, float]]:
        """The ``k`` best ``(id, BM25)`` for one tokenised query, best first (documents with no shared term are
        left out); ``where`` is a tantivy filter query from :func:`where_query`."""
        import tantivy

        if not tokens or self._searcher is None:
            return []
        query = self._query(tokens)
        if where is not None:
            query = tantivy.Query.boolean_query([(tantivy.Occur.Must, query), (tantivy.Occur.Must, where)])
        hits = self._searcher.search(query, int(CANDIDATES * int(k)), count=False).hits
        scored = self._rescore(hits, self._idf(tokens), Counter(tokens))
        scored.sort(key=lambda pair: -pair[1])  # stable: tantivy's order breaks ties
        return [(i, s) for i, s in scored[: int(k)] if s > 0]

    def scores_of(self, tokens: Sequence[str], ids: Sequence[str]) -> dict[str, float]:
        """BM25 of one tokenised query for the given ids only (absent: 0); touches those ids' postings only."""
        import tantivy

        if not tokens or not ids or self._searcher is None:
            return {}
        restrict = tantivy.Query.term_set_query(self._schema, "id", list(ids))
        query = tantivy.Query.boolean_query([(tantivy.Occur.Must, self._query(tokens)),
                                             (tantivy.Occur.Must, tantivy.Query.const_score_query(restrict, 0.0))])
        hits = self._searcher.search(query, len(ids), count=False).hits
        return dict(self._rescore(hits, self._idf(tokens), Counter(tokens)))

    def bm25_moments(self, tokens: Sequence[str], head: Sequence[tuple[str, float]],
                     complete_head: bool) -> tuple[float, float]:
        """This query's BM25 mean and spread over the whole store: exact over ``head`` (its top documents), the rest
        estimated from the sample (``complete_head``: head holds every matching document, so the rest score 0)."""
        n = len(self)
        if n == 0:
            return 0.0, 0.0
        head_scores = np.asarray([s for _, s in head], dtype=np.float64)
        total, squares = float(head_scores.sum()), float((head_scores**2).sum())
        rest = n - len(head)
        if rest > 0 and not complete_head and tokens:
            scores = self._sample.scores(self._idf(tokens), Counter(tokens))
            in_head = {i for i, _ in head}
            keep = np.asarray([i not in in_head for i in self._sample.ids], dtype=bool)
            tail = scores[keep] if keep.size else scores
            if tail.size:
                total += rest * float(tail.mean())
                squares += rest * float((tail**2).mean())
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
