"""Make a collection mirror a set of documents (a folder's files, a JSONL's lines): what ``jepa-rag ingest`` runs.

Every record written here carries metadata ``source`` (the document: its path inside the folder, or its id),
``chunk`` (of ``chunks``), ``start``/``end`` (its span in the document's text), ``sha256`` (of the document's text) and
``chunking`` (the settings that cut it; ``none`` for a document stored whole under its own id). A sync reads
those metadatas once, then for every document:

- unchanged (every stored record of the source has the document's hash and settings, and they are exactly the
  chunks that hash was cut into): nothing is read, chunked or encoded;
- new, changed or cut short by an interrupted run: it is chunked, the chunks not yet stored as they should be are
  upserted (chunk ids are deterministic, so a re-run overwrites instead of duplicating), then the source's records
  that are no longer among its chunks are deleted;
- gone (its source is stored, the document no longer exists): its records are deleted with
  ``where={"source": ...}``, unless ``delete=False``.

Writes go through the :class:`~jepa_rag.chroma_hybrid.HybridCollection`, so the lexical side follows. Each step
is idempotent and the plan is recomputed from what is stored, so a run killed at any point (SIGKILL included) is
finished by running it again, with nothing duplicated; vectors of text already encoded come from the base-vector
cache. Records without a ``source`` (written by other tools) are left alone, except a record stored whole under
the id of a document being synced (what ``jepa-rag ingest`` wrote before it chunked), which its chunks replace.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from .chunking import Chunk, Chunker, chunk_id, chunk_metadata

__all__ = ["Document", "Plan", "apply_plan", "plan_sync", "stored_sources"]

PAGE = 5000
WHOLE = "none"
DELETE_BATCH = 100


@dataclass(frozen=True)
class Document:
    source: str
    text: str
    markdown: bool = False

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.text.encode("utf-8", "surrogatepass")).hexdigest()


@dataclass
class Plan:
    """What a sync writes and deletes, and how many records the mirrored documents make."""

    ids: list[str] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)
    metadatas: list[dict[str, Any]] = field(default_factory=list)
    #: ids of records of synced sources that are not among their chunks any more (changed documents)
    stale_ids: list[str] = field(default_factory=list)
    #: sources stored but no longer among the documents, and whether to delete them
    gone: list[str] = field(default_factory=list)
    delete: bool = True
    #: records that will make the mirrored documents, and how many of them are already stored as they should be
    total: int = 0
    kept: int = 0
    new: int = 0
    changed: int = 0
    unchanged: int = 0


def stored_sources(collection: Any) -> dict[str, dict[str, dict[str, Any]]]:
    """source -> {record id: metadata} of every record with a ``source``; records without one are listed under
    their own id with an empty metadata (so a document of that id replaces them)."""
    out: dict[str, dict[str, dict[str, Any]]] = {}
    offset = 0
    while True:
        page = collection.get(include=["metadatas"], limit=PAGE, offset=offset)
        n = len(page["ids"])
        for rid, meta in zip(page["ids"], page["metadatas"] or [None] * n):
            source = (meta or {}).get("source")
            if isinstance(source, str):
                out.setdefault(source, {})[rid] = meta
            else:
                out.setdefault(rid, {})[rid] = {}
        offset += n
        if n < PAGE:
            return out


def _current(records: dict[str, dict[str, Any]], sha: str, chunking: str) -> bool:
    """Every record has this hash and these settings, and they are exactly the chunks of one complete cut."""
    if not records:
        return False
    metas = list(records.values())
    if any(m.get("sha256") != sha or m.get("chunking") != chunking for m in metas):
        return False
    if chunking == WHOLE:
        return len(records) == 1
    n = max(int(m.get("chunks", -1)) for m in metas)
    return n == len(records) and set(records) == {chunk_id(metas[0]["source"], k) for k in range(n)}


def plan_sync(documents: Sequence[Document], stored: dict[str, dict[str, dict[str, Any]]],
              chunker: Chunker | None, *, delete: bool = True) -> Plan:
    """What to write and delete so that the stored records become ``documents`` cut by ``chunker`` (``None``:
    each document whole, under its own id)."""
    plan = Plan(delete=delete)
    chunking = chunker.describe() if chunker is not None else WHOLE
    seen: set[str] = set()
    for doc in documents:
        seen.add(doc.source)
        sha = doc.sha256
        records = stored.get(doc.source, {})
        if _current(records, sha, chunking):
            plan.total += len(records)
            plan.kept += len(records)
            plan.unchanged += 1
            continue
        if records:
            plan.changed += 1
        else:
            plan.new += 1
        if chunker is None:
            chunks = [(doc.source, Chunk(doc.text, 0, len(doc.text), 0))]
        else:
            chunks = [(chunk_id(doc.source, c.index), c) for c in chunker.split(doc.text, markdown=doc.markdown)]
        plan.total += len(chunks)
        for rid, chunk in chunks:
            meta = chunk_metadata(doc.source, chunk, sha, chunking, len(chunks))
            old = records.get(rid)
            if old is not None and all(old.get(k) == v for k, v in meta.items()):
                plan.kept += 1  # stored by an interrupted run
                continue
            plan.ids.append(rid)
            plan.texts.append(chunk.text)
            plan.metadatas.append(meta)
        wanted = {rid for rid, _ in chunks}
        plan.stale_ids.extend(rid for rid in records if rid not in wanted)
    plan.gone = [s for s, records in stored.items()
                 if s not in seen and any(m.get("source") == s for m in records.values())]
    return plan


def apply_plan(collection: Any, plan: Plan, *, batch_size: int = 32,
               on_batch: Callable[[int, list[str]], None] | None = None) -> tuple[int, int]:
    """Write the plan's records (batch by batch, :func:`jepa_rag.chroma.ingest`), then delete its stale records and
    gone sources (unless the plan keeps them). Returns (records written, records deleted)."""
    from .chroma import ingest

    written = ingest(collection, plan.ids, plan.texts, metadatas=plan.metadatas, batch_size=batch_size,
                     on_batch=on_batch) if plan.ids else 0
    before = collection.count()
    for start in range(0, len(plan.stale_ids), DELETE_BATCH):
        collection.delete(ids=plan.stale_ids[start:start + DELETE_BATCH])
    for start in range(0, len(plan.gone) if plan.delete else 0, DELETE_BATCH):
        collection.delete(where={"source": {"$in": plan.gone[start:start + DELETE_BATCH]}})
    return written, before - collection.count()
