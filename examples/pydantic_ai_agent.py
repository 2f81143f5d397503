"""An order desk built with PydanticAI, recorded and replayed by opswald.

One agent with two tools and a structured answer: `lookup_order` (registered with
`@agent.tool`; it reads the orders from the run's dependencies through `RunContext`, and
asks the model to try again with `ModelRetry` for an unknown id) and
`append_note` (`@agent.tool_plain`, async, a side effect: it appends a line to the notes
file). The answer is a `RefundDecision` (`output_type=`).

With `opswald_integrations = pydantic_ai`, each tool call is a `tool_call` step holding the
tool's own arguments (never the `RunContext`); in replay the tools are answered from the
golden, so nothing is written to the notes file and no model is asked.

- adapters: `run(input)` (`agent.run_sync`) and `arun(input)` (`await agent.run`); `input`
  is `{"request": "...", "api": "chat" | "responses"}` (default `chat`:
  `OpenAIChatModel`; `responses`: `OpenAIResponsesModel`);
- the model is whatever `OPENAI_BASE_URL` / `OPENAI_API_KEY` point at, named by
  `$ORDER_DESK_MODEL` (default `gpt-4o-mini`); notes go to `$ORDER_NOTES_FILE` (default
  `order_notes.log` beside this file).

Record a golden (needs a model), then replay it offline::

    python -m examples.pydantic_ai_agent goldens/refund_decision.golden.yaml \\
        "ORD-1001 arrived broken, please refund it"
    pytest --opswald-goldens goldens/refund_decision.golden.yaml
"""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from pydantic_ai import Agent, ModelRetry, RunContext
from pydantic_ai.models import Model
from pydantic_ai.models.openai import OpenAIChatModel, OpenAIResponsesModel
from pydantic_ai.providers.openai import OpenAIProvider

import opswald

MODEL = os.environ.get("ORDER_DESK_MODEL", "gpt-4o-mini")
INTEGRATIONS = ["pydantic_ai"]
SIDE_EFFECT_TOOLS = ["append_note"]
ORDERS: dict[str, dict[str, Any]] = {
    "ORD-1001": {"order_id": "ORD-1001", "total": 120.0, "status": "delivered"},
    "ORD-1002": {"order_id": "ORD-1002", "total": 35.5, "status": "processing"},
}


def notes_file() -> Path:
    """Where `append_note` writes (read at call time, so tests can point it elsewhere)."""
    default = Path(__file__).with_name("order_notes.log")
    return Path(os.environ.get("ORDER_NOTES_FILE") or default)


@dataclass
class Desk:
    """The run's dependencies: what `RunContext.deps` holds."""

    orders: dict[str, dict[str, Any]] = field(default_factory=lambda: dict(ORDERS))


class Order(BaseModel):
    order_id: str
    total: float
    status: str


class RefundDecision(BaseModel):
    """The structured answer."""

    order_id: str
    refund: bool
    amount: float
    message: str


agent = Agent(
    output_type=RefundDecision,
    deps_type=Desk,
    instructions="Look the order up, write one note on it, then decide on the refund.",
)


@agent.tool
def lookup_order(ctx: RunContext[Desk], order_id: str) -> Order:
    """Look an order up by its id.

    Args:
        ctx: The run context.
        order_id: The order id, like ORD-1001.
    """
    if order_id not in ctx.deps.orders:
        raise ModelRetry(f"no order {order_id}; order ids look like ORD-1001")
    return Order(**ctx.deps.orders[order_id])


@agent.tool_plain
async def append_note(order_id: str, text: str) -> str:
    """Append a note to an order's file (a side effect).

    Args:
        order_id: The order the note is about.
        text: The note.
    """
    path = notes_file()
    with path.open("a", encoding="utf-8") as f:
        f.write(f"{order_id}: {text}\n")
    return f"note added to {order_id}"


def model(api: str = "chat") -> Model:
    """The model, built per run so it reads `OPENAI_BASE_URL` / `OPENAI_API_KEY` then."""
    if api == "chat":
        return OpenAIChatModel(MODEL, provider=OpenAIProvider())
    if api == "responses":
        return OpenAIResponsesModel(MODEL, provider=OpenAIProvider())
    raise ValueError(f"api must be 'chat' or 'responses', not {api!r}")


def run(input: dict[str, Any]) -> dict[str, Any]:
    """The adapter: one request, synchronously."""
    result = agent.run_sync(input["request"], deps=Desk(), model=model(input.get("api", "chat")))
    return result.output.model_dump()


async def arun(input: dict[str, Any]) -> dict[str, Any]:
    """The adapter, as a coroutine."""
    api = input.get("api", "chat")
    result = await agent.run(input["request"], deps=Desk(), model=model(api))
    return result.output.model_dump()


def main(argv: list[str] | None = None) -> None:
    """Record one request as a golden."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("golden", help="the golden file to write, e.g. goldens/x.golden.yaml")
    parser.add_argument("request", help="what the customer asks")
    parser.add_argument("--api", default="chat", choices=["chat", "responses"])
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
