"""Recipe search for the shipped default checkpoint: train candidates, choose on dev, report test.

    python -m benchmarks.recipes                    # 3 seeds; writes benchmarks/results/recipes.{md,json,png}
    python -m benchmarks.recipes --ship             # also copies the chosen recipe's seed-0 checkpoint to
                                                    # jepa_rag/checkpoints/default/

Selection uses only dev data: SciFact's *train* judgments (never trained on by these recipes) and NFCorpus's
``dev`` judgments; the candidate with the best mean dev NDCG@10 (averaged over both sets and all seeds) wins.
The test splits are reported for every candidate but never used to choose. Re-running reuses finished runs whose
config is unchanged (delete ``runs/recipes`` to retrain).
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

import numpy as np

from benchmarks.report import mean_std
from jepa_rag import JEPAEncoder, paired_test
from jepa_rag.config import load_train_config
from jepa_rag.encoder import DEFAULT_CHECKPOINT
from jepa_rag.evaluate import evaluate_beir
from train.loop import train

ROOT = Path(__file__).resolve().parent.parent
CONFIGS = ROOT / "train" / "configs"
RESULTS = Path(__file__).resolve().parent / "results"
DEV = {"scifact": "train", "nfcorpus": "dev"}
TEST = {"scifact": "test", "nfcorpus": "test"}
DEV_KEYS = [f"{ds}/{sp}" for ds, sp in DEV.items()]
TEST_KEYS = [f"{ds}/{sp}" for ds, sp in TEST.items()]
CANDIDATES = {
    "msmarco_infonce": ("msmarco_infonce.yaml", []),
    "msmarco_infonce_projection_route": ("msmarco_infonce.yaml", ["model.query_route=projection"]),
    "msmarco_infonce_lowlr_projection_route": ("msmarco_infonce.yaml", ["model.query_route=projection",
                                                                        "optim.lr=2e-5", "optim.epochs=3"]),
    "titles_selfsup": ("titles_selfsup.yaml", []),
    "titles_selfsup_projection_route": ("titles_selfsup.yaml", ["model.query_route=projection"]),
    "titles_selfsup_lowlr": ("titles_selfsup.yaml", ["optim.lr=2e-5", "optim.epochs=3"]),
    "ict_selfsup": ("ict_selfsup.yaml", []),
}
# Ablation: one lever changed at a time on top of msmarco_infonce_lowlr_projection_route (the recipe dev chose among
# the candidates above). One λ per isotropy term, not tuned: SIGReg's target is N(0, 1) projections while MPNet's
# unit vectors have entries of ~0.036, so its λ is 10× smaller.
_LOWLR = ["model.query_route=projection", "optim.lr=2e-5", "optim.epochs=3"]
ABLATION_BASE = "msmarco_infonce_lowlr_projection_route"
ABLATIONS = {
    "ablate_no_predictive_loss": ("msmarco_infonce.yaml", [*_LOWLR, "loss.lambda_predictive=0"]),
    "ablate_plain_heads": ("msmarco_infonce.yaml", [*_LOWLR, "model.projection.residual=false",
                                                    "model.predictor.residual=false"]),
    "ablate_plain_heads_512d": ("msmarco_infonce.yaml", [
        *_LOWLR, "model.projection.residual=false", "model.predictor.residual=false", "model.projection.out_dim=512",
        "model.predictor.in_dim=512", "model.predictor.out_dim=512"]),
    "ablate_covariance_isotropy": ("msmarco_infonce.yaml", [*_LOWLR, "loss.isotropy=covariance", "loss.lambda_isotropy=0.1"]),
    "ablate_sigreg": ("msmarco_infonce.yaml", [*_LOWLR, "loss.isotropy=sigreg", "loss.lambda_isotropy=0.01"]),
    "ablate_uniformity": ("msmarco_infonce.yaml", [*_LOWLR, "loss.isotropy=uniformity", "loss.lambda_isotropy=0.1"]),
}
CANDIDATES.update(ABLATIONS)
# Epochs chosen on the BEIR dev sets themselves (data.dev_beir; select=best_or_init, so epoch 0, the base model, is a
# candidate too) instead of on held-out training pairs. Their dev mean is the maximum over epochs of the very numbers
# it is compared on, so it is biased upwards against the candidates above: reported, never chosen.
_ON_BEIR_DEV = ["data.dev_beir=scifact:train,nfcorpus:dev", "select=best_or_init"]
EPOCHS_ON_DEV = {
    "msmarco_infonce_epochs_on_beir_dev": ("msmarco_infonce.yaml", _ON_BEIR_DEV),
    "msmarco_sigreg_epochs_on_beir_dev": ("msmarco_infonce.yaml", [*_LOWLR[:2], "optim.epochs=5", "loss.isotropy=sigreg",
                                                                   "loss.lambda_isotropy=0.01", *_ON_BEIR_DEV]),
    "sentences_selfsup_epochs_on_beir_dev": ("sentences_selfsup.yaml", _ON_BEIR_DEV),
    "ict_selfsup_epochs_on_beir_dev": ("ict_selfsup.yaml", _ON_BEIR_DEV),
}
CANDIDATES.update(EPOCHS_ON_DEV)


def ranked(candidates: dict) -> list[str]:
    """Candidates whose dev numbers chose nothing else, best mean dev NDCG@10 first."""
    return sorted((n for n in candidates if n not in EPOCHS_ON_DEV), key=lambda n: -candidates[n]["dev_score"])


def choose(candidates: dict) -> str | None:
    return next(iter(ranked(candidates)), None)


def _kept_base(entry: dict) -> str:
    """Why a best_or_init recipe equals vanilla exactly: no trained epoch beat the untrained heads on dev."""
    return (" (no trained epoch beat the untrained identity heads on dev for any seed: the base model was kept)"
            if entry.get("epochs") and not any(entry["epochs"]) else "")


def mean_test_ndcg(entry: dict) -> float:
    """Mean test NDCG@10 over both sets and all seeds."""
    return float(np.mean([np.mean(entry[k]["ndcg@10"]) for k in TEST_KEYS]))


def run(seeds: list[int], candidates: list[str], runs: Path, log=print) -> dict:
    t0 = time.time()
    vanilla = JEPAEncoder.from_pretrained("none", precision="fp32")
    base = {(ds, sp): evaluate_beir(vanilla, ds, split=sp) for ds, sp in list(DEV.items()) + list(TEST.items())}
    out: dict = {"seeds": seeds, "vanilla": {f"{ds}/{sp}": r["metrics"] for (ds, sp), r in base.items()},
                 "candidates": {}}
    for name in candidates:
        file, overrides = CANDIDATES[name]
        rows: dict = {f"{ds}/{sp}": {"ndcg@10": [], "pq": []} for ds, sp in list(DEV.items()) + list(TEST.items())}
        ckpts, epochs = [], []
        for seed in seeds:
            cfg = load_train_config(str(CONFIGS / file), [*overrides, f"seed={seed}", f"name={name}",
                                                          f"output_dir={runs}/{name}/seed{seed}"])
            # a finished run with the same config is reused (its checkpoint rewritten); delete --runs to retrain
            res = train(cfg, resume=True, show_progress_bar=False, log=lambda *_: None)
            ckpts.append(str(res.checkpoint))
            epochs.append(res.best_epoch)
            enc = JEPAEncoder.from_pretrained(res.checkpoint, precision="fp32")
            for ds, sp in list(DEV.items()) + list(TEST.items()):
                r = evaluate_beir(enc, ds, split=sp)
                rows[f"{ds}/{sp}"]["ndcg@10"].append(r["metrics"]["ndcg@10"])
                rows[f"{ds}/{sp}"]["pq"].append(r["per_query"]["ndcg@10"])
            log(f"{name} seed {seed} (epoch {res.best_epoch}): " + "  ".join(
                f"{k} {v['ndcg@10'][-1]:.4f}" for k, v in rows.items()))
        entry = {"config": file, "overrides": overrides, "checkpoints": ckpts, "epochs": epochs}
        for key, v in rows.items():
            ds, sp = key.split("/")
            mean_pq = {q: float(np.mean([p[q] for p in v["pq"]])) for q in v["pq"][0]}
            entry[key] = {"ndcg@10": v["ndcg@10"],
                          "paired_vs_vanilla": paired_test(mean_pq, base[(ds, sp)]["per_query"]["ndcg@10"])}
        entry["dev_score"] = float(np.mean([np.mean(entry[f"{ds}/{sp}"]["ndcg@10"]) for ds, sp in DEV.items()]))
        out["candidates"][name] = entry
    out["chosen"] = choose(out["candidates"])
    out["seconds"] = round(time.time() - t0, 1)
    return out


def write_report(res: dict, out_dir: Path) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "recipes.json").write_text(json.dumps(res, indent=2))
    v = res["vanilla"]
    keys = ["scifact/train", "nfcorpus/dev", "scifact/test", "nfcorpus/test"]
    lines = [
        "# Recipes for the default checkpoint (standard protocol)",
        "",
        f"Generated by `python -m benchmarks.recipes --ship` ({len(res['seeds'])} seeds: {res['seeds']}; "
        f"{res['seconds']} s). Base: all-mpnet-base-v2, frozen. NDCG@10, mean ± std over seeds; p = paired t-test "
        "over per-query NDCG@10 (mean over seeds) against vanilla MPNet on the same queries.",
        "",
        "**Selection is on dev only**: SciFact *train* judgments (no recipe here trains on them) and NFCorpus `dev`;",
        "the best mean dev NDCG@10 wins. The test columns are reported once, for every candidate, and chose nothing.",
        "",
        "| recipe | " + " | ".join(f"{k} (p)" for k in keys) + " | dev mean |",
        "|---|" + "---|" * (len(keys) + 1),
        "| vanilla all-mpnet-base-v2 | " + " | ".join(f"{v[k]['ndcg@10']:.4f}" for k in keys)
        + f" | {np.mean([v[k]['ndcg@10'] for k in keys[:2]]):.4f} |",
    ]
    def row(name: str, e: dict) -> str:
        cells = [f"{mean_std(e[k]['ndcg@10'])} ({e[k]['paired_vs_vanilla']['p_ttest']:.2g})" for k in keys]
        mark = " **(chosen)**" if name == res["chosen"] else ""
        return f"| {name}{mark} | " + " | ".join(cells) + f" | {e['dev_score']:.4f} |"

    lines += [row(n, e) for n, e in res["candidates"].items() if n not in ABLATIONS and n not in EPOCHS_ON_DEV]
    ablated = {n: e for n, e in res["candidates"].items() if n in ABLATIONS}
    if ablated:
        lines += ["", "**Ablation**: one lever changed at a time on top of `msmarco_infonce_lowlr_projection_route` "
                  "(same seeds; these compete in the dev choice like any candidate):", "",
                  "| lever changed | overrides | " + " | ".join(f"{k} (p)" for k in keys) + " | dev mean | Δ dev mean vs base |",
                  "|---|---|" + "---|" * (len(keys) + 2)]
        base_over = set(_LOWLR)
        base_dev = res["candidates"].get(ABLATION_BASE, {}).get("dev_score")
        for n, e in ablated.items():
            extra = " ".join(o for o in e["overrides"] if o not in base_over)
            delta = f" {e['dev_score'] - base_dev:+.4f} |" if base_dev is not None else " — |"
            lines.append(row(n, e).replace(f"| {n}", f"| {n} | `{extra}`", 1) + delta)
        lines += ["", "Reading: residual identity-initialised heads are the lever that matters (random-init plain heads, "
                  "768-d or 512-d, lose 1.5–2 points everywhere); at this low LR the predictive loss and the three "
                  "isotropy terms (one λ each, not tuned) move dev by less than the seed-to-seed spread."]
    on_dev = {n: e for n, e in res["candidates"].items() if n in EPOCHS_ON_DEV}
    if on_dev:
        lines += ["", "**Epochs chosen on the BEIR dev sets** (`data.dev_beir=scifact:train,nfcorpus:dev`, "
                  "`select=best_or_init`: the epoch, or the untrained identity heads, with the best mean dev NDCG@10). "
                  "Their dev mean is the best of several looks at the same numbers, so it is biased upwards: they are "
                  "reported here and never chosen. The test columns say whether choosing epochs on BEIR dev transfers.",
                  "", "| recipe | overrides | " + " | ".join(f"{k} (p)" for k in keys) + " | dev mean | epochs chosen |",
                  "|---|---|" + "---|" * (len(keys) + 2)]
        for n, e in on_dev.items():
            extra = " ".join(o for o in e["overrides"] if o not in _ON_BEIR_DEV)
            lines.append(row(n, e).replace(f"| {n}", f"| {n} | `{extra or '—'}`", 1)
                         + f" {e.get('epochs', '—')} |")
        vdev, vtest = (np.mean([v[k]["ndcg@10"] for k in ks]) for ks in (DEV_KEYS, TEST_KEYS))
        lines += ["", "Mean over both sets and seeds, against vanilla (dev {:.4f}, test {:.4f}):".format(vdev, vtest), ""]
        lines += [f"- {n}: dev {e['dev_score'] - vdev:+.4f}, test {mean_test_ndcg(e) - vtest:+.4f}{_kept_base(e)}"
                  for n, e in on_dev.items()]
    if res["chosen"]:
        lines += ["", f"Chosen on dev: **{res['chosen']}** (config `train/configs/{res['candidates'][res['chosen']]['config']}`"
                  f" {' '.join('--set ' + o for o in res['candidates'][res['chosen']]['overrides'])}); the shipped "
                  "checkpoint is its seed-0 run.", ""]
    (out_dir / "recipes.md").write_text("\n".join(lines))
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        names = list(res["candidates"])
        fig, axes = plt.subplots(1, 2, figsize=(11, 4))
        for ax, key in zip(axes, ["scifact/test", "nfcorpus/test"]):
            means = [np.mean(res["candidates"][n][key]["ndcg@10"]) for n in names]
            stds = [np.std(res["candidates"][n][key]["ndcg@10"], ddof=1) if len(res["seeds"]) > 1 else 0 for n in names]
            ax.bar(range(len(names)), means, yerr=stds, capsize=4, color="tab:blue")
            ax.axhline(v[key]["ndcg@10"], color="k", ls="--", label="vanilla MPNet")
            ax.set_xticks(range(len(names)), names, rotation=20, ha="right", fontsize=7)
            ax.set_title(f"{key} NDCG@10")
            ax.set_ylim(min(means + [v[key]["ndcg@10"]]) - 0.03, max(means + [v[key]["ndcg@10"]]) + 0.02)
            ax.legend()
        fig.tight_layout()
        fig.savefig(out_dir / "recipes.png", dpi=110)
    except ImportError:
        pass


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--candidates", nargs="+", default=list(CANDIDATES))
    p.add_argument("--runs", type=Path, default=Path("runs/recipes"))
    p.add_argument("--out", type=Path, default=RESULTS)
    p.add_argument("--ship", action="store_true")
    p.add_argument("--card-only", action="store_true",
                   help="no training: rewrite report and model card from the saved JSON (with --ship, also ship its choice)")
    args = p.parse_args()
    if args.card_only:  # no training: the saved JSON (with --ship: also copy its chosen seed-0 checkpoint)
        res = json.loads((args.out / "recipes.json").read_text())
    else:
        res = run(args.seeds, args.candidates, args.runs)
        try:  # candidates not re-run keep their saved results (same seeds); the choice is remade over all of them
            saved = json.loads((args.out / "recipes.json").read_text())
        except (OSError, ValueError):
            saved = None
        if saved and saved.get("seeds") == res["seeds"]:
            kept = {n: e for n, e in saved["candidates"].items() if n not in res["candidates"] and n in CANDIDATES}
            res["candidates"] = {**kept, **res["candidates"]}
            res["candidates"] = {n: res["candidates"][n] for n in CANDIDATES if n in res["candidates"]}
            res["chosen"] = choose(res["candidates"])
            res["seconds"] = round(res["seconds"] + saved.get("seconds", 0), 1)
    write_report(res, args.out)
    if args.ship:
        src = Path(res["candidates"][res["chosen"]]["checkpoints"][0])
        if not (src / "adapter_config.json").is_file():
            raise SystemExit(f"the chosen recipe's seed-0 checkpoint is gone ({src}): re-run without --card-only")
        if DEFAULT_CHECKPOINT.exists():
            shutil.rmtree(DEFAULT_CHECKPOINT)
        shutil.copytree(src, DEFAULT_CHECKPOINT)
        print(f"shipped {src} → {DEFAULT_CHECKPOINT}")
    if args.ship or args.card_only:
        write_model_card(res, DEFAULT_CHECKPOINT)


def write_model_card(res: dict, dest: Path) -> None:
    """A model card next to the shipped checkpoint: what it is, what it saw, how it scores, where it fails."""
    name = res["chosen"]
    e = res["candidates"][name]
    meta = json.loads((dest / "adapter_config.json").read_text())
    fp, tr = meta["base_fingerprint"], meta["training"]
    v = res["vanilla"]
    rows = []
    for key in ["scifact/train", "nfcorpus/dev", "scifact/test", "nfcorpus/test"]:
        p = e[key]["paired_vs_vanilla"]
        rows.append(f"| {key} | {v[key]['ndcg@10']:.4f} | {mean_std(e[key]['ndcg@10'])} | {p['mean_diff']:+.4f} | "
                    f"{p['p_ttest']:.2g} |")
    corpus_pairs = {"titles": "document title → the document",
                    "sentences": "one sentence of the document → the document",
                    "ict": "one sentence of the document → the document without it"}.get(tr["data_source"].split(":")[0])
    if corpus_pairs:
        data = (f"self-supervised pairs ({corpus_pairs}) built from the *unlabelled* corpora of BEIR "
                "SciFact (CC BY-NC 2.0) and NFCorpus (academic use only); no queries and no judgments were read")
    else:
        data = "6,980 MS MARCO passage query–positive pairs (non-commercial research use only)"
    test_sig = [k for k in TEST_KEYS if e[k]["paired_vs_vanilla"]["p_ttest"] < 0.05]
    avg = mean_test_ndcg(e)
    vavg = np.mean([v[k]["ndcg@10"] for k in TEST_KEYS])
    verdict = (f"On the BEIR test sets it is {'significantly different from' if test_sig else 'statistically indistinguishable from'} "
               f"vanilla MPNet ({', '.join(test_sig) if test_sig else 'p ≥ 0.05 on both'}); average NDCG@10 {avg:.4f} vs "
               f"vanilla {vavg:.4f} ({avg - vavg:+.4f}).")
    order = ranked(res["candidates"])
    runner = order[1] if len(order) > 1 else None
    margin = e["dev_score"] - res["candidates"][runner]["dev_score"] if runner else None
    dev_sd = float(np.mean([np.std(e[k]["ndcg@10"], ddof=1) if len(e[k]["ndcg@10"]) > 1 else 0.0 for k in DEV_KEYS]))
    tie_note = (f" The runner-up, `{runner}`, is {margin:.4f} behind on dev — less than the seed-to-seed std "
                f"({dev_sd:.4f}), so the choice among the top candidates is a near tie; they score alike on test too."
                if runner and margin < dev_sd else "")
    on_dev = {n: c for n, c in res["candidates"].items() if n in EPOCHS_ON_DEV}
    on_dev_note = "" if not on_dev else (
        "\n- Choosing the epoch on the BEIR dev sets themselves (reported, never shipped) moved mean test NDCG@10 against "
        "vanilla by "
        + ", ".join(f"{mean_test_ndcg(c) - vavg:+.4f} (`{n}`{', the base model kept' if _kept_base(c) else ''})"
                    for n, c in on_dev.items())
        + " (`benchmarks/results/recipes.md`).")
    route_note = ("unused at retrieval (queries take the projection only)" if meta["model"]["query_route"] == "projection"
                  else "used for queries")
    card = f"""# jepa-rag default checkpoint

- **Base model**: `{fp['model_id']}` (frozen), weights sha256 `{fp['weights_sha256']}`, max_seq_length
  {fp['max_seq_length']}, normalised outputs: {fp['normalize']}, {fp['dim']}-d.
- **Heads**: residual, identity-initialised projection ({meta['model']['projection']['in_dim']}→{meta['model']['projection']['out_dim']}) and predictor; queries take
  `{meta['model']['query_route']}`, documents the projection; cosine scoring on L2-normalised outputs.
- **Recipe**: `{name}` (`train/configs/{e['config']}` {' '.join('--set ' + o for o in e['overrides'])}), seed {tr['seed']},
  epoch {tr['selected_epoch']} (chosen by {tr['selection']}).
- **Training data**: {data}. Data sha256 `{tr['data_sha256']}`.
- **Why this recipe**: best mean dev NDCG@10 among the candidates in `benchmarks/results/recipes.md`
  ({len(res['seeds'])} seeds each); dev = SciFact train judgments + NFCorpus dev judgments. Test sets chose nothing.{tie_note}

## Scores (standard protocol, NDCG@10; recipe mean ± std over seeds {res['seeds']}; p = paired t-test vs vanilla)

| split | vanilla MPNet | this recipe | Δ | p |
|---|---|---|---|---|
{chr(10).join(rows)}

## Known limits

- {verdict}
- No candidate trained without BEIR labels beat vanilla MPNet on dev by a meaningful margin: the base model was
  itself trained on MS MARCO, so MS MARCO pairs teach the heads little it does not know. For real gains, adapt the
  heads to your own data (`benchmarks/results/indomain.md`).{on_dev_note}
- The predictor head is stored but {route_note}.
- English only, like the base model; 384-token inputs (longer text is truncated).
- Licences of the training data restrict use: see above.
"""
    (dest / "MODEL_CARD.md").write_text(card)


if __name__ == "__main__":
    main()
