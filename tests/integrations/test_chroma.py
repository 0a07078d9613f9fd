"""Chroma: the registered embedding function, rebuilt from stored config, refusing a change of checkpoint.

Each collection test runs twice: on an embedded ``PersistentClient`` and against a real ``chroma run`` server.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
import uuid

import numpy as np
import pytest

chromadb = pytest.importorskip("chromadb")


@pytest.fixture(scope="module")
def ef(predictor_checkpoint, minilm_dir):
    from jepa_rag.chroma import JEPAEmbeddingFunction

    return JEPAEmbeddingFunction(predictor_checkpoint, base_model=minilm_dir, precision="fp32")


@pytest.fixture(params=["embedded", "server"])
def connect(request, tmp_path):
    """A function returning a new client on the same store: a PersistentClient folder or a Chroma server."""
    if request.param == "embedded":
        return lambda: chromadb.PersistentClient(path=str(tmp_path / "db"))
    host, port = request.getfixturevalue("chroma_server")
    return lambda: chromadb.HttpClient(host=host, port=port)


def _name() -> str:
    return f"jepa-{uuid.uuid4().hex[:12]}"


def _fill(collection, passages):
    collection.add(ids=list(passages), documents=list(passages.values()))


def test_registered_with_chromadb(ef):
    from chromadb.utils.embedding_functions import config_to_embedding_function, known_embedding_functions

    from jepa_rag.chroma import JEPAEmbeddingFunction

    assert known_embedding_functions["jepa_rag"] is JEPAEmbeddingFunction
    assert ef.name() == "jepa_rag" and not ef.is_legacy()
    assert ef.default_space() == "cosine"
    assert set(ef.supported_spaces()) == {"cosine", "ip", "l2"}
    config = ef.get_config()
    json.dumps(config)  # chromadb stores it as JSON
    assert config["weights_sha256"] != "none" and config["query_route"] == "predictor"
    rebuilt = config_to_embedding_function({"name": "jepa_rag", "config": config})
    assert isinstance(rebuilt, JEPAEmbeddingFunction) and rebuilt.get_config() == config
    np.testing.assert_allclose(np.stack(rebuilt(["some text"])), np.stack(ef(["some text"])), atol=1e-6)


def test_vanilla_config_round_trips(minilm_dir):
    from jepa_rag.chroma import JEPAEmbeddingFunction

    ef = JEPAEmbeddingFunction("none", base_model=minilm_dir)
    config = ef.get_config()
    assert config["checkpoint"] == "none" and config["weights_sha256"] == "none"
    assert config["base_model"] == str(minilm_dir.resolve())
    assert JEPAEmbeddingFunction.build_from_config(config).get_config() == config


def test_reopening_without_a_function_rebuilds_it(connect, ef, passages, queries):
    from jepa_rag.chroma import JEPAEmbeddingFunction, get_or_create_collection

    name = _name()
    collection = get_or_create_collection(connect(), name, ef)
    assert collection.configuration_json["hnsw"]["space"] == "cosine"
    _fill(collection, passages)
    expected = collection.query(query_texts=queries, n_results=3)

    plain = connect().get_collection(name)  # chromadb alone: builds our function from the stored config
    got = plain.query(query_texts=queries, n_results=3)
    assert got["ids"] == expected["ids"]
    np.testing.assert_allclose(got["distances"], expected["distances"], atol=1e-5)

    helper = get_or_create_collection(connect(), name)
    assert isinstance(helper._embedding_function, JEPAEmbeddingFunction)
    assert helper._embedding_function.get_config() == ef.get_config()
    assert helper.query(query_texts=queries, n_results=3)["ids"] == expected["ids"]


def test_reopening_with_another_checkpoint_conflicts(connect, ef, passages, other_checkpoint, minilm_dir):
    from jepa_rag.errors import EmbeddingSpaceConflictError
    from jepa_rag.chroma import JEPAEmbeddingFunction, get_or_create_collection

    name = _name()
    collection = get_or_create_collection(connect(), name, ef)
    _fill(collection, passages)
    other = JEPAEmbeddingFunction(other_checkpoint, base_model=minilm_dir)
    with pytest.raises(EmbeddingSpaceConflictError) as info:
        get_or_create_collection(connect(), name, other)
    message = str(info.value)
    assert ef.get_config()["weights_sha256"][:12] in message
    assert other.get_config()["weights_sha256"][:12] in message
    assert "different embedding spaces" in message
    with pytest.raises(EmbeddingSpaceConflictError, match="no heads"):
        get_or_create_collection(connect(), name, JEPAEmbeddingFunction("none", base_model=minilm_dir))
    # nothing was changed by the refused attempts
    assert get_or_create_collection(connect(), name, ef).count() == len(passages)


def test_a_checkpoint_changed_in_place_is_refused(tmp_path, connect, predictor_checkpoint, other_checkpoint,
                                                  minilm_dir, passages, queries):
    from jepa_rag.errors import EmbeddingSpaceConflictError
    from jepa_rag.chroma import JEPAEmbeddingFunction, get_or_create_collection

    ckpt = tmp_path / "ckpt"
    shutil.copytree(predictor_checkpoint, ckpt)
    name = _name()
    _fill(get_or_create_collection(connect(), name, JEPAEmbeddingFunction(ckpt, base_model=minilm_dir)), passages)
    for f in other_checkpoint.iterdir():  # retrained in place: same path, other weights
        shutil.copyfile(f, ckpt / f.name)
    with pytest.raises(EmbeddingSpaceConflictError, match="now loads"):
        get_or_create_collection(connect(), name)
    with pytest.raises(ValueError, match="now loads"):  # chromadb alone: its wrapper keeps our message
        connect().get_collection(name).query(query_texts=queries[:1], n_results=1)


def test_collection_without_a_recorded_function_only_warns(tmp_path, ef):
    from jepa_rag.chroma import check_collection

    client = chromadb.PersistentClient(path=str(tmp_path))
    collection = client.create_collection(_name(), embedding_function=None)
    check_collection(collection, ef)  # empty: nothing to verify, no warning
    collection.add(ids=["a"], embeddings=[ef(["text"])[0]])
    with pytest.warns(UserWarning, match="cannot verify"):
        check_collection(collection, ef)


REOPEN = textwrap.dedent("""
    import json, sys
    import chromadb
    import jepa_rag.chroma  # registers the jepa_rag embedding function with chromadb
    collection = chromadb.PersistentClient(path=sys.argv[1]).get_collection(sys.argv[2])
    res = collection.query(query_texts=json.loads(sys.argv[3]), n_results=3)
    print("RESULT " + json.dumps({"ids": res["ids"], "distances": res["distances"]}))
""")


def test_fresh_process_rebuilds_the_function_from_stored_config(tmp_path, ef, passages, queries):
    from jepa_rag.chroma import get_or_create_collection

    name = _name()
    collection = get_or_create_collection(chromadb.PersistentClient(path=str(tmp_path)), name, ef)
    _fill(collection, passages)
    expected = collection.query(query_texts=queries, n_results=3)
    proc = subprocess.run([sys.executable, "-c", REOPEN, str(tmp_path), name, json.dumps(queries)],
                          capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr[-3000:]
    got = json.loads(next(line for line in proc.stdout.splitlines() if line.startswith("RESULT "))[7:])
    assert got["ids"] == expected["ids"]
    np.testing.assert_allclose(got["distances"], expected["distances"], atol=1e-5)


# ------------------------------------------------------------------------------------------------ precision
@pytest.fixture(scope="module")
def ef_bf16(predictor_checkpoint, minilm_dir):
    from jepa_rag.chroma import JEPAEmbeddingFunction

    return JEPAEmbeddingFunction(predictor_checkpoint, base_model=minilm_dir, precision="bf16")


def _row_cosines(a, b) -> np.ndarray:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


def test_bf16_function_is_close_to_fp32(ef, ef_bf16, passages, queries):
    assert ef_bf16.encoder is not ef.encoder and ef_bf16.encoder.precision == "bf16"
    for route in ("__call__", "embed_query"):
        texts = list(passages.values()) if route == "__call__" else queries
        fast, ref = np.stack(getattr(ef_bf16, route)(texts)), np.stack(getattr(ef, route)(texts))
        assert _row_cosines(fast, ref).min() > 0.99, route
        assert not np.array_equal(fast, ref), f"{route}: bf16 gave bit-identical vectors"
    assert "precision='bf16'" in repr(ef_bf16) and "precision='fp32'" in repr(ef)


def test_precision_round_trips_through_the_config(ef, ef_bf16, predictor_checkpoint, minilm_dir):
    from chromadb.utils.embedding_functions import config_to_embedding_function

    from jepa_rag.chroma import JEPAEmbeddingFunction

    auto = JEPAEmbeddingFunction(predictor_checkpoint, base_model=minilm_dir)
    assert auto.precision == "auto" and "precision" not in auto.get_config()  # absent means auto
    for fn, value in ((ef, "fp32"), (ef_bf16, "bf16")):
        config = fn.get_config()
        assert config["precision"] == value
        assert {k: v for k, v in config.items() if k != "precision"} == auto.get_config()
        rebuilt = JEPAEmbeddingFunction.build_from_config(config)
        assert rebuilt.precision == value and rebuilt.get_config() == config and rebuilt.encoder is fn.encoder
    assert config_to_embedding_function({"name": "jepa_rag", "config": ef_bf16.get_config()}).precision == "bf16"
    assert JEPAEmbeddingFunction.build_from_config(auto.get_config()).precision == "auto"
    # "auto" shares the encoder of the arithmetic it resolves to on this machine
    assert auto.encoder is (ef_bf16 if auto.encoder.precision == "bf16" else ef).encoder


@pytest.mark.parametrize("built, opened", [("fp32", "bf16"), ("bf16", "fp32")])
def test_precision_does_not_change_the_embedding_space(connect, ef, ef_bf16, passages, queries, built, opened):
    from jepa_rag.chroma import check_collection, get_or_create_collection

    by = {"fp32": ef, "bf16": ef_bf16}
    name = _name()
    collection = get_or_create_collection(connect(), name, by[built])
    _fill(collection, passages)
    expected = collection.query(query_texts=queries, n_results=1)["ids"]
    reopened = get_or_create_collection(connect(), name, by[opened])  # no EmbeddingSpaceConflictError
    check_collection(reopened, by[opened])
    assert reopened.query(query_texts=queries, n_results=1)["ids"] == expected
    by[opened].validate_config_update(by[built].get_config(), by[opened].get_config())
    # reopened without a function: the stored precision is rebuilt
    assert get_or_create_collection(connect(), name)._embedding_function.precision == built


def test_unknown_precision_is_refused(predictor_checkpoint, minilm_dir, ef):
    from jepa_rag.errors import ConfigError

    from jepa_rag.adapters import load_encoder
    from jepa_rag.chroma import JEPAEmbeddingFunction

    allowed = r"precision must be one of \['auto', 'fp32', 'bf16'\], got 'fp16'"
    with pytest.raises(ConfigError, match=allowed):
        JEPAEmbeddingFunction(predictor_checkpoint, base_model=minilm_dir, precision="fp16")
    with pytest.raises(ConfigError, match=allowed):
        JEPAEmbeddingFunction.build_from_config({**ef.get_config(), "precision": "fp16"})
    with pytest.raises(ConfigError, match=allowed):
        load_encoder(predictor_checkpoint, minilm_dir, precision="fp16")
