"""Benchmarks run on the real all-mpnet-base-v2 and the shared BEIR/MS MARCO data.

When the data or the model cannot be had, a benchmark *skips with the reason*; it never passes vacuously.

Two modes: by default the base model's vectors for BEIR and MS MARCO are imported from the shared data folder's
precomputed files (after a 16-text re-encoding check) and the whole folder runs in minutes; ``--full`` re-encodes
every text with the real model into a fresh, empty cache instead. Results go to the untracked ``runs/benchmarks/``
(``$JEPA_RAG_BENCH_OUT``), so a run leaves the checkout clean; ``make report`` writes ``benchmarks/results/`` and
renders its ``REPORT.md`` with ``python -m experiments.report``.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

RESULTS = Path(__file__).resolve().parent / "results"


def pytest_addoption(parser):
    parser.addoption(
        "--full", action="store_true", default=False,
        help="benchmarks: re-encode every text with the real base model (a fresh, empty embedding cache) instead of "
             "importing the precomputed base embeddings; slow (tens of minutes on 2 CPU cores)")


@pytest.fixture(scope="session")
def full_mode(request) -> bool:
    """True under ``--full``."""
    return bool(request.config.getoption("--full"))


@pytest.fixture(scope="session")
def embeddings_spec(full_mode) -> str:
    """What ``evaluate_beir(..., embeddings=)`` gets: the shared precomputed vectors, or none under ``--full``."""
    return "off" if full_mode else "auto"


@pytest.fixture(scope="session")
def encoder_cache_dir(full_mode, tmp_path_factory):
    """``None`` (the user's embedding cache) or, under ``--full``, a fresh empty folder: every text is re-encoded."""
    return tmp_path_factory.mktemp("full_mode_cache") if full_mode else None


@pytest.fixture(scope="session")
def shared_data():
    from jepa_rag.data import shared_data_dir

    root = shared_data_dir()
    if root is None or not (root / "msmarco" / "pairs.jsonl").is_file():
        pytest.skip("shared data not found: set JEPA_RAG_DATA to a folder with beir/, msmarco/ and embeddings/")
    return root


@pytest.fixture(scope="session")
def mpnet(shared_data):
    from jepa_rag import JEPAEncoder, ModelNotFoundError

    try:
        return JEPAEncoder.from_pretrained("none", precision="fp32")
    except ModelNotFoundError as exc:
        pytest.skip(f"all-mpnet-base-v2 unavailable: {exc}")


@pytest.fixture(scope="session")
def vanilla(mpnet, encoder_cache_dir):
    """Vanilla all-mpnet-base-v2; under ``--full`` on the fresh cache, so its vectors are re-encoded."""
    from jepa_rag import JEPAEncoder

    return mpnet if encoder_cache_dir is None else JEPAEncoder.from_pretrained("none", cache_dir=encoder_cache_dir, precision="fp32")


# ------------------------------------------------------------------------------------------- a real Chroma server
@pytest.fixture(scope="session")
def chroma_server(tmp_path_factory):
    """A real ``chroma run`` server on 127.0.0.1 and a free port; yields ``(host, port)``, always terminated.

    Skips (with the reason) when chromadb or its server CLI is not installed; fails if the server does not come up.
    """
    pytest.importorskip("chromadb", reason="chromadb not installed: pip install 'jepa-rag[chroma]'")
    from tests.chroma_server import serve

    exe = Path(sys.executable).with_name("chroma")
    if not exe.is_file():
        pytest.skip(f"the Chroma server CLI is missing ({exe}): pip install 'jepa-rag[chroma]'")
    yield from serve(tmp_path_factory.mktemp("chroma_server"))


# ------------------------------------------------------------------------------------------- in-domain heads
@dataclass
class InDomainRun:
    checkpoint: Path
    best_epoch: int
    overrides: list[str]
    seconds: float


def indomain_recipe(dataset: str) -> list[str]:
    """The ``--set`` overrides of the in-domain recipe chosen on dev for ``dataset``, as the committed
    ``indomain.json`` records it (either the lab's generic summary or the older shape); none when not recorded."""
    try:
        saved = json.loads((RESULTS / "indomain.json").read_text())
    except (OSError, ValueError):
        return []
    if "groups" in saved:
        g = saved["groups"].get(dataset, {})
        return list(g.get("recipes", {}).get(g.get("chosen"), {}).get("overrides", []))
    e = saved.get("datasets", {}).get(dataset, {})
    return list(e.get("candidates", {}).get(e.get("chosen"), {}).get("overrides", []))


@pytest.fixture(scope="session")
def indomain_scifact(shared_data, mpnet, full_mode, tmp_path_factory) -> InDomainRun:
    """SciFact heads trained on SciFact's train judgments with the bundled ``indomain`` config, seed 0 (about a
    minute on 2 CPU cores), once per session for every benchmark that needs them; written to a temp folder."""
    import jepa_rag.train
    from benchmarks._support import require_beir_vectors
    from jepa_rag.config import load_train_config
    from jepa_rag.train import train

    require_beir_vectors(mpnet, "scifact", full_mode)
    overrides = indomain_recipe("scifact")
    config = Path(jepa_rag.train.__file__).resolve().parent / "configs" / "indomain.yaml"
    cfg = load_train_config(str(config), [
        "data.source=beir", "data.path=scifact", "data.split=train", "seed=0", "name=indomain_scifact",
        f"output_dir={tmp_path_factory.mktemp('indomain_scifact')}", *overrides])
    t0 = time.perf_counter()
    res = train(cfg, resume=False, show_progress_bar=False, log=lambda *_: None)
    return InDomainRun(Path(res.checkpoint), res.best_epoch, overrides, round(time.perf_counter() - t0, 1))


# ------------------------------------------------------------------------------------------- recording
_OUTCOMES: dict[str, str] = {}


def pytest_runtest_logreport(report):
    if report.when == "call" or (report.when == "setup" and report.outcome != "passed"):
        _OUTCOMES[report.nodeid] = report.outcome


def _record_benchmarks(session, out: Path) -> None:
    """Merge this session's pytest-benchmark timings (+ extra_info, outcome) into <out>/pytest_benchmarks.json."""
    bs = getattr(session.config, "_benchmarksession", None)
    benches = [b for b in getattr(bs, "benchmarks", []) or [] if b]
    if not benches:
        return
    path = out / "pytest_benchmarks.json"
    try:
        recorded = json.loads(path.read_text())
    except (OSError, ValueError):
        recorded = {}
    when = _dt.datetime.now().strftime("%Y-%m-%d %H:%M")
    mode = "full" if session.config.getoption("--full", default=False) else "default"
    for b in benches:
        extra = {k: v for k, v in (b.extra_info or {}).items() if isinstance(v, (int, float, str, bool))}
        recorded[b.fullname] = {"outcome": _OUTCOMES.get(b.fullname, "?"), "seconds": b.stats.min,
                                "rounds": b.stats.rounds, "mode": mode, "when": when, "extra_info": extra}
    path.write_text(json.dumps(recorded, indent=2, sort_keys=True))


def pytest_sessionfinish(session, exitstatus):
    if session.config.getoption("collectonly", default=False) or hasattr(session.config, "workerinput"):
        return
    from benchmarks._support import output_dir

    out = output_dir()
    _record_benchmarks(session, out)
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None and (out / "pytest_benchmarks.json").is_file():
        reporter.write_line(f"benchmark results in {out} (report: python -m experiments.report {out})")
