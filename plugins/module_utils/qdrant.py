# Copyright: aistack.platform contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Connection options and client factory shared by the Qdrant-facing modules.

Documented once in the C(aistack.platform.qdrant) doc fragment.
"""

from __future__ import annotations

import ssl
import traceback
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # importing ansible.module_utils.basic patches sys.intern: types only
    from ansible.module_utils.basic import AnsibleModule

try:
    from qdrant_client import QdrantClient

    HAS_QDRANT_CLIENT = True
    QDRANT_CLIENT_IMPORT_ERROR: str | None = None
except ImportError:  # pragma: no cover - depends on the controller's Python
    QdrantClient = None  # type: ignore[assignment,misc]
    HAS_QDRANT_CLIENT = False
    QDRANT_CLIENT_IMPORT_ERROR = traceback.format_exc()

# Merged into the argument_spec of every module that talks to Qdrant (see the doc fragment).
QDRANT_CONNECTION_SPEC: dict[str, dict[str, Any]] = {
    "url": {"type": "str"},
    "api_key": {"type": "str", "no_log": True},
    "timeout": {"type": "int", "default": 60},
    "validate_certs": {"type": "bool", "default": True},
    "ca_cert": {"type": "path"},
    "path": {"type": "path"},
}

QDRANT_MUTUALLY_EXCLUSIVE: list[list[str]] = [
    ["url", "path"],
    ["path", "api_key"],
    ["path", "ca_cert"],
]


def is_embedded(params: dict[str, Any]) -> bool:
    """True when the module talks to embedded (local-mode) Qdrant on disk."""
    return bool(params.get("path"))


def location(params: dict[str, Any]) -> str:
    """Human-readable location of the Qdrant instance, for messages."""
    return params.get("url") or "embedded Qdrant at {}".format(params.get("path"))


def client_kwargs(params: dict[str, Any]) -> dict[str, Any]:
    """Keyword arguments of QdrantClient for the module parameters (no client is created)."""
    if params.get("path"):
        return {"path": params["path"]}
    url = params.get("url")
    if not url:
        raise ValueError("one of url (Qdrant server) or path (embedded Qdrant) is required")
    kwargs: dict[str, Any] = {"url": url, "timeout": params.get("timeout") or 60}
    if params.get("api_key"):
        kwargs["api_key"] = params["api_key"]
    if url.startswith("https://"):
        kwargs["https"] = True
        if params.get("ca_cert"):
            kwargs["verify"] = ssl.create_default_context(cafile=params["ca_cert"])
        elif params.get("validate_certs") is False:
            kwargs["verify"] = False
    return kwargs


LOCKED_STORAGE_HINT = (
    "another process, for example the RAG service, holds this embedded storage: "
    "stop it or use its HTTP endpoint instead"
)


def explain_open_error(exc: BaseException, hint: str = LOCKED_STORAGE_HINT) -> str:
    """The error text, with ``hint`` added when embedded storage is locked by another process."""
    message = str(exc)
    if "already accessed by another instance" in message:
        message += f" ({hint})"
    return message


def connect(module: AnsibleModule) -> Any:
    """A QdrantClient for the module's connection options; fails the module on error.

    Embedded mode takes an exclusive lock on O(path): close the client (``client.close()``)
    before the module exits so that a service can open the same storage afterwards.
    """
    if not HAS_QDRANT_CLIENT:
        # Imported here: this file stays importable without ansible.module_utils.basic.
        from ansible.module_utils.basic import missing_required_lib

        module.fail_json(
            msg=missing_required_lib("qdrant-client"), exception=QDRANT_CLIENT_IMPORT_ERROR
        )
    try:
        kwargs = client_kwargs(module.params)
    except (ValueError, OSError, ssl.SSLError) as exc:
        module.fail_json(msg=f"Invalid Qdrant connection options: {exc}")
    try:
        if "path" in kwargs:
            return QdrantClient(**kwargs)
        # The version check makes a request of its own; errors surface on the first real call.
        return QdrantClient(check_compatibility=False, **kwargs)
    except Exception as exc:
        module.fail_json(msg=f"Cannot open {location(module.params)}: {explain_open_error(exc)}")
    raise AssertionError("unreachable")  # pragma: no cover


def connection_error_message(params: dict[str, Any], exc: BaseException) -> str | None:
    """A clear message when ``exc`` means Qdrant could not be reached, else None."""
    try:
        import httpx
        from qdrant_client.http.exceptions import ResponseHandlingException
    except ImportError:  # pragma: no cover
        return None
    if isinstance(exc, (ResponseHandlingException, httpx.TransportError, ConnectionError)):
        return f"Qdrant at {location(params)} is unreachable: {exc}"
    status = getattr(exc, "status_code", None)
    if status in (401, 403):
        return (
            f"Qdrant at {location(params)} refused the credentials (HTTP {status}): check api_key"
        )
    return None
