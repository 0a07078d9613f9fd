"""A label-free blend weight for one collection, chosen from pseudo-queries cut out of its own documents.

A pseudo-query is a sentence taken out of a document (inverse cloze, Lee et al., 2019), or the document's
title; its target is the rest of that document (the text without the sentence, or without the title), so
matching the query's exact words is no shortcut for BM25. Each side scores every pseudo-query against the
collection (its top ``depth``, the other documents' competition) and against its target; the blend
``(1 - w) * z(dense) + w * z(bm25)`` (each side z-normalised with the query's whole-collection mean and
spread, as :meth:`jepa_rag.fusion.Fusion.fuse_scores` does) then ranks the target among the union of both
sides' candidates, for every weight of a grid. The weight whose pseudo-queries rank their targets best (mean
NDCG@10, one relevant document) replaces the checkpoint's weight only when it beats it by a one-sided paired
t-test, Bonferroni-corrected for the grid (the best of 20 alternatives beats any fixed weight by chance alone
one time in a few): on a collection where every weight ties, or the sample is small, the checkpoint's weight
stays.

The cost is a fixed sample (``n_queries`` pseudo-queries: that many query and target encodings, and that
many top-``depth`` searches on each side), not proportional to the collection.

The sides are callables (:data:`SideScorer`: ``side(queries, targets, k) -> SideScores``) so any store can
provide them: the exact in-memory data of :class:`jepa_rag.HybridRetriever` (:func:`dense_side`,
:func:`lexical_side`, both at once :func:`choose_for_encoder`), or a serving collection: the dense side from a
vector store's top k, the targets encoded like documents, and the query's whole-collection mean and spread from
maintained moments of the stored vectors (for cosine over unit vectors, mean = q·m and variance = qᵀSq − (q·m)²
with m the mean vector and S the mean of d dᵀ); the BM25 side from the engine's top k, the target scored with the
engine's document frequencies and average length, and the moments the engine's fusion already keeps.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence
from typing import Any
from dataclasses import asdict, dataclass, field, fields, replace

import numpy as np

from .data import doc_text, split_sentences
from .errors import InvalidInputError

GRID: tuple[float, ...] = tuple(round(i / 20, 2) for i in range(21))
N_QUERIES = 200
DEPTH = 100
P_VALUE = 0.05
MIN_QUERIES = 30  # below this no paired test is trusted: the checkpoint's weight stays


@dataclass(frozen=True)
class PseudoQuery:
    """A query cut out of document ``source_id``; ``target`` is that document without it."""

    source_id: str
    query: str
    target: str
    kind: str  # "sentence" or "title"


@dataclass(frozen=True)
class SideScores:
    """One side's scores for a batch of pseudo-queries (all arrays of length Q, lists aligned with them).

    ``top``: the collection's ``k`` best ``(id, score)`` per query, best first (the function drops the query's
    own source document). ``target``: each query's score against its own target text, scored as if that text
    were a document of the collection (same model; for BM25, the collection's term statistics). ``mean`` and
    ``std``: the query's score mean and standard deviation over every document of the collection (a serving
    store may compute them from maintained moments, e.g. the mean vector and second-moment matrix of its
    embeddings for cosine scores).
    """

    top: list[list[tuple[str, float]]]
    target: np.ndarray
    mean: np.ndarray
    std: np.ndarray


# side(queries, targets, k) -> SideScores
SideScorer = Callable[[list[str], list[str], int], SideScores]


@dataclass(frozen=True)
class FusionChoice:
    """The chosen lexical weight and the evidence behind it (what ``to_dict`` stores with a collection)."""

    lexical_weight: float
    reason: str
    prior_weight: float
    best_weight: float
    n_queries: int
    per_weight: dict[float, float] = field(default_factory=dict)  # mean NDCG@10 of the pseudo-queries
    mean_gain: float = 0.0  # best weight minus prior weight, mean per pseudo-query
    p_value: float | None = None  # one-sided paired t-test, best weight better than the prior weight
    threshold: float = P_VALUE
    seed: int = 0
    seconds: float = 0.0
    mode: str = "auto"  # "auto" (chosen here), "checkpoint" or "fixed" (set by the user)
    documents: int = 0  # the collection's size when chosen: a collection that doubles or halves is chosen again

    def to_dict(self) -> dict:
        d = asdict(self)
        d["per_weight"] = {f"{w:g}": round(v, 5) for w, v in self.per_weight.items()}
        return d

    @classmethod
    def from_dict(cls, d: dict) -> FusionChoice:
        """Read back what :meth:`to_dict` wrote (e.g. from a collection's metadata)."""
        known = {f.name for f in fields(cls)}
        if not isinstance(d, dict) or not {"lexical_weight", "reason", "prior_weight"} <= set(d) or set(d) - known:
            raise InvalidInputError(f"not a stored fusion choice: {d!r:.200}")
        return cls(**{**d, "per_weight": {float(w): float(v) for w, v in (d.get("per_weight") or {}).items()}})


def pseudo_queries(ids: Sequence[str], documents: Sequence[dict | str], *, n: int = N_QUERIES, seed: int = 0,
                   title_share: float = 0.5) -> list[PseudoQuery]:
    """Up to ``n`` pseudo-queries from ``documents`` (``{"title", "text"}`` dicts or strings) aligned with ``ids``.

    Documents are visited in a seeded random order, at most one query each. A document with a title gives its
    title with probability ``title_share`` (target: the text); otherwise a sentence of its text (``split_sentences``:
    6-60 words) is taken out, if it has at least two (target: title + the other sentences). Only the visited
    documents are read: the cost does not grow with the collection.
    """
    if len(ids) != len(documents):
        raise InvalidInputError(f"ids and documents differ in length ({len(ids)} ids, {len(documents)} documents)")
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise InvalidInputError(f"n must be a positive integer, got {n!r}")
    rng = random.Random(seed)
    order = list(range(len(ids)))
    rng.shuffle(order)
    out: list[PseudoQuery] = []
    for i in order:
        if len(out) >= n:
            break
        doc = documents[i]
        title, text = ((str(doc.get("title") or "").strip(), str(doc.get("text") or "").strip())
                       if isinstance(doc, dict) else ("", str(doc).strip()))
        if title and text and rng.random() < title_share:
            out.append(PseudoQuery(str(ids[i]), title, text, "title"))
            continue
        sents = split_sentences(text)
        if len(sents) < 2:
            continue
        pick = sents[rng.randrange(len(sents))]
        rest = " ".join(s for s in sents if s != pick)
        if not rest.strip():  # every sentence repeats the one taken out: no target left
            continue
        out.append(PseudoQuery(str(ids[i]), pick, doc_text({"title": title, "text": rest}), "sentence"))
    return out


def rank_gains(queries: Sequence[PseudoQuery], dense: SideScores, lexical: SideScores,
               grid: Sequence[float] = GRID, depth: int = DEPTH) -> np.ndarray:
    """NDCG@10 of each pseudo-query's target (one relevant document) under every blend weight: (Q, len(grid)).

    Competitors: the union of both sides' top ``depth`` (the source document left out); a competitor only one
    side returned gets the other side's lowest returned score (it ranked below all of them there), as
    :meth:`jepa_rag.fusion.Fusion.fuse` does. Ties count against the target.
    """
    w = np.asarray(grid, dtype=np.float64)[None, :]
    out = np.zeros((len(queries), w.shape[1]))
    for i, pq in enumerate(queries):
        (dz, dt, dfloor), (lz, lt, lfloor) = (_standardised(s, i, pq.source_id, depth) for s in (dense, lexical))
        cand = list(dict.fromkeys([*dz, *lz]))
        cd = np.array([dz.get(c, dfloor) for c in cand])[:, None]
        cl = np.array([lz.get(c, lfloor) for c in cand])[:, None]
        fused = (1 - w) * cd + w * cl  # (C, G)
        target = (1 - w) * dt + w * lt  # (1, G)
        rank = 1 + (fused >= target).sum(axis=0)
        out[i] = np.where(rank <= 10, 1.0 / np.log2(rank + 1), 0.0)
    return out


def _standardised(s: SideScores, i: int, source_id: str, depth: int) -> tuple[dict[str, float], float, float]:
    """Query ``i``'s competitors (id -> z-score, the source left out), its target's z-score and the competitors'
    lowest z-score, z taken with the query's whole-collection mean and spread (a constant side gives zeros)."""
    mean, std = float(s.mean[i]), float(s.std[i])
    top = [(d, v) for d, v in s.top[i] if d != source_id][:depth]

    def z(x: float) -> float:
        return (float(x) - mean) / std if std > 0 else 0.0

    comp = {d: z(v) for d, v in top}
    return comp, z(s.target[i]), min(comp.values()) if comp else 0.0


def choose_weight(ids: Sequence[str], documents: Sequence[dict | str], dense: SideScorer, lexical: SideScorer, *,
                  prior: float, n_queries: int = N_QUERIES, seed: int = 0, grid: Sequence[float] = GRID,
                  depth: int = DEPTH, p_value: float = P_VALUE) -> FusionChoice:
    """Choose the blend weight for the collection ``documents`` belong to (they may be a sample of it).

    ``prior`` is the checkpoint's weight (:attr:`jepa_rag.fusion.Fusion.lexical_weight`): the choice moves
    away from it only when the best grid weight beats it on the pseudo-queries by a one-sided paired t-test
    at ``p_value`` divided by the number of alternatives in ``grid``, with at least :data:`MIN_QUERIES`
    pseudo-queries. ``FusionChoice.threshold`` is that corrected level.
    """
    from .metrics import paired_test

    if isinstance(prior, bool) or not isinstance(prior, (int, float)) or not 0.0 <= prior <= 1.0:
        raise InvalidInputError(f"prior must be a weight in [0, 1], got {prior!r}")
    grid = sorted({float(g) for g in grid} | {float(prior)})
    if any(not 0.0 <= g <= 1.0 for g in grid):
        raise InvalidInputError(f"grid: every weight must be in [0, 1], got {grid}")
    threshold = p_value / max(len(grid) - 1, 1)
    start = time.perf_counter()
    pqs = pseudo_queries(ids, documents, n=n_queries, seed=seed)

    def done(weight: float, reason: str, **kw) -> FusionChoice:
        return FusionChoice(float(weight), reason, float(prior), kw.pop("best", float(prior)), len(pqs), seed=seed,
                            threshold=threshold, seconds=round(time.perf_counter() - start, 3), **kw)

    if len(pqs) < MIN_QUERIES:
        return done(prior, f"only {len(pqs)} pseudo-queries (under {MIN_QUERIES}): too little evidence, "
                           "the checkpoint's weight is kept")
    qs, ts = [p.query for p in pqs], [p.target for p in pqs]
    gains = rank_gains(pqs, _checked(dense(qs, ts, depth + 1), len(pqs), "dense"),
                       _checked(lexical(qs, ts, depth + 1), len(pqs), "lexical"), grid, depth)
    means = gains.mean(axis=0)
    best = int(max(range(len(grid)), key=lambda j: (round(float(means[j]), 9), -abs(grid[j] - prior))))
    at_prior = grid.index(float(prior))
    per_weight = {g: float(m) for g, m in zip(grid, means)}
    if best == at_prior:
        return done(prior, "the checkpoint's weight ranks the pseudo-queries' documents best", per_weight=per_weight)
    t = paired_test(dict(enumerate(gains[:, best])), dict(enumerate(gains[:, at_prior])))
    p_one = t["p_ttest"] / 2 if t["mean_diff"] > 0 else 1.0
    kw = dict(per_weight=per_weight, best=grid[best], mean_gain=t["mean_diff"], p_value=p_one)
    if p_one < threshold:
        return done(grid[best], f"weight {grid[best]:g} ranks the pseudo-queries' documents better than the "
                                f"checkpoint's {prior:g} (+{t['mean_diff']:.4f} NDCG@10, p = {p_one:.2g})", **kw)
    return done(prior, f"weight {grid[best]:g} is not significantly better than the checkpoint's {prior:g} "
                       f"(+{t['mean_diff']:.4f} NDCG@10, p = {p_one:.2g} >= {threshold:.2g}): kept", **kw)


def _checked(s: SideScores, n: int, name: str) -> SideScores:
    if not isinstance(s, SideScores):
        raise InvalidInputError(f"{name} side: expected SideScores, got {type(s).__name__}")
    for what in ("target", "mean", "std"):
        arr = np.asarray(getattr(s, what))
        if arr.shape != (n,) or not np.isfinite(arr).all():
            raise InvalidInputError(f"{name} side: {what} must hold {n} finite numbers, got shape {arr.shape}")
    if len(s.top) != n:
        raise InvalidInputError(f"{name} side: top must hold {n} lists, got {len(s.top)}")
    return s


# ------------------------------------------------------------------------------------------------ exact sides
def dense_side(ids: Sequence[str], doc_vectors: np.ndarray, encode_queries: Callable[[list[str]], np.ndarray],
               encode_documents: Callable[[list[str]], np.ndarray],
               similarity: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> SideScorer:
    """The dense side over in-memory document vectors (every document scored: exact moments and top k)."""
    ids = list(ids)

    def side(queries: list[str], targets: list[str], k: int) -> SideScores:
        q = encode_queries(queries)
        scores = np.asarray(similarity(q, doc_vectors), dtype=np.float64)
        tv = encode_documents(targets)
        target = np.array([float(similarity(q[i:i + 1], tv[i:i + 1])[0, 0]) for i in range(len(queries))])
        return SideScores(_top(scores, ids, k), target, scores.mean(axis=1), scores.std(axis=1))

    return side


def lexical_side(index, sample_texts: Sequence[str]) -> SideScorer:
    """The BM25 side over an in-memory :class:`jepa_rag.LexicalIndex` (every document scored).

    A target text is scored with the index's own term statistics (document frequencies, BM25 k1 and b); the
    average document length, which the index does not keep, is estimated from ``sample_texts`` (a sample of the
    collection's texts: a few hundred give it within a few per cent).
    """
    ids = list(index.ids)
    bm25 = index._bm25
    lengths = [len(t) for t in index._tokenize(list(sample_texts))] if sample_texts else []
    avg_len = float(np.mean(lengths)) if lengths and np.mean(lengths) > 0 else 1.0

    def side(queries: list[str], targets: list[str], k: int) -> SideScores:
        scores = np.asarray(index.score_all(queries), dtype=np.float64)
        target = np.zeros(len(queries))
        if bm25 is not None:
            indptr = np.asarray(bm25.scores["indptr"])
            n_docs = bm25.scores["num_docs"]
            for i, (qt, tt) in enumerate(zip(index._tokenize(list(queries)), index._tokenize(list(targets)))):
                tf: dict[str, int] = {}
                for tok in tt:
                    tf[tok] = tf.get(tok, 0) + 1
                norm = bm25.k1 * (1 - bm25.b + bm25.b * len(tt) / avg_len)
                for tok in qt:
                    tid = bm25.vocab_dict.get(tok)
                    if tid is None or tok not in tf:
                        continue
                    df = int(indptr[tid + 1] - indptr[tid])
                    idf = np.log(1 + (n_docs - df + 0.5) / (df + 0.5))
                    target[i] += idf * tf[tok] / (tf[tok] + norm)
        return SideScores(_top(scores, ids, k), target, scores.mean(axis=1), scores.std(axis=1))

    return side


def _top(scores: np.ndarray, ids: list[str], k: int) -> list[list[tuple[str, float]]]:
    k = min(k, len(ids))
    if k == 0:
        return [[] for _ in scores]
    idx = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    out = []
    for row, cols in zip(scores, idx):
        cols = cols[np.argsort(-row[cols], kind="stable")]
        out.append([(ids[j], float(row[j])) for j in cols])
    return out


def choose_for_encoder(encoder, ids: Sequence[str], documents: Sequence[dict | str], doc_vectors: np.ndarray,
                       lexical, *, prior: float, seed: int = 0, n_queries: int = N_QUERIES) -> FusionChoice:
    """:func:`choose_weight` over in-memory data: ``encoder`` (a :class:`jepa_rag.JEPAEncoder`), its document
    vectors for ``documents`` and the :class:`jepa_rag.LexicalIndex` over the same texts (as
    :class:`jepa_rag.HybridRetriever` holds them)."""
    sample = pseudo_queries(ids, documents, n=n_queries, seed=seed)
    by_id = dict(zip(ids, documents))
    dense = dense_side(ids, doc_vectors, encoder.encode_queries, encoder.encode_documents, encoder.similarity)
    lex = lexical_side(lexical, [doc_text(by_id[p.source_id]) for p in sample])
    return choose_weight(ids, documents, dense, lex, prior=prior, seed=seed, n_queries=n_queries)


# ------------------------------------------------------------------------------------------------ serving sides
def store_dense_side(query: Callable[..., dict], embed_queries: Callable[[list[str]], np.ndarray],
                     embed_documents: Callable[[list[str]], np.ndarray],
                     moments: tuple[np.ndarray, np.ndarray]) -> SideScorer:
    """The dense side of a cosine-space vector store: its top k (``query(query_embeddings=, n_results=,
    include=["distances"])``, chromadb's signature, distance ``1 - cos``), the target's cosine, and the query's
    whole-collection mean and spread from the stored unit vectors' mean ``m`` and second moment ``S``."""
    from .lexical_store import cosine_moments

    def side(queries: list[str], targets: list[str], k: int) -> SideScores:
        q = _unit(embed_queries(queries))
        t = _unit(embed_documents(targets))
        found = query(query_embeddings=q.tolist(), n_results=k, include=["distances"])
        top = [[(str(i), 1.0 - float(d)) for i, d in zip(ids, dist)]
               for ids, dist in zip(found["ids"], found["distances"])]
        mean, std = cosine_moments(q, moments)  # as the query path normalises
        return SideScores(top, (q * t).sum(axis=1), mean, std)

    return side


def store_lexical_side(store, sample_texts: Sequence[str]) -> SideScorer:
    """The BM25 side of a :class:`jepa_rag.LexicalStore`: its top k, the target scored by the engine's BM25 (its
    document frequencies; the average length estimated from ``sample_texts``), and the query's whole-collection
    mean and spread as the serving path estimates them (:meth:`jepa_rag.LexicalStore.bm25_moments`)."""
    from .lexical_store import BM25_B, K1

    lengths = [len(t) for t in store.tokenize(list(sample_texts))]
    avg_len = float(np.mean(lengths)) if lengths and np.mean(lengths) > 0 else 1.0

    def side(queries: list[str], targets: list[str], k: int) -> SideScores:
        top, target, mean, std = [], np.zeros(len(queries)), np.zeros(len(queries)), np.zeros(len(queries))
        for i, (qt, tt) in enumerate(zip(store.tokenize(list(queries)), store.tokenize(list(targets)))):
            hits = store.search(qt, k)
            top.append(list(zip(store.ids_at([addr for _, _, addr in hits]), (score for _, score, _ in hits))))
            mean[i], std[i] = store.bm25_moments(qt, [(key, score) for key, score, _ in hits], len(hits) < k)
            norm = K1 * (1 - BM25_B + BM25_B * len(tt) / avg_len)
            for term, (_, idf) in store._idf(qt).items():
                tf = tt.count(term)
                if tf:
                    target[i] += idf * (1 + K1) * tf / (tf + norm)  # a distinct query term counts once
        return SideScores(top, target, mean, std)

    return side


def _unit(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def choose_for_collection(collection, *, embedding_function=None, prior: float, seed: int = 0,
                          n_queries: int = N_QUERIES, progress: bool = False) -> FusionChoice:
    """:func:`choose_weight` for a serving :class:`jepa_rag.chroma_hybrid.HybridCollection`: pseudo-queries from a
    seeded sample of its lexical store's records, the dense side from Chroma's top k and the stored vectors'
    moments, the BM25 side from the store (what :meth:`~jepa_rag.chroma_hybrid.HybridCollection.hybrid_query`
    sees). ``embedding_function``: a :class:`jepa_rag.chroma.JEPAEmbeddingFunction` (default: the collection's)."""
    start = time.perf_counter()
    store = collection.lexical_index()
    moments = store.moments
    if collection._space() != "cosine" or moments is None:
        return FusionChoice(float(prior), "the collection is not in the cosine space with maintained vector moments, "
                            "so its dense scores cannot be normalised like the query path's: the checkpoint's "
                            "weight is kept", float(prior), float(prior), 0, seed=seed)
    ef = embedding_function if embedding_function is not None else getattr(collection.collection,
                                                                           "_embedding_function", None)
    if ef is None or not callable(getattr(ef, "embed_query", None)):
        raise InvalidInputError("choose_fusion: the collection has no embedding function with a query route; pass "
                                "embedding_function=JEPAEmbeddingFunction(...) (the one it was built with)")
    sample = store.sample(4 * n_queries, seed=seed)
    ids = sorted(sample)  # the same documents in the same order whatever the index's segment layout
    texts = [sample[i][0] for i in ids]
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=2 * min(n_queries, len(ids)), desc="fusion weight: encoding pseudo-queries", unit="text")
    n = len(store)

    def query(**kw):
        kw["n_results"] = max(1, min(kw["n_results"], n))
        return collection.collection.query(**kw)

    try:
        dense = store_dense_side(query, _batched(ef.embed_query, bar), _batched(ef, bar), moments)
        lexical = store_lexical_side(store, texts)
        choice = choose_weight(ids, texts, dense, lexical, prior=prior, seed=seed, n_queries=n_queries)
    finally:
        if bar is not None:
            bar.close()
    return replace(choice, seconds=round(time.perf_counter() - start, 3))


def _batched(embed: Callable[[list[str]], Any], bar, size: int = 16) -> Callable[[list[str]], np.ndarray]:
    def run(texts: list[str]) -> np.ndarray:
        out = []
        for i in range(0, len(texts), size):
            out.extend(np.asarray(embed(texts[i:i + size]), dtype=np.float64))
            if bar is not None:
                bar.update(len(texts[i:i + size]))
        return np.asarray(out).reshape(len(texts), -1)

    return run
