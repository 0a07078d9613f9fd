"""Shared helpers for the benchmarks: interleaved A/B timing, result files, skip-with-reason checks."""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

RESULTS = Path(__file__).resolve().parent / "results"  # the committed results (read-only during a normal run)


def cpu_model() -> str:
    """The CPU's model name, cores and native bf16 flags (every speed number says which CPU it was measured on)."""
    try:
        info = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor() or platform.machine() or "unknown"
    name = next((line.split(":", 1)[1].strip() for line in info.splitlines() if line.startswith("model name")),
                platform.processor() or "unknown")
    extra = [f for f in ("avx512_bf16", "amx_bf16") if f in info]
    return f"{name} ({os.cpu_count()} cores{', ' + ', '.join(extra) if extra else ''})"


def _version(module: str) -> str:
    try:
        from importlib.metadata import version

        return version(module)
    except Exception:  # noqa: BLE001 - a missing package is reported as such
        return "not installed"


def machine_info() -> dict:
    """The facts a timing depends on: CPUs, torch threads, Python and library versions."""
    info = {
        "cpus": os.cpu_count(),
        "cpu_model": cpu_model(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        **{name: _version(name) for name in ("torch", "sentence-transformers", "transformers", "chromadb", "numpy",
                                             "onnxruntime", "onnx")},
    }
    try:
        info["load_avg_1min"] = round(os.getloadavg()[0], 2)  # > cpus means another job shared the machine
    except OSError:
        pass
    if "torch" in sys.modules:
        import torch

        info["torch_threads"] = torch.get_num_threads()
    return info


def output_dir() -> Path:
    """Where this run writes: ``$JEPA_RAG_BENCH_OUT``, else the untracked ``runs/benchmarks/``.

    Why: a normal ``pytest benchmarks/`` must leave the checkout clean; ``make report`` points this at
    ``benchmarks/results`` to regenerate the committed report on purpose."""
    out = Path(os.environ.get("JEPA_RAG_BENCH_OUT") or Path(__file__).resolve().parent.parent / "runs" / "benchmarks")
    out.mkdir(parents=True, exist_ok=True)
    return out


def interleave(sides: dict[str, Callable[[], object]], rounds: int, warmup: int = 1) -> dict[str, list[float]]:
    """Time each side once per round, alternating the order (A B, B A, ...) so drift and a neighbour's load hit
    both sides alike. ``warmup`` untimed calls of each side first. Returns seconds per side, one per round."""
    names = list(sides)
    for _ in range(warmup):
        for n in names:
            sides[n]()
    times: dict[str, list[float]] = {n: [] for n in names}
    for r in range(rounds):
        for n in (names if r % 2 == 0 else names[::-1]):
            t0 = time.perf_counter()
            sides[n]()
            times[n].append(time.perf_counter() - t0)
    return times


def ratios(num: list[float], den: list[float]) -> tuple[float, float]:
    """(median of the per-round ratios num/den, ratio of the fastest rounds)."""
    return statistics.median(a / b for a, b in zip(num, den)), min(num) / min(den)


def percentile(values: list[float], q: float) -> float:
    s = sorted(values)
    if not s:
        return float("nan")
    k = (len(s) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


def save_result(name: str, data: dict, command: str) -> Path:
    """Write ``<output_dir>/<name>.json`` with the machine, the command and the time it was measured."""
    data = {**data, "command": command, "when": _dt.datetime.now().strftime("%Y-%m-%d %H:%M"),
            "machine": machine_info()}
    path = output_dir() / f"{name}.json"
    path.write_text(json.dumps(data, indent=2))
    return path


def need_default_checkpoint() -> None:
    from jepa_rag.encoder import DEFAULT_CHECKPOINT

    if not DEFAULT_CHECKPOINT.is_dir():
        pytest.skip(f"no default checkpoint shipped at {DEFAULT_CHECKPOINT}")


def require_beir_vectors(encoder, dataset: str, full_mode: bool) -> None:
    """Skip (saying what is missing) when a default-mode run would have to re-encode a whole BEIR set.

    Under ``--full`` re-encoding is the point, so nothing is required.
    """
    from jepa_rag.data import beir_folder, load_beir
    from jepa_rag.errors import DataNotFoundError
    from jepa_rag.precomputed import find_embeddings

    try:
        folder = beir_folder(dataset)
    except DataNotFoundError as exc:
        pytest.skip(f"BEIR {dataset} not found: {exc}")
    if full_mode or encoder.cache is None:
        return
    if find_embeddings("auto", f"{folder.name}.npz", encoder.fingerprint.model_id) is not None:
        return
    ds = load_beir(folder, "test")
    _, texts = ds.corpus_texts()
    _, missing = encoder.cache.lookup(texts + list(ds.queries.values()))
    if missing:
        pytest.skip(f"no precomputed base embeddings for {dataset} (embeddings/<model>/{folder.name}.npz in the shared "
                    f"data folder) and {len(missing)} of its texts are not cached: re-encoding them does not fit the "
                    "default run's time budget; run `pytest benchmarks --full` to re-encode with the real model")
