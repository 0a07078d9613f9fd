"""``jepa-rag ingest`` on a folder of long files: chunks find the passage (and its file) that whole-file truncation
misses, re-runs mirror the folder on both sides, Ctrl-C keeps finished work and SIGKILL mid-sync converges."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from jepa_rag.cli import main
from jepa_rag.folder import read_document

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = [json.loads(line) for line in (ROOT / "jepa_rag" / "sample_corpus.jsonl").read_text().splitlines()]
# every file opens with the same front matter, longer than MiniLM's 256-token window: whole-file truncation
# embeds only this, as it did for real documentation files
FRONT = " ".join(["This page is part of the project handbook, maintained by the documentation team and published "
                  "under the terms of the licence in the repository root. Edit it through a pull request; the "
                  "build checks links, spelling and formatting before the site is deployed."] * 6)


def _folder(root: Path, passages: int, per_file: int = 3, front: bool = True) -> dict[str, tuple[str, str]]:
    """Files of ``per_file`` bundled passages each, in every format; returns title -> (file, passage)."""
    root.mkdir(parents=True)
    answers = {}
    for f in range(0, passages, per_file):
        group = SAMPLE[f:f + per_file]
        body = [FRONT] if front else []
        kind = ("md", "txt", "rst", "html")[(f // per_file) % 4]
        name = f"{'guide/' if kind == 'rst' else ''}page{f // per_file:02d}.{kind}"
        if kind == "html":
            paragraphs = "".join(f"<p>{t}</p>" for t in body + [d["text"] for d in group])
            text = f"<html><head><style>p {{}}</style></head><body><h1>Notes</h1>{paragraphs}</body></html>"
        elif kind == "md":
            text = "\n\n".join(["# Notes"] + body + [f"## Part {i}\n\n{d['text']}" for i, d in enumerate(group)])
        else:
            text = "\n\n".join(body + [d["text"] for d in group])
        (root / name).parent.mkdir(exist_ok=True)
        (root / name).write_text(text, encoding="utf-8")
        for d in group:
            answers[d["title"]] = (name, d["text"])
    return answers


def _ingest(*args: str) -> int:
    return main(["ingest", *args, "--no-progress"])


def _json_query(capsys, store: list[str], queries: list[str], *extra: str) -> list[dict]:
    capsys.readouterr()
    assert main(["query", *queries, *store, "--json", "-k", "5", *extra]) == 0
    return json.loads(capsys.readouterr().out)


def _hit_rates(folder: Path, answers: dict, results: list[dict], prefix=None):
    """(file hit@5, passage hit@5): a file counts by its best chunk; the passage hit needs one of the 5 best chunks
    to overlap the answer, or for whole files (``prefix``: source -> embedded characters) the file among the 5 with
    the answer inside its embedded part."""
    passage = file = 0
    for item in results:
        name, text = answers[item["query"]]
        doc = read_document(folder / name, name).text
        start = doc.index(text)
        end = start + len(text)
        file += name in list(dict.fromkeys(r["source"] for r in item["results"]))[:5]
        for r in item["results"][:5]:
            if r["source"] != name:
                continue
            span = (0, prefix[name]) if prefix is not None else (r["start"], r["end"])
            if span[0] < end and start < span[1]:
                passage += 1
                break
    return file / len(results), passage / len(results)


def test_chunks_find_the_passage_and_its_file_and_reruns_mirror_the_folder(tmp_path, minilm_dir, capsys):
    from jepa_rag.chunking import SPECIAL_TOKENS, load_tokenizer

    docs = tmp_path / "docs"
    answers = _folder(docs, 24)
    (docs / "latin1.txt").write_bytes("Crème brûlée: a custard under a glassy layer of burnt sugar, served "
                                      "cold in a ramekin.".encode("cp1252"))
    (docs / "archive.gz").write_bytes(b"\x1f\x8b\x08")
    (docs / "empty.md").write_text("  \n")
    model = ["--checkpoint", "none", "--base-model", str(minilm_dir)]
    chunked = ["--collection", "chunked", "--path", str(tmp_path / "index")]
    whole = ["--collection", "whole", "--path", str(tmp_path / "index")]
    assert _ingest(str(docs), *chunked, *model, "--chunk-tokens", "96", "--chunk-overlap", "16") == 0
    out = capsys.readouterr()
    assert "skipped 2 (1 unsupported type, 1 empty)" in out.out and "skipped archive.gz" in out.err, out
    assert "9 documents: 9 new" in out.out
    assert re.search(r"fusion: BM25 weight [0-9.]+ \(.+\)", out.out), out.out  # chosen and said why
    assert _ingest(str(docs), *whole, *model, "--no-chunking") == 0

    queries = list(answers)
    rates = {}
    for name, store in (("chunks", chunked), ("whole files", whole)):
        results = _json_query(capsys, store + ["--dense"], queries, "-k", "20")
        prefix = None
        if name == "whole files":  # the characters MiniLM embeds of each file: its first 254 tokens
            tok = load_tokenizer(minilm_dir)
            tok.no_truncation()
            prefix = {}
            for f in {a[0] for a in answers.values()}:
                offsets = tok.encode(read_document(docs / f, f).text, add_special_tokens=False).offsets
                prefix[f] = offsets[min(256 - SPECIAL_TOKENS, len(offsets)) - 1][1]
        rates[name] = _hit_rates(docs, answers, results, prefix)
    with capsys.disabled():
        print(f"\nhit@5 over {len(queries)} queries, {len(answers) // 3} files (file, passage): {rates}")
    assert rates["chunks"][1] >= 0.8 and rates["chunks"][0] >= 0.8, rates
    assert rates["chunks"][0] > rates["whole files"][0] and rates["chunks"][1] > rates["whole files"][1], rates
    top = _json_query(capsys, chunked, ["Why does the sky look blue?"], "--per-source")[0]["results"]
    assert top[0]["source"] == answers["Why the sky looks blue"][0] and "scatter" in top[0]["text"], top
    assert len({r["source"] for r in top}) == len(top) == 5

    # mirror: one file deleted, one changed, one unchanged text in another encoding (given explicitly)
    gone_title, changed_title = SAMPLE[0]["title"], SAMPLE[3]["title"]
    gone, changed = answers[gone_title][0], answers[changed_title][0]
    (docs / gone).unlink()
    (docs / changed).write_text((docs / changed).read_text().replace(
        answers[changed_title][1], "Fault E1042 on the pump means its pressure sensor is unplugged."))
    capsys.readouterr()
    assert _ingest(str(docs), *chunked, *model, "--chunk-tokens", "96", "--chunk-overlap", "16") == 0
    summary = capsys.readouterr().out
    assert "8 documents: 0 new, 1 changed, 7 unchanged, 1 gone" in summary, summary

    import chromadb

    from jepa_rag.chroma_hybrid import hybrid_collection

    hc = hybrid_collection(chromadb.PersistentClient(path=str(tmp_path / "index")), "chunked")
    stored = hc.get(include=["documents", "metadatas"])
    assert not [m for m in stored["metadatas"] if m["source"] == gone]
    assert sorted(hc.lexical_ids()) == sorted(stored["ids"])  # the lexical side follows the dense one
    texts = " ".join(d for d, m in zip(stored["documents"], stored["metadatas"]) if m["source"] == changed)
    assert "E1042" in texts and answers[changed_title][1][:40] not in texts
    for extra in ([], ["--dense"]):
        hits = _json_query(capsys, chunked + extra, [answers[gone_title][1], "pump fault E1042"])
        assert gone not in [r["source"] for r in hits[0]["results"]]
        assert hits[1]["results"][0]["source"] == changed


def _progress(proc: subprocess.Popen, seen: list[str]) -> threading.Thread:
    def read() -> None:
        for chunk in iter(lambda: proc.stderr.read1(4096) if hasattr(proc.stderr, "read1") else b"", b""):
            seen.append(chunk.decode("utf-8", "replace"))
    thread = threading.Thread(target=read, daemon=True)
    thread.start()
    return thread


def _sigint_as_a_terminal_gives_it() -> None:
    """In the child, before exec: SIGINT delivered and handled by default, as a shell's job gets it. Both are
    inherited, and after the rest of the suite this process may hold SIGINT blocked or ignored (libraries that
    spawn helper processes do so around the spawn); a Python started that way never raises KeyboardInterrupt."""
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _run_until(args: list[str], stored_at_least: int, sig: int, timeout: float = 120) -> tuple[int, str]:
    """Start ``jepa-rag ingest``, send ``sig`` once its bar shows ``stored_at_least`` chunks stored."""
    proc = subprocess.Popen([sys.executable, "-m", "jepa_rag", "ingest", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env={**os.environ, "OMP_NUM_THREADS": "1"},
                            preexec_fn=_sigint_as_a_terminal_gives_it)
    seen: list[str] = []
    reader = _progress(proc, seen)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        counts = [int(m) for m in re.findall(r"\| *(\d+)/\d+ \[", "".join(seen))]
        if counts and max(counts) >= stored_at_least:
            proc.send_signal(sig)
            break
        time.sleep(0.05)
    proc.wait(timeout=60)
    reader.join(timeout=10)
    proc.stdout.close()
    proc.stderr.close()
    return proc.returncode, "".join(seen)


def test_ctrl_c_keeps_finished_batches_and_a_killed_sync_converges(tmp_path, minilm_dir, capsys):
    docs = tmp_path / "docs"
    _folder(docs, 18, per_file=6, front=False)
    args = [str(docs), "--collection", "notes", "--path", str(tmp_path / "index"), "--checkpoint", "none",
            "--base-model", str(minilm_dir), "--chunk-tokens", "24", "--chunk-overlap", "0", "--batch-size", "4"]
    rc, err = _run_until(args, 4, signal.SIGINT)
    lines = [line for line in err.replace("\r", "\n").splitlines() if line.startswith("interrupted")]
    assert rc == 130 and "Traceback" not in err, err[-3000:]
    assert len(lines) == 1 and lines[0].endswith("stored; run the same command to finish"), err[-3000:]
    first, total = map(int, re.match(r"interrupted: (\d+) of (\d+) stored", lines[0]).groups())
    assert 4 <= first < total

    rc, err = _run_until(args, first + 4, signal.SIGKILL)  # killed mid-sync, past the first run's work
    assert rc == -signal.SIGKILL, err[-3000:]

    capsys.readouterr()
    assert _ingest(*args[:-1], "16") == 0  # the same command; bigger batches only save this test time
    summary = capsys.readouterr().out
    written, encoded, cached, kept = map(int, re.search(
        r"(\d+) chunks written \((\d+) encoded, (\d+) from the cache\), (\d+) unchanged", summary).groups())
    # finished batches of both interrupted runs are kept, not re-encoded nor rewritten
    assert kept >= first + 4 and written + kept == total and encoded + cached == written, summary
    import chromadb

    from jepa_rag.chroma_hybrid import hybrid_collection

    hc = hybrid_collection(chromadb.PersistentClient(path=str(tmp_path / "index")), "notes")
    stored = hc.get(include=["metadatas"])
    assert hc.count() == total == len(set(stored["ids"]))
    per_source: dict[str, list[int]] = {}
    for m in stored["metadatas"]:
        per_source.setdefault(m["source"], []).append(m["chunk"])
    assert all(sorted(c) == list(range(len(c))) for c in per_source.values())
    assert sorted(hc.lexical_ids()) == sorted(stored["ids"])
    capsys.readouterr()
    assert _ingest(*args) == 0
    assert f"0 chunks written (0 encoded, 0 from the cache), {total} unchanged" in capsys.readouterr().out


@pytest.mark.parametrize("strict", [False, True])
def test_a_bad_file_is_skipped_and_reported_or_stops_a_strict_run(tmp_path, strict, capsys):
    from jepa_rag.errors import DataFormatError
    from jepa_rag.folder import read_folder

    (tmp_path / "good.md").write_text("# Title\n\nSome text.")
    (tmp_path / "broken.txt").write_bytes(b"\x00\x01\x02binary\x00")
    (tmp_path / ".hidden.txt").write_text("not read")
    if strict:
        with pytest.raises(DataFormatError, match="broken.txt: binary"):
            read_folder(tmp_path, strict=True)
        return
    read = read_folder(tmp_path)
    assert [d.source for d in read.documents] == ["good.md"]
    assert read.skipped == [("broken.txt", "binary: NUL bytes")]
    assert read.skipped_summary() == "1 (1 binary)"


def test_encodings_are_detected_or_given(tmp_path):
    from jepa_rag.errors import InvalidInputError
    from jepa_rag.folder import read_folder

    text = "Crème brûlée, façade, naïve: the café's menu lists them in a Windows code page. " * 3
    (tmp_path / "menu.txt").write_bytes(text.encode("cp1252"))
    (tmp_path / "bom.md").write_bytes(b"\xef\xbb\xbf# Title\n\nText.")
    docs = {d.source: d.text for d in read_folder(tmp_path).documents}
    assert docs["bom.md"] == "# Title\n\nText." and "brûlée" in docs["menu.txt"]
    assert {d.source: d.text for d in read_folder(tmp_path, encoding="cp1252").documents}["menu.txt"] == text.strip()
    with pytest.raises(InvalidInputError, match="unknown encoding 'nope'"):
        read_folder(tmp_path, encoding="nope")


def test_the_python_ingest_helpers_chunk_on_request(minilm_dir):
    import chromadb

    from jepa_rag.chroma import JEPAEmbeddingFunction
    from jepa_rag.chroma_hybrid import hybrid_collection

    ef = JEPAEmbeddingFunction("none", str(minilm_dir), precision="fp32")
    hc = hybrid_collection(chromadb.EphemeralClient(), "helper_chunks", ef)
    long = " ".join(d["text"] for d in SAMPLE[:12])
    assert hc.ingest(["long", "short"], [long, SAMPLE[20]["text"]], metadatas=[{"lang": "en"}, {"lang": "en"}],
                     chunking=True) == hc.count() > 2
    got = hc.get(where={"source": "long"}, include=["documents", "metadatas"])
    spans = sorted((m["chunk"], m["start"], m["end"]) for m in got["metadatas"])
    assert [c for c, _, _ in spans] == list(range(len(spans))) and all(m["lang"] == "en" for m in got["metadatas"])
    assert all(long[m["start"]:m["end"]] == d for d, m in zip(got["documents"], got["metadatas"]))
    assert sorted(got["ids"]) == sorted(f"long#{c}" for c, _, _ in spans)
    assert hc.get(ids=["short#0"])["ids"] == ["short#0"]
