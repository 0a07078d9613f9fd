"""Data: BEIR-format folders, MS MARCO query–positive pairs, user pair files, and dev splits.

Documents are turned into text the way BEIR and sentence-transformers do: ``(title + " " + text).strip()``.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import random
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from .errors import DataFormatError, DataNotFoundError

BEIR_URL = "https://public.ukp.informatik.tu-darmstadt.de/thakur/BEIR/datasets/{name}.zip"
MSMARCO_PAIRS_NAME = "msmarco/pairs.jsonl"


def doc_text(doc: dict | str) -> str:
    """The text a document is embedded as: ``(title + " " + text).strip()`` (BEIR's rule)."""
    if isinstance(doc, str):
        return doc
    if not isinstance(doc, dict):
        raise DataFormatError(f"a document must be a dict with 'title'/'text' or a str, got {type(doc).__name__}")
    return (str(doc.get("title") or "") + " " + str(doc.get("text") or "")).strip()


@dataclass
class BeirDataset:
    """A BEIR-format data set: ``corpus`` id → {title, text}, ``queries`` id → text, ``qrels`` qid → {did: grade}."""

    name: str
    corpus: dict[str, dict]
    queries: dict[str, str]
    qrels: dict[str, dict[str, int]]
    split: str
    path: Path | None = None
    # what the corpus rule skipped while loading (a jepa_rag.corpus_audit.CorpusAudit)
    audit: object | None = None

    def corpus_texts(self) -> tuple[list[str], list[str]]:
        ids = list(self.corpus)
        return ids, [doc_text(self.corpus[i]) for i in ids]


_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def _iter_jsonl(path: Path, start: int = 0, end: int | None = None,
                first_line: int = 1) -> Iterator[tuple[int, dict]]:
    """(line number, object) for each non-blank line; ``start``/``end`` bound a byte range that begins a line
    (``first_line`` is its number), so a worker can read one shard of a corpus."""
    with open(path, "rb") as fh:
        fh.seek(start)
        lines = fh if end is None else io.BytesIO(fh.read(end - start))
        for lineno, raw in enumerate(lines, first_line):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError:
                raise DataFormatError(f"{path}:{lineno}: not valid UTF-8") from None
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataFormatError(f"{path}:{lineno}: not valid JSON ({exc.msg})") from None
            if not isinstance(obj, dict):
                raise DataFormatError(f"{path}:{lineno}: expected a JSON object, got {type(obj).__name__}")
            if _SURROGATE_ESCAPE.search(line):  # valid pairs decode to one character; a lone one cannot be encoded
                try:
                    json.dumps(obj, ensure_ascii=False).encode("utf-8")
                except UnicodeEncodeError:
                    raise DataFormatError(
                        f"{path}:{lineno}: not valid Unicode (a lone surrogate escape such as \\ud800)") from None
            yield lineno, obj


def _require(path: Path, lineno: int, obj: dict, key: str) -> str:
    if key not in obj:
        raise DataFormatError(f"{path}:{lineno}: missing field {key!r}")
    value = obj[key]
    if not isinstance(value, (str, int)):
        raise DataFormatError(f"{path}:{lineno}: field {key!r} must be a string, got {type(value).__name__}")
    return str(value)


def read_qrels(path: Path) -> dict[str, dict[str, int]]:
    """Read a BEIR qrels TSV (header line, CRLF or LF) into qid → {doc id: grade}; ids stay strings."""
    qrels: dict[str, dict[str, int]] = {}
    try:
        text = Path(path).read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DataFormatError(f"{path}: not valid UTF-8 (byte {exc.start})") from None
    reader = csv.reader(io.StringIO(text, newline=""), delimiter="\t", quoting=csv.QUOTE_NONE)
    for lineno, row in enumerate(reader, 1):
        row = [c.strip() for c in row]
        if not row or not any(row):
            continue
        if lineno == 1 and row[0].lower() in ("query-id", "query_id", "qid"):
            continue
        if len(row) < 3:
            raise DataFormatError(f"{path}:{lineno}: expected 3 tab-separated columns, got {len(row)}")
        try:
            grade = int(float(row[2]))
        except (ValueError, OverflowError):
            raise DataFormatError(f"{path}:{lineno}: score {row[2]!r} is not a number") from None
        qrels.setdefault(row[0], {})[row[1]] = grade
    return qrels


def load_beir(folder: str | os.PathLike, split: str = "test") -> BeirDataset:
    """Load a BEIR-format folder (``corpus.jsonl``, ``queries.jsonl``, ``qrels/<split>.tsv``).

    Only the queries that have judgments in ``split`` are kept. Empty documents and repeated ids (the first wins)
    are skipped with one warning (:mod:`jepa_rag.corpus_audit`); judgments of a skipped document stay, and count
    as relevant documents never retrieved.
    """
    path = Path(folder).expanduser()
    if not path.is_dir():
        raise DataNotFoundError(
            f"BEIR data folder not found: {path}. Pass a folder with corpus.jsonl, queries.jsonl and qrels/, or "
            f"download one, e.g. {BEIR_URL.format(name='scifact')} (then unzip it).")
    files = {"corpus": path / "corpus.jsonl", "queries": path / "queries.jsonl", "qrels": path / "qrels" / f"{split}.tsv"}
    for role, f in files.items():
        if not f.is_file():
            extra = ""
            if role == "qrels" and (path / "qrels").is_dir():
                extra = f" (splits present: {sorted(p.stem for p in (path / 'qrels').glob('*.tsv'))})"
            raise DataNotFoundError(f"{path}: missing {f.relative_to(path)}{extra}")
    from .corpus_audit import CorpusAudit  # local: it imports this module

    corpus: dict[str, dict] = {}
    audit = CorpusAudit(str(files["corpus"]))
    for lineno, obj in _iter_jsonl(files["corpus"]):
        did = _require(files["corpus"], lineno, obj, "_id")
        doc = {"title": str(obj.get("title") or ""), "text": str(obj.get("text") or "")}
        if audit.admit(did, doc_text(doc)):
            corpus[did] = doc
    audit.warn()
    qrels = read_qrels(files["qrels"])
    queries: dict[str, str] = {}
    for lineno, obj in _iter_jsonl(files["queries"]):
        qid = _require(files["queries"], lineno, obj, "_id")
        if qid in qrels:
            queries[qid] = _require(files["queries"], lineno, obj, "text")
    missing = [q for q in qrels if q not in queries]
    if missing:
        raise DataFormatError(f"{files['qrels']}: {len(missing)} query id(s) not in queries.jsonl, e.g. {missing[0]!r}")
    return BeirDataset(name=path.name, corpus=corpus, queries=queries, qrels=qrels, split=split, path=path,
                       audit=audit)


def read_all_queries(folder: str | os.PathLike) -> dict[str, str]:
    """Every query of a BEIR folder, whatever its split."""
    f = Path(folder) / "queries.jsonl"
    return {_require(f, n, o, "_id"): _require(f, n, o, "text") for n, o in _iter_jsonl(f)}


# ----------------------------------------------------------------------------------------------- pairs
@dataclass
class Pairs:
    """Query–positive training pairs. ``doc_ids`` name the positives, so duplicates can be masked."""

    query_ids: list[str]
    queries: list[str]
    doc_ids: list[str]
    positives: list[str]
    source: str = ""
    # the pool negatives are mined from (id → text); defaults to the positives themselves
    pool: dict[str, str] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.queries)

    def subset(self, idx: Iterable[int]) -> Pairs:
        idx = list(idx)
        return Pairs([self.query_ids[i] for i in idx], [self.queries[i] for i in idx],
                     [self.doc_ids[i] for i in idx], [self.positives[i] for i in idx], self.source, self.pool)

    def content_hash(self) -> str:
        h = hashlib.sha256()
        for q, d in zip(self.queries, self.positives):
            h.update(q.encode())
            h.update(b"\x00")
            h.update(d.encode())
            h.update(b"\x01")
        return h.hexdigest()


def _check_text(path: Path, lineno: int, field_name: str, value: object) -> str:
    if not isinstance(value, str):
        raise DataFormatError(f"{path}:{lineno}: field {field_name!r} must be a string, got {type(value).__name__}")
    if not value.strip():
        raise DataFormatError(f"{path}:{lineno}: field {field_name!r} is empty")
    return value


def load_pairs_jsonl(path: str | os.PathLike) -> Pairs:
    """Read a JSONL file of ``{"query": ..., "positive": ...}`` (optional ``query_id``, ``doc_id``).

    A line may name its document with ``doc_id`` alone (the corpus id: a file's path inside the ``--corpus``
    folder, or a JSONL id) instead of quoting it as ``positive``: its positive is then left empty ("") until
    :func:`jepa_rag.corpus.join_corpus` fills it from the corpus.

    A query with several relevant documents takes one line per positive: lines with the same ``query_id`` (or,
    without ids, the same query text) are one query, so its other positives are never its negatives and the dev
    split keeps them together. Refuses, naming the file and line: invalid JSON, a missing field, an empty or
    non-string text, a ``query_id`` reused for another query text.
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise DataNotFoundError(f"pairs file not found: {path}")
    qids, queries, dids, positives = [], [], [], []
    seen_qid: dict[str, tuple[int, str]] = {}
    qid_by_text: dict[str, str] = {}
    doc_by_text: dict[str, str] = {}
    for lineno, obj in _iter_jsonl(path):
        if "query" not in obj:
            raise DataFormatError(f"{path}:{lineno}: missing field 'query' (each line needs 'query' and 'positive', "
                                  "or 'doc_id' naming a --corpus document)")
        if "positive" not in obj and "doc_id" not in obj:
            raise DataFormatError(f"{path}:{lineno}: missing field 'positive' (each line needs 'query' and "
                                  "'positive', or 'doc_id' naming a --corpus document)")
        q = _check_text(path, lineno, "query", obj["query"])
        p = _check_text(path, lineno, "positive", obj["positive"]) if "positive" in obj else ""
        if not p:
            _check_text(path, lineno, "doc_id", str(obj["doc_id"]) if isinstance(obj["doc_id"], int) else obj["doc_id"])
        qid = str(obj["query_id"]) if "query_id" in obj else qid_by_text.setdefault(q, f"line{lineno}")
        first, first_text = seen_qid.setdefault(qid, (lineno, q))
        if first_text != q:
            raise DataFormatError(f"{path}:{lineno}: duplicated query_id {qid!r} (first on line {first}) with "
                                  "another query text (one query_id per query; repeat it only for more positives)")
        did = str(obj["doc_id"]) if "doc_id" in obj else doc_by_text.setdefault(p, f"doc{len(doc_by_text)}")
        qids.append(qid)
        queries.append(q)
        dids.append(did)
        positives.append(p)
    if not queries:
        raise DataFormatError(f"{path}: no pairs found (empty file)")
    pool = {d: t for d, t in zip(dids, positives) if t}  # doc_id-only lines: filled from the corpus
    return Pairs(qids, queries, dids, positives, source=str(path), pool=pool)


def pairs_from_beir(folder: str | os.PathLike, split: str = "train") -> Pairs:
    """Every (query, relevant document) pair of a BEIR split (grade > 0); the corpus is the mining pool."""
    ds = load_beir(folder, split)
    qids, queries, dids, positives = [], [], [], []
    for qid, rel in ds.qrels.items():
        for did, grade in rel.items():
            if grade > 0 and did in ds.corpus:
                qids.append(qid)
                queries.append(ds.queries[qid])
                dids.append(did)
                positives.append(doc_text(ds.corpus[did]))
    pool = {did: doc_text(doc) for did, doc in ds.corpus.items()}
    return Pairs(qids, queries, dids, positives, source=f"{ds.path}:{split}", pool=pool)


def _pairs_from_corpora(folders: list[str | os.PathLike], kind: str, pair_of) -> Pairs:
    """One (query, positive) pair per document for which ``pair_of(doc_id, obj)`` returns one; every document of
    every folder is in the mining pool, as its positive's text when it has a pair (so negatives and positives are
    the same kind of text). Ids are prefixed with the folder name so several corpora can be mixed."""
    from .corpus_audit import CorpusAudit  # local: it imports this module

    qids, queries, dids, positives, pool = [], [], [], [], {}
    for folder in folders:
        folder = Path(folder)
        f = folder / "corpus.jsonl"
        if not f.is_file():
            raise DataNotFoundError(f"{folder}: missing corpus.jsonl")
        audit = CorpusAudit(str(f))
        for lineno, obj in _iter_jsonl(f):
            did = f"{folder.name}:{_require(f, lineno, obj, '_id')}"
            if not audit.admit(did, doc_text(obj)):
                continue
            pair = pair_of(did, obj)
            pool[did] = pair[1] if pair else doc_text(obj)
            if pair:
                qids.append(did)
                queries.append(pair[0])
                dids.append(did)
                positives.append(pair[1])
        audit.warn()
    if not queries:
        raise DataFormatError(f"no document of {[str(f) for f in folders]} yields a training pair for "
                              f"data.source={kind} (too short, or no title)")
    return Pairs(qids, queries, dids, positives, source=f"{kind}:" + ",".join(str(f) for f in folders), pool=pool)


def pairs_from_corpus_titles(folders: list[str | os.PathLike]) -> Pairs:
    """Self-supervised pairs from unlabelled documents: query = the document's title, positive = the document.

    No judgments are read: only ``corpus.jsonl``. Documents without a title (or whose text is empty) are skipped.
    """
    def title(_did: str, obj: dict) -> tuple[str, str] | None:
        t = str(obj.get("title") or "").strip()
        return (t, doc_text(obj)) if t and str(obj.get("text") or "").strip() else None
    return _pairs_from_corpora(folders, "titles", title)


# a sentence ends at . ! or ? followed by whitespace and a capital, digit or bracket ("e.g. the" does not split)
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9(\[])")


def split_sentences(text: str, min_words: int = 6, max_words: int = 60) -> list[str]:
    """The sentences of ``text`` with ``min_words``–``max_words`` words (shorter ones are headings or
    fragments, longer ones run-ons from a missed split)."""
    return [s.strip() for s in _SENTENCE_END.split(text) if min_words <= len(s.split()) <= max_words]


def _picked_sentence(did: str, obj: dict) -> str | None:
    """One usable sentence of the document's text, picked by a hash of its id (not by the training seed, so every
    run sees the same texts and their base vectors are encoded once); None under two usable sentences (a
    one-sentence text would make the query the document)."""
    sents = split_sentences(str(obj.get("text") or ""))
    if len(sents) < 2:
        return None
    return sents[int(hashlib.sha256(did.encode()).hexdigest(), 16) % len(sents)]


def pairs_from_corpus_sentences(folders: list[str | os.PathLike]) -> Pairs:
    """Self-supervised pairs from unlabelled documents: query = one sentence of the document's text,
    positive = the whole document (title + text, the sentence included).

    Only ``corpus.jsonl`` is read. Documents with fewer than two usable sentences are skipped.
    """
    def sentence(did: str, obj: dict) -> tuple[str, str] | None:
        sent = _picked_sentence(did, obj)
        return (sent, doc_text(obj)) if sent else None
    return _pairs_from_corpora(folders, "sentences", sentence)


def pairs_from_corpus_ict(folders: list[str | os.PathLike]) -> Pairs:
    """Inverse cloze task (Lee et al., 2019) on unlabelled documents: query = one sentence of the document's text,
    positive = the document *without* that sentence (title + the rest of the text).

    Unlike ``sentences``, the query's words are not in its positive, so matching them is no shortcut: the heads
    must learn what the surrounding text is about. The mining pool holds the same reduced documents. Costs one
    base-model pass over every reduced document (they are new texts). Only ``corpus.jsonl`` is read; documents
    with fewer than two usable sentences are skipped.
    """
    def cloze(did: str, obj: dict) -> tuple[str, str] | None:
        sent = _picked_sentence(did, obj)
        if not sent:
            return None
        rest = " ".join(p.strip() for p in _SENTENCE_END.split(str(obj.get("text") or "")) if p.strip() != sent)
        return sent, doc_text({"title": obj.get("title"), "text": rest})
    return _pairs_from_corpora(folders, "ict", cloze)


def shared_data_dir() -> Path | None:
    """The data folder: ``$JEPA_RAG_DATA``, else a ``shared/data`` folder beside or above the working tree."""
    env = os.environ.get("JEPA_RAG_DATA")
    if env:
        return Path(env).expanduser()
    here = Path(__file__).resolve().parent
    for base in [Path.cwd(), *Path.cwd().parents, here, *here.parents]:
        cand = base / "shared" / "data"
        if cand.is_dir():
            return cand
    return None


def msmarco_pairs_path() -> Path:
    root = shared_data_dir()
    if root is not None and (root / MSMARCO_PAIRS_NAME).is_file():
        return root / MSMARCO_PAIRS_NAME
    raise DataNotFoundError(
        "MS MARCO pairs not found. Set JEPA_RAG_DATA to a folder holding msmarco/pairs.jsonl, or pass "
        "--set data.source=pairs --set data.path=<file.jsonl>. Online, build the file from the official source the "
        "seed used (Hugging Face `ms_marco` v1.1 train: one line per query with its selected passage as 'positive'); "
        "see README 'Data'.")


def load_msmarco_pairs() -> Pairs:
    """The MS MARCO query–positive pairs (``query_id``/``query``/``positive`` JSONL)."""
    path = msmarco_pairs_path()
    pairs = load_pairs_jsonl(path)
    pairs.source = "msmarco:" + str(path)
    return pairs


def beir_folder(name_or_path: str) -> Path:
    """A BEIR folder from a path, or from a data-set name under the shared data folder (``scifact``)."""
    p = Path(name_or_path).expanduser()
    if p.is_dir():
        return p
    root = shared_data_dir()
    if root is not None and (root / "beir" / name_or_path).is_dir():
        return root / "beir" / name_or_path
    raise DataNotFoundError(
        f"BEIR data set {name_or_path!r} not found (not a folder, and not under $JEPA_RAG_DATA/beir). "
        f"Download it from {BEIR_URL.format(name=p.name)} and unzip, then pass the folder.")


def dev_split(pairs: Pairs, fraction: float, seed: int = 0) -> tuple[Pairs, Pairs]:
    """Split pairs into (train, dev) by query id, deterministically: every pair of one query lands on one side.

    The assignment hashes the query id with a salt that does not depend on the training seed, so all seeds of a
    recipe see the same dev set and can be compared on it.
    """
    del seed  # the split is fixed across seeds on purpose
    train_idx, dev_idx = [], []
    for i, qid in enumerate(pairs.query_ids):
        bucket = int(hashlib.sha256(f"dev-split:{qid}".encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
        (dev_idx if bucket < fraction else train_idx).append(i)
    if not dev_idx or not train_idx:
        raise DataFormatError(f"{pairs.source}: too few pairs ({len(pairs)}) for a dev split of {fraction}")
    return pairs.subset(train_idx), pairs.subset(dev_idx)


def cap_positives(pairs: Pairs, per_query: int, seed: int = 0) -> Pairs:
    """At most ``per_query`` pairs for each query, drawn with ``seed`` (order kept).

    Some data sets judge hundreds of documents relevant to one query (NFCorpus: up to 1,363); uncapped, those few
    queries fill most batches. The trainer still masks the dropped positives: they never serve as negatives.
    """
    if per_query < 1:
        raise DataFormatError(f"per_query must be ≥ 1, got {per_query}")
    by_query: dict[str, list[int]] = {}
    for i, qid in enumerate(pairs.query_ids):
        by_query.setdefault(qid, []).append(i)
    rng = random.Random(seed)
    keep = [i for rows in by_query.values() for i in (rows if len(rows) <= per_query else rng.sample(rows, per_query))]
    return pairs.subset(sorted(keep))
