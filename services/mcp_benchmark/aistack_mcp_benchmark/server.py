"""The MCP server: tools, resources, /healthz, /metrics, bearer auth, one Starlette app.

No ``from __future__ import annotations`` here: FastMCP reads the tools' annotations at
runtime to build their JSON schemas and to find the Context parameter.
"""

import asyncio
import logging
import threading
import time
from collections.abc import Sequence
from typing import Annotated, Any, Literal

import anyio
from mcp.server.fastmcp import Context, FastMCP
from mcp.server.fastmcp.exceptions import ToolError
from mcp.types import ContentBlock, Resource
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import Field, ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp

from . import __version__
from . import benchmarks as bm
from .auth import BearerAuth
from .metrics import Metrics
from .models import (
    BenchmarkList,
    BenchmarkSummary,
    RagAnswer,
    RagCollection,
    RagCollections,
    RagIngestResult,
    RagSource,
)
from .rag import RagClient, RagError
from .settings import Settings

log = logging.getLogger("aistack_mcp_benchmark")

INSTRUCTIONS = """\
Benchmarks of OpenAI-compatible LLM endpoints (run_benchmark; reports with list_benchmarks and
get_report, HTML reports as resources benchmark://runs/<run_id>/llm_benchmark.html) and the
aistack RAG service (rag_query, rag_ingest, list_collections). run_benchmark reports progress
and can be cancelled; one benchmark runs at a time."""

SLO_HELP = (
    "Thresholds the run must meet: <ttft|itl|tpot|latency>_<mean|p50|p90|p95|p99|max>_ms "
    "(upper bounds), error_rate, max_incomplete, min_requests_per_second, "
    "min_output_tokens_per_second, min_successful"
)


def _validation_message(tool: str, err: ValidationError) -> str:
    parts = []
    for e in err.errors(include_url=False):
        loc = ".".join(str(p) for p in e["loc"]) or "(arguments)"
        got = "" if e["type"] == "missing" else f" (got {str(e.get('input'))[:80]!r})"
        parts.append(f"{loc}: {e['msg']}{got}")
    return f"invalid arguments for {tool}: " + "; ".join(parts)


class BenchmarkMCP(FastMCP):
    """FastMCP with clear argument errors, metrics per tool, and the runs' reports listed."""

    def __init__(self, state: "State", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.state = state

    async def call_tool(
        self, name: str, arguments: dict[str, Any]
    ) -> Sequence[ContentBlock] | dict[str, Any]:
        metrics = self.state.metrics
        tool = self._tool_manager.get_tool(name)
        label = name if tool is not None else "unknown"
        t0 = time.perf_counter()
        outcome = "error"
        try:
            if tool is not None:
                known = set(tool.parameters.get("properties", {}))
                unknown = sorted(set(arguments or {}) - known)
                if unknown:
                    raise ToolError(
                        f"invalid arguments for {name}: unknown argument(s) {', '.join(unknown)}; "
                        f"it takes {', '.join(sorted(known)) or 'none'}"
                    )
            try:
                result = await super().call_tool(name, arguments)
            except ToolError as exc:
                cause = exc.__cause__
                # Only the SDK's argument model, not a ValidationError raised inside the tool.
                if isinstance(cause, ValidationError) and cause.title.endswith("Arguments"):
                    raise ToolError(_validation_message(name, cause)) from None
                raise
            outcome = "ok"
            return result
        except asyncio.CancelledError:
            outcome = "cancelled"
            raise
        finally:
            metrics.tool_calls.labels(label, outcome).inc()
            if outcome == "error":
                metrics.tool_errors.labels(label).inc()
            metrics.tool_duration.labels(label).observe(time.perf_counter() - t0)

    async def list_resources(self) -> list[Resource]:
        listed = await super().list_resources()
        for run in await asyncio.to_thread(bm.list_runs, self.state.settings.results_dir):
            if run.html_report_uri:
                listed.append(
                    Resource(
                        uri=run.html_report_uri,  # type: ignore[arg-type]
                        name=f"{run.run_id} report",
                        description=f"HTML report of benchmark run {run.run_id}",
                        mimeType="text/html",
                    )
                )
        return listed


class State:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.metrics = Metrics()
        self.rag = RagClient(settings.rag_url, settings.rag_api_key, settings.rag_timeout_s)
        self.running: str | None = None  # the run id of the benchmark running now


def _progress_total(options: dict[str, Any]) -> float | None:
    """Requests the run will complete when ``max_requests`` bounds every phase."""
    n = options.get("max_requests")
    if not n or (options["profile"] == "sweep" and not options.get("rate")):
        return None  # an automatic sweep decides its later phases while it runs
    # a sweep with rates: synchronous, then one phase per rate
    phases = 1 + len(options["rate"]) if options["profile"] == "sweep" else 1
    warm = (options.get("warmup") or {}).get("requests") or 0
    return float(phases * (n + warm))


async def _run_benchmark(
    state: State, ctx: Context, options: dict[str, Any], label: str | None
) -> BenchmarkSummary:
    settings = state.settings
    # Validate before claiming the slot: a bad combination answers at once.
    try:
        bm.BenchmarkConfig.from_dict(dict(options))
    except bm.ConfigError as exc:
        raise ToolError(f"invalid benchmark configuration: {exc}") from None
    if state.running is not None:
        raise ToolError(
            f"benchmark {state.running} is running; one runs at a time (wait for it, or cancel "
            "its request)"
        )
    run_id = bm.new_run_id(options["profile"])
    state.running = run_id
    loop = asyncio.get_running_loop()
    events: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()
    cancel = threading.Event()
    outcome: dict[str, Any] = {}

    def work() -> None:  # the worker thread
        try:
            outcome["summary"] = bm.execute(
                settings.results_dir,
                run_id,
                options,
                label,
                lambda e: loop.call_soon_threadsafe(events.put_nowait, e),
                cancel,
            )
        except BaseException as exc:
            outcome["error"] = exc
        finally:
            loop.call_soon_threadsafe(events.put_nowait, None)

    total = _progress_total(options)
    done_in: dict[str, int] = {}  # completed requests per phase: progress must only grow
    thread = threading.Thread(target=work, name=f"benchmark-{run_id}", daemon=True)
    state.metrics.runs_in_progress.inc()
    finished = False
    try:
        await ctx.report_progress(0, total, f"run {run_id}: starting against {options['base_url']}")
        thread.start()
        while (event := await events.get()) is not None:
            done_in[event["phase"]] = max(done_in.get(event["phase"], 0), event["completed"])
            await ctx.report_progress(
                float(sum(done_in.values())),
                total,
                f"run {run_id} {event['phase']}: {event['elapsed_s']}s, {event['completed']} done, "
                f"{event['errored']} errors, {event['in_flight']} in flight, "
                f"{event['requests_per_second']} req/s",
            )
        finished = True
    finally:
        if not finished:
            # Cancelled by the client (or the session ended): stop the load, then wait for the
            # worker to remove its partial folder before the slot is free again. The wait is
            # shielded: anyio re-delivers a scope's cancellation at every await.
            cancel.set()
            log.info("benchmark %s stopped: request cancelled or session closed", run_id)
        if thread.ident is not None:
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(thread.join, 60.0)
        state.metrics.runs_in_progress.dec()
        state.running = None
    error = outcome.get("error")
    if isinstance(error, bm.BenchmarkCancelled):
        raise ToolError(f"benchmark {run_id} cancelled; nothing was written") from None
    if isinstance(error, bm.ConfigError):
        raise ToolError(f"invalid benchmark configuration: {error}") from None
    if isinstance(error, bm.BenchmarkError):
        raise ToolError(
            f"benchmark target unreachable or unusable ({options['base_url']}): {error}"
        ) from None
    if isinstance(error, bm.RunError):
        raise ToolError(str(error)) from None
    if error is not None:
        log.error("benchmark %s failed", run_id, exc_info=error)
        raise ToolError(f"benchmark {run_id} failed: {type(error).__name__}: {error}") from None
    summary: BenchmarkSummary = outcome["summary"]
    await ctx.report_progress(total or float(sum(done_in.values())), total, f"run {run_id}: done")
    return summary


def build_server(settings: Settings, host: str = "127.0.0.1") -> BenchmarkMCP:
    state = State(settings)
    # Host: the SDK turns on DNS-rebinding protection (Host/Origin allow-list) for a loopback
    # bind; on 0.0.0.0 (a pod behind a Service or gateway) the bearer token is the guard.
    mcp = BenchmarkMCP(
        state,
        name="aistack-benchmark",
        instructions=INSTRUCTIONS,
        host=host,
        streamable_http_path="/mcp",
    )

    @mcp.tool()
    async def run_benchmark(
        ctx: Context,
        target_url: Annotated[
            str | None,
            Field(
                description="OpenAI-compatible base URL, e.g. http://vllm:8000/v1 "
                "(default LLM_BASE_URL; LLM_API_KEY is sent only to LLM_BASE_URL)"
            ),
        ] = None,
        model: Annotated[
            str | None, Field(description="Model (default LLM_MODEL, else the first listed)")
        ] = None,
        profile: Annotated[
            Literal["synchronous", "concurrent", "constant", "poisson", "sweep"],
            Field(
                description="Load profile: synchronous (one at a time), concurrent (closed "
                "loop, needs concurrency), constant/poisson (open loop at one rate), sweep"
            ),
        ] = "concurrent",
        concurrency: Annotated[
            int | None,
            Field(ge=1, le=4096, description="Streams (concurrent) or in-flight cap (rates)"),
        ] = None,
        rate: Annotated[
            list[Annotated[float, Field(gt=0)]] | None,
            Field(description="Requests per second: one for constant/poisson, a list for sweep"),
        ] = None,
        max_requests: Annotated[
            int | None, Field(ge=1, le=1_000_000, description="Requests per phase")
        ] = None,
        max_seconds: Annotated[
            float | None, Field(gt=0, le=86_400, description="Seconds per phase")
        ] = None,
        warmup_requests: Annotated[
            int | None, Field(ge=0, le=100_000, description="Unmeasured requests per phase first")
        ] = None,
        prompt_tokens: Annotated[
            int | None, Field(ge=1, le=1_000_000, description="Synthetic prompt length (128)")
        ] = None,
        output_tokens: Annotated[
            int | None, Field(ge=1, le=1_000_000, description="max_tokens of each request")
        ] = None,
        endpoint: Literal["chat", "completions"] = "chat",
        stream: bool = True,
        slo: Annotated[dict[str, float] | None, Field(description=SLO_HELP)] = None,
        rampup: Annotated[
            float | None, Field(ge=0, description="Seconds over which concurrent streams start")
        ] = None,
        sweep_points: Annotated[int | None, Field(ge=1, le=50)] = None,
        seed: Annotated[int, Field(ge=0)] = 42,
        request_timeout_s: Annotated[float, Field(gt=0, le=3600)] = 120.0,
        label: Annotated[
            str | None, Field(max_length=200, description="Free text kept with the run")
        ] = None,
    ) -> BenchmarkSummary:
        """Load-test an OpenAI-compatible endpoint with the llm_benchmark engine; bounded by
        max_requests and/or max_seconds per phase. Reports progress while it runs; cancelling
        the request stops the load and keeps nothing. The reports (JSON summary, HTML) go to
        RESULTS_DIR/<run_id>/."""
        base_url = (target_url or settings.llm_base_url or "").rstrip("/")
        if not base_url:
            raise ToolError("no benchmark target: pass target_url or set LLM_BASE_URL")
        same_target = settings.llm_base_url is not None and base_url == settings.llm_base_url
        options: dict[str, Any] = {
            "base_url": base_url,
            # The server's key goes only to its own LLM, never to a URL a caller chose.
            "api_key": settings.llm_api_key if same_target else None,
            "model": model or (settings.llm_model if same_target else None),
            "profile": profile,
            "concurrency": concurrency,
            "rate": rate,
            "max_requests": max_requests,
            "max_seconds": max_seconds,
            "warmup": {"requests": warmup_requests} if warmup_requests else None,
            "prompt_tokens": prompt_tokens,
            "output_tokens": output_tokens,
            "endpoint": endpoint,
            "stream": stream,
            "slo": slo or {},
            "rampup": rampup,
            "sweep_points": sweep_points,
            "seed": seed,
            "timeout": request_timeout_s,
        }
        return await _run_benchmark(state, ctx, options, label)

    @mcp.tool()
    async def list_benchmarks(
        limit: Annotated[int, Field(ge=1, le=1000, description="Newest runs to list")] = 50,
    ) -> BenchmarkList:
        """Benchmark runs on the results volume (RESULTS_DIR), newest first."""
        runs = await asyncio.to_thread(bm.list_runs, settings.results_dir)
        return BenchmarkList(
            results_dir=str(settings.results_dir), total=len(runs), runs=runs[:limit]
        )

    @mcp.tool()
    async def get_report(
        run_id: Annotated[
            str, Field(min_length=1, max_length=128, description="From list_benchmarks")
        ],
    ) -> BenchmarkSummary:
        """The JSON summary of one run; its HTML report is the resource html_report_uri."""
        try:
            return await asyncio.to_thread(bm.load_summary, settings.results_dir, run_id)
        except bm.RunError as exc:
            raise ToolError(str(exc)) from None

    @mcp.tool()
    async def rag_query(
        query: Annotated[str, Field(min_length=1, description="The question")],
        collection: Annotated[str | None, Field(description="Default: the service's")] = None,
        top_k: Annotated[int, Field(ge=1, le=1000, description="Candidates retrieved")] = 10,
        top_n: Annotated[int, Field(ge=1, le=1000, description="Sources kept")] = 3,
        generate: Annotated[bool, Field(description="false: sources only, no LLM call")] = True,
        strategy: Literal["dense", "sparse", "hybrid"] | None = None,
    ) -> RagAnswer:
        """Ask the RAG service: an answer with numbered citations and its sources."""
        body: dict[str, Any] = {
            "query": query,
            "top_k": top_k,
            "top_n": top_n,
            "generate": generate,
        }
        if collection is not None:
            body["collection"] = collection
        if strategy is not None:
            body["strategy"] = strategy
        try:
            data = await state.rag.query(body)
        except RagError as exc:
            raise ToolError(str(exc)) from None
        return RagAnswer(
            answer=data.get("answer", ""),
            answer_mode=data.get("answer_mode", "none"),
            collection=data.get("collection_name", collection or ""),
            sources=[RagSource.model_validate(s) for s in data.get("sources", [])],
            generation_error=data.get("generation_error"),
            fallback_reason=data.get("fallback_reason"),
            latency_ms=data.get("latency_ms") or {},
        )

    @mcp.tool()
    async def rag_ingest(
        text: Annotated[str, Field(min_length=1, description="The document's text")],
        document_id: Annotated[
            str | None, Field(description="Default: the SHA-256 of the text; same id = new version")
        ] = None,
        metadata: Annotated[
            dict[str, Any] | None, Field(description="Kept with every chunk")
        ] = None,
        collection: Annotated[str | None, Field(description="Default: the service's")] = None,
    ) -> RagIngestResult:
        """Ingest one document into the RAG service (idempotent: the same text and metadata
        are not written again)."""
        body: dict[str, Any] = {"text": text}
        for key, value in (
            ("document_id", document_id),
            ("metadata", metadata),
            ("collection", collection),
        ):
            if value is not None:
                body[key] = value
        try:
            data = await state.rag.ingest(body)
        except RagError as exc:
            raise ToolError(str(exc)) from None
        return RagIngestResult(
            collection=data["collection_name"],
            document_id=data["document_id"],
            status=data["status"],
            chunks_created=data["chunks_created"],
            content_hash=data["content_hash"],
        )

    @mcp.tool()
    async def list_collections() -> RagCollections:
        """The RAG service's collections and their chunk counts."""
        try:
            data = await state.rag.collections()
        except RagError as exc:
            raise ToolError(str(exc)) from None
        return RagCollections(
            collections=[RagCollection.model_validate(c) for c in data.get("collections", [])]
        )

    @mcp.resource(
        "benchmark://runs/{run_id}/llm_benchmark.html",
        name="benchmark_report_html",
        description="The HTML report of a benchmark run (charts, every phase)",
        mime_type="text/html",
    )
    async def report_html(run_id: str) -> str:
        return await asyncio.to_thread(bm.report_file, settings.results_dir, run_id, bm.REPORT_HTML)

    @mcp.resource(
        "benchmark://runs/{run_id}/llm_benchmark.json",
        name="benchmark_report_json",
        description="The engine's full JSON report of a run (configuration, phases, every request)",
        mime_type="application/json",
    )
    async def report_json(run_id: str) -> str:
        return await asyncio.to_thread(bm.report_file, settings.results_dir, run_id, bm.REPORT_JSON)

    @mcp.custom_route("/healthz", methods=["GET"])
    async def healthz(request: Request) -> Response:
        return JSONResponse(
            {
                "status": "ok",
                "version": __version__,
                "auth": settings.auth_token is not None,
                "benchmark_running": state.running,
            }
        )

    @mcp.custom_route("/metrics", methods=["GET"])
    async def metrics(request: Request) -> Response:
        return Response(generate_latest(state.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    return mcp


def create_app(settings: Settings, host: str = "127.0.0.1") -> ASGIApp:
    """The ASGI app: /mcp (bearer auth when MCP_AUTH_TOKEN is set), /healthz, /metrics."""
    return BearerAuth(build_server(settings, host).streamable_http_app(), settings.auth_token)


__all__ = ["BenchmarkMCP", "build_server", "create_app"]
