"""Checksums of a tantivy index's committed files, so damage to the lexical index is found before it is served.

tantivy ends every file it writes with a footer holding the CRC-32 of the bytes before it (``…data | footer JSON |
footer length u32 | magic 1337 u32``), but only checks it when asked (``Index::validate_checksum``), which
tantivy-py does not expose, and it opens damaged postings, norms or stored fields without complaint: a flipped block
scores wrong and a zeroed term dictionary fails at search time. Segment files never change once committed (a delete
writes a new ``.del`` file), so each needs checking once: :class:`~jepa_rag.lexical_store.LexicalStore` records the
files it has checked (name, size, mtime) and checks again only a file that is new or whose size or mtime moved.
"""

from __future__ import annotations

import json
import os
import struct
import zlib
from pathlib import Path

__all__ = ["FileDamaged", "check", "committed_files"]

MAGIC = 1337
MAX_FOOTER = 50_000
_CHUNK = 1 << 20


class FileDamaged(Exception):
    """A committed index file is missing, truncated or does not match its checksum."""


def committed_files(index_dir: Path) -> list[str]:
    """The files ``meta.json`` commits to: each listed segment's files and the ``.del`` file of its last delete.
    Files of segments a writer is still writing are not listed (their names are in no committed ``meta.json``)."""
    for _ in range(3):  # a writer may commit (and delete merged-away files) between reading meta.json and listing
        try:
            raw = (index_dir / "meta.json").read_bytes()
            meta = json.loads(raw)
            segments = [(str(s["segment_id"]).replace("-", ""), s.get("deletes")) for s in meta["segments"]]
            names = os.listdir(index_dir)
            moved = (index_dir / "meta.json").read_bytes() != raw
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise FileDamaged(f"{index_dir / 'meta.json'}: unreadable ({exc})") from None
        if not moved:
            break
    by_segment: dict[str, list[str]] = {}
    for name in names:
        by_segment.setdefault(name.split(".", 1)[0], []).append(name)
    out = []
    for segment, deletes in segments:
        files = [n for n in by_segment.get(segment, []) if not n.endswith(".del")]
        if not files:
            raise FileDamaged(f"{index_dir}: segment {segment} has no files")
        out += files
        if deletes:
            try:
                out.append(f"{segment}.{int(deletes['opstamp'])}.del")
            except (KeyError, TypeError, ValueError):
                raise FileDamaged(f"{index_dir / 'meta.json'}: segment {segment} has a malformed delete entry") from None
    return sorted(out)


def check(path: Path) -> tuple[int, int]:
    """Verify one file against its footer's CRC-32; returns ``(size, mtime_ns)`` of what was checked."""
    try:
        with open(path, "rb") as fh:
            stat = os.fstat(fh.fileno())
            size = stat.st_size
            if size < 8:
                raise FileDamaged(f"{path}: truncated ({size} bytes)")
            fh.seek(size - 8)
            length, magic = struct.unpack("<II", fh.read(8))
            if magic != MAGIC or length > MAX_FOOTER or length + 8 > size:
                raise FileDamaged(f"{path}: no valid footer")
            fh.seek(size - 8 - length)
            try:
                expected = int(json.loads(fh.read(length))["crc"])
            except (ValueError, KeyError, TypeError):
                raise FileDamaged(f"{path}: unreadable footer") from None
            fh.seek(0)
            left, crc = size - 8 - length, 0
            while left:
                chunk = fh.read(min(_CHUNK, left))
                if not chunk:
                    raise FileDamaged(f"{path}: shorter than it was")
                crc = zlib.crc32(chunk, crc)
                left -= len(chunk)
    except FileNotFoundError:
        raise FileDamaged(f"{path}: missing") from None
    except OSError as exc:
        raise FileDamaged(f"{path}: unreadable ({exc})") from None
    if crc != expected:
        raise FileDamaged(f"{path}: checksum mismatch (stored {expected:08x}, computed {crc:08x})")
    return size, stat.st_mtime_ns
