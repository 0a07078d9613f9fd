"""`python -m train` chooses the hybrid fusion on its own dev split and stores it in every checkpoint it writes."""

from dataclasses import replace

from jepa_rag import Fusion, HybridRetriever, JEPAEncoder, fusion_of, load_checkpoint, load_train_config
from jepa_rag.retriever import DEV_GRID
from jepa_rag.train.loop import train

from .helpers import DOCS, write_beir, write_pairs


def _check_retrieval_section(ckpt_dir, dev_names):
    ck = load_checkpoint(ckpt_dir)
    section = ck.retrieval
    chosen = Fusion.from_dict(section["fusion"])
    assert fusion_of(ckpt_dir) == chosen
    assert section["chosen_on"]["dev"] == dev_names and section["chosen_on"]["metric"] == "ndcg@10"
    curve = section["dev_curve"]
    assert len(curve) == len(DEV_GRID)
    best = max(c["mean"] for c in curve)
    assert section["chosen_on"]["mean"] == best
    first_best = next(c for c in curve if c["mean"] == best)  # ties go to the first candidate of the grid
    whole_corpus = Fusion.from_dict({k: v for k, v in first_best.items() if k not in ("mean", "per_set")})
    assert replace(chosen, candidate_lexical_weight=None) == whole_corpus
    if chosen.method == "blend":  # the serving path's weight, chosen on the same dev set over candidate lists
        cands = section["candidate_dev_curve"]
        assert len(cands) == 21
        top = max(c["mean"] for c in cands)
        assert chosen.candidate_lexical_weight == next(c for c in cands if c["mean"] == top)["candidate_lexical_weight"]
    return chosen


def test_pairs_training_stores_the_fusion_chosen_on_held_out_pairs(tmp_path, minilm_dir):
    cfg = load_train_config(None, [
        f"model.base_model={minilm_dir}", "model.projection={in_dim: 384, out_dim: 384, residual: true}",
        "model.predictor=null", "model.query_route=projection", "loss.lambda_predictive=0",
        "data.source=pairs", f"data.path={write_pairs(tmp_path / 'p.jsonl', n=40)}", "data.dev_fraction=0.25",
        "data.mining_rank_start=0", "data.mining_rank_end=5", "optim.batch_size=8", "optim.epochs=1",
        f"output_dir={tmp_path}/run"])
    logs = []
    res = train(cfg, show_progress_bar=False, log=logs.append)
    chosen = _check_retrieval_section(res.checkpoint, ["held-out pairs"])
    assert any(line.startswith("hybrid fusion chosen on dev") for line in logs)
    # the retriever built on this checkpoint uses the stored fusion without being told
    enc = JEPAEncoder.from_pretrained(res.checkpoint, base_model=str(minilm_dir))
    docs = [{"title": t, "text": x} for t, x in DOCS.values()]
    assert HybridRetriever(enc, list(DOCS), docs).fusion == chosen


def test_beir_dev_split_chooses_on_the_sets_dev_judgments(tmp_path, minilm_dir):
    folder = write_beir(tmp_path / "toy", split="train")
    (folder / "qrels" / "dev.tsv").write_text("query-id\tcorpus-id\tscore\nq4\t13\t2\nq5\t11\t1\n")
    cfg = load_train_config(None, [
        f"model.base_model={minilm_dir}", "model.projection={in_dim: 384, out_dim: 384, residual: true}",
        "model.predictor=null", "model.query_route=projection", "loss.lambda_predictive=0",
        "data.source=beir", f"data.path={folder}", "data.split=train", "data.dev_split=dev",
        "data.mining_rank_start=0", "data.mining_rank_end=5", "optim.batch_size=2", "optim.epochs=1",
        f"output_dir={tmp_path}/run"])
    res = train(cfg, show_progress_bar=False, log=lambda *_: None)
    _check_retrieval_section(res.checkpoint, ["toy:dev"])
