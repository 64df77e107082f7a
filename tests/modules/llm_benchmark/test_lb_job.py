"""The in-cluster benchmark Job (roles/llm_benchmark), run here as the pod would run it.

The role is rendered through the deploy mechanism; the engine files are taken from the
rendered ConfigMap, the configuration from the run's ConfigMap and the command from the Job,
and that command is executed against a real guidellm mock server.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import yaml

from tests.conftest import run_playbook

PLAYBOOK = """
- name: Render the benchmark Job
  hosts: localhost
  connection: local
  gather_facts: false
  vars:
    ansible_python_interpreter: "{{ ansible_playbook_python }}"
  roles:
    - role: aistack.platform.llm_benchmark
"""


def render(tmp_path: Path, base_url: str, config: dict) -> dict[str, dict]:
    tmp_path.mkdir(parents=True, exist_ok=True)
    playbook = tmp_path / "render.yml"
    playbook.write_text(PLAYBOOK)
    extra = {
        "aistack_render_dir": str(tmp_path / "build"),
        "llm_benchmark_base_url": base_url,
        "llm_benchmark_config": config,
    }
    proc = run_playbook(str(playbook), "-e", json.dumps(extra))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    objects = {}
    for path in sorted((tmp_path / "build/llm_benchmark").glob("[0-9]*.yaml")):
        obj = yaml.safe_load(path.read_text())
        objects[f"{obj['kind']}/{obj['metadata']['name']}"] = obj
    return objects


def test_rendered_job_runs_the_engine_against_a_real_server(
    tmp_path: Path, fresh_mock: Callable
) -> None:
    mock = fresh_mock("--ttft-ms", "5", "--itl-ms", "1", "--output-tokens", "8")
    config = {"profile": "synchronous", "max_requests": 6, "output_tokens": 8, "prompt_tokens": 16}
    objects = render(tmp_path, f"{mock.url}/v1", config)

    job = next(o for name, o in objects.items() if name.startswith("Job/"))
    run_config = next(
        o for name, o in objects.items() if name.startswith("ConfigMap/") and "engine" not in name
    )
    engine = objects["ConfigMap/llm-benchmark-engine"]
    assert {"__main__.py", "cli.py", "client.py"} <= set(engine["data"])
    assert job["spec"]["template"]["spec"]["securityContext"]["runAsNonRoot"] is True
    assert "latest" not in job["spec"]["template"]["spec"]["containers"][0]["image"]

    # Lay out the pod's volumes under tmp_path and run the container's command, on a
    # Python without site-packages (-S), as on the plain image.
    opt, conf, results = tmp_path / "opt", tmp_path / "config", tmp_path / "results"
    (opt / "llm_benchmark").mkdir(parents=True)
    conf.mkdir()
    results.mkdir()
    for name, text in engine["data"].items():
        (opt / "llm_benchmark" / name).write_text(text)
    (conf / "benchmark.json").write_text(run_config["data"]["benchmark.json"])
    container = job["spec"]["template"]["spec"]["containers"][0]
    script = (
        container["args"][0].replace("/config/", f"{conf}/").replace("/results/", f"{results}/")
    )
    proc = subprocess.run(
        ["sh", "-c", script.replace("exec python", f"exec {sys.executable} -S")],
        cwd=opt,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    run_dir = results / job["metadata"]["name"]
    result = json.loads((run_dir / "result.json").read_text())
    assert result["metrics"]["successful"] == 6
    assert result["metrics"]["errored"] == 0
    assert any(p.suffix == ".html" for p in run_dir.iterdir())


def test_job_name_follows_the_configuration(tmp_path: Path) -> None:
    first = render(tmp_path / "a", "http://llm.example:8000/v1", {"max_requests": 10})
    same = render(tmp_path / "b", "http://llm.example:8000/v1", {"max_requests": 10})
    other = render(tmp_path / "c", "http://llm.example:8000/v1", {"max_requests": 20})

    def job(objects: dict) -> str:
        return next(name for name in objects if name.startswith("Job/"))

    assert job(first) == job(same)
    assert job(first) != job(other)


def test_secret_settings_are_rejected_in_the_config(tmp_path: Path) -> None:
    playbook = tmp_path / "render.yml"
    playbook.write_text(PLAYBOOK)
    proc = run_playbook(
        str(playbook),
        "-e",
        json.dumps(
            {
                "aistack_render_dir": str(tmp_path / "build"),
                "llm_benchmark_config": {"api_key": "sk-plain-text"},
            }
        ),
    )
    assert proc.returncode != 0
    assert "llm_benchmark_config must not set api_key" in proc.stdout
    assert not (tmp_path / "build").exists()


def test_benchmark_playbook_reports_and_enforces_slos(tmp_path: Path, fresh_mock: Callable) -> None:
    mock = fresh_mock("--ttft-ms", "20", "--itl-ms", "1", "--output-tokens", "8")
    common = {
        "aistack_benchmark_base_url": f"{mock.url}/v1",
        "aistack_benchmark_profile": "synchronous",
        "aistack_benchmark_max_requests": 4,
        "aistack_benchmark_output_tokens": 8,
        "aistack_benchmark_prompt_tokens": 16,
    }
    ok = run_playbook(
        "playbooks/benchmark.yml",
        "-e",
        json.dumps({**common, "aistack_benchmark_report_dir": str(tmp_path / "ok")}),
    )
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert (tmp_path / "ok").is_dir() and any((tmp_path / "ok").glob("*.html"))

    missed = run_playbook(
        "playbooks/benchmark.yml",
        "-e",
        json.dumps(
            {
                **common,
                "aistack_benchmark_report_dir": str(tmp_path / "missed"),
                "aistack_benchmark_slo": {"ttft_p95_ms": 1},
            }
        ),
    )
    assert missed.returncode != 0
    assert "ttft_p95_ms" in missed.stdout
