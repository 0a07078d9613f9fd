"""Evaluate a checkpoint (or the vanilla base model) on any BEIR-format folder.

    python -m jepa_rag.evaluate --data <folder> --checkpoint <dir | default | none> \\
        [--embeddings <npz | folder | auto | off>] [--split test] [--scoring cosine|euclidean] \\
        [--retriever dense|hybrid] [--fusion auto|checkpoint|W] --json out.json

Standard protocol: pytrec_eval, ``ignore_identical_ids``, the checkpoint's scoring (cosine for ``none``).
The JSON holds NDCG@10, Recall@100, MRR@10 and per-query values for paired tests. This interface is stable.

Corpora as they come: empty documents and repeated ids (the first wins) are skipped on both retrievers with one
warning (:mod:`jepa_rag.corpus_audit`); the JSON's ``corpus`` section counts them.

``--retriever hybrid`` fuses the dense scores with BM25 over the same documents (:class:`HybridRetriever`, both
sides normalised over the whole corpus), using the fusion stored in the checkpoint (``none``: the default
checkpoint's) unless ``--fusion`` says otherwise: ``auto`` chooses the blend weight from the corpus itself
(:mod:`jepa_rag.fusion_choice`: pseudo-queries cut from the documents, no judgments), a number sets it
(``--lexical-weight W`` is the same as ``--fusion W``).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from .data import beir_folder, load_beir
from .errors import ConfigError, InvalidInputError, JEPARagError
from .fusion import Fusion, fusion_of

if TYPE_CHECKING:  # torch and scipy load when there is something to evaluate, so `jepa-rag evaluate --help` is quick
    from .encoder import JEPAEncoder

# what --retriever hybrid fuses with when --fusion is not given: the checkpoint's weight. ``auto`` met issue 25's
# floors but never moved off that weight on a real collection (SciFact, NFCorpus, MS MARCO; it only helped on a
# synthetic one with a garbled BM25 side) while encoding 400 pseudo-query texts per collection (~3 min with MPNet on
# 2 CPU cores): benchmarks/results/fusion_choice.md. It stays one switch away.
DEFAULT_FUSION = "checkpoint"


def evaluate_beir(
    encoder: JEPAEncoder,
    data: str | Path,
    *,
    split: str = "test",
    embeddings: str | None = "auto",
    scoring: str | None = None,
    top_k: int = 1000,
    show_progress_bar: bool | None = None,
    retriever: str = "dense",
    fusion: Fusion | str | None = None,
    fusion_seed: int = 0,
) -> dict:
    """Retrieve with ``encoder`` on a BEIR folder and score the run. ``scoring`` overrides the checkpoint's (e.g.
    ``"cosine"`` evaluates a seed-protocol checkpoint under the standard protocol; cosine scoring L2-normalises).

    ``retriever="hybrid"`` fuses dense and BM25 scores (:class:`HybridRetriever`) with ``fusion``, by default the
    one the checkpoint stores (:func:`jepa_rag.fusion.fusion_of`); ``fusion="auto"`` keeps its normalisation but
    chooses the blend weight from the corpus itself (:mod:`jepa_rag.fusion_choice`, pseudo-queries drawn with
    ``fusion_seed``; no judgments read), and the result names the weight and its evidence under
    ``"fusion_choice"``."""
    from .metrics import evaluate_run, exact_search
    from .precomputed import import_beir_embeddings
    from .retriever import HybridRetriever

    if retriever not in ("dense", "hybrid"):
        raise InvalidInputError(f"retriever must be 'dense' or 'hybrid', got {retriever!r}")
    folder = beir_folder(str(data))
    ds = load_beir(folder, split)
    imported = import_beir_embeddings(encoder, folder, embeddings)
    doc_ids, doc_texts = ds.corpus_texts()  # the corpus rule already applied: empty documents skipped, said once
    truncated_before = encoder.truncated_texts
    qids = list(ds.queries)
    scoring = scoring or encoder.scoring
    extra: dict = {"retriever": retriever}
    if retriever == "hybrid":
        if scoring != encoder.scoring:
            raise ConfigError("--scoring cannot override the checkpoint's scoring with the hybrid retriever")
        auto = isinstance(fusion, str)
        if auto and fusion != "auto":
            raise InvalidInputError(f"fusion must be a Fusion, 'auto' or None, got {fusion!r}")
        fusion = fusion if isinstance(fusion, Fusion) else fusion_of(encoder.checkpoint_path)
        hybrid = HybridRetriever(encoder, doc_ids, [ds.corpus[i] for i in doc_ids], fusion=fusion,
                                 show_progress_bar=show_progress_bar)
        if auto:
            from .fusion_choice import choose_for_encoder

            choice = choose_for_encoder(encoder, hybrid.ids, [ds.corpus[i] for i in hybrid.ids], hybrid.doc_vectors,
                                        hybrid.lexical, prior=fusion.lexical_weight, seed=fusion_seed)
            fusion = hybrid.fusion = replace(fusion, method="blend", lexical_weight=choice.lexical_weight)
            extra["fusion_choice"] = choice.to_dict()
        hits = hybrid.retrieve([ds.queries[i] for i in qids], k=top_k)
        run = {qid: dict(h) for qid, h in zip(qids, hits)}
        extra["fusion"] = fusion.to_dict()
    else:
        d = encoder.apply_heads(encoder.embed_base(doc_texts, show_progress_bar=show_progress_bar), "document")
        q = encoder.apply_heads(encoder.embed_base([ds.queries[i] for i in qids], show_progress_bar=show_progress_bar),
                                "query")
        run = exact_search(q, qids, d, doc_ids, scoring=scoring, top_k=top_k)
    result = evaluate_run(ds.qrels, run, ignore_identical_ids=True)
    result.update({
        "data": ds.name,
        "split": split,
        "checkpoint": str(encoder.checkpoint_path) if encoder.checkpoint_path else "none",
        "base_fingerprint": encoder.fingerprint.to_dict(),
        "scoring": scoring,
        "normalized": scoring == "cosine" or encoder.normalize,
        "query_route": encoder.query_route,
        "embeddings_imported": imported,
        # truncated: documents longer than the base model's max_seq_length, among those embedded by this call
        # (vectors read from the cache are not re-counted)
        "corpus": {**ds.audit.to_dict(), "truncated": encoder.truncated_texts - truncated_before},
        **extra,
    })
    return result


def main(argv: list[str] | None = None, prog: str = "python -m jepa_rag.evaluate") -> int:
    p = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n\n")[0])
    p.add_argument("--data", required=True, help="BEIR-format folder (or a data-set name under $JEPA_RAG_DATA/beir)")
    p.add_argument("--checkpoint", required=True, help="checkpoint folder, 'default', or 'none' for the vanilla base model")
    p.add_argument("--embeddings", default="auto",
                   help="precomputed base embeddings: an .npz, a folder, 'auto' (shared data folder) or 'off'")
    p.add_argument("--split", default="test")
    p.add_argument("--base-model", default=None, help="override the base model (folder or Hub id)")
    p.add_argument("--scoring", choices=["cosine", "euclidean"], default=None,
                   help="override the checkpoint's scoring (cosine also L2-normalises the outputs)")
    p.add_argument("--top-k", type=int, default=1000)
    p.add_argument("--device", default=None)
    p.add_argument("--precision", choices=["fp32", "bf16"], default="fp32",
                   help="the frozen base's arithmetic: bf16 autocast is ~1.7x faster on CPU (not the precomputed vectors)")
    p.add_argument("--retriever", choices=["dense", "hybrid"], default="dense",
                   help="dense only, or hybrid: dense fused with BM25 over the same documents")
    p.add_argument("--lexical-weight", type=float, default=None,
                   help="hybrid: blend weight of BM25 in [0, 1], overriding the fusion the checkpoint stores")
    p.add_argument("--fusion", type=fusion_arg, default=None, metavar="auto|checkpoint|W",
                   help="hybrid: the blend weight: 'auto' chooses it from the corpus itself (pseudo-queries, no "
                        f"judgments), 'checkpoint' takes the stored one, a number in [0, 1] sets it "
                        f"(default: {DEFAULT_FUSION})")
    p.add_argument("--fusion-seed", type=int, default=0, help="--fusion auto: the pseudo-query sample's seed")
    p.add_argument("--json", required=True, help="where to write the results")
    args = p.parse_args(argv)
    if args.top_k < 1:
        p.error(f"--top-k must be at least 1, got {args.top_k}")
    if args.lexical_weight is not None and args.retriever != "hybrid":
        p.error("--lexical-weight needs --retriever hybrid")
    if args.lexical_weight is not None and not 0.0 <= args.lexical_weight <= 1.0:
        p.error(f"--lexical-weight must be in [0, 1], got {args.lexical_weight}")
    if args.fusion is not None and args.retriever != "hybrid":
        p.error("--fusion needs --retriever hybrid")
    if args.fusion is not None and args.lexical_weight is not None:
        p.error("give --fusion or --lexical-weight, not both")
    choice = args.fusion if args.fusion is not None else args.lexical_weight if args.lexical_weight is not None \
        else DEFAULT_FUSION
    out = Path(args.json)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)  # an unwritable --json fails now, not after the evaluation
        start = time.time()
        from .encoder import JEPAEncoder

        enc = JEPAEncoder.from_pretrained(args.checkpoint, base_model=args.base_model, device=args.device,
                                          precision=args.precision)
        fusion = None if choice == "checkpoint" else choice
        if isinstance(choice, float):  # keep the checkpoint's normalisation; only the weight changes
            stored = fusion_of(enc.checkpoint_path)
            fusion = Fusion(method="blend", lexical_weight=choice, normalization=stored.normalization,
                            depth=stored.depth)
        res = evaluate_beir(enc, args.data, split=args.split, embeddings=args.embeddings, scoring=args.scoring,
                            top_k=args.top_k, retriever=args.retriever, fusion=fusion, fusion_seed=args.fusion_seed)
        res["seconds"] = round(time.time() - start, 2)
        out.write_text(json.dumps(res, indent=2))
    except (JEPARagError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    m = res["metrics"]
    how = res["scoring"] if args.retriever == "dense" else f"hybrid {_describe(Fusion.from_dict(res['fusion']))}"
    print(f"{res['data']} ({args.split}, {res['num_queries']} queries, {how}): "
          f"NDCG@10 {m['ndcg@10']:.4f}  Recall@100 {m['recall@100']:.4f}  MRR@10 {m['mrr@10']:.4f}  → {out}")
    if "fusion_choice" in res:
        c = res["fusion_choice"]
        print(f"fusion auto: w = {c['lexical_weight']:g} from {c['n_queries']} pseudo-queries: {c['reason']}")
    return 0


def fusion_arg(value: str) -> str | float:
    """``--fusion``: 'auto', 'checkpoint' or a blend weight in [0, 1]."""
    if value in ("auto", "checkpoint"):
        return value
    try:
        w = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected 'auto', 'checkpoint' or a weight in [0, 1], got {value!r}") from None
    if not 0.0 <= w <= 1.0:
        raise argparse.ArgumentTypeError(f"a weight must be in [0, 1], got {value}")
    return w


def _describe(f: Fusion) -> str:
    return f"rrf k={f.rrf_k}" if f.method == "rrf" else f"blend w={f.lexical_weight:g} {f.normalization}"


if __name__ == "__main__":
    sys.exit(main())
