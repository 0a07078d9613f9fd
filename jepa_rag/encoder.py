"""The JEPA encoder: frozen base model + :class:`JEPAHeads` (projection, + predictor for queries), with the BEIR
contract.

``encode_queries(list[str])`` and ``encode_corpus(list[dict | str])`` are all BEIR (and our integrations) need.
Documents take the document route (projection); queries take the projection, or projection → predictor when the
checkpoint's ``query_route`` says so (see :class:`JEPAHeads`). Base-model outputs go through the on-disk
:class:`EmbeddingCache`.
"""

from __future__ import annotations

import functools
import logging
import os
import sys
import threading
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from .base_model import Fingerprint, fingerprint_of_folder, resolve_base_model
from .cache import EmbeddingCache
from .checkpoint import Checkpoint, load_checkpoint
from .config import DEFAULT_BASE_MODEL, ModelConfig
from .data import doc_text
from .errors import CheckpointError, ConfigError, InvalidInputError
from .heads import CHUNK, JEPAHeads, Route, check_base_dim

DEFAULT_CHECKPOINT = Path(__file__).resolve().parent / "checkpoints" / "default"
VANILLA_NAMES = (None, "none", "vanilla")
# the frozen base's arithmetic: "auto" (bf16 where the device computes it natively, else fp32), fp32, or bfloat16
# autocast (see from_pretrained)
PRECISIONS = ("auto", "fp32", "bf16")
QUERY_CACHE_SIZE = 4096
# the query LRU's bound in bytes (texts and vectors), besides its bound in entries: a few long queries must not hold
# what thousands of short ones would
QUERY_CACHE_BYTES = 32 << 20
# Queries longer than this many characters are cut to it (one warning per encoder). Why 10,000: the base models
# read at most a few hundred tokens (all-mpnet-base-v2: 384, ~2,000 characters of English), so a longer query only
# costs time (a 1 MB query took 15 s to tokenize and score) and memory; BM25 on the hybrid paths gets the same cut
# (JEPAEncoder.bound_queries) so both sides see one query.
MAX_QUERY_CHARS = 10_000
log = logging.getLogger("jepa_rag")
_warned_slow_bf16 = False


def check_precision(precision: str) -> str:
    """``precision`` if it is one of :data:`PRECISIONS`, else :class:`ConfigError` naming the allowed values."""
    if precision not in PRECISIONS:
        raise ConfigError(f"precision must be one of {list(PRECISIONS)}, got {precision!r}")
    return precision


def cpu_has_native_bf16() -> bool:
    """Whether this CPU computes bfloat16 in hardware (x86 ``avx512_bf16`` or ``amx_bf16``).

    Why it matters: without them torch emulates bf16 matmuls, which made MPNet about 3x *slower* than fp32 on an
    Intel Xeon with AVX-512 but no AVX512_BF16, while an AMD EPYC with native bf16 ran it ~1.8x faster.
    """
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as fh:
            for line in fh:
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    return bool(flags & {"avx512_bf16", "amx_bf16"})
    except OSError:
        pass
    return False


def device_has_native_bf16(device: str | None) -> bool:
    kind = torch.device(device or "cpu").type
    if kind == "cuda":
        return bool(torch.cuda.is_available() and torch.cuda.is_bf16_supported())
    if kind == "cpu":
        return cpu_has_native_bf16()
    return False


def resolve_precision(precision: str, device: str | None) -> str:
    """The arithmetic to run: ``"auto"`` becomes bf16 where ``device`` has native bf16, fp32 elsewhere; an explicit
    ``"bf16"`` on a CPU without it is kept, with a one-time warning that it will be slower."""
    global _warned_slow_bf16
    check_precision(precision)
    native = device_has_native_bf16(device)
    if precision == "auto":
        return "bf16" if native else "fp32"
    if precision == "bf16" and not native and not _warned_slow_bf16:
        _warned_slow_bf16 = True
        log.warning("precision='bf16' on a %s without native bfloat16 (no avx512_bf16/amx_bf16): torch emulates it, "
                    "which is slower than fp32 here; use precision='auto' or 'fp32'", torch.device(device or "cpu"))
    return precision


class _VectorLRU:
    """A bounded, thread-safe text -> vector map: recent query vectors without writing any query to disk.

    Bounded in entries (``size``) and in bytes (``max_bytes``, the texts' and vectors' memory): the oldest go first."""

    def __init__(self, size: int, max_bytes: int = QUERY_CACHE_BYTES):
        self.size = size
        self.max_bytes = max_bytes
        self.bytes = 0
        self._items: OrderedDict[str, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    @staticmethod
    def _cost(text: str, vec: np.ndarray) -> int:
        return sys.getsizeof(text) + vec.nbytes

    def __len__(self) -> int:
        return len(self._items)

    def get(self, text: str) -> np.ndarray | None:
        with self._lock:
            vec = self._items.get(text)
            if vec is not None:
                self._items.move_to_end(text)
            return vec

    def put(self, text: str, vec: np.ndarray) -> None:
        cost = self._cost(text, vec)
        if self.size <= 0 or cost > self.max_bytes:
            return
        with self._lock:
            old = self._items.pop(text, None)
            if old is not None:
                self.bytes -= self._cost(text, old)
            self._items[text] = vec
            self.bytes += cost
            while len(self._items) > self.size or self.bytes > self.max_bytes:
                gone, gone_vec = self._items.popitem(last=False)
                self.bytes -= self._cost(gone, gone_vec)


def validate_texts(texts: object, what: str = "texts") -> list[str]:
    """Refuse anything but a list of non-empty strings, naming the offending item."""
    if isinstance(texts, (str, bytes)):
        raise InvalidInputError(f"{what}: expected a list of strings, got a single {type(texts).__name__}; wrap it in a list")
    if not isinstance(texts, Sequence) and not hasattr(texts, "__iter__"):
        raise InvalidInputError(f"{what}: expected a list of strings, got {type(texts).__name__}")
    out = list(texts)
    for i, t in enumerate(out):
        if not isinstance(t, str):
            raise InvalidInputError(f"{what}[{i}]: expected a string, got {type(t).__name__} ({t!r:.40})")
        if not t.strip():
            raise InvalidInputError(f"{what}[{i}]: empty or whitespace-only text cannot be embedded")
        try:
            t.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise InvalidInputError(
                f"{what}[{i}]: not valid Unicode (lone surrogate {t[exc.start]!r} at position {exc.start}), as left "
                "by a broken JSON escape or a bytes-to-str decode with errors='surrogateescape'") from None
    return out


class JEPAEncoder:
    """Frozen base encoder + trainable heads.

    Build one with :meth:`from_pretrained`. ``config=None`` is the vanilla base model (no heads, cosine).
    """

    def __init__(
        self,
        config: ModelConfig | None,
        fingerprint: Fingerprint,
        base_folder: Path,
        state_dict: dict[str, torch.Tensor] | None = None,
        *,
        device: str | None = None,
        use_cache: bool = True,
        cache_dir: str | os.PathLike | None = None,
        batch_size: int = 32,
        checkpoint_path: Path | None = None,
        precision: str = "auto",
        cache_queries: bool = False,
        query_cache_size: int = QUERY_CACHE_SIZE,
        max_query_chars: int | None = MAX_QUERY_CHARS,
        query_cache_bytes: int = QUERY_CACHE_BYTES,
    ):
        self.requested_precision = check_precision(precision)
        self.precision = resolve_precision(precision, device)
        self.cache_queries = bool(cache_queries)
        self.max_query_chars = check_max_query_chars(max_query_chars)
        self.truncated_queries = 0
        self._warned_long_query = False
        self._query_lru = _VectorLRU(query_cache_size, query_cache_bytes)
        self._empty_vector: np.ndarray | None = None
        self.truncated_texts = 0
        self._warned_truncation = False
        self.fingerprint = fingerprint
        self.base_folder = Path(base_folder)
        self.device = device or "cpu"
        self.batch_size = batch_size
        self.checkpoint_path = checkpoint_path
        self.cache = (EmbeddingCache(fingerprint, cache_dir, variant="" if self.precision == "fp32" else self.precision)
                      if use_cache else None)
        self._base = None
        self._load_lock = threading.Lock()
        self._encode_lock = threading.Lock()
        self.jepa_heads: JEPAHeads | None = None
        if config is not None:
            check_base_dim(config, fingerprint.dim, fingerprint.model_id)
            self.jepa_heads = JEPAHeads(config)
            if state_dict is not None:
                self.jepa_heads.load_weights(state_dict)
            self.jepa_heads.to(self.device).eval()

    # ------------------------------------------------------------------------------------------ construction
    @classmethod
    def from_pretrained(
        cls,
        checkpoint: str | os.PathLike | None = "default",
        *,
        base_model: str | None = None,
        device: str | None = None,
        use_cache: bool = True,
        cache_dir: str | os.PathLike | None = None,
        batch_size: int = 32,
        precision: str = "auto",
        cache_queries: bool = False,
        query_cache_size: int = QUERY_CACHE_SIZE,
        max_query_chars: int | None = MAX_QUERY_CHARS,
        query_cache_bytes: int = QUERY_CACHE_BYTES,
    ) -> JEPAEncoder:
        """Load a checkpoint folder, ``"default"`` (the one jepa-rag ships), or ``"none"`` (vanilla base model).

        ``base_model`` overrides where the base model comes from (a folder or Hub id); it must be the model the
        checkpoint was trained on, or :class:`CheckpointError` is raised.

        ``precision="auto"`` (the default) runs the frozen base under bfloat16 autocast where the device computes
        bf16 natively (CPU flags ``avx512_bf16``/``amx_bf16``, or a CUDA GPU that supports it) and in fp32
        elsewhere; ``"bf16"`` forces it (slower than fp32 on a CPU without native bf16: a warning says so),
        ``"fp32"`` is the reference arithmetic. bf16 vectors agree with fp32 to cosine >= 0.9997 (SciFact NDCG@10
        within 0.0001) and are cached apart from the fp32 ones; the heads always run in fp32.

        Caching: documents' base vectors are stored on disk (``cache_dir``, default ``~/.cache/jepa_rag/
        embeddings``; ``use_cache=False`` turns it off). Queries are read from that store but not written to it
        unless ``cache_queries=True``: a serving process sees millions of distinct queries, so they go to a
        bounded in-memory LRU of ``query_cache_size`` vectors and ``query_cache_bytes`` bytes per encoder instead.

        Queries longer than ``max_query_chars`` characters (default :data:`MAX_QUERY_CHARS`; ``None``: no limit) are
        cut to their first ``max_query_chars`` characters, with one warning per encoder (counted in
        ``encoder.truncated_queries``); the base model reads only their first few hundred tokens anyway.
        """
        ckpt: Checkpoint | None = None
        if checkpoint not in VANILLA_NAMES:
            path = DEFAULT_CHECKPOINT if str(checkpoint) == "default" else Path(checkpoint)
            if str(checkpoint) == "default" and not path.is_dir():
                raise CheckpointError(
                    f"this jepa-rag install ships no default checkpoint (looked in {path}); pass a checkpoint folder "
                    "written by `python -m train`, or checkpoint='none' for the plain base model")
            ckpt = load_checkpoint(path)
        model_name = base_model or (ckpt.config.base_model if ckpt else DEFAULT_BASE_MODEL)
        folder = resolve_base_model(model_name)
        fingerprint = fingerprint_of_folder(folder, ckpt.config.base_model if ckpt and not base_model else model_name)
        if ckpt is not None:
            if not ckpt.fingerprint.same_model(fingerprint):
                raise CheckpointError(
                    f"{ckpt.path}: trained on base model {ckpt.fingerprint.model_id} "
                    f"(weights {ckpt.fingerprint.weights_sha256[:12]}…, dim {ckpt.fingerprint.dim}, "
                    f"max_seq_length {ckpt.fingerprint.max_seq_length}), but the base model given is {model_name} "
                    f"(weights {fingerprint.weights_sha256[:12]}…, dim {fingerprint.dim}, "
                    f"max_seq_length {fingerprint.max_seq_length}); heads only work on the model they were trained on")
            fingerprint = ckpt.fingerprint
        return cls(
            ckpt.config if ckpt else None, fingerprint, folder, ckpt.state_dict if ckpt else None,
            device=device, use_cache=use_cache, cache_dir=cache_dir, batch_size=batch_size,
            checkpoint_path=ckpt.path if ckpt else None, precision=precision, cache_queries=cache_queries,
            query_cache_size=query_cache_size, max_query_chars=max_query_chars, query_cache_bytes=query_cache_bytes,
        )

    # the heads' parts, for code written against the encoder before JEPAHeads held them
    # ------------------------------------------------------------------------------------------ properties
    @property
    def config(self) -> ModelConfig | None:
        """The checkpoint's model config (the heads'), ``None`` for the vanilla base model."""
        return self.jepa_heads.config if self.jepa_heads is not None else None

    @property
    def dim(self) -> int:
        return self.config.dim if self.config is not None else self.fingerprint.dim

    @property
    def normalize(self) -> bool:
        return True if self.config is None else self.config.normalize

    @property
    def scoring(self) -> str:
        return "cosine" if self.config is None else self.config.scoring

    @property
    def query_route(self) -> str:
        return "projection" if self.config is None else self.config.query_route

    @property
    def base(self):
        """The frozen SentenceTransformer, loaded on first use (cache hits never need it)."""
        if self._base is None:
            with self._load_lock:
                if self._base is None:
                    from sentence_transformers import SentenceTransformer

                    from .quiet_loading import quiet_model_loading

                    with quiet_model_loading():
                        model = SentenceTransformer(str(self.base_folder), device=self.device, local_files_only=True)
                    model.eval()
                    for p in model.parameters():
                        p.requires_grad_(False)
                    self._base = model
        return self._base

    # ------------------------------------------------------------------------------------------ encoding
    def _encode_with_base(self, texts: list[str], batch_size: int | None = None) -> np.ndarray:
        model = self.base
        self._note_truncation(model, texts)
        batch_size = batch_size or self.batch_size
        with self._encode_lock:  # one forward at a time: torch already uses every core, threads only contend
            if self.precision == "fp32":
                return model.encode(
                    texts, batch_size=batch_size, convert_to_numpy=True, show_progress_bar=False,
                    normalize_embeddings=False)
            with torch.autocast(torch.device(self.device).type, dtype=torch.bfloat16):
                out = model.encode(texts, batch_size=batch_size, convert_to_tensor=True, show_progress_bar=False,
                                   normalize_embeddings=False)
            return out.float().cpu().numpy()

    def _note_truncation(self, model, texts: list[str]) -> None:
        """Count texts longer than the base model's ``max_seq_length`` (it silently keeps only their start); warn
        once per encoder. Only texts with more UTF-8 bytes than that many tokens are tokenized: a token never
        covers less than one byte, so shorter texts cannot be cut."""
        limit = int(getattr(model, "max_seq_length", None) or self.fingerprint.max_seq_length)
        long = [t for t in texts if len(t.encode("utf-8")) + 2 > limit]
        if not long:
            return
        lengths = [len(ids) for ids in model.tokenizer(long, add_special_tokens=True, truncation=False,
                                                       verbose=False)["input_ids"]]
        cut = [n for n in lengths if n > limit]
        if not cut:
            return
        self.truncated_texts += len(cut)
        if not self._warned_truncation:
            self._warned_truncation = True
            log.warning(
                "%d of %d texts exceed the base model's max_seq_length of %d tokens (the longest has %d) and were "
                "truncated: only their first %d tokens are embedded. Split long documents into chunks before "
                "embedding them (LlamaIndex's SentenceSplitter, LangChain's RecursiveCharacterTextSplitter). "
                "Further truncations are counted in encoder.truncated_texts, not logged.",
                len(cut), len(texts), limit, max(cut), limit)

    def embed_base(self, texts: Sequence[str], *, show_progress_bar: bool | None = None,
                   batch_size: int | None = None) -> np.ndarray:
        """Frozen base-model vectors for ``texts`` (float32, N×d), read from or added to the on-disk cache."""
        texts = list(texts)
        if not texts:
            return np.zeros((0, self.fingerprint.dim), dtype=np.float32)
        encode = functools.partial(self._encode_with_base, batch_size=batch_size)
        if self.cache is not None:
            return self.cache.embed(texts, encode, show_progress_bar=show_progress_bar)
        # each distinct text once, as the cache does: the same text under two ids gets the same vector (another
        # batch would pad it differently), so their scores tie exactly and ties go by corpus order
        unique = list(dict.fromkeys(texts))
        if len(unique) == len(texts):
            return np.asarray(encode(texts), dtype=np.float32)
        by_text = dict(zip(unique, np.asarray(encode(unique), dtype=np.float32)))
        return np.stack([by_text[t] for t in texts])

    def embed_queries_base(self, texts: Sequence[str], *, show_progress_bar: bool | None = None,
                           batch_size: int | None = None) -> np.ndarray:
        """Base vectors for queries: like :meth:`embed_base`, but unless ``cache_queries`` is set, new queries go to
        the bounded in-memory LRU instead of the disk (the disk is still read)."""
        if self.cache_queries:
            return self.embed_base(texts, show_progress_bar=show_progress_bar, batch_size=batch_size)
        texts = list(texts)
        out = np.zeros((len(texts), self.fingerprint.dim), dtype=np.float32)
        missing = []
        for i, text in enumerate(texts):
            vec = self._query_lru.get(text)
            if vec is None:
                missing.append(i)
            else:
                out[i] = vec
        if missing:
            todo = [texts[i] for i in missing]
            encode = functools.partial(self._encode_with_base, batch_size=batch_size)
            if self.cache is not None:
                vecs = self.cache.embed(todo, encode, show_progress_bar=show_progress_bar, store=False)
            else:
                unique = list(dict.fromkeys(todo))
                by_text = dict(zip(unique, np.asarray(encode(unique), dtype=np.float32)))
                vecs = np.stack([by_text[t] for t in todo])
            for i, text, vec in zip(missing, todo, vecs):
                out[i] = vec
                self._query_lru.put(text, vec.copy())
        return out

    @torch.no_grad()
    def apply_heads(self, x: np.ndarray | torch.Tensor, route: Route) -> np.ndarray:
        """Map base vectors to retrieval vectors along the query or document route (see :meth:`JEPAHeads.encode`)."""
        if route not in ("query", "document"):
            raise InvalidInputError(f"route must be 'query' or 'document', got {route!r}")
        t = torch.as_tensor(np.asarray(x, dtype=np.float32))
        if t.ndim != 2 or t.shape[1] != self.fingerprint.dim:
            raise InvalidInputError(f"expected base vectors of shape (N, {self.fingerprint.dim}), got {tuple(t.shape)}")
        if self.jepa_heads is not None:
            return self.jepa_heads.encode(t, route)
        # the vanilla base model: its own vectors, normalised
        chunks = [F.normalize(t[i:i + CHUNK].to(self.device), dim=-1).cpu() for i in range(0, len(t), CHUNK)]
        out = torch.cat(chunks).numpy() if chunks else np.zeros((0, self.dim), np.float32)
        if not np.isfinite(out).all():
            raise InvalidInputError("the base vectors hold non-finite values (NaN/inf)")
        return out

    def bound_queries(self, queries: Sequence[str]) -> list[str]:
        """``queries`` validated, each cut to :attr:`max_query_chars` characters (one warning per encoder).

        :meth:`encode_queries` applies it; a hybrid path applies it before BM25 too, so both sides see one query."""
        queries = validate_texts(queries, "queries")
        limit = self.max_query_chars
        if limit is None or all(len(q) <= limit for q in queries):
            return queries
        long = [len(q) for q in queries if len(q) > limit]
        self.truncated_queries += len(long)
        if not self._warned_long_query:
            self._warned_long_query = True
            log.warning("%d quer%s longer than max_query_chars=%d characters (the longest has %d) cut to their first "
                        "%d characters; further cuts are counted in encoder.truncated_queries, not logged",
                        len(long), "y" if len(long) == 1 else "ies", limit, max(long), limit)
        return [q[:limit] if len(q) > limit else q for q in queries]

    def encode_queries(self, queries: Sequence[str], batch_size: int | None = None,
                       show_progress_bar: bool | None = None, **_: object) -> np.ndarray:
        """Query vectors (N×dim). An empty list gives an empty (0, dim) array. Queries longer than
        :attr:`max_query_chars` are cut (:meth:`bound_queries`)."""
        queries = self.bound_queries(queries)
        base = self.embed_queries_base(queries, show_progress_bar=show_progress_bar, batch_size=batch_size)
        return self.apply_heads(base, "query")

    def encode_corpus(self, corpus: Sequence[dict | str] | dict[str, dict], batch_size: int | None = None,
                      show_progress_bar: bool | None = None, **_: object) -> np.ndarray:
        """Document vectors (N×dim). Each document is a ``{"title", "text"}`` dict or a string."""
        if isinstance(corpus, dict):
            corpus = list(corpus.values())
        if isinstance(corpus, (str, bytes)):
            raise InvalidInputError("corpus: expected a list of documents, got a single string; wrap it in a list")
        texts = []
        for i, doc in enumerate(corpus):
            if not isinstance(doc, (dict, str)):
                raise InvalidInputError(f"corpus[{i}]: expected a dict with 'title'/'text' or a string, got {type(doc).__name__}")
            texts.append(doc_text(doc))
        texts = validate_texts(texts, "corpus")
        base = self.embed_base(texts, show_progress_bar=show_progress_bar, batch_size=batch_size)
        return self.apply_heads(base, "document")

    def encode_documents(self, texts: Sequence[str], **kw: object) -> np.ndarray:
        return self.encode_corpus(validate_texts(texts, "documents"), **kw)

    def empty_document_vector(self) -> np.ndarray:
        """The document vector of the empty text (the base model's special tokens alone), for adapters that must
        return a vector for every input; computed once, never written to the cache."""
        if self._empty_vector is None:
            base = np.asarray(self._encode_with_base([""]), dtype=np.float32)
            self._empty_vector = self.apply_heads(base, "document")[0]
        return self._empty_vector.copy()

    def similarity(self, q: np.ndarray, d: np.ndarray) -> np.ndarray:
        """Scores of every query against every document under the checkpoint's scoring."""
        return similarity(q, d, self.scoring)

    def __repr__(self) -> str:
        what = "vanilla" if self.config is None else f"checkpoint={self.checkpoint_path}"
        return f"JEPAEncoder({what}, base={self.fingerprint.model_id}, dim={self.dim}, query_route={self.query_route})"


def check_max_query_chars(value: int | None) -> int | None:
    """``value`` if it is ``None`` or a positive integer, else :class:`ConfigError`."""
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
        raise ConfigError(f"max_query_chars must be a positive integer or None, got {value!r}")
    return value


def similarity(q: np.ndarray, d: np.ndarray, scoring: str) -> np.ndarray:
    """Cosine (on normalised copies) or negative Euclidean distance. To score many query batches against one
    document matrix, prepare it once with :class:`jepa_rag.document_matrix.DocumentMatrix` (same numbers)."""
    from .document_matrix import DocumentMatrix

    return DocumentMatrix(d, scoring).scores(q)
