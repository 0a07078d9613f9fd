"""Label-free adaptation of the heads to one collection (issue 24): distil our own hybrid ranking on pseudo-queries.

    python -m experiments.adapt --candidates experiments/candidates/adapt.yaml --warm     # encode the pseudo-queries
    python -m experiments.adapt --candidates experiments/candidates/adapt.yaml            # everything below, in turn:
    python -m experiments.adapt --candidates experiments/candidates/adapt.yaml --dev      # the dev grid (seed 0)
    python -m experiments.adapt --candidates experiments/candidates/adapt.yaml --confirm  # its best 3, 3 seeds, dev
    python -m experiments.adapt --candidates experiments/candidates/adapt.yaml --test     # test once -> benchmarks/
    python -m experiments.adapt --cost                                                    # MPNet encoding speed

What is trained. The student is the default checkpoint with its query route switched to the predictor: documents keep
the checkpoint's projection g (so an adapted collection needs no re-embedding and no base-model pass), queries go
through ``p(g(x))`` where p is a fresh residual predictor whose last layer is zero (identity-initialised: before
training the student IS the default checkpoint). Candidates may also train g on the document side (``train: both``).

The teacher is today's label-free hybrid over the whole collection: ``(1 - w) * z(dense) + w * z(bm25)`` with both
sides z-normalised over every document per query (``Fusion.fuse_scores``), the dense side the default checkpoint.
``w = 0.25`` is today's default; ``w = 1`` is BM25 alone.

The pseudo-queries are cut out of the collection (``jepa_rag.fusion_choice.pseudo_queries``, seed 0, 1,400 per
collection, titles and sentences half and half): only they are encoded with MPNet (bf16, through the base-vector
cache); the documents are the collection's precomputed vectors, and the source document stays in the collection
(the sentence or title is still inside it: with ``source: drop`` it is masked out of the teacher and the loss).
The sample's first 200 are held out, inverse-cloze style: each must find its target (its document without it,
encoded too; the source document left out of the competition), as ``jepa_rag.fusion_choice.rank_gains`` scores it.

Losses (student logits: cosine / ``tau_s``; teacher distribution: softmax of the fused z-scores / ``tau_t``):

- ``kl_topk``: KL(teacher || student) over the teacher's top ``k`` candidates of each pseudo-query;
- ``kl_full``: the same over the whole collection;
- ``margin_mse``: the student's whole-collection z-score margins (teacher top-1 minus each other top-``k``
  candidate) regressed on the teacher's (margin-MSE, Hofstätter et al., 2020);
- ``softmax_top1``: full-collection softmax with the teacher's top-1 as the positive (DESIGN §8's recipe).

Selection. Label-free (what would ship): after every epoch the held-out pseudo-queries are ranked by the student's
hybrid (w = 0.25); the epoch with the best mean NDCG@10 of the pseudo-queries' targets is kept, and only if it
beats the untrained student (= the default checkpoint) on those pseudo-queries by a one-sided paired t-test
(p < 0.05), else the untrained heads stay. The recipe (teacher, pseudo-query kind, loss, temperatures, epochs) is
chosen on dev judgments (SciFact train, NFCorpus dev): the grid runs seed 0, its best ``CONFIRM`` candidates (mean
dev hybrid NDCG@10 at each run's label-free epoch, then mean dev dense, to 4 decimals) run again with seeds 0, 1, 2,
and the best of those by the same rule is the choice. How well the label-free signal agrees with the dev judgments is
reported on the side. Test (SciFact test, NFCorpus test) is scored once, for the dev-chosen recipe, 3 seeds (the seed
draws the predictor's init, the dropout and the batch order; the pseudo-query sample is fixed).
"""

from __future__ import annotations

import argparse
import json
import math
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
import yaml

from benchmarks._support import cpu_model
from jepa_rag import JEPAEncoder, LexicalIndex, paired_test
from jepa_rag.config import HeadConfig
from jepa_rag.data import beir_folder, doc_text, load_beir
from jepa_rag.fusion import best_indices
from jepa_rag.fusion_choice import DEPTH, SideScores, _top, lexical_side, pseudo_queries, rank_gains
from jepa_rag.heads import MLPHead
from jepa_rag.metrics import evaluate_run
from jepa_rag.precomputed import import_beir_embeddings

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
RUNS = ROOT / "runs" / "adapt"
SPLITS = {"scifact": ("train", "test"), "nfcorpus": ("dev", "test")}
N_PSEUDO = 1400
N_RARE = 6  # words per rare-terms pseudo-query
N_HELD = 200  # held-out pseudo-queries: the sample's first 200 (their targets are encoded too)
W_DEFAULT = 0.25  # today's default fusion weight (the student is always scored with it)
P_GUARD = 0.05
CONFIRM = 3  # the grid's best candidates rerun with every seed on dev before the choice
MASKED = -1e4  # a masked-out score (a finite stand-in for -inf: KL over exp(-inf) * (-inf) would give NaN)
# today's numbers (benchmarks/results/hybrid.md, test): default checkpoint hybrid and vanilla MPNet dense
TODAY = {"scifact": {"hybrid": 0.7422, "vanilla_dense": 0.6557}, "nfcorpus": {"hybrid": 0.3769, "vanilla_dense": 0.3328}}

DEFAULTS = {"teacher_w": 0.25, "kinds": ["sentence", "title"], "loss": "kl_topk", "tau_s": 0.05, "tau_t": 1.0,
            "k": 50, "source": "keep", "epochs": 12, "lr": 5e-4, "batch": 64, "dropout": 0.1, "train": "predictor",
            "weight_decay": 0.01}


def zscore(s: np.ndarray) -> np.ndarray:
    s = np.asarray(s, dtype=np.float32)
    m, sd = s.mean(axis=1, keepdims=True), s.std(axis=1, keepdims=True)
    return np.where(sd > 0, (s - m) / np.where(sd > 0, sd, 1.0), 0.0).astype(np.float32)


@dataclass
class Split:
    name: str
    qids: list[str]
    xq: np.ndarray  # base vectors (Q, 768)
    lex_z: np.ndarray  # BM25 scores over the collection, z-normalised (Q, N)
    qrels: dict


@dataclass
class Collection:
    name: str
    ids: list[str]
    xd: np.ndarray  # base vectors of the documents (N, 768)
    lexical: LexicalIndex
    splits: dict[str, Split] = field(default_factory=dict)
    pq_kind: np.ndarray | None = None
    pq_x: np.ndarray | None = None
    pq_lex_z: np.ndarray | None = None
    pq_src: np.ndarray | None = None
    held: np.ndarray | None = None
    held_pqs: list = field(default_factory=list)
    held_target_x: np.ndarray | None = None
    held_lex: SideScores | None = None
    seconds: dict = field(default_factory=dict)


def load_split(col: Collection, enc: JEPAEncoder, name: str, split: str) -> Split:
    ds = load_beir(beir_folder(name), split)
    qids = list(ds.queries)
    texts = [ds.queries[q] for q in qids]
    return Split(f"{name}:{split}", qids, enc.embed_base(texts), zscore(col.lexical.score_all(texts)), ds.qrels)


def load_collection(name: str, enc: JEPAEncoder, penc: JEPAEncoder, log=print) -> Collection:
    folder = beir_folder(name)
    import_beir_embeddings(enc, folder, "auto")
    ds = load_beir(folder, SPLITS[name][0])
    ids, texts = ds.corpus_texts()
    t = time.perf_counter()
    lexical = LexicalIndex(ids, texts)
    col = Collection(name, ids, enc.embed_base(texts), lexical)
    col.seconds["bm25_index"] = time.perf_counter() - t
    col.splits["dev"] = load_split(col, enc, name, SPLITS[name][0])
    pqs = pseudo_queries(ids, [ds.corpus[i] for i in ids], n=N_PSEUDO, seed=0, title_share=0.5)
    t = time.perf_counter()
    col.pq_x = penc.embed_base([p.query for p in pqs])
    col.seconds["encode_pseudo_queries"] = time.perf_counter() - t  # from the cache once --warm has run
    t = time.perf_counter()
    col.pq_lex_z = zscore(lexical.score_all([p.query for p in pqs]))
    col.seconds["bm25_pseudo_queries"] = time.perf_counter() - t
    pos = {d: i for i, d in enumerate(ids)}
    # a third kind: the rarest terms of each sampled document (every sampled one past the held-out ones)
    rare_src = [pos[p.source_id] for p in pqs[N_HELD:]]
    rare = rare_terms(texts, rare_src)
    t = time.perf_counter()
    rare_x = penc.embed_base(rare)
    col.seconds["encode_rare_terms"] = time.perf_counter() - t
    col.pq_x = np.concatenate([col.pq_x, rare_x])
    col.pq_lex_z = np.concatenate([col.pq_lex_z, zscore(lexical.score_all(rare))])
    col.pq_src = np.array([pos[p.source_id] for p in pqs] + rare_src)
    col.pq_kind = np.array([p.kind for p in pqs] + ["rare"] * len(rare))
    # held out: the sample's first N_HELD pseudo-queries (a random draw of documents), judged inverse-cloze style:
    # each must find its target (its document without it: encoded, and scored by BM25 with the collection's
    # statistics), competing with the collection's top 100 of each side, its source document left out
    col.held = np.arange(len(col.pq_kind)) < N_HELD
    col.held_pqs = pqs[:N_HELD]
    t = time.perf_counter()
    col.held_target_x = penc.embed_base([p.target for p in col.held_pqs])
    col.seconds["encode_held_out_targets"] = time.perf_counter() - t
    by_id = dict(zip(ids, texts))
    lex_side = lexical_side(lexical, [by_id[p.source_id] for p in col.held_pqs])
    col.held_lex = lex_side([p.query for p in col.held_pqs], [p.target for p in col.held_pqs], DEPTH + 1)
    log(f"{name}: {len(ids)} documents, {len(pqs)} pseudo-queries "
        f"({int((col.pq_kind == 'title').sum())} titles, {int(col.held.sum())} held out)", flush=True)
    return col


_WORD = re.compile(r"[A-Za-z][A-Za-z0-9-]{2,}")


def rare_terms(texts: list[str], rows: list[int], n_terms: int = N_RARE) -> list[str]:
    """For each document ``rows[i]`` of ``texts``: its ``n_terms`` rarest words in the collection (highest IDF among
    words found in at least two documents, stopwords left out), in the order they first appear in it."""
    from bm25s.stopwords import STOPWORDS_EN_PLUS

    stop = set(STOPWORDS_EN_PLUS)
    words = [[w.lower() for w in _WORD.findall(t)] for t in texts]
    df: dict[str, int] = {}
    for ws in words:
        for w in set(ws):
            df[w] = df.get(w, 0) + 1
    out = []
    for r in rows:
        seen = list(dict.fromkeys(w for w in words[r] if w not in stop and df[w] >= 2))
        keep = set(sorted(seen, key=lambda w: (df[w], seen.index(w)))[:n_terms])
        out.append(" ".join(w for w in seen if w in keep) or texts[r][:50])
    return out


# ------------------------------------------------------------------------------------------------ the student
class Student(torch.nn.Module):
    """The default checkpoint's projection g (documents) and a fresh identity-initialised residual predictor p
    (queries: ``p(g(x))``). ``train='predictor'`` freezes g; ``'both'`` trains it too."""

    def __init__(self, default: JEPAEncoder, dropout: float, train_g: bool):
        super().__init__()
        heads = default.jepa_heads
        self.g = MLPHead(heads.config.projection)
        self.g.load_state_dict(heads.projection.state_dict())
        self.g.requires_grad_(train_g)
        self.train_g = train_g
        pc = heads.config.predictor or HeadConfig(768, 768, 2.0, dropout, True)
        self.p = MLPHead(HeadConfig(pc.in_dim, pc.out_dim, pc.hidden_mult, dropout, True))

    def query(self, x: torch.Tensor) -> torch.Tensor:
        g = self.g(x) if self.train_g else self._g_eval(x)
        return F.normalize(self.p(g), dim=-1)

    def document(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.g(x) if self.train_g else self._g_eval(x), dim=-1)

    def _g_eval(self, x: torch.Tensor) -> torch.Tensor:
        was = self.g.training
        self.g.eval()
        with torch.no_grad():
            out = self.g(x)
        self.g.train(was)
        return out

    @torch.no_grad()
    def encode(self, x: np.ndarray, route: str) -> np.ndarray:
        self.eval()
        t = torch.as_tensor(np.asarray(x, dtype=np.float32))
        return (self.query(t) if route == "query" else self.document(t)).numpy()


# ------------------------------------------------------------------------------------------------ scoring
def hybrid(dense: np.ndarray, lex_z: np.ndarray, w: float = W_DEFAULT) -> np.ndarray:
    return (1 - w) * zscore(dense) + w * lex_z


def judged(split: Split, scores: np.ndarray, ids: list[str], top: int = 10) -> dict[str, float]:
    """Per-query NDCG@10 (pytrec_eval through ``evaluate_run``, BEIR's ignore_identical_ids)."""
    run = {q: {ids[j]: float(row[j]) for j in best_indices(row, top + 1)} for q, row in zip(split.qids, scores)}
    return evaluate_run(split.qrels, run)["per_query"]["ndcg@10"]


def score_split(split: Split, qv: np.ndarray, dv: np.ndarray, ids: list[str]) -> dict[str, dict[str, float]]:
    dense = qv @ dv.T
    return {"dense": judged(split, dense, ids), "hybrid": judged(split, hybrid(dense, split.lex_z), ids)}


def mean(d: dict[str, float]) -> float:
    return float(np.mean(list(d.values())))


def one_sided(a, b) -> tuple[float, float]:
    """(mean a − b, one-sided paired t-test p that a > b) over aligned per-query values."""
    a, b = (dict(enumerate(np.asarray(x, dtype=float))) if not isinstance(x, dict) else x for x in (a, b))
    t = paired_test(a, b)
    p = t["p_ttest"] / 2 if t["mean_diff"] > 0 else 1.0 - t["p_ttest"] / 2
    return t["mean_diff"], (p if math.isfinite(p) else 1.0)


# ------------------------------------------------------------------------------------------------ training
def teacher_scores(col: Collection, default_q: np.ndarray, default_d: np.ndarray, w: float) -> np.ndarray:
    """The teacher's fused z-scores (P, N) for every pseudo-query: today's hybrid at weight ``w``."""
    if w >= 1.0:
        return col.pq_lex_z
    return hybrid(default_q @ default_d.T, col.pq_lex_z, w).astype(np.float32)


def loss_fn(kind: str, cos: torch.Tensor, teach: torch.Tensor, cfg: dict) -> torch.Tensor:
    """``cos`` (B, N) student cosines, ``teach`` (B, N) teacher z-scores (masked entries are ``MASKED`` in both)."""
    tau_s, tau_t, k = cfg["tau_s"], cfg["tau_t"], cfg["k"]
    if kind == "kl_full":
        return F.kl_div(F.log_softmax(cos / tau_s, dim=1), F.log_softmax(teach / tau_t, dim=1), log_target=True,
                        reduction="batchmean")
    if kind == "softmax_top1":
        return F.cross_entropy(cos / tau_s, teach.argmax(dim=1))
    top = teach.topk(k, dim=1).indices
    t_top, s_top = teach.gather(1, top), cos.gather(1, top)
    if kind == "kl_topk":
        return F.kl_div(F.log_softmax(s_top / tau_s, dim=1), F.log_softmax(t_top / tau_t, dim=1), log_target=True,
                        reduction="batchmean")
    if kind == "margin_mse":
        finite = torch.where(cos > MASKED / 2, cos, torch.nan)  # the masked source left out of the moments
        mu = finite.nanmean(dim=1, keepdim=True)
        sd = (finite - mu).pow(2).nanmean(dim=1, keepdim=True).sqrt().clamp_min(1e-6)
        zs = (s_top - mu) / sd
        return F.mse_loss(zs[:, :1] - zs[:, 1:], t_top[:, :1] - t_top[:, 1:])
    raise ValueError(f"unknown loss {kind!r}")


def train_one(col: Collection, default: JEPAEncoder, teach_all: np.ndarray, cfg: dict, seed: int,
              with_test: bool = False, log=print) -> dict:
    """Train one student on one collection; per-epoch held-out pseudo-query and dev numbers; label-free and
    dev-oracle epoch selection; test per-query values of the label-free pick when ``with_test``."""
    torch.manual_seed(seed)
    if cfg["train"] == "both" and (cfg["loss"] != "kl_topk" or cfg["source"] != "keep"):
        raise ValueError("train: both sends only the teacher's top-k documents through g: loss kl_topk, source keep")
    student = Student(default, cfg["dropout"], cfg["train"] == "both")
    params = [p for p in student.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=cfg["lr"], weight_decay=cfg["weight_decay"])
    trainable = ~col.held & np.isin(col.pq_kind, cfg["kinds"])
    tr = np.flatnonzero(trainable)
    xq_all = torch.as_tensor(col.pq_x)
    xd = torch.as_tensor(col.xd)
    teach = torch.as_tensor(teach_all)
    src = torch.as_tensor(col.pq_src)
    held = np.flatnonzero(col.held)
    rng = np.random.default_rng(seed)
    splits = {"dev": col.splits["dev"]} | ({"test": col.splits["test"]} if with_test else {})

    fixed_dv = None if student.train_g else student.encode(col.xd, "document")

    def evaluate(epoch: int) -> dict:
        dv = fixed_dv if fixed_dv is not None else student.encode(col.xd, "document")
        hq = student.encode(col.pq_x[held], "query")
        hd = (hq @ dv.T).astype(np.float64)
        tv = student.encode(col.held_target_x, "document")
        dense = SideScores(_top(hd, col.ids, DEPTH + 1), (hq * tv).sum(axis=1), hd.mean(axis=1), hd.std(axis=1))
        gains = rank_gains(col.held_pqs, dense, col.held_lex, (0.0, W_DEFAULT), DEPTH)
        rec = {"epoch": epoch, "held_dense": gains[:, 0], "held_hybrid": gains[:, 1]}
        for name, s in splits.items():
            rec[name] = score_split(s, student.encode(s.xq, "query"), dv, col.ids)
        return rec

    t0 = time.perf_counter()
    hist = [evaluate(0)]
    states = [{k: v.clone() for k, v in student.state_dict().items()}] if with_test else None
    train_s = 0.0
    for epoch in range(1, cfg["epochs"] + 1):
        t = time.perf_counter()
        student.train()
        order = rng.permutation(tr)
        dv_fixed = None if student.train_g else student.document(xd).detach()
        for start in range(0, len(order), cfg["batch"]):
            idx = torch.as_tensor(order[start:start + cfg["batch"]])
            q = student.query(xq_all[idx])
            tb = teach[idx].clone()
            if student.train_g:  # documents through g with gradient: only the batch's teacher top-k candidates
                cand = torch.unique(tb.topk(cfg["k"], dim=1).indices)
                cos = torch.zeros(len(idx), len(xd)).index_copy(1, cand, q @ student.document(xd[cand]).T)
            else:
                cos = q @ dv_fixed.T
            if cfg["source"] == "drop":
                mask = torch.zeros_like(tb, dtype=torch.bool)
                mask[torch.arange(len(idx)), src[idx]] = True
                tb = tb.masked_fill(mask, MASKED)
                cos = cos.masked_fill(mask, MASKED)
            loss = loss_fn(cfg["loss"], cos, tb, cfg)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        train_s += time.perf_counter() - t
        hist.append(evaluate(epoch))
        if states is not None:
            states.append({k: v.clone() for k, v in student.state_dict().items()})
    # label-free pick: best held-out hybrid source-NDCG (epoch 0 included; ties: the earlier), then the guard
    held_means = [float(np.mean(h["held_hybrid"])) for h in hist]
    best = int(np.argmax(held_means))
    gain, p = one_sided(hist[best]["held_hybrid"], hist[0]["held_hybrid"]) if best else (0.0, 1.0)
    pick = best if (best and p < P_GUARD) else 0
    dev_means = [mean(h["dev"]["hybrid"]) for h in hist]
    oracle = int(np.argmax(dev_means))
    out = {
        "collection": col.name, "seed": seed, "train_seconds": round(train_s, 2),
        "seconds": round(time.perf_counter() - t0, 2), "train_queries": int(len(tr)), "held_out": int(len(held)),
        "epochs": [{"epoch": h["epoch"], "held_dense": round(float(np.mean(h["held_dense"])), 5),
                    "held_hybrid": round(float(np.mean(h["held_hybrid"])), 5),
                    "dev_dense": round(mean(h["dev"]["dense"]), 5), "dev_hybrid": round(mean(h["dev"]["hybrid"]), 5)}
                   for h in hist],
        "label_free": {"best_epoch": best, "held_gain": round(gain, 5), "p_one_sided": p, "epoch": pick,
                       "kept": bool(pick)},
        "dev_oracle_epoch": oracle,
        "dev": {"dense": mean(hist[pick]["dev"]["dense"]), "hybrid": mean(hist[pick]["dev"]["hybrid"])},
        "dev_untrained": {"dense": mean(hist[0]["dev"]["dense"]), "hybrid": mean(hist[0]["dev"]["hybrid"])},
        "dev_per_query": hist[pick]["dev"],
    }
    if with_test:
        out["test_per_query"] = hist[pick]["test"]
        out["test"] = {"dense": mean(hist[pick]["test"]["dense"]), "hybrid": mean(hist[pick]["test"]["hybrid"])}
        out["test_untrained"] = {"dense": mean(hist[0]["test"]["dense"]), "hybrid": mean(hist[0]["test"]["hybrid"])}
    log(f"  {col.name} seed {seed}: label-free epoch {pick} (best held-out {best}, +{gain:.4f}, p={p:.2g}) "
        f"dev dense {out['dev']['dense']:.4f} hybrid {out['dev']['hybrid']:.4f} "
        f"(untrained {out['dev_untrained']['dense']:.4f} / {out['dev_untrained']['hybrid']:.4f}; dev-best epoch "
        f"{oracle}: {dev_means[oracle]:.4f}) [{out['seconds']:.0f} s]", flush=True)
    return out


# ------------------------------------------------------------------------------------------------ run
def load_candidates(path: Path) -> dict:
    spec = yaml.safe_load(Path(path).read_text())
    base = {**DEFAULTS, **(spec.get("defaults") or {})}
    cands = {name: {**base, **(over or {})} for name, over in spec["candidates"].items()}
    return {"seeds": spec.get("seeds", [0, 1, 2]), "dev_seeds": spec.get("dev_seeds", [0]), "candidates": cands}


def setup(log=print) -> tuple[JEPAEncoder, dict[str, Collection]]:
    torch.set_num_threads(1)
    enc = JEPAEncoder.from_pretrained("default", precision="fp32")
    penc = JEPAEncoder.from_pretrained("default", precision="bf16")
    cols = {n: load_collection(n, enc, penc, log) for n in SPLITS}
    return enc, cols


def warm(log=print) -> None:
    """Encode the pseudo-queries once (bf16, into the base-vector cache); report the encoding speed."""
    torch.set_num_threads(1)
    penc = JEPAEncoder.from_pretrained("default", precision="bf16")
    for name in SPLITS:
        ds = load_beir(beir_folder(name), SPLITS[name][0])
        ids = list(ds.corpus)
        pqs = pseudo_queries(ids, [ds.corpus[i] for i in ids], n=N_PSEUDO, seed=0)
        pos = {d: i for i, d in enumerate(ids)}
        docs = [ds.corpus[i] for i in ids]
        texts = ([p.query for p in pqs] + [p.target for p in pqs[:N_HELD]]
                 + rare_terms([doc_text(d) for d in docs], [pos[p.source_id] for p in pqs[N_HELD:]]))
        t = time.perf_counter()
        for s in range(0, len(texts), 32):
            penc.embed_base(texts[s:s + 32])
        log(f"{name}: {len(pqs)} pseudo-queries and {N_HELD} held-out targets in {time.perf_counter() - t:.1f} s",
            flush=True)


def encode_speed(n: int = 64) -> dict:
    """Pseudo-queries per second with MPNet (bf16, uncached), both kinds, SciFact."""
    torch.set_num_threads(1)
    penc = JEPAEncoder.from_pretrained("default", precision="bf16", use_cache=False)
    ds = load_beir(beir_folder("scifact"), "train")
    ids = list(ds.corpus)
    pqs = pseudo_queries(ids, [ds.corpus[i] for i in ids], n=N_PSEUDO, seed=7)
    out = {}
    penc._encode_with_base(["warm up"])
    texts = {kind: [p.query for p in pqs if p.kind == kind][:n] for kind in ("sentence", "title")}
    texts["rare"] = rare_terms([doc_text(ds.corpus[i]) for i in ids], [ids.index(p.source_id) for p in pqs[:n]])
    texts["target"] = [p.target for p in pqs[:n // 4]]
    for kind, batch in texts.items():
        t = time.perf_counter()
        penc._encode_with_base(batch)
        out[f"{kind}_per_second"] = round(len(batch) / (time.perf_counter() - t), 2)
    return out


def run_dev(cols: dict, default: JEPAEncoder, cands: dict, seeds: list[int], log=print) -> dict:
    dd = {n: default.apply_heads(c.xd, "document") for n, c in cols.items()}
    dq = {n: default.apply_heads(c.pq_x, "query") for n, c in cols.items()}
    teachers: dict = {}
    res: dict = {}
    for name, cfg in cands.items():
        log(f"candidate {name}: {json.dumps({k: v for k, v in cfg.items() if DEFAULTS.get(k) != v})}", flush=True)
        runs = []
        for cn, col in cols.items():
            key = (cn, cfg["teacher_w"])
            if key not in teachers:
                t = time.perf_counter()
                teachers[key] = teacher_scores(col, dq[cn], dd[cn], cfg["teacher_w"])
                col.seconds["teacher"] = time.perf_counter() - t
            for seed in seeds:
                r = train_one(col, default, teachers[key], cfg, seed, log=log)
                r.pop("dev_per_query")
                runs.append(r)
        res[name] = {"config": cfg, "runs": runs}
    return res


def summarise_dev(res: dict) -> dict:
    """Per candidate: the dev mean (over collections and seeds) at the label-free epoch, the held-out gain."""
    rows = {}
    for name, r in res.items():
        by = {}
        for cn in SPLITS:
            rr = [x for x in r["runs"] if x["collection"] == cn]
            by[cn] = {"dense": float(np.mean([x["dev"]["dense"] for x in rr])),
                      "hybrid": float(np.mean([x["dev"]["hybrid"] for x in rr])),
                      "untrained_dense": rr[0]["dev_untrained"]["dense"],
                      "untrained_hybrid": rr[0]["dev_untrained"]["hybrid"],
                      "held_gain": float(np.mean([x["label_free"]["held_gain"] for x in rr])),
                      "kept": sum(x["label_free"]["kept"] for x in rr), "runs": len(rr),
                      "label_free_epoch": [x["label_free"]["epoch"] for x in rr],
                      "dev_oracle_epoch": [x["dev_oracle_epoch"] for x in rr],
                      "no_guard_hybrid": float(np.mean([x["epochs"][x["label_free"]["best_epoch"]]["dev_hybrid"]
                                                        for x in rr])),
                      "no_guard_dense": float(np.mean([x["epochs"][x["label_free"]["best_epoch"]]["dev_dense"]
                                                       for x in rr])),
                      "dev_oracle_hybrid": float(np.mean([x["epochs"][x["dev_oracle_epoch"]]["dev_hybrid"]
                                                          for x in rr]))}
        rows[name] = {"per_collection": by,
                      "dev_hybrid_mean": float(np.mean([b["hybrid"] for b in by.values()])),
                      "dev_dense_mean": float(np.mean([b["dense"] for b in by.values()])),
                      "held_gain_mean": float(np.mean([b["held_gain"] for b in by.values()]))}
    return rows


def run_test(cols: dict, enc: JEPAEncoder, default: JEPAEncoder, cfg: dict, seeds: list[int], log=print) -> dict:
    """The chosen recipe, every seed, scored on test once; paired tests vs vanilla dense and today's hybrid."""
    vanilla = JEPAEncoder.from_pretrained("none", precision="fp32")
    out: dict = {}
    for cn, col in cols.items():
        col.splits["test"] = load_split(col, enc, cn, SPLITS[cn][1])
        dd = default.apply_heads(col.xd, "document")
        t = time.perf_counter()
        teach = teacher_scores(col, default.apply_heads(col.pq_x, "query"), dd, cfg["teacher_w"])
        col.seconds["teacher"] = time.perf_counter() - t
        runs = [train_one(col, default, teach, cfg, s, with_test=True, log=log) for s in seeds]
        s = col.splits["test"]
        today = score_split(s, default.apply_heads(s.xq, "query"), dd, col.ids)
        van = score_split(s, vanilla.apply_heads(s.xq, "query"), vanilla.apply_heads(col.xd, "document"), col.ids)
        avg = {r: {q: float(np.mean([x["test_per_query"][r][q] for x in runs])) for q in s.qids if q in s.qrels}
               for r in ("dense", "hybrid")}
        rec = {"queries": len(avg["dense"]),
               "default_dense": mean(today["dense"]), "default_hybrid": mean(today["hybrid"]),
               "vanilla_dense": mean(van["dense"]), "vanilla_hybrid": mean(van["hybrid"]),
               "label_free": [x["label_free"] for x in runs], "train_seconds": [x["train_seconds"] for x in runs]}
        for r in ("dense", "hybrid"):
            vals = [x["test"][r] for x in runs]
            rec[r] = vals
            rec[f"{r}_mean"], rec[f"{r}_std"] = float(np.mean(vals)), float(np.std(vals, ddof=1))
            rec[f"{r}_vs_vanilla_dense"] = paired_test(avg[r], van["dense"])
            rec[f"{r}_vs_default_hybrid"] = paired_test(avg[r], today["hybrid"])
            rec[f"{r}_vs_default_{r}"] = paired_test(avg[r], today[r])
        out[cn] = rec
        log(f"TEST {cn}: dense {rec['dense_mean']:.4f} ± {rec['dense_std']:.4f} hybrid {rec['hybrid_mean']:.4f} ± "
            f"{rec['hybrid_std']:.4f} | default dense {rec['default_dense']:.4f} hybrid {rec['default_hybrid']:.4f} "
            f"| vanilla dense {rec['vanilla_dense']:.4f}", flush=True)
    return out


def ranked(summary: dict) -> list[str]:
    """Candidates best first on dev: mean dev hybrid NDCG@10 at each run's label-free epoch, then (the issue's
    other route) mean dev dense, both to 4 decimals (closer is noise); ties: the earlier in the candidates file."""
    names = list(summary)
    return sorted(names, key=lambda n: (-round(summary[n]["dev_hybrid_mean"], 4),
                                        -round(summary[n]["dev_dense_mean"], 4), names.index(n)))


def choose(summary: dict) -> str:
    return ranked(summary)[0]


# ------------------------------------------------------------------------------------------------ report
def spearman(a, b) -> float:
    from scipy.stats import spearmanr

    return float(spearmanr(a, b).statistic) if len(a) > 2 else float("nan")


def agreement(res: dict) -> dict:
    """How the label-free signal (held-out pseudo-queries) agrees with dev judgments."""
    dev, summary = res["dev"], res["dev_summary"]
    runs = [(n, x) for n, c in dev.items() for x in c["runs"]]
    held = [x["label_free"]["held_gain"] for _, x in runs]
    devgain = [x["dev"]["hybrid"] - x["dev_untrained"]["hybrid"] for _, x in runs]
    # the candidate the label-free signal alone would ship: the best mean held-out gain (guard passed somewhere)
    lf = max(summary, key=lambda n: summary[n]["held_gain_mean"])
    epochs = [(x["label_free"]["epoch"], x["dev_oracle_epoch"],
               x["epochs"][x["dev_oracle_epoch"]]["dev_hybrid"] - x["dev"]["hybrid"]) for _, x in runs]
    guard = [(x["label_free"]["kept"], x["dev"]["hybrid"] - x["dev_untrained"]["hybrid"]) for _, x in runs]
    return {
        "label_free_candidate": lf, "dev_candidate": res["chosen"],
        "label_free_candidate_dev_hybrid": summary[lf]["dev_hybrid_mean"],
        "spearman_held_gain_vs_dev_gain": spearman(held, devgain), "runs": len(runs),
        "same_epoch": sum(a == b for a, b, _ in epochs),
        "mean_dev_loss_of_label_free_epoch": float(np.mean([d for *_, d in epochs])),
        "kept_runs": sum(k for k, _ in guard),
        "kept_runs_dev_gain_positive": sum(1 for k, g in guard if k and g > 0),
        "kept_runs_mean_dev_gain": float(np.mean([g for k, g in guard if k])) if any(k for k, _ in guard) else None,
    }


def run_seconds(res: dict) -> float:
    runs = [x for part in ("dev", "confirm") for c in res.get(part, {}).values() for x in c["runs"]]
    return float(sum(x["seconds"] for x in runs)
                 + sum(sum(t["train_seconds"]) for t in res["test"].values()) * 1.0)


def write_report(res: dict, out_dir: Path = RESULTS) -> None:
    """benchmarks/results/adapt.{json,md} (per-query values left out of the JSON)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    res["agreement"] = agreement(res)
    S, dev, test = res["dev_summary"], res["dev"], res["test"]
    avg = {k: float(np.mean([t[k] for t in test.values()])) for k in
           ("dense_mean", "hybrid_mean", "default_hybrid", "vanilla_dense", "default_dense")}
    lift = avg["dense_mean"] / avg["vanilla_dense"] - 1
    sig_both = all(t["hybrid_vs_default_hybrid"]["mean_diff"] > 0 and t["hybrid_vs_default_hybrid"]["p_ttest"] < 0.05
                   for t in test.values())
    wins = sig_both or (lift >= 0.0326 and avg["hybrid_mean"] >= avg["default_hybrid"])
    # the headline first: experiments.report lists an unknown file's first scalars
    head = {"command": f"python -m experiments.adapt --candidates {res['candidates_file']}",
            "issue_bar_met": wins, "chosen_on_dev": res["chosen"],
            **{f"test_{cn}_{k}": t[k] for cn, t in test.items() for k in
               ("hybrid_mean", "hybrid_std", "default_hybrid", "dense_mean", "dense_std", "vanilla_dense")},
            **{f"test_{cn}_hybrid_vs_default_hybrid_p": t["hybrid_vs_default_hybrid"]["p_ttest"]
               for cn, t in test.items()},
            "test_average_hybrid": avg["hybrid_mean"], "test_average_default_hybrid": avg["default_hybrid"],
            "test_average_dense_lift_vs_vanilla": lift,
            "dev_untrained_mean_hybrid": float(np.mean([v["untrained_hybrid"] for v in
                                                        next(iter(S.values()))["per_collection"].values()])),
            "dev_best_mean_hybrid": max(v["dev_hybrid_mean"] for v in S.values())}
    (out_dir / "adapt.json").write_text(json.dumps({**head, **res}, indent=1) + "\n")
    first = next(iter(S.values()))["per_collection"]
    L = ["# Label-free adaptation of the heads to a collection, with our own hybrid as teacher (issue 24)", "",
         f"Generated by `python -m experiments.adapt --candidates {res['candidates_file']}` on "
         f"{res.get('cpu', 'this CPU')}, 2 cores shared with other jobs, 1 torch thread: {run_seconds(res) / 60:.0f} "
         "min of training and per-epoch checks over the grid, the confirmation and the test runs. "
         "Standard protocol: NDCG@10 (pytrec_eval, BEIR's ignore_identical_ids), cosine on L2-normalised vectors, "
         "precomputed MPNet base vectors for the corpora and the real queries; only pseudo-queries were encoded. "
         "`experiments/adapt.py`'s docstring gives the method; in short:", "",
         f"- **Pseudo-queries** from each collection itself ({res['n_pseudo']} per collection: titles and sentences "
         "half and half, `jepa_rag.fusion_choice.pseudo_queries`, seed 0; plus a rare-terms query (the document's 6 "
         "rarest words) for every sampled document but the held-out ones). The first "
         f"{res['held_out']} are held out, inverse-cloze style (each must find its document without it).",
         "- **Teacher**: today's label-free hybrid over the whole collection, `(1-w) z(dense) + w z(BM25)` "
         "z-normalised per query over every document, dense = the default checkpoint; w = 0.25 (today's), 0.5, or 1 (BM25 alone).",
         "- **Student**: the default checkpoint with the predictor as the query route: a fresh residual predictor "
         "whose last layer is zero (before training the student *is* the default checkpoint); documents keep the "
         "checkpoint's projection, so adapting needs no re-embedding (`train: both` also trains the projection).",
         "- **Scoring**: the student dense, and the student fused with BM25 at today's w = 0.25 (the hybrid).",
         f"- **Label-free selection** (what would ship): the epoch with the best held-out pseudo-query hybrid NDCG@10, "
         f"kept only if it beats the untrained student (= default) on them by a one-sided paired t-test, p < "
         f"{res['p_guard']}; else the default heads stay. **Recipe choice** on dev judgments (SciFact train, NFCorpus "
         "dev): mean dev hybrid NDCG@10 at each run's label-free epoch, then mean dev dense (both to 4 decimals); the "
         "grid runs seed 0, its best 3 run again with seeds 0, 1, 2 and the choice is made among them. Test scored "
         "once, dev-chosen recipe, 3 seeds.",
         "", "## 1. Dev (SciFact train 809 queries, NFCorpus dev 324; seed 0)", "",
         "| candidate | changed | SciFact dense | SciFact hybrid | NFCorpus dense | NFCorpus hybrid | mean dense | "
         "mean hybrid | held-out gain (label-free) | guard kept | label-free epoch | without the guard: mean dense / "
         "hybrid | dev-best epoch (its mean hybrid) |",
         "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    sf, nf = first["scifact"], first["nfcorpus"]
    L.append(f"| untrained (= default checkpoint) | — | {sf['untrained_dense']:.4f} | {sf['untrained_hybrid']:.4f} | "
             f"{nf['untrained_dense']:.4f} | {nf['untrained_hybrid']:.4f} | "
             f"{(sf['untrained_dense'] + nf['untrained_dense']) / 2:.4f} | "
             f"{(sf['untrained_hybrid'] + nf['untrained_hybrid']) / 2:.4f} | — | — | — | — | — |")
    for n, s in S.items():
        cfg = dev[n]["config"]
        changed = ", ".join(f"{k}={v}" for k, v in cfg.items() if DEFAULTS.get(k) != v) or "defaults"
        b = s["per_collection"]
        oracle = np.mean([b[c]["dev_oracle_hybrid"] for c in b])
        mark = "**" if n == res["chosen"] else ""
        L.append(f"| {mark}{n}{mark} | {changed} | {b['scifact']['dense']:.4f} | {b['scifact']['hybrid']:.4f} | "
                 f"{b['nfcorpus']['dense']:.4f} | {b['nfcorpus']['hybrid']:.4f} | {s['dev_dense_mean']:.4f} | "
                 f"{s['dev_hybrid_mean']:.4f} | {s['held_gain_mean']:+.4f} | "
                 f"{sum(b[c]['kept'] for c in b)}/{sum(b[c]['runs'] for c in b)} | "
                 f"{'/'.join(str(e) for c in b for e in b[c]['label_free_epoch'])} | "
                 f"{np.mean([b[c]['no_guard_dense'] for c in b]):.4f} / {np.mean([b[c]['no_guard_hybrid'] for c in b]):.4f} | "
                 f"{'/'.join(str(e) for c in b for e in b[c]['dev_oracle_epoch'])} ({oracle:.4f}) |")
    L += ["", "Epochs are SciFact/NFCorpus. `held-out gain`: mean over the two collections of the best epoch's held-out "
              "pseudo-query hybrid NDCG@10 minus the untrained student's. `guard kept`: runs whose adapted heads "
              "passed the paired test (the others ship the default heads, so their dev numbers equal the untrained "
              "row). `without the guard`: the best held-out epoch shipped whatever the paired test says. "
              f"Dev choice: **{res['chosen']}**.", ""]
    a = res["agreement"]
    L += ["### Label-free choice vs dev judgments", "",
          f"- The candidate the held-out pseudo-queries rank first: **{a['label_free_candidate']}** (dev mean hybrid "
          f"{a['label_free_candidate_dev_hybrid']:.4f}); the dev choice: **{a['dev_candidate']}**.",
          f"- Across all {a['runs']} dev runs (candidate × collection), Spearman between the held-out gain and the "
          f"dev hybrid gain of the label-free epoch: {a['spearman_held_gain_vs_dev_gain']:+.2f}.",
          f"- The label-free epoch equals the dev-best epoch in {a['same_epoch']} of {a['runs']} runs; it gives up "
          f"{a['mean_dev_loss_of_label_free_epoch']:.4f} dev hybrid NDCG@10 on average against that oracle.",
          f"- The guard let {a['kept_runs']} of {a['runs']} runs ship adapted heads; of those, "
          f"{a['kept_runs_dev_gain_positive']} improved the dev hybrid"
          + (f" (mean dev change {a['kept_runs_mean_dev_gain']:+.4f})." if a["kept_runs_mean_dev_gain"] is not None
             else "."), ""]
    C = res.get("confirm_summary") or {}
    if C:
        L += [f"### Confirmation on dev: the grid's best {len(C)} again with seeds 0, 1, 2", "",
              "| candidate | SciFact dense | SciFact hybrid | NFCorpus dense | NFCorpus hybrid | mean dense | mean hybrid | "
              "guard kept | without the guard: mean dense / hybrid |", "|---|---|---|---|---|---|---|---|---|"]
        for n, s in C.items():
            b = s["per_collection"]
            mark = "**" if n == res["chosen"] else ""
            L.append(f"| {mark}{n}{mark} | {b['scifact']['dense']:.4f} | {b['scifact']['hybrid']:.4f} | "
                     f"{b['nfcorpus']['dense']:.4f} | {b['nfcorpus']['hybrid']:.4f} | {s['dev_dense_mean']:.4f} | "
                     f"{s['dev_hybrid_mean']:.4f} | {sum(b[c]['kept'] for c in b)}/{sum(b[c]['runs'] for c in b)} | "
                     f"{np.mean([b[c]['no_guard_dense'] for c in b]):.4f} / "
                     f"{np.mean([b[c]['no_guard_hybrid'] for c in b]):.4f} |")
        L += ["", f"Dev choice (same rule, means over the seeds): **{res['chosen']}**.", ""]
    L += [f"## 2. Test (scored once): {res['chosen']}, 3 seeds, mean ± std", "",
          "| collection | queries | adapted dense | adapted hybrid | default dense | default hybrid | vanilla dense | "
          "hybrid − default hybrid (p) | dense − vanilla dense (p) | hybrid − vanilla dense (p) | guard kept |",
          "|---|---|---|---|---|---|---|---|---|---|---|"]
    for cn, t in test.items():
        kept = sum(x["kept"] for x in t["label_free"])
        L.append(f"| {cn} | {t['queries']} | {t['dense_mean']:.4f} ± {t['dense_std']:.4f} | "
                 f"{t['hybrid_mean']:.4f} ± {t['hybrid_std']:.4f} | {t['default_dense']:.4f} | "
                 f"{t['default_hybrid']:.4f} | {t['vanilla_dense']:.4f} | "
                 f"{t['hybrid_vs_default_hybrid']['mean_diff']:+.4f} ({t['hybrid_vs_default_hybrid']['p_ttest']:.2g}) | "
                 f"{t['dense_vs_vanilla_dense']['mean_diff']:+.4f} ({t['dense_vs_vanilla_dense']['p_ttest']:.2g}) | "
                 f"{t['hybrid_vs_vanilla_dense']['mean_diff']:+.4f} ({t['hybrid_vs_vanilla_dense']['p_ttest']:.2g}) | "
                 f"{kept}/{len(t['label_free'])} |")
    L += ["", f"p: two-sided paired t-test over per-query NDCG@10 (each query's mean over the seeds). Averages over "
              f"the two sets: adapted dense {avg['dense_mean']:.4f} vs vanilla dense {avg['vanilla_dense']:.4f} "
              f"({lift:+.2%}; default dense {avg['default_dense']:.4f}); adapted hybrid {avg['hybrid_mean']:.4f} vs "
              f"today's {avg['default_hybrid']:.4f} (moonshot 0.57).", "",
          f"**Issue bar** (significantly above today's default hybrid on both test sets, or label-free dense +3.26% on "
          f"the average without lowering the hybrid): **{'met' if wins else 'not met'}**.", ""]
    L += cost_section(res)
    L += ["", "## 4. Conclusion", ""] + conclusion(res, avg, wins)
    (out_dir / "adapt.md").write_text("\n".join(L) + "\n")


def conclusion(res: dict, avg: dict, wins: bool) -> list[str]:
    S, a, test = res["dev_summary"], res["agreement"], res["test"]
    first = next(iter(S.values()))["per_collection"]
    base_h = float(np.mean([first[c]["untrained_hybrid"] for c in first]))
    base_d = float(np.mean([first[c]["untrained_dense"] for c in first]))
    best_h = max(S, key=lambda n: S[n]["dev_hybrid_mean"])
    oracle = {n: float(np.mean([S[n]["per_collection"][c]["dev_oracle_hybrid"] for c in first])) for n in S}
    best_o = max(oracle, key=oracle.get)
    ng = {n: (float(np.mean([S[n]["per_collection"][c]["no_guard_dense"] for c in first])),
              float(np.mean([S[n]["per_collection"][c]["no_guard_hybrid"] for c in first]))) for n in S}
    worst = min(ng, key=lambda n: ng[n][0])
    lf = a["label_free_candidate"]
    sf, nf = test["scifact"], test["nfcorpus"]
    return [
        f"**{'A win' if wins else 'A negative result'}: distilling our own label-free hybrid into the heads on "
        f"pseudo-queries cut from the collection does not make them earn their keep.** Nothing is shipped "
        "(`jepa-rag adapt` was not built).", "",
        f"- **Dev**: {len(S)} recipes (teachers: hybrid w = 0.25 and 0.5, BM25 alone; pseudo-query kinds: sentences, "
        "titles, rare terms and their mix; losses: KL over the teacher's top 50, KL over the whole collection, "
        "margin-MSE, full-collection softmax on the teacher's top-1; teacher temperature, learning rate, source "
        f"kept or masked, projection frozen or trained). At the label-free epoch none beats the untrained heads' dev "
        f"hybrid ({base_h:.4f}; best {best_h} {S[best_h]['dev_hybrid_mean']:.4f}). Even picking the epoch on the dev "
        f"judgments themselves the best is {best_o} at {oracle[best_o]:.4f} ({oracle[best_o] - base_h:+.4f}), noise "
        f"on ~1,100 queries. The dense side mostly gets worse: without the guard, mean dev dense falls from "
        f"{base_d:.4f} to as low as {ng[worst][0]:.4f} ({worst}).",
        "- **Why (our reading, not tested apart)**: a pseudo-query cut out of a document shares its exact words with it, so the teacher's ranking "
        "for it is dominated by that overlap, which is what BM25 already adds at query time. The student learns to "
        "pull a query towards its lexical neighbours, loses some of the semantic matching that is the dense side's "
        "whole contribution to the blend, and fused with BM25 again the lexical evidence is counted twice. Where the "
        "hybrid itself is wrong, a teacher made of the same hybrid cannot show it.",
        f"- **The label-free signal does not track the judgments**: Spearman {a['spearman_held_gain_vs_dev_gain']:+.2f} "
        f"between held-out pseudo-query gains and dev gains over {a['runs']} runs; the recipe the held-out "
        f"pseudo-queries like best ({lf}, held-out +{S[lf]['held_gain_mean']:.4f}) is the worst on dev "
        f"({S[lf]['dev_hybrid_mean'] - base_h:+.4f} hybrid, {S[lf]['dev_dense_mean'] - base_d:+.4f} dense). The paired-"
        f"test guard is what keeps adaptation safe: it kept the default heads in {a['runs'] - a['kept_runs']} of "
        f"{a['runs']} runs, and of the {a['kept_runs']} it let through {a['kept_runs_dev_gain_positive']} improved dev.",
        f"- **Test, once** ({res['chosen']}, 3 seeds): SciFact hybrid {sf['hybrid_mean']:.4f} ± {sf['hybrid_std']:.4f} "
        f"vs today's {sf['default_hybrid']:.4f} (p = {sf['hybrid_vs_default_hybrid']['p_ttest']:.2g}), NFCorpus "
        f"{nf['hybrid_mean']:.4f} ± {nf['hybrid_std']:.4f} vs {nf['default_hybrid']:.4f} (p = "
        f"{nf['hybrid_vs_default_hybrid']['p_ttest']:.2g}); the guard let adapted heads through in "
        f"{sum(x['kept'] for x in sf['label_free'])} of 3 SciFact and {sum(x['kept'] for x in nf['label_free'])} of 3 "
        f"NFCorpus seeds, every other seed ships the default heads; dense average {avg['dense_mean']:.4f} vs vanilla {avg['vanilla_dense']:.4f}. Label-free "
        f"hybrid average {avg['hybrid_mean']:.4f} vs today's {avg['default_hybrid']:.4f}; the moonshot (0.57) is not "
        "reached either.",
        "- **Left**: a teacher that knows what the hybrid does not: a cross-encoder reranking the hybrid's top k for "
        "each pseudo-query, or generated questions (doc2query) instead of cut-out spans. Both need a model this "
        "environment does not hold (its model cache has all-mpnet-base-v2 only) and far more compute per "
        "pseudo-query than the cut-out spans here.",
    ]


def cost_section(res: dict) -> list[str]:
    sp = res.get("encode_speed", {})
    L = ["## 3. Cost", ""]
    rows = []
    for cn, t in res["test"].items():
        n = res["documents"][cn]
        st = res["setup_seconds"][cn]
        train_s = float(np.mean(t["train_seconds"]))
        rows.append((cn, n, st, train_s))
    enc_s = (res["n_pseudo"] / sp["sentence_per_second"] / 2 + res["n_pseudo"] / sp["title_per_second"] / 2
             + res["held_out"] / sp["target_per_second"]) if sp else float("nan")
    rare_s = (res["n_pseudo"] - res["held_out"]) / sp["rare_per_second"] if sp else float("nan")
    L += [f"On {res.get('cpu', 'this CPU')} (2 cores shared, 1 torch thread). MPNet (bf16 autocast, uncached) encodes "
          f"{sp.get('sentence_per_second', float('nan')):g} sentence pseudo-queries/s, "
          f"{sp.get('title_per_second', float('nan')):g} titles/s, {sp.get('rare_per_second', float('nan')):g} "
          f"rare-term queries/s and {sp.get('target_per_second', float('nan')):g} held-out targets (abstracts)/s: "
          f"the chosen recipe's fixed sample ({res['n_pseudo']:,} pseudo-queries, {res['held_out']} held-out targets, "
          f"these dominating) costs about {enc_s / 60:.1f} min whatever the collection's size (the rare-term queries "
          f"another {rare_s / 60:.1f} min).", "",
          "| collection | documents | BM25 scores of the pseudo-queries (s) | teacher (s) | training + per-epoch checks, "
          "one run (s) | minutes per 10K chunks, besides the encoding |", "|---|---|---|---|---|---|"]
    per10 = []
    for cn, n, st, train_s in rows:
        per10k = (st.get("bm25_pseudo_queries", 0) + st.get("teacher", 0) + train_s) * 10_000 / n / 60
        per10.append(per10k)
        L.append(f"| {cn} | {n} | {st.get('bm25_pseudo_queries', 0):.1f} | {st.get('teacher', 0):.1f} | "
                 f"{train_s:.1f} | {per10k:.2f} |")
    both = [x["train_seconds"] for c, r in res["dev"].items() if r["config"]["train"] == "both" for x in r["runs"]]
    base = [x["train_seconds"] for x in res["dev"].get("hyb_kl", {}).get("runs", [])]
    ratio = f"{np.mean(both) / np.mean(base):.0f}x" if both and base else "several times"
    L += ["", f"So a 10K-chunk collection costs about {enc_s / 60 + np.mean(per10):.0f} min on this CPU ({enc_s / 60:.1f} "
              f"min encoding + {np.mean(per10):.1f} min the rest; the per-run seconds include the dev/test scoring "
              "after every epoch, which a user would not run). Per step the student scores its batch against every "
              "document (a B × N product) and the teacher needs every pseudo-query's BM25 and dense scores over the "
              "whole collection: both grow linearly with N at a fixed sample; the encoding does not (at 1M chunks "
              f"the linear part would be ~{np.mean(per10) * 100:.0f} min per run here). Training the projection too (`train: both`, only the "
              f"batch's teacher top-k documents through it per step) took {ratio} the training time of the "
              "predictor alone."]
    return L


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--candidates", type=Path, default=ROOT / "experiments" / "candidates" / "adapt.yaml")
    p.add_argument("--warm", action="store_true", help="only encode the pseudo-queries into the cache")
    p.add_argument("--dev", action="store_true", help="the dev grid only (runs/adapt/dev.json)")
    p.add_argument("--only", nargs="*", help="dev: only these candidates (merged into runs/adapt/dev.json)")
    p.add_argument("--confirm", action="store_true", help="skip the grid: the top candidates with every seed on dev")
    p.add_argument("--test", action="store_true", help="skip the grid (runs/adapt/dev.json) and the confirmation "
                   "(runs/adapt/confirm.json): score test once")
    p.add_argument("--choice", help="with --test: the candidate to test (default: the dev choice)")
    p.add_argument("--cost", action="store_true", help="only measure MPNet's pseudo-query encoding speed (runs/)")
    p.add_argument("--report-only", action="store_true", help="rewrite the report from runs/adapt/result.json")
    p.add_argument("--out", type=Path, default=RESULTS)
    args = p.parse_args()
    RUNS.mkdir(parents=True, exist_ok=True)
    spec = load_candidates(args.candidates)
    if args.warm:
        warm()
        return
    if args.report_only:
        write_report(json.loads((RUNS / "result.json").read_text()), args.out)
        return
    if args.cost:
        (RUNS / "cost.json").write_text(json.dumps(encode_speed(), indent=1))
        return
    t0 = time.time()
    enc, cols = setup()
    dev_path = RUNS / "dev.json"
    if not (args.test or args.confirm):
        cands = spec["candidates"]
        if args.only:
            cands = {k: v for k, v in cands.items() if k in args.only}
        dev = run_dev(cols, enc, cands, spec["dev_seeds"])
        old = json.loads(dev_path.read_text()) if dev_path.is_file() and args.only else {}
        dev = {**old.get("candidates", {}), **dev}
        dev_path.write_text(json.dumps({"candidates": dev, "seconds": {n: c.seconds for n, c in cols.items()}},
                                       indent=1))
        summary = summarise_dev(dev)
        for n, s in summary.items():
            print(f"{n:28s} dev hybrid {s['dev_hybrid_mean']:.4f} dense {s['dev_dense_mean']:.4f} "
                  f"held gain {s['held_gain_mean']:+.4f}")
        if args.dev:
            return
    dev = json.loads(dev_path.read_text())["candidates"]
    summary = summarise_dev(dev)
    # the grid's top CONFIRM candidates again with every seed, on dev: the choice is made among them
    confirm_path = RUNS / "confirm.json"
    top = ranked(summary)[:CONFIRM]
    if args.test and confirm_path.is_file():
        confirm = json.loads(confirm_path.read_text())
    else:
        confirm = run_dev(cols, enc, {n: dev[n]["config"] for n in top}, spec["seeds"])
        confirm_path.write_text(json.dumps(confirm, indent=1))
    confirm_summary = summarise_dev(confirm)
    for n, s in confirm_summary.items():
        print(f"confirm {n:20s} dev hybrid {s['dev_hybrid_mean']:.4f} dense {s['dev_dense_mean']:.4f}", flush=True)
    if args.confirm:
        return
    chosen = args.choice or choose(confirm_summary)
    cfg = dev[chosen]["config"]
    print(f"dev choice: {chosen}", flush=True)
    test = run_test(cols, enc, enc, cfg, spec["seeds"])
    result = {"candidates_file": str(args.candidates.relative_to(ROOT) if args.candidates.is_absolute()
                                     else args.candidates),
              "n_pseudo": N_PSEUDO, "held_out": N_HELD, "w_default": W_DEFAULT, "p_guard": P_GUARD,
              "dev": dev, "dev_summary": summary, "confirm": confirm, "confirm_summary": confirm_summary,
              "chosen": chosen, "test": test, "cpu": cpu_model(),
              "setup_seconds": {n: c.seconds for n, c in cols.items()},
              "documents": {n: len(c.ids) for n, c in cols.items()}, "seconds": round(time.time() - t0, 1)}
    cost = RUNS / "cost.json"  # --cost, run apart (uncached MPNet encoding)
    result["encode_speed"] = json.loads(cost.read_text()) if cost.is_file() else encode_speed()
    (RUNS / "result.json").write_text(json.dumps(result, indent=1))
    write_report(result, args.out)


if __name__ == "__main__":
    main()
