"""Base-vector cache throughput (LMDB): inserting batches as ingest does, and the bulk read training does.

The before/after comparison with the shard-file cache it replaced, and with SQLite, is in
``benchmarks/results/cache.md`` (``python -m experiments.cache_before_after``, ``python -m
experiments.cache_store_choice``). Floors here sit far above what the base model can feed the cache (all-mpnet-base-v2
encodes tens of texts per second on 2 CPU cores), so a failure means the store regressed, not a slow neighbour.
"""

from __future__ import annotations

import numpy as np

from jepa_rag import EmbeddingCache, Fingerprint

FP = Fingerprint("bench/model", "ab" * 32, 384, True, 768)
N, BATCH, PROBE = 20_000, 256, 13_960  # PROBE: the MS MARCO queries + positives one training run reads
TEXTS = [f"benchmark text {i}" for i in range(N)]
VECTORS = np.random.default_rng(0).normal(size=(N, FP.dim)).astype(np.float32)


def _fill(root) -> EmbeddingCache:
    cache = EmbeddingCache(FP, root)
    for start in range(0, N, BATCH):
        cache.add(TEXTS[start:start + BATCH], VECTORS[start:start + BATCH])
    return cache


def test_insert_throughput(benchmark, tmp_path_factory):
    cache = benchmark.pedantic(lambda: _fill(tmp_path_factory.mktemp("insert")), rounds=3, iterations=1)
    per_s = N / benchmark.stats.stats.median
    benchmark.extra_info["vectors_per_s"] = per_s
    assert len(cache) == N
    assert per_s > 5_000, f"{per_s:.0f} vectors/s"


def test_bulk_lookup_throughput(benchmark, tmp_path):
    cache = _fill(tmp_path)
    probe = [TEXTS[i] for i in np.random.default_rng(1).choice(N, PROBE, replace=False)]
    got, missing = benchmark.pedantic(lambda: cache.lookup(probe), rounds=5, iterations=1)
    per_s = PROBE / benchmark.stats.stats.median
    benchmark.extra_info["lookups_per_s"] = per_s
    assert missing == [] and np.array_equal(got[0], VECTORS[TEXTS.index(probe[0])])
    assert per_s > 50_000, f"{per_s:.0f} lookups/s"


def test_checksum_verification_overhead(benchmark, tmp_path):
    """Verifying every entry's checksum costs at most 5% of a bulk read.

    The cost is timed directly (the verification step over the probe's chunks, as ``lookup`` runs it, best of many
    repeats) against the whole ``lookup`` (best of 9), because an A/B of two 40 ms reads on a shared machine is noisier
    than the 2% being measured; the A/B (verification replaced by a no-op, interleaved) is recorded too."""
    import timeit

    import jepa_rag.cache as cache_module

    from ._support import interleave, ratios

    cache = _fill(tmp_path)
    probe = [TEXTS[i] for i in np.random.default_rng(1).choice(N, PROBE, replace=False)]
    _, missing = benchmark.pedantic(lambda: cache.lookup(probe), rounds=9, iterations=1)
    assert missing == []
    read_s = benchmark.stats.stats.min
    chunk = cache_module._LOOKUP_CHUNK
    raw = np.zeros((chunk, cache_module.value_width(FP.dim)), np.uint8)
    keys = [[cache_module._key(t) for t in probe[s:s + chunk]] for s in range(0, PROBE, chunk)]

    def verify_all():
        for k in keys:
            cache_module.verified(raw[:len(k)], k)

    verify_s = min(timeit.repeat(verify_all, number=5, repeat=7)) / 5
    real = cache_module.verified

    def without():
        cache_module.verified = lambda raw, keys: np.ones(len(raw), dtype=bool)
        try:
            cache.lookup(probe)
        finally:
            cache_module.verified = real

    ab = interleave({"verified": lambda: cache.lookup(probe), "unverified": without}, rounds=9)
    median_ratio, fastest_ratio = ratios(ab["verified"], ab["unverified"])
    benchmark.extra_info.update(verify_share=verify_s / read_s, ab_median_ratio=median_ratio,
                                ab_fastest_ratio=fastest_ratio)
    assert verify_s <= 0.05 * read_s, f"verification {verify_s * 1e3:.2f} ms of a {read_s * 1e3:.1f} ms read"
