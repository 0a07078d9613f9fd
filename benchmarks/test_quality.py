"""Quality gate for the shipped default checkpoint (standard protocol, BEIR test splits).

Fails if vanilla all-mpnet-base-v2 drifts from its published numbers (a sign that loading, text building or
metrics broke), or if the shipped checkpoint is significantly worse than vanilla on either set.
"""

from __future__ import annotations

import json

import pytest

from benchmarks._support import output_dir, require_beir_vectors
from jepa_rag import JEPAEncoder, paired_test
from jepa_rag.encoder import DEFAULT_CHECKPOINT
from jepa_rag.evaluate import evaluate_beir

EXPECTED_VANILLA = {"scifact": 0.6557, "nfcorpus": 0.3329}
TOLERANCE = 0.003


def quality_gate(candidate: JEPAEncoder, vanilla: JEPAEncoder, dataset: str, embeddings: str = "auto") -> dict:
    """Evaluate both; return metrics and the paired test. Raise AssertionError when the gate fails."""
    base = evaluate_beir(vanilla, dataset, embeddings=embeddings)
    ours = evaluate_beir(candidate, dataset, embeddings=embeddings)
    test = paired_test(ours["per_query"]["ndcg@10"], base["per_query"]["ndcg@10"])
    row = {"vanilla": base["metrics"], "checkpoint": ours["metrics"], "paired": test}
    assert abs(base["metrics"]["ndcg@10"] - EXPECTED_VANILLA[dataset]) <= TOLERANCE, (
        f"vanilla {dataset} NDCG@10 {base['metrics']['ndcg@10']:.4f} drifted from {EXPECTED_VANILLA[dataset]}")
    significantly_worse = test["mean_diff"] < 0 and test["p_ttest"] < 0.05
    assert not significantly_worse, (
        f"{dataset}: checkpoint NDCG@10 {ours['metrics']['ndcg@10']:.4f} is significantly below vanilla "
        f"{base['metrics']['ndcg@10']:.4f} (p={test['p_ttest']:.3g})")
    return row


@pytest.mark.parametrize("dataset", ["scifact", "nfcorpus"])
def test_default_checkpoint_not_worse_than_vanilla(dataset, vanilla, encoder_cache_dir, embeddings_spec, full_mode,
                                                    benchmark):
    """Default: precomputed base vectors (verified on import). ``--full``: every text re-encoded (fresh cache)."""
    if not DEFAULT_CHECKPOINT.is_dir():
        pytest.skip(f"no default checkpoint shipped at {DEFAULT_CHECKPOINT}")
    require_beir_vectors(vanilla, dataset, full_mode)
    default = JEPAEncoder.from_pretrained("default", cache_dir=encoder_cache_dir, precision="fp32")
    row = benchmark.pedantic(lambda: quality_gate(default, vanilla, dataset, embeddings_spec), rounds=1, iterations=1)
    row["mode"] = "full" if full_mode else "precomputed"
    (output_dir() / f"quality_{dataset}.json").write_text(json.dumps(row, indent=2))
    benchmark.extra_info.update({"ndcg@10": row["checkpoint"]["ndcg@10"], "vanilla": row["vanilla"]["ndcg@10"],
                                 "p": row["paired"]["p_ttest"]})


def test_broken_checkpoint_fails_the_gate(mpnet, tmp_path):
    """Heads with random weights must make the gate fail: the benchmark can catch a broken checkpoint."""
    import torch

    from jepa_rag import Checkpoint, HeadConfig, JEPAHeads, ModelConfig, save_checkpoint

    cfg = ModelConfig(projection=HeadConfig(768, 768), predictor=None, query_route="projection")
    broken = JEPAHeads(cfg)
    torch.manual_seed(0)
    with torch.no_grad():
        for p in broken.projection.parameters():
            p.normal_(0, 1.0)
    save_checkpoint(Checkpoint(cfg, mpnet.fingerprint, broken.state_dict()), tmp_path / "broken")
    with pytest.raises(AssertionError, match="significantly below vanilla"):
        quality_gate(JEPAEncoder.from_pretrained(tmp_path / "broken", precision="fp32"), mpnet, "scifact")
