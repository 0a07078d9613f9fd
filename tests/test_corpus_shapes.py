"""Corpora as they come (issue 26): empty documents, repeated ids, repeated texts, punctuation- or stopword-only
documents and very long one-line documents never abort retrieval, and every path ranks such a corpus exactly as
it ranks the same corpus without its bad rows (:mod:`jepa_rag.corpus_audit`)."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest

from jepa_rag import Fusion, HybridRetriever, InvalidInputError, LexicalIndex, load_beir
from jepa_rag.corpus import load_corpus
from jepa_rag.corpus_audit import clean_corpus
from jepa_rag.data import pairs_from_corpus_titles
from jepa_rag.evaluate import evaluate_beir, main

from .helpers import DOCS, QRELS, QUERIES

LONG = " ".join(f"tok{i % 97}en" for i in range(3000))  # one line, far past MiniLM's 256-token window
GOOD = [(did, title, text) for did, (title, text) in DOCS.items()] + [
    ("tea-copy", *DOCS["12"]),                      # the same text as "12" under another id: kept
    ("punct", "", "!!! ... ??? --- ;;"),            # no BM25 term: kept, scores 0
    ("stop", "", "the and of to a is it"),          # only stopwords: kept, scores 0
    ("long", "", LONG),                             # kept, counted as truncated
]
BAD = [  # (position to insert at, row): the rows the rule skips
    (2, ("e1", "", "")),
    (5, ("e2", "  ", "\n\t\u3000")),
    (9, ("8", "Dogs", "A later record under an id already used: the first one wins.")),
]
QUERIES_ALL = {**QUERIES, "q6": "a drink made by steeping leaves in hot water"}
QRELS_ALL = {**QRELS, "q6": {"12": 1}}


def _rows(with_bad: bool) -> list[tuple[str, str, str]]:
    rows = list(GOOD)
    if with_bad:
        for at, row in BAD:
            rows.insert(at, row)
    return rows


def _write(folder: Path, rows) -> Path:
    folder.mkdir(parents=True)
    (folder / "corpus.jsonl").write_text("".join(
        json.dumps({"_id": d, "title": t, "text": x}) + "\n" for d, t, x in rows))
    (folder / "queries.jsonl").write_text("".join(
        json.dumps({"_id": q, "text": t}) + "\n" for q, t in QUERIES_ALL.items()))
    (folder / "qrels").mkdir()
    (folder / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\n" + "".join(
        f"{q}\t{d}\t{g}\n" for q, rel in QRELS_ALL.items() for d, g in rel.items()))
    return folder


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("shapes")
    return _write(root / "messy", _rows(True)), _write(root / "clean", _rows(False))


def _skip_warnings(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "jepa_rag" and "skipped" in r.getMessage()]


# ------------------------------------------------------------------------------------------------ the rule
def test_the_rule_on_each_shape(caplog):
    rows = _rows(True)
    with caplog.at_level(logging.WARNING, logger="jepa_rag"):
        clean = clean_corpus([r[0] for r in rows], [{"title": r[1], "text": r[2]} for r in rows],
                             [{"n": i} for i in range(len(rows))])
    assert clean.ids == [r[0] for r in GOOD]
    assert [m["n"] for m in clean.metadatas] == clean.positions  # metadatas follow their documents
    assert clean.texts[clean.ids.index("8")].startswith("Dogs Dogs are loyal")  # the first "8" won
    a = clean.audit
    assert (a.documents, a.kept, a.empty, a.duplicate_ids, a.duplicate_texts) == (15, 12, ["e1", "e2"], ["8"], 1)
    [warning] = _skip_warnings(caplog)  # said once, counting each kind and naming the ids
    assert "skipped 3 of 15" in warning and "2 empty" in warning and "'e1', 'e2'" in warning
    assert "1 repeating an earlier document's id (the first one wins; ids '8')" in warning


def test_a_clean_corpus_says_nothing_and_wrong_types_stay_errors(caplog):
    with caplog.at_level(logging.WARNING, logger="jepa_rag"):
        assert clean_corpus(["a", "b"], ["x", "x"]).audit.duplicate_texts == 1
    assert not _skip_warnings(caplog)
    for ids, docs, message in [(["a"], [None], r"corpus\[0\]: expected a string, got NoneType"),
                               (["a", 3], ["x", "y"], r"ids\[1\]: expected a non-empty string"),
                               (["a"], ["x", "y"], "differ in length"),
                               (["a"], "x", "got a single str"),
                               (["a"], ["bad \ud800"], "lone surrogate")]:
        with pytest.raises(InvalidInputError, match=message):
            clean_corpus(ids, docs)


def test_many_skipped_ids_are_named_a_few(caplog):
    with caplog.at_level(logging.WARNING, logger="jepa_rag"):
        LexicalIndex([f"d{i}" for i in range(9)] + ["ok"], [""] * 9 + ["text"])
    [warning] = _skip_warnings(caplog)
    assert "skipped 9 of 10" in warning and "'d4', … (4 more)" in warning and "'d5'" not in warning


# ------------------------------------------------------------------------------------------------ Python API
@pytest.mark.parametrize("fusion", [Fusion(lexical_weight=0.0), Fusion(lexical_weight=0.3), Fusion(method="rrf")],
                         ids=["dense", "blend", "rrf"])
def test_retriever_ranks_as_the_clean_corpus(minilm_encoder, fusion, caplog):
    messy, clean = _rows(True), _rows(False)
    with caplog.at_level(logging.WARNING, logger="jepa_rag"):
        r = HybridRetriever(minilm_encoder, [d for d, *_ in messy], [{"title": t, "text": x} for _, t, x in messy],
                            fusion=fusion)
    assert len(_skip_warnings(caplog)) == 1  # the lexical index is built from the cleaned rows: no second warning
    ref = HybridRetriever(minilm_encoder, [d for d, *_ in clean], [{"title": t, "text": x} for _, t, x in clean],
                          fusion=fusion)
    assert r.ids == ref.ids == [d for d, *_ in GOOD]
    queries = list(QUERIES_ALL.values())
    got, want = r.retrieve(queries, k=len(GOOD)), ref.retrieve(queries, k=len(GOOD))
    assert [[i for i, _ in hits] for hits in got] == [[i for i, _ in hits] for hits in want]
    np.testing.assert_allclose([[s for _, s in h] for h in got], [[s for _, s in h] for h in want], atol=1e-6)
    with pytest.raises(InvalidInputError, match=r"queries\[1\]: empty"):  # queries keep their strictness
        r.retrieve(["tea", "  "])


def test_repeated_texts_tie_in_corpus_order_and_termless_documents_score_zero(minilm_encoder):
    clean = _rows(False)
    r = HybridRetriever(minilm_encoder, [d for d, *_ in clean], [{"title": t, "text": x} for _, t, x in clean])
    hits = [i for i, _ in r.retrieve([QUERIES_ALL["q6"]], k=3)[0]]
    assert hits[:2] == ["12", "tea-copy"]  # the same score; the earlier document first, always
    reversed_rows = clean[::-1]
    r2 = HybridRetriever(minilm_encoder, [d for d, *_ in reversed_rows],
                         [{"title": t, "text": x} for _, t, x in reversed_rows])
    assert [i for i, _ in r2.retrieve([QUERIES_ALL["q6"]], k=2)[0]] == ["tea-copy", "12"]
    bm25 = r.lexical.score_all(list(QUERIES_ALL.values()) + ["the punctuation and stopwords"])
    for did in ("punct", "stop"):
        assert did in r.lexical.ids and not bm25[:, r.lexical.ids.index(did)].any()


def test_an_all_stopword_or_empty_lexical_corpus_is_no_error():
    assert LexicalIndex(["a", "b"], ["the of", "  "]).search(["of the cats"], k=2) == [[]]


# ------------------------------------------------------------------------------------------------ evaluate
@pytest.mark.parametrize("retriever", ["dense", "hybrid"])
def test_evaluate_cli_ranks_a_messy_corpus_as_its_clean_copy(folders, minilm_dir, minilm_encoder, tmp_path,
                                                             retriever, caplog):
    messy, clean = folders
    out = tmp_path / "messy.json"
    with caplog.at_level(logging.WARNING, logger="jepa_rag"):
        code = main(["--data", str(messy), "--checkpoint", "none", "--base-model", str(minilm_dir),
                     "--embeddings", "off", "--retriever", retriever, "--json", str(out)])
    assert code == 0  # an empty document no longer aborts (it did: "corpus[2]: empty or whitespace-only text")
    [warning] = _skip_warnings(caplog)
    assert "skipped 3 of 15" in warning
    res = json.loads(out.read_text())
    assert {k: res["corpus"][k] for k in ("documents", "indexed", "skipped_empty", "skipped_duplicate_ids",
                                          "duplicate_texts")} == {"documents": 15, "indexed": 12, "skipped_empty": 2,
                                                                  "skipped_duplicate_ids": 1, "duplicate_texts": 1}
    ref = evaluate_beir(minilm_encoder, clean, embeddings="off", retriever=retriever)
    assert res["per_query"] == ref["per_query"] and res["metrics"] == ref["metrics"]
    assert res["metrics"]["ndcg@10"] > 0.8


def test_without_a_cache_the_long_document_is_counted_and_repeated_texts_still_tie(folders, minilm_dir):
    from jepa_rag import JEPAEncoder

    enc = JEPAEncoder.from_pretrained("none", base_model=str(minilm_dir), precision="fp32",
                                      use_cache=False)  # every document is embedded
    res = evaluate_beir(enc, folders[0], embeddings="off")
    assert res["corpus"]["truncated"] == 1 and res["corpus"]["indexed"] == 12
    clean = _rows(False)
    r = HybridRetriever(enc, [d for d, *_ in clean], [{"title": t, "text": x} for _, t, x in clean],
                        fusion=Fusion(lexical_weight=0.0))
    (first, s1), (second, s2) = r.retrieve([QUERIES_ALL["q6"]], k=2)[0]
    assert (first, second) == ("12", "tea-copy") and s1 == s2


# ------------------------------------------------------------------------------------------------ loaders
def test_jsonl_and_folder_corpora_skip_with_one_warning(tmp_path, caplog):
    f = tmp_path / "docs.jsonl"
    f.write_text("".join(json.dumps({"id": d, "title": t, "text": x}) + "\n" for d, t, x in _rows(True)))
    folder = tmp_path / "notes"
    folder.mkdir()
    (folder / "a.txt").write_text("a note")
    (folder / "blank.md").write_text(" \n")
    with caplog.at_level(logging.WARNING, logger="jepa_rag"):
        c = load_corpus(f)
        notes = load_corpus(folder)
    assert list(c.docs) == [d for d, *_ in GOOD] and c.audit.skipped == 3
    assert list(notes.docs) == ["a.txt"] and notes.audit.empty == ["blank.md"]
    assert len(_skip_warnings(caplog)) == 2  # one per corpus
    assert list(load_beir(_write(tmp_path / "beir", _rows(True)), "test").corpus) == [d for d, *_ in GOOD]


def test_training_corpora_skip_empty_documents(tmp_path):
    pairs = pairs_from_corpus_titles([_write(tmp_path / "t", _rows(True))])
    assert all(t.strip() for t in pairs.pool.values())
    assert "t:e1" not in pairs.pool and pairs.pool["t:8"].startswith("Dogs Dogs are loyal")
