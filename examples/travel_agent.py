"""An example tool-using travel agent, instrumented with opswald.

`run(input)` is the adapter the example goldens replay through (see the root
conftest.py and `opswald_adapter` in pyproject.toml). The model is the simulated one
in `simllm.py`; the tools work on small in-memory data, so everything runs offline.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import opswald

from . import simllm

MODEL = "sim-small"
SYSTEM = "You are a travel assistant. Use the tools; never invent bookings."
PROMPT_STYLES = {  # a variant switches these: --opswald-variant terse:prompt_style=concise
    "concise": "Travel assistant. Use tools. Be brief.",
    "detailed": SYSTEM + " Explain each step you take and confirm every detail with the user.",
}
BOOKINGS_LOG = Path(__file__).with_name("bookings.log")

PROFILES = {"alice": {"name": "Alice", "tier": "gold"}, "bob": {"name": "Bob", "tier": "basic"}}
ORDERS = {"ORD-1001": {"order_id": "ORD-1001", "total": 120.0, "status": "delivered"}}
FLIGHTS = [
    {"id": "AF1234", "price": 180.0, "departs": "08:05"},
    {"id": "AZ0815", "price": 149.0, "departs": "11:40"},
    {"id": "FR2211", "price": 162.5, "departs": "17:20"},
]
WEATHER = {
    "Paris": (14, "cloudy"),
    "Rome": (21, "sunny"),
    "Oslo": (3, "snow"),
    "Lisbon": (19, "windy"),
}
TOOL_SPECS = [
    {"name": name, "description": doc}
    for name, doc in [
        ("get_profile", "Look up a traveller's profile by first name."),
        ("search_flights", "Find flights between two cities on a date."),
        ("book_flight", "Book a flight for a passenger (charges their card)."),
        ("lookup_order", "Look up an order by id."),
        ("issue_refund", "Refund an order (moves money)."),
        ("get_weather", "Current weather in a city."),
        ("change_booking", "Move a booking to another date."),
        ("charge_card", "Charge a card."),
    ]
]


# -- tools --------------------------------------------------------------------------------


@opswald.tool
def get_profile(name: str) -> dict[str, Any]:
    return dict(PROFILES[name.lower()])


@opswald.tool
def search_flights(origin: str, destination: str, date: str) -> list[dict[str, Any]]:
    return [dict(f, origin=origin, destination=destination, date=date) for f in FLIGHTS]


@opswald.tool(side_effects=True)
def book_flight(flight_id: str, passenger: str) -> dict[str, Any]:
    with BOOKINGS_LOG.open("a", encoding="utf-8") as log:  # the side effect
        log.write(f"{flight_id} {passenger}\n")
    return {"flight_id": flight_id, "passenger": passenger, "confirmation": f"CNF-{flight_id[-4:]}"}


@opswald.tool
def lookup_order(order_id: str) -> dict[str, Any]:
    return dict(ORDERS[order_id])  # KeyError for unknown orders


@opswald.tool(side_effects=True)
def issue_refund(order_id: str, amount: float) -> dict[str, Any]:
    return {"order_id": order_id, "amount": amount, "refund_id": f"RF-{order_id[-4:]}"}


@opswald.tool
async def get_weather(city: str) -> dict[str, Any]:
    await asyncio.sleep(0.001 * len(city))  # replies arrive in another order than asked
    temp, sky = WEATHER[city]
    return {"city": city, "temp_c": temp, "sky": sky}


@opswald.tool
def change_booking(booking_id: str, new_date: str) -> dict[str, Any]:
    return {"booking_id": booking_id, "new_date": new_date}


class PaymentDeclined(Exception):
    """The card processor said no."""


@opswald.tool(side_effects=True)
def charge_card(card: str, amount: float) -> dict[str, Any]:
    raise PaymentDeclined(f"card {card} declined for ${amount:.2f}")


# -- the model ----------------------------------------------------------------------------


@opswald.llm(provider="sim", api="sim.chat")
def chat(
    *, model: str, messages: list[dict[str, Any]], tools: list[dict[str, Any]]
) -> dict[str, Any]:
    return simllm.complete(model=model, messages=messages, tools=tools)


# -- the agent ----------------------------------------------------------------------------

SYNC_TOOLS = {
    "get_profile": get_profile,
    "search_flights": search_flights,
    "book_flight": book_flight,
    "lookup_order": lookup_order,
    "issue_refund": issue_refund,
    "change_booking": change_booking,
    "charge_card": charge_card,
}


def _run_tool(call: dict[str, Any]) -> Any:
    if call["name"] == "get_weather":
        return asyncio.run(get_weather(**call["arguments"]))
    try:
        return SYNC_TOOLS[call["name"]](**call["arguments"])
    except KeyError as exc:  # unknown ids are reported to the model, not raised
        return {"error": f"not found: {exc.args[0]}"}


async def _run_tools_concurrently(calls: list[dict[str, Any]]) -> list[Any]:
    return list(await asyncio.gather(*(get_weather(**c["arguments"]) for c in calls)))


def _answer(messages: list[dict[str, Any]], model: str, memory: dict[str, Any]) -> str:
    for _ in range(8):
        reply = chat(model=model, messages=messages, tools=TOOL_SPECS)
        calls = reply["tool_calls"]
        if not calls:
            messages.append({"role": "assistant", "content": reply["content"]})
            return str(reply["content"])
        messages.append({"role": "assistant", "content": reply["content"], "tool_calls": calls})
        if all(c["name"] == "get_weather" for c in calls):
            results = asyncio.run(_run_tools_concurrently(calls))
        else:
            results = [_run_tool(c) for c in calls]
        for call, result in zip(calls, results, strict=True):
            messages.append(
                {
                    "role": "tool",
                    "tool_call_id": call["id"],
                    "name": call["name"],
                    "content": json.dumps(result),
                }
            )
            memory.setdefault("tools_used", []).append(call["name"])
    raise RuntimeError("the agent did not finish within 8 model calls")


@opswald.adapter("travel")
def run(input: dict[str, Any], modifications: dict[str, Any] | None = None) -> dict[str, Any]:
    """Answer one request, or hold a conversation when `user_inputs` are scripted."""
    mods = modifications or {}
    # the model is always MODEL here: a `model` modification is opswald's to apply to the
    # requests (every call, or in a fork at step N the calls from step N on); applying it
    # here too would change the calls a fork replays as recorded before its step
    model = MODEL
    memory: dict[str, Any] = {"traveller": input.get("traveller")}
    system = PROMPT_STYLES.get(str(mods.get("prompt_style")), SYSTEM)
    messages: list[dict[str, Any]] = [{"role": "system", "content": system}]
    if input.get("conversation"):
        replies = []
        for _ in range(input["conversation"]):
            said = opswald.user_input("You: ")
            messages.append({"role": "user", "content": said})
            replies.append(_answer(messages, model, memory))
            opswald.state(memory=dict(memory), variables={"turns": len(replies)})
        return {"replies": replies}
    messages.append({"role": "user", "content": input["request"]})
    answer = _answer(messages, model, memory)
    opswald.state(memory=memory, variables={"messages": len(messages)})
    return {"answer": answer}
