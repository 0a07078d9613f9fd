"""Turn the rows of :mod:`experiments.run` into mean ± std tables, with paired tests against vanilla.

    python -m experiments.table runs/experiments/recipes.jsonl --out benchmarks/results/recipes.md \\
        --json benchmarks/results/recipes.json

One table per group of recipes; one column per split (and protocol, when the rows have several); a cell is the mean ±
sample std over seeds and, where the rows keep per-query values, p = two-sided paired t-test of the per-query metric
(mean over seeds) against vanilla all-mpnet-base-v2 on the same queries. The recipe chosen on dev is marked; test
splits choose nothing. ``--json`` writes the same summary for the benchmark report (no per-query values).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

TRAINING_DEV = "training-dev"
VANILLA = "vanilla"


def mean_std(values: list[float]) -> str:
    """``"m ± s"`` (4 decimals; sample std, 0 for one value)."""
    v = np.asarray(values, dtype=float)
    return f"{v.mean():.4f} ± {(v.std(ddof=1) if len(v) > 1 else 0.0):.4f}"


def _paired(per_query: list[dict], vanilla: dict | None) -> dict | None:
    if not vanilla or not per_query or any(p is None for p in per_query):
        return None
    from jepa_rag import paired_test

    mean_pq = {q: float(np.mean([p[q] for p in per_query])) for q in per_query[0]}
    return paired_test(mean_pq, vanilla)


def summarise(rows: list[dict], metric: str = "ndcg@10") -> dict:
    """Rows grouped by group → recipe → split → protocol: the per-seed values, mean, std, paired test vs vanilla;
    each group's dev choice (:func:`choose`). JSON-ready; per-query values are not carried over."""
    protocols = list(dict.fromkeys(p for r in rows for p in r.get("scores", {})))
    vanilla_pq: dict = {}
    out: dict = {"experiment": next((r.get("experiment") for r in rows), None), "metric": metric,
                 "protocols": protocols, "seeds": sorted({r["seed"] for r in rows if r.get("seed") is not None}),
                 "vanilla": {}, "groups": {}}
    for r in rows:
        if r["recipe"] == VANILLA and r.get("group") is None:
            out["vanilla"][r["split"]] = {p: s["metrics"] for p, s in r["scores"].items()}
            vanilla_pq[r["split"]] = {p: s.get("per_query") for p, s in r["scores"].items()}
    raw: dict = {}
    for r in rows:
        if r["recipe"] == VANILLA and r.get("group") is None:
            continue
        g = out["groups"].setdefault(r["group"], {"dev": [], "test": [], "recipes": {}})
        role_splits = g["dev" if r.get("role") == "dev" else "test"]
        if r["split"] not in role_splits:
            role_splits.append(r["split"])
        e = g["recipes"].setdefault(r["recipe"], {
            "config": r.get("config"), "overrides": r.get("overrides", []), "compete": r.get("compete", True),
            "reference": {}, "checkpoints": {}, "epochs": {}, "commands": {}, "splits": {}})
        if r.get("reference") is not None:
            e["reference"][r["split"]] = r["reference"]
        seed = str(r["seed"])
        e["checkpoints"][seed], e["epochs"][seed], e["commands"][seed] = r.get("checkpoint"), r.get("epoch"), r.get("command")
        if r["split"] == TRAINING_DEV and r.get("at_init"):
            e.setdefault("at_init", {})[seed] = r["at_init"].get(metric)
        for p, s in r["scores"].items():
            cell = raw.setdefault((r["group"], r["recipe"], r["split"], p), {})
            cell[r["seed"]] = (s["metrics"][metric], s.get("per_query"))
    for (group, recipe, split, p), by_seed in raw.items():
        seeds = sorted(by_seed)
        values = [by_seed[s][0] for s in seeds]
        out["groups"][group]["recipes"][recipe]["splits"].setdefault(split, {})[p] = {
            "seeds": seeds, "values": values, "mean": float(np.mean(values)),
            "std": float(np.std(values, ddof=1)) if len(values) > 1 else 0.0,
            "paired_vs_vanilla": _paired([by_seed[s][1] for s in seeds], vanilla_pq.get(split, {}).get(p))}
    for g in out["groups"].values():
        g["chosen"] = choose(g)
    return out


def dev_scores(group: dict) -> dict[str, float]:
    """Each competing recipe's mean dev score (first protocol) over the dev splits and the seeds that every competing
    recipe has on every dev split, so recipes are compared on the same seeds (a screen compares first seeds)."""
    compete = {n: e for n, e in group.get("recipes", {}).items() if e.get("compete", True)}
    cells = {n: [next(iter(e["splits"][s].values())) if s in e["splits"] else None for s in group.get("dev", [])]
             for n, e in compete.items()}
    cells = {n: c for n, c in cells.items() if c and all(c)}
    if not cells:
        return {}
    shared = set.intersection(*(set(x["seeds"]) for c in cells.values() for x in c))
    if not shared:
        return {}
    return {n: float(np.mean([np.mean([v for s, v in zip(x["seeds"], x["values"]) if s in shared]) for x in c]))
            for n, c in cells.items()}


def choose(group: dict) -> str | None:
    """The competing recipe with the best mean dev score (:func:`dev_scores`); ``None`` when nothing competes."""
    scores = dev_scores(group)
    return max(scores, key=lambda n: scores[n]) if scores else None


def _cell(x: dict | None) -> str:
    if not x:
        return "—"
    p = x.get("paired_vs_vanilla")
    return mean_std(x["values"]) + (f" ({p['p_ttest']:.2g})" if p else "")


def render_tables(summary: dict, heading: str = "##") -> list[str]:
    """Markdown lines: one table per group (see the module docstring)."""
    protocols = summary["protocols"] or ["standard"]
    metric = summary.get("metric", "ndcg@10")
    lines = []
    for gname, g in summary["groups"].items():
        splits = [*g["dev"], *g["test"]]
        cols = [(s, p) for s in splits for p in (protocols[:1] if s == TRAINING_DEV else protocols)]
        refs = [s for s in splits if any(s in e.get("reference", {}) for e in g["recipes"].values())]
        scores = dev_scores(g)

        header = ["recipe", "seeds",
                  *(f"{s} [{'dev' if s in g['dev'] else 'test'}]" + (f" {p}" if len(protocols) > 1 else "")
                    for s, p in cols),
                  *(f"{s} reference" for s in refs)]
        if scores:
            header.append("dev mean")
        if len(summary["groups"]) > 1 or gname not in (None, "default"):
            lines += [f"{heading} {gname}", ""]
        lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        vrow = ["vanilla all-mpnet-base-v2", "—"]
        for s, p in cols:
            v = summary["vanilla"].get(s, {}).get(p)
            vrow.append(f"{v[metric]:.4f}" if v else "—")
        vrow += ["—"] * len(refs) + (["—"] if scores else [])
        lines.append("| " + " | ".join(vrow) + " |")
        for name, e in g["recipes"].items():
            mark = " **(chosen)**" if name == g.get("chosen") else ("" if e.get("compete", True) or not scores else " †")
            row = [f"{name}{mark}", str(len(e["epochs"])),
                   *(_cell(e["splits"].get(s, {}).get(p)) for s, p in cols),
                   *(f"{e['reference'][s]:.4f}" if s in e.get("reference", {}) else "—" for s in refs)]
            if scores:
                row.append(f"{scores[name]:.4f}" if name in scores else "—")
            lines.append("| " + " | ".join(row) + " |")
        lines.append("")
        if scores and any(not e.get("compete", True) for e in g["recipes"].values()):
            lines += ["† reported only: chooses nothing.", ""]
        if g.get("chosen"):
            e = g["recipes"][g["chosen"]]
            first = next(iter(e["commands"].values()), None)
            lines += [f"Chosen on dev ({', '.join(g['dev'])}): **{g['chosen']}**" + (f" (`{first}`)" if first else "")
                      + ".", ""]
    return lines


def render(summary: dict, source: str = "") -> str:
    lines = [f"# {summary.get('experiment') or 'experiment'}: {summary.get('metric', 'ndcg@10')}", "",
             f"Rendered by `python -m experiments.table{' ' + source if source else ''}` from rows written by "
             "`python -m experiments.run`. Mean ± sample std over seeds; (p) = paired t-test over per-query values "
             "(mean over seeds) against vanilla all-mpnet-base-v2 on the same queries. [dev] splits choose the recipe "
             f"({TRAINING_DEV} = the held-out split the training carves itself); [test] splits chose nothing.", ""]
    return "\n".join(lines + render_tables(summary)).rstrip() + "\n"


def main() -> None:
    from experiments.run import read_rows

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("rows", type=Path, help="a JSONL written by python -m experiments.run")
    p.add_argument("--out", type=Path, help="the markdown file (default: print)")
    p.add_argument("--json", type=Path, help="also write the summary as JSON (read by python -m experiments.report)")
    p.add_argument("--metric", default="ndcg@10")
    args = p.parse_args()
    rows = read_rows(args.rows)
    if not rows:
        raise SystemExit(f"no rows in {args.rows}")
    summary = summarise(rows, args.metric)
    text = render(summary, str(args.rows))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text)
    else:
        print(text, end="")
    if args.json:
        args.json.write_text(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
