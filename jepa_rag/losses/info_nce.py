from __future__ import annotations

from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F

from .registry import register_loss

if TYPE_CHECKING:
    from ..config import LossConfig


def info_nce_loss(
    q: torch.Tensor,
    pos: torch.Tensor,
    neg: torch.Tensor | None = None,
    *,
    temperature: float = 0.05,
    pos_ids: torch.Tensor | None = None,
    neg_ids: torch.Tensor | None = None,
    known_positive: torch.Tensor | None = None,
) -> torch.Tensor:
    """InfoNCE (multiple-negatives ranking loss) on cosine similarities.

    .. math:: L = -\\frac{1}{B}\\sum_i \\log
        \\frac{e^{s(q_i, d_i^+)/\\tau}}{\\sum_{c \\in C_i} e^{s(q_i, c)/\\tau}},\\qquad s = \\cos

    where the candidates :math:`C_i` are every positive in the batch plus every hard negative in the batch.
    A candidate that *is* query i's positive (same document id, other than d_i⁺ itself) is masked out, so a
    document cited by two queries of one batch is not pushed away from either (van den Oord et al., 2018;
    Henderson et al., 2017).

    Args:
        q, pos: ``(B, D)``.
        neg: hard negatives ``(B, K, D)`` or ``(B, D)``; all of them serve as negatives for every query.
        temperature: τ.
        pos_ids: ``(B,)`` integer id of each positive document, for masking duplicates.
        neg_ids: ``(B, K)`` or ``(B,)`` integer ids of the hard negatives, for masking.
        known_positive: ``(B, C)`` bool over the candidates (the B positives, then the hard negatives in order):
            True where candidate c is *another* judged positive of query i (a query with several relevant
            documents in one batch, or another row's hard negative that query i's judgments call relevant).
            Masked like duplicates; the diagonal is always kept.
    """
    logits, others = candidate_logits(q, pos, neg, temperature=temperature, pos_ids=pos_ids, neg_ids=neg_ids,
                                      known_positive=known_positive)
    if others.any():
        logits = logits.masked_fill(others, float("-inf"))
    return F.cross_entropy(logits, torch.arange(q.shape[0], device=q.device))


def candidate_logits(
    q: torch.Tensor,
    pos: torch.Tensor,
    neg: torch.Tensor | None = None,
    *,
    temperature: float,
    pos_ids: torch.Tensor | None = None,
    neg_ids: torch.Tensor | None = None,
    known_positive: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(B, C)`` cosine logits ``s(q_i, c)/τ`` over the candidates (the B positives, then the hard negatives), and
    the ``(B, C)`` mask of candidates that are *other* positives of query i (same document id as its positive, or
    marked in ``known_positive``); the diagonal is never in the mask. Shared by the InfoNCE variants."""
    q = F.normalize(q, dim=-1)
    cands = [F.normalize(pos, dim=-1)]
    cand_ids = [pos_ids] if pos_ids is not None else None
    if neg is not None:
        neg = neg.reshape(-1, neg.shape[-1])
        cands.append(F.normalize(neg, dim=-1))
        if cand_ids is not None:
            if neg_ids is None:
                raise ValueError("neg_ids is required when pos_ids is given with hard negatives")
            cand_ids.append(neg_ids.reshape(-1))
    c = torch.cat(cands, dim=0)
    logits = q @ c.T / temperature
    diag = torch.arange(q.shape[0], device=q.device)
    others = torch.zeros_like(logits, dtype=torch.bool)
    if cand_ids is not None:
        others |= pos_ids.unsqueeze(1) == torch.cat(cand_ids).unsqueeze(0)
    if known_positive is not None:
        if known_positive.shape != logits.shape:
            raise ValueError(f"known_positive has shape {tuple(known_positive.shape)}, expected {tuple(logits.shape)}")
        others |= known_positive.to(torch.bool)
    others[diag, diag] = False  # each query's own positive is the target, not an "other" one
    return logits, others


@register_loss("contrastive", "infonce")
class InfoNCELoss:
    """``loss.contrastive: infonce``: :func:`info_nce_loss` at ``loss.temperature``."""

    def __init__(self, config: LossConfig):
        self.temperature = config.temperature

    def __call__(self, q: torch.Tensor, pos: torch.Tensor, neg: torch.Tensor | None = None, *,
                 pos_ids: torch.Tensor | None = None, neg_ids: torch.Tensor | None = None,
                 known_positive: torch.Tensor | None = None) -> torch.Tensor:
        return info_nce_loss(q, pos, neg, temperature=self.temperature, pos_ids=pos_ids, neg_ids=neg_ids,
                             known_positive=known_positive)
