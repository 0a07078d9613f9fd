"""SQLite (WAL) vs LMDB as the base-vector store: insert and lookup throughput on this machine.

    python -m experiments.cache_store_choice [--n 50000] [--dim 768]

Writes nothing tracked; prints one JSON line per store. The store jepa-rag ships is chosen from these numbers
(benchmarks/results/cache.md).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sqlite3
import tempfile
import time

import numpy as np


def keys_for(n: int) -> list[bytes]:
    return [hashlib.sha256(f"text {i}".encode()).digest()[:16] for i in range(n)]


def bench_sqlite(folder: str, keys: list[bytes], vecs: np.ndarray, batch: int, probe: list[bytes]) -> dict:
    con = sqlite3.connect(os.path.join(folder, "v.sqlite3"), isolation_level=None)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("PRAGMA synchronous=NORMAL")
    con.execute("CREATE TABLE v (k BLOB PRIMARY KEY, x BLOB NOT NULL) WITHOUT ROWID")
    t = time.perf_counter()
    for s in range(0, len(keys), batch):
        con.execute("BEGIN IMMEDIATE")
        con.executemany("INSERT OR IGNORE INTO v VALUES (?, ?)",
                        [(k, vecs[i].tobytes()) for i, k in enumerate(keys[s:s + batch], s)])
        con.execute("COMMIT")
    insert = time.perf_counter() - t
    t = time.perf_counter()
    got = {}
    for s in range(0, len(probe), 500):
        part = probe[s:s + 500]
        got.update(con.execute(f"SELECT k, x FROM v WHERE k IN ({','.join('?' * len(part))})", part).fetchall())
    bulk = time.perf_counter() - t
    t = time.perf_counter()
    for k in probe[:5000]:
        con.execute("SELECT x FROM v WHERE k = ?", (k,)).fetchone()
    single = (time.perf_counter() - t) / 5000
    return {"store": "sqlite-wal", "insert_per_s": len(keys) / insert, "bulk_lookup_per_s": len(probe) / bulk,
            "single_lookup_us": single * 1e6, "files": sorted(os.listdir(folder))}


def bench_lmdb(folder: str, keys: list[bytes], vecs: np.ndarray, batch: int, probe: list[bytes]) -> dict:
    import lmdb

    env = lmdb.open(folder, map_size=1 << 36, subdir=True, max_dbs=1)
    t = time.perf_counter()
    for s in range(0, len(keys), batch):
        with env.begin(write=True) as txn:
            for i, k in enumerate(keys[s:s + batch], s):
                txn.put(k, vecs[i].tobytes(), overwrite=False)
    insert = time.perf_counter() - t
    t = time.perf_counter()
    with env.begin() as txn:
        got = {k: txn.get(k) for k in probe}
    bulk = time.perf_counter() - t
    t = time.perf_counter()
    for k in probe[:5000]:
        with env.begin() as txn:
            txn.get(k)
    single = (time.perf_counter() - t) / 5000
    assert len(got) == len(probe)
    return {"store": "lmdb", "insert_per_s": len(keys) / insert, "bulk_lookup_per_s": len(probe) / bulk,
            "single_lookup_us": single * 1e6, "files": sorted(os.listdir(folder))}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=50_000)
    p.add_argument("--dim", type=int, default=768)
    p.add_argument("--batch", type=int, default=256)
    args = p.parse_args()
    keys = keys_for(args.n)
    vecs = np.random.default_rng(0).normal(size=(args.n, args.dim)).astype(np.float32)
    probe = [keys[i] for i in np.random.default_rng(1).choice(args.n, size=min(15_000, args.n), replace=False)]
    for bench in (bench_sqlite, bench_lmdb):
        with tempfile.TemporaryDirectory() as folder:
            print(json.dumps(bench(folder, keys, vecs, args.batch, probe)))


if __name__ == "__main__":
    main()
