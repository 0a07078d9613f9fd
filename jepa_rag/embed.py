"""Encode a corpus with the frozen base model once, into Parquet shards, then import them without re-encoding.

    python -m jepa_rag.embed CORPUS --out VECTORS [--backend local|pool|ray] [--device cuda --precision fp16]
    python -m jepa_rag.embed CORPUS --out VECTORS --to-cache            # + load them into the base-vector cache
    python -m jepa_rag.embed CORPUS --out VECTORS --to-chroma NAME      # + a Chroma collection, heads applied

The output folder holds ``manifest.json`` (base-model fingerprint, precision, shard size, corpus size) and
``part-NNNNN.parquet`` shards with columns ``id`` (string), ``text_key`` (:func:`jepa_rag.cache.text_key` of the
document's text) and ``vector`` (``fixed_size_list<float32>[dim]``); each shard's schema metadata repeats the
fingerprint and precision and holds a digest of its ids and text keys. Shard ``n`` always holds documents
``n*shard_size .. (n+1)*shard_size`` of the corpus in its order, so a re-run skips every shard already written
for the same documents: each shard is written to a temporary name and renamed, so a killed run (or a killed Ray
worker) leaves only whole shards and loses at most the shards it was encoding.

Backends: ``local`` (this process, any torch device), ``pool`` (sentence-transformers' multi-process pool: one
process per listed device, e.g. every GPU of a machine) and ``ray`` (Ray Data ``map_batches`` over stateful encoder
actors, one per GPU or CPU worker: each actor reads, encodes and writes whole shards itself, so on a cluster the
corpus and the output folder must be storage every node sees). Given a path, the ``ray`` driver never holds the
texts, so it is no bottleneck on a cluster: it only finds where each shard's lines start (a JSONL file) or lists its
files (a folder) and ships those descriptors; each actor reads its own shard and checks a shard already on disk
against it (so a re-run skips it; ids repeated across shards are caught on import, which reads the whole corpus).
An in-memory :class:`~jepa_rag.corpus.Corpus` cannot be re-read by a worker, so its texts are shipped instead.
Ray is optional: ``pip install 'jepa-rag[ray]'``.

Importing never runs the base model on the whole corpus: :func:`import_to_cache` re-encodes a random sample of 16
texts and refuses the vectors below cosine 0.999 (as for precomputed files), :func:`ingest_to_chroma` applies the
checkpoint's document head to the stored vectors and upserts them, with no base-model call at all.
"""

from __future__ import annotations

import argparse
import codecs
import hashlib
import json
import logging
import os
import socket
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from . import errors
from .base_model import Fingerprint, fingerprint_of_folder, resolve_base_model
from .cache import EmbeddingCache, text_key
from .config import DEFAULT_BASE_MODEL
from .corpus import Corpus, _text_files, iter_jsonl_documents, load_corpus, locate_corpus, read_text_file
from .corpus_audit import CorpusAudit
from .errors import ConfigError, DataFormatError, DataNotFoundError, EmbeddingMismatchError, JEPARagError
from .fsutil import atomic_write_bytes

__all__ = ["BACKENDS", "PRECISIONS", "BaseEncoder", "EmbedResult", "Manifest", "embed_corpus", "import_to_cache",
           "ingest_to_chroma", "read_manifest", "read_shards"]

BACKENDS = ("local", "pool", "ray")
PRECISIONS = ("fp32", "bf16", "fp16")
MANIFEST = "manifest.json"
META_PREFIX = b"jepa_rag."
DEFAULT_SHARD_SIZE = 10_000
log = logging.getLogger("jepa_rag")


def _pa():
    import pyarrow as pa
    import pyarrow.parquet as pq

    return pa, pq


# ---------------------------------------------------------------------------------------------- the encoder
class BaseEncoder:
    """The frozen base model as a plain ``texts -> float32 vectors`` callable, built from picklable settings (so
    it can be shipped to Ray actors). fp16/bf16 run the model under torch autocast, as
    :class:`jepa_rag.JEPAEncoder` does for bf16."""

    def __init__(self, model_folder: str, *, device: str = "cpu", precision: str = "fp32", batch_size: int = 64,
                 threads: int | None = None):
        import torch
        from sentence_transformers import SentenceTransformer

        from .quiet_loading import quiet_model_loading

        if precision not in PRECISIONS:
            raise ConfigError(f"precision must be one of {list(PRECISIONS)}, got {precision!r}")
        if threads:
            torch.set_num_threads(threads)
        self.device, self.precision, self.batch_size = device, precision, batch_size
        with quiet_model_loading():
            self.model = SentenceTransformer(str(model_folder), device=device, local_files_only=True)
        self.model.eval()

    def __call__(self, texts: list[str]) -> np.ndarray:
        import torch

        if self.precision == "fp32":
            out = self.model.encode(texts, batch_size=self.batch_size, convert_to_numpy=True,
                                    show_progress_bar=False, normalize_embeddings=False)
            return np.asarray(out, dtype=np.float32)
        dtype = torch.bfloat16 if self.precision == "bf16" else torch.float16
        with torch.inference_mode(), torch.autocast(torch.device(self.device).type, dtype=dtype):
            out = self.model.encode(texts, batch_size=self.batch_size, convert_to_tensor=True,
                                    show_progress_bar=False, normalize_embeddings=False)
        return out.float().cpu().numpy()


# ---------------------------------------------------------------------------------------------- the folder
@dataclass(frozen=True)
class Manifest:
    fingerprint: Fingerprint
    precision: str
    shard_size: int
    documents: int
    source: str

    @property
    def shards(self) -> int:
        return -(-self.documents // self.shard_size)

    def to_dict(self) -> dict:
        return {"fingerprint": self.fingerprint.to_dict(), "precision": self.precision,
                "shard_size": self.shard_size, "documents": self.documents, "shards": self.shards,
                "source": self.source}

    @classmethod
    def from_dict(cls, d: dict) -> Manifest:
        return cls(Fingerprint.from_dict(d["fingerprint"]), d["precision"], int(d["shard_size"]), int(d["documents"]),
                   str(d.get("source", "")))


def read_manifest(folder: str | os.PathLike) -> Manifest:
    path = Path(folder) / MANIFEST
    try:
        return Manifest.from_dict(json.loads(path.read_text()))
    except FileNotFoundError:
        raise DataFormatError(f"{folder}: not a vectors folder (no {MANIFEST}); make one with "
                              "'python -m jepa_rag.embed CORPUS --out FOLDER'") from None
    except (ValueError, KeyError, TypeError) as exc:
        raise DataFormatError(f"{path}: unreadable manifest ({exc!r})") from None


def _shard_path(folder: Path, index: int) -> Path:
    return folder / f"part-{index:05d}.parquet"


def _digest(ids: Sequence[str], keys: Sequence[str]) -> str:
    h = hashlib.sha256()
    for i, k in zip(ids, keys):
        h.update(i.encode("utf-8") + b"\0" + k.encode() + b"\n")
    return h.hexdigest()


@dataclass
class _Shard:
    index: int
    ids: list[str]
    texts: list[str]
    keys: list[str]

    @property
    def digest(self) -> str:
        return _digest(self.ids, self.keys)


def _shard_metadata(fingerprint: Fingerprint, precision: str, shard: _Shard) -> dict[bytes, bytes]:
    return {META_PREFIX + b"fingerprint": json.dumps(fingerprint.to_dict()).encode(),
            META_PREFIX + b"precision": precision.encode(), META_PREFIX + b"shard": str(shard.index).encode(),
            META_PREFIX + b"digest": shard.digest.encode()}


def write_shard(folder: Path, fingerprint: Fingerprint, precision: str, shard: _Shard, vectors: np.ndarray) -> Path:
    """Write one shard whole: to a temporary name in the same folder, fsynced, then renamed over the final name."""
    pa, pq = _pa()
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    if vectors.shape != (len(shard.ids), fingerprint.dim) or not np.isfinite(vectors).all():
        raise EmbeddingMismatchError(f"shard {shard.index}: got vectors of shape {vectors.shape} (finite: "
                                     f"{bool(np.isfinite(vectors).all())}), expected ({len(shard.ids)}, {fingerprint.dim})")
    vec = pa.FixedSizeListArray.from_arrays(pa.array(vectors.reshape(-1), pa.float32()), fingerprint.dim)
    table = pa.table({"id": pa.array(shard.ids, pa.string()), "text_key": pa.array(shard.keys, pa.string()),
                      "vector": vec}).replace_schema_metadata(_shard_metadata(fingerprint, precision, shard))
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink)
    path = _shard_path(folder, shard.index)
    atomic_write_bytes(path, sink.getvalue().to_pybytes())
    return path


def _finished(folder: Path, manifest: Manifest, shard: _Shard) -> bool:
    """Whether shard ``shard.index`` is already on disk for exactly these documents, model and precision."""
    _, pq = _pa()
    path = _shard_path(folder, shard.index)
    if not path.is_file():
        return False
    try:
        meta = pq.read_schema(path).metadata or {}
        rows = pq.ParquetFile(path).metadata.num_rows
    except Exception:  # noqa: BLE001  (a file that is not a readable Parquet file is re-encoded)
        return False
    if meta.get(META_PREFIX + b"digest", b"").decode() != shard.digest or rows != len(shard.ids):
        raise DataFormatError(
            f"{path}: holds other documents than shard {shard.index} of this corpus (the corpus changed since it was "
            "written, or --shard-size differs); write into a new --out folder")
    return True


def _clean_stale_temps(folder: Path) -> None:
    """Remove temporary files left by killed runs on this host (a live process's temp files are kept)."""
    host = socket.gethostname()
    for tmp in folder.glob("*.tmp"):
        try:
            owner = tmp.name.rsplit(".", 2)[-2]
            owner_host, pid, _ = owner.rsplit("-", 2)
            if owner_host != host:
                continue
            os.kill(int(pid), 0)
        except ProcessLookupError:
            tmp.unlink(missing_ok=True)
        except (ValueError, PermissionError, OSError):
            continue


def _plan(corpus: Corpus, shard_size: int) -> list[_Shard]:
    ids = list(corpus.docs)
    shards = []
    for n, start in enumerate(range(0, len(ids), shard_size)):
        part = ids[start:start + shard_size]
        texts = [corpus.docs[i] for i in part]
        shards.append(_Shard(n, part, texts, [text_key(t) for t in texts]))
    return shards


def _open_folder(folder: Path, manifest: Manifest) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / MANIFEST
    if path.exists():
        old = read_manifest(folder)
        if not old.fingerprint.same_model(manifest.fingerprint) or (old.precision, old.shard_size, old.documents) != (
                manifest.precision, manifest.shard_size, manifest.documents):
            raise ConfigError(
                f"{folder} holds vectors of {old.fingerprint.model_id} ({old.precision}, shard size {old.shard_size}, "
                f"{old.documents} documents); this run asks for {manifest.fingerprint.model_id} ({manifest.precision}, "
                f"shard size {manifest.shard_size}, {manifest.documents} documents): use another --out folder")
        return
    atomic_write_bytes(path, json.dumps(manifest.to_dict(), indent=2).encode())


# ---------------------------------------------------------------------------------------------- encoding
@dataclass
class EmbedResult:
    folder: Path
    manifest: Manifest
    written: int  # shards this run wrote
    skipped: int  # shards already there
    seconds: float
    written_texts: int = 0

    @property
    def texts_per_second(self) -> float:
        return self.written_texts / self.seconds if self.seconds > 0 else float("nan")


def embed_corpus(
    corpus: Corpus | str | os.PathLike,
    out: str | os.PathLike,
    *,
    base_model: str = DEFAULT_BASE_MODEL,
    backend: str = "local",
    device: str | None = None,
    devices: Sequence[str] | None = None,
    precision: str = "fp32",
    batch_size: int = 64,
    shard_size: int = DEFAULT_SHARD_SIZE,
    workers: int = 2,
    ray_address: str | None = None,
    show_progress_bar: bool = True,
    on_shard: Callable[[int], None] | None = None,
) -> EmbedResult:
    """Encode ``corpus`` (a :class:`~jepa_rag.corpus.Corpus` or a path :func:`~jepa_rag.corpus.load_corpus` reads)
    into Parquet shards under ``out``; shards already written for the same documents are skipped.

    ``backend="pool"`` runs one process per entry of ``devices`` (default: ``workers`` CPU processes);
    ``backend="ray"`` runs ``workers`` actors on the Ray cluster at ``ray_address`` (or the one this process
    already joined; else a local one is started), each with one GPU when ``device="cuda"``, else one CPU; given a
    path, this process only plans the shards and the actors read them. ``on_shard(index)`` runs after each shard
    this run wrote.
    """
    if backend not in BACKENDS:
        raise ConfigError(f"backend must be one of {list(BACKENDS)}, got {backend!r}")
    if precision not in PRECISIONS:
        raise ConfigError(f"precision must be one of {list(PRECISIONS)}, got {precision!r}")
    if shard_size < 1 or batch_size < 1 or workers < 1:
        raise ConfigError("shard_size, batch_size and workers must be at least 1")
    by_path = backend == "ray" and not isinstance(corpus, Corpus)
    if by_path:
        plan = _plan_by_path(corpus, shard_size)
        documents, source = plan.documents, plan.source
    else:
        if not isinstance(corpus, Corpus):
            corpus = load_corpus(corpus)
        documents, source = len(corpus), corpus.source
    folder_path = resolve_base_model(base_model)
    fingerprint = fingerprint_of_folder(folder_path, base_model)
    manifest = Manifest(fingerprint, precision, shard_size, documents, source)
    folder = Path(out)
    _open_folder(folder, manifest)
    _clean_stale_temps(folder)
    t0 = time.perf_counter()
    result = EmbedResult(folder, manifest, 0, 0, 0.0)
    from tqdm.auto import tqdm

    with tqdm(total=documents, desc=f"embed ({backend})", unit="text", disable=not show_progress_bar) as bar:
        def finished(index: int, rows: int, written: bool = True) -> None:
            bar.update(rows)
            if not written:
                result.skipped += 1
                return
            result.written += 1
            result.written_texts += rows
            if on_shard is not None:
                on_shard(index)

        if by_path:  # the Ray actors read their shards themselves and skip the finished ones
            todo = plan.items
        else:
            todo = []
            for shard in _plan(corpus, shard_size):
                if _finished(folder, manifest, shard):
                    finished(shard.index, len(shard.ids), written=False)
                else:
                    todo.append(shard)
        if todo and backend == "ray":
            items = todo if by_path else [{"shard": s.index, "rows": len(s.ids), "ids": s.ids, "texts": s.texts}
                                          for s in todo]
            _run_ray(items, folder, manifest, str(folder_path), device or "cpu", batch_size, workers,
                     ray_address, finished)
        elif todo:
            _run_local(todo, folder, manifest, str(folder_path), backend, device or "cpu", devices, batch_size,
                       workers, finished)
    result.seconds = time.perf_counter() - t0
    return result


def _run_local(todo, folder, manifest, model_folder, backend, device, devices, batch_size, workers, finished):
    encoder = BaseEncoder(model_folder, device=device, precision=manifest.precision, batch_size=batch_size)
    if backend == "local":
        for shard in todo:
            write_shard(folder, manifest.fingerprint, manifest.precision, shard, encoder(shard.texts))
            finished(shard.index, len(shard.ids))
        return
    if manifest.precision != "fp32":
        # the pool's processes run the model as it is: cast it (autocast does not cross process boundaries)
        import torch

        encoder.model.to(torch.bfloat16 if manifest.precision == "bf16" else torch.float16)
    targets = list(devices) if devices else [device] * workers
    cpu_procs = sum(torch_device_is_cpu(t) for t in targets)
    # each process would otherwise start one thread per core, and N processes on N cores thrash
    threads = str(max(1, (os.cpu_count() or 1) // cpu_procs)) if cpu_procs else None
    old = os.environ.get("OMP_NUM_THREADS")
    if threads:
        os.environ["OMP_NUM_THREADS"] = threads
    try:
        pool = encoder.model.start_multi_process_pool(target_devices=targets)
    finally:
        if threads and old is None:
            os.environ.pop("OMP_NUM_THREADS", None)
        elif threads:
            os.environ["OMP_NUM_THREADS"] = old
    try:
        for shard in todo:
            vecs = encoder.model.encode(shard.texts, pool=pool, batch_size=batch_size, convert_to_numpy=True,
                                        show_progress_bar=False, normalize_embeddings=False)
            write_shard(folder, manifest.fingerprint, manifest.precision, shard, np.asarray(vecs, np.float32))
            finished(shard.index, len(shard.ids))
    finally:
        encoder.model.stop_multi_process_pool(pool)


def torch_device_is_cpu(device: str) -> bool:
    return str(device).split(":")[0] == "cpu"


# ---------------------------------------------------------------------------------------------- the ray backend
@dataclass
class _PathPlan:
    """Shards of a corpus on disk as small descriptors (no text): a byte range of a JSONL file, or a list of files."""

    source: str
    documents: int
    items: list[dict]


def _plan_by_path(path: str | os.PathLike, shard_size: int) -> _PathPlan:
    """What :func:`load_corpus` would read, planned without reading any document: which file or folder, how many
    documents and where each shard starts; the same documents in the same order, so the same shards."""
    p, is_folder = locate_corpus(path)
    if is_folder:
        files = [f for f in _text_files(p) if _has_text(f)]
        if not files:
            load_corpus(p)  # raises its "no .txt or .md files" / "every file is empty" error
        names = [f.relative_to(p).as_posix() for f in files]
        items = [{"shard": n, "rows": len(names[s:s + shard_size]), "path": str(p.resolve()),
                  "files": names[s:s + shard_size]} for n, s in enumerate(range(0, len(names), shard_size))]
        return _PathPlan(str(p), len(names), items)
    starts: list[tuple[int, int]] = []  # (byte offset, line number) of each shard's first document
    documents = offset = 0
    with open(p, "rb") as fh:
        for lineno, raw in enumerate(fh, 1):
            if _is_document_line(raw):
                if documents % shard_size == 0:
                    starts.append((offset, lineno))
                documents += 1
            offset += len(raw)
    if not documents:
        load_corpus(p)  # raises its "no documents found" error
    ends = [o for o, _ in starts[1:]] + [offset]
    items = [{"shard": n, "rows": min(shard_size, documents - n * shard_size), "path": str(p.resolve()),
              "start": start, "end": end, "line": line} for n, ((start, line), end) in enumerate(zip(starts, ends))]
    return _PathPlan(str(p), documents, items)


def _is_document_line(raw: bytes) -> bool:
    """Whether the corpus reader takes this JSONL line as a document (it skips blank lines); a line it would refuse
    counts too, so the worker reading it reports the error with its line number."""
    stripped = raw.strip()
    if stripped[:1] == b"{" or not stripped:
        return bool(stripped)
    try:
        return bool(raw.decode("utf-8").strip())  # only Unicode whitespace, such as a no-break space?
    except UnicodeDecodeError:
        return True


def _has_text(path: Path) -> bool:
    """Whether the corpus reader takes this file as a document (it skips blank files), reading only as far as the
    first non-space character; a file it would refuse counts, so the worker reading it reports the error."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    try:
        with open(path, "rb") as fh:
            while chunk := fh.read(4096):
                if decoder.decode(chunk).strip():
                    return True
        return bool(decoder.decode(b"", final=True).strip())
    except UnicodeDecodeError:
        return True


def _read_jsonl_range(path: Path, start: int, end: int, first_line: int,
                      audit: CorpusAudit | None = None) -> tuple[list[str], list[str]]:
    """Ids and texts of the documents in bytes ``start..end`` of a JSONL corpus, with the corpus reader's checks
    (``audit`` counts the rows read, the skipped empty or repeated ones included)."""
    docs = list(iter_jsonl_documents(path, start, end, first_line, audit=audit))
    return [d[0] for d in docs], [d[1] for d in docs]


def _read_files(folder: Path, names: Sequence[str]) -> tuple[list[str], list[str]]:
    return list(names), [read_text_file(folder / name) for name in names]


class _RayShardWriter:
    """A Ray Data actor: reads its shards from the corpus by path (or gets their texts, for an in-memory corpus),
    skips the ones already written, encodes the others with a base model loaded once and writes them itself."""

    def __init__(self, model_folder: str, folder: str, manifest: dict, device: str, batch_size: int):
        self.folder = Path(folder)
        self.manifest = Manifest.from_dict(manifest)
        self.settings = {"model_folder": model_folder, "device": device, "batch_size": batch_size}
        self.encoder: BaseEncoder | None = None  # loaded at the first shard to encode: a re-run may have none

    def _encode(self, texts: list[str]) -> np.ndarray:
        if self.encoder is None:
            cpu = self.settings["device"] == "cpu"
            self.encoder = BaseEncoder(**self.settings, precision=self.manifest.precision, threads=1 if cpu else None)
        return self.encoder(texts)

    def _read(self, batch: dict[str, np.ndarray], row: int) -> tuple[list[str], list[str], int]:
        """The shard's ids and texts, and how many rows were read for them (the planner counted rows: a JSONL row
        that the corpus rule skips, empty or a repeated id, is read but not kept)."""
        if "texts" in batch:
            ids = [str(i) for i in batch["ids"][row]]
            return ids, [str(t) for t in batch["texts"][row]], len(ids)
        path = Path(str(batch["path"][row]))
        try:
            if "files" in batch:
                ids, texts = _read_files(path, [str(f) for f in batch["files"][row]])
                return ids, texts, len(ids)
            audit = CorpusAudit(str(path))
            ids, texts = _read_jsonl_range(path, int(batch["start"][row]), int(batch["end"][row]),
                                           int(batch["line"][row]), audit)
            return ids, texts, audit.documents
        except OSError as exc:
            raise DataNotFoundError(f"{path}: not readable on Ray node {socket.gethostname()} ({exc}); on a "
                                    "cluster the corpus must be on storage every node sees") from None

    def _write(self, batch: dict[str, np.ndarray], row: int) -> bool:
        ids, texts, read = self._read(batch, row)
        index, planned = int(batch["shard"][row]), int(batch["rows"][row])
        if read != planned or not all(texts):
            raise DataFormatError(f"{self.manifest.source}: changed while being embedded (shard {index} now holds "
                                  f"{len(ids)} documents, {planned} were planned); run the command again")
        shard = _Shard(index, ids, texts, [text_key(t) for t in texts])
        if _finished(self.folder, self.manifest, shard):
            return False
        write_shard(self.folder, self.manifest.fingerprint, self.manifest.precision, shard, self._encode(texts))
        return True

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        written, failures = [], []
        for row in range(len(batch["shard"])):
            try:
                written.append(self._write(batch, row))
                failures.append("")
            except JEPARagError as exc:  # sent back as text: Ray's wrapping of a raised error loses its type
                written.append(False)
                failures.append(f"{type(exc).__name__}:{exc}")
        return {"shard": np.asarray(batch["shard"], dtype=np.int64), "written": np.asarray(written, dtype=bool),
                "error": np.asarray(failures, dtype=object)}


def _import_ray():
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError as exc:
        raise ImportError("the 'ray' backend needs Ray Data: pip install 'jepa-rag[ray]' "
                          f"(ray[data]); import failed: {exc}") from None
    return ray


def _run_ray(items, folder, manifest, model_folder, device, batch_size, workers, address, finished):
    ray = _import_ray()
    if not ray.is_initialized():
        ray.init(address=address, include_dashboard=False, log_to_driver=False)
    rows = {int(item["shard"]): int(item["rows"]) for item in items}
    ds = ray.data.from_items(items)
    gpu = device.startswith("cuda")
    out = ds.map_batches(
        _RayShardWriter, batch_size=1, compute=ray.data.ActorPoolStrategy(size=min(workers, len(items))),
        num_gpus=1 if gpu else 0, num_cpus=0 if gpu else 1,
        fn_constructor_kwargs={"model_folder": model_folder, "folder": str(Path(folder).resolve()),
                               "manifest": manifest.to_dict(), "device": "cuda" if gpu else "cpu",
                               "batch_size": batch_size})
    for row in out.iter_rows():
        if row["error"]:  # bad input or a changed corpus, found by the actor that read it
            name, _, message = str(row["error"]).partition(":")
            error = getattr(errors, name, None)
            raise (error if isinstance(error, type) and issubclass(error, JEPARagError) else DataFormatError)(message)
        finished(int(row["shard"]), rows[int(row["shard"])], bool(row["written"]))


# ---------------------------------------------------------------------------------------------- reading
def _shard_paths(folder: Path, manifest: Manifest) -> list[Path]:
    paths = [_shard_path(folder, n) for n in range(manifest.shards)]
    done = sum(p.is_file() for p in paths)
    if done != len(paths):
        raise DataFormatError(f"{folder}: {done} of {manifest.shards} shards written; finish it by re-running "
                              "the same 'python -m jepa_rag.embed' command")
    return paths


def _read_shard(path: Path, manifest: Manifest, vectors: bool = True) -> tuple[list[str], list[str], np.ndarray | None]:
    _, pq = _pa()
    table = pq.read_table(path, columns=["id", "text_key", "vector"] if vectors else ["id", "text_key"])
    meta = table.schema.metadata or {}
    try:
        fp = Fingerprint.from_dict(json.loads(meta[META_PREFIX + b"fingerprint"]))
    except (KeyError, ValueError, TypeError):
        raise DataFormatError(f"{path}: no jepa-rag fingerprint in its metadata; not written by jepa_rag.embed") from None
    if not fp.same_model(manifest.fingerprint):
        raise EmbeddingMismatchError(f"{path}: made by {fp.model_id}, the folder's manifest says "
                                     f"{manifest.fingerprint.model_id}")
    vecs = None
    if vectors:
        flat = table.column("vector").combine_chunks().values.to_numpy(zero_copy_only=False)
        vecs = np.array(flat, dtype=np.float32).reshape(len(table), manifest.fingerprint.dim)
    return table.column("id").to_pylist(), table.column("text_key").to_pylist(), vecs


def read_shards(folder: str | os.PathLike) -> Iterator[tuple[list[str], list[str], np.ndarray]]:
    """``(ids, text_keys, vectors)`` per shard, in shard order, one shard in memory at a time; refuses a folder
    that is not complete."""
    folder = Path(folder)
    manifest = read_manifest(folder)
    for path in _shard_paths(folder, manifest):
        ids, keys, vecs = _read_shard(path, manifest)
        yield ids, keys, vecs


def _texts_for(corpus: Corpus, ids: list[str], keys: list[str], folder: Path) -> list[str]:
    texts = []
    for i, k in zip(ids, keys):
        text = corpus.docs.get(i)
        if text is None:
            raise DataFormatError(f"{folder}: document {i!r} is not in the corpus {corpus.source}")
        if text_key(text) != k:
            raise DataFormatError(f"{folder}: document {i!r} has another text in {corpus.source} than when it was "
                                  "embedded; re-embed into a new folder")
        texts.append(text)
    return texts


def _check_model(manifest: Manifest, fingerprint: Fingerprint, folder: Path) -> None:
    if not manifest.fingerprint.same_model(fingerprint):
        raise EmbeddingMismatchError(
            f"{folder}: vectors of base model {manifest.fingerprint.model_id} (weights "
            f"{manifest.fingerprint.weights_sha256[:12]}…), but the encoder runs {fingerprint.model_id} "
            f"(weights {fingerprint.weights_sha256[:12]}…)")


# ---------------------------------------------------------------------------------------------- importing
def import_to_cache(
    encoder: Any,
    folder: str | os.PathLike,
    corpus: Corpus | str | os.PathLike,
    *,
    sample_size: int = 16,
    min_cosine: float = 0.999,
    seed: int = 0,
) -> int:
    """Load the folder's vectors into ``encoder``'s base-vector cache (a :class:`jepa_rag.JEPAEncoder`).

    Checked first: same base model, same precision as the encoder's cache (fp32 vectors into the fp32 cache, bf16
    into the bf16 one), every document's text unchanged in ``corpus``; then ``sample_size`` random texts are
    re-encoded and the import refused with :class:`EmbeddingMismatchError` if any cosine is below ``min_cosine``.
    Returns the number of vectors added (0 without any encoding when all were cached already).
    """
    folder = Path(folder)
    manifest = read_manifest(folder)
    cache: EmbeddingCache | None = encoder.cache
    if cache is None:
        raise ConfigError("the encoder has no cache (use_cache=False): nothing to import into")
    _check_model(manifest, encoder.fingerprint, folder)
    if manifest.precision != encoder.precision:
        raise EmbeddingMismatchError(
            f"{folder}: vectors computed in {manifest.precision}, the encoder's cache holds {encoder.precision} ones; "
            f"open the encoder with precision={manifest.precision!r} (fp32/bf16) or embed again in its precision")
    if not isinstance(corpus, Corpus):
        corpus = load_corpus(corpus)
    paths = _shard_paths(folder, manifest)
    # pass 1 reads ids and text keys only (no vectors): what is missing, and is there anything to do at all
    missing_by_shard: dict[int, list[int]] = {}
    for n, path in enumerate(paths):
        ids, keys, _ = _read_shard(path, manifest, vectors=False)
        _, missing = cache.lookup(_texts_for(corpus, ids, keys, folder))
        if missing:
            missing_by_shard[n] = missing
    if not missing_by_shard:
        return 0
    rng = np.random.default_rng(seed)
    sample = np.sort(rng.choice(manifest.documents, size=min(sample_size, manifest.documents), replace=False))
    texts, stored = [], []
    for n in sorted({int(i) // manifest.shard_size for i in sample}):
        ids, keys, vecs = _read_shard(paths[n], manifest)
        rows = [int(i) - n * manifest.shard_size for i in sample if int(i) // manifest.shard_size == n]
        texts += _texts_for(corpus, [ids[r] for r in rows], [keys[r] for r in rows], folder)
        stored.append(vecs[rows])
    fresh = np.asarray(encoder._encode_with_base(texts), dtype=np.float32)
    stored_m = np.concatenate(stored)
    cos = (fresh * stored_m).sum(1) / (np.linalg.norm(fresh, axis=1) * np.linalg.norm(stored_m, axis=1) + 1e-12)
    if cos.min() < min_cosine:
        worst = int(cos.argmin())
        raise EmbeddingMismatchError(
            f"{folder}: vectors do not match the base model {cache.fingerprint.model_id} (cosine {cos.min():.4f} < "
            f"{min_cosine} on {texts[worst][:60]!r}); refusing to import")
    added = 0
    for n in missing_by_shard:  # pass 2: one shard's vectors in memory at a time
        ids, keys, vecs = _read_shard(paths[n], manifest)
        shard_texts = _texts_for(corpus, ids, keys, folder)
        _, missing = cache.lookup(shard_texts)  # again: a text repeated in an earlier shard is stored by now
        seen: set[str] = set()
        todo = [i for i in missing if not (shard_texts[i] in seen or seen.add(shard_texts[i]))]
        cache.add([shard_texts[i] for i in todo], vecs[todo])
        added += len(todo)
    return added


def ingest_to_chroma(
    collection: Any,
    folder: str | os.PathLike,
    corpus: Corpus | str | os.PathLike,
    encoder: Any,
    *,
    batch_size: int = 256,
    show_progress_bar: bool = False,
) -> int:
    """Upsert every document of the folder into ``collection`` (chromadb, embedded or server, or a
    :class:`jepa_rag.chroma_hybrid.HybridCollection`) with ``encoder``'s document head applied to the stored
    base vectors: no base-model call. ``encoder`` must be the collection's checkpoint (e.g. its embedding
    function's ``.encoder``). Idempotent (upserts by id), so re-running after a crash completes it. Returns the
    number of documents written."""
    from tqdm.auto import tqdm

    folder = Path(folder)
    manifest = read_manifest(folder)
    _check_model(manifest, encoder.fingerprint, folder)
    if not isinstance(corpus, Corpus):
        corpus = load_corpus(corpus)
    if batch_size < 1:
        raise ConfigError("batch_size must be at least 1")
    done = 0
    with tqdm(total=manifest.documents, desc=f"ingest → {collection.name}", unit="doc",
              disable=not show_progress_bar) as bar:
        for ids, keys, vecs in read_shards(folder):
            texts = _texts_for(corpus, ids, keys, folder)
            for start in range(0, len(ids), batch_size):
                part = slice(start, start + batch_size)
                emb = encoder.apply_heads(vecs[part], "document")
                collection.upsert(ids=ids[part], embeddings=[row for row in emb], documents=texts[part])
                done += len(ids[part])
                bar.update(len(ids[part]))
    return done


# ---------------------------------------------------------------------------------------------- command line
def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="jepa-rag embed", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("corpus", help="a BEIR corpus.jsonl (or its folder), a JSONL of {id?, title?, text}, or a folder "
                                  "of .txt/.md files")
    p.add_argument("--out", required=True, help="folder for manifest.json and the part-NNNNN.parquet shards")
    p.add_argument("--backend", choices=BACKENDS, default="local")
    p.add_argument("--base-model", default=None,
                   help=f"base model folder or Hub id (default: the --checkpoint's, else {DEFAULT_BASE_MODEL})")
    p.add_argument("--checkpoint", default="default",
                   help="checkpoint for --to-chroma (its base model is embedded): 'default', 'none' or a folder")
    p.add_argument("--device", default=None, help="torch device, e.g. cuda (default cpu)")
    p.add_argument("--devices", default=None, help="pool backend: comma-separated devices, e.g. cuda:0,cuda:1")
    p.add_argument("--precision", choices=PRECISIONS, default="fp32", help="fp16/bf16: autocast, for GPUs")
    p.add_argument("--batch-size", type=int, default=64, help="texts per forward pass (default 64)")
    p.add_argument("--shard-size", type=int, default=DEFAULT_SHARD_SIZE, help="documents per shard (default 10000)")
    p.add_argument("--workers", type=int, default=2, help="pool processes or Ray actors (default 2)")
    p.add_argument("--ray-address", default=None, help="Ray cluster address (default: RAY_ADDRESS, else local)")
    p.add_argument("--to-cache", action="store_true", help="then load the vectors into the base-vector cache")
    p.add_argument("--to-chroma", metavar="COLLECTION", default=None,
                   help="then upsert them (heads applied) into this hybrid Chroma collection")
    p.add_argument("--path", default=None, help="embedded Chroma folder for --to-chroma (default ./jepa_rag_index)")
    p.add_argument("--host", default=None, help="Chroma server host for --to-chroma (with --port, --lexical-dir)")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--lexical-dir", default=None, help="BM25 index folder (required with --host)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


def _base_model_of(args: argparse.Namespace) -> str:
    if args.base_model:
        return args.base_model
    if args.checkpoint not in ("none", "vanilla"):
        from .checkpoint import load_checkpoint
        from .encoder import DEFAULT_CHECKPOINT

        path = DEFAULT_CHECKPOINT if args.checkpoint == "default" else Path(args.checkpoint)
        return load_checkpoint(path).config.base_model
    return DEFAULT_BASE_MODEL


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        # the ray backend's actors read the corpus themselves: this process only plans the shards
        corpus = args.corpus if args.backend == "ray" else load_corpus(args.corpus)
        base_model = _base_model_of(args)
        result = embed_corpus(
            corpus, args.out, base_model=base_model, backend=args.backend, device=args.device,
            devices=args.devices.split(",") if args.devices else None, precision=args.precision,
            batch_size=args.batch_size, shard_size=args.shard_size, workers=args.workers,
            ray_address=args.ray_address, show_progress_bar=not args.no_progress)
        rate = f", {result.texts_per_second:.1f} texts/s" if result.written else ""
        print(f"{args.out}: {result.written} shards written, {result.skipped} already there "
              f"({result.manifest.documents} documents, {result.manifest.fingerprint.model_id}, "
              f"{result.manifest.precision}{rate})")
        if args.to_cache or args.to_chroma:
            from .encoder import JEPAEncoder

            if not isinstance(corpus, Corpus):
                corpus = load_corpus(corpus)
            precision = "fp32" if result.manifest.precision == "fp16" else result.manifest.precision
            encoder = JEPAEncoder.from_pretrained(args.checkpoint, base_model=args.base_model,
                                                  device=args.device, precision=precision)
            if args.to_cache:
                added = import_to_cache(encoder, args.out, corpus)
                print(f"base-vector cache: {added} vectors added ({encoder.cache.dir})")
            if args.to_chroma:
                n = _to_chroma(args, corpus, encoder)
                print(f"{args.to_chroma}: {n} documents upserted from the stored vectors")
    except JEPARagError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


def _to_chroma(args: argparse.Namespace, corpus: Corpus, encoder: Any) -> int:
    import chromadb

    from jepa_rag.chroma import JEPAEmbeddingFunction
    from jepa_rag.chroma_hybrid import hybrid_collection

    if args.host:
        if not args.lexical_dir:
            raise ConfigError("--host needs --lexical-dir (a local folder for the BM25 index)")
        client = chromadb.HttpClient(host=args.host, port=args.port)
    else:
        path = Path(args.path or "./jepa_rag_index")
        path.mkdir(parents=True, exist_ok=True)
        client = chromadb.PersistentClient(path=str(path))
    ef = JEPAEmbeddingFunction(args.checkpoint, args.base_model, args.device, precision=encoder.precision)
    collection = hybrid_collection(client, args.to_chroma, ef, lexical_dir=args.lexical_dir, create=True)
    return ingest_to_chroma(collection, args.out, corpus, ef.encoder, show_progress_bar=not args.no_progress)


if __name__ == "__main__":
    sys.exit(main())
