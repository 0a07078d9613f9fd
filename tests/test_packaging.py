"""The wheels a user installs: ``jepa-rag`` ships only ``jepa_rag``; each adapter is its own distribution under
its framework's namespace; ``jepa-rag`` and its subcommands work from a folder holding the user's own ``train.py``
and ``integrations/``.

The wheels are built offline from a copy of the checkout (so the checkout stays clean) and installed with
``--no-deps`` into a fresh virtualenv whose dependencies come from the project's environment, added as a plain
path (its editable-install hooks are not run there, so nothing can be imported from the checkout).
"""

from __future__ import annotations

import os
import shutil
import site
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DISTRIBUTIONS = {  # source folder -> the top-level names its wheel may install
    ".": {"jepa_rag"},
    "integrations/llama-index-embeddings-jepa-rag": {"llama_index"},
    "integrations/llama-index-vector-stores-jepa-rag": {"llama_index"},
    "integrations/llama-index-retrievers-jepa-rag": {"llama_index"},
    "integrations/langchain-jepa-rag": {"langchain_jepa_rag"},
}
SUBCOMMANDS = ["train", "evaluate", "embed", "ingest", "query", "demo"]
SKIP = shutil.ignore_patterns(".git", ".venv", "runs", "build", "dist", "*.egg-info", "__pycache__", ".pytest_cache",
                              ".benchmarks", "jepa_rag_index", "jepa_rag_demo_index")


def _run(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, **kw)
    assert proc.returncode == 0, f"{' '.join(map(str, cmd))}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc


@pytest.fixture(scope="module")
def wheels(tmp_path_factory) -> dict[str, Path]:
    src = tmp_path_factory.mktemp("src") / "jepa-rag"
    shutil.copytree(ROOT, src, ignore=SKIP, symlinks=True)
    out = tmp_path_factory.mktemp("wheels")
    _run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation", "--no-index",
          "-w", str(out), *(str(src / d) for d in DISTRIBUTIONS)])
    built = {}
    for folder in DISTRIBUTIONS:
        name = "jepa_rag" if folder == "." else Path(folder).name.replace("-", "_")
        (wheel,) = out.glob(f"{name}-*.whl")
        built[folder] = wheel
    return built


@pytest.fixture(scope="module")
def venv(wheels, tmp_path_factory) -> Path:
    env = tmp_path_factory.mktemp("venv")
    _run([sys.executable, "-m", "venv", "--without-pip", str(env)])
    python = env / "bin" / "python"
    _run([sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet", "--no-deps", "--no-index",
          *map(str, wheels.values())])
    purelib = _run([str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"]).stdout.strip()
    # the project's environment supplies torch, chromadb, the frameworks...; listed in a .pth, its own .pth files
    # (the editable installs of this checkout) are not processed
    Path(purelib, "project_deps.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    return env


@pytest.mark.parametrize("folder", list(DISTRIBUTIONS))
def test_each_wheel_installs_only_its_own_top_level_names(wheels, folder):
    names = zipfile.ZipFile(wheels[folder]).namelist()
    top = {n.split("/")[0] for n in names if not n.split("/")[0].endswith((".dist-info", ".data"))}
    assert top == DISTRIBUTIONS[folder]
    # namespace packages stay namespaces: an __init__.py there would shadow llama_index.core
    assert not any(n == "llama_index/__init__.py"
                   or (n.startswith("llama_index/") and n.count("/") == 2 and n.endswith("/__init__.py"))
                   for n in names)


def test_core_wheel_carries_training_configs_and_default_checkpoint(wheels):
    names = set(zipfile.ZipFile(wheels["."]).namelist())
    assert "jepa_rag/train/loop.py" in names
    assert "jepa_rag/train/configs/own_pairs.yaml" in names
    assert "jepa_rag/checkpoints/default/adapter_config.json" in names
    assert not any(n.startswith(("train/", "integrations/", "tests/", "benchmarks/", "experiments/")) for n in names)


@pytest.fixture()
def user_folder(tmp_path) -> Path:
    """A user's project: its own train.py and integrations/ must not shadow or break ours."""
    (tmp_path / "train.py").write_text("raise SystemExit('the user train.py ran')\n")
    (tmp_path / "integrations").mkdir()
    (tmp_path / "integrations" / "__init__.py").write_text("raise SystemExit('the user integrations ran')\n")
    (tmp_path / "integrations" / "llamaindex.py").write_text("raise SystemExit('the user integrations ran')\n")
    return tmp_path


def _clean_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env.update(HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false")
    return env


def test_installed_adapters_import_from_the_wheels(venv, user_folder):
    code = ("import jepa_rag, langchain_jepa_rag, llama_index.embeddings.jepa_rag as e\n"
            "from llama_index.embeddings.jepa_rag import JEPAEmbedding\n"
            "from llama_index.vector_stores.jepa_rag import jepa_chroma_vector_store\n"
            "from llama_index.retrievers.jepa_rag import JEPAHybridNodeRetriever\n"
            "from langchain_jepa_rag import JEPAEmbeddings, JEPAHybridRetriever\n"
            "from jepa_rag.chroma import JEPAEmbeddingFunction\n"
            "import jepa_rag.train.loop, llama_index.core\n"
            f"root = {str(ROOT)!r}\n"
            "for m in (jepa_rag, langchain_jepa_rag, e, jepa_rag.train.loop):\n"
            "    assert not m.__file__.startswith(root), m.__file__\n"
            "print('ok')\n")
    proc = _run([str(venv / "bin" / "python"), "-c", code], cwd=user_folder, env=_clean_env())
    assert proc.stdout.strip() == "ok"


def test_console_script_and_every_subcommand_help(venv, user_folder):
    script = str(venv / "bin" / "jepa-rag")
    out = _run([script, "--help"], cwd=user_folder, env=_clean_env()).stdout
    for sub in SUBCOMMANDS:
        assert sub in out
        usage = _run([script, sub, "--help"], cwd=user_folder, env=_clean_env()).stdout
        assert usage.startswith(f"usage: jepa-rag {sub}"), usage[:200]
