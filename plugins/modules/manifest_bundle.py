#!/usr/bin/python
# Copyright: aistack.platform contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

DOCUMENTATION = r"""
module: manifest_bundle
short_description: Render and validate one component's Kubernetes manifests and Helm releases
version_added: "0.1.0"
description:
  - Writes the Kubernetes objects and Helm release specifications of one component to a
    directory, one file per object, plus a C(kustomization.yaml), so the directory is usable
    as a GitOps bundle.
  - Every object is validated before anything is written; if one is invalid the task fails
    naming the file, the object (C(Kind/name)) and the schema error, and the directory is
    left as it was.
  - Files are only rewritten when their content changes, so a second run reports
    C(changed=false). Stale files it wrote in an earlier render are removed (O(prune)).
  - The module owns only the files it writes. It lists them in C(.aistack-bundle.json) in
    O(dest) (a JSON marker with a format number); O(prune) and O(state=absent) remove only
    files listed there, then directories left empty, and O(dest) itself only when nothing
    else is in it. Files of anyone else in O(dest) are never changed or removed
    (RV(unmanaged_files)), and the task fails, writing nothing, when one is where a bundle
    file goes.
  - O(dest) must be a directory that does not exist yet, is empty, or holds a bundle of this
    module; the task fails, touching nothing, when it is a file or a non-empty directory
    without the marker.
  - Migration - bundles written before the marker existed have none. Such a directory is
    adopted (with a warning) - the files named like bundle files (C(NN-kind-name.yaml),
    C(helm/<release>/release.yaml) and C(values.yaml), C(kustomization.yaml),
    C(remote.yaml), C(secrets.required.yaml)) that begin with the header line this module
    writes are taken as its own and recorded in a new marker; any other file is left alone.
    The deploy role gives every component a directory of its own
    (C(<aistack_render_dir>/<component>)), so its earlier bundles are adopted as they are.
  - This is the render half of the collection's deploy mechanism (role
    M(aistack.platform.deploy) calls it in both C(render) and C(apply) modes).
author:
  - aistack.platform maintainers (@aistack)
extends_documentation_fragment:
  - aistack.platform.k8s_render
options:
  dest:
    description: Directory that holds the component's rendered files.
    type: path
    required: true
  manifests:
    description:
      - Kubernetes objects, in apply order. Each item is one object (a mapping).
      - Secrets must not carry C(data) or C(stringData); pass them through O(secrets) instead.
      - Nor may a container (in any object - Pods, the pod templates of Deployments,
        StatefulSets, DaemonSets, Jobs and CronJobs, custom resources) set a plain C(value) for
        an environment variable whose name says it is a secret (it contains C(PASSWORD),
        C(PASSWD), C(PASSPHRASE), C(SECRET), C(API_KEY), C(ACCESS_KEY), C(PRIVATE_KEY),
        C(CREDENTIAL) or the word C(TOKEN), in any case, and its last word is not one that
        names, locates or measures the secret - C(FILE), C(PATH), C(DIR), C(URL), C(URI),
        C(NAME), C(HEADER), C(ENDPOINT), C(LIMIT), C(COUNT), C(SIZE), C(LENGTH), C(MAX),
        C(MIN), C(TTL), C(TIMEOUT), C(ENABLED), C(TYPE)); use C(valueFrom) (a
        C(secretKeyRef)). An empty value and a C($(OTHER_VAR)) reference are fine. The error
        names the object, container and variable, never the value.
      - These plain-text secret checks run even with O(validate=false).
    type: list
    elements: dict
    default: []
  helm_releases:
    description: Helm releases of the component, in install order.
    type: list
    elements: dict
    default: []
    suboptions:
      name:
        description: Release name.
        type: str
        required: true
      namespace:
        description: Namespace of the release.
        type: str
        required: true
      chart:
        description:
          - Chart reference, for example C(nvidia/gpu-operator) with O(helm_releases[].repo_url),
            an C(oci://) reference, or a path to a local chart tarball.
        type: str
        required: true
      version:
        description: Pinned chart version. Ranges and C(latest) are rejected.
        type: str
        required: true
      repo_url:
        description: Chart repository URL (not used for C(oci://) or local charts).
        type: str
      values:
        description: Values passed to the chart.
        type: dict
        default: {}
      create_namespace:
        description: Create the namespace when it does not exist.
        type: bool
        default: true
      wait:
        description: Wait for the release's resources to become ready when applied.
        type: bool
        default: true
      timeout:
        description: How long to wait when applied, as a Helm duration such as C(10m).
        type: str
        default: 10m
  remote_manifests:
    description:
      - Upstream release manifests (for example the Gateway API CRDs) that are applied as
        published instead of being rendered here, before everything else of the component.
      - They are listed in C(remote.yaml) and, when they are URLs, at the top of the
        C(kustomization.yaml) resources; their content is not fetched or validated by this
        module (the deploy role downloads and applies them in C(apply) mode). Local paths
        (mirrored copies) cannot be kustomize resources outside the bundle, so a GitOps tool
        must apply those itself (C(remote.yaml) names them). Apply a bundle with CRDs
        server-side (C(kubectl apply --server-side -k)), since large CRDs exceed the client-side
        annotation limit.
      - Each one must be pinned, by a MAJOR.MINOR.PATCH version in its URL or path
        (C(/v1.4.0/), C(?ref=v1.4.0)) or by a O(remote_manifests[].checksum); branch names such
        as C(main) are rejected, and plain C(http://) needs a checksum.
    type: list
    elements: dict
    default: []
    suboptions:
      name:
        description: Short name (lower-case letters, digits, C(-)), unique in the component.
        type: str
        required: true
      url:
        description: C(https://) or C(http://) URL of the YAML file, or an absolute local path.
        type: str
        required: true
      checksum:
        description:
          - Expected checksum, C(<algorithm>:<hex>) as for M(ansible.builtin.get_url).
          - Empty means none.
        type: str
  secrets:
    description:
      - Secrets the component needs. Only names, namespaces and key names are written (to
        C(secrets.required.yaml)); values never reach the rendered files.
    type: list
    elements: dict
    default: []
    suboptions:
      name:
        description: Secret name.
        type: str
        required: true
      namespace:
        description: Secret namespace.
        type: str
        required: true
      keys:
        description: Keys the workloads read from the Secret.
        type: list
        elements: str
        default: []
      source:
        description: Where the value comes from (C(vault) or C(existing)).
        type: str
        choices: [vault, existing]
        default: existing
  prune:
    description:
      - Remove files that this module wrote to O(dest) earlier (listed in its marker) and
        this render no longer produces. Other files are never removed.
    type: bool
    default: true
  state:
    description:
      - V(present) writes the bundle; V(absent) removes the files this module wrote to
        O(dest) and its marker, then O(dest) if nothing else is left in it (other files and
        O(dest) with them are kept, with a warning).
    type: str
    choices: [present, absent]
    default: present
attributes:
  check_mode:
    support: full
    description:
      - Objects are validated as in a normal run (unless O(validate=false)); nothing is
        written or removed, and RV(changed_files) lists the files that would be created,
        changed or removed.
  diff_mode:
    support: full
    description:
      - With V(present), the before and after content of each file that changes (removed
        files have an empty after), and of the marker C(.aistack-bundle.json) when the set of
        files it lists changes. With V(absent), the list of files that are removed.
  platform:
    support: N/A
    platforms: posix
    description: Writes the bundle on the target host, usually C(localhost).
notes:
  - Supports check mode and diff mode; in check mode nothing is written but validation runs.
seealso:
  - module: kubernetes.core.k8s
  - module: kubernetes.core.helm
"""

EXAMPLES = r"""
- name: Render LocalAI into the GitOps bundle
  aistack.platform.manifest_bundle:
    dest: build/single-node/localai
    kubernetes_version: "1.31"
    manifests:
      - apiVersion: v1
        kind: Service
        metadata: {name: localai, namespace: ai-stack}
        spec:
          selector: {app.kubernetes.io/name: localai}
          ports: [{name: http, port: 8080, targetPort: 8080}]
    helm_releases:
      - name: localai
        namespace: ai-stack
        chart: go-skynet/local-ai
        repo_url: https://go-skynet.github.io/helm-charts/
        version: 3.4.2
        values: {replicaCount: 1}

- name: Only validate (nothing is written)
  aistack.platform.manifest_bundle:
    dest: build/check
    manifests: "{{ lookup('ansible.builtin.file', 'app.yaml') | ansible.builtin.from_yaml_all }}"
  check_mode: true
"""

RETURN = r"""
dest:
  description: Absolute path of the bundle directory.
  returned: always
  type: str
  sample: /srv/aistack/build/single-node/localai
files:
  description: Files of the bundle relative to O(dest), in apply order.
  returned: always
  type: list
  elements: str
  sample: [01-service-localai.yaml, helm/localai/release.yaml, helm/localai/values.yaml]
changed_files:
  description:
    - Files that were (or in check mode would be) created, changed or removed.
    - The marker C(.aistack-bundle.json) is not listed; writing it alone (when an earlier
      bundle is adopted) still reports C(changed=true).
  returned: always
  type: list
  elements: str
unmanaged_files:
  description:
    - Files in O(dest), relative to it, that this module did not write and leaves alone.
  returned: always
  type: list
  elements: str
  sample: [README.md]
objects:
  description: Number of Kubernetes objects rendered.
  returned: always
  type: int
  sample: 4
releases:
  description: Number of Helm releases rendered.
  returned: always
  type: int
  sample: 1
remote_manifests:
  description: Number of upstream release manifests listed.
  returned: always
  type: int
  sample: 2
kinds:
  description: Count of rendered objects per kind.
  returned: always
  type: dict
  sample: {Service: 1, Ingress: 1}
kubernetes_version:
  description: Kubernetes schema version the objects were validated against.
  returned: when O(validate=true)
  type: str
  sample: 1.31.0
errors:
  description: Validation errors, one entry per invalid object (the task fails when non-empty).
  returned: on validation failure
  type: list
  elements: dict
"""

import json
import os
import re
from typing import Any

from ansible.module_utils.basic import AnsibleModule, missing_required_lib
from ansible.module_utils.common.text.converters import to_native

from ansible_collections.aistack.platform.plugins.module_utils.bundle_ownership import (
    MARKER,
    BundleError,
    Ownership,
    inspect_dest,
    printable,
    remove_bundle,
    remove_owned,
    write_marker,
)
from ansible_collections.aistack.platform.plugins.module_utils.k8s_validation import (
    HAS_KUBERNETES_VALIDATE,
    KUBERNETES_VALIDATE_IMPORT_ERROR,
    ManifestValidator,
    object_ref,
    plain_text_secrets,
)

try:
    import yaml

    HAS_YAML = True
except ImportError:  # pragma: no cover
    HAS_YAML = False

HEADER = "# Rendered by aistack.platform; changes are overwritten on the next render.\n"
PINNED_VERSION = re.compile(r"^v?\d+\.\d+\.\d+([-+][0-9A-Za-z.-]+)?$")
# A remote manifest is pinned by a version in its URL (a path segment or a ref/version query).
PINNED_URL = re.compile(r"(/|[?&](ref|version)=)v?\d+\.\d+\.\d+([-+][0-9A-Za-z.-]+)?(/|$|&)")
FLOATING_REF = re.compile(r"(/|[?&]ref=)(main|master|latest|head|HEAD)(/|$|&)")
DIGEST_LENGTH = {"md5": 32, "sha1": 40, "sha224": 56, "sha256": 64, "sha384": 96, "sha512": 128}


class _Dumper(yaml.SafeDumper if HAS_YAML else object):  # type: ignore[misc]
    """Block-style YAML with multi-line strings as literal blocks (readable ConfigMaps)."""


def _str_presenter(dumper: Any, data: str) -> Any:
    style = "|" if "\n" in data else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", data, style=style)


if HAS_YAML:
    _Dumper.add_representer(str, _str_presenter)


def to_yaml(data: Any) -> str:
    return yaml.dump(data, Dumper=_Dumper, sort_keys=False, default_flow_style=False, width=120)


def slug(value: str) -> str:
    return re.sub(r"[^a-z0-9.-]+", "-", value.lower()).strip("-")


def plan_files(
    manifests: list[dict[str, Any]],
    releases: list[dict[str, Any]],
    secrets: list[dict[str, Any]],
    remote: list[dict[str, Any]] | None = None,
) -> dict[str, str]:
    """Maps each bundle file (relative path) to its content, in apply order."""
    files: dict[str, str] = {}
    remote = remote or []
    if remote:
        files["remote.yaml"] = HEADER + to_yaml(
            {
                "description": "Upstream release manifests applied as published, before the "
                "objects of this bundle (CRDs first; apply server-side). URLs are also in "
                "kustomization.yaml; local paths are not (apply them first yourself). Kept on "
                "removal: deleting a CRD deletes every object of its kinds.",
                "manifests": [
                    {k: r[k] for k in ("name", "url", "checksum") if r.get(k)} for r in remote
                ],
            }
        )
    width = max(2, len(str(len(manifests))))
    names = []
    for index, obj in enumerate(manifests, start=1):
        meta = obj.get("metadata") or {}
        name = "{:0{w}d}-{}-{}.yaml".format(
            index, slug(obj.get("kind", "object")), slug(meta.get("name", "unnamed")), w=width
        )
        files[name] = HEADER + to_yaml(obj)
        names.append(name)
    for release in releases:
        spec = {key: value for key, value in release.items() if key != "values"}
        base = "helm/{}".format(slug(release["name"]))
        files[base + "/release.yaml"] = HEADER + to_yaml(spec)
        files[base + "/values.yaml"] = HEADER + to_yaml(release.get("values") or {})
    if secrets:
        files["secrets.required.yaml"] = HEADER + to_yaml(
            {
                "description": "Secrets that must exist before these manifests are applied. "
                "Values are never rendered: create them from Vault or your secret manager.",
                "secrets": [
                    {
                        "name": s["name"],
                        "namespace": s["namespace"],
                        "keys": s.get("keys") or [],
                        "source": s.get("source", "existing"),
                    }
                    for s in secrets
                ],
            }
        )
    urls = [r["url"] for r in remote if r["url"].startswith(("https://", "http://"))]
    if names or urls:
        files["kustomization.yaml"] = HEADER + to_yaml(
            {
                "apiVersion": "kustomize.config.k8s.io/v1beta1",
                "kind": "Kustomization",
                "resources": urls + names,
            }
        )
    return files


def owned_content(own: Ownership) -> dict[str, str]:
    """The content of the files of the bundle that exist (only files this module owns)."""
    found: dict[str, str] = {}
    for name in own.present():
        with open(own.path(name), encoding="utf-8", errors="replace") as handle:
            found[name] = handle.read()
    return found


def validate_releases(releases: list[dict[str, Any]]) -> list[dict[str, str]]:
    errors = []
    for release in releases:
        message = None
        if not PINNED_VERSION.match(str(release.get("version", ""))):
            message = "chart version {!r} is not pinned (expected MAJOR.MINOR.PATCH)".format(
                release.get("version")
            )
        chart = release["chart"]
        local = chart.startswith(("/", "./", "../")) or chart.endswith(".tgz")
        if not message and not (chart.startswith("oci://") or local or release.get("repo_url")):
            message = f"chart {chart!r} needs repo_url (or an oci:// or local chart)"
        if message:
            errors.append(
                {
                    "file": "helm/{}/release.yaml".format(slug(release["name"])),
                    "object": "HelmRelease/{}".format(release["name"]),
                    "error": message,
                }
            )
    return errors


def _valid_checksum(checksum: str) -> bool:
    algorithm, _sep, digest = checksum.partition(":")
    length = DIGEST_LENGTH.get(algorithm)
    return (
        length is not None
        and len(digest) == length
        and re.fullmatch(r"[0-9a-fA-F]+", digest) is not None
    )


def validate_remote(remote: list[dict[str, Any]]) -> list[dict[str, str]]:
    errors = []
    seen: set[str] = set()
    for item in remote:
        name, url, checksum = item["name"], item["url"], item.get("checksum")
        message = None
        if not re.match(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", name):
            message = f"name {name!r} must be lower-case letters, digits and '-'"
        elif name in seen:
            message = f"name {name!r} is used twice"
        elif not (url.startswith(("https://", "http://")) or os.path.isabs(url)):
            message = f"url {url!r} must be an http(s) URL or an absolute path"
        elif checksum and not _valid_checksum(checksum):
            message = (
                f"checksum {checksum!r} must be <algorithm>:<hex digest>, such as sha256:<64 hex>"
            )
        elif url.startswith("http://") and not checksum:
            message = f"url {url!r} is plain http: give a checksum (or use https)"
        elif FLOATING_REF.search(url) and not checksum:
            message = f"url {url!r} follows a branch; pin a release version or give a checksum"
        elif not PINNED_URL.search(url) and not checksum:
            message = f"url {url!r} carries no version; pin a release version or give a checksum"
        seen.add(name)
        if message:
            errors.append(
                {"file": "remote.yaml", "object": f"RemoteManifest/{name}", "error": message}
            )
    return errors


def adopted_warning(own: Ownership) -> str:
    return (
        f"{own.dest}: no {MARKER}; adopted {len(own.adopted)} file(s) that an earlier version "
        f"of this module wrote (named like bundle files, starting with its header); "
        f"{len(own.unmanaged)} other file(s) are left alone; the new marker lists the adopted ones."
    )


def absent(module: AnsibleModule, own: Ownership, result: dict[str, Any]) -> dict[str, Any]:
    """Remove the files this module owns, then dest if nothing else is left in it."""
    present = own.present()
    result["changed_files"] = present
    result["unmanaged_files"] = [printable(name) for name in own.unmanaged]
    # An empty directory without a marker is not known to be ours: left as it is.
    result["changed"] = bool(present or own.marker is not None or own.leftovers)
    if own.adopted:
        module.warn(adopted_warning(own))
    if own.unmanaged and result["changed"]:
        module.warn(
            "{}: kept {} file(s) this module did not write (and so the directory): {}".format(
                own.dest, len(own.unmanaged), ", ".join(result["unmanaged_files"][:10])
            )
        )
    if result["changed"] and module._diff:
        result["diff"] = {"before": {"files": present}, "after": {"files": []}}
    if result["changed"] and not module.check_mode:
        remove_bundle(own)
    return result


def run(module: AnsibleModule) -> dict[str, Any]:
    params = module.params
    dest = os.path.abspath(params["dest"])
    result: dict[str, Any] = {
        "changed": False,
        "dest": dest,
        "files": [],
        "changed_files": [],
        "unmanaged_files": [],
        "objects": 0,
        "releases": 0,
        "remote_manifests": 0,
        "kinds": {},
    }
    try:
        own = inspect_dest(dest, HEADER)
    except BundleError as exc:
        module.fail_json(msg=str(exc), **result)
    if params["state"] == "absent":
        return absent(module, own, result)

    manifests = params["manifests"]
    releases = params["helm_releases"]
    remote = params["remote_manifests"]
    planned = plan_files(manifests, releases, params["secrets"], remote)
    manifest_files = [name for name in planned if re.match(r"^\d+-", name)]

    errors = validate_remote(remote) + validate_releases(releases)
    # Plain-text secrets are refused whether or not the schemas are checked.
    for filename, obj in zip(manifest_files, manifests, strict=False):
        for message in plain_text_secrets(obj):
            errors.append(
                {"file": os.path.join(dest, filename), "object": object_ref(obj), "error": message}
            )
    if params["validate"]:
        try:
            validator = ManifestValidator(params["kubernetes_version"], strict=params["strict"])
        except ValueError as exc:
            module.fail_json(msg=to_native(exc))
        result["kubernetes_version"] = validator.version
        for filename, obj in zip(manifest_files, manifests, strict=False):
            for message in validator.validate(obj):
                errors.append(
                    {
                        "file": os.path.join(dest, filename),
                        "object": object_ref(obj),
                        "error": message,
                    }
                )
    if errors:
        lines = ["{} [{}]: {}".format(e["file"], e["object"], e["error"]) for e in errors]
        module.fail_json(
            msg="{} invalid object(s), nothing written:\n{}".format(len(errors), "\n".join(lines)),
            errors=errors,
            **result,
        )
    clash = [name for name in planned if name in own.unmanaged]
    if clash:
        module.fail_json(
            msg="{}: file(s) this module did not write are in the way of the bundle, nothing "
            "written: {} (move them away, or use another dest)".format(dest, ", ".join(clash)),
            **result,
        )

    before = owned_content(own)
    kinds: dict[str, int] = {}
    for obj in manifests:
        kinds[obj["kind"]] = kinds.get(obj["kind"], 0) + 1
    changed = [name for name, content in planned.items() if before.get(name) != content]
    stale = sorted(set(before) - set(planned)) if params["prune"] else []
    # Owned from now on: the bundle, plus the earlier files that were not pruned.
    owned = set(planned) | (set(before) - set(stale))
    marker = own.marker_for(owned)
    # No marker is needed (nor a directory created) for an empty bundle nobody owned before.
    marker_changes = own.marker != marker and (own.marker is not None or bool(owned))
    if own.adopted:
        module.warn(adopted_warning(own))
    result.update(
        files=list(planned),
        unmanaged_files=[printable(name) for name in own.unmanaged],
        objects=len(manifests),
        releases=len(releases),
        remote_manifests=len(remote),
        kinds=kinds,
        changed_files=changed + stale,
        changed=bool(changed or stale or marker_changes),
    )
    if module._diff and result["changed"]:
        result["diff"] = [
            {
                "before_header": os.path.join(dest, name),
                "after_header": os.path.join(dest, name),
                "before": before.get(name, ""),
                "after": planned.get(name, ""),
            }
            for name in changed + stale
        ]
        if marker_changes:
            result["diff"].append(
                {
                    "before_header": os.path.join(dest, MARKER),
                    "after_header": os.path.join(dest, MARKER),
                    "before": json.dumps(own.marker, indent=2) + "\n" if own.marker else "",
                    "after": json.dumps(marker, indent=2) + "\n",
                }
            )
    if module.check_mode:
        return result

    # Claim the new files before writing them, so an interrupted run leaves none unowned.
    if not own.owned >= set(planned):
        write_marker(own, own.owned | owned)
    for name in changed:
        path = os.path.join(dest, name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        # Write then rename, so an interrupted run never leaves a truncated manifest.
        tmp = path + ".tmp"
        with open(tmp, "w", encoding="utf-8") as handle:
            handle.write(planned[name])
        os.replace(tmp, path)
    remove_owned(own, stale)
    if marker_changes:
        write_marker(own, owned)
    return result


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "dest": {"type": "path", "required": True},
            "manifests": {"type": "list", "elements": "dict", "default": []},
            "helm_releases": {
                "type": "list",
                "elements": "dict",
                "default": [],
                "options": {
                    "name": {"type": "str", "required": True},
                    "namespace": {"type": "str", "required": True},
                    "chart": {"type": "str", "required": True},
                    "version": {"type": "str", "required": True},
                    "repo_url": {"type": "str"},
                    "values": {"type": "dict", "default": {}},
                    "create_namespace": {"type": "bool", "default": True},
                    "wait": {"type": "bool", "default": True},
                    "timeout": {"type": "str", "default": "10m"},
                },
            },
            "remote_manifests": {
                "type": "list",
                "elements": "dict",
                "default": [],
                "options": {
                    "name": {"type": "str", "required": True},
                    "url": {"type": "str", "required": True},
                    "checksum": {"type": "str"},
                },
            },
            "secrets": {
                "type": "list",
                "elements": "dict",
                "default": [],
                "no_log": False,
                "options": {
                    "name": {"type": "str", "required": True},
                    "namespace": {"type": "str", "required": True},
                    "keys": {"type": "list", "elements": "str", "default": [], "no_log": False},
                    "source": {
                        "type": "str",
                        "choices": ["vault", "existing"],
                        "default": "existing",
                    },
                },
            },
            "prune": {"type": "bool", "default": True},
            "state": {"type": "str", "choices": ["present", "absent"], "default": "present"},
            "kubernetes_version": {"type": "str", "default": "1.31"},
            "validate": {"type": "bool", "default": True},
            "strict": {"type": "bool", "default": True},
        },
        supports_check_mode=True,
    )
    if not HAS_YAML:
        module.fail_json(msg=missing_required_lib("PyYAML"))
    if module.params["validate"] and not HAS_KUBERNETES_VALIDATE:
        module.fail_json(
            msg=missing_required_lib("kubernetes-validate"),
            exception=to_native(KUBERNETES_VALIDATE_IMPORT_ERROR),
        )
    module.exit_json(**run(module))


if __name__ == "__main__":
    main()
