"""Benchmarks run on the real all-mpnet-base-v2 and the shared BEIR/MS MARCO data.

When the data or the model cannot be had, a benchmark *skips with the reason*; it never passes vacuously.
"""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(scope="session")
def shared_data():
    from jepa_rag.data import shared_data_dir

    root = shared_data_dir()
    if root is None or not (root / "msmarco" / "pairs.jsonl").is_file():
        pytest.skip("shared data not found: set JEPA_RAG_DATA to a folder with beir/, msmarco/ and embeddings/")
    return root


@pytest.fixture(scope="session")
def mpnet(shared_data):
    from jepa_rag import JEPAEncoder, ModelNotFoundError

    try:
        return JEPAEncoder.from_pretrained("none")
    except ModelNotFoundError as exc:
        pytest.skip(f"all-mpnet-base-v2 unavailable: {exc}")
