"""``jepa-rag --help`` must not pay for torch (issue 22: it took 7-18 s): ``jepa_rag`` and ``jepa_rag.cli`` import
no heavy library until a command needs one, while ``from jepa_rag import X`` keeps working. How fast the help
actually is lives in benchmarks/test_cli_startup.py; here only *what* gets imported is checked. Also: loading a
base model prints no transformers progress bar and leaves the caller's progress-bar setting as it was."""

from __future__ import annotations

import subprocess
import sys

import jepa_rag

HEAVY = ("torch", "transformers", "sentence_transformers", "chromadb", "scipy")


def _imported_after(code: str, heavy: tuple[str, ...] = HEAVY) -> list[str]:
    probe = f"{code}\nimport sys\nprint(' '.join(m for m in {heavy!r} if m in sys.modules))"
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout.split()


def test_package_and_cli_import_nothing_heavy():
    code = "import jepa_rag, jepa_rag.cli\nfrom jepa_rag import JEPARagError, ConfigError"
    assert _imported_after(code, (*HEAVY, "numpy")) == []


def test_help_of_the_cli_and_its_subcommands_imports_nothing_heavy():
    """numpy (tens of milliseconds) may come with a subcommand's module; torch, scipy and the rest may not."""
    code = ("import contextlib, io\nfrom jepa_rag.cli import main\n"
            "for argv in ([], ['--help'], ['ingest', '--help'], ['query', '--help'], ['demo', '--help'],\n"
            "             ['train', '--help'], ['evaluate', '--help'], ['embed', '--help']):\n"
            "    with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):\n"
            "        main(argv)\n")
    assert _imported_after(code) == []


def test_every_public_name_still_imports():
    for name in jepa_rag.__all__:
        assert getattr(jepa_rag, name) is not None, name
    assert set(jepa_rag.__all__) <= set(dir(jepa_rag))


def test_loading_a_base_model_draws_no_progress_bar(minilm_dir, capfd):
    from transformers.utils import logging as hf_logging

    from jepa_rag.base_model import load_sentence_transformer

    before = hf_logging.is_progress_bar_enabled()
    load_sentence_transformer(str(minilm_dir))
    assert "Loading weights" not in capfd.readouterr().err
    assert hf_logging.is_progress_bar_enabled() == before
