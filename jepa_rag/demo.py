"""Build a small Chroma index with a jepa-rag checkpoint and search it: ``python -m jepa_rag.demo``.

The index is an embedded, persistent Chroma collection in a folder (``./jepa_rag_demo_index`` unless ``--path``),
built over a bundled sample corpus of short passages. Documents are embedded along the checkpoint's document route
and queries along its query route; the score shown is the cosine similarity (1 = same direction). Running it again
reuses the index; an index built with another checkpoint is refused rather than mixed.

Needs Chroma: ``pip install 'jepa-rag[chroma]'``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from importlib import resources
from pathlib import Path

from .data import doc_text
from .encoder import DEFAULT_CHECKPOINT
from .errors import EmbeddingSpaceConflictError, JEPARagError

DEFAULT_PATH = "./jepa_rag_demo_index"
COLLECTION = "jepa_rag_demo"
DEFAULT_QUERIES = (
    "How do plants turn sunlight into food?",
    "Which planet in our solar system is the biggest?",
    "Why can't I cook pasta properly high up in the mountains?",
    "What makes a network connection reliable?",
)
BATCH = 8


def load_sample_corpus() -> list[dict]:
    """The bundled passages: ``{"id", "title", "text"}`` dicts, one per line of ``sample_corpus.jsonl``."""
    text = resources.files("jepa_rag").joinpath("sample_corpus.jsonl").read_text(encoding="utf-8")
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def _parser(prog: str = "python -m jepa_rag.demo") -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n\n")[0])
    p.add_argument("--checkpoint", default="default",
                   help="checkpoint folder, 'default' (the one jepa-rag ships) or 'none' (the plain base model)")
    p.add_argument("--base-model", default=None, help="base model folder or Hub id (default: the checkpoint's)")
    p.add_argument("--path", default=DEFAULT_PATH, help=f"folder of the Chroma index (default {DEFAULT_PATH})")
    p.add_argument("--query", action="append", default=None,
                   help="a query to run (repeat for several; default: four example queries)")
    p.add_argument("--top-k", type=int, default=3, help="hits shown per query (default 3)")
    p.add_argument("--device", default=None, help="torch device (default: CPU)")
    return p


def main(argv: list[str] | None = None, prog: str = "python -m jepa_rag.demo") -> int:
    args = _parser(prog).parse_args(argv)
    if args.top_k < 1:
        print("error: --top-k must be at least 1", file=sys.stderr)
        return 2
    try:
        import chromadb

        from jepa_rag.chroma import JEPAEmbeddingFunction, get_or_create_collection
    except ImportError as exc:
        print(f"error: the demo needs Chroma: {exc}\nInstall it with: pip install 'jepa-rag[chroma]'", file=sys.stderr)
        return 2
    from tqdm.auto import tqdm

    checkpoint = args.checkpoint
    if checkpoint == "default" and not DEFAULT_CHECKPOINT.is_dir():
        print(f"notice: this install ships no default checkpoint ({DEFAULT_CHECKPOINT} is missing); "
              "falling back to checkpoint 'none', the plain base model without JEPA heads.")
        checkpoint = "none"

    start = time.time()
    try:
        ef = JEPAEmbeddingFunction(checkpoint, base_model=args.base_model, device=args.device)
        print(f"encoder: {ef.encoder!r}")
        path = Path(args.path).expanduser()
        client = chromadb.PersistentClient(path=str(path))
        collection = get_or_create_collection(client, COLLECTION, ef)
        corpus = load_sample_corpus()
        present = set(collection.get(ids=[d["id"] for d in corpus], include=[])["ids"])
        todo = [d for d in corpus if d["id"] not in present]
        print(f"index: {path.resolve()} (collection {COLLECTION!r}, {len(present)} of {len(corpus)} passages present)")
        with tqdm(total=len(corpus), initial=len(present), desc="indexing", unit="passage") as bar:
            for i in range(0, len(todo), BATCH):
                batch = todo[i:i + BATCH]
                collection.upsert(ids=[d["id"] for d in batch], documents=[doc_text(d) for d in batch],
                                  metadatas=[{"title": d["title"]} for d in batch])
                bar.update(len(batch))
        queries = args.query or list(DEFAULT_QUERIES)
        k = min(args.top_k, collection.count())
        result = collection.query(query_texts=queries, n_results=k, include=["documents", "metadatas", "distances"])
    except JEPARagError as exc:
        print(f"error: {exc}", file=sys.stderr)
        if isinstance(exc, EmbeddingSpaceConflictError):
            print(f"hint: pass another --path, or delete {args.path} to rebuild it with this checkpoint",
                  file=sys.stderr)
        return 2

    for qi, query in enumerate(queries):
        print(f"\nquery: {query}")
        hits = zip(result["ids"][qi], result["metadatas"][qi], result["documents"][qi], result["distances"][qi])
        for rank, (doc_id, _meta, text, distance) in enumerate(hits, 1):
            snippet = text if len(text) <= 110 else text[:107] + "..."
            print(f"  {rank}. score {1.0 - distance:.3f}  [{doc_id}] {snippet}")
    print(f"\ndone in {time.time() - start:.1f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
