"""Pairs that fit a folder corpus: ``doc_id`` names a file, a quoted passage finds its file, nothing is added
silently; the training summary and the CLI's embedding-space error say which commands to run next."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from jepa_rag.corpus import join_corpus, join_corpus_report, load_corpus
from jepa_rag.data import load_pairs_jsonl
from jepa_rag.errors import DataFormatError

LONG = ("# Pumps\n\nThe pump keeps the pressure of the loop.\n\n## Faults\n\nFault E1042 means the pressure\nsensor "
        "is unplugged. Plug it back in and restart.\n")


def _corpus(tmp_path: Path) -> Path:
    folder = tmp_path / "docs"
    (folder / "guide").mkdir(parents=True)
    (folder / "guide" / "pump.md").write_text(LONG)
    (folder / "sky.txt").write_text("The sky is blue because air scatters blue light most.")
    return folder


def _pairs(tmp_path: Path, rows: list[dict]) -> Path:
    f = tmp_path / "pairs.jsonl"
    f.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return f


def test_doc_id_and_passages_find_their_file_and_the_rest_is_counted(tmp_path):
    corpus = load_corpus(_corpus(tmp_path))
    pairs = load_pairs_jsonl(_pairs(tmp_path, [
        {"query": "why is the sky blue", "doc_id": "sky.txt"},
        {"query": "what is E1042", "positive": "Fault E1042 means the pressure sensor is unplugged."},  # a passage
        {"query": "sky colour", "positive": "The sky is blue because air scatters blue light most."},  # the file
        {"query": "bread", "positive": "Bread is baked from flour."}]))  # in no file
    assert pairs.positives[0] == ""
    report = join_corpus_report(pairs, corpus)
    assert (report.by_id, report.exact, report.passage, report.added) == (1, 1, 1, 1)
    assert report.pairs.doc_ids[:3] == ["sky.txt", "guide/pump.md", "sky.txt"]
    assert report.pairs.positives[1] == corpus.docs["guide/pump.md"]  # the document, not the quoted passage
    assert report.added_examples == ("Bread is baked from flour.",)
    assert len(report.pairs.pool) == len(corpus) + 1
    assert join_corpus(pairs, corpus)[1] == 1


def test_a_doc_id_the_corpus_lacks_or_a_line_without_a_document_is_refused(tmp_path):
    corpus = load_corpus(_corpus(tmp_path))
    pairs = load_pairs_jsonl(_pairs(tmp_path, [{"query": "q", "doc_id": "missing.txt"}]))
    with pytest.raises(DataFormatError, match=r"doc_id 'missing.txt', which is not in the corpus .*'guide/pump.md'"):
        join_corpus_report(pairs, corpus)
    pairs = load_pairs_jsonl(_pairs(tmp_path, [{"query": "q", "doc_id": "guide/pump.rst"}]))
    with pytest.raises(DataFormatError, match=r"reads only .txt and .md files"):
        join_corpus_report(pairs, corpus)
    with pytest.raises(DataFormatError, match=r"pairs.jsonl:1: missing field 'positive' .*'doc_id'"):
        load_pairs_jsonl(_pairs(tmp_path, [{"query": "q"}]))


def test_doc_id_pairs_without_a_corpus_are_refused(tmp_path):
    from jepa_rag.config import load_train_config
    from jepa_rag.train.loop import _with_source_documents

    f = _pairs(tmp_path, [{"query": "q", "doc_id": "sky.txt"}])
    cfg = load_train_config(None, ["data.source=pairs", f"data.path={f}"])
    with pytest.raises(DataFormatError, match="by doc_id only .* --corpus"):
        _with_source_documents(cfg, load_pairs_jsonl(f), None, None, lambda *_: None)


def test_the_training_summary_prints_the_command_line_next_steps():
    from jepa_rag.train.__main__ import summary

    result = SimpleNamespace(dev_metric="ndcg@10", checkpoint=Path("/tmp/out/checkpoint"), best_epoch=2,
                             num_train_pairs=30, num_dev_pairs=10, dev_before=0.5, dev_after=0.6,
                             query_route="predictor", retrieval=None)
    text = summary(result, "25% of the queries")
    assert "jepa-rag ingest <your folder> --collection <new name> --checkpoint /tmp/out/checkpoint" in text
    assert 'jepa-rag query "your question" --collection <new name> --checkpoint /tmp/out/checkpoint' in text


def test_the_cli_says_what_to_run_when_the_checkpoint_does_not_match(tmp_path, minilm_dir, predictor_checkpoint,
                                                                     capsys):
    from jepa_rag.cli import main

    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.txt").write_text("Volcanoes erupt when magma reaches the surface.")
    store = ["--collection", "notes", "--path", str(tmp_path / "index")]
    assert main(["ingest", str(docs), *store, "--checkpoint", "none", "--base-model", str(minilm_dir),
                 "--no-progress"]) == 0
    capsys.readouterr()
    assert main(["query", "volcano", *store, "--checkpoint", str(predictor_checkpoint),
                 "--base-model", str(minilm_dir)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: collection 'notes' was embedded with") and "Traceback" not in err
    assert f"jepa-rag ingest <your folder> --collection notes-2 --path {tmp_path / 'index'} --checkpoint " \
           f"{predictor_checkpoint}" in err
    assert "leave out --checkpoint to query 'notes'" in err
