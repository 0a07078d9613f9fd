"""Configuration dataclasses, saved inside every checkpoint (as nanoGPT does).

``ModelConfig`` describes what a checkpoint *is* (heads, routes, scoring); ``TrainConfig`` describes how it was
trained. Both round-trip through plain dicts, so they live in ``adapter_config.json`` and YAML files.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field, fields
from typing import Any, Literal, get_args, get_type_hints

import yaml

from .errors import ConfigError

DEFAULT_BASE_MODEL = "sentence-transformers/all-mpnet-base-v2"
# self-supervised sources: pairs made from unlabelled corpus.jsonl files (no queries, no judgments read)
CORPUS_SOURCES = ("titles", "sentences", "ict")

# Bounds on a head's sizes (the largest sentence encoders give 4096-d vectors; the shipped heads use 768 and 2x)
MAX_DIM = 1 << 16
MAX_HIDDEN_MULT = 64.0
MAX_HIDDEN_DIM = 1 << 17

QueryRoute = Literal["projection", "predictor"]
Scoring = Literal["cosine", "euclidean"]


@dataclass(frozen=True)
class HeadConfig:
    """A two-layer MLP head: Linear(in, hidden) → GELU → Dropout → Linear(hidden, out).

    ``residual=True`` adds the input back (``y = x + mlp(x)``) with the last layer zero-initialised, so that the
    untrained head is exactly the identity: step 0 equals the base model.
    """

    in_dim: int = 768
    out_dim: int = 768
    hidden_mult: float = 2.0
    dropout: float = 0.1
    residual: bool = False

    @property
    def hidden_dim(self) -> int:
        return int(round(self.in_dim * self.hidden_mult))

    def validate(self, name: str) -> None:
        # every size is checked before anything is allocated: a checkpoint's config is input like any other, and
        # an edited one (hidden_mult=2000, NaN, 1e300) must be refused, not discovered by the allocator
        for field_name in ("in_dim", "out_dim"):
            value = getattr(self, field_name)
            if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_DIM:
                raise ConfigError(f"{name}: {field_name} must be an integer in [1, {MAX_DIM}], got {value!r}")
        for field_name in ("hidden_mult", "dropout"):
            value = getattr(self, field_name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise ConfigError(f"{name}: {field_name} must be a finite number, got {value!r}")
        if not isinstance(self.residual, bool):
            raise ConfigError(f"{name}: residual must be true or false, got {self.residual!r}")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"{name}: dropout must be in [0, 1), got {self.dropout}")
        if not 0 < self.hidden_mult <= MAX_HIDDEN_MULT or not 1 <= self.hidden_dim <= MAX_HIDDEN_DIM:
            raise ConfigError(f"{name}: hidden_mult must be in (0, {MAX_HIDDEN_MULT}] and give a hidden layer of 1 to "
                              f"{MAX_HIDDEN_DIM} units, got {self.hidden_mult} ({self.in_dim} inputs)")
        if self.residual and self.in_dim != self.out_dim:
            raise ConfigError(
                f"{name}: a residual (identity-initialised) head needs in_dim == out_dim, "
                f"got {self.in_dim} → {self.out_dim}"
            )


@dataclass(frozen=True)
class ModelConfig:
    """What a checkpoint is: the base model, the heads, how queries are routed and how scores are computed."""

    base_model: str = DEFAULT_BASE_MODEL
    projection: HeadConfig = field(default_factory=HeadConfig)
    predictor: HeadConfig | None = field(default_factory=HeadConfig)
    query_route: QueryRoute = "projection"
    normalize: bool = True
    scoring: Scoring = "cosine"

    def validate(self) -> None:
        if not isinstance(self.projection, HeadConfig):
            raise ConfigError(f"projection: expected a head config mapping, got {self.projection!r:.60}")
        if self.predictor is not None and not isinstance(self.predictor, HeadConfig):
            raise ConfigError(f"predictor: expected a head config mapping or null, got {self.predictor!r:.60}")
        if not isinstance(self.base_model, str) or not 0 < len(self.base_model) <= 1000:
            raise ConfigError(f"base_model must be a model name or folder (1 to 1000 characters), got {self.base_model!r:.60}")
        if not isinstance(self.normalize, bool):
            raise ConfigError(f"normalize must be true or false, got {self.normalize!r}")
        self.projection.validate("projection")
        if self.predictor is not None:
            self.predictor.validate("predictor")
            if self.predictor.in_dim != self.projection.out_dim or self.predictor.out_dim != self.projection.out_dim:
                raise ConfigError(
                    "predictor: in_dim and out_dim must equal the projection's out_dim "
                    f"({self.projection.out_dim}), got {self.predictor.in_dim} → {self.predictor.out_dim}"
                )
        _check_choice("query_route", self.query_route, QueryRoute)
        _check_choice("scoring", self.scoring, Scoring)
        if self.query_route == "predictor" and self.predictor is None:
            raise ConfigError("query_route='predictor' needs a predictor head, but predictor is null")
        if self.scoring == "cosine" and not self.normalize:
            # cosine on unnormalised vectors is still cosine; we normalise at scoring time, so this is allowed
            pass

    @property
    def dim(self) -> int:
        return self.projection.out_dim


@dataclass(frozen=True)
class DataConfig:
    """Where the training pairs come from.

    ``source``: ``msmarco`` (the bundled/official MS MARCO pairs), ``pairs`` (a JSONL file with ``query`` and
    ``positive`` fields, ``path``), ``beir`` (a BEIR folder ``path`` and its ``split``), or, self-supervised over the corpora of the
    comma-separated BEIR folders in ``path`` with no judgments read, ``titles`` (title → document) or
    ``sentences`` (one sentence of the text → the document) or ``ict`` (inverse cloze: one sentence → the document
    without that sentence).
    """

    source: Literal["msmarco", "pairs", "beir", "titles", "sentences", "ict"] = "msmarco"
    path: str | None = None
    split: str = "train"
    dev_fraction: float = 0.1
    # source=beir only: take the dev set from this split's judgments (e.g. NFCorpus' ``dev``) instead of carving
    # dev_fraction of the training queries out; all of ``split`` is then trained on
    dev_split: str | None = None
    # any source: select on the judgments of other BEIR folders instead, ``folder:split[,folder:split…]`` (e.g.
    # ``scifact:train,nfcorpus:dev``); each retrieves from its own corpus and the dev metric is the mean over them.
    # For training on one kind of data (MS MARCO, your unlabelled corpus) and choosing on a few labelled queries.
    dev_beir: str | None = None
    max_pairs: int | None = None
    # source=pairs only: your corpus (a corpus.jsonl, a JSONL of {id?, title?, text} or a folder of .txt/.md
    # files); hard negatives are mined from it and dev queries ranked against it, not just the pairs' positives
    corpus: str | None = None

    @property
    def dev_beir_sets(self) -> list[tuple[str, str]]:
        """``dev_beir`` as ``(folder, split)`` pairs (the split follows the last colon)."""
        return [tuple(e.strip().rpartition(":")[::2]) for e in (self.dev_beir or "").split(",") if self.dev_beir]

    # keep at most this many training pairs per query (drawn with the seed); the dropped positives stay masked
    max_positives_per_query: int | None = None
    # hard negatives mined with the frozen base: one drawn per pair from ranks [start, end) excluding positives
    negatives_per_pair: int = 1
    mining_rank_start: int = 3
    mining_rank_end: int = 30


@dataclass(frozen=True)
class LossConfig:
    """Loss = λ_c·contrastive + λ_i·isotropy + λ_p·predictive + λ_v·variance (terms with λ = 0 are skipped).

    ``contrastive``, ``isotropy`` and ``predictive`` name losses in :data:`jepa_rag.losses.LOSSES` (``triplet``,
    ``infonce``, ``multi_positive_infonce``; ``covariance``, ``sigreg``, ``uniformity`` or ``none``; ``mse``,
    ``cosine``), so a loss registered there can be named here.
    """

    contrastive: str = "infonce"
    lambda_contrastive: float = 1.0
    margin: float = 0.1
    temperature: float = 0.05
    isotropy: str = "none"
    lambda_isotropy: float = 0.0
    predictive: str = "mse"
    lambda_predictive: float = 0.0
    lambda_variance: float = 0.0
    target_std: float = 1.0

    def validate(self) -> None:
        from .losses import NO_LOSS, get_loss  # local: importing the config module stays free of torch

        get_loss("contrastive", self.contrastive)
        if self.isotropy != NO_LOSS:
            get_loss("isotropy", self.isotropy)
        get_loss("predictive", self.predictive)


@dataclass(frozen=True)
class OptimConfig:
    """AdamW with a linear warm-up.

    ``scheduler_step='batch'`` is the correct schedule. ``'epoch'`` reproduces the seed's bug (the warm-up scheduler
    stepped once per epoch, so the LR stays at ``lr * warmup_start_factor`` for the whole run).
    """

    lr: float = 1e-3
    weight_decay: float = 0.01
    warmup_steps: int = 100
    warmup_start_factor: float = 0.1
    scheduler_step: Literal["batch", "epoch"] = "batch"
    grad_clip: float = 1.0
    batch_size: int = 64
    epochs: int = 3
    # stop once this many epochs in a row have not beaten the best dev score (never before the warm-up has ended);
    # ``epochs`` is then the most that run. None: always run ``epochs``
    patience: int | None = None


@dataclass(frozen=True)
class TrainConfig:
    """Everything ``python -m train`` needs; saved inside the checkpoint it writes."""

    name: str = "run"
    seed: int = 0
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    output_dir: str = "runs/{name}/seed{seed}"
    # 'best' keeps the epoch with the best dev metric; 'last' keeps the final epoch (the seed's protocol)
    # best: the epoch with the best dev score; last: the final epoch; best_or_init: like best, but the untrained
    # heads (epoch 0, identity = the base model; residual heads only) compete too, so training never ships heads
    # that are worse on dev than no heads at all
    select: Literal["best", "last", "best_or_init"] = "best"
    dev_metric: str = "ndcg@10"
    device: str = "cpu"
    # with a predictor head: score both query routes (predictor, projection) of the same heads on dev at every
    # epoch and keep the better (epoch, route); the checkpoint stores the chosen route
    choose_query_route: bool = False
    # with select=best_or_init: ship the selected epoch only when it beats the untrained heads on dev by a one-sided
    # paired t-test over the dev queries at this p-value (else the untrained heads): a few dev queries, or labels
    # that miss most relevant documents, make a small dev gain noise, and noise must not replace the base model
    select_p_value: float | None = None

    def validate(self) -> None:
        self.model.validate()
        self.loss.validate()
        if self.optim.epochs < 1:
            raise ConfigError(f"optim.epochs must be ≥ 1, got {self.optim.epochs}")
        if self.optim.batch_size < 2:
            raise ConfigError(f"optim.batch_size must be ≥ 2, got {self.optim.batch_size}")
        if not 0.0 < self.data.dev_fraction < 1.0:
            raise ConfigError(f"data.dev_fraction must be in (0, 1), got {self.data.dev_fraction}")
        if self.data.source in ("pairs", "beir", *CORPUS_SOURCES) and not self.data.path:
            raise ConfigError(f"data.source={self.data.source!r} needs data.path")
        if self.model.query_route == "predictor" and self.loss.lambda_predictive == 0:
            raise ConfigError("query_route='predictor' with lambda_predictive=0 would route queries through an untrained head")
        if self.loss.lambda_predictive > 0 and self.model.predictor is None:
            raise ConfigError("lambda_predictive > 0 needs a predictor head, but model.predictor is null")
        if self.select == "best_or_init" and not (self.model.projection.residual and (
                self.model.predictor is None or self.model.predictor.residual)):
            raise ConfigError("select='best_or_init' needs residual heads (identity at initialisation), so that "
                              "epoch 0 is the base model; set model.projection.residual=true and model.predictor.residual=true")
        if self.data.max_positives_per_query is not None and self.data.max_positives_per_query < 1:
            raise ConfigError(f"data.max_positives_per_query must be ≥ 1, got {self.data.max_positives_per_query}")
        if self.data.negatives_per_pair < 0:
            raise ConfigError(f"data.negatives_per_pair must be ≥ 0, got {self.data.negatives_per_pair}")
        if self.data.negatives_per_pair == 0 and self.loss.lambda_contrastive and self.loss.contrastive == "triplet":
            raise ConfigError("loss.contrastive='triplet' needs a hard negative per pair: set data.negatives_per_pair ≥ 1 "
                              "(InfoNCE can train on in-batch negatives alone)")
        if self.data.dev_split is not None and self.data.source != "beir":
            raise ConfigError(f"data.dev_split needs data.source='beir', got {self.data.source!r}")
        if self.data.dev_split is not None and self.data.dev_split == self.data.split:
            raise ConfigError(f"data.dev_split must differ from data.split ({self.data.split!r}): selecting on the "
                              "training judgments is not a dev split")
        if self.data.dev_beir is not None:
            if self.data.dev_split is not None:
                raise ConfigError("set data.dev_split or data.dev_beir, not both")
            if not all(folder and split for folder, split in self.data.dev_beir_sets):
                raise ConfigError(f"data.dev_beir: {self.data.dev_beir!r} is not 'folder:split' or a comma-separated "
                                  "list of them (e.g. 'scifact:train,nfcorpus:dev')")
        if self.select_p_value is not None and (self.select != "best_or_init" or not 0 < self.select_p_value <= 1):
            raise ConfigError(f"select_p_value needs select='best_or_init' and a value in (0, 1], got "
                              f"{self.select_p_value} with select={self.select!r}")
        if self.data.corpus is not None and self.data.source != "pairs":
            raise ConfigError(f"data.corpus goes with data.source='pairs' (--pairs), got {self.data.source!r}")
        if self.optim.patience is not None and self.optim.patience < 1:
            raise ConfigError(f"optim.patience must be ≥ 1 (or null), got {self.optim.patience}")
        if self.data.mining_rank_end <= self.data.mining_rank_start:
            raise ConfigError("data.mining_rank_end must be greater than data.mining_rank_start")

    @property
    def resolved_output_dir(self) -> str:
        return self.output_dir.format(name=self.name, seed=self.seed)


def _check_choice(name: str, value: Any, literal: Any) -> None:
    allowed = get_args(literal)
    if value not in allowed:
        raise ConfigError(f"{name} must be one of {list(allowed)}, got {value!r}")


def to_dict(cfg: Any) -> dict[str, Any]:
    return dataclasses.asdict(cfg)


def from_dict(cls: type, data: dict[str, Any] | None, path: str = "") -> Any:
    """Build a (nested) config dataclass from a dict, refusing unknown keys with their dotted path."""
    data = {} if data is None else data
    if not isinstance(data, dict):
        raise ConfigError(f"{path or cls.__name__}: expected a mapping, got {type(data).__name__}")
    hints = get_type_hints(cls)
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(data) - known)
    if unknown:
        where = f"{path}." if path else ""
        raise ConfigError(f"unknown config key(s): {', '.join(where + k for k in unknown)}; known: {sorted(known)}")
    kwargs: dict[str, Any] = {}
    for name, value in data.items():
        hint = hints[name]
        sub = _dataclass_in(hint)
        dotted = f"{path}.{name}" if path else name
        if sub is not None and isinstance(value, dict):
            kwargs[name] = from_dict(sub, value, dotted)
        else:
            literal_choices = _literal_choices(hint)
            if literal_choices and value not in literal_choices:
                raise ConfigError(f"{dotted} must be one of {list(literal_choices)}, got {value!r}")
            kwargs[name] = _coerce(dotted, hint, value)
    return cls(**kwargs)


def _coerce(dotted: str, hint: Any, value: Any) -> Any:
    """YAML reads ``2e-4`` as a string and ``1`` as an int: convert to the field's scalar type, or say why not."""
    if value is None:
        return value
    args = [a for a in get_args(hint) if a is not type(None)]
    if len(args) == 1 and args[0] in (float, int, bool):  # ``float | None`` and the like: the scalar inside
        hint = args[0]
    if hint is float and isinstance(value, (str, int)) and not isinstance(value, bool):
        try:
            return float(value)
        except ValueError:
            raise ConfigError(f"{dotted} must be a number, got {value!r}") from None
    if hint is int and not isinstance(value, int):
        raise ConfigError(f"{dotted} must be an integer, got {value!r}")
    if hint is bool and not isinstance(value, bool):
        raise ConfigError(f"{dotted} must be true or false, got {value!r}")
    return value


def _dataclass_in(hint: Any) -> type | None:
    if dataclasses.is_dataclass(hint):
        return hint
    for arg in get_args(hint):
        if dataclasses.is_dataclass(arg):
            return arg
    return None


def _literal_choices(hint: Any) -> tuple:
    if getattr(hint, "__origin__", None) is Literal:
        return get_args(hint)
    return ()


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply ``key.sub=value`` overrides (values parsed as YAML scalars) to a nested dict."""
    out = _deepcopy(data)
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"--set expects key=value, got {item!r}")
        key, raw = item.split("=", 1)
        value = yaml.safe_load(raw) if raw != "" else None
        node = out
        parts = key.strip().split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"--set {key}: {part} is not a section")
        node[parts[-1]] = value
    return out


def _deepcopy(d: Any) -> Any:
    if isinstance(d, dict):
        return {k: _deepcopy(v) for k, v in d.items()}
    if isinstance(d, list):
        return [_deepcopy(v) for v in d]
    return d


def load_train_config(path: str | None, overrides: list[str] | None = None) -> TrainConfig:
    """Read a YAML training config, apply ``--set`` overrides and validate."""
    data: dict[str, Any] = {}
    if path is not None:
        try:
            with open(path, encoding="utf-8") as fh:
                data = yaml.safe_load(fh) or {}
        except FileNotFoundError:
            raise ConfigError(f"config file not found: {path}") from None
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    data = apply_overrides(data, overrides or [])
    cfg = from_dict(TrainConfig, data)
    cfg.validate()
    return cfg
