"""python -m train [--pairs pairs.jsonl --corpus <documents>] [--config <name or file>] [--set key=value ...]"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from jepa_rag.config import load_train_config
from jepa_rag.errors import ConfigError, JEPARagError

if TYPE_CHECKING:
    from .loop import TrainResult

CONFIG_DIR = Path(__file__).resolve().parent / "configs"
# what --pairs trains with when no --config is given
PAIRS_DEFAULT_CONFIG = "own_pairs"


def bundled_configs() -> list[str]:
    """The names ``--config`` accepts for the configs shipped in ``train/configs`` (``seed/…`` for the seed's)."""
    return sorted(p.relative_to(CONFIG_DIR).with_suffix("").as_posix() for p in CONFIG_DIR.rglob("*.yaml"))


def resolve_config(name_or_path: str) -> str:
    """A config file: ``name_or_path`` itself when it is a file, else the bundled config of that name (with or
    without ``.yaml``, e.g. ``indomain``, ``seed/baseline``, ``train/configs/indomain.yaml`` from anywhere)."""
    if Path(name_or_path).expanduser().is_file():
        return str(Path(name_or_path).expanduser())
    name = name_or_path.removesuffix(".yaml").removesuffix(".yml")
    name = name.removeprefix("train/configs/").removeprefix("configs/")
    bundled = CONFIG_DIR / f"{name}.yaml"
    if bundled.is_file():
        return str(bundled)
    raise ConfigError(f"config not found: {name_or_path!r} is neither a file nor a bundled config "
                      f"(bundled: {', '.join(bundled_configs())})")


def _fit_defaults(overrides: list[str]) -> list[str]:
    """The --pairs defaults with ``--set model.predictor=null``: no predictor, so no predictive term and queries
    through the projection, unless those were set too."""
    keys = {o.split("=", 1)[0].strip() for o in overrides}
    if any(o.replace(" ", "") in ("model.predictor=null", "model.predictor=~", "model.predictor=") for o in overrides):
        return ([] if "loss.lambda_predictive" in keys else ["loss.lambda_predictive=0"]) + \
               ([] if "model.query_route" in keys else ["model.query_route=projection"])
    return []


def summary(result: TrainResult, source: str) -> str:
    """What the run did and how to use its checkpoint, for the end of the command's output."""
    m = result.dev_metric
    ck = str(result.checkpoint)
    epoch = f"epoch {result.best_epoch}" if result.best_epoch else "epoch 0 (the untrained heads = the base model)"
    lines = ["", "=== training summary ===",
             f"pairs: {result.num_train_pairs} trained on, {result.num_dev_pairs} held out for dev ({source})",
             f"dev {m}: {result.dev_before:.4f} (base model) → {result.dev_after:.4f} "
             f"({result.dev_after - result.dev_before:+.4f})",
             f"chosen on dev: {epoch}, queries through the {result.query_route}"]
    fusion = (result.retrieval or {}).get("fusion")
    if fusion:
        how = (f"lexical weight {fusion.get('lexical_weight')} ({fusion.get('normalization')})"
               if fusion.get("method") == "blend" else fusion.get("method"))
        chosen = result.retrieval.get("chosen_on", {}).get("mean")
        lines.append(f"hybrid fusion (BM25 + dense) chosen on dev: {how}"
                     + (f", dev {m} {chosen:.4f}" if chosen is not None else ""))
    lines += [f"checkpoint: {ck}",
              "use it:",
              f"  LlamaIndex  from llama_index.embeddings.jepa_rag import JEPAEmbedding; JEPAEmbedding({ck!r})",
              f"  LangChain   from langchain_jepa_rag import JEPAEmbeddings; JEPAEmbeddings(checkpoint={ck!r})",
              f"  Chroma      from jepa_rag.chroma import JEPAEmbeddingFunction; JEPAEmbeddingFunction({ck!r})",
              f"  evaluate    python -m jepa_rag.evaluate --data <beir folder> --checkpoint {ck} --retriever hybrid",
              "next, from the command line (a new collection: vectors of two checkpoints cannot share one):",
              f"  jepa-rag ingest <your folder> --collection <new name> --checkpoint {ck}",
              f"  jepa-rag query \"your question\" --collection <new name> --checkpoint {ck}"]
    return "\n".join(lines)


def main(argv: list[str] | None = None, prog: str = "python -m train") -> int:
    p = argparse.ArgumentParser(
        prog=prog, description="Train jepa-rag heads and write a checkpoint.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="bundled configs (--config <name>): " + ", ".join(bundled_configs()) + "\n"
               f"--pairs without --config trains with '{PAIRS_DEFAULT_CONFIG}': identity-initialised residual heads, "
               "InfoNCE with\nhard negatives mined from --corpus, epoch (early stopping), query route and hybrid "
               "fusion chosen on\ndev, the untrained heads competing (never worse than the base model on dev).")
    p.add_argument("--config", default=None,
                   help="a bundled config's name (e.g. indomain; listed below) or a YAML file")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config value, e.g. --set optim.epochs=3 --set seed=1 (repeatable)")
    p.add_argument("--pairs", default=None,
                   help="train on your own JSONL pairs ({'query', 'positive'} per line, or {'query', 'doc_id'} with "
                        "doc_id a --corpus document's id or path inside the folder; a query with several positives "
                        "takes several lines)")
    p.add_argument("--corpus", default=None,
                   help="with --pairs: your documents (a corpus.jsonl, a JSONL of {id?, title?, text} or a folder of "
                        ".txt/.md files); negatives are mined from it and dev ranks it")
    p.add_argument("--beir", default=None, help="train on a BEIR folder's qrels (with --split)")
    p.add_argument("--split", default=None, help="the BEIR split to train on (default: train)")
    p.add_argument("--output", default=None, help="output folder (default: the config's output_dir)")
    p.add_argument("--embeddings", default="auto", help="precomputed base embeddings: .npz, folder, auto or off")
    p.add_argument("--no-resume", action="store_true", help="ignore a saved train_state and start over")
    p.add_argument("--keep-state", action="store_true",
                   help="keep <output>/train_state (resumable state) after a successful run; removed by default")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    args = p.parse_args(argv)
    overrides = list(args.set)
    if args.pairs and args.beir:
        p.error("give --pairs or --beir, not both")
    if args.corpus and not args.pairs:
        p.error("--corpus goes with --pairs (a BEIR folder brings its own corpus)")
    config = args.config
    if args.pairs and config is None:
        config = PAIRS_DEFAULT_CONFIG
        overrides = _fit_defaults(overrides) + overrides
    if args.pairs:
        overrides += ["data.source=pairs", f"data.path={args.pairs}"]
    if args.corpus:
        overrides.append(f"data.corpus={args.corpus}")
    if args.beir:
        overrides += ["data.source=beir", f"data.path={args.beir}"]
    if args.split:
        overrides.append(f"data.split={args.split}")
    if args.output:
        overrides.append(f"output_dir={args.output}")
    from .loop import train  # torch: only once there is something to train

    try:
        cfg = load_train_config(resolve_config(config) if config else None, overrides)
        result = train(cfg, embeddings=args.embeddings, resume=not args.no_resume,
                       show_progress_bar=not args.no_progress, keep_state=args.keep_state)
    except (JEPARagError, OSError) as exc:  # OSError: an unreadable input or unwritable --output, said in one line
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(summary(result, cfg.data.dev_beir or cfg.data.dev_split or f"{cfg.data.dev_fraction:.0%} of the queries"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
