"""Tiny data sets written on the fly (no network, no shared data needed)."""

from __future__ import annotations

import json
from pathlib import Path

DOCS = {
    "007": ("Cats", "Cats are small domesticated carnivorous mammals that purr."),
    "8": ("Dogs", "Dogs are loyal domesticated animals descended from wolves."),
    "9": ("Photosynthesis", "Plants convert sunlight, water and carbon dioxide into glucose and oxygen."),
    "10": ("Volcanoes", "A volcano is a rupture in the crust where lava and ash escape."),
    "11": ("Python", "Python is a programming language known for readable syntax."),
    "12": ("Tea", "Tea is a drink made by steeping cured leaves in hot water."),
    "13": ("Moon", "The Moon orbits the Earth and causes ocean tides."),
    "14": ("Bicycles", "A bicycle is a two-wheeled vehicle powered by pedals."),
}
QUERIES = {
    "q1": "which pets purr?",
    "q2": "animals that descend from wolves",
    "q3": "how do plants make sugar from light?",
    "q4": "what causes the tides?",
    "q5": "a language with readable code",
}
QRELS = {"q1": {"007": 1}, "q2": {"8": 1}, "q3": {"9": 2}, "q4": {"13": 1}, "q5": {"11": 1}}


def write_beir(folder: Path, split: str = "test", crlf: bool = True) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "corpus.jsonl", "w") as fh:
        fh.writelines(json.dumps({"_id": did, "title": title, "text": text, "metadata": {}}) + "\n" for did, (title, text) in DOCS.items())
    with open(folder / "queries.jsonl", "w") as fh:
        fh.writelines(json.dumps({"_id": qid, "text": text, "metadata": {}}) + "\n" for qid, text in QUERIES.items())
    (folder / "qrels").mkdir(exist_ok=True)
    nl = "\r\n" if crlf else "\n"
    rows = ["query-id\tcorpus-id\tscore"] + [f"{q}\t{d}\t{g}" for q, rel in QRELS.items() for d, g in rel.items()]
    (folder / "qrels" / f"{split}.tsv").write_bytes((nl.join(rows) + nl).encode())
    return folder


def write_pairs(path: Path, n: int = 40) -> Path:
    topics = [
        ("cat", "Cats are small furry pets that purr and chase mice."),
        ("dog", "Dogs are loyal pets that bark and love walks."),
        ("sun", "The Sun is a star that gives Earth light and heat."),
        ("rain", "Rain is water falling from clouds in drops."),
        ("bread", "Bread is baked from flour, water and yeast."),
        ("chess", "Chess is a board game of strategy for two players."),
        ("piano", "A piano is an instrument played by pressing keys."),
        ("train", "A train runs on rails and carries passengers or freight."),
        ("river", "A river is a stream of water flowing to the sea."),
        ("honey", "Bees make honey from the nectar of flowers."),
    ]
    with open(path, "w") as fh:
        for i in range(n):
            word, passage = topics[i % len(topics)]
            fh.write(json.dumps({"query_id": f"q{i}", "query": f"tell me about {word} #{i // len(topics)}",
                                 "positive": passage}) + "\n")
    return path


def perturbed_checkpoint(path: Path, base_dir: Path, fingerprint, seed: int) -> Path:
    """A predictor-route checkpoint on ``base_dir`` whose residual heads are nudged off the identity (so query and
    document routes differ, and two seeds give two embedding spaces)."""
    import torch

    from jepa_rag import Checkpoint, HeadConfig, ModelConfig, save_checkpoint
    from jepa_rag.heads import JEPAHeads

    d = fingerprint.dim
    cfg = ModelConfig(base_model=str(base_dir), projection=HeadConfig(d, d, residual=True),
                      predictor=HeadConfig(d, d, residual=True), query_route="predictor")
    heads = JEPAHeads(cfg)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in heads.parameters():
            p.add_(0.02 * torch.randn(p.shape, generator=gen))
    save_checkpoint(Checkpoint(cfg, fingerprint, heads.state_dict()), path)
    return path


def slow_encoder_calls(monkeypatch, encoder, delay: float = 0.3) -> list[int]:
    """Slow ``encoder``'s two encode methods down by ``delay`` s each and return the list of thread ids that ran
    them, so a test can show an async adapter does its work off the event loop's thread."""
    import threading
    import time

    threads: list[int] = []
    for name in ("encode_queries", "encode_documents"):
        original = getattr(encoder, name)

        def slow(texts, _original=original, **kw):
            threads.append(threading.get_ident())
            time.sleep(delay)
            return _original(texts, **kw)

        monkeypatch.setattr(encoder, name, slow)
    return threads


async def with_ticker(coro):
    """Await ``coro`` while a task ticks every 10 ms; return (result, ticks, seconds). A blocked loop ticks ~0 times."""
    import asyncio
    import time

    ticks = 0

    async def ticker():
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    task = asyncio.create_task(ticker())
    start = time.perf_counter()
    try:
        result = await coro
    finally:
        task.cancel()
    return result, ticks, time.perf_counter() - start
