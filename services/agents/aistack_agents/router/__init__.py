"""The LangGraph query router: classify → (retrieve) → generate → check quality."""

from aistack_agents.router.graph import QueryRouter, open_checkpointer
from aistack_agents.router.state import RouterState, initial_state

__all__ = ["QueryRouter", "RouterState", "initial_state", "open_checkpointer"]
