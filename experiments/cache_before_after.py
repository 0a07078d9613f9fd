"""The base-vector cache before (shard files) and after (LMDB), measured in one run on this machine.

    python -m experiments.cache_before_after [--before eeca7c7] [--out benchmarks/results/cache.json]

Each side runs in its own process from its own source tree (the "before" tree is a temporary ``git worktree`` of
that commit) with its own empty ``JEPA_RAG_HOME``: insert throughput (20,000 768-d vectors in batches of 256, each
batch committed as the cache commits it), open time, bulk lookup throughput (the 13,960 MS MARCO texts training
reads), and 2 epochs of ``train/configs/seed/jepa_10k_e2.yaml`` on the MS MARCO pairs from the cache (the
precomputed vectors imported first, outside the timing). Writes a JSON with both sides and their ratios.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from benchmarks._support import cpu_model

ROOT = Path(__file__).resolve().parents[1]

MEASURE = r'''
import json, sys, time
import numpy as np
from jepa_rag import EmbeddingCache, Fingerprint, JEPAEncoder, load_msmarco_pairs, load_train_config
from jepa_rag.precomputed import import_msmarco_embeddings
from jepa_rag.train.loop import train

out = {}
fp = Fingerprint("bench/model", "ab" * 32, 384, True, 768)
n, batch = 20_000, 256
texts = [f"benchmark text {i}" for i in range(n)]
vecs = np.random.default_rng(0).normal(size=(n, 768)).astype(np.float32)
cache = EmbeddingCache(fp)
t = time.perf_counter()
for s in range(0, n, batch):
    cache.add(texts[s:s + batch], vecs[s:s + batch])
out["insert_per_s"] = n / (time.perf_counter() - t)
t = time.perf_counter()
cache = EmbeddingCache(fp)
out["open_s"] = time.perf_counter() - t
probe = [texts[i] for i in np.random.default_rng(1).choice(n, 13_960, replace=False)]
t = time.perf_counter()
got, missing = cache.lookup(probe)
out["lookup_per_s"] = len(probe) / (time.perf_counter() - t)
assert not missing

kw = {"precision": "fp32"} if "precision" in JEPAEncoder.from_pretrained.__code__.co_varnames else {}
mpnet = JEPAEncoder.from_pretrained("none", **kw)
pairs = load_msmarco_pairs()
import_msmarco_embeddings(mpnet, pairs, "auto")
cfg = load_train_config(sys.argv[1], [f"output_dir={sys.argv[2]}", "optim.epochs=2"])
result = train(cfg, resume=False, show_progress_bar=False, log=lambda *_: None)
out["train_2_epochs_s"] = result.seconds
print("RESULT " + json.dumps(out), flush=True)
'''


def measure(tree: Path, home: Path) -> dict:
    from jepa_rag.data import shared_data_dir

    env = {**os.environ, "PYTHONPATH": str(tree), "JEPA_RAG_HOME": str(home), "HF_HUB_OFFLINE": "1",
           "TOKENIZERS_PARALLELISM": "false", "JEPA_RAG_DATA": str(shared_data_dir())}
    # the models folder is shared so that neither side re-fetches the base model
    models = Path(os.environ.get("JEPA_RAG_HOME", Path.home() / ".cache" / "jepa_rag")) / "models"
    if models.is_dir():
        (home / "models").symlink_to(models)
    proc = subprocess.run([sys.executable, "-c", MEASURE, str(tree / "train/configs/seed/jepa_10k_e2.yaml"),
                           str(home / "run")], cwd=tree, env=env, capture_output=True, text=True, timeout=3600)
    if proc.returncode != 0:
        raise SystemExit(proc.stderr[-4000:])
    return json.loads(next(line for line in proc.stdout.splitlines() if line.startswith("RESULT "))[7:])



def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--before", default="eeca7c7", help="commit with the shard-file cache")
    p.add_argument("--out", default=str(ROOT / "runs" / "cache_before_after.json"))
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        subprocess.run(["git", "worktree", "add", "--detach", str(tmp / "before"), args.before], cwd=ROOT, check=True,
                       capture_output=True)
        try:
            (tmp / "home_before").mkdir()
            (tmp / "home_after").mkdir()
            before = measure(tmp / "before", tmp / "home_before")
            after = measure(ROOT, tmp / "home_after")
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(tmp / "before")], cwd=ROOT, check=False)
    report = {"cpu": cpu_model(), "cores": os.cpu_count(), "before_commit": args.before, "before": before,
              "after": after, "after_over_before": {k: after[k] / before[k] for k in after}}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
