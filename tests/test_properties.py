"""Property-based tests: loaders and input validation either work or raise our typed errors, never crash."""

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jepa_rag import DataFormatError, InvalidInputError, load_pairs_jsonl
from jepa_rag.data import read_qrels
from jepa_rag.encoder import validate_texts

anything = st.one_of(st.none(), st.integers(), st.floats(), st.binary(), st.text(), st.lists(st.text(), max_size=3))


@given(st.lists(st.one_of(st.text(), anything), max_size=8))
def test_validate_texts_accepts_exactly_nonblank_strings(items):
    ok = all(isinstance(t, str) and t.strip() for t in items)
    try:
        out = validate_texts(items)
    except InvalidInputError:
        assert not ok
    else:
        assert ok and out == items


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture], max_examples=60)
@given(st.lists(st.one_of(st.text(max_size=30), st.dictionaries(st.sampled_from(["query", "positive", "query_id"]), anything, max_size=3)), min_size=1, max_size=6))
def test_pairs_loader_never_crashes(tmp_path, lines):
    path = tmp_path / "p.jsonl"
    with open(path, "w", encoding="utf-8") as fh:
        for line in lines:
            fh.write((json.dumps(line, default=str) if isinstance(line, dict) else line.replace("\n", " ")) + "\n")
    try:
        pairs = load_pairs_jsonl(path)
    except DataFormatError as exc:
        assert str(path) in str(exc)
    else:
        assert all(q.strip() for q in pairs.queries) and all(p.strip() for p in pairs.positives)


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture], max_examples=60)
@given(st.lists(st.lists(st.text(alphabet=st.characters(blacklist_characters="\t\r\n", blacklist_categories=("Cs",)), max_size=6), max_size=4), max_size=6))
def test_qrels_reader_never_crashes(tmp_path, rows):
    path = tmp_path / "q.tsv"
    path.write_text("query-id\tcorpus-id\tscore\r\n" + "".join("\t".join(r) + "\r\n" for r in rows), encoding="utf-8")
    try:
        qrels = read_qrels(path)
    except DataFormatError as exc:
        assert "q.tsv" in str(exc)
    else:
        assert all(isinstance(g, int) for rel in qrels.values() for g in rel.values())


def test_invalid_utf8_names_the_file(tmp_path):
    p = tmp_path / "p.jsonl"
    p.write_bytes(b'{"query": "ok", "positive": "\xff\xfe"}\n')
    try:
        load_pairs_jsonl(p)
    except DataFormatError as exc:
        assert "p.jsonl" in str(exc) and "UTF-8" in str(exc)
    else:
        raise AssertionError("invalid UTF-8 was accepted")
