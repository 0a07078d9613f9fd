"""How long ``jepa-rag --help`` and each subcommand's ``--help`` take, against a bare interpreter (issue 22).

    HF_HUB_OFFLINE=1 python -m pytest -q benchmarks/test_cli_startup.py -p no:cacheprovider

Each command runs as a fresh process, alternated round by round with ``python -c pass`` so machine noise hits both
alike (:func:`benchmarks._support.interleave`). The gate is the issue's: the best round of each under 1 s. Numbers
go to pytest-benchmark's ``extra_info``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks._support import interleave, ratios

ROUNDS = 5
MAX_SECONDS = 1.0
GATED = (["--help"], ["ingest", "--help"], ["query", "--help"], ["demo", "--help"], ["embed", "--help"],
         ["train", "--help"], ["evaluate", "--help"])


def _runner(cmd: list[str]):
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}

    def run():
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, env=env, timeout=120)
    return run


def test_help_starts_fast(benchmark):
    script = Path(sys.executable).with_name("jepa-rag")
    if not script.is_file():
        pytest.skip(f"the jepa-rag console script is not installed next to {sys.executable}")
    sides = {"python": _runner([sys.executable, "-c", "pass"])}
    sides.update({" ".join(args): _runner([str(script), *args]) for args in GATED})
    times = benchmark.pedantic(lambda: interleave(sides, ROUNDS), rounds=1, iterations=1)
    best = {name: min(t) for name, t in times.items()}
    benchmark.extra_info.update({f"seconds_min[{name}]": round(s, 3) for name, s in best.items()})
    benchmark.extra_info.update({f"ratio_to_python[{name}]": round(ratios(t, times["python"])[1], 2)
                                 for name, t in times.items() if name != "python"})
    slow = {name: s for name, s in best.items() if s >= MAX_SECONDS}
    assert not slow, f"--help over {MAX_SECONDS} s (best of {ROUNDS}): {slow}"
