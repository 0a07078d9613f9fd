"""A chromadb embedding function without a model (deterministic 32-d vectors), for tests about storage."""

from __future__ import annotations

import numpy as np


class ToyEmbedding:
    def __call__(self, input):  # noqa: A002 - chromadb's parameter name
        return [np.random.default_rng(sum(map(ord, t))).normal(size=32).astype(np.float32) for t in input]

    @staticmethod
    def name() -> str:
        return "toy"

    def get_config(self) -> dict:
        return {}

    @staticmethod
    def build_from_config(config: dict) -> ToyEmbedding:
        return ToyEmbedding()

    def is_legacy(self) -> bool:
        return False
