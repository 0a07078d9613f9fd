"""``python -m train``: train jepa-rag heads on cached base-model embeddings and write a checkpoint."""

from typing import TYPE_CHECKING

__all__ = ["TrainResult", "train"]


def __getattr__(name: str):
    # the loop imports torch: loaded on first use, so `jepa-rag train --help` answers at once
    if name in __all__:
        from . import loop

        return getattr(loop, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


if TYPE_CHECKING:
    from .loop import TrainResult, train
