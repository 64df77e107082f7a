"""The AWX objects as code (playbooks/vars/awx.yml, registered by playbooks/awx.yml): surveys
valid by AWX's rules and equal to the role defaults, credential types that inject only their
inputs and keep secrets secret, registrations that match the awx.awx modules' options, and the
templates' playbooks run through ansible-runner (the engine AWX uses) as AWX launches them."""

from __future__ import annotations

import json
import re
import ssl
import subprocess
import sys
from functools import cache
from pathlib import Path
from typing import Any

import jinja2
import jinja2.meta
import pytest
import yaml
from ansible.module_utils.common.validation import check_type_dict

from tests.conftest import BIN, REPO, ansible_env, run_playbook
from tests.deploy.awx_model import load_model, render_injectors, survey_answers
from tests.tls import self_signed

MODEL = load_model()
TEMPLATES = {jt["name"]: jt for jt in MODEL["awx_job_templates"]}
# Every setting's argument spec: the global ones (roles/globals) and those of the component
# roles (a survey may set a component's own setting, e.g. the agentic benchmarks').
SPEC = {
    name: option
    for path in sorted((REPO / "roles").glob("*/meta/argument_specs.yml"))
    for name, option in yaml.safe_load(path.read_text())["argument_specs"]["main"][
        "options"
    ].items()
}
ROLE_DEFAULTS = {
    name: path
    for path in sorted((REPO / "roles").glob("*/defaults/main.yml"))
    if "roles/globals/" not in path.as_posix()
    for name in yaml.safe_load(path.read_text()) or {}
}
CATALOGUE = yaml.safe_load((REPO / "playbooks/vars/architectures.yml").read_text())[
    "aistack_component_catalog"
]
LAYERS = list(dict.fromkeys(entry["layer"] for entry in CATALOGUE.values()))

# AWX's survey question schema (awx/api/views: JobTemplateSurveySpec._validate_spec_data).
SURVEY_TYPES = {"text", "textarea", "password", "integer", "float", "multiplechoice", "multiselect"}
SURVEY_KEYS = {
    "question_name",
    "question_description",
    "variable",
    "type",
    "required",
    "default",
    "choices",
    "min",
    "max",
    "new_question",
}
# Input field schema of a custom credential type (awx/main/fields.py: CredentialTypeInputField).
FIELD_KEYS = {
    "id",
    "label",
    "type",
    "secret",
    "help_text",
    "multiline",
    "format",
    "choices",
    "ask_at_runtime",
}
BUILTIN_CREDENTIAL_TYPES = {"OpenShift or Kubernetes API Bearer Token", "Container Registry"}


def all_questions() -> list[tuple[str, dict[str, Any]]]:
    return [(jt["name"], q) for jt in MODEL["awx_job_templates"] for q in jt["survey"]]


QUESTION_IDS = [f"{name}:{q['variable']}" for name, q in all_questions()]


# --- (a) survey schemas ----------------------------------------------------------------------


@pytest.mark.parametrize(("template", "question"), all_questions(), ids=QUESTION_IDS)
def test_survey_question_follows_awx_rules(template: str, question: dict[str, Any]) -> None:
    assert set(question) <= SURVEY_KEYS, set(question) - SURVEY_KEYS
    assert question["question_name"] and question["type"] in SURVEY_TYPES
    assert re.fullmatch(r"[a-z_][a-z0-9_]*", question["variable"])
    assert isinstance(question["required"], bool)
    default = question.get("default", "")
    kind = question["type"]
    if kind in {"multiplechoice", "multiselect"}:
        choices = question["choices"]
        assert (
            choices
            and len(set(choices)) == len(choices)
            and all(isinstance(c, str) for c in choices)
        )
        picked = [d for d in str(default).split("\n") if d] if kind == "multiselect" else [default]
        assert set(picked) <= set(choices) or (not question["required"] and default == "")
        assert "min" not in question and "max" not in question
    elif kind in {"integer", "float"}:
        typ = int if kind == "integer" else (int, float)
        assert isinstance(default, typ) and not isinstance(default, bool)
        assert isinstance(question["min"], typ) and isinstance(question["max"], typ)
        assert question["min"] <= default <= question["max"]
    else:
        assert isinstance(default, str)
        lo, hi = question.get("min", 0), question.get("max", 1024)
        # A required text without a default is asked at launch (the teardown confirmation).
        assert lo <= len(default) <= hi or (question["required"] and default == "")


@pytest.mark.parametrize("template", TEMPLATES.values(), ids=list(TEMPLATES))
def test_survey_variables_are_unique_and_not_set_elsewhere(template: dict[str, Any]) -> None:
    variables = [q["variable"] for q in template["survey"]]
    assert len(set(variables)) == len(variables)
    # A survey answer must not fight the template's fixed extra vars or a credential's injection.
    injected = {
        var
        for ct in MODEL["awx_credential_types"]
        for var in ct["injectors"].get("extra_vars", {})
        if ct["name"]
        in {MODEL["awx_credential_kinds"][k]["credential_type"] for k in template["credentials"]}
    }
    assert not set(variables) & (set(template.get("extra_vars", {})) | injected)


def inventory_set_variables() -> dict[str, set[str]]:
    """Variables each registered inventory sets (hosts.yml, group_vars, host_vars)."""
    found: dict[str, set[str]] = {}
    for inv in MODEL["awx_inventories"]:
        root = (REPO / inv["source_path"]).parent
        names: set[str] = set()
        for path in root.rglob("*.yml"):
            names |= set(
                re.findall(r"^\s*(aistack_[a-z0-9_]+)\s*:", path.read_text(), re.MULTILINE)
            )
        found[inv["name"]] = names
    return found


def test_no_survey_variable_overrides_an_inventory_setting() -> None:
    # Survey answers are extra vars: a default there would silently beat the inventory.
    per_inventory = inventory_set_variables()
    for name, question in all_questions():
        for inv, names in per_inventory.items():
            assert question["variable"] not in names, (
                f"{name}: {question['variable']} is set by {inv}"
            )


def reachable_sources(playbook: str) -> list[Path]:
    """The files a template's playbook reads: itself, what it imports or includes, and the roles
    it reaches (every catalogue role and the deploy role where it includes components by name)."""
    todo, seen = [REPO / playbook], []
    while todo:
        path = todo.pop()
        if path in seen or not path.is_file():
            continue
        seen.append(path)
        text = path.read_text()
        for target in re.findall(r"(?:import_playbook|include_tasks):\s*(\S+\.yml)", text):
            todo.append((path.parent / target).resolve())
        if "aistack.platform.{{ item }}" in text:
            for role in [*CATALOGUE, "deploy"]:
                if (REPO / "roles" / role).is_dir():
                    seen += [
                        p for p in (REPO / "roles" / role).rglob("*") if p.suffix in {".yml", ".j2"}
                    ]
    return [p for p in seen if "roles/globals/" not in p.as_posix()]


@pytest.mark.parametrize("template", TEMPLATES.values(), ids=list(TEMPLATES))
def test_survey_variables_are_read_by_the_playbook(template: dict[str, Any]) -> None:
    text = "\n".join(p.read_text() for p in reachable_sources(template["playbook"]))
    for question in template["survey"]:
        assert re.search(rf"\b{question['variable']}\b", text), (
            template["name"],
            question["variable"],
        )


def test_layer_choices_are_the_catalogue_layers() -> None:
    for name, question in all_questions():
        if question["variable"] == "aistack_deploy_only":
            assert question["choices"] == LAYERS, name


# --- (b) survey defaults are the role defaults --------------------------------------------------


@pytest.fixture(scope="module")
def resolved_globals(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Each surveyed setting's default as Ansible resolves it (roles/globals and the component
    roles' defaults, templates applied)."""
    names = sorted({q["variable"] for _, q in all_questions()})
    role_defaults = sorted({str(ROLE_DEFAULTS[n]) for n in names if n in ROLE_DEFAULTS})
    out = tmp_path_factory.mktemp("globals") / "values.json"
    play = out.parent / "resolve.yml"
    play.write_text(
        yaml.safe_dump(
            [
                {
                    "hosts": "localhost",
                    "connection": "local",
                    "gather_facts": False,
                    "roles": ["aistack.platform.globals"],
                    "vars_files": role_defaults,
                    "tasks": [
                        {
                            "ansible.builtin.copy": {
                                "dest": str(out),
                                "content": "{{ {"
                                + ", ".join(f"'{n}': {n}" for n in names)
                                + "} | to_json }}",
                                "mode": "0600",
                            }
                        }
                    ],
                }
            ]
        )
    )
    proc = run_playbook(str(play))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return json.loads(out.read_text())


SPEC_TYPES = {
    "integer": {"int"},
    "float": {"float"},
    "multiselect": {"list"},
    "multiplechoice": {"str", "bool"},
    "text": {"str", "raw"},
}


@pytest.mark.parametrize(("template", "question"), all_questions(), ids=QUESTION_IDS)
def test_survey_default_is_the_role_default(
    template: str, question: dict[str, Any], resolved_globals: dict[str, Any]
) -> None:
    var = question["variable"]
    spec = SPEC[var]
    assert spec["type"] in SPEC_TYPES[question["type"]], (var, spec["type"], question["type"])
    if question["type"] == "multiplechoice" and spec["type"] == "str":
        assert question["choices"] == spec["choices"], var
    if spec["type"] == "bool":
        assert sorted(question["choices"]) == ["false", "true"], var
    if question.get("required") and question.get("default", "") == "":
        return  # asked at launch (the teardown confirmation); the role default skips the check
    answer = survey_answers([question])[var]
    role_default = resolved_globals[var]
    if spec["type"] == "bool":
        assert (answer == "true") is role_default, var
    elif spec["type"] == "raw":  # a dict setting asked as key=value pairs (the SLO)
        assert (check_type_dict(answer) if answer else {}) == role_default, var
    else:
        assert answer == role_default, (var, answer, role_default)
    if "default" in spec:  # the argument spec documents the same default
        assert spec["default"] == role_default or (
            spec["type"] == "float" and float(spec["default"]) == role_default
        )


def test_benchmark_slo_answer_reaches_the_module_as_a_dict() -> None:
    # The SLO survey answer is a string; the module's dict option parses key=value pairs.
    assert check_type_dict("ttft_p95_ms=500, error_rate=0.01") == {
        "ttft_p95_ms": "500",
        "error_rate": "0.01",
    }


# --- (c) credential types ---------------------------------------------------------------------


def env_read_by_modules() -> set[str]:
    """The environment variables the collection's modules fall back to (their argument specs)."""
    names: set[str] = set()
    for path in sorted((REPO / "plugins/modules").glob("*.py")):
        names |= set(re.findall(r"env_fallback, \[([^\]]*)\]", path.read_text()))
    return {n.strip().strip('"') for group in names for n in group.split(",") if n.strip()}


@pytest.mark.parametrize("ctype", MODEL["awx_credential_types"], ids=lambda c: c["name"])
def test_credential_type_injects_only_its_inputs_and_keeps_secrets(
    ctype: dict[str, Any], tmp_path: Path
) -> None:
    assert ctype["kind"] in {"cloud", "net"}
    fields = ctype["inputs"]["fields"]
    ids = {f["id"] for f in fields}
    assert len(ids) == len(fields)
    for field in fields:
        assert set(field) <= FIELD_KEYS and field["type"] in {"string", "boolean"}
        if re.search(r"key|token|password|secret", field["id"]) and field["id"] != "access_key":
            assert field.get("secret") is True, field["id"]
    assert set(ctype["inputs"].get("required", [])) <= ids
    injectors = ctype["injectors"]
    assert set(injectors) <= {"env", "extra_vars", "file"} and set(injectors) - {"file"}
    env = jinja2.Environment(autoescape=False)
    secret_ids = {f["id"] for f in fields if f.get("secret")}
    # A file injector (AWX writes it for the job) is read through tower.filename only.
    assert set(injectors.get("file", {})) <= {"template"}
    for target, template in injectors.get("file", {}).items():
        used = jinja2.meta.find_undeclared_variables(env.parse(template))
        assert used and used <= ids and not used & secret_ids, (target, used)
    names = ids | ({"tower"} if "file" in injectors else set())
    for target, template in injectors.get("extra_vars", {}).items():
        used = jinja2.meta.find_undeclared_variables(env.parse(template))
        assert used and used <= names, (target, used)
        # Injected into a setting the playbooks read; a secret only into a no_log setting.
        assert target in SPEC, target
        if used & secret_ids:
            assert SPEC[target].get("no_log") is True, target
    # Injected into the environment: only variables a module reads (its secret options no_log).
    for target, template in injectors.get("env", {}).items():
        used = jinja2.meta.find_undeclared_variables(env.parse(template))
        assert used and used <= ids and target in env_read_by_modules(), (target, used)
    # Rendered as AWX renders it, with and without the optional inputs: every input reaches the
    # job (a file's content through the file the setting names), nothing else does.
    full = {f["id"]: f"test-{f['id']}" for f in fields}
    rendered = render_injectors(ctype, full, tmp_path / "full")
    values = set(rendered.get("extra_vars", {}).values()) | set(rendered.get("env", {}).values())
    files = {path: Path(path).read_text() for path in rendered.get("file", {}).values()}
    assert values - set(files) | set(files.values()) == set(full.values())
    required = {k: v for k, v in full.items() if k in ctype["inputs"]["required"]}
    minimal = render_injectors(ctype, required, tmp_path / "minimal")
    minimal_values = [*minimal.get("extra_vars", {}).values(), *minimal.get("env", {}).values()]
    assert all(v in set(required.values()) | {""} for v in minimal_values), minimal


def test_qdrant_ca_reaches_the_module_as_a_file(tmp_path: Path) -> None:
    """The Qdrant credential's CA: AWX writes it to a file of the job, aistack_qdrant_ca_cert
    names that file, and playbooks/collections.yml gives it to qdrant_collection (ca_cert), whose
    connection verifies the server against it; without a CA the setting stays empty."""
    ctype = next(ct for ct in MODEL["awx_credential_types"] if ct["name"] == "aistack Qdrant")
    pem = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
    inputs = {"url": "https://qdrant.example.com:6333", "api_key": "k", "ca_cert": pem}
    rendered = render_injectors(ctype, inputs, tmp_path)
    ca_file = rendered["extra_vars"]["aistack_qdrant_ca_cert"]
    assert ca_file == rendered["file"]["template"] and Path(ca_file).read_text() == pem
    assert (
        render_injectors(ctype, {"url": inputs["url"]}, tmp_path)["extra_vars"][
            "aistack_qdrant_ca_cert"
        ]
        == ""
    )
    play = yaml.safe_load((REPO / "playbooks/collections.yml").read_text())[0]
    module = next(t for t in play["tasks"] if "aistack.platform.qdrant_collection" in t)
    assert module["aistack.platform.qdrant_collection"]["ca_cert"] == (
        "{{ aistack_qdrant_ca_cert or omit }}"
    )
    from ansible_collections.aistack.platform.plugins.module_utils.qdrant import client_kwargs

    # A real CA file: the client's TLS context trusts it (a bogus PEM is refused outright).
    cert, _key = self_signed(tmp_path / "ca", "aistack test CA", ip=None)
    kwargs = client_kwargs({"url": inputs["url"], "ca_cert": str(cert)})
    assert kwargs["https"] is True and kwargs["verify"].get_ca_certs()
    with pytest.raises(ssl.SSLError):
        client_kwargs({"url": inputs["url"], "ca_cert": ca_file})


def test_credential_kinds_name_registered_or_builtin_types() -> None:
    custom = {ct["name"] for ct in MODEL["awx_credential_types"]}
    for kind in MODEL["awx_credential_kinds"].values():
        assert kind["credential_type"] in custom | BUILTIN_CREDENTIAL_TYPES
    for jt in MODEL["awx_job_templates"]:
        assert set(jt["credentials"]) <= set(MODEL["awx_credential_kinds"]) - {"registry"}, jt[
            "name"
        ]


# --- (e) the registrations and the awx.awx modules --------------------------------------------


AWX_MODULES = [
    "awx.awx.credential_type",
    "awx.awx.credential",
    "awx.awx.execution_environment",
    "awx.awx.project",
    "awx.awx.inventory",
    "awx.awx.inventory_source",
    "awx.awx.job_template",
    "awx.awx.workflow_job_template",
    "awx.awx.workflow_job_template_node",
]


@cache
def awx_docs() -> dict[str, Any]:
    """The options of the awx.awx modules, from the collection bundled with the pinned ansible."""
    proc = subprocess.run(
        [str(BIN / "ansible-doc"), "-j", *AWX_MODULES],
        env=ansible_env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return json.loads(proc.stdout)


def awx_options(module: str) -> dict[str, Any]:
    return awx_docs()[module]["doc"]["options"]


AWX_TASKS = [
    task
    for task in yaml.safe_load((REPO / "playbooks/awx.yml").read_text())[0]["tasks"]
    if any(k.startswith("awx.awx.") for k in task)
]


@pytest.mark.parametrize("task", AWX_TASKS, ids=lambda t: t["name"])
def test_registration_uses_only_known_module_options(task: dict[str, Any]) -> None:
    module = next(k for k in task if k.startswith("awx.awx."))
    assert set(task[module]) <= set(awx_options(module)), set(task[module]) - set(
        awx_options(module)
    )


def test_every_model_key_is_registered() -> None:
    """Each key of the model's job templates, credential types and workflow nodes is passed to
    an awx.awx option (nothing in the model is silently dropped)."""
    text = (REPO / "playbooks/awx.yml").read_text()
    for collection in ("awx_job_templates", "awx_credential_types", "awx_inventories"):
        for item in MODEL[collection]:
            for key in item:
                assert f"item.{key}" in text, (collection, key)
    node_options = set(awx_options("awx.awx.workflow_job_template_node"))
    identifiers = {n["identifier"] for n in MODEL["awx_workflow"]["nodes"]}
    for node in MODEL["awx_workflow"]["nodes"]:
        for key in node:
            assert key in node_options | {"job_template"} and f"item.{key}" in text, key
        for link in ("success_nodes", "failure_nodes", "always_nodes"):
            assert set(node.get(link, [])) <= identifiers
        assert ("job_template" in node) != ("approval_node" in node)
        if "job_template" in node:
            assert node["job_template"] in TEMPLATES
        else:
            approval = awx_options("awx.awx.workflow_job_template_node")["approval_node"][
                "suboptions"
            ]
            assert set(node["approval_node"]) <= set(approval)
    for key in MODEL["awx_workflow"]:
        assert key == "nodes" or f"awx_workflow.{key}" in text, key
    wf_options = set(awx_options("awx.awx.workflow_job_template"))
    assert set(MODEL["awx_workflow"]) - {"nodes"} <= wf_options
    jt_options = set(awx_options("awx.awx.job_template"))
    for jt in MODEL["awx_job_templates"]:
        assert set(jt) - {"survey"} <= jt_options, set(jt) - jt_options
        assert jt["inventory"] in {i["name"] for i in MODEL["awx_inventories"]}
        assert (REPO / jt["playbook"]).is_file()


def test_workflow_chain_and_slo_branch() -> None:
    nodes = {n["identifier"]: n for n in MODEL["awx_workflow"]["nodes"]}
    chain = [nodes[i]["job_template"] for i in ("deploy", "collection", "ingest", "benchmark")]
    assert chain == [
        "aistack - Deploy stack",
        "aistack - Create collection",
        "aistack - Ingest documents",
        "aistack - Run benchmark",
    ]
    assert all("approval_node" in nodes[i] for i in nodes["benchmark"]["failure_nodes"])
    # The branch follows the benchmark job's outcome, which follows its published verdict.
    text = (REPO / "playbooks/benchmark.yml").read_text()
    assert text.index("ansible.builtin.set_stats") < text.index("Fail when an SLO is missed")


def test_inventories_of_both_architectures_are_registered() -> None:
    sources = {i["source_path"] for i in MODEL["awx_inventories"]}
    assert sources == {"inventories/single-node/hosts.yml", "inventories/catalyst-lab/hosts.yml"}
    assert all((REPO / s).is_file() for s in sources)


def test_awx_playbook_syntax_and_missing_settings() -> None:
    proc = run_playbook("playbooks/awx.yml", "--syntax-check")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    # No execution environment image: the play stops before it contacts AWX, saying what to set.
    proc = run_playbook(
        "playbooks/awx.yml", "-e", "awx_project_scm_url=https://git.example.com/aistack.git"
    )
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "awx_execution_environment_image to the image you built" in proc.stdout
    assert "Check the project source and the execution environment image" in proc.stdout


def test_readme_survey_table_is_generated_from_the_model() -> None:
    proc = subprocess.run(
        [sys.executable, str(REPO / "scripts/awx-survey-table.py"), "--check"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    readme = (REPO / "README.md").read_text()
    for jt in MODEL["awx_job_templates"]:
        assert f"**{jt['name']}**" in readme


@pytest.fixture(scope="module")
def registrations(tmp_path_factory: pytest.TempPathFactory) -> list[tuple[str, dict[str, Any]]]:
    """The arguments playbooks/awx.yml passes to each awx.awx module, templated by Ansible from
    the model: the same play with each awx.awx call turned into a debug of its arguments (no
    AWX is contacted), with test inputs for every credential kind."""
    play = yaml.safe_load((REPO / "playbooks/awx.yml").read_text())[0]
    play["vars_files"] = [str(REPO / "playbooks" / f) for f in play["vars_files"]]
    modules = []
    for task in play["tasks"]:
        module = next((k for k in task if k.startswith("awx.awx.")), None)
        if module:
            task["ansible.builtin.debug"] = {"msg": task.pop(module)}
            task.pop("no_log", None)  # test inputs only
        modules.append(module)
    path = tmp_path_factory.mktemp("awx-registrations") / "awx.yml"
    path.write_text(yaml.safe_dump([play], sort_keys=False))
    inputs = {
        "kubernetes": {"host": "https://k8s.test:6443", "bearer_token": "t"},
        "qdrant": {"url": "http://q.test", "api_key": "k"},
        "rag": {"endpoint": "http://rag.test", "api_key": "k"},
        "llm": {"base_url": "http://llm.test/v1", "api_key": "k"},
        "registry": {"host": "registry.test", "username": "u", "password": "p"},
        "object_storage": {
            "endpoint_url": "https://minio.test",
            "access_key": "a",
            "secret_key": "s",
        },
    }
    extra = {
        "awx_project_scm_url": "https://git.test/aistack.git",
        "awx_execution_environment_image": "registry.test/aistack/ee:1",
        "awx_credential_inputs": inputs,
    }
    proc = subprocess.run(
        [str(BIN / "ansible-playbook"), str(path), "-e", json.dumps(extra)],
        cwd=REPO,
        env=ansible_env(
            ANSIBLE_LOAD_CALLBACK_PLUGINS="1", ANSIBLE_STDOUT_CALLBACK="ansible.posix.json"
        ),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr
    calls = []
    for module, task in zip(modules, json.loads(proc.stdout)["plays"][0]["tasks"], strict=True):
        result = task["hosts"]["localhost"]
        if module:
            calls += [(module, r["msg"]) for r in result.get("results", [result])]
    return calls


def test_registrations_render_from_the_model(
    registrations: list[tuple[str, dict[str, Any]]],
) -> None:
    by_module: dict[str, list[dict[str, Any]]] = {}
    for module, args in registrations:
        assert set(args) <= set(awx_options(module)), (module, set(args) - set(awx_options(module)))
        by_module.setdefault(module, []).append(args)
    # Injector templates reach AWX untemplated (AWX renders them with the credential's inputs).
    qdrant = next(a for a in by_module["awx.awx.credential_type"] if a["name"] == "aistack Qdrant")
    assert qdrant["injectors"]["extra_vars"]["aistack_qdrant_url"] == "{{ url }}"
    assert len(by_module["awx.awx.credential"]) == len(MODEL["awx_credential_kinds"])
    assert by_module["awx.awx.execution_environment"][0]["credential"] == "aistack EE registry"
    assert {a["source_path"] for a in by_module["awx.awx.inventory_source"]} == {
        i["source_path"] for i in MODEL["awx_inventories"]
    }
    jts = {a["name"]: a for a in by_module["awx.awx.job_template"]}
    assert list(jts) == list(TEMPLATES)
    for name, jt in TEMPLATES.items():
        assert (
            jts[name]["survey_spec"]["spec"] == jt["survey"] and jts[name]["survey_enabled"] is True
        )
        kinds = MODEL["awx_credential_kinds"]
        assert jts[name]["credentials"] == [kinds[k]["name"] for k in jt["credentials"]]
        assert jts[name]["extra_vars"] == jt.get("extra_vars", {})
    nodes = by_module["awx.awx.workflow_job_template_node"]
    # Leaves first: every node a node points to is registered before it.
    order = [n["identifier"] for n in nodes]
    for node in nodes:
        for child in node["success_nodes"] + node["failure_nodes"] + node["always_nodes"]:
            assert order.index(child) < order.index(node["identifier"])
