"""Write ``REPORT.md`` (+ ``speed.png``, ``variants.png``) from the results JSON files in a folder.

    python -m experiments.report                      # benchmarks/results/REPORT.md (``make report`` runs the
                                                      # benchmarks into benchmarks/results first)
    python -m experiments.report runs/benchmarks      # the report of a plain ``pytest benchmarks`` run

Only numbers found in those JSON files appear in the report; each JSON was written by committed code, whose
command the report names next to its table. A missing file leaves its section out (with a line saying so).
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
from pathlib import Path

from benchmarks._support import RESULTS, machine_info
from experiments.table import render_tables

BENCH_CMD = "HF_HUB_OFFLINE=1 python -m pytest -q benchmarks -p no:cacheprovider"


# --------------------------------------------------------------------------------------------- machine
def _machine_line(m: dict | None) -> str:
    if not m:
        return "machine not recorded"
    return (f"{m.get('cpus')} CPU cores ({m.get('cpu_model', '?')}), {m.get('torch_threads', '?')} torch threads, "
            f"Python {m.get('python')}, torch {m.get('torch')}, sentence-transformers {m.get('sentence-transformers')}"
            + (f"; load average {m['load_avg_1min']} when saved" if "load_avg_1min" in m else ""))


# --------------------------------------------------------------------------------------------- helpers
def _load(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _f(x, nd: int = 4) -> str:
    if x is None:
        return "—"
    if isinstance(x, (int, float)):
        return f"{x:.{nd}f}"
    return str(x)


def _p(x) -> str:
    return "—" if x is None else f"{x:.3g}"


def _mean_std(values: list[float]) -> tuple[float, float]:
    n = len(values)
    m = sum(values) / n
    s = (sum((v - m) ** 2 for v in values) / (n - 1)) ** 0.5 if n > 1 else 0.0
    return m, s


def mean_std(values: list[float]) -> str:
    """``"m ± s"`` (4 decimals; sample std, 0 for one value): every results table uses this."""
    m, s = _mean_std(values)
    return f"{m:.4f} ± {s:.4f}"


# --------------------------------------------------------------------------------------------- sections
def _quality(res: Path) -> list[str]:
    rows = {ds: _load(res / f"quality_{ds}.json") for ds in ("scifact", "nfcorpus")}
    rows = {k: v for k, v in rows.items() if v}
    out = ["## Quality gate: vanilla all-mpnet-base-v2 vs the shipped default checkpoint", ""]
    if not rows:
        return out + ["No `quality_*.json` yet: run `pytest benchmarks/test_quality.py`.", ""]
    modes = {r.get("mode", "precomputed") for r in rows.values()}
    out += [
        "Command: `HF_HUB_OFFLINE=1 python -m pytest -q benchmarks/test_quality.py -p no:cacheprovider`"
        + (" `--full`" if modes == {"full"} else "") + " (writes `quality_<set>.json`). BEIR test splits, standard "
        "protocol (cosine, pytrec_eval, `ignore_identical_ids`); p = paired t-test / Wilcoxon over per-query NDCG@10. "
        "Base vectors: " + ", ".join(sorted(
            "re-encoded with the real model (`--full`)" if m == "full" else
            "precomputed, imported after a 16-text re-encoding check" for m in modes)) + ".",
        "The gate fails if vanilla drifts more than 0.003 from 0.6557 / 0.3329, or if the checkpoint is significantly "
        "(p < 0.05) worse than vanilla.",
        "",
        "| data set | vanilla NDCG@10 | default NDCG@10 | Δ | p (t-test) | p (Wilcoxon) | n | vanilla R@100 | default R@100 | vanilla MRR@10 | default MRR@10 |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for ds, r in rows.items():
        v, c, t = r["vanilla"], r["checkpoint"], r["paired"]
        out.append(f"| {ds} | {_f(v['ndcg@10'])} | {_f(c['ndcg@10'])} | {c['ndcg@10'] - v['ndcg@10']:+.4f} | "
                   f"{_p(t.get('p_ttest'))} | {_p(t.get('p_wilcoxon'))} | {t.get('n', '—')} | {_f(v.get('recall@100'))} | "
                   f"{_f(c.get('recall@100'))} | {_f(v.get('mrr@10'))} | {_f(c.get('mrr@10'))} |")
    return out + [""]


# fast paths the package offers as an option once the benchmark shows they keep quality
ADOPTED = {"torch bf16 autocast": "adopted as `JEPAEncoder.from_pretrained(..., precision=\"bf16\")` (and the same "
                                  "argument on every integration, `python -m jepa_rag.evaluate --precision bf16`)"}


def _speed(res: Path) -> list[str]:
    cmd = "HF_HUB_OFFLINE=1 python -m pytest -q benchmarks/test_speed.py -p no:cacheprovider"
    out = ["## Speed", "",
           f"Command: `{cmd}` (`-k <name>` for one test; writes `speed_<name>.json`). The machine is shared and noisy, so "
           "each ratio compares two sides measured in the same run, interleaved round by round (A B, then B A, ...); "
           "the ratio reported is the median of the per-round ratios, with the ratio of the fastest rounds next to it.",
           ""]
    found = False

    enc = _load(res / "speed_encode_overhead.json")
    if enc:
        found = True
        out += ["### Encode overhead of the heads", "",
                f"{enc['n_texts']} {enc['texts']}; the default checkpoint's `encode_queries` (base + heads, cache off) vs "
                f"plain `SentenceTransformer.encode` (batch {enc['batch_size']}); {enc['rounds']} interleaved rounds. "
                f"Measured on: {_machine_line(enc.get('machine'))}.", "",
                "| side | median s | min s | texts/s (median) |", "|---|---|---|---|",
                f"| plain sentence-transformers | {enc['plain_s_median']:.3f} | {enc['plain_s_min']:.3f} | "
                f"{enc['n_texts'] / enc['plain_s_median']:.1f} |",
                f"| jepa-rag encode_queries (default checkpoint) | {enc['jepa_s_median']:.3f} | {enc['jepa_s_min']:.3f} | "
                f"{enc['n_texts'] / enc['jepa_s_median']:.1f} |", "",
                f"**Ratio jepa-rag / plain: {enc['ratio_median']:.3f}** (median of per-round ratios; fastest rounds: "
                f"{enc['ratio_min']:.3f}). Target ≤ {enc['target']}; the benchmark fails above {enc['assert_max']} "
                f"(noise allowance). The heads alone (on {enc['n_texts']} base vectors) take {enc['heads_only_ms']:.2f} ms.",
                ""]

    tr = _load(res / "speed_training.json")
    if tr:
        found = True
        ex = tr["extrapolation"]
        out += ["### Training: re-encoding every batch (the original research) vs cached base vectors", "",
                f"A slice of {tr['n_pairs']} MS MARCO pairs, batch {tr['batch_size']}, 1 epoch, the seed recipe's heads "
                f"and losses (`{tr['config']}`). *Re-encoding*: every batch runs the frozen base over its queries and "
                "positives, then heads + loss + AdamW step. *Cached*: the same batches read from the embedding cache, then "
                f"the same step. Negatives: the batch's positives rolled by one (no extra encoding on either side). "
                f"{tr['rounds']} interleaved rounds (the cached epoch repeated {tr['cached_repeats']}× per round). "
                f"Measured on: {_machine_line(tr.get('machine'))}.", "",
                "| side | s per epoch (median) | s per pair |", "|---|---|---|",
                f"| re-encoding every batch | {tr['reencode_epoch_s_median']:.3f} | {tr['reencode_s_per_pair']:.4f} |",
                f"| cached base vectors | {tr['cached_epoch_s_median']:.4f} | {tr['cached_s_per_pair']:.6f} |", "",
                f"**Speed-up of a training epoch from cache: {tr['speedup_median']:.0f}×** (fastest rounds: "
                f"{tr['speedup_min']:.0f}×). Extrapolated to {ex['epochs']} epochs over {ex['pairs']:,} pairs: re-encoding "
                f"≈ {ex['reencode_s']:.0f} s ({ex['reencode_s'] / 60:.1f} min), cached steps ≈ {ex['cached_s']:.1f} s, plus a "
                f"one-time cache fill ≈ {ex['cache_fill_s']:.0f} s (one encoding pass; free when precomputed vectors are "
                "imported, and shared by every later run, seed and recipe). Per-batch losses of the two sides agree to "
                f"{tr['loss_max_rel_diff']:.1e} (relative) from the same initialisation.", ""]
        two = (_load(res / "pytest_benchmarks.json") or {}).get(
            "benchmarks/test_training_speed.py::test_two_epochs_from_cached_embeddings")
        if two:
            out += [f"The real thing, for comparison: `python -m pytest benchmarks/test_training_speed.py` trains 2 epochs "
                    f"on all {two['extra_info'].get('train_pairs', '?')} pairs from cached vectors (the full `train()`: hard-"
                    f"negative mining, dev evaluation each epoch, checkpoints) in {two['seconds']:.1f} s ({two['outcome']}, "
                    f"target < 60 s; {two['when']}).", ""]

    ch = _load(res / "speed_chroma.json")
    if ch:
        found = True
        out += ["### Chroma: ingest throughput and query latency", "",
                f"`jepa_rag.chroma.JEPAEmbeddingFunction()` (default checkpoint) on an embedded `PersistentClient` and "
                f"on a local `chroma run` server (127.0.0.1, HTTP client); chromadb {ch.get('machine', {}).get('chromadb')}. "
                f"Warm ingest: {ch['warm_docs']} SciFact documents whose base vectors are cached (so it times cache "
                f"lookup + heads + Chroma), batches of {ch['add_batch']}, {ch['rounds']} interleaved rounds, fresh "
                f"collection each. Cold ingest: {ch['cold_docs']} other documents with an empty cache (base model "
                f"runs). Queries: {ch['n_queries']} SciFact test queries, one `collection.query(query_texts=[q], "
                f"n_results={ch['n_results']})` each, against the warm collection ({ch['warm_docs']} docs); cold = the "
                "query's base vector is not cached (base + heads + search), warm = it is (heads + search), search only = "
                "`query(query_embeddings=...)`. "
                f"Measured on: {_machine_line(ch.get('machine'))}.", "",
                "| client | warm ingest docs/s | of which embedding s / 1000 docs | cold ingest docs/s | query p50 / p95 ms (cold) | query p50 / p95 ms (warm) | search only p50 / p95 ms |",
                "|---|---|---|---|---|---|---|"]
        for name, r in ch["clients"].items():
            out.append(f"| {name} | {r['warm_ingest_docs_per_s']:.0f} | {ch['embed_only_s_per_1000']:.2f} | "
                       f"{r['cold_ingest_docs_per_s']:.1f} | {r['query_cold_ms']['p50']:.1f} / {r['query_cold_ms']['p95']:.1f} | "
                       f"{r['query_warm_ms']['p50']:.1f} / {r['query_warm_ms']['p95']:.1f} | "
                       + (f"{r['search_only_ms']['p50']:.1f} / {r['search_only_ms']['p95']:.1f} |" if "search_only_ms" in r else "— |"))
        out.append("")

    fp = _load(res / "speed_cpu_fast_path.json")
    if fp:
        found = True
        nd = _load(res / "speed_cpu_fast_path_ndcg.json")
        m = fp.get("machine", {})
        out += ["### CPU fast path for the frozen base", "",
                f"{fp['n_texts']} texts ({fp['texts']}), batch {fp['batch_size']}, {fp['rounds']} interleaved rounds of all "
                f"variants against fp32 PyTorch; onnxruntime {m.get('onnxruntime', '?')}, onnx {m.get('onnx', '?')}"
                + (f" (imported from `{fp['onnx_from']}`)" if fp.get("onnx_from") else "") + ". "
                f"Measured on: {_machine_line(m)}.", "",
                "| variant | median s | speed-up vs fp32 (median of rounds) | fastest rounds | min cosine to fp32 | mean cosine | same top-1 passage | SciFact NDCG@10 Δ |",
                "|---|---|---|---|---|---|---|---|",
                f"| fp32 PyTorch (sentence-transformers) | {fp['fp32_s_median']:.3f} | 1.00× | 1.00× | 1 | 1 | — | "
                f"{'%.4f' % nd['fp32'] if nd else '—'} |"]
        decisions = []
        limit = fp.get("ndcg_max_change", 0.002)
        for name, v in fp["variants"].items():
            if v.get("error"):
                out.append(f"| {name} | — | unavailable: {v['error']} | | | | | |")
                decisions.append(f"{name}: not adopted (unavailable here)")
                continue
            d = (nd or {}).get("variants", {}).get(name)
            skipped = (nd or {}).get("skipped", {}).get(name)
            nd_cell = f"{d['delta']:+.4f} ({d['ndcg@10']:.4f})" if d else ("not measured" if not skipped else f"not measured: {skipped}")
            out.append(f"| {name} | {v['s_median']:.3f} | {v['speedup_median']:.2f}× | {v['speedup_min']:.2f}× | "
                       f"{v['cos_min']:.5f} | {v['cos_mean']:.5f} | {v['top1_agree']} | {nd_cell} |")
            if v["speedup_median"] < 1.05:
                decisions.append(f"{name}: not adopted: no speed-up here ({v['speedup_median']:.2f}×)")
            elif v["cos_min"] < fp.get("min_agreement", 0.99):
                decisions.append(f"{name}: not adopted: {v['speedup_median']:.2f}× faster, but its vectors stray from "
                                 f"fp32's (min cosine {v['cos_min']:.3f}), so retrieval quality cannot hold")
            elif not d:
                why = f"; {skipped}" if skipped else "; `--full` measures it"
                decisions.append(f"{name}: not adopted: {v['speedup_median']:.2f}× faster and close to fp32, but its "
                                 f"SciFact NDCG@10 change was not measured (the rule needs |Δ| ≤ {limit}{why})")
            else:
                ok = abs(d["delta"]) <= limit
                verdict = ADOPTED.get(name, "meets the rule, but no option was built for it") if ok else "not adopted"
                decisions.append(f"{name}: {verdict}: {v['speedup_median']:.2f}× faster, SciFact NDCG@10 Δ "
                                 f"{d['delta']:+.4f} (rule |Δ| ≤ {limit})")
        out.append("")
        if nd:
            out += [f"SciFact NDCG@10 (test, vanilla cosine) was measured by `{nd.get('command')}` on {nd.get('when')}: "
                    "every variant re-encodes SciFact's 5,183 documents and 300 queries; fp32 uses the cached base "
                    "vectors (precomputed, verified on import). Measured on: " + _machine_line(nd.get("machine")) + ".", ""]
        else:
            out += ["SciFact NDCG@10 change: **not measured** (re-encoding SciFact's 5,183 documents per variant does not fit "
                    "the default 10-minute budget; `pytest benchmarks/test_speed.py -k scifact_ndcg --full` measures it).", ""]
        out += [f"ONNX / OpenVINO: {fp['onnx_note']}", "",
                "**Adoption** (rule: an option only where SciFact NDCG@10 changes by at most "
                f"{limit}):", ""]
        out += [f"- {d}" for d in decisions]
        out.append("")

    if not found:
        out += ["No `speed_*.json` yet: run `pytest benchmarks/test_speed.py`.", ""]
    return out


def _session(res: Path) -> list[str]:
    s = _load(res / "pytest_benchmarks.json")
    if not s:
        return []
    out = ["## pytest-benchmark: the last recorded run of each benchmark", "",
           f"Command: `{BENCH_CMD}` (`--full` where marked); recorded by `benchmarks/conftest.py`. "
           "Seconds = pytest-benchmark's timing of the benchmarked call (one round unless said).", "",
           "| benchmark | outcome | seconds | mode | when | numbers |", "|---|---|---|---|---|---|"]
    for name, r in sorted(s.items()):
        extra = ", ".join(f"{k}={_f(v, 4) if isinstance(v, float) else v}" for k, v in (r.get("extra_info") or {}).items()
                          if not isinstance(v, (dict, list)))
        out.append(f"| `{name}` | {r.get('outcome', '?')} | {_f(r.get('seconds'), 2)} | {r.get('mode', '')} | "
                   f"{r.get('when', '')} | {extra} |")
    return out + [""]


LAB = "see `experiments/README.md`"  # where the lab's commands are documented


def _generic(title: str, data: dict, name: str, command: str) -> list[str]:
    """A section for a summary written by ``python -m experiments.table ... --json`` (the lab's generic shape)."""
    return [title, "", f"Command: `{command}`, then `python -m experiments.table runs/experiments/{name}.jsonl --out "
            f"benchmarks/results/{name}.md --json benchmarks/results/{name}.json` (seeds {data.get('seeds')}). "
            "Mean ± std over seeds; (p) = paired t-test vs vanilla; [dev] splits chose, [test] splits did not.", "",
            *render_tables(data, heading="###")]


def _legacy_command(cmd: str) -> str:
    return f"(before the lab moved to `experiments/`; {LAB}) `{cmd}`"


def _seed(res: Path) -> list[str]:
    s, quick = _load(res / "seed_reproduction.json"), _load(res / "seed_reproduction_quick.json")
    title = "## Variants of the research note (seed reproduction)"
    out = [title, ""]
    if not s and not quick:
        return out + ["No `seed_reproduction.json`: run `make seed-reproduction`.", ""]
    if s and "groups" in s:
        out = _generic(title, s, "seed_reproduction",
                       "python -m experiments.run experiments/candidates/seed_reproduction.yaml")
    elif s:
        seeds = s["seeds"]
        v = s["vanilla"]
        out += [f"Command {_legacy_command(s.get('command') or 'python -m benchmarks.seed_reproduction')} "
                f"({len(seeds)} seed(s), {s.get('seconds')} s; full table in `seed_reproduction.md`). "
                "Standard protocol NDCG@10, mean ± std over seeds; p = paired t-test vs vanilla. Plot: `variants.png` "
                "(error bars: std over seeds).", "",
                "| variant | SciFact | p | NFCorpus | p |", "|---|---|---|---|---|",
                f"| vanilla all-mpnet-base-v2 | {v['scifact']['ndcg@10']:.4f} | — | {v['nfcorpus']['ndcg@10']:.4f} | — |"]
        for name, e in s["variants"].items():
            out.append(f"| {name} | {mean_std(e['scifact']['standard_protocol'])} | {_p(e['scifact']['paired_vs_vanilla']['p_ttest'])} | "
                       f"{mean_std(e['nfcorpus']['standard_protocol'])} | {_p(e['nfcorpus']['paired_vs_vanilla']['p_ttest'])} |")
        out.append("")
    if quick:
        out += [f"Quick form, regenerated by every `pytest benchmarks` run: `{quick.get('command')}` (seed "
                f"{quick['seeds']}, {quick.get('seconds')} s). Standard protocol NDCG@10; \"seed 0 before\" is the same "
                "seed in the committed 3-seed run (the benchmark fails if they differ by more than 0.01).", "",
                "| variant | SciFact | seed 0 before | NFCorpus | seed 0 before |", "|---|---|---|---|---|"]
        for name, e in quick["variants"].items():
            before = {ds: seed0_before(s, name, ds) for ds in ("scifact", "nfcorpus")}
            out.append(f"| {name} | {_f(e['scifact']['standard_protocol'][0])} | {_f(before['scifact'])} | "
                       f"{_f(e['nfcorpus']['standard_protocol'][0])} | {_f(before['nfcorpus'])} |")
        out.append("")
    return out


def seed0_before(s: dict | None, variant: str, ds: str) -> float | None:
    """Seed 0's standard-protocol NDCG@10 of ``variant`` on ``ds`` in a seed-reproduction JSON (either shape)."""
    if not s:
        return None
    if "groups" in s:
        x = s["groups"].get("default", {}).get("recipes", {}).get(variant, {}).get("splits", {}).get(f"{ds}/test", {})
        x = x.get("standard")
        return x["values"][x["seeds"].index(0)] if x and 0 in x["seeds"] else None
    if s.get("seeds", [])[:1] != [0] or variant not in s.get("variants", {}):
        return None
    return s["variants"][variant][ds]["standard_protocol"][0]


def _recipes(res: Path) -> list[str]:
    r = _load(res / "recipes.json")
    title = "## Recipes for the default checkpoint"
    if not r:
        return [title, "", "No `recipes.json`: run `python -m experiments.run experiments/candidates/recipes.yaml` "
                f"({LAB}).", ""]
    if "groups" in r:
        return _generic(title, r, "recipes", "python -m experiments.run experiments/candidates/recipes.yaml")
    cols = [c for c in ("scifact/test", "nfcorpus/test", "scifact/train", "nfcorpus/dev") if c in r["vanilla"]]
    out = [title, "",
           f"Command {_legacy_command('python -m benchmarks.recipes --ship')} ({len(r['seeds'])} seeds, "
           f"{r.get('seconds')} s; full table in `recipes.md`). Chosen on dev (scifact/train, nfcorpus/dev) only; test "
           "columns reported once. NDCG@10 mean ± std over seeds (p vs vanilla). Plotted in `variants.png`.", "",
           "| recipe | " + " | ".join(cols) + " |", "|---" * (len(cols) + 1) + "|",
           "| vanilla all-mpnet-base-v2 | " + " | ".join(f"{r['vanilla'][c]['ndcg@10']:.4f}" for c in cols) + " |"]
    for name, c in r["candidates"].items():
        mark = " **(chosen)**" if name == r.get("chosen") else ""
        out.append(f"| {name}{mark} | " + " | ".join(
            f"{mean_std(c[k]['ndcg@10'])} ({_p(c[k]['paired_vs_vanilla']['p_ttest'])})" for k in cols) + " |")
    return out + [""]


def _indomain(res: Path) -> list[str]:
    r, quick = _load(res / "indomain.json"), _load(res / "indomain_quick.json")
    if not r and not quick:
        return []
    title = "## In-domain adaptation"
    out = [title, ""]
    rows = []
    if r and "groups" in r:
        out = _generic(title, r, "indomain", "python -m experiments.run experiments/candidates/indomain.yaml")
    elif r:
        out.append(f"- 3-seed table {_legacy_command('python -m benchmarks.indomain')} ({len(r.get('seeds', []))} "
                   f"seeds, {r.get('seconds')} s; details and one command per seed in `indomain.md`).")
        rows += [(f"{ds} ({len(e['ndcg@10'])} seeds)", e) for ds, e in r.get("datasets", {}).items()]
    if quick:
        out.append(f"- Quick form (seed {quick.get('seeds')}), regenerated by every `pytest benchmarks` run: "
                   f"`{quick.get('command')}` ({quick.get('seconds')} s; measured {quick.get('when', '?')}); fails below "
                   "the target or when not significantly above vanilla.")
        rows += [(f"{ds} (quick, seed {quick.get('seeds')})", e) for ds, e in quick.get("datasets", {}).items()]
    if rows:
        out += ["", "Heads trained on each set's own train judgments; recipe and epoch chosen on dev only (SciFact: 10% "
                "of its training queries; NFCorpus: its own `qrels/dev.tsv`); BEIR test split, standard protocol.", "",
                "| data set | vanilla | in-domain heads | Δ | p | target |", "|---|---|---|---|---|---|"]
    for label, e in rows:
        m, _ = _mean_std(e["ndcg@10"])
        out.append(f"| {label} | {e['vanilla']:.4f} | {mean_std(e['ndcg@10'])} | {m - e['vanilla']:+.4f} | "
                   f"{_p(e['paired_vs_vanilla']['p_ttest'])} | {e.get('target', '—')} |")
    return out + [""]


def _chroma_agreement(res: Path) -> list[str]:
    r = _load(res / "chroma_agreement.json")
    if not r:
        return []
    e, c = r["exact"], r["chroma_hnsw"]
    return ["## Chroma (HNSW) vs exact search", "",
            "Command: `HF_HUB_OFFLINE=1 python -m pytest -q benchmarks/test_chroma_agreement.py -p no:cacheprovider`. "
            f"SciFact test, checkpoint `{r.get('checkpoint')}`: top-100 from an embedded Chroma collection vs exact search.",
            "", "| search | NDCG@10 | Recall@100 | MRR@10 |", "|---|---|---|---|",
            f"| exact | {_f(e.get('ndcg@10'))} | {_f(e.get('recall@100'))} | {_f(e.get('mrr@10'))} |",
            f"| Chroma HNSW | {_f(c.get('ndcg@10'))} | {_f(c.get('recall@100'))} | {_f(c.get('mrr@10'))} |", "",
            f"NDCG@10 difference {r['ndcg@10_diff']:+.4f} (the benchmark fails beyond ±0.005).", ""]


LAB_REPORTS = {"hybrid.json": ("hybrid.md", "python -m experiments.hybrid"),
               "hybrid_serving.json": (None, "python -m experiments.hybrid_serving"),
               "own_pairs.json": ("own_pairs.md", "python -m experiments.own_pairs"),
               "cache.json": ("cache.md", "python -m experiments.cache_before_after")}


def _lab(res: Path) -> list[str]:
    found = [(name, md, cmd) for name, (md, cmd) in LAB_REPORTS.items() if (res / name).is_file()]
    if not found:
        return []
    return ["## Lab reports", "", f"Written by the lab in `experiments/` ({LAB}), not by the benchmarks:", "",
            *(f"- `{md or name}`: `{cmd}`" for name, md, cmd in found), ""]


KNOWN = {*LAB_REPORTS, "quality_scifact.json", "quality_nfcorpus.json", "speed_encode_overhead.json", "speed_training.json",
         "speed_chroma.json", "speed_cpu_fast_path.json", "speed_cpu_fast_path_ndcg.json", "pytest_benchmarks.json",
         "seed_reproduction.json", "seed_reproduction_quick.json", "recipes.json", "indomain.json",
         "indomain_quick.json", "chroma_agreement.json"}


def _flatten(obj, prefix: str = "") -> list[tuple[str, object]]:
    if isinstance(obj, dict):
        return [kv for k, v in obj.items() for kv in _flatten(v, f"{prefix}{k}.")]
    if isinstance(obj, (int, float, str, bool)) or obj is None:
        return [(prefix.rstrip("."), obj)]
    return []  # lists (per-query values, raw timings) are left to the file


def _others(res: Path) -> list[str]:
    out = []
    for path in sorted(res.glob("*.json")):
        if path.name in KNOWN:
            continue
        data = _load(path)
        if data is None:
            continue
        items = _flatten(data)
        out += [f"### `{path.name}`", "", f"Command: {data.get('command', 'see the benchmark that writes this file')}.", ""]
        out += [f"- {k}: {_f(v) if isinstance(v, float) else v}" for k, v in items[:40]]
        out += ([f"- … {len(items) - 40} more in the file"] if len(items) > 40 else []) + [""]
    return (["## Other results files", ""] + out) if out else []


# --------------------------------------------------------------------------------------------- plots
def _plot_speed(res: Path) -> bool:
    enc, tr, fp, ch = (_load(res / f"speed_{n}.json") for n in ("encode_overhead", "training", "cpu_fast_path", "chroma"))
    if not any((enc, tr, fp, ch)):
        return False
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(17, 4.6), gridspec_kw={"width_ratios": [1.3, 1, 1]})
    ax = axes[0]
    labels, vals, colors = [], [], []
    if enc:
        labels.append("heads overhead: jepa-rag / plain ST")
        vals.append(enc["ratio_median"])
        colors.append("#4C72B0")
    if fp:
        for name, v in fp["variants"].items():
            if not v.get("error"):
                close = v["cos_min"] >= fp.get("min_agreement", 0.99)
                labels.append(f"{name}: speed-up vs fp32" + ("" if close else f" (min cos {v['cos_min']:.2f})"))
                vals.append(v["speedup_median"])
                colors.append("#55A868" if close else "#C44E52")
    if labels:
        y = list(range(len(labels)))
        ax.barh(y, vals, color=colors)
        ax.axvline(1.0, color="k", lw=0.8, ls="--")
        for yi, v in zip(y, vals):
            ax.text(v, yi, f" {v:.2f}×", va="center")
        ax.set_yticks(y)
        ax.set_yticklabels(labels, fontsize=8)
        ax.invert_yaxis()
        ax.set_xlim(0, max(vals) * 1.2)
        ax.set_title("Encoding: ratios measured in one run\n(red: vectors stray from fp32)", fontsize=10)
    ax = axes[1]
    if tr:
        ex = tr["extrapolation"]
        names = ["re-encode\nevery batch", "cached\n(+ one-time fill)", "cached\n(steps only)"]
        secs = [ex["reencode_s"], ex["cached_s"] + ex["cache_fill_s"], ex["cached_s"]]
        bars = ax.bar(names, secs, color=["#C44E52", "#DD8452", "#55A868"])
        ax.set_yscale("log")
        for b, v in zip(bars, secs):
            ax.text(b.get_x() + b.get_width() / 2, v, f"{v:.0f} s" if v >= 10 else f"{v:.1f} s", ha="center", va="bottom")
        ax.set_ylabel("seconds (log)")
        ax.set_title(f"Training {ex['epochs']} epochs × {ex['pairs']:,} pairs (extrapolated)")
    ax = axes[2]
    if ch:
        names = list(ch["clients"])
        x = range(len(names))
        w = 0.2
        for i, (key, lab) in enumerate([("query_cold_ms", "cold"), ("query_warm_ms", "warm")]):
            p50 = [ch["clients"][n][key]["p50"] for n in names]
            p95 = [ch["clients"][n][key]["p95"] for n in names]
            ax.bar([j + (2 * i - 1) * w - w / 2 for j in x], p50, w, label=f"p50 {lab}")
            ax.bar([j + (2 * i - 1) * w + w / 2 for j in x], p95, w, label=f"p95 {lab}")
        ax.set_xticks(list(x))
        ax.set_xticklabels([f"{n}\n{ch['clients'][n]['warm_ingest_docs_per_s']:.0f} docs/s warm ingest" for n in names])
        ax.set_ylabel("query latency, ms")
        ax.legend(fontsize=8)
        ax.set_title("Chroma: query latency (embed + search)")
    fig.tight_layout()
    fig.savefig(res / "speed.png", dpi=110)
    plt.close(fig)
    return True


def _plot_variants(res: Path) -> bool:
    s, r = _load(res / "seed_reproduction.json"), _load(res / "recipes.json")
    if not (s or r):
        return False
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows: list[tuple[str, float, float, float, float]] = []  # label, sf mean, sf std, nf mean, nf std
    vanilla = None
    for prefix, summary in (("seed", s), ("recipe", r)):
        if summary and "groups" in summary:  # the lab's generic summary: its test splits, standard protocol
            vanilla = vanilla or tuple(summary["vanilla"][f"{ds}/test"]["standard"]["ndcg@10"]
                                       for ds in ("scifact", "nfcorpus"))
            for g in summary["groups"].values():
                for name, e in g["recipes"].items():
                    mark = " (chosen)" if name == g.get("chosen") else ""
                    rows.append((f"{prefix}: {name}{mark}", *(x for ds in ("scifact", "nfcorpus") for x in
                                                              _mean_std(e["splits"][f"{ds}/test"]["standard"]["values"]))))
    if s and "groups" not in s:
        vanilla = (s["vanilla"]["scifact"]["ndcg@10"], s["vanilla"]["nfcorpus"]["ndcg@10"])
        for name, e in s["variants"].items():
            rows.append((f"seed: {name}", *_mean_std(e["scifact"]["standard_protocol"]),
                         *_mean_std(e["nfcorpus"]["standard_protocol"])))
    if r and "groups" not in r and "scifact/test" in r["vanilla"]:
        vanilla = vanilla or (r["vanilla"]["scifact/test"]["ndcg@10"], r["vanilla"]["nfcorpus/test"]["ndcg@10"])
        for name, c in r["candidates"].items():
            mark = " (chosen)" if name == r.get("chosen") else ""
            rows.append((f"recipe: {name}{mark}", *_mean_std(c["scifact/test"]["ndcg@10"]),
                         *_mean_std(c["nfcorpus/test"]["ndcg@10"])))
    fig, axes = plt.subplots(1, 2, figsize=(14, 0.42 * len(rows) + 1.8), sharey=True)
    y = list(range(len(rows)))
    for ax, (title, mi, si, vi) in zip(axes, [("SciFact test", 1, 2, 0), ("NFCorpus test", 3, 4, 1)]):
        means = [row[mi] for row in rows]
        stds = [row[si] for row in rows]
        colors = ["#4C72B0" if row[0].startswith("seed") else "#55A868" for row in rows]
        ax.barh(y, means, xerr=stds, color=colors, capsize=3)
        if vanilla:
            ax.axvline(vanilla[vi], color="k", ls="--", lw=1, label=f"vanilla {vanilla[vi]:.4f}")
            ax.legend(loc="lower right", fontsize=8)
        lo = min(m - s_ for m, s_ in zip(means, stds))
        hi = max([m + s_ for m, s_ in zip(means, stds)] + ([vanilla[vi]] if vanilla else []))
        ax.set_xlim(lo - 0.01, hi + 0.01)
        ax.set_title(f"{title}: NDCG@10 (mean ± std over seeds)")
    axes[0].set_yticks(y)
    axes[0].set_yticklabels([row[0] for row in rows], fontsize=8)
    axes[0].invert_yaxis()
    fig.tight_layout()
    fig.savefig(res / "variants.png", dpi=110)
    plt.close(fig)
    return True


# --------------------------------------------------------------------------------------------- report
def write_report(res: Path = RESULTS) -> Path:
    res.mkdir(parents=True, exist_ok=True)
    plots = []
    for fn, name in ((_plot_speed, "speed.png"), (_plot_variants, "variants.png")):
        try:
            if fn(res):
                plots.append(name)
        except ImportError:
            pass  # matplotlib missing: the tables still get written
        except (KeyError, TypeError, ValueError) as exc:  # a plot must not cost the tables
            print(f"{name} not drawn: its JSON has an unexpected shape: {exc!r}")
    m = machine_info()
    lines = [
        "# jepa-rag benchmark report",
        "",
        f"Written by `python -m experiments.report` (`make report` first runs `{BENCH_CMD}` with "
        f"`JEPA_RAG_BENCH_OUT=benchmarks/results`) on {_dt.datetime.now().strftime('%Y-%m-%d %H:%M')}, from the JSON "
        f"files in `{_shown(res)}/`. Every number below was measured by committed code; each section names its command. "
        "Sections whose JSON is missing are left out or say so. `--full` re-encodes with the real model instead of "
        "importing the precomputed base vectors.",
        "",
        "## Machine (where this report was written)",
        "",
        f"- {m['cpus']} CPU cores, {m['cpu_model']}; {m['platform']}",
        f"- Python {m['python']}, torch {m['torch']}, sentence-transformers {m['sentence-transformers']}, "
        f"transformers {m['transformers']}, chromadb {m['chromadb']}, numpy {m['numpy']}",
        "- Shared machine: another CPU job may run at times, so absolute timings vary by several × between runs; the "
        "ratios (measured within one run) are the numbers to read.",
        "",
    ]
    if plots:
        lines += ["Plots: " + ", ".join(f"![{p}]({p})" for p in plots), ""]
    for section in (_quality, _speed, _chroma_agreement, _session, _seed, _recipes, _indomain, _lab, _others):
        try:
            lines += section(res)
        except (KeyError, TypeError, ValueError, ZeroDivisionError) as exc:
            lines += [f"(section {section.__name__.strip('_')} skipped: its JSON has an unexpected shape: {exc!r})", ""]
    path = res / "REPORT.md"
    path.write_text("\n".join(lines).rstrip() + "\n")
    return path


def _shown(path: Path) -> str:
    try:
        return path.resolve().relative_to(RESULTS.parent.parent).as_posix()
    except ValueError:
        return str(path)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("folder", type=Path, nargs="?", default=RESULTS,
                   help="the results folder (default benchmarks/results; runs/benchmarks after a plain benchmark run)")
    print(write_report(p.parse_args().folder))


if __name__ == "__main__":
    main()
