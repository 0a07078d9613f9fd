"""Build a small hybrid Chroma index with a jepa-rag checkpoint and search it: ``python -m jepa_rag.demo``.

The index is an embedded, persistent Chroma collection in a folder (``./jepa_rag_demo_index`` unless ``--path``)
with a BM25 index kept in step beside it (:func:`jepa_rag.chroma_hybrid.hybrid_collection`, what ``jepa-rag
ingest``/``query`` use). The bundled sample passages are gathered into a few long Markdown files (one section per
passage) and cut into token-aware chunks at their headings (:mod:`jepa_rag.chunking`, as ``jepa-rag ingest`` cuts a
folder's files). Chunks are embedded along the checkpoint's document route and queries along its query route; each
hit shows the fused score (dense cosine and BM25 blended as the checkpoint's fusion says), both sides' own scores,
its file, its character span and its section. Running it again reuses the index; an index built with another
checkpoint is refused rather than mixed.

Needs Chroma, the ``chroma`` extra: ``pip install './[chroma]'`` in a clone of jepa-rag.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from importlib import resources
from pathlib import Path

from .errors import EmbeddingSpaceConflictError, JEPARagError

# jepa_rag.encoder.DEFAULT_CHECKPOINT, spelled out so that `jepa-rag demo --help` does not import torch
DEFAULT_CHECKPOINT = Path(__file__).resolve().parent / "checkpoints" / "default"

DEFAULT_PATH = "./jepa_rag_demo_index"
COLLECTION = "jepa_rag_demo"
DEFAULT_QUERIES = (
    "How do plants turn sunlight into food?",
    "Which planet in our solar system is the biggest?",
    "Why can't I cook pasta properly high up in the mountains?",
    "What makes a network connection reliable?",
)
BATCH = 8
# the sample passages gathered into long files, in corpus order: (file name, number of passages)
LONG_FILES = (("science.md", 7), ("kitchen.md", 5), ("computing.md", 6), ("history.md", 4), ("places.md", 5),
              ("sport-and-arts.md", 6), ("nature-and-money.md", 9))
# one section per chunk: the sample's sections are 29-44 tokens, so no two fit in 56 and each fits whole
CHUNK_TOKENS = 56


def load_sample_corpus() -> list[dict]:
    """The bundled passages: ``{"id", "title", "text"}`` dicts, one per line of ``sample_corpus.jsonl``."""
    text = resources.files("jepa_rag").joinpath("sample_corpus.jsonl").read_text(encoding="utf-8")
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def long_files(corpus: list[dict]) -> dict[str, str]:
    """The sample passages as long Markdown files: ``name -> text``, a ``## title`` section per passage."""
    if sum(n for _, n in LONG_FILES) != len(corpus):
        raise ValueError(f"LONG_FILES covers {sum(n for _, n in LONG_FILES)} passages, the sample has {len(corpus)}")
    files, start = {}, 0
    for name, n in LONG_FILES:
        files[name] = "".join(f"## {d['title']}\n\n{d['text']}\n\n" for d in corpus[start:start + n])
        start += n
    return files


def demo_records(corpus: list[dict], chunker) -> list[tuple[str, str, dict]]:
    """``(id, text, metadata)`` to store: the chunks of :func:`long_files`, each naming its file (``source``), its
    place (``chunk``, character span ``start``-``end``) and the ``section`` titles it covers."""
    from .chunking import chunk_records

    files = long_files(corpus)
    ids, texts, metas = chunk_records(chunker, list(files), list(files.values()), markdown=[True] * len(files))
    for meta in metas:
        body = files[meta["source"]][meta["start"]:meta["end"]]
        meta["section"] = "; ".join(line[3:].strip() for line in body.splitlines() if line.startswith("## "))
    return list(zip(ids, texts, metas))


def _source(meta: dict | None) -> str:
    meta = meta or {}
    where = f", chars {meta['start']}-{meta['end']}" if "start" in meta and "end" in meta else ""
    section = f" ({meta['section']})" if meta.get("section") else ""
    return f"{meta.get('source', '?')}{where}{section}"


def _score(value: float | None, fmt: str) -> str:
    return "-" if value is None else format(value, fmt)


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

        from jepa_rag.chroma import JEPAEmbeddingFunction
        from jepa_rag.chroma_hybrid import hybrid_collection
    except ImportError as exc:
        print(f"error: the demo needs Chroma: {exc}\nInstall it with: pip install 'jepa-rag[chroma]' "
              "(in a clone of jepa-rag: pip install './[chroma]')", file=sys.stderr)
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
        collection = hybrid_collection(client, COLLECTION, ef)
        from jepa_rag.chunking import Chunker

        records = demo_records(load_sample_corpus(), Chunker.for_encoder(ef.encoder, CHUNK_TOKENS, 0))
        present = set(collection.get(ids=[r[0] for r in records], include=[])["ids"])
        todo = [r for r in records if r[0] not in present]
        print(f"index: {path.resolve()} (collection {COLLECTION!r}, {len(present)} of {len(records)} chunks of "
              f"{len(LONG_FILES)} files present)")
        with tqdm(total=len(records), initial=len(present), desc="indexing", unit="chunk") as bar:
            if todo:
                collection.ingest([r[0] for r in todo], [r[1] for r in todo], metadatas=[r[2] for r in todo],
                                  batch_size=BATCH, on_batch=lambda done, batch: bar.update(len(batch)))
        fusion = collection.fusion
        how = (f"reciprocal-rank fusion (k={fusion.rrf_k})" if fusion.method == "rrf"
               else f"{fusion.normalization} blend, BM25 weight {fusion.lexical_weight:.2f}")
        print(f"retrieval: hybrid, dense cosine + BM25 by {how}")
        queries = args.query or list(DEFAULT_QUERIES)
        result = collection.hybrid_query(queries, n_results=min(args.top_k, collection.count()))
    except JEPARagError as exc:
        print(f"error: {exc}", file=sys.stderr)
        if isinstance(exc, EmbeddingSpaceConflictError):
            print(f"hint: pass another --path, or delete {args.path} to rebuild it with this checkpoint",
                  file=sys.stderr)
        return 2

    for qi, query in enumerate(queries):
        print(f"\nquery: {query}")
        hits = zip(result["ids"][qi], result["metadatas"][qi], result["documents"][qi], result["scores"][qi],
                   result["dense_scores"][qi], result["lexical_scores"][qi])
        for rank, (doc_id, meta, text, score, dense, lexical) in enumerate(hits, 1):
            text = " ".join(text.split())  # a chunk keeps its heading and line breaks: one line here
            snippet = text if len(text) <= 110 else text[:107] + "..."
            print(f"  {rank}. score {score:.3f}  [{doc_id}] {snippet}")
            print(f"     source: {_source(meta)} · dense cosine {_score(dense, '.3f')} · BM25 {_score(lexical, '.2f')}")
    print(f"\ndone in {time.time() - start:.1f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
