"""The trainable part of a checkpoint: :class:`JEPAHeads`, the projection g and the JEPA predictor p.

Both heads are the seed's two-layer MLP (Linear d→h, GELU, Dropout, Linear h→out). The residual variant computes
``x + mlp(x)`` with the last layer zero-initialised, so an untrained head is the identity and training starts
from the base model's own retrieval quality instead of from a random rotation of it.

Training (``python -m train``) optimises a :class:`JEPAHeads`; :class:`jepa_rag.JEPAEncoder` holds one and sends
the frozen base model's vectors through it. Its ``state_dict`` keys (``projection.net.0.weight``, …,
``predictor.net.3.bias``) are the keys of a checkpoint's ``model.safetensors``.
"""

from __future__ import annotations

import dataclasses
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .config import HeadConfig, ModelConfig
from .errors import CheckpointError, ConfigError, InvalidInputError

Route = Literal["query", "document"]
ROUTES = ("query", "document")
# rows per forward pass when mapping stored vectors: bounds the heads' activations, not a tuning knob
CHUNK = 8192


class MLPHead(nn.Module):
    def __init__(self, config: HeadConfig):
        super().__init__()
        config.validate(type(self).__name__)
        self.config = config
        self.net = nn.Sequential(
            nn.Linear(config.in_dim, config.hidden_dim),
            nn.GELU(),
            nn.Dropout(config.dropout),
            nn.Linear(config.hidden_dim, config.out_dim),
        )
        if config.residual:
            nn.init.zeros_(self.net[-1].weight)
            nn.init.zeros_(self.net[-1].bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.net(x)
        return x + y if self.config.residual else y


class ProjectionHead(MLPHead):
    """g: base embedding → retrieval space (documents always, queries too)."""


class Predictor(MLPHead):
    """p: predicts a document's projected embedding from its query's projected embedding."""


def check_base_dim(config: ModelConfig, base_dim: int, base_model: str) -> None:
    """:class:`ConfigError` unless the heads take the base model's ``base_dim``-d vectors."""
    if config.projection.in_dim != base_dim:
        raise ConfigError(
            f"model.projection.in_dim is {config.projection.in_dim}, but the base model {base_model} "
            f"gives {base_dim}-d vectors; set the heads' dimensions for this base model "
            f"(e.g. model.projection={{in_dim: {base_dim}, out_dim: {base_dim}}})")


class JEPAHeads(nn.Module):
    """Projection g and optional predictor p, built from a checkpoint's :class:`ModelConfig`.

    The two routes of a retrieval vector (before normalisation):

    - document: ``g(x)``
    - query: ``g(x)``, or ``p(g(x))`` when ``config.query_route == "predictor"``

    ``forward(x, route)`` is the differentiable map (training); :meth:`encode` maps stored base vectors to the
    retrieval vectors an index holds (no gradient, eval mode, normalised when ``config.normalize``).
    """

    def __init__(self, config: ModelConfig):
        super().__init__()
        config.validate()
        self.config = config
        self.projection = ProjectionHead(config.projection)
        self.predictor = Predictor(config.predictor) if config.predictor is not None else None

    @property
    def query_route(self) -> str:
        return self.config.query_route

    def set_query_route(self, route: str) -> None:
        """Send queries along ``route`` (``"projection"`` or ``"predictor"``) from now on; the weights are shared."""
        if route != self.config.query_route:
            config = dataclasses.replace(self.config, query_route=route)
            config.validate()
            self.config = config

    def forward(self, x: torch.Tensor, route: Route = "document") -> torch.Tensor:
        if route not in ROUTES:
            raise InvalidInputError(f"route must be 'query' or 'document', got {route!r}")
        z = self.projection(x)
        if route == "query" and self.config.query_route == "predictor":
            z = self.predictor(z)
        return z

    @torch.no_grad()
    def encode(self, x: np.ndarray | torch.Tensor, route: Route) -> np.ndarray:
        """Retrieval vectors (float32, N×dim) for base vectors ``x`` (N×in_dim) along ``route``."""
        if route not in ROUTES:
            raise InvalidInputError(f"route must be 'query' or 'document', got {route!r}")
        t = torch.as_tensor(np.asarray(x, dtype=np.float32))
        if t.ndim != 2 or t.shape[1] != self.config.projection.in_dim:
            raise InvalidInputError(
                f"expected base vectors of shape (N, {self.config.projection.in_dim}), got {tuple(t.shape)}")
        self.eval()
        device = self.projection.net[0].weight.device
        outs = []
        for start in range(0, len(t), CHUNK):
            z = self(t[start:start + CHUNK].to(device), route)
            if self.config.normalize:
                z = F.normalize(z, dim=-1)
            outs.append(z.cpu())
        out = torch.cat(outs).numpy() if outs else np.zeros((0, self.config.dim), np.float32)
        if not np.isfinite(out).all():
            raise InvalidInputError("the heads produced non-finite vectors (NaN/inf): the checkpoint is broken")
        return out

    def load_weights(self, state: dict[str, torch.Tensor]) -> None:
        """Load a checkpoint's tensors, or :class:`CheckpointError` naming the head whose layers or shapes differ."""
        for prefix, head in (("projection", self.projection), ("predictor", self.predictor)):
            if head is None:
                continue
            sub = {k[len(prefix) + 1:]: v for k, v in state.items() if k.startswith(prefix + ".")}
            expected = head.state_dict()
            if set(sub) != set(expected):
                raise CheckpointError(
                    f"{prefix} head: weights {sorted(sub)} do not match the config's layers {sorted(expected)}")
            for k, v in sub.items():
                if v.shape != expected[k].shape:
                    raise CheckpointError(
                        f"{prefix}.{k}: shape {tuple(v.shape)} does not match the config's {tuple(expected[k].shape)} "
                        "(dimension mismatch)")
            head.load_state_dict(sub)

    def extra_repr(self) -> str:
        return f"query_route={self.config.query_route!r}, normalize={self.config.normalize}"
