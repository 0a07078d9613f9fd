import json

import numpy as np
import pytest

from jepa_rag import ConfigError, Fusion, fusion_of
from jepa_rag.encoder import DEFAULT_CHECKPOINT
from jepa_rag.errors import CheckpointError, InvalidInputError


def test_validation_and_dict_round_trip():
    f = Fusion(method="rrf", lexical_weight=0.5, normalization="minmax", rrf_k=10, depth=20)
    assert Fusion.from_dict(f.to_dict()) == f
    for bad in ({"lexical_weight": 1.5}, {"lexical_weight": -0.1}, {"method": "max"}, {"normalization": "rank"},
                {"depth": 0}, {"rrf_k": 2.5}, {"lexical_weight": True}):
        with pytest.raises(ConfigError):
            Fusion.from_dict(bad)
    with pytest.raises(ConfigError, match="unknown key"):
        Fusion.from_dict({"weight": 0.3})


def test_blend_of_candidate_lists_by_hand():
    dense = [("a", 0.9), ("b", 0.8), ("c", 0.1)]
    lexical = [("c", 12.0), ("d", 3.0)]
    fused = Fusion(lexical_weight=0.5, normalization="minmax").fuse(dense, lexical, k=4)
    # dense minmax: a 1, b 0.875, c 0; lexical minmax: c 1, d 0; a/b get the lexical floor 0, d the dense floor 0
    assert [d for d, _ in fused] == ["a", "c", "b", "d"]  # tie a/c broken by dense order
    assert [s for _, s in fused] == pytest.approx([0.5, 0.5, 0.4375, 0.0])


def test_weights_zero_and_one_give_each_side_alone():
    dense = [("a", 0.9), ("b", 0.5), ("c", 0.4)]
    lexical = [("c", 9.0), ("b", 3.0), ("a", 1.0)]
    assert [d for d, _ in Fusion(lexical_weight=0.0).fuse(dense, lexical, 3)] == ["a", "b", "c"]
    assert [d for d, _ in Fusion(lexical_weight=1.0).fuse(dense, lexical, 3)] == ["c", "b", "a"]


def test_candidate_weight_is_what_candidate_lists_use():
    dense = [("a", 0.9), ("b", 0.5), ("c", 0.4)]
    lexical = [("c", 9.0), ("b", 3.0), ("a", 1.0)]
    f = Fusion(lexical_weight=0.0, candidate_lexical_weight=1.0)
    assert [d for d, _ in f.fuse(dense, lexical, 3)] == ["c", "b", "a"]  # fuse() takes the candidate weight
    whole = f.fuse_scores(np.array([[0.9, 0.5, 0.4]]), np.array([[1.0, 3.0, 9.0]]))
    assert int(np.argmax(whole[0])) == 0  # fuse_scores() the whole-corpus one
    assert Fusion.from_dict(f.to_dict()) == f
    with pytest.raises(ConfigError, match="candidate_lexical_weight"):
        Fusion(candidate_lexical_weight=2.0)


def test_rrf_by_hand_and_depth():
    fused = Fusion(method="rrf", rrf_k=60).fuse([("a", 1.0), ("b", 0.5)], [("b", 2.0), ("c", 1.0)], k=10)
    assert fused[0] == ("b", pytest.approx(1 / 62 + 1 / 61))
    assert [d for d, _ in fused] == ["b", "a", "c"]
    cut = Fusion(method="rrf", depth=1).fuse([("a", 1.0), ("b", 0.5)], [("c", 2.0)], k=10)
    assert {d for d, _ in cut} == {"a", "c"}


def test_fuse_refuses_bad_k_and_pairs():
    with pytest.raises(InvalidInputError):
        Fusion().fuse([("a", 1.0)], [], k=0)
    with pytest.raises(InvalidInputError):
        Fusion().fuse(["a"], [], k=1)
    assert Fusion().fuse([], [], k=3) == []


def test_fuse_scores_whole_corpus_zscore():
    dense = np.array([[0.9, 0.5, 0.1, 0.5]])
    lexical = np.array([[0.0, 4.0, 0.0, 0.0]])
    out = Fusion(lexical_weight=0.3).fuse_scores(dense, lexical)
    z = lambda x: (x - x.mean()) / x.std()  # noqa: E731
    np.testing.assert_allclose(out[0], 0.7 * z(dense[0]) + 0.3 * z(lexical[0]))
    assert list(np.argsort(-out[0])) == [0, 1, 3, 2]  # b lifted above d (same dense score) by its BM25 match
    flat = Fusion(lexical_weight=0.3).fuse_scores(dense, np.zeros_like(dense))  # no lexical match: dense order
    assert list(np.argsort(-flat[0], kind="stable")) == [0, 1, 3, 2]
    with pytest.raises(InvalidInputError):
        Fusion().fuse_scores(dense, lexical[:, :2])


def test_fuse_scores_rrf_matches_candidate_lists():
    rng = np.random.default_rng(0)
    dense, lexical = rng.normal(size=(1, 30)), np.maximum(rng.normal(size=(1, 30)), 0)
    ids = [str(i) for i in range(30)]
    f = Fusion(method="rrf", depth=10)
    by_list = f.fuse(sorted(zip(ids, dense[0]), key=lambda x: -x[1]),
                     [p for p in sorted(zip(ids, lexical[0]), key=lambda x: -x[1]) if p[1] > 0], k=30)
    whole = f.fuse_scores(dense, lexical)[0]
    for did, score in by_list:
        assert whole[int(did)] == pytest.approx(score)


def _with_retrieval(tmp_path, section):
    ck = tmp_path / "ck"
    ck.mkdir(exist_ok=True)
    meta = json.loads((DEFAULT_CHECKPOINT / "adapter_config.json").read_text())
    meta.pop("retrieval", None)
    if section is not None:
        meta["retrieval"] = section
    (ck / "adapter_config.json").write_text(json.dumps(meta))
    return ck


def test_fusion_of_reads_the_checkpoint_or_falls_back_to_default(tmp_path):
    default = fusion_of("default")
    assert fusion_of(None) == default and fusion_of("none") == default
    assert fusion_of(_with_retrieval(tmp_path, None)) == default
    stored = Fusion(method="rrf", rrf_k=5)
    assert fusion_of(_with_retrieval(tmp_path, {"fusion": stored.to_dict()})) == stored
    with pytest.raises(CheckpointError, match="retrieval.fusion"):
        fusion_of(_with_retrieval(tmp_path, {"fusion": {"lexical_weight": 3}}))


def test_checkpoint_stores_and_loads_its_retrieval_section(tmp_path, minilm_dir, minilm_fingerprint):
    from jepa_rag import load_checkpoint, save_checkpoint

    from .helpers import perturbed_checkpoint

    old = perturbed_checkpoint(tmp_path / "old", minilm_dir, minilm_fingerprint, 0)
    ckpt = load_checkpoint(old)
    assert ckpt.retrieval == {}  # checkpoints written before hybrid retrieval still load
    ckpt.retrieval = {"fusion": Fusion(lexical_weight=0.2).to_dict(), "chosen_on": "toy dev"}
    save_checkpoint(ckpt, tmp_path / "new")
    assert load_checkpoint(tmp_path / "new").retrieval == ckpt.retrieval
    assert fusion_of(tmp_path / "new") == Fusion(lexical_weight=0.2)
    meta = json.loads((tmp_path / "new" / "adapter_config.json").read_text())
    meta["retrieval"]["fusion"]["method"] = "magic"
    (tmp_path / "new" / "adapter_config.json").write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match="retrieval.fusion"):
        load_checkpoint(tmp_path / "new")
