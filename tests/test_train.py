import json

import numpy as np
import pytest

from jepa_rag import JEPAEncoder, load_checkpoint, load_train_config
from jepa_rag.train.__main__ import main as train_main
from jepa_rag.train.loop import lr_at, train
from jepa_rag.train.mining import mine_hard_negatives

from .helpers import DOCS, write_beir, write_pairs


def _cfg(tmp_path, minilm_dir, pairs, *extra):
    return load_train_config(None, [
        f"model.base_model={minilm_dir}",
        "model.projection={in_dim: 384, out_dim: 384, residual: true}",
        "model.predictor={in_dim: 384, out_dim: 384, residual: true}",
        "model.query_route=predictor", "loss.lambda_predictive=1.0", "loss.predictive=cosine",
        "data.source=pairs", f"data.path={pairs}", "data.dev_fraction=0.25", "data.mining_rank_start=0",
        "data.mining_rank_end=5", "optim.batch_size=8", "optim.epochs=2", "optim.lr=1e-3", "optim.warmup_steps=2",
        f"output_dir={tmp_path}/run", *extra])


def test_train_writes_a_loadable_checkpoint(tmp_path, minilm_dir):
    pairs = write_pairs(tmp_path / "p.jsonl", n=40)
    logs = []
    res = train(_cfg(tmp_path, minilm_dir, pairs), show_progress_bar=False, log=logs.append)
    ck = load_checkpoint(res.checkpoint)
    assert ck.training["selected_epoch"] == res.best_epoch and len(ck.training["history"]) == 2
    assert ck.training["data_sha256"] and ck.training["seed"] == 0
    assert set(ck.training["history"][0]["train"]) == {"loss", "contrastive", "predictive"}  # logged separately
    assert "ndcg@10" in ck.metrics["dev"]
    enc = JEPAEncoder.from_pretrained(res.checkpoint, base_model=str(minilm_dir))
    assert enc.encode_queries(["tell me about cats"]).shape == (1, 384)
    assert any("dev at init" in line for line in logs)
    init, best = ck.metrics["dev_at_init"]["ndcg@10"], ck.metrics["dev"]["ndcg@10"]
    assert f"dev ndcg@10: untrained heads (= the base model) {init:.4f} → {best:.4f} ({best - init:+.4f})" in logs[-1]


def test_heads_actually_move(tmp_path, minilm_dir):
    res = train(_cfg(tmp_path, minilm_dir, write_pairs(tmp_path / "p.jsonl")), show_progress_bar=False, log=lambda *_: None)
    state = load_checkpoint(res.checkpoint).state_dict
    assert state["projection.net.3.weight"].abs().sum() > 0  # zero-initialised, so training changed it


def test_best_or_init_keeps_identity_heads_when_training_only_hurts(tmp_path, minilm_dir):
    """A wrecking LR makes every epoch worse on dev than the untrained heads: best_or_init ships epoch 0."""
    pairs = write_pairs(tmp_path / "p.jsonl")
    logs = []
    res = train(_cfg(tmp_path, minilm_dir, pairs, "select=best_or_init", "optim.lr=50", "optim.warmup_steps=0",
                     "optim.grad_clip=0", "loss.temperature=0.01"), show_progress_bar=False, log=logs.append)
    ck = load_checkpoint(res.checkpoint)
    init, epochs = ck.metrics["dev_at_init"]["ndcg@10"], [h["dev"]["ndcg@10"] for h in ck.training["history"]]
    assert max(epochs) < init, f"the LR did not wreck training ({epochs} vs init {init}): the test proves nothing"
    assert res.best_epoch == 0 and ck.training["selected_epoch"] == 0 and ck.metrics["dev"] == ck.metrics["dev_at_init"]
    assert any("no epoch beat the untrained heads" in line for line in logs)
    heads = JEPAEncoder.from_pretrained(res.checkpoint, base_model=str(minilm_dir), use_cache=False)
    plain = JEPAEncoder.from_pretrained("none", base_model=str(minilm_dir), use_cache=False)
    texts = ["tell me about cats", "Bees make honey from the nectar of flowers."]
    np.testing.assert_allclose(heads.encode_queries(texts), plain.encode_queries(texts), atol=1e-5)


def test_best_or_init_needs_identity_heads(tmp_path, minilm_dir):
    from jepa_rag import ConfigError

    with pytest.raises(ConfigError, match="best_or_init' needs residual heads"):
        _cfg(tmp_path, minilm_dir, tmp_path / "p.jsonl", "select=best_or_init",
             "model.projection={in_dim: 384, out_dim: 384, residual: false}").validate()


def test_resume_continues_after_last_epoch(tmp_path, minilm_dir):
    pairs = write_pairs(tmp_path / "p.jsonl")
    train(_cfg(tmp_path, minilm_dir, pairs, "optim.epochs=1"), show_progress_bar=False, keep_state=True, log=lambda *_: None)
    logs = []
    # same config except epochs differ ⇒ a different config: starts over
    train(_cfg(tmp_path, minilm_dir, pairs, "optim.epochs=2"), show_progress_bar=False, keep_state=True, log=logs.append)
    assert any("starting over" in m for m in logs)
    logs.clear()
    res = train(_cfg(tmp_path, minilm_dir, pairs, "optim.epochs=2"), show_progress_bar=False, keep_state=True, log=logs.append)
    assert any("resuming after epoch 2" in m for m in logs)
    assert len(res.history) == 2


def test_resume_across_a_config_field_added_since(tmp_path, minilm_dir):
    """A run saved before a config field existed resumes (the field counts at its default); a key this version
    does not know starts over."""
    pairs = write_pairs(tmp_path / "p.jsonl")
    cfg = _cfg(tmp_path, minilm_dir, pairs, "optim.epochs=1")
    train(cfg, show_progress_bar=False, keep_state=True, log=lambda *_: None)
    state = tmp_path / "run" / "train_state" / "state.json"
    meta = json.loads(state.read_text())
    del meta["config"]["data"]["max_positives_per_query"]  # as written before the field was added
    state.write_text(json.dumps(meta))
    logs = []
    train(cfg, show_progress_bar=False, keep_state=True, log=logs.append)
    assert any("resuming after epoch 1" in m for m in logs), logs
    meta = json.loads(state.read_text())
    meta["config"]["loss"]["from_a_newer_version"] = 1
    state.write_text(json.dumps(meta))
    logs.clear()
    train(cfg, show_progress_bar=False, keep_state=True, log=logs.append)
    assert any("another config: starting over" in m for m in logs), logs


def test_dev_beir_selects_on_other_folders_judgments(tmp_path, minilm_dir):
    """Train on pairs, choose the epoch on two BEIR folders' judgments: nothing is carved out of the pairs, each set
    retrieves from its own corpus, and the dev metric is their mean (recomputed here from the saved per-set ones)."""
    pairs = write_pairs(tmp_path / "p.jsonl", n=40)
    a = write_beir(tmp_path / "toy_a", split="dev")
    b = write_beir(tmp_path / "toy_b", split="train")
    (b / "qrels" / "train.tsv").write_text("query-id\tcorpus-id\tscore\nq1\t8\t1\nq2\t007\t1\n")
    res = train(_cfg(tmp_path, minilm_dir, pairs, f"data.dev_beir={a}:dev,{b}:train"), show_progress_bar=False,
                log=lambda *_: None)
    ck = load_checkpoint(res.checkpoint)
    assert ck.training["num_train_pairs"] == 40 and ck.training["dev_split"] == f"{a}:dev,{b}:train"
    sets = ck.metrics["dev_sets"]
    assert list(sets) == ["toy_a:dev", "toy_b:train"] and sets["toy_a:dev"] != sets["toy_b:train"]
    for k in ("ndcg@10", "mrr@10"):
        assert ck.metrics["dev"][k] == pytest.approx((sets["toy_a:dev"][k] + sets["toy_b:train"][k]) / 2)
        init = ck.metrics["dev_sets_at_init"]
        assert ck.metrics["dev_at_init"][k] == pytest.approx((init["toy_a:dev"][k] + init["toy_b:train"][k]) / 2)
    assert all("dev_sets" in h for h in ck.training["history"])


@pytest.mark.parametrize("value, message", [("scifact", "is not 'folder:split'"), ("scifact:train,:dev", "is not"),
                                            ("scifact:train", "not both")])
def test_dev_beir_refusals(tmp_path, minilm_dir, value, message):
    from jepa_rag import ConfigError

    extra = ["data.dev_split=dev", "data.source=beir"] if message == "not both" else []
    with pytest.raises(ConfigError, match=message):
        _cfg(tmp_path, minilm_dir, tmp_path / "p.jsonl", f"data.dev_beir={value}", *extra).validate()


def test_lr_schedule_per_batch_and_seed_bug():
    cfg = load_train_config(None, ["optim.lr=1e-3", "optim.warmup_steps=100", "optim.warmup_start_factor=0.1"])
    assert lr_at(0, 0, cfg) == pytest.approx(1e-4)
    assert lr_at(50, 0, cfg) == pytest.approx(1e-4 + 0.9e-3 * 0.5)
    assert lr_at(100, 0, cfg) == pytest.approx(1e-3) and lr_at(5000, 3, cfg) == pytest.approx(1e-3)
    seed = load_train_config(None, ["optim.lr=2e-5", "optim.scheduler_step=epoch"])
    # the seed's bug: after 2 epochs of 400 batches the LR is still ≈ 2e-6
    assert lr_at(800, 1, seed) == pytest.approx(2e-5 * (0.1 + 0.9 * 0.01))


def test_lr_reaches_the_optimiser(tmp_path, minilm_dir, monkeypatch):
    import torch

    seen = []
    real_step = torch.optim.AdamW.step

    def spy(self, *a, **k):
        seen.append(self.param_groups[0]["lr"])
        return real_step(self, *a, **k)

    monkeypatch.setattr(torch.optim.AdamW, "step", spy)
    train(_cfg(tmp_path, minilm_dir, write_pairs(tmp_path / "p.jsonl"), "optim.epochs=1"), show_progress_bar=False,
          log=lambda *_: None)
    assert seen[0] == pytest.approx(1e-4) and seen[-1] == pytest.approx(1e-3)


def test_mining_excludes_positives_and_respects_window():
    rng = np.random.default_rng(0)
    pool = rng.normal(size=(50, 8))
    queries = pool[:10] + 0.01 * rng.normal(size=(10, 8))
    neg = mine_hard_negatives(queries, pool, [{i} for i in range(10)], rank_start=0, rank_end=3, per_query=2, seed=0)
    assert neg.shape == (10, 2)
    for i in range(10):
        assert i not in neg[i]


def test_cli_pairs_format_error_is_clear(tmp_path, minilm_dir, capsys):
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"query": "q"}) + "\n")
    code = train_main(["--pairs", str(bad), "--set", f"model.base_model={minilm_dir}"])
    assert code == 2
    assert "bad.jsonl:1: missing field 'positive'" in capsys.readouterr().err


def _train_toy_beir(folder, out, minilm_dir, *overrides: str) -> int:
    """``python -m train --beir <folder> --split train`` on MiniLM with a small residual projection, no predictor."""
    sets = [f"model.base_model={minilm_dir}", "model.projection={in_dim: 384, out_dim: 384, residual: true}",
            "model.predictor=null", "optim.batch_size=2", "data.mining_rank_start=0", "data.mining_rank_end=3",
            *overrides]
    return train_main(["--beir", str(folder), "--split", "train", "--output", str(out), "--no-progress",
                       *[a for kv in sets for a in ("--set", kv)]])


def test_cli_beir_train_split(tmp_path, minilm_dir):
    folder = write_beir(tmp_path / "toy", split="train")
    code = _train_toy_beir(folder, tmp_path / "out", minilm_dir, "optim.epochs=1", "data.dev_fraction=0.4")
    assert code == 0
    assert load_checkpoint(tmp_path / "out" / "checkpoint").training["data_source"].endswith(":train")


def test_beir_dev_split_selects_on_the_sets_own_dev_judgments(tmp_path, minilm_dir):
    """``data.dev_split=dev``: train on every train judgment, select the epoch on qrels/dev.tsv."""
    folder = write_beir(tmp_path / "toy", split="train")
    dev_rows = "query-id\tcorpus-id\tscore\nq4\t13\t2\nq5\t11\t1\n"
    (folder / "qrels" / "dev.tsv").write_text(dev_rows)
    code = _train_toy_beir(folder, tmp_path / "out", minilm_dir, "optim.epochs=2", "data.dev_split=dev")
    assert code == 0
    t = load_checkpoint(tmp_path / "out" / "checkpoint").training
    assert t["dev_split"] == "dev"
    assert t["num_train_pairs"] == 5 and t["num_dev_pairs"] == 2  # nothing carved out of train


def test_dev_split_must_not_be_the_training_split(tmp_path, minilm_dir, capsys):
    folder = write_beir(tmp_path / "toy", split="train")
    code = train_main(["--beir", str(folder), "--split", "train", "--set", "data.dev_split=train",
                       "--set", f"model.base_model={minilm_dir}"])
    assert code == 2
    assert "data.dev_split must differ from data.split" in capsys.readouterr().err


def test_inconsistent_train_state_starts_over(tmp_path, minilm_dir):
    """A crash between writing the state's tensors and its JSON must not resume from a mismatched pair."""
    pairs = write_pairs(tmp_path / "p.jsonl")
    cfg = _cfg(tmp_path, minilm_dir, pairs, "optim.epochs=1")
    train(cfg, show_progress_bar=False, keep_state=True, log=lambda *_: None)
    state = tmp_path / "run" / "train_state" / "state.safetensors"
    data = state.read_bytes()
    state.write_bytes(data[:-8] + bytes(b ^ 0xFF for b in data[-8:]))  # tensors no longer match the JSON's hash
    logs = []
    train(cfg, show_progress_bar=False, keep_state=True, log=logs.append)
    assert any("interrupted while saving" in m for m in logs), logs


@pytest.mark.parametrize("contrastive, cls", [("infonce", "InfoNCELoss"),
                                              ("multi_positive_infonce", "MultiPositiveInfoNCELoss")])
def test_capped_positives_are_still_masked_never_negatives(tmp_path, minilm_dir, monkeypatch, contrastive, cls):
    """``data.max_positives_per_query=1``: q1 trains on one of its three positives, and the two dropped ones are
    marked as known positives in every batch (mining also skips them), never used as its negatives. The configured
    InfoNCE variant is the one called, and it gets that mask."""
    from jepa_rag.train import loop

    folder = write_beir(tmp_path / "toy", split="train")
    qrels = {"q1": ["007", "8", "9"], "q3": ["10"], "q4": ["13"], "q5": ["11"]}
    rows = ["query-id\tcorpus-id\tscore"] + [f"{q}\t{d}\t1" for q, ds in qrels.items() for d in ds]
    (folder / "qrels" / "train.tsv").write_text("\n".join(rows) + "\n")
    (folder / "qrels" / "dev.tsv").write_text("query-id\tcorpus-id\tscore\nq2\t8\t2\n")
    pool = list(DOCS)
    calls = []
    real = loop.losses.LOSSES["contrastive"][contrastive]
    assert real is getattr(loop.losses, cls)

    class Spy(real):
        def __call__(self, *args, pos_ids, neg_ids, known_positive, **kw):
            calls.append((pos_ids.numpy(), neg_ids.numpy(), known_positive.numpy()))
            return super().__call__(*args, pos_ids=pos_ids, neg_ids=neg_ids, known_positive=known_positive, **kw)

    monkeypatch.setitem(loop.losses.LOSSES["contrastive"], contrastive, Spy)
    code = _train_toy_beir(folder, tmp_path / "out", minilm_dir, "optim.epochs=2", "optim.batch_size=4",
                           "data.dev_split=dev", "data.max_positives_per_query=1", "data.negatives_per_pair=2",
                           f"loss.contrastive={contrastive}")
    assert code == 0
    assert load_checkpoint(tmp_path / "out" / "checkpoint").training["num_train_pairs"] == 4  # q1 capped 3 → 1
    owner = {pool.index(d): q for q, ds in qrels.items() for d in ds if q != "q1"}
    seen_q1 = False
    for pos, neg, known in calls:
        cands = np.concatenate([pos, neg.reshape(-1)])
        for i, p in enumerate(pos):
            q = owner.get(int(p), "q1")
            judged = {pool.index(d) for d in qrels[q]}
            assert known[i].tolist() == [int(c) in judged for c in cands]
            if q == "q1":
                seen_q1 = True
                assert not set(neg[i].tolist()) & judged  # its dropped positives were not mined as negatives
    assert seen_q1 and calls


def test_inverse_cloze_trains_on_an_unlabelled_corpus_and_embeds_the_reduced_documents(tmp_path, minilm_dir,
                                                                                      monkeypatch):
    """``data.source=ict``: only corpus.jsonl is read; the documents trained on are the ones without the query
    sentence, so those (not the whole documents) are what the base model encoded."""
    import jepa_rag.cache as cache_mod
    from jepa_rag.data import pairs_from_corpus_ict

    folder = tmp_path / "corpus"
    folder.mkdir()
    topics = ["cats purr and chase mice", "dogs bark and love long walks", "the sun gives the earth its light",
              "rain falls from grey clouds in drops", "bread is baked from flour and yeast",
              "chess is a board game for two players"]
    docs = [{"_id": f"d{i}", "title": t.split()[0].title(),
             "text": f"This note number {i} says that {t}. It adds a second fact about how {t} in winter. "
                     f"A third line repeats that {t} every day."} for i, t in enumerate(topics * 4)]
    (folder / "corpus.jsonl").write_text("".join(json.dumps(d) + "\n" for d in docs))
    seen: list[str] = []
    original = cache_mod.EmbeddingCache.embed

    def spy(self, texts, *a, **kw):
        seen.extend(texts)
        return original(self, texts, *a, **kw)

    monkeypatch.setattr(cache_mod.EmbeddingCache, "embed", spy)
    res = train(_cfg(tmp_path, minilm_dir, None, "data.source=ict", f"data.path={folder}", "optim.epochs=1"),
                show_progress_bar=False, log=lambda *_: None)
    ck = load_checkpoint(res.checkpoint)
    assert ck.training["data_source"].startswith("ict:") and 0 < ck.training["num_train_pairs"] < len(docs)
    reduced = pairs_from_corpus_ict([folder]).positives
    assert set(reduced) <= set(seen) and not any(f"{d['title']} {d['text']}" in seen for d in docs)
