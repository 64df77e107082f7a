"""Metrics math: percentile definition, summaries, per-phase aggregation."""

from __future__ import annotations

import math

import pytest

from ansible_collections.aistack.platform.plugins.module_utils.llm_benchmark.metrics import (
    Records,
    percentile,
    phase_metrics,
    summarize,
)


def test_percentile_is_nearest_rank():
    vals = [float(v) for v in range(1, 101)]  # 1..100
    assert percentile(vals, 50) == 50
    assert percentile(vals, 90) == 90
    assert percentile(vals, 95) == 95
    assert percentile(vals, 99) == 99
    assert percentile(vals, 100) == 100
    assert percentile(vals, 0) == 1
    # always an observed value, never an interpolation
    assert percentile([1.0, 2.0, 3.0, 4.0], 50) == 2.0
    assert percentile([1.0, 2.0, 3.0, 4.0], 51) == 3.0
    assert percentile([7.0], 99) == 7.0
    assert percentile([], 50) is None


def test_percentile_matches_numpy_inverted_cdf():
    np = pytest.importorskip("numpy")
    rng = np.random.default_rng(3)
    data = sorted(rng.exponential(10.0, 537).tolist())
    for p in (50, 90, 95, 99):
        assert percentile(data, p) == pytest.approx(
            float(np.percentile(data, p, method="inverted_cdf"))
        )


def test_summarize():
    s = summarize([4.0, 1.0, 3.0, 2.0])
    assert s["mean"] == 2.5
    assert s["p50"] == 2.0
    assert s["min"] == 1.0 and s["max"] == 4.0
    assert s["count"] == 4
    assert s["std"] == pytest.approx(math.sqrt(1.25), abs=1e-4)
    empty = summarize([])
    assert empty["count"] == 0 and empty["mean"] is None and empty["p95"] is None


def _ok(first, last, end, chunks=0, usage_out=-1, usage_in=-1):
    return (True, 200, first, last, end, chunks, usage_out, usage_in, "")


def test_phase_metrics_definitions():
    rec = Records()
    # start 0: first token 0.1 s, 11 tokens (usage), last token 0.2 s, end 0.21 s
    rec.add(0.0, 0.0, _ok(0.1, 0.2, 0.21, chunks=5, usage_out=11, usage_in=40), 128)
    # start 1: first 1.05, 6 chunks, no usage -> 6 tokens, last 1.10, end 1.11
    rec.add(1.0, 1.0, _ok(1.05, 1.10, 1.11, chunks=6), 128)
    m = phase_metrics(rec, 0.0, 2.0, stream=True)
    assert m["successful"] == 2 and m["errored"] == 0 and m["incomplete"] == 0
    assert m["ttft_ms"]["mean"] == pytest.approx((100 + 50) / 2)
    # ITL = (last - first) / (tokens - 1): 100/10 = 10 ms and 50/5 = 10 ms
    assert m["itl_ms"]["mean"] == pytest.approx(10.0)
    # TPOT = (last - start) / tokens: 200/11 and 100/6
    assert m["tpot_ms"]["mean"] == pytest.approx((200 / 11 + 100 / 6) / 2, abs=1e-3)
    assert m["latency_ms"]["mean"] == pytest.approx((210 + 110) / 2)
    assert m["requests_per_second"] == pytest.approx(1.0)
    assert m["output_tokens_per_second"] == pytest.approx(17 / 2)
    assert m["prompt_tokens"]["mean"] == pytest.approx((40 + 128) / 2)
    assert m["concurrency"] == pytest.approx((0.21 + 0.11) / 2)


def test_errors_and_incomplete_do_not_pollute_latency():
    rec = Records()
    for i in range(10):
        rec.add(i, float(i), _ok(i + 0.1, i + 0.2, i + 0.2, chunks=11), 8)
    # fast failures (HTTP 500 after 1 ms) and a slow timeout
    for i in range(5):
        rec.add(i, float(i), (False, 500, 0.0, 0.0, i + 0.001, 0, -1, -1, "HTTP 500: boom"), 8)
    rec.add(0, 0.0, (False, 0, 0.0, 0.0, 30.0, 0, -1, -1, "timeout after 30s"), 8)
    rec.add_incomplete(9.5, 9.5, 10.0, 8)
    m = phase_metrics(rec, 0.0, 10.0, stream=True)
    assert (m["successful"], m["errored"], m["incomplete"], m["total"]) == (10, 6, 1, 17)
    assert m["ttft_ms"]["count"] == 10
    assert m["ttft_ms"]["max"] == pytest.approx(100.0)
    assert m["latency_ms"]["max"] == pytest.approx(200.0)
    assert m["requests_per_second"] == pytest.approx(1.0)
    assert m["error_rate"] == pytest.approx(6 / 16)
    assert m["errors"] == {"HTTP 500: boom": 5, "timeout after 30s": 1}


def test_non_stream_has_no_itl():
    rec = Records()
    rec.add(0.0, 0.0, _ok(0.5, 0.5, 0.5, chunks=1, usage_out=20), 8)
    m = phase_metrics(rec, 0.0, 1.0, stream=False)
    assert m["ttft_ms"]["mean"] == pytest.approx(500.0)
    assert m["itl_ms"]["count"] == 0
    assert m["tpot_ms"]["mean"] == pytest.approx(25.0)


def test_per_request_series():
    rec = Records()
    rec.add(0.0, 0.5, _ok(0.6, 0.7, 0.7, usage_out=3), 8)
    rec.add(0.0, 0.5, (False, 500, 0.0, 0.0, 0.6, 0, -1, -1, "x"), 8)
    pr = rec.per_request(0.0)
    assert pr["start_s"] == [0.5]
    assert pr["ttft_ms"] == [pytest.approx(100.0)]
    assert pr["itl_ms"] == [pytest.approx(50.0)]
