"""Token-aware chunks of long documents: each fits the base model's window, so dense search sees all of a file.

A base model keeps only the first ``max_seq_length`` tokens of a text; the rest is silently cut. :class:`Chunker`
splits a document into chunks of at most ``max_tokens`` tokens, counted with the base model's own tokenizer,
with up to ``overlap`` tokens shared by neighbours, cut at the largest boundary that fits (Markdown headings and
blocks for Markdown, then paragraphs, sentences, words). The splitting is semantic-text-splitter's (a maintained
Rust crate with Python bindings): it knows Markdown, counts with a Hugging Face ``tokenizers.Tokenizer`` and
returns character offsets, and pulls in no framework. Chosen over semchunk (no Markdown) and chonkie (overlap only
through a separate pass, four more dependencies): see benchmarks/results/chunking.md, which also chose the default
size and overlap.
"""

from __future__ import annotations

import copy
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import InvalidInputError

__all__ = ["DEFAULT_OVERLAP", "DEFAULT_TOKENS", "Chunk", "Chunker", "chunk_id"]

# chosen on dev (benchmarks/results/chunking.md): as good as 64 or 128 at a third to a half of the records;
# all-MiniLM-L6-v2's whole window, well inside all-mpnet-base-v2's
DEFAULT_TOKENS = 254
DEFAULT_OVERLAP = 32
# [CLS] and [SEP] (or <s> and </s>): the base model adds them around every text
SPECIAL_TOKENS = 2


def chunk_id(source: str, index: int) -> str:
    """The record id of chunk ``index`` of ``source``: deterministic, so a re-run overwrites instead of adding."""
    return f"{source}#{index}"


@dataclass(frozen=True)
class Chunk:
    """One chunk: its text is ``document[start:end]`` (character offsets), ``index`` its place in the document."""

    text: str
    start: int
    end: int
    index: int


class Chunker:
    """Split texts into chunks of at most ``max_tokens`` tokens of ``tokenizer`` (a ``tokenizers.Tokenizer``).

    ``overlap`` tokens at most are repeated between neighbouring chunks, so a passage cut at a boundary is whole in
    one of them. Build one for an encoder with :meth:`for_encoder`.
    """

    def __init__(self, tokenizer: Any, max_tokens: int = DEFAULT_TOKENS, overlap: int = DEFAULT_OVERLAP):
        for name, value in (("max_tokens", max_tokens), ("overlap", overlap)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise InvalidInputError(f"chunking: {name} must be a non-negative integer, got {value!r}")
        if max_tokens < 8:
            raise InvalidInputError(f"chunking: max_tokens must be at least 8, got {max_tokens}")
        if overlap >= max_tokens:
            raise InvalidInputError(f"chunking: overlap ({overlap}) must be smaller than max_tokens ({max_tokens})")
        from semantic_text_splitter import MarkdownSplitter, TextSplitter

        tokenizer = copy.deepcopy(tokenizer)
        # a tokenizer saved with truncation would count every long text as fitting
        tokenizer.no_truncation()
        tokenizer.no_padding()
        self.max_tokens, self.overlap = max_tokens, overlap
        self._text = TextSplitter.from_huggingface_tokenizer(tokenizer, capacity=max_tokens, overlap=overlap)
        self._markdown = MarkdownSplitter.from_huggingface_tokenizer(tokenizer, capacity=max_tokens, overlap=overlap)

    @classmethod
    def for_encoder(cls, encoder: Any, max_tokens: int | None = None, overlap: int | None = None) -> Chunker:
        """A chunker counting with ``encoder``'s base-model tokenizer; ``max_tokens`` defaults to
        :data:`DEFAULT_TOKENS`, capped at what the base model reads (``max_seq_length`` less its special tokens)."""
        window = int(encoder.fingerprint.max_seq_length) - SPECIAL_TOKENS
        if max_tokens is None:
            max_tokens = min(DEFAULT_TOKENS, window)
        elif max_tokens > window:
            raise InvalidInputError(f"chunking: max_tokens {max_tokens} exceeds what the base model reads "
                                    f"({encoder.fingerprint.max_seq_length} tokens less {SPECIAL_TOKENS} special "
                                    f"ones = {window})")
        if overlap is None:
            overlap = min(DEFAULT_OVERLAP, max_tokens // 4)
        return cls(load_tokenizer(encoder.base_folder), max_tokens, overlap)

    def describe(self) -> str:
        """What the chunks depend on besides the text (stored with them: another setting re-chunks the file)."""
        return f"tokens={self.max_tokens},overlap={self.overlap}"

    def split(self, text: str, markdown: bool = False) -> list[Chunk]:
        """The chunks of ``text`` (none for a blank text); ``markdown=True`` cuts at headings and blocks first."""
        if not isinstance(text, str):
            raise InvalidInputError(f"chunking: expected a string, got {type(text).__name__}")
        splitter = self._markdown if markdown else self._text
        # the splitter's offsets count characters (code points), as Python's str indexes do
        return [Chunk(piece, start, start + len(piece), i)
                for i, (start, piece) in enumerate(splitter.chunk_indices(text))]


def load_tokenizer(base_folder: str | os.PathLike) -> Any:
    """The base model's fast tokenizer (``tokenizers.Tokenizer``), read from its folder without loading weights."""
    folder = Path(base_folder)
    if (folder / "tokenizer.json").is_file():
        from tokenizers import Tokenizer

        return Tokenizer.from_file(str(folder / "tokenizer.json"))
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
    if not getattr(tok, "is_fast", False):
        raise InvalidInputError(f"{folder}: the base model has no fast tokenizer, which chunking counts with")
    return tok.backend_tokenizer


def chunk_metadata(source: str, chunk: Chunk, sha256: str, chunking: str, chunks: int) -> dict[str, Any]:
    """What a stored chunk carries: where it comes from (``source``, ``chunk`` index of ``chunks``, character span
    ``start`` to ``end`` in the document's text) and what it was cut from (the document's ``sha256`` and the
    ``chunking`` settings), so a later sync can tell an unchanged document from a changed one without its text."""
    return {"source": source, "chunk": chunk.index, "chunks": chunks, "start": chunk.start, "end": chunk.end,
            "sha256": sha256, "chunking": chunking}


def chunk_records(chunker: Chunker, ids: list[str], texts: list[str], metadatas: list[dict[str, Any]] | None = None,
                  markdown: list[bool] | None = None) -> tuple[list[str], list[str], list[dict[str, Any]]]:
    """The chunks of documents ``ids``/``texts`` as records: ids :func:`chunk_id`, texts the chunks, metadatas the
    document's own (if any) updated with :func:`chunk_metadata`."""
    import hashlib

    out_ids: list[str] = []
    out_texts: list[str] = []
    out_meta: list[dict[str, Any]] = []
    for j, (doc_id, text) in enumerate(zip(ids, texts)):
        sha = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()
        base = dict(metadatas[j] or {}) if metadatas is not None else {}
        chunks = chunker.split(text, markdown=bool(markdown and markdown[j]))
        for chunk in chunks:
            out_ids.append(chunk_id(doc_id, chunk.index))
            out_texts.append(chunk.text)
            out_meta.append({**base, **chunk_metadata(doc_id, chunk, sha, chunker.describe(), len(chunks))})
    return out_ids, out_texts, out_meta
