"""Checkpoints: ``model.safetensors`` (the heads only) + ``adapter_config.json``. No pickle anywhere.

``adapter_config.json`` holds the format version, the full :class:`ModelConfig`, the base model's fingerprint,
the sha256 of ``model.safetensors`` (so a truncated or corrupt file is refused), and free-form ``training``
(train config, data hash, seed) and ``metrics`` sections, and an optional ``retrieval`` section (the hybrid
fusion chosen on dev for these heads, see :func:`jepa_rag.fusion.fusion_of`). Saving writes a temp folder,
fsyncs it, and renames it into place: a crash while saving never leaves a half-written checkpoint that loads.
Replacing a checkpoint sets the old folder aside first; a crash between the two renames is rolled back by the next
save (or :func:`repair_checkpoint`); a load in between reads the set-aside copy and changes nothing on disk, so the
path always gives the old checkpoint or the new one.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from .base_model import Fingerprint, sha256_file
from .config import ModelConfig, from_dict, to_dict
from .errors import CheckpointError, ConfigError
from .fsutil import fsync_dir, fsync_file, make_temp_dir

FORMAT = "jepa-rag-adapter"
FORMAT_VERSION = 1
WEIGHTS = "model.safetensors"
CONFIG = "adapter_config.json"


@dataclass
class Checkpoint:
    config: ModelConfig
    fingerprint: Fingerprint
    state_dict: dict[str, torch.Tensor]
    training: dict = field(default_factory=dict)
    metrics: dict = field(default_factory=dict)
    path: Path | None = None
    # how to retrieve with these heads: ``fusion`` (a jepa_rag.fusion.Fusion as a dict) and how dev chose it
    retrieval: dict = field(default_factory=dict)


def _previous(directory: Path) -> list[Path]:
    """The previous checkpoints that saves set aside (``.<name>.old<pid>``) while swapping in a new one."""
    return sorted(directory.parent.glob(f".{directory.name}.old*"))


def _committed_previous(directory: Path) -> Path | None:
    """The newest set-aside previous checkpoint that holds both files, if any."""
    previous = [p for p in _previous(directory) if (p / CONFIG).is_file() and (p / WEIGHTS).is_file()]
    return previous[-1] if previous else None


def repair_checkpoint(directory: str | os.PathLike) -> Path:
    """Put back a checkpoint that a save killed between its two renames left set aside; returns the path to load.

    Loading never changes anything on disk (it reads the set-aside copy where it lies); saving repairs first, and
    this is the explicit repair for a read-mostly deployment.
    """
    return _recover_interrupted_save(Path(directory).expanduser())


def _recover_interrupted_save(directory: Path) -> Path:
    """Undo a save killed between its two renames, which leaves the previous checkpoint only in ``.<name>.old<pid>``.

    A folder can't be renamed onto a non-empty folder, so replacing a checkpoint takes two renames (old aside, new
    in); in between, ``directory`` does not exist. The save did not complete, so the previous checkpoint is the
    committed one: it is renamed back (or, where that fails, e.g. on a read-only file system, read where it is).
    """
    if directory.exists():
        return directory
    previous = _committed_previous(directory)
    if previous is None:
        return directory
    try:
        os.replace(previous, directory)
    except OSError:
        return directory if directory.is_dir() else previous
    fsync_dir(directory.parent)
    return directory


def save_checkpoint(ckpt: Checkpoint, directory: str | os.PathLike) -> Path:
    """Write ``ckpt`` to ``directory`` atomically (replacing an existing checkpoint there)."""
    directory = Path(directory)
    directory.parent.mkdir(parents=True, exist_ok=True)
    _recover_interrupted_save(directory)
    tmp = make_temp_dir(directory.parent, f".{directory.name}.tmp")
    try:
        tensors = {k: v.detach().to("cpu").contiguous() for k, v in ckpt.state_dict.items()}
        save_file(tensors, str(tmp / WEIGHTS), metadata={"format": FORMAT})
        meta = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "weights_sha256": sha256_file(tmp / WEIGHTS),
            "model": to_dict(ckpt.config),
            "base_fingerprint": ckpt.fingerprint.to_dict(),
            "training": ckpt.training,
            "metrics": ckpt.metrics,
        }
        if ckpt.retrieval:
            meta["retrieval"] = ckpt.retrieval
        (tmp / CONFIG).write_text(json.dumps(meta, indent=2, sort_keys=False, default=str), encoding="utf-8")
        shutil.copymode(tmp / CONFIG, tmp / WEIGHTS)  # save_file makes it -rw-------; the config has the umask's mode
        for f in (tmp / WEIGHTS, tmp / CONFIG):
            fsync_file(f)
        fsync_dir(tmp)
        old = None
        if directory.exists():
            for stale in _previous(directory):  # left by a crash after a completed save: garbage
                shutil.rmtree(stale, ignore_errors=True)
            old = directory.with_name(f".{directory.name}.old{os.getpid()}")
            os.replace(directory, old)
        # a crash here leaves no folder at `directory`, only `old`: _recover_interrupted_save() puts it back
        os.replace(tmp, directory)
        fsync_dir(directory.parent)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    ckpt.path = directory
    return directory


def load_checkpoint(directory: str | os.PathLike) -> Checkpoint:
    """Read and verify a checkpoint folder; raises :class:`CheckpointError` naming what is wrong."""
    directory = Path(directory).expanduser()
    if not directory.exists():
        # a save killed between its two renames left the committed checkpoint set aside: read it where it lies
        # (reading never renames; the next save, or repair_checkpoint(), puts it back)
        previous = _committed_previous(directory)
        if previous is not None:
            return load_checkpoint(previous)
    if not directory.is_dir():
        raise CheckpointError(f"checkpoint not found: {directory} is not a folder")
    cfg_path, w_path = directory / CONFIG, directory / WEIGHTS
    for f in (cfg_path, w_path):
        if not f.is_file():
            raise CheckpointError(f"{directory}: not a jepa-rag checkpoint (missing {f.name})")
    try:
        meta = json.loads(cfg_path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"{cfg_path}: corrupt (not valid JSON: {exc})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise CheckpointError(f"{cfg_path}: not a jepa-rag adapter config (format={meta.get('format') if isinstance(meta, dict) else None!r})")
    version = meta.get("format_version")
    if version != FORMAT_VERSION:
        raise CheckpointError(
            f"{cfg_path}: unknown format_version {version!r}; this jepa-rag reads version {FORMAT_VERSION}. "
            "Upgrade jepa-rag or re-export the checkpoint.")
    digest = sha256_file(w_path)
    if digest != meta.get("weights_sha256"):
        raise CheckpointError(
            f"{w_path}: corrupt or truncated (sha256 {digest[:12]}… does not match the recorded "
            f"{str(meta.get('weights_sha256'))[:12]}…)")
    try:
        config = from_dict(ModelConfig, meta.get("model"))
        config.validate()
        fingerprint = Fingerprint.from_dict(meta["base_fingerprint"])
    except (ConfigError, KeyError, TypeError) as exc:
        raise CheckpointError(f"{cfg_path}: invalid model config or base fingerprint ({exc})") from None
    try:
        state = load_file(str(w_path))
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(f"{w_path}: cannot read safetensors ({exc})") from None
    broken = [k for k, v in state.items() if v.is_floating_point() and not bool(torch.isfinite(v).all())]
    if broken:
        raise CheckpointError(
            f"{w_path}: tensor {broken[0]!r} holds NaN or inf values (training diverged?); it would embed every text "
            "as NaN")
    if config.projection.in_dim != fingerprint.dim:
        raise CheckpointError(
            f"{cfg_path}: projection expects {config.projection.in_dim}-d input but the base model gives {fingerprint.dim}-d")
    retrieval = meta.get("retrieval") or {}
    if not isinstance(retrieval, dict):
        raise CheckpointError(f"{cfg_path}: 'retrieval' must be a mapping, got {type(retrieval).__name__}")
    if "fusion" in retrieval:
        from .fusion import Fusion  # local: fusion reads checkpoints too

        try:
            Fusion.from_dict(retrieval["fusion"])
        except ConfigError as exc:
            raise CheckpointError(f"{cfg_path}: invalid retrieval.fusion ({exc})") from None
    return Checkpoint(config, fingerprint, state, meta.get("training", {}), meta.get("metrics", {}), directory,
                      retrieval)
