"""Read a folder of documents for ``jepa-rag ingest``: every supported file's text, and what was skipped and why.

Formats: ``.txt``, ``.md``/``.markdown``, ``.rst`` (as text) and ``.html``/``.htm`` (the visible text, parsed with
BeautifulSoup: scripts, styles and templates dropped). Bytes are decoded as UTF-8 (a BOM is dropped), else with the
encoding charset-normalizer detects, or always with ``encoding=`` when given. Hidden files and folders (a name
starting with ``.``) are not read. A file that cannot be read or decoded is skipped and reported, or raises
:class:`~jepa_rag.errors.DataFormatError` with ``strict=True``.
"""

from __future__ import annotations

import codecs
import hashlib
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from .errors import DataFormatError, DataNotFoundError, InvalidInputError

__all__ = ["KINDS", "FolderDocument", "FolderRead", "read_document", "read_folder"]

KINDS = {".txt": "text", ".rst": "text", ".md": "markdown", ".markdown": "markdown", ".html": "html",
         ".htm": "html"}
# tags whose text a reader never sees
_INVISIBLE = ("script", "style", "noscript", "template", "head")


@dataclass(frozen=True)
class FolderDocument:
    """One document: ``source`` is its path inside the folder (POSIX), ``sha256`` that of its text."""

    source: str
    text: str
    kind: str
    sha256: str


@dataclass
class FolderRead:
    documents: list[FolderDocument] = field(default_factory=list)
    #: (path inside the folder, reason) of every file not read
    skipped: list[tuple[str, str]] = field(default_factory=list)

    def skipped_summary(self) -> str:
        """``"3 (2 unsupported type, 1 not decodable)"``-style count of the skipped files by reason."""
        if not self.skipped:
            return "0"
        by = Counter(reason.split(":")[0] for _, reason in self.skipped)
        return f"{len(self.skipped)} (" + ", ".join(f"{n} {why}" for why, n in by.most_common()) + ")"


def _decode(data: bytes, encoding: str | None) -> str:
    if encoding is not None:
        return data.decode(encoding)
    if b"\0" in data[:8192] and not data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise ValueError("binary: NUL bytes")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    from charset_normalizer import from_bytes

    matches = from_bytes(data)
    best = matches.best()
    if best is None:
        raise ValueError("not decodable: no text encoding fits; set one with --encoding")
    # Western text often fits several single-byte code pages equally well, and charset-normalizer then takes
    # the first it tried (cp1250 before cp1252); the Windows Western page is by far the commonest of them
    tied = [m for m in matches if (m.chaos, m.coherence) == (best.chaos, best.coherence)]
    return str(next((m for m in tied if m.encoding == "cp1252"), best))


def _html_text(data: bytes, encoding: str | None) -> str:
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(data, "html.parser", from_encoding=encoding)
    title = soup.title.get_text(" ", strip=True) if soup.title else ""
    for tag in soup(list(_INVISIBLE)):
        tag.decompose()
    lines = [" ".join(line.split()) for line in soup.get_text("\n").splitlines()]
    body = "\n".join(line for line in lines if line)
    return f"{title}\n\n{body}".strip() if title and not body.startswith(title) else body


def read_document(path: Path, source: str, encoding: str | None = None) -> FolderDocument:
    """One file as a document; ValueError (reason first, then ``:`` and details) when it cannot be one."""
    kind = KINDS.get(path.suffix.lower())
    if kind is None:
        raise ValueError(f"unsupported type: {path.suffix or 'no suffix'}")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ValueError(f"unreadable: {exc.strerror or exc}") from None
    try:
        text = _html_text(data, encoding) if kind == "html" else _decode(data, encoding)
    except UnicodeDecodeError as exc:
        raise ValueError(f"not decodable: not {encoding} (byte {exc.start})") from None
    except ValueError:
        raise
    except Exception as exc:  # noqa: BLE001 - a parser's failure on one file must not stop the folder
        raise ValueError(f"unparsable: {type(exc).__name__}: {exc}") from None
    text = text.strip()
    if not text:
        raise ValueError("empty")
    return FolderDocument(source, text, kind, hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest())


def read_folder(folder: str | os.PathLike, *, encoding: str | None = None, strict: bool = False) -> FolderRead:
    """Every document under ``folder`` (recursively, sorted by path), and every file skipped with its reason."""
    root = Path(folder).expanduser()
    if not root.is_dir():
        raise DataNotFoundError(f"not a folder: {root}")
    if encoding is not None:
        try:
            codecs.lookup(encoding)
        except LookupError:
            raise InvalidInputError(f"unknown encoding {encoding!r} (give a Python codec name, e.g. cp1252)") from None
    out = FolderRead()
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root)
        if any(part.startswith(".") for part in rel.parts) or not path.is_file():
            continue
        source = rel.as_posix()
        try:
            out.documents.append(read_document(path, source, encoding))
        except ValueError as exc:
            reason = str(exc)
            if strict and not reason.startswith(("unsupported type", "empty")):
                raise DataFormatError(f"{path}: {reason} (without --strict it would be skipped)") from None
            out.skipped.append((source, reason))
    return out
