"""Your corpus for training on your own pairs: the documents hard negatives are mined from and dev queries are
ranked against.

Three formats, told apart by what the path is:

- a folder of ``.txt`` / ``.md`` files (searched recursively; id = the path inside the folder, text = the file);
- a BEIR ``corpus.jsonl`` (``{"_id", "title", "text"}``), or a BEIR folder holding one;
- any JSONL of ``{"id"?, "title"?, "text"}`` (id defaults to ``line<N>``).

Documents become text as BEIR does: ``(title + " " + text).strip()``. Empty documents and repeated ids (the first
wins) are skipped with one warning, as on every path (:mod:`jepa_rag.corpus_audit`).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from .corpus_audit import CorpusAudit
from .data import Pairs, _iter_jsonl, doc_text
from .errors import DataFormatError, DataNotFoundError

TEXT_SUFFIXES = (".txt", ".md")


@dataclass
class Corpus:
    """Documents as id → text, plus each document's body without its title (pairs may quote either)."""

    docs: dict[str, str]
    source: str
    bodies: dict[str, str]
    # the BEIR folder the corpus came from, when it did: its precomputed base vectors can be imported
    beir_folder: Path | None = None
    # what the corpus rule skipped while reading it (empty documents, repeated ids)
    audit: CorpusAudit | None = None

    def __len__(self) -> int:
        return len(self.docs)


def load_corpus(path: str | os.PathLike) -> Corpus:
    """Read a corpus in any of the module's formats; refuses bad input naming the file (and line)."""
    p, is_folder = locate_corpus(path)
    return _load_text_folder(p) if is_folder else _load_jsonl(p)


def locate_corpus(path: str | os.PathLike) -> tuple[Path, bool]:
    """What a corpus path names: the JSONL file to read (a BEIR folder's corpus.jsonl, or the file itself), or a
    folder of .txt/.md files (then True); :class:`DataNotFoundError` when nothing is there."""
    p = Path(path).expanduser()
    if not p.exists():
        raise DataNotFoundError(f"corpus not found: {p} (give a corpus.jsonl, a JSONL of {{'id', 'title', 'text'}} "
                                "or a folder of .txt/.md files)")
    if p.is_dir():
        if (p / "corpus.jsonl").is_file() and not _text_files(p):
            return p / "corpus.jsonl", False
        return p, True
    return p, False


def _text_files(folder: Path) -> list[Path]:
    return sorted(f for f in folder.rglob("*") if f.suffix.lower() in TEXT_SUFFIXES and f.is_file())


def read_text_file(f: Path) -> str:
    """One document of a folder corpus: the file's UTF-8 text, stripped."""
    try:
        return f.read_bytes().decode("utf-8").strip()
    except UnicodeDecodeError as exc:
        raise DataFormatError(f"{f}: not valid UTF-8 (byte {exc.start})") from None


def _load_text_folder(folder: Path) -> Corpus:
    files = _text_files(folder)
    if not files:
        raise DataFormatError(f"{folder}: no .txt or .md files (and no corpus.jsonl) in this folder")
    docs: dict[str, str] = {}
    audit = CorpusAudit(str(folder))
    for f in files:
        name, text = f.relative_to(folder).as_posix(), read_text_file(f)
        if audit.admit(name, text):
            docs[name] = text
    if not docs:
        raise DataFormatError(f"{folder}: every .txt/.md file is empty")
    audit.warn()
    return Corpus(docs, str(folder), dict(docs), audit=audit)


def iter_jsonl_documents(f: Path, start: int = 0, end: int | None = None, first_line: int = 1,
                         audit: CorpusAudit | None = None) -> Iterator[tuple[str, str, str]]:
    """(id, title + text, text) of each document of a JSONL corpus, or of the byte range ``start..end`` of one
    (see ``data._iter_jsonl``), with every check the corpus loader makes. Empty documents and repeated ids
    (within what is read; the first wins) are skipped under the corpus rule (:mod:`jepa_rag.corpus_audit`):
    recorded in ``audit`` when one is given, else said in one warning once the file is read."""
    own = audit is None
    audit = audit if audit is not None else CorpusAudit(str(f))
    for lineno, obj in _iter_jsonl(f, start, end, first_line):
        raw_id = obj.get("_id", obj.get("id", f"line{lineno}"))
        if not isinstance(raw_id, (str, int)) or isinstance(raw_id, bool):
            raise DataFormatError(f"{f}:{lineno}: field 'id' must be a string, got {type(raw_id).__name__}")
        did = str(raw_id)
        if "text" not in obj:
            raise DataFormatError(f"{f}:{lineno}: missing field 'text' (each line needs 'text'; 'id' and 'title' "
                                  "are optional)")
        for key in ("title", "text"):
            if obj.get(key) is not None and not isinstance(obj[key], str):
                raise DataFormatError(f"{f}:{lineno}: field {key!r} must be a string, got {type(obj[key]).__name__}")
        text = doc_text(obj)
        if audit.admit(did, text):
            yield did, text, str(obj.get("text") or "").strip()
    if own:
        audit.warn()


def _load_jsonl(f: Path) -> Corpus:
    docs: dict[str, str] = {}
    bodies: dict[str, str] = {}
    audit = CorpusAudit(str(f))
    for did, text, body in iter_jsonl_documents(f, audit=audit):
        docs[did] = text
        bodies[did] = body
    if not docs:
        raise DataFormatError(f"{f}: no documents found ("
                              + (f"all {audit.documents} are empty)" if audit.documents else "empty file)"))
    audit.warn()
    beir = f.parent if f.name == "corpus.jsonl" and (f.parent / "queries.jsonl").is_file() else None
    return Corpus(docs, str(f), bodies, beir, audit)


def join_corpus(pairs: Pairs, corpus: Corpus) -> tuple[Pairs, int]:
    """``pairs`` with the whole corpus as their mining pool and dev ranking, and how many positives were added.

    See :func:`join_corpus_report` for how a pair finds its document."""
    report = join_corpus_report(pairs, corpus)
    return report.pairs, report.added


@dataclass
class JoinReport:
    """Joined pairs, and how their positives were found: by ``doc_id``, by exact text, as a passage of a corpus
    document, or nowhere (then ``added`` to the pool under a new id; ``added_examples`` shows a few)."""

    pairs: Pairs
    by_id: int = 0
    exact: int = 0
    passage: int = 0
    added: int = 0
    added_examples: tuple[str, ...] = ()


def _squash(text: str) -> str:
    return " ".join(text.split())


def join_corpus_report(pairs: Pairs, corpus: Corpus) -> JoinReport:
    """``pairs`` joined to ``corpus``: each pair's document is

    - the corpus document its ``doc_id`` names, when the line gave no ``positive`` (a folder's file path or a
      JSONL id; :class:`DataFormatError` when the corpus has no such id);
    - else the document whose text (title + text, or the text alone) is exactly the positive;
    - else the first document (in corpus order) that contains the positive as a passage, whitespace aside: that
      document becomes the pair's positive;
    - else none: the positive is added to the pool under a new id (counted, never silently).
    """
    by_text: dict[str, str] = {}
    for did, body in corpus.bodies.items():  # full texts win over bodies: assigned last
        by_text.setdefault(body, did)
    for did, text in corpus.docs.items():
        by_text[text] = did
    squashed: list[tuple[str, str]] | None = None
    pool = dict(corpus.docs)
    added: dict[str, str] = {}
    report = JoinReport(pairs)
    doc_ids, positives = [], []
    for q, did, text in zip(pairs.queries, pairs.doc_ids, pairs.positives):
        if not text:  # named by doc_id only
            if did not in corpus.docs:
                some = ", ".join(repr(i) for i in list(corpus.docs)[:3])
                unread = Path(did).suffix.lower() not in TEXT_SUFFIXES and Path(corpus.source).is_dir()
                raise DataFormatError(f"{pairs.source}: the pair for query {q!r:.60} names doc_id {did!r}, which is not "
                                      f"in the corpus {corpus.source} (its ids look like {some})"
                                      + ("; a folder corpus for training reads only .txt and .md files" if unread
                                         else ""))
            report.by_id += 1
            doc_ids.append(did)
            positives.append(corpus.docs[did])
            continue
        joined = by_text.get(text) or by_text.get(text.strip())
        if joined is not None:
            report.exact += 1
            doc_ids.append(joined)
            positives.append(text)
            continue
        if squashed is None:  # only when some positive is not a whole document
            squashed = [(i, _squash(t)) for i, t in corpus.docs.items()]
        needle = _squash(text)
        if did in corpus.docs and needle in _squash(corpus.docs[did]):
            joined = did
        else:
            joined = next((i for i, t in squashed if needle in t), None)
        if joined is not None:
            report.passage += 1
            doc_ids.append(joined)
            positives.append(corpus.docs[joined])
            continue
        joined = added.get(text)
        if joined is None:
            joined = f"pairs:{did}"
            while joined in pool:
                joined += "_"
            added[text] = joined
            pool[joined] = text
        doc_ids.append(joined)
        positives.append(text)
    report.added = len(added)
    report.added_examples = tuple(list(added)[:3])
    report.pairs = Pairs(pairs.query_ids, pairs.queries, doc_ids, positives,
                         source=f"{pairs.source} + corpus {corpus.source}", pool=pool)
    return report
