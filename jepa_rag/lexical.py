"""A BM25 lexical index (``bm25s`` + PyStemmer): the lexical half of hybrid retrieval.

Documents are indexed as the dense side embeds them (:func:`jepa_rag.data.doc_text`: ``title + " " + text``),
lower-cased, English stopwords removed, Snowball-stemmed; BM25 is bm25s' default (Lucene variant, k1 = 1.5,
b = 0.75).

On disk a folder holds bm25s' own files (``.npy`` arrays saved without pickle, JSON vocabulary and parameters)
and ``manifest.json`` (format version, tokenizer settings, the document ids in index order, a sha256 per file, and
a sha256 of the manifest itself, so an edited id is refused like a damaged file).
Saving writes a temp folder, fsyncs it and renames it into place, so a crash never leaves a half-written index
that loads; loading checks every checksum and raises :class:`LexicalIndexError` naming what is wrong (indexes of
format version 1, without the manifest's checksum, are refused the same way: rebuild them). Each save removes the
temp folders and set-aside copies that killed saves left.
"""

from __future__ import annotations

import errno
import hashlib
import json
import logging
import os
import shutil
import socket
import time
import uuid
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .corpus_audit import clean_corpus
from .encoder import validate_texts
from .errors import InvalidInputError, LexicalIndexError
from .fsutil import fsync_dir, fsync_file, make_temp_dir
from .fusion import best_indices

FORMAT = "jepa-rag-lexical"
# 2: manifest_sha256, a checksum of the manifest itself (ids and file checksums); version 1 indexes lacked it
FORMAT_VERSION = 2
MANIFEST = "manifest.json"
BM25_PARAMS = "params.index.json"
STOPWORDS = "en"
STEMMER_LANGUAGE = "english"


def _stemmer():
    import Stemmer

    return Stemmer.Stemmer(STEMMER_LANGUAGE)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _manifest_sha256(manifest: dict) -> str:
    """The checksum of a manifest's every other key (canonical JSON), so an edited id or file checksum is refused."""
    rest = {k: v for k, v in manifest.items() if k != "manifest_sha256"}
    return hashlib.sha256(json.dumps(rest, sort_keys=True, separators=(",", ":")).encode("utf-8")).hexdigest()


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, ValueError):
        return True
    return True


def _remove_leftovers(folder: Path) -> None:
    """Remove what saves of ``folder`` that were killed left beside it: temp folders (``.<name>.tmp<host>-<pid>-*``)
    of dead processes on this host (or older than a day, from another host) and set-aside copies
    (``.<name>.old<pid>.*``) of dead processes, once ``folder`` holds a committed index."""
    host = socket.gethostname()
    for path in folder.parent.glob(f".{folder.name}.tmp*"):
        owner_host, _, rest = path.name[len(folder.name) + 5:].rpartition("-")[0].rpartition("-")
        try:
            pid = int(rest)
        except ValueError:
            continue
        try:
            stale = not _pid_alive(pid) if owner_host == host else time.time() - path.stat().st_mtime > 86400
        except OSError:
            continue
        if stale:
            shutil.rmtree(path, ignore_errors=True)
    if not (folder / MANIFEST).is_file():
        return  # a set-aside copy may be the only committed index
    for path in folder.parent.glob(f".{folder.name}.old*"):
        try:
            pid = int(path.name[len(folder.name) + 5:].split(".")[0])
        except ValueError:
            continue
        if not _pid_alive(pid):
            shutil.rmtree(path, ignore_errors=True)


def _check_ids(ids: object) -> list[str]:
    if isinstance(ids, (str, bytes)) or not hasattr(ids, "__iter__"):
        raise InvalidInputError(f"ids: expected a list of strings, got {type(ids).__name__}")
    out = list(ids)
    seen: set[str] = set()
    for i, did in enumerate(out):
        if not isinstance(did, str) or not did:
            raise InvalidInputError(f"ids[{i}]: expected a non-empty string, got {did!r:.40}")
        if did in seen:
            raise InvalidInputError(f"ids[{i}]: duplicate id {did!r}; every document needs its own id")
        seen.add(did)
    return out


class LexicalIndex:
    """BM25 over ``texts``, addressed by ``ids``. An empty corpus is allowed (every search returns nothing).

    Empty texts and repeated ids are skipped with one warning (:func:`jepa_rag.corpus_audit.clean_corpus`), so
    :attr:`ids` may be shorter than ``ids``."""

    def __init__(self, ids: Sequence[str], texts: Sequence[str], *, show_progress_bar: bool | None = None):
        clean = clean_corpus(ids, texts, what="texts")
        self.ids, texts = clean.ids, clean.texts
        self._bm25 = None
        show = bool(show_progress_bar)
        tokens = self._tokenize(texts, show) if texts else []
        if any(tokens):  # else no document has an indexable word (e.g. only stopwords): every score is 0
            import bm25s

            self._bm25 = bm25s.BM25()
            self._bm25.index(tokens, show_progress=show)

    @classmethod
    def _from_parts(cls, ids: list[str], bm25) -> LexicalIndex:
        obj = cls.__new__(cls)
        obj.ids, obj._bm25 = ids, bm25
        return obj

    def __len__(self) -> int:
        return len(self.ids)

    def __repr__(self) -> str:
        return f"LexicalIndex({len(self)} documents, bm25s, stopwords={STOPWORDS}, stemmer={STEMMER_LANGUAGE})"

    @staticmethod
    def _tokenize(texts: list[str], show_progress: bool = False) -> list[list[str]]:
        import bm25s

        return bm25s.tokenize(texts, stopwords=STOPWORDS, stemmer=_stemmer(), return_ids=False,
                              show_progress=show_progress)

    # ------------------------------------------------------------------------------------------ scoring
    def score_all(self, queries: Sequence[str]) -> np.ndarray:
        """BM25 scores of every query against every document, shape (Q, N), columns in :attr:`ids` order."""
        queries = validate_texts(queries, "queries")
        out = np.zeros((len(queries), len(self.ids)), dtype=np.float32)
        if self._bm25 is None:
            return out
        for row, tokens in enumerate(self._tokenize(queries)):
            token_ids = self._bm25.get_tokens_ids(tokens)
            if token_ids:  # a query of only stopwords / unknown words matches nothing
                out[row] = self._bm25.get_scores_from_ids(token_ids)
        return out

    def search(self, queries: Sequence[str], k: int) -> list[list[tuple[str, float]]]:
        """The ``k`` best ``(id, score)`` per query, best first (``k`` capped at the corpus size). Documents
        sharing no term with the query (score 0) are left out, so a list may be shorter than ``k``."""
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
            raise InvalidInputError(f"k must be a positive integer, got {k!r}")
        return [top_positive(row, self.ids, int(k)) for row in self.score_all(queries)]

    # ------------------------------------------------------------------------------------------ persistence
    def save(self, folder: str | os.PathLike) -> None:
        """Write the index to ``folder`` atomically, replacing an index already there."""
        folder = Path(folder)
        folder.parent.mkdir(parents=True, exist_ok=True)
        tmp = make_temp_dir(folder.parent, f".{folder.name}.tmp")
        try:
            if self._bm25 is not None:
                self._bm25.save(str(tmp), show_progress=False)
            import bm25s

            files = sorted(p.name for p in tmp.iterdir())
            manifest = {
                "format": FORMAT,
                "format_version": FORMAT_VERSION,
                "bm25s_version": bm25s.__version__,
                "tokenizer": {"stopwords": STOPWORDS, "stemmer": STEMMER_LANGUAGE, "text": "title + ' ' + text"},
                "ids": self.ids,
                "sha256": {name: _sha256(tmp / name) for name in files},
            }
            manifest["manifest_sha256"] = _manifest_sha256(manifest)
            (tmp / MANIFEST).write_text(json.dumps(manifest), encoding="utf-8")
            for name in [*files, MANIFEST]:
                fsync_file(tmp / name)
            fsync_dir(tmp)
            # a folder cannot be renamed onto a non-empty one: set the current index aside, then rename ours in.
            # Another writer may do the same at once; whoever renames in last wins, and every try is whole.
            aside: list[Path] = []
            for _ in range(100):
                if folder.exists():
                    old = folder.with_name(f".{folder.name}.old{os.getpid()}.{uuid.uuid4().hex[:8]}")
                    try:
                        os.replace(folder, old)
                        aside.append(old)
                    except FileNotFoundError:
                        pass
                try:
                    os.replace(tmp, folder)
                    break
                except OSError as exc:
                    if exc.errno not in (errno.ENOTEMPTY, errno.EEXIST):
                        raise
            else:
                raise LexicalIndexError(f"{folder}: could not replace the index (other writers kept replacing it)")
            fsync_dir(folder.parent)
            for old in aside:
                shutil.rmtree(old, ignore_errors=True)
            _remove_leftovers(folder)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise

    @classmethod
    def load(cls, folder: str | os.PathLike) -> LexicalIndex:
        """Read and verify an index written by :meth:`save`; :class:`LexicalIndexError` names any problem.

        A read that races a save (the folder swapped or its old copy removed mid-read) is retried a few times."""
        for attempt in range(4):
            try:
                return cls._load_once(Path(folder).expanduser())
            except (LexicalIndexError, OSError) as exc:  # OSError: a file renamed away between a check and a read
                if attempt == 3:
                    if isinstance(exc, LexicalIndexError):
                        raise
                    raise LexicalIndexError(f"{folder}: cannot read the lexical index ({exc})") from None
                time.sleep(0.05 * (attempt + 1))
        raise AssertionError("unreachable")

    @classmethod
    def _load_once(cls, folder: Path) -> LexicalIndex:
        if not folder.is_dir():
            old = sorted(folder.parent.glob(f".{folder.name}.old*"))  # a save killed between its two renames
            if old and (old[-1] / MANIFEST).is_file():
                folder = old[-1]
            else:
                raise LexicalIndexError(f"lexical index not found: {folder} is not a folder")
        path = folder / MANIFEST
        if not path.is_file():
            raise LexicalIndexError(f"{folder}: not a jepa-rag lexical index (missing {MANIFEST})")
        try:
            manifest = json.loads(path.read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError) as exc:
            raise LexicalIndexError(f"{path}: corrupt (not valid JSON: {exc})") from None
        if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
            raise LexicalIndexError(f"{path}: not a jepa-rag lexical index manifest")
        if manifest.get("format_version") != FORMAT_VERSION:
            raise LexicalIndexError(
                f"{path}: unknown format_version {manifest.get('format_version')!r}; this jepa-rag reads version "
                f"{FORMAT_VERSION}. Rebuild the index from its documents.")
        if manifest.get("manifest_sha256") != _manifest_sha256(manifest):
            raise LexicalIndexError(f"{path}: corrupt (the manifest's ids or checksums were changed after saving: "
                                    "manifest_sha256 does not match). Rebuild the index from its documents.")
        ids, sums = manifest.get("ids"), manifest.get("sha256")
        if not isinstance(ids, list) or not isinstance(sums, dict):
            raise LexicalIndexError(f"{path}: manifest lacks its ids or checksums")
        for name, digest in sums.items():
            f = folder / name
            if not f.is_file():
                raise LexicalIndexError(f"{folder}: missing {name} (truncated copy?)")
            if _sha256(f) != digest:
                raise LexicalIndexError(f"{f}: corrupt or truncated (sha256 does not match the manifest)")
        try:
            ids = _check_ids(ids)
        except InvalidInputError as exc:
            raise LexicalIndexError(f"{path}: {exc}") from None
        if BM25_PARAMS not in sums:  # saved without a bm25s index: no document had an indexable word
            return cls._from_parts(ids, None)
        import bm25s

        try:
            logging.getLogger("bm25s").setLevel(logging.WARNING)
            bm25 = bm25s.BM25.load(str(folder), mmap=False, allow_pickle=False, show_progress=False)
        except Exception as exc:  # noqa: BLE001 - any failure to parse bm25s' files is a corrupt index
            raise LexicalIndexError(f"{folder}: cannot read the bm25s index ({type(exc).__name__}: {exc})") from None
        if bm25.scores.get("num_docs") != len(ids):
            raise LexicalIndexError(
                f"{folder}: the bm25s index holds {bm25.scores.get('num_docs')} documents, the manifest {len(ids)} ids")
        return cls._from_parts(ids, bm25)


def top_positive(row: np.ndarray, ids: Sequence[str], k: int) -> list[tuple[str, float]]:
    """The ``k`` best ``(id, score)`` of one row of :meth:`LexicalIndex.score_all`, best first, without the
    documents that share no term with the query (score 0)."""
    return [(ids[j], float(row[j])) for j in best_indices(row, min(int(k), len(ids))) if row[j] > 0]
