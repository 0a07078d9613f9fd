from __future__ import annotations

from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F

from .registry import register_loss

if TYPE_CHECKING:
    from ..config import LossConfig


def uniformity_loss(z: torch.Tensor, t: float = 2.0) -> torch.Tensor:
    """Uniformity on the hypersphere (Wang & Isola, 2020).

    .. math:: L = \\log \\frac{1}{N(N-1)} \\sum_{i \\ne j} e^{-t \\lVert \\hat z_i - \\hat z_j \\rVert_2^2},
        \\qquad \\hat z = z / \\lVert z \\rVert

    Lower is more uniform. Args: z ``(N, D)`` (normalised here), t the kernel's sharpness.
    """
    z = F.normalize(z, dim=-1)
    sq = torch.pdist(z, p=2).pow(2)
    return torch.log(torch.exp(-t * sq).mean())


@register_loss("isotropy", "uniformity")
class UniformityLoss:
    """``loss.isotropy: uniformity``: :func:`uniformity_loss` with its default t."""

    def __init__(self, config: LossConfig):
        pass

    def __call__(self, z: torch.Tensor) -> torch.Tensor:
        return uniformity_loss(z)
