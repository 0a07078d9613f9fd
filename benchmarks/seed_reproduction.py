"""Reproduce the research note's table (seed protocol) and re-evaluate the same checkpoints (standard protocol).

    python -m benchmarks.seed_reproduction            # 3 seeds, writes benchmarks/results/seed_reproduction.{md,json}
    python -m benchmarks.seed_reproduction --seeds 0  # the quick form

Seed protocol: each checkpoint's own scoring (negative Euclidean distance on unnormalised outputs), queries through
the projection only. Standard protocol: cosine on L2-normalised outputs; vanilla all-mpnet-base-v2 (cosine) is the
baseline; the paired t-test compares per-query NDCG@10 (averaged over seeds) with vanilla's on the same queries.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np

from jepa_rag import JEPAEncoder, paired_test
from jepa_rag.config import load_train_config
from jepa_rag.evaluate import evaluate_beir
from train.loop import train

CONFIGS = Path(__file__).resolve().parent.parent / "train" / "configs" / "seed"
RESULTS = Path(__file__).resolve().parent / "results"
DATASETS = ("scifact", "nfcorpus")
# the research note's numbers (DESIGN §2): SciFact, NFCorpus
NOTE = {
    "jepa_10k_e1": (0.6382, 0.3169),
    "jepa_10k_e2": (0.6401, 0.3158),
    "jepa_10k_e3": (0.6383, 0.3154),
    "jepa_iso15_pred12": (0.6280, 0.3237),
    "512dim_10k": (0.6210, 0.3242),
    "pure_isotropy_only": (0.6314, 0.3107),
    "baseline": (0.6241, 0.3016),
}


def _ms(values: list[float]) -> str:
    a = np.array(values)
    return f"{a.mean():.4f} ± {a.std(ddof=1) if len(a) > 1 else 0.0:.4f}"


def run(seeds: list[int], out_dir: Path, runs_dir: Path, variants: list[str], log=print,
        stem: str = "seed_reproduction", command: str | None = None) -> dict:
    """Train every variant once per seed, evaluate both protocols, write ``<stem>.md`` + ``<stem>.json``."""
    t0 = time.time()
    vanilla = JEPAEncoder.from_pretrained("none")
    base = {ds: evaluate_beir(vanilla, ds) for ds in DATASETS}
    results: dict = {"seeds": seeds, "vanilla": {ds: base[ds]["metrics"] for ds in DATASETS}, "variants": {}}
    for name in variants:
        per_ds = {ds: {"seed": [], "standard": [], "pq_standard": []} for ds in DATASETS}
        for seed in seeds:
            cfg = load_train_config(str(CONFIGS / f"{name}.yaml"),
                                    [f"seed={seed}", f"output_dir={runs_dir}/{name}/seed{seed}"])
            res = train(cfg, resume=False, show_progress_bar=False, log=lambda *_: None)
            enc = JEPAEncoder.from_pretrained(res.checkpoint)
            for ds in DATASETS:
                seed_eval = evaluate_beir(enc, ds)  # the checkpoint's own scoring: the seed protocol
                std_eval = evaluate_beir(enc, ds, scoring="cosine")
                per_ds[ds]["seed"].append(seed_eval["metrics"]["ndcg@10"])
                per_ds[ds]["standard"].append(std_eval["metrics"]["ndcg@10"])
                per_ds[ds]["pq_standard"].append(std_eval["per_query"]["ndcg@10"])
            log(f"{name} seed {seed}: " + "  ".join(
                f"{ds} seed-protocol {per_ds[ds]['seed'][-1]:.4f} standard {per_ds[ds]['standard'][-1]:.4f}"
                for ds in DATASETS))
        entry = {}
        for ds in DATASETS:
            pq = per_ds[ds]["pq_standard"]
            mean_pq = {q: float(np.mean([p[q] for p in pq])) for q in pq[0]}
            entry[ds] = {
                "note": NOTE[name][DATASETS.index(ds)],
                "seed_protocol": per_ds[ds]["seed"],
                "standard_protocol": per_ds[ds]["standard"],
                "paired_vs_vanilla": paired_test(mean_pq, base[ds]["per_query"]["ndcg@10"]),
            }
        results["variants"][name] = entry
    results["dev_moves"] = {}
    for name in variants:
        meta = json.loads((runs_dir / name / f"seed{seeds[0]}" / "checkpoint" / "adapter_config.json").read_text())
        results["dev_moves"][name] = {"init": meta["metrics"]["dev_at_init"]["ndcg@10"],
                                      "final": meta["metrics"]["dev"]["ndcg@10"]}
    results["seconds"] = round(time.time() - t0, 1)
    results["machine"] = {"python": platform.python_version(), "platform": platform.platform(),
                          "cpus": __import__("os").cpu_count()}
    results["command"] = command or default_command(seeds)
    write_report(results, out_dir, stem)
    return results


def default_command(seeds: list[int]) -> str:
    return "python -m benchmarks.seed_reproduction" + ("" if seeds == [0, 1, 2] else " --seeds " + " ".join(map(str, seeds)))


def write_report(results: dict, out_dir: Path, stem: str = "seed_reproduction") -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / f"{stem}.json").write_text(json.dumps(results, indent=2))
    seeds = results["seeds"]
    cmd = results.get("command") or default_command(seeds)
    v = results["vanilla"]
    lines = [
        "# Seed reproduction: the research note's table, re-run",
        "",
        f"Generated by `{cmd}` ({len(seeds)} seed(s): {seeds}; {results['seconds']} s on "
        f"{results['machine']['cpus']} CPU cores). Base model: all-mpnet-base-v2 (frozen), BEIR test splits, "
        "pytrec_eval NDCG@10.",
        "",
        "**Data differs from the note's**: the seed trained on the first 10K MS MARCO v1.1 *train* pairs with their first",
        "non-selected passage as hard negative. We have 6,980 real MS MARCO pairs (dev-small queries, see",
        "`shared/data/msmarco/README.md`): 90% train, 10% dev (split by query id), and one hard negative per pair",
        "*mined* from the frozen base's top-10 over the 6,978 passages (the positive excluded).",
        "",
        "- **seed protocol**: the note's setup: unnormalised head outputs, negative Euclidean distance, queries through the",
        "  projection only, AdamW at the *effective* LR the original code ran (2e-5 × 0.1 warm-up factor, stepped per",
        "  epoch ⇒ 2e-6…2.4e-6), fixed epochs. Epochs for the rows the note left blank (—): 3, the original script's default.",
        "- **standard protocol**: the same checkpoints, cosine on L2-normalised outputs; baseline = vanilla all-mpnet-base-v2",
        f"  (cosine): SciFact {v['scifact']['ndcg@10']:.4f}, NFCorpus {v['nfcorpus']['ndcg@10']:.4f}, avg "
        f"{(v['scifact']['ndcg@10'] + v['nfcorpus']['ndcg@10']) / 2:.4f}.",
        "- p: two-sided paired t-test over per-query NDCG@10 (mean over seeds) against vanilla, standard protocol.",
        "",
        "| variant | note SciFact | ours SciFact (seed prot.) | ours SciFact (standard) | p vs vanilla | note NFCorpus | ours NFCorpus (seed prot.) | ours NFCorpus (standard) | p vs vanilla | note avg | ours avg (seed prot.) | ours avg (standard) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, e in results["variants"].items():
        s, n = e["scifact"], e["nfcorpus"]
        avg_seed = [(a + b) / 2 for a, b in zip(s["seed_protocol"], n["seed_protocol"])]
        avg_std = [(a + b) / 2 for a, b in zip(s["standard_protocol"], n["standard_protocol"])]
        lines.append(
            f"| {name} | {s['note']:.4f} | {_ms(s['seed_protocol'])} | {_ms(s['standard_protocol'])} | "
            f"{s['paired_vs_vanilla']['p_ttest']:.3g} | {n['note']:.4f} | {_ms(n['seed_protocol'])} | "
            f"{_ms(n['standard_protocol'])} | {n['paired_vs_vanilla']['p_ttest']:.3g} | "
            f"{(s['note'] + n['note']) / 2:.4f} | {_ms(avg_seed)} | {_ms(avg_std)} |")
    lines.append(f"| vanilla all-mpnet-base-v2 | — | {v['scifact']['ndcg@10']:.4f} | {v['scifact']['ndcg@10']:.4f} | — | — | "
                 f"{v['nfcorpus']['ndcg@10']:.4f} | {v['nfcorpus']['ndcg@10']:.4f} | — | — | "
                 f"{(v['scifact']['ndcg@10'] + v['nfcorpus']['ndcg@10']) / 2:.4f} | "
                 f"{(v['scifact']['ndcg@10'] + v['nfcorpus']['ndcg@10']) / 2:.4f} |")
    vavg = (v["scifact"]["ndcg@10"] + v["nfcorpus"]["ndcg@10"]) / 2
    worst_p = max(e[ds]["paired_vs_vanilla"]["p_ttest"] for e in results["variants"].values() for ds in DATASETS)
    below = all(e[ds]["paired_vs_vanilla"]["mean_diff"] < 0 for e in results["variants"].values() for ds in DATASETS)
    lines += [
        "",
        "Vanilla's seed-protocol number equals its standard one: MPNet's outputs are unit-norm, so Euclidean and",
        "cosine rank identically.",
        "",
        "## What survives",
        "",
        f"- Every variant {'lands below' if below else 'does not uniformly beat'} vanilla all-mpnet-base-v2 on both sets "
        f"(largest p = {worst_p:.2g}). The note's \"+3.26%\" compares against its own near-random 512-d \"baseline\" "
        f"head (note: 0.4628), not against vanilla MPNet ({vavg:.4f} here).",
        "- The heads barely train: at the effective LR of ~2e-6, MS MARCO dev NDCG@10 moves from "
        + ", ".join(f"{d['init']:.4f} (random init) to {d['final']:.4f} ({n}, seed 0)" for n, d in results.get("dev_moves", {}).items())
        + ". A random 2-layer MLP roughly preserves the base space's geometry, which is consistent with all variants",
        "  sitting in a narrow band a few points under vanilla, and epochs 1/2/3 being indistinguishable.",
        "- Differences between variants are within a few seed standard deviations; the note's single-run ranking",
        "  (chosen on the test sets) is not reproducible evidence that the predictor or isotropy helps.",
        "",
    ]
    (out_dir / f"{stem}.md").write_text("\n".join(lines))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--variants", nargs="+", default=list(NOTE))
    p.add_argument("--out", type=Path, default=RESULTS)
    p.add_argument("--runs", type=Path, default=Path("runs/seed_reproduction"))
    p.add_argument("--report-only", action="store_true", help="rewrite the report from the saved JSON")
    args = p.parse_args()
    if args.report_only:
        write_report(json.loads((args.out / "seed_reproduction.json").read_text()), args.out)
        return
    run(args.seeds, args.out, args.runs, args.variants)


if __name__ == "__main__":
    main()
