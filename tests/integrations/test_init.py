"""The core stays free of the frameworks: ``jepa_rag`` imports none of them and nothing from ``integrations/``,
and a missing chromadb gives an ImportError naming the extra."""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FRAMEWORKS = ("llama_index", "langchain_core", "langchain_chroma", "langchain_jepa_rag", "chromadb", "integrations")


def test_importing_the_core_imports_no_framework():
    code = (
        "import sys, jepa_rag, jepa_rag.adapters, jepa_rag.cli\n"
        f"bad = sorted(m for m in sys.modules if m.split('.')[0] in {FRAMEWORKS!r})\n"
        "assert not bad, bad\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr


@pytest.mark.parametrize("folder", ["jepa_rag", "train"])
def test_the_core_never_imports_the_framework_adapters(folder):
    """The adapters depend on the core, never the reverse (the core's Chroma support is jepa_rag.chroma)."""
    for path in (ROOT / folder).rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            for name in names:
                top = name.split(".")[0]
                assert top not in ("integrations", "llama_index", "langchain_jepa_rag", "langchain_core"), \
                    f"{path.relative_to(ROOT)} imports {name}"


@pytest.mark.parametrize("module", ["jepa_rag.chroma", "jepa_rag.chroma_hybrid"])
def test_missing_chromadb_names_the_extra(monkeypatch, module):
    for name in list(sys.modules):
        if name.split(".")[0] == "chromadb":
            monkeypatch.setitem(sys.modules, name, None)  # makes `import name` raise ImportError
    monkeypatch.setitem(sys.modules, "chromadb", None)
    monkeypatch.delitem(sys.modules, module, raising=False)
    with pytest.raises(ImportError, match=r"pip install 'jepa-rag\[chroma\]'"):
        importlib.import_module(module)
