"""Odd and huge queries: a 1 MB query used to take 15 s, 60 of them left 60 MB in the query LRU, and an empty list
or an absurd k gave untyped errors. Queries are now cut to max_query_chars (one warning), the LRU is bounded in
bytes, and bad arguments are InvalidInputError."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from jepa_rag import ConfigError, HybridRetriever, InvalidInputError, JEPAEncoder
from jepa_rag.encoder import MAX_QUERY_CHARS, _VectorLRU

HUGE = ("pump pressure sensor fault " * 40_000)[:1_000_000]  # 1 MB
IDS = ["pump", "photo", "volcano"]
DOCS = ["Fault E1042: the pump's pressure sensor is unplugged.",
        "Photosynthesis turns light, water and carbon dioxide into glucose.",
        "Volcanoes erupt when magma reaches the surface."]


def test_a_huge_query_is_cut_with_one_warning(minilm_encoder, caplog):
    with caplog.at_level(logging.WARNING, logger="jepa_rag"):
        got = minilm_encoder.encode_queries([HUGE, "short", HUGE + "x"])
    np.testing.assert_allclose(got[0], minilm_encoder.encode_queries([HUGE[:MAX_QUERY_CHARS]])[0], atol=1e-6)
    assert minilm_encoder.truncated_queries == 2
    assert caplog.text.count("longer than max_query_chars") == 1
    retriever = HybridRetriever(minilm_encoder, IDS, DOCS)
    assert retriever.retrieve([HUGE], k=3) == retriever.retrieve([HUGE[:MAX_QUERY_CHARS]], k=3)
    assert retriever.retrieve([HUGE], k=1)[0][0][0] == "pump"


def test_the_limit_is_configurable_and_checked(minilm_dir):
    encoder = JEPAEncoder.from_pretrained("none", base_model=str(minilm_dir), precision="fp32", max_query_chars=None)
    assert encoder.bound_queries([HUGE]) == [HUGE]
    for bad in (0, -1, 2.5, True, "100"):
        with pytest.raises(ConfigError, match="max_query_chars"):
            JEPAEncoder.from_pretrained("none", base_model=str(minilm_dir), max_query_chars=bad)


def test_the_query_lru_is_bounded_in_bytes():
    lru = _VectorLRU(4096, max_bytes=1 << 20)
    vec = np.zeros(384, np.float32)
    for i in range(60):
        lru.put(f"{i} " + "q" * 100_000, vec)
    assert lru.bytes <= 1 << 20 and 0 < len(lru) < 60
    assert lru.get("59 " + "q" * 100_000) is not None and lru.get("0 " + "q" * 100_000) is None
    lru.put("too big " + "q" * (2 << 20), vec)  # larger than the whole bound: not kept, nothing evicted for it
    assert lru.get("59 " + "q" * 100_000) is not None


def test_empty_lists_and_absurd_k(minilm_encoder):
    retriever = HybridRetriever(minilm_encoder, IDS, DOCS)
    assert retriever.retrieve([], k=5) == []  # no queries, no results
    assert minilm_encoder.encode_queries([]).shape == (0, minilm_encoder.dim)
    assert len(retriever.retrieve(["magma"], k=2**63)[0]) == 3  # capped at the corpus size
    for k in (0, -1, 2.5, True, "3", None):
        with pytest.raises(InvalidInputError, match="k must be a positive integer"):
            retriever.retrieve(["magma"], k=k)
    for queries in ("magma", [""], [None], [b"magma"]):
        with pytest.raises(InvalidInputError):
            retriever.retrieve(queries, k=1)
