# Copyright: aistack.platform contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Where document_ingest writes: the RAG service over HTTP (ServiceTarget) or Qdrant through
the service's public in-process API ``rag_pipeline.embedded`` (EmbeddedTarget).

Both have the same methods, each returning plain values or raising TargetError:
``list_documents``, ``check_collection``, ``ingest``, ``delete`` and ``close``.
"""

from __future__ import annotations

import contextlib
import json
import sys
import time
import traceback
from collections.abc import Callable, Iterator
from typing import Any, Protocol, TypeVar
from urllib.parse import quote

from ansible_collections.aistack.platform.plugins.module_utils.qdrant import (
    explain_open_error,
    location,
)

try:
    import httpx

    HAS_HTTPX = True
    HTTPX_IMPORT_ERROR: str | None = None
except ImportError:  # pragma: no cover - depends on the controller's Python
    httpx = None  # type: ignore[assignment]
    HAS_HTTPX = False
    HTTPX_IMPORT_ERROR = traceback.format_exc()

MARK = "aistack.platform.document_ingest"
MAX_RETRY_AFTER = 60.0
# Module options that are rag_pipeline settings of the same name (with url or path).
PIPELINE_OPTIONS = (
    "embedding_backend",
    "embedding_model",
    "embedding_model_path",
    "embedding_url",
    "embedding_api_key",
    "chunk_size",
    "chunk_overlap",
)
# The shared Qdrant connection options (doc fragment aistack.platform.qdrant) as settings.
QDRANT_SETTINGS = {
    "url": "qdrant_url",
    "api_key": "qdrant_api_key",
    "path": "qdrant_path",
    "ca_cert": "qdrant_ca_cert",
    "validate_certs": "qdrant_verify_tls",
    "timeout": "qdrant_timeout",
}
OPEN_HINT = "the RAG service probably has this storage open: ingest through its endpoint instead"

T = TypeVar("T")


class TargetError(RuntimeError):
    """A request failed. ``retryable``: worth another try (connection, 429, 5xx)."""

    def __init__(
        self,
        message: str,
        retryable: bool = False,
        retry_after: float | None = None,
        status: int | None = None,
    ) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.retry_after = retry_after
        self.status = status


class MissingLibrary(RuntimeError):
    """A Python library the chosen target needs is not installed (the module reports it)."""

    def __init__(self, library: str, error: str) -> None:
        super().__init__(library)
        self.library = library
        self.error = error


class Target(Protocol):
    where: str

    def list_documents(self, collection: str) -> dict[str, dict[str, Any]] | None: ...

    def check_collection(self, collection: str) -> None: ...

    def ingest(self, documents: list[dict[str, Any]], collection: str) -> list[dict[str, Any]]: ...

    def delete(self, document_id: str, collection: str) -> None: ...

    def close(self) -> None: ...


def with_retries(
    call: Callable[[], T],
    retries: int,
    backoff: float,
    sleep: Callable[[float], Any] = time.sleep,
) -> T:
    """Run ``call()``; on a retryable TargetError wait backoff * 2**n (or Retry-After)."""
    attempt = 0
    while True:
        try:
            return call()
        except TargetError as exc:
            if not exc.retryable or attempt >= retries:
                raise
            delay = exc.retry_after if exc.retry_after is not None else backoff * (2**attempt)
            sleep(min(max(delay, 0.0), MAX_RETRY_AFTER))
            attempt += 1


@contextlib.contextmanager
def plain_sys_intern() -> Iterator[None]:
    """Run with the interpreter's own ``sys.intern``.

    ansible-core 2.19 wraps ``sys.intern`` when its module_utils are imported (in a module
    process that is before anything here runs); importing sentence-transformers then fails
    inside ``torch._dynamo`` ("substitute_in_graph expects a function"). The model is loaded
    (and used) with the original function in place.
    """
    patched = sys.intern
    original = getattr(type(patched), "unpatched_implementation", None)
    if original is None or not callable(original):
        yield
        return
    sys.intern = original
    try:
        yield
    finally:
        sys.intern = patched


def open_target(params: dict[str, Any]) -> Target:
    """The target the module parameters name (endpoint, or url/path)."""
    if params.get("endpoint"):
        return ServiceTarget(params)
    return EmbeddedTarget(params)


# --------------------------------------------------------------------------- HTTP


class ServiceTarget:
    """The RAG pipeline service over HTTP."""

    def __init__(self, params: dict[str, Any]) -> None:
        endpoint = params["endpoint"].rstrip("/")
        headers = {"Accept": "application/json", "User-Agent": MARK}
        if params.get("api_key"):
            headers["Authorization"] = "Bearer {}".format(params["api_key"])
        self.where = f"the RAG service at {endpoint}"
        self.client = httpx.Client(
            base_url=endpoint,
            headers=headers,
            timeout=float(params["timeout"]),
            verify=self._verify(endpoint, params),
        )

    @staticmethod
    def _verify(endpoint: str, params: dict[str, Any]) -> Any:
        if not endpoint.startswith("https://"):
            return True
        if params.get("ca_cert"):
            import ssl

            return ssl.create_default_context(cafile=params["ca_cert"])
        return params.get("validate_certs") is not False

    def _request(self, method: str, url: str, **kwargs: Any) -> Any:
        try:
            response = self.client.request(method, url, **kwargs)
        except httpx.TimeoutException as exc:
            raise TargetError(
                f"{self.where} did not answer {method} {url} in time ({exc})", retryable=True
            ) from exc
        except httpx.TransportError as exc:
            raise TargetError(
                f"{self.where} is unreachable: {exc or type(exc).__name__}", retryable=True
            ) from exc
        if response.status_code >= 400:
            raise self._error(response, method, url)
        return response

    def _error(self, response: Any, method: str, url: str) -> TargetError:
        try:
            detail = response.json().get("detail", response.text)
        except ValueError:
            detail = response.text
        detail = detail if isinstance(detail, str) else json.dumps(detail)
        status = response.status_code
        retry_after = None
        if response.headers.get("retry-after", "").isdigit():
            retry_after = float(response.headers["retry-after"])
        if status in (401, 403):
            message = f"{self.where} refused the request (HTTP {status}): {detail} - check api_key"
        else:
            message = "{} answered HTTP {} to {} {}: {}".format(
                self.where, status, method, url.split("?")[0], detail[:2000]
            )
        retryable = status == 429 or status >= 500
        return TargetError(message, retryable=retryable, retry_after=retry_after, status=status)

    def list_documents(self, collection: str) -> dict[str, dict[str, Any]] | None:
        try:
            response = self._request("GET", "/documents", params={"collection": collection})
        except TargetError as exc:
            if exc.status == 404:
                return None
            raise
        return {d["document_id"]: d for d in response.json().get("documents", [])}

    def check_collection(self, collection: str) -> None:
        """Nothing to check over HTTP: the service checks its collection (HTTP 409)."""

    def ingest(self, documents: list[dict[str, Any]], collection: str) -> list[dict[str, Any]]:
        body = {"documents": documents, "collection": collection}
        try:
            response = self._request("POST", "/ingest/batch", json=body)
        except TargetError as exc:
            if exc.status == 500:
                exc.args = (
                    f"{exc} (see the service's log; a collection {collection!r} whose vectors "
                    "do not match the service's embedding model is a common cause - compare it "
                    "with aistack.platform.qdrant_collection)",
                )
            raise
        return list(response.json()["results"])

    def delete(self, document_id: str, collection: str) -> None:
        try:
            self._request(
                "DELETE",
                "/documents/{}".format(quote(document_id, safe="")),
                params={"collection": collection},
            )
        except TargetError as exc:
            if exc.status == 404 and "/" in document_id:
                exc.args = (
                    f"{exc} (this service version cannot delete document IDs that contain '/': "
                    "its route must be DELETE /documents/{document_id:path})",
                )
            raise

    def close(self) -> None:
        self.client.close()


# --------------------------------------------------------------------------- in process


def embedded_settings(params: dict[str, Any]) -> dict[str, Any]:
    """rag_pipeline settings from the module parameters (the options it has a value for)."""
    names = {**{option: option for option in PIPELINE_OPTIONS}, **QDRANT_SETTINGS}
    return {
        setting: params[option]
        for option, setting in names.items()
        if params.get(option) is not None
    }


class EmbeddedTarget:
    """Straight into Qdrant through ``rag_pipeline.embedded``, in this process."""

    def __init__(self, params: dict[str, Any]) -> None:
        try:
            from rag_pipeline import embedded
        except ImportError as exc:
            raise MissingLibrary(
                "rag_pipeline >= 0.3.0 (the RAG service package; or use endpoint= instead of "
                "url/path)",
                traceback.format_exc(),
            ) from exc
        self.api = embedded
        self.where = location(params)
        try:
            self.pipeline = embedded.EmbeddedPipeline(**embedded_settings(params))
        except embedded.SettingsError as exc:
            raise TargetError(f"Invalid ingestion settings: {exc}") from exc
        except Exception as exc:
            message = explain_open_error(exc, OPEN_HINT)
            raise TargetError(f"Cannot open {self.where}: {message}") from exc

    def _call(self, func: Callable[..., T], *args: Any) -> T:
        api = self.api
        try:
            with plain_sys_intern():  # the embedder loads on first use
                return func(*args)
        except (api.StoreUnavailableError, api.EmbedderError) as exc:
            raise TargetError(f"{type(exc).__name__}: {exc}", retryable=True) from exc
        except api.CollectionMismatchError as exc:
            raise TargetError(f"{self.where}: {exc}") from exc
        except Exception as exc:
            raise TargetError(f"{type(exc).__name__}: {exc}") from exc

    def list_documents(self, collection: str) -> dict[str, dict[str, Any]] | None:
        return self._call(self.pipeline.list_documents, collection)

    def check_collection(self, collection: str) -> None:
        """Load the embedder; fail clearly when the collection's layout does not fit it."""
        self._call(self.pipeline.check_collection, collection)

    def ingest(self, documents: list[dict[str, Any]], collection: str) -> list[dict[str, Any]]:
        return self._call(self.pipeline.ingest, documents, collection)

    def delete(self, document_id: str, collection: str) -> None:
        self._call(self.pipeline.delete, document_id, collection)

    def close(self) -> None:
        self.pipeline.close()
