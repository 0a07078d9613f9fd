"""Chroma hybrid retrieval: the BM25 index belongs to the collection, is updated by every write and never served stale.

Most tests run twice: on an embedded ``PersistentClient`` (index folder inside its path) and against a real
``chroma run`` server (index folder named by ``lexical_dir``).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
import uuid
import warnings
from pathlib import Path

import numpy as np
import pytest

chromadb = pytest.importorskip("chromadb")

ROOT = Path(__file__).resolve().parents[2]
RARE = {"zyx": "The zyxwv handshake resends lost frames twice.",
        "qua": "Quartzite ridges weather slowly in dry climates."}


@pytest.fixture(scope="module")
def ef(predictor_checkpoint, minilm_dir):
    from jepa_rag.chroma import JEPAEmbeddingFunction

    return JEPAEmbeddingFunction(predictor_checkpoint, base_model=minilm_dir)


@pytest.fixture(params=["embedded", "server"])
def connect(request, tmp_path):
    """``(new_client, lexical_dir)``: a function returning a new client on the same store, and the folder to name
    (None for embedded: the index lives inside the PersistentClient's path)."""
    if request.param == "embedded":
        return (lambda: chromadb.PersistentClient(path=str(tmp_path / "db"))), None
    host, port = request.getfixturevalue("chroma_server")
    return (lambda: chromadb.HttpClient(host=host, port=port)), tmp_path / "lexical"


def _name() -> str:
    return f"hybrid-{uuid.uuid4().hex[:12]}"


def _open(connect, name, ef=None):
    from jepa_rag.chroma_hybrid import hybrid_collection

    new_client, lexical_dir = connect
    return hybrid_collection(new_client(), name, ef, lexical_dir=lexical_dir)


def _filled(connect, ef, passages):
    col = _open(connect, _name(), ef)
    docs = {**passages, **RARE}
    col.add(ids=list(docs), documents=list(docs.values()))
    return col, docs


def _in_step(col) -> None:
    """The BM25 index holds exactly the collection's records (those with a text), each once."""
    ids = col.lexical_ids()
    stored = col.collection.get(include=["documents"])
    expected = {i for i, d in zip(stored["ids"], stored["documents"]) if d}
    assert len(ids) == len(set(ids)) == len(expected)
    assert set(ids) == expected


def test_hybrid_query_fuses_dense_and_bm25(connect, ef, passages, queries):
    col, docs = _filled(connect, ef, passages)
    assert col.folder is not None and col.fusion.method in ("blend", "rrf")
    res = col.hybrid_query(["zyxwv", *queries], n_results=3)
    assert set(res) == {"ids", "documents", "metadatas", "scores", "dense_scores", "lexical_scores"}
    # a made-up word only BM25 can match; the semantic queries keep their dense top hit
    assert res["ids"][0][0] == "zyx" and res["lexical_scores"][0][0] > 0
    assert [r[0] for r in res["ids"][1:]] == ["paris", "photosynthesis", "jupiter"]
    for ids, documents, scores in zip(res["ids"], res["documents"], res["scores"]):
        assert len(ids) == 3 and documents == [docs[i] for i in ids]
        assert scores == sorted(scores, reverse=True)
    # dense scores are Chroma's cosine similarities
    dense = col.collection.query(query_texts=queries[:1], n_results=len(docs), include=["distances"])
    cos = {i: 1 - d for i, d in zip(dense["ids"][0], dense["distances"][0])}
    for i, s in zip(res["ids"][1], res["dense_scores"][1]):
        assert s == pytest.approx(cos[i], abs=1e-5)
    assert col.refreshes == {"built": 1}  # created with the (empty) collection, then updated in place
    # query_embeddings skip the encoder; the texts still drive BM25
    vec = col.collection._embedding_function.embed_query(["zyxwv"])
    assert col.hybrid_query(["zyxwv"], n_results=1, query_embeddings=vec)["ids"] == [["zyx"]]


def test_saved_index_is_reused_by_a_new_client(connect, ef, passages):
    col, _ = _filled(connect, ef, passages)
    col.hybrid_query(["zyxwv"], n_results=1)
    again = _open(connect, col.name)  # a new client: reopened with the stored checkpoint
    assert again.folder == col.folder
    assert again.hybrid_query(["quartzite"], n_results=1)["ids"] == [["qua"]]
    assert again.refreshes == {"loaded": 1}


def test_writes_keep_bm25_in_step_without_rebuilding(connect, ef, passages):
    col, docs = _filled(connect, ef, passages)
    reader = _open(connect, col.name)  # another client, as another process would be
    assert reader.hybrid_query(["zyxwv"], n_results=1)["ids"] == [["zyx"]]
    built = reader.refreshes["built"] + reader.refreshes["loaded"]

    col.upsert(ids=["zyx"], documents=["A plain note about gardens and roses."])  # the rare word is gone
    col.add(ids=["new"], documents=["Xylophones chime brightly in the orchestra."])
    col.delete(ids=["qua"])
    col.update(ids=["tcp"], documents=["Bicycles need oiled chains and pumped tyres."])
    assert reader.hybrid_query(["zyxwv"], n_results=3)["lexical_scores"][0] == [None] * 3
    assert reader.refreshes["built"] + reader.refreshes["loaded"] == built  # four writes, no rebuild
    assert reader.hybrid_query(["xylophones"], n_results=1)["ids"] == [["new"]]
    assert reader.hybrid_query(["quartzite ridges"], n_results=5)["lexical_scores"][0] == [None] * 5
    top = reader.hybrid_query(["bicycles chains tyres"], n_results=1)
    assert top["ids"] == [["tcp"]] and top["lexical_scores"][0][0] > 0
    assert reader.refreshes["built"] + reader.refreshes["loaded"] == built
    _in_step(reader)
    _in_step(col)
    assert col.count() == len(docs)


def test_ingest_through_a_hybrid_collection(connect, ef):
    from jepa_rag.chroma import ingest

    col = _open(connect, _name(), ef)
    ids = [f"n{i}" for i in range(30)]
    texts = [f"Note {i} about item{i} and the weather." for i in range(30)]
    assert ingest(col, ids, texts, batch_size=7) == 30
    _in_step(col)
    assert col.hybrid_query(["item17"], n_results=1)["ids"] == [["n17"]]
    assert col.ingest(ids, texts, batch_size=10) == 30  # re-run: nothing duplicated
    _in_step(col)
    assert col.count() == 30


def test_missing_index_is_rebuilt(connect, ef, passages):
    col, _ = _filled(connect, ef, passages)
    col.hybrid_query(["zyxwv"], n_results=1)
    shutil.rmtree(col.folder)
    again = _open(connect, col.name)
    assert again.hybrid_query(["zyxwv"], n_results=1)["ids"] == [["zyx"]]
    assert again.refreshes == {"built": 1}
    assert (again.folder / "current.json").is_file()


@pytest.mark.parametrize("damage", ["state", "index", "pointer"])
def test_corrupt_index_is_rebuilt(connect, ef, passages, damage):
    import sqlite3

    col, _ = _filled(connect, ef, passages)
    col.hybrid_query(["zyxwv"], n_results=1)
    current = json.loads((col.folder / "current.json").read_text())
    store = col.folder / current["store"]
    if damage == "state":  # bytes of the stored vector moments flipped
        with sqlite3.connect(store / "state.sqlite") as db:
            total = db.execute("SELECT total FROM moments").fetchone()[0]
            db.execute("UPDATE moments SET total = ?", (bytes(b ^ 0xFF for b in total[:8]) + total[8:],))
    elif damage == "index":
        (store / "index" / "meta.json").write_text("{not json")
    else:
        (col.folder / "current.json").write_text('{"store": ')
    again = _open(connect, col.name)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert again.hybrid_query(["zyxwv"], n_results=1)["ids"] == [["zyx"]]
    assert again.refreshes["built"] == 1  # damage found on open, or on the first read (state) after "loaded"
    if damage != "pointer":
        assert any("rebuilding" in str(w.message) for w in caught)
    assert sorted(_open(connect, col.name).lexical_ids()) == sorted(again.lexical_ids())  # the rebuilt one, saved


@pytest.mark.parametrize("damage", ["flip", "zero", "truncate", "remove"])
@pytest.mark.parametrize("kind", ["idx", "term", "fieldnorm", "store"])
def test_a_damaged_index_file_is_found_before_it_is_served(tmp_path, ef, passages, damage, kind):
    """tantivy opens damaged postings, norms and stored fields without a word (scores change, a zeroed term
    dictionary fails mid-search); their checksums are verified, so the store is rebuilt instead."""
    connect = (lambda: chromadb.PersistentClient(path=str(tmp_path / "db"))), None
    col, _ = _filled(connect, ef, passages)
    want = col.hybrid_query(["zyxwv handshake frames", "capital of France"], n_results=3)
    current = json.loads((col.folder / "current.json").read_text())
    index = col.folder / current["store"] / "index"
    path = max(index.glob(f"*.{kind}"), key=lambda p: p.stat().st_size)
    data = bytearray(path.read_bytes())
    if damage == "flip":
        data[len(data) // 3] ^= 0x01
    elif damage == "zero":
        data[:-100] = bytes(len(data) - 100)
    elif damage == "truncate":
        data = data[: len(data) // 2]
    if damage == "remove":
        path.unlink()
    else:
        path.write_bytes(bytes(data))
    again = _open(connect, col.name)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        got = again.hybrid_query(["zyxwv handshake frames", "capital of France"], n_results=3)
    assert any("rebuilding" in str(w.message) for w in caught)
    assert again.refreshes["built"] == 1
    assert got["ids"] == want["ids"] and got["lexical_scores"] == want["lexical_scores"]


def test_index_files_are_checked_once(connect, ef, passages, monkeypatch):
    """The writer verifies what it writes and records it; a new reader stats the files instead of reading them."""
    from jepa_rag import segment_checksums

    col, _ = _filled(connect, ef, passages)
    col.add(ids=["more"], documents=["one more passage about frames"])
    store = col.lexical_index()
    committed = segment_checksums.committed_files(store.folder / "index")
    assert committed and {n for (n,) in store._db.execute("SELECT name FROM checked")} == set(committed)
    reader = _open(connect, col.name)
    calls = []
    real = segment_checksums.check
    monkeypatch.setattr(segment_checksums, "check", lambda path: calls.append(path) or real(path))
    reader.hybrid_query(["frames"], n_results=2)
    assert calls == []


def test_a_write_that_bypasses_the_api_needs_refresh(connect, ef, passages):
    """Documented limit: plain chromadb writes on the collection are invisible to the lexical side (no query pays
    for a whole-collection check) until refresh() rebuilds it."""
    col, _ = _filled(connect, ef, passages)
    assert col.hybrid_query(["xylophones"], n_results=2)["lexical_scores"][0] == [None, None]
    col.collection.add(ids=["sneaky"], documents=["Xylophones chime brightly."])  # plain chromadb
    col.collection.upsert(ids=["qua"], documents=["Xylophones ring softly."])
    assert col.hybrid_query(["xylophones"], n_results=2)["lexical_scores"][0] == [None, None]
    col.refresh()
    assert set(col.hybrid_query(["xylophones"], n_results=2)["ids"][0]) == {"sneaky", "qua"}
    assert col.refreshes["built"] == 2
    _in_step(col)
    assert set(_open(connect, col.name).hybrid_query(["xylophones"], n_results=2)["ids"][0]) == {"sneaky", "qua"}


def test_a_writer_that_died_mid_write_is_replayed(connect, ef, passages):
    """A write journals its ids before it changes Chroma: killed after Chroma's write, the next reader (or writer)
    that gets the folder's lock applies what Chroma then holds."""
    col, _ = _filled(connect, ef, passages)
    col.hybrid_query(["zyxwv"], n_results=1)
    store = col.lexical_index()
    old = {i: r[2] for i, r in col._records(["qua", "zyx"]).items()}
    store.begin(old)  # the first step of a write...
    col.collection.update(ids=["qua"], documents=["Xylophones chime brightly."])  # ...the second, then a kill
    col.collection.delete(ids=["zyx"])
    again = _open(connect, col.name)
    assert again.hybrid_query(["xylophones"], n_results=1)["ids"] == [["qua"]]
    assert again.lexical_index().pending() is None
    assert again.hybrid_query(["zyxwv"], n_results=2)["lexical_scores"][0] == [None, None]
    assert col.hybrid_query(["xylophones"], n_results=1)["ids"] == [["qua"]]  # the old object too
    _in_step(col)


def test_records_without_text_and_an_empty_collection(connect, ef):
    col = _open(connect, _name(), ef)
    assert col.hybrid_query(["anything"], n_results=3)["ids"] == [[]]
    col.add(ids=["vec"], embeddings=ef(["a text whose words are not stored"]))
    col.add(ids=["doc"], documents=["Tides follow the Moon."])
    res = col.hybrid_query(["moon tides"], n_results=5)
    assert res["ids"][0][0] == "doc" and set(res["ids"][0]) == {"vec", "doc"}
    assert col.lexical_ids() == ["doc"]


def test_server_needs_a_lexical_dir(chroma_server, ef):
    from jepa_rag.errors import InvalidInputError

    from jepa_rag.chroma_hybrid import hybrid_collection

    host, port = chroma_server
    with pytest.raises(InvalidInputError, match="lexical_dir"):
        hybrid_collection(chromadb.HttpClient(host=host, port=port), _name(), ef)


def test_ephemeral_client_keeps_the_index_in_memory(ef, passages):
    from jepa_rag.chroma_hybrid import hybrid_collection

    col = hybrid_collection(chromadb.EphemeralClient(), _name(), ef)
    col.add(ids=list(RARE), documents=list(RARE.values()))
    assert col.folder is None
    assert col.hybrid_query(["zyxwv"], n_results=1)["ids"] == [["zyx"]]
    col.delete(ids=["zyx"])
    assert col.hybrid_query(["zyxwv"], n_results=1)["lexical_scores"] == [[None]]


def test_bad_arguments_are_refused(connect, ef, passages):
    from jepa_rag.errors import InvalidInputError

    col, _ = _filled(connect, ef, passages)
    with pytest.raises(InvalidInputError, match="n_results"):
        col.hybrid_query(["q"], n_results=0)
    with pytest.raises(InvalidInputError):
        col.hybrid_query("a bare string", n_results=1)
    with pytest.raises(InvalidInputError):
        col.hybrid_query(["  "], n_results=1)


WRITER = textwrap.dedent("""
    import sys
    import chromadb
    from jepa_rag.chroma_hybrid import hybrid_collection
    if sys.argv[1] == "embedded":
        client, lexical_dir = chromadb.PersistentClient(path=sys.argv[2]), None
    else:
        host, port = sys.argv[2].rsplit(":", 1)
        client, lexical_dir = chromadb.HttpClient(host=host, port=int(port)), sys.argv[4]
    col = hybrid_collection(client, sys.argv[3], lexical_dir=lexical_dir)
    col.add(ids=["other"], documents=["Xylophones chime brightly in another process."])
    col.delete(ids=["qua"])
    print("WROTE")
""")


def _other_process_writes(*args: str) -> None:
    proc = subprocess.run([sys.executable, "-c", WRITER, *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=180)
    assert proc.returncode == 0 and "WROTE" in proc.stdout, proc.stderr[-3000:]


def test_writes_from_another_process_are_refused_on_an_embedded_client(tmp_path, ef, passages):
    """An embedded Chroma's HNSW index in one process does not see vectors another process added (a chromadb
    limitation), so a long-running reader refuses to answer rather than mix a stale dense side with BM25."""
    from jepa_rag.chroma_hybrid import hybrid_collection
    from jepa_rag.errors import StaleCollectionError

    path = tmp_path / "db"
    col = hybrid_collection(chromadb.PersistentClient(path=str(path)), _name(), ef)
    col.add(ids=list({**passages, **RARE}), documents=list({**passages, **RARE}.values()))
    assert col.hybrid_query(["quartzite"], n_results=1)["ids"] == [["qua"]]
    _other_process_writes("embedded", str(path), col.name)
    with pytest.raises(StaleCollectionError, match="chroma run"):
        col.hybrid_query(["xylophones"], n_results=1)


def test_writes_from_another_process_are_seen_through_a_server(tmp_path, ef, passages, chroma_server):
    """With a Chroma server and a shared lexical folder, a long-running reader sees another process's writes on
    both sides at its next query, without a rebuild."""
    from jepa_rag.chroma_hybrid import hybrid_collection

    host, port = chroma_server
    lexical_dir = tmp_path / "lexical"
    col = hybrid_collection(chromadb.HttpClient(host=host, port=port), _name(), ef, lexical_dir=lexical_dir)
    col.add(ids=list({**passages, **RARE}), documents=list({**passages, **RARE}.values()))
    assert col.hybrid_query(["quartzite"], n_results=1)["ids"] == [["qua"]]
    _other_process_writes("server", f"{host}:{port}", col.name, str(lexical_dir))
    top = col.hybrid_query(["xylophones chime"], n_results=1)
    assert top["ids"] == [["other"]] and top["dense_scores"][0][0] is not None and top["lexical_scores"][0][0] > 0
    assert "qua" not in col.hybrid_query(["quartzite ridges"], n_results=5)["ids"][0]
    assert col.refreshes == {"built": 1}
    _in_step(col)


def test_filters_apply_to_both_sides(connect, ef, passages):
    col = _open(connect, _name(), ef)
    docs = {**passages, **RARE}
    col.add(ids=list(docs), documents=list(docs.values()),
            metadatas=[{"shelf": "a" if i % 2 else "b", "n": i} for i in range(len(docs))])
    shelf = {i: ("a" if j % 2 else "b") for j, i in enumerate(docs)}
    for where in ({"shelf": "a"}, {"shelf": {"$in": ["a"]}}, {"n": {"$gte": 0}, "shelf": "a"} and
                  {"$and": [{"n": {"$gte": 0}}, {"shelf": "a"}]}):
        res = col.hybrid_query(["zyxwv quartzite", "capital of France"], n_results=len(docs), where=where)
        for ids in res["ids"]:
            assert ids and all(shelf[i] == "a" for i in ids)
    res = col.hybrid_query(["zyxwv handshake"], n_results=3, where={"shelf": shelf["qua"]})
    assert "zyx" not in res["ids"][0] or shelf["zyx"] == shelf["qua"]
    res = col.hybrid_query(["handshake frames"], n_results=3, where_document={"$contains": "Quartzite"})
    assert res["ids"] == [["qua"]]


def test_dense_scores_match_numpy(ef, passages, queries):
    """Cosine from Chroma equals the encoder's own query-route vs document-route cosine."""
    from jepa_rag.chroma_hybrid import hybrid_collection

    col = hybrid_collection(chromadb.EphemeralClient(), _name(), ef)
    col.add(ids=list(passages), documents=list(passages.values()))
    res = col.hybrid_query(queries[:1], n_results=len(passages))
    q = np.asarray(ef.embed_query(queries[:1])[0], dtype=np.float64)
    for i, s in zip(res["ids"][0], res["dense_scores"][0]):
        d = np.asarray(ef([passages[i]])[0], dtype=np.float64)
        assert s == pytest.approx(q @ d / (np.linalg.norm(q) * np.linalg.norm(d)), abs=1e-4)


def test_fusion_override_and_checkpoint_fusion(connect, ef, passages, predictor_checkpoint):
    from jepa_rag.fusion import Fusion, fusion_of

    col, _ = _filled(connect, ef, passages)
    assert col.fusion == fusion_of(str(predictor_checkpoint))  # the collection's checkpoint's (else the default's)
    rrf = col.hybrid_query(["zyxwv handshake frames"], n_results=2, fusion=Fusion(method="rrf", rrf_k=60))
    assert rrf["ids"][0][0] == "zyx"
    assert rrf["scores"][0][0] == pytest.approx(2 / 61)  # first in both lists
    dense_only = col.hybrid_query(["zyxwv"], n_results=3, fusion=Fusion(lexical_weight=0.0))
    dense = col.collection.query(query_texts=["zyxwv"], n_results=3, include=["distances"])
    assert dense_only["ids"] == dense["ids"]


def _every_candidate_rescored(col, text, vec, n_results, fusion, depth):
    """The fused ranking with BM25 computed for every dense candidate BM25 did not return (what hybrid_query may
    skip where it cannot change the ranking)."""
    from jepa_rag import lexical_store
    from jepa_rag.chroma_hybrid import _dense_stats

    store = col.lexical_index()
    toks = lexical_store.tokenize([text])[0]
    hits = store.search(toks, depth)
    lexical = [(key, score) for key, score, _ in hits]
    dense = col.collection.query(query_embeddings=[vec], n_results=depth, include=["distances"])
    dense_pairs = [(lexical_store.key_of(i), 1.0 - d) for i, d in zip(dense["ids"][0], dense["distances"][0])]
    seen = {key for key, _ in lexical}
    rest = [(key, i) for (key, _), i in zip(dense_pairs, dense["ids"][0]) if key not in seen]
    extra = store.scores_of(toks, [i for _, i in rest])
    exact = sorted(lexical + [(key, extra.get(key, 0.0)) for key, _ in rest], key=lambda pair: -pair[1])
    stats = (_dense_stats([vec], store.moments)[0], store.bm25_moments(toks, lexical, len(hits) < depth))
    ids = {lexical_store.key_of(i): i for i in dense["ids"][0]} | dict(
        zip([key for key, _, _ in hits], store.ids_at([addr for _, _, addr in hits])))
    return [(ids[key], score) for key, score in fusion.fuse(dense_pairs, exact, n_results, corpus_stats=stats)]


@pytest.mark.parametrize("depth", [None, 6], ids=["full-lists", "shorter-than-fusion-depth"])
def test_skipping_bm25_of_dense_candidates_keeps_the_ranking(depth):
    """BM25 of a dense-only candidate is looked up only where it can change the fused ranking: with BM25's list
    full (or holding every match) the ranking equals the one that rescores every candidate."""
    from jepa_rag.chroma_hybrid import HybridCollection
    from jepa_rag.fusion import Fusion

    rng = np.random.default_rng(0)
    words = [f"w{i}" for i in range(40)]
    texts = [" ".join(rng.choice(words, size=rng.integers(3, 12))) for _ in range(300)]
    for i in (3, 50, 120):  # a term fewer documents hold than BM25's list is long
        texts[i] += " rareword"
    vecs = rng.normal(size=(300, 16)).astype(np.float32)
    client = chromadb.EphemeralClient()
    col = HybridCollection(client, client.create_collection(_name(), configuration={"hnsw": {"space": "cosine"}},
                                                            embedding_function=None))
    col.add(ids=[f"d{i}" for i in range(300)], documents=texts, embeddings=vecs)
    fusion = Fusion(lexical_weight=0.4, depth=12)
    queries = [" ".join(rng.choice(words, size=3)) for _ in range(20)] + ["w1 zzzunknown", "zzzunknown", "rareword"]
    for text in queries:
        vec = rng.normal(size=16).astype(np.float32)
        got = col.hybrid_query([text], 5, query_embeddings=[vec], fusion=fusion, depth=depth)
        want = _every_candidate_rescored(col, text, vec, 5, fusion, depth or fusion.depth)
        assert got["ids"][0] == [i for i, _ in want]
        assert got["scores"][0] == pytest.approx([s for _, s in want])
