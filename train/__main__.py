"""python -m train --config train/configs/<name>.yaml [--set key=value ...]"""

from __future__ import annotations

import argparse
import sys

from jepa_rag.config import load_train_config
from jepa_rag.errors import JEPARagError

from .loop import train


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m train", description="Train jepa-rag heads and write a checkpoint.")
    p.add_argument("--config", default=None, help="YAML config (see train/configs/)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config value, e.g. --set optim.epochs=3 --set seed=1 (repeatable)")
    p.add_argument("--pairs", default=None, help="train on your own JSONL pairs ({'query', 'positive'} per line)")
    p.add_argument("--beir", default=None, help="train on a BEIR folder's qrels (with --split)")
    p.add_argument("--split", default=None, help="the BEIR split to train on (default: train)")
    p.add_argument("--output", default=None, help="output folder (default: the config's output_dir)")
    p.add_argument("--embeddings", default="auto", help="precomputed base embeddings: .npz, folder, auto or off")
    p.add_argument("--no-resume", action="store_true", help="ignore a saved train_state and start over")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    args = p.parse_args(argv)
    overrides = list(args.set)
    if args.pairs and args.beir:
        p.error("give --pairs or --beir, not both")
    if args.pairs:
        overrides += ["data.source=pairs", f"data.path={args.pairs}"]
    if args.beir:
        overrides += ["data.source=beir", f"data.path={args.beir}"]
    if args.split:
        overrides.append(f"data.split={args.split}")
    if args.output:
        overrides.append(f"output_dir={args.output}")
    try:
        cfg = load_train_config(args.config, overrides)
        result = train(cfg, embeddings=args.embeddings, resume=not args.no_resume,
                       show_progress_bar=not args.no_progress)
    except (JEPARagError, OSError) as exc:  # OSError: an unreadable input or unwritable --output, said in one line
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(result.checkpoint)
    return 0


if __name__ == "__main__":
    sys.exit(main())
