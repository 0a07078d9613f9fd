"""The ``jepa-rag`` command: help everywhere, and ingest → query on a folder of text files (resumable)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _run(*args: str, cwd: Path = ROOT, timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "jepa_rag", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout)


@pytest.mark.parametrize("command", [[], ["train"], ["evaluate"], ["ingest"], ["query"], ["demo"]])
def test_help_for_the_command_and_every_subcommand(command, tmp_path):
    proc = _run(*command, "--help", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "usage:" in proc.stdout
    if not command:
        for sub in ("train", "evaluate", "ingest", "query", "demo"):
            assert sub in proc.stdout


def test_ingest_a_folder_then_query_it_and_resume(tmp_path, predictor_checkpoint, minilm_dir):
    docs = tmp_path / "docs"
    (docs / "sub").mkdir(parents=True)
    (docs / "pump.txt").write_text("Fault E1042: the pump's pressure sensor is unplugged.")
    (docs / "photo.md").write_text("Photosynthesis turns light, water and carbon dioxide into glucose.")
    (docs / "sub" / "volcano.txt").write_text("Volcanoes erupt when magma reaches the surface.")
    store = ["--collection", "notes", "--path", str(tmp_path / "index")]
    model = ["--checkpoint", str(predictor_checkpoint), "--base-model", str(minilm_dir)]
    first = _run("ingest", str(docs), *store, *model, "--no-progress")
    assert first.returncode == 0, first.stderr[-2000:]
    assert "3 chunks written (3 encoded, 0 from the cache), 0 unchanged" in first.stdout
    again = _run("ingest", str(docs), *store, *model, "--no-progress")  # a re-run (e.g. after a crash) skips
    assert "0 chunks written (0 encoded, 0 from the cache), 3 unchanged" in again.stdout, again.stderr[-2000:]
    assert "3 in the collection\nfusion: BM25 weight" in again.stdout
    assert "too little evidence" in again.stdout  # 3 chunks give no pseudo-query sample: the checkpoint's weight

    hybrid = _run("query", "what does fault E1042 mean?", "how do plants make sugar?", *store, "-k", "2", "--json")
    assert hybrid.returncode == 0, hybrid.stderr[-2000:]
    results = json.loads(hybrid.stdout)
    assert [r["results"][0]["source"] for r in results] == ["pump.txt", "photo.md"]
    assert results[0]["results"][0]["id"] == "pump.txt#0" and "E1042" in results[0]["results"][0]["text"]
    dense = _run("query", "how do plants make sugar?", *store, "--dense")
    first_hit = next(line for line in dense.stdout.splitlines() if line.lstrip().startswith("1."))
    assert dense.returncode == 0 and "photo.md" in first_hit, dense.stdout


def test_query_on_a_missing_collection_is_a_clear_error(tmp_path):
    proc = _run("query", "anything", "--collection", "nope", "--path", str(tmp_path))
    assert proc.returncode != 0
    assert "nope" in proc.stderr and "Traceback" not in proc.stderr
