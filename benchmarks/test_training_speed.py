"""Training speed: 2 epochs on the MS MARCO pairs from cached base embeddings (target < 60 s on 2 CPU cores)."""

from __future__ import annotations

from pathlib import Path

from jepa_rag import load_msmarco_pairs, load_train_config
from jepa_rag.precomputed import import_msmarco_embeddings
from jepa_rag.train.loop import train

CONFIG = Path(__file__).resolve().parent.parent / "train" / "configs" / "seed" / "jepa_10k_e2.yaml"


def test_two_epochs_from_cached_embeddings(benchmark, mpnet, tmp_path):
    pairs = load_msmarco_pairs()
    import_msmarco_embeddings(mpnet, pairs, "auto")  # warm the cache (verified import) outside the timing
    _, missing = mpnet.cache.lookup(pairs.queries + pairs.positives)
    assert not missing, "MS MARCO base embeddings are not cached; the benchmark would time the encoder"
    cfg = load_train_config(str(CONFIG), [f"output_dir={tmp_path}/run", "optim.epochs=2"])
    result = benchmark.pedantic(
        lambda: train(cfg, resume=False, show_progress_bar=False, log=lambda *_: None), rounds=1, iterations=1)
    benchmark.extra_info["train_pairs"] = len(pairs)
    benchmark.extra_info["seconds"] = result.seconds
    assert len(result.history) == 2
    assert result.seconds < 60, f"2 epochs took {result.seconds:.1f} s (target < 60 s)"
