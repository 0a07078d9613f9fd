"""Every code example in the README runs (python blocks are exec'd, bash lines are run).

These use the real default base model (all-mpnet-base-v2, fetched and verified once) and the shared data folder,
as a user following the README would.
"""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BLOCK = re.compile(r"```(\w+)\n(.*?)```", re.DOTALL)


def _blocks(lang: str) -> list[str]:
    return [body for kind, body in BLOCK.findall((ROOT / "README.md").read_text()) if kind == lang]


def _commands() -> list[str]:
    cmds = []
    for body in _blocks("bash"):
        for line in body.splitlines():
            line = line.split("  #")[0].strip()
            if line and not line.startswith("#"):
                cmds.append(line)
    return cmds


def test_readme_has_the_two_setup_commands():
    cmds = _commands()
    assert cmds[:2] == ["make demo", "make test"]


@pytest.mark.parametrize("index", range(len(_blocks("python"))))
def test_python_example(index):
    exec(compile(_blocks("python")[index], f"README.md python block {index}", "exec"), {})


@pytest.mark.parametrize("command", [c for c in _commands() if not c.startswith("make ")])
def test_bash_example(command, tmp_path):
    argv = shlex.split(command)
    assert argv[0] == "python", command
    argv[0] = sys.executable
    argv = [str(tmp_path / a) if a.startswith("runs/") else a for a in argv]  # outputs go to a temp folder
    proc = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]


def test_make_demo_target_runs_the_demo():
    """`make demo` runs `python -m jepa_rag.demo`, which the integration tests execute end to end."""
    text = (ROOT / "Makefile").read_text()
    assert re.search(r"^demo: .*\n\t\$\(BIN\)/python -m jepa_rag\.demo", text, re.MULTILINE)
