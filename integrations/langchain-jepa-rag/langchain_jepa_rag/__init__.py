"""LangChain integration of jepa-rag: a frozen sentence-transformers base plus trained JEPA heads.

    from langchain_jepa_rag import JEPAEmbeddings, JEPAHybridRetriever, jepa_chroma_vectorstore

:class:`JEPAEmbeddings` embeds documents along the checkpoint's document route and queries along its query route;
:func:`jepa_chroma_vectorstore` is a ``langchain_chroma.Chroma`` over a cosine collection that records the
checkpoint; :class:`JEPAHybridRetriever` fuses that collection's cosine search with BM25.
"""

from jepa_rag.errors import EmbeddingSpaceConflictError

from .embeddings import JEPAEmbeddings
from .retrievers import JEPAHybridRetriever
from .vectorstores import cosine_relevance, jepa_chroma_retriever, jepa_chroma_vectorstore

__all__ = ["EmbeddingSpaceConflictError", "JEPAEmbeddings", "JEPAHybridRetriever", "cosine_relevance",
           "jepa_chroma_retriever", "jepa_chroma_vectorstore"]
