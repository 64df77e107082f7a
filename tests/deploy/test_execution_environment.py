"""The execution environment AWX runs the playbooks in: the collection's own dependency files
(requirements.txt, bindep.txt, named by meta/execution-environment.yml) cover every import of
its plugins, ansible-builder reads them from the built artifact, and `ansible-builder create`
writes a build context whose Helm download is pinned and checksum-verified per architecture."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.conftest import BIN, REPO, ansible_env

LOCK = REPO / "requirements" / "lock.txt"
INTROSPECT = (
    Path(sys.executable).parents[1]
    / "lib/python3.11/site-packages/ansible_builder/_target_scripts/introspect.py"
)


def collection_requirements() -> dict[str, Requirement]:
    reqs = [
        Requirement(line.strip())
        for line in (REPO / "requirements.txt").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    return {canonicalize_name(r.name): r for r in reqs}


def lock_pins() -> dict[str, str]:
    pins = {}
    for line in LOCK.read_text().splitlines():
        if "==" in line and not line.startswith("#"):
            name, version = line.split("==", 1)
            pins[canonicalize_name(name)] = version.strip()
    return pins


def third_party_imports() -> dict[str, set[str]]:
    """Top-level modules imported anywhere under plugins/ that are neither the standard library
    nor Ansible itself, with the files that import them."""
    found: dict[str, set[str]] = {}
    for path in (REPO / "plugins").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                if top in sys.stdlib_module_names or top in {"ansible", "ansible_collections"}:
                    continue
                found.setdefault(top, set()).add(str(path.relative_to(REPO)))
    return found


# The RAG service's in-process API, used by document_ingest's embedded target only: it runs
# where the service is installed (the embedded default), never in the execution environment.
NOT_IN_EE = {"rag_pipeline"}


def test_every_plugin_import_is_a_collection_requirement() -> None:
    reqs = collection_requirements()
    dists = packages_distributions()
    missing = {}
    for module, files in third_party_imports().items():
        if module in NOT_IN_EE:
            continue
        providers = {canonicalize_name(d) for d in dists.get(module, [])}
        if not providers & reqs.keys():
            missing[module] = sorted(files)
    assert not missing, f"imports not covered by requirements.txt: {missing}"


def test_collection_requirements_admit_the_tested_pins() -> None:
    pins = lock_pins()
    for name, req in collection_requirements().items():
        assert name in pins, f"{name} is in requirements.txt but not in requirements/lock.txt"
        assert req.specifier.contains(pins[name]), f"{req} excludes the tested {name}=={pins[name]}"
        # An upper bound: a new major version is a decision, not an accident of the build date.
        assert any(s.operator in {"<", "<=", "==", "~="} for s in req.specifier), req


def test_galaxy_metadata() -> None:
    galaxy = yaml.safe_load((REPO / "galaxy.yml").read_text())
    for key in ("repository", "documentation", "issues", "homepage"):
        assert galaxy[key].startswith("https://"), key
        assert "example" not in galaxy[key], f"placeholder {key}: {galaxy[key]}"
    requirements = yaml.safe_load((REPO / "collections" / "requirements.yml").read_text())
    bounds = {c["name"]: c["version"] for c in requirements["collections"]}
    # Every declared dependency is used and bounded as collections/requirements.yml says.
    for name, version in galaxy["dependencies"].items():
        assert bounds.get(name) == version, f"{name}: galaxy {version}, requirements {bounds}"
        namespace = name.split(".")[0]
        used = subprocess.run(
            [
                "grep",
                "-rlE",
                rf"\b{re.escape(name)}\.",
                "roles",
                "playbooks",
                "plugins",
                "site.yml",
            ],
            cwd=REPO,
            capture_output=True,
            text=True,
            check=False,
        ).stdout.split()
        assert used, f"{name} declared but no role, playbook or plugin uses it ({namespace})"
    ee_meta = yaml.safe_load((REPO / "meta" / "execution-environment.yml").read_text())
    assert ee_meta["dependencies"] == {"python": "requirements.txt", "system": "bindep.txt"}


@pytest.fixture(scope="module")
def installed_collection(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The built artifact installed into a collections path of its own."""
    out = tmp_path_factory.mktemp("artifact")
    subprocess.run(
        [str(BIN / "ansible-galaxy"), "collection", "build", "--output-path", str(out), "."],
        cwd=REPO,
        env=ansible_env(),
        capture_output=True,
        text=True,
        check=True,
    )
    root = out / "installed"
    env = {k: v for k, v in ansible_env().items() if k != "ANSIBLE_CONFIG"}
    subprocess.run(
        [
            *(str(BIN / "ansible-galaxy"), "collection", "install", "--offline", "--no-deps"),
            *("-p", str(root), str(next(out.glob("aistack-platform-*.tar.gz")))),
        ],
        cwd=out,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return root


def test_ansible_builder_reads_the_artifacts_dependencies(
    installed_collection: Path, tmp_path: Path
) -> None:
    pip_out, bindep_out = tmp_path / "pip.txt", tmp_path / "bindep.txt"
    subprocess.run(
        [
            *(sys.executable, str(INTROSPECT), "introspect", str(installed_collection)),
            *("--write-pip", str(pip_out), "--write-bindep", str(bindep_out)),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    pip_lines = pip_out.read_text()
    # ansible-builder drops PyYAML (ansible-core brings it) and a few test tools by design.
    for name in collection_requirements().keys() - {"pyyaml"}:
        assert re.search(
            rf"^{name}\b.*# from collection aistack\.platform", pip_lines, re.M | re.I
        ), f"{name} not introspected:\n{pip_lines}"
    assert re.search(r"^git .*# from collection aistack\.platform", bindep_out.read_text(), re.M)


def test_ansible_builder_create_build_context(tmp_path: Path) -> None:
    context = tmp_path / "context"
    subprocess.run(
        [str(BIN / "ansible-builder"), "create", "-f", "execution-environment.yml", "-c", context],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    )
    build = context / "_build"
    assert (build / "requirements.txt").read_text() == (REPO / "requirements.txt").read_text()
    assert (build / "bindep.txt").read_text() == (REPO / "bindep.txt").read_text()
    assert yaml.safe_load((build / "requirements.yml").read_text()) == yaml.safe_load(
        (REPO / "collections" / "requirements.yml").read_text()
    )
    containerfile = next(p for p in context.iterdir() if p.name in {"Containerfile", "Dockerfile"})
    text = containerfile.read_text()
    # Every stage starts from the base image pinned by digest, never by a movable tag alone.
    bases = set(re.findall(r"^ARG EE_BASE_IMAGE=\"?([^\"\s]+)", text, re.M))
    assert bases and all(re.search(r"@sha256:[0-9a-f]{64}$", b) for b in bases), bases
    run = next(line for line in text.splitlines() if "get.helm.sh" in line)
    sums = dict(re.findall(r"(\w+)\) helm_sha256=([0-9a-f]+) ;;", run))
    assert set(sums) == {"amd64", "arm64"}, run
    assert all(len(s) == 64 for s in sums.values()), sums
    assert "sha256sum --check --strict" in run and "exit 1" in run
    # The download is verified before anything of it is used.
    assert run.index("sha256sum") < run.index("tar -xzf") < run.index("helm version")
    assert re.search(r"^ARG HELM_VERSION=v\d+\.\d+\.\d+$", text, re.M)
    assert (
        "ansible-core==2.19.14" in text
        or "ansible-core==2.19.14" in (build / "requirements.txt").read_text() + text
    )
