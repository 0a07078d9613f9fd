import numpy as np
import pytest

from jepa_rag import EmbeddingCache, EmbeddingMismatchError, Fingerprint, import_precomputed


@pytest.fixture
def fp():
    return Fingerprint("toy/model", "ab" * 32, 128, True, 4)


class CountingEncoder:
    """A deterministic fake base model: vector = hash-seeded random unit vector; counts the texts it encodes."""

    def __init__(self, fail_after: int | None = None):
        self.calls: list[str] = []
        self.fail_after = fail_after

    def __call__(self, texts):
        if self.fail_after is not None and len(self.calls) >= self.fail_after:
            raise KeyboardInterrupt("simulated crash")
        self.calls.extend(texts)
        out = []
        for t in texts:
            v = np.random.default_rng(abs(hash(t)) % 2**32).normal(size=4)
            out.append(v / np.linalg.norm(v))
        return np.array(out, dtype=np.float32)


def test_hits_are_not_re_encoded(tmp_path, fp):
    enc = CountingEncoder()
    cache = EmbeddingCache(fp, tmp_path)
    a = cache.embed(["x", "y", "x"], enc)
    assert enc.calls == ["x", "y"]  # duplicates encoded once
    b = EmbeddingCache(fp, tmp_path).embed(["y", "x", "z"], enc)  # a new process sees the same cache
    assert enc.calls == ["x", "y", "z"]
    np.testing.assert_array_equal(a[0], b[1])
    np.testing.assert_array_equal(a[2], a[0])


def test_fingerprints_do_not_share(tmp_path, fp):
    enc = CountingEncoder()
    EmbeddingCache(fp, tmp_path).embed(["x"], enc)
    other = Fingerprint("toy/model", "cd" * 32, 128, True, 4)
    EmbeddingCache(other, tmp_path).embed(["x"], enc)
    assert enc.calls == ["x", "x"]


def test_resumes_after_crash(tmp_path, fp):
    texts = [f"t{i}" for i in range(10)]
    crashing = CountingEncoder(fail_after=4)  # the second chunk of 4 dies
    with pytest.raises(KeyboardInterrupt):
        EmbeddingCache(fp, tmp_path).embed(texts, crashing, chunk_size=4)
    enc = CountingEncoder()
    EmbeddingCache(fp, tmp_path).embed(texts, enc, chunk_size=4)
    assert enc.calls == texts[4:]  # the committed chunk was kept


def _legacy_shard(folder, n, texts, vecs, keys_file=True):
    """A shard as the shard-per-batch cache wrote it: ``shard-N.npy``, then ``shard-N.keys`` as its commit marker."""
    from jepa_rag.cache import text_key

    np.save(folder / f"shard-{n:06d}.npy", np.asarray(vecs, np.float32))
    if keys_file:
        (folder / f"shard-{n:06d}.keys").write_text("\n".join(text_key(t) for t in texts))


def test_imports_a_shard_cache_once_and_removes_its_files(tmp_path, fp, caplog):
    enc = CountingEncoder()
    folder = tmp_path / fp.key
    folder.mkdir()
    _legacy_shard(folder, 0, ["a", "b"], enc(["a", "b"]))
    _legacy_shard(folder, 1, ["c"], enc(["c"]))
    _legacy_shard(folder, 2, ["never"], enc(["never"]), keys_file=False)  # killed before its commit marker
    expected = enc(["a", "b", "c"])
    enc.calls.clear()
    with caplog.at_level("INFO", logger="jepa_rag"):
        cache = EmbeddingCache(fp, tmp_path)
    assert "imported 3 vectors from 2 shard files" in caplog.text
    got, missing = cache.lookup(["a", "b", "c", "never"])
    assert missing == [3]
    np.testing.assert_array_equal(got[:3], expected)
    assert sorted(p.name for p in folder.iterdir()) == ["fingerprint.json", "vectors.mdb", "vectors.mdb-lock"]
    caplog.clear()
    with caplog.at_level("INFO", logger="jepa_rag"):
        assert len(EmbeddingCache(fp, tmp_path)) == 3
    assert "imported" not in caplog.text


def test_a_constant_number_of_files_however_many_batches(tmp_path, fp):
    cache = EmbeddingCache(fp, tmp_path)
    enc = CountingEncoder()
    for i in range(300):
        cache.embed([f"text {i}"], enc)
    assert len(cache) == 300
    assert len(list(cache.dir.iterdir())) == 3


def test_store_false_reads_but_never_writes(tmp_path, fp):
    enc = CountingEncoder()
    cache = EmbeddingCache(fp, tmp_path)
    cache.embed(["kept"], enc)
    out = cache.embed(["kept", "fleeting"], enc, store=False)
    assert enc.calls == ["kept", "fleeting"] and len(cache) == 1
    np.testing.assert_array_equal(out, enc(["kept", "fleeting"]))


def test_refuses_wrong_shapes_and_nan(tmp_path, fp):
    cache = EmbeddingCache(fp, tmp_path)
    with pytest.raises(ValueError, match="shape"):
        cache.add(["a"], np.zeros((1, 5)))
    with pytest.raises(ValueError, match="non-finite"):
        cache.add(["a"], np.full((1, 4), np.nan))


def _npz(path, ids, vecs):
    np.savez(path, docs=vecs.astype(np.float16), docs_ids=np.array([i.encode() for i in ids]))


def test_import_accepts_matching_vectors(tmp_path, fp):
    enc = CountingEncoder()
    texts = {f"d{i}": f"text {i}" for i in range(40)}
    vecs = enc(list(texts.values()))
    enc.calls.clear()
    _npz(tmp_path / "e.npz", list(texts), vecs)
    cache = EmbeddingCache(fp, tmp_path / "cache")
    assert import_precomputed(cache, tmp_path / "e.npz", {"docs": texts}, enc, sample_size=16) == 40
    assert len(enc.calls) == 16  # only the verification sample was encoded
    enc.calls.clear()
    cache.embed(list(texts.values()), enc)
    assert enc.calls == []  # everything is a cache hit now
    assert import_precomputed(cache, tmp_path / "e.npz", {"docs": texts}, enc) == 0  # no re-verification


def test_import_refuses_mismatch_and_stores_nothing(tmp_path, fp):
    enc = CountingEncoder()
    texts = {f"d{i}": f"text {i}" for i in range(40)}
    vecs = enc(list(texts.values()))
    vecs[[3, 7]] = -vecs[[3, 7]]  # two corrupt rows: a sample of all 40 must catch them
    _npz(tmp_path / "e.npz", list(texts), vecs)
    cache = EmbeddingCache(fp, tmp_path / "cache")
    with pytest.raises(EmbeddingMismatchError, match="do not match the base model"):
        import_precomputed(cache, tmp_path / "e.npz", {"docs": texts}, enc, sample_size=40)
    assert len(cache) == 0


def test_import_refuses_unknown_ids_and_dims(tmp_path, fp):
    enc = CountingEncoder()
    _npz(tmp_path / "e.npz", ["d0"], enc(["x"]))
    cache = EmbeddingCache(fp, tmp_path / "cache")
    with pytest.raises(EmbeddingMismatchError, match="not in the data"):
        import_precomputed(cache, tmp_path / "e.npz", {"docs": {"other": "x"}}, enc)
    np.savez(tmp_path / "f.npz", docs=np.zeros((1, 3)), docs_ids=np.array([b"d0"]))
    with pytest.raises(EmbeddingMismatchError, match="4-d vectors"):
        import_precomputed(cache, tmp_path / "f.npz", {"docs": {"d0": "x"}}, enc)
