"""A label-free blend weight per collection (issue 25): pseudo-queries vs the fixed default, on dev, then test once.

    python -m experiments.fusion_choice --warm      # only encode the pseudo-queries and targets (fills the cache)
    python -m experiments.fusion_choice --dev       # dev collections only (method choices are made here)
    python -m experiments.fusion_choice             # dev + test; writes benchmarks/results/fusion_choice.{md,json}

Collections (the weight is chosen from the documents alone, so one choice per collection and seed serves both its
dev and test queries):

- SciFact corpus: dev = ``qrels/train.tsv``, test = ``qrels/test.tsv``;
- NFCorpus corpus: dev = ``qrels/dev.tsv``, test = ``qrels/test.tsv``;
- MS MARCO pairs as a retrieval set: the 6,978 distinct positives are the corpus, the 6,980 queries (MS MARCO
  dev-small) judge their own positive: dev only (all-mpnet-base-v2 was trained on MS MARCO: dense far ahead).
- Synthetic mismatch ``scifact-garbled``: SciFact whose lexical field is damaged while its embeddings are not
  (as when BM25 indexes a badly extracted or differently worded copy): the BM25 index holds the documents with
  three word types in four (chosen by a hash of the word, fixed in advance) spelled backwards, so queries
  (clean) miss most of their words there; the dense side keeps the clean vectors. Dev = SciFact train queries.
  The pseudo-queries are the same clean ones as SciFact's; their targets are garbled the same way for BM25.

Encoder: the default checkpoint (as ``--retriever hybrid`` uses it); base vectors of the datasets' texts come from
the verified precomputed files (fp32), the pseudo-queries and their targets are encoded with MPNet through the
base-vector cache under bf16 autocast (this CPU computes bf16 natively: ~1.7x faster; bf16 vectors agree with fp32
to cosine >= 0.9997). Seeds are the pseudo-query sample's.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from benchmarks._support import cpu_model
from jepa_rag import Fusion, JEPAEncoder, LexicalIndex, paired_test
from jepa_rag.data import beir_folder, load_beir, load_msmarco_pairs
from jepa_rag.fusion import fusion_of
from jepa_rag.fusion_choice import DEPTH, GRID, N_QUERIES, choose_weight, dense_side, lexical_side, pseudo_queries
from jepa_rag.precomputed import import_beir_embeddings, import_msmarco_embeddings
from jepa_rag.retriever import DevScores

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
BEIR = {"scifact": ("train", "test"), "nfcorpus": ("dev", "test")}
COLLECTIONS = ("scifact", "nfcorpus", "msmarco", "scifact-garbled")
ENCODED = ("scifact", "nfcorpus", "msmarco")  # the collections whose pseudo-queries need encoding
LABEL_FREE_TODAY = 0.5595  # default checkpoint, --retriever hybrid (w = 0.25), SciFact + NFCorpus test average


@dataclass
class Collection:
    name: str
    ids: list[str]
    docs: list  # {"title", "text"} dicts, or strings
    texts: list[str]  # what both sides index (title + " " + text)
    doc_vectors: np.ndarray
    lexical: LexicalIndex
    splits: dict[str, DevScores] = field(default_factory=dict)
    lexical_view: Callable[[str], str] = str  # how BM25 sees a text (the garbled collection's damage)


def garble(text: str) -> str:
    """Three word types in four (by a hash of the lower-cased word) spelled backwards."""
    return " ".join(w[::-1] if hashlib.sha1(w.lower().encode()).digest()[0] % 4 else w for w in text.split())


def load(name: str, enc: JEPAEncoder, loaded: dict | None = None) -> Collection:
    if name == "scifact-garbled":
        base = (loaded or {}).get("scifact") or load("scifact", enc)
        gtexts = [garble(t) for t in base.texts]
        lexical = LexicalIndex(base.ids, gtexts)
        ds = load_beir(beir_folder("scifact"), BEIR["scifact"][0])
        dev = base.splits["dev"]
        dev = DevScores("scifact-garbled:train", dev.dense, lexical.score_all([ds.queries[q] for q in dev.query_ids]),
                        dev.query_ids, dev.doc_ids, dev.qrels)
        return Collection(name, base.ids, base.docs, gtexts, base.doc_vectors, lexical, {"dev": dev}, garble)
    if name == "msmarco":
        pairs = load_msmarco_pairs()
        import_msmarco_embeddings(enc, pairs, "auto")
        first: dict[str, str] = {}  # passage text -> the id of its first query (two passages repeat)
        for qid, text in zip(pairs.query_ids, pairs.positives):
            first.setdefault(text, qid)
        ids, texts = list(first.values()), list(first)
        qrels = {q: {first[t]: 1} for q, t in zip(pairs.query_ids, pairs.positives)}
        lexical = LexicalIndex(ids, texts)
        dvec = enc.apply_heads(enc.embed_base(texts), "document")
        qvec = enc.apply_heads(enc.embed_base(pairs.queries), "query")
        dev = DevScores("msmarco:dev", enc.similarity(qvec, dvec), lexical.score_all(pairs.queries),
                        list(pairs.query_ids), ids, qrels, ignore_identical_ids=False)
        return Collection(name, ids, texts, texts, dvec, lexical, {"dev": dev})
    folder = beir_folder(name)
    import_beir_embeddings(enc, folder, "auto")
    col = None
    for split_name, split in zip(("dev", "test"), BEIR[name]):
        ds = load_beir(folder, split)
        if col is None:
            ids, texts = ds.corpus_texts()
            col = Collection(name, ids, [ds.corpus[i] for i in ids], texts,
                             enc.apply_heads(enc.embed_base(texts), "document"), LexicalIndex(ids, texts))
        qids = list(ds.queries)
        qtexts = [ds.queries[q] for q in qids]
        q = enc.apply_heads(enc.embed_base(qtexts), "query")
        col.splits[split_name] = DevScores(f"{name}:{split}", enc.similarity(q, col.doc_vectors),
                                           col.lexical.score_all(qtexts), qids, col.ids, ds.qrels)
    return col


def pseudo_encoder() -> JEPAEncoder:
    return JEPAEncoder.from_pretrained("default", precision="bf16")


def sides(col: Collection, enc: JEPAEncoder, seed: int, penc: JEPAEncoder):
    """The exact sides, over the collection (``penc`` encodes the pseudo-queries and targets); the average
    document length from the pseudo-query sample's docs."""
    sample = pseudo_queries(col.ids, col.docs, n=N_QUERIES, seed=seed)
    by_id = dict(zip(col.ids, col.texts))  # as BM25 sees them
    dense = dense_side(col.ids, col.doc_vectors, lambda t: penc.apply_heads(penc.embed_base(t), "query"),
                       lambda t: penc.apply_heads(penc.embed_base(t), "document"), enc.similarity)
    lexical = lexical_side(col.lexical, [by_id[p.source_id] for p in sample])
    return dense, lambda q, t, k: lexical(q, [col.lexical_view(x) for x in t], k)


# ------------------------------------------------------------------------------------------------ query-adaptive
def adaptive_weights(s: DevScores, prior: float, ref: float) -> np.ndarray:
    """Per-query weight from the sides' confidence: each side's top-1 whole-collection z-score; the weight is the
    prior scaled by (BM25 z / dense z) relative to ``ref`` (that ratio's median on the pooled dev queries),
    clipped to [0, 1]. A query whose BM25 best match stands out less than its dense one leans on dense."""
    return np.clip(prior * confidence_ratio(s) / ref, 0.0, 1.0)


def confidence_ratio(s: DevScores) -> np.ndarray:
    zd = (s.dense.max(axis=1) - s.dense.mean(axis=1)) / np.maximum(s.dense.std(axis=1), 1e-9)
    zl = (s.lexical.max(axis=1) - s.lexical.mean(axis=1)) / np.maximum(s.lexical.std(axis=1), 1e-9)
    return zl / np.maximum(zd, 1e-9)


def per_query_fused(s: DevScores, w: np.ndarray) -> dict:
    f = Fusion()
    fused = (1 - w)[:, None] * f._normalize(s.dense) + w[:, None] * f._normalize(s.lexical)
    from jepa_rag.fusion import top_k
    from jepa_rag.metrics import evaluate_run

    run = {q: dict(h) for q, h in zip(s.query_ids, top_k(fused, s.doc_ids, 100))}
    return evaluate_run(s.qrels, run, ignore_identical_ids=s.ignore_identical_ids)


def ndcg(s: DevScores, w: float) -> dict:
    r = s.evaluate(Fusion(lexical_weight=w))
    return {"ndcg@10": r["metrics"]["ndcg@10"], "per_query": r["per_query"]["ndcg@10"]}


# ------------------------------------------------------------------------------------------------ run
def warm(seeds: list[int], log=print) -> None:
    enc, penc = JEPAEncoder.from_pretrained("default", precision="fp32"), pseudo_encoder()
    cols = {name: load(name, enc) for name in ENCODED}
    for seed in seeds:
        for name, col in cols.items():
            t = time.perf_counter()
            pqs = pseudo_queries(col.ids, col.docs, n=N_QUERIES, seed=seed)
            texts = [p.query for p in pqs] + [p.target for p in pqs]
            for start in range(0, len(texts), 16):  # small chunks: each is committed to the cache when done
                penc.embed_base(texts[start:start + 16])
            log(f"{name} seed {seed}: {len(pqs)} pseudo-queries encoded in {time.perf_counter() - t:.1f} s",
                flush=True)


def run(seeds: list[int], with_test: bool, log=print) -> dict:
    t0 = time.time()
    enc = JEPAEncoder.from_pretrained("default", precision="fp32")
    prior = fusion_of(enc.checkpoint_path).lexical_weight
    out: dict = {"cpu": cpu_model(), "seeds": seeds, "prior": prior, "grid": list(GRID), "n_queries": N_QUERIES,
                 "depth": DEPTH, "collections": {}}
    cols: dict[str, Collection] = {}
    for name in COLLECTIONS:
        cols[name] = load(name, enc, cols)
    penc = pseudo_encoder()
    ref = float(np.median(np.concatenate([confidence_ratio(cols[n].splits["dev"]) for n in BEIR])))
    out["adaptive_ref"] = ref
    for name, col in cols.items():
        rec: dict = {"documents": len(col.ids), "choices": [], "splits": {}}
        for seed in seeds:
            d, lx = sides(col, enc, seed, penc)
            t = time.perf_counter()
            choice = choose_weight(col.ids, col.docs, d, lx, prior=prior, seed=seed)
            rec["choices"].append({**choice.to_dict(), "wall_seconds": round(time.perf_counter() - t, 2)})
            log(f"{name} seed {seed}: w = {choice.lexical_weight:g} ({choice.reason}) "
                f"[{time.perf_counter() - t:.1f} s]")
        for split, s in col.splits.items():
            if split == "test" and not with_test:
                continue
            rows = {"dense": ndcg(s, 0.0), "default": ndcg(s, prior)}
            curve = {f"{w:g}": round(s.metric(Fusion(lexical_weight=w)), 5) for w in GRID[::2]}
            autos = [ndcg(s, c["lexical_weight"]) for c in rec["choices"]]
            pq = {q: float(np.mean([a["per_query"][q] for a in autos])) for q in autos[0]["per_query"]}
            ad = per_query_fused(s, adaptive_weights(s, prior, ref))
            rows["adaptive"] = {"ndcg@10": ad["metrics"]["ndcg@10"], "per_query": ad["per_query"]["ndcg@10"]}
            vals = [a["ndcg@10"] for a in autos]
            rec["splits"][split] = {
                "queries": len(s.query_ids), "curve": curve,
                "dense": rows["dense"]["ndcg@10"], "default": rows["default"]["ndcg@10"],
                "adaptive": rows["adaptive"]["ndcg@10"],
                "auto": vals, "auto_mean": float(np.mean(vals)), "auto_std": float(np.std(vals, ddof=1)) if len(vals) > 1 else 0.0,
                "auto_vs_default": paired_test(pq, rows["default"]["per_query"]),
                "auto_vs_dense": paired_test(pq, rows["dense"]["per_query"]),
                "adaptive_vs_default": paired_test(rows["adaptive"]["per_query"], rows["default"]["per_query"]),
            }
            log(f"{name} {split}: dense {rows['dense']['ndcg@10']:.4f} default {rows['default']['ndcg@10']:.4f} "
                f"auto {np.mean(vals):.4f} ± {rec['splits'][split]['auto_std']:.4f} adaptive {rows['adaptive']['ndcg@10']:.4f}")
        out["collections"][name] = rec
    if with_test:
        out["encode_speed"] = encode_speed(penc, cols["scifact"])
        log(f"encoding speed (SciFact pseudo-queries / targets, bf16): {out['encode_speed']}")
        saved = ROOT / "runs" / "fusion_choice_cost.json"  # --cost, run apart
        out["cost"] = json.loads(saved.read_text()) if saved.is_file() else cost(log=log)
    out["seconds"] = round(time.time() - t0, 1)
    return out


# ------------------------------------------------------------------------------------------------ cost
def cost(sizes: tuple[int, ...] = (5_000, 20_000, 100_000), log=print) -> list[dict]:
    """Seconds of ``choose_weight`` by collection size, encoding left out (it is the fixed 2 × n_queries texts;
    the encoder's speed is measured apart): documents are MS MARCO passages, cycled with their words shuffled
    past the first copy; the dense side holds random unit vectors (the cost of scoring them is the same)."""
    import random

    passages = load_msmarco_pairs().positives
    rng = np.random.default_rng(0)
    out = []
    for n in sizes:
        texts = []
        for i in range(n):
            words = passages[i % len(passages)].split()
            if i >= len(passages):
                random.Random(i).shuffle(words)
            texts.append(" ".join(words))
        ids = [f"p{i}" for i in range(n)]
        t = time.perf_counter()
        index = LexicalIndex(ids, texts)
        build = time.perf_counter() - t
        vecs = rng.normal(size=(n, 768)).astype(np.float32)
        vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)

        def fake_encode(batch: list[str]) -> np.ndarray:
            v = rng.normal(size=(len(batch), 768)).astype(np.float32)
            return v / np.linalg.norm(v, axis=1, keepdims=True)

        sample = pseudo_queries(ids, texts, n=N_QUERIES, seed=0)
        dense = dense_side(ids, vecs, fake_encode, fake_encode, lambda a, b: a @ b.T)
        lex = lexical_side(index, [texts[int(p.source_id[1:])] for p in sample])
        t = time.perf_counter()
        choice = choose_weight(ids, texts, dense, lex, prior=0.25)
        secs = time.perf_counter() - t
        out.append({"documents": n, "choose_seconds": round(secs, 2), "bm25_build_seconds": round(build, 2),
                    "n_queries": choice.n_queries})
        log(f"cost at {n} documents: choose_weight {secs:.1f} s (encoding left out), BM25 build {build:.1f} s")
    return out


def encode_speed(enc: JEPAEncoder, col: Collection, seed: int = 99) -> dict:
    """Seconds to encode one seed's pseudo-queries and targets with the base model (not from the cache)."""
    pqs = pseudo_queries(col.ids, col.docs, n=N_QUERIES, seed=seed)
    out = {}
    for what, texts in (("queries", [p.query for p in pqs][:32]), ("targets", [p.target for p in pqs][:32])):
        t = time.perf_counter()
        enc._encode_with_base(texts)
        out[f"{what}_per_second"] = round(len(texts) / (time.perf_counter() - t), 2)
    return out


# ------------------------------------------------------------------------------------------------ report
def write_report(res: dict, out_dir: Path = RESULTS) -> None:
    """benchmarks/results/fusion_choice.{json,md} from a run (per-query values are not in the run)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "fusion_choice.json").write_text(json.dumps(res, indent=2) + "\n")
    prior, seeds = res["prior"], res["seeds"]
    L = ["# A label-free fusion weight per collection (issue 25)", "",
         f"Generated by `python -m experiments.fusion_choice` (wall time {res['seconds']} s on {res['cpu']}, shared "
         f"with other jobs). Encoder: the default checkpoint (all-mpnet-base-v2 + heads); exact hybrid retrieval, both "
         f"sides z-normalised over the whole corpus per query (`HybridRetriever`). The checkpoint's weight (prior) is "
         f"**{prior:g}**. `auto`: `jepa_rag.fusion_choice.choose_weight` with {res['n_queries']} pseudo-queries "
         f"(inverse cloze: a sentence out of a document, the rest as its target; or the title, the text as target), "
         f"each side's top {res['depth']} as competitors, grid 0, 0.05, …, 1, and the paired-test guard toward the "
         f"prior (one-sided, p < 0.05 / 20). Seeds {seeds} are the pseudo-query sample's. No judgment is read by "
         f"the choice; dev judgments only judge it, test is scored once.", "",
         "## 1. The weight each collection gets", "",
         "| collection | documents | seed | chosen w | best pseudo-query w | gain over prior (pseudo NDCG@10) | p (one-sided) | seconds |",
         "|---|---|---|---|---|---|---|---|"]
    for name, rec in res["collections"].items():
        for c in rec["choices"]:
            p = "—" if c["p_value"] is None else f"{c['p_value']:.2g}"
            L.append(f"| {name} | {rec['documents']} | {c['seed']} | **{c['lexical_weight']:g}** | {c['best_weight']:g} | "
                     f"{c['mean_gain']:+.4f} | {p} | {c['wall_seconds']:.1f} |")
    L += ["", "Pseudo-query curves (mean NDCG@10 of the pseudo-queries' targets, seed 0):", "",
          "| collection | " + " | ".join(f"{w:g}" for w in res["grid"][::2]) + " |",
          "|---|" + "---|" * len(res["grid"][::2])]
    for name, rec in res["collections"].items():
        pw = rec["choices"][0]["per_weight"]
        L.append(f"| {name} | " + " | ".join(f"{pw[f'{w:g}']:.3f}" for w in res["grid"][::2]) + " |")

    def table(split: str, title: str) -> list[str]:
        out = [f"## {title}", "",
               "| collection | queries | dense | default (w = prior) | auto (mean ± std over seeds) | auto − default (p) | "
               "auto − max(dense, default) | query-adaptive |",
               "|---|---|---|---|---|---|---|---|"]
        for name, rec in res["collections"].items():
            r = rec["splits"].get(split)
            if r is None:
                continue
            margin = r["auto_mean"] - max(r["dense"], r["default"])
            out.append(f"| {name} | {r['queries']} | {r['dense']:.4f} | {r['default']:.4f} | "
                       f"{r['auto_mean']:.4f} ± {r['auto_std']:.4f} | {r['auto_vs_default']['mean_diff']:+.4f} "
                       f"({r['auto_vs_default']['p_ttest']:.2g}) | {margin:+.4f} | {r['adaptive']:.4f} |")
        return out

    L += [""] + table("dev", "2. Dev collections (judgments used only to judge)")
    dev_ok = all(r["auto_mean"] >= max(r["dense"], r["default"]) - 0.005
                 for rec in res["collections"].values() for sp, r in rec["splits"].items() if sp == "dev")
    devs = [r for rec in res["collections"].values() for sp, r in rec["splits"].items() if sp == "dev"]
    ad_ok = all(r["adaptive"] >= max(r["dense"], r["default"]) - 0.005 for r in devs)
    L += ["", f"Dev criterion (auto ≥ max(dense, default) − 0.005 on every dev collection): "
              f"**{'met' if dev_ok else 'not met'}**. The query-adaptive alternative (per query, the prior scaled by "
              f"the ratio of BM25's to dense's top-1 whole-collection z-score, relative to that ratio's median "
              f"{res['adaptive_ref']:.2f} over the SciFact + NFCorpus dev queries; no judgments): "
              f"**{'met' if ad_ok else 'not met'}**, mean over the dev collections "
              f"{np.mean([r['adaptive'] for r in devs]):.4f} vs auto {np.mean([r['auto_mean'] for r in devs]):.4f}; "
              f"the per-collection choice is what `--fusion auto` ships.", ""]
    L += ["Dev curves of the real queries (NDCG@10 by fixed weight):", "",
          "| collection | " + " | ".join(f"{w:g}" for w in res["grid"][::2]) + " |",
          "|---|" + "---|" * len(res["grid"][::2])]
    for name, rec in res["collections"].items():
        if "dev" in rec["splits"]:
            cv = rec["splits"]["dev"]["curve"]
            L.append(f"| {name} | " + " | ".join(f"{cv[f'{w:g}']:.4f}" for w in res["grid"][::2]) + " |")
    if any("test" in rec["splits"] for rec in res["collections"].values()):
        L += [""] + table("test", "3. Test (scored once)")
        tests = [rec["splits"]["test"] for rec in res["collections"].values() if "test" in rec["splits"]]
        auto_avg = float(np.mean([r["auto_mean"] for r in tests]))
        per_seed = np.mean([r["auto"] for r in tests], axis=0)
        default_avg = float(np.mean([r["default"] for r in tests]))
        ok = auto_avg >= LABEL_FREE_TODAY - 0.003
        L += ["", f"SciFact + NFCorpus test average: auto **{auto_avg:.4f}** (per seed "
                  f"{', '.join(f'{v:.4f}' for v in per_seed)}; std {np.std(per_seed, ddof=1) if len(per_seed) > 1 else 0:.4f}) "
                  f"vs today's label-free {LABEL_FREE_TODAY} (default fusion here: {default_avg:.4f}): criterion "
                  f"(within 0.003 or better) **{'met' if ok else 'not met'}**."]
    g = res["collections"].get("scifact-garbled", {}).get("splits", {}).get("dev")
    if g is not None:
        L += ["", "## Findings", "",
              "- On the three real collections the pseudo-queries' best weight is no calibrated estimate of the real "
              "one: 0.4-0.45 on SciFact, 0.35-0.4 on NFCorpus, 0-0.15 on MS MARCO, where real dev queries peak at "
              "0.25-0.3, 0.1-0.15 and 0.2 (a sentence shares rare terms with the rest of its abstract more than a "
              "user's query does). No seed beats the prior significantly there, so `auto` keeps 0.25 and equals the "
              "default on dev and test: the guard is what makes it safe.",
              f"- Where BM25 is damaged (`scifact-garbled`: the default blend {g['default']:.4f} is below dense "
              f"{g['dense']:.4f}), the pseudo-queries see it clearly (their curve falls from w = 0): per seed "
              f"{', '.join(f'{v:.4f}' for v in g['auto'])}, i.e. w = 0.05 (beats both), w = 0.25 kept (p = 0.0028, "
              "just above the corrected 0.0025: that seed alone misses the 0.005 margin) and w = 0 (= dense). The mean "
              "meets the criterion.",
              "- Only the documents are seen: a mismatch that lives in the queries alone (users' words unlike the "
              "documents') is invisible to pseudo-queries. The query-adaptive weight sees each query, but it lost "
              "on the garbled collection and roughly tied elsewhere, so it is not shipped.",
              "- The choice costs a fixed sample: the encoding of 2 × n_queries texts dominates (minutes on this CPU "
              "for abstract-length targets); what remains is below 10 s at 100K documents even with the exact sides."]
    L += ["", "## 4. Cost", "",
          f"On {res['cpu']}, shared with other jobs. `choose_weight` is a fixed sample: {res['n_queries']} "
          "pseudo-queries and their targets encoded once, then one top-k search per pseudo-query on each side and "
          "the grid. The section-1 seconds read the encodings from the base-vector cache (filled by `--warm`)."]
    if "encode_speed" in res:
        sp = res["encode_speed"]
        L += ["", f"Encoding with MPNet (bf16 autocast, uncached, SciFact): {sp['queries_per_second']:g} pseudo-queries/s, "
                  f"{sp['targets_per_second']:g} targets/s, so the encoding part is about "
                  f"{res['n_queries'] / sp['queries_per_second'] + res['n_queries'] / sp['targets_per_second']:.0f} s "
                  "whatever the collection's size (targets are whole documents; chunked collections have shorter ones)."]
    if "cost" in res:
        L += ["", "Everything but the encoding, by collection size (exact in-memory sides: every document scored on "
                  "both sides, so this part grows with the collection; a serving store's top-k search and maintained "
                  "moments keep it sublinear). Documents: MS MARCO passages, cycled with shuffled words; dense vectors "
                  "random:", "",
              "| documents | choose_weight without encoding (s) | BM25 index build, for scale (s) |", "|---|---|---|"]
        L += [f"| {c['documents']} | {c['choose_seconds']:.1f} | {c['bm25_build_seconds']:.1f} |" for c in res["cost"]]
    (out_dir / "fusion_choice.md").write_text("\n".join(L) + "\n")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--warm", action="store_true")
    p.add_argument("--dev", action="store_true", help="dev collections only: no test split is scored")
    p.add_argument("--cost", action="store_true", help="only measure the cost by collection size (runs/)")
    p.add_argument("--report-only", action="store_true", help="rewrite the report from runs/fusion_choice.json")
    p.add_argument("--out", type=Path, default=RESULTS)
    args = p.parse_args()
    if args.warm:
        warm(args.seeds)
        return
    if args.report_only:
        write_report(json.loads((ROOT / "runs" / "fusion_choice.json").read_text()), args.out)
        return
    if args.cost:
        (ROOT / "runs").mkdir(exist_ok=True)
        (ROOT / "runs" / "fusion_choice_cost.json").write_text(json.dumps(cost(), indent=2))
        return
    res = run(args.seeds, with_test=not args.dev)
    name = "fusion_choice_dev.json" if args.dev else "fusion_choice.json"
    (ROOT / "runs").mkdir(exist_ok=True)
    (ROOT / "runs" / name).write_text(json.dumps(res, indent=2))
    if not args.dev:
        write_report(res, args.out)


if __name__ == "__main__":
    main()
