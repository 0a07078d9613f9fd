"""LlamaIndex vector store from jepa-rag: a Chroma store whose node scores are cosine similarities.

    from llama_index.vector_stores.jepa_rag import jepa_chroma_vector_store
"""

from llama_index.vector_stores.jepa_rag.base import JEPAChromaVectorStore, jepa_chroma_vector_store

__all__ = ["JEPAChromaVectorStore", "jepa_chroma_vector_store"]
