"""The agent of the HTTP replay benchmark, in its own module so that the pytest projects
the benchmark writes import the very same code as its in-process legs."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import openai

MODEL = "gpt-4o-mini"

# Plain tools (not @opswald.tool): the bar is about HTTP-level replay, so every leg runs
# the same tool code and only the LLM traffic is served from a recording.


def get_weather(city: str) -> dict[str, Any]:
    return {"city": city, "temp_c": (len(city) * 7) % 35, "conditions": "clear"}


def get_time(city: str) -> dict[str, Any]:
    return {"city": city, "local_time": f"{(len(city) * 5) % 24:02d}:00"}


TOOL_FUNCS: dict[str, Callable[..., dict[str, Any]]] = {
    "get_weather": get_weather,
    "get_time": get_time,
}
TOOLS: list[Any] = [
    {
        "type": "function",
        "function": {
            "name": name,
            "description": f"{name.replace('_', ' ')} in a city",
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string"}},
                "required": ["city"],
            },
        },
    }
    for name in TOOL_FUNCS
]


def run_agent(client: openai.OpenAI, task: dict[str, Any]) -> dict[str, Any]:
    """Ask the model, run the tools it asks for, ask again; at most task['max_calls'] calls."""
    messages: list[Any] = [
        {"role": "system", "content": "You are a terse travel assistant. Use the tools."},
        {"role": "user", "content": task["question"]},
    ]
    for calls in range(1, task["max_calls"] + 1):
        reply = client.chat.completions.create(
            model=MODEL,
            messages=messages,
            tools=TOOLS,
            temperature=0,
        )
        message: Any = reply.choices[0].message
        if not message.tool_calls:
            return {"answer": message.content, "calls": calls}
        messages.append(
            {
                "role": "assistant",
                "content": message.content,
                "tool_calls": [
                    {
                        "id": t.id,
                        "type": "function",
                        "function": {"name": t.function.name, "arguments": t.function.arguments},
                    }
                    for t in message.tool_calls
                ],
            }
        )
        for t in message.tool_calls:
            result = TOOL_FUNCS[t.function.name](**json.loads(t.function.arguments))
            messages.append({"role": "tool", "tool_call_id": t.id, "content": json.dumps(result)})
    raise RuntimeError("the model never stopped asking for tools")
