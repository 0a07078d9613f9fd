"""The training loop: frozen base vectors (cached) → :class:`JEPAHeads` (projection + predictor) → losses → AdamW.

:func:`train` reads top to bottom: the data source becomes training pairs, dev sets and document vectors in one
place (:func:`load_training_data`); then, as in I-JEPA, each batch of cached base vectors goes through the context
branch (the query through the projection and, for the predictive term, the predictor) and the target branch
(documents through the same projection; the predictive target is stop-gradient), the loss terms the config names
(from :data:`jepa_rag.losses.LOSSES`) are logged separately, AdamW steps on a per-batch LR schedule; dev retrieval
after each epoch picks the epoch (and query route) that the checkpoint keeps.
"""

from __future__ import annotations

import json
import math
import random
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save
from tqdm.auto import tqdm

from jepa_rag import losses
from jepa_rag.base_model import Fingerprint, sha256_file
from jepa_rag.checkpoint import Checkpoint, save_checkpoint
from jepa_rag.config import CORPUS_SOURCES, TrainConfig, from_dict, to_dict
from jepa_rag.corpus import join_corpus_report, load_corpus
from jepa_rag.data import (
    Pairs,
    beir_folder,
    cap_positives,
    dev_split,
    load_beir,
    load_msmarco_pairs,
    load_pairs_jsonl,
    pairs_from_beir,
    pairs_from_corpus_ict,
    pairs_from_corpus_sentences,
    pairs_from_corpus_titles,
)
from jepa_rag.encoder import JEPAEncoder, similarity
from jepa_rag.errors import ConfigError, DataFormatError
from jepa_rag.fsutil import atomic_write_bytes
from jepa_rag.fusion import fusion_of
from jepa_rag.heads import JEPAHeads, check_base_dim
from jepa_rag.lexical import LexicalIndex
from jepa_rag.metrics import evaluate_run, exact_search, paired_test
from jepa_rag.precomputed import import_beir_embeddings, import_msmarco_embeddings
from jepa_rag.retriever import DevScores, choose_fusion

from .mining import mine_hard_negatives


@dataclass
class TrainResult:
    checkpoint: Path
    best_epoch: int
    history: list[dict] = field(default_factory=list)
    seconds: float = 0.0
    # what the run's summary reports: dev metric of the untrained heads and of the checkpoint, the query route
    # kept, the pairs trained on / judged on dev, and the checkpoint's retrieval section (hybrid fusion)
    dev_metric: str = "ndcg@10"
    dev_before: float = math.nan
    dev_after: float = math.nan
    query_route: str = "projection"
    num_train_pairs: int = 0
    num_dev_pairs: int = 0
    retrieval: dict | None = None


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def lr_at(step: int, epoch: int, cfg) -> float:
    """Linear warm-up from ``lr·warmup_start_factor`` to ``lr`` over ``warmup_steps``, then constant.

    With ``scheduler_step='epoch'`` the warm-up counter advances once per epoch (the seed's bug), so the LR stays
    near ``lr·warmup_start_factor``.
    """
    o = cfg.optim
    t = step if o.scheduler_step == "batch" else epoch
    frac = 1.0 if o.warmup_steps <= 0 else min(1.0, t / o.warmup_steps)
    return o.lr * (o.warmup_start_factor + (1.0 - o.warmup_start_factor) * frac)


# ============================================================================ data: where the sources differ
_CORPUS_PAIRS = {"titles": pairs_from_corpus_titles, "sentences": pairs_from_corpus_sentences,
                 "ict": pairs_from_corpus_ict}


def _corpus_folders(cfg: TrainConfig) -> list[Path]:
    """The BEIR folders of a self-supervised source (``data.path`` is comma-separated)."""
    return [beir_folder(p.strip()) for p in cfg.data.path.split(",")]


def load_training_pairs(cfg: TrainConfig) -> Pairs:
    """The source's query–positive pairs (MS MARCO, a pairs file, a BEIR split, or made from unlabelled corpora)."""
    d = cfg.data
    if d.source == "msmarco":
        return load_msmarco_pairs()
    if d.source == "pairs":
        return load_pairs_jsonl(d.path)
    if d.source in CORPUS_SOURCES:
        return _CORPUS_PAIRS[d.source](_corpus_folders(cfg))
    return pairs_from_beir(beir_folder(d.path), d.split)


def _with_source_documents(cfg: TrainConfig, pairs: Pairs, base: JEPAEncoder, embeddings: str | None, log) -> Pairs:
    """``pairs`` with the documents to mine negatives from and rank dev queries against as their pool (your
    corpus joined in, for a pairs file), those documents' precomputed base vectors imported into the cache."""
    d = cfg.data
    if d.source == "msmarco":
        import_msmarco_embeddings(base, pairs, embeddings)
    elif d.source == "beir":
        import_beir_embeddings(base, beir_folder(d.path), embeddings)
    elif d.source in CORPUS_SOURCES:
        for folder in _corpus_folders(cfg):
            import_beir_embeddings(base, folder, embeddings)
    elif d.corpus:  # a pairs file with the user's corpus
        corpus = load_corpus(d.corpus)
        if corpus.beir_folder is not None:
            import_beir_embeddings(base, corpus.beir_folder, embeddings)
        n_own = len(set(pairs.doc_ids))
        report = join_corpus_report(pairs, corpus)
        pairs = report.pairs
        log(f"corpus: {len(corpus)} documents from {corpus.source}; {n_own - report.added} of the pairs' {n_own} "
            f"positives found in it ({report.by_id} pairs by doc_id, {report.exact} by exact text, {report.passage} "
            f"as a passage of a document), {report.added} added")
        if report.added:
            log(f"warning: {report.added} positives are in no corpus document and were added as documents of their "
                f"own, e.g. {report.added_examples[0][:80]!r}; name the document with 'doc_id' (its path inside the "
                "folder, or its JSONL id) if it is one")
    else:  # a pairs file alone
        named = [d for d, t in zip(pairs.doc_ids, pairs.positives) if not t]
        if named:
            raise DataFormatError(f"{pairs.source}: {len(named)} pairs name their document by doc_id only (e.g. "
                                  f"{named[0]!r}); give the documents with --corpus (data.corpus)")
        log(f"warning: no corpus given (--corpus): hard negatives are mined from, and dev queries ranked against, "
            f"only the pairs' own {len(pairs.pool)} positives. Dev then looks far easier than real retrieval and "
            "cannot tell a better model from a worse one; pass --corpus <your documents> (data.corpus).")
    return pairs


@dataclass
class DevSet:
    """Dev queries, their judgments and the documents they retrieve from, as frozen base vectors."""
    name: str
    x_q: np.ndarray
    qids: list[str]
    x_pool: np.ndarray
    pool_ids: list[str]
    qrels: dict[str, dict[str, int]]
    # the texts behind x_q and x_pool: BM25 needs them to choose the hybrid fusion on dev
    query_texts: list[str] = field(default_factory=list)
    pool_texts: list[str] = field(default_factory=list)

    @property
    def num_pairs(self) -> int:
        return sum(len(r) for r in self.qrels.values())


def _beir_dev_set(base: JEPAEncoder, folder: str, split: str, embeddings: str | None, show: bool,
                  pool: tuple[np.ndarray, list[str], list[str]] | None = None) -> DevSet:
    """A BEIR folder's ``split`` judgments (grade > 0) over its own corpus, or over ``pool`` (vectors, ids, texts) when
    that corpus is already embedded as the training pool."""
    path = beir_folder(folder)
    if pool is None:
        import_beir_embeddings(base, path, embeddings)
    ds = load_beir(path, split)
    qrels = {q: {d: g for d, g in rel.items() if g > 0 and d in ds.corpus} for q, rel in ds.qrels.items()}
    qrels = {q: rel for q, rel in qrels.items() if rel}
    if not qrels:
        raise DataFormatError(f"{ds.path}: split {split!r} judges no document of the corpus relevant")
    if pool is None:
        pool_ids, texts = ds.corpus_texts()
        pool = base.embed_base(texts, show_progress_bar=show), pool_ids, texts
    qids = list(qrels)
    q_texts = [ds.queries[q] for q in qids]
    return DevSet(f"{path.name}:{split}", base.embed_base(q_texts, show_progress_bar=show), qids, pool[0], pool[1],
                  qrels, q_texts, pool[2])


@dataclass
class TrainingData:
    """What a data source becomes: the pairs to train on, the dev sets that select, and the documents both
    retrieve from, as frozen base vectors."""
    fingerprint: Fingerprint   # of the frozen base model the vectors come from
    pairs: Pairs               # every pair read (dev's too); its pool is the training documents
    train_pairs: Pairs
    devs: list[DevSet]
    pool_ids: list[str]
    x_pool: np.ndarray         # (documents, d)
    x_q: np.ndarray            # (training pairs, d): their queries

    @property
    def num_dev_pairs(self) -> int:
        return sum(dev.num_pairs for dev in self.devs)


def load_training_data(cfg: TrainConfig, *, embeddings: str | None, show_progress_bar: bool, log) -> TrainingData:
    """The one place the data sources differ: pairs + your corpus, a BEIR folder, MS MARCO or a self-supervised
    source become the training pairs, the dev sets and the documents' base vectors (computed once, cached on
    disk). Dev is another BEIR folder's judgments (``data.dev_beir``), the training folder's own dev split
    (``data.dev_split``), or ``data.dev_fraction`` of the training queries held out."""
    d = cfg.data
    pairs = load_training_pairs(cfg)  # read and checked before the base model is looked for
    base = JEPAEncoder.from_pretrained("none", base_model=cfg.model.base_model, device=cfg.device,
                                      precision="fp32")  # the reference arithmetic; precomputed vectors are fp32
    pairs = _with_source_documents(cfg, pairs, base, embeddings, log)
    if d.max_pairs:
        pairs = pairs.subset(range(min(d.max_pairs, len(pairs))))
    pool_ids = list(pairs.pool)
    pool_texts = [pairs.pool[i] for i in pool_ids]
    log(f"data: {pairs.source}: {len(pairs)} pairs, {len(pool_ids)} documents")
    x_pool = base.embed_base(pool_texts, show_progress_bar=show_progress_bar)
    if d.dev_beir:  # other BEIR folders' judgments, each over its own corpus: all of ``pairs`` is trained on
        train_pairs = pairs
        devs = [_beir_dev_set(base, folder, split, embeddings, show_progress_bar) for folder, split in d.dev_beir_sets]
    elif d.dev_split:  # the training folder's own dev judgments (e.g. NFCorpus' qrels/dev.tsv), same corpus
        train_pairs = pairs
        devs = [_beir_dev_set(base, d.path, d.dev_split, embeddings, show_progress_bar,
                              pool=(x_pool, pool_ids, pool_texts))]
    else:
        train_pairs, dev_pairs = dev_split(pairs, d.dev_fraction)
        devs = [_held_out_dev_set(base, dev_pairs, x_pool, pool_ids, pool_texts, show_progress_bar)]
    if d.max_positives_per_query:  # after the dev split: dev keeps all its judgments
        train_pairs = cap_positives(train_pairs, d.max_positives_per_query, seed=cfg.seed)
    n_dev = sum(dev.num_pairs for dev in devs)
    log(f"{len(train_pairs)} train / {n_dev} dev pairs (dev: {', '.join(dev.name for dev in devs)})")
    x_q = base.embed_base(train_pairs.queries, show_progress_bar=show_progress_bar)
    return TrainingData(base.fingerprint, pairs, train_pairs, devs, pool_ids, x_pool, x_q)


def _held_out_dev_set(base: JEPAEncoder, dev_pairs: Pairs, x_pool: np.ndarray, pool_ids: list[str],
                      pool_texts: list[str], show: bool) -> DevSet:
    """Held-out pairs as a dev set, retrieving from the training documents."""
    dev_text = dict(zip(dev_pairs.query_ids, dev_pairs.queries))
    dev_qrels: dict[str, dict[str, int]] = {}
    for q, d in zip(dev_pairs.query_ids, dev_pairs.doc_ids):
        dev_qrels.setdefault(q, {})[d] = 1
    return DevSet("held-out pairs", base.embed_base(list(dev_text.values()), show_progress_bar=show),
                  list(dev_text), x_pool, pool_ids, dev_qrels, list(dev_text.values()), pool_texts)


class TrainingBatches:
    """Each training pair's positive and mined hard negatives as rows of the document vectors, and which documents
    every query's judgments call relevant, so a batch never uses one of its queries' positives as a negative."""

    def __init__(self, data: TrainingData, cfg: TrainConfig):
        pool_index = {d: i for i, d in enumerate(data.pool_ids)}
        # every judged pair read, dev's and capped ones too: a positive is never a negative
        positives_of: dict[str, set[int]] = {}
        for q, d in zip(data.pairs.query_ids, data.pairs.doc_ids):
            positives_of.setdefault(q, set()).add(pool_index[d])
        train_pairs = data.train_pairs
        self.num_docs = len(data.pool_ids)
        self.pos_idx = np.array([pool_index[d] for d in train_pairs.doc_ids])
        # every judged (query, document) pair as one sorted int64 key: lets a batch mask the other positives of its
        # queries (a query with many relevant documents must not be pushed away from them)
        qnum = {q: i for i, q in enumerate(dict.fromkeys(train_pairs.query_ids))}
        self.row_q = np.array([qnum[q] for q in train_pairs.query_ids], dtype=np.int64)
        self.judged = np.unique(np.array([qnum[q] * self.num_docs + j for q in qnum for j in positives_of[q]],
                                         dtype=np.int64))
        # hard negatives from the frozen base (never the query's own positives)
        self.neg_idx = mine_hard_negatives(
            data.x_q, data.x_pool, [positives_of[q] for q in train_pairs.query_ids],
            rank_start=cfg.data.mining_rank_start, rank_end=cfg.data.mining_rank_end,
            per_query=cfg.data.negatives_per_pair, seed=cfg.seed)

    def judgments(self, idx: np.ndarray) -> dict[str, torch.Tensor]:
        """The batch ``idx``'s document ids (positives, hard negatives) and, over its candidates (the positives,
        then the hard negatives), where a row's query judges a candidate relevant: the contrastive losses' masks."""
        cands = np.concatenate([self.pos_idx[idx], self.neg_idx[idx].reshape(-1)])
        keys = self.row_q[idx][:, None] * self.num_docs + cands[None, :]
        at = np.minimum(np.searchsorted(self.judged, keys), len(self.judged) - 1)  # judged is sorted: no re-sort
        return {"pos_ids": torch.as_tensor(self.pos_idx[idx]), "neg_ids": torch.as_tensor(self.neg_idx[idx]),
                "known_positive": torch.as_tensor(self.judged[at] == keys)}


# ================================================================================== dev: retrieval with the heads
def _dev_eval_routes(heads: JEPAHeads, devs: list[DevSet], routes: list[str]) -> dict[str, tuple[dict, dict]]:
    """:func:`_dev_eval` for each query route of the same heads (documents mapped once); the heads keep their
    own route afterwards."""
    own = heads.query_route
    docs = {id(dev): heads.encode(dev.x_pool, "document") for dev in devs}
    try:
        out = {}
        for route in routes:
            heads.set_query_route(route)
            out[route] = _dev_eval(heads, devs, docs)
        return out
    finally:
        heads.set_query_route(own)


def _dev_eval(heads: JEPAHeads, devs: list[DevSet], docs: dict[int, np.ndarray] | None = None) -> tuple[dict, dict]:
    """Metrics averaged over the dev sets (each retrieving from its own documents), and each set's own.
    ``docs``: the dev sets' document vectors when already mapped (by ``id`` of the set)."""
    per_set = {}
    for dev in devs:
        q = heads.encode(dev.x_q, "query")
        d = docs[id(dev)] if docs is not None else heads.encode(dev.x_pool, "document")
        run = exact_search(q, dev.qids, d, dev.pool_ids, scoring=heads.config.scoring, top_k=100)
        per_set[dev.name] = evaluate_run(dev.qrels, run, ignore_identical_ids=False)["metrics"]
    mean = {k: float(np.mean([m[k] for m in per_set.values()])) for k in next(iter(per_set.values()))}
    return mean, per_set


def _dev_per_query(heads: JEPAHeads, devs: list[DevSet], metric: str) -> dict[str, float]:
    """``metric`` of every dev query (keyed by dev set and query id), for paired tests."""
    out = {}
    for dev in devs:
        run = exact_search(heads.encode(dev.x_q, "query"), dev.qids, heads.encode(dev.x_pool, "document"),
                           dev.pool_ids, scoring=heads.config.scoring, top_k=100)
        per_query = evaluate_run(dev.qrels, run, ignore_identical_ids=False)["per_query"][metric]
        out.update({f"{dev.name}\t{q}": v for q, v in per_query.items()})
    return out


# Whole-corpus dev scores are (queries × documents) per side: above this many cells, fewer dev queries choose the
# fusion (the first ones, a deterministic subset), so choosing stays cheap next to training.
FUSION_DEV_CELLS = 2_000_000


def choose_dev_fusion(heads: JEPAHeads, devs: list[DevSet], log=print, p_value: float | None = None) -> dict:
    """The hybrid (dense + BM25) fusion for the trained heads, chosen on the dev sets; the checkpoint's
    ``retrieval`` section (see :func:`jepa_rag.retriever.choose_fusion`). With ``p_value`` (the config's
    ``select_p_value``) the default checkpoint's fusion is kept unless the dev choice beats it significantly."""
    indexes: dict[int, LexicalIndex] = {}
    scored = []
    for dev in devs:
        if id(dev.x_pool) not in indexes:  # dev sets over the same pool share one BM25 index
            indexes[id(dev.x_pool)] = LexicalIndex(dev.pool_ids, dev.pool_texts)
        n = max(1, min(len(dev.qids), FUSION_DEV_CELLS // max(1, len(dev.pool_ids))))
        d = heads.encode(dev.x_pool, "document")
        q = heads.encode(dev.x_q[:n], "query")
        scored.append(DevScores(dev.name, similarity(q, d, heads.config.scoring),
                                indexes[id(dev.x_pool)].score_all(dev.query_texts[:n]), dev.qids[:n], dev.pool_ids, {k: dev.qrels[k] for k in dev.qids[:n]},
                                ignore_identical_ids=False))
    fusion, record = choose_fusion(scored, prior=fusion_of(None) if p_value is not None else None, p_value=p_value)
    if record.get("guard") and not record["guard"]["kept_choice"]:
        g = record["guard"]
        log(f"hybrid fusion: the dev choice did not beat the default checkpoint's fusion significantly "
            f"({g['n']} dev queries, one-sided p = {g['p_one_sided']:.3g}); keeping the default's")
    dense_only = next(c["mean"] for c in record["dev_curve"] if c["method"] == "blend" and c["lexical_weight"] == 0.0)
    log(f"hybrid fusion chosen on dev: {fusion.method}"
        + (f" lexical_weight {fusion.lexical_weight} ({fusion.normalization})" if fusion.method == "blend" else "")
        + f", dev ndcg@10 {record['chosen_on']['mean']:.4f} (dense alone {dense_only:.4f})")
    return record


# ============================================================== resumable state (safetensors + JSON, no pickle)
def _save_state(path: Path, heads: JEPAHeads, opt: torch.optim.Optimizer, meta: dict) -> None:
    """Resumable state as safetensors + JSON (no pickle): heads, AdamW moments, torch RNG."""
    tensors = {f"model.{k}": v.contiguous() for k, v in heads.state_dict().items()}
    for pid, st in opt.state_dict()["state"].items():
        for name, v in st.items():
            tensors[f"opt.{pid}.{name}"] = torch.as_tensor(v).contiguous()
    tensors["rng.torch"] = torch.get_rng_state()
    path.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path / "state.safetensors", save(tensors))
    # the JSON names the tensors' hash: a crash between the two renames leaves a pair that _state_ok rejects
    meta = {**meta, "tensors_sha256": sha256_file(path / "state.safetensors")}
    atomic_write_bytes(path / "state.json", json.dumps(meta, indent=2).encode())


def _state_ok(path: Path) -> bool:
    """True when ``path`` holds a complete, consistent resumable state."""
    try:
        meta = json.loads((path / "state.json").read_text())
        return meta.get("tensors_sha256") == sha256_file(path / "state.safetensors")
    except (OSError, ValueError):
        return False


def _same_config(saved: dict | None, cfg: TrainConfig) -> bool:
    """Whether a saved run was trained with ``cfg``. A field added to the config since the run was saved counts at
    its default, so upgrading jepa-rag neither restarts an interrupted run nor retrains a finished one; a key this
    version does not know (a newer jepa-rag's) means another config."""
    try:
        return to_dict(from_dict(TrainConfig, saved)) == to_dict(cfg)
    except ConfigError:
        return False


def _load_state(path: Path, heads: JEPAHeads, opt: torch.optim.Optimizer) -> dict:
    tensors = load_file(str(path / "state.safetensors"))
    heads.load_weights({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
    sd = opt.state_dict()
    state: dict[int, dict] = {}
    for k, v in tensors.items():
        if k.startswith("opt."):
            _, pid, name = k.split(".", 2)
            state.setdefault(int(pid), {})[name] = v
    sd["state"] = state
    opt.load_state_dict(sd)
    torch.set_rng_state(tensors["rng.torch"])
    return json.loads((path / "state.json").read_text())


# ====================================================================================================== train
def train(cfg: TrainConfig, *, embeddings: str | None = "auto", resume: bool = True,
          show_progress_bar: bool = True, keep_state: bool = False, log=print) -> TrainResult:
    """Train heads as ``cfg`` says and write the checkpoint to ``cfg.resolved_output_dir``.

    The resumable ``train_state/`` is removed once the checkpoint is written, unless ``keep_state``.
    """
    cfg.validate()
    t0 = time.time()
    seed_everything(cfg.seed)
    out_dir = Path(cfg.resolved_output_dir)

    # ---- data: training pairs, dev sets and document vectors, whatever the source
    data = load_training_data(cfg, embeddings=embeddings, show_progress_bar=show_progress_bar, log=log)
    check_base_dim(cfg.model, data.fingerprint.dim, data.fingerprint.model_id)
    batches = TrainingBatches(data, cfg)
    devs = data.devs

    # ---- heads and optimiser (the configured LR is what AdamW runs at, set every batch)
    torch.manual_seed(cfg.seed)
    heads, opt = _heads_and_optimizer(cfg)
    init_heads = {k: v.detach().clone() for k, v in heads.state_dict().items()}  # the same after a resume
    dev_at_init, dev_sets_at_init = _dev_eval(heads, devs)
    log("dev at init: " + "  ".join(f"{k} {v:.4f}" for k, v in dev_at_init.items()))
    # the query routes competing on dev: the configured one first (ties keep it)
    routes = [cfg.model.query_route]
    if cfg.choose_query_route and cfg.model.predictor is not None:
        routes += [r for r in ("predictor", "projection") if r != cfg.model.query_route]

    # ---- resume an interrupted run of the same config
    state_dir = out_dir / "train_state"
    best_dir = out_dir / "train_state" / "best"
    history: list[dict] = []
    start_epoch, step, best = 0, 0, {"epoch": 0, "score": -math.inf, "route": cfg.model.query_route}
    if resume and (state_dir / "state.json").is_file() and not (_state_ok(state_dir) and _state_ok(best_dir)):
        log("train_state is incomplete (interrupted while saving): starting over")
    elif resume and (state_dir / "state.json").is_file():
        meta = _load_state(state_dir, heads, opt)
        if _same_config(meta.get("config"), cfg):
            start_epoch, step, best, history = meta["epoch"], meta["step"], meta["best"], meta["history"]
            log(f"resuming after epoch {start_epoch}")
        else:
            log("train_state belongs to another config: starting over")
            heads, opt = _heads_and_optimizer(cfg)
    if cfg.select == "best_or_init" and start_epoch == 0:  # epoch 0 (the identity heads) is a candidate too
        best = {"epoch": 0, "score": dev_at_init[cfg.dev_metric], "route": cfg.model.query_route}
        _save_state(best_dir, heads, opt, {"epoch": 0})

    # ---- the loss terms the config names, from the registry
    L = cfg.loss
    contrastive = losses.get_loss("contrastive", L.contrastive)(L)
    isotropy = (losses.get_loss("isotropy", L.isotropy)(L)
                if L.lambda_isotropy and L.isotropy != losses.NO_LOSS else None)
    predictive = losses.get_loss("predictive", L.predictive)(L)
    weights = {"contrastive": L.lambda_contrastive, "isotropy": L.lambda_isotropy,
               "predictive": L.lambda_predictive, "variance": L.lambda_variance}

    # ---- the loop
    t_pool = torch.as_tensor(data.x_pool)
    t_q = torch.as_tensor(data.x_q)
    n, bs = len(data.train_pairs), cfg.optim.batch_size
    for epoch in range(start_epoch, cfg.optim.epochs):
        if _patience_ran_out(cfg, best, epoch, step):
            log(f"early stop: no better dev {cfg.dev_metric} in the {epoch - best['epoch']} epochs after epoch "
                f"{best['epoch']} (optim.patience={cfg.optim.patience})")
            break
        heads.train()
        order = np.random.default_rng([cfg.seed, epoch]).permutation(n)  # shuffled: same-document queries spread
        sums: dict[str, float] = {}
        starts = range(0, n - bs + 1 if n >= bs else 1, bs)
        bar = tqdm(starts, desc=f"epoch {epoch + 1}/{cfg.optim.epochs}", disable=not show_progress_bar, leave=False)
        for start in bar:
            idx = order[start:start + bs]
            lr = lr_at(step, epoch, cfg)
            for g in opt.param_groups:
                g["lr"] = lr
            x_q, x_p, x_n = t_q[idx], t_pool[batches.pos_idx[idx]], t_pool[batches.neg_idx[idx]]

            # context branch: the query through the projection (and the predictor when it is the query route)
            z_q = heads.projection(x_q)
            pred = heads.predictor(z_q) if heads.predictor is not None else None
            q_ret = pred if cfg.model.query_route == "predictor" else z_q
            # target branch: documents through the same projection; the predictive target is stop-gradient
            z_p = heads.projection(x_p)
            z_n = heads.projection(x_n)

            terms: dict[str, torch.Tensor] = {}
            if L.lambda_contrastive:
                terms["contrastive"] = contrastive(q_ret, z_p, z_n, **batches.judgments(idx))
            if isotropy is not None:
                terms["isotropy"] = isotropy(torch.cat([z_q, z_p]))
            if L.lambda_predictive:
                terms["predictive"] = predictive(pred, z_p)
            if L.lambda_variance:
                terms["variance"] = losses.variance_target_loss(torch.cat([z_q, z_p]), L.target_std)
            loss = sum(weights[k] * v for k, v in terms.items())

            opt.zero_grad(set_to_none=True)
            loss.backward()
            if cfg.optim.grad_clip:
                torch.nn.utils.clip_grad_norm_(heads.parameters(), cfg.optim.grad_clip)
            opt.step()
            step += 1
            sums["loss"] = sums.get("loss", 0.0) + loss.item()
            for k, v in terms.items():
                sums[k] = sums.get(k, 0.0) + v.item()
            if step % 20 == 0:
                bar.set_postfix({k: f"{v / (start // bs + 1):.4g}" for k, v in sums.items()})

        # dev retrieval: this epoch's best query route, and whether the epoch beats the best so far
        nb = max(1, len(starts))
        by_route = _dev_eval_routes(heads, devs, routes)
        route = max(routes, key=lambda r: by_route[r][0][cfg.dev_metric])  # first of equals: the configured one
        dev, dev_sets = by_route[route]
        record = {"epoch": epoch + 1, "step": step, "lr": lr_at(step, epoch, cfg),
                  "train": {k: v / nb for k, v in sums.items()}, "dev": dev}
        if len(routes) > 1:
            record["route"] = route
            record["dev_routes"] = {r: m for r, (m, _) in by_route.items()}
        if len(devs) > 1:
            record["dev_sets"] = dev_sets
        history.append(record)
        log(f"epoch {epoch + 1}: " + "  ".join(f"{k} {v:.4g}" for k, v in record["train"].items())
            + " | dev " + "  ".join(f"{k} {v:.4f}" for k, v in dev.items())
            + (" | " + "  ".join(f"{r} route {by_route[r][0][cfg.dev_metric]:.4f}" for r in routes)
               if len(routes) > 1 else ""))
        score = dev[cfg.dev_metric]
        if cfg.select == "last" or score > best["score"]:
            best = {"epoch": epoch + 1, "score": score, "route": route}
            _save_state(best_dir, heads, opt, {"epoch": epoch + 1})
        _save_state(state_dir, heads, opt, {"config": to_dict(cfg), "epoch": epoch + 1, "step": step,
                                            "best": best, "history": history})

    # ---- selection: the selected epoch's heads, queries along the selected route
    _load_state(best_dir, heads, opt)
    chosen_route = best.get("route", cfg.model.query_route)  # a state saved before routes competed has none
    heads.set_query_route(chosen_route)
    guard = None
    if cfg.select_p_value is not None and best["epoch"] > 0:
        # ship the trained heads only when they beat the untrained ones significantly on dev
        trained = _dev_per_query(heads, devs, cfg.dev_metric)
        heads.set_query_route(cfg.model.query_route)
        heads.load_weights(init_heads)
        untrained = _dev_per_query(heads, devs, cfg.dev_metric)
        t = paired_test(trained, untrained)
        p_one = t["p_ttest"] / 2 if t["mean_diff"] > 0 else 1.0 - t["p_ttest"] / 2
        p_one = p_one if math.isfinite(p_one) else 1.0  # one dev query, or equal gains everywhere: no evidence
        guard = {"epoch": best["epoch"], "dev_gain": t["mean_diff"], "p_one_sided": p_one,
                 "dev_queries": t["n"], "threshold": cfg.select_p_value, "kept": p_one < cfg.select_p_value}
        if guard["kept"]:
            _load_state(best_dir, heads, opt)
            heads.set_query_route(chosen_route)
        else:
            log(f"epoch {best['epoch']} beat the untrained heads on dev by {t['mean_diff']:+.4f} {cfg.dev_metric} over "
                f"{t['n']} queries, one-sided p = {p_one:.3g} ≥ select_p_value {cfg.select_p_value}: too little "
                "evidence to replace the base model, the checkpoint keeps the untrained heads")
            best = {"epoch": 0, "score": dev_at_init[cfg.dev_metric], "route": cfg.model.query_route}
            chosen_route = cfg.model.query_route
    if len(routes) > 1:
        log(f"query route chosen on dev: {chosen_route} (epoch {best['epoch']})")

    # ---- saving: the checkpoint holds its config, how it was trained, and its dev numbers
    n_dev = data.num_dev_pairs
    ckpt = Checkpoint(
        config=heads.config, fingerprint=data.fingerprint, state_dict=heads.state_dict(),
        training={"config": to_dict(cfg), "data_source": data.pairs.source, "data_sha256": data.pairs.content_hash(),
                  "num_train_pairs": len(data.train_pairs), "num_dev_pairs": n_dev, "seed": cfg.seed,
                  "dev_split": (cfg.data.dev_split or cfg.data.dev_beir
                                or f"{cfg.data.dev_fraction:.0%} of the training queries"),
                  "selected_epoch": best["epoch"], "selection": f"{cfg.select} on dev {cfg.dev_metric}",
                  "query_route": chosen_route, **({"select_guard": guard} if guard else {}),
                  "history": history},
        metrics={"dev_at_init": dev_at_init,
                 "dev": history[best["epoch"] - 1]["dev"] if history and best["epoch"] > 0 else dev_at_init},
    )
    if len(devs) > 1:  # each dev set's own numbers, next to their mean
        ckpt.metrics["dev_sets_at_init"] = dev_sets_at_init
        ckpt.metrics["dev_sets"] = history[best["epoch"] - 1]["dev_sets"] if best["epoch"] > 0 else dev_sets_at_init
    if best["epoch"] == 0 and guard is None:
        log(f"no epoch beat the untrained heads on dev {cfg.dev_metric} ({best['score']:.4f}): the checkpoint keeps "
            "them (identity: retrieval equals the base model's)")
    ckpt.retrieval = choose_dev_fusion(heads, devs, log, p_value=cfg.select_p_value)
    path = save_checkpoint(ckpt, out_dir / "checkpoint")
    if not keep_state:  # the checkpoint is durable now; the state only served resuming (tens of MB)
        shutil.rmtree(state_dir, ignore_errors=True)
    secs = time.time() - t0
    m, chosen = cfg.dev_metric, ckpt.metrics["dev"][cfg.dev_metric]
    identity = cfg.model.projection.residual and (cfg.model.predictor is None or cfg.model.predictor.residual)
    log(f"checkpoint (epoch {best['epoch']}) → {path}  [{secs:.1f}s]; dev {m}: untrained heads"
        f"{' (= the base model)' if identity else ''} {dev_at_init[m]:.4f} → {chosen:.4f} ({chosen - dev_at_init[m]:+.4f})")
    return TrainResult(path, best["epoch"], history, secs, dev_metric=m, dev_before=dev_at_init[m], dev_after=chosen,
                       query_route=chosen_route, num_train_pairs=len(data.train_pairs), num_dev_pairs=n_dev,
                       retrieval=ckpt.retrieval)


def _heads_and_optimizer(cfg: TrainConfig) -> tuple[JEPAHeads, torch.optim.Optimizer]:
    """Fresh heads (drawn from torch's RNG as it stands) and their AdamW at the schedule's first LR."""
    heads = JEPAHeads(cfg.model).to(cfg.device)
    opt = torch.optim.AdamW(heads.parameters(), lr=lr_at(0, 0, cfg), weight_decay=cfg.optim.weight_decay)
    return heads, opt


def _patience_ran_out(cfg: TrainConfig, best: dict, epoch: int, step: int) -> bool:
    """Whether ``optim.patience`` epochs have passed since the best one (``epoch`` of them are done). Never during
    the warm-up: a small data set takes few steps per epoch, and its first epochs run at a fraction of the LR."""
    p = cfg.optim.patience
    return p is not None and cfg.select != "last" and epoch - best["epoch"] >= p and step >= cfg.optim.warmup_steps
