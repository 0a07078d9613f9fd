from __future__ import annotations

from typing import TYPE_CHECKING, Literal

import torch
import torch.nn.functional as F

from .registry import register_loss

if TYPE_CHECKING:
    from ..config import LossConfig


def predictive_loss(
    prediction: torch.Tensor, target: torch.Tensor, kind: Literal["mse", "cosine"] = "mse"
) -> torch.Tensor:
    """JEPA predictive loss: predict the document's embedding from the query's; the target is stop-gradient.

    .. math:: L_{mse} = \\frac{1}{BD}\\sum_i \\lVert p(z_{q,i}) - \\mathrm{sg}(z_{d,i}) \\rVert_2^2
        \\qquad L_{cos} = \\frac{1}{B}\\sum_i \\big(1 - \\cos(p(z_{q,i}), \\mathrm{sg}(z_{d,i}))\\big)

    The stop-gradient (``target.detach()``) is applied here, so gradients reach the predictor (and the projection
    through the query branch) but never pull the target towards the prediction.
    """
    target = target.detach()
    if kind == "mse":
        return F.mse_loss(prediction, target)
    if kind == "cosine":
        return (1.0 - F.cosine_similarity(prediction, target, dim=-1)).mean()
    raise ValueError(f"predictive loss kind must be 'mse' or 'cosine', got {kind!r}")


@register_loss("predictive", "mse")
@register_loss("predictive", "cosine")
class PredictiveLoss:
    """``loss.predictive: mse`` or ``cosine``: :func:`predictive_loss` of that kind."""

    def __init__(self, config: LossConfig):
        self.kind = config.predictive

    def __call__(self, prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return predictive_loss(prediction, target, self.kind)
