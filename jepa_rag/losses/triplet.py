from __future__ import annotations

from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F

from .registry import register_loss

if TYPE_CHECKING:
    from ..config import LossConfig


def triplet_loss(q: torch.Tensor, pos: torch.Tensor, neg: torch.Tensor, margin: float = 0.1) -> torch.Tensor:
    """Euclidean triplet hinge, as in the seed research.

    .. math:: L = \\frac{1}{B}\\sum_i \\max(0,\\ \\lVert q_i - d_i^+\\rVert_2 - \\lVert q_i - d_i^-\\rVert_2 + m)

    Args:
        q: queries, ``(B, D)``.
        pos: their positives, ``(B, D)``.
        neg: one hard negative per query, ``(B, D)``, or several, ``(B, K, D)`` (the hinge is averaged over K).
        margin: m.
    """
    d_pos = torch.linalg.vector_norm(q - pos, dim=-1)
    if neg.dim() == 3:
        d_neg = torch.linalg.vector_norm(q.unsqueeze(1) - neg, dim=-1)
        return F.relu(d_pos.unsqueeze(1) - d_neg + margin).mean()
    d_neg = torch.linalg.vector_norm(q - neg, dim=-1)
    return F.relu(d_pos - d_neg + margin).mean()


@register_loss("contrastive", "triplet")
class TripletLoss:
    """``loss.contrastive: triplet``: :func:`triplet_loss` with ``loss.margin``.

    Each row has its one positive and its own hard negatives, so the batch's judgments (ids, other known positives)
    that the InfoNCE losses use play no part here.
    """

    def __init__(self, config: LossConfig):
        self.margin = config.margin

    def __call__(self, q: torch.Tensor, pos: torch.Tensor, neg: torch.Tensor, *, pos_ids: torch.Tensor | None = None,
                 neg_ids: torch.Tensor | None = None, known_positive: torch.Tensor | None = None) -> torch.Tensor:
        return triplet_loss(q, pos, neg, margin=self.margin)
