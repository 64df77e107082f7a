"""``aistack-agents bench ...``:

- ``bench travelplanner evaluate --database DIR --queries FILE --plans FILE``: the official
  metrics of submitted plans (JSONL, one {"idx", "query", "plan"} per query, in order);
- ``bench travelplanner run --database DIR --queries FILE --mode sole-planning|two-stage
  --agent openai|a2a``: plans from the agent under test, then the metrics;
- ``bench vendingbench --days N --seed S --policy llm|idle|restock``: the simulation, with the
  LLM agent loop or a scripted baseline.

The LLM: LLM_URL / LLM_MODEL / LLM_API_KEY (as every command here) or --llm-url/--model. Each
run writes ``<results-dir>/<benchmark>-<UTC time>/`` (reports, plans, metrics.prom), logs to
MLflow when MLFLOW_TRACKING_URI is set (experiment MLFLOW_EXPERIMENT_NAME, default
aistack-bench) and pushes its metrics when PUSHGATEWAY_URL (or --pushgateway) is set. stdout
carries one JSON summary. Exit status: 0 done, 2 bad input or configuration, 1 the results
were written but MLflow or the Pushgateway refused them.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time
from pathlib import Path
from typing import Any


def add_parser(sub: Any) -> None:
    bench = sub.add_parser("bench", help="agentic benchmarks: TravelPlanner, Vending-Bench")
    which = bench.add_subparsers(dest="benchmark", required=True)

    tp = which.add_parser("travelplanner", help="TravelPlanner: plans and the official metrics")
    tp_sub = tp.add_subparsers(dest="action", required=True)
    ev = tp_sub.add_parser("evaluate", help="score submitted plans")
    run = tp_sub.add_parser("run", help="obtain plans from an agent, then score them")
    for p in (ev, run):
        p.add_argument("--database", required=True, help="the reference database directory")
        p.add_argument("--queries", required=True, help="the split: .jsonl, .json or .csv")
        _common(p)
    ev.add_argument("--plans", required=True, help="JSONL of plans, in query order")
    run.add_argument("--mode", choices=("sole-planning", "two-stage"), default="sole-planning")
    run.add_argument("--agent", choices=("openai", "a2a"), default="openai")
    run.add_argument("--a2a-url", default=os.environ.get("A2A_URL", "http://127.0.0.1:9999"))
    run.add_argument("--limit", type=int, default=None, help="the first N queries only")
    run.add_argument("--max-steps", type=int, default=30, help="two-stage tool rounds")
    _llm(run)

    vb = which.add_parser("vendingbench", help="Vending-Bench simulation (net worth)")
    vb.add_argument("--days", type=int, default=60, help="horizon in simulated days")
    vb.add_argument("--seed", type=int, default=0)
    vb.add_argument("--policy", choices=("llm", "idle", "restock"), default="llm")
    vb.add_argument("--max-steps", type=int, default=2000, help="model calls at most")
    vb.add_argument("--context-messages", type=int, default=60, help="history kept per call")
    vb.add_argument("--no-noise", action="store_true", help="deterministic demand")
    vb.add_argument("--delivery-days", type=int, default=3)
    _llm(vb)
    _common(vb)


def _llm(p: argparse.ArgumentParser) -> None:
    p.add_argument("--llm-url", default=os.environ.get("LLM_URL") or os.environ.get("LOCALAI_URL"))
    p.add_argument("--model", default=os.environ.get("LLM_MODEL", "llama-3.2-3b-instruct"))
    p.add_argument("--temperature", type=float, default=0.0)


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--results-dir",
        default=os.environ.get("BENCH_RESULTS_DIR", "bench-results"),
        help="default BENCH_RESULTS_DIR or ./bench-results",
    )
    p.add_argument("--run-name", default=None, help="default <benchmark>-<UTC time>")
    p.add_argument("--pushgateway", default=os.environ.get("PUSHGATEWAY_URL") or None)
    p.add_argument("--indent", type=int, default=None)


def _fail(msg: str) -> int:
    print(f"aistack-agents bench: {msg}", file=sys.stderr)
    print(json.dumps({"error": msg}))
    return 2


def main(args: argparse.Namespace) -> int:
    from aistack_agents.bench.tp_data import DataError

    try:
        if args.benchmark == "travelplanner":
            name, labels, doc, metrics, series = _travelplanner(args)
        else:
            name, labels, doc, metrics, series = _vending(args)
    except (DataError, ValueError) as exc:
        return _fail(str(exc))
    return _publish(args, name, labels, doc, metrics, series)


def _openai_agent(args: argparse.Namespace, max_steps: int) -> Any:
    from aistack_agents.bench.tp_runner import OpenAIAgent
    from aistack_agents.settings import NO_LLM_HELP

    if not args.llm_url:
        raise ValueError(NO_LLM_HELP)
    return OpenAIAgent(
        args.llm_url,
        args.model,
        os.environ.get("LLM_API_KEY") or "none",
        max_steps=max_steps,
        temperature=args.temperature,
    )


def _travelplanner(args: argparse.Namespace) -> tuple[Any, ...]:
    from aistack_agents.bench import tp_data, tp_eval, tp_runner

    db = tp_data.Database.load(args.database)
    queries = tp_data.load_queries(args.queries)
    config: dict[str, Any] = {"database": args.database, "queries": args.queries}
    records: list[dict[str, Any]]
    if args.action == "evaluate":
        plans = tp_data.load_plans(args.plans, len(queries))
        records = [
            {"idx": i, "query": q.get("query", ""), "plan": p}
            for i, (q, p) in enumerate(zip(queries, plans, strict=True), 1)
        ]
        labels = {"agent": "submitted", "mode": "evaluate"}
    else:
        if args.limit is not None:
            if args.limit < 1:
                raise ValueError("--limit must be at least 1")
            queries = queries[: args.limit]
        if args.agent == "a2a":
            agent: Any = tp_runner.A2AAgent(args.a2a_url)
            if args.mode != "sole-planning":
                raise ValueError("--agent a2a plans in sole-planning mode")
            config["a2a_url"] = args.a2a_url
        else:
            agent = _openai_agent(args, args.max_steps)
            config |= {"llm_url": args.llm_url, "model": args.model, "max_steps": args.max_steps}
        config["mode"] = args.mode

        def progress(i: int, rec: dict[str, Any]) -> None:
            state = "plan" if rec.get("plan") else f"no plan ({rec.get('error', 'unparsable')})"
            print(f"query {i}/{len(queries)}: {state}", file=sys.stderr)

        records = tp_runner.run(agent, queries, args.mode, db, progress)
        labels = {"agent": args.agent, "mode": args.mode}
    metrics, results = tp_eval.evaluate(db, queries, [r["plan"] for r in records])
    plans_out = []
    for rec, res in zip(records, results, strict=True):
        failed = [
            (tp_eval.COMMONSENSE | tp_eval.HARD)[k]
            for part in (res["commonsense"], res["hard"])
            if part
            for k, (ok, _msg) in part.items()
            if ok is False
        ]
        plans_out.append({**rec, **res, "failed": failed})
    doc = {"benchmark": "travelplanner", "config": config, "metrics": metrics, "plans": plans_out}
    flat = {k: v for k, v in metrics.items() if isinstance(v, float)}
    for cname, c in metrics["per_constraint"].items():
        if c["rate"] is not None:
            key = "constraint_" + cname.lower().replace(" ", "_").replace(".", "")
            flat[f"{key}_pass_rate"] = c["rate"]
    return "travelplanner", labels, doc, flat, None


def _restock_policy(sim: Any) -> None:
    """A baseline: keep 20 of each small product ordered, the machine full, cash collected."""
    sim.collect_cash()
    small = [p for p in sim.cfg.catalogue if p.size == "small"][:4]
    pending = {o.product for o in sim.orders}
    for p in small:
        low = sim.storage.get(p.name, 0) < sim.cfg.slot_capacity and p.name not in pending
        if low and sim.balance > p.wholesale * 20 + 40:
            sim.order(p.name, 20)
        have = sim.machine_stock().get(p.name, 0)
        room = min(sim.cfg.slot_capacity - have, sim.storage.get(p.name, 0))
        if room > 0:
            with contextlib.suppress(ValueError):  # no free slot of its size
                sim.stock(p.name, room)


def _vending(args: argparse.Namespace) -> tuple[Any, ...]:
    from aistack_agents.bench import vending

    cfg = vending.Config(
        days=args.days,
        seed=args.seed,
        demand_noise=not args.no_noise,
        delivery_days=args.delivery_days,
    )
    sim = vending.VendingSim(cfg)
    config: dict[str, Any] = {
        "days": args.days,
        "seed": args.seed,
        "policy": args.policy,
        "demand_noise": cfg.demand_noise,
        "delivery_days": cfg.delivery_days,
        "start_cash": cfg.start_cash,
        "daily_fee": cfg.daily_fee,
    }
    if args.policy == "llm":
        agent = _openai_agent(args, 0)
        config |= {"llm_url": args.llm_url, "model": args.model, "max_steps": args.max_steps}

        def chat(messages: list[dict[str, Any]], tools: list[Any]) -> Any:
            return agent.chat(messages, tools)

        def on_step(step: int, tool: str, out: str) -> None:
            if tool == "wait_for_next_day":
                print(f"step {step}: day {sim.day}, net worth {sim.net_worth()}", file=sys.stderr)

        result = vending.run_llm_agent(
            sim,
            chat,
            max_steps=args.max_steps,
            context_messages=args.context_messages,
            on_step=on_step,
        )
    elif args.policy == "idle":
        result = vending.run_policy(sim, lambda s: None)
    else:
        result = vending.run_policy(sim, _restock_policy)
    doc = {"benchmark": "vendingbench", "config": config, "result": result}
    metrics = {
        "net_worth": float(result["net_worth"]),
        "units_sold": float(result["units_sold"]),
        "days_simulated": float(result["days_simulated"]),
        "bankrupt": float(result["bankrupt"]),
        "days_until_sales_stop": float(result["days_until_sales_stop"]),
    }
    series = {
        "net_worth_by_day": [(h["day"], h["net_worth"]) for h in result["history"]],
        "units_sold_by_day": [(h["day"], h["units_sold"]) for h in result["history"]],
    }
    labels = {"agent": args.policy, "seed": str(args.seed)}
    return "vendingbench", labels, doc, metrics, series


def _publish(
    args: argparse.Namespace,
    name: str,
    labels: dict[str, str],
    doc: dict[str, Any],
    metrics: dict[str, float],
    series: dict[str, list[tuple[int, float]]] | None,
) -> int:
    from aistack_agents.bench.export import ExportError, export_prometheus, log_to_mlflow
    from aistack_agents.bench.report import atomic_write, write_reports

    run_name = args.run_name or f"{name}-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}"
    out = Path(args.results_dir) / run_name
    paths = write_reports(out, name, doc)
    if name == "travelplanner":
        plans = "".join(
            json.dumps({"idx": p["idx"], "query": p["query"], "plan": p["plan"]}) + "\n"
            for p in doc["plans"]
        )
        atomic_write(out / "plans.jsonl", plans)
        paths["plans"] = str(out / "plans.jsonl")
    summary: dict[str, Any] = {"benchmark": name, "run": run_name, "metrics": metrics, **paths}
    status = 0
    try:
        summary |= export_prometheus(name, labels, metrics, args.pushgateway, out / "metrics.prom")
    except ExportError as exc:
        summary["pushgateway_error"] = str(exc)
        status = 1
    tracking = os.environ.get("MLFLOW_TRACKING_URI")
    if tracking:
        params = {**doc["config"], **labels}
        try:
            summary["mlflow"] = log_to_mlflow(
                tracking,
                os.environ.get("MLFLOW_EXPERIMENT_NAME") or "aistack-bench",
                run_name,
                params,
                metrics,
                [Path(paths["report_json"]), Path(paths["report_html"])],
                series,
            )
        except ExportError as exc:
            summary["mlflow_error"] = str(exc)
            status = 1
    for key in ("pushgateway_error", "mlflow_error"):
        if key in summary:
            print(f"aistack-agents bench: {summary[key]}", file=sys.stderr)
    print(json.dumps(summary, indent=args.indent, default=str))
    return status
