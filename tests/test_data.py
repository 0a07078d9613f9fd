import json

import pytest

from jepa_rag import (
    DataFormatError,
    DataNotFoundError,
    dev_split,
    doc_text,
    load_beir,
    load_pairs_jsonl,
    pairs_from_beir,
)
from jepa_rag.data import read_qrels

from .helpers import write_beir, write_pairs


def test_beir_crlf_and_string_ids(tmp_path):
    folder = write_beir(tmp_path / "toy", crlf=True)
    assert b"\r\n" in (folder / "qrels" / "test.tsv").read_bytes()
    ds = load_beir(folder, "test")
    assert ds.qrels["q1"] == {"007": 1}  # leading zero kept: ids are strings, and no stray '\r'
    assert ds.qrels["q3"] == {"9": 2}
    assert set(ds.queries) == {"q1", "q2", "q3", "q4", "q5"}
    assert "007" in ds.corpus and ds.corpus_texts()[1][0].startswith("Cats Cats are")


def test_beir_lf_same_result(tmp_path):
    a = load_beir(write_beir(tmp_path / "a", crlf=True))
    b = load_beir(write_beir(tmp_path / "b", crlf=False))
    assert a.qrels == b.qrels


def test_any_split(tmp_path):
    folder = write_beir(tmp_path / "toy", split="dev")
    assert load_beir(folder, "dev").split == "dev"
    with pytest.raises(DataNotFoundError, match=r"missing qrels/test.tsv \(splits present: \['dev'\]\)"):
        load_beir(folder, "test")


def test_missing_folder_is_clear(tmp_path):
    with pytest.raises(DataNotFoundError, match="BEIR data folder not found"):
        load_beir(tmp_path / "nope")


def test_malformed_line_names_file_and_line(tmp_path):
    folder = write_beir(tmp_path / "toy")
    with open(folder / "corpus.jsonl", "a") as fh:
        fh.write("{broken\n")
    with pytest.raises(DataFormatError, match=r"corpus.jsonl:9: not valid JSON"):
        load_beir(folder)


def test_bad_qrels_row(tmp_path):
    p = tmp_path / "q.tsv"
    p.write_text("query-id\tcorpus-id\tscore\nq1\td1\n")
    with pytest.raises(DataFormatError, match=r"q.tsv:2: expected 3 tab-separated columns"):
        read_qrels(p)


def test_doc_text_rule():
    assert doc_text({"title": "T", "text": "body"}) == "T body"
    assert doc_text({"title": "", "text": "body"}) == "body"
    assert doc_text("plain") == "plain"


def test_pairs_from_beir(tmp_path):
    pairs = pairs_from_beir(write_beir(tmp_path / "toy", split="train"), "train")
    assert len(pairs) == 5 and len(pairs.pool) == 8
    assert pairs.doc_ids[0] == "007"


@pytest.mark.parametrize(
    "line, message",
    [
        ({"query": "q"}, "missing field 'positive'"),
        ({"positive": "p"}, "missing field 'query'"),
        ({"query": "  ", "positive": "p"}, "field 'query' is empty"),
        ({"query": 3, "positive": "p"}, "field 'query' must be a string"),
    ],
)
def test_pairs_format_errors(tmp_path, line, message):
    p = tmp_path / "pairs.jsonl"
    p.write_text(json.dumps({"query": "ok", "positive": "fine"}) + "\n" + json.dumps(line) + "\n")
    with pytest.raises(DataFormatError, match=rf"pairs.jsonl:2: {message}"):
        load_pairs_jsonl(p)


def test_pairs_duplicate_id(tmp_path):
    p = tmp_path / "pairs.jsonl"
    p.write_text("\n".join(json.dumps({"query_id": "a", "query": f"q{i}", "positive": "p"}) for i in range(2)))
    with pytest.raises(DataFormatError, match=r"pairs.jsonl:2: duplicated query_id 'a' \(first on line 1\)"):
        load_pairs_jsonl(p)


def test_pairs_empty_and_missing(tmp_path):
    (tmp_path / "e.jsonl").write_text("\n")
    with pytest.raises(DataFormatError, match="no pairs"):
        load_pairs_jsonl(tmp_path / "e.jsonl")
    with pytest.raises(DataNotFoundError, match="pairs file not found"):
        load_pairs_jsonl(tmp_path / "missing.jsonl")


def test_dev_split_is_deterministic_and_disjoint(tmp_path):
    pairs = load_pairs_jsonl(write_pairs(tmp_path / "p.jsonl", n=200))
    tr, dev = dev_split(pairs, 0.2)
    tr2, dev2 = dev_split(pairs, 0.2, seed=5)
    assert dev.query_ids == dev2.query_ids  # the same dev set for every training seed
    assert not set(tr.query_ids) & set(dev.query_ids)
    assert len(tr) + len(dev) == 200 and 20 <= len(dev) <= 60
