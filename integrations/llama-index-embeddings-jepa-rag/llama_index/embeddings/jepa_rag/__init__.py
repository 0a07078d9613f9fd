"""LlamaIndex embeddings from jepa-rag: ``from llama_index.embeddings.jepa_rag import JEPAEmbedding``."""

from llama_index.embeddings.jepa_rag.base import JEPAEmbedding

__all__ = ["JEPAEmbedding"]
