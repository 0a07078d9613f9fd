from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from .registry import register_loss

if TYPE_CHECKING:
    from ..config import LossConfig


def covariance_isotropy(z: torch.Tensor) -> torch.Tensor:
    """The seed's covariance isotropy penalty.

    .. math:: L = \\frac{1}{D}\\,\\lVert \\mathrm{Cov}(Z) - s\\,I_D \\rVert_F,\\qquad s = \\mathrm{Var}(\\text{all entries of } Z)

    with :math:`\\mathrm{Cov}(Z) = \\frac{1}{N-1}(Z-\\bar Z)^\\top(Z-\\bar Z)`. ``s`` is *not* detached, as in the
    seed. Known flaw (kept on purpose, for reproduction): with N ≪ D the covariance is rank-deficient, and the
    penalty shrinks with the scale of Z, so it rewards shrinking the embeddings.

    Args:
        z: ``(N, D)``, e.g. ``cat([queries, positives])``.
    """
    n, d = z.shape
    centered = z - z.mean(dim=0, keepdim=True)
    cov = centered.T @ centered / (n - 1)
    s = z.var()
    return torch.linalg.matrix_norm(cov - s * torch.eye(d, device=z.device, dtype=z.dtype)) / d


@register_loss("isotropy", "covariance")
class CovarianceIsotropyLoss:
    """``loss.isotropy: covariance``: :func:`covariance_isotropy`."""

    def __init__(self, config: LossConfig):
        pass

    def __call__(self, z: torch.Tensor) -> torch.Tensor:
        return covariance_isotropy(z)
