"""TravelPlanner's published metrics (Xie et al., 2024; evaluation/ of OSU-NLP-Group/TravelPlanner),
reimplemented from the definitions of the official evaluator so that the figures match it:

- delivery rate: plans that are not empty / queries;
- commonsense micro pass rate: commonsense constraints passed / (8 x queries);
- commonsense macro pass rate: plans passing all eight / queries;
- hard micro pass rate: hard constraints passed / hard constraints stated (the budget of every
  query, plus the stated local constraints: house rule, cuisine, room type and transportation for
  level ``hard``, the first three for ``medium``; the official script hard-codes these totals,
  e.g. 1440 and 420 for the validation split, which is what this count gives there);
- hard macro pass rate: plans passing every stated hard constraint / queries;
- final pass rate: plans passing both / queries.

Hard constraints are evaluated only for plans that pass "Complete Information" and "Within
Sandbox", and a plan counts towards the macro rates only then, as upstream.

Quirks of the official checks are kept on purpose, because they change the figures:
the attraction field is split on ';' and its last part dropped (entries end with ';');
"Within Current City" iterates over the characters of a single-city day (upstream assigns the
city string where the other branch makes a list); the cuisine check skips the rest of a day once
a meal is in the origin city; the transportation check counts day 1 twice. Where the official
script would raise (a field it indexes is missing, an unparsable route), the constraint fails
here instead of aborting the whole evaluation.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from aistack_agents.bench.tp_data import Database, before_parenthesis, ceil_div, name_and_city

Result = tuple[bool | None, str | None]
Plan = list[dict[str, Any]]

EMPTY_DAY = "You don't need to fill in the information for this or later days."
# Internal names (those of the official script) -> the paper's terms.
COMMONSENSE = {
    "is_reasonable_visiting_city": "Reasonable City Route",
    "is_valid_restaurants": "Diverse Restaurants",
    "is_valid_attractions": "Diverse Attractions",
    "is_valid_accommodation": "Minimum Nights Stay",
    "is_valid_transportation": "Non-conf. Transportation",
    "is_valid_information_in_current_city": "Within Current City",
    "is_valid_information_in_sandbox": "Within Sandbox",
    "is_not_absent": "Complete Information",
}
HARD = {
    "valid_cost": "Budget",
    "valid_room_rule": "Room Rule",
    "valid_cuisine": "Cuisine",
    "valid_room_type": "Room Type",
    "valid_transportation": "Transportation",
}
LOCAL_KEYS = {
    "valid_room_rule": "house rule",
    "valid_cuisine": "cuisine",
    "valid_room_type": "room type",
    "valid_transportation": "transportation",
}
MEALS = ("breakfast", "lunch", "dinner")


def _filled(unit: dict[str, Any], key: str) -> bool:
    return key in unit and bool(unit[key]) and unit[key] != "-"


def _days(q: dict[str, Any], plan: Plan) -> Plan:
    return plan[: min(q["days"], len(plan))]


def from_to(text: str) -> tuple[str | None, str | None]:
    """'from A to B, ...' -> (A, B); (None, None) without that shape."""
    match = re.search(r"from\s+(.+?)\s+to\s+([^,]+)(?=[,\s]|$)", text)
    return (match.group(1), match.group(2)) if match else (None, None)


def _transport_kind(text: str) -> str | None:
    low = text.lower()
    if "taxi" in low:
        return "Taxi"
    if "self-driving" in low:
        return "Self-driving"
    if "flight" in low:
        return "Flight"
    return None


def _day_cities(q: dict[str, Any], plan: Plan) -> tuple[list[str], str | None]:
    """The visited cities in order (a travel day adds both ends); an error when day 1 does not
    leave from the origin."""
    cities: list[str] = []
    for i, unit in enumerate(_days(q, plan)):
        value = unit["current_city"]
        if "from" in value:
            a, b = from_to(value)
            if a is None or b is None:
                raise ValueError(f"day {i + 1}: current_city {value!r} has no 'from A to B'")
            a, b = before_parenthesis(a), before_parenthesis(b)
            if i == 0 and a != q["org"]:
                return [], f"The first day's city should be {q['org']}."
            cities += [a, b]
        else:
            cities.append(before_parenthesis(value))
    return cities, None


def _valid_sequence(cities: list[str]) -> bool:
    """Each city between the ends appears in one consecutive run of at least two entries."""
    if len(cities) < 3:
        return False
    seen: set[str] = set()
    i = 0
    while i < len(cities):
        city = cities[i]
        if city in seen and i not in (0, len(cities) - 1):
            return False
        run = 0
        while i < len(cities) and cities[i] == city:
            run += 1
            i += 1
        if run == 1 and 0 < i - 1 < len(cities) - 1:
            return False
        seen.add(city)
    return True


# -- the eight commonsense constraints ------------------------------------------------------
def reasonable_city_route(db: Database, q: dict[str, Any], plan: Plan) -> Result:
    cities, error = _day_cities(q, plan)
    if error:
        return False, error
    if cities[0] != cities[-1]:
        return False, "The trip should be a closed circle."
    if not _valid_sequence(cities):
        return False, "The city sequence is invalid."
    for idx, city in enumerate(cities):
        if city not in db.city_state:
            return False, f"{city} is not a valid city."
        if idx not in (0, len(cities) - 1) and q["days"] > 3 and db.city_state[city] != q["dest"]:
            return False, f"{city} is not in {q['dest']}."
    return True, None


def diverse_restaurants(db: Database, q: dict[str, Any], plan: Plan) -> Result:
    seen: set[str] = set()
    for i, unit in enumerate(_days(q, plan)):
        for meal in MEALS:
            if _filled(unit, meal):
                if unit[meal] in seen:
                    return False, f"The restaurant in day {i + 1} {meal} is repeated."
                seen.add(unit[meal])
    return True, None


def diverse_attractions(db: Database, q: dict[str, Any], plan: Plan) -> Result:
    seen: set[str] = set()
    for i, unit in enumerate(_days(q, plan)):
        if _filled(unit, "attraction"):
            for attraction in unit["attraction"].split(";")[:-1]:
                if attraction in seen:
                    return False, f"The attraction '{attraction}' in day {i + 1} is repeated."
                seen.add(attraction)
    return True, None


def minimum_nights(db: Database, q: dict[str, Any], plan: Plan) -> Result:
    stays: list[Any] = []
    for unit in _days(q, plan):
        if "accommodation" not in unit:
            return False, "No Accommodation Info."
        stays.append(unit["accommodation"])
    runs: list[tuple[Any, int]] = []
    for stay in stays:
        if runs and runs[-1][0] == stay:
            runs[-1] = (stay, runs[-1][1] + 1)
        else:
            runs.append((stay, 1))
    for stay, nights in runs:
        if stay not in ("-", ""):
            name, city = name_and_city(stay)
            found = db.accommodation_matches(name, city)
            # Only an unambiguous match is checked (len(...) == 1 upstream).
            if len(found) == 1 and nights < found[0]["minimum nights"]:
                return False, f"The accommodation {stay} do not obey the minumum nights rule."
    return True, None


def non_conflicting_transportation(db: Database, q: dict[str, Any], plan: Plan) -> Result:
    first = plan[0]["transportation"]
    if not first or first == "-":
        return False, "The transportation in day 1 should not be empty."
    kinds = [_transport_kind(first)]
    for unit in _days(q, plan):
        if _filled(unit, "transportation"):
            kinds.append(_transport_kind(unit["transportation"]))
    if ("Self-driving" in kinds and "Flight" in kinds) or (
        "Taxi" in kinds and "Self-driving" in kinds
    ):
        return False, "The transportation is conflicting."
    return True, None


def within_current_city(db: Database, q: dict[str, Any], plan: Plan) -> Result:
    for i, unit in enumerate(_days(q, plan)):
        current = unit["current_city"]
        cities: list[str] | str
        if "from" in current:
            a, b = from_to(current)
            if a is None or b is None:
                raise ValueError(f"day {i + 1}: current_city {current!r} has no 'from A to B'")
            cities = [before_parenthesis(a), before_parenthesis(b)]
        else:
            # Upstream keeps the string here: the loops below then run over its characters.
            cities = before_parenthesis(current)
        if _filled(unit, "transportation"):
            for city in cities:
                if city not in unit["transportation"]:
                    return False, f"The transportation in day {i + 1} is invalid city choice."
        for meal in MEALS:
            if _filled(unit, meal) and not any(city in unit[meal] for city in cities):
                return False, f"The {meal} in day {i + 1} is invalid city choice."
        if _filled(unit, "attraction"):
            for attraction in unit["attraction"].split(";")[:-1]:
                if not any(city in attraction for city in cities):
                    return False, f"The attraction in day {i + 1} is invalid city choice."
        if _filled(unit, "accommodation") and cities[-1] not in unit["accommodation"]:
            return False, f"The accommodation in day {i + 1} is invalid city choice."
    return True, None


def within_sandbox(db: Database, q: dict[str, Any], plan: Plan) -> Result:
    for i, unit in enumerate(_days(q, plan)):
        value = unit["transportation"]
        if value and value != "-":
            org, dest = from_to(value)
            if org is None or dest is None:
                org, dest = from_to(unit["current_city"])
            if "flight number" in value.lower():
                if org is None or dest is None:
                    return False, f"The transportation {value} in day {i + 1} can not be parsed."
                number = value.split("Flight Number: ")[1].split(",")[0]
                if db.flight(number, before_parenthesis(org), before_parenthesis(dest)) is None:
                    return False, f"The flight number in day {i + 1} is invalid in the sandbox."
            elif "self-driving" in value.lower() or "taxi" in value.lower():
                mode = "self-driving" if "self-driving" in value.lower() else "taxi"
                if org is None or dest is None:
                    org = dest = "-"
                if db.ground_cost(org, dest, mode) is None:
                    return False, f"The {mode} in day {i + 1} is invalid in the sandbox."
        for meal in MEALS:
            if _filled(unit, meal) and db.restaurant(*name_and_city(unit[meal])) is None:
                return False, f"The {meal} in day {i + 1} is invalid in the sandbox."
        if _filled(unit, "attraction"):
            for attraction in unit["attraction"].split(";")[:-1]:
                if db.attraction(*name_and_city(attraction)) is None:
                    return (
                        False,
                        f"The attraction {attraction} in day {i + 1} is invalid in the sandbox.",
                    )
        if _filled(unit, "accommodation") and not db.accommodation_matches(
            *name_and_city(unit["accommodation"])
        ):
            return False, f"The accommodation in day {i + 1} is invalid in the sandbox."
    return True, None


def _valid_days(q: dict[str, Any], plan: Plan) -> bool:
    count = sum(1 for u in _days(q, plan) if u != {} and u["current_city"] != EMPTY_DAY)
    return count == q["days"]


def _valid_city_number(q: dict[str, Any], plan: Plan) -> bool:
    cities, error = _day_cities(q, plan)
    if error:
        return False
    visited = set(cities)
    visited.discard(q["org"])
    return len(visited) == q["visiting_city_number"]


def complete_information(db: Database, q: dict[str, Any], plan: Plan) -> Result:
    if not _valid_days(q, plan):
        return False, "Invalid Days"
    if not _valid_city_number(q, plan):
        return False, "Invalid City Number"
    filled = 0
    for i, unit in enumerate(_days(q, plan)):
        for key in ("transportation", *MEALS, "attraction", "accommodation"):
            if key not in unit:
                return False, f"No {key.capitalize()} Info."
        current = unit["current_city"]
        travel = "from " in current or "to " in current
        if travel and unit["transportation"] in ("", "-"):
            return False, f"No transportation in day {i + 1} is not allowed."
        if "from " not in current and " to " not in current and unit["attraction"] in ("", "-"):
            return False, f"No attaction in day {i + 1} is not allowed."
        if i != q["days"] - 1 and unit["accommodation"] in ("", "-"):
            return False, f"No accommodation in day {i + 1} is not allowed."
        if any(unit[m] in ("", "-") for m in MEALS) and "from " not in current:
            return False, f"No meal in day {i + 1} is not allowed."
        filled += sum(1 for key in unit if unit[key] and unit[key] != "-")
    if filled * 1.0 / (6 * q["days"]) < 0.5:
        return False, "The absent information is more than 50%."
    return True, None


COMMONSENSE_CHECKS: dict[str, Callable[[Database, dict[str, Any], Plan], Result]] = {
    "is_reasonable_visiting_city": reasonable_city_route,
    "is_valid_restaurants": diverse_restaurants,
    "is_valid_attractions": diverse_attractions,
    "is_valid_accommodation": minimum_nights,
    "is_valid_transportation": non_conflicting_transportation,
    "is_valid_information_in_current_city": within_current_city,
    "is_valid_information_in_sandbox": within_sandbox,
    "is_not_absent": complete_information,
}


# -- the five hard constraints -----------------------------------------------------------
def total_cost(db: Database, q: dict[str, Any], plan: Plan) -> float:
    """Flights per person, self-driving per car of 5, taxis per cab of 4, meals per person,
    rooms per ceil(people / maximum occupancy); unknown items cost nothing."""
    people = q["people_number"]
    total = 0.0
    for unit in _days(q, plan):
        value = unit["transportation"]
        if value and value != "-":
            org, dest = from_to(value)
            if org is None or dest is None:
                org, dest = from_to(unit["current_city"])
            if org is not None and dest is not None:
                if "flight number" in value.lower():
                    flight = db.flight(value.split("Flight Number: ")[1].split(",")[0])
                    if flight is not None:
                        total += flight["Price"] * people
                elif "self-driving" in value.lower() or "taxi" in value.lower():
                    driving = "self-driving" in value.lower()
                    cost = db.ground_cost(org, dest, "self-driving" if driving else "taxi")
                    if cost is None:
                        raise ValueError(f"no {value!r} route in the distance matrix")
                    total += cost * ceil_div(people, 5 if driving else 4)
        for meal in MEALS:
            if unit[meal] and unit[meal] != "-":
                found = db.restaurant(*name_and_city(unit[meal]))
                if found is not None:
                    total += found["Average Cost"] * people
        if unit["accommodation"] and unit["accommodation"] != "-":
            rooms = db.accommodation_matches(*name_and_city(unit["accommodation"]))
            if rooms:
                total += rooms[0]["price"] * ceil_div(people, rooms[0]["maximum occupancy"])
    return total


def room_rule(db: Database, q: dict[str, Any], plan: Plan) -> Result:
    rule = q["local_constraint"]["house rule"]
    if rule is None:
        return None, None
    forbidden = {
        "smoking": "No smoking",
        "parties": "No parties",
        "children under 10": "No children under 10",
        "visitors": "No visitors",
        "pets": "No pets",
    }.get(rule)
    for unit in _days(q, plan):
        if unit["accommodation"] and unit["accommodation"] != "-":
            rooms = db.accommodation_matches(*name_and_city(unit["accommodation"]))
            if rooms and forbidden is not None and forbidden in str(rooms[0]["house_rules"]):
                return False, f"The house rule should be {rule}."
    return True, None


def cuisine(db: Database, q: dict[str, Any], plan: Plan) -> Result:
    wanted = q["local_constraint"]["cuisine"]
    if not wanted:
        return None, None
    found: set[str] = set()
    for unit in _days(q, plan):
        for meal in MEALS:
            if unit[meal] and unit[meal] != "-":
                name, city = name_and_city(unit[meal])
                if city == q["org"]:
                    break  # upstream's `continue` leaves the day: later meals are not looked at
                row = db.restaurant(name, city)
                if row is not None:
                    found |= {c for c in wanted if c in row["Cuisines"]}
    if len(found) == len(wanted):
        return True, None
    missing = next((c for c in wanted if c not in found), wanted)
    return False, f"The cuisine {missing} is not satisfied."


def transportation(db: Database, q: dict[str, Any], plan: Plan) -> Result:
    rule = q["local_constraint"]["transportation"]
    if rule is None:
        return None, None
    for unit in _days(q, plan):
        value = unit["transportation"]
        if not value or value == "-":
            continue
        if (rule == "no flight" and "Flight" in value) or (
            rule == "no self-driving" and "Self-driving" in value
        ):
            return False, f"The transportation should not be {rule}."
    return True, None


def room_type(db: Database, q: dict[str, Any], plan: Plan) -> Result:
    rule = q["local_constraint"]["room type"]
    if rule is None:
        return None, None
    for unit in _days(q, plan):
        if unit["accommodation"] and unit["accommodation"] != "-":
            rooms = db.accommodation_matches(*name_and_city(unit["accommodation"]))
            if not rooms:
                continue
            kind = rooms[0]["room type"]
            bad = (
                (rule == "not shared room" and kind == "Shared room")
                or (rule == "shared room" and kind != "Shared room")
                or (rule == "private room" and kind != "Private room")
                or (rule == "entire room" and kind != "Entire home/apt")
            )
            if bad:
                return False, f"The room type should be {rule}."
    return True, None


def budget(db: Database, q: dict[str, Any], plan: Plan) -> Result:
    return bool(total_cost(db, q, plan) <= q["budget"]), None


HARD_CHECKS: dict[str, Callable[[Database, dict[str, Any], Plan], Result]] = {
    "valid_cuisine": cuisine,
    "valid_room_rule": room_rule,
    "valid_transportation": transportation,
    "valid_room_type": room_type,
    "valid_cost": budget,
}


def _run(check: Callable[[Database, dict[str, Any], Plan], Result], *args: Any) -> Result:
    try:
        return check(*args)
    except (KeyError, IndexError, TypeError, ValueError, AttributeError) as exc:
        # The official script raises here and stops; one malformed plan fails this check.
        return False, f"could not be evaluated: {type(exc).__name__}: {exc}"


def evaluate_plan(db: Database, q: dict[str, Any], plan: Any) -> dict[str, Any]:
    """One plan's constraint results: {"delivered", "commonsense", "hard"} with each check's
    [passed, message] (passed None: the constraint does not apply); "hard" is None when the
    plan was not delivered or failed Complete Information or Within Sandbox."""
    if not plan:
        return {"delivered": False, "commonsense": None, "hard": None}
    common = {k: list(_run(c, db, q, plan)) for k, c in COMMONSENSE_CHECKS.items()}
    hard = None
    if common["is_not_absent"][0] and common["is_valid_information_in_sandbox"][0]:
        hard = {k: list(_run(c, db, q, plan)) for k, c in HARD_CHECKS.items()}
    return {"delivered": True, "commonsense": common, "hard": hard}


def stated_hard_constraints(q: dict[str, Any]) -> list[str]:
    """The hard constraints a query counts in the micro denominator (see the module doc)."""
    keys = ["valid_cost"]
    considered = {
        "hard": ["valid_room_rule", "valid_cuisine", "valid_room_type", "valid_transportation"],
        "medium": ["valid_room_rule", "valid_cuisine", "valid_room_type"],
    }.get(q["level"], [])
    return keys + [k for k in considered if q["local_constraint"][LOCAL_KEYS[k]] is not None]


def score(queries: list[dict[str, Any]], results: list[dict[str, Any]]) -> dict[str, Any]:
    """The six published metrics (fractions in [0, 1]) and per-constraint counts."""
    if len(queries) != len(results) or not queries:
        raise ValueError(f"{len(results)} results for {len(queries)} queries")
    n = len(queries)
    delivered = sum(1 for r in results if r["delivered"])
    common_pass = hard_pass = common_macro = hard_macro = final = 0
    per: dict[str, dict[str, int]] = {
        name: {"passed": 0, "total": 0} for name in (*COMMONSENSE.values(), *HARD.values())
    }
    hard_total = 0
    for q, r in zip(queries, results, strict=True):
        for key in COMMONSENSE:
            per[COMMONSENSE[key]]["total"] += 1
        stated = stated_hard_constraints(q)
        hard_total += len(stated)
        for key in stated:
            per[HARD[key]]["total"] += 1
        common, hard = r["commonsense"], r["hard"]
        if common is None:
            continue
        for key, (passed, _msg) in common.items():
            if passed is True:
                common_pass += 1
                per[COMMONSENSE[key]]["passed"] += 1
        if hard is None:
            continue  # as upstream: neither macro rate counts this plan
        for key, (passed, _msg) in hard.items():
            if passed is True:
                hard_pass += 1  # upstream counts every True, stated or not
                if key in stated:
                    per[HARD[key]]["passed"] += 1
        ok_common = all(p is not False for p, _ in common.values())
        ok_hard = all(p is not False for p, _ in hard.values())
        common_macro += ok_common
        hard_macro += ok_hard
        final += ok_common and ok_hard
    return {
        "queries": n,
        "delivery_rate": delivered / n,
        "commonsense_micro_pass_rate": common_pass / (8 * n),
        "commonsense_macro_pass_rate": common_macro / n,
        "hard_micro_pass_rate": hard_pass / hard_total,
        "hard_macro_pass_rate": hard_macro / n,
        "final_pass_rate": final / n,
        "counts": {
            "delivered": delivered,
            "commonsense_passed": common_pass,
            "commonsense_total": 8 * n,
            "hard_passed": hard_pass,
            "hard_total": hard_total,
            "commonsense_macro": common_macro,
            "hard_macro": hard_macro,
            "final": final,
        },
        "per_constraint": {
            name: {**c, "rate": (c["passed"] / c["total"]) if c["total"] else None}
            for name, c in per.items()
        },
    }


def evaluate(
    db: Database, queries: list[dict[str, Any]], plans: list[Any]
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """(metrics, per-plan results) for plans given in query order."""
    if len(plans) != len(queries):
        raise ValueError(f"{len(plans)} plans for {len(queries)} queries")
    results = [evaluate_plan(db, q, p) for q, p in zip(queries, plans, strict=True)]
    return score(queries, results), results
