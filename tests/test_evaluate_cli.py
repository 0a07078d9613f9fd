import json

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
