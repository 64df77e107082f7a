"""Configuration: environment variables first, keyword arguments for in-process use."""

from __future__ import annotations

from typing import Literal

from pydantic import AliasChoices, Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

NO_LLM_HELP = (
    "no LLM is configured: set LLM_URL to an OpenAI-compatible base URL "
    "(LocalAI http://localai:8080/v1, Ollama http://localhost:11434/v1, vLLM/KServe, "
    "Llama Stack .../v1/openai/v1), LLM_MODEL to the model name and, if the server "
    "needs one, LLM_API_KEY"
)


class Settings(BaseSettings):
    """All knobs of the agents. Env var names are the upper-case field names."""

    model_config = SettingsConfigDict(env_file=None, extra="ignore", case_sensitive=False)

    # LLM: any OpenAI-compatible chat completions endpoint. LOCALAI_URL is accepted as in the
    # RAG service, so one variable can wire both.
    llm_url: str | None = Field(None, validation_alias=AliasChoices("llm_url", "localai_url"))
    llm_model: str = "llama-3.2-3b-instruct"
    llm_api_key: str | None = None
    llm_timeout_s: float = Field(60.0, gt=0)
    temperature: float = Field(0.2, ge=0.0, le=2.0)
    max_tokens: int = Field(1024, ge=1)

    # RAG service (its public HTTP API: POST /query with generate=false).
    rag_url: str | None = None
    rag_api_key: str | None = None
    rag_collection: str | None = None
    rag_top_n: int = Field(3, ge=1, le=50)
    rag_timeout_s: float = Field(30.0, gt=0)

    # Where the router's retrieve_context reads passages: ``rag`` (the RAG service's HTTP API,
    # above) or ``qdrant`` (the RAG service's Qdrant collection directly, dense search only, by
    # the read contract in services/rag_pipeline/README.md): QDRANT_URL (+ QDRANT_API_KEY) or
    # QDRANT_PATH (embedded Qdrant on disk: single process, tests), the collection RAG_COLLECTION
    # (default the service's ``documents``), the query embedded by the RAG service's embedding
    # server (OpenAI-compatible POST EMBEDDING_URL/embeddings, EMBEDDING_MODEL: the model the
    # collection was written with).
    retrieval_backend: Literal["rag", "qdrant"] = "rag"
    qdrant_url: str | None = None
    qdrant_api_key: str | None = None
    qdrant_path: str | None = None
    embedding_url: str | None = None
    embedding_model: str | None = None
    embedding_api_key: str | None = None

    # Router behaviour.
    quality_threshold: int = Field(60, ge=0, le=100)
    max_regenerations: int = Field(1, ge=0, le=1)  # the issue allows at most one

    # Postgres checkpointer (LangGraph); none: no persistence of the graph state.
    checkpoint_dsn: str | None = None

    # MCP server whose tools the crew's researcher and the router's generate_response get
    # besides the RAG service (streamable HTTP, e.g. http://mcp-gateway:8080/mcp, with
    # ``Authorization: Bearer MCP_API_KEY``); none: the RAG service only.
    mcp_url: str | None = None
    mcp_api_key: str | None = None
    # Router: at most this many rounds of tool calls before the answer is asked for.
    mcp_max_tool_rounds: int = Field(2, ge=1, le=10)

    # A2A server: which workflow it serves (aistack_agents.workflow.WORKFLOWS).
    agent_workflow: str = "router"
    a2a_host: str = "127.0.0.1"
    a2a_port: int = Field(9999, ge=1, le=65535)
    a2a_public_url: str | None = None  # URL in the agent card; default http://host:port/

    # MLflow tracing: the run's spans go to the tracking server's OTLP ingestion (/v1/traces)
    # in this experiment (by id, else by name, created when missing). Credentials:
    # MLFLOW_TRACKING_TOKEN or MLFLOW_TRACKING_USERNAME/PASSWORD, as for the MLflow client.
    mlflow_tracking_uri: str | None = None
    mlflow_experiment_name: str = Field("aistack-agents", min_length=1)
    mlflow_experiment_id: str | None = None

    @field_validator("mlflow_tracking_uri")
    @classmethod
    def _mlflow_http(cls, value: str | None) -> str | None:
        # Traces travel over MLflow's HTTP API: a file or database store cannot receive them.
        if value and not value.startswith(("http://", "https://")):
            raise ValueError(
                "MLFLOW_TRACKING_URI must be an MLflow tracking server's http(s):// URL "
                f"(traces are sent to its /v1/traces), not {value!r}"
            )
        return value or None

    @property
    def llm_configured(self) -> bool:
        return bool(self.llm_url)

    @property
    def public_url(self) -> str:
        return self.a2a_public_url or f"http://{self.a2a_host}:{self.a2a_port}/"
