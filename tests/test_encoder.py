import numpy as np
import pytest

from jepa_rag import CheckpointError, InvalidInputError, JEPAEncoder


@pytest.mark.parametrize(
    "bad, message",
    [
        ("a single string", "got a single str"),
        (b"bytes", "got a single bytes"),
        ([""], r"queries\[0\]: empty or whitespace-only"),
        (["ok", "  \n\t"], r"queries\[1\]: empty or whitespace-only"),
        (["ok", None], r"queries\[1\]: expected a string, got NoneType"),
        ([3], r"queries\[0\]: expected a string, got int"),
        ([b"bytes"], r"queries\[0\]: expected a string, got bytes"),
        (42, "expected a list of strings, got int"),
    ],
)
def test_bad_queries_are_refused(minilm_encoder, bad, message):
    with pytest.raises(InvalidInputError, match=message):
        minilm_encoder.encode_queries(bad)


def test_bad_documents_are_refused(minilm_encoder):
    with pytest.raises(InvalidInputError, match=r"corpus\[1\]: empty"):
        minilm_encoder.encode_corpus([{"title": "t", "text": "x"}, {"title": "", "text": "  "}])
    with pytest.raises(InvalidInputError, match=r"corpus\[0\]: expected a dict"):
        minilm_encoder.encode_corpus([3])


def test_empty_list_gives_empty_array(minilm_encoder):
    assert minilm_encoder.encode_queries([]).shape == (0, 384)


def test_vanilla_equals_sentence_transformers(minilm_encoder):
    texts = ["The Moon causes tides.", "Émoji 🙂 and 日本語 mixed scripts"]
    ours = minilm_encoder.encode_queries(texts)
    ref = minilm_encoder.base.encode(texts, convert_to_numpy=True)
    np.testing.assert_allclose(ours, ref, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)


def test_very_long_text_is_truncated_not_a_crash(minilm_encoder):
    long = "word " * 200_000  # ~1 MB
    v = minilm_encoder.encode_corpus([long])
    assert v.shape == (1, 384) and np.isfinite(v).all()


def test_second_call_hits_the_cache(minilm_encoder, monkeypatch):
    minilm_encoder.encode_queries(["cache me please"])
    monkeypatch.setattr(minilm_encoder, "_encode_with_base", lambda texts: pytest.fail("should be cached"))
    minilm_encoder.encode_queries(["cache me please"])


def test_routes_differ_with_predictor(predictor_checkpoint, minilm_dir):
    enc = JEPAEncoder.from_pretrained(predictor_checkpoint, base_model=str(minilm_dir))
    assert enc.query_route == "predictor"
    q = enc.encode_queries(["what are cats?"])
    d = enc.encode_corpus(["what are cats?"])
    assert not np.allclose(q, d, atol=1e-4)
    x = enc.embed_base(["what are cats?"])
    np.testing.assert_allclose(q, enc.apply_heads(x, "query"), atol=1e-6)
    np.testing.assert_allclose(d, enc.apply_heads(x, "document"), atol=1e-6)


def test_dict_corpus_uses_title_and_text(minilm_encoder):
    a = minilm_encoder.encode_corpus([{"title": "Cats", "text": "purr."}])
    b = minilm_encoder.encode_corpus(["Cats purr."])
    np.testing.assert_allclose(a, b, atol=1e-6)


def test_missing_checkpoint_is_clear(minilm_dir, tmp_path):
    with pytest.raises(CheckpointError, match="not found"):
        JEPAEncoder.from_pretrained(tmp_path / "nope", base_model=str(minilm_dir))


def test_wrong_dimension_query_vector(minilm_encoder):
    with pytest.raises(InvalidInputError, match=r"shape \(N, 384\)"):
        minilm_encoder.apply_heads(np.zeros((2, 10)), "query")


def test_bf16_precision_is_close_to_fp32_and_cached_apart(minilm_dir, minilm_encoder, tmp_path):
    texts = ["The Moon causes tides.", "Plants make sugar from light, water and carbon dioxide."]
    fast = JEPAEncoder.from_pretrained("none", base_model=str(minilm_dir), precision="bf16", cache_dir=tmp_path)
    ref = JEPAEncoder.from_pretrained("none", base_model=str(minilm_dir), cache_dir=tmp_path, precision="fp32")
    a, b = fast.encode_queries(texts), ref.encode_queries(texts)
    assert a.dtype == np.float32
    cos = (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
    assert cos.min() > 0.99
    assert not np.array_equal(a, b), "bf16 autocast did not change the arithmetic"
    assert fast.cache.dir != ref.cache.dir and fast.cache.dir.name.endswith("-bf16")


def test_unknown_precision_is_refused(minilm_dir):
    from jepa_rag import ConfigError

    with pytest.raises(ConfigError, match="precision must be one of"):
        JEPAEncoder.from_pretrained("none", base_model=str(minilm_dir), precision="int8")


# ------------------------------------------------------------------------------------------------ precision "auto"
@pytest.mark.parametrize("native, expected", [(True, "bf16"), (False, "fp32")])
def test_auto_precision_follows_the_cpu(minilm_dir, tmp_path, monkeypatch, native, expected):
    from jepa_rag import encoder as encoder_mod

    monkeypatch.setattr(encoder_mod, "cpu_has_native_bf16", lambda: native)
    enc = JEPAEncoder.from_pretrained("none", base_model=str(minilm_dir), cache_dir=tmp_path)
    assert enc.requested_precision == "auto" and enc.precision == expected


def test_cpu_flags_decide_native_bf16(monkeypatch, tmp_path):
    import builtins

    from jepa_rag import encoder as encoder_mod

    real_open = builtins.open
    for flags, native in (("fpu avx512f avx512_bf16 sse", True), ("fpu amx_bf16 amx_tile", True),
                          ("fpu avx512f avx512bw avx512_vnni", False)):
        cpuinfo = tmp_path / "cpuinfo"
        cpuinfo.write_text(f"processor\t: 0\nflags\t\t: {flags}\n")
        monkeypatch.setattr(builtins, "open",
                            lambda path, *a, _f=cpuinfo, **k: real_open(_f if path == "/proc/cpuinfo" else path, *a, **k))
        assert encoder_mod.cpu_has_native_bf16() is native


def test_explicit_bf16_without_native_support_warns_once(minilm_dir, tmp_path, monkeypatch, caplog):
    from jepa_rag import encoder as encoder_mod

    monkeypatch.setattr(encoder_mod, "cpu_has_native_bf16", lambda: False)
    monkeypatch.setattr(encoder_mod, "_warned_slow_bf16", False)
    with caplog.at_level("WARNING", logger="jepa_rag"):
        for _ in range(2):
            enc = JEPAEncoder.from_pretrained("none", base_model=str(minilm_dir), precision="bf16", cache_dir=tmp_path)
            assert enc.precision == "bf16"
    warnings = [r for r in caplog.records if "without native bfloat16" in r.getMessage()]
    assert len(warnings) == 1 and "slower than fp32" in warnings[0].getMessage()
    caplog.clear()
    monkeypatch.setattr(encoder_mod, "cpu_has_native_bf16", lambda: True)
    monkeypatch.setattr(encoder_mod, "_warned_slow_bf16", False)
    with caplog.at_level("WARNING", logger="jepa_rag"):
        JEPAEncoder.from_pretrained("none", base_model=str(minilm_dir), precision="bf16", cache_dir=tmp_path)
    assert "without native bfloat16" not in caplog.text


# ------------------------------------------------------------------------------------------------ caching
def test_queries_go_to_a_bounded_lru_not_to_disk(minilm_dir, tmp_path):
    enc = JEPAEncoder.from_pretrained("none", base_model=str(minilm_dir), cache_dir=tmp_path, precision="fp32",
                                      query_cache_size=3)
    docs = ["Tides follow the Moon.", "Lava comes from magma."]
    enc.encode_documents(docs)
    assert len(enc.cache) == 2
    first = enc.encode_queries([f"question {i}" for i in range(5)])
    assert len(enc.cache) == 2  # no query was written to disk
    assert len(enc._query_lru) == 3  # the LRU keeps the newest three
    again = enc.encode_queries(["question 4", docs[0]])  # an LRU hit and a disk hit (read, not re-encoded)
    np.testing.assert_array_equal(again[0], first[4])
    np.testing.assert_array_equal(again[1], enc.encode_documents([docs[0]])[0])
    keeper = JEPAEncoder.from_pretrained("none", base_model=str(minilm_dir), cache_dir=tmp_path, precision="fp32",
                                        cache_queries=True)
    keeper.encode_queries(["kept question"])
    assert len(keeper.cache) == 3


def test_batch_size_of_one_call_does_not_change_the_shared_encoder(minilm_dir, tmp_path):
    enc = JEPAEncoder.from_pretrained("none", base_model=str(minilm_dir), cache_dir=tmp_path, batch_size=32)
    enc.encode_queries(["a question"], batch_size=2)
    enc.encode_corpus(["a document"], batch_size=4)
    assert enc.batch_size == 32


def test_truncation_is_counted_and_warned_once(minilm_dir, tmp_path, caplog):
    enc = JEPAEncoder.from_pretrained("none", base_model=str(minilm_dir), use_cache=False, precision="fp32")
    limit = enc.base.max_seq_length
    long = " ".join(["word"] * (limit * 2))
    with caplog.at_level("WARNING", logger="jepa_rag"):
        enc.encode_documents([long, "short text", long + " again"])
        enc.encode_documents([long + " three"])
    warnings = [r.getMessage() for r in caplog.records if "max_seq_length" in r.getMessage()]
    assert len(warnings) == 1
    assert f"2 of 3 texts exceed the base model's max_seq_length of {limit} tokens" in warnings[0]
    assert "chunks" in warnings[0]
    assert enc.truncated_texts == 3
    enc.encode_documents(["x" * (limit - 10)])  # short enough in bytes: never tokenized twice
    assert enc.truncated_texts == 3
