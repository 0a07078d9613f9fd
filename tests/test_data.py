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
from jepa_rag.data import (
    Pairs,
    cap_positives,
    pairs_from_corpus_ict,
    pairs_from_corpus_sentences,
    pairs_from_corpus_titles,
    read_qrels,
    split_sentences,
)

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


def _corpus(folder, docs):
    folder.mkdir(parents=True)
    (folder / "corpus.jsonl").write_text("".join(json.dumps(d) + "\n" for d in docs))
    return folder


def test_split_sentences_keeps_abbreviations_and_drops_fragments():
    text = ("Background. Vitamin D levels were measured in 120 adults, e.g. nurses and doctors. "
            "Higher levels predicted fewer infections over two winters! (This held after adjustment for age.)")
    assert split_sentences(text) == [
        "Vitamin D levels were measured in 120 adults, e.g. nurses and doctors.",
        "Higher levels predicted fewer infections over two winters!",
        "(This held after adjustment for age.)",
    ]


def test_corpus_pairs_read_no_judgments_and_mix_corpora(tmp_path):
    long = "First finding is about heart disease risk. Second finding is about blood pressure change. Tiny."
    a = _corpus(tmp_path / "a", [{"_id": "1", "title": "Heart", "text": long},
                                 {"_id": "2", "title": "", "text": long},
                                 {"_id": "3", "title": "One", "text": "Only one sentence of enough words here."}])
    b = _corpus(tmp_path / "b", [{"_id": "1", "title": "Other", "text": long}])
    titles = pairs_from_corpus_titles([a, b])
    assert titles.queries == ["Heart", "One", "Other"] and titles.doc_ids == ["a:1", "a:3", "b:1"]
    sents = pairs_from_corpus_sentences([a, b])
    assert sents.doc_ids == ["a:1", "a:2", "b:1"]  # a:3 has a single sentence: it would be its own document
    assert len(sents.pool) == 4 and sents.positives[0] == "Heart " + long
    for q, pos in zip(sents.queries, sents.positives):
        assert q in split_sentences(long) and q in pos
    # the pick depends on the document id only: reading again gives the same queries
    assert pairs_from_corpus_sentences([a, b]).queries == sents.queries


def test_inverse_cloze_removes_the_query_sentence_from_its_document(tmp_path):
    text = ("Background. Vitamin D levels were measured in 120 adults, e.g. nurses and doctors. "
            "Higher levels predicted fewer infections over two winters! (This held after adjustment for age.)")
    a = _corpus(tmp_path / "a", [{"_id": str(i), "title": "Vitamin D", "text": text} for i in range(6)]
                + [{"_id": "short", "title": "T", "text": "Only one sentence of enough words here."}])
    ict, sents = pairs_from_corpus_ict([a]), pairs_from_corpus_sentences([a])
    assert ict.queries == sents.queries and ict.doc_ids == sents.doc_ids  # same sentence picked for each document
    assert len(set(ict.queries)) > 1
    for q, pos in zip(ict.queries, ict.positives):
        rest = [s for s in split_sentences(text) if s != q]
        assert q not in pos and pos.startswith("Vitamin D Background.") and all(s in pos for s in rest)
        assert len(pos) == len("Vitamin D " + text) - len(q) - 1  # only the sentence and one space went
    # negatives are mined among the same kind of text as the positives; an unpaired document stays whole
    assert [ict.pool[d] for d in ict.doc_ids] == ict.positives
    assert ict.pool["a:short"] == "T Only one sentence of enough words here."
    with pytest.raises(DataFormatError, match="data.source=ict"):
        pairs_from_corpus_ict([_corpus(tmp_path / "b", [{"_id": "1", "title": "", "text": "Short."}])])


def test_corpus_pairs_refuse_corpora_without_usable_documents(tmp_path):
    a = _corpus(tmp_path / "a", [{"_id": "1", "title": "", "text": "Short."}])
    with pytest.raises(DataFormatError, match="sentence"):
        pairs_from_corpus_sentences([a])
    with pytest.raises(DataFormatError, match="title"):
        pairs_from_corpus_titles([a])
    with pytest.raises(DataNotFoundError, match="corpus.jsonl"):
        pairs_from_corpus_sentences([tmp_path / "missing"])


def test_cap_positives_per_query():
    qids, dids = ["a"] * 5 + ["b"], [f"a{i}" for i in range(5)] + ["b0"]
    pairs = Pairs(qids, ["q" + q for q in qids], dids, ["p" + d for d in dids])
    capped = cap_positives(pairs, 2, seed=0)
    assert capped.query_ids.count("a") == 2 and capped.query_ids.count("b") == 1
    assert capped.doc_ids == sorted(capped.doc_ids) and set(capped.doc_ids) <= set(pairs.doc_ids)  # order kept
    assert cap_positives(pairs, 2, seed=0).doc_ids == capped.doc_ids  # deterministic per seed
    assert {tuple(cap_positives(pairs, 2, seed=s).doc_ids) for s in range(10)} != {tuple(capped.doc_ids)}
    assert cap_positives(pairs, 5).doc_ids == pairs.doc_ids
    with pytest.raises(DataFormatError, match="per_query must be ≥ 1"):
        cap_positives(pairs, 0)
