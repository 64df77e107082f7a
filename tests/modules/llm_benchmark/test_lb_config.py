"""Option validation (shared by the module and the CLI) and SLO evaluation."""

from __future__ import annotations

import pytest

from ansible_collections.aistack.platform.plugins.module_utils.llm_benchmark.config import (
    BenchmarkConfig,
    ConfigError,
    evaluate_slo,
)

BASE = {"base_url": "http://127.0.0.1:1", "max_requests": 5}


def cfg(**kw):
    return BenchmarkConfig.from_dict({**BASE, "concurrency": 2, **kw})


def test_defaults():
    c = cfg()
    assert c.profile == "concurrent" and c.stream is True and c.endpoint == "chat"
    assert c.prompt_tokens == 128 and c.seed == 42 and c.slo == {}
    assert c.public()["api_key"] is None
    assert cfg(api_key="s3cret").public()["api_key"] == "********"


@pytest.mark.parametrize(
    ("opts", "message"),
    [
        ({"base_url": "ftp://x"}, "base_url must be an http"),
        ({"profile": "concurrent", "concurrency": None}, "requires concurrency"),
        ({"profile": "synchronous", "concurrency": 4}, "one request at a time"),
        ({"profile": "constant", "concurrency": None}, "requires rate"),
        ({"profile": "poisson", "rate": [1, 2]}, "single rate"),
        ({"profile": "concurrent", "rate": [3]}, "rate is not used"),
        ({"max_requests": None}, "max_requests and/or max_seconds"),
        ({"prompt_file": "/x.jsonl", "prompt_tokens": 10}, "mutually exclusive"),
        ({"concurrency": 0}, "concurrency must be >= 1"),
        ({"concurrency": "many"}, "concurrency must be an integer"),
        ({"max_seconds": -1}, "max_seconds must be > 0"),
        ({"rate": [0], "profile": "constant"}, "rate must be > 0"),
        ({"warmup": {"requests": 2, "seconds": 1}}, "mutually exclusive"),
        ({"warmup": {"minutes": 2}}, "warmup accepts requests or seconds"),
        ({"slo": {"ttft_p97_ms": 1}}, "unknown slo key"),
        ({"slo": {"ttft_p95_ms": "fast"}}, "slo.ttft_p95_ms must be a number"),
        ({"slo": {"itl_p95_ms": 5}, "stream": False}, "needs stream"),
        ({"endpoint": "embeddings"}, "endpoint must be one of"),
        ({"profile": "burst"}, "profile must be one of"),
        ({"bogus": 1}, "unknown option"),
        ({"rampup": -1}, "rampup must be >= 0"),
        ({"rampup": "slow"}, "rampup must be a number"),
        ({"rampup": float("inf")}, "rampup must be a finite number"),
        ({"max_seconds": "nan"}, "max_seconds must be a finite number"),
        ({"rampup": 1, "profile": "constant", "rate": [2]}, "profile constant does not use it"),
        ({"rampup": 1, "profile": "synchronous", "concurrency": None}, "does not use it"),
        ({"rampup": 1, "profile": "sweep", "rate": [2]}, "which rate replaces"),
    ],
)
def test_bad_options(opts, message):
    with pytest.raises(ConfigError, match=message):
        cfg(**opts)


def test_rampup_reaches_the_concurrent_phases():
    from ansible_collections.aistack.platform.plugins.module_utils.llm_benchmark.runner import (
        plan_phases,
    )

    assert cfg().rampup == 0.0
    assert [p.rampup for p in plan_phases(cfg(rampup=0.5))] == [0.5]
    sweep = plan_phases(cfg(profile="sweep", rampup=2, concurrency=8))
    # the synchronous reference phase has one stream: nothing to spread
    assert [(p.name, p.rampup) for p in sweep] == [("synchronous", 0.0), ("throughput@8", 2.0)]


def test_rate_scalar_and_sweep_list():
    assert cfg(profile="constant", rate=2.5, concurrency=None).rate == [2.5]
    assert cfg(profile="sweep", rate=[1, 2, 4], concurrency=None).rate == [1.0, 2.0, 4.0]


def test_evaluate_slo():
    metrics = {
        "ttft_ms": {"p95": 120.0, "mean": 100.0},
        "itl_ms": {"p95": None},
        "error_rate": 0.02,
        "requests_per_second": 9.0,
        "successful": 90,
        "incomplete": 0,
    }
    res = evaluate_slo({"ttft_p95_ms": 150, "error_rate": 0.05}, metrics)
    assert res["passed"] and res["violations"] == []
    res = evaluate_slo(
        {"ttft_p95_ms": 100, "min_requests_per_second": 10, "itl_p95_ms": 5}, metrics
    )
    assert not res["passed"]
    assert res["violations"] == [
        "ttft_p95_ms: 120 > 100",
        "min_requests_per_second: 9 < 10",
        "itl_p95_ms: no successful request to measure (threshold 5)",
    ]
    assert res["checked"]["ttft_p95_ms"] == {"threshold": 100, "value": 120.0, "passed": False}
