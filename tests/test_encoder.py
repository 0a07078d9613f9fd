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
    ref = JEPAEncoder.from_pretrained("none", base_model=str(minilm_dir), cache_dir=tmp_path)
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
