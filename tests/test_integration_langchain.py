"""LangChain/LangGraph integration: real tools in real graphs, recorded against the fake
provider on 127.0.0.1, replayed with the tool bodies never running."""

from __future__ import annotations

import asyncio
import inspect
import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any, ClassVar

# Imported before any pytester run: modules first imported inside an in-process run are
# dropped again afterwards, and the hooks installed on them with them.
import langchain_anthropic  # noqa: F401
import langchain_core.callbacks
import langchain_core.tracers.context  # noqa: F401
import langchain_openai  # noqa: F401
import pytest
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.messages import AIMessage, ToolMessage
from langchain_core.tools import BaseTool, InjectedToolCallId, StructuredTool, ToolException, tool
from langgraph.graph import END, START, MessagesState, StateGraph
from langgraph.prebuilt import InjectedState, ToolNode, ToolRuntime
from langgraph.types import Command
from pydantic import BaseModel

import opswald
from fakeprovider import FakeProvider
from opswald import load
from opswald.engine.run import RunSettings, execute
from opswald.session import LLMCallStep, Session, StateStep, ToolCallStep

ROOT = Path(__file__).resolve().parents[1]

AGENT = '''
"""A weather agent on LangChain/LangGraph: AGENT_STYLE react (create_react_agent) or graph
(a hand-built StateGraph), AGENT_ASYNC for ainvoke, AGENT_MODEL openai or anthropic."""
import asyncio
import os
import warnings
from pathlib import Path

from langchain_core.messages import SystemMessage
from langchain_core.runnables import RunnableLambda
from langchain_core.tools import BaseTool, StructuredTool, tool
from langgraph.graph import START, MessagesState, StateGraph
from langgraph.prebuilt import ToolNode, tools_condition
from langgraph.warnings import LangGraphDeprecatedSinceV10
from pydantic import BaseModel

HERE = Path(__file__).parent
NOTES = HERE / "notes.log"      # the side effect
RUNS = HERE / "tool_runs.log"   # every tool body that ran
SYSTEM = "You are a weather assistant. Use the tools."


def ran(name):
    with RUNS.open("a") as f:
        f.write(name + "\\n")


@tool
def get_weather(city: str) -> dict:
    """Current weather in a city."""
    ran("get_weather")
    return {"city": city, "temp_c": 21, "sky": "sunny"}


def c2f(celsius: float):
    ran("convert_temp")
    fahrenheit = round(celsius * 9 / 5 + 32, 1)
    return f"{fahrenheit}F", {"celsius": celsius, "fahrenheit": fahrenheit}


async def ac2f(celsius: float):
    return c2f(celsius)


convert_temp = StructuredTool.from_function(
    func=c2f, coroutine=ac2f, name="convert_temp", description="Celsius to Fahrenheit.",
    response_format="content_and_artifact",
)


class NoteArgs(BaseModel):
    text: str


class AppendNote(BaseTool):
    name: str = "append_note"
    description: str = "Append a line to the user's notes."
    args_schema: type[BaseModel] = NoteArgs

    def _run(self, text):
        ran("append_note")
        with NOTES.open("a") as f:
            f.write(text + "\\n")
        return f"noted ({len(text)} chars)"

    async def _arun(self, text):
        return self._run(text)


TOOLS = [get_weather, convert_temp, AppendNote()]


def _edited(request):
    """AGENT_VARIANT=args: the agent rewrites the note before it is written."""
    call = request.tool_call
    if os.environ.get("AGENT_VARIANT") == "args" and call["name"] == "append_note":
        args = {**call["args"], "text": call["args"]["text"].upper()}
        return request.override(tool_call={**call, "args": args})
    return request


def rewrite(request, execute):
    return execute(_edited(request))


async def arewrite(request, execute):
    return await execute(_edited(request))


def model(http_async_client):
    if os.environ.get("AGENT_MODEL") == "anthropic":
        from langchain_anthropic import ChatAnthropic
        return ChatAnthropic(model="claude-3-5-haiku-latest", max_tokens=256, max_retries=0)
    from langchain_openai import ChatOpenAI
    return ChatOpenAI(
        model="gpt-4o-mini", temperature=0, max_retries=0, http_async_client=http_async_client
    )


def build(http_async_client=None):
    tools = ToolNode(TOOLS, wrap_tool_call=rewrite, awrap_tool_call=arewrite)
    if os.environ.get("AGENT_STYLE", "react") == "react":
        from langgraph.prebuilt import create_react_agent
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", LangGraphDeprecatedSinceV10)
            return create_react_agent(model(http_async_client), tools, prompt=SYSTEM)
    llm = model(http_async_client).bind_tools(TOOLS)

    def call_model(state):
        return {"messages": [llm.invoke([SystemMessage(SYSTEM), *state["messages"]])]}

    async def acall_model(state):
        return {"messages": [await llm.ainvoke([SystemMessage(SYSTEM), *state["messages"]])]}

    graph = StateGraph(MessagesState)
    graph.add_node("agent", RunnableLambda(call_model, afunc=acall_model))
    graph.add_node("tools", tools)
    graph.add_edge(START, "agent")
    graph.add_conditional_edges("agent", tools_condition)
    graph.add_edge("tools", "agent")
    return graph.compile()


def summary(state):
    messages = state["messages"]
    return {
        "answer": messages[-1].content,
        "tool_messages": [
            {"name": m.name, "content": m.content, "artifact": m.artifact,
             "tool_call_id": m.tool_call_id, "status": m.status}
            for m in messages if m.type == "tool"
        ],
    }


async def arun(state):
    import openai
    async with openai.DefaultAsyncHttpxClient() as client:  # closed before the loop is
        return summary(await build(client).ainvoke(state))


def run(input):
    state = {"messages": [("user", input["question"])]}
    if os.environ.get("AGENT_ASYNC"):
        return asyncio.run(arun(state))
    return summary(build().invoke(state))
'''

NOTE = "Rome: sunny, 21C (69.8F)"
SCRIPT: list[dict[str, Any]] = [
    {
        "content": None,
        "tool_calls": [
            {"name": "get_weather", "arguments": {"city": "Rome"}},
            {"name": "convert_temp", "arguments": {"celsius": 21}},
        ],
    },
    {"content": None, "tool_calls": [{"name": "append_note", "arguments": {"text": NOTE}}]},
    {"content": "Noted: Rome is sunny, 21°C (69.8°F).", "tool_calls": None},
]
KINDS = ["llm_call", "tool_call", "tool_call", "llm_call", "tool_call", "llm_call"]
GOLDEN = "goldens/weather.golden.yaml"
INI = """\
[pytest]
opswald_adapter = lcagent:run
opswald_integrations = langchain
opswald_side_effect_tools = append_note
"""


@pytest.fixture
def lc_project(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    """A project whose agent is a LangGraph graph, with one stub golden."""
    for var in (
        "CI",
        "AGENT_STYLE",
        "AGENT_ASYNC",
        "AGENT_MODEL",
        "AGENT_VARIANT",
        "OPSWALD_LANGGRAPH_STATE",
        "OPENAI_API_BASE",
        "ANTHROPIC_API_URL",
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "ALL_PROXY",
    ):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-proj-" + "A1b2C3d4" * 5)
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-api03-" + "Z9y8X7w6" * 5)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    pytester.makepyfile(lcagent=AGENT)
    pytester.syspathinsert()
    pytester.makeini(INI)
    pytester.mkdir("goldens")
    (pytester.path / GOLDEN).write_text("name: weather\ninput:\n  question: Weather in Rome?\n")
    return pytester


def _lines(pytester: pytest.Pytester, name: str) -> list[str]:
    path = pytester.path / name
    return path.read_text().splitlines() if path.exists() else []


def _point_at(monkeypatch: pytest.MonkeyPatch, fp: FakeProvider) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", fp.base_url + "/v1")
    monkeypatch.setenv("ANTHROPIC_BASE_URL", fp.base_url)


def _record(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> Session:
    with FakeProvider(script=[dict(s) for s in SCRIPT]) as fp:
        _point_at(monkeypatch, fp)
        result = pytester.runpytest("--opswald-goldens", "--opswald-mode=record")
        assert result.ret == 0, result.stdout.str()
    return load(pytester.path / GOLDEN)


def _replay(
    pytester: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    *args: str,
    script: list[dict[str, Any]] = SCRIPT,
) -> tuple[pytest.RunResult, FakeProvider]:
    """Replay with a provider listening, so a request that escaped would be seen."""
    with FakeProvider(script=[dict(s) for s in script]) as fp:
        _point_at(monkeypatch, fp)
        result = pytester.runpytest("--opswald-goldens", *args)
    return result, fp


def _tools(session: Session) -> dict[str, ToolCallStep]:
    return {s.tool: s for s in session.step_list if isinstance(s, ToolCallStep)}


STYLES = [
    pytest.param("react", False, id="react-invoke"),
    pytest.param("react", True, id="react-ainvoke"),
    pytest.param("graph", False, id="graph-invoke"),
    pytest.param("graph", True, id="graph-ainvoke"),
]


def _style(monkeypatch: pytest.MonkeyPatch, style: str, use_async: bool) -> None:
    monkeypatch.setenv("AGENT_STYLE", style)
    if use_async:
        monkeypatch.setenv("AGENT_ASYNC", "1")


@pytest.mark.parametrize(("style", "use_async"), STYLES)
def test_record_then_replay_without_running_a_tool(
    lc_project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, style: str, use_async: bool
) -> None:
    _style(monkeypatch, style, use_async)
    session = _record(lc_project, monkeypatch)
    assert [s.type for s in session.step_list] == KINDS
    assert session.metadata["integrations"] == ["langchain"]
    tools = _tools(session)
    assert tools["get_weather"].input == {"city": "Rome"}
    assert tools["get_weather"].output == '{"city": "Rome", "temp_c": 21, "sky": "sunny"}'
    assert tools["convert_temp"].input == {"celsius": 21}
    assert tools["convert_temp"].output == {
        "content": "69.8F",
        "artifact": {"celsius": 21.0, "fahrenheit": 69.8},
    }
    assert tools["append_note"].step == 5
    assert tools["append_note"].input == {"text": NOTE}
    assert tools["append_note"].output == f"noted ({len(NOTE)} chars)"
    assert "call_" not in json.dumps([t.input for t in tools.values()])
    assert session.output["tool_messages"][1] == {
        "name": "convert_temp",
        "content": "69.8F",
        "artifact": {"celsius": 21.0, "fahrenheit": 69.8},
        "tool_call_id": "call_2",
        "status": "success",
    }
    assert _lines(lc_project, "notes.log") == [NOTE]
    assert sorted(_lines(lc_project, "tool_runs.log")) == [
        "append_note",
        "convert_temp",
        "get_weather",
    ]

    result, fp = _replay(lc_project, monkeypatch)
    result.assert_outcomes(passed=1)
    assert fp.requests == [], "replay sent nothing to the provider"
    assert _lines(lc_project, "notes.log") == [NOTE], "the side effect did not happen again"
    assert len(_lines(lc_project, "tool_runs.log")) == 3, "no tool body ran in replay"


@pytest.mark.parametrize(
    ("style", "use_async"),
    [
        pytest.param("react", False, id="react-invoke"),
        pytest.param("graph", True, id="graph-ainvoke"),
    ],
)
def test_a_changed_tool_argument_diverges_at_its_step(
    lc_project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, style: str, use_async: bool
) -> None:
    _style(monkeypatch, style, use_async)
    _record(lc_project, monkeypatch)
    monkeypatch.setenv("AGENT_VARIANT", "args")
    result, fp = _replay(lc_project, monkeypatch)
    result.assert_outcomes(failed=1)
    out = result.stdout.str()
    assert "step 5 of 6 · tool_call append_note: called append_note with other arguments" in out
    assert f"step 5 › input.text: '{NOTE}' → '{NOTE.upper()}'" in out
    assert fp.requests == []
    assert _lines(lc_project, "notes.log") == [NOTE], "the diverging call did not run"

    # append_note is listed in opswald_side_effect_tools: an update does not run it live
    before = (lc_project.path / GOLDEN).read_text()
    result, _ = _replay(lc_project, monkeypatch, "--opswald-update")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*append_note has side effects and would run live*"])
    assert _lines(lc_project, "notes.log") == [NOTE]
    assert (lc_project.path / GOLDEN).read_text() == before

    allow = ("--opswald-update", "--opswald-allow-side-effects")
    result, fp = _replay(lc_project, monkeypatch, *allow, script=SCRIPT[2:])
    assert result.ret == 0, result.stdout.str()
    assert len(fp.requests) == 1, "live from the divergence on: the last model call"
    assert _lines(lc_project, "notes.log") == [NOTE, NOTE.upper()]
    assert _tools(load(lc_project.path / GOLDEN))["append_note"].input == {"text": NOTE.upper()}


def test_chat_anthropic_through_interception(
    lc_project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AGENT_MODEL", "anthropic")
    session = _record(lc_project, monkeypatch)
    assert [s.type for s in session.step_list] == KINDS
    llm = [s for s in session.step_list if isinstance(s, LLMCallStep)]
    assert {s.provider for s in llm} == {"anthropic"}
    assert _tools(session)["convert_temp"].input == {"celsius": 21}
    assert session.output["tool_messages"][0]["tool_call_id"].startswith("toolu_")
    text = (lc_project.path / GOLDEN).read_text()
    assert "sk-ant-" not in text

    result, fp = _replay(lc_project, monkeypatch)
    result.assert_outcomes(passed=1)
    assert fp.requests == []
    assert _lines(lc_project, "notes.log") == [NOTE]


def test_without_the_integration_tools_run_as_usual(
    lc_project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    lc_project.makeini("[pytest]\nopswald_adapter = lcagent:run\n")
    session = _record(lc_project, monkeypatch)
    assert [s.type for s in session.step_list] == ["llm_call"] * 3
    assert "integrations" not in session.metadata
    assert _lines(lc_project, "notes.log") == [NOTE]

    result, fp = _replay(lc_project, monkeypatch)
    result.assert_outcomes(passed=1)
    assert fp.requests == []
    assert _lines(lc_project, "notes.log") == [NOTE, NOTE], "the tools ran again"


@pytest.mark.parametrize(
    ("style", "use_async", "nodes"),
    [
        # create_react_agent sends each tool call to its own `tools` task
        pytest.param("react", False, "agent tools tools agent tools agent", id="react-invoke"),
        pytest.param("graph", True, "agent tools agent tools agent", id="graph-ainvoke"),
    ],
)
def test_graph_state_is_recorded_when_asked(
    lc_project: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    style: str,
    use_async: bool,
    nodes: str,
) -> None:
    _style(monkeypatch, style, use_async)
    lc_project.makeini(INI + "opswald_langgraph_state = true\n")
    session = _record(lc_project, monkeypatch)
    states = [s for s in session.step_list if isinstance(s, StateStep)]
    assert [s.context["langgraph_node"] for s in states] == nodes.split()
    steps = [s.context["langgraph_step"] for s in states]
    assert steps == sorted(steps) and steps[0] == 1 and steps[-1] == 5
    calls = [s for s in session.step_list if not isinstance(s, StateStep)]
    assert [s.type for s in calls] == KINDS
    assert session.step_list[0] is states[0], "the state the first node starts from"
    first = states[0].memory
    assert first["messages"] == [{"type": "human", "content": "Weather in Rome?"}]
    last = states[-1].memory["messages"]
    assert [m["type"] for m in last] == ["human", "ai", "tool", "tool", "ai", "tool"]
    assert last[3]["artifact"] == {"celsius": 21.0, "fahrenheit": 69.8}
    assert last[1]["tool_calls"][0]["args"] == {"city": "Rome"}
    assert all("id" not in m for m in last), "message ids are random: left out"

    golden = lc_project.path / GOLDEN
    assert "expect:" not in golden.read_text()
    with golden.open("a") as f:
        f.write("expect:\n  state: exact\n")  # a replayed state that differs fails
    report = lc_project.path / "report.json"
    result, fp = _replay(lc_project, monkeypatch, f"--opswald-json={report}")
    result.assert_outcomes(passed=1)
    assert fp.requests == []
    assert json.loads(report.read_text())["goldens"][0]["steps"] == len(KINDS) + len(states)

    lc_project.makeini(INI)
    result, _ = _replay(lc_project, monkeypatch)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*state snapshot 1 missing*"])


def test_the_example_agent_records_and_replays(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.delenv("OPENAI_API_BASE", raising=False)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    monkeypatch.setenv("OPSWALD_EXAMPLE_NOTES", str(pytester.path / "notes.log"))
    shutil.copy(ROOT / "examples" / "langchain_agent.py", pytester.path / "langchain_agent.py")
    pytester.syspathinsert()
    pytester.makeini(
        "[pytest]\nopswald_adapter = langchain_agent:run\n"
        "opswald_integrations = langchain\nopswald_side_effect_tools = save_note\n"
    )
    pytester.mkdir("goldens")
    (pytester.path / "goldens" / "rome.golden.yaml").write_text(
        "name: rome\ninput:\n  question: Weather in Rome? Save a note.\n"
    )
    script: list[dict[str, Any]] = [
        {"content": None, "tool_calls": [{"name": "get_weather", "arguments": {"city": "Rome"}}]},
        {"content": None, "tool_calls": [{"name": "save_note", "arguments": {"text": "sunny"}}]},
        {"content": "Rome is sunny; noted.", "tool_calls": None},
    ]
    with FakeProvider(script=script) as fp:
        monkeypatch.setenv("OPENAI_BASE_URL", fp.base_url + "/v1")
        result = pytester.runpytest("--opswald-goldens", "--opswald-mode=record")
        assert result.ret == 0, result.stdout.str()
    golden = load(pytester.path / "goldens" / "rome.golden.yaml")
    kinds = ["llm_call", "tool_call", "llm_call", "tool_call", "llm_call"]
    assert [s.type for s in golden.step_list] == kinds
    assert golden.output == {
        "answer": "Rome is sunny; noted.",
        "tools": ["get_weather", "save_note"],
    }
    assert (pytester.path / "notes.log").read_text() == "sunny\n"
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")  # nobody listens
    pytester.runpytest("--opswald-goldens").assert_outcomes(passed=1)
    assert (pytester.path / "notes.log").read_text() == "sunny\n"


# -- in-process: what `run`/`arun` give back in replay ------------------------------------


def _record_and_replay(agent: Any) -> tuple[Session, Any, Any]:
    """Record `agent(input)` with the integration on, replay it; (golden, live, replayed)."""
    with opswald.record(None, store=False, input="go", integrations=["langchain"]) as rec:
        rec.output = agent("go")
    golden = rec.session
    assert golden is not None
    live = golden.output
    outputs: list[Any] = []

    def again(inp: Any) -> Any:
        value = agent(inp)
        outputs.append(value)
        return value

    run = execute(golden, again, settings=RunSettings(integrations=("langchain",)))
    assert run.agent_traceback is None, run.agent_traceback
    assert not run.findings, run.findings
    return golden, live, outputs[0]


class Body:
    """Counts how often tool bodies really ran."""

    runs: ClassVar[list[str]] = []


@pytest.fixture(autouse=True)
def _fresh_body() -> Iterator[None]:
    Body.runs = []
    yield


def _call(name: str, args: dict[str, Any], call_id: str) -> dict[str, Any]:
    return {"type": "tool_call", "name": name, "args": args, "id": call_id}


def test_the_tool_message_answers_the_call_made_now() -> None:
    @tool
    def lookup(city: str, tool_call_id: Annotated[str, InjectedToolCallId]) -> str:
        """Look a city up."""
        Body.runs.append(tool_call_id)
        return f"{city}: found"

    ids = iter(["call_recorded", "call_now"])

    def agent(_: Any) -> Any:
        message = lookup.invoke(_call("lookup", {"city": "Rome"}, next(ids)))
        return {"content": message.content, "id": message.tool_call_id, "name": message.name}

    golden, live, replayed = _record_and_replay(agent)
    (step,) = golden.step_list
    assert isinstance(step, ToolCallStep)
    assert step.input == {"city": "Rome"}, "the injected tool_call_id is not an argument"
    assert step.output == "Rome: found"
    assert live == {"content": "Rome: found", "id": "call_recorded", "name": "lookup"}
    assert replayed == {"content": "Rome: found", "id": "call_now", "name": "lookup"}
    assert Body.runs == ["call_recorded"]


class Weather(BaseModel):
    city: str
    temp_c: int


def test_artifacts_error_status_and_direct_calls_come_back_as_langchain_returns_them() -> None:
    def measure(city: str) -> tuple[str, dict[str, Any]]:
        Body.runs.append("measure")
        return f"{city}: 21C", {"samples": [20.5, 21.5]}

    measure_tool = StructuredTool.from_function(
        measure, name="measure", description="Measure.", response_format="content_and_artifact"
    )

    def no_station(city: str) -> str:
        Body.runs.append("flaky")
        raise ToolException(f"no station in {city}")

    flaky = StructuredTool.from_function(
        no_station, name="flaky", description="Fails, and says so.", handle_tool_error=True
    )

    def typed(city: str) -> Weather:
        Body.runs.append("typed")
        return Weather(city=city, temp_c=21)

    typed_tool = StructuredTool.from_function(typed, name="typed", description="Typed.")

    @tool
    def own(city: str, tool_call_id: Annotated[str, InjectedToolCallId]) -> ToolMessage:
        """Builds its own message."""
        Body.runs.append("own")
        return ToolMessage(f"{city} ok", tool_call_id=tool_call_id, artifact={"raw": 1})

    def agent(_: Any) -> Any:
        a = measure_tool.invoke(_call("measure", {"city": "Rome"}, "c1"))
        b = flaky.invoke(_call("flaky", {"city": "Oslo"}, "c2"))
        c = measure_tool.invoke({"city": "Paris"})
        d = typed_tool.invoke({"city": "Lima"})
        e = own.invoke(_call("own", {"city": "Bern"}, "c3"))
        assert isinstance(a, ToolMessage) and isinstance(b, ToolMessage)
        assert isinstance(d, Weather) and isinstance(e, ToolMessage)
        return [
            [a.content, a.artifact, a.status, a.tool_call_id],
            [b.content, b.artifact, b.status, b.tool_call_id],
            c,
            d.model_dump(),
            [e.content, e.artifact, e.name, e.tool_call_id],
        ]

    golden, live, replayed = _record_and_replay(agent)
    assert Body.runs == ["measure", "flaky", "measure", "typed", "own"]
    assert (
        replayed
        == live
        == [
            ["Rome: 21C", {"samples": [20.5, 21.5]}, "success", "c1"],
            ["no station in Oslo", None, "error", "c2"],
            "Paris: 21C",
            {"city": "Lima", "temp_c": 21},
            ["Bern ok", {"raw": 1}, None, "c3"],
        ]
    )
    outputs = [s.output for s in golden.step_list if isinstance(s, ToolCallStep)]
    assert outputs == [
        {"content": "Rome: 21C", "artifact": {"samples": [20.5, 21.5]}},
        {"content": "no station in Oslo", "status": "error"},
        "Paris: 21C",
        {"city": "Lima", "temp_c": 21},
        {"content": "Bern ok", "artifact": {"raw": 1}, "name": None},
    ]


def test_a_command_result_is_rebuilt_for_the_current_call() -> None:
    @tool
    def remember(fact: str, tool_call_id: Annotated[str, InjectedToolCallId]) -> Command[Any]:
        """Remember a fact in the graph state."""
        Body.runs.append("remember")
        reply = ToolMessage(f"remembered {fact}", tool_call_id=tool_call_id)
        return Command(update={"messages": [reply], "facts": [fact]}, goto="agent")

    ids = iter(["c_then", "c_now"])

    def agent(_: Any) -> Any:
        command = remember.invoke(_call("remember", {"fact": "rain"}, next(ids)))
        assert isinstance(command, Command) and isinstance(command.update, dict)
        (message,) = command.update["messages"]
        assert isinstance(message, ToolMessage)
        return [message.content, message.tool_call_id, command.update["facts"], command.goto]

    _, live, replayed = _record_and_replay(agent)
    assert live == ["remembered rain", "c_then", ["rain"], "agent"]
    assert replayed == ["remembered rain", "c_now", ["rain"], "agent"]
    assert Body.runs == ["remember"]


def test_recorded_errors_read_the_same_to_the_tool_node() -> None:
    @tool
    def strict(count: int) -> str:
        """Needs a number."""
        Body.runs.append("strict")
        return "ok"

    @tool
    def broken(city: str) -> str:
        """Raises."""
        Body.runs.append("broken")
        raise ToolException(f"{city} is offline")

    @tool
    def charge(amount: int) -> str:
        """Raises an error of the agent's own, with two arguments."""
        Body.runs.append("charge")
        raise Declined(402, f"card declined for {amount}")

    graph = StateGraph(MessagesState)
    graph.add_node("tools", ToolNode([strict, broken, charge], handle_tool_errors=True))
    graph.add_edge(START, "tools")
    graph.add_edge("tools", END)
    app = graph.compile()
    asked = AIMessage(
        "",
        tool_calls=[
            {"name": "strict", "args": {"count": "many"}, "id": "c1"},
            {"name": "broken", "args": {"city": "Oslo"}, "id": "c2"},
            {"name": "charge", "args": {"amount": 12}, "id": "c3"},
        ],
    )

    def agent(_: Any) -> Any:
        out = app.invoke({"messages": [asked]})
        return sorted([m.name, m.content, m.status] for m in out["messages"][1:])

    golden, live, replayed = _record_and_replay(agent)
    assert replayed == live
    assert live[0][0] == "broken" and "ToolException('Oslo is offline')" in live[0][1]
    # the error's own arguments, as its repr shows them, come back with it
    assert live[1][0] == "charge" and "Declined(402, 'card declined for 12')" in live[1][1]
    assert live[2][0] == "strict" and "count" in live[2][1] and live[2][2] == "error"
    assert sorted(Body.runs) == ["broken", "charge"], "the invalid call never reached its body"
    errors = sorted(
        (s.tool, s.error.type) for s in golden.step_list if isinstance(s, ToolCallStep) and s.error
    )
    assert errors == [
        ("broken", "ToolException"),
        ("charge", "Declined"),
        ("strict", "ValidationError"),
    ]


class Declined(Exception):
    """An agent's own error whose arguments are not just its message."""


def test_injected_arguments_are_not_recorded() -> None:
    @tool
    def count(
        city: str,
        state: Annotated[dict[str, Any], InjectedState],
        runtime: ToolRuntime,
    ) -> str:
        """Counts messages."""
        Body.runs.append(city)
        return f"{city}: {len(state['messages'])} messages, call {runtime.tool_call_id}"

    graph = StateGraph(MessagesState)
    graph.add_node("tools", ToolNode([count]))
    graph.add_edge(START, "tools")
    graph.add_edge("tools", END)
    app = graph.compile()
    asked = AIMessage("", tool_calls=[{"name": "count", "args": {"city": "Rome"}, "id": "c7"}])

    def agent(_: Any) -> Any:
        return app.invoke({"messages": [asked]})["messages"][-1].content

    golden, live, replayed = _record_and_replay(agent)
    (step,) = golden.step_list
    assert isinstance(step, ToolCallStep) and step.input == {"city": "Rome"}
    assert replayed == live == "Rome: 1 messages, call c7"
    assert Body.runs == ["Rome"]


class Events(BaseCallbackHandler):
    def __init__(self) -> None:
        self.seen: list[list[Any]] = []

    def on_tool_start(self, serialized: dict[str, Any], input_str: str, **kw: Any) -> None:
        self.seen.append(["start", serialized["name"]])

    def on_tool_end(self, output: Any, **kw: Any) -> None:
        self.seen.append(["end", getattr(output, "content", output)])

    def on_tool_error(self, error: BaseException, **kw: Any) -> None:
        self.seen.append(["error", str(error)])


def test_callbacks_see_replayed_calls_as_live_ones() -> None:
    @tool
    def ping(host: str) -> str:
        """Ping."""
        Body.runs.append("ping")
        return f"{host} up"

    @tool
    def fail(host: str) -> str:
        """Fail."""
        raise ValueError(f"{host} down")

    def agent(_: Any) -> Any:
        events = Events()
        ping.invoke(_call("ping", {"host": "a"}, "c1"), config={"callbacks": [events]})
        with pytest.raises(ValueError, match="b down"):
            fail.invoke({"host": "b"}, config={"callbacks": [events]})
        return events.seen

    _, live, replayed = _record_and_replay(agent)
    assert live == [["start", "ping"], ["end", "a up"], ["start", "fail"], ["error", "b down"]]
    assert replayed == live
    assert Body.runs == ["ping"]


def test_async_tools_replay_the_same() -> None:
    @tool
    async def fetch(url: str) -> dict[str, Any]:
        """Fetch."""
        Body.runs.append(url)
        return {"url": url, "status": 200}

    def agent(_: Any) -> Any:
        async def go() -> Any:
            message = await fetch.ainvoke(_call("fetch", {"url": "u"}, "c9"))
            direct = await fetch.ainvoke({"url": "v"})
            return [message.content, message.tool_call_id, direct]

        return asyncio.run(go())

    _, live, replayed = _record_and_replay(agent)
    assert replayed == live == ['{"url": "u", "status": 200}', "c9", {"url": "v", "status": 200}]
    assert Body.runs == ["u", "v"]


def test_no_steps_outside_a_run_or_when_not_enabled() -> None:
    @tool
    def echo(text: str) -> str:
        """Echo."""
        Body.runs.append(text)
        return text

    assert echo.invoke({"text": "outside"}) == "outside"
    with opswald.record(None, store=False, input=None) as rec:
        assert echo.invoke(_call("echo", {"text": "off"}, "c1")).content == "off"
    assert rec.session is not None and rec.session.step_list == []
    assert Body.runs == ["outside", "off"]


def test_tools_are_hooked_once_whatever_their_kind() -> None:
    from opswald.integrations import install

    install(["langchain"])
    install(["langchain"])
    assert getattr(BaseTool.run, "__opswald_langchain__", False)
    assert getattr(BaseTool.arun, "__opswald_langchain__", False)
    original = inspect.unwrap(BaseTool.run)
    assert original is not BaseTool.run and original.__qualname__ == "BaseTool.run"
    assert not getattr(original, "__opswald_langchain__", False), "wrapped once, not twice"
