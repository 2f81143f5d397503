"""An order desk built with the OpenAI Agents SDK, recorded and replayed by opswald.

A triage agent looks orders up (`lookup_order`, a sync function tool) and hands refund
requests over to a refunds agent (`transfer_to_refunds`, a handoff with a reason), which
writes a note on the order (`append_note`, an async function tool with a side effect: it
appends a line to the notes file) and answers.

With `opswald_integrations = openai_agents`, each tool call and the handoff is a
`tool_call` step between the model calls; in replay they are answered from the golden, so
nothing is written to the notes file and no model is asked.

- adapters: `run(input)` (`Runner.run_sync`) and `arun(input)` (`await Runner.run`);
  `input` is `{"request": "...", "api": "responses" | "chat_completions"}` (default
  `responses`, the SDK's default; `chat_completions` runs the same agents on
  `OpenAIChatCompletionsModel`, through `OpenAIProvider(use_responses=False)`);
- the model is whatever `OPENAI_BASE_URL` / `OPENAI_API_KEY` point at, named by
  `$ORDER_DESK_MODEL` (default `gpt-4.1-mini`); notes go to `$ORDER_NOTES_FILE` (default
  `order_notes.log` beside this file). The SDK's trace export is off: a replay is offline.

Record a golden (needs a model), then replay it offline::

    python -m examples.openai_agents_agent goldens/refund_desk.golden.yaml \\
        "ORD-1001 arrived broken, please refund it"
    pytest --opswald-goldens goldens/refund_desk.golden.yaml
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from agents import (
    Agent,
    OpenAIProvider,
    RunConfig,
    RunContextWrapper,
    Runner,
    function_tool,
    handoff,
)
from pydantic import BaseModel

import opswald

MODEL = os.environ.get("ORDER_DESK_MODEL", "gpt-4.1-mini")
INTEGRATIONS = ["openai_agents"]
SIDE_EFFECT_TOOLS = ["append_note", "transfer_to_refunds"]
ORDERS: dict[str, dict[str, Any]] = {
    "ORD-1001": {"order_id": "ORD-1001", "total": 120.0, "status": "delivered"},
    "ORD-1002": {"order_id": "ORD-1002", "total": 35.5, "status": "processing"},
}


def notes_file() -> Path:
    """Where `append_note` writes (read at call time, so tests can point it elsewhere)."""
    default = Path(__file__).with_name("order_notes.log")
    return Path(os.environ.get("ORDER_NOTES_FILE") or default)


def _append(line: str) -> int:
    path = notes_file()
    with path.open("a", encoding="utf-8") as f:
        f.write(line + "\n")
    return len(path.read_text(encoding="utf-8").splitlines())


class Order(BaseModel):
    order_id: str
    total: float
    status: str


@function_tool
def lookup_order(order_id: str) -> Order:
    """Look an order up by its id.

    Args:
        order_id: The order id, like ORD-1001.
    """
    if order_id not in ORDERS:
        raise KeyError(f"no order {order_id}")
    return Order(**ORDERS[order_id])


@function_tool
async def append_note(order_id: str, text: str) -> str:
    """Append a note to an order's file (a side effect).

    Args:
        order_id: The order the note is about.
        text: The note.
    """
    number = _append(f"{order_id}: {text}")
    return f"note {number} added to {order_id}"


class Escalation(BaseModel):
    """Why the triage agent hands the conversation over."""

    reason: str


async def _escalated(ctx: RunContextWrapper[Any], escalation: Escalation) -> None:
    _append(f"escalated: {escalation.reason}")


refunds_agent = Agent(
    name="Refunds",
    instructions="You handle refunds. Write one note on the order, then confirm briefly.",
    tools=[append_note],
    model=MODEL,
)
triage_agent = Agent(
    name="Triage",
    instructions="Look the order up. Hand refund requests to the refunds agent.",
    tools=[lookup_order],
    handoffs=[handoff(refunds_agent, on_handoff=_escalated, input_type=Escalation)],
    model=MODEL,
)


def _run_config(api: str) -> RunConfig:
    if api == "chat_completions":  # the SDK builds OpenAIChatCompletionsModel for the agents
        return RunConfig(model_provider=OpenAIProvider(use_responses=False), tracing_disabled=True)
    if api != "responses":
        raise ValueError(f"api must be 'responses' or 'chat_completions', not {api!r}")
    return RunConfig(tracing_disabled=True)


def run(input: dict[str, Any]) -> dict[str, Any]:
    """The adapter: one request through the desk, synchronously."""
    config = _run_config(input.get("api", "responses"))
    result = Runner.run_sync(triage_agent, input["request"], run_config=config)
    return {"answer": result.final_output, "agent": result.last_agent.name}


async def arun(input: dict[str, Any]) -> dict[str, Any]:
    """The adapter, as a coroutine."""
    config = _run_config(input.get("api", "responses"))
    result = await Runner.run(triage_agent, input["request"], run_config=config)
    return {"answer": result.final_output, "agent": result.last_agent.name}


def main(argv: list[str] | None = None) -> None:
    """Record one request as a golden."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("golden", help="the golden file to write, e.g. goldens/x.golden.yaml")
    parser.add_argument("request", help="what the customer asks")
    parser.add_argument("--api", default="responses", choices=["responses", "chat_completions"])
    args = parser.parse_args(argv)
    input = {"request": args.request, "api": args.api}
    with opswald.record(
        args.golden,
        input=input,
        integrations=INTEGRATIONS,
        side_effect_tools=SIDE_EFFECT_TOOLS,
    ) as rec:
        rec.output = run(input)
    print(f"recorded {len(rec.steps)} steps into {rec.path}")


if __name__ == "__main__":
    main()
