"""A tiny, deterministic stand-in for a chat model, so the example records offline.

It reads the conversation the way a tool-using model would: it looks at the user's
request, at the tool results it already has, and answers with the next tool calls or
with a final reply. Two "models" behave differently: `sim-small` is terse and cheap,
`sim-large` is verbose and dearer.
"""

from __future__ import annotations

import json
import re
from typing import Any

PRICES = {  # dollars per million tokens (input, output)
    "sim-small": (0.50, 1.50),
    "sim-large": (5.00, 15.00),
}


def _tokens(value: Any) -> int:
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
    return max(1, len(re.findall(r"\w+|[^\w\s]", text)))


def _tool_results(messages: list[dict[str, Any]]) -> dict[str, list[Any]]:
    """Tool name -> results seen so far, in order (tool messages carry their name)."""
    seen: dict[str, list[Any]] = {}
    for message in messages:
        if message.get("role") == "tool":
            seen.setdefault(message["name"], []).append(json.loads(message["content"]))
    return seen


def _call(tool: str, n: int, **arguments: Any) -> dict[str, Any]:
    return {"id": f"call_{n}", "name": tool, "arguments": arguments}


def _plan(request: str, seen: dict[str, list[Any]], n: int) -> list[dict[str, Any]] | str:
    """The next tool calls for `request`, or the final reply."""
    text = request.lower()
    if m := re.search(r"from (\w+) to (\w+) for (\w+) on ([\d-]+)", request):
        origin, dest, who, date = m.groups()
        if "search_flights" not in seen:
            return [
                _call("get_profile", n, name=who),
                _call("search_flights", n + 1, origin=origin, destination=dest, date=date),
            ]
        if "book_flight" not in seen:
            flights = seen["search_flights"][0]
            cheapest = min(flights, key=lambda f: f["price"])
            profile = seen["get_profile"][0]
            return [_call("book_flight", n, flight_id=cheapest["id"], passenger=profile["name"])]
        booking = seen["book_flight"][0]
        return (
            f"Booked {booking['flight_id']} for {booking['passenger']}: {booking['confirmation']}."
        )
    if m := re.search(r"refund (?:for )?order (\S+)", text):
        order_id = m.group(1).upper().rstrip(".")
        if "lookup_order" not in seen:
            return [_call("lookup_order", n, order_id=order_id)]
        order = seen["lookup_order"][0]
        if isinstance(order, dict) and "error" in order:
            return f"I could not find order {order_id}: {order['error']}."
        if "issue_refund" not in seen:
            return [_call("issue_refund", n, order_id=order_id, amount=order["total"])]
        refund = seen["issue_refund"][0]
        return f"Refunded ${refund['amount']:.2f} for order {order_id} ({refund['refund_id']})."
    if "weather" in text:
        cities = re.findall(r"\b([A-Z][a-z]+)\b", request.split("weather", 1)[1])
        if "get_weather" not in seen:
            return [_call("get_weather", n + i, city=c) for i, c in enumerate(cities)]
        parts = [f"{w['city']} {w['temp_c']}°C {w['sky']}" for w in seen["get_weather"]]
        return "Weather: " + "; ".join(parts) + "."
    if m := re.search(r"change booking (\S+) to (\S+)", text):
        booking, date = m.group(1).upper(), m.group(2)
        if "change_booking" not in seen:
            return [_call("change_booking", n, booking_id=booking, new_date=date)]
        change = seen["change_booking"][0]
        return f"Booking {change['booking_id']} now departs on {change['new_date']}."
    if m := re.search(r"charge (\d+(?:\.\d+)?) to (\S+)", text):
        amount, card = float(m.group(1)), m.group(2).rstrip(".")
        if "charge_card" not in seen:
            return [_call("charge_card", n, card=card, amount=amount)]
        return "Charged."
    return "How can I help you with your trip?"


def complete(
    *, model: str, messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    """One chat completion: content or tool calls, finish reason, usage and cost."""
    if model not in PRICES:
        raise ValueError(f"unknown model {model!r}; known: {', '.join(PRICES)}")
    users = [m["content"] for m in messages if m.get("role") == "user"]
    request = users[-1] if users else ""
    n = sum(len(m.get("tool_calls") or []) for m in messages)
    decision = _plan(request, _tool_results(messages), n)
    if isinstance(decision, str):
        content: str | None = decision
        if model == "sim-large":
            content = f"Certainly. {decision} Is there anything else I can do for you?"
        tool_calls = None
        finish = "stop"
    else:
        content, tool_calls, finish = None, decision, "tool_calls"
    input_tokens = _tokens(messages) + _tokens(tools or [])
    output_tokens = _tokens(content or tool_calls or "")
    price_in, price_out = PRICES[model]
    cost = round((input_tokens * price_in + output_tokens * price_out) / 1_000_000, 8)
    return {
        "content": content,
        "tool_calls": tool_calls,
        "finish_reason": finish,
        "usage": {
            "input_tokens": input_tokens,
            "output_tokens": output_tokens,
            "total_tokens": input_tokens + output_tokens,
        },
        "cost": cost,
    }
