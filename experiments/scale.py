"""How hybrid collections grow: ingest, writes, opening and queries at 10K, 100K and 1M documents.

    python -m experiments.scale [--sizes 10000 100000 1000000] [--queries 200] [--out benchmarks/results]

Writes ``scale.md``, ``scale.json`` and ``scale.png`` (growth plot) into ``--out``. No model runs: documents are
realistic text recombined from the BEIR SciFact and NFCorpus corpora (the first half of one abstract, the second half
of another, and an id word), their vectors the normalised sum of the two sources' precomputed all-mpnet-base-v2
vectors; queries are the two sets' real queries with their precomputed vectors. Each size gets a fresh embedded
Chroma collection wrapped in a HybridCollection (cosine, the default checkpoint's fusion), filled in batches of
1,000. Measured:

- ingest rate, hybrid (through HybridCollection) and dense only (plain chromadb ``add``, on the first 20,000);
- 100 documents added, then the first hybrid query (the write and the query), and whether one of the new
  documents is the top hit for its unique word;
- a new process: open the client and collection and answer its first hybrid query;
- hybrid vs dense latency (p50/p95), interleaved query by query in one process, ``n_results=10``, dense being plain
  ``collection.query`` with its default include;
- that process's peak RSS after dense queries only, then after hybrid queries too; the folders' size on disk.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("JEPA_RAG_DATA", ROOT.parent / "shared" / "data"))
BATCH = 1000


def _cpu() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return f"{line.split(':', 1)[1].strip()}, {os.cpu_count()} cores"
    except OSError:
        pass
    return f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores"


def _sources() -> tuple[list[str], np.ndarray, list[str], np.ndarray]:
    texts, vecs, queries, qvecs = [], [], [], []
    for name in ("scifact", "nfcorpus"):
        folder = DATA / "beir" / name
        rows = {}
        with open(folder / "corpus.jsonl", encoding="utf-8") as fh:
            for line in fh:
                d = json.loads(line)
                rows[d["_id"]] = f"{d.get('title', '')} {d['text']}".strip()
        qrows = {}
        with open(folder / "queries.jsonl", encoding="utf-8") as fh:
            for line in fh:
                d = json.loads(line)
                qrows[d["_id"]] = d["text"]
        npz = np.load(DATA / "embeddings" / "all-mpnet-base-v2" / f"{name}.npz", allow_pickle=False)
        for i, v in zip(npz["corpus_ids"], npz["corpus"]):
            texts.append(rows[i.decode()])
            vecs.append(v)
        for i, v in zip(npz["queries_ids"], npz["queries"]):
            queries.append(qrows[i.decode()])
            qvecs.append(v)
    return texts, np.asarray(vecs, np.float32), queries, np.asarray(qvecs, np.float32)


def make_docs(start: int, stop: int, texts: list[str], vecs: np.ndarray, word: str = "doc"):
    """Documents ``start..stop``: deterministic recombinations of two source abstracts plus an id word."""
    rng = np.random.default_rng(start)
    ids, docs, embs, metas = [], [], [], []
    for i in range(start, stop):
        a, b = rng.integers(0, len(texts), 2)
        ta, tb = texts[a], texts[b]
        docs.append(f"{ta[: len(ta) // 2]} {tb[len(tb) // 2:]} {word}{i}x")
        v = vecs[a] + vecs[b] + rng.normal(0, 0.02, vecs.shape[1]).astype(np.float32)
        embs.append(v / np.linalg.norm(v))
        ids.append(f"{word}-{i}")
        metas.append({"shelf": int(i % 10)})
    return ids, docs, np.asarray(embs, np.float32), metas


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _du_mb(path: Path) -> float:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 2**20


SERVE = textwrap.dedent("""
    import json, sys, time, resource
    t0 = time.perf_counter()
    import chromadb
    import numpy as np
    from jepa_rag.chroma_hybrid import HybridCollection
    cfg = json.loads(sys.argv[1])
    qvecs = np.load(cfg["qvecs"])
    queries = json.load(open(cfg["queries"]))
    t_import = time.perf_counter()
    client = chromadb.PersistentClient(path=cfg["path"])
    col = HybridCollection(client, client.get_collection(cfg["name"], embedding_function=None))
    col.hybrid_query(queries[:1], n_results=10, query_embeddings=qvecs[:1])
    t_first = time.perf_counter()
    dense, hybrid = [], []
    for i in range(len(queries)):
        q = qvecs[i:i + 1]
        t = time.perf_counter(); col.collection.query(query_embeddings=q, n_results=10); dense.append(time.perf_counter() - t)
    rss_dense = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    for i in range(len(queries)):  # interleaved: each query dense then hybrid
        q = qvecs[i:i + 1]
        t = time.perf_counter(); col.collection.query(query_embeddings=q, n_results=10); dense.append(time.perf_counter() - t)
        t = time.perf_counter(); col.hybrid_query(queries[i:i + 1], n_results=10, query_embeddings=q)
        hybrid.append(time.perf_counter() - t)
    rss_hybrid = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    d, h = np.asarray(dense[len(queries):]) * 1000, np.asarray(hybrid) * 1000
    print(json.dumps({"open_first_query_s": t_first - t_import, "import_s": t_import - t0,
                      "dense_p50_ms": float(np.percentile(d, 50)), "dense_p95_ms": float(np.percentile(d, 95)),
                      "hybrid_p50_ms": float(np.percentile(h, 50)), "hybrid_p95_ms": float(np.percentile(h, 95)),
                      "rss_dense_mb": rss_dense, "rss_hybrid_mb": rss_hybrid}))
""")


def measure(n: int, n_queries: int, work: Path, sources) -> dict:
    import chromadb

    from jepa_rag.chroma_hybrid import HybridCollection

    texts, vecs, queries, qvecs = sources
    path = work / f"db-{n}"
    client = chromadb.PersistentClient(path=str(path))
    name = f"scale-{n}"
    col = HybridCollection(client, client.create_collection(name, configuration={"hnsw": {"space": "cosine"}},
                                                            embedding_function=None))
    out: dict = {"n": n}
    t = time.perf_counter()
    for s in range(0, n, BATCH):
        ids, docs, embs, metas = make_docs(s, min(s + BATCH, n), texts, vecs)
        col.add(ids=ids, documents=docs, embeddings=embs, metadatas=metas)
        if s and s % 100_000 == 0:
            print(f"  {s} documents, {s / (time.perf_counter() - t):.0f}/s", flush=True)
    out["ingest_hybrid_docs_per_s"] = n / (time.perf_counter() - t)
    dense_n = min(n, 20_000)
    plain = client.create_collection(f"{name}-dense", configuration={"hnsw": {"space": "cosine"}},
                                     embedding_function=None)
    t = time.perf_counter()
    for s in range(0, dense_n, BATCH):
        ids, docs, embs, metas = make_docs(s, min(s + BATCH, dense_n), texts, vecs)
        plain.add(ids=ids, documents=docs, embeddings=embs, metadatas=metas)
    out["ingest_dense_docs_per_s"] = dense_n / (time.perf_counter() - t)
    client.delete_collection(f"{name}-dense")
    col.hybrid_query(queries[:1], n_results=10, query_embeddings=qvecs[:1])

    ids, docs, embs, metas = make_docs(n, n + 100, texts, vecs, word="fresh")
    t = time.perf_counter()
    col.add(ids=ids, documents=docs, embeddings=embs, metadatas=metas)
    t_write = time.perf_counter() - t
    res = col.hybrid_query([f"fresh{n + 37}x"], n_results=1, query_embeddings=embs[37:38])
    out["add100_s"] = t_write
    out["add100_then_query_s"] = time.perf_counter() - t
    out["fresh_word_found"] = res["ids"][0][:1] == [ids[37]]

    qfile, vfile = work / "queries.json", work / "qvecs.npy"
    qfile.write_text(json.dumps(queries[:n_queries]))
    np.save(vfile, qvecs[:n_queries])
    del col, client
    proc = subprocess.run([sys.executable, "-c", SERVE, json.dumps({"path": str(path), "name": name,
                                                                     "queries": str(qfile), "qvecs": str(vfile)})],
                          cwd=ROOT, capture_output=True, text=True, timeout=3600)
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr[-3000:])
    out.update(json.loads(proc.stdout.strip().splitlines()[-1]))
    lexical = path / "jepa_rag_lexical"
    out["disk_lexical_mb"] = _du_mb(lexical)
    out["disk_chroma_mb"] = _du_mb(path) - out["disk_lexical_mb"]
    out["hybrid_over_dense_p50"] = out["hybrid_p50_ms"] / out["dense_p50_ms"]
    out["hybrid_over_dense_p95"] = out["hybrid_p95_ms"] / out["dense_p95_ms"]
    shutil.rmtree(path, ignore_errors=True)
    return out


def growth(rows: list[dict], key: str) -> float | None:
    """The exponent b of ``key ~ n^b`` between the smallest and the largest size (1: linear, 0: flat)."""
    if len(rows) < 2 or rows[0][key] <= 0 or rows[-1][key] <= 0:
        return None
    return float(np.log(rows[-1][key] / rows[0][key]) / np.log(rows[-1]["n"] / rows[0]["n"]))


COLUMNS = [("ingest_hybrid_docs_per_s", "ingest, hybrid (docs/s)", "{:.0f}"),
           ("ingest_dense_docs_per_s", "ingest, dense only (docs/s)", "{:.0f}"),
           ("add100_then_query_s", "add 100, then first hybrid query (s)", "{:.2f}"),
           ("fresh_word_found", "new document found by its word", "{}"),
           ("open_first_query_s", "new process: open + first hybrid query (s)", "{:.2f}"),
           ("dense_p50_ms", "dense p50 (ms)", "{:.1f}"), ("dense_p95_ms", "dense p95 (ms)", "{:.1f}"),
           ("hybrid_p50_ms", "hybrid p50 (ms)", "{:.1f}"), ("hybrid_p95_ms", "hybrid p95 (ms)", "{:.1f}"),
           ("hybrid_over_dense_p95", "hybrid / dense p95", "{:.2f}"),
           ("rss_dense_mb", "query process peak RSS, dense only (MB)", "{:.0f}"),
           ("rss_hybrid_mb", "... after hybrid queries too (MB)", "{:.0f}"),
           ("disk_chroma_mb", "disk, Chroma (MB)", "{:.0f}"), ("disk_lexical_mb", "disk, lexical store (MB)", "{:.0f}")]


def report(rows: list[dict], out: Path, cpu: str, n_queries: int) -> None:
    lines = ["# Hybrid collections at scale", "",
             f"`python -m experiments.scale` on {cpu} (shared: other processes ran on the machine; see the commit). "
             f"Embedded Chroma, {n_queries} real BEIR queries, vectors precomputed (no model running). "
             "Growth = the exponent b of value ~ N^b between the smallest and largest size.", "",
             "| | " + " | ".join(f"{r['n']:,}" for r in rows) + " | growth |",
             "|---|" + "---|" * (len(rows) + 1)]
    for key, label, fmt in COLUMNS:
        g = growth(rows, key) if not isinstance(rows[0][key], bool) else None
        lines.append(f"| {label} | " + " | ".join(fmt.format(r[key]) for r in rows) + " | "
                     + ("" if g is None else f"{g:+.2f}") + " |")
    (out / "scale.md").write_text("\n".join(lines) + "\n")
    (out / "scale.json").write_text(json.dumps({"cpu": cpu, "queries": n_queries, "rows": rows}, indent=2) + "\n")
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    ns = [r["n"] for r in rows]
    for key, label in (("dense_p95_ms", "dense p95"), ("hybrid_p95_ms", "hybrid p95")):
        axes[0].plot(ns, [r[key] for r in rows], marker="o", label=label)
    axes[0].set(xscale="log", yscale="log", xlabel="documents", ylabel="ms", title="query latency")
    axes[1].plot(ns, [r["add100_then_query_s"] for r in rows], marker="o", label="add 100 + query")
    axes[1].plot(ns, [r["open_first_query_s"] for r in rows], marker="o", label="open + first query")
    axes[1].set(xscale="log", yscale="log", xlabel="documents", ylabel="s", title="writes and opening")
    for key, label in (("rss_dense_mb", "RSS dense"), ("rss_hybrid_mb", "RSS hybrid"),
                       ("disk_lexical_mb", "lexical disk")):
        axes[2].plot(ns, [r[key] for r in rows], marker="o", label=label)
    axes[2].set(xscale="log", yscale="log", xlabel="documents", ylabel="MB", title="memory and disk")
    for ax in axes:
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "scale.png", dpi=110)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    p.add_argument("--queries", type=int, default=200)
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results"))
    p.add_argument("--work", default=None, help="scratch folder (default: a temp folder)")
    args = p.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    work = Path(args.work or tempfile.mkdtemp(prefix="jepa-scale-"))
    sources = _sources()
    cpu = _cpu()
    rows = []
    for n in args.sizes:
        print(f"{n} documents ...", flush=True)
        rows.append(measure(n, args.queries, work, sources))
        print(json.dumps(rows[-1]), flush=True)
        report(rows, out, cpu, args.queries)
    print((out / "scale.md").read_text())


if __name__ == "__main__":
    main()
