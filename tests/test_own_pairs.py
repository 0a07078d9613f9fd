"""Training on your own pairs: `python -m train --pairs <file> --corpus <documents>` with its defaults."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from jepa_rag import DataFormatError, DataNotFoundError, load_checkpoint
from jepa_rag.corpus import join_corpus, load_corpus
from jepa_rag.data import load_pairs_jsonl
from jepa_rag.train.__main__ import bundled_configs, main as train_main, resolve_config
from jepa_rag.train.loop import train

from .helpers import DOCS, write_beir, write_pairs

ROOT = Path(__file__).resolve().parent.parent
PASSAGES = [  # the positives of helpers.write_pairs, one .txt file each, next to unrelated documents
    "Cats are small furry pets that purr and chase mice.", "Dogs are loyal pets that bark and love walks.",
    "The Sun is a star that gives Earth light and heat.", "Rain is water falling from clouds in drops.",
    "Bread is baked from flour, water and yeast.", "Chess is a board game of strategy for two players.",
    "A piano is an instrument played by pressing keys.", "A train runs on rails and carries passengers or freight.",
    "A river is a stream of water flowing to the sea.", "Bees make honey from the nectar of flowers."]


def _txt_corpus(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i, text in enumerate(PASSAGES):
        (folder / f"doc{i}.txt").write_text(text + "\n")
    (folder / "notes").mkdir(exist_ok=True)
    for did, (title, text) in DOCS.items():
        (folder / "notes" / f"{did}.md").write_text(f"# {title}\n\n{text}\n")
    (folder / "empty.txt").write_text("  \n")
    (folder / "image.png").write_bytes(b"\x89PNG")
    return folder


def _minilm_sets(minilm_dir, *extra):
    sets = [f"model.base_model={minilm_dir}", "model.projection={in_dim: 384, out_dim: 384, residual: true}",
            "model.predictor={in_dim: 384, out_dim: 384, residual: true}", "data.dev_fraction=0.25",
            "data.mining_rank_start=0", "data.mining_rank_end=5", "optim.batch_size=8", "optim.epochs=2",
            "optim.warmup_steps=2", *extra]
    return [a for kv in sets for a in ("--set", kv)]


# ------------------------------------------------------------------------------------------------ corpus formats
def test_text_folder_corpus(tmp_path):
    c = load_corpus(_txt_corpus(tmp_path / "docs"))
    assert len(c) == len(PASSAGES) + len(DOCS)  # the empty file and the .png are no documents
    assert c.docs["doc0.txt"] == PASSAGES[0] and c.docs["notes/9.md"].startswith("# Photosynthesis")
    assert c.beir_folder is None


def test_beir_corpus_file_and_folder(tmp_path):
    folder = write_beir(tmp_path / "toy")
    for path in (folder, folder / "corpus.jsonl"):
        c = load_corpus(path)
        assert list(c.docs) == list(DOCS) and c.docs["007"] == "Cats " + DOCS["007"][1]
        assert c.bodies["007"] == DOCS["007"][1] and c.beir_folder == folder


def test_plain_jsonl_corpus_ids_optional(tmp_path):
    f = tmp_path / "docs.jsonl"
    f.write_text(json.dumps({"text": "no id, no title"}) + "\n\n" + json.dumps({"id": 7, "title": "T", "text": "x"}) + "\n")
    assert load_corpus(f).docs == {"line1": "no id, no title", "7": "T x"}


@pytest.mark.parametrize("lines, message", [
    (['{"id": "a", "title": "t"}'], "docs.jsonl:1: missing field 'text'"),
    (['{"text": "a"}', "{oops"], "docs.jsonl:2: not valid JSON"),
    (['{"id": "a", "title": "", "text": " "}'], "docs.jsonl: no documents found (all 1 are empty)"),
    (['{"id": "a", "text": 3}'], "docs.jsonl:1: field 'text' must be a string"),
    (['{"id": [1], "text": "x"}'], "docs.jsonl:1: field 'id' must be a string"),
    ([], "no documents found"),
])
def test_bad_jsonl_corpus_names_file_and_line(tmp_path, lines, message):
    f = tmp_path / "docs.jsonl"
    f.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataFormatError) as err:
        load_corpus(f)
    assert message in str(err.value)


def test_bad_text_folder_corpus(tmp_path):
    with pytest.raises(DataNotFoundError, match="corpus not found"):
        load_corpus(tmp_path / "missing")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DataFormatError, match="no .txt or .md files"):
        load_corpus(empty)
    (empty / "latin1.txt").write_bytes("caf\xe9".encode("latin-1"))
    with pytest.raises(DataFormatError, match=r"latin1.txt: not valid UTF-8"):
        load_corpus(empty)


def test_pairs_join_the_corpus_by_exact_text(tmp_path):
    folder = write_beir(tmp_path / "toy")
    pairs_file = tmp_path / "p.jsonl"
    rows = [("q1", "which pets purr?", "Cats " + DOCS["007"][1]),  # title + text: the corpus document
            ("q2", "wolves", DOCS["8"][1]),  # the text alone: still that document
            ("q3", "new", "A document the corpus lacks."),
            ("q4", "again new", "A document the corpus lacks.")]
    pairs_file.write_text("".join(json.dumps({"query_id": q, "query": t, "positive": p}) + "\n" for q, t, p in rows))
    joined, added = join_corpus(load_pairs_jsonl(pairs_file), load_corpus(folder))
    assert added == 1 and joined.doc_ids[:2] == ["007", "8"] and joined.doc_ids[2] == joined.doc_ids[3]
    assert len(joined.pool) == len(DOCS) + 1 and joined.pool[joined.doc_ids[2]] == "A document the corpus lacks."


def test_a_query_with_several_positives_is_one_query(tmp_path):
    f = tmp_path / "p.jsonl"
    f.write_text("".join(json.dumps(r) + "\n" for r in [
        {"query": "pets", "positive": "cats"}, {"query": "pets", "positive": "dogs"},
        {"query_id": "x", "query": "sky", "positive": "sun"}, {"query_id": "x", "query": "sky", "positive": "moon"}]))
    p = load_pairs_jsonl(f)
    assert p.query_ids == ["line1", "line1", "x", "x"]


# ------------------------------------------------------------------------------------------------ the CLI
def test_pairs_with_a_txt_corpus_trains_with_the_defaults_and_loads_in_every_adapter(tmp_path, minilm_dir, capsys):
    corpus = _txt_corpus(tmp_path / "docs")
    pairs = write_pairs(tmp_path / "p.jsonl", n=40)
    out = tmp_path / "out"
    assert train_main(["--pairs", str(pairs), "--corpus", str(corpus), "--output", str(out), "--no-progress",
                       *_minilm_sets(minilm_dir)]) == 0
    printed = capsys.readouterr().out
    ck_dir = out / "checkpoint"
    ck = load_checkpoint(ck_dir)
    cfg = ck.training["config"]
    # the defaults (train/configs/own_pairs.yaml), not the msmarco config
    assert cfg["name"] == "own_pairs" and cfg["select"] == "best_or_init" and cfg["choose_query_route"]
    assert cfg["optim"]["patience"] == 10 and cfg["data"]["corpus"] == str(corpus)
    assert "corpus: 18 documents" in printed and "10 of the pairs' 10 positives found in it" in printed
    assert ck.training["query_route"] == ck.config.query_route in ("predictor", "projection")
    assert ck.retrieval["fusion"]
    assert not (out / "train_state").exists()  # removed after success
    for fragment in ("=== training summary ===", f"pairs: {ck.training['num_train_pairs']} trained on, {ck.training['num_dev_pairs']} held out for dev",
                     f"dev ndcg@10: {ck.metrics['dev_at_init']['ndcg@10']:.4f} (base model) → "
                     f"{ck.metrics['dev']['ndcg@10']:.4f}", "chosen on dev: epoch", "hybrid fusion (BM25 + dense)",
                     f"checkpoint: {ck_dir}", f"JEPAEmbedding({str(ck_dir)!r})",
                     f"JEPAEmbeddings(checkpoint={str(ck_dir)!r})", f"JEPAEmbeddingFunction({str(ck_dir)!r})"):
        assert fragment in printed, printed

    from jepa_rag.chroma import JEPAEmbeddingFunction
    from langchain_jepa_rag import JEPAEmbeddings
    from llama_index.embeddings.jepa_rag import JEPAEmbedding

    kw = {"base_model": str(minilm_dir)}
    assert len(JEPAEmbedding(str(ck_dir), **kw).get_query_embedding("cats")) == 384
    assert len(JEPAEmbeddings(checkpoint=str(ck_dir), **kw).embed_query("cats")) == 384
    assert len(JEPAEmbeddingFunction(str(ck_dir), **kw)(["cats"])[0]) == 384


def test_keep_state_keeps_the_training_state(tmp_path, minilm_dir):
    pairs = write_pairs(tmp_path / "p.jsonl", n=40)
    assert train_main(["--pairs", str(pairs), "--output", str(tmp_path / "out"), "--no-progress", "--keep-state",
                       *_minilm_sets(minilm_dir, "optim.epochs=1")]) == 0
    assert (tmp_path / "out" / "train_state" / "state.json").is_file()


def test_without_a_corpus_the_run_warns_that_dev_only_sees_the_positives(tmp_path, minilm_dir, capsys):
    pairs = write_pairs(tmp_path / "p.jsonl", n=40)
    assert train_main(["--pairs", str(pairs), "--output", str(tmp_path / "out"), "--no-progress",
                       *_minilm_sets(minilm_dir, "optim.epochs=1")]) == 0
    printed = capsys.readouterr().out
    assert "warning: no corpus given (--corpus)" in printed and "only the pairs' own 10 positives" in printed


def test_corpus_without_pairs_is_refused(tmp_path, capsys):
    with pytest.raises(SystemExit):
        train_main(["--beir", str(tmp_path), "--corpus", str(tmp_path)])
    assert "--corpus goes with --pairs" in capsys.readouterr().err


def test_the_defaults_without_a_predictor_drop_the_predictive_term(tmp_path, minilm_dir):
    pairs = write_pairs(tmp_path / "p.jsonl", n=40)
    assert train_main(["--pairs", str(pairs), "--output", str(tmp_path / "out"), "--no-progress",
                       *_minilm_sets(minilm_dir, "optim.epochs=1", "model.predictor=null")]) == 0
    ck = load_checkpoint(tmp_path / "out" / "checkpoint")
    assert ck.config.predictor is None and ck.config.query_route == "projection"
    assert ck.training["config"]["loss"]["lambda_predictive"] == 0


def test_an_interrupted_run_resumes_then_removes_its_state(tmp_path, minilm_dir, monkeypatch, capsys):
    from jepa_rag.train import loop

    pairs = write_pairs(tmp_path / "p.jsonl", n=40)
    args = ["--pairs", str(pairs), "--output", str(tmp_path / "out"), "--no-progress", *_minilm_sets(minilm_dir)]

    def crash(*_a, **_k):
        raise OSError("killed after training, before the checkpoint")

    monkeypatch.setattr(loop, "choose_dev_fusion", crash)
    assert train_main(args) == 2
    assert (tmp_path / "out" / "train_state" / "state.json").is_file()
    monkeypatch.undo()
    capsys.readouterr()
    assert train_main(args) == 0
    assert "resuming after epoch 2" in capsys.readouterr().out
    assert not (tmp_path / "out" / "train_state").exists()


# ------------------------------------------------------------------------------------------------ early stopping, routes
def test_early_stopping_and_the_query_route_chosen_on_dev(tmp_path, minilm_dir):
    """A wrecking LR never beats the untrained heads: with patience 2 the run stops after 2 epochs of 20, and both
    query routes were scored at every epoch."""
    from jepa_rag import load_train_config

    pairs = write_pairs(tmp_path / "p.jsonl", n=40)
    sets = _minilm_sets(minilm_dir, "optim.epochs=20", "optim.patience=2", "optim.lr=50", "optim.warmup_steps=0",
                        "optim.grad_clip=0", "loss.temperature=0.01")
    cfg = load_train_config(resolve_config("own_pairs"), [*sets[1::2], "data.source=pairs", f"data.path={pairs}",
                                                          f"output_dir={tmp_path}/run"])
    logs = []
    res = train(cfg, show_progress_bar=False, log=logs.append)
    assert len(res.history) == 2 and res.best_epoch == 0
    assert any(line.startswith("early stop: no better dev ndcg@10 in the 2 epochs after epoch 0") for line in logs)
    assert all(set(h["dev_routes"]) == {"predictor", "projection"} for h in res.history)
    assert all(h["dev"] == h["dev_routes"][h["route"]] for h in res.history)


def test_patience_must_be_positive(tmp_path):
    from jepa_rag import ConfigError, load_train_config

    with pytest.raises(ConfigError, match="optim.patience must be ≥ 1"):
        load_train_config(None, ["optim.patience=0"])
    with pytest.raises(ConfigError, match="data.corpus goes with data.source='pairs'"):
        load_train_config(None, ["data.corpus=x"])


# ------------------------------------------------------------------------------------------------ configs by name
def test_bundled_configs_by_name():
    names = bundled_configs()
    assert {"indomain", "own_pairs", "seed/baseline"} <= set(names)
    found = {Path(resolve_config(n)).resolve() for n in ("indomain", "indomain.yaml", "train/configs/indomain.yaml")}
    assert found == {ROOT / "train" / "configs" / "indomain.yaml"}
    from jepa_rag import ConfigError

    with pytest.raises(ConfigError, match="bundled: .*indomain"):
        resolve_config("nope")


def test_config_by_name_from_another_working_directory(tmp_path):
    """Installed jepa-rag (`jepa-rag train`), run from a folder that has no train/configs: --config indomain still resolves (the
    command gets as far as validating the bundled config's values), and --help lists the bundled configs."""
    env = {**os.environ, "PYTHONPATH": ""}
    run = subprocess.run([sys.executable, "-m", "jepa_rag", "train", "--help"], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0 and "indomain" in run.stdout and "own_pairs" in run.stdout
    run = subprocess.run([sys.executable, "-m", "jepa_rag", "train", "--config", "indomain", "--set", "optim.epochs=0"],
                         cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert run.returncode == 2 and "optim.epochs must be ≥ 1" in run.stderr, run.stderr
    assert not (tmp_path / "train").exists() and str(ROOT) != str(tmp_path)


# ------------------------------------------------------------------------------------------------ significance guard
@pytest.mark.parametrize("p_value, kept", [(1e-12, False), (1.0, True)])
def test_a_dev_gain_without_evidence_keeps_the_untrained_heads(tmp_path, minilm_dir, p_value, kept):
    """select_p_value: the selected epoch replaces the untrained heads only when its dev gain passes a one-sided
    paired t-test over the dev queries; no gain passes p < 1e-12, so the base model is shipped."""
    import numpy as np

    from jepa_rag import JEPAEncoder, load_train_config

    pairs = write_pairs(tmp_path / "p.jsonl", n=40)
    sets = _minilm_sets(minilm_dir, "optim.epochs=3", f"select_p_value={p_value}")
    cfg = load_train_config(resolve_config("own_pairs"), [*sets[1::2], "data.source=pairs", f"data.path={pairs}",
                                                          f"data.corpus={_txt_corpus(tmp_path / 'docs')}",
                                                          f"output_dir={tmp_path}/run"])
    logs = []
    res = train(cfg, show_progress_bar=False, log=logs.append)
    ck = load_checkpoint(res.checkpoint)
    guard = ck.training["select_guard"]
    assert guard["epoch"] >= 1 and guard["dev_gain"] > 0 and guard["kept"] is kept
    assert guard["threshold"] == p_value and 0 < guard["p_one_sided"] <= 1
    assert (res.best_epoch == guard["epoch"]) is kept and (ck.training["selected_epoch"] == 0) is not kept
    if not kept:
        assert any("too little evidence to replace the base model" in line for line in logs)
        assert ck.metrics["dev"] == ck.metrics["dev_at_init"]
        heads = JEPAEncoder.from_pretrained(res.checkpoint, base_model=str(minilm_dir), use_cache=False)
        plain = JEPAEncoder.from_pretrained("none", base_model=str(minilm_dir), use_cache=False)
        np.testing.assert_allclose(heads.encode_queries(["cats"]), plain.encode_queries(["cats"]), atol=1e-5)


def test_select_p_value_needs_best_or_init():
    from jepa_rag import ConfigError, load_train_config

    with pytest.raises(ConfigError, match="select_p_value needs select='best_or_init'"):
        load_train_config(None, ["select_p_value=0.05"])
