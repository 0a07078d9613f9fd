"""Telling a full disk from other storage failures, so a write that runs out of space says so.

chromadb reports a full disk as ``InternalError('Error in compaction: Failed to apply logs to the metadata
segment')``, with no errno and no word of space; so besides the exception chain and its message, the collection's
folder is checked: almost no free space, or a file as large as the file-size limit (``ulimit -f``) allows.
"""

from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path
from typing import Any

from .errors import StorageFullError

try:
    import resource
except ImportError:  # Windows: no file-size limits to read
    resource = None

NO_SPACE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})
_MESSAGES = ("no space left", "disk is full", "disk full", "os error 28", "file too large", "os error 27",
             "quota exceeded")
_LOW_FREE = 1 << 20  # bytes: below this a folder counts as full


def storage_folder(collection: Any) -> str | None:
    """Where a chromadb collection keeps its data: its folder (embedded client), ``the Chroma server host:port``
    (HTTP client), or ``None`` when it cannot be told."""
    for obj in (collection, getattr(collection, "collection", None), getattr(collection, "_collection", None)):
        client = getattr(obj, "_client", None)
        try:
            settings = client.get_settings()
        except Exception:  # noqa: BLE001 - another client type: nothing to tell
            continue
        if getattr(settings, "is_persistent", False) and getattr(settings, "persist_directory", None):
            return str(settings.persist_directory)
        if getattr(settings, "chroma_server_host", None):
            return f"the Chroma server {settings.chroma_server_host}:{settings.chroma_server_http_port}"
    return None


def _chain(exc: BaseException):
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        exc = exc.__cause__ or exc.__context__


def no_space_reason(exc: BaseException, folder: str | os.PathLike | None) -> str | None:
    """Why ``exc`` (raised by a write to ``folder``) looks like a full disk, or ``None``."""
    for e in _chain(exc):
        if isinstance(e, OSError) and e.errno in NO_SPACE_ERRNOS:
            return os.strerror(e.errno)
        if any(m in str(e).lower() for m in _MESSAGES):
            return str(e)
    if folder is None or not Path(folder).is_dir():
        return None
    try:
        free = shutil.disk_usage(folder).free
        if free < _LOW_FREE:
            return f"{free} bytes free"
        limit = resource.getrlimit(resource.RLIMIT_FSIZE)[0] if resource is not None else -1
        if limit >= 0 and limit != resource.RLIM_INFINITY:
            largest = max((p.stat().st_size for p in Path(folder).rglob("*") if p.is_file()), default=0)
            if largest + _LOW_FREE >= limit:
                return f"a file reached this process's file-size limit (ulimit -f) of {limit} bytes"
    except OSError:
        return None
    return None


def storage_full_error(collection: Any, exc: BaseException) -> StorageFullError | None:
    """A :class:`StorageFullError` naming the collection's storage when ``exc`` comes from a full disk, else
    ``None``."""
    folder = storage_folder(collection)
    local = folder if folder is not None and not folder.startswith("the Chroma server") else None
    reason = no_space_reason(exc, local)
    if reason is None:
        return None
    return StorageFullError(errno.ENOSPC, f"no space left on {folder or 'the collection storage'} ({reason}); free "
                                          "space and run the same ingest again to finish (stored batches are kept)")
