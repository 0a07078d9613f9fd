import torch
import torch.nn.functional as F


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
