"""The one rule for a corpus's documents as they come, shared by every path that indexes, embeds or trains on them
(the exact dense and hybrid retrievers, ``evaluate``, the BEIR/JSONL/folder loaders, training corpora, the BM25
index, :func:`jepa_rag.chroma.ingest`). Use :func:`clean_corpus` on lists, or :class:`CorpusAudit` row by row
while streaming.

- An empty or whitespace-only document (title + text, BEIR's rule) is skipped: nothing in it can be embedded or
  matched, and one such record must not abort a whole collection. Skipping it (rather than keeping it as a
  record that scores 0) also keeps the BM25 statistics (document count, average length) and so the rankings equal
  those of the corpus without it.
- A repeated id: the first document under it wins, later ones are skipped. First, because a streaming reader has
  already handed the first one on when it meets the second.
- The same text under different ids: both kept (they are two records); they score the same, and every ranking
  here breaks ties by corpus order.
- A document of only punctuation or stopwords: kept; BM25 finds no term in it (scores 0), the dense side embeds it.
- A very long document: kept; the encoder embeds its first ``max_seq_length`` tokens and counts it in
  ``JEPAEncoder.truncated_texts`` (BM25 indexes all of it).

What is skipped is said once per corpus, as one warning on the ``jepa_rag`` logger that counts each kind and names
a few ids. Queries are not documents: an empty query is still an :class:`~jepa_rag.errors.InvalidInputError`.
Wrong types (an id that is not a non-empty string, a document that is neither a string nor a dict, a lone
surrogate) are errors too: they are bugs in the caller, not shapes of a corpus.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from .data import doc_text
from .errors import InvalidInputError

log = logging.getLogger("jepa_rag")
NAMED_IDS = 5  # how many ids of each kind a warning names


@dataclass
class CorpusAudit:
    """What the rule did to one corpus: fed row by row through :meth:`admit`, said once by :meth:`warn`."""

    what: str = "corpus"
    documents: int = 0                                   # rows seen
    empty: list[str] = field(default_factory=list)       # ids of rows skipped as empty / whitespace-only
    duplicate_ids: list[str] = field(default_factory=list)  # ids of rows skipped as a repeat of an earlier id
    duplicate_texts: int = 0                             # kept rows whose text an earlier kept row already has
    _ids: set[str] = field(default_factory=set, repr=False)
    _texts: set[int] = field(default_factory=set, repr=False)

    def admit(self, doc_id: str, text: str) -> bool:
        """Whether the row ``doc_id`` / ``text`` (the document's title + text) belongs in the corpus."""
        self.documents += 1
        if not text.strip():
            self.empty.append(doc_id)
            return False
        if doc_id in self._ids:
            self.duplicate_ids.append(doc_id)
            return False
        self._ids.add(doc_id)
        key = hash(text)  # only counts hang on it: a hash collision miscounts, never drops a document
        if key in self._texts:
            self.duplicate_texts += 1
        else:
            self._texts.add(key)
        return True

    @property
    def skipped(self) -> int:
        return len(self.empty) + len(self.duplicate_ids)

    @property
    def kept(self) -> int:
        return self.documents - self.skipped

    def summary(self) -> str | None:
        """The warning's text, ``None`` when nothing was skipped."""
        if not self.skipped:
            return None
        parts = []
        if self.empty:
            parts.append(f"{len(self.empty)} empty or whitespace-only (nothing to embed or match; ids "
                         f"{_some(self.empty)})")
        if self.duplicate_ids:
            parts.append(f"{len(self.duplicate_ids)} repeating an earlier document's id (the first one wins; ids "
                         f"{_some(sorted(set(self.duplicate_ids)))})")
        return (f"{self.what}: skipped {self.skipped} of {self.documents} documents: " + "; ".join(parts)
                + f"; {self.kept} indexed")

    def warn(self) -> None:
        """Log :meth:`summary` once, if anything was skipped."""
        message = self.summary()
        if message:
            log.warning("%s", message)

    def to_dict(self) -> dict[str, Any]:
        """Counts for a results file."""
        return {"documents": self.documents, "indexed": self.kept, "skipped_empty": len(self.empty),
                "skipped_duplicate_ids": len(self.duplicate_ids), "duplicate_texts": self.duplicate_texts}


def _some(ids: list[str]) -> str:
    shown = ", ".join(repr(i) for i in ids[:NAMED_IDS])
    return shown + (f", … ({len(ids) - NAMED_IDS} more)" if len(ids) > NAMED_IDS else "")


@dataclass
class CleanCorpus:
    """A corpus after the rule: the kept rows, in their order, and what was skipped."""

    ids: list[str]
    documents: list           # the kept documents as given (strings or {"title", "text"} dicts)
    texts: list[str]          # their title + text
    metadatas: list | None
    positions: list[int]      # where each kept row was in the input
    audit: CorpusAudit

    def __len__(self) -> int:
        return len(self.ids)


def clean_corpus(ids: Sequence[str], documents: Sequence[dict | str],
                 metadatas: Sequence[Any] | None = None, *, what: str = "corpus",
                 warn: bool = True) -> CleanCorpus:
    """``ids`` / ``documents`` (/ ``metadatas``, one per document) under the module's rule: empty documents and
    repeated ids skipped, logged once (``warn=False``: left to the caller, e.g. to fold several calls into one).

    Raises :class:`InvalidInputError` for what is no corpus at all: a single string instead of a list, lists of
    different lengths, an id that is not a non-empty string, a document that is neither a string nor a dict, a
    text that is not valid Unicode.
    """
    for name, value in (("ids", ids), (what, documents), ("metadatas", metadatas)):
        if isinstance(value, (str, bytes)):
            raise InvalidInputError(f"{name}: expected a list, got a single {type(value).__name__}; wrap it in a list")
        if value is not None and not hasattr(value, "__iter__"):
            raise InvalidInputError(f"{name}: expected a list, got {type(value).__name__}")
    ids, documents = list(ids), list(documents)
    metas = list(metadatas) if metadatas is not None else None
    if len(ids) != len(documents):
        raise InvalidInputError(f"ids and {what} differ in length ({len(ids)} ids, {len(documents)} documents)")
    if metas is not None and len(metas) != len(ids):
        raise InvalidInputError(f"got {len(metas)} metadatas for {len(ids)} documents; give one per document")
    audit = CorpusAudit(what)
    out = CleanCorpus([], [], [], [] if metas is not None else None, [], audit)
    for i, (doc_id, doc) in enumerate(zip(ids, documents)):
        if not isinstance(doc_id, str) or not doc_id:
            raise InvalidInputError(f"ids[{i}]: expected a non-empty string, got {doc_id!r:.40}")
        if not isinstance(doc, (str, dict)):
            raise InvalidInputError(f"{what}[{i}]: expected a string, got {type(doc).__name__} ({doc!r:.40}); a "
                                    "document is a string or a {'title', 'text'} dict")
        text = doc_text(doc)
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise InvalidInputError(
                f"{what}[{i}]: not valid Unicode (lone surrogate {text[exc.start]!r} at position {exc.start}), as "
                "left by a broken JSON escape or a bytes-to-str decode with errors='surrogateescape'") from None
        if audit.admit(doc_id, text):
            out.ids.append(doc_id)
            out.documents.append(doc)
            out.texts.append(text)
            out.positions.append(i)
            if metas is not None:
                out.metadatas.append(metas[i])
    if warn:
        audit.warn()
    return out
