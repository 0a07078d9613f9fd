import pytest
import torch

from jepa_rag import ConfigError, HeadConfig, Predictor, ProjectionHead


def test_residual_head_is_identity_at_init():
    torch.manual_seed(0)
    head = ProjectionHead(HeadConfig(16, 16, residual=True)).eval()
    x = torch.randn(5, 16)
    assert torch.equal(head(x), x)
    head.train()  # dropout does not matter either: the last layer is zero
    assert torch.equal(head(x), x)


def test_plain_head_matches_seed_architecture():
    head = Predictor(HeadConfig(8, 4, hidden_mult=2.0, dropout=0.1))
    kinds = [type(m).__name__ for m in head.net]
    assert kinds == ["Linear", "GELU", "Dropout", "Linear"]
    assert head.net[0].out_features == 16 and head.net[3].out_features == 4
    assert head(torch.randn(3, 8)).shape == (3, 4)


def test_residual_needs_equal_dims():
    with pytest.raises(ConfigError, match="in_dim == out_dim"):
        ProjectionHead(HeadConfig(16, 8, residual=True))


def test_residual_head_trains_away_from_identity():
    head = ProjectionHead(HeadConfig(4, 4, residual=True, dropout=0.0))
    opt = torch.optim.SGD(head.parameters(), lr=0.1)
    x = torch.randn(8, 4)
    loss = (head(x) - 2 * x).pow(2).mean()
    loss.backward()
    opt.step()
    assert not torch.equal(head(x), x)
