"""The exact hybrid retriever: every document scored densely (numpy) and by BM25, fused over the whole corpus.

This is the evaluation path (and fine for corpora that fit in memory). Serving over a vector store that only
returns its top k fuses candidate lists instead (:meth:`jepa_rag.fusion.Fusion.fuse`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .data import doc_text
from .encoder import JEPAEncoder, validate_texts
from .errors import InvalidInputError
from .fusion import Fusion, fusion_of, top_k
from .lexical import LexicalIndex, _check_ids

QUERY_BATCH = 256


class HybridRetriever:
    """Dense (``encoder``) + BM25 over one corpus, fused by ``fusion``.

    ``corpus`` holds ``{"title", "text"}`` dicts or strings, aligned with ``ids``; BM25 indexes the same text the
    encoder embeds. ``fusion=None`` takes the fusion stored in the encoder's checkpoint (the default
    checkpoint's for the plain base model). ``lexical`` reuses a built index (its ids must equal ``ids``).
    Dense and BM25 scores are normalised over the whole corpus per query (:meth:`Fusion.fuse_scores`).
    """

    def __init__(self, encoder: JEPAEncoder, ids: Sequence[str], corpus: Sequence[dict | str], *,
                 fusion: Fusion | None = None, lexical: LexicalIndex | None = None,
                 show_progress_bar: bool | None = None):
        self.encoder = encoder
        self.ids = _check_ids(ids)
        if isinstance(corpus, (str, bytes)):
            raise InvalidInputError("corpus: expected a list of documents, got a single string; wrap it in a list")
        corpus = list(corpus)
        if len(corpus) != len(self.ids):
            raise InvalidInputError(f"ids and corpus differ in length ({len(self.ids)} ids, {len(corpus)} documents)")
        self.fusion = fusion if fusion is not None else fusion_of(encoder.checkpoint_path)
        if not isinstance(self.fusion, Fusion):
            raise InvalidInputError(f"fusion: expected a jepa_rag.Fusion, got {type(self.fusion).__name__}")
        if lexical is None:
            texts = validate_texts([doc_text(d) if isinstance(d, (dict, str)) else d for d in corpus], "corpus")
            lexical = LexicalIndex(self.ids, texts, show_progress_bar=show_progress_bar)
        elif list(lexical.ids) != self.ids:
            raise InvalidInputError("lexical: the index's ids differ from ids (another corpus, or another order)")
        self.lexical = lexical
        self.doc_vectors = (encoder.encode_corpus(corpus, show_progress_bar=show_progress_bar) if corpus
                            else np.zeros((0, encoder.dim), dtype=np.float32))

    def __len__(self) -> int:
        return len(self.ids)

    def scores(self, queries: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """Whole-corpus dense and BM25 scores, each (Q, N) in :attr:`ids` order."""
        queries = validate_texts(queries, "queries")
        dense = self.encoder.similarity(self.encoder.encode_queries(queries), self.doc_vectors) if queries \
            else np.zeros((0, len(self.ids)), dtype=np.float32)
        return dense, self.lexical.score_all(queries)

    def retrieve(self, queries: Sequence[str], k: int = 10) -> list[list[tuple[str, float]]]:
        """The ``k`` best ``(id, fused score)`` per query, best first (``k`` capped at the corpus size)."""
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
