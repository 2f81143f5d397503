"""OpenAI Agents SDK integration: the example order desk (real `agents` Runner, function
tools, a handoff) recorded against the fake provider on 127.0.0.1, replayed offline.

Every pytest run is a process of its own, as record and replay are for users: the SDK keeps
process-wide state between runs (one HTTP client, and `Runner.run_sync`'s event loop that it
never closes), which would otherwise leak from one test into the next.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

import subprocess_projects
from fakeprovider import FakeProvider
from opswald import load
from opswald.session import LLMCallStep
from subprocess_projects import notes, replay, run, tools

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "openai_agents_agent.py"
GOLDEN = "goldens/refund.golden.yaml"
INI = """\
[pytest]
opswald_adapter = {adapter}
opswald_side_effect_tools = append_note, transfer_to_refunds
"""
INTEGRATION = "opswald_integrations = openai_agents\n"
SCRIPT: list[dict[str, Any]] = [
    {"tool_calls": [{"name": "lookup_order", "arguments": {"order_id": "ORD-1001"}}]},
    {"tool_calls": [{"name": "transfer_to_refunds", "arguments": {"reason": "arrived broken"}}]},
    {
        "tool_calls": [
            {"name": "append_note", "arguments": {"order_id": "ORD-1001", "text": "refund 120"}}
        ]
    },
    {"content": "Refund of 120.0 approved for ORD-1001."},
]
KINDS = ["llm_call", "tool_call", "llm_call", "tool_call", "llm_call", "tool_call", "llm_call"]
NOTES = ["escalated: arrived broken", "ORD-1001: refund 120"]
REFUNDS_INSTRUCTIONS = "You handle refunds. Write one note on the order, then confirm briefly."

# the same desk, run with Runner.run_streamed (server-sent events from the provider)
STREAMED = """
from agents import RunConfig, Runner

import order_desk


async def run(input):
    result = Runner.run_streamed(
        order_desk.triage_agent, input["request"], run_config=RunConfig(tracing_disabled=True)
    )
    async for _ in result.stream_events():
        pass
    return {"answer": result.final_output, "agent": result.last_agent.name}
"""


@pytest.fixture
def desk(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    """A project whose agent is examples/openai_agents_agent.py, with a stub golden."""
    for var in ("CI", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "ORDER_DESK_MODEL"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-proj-" + "Q1w2E3r4" * 5)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("OPENAI_AGENTS_DISABLE_TRACING", "1")
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
    monkeypatch.setenv("ORDER_NOTES_FILE", str(pytester.path / "notes.log"))
    pytester.makepyfile(
        order_desk=EXAMPLE.read_text(), streamed=STREAMED, conftest="import order_desk\n"
    )
    pytester.makeini(INI.format(adapter="order_desk:run") + INTEGRATION)
    stub(pytester, "responses")
    return pytester


stub = subprocess_projects.stub


def record(
    pytester: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    script: list[dict[str, Any]] | None = None,
) -> FakeProvider:
    return subprocess_projects.record(pytester, monkeypatch, script or SCRIPT)


@pytest.mark.parametrize(
    ("api", "adapter", "wire"),
    [
        ("responses", "order_desk:run", "openai.responses"),  # Runner.run_sync, default API
        ("chat_completions", "order_desk:arun", "openai.chat_completions"),  # await Runner.run
        ("responses", "streamed:run", "openai.responses"),  # Runner.run_streamed
    ],
)
def test_record_then_replay_offline(
    desk: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, api: str, adapter: str, wire: str
) -> None:
    desk.makeini(INI.format(adapter=adapter) + INTEGRATION)
    stub(desk, api)
    fp = record(desk, monkeypatch)
    assert len(fp.requests) == 4
    assert notes(desk) == NOTES

    session = load(desk.path / GOLDEN)
    assert [s.type for s in session.step_list] == KINDS
    assert session.metadata["integrations"] == ["openai_agents"]
    llm = [s for s in session.step_list if isinstance(s, LLMCallStep)]
    assert {s.api for s in llm} == {wire}
    lookup, handoff, note = tools(session)
    assert (lookup.step, lookup.tool, lookup.input) == (2, "lookup_order", {"order_id": "ORD-1001"})
    assert lookup.output == {"order_id": "ORD-1001", "total": 120.0, "status": "delivered"}
    assert (handoff.step, handoff.tool) == (4, "transfer_to_refunds")
    assert (handoff.input, handoff.output) == ({"reason": "arrived broken"}, {"agent": "Refunds"})
    assert (note.step, note.tool) == (6, "append_note")
    assert note.input == {"order_id": "ORD-1001", "text": "refund 120"}
    assert note.output == "note 2 added to ORD-1001"
    assert session.output == {
        "answer": "Refund of 120.0 approved for ORD-1001.",
        "agent": "Refunds",
    }
    # the model saw the tool's return value as the SDK writes it (str() of the pydantic
    # model), and after the handoff it was asked with the refunds agent's instructions
    second = json.dumps(llm[1].input.messages)
    assert "order_id='ORD-1001' total=120.0 status='delivered'" in second
    third = llm[2].input.messages or []
    system = {"role": "system", "content": REFUNDS_INSTRUCTIONS}
    # Responses `instructions` are marked so (a system message in `input` is another request)
    assert third[0] == ({**system, "type": "instructions"} if api == "responses" else system)

    # replay: the lookup is served as an Order again (else the next request would differ),
    # the handoff's on_handoff callback and append_note do not run, the provider is not asked
    replay(desk, monkeypatch).assert_outcomes(passed=1)
    assert notes(desk) == NOTES


def test_a_changed_tool_argument_fails_at_that_step(
    desk: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    record(desk, monkeypatch)
    path = desk.path / GOLDEN
    recorded = path.read_text()
    # the model's turn now asks for another argument (the served response is rebuilt from
    # the golden's normalised fields), so the agent calls the tool with it
    for llm_step, tool_step, key, tool in [
        (5, 6, "text", "append_note"),
        (3, 4, "reason", "transfer_to_refunds"),
    ]:
        data = yaml.safe_load(recorded)
        call = data["steps"][llm_step - 1]["output"]["tool_calls"][0]
        before = call["arguments"][key]
        call["arguments"][key] = "changed"
        path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True))

        result = replay(desk, monkeypatch)
        result.assert_outcomes(failed=1)
        out = result.stdout.str()
        assert (
            f"step {tool_step} of 7 · tool_call {tool}: called {tool} with other arguments" in out
        )
        assert f"step {tool_step} › input.{key}: '{before}' → 'changed'" in out
        assert notes(desk) == NOTES, "a divergent call must not run"


STRICT = """
from agents import Agent, RunConfig, Runner, function_tool

import order_desk


@function_tool(failure_error_function=None)
def find_order(order_id: str) -> dict:
    \"\"\"Find an order; an unknown id fails the run.\"\"\"
    return dict(order_desk.ORDERS[order_id])


agent = Agent(name="Finder", instructions="Find orders.", model=order_desk.MODEL,
              tools=[order_desk.lookup_order, find_order])


def run(input):
    result = Runner.run_sync(agent, input["request"], run_config=RunConfig(tracing_disabled=True))
    return result.final_output
"""


def test_tool_errors_are_recorded_and_raised_again(
    desk: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    desk.makepyfile(strict=STRICT)
    desk.makeini(INI.format(adapter="strict:run") + INTEGRATION)
    stub(desk, "responses", request="where is ORD-9")
    script = [
        {"tool_calls": [{"name": "lookup_order", "arguments": {"order_id": "ORD-9"}}]},
        {"tool_calls": [{"name": "find_order", "arguments": {"order_id": "ORD-9"}}]},
    ]
    record(desk, monkeypatch, script)
    session = load(desk.path / GOLDEN)
    lookup, find = tools(session)
    # lookup_order keeps the SDK's default failure_error_function: the KeyError became the
    # message the model was shown, which is the step's output
    assert lookup.error is None
    assert lookup.output == "An error occurred while running the tool. Please try again."
    # find_order lets it out: the step's error, and the run's
    assert find.error is not None and (find.error.type, find.error.message) == (
        "KeyError",
        "ORD-9",
    )
    assert session.error is not None and session.error.type == "UserError"
    assert "Error running tool find_order" in session.error.message

    # replay raises the recorded KeyError where the tool ran, and the SDK fails as it did
    replay(desk, monkeypatch).assert_outcomes(passed=1)


def test_without_the_integration_tools_run_as_usual(
    desk: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    desk.makeini(INI.format(adapter="order_desk:run"))
    record(desk, monkeypatch)
    session = load(desk.path / GOLDEN)
    assert [s.type for s in session.step_list] == ["llm_call"] * 4
    assert "integrations" not in session.metadata
    assert notes(desk) == NOTES

    # replay serves the model, but the tools and the on_handoff callback run for real: the
    # notes are written again, and append_note's new answer is in the last model request
    result = replay(desk, monkeypatch)
    result.assert_outcomes(failed=1)
    assert notes(desk) == NOTES * 2
    result.stdout.fnmatch_lines(
        [
            "*step 4 of 4 · llm_call gpt-4.1-mini: the agent sent another request*",
            "*step 4 › input.messages*.output: 'note 2 added to ORD-1001' → 'note 4 added*",
        ]
    )


def test_the_sdks_per_run_prompt_cache_key_is_not_compared(
    desk: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    record(desk, monkeypatch)
    # as recorded from api.openai.com: there the SDK adds a prompt_cache_key made of a new
    # random id for every Runner run (the fake provider's URL does not get one)
    path = desk.path / GOLDEN
    data = yaml.safe_load(path.read_text())
    for step in data["steps"]:
        if step["type"] == "llm_call":
            step["input"]["params"] = {
                **(step["input"].get("params") or {}),
                "prompt_cache_key": "agents-sdk:run:0f0e0d0c0b0a09080706050403020100",
            }
    path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True))
    monkeypatch.delenv("OPENAI_BASE_URL")  # the SDK's default: the official endpoint

    # offline: served calls never connect; the per-run cache key is SDK noise, not compared
    run(desk).assert_outcomes(passed=1)
    assert notes(desk) == NOTES
