# Copyright: aistack.platform contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Validation of rendered Kubernetes objects.

Built-in kinds are validated against the JSON schemas that ``kubernetes-validate`` ships
for each Kubernetes minor version (strict mode rejects unknown fields). Custom resources,
which the validator has no schema for, get a structural check of the fields their CRDs
require (see ``custom_resources.py``); a kind known to neither fails, so every object the
collection renders is checked by something.
"""

from __future__ import annotations

import json
import re
from typing import Any

from ansible_collections.aistack.platform.plugins.module_utils.custom_resources import (
    CUSTOM_RESOURCES,
)

try:
    import jsonschema
    from kubernetes_validate import utils as kv_utils
    from referencing import Registry, Resource

    HAS_KUBERNETES_VALIDATE = True
    KUBERNETES_VALIDATE_IMPORT_ERROR = None
except ImportError as exc:  # pragma: no cover - exercised only where the library is missing
    HAS_KUBERNETES_VALIDATE = False
    KUBERNETES_VALIDATE_IMPORT_ERROR = exc

DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")
# Kinds whose metadata.name may not contain dots (DNS-1123 label).
LABEL_NAMED_KINDS = frozenset({"Namespace", "Service"})
DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


def object_ref(obj: dict[str, Any]) -> str:
    """``Kind/name`` (with the namespace when there is one) for messages."""
    meta = obj.get("metadata") or {}
    ref = "{}/{}".format(obj.get("kind", "<no kind>"), meta.get("name", "<no name>"))
    if meta.get("namespace"):
        ref += " (namespace {})".format(meta["namespace"])
    return ref


def _error_path(error: Any) -> str:
    path = ""
    for part in error.absolute_path:
        path += f"[{part}]" if isinstance(part, int) else f".{part}"
    return path.lstrip(".") or "<root>"


def _lookup(obj: Any, dotted: str) -> tuple[bool, Any]:
    current = obj
    for key in dotted.split("."):
        if not isinstance(current, dict) or key not in current:
            return False, None
        current = current[key]
    return True, current


class ManifestValidator:
    """Validates objects for one Kubernetes version, caching compiled schemas per kind."""

    def __init__(self, kubernetes_version: str, strict: bool = True) -> None:
        if not HAS_KUBERNETES_VALIDATE:
            raise RuntimeError(
                f"kubernetes-validate is required: {KUBERNETES_VALIDATE_IMPORT_ERROR}"
            )
        requested = kubernetes_version.lstrip("v")
        minor = kv_utils.major_minor(requested)
        supported = [v for v in kv_utils.all_versions() if kv_utils.major_minor(v) == minor]
        if not supported:
            versions = kv_utils.all_versions()
            raise ValueError(
                f"kubernetes-validate has no schemas for Kubernetes {requested} "
                f"(it has {versions[0]} to {versions[-1]})"
            )
        self.version = supported[-1]
        self.strict = strict
        self._schema_dir = "kubernetes-json-schema/v{}-local{}".format(
            self.version, "-strict" if strict else ""
        )
        self._registry: Any = None
        self._validators: dict[tuple[str, str], Any] = {}

    def _definitions_registry(self) -> Any:
        if self._registry is None:
            definitions = kv_utils.schema_contents(
                f"{self._schema_dir}/_definitions.json", self.version
            )
            self._registry = Resource.from_contents(definitions) @ Registry()
        return self._registry

    def _validator_for(self, api_version: str, kind: str) -> Any:
        key = (api_version, kind)
        if key not in self._validators:
            # rbac.authorization.k8s.io/v1 -> rbac-v1, as kubernetes-validate names its files
            group_version = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", api_version)
            filename = f"{self._schema_dir}/{kind.lower()}-{group_version}.json"
            try:
                schema = kv_utils.schema_contents(filename, self.version)
            except FileNotFoundError:
                self._validators[key] = None
            else:
                registry = Resource.from_contents(schema) @ self._definitions_registry()
                self._validators[key] = jsonschema.validators.Draft202012Validator(
                    schema, registry=registry
                )
        return self._validators[key]

    def validate(self, obj: Any) -> list[str]:
        """Returns a list of error messages (empty when the object is valid)."""
        if not isinstance(obj, dict):
            return [f"not a mapping (got {type(obj).__name__})"]
        errors = []
        for field in ("apiVersion", "kind"):
            if not isinstance(obj.get(field), str) or not obj.get(field):
                errors.append(f"{field} is required")
        meta = obj.get("metadata")
        name = meta.get("name") if isinstance(meta, dict) else None
        if not isinstance(name, str) or not name:
            errors.append("metadata.name is required")
        else:
            pattern = DNS_LABEL if obj.get("kind") in LABEL_NAMED_KINDS else DNS_SUBDOMAIN
            if not pattern.match(name) or len(name) > 253:
                errors.append(f"metadata.name {name!r} is not a valid DNS name")
        if errors:
            return errors
        validator = self._validator_for(obj["apiVersion"], obj["kind"])
        if validator is not None:
            return [
                f"{_error_path(err)}: {err.message}"
                for err in sorted(validator.iter_errors(obj), key=lambda e: list(e.absolute_path))
            ]
        return self._validate_custom(obj)

    def _validate_custom(self, obj: dict[str, Any]) -> list[str]:
        group = obj["apiVersion"].rsplit("/", 1)[0] if "/" in obj["apiVersion"] else ""
        spec = CUSTOM_RESOURCES.get((obj["apiVersion"], obj["kind"]))
        if spec is None:
            known_versions = sorted(
                api
                for (api, kind) in CUSTOM_RESOURCES
                if kind == obj["kind"] and api.startswith(group)
            )
            hint = (
                " (known versions: {})".format(", ".join(known_versions)) if known_versions else ""
            )
            return [
                f"no schema for {obj['apiVersion']} {obj['kind']} in Kubernetes {self.version} "
                f"and not a registered custom resource{hint}"
            ]
        errors = []
        if spec.get("namespaced", True) and not (obj.get("metadata") or {}).get("namespace"):
            errors.append("metadata.namespace is required for namespaced custom resources")
        for path in spec.get("required", ()):
            found, value = _lookup(obj, path)
            if not found or value in (None, "", [], {}):
                errors.append("{}: required by the {} CRD".format(path, obj["kind"]))
        for path, expected in spec.get("types", {}).items():
            found, value = _lookup(obj, path)
            if found and not isinstance(value, expected):
                errors.append(f"{path}: expected {expected.__name__}, got {type(value).__name__}")
        for path, allowed in spec.get("choices", {}).items():
            found, value = _lookup(obj, path)
            if found and value not in allowed:
                errors.append(
                    "{}: {!r} is not one of {} (the {} CRD)".format(
                        path, value, ", ".join(allowed), obj["kind"]
                    )
                )
        for path, pattern in spec.get("patterns", {}).items():
            found, value = _lookup(obj, path)
            if found and not (isinstance(value, str) and re.search(pattern, value)):
                errors.append(
                    "{}: {!r} does not match {} (the {} CRD)".format(
                        path, value, pattern, obj["kind"]
                    )
                )
        if self.strict:
            allowed = set(spec.get("top_level", ("spec",))) | {"apiVersion", "kind", "metadata"}
            unexpected = sorted(set(obj) - allowed)
            if unexpected:
                errors.append("unexpected top-level field(s): {}".format(", ".join(unexpected)))
        return errors


# Environment variable names that say their value is a secret (upper-cased, '-' and '.' as
# '_'). TOKEN must end the word: MAX_TOKENS and TOKENIZERS_PARALLELISM are not secrets.
SECRET_NAME = re.compile(
    r"PASSW(OR)?D|PASSPHRASE|SECRET|API_?KEY|ACCESS_?KEY|PRIVATE_?KEY|CREDENTIAL|TOKEN(?![A-Z])"
)
# ...unless the last word says the value names, locates or measures it, rather than being it
# (POSTGRES_PASSWORD_FILE, LOCAL_AI_MODEL_TOKEN_LIMIT).
NOT_A_SECRET_SUFFIXES = frozenset(
    {"FILE", "PATH", "DIR", "URL", "URI", "NAME", "HEADER", "ENDPOINT"}
    | {"LIMIT", "COUNT", "SIZE", "LENGTH", "MAX", "MIN", "TTL", "TIMEOUT", "ENABLED", "TYPE"}
)
# A value that only refers to another variable of the container: $(NAME).
VARIABLE_REFERENCE = re.compile(r"^\$\([A-Za-z_][A-Za-z0-9_.-]*\)$")
CONTAINER_LISTS = ("initContainers", "containers", "ephemeralContainers")


def secret_like(name: str) -> bool:
    """Whether an environment variable's name says it holds a secret."""
    normal = re.sub(r"[-.]", "_", name.upper())
    return bool(SECRET_NAME.search(normal)) and normal.split("_")[-1] not in NOT_A_SECRET_SUFFIXES


def _containers(value: Any, path: str) -> list[tuple[str, dict[str, Any]]]:
    """(path, container) of every container list anywhere in an object: Pods, the pod
    templates of Deployments, StatefulSets, DaemonSets, Jobs, CronJobs, and custom resources
    that embed containers."""
    found: list[tuple[str, dict[str, Any]]] = []
    if isinstance(value, dict):
        for key, item in value.items():
            where = f"{path}.{key}" if path else str(key)
            if key in CONTAINER_LISTS and isinstance(item, list):
                found.extend(
                    (f"{where}[{index}]", container)
                    for index, container in enumerate(item)
                    if isinstance(container, dict)
                )
            else:
                found.extend(_containers(item, where))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found.extend(_containers(item, f"{path}[{index}]"))
    return found


def plain_text_secrets(obj: Any) -> list[str]:
    """Secret values written into an object in plain text; never repeats a value.

    A Secret with ``data`` or ``stringData``, and container environment variables whose name
    says they hold a secret (PASSWORD, TOKEN, SECRET, API_KEY, ...) given a literal ``value``
    (``valueFrom`` is the way: a secretKeyRef).
    """
    if not isinstance(obj, dict):
        return []
    if obj.get("kind") == "Secret" and (obj.get("data") or obj.get("stringData")):
        return [
            "Secret carries data in plain text; reference an existing Secret or pass it "
            "through deploy_secrets (Vault-sourced, applied with no_log, never rendered)"
        ]
    errors = []
    for where, container in _containers(obj, ""):
        env = container.get("env")
        for index, var in enumerate(env if isinstance(env, list) else []):
            if not isinstance(var, dict) or not isinstance(var.get("name"), str):
                continue
            value = var.get("value")
            if value in (None, "") or "valueFrom" in var or not secret_like(var["name"]):
                continue
            if isinstance(value, str) and VARIABLE_REFERENCE.match(value):
                continue
            errors.append(
                "{}.env[{}] (container {}): environment variable {} has a plain-text value, "
                "and its name says it is a secret; take it from a Secret with "
                "valueFrom.secretKeyRef (deploy_secrets creates Secrets from Vault)".format(
                    where, index, container.get("name", "?"), var["name"]
                )
            )
    return errors


def canonical_json(value: Any) -> str:
    """Stable serialisation used to compare rendered content."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
