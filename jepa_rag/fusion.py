"""Fusing a dense and a lexical ranking: a convex blend of normalised scores, or reciprocal-rank fusion.

Two entry points, which differ in what the normalisation sees:

- :meth:`Fusion.fuse` fuses two *candidate lists* (each side's ``depth`` best), as a serving path gets them from
  a vector store that only returns its top k. Each side is normalised over its own candidates.
- :meth:`Fusion.fuse_scores` fuses two *whole-corpus* score matrices, as the exact retriever
  (:class:`jepa_rag.retriever.HybridRetriever`) has them. Each side is normalised over every document of the
  corpus, per query.

Blend: ``score = (1 - w) * norm(dense) + w * norm(bm25)``. RRF: ``score = Σ 1 / (rrf_k + rank)`` over the sides
whose top ``depth`` holds the document (rank from 1).

The two see differently spread scores (a side's top 100 is far narrower than its whole corpus), so the best blend
weight differs between them: ``lexical_weight`` is the whole-corpus one, ``candidate_lexical_weight`` the one
:meth:`Fusion.fuse` uses (``None``: the same). Both are chosen on dev by :func:`jepa_rag.retriever.choose_fusion`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np

from .errors import CheckpointError, ConfigError, InvalidInputError

METHODS = ("blend", "rrf")
NORMALIZATIONS = ("zscore", "minmax")


@dataclass(frozen=True)
class Fusion:
    """How to fuse dense and BM25 scores. ``lexical_weight`` 0 is dense only, 1 BM25 only (blend)."""

    method: str = "blend"
    lexical_weight: float = 0.3
    normalization: str = "zscore"
    rrf_k: int = 60
    depth: int = 100
    candidate_lexical_weight: float | None = None

    def __post_init__(self):
        if self.method not in METHODS:
            raise ConfigError(f"fusion.method must be one of {list(METHODS)}, got {self.method!r}")
        for name in ("lexical_weight", "candidate_lexical_weight"):
            w = getattr(self, name)
            if w is None and name == "candidate_lexical_weight":
                continue
            if isinstance(w, bool) or not isinstance(w, (int, float)) or not 0.0 <= float(w) <= 1.0:
                raise ConfigError(f"fusion.{name} must be a number in [0, 1], got {w!r}")
            object.__setattr__(self, name, float(w))
        if self.normalization not in NORMALIZATIONS:
            raise ConfigError(f"fusion.normalization must be one of {list(NORMALIZATIONS)}, got {self.normalization!r}")
        for name in ("rrf_k", "depth"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ConfigError(f"fusion.{name} must be a positive integer, got {v!r}")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> Fusion:
        if not isinstance(d, dict):
            raise ConfigError(f"fusion: expected a mapping, got {type(d).__name__}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ConfigError(f"fusion: unknown key(s) {unknown}; known: {sorted(known)}")
        return cls(**d)

    # ------------------------------------------------------------------------------------------ normalisation
    def _normalize(self, scores: np.ndarray) -> np.ndarray:
        """Normalise each row of ``scores`` (a constant row becomes 0)."""
        scores = np.asarray(scores, dtype=np.float64)
        if self.normalization == "zscore":
            centre, spread = scores.mean(axis=-1, keepdims=True), scores.std(axis=-1, keepdims=True)
        else:
            centre = scores.min(axis=-1, keepdims=True)
            spread = scores.max(axis=-1, keepdims=True) - centre
        return np.where(spread > 0, (scores - centre) / np.where(spread > 0, spread, 1.0), 0.0)

    # ------------------------------------------------------------------------------------------ candidate lists
    def fuse(self, dense: Sequence[tuple[str, float]], lexical: Sequence[tuple[str, float]],
             k: int, *, corpus_stats: tuple[tuple[float, float], tuple[float, float]] | None = None,
             ) -> list[tuple[str, float]]:
        """Fuse two candidate lists (``(id, score)``, best first; each cut to ``depth``) into the ``k`` best.

        Blend normalises each side over its own candidates, weighted by ``candidate_lexical_weight`` (else
        ``lexical_weight``); a document only one side returned gets the other side's lowest normalised candidate
        score (it ranked below all of them there). Ties go to the id first seen in the dense list, then the lexical
        list.

        ``corpus_stats`` = ``((dense_mean, dense_std), (lexical_mean, lexical_std))``, this query's scores'
        mean and spread over the whole corpus: with the z-score blend each side is then normalised with them, as
        :meth:`fuse_scores` does, and ``lexical_weight`` (the whole-corpus weight) applies. A serving path that
        can compute them (:class:`jepa_rag.chroma_hybrid.HybridCollection` does) ranks like the exact
        retriever over the candidates, instead of like the narrower candidate-list normalisation.
        """
        k = _check_k(k)
        sides = [_dedupe(dense)[: self.depth], _dedupe(lexical)[: self.depth]]
        order: dict[str, int] = {}
        for side in sides:
            for did, _ in side:
                order.setdefault(did, len(order))
        fused = dict.fromkeys(order, 0.0)
        if self.method == "rrf":
            for side in sides:
                for rank, (did, _) in enumerate(side, 1):
                    fused[did] += 1.0 / (self.rrf_k + rank)
        else:
            whole = corpus_stats is not None and self.normalization == "zscore"
            w = self.lexical_weight if whole or self.candidate_lexical_weight is None else self.candidate_lexical_weight
            for n, (side, weight) in enumerate(zip(sides, (1.0 - w, w))):
                if not side or weight == 0.0:
                    continue
                raw = np.array([s for _, s in side], dtype=np.float64)
                if whole:
                    mean, std = corpus_stats[n]
                    norm = (raw - mean) / std if std > 0 else np.zeros_like(raw)
                else:
                    norm = self._normalize(raw)
                floor = float(norm.min())
                got = {did: float(v) for (did, _), v in zip(side, norm)}
                for did in fused:
                    fused[did] += weight * got.get(did, floor)
        best = sorted(fused, key=lambda did: (-fused[did], order[did]))[:k]
        return [(did, fused[did]) for did in best]

    # ------------------------------------------------------------------------------------------ whole corpus
    def fuse_scores(self, dense: np.ndarray, lexical: np.ndarray) -> np.ndarray:
        """Fused scores (Q, N) from whole-corpus dense and BM25 score matrices (Q, N).

        Blend normalises each side over every document, per query. RRF ranks each side and counts only each
        side's top ``depth`` (like :meth:`fuse`); documents in neither get 0.
        """
        dense = np.asarray(dense, dtype=np.float64)
        lexical = np.asarray(lexical, dtype=np.float64)
        if dense.shape != lexical.shape or dense.ndim != 2:
            raise InvalidInputError(
                f"fuse_scores: dense {dense.shape} and lexical {lexical.shape} must be (queries, documents) alike")
        if self.method == "blend":
            w = self.lexical_weight
            out = np.zeros_like(dense)
            if w < 1.0:
                out += (1.0 - w) * self._normalize(dense)
            if w > 0.0:
                out += w * self._normalize(lexical)
            return out
        out = np.zeros_like(dense)
        depth = min(self.depth, dense.shape[1])
        rows = np.arange(dense.shape[0])[:, None]
        for scores, drop_zero in ((dense, False), (lexical, True)):
            if depth == 0:
                break
            top = np.argpartition(-scores, depth - 1, axis=1)[:, :depth]
            top = np.take_along_axis(top, np.argsort(-scores[rows, top], axis=1, kind="stable"), axis=1)
            contrib = 1.0 / (self.rrf_k + np.arange(1, depth + 1, dtype=np.float64))[None, :]
            if drop_zero:  # BM25 0 means no shared term: not a lexical candidate
                contrib = np.where(scores[rows, top] > 0, contrib, 0.0)
            out[rows, top] += contrib
        return out


def _check_k(k: object) -> int:
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise InvalidInputError(f"k must be a positive integer, got {k!r}")
    return int(k)


def _dedupe(pairs: Sequence[tuple[str, float]]) -> list[tuple[str, float]]:
    seen: set[str] = set()
    out = []
    for item in pairs:
        try:
            did, score = item
        except (TypeError, ValueError):
            raise InvalidInputError(f"fuse: expected (id, score) pairs, got {item!r:.60}") from None
        if did not in seen:
            seen.add(did)
            out.append((did, float(score)))
    return out


def best_indices(row: np.ndarray, k: int) -> np.ndarray:
    """Positions of the ``k`` highest scores of ``row``, best first; equal scores in position order, also where
    they straddle the cut (argpartition alone picks among those arbitrarily), so the same text under two ids
    always ranks the same way, whatever else the corpus holds."""
    row = np.asarray(row)
    k = min(int(k), len(row))
    if k <= 0:
        return np.zeros(0, dtype=np.int64)
    if k < len(row):
        kth = row[np.argpartition(-row, k - 1)[:k]].min()
        above = np.flatnonzero(row > kth)
        idx = np.concatenate([above, np.flatnonzero(row == kth)[:k - len(above)]])
    else:
        idx = np.arange(len(row))
    return idx[np.lexsort((idx, -row[idx]))]


def top_k(scores: np.ndarray, ids: Sequence[str], k: int) -> list[list[tuple[str, float]]]:
    """The ``k`` best ``(id, score)`` of each row of ``scores`` (Q, N), best first (ties: corpus order)."""
    k = min(_check_k(k), len(ids))
    return [[(ids[j], float(row[j])) for j in best_indices(row, k)] for row in np.asarray(scores)]


def fusion_of(checkpoint: str | os.PathLike | None) -> Fusion:
    """The fusion stored in a checkpoint's ``adapter_config.json`` (section ``retrieval.fusion``).

    ``None`` / ``"none"`` / ``"vanilla"`` (the plain base model), and a checkpoint that stores none, get the
    default checkpoint's (chosen on dev judgments); :class:`Fusion` defaults if that stores none either.
    """
    from .encoder import DEFAULT_CHECKPOINT, VANILLA_NAMES

    for candidate in ([] if checkpoint in VANILLA_NAMES else [checkpoint]) + [DEFAULT_CHECKPOINT]:
        path = DEFAULT_CHECKPOINT if str(candidate) == "default" else Path(candidate)
        stored = stored_fusion(path)
        if stored is not None:
            return stored
    return Fusion()


def stored_fusion(checkpoint_dir: str | os.PathLike) -> Fusion | None:
    """The fusion a checkpoint folder stores, or None where it stores none (or the folder is not there)."""
    cfg = Path(checkpoint_dir) / "adapter_config.json"
    if not cfg.is_file():
        return None
    try:
        meta = json.loads(cfg.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"{cfg}: corrupt (not valid JSON: {exc})") from None
    section = (meta.get("retrieval") or {}).get("fusion") if isinstance(meta, dict) else None
    if section is None:
        return None
    try:
        return Fusion.from_dict(section)
    except ConfigError as exc:
        raise CheckpointError(f"{cfg}: invalid retrieval.fusion ({exc})") from None
