"""experiments/adapt.py (issue 24): the pieces that decide its numbers, on tiny synthetic data (no model, no files)."""

from types import SimpleNamespace

import numpy as np
import torch

from experiments import adapt
from jepa_rag.config import HeadConfig, ModelConfig
from jepa_rag.heads import JEPAHeads


def _default(dim: int = 8) -> SimpleNamespace:
    torch.manual_seed(0)
    cfg = ModelConfig(projection=HeadConfig(dim, dim, 2.0, 0.1, True), predictor=HeadConfig(dim, dim, 2.0, 0.1, True))
    heads = JEPAHeads(cfg)
    with torch.no_grad():  # a trained-looking projection: the student must copy it, not re-initialise it
        heads.projection.net[3].weight.normal_(std=0.1)
    return SimpleNamespace(jepa_heads=heads)


def test_untrained_student_is_the_default_checkpoint():
    default = _default()
    x = np.random.default_rng(0).normal(size=(5, 8)).astype(np.float32)
    student = adapt.Student(default, dropout=0.1, train_g=False)
    expected = default.jepa_heads.encode(x, "document")  # the default's query route is the projection
    np.testing.assert_allclose(student.encode(x, "query"), expected, atol=1e-6)
    np.testing.assert_allclose(student.encode(x, "document"), expected, atol=1e-6)
    assert not any(p.requires_grad for p in student.g.parameters())


def test_losses_are_finite_with_the_source_masked_and_zero_when_student_matches_teacher():
    rng = np.random.default_rng(1)
    teach = torch.as_tensor(rng.normal(size=(4, 30)).astype(np.float32))
    cfg = {**adapt.DEFAULTS, "k": 10, "tau_s": 1.0, "tau_t": 1.0}
    for kind in ("kl_topk", "kl_full"):
        assert float(adapt.loss_fn(kind, teach.clone(), teach, cfg)) < 1e-5
    mask = torch.zeros_like(teach, dtype=torch.bool)
    mask[:, 0] = True
    cos = torch.as_tensor(rng.uniform(-1, 1, size=(4, 30)).astype(np.float32))
    for kind in ("kl_topk", "kl_full", "margin_mse", "softmax_top1"):
        loss = adapt.loss_fn(kind, cos.masked_fill(mask, adapt.MASKED), teach.masked_fill(mask, adapt.MASKED), cfg)
        assert torch.isfinite(loss), kind


def test_rare_terms_keep_the_rarest_words_in_text_order():
    texts = ["alpha beta gamma the common", "beta gamma common words", "alpha gamma common more", "delta common"]
    # df: alpha 2, beta 2, gamma 3, common 4; 'the' is a stopword, words seen once are left out
    assert adapt.rare_terms(texts, [0], n_terms=2) == ["alpha beta"]


def test_teacher_is_the_whole_collection_zscore_blend():
    dense = np.array([[0.1, 0.5, 0.3, 0.2]], dtype=np.float32)
    lex_z = adapt.zscore(np.array([[0.0, 0.0, 3.0, 1.0]]))
    col = SimpleNamespace(pq_lex_z=lex_z)
    t = adapt.teacher_scores(col, dense, np.eye(4, dtype=np.float32), 0.25)
    np.testing.assert_allclose(t, 0.75 * adapt.zscore(dense) + 0.25 * lex_z, atol=1e-6)
    assert adapt.teacher_scores(col, dense, np.eye(4, dtype=np.float32), 1.0) is lex_z
