import json

import pytest

from jepa_rag.evaluate import main

from .helpers import write_beir


def test_evaluate_vanilla_writes_json(tmp_path, minilm_dir, capsys):
    folder = write_beir(tmp_path / "toy")
    out = tmp_path / "res.json"
    code = main(["--data", str(folder), "--checkpoint", "none", "--base-model", str(minilm_dir),
                 "--embeddings", "off", "--json", str(out)])
    assert code == 0
    res = json.loads(out.read_text())
    assert set(res["metrics"]) == {"ndcg@10", "recall@100", "mrr@10"}
    assert set(res["per_query"]["ndcg@10"]) == {"q1", "q2", "q3", "q4", "q5"}
    assert res["scoring"] == "cosine" and res["checkpoint"] == "none"
    assert res["metrics"]["ndcg@10"] > 0.8  # MiniLM gets these easy toy queries right
    assert "NDCG@10" in capsys.readouterr().out


def test_evaluate_checkpoint_and_scoring_override(tmp_path, minilm_dir, predictor_checkpoint):
    folder = write_beir(tmp_path / "toy")
    out = tmp_path / "res.json"
    assert main(["--data", str(folder), "--checkpoint", str(predictor_checkpoint), "--base-model", str(minilm_dir),
                 "--embeddings", "off", "--scoring", "euclidean", "--json", str(out)]) == 0
    res = json.loads(out.read_text())
    assert res["query_route"] == "predictor" and res["scoring"] == "euclidean"


def test_evaluate_missing_data_is_clear(tmp_path, minilm_dir, capsys):
    code = main(["--data", str(tmp_path / "missing"), "--checkpoint", "none", "--base-model", str(minilm_dir),
                 "--json", str(tmp_path / "x.json")])
    assert code == 2
    assert "not found" in capsys.readouterr().err


def test_evaluate_corrupt_checkpoint_is_clear(tmp_path, minilm_dir, capsys):
    (tmp_path / "ck").mkdir()
    (tmp_path / "ck" / "adapter_config.json").write_text("{}")
    (tmp_path / "ck" / "model.safetensors").write_bytes(b"junk")
    code = main(["--data", str(write_beir(tmp_path / "toy")), "--checkpoint", str(tmp_path / "ck"),
                 "--base-model", str(minilm_dir), "--json", str(tmp_path / "x.json")])
    assert code == 2
    assert "not a jepa-rag adapter config" in capsys.readouterr().err


def _hybrid(tmp_path, minilm_dir, *extra):
    folder = write_beir(tmp_path / "toy")
    out = tmp_path / "hybrid.json"
    code = main(["--data", str(folder), "--checkpoint", "none", "--base-model", str(minilm_dir),
                 "--embeddings", "off", "--retriever", "hybrid", "--json", str(out), *extra])
    return code, (json.loads(out.read_text()) if code == 0 else None)


def test_evaluate_hybrid_uses_the_default_checkpoints_fusion_for_none(tmp_path, minilm_dir, capsys):
    from jepa_rag import fusion_of

    code, res = _hybrid(tmp_path, minilm_dir)
    assert code == 0
    assert res["retriever"] == "hybrid" and res["fusion"] == fusion_of("default").to_dict()
    assert set(res["metrics"]) == {"ndcg@10", "recall@100", "mrr@10"}
    assert res["metrics"]["ndcg@10"] > 0.8
    assert "hybrid" in capsys.readouterr().out


def test_evaluate_hybrid_weight_override_matches_the_retriever(tmp_path, minilm_dir, minilm_encoder):
    from jepa_rag import Fusion, HybridRetriever, evaluate_run, load_beir

    code, res = _hybrid(tmp_path, minilm_dir, "--lexical-weight", "1")
    assert code == 0 and res["fusion"]["lexical_weight"] == 1.0 and res["fusion"]["method"] == "blend"
    ds = load_beir(tmp_path / "toy", "test")
    r = HybridRetriever(minilm_encoder, list(ds.corpus), list(ds.corpus.values()),
                        fusion=Fusion.from_dict(res["fusion"]))
    qids = list(ds.queries)
    run = {q: dict(h) for q, h in zip(qids, r.retrieve([ds.queries[q] for q in qids], k=1000))}
    assert evaluate_run(ds.qrels, run)["metrics"] == res["metrics"]


def test_evaluate_dense_json_names_its_retriever(tmp_path, minilm_dir):
    out = tmp_path / "dense.json"
    assert main(["--data", str(write_beir(tmp_path / "toy")), "--checkpoint", "none", "--base-model", str(minilm_dir),
                 "--embeddings", "off", "--json", str(out)]) == 0
    assert json.loads(out.read_text())["retriever"] == "dense"


@pytest.mark.parametrize("args, message", [
    (["--lexical-weight", "1.5"], "must be in [0, 1]"),
    (["--retriever", "bm42"], "invalid choice"),
])
def test_evaluate_hybrid_bad_arguments(tmp_path, minilm_dir, capsys, args, message):
    with pytest.raises(SystemExit):
        main(["--data", str(tmp_path), "--checkpoint", "none", "--json", str(tmp_path / "x.json"),
              "--retriever", "hybrid", *args])
    assert message in capsys.readouterr().err


def test_evaluate_lexical_weight_needs_hybrid(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["--data", str(tmp_path), "--checkpoint", "none", "--json", str(tmp_path / "x.json"),
              "--lexical-weight", "0.3"])
    assert "needs --retriever hybrid" in capsys.readouterr().err
