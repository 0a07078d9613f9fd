"""Serving for months, compressed: 20,000 distinct queries and 20,000 documents through the LlamaIndex adapter in
one process under ``ulimit -n 1024`` (a common default), then a shorter run through the real small model. 20,000
queries are five times the query LRU's 4,096 entries, so an unbounded structure would show; the run is kept at that
size so the suite stays within its time budget.

The store must keep a constant, small number of files and descriptors; queries must not be written to disk.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="ulimit and /proc are POSIX")
ROOT = Path(__file__).resolve().parents[2]


def _serve(mode: str, checkpoint, base_model, cache_dir: Path, queries: int, documents: int) -> dict:
    def limit_descriptors() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (1024, 1024))

    proc = subprocess.run(
        [sys.executable, "-m", "tests.reliability.serve_child", mode, str(checkpoint), str(base_model),
         str(cache_dir), str(queries), str(documents)],
        cwd=ROOT, capture_output=True, text=True, timeout=900, preexec_fn=limit_descriptors)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(next(line for line in proc.stdout.splitlines() if line.startswith("RESULT "))[7:])


def _report(record_property, name: str, result: dict) -> None:
    record_property(f"{name}_peak_rss_mb", round(result["peak_rss_mb"], 1))
    print(f"\n{name}: peak RSS {result['peak_rss_mb']:.0f} MB, {result['open_fds']} open descriptors, "
          f"{len(result['cache_files'])} cache files, {result['cached_vectors']} cached vectors")


def test_20k_queries_and_20k_documents_under_ulimit_1024(tmp_path, predictor_checkpoint, minilm_dir,
                                                         record_property):
    result = _serve("stub", predictor_checkpoint, minilm_dir, tmp_path / "cache", 20_000, 20_000)
    _report(record_property, "stub", result)
    assert len(result["cache_files"]) <= 10, result["cache_files"]
    assert result["cached_vectors"] == 20_000  # the documents; no query went to disk
    assert result["query_lru"] <= 4096
    assert result["open_fds"] < 100


def test_2k_queries_and_2k_documents_through_the_real_model(tmp_path, predictor_checkpoint, minilm_dir,
                                                            record_property):
    result = _serve("real", predictor_checkpoint, minilm_dir, tmp_path / "cache", 2_000, 2_000)
    _report(record_property, "real", result)
    assert len(result["cache_files"]) <= 10, result["cache_files"]
    assert result["cached_vectors"] == 2_000
