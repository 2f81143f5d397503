"""PydanticAI: calls of function tools become `tool_call` steps.

The seam is the toolset call API, `AbstractToolset.call_tool(name, tool_args, ctx, tool)`,
as implemented by `FunctionToolset`: the toolset that holds every tool registered with
`@agent.tool` (with `RunContext`) and `@agent.tool_plain`, passed as `Agent(tools=[...])`,
or given as a `FunctionToolset` of its own. By the time the agent's tool manager calls it,
the model's arguments are validated, and capability hooks (`before_tool_execute`, ...)
have run; `tool_args` is then exactly the tool's own arguments by parameter name — the
`RunContext` is passed separately and never recorded. `install()` wraps
`FunctionToolset.call_tool` once; toolsets that wrap others (prefixed, renamed, filtered,
prepared, combined) call down to it, so the step carries the name the tool was registered
under. Why not a capability (`wrap_tool_execute`): it would have to be added to every agent
by the user, and the point of the integration is that agents need no change.

The step's output is the tool's return value, rebuilt on replay into the function's
annotated return type (a pydantic model, a dataclass, `ToolReturn`), so the run sees the
same objects as when recording. An exception from a tool is the step's error and is raised
again on replay, also an instance of its original class when that class is loaded:
`ModelRetry` still makes the agent ask the model again with the recorded message.

Not tool calls, so not recorded here: output tools and output functions
(`output_type=SomeModel`: the structured output is in the recorded model response), MCP
servers (the `mcp` integration), and deferred or external tools, which PydanticAI never
executes itself.
"""

from __future__ import annotations

import functools
from typing import Any

from opswald.instrument import acall_tool
from opswald.integrations import active, return_decoder

NAME = "pydantic_ai"
_MARK = "__opswald_hook__"


def install() -> None:
    """Wrap `FunctionToolset.call_tool` (idempotent)."""
    from pydantic_ai.toolsets import FunctionToolset

    original = FunctionToolset.__dict__["call_tool"]
    if getattr(original, _MARK, False):
        return

    @functools.wraps(original)
    async def call_tool(
        self: Any, name: str, tool_args: dict[str, Any], ctx: Any, tool: Any
    ) -> Any:
        if active(NAME) is None:
            return await original(self, name, tool_args, ctx, tool)
        return await acall_tool(
            name,
            tool_args,
            lambda: original(self, name, tool_args, ctx, tool),
            decode=functools.partial(_decode, self, name, tool),
        )

    setattr(call_tool, _MARK, True)
    FunctionToolset.call_tool = call_tool  # type: ignore[method-assign]


def _decode(toolset: Any, name: str, tool: Any, data: Any) -> Any:
    """A served output as the registered function's annotated return type (looked up only
    when serving)."""
    registered = toolset.tools.get(getattr(tool, "original_name", None) or name)
    decode = return_decoder(getattr(registered, "function", None))
    return decode(data) if decode is not None else data
