"""Fixtures for the integration tests: a second checkpoint, sample passages, and a real Chroma server.

Why a real server: the HTTP client serialises the embedding-function config through the server and back, which
an embedded client never does; testing only embedded mode would miss a config the server drops or rejects.
"""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent

PASSAGES = {
    "paris": "Paris is the capital and largest city of France, on the river Seine.",
    "photosynthesis": "Plants use sunlight, water and carbon dioxide to make glucose and release oxygen.",
    "jupiter": "Jupiter is the largest planet in the Solar System, a gas giant with a great red storm.",
    "tcp": "TCP delivers a reliable, ordered stream of bytes and resends lost packets.",
    "bread": "Yeast ferments sugar in dough and the carbon dioxide bubbles make bread rise.",
    "everest": "Mount Everest is the highest mountain above sea level, on the border of Nepal and China.",
}
QUERIES = [
    "What is the capital city of France?",
    "How do plants make sugar from light?",
    "Which planet is the biggest?",
]


@pytest.hookimpl(hookwrapper=True, trylast=True)
def pytest_pycollect_makeitem(collector, name, obj):
    """Mark this folder's ``async def`` tests (LangChain's standard async tests included) for pytest-asyncio.

    The project runs pytest-asyncio in strict mode; marking here, inside pytest-asyncio's own collection wrapper,
    lets it turn them into asyncio items without touching the inherited standard tests.
    """
    outcome = yield
    result = outcome.get_result()
    items = result if isinstance(result, list) else [result]
    for item in items:
        if isinstance(item, pytest.Function) and inspect.iscoroutinefunction(getattr(item, "obj", None)):
            item.add_marker(pytest.mark.asyncio)


@pytest.fixture(scope="session")
def other_checkpoint(tmp_path_factory, minilm_dir, minilm_fingerprint):
    """Another MiniLM predictor-route checkpoint (different head weights): a different embedding space."""
    from ..helpers import perturbed_checkpoint

    return perturbed_checkpoint(tmp_path_factory.mktemp("ckpt_other") / "other_ckpt", minilm_dir,
                                minilm_fingerprint, 1)


@pytest.fixture(scope="session")
def passages() -> dict[str, str]:
    return dict(PASSAGES)


@pytest.fixture(scope="session")
def queries() -> list[str]:
    return list(QUERIES)


@pytest.fixture(scope="session")
def chroma_server(tmp_path_factory):
    """A real ``chroma run`` server on 127.0.0.1 and a free port; yields ``(host, port)``, always terminated."""
    from ..chroma_server import serve

    yield from serve(tmp_path_factory.mktemp("chroma_server"))
