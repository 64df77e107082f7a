"""Obtains TravelPlanner plans from the agent under test.

Modes (those of the paper):
- ``sole-planning``: the query's reference information (collected by the benchmark's authors,
  the ``reference_information`` field of the split) is in the prompt; the agent only plans.
- ``two-stage``: the model first collects information itself with the benchmark's tools over
  the reference database (flights, distance matrix, accommodations, restaurants, attractions,
  cities, a notebook), as OpenAI tool calls, then plans from its notebook. The loop stops when
  the model calls ``finish`` or answers without a tool call, or after ``max_steps`` tool rounds
  (30 by default, the paper's step limit for its ReAct agents); each tool result is cut to
  ``max_rows`` rows so that one search cannot fill the context.

Agents: an OpenAI-compatible model (``openai`` client), or any A2A agent of the project through
``aistack-agents ask``'s client (sole-planning only: an A2A agent brings its own tools).

The plan is asked for as JSON in the evaluation's format (a list of day objects with the keys
below), instead of the paper's free-text plan plus a GPT-4 parsing step: the first JSON list in
the reply is taken; a reply without one is an undelivered plan, as in the paper.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from aistack_agents.bench.tp_data import Database
from aistack_agents.tools import openai_function

DAY_KEYS = (
    "days",
    "current_city",
    "transportation",
    "breakfast",
    "attraction",
    "lunch",
    "dinner",
    "accommodation",
)
PLANNER_SYSTEM = (
    "You are a travel planner. From the reference information and the query, write a detailed "
    "day-by-day plan. Use only flights, restaurants, attractions and accommodations that appear "
    "in the reference information, with their exact names and cities; every day has "
    "transportation, breakfast, attraction, lunch, dinner and accommodation, '-' when there is "
    "none (the last day needs no accommodation). Keep to the budget and to every constraint of "
    "the query; do not repeat restaurants or attractions."
)
FORMAT = (
    "Answer with a JSON list only, one object per day, with the keys "
    + ", ".join(DAY_KEYS)
    + ". Formats: current_city 'from A to B' on travel days, else 'A'; transportation "
    "'Flight Number: F123, from A to B, Departure Time: 08:00, Arrival Time: 10:00' or "
    "'Self-driving, from A to B, ...' or 'Taxi, from A to B, ...'; meals and accommodation "
    "'Name, City'; attraction 'Name, City;' entries each ending with ';'."
)
COLLECTOR_SYSTEM = (
    "You collect travel information for a planner. Use the tools to look up flights, driving "
    "distances, accommodations, restaurants and attractions for the query, write what the "
    "planner needs with notebook_write, then call finish. Do not write the plan yourself."
)


def reference_text(reference: Any) -> str:
    """The split's reference information (a list of {Description, Content}) as prompt text."""
    if isinstance(reference, list):
        parts = []
        for item in reference:
            if isinstance(item, dict):
                parts.append(f"{item.get('Description', '')}:\n{item.get('Content', '')}")
            else:
                parts.append(str(item))
        return "\n\n".join(parts)
    return str(reference or "")


def planner_prompt(query: dict[str, Any], reference: str) -> str:
    return f"Reference information:\n{reference}\n\nQuery: {query['query']}\n\n{FORMAT}"


def parse_plan(text: str | None) -> list[dict[str, Any]] | None:
    """The first JSON list of day objects in a reply (a ```json fence or bare), or None."""
    if not text:
        return None
    decoder = json.JSONDecoder()
    for match in re.finditer(r"\[", text):
        try:
            value, _ = decoder.raw_decode(text, match.start())
        except json.JSONDecodeError:
            continue
        if isinstance(value, list) and value and all(isinstance(d, dict) for d in value):
            return [{k: d[k] for k in d if isinstance(k, str)} for d in value]
    return None


class Agent(Protocol):
    name: str

    def plan(self, query: dict[str, Any], mode: str, db: Database | None) -> dict[str, Any]:
        """{"plan": [...] or None, "reply": raw text, ...}."""
        ...


def _table(rows: list[dict[str, Any]], max_rows: int, empty: str) -> str:
    if not rows:
        return empty
    cols = [c for c in rows[0] if c]
    lines = ["\t".join(cols)]
    lines += ["\t".join(str(r.get(c, "")) for c in cols) for r in rows[:max_rows]]
    if len(rows) > max_rows:
        lines.append(f"... {len(rows) - max_rows} more rows")
    return "\n".join(lines)


TOOLS = [
    openai_function(
        "search_flights",
        "Flights from a city to a city on a date",
        origin="departure city",
        destination="arrival city",
        date="YYYY-MM-DD",
    ),
    openai_function(
        "distance_matrix",
        "Driving distance, duration and cost between two cities",
        origin="from city",
        destination="to city",
        mode="self-driving or taxi",
    ),
    openai_function("search_accommodations", "Accommodations in a city", city="city"),
    openai_function("search_restaurants", "Restaurants in a city", city="city"),
    openai_function("search_attractions", "Attractions in a city", city="city"),
    openai_function("search_cities", "The cities of a state", state="state"),
    openai_function(
        "notebook_write",
        "Keep information for the planner",
        description="what it is",
        content="the information",
    ),
    {
        "type": "function",
        "function": {
            "name": "finish",
            "description": "Information collection is done",
            "parameters": {"type": "object", "properties": {}},
        },
    },
]


@dataclass
class ToolBox:
    """The two-stage tools over the reference database, and the notebook they fill."""

    db: Database
    max_rows: int = 50
    notebook: list[dict[str, str]] = field(default_factory=list)

    def call(self, name: str, args: dict[str, Any]) -> str:
        a = {k: str(v) for k, v in args.items()}
        try:
            if name == "search_flights":
                rows = self.db.search_flights(a["origin"], a["destination"], a["date"])
                return _table(rows, self.max_rows, "There is no flight on that route and date.")
            if name == "distance_matrix":
                mode = a.get("mode", "self-driving")
                cost = self.db.ground_cost(a["origin"], a["destination"], mode)
                if cost is None:
                    return (
                        f"{mode}, from {a['origin']} to {a['destination']}, no valid information."
                    )
                return f"{mode}, from {a['origin']} to {a['destination']}, cost: {cost}"
            if name in ("search_accommodations", "search_restaurants", "search_attractions"):
                kind = name.removeprefix("search_")
                rows = self.db.in_city(kind, a["city"])
                return _table(rows, self.max_rows, f"There is no {kind[:-1]} in this city.")
            if name == "search_cities":
                return ", ".join(self.db.cities_of(a["state"])) or "Invalid state."
            if name == "notebook_write":
                self.notebook.append({"Description": a["description"], "Content": a["content"]})
                return f"Written ({len(self.notebook)} entries)."
        except KeyError as exc:
            return f"Missing argument {exc}."
        return f"Unknown tool {name}."


@dataclass
class OpenAIAgent:
    """An OpenAI-compatible chat model (LLM_URL, LLM_MODEL, LLM_API_KEY in the CLI)."""

    base_url: str
    model: str
    api_key: str = "none"
    max_steps: int = 30
    max_rows: int = 50
    temperature: float = 0.0
    timeout_s: float = 300.0
    name: str = "openai"
    _client: Any = None

    def client(self) -> Any:
        if self._client is None:
            from openai import OpenAI

            self._client = OpenAI(
                base_url=self.base_url, api_key=self.api_key or "none", timeout=self.timeout_s
            )
        return self._client

    def chat(self, messages: list[dict[str, Any]], tools: list[Any] | None = None) -> Any:
        kwargs: dict[str, Any] = {"tools": tools} if tools else {}
        reply = self.client().chat.completions.create(
            model=self.model, messages=messages, temperature=self.temperature, **kwargs
        )
        return reply.choices[0].message

    def plan(self, query: dict[str, Any], mode: str, db: Database | None) -> dict[str, Any]:
        steps = 0
        if mode == "two-stage":
            if db is None:
                raise ValueError("two-stage mode needs the reference database")
            box = ToolBox(db, self.max_rows)
            messages: list[dict[str, Any]] = [
                {"role": "system", "content": COLLECTOR_SYSTEM},
                {"role": "user", "content": query["query"]},
            ]
            while steps < self.max_steps:
                message = self.chat(messages, TOOLS)
                calls = message.tool_calls or []
                if not calls:
                    break
                steps += 1
                messages.append(message.model_dump(exclude_none=True))
                done = False
                for call in calls:
                    if call.function.name == "finish":
                        done = True
                        result = "Done."
                    else:
                        try:
                            args = json.loads(call.function.arguments or "{}")
                        except json.JSONDecodeError:
                            args = None
                        result = (
                            box.call(call.function.name, args)
                            if isinstance(args, dict)
                            else "The arguments are not a JSON object."
                        )
                    messages.append({"role": "tool", "tool_call_id": call.id, "content": result})
                if done:
                    break
            reference = reference_text(box.notebook)
        else:
            reference = reference_text(query.get("reference_information"))
        text = self.chat(
            [
                {"role": "system", "content": PLANNER_SYSTEM},
                {"role": "user", "content": planner_prompt(query, reference)},
            ]
        ).content
        return {"plan": parse_plan(text), "reply": text, "tool_steps": steps}


@dataclass
class A2AAgent:
    """Any A2A agent (the lab's BeeAI agent, the router, the crew) by its base URL."""

    url: str
    timeout_s: float = 600.0
    name: str = "a2a"
    ask: Callable[..., Any] | None = None

    def plan(self, query: dict[str, Any], mode: str, db: Database | None) -> dict[str, Any]:
        if mode != "sole-planning":
            raise ValueError("an A2A agent plans in sole-planning mode (it brings its own tools)")
        from aistack_agents.cli import ask

        prompt = (
            f"{PLANNER_SYSTEM}\n\n"
            f"{planner_prompt(query, reference_text(query.get('reference_information')))}"
        )
        out = asyncio.run((self.ask or ask)(self.url, prompt, self.timeout_s))
        text = out.get("answer") or ""
        result: dict[str, Any] = {"plan": parse_plan(text), "reply": text, "state": out["state"]}
        if out["state"] != "completed":
            result["error"] = out.get("message") or out["state"]
        return result


def run(
    agent: Agent,
    queries: list[dict[str, Any]],
    mode: str,
    db: Database | None,
    progress: Callable[[int, dict[str, Any]], None] | None = None,
) -> list[dict[str, Any]]:
    """One {"idx", "query", "plan", ...} per query, in order (the submission format). A failed
    call is recorded and counts as an undelivered plan; the run goes on."""
    if mode not in ("sole-planning", "two-stage"):
        raise ValueError(f"mode {mode!r}: sole-planning or two-stage")
    out = []
    for idx, query in enumerate(queries, 1):
        try:
            got = agent.plan(query, mode, db)
        except Exception as exc:  # the agent's transport or protocol errors alike
            got = {"plan": None, "error": f"{type(exc).__name__}: {exc}"}
        record = {"idx": idx, "query": query.get("query", ""), **got}
        out.append(record)
        if progress:
            progress(idx, record)
    return out
