"""Child process for ``test_checkpoint_atomic``: replaces checkpoint A by B and dies by SIGKILL at chosen points.

``python -m tests.reliability.checkpoint_crash_child WORK lines``  — for every line boundary N of the save code
(``jepa_rag/checkpoint.py``), a forked process replaces A by B in ``WORK/lines/N/c`` and SIGKILLs itself just
before line N runs. ``... WORK random R`` — R forked processes each save B, A, B, ... in a loop into
``WORK/random/<r>/c`` and are SIGKILLed after a random delay. ``WORK/A`` and ``WORK/B`` hold the two reference
checkpoints. Prints one ``RESULT {json}`` line. POSIX only (fork, SIGKILL).
"""

from __future__ import annotations

import json
import os
import random
import signal
import sys
import time
from pathlib import Path

import torch

from jepa_rag import Checkpoint, Fingerprint, HeadConfig, ModelConfig, save_checkpoint
from jepa_rag import checkpoint as ckpt_mod
from jepa_rag.heads import JEPAHeads

FP = Fingerprint("toy/model", "ab" * 32, 128, True, 64)


def make(seed: int) -> Checkpoint:
    d = FP.dim
    cfg = ModelConfig(base_model="toy/model", projection=HeadConfig(d, d), predictor=HeadConfig(d, d),
                      query_route="predictor")
    torch.manual_seed(seed)
    return Checkpoint(cfg, FP, JEPAHeads(cfg).state_dict(), training={"seed": seed})


def trace_save(ckpt: Checkpoint, path: Path, kill_at: int | None) -> int:
    """Save with a line tracer on the checkpoint module: count line events, SIGKILL this process at ``kill_at``."""
    count = 0
    target = ckpt_mod.__file__

    def local(frame, event, arg):
        nonlocal count
        if event == "line":
            count += 1
            if count == kill_at:
                os.kill(os.getpid(), signal.SIGKILL)
        return local

    sys.settrace(lambda frame, event, arg: local if frame.f_code.co_filename == target else None)
    try:
        save_checkpoint(ckpt, path)
    finally:
        sys.settrace(None)
    return count


def fork(fn) -> int:
    pid = os.fork()
    if pid == 0:
        try:
            fn()
        finally:
            os._exit(0)
    return pid


def killed(status: int) -> bool:
    return os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL


def main(work: Path, mode: str, rounds: int = 20) -> dict:
    a, b = make(1), make(2)
    save_checkpoint(a, work / "A")
    save_checkpoint(b, work / "B")
    if mode == "lines":
        save_checkpoint(a, work / "count" / "c")
        total = trace_save(b, work / "count" / "c", None)
        outcome = {}
        for n in range(1, total + 2):
            path = work / "lines" / str(n) / "c"
            save_checkpoint(a, path)
            pid = fork(lambda n=n, path=path: trace_save(b, path, n))
            _, status = os.waitpid(pid, 0)
            outcome[n] = "killed" if killed(status) else f"exit {os.waitstatus_to_exitcode(status)}"
        return {"line_events": total, "outcome": outcome}
    rng = random.Random(0)
    outcome = {}
    for r in range(rounds):
        path = work / "random" / str(r) / "c"
        save_checkpoint(a, path)

        def loop(path=path):
            while True:
                save_checkpoint(b, path)
                save_checkpoint(a, path)

        pid = fork(loop)
        time.sleep(rng.uniform(0.002, 0.06))
        os.kill(pid, signal.SIGKILL)
        _, status = os.waitpid(pid, 0)
        outcome[r] = "killed" if killed(status) else f"exit {os.waitstatus_to_exitcode(status)}"
    return {"outcome": outcome}


if __name__ == "__main__":
    torch.set_num_threads(1)
    work, mode = Path(sys.argv[1]), sys.argv[2]
    result = main(work, mode, *(int(x) for x in sys.argv[3:]))
    print("RESULT " + json.dumps(result), flush=True)
