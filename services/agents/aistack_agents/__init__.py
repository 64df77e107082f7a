"""aistack agent layer: the LangGraph query router (A2A server and CLI)."""

__version__ = "0.1.0"
