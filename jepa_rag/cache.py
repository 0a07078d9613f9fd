"""An on-disk cache of the frozen base encoder's outputs, in one LMDB database per base model.

Keyed by the base model's fingerprint (one folder each, holding ``fingerprint.json``, ``vectors.mdb`` and its
``vectors.mdb-lock``) and the first 16 bytes of each text's sha256; a value is the float32 vector. Why LMDB: the
number of files and descriptors stays constant however many texts are cached (the shard-per-batch layout it
replaces cost two files and a descriptor per batch), every write is one transaction that a SIGKILL either keeps
whole or loses whole, several processes may write at once (LMDB serialises writers) while others read, and bulk
reads are as fast as memory-mapped shards were (``benchmarks/results/cache.md`` has both measured against SQLite
in WAL mode, which was 2-4x slower here).

A folder written by the shard layout is imported into the database the first time it is opened, then its shard
files are removed (logged once).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import sys
import threading
from collections.abc import Callable, Sequence
from pathlib import Path

import lmdb
import numpy as np
from tqdm.auto import tqdm

from .base_model import Fingerprint, jepa_home
from .errors import EmbeddingMismatchError, InvalidInputError
from .fsutil import atomic_write_bytes

EncodeFn = Callable[[list[str]], np.ndarray]
log = logging.getLogger("jepa_rag")

DB_NAME = "vectors.mdb"
# the file grows with what is stored; the map is only address space (64-bit) and caps the database's size
MAP_SIZE = 1 << 40 if sys.maxsize > 2**32 else 1 << 30
_LOOKUP_CHUNK = 4096


def text_key(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


def _key(text: str) -> bytes:
    return hashlib.sha256(text.encode("utf-8")).digest()[:16]


# LMDB allows one open environment per database file and process (a second open of the same file in one process
# breaks its locking), so every cache object on a folder shares one; a forked child opens its own.
_ENVS: dict[str, tuple[int, lmdb.Environment]] = {}
_ENVS_LOCK = threading.Lock()


def _environment(path: Path) -> lmdb.Environment:
    key = str(path.resolve())
    with _ENVS_LOCK:
        held = _ENVS.get(key)
        if held is not None and held[0] == os.getpid():
            return held[1]
        env = lmdb.open(key, subdir=False, map_size=MAP_SIZE, max_readers=1024, max_dbs=0, readahead=False,
                        metasync=False, lock=True)
        _ENVS[key] = (os.getpid(), env)
        return env


class EmbeddingCache:
    """Vectors of the base encoder, by text. ``embed(texts, encode_fn)`` returns cached rows, encoding only misses."""

    def __init__(self, fingerprint: Fingerprint, root: str | os.PathLike | None = None, variant: str = ""):
        """``variant`` names vectors computed another way than fp32 (e.g. ``"bf16"``): they get their own folder, so
        a faster, slightly different encoding never mixes with the reference vectors."""
        self.fingerprint = fingerprint
        self.variant = variant
        self.dir = Path(root or jepa_home() / "embeddings") / (fingerprint.key + (f"-{variant}" if variant else ""))
        self.dir.mkdir(parents=True, exist_ok=True)
        meta = self.dir / "fingerprint.json"
        if not meta.exists():
            atomic_write_bytes(meta, json.dumps(fingerprint.to_dict(), indent=2).encode())
        self._row_bytes = 4 * fingerprint.dim
        self._env = _environment(self.dir / DB_NAME)
        self._import_shards()

    @property
    def path(self) -> Path:
        """The database file."""
        return self.dir / DB_NAME

    def __len__(self) -> int:
        return int(self._env.stat()["entries"])

    def __contains__(self, text: str) -> bool:
        with self._env.begin(buffers=True) as txn:
            return txn.get(_key(text)) is not None

    def add(self, texts: Sequence[str], vectors: np.ndarray) -> None:
        """Store vectors for ``texts`` (rows in order) in one transaction; texts already stored keep their vector."""
        vectors = np.asarray(vectors, dtype=np.float32)
        if vectors.shape != (len(texts), self.fingerprint.dim):
            raise InvalidInputError(
                f"cache: expected vectors of shape ({len(texts)}, {self.fingerprint.dim}), got {vectors.shape}")
        if not np.isfinite(vectors).all():
            raise InvalidInputError("cache: refusing to store non-finite vectors")
        self._put([_key(t) for t in texts], vectors)

    def _put(self, keys: list[bytes], vectors: np.ndarray) -> None:
        rows = np.ascontiguousarray(vectors, dtype="<f4")
        with self._env.begin(write=True) as txn:
            txn.cursor().putmulti(((k, rows[i].tobytes()) for i, k in enumerate(keys)), overwrite=False)

    def lookup(self, texts: Sequence[str]) -> tuple[np.ndarray, list[int]]:
        """Rows for ``texts`` (zeros where missing) and the indices of the missing ones."""
        out = np.zeros((len(texts), self.fingerprint.dim), dtype=np.float32)
        missing = []
        for start in range(0, len(texts), _LOOKUP_CHUNK):  # short read transactions: never pin old pages for long
            with self._env.begin(buffers=True) as txn:
                for i in range(start, min(start + _LOOKUP_CHUNK, len(texts))):
                    value = txn.get(_key(texts[i]))
                    if value is None or len(value) != self._row_bytes:
                        missing.append(i)
                    else:
                        out[i] = np.frombuffer(value, dtype="<f4")
        return out, missing

    def embed(
        self,
        texts: Sequence[str],
        encode_fn: EncodeFn,
        *,
        chunk_size: int = 256,
        show_progress_bar: bool | None = None,
        desc: str = "encoding (base model)",
        store: bool = True,
    ) -> np.ndarray:
        """Vectors for ``texts``: cache hits are read, misses encoded in chunks and committed chunk by chunk.

        ``store=False`` reads the cache but writes nothing (what the encoder does for queries by default)."""
        out, missing = self.lookup(texts)
        if not missing:
            return out
        unique: dict[str, list[int]] = {}
        for i in missing:
            unique.setdefault(texts[i], []).append(i)
        todo = list(unique)
        show = len(todo) > chunk_size if show_progress_bar is None else show_progress_bar
        with tqdm(total=len(todo), desc=desc, unit="text", disable=not show) as bar:
            for start in range(0, len(todo), chunk_size):
                chunk = todo[start:start + chunk_size]
                vecs = np.asarray(encode_fn(chunk), dtype=np.float32)
                if store:
                    self.add(chunk, vecs)
                for t, v in zip(chunk, vecs):
                    out[unique[t]] = v
                bar.update(len(chunk))
        return out

    def _import_shards(self) -> None:
        """Move vectors from the shard-per-batch layout (``shard-N.npy`` + ``shard-N.keys``) into the database.

        A shard without its ``.keys`` never committed and is dropped; shard files are removed only after their
        vectors are committed, so a crash mid-import loses nothing and the next open finishes it.
        """
        keys_files = sorted(self.dir.glob("shard-*.keys"))
        leftovers = [p for p in self.dir.glob("shard-*.npy*") if not p.with_suffix(".keys").exists()]
        if not keys_files and not leftovers:
            return
        imported = 0
        for keys_file in keys_files:
            npy = keys_file.with_suffix(".npy")
            try:
                keys = keys_file.read_text().split()
                vecs = np.load(npy, mmap_mode="r", allow_pickle=False)
            except (OSError, ValueError):
                keys, vecs = [], None
            if vecs is not None and vecs.shape == (len(keys), self.fingerprint.dim) and np.isfinite(vecs).all():
                self._put([bytes.fromhex(k) for k in keys], np.asarray(vecs))
                imported += len(keys)
            for f in (npy, keys_file):
                f.unlink(missing_ok=True)
        for f in leftovers:
            f.unlink(missing_ok=True)
        log.info("embedding cache %s: imported %d vectors from %d shard files of the old layout and removed them",
                 self.dir, imported, len(keys_files))


def import_precomputed(
    cache: EmbeddingCache,
    npz_path: str | os.PathLike,
    texts_by_array: dict[str, dict[str, str]],
    encode_fn: EncodeFn,
    *,
    sample_size: int = 16,
    min_cosine: float = 0.999,
    seed: int = 0,
) -> int:
    """Import a precomputed embeddings file into the cache after checking it against the real model.

    ``npz_path`` holds arrays ``<name>`` (N×D) and ``<name>_ids``; ``texts_by_array[name]`` maps those ids to the
    texts they embed. A random sample of ``sample_size`` texts is re-encoded with ``encode_fn``; if any cosine is
    below ``min_cosine`` the file is refused with :class:`EmbeddingMismatchError` and nothing is stored.
    Returns the number of vectors added (0 when all were already cached, in which case no model is needed).
    """
    npz_path = Path(npz_path)
    try:
        npz = np.load(npz_path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise EmbeddingMismatchError(f"{npz_path}: cannot read embeddings ({exc})") from None
    texts: list[str] = []
    vecs: list[np.ndarray] = []
    with npz:
        for name, id_to_text in texts_by_array.items():
            if name not in npz.files or f"{name}_ids" not in npz.files:
                raise EmbeddingMismatchError(f"{npz_path}: no arrays {name!r}/{name}_ids (has {npz.files})")
            ids = [i.decode() if isinstance(i, bytes) else str(i) for i in npz[f"{name}_ids"]]
            arr = npz[name]
            if arr.ndim != 2 or arr.shape[1] != cache.fingerprint.dim:
                raise EmbeddingMismatchError(
                    f"{npz_path}: {name} has shape {arr.shape}, the base model gives {cache.fingerprint.dim}-d vectors")
            unknown = [i for i in ids if i not in id_to_text]
            if unknown:
                raise EmbeddingMismatchError(f"{npz_path}: {len(unknown)} {name} id(s) not in the data, e.g. {unknown[0]!r}")
            texts.extend(id_to_text[i] for i in ids)
            vecs.append(np.asarray(arr, dtype=np.float32))
    matrix = np.concatenate(vecs) if vecs else np.zeros((0, cache.fingerprint.dim), np.float32)
    _, missing = cache.lookup(texts)
    if not missing:
        return 0
    rng = np.random.default_rng(seed)
    sample = rng.choice(len(texts), size=min(sample_size, len(texts)), replace=False)
    fresh = np.asarray(encode_fn([texts[i] for i in sample]), dtype=np.float32)
    stored = matrix[sample]
    cos = (fresh * stored).sum(1) / (np.linalg.norm(fresh, axis=1) * np.linalg.norm(stored, axis=1) + 1e-12)
    if cos.min() < min_cosine:
        worst = int(sample[int(cos.argmin())])
        raise EmbeddingMismatchError(
            f"{npz_path}: precomputed vectors do not match the base model {cache.fingerprint.model_id} "
            f"(cosine {cos.min():.4f} < {min_cosine} on text #{worst}: {texts[worst][:60]!r}); refusing to import. "
            "They were made by another model, another text rule or are corrupt.")
    keep = sorted(set(missing))
    seen: set[str] = set()
    uniq = [i for i in keep if not (texts[i] in seen or seen.add(texts[i]))]
    for start in range(0, len(uniq), 4096):
        part = uniq[start:start + 4096]
        cache.add([texts[i] for i in part], matrix[part])
    return len(uniq)
