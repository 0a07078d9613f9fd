"""LangChain's own standard test suites for Embeddings, run against JEPAEmbeddings on the small test model."""

from __future__ import annotations

import pytest

pytest.importorskip("langchain_tests", reason="needs the dev dependency langchain-tests (pip install 'jepa-rag[dev]')")

from langchain_tests.integration_tests import EmbeddingsIntegrationTests  # noqa: E402
from langchain_tests.unit_tests import EmbeddingsUnitTests  # noqa: E402

from langchain_jepa_rag import JEPAEmbeddings  # noqa: E402


class _Params:
    """Checkpoint and base model come from session fixtures, so the standard ``embedding_model_params`` reads
    them from the test instance, filled in by an autouse fixture."""

    @pytest.fixture(autouse=True)
    def _paths(self, predictor_checkpoint, minilm_dir):
        self._params = {"checkpoint": str(predictor_checkpoint), "base_model": str(minilm_dir)}

    @property
    def embeddings_class(self) -> type[JEPAEmbeddings]:
        return JEPAEmbeddings

    @property
    def embedding_model_params(self) -> dict:
        return self._params


class TestJEPAEmbeddingsUnit(_Params, EmbeddingsUnitTests):
    pass


class TestJEPAEmbeddingsIntegration(_Params, EmbeddingsIntegrationTests):
    pass
