"""Document vectors prepared once for scoring, so each query batch costs one matrix product.

Why: normalising a 5,000-document matrix took ~25 ms, on every query, in the exact retriever. The preparation is
the arithmetic :func:`jepa_rag.encoder.similarity` does (it uses this class), so prepared scores equal unprepared
ones bit for bit.
"""

from __future__ import annotations

import numpy as np

from .errors import InvalidInputError

SCORINGS = ("cosine", "euclidean")


def unit_rows(x: np.ndarray) -> np.ndarray:
    """``x``'s rows scaled to length 1 (all-zero rows stay zero)."""
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


class DocumentMatrix:
    """``vectors`` (N×d) ready for :meth:`scores` under ``scoring``: unit rows for cosine, squared norms for
    euclidean."""

    def __init__(self, vectors: np.ndarray, scoring: str):
        if scoring not in SCORINGS:
            raise InvalidInputError(f"scoring must be 'cosine' or 'euclidean', got {scoring!r}")
        self.source = vectors
        self.scoring = scoring
        d = np.asarray(vectors, dtype=np.float32)
        self._d = unit_rows(d) if scoring == "cosine" else d
        self._sq = (d**2).sum(1) if scoring == "euclidean" else None

    def __len__(self) -> int:
        return len(self._d)

    def scores(self, q: np.ndarray) -> np.ndarray:
        """Scores (Q, N) of query vectors ``q`` against every document: cosine, or negative Euclidean distance."""
        q = np.asarray(q, dtype=np.float32)
        if self.scoring == "cosine":
            return unit_rows(q) @ self._d.T
        sq = (q**2).sum(1)[:, None] + self._sq[None, :] - 2.0 * (q @ self._d.T)
        return -np.sqrt(np.maximum(sq, 0.0))
