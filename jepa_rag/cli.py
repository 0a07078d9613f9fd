"""``jepa-rag``: one command for everything a user does.

    jepa-rag train    ...   train heads on your pairs or a BEIR folder (same options as ``python -m train``)
    jepa-rag evaluate ...   NDCG@10 on a BEIR folder, dense or hybrid (same as ``python -m jepa_rag.evaluate``)
    jepa-rag ingest SOURCE --collection NAME    a folder of .txt/.md files or a JSONL into a Chroma collection
    jepa-rag query "question" --collection NAME  hybrid (BM25 + dense) or dense search of that collection
    jepa-rag demo     ...   a small index over bundled passages, then four queries

``ingest`` and ``query`` work on an embedded Chroma folder (``--path``) or a Chroma server (``--host/--port``,
with ``--lexical-dir`` for the BM25 index). ``ingest`` is resumable: documents already stored with the same text
are skipped, the rest are upserted batch by batch with a progress bar, so re-running it after a crash finishes
the job without duplicates.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path

from .errors import JEPARagError

DEFAULT_PATH = "./jepa_rag_index"


def _train(argv: list[str]) -> int:
    from .train.__main__ import main

    return main(argv, prog="jepa-rag train")


def _evaluate(argv: list[str]) -> int:
    from .evaluate import main

    return main(argv, prog="jepa-rag evaluate")


def _demo(argv: list[str]) -> int:
    from .demo import main

    return main(argv, prog="jepa-rag demo")


def _embed(argv: list[str]) -> int:
    from .embed import main

    return main(argv)


# subcommands that own their options: their --help is their own
DELEGATED: dict[str, tuple[Callable[[list[str]], int], str]] = {
    "train": (_train, "train heads on your pairs (--pairs, --corpus) or a BEIR folder (--beir)"),
    "evaluate": (_evaluate, "NDCG@10 / Recall@100 / MRR@10 on a BEIR folder, --retriever dense|hybrid"),
    "demo": (_demo, "build a small index over bundled passages and query it"),
    "embed": (_embed, "encode a corpus once into Parquet shards (local, pool or ray); --to-cache, --to-chroma"),
}


def _store_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--collection", required=True, help="Chroma collection name")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--path", default=None, help=f"embedded Chroma folder (default: {DEFAULT_PATH})")
    where.add_argument("--host", default=None, help="Chroma server host (with --port); e.g. 127.0.0.1")
    p.add_argument("--port", type=int, default=8000, help="Chroma server port (default 8000)")
    p.add_argument("--lexical-dir", default=None,
                   help="folder for the BM25 index (required with --host; default: next to --path)")
    p.add_argument("--checkpoint", default=None,
                   help="'default', 'none' or a checkpoint folder; default: the collection's own (new: 'default')")
    p.add_argument("--base-model", default=None, help="base model folder or id (default: the checkpoint's)")
    p.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16"], help="the base model's arithmetic")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="jepa-rag", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog="'jepa-rag <command> --help' shows each command's options.")
    sub = p.add_subparsers(dest="command", metavar="{train,evaluate,embed,ingest,query,demo}")
    for name, (_, help_) in DELEGATED.items():
        sub.add_parser(name, help=help_, add_help=False)
    ing = sub.add_parser("ingest", help="put a folder of .txt/.md files or a JSONL into a Chroma collection",
                         description="Embed and store documents in a Chroma collection (resumable, with a BM25 "
                                     "index kept in step for hybrid queries).")
    ing.add_argument("source", help="a folder of .txt/.md files (id = path inside it), a JSONL of "
                                    "{id?, title?, text}, or a BEIR corpus.jsonl")
    _store_options(ing)
    ing.add_argument("--batch-size", type=int, default=256, help="documents per upsert (default 256)")
    ing.add_argument("--no-progress", action="store_true", help="no progress bar")
    q = sub.add_parser("query", help="search a collection (hybrid BM25 + dense by default)",
                       description="Search a Chroma collection made by 'jepa-rag ingest'.")
    q.add_argument("text", nargs="+", help="one or more queries")
    _store_options(q)
    q.add_argument("-k", "--top-k", type=int, default=5, help="results per query (default 5)")
    q.add_argument("--dense", action="store_true", help="dense (cosine) only, no BM25")
    q.add_argument("--json", action="store_true", help="print JSON instead of a table")
    return p


def _client(args: argparse.Namespace):
    import chromadb

    if args.host:
        if not args.lexical_dir:
            raise SystemExit("error: --host needs --lexical-dir (a local folder for the BM25 index)")
        return chromadb.HttpClient(host=args.host, port=args.port)
    path = Path(args.path or DEFAULT_PATH)
    path.mkdir(parents=True, exist_ok=True)
    return chromadb.PersistentClient(path=str(path))


def _collection(args: argparse.Namespace, create: bool):
    from jepa_rag.chroma import JEPAEmbeddingFunction
    from jepa_rag.chroma_hybrid import hybrid_collection

    ef = None
    if args.checkpoint is not None or args.base_model is not None or args.precision != "auto":
        ef = JEPAEmbeddingFunction(args.checkpoint or "default", args.base_model, precision=args.precision)
    return hybrid_collection(_client(args), args.collection, ef, lexical_dir=args.lexical_dir, create=create)


def _ingest(args: argparse.Namespace) -> int:
    from tqdm.auto import tqdm

    from jepa_rag.chroma import ingest

    from .corpus import load_corpus

    if args.batch_size < 1:
        raise SystemExit("error: --batch-size must be at least 1")
    corpus = load_corpus(args.source)
    collection = _collection(args, create=True)
    ids = list(corpus.docs)
    stored: dict[str, str] = {}
    for start in range(0, len(ids), 1000):  # what an earlier (interrupted) run already stored
        got = collection.get(ids=ids[start:start + 1000], include=["documents"])
        stored.update(zip(got["ids"], got["documents"]))
    todo = [i for i in ids if stored.get(i) != corpus.docs[i]]
    skipped = len(ids) - len(todo)
    with tqdm(total=len(ids), initial=skipped, desc=f"ingest → {args.collection}", unit="doc",
              disable=args.no_progress) as bar:
        ingest(collection, todo, [corpus.docs[i] for i in todo], batch_size=args.batch_size,
               on_batch=lambda done, batch: bar.update(len(batch)))
    print(f"{args.collection}: {len(todo)} documents written, {skipped} already there; "
          f"{collection.count()} in the collection")
    return 0


def _query(args: argparse.Namespace) -> int:
    if args.top_k < 1:
        raise SystemExit("error: --top-k must be at least 1")
    from chromadb.errors import NotFoundError

    try:
        collection = _collection(args, create=False)
    except NotFoundError:
        where = f"{args.host}:{args.port}" if args.host else (args.path or DEFAULT_PATH)
        print(f"error: no collection {args.collection!r} at {where}; make it with 'jepa-rag ingest'", file=sys.stderr)
        return 1
    if args.dense:
        res = collection.query(query_texts=args.text, n_results=args.top_k)
        scores = [[1.0 - d for d in row] for row in res["distances"]]
    else:
        res = collection.hybrid_query(args.text, n_results=args.top_k)
        scores = res["scores"]
    out = [{"query": q, "results": [{"id": i, "score": float(s), "text": t}
                                    for i, s, t in zip(res["ids"][n], scores[n], res["documents"][n])]}
           for n, q in enumerate(args.text)]
    if args.json:
        print(json.dumps(out, indent=2))
        return 0
    kind = "cosine" if args.dense else "fused"
    for item in out:
        print(f"\n{item['query']}")
        for rank, r in enumerate(item["results"], 1):
            text = " ".join((r["text"] or "").split())
            print(f"  {rank}. [{kind} {r['score']:.3f}] {r['id']}: {text[:100]}{'…' if len(text) > 100 else ''}")
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in DELEGATED:
        return DELEGATED[argv[0]][0](argv[1:])
    p = _parser()
    args = p.parse_args(argv)
    if args.command is None:
        p.print_help()
        return 2
    try:
        return _ingest(args) if args.command == "ingest" else _query(args)
    except JEPARagError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
