"""A LangGraph agent with LangChain tools, recorded and replayed by opswald unchanged.

The graph is the classic loop: a chat model (`ChatOpenAI`) picks tools, a `ToolNode` runs
them, until the model answers. Nothing in it mentions opswald: with
`opswald_integrations = langchain` in the pytest ini, every tool call is a `tool_call`
step (served from the golden in replay, so `save_note` never writes during replay) and
the model calls are intercepted at the HTTP level.

    OPENAI_API_KEY=... python -m examples.langchain_agent "Weather in Rome? Note it."

`run(input)` is the adapter a golden replays through (`opswald_adapter =
examples.langchain_agent:run`); `arun` is the same agent driven with `ainvoke`.
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path
from typing import Any

from langchain_core.messages import SystemMessage
from langchain_core.runnables import RunnableLambda
from langchain_core.tools import tool
from langchain_openai import ChatOpenAI
from langgraph.graph import START, MessagesState, StateGraph
from langgraph.graph.state import CompiledStateGraph
from langgraph.prebuilt import ToolNode, tools_condition

NOTES = Path(os.environ.get("OPSWALD_EXAMPLE_NOTES", Path(__file__).with_name("notes.log")))
SYSTEM = "You are a weather assistant. Use the tools; note what the user asks you to note."
WEATHER = {"Paris": (14, "cloudy"), "Rome": (21, "sunny"), "Oslo": (3, "snow")}


@tool
def get_weather(city: str) -> dict[str, Any]:
    """Current weather in a city."""
    temp_c, sky = WEATHER.get(city, (18, "unknown"))
    return {"city": city, "temp_c": temp_c, "sky": sky}


@tool
def save_note(text: str) -> str:
    """Save a note for the user (writes to the notes file)."""
    with NOTES.open("a", encoding="utf-8") as f:
        f.write(text + "\n")
    return "saved"


TOOLS = [get_weather, save_note]


def build(model: str | None = None) -> CompiledStateGraph[Any, Any, Any, Any]:
    """The agent graph: model → tools → model … until the model answers without tools."""
    llm = ChatOpenAI(model=model or os.environ.get("OPSWALD_EXAMPLE_MODEL", "gpt-4o-mini"))
    bound = llm.bind_tools(TOOLS)

    def call_model(state: MessagesState) -> dict[str, Any]:
        return {"messages": [bound.invoke([SystemMessage(SYSTEM), *state["messages"]])]}

    async def acall_model(state: MessagesState) -> dict[str, Any]:
        return {"messages": [await bound.ainvoke([SystemMessage(SYSTEM), *state["messages"]])]}

    graph = StateGraph(MessagesState)
    graph.add_node("agent", RunnableLambda(call_model, afunc=acall_model))
    graph.add_node("tools", ToolNode(TOOLS))
    graph.add_edge(START, "agent")
    graph.add_conditional_edges("agent", tools_condition)
    graph.add_edge("tools", "agent")
    return graph.compile()


def _answer(state: dict[str, Any]) -> dict[str, Any]:
    messages = state["messages"]
    used = [m.name for m in messages if m.type == "tool"]
    return {"answer": messages[-1].content, "tools": used}


def run(input: dict[str, Any]) -> dict[str, Any]:
    """Adapter: the golden's input is `{"question": ...}`."""
    return _answer(build().invoke({"messages": [("user", input["question"])]}))


async def arun(input: dict[str, Any]) -> dict[str, Any]:
    """The same agent, driven asynchronously."""
    return _answer(await build().ainvoke({"messages": [("user", input["question"])]}))


if __name__ == "__main__":
    question = " ".join(sys.argv[1:]) or "What is the weather in Rome? Save a note about it."
    print(asyncio.run(arun({"question": question})))
