"""An on-disk cache of the frozen base encoder's outputs, in one LMDB database per base model.

Keyed by the base model's fingerprint (one folder each, holding ``fingerprint.json``, ``vectors.mdb`` and its
``vectors.mdb-lock``) and the first 16 bytes of each text's sha256; a value is the float32 vector and a checksum
of it and its key. Why LMDB: the
number of files and descriptors stays constant however many texts are cached (the shard-per-batch layout it
replaces cost two files and a descriptor per batch), every write is one transaction that a SIGKILL either keeps
whole or loses whole, several processes may write at once (LMDB serialises writers) while others read, and bulk
reads are as fast as memory-mapped shards were (``benchmarks/results/cache.md`` has both measured against SQLite
in WAL mode, which was 2-4x slower here).

Damage never costs more than time. Every read is verified: an entry whose checksum fails is a miss (encoded again
and rewritten, one warning per process); values written before checksums existed are read unverified. A file that
is truncated, shorter than its header says or has a bad header is detected before LMDB maps it (a read past the
end of a mapped file is a SIGBUS, which kills the process) and, like a file LMDB reports corrupt, moved aside to
``vectors.mdb.corrupt-<time>-<pid>`` and replaced by an empty cache with a warning. The map starts at 64 MiB and
doubles when a write fills it, so the cache opens under an address-space limit; a write that cannot be done (a
full disk, no address space left to grow) is skipped with a warning.

A folder written by the shard layout is imported into the database the first time it is opened, then its shard
files are removed (logged once).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import struct
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
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
# The map starts small and doubles when a write finds it full: a map is address space, and a fixed 1 TiB one cannot
# be opened under an address-space limit (ulimit -v, batch schedulers, containers). MAX_MAP_SIZE caps the database.
MIN_MAP_SIZE = 64 << 20
MAX_MAP_SIZE = 1 << 40 if sys.maxsize > 2**32 else 1 << 30
_LOOKUP_CHUNK = 1024  # rows per read transaction, and the size of the reused row buffer (stays in the CPU cache)
# A value is the little-endian float32 vector, zero-padded to a multiple of 8 bytes, then an 8-byte tag chosen so
# that its 64-bit words plus the key's two words plus _SALT sum to 0 (mod 2**64). Why a sum and not a hash per
# entry: a whole chunk is verified by one numpy reduction over bytes already in the CPU cache, which keeps
# verification within a few percent of a bulk read (benchmarks/test_cache_speed.py), where a per-entry hash call
# costs 10-20%; it detects any damage confined to one word and random bytes with probability 1 - 2**-64. It guards
# against damage, not forgery (anyone who can write the file can write a valid tag).
_SALT = np.uint64(int.from_bytes(b"jepa-rag", "little"))
# Values written before checksums (exactly the vector's bytes) are still read, without verification.


def text_key(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


def _key(text: str) -> bytes:
    return hashlib.sha256(text.encode("utf-8")).digest()[:16]


def value_width(dim: int) -> int:
    """Bytes of one stored value for ``dim``-d vectors: the vector padded to 8 bytes, plus the 8-byte tag."""
    return (4 * dim + 7) // 8 * 8 + 8


def _key_sums(keys: Sequence[bytes]) -> np.ndarray:
    words = np.frombuffer(b"".join(keys), dtype="<u8").reshape(-1, 2)
    return words[:, 0] + words[:, 1] + _SALT


def pack_values(keys: Sequence[bytes], vectors: np.ndarray) -> list[bytes]:
    """The stored values (vector bytes + checksum tag) of ``vectors`` under ``keys``."""
    rows = np.ascontiguousarray(vectors, dtype="<f4")
    buf = np.zeros((len(keys), value_width(rows.shape[1])), dtype=np.uint8)
    buf[:, :rows.shape[1] * 4] = rows.view(np.uint8)
    words = buf.view("<u8")
    words[:, -1] = np.uint64(0) - (words[:, :-1].sum(axis=1) + _key_sums(keys))  # wraps mod 2**64
    return [buf[i].tobytes() for i in range(len(keys))]


def verified(raw: np.ndarray, keys: Sequence[bytes]) -> np.ndarray:
    """Which rows of ``raw`` (one stored value per row, uint8) carry a tag that matches their bytes and key."""
    return np.einsum("ij->i", raw.view("<u8")) + _key_sums(keys) == 0  # einsum: the fastest row sum in numpy


def _intact(key: bytes, value: bytes | memoryview | None, dim: int) -> bool:
    """Whether a stored value can be served: checksummed and matching, or written before checksums existed."""
    if value is None:
        return False
    if len(value) == 4 * dim:
        return True
    return len(value) == value_width(dim) and bool(verified(np.frombuffer(value, np.uint8)[None, :], [key])[0])


# ---------------------------------------------------------------------------------------------- file checks
_PAGE_HEADER = 16  # LMDB page header on 64-bit builds (pgno, pad, flags, lower/upper)
_META = struct.Struct("<II8xQ" + "IHH5Q" * 2 + "QQ")  # magic, version, (address), mapsize, 2 MDB_db, last_pg, txnid
_MAGIC, _DATA_VERSION, _P_META, _NO_ROOT = 0xBEEFC0DE, 1, 0x08, 2**64 - 1


def header_damage(path: Path) -> str | None:
    """Why the LMDB file at ``path`` cannot be mapped safely, or ``None`` when its header is sound (or it does not
    exist yet).

    Checked before LMDB maps it: a file shorter than its header says it holds makes every read of the missing pages
    a SIGBUS, which kills the process with no Python exception. Both meta pages must carry LMDB's magic, data
    version and one page size, root pages inside the file, and the file must hold every page the metas name.
    """
    try:
        size = path.stat().st_size
        if size == 0:
            return None  # created but never initialised: LMDB writes a fresh header
        with open(path, "rb") as fh:
            first = fh.read(_PAGE_HEADER + _META.size)
            if len(first) < _PAGE_HEADER + _META.size:
                return f"the file is {size} bytes, shorter than its header"
            page_size = struct.unpack_from("<I", first, _PAGE_HEADER + 24)[0]
            if page_size < 512 or page_size > 1 << 16 or page_size & (page_size - 1):
                return f"bad header (page size {page_size})"
            fh.seek(page_size)
            second = fh.read(_PAGE_HEADER + _META.size)
    except OSError as exc:
        return f"unreadable ({exc})"
    if len(second) < _PAGE_HEADER + _META.size:
        return f"the file is {size} bytes, shorter than its two header pages"
    need = 0
    for n, page in enumerate((first, second)):
        flags = struct.unpack_from("<H", page, 10)[0]
        meta = _META.unpack_from(page, _PAGE_HEADER)
        magic, version, psize, last_pg = meta[0], meta[1], meta[3], meta[-2]
        roots = (meta[10], meta[18])
        if not flags & _P_META or magic != _MAGIC or version != _DATA_VERSION or psize != page_size:
            return f"bad header (meta page {n}: flags {flags:#x}, magic {magic:#x}, version {version}, page size {psize})"
        if any(r != _NO_ROOT and r > last_pg for r in roots) or last_pg >= 2**48:
            return f"bad header (meta page {n} names pages beyond its last page {last_pg})"
        need = max(need, (last_pg + 1) * page_size)
    if size < need:
        return f"truncated: the file is {size} bytes but its header names {need}"
    return None


# LMDB errors that mean the file's contents are damaged (others: permissions, memory, a full disk)
_DAMAGE = (lmdb.InvalidError, lmdb.CorruptedError, lmdb.PageNotFoundError, lmdb.VersionMismatchError,
           lmdb.PanicError, lmdb.BadRslotError, lmdb.BadTxnError, lmdb.BadValsizeError)
_warned: set[str] = set()


def _warn_once(what: str, message: str, *args: object) -> None:
    if what not in _warned:
        _warned.add(what)
        log.warning(message, *args)


class _Store:
    """One LMDB environment on one file, shared by every cache object on that file in this process.

    LMDB allows one open environment per file and process (a second open breaks its locking). Growing the map and
    setting a damaged file aside need no transaction open in this process, so transactions hold a shared lock and
    those two steps an exclusive one.
    """

    def __init__(self, path: Path):
        self.path = path
        self._cond = threading.Condition()
        self._active = 0
        self._exclusive = False
        self._inode: int | None = None
        self.env: lmdb.Environment | None = self._open()

    # ------------------------------------------------------------------------------------------ locking
    @contextmanager
    def shared(self) -> Iterator[lmdb.Environment | None]:
        with self._cond:
            self._cond.wait_for(lambda: not self._exclusive)
            self._active += 1
        try:
            yield self.env
        finally:
            with self._cond:
                self._active -= 1
                self._cond.notify_all()

    @contextmanager
    def exclusive(self) -> Iterator[None]:
        with self._cond:
            self._cond.wait_for(lambda: not self._exclusive and self._active == 0)
            self._exclusive = True
        try:
            yield
        finally:
            with self._cond:
                self._exclusive = False
                self._cond.notify_all()

    # ------------------------------------------------------------------------------------------ opening
    def _open(self) -> lmdb.Environment | None:
        damage = header_damage(self.path)
        for _ in range(3):  # a header read while another process commits can be torn: act only on lasting damage
            if damage is None:
                break
            time.sleep(0.05)
            damage = header_damage(self.path)
        if damage is not None:
            self._set_aside(damage)
        for attempt in range(2):
            try:
                size = self.path.stat().st_size if self.path.exists() else 0
                self._inode = self.path.stat().st_ino if self.path.exists() else None
                env = lmdb.open(str(self.path), subdir=False, map_size=_map_size_for(size), max_readers=1024,
                                max_dbs=0, readahead=False, metasync=False, lock=True)
                self._inode = self.path.stat().st_ino
                return env
            except _DAMAGE as exc:
                if attempt == 0:
                    self._set_aside(f"LMDB cannot open it ({type(exc).__name__}: {exc})")
                    continue
                reason = exc
            except (lmdb.Error, OSError) as exc:
                reason = exc
            break
        log.warning("embedding cache %s cannot be opened (%s): running without it, every vector is encoded",
                    self.path, reason)
        return None

    def _set_aside(self, reason: str) -> None:
        """Rename the damaged file (and its lock file) to ``<name>.corrupt-<time>``: a cache only costs time to
        rebuild, so an empty one replaces it; the damaged copy stays for a post-mortem."""
        try:
            if self._inode is not None and self.path.stat().st_ino != self._inode:
                return  # another process has already replaced it
            aside = self.path.with_name(f"{self.path.name}.corrupt-{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}")
            os.replace(self.path, aside)
        except FileNotFoundError:
            return
        except OSError as exc:
            log.warning("embedding cache %s is damaged (%s) and cannot be set aside (%s)", self.path, reason, exc)
            return
        lock = self.path.with_name(self.path.name + "-lock")
        try:
            os.replace(lock, aside.with_name(aside.name + "-lock"))
        except OSError:
            pass
        self._inode = None
        log.warning("embedding cache %s is damaged (%s): moved it to %s and started an empty cache; its vectors are "
                    "encoded again when needed", self.path, reason, aside.name)

    # ------------------------------------------------------------------------------------------ repair
    def reset(self, reason: str) -> None:
        """Set the damaged file aside and open an empty one (a read or write found damage inside it)."""
        with self.exclusive():
            if self.env is not None:
                self.env.close()
            self._set_aside(reason)
            self.env = self._open()

    def grow(self) -> bool:
        """Double the map (a write found it full); ``False`` when it cannot grow (the cap, or no address space)."""
        with self.exclusive():
            if self.env is None:
                return False
            current = self.env.info()["map_size"]
            if current >= MAX_MAP_SIZE:
                return False
            try:
                self.env.set_mapsize(min(MAX_MAP_SIZE, current * 2))
                return True
            except (lmdb.Error, MemoryError) as exc:
                _warn_once(f"grow:{self.path}", "embedding cache %s cannot grow its map beyond %d MiB (%s; an "
                           "address-space limit?): new vectors are not stored", self.path, current >> 20, exc)
                return False

    def adopt(self) -> None:
        """Map what another process grew the file to (LMDB refused a transaction with ``MapResizedError``)."""
        with self.exclusive():
            if self.env is None:
                return
            try:
                size = max(self.env.info()["map_size"], _map_size_for(self.path.stat().st_size))
                self.env.set_mapsize(size)
                return
            except (lmdb.Error, OSError, MemoryError):
                pass
            try:
                self.env.set_mapsize(0)  # LMDB's own rule: the size the other process recorded
            except (lmdb.Error, MemoryError) as exc:
                log.warning("embedding cache %s: another process grew it beyond what this one can map (%s): "
                            "running without it, every vector is encoded", self.path, exc)
                self.env.close()
                self.env = None


def _map_size_for(file_size: int) -> int:
    """A map with room to double ``file_size``: at least MIN_MAP_SIZE, a power of two, at most MAX_MAP_SIZE."""
    size = MIN_MAP_SIZE
    while size < 2 * file_size and size < MAX_MAP_SIZE:
        size *= 2
    return min(size, MAX_MAP_SIZE)


_STORES: dict[str, tuple[int, _Store]] = {}
_STORES_LOCK = threading.Lock()


def _store(path: Path) -> _Store:
    key = str(path.resolve())
    with _STORES_LOCK:
        held = _STORES.get(key)
        if held is not None and held[0] == os.getpid():  # a forked child opens its own
            return held[1]
        store = _Store(Path(key))
        _STORES[key] = (os.getpid(), store)
        return store


class EmbeddingCache:
    """Vectors of the base encoder, by text. ``embed(texts, encode_fn)`` returns cached rows, encoding only misses.

    Every read is verified (see the module docstring): a damaged entry is a miss, encoded again and rewritten; a
    damaged file is set aside and replaced by an empty cache. Neither ever fails the caller.
    """

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
        self._width = value_width(fingerprint.dim)
        self._store = _store(self.dir / DB_NAME)
        self.damaged_entries = 0  # entries whose checksum failed, in this object's reads
        self._import_shards()

    @property
    def path(self) -> Path:
        """The database file."""
        return self.dir / DB_NAME

    def __len__(self) -> int:
        with self._store.shared() as env:
            return 0 if env is None else int(env.stat()["entries"])

    def __contains__(self, text: str) -> bool:
        return not self.lookup([text])[1]

    def add(self, texts: Sequence[str], vectors: np.ndarray) -> None:
        """Store vectors for ``texts`` (rows in order) in one transaction; texts already stored keep their vector
        (unless it is damaged). A write that fails (a full disk, no address space to grow the map) is skipped with
        a warning: the vectors are encoded again next time."""
        vectors = np.asarray(vectors, dtype=np.float32)
        if vectors.shape != (len(texts), self.fingerprint.dim):
            raise InvalidInputError(
                f"cache: expected vectors of shape ({len(texts)}, {self.fingerprint.dim}), got {vectors.shape}")
        if not np.isfinite(vectors).all():
            raise InvalidInputError("cache: refusing to store non-finite vectors")
        self._put([_key(t) for t in texts], vectors)

    def _put(self, keys: list[bytes], vectors: np.ndarray) -> None:
        if not keys:
            return
        values = pack_values(keys, vectors)
        dim = self.fingerprint.dim
        for _ in range(64):
            action = None
            with self._store.shared() as env:
                if env is None:
                    return
                try:
                    with env.begin(write=True) as txn:
                        for k, v in zip(keys, values):
                            if not txn.put(k, v, overwrite=False) and not _intact(k, txn.get(k), dim):
                                txn.put(k, v)  # the stored one is damaged: replace it
                    return
                except lmdb.MapFullError:
                    action = "grow"
                except lmdb.MapResizedError:
                    action = "adopt"
                except _DAMAGE as exc:
                    action = f"{type(exc).__name__}: {exc}"
                except lmdb.Error as exc:  # a full disk, a read-only folder: a cache write is never worth failing on
                    _warn_once(f"write:{self.path}", "embedding cache %s: cannot store vectors (%s); they are "
                               "encoded again when next needed", self.path, exc)
                    return
            if action == "grow":
                if not self._store.grow():
                    return
            elif action == "adopt":
                self._store.adopt()
            else:
                self._store.reset(f"a write failed: {action}")
        _warn_once(f"write:{self.path}", "embedding cache %s: cannot store vectors (the write kept failing); they are "
                   "encoded again when next needed", self.path)

    def lookup(self, texts: Sequence[str]) -> tuple[np.ndarray, list[int]]:
        """Rows for ``texts`` (zeros where missing) and the indices of the missing ones.

        An entry whose checksum fails counts as missing (one warning per process)."""
        dim, width, row_bytes = self.fingerprint.dim, self._width, self._row_bytes
        out = np.zeros((len(texts), dim), dtype=np.float32)
        missing: list[int] = []
        raw = np.zeros((max(1, min(len(texts), _LOOKUP_CHUNK)), width), dtype=np.uint8)  # reused by every chunk
        flat = memoryview(raw).cast("B")
        for start in range(0, len(texts), _LOOKUP_CHUNK):
            stop = min(start + _LOOKUP_CHUNK, len(texts))
            keys = [_key(t) for t in texts[start:stop]]
            hits, legacy = self._read(keys, flat)
            found = np.zeros(stop - start, dtype=bool)
            found[hits] = True
            ok = found & verified(raw[:stop - start], keys)
            ok[legacy] = True
            damaged = int((found & ~ok).sum())
            if damaged:
                self.damaged_entries += damaged
                _warn_once(f"damaged:{self.path}", "embedding cache %s: %d entr%s failed the checksum (damaged "
                           "file?); treated as missing, encoded again and rewritten. Further ones are counted in "
                           "cache.damaged_entries, not logged", self.path, damaged, "y" if damaged == 1 else "ies")
            out[start:stop] = raw[:stop - start, :row_bytes].view("<f4")
            if not ok.all():
                bad = np.flatnonzero(~ok)
                out[start + bad] = 0.0
                missing.extend((bad + start).tolist())
        return out, missing

    def _read(self, keys: list[bytes], flat: memoryview) -> tuple[list[int], list[int]]:
        """Copy the values of ``keys`` into row ``j`` of ``flat``; the rows found and those in the old format."""
        width, row_bytes = self._width, self._row_bytes
        for _ in range(8):
            hits: list[int] = []
            legacy: list[int] = []
            action = None
            with self._store.shared() as env:
                if env is None:
                    return [], []
                try:
                    with env.begin(buffers=True) as txn:
                        get = txn.get
                        for j, k in enumerate(keys):
                            v = get(k)
                            if v is None:
                                continue
                            n = len(v)
                            if n == width:
                                flat[j * width:(j + 1) * width] = v
                                hits.append(j)
                            elif n == row_bytes:
                                flat[j * width:j * width + row_bytes] = v
                                hits.append(j)
                                legacy.append(j)
                    return hits, legacy
                except lmdb.MapResizedError:
                    action = "adopt"
                except _DAMAGE as exc:
                    action = f"{type(exc).__name__}: {exc}"
                except lmdb.Error as exc:
                    _warn_once(f"read:{self.path}", "embedding cache %s cannot be read (%s): treating it as empty",
                               self.path, exc)
                    return [], []
            if action == "adopt":
                self._store.adopt()
            else:
                self._store.reset(f"a read failed: {action}")
                return [], []
        return [], []

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
