"""Loading a base model without transformers' "Loading weights" progress bar.

Why: the bar is transformers' own, drawn on every ``SentenceTransformer(...)`` load; in ``jepa-rag`` commands and
notebooks it interleaves with jepa-rag's own progress and summaries and says nothing a user can act on. It is
switched off only while a model loads and its global on/off state restored afterwards, so a program that imports
jepa-rag keeps its own progress-bar setting for its own downloads and loads.
"""

from __future__ import annotations

import contextlib
import threading
import warnings
from collections.abc import Iterator

_LOCK = threading.Lock()
_DEPTH = 0
_SAVED: tuple[bool, bool] | None = None


@contextlib.contextmanager
def quiet_model_loading() -> Iterator[None]:
    """No transformers / huggingface_hub progress bars inside the block; their previous state after it.

    Re-entrant and thread-safe: the state is saved by the first block to enter and restored by the last to leave.
    """
    global _DEPTH, _SAVED
    from huggingface_hub import utils as hub_utils
    from transformers.utils import logging as hf_logging

    with _LOCK:
        if _DEPTH == 0:
            _SAVED = (hf_logging.is_progress_bar_enabled(), hub_utils.are_progress_bars_disabled())
            hf_logging.disable_progress_bar()  # also turns huggingface_hub's bars off
        _DEPTH += 1
    try:
        yield
    finally:
        with _LOCK:
            _DEPTH -= 1
            if _DEPTH == 0 and _SAVED is not None:
                transformers_on, hub_off = _SAVED
                with warnings.catch_warnings():  # HF_HUB_DISABLE_PROGRESS_BARS=1 makes enabling warn, and win
                    warnings.simplefilter("ignore")
                    if transformers_on:
                        hf_logging.enable_progress_bar()  # also turns huggingface_hub's back on
                    if hub_off:
                        hub_utils.disable_progress_bars()
                    elif not transformers_on:
                        hub_utils.enable_progress_bars()
                _SAVED = None
