import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from jepa_rag import (
    DEFAULT_CHECKPOINT,
    Checkpoint,
    CheckpointError,
    ConfigError,
    HeadConfig,
    InvalidInputError,
    JEPAEncoder,
    JEPAHeads,
    ModelConfig,
    Predictor,
    ProjectionHead,
    load_checkpoint,
    save_checkpoint,
)


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


# ------------------------------------------------------------------------------------------------ JEPAHeads
def _model_config(d: int = 8, predictor: bool = True, route: str = "predictor") -> ModelConfig:
    return ModelConfig(projection=HeadConfig(d, d, dropout=0.0),
                       predictor=HeadConfig(d, d, dropout=0.0) if predictor else None, query_route=route)


def test_jepa_heads_routes():
    """Documents: g(x). Queries: p(g(x)) on the predictor route, g(x) on the projection route."""
    torch.manual_seed(0)
    heads = JEPAHeads(_model_config())
    x = torch.randn(5, 8)
    with torch.no_grad():
        g = heads.projection(x)
        assert torch.equal(heads(x, "document"), g)
        assert torch.equal(heads(x, "query"), heads.predictor(g))
        heads.set_query_route("projection")
        assert heads.query_route == "projection" and heads.config.query_route == "projection"
        assert torch.equal(heads(x, "query"), g)
    # encode: the same maps, normalised, as float32 numpy, in eval mode
    heads.set_query_route("predictor")
    heads.train()
    q = heads.encode(x.numpy(), "query")
    assert not heads.training and q.dtype == np.float32
    np.testing.assert_allclose(q, torch.nn.functional.normalize(heads.predictor(g), dim=-1).detach().numpy(),
                               rtol=1e-6, atol=1e-6)
    assert heads.encode(np.zeros((0, 8), np.float32), "document").shape == (0, 8)
    with pytest.raises(InvalidInputError, match="route must be"):
        heads.encode(x, "passage")
    with pytest.raises(InvalidInputError, match=r"shape \(N, 8\)"):
        heads.encode(np.zeros((2, 4), np.float32), "document")
    with pytest.raises(ConfigError, match="needs a predictor head"):
        JEPAHeads(_model_config(predictor=False)).set_query_route("predictor")


def test_jepa_heads_without_predictor_has_no_predictor_keys():
    heads = JEPAHeads(_model_config(predictor=False, route="projection"))
    assert heads.predictor is None
    assert sorted(heads.state_dict()) == [f"projection.net.{i}.{w}" for i in (0, 3) for w in ("bias", "weight")]


def test_old_checkpoint_keys_load_unchanged(tmp_path, minilm_fingerprint):
    """The keys of checkpoints written before JEPAHeads (each head's own state_dict under its prefix) are the
    module's own: they load as they are, and saving writes the same keys again."""
    d = minilm_fingerprint.dim
    cfg = ModelConfig(projection=HeadConfig(d, d), predictor=HeadConfig(d, d), query_route="predictor")
    torch.manual_seed(1)
    old = {f"{prefix}.{k}": v for prefix, head in (("projection", ProjectionHead(cfg.projection)),
                                                   ("predictor", Predictor(cfg.predictor)))
           for k, v in head.state_dict().items()}
    path = tmp_path / "model.safetensors"
    save_file(old, str(path))
    heads = JEPAHeads(cfg)
    heads.load_weights(load_file(str(path)))
    assert list(heads.state_dict()) == list(old)
    assert all(torch.equal(heads.state_dict()[k], v) for k, v in old.items())
    save_checkpoint(Checkpoint(cfg, minilm_fingerprint, heads.state_dict()), tmp_path / "ck")
    assert sorted(load_file(str(tmp_path / "ck" / "model.safetensors"))) == sorted(old)
    with pytest.raises(CheckpointError, match="predictor head: weights"):
        JEPAHeads(cfg).load_weights({k: v for k, v in old.items() if k.startswith("projection.")})
    with pytest.raises(CheckpointError, match="dimension mismatch"):
        JEPAHeads(cfg).load_weights({**old, "projection.net.0.bias": torch.zeros(3)})


def test_the_shipped_default_checkpoint_loads_into_jepa_heads(tmp_path):
    ck = load_checkpoint(DEFAULT_CHECKPOINT)
    heads = JEPAHeads(ck.config)
    assert set(heads.state_dict()) == set(ck.state_dict)
    heads.load_weights(ck.state_dict)
    assert all(torch.equal(heads.state_dict()[k], v) for k, v in ck.state_dict.items())
    # written back, the tensors are byte for byte the shipped ones
    save_file(heads.state_dict(), str(tmp_path / "again.safetensors"), metadata={"format": "jepa-rag-adapter"})
    assert (tmp_path / "again.safetensors").read_bytes() == (DEFAULT_CHECKPOINT / "model.safetensors").read_bytes()


def test_the_encoder_delegates_to_its_jepa_heads(minilm_fingerprint):
    d = minilm_fingerprint.dim
    cfg = ModelConfig(projection=HeadConfig(d, d), predictor=HeadConfig(d, d), query_route="predictor")
    enc = JEPAEncoder(cfg, minilm_fingerprint, ".", use_cache=False)
    assert isinstance(enc.jepa_heads, JEPAHeads) and enc.config is enc.jepa_heads.config
    x = np.random.default_rng(0).normal(size=(3, d)).astype(np.float32)
    for route in ("query", "document"):
        np.testing.assert_array_equal(enc.apply_heads(x, route), enc.jepa_heads.encode(x, route))
