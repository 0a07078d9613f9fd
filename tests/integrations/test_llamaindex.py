"""LlamaIndex: a VectorStoreIndex on an embedded, persistent Chroma collection survives a fresh process."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import textwrap
import threading

import numpy as np
import pytest

from ..helpers import slow_encoder_calls, with_ticker

COLLECTION = "li_docs"

REOPEN = textwrap.dedent("""
    import json, sys
    import chromadb
    from llama_index.core import VectorStoreIndex
    from llama_index.embeddings.jepa_rag import JEPAEmbedding
    from llama_index.vector_stores.jepa_rag import jepa_chroma_vector_store

    db, ckpt, base, collection, queries = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], json.loads(sys.argv[5])
    embed = JEPAEmbedding(checkpoint=ckpt, base_model=base, precision="fp32")
    store = jepa_chroma_vector_store(chromadb.PersistentClient(path=db), collection, embed)
    index = VectorStoreIndex.from_vector_store(store, embed_model=embed)
    retriever = index.as_retriever(similarity_top_k=3)
    out = [[[n.node.node_id, n.score] for n in retriever.retrieve(q)] for q in queries]
    print("RESULT " + json.dumps(out))
""")


@pytest.fixture(scope="module")
def embed(predictor_checkpoint, minilm_dir):
    from llama_index.embeddings.jepa_rag import JEPAEmbedding

    return JEPAEmbedding(checkpoint=predictor_checkpoint, base_model=minilm_dir, precision="fp32")


def _nodes(passages):
    from llama_index.core.schema import TextNode

    return [TextNode(id_=key, text=text) for key, text in passages.items()]


def test_index_persists_and_reopens_in_a_fresh_process(tmp_path, embed, passages, queries, predictor_checkpoint,
                                                       minilm_dir):
    import chromadb
    from llama_index.core import StorageContext, VectorStoreIndex

    from llama_index.vector_stores.jepa_rag import jepa_chroma_vector_store

    db = tmp_path / "chroma"
    store = jepa_chroma_vector_store(chromadb.PersistentClient(path=str(db)), COLLECTION, embed)
    storage = StorageContext.from_defaults(vector_store=store)
    index = VectorStoreIndex(_nodes(passages), storage_context=storage, embed_model=embed)
    storage.persist(persist_dir=str(tmp_path / "storage"))
    retriever = index.as_retriever(similarity_top_k=3)
    before = [[[n.node.node_id, n.score] for n in retriever.retrieve(q)] for q in queries]
    assert [hits[0][0] for hits in before] == ["paris", "photosynthesis", "jupiter"]

    proc = subprocess.run(
        [sys.executable, "-c", REOPEN, str(db), str(predictor_checkpoint), str(minilm_dir), COLLECTION,
         json.dumps(queries)],
        capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr[-3000:]
    after = json.loads(next(line for line in proc.stdout.splitlines() if line.startswith("RESULT "))[7:])
    assert [[i for i, _ in hits] for hits in after] == [[i for i, _ in hits] for hits in before]
    np.testing.assert_allclose([[s for _, s in h] for h in after], [[s for _, s in h] for h in before], atol=1e-4)


def test_reopening_with_another_checkpoint_is_refused(tmp_path, embed, passages, other_checkpoint, minilm_dir):
    import chromadb
    from llama_index.core import StorageContext, VectorStoreIndex

    from jepa_rag.errors import EmbeddingSpaceConflictError
    from llama_index.embeddings.jepa_rag import JEPAEmbedding
    from llama_index.vector_stores.jepa_rag import jepa_chroma_vector_store

    client = chromadb.PersistentClient(path=str(tmp_path))
    storage = StorageContext.from_defaults(vector_store=jepa_chroma_vector_store(client, COLLECTION, embed))
    VectorStoreIndex(_nodes(passages), storage_context=storage, embed_model=embed)
    other = JEPAEmbedding(checkpoint=other_checkpoint, base_model=minilm_dir)
    with pytest.raises(EmbeddingSpaceConflictError, match="different embedding spaces"):
        jepa_chroma_vector_store(client, COLLECTION, other)
    # reopening without an embed model rebuilds the stored checkpoint
    reopened = jepa_chroma_vector_store(client, COLLECTION)
    assert reopened._collection.count() == len(passages)


def test_text_batches_are_one_encoder_call(monkeypatch, embed):
    calls = []
    original = embed.encoder.encode_documents

    def spy(texts, **kw):
        calls.append(list(texts))
        return original(texts, **kw)

    monkeypatch.setattr(embed.encoder, "encode_documents", spy)
    texts = [f"passage number {i}" for i in range(5)]
    vectors = embed.get_text_embedding_batch(texts)
    assert len(vectors) == 5 and calls == [texts]


def test_async_embedding_runs_off_the_event_loop(monkeypatch, embed):
    """While the encoder works (slowed down here), the event loop keeps running other tasks."""
    threads = slow_encoder_calls(monkeypatch, embed.encoder)

    async def main():
        return (await embed.aget_query_embedding("a question"), await embed.aget_text_embedding("a passage"),
                await embed.aget_text_embedding_batch(["one passage", "another passage"]))

    (q, t, b), ticks, _ = asyncio.run(with_ticker(main()))
    assert len(q) == len(t) == embed.encoder.dim and len(b) == 2
    assert ticks >= 20  # ~0.9 s of encoder time; a blocked loop would tick ~0 times
    assert threading.get_ident() not in threads


def test_index_against_a_chroma_server(chroma_server, embed, passages, queries):
    import uuid

    import chromadb
    from llama_index.core import StorageContext, VectorStoreIndex

    from llama_index.vector_stores.jepa_rag import jepa_chroma_vector_store

    host, port = chroma_server
    name = f"li-{uuid.uuid4().hex[:12]}"
    store = jepa_chroma_vector_store(chromadb.HttpClient(host=host, port=port), name, embed)
    VectorStoreIndex(_nodes(passages), storage_context=StorageContext.from_defaults(vector_store=store),
                     embed_model=embed)
    reopened = jepa_chroma_vector_store(chromadb.HttpClient(host=host, port=port), name, embed)
    retriever = VectorStoreIndex.from_vector_store(reopened, embed_model=embed).as_retriever(similarity_top_k=1)
    assert [retriever.retrieve(q)[0].node.node_id for q in queries] == ["paris", "photosynthesis", "jupiter"]


def test_serialises_to_its_constructor_arguments(embed):
    from llama_index.embeddings.jepa_rag import JEPAEmbedding

    data = embed.to_dict()
    assert data["class_name"] == "JEPAEmbedding" and data["checkpoint"] == embed.checkpoint
    again = JEPAEmbedding.from_dict(data)
    assert again.checkpoint == embed.checkpoint and again.base_model == embed.base_model
    assert again.encoder is embed.encoder  # one loaded model per checkpoint


# ------------------------------------------------------------------------------------------------ precision
def _cosines(a, b) -> np.ndarray:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


@pytest.fixture(scope="module")
def embed_bf16(predictor_checkpoint, minilm_dir):
    from llama_index.embeddings.jepa_rag import JEPAEmbedding

    return JEPAEmbedding(checkpoint=predictor_checkpoint, base_model=minilm_dir, precision="bf16")


def test_bf16_embedding_is_close_to_fp32(embed, embed_bf16, passages, queries):
    from llama_index.embeddings.jepa_rag import JEPAEmbedding

    assert embed_bf16.encoder.precision == "bf16" and embed_bf16.encoder is not embed.encoder
    docs = list(passages.values())
    fast = embed_bf16.get_text_embedding_batch(docs) + [embed_bf16.get_query_embedding(q) for q in queries]
    ref = embed.get_text_embedding_batch(docs) + [embed.get_query_embedding(q) for q in queries]
    assert _cosines(fast, ref).min() > 0.99
    assert not np.array_equal(fast, ref), "bf16 gave bit-identical vectors"
    again = JEPAEmbedding.from_dict(embed_bf16.to_dict())  # precision survives serialisation
    assert again.precision == "bf16" and again.encoder is embed_bf16.encoder


def test_vector_store_passes_precision_and_it_never_conflicts(tmp_path, embed, embed_bf16, passages, queries):
    import chromadb
    from llama_index.core import StorageContext, VectorStoreIndex

    from llama_index.vector_stores.jepa_rag import jepa_chroma_vector_store

    client = chromadb.PersistentClient(path=str(tmp_path))
    store = jepa_chroma_vector_store(client, COLLECTION, embed)  # built with fp32
    VectorStoreIndex(_nodes(passages), storage_context=StorageContext.from_defaults(vector_store=store),
                     embed_model=embed)
    fast = jepa_chroma_vector_store(client, COLLECTION, embed_bf16)  # opened with bf16: same space, no conflict
    assert fast._collection._embedding_function.precision == "bf16"
    retriever = VectorStoreIndex.from_vector_store(fast, embed_model=embed_bf16).as_retriever(similarity_top_k=1)
    assert [retriever.retrieve(q)[0].node.node_id for q in queries] == ["paris", "photosynthesis", "jupiter"]


def test_unknown_precision_is_refused(predictor_checkpoint, minilm_dir):
    from jepa_rag.errors import ConfigError

    from llama_index.embeddings.jepa_rag import JEPAEmbedding

    with pytest.raises(ConfigError, match=r"precision must be one of \['auto', 'fp32', 'bf16'\], got 'int8'"):
        JEPAEmbedding(checkpoint=predictor_checkpoint, base_model=minilm_dir, precision="int8")


def test_an_empty_node_gets_a_vector_so_indexing_keeps_its_batch(embed, passages, queries):
    """LlamaIndex pairs every node with a vector: an empty node warns instead of aborting the index build."""
    from llama_index.core import VectorStoreIndex
    from llama_index.core.schema import TextNode

    texts = [*passages.values(), " "]
    with pytest.warns(UserWarning, match=rf"1 of {len(texts)} documents are empty"):
        vecs = embed.get_text_embedding_batch(texts)
    assert len(vecs) == len(texts) and np.isfinite(vecs).all()
    nodes = [TextNode(id_=i, text=t) for i, t in zip([*passages, "blank"], texts)]
    with pytest.warns(UserWarning, match="empty"):
        index = VectorStoreIndex(nodes, embed_model=embed)
    assert index.as_retriever(similarity_top_k=1).retrieve(queries[0])[0].node.node_id == "paris"
    with pytest.raises(Exception, match="single str"):
        embed.get_text_embedding_batch("a bare string")
