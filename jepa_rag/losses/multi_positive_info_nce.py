from __future__ import annotations

from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F

from .info_nce import candidate_logits
from .registry import register_loss

if TYPE_CHECKING:
    from ..config import LossConfig


def multi_positive_info_nce_loss(
    q: torch.Tensor,
    pos: torch.Tensor,
    neg: torch.Tensor | None = None,
    *,
    temperature: float = 0.05,
    pos_ids: torch.Tensor | None = None,
    neg_ids: torch.Tensor | None = None,
    known_positive: torch.Tensor | None = None,
) -> torch.Tensor:
    """InfoNCE in which every judged positive among the candidates is a target, not only the row's own.

    .. math:: L = -\\frac{1}{B}\\sum_i \\frac{1}{|P_i|}\\sum_{p \\in P_i} \\log
        \\frac{e^{s(q_i, p)/\\tau}}{\\sum_{c \\in C_i} e^{s(q_i, c)/\\tau}},\\qquad s = \\cos

    :math:`C_i` are the candidates of :func:`info_nce_loss` (every positive and hard negative of the batch) and
    :math:`P_i \\subseteq C_i` the ones query i's judgments call relevant: its own positive, any candidate with the
    same document id, and those marked in ``known_positive``. This is cross-entropy against targets spread evenly
    over :math:`P_i` (the "outside" form of Khosla et al., 2020, *Supervised Contrastive Learning*). Where
    :func:`info_nce_loss` only masks another relevant document out of query i's denominator, this loss pulls it
    towards query i — what a ranking metric over many relevant documents (NFCorpus judges a median of 18 per
    query) rewards. With no other positive in the batch the two losses are equal.

    Args: as :func:`info_nce_loss`.
    """
    logits, others = candidate_logits(q, pos, neg, temperature=temperature, pos_ids=pos_ids, neg_ids=neg_ids,
                                      known_positive=known_positive)
    targets = others.to(logits.dtype)
    diag = torch.arange(q.shape[0], device=q.device)
    targets[diag, diag] = 1.0
    return F.cross_entropy(logits, targets / targets.sum(dim=1, keepdim=True))


@register_loss("contrastive", "multi_positive_infonce")
class MultiPositiveInfoNCELoss:
    """``loss.contrastive: multi_positive_infonce``: :func:`multi_positive_info_nce_loss` at ``loss.temperature``."""

    def __init__(self, config: LossConfig):
        self.temperature = config.temperature

    def __call__(self, q: torch.Tensor, pos: torch.Tensor, neg: torch.Tensor | None = None, *,
                 pos_ids: torch.Tensor | None = None, neg_ids: torch.Tensor | None = None,
                 known_positive: torch.Tensor | None = None) -> torch.Tensor:
        return multi_positive_info_nce_loss(q, pos, neg, temperature=self.temperature, pos_ids=pos_ids,
                                            neg_ids=neg_ids, known_positive=known_positive)
