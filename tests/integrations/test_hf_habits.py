"""What ``HuggingFaceEmbedding(s)`` and Chroma ``SentenceTransformerEmbeddingFunction`` users pass (issue 22): ``model_name=`` selects the base model, as it does there,
``model_kwargs={"device": ...}`` the device; the other habits are refused with what to do instead; none is
silently ignored."""

from __future__ import annotations

from pathlib import Path

import pytest

from jepa_rag import CheckpointError, ConfigError


def _classes():
    from langchain_jepa_rag import JEPAEmbeddings
    from llama_index.embeddings.jepa_rag import JEPAEmbedding

    from jepa_rag.chroma import JEPAEmbeddingFunction

    return [JEPAEmbedding, JEPAEmbeddings, JEPAEmbeddingFunction]


@pytest.mark.parametrize("cls", _classes(), ids=lambda c: c.__name__)
def test_model_name_selects_the_base_model(cls, minilm_dir, predictor_checkpoint):
    plain = cls(checkpoint="none", model_name=str(minilm_dir))
    assert Path(plain.encoder.base_folder) == Path(minilm_dir) and plain.encoder.checkpoint_path is None
    assert plain.base_model == str(Path(minilm_dir).resolve())
    heads = cls(checkpoint=predictor_checkpoint, model_name=minilm_dir, model_kwargs={"device": "cpu"})
    assert heads.encoder.checkpoint_path is not None and heads.device == "cpu"


@pytest.mark.parametrize("cls", _classes(), ids=lambda c: c.__name__)
def test_a_base_model_the_heads_were_not_trained_on_is_refused_with_a_hint(cls, minilm_dir):
    from jepa_rag.encoder import DEFAULT_CHECKPOINT

    if not DEFAULT_CHECKPOINT.is_dir():
        pytest.skip("no default checkpoint shipped")
    with pytest.raises(CheckpointError, match="heads only work on the model they were trained on.*checkpoint='none'"):
        cls(model_name=str(minilm_dir))  # the default heads were trained on all-mpnet-base-v2


@pytest.mark.parametrize("cls", _classes(), ids=lambda c: c.__name__)
@pytest.mark.parametrize("kwargs, message", [
    ({"model_name": "a", "base_model": "b"}, "name different base models"),
    ({"model_kwargs": {"trust_remote_code": True}}, "model_kwargs=.* is not used"),
    ({"model_kwargs": {"device": "cpu"}, "device": "cuda"}, "disagree"),
    ({"encode_kwargs": {"normalize_embeddings": True}}, "encode_kwargs= is a Hugging Face embedding option"),
    ({"cache_folder": "/tmp/models"}, "cache_folder= .*base_model="),
    ({"query_instruction": "query: "}, "no prompt is added"),
    ({"normalize_embeddings": False}, "the checkpoint decides normalisation"),
])
def test_other_habits_are_refused(cls, kwargs, message):
    with pytest.raises(ConfigError, match=message):
        cls(checkpoint="none", **kwargs)


def test_llamaindex_round_trip_keeps_its_own_label(minilm_dir):
    from llama_index.embeddings.jepa_rag import JEPAEmbedding

    embed = JEPAEmbedding(checkpoint="none", model_name=str(minilm_dir))
    assert embed.model_name.startswith("jepa-rag:")
    again = JEPAEmbedding.from_dict(embed.to_dict())  # to_dict carries model_name: its own label, not a base model
    assert again.base_model == embed.base_model and again.model_name == embed.model_name
