from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from .registry import register_loss

if TYPE_CHECKING:
    from ..config import LossConfig


def sigreg_loss(
    z: torch.Tensor,
    *,
    num_slices: int = 256,
    t_max: float = 3.0,
    num_points: int = 17,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """SIGReg: Sketched Isotropic Gaussian Regularisation (LeJEPA, Balestriero & LeCun, 2025).

    Project Z onto M random unit directions :math:`a_m` and test each 1-D projection
    :math:`h = Z a_m` against N(0, 1) with the Epps–Pulley statistic, which compares the empirical characteristic
    function with the Gaussian one:

    .. math:: EP(h) = N \\int_{-t_{max}}^{t_{max}} \\big|\\hat\\varphi_h(t) - e^{-t^2/2}\\big|^2\\, e^{-t^2/2}\\,dt,
        \\qquad \\hat\\varphi_h(t) = \\frac{1}{N}\\sum_n e^{i t h_n}

    :math:`L = \\frac{1}{M}\\sum_m EP(Z a_m)`. The integrand is even in t, so it is integrated on [0, t_max] with the
    trapezoid rule and doubled. Minimising it pushes Z towards an isotropic standard Gaussian.

    Args:
        z: ``(N, D)``.
        num_slices: M.
        t_max, num_points: integration range and trapezoid knots.
        generator: for reproducible directions.
    """
    n, d = z.shape
    directions = torch.randn(d, num_slices, generator=generator, device=z.device, dtype=z.dtype)
    directions = directions / directions.norm(dim=0, keepdim=True)
    h = z @ directions                                         # (N, M)
    t = torch.linspace(0.0, t_max, num_points, device=z.device, dtype=z.dtype)
    ht = h.unsqueeze(-1) * t                                   # (N, M, T)
    real = torch.cos(ht).mean(dim=0)                           # (M, T)
    imag = torch.sin(ht).mean(dim=0)
    gauss = torch.exp(-0.5 * t**2)
    err = (real - gauss) ** 2 + imag**2                        # |φ̂ − φ|²
    weights = torch.full_like(t, t_max / (num_points - 1))
    weights[0] = weights[-1] = weights[0] / 2                  # trapezoid
    integral = 2.0 * (err * gauss) @ weights                   # even integrand: ∫_{-t}^{t} = 2∫_0^t
    return n * integral.mean()


@register_loss("isotropy", "sigreg")
class SIGRegLoss:
    """``loss.isotropy: sigreg``: :func:`sigreg_loss` with its default slices, directions from torch's global RNG."""

    def __init__(self, config: LossConfig):
        pass

    def __call__(self, z: torch.Tensor) -> torch.Tensor:
        return sigreg_loss(z)
