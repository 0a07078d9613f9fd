"""``python -m train``: train jepa-rag heads on cached base-model embeddings and write a checkpoint."""

from .loop import TrainResult, train

__all__ = ["TrainResult", "train"]
