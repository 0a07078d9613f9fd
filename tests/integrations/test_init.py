"""``import integrations`` stays free of the frameworks; a missing framework gives an ImportError naming the extra."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

import integrations

CASES = [
    # (submodule, framework module prefixes to hide, pip extra, public name)
    ("llamaindex", ("llama_index",), "llamaindex", "JEPAEmbedding"),
    ("langchain", ("langchain_core",), "langchain", "JEPAEmbeddings"),
    ("chroma", ("chromadb",), "chroma", "JEPAEmbeddingFunction"),
]


def test_importing_integrations_imports_no_framework():
    code = (
        "import sys, integrations\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in "
        "('llama_index', 'langchain_core', 'langchain_chroma', 'chromadb', 'torch'))\n"
        "assert not bad, bad\n"
        "assert 'JEPAEmbedding' in dir(integrations)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr


def test_unknown_name_is_an_attribute_error():
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        integrations.nope  # noqa: B018


@pytest.mark.parametrize("submodule,prefixes,extra,public", CASES, ids=[c[0] for c in CASES])
def test_missing_framework_names_the_extra(monkeypatch, submodule, prefixes, extra, public):
    for name in list(sys.modules):
        if name.split(".")[0] in prefixes:
            monkeypatch.setitem(sys.modules, name, None)  # makes `import name` raise ImportError
    for name in prefixes:
        monkeypatch.setitem(sys.modules, name, None)
    monkeypatch.delitem(sys.modules, f"integrations.{submodule}", raising=False)
    monkeypatch.delitem(vars(integrations), public, raising=False)  # drop a cached lazy attribute

    with pytest.raises(ImportError, match=rf"pip install 'jepa-rag\[{extra}\]'"):
        importlib.import_module(f"integrations.{submodule}")
    with pytest.raises(ImportError, match=rf"jepa-rag\[{extra}\]"):
        getattr(integrations, public)
