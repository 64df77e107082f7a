"""FastAPI dependencies: the pipeline and API-key auth."""

from __future__ import annotations

import secrets
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from rag_pipeline.pipeline import Pipeline

_bearer = HTTPBearer(auto_error=False, description="API_KEY, when the service sets one")


def get_pipeline(request: Request) -> Pipeline:
    return request.app.state.pipeline  # type: ignore[no-any-return]


def require_api_key(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> None:
    expected = request.app.state.pipeline.settings.api_key
    if not expected:
        return
    if credentials is None or not secrets.compare_digest(
        credentials.credentials.encode(), expected.encode()
    ):
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "missing or wrong API key (Authorization: Bearer <API_KEY>)",
            headers={"WWW-Authenticate": "Bearer"},
        )


def require_metrics_access(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> None:
    """/metrics: open with METRICS_PUBLIC=true, else the API key as everywhere."""
    if not request.app.state.pipeline.settings.metrics_public:
        require_api_key(request, credentials)


PipelineDep = Annotated[Pipeline, Depends(get_pipeline)]
