"""Ship the recipe chosen on dev as the default checkpoint, with its model card. An explicit step, never a side effect.

    python -m experiments.run experiments/candidates/recipes.yaml       # train + evaluate; writes rows only
    python -m experiments.ship_default runs/experiments/recipes.jsonl   # copy the chosen recipe's first-seed
                                                                       # checkpoint to jepa_rag/checkpoints/default/
    python -m experiments.ship_default runs/experiments/recipes.jsonl --card-only   # rewrite MODEL_CARD.md only

The choice is :func:`experiments.table.choose` over the rows' dev splits (test splits choose nothing).
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import numpy as np

from experiments.run import read_rows
from experiments.table import choose, dev_scores, mean_std, summarise

CORPUS_PAIRS = {"titles": "document title → the document",
                 "sentences": "one sentence of the document → the document",
                 "ict": "one sentence of the document → the document without it"}


def _values(e: dict, split: str) -> list[float]:
    return next(iter(e["splits"][split].values()))["values"]


def mean_test(e: dict, test: list[str]) -> float:
    """Mean test score over the test splits and all seeds."""
    return float(np.mean([np.mean(_values(e, s)) for s in test]))


def _kept_base(e: dict) -> str:
    """Why a best_or_init recipe equals vanilla exactly: no trained epoch beat the untrained heads on dev."""
    epochs = list(e.get("epochs", {}).values())
    return (" (no trained epoch beat the untrained identity heads on dev for any seed: the base model was kept)"
            if epochs and not any(epochs) else "")


def write_model_card(summary: dict, group: str, dest: Path) -> Path:
    """A model card next to the shipped checkpoint: what it is, what it saw, how it scores, where it fails."""
    g = summary["groups"][group]
    name = g["chosen"]
    e = g["recipes"][name]
    dev, test = g["dev"], g["test"]
    meta = json.loads((dest / "adapter_config.json").read_text())
    fp, tr = meta["base_fingerprint"], meta["training"]
    protocol = summary["protocols"][0]
    v = {s: summary["vanilla"][s][protocol] for s in [*dev, *test] if s in summary["vanilla"]}
    rows = []
    for key in [*dev, *test]:
        x = next(iter(e["splits"][key].values())) if key not in v else e["splits"][key][protocol]
        p = x["paired_vs_vanilla"]
        rows.append(f"| {key} | {v[key]['ndcg@10']:.4f} | " if key in v else f"| {key} | — | ")
        rows[-1] += (f"{mean_std(x['values'])} | {p['mean_diff']:+.4f} | {p['p_ttest']:.2g} |" if p else
                     f"{mean_std(x['values'])} | — | — |")
    corpus_pairs = CORPUS_PAIRS.get(tr["data_source"].split(":")[0])
    if corpus_pairs:
        data = (f"self-supervised pairs ({corpus_pairs}) built from the *unlabelled* corpora of BEIR "
                "SciFact (CC BY-NC 2.0) and NFCorpus (academic use only); no queries and no judgments were read")
    else:
        data = "6,980 MS MARCO passage query–positive pairs (non-commercial research use only)"
    test_sig = [k for k in test if (e["splits"][k][protocol]["paired_vs_vanilla"] or {}).get("p_ttest", 1) < 0.05]
    avg = mean_test(e, test)
    vavg = float(np.mean([v[k]["ndcg@10"] for k in test]))
    verdict = (f"On the BEIR test sets it is {'significantly different from' if test_sig else 'statistically indistinguishable from'} "
               f"vanilla MPNet ({', '.join(test_sig) if test_sig else 'p ≥ 0.05 on both'}); average NDCG@10 {avg:.4f} vs "
               f"vanilla {vavg:.4f} ({avg - vavg:+.4f}).")
    scores = dev_scores(g)
    order = sorted(scores, key=lambda n: -scores[n])
    runner = order[1] if len(order) > 1 else None
    margin = scores[name] - scores[runner] if runner else None
    dev_sd = float(np.mean([np.std(_values(e, k), ddof=1) if len(_values(e, k)) > 1 else 0.0 for k in dev]))
    tie_note = (f" The runner-up, `{runner}`, is {margin:.4f} behind on dev — less than the seed-to-seed std "
                f"({dev_sd:.4f}), so the choice among the top candidates is a near tie; they score alike on test too."
                if runner and margin < dev_sd else "")
    reported = {n: c for n, c in g["recipes"].items() if not c.get("compete", True)}
    reported_note = "" if not reported else (
        "\n- Recipes reported but never chosen (epochs chosen on the BEIR dev sets themselves) moved mean test NDCG@10 "
        "against vanilla by "
        + ", ".join(f"{mean_test(c, test) - vavg:+.4f} (`{n}`{', the base model kept' if _kept_base(c) else ''})"
                    for n, c in reported.items())
        + " (`benchmarks/results/recipes.md`).")
    route_note = ("unused at retrieval (queries take the projection only)" if meta["model"]["query_route"] == "projection"
                  else "used for queries")
    card = f"""# jepa-rag default checkpoint

- **Base model**: `{fp['model_id']}` (frozen), weights sha256 `{fp['weights_sha256']}`, max_seq_length
  {fp['max_seq_length']}, normalised outputs: {fp['normalize']}, {fp['dim']}-d.
- **Heads**: residual, identity-initialised projection ({meta['model']['projection']['in_dim']}→{meta['model']['projection']['out_dim']}) and predictor; queries take
  `{meta['model']['query_route']}`, documents the projection; cosine scoring on L2-normalised outputs.
- **Recipe**: `{name}` (`train/configs/{e['config']}.yaml` {' '.join('--set ' + o for o in e['overrides'])}), seed {tr['seed']},
  epoch {tr['selected_epoch']} (chosen by {tr['selection']}).
- **Training data**: {data}. Data sha256 `{tr['data_sha256']}`.
- **Why this recipe**: best mean dev NDCG@10 among the candidates in `benchmarks/results/recipes.md`
  ({len(e['epochs'])} seeds each); dev = {', '.join(dev)}. Test sets chose nothing.{tie_note}

## Scores (standard protocol, NDCG@10; recipe mean ± std over seeds {sorted(int(s) for s in e['epochs'])}; p = paired t-test vs vanilla)

| split | vanilla MPNet | this recipe | Δ | p |
|---|---|---|---|---|
{chr(10).join(rows)}

## Known limits

- {verdict}
- No candidate trained without BEIR labels beat vanilla MPNet on dev by a meaningful margin: the base model was
  itself trained on MS MARCO, so MS MARCO pairs teach the heads little it does not know. For real gains, adapt the
  heads to your own data (`benchmarks/results/indomain.md`).{reported_note}
- The predictor head is stored but {route_note}.
- English only, like the base model; 384-token inputs (longer text is truncated).
- Licences of the training data restrict use: see above.
"""
    path = dest / "MODEL_CARD.md"
    path.write_text(card)
    return path


def ship(rows_path: Path, group: str, dest: Path, card_only: bool = False) -> Path:
    """Copy the chosen recipe's first-seed checkpoint to ``dest`` (unless ``card_only``) and write its card."""
    summary = summarise(read_rows(rows_path))
    if group not in summary["groups"]:
        raise SystemExit(f"{rows_path}: no group {group!r} (groups: {sorted(summary['groups'])})")
    g = summary["groups"][group]
    chosen = choose(g)
    if chosen is None:
        raise SystemExit(f"{rows_path}: nothing was chosen on dev in group {group!r}")
    if not card_only:
        e = g["recipes"][chosen]
        first = min(e["checkpoints"], key=int)
        src = Path(e["checkpoints"][first])
        if not (src / "adapter_config.json").is_file():
            raise SystemExit(f"the chosen recipe's seed-{first} checkpoint is gone ({src}): re-run experiments.run")
        if dest.exists():
            shutil.rmtree(dest)
        shutil.copytree(src, dest)
        print(f"shipped {chosen} seed {first}: {src} → {dest}")
    return write_model_card(summary, group, dest)


def main() -> None:
    from jepa_rag.encoder import DEFAULT_CHECKPOINT

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("rows", type=Path, help="the recipes' rows, e.g. runs/experiments/recipes.jsonl")
    p.add_argument("--group", default="default")
    p.add_argument("--dest", type=Path, default=DEFAULT_CHECKPOINT)
    p.add_argument("--card-only", action="store_true", help="only rewrite the model card of the checkpoint at --dest")
    args = p.parse_args()
    print(ship(args.rows, args.group, args.dest, args.card_only))


if __name__ == "__main__":
    main()
