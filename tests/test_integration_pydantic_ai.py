"""PydanticAI integration: the example order desk (a real `pydantic_ai.Agent` with an
`@agent.tool`, an `@agent.tool_plain` and a structured output) recorded against the fake
provider on 127.0.0.1, replayed offline.

Every pytest run is a process of its own, as record and replay are for users, so no HTTP
client or event loop the framework keeps between runs leaks from one test into the next.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import subprocess_projects
from fakeprovider import FakeProvider
from opswald import load
from opswald.session import LLMCallStep
from subprocess_projects import notes, replay, tools

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "pydantic_ai_agent.py"
GOLDEN = "goldens/refund.golden.yaml"
INI = """\
[pytest]
opswald_adapter = {adapter}
opswald_side_effect_tools = append_note
"""
INTEGRATION = "opswald_integrations = pydantic_ai\n"
ORDER = {"order_id": "ORD-1001", "total": 120.0, "status": "delivered"}
DECISION = {"order_id": "ORD-1001", "refund": True, "amount": 120.0, "message": "Refunded."}
SCRIPT: list[dict[str, Any]] = [
    {"tool_calls": [{"name": "lookup_order", "arguments": {"order_id": "ORD-1001"}}]},
    {
        "tool_calls": [
            {"name": "append_note", "arguments": {"order_id": "ORD-1001", "text": "refund 120"}}
        ]
    },
    {"tool_calls": [{"name": "final_result", "arguments": DECISION}]},
]
NOTES = ["ORD-1001: refund 120"]

# the same agent after a change: a capability now rewrites the note before the tool runs
SHOUTING = """
from pydantic_ai.capabilities import Hooks

import order_desk


def shout(ctx, *, call, tool_def, args):
    if call.tool_name == "append_note":
        return {**args, "text": args["text"].upper()}
    return args


def run(input):
    result = order_desk.agent.run_sync(
        input["request"], deps=order_desk.Desk(), model=order_desk.model(input.get("api", "chat")),
        capabilities=[Hooks(before_tool_execute=shout)],
    )
    return result.output.model_dump()
"""

# the same agent, reporting what type each tool result had in the run's message history
TYPED = """
from pydantic_ai.messages import ToolReturnPart

import order_desk


def run(input):
    result = order_desk.agent.run_sync(
        input["request"], deps=order_desk.Desk(), model=order_desk.model(input.get("api", "chat"))
    )
    parts = [p for m in result.all_messages() for p in m.parts if isinstance(p, ToolReturnPart)]
    return {"decision": result.output.model_dump(),
            "results": [[p.tool_name, type(p.content).__name__] for p in parts]}
"""


@pytest.fixture
def desk(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    """A project whose agent is examples/pydantic_ai_agent.py, with a stub golden."""
    for var in ("CI", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "ORDER_DESK_MODEL"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-proj-" + "Z9x8C7v6" * 5)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
    monkeypatch.setenv("ORDER_NOTES_FILE", str(pytester.path / "notes.log"))
    pytester.makepyfile(
        order_desk=EXAMPLE.read_text(),
        shouting=SHOUTING,
        typed=TYPED,
        conftest="import order_desk\n",
    )
    pytester.makeini(INI.format(adapter="order_desk:run") + INTEGRATION)
    stub(pytester, "chat")
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
        ("chat", "order_desk:run", "openai.chat_completions"),  # agent.run_sync
        ("responses", "order_desk:arun", "openai.responses"),  # await agent.run
    ],
)
def test_record_then_replay_offline(
    desk: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, api: str, adapter: str, wire: str
) -> None:
    desk.makeini(INI.format(adapter=adapter) + INTEGRATION)
    stub(desk, api)
    fp = record(desk, monkeypatch)
    assert len(fp.requests) == 3
    assert notes(desk) == NOTES

    session = load(desk.path / GOLDEN)
    assert [s.type for s in session.step_list] == [
        "llm_call",
        "tool_call",
        "llm_call",
        "tool_call",
        "llm_call",
    ]
    assert session.metadata["integrations"] == ["pydantic_ai"]
    llm = [s for s in session.step_list if isinstance(s, LLMCallStep)]
    assert {s.api for s in llm} == {wire}
    lookup, note = tools(session)
    # the tool's own arguments: the RunContext (and its deps) are not part of the call
    assert (lookup.step, lookup.tool, lookup.input) == (2, "lookup_order", {"order_id": "ORD-1001"})
    assert lookup.output == ORDER
    assert (note.step, note.tool) == (4, "append_note")
    assert note.input == {"order_id": "ORD-1001", "text": "refund 120"}
    assert note.output == "note added to ORD-1001"
    # the structured output is the model's answer, not a tool call
    assert session.output == DECISION
    last = llm[2].output
    assert last is not None and last.tool_calls is not None
    assert last.tool_calls[0]["name"] == "final_result"
    assert "total" in json.dumps(llm[1].input.messages)

    replay(desk, monkeypatch).assert_outcomes(passed=1)
    assert notes(desk) == NOTES, "replay ran a tool body"


def test_a_changed_tool_argument_fails_at_that_step(
    desk: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    record(desk, monkeypatch)
    desk.makeini(INI.format(adapter="shouting:run") + INTEGRATION)
    result = replay(desk, monkeypatch)
    result.assert_outcomes(failed=1)
    out = result.stdout.str()
    assert "step 4 of 5 · tool_call append_note: called append_note with other arguments" in out
    assert "step 4 › input.text: 'refund 120' → 'REFUND 120'" in out
    assert notes(desk) == NOTES, "a divergent call must not run"


def test_served_calls_raise_and_return_as_the_tools_did(
    desk: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    desk.makeini(INI.format(adapter="typed:run") + INTEGRATION)
    script = [
        {"tool_calls": [{"name": "lookup_order", "arguments": {"order_id": "ORD-9"}}]},
        *SCRIPT,
    ]
    record(desk, monkeypatch, script)
    session = load(desk.path / GOLDEN)
    wrong, lookup, _ = tools(session)
    assert (wrong.step, wrong.input, wrong.output) == (2, {"order_id": "ORD-9"}, None)
    assert wrong.error is not None
    assert (wrong.error.type, wrong.error.module) == ("ModelRetry", "pydantic_ai.exceptions")
    assert wrong.error.message == "no order ORD-9; order ids look like ORD-1001"
    retry = session.step_list[2]
    assert isinstance(retry, LLMCallStep)
    assert "no order ORD-9; order ids look like ORD-1001" in json.dumps(retry.input.messages)
    assert lookup.output == ORDER
    results = [["lookup_order", "Order"], ["append_note", "str"], ["final_result", "str"]]
    assert session.output == {
        "decision": DECISION,
        "results": [["lookup_order", "str"], *results],  # the retry prompt, then the results
    }

    # replay raises the recorded error again as a ModelRetry, so the agent sends the same
    # retry prompt, and serves lookup_order's result as an Order again: the output matches
    replay(desk, monkeypatch).assert_outcomes(passed=1)
    assert notes(desk) == NOTES


PAYING = """
from pydantic_ai import Agent

import order_desk


class PaymentError(Exception):
    def __init__(self, code, reason):
        super().__init__(f"payment failed ({code}): {reason}")
        self.code = code


agent = Agent(instructions="Charge the order.")


@agent.tool_plain
def charge(order_id: str) -> str:
    \"\"\"Charge an order.

    Args:
        order_id: The order to charge.
    \"\"\"
    raise PaymentError(402, "card declined")


def run(input):
    try:
        agent.run_sync(input["request"], model=order_desk.model(input.get("api", "chat")))
    except PaymentError as e:
        return {"declined": e.code, "error": str(e)}
    return {"declined": None}
"""


def test_a_tool_error_is_raised_again_with_its_attributes(
    desk: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    desk.makepyfile(paying=PAYING)
    desk.makeini(INI.format(adapter="paying:run") + INTEGRATION)
    charge = {"name": "charge", "arguments": {"order_id": "ORD-1001"}}
    record(desk, monkeypatch, [{"tool_calls": [charge]}])
    session = load(desk.path / GOLDEN)
    (step,) = tools(session)
    assert step.error is not None
    assert (step.error.type, step.error.module) == ("PaymentError", "paying")
    assert step.error.attributes == {"code": 402}
    assert session.output == {"declined": 402, "error": "payment failed (402): card declined"}

    # the agent's `except PaymentError as e: e.code` reads the recorded code again
    replay(desk, monkeypatch).assert_outcomes(passed=1)


def test_without_the_integration_tools_run_as_usual(
    desk: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    desk.makeini(INI.format(adapter="order_desk:run"))
    record(desk, monkeypatch)
    session = load(desk.path / GOLDEN)
    assert [s.type for s in session.step_list] == ["llm_call"] * 3
    assert "integrations" not in session.metadata
    assert notes(desk) == NOTES

    # replay serves the model; the tools run for real, so the note is written again
    replay(desk, monkeypatch).assert_outcomes(passed=1)
    assert notes(desk) == NOTES * 2
