"""File-system steps the stores share (checkpoints, lexical indexes, the Chroma-side lexical folders, the
base-vector cache's fingerprint, Parquet shards and their manifest, training state)."""

from __future__ import annotations

import os
import socket
import uuid
from pathlib import Path


def fsync_file(path: str | os.PathLike) -> None:
    """Flush a written file's bytes to disk (before renaming it into place)."""
    with open(path, "rb") as fh:
        os.fsync(fh.fileno())


def atomic_write_bytes(path: str | os.PathLike, data: bytes, *, sync_dir: bool = False) -> None:
    """Replace ``path`` with ``data`` all at once: a reader, or a process killed at any moment, sees the old file or
    the new one, never a part. The temporary file is named ``<name>.<host>-<pid>-<random>.tmp`` in the same folder,
    so writers on several hosts sharing a folder never collide and a stale one names its owner. ``sync_dir`` also
    flushes the rename itself."""
    path = Path(path)
    tmp = path.with_name(f"{path.name}.{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}.tmp")
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    if sync_dir:
        fsync_dir(path.parent)


def make_temp_dir(parent: str | os.PathLike, prefix: str) -> Path:
    """A new, empty folder ``<prefix><host>-<pid>-<random>`` in ``parent``, to fill and then rename into place.

    Why not ``tempfile.mkdtemp``: it makes the folder ``drwx------``, which the renamed checkpoint or index would
    keep; ``mkdir`` gives the permissions the user's umask says, like any folder they make."""
    while True:
        path = Path(parent) / f"{prefix}{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        try:
            path.mkdir()
            return path
        except FileExistsError:  # a random-suffix collision: draw again
            continue


def fsync_dir(path: str | os.PathLike) -> None:
    """Flush a folder's entries (a rename into it) to disk; a no-op where folders cannot be opened."""
    try:
        fd = os.open(Path(path), os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
