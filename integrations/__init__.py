"""Adapters that plug :class:`jepa_rag.JEPAEncoder` into LlamaIndex, LangChain and Chroma.

Each framework lives in its own module and is imported only when one of its names is first used, so
``import integrations`` costs nothing and works with none of the frameworks installed. Using a name whose
framework is missing raises an :class:`ImportError` naming the pip extra to install::

    from integrations import JEPAEmbedding            # LlamaIndex   (pip install 'jepa-rag[llamaindex]')
    from integrations import JEPAEmbeddings           # LangChain    (pip install 'jepa-rag[langchain]')
    from integrations import JEPAEmbeddingFunction    # Chroma       (pip install 'jepa-rag[chroma]')
    from integrations import JEPAHybridRetriever      # LangChain hybrid (BM25 + dense); JEPAHybridNodeRetriever
                                                      # for LlamaIndex, HybridCollection for Chroma

Every adapter embeds documents along the document route (``encode_documents``) and queries along the query
route (``encode_queries``, which goes through the predictor when the checkpoint says so): mixing the two up
silently loses the checkpoint's retrieval gain, so the routes are fixed here once.
"""

from __future__ import annotations

import importlib
from typing import Any

# public name -> submodule that defines it (imported on first access, PEP 562)
_LAZY = {
    "EmbeddingSpaceConflictError": "_common",
    "JEPAEmbedding": "llamaindex",
    "jepa_chroma_vector_store": "llamaindex",
    "JEPAEmbeddings": "langchain",
    "jepa_chroma_vectorstore": "langchain",
    "jepa_chroma_retriever": "langchain",
    "JEPAEmbeddingFunction": "chroma",
    "get_or_create_collection": "chroma",
    "check_collection": "chroma",
    "ingest": "chroma",
    "HybridCollection": "chroma_lexical",
    "hybrid_collection": "chroma_lexical",
    "JEPAHybridRetriever": "langchain",
    "JEPAHybridNodeRetriever": "llamaindex",
}

__all__ = list(_LAZY)


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'integrations' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
