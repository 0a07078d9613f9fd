"""Concurrency: threads sharing one retriever or one embedding object get exactly what serial calls get, and async
LlamaIndex / LangChain calls run side by side without blocking the event loop.

The reference vectors come from a separate encoder that never touches the embedding cache, and every test embeds
texts no other test uses: the threads start on a cold cache, so they really run the model and write the cache
concurrently (see also ``test_cache_writers.py``).
"""

from __future__ import annotations

import asyncio
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from ..helpers import with_ticker

THREADS = 8

PASSAGES = {
    "lighthouse": "A lighthouse is a tower with a bright lamp that guides ships away from rocks at night.",
    "sourdough": "Sourdough bread rises thanks to wild yeast and lactic acid bacteria in a fermented starter.",
    "glacier": "Glaciers are slow rivers of ice that carve valleys as they creep downhill under their own weight.",
    "violin": "The violin is a bowed string instrument with four strings tuned in perfect fifths.",
    "honeybee": "Honeybees communicate the direction of flowers to their hive mates with a waggle dance.",
    "comet": "A comet grows a glowing tail of gas and dust when its icy nucleus approaches the Sun.",
    "chess": "In chess, castling moves the king two squares towards a rook, which jumps over the king.",
    "fern": "Ferns reproduce with spores released from the undersides of their fronds rather than with seeds.",
    "coral": "Coral reefs are built by colonies of tiny animals that secrete skeletons of calcium carbonate.",
    "owl": "Owls hunt at night, helped by silent flight feathers and ears placed asymmetrically on the head.",
}
QUESTIONS = [
    "what keeps ships off the rocks in the dark?", "how does sourdough rise without baker's yeast?",
    "how do glaciers shape valleys?", "how many strings does a violin have?", "how do bees tell others where food is?",
    "why do comets have tails?", "what is castling in chess?", "how do ferns reproduce?",
    "what are coral reefs made of?", "how can owls fly so quietly?", "which instrument is tuned in fifths?",
    "what lives in a sourdough starter?",
]


@pytest.fixture(scope="module")
def reference(predictor_checkpoint, minilm_dir):
    """An encoder on the same checkpoint that bypasses the cache: the serial ground truth."""
    from jepa_rag import JEPAEncoder

    return JEPAEncoder.from_pretrained(predictor_checkpoint, base_model=str(minilm_dir), use_cache=False,
                                       precision="fp32")


def _hammer(fn, items: list, threads: int = THREADS, rounds: int = 2) -> list[dict]:
    """Every thread calls ``fn`` on every item (each in its own shuffled order); a dict item -> result per thread."""
    start = threading.Barrier(threads)

    def worker(seed: int) -> dict:
        order = list(range(len(items)))
        random.Random(seed).shuffle(order)
        start.wait()
        out = {}
        for _ in range(rounds):
            for i in order:
                out.setdefault(i, []).append(fn(items[i]))
        return out

    with ThreadPoolExecutor(threads) as pool:
        return list(pool.map(worker, range(threads)))


def test_threads_sharing_one_langchain_retriever(tmp_path, predictor_checkpoint, minilm_dir, reference):
    from langchain_jepa_rag import JEPAEmbeddings, jepa_chroma_retriever

    embeddings = JEPAEmbeddings(checkpoint=str(predictor_checkpoint), base_model=str(minilm_dir), precision="fp32")
    retriever = jepa_chroma_retriever("threads", embeddings, persist_directory=tmp_path, k=3)
    store = retriever.vectorstore
    store.add_texts(list(PASSAGES.values()), ids=list(PASSAGES))
    questions = [f"{q} (thread test)" for q in QUESTIONS]

    # serial ground truth: cache-free query vectors straight into the same collection
    q = reference.encode_queries(questions)
    serial = store._collection.query(query_embeddings=q, n_results=3)

    def ask(question):
        docs = retriever.invoke(question)
        scored = store.similarity_search_with_score(question, k=3)
        return [d.id for d in docs], [d.id for d, _ in scored], [s for _, s in scored]

    for per_thread in _hammer(ask, questions):
        for i, results in per_thread.items():
            for ids, scored_ids, distances in results:
                assert ids == scored_ids == serial["ids"][i]
                np.testing.assert_allclose(distances, serial["distances"][i], atol=1e-5)
    assert serial["ids"][0][0] == "lighthouse" and serial["ids"][3][0] == "violin"


@pytest.mark.parametrize("adapter", ["llamaindex", "chroma"])
def test_threads_sharing_one_embedding_object(predictor_checkpoint, minilm_dir, reference, adapter):
    if adapter == "llamaindex":
        from llama_index.embeddings.jepa_rag import JEPAEmbedding

        emb = JEPAEmbedding(checkpoint=predictor_checkpoint, base_model=minilm_dir, precision="fp32")
        query, docs = emb.get_query_embedding, emb.get_text_embedding_batch
    else:
        from jepa_rag.chroma import JEPAEmbeddingFunction

        ef = JEPAEmbeddingFunction(predictor_checkpoint, base_model=minilm_dir, precision="fp32")
        query, docs = (lambda t: ef.embed_query([t])[0]), ef
    questions = [f"{q} ({adapter} threads)" for q in QUESTIONS]
    passages = [[f"{p} ({adapter} batch {k})" for p in PASSAGES.values()][k:k + 4] for k in range(0, 8, 2)]
    ref_q = reference.encode_queries(questions)
    ref_d = [reference.encode_documents(batch) for batch in passages]

    items = [("q", i) for i in range(len(questions))] + [("d", k) for k in range(len(passages))]

    def call(item):
        kind, i = item
        return np.asarray(query(questions[i]) if kind == "q" else docs(passages[i]), dtype=np.float32)

    for per_thread in _hammer(call, items):
        for n, results in per_thread.items():
            kind, i = items[n]
            for got in results:
                np.testing.assert_allclose(got, ref_q[i] if kind == "q" else ref_d[i], atol=1e-5)


def test_threads_querying_one_chroma_collection(tmp_path, predictor_checkpoint, minilm_dir, reference):
    import chromadb

    from jepa_rag.chroma import JEPAEmbeddingFunction, get_or_create_collection

    ef = JEPAEmbeddingFunction(predictor_checkpoint, base_model=minilm_dir, precision="fp32")
    col = get_or_create_collection(chromadb.PersistentClient(path=str(tmp_path)), "threads", ef)
    col.add(ids=list(PASSAGES), documents=list(PASSAGES.values()))
    questions = [f"{q} (collection threads)" for q in QUESTIONS]
    serial = col.query(query_embeddings=reference.encode_queries(questions), n_results=4)

    def ask(i):
        res = col.query(query_texts=[questions[i]], n_results=4)
        return res["ids"][0], res["distances"][0]

    for per_thread in _hammer(ask, list(range(len(questions)))):
        for i, results in per_thread.items():
            for ids, distances in results:
                assert ids == serial["ids"][i]
                np.testing.assert_allclose(distances, serial["distances"][i], atol=1e-5)


def _slowed(monkeypatch, encoder, delay: float) -> dict:
    """Make each encoder call take ``delay`` s longer (outside the model lock) and count how many overlap."""
    state = {"active": 0, "peak": 0, "threads": set()}
    lock = threading.Lock()
    for name in ("encode_queries", "encode_documents"):
        original = getattr(encoder, name)

        def slow(texts, _original=original, **kw):
            with lock:
                state["active"] += 1
                state["peak"] = max(state["peak"], state["active"])
                state["threads"].add(threading.get_ident())
            try:
                time.sleep(delay)
                return _original(texts, **kw)
            finally:
                with lock:
                    state["active"] -= 1

        monkeypatch.setattr(encoder, name, slow)
    return state


@pytest.mark.parametrize("adapter", ["llamaindex", "langchain"])
def test_concurrent_async_calls_overlap_and_never_block_the_loop(monkeypatch, predictor_checkpoint, minilm_dir,
                                                                  reference, adapter):
    """Eight async queries and four async batches gathered at once: they overlap in worker threads (far less wall
    time than one after another), the event loop keeps ticking, and each result equals the serial one."""
    if adapter == "llamaindex":
        from llama_index.embeddings.jepa_rag import JEPAEmbedding

        emb = JEPAEmbedding(checkpoint=predictor_checkpoint, base_model=minilm_dir, precision="fp32")
        aquery, adocs = emb.aget_query_embedding, emb.aget_text_embedding_batch
    else:
        from langchain_jepa_rag import JEPAEmbeddings

        emb = JEPAEmbeddings(checkpoint=str(predictor_checkpoint), base_model=str(minilm_dir), precision="fp32")
        aquery, adocs = emb.aembed_query, emb.aembed_documents
    questions = [f"{q} ({adapter} async)" for q in QUESTIONS[:8]]
    batches = [[f"{p} ({adapter} async {k})" for p in list(PASSAGES.values())[k:k + 3]] for k in range(4)]
    ref_q = reference.encode_queries(questions)
    ref_d = [reference.encode_documents(b) for b in batches]
    delay = 0.25
    state = _slowed(monkeypatch, emb.encoder, delay)

    async def main():
        return await asyncio.gather(*(aquery(q) for q in questions), *(adocs(b) for b in batches))

    results, ticks, elapsed = asyncio.run(with_ticker(main()))
    calls = len(questions) + len(batches)
    assert state["peak"] >= 2 and len(state["threads"]) >= 2  # side by side in worker threads
    assert elapsed < calls * delay * 0.75, elapsed  # serial would take at least calls * delay
    assert ticks >= elapsed / 0.01 * 0.3  # the loop kept running throughout
    assert threading.get_ident() not in state["threads"]
    for i, got in enumerate(results[:len(questions)]):
        np.testing.assert_allclose(got, ref_q[i], atol=1e-5)
    for k, got in enumerate(results[len(questions):]):
        np.testing.assert_allclose(got, ref_d[k], atol=1e-5)
