"""The AWX data model (playbooks/vars/awx.yml) as the tests read it, and what AWX does with it:
survey answers as extra vars, credential injectors rendered as AWX renders them, the inventory
handed to a job as an executable script."""

from __future__ import annotations

import json
import stat
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import yaml
from jinja2.sandbox import ImmutableSandboxedEnvironment

from tests.conftest import BIN, REPO, ansible_env

MODEL_FILE = REPO / "playbooks/vars/awx.yml"


class _Loader(yaml.SafeLoader):
    """Reads Ansible's ``!unsafe`` tag (injector templates AWX renders, not Ansible) as a string."""


_Loader.add_constructor("!unsafe", lambda loader, node: loader.construct_scalar(node))  # type: ignore[arg-type]


def load_model() -> dict[str, Any]:
    return yaml.load(MODEL_FILE.read_text(), Loader=_Loader)


def survey_answers(
    survey: list[dict[str, Any]], answers: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The extra vars AWX passes for a survey: each default (or the given answer) in the type the
    question declares (a multiselect gives a list of the selected choices)."""
    out: dict[str, Any] = {}
    for q in survey:
        value = (answers or {}).get(q["variable"], q.get("default", ""))
        if q["type"] == "multiselect":
            value = [v for v in value.split("\n") if v] if isinstance(value, str) else list(value)
        elif q["type"] == "integer":
            value = int(value)
        elif q["type"] == "float":
            value = float(value)
        else:
            value = str(value)
        out[q["variable"]] = value
    return out


def render_injectors(
    credential_type: dict[str, Any], inputs: dict[str, Any], file_dir: Path | None = None
) -> dict[str, dict[str, str]]:
    """AWX renders each injector value as a Jinja template in a sandbox, with the inputs as its
    context (awx/main/models/credential: CredentialType.inject_credential). A ``file`` injector
    is rendered first and written to a file of the job (in ``file_dir``, a new temporary
    directory by default), whose path the other injectors read as ``tower.filename``."""
    env = ImmutableSandboxedEnvironment()
    context: dict[str, Any] = dict(inputs)
    rendered: dict[str, dict[str, str]] = {}
    files = credential_type.get("injectors", {}).get("file", {})
    if files:
        folder = file_dir or Path(tempfile.mkdtemp(prefix="awx-cred-"))
        folder.mkdir(parents=True, exist_ok=True)
        rendered["file"] = {}
        for key, template in files.items():
            path = folder / f"{credential_type['name'].replace(' ', '-')}-{key}"
            path.write_text(env.from_string(template).render(**context))
            path.chmod(0o600)
            rendered["file"][key] = str(path)
        context["tower"] = {"filename": rendered["file"].get("template", "")}
    for section, values in credential_type.get("injectors", {}).items():
        if section != "file":
            rendered[section] = {k: env.from_string(v).render(**context) for k, v in values.items()}
    return rendered


def inventory_script(source: Path, dest: Path) -> Path:
    """An inventory as AWX hands it to a job: AWX imports the source with ``ansible-inventory
    --list --export`` into its database and gives the job an executable script printing it, in a
    directory of its own (so inventory_dir is not under inventories/)."""
    proc = subprocess.run(
        [str(BIN / "ansible-inventory"), "-i", str(source), "--list", "--export"],
        cwd=REPO,
        env=ansible_env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    data = json.loads(proc.stdout)
    dest.mkdir(parents=True, exist_ok=True)
    script = dest / "hosts"
    script.write_text(
        "#!/usr/bin/env python3\n"
        "import json, sys\n"
        f"DATA = json.loads({json.dumps(json.dumps(data))})\n"
        "print(json.dumps(DATA if '--list' in sys.argv else {}))\n"
    )
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return script


# AWX's built-in "OpenShift or Kubernetes API Bearer Token" type (awx/main/models/credential:
# kubernetes_bearer_token): kubernetes.core reads these variables.
KUBERNETES_INJECTORS = {
    "env": {
        "K8S_AUTH_HOST": "{{ host }}",
        "K8S_AUTH_API_KEY": "{{ bearer_token }}",
        "K8S_AUTH_VERIFY_SSL": "{{ verify_ssl }}",
    }
}
KUBERNETES_TEST_INPUTS = {
    "host": "https://127.0.0.1:6443",
    "bearer_token": "test-bearer-token",
    "verify_ssl": "True",
}


def injected(
    model: dict[str, Any], kinds: list[str], inputs: dict[str, dict[str, Any]]
) -> dict[str, dict[str, str]]:
    """The env and extra vars a job gets from its credentials (one per kind, with these inputs)."""
    by_name = {ct["name"]: ct for ct in model["awx_credential_types"]}
    out: dict[str, dict[str, str]] = {"env": {}, "extra_vars": {}}
    for kind in kinds:
        type_name = model["awx_credential_kinds"][kind]["credential_type"]
        ctype = {"injectors": KUBERNETES_INJECTORS} if kind == "kubernetes" else by_name[type_name]
        for section, values in render_injectors(ctype, inputs[kind]).items():
            if section != "file":  # the file's path reaches the job through the other sections
                out[section].update(values)
    return out
