"""What a user installs: ``jepa-rag`` ships only ``jepa_rag``; each adapter is its own distribution under its
framework's namespace; the README's pip path works from a clone; ``jepa-rag`` and its subcommands work from a
folder holding the user's own ``train.py`` and ``integrations/``; every distribution declares compatible ranges
and ``constraints.txt`` pins a version inside each.

Everything is built offline from a copy of the checkout (so the checkout stays clean). The README's pip commands
run as written in a fresh virtualenv, plus ``--no-deps --no-index --no-build-isolation`` (offline: the
dependencies, setuptools included, come from the project's environment, added as a plain path, so its
editable-install hooks are not run there and nothing can be imported from the checkout); its torch line is
checked, not run (torch comes from the project's environment too).
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import site
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

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
def source(tmp_path_factory) -> Path:
    """A copy of the checkout, as a user's clone: building there leaves the real checkout clean."""
    src = tmp_path_factory.mktemp("src") / "jepa-rag"
    shutil.copytree(ROOT, src, ignore=SKIP, symlinks=True)
    return src


@pytest.fixture(scope="module")
def wheels(source, tmp_path_factory) -> dict[str, Path]:
    src = source
    out = tmp_path_factory.mktemp("wheels")
    _run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation", "--no-index",
          "-w", str(out), *(str(src / d) for d in DISTRIBUTIONS)])
    built = {}
    for folder in DISTRIBUTIONS:
        name = "jepa_rag" if folder == "." else Path(folder).name.replace("-", "_")
        (wheel,) = out.glob(f"{name}-*.whl")
        built[folder] = wheel
    return built


def readme_pip_commands() -> list[list[str]]:
    """The ``sh`` blocks of the README's Install section, one argv per command (continuations joined, comments cut)."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("\n## Install\n", 1)[1].split("\n## ", 1)[0]
    commands = []
    for body in re.findall(r"```sh\n(.*?)```", section, re.DOTALL):
        for line in body.replace("\\\n", " ").splitlines():
            line = line.split("  #")[0].strip()
            if line and not line.startswith("#"):
                commands.append(shlex.split(line))
    return commands


def _installed_folder(arg: str) -> str:
    """``./integrations/x`` or ``./[chroma]`` -> the distribution folder as DISTRIBUTIONS names it."""
    folder = arg.split("[")[0].rstrip("/").removeprefix("./")
    return folder or "."


def test_readme_pip_path_installs_cpu_torch_first_then_the_core_then_the_adapters():
    commands = readme_pip_commands()
    torch_pin = next(line for line in (ROOT / "constraints.txt").read_text().splitlines() if line.startswith("torch=="))
    assert commands[0] == ["pip", "install", torch_pin, "--index-url", "https://download.pytorch.org/whl/cpu"]
    folders = []
    for argv in commands[1:]:
        assert argv[:2] == ["pip", "install"] and all(a.startswith("./") for a in argv[2:]), argv
        folders += [_installed_folder(a) for a in argv[2:]]
    assert folders[0] == "." and sorted(folders) == sorted(DISTRIBUTIONS)  # the core first, every adapter once


@pytest.fixture(scope="module")
def venv(source, tmp_path_factory) -> Path:
    """A fresh virtualenv where the README's pip path ran (its torch line aside), from the clone's root."""
    env = tmp_path_factory.mktemp("venv")
    _run([sys.executable, "-m", "venv", "--without-pip", str(env)])
    python = env / "bin" / "python"
    purelib = _run([str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"]).stdout.strip()
    # the project's environment supplies torch, chromadb, the frameworks, setuptools...; listed in a .pth, its own
    # .pth files (the editable installs of this checkout) are not processed
    Path(purelib, "project_deps.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    for argv in readme_pip_commands()[1:]:
        _run([sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet", "--no-deps", "--no-index",
              "--no-build-isolation", *argv[2:]], cwd=source)
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


def test_installed_adapters_import_from_the_install(venv, user_folder):
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


# ------------------------------------------------------------------------------------------------ version ranges
PYPROJECTS = [ROOT / "pyproject.toml", *sorted(ROOT.glob("integrations/*/pyproject.toml"))]
OWN = {canonicalize_name(tomllib.loads(p.read_text())["project"]["name"]): tomllib.loads(p.read_text())["project"]
       ["version"] for p in PYPROJECTS}


def _requirements(pyproject: Path) -> list[Requirement]:
    project = tomllib.loads(pyproject.read_text())["project"]
    reqs = [*project.get("dependencies", []), *(r for extra in project.get("optional-dependencies", {}).values()
                                                for r in extra)]
    return [Requirement(r) for r in reqs]


def _constraints() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            req = Requirement(line)
            (spec,) = req.specifier
            assert spec.operator == "==", line
            pins[canonicalize_name(req.name)] = spec.version
    return pins


@pytest.mark.parametrize("pyproject", PYPROJECTS, ids=lambda p: p.parent.name if p.parent != ROOT else "jepa-rag")
def test_dependencies_are_ranges_and_constraints_pin_a_version_inside_each(pyproject):
    pins = _constraints()
    for req in _requirements(pyproject):
        name = canonicalize_name(req.name)
        if name in OWN:  # another distribution of this repository (or the core's own extras)
            assert not req.specifier or req.specifier.contains(OWN[name]), f"{pyproject}: {req}"
            continue
        ops = {s.operator for s in req.specifier}
        assert ops & {">=", "~="} and ops & {"<", "~="} and not ops & {"==", "==="}, (
            f"{pyproject}: {req}: declare a compatible range (>=tested, <next major), the exact version goes to "
            "constraints.txt")
        assert name in pins, f"constraints.txt has no pin for {req.name} ({pyproject})"
        assert req.specifier.contains(pins[name], prereleases=True), f"constraints.txt {name}=={pins[name]} not in {req}"


def test_make_installs_everything_with_the_constraints():
    installs = [line for line in (ROOT / "Makefile").read_text().splitlines() if "pip install" in line]
    assert installs and all("-c $(CONSTRAINTS)" in line for line in installs), installs
    assert re.search(r"^CONSTRAINTS := constraints\.txt$", (ROOT / "Makefile").read_text(), re.MULTILINE)
