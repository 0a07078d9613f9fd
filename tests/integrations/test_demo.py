"""``python -m jepa_rag.demo``: builds the sample index, answers queries, reuses it, refuses another checkpoint."""

from __future__ import annotations

import re

import pytest

from jepa_rag import demo

HIT = re.compile(r"^\s+([1-3])\. score (-?\d\.\d{3})\s+\[([\w.#-]+)\] .*\n\s+source: ([\w.-]+), chars \d+-\d+ "
                 r"\(([^)]*)\)", re.MULTILINE)


def test_demo_names_the_encoders_default_checkpoint():
    from jepa_rag import encoder

    assert demo.DEFAULT_CHECKPOINT == encoder.DEFAULT_CHECKPOINT  # spelled out in demo.py to keep --help light


def test_sample_corpus_is_bundled_and_well_formed():
    corpus = demo.load_sample_corpus()
    assert 35 <= len(corpus) <= 60
    assert len({d["id"] for d in corpus}) == len(corpus)
    assert all(d["title"].strip() and len(d["text"].split()) >= 8 for d in corpus)
    files = demo.long_files(corpus)  # every passage a section of one long file
    assert sum(text.count("\n## ") + text.startswith("## ") for text in files.values()) == len(corpus)


def test_demo_builds_the_index_and_prints_hits(tmp_path, capsys, predictor_checkpoint, minilm_dir):
    args = ["--checkpoint", str(predictor_checkpoint), "--base-model", str(minilm_dir), "--path", str(tmp_path / "idx")]
    assert demo.main(args) == 0
    out = capsys.readouterr().out
    assert out.count("\nquery: ") == len(demo.DEFAULT_QUERIES)
    hits = HIT.findall(out)
    assert len(hits) == 3 * len(demo.DEFAULT_QUERIES)
    assert [h[0] for h in hits] == ["1", "2", "3"] * len(demo.DEFAULT_QUERIES)
    tops = [(h[3], h[4]) for h in hits[::3]]  # (file, section) of each query's first hit
    assert tops[:2] == [("science.md", "Photosynthesis"), ("science.md", "Jupiter")]
    n = len(demo.load_sample_corpus())  # one chunk per section of the long files
    assert f"0 of {n} chunks of {len(demo.LONG_FILES)} files present" in out
    assert "retrieval: hybrid, dense cosine + BM25 by " in out
    assert out.count("     source: ") == len(hits)  # every hit names its file and span

    # a second run reuses the index and takes custom queries
    assert demo.main(args + ["--query", "Who printed books with movable type?", "--top-k", "1"]) == 0
    out = capsys.readouterr().out
    assert f"{n} of {n} chunks of {len(demo.LONG_FILES)} files present" in out
    assert HIT.findall(out)[0][4] == "The printing press" and len(HIT.findall(out)) == 1


def test_demo_refuses_an_index_built_with_another_checkpoint(tmp_path, capsys, predictor_checkpoint,
                                                             other_checkpoint, minilm_dir):
    path = str(tmp_path / "idx")
    assert demo.main(["--checkpoint", str(predictor_checkpoint), "--base-model", str(minilm_dir), "--path", path,
                      "--query", "volcano"]) == 0
    capsys.readouterr()
    assert demo.main(["--checkpoint", str(other_checkpoint), "--base-model", str(minilm_dir), "--path", path]) == 2
    err = capsys.readouterr().err
    assert "different embedding spaces" in err and "pass another --path" in err


def test_demo_falls_back_to_the_base_model_without_a_default_checkpoint(tmp_path, capsys, monkeypatch, minilm_dir):
    monkeypatch.setattr(demo, "DEFAULT_CHECKPOINT", tmp_path / "no_default_here")
    assert demo.main(["--base-model", str(minilm_dir), "--path", str(tmp_path / "idx"), "--query", "volcano"]) == 0
    out = capsys.readouterr().out
    assert "ships no default checkpoint" in out and "falling back to checkpoint 'none'" in out
    assert HIT.findall(out)[0][4] == "Volcanoes"


@pytest.mark.parametrize("bad", [["--top-k", "0"]])
def test_demo_rejects_bad_arguments(tmp_path, bad):
    assert demo.main(bad + ["--path", str(tmp_path)]) == 2
