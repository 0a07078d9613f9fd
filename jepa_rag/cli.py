"""``jepa-rag``: one command for everything a user does.

    jepa-rag train    ...   train heads on your pairs or a BEIR folder (same options as ``python -m train``)
    jepa-rag evaluate ...   NDCG@10 on a BEIR folder, dense or hybrid (same as ``python -m jepa_rag.evaluate``)
    jepa-rag ingest SOURCE --collection NAME    a folder (.txt/.md/.rst/.html, chunked) or a JSONL into Chroma
    jepa-rag query "question" --collection NAME  hybrid (BM25 + dense) or dense search: file and passage per hit
    jepa-rag demo     ...   a small index over bundled passages, then four queries

``ingest`` and ``query`` work on an embedded Chroma folder (``--path``) or a Chroma server (``--host/--port``,
with ``--lexical-dir`` for the BM25 index). ``ingest`` makes the collection mirror its source
(:mod:`jepa_rag.mirror`): unchanged documents are skipped, new and changed ones chunked (:mod:`jepa_rag.chunking`)
and upserted batch by batch with a progress bar, gone ones deleted; re-running it after Ctrl-C or a crash finishes
the job without duplicates or re-encoding.
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


def _collection_name(name: str) -> str:
    """Chroma's rule for collection names, checked before anything loads (chromadb's own error is a traceback)."""
    import re

    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{1,510}[A-Za-z0-9]", name):
        raise argparse.ArgumentTypeError(f"{name!r}: a Chroma collection name has 3-512 characters from "
                                         "[a-zA-Z0-9._-] and starts and ends with a letter or digit")
    return name


def _store_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--collection", required=True, type=_collection_name, help="Chroma collection name")
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
    ing.add_argument("source", help="a folder of .txt/.md/.rst/.html files (source = path inside it), a JSONL of "
                                    "{id?, title?, text}, or a BEIR corpus.jsonl")
    _store_options(ing)
    chunking = ing.add_mutually_exclusive_group()
    chunking.add_argument("--chunking", dest="chunking", action="store_true", default=None,
                          help="store token-aware chunks (the default for a folder)")
    chunking.add_argument("--no-chunking", dest="chunking", action="store_false",
                          help="store each document whole (the default for a JSONL; the base model reads only its "
                               "start)")
    ing.add_argument("--chunk-tokens", type=int, default=None,
                     help="tokens per chunk at most (default 254, or what the base model reads if less)")
    ing.add_argument("--chunk-overlap", type=int, default=None, help="tokens shared by neighbouring chunks "
                                                                      "(default 32)")
    ing.add_argument("--no-delete", action="store_true",
                     help="keep stored content whose file (or JSONL id) is gone; by default the collection "
                          "mirrors SOURCE, so what another folder or JSONL put in it is removed too")
    ing.add_argument("--encoding", default=None,
                     help="decode every file with this codec (default: UTF-8, else detected)")
    ing.add_argument("--strict", action="store_true", help="stop at the first file that cannot be read, "
                                                           "instead of skipping it")
    ing.add_argument("--batch-size", type=int, default=16,
                     help="chunks encoded and stored per step, what Ctrl-C or a crash can lose (default 16: seconds, "
                          "not minutes, of all-mpnet-base-v2 on a 2-core CPU)")
    ing.add_argument("--fusion", type=_fusion_arg, default="auto", metavar="auto|checkpoint|W",
                     help="the collection's BM25 weight in hybrid queries, stored with it: 'auto' (default) chooses "
                          "it from pseudo-queries cut out of the collection's own documents, keeping the "
                          "checkpoint's unless another is significantly better (again once the collection has "
                          "doubled or halved); 'checkpoint' the checkpoint's; a number W in [0, 1] that weight")
    ing.add_argument("--no-progress", action="store_true", help="no progress bar")
    q = sub.add_parser("query", help="search a collection (hybrid BM25 + dense by default)",
                       description="Search a Chroma collection made by 'jepa-rag ingest'.")
    q.add_argument("text", nargs="+", help="one or more queries")
    _store_options(q)
    q.add_argument("-k", "--top-k", type=int, default=5, help="results per query (default 5)")
    q.add_argument("--dense", action="store_true", help="dense (cosine) only, no BM25")
    q.add_argument("--json", action="store_true", help="print JSON instead of a table")
    q.add_argument("--per-source", action="store_true",
                   help="one hit per source file or document (its best chunk)")
    return p


def _fusion_arg(value: str) -> str | float:
    from .evaluate import fusion_arg  # here, so --help stays free of numpy

    return fusion_arg(value)


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


def _documents(args: argparse.Namespace):
    """The documents to mirror, and what was skipped (files only), from a folder or a JSONL."""
    from .corpus import load_corpus, locate_corpus
    from .folder import FolderRead, read_folder
    from .mirror import Document

    path, is_folder = locate_corpus(args.source)
    if is_folder:
        read = read_folder(path, encoding=args.encoding, strict=args.strict)
        return [Document(d.source, d.text, d.kind == "markdown") for d in read.documents], read, True
    corpus = load_corpus(path)
    return [Document(i, t) for i, t in corpus.docs.items()], FolderRead(), False


def _ingest(args: argparse.Namespace) -> int:
    if args.batch_size < 1:
        raise SystemExit("error: --batch-size must be at least 1")
    progress = {"stored": 0, "total": "?"}
    try:
        return _sync(args, progress)
    except KeyboardInterrupt:  # every acknowledged batch is stored, its vectors cached: say so in one line
        print(f"interrupted: {progress['stored']} of {progress['total']} stored; run the same command to finish",
              file=sys.stderr)
        return 130


def _sync(args: argparse.Namespace, progress: dict) -> int:
    from tqdm.auto import tqdm

    from .chunking import Chunker
    from .mirror import apply_plan, plan_sync, stored_sources

    documents, read, is_folder = _documents(args)
    for source, reason in read.skipped[:20]:
        print(f"skipped {source}: {reason}", file=sys.stderr)
    if len(read.skipped) > 20:
        print(f"... and {len(read.skipped) - 20} more skipped", file=sys.stderr)
    if not documents:
        print(f"error: {args.source}: no documents to ingest (skipped {read.skipped_summary()})", file=sys.stderr)
        return 1
    collection = _collection(args, create=True)
    encoder = getattr(getattr(collection, "_embedding_function", None), "encoder", None)
    chunker = None
    if args.chunking or (args.chunking is None and is_folder):
        if encoder is None:
            raise SystemExit(f"error: collection {args.collection!r} has no jepa-rag embedding function to count "
                             "tokens with; use --no-chunking")
        chunker = Chunker.for_encoder(encoder, args.chunk_tokens, args.chunk_overlap)
    cache = getattr(encoder, "cache", None)
    cached_before = len(cache) if cache is not None else 0
    plan = plan_sync(documents, stored_sources(collection), chunker, delete=not args.no_delete)
    progress.update(stored=plan.kept, total=plan.total)
    with tqdm(total=plan.total, initial=plan.kept, desc=f"ingest → {args.collection}", unit="chunk",
              disable=args.no_progress) as bar:
        def on_batch(done: int, batch: list[str]) -> None:
            progress["stored"] = plan.kept + done
            bar.update(len(batch))

        written, removed = apply_plan(collection, plan, batch_size=args.batch_size, on_batch=on_batch)
    encoded = len(cache) - cached_before if cache is not None else written
    gone = f"{len(plan.gone)} gone" + (" (kept: --no-delete)" if args.no_delete and plan.gone else "")
    unit = "chunks" if chunker is not None else "documents"
    print(f"{args.collection}: {written} {unit} written ({encoded} encoded, {written - encoded} from the cache), "
          f"{plan.kept} unchanged, {removed} removed; {len(documents)} documents: {plan.new} new, {plan.changed} "
          f"changed, {plan.unchanged} unchanged, {gone}; skipped {read.skipped_summary()}; "
          f"{collection.count()} in the collection")
    choice = collection.choose_fusion(args.fusion, progress=not args.no_progress)
    print(f"fusion: BM25 weight {choice.lexical_weight:g} ({choice.reason})")
    return 0


def _hits(res: dict, scores: list[list[float]], n: int, k: int, per_source: bool) -> list[dict]:
    """Query ``n``'s hits as dicts (chunk text, source, span), at most ``k``; one per source if ``per_source``."""
    out, seen = [], set()
    metadatas = res.get("metadatas") or [[None] * len(res["ids"][n])] * (n + 1)
    for i, score, text, meta in zip(res["ids"][n], scores[n], res["documents"][n], metadatas[n]):
        meta = meta or {}
        source = meta.get("source", i)
        if per_source and source in seen:
            continue
        seen.add(source)
        hit = {"id": i, "score": float(score), "source": source, "text": text}
        for key in ("chunk", "start", "end"):
            if key in meta:
                hit[key] = meta[key]
        out.append(hit)
        if len(out) == k:
            break
    return out


def _search(collection, args: argparse.Namespace, depth: int) -> tuple[dict, list[list[float]]]:
    if args.dense:
        res = collection.query(query_texts=args.text, n_results=depth, include=["documents", "metadatas",
                                                                              "distances"])
        return res, [[1.0 - d for d in row] for row in res["distances"]]
    res = collection.hybrid_query(args.text, n_results=depth)
    return res, res["scores"]


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
    depth = args.top_k
    while True:  # --per-source: widen until every query has k sources or the collection is exhausted
        res, scores = _search(collection, args, depth)
        hits = [_hits(res, scores, n, args.top_k, args.per_source) for n in range(len(args.text))]
        if not args.per_source or all(len(h) == args.top_k for h in hits) or depth >= collection.count():
            break
        depth *= 4
    out = [{"query": q, "results": h} for q, h in zip(args.text, hits)]
    if args.json:
        print(json.dumps(out, indent=2))
        return 0
    kind = "cosine" if args.dense else "fused"
    for item in out:
        print(f"\n{item['query']}")
        for rank, r in enumerate(item["results"], 1):
            text = " ".join((r["text"] or "").split())
            where = f" (chunk {r['chunk']}, chars {r['start']}-{r['end']})" if "start" in r and r["id"] != r["source"] \
                else ""
            print(f"  {rank}. [{kind} {r['score']:.3f}] {r['source']}{where}")
            print(f"     {text[:240]}{'…' if len(text) > 240 else ''}")
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
        from .errors import EmbeddingSpaceConflictError

        if isinstance(exc, EmbeddingSpaceConflictError):
            print(_space_hint(args), file=sys.stderr)
        return 1


def _space_hint(args: argparse.Namespace) -> str:
    """What to run when a collection was built with another checkpoint than the one given."""
    store = f"--host {args.host} --port {args.port}" if args.host else f"--path {args.path or DEFAULT_PATH}"
    ckpt = f" --checkpoint {args.checkpoint}" if args.checkpoint else ""
    source = args.source if args.command == "ingest" else "<your folder>"
    return (f"hint: index into a new collection with this checkpoint, then query that one:\n"
            f"  jepa-rag ingest {source} --collection {args.collection}-2 {store}{ckpt}\n"
            f"  jepa-rag query \"...\" --collection {args.collection}-2 {store}\n"
            f"or leave out --checkpoint to query {args.collection!r} with the checkpoint it was built with")


if __name__ == "__main__":
    sys.exit(main())
