"""LlamaIndex retriever from jepa-rag: ``from llama_index.retrievers.jepa_rag import JEPAHybridNodeRetriever``."""

from llama_index.retrievers.jepa_rag.base import JEPAHybridNodeRetriever

__all__ = ["JEPAHybridNodeRetriever"]
