"""The exact hybrid retriever: every document scored densely (numpy) and by BM25, fused over the whole corpus.

This is the evaluation path (and fine for corpora that fit in memory). Serving over a vector store that only
returns its top k fuses candidate lists instead (:meth:`jepa_rag.fusion.Fusion.fuse`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from .corpus_audit import clean_corpus
from .document_matrix import DocumentMatrix
from .encoder import JEPAEncoder, validate_texts
from .errors import InvalidInputError
from .fusion import NORMALIZATIONS, Fusion, fusion_of, top_k
from .lexical import LexicalIndex
from .metrics import evaluate_run, paired_test

QUERY_BATCH = 256


class HybridRetriever:
    """Dense (``encoder``) + BM25 over one corpus, fused by ``fusion``.

    ``corpus`` holds ``{"title", "text"}`` dicts or strings, aligned with ``ids``; BM25 indexes the same text the
    encoder embeds. Empty documents and repeated ids are skipped with one warning (:mod:`jepa_rag.corpus_audit`;
    :attr:`audit` says what was), so :attr:`ids` may be shorter than ``ids``. ``fusion=None`` takes the fusion stored in the encoder's checkpoint (the default
    checkpoint's for the plain base model). ``lexical`` reuses a built index (its ids must equal ``ids``).
    Dense and BM25 scores are normalised over the whole corpus per query (:meth:`Fusion.fuse_scores`).
    """

    def __init__(self, encoder: JEPAEncoder, ids: Sequence[str], corpus: Sequence[dict | str], *,
                 fusion: Fusion | None = None, lexical: LexicalIndex | None = None,
                 show_progress_bar: bool | None = None):
        self.encoder = encoder
        clean = clean_corpus(ids, corpus, what="corpus")
        self.ids = clean.ids
        self.audit = clean.audit
        self.fusion = fusion if fusion is not None else fusion_of(encoder.checkpoint_path)
        if not isinstance(self.fusion, Fusion):
            raise InvalidInputError(f"fusion: expected a jepa_rag.Fusion, got {type(self.fusion).__name__}")
        if lexical is None:
            lexical = LexicalIndex(self.ids, clean.texts, show_progress_bar=show_progress_bar)
        elif list(lexical.ids) != self.ids:
            raise InvalidInputError("lexical: the index's ids differ from ids (another corpus, or another order; "
                                    "empty documents and repeated ids are not indexed)")
        self.lexical = lexical
        self.doc_vectors = (encoder.encode_corpus(clean.documents, show_progress_bar=show_progress_bar)
                            if clean.ids else np.zeros((0, encoder.dim), dtype=np.float32))
        self._documents = DocumentMatrix(self.doc_vectors, encoder.scoring)  # normalised once, not per query

    def __len__(self) -> int:
        return len(self.ids)

    def scores(self, queries: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """Whole-corpus dense and BM25 scores, each (Q, N) in :attr:`ids` order. Both sides score each query cut to
        the encoder's ``max_query_chars`` (:meth:`JEPAEncoder.bound_queries`)."""
        queries = self.encoder.bound_queries(queries)
        if self._documents.source is not self.doc_vectors:  # doc_vectors was replaced
            self._documents = DocumentMatrix(self.doc_vectors, self.encoder.scoring)
        dense = self._documents.scores(self.encoder.encode_queries(queries)) if queries \
            else np.zeros((0, len(self.ids)), dtype=np.float32)
        return dense, self.lexical.score_all(queries)

    def retrieve(self, queries: Sequence[str], k: int = 10) -> list[list[tuple[str, float]]]:
        """The ``k`` best ``(id, fused score)`` per query, best first (``k`` capped at the corpus size, so any
        positive integer is valid); no queries give an empty list. Anything but a list of non-blank strings, or a
        ``k`` that is not a positive integer, is :class:`InvalidInputError`."""
        queries = validate_texts(queries, "queries")
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
            raise InvalidInputError(f"k must be a positive integer, got {k!r}")
        out: list[list[tuple[str, float]]] = []
        for start in range(0, len(queries), QUERY_BATCH):
            batch = queries[start:start + QUERY_BATCH]
            if not self.ids:
                out.extend([] for _ in batch)
                continue
            dense, lexical = self.scores(batch)
            out.extend(top_k(self.fusion.fuse_scores(dense, lexical), self.ids, k))
        return out


# The fusions a dev set chooses among: blend weights 0 (dense only) to 1 (BM25 only) in steps of 0.05, under each
# normalisation, and RRF.
DEV_GRID: tuple[Fusion, ...] = (
    *(Fusion(lexical_weight=round(i / 20, 2), normalization=n) for n in NORMALIZATIONS for i in range(21)),
    Fusion(method="rrf"),
)


@dataclass
class DevScores:
    """One dev set's whole-corpus dense and BM25 scores (each (Q, N)) with its judgments."""

    name: str
    dense: np.ndarray
    lexical: np.ndarray
    query_ids: list[str]
    doc_ids: list[str]
    qrels: dict[str, dict[str, int]]
    ignore_identical_ids: bool = True

    def run(self, fusion: Fusion, *, candidates: bool = False, top: int = 100) -> dict[str, dict[str, float]]:
        """The fused run: over the whole corpus (:meth:`Fusion.fuse_scores`), or (``candidates``) over each side's
        top ``fusion.depth`` as a serving path gets them (:meth:`Fusion.fuse`; BM25 zeros are no candidates)."""
        if not candidates:
            fused = fusion.fuse_scores(self.dense, self.lexical)
            return {q: dict(hits) for q, hits in zip(self.query_ids, top_k(fused, self.doc_ids, top))}
        dense = top_k(self.dense, self.doc_ids, fusion.depth)
        lexical = top_k(self.lexical, self.doc_ids, fusion.depth)
        return {q: dict(fusion.fuse(d, [(i, v) for i, v in lx if v > 0], top))
                for q, d, lx in zip(self.query_ids, dense, lexical)}

    def evaluate(self, fusion: Fusion, *, candidates: bool = False, top: int = 100) -> dict:
        run = self.run(fusion, candidates=candidates, top=top)
        return evaluate_run(self.qrels, run, ignore_identical_ids=self.ignore_identical_ids)

    def metric(self, fusion: Fusion, metric: str = "ndcg@10", *, candidates: bool = False) -> float:
        return self.evaluate(fusion, candidates=candidates)["metrics"][metric]


def choose_fusion(devs: Sequence[DevScores], grid: Sequence[Fusion] = DEV_GRID,
                  metric: str = "ndcg@10", *, prior: Fusion | None = None,
                  p_value: float | None = None) -> tuple[Fusion, dict]:
    """The fusion of ``grid`` with the best ``metric`` averaged over ``devs`` (ties: the earlier in ``grid``), and
    the record a checkpoint stores as its ``retrieval`` section: the choice, what chose it, and the dev curves.

    The grid is scored over the whole corpus (:meth:`Fusion.fuse_scores`), as :class:`HybridRetriever` does. When a
    blend wins, its ``candidate_lexical_weight`` (the weight :meth:`Fusion.fuse` uses on top-``depth`` candidate
    lists, as serving over a vector store does) is then chosen the same way among 0, 0.05, …, 1.

    ``prior`` with ``p_value``: the choice replaces ``prior`` (e.g. the default checkpoint's fusion, chosen on
    thousands of judged queries) only when it beats it on the dev queries by a one-sided paired t-test at
    ``p_value``. Why: on a few dozen dev queries every weight can tie (or win by noise), and a user's checkpoint
    should not fuse worse than the base model's.
    """
    if not devs:
        raise InvalidInputError("choose_fusion: no dev set given")
    curve = []
    for fusion in grid:
        per_set = {dev.name: round(dev.metric(fusion, metric), 5) for dev in devs}
        curve.append({**fusion.to_dict(), "mean": round(float(np.mean(list(per_set.values()))), 5),
                      "per_set": per_set})
    best = max(range(len(curve)), key=lambda i: (curve[i]["mean"], -i))
    chosen = grid[best]
    candidate_curve = []
    if chosen.method == "blend":
        for i in range(21):
            trial = replace(chosen, candidate_lexical_weight=round(i / 20, 2))
            per_set = {dev.name: round(dev.metric(trial, metric, candidates=True), 5) for dev in devs}
            candidate_curve.append({"candidate_lexical_weight": trial.candidate_lexical_weight,
                                    "mean": round(float(np.mean(list(per_set.values()))), 5), "per_set": per_set})
        top = max(range(len(candidate_curve)), key=lambda i: (candidate_curve[i]["mean"], -i))
        chosen = replace(chosen, candidate_lexical_weight=candidate_curve[top]["candidate_lexical_weight"])
    guard = None
    if prior is not None and p_value is not None and chosen != prior:
        a, b = _per_query(devs, chosen, metric), _per_query(devs, prior, metric)
        t = paired_test(a, b)
        p_one = t["p_ttest"] / 2 if t["mean_diff"] > 0 else 1.0
        guard = {"prior": prior.to_dict(), "mean_diff": t["mean_diff"], "p_one_sided": p_one, "n": t["n"],
                 "threshold": p_value, "kept_choice": p_one < p_value}
        if p_one >= p_value:
            chosen = prior
    record = {
        "fusion": chosen.to_dict(),
        "chosen_on": {"dev": [dev.name for dev in devs], "metric": metric, "mean": curve[best]["mean"],
                      "normalised_over": "the whole corpus, per query (HybridRetriever)",
                      "num_queries": {dev.name: len(dev.query_ids) for dev in devs}},
        "dev_curve": curve,
        "candidate_dev_curve": candidate_curve,
    }
    if guard is not None:
        record["guard"] = guard
    return chosen, record


def _per_query(devs: Sequence[DevScores], fusion: Fusion, metric: str) -> dict[str, float]:
    return {f"{dev.name}\0{q}": v for dev in devs
            for q, v in dev.evaluate(fusion)["per_query"][metric].items()}
