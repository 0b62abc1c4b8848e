"""VoidLLM: a privacy-first LLM gateway and MCP gateway built on trio."""

__version__ = "0.1.0"
