import json

import numpy as np
import pytest

from jepa_rag import LexicalIndex
from jepa_rag.errors import InvalidInputError
from jepa_rag.fusion_choice import (MIN_QUERIES, FusionChoice, SideScores, choose_for_encoder, choose_weight,
                                    lexical_side, pseudo_queries)

WORDS = "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda omicron sigma tau".split()


def corpus(n: int = 80):
    """Documents of three six-word sentences each (so every one gives a pseudo-query); half have a title."""
    ids, docs = [], []
    for i in range(n):
        s = [" ".join(WORDS[(i + j + k) % len(WORDS)] for k in range(6)).capitalize() + f" doc{i}." for j in range(3)]
        ids.append(f"d{i}")
        docs.append({"title": f"Title of doc{i}" if i % 2 else "", "text": " ".join(s)})
    return ids, docs


def side(strong: bool, seed: int):
    """A fake side: 100 competitors scored N(0, 1) per query; the target scores 2.5 (strong: near the top) or like
    a competitor (useless)."""
    def score(queries, targets, k):
        rng = np.random.default_rng(seed)
        q = len(queries)
        top = [sorted(((f"c{j}", float(v)) for j, v in enumerate(rng.normal(size=k))), key=lambda x: -x[1])
               for _ in range(q)]
        target = np.full(q, 2.5) if strong else rng.normal(size=q)
        return SideScores(top, target, np.zeros(q), np.ones(q))
    return score


def test_pseudo_queries_cut_a_sentence_or_title_out_of_its_target():
    ids, docs = corpus()
    pqs = pseudo_queries(ids, docs, n=50, seed=1)
    assert len(pqs) == 50 and len({p.source_id for p in pqs}) == 50
    assert {p.kind for p in pqs} == {"sentence", "title"}
    for p in pqs:
        assert p.query not in p.target and p.query.strip() and p.target.strip()
    assert pqs == pseudo_queries(ids, docs, n=50, seed=1)
    assert pqs != pseudo_queries(ids, docs, n=50, seed=2)
    with pytest.raises(InvalidInputError):
        pseudo_queries(ids, docs[:-1])


def test_useless_bm25_gives_dense_only_and_useful_bm25_a_lexical_weight():
    ids, docs = corpus(120)
    dense_wins = choose_weight(ids, docs, side(True, 0), side(False, 1), prior=0.25, n_queries=120)
    assert dense_wins.lexical_weight <= 0.1 and dense_wins.p_value < 0.05
    bm25_wins = choose_weight(ids, docs, side(False, 0), side(True, 1), prior=0.25, n_queries=120)
    assert bm25_wins.lexical_weight > 0.5
    assert isinstance(dense_wins, FusionChoice) and dense_wins.n_queries == 120
    d = json.loads(json.dumps(dense_wins.to_dict()))
    assert d["per_weight"]["0"] > d["per_weight"]["0.25"] and d["reason"]
    assert FusionChoice.from_dict(d).to_dict() == d
    with pytest.raises(InvalidInputError):
        FusionChoice.from_dict({"lexical_weight": 0.1})


def test_thin_evidence_keeps_the_checkpoint_weight():
    ids, docs = corpus(MIN_QUERIES - 5)
    c = choose_weight(ids, docs, side(True, 0), side(False, 1), prior=0.25)
    assert c.lexical_weight == 0.25 and "too little evidence" in c.reason
    tie = choose_weight(*corpus(), side(False, 0), side(False, 1), prior=0.25, n_queries=60)  # both useless
    assert tie.lexical_weight == 0.25


def test_bad_sides_and_prior_are_refused():
    ids, docs = corpus()
    with pytest.raises(InvalidInputError, match="prior"):
        choose_weight(ids, docs, side(True, 0), side(True, 1), prior=1.5)

    def short(queries, targets, k):
        return SideScores([[]] * len(queries), np.zeros(1), np.zeros(1), np.ones(1))
    with pytest.raises(InvalidInputError, match="lexical side"):
        choose_weight(ids, docs, side(True, 0), short, prior=0.25)


def test_lexical_target_score_equals_the_index_score_of_the_same_text():
    ids, docs = corpus(30)
    texts = [d["title"] + " " + d["text"] for d in docs]
    index = LexicalIndex(ids, texts)
    s = lexical_side(index, texts)(["gamma delta doc3", "omicron doc7"], [texts[3], texts[7]], 5)
    full = index.score_all(["gamma delta doc3", "omicron doc7"])
    assert s.target == pytest.approx([full[0, 3], full[1, 7]], rel=1e-5)
    assert s.top[0][0][0] == "d3" and s.mean == pytest.approx(full.mean(axis=1), rel=1e-5)


def test_with_a_real_encoder(minilm_encoder):
    ids, docs = corpus(40)
    texts = [d["title"] + " " + d["text"] for d in docs]
    vectors = minilm_encoder.encode_corpus(docs)
    c = choose_for_encoder(minilm_encoder, ids, docs, vectors, LexicalIndex(ids, texts), prior=0.25, n_queries=40)
    assert 0.0 <= c.lexical_weight <= 1.0 and c.n_queries == 40 and len(c.per_weight) == 21
    assert c.reason and c.seconds >= 0


def test_evaluate_fusion_switch_parses_and_auto_reports_its_choice(tmp_path, minilm_dir, capsys):
    import argparse

    from jepa_rag.evaluate import fusion_arg, main

    from .helpers import write_beir

    assert fusion_arg("auto") == "auto" and fusion_arg("checkpoint") == "checkpoint" and fusion_arg("0.4") == 0.4
    for bad in ("1.5", "bm25", "-0.1"):
        with pytest.raises(argparse.ArgumentTypeError):
            fusion_arg(bad)
    base = ["--data", str(write_beir(tmp_path / "toy")), "--checkpoint", "none", "--base-model", str(minilm_dir),
            "--embeddings", "off", "--retriever", "hybrid"]
    assert main([*base, "--fusion", "auto", "--json", str(tmp_path / "a.json")]) == 0
    res = json.loads((tmp_path / "a.json").read_text())
    c = res["fusion_choice"]
    assert res["fusion"]["lexical_weight"] == c["lexical_weight"] and c["reason"] and "n_queries" in c
    assert "fusion auto" in capsys.readouterr().out
    assert main([*base, "--fusion", "0.4", "--json", str(tmp_path / "w.json")]) == 0
    assert json.loads((tmp_path / "w.json").read_text())["fusion"]["lexical_weight"] == 0.4
    for args, message in ((["--fusion", "0.4", "--lexical-weight", "0.3"], "not both"),
                          (["--fusion", "x"], "expected 'auto'")):
        with pytest.raises(SystemExit):
            main([*base, *args, "--json", str(tmp_path / "x.json")])
        assert message in capsys.readouterr().err
