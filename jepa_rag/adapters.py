"""What every adapter shares: the friendly ImportError, one encoder per checkpoint, and checkpoint identity.

Why a shared encoder cache: Chroma rebuilds an embedding function from its stored config every time it reads a
collection's configuration, and LangChain/LlamaIndex users often build several wrappers around the same
checkpoint. Loading the base model once per (checkpoint, base model, device, precision) keeps that cheap and keeps
one copy of the weights in memory per arithmetic. The key includes the checkpoint files' size and mtime, so a checkpoint retrained in
place is reloaded rather than served stale.

Why identity is by content: two collections built with copies of the same checkpoint share one embedding space;
two built with different weights at the same path do not. Identity is therefore the sha256 of the heads' weights
plus the sha256 of the base model's weights, never the path.
"""

from __future__ import annotations

import importlib
import json
import os
import threading
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

from jepa_rag.errors import CheckpointError, ConfigError
from jepa_rag.errors import EmbeddingSpaceConflictError  # noqa: F401  (re-exported for the adapters)

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np

    from jepa_rag.encoder import JEPAEncoder

DEFAULT = "default"
VANILLA = "none"
PRECISION_HELP = ("The frozen base's arithmetic: 'auto' (bf16 where the CPU/GPU has native bfloat16, else fp32), "
                  "'fp32' or 'bf16'.")
USE_CACHE_HELP = "Keep documents' base-model vectors in the on-disk cache (re-ingesting costs no forward pass)."
CACHE_DIR_HELP = "Folder of the on-disk cache; None: $JEPA_RAG_HOME/embeddings (~/.cache/jepa_rag/embeddings)."
CACHE_QUERIES_HELP = ("Also write queries to the on-disk cache; by default they stay in a bounded in-memory LRU, "
                      "so a server seeing millions of distinct queries never grows its cache with them.")


def require(module: str, extra: str, what: str) -> ModuleType:
    """Import ``module`` or raise an ImportError that names the pip extra providing it."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ImportError(
            f"{what} needs the package that provides {module!r}, which is not installed ({exc}). "
            f"Install it with: pip install 'jepa-rag[{extra}]' (in a clone of jepa-rag: pip install './[{extra}]')"
        ) from exc


# what users of HuggingFaceEmbedding (LlamaIndex), HuggingFaceEmbeddings (LangChain) and Chroma's
# SentenceTransformerEmbeddingFunction pass out of habit and jepa-rag has no use for: refused with what to do
# instead, never silently ignored
_HF_HABITS = {
    "encode_kwargs": "the checkpoint decides normalisation; the batch size is embed_batch_size= (LlamaIndex)",
    "query_encode_kwargs": "queries take the checkpoint's query route; nothing else is set per call",
    "cache_folder": "give a downloaded base model as a folder with base_model=, or let jepa-rag find it in the "
                    "Hugging Face cache; cache_dir= is jepa-rag's cache of document vectors",
    "multi_process": "one process encodes; 'jepa-rag embed' spreads a large corpus over workers",
    "normalize": "the checkpoint decides normalisation",
    "normalize_embeddings": "the checkpoint decides normalisation",
    "query_instruction": "no prompt is added: queries take the checkpoint's query route",
    "text_instruction": "no prompt is added: documents take the checkpoint's document route",
    "max_length": "the base model's own max_seq_length applies",
    "pooling": "the base model's own sentence-transformers pooling applies",
    "tokenizer_name": "the base model's own tokenizer applies",
    "trust_remote_code": "jepa-rag loads sentence-transformers folders and never runs a model's remote code",
}
OWN_LABEL = "jepa-rag:"  # how LlamaIndex's JEPAEmbedding labels itself in model_name (so to_dict/from_dict round-trip)


def from_hf_habits(options: dict[str, Any], what: str) -> dict[str, Any]:
    """``options`` (keyword arguments of an adapter's constructor) with the Hugging Face embedding classes' habits
    translated, so none is silently ignored.

    ``model_name=`` selects the base model (it is ``base_model=``; both at once must agree), as in
    ``HuggingFaceEmbedding(model_name=...)``; the checkpoint's heads still need the base model they were trained
    on (``checkpoint="none"`` embeds with any base model alone). ``model_kwargs={"device": ...}`` is ``device=``.
    The other habits (``encode_kwargs``, ``cache_folder``, ``query_instruction``...) raise :class:`ConfigError`
    saying what to do instead.
    """
    out = dict(options)
    model_name = out.pop("model_name", None)
    if model_name is not None and not (isinstance(model_name, str) and model_name.startswith(OWN_LABEL)):
        if not isinstance(model_name, (str, os.PathLike)) or not os.fspath(model_name).strip():
            raise ConfigError(f"{what}: model_name must be a base model folder or Hub id, got {model_name!r}")
        base = out.get("base_model")
        if base is not None and normalize_base_model(base) != normalize_base_model(model_name):
            raise ConfigError(f"{what}: model_name={os.fspath(model_name)!r} and base_model={os.fspath(base)!r} name "
                              "different base models; model_name is another name for base_model: pass one")
        out["base_model"] = model_name
    model_kwargs = out.pop("model_kwargs", None) or {}
    if not isinstance(model_kwargs, dict) or set(model_kwargs) - {"device"}:
        raise ConfigError(f"{what}: model_kwargs={model_kwargs!r} is not used; pass device= itself (the base model "
                          "loads with sentence-transformers' defaults, its arithmetic is precision=)")
    if "device" in model_kwargs:
        if out.get("device") not in (None, model_kwargs["device"]):
            raise ConfigError(f"{what}: device={out['device']!r} and model_kwargs['device']="
                              f"{model_kwargs['device']!r} disagree: pass device= alone")
        out["device"] = model_kwargs["device"]
    unused = sorted(set(out) & set(_HF_HABITS))
    if unused:
        raise ConfigError(f"{what}: {unused[0]}= is a Hugging Face embedding option jepa-rag does not use: "
                          f"{_HF_HABITS[unused[0]]}")
    return out


def normalize_checkpoint(checkpoint: str | os.PathLike | None) -> str:
    """``"default"``, ``"none"`` (vanilla base model), or an absolute checkpoint folder path."""
    if checkpoint is None:
        return VANILLA
    text = os.fspath(checkpoint)
    if isinstance(checkpoint, str):
        if text == DEFAULT:
            return DEFAULT
        if text in (VANILLA, "vanilla"):
            return VANILLA
    return str(Path(text).expanduser().resolve())


def normalize_base_model(base_model: str | os.PathLike | None) -> str | None:
    """An existing folder becomes an absolute path (so stored configs survive a change of cwd); ids stay ids."""
    if base_model is None:
        return None
    text = os.fspath(base_model)
    path = Path(text).expanduser()
    return str(path.resolve()) if path.exists() else text


_ENCODERS: dict[tuple, "JEPAEncoder"] = {}
_LOCK = threading.Lock()


def _stamp(checkpoint: str) -> tuple:
    from jepa_rag.encoder import DEFAULT_CHECKPOINT

    if checkpoint == VANILLA:
        return ()
    folder = DEFAULT_CHECKPOINT if checkpoint == DEFAULT else Path(checkpoint)
    out = []
    for name in ("adapter_config.json", "model.safetensors"):
        try:
            st = (folder / name).stat()
            out.append((name, st.st_size, st.st_mtime_ns))
        except OSError:
            out.append((name, None, None))
    return tuple(out)


def check_precision(precision: str) -> str:
    """The encoder's own check (jepa-rag's ConfigError), importable without loading torch models."""
    from jepa_rag.encoder import check_precision as _check

    return _check(precision)


def load_encoder(checkpoint: str | os.PathLike | None = DEFAULT, base_model: str | os.PathLike | None = None,
                 device: str | None = None, precision: str = "auto", *, use_cache: bool = True,
                 cache_dir: str | os.PathLike | None = None, cache_queries: bool = False) -> "JEPAEncoder":
    """One :class:`JEPAEncoder` per (checkpoint, base model, device, arithmetic, cache settings, file stamp), shared
    by all adapters.

    ``precision`` is the frozen base's arithmetic: ``"auto"`` (bf16 where the device has it natively, else fp32),
    ``"fp32"`` or ``"bf16"`` (see ``JEPAEncoder.from_pretrained``); adapters asking for ``"auto"`` and for what it
    resolves to share one encoder. ``use_cache``/``cache_dir``/``cache_queries`` are the encoder's on-disk cache
    settings (documents cached, queries only in memory unless ``cache_queries``).
    """
    from jepa_rag.encoder import JEPAEncoder, resolve_precision

    check_precision(precision)  # before any loading, so a typo fails fast
    ckpt = normalize_checkpoint(checkpoint)
    base = normalize_base_model(base_model)
    cache = str(Path(cache_dir).expanduser().resolve()) if cache_dir is not None else None
    key = (ckpt, base, device, resolve_precision(precision, device), bool(use_cache), cache, bool(cache_queries),
           _stamp(ckpt))
    with _LOCK:
        encoder = _ENCODERS.get(key)
        if encoder is None:
            try:
                encoder = JEPAEncoder.from_pretrained(ckpt, base_model=base, device=device, precision=precision,
                                                      use_cache=use_cache, cache_dir=cache, cache_queries=cache_queries)
            except CheckpointError as exc:
                if base is None or ckpt == VANILLA:
                    raise
                raise CheckpointError(f"{exc} (to embed with base model {base} alone, without heads, pass "
                                      "checkpoint='none')") from None
            _ENCODERS[key] = encoder
    return encoder


def embed_documents_keeping_empty(encoder: "JEPAEncoder", texts: Any) -> "np.ndarray":
    """Document vectors for a framework's ``embed_documents``: one vector per input, in order.

    Why lenient: LangChain and LlamaIndex stores pair every text with a vector, so one empty text in a batch must
    not abort the whole ``add_texts``. An empty or whitespace-only text gets the base model's vector of the empty
    text (what ``HuggingFaceEmbeddings`` returns for it), said once per call; jepa-rag's own stores skip such
    records instead (:func:`jepa_rag.corpus_audit.clean_corpus`). Every other check of
    :func:`jepa_rag.encoder.validate_texts` (a bare string, a non-string, broken Unicode) still raises.
    """
    import warnings

    import numpy as np

    texts = validate_documents_allowing_empty(texts)
    empty = [i for i, t in enumerate(texts) if not t.strip()]
    if not empty:
        return encoder.encode_documents(texts)
    out = np.zeros((len(texts), encoder.dim), dtype=np.float32)
    kept = [i for i, t in enumerate(texts) if t.strip()]
    if kept:
        out[kept] = encoder.encode_documents([texts[i] for i in kept])
    out[empty] = encoder.empty_document_vector()
    warnings.warn(f"{len(empty)} of {len(texts)} documents are empty or whitespace-only (positions "
                  f"{', '.join(map(str, empty[:5]))}{', ...' if len(empty) > 5 else ''}): each got the base model's "
                  "vector of the empty text, which matches no query well; drop them before indexing to keep them "
                  "out of the store", UserWarning, stacklevel=3)
    return out


def validate_documents_allowing_empty(texts: Any) -> list[str]:
    """Every check of :func:`jepa_rag.encoder.validate_texts` but emptiness (the frameworks' document routes give an
    empty text a vector, :func:`embed_documents_keeping_empty`); the texts as a list."""
    from jepa_rag.encoder import validate_texts

    if isinstance(texts, (str, bytes)) or not hasattr(texts, "__iter__"):
        validate_texts(texts, "documents")  # raises, naming the problem
    texts = list(texts)
    validate_texts(["-" if isinstance(t, str) and not t.strip() else t for t in texts], "documents")
    return texts


def heads_sha256(encoder: "JEPAEncoder") -> str:
    """sha256 of the checkpoint's ``model.safetensors`` (verified at load time), or ``"none"`` for vanilla."""
    if encoder.checkpoint_path is None:
        return VANILLA
    meta = json.loads((Path(encoder.checkpoint_path) / "adapter_config.json").read_text(encoding="utf-8"))
    return str(meta["weights_sha256"])


def identity(encoder: "JEPAEncoder") -> dict[str, Any]:
    """What decides the embedding space: heads and base-model weights, plus facts useful in messages."""
    fp = encoder.fingerprint
    return {
        "weights_sha256": heads_sha256(encoder),
        "base_model_id": fp.model_id,
        "base_weights_sha256": fp.weights_sha256,
        "dim": int(encoder.dim),
        "query_route": encoder.query_route,
    }


# precision is deliberately absent: bf16 and fp32 vectors of one checkpoint share a space (cosine >= 0.9997)
SPACE_KEYS = ("weights_sha256", "base_weights_sha256")
NAME_KEYS_REQUIRED = ("checkpoint", *SPACE_KEYS)


def same_space(a: dict[str, Any], b: dict[str, Any]) -> bool:
    return all(a.get(k) == b.get(k) for k in SPACE_KEYS)


def describe(config: dict[str, Any]) -> str:
    """A short human description of a stored or live embedding config, for error messages."""
    heads = str(config.get("weights_sha256", "?"))
    heads = "no heads (vanilla base model)" if heads == VANILLA else f"heads sha256 {heads[:12]}…"
    base = str(config.get("base_weights_sha256", "?"))[:12]
    return (f"checkpoint {config.get('checkpoint', '?')!s} ({heads}; base model {config.get('base_model_id', '?')}, "
            f"weights sha256 {base}…)")
