"""Checkpoint writes are atomic: a SIGKILL at any point of a save leaves the old checkpoint or the new one.

A child process replaces checkpoint A by checkpoint B and is killed (1) just before each line of the save code in
turn, every line boundary of ``jepa_rag/checkpoint.py`` that a save runs, and (2) at random moments while saving
in a loop. After each kill, ``load_checkpoint`` on the path must give exactly A or exactly B; a half-written
checkpoint must never load, and no kill may leave nothing loadable.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from jepa_rag import load_checkpoint, save_checkpoint
from jepa_rag.checkpoint import repair_checkpoint

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="fork and SIGKILL are POSIX")

ROOT = Path(__file__).resolve().parents[2]


def _run_child(work: Path, *args: str) -> dict:
    proc = subprocess.run([sys.executable, "-m", "tests.reliability.checkpoint_crash_child", str(work), *args],
                          cwd=ROOT, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    line = next(line for line in proc.stdout.splitlines() if line.startswith("RESULT "))
    return json.loads(line[7:])


def _which(path: Path, refs: dict) -> str:
    """'A' or 'B': the reference checkpoint ``path`` loads as (weights and config); fails on anything else."""
    got = load_checkpoint(path)
    for name, ref in refs.items():
        if (got.training == ref.training and set(got.state_dict) == set(ref.state_dict)
                and all(torch.equal(got.state_dict[k], v) for k, v in ref.state_dict.items())):
            return name
    raise AssertionError(f"{path} loads as neither A nor B: training={got.training}")


@pytest.fixture(scope="module")
def line_kills(tmp_path_factory):
    work = tmp_path_factory.mktemp("ckpt_lines")
    return work, _run_child(work, "lines")


def test_a_kill_before_any_line_of_the_save_leaves_old_or_new(line_kills):
    work, result = line_kills
    refs = {"A": load_checkpoint(work / "A"), "B": load_checkpoint(work / "B")}
    total, outcome = result["line_events"], result["outcome"]
    assert total >= 20  # the tracer saw the save code
    assert all(outcome[str(n)] == "killed" for n in range(1, total + 1))
    assert outcome[str(total + 1)] == "exit 0"  # past the last line the save completes
    seen = {n: _which(work / "lines" / str(n) / "c", refs) for n in range(1, total + 2)}
    assert seen[1] == "A" and seen[total + 1] == "B"
    # once the new checkpoint is visible it stays visible: the save commits at exactly one point
    flips = [n for n in range(2, total + 2) if seen[n] != seen[n - 1]]
    assert len(flips) == 1, seen


def test_a_recovered_path_saves_and_loads_again(line_kills):
    """After any kill, the next save to the same path works, and leaves no set-aside copy behind."""
    work, result = line_kills
    b = load_checkpoint(work / "B")
    for n in range(1, result["line_events"] + 2):
        path = work / "lines" / str(n) / "c"
        save_checkpoint(b, path)
        assert load_checkpoint(path).training == b.training
        assert not list(path.parent.glob(".c.old*"))


def test_random_kills_while_saving_in_a_loop(tmp_path):
    result = _run_child(tmp_path, "random", "15")
    refs = {"A": load_checkpoint(tmp_path / "A"), "B": load_checkpoint(tmp_path / "B")}
    assert set(result["outcome"].values()) == {"killed"}
    for r in result["outcome"]:
        _which(tmp_path / "random" / r / "c", refs)


def test_loading_after_a_kill_changes_nothing_on_disk(line_kills):
    """A load reads the set-aside copy where it lies; only a save or repair_checkpoint() puts it back."""
    work, result = line_kills
    for n in range(1, result["line_events"] + 2):
        parent = work / "lines" / str(n)
        scratch = work / "readonly_check" / str(n)
        if scratch.exists():
            continue
        shutil.copytree(parent, scratch)
        before = sorted(str(p.relative_to(scratch)) for p in scratch.rglob("*"))
        load_checkpoint(scratch / "c")
        assert sorted(str(p.relative_to(scratch)) for p in scratch.rglob("*")) == before
        repaired = repair_checkpoint(scratch / "c")
        assert repaired == scratch / "c" and load_checkpoint(repaired).training == load_checkpoint(parent / "c").training
