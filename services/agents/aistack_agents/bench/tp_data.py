"""TravelPlanner's reference database and queries, read from files the user gives (the public
downloads; nothing is fetched at run time).

The database directory has the upstream layout::

    flights/clean_Flights_2022.csv            accommodations/clean_accommodations_2022.csv
    restaurants/clean_restaurant_2022.csv     attractions/attractions.csv
    googleDistanceMatrix/distance.csv         background/citySet_with_states.txt

The official evaluator loads them with pandas; the lookups below reproduce its semantics with
the stdlib: rows with any missing value are dropped (``read_csv().dropna()``, pandas' default
NA strings) except in distance.csv, names match as case-sensitive substrings
(``str.contains(re.escape(name))``) and the first matching row in file order is used.

Queries: the validation split as JSONL, a JSON list, or the CSV of the dataset's files
(``local_constraint``, ``date`` and ``reference_information`` may be Python literals in strings,
as on the Hugging Face dataset; they are parsed with ``ast.literal_eval``, never ``eval``).
"""

from __future__ import annotations

import ast
import csv
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# pandas' default NA strings (read_csv na_values): a field equal to one of these is missing.
NA_STRINGS = frozenset(
    {
        *("", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND"),
        *("1.#QNAN", "<NA>", "N/A", "NA", "NULL", "NaN", "None", "n/a", "nan", "null"),
    }
)

FILES = {
    "flights": "flights/clean_Flights_2022.csv",
    "accommodations": "accommodations/clean_accommodations_2022.csv",
    "restaurants": "restaurants/clean_restaurant_2022.csv",
    "attractions": "attractions/attractions.csv",
    "distance": "googleDistanceMatrix/distance.csv",
    "cities": "background/citySet_with_states.txt",
}
REQUIRED_COLUMNS = {
    "flights": ["Flight Number", "Price", "OriginCityName", "DestCityName", "FlightDate"],
    "accommodations": [
        "NAME",
        "price",
        "room type",
        "house_rules",
        "minimum nights",
        "maximum occupancy",
        "city",
    ],
    "restaurants": ["Name", "Average Cost", "Cuisines", "City"],
    "attractions": ["Name", "City"],
    "distance": ["origin", "destination", "duration", "distance"],
}
QUERY_FIELDS = ("org", "dest", "days", "visiting_city_number", "people_number", "budget")


class DataError(ValueError):
    """A database or query file is missing or malformed (the message names it)."""


def _read_csv(path: Path, kind: str, dropna: bool) -> list[dict[str, str]]:
    if not path.is_file():
        raise DataError(f"{kind}: {path} does not exist")
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        missing = [c for c in REQUIRED_COLUMNS[kind] if c not in (reader.fieldnames or [])]
        if missing:
            raise DataError(f"{kind}: {path} lacks the column(s) {missing}")
        rows = list(reader)
    if dropna:
        rows = [r for r in rows if not any((v or "").strip() in NA_STRINGS for v in r.values())]
    return rows


def _number(value: str, kind: str, column: str) -> float:
    try:
        return float(value)
    except ValueError:
        raise DataError(f"{kind}: {column} {value!r} is not a number") from None


@dataclass
class Database:
    """The reference database (the sandbox of the benchmark's tools and evaluator)."""

    flights: list[dict[str, Any]]
    accommodations: list[dict[str, Any]]
    restaurants: list[dict[str, Any]]
    attractions: list[dict[str, Any]]
    distances: dict[tuple[str, str], tuple[str | None, str | None]]
    city_state: dict[str, str]
    root: Path = field(default=Path("."))

    @classmethod
    def load(cls, root: str | Path) -> Database:
        root = Path(root)
        if not root.is_dir():
            raise DataError(f"database: {root} is not a directory")
        flights = _read_csv(root / FILES["flights"], "flights", True)
        for r in flights:
            r["Price"] = _number(r["Price"], "flights", "Price")
        acc = _read_csv(root / FILES["accommodations"], "accommodations", True)
        for r in acc:
            for col in ("price", "minimum nights", "maximum occupancy"):
                r[col] = _number(r[col], "accommodations", col)
        rest = _read_csv(root / FILES["restaurants"], "restaurants", True)
        for r in rest:
            r["Average Cost"] = _number(r["Average Cost"], "restaurants", "Average Cost")
        attractions = _read_csv(root / FILES["attractions"], "attractions", True)
        distances: dict[tuple[str, str], tuple[str | None, str | None]] = {}
        for r in _read_csv(root / FILES["distance"], "distance", False):
            key = (r["origin"], r["destination"])
            if key not in distances:  # the first row wins, as values[0] upstream
                dur, dist = r["duration"], r["distance"]
                distances[key] = (
                    None if dur.strip() in NA_STRINGS else dur,
                    None if dist.strip() in NA_STRINGS else dist,
                )
        cities_path = root / FILES["cities"]
        if not cities_path.is_file():
            raise DataError(f"cities: {cities_path} does not exist")
        city_state: dict[str, str] = {}
        for n, line in enumerate(cities_path.read_text(encoding="utf-8").split("\n"), 1):
            if not line.strip():
                continue
            parts = line.split("\t")
            if len(parts) != 2:
                raise DataError(f"cities: {cities_path} line {n} is not 'city<TAB>state'")
            city_state[parts[0]] = parts[1]
        return cls(flights, acc, rest, attractions, distances, city_state, root)

    # -- lookups as the official evaluator does them ----------------------------------------
    def restaurant(self, name: str, city: str) -> dict[str, Any] | None:
        return next((r for r in self.restaurants if name in r["Name"] and r["City"] == city), None)

    def attraction(self, name: str, city: str) -> dict[str, Any] | None:
        return next((r for r in self.attractions if name in r["Name"] and r["City"] == city), None)

    def accommodation_matches(self, name: str, city: str) -> list[dict[str, Any]]:
        return [r for r in self.accommodations if name in r["NAME"] and r["city"] == city]

    def flight(self, number: str, org: str | None = None, dest: str | None = None) -> Any:
        for r in self.flights:
            if r["Flight Number"] != number:
                continue
            if org is not None and (r["OriginCityName"] != org or r["DestCityName"] != dest):
                continue
            return r
        return None

    def ground_cost(self, org: str, dest: str, mode: str) -> int | None:
        """The distance matrix's cost for self-driving (5 cents a km) or a taxi ($1 a km),
        None when the route is unknown or takes days (``run_for_evaluation`` upstream)."""
        found = self.distances.get((before_parenthesis(org), before_parenthesis(dest)))
        if found is None or found[0] is None or found[1] is None:
            return None
        duration, distance = found
        if "day" in duration:
            return None
        km = float(distance.replace("km", "").replace(",", ""))
        if "driving" in mode:
            return int(km * 0.05)
        if mode == "taxi":
            return int(km)
        return None

    # -- the tools of the two-stage mode (text results, as the upstream tools print) --------
    def search_flights(self, origin: str, destination: str, date: str) -> list[dict[str, Any]]:
        return [
            r
            for r in self.flights
            if r["OriginCityName"] == origin
            and r["DestCityName"] == destination
            and r["FlightDate"] == date
        ]

    def in_city(self, kind: str, city: str) -> list[dict[str, Any]]:
        column = "city" if kind == "accommodations" else "City"
        rows: list[dict[str, Any]] = getattr(self, kind)
        return [r for r in rows if r.get(column) == city]

    def cities_of(self, state: str) -> list[str]:
        return [c for c, s in self.city_state.items() if s == state]


def before_parenthesis(text: str) -> str:
    """'Rockford(Illinois)' -> 'Rockford' (the text before the first parenthesised part)."""
    match = re.search(r"^(.*?)\([^)]*\)", text)
    return match.group(1) if match else text


def name_and_city(text: str) -> tuple[str, str]:
    """'Name, with commas, City' -> ('Name, with commas', 'City'): the last comma separates the
    city (an optional '(State)' after it is dropped); ('-', '-') when there is no comma."""
    match = re.search(r"(.*?),\s*([^,]+)(\(\w[\w\s]*\))?$", text)
    if not match:
        return "-", "-"
    return match.group(1).strip(), before_parenthesis(match.group(2).strip()).strip()


def _literal(value: Any, what: str, line: int) -> Any:
    if isinstance(value, str):
        try:
            return ast.literal_eval(value)
        except (ValueError, SyntaxError):
            raise DataError(f"query {line}: {what} is not a literal: {value[:80]!r}") from None
    return value


def normalise_query(raw: dict[str, Any], line: int) -> dict[str, Any]:
    """A query with its fields typed: integers, the local constraints as a dict."""
    missing = [f for f in (*QUERY_FIELDS, "level", "local_constraint") if f not in raw]
    if missing:
        raise DataError(f"query {line}: missing field(s) {missing}")
    q = dict(raw)
    for name in ("days", "visiting_city_number", "people_number"):
        try:
            q[name] = int(q[name])
        except (TypeError, ValueError):
            raise DataError(f"query {line}: {name} {q[name]!r} is not an integer") from None
    try:
        q["budget"] = float(q["budget"])
    except (TypeError, ValueError):
        raise DataError(f"query {line}: budget {q['budget']!r} is not a number") from None
    lc = _literal(q["local_constraint"], "local_constraint", line)
    if not isinstance(lc, dict):
        raise DataError(f"query {line}: local_constraint is not a mapping")
    q["local_constraint"] = {
        k: lc.get(k) for k in ("house rule", "cuisine", "room type", "transportation")
    }
    if "date" in q:
        q["date"] = _literal(q["date"], "date", line)
    if "reference_information" in q:
        q["reference_information"] = _literal(
            q["reference_information"], "reference_information", line
        )
    return q


def load_queries(path: str | Path) -> list[dict[str, Any]]:
    """The queries of a split: JSONL, a JSON list or CSV (by the file's suffix)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"queries: {path} does not exist")
    raws: list[dict[str, Any]]
    if path.suffix == ".csv":
        with path.open(newline="", encoding="utf-8") as fh:
            raws = list(csv.DictReader(fh))
    elif path.suffix == ".json":
        raws = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(raws, list):
            raise DataError(f"queries: {path} is not a JSON list")
    else:
        raws = []
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if line.strip():
                try:
                    raws.append(json.loads(line))
                except json.JSONDecodeError as exc:
                    raise DataError(f"queries: {path} line {n}: {exc}") from None
    if not raws:
        raise DataError(f"queries: {path} holds no query")
    return [normalise_query(r, n) for n, r in enumerate(raws, 1)]


def load_plans(path: str | Path, count: int) -> list[Any]:
    """Submitted plans as JSONL ({"idx", "query", "plan"} per line, in query order); a line
    whose plan is missing or empty counts as not delivered."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"plans: {path} does not exist")
    plans: list[Any] = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            unit = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(f"plans: {path} line {n}: {exc}") from None
        plans.append(unit.get("plan") if isinstance(unit, dict) else None)
    if len(plans) != count:
        raise DataError(f"plans: {path} has {len(plans)} plans for {count} queries")
    return plans


def ceil_div(a: int, b: float) -> int:
    return math.ceil(a * 1.0 / b)
