"""CUDA check for corpus embedding: all-mpnet-base-v2 texts/s on one GPU at fp32 / fp16 / bf16, and how close the
half-precision vectors are to CPU fp32 ones. Meant for a lent GPU machine; needs only torch and
sentence-transformers (no jepa-rag install), so it runs in a bare environment.

    python experiments/cuda_check.py --model PATH_TO/all-mpnet-base-v2 [--texts 20000] [--corpus corpus.jsonl]

Texts: the first ``--texts`` documents of ``--corpus`` (a BEIR corpus.jsonl or JSONL of {title?, text}), else
synthetic passages of ~180 words (MS MARCO passages average ~60 words, SciFact abstracts ~200; length dominates
the cost, so say which was used). Prints one JSON object: texts/s per precision (after one warm-up batch, with
``torch.cuda.synchronize``), the minimum and mean cosine of each precision against CPU fp32 on ``--check``
texts, and the GPU-hours 100M passages of this length would take at each measured rate.
"""

from __future__ import annotations

import argparse
import json
import random
import time
from pathlib import Path

import numpy as np


def _texts(corpus: str | None, n: int) -> tuple[list[str], str]:
    if corpus:
        out = []
        with open(corpus, encoding="utf-8") as fh:
            for line in fh:
                if line.strip():
                    obj = json.loads(line)
                    out.append(f"{obj.get('title') or ''} {obj.get('text') or ''}".strip())
                if len(out) == n:
                    break
        return out, f"first {len(out)} documents of {corpus}"
    rng = random.Random(0)
    words = ("protein cell gene expression study patients results model data analysis effect treatment risk "
             "increase level response network method system function structure sample clinical trial").split()
    return [" ".join(rng.choice(words) for _ in range(180)) for _ in range(n)], f"{n} synthetic 180-word passages"


def _cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", required=True, help="a local sentence-transformers folder (all-mpnet-base-v2)")
    p.add_argument("--corpus", default=None)
    p.add_argument("--texts", type=int, default=20000)
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--check", type=int, default=256, help="texts compared against CPU fp32")
    p.add_argument("--precisions", default="fp32,fp16,bf16")
    args = p.parse_args(argv)

    import torch
    from sentence_transformers import SentenceTransformer

    if not torch.cuda.is_available():
        raise SystemExit("no CUDA device: run this on a GPU machine")
    texts, what = _texts(args.corpus, args.texts)
    model = SentenceTransformer(str(Path(args.model)), device="cuda", local_files_only=True).eval()
    dtypes = {"fp32": None, "fp16": torch.float16, "bf16": torch.bfloat16}
    rates, vectors = {}, {}
    for name in args.precisions.split(","):
        dtype = dtypes[name]

        def encode(batch: list[str], dtype=dtype) -> np.ndarray:
            with torch.inference_mode(), torch.autocast("cuda", dtype=dtype or torch.float32, enabled=dtype is not None):
                out = model.encode(batch, batch_size=args.batch_size, convert_to_tensor=True,
                                   show_progress_bar=False, normalize_embeddings=False)
            return out.float().cpu().numpy()

        encode(texts[:args.batch_size])  # warm-up: kernels, allocator
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        encode(texts)
        torch.cuda.synchronize()
        rates[name] = len(texts) / (time.perf_counter() - t0)
        vectors[name] = encode(texts[:args.check])
    cpu = SentenceTransformer(str(Path(args.model)), device="cpu", local_files_only=True).eval()
    reference = cpu.encode(texts[:args.check], batch_size=32, convert_to_numpy=True, show_progress_bar=False,
                           normalize_embeddings=False)
    result = {
        "gpu": torch.cuda.get_device_name(0), "torch": torch.__version__, "texts": what,
        "batch_size": args.batch_size, "max_seq_length": model.max_seq_length,
        "texts_per_s": {k: round(v, 1) for k, v in rates.items()},
        "cosine_vs_cpu_fp32": {k: {"min": round(float(_cosine(v, reference).min()), 6),
                                   "mean": round(float(_cosine(v, reference).mean()), 6)} for k, v in vectors.items()},
        "gpu_hours_for_100M": {k: round(1e8 / v / 3600, 1) for k, v in rates.items()},
    }
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
