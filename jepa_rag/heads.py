"""The two trainable heads: the projection g and the JEPA predictor p.

Both are the seed's two-layer MLP (Linear d→h, GELU, Dropout, Linear h→out). The residual variant computes
``x + mlp(x)`` with the last layer zero-initialised, so an untrained head is the identity and training starts
from the base model's own retrieval quality instead of from a random rotation of it.
"""

from __future__ import annotations

import torch
from torch import nn

from .config import HeadConfig


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
