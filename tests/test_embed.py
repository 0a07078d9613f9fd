"""jepa_rag.embed: Parquet shards from the local, pool and Ray backends agree; a killed run resumes without losing
or duplicating a document; the shards import into the base-vector cache and Chroma without re-encoding."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from jepa_rag import embed
from jepa_rag.cache import text_key
from jepa_rag.corpus import load_corpus
from jepa_rag.embed import _plan, embed_corpus, import_to_cache, ingest_to_chroma, read_manifest, read_shards, write_shard
from jepa_rag.errors import ConfigError, DataFormatError, EmbeddingMismatchError

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "jepa_rag" / "sample_corpus.jsonl"  # 42 documents
SHARD = 16  # -> 3 shards


def _load(folder: Path) -> tuple[list[str], np.ndarray]:
    ids, vecs = [], []
    for i, _keys, v in read_shards(folder):
        ids += i
        vecs.append(v)
    return ids, np.concatenate(vecs)


def _min_cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(((a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))).min())


@pytest.fixture(scope="module")
def reference(tmp_path_factory, minilm_dir):
    """The local backend's shards (fp32) for the sample corpus."""
    out = tmp_path_factory.mktemp("vectors") / "local"
    res = embed_corpus(CORPUS, out, base_model=str(minilm_dir), backend="local", precision="fp32",
                       shard_size=SHARD, show_progress_bar=False)
    assert (res.written, res.skipped, res.written_texts) == (3, 0, 42)
    return out


def test_shards_hold_the_corpus_in_order_with_text_keys(reference, minilm_encoder):
    corpus = load_corpus(CORPUS)
    manifest = read_manifest(reference)
    assert manifest.fingerprint.same_model(minilm_encoder.fingerprint) and manifest.shards == 3
    assert sorted(p.name for p in reference.iterdir()) == ["manifest.json", "part-00000.parquet",
                                                           "part-00001.parquet", "part-00002.parquet"]
    import pyarrow.parquet as pq

    table = pq.read_table(reference / "part-00000.parquet")
    assert str(table.schema.field("vector").type) == "fixed_size_list<element: float>[384]"
    assert json.loads(table.schema.metadata[b"jepa_rag.fingerprint"])["dim"] == 384
    ids, vecs = _load(reference)
    assert ids == list(corpus.docs)
    keys = [k for _, ks, _ in read_shards(reference) for k in ks]
    assert keys == [text_key(corpus.docs[i]) for i in ids]
    expected = minilm_encoder._encode_with_base([corpus.docs[i] for i in ids])
    assert _min_cosine(vecs, expected) >= 0.9999


def test_rerun_skips_finished_shards_and_refuses_another_model_or_corpus(reference, minilm_dir, tmp_path):
    res = embed_corpus(CORPUS, reference, base_model=str(minilm_dir), shard_size=SHARD, show_progress_bar=False)
    assert (res.written, res.skipped) == (0, 3)
    with pytest.raises(ConfigError, match="another --out folder|use another --out"):
        embed_corpus(CORPUS, reference, base_model=str(minilm_dir), shard_size=SHARD, precision="bf16",
                     show_progress_bar=False)
    changed = tmp_path / "changed.jsonl"
    lines = CORPUS.read_text().splitlines()
    obj = json.loads(lines[0])
    obj["text"] += " (edited)"
    changed.write_text("\n".join([json.dumps(obj)] + lines[1:]) + "\n")
    with pytest.raises(DataFormatError, match="corpus changed"):
        embed_corpus(changed, reference, base_model=str(minilm_dir), shard_size=SHARD, show_progress_bar=False)


def test_pool_backend_agrees_with_local(reference, minilm_dir, tmp_path):
    res = embed_corpus(CORPUS, tmp_path / "pool", base_model=str(minilm_dir), backend="pool", workers=2,
                       precision="fp32", shard_size=SHARD, show_progress_bar=False)
    assert res.written == 3
    ids, vecs = _load(tmp_path / "pool")
    ref_ids, ref = _load(reference)
    assert ids == ref_ids
    assert _min_cosine(vecs, ref) >= 0.9999


def test_ray_plan_by_path_reads_the_same_shards_as_the_corpus_loader(tmp_path):
    """What the Ray driver plans without reading a document, and what each actor then reads, are the shards the
    local backend makes from the loaded corpus (blank lines and blank files skipped alike)."""
    lines = CORPUS.read_text().splitlines()
    jsonl = tmp_path / "blanks.jsonl"
    jsonl.write_text("\n \n" + "\n\n".join(lines[:10]) + "\n\u00a0\n" + "\n".join(lines[10:]) + "\r\n\n  ")
    texts = tmp_path / "notes"
    (texts / "sub").mkdir(parents=True)
    for name, text in [("a.txt", "alpha"), ("b.md", " \n\u00a0 "), ("c.txt", ""), ("sub/d.md", " " * 5000 + "delta"),
                       ("sub/e.txt", "epsilon")]:
        (texts / name).write_text(text)
    for path, size in [(jsonl, 5), (texts, 2)]:
        plan = embed._plan_by_path(path, size)
        shards = _plan(load_corpus(path), size)
        assert plan.documents == sum(len(s.ids) for s in shards) and len(plan.items) == len(shards)
        for item, shard in zip(plan.items, shards):
            assert "texts" not in item and item["rows"] == len(shard.ids)
            if "files" in item:
                got = embed._read_files(Path(item["path"]), item["files"])
            else:
                got = embed._read_jsonl_range(Path(item["path"]), item["start"], item["end"], item["line"])
            assert got == (shard.ids, shard.texts)


def test_ray_shards_with_skipped_rows_read_as_planned(tmp_path):
    """An empty document or a repeated id is a row the planner counts and the corpus rule skips: the actor reads
    the planned rows, keeps the rest, and does not take the shard for a corpus that changed under it. An actor sees
    its own shard only, so an id repeated in a later shard stays there; what reads the shards (ingest into Chroma)
    applies the first-wins rule."""
    jsonl = tmp_path / "gaps.jsonl"
    rows = [{"_id": "a", "text": "alpha"}, {"_id": "e", "text": "   "}, {"_id": "b", "text": "beta"},
            {"_id": "a", "text": "alpha again"}, {"_id": "c", "text": "gamma"}]
    jsonl.write_text("".join(json.dumps(r) + "\n" for r in rows))
    plan = embed._plan_by_path(jsonl, 3)
    writer = embed._RayShardWriter.__new__(embed._RayShardWriter)
    got = []
    for item in plan.items:
        batch = {k: np.asarray([v], dtype=object) for k, v in item.items()}
        ids, texts, read = writer._read(batch, 0)
        assert read == item["rows"]
        got += ids
    assert got == ["a", "b", "a", "c"]  # the empty row skipped; "a" again in the second shard


@pytest.fixture(scope="module")
def ray_cluster():
    """A local Ray cluster of 2 CPUs on 127.0.0.1, started and shut down here."""
    ray = pytest.importorskip("ray", reason="pip install 'jepa-rag[ray]'")
    ray.init(num_cpus=2, include_dashboard=False, _node_ip_address="127.0.0.1", log_to_driver=False,
             configure_logging=False)
    yield ray
    ray.shutdown()


def test_ray_backend_on_a_local_cluster_agrees_and_resumes(ray_cluster, reference, minilm_dir, tmp_path,
                                                          monkeypatch):
    out = tmp_path / "ray"
    out.mkdir()
    # a run that was killed after its first shard, mid-way through writing another
    shutil.copy(reference / "manifest.json", out)
    shutil.copy(reference / "part-00000.parquet", out)
    stale = out / f"part-00001.parquet.{os.uname().nodename}-{_dead_pid()}-deadbeef.tmp"
    stale.write_bytes(b"PAR1 half a shard")
    # the driver only plans: it never loads the corpus, and Ray gets shard descriptors (byte ranges), no text
    monkeypatch.setattr(embed, "load_corpus", lambda path: pytest.fail("the driver loaded the corpus"))
    shipped: list[dict] = []
    real_from_items = ray_cluster.data.from_items
    monkeypatch.setattr(ray_cluster.data, "from_items", lambda items: shipped.extend(items) or real_from_items(items))
    res = embed_corpus(CORPUS, out, base_model=str(minilm_dir), backend="ray", workers=2, precision="fp32",
                       shard_size=SHARD, show_progress_bar=False)
    assert (res.written, res.skipped) == (2, 1)
    assert [sorted(item) for item in shipped] == [["end", "line", "path", "rows", "shard", "start"]] * 3
    assert not stale.exists()
    ids, vecs = _load(out)
    ref_ids, ref = _load(reference)
    assert ids == ref_ids and len(set(ids)) == 42
    assert _min_cosine(vecs, ref) >= 0.9999
    changed = tmp_path / "changed.jsonl"  # the actors check the finished shards against the corpus they read
    lines = CORPUS.read_text().splitlines()
    changed.write_text("\n".join(lines[:20] + [lines[20].replace('"text": "', '"text": "(edited) ')] + lines[21:]))
    with pytest.raises(DataFormatError, match="corpus changed"):
        embed_corpus(changed, out, base_model=str(minilm_dir), backend="ray", shard_size=SHARD,
                     show_progress_bar=False)


def _descendants_named(word: str) -> list[int]:
    """Pids of this process's descendants whose command line holds ``word`` (read from /proc)."""
    parent: dict[int, int] = {}
    cmd: dict[int, str] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            parent[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
            cmd[int(entry.name)] = (entry / "cmdline").read_bytes().decode(errors="replace")
        except (OSError, ValueError, IndexError):
            continue
    me, found = os.getpid(), []
    for pid in parent:
        p, seen = pid, 0
        while p in parent and p != me and seen < 64:
            p, seen = parent[p], seen + 1
        if p == me and word in cmd.get(pid, ""):
            found.append(pid)
    return found


def test_ray_worker_killed_mid_run_loses_only_its_shard(ray_cluster, reference, minilm_dir, tmp_path):
    import threading
    import time

    out = tmp_path / "ray_killed"
    result: dict = {}
    # an in-memory corpus: the texts travel with the shard descriptors (a worker cannot re-read it by path)
    run = threading.Thread(target=lambda: result.setdefault("res", embed_corpus(
        load_corpus(CORPUS), out, base_model=str(minilm_dir), backend="ray", workers=2, precision="fp32", shard_size=4,
        show_progress_bar=False)))
    run.start()
    killed = None
    deadline = time.monotonic() + 240
    while run.is_alive() and killed is None and time.monotonic() < deadline:
        workers = _descendants_named("MapWorker")
        if workers and len(list(out.glob("part-*.parquet"))) >= 1:
            killed = workers[0]
            os.kill(killed, signal.SIGKILL)  # an encoder actor dies mid-run, as on a lost node
        time.sleep(0.05)
    run.join(timeout=300)
    assert killed is not None, "the run ended before a worker could be killed"
    assert "res" in result, "the run did not finish after its worker was killed"
    ids, vecs = _load(out)
    ref_ids, ref = _load(reference)
    assert ids == ref_ids and len(set(ids)) == 42
    assert _min_cosine(vecs, ref) >= 0.9999
    again = embed_corpus(CORPUS, out, base_model=str(minilm_dir), backend="ray", shard_size=4,
                         show_progress_bar=False)
    assert (again.written, again.skipped) == (0, 11)
    assert not list(out.glob("*.tmp")), "a killed worker's temporary file is cleaned up by the next run"


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_a_run_killed_mid_way_resumes_without_loss_or_duplicates(reference, minilm_dir, tmp_path):
    out = tmp_path / "killed"
    script = textwrap.dedent(f"""
        import os, signal
        from jepa_rag.embed import embed_corpus

        def die(index):
            if index == 1:  # two shards written: killed like an OOM kill or a preempted VM
                os.kill(os.getpid(), signal.SIGKILL)

        embed_corpus({str(CORPUS)!r}, {str(out)!r}, base_model={str(minilm_dir)!r}, shard_size={SHARD},
                     precision="fp32", show_progress_bar=False, on_shard=die)
    """)
    proc = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    assert sorted(p.name for p in out.glob("part-*")) == ["part-00000.parquet", "part-00001.parquet"]
    with pytest.raises(DataFormatError, match="2 of 3 shards"):
        next(read_shards(out))
    res = embed_corpus(CORPUS, out, base_model=str(minilm_dir), shard_size=SHARD, precision="fp32",
                       show_progress_bar=False)
    assert (res.written, res.skipped) == (1, 2)
    ids, vecs = _load(out)
    ref_ids, ref = _load(reference)
    assert ids == ref_ids and len(set(ids)) == len(ids) == 42
    assert _min_cosine(vecs, ref) >= 0.9999


def _counting(encoder, monkeypatch) -> list[int]:
    calls: list[int] = []
    real = encoder._encode_with_base

    def counted(texts, batch_size=None):
        calls.append(len(texts))
        return real(texts, batch_size)

    monkeypatch.setattr(encoder, "_encode_with_base", counted)
    return calls


def test_import_to_cache_reencodes_only_a_16_text_sample(reference, minilm_dir, tmp_path, monkeypatch):
    from jepa_rag import JEPAEncoder

    enc = JEPAEncoder.from_pretrained("none", base_model=str(minilm_dir), precision="fp32", cache_dir=tmp_path)
    calls = _counting(enc, monkeypatch)
    assert import_to_cache(enc, reference, CORPUS) == 42
    assert calls == [16]
    corpus = load_corpus(CORPUS)
    enc.embed_base(list(corpus.docs.values()))
    assert calls == [16], "every document must come from the cache"
    assert import_to_cache(enc, reference, CORPUS) == 0 and calls == [16]


def test_import_to_cache_refuses_vectors_that_do_not_match(reference, minilm_dir, tmp_path):
    from jepa_rag import JEPAEncoder

    bad = tmp_path / "bad"
    shutil.copytree(reference, bad)
    manifest = read_manifest(bad)
    rng = np.random.default_rng(0)
    for shard in _plan(load_corpus(CORPUS), SHARD):
        write_shard(bad, manifest.fingerprint, "fp32", shard, rng.standard_normal((len(shard.ids), 384)))
    enc = JEPAEncoder.from_pretrained("none", base_model=str(minilm_dir), precision="fp32", cache_dir=tmp_path / "c")
    with pytest.raises(EmbeddingMismatchError, match="refusing to import"):
        import_to_cache(enc, bad, CORPUS)
    assert len(enc.cache) == 0
    bf16 = JEPAEncoder.from_pretrained("none", base_model=str(minilm_dir), precision="bf16",
                                       cache_dir=tmp_path / "c")
    with pytest.raises(EmbeddingMismatchError, match="computed in fp32"):
        import_to_cache(bf16, reference, CORPUS)


def test_ingest_to_chroma_applies_the_heads_without_the_base_model(reference, minilm_dir, predictor_checkpoint,
                                                                  tmp_path, monkeypatch):
    chromadb = pytest.importorskip("chromadb")
    from jepa_rag.chroma import JEPAEmbeddingFunction, get_or_create_collection

    ef = JEPAEmbeddingFunction(str(predictor_checkpoint), str(minilm_dir), precision="fp32",
                               cache_dir=tmp_path / "cache")
    collection = get_or_create_collection(chromadb.PersistentClient(path=str(tmp_path / "db")), "docs", ef)
    calls = _counting(ef.encoder, monkeypatch)
    assert ingest_to_chroma(collection, reference, CORPUS, ef.encoder, batch_size=10) == 42
    assert calls == [], "no base-model call"
    assert ingest_to_chroma(collection, reference, CORPUS, ef.encoder) == 42 and collection.count() == 42
    got = collection.get(ids=list(load_corpus(CORPUS).docs)[:5], include=["embeddings", "documents"])
    monkeypatch.undo()
    expected = ef.encoder.encode_documents(got["documents"])
    assert _min_cosine(np.asarray(got["embeddings"]), expected) >= 0.9999


def test_cli_embed_then_chroma_from_the_stored_vectors(reference, minilm_dir, tmp_path, capsys):
    pytest.importorskip("chromadb")
    from jepa_rag.cli import main

    argv = ["embed", str(CORPUS), "--out", str(reference), "--base-model", str(minilm_dir), "--shard-size",
            str(SHARD), "--checkpoint", "none", "--to-chroma", "docs", "--path", str(tmp_path / "db"),
            "--lexical-dir", str(tmp_path / "bm25"), "--no-progress"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "0 shards written, 3 already there" in out and "docs: 42 documents upserted" in out
    assert main(["embed", str(tmp_path / "missing.jsonl"), "--out", str(tmp_path / "v")]) == 1
    assert "corpus not found" in capsys.readouterr().err


def test_bf16_shards_agree_with_fp32_and_go_into_the_bf16_cache(reference, minilm_dir, tmp_path, monkeypatch):
    from jepa_rag import JEPAEncoder

    out = tmp_path / "bf16"
    embed_corpus(CORPUS, out, base_model=str(minilm_dir), precision="bf16", shard_size=SHARD, show_progress_bar=False)
    assert read_manifest(out).precision == "bf16"
    assert _min_cosine(_load(out)[1], _load(reference)[1]) >= 0.999
    enc = JEPAEncoder.from_pretrained("none", base_model=str(minilm_dir), precision="bf16", cache_dir=tmp_path / "c")
    calls = _counting(enc, monkeypatch)
    assert import_to_cache(enc, out, CORPUS) == 42 and calls == [16]
    assert enc.cache.dir.name.endswith("-bf16")
