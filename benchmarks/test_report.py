"""The report writer turns every results JSON into its section (a broken writer must not go unnoticed).

Runs on copies of the JSON files in ``benchmarks/results/`` (in a temporary folder), so it needs neither the model
nor the data and leaves the real report to the session-end hook.
"""

from __future__ import annotations

import shutil

import pytest

from benchmarks.report import RESULTS, write_report

SECTIONS = {
    "quality_scifact.json": "## Quality gate",
    "speed_encode_overhead.json": "### Encode overhead of the heads",
    "speed_training.json": "### Training: re-encoding every batch",
    "speed_chroma.json": "### Chroma: ingest throughput and query latency",
    "speed_cpu_fast_path.json": "### CPU fast path for the frozen base",
    "seed_reproduction.json": "## Variants of the research note",
    "recipes.json": "## Recipes for the default checkpoint",
    "indomain.json": "## In-domain adaptation",
    "pytest_benchmarks.json": "## pytest-benchmark: the last recorded run",
    "chroma_agreement.json": "## Chroma (HNSW) vs exact search",
}


def test_report_renders_every_results_file(tmp_path):
    present = [name for name in SECTIONS if (RESULTS / name).is_file()]
    if not present:
        pytest.skip(f"no results JSON in {RESULTS} to render yet")
    for f in RESULTS.glob("*.json"):
        shutil.copy(f, tmp_path / f.name)
    text = write_report(tmp_path).read_text()
    assert text.startswith("# jepa-rag benchmark report")
    assert "unexpected shape" not in text, text
    for name in present:
        assert SECTIONS[name] in text, f"{name} is present but its section is missing"
    assert "CPU cores" in text


def test_report_lists_unknown_results_files(tmp_path):
    (tmp_path / "something_new.json").write_text('{"command": "python -m benchmarks.something", "score": {"a": 0.5}}')
    text = write_report(tmp_path).read_text()
    assert "### `something_new.json`" in text and "score.a: 0.5000" in text


def test_report_without_results(tmp_path):
    text = write_report(tmp_path).read_text()
    assert "No `quality_*.json` yet" in text and "No `speed_*.json` yet" in text
