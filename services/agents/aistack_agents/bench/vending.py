"""A Vending-Bench simulation (Backlund & Petersson, Andon Labs, 2025): an agent runs a vending
machine business over a long horizon; the score is its net worth.

Rules, as published: the agent starts with $500 and pays a $2 fee every day; it goes bankrupt
(the run ends) after 10 consecutive days on which it cannot pay the fee. It buys products from a
supplier (paid when ordered, delivered to its storage after a delay), stocks the machine (4 rows
of 3 slots: two rows for small items, two for large ones), sets prices, and collects the cash
customers leave in the machine. Daily demand per product falls with its price (constant
elasticity around a reference price) and varies with the weekday and the weather. Net worth =
cash + cash in the machine + unsold inventory (storage and machine) at wholesale cost.

What differs from the paper, on purpose: the supplier is a fixed catalogue (``list_products``)
instead of e-mail with LLM-simulated wholesalers, and physical actions are direct tools instead
of a sub-agent; goods in transit are not counted in net worth until delivered.

Everything random comes from one ``random.Random(seed)``; with ``demand_noise=False`` daily
sales are ``floor(expected demand)`` exactly, which is what the tests compute by hand.
"""

from __future__ import annotations

import json
import math
import random
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from aistack_agents.tools import openai_function

START_CASH = 500.0
DAILY_FEE = 2.0
BANKRUPTCY_DAYS = 10
ROWS, SLOTS_PER_ROW = 4, 3
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
# Demand multipliers: busier at the end of the week; the weather of the day (noise mode only).
WEEKDAY_FACTORS = (0.9, 0.9, 1.0, 1.0, 1.1, 1.25, 1.15)
WEATHER = {"sunny": 1.15, "cloudy": 1.0, "rainy": 0.8}


@dataclass(frozen=True)
class Product:
    name: str
    size: str  # "small" or "large"
    wholesale: float
    reference_price: float
    base_demand: float  # units a day at the reference price, on an average day
    elasticity: float  # demand ~ (price / reference) ** -elasticity


CATALOGUE = (
    Product("soda", "small", 0.60, 1.75, 6.0, 1.6),
    Product("water", "small", 0.35, 1.25, 5.0, 1.9),
    Product("chips", "small", 0.50, 1.50, 5.0, 1.4),
    Product("candy bar", "small", 0.45, 1.25, 5.0, 1.3),
    Product("sandwich", "large", 1.80, 4.50, 3.0, 1.1),
    Product("energy drink", "large", 1.10, 3.25, 3.0, 1.5),
)


@dataclass
class Config:
    days: int = 60
    seed: int = 0
    start_cash: float = START_CASH
    daily_fee: float = DAILY_FEE
    bankruptcy_days: int = BANKRUPTCY_DAYS
    delivery_days: int = 3
    slot_capacity: int = 10
    demand_noise: bool = True
    weekday_factors: tuple[float, ...] = WEEKDAY_FACTORS
    catalogue: tuple[Product, ...] = CATALOGUE

    def __post_init__(self) -> None:
        if self.days < 1:
            raise ValueError("days must be at least 1")
        if self.delivery_days < 0 or self.slot_capacity < 1 or self.bankruptcy_days < 1:
            raise ValueError("delivery_days >= 0, slot_capacity >= 1, bankruptcy_days >= 1")
        if len(self.weekday_factors) != 7:
            raise ValueError("weekday_factors needs 7 values")


class ToolError(ValueError):
    """A tool call the simulation refuses (the agent sees the message)."""


@dataclass
class Slot:
    row: int
    size: str
    product: str | None = None
    count: int = 0


@dataclass
class Order:
    product: str
    quantity: int
    cost: float
    arrives_on: int


def _poisson(rng: random.Random, mean: float) -> int:
    """Knuth's method; normal approximation for large means (both from the seeded rng)."""
    if mean <= 0:
        return 0
    if mean > 50:
        return max(0, round(rng.gauss(mean, math.sqrt(mean))))
    limit, k, p = math.exp(-mean), 0, 1.0
    while True:
        p *= rng.random()
        if p <= limit:
            return k
        k += 1


@dataclass
class VendingSim:
    cfg: Config = field(default_factory=Config)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.cfg.seed)
        self.products = {p.name: p for p in self.cfg.catalogue}
        self.day = 1
        self.balance = self.cfg.start_cash
        self.machine_cash = 0.0
        self.storage: dict[str, int] = {}
        self.slots = [
            Slot(row, "small" if row < ROWS // 2 else "large")
            for row in range(ROWS)
            for _ in range(SLOTS_PER_ROW)
        ]
        self.prices: dict[str, float] = {}
        self.orders: list[Order] = []
        self.unpaid_streak = 0
        self.bankrupt_day: int | None = None
        self.units_sold = 0
        self.revenue = 0.0
        self.weather = self._draw_weather()
        self.history: list[dict[str, Any]] = [self._snapshot(0, 0)]

    # -- state -----------------------------------------------------------------------------
    @property
    def done(self) -> bool:
        return self.bankrupt_day is not None or self.day > self.cfg.days

    def machine_stock(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for s in self.slots:
            if s.product and s.count:
                out[s.product] = out.get(s.product, 0) + s.count
        return out

    def inventory_value(self) -> float:
        units = dict(self.storage)
        for name, n in self.machine_stock().items():
            units[name] = units.get(name, 0) + n
        return sum(self.products[name].wholesale * n for name, n in units.items())

    def net_worth(self) -> float:
        return round(self.balance + self.machine_cash + self.inventory_value(), 2)

    def _snapshot(self, day: int, sold: int) -> dict[str, Any]:
        return {
            "day": day,
            "balance": round(self.balance, 2),
            "machine_cash": round(self.machine_cash, 2),
            "inventory_value": round(self.inventory_value(), 2),
            "net_worth": self.net_worth(),
            "units_sold": sold,
        }

    def _draw_weather(self) -> str:
        if not self.cfg.demand_noise:
            return "cloudy"
        return self.rng.choices(list(WEATHER), weights=(3, 4, 3))[0]

    def _product(self, name: Any) -> Product:
        product = self.products.get(str(name).strip().lower())
        if product is None:
            raise ToolError(f"unknown product {name!r}; the supplier sells {sorted(self.products)}")
        return product

    def _check_open(self) -> None:
        if self.done:
            raise ToolError("the simulation is over")

    # -- the agent's actions ---------------------------------------------------------------
    def list_products(self) -> dict[str, Any]:
        return {
            "delivery_days": self.cfg.delivery_days,
            "products": [
                {
                    "name": p.name,
                    "size": p.size,
                    "wholesale_price": p.wholesale,
                    "suggested_retail_price": p.reference_price,
                }
                for p in self.cfg.catalogue
            ],
        }

    def check_balance(self) -> dict[str, Any]:
        return {
            "day": self.day,
            "weekday": WEEKDAYS[(self.day - 1) % 7],
            "weather": self.weather,
            "balance": round(self.balance, 2),
            "machine_cash": round(self.machine_cash, 2),
            "daily_fee": self.cfg.daily_fee,
            "days_unpaid": self.unpaid_streak,
            "net_worth": self.net_worth(),
        }

    def check_inventory(self) -> dict[str, Any]:
        return {
            "storage": dict(sorted(self.storage.items())),
            "machine": [
                {"slot": i, "row": s.row, "size": s.size, "product": s.product, "count": s.count}
                for i, s in enumerate(self.slots)
            ],
            "prices": dict(sorted(self.prices.items())),
            "pending_orders": [asdict(o) for o in self.orders],
        }

    def order(self, product: Any, quantity: Any) -> dict[str, Any]:
        self._check_open()
        p = self._product(product)
        n = _positive_int(quantity, "quantity")
        cost = round(p.wholesale * n, 2)
        if cost > self.balance + 1e-9:
            raise ToolError(f"the order costs ${cost:.2f}; the balance is ${self.balance:.2f}")
        self.balance -= cost
        order = Order(p.name, n, cost, self.day + self.cfg.delivery_days)
        self.orders.append(order)
        if self.cfg.delivery_days == 0:
            self._deliver()
        return {"ordered": asdict(order), "balance": round(self.balance, 2)}

    def stock(self, product: Any, quantity: Any) -> dict[str, Any]:
        """Moves units from storage into the machine: the product's slot, then free slots of
        its size."""
        self._check_open()
        p = self._product(product)
        n = _positive_int(quantity, "quantity")
        if self.storage.get(p.name, 0) < n:
            raise ToolError(f"storage holds {self.storage.get(p.name, 0)} {p.name}, not {n}")
        left = n
        candidates = [s for s in self.slots if s.product == p.name] + [
            s for s in self.slots if s.product is None and s.size == p.size
        ]
        for slot in candidates:
            room = self.cfg.slot_capacity - slot.count
            if room <= 0:
                continue
            put = min(room, left)
            slot.product, slot.count, left = p.name, slot.count + put, left - put
            if left == 0:
                break
        stocked = n - left
        if stocked == 0:
            raise ToolError(f"no room for {p.name} ({p.size} slots full or taken)")
        self.storage[p.name] -= stocked
        if not self.storage[p.name]:
            del self.storage[p.name]
        self.prices.setdefault(p.name, p.reference_price)
        return {"stocked": stocked, "not_stocked": left, "machine": self.machine_stock()}

    def set_price(self, product: Any, price: Any) -> dict[str, Any]:
        self._check_open()
        p = self._product(product)
        try:
            value = round(float(price), 2)
        except (TypeError, ValueError):
            raise ToolError(f"price {price!r} is not a number") from None
        if not 0 < value <= 1000:
            raise ToolError("price must be above 0 and at most 1000")
        self.prices[p.name] = value
        return {"product": p.name, "price": value}

    def collect_cash(self) -> dict[str, Any]:
        self._check_open()
        amount = round(self.machine_cash, 2)
        self.balance += self.machine_cash
        self.machine_cash = 0.0
        return {"collected": amount, "balance": round(self.balance, 2)}

    def expected_demand(self, product: Product, price: float, day: int) -> float:
        factor = self.cfg.weekday_factors[(day - 1) % 7] * WEATHER[self.weather]
        return (
            product.base_demand * (price / product.reference_price) ** -product.elasticity * factor
        )

    def wait_for_next_day(self) -> dict[str, Any]:
        """Ends the day: customers buy, the next day starts, deliveries arrive, the fee is due."""
        self._check_open()
        sold_today: dict[str, int] = {}
        for name, available in self.machine_stock().items():
            price = self.prices.get(name, self.products[name].reference_price)
            mean = self.expected_demand(self.products[name], price, self.day)
            wanted = _poisson(self.rng, mean) if self.cfg.demand_noise else math.floor(mean)
            sold = min(available, wanted)
            if sold:
                self._take_from_machine(name, sold)
                sold_today[name] = sold
                self.machine_cash += sold * price
                self.revenue += sold * price
        total = sum(sold_today.values())
        self.units_sold += total
        ended = self.day
        self.day += 1
        self.weather = self._draw_weather()
        delivered = self._deliver()
        if self.balance >= self.cfg.daily_fee - 1e-9:
            self.balance -= self.cfg.daily_fee
            self.unpaid_streak = 0
        else:
            self.unpaid_streak += 1
            if self.unpaid_streak >= self.cfg.bankruptcy_days:
                self.bankrupt_day = ended
        self.history.append(self._snapshot(ended, total))
        report: dict[str, Any] = {"day_ended": ended, "sold": sold_today, "delivered": delivered}
        if self.bankrupt_day is not None:
            report["bankrupt"] = (
                f"the daily fee went unpaid for {self.unpaid_streak} days: the business is bankrupt"
            )
        elif self.unpaid_streak:
            report["warning"] = f"the daily fee could not be paid ({self.unpaid_streak} days)"
        if not self.done:
            report["today"] = self.check_balance()
        return report

    def _take_from_machine(self, name: str, n: int) -> None:
        for slot in self.slots:
            if slot.product == name and n:
                take = min(slot.count, n)
                slot.count -= take
                n -= take
                if slot.count == 0:
                    slot.product = None

    def _deliver(self) -> dict[str, int]:
        arrived: dict[str, int] = {}
        for o in [o for o in self.orders if o.arrives_on <= self.day]:
            self.storage[o.product] = self.storage.get(o.product, 0) + o.quantity
            arrived[o.product] = arrived.get(o.product, 0) + o.quantity
            self.orders.remove(o)
        return arrived

    # -- tools -----------------------------------------------------------------------------
    def call_tool(self, name: str, arguments: dict[str, Any] | None = None) -> str:
        """Runs one tool by name; the JSON text the agent reads (an error as {"error": ...})."""
        handler = TOOL_HANDLERS.get(name)
        if handler is None:
            return json.dumps({"error": f"unknown tool {name!r}"})
        try:
            return json.dumps(handler(self, arguments or {}))
        except ToolError as exc:
            return json.dumps({"error": str(exc)})
        except TypeError as exc:
            return json.dumps({"error": f"bad arguments: {exc}"})

    def result(self) -> dict[str, Any]:
        return {
            "net_worth": self.net_worth(),
            "balance": round(self.balance, 2),
            "machine_cash": round(self.machine_cash, 2),
            "inventory_value": round(self.inventory_value(), 2),
            "units_sold": self.units_sold,
            "revenue": round(self.revenue, 2),
            "days_simulated": len(self.history) - 1,
            "bankrupt": self.bankrupt_day is not None,
            "bankrupt_day": self.bankrupt_day,
            "days_until_sales_stop": _last_sale_day(self.history),
            "history": self.history,
        }


def _positive_int(value: Any, what: str) -> int:
    try:
        n = int(value)
    except (TypeError, ValueError):
        raise ToolError(f"{what} {value!r} is not an integer") from None
    if n < 1 or n != float(value):
        raise ToolError(f"{what} must be a positive whole number")
    return n


def _last_sale_day(history: list[dict[str, Any]]) -> int:
    return max((h["day"] for h in history if h["units_sold"]), default=0)


TOOL_HANDLERS: dict[str, Callable[[VendingSim, dict[str, Any]], dict[str, Any]]] = {
    "check_balance": lambda s, a: s.check_balance(),
    "check_inventory": lambda s, a: s.check_inventory(),
    "list_products": lambda s, a: s.list_products(),
    "order": lambda s, a: s.order(a.get("product"), a.get("quantity")),
    "stock": lambda s, a: s.stock(a.get("product"), a.get("quantity")),
    "set_price": lambda s, a: s.set_price(a.get("product"), a.get("price")),
    "collect_cash": lambda s, a: s.collect_cash(),
    "wait_for_next_day": lambda s, a: s.wait_for_next_day(),
}


TOOLS = [
    openai_function(
        "check_balance", "Today's date, weather, bank balance, cash in the machine, net worth"
    ),
    openai_function("check_inventory", "Storage, the machine's slots, prices and pending orders"),
    openai_function("list_products", "The supplier's products, wholesale prices and delivery time"),
    openai_function(
        "order",
        "Buy units from the supplier (paid now, delivered to storage after the delivery time)",
        product=("string", "product name"),
        quantity=("integer", "units"),
    ),
    openai_function(
        "stock",
        "Move units from storage into the vending machine",
        product=("string", "product name"),
        quantity=("integer", "units"),
    ),
    openai_function(
        "set_price",
        "Set a product's price in the machine",
        product=("string", "product name"),
        price=("number", "dollars"),
    ),
    openai_function(
        "collect_cash", "Move the cash customers paid from the machine to the bank balance"
    ),
    openai_function(
        "wait_for_next_day", "End the day: customers buy overnight, then the next day begins"
    ),
]
assert {t["function"]["name"] for t in TOOLS} == set(TOOL_HANDLERS)

SYSTEM_PROMPT = (
    "You run a vending machine business. You start with ${cash:.0f} and pay a ${fee:.0f} fee "
    "every day; if you cannot pay it for {streak} days in a row you go bankrupt. Buy products "
    "from the supplier (they arrive in storage {delay} days after you order), stock the machine "
    "(small items in rows 0-1, large in rows 2-3, {cap} units a slot), set prices (customers "
    "buy less when prices are high), collect the cash from the machine, and call "
    "wait_for_next_day to end each day. Your score is your net worth after {days} days: cash, "
    "cash in the machine and unsold products at wholesale cost. Act only through the tools."
)


def system_prompt(cfg: Config) -> str:
    return SYSTEM_PROMPT.format(
        cash=cfg.start_cash,
        fee=cfg.daily_fee,
        streak=cfg.bankruptcy_days,
        delay=cfg.delivery_days,
        cap=cfg.slot_capacity,
        days=cfg.days,
    )


def run_policy(sim: VendingSim, policy: Callable[[VendingSim], None]) -> dict[str, Any]:
    """A scripted agent: ``policy`` acts on the day (through tools or methods), then the day
    ends; until the horizon or bankruptcy."""
    while not sim.done:
        policy(sim)
        if not sim.done:
            sim.wait_for_next_day()
    return sim.result()


def _window(messages: list[dict[str, Any]], keep: int) -> list[dict[str, Any]]:
    """The system prompt plus the last ``keep`` messages, never starting on a tool result
    (its assistant tool call would be cut off). The paper keeps the last 30k tokens."""
    head, rest = messages[:1], messages[1:]
    if len(rest) <= keep:
        return messages
    rest = rest[-keep:]
    while rest and rest[0].get("role") == "tool":
        rest = rest[1:]
    return head + rest


def run_llm_agent(
    sim: VendingSim,
    chat: Callable[[list[dict[str, Any]], list[dict[str, Any]]], Any],
    max_steps: int = 2000,
    context_messages: int = 60,
    on_step: Callable[[int, str, str], None] | None = None,
) -> dict[str, Any]:
    """The agent loop: ``chat(messages, tools)`` returns an OpenAI chat message (with
    ``tool_calls`` or text); each tool call runs on the simulation and its result goes back.
    Ends at the horizon, at bankruptcy, or after ``max_steps`` model calls (the paper stops at
    2000 messages). A reply without a tool call is answered with a nudge to act."""
    messages: list[dict[str, Any]] = [
        {"role": "system", "content": system_prompt(sim.cfg)},
        {"role": "user", "content": f"Day 1 begins. {json.dumps(sim.check_balance())}"},
    ]
    steps = tool_calls = 0
    while not sim.done and steps < max_steps:
        steps += 1
        message = chat(_window(messages, context_messages), TOOLS)
        calls = getattr(message, "tool_calls", None) or []
        entry = message.model_dump(exclude_none=True) if hasattr(message, "model_dump") else {}
        messages.append(entry or {"role": "assistant", "content": getattr(message, "content", "")})
        if not calls:
            messages.append(
                {"role": "user", "content": "Continue running the business with your tools."}
            )
            continue
        for call in calls:
            tool_calls += 1
            try:
                args = json.loads(call.function.arguments or "{}")
            except json.JSONDecodeError:
                args = None
            if isinstance(args, dict):
                out = sim.call_tool(call.function.name, args)
            else:
                out = json.dumps({"error": "the arguments are not a JSON object"})
            if on_step:
                on_step(steps, call.function.name, out)
            messages.append({"role": "tool", "tool_call_id": call.id, "content": out})
            if sim.done:
                break
    result = sim.result()
    result |= {
        "model_calls": steps,
        "tool_calls": tool_calls,
        "stopped_by_step_limit": not sim.done,
    }
    return result
