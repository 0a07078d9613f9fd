import math

import pytest
import torch

from jepa_rag import losses


def _grad_ok(fn, *tensors):
    for t in tensors:
        t.requires_grad_(True)
    out = fn(*tensors)
    out.backward()
    return [t.grad for t in tensors]


def test_triplet_hand_checked():
    q = torch.tensor([[0.0, 0.0], [0.0, 0.0]])
    pos = torch.tensor([[3.0, 4.0], [1.0, 0.0]])   # distances 5 and 1
    neg = torch.tensor([[0.0, 1.0], [0.0, 2.0]])   # distances 1 and 2
    # max(0, 5 - 1 + 0.5) = 4.5 ; max(0, 1 - 2 + 0.5) = 0
    assert losses.triplet_loss(q, pos, neg, margin=0.5).item() == pytest.approx(2.25)
    grads = _grad_ok(lambda a, b, c: losses.triplet_loss(a, b, c, margin=0.5), q.clone(), pos.clone(), neg.clone())
    assert grads[1][0].abs().sum() > 0 and grads[1][1].abs().sum() == 0  # the satisfied triplet gives no gradient


def test_triplet_multiple_negatives_average():
    q = torch.zeros(1, 2)
    pos = torch.tensor([[1.0, 0.0]])
    neg = torch.tensor([[[2.0, 0.0], [0.5, 0.0]]])  # hinge: max(0,1-2+.1)=0, max(0,1-.5+.1)=.6
    assert losses.triplet_loss(q, pos, neg, margin=0.1).item() == pytest.approx(0.3)


def test_info_nce_hand_checked():
    q = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    pos = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    t = 0.5
    # cosines: diag 1, off-diag 0 ⇒ loss = -log(e^{2} / (e^{2} + e^{0}))
    expected = -math.log(math.exp(2) / (math.exp(2) + 1))
    assert losses.info_nce_loss(q, pos, temperature=t).item() == pytest.approx(expected, rel=1e-5)


def test_info_nce_masks_duplicate_positive_and_hard_negative():
    q = torch.tensor([[1.0, 0.0], [1.0, 0.0]])
    pos = torch.tensor([[1.0, 0.0], [1.0, 0.0]])  # both queries cite the same document (id 7)
    neg = torch.tensor([[0.0, 1.0], [0.0, 1.0]])
    t = 1.0
    unmasked = losses.info_nce_loss(q, pos, neg, temperature=t)
    masked = losses.info_nce_loss(q, pos, neg, temperature=t, pos_ids=torch.tensor([7, 7]),
                                  neg_ids=torch.tensor([1, 2]))
    # masked: candidates = own positive (cos 1) + 2 negatives (cos 0)
    expected = -math.log(math.e / (math.e + 2))
    assert masked.item() == pytest.approx(expected, rel=1e-5)
    assert unmasked.item() > masked.item()
    # a hard negative that is the query's own positive id is masked too
    m2 = losses.info_nce_loss(q[:1], pos[:1], neg[:1], temperature=t, pos_ids=torch.tensor([7]), neg_ids=torch.tensor([7]))
    assert m2.item() == pytest.approx(0.0, abs=1e-6)


def test_info_nce_masks_other_known_positives_of_a_query():
    """One query with two relevant documents in a batch: neither positive may serve as the other's negative."""
    q = torch.tensor([[1.0, 0.0], [1.0, 0.0]])        # the same query twice
    pos = torch.tensor([[1.0, 0.0], [0.0, 1.0]])      # two different relevant documents
    neg = torch.tensor([[-1.0, 0.0], [-1.0, 0.0]])
    t = 1.0
    known = torch.tensor([[False, True, False, False], [True, False, False, False]])
    masked = losses.info_nce_loss(q, pos, neg, temperature=t, known_positive=known)
    # row 0: own positive cos 1, two negatives cos -1 ; row 1: own positive cos 0, two negatives cos -1
    row0 = -math.log(math.e / (math.e + 2 * math.exp(-1)))
    row1 = -math.log(1 / (1 + 2 * math.exp(-1)))
    assert masked.item() == pytest.approx((row0 + row1) / 2, rel=1e-5)
    assert losses.info_nce_loss(q, pos, neg, temperature=t).item() > masked.item()
    # the diagonal is never masked, whatever the mask says
    diag = torch.tensor([[True, True, False, False], [True, True, False, False]])
    assert losses.info_nce_loss(q, pos, neg, temperature=t, known_positive=diag).item() == pytest.approx(masked.item())
    with pytest.raises(ValueError, match="known_positive has shape"):
        losses.info_nce_loss(q, pos, neg, known_positive=known[:, :2])


def test_info_nce_gradients_flow():
    torch.manual_seed(0)
    q, p, n = torch.randn(4, 8), torch.randn(4, 8), torch.randn(4, 2, 8)
    grads = _grad_ok(lambda a, b, c: losses.info_nce_loss(a, b, c), q, p, n)
    assert all(g is not None and torch.isfinite(g).all() and g.abs().sum() > 0 for g in grads)


def test_covariance_isotropy_hand_checked():
    # Z with columns (a, -a): cov = v·[[1,-1],[-1,1]], var of all entries = s
    z = torch.tensor([[1.0, -1.0], [-1.0, 1.0], [1.0, -1.0], [-1.0, 1.0]])
    cov = torch.tensor([[4 / 3, -4 / 3], [-4 / 3, 4 / 3]])
    s = z.var()
    expected = torch.linalg.matrix_norm(cov - s * torch.eye(2)) / 2
    assert losses.covariance_isotropy(z).item() == pytest.approx(expected.item(), rel=1e-6)
    # isotropic cov = 2/3·I, but s is the variance of all 8 entries (4/7), as in the seed: |2/3 − 4/7|·√2 / 2
    iso = torch.tensor([[1.0, 0.0], [-1.0, 0.0], [0.0, 1.0], [0.0, -1.0]])
    assert losses.covariance_isotropy(iso).item() == pytest.approx((2 / 3 - 4 / 7) * math.sqrt(2) / 2, rel=1e-5)


def test_covariance_isotropy_rewards_shrinking():
    """The flaw DESIGN §2 names: scaling Z down lowers the penalty."""
    torch.manual_seed(0)
    z = torch.randn(16, 32) @ torch.randn(32, 32)
    assert losses.covariance_isotropy(0.1 * z) < losses.covariance_isotropy(z)


def test_sigreg_small_for_gaussian_large_for_collapsed():
    g = torch.Generator().manual_seed(0)
    gauss = torch.randn(2048, 16, generator=g)
    collapsed = torch.zeros(2048, 16) + 3.0
    lg = losses.sigreg_loss(gauss, generator=torch.Generator().manual_seed(1))
    lc = losses.sigreg_loss(collapsed, generator=torch.Generator().manual_seed(1))
    # for a true Gaussian N·|φ̂ − φ|² stays O(1); a collapsed batch scales with N
    assert lg.item() < 3.0 and lc.item() > 100.0
    z = torch.randn(64, 8, requires_grad=True)
    losses.sigreg_loss(z).backward()
    assert torch.isfinite(z.grad).all() and z.grad.abs().sum() > 0


def test_sigreg_hand_checked_single_point():
    # one sample at 0 in 1-D: φ̂(t) = 1, so EP = 1 · 2∫_0^T (1 - e^{-t²/2})² e^{-t²/2} dt (trapezoid)
    t = torch.linspace(0, 3, 17)
    f = (1 - torch.exp(-t**2 / 2)) ** 2 * torch.exp(-t**2 / 2)
    expected = 2 * torch.trapezoid(f, t)
    got = losses.sigreg_loss(torch.zeros(1, 1), num_slices=1)
    assert got.item() == pytest.approx(expected.item(), rel=1e-5)


def test_uniformity_hand_checked():
    z = torch.tensor([[1.0, 0.0], [-1.0, 0.0]])  # squared distance 4
    assert losses.uniformity_loss(z, t=2.0).item() == pytest.approx(-8.0)
    z = torch.randn(8, 4, requires_grad=True)
    losses.uniformity_loss(z).backward()
    assert torch.isfinite(z.grad).all()


def test_predictive_mse_cosine_and_stop_gradient():
    pred = torch.tensor([[1.0, 0.0]], requires_grad=True)
    target = torch.tensor([[0.0, 1.0]], requires_grad=True)
    mse = losses.predictive_loss(pred, target, "mse")
    assert mse.item() == pytest.approx(1.0)
    mse.backward()
    assert pred.grad is not None and target.grad is None  # stop-gradient on the target
    cos = losses.predictive_loss(torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, 2.0]]), "cosine")
    assert cos.item() == pytest.approx(1.0)
    with pytest.raises(ValueError, match="mse"):
        losses.predictive_loss(pred, target, "l1")


def test_variance_target():
    z = torch.tensor([[1.0, -1.0], [1.0, -1.0]])
    assert losses.variance_target_loss(z, 1.0).item() == pytest.approx((z.std().item() - 1.0) ** 2)


def test_multi_positive_info_nce_hand_checked():
    """One query twice with two relevant documents: each row's targets are both positives, half each."""
    q = torch.tensor([[1.0, 0.0], [1.0, 0.0]])
    pos = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    neg = torch.tensor([[-1.0, 0.0], [-1.0, 0.0]])
    t = 1.0
    known = torch.tensor([[False, True, False, False], [True, False, False, False]])
    got = losses.multi_positive_info_nce_loss(q, pos, neg, temperature=t, known_positive=known)
    # both rows see cosines (1, 0, -1, -1); the targets are candidates 0 and 1, weight 1/2 each
    z = math.e + 1 + 2 * math.exp(-1)
    row = -(math.log(math.e / z) + math.log(1 / z)) / 2
    assert got.item() == pytest.approx(row, rel=1e-5)
    # InfoNCE masks the other positive instead: a different (smaller) loss
    assert losses.info_nce_loss(q, pos, neg, temperature=t, known_positive=known).item() != pytest.approx(got.item())


def test_multi_positive_info_nce_equals_info_nce_without_other_positives():
    torch.manual_seed(0)
    q, p, n = torch.randn(4, 8), torch.randn(4, 8), torch.randn(4, 2, 8)
    ids, nids = torch.tensor([1, 2, 3, 4]), torch.tensor([[5, 6], [7, 8], [9, 10], [11, 12]])
    a = losses.multi_positive_info_nce_loss(q, p, n, temperature=0.1, pos_ids=ids, neg_ids=nids)
    b = losses.info_nce_loss(q, p, n, temperature=0.1, pos_ids=ids, neg_ids=nids)
    assert a.item() == pytest.approx(b.item(), rel=1e-6)


def test_multi_positive_info_nce_pulls_the_other_positive():
    """InfoNCE gives a masked positive no gradient; the multi-positive loss pulls it towards the query."""
    q = torch.tensor([[1.0, 0.0], [1.0, 0.0]])
    neg = torch.tensor([[-1.0, 0.2], [-1.0, -0.2]])
    known = torch.tensor([[False, True, False, False], [True, False, False, False]])
    grads = {}
    for name, fn in [("masked", losses.info_nce_loss), ("multi", losses.multi_positive_info_nce_loss)]:
        pos = torch.tensor([[1.0, 0.0], [0.6, 0.8]], requires_grad=True)
        # only row 0's loss: candidate 1 (row 1's positive) is row 0's other judged positive
        fn(q[:1], pos, neg, temperature=1.0, known_positive=known[:1]).backward()
        grads[name] = pos.grad[1]
    assert grads["masked"].abs().sum() == 0
    # descending the loss moves document 1 towards the query direction (1, 0): its cosine to q rises
    step = torch.tensor([0.6, 0.8]) - 0.1 * grads["multi"]
    assert torch.nn.functional.cosine_similarity(step, q[0], dim=0) > 0.6


# ------------------------------------------------------------------------------------------------ the registry
def test_the_config_names_the_registered_losses():
    from jepa_rag.config import LossConfig

    assert losses.get_loss("contrastive", "infonce") is losses.InfoNCELoss
    assert losses.get_loss("contrastive", "multi_positive_infonce") is losses.MultiPositiveInfoNCELoss
    assert losses.get_loss("contrastive", "triplet") is losses.TripletLoss
    assert sorted(losses.LOSSES["isotropy"]) == ["covariance", "sigreg", "uniformity"]
    assert sorted(losses.LOSSES["predictive"]) == ["cosine", "mse"]
    # each class reads its hyperparameters from the config and calls its loss function on embeddings
    cfg = LossConfig(margin=0.5, temperature=0.5, predictive="cosine")
    q = torch.tensor([[0.0, 0.0], [0.0, 0.0]])
    pos, neg = torch.tensor([[3.0, 4.0], [1.0, 0.0]]), torch.tensor([[0.0, 1.0], [0.0, 2.0]])
    expected = losses.triplet_loss(q, pos, neg, margin=0.5).item()
    assert losses.TripletLoss(cfg)(q, pos, neg).item() == pytest.approx(expected)
    a, b = torch.tensor([[1.0, 0.0], [0.0, 1.0]]), torch.tensor([[1.0, 0.2], [0.1, 1.0]])
    assert losses.InfoNCELoss(cfg)(a, b).item() == pytest.approx(losses.info_nce_loss(a, b, temperature=0.5).item())
    assert losses.PredictiveLoss(cfg)(a, b).item() == pytest.approx(losses.predictive_loss(a, b, "cosine").item())


def test_an_unknown_loss_name_is_a_config_error_listing_the_known_ones():
    from jepa_rag import ConfigError, LossConfig, TrainConfig, load_train_config

    with pytest.raises(ConfigError, match=r"loss.contrastive must be one of \['infonce', 'multi_positive_infonce', "
                                          r"'triplet'\].*got 'info_nce'"):
        losses.get_loss("contrastive", "info_nce")
    with pytest.raises(ConfigError, match=r"loss.isotropy must be one of \['covariance', 'sigreg', 'uniformity', "
                                          r"'none'\].*got 'vicreg'"):
        TrainConfig(loss=LossConfig(isotropy="vicreg")).validate()
    with pytest.raises(ConfigError, match=r"loss.predictive must be one of \['cosine', 'mse'\]"):
        load_train_config(None, ["loss.predictive=l1"])


def test_a_registered_loss_can_be_named_in_a_config(monkeypatch):
    from jepa_rag import load_train_config

    monkeypatch.setitem(losses.LOSSES, "isotropy", dict(losses.LOSSES["isotropy"]))

    @losses.register_loss("isotropy", "norm")
    class NormLoss:
        def __init__(self, config):
            pass

        def __call__(self, z):
            return z.norm(dim=-1).mean()

    cfg = load_train_config(None, ["loss.isotropy=norm", "loss.lambda_isotropy=0.1"])
    assert losses.get_loss("isotropy", cfg.loss.isotropy) is NormLoss
    with pytest.raises(ValueError, match="unknown loss role"):
        losses.register_loss("regulariser", "x")
