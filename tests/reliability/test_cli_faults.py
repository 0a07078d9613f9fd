"""The ``jepa-rag`` command over damaged and hostile input: a query over a truncated base-vector cache with a
100,000-character query (argv holds at most 128 KiB per argument) answers, warns, and exits 0; it used to die of
SIGBUS (exit 135) with no message."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_query_over_a_truncated_cache_with_a_huge_query(tmp_path, predictor_checkpoint, minilm_dir, monkeypatch):
    from jepa_rag.cli import main

    from jepa_rag import adapters

    monkeypatch.setenv("JEPA_RAG_HOME", str(tmp_path / "home"))  # a cache of its own, to damage
    # encoders are shared per process: one built earlier in the session would keep writing to the session's cache
    monkeypatch.setattr(adapters, "_ENCODERS", {})
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "pump.txt").write_text("Fault E1042: the pump's pressure sensor is unplugged.")
    (docs / "photo.md").write_text("Photosynthesis turns light, water and carbon dioxide into glucose.")
    (docs / "volcano.txt").write_text("Volcanoes erupt when magma reaches the surface.")
    store = ["--collection", "notes", "--path", str(tmp_path / "index")]
    assert main(["ingest", str(docs), *store, "--checkpoint", str(predictor_checkpoint), "--base-model",
                 str(minilm_dir), "--no-progress"]) == 0
    [db] = (tmp_path / "home").rglob("vectors.mdb")
    os.truncate(db, db.stat().st_size // 2)  # this process never reads it again; the child opens it fresh
    query = ("why is the pump pressure sensor fault E1042 shown? " * 2000)[:100_000]
    proc = subprocess.run([sys.executable, "-m", "jepa_rag", "query", query, *store, "--dense", "--json", "-k", "1"],
                          cwd=ROOT, capture_output=True, text=True, timeout=300, env=dict(os.environ))
    assert proc.returncode == 0, f"exit {proc.returncode} (135 = SIGBUS): {proc.stderr[-2000:]}"
    assert json.loads(proc.stdout)[0]["results"][0]["source"] == "pump.txt"
    assert "vectors.mdb.corrupt-" in proc.stderr and "longer than max_query_chars" in proc.stderr
    assert list(db.parent.glob("vectors.mdb.corrupt-*"))
