"""Security: nothing jepa-rag ships unpickles or runs code from a file, no model is loaded with remote code, and the
test Chroma server listens on 127.0.0.1 only.

``tests/test_checkpoint.py::test_no_pickle_in_package`` greps for a few strings; here the source is parsed, so
aliases and keyword spellings are caught too (``weights_only=False``, ``allow_pickle=True``, ``yaml.load`` with an
unsafe loader, ``trust_remote_code`` set to anything but ``False``, ``eval``/``exec``), and a fresh process checks at
run time that loading checkpoints, the base model, Chroma collections and a resumed training run never reach
``torch.load`` or ``pickle``.
"""

from __future__ import annotations

import ast
import json
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from ..chroma_server import ChromaServer, listening_addresses

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = ("jepa_rag", "train", "integrations", "benchmarks")

# module.attribute calls that deserialize with pickle (or run code) whatever their arguments
UNSAFE_CALLS = {
    ("torch", "load"), ("torch.jit", "load"), ("pickle", "load"), ("pickle", "loads"), ("pickle", "Unpickler"),
    ("cPickle", "load"), ("cPickle", "loads"), ("dill", "load"), ("dill", "loads"), ("joblib", "load"),
    ("marshal", "load"), ("marshal", "loads"), ("shelve", "open"), ("pandas", "read_pickle"), ("pd", "read_pickle"),
    ("numpy", "loads"), ("np", "loads"),
}
UNSAFE_MODULES = {"pickle", "cPickle", "_pickle", "dill", "joblib", "marshal", "shelve", "cloudpickle"}
SAFE_YAML_LOADERS = {"SafeLoader", "CSafeLoader", "BaseLoader", "CBaseLoader"}


def _dotted(node: ast.AST) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{_dotted(node.value)}.{node.attr}"
    return "?"


def _is_const(node: ast.AST, value) -> bool:
    return isinstance(node, ast.Constant) and node.value is value


def unsafe_uses(source: str) -> list[str]:
    """Every way ``source`` could unpickle a file, run code from one, or trust remote model code."""
    found = []
    tree = ast.parse(source)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [f"import {a.name}" for a in node.names if a.name.split(".")[0] in UNSAFE_MODULES]
        elif isinstance(node, ast.ImportFrom):
            if (node.module or "").split(".")[0] in UNSAFE_MODULES:
                found.append(f"from {node.module} import ...")
            if node.module == "torch" and any(a.name == "load" for a in node.names):
                found.append("from torch import load")
        elif isinstance(node, ast.Call):
            name = _dotted(node.func)
            owner, _, attr = name.rpartition(".")
            if (owner, attr) in UNSAFE_CALLS:
                found.append(f"{name}()")
            if isinstance(node.func, ast.Name) and node.func.id in ("eval", "exec"):
                found.append(f"{node.func.id}()")
            if attr == "load" and owner in ("yaml",):
                loader = next((k.value for k in node.keywords if k.arg == "Loader"),
                              node.args[1] if len(node.args) > 1 else None)
                if loader is None or _dotted(loader).rpartition(".")[2] not in SAFE_YAML_LOADERS:
                    found.append("yaml.load() without a safe Loader")
            if attr in ("unsafe_load", "full_load") and owner == "yaml":
                found.append(f"{name}()")
            for kw in node.keywords:
                if kw.arg == "weights_only" and not _is_const(kw.value, True):
                    found.append(f"{name}(weights_only=...)")
                if kw.arg == "allow_pickle" and not _is_const(kw.value, False):
                    found.append(f"{name}(allow_pickle=...)")
                if kw.arg == "trust_remote_code" and not _is_const(kw.value, False):
                    found.append(f"{name}(trust_remote_code=...)")
    return found


def test_the_scanner_catches_every_spelling():
    bad = textwrap.dedent("""
        import pickle, yaml
        from torch import load
        import numpy as np
        torch.load(f, weights_only=False)
        np.load(f, allow_pickle=True)
        np.load(f, allow_pickle=flag)
        yaml.load(fh)
        yaml.load(fh, Loader=yaml.FullLoader)
        yaml.unsafe_load(fh)
        AutoModel.from_pretrained(x, trust_remote_code=True)
        SentenceTransformer(x, trust_remote_code=cfg.trust)
        eval(text)
        shelve.open(p)
    """)
    assert len(unsafe_uses(bad)) == 13, unsafe_uses(bad)
    ok = textwrap.dedent("""
        import numpy as np, yaml
        np.load(f, allow_pickle=False)
        np.load(f)
        yaml.safe_load(fh)
        yaml.load(fh, Loader=yaml.SafeLoader)
        model.eval()
        SentenceTransformer(x, trust_remote_code=False)
        safetensors.torch.load_file(p)
    """)
    assert unsafe_uses(ok) == []


def test_no_pickle_no_code_from_files_no_remote_code_anywhere():
    offenders = []
    for folder in SHIPPED:
        for f in sorted((ROOT / folder).rglob("*.py")):
            offenders += [f"{f.relative_to(ROOT)}: {use}" for use in unsafe_uses(f.read_text(encoding="utf-8"))]
    assert offenders == []


RUNTIME = textwrap.dedent("""
    import json, pickle, sys
    import numpy as np
    import torch

    calls = []

    def record(name, original):
        def wrapper(*args, **kwargs):
            calls.append(name)
            return original(*args, **kwargs)
        return wrapper

    torch.load = record("torch.load", torch.load)
    torch.jit.load = record("torch.jit.load", torch.jit.load)
    pickle.load = record("pickle.load", pickle.load)
    pickle.loads = record("pickle.loads", pickle.loads)
    np_load = np.load
    def checked_np_load(*args, **kwargs):
        if kwargs.get("allow_pickle"):
            calls.append("np.load(allow_pickle=True)")
        return np_load(*args, **kwargs)
    np.load = checked_np_load

    ckpt, base, db, pairs, out = sys.argv[1:6]
    import chromadb
    from jepa_rag import JEPAEncoder, load_checkpoint
    from jepa_rag.chroma import JEPAEmbeddingFunction, get_or_create_collection
    from langchain_jepa_rag import JEPAEmbeddings
    from llama_index.embeddings.jepa_rag import JEPAEmbedding
    from jepa_rag.train.__main__ import main as train_main

    load_checkpoint(ckpt)
    enc = JEPAEncoder.from_pretrained(ckpt, base_model=base)
    enc.encode_queries(["a question"]); enc.encode_documents(["a passage"])
    col = get_or_create_collection(chromadb.PersistentClient(path=db), "secure", JEPAEmbeddingFunction(ckpt, base))
    col.add(ids=["a"], documents=["a passage about tea"])
    reopened = get_or_create_collection(chromadb.PersistentClient(path=db), "secure")  # rebuilt from stored config
    reopened.query(query_texts=["tea"], n_results=1)
    JEPAEmbeddings(checkpoint=ckpt, base_model=base).embed_query("q")
    JEPAEmbedding(checkpoint=ckpt, base_model=base).get_query_embedding("q")
    args = ["--pairs", pairs, "--output", out, "--no-progress", "--embeddings", "off",
            "--set", f"model.base_model={base}", "--set", "model.projection={in_dim: 384, out_dim: 384, residual: true}",
            "--set", "model.predictor=null", "--set", "model.query_route=projection", "--set", "optim.batch_size=8",
            "--set", "data.mining_rank_start=0", "--set", "data.mining_rank_end=5"]
    assert train_main(args + ["--set", "optim.epochs=1"]) == 0
    assert train_main(args + ["--set", "optim.epochs=2"]) == 0  # resumes from the saved training state
    load_checkpoint(out + "/checkpoint")
    print("CALLS " + json.dumps(calls))
""")


def test_nothing_reaches_torch_load_or_pickle_at_run_time(tmp_path, predictor_checkpoint, minilm_dir):
    """A fresh process (empty caches, so the base model really loads) with torch.load and pickle wrapped."""
    from ..helpers import write_pairs

    pairs = write_pairs(tmp_path / "pairs.jsonl", n=40)
    env_home = tmp_path / "home"
    env_home.mkdir()
    import os

    env = {**os.environ, "JEPA_RAG_HOME": str(env_home)}
    proc = subprocess.run(
        [sys.executable, "-c", RUNTIME, str(predictor_checkpoint), str(minilm_dir), str(tmp_path / "db"), str(pairs),
         str(tmp_path / "run")], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    calls = json.loads(next(line for line in proc.stdout.splitlines() if line.startswith("CALLS "))[6:])
    assert calls == []


def _non_loopback_address() -> str | None:
    """This machine's address on its default route (no packet is sent), or None."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("10.254.254.254", 1))
            addr = s.getsockname()[0]
        except OSError:
            return None
    return None if addr.startswith("127.") else addr


def test_the_test_chroma_server_listens_on_loopback_only(tmp_path):
    server = ChromaServer(tmp_path / "data").start()
    try:
        if Path("/proc/net/tcp").exists():
            assert set(listening_addresses(server.port)) == {"127.0.0.1"}
        other = _non_loopback_address()
        if other is not None:
            with socket.socket() as s, pytest.raises(OSError):
                s.settimeout(2)
                s.connect((other, server.port))
        with socket.create_connection(("127.0.0.1", server.port), timeout=2):
            pass
    finally:
        server.stop()


def _constants(tree: ast.AST) -> dict[str, object]:
    """Names and attribute names assigned a value in a module (``x = ...``, ``self.x = ...``, ``a, b = ..., ...``)."""
    out: dict[str, object] = {}
    for node in ast.walk(tree):
        if not isinstance(node, ast.Assign):
            continue
        for target in node.targets:
            pairs = [(target, node.value)]
            if isinstance(target, ast.Tuple) and isinstance(node.value, ast.Tuple):
                pairs = list(zip(target.elts, node.value.elts))
            for t, v in pairs:
                if isinstance(t, (ast.Name, ast.Attribute)):
                    out[t.id if isinstance(t, ast.Name) else t.attr] = v
    return out


def _resolve(node: ast.AST, names: dict[str, object], depth: int = 4):
    while depth and isinstance(node, (ast.Name, ast.Attribute)):
        key = node.id if isinstance(node, ast.Name) else node.attr
        if key not in names:
            return None
        node, depth = names[key], depth - 1
    return node.value if isinstance(node, ast.Constant) else None


def chroma_launches(source: str) -> list[object]:
    """The ``--host`` value of every ``[..., "run", "--path", ...]`` command line in ``source`` (None: no host)."""
    tree = ast.parse(source)
    names = _constants(tree)
    hosts = []
    for node in ast.walk(tree):
        if isinstance(node, ast.List):
            consts = [e.value if isinstance(e, ast.Constant) else None for e in node.elts]
            if "run" in consts and "--path" in consts:
                at = consts.index("--host") if "--host" in consts else None
                hosts.append(_resolve(node.elts[at + 1], names) if at is not None else None)
    return hosts


def test_every_chroma_server_the_tests_start_binds_loopback():
    """Every ``chroma run`` command line in tests/ and benchmarks/ passes ``--host`` resolving to 127.0.0.1."""
    launches = {}
    for f in sorted((ROOT / "tests").rglob("*.py")) + sorted((ROOT / "benchmarks").rglob("*.py")):
        hosts = chroma_launches(f.read_text(encoding="utf-8"))
        if hosts:
            launches[str(f.relative_to(ROOT))] = hosts
    assert "tests/chroma_server.py" in launches
    assert all(h == "127.0.0.1" for hosts in launches.values() for h in hosts), launches
    assert chroma_launches('host = "0.0.0.0"\nPopen([exe, "run", "--path", p, "--host", host])') == ["0.0.0.0"]
    assert chroma_launches('Popen([exe, "run", "--path", p])') == [None]
