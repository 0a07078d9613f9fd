"""Child process for ``test_crash_hybrid_ingest``: ingests the crash corpus through a HybridCollection.

``python -m tests.reliability.hybrid_ingest_crash_child CONFIG_JSON``; the JSON is ``ingest_crash_child``'s plus
``lexical_dir`` (required for a server) and, optionally, ``start``/``stop`` (a slice of the corpus). After each batch chromadb acknowledged, one JSON line is appended to the
progress file and fsynced, then the lexical store is read, so the parent's SIGKILL lands in an upsert, a journal
write, a tantivy commit or a state transaction.
"""

from __future__ import annotations

import json
import os
import sys

from .ingest_crash_child import corpus


def main(cfg: dict) -> None:
    import chromadb

    from jepa_rag.chroma import JEPAEmbeddingFunction
    from jepa_rag.chroma_hybrid import hybrid_collection

    client = (chromadb.PersistentClient(path=cfg["path"]) if "path" in cfg
              else chromadb.HttpClient(host=cfg["host"], port=cfg["port"]))
    ef = JEPAEmbeddingFunction(cfg["checkpoint"], base_model=cfg["base_model"])
    collection = hybrid_collection(client, cfg["collection"], ef, lexical_dir=cfg.get("lexical_dir"))
    ids, docs = corpus(cfg["n"])
    part = slice(cfg.get("start", 0), cfg.get("stop"))
    ids, docs = ids[part], docs[part]

    with open(cfg["progress"], "a", encoding="utf-8") as progress:
        def committed(done: int, batch_ids: list[str]) -> None:
            progress.write(json.dumps({"done": done, "ids": batch_ids}) + "\n")
            progress.flush()
            os.fsync(progress.fileno())
            collection.lexical_index()

        collection.ingest(ids, docs, batch_size=cfg["batch_size"], on_batch=committed)
    print("DONE", flush=True)


if __name__ == "__main__":
    main(json.loads(sys.argv[1]))
