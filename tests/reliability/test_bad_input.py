"""Bad input at every public entry point gets a clear, typed error (or documented behaviour), never a stack trace.

Covers what ``tests/test_encoder.py``, ``tests/test_data.py`` and ``tests/integrations`` leave open: the three
integrations' embedding methods (sync and async), Chroma collections (duplicate ids, wrong-dimension vectors,
:func:`jepa_rag.chroma.ingest`), broken checkpoints reaching an adapter, texts that are not valid Unicode,
and the two command lines (``python -m train``, ``python -m jepa_rag.evaluate``).
"""

from __future__ import annotations

import asyncio
import json
import uuid
import warnings
from dataclasses import replace

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jepa_rag import CheckpointError, ConfigError, InvalidInputError, JEPARagError

from ..helpers import write_beir, write_pairs

DIM = 384


# ------------------------------------------------------------------------------------------------ the adapters
@pytest.fixture(scope="module")
def adapters(predictor_checkpoint, minilm_dir):
    from jepa_rag.chroma import JEPAEmbeddingFunction
    from langchain_jepa_rag import JEPAEmbeddings
    from llama_index.embeddings.jepa_rag import JEPAEmbedding

    return {
        "llamaindex": JEPAEmbedding(checkpoint=predictor_checkpoint, base_model=minilm_dir),
        "langchain": JEPAEmbeddings(checkpoint=str(predictor_checkpoint), base_model=str(minilm_dir)),
        "chroma": JEPAEmbeddingFunction(predictor_checkpoint, base_model=minilm_dir),
    }


def _sync(value):
    return asyncio.run(value) if asyncio.iscoroutine(value) else value


# (adapter, method, route): methods that take one text
SINGLE = [
    ("llamaindex", "get_query_embedding", "query"),
    ("llamaindex", "get_text_embedding", "document"),
    ("llamaindex", "aget_query_embedding", "query"),
    ("llamaindex", "aget_text_embedding", "document"),
    ("langchain", "embed_query", "query"),
    ("langchain", "aembed_query", "query"),
]
# methods that take a list of texts
BATCH = [
    ("llamaindex", "get_text_embedding_batch", "document"),
    ("llamaindex", "aget_text_embedding_batch", "document"),
    ("langchain", "embed_documents", "document"),
    ("langchain", "aembed_documents", "document"),
    ("chroma", "__call__", "document"),
    ("chroma", "embed_query", "query"),
]

BAD_TEXT = [
    ("", r"\[0\]: empty or whitespace-only"),
    (" \n\t\u3000", r"\[0\]: empty or whitespace-only"),
    (None, r"\[0\]: expected a string, got NoneType"),
    (3, r"\[0\]: expected a string, got int"),
    (2.5, r"\[0\]: expected a string, got float"),
    (b"bytes", r"\[0\]: expected a string, got bytes"),
    (["a list"], r"\[0\]: expected a string, got list"),
    ("lone \ud800 surrogate", r"\[0\]: not valid Unicode \(lone surrogate '\\ud800' at position 5\)"),
]
BAD_LIST = [
    ("a bare string", "got a single str; wrap it in a list"),
    (b"bytes", "got a single bytes"),
    (None, "expected a list of strings, got NoneType"),
    (3, "expected a list of strings, got int"),
    ([""], r"\[0\]: empty or whitespace-only"),
    (["fine", None], r"\[1\]: expected a string, got NoneType"),
    (["fine", b"x"], r"\[1\]: expected a string, got bytes"),
    (["fine", 3.0], r"\[1\]: expected a string, got float"),
    (["fine", ["nested"]], r"\[1\]: expected a string, got list"),
    (["fine", "x\udfff"], r"\[1\]: not valid Unicode"),
]


def _ids(cases):
    return [f"{a}.{m}" for a, m, _ in cases]


# the frameworks' document routes pair every text with a vector, so an empty document gets the base model's vector
# of the empty text with a warning instead of aborting the batch (queries and Chroma's function still refuse it)
LENIENT = {("llamaindex", "get_text_embedding"), ("llamaindex", "aget_text_embedding"),
           ("llamaindex", "get_text_embedding_batch"), ("llamaindex", "aget_text_embedding_batch"),
           ("langchain", "embed_documents"), ("langchain", "aembed_documents")}


def _empty(bad) -> bool:
    texts = [bad] if isinstance(bad, str) else bad if isinstance(bad, list) else []
    return any(isinstance(t, str) and not t.strip() for t in texts)


@pytest.mark.parametrize("bad, message", BAD_TEXT, ids=[repr(b)[:20] for b, _ in BAD_TEXT])
@pytest.mark.parametrize("adapter, method, route", SINGLE, ids=_ids(SINGLE))
def test_single_text_methods_refuse_bad_text(adapters, adapter, method, route, bad, message):
    if (adapter, method) in LENIENT and _empty(bad):
        with pytest.warns(UserWarning, match="empty or whitespace-only"):
            vec = _sync(getattr(adapters[adapter], method)(bad))
        assert len(vec) == DIM and np.isfinite(vec).all()
        return
    with pytest.raises(InvalidInputError, match=message):
        _sync(getattr(adapters[adapter], method)(bad))


@pytest.mark.parametrize("bad, message", BAD_LIST, ids=[repr(b)[:20] for b, _ in BAD_LIST])
@pytest.mark.parametrize("adapter, method, route", BATCH, ids=_ids(BATCH))
def test_list_methods_refuse_bad_lists(adapters, adapter, method, route, bad, message):
    """A bare string is refused, not embedded character by character; other junk names the offending item."""
    if (adapter, method) in LENIENT and isinstance(bad, list) and all(isinstance(t, str) for t in bad) and _empty(bad):
        with pytest.warns(UserWarning, match=r"1 of 1 documents are empty"):
            got = np.array(_sync(getattr(adapters[adapter], method)(bad)))
        assert got.shape == (1, DIM) and np.isfinite(got).all()
        return
    with pytest.raises(InvalidInputError, match=message):
        _sync(getattr(adapters[adapter], method)(bad))


@pytest.mark.parametrize("adapter, method, route", BATCH, ids=_ids(BATCH))
def test_an_empty_list(adapters, adapter, method, route):
    """An empty list gives an empty list, except where Chroma requires a result (a clear error instead)."""
    call = getattr(adapters[adapter], method)
    if (adapter, method) == ("chroma", "__call__"):
        with pytest.raises(InvalidInputError, match="empty list"):
            call([])
    else:
        assert list(_sync(call([]))) == []


HARD_BUT_VALID = {
    "1 MB": "lorem ipsum dolor " * 58_000,
    "mixed scripts": "Ünïcödé, Ελληνικά, русский, 日本語のテキスト, العربية, עברית, हिन्दी and 한국어 in one line",
    "emoji": "🚀🌍 ❤️‍🔥 👩🏽‍🔬 flags 🇫🇷🇯🇵 and keycaps 1️⃣",
    "control chars": "tab\there\x00nul\x1bescape\x7fdel",
    "zero-width only": "\u200b\u200c\u200d\ufeff",
    "combining marks": "Z̷̢̛a̴̡͝l̸̨̛g̵̢̛o̶̧͝",
    "one char": "x",
}


@pytest.fixture(scope="module")
def expected_hard(adapters):
    """What the encoder itself gives for the hard texts, per route."""
    enc = adapters["chroma"].encoder
    texts = list(HARD_BUT_VALID.values())
    return {"query": enc.encode_queries(texts), "document": enc.encode_documents(texts)}


@pytest.mark.parametrize("adapter, method, route", SINGLE + BATCH, ids=_ids(SINGLE + BATCH))
def test_long_mixed_script_and_emoji_texts_embed_like_the_encoder(adapters, expected_hard, adapter, method, route):
    """A 1 MB text is truncated to the model's window (no crash, no NaN); any script, emoji or control char works."""
    call = getattr(adapters[adapter], method)
    texts = list(HARD_BUT_VALID.values())
    if (adapter, method, route) in SINGLE:
        got = np.array([_sync(call(t)) for t in texts])
    else:
        got = np.array(_sync(call(texts)))
    assert got.shape == (len(texts), DIM) and np.isfinite(got).all()
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-4)
    np.testing.assert_allclose(got, expected_hard[route], atol=1e-5)


def _valid(t: object) -> bool:
    if not isinstance(t, str) or not t.strip():
        return False
    try:
        t.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


ANY_TEXT = st.text(alphabet=st.characters(codec=None, categories=None), max_size=24)  # surrogates included
VALID_TEXT = st.text(min_size=1, max_size=24).filter(lambda t: bool(t.strip()))
LISTS = st.one_of(
    st.lists(VALID_TEXT, min_size=1, max_size=4),
    st.lists(st.one_of(ANY_TEXT, st.none(), st.integers(), st.binary(max_size=4)), min_size=1, max_size=4),
)


@pytest.mark.parametrize("adapter, method, route", [c for c in BATCH if not c[1].startswith("a")],
                         ids=_ids([c for c in BATCH if not c[1].startswith("a")]))
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(items=LISTS)
def test_property_batch_methods_embed_exactly_the_valid_lists(adapters, adapter, method, route, items):
    """Any list: finite unit vectors equal to the encoder's route when every item is a valid text, else our error."""
    call = getattr(adapters[adapter], method)
    enc = adapters["chroma"].encoder
    if (adapter, method) in LENIENT and all(_valid(t) or (isinstance(t, str) and not t.strip()) for t in items):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            got = np.array(call(items))
        assert got.shape == (len(items), DIM) and np.isfinite(got).all()
        for i, t in enumerate(items):
            want = enc.empty_document_vector() if not t.strip() else enc.encode_documents([t])[0]
            np.testing.assert_allclose(got[i], want, atol=1e-5)
    elif all(_valid(t) for t in items):
        got = np.array(call(items))
        ref = enc.encode_queries(items) if route == "query" else enc.encode_documents(items)
        assert got.shape == (len(items), DIM) and np.isfinite(got).all()
        np.testing.assert_allclose(got, ref, atol=1e-5)
    else:
        with pytest.raises(InvalidInputError):
            call(items)


# ------------------------------------------------------------------------------------------------ checkpoints
def _corrupt(src, dst):
    import shutil

    shutil.copytree(src, dst)
    w = dst / "model.safetensors"
    w.write_bytes(w.read_bytes()[:-64])
    return dst


def _other_base_model(src, dst):
    import shutil

    shutil.copytree(src, dst)
    cfg = dst / "adapter_config.json"
    meta = json.loads(cfg.read_text())
    meta["base_fingerprint"].update(model_id="someone/another-model", weights_sha256="0" * 64)
    from jepa_rag.checkpoint import config_sha256

    meta["config_sha256"] = config_sha256(meta)  # a sound checkpoint, trained on another model
    cfg.write_text(json.dumps(meta))
    return dst


def _nan_weights(src, dst, minilm_fingerprint):
    import torch

    from jepa_rag import Checkpoint, load_checkpoint, save_checkpoint

    ck = load_checkpoint(src)
    state = dict(ck.state_dict)
    key = sorted(state)[0]
    state[key] = torch.full_like(state[key], float("nan"))
    save_checkpoint(Checkpoint(ck.config, minilm_fingerprint, state), dst)  # a valid file: the hash matches
    return dst


@pytest.fixture(scope="module")
def broken_checkpoints(tmp_path_factory, predictor_checkpoint, minilm_fingerprint):
    root = tmp_path_factory.mktemp("broken")
    return {
        "missing": (root / "missing", "checkpoint not found"),
        "empty folder": ((root / "empty").mkdir() or root / "empty", "missing adapter_config.json"),
        "truncated weights": (_corrupt(predictor_checkpoint, root / "truncated"), "corrupt or truncated"),
        "another base model": (_other_base_model(predictor_checkpoint, root / "other"),
                               "heads only work on the model they were trained on"),
        "NaN weights": (_nan_weights(predictor_checkpoint, root / "nan", minilm_fingerprint), "NaN or inf"),
    }


@pytest.mark.parametrize("case", ["missing", "empty folder", "truncated weights", "another base model", "NaN weights"])
@pytest.mark.parametrize("adapter", ["llamaindex", "langchain", "chroma", "encoder"])
def test_broken_checkpoints_are_refused_by_every_adapter(broken_checkpoints, minilm_dir, adapter, case):
    from jepa_rag import JEPAEncoder

    path, message = broken_checkpoints[case]
    with pytest.raises(CheckpointError, match=message):
        if adapter == "llamaindex":
            from llama_index.embeddings.jepa_rag import JEPAEmbedding

            JEPAEmbedding(checkpoint=path, base_model=minilm_dir)
        elif adapter == "langchain":
            from langchain_jepa_rag import JEPAEmbeddings

            JEPAEmbeddings(checkpoint=str(path), base_model=str(minilm_dir))
        elif adapter == "chroma":
            from jepa_rag.chroma import JEPAEmbeddingFunction

            JEPAEmbeddingFunction(path, base_model=minilm_dir)
        else:
            JEPAEncoder.from_pretrained(path, base_model=str(minilm_dir))


def test_a_collection_whose_checkpoint_was_corrupted_since_is_refused_on_reopen(tmp_path, predictor_checkpoint,
                                                                                 minilm_dir):
    import shutil

    import chromadb

    from jepa_rag.chroma import JEPAEmbeddingFunction, get_or_create_collection

    ckpt = tmp_path / "ckpt"
    shutil.copytree(predictor_checkpoint, ckpt)
    client = chromadb.PersistentClient(path=str(tmp_path / "db"))
    get_or_create_collection(client, "notes", JEPAEmbeddingFunction(ckpt, base_model=minilm_dir)).add(
        ids=["a"], documents=["a note"])
    w = ckpt / "model.safetensors"
    w.write_bytes(w.read_bytes()[:-64])
    with pytest.raises(CheckpointError, match="corrupt or truncated"):
        get_or_create_collection(client, "notes")


def test_heads_for_another_dimension_are_a_config_error(minilm_dir, minilm_fingerprint):
    from jepa_rag import HeadConfig, JEPAEncoder, ModelConfig

    cfg = ModelConfig(base_model=str(minilm_dir), projection=HeadConfig(768, 768), predictor=None,
                      query_route="projection")
    with pytest.raises(ConfigError, match="in_dim is 768, but the base model .* gives 384-d vectors"):
        JEPAEncoder(cfg, minilm_fingerprint, minilm_dir, use_cache=False)


# ------------------------------------------------------------------------------------------------ Chroma collections
@pytest.fixture
def collection(tmp_path, adapters):
    import chromadb

    from jepa_rag.chroma import get_or_create_collection

    client = chromadb.PersistentClient(path=str(tmp_path / "db"))
    return get_or_create_collection(client, f"c-{uuid.uuid4().hex[:8]}", adapters["chroma"])


def test_duplicate_ids_in_one_add_are_refused_by_chromadb_and_nothing_is_written(collection):
    from chromadb.errors import DuplicateIDError

    with pytest.raises(DuplicateIDError, match="found duplicates of: a"):
        collection.add(ids=["a", "b", "a"], documents=["one", "two", "three"])
    with pytest.raises(DuplicateIDError):
        collection.upsert(ids=["a", "a"], documents=["one", "two"])
    assert collection.count() == 0


def test_add_keeps_an_existing_id_upsert_and_ingest_replace_it(collection):
    """chromadb's documented ``add`` behaviour, the reason :func:`ingest` upserts."""
    from jepa_rag.chroma import ingest

    collection.add(ids=["a"], documents=["first text"])
    collection.add(ids=["a"], documents=["edited text"])
    assert collection.get(ids=["a"])["documents"] == ["first text"]
    ingest(collection, ["a"], ["edited text"])
    assert collection.get(ids=["a"])["documents"] == ["edited text"] and collection.count() == 1


@pytest.mark.parametrize("ids, docs, kwargs, message", [
    (["a", "b"], ["x"], {}, "got 2 ids for 1 documents"),
    (["a", ""], ["x", "y"], {}, r"ids\[1\]: expected a non-empty string"),
    (["a", 7], ["x", "y"], {}, r"ids\[1\]: expected a non-empty string, got 7"),
    ("ab", ["x", "y"], {}, "ids: expected a list of strings, got a single string"),
    (["a", "b"], "xy", {}, "got a single str"),
    (["a", "b"], ["x", None], {}, r"documents\[1\]: expected a string, got NoneType"),
    (["a"], ["x"], {"batch_size": 0}, "batch_size must be a positive integer"),
    (["a", "b"], ["x", "y"], {"metadatas": [{"k": 1}]}, "got 1 metadatas for 2 documents"),
])
def test_ingest_refuses_bad_input_before_writing_anything(collection, ids, docs, kwargs, message):
    from jepa_rag.chroma import ingest

    with pytest.raises(InvalidInputError, match=message):
        ingest(collection, ids, docs, batch_size=kwargs.pop("batch_size", 1), **kwargs)
    assert collection.count() == 0


def test_ingest_skips_empty_documents_and_repeated_ids_with_one_warning(collection, caplog):
    """Corpus shapes, not errors (jepa_rag.corpus_audit): the rest of the corpus is written."""
    from jepa_rag.chroma import ingest

    with caplog.at_level("WARNING", logger="jepa_rag"):
        assert ingest(collection, ["a", "b", "c", "a"], ["x", "  ", "z", "again"], batch_size=2) == 2
    assert sorted(collection.get()["ids"]) == ["a", "c"] and collection.get(ids=["a"])["documents"] == ["x"]
    [warning] = [r.getMessage() for r in caplog.records if "skipped" in r.getMessage()]
    assert "skipped 2 of 4" in warning and "'b'" in warning and "first one wins" in warning


def test_ingest_refuses_bad_metadata_before_writing_anything(collection):
    from jepa_rag.chroma import ingest

    with pytest.raises(ValueError, match="metadata"):
        ingest(collection, ["a", "b"], ["x", "y"], metadatas=[{"ok": 1}, {"bad": {"nested": "dict"}}], batch_size=1)
    assert collection.count() == 0


def test_ingest_retries_a_broken_connection_but_not_a_refused_request():
    from jepa_rag.chroma import ingest

    class Flaky:
        def __init__(self, failures):
            self.failures, self.calls, self.stored = list(failures), 0, {}

        def upsert(self, ids, documents):
            self.calls += 1
            if self.failures:
                raise self.failures.pop(0)
            self.stored.update(zip(ids, documents))

    flaky = Flaky([ConnectionResetError("server restarting"), ConnectionRefusedError("still down")])
    with pytest.warns(RuntimeWarning, match="retrying"):
        assert ingest(flaky, ["a", "b", "c"], ["x", "y", "z"], batch_size=2, retry_wait=0.001) == 3
    assert flaky.calls == 4 and flaky.stored == {"a": "x", "b": "y", "c": "z"}
    refused = Flaky([ValueError("invalid request")])
    with pytest.raises(ValueError, match="invalid request"):
        ingest(refused, ["a"], ["x"], retry_wait=0.001)
    assert refused.calls == 1
    down = Flaky([ConnectionRefusedError("down")] * 5)
    with pytest.warns(RuntimeWarning), pytest.raises(ConnectionRefusedError):
        ingest(down, ["a"], ["x"], retries=2, retry_wait=0.001)
    assert down.calls == 3


@pytest.mark.parametrize("where", ["embedded", "server"])
def test_wrong_dimension_vectors_are_refused_by_chroma(request, tmp_path, adapters, where):
    """Documented chromadb behaviour: a query or record vector of another dimension is an InvalidArgumentError."""
    import chromadb
    from chromadb.errors import InvalidArgumentError

    from jepa_rag.chroma import get_or_create_collection

    if where == "embedded":
        client = chromadb.PersistentClient(path=str(tmp_path / "db"))
    else:
        server = request.getfixturevalue("chroma_server_factory")()
        client = server.client()
    col = get_or_create_collection(client, f"dim-{uuid.uuid4().hex[:8]}", adapters["chroma"])
    col.add(ids=["a"], documents=["a note about tea"])
    for bad in ([[0.1] * 10], np.zeros((1, 768), np.float32)):
        with pytest.raises(InvalidArgumentError, match=f"dimension of {DIM}, got {len(bad[0])}"):
            col.query(query_embeddings=bad, n_results=1)
    with pytest.raises(InvalidArgumentError, match=f"dimension of {DIM}, got 10"):
        col.add(ids=["b"], embeddings=[[0.1] * 10])
    with pytest.raises(InvalidInputError, match=r"queries\[0\]: empty"):
        col.query(query_texts=[" "], n_results=1)
    assert col.count() == 1 and col.query(query_texts=["tea"], n_results=1)["ids"] == [["a"]]


# ------------------------------------------------------------------------------------------------ command lines
def _eval(tmp_path, minilm_dir, data, *extra):
    from jepa_rag.evaluate import main

    return main(["--data", str(data), "--checkpoint", "none", "--base-model", str(minilm_dir), "--embeddings", "off",
                 "--json", str(tmp_path / "out" / "res.json"), *extra])


def _train(tmp_path, minilm_dir, *args):
    from jepa_rag.train.__main__ import main

    return main([*args, "--set", f"model.base_model={minilm_dir}", "--output", str(tmp_path / "run"),
                 "--no-progress", "--embeddings", "off"])


def _only_error_line(capsys, *fragments):
    """The command said what is wrong in one ``error: ...`` line (after any progress bars), with no traceback."""
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.rstrip().splitlines()[-1].split("\r")[-1].startswith("error: "), err
    for fragment in fragments:
        assert fragment in err, err


@pytest.mark.parametrize("case", ["malformed corpus line", "lone surrogate in corpus", "not UTF-8 queries",
                                  "short qrels row", "non-numeric score"])
def test_evaluate_names_the_file_and_line_of_a_malformed_beir_folder(tmp_path, minilm_dir, capsys, case):
    folder = write_beir(tmp_path / "toy")
    corpus = (folder / "corpus.jsonl").read_text()
    if case == "malformed corpus line":
        (folder / "corpus.jsonl").write_text(corpus + '{"_id": "99", "text": oops}\n')
        where = "corpus.jsonl:9: not valid JSON"
    elif case == "lone surrogate in corpus":
        (folder / "corpus.jsonl").write_text(corpus.replace('"text": "Dogs', '"text": "\\udc80Dogs'))
        where = "corpus.jsonl:2: not valid Unicode"
    elif case == "not UTF-8 queries":
        (folder / "queries.jsonl").write_bytes(b'{"_id": "q1", "text": "caf\xe9"}\n')
        where = "queries.jsonl:1: not valid UTF-8"
    elif case == "short qrels row":
        (folder / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq1\t007\n")
        where = "test.tsv:2: expected 3 tab-separated columns"
    else:
        (folder / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq1\t007\thigh\n")
        where = "test.tsv:2: score 'high' is not a number"
    assert _eval(tmp_path, minilm_dir, folder) == 2
    _only_error_line(capsys, where)


def test_evaluate_refuses_other_bad_arguments_in_one_line(tmp_path, minilm_dir, capsys):
    from jepa_rag.evaluate import main

    folder = write_beir(tmp_path / "toy")
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    assert main(["--data", str(folder), "--checkpoint", "none", "--base-model", str(minilm_dir), "--embeddings",
                 "off", "--json", str(blocker / "res.json")]) == 2  # --json under a file: cannot be created
    _only_error_line(capsys, str(blocker))
    assert _eval(tmp_path, minilm_dir, folder, "--split", "dev") == 2
    _only_error_line(capsys, "missing qrels/dev.tsv", "splits present: ['test']")
    with pytest.raises(SystemExit) as exit_:
        _eval(tmp_path, minilm_dir, folder, "--top-k", "0")
    assert exit_.value.code == 2 and "--top-k must be at least 1" in capsys.readouterr().err


@pytest.mark.parametrize("case", ["malformed line 41", "lone surrogate", "null positive", "empty file",
                                  "a folder", "missing"])
def test_train_names_the_pairs_file_and_line(tmp_path, minilm_dir, capsys, case):
    pairs = write_pairs(tmp_path / "p.jsonl", n=40)
    good = pairs.read_text()
    if case == "malformed line 41":
        pairs.write_text(good + "{not json\n")
        where = "p.jsonl:41: not valid JSON"
    elif case == "lone surrogate":
        pairs.write_text(good + '{"query": "tell me \\ud83d", "positive": "an answer"}\n')
        where = "p.jsonl:41: not valid Unicode"
    elif case == "null positive":
        pairs.write_text(good + '{"query": "q", "positive": null}\n')
        where = "p.jsonl:41: field 'positive' must be a string"
    elif case == "empty file":
        pairs.write_text("")
        where = "no pairs found"
    elif case == "a folder":
        pairs = tmp_path
        where = "pairs file not found"
    else:
        pairs = tmp_path / "missing.jsonl"
        where = "pairs file not found"
    assert _train(tmp_path, minilm_dir, "--pairs", str(pairs)) == 2
    _only_error_line(capsys, where)


def test_train_on_a_malformed_beir_folder_names_file_and_line(tmp_path, minilm_dir, capsys):
    folder = write_beir(tmp_path / "toy", split="train")
    (folder / "qrels" / "train.tsv").write_text("query-id\tcorpus-id\tscore\nq1\t007\t1\nq2\n")
    assert _train(tmp_path, minilm_dir, "--beir", str(folder), "--split", "train") == 2
    _only_error_line(capsys, "train.tsv:3: expected 3 tab-separated columns")


def test_train_with_heads_for_another_base_model_is_one_line(tmp_path, minilm_dir, capsys):
    """The default heads are 768-d (MPNet); on 384-d MiniLM that is a config error, not a matrix-shape trace."""
    pairs = write_pairs(tmp_path / "p.jsonl", n=40)
    assert _train(tmp_path, minilm_dir, "--pairs", str(pairs)) == 2
    _only_error_line(capsys, "model.projection.in_dim is 768", "384-d vectors")


def test_train_with_an_unwritable_output_is_one_line(tmp_path, minilm_dir, capsys):
    from jepa_rag.train.__main__ import main

    pairs = write_pairs(tmp_path / "p.jsonl", n=40)
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    code = main(["--pairs", str(pairs), "--output", str(blocker / "run"), "--no-progress", "--embeddings", "off",
                 "--set", f"model.base_model={minilm_dir}",
                 "--set", "model.projection={in_dim: 384, out_dim: 384, residual: true}", "--set", "model.predictor=null",
                 "--set", "model.query_route=projection", "--set", "optim.epochs=1", "--set", "optim.batch_size=8",
                 "--set", "data.mining_rank_start=0", "--set", "data.mining_rank_end=5"])
    assert code == 2
    _only_error_line(capsys, str(blocker))


def test_every_error_raised_here_is_a_jepa_rag_error():
    """One ``except JEPARagError`` catches all of them, and each is also the builtin that fits."""
    for cls in (InvalidInputError, CheckpointError, ConfigError):
        assert issubclass(cls, JEPARagError) and issubclass(cls, ValueError)


def test_dataclass_replace_keeps_fingerprints_comparable(minilm_fingerprint):
    """The 'another base model' checkpoints above differ from MiniLM only by weights: the check is by content."""
    other = replace(minilm_fingerprint, model_id="someone/another-model", weights_sha256="0" * 64)
    assert not other.same_model(minilm_fingerprint)
