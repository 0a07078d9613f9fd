"""Checkpoints: ``model.safetensors`` (the heads only) + ``adapter_config.json``. No pickle anywhere.

``adapter_config.json`` holds the format version, the full :class:`ModelConfig`, the base model's fingerprint,
the sha256 of ``model.safetensors`` (so a truncated or corrupt file is refused), ``config_sha256`` (see below), and
free-form ``training``
(train config, data hash, seed) and ``metrics`` sections, and an optional ``retrieval`` section (the hybrid
fusion chosen on dev for these heads, see :func:`jepa_rag.fusion.fusion_of`). Saving writes a temp folder,
fsyncs it, and renames it into place: a crash while saving never leaves a half-written checkpoint that loads.
Replacing a checkpoint sets the old folder aside first; a crash between the two renames is rolled back by the next
save (or :func:`repair_checkpoint`); a load in between reads the set-aside copy and changes nothing on disk, so the
path always gives the old checkpoint or the new one.

A checkpoint is input, so loading validates it before allocating anything: the config file's size and JSON nesting
are bounded, ``config_sha256`` (the sha256 of the canonical JSON of ``format``, ``format_version``,
``weights_sha256``, ``model`` and ``base_fingerprint``) must match, every size in the model config must be a finite
number within :data:`jepa_rag.config.MAX_DIM` and friends, and the weights' shapes must be the ones the config
implies, so the heads allocate no more than the verified weights file holds. ``training``, ``metrics`` and
``retrieval`` are records that tools rewrite in place (the fusion chosen on dev): they are outside the hash, and
``retrieval.fusion`` is validated on its own. Checkpoints written before ``config_sha256`` existed (no such key,
like the shipped default) load under the same bounds and shape checks, without the hash check. Every failure is a
:class:`CheckpointError`.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from .base_model import Fingerprint, sha256_file
from .config import MAX_DIM, ModelConfig, from_dict, to_dict
from .errors import CheckpointError, ConfigError
from .fsutil import fsync_dir, fsync_file, make_temp_dir

FORMAT = "jepa-rag-adapter"
FORMAT_VERSION = 1
WEIGHTS = "model.safetensors"
CONFIG = "adapter_config.json"
MAX_CONFIG_BYTES = 16 << 20  # the shipped default's is 23 KB (dev curves included)
MAX_JSON_DEPTH = 64
HASHED_KEYS = ("format", "format_version", "weights_sha256", "model", "base_fingerprint")


def config_sha256(meta: dict) -> str:
    """The integrity hash of a checkpoint config's :data:`HASHED_KEYS` (canonical JSON: sorted keys, no spaces)."""
    covered = {k: meta.get(k) for k in HASHED_KEYS}
    return hashlib.sha256(json.dumps(covered, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def _json_depth(value: object) -> int:
    depth, level = 0, [(value, 1)]
    while level:
        node, d = level.pop()
        depth = max(depth, d)
        if isinstance(node, dict):
            level.extend((v, d + 1) for v in node.values())
        elif isinstance(node, list):
            level.extend((v, d + 1) for v in node)
    return depth


def _read_config(cfg_path: Path) -> dict:
    """The parsed ``adapter_config.json``, refused (:class:`CheckpointError`) when too large, too deeply nested or
    not JSON."""
    size = cfg_path.stat().st_size
    if size > MAX_CONFIG_BYTES:
        raise CheckpointError(f"{cfg_path}: {size} bytes, more than a checkpoint config holds ({MAX_CONFIG_BYTES})")
    try:
        meta = json.loads(cfg_path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"{cfg_path}: corrupt (not valid JSON: {exc})") from None
    except RecursionError:
        raise CheckpointError(f"{cfg_path}: JSON nested too deeply (more than {MAX_JSON_DEPTH} levels)") from None
    if _json_depth(meta) > MAX_JSON_DEPTH:
        raise CheckpointError(f"{cfg_path}: JSON nested too deeply (more than {MAX_JSON_DEPTH} levels)")
    return meta


def _expected_shapes(config: ModelConfig) -> dict[str, tuple[int, ...]]:
    """The tensors a config's heads hold (:class:`jepa_rag.heads.MLPHead`: Linear, GELU, Dropout, Linear)."""
    out: dict[str, tuple[int, ...]] = {}
    for name, head in (("projection", config.projection), ("predictor", config.predictor)):
        if head is not None:
            h = head.hidden_dim
            out.update({f"{name}.net.0.weight": (h, head.in_dim), f"{name}.net.0.bias": (h,),
                        f"{name}.net.3.weight": (head.out_dim, h), f"{name}.net.3.bias": (head.out_dim,)})
    return out


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
        meta["config_sha256"] = config_sha256(json.loads(json.dumps(meta, default=str)))
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
    meta = _read_config(cfg_path)
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise CheckpointError(f"{cfg_path}: not a jepa-rag adapter config (format={meta.get('format') if isinstance(meta, dict) else None!r})")
    version = meta.get("format_version")
    if version != FORMAT_VERSION:
        raise CheckpointError(
            f"{cfg_path}: unknown format_version {version!r}; this jepa-rag reads version {FORMAT_VERSION}. "
            "Upgrade jepa-rag or re-export the checkpoint.")
    if "config_sha256" in meta and meta["config_sha256"] != config_sha256(meta):
        raise CheckpointError(
            f"{cfg_path}: the model config, base fingerprint or weights hash was changed after saving (config_sha256 "
            "does not match); re-save the checkpoint with jepa_rag.save_checkpoint instead of editing it")
    try:
        config = from_dict(ModelConfig, meta.get("model"))
        config.validate()
        fingerprint = Fingerprint.from_dict(meta["base_fingerprint"])
    except (ConfigError, KeyError, TypeError, ValueError, OverflowError) as exc:
        raise CheckpointError(f"{cfg_path}: invalid model config or base fingerprint ({exc})") from None
    if isinstance(fingerprint.dim, bool) or not isinstance(fingerprint.dim, int) or not 1 <= fingerprint.dim <= MAX_DIM:
        raise CheckpointError(f"{cfg_path}: base_fingerprint.dim must be an integer in [1, {MAX_DIM}], got "
                              f"{fingerprint.dim!r}")
    if config.projection.in_dim != fingerprint.dim:
        raise CheckpointError(
            f"{cfg_path}: projection expects {config.projection.in_dim}-d input but the base model gives {fingerprint.dim}-d")
    digest = sha256_file(w_path)
    if digest != meta.get("weights_sha256"):
        raise CheckpointError(
            f"{w_path}: corrupt or truncated (sha256 {digest[:12]}… does not match the recorded "
            f"{str(meta.get('weights_sha256'))[:12]}…)")
    try:
        state = load_file(str(w_path))
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(f"{w_path}: cannot read safetensors ({exc})") from None
    expected = _expected_shapes(config)
    shapes = {k: tuple(v.shape) for k, v in state.items()}
    if shapes != expected:
        wrong = sorted(set(shapes) ^ set(expected)) or [k for k in sorted(expected) if shapes[k] != expected[k]]
        raise CheckpointError(
            f"{w_path}: the weights do not match the model config (dimension mismatch: {wrong[0]!r} is "
            f"{shapes.get(wrong[0])} in the weights, {expected.get(wrong[0])} in the config)")
    broken = [k for k, v in state.items() if v.is_floating_point() and not bool(torch.isfinite(v).all())]
    if broken:
        raise CheckpointError(
            f"{w_path}: tensor {broken[0]!r} holds NaN or inf values (training diverged?); it would embed every text "
            "as NaN")
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
