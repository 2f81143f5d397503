"""An order-desk agent whose tools live on an MCP server, driven by an OpenAI model.

The agent starts `examples/mcp_server.py` over stdio (or connects to it over streamable
HTTP when `ORDER_DESK_URL` is set), lists its tools, hands them to the model, and runs
every tool call the model makes through `ClientSession.call_tool` until the model answers.
Nothing in it knows about opswald: with `opswald_integrations = mcp`, recording captures
the MCP handshake, the tool list and every tool call as steps, and replay serves them from
the golden — the server is not started, and the model is not called.

    OPENAI_API_KEY=... python -m examples.mcp_agent "Where is order ORD-1001?"

`ORDER_DESK_COMMAND` replaces the server command (`python examples/mcp_server.py`);
`MCP_NOTES_FILE` is where the server's `append_note` tool writes.
"""

from __future__ import annotations

import json
import os
import shlex
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import openai
from mcp import ClientSession, StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.types import CallToolResult, TextContent

MODEL = "gpt-4o-mini"
SYSTEM = "You are an order-desk assistant. Use the tools; never guess an order's state."
MAX_TURNS = 6


def server_parameters() -> StdioServerParameters:
    """How to start the MCP server: `ORDER_DESK_COMMAND`, or the example server."""
    command = os.environ.get("ORDER_DESK_COMMAND")
    argv = (
        shlex.split(command)
        if command
        else [sys.executable, str(Path(__file__).with_name("mcp_server.py"))]
    )
    env = {k: os.environ[k] for k in ("MCP_NOTES_FILE",) if k in os.environ}
    return StdioServerParameters(command=argv[0], args=argv[1:], env=env)


@asynccontextmanager
async def connect() -> AsyncIterator[ClientSession]:
    """An initialised session with the order desk, over streamable HTTP or stdio."""
    url = os.environ.get("ORDER_DESK_URL")
    transport = streamable_http_client(url) if url else stdio_client(server_parameters())
    async with transport as (read, write), ClientSession(read, write) as session:
        yield session


def as_text(result: CallToolResult) -> str:
    """What the model reads back from a tool: its text, flagged when the tool failed."""
    text = "\n".join(c.text for c in result.content if isinstance(c, TextContent))
    return f"error: {text}" if result.is_error else text


async def answer(question: str) -> dict[str, Any]:
    """Answer one question with the model and the order desk's tools."""
    async with connect() as session:
        hello = await session.initialize()
        listing = await session.list_tools()
        tools: list[Any] = [
            {
                "type": "function",
                "function": {
                    "name": tool.name,
                    "description": tool.description or "",
                    "parameters": tool.input_schema,
                },
            }
            for tool in listing.tools
        ]
        system = f"{SYSTEM} {hello.instructions or ''}".strip()
        messages: list[Any] = [
            {"role": "system", "content": system},
            {"role": "user", "content": question},
        ]
        used: list[str] = []
        async with openai.AsyncOpenAI() as client:
            for _ in range(MAX_TURNS):
                reply = await client.chat.completions.create(
                    model=MODEL, messages=messages, tools=tools, temperature=0
                )
                message = reply.choices[0].message
                if not message.tool_calls:
                    return {"answer": message.content, "tools": used}
                messages.append(message.model_dump(exclude_none=True))
                for call in message.tool_calls:
                    if call.type != "function":  # only function tools were offered
                        raise ValueError(f"unexpected {call.type} tool call")
                    arguments = json.loads(call.function.arguments)
                    result = await session.call_tool(call.function.name, arguments)
                    used.append(call.function.name)
                    messages.append(
                        {"role": "tool", "tool_call_id": call.id, "content": as_text(result)}
                    )
    raise RuntimeError(f"no answer after {MAX_TURNS} model turns")


async def run(input: dict[str, Any]) -> dict[str, Any]:
    """The adapter goldens replay through: `opswald_adapter = examples.mcp_agent:run`."""
    return await answer(input["question"])


def run_sync(input: dict[str, Any]) -> dict[str, Any]:
    """The same agent for synchronous callers (it runs its own event loop)."""
    return anyio.run(answer, input["question"])


if __name__ == "__main__":
    print(json.dumps(run_sync({"question": " ".join(sys.argv[1:]) or "Where is ORD-1001?"})))
