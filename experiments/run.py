"""Train and evaluate the recipes of a candidates file; append one JSON row per (recipe, seed, split).

    python -m experiments.run experiments/candidates/recipes.yaml              # rows: runs/experiments/recipes.jsonl
    python -m experiments.run experiments/candidates/indomain.yaml --seeds 0   # one seed
    python -m experiments.run experiments/candidates/recipes.yaml --recipes ict_selfsup --dry-run

A candidates file names an experiment, its seeds, and groups of recipes (a bundled train config plus ``--set``
overrides) with the splits each group is evaluated on: ``dev`` splits choose, ``test`` splits are reported.
``training-dev`` is the held-out dev split the training itself carves (its best-epoch NDCG@10 from the checkpoint).
With ``choose: screen`` only the first seed of every competing recipe is trained and evaluated on dev; the best on
dev (see :func:`experiments.table.choose`) is then trained with every seed and evaluated on test, so test scores
exist for the chosen recipe only. Recipes with ``compete: false`` run every seed on every split and choose nothing.

Re-running appends only what the rows file lacks (a finished training with the same config is reused, an
interrupted one resumes). Nothing is shipped: ``python -m experiments.ship_default`` does that, on purpose.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import functools
import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
RUNS = ROOT / "runs" / "experiments"
TRAINING_DEV = "training-dev"
VANILLA = "vanilla"
METRIC = "ndcg@10"  # the metric whose per-query values the rows keep (paired tests)


@dataclass
class Recipe:
    name: str
    group: str
    config: str
    overrides: list[str]
    dev: list[str]
    test: list[str]
    compete: bool = True
    reference: dict[str, float] = field(default_factory=dict)  # published numbers to compare with, per split


@dataclass
class Candidates:
    experiment: str
    seeds: list[int]
    choose: str  # "none" | "all" (every seed of every recipe, then choose) | "screen" (first seed, then the chosen)
    protocols: dict[str, str | None]  # protocol name -> evaluate_beir scoring (None: the checkpoint's own)
    recipes: list[Recipe]

    @property
    def splits(self) -> list[str]:
        return list(dict.fromkeys(s for r in self.recipes for s in [*r.dev, *r.test] if s != TRAINING_DEV))


def load_candidates(path: str | Path) -> Candidates:
    """Read and check a candidates YAML (see ``experiments/candidates/*.yaml``)."""
    data = yaml.safe_load(Path(path).read_text()) or {}
    unknown = set(data) - {"experiment", "seeds", "choose", "protocols", "groups"}
    if unknown:
        raise ValueError(f"{path}: unknown keys {sorted(unknown)}")
    choose = data.get("choose", "none")
    if choose not in ("none", "all", "screen"):
        raise ValueError(f"{path}: choose must be none, all or screen, not {choose!r}")
    recipes = []
    for group, g in (data.get("groups") or {}).items():
        for name, r in (g.get("recipes") or {}).items():
            r = {"set": r} if isinstance(r, list) else (r or {})
            recipes.append(Recipe(
                name=name, group=group, config=r.get("config", g.get("config")),
                overrides=[*g.get("set", []), *r.get("set", [])], dev=list(g.get("dev", [])),
                test=list(g.get("test", [])), compete=choose != "none" and r.get("compete", True),
                reference=r.get("reference", {})))
    if not recipes:
        raise ValueError(f"{path}: no recipes")
    for r in recipes:
        if not r.config:
            raise ValueError(f"{path}: recipe {r.group}/{r.name} names no config")
        for s in [*r.dev, *r.test]:
            if s != TRAINING_DEV and s.count("/") != 1:
                raise ValueError(f"{path}: split {s!r} is not <data set>/<split> or {TRAINING_DEV}")
    return Candidates(experiment=data.get("experiment") or Path(path).stem, seeds=list(data.get("seeds", [0])),
                      choose=choose, protocols=data.get("protocols") or {"standard": None}, recipes=recipes)


def train_command(recipe: Recipe, seed: int) -> str:
    last = {o.split("=", 1)[0]: o for o in [*recipe.overrides, f"seed={seed}"]}  # the later value wins, as in training
    return f"python -m train --config {recipe.config}" + "".join(f" --set {o}" for o in last.values())


def _finished(out: Path, cfg) -> tuple[Path | None, dict | None]:
    """The checkpoint a finished training with this very config left in ``out`` (train() drops its resumable state
    once done, so a finished run is recognised by the config its checkpoint stores)."""
    from jepa_rag.config import to_dict

    ckpt = out / "checkpoint"
    try:
        meta = json.loads((ckpt / "adapter_config.json").read_text())
    except (OSError, ValueError):
        return None, None
    same = meta.get("training", {}).get("config") == json.loads(json.dumps(to_dict(cfg)))
    return (ckpt, meta) if same else (None, None)


def train_recipe(recipe: Recipe, seed: int, out: Path) -> tuple[Path, dict]:
    """Train ``recipe`` with ``seed`` into ``out`` via the library; a finished run with the same config is reused,
    an interrupted one resumes (delete ``out`` to retrain). Returns the checkpoint and its adapter_config."""
    from jepa_rag.config import load_train_config
    from jepa_rag.train import train
    from jepa_rag.train.__main__ import resolve_config

    cfg = load_train_config(resolve_config(recipe.config), [*recipe.overrides, f"seed={seed}", f"output_dir={out}"])
    checkpoint, meta = _finished(out, cfg)
    if checkpoint is None:
        checkpoint = Path(train(cfg, resume=True, show_progress_bar=False, log=lambda *_: None).checkpoint)
        meta = json.loads((checkpoint / "adapter_config.json").read_text())
    return checkpoint, meta


def read_rows(path: Path) -> list[dict]:
    """The rows of a JSONL file (a line cut short by a kill is skipped: it is re-run)."""
    rows = []
    if path.is_file():
        for line in path.read_text().splitlines():
            try:
                rows.append(json.loads(line))
            except ValueError:
                continue
    return rows


def _append(path: Path, row: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as fh:
        fh.write(json.dumps(row) + "\n")
        fh.flush()


@functools.lru_cache(maxsize=1)
def _encoder(checkpoint: str):
    from jepa_rag import JEPAEncoder

    return JEPAEncoder.from_pretrained(checkpoint, precision="fp32")


def evaluate_split(checkpoint: str, split: str, protocols: dict[str, str | None]) -> dict:
    """``checkpoint`` ("none": vanilla all-mpnet-base-v2) on ``<data set>/<split>`` under each protocol's scoring:
    the metrics and the per-query values of :data:`METRIC`."""
    from jepa_rag.evaluate import evaluate_beir

    ds, sp = split.split("/")
    scores = {}
    for protocol, scoring in protocols.items():
        r = evaluate_beir(_encoder(checkpoint), ds, split=sp, scoring=scoring)
        scores[protocol] = {"metrics": r["metrics"], "per_query": r["per_query"][METRIC]}
    return scores


class Runner:
    """Runs a candidates file; ``train`` and ``evaluate`` are :func:`train_recipe` and :func:`evaluate_split`."""

    def __init__(self, cands: Candidates, rows_path: Path, runs_dir: Path, log=print,
                 train=None, evaluate=None):
        self.c, self.rows_path, self.runs_dir, self.log = cands, rows_path, runs_dir, log
        self.train, self.evaluate = train or train_recipe, evaluate or evaluate_split
        self.done = {(r.get("group"), r["recipe"], r.get("seed"), r["split"]) for r in read_rows(rows_path)}

    def _row(self, recipe: Recipe | None, seed: int | None, split: str, **extra) -> dict:
        base = {"experiment": self.c.experiment, "group": recipe.group if recipe else None,
                "recipe": recipe.name if recipe else VANILLA, "seed": seed, "split": split,
                "role": ("dev" if recipe and split in recipe.dev else "test") if recipe else None}
        if recipe:
            base.update(config=recipe.config, overrides=recipe.overrides, compete=recipe.compete,
                        reference=recipe.reference.get(split))
        return {**base, **extra, "when": _dt.datetime.now().strftime("%Y-%m-%d %H:%M")}

    def vanilla(self) -> None:
        """Vanilla all-mpnet-base-v2 on every split once: the baseline of the paired tests."""
        todo = [s for s in self.c.splits if (None, VANILLA, None, s) not in self.done]
        for split in todo:
            _append(self.rows_path, self._row(None, None, split, scores=self.evaluate("none", split, self.c.protocols)))
            self.done.add((None, VANILLA, None, split))
            self.log(f"vanilla {split} done")

    def run(self, recipe: Recipe, seed: int, splits: list[str]) -> None:
        """Train ``recipe`` with ``seed`` (reused when finished) and append the rows ``splits`` still lack."""
        todo = [s for s in splits if (recipe.group, recipe.name, seed, s) not in self.done]
        if not todo:
            return
        t0 = time.time()
        checkpoint, meta = self.train(
            recipe, seed, self.runs_dir / self.c.experiment / recipe.group / recipe.name / f"seed{seed}")
        common = {"checkpoint": str(checkpoint), "epoch": meta["training"].get("selected_epoch"),
                  "command": train_command(recipe, seed), "train_seconds": round(time.time() - t0, 1)}
        for split in todo:
            if split == TRAINING_DEV:
                scores = {p: {"metrics": meta["metrics"]["dev"], "per_query": None} for p in self.c.protocols}
                row = self._row(recipe, seed, split, scores=scores,
                                at_init=meta["metrics"].get("dev_at_init"), **common)
            else:
                row = self._row(recipe, seed, split, scores=self.evaluate(str(checkpoint), split, self.c.protocols),
                                **common)
            _append(self.rows_path, row)
            self.done.add((recipe.group, recipe.name, seed, split))
            self.log(f"{recipe.group}/{recipe.name} seed {seed} {split}: "
                     + "  ".join(f"{p} {s['metrics'][METRIC]:.4f}" for p, s in row["scores"].items()))

    def all(self, seeds: list[int]) -> None:
        from experiments.table import choose, summarise

        self.vanilla()
        for group in dict.fromkeys(r.group for r in self.c.recipes):
            recipes = [r for r in self.c.recipes if r.group == group]
            if self.c.choose == "screen":
                for r in recipes:
                    if r.compete:
                        self.run(r, seeds[0], r.dev)
                summary = summarise(read_rows(self.rows_path))
                chosen = choose(summary["groups"].get(group, {}))
                self.log(f"{group}: chosen on dev: {chosen}")
                recipes = [r for r in recipes if r.name == chosen or not r.compete]
            for r in recipes:
                for seed in seeds:
                    self.run(r, seed, [*r.dev, *r.test])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("candidates", type=Path, help="a candidates YAML, e.g. experiments/candidates/recipes.yaml")
    p.add_argument("--seeds", type=int, nargs="+", help="instead of the file's seeds")
    p.add_argument("--recipes", nargs="+", help="only these recipes (names from the file)")
    p.add_argument("--rows", type=Path, help="the JSONL to append to (default runs/experiments/<experiment>.jsonl)")
    p.add_argument("--runs", type=Path, default=RUNS, help="where the trainings write (default runs/experiments)")
    p.add_argument("--dry-run", action="store_true", help="print the training commands and stop")
    args = p.parse_args()
    cands = load_candidates(args.candidates)
    if args.recipes:
        missing = set(args.recipes) - {r.name for r in cands.recipes}
        if missing:
            p.error(f"not in {args.candidates}: {sorted(missing)}")
        cands.recipes = [r for r in cands.recipes if r.name in args.recipes]
    seeds = args.seeds or cands.seeds
    if args.dry_run:
        for r in cands.recipes:
            for s in seeds:
                print(f"{r.group}/{r.name} seed {s}: {train_command(r, s)}  -> {', '.join([*r.dev, *r.test])}")
        return
    rows = args.rows or RUNS / f"{cands.experiment}.jsonl"
    Runner(cands, rows, args.runs).all(seeds)
    print(f"rows: {rows}")


if __name__ == "__main__":
    main()
