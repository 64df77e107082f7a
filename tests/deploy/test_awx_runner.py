"""Each job template's playbook run as AWX runs it: through ansible-runner (AWX's engine) with a
private data dir built from the template definition (playbooks/vars/awx.yml): the survey
answers (defaults unless stated) and the template's extra vars as extravars, the credentials'
injected extra vars and environment (test values), the inventory as the executable script AWX
hands a job, and the project checkout as the working directory.

Render only runs with every survey default on single-node; Deploy stack (in render mode: the
inventories say apply, and no cluster is here) renders the data layer of catalyst-lab; Teardown
(render mode) removes the data layer of the bundle Render only wrote; Run benchmark runs with
every default against guidellm mock-server, and again with an SLO it must miss; Run agentic
benchmark renders its Jobs alone (catalyst-lab, render mode) with survey answers; Create
collection and Ingest documents run with every survey default against the embedded default's
real RAG service (embedded Qdrant; in place of the Qdrant credential's server URL, which no
server here answers, the collection goes into embedded Qdrant through aistack_qdrant_path).

Every run writes under a temporary output directory (aistack_build_root, the user-chosen
output location of a job; a PVC in AWX) and never prints a credential's secret. Deploy stack
also pushes its bundle to Git and uploads it to S3-compatible object storage (a real S3 API,
moto_server from .venv-s3, signatures checked), and the benchmark that misses its SLO uploads
its reports there: the artifacts say where the files went."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import urllib.request
from pathlib import Path
from typing import Any

import ansible_runner
import pytest
import yaml

from tests.conftest import BIN, REPO
from tests.deploy.awx_model import (
    KUBERNETES_TEST_INPUTS,
    injected,
    inventory_script,
    load_model,
    survey_answers,
)
from tests.llm_mocks import MockServer
from tests.rag_service import API_KEY as RAG_KEY
from tests.rag_service import Service
from tests.s3_server import S3Server

MODEL = load_model()
TEMPLATES = {jt["name"]: jt for jt in MODEL["awx_job_templates"]}
INVENTORIES = {inv["name"]: inv for inv in MODEL["awx_inventories"]}
SECRETS = ["test-bearer-token", "test-api-key", "test-secret-key", RAG_KEY]


def credential_inputs(
    llm_url: str = "http://127.0.0.1:9/v1",
    rag_url: str = "http://127.0.0.1:8088",
    s3: S3Server | None = None,
    rag_key: str = "test-api-key",
) -> dict[str, dict[str, Any]]:
    return {
        "kubernetes": KUBERNETES_TEST_INPUTS,
        "qdrant": {"url": "http://127.0.0.1:6333", "api_key": "test-api-key"},
        "rag": {"endpoint": rag_url, "api_key": rag_key},
        "llm": {"base_url": llm_url, "api_key": "test-api-key"},
        "object_storage": {
            "endpoint_url": s3.endpoint if s3 else "http://127.0.0.1:9",
            "access_key": s3.access_key if s3 else "test-access-key",
            "secret_key": s3.secret_key if s3 else "test-secret-key",
        },
    }


@pytest.fixture(scope="module")
def awx_inventories(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Each registered inventory imported once, as AWX's inventory update does."""
    root = tmp_path_factory.mktemp("awx-inventories")
    return {
        name: inventory_script(REPO / inv["source_path"], root / name.replace(" ", "-"))
        for name, inv in INVENTORIES.items()
    }


@pytest.fixture(scope="module")
def output_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("awx-output")


def launch(
    template_name: str,
    tmp: Path,
    inventory: Path,
    *,
    answers: dict[str, Any] | None = None,
    extra: dict[str, Any] | None = None,
    inputs: dict[str, dict[str, Any]] | None = None,
    credentials: list[str] | None = None,
) -> tuple[ansible_runner.Runner, str]:
    """Launches a template; ``credentials`` replaces its default ones (ask_credential_on_launch)."""
    template = TEMPLATES[template_name]
    kinds = template["credentials"] if credentials is None else credentials
    assert credentials is None or template.get("ask_credential_on_launch")
    creds = injected(MODEL, kinds, inputs or credential_inputs())
    extravars = {
        **template.get("extra_vars", {}),
        **creds["extra_vars"],
        **survey_answers(template["survey"], answers),
        **(extra or {}),
    }
    # AWX's layout: /runner/inventory/hosts (the script), /runner/project (the checkout).
    pdd = tmp / "private_data_dir"
    (pdd / "inventory").mkdir(parents=True)
    shutil.copy2(inventory, pdd / "inventory" / "hosts")
    runner = ansible_runner.run(
        private_data_dir=str(pdd),
        project_dir=str(REPO),
        playbook=template["playbook"],
        inventory=str(pdd / "inventory" / "hosts"),
        extravars=extravars,
        envvars={**creds["env"], "PATH": f"{BIN}:{os.environ['PATH']}", "ANSIBLE_NOCOLOR": "1"},
        quiet=True,
        timeout=300,
    )
    stdout = runner.stdout.read()
    secrets = SECRETS + [v["secret_key"] for v in [(inputs or {}).get("object_storage", {})] if v]
    for secret in secrets:
        assert secret not in stdout, f"{template_name}: a credential secret is in the job output"
    return runner, stdout


def artifacts(runner: ansible_runner.Runner) -> dict[str, Any]:
    """The job's set_stats data (AWX stores it as the job's artifacts)."""
    for event in runner.events:
        if event.get("event") == "playbook_on_stats":
            return dict(event["event_data"].get("artifact_data") or {})
    return {}


@pytest.fixture(scope="module")
def render_run(
    awx_inventories: dict[str, Path], output_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> ansible_runner.Runner:
    """Render only, every survey default, on the single-node inventory."""
    runner, stdout = launch(
        "aistack - Render only",
        tmp_path_factory.mktemp("render"),
        awx_inventories["aistack single-node"],
        extra={"aistack_build_root": str(output_dir)},
    )
    assert runner.status == "successful", stdout[-4000:]
    return runner


@pytest.fixture(scope="module")
def rendered(render_run: ansible_runner.Runner, output_dir: Path) -> Path:
    return output_dir / "inventory"


def test_render_only_with_every_survey_default(
    render_run: ansible_runner.Runner, rendered: Path
) -> None:
    # AWX's inventory is a script in its own directory: the bundle is named after it.
    assert (rendered / "qdrant").is_dir() and (rendered / "rag_pipeline").is_dir()
    # The job's artifacts say what was rendered and where; no Git push was asked for.
    summary = artifacts(render_run)
    assert set(summary) == {"render_summary"}
    node = summary["render_summary"]["single-node"]
    assert node["mode"] == "render" and node["bundle"] == str(rendered)
    assert "qdrant" in node["components"] and node["objects"] > 0


def git(*args: str) -> str:
    return subprocess.run(
        ["git", *args], capture_output=True, text=True, check=True, timeout=60
    ).stdout.strip()


def test_deploy_stack_in_render_mode_pushes_the_bundle_to_git_and_object_storage(
    awx_inventories: dict[str, Path], tmp_path: Path, s3_server: S3Server
) -> None:
    out, remote = tmp_path / "out", tmp_path / "bundles.git"
    git("init", "-q", "--bare", str(remote))
    s3_url = f"s3://{s3_server.bucket}/lab/"
    runner, stdout = launch(
        "aistack - Deploy stack",
        tmp_path,
        awx_inventories["aistack catalyst-lab"],
        answers={
            "aistack_deploy_only": "data",
            "aistack_bundle_git_url": remote.as_uri(),
            "aistack_output_s3_url": s3_url,
        },
        extra={"aistack_deploy_mode": "render", "aistack_build_root": str(out)},
        inputs=credential_inputs(s3=s3_server),
    )
    assert runner.status == "successful", stdout[-4000:]
    # The bundle outlives the job: it is on the branch the artifacts name, at the commit they name.
    pushed = artifacts(runner)["bundle_git"]
    assert pushed["branch"] == "aistack-bundles/inventory" and pushed["paths"] == ["inventory"]
    assert git("-C", str(remote), "rev-parse", pushed["branch"]) == pushed["commit"]
    files = git("-C", str(remote), "ls-tree", "-r", "--name-only", pushed["branch"]).splitlines()
    local = sorted(str(p.relative_to(out)) for p in (out / "inventory").rglob("*") if p.is_file())
    assert sorted(files) == local
    # The same files in the bucket, under the prefix and the bundle's path; the artifacts say so.
    uploaded = artifacts(runner)["bundle_s3"]
    assert uploaded["url"] == s3_url and uploaded["endpoint_url"] == s3_server.endpoint
    assert uploaded["paths"] == [f"s3://{s3_server.bucket}/lab/inventory"]
    assert uploaded["objects"] == uploaded["uploaded"] == len(local)
    assert s3_server.keys("lab/") == sorted(f"lab/{name}" for name in local)
    assert s3_server.get(f"lab/{local[0]}") == (out / local[0]).read_bytes()
    catalogue = yaml.safe_load((REPO / "playbooks/vars/architectures.yml").read_text())
    expected = [
        name
        for name, on in catalogue["aistack_architectures"]["catalyst-lab"]["components"].items()
        if on and catalogue["aistack_component_catalog"][name]["layer"] == "data"
    ]
    assert expected and sorted(p.name for p in (out / "inventory").iterdir()) == sorted(expected)


def test_agentic_benchmark_renders_only_its_jobs_with_the_survey_answers(
    awx_inventories: dict[str, Path], tmp_path: Path
) -> None:
    out = tmp_path / "out"
    runner, stdout = launch(
        "aistack - Run agentic benchmark",
        tmp_path,
        awx_inventories["aistack catalyst-lab"],
        answers={
            "agentic_benchmark_travelplanner_enabled": "false",
            "agentic_benchmark_vendingbench_days": 30,
            "agentic_benchmark_vendingbench_seed": 7,
        },
        extra={"aistack_deploy_mode": "render", "aistack_build_root": str(out)},
    )
    assert runner.status == "successful", stdout[-4000:]
    assert sorted(p.name for p in (out / "inventory").iterdir()) == ["agentic_benchmark"]
    docs = [
        yaml.safe_load(path.read_text())
        for path in sorted((out / "inventory" / "agentic_benchmark").glob("[0-9]*.yaml"))
    ]
    jobs = [d for d in docs if d["kind"] == "Job"]
    # The survey's answers reach the Jobs: TravelPlanner off, Vending-Bench's horizon and seed.
    assert [j["metadata"]["name"].split("-")[2] for j in jobs] == ["vendingbench"]
    args = jobs[0]["spec"]["template"]["spec"]["containers"][0]["args"]
    assert args[args.index("--days") + 1] == "30" and args[args.index("--seed") + 1] == "7"


def test_teardown_needs_the_confirmation(
    awx_inventories: dict[str, Path], tmp_path: Path, rendered: Path
) -> None:
    runner, stdout = launch(
        "aistack - Teardown",
        tmp_path,
        awx_inventories["aistack single-node"],
        answers={"aistack_teardown_confirm": "catalyst-lab"},
        extra={"aistack_deploy_mode": "render", "aistack_build_root": str(rendered.parent)},
    )
    assert runner.status == "failed"
    assert "Teardown not confirmed" in stdout and "Nothing was removed" in stdout
    assert (rendered / "qdrant").is_dir()


def test_teardown_in_render_mode_with_the_survey_defaults(
    awx_inventories: dict[str, Path], tmp_path: Path, rendered: Path
) -> None:
    runner, stdout = launch(
        "aistack - Teardown",
        tmp_path,
        awx_inventories["aistack single-node"],
        answers={"aistack_teardown_confirm": "single-node", "aistack_deploy_only": "data"},
        extra={"aistack_deploy_mode": "render", "aistack_build_root": str(rendered.parent)},
    )
    assert runner.status == "successful", stdout[-4000:]
    assert not (rendered / "qdrant").exists()
    assert (rendered / "rag_pipeline").is_dir()  # only the data layer was asked for


@pytest.fixture(scope="module")
def llm(llm_mocks: dict[str, MockServer]) -> MockServer:
    """The session's fast guidellm mock-server (tests/conftest.py: llm_mocks, shared with
    llm_benchmark's tests, none of which counts its requests)."""
    return llm_mocks["fast"]


def test_benchmark_with_every_survey_default_publishes_its_verdict(
    llm: MockServer, awx_inventories: dict[str, Path], tmp_path: Path
) -> None:
    runner, stdout = launch(
        "aistack - Run benchmark",
        tmp_path,
        awx_inventories["aistack single-node"],
        extra={"aistack_build_root": str(tmp_path / "out")},
        inputs=credential_inputs(llm.url + "/v1"),
    )
    assert runner.status == "successful", stdout[-4000:]
    summary = artifacts(runner)["benchmark_summary"]
    assert summary["slo_passed"] is True and summary["slo_violations"] == []
    assert Path(summary["report_html"]).is_file() and summary["report_html"].startswith(
        str(tmp_path / "out")
    )


def test_benchmark_missing_its_slo_fails_after_publishing(
    llm: MockServer, awx_inventories: dict[str, Path], tmp_path: Path, s3_server: S3Server
) -> None:
    runner, stdout = launch(
        "aistack - Run benchmark",
        tmp_path,
        awx_inventories["aistack single-node"],
        answers={
            "aistack_benchmark_slo": "min_requests_per_second=1000000",
            "aistack_benchmark_max_requests": 20,
            "aistack_output_s3_url": f"s3://{s3_server.bucket}/runs",
        },
        extra={"aistack_build_root": str(tmp_path / "out")},
        inputs=credential_inputs(llm.url + "/v1", s3=s3_server),
    )
    # The job fails (the workflow takes its failure branch) with the verdict in its artifacts.
    assert runner.status == "failed"
    assert "SLO missed" in stdout
    summary = artifacts(runner)["benchmark_summary"]
    assert summary["slo_passed"] is False and summary["slo_violations"]
    # The reports outlive the job: in the bucket, where the artifacts say, byte for byte.
    report = Path(summary["report_html"])
    stored = summary["report_s3"]
    assert stored["url"] == f"s3://{s3_server.bucket}/runs/benchmarks/{report.parent.name}"
    assert stored["endpoint_url"] == s3_server.endpoint
    key = f"runs/benchmarks/{report.parent.name}/{report.name}"
    assert key in stored["objects"] and sorted(stored["objects"]) == s3_server.keys("runs/")
    assert s3_server.get(key) == report.read_bytes()


# --- Create collection and Ingest documents, against the embedded default's RAG service ------
# The session's RAG service (tests/conftest.py: rag_service, shared with document_ingest; the
# RAG credential carries its key). The jobs write the survey's collection, aistack-docs, which
# no other test of that service writes.


def rag_get(service: Service, path: str) -> Any:
    request = urllib.request.Request(
        service.url + path, headers={"Authorization": f"Bearer {RAG_KEY}"}
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.load(response)


def test_create_collection_with_every_survey_default(
    rag_service: Service, awx_inventories: dict[str, Path], tmp_path: Path
) -> None:
    qdrant = tmp_path / "qdrant"
    runner, stdout = launch(
        "aistack - Create collection",
        tmp_path,
        awx_inventories["aistack single-node"],
        # No Qdrant server here: launched with the RAG credential only, and embedded Qdrant in
        # place of the Qdrant credential's URL (its injection: tests/deploy/test_awx.py).
        extra={"aistack_qdrant_path": str(qdrant)},
        inputs=credential_inputs(rag_url=rag_service.url, rag_key=RAG_KEY),
        credentials=["rag"],
    )
    assert runner.status == "successful", stdout[-4000:]
    # The survey's collection, in the layout the service reports for its embedding model.
    layout = rag_get(rag_service, "/collection-layout")
    from qdrant_client import QdrantClient

    client = QdrantClient(path=str(qdrant))
    try:
        vectors = client.get_collection("aistack-docs").config.params.vectors
    finally:
        client.close()
    expected = layout["vectors"]
    assert isinstance(vectors, dict) and set(vectors) == set(expected)
    for name, spec in expected.items():
        assert vectors[name].size == spec["size"]
    assert "aistack-docs: " in stdout


def test_ingest_documents_with_every_survey_default(
    rag_service: Service, awx_inventories: dict[str, Path], tmp_path: Path
) -> None:
    runner, stdout = launch(
        "aistack - Ingest documents",
        tmp_path,
        awx_inventories["aistack single-node"],
        inputs=credential_inputs(rag_url=rag_service.url, rag_key=RAG_KEY),
    )
    assert runner.status == "successful", stdout[-4000:]
    # The project's samples (the default paths, from the project checkout) are in the service.
    samples = sorted(p for p in (REPO / "services/rag_pipeline/samples").iterdir() if p.is_file())
    assert f"{len(samples)} ingested, 0 updated" in " ".join(stdout.split())
    assert "aistack-docs" in json.dumps(rag_get(rag_service, "/collections"))
