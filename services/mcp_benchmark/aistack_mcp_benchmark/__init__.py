"""aistack benchmark MCP server: the llm_benchmark engine and the RAG service as MCP tools."""

__version__ = "0.1.0"
