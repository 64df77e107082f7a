"""Settings from the environment (the Kubernetes role sets exactly these)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


def _env(name: str, default: str | None = None) -> str | None:
    value = os.environ.get(name, "").strip()
    return value or default


@dataclass(frozen=True)
class Settings:
    auth_token: str | None  # MCP_AUTH_TOKEN: bearer token required on /mcp
    rag_url: str | None  # RAG_URL: the RAG service's public HTTP API
    rag_api_key: str | None  # RAG_API_KEY
    results_dir: Path  # RESULTS_DIR: benchmark reports, one folder per run
    llm_base_url: str | None  # LLM_BASE_URL: run_benchmark's default target
    llm_api_key: str | None  # LLM_API_KEY: sent only to LLM_BASE_URL
    llm_model: str | None  # LLM_MODEL: default model (else the target's first listed model)
    rag_timeout_s: float = 60.0

    @classmethod
    def from_env(cls) -> Settings:
        return cls(
            auth_token=_env("MCP_AUTH_TOKEN"),
            rag_url=(_env("RAG_URL") or "").rstrip("/") or None,
            rag_api_key=_env("RAG_API_KEY"),
            results_dir=Path(_env("RESULTS_DIR", "/results") or "/results"),
            llm_base_url=(_env("LLM_BASE_URL") or "").rstrip("/") or None,
            llm_api_key=_env("LLM_API_KEY"),
            llm_model=_env("LLM_MODEL"),
            rag_timeout_s=_seconds("RAG_TIMEOUT_S", 60.0),
        )


def _seconds(name: str, default: float) -> float:
    raw = _env(name)
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not value > 0:
        raise ValueError(f"{name} must be a number of seconds > 0, got {raw!r}")
    return value
