"""Child process for ``test_crash_ingest``: ingests the test corpus with ``jepa_rag.chroma.ingest``.

``python -m tests.reliability.ingest_crash_child CONFIG_JSON`` where the JSON gives ``path`` (an embedded
``PersistentClient`` folder) or ``host``/``port`` (a Chroma server), ``collection``, ``checkpoint``,
``base_model``, ``n``, ``batch_size`` and ``progress``. After each batch chromadb acknowledged, one JSON line
``{"done": k, "ids": [...]}`` is appended to the progress file and fsynced; the parent kills this process with
SIGKILL somewhere along the way.
"""

from __future__ import annotations

import json
import os
import sys

TOPICS = ["rivers", "volcanoes", "tea", "bicycles", "jazz", "glaciers", "bees", "lighthouses", "chess", "ferns",
          "comets", "bread", "owls", "deserts", "violins", "coral"]


def corpus(n: int) -> tuple[list[str], list[str]]:
    """``n`` short, distinct documents and their ids."""
    ids = [f"doc-{i:05d}" for i in range(n)]
    docs = [f"Record {i}: a short note about {TOPICS[i % len(TOPICS)]}, entry {i // len(TOPICS)}." for i in range(n)]
    return ids, docs


def main(cfg: dict) -> None:
    import chromadb

    from jepa_rag.chroma import JEPAEmbeddingFunction, get_or_create_collection, ingest

    client = (chromadb.PersistentClient(path=cfg["path"]) if "path" in cfg
              else chromadb.HttpClient(host=cfg["host"], port=cfg["port"]))
    ef = JEPAEmbeddingFunction(cfg["checkpoint"], base_model=cfg["base_model"])
    collection = get_or_create_collection(client, cfg["collection"], ef)
    ids, docs = corpus(cfg["n"])

    with open(cfg["progress"], "a", encoding="utf-8") as progress:
        def committed(done: int, batch_ids: list[str]) -> None:
            progress.write(json.dumps({"done": done, "ids": batch_ids}) + "\n")
            progress.flush()
            os.fsync(progress.fileno())

        ingest(collection, ids, docs, batch_size=cfg["batch_size"], on_batch=committed)
    print("DONE", flush=True)


if __name__ == "__main__":
    main(json.loads(sys.argv[1]))
