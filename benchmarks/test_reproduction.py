"""The research note's table in its quick form (1 seed) and the in-domain SciFact number, regenerated on every run.

    HF_HUB_OFFLINE=1 python -m pytest -q benchmarks/test_reproduction.py -p no:cacheprovider

Both train real heads from the cached base vectors (about 3 min, and the session's shared in-domain SciFact heads
about 1 min, on 2 CPU cores) and write ``seed_reproduction_quick.json`` and ``indomain_quick.json``. The 3-seed tables
these shorten come from the lab (``experiments/README.md``); each quick run is checked against the committed one, so
a change that silently alters training (the LR schedule, mining, the losses) fails here.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from benchmarks._support import require_beir_vectors, save_result

RESULTS = Path(__file__).resolve().parent / "results"
CMD = "HF_HUB_OFFLINE=1 python -m pytest -q benchmarks/test_reproduction.py -p no:cacheprovider"
# Seed 0 of a variant must land within this of the committed 3-seed run's seed 0 (same code, same data; only the
# machine's floating-point reductions may differ). Seed-to-seed spread is ~0.002–0.005, so a real change shows.
SAME_SEED_TOLERANCE = 0.01
DATASETS = ("scifact", "nfcorpus")
# the research note's variants: the bundled configs train/configs/seed/<name>.yaml. Two are left to the lab's
# 3-seed table (make seed-reproduction) to keep the CI run within its time budget: jepa_10k_e2 is jepa_10k_e1's
# recipe one epoch longer, a path jepa_10k_e3 (two epochs longer) already takes; 512dim_10k is jepa_10k_e1's losses
# with a 512-d projection, whose shapes the unit tests of the heads cover
VARIANTS = ("jepa_10k_e1", "jepa_10k_e3", "jepa_iso15_pred12", "pure_isotropy_only", "baseline")
INDOMAIN_SCIFACT_TARGET = 0.762  # in-domain SciFact test NDCG@10 the adaptation must reach


def _committed(name: str) -> dict | None:
    try:
        return json.loads((RESULTS / name).read_text())
    except (OSError, ValueError):
        return None


def _seed0_before(committed: dict | None, variant: str, ds: str) -> float | None:
    """Seed 0's standard-protocol NDCG@10 in the committed 3-seed run (the lab's generic summary or the older shape)."""
    if not committed:
        return None
    if "groups" in committed:
        x = committed["groups"].get("default", {}).get("recipes", {}).get(variant, {}).get("splits", {})
        x = x.get(f"{ds}/test", {}).get("standard")
        return x["values"][x["seeds"].index(0)] if x and 0 in x["seeds"] else None
    if committed.get("seeds", [])[:1] != [0] or variant not in committed.get("variants", {}):
        return None
    return committed["variants"][variant][ds]["standard_protocol"][0]


def _seed_reproduction(runs: Path) -> dict:
    """Every variant, seed 0: both protocols on both BEIR test sets, paired test vs vanilla (standard protocol)."""
    import jepa_rag.train
    from jepa_rag import JEPAEncoder, paired_test
    from jepa_rag.config import load_train_config
    from jepa_rag.evaluate import evaluate_beir
    from jepa_rag.train import train

    t0 = time.time()
    configs = Path(jepa_rag.train.__file__).resolve().parent / "configs" / "seed"
    vanilla = JEPAEncoder.from_pretrained("none", precision="fp32")
    base = {ds: evaluate_beir(vanilla, ds) for ds in DATASETS}
    out: dict = {"seeds": [0], "vanilla": {ds: base[ds]["metrics"] for ds in DATASETS}, "variants": {}}
    for name in VARIANTS:
        cfg = load_train_config(str(configs / f"{name}.yaml"), ["seed=0", f"output_dir={runs}/{name}/seed0"])
        res = train(cfg, resume=False, show_progress_bar=False, log=lambda *_: None)
        enc = JEPAEncoder.from_pretrained(res.checkpoint, precision="fp32")
        out["variants"][name] = {}
        for ds in DATASETS:
            own = evaluate_beir(enc, ds)  # the checkpoint's own scoring: the seed protocol
            std = evaluate_beir(enc, ds, scoring="cosine")
            out["variants"][name][ds] = {
                "seed_protocol": [own["metrics"]["ndcg@10"]], "standard_protocol": [std["metrics"]["ndcg@10"]],
                "paired_vs_vanilla": paired_test(std["per_query"]["ndcg@10"], base[ds]["per_query"]["ndcg@10"])}
    out["seconds"] = round(time.time() - t0, 1)
    return out


def test_seed_reproduction_quick(benchmark, shared_data, mpnet, tmp_path):
    """The research note's variants but jepa_10k_e2 and 512dim_10k, seed 0, both protocols; compared with the
    committed 3-seed run."""
    for ds in DATASETS:
        require_beir_vectors(mpnet, ds, full_mode=False)
    committed = _committed("seed_reproduction.json")
    res = benchmark.pedantic(lambda: _seed_reproduction(tmp_path / "runs"), rounds=1, iterations=1)
    save_result("seed_reproduction_quick", res, CMD + " -k seed_reproduction")
    benchmark.extra_info["seconds"] = res["seconds"]
    drift = []
    for name, entry in res["variants"].items():
        for ds in DATASETS:
            got = entry[ds]["standard_protocol"][0]
            benchmark.extra_info[f"{name} {ds}"] = got
            assert 0.0 < got < 1.0, f"{name} {ds}: NDCG@10 {got} is not a plausible score"
            ref = _seed0_before(committed, name, ds)
            if ref is not None and abs(got - ref) > SAME_SEED_TOLERANCE:
                drift.append(f"{name} {ds}: {got:.4f} now vs {ref:.4f} in seed_reproduction.json")
    assert not drift, "seed 0 no longer reproduces the committed run (training changed?):\n" + "\n".join(drift)


def test_indomain_scifact_quick(benchmark, indomain_scifact):
    """SciFact train → SciFact test with the bundled `indomain` config, seed 0: must still meet the target."""
    from jepa_rag import JEPAEncoder, paired_test
    from jepa_rag.evaluate import evaluate_beir

    def evaluate():
        base = evaluate_beir(JEPAEncoder.from_pretrained("none", precision="fp32"), "scifact")
        r = evaluate_beir(JEPAEncoder.from_pretrained(indomain_scifact.checkpoint, precision="fp32"), "scifact")
        return base, r

    base, r = benchmark.pedantic(evaluate, rounds=1, iterations=1)
    ndcg, vanilla = r["metrics"]["ndcg@10"], base["metrics"]["ndcg@10"]
    p = paired_test(r["per_query"]["ndcg@10"], base["per_query"]["ndcg@10"])
    extra = "".join(f" --set {o}" for o in indomain_scifact.overrides)
    res = {"seeds": [0], "seconds": indomain_scifact.seconds, "datasets": {"scifact": {
        "vanilla": vanilla, "ndcg@10": [ndcg], "epochs": [indomain_scifact.best_epoch],
        "overrides": indomain_scifact.overrides, "paired_vs_vanilla": p, "target": INDOMAIN_SCIFACT_TARGET,
        "train_seconds": indomain_scifact.seconds,
        "commands": [f"python -m train --config indomain --beir scifact --split train --set seed=0{extra}"]}}}
    save_result("indomain_quick", res, CMD + " -k indomain")
    benchmark.extra_info.update({"ndcg@10": ndcg, "vanilla": vanilla, "p": p["p_ttest"],
                                 "train_seconds": indomain_scifact.seconds})
    assert ndcg >= INDOMAIN_SCIFACT_TARGET, (
        f"in-domain SciFact NDCG@10 {ndcg:.4f} fell below the target {INDOMAIN_SCIFACT_TARGET}")
    assert p["mean_diff"] > 0 and p["p_ttest"] < 0.05, f"in-domain SciFact is not significantly above vanilla: {p}"
