"""An on-disk cache of the frozen base encoder's outputs.

Keyed by the base model's fingerprint (one folder each) and the sha256 of each text. Each batch of new vectors
is written as its own shard: ``shard-N.npy`` first, then ``shard-N.keys`` (the commit marker), both via a temp
file, fsync and rename; each writer claims its shard number by creating the ``.npy`` exclusively, so processes
sharing the folder never overwrite each other's shards. A crash loses at most the batch being written; a re-run resumes from there. Shards are
read memory-mapped, so a cache larger than RAM still works.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from .base_model import Fingerprint, jepa_home
from .errors import EmbeddingMismatchError, InvalidInputError

EncodeFn = Callable[[list[str]], np.ndarray]


def text_key(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


def _atomic_write_bytes(path: Path, write: Callable[[object], None]) -> None:
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    with open(tmp, "wb") as fh:
        write(fh)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


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
            _atomic_write_bytes(meta, lambda fh: fh.write(json.dumps(fingerprint.to_dict(), indent=2).encode()))
        self._index: dict[str, tuple[int, int]] = {}
        self._shards: dict[int, np.ndarray] = {}
        self._next = 0
        self._claim_lock = threading.Lock()
        self.reload()

    def reload(self) -> None:
        """Pick up shards written since (by this or another process)."""
        for keys_file in sorted(self.dir.glob("shard-*.keys")):
            n = int(keys_file.stem.split("-")[1])
            self._next = max(self._next, n + 1)
            if n in self._shards:
                continue
            keys = keys_file.read_text().split()
            vecs = np.load(self.dir / f"shard-{n:06d}.npy", mmap_mode="r", allow_pickle=False)
            if vecs.shape != (len(keys), self.fingerprint.dim):
                continue  # a shard from an interrupted write that never committed properly; ignore it
            self._shards[n] = vecs
            for row, key in enumerate(keys):
                self._index.setdefault(key, (n, row))

    def _claim_shard(self) -> int:
        """A shard number no other writer uses, claimed by creating its ``.npy`` exclusively.

        Why: two processes (or threads) sharing this folder each count shards from what they saw when they last
        looked; without a claim both would write ``shard-N`` and one's keys could end up paired with the other's
        vectors. An empty claimed file without ``.keys`` is an uncommitted shard, ignored by readers.
        """
        with self._claim_lock:
            while True:
                n = self._next
                self._next += 1
                try:
                    fd = os.open(self.dir / f"shard-{n:06d}.npy", os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
                except FileExistsError:
                    continue
                os.close(fd)
                return n

    def __len__(self) -> int:
        return len(self._index)

    def __contains__(self, text: str) -> bool:
        return text_key(text) in self._index

    def add(self, texts: Sequence[str], vectors: np.ndarray) -> None:
        """Commit one shard of vectors for ``texts`` (rows in order)."""
        vectors = np.asarray(vectors, dtype=np.float32)
        if vectors.shape != (len(texts), self.fingerprint.dim):
            raise InvalidInputError(
                f"cache: expected vectors of shape ({len(texts)}, {self.fingerprint.dim}), got {vectors.shape}")
        if not np.isfinite(vectors).all():
            raise InvalidInputError("cache: refusing to store non-finite vectors")
        keys = [text_key(t) for t in texts]
        n = self._claim_shard()
        npy = self.dir / f"shard-{n:06d}.npy"
        _atomic_write_bytes(npy, lambda fh: np.save(fh, vectors, allow_pickle=False))
        _atomic_write_bytes(self.dir / f"shard-{n:06d}.keys", lambda fh: fh.write("\n".join(keys).encode()))
        self._shards[n] = np.load(npy, mmap_mode="r", allow_pickle=False)
        for row, key in enumerate(keys):
            self._index.setdefault(key, (n, row))

    def lookup(self, texts: Sequence[str]) -> tuple[np.ndarray, list[int]]:
        """Rows for ``texts`` (zeros where missing) and the indices of the missing ones."""
        out = np.zeros((len(texts), self.fingerprint.dim), dtype=np.float32)
        missing = []
        for i, t in enumerate(texts):
            hit = self._index.get(text_key(t))
            if hit is None:
                missing.append(i)
            else:
                out[i] = self._shards[hit[0]][hit[1]]
        return out, missing

    def embed(
        self,
        texts: Sequence[str],
        encode_fn: EncodeFn,
        *,
        chunk_size: int = 256,
        show_progress_bar: bool | None = None,
        desc: str = "encoding (base model)",
    ) -> np.ndarray:
        """Vectors for ``texts``: cache hits are read, misses encoded in chunks and committed chunk by chunk."""
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
                self.add(chunk, vecs)
                for t, v in zip(chunk, vecs):
                    out[unique[t]] = v
                bar.update(len(chunk))
        return out


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
