"""Fixtures for the reliability tests: the crash-test corpus with its base vectors pre-cached, and a Chroma server
that can be stopped, crashed and restarted on the same data folder."""

from __future__ import annotations

import numpy as np
import pytest

from ..chroma_server import ChromaServer
from .ingest_crash_child import corpus

N_DOCS = 2400


@pytest.fixture(scope="session")
def crash_corpus(predictor_checkpoint, minilm_dir):
    """``(ids, docs, vectors)``: the crash tests' corpus and the vectors the predictor checkpoint gives its documents.

    Why pre-cached: the crash tests are about what Chroma keeps, not about the base model, so the corpus's base
    vectors are seeded into the session's embedding cache (deterministic random unit vectors) instead of running
    MiniLM on 2,400 texts; child processes share that cache, so every ingest, query and check is fast, and a kill
    lands inside Chroma's writes rather than in a forward pass. Heads, routes and Chroma are all real.
    """
    from jepa_rag.adapters import load_encoder

    ids, docs = corpus(N_DOCS)
    encoder = load_encoder(predictor_checkpoint, minilm_dir)
    rng = np.random.default_rng(0)
    base = rng.normal(size=(len(docs), encoder.fingerprint.dim)).astype(np.float32)
    encoder.cache.add(docs, base / np.linalg.norm(base, axis=1, keepdims=True))
    return ids, docs, encoder.encode_documents(docs)


@pytest.fixture
def chroma_server_factory(tmp_path):
    """``make()`` starts a restartable server on a fresh data folder; every server made is stopped at the end."""
    servers = []

    def make() -> ChromaServer:
        server = ChromaServer(tmp_path / f"server{len(servers)}" / "data")
        server.path.parent.mkdir(parents=True, exist_ok=True)
        servers.append(server)
        return server.start()

    yield make
    for server in servers:
        server.kill()
