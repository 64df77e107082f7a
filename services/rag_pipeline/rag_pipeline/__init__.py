"""aistack RAG pipeline service."""

__version__ = "0.2.0"
