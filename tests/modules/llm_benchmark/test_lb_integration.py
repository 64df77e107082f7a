"""Against real ``guidellm mock-server`` processes: accuracy, errors, SLO, check mode, CLI."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from ansible_collections.aistack.platform.plugins.module_utils.llm_benchmark.config import (
    BenchmarkConfig,
)
from ansible_collections.aistack.platform.plugins.module_utils.llm_benchmark.runner import (
    BenchmarkCancelled,
    BenchmarkError,
    run_benchmark,
)
from tests.conftest import REPO, free_port

from .conftest import ansible_module, direct_module

PKG = REPO / "plugins/module_utils/llm_benchmark"


def bench(**opts):
    return run_benchmark(BenchmarkConfig.from_dict(opts))


def test_accuracy_known_ttft_and_itl(mocks):
    # mock: TTFT 60 ms, ITL 8 ms, 24 tokens; the mock itself adds a little on a busy machine
    res = bench(
        base_url=mocks["timed"].url,
        concurrency=4,
        max_requests=32,
        prompt_tokens=64,
        warmup={"requests": 4},
    )
    m = res["metrics"]
    assert res["model"] == "llama-3.1-8b-instruct"
    assert (m["successful"], m["errored"], m["incomplete"]) == (32, 0, 0)
    assert 58 <= m["ttft_ms"]["mean"] <= 60 * 1.25 + 5
    assert 7.8 <= m["itl_ms"]["mean"] <= 8 * 1.15
    assert m["output_tokens"]["mean"] == 24  # from the server's usage
    expected_latency = m["ttft_ms"]["mean"] + 23 * m["itl_ms"]["mean"]
    assert m["latency_ms"]["mean"] == pytest.approx(expected_latency, rel=0.1)
    assert m["tpot_ms"]["mean"] == pytest.approx(expected_latency / 24, rel=0.1)
    assert 3.0 <= m["concurrency"] <= 4.01


def test_errors_counted_apart(mocks):
    # the mock serves 12 generation requests, then answers HTTP 500 at once
    res = bench(base_url=mocks["failing"].url, concurrency=3, max_requests=30)
    m = res["metrics"]
    assert (m["successful"], m["errored"], m["incomplete"]) == (12, 18, 0)
    assert m["error_rate"] == pytest.approx(0.6)
    assert m["ttft_ms"]["count"] == 12 and m["latency_ms"]["count"] == 12
    # fast failures must not drag TTFT or latency down (mock TTFT is 30 ms)
    assert m["ttft_ms"]["min"] >= 29
    assert m["latency_ms"]["min"] >= 29 + 9 * 3 - 1
    assert list(m["errors"]) == ["HTTP 500: Mock server fail_after_requests=12 exceeded"]


def test_non_streaming_completions(mocks):
    res = bench(
        base_url=mocks["fast"].url + "/v1",
        endpoint="completions",
        stream=False,
        profile="synchronous",
        max_requests=5,
    )
    m = res["metrics"]
    assert m["successful"] == 5 and m["itl_ms"]["count"] == 0
    assert m["ttft_ms"]["mean"] == pytest.approx(m["latency_ms"]["mean"], rel=0.01)
    assert res["plan"]["url"].endswith("/v1/completions")


def test_sweep_and_reports(mocks, tmp_path):
    res = bench(
        base_url=mocks["fast"].url,
        profile="sweep",
        concurrency=8,
        sweep_points=2,
        max_requests=40,
        warmup={"requests": 4},
        report_dir=str(tmp_path),
        slo={"latency_p95_ms": 10_000},
    )
    names = [b["name"] for b in res["benchmarks"]]
    assert names[:2] == ["synchronous", "throughput@8"] and len(names) == 4
    assert all(n.startswith("constant@") for n in names[2:])
    assert all(b["metrics"]["successful"] == 40 for b in res["benchmarks"])  # warm-up excluded
    assert res["slo"]["passed"] and res["slo"]["best_phase"] in names
    doc = json.loads(Path(res["report_json"]).read_text())
    assert (
        doc["config"]["profile"] == "sweep" and len(doc["requests"]["synchronous"]["ttft_ms"]) == 40
    )
    html = Path(res["report_html"]).read_text()
    assert html.count("<svg") >= 4 * 5 + 3 and "Throughput vs target rate" in html
    assert "<script" not in html and 'src="http' not in html and 'href="http' not in html
    lines = (tmp_path / "progress.jsonl").read_text().splitlines()
    assert lines and json.loads(lines[-1])["final"] is True


def test_poisson_with_prompt_file(mocks, tmp_path):
    f = tmp_path / "p.jsonl"
    f.write_text("\n".join(json.dumps({"prompt": f"question {i}"}) for i in range(3)))
    res = bench(
        base_url=mocks["fast"].url,
        profile="poisson",
        rate=[200],
        max_requests=30,
        prompt_file=str(f),
        output_tokens=4,
    )
    m = res["metrics"]
    assert m["successful"] == 30 and m["output_tokens"]["mean"] == 4
    assert m["prompt_tokens"]["mean"] < 20


def test_unreachable_endpoint():
    with pytest.raises(BenchmarkError, match=r"cannot reach http://127\.0\.0\.1:"):
        bench(base_url=f"http://127.0.0.1:{free_port()}", concurrency=1, max_requests=1)


def test_cancel_stops_the_load_and_writes_no_report(mocks, tmp_path):
    # a 60 s run, cancelled from another thread once progress shows requests completing
    cancel = threading.Event()
    events: list[dict] = []

    def on_progress(event: dict) -> None:
        events.append(event)
        if event["completed"] > 0:
            cancel.set()

    cfg = BenchmarkConfig.from_dict(
        {
            "base_url": mocks["timed"].url,
            "concurrency": 2,
            "max_seconds": 60,
            "report_dir": str(tmp_path / "out"),
        }
    )
    t0 = time.monotonic()
    with pytest.raises(BenchmarkCancelled, match="no report written"):
        run_benchmark(cfg, on_progress=on_progress, cancel=cancel)
    assert time.monotonic() - t0 < 10  # the first progress event comes after ~1 s
    assert events and events[0]["phase"] == "concurrent@2" and events[0]["completed"] > 0
    assert not (tmp_path / "out" / "llm_benchmark.json").exists()
    assert not (tmp_path / "out" / "llm_benchmark.html").exists()
    # a set event stops a run before its first request
    with pytest.raises(BenchmarkCancelled, match="before it sent any request"):
        run_benchmark(cfg, cancel=cancel)


def test_check_mode_sends_no_load(fresh_mock, tmp_path):
    # this server answers exactly one generation request; anything after it gets HTTP 500
    server = fresh_mock(
        "--ttft-ms", "0", "--itl-ms", "0", "--output-tokens", "4", "--fail-after-requests", "1"
    )
    rc, out = direct_module(
        {
            "base_url": server.url,
            "concurrency": 4,
            "max_requests": 50,
            "report_dir": str(tmp_path / "r"),
        },
        tmp_path,
        check=True,
    )
    assert rc == 0 and out["changed"] is False and "metrics" not in out
    assert out["plan"]["phases"][0]["concurrency"] == 4
    assert not (tmp_path / "r").exists()
    res = bench(base_url=server.url, profile="synchronous", max_requests=1)
    assert res["metrics"]["successful"] == 1  # the one allowed request was still unused


def test_module_via_ansible_success_and_stats(mocks, tmp_path):
    out = ansible_module(
        {
            "base_url": mocks["fast"].url,
            "api_key": "not-shown",
            "concurrency": 4,
            "rampup": 0.2,
            "max_requests": 20,
            "output_tokens": 6,
            "report_dir": str(tmp_path),
            "slo": {"error_rate": 0, "min_successful": 20},
        }
    )
    assert not out.get("failed"), out
    assert out["changed"] is True and out["slo"]["passed"] is True
    assert out["plan"]["phases"][0]["rampup"] == 0.2
    stats = out["stats"]
    assert stats["successful"] == 20 and stats["slo_passed"] is True
    assert {"ttft_p95_ms", "itl_mean_ms", "latency_p99_ms", "tpot_p50_ms"} <= set(stats)
    assert all(not isinstance(v, dict | list) for v in stats.values())  # flat for set_stats
    for key in ("ttft_ms", "itl_ms", "tpot_ms", "latency_ms"):
        assert set(out["metrics"][key]) >= {"mean", "p50", "p90", "p95", "p99"}
    assert Path(out["report_html"]).is_file()
    assert "not-shown" not in Path(out["report_json"]).read_text()


def test_module_via_ansible_slo_violation_fails_with_metrics(mocks):
    out = ansible_module(
        {
            "base_url": mocks["timed"].url,
            "profile": "synchronous",
            "max_requests": 3,
            "slo": {"ttft_p95_ms": 5, "error_rate": 0.5},
        }
    )
    assert out["failed"] is True
    assert out["msg"].startswith("SLO missed: ttft_p95_ms: ")
    assert out["metrics"]["successful"] == 3 and out["metrics"]["ttft_ms"]["p95"] > 5
    assert out["slo"]["checked"]["error_rate"]["passed"] is True


def test_module_bad_input(tmp_path):
    rc, out = direct_module({"base_url": "http://127.0.0.1:1", "max_requests": 1}, tmp_path)
    assert rc != 0 and "missing: concurrency" in out["msg"]
    rc, out = direct_module(
        {
            "base_url": "http://127.0.0.1:1",
            "profile": "synchronous",
            "concurrency": "lots",
            "max_requests": 1,
        },
        tmp_path,
    )
    assert rc != 0 and "concurrency" in out["msg"]
    rc, out = direct_module(
        {
            "base_url": "http://127.0.0.1:1",
            "profile": "synchronous",
            "max_requests": 1,
            "slo": {"ttft_p42_ms": 1},
        },
        tmp_path,
    )
    assert rc != 0 and out["msg"].startswith("invalid options: unknown slo key")
    port = free_port()
    rc, out = direct_module(
        {
            "base_url": f"http://127.0.0.1:{port}",
            "profile": "synchronous",
            "max_requests": 1,
            "api_key": "hidden-key",
        },
        tmp_path,
    )
    assert rc != 0 and out["msg"].startswith("llm_benchmark could not run: cannot reach")
    assert "hidden-key" not in json.dumps(out)


def test_cli_standalone_package_like_a_kubernetes_job(mocks, tmp_path):
    # the package copied on its own (a ConfigMap in a Job), run with plain python -m
    shutil.copytree(PKG, tmp_path / "llm_benchmark", ignore=shutil.ignore_patterns("__pycache__"))
    cfg = tmp_path / "bench.json"
    cfg.write_text(
        json.dumps(
            {
                "base_url": mocks["fast"].url,
                "concurrency": 2,
                "max_requests": 10,
                "slo": {"error_rate": 0},
            }
        )
    )
    proc = subprocess.run(
        [
            sys.executable,
            "-E",
            "-m",
            "llm_benchmark",
            "--config",
            str(cfg),
            "--report-dir",
            str(tmp_path / "out"),
            "--quiet",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["metrics"]["successful"] == 10
    assert (tmp_path / "out/llm_benchmark.html").is_file()
    # SLO missed -> exit status 2; bad config -> 1
    proc = subprocess.run(
        [
            sys.executable,
            "-E",
            "-m",
            "llm_benchmark",
            "--config",
            str(cfg),
            "--set",
            'slo={"latency_max_ms": 0.001}',
            "-q",
            "-o",
            str(tmp_path / "r.json"),
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 2 and "SLO missed: latency_max_ms" in proc.stderr
    assert json.loads((tmp_path / "r.json").read_text())["slo"]["passed"] is False
    proc = subprocess.run(
        [sys.executable, "-E", "-m", "llm_benchmark", "--set", "base_url=http://x"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 1 and "requires concurrency" in proc.stderr


def test_fast_start_up():
    code = (
        "import time; t = time.perf_counter(); "
        "import ansible_collections.aistack.platform.plugins.module_utils.llm_benchmark.runner; "
        "import ansible_collections.aistack.platform.plugins.module_utils.llm_benchmark.report; "
        "print(time.perf_counter() - t)"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code],
        env={"PYTHONPATH": str(REPO / "collections")},
        capture_output=True,
        text=True,
        check=True,
    )
    assert float(proc.stdout) < 0.5
