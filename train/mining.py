"""Hard-negative mining with the frozen base model."""

from __future__ import annotations

import numpy as np
import torch


def mine_hard_negatives(
    query_vecs: np.ndarray,
    pool_vecs: np.ndarray,
    positives: list[set[int]],
    *,
    rank_start: int,
    rank_end: int,
    per_query: int,
    seed: int,
    chunk: int = 1024,
) -> np.ndarray:
    """For each query, draw ``per_query`` pool indices from its base-model ranks ``[rank_start, rank_end)``.

    Ranks are counted after removing the query's own positives (``positives[i]``), so a positive is never a
    negative. Skipping the first ``rank_start`` ranks avoids unlabelled relevant documents (false negatives).
    Returns ``(N, per_query)`` int64 pool indices.
    """
    rng = np.random.default_rng(seed)
    q = torch.nn.functional.normalize(torch.as_tensor(query_vecs, dtype=torch.float32), dim=-1)
    p = torch.nn.functional.normalize(torch.as_tensor(pool_vecs, dtype=torch.float32), dim=-1)
    max_pos = max((len(s) for s in positives), default=0)
    depth = min(rank_end + max_pos, p.shape[0])
    out = np.zeros((len(q), per_query), dtype=np.int64)
    for start in range(0, len(q), chunk):
        top = torch.topk(q[start:start + chunk] @ p.T, k=depth, dim=1).indices.numpy()
        for row, ranked in enumerate(top):
            i = start + row
            ranked = [int(j) for j in ranked if int(j) not in positives[i]]
            window = ranked[rank_start:rank_end] or ranked[-per_query:]
            if not window:
                raise ValueError("the mining pool holds no document that is not a positive of the query")
            out[i] = rng.choice(window, size=per_query, replace=len(window) < per_query)
    return out
