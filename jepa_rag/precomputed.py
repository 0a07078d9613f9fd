"""Finding and importing precomputed base-model embeddings (format: ``<array>`` + ``<array>_ids`` in ``.npz``).

An imported file only enters the cache after a random sample was re-encoded with the real model and matched
(:func:`jepa_rag.cache.import_precomputed`).
"""

from __future__ import annotations

import logging
from pathlib import Path

from .cache import import_precomputed
from .data import Pairs, doc_text, read_all_queries, shared_data_dir
from .encoder import JEPAEncoder
from .errors import DataNotFoundError

log = logging.getLogger("jepa_rag")


def _model_short(model_id: str) -> str:
    return model_id.rstrip("/").split("/")[-1]


def _takes_imports(encoder: JEPAEncoder) -> bool:
    """Only a cache of fp32 vectors may receive the files (they hold fp32 vectors)."""
    if encoder.cache is not None and encoder.precision != "fp32":
        log.warning("precomputed base vectors are fp32; this encoder runs in %s (precision=%r), so they are not "
                    "imported and every text is encoded: pass precision='fp32' to use them", encoder.precision,
                    encoder.requested_precision)
        return False
    return encoder.cache is not None


def find_embeddings(spec: str | None, file_name: str, model_id: str) -> Path | None:
    """Resolve ``spec`` to an ``.npz``: a file, a folder (``<folder>/<file_name>`` or
    ``<folder>/<model>/<file_name>``), ``auto`` (the shared data folder's copy for this model, if any) or
    ``off``/None (none)."""
    if spec in (None, "off", "none"):
        return None
    if spec == "auto":
        root = shared_data_dir()
        if root is None:
            return None
        cand = root / "embeddings" / _model_short(model_id) / file_name
        return cand if cand.is_file() else None
    path = Path(spec).expanduser()
    if path.is_file():
        return path
    for cand in (path / file_name, path / _model_short(model_id) / file_name):
        if cand.is_file():
            return cand
    raise DataNotFoundError(f"embeddings not found: {spec} is neither an .npz file nor a folder holding {file_name}")


def import_beir_embeddings(encoder: JEPAEncoder, folder: Path, spec: str | None) -> int:
    """Import ``<dataset>.npz`` (arrays ``corpus``, ``queries``) for the BEIR folder into the encoder's cache."""
    if not _takes_imports(encoder):
        return 0
    npz = find_embeddings(spec, f"{Path(folder).name}.npz", encoder.fingerprint.model_id)
    if npz is None:
        return 0
    from .data import _iter_jsonl  # local: the corpus is read raw, all splits' queries included

    corpus = {str(o["_id"]): doc_text(o) for _, o in _iter_jsonl(Path(folder) / "corpus.jsonl")}
    texts = {"corpus": corpus, "queries": read_all_queries(folder)}
    return import_precomputed(encoder.cache, npz, texts, encoder._encode_with_base)


def import_msmarco_embeddings(encoder: JEPAEncoder, pairs: Pairs, spec: str | None) -> int:
    """Import ``msmarco_queries.npz`` / ``msmarco_positives.npz`` (ids = ``query_id``)."""
    if not _takes_imports(encoder):
        return 0
    added = 0
    for file_name, array, texts in (
        ("msmarco_queries.npz", "queries", pairs.queries),
        ("msmarco_positives.npz", "positives", pairs.positives),
    ):
        npz = find_embeddings(spec, file_name, encoder.fingerprint.model_id)
        if npz is None:
            continue
        added += import_precomputed(encoder.cache, npz, {array: dict(zip(pairs.query_ids, texts))},
                                    encoder._encode_with_base)
    return added
