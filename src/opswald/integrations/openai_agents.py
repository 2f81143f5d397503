"""OpenAI Agents SDK: function tools and handoffs become `tool_call` steps.

The seams are the two callables the SDK awaits to act on a model's request, both public
attributes of public classes:

- `FunctionTool.on_invoke_tool(ctx, arguments_json)` runs every function tool: the
  `@function_tool` functions (sync ones run in a worker thread inside it, async ones are
  awaited), hand-built `FunctionTool`s, MCP tools listed through the SDK and agents used
  as tools (`Agent.as_tool`, recorded as one step; the inner run is not).
- `Handoff.on_invoke_handoff(ctx, arguments_json)` performs a handoff and returns the
  agent that takes over.

`install()` puts a data descriptor for each attribute on its class. While a recording or
replay with this integration is active, reading the attribute gives a stand-in around the
object's own callable: in record mode it runs the callable and records the step; in
replay it answers from the golden without running it. At any other time (and while the
SDK runs a tool nested inside a recorded one) the read returns the callable unchanged.
Why a descriptor rather than wrapping tools when they are made, or lifecycle hooks:
agents and their tools are usually built at import time, before the first run installs
the integration, and a descriptor reaches every tool and handoff object whenever it was
made, without touching the user's objects; `RunHooks.on_tool_start` can observe a call
but not answer it, and tool guardrails can only reject one.

Steps:

- a function tool call is recorded under the tool's name with the arguments the model
  sent (the parsed JSON, which is what replay matches); the output is the tool's return
  value, rebuilt on replay into the function's annotated return type (a pydantic model,
  a dataclass, a tuple), so the SDK shows the model exactly what it showed when recording.
  The SDK's `failure_error_function` (on by default) turns a tool's exception into a
  message for the model inside `on_invoke_tool`: that message is the recorded output. A
  tool made with `failure_error_function=None` lets the exception out: it is the step's
  error and is raised again on replay.
- a handoff is a `tool_call` step named after the handoff tool (`transfer_to_refunds`),
  with the handoff's arguments as input (`{}` without `input_type`) and
  `{"agent": "<name of the new agent>"}` as output. Being a call, it is matched: a run
  that now hands off elsewhere fails at that step. On replay the `on_handoff` callback is
  not run (it is the tool body) and the agent `handoff()` was built for takes over; a
  hand-built `Handoff` whose target the SDK does not record is asked again for its agent.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from typing import Any

from opswald.instrument import acall_tool
from opswald.integrations import active, return_decoder

NAME = "openai_agents"
_CACHE = "_opswald_invoker"  # where an object keeps its stand-in, so reads return one object


def install() -> None:
    """Hook `FunctionTool.on_invoke_tool` and `Handoff.on_invoke_handoff` (idempotent)."""
    from agents.handoffs import Handoff
    from agents.tool import FunctionTool

    _hook(FunctionTool, "on_invoke_tool", _ToolInvoker)
    _hook(Handoff, "on_invoke_handoff", _HandoffInvoker)


def _hook(cls: type, attr: str, make: Callable[[Any, Any], _Invoker]) -> None:
    if not isinstance(cls.__dict__.get(attr), _Seam):
        setattr(cls, attr, _Seam(attr, make))


class _Seam:
    """Class-level stand-in for an instance attribute that holds a callable.

    The value stays in the instance's `__dict__`; reads during an active run return a
    recording `_Invoker` around it (one per object, so identity checks in the SDK hold);
    writes store the callable itself, unwrapped.
    """

    def __init__(self, attr: str, make: Callable[[Any, Any], _Invoker]) -> None:
        self.attr = attr
        self.make = make

    def __get__(self, obj: Any, owner: type | None = None) -> Any:
        if obj is None:
            return self
        try:
            raw = obj.__dict__[self.attr]
        except KeyError:
            raise AttributeError(self.attr) from None
        if active(NAME) is None:
            return raw
        invoker = obj.__dict__.get(_CACHE)
        if not (isinstance(invoker, _Invoker) and invoker.owner is obj and invoker.raw is raw):
            invoker = self.make(obj, raw)
            obj.__dict__[_CACHE] = invoker
        return invoker

    def __set__(self, obj: Any, value: Any) -> None:
        obj.__dict__[self.attr] = value.raw if isinstance(value, _Invoker) else value


class _Invoker:
    """Stands in for an SDK object's callable; every other attribute is the original's."""

    def __init__(self, owner: Any, raw: Any) -> None:
        self.owner = owner
        self.raw = raw

    @property
    def __wrapped__(self) -> Any:
        """The original callable (what `inspect.signature` describes)."""
        return self.raw

    @property  # type: ignore[misc]
    def __class__(self) -> type:
        """The original's class, so the SDK's `isinstance` checks on its invokers (argument
        preparation for approvals, `FunctionTool.__wrapped__`) go the same way."""
        return type(self.raw)

    def __getattr__(self, name: str) -> Any:
        # the SDK marks its invokers with `__agents_*__` attributes; other dunders are ours
        if name in ("owner", "raw") or (name.startswith("__") and not name.startswith("__agents_")):
            raise AttributeError(name)
        return getattr(self.raw, name)

    def __repr__(self) -> str:
        return repr(self.raw)


class _ToolInvoker(_Invoker):
    """`FunctionTool.on_invoke_tool` as a `tool_call` step."""

    async def __call__(self, ctx: Any, input: str) -> Any:
        tool = self.owner
        return await acall_tool(
            tool.name, _arguments(input), lambda: self.raw(ctx, input), decode=self.decode
        )

    @functools.cached_property
    def decode(self) -> Callable[[Any], Any] | None:
        """Rebuilds the return type of the function given to `@function_tool`, if any."""
        return return_decoder(getattr(self.owner, "__wrapped__", None))


class _HandoffInvoker(_Invoker):
    """`Handoff.on_invoke_handoff` as a `tool_call` step named after the handoff tool."""

    async def __call__(self, ctx: Any, input_json: str | None = None) -> Any:
        handoff = self.owner
        reached: list[Any] = []

        async def run() -> dict[str, Any]:
            agent = await self.raw(ctx, input_json)
            reached.append(agent)
            return {"agent": getattr(agent, "name", None)}

        await acall_tool(handoff.tool_name, _arguments(input_json), run)
        if reached:
            return reached[0]
        target = _target(handoff)  # served from the golden: the body did not run
        return target if target is not None else await self.raw(ctx, input_json)


def _target(handoff: Any) -> Any:
    """The agent `handoff()` was built for (the SDK keeps a weak reference to it)."""
    ref = getattr(handoff, "_agent_ref", None)
    return ref() if callable(ref) else None


def _arguments(text: str | None) -> Any:
    """The arguments the model sent, as data (the raw text when it is not JSON)."""
    if not text:
        return {}
    try:
        return json.loads(text)
    except ValueError:
        return text
