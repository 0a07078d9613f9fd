"""The exceptions jepa-rag raises.

Every error a user can cause derives from :class:`JEPARagError`, so one ``except`` catches them all, and
each also derives from the builtin that fits (``ValueError``, ``FileNotFoundError``) so existing handlers
keep working.
"""

from __future__ import annotations


class JEPARagError(Exception):
    """Base class of every jepa-rag error."""


class InvalidInputError(JEPARagError, ValueError):
    """A text, list, vector or argument that cannot be used (empty, wrong type, wrong shape)."""


class ConfigError(JEPARagError, ValueError):
    """A training or model configuration that is inconsistent or names an unknown option."""


class ModelNotFoundError(JEPARagError, FileNotFoundError):
    """The base model could not be found locally nor fetched."""


class IntegrityError(JEPARagError, ValueError):
    """Downloaded or stored bytes whose hash does not match the expected one."""


class CheckpointError(JEPARagError, ValueError):
    """A checkpoint that is missing, corrupt, truncated, of an unknown format or for another base model."""


class DataNotFoundError(JEPARagError, FileNotFoundError):
    """A data set or data folder that does not exist or lacks a required file."""


class DataFormatError(JEPARagError, ValueError):
    """A data file with a malformed line; the message names the file and the line."""


class EmbeddingMismatchError(JEPARagError, ValueError):
    """Precomputed embeddings that do not match what the base model produces for the same texts."""


class EmbeddingSpaceConflictError(JEPARagError, ValueError):
    """A vector collection built with one checkpoint was opened with another.

    Vectors from different checkpoints (or base models) live in different embedding spaces: querying one with the
    other returns confident nonsense, so this is refused instead of silently mixing them.
    """


class LexicalIndexError(JEPARagError, ValueError):
    """A saved lexical (BM25) index that is missing, truncated, corrupt or of an unknown format; rebuild it from
    its documents."""


class StorageFullError(JEPARagError, OSError):
    """A write that ran out of space (a full disk, a quota, a file-size limit); the message names the storage."""


class StaleCollectionError(JEPARagError, RuntimeError):
    """A collection another process wrote while this process serves it through a client that cannot see those writes
    (an embedded chromadb ``PersistentClient``): answering would mix a stale dense side with a fresh lexical one."""
