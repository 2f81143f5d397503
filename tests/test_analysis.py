"""Error analysis on crafted sessions: the steps and values each suggested fix names."""

from __future__ import annotations

import json
from typing import Any

import pytest

import opswald
from opswald.analysis import analyse, analyse_session_error, analyse_step, kind_of
from opswald.engine.run import RunSettings, execute, judge
from opswald.engine.state import state_at
from opswald.report.html import finding_data
from opswald.session import Session


def llm(n: int, *calls: dict[str, Any], content: str | None = None, **extra: Any) -> dict[str, Any]:
    """An OpenAI-style model call that answers `content` or asks for `calls`."""
    return {
        "step": n,
        "type": "llm_call",
        "provider": "openai",
        "api": "openai.chat",
        "model": "gpt-4o",
        "timestamp": f"2026-03-17T14:15:{n:02d}Z",
        "duration_ms": 800.0 + n,
        "input": {
            "messages": [
                {"role": "system", "content": "You are a reporting assistant."},
                {"role": "user", "content": "Email the Q1 sales report to the team"},
            ]
        },
        "output": {
            "content": content,
            "tool_calls": list(calls) or None,
            "finish_reason": "tool_calls" if calls else "stop",
        },
        "usage": {"input_tokens": 240 + n, "output_tokens": 40},
        "cost": 0.0021,
        **extra,
    }


def call(call_id: str, name: str, **arguments: Any) -> dict[str, Any]:
    return {
        "id": call_id,
        "type": "function",
        "function": {"name": name, "arguments": json.dumps(arguments)},
    }


def tool(n: int, name: str, call_id: str, args: Any, **result: Any) -> dict[str, Any]:
    return {
        "step": n,
        "type": "tool_call",
        "tool": name,
        "call_id": call_id,
        "input": args,
        "duration_ms": 35.0,
        **result,
    }


def report_session() -> Session:
    """Twelve steps; the email at step 12 attaches a file that no step created."""
    email = {
        "to": "team@company.com",
        "subject": "Q1 Sales Report",
        "body": "Please find the report attached.",
        "attachments": ["q1-sales.pdf"],
    }
    return Session.model_validate(
        {
            "name": "quarterly_report",
            "input": {"request": "Email the Q1 sales report to the team"},
            "steps": [
                {"step": 1, "type": "user_input", "content": "Use last quarter's numbers"},
                llm(2, call("c1", "load_sales", quarter="Q1")),
                tool(3, "load_sales", "c1", {"quarter": "Q1"}, output={"rows": 1204}),
                llm(4, call("c2", "aggregate", by="region")),
                tool(5, "aggregate", "c2", {"by": "region"}, output={"regions": 4}),
                {"step": 6, "type": "state", "memory": {"task": "sales report"}},
                llm(7, call("c3", "write_files", kinds=["summary", "charts"])),
                tool(
                    8,
                    "write_files",
                    "c3",
                    {"kinds": ["summary", "charts"]},
                    output={"created": ["summary.txt", "charts.png"], "folder": "/tmp/session_456"},
                ),
                llm(9, content="The summary and the charts are ready."),
                {
                    "step": 10,
                    "type": "state",
                    "memory": {"task": "sales report", "files": ["summary.txt", "charts.png"]},
                },
                llm(11, call("c4", "send_email", **email)),
                tool(
                    12,
                    "send_email",
                    "c4",
                    email,
                    error={"type": "FileNotFoundError", "message": "q1-sales.pdf"},
                ),
            ],
            "output": None,
            "error": {"type": "FileNotFoundError", "message": "q1-sales.pdf"},
        }
    )


def test_missing_file_names_the_steps_that_made_files() -> None:
    session = report_session()
    found = analyse(session)
    assert [(a.kind, a.step) for a in found] == [("step_error", 12)]  # same error as the session
    a = found[0]
    assert a.title == "step 12 of 12 · tool_call send_email failed"
    assert a.error == "FileNotFoundError: q1-sales.pdf"
    assert a.fix.startswith(
        "no earlier step produced `q1-sales.pdf`; step 8 produced `summary.txt` and `charts.png`."
    )
    assert "Step 11 (llm_call gpt-4o) asked for it" in a.fix
    assert "check steps 8–11 for the step that should create `q1-sales.pdf`" in a.fix
    (trace,) = a.traces
    assert trace.where == "input.attachments[0]"
    assert trace.produced_by == ()
    assert trace.asked_by == (11,)
    assert [v for _, v in trace.alike] == ["summary.txt", "charts.png"]
    assert {lead.step: lead.why for lead in a.leads} == {
        8: "produced `summary.txt` and `charts.png`, like `q1-sales.pdf`",
        10: "the state snapshot in force",
        11: "asked for this call to send_email",
    }
    assert a.state_before == state_at(session.step_list, 11)
    assert a.state_before.memory == {"task": "sales report", "files": ["summary.txt", "charts.png"]}
    assert a.call["input"]["attachments"] == ["q1-sales.pdf"]


def test_a_value_an_earlier_step_produced_points_at_the_tool() -> None:
    session = Session.model_validate(
        {
            "name": "cancel",
            "input": {"request": "cancel my last order"},
            "steps": [
                llm(1, call("a", "find_order", customer="C-77")),
                tool(1 + 1, "find_order", "a", {"customer": "C-77"}, output={"order": "ORD-1042"}),
                llm(3, call("b", "cancel_order", order="ORD-1042")),
                tool(
                    4,
                    "cancel_order",
                    "b",
                    {"order": "ORD-1042"},
                    error={"type": "PermissionError", "message": "ORD-1042 is already shipped"},
                ),
            ],
            "output": None,
        }
    )
    a = analyse_step(session, 4)
    assert a.fix.startswith("step 2 (tool_call find_order) produced `ORD-1042`.")
    assert "the failure is in tool_call cancel_order itself" in a.fix
    assert a.traces[0].produced_by == (2,)
    leads = {lead.step: lead.why for lead in a.leads}
    assert leads[3] == "asked for this call to cancel_order"
    assert leads[2] == "its output was in the request of step 3"


def test_values_from_one_source_are_named_together() -> None:
    session = Session.model_validate(
        {
            "name": "declined",
            "input": {"card": "card-4242", "amount": 42.5},
            "steps": [
                llm(1, call("p", "charge_card", card="card-4242", amount=42.5)),
                tool(
                    2,
                    "charge_card",
                    "p",
                    {"card": "card-4242", "amount": 42.5},
                    error={"type": "PaymentDeclined", "message": "card card-4242 declined: 42.5"},
                ),
            ],
            "output": None,
        }
    )
    (a,) = analyse(session)
    assert a.fix == (
        "the session input has `card-4242` and `42.5`. These values existed before step 2, "
        "so the failure is in tool_call charge_card itself or in what it expects "
        "(PaymentDeclined: card card-4242 declined: 42.5)."
    )


def _profile_agent(wrong: list[bool]) -> Any:
    """An agent that books for the traveller (or, when told, for their manager)."""

    @opswald.llm
    def chat(*, model: str, messages: list[dict[str, Any]]) -> dict[str, Any]:
        return {
            "content": None,
            "tool_calls": [{"id": "p1", "name": "get_profile", "arguments": {"name": "Alice"}}],
            "finish_reason": "tool_calls",
            "usage": {"input_tokens": 50, "output_tokens": 9},
            "cost": 0.0005,
        }

    @opswald.tool
    def get_profile(name: str) -> dict[str, Any]:
        return {"name": name, "manager": "Bob", "tier": "gold"}

    @opswald.tool
    def book(passenger: str, flight: str) -> dict[str, Any]:
        return {"ok": True, "passenger": passenger, "flight": flight}

    def run(input: Any) -> Any:
        chat(model="sim", messages=[{"role": "user", "content": input["q"]}])
        profile = get_profile(name="Alice")
        who = profile["manager"] if wrong[0] else profile["name"]
        return book(passenger=who, flight="AF1")

    return run


def test_divergence_traces_the_run_value_and_the_golden_value() -> None:
    wrong = [False]
    agent = _profile_agent(wrong)
    stub = Session.model_validate({"name": "book", "input": {"q": "book AF1 for Alice"}})
    golden = execute(stub, agent, settings=RunSettings(policy="live")).actual
    wrong[0] = True
    run = execute(golden, agent, settings=RunSettings())
    verdict = judge(golden, run)
    assert verdict.first is not None and verdict.first.step == 3
    finding = finding_data(verdict.first, total_steps=3)
    (a,) = [x for x in analyse(golden, divergence=finding) if x.kind == "divergence"]
    assert a.step == 3
    assert a.error == "called book with other arguments"
    assert a.fix == (
        "step 3 › input.passenger: the run passed `Bob` where the golden has `Alice`. "
        "Step 2 (tool_call get_profile) produced `Bob`. "
        "The golden's `Alice` came from step 2 (tool_call get_profile), which produced it: "
        "check how the agent builds `passenger` from step 2 now."
    )
    assert [t.produced_by for t in a.traces] == [(2,)]
    assert a.state_before.tool_outputs[-1]["output"]["manager"] == "Bob"


def test_divergence_to_a_value_no_step_produced() -> None:
    golden = report_session()
    finding = {
        "kind": "mismatch",
        "step": 12,
        "step_type": "tool_call",
        "name": "send_email",
        "message": "called send_email with other arguments",
        "differences": [
            {
                "where": "step 12 › input.attachments[0]",
                "golden": "q1-sales.pdf",
                "actual": "q1-report.pdf",
            }
        ],
    }
    a = analyse(golden, divergence=finding)[0]
    assert a.kind == "divergence"
    assert a.fix.startswith(
        "step 12 › input.attachments[0]: the run passed `q1-report.pdf` where the golden has "
        "`q1-sales.pdf`. No earlier step produced `q1-report.pdf`; step 8 produced "
        "`summary.txt` and `charts.png`."
    )
    assert "The golden's `q1-sales.pdf` came from step 11 (llm_call gpt-4o)" in a.fix


def test_missing_key_lists_similar_keys_of_earlier_outputs() -> None:
    session = Session.model_validate(
        {
            "name": "cheapest",
            "input": {"request": "cheapest flight to Rome"},
            "steps": [
                llm(1, call("s", "search_flights", to="Rome")),
                tool(
                    2,
                    "search_flights",
                    "s",
                    {"to": "Rome"},
                    output=[{"id": "AZ0815", "unit_price": 149.0, "currency": "EUR"}],
                ),
            ],
            "output": None,
            "error": {"type": "KeyError", "message": "'price'"},
        }
    )
    found = analyse(session)
    assert [a.kind for a in found] == ["session_error"]
    a = found[0]
    assert a.step is None
    assert a.title == "the session ended with KeyError after step 2 of 2"
    assert a.fix == ("no earlier step produced a key `price`; step 2 produced key `unit_price`.")
    assert a.traces[0].key_lookup
    assert [lead.step for lead in a.leads] == [2]
    assert a.state_before == state_at(session.step_list, 2)


def test_model_call_error_names_the_largest_input() -> None:
    page = "lorem ipsum " * 4000
    session = Session.model_validate(
        {
            "name": "summarise",
            "input": {"url": "https://example.com/report"},
            "steps": [
                llm(1, call("f", "fetch_page", url="https://example.com/report")),
                tool(2, "fetch_page", "f", {"url": "https://example.com/report"}, output=page),
                tool(3, "word_count", "f2", {"text": "short"}, output=2),
                llm(
                    4,
                    error={
                        "type": "BadRequestError",
                        "message": "context_length_exceeded: 130000 tokens",
                    },
                ),
            ],
            "output": None,
        }
    )
    a = analyse_step(session, 4)
    assert a.title == "step 4 of 4 · llm_call gpt-4o failed"
    assert "step 4's request carried 2 messages" in a.fix
    assert f"the largest input came from step 2 (tool_call fetch_page) ({len(page) + 2:,}" in a.fix
    assert {lead.step: lead.why for lead in a.leads} == {
        1: "the previous model call",
        2: "its output was in the request of step 4",
        3: "its output was in the request of step 4",
    }


def test_session_error_after_last_step_without_values() -> None:
    session = Session.model_validate(
        {
            "name": "crash",
            "input": {"q": "hi"},
            "steps": [llm(1, content="hello")],
            "output": None,
            "error": {"type": "RuntimeError", "message": "agent broke"},
        }
    )
    a = analyse_session_error(session)
    assert a.fix == (
        "the agent raised RuntimeError: agent broke after step 1 (llm_call gpt-4o); "
        "its output is what the agent read last."
    )
    assert [(lead.step, lead.why) for lead in a.leads] == [(1, "the last step before")]


def test_every_failure_is_analysed_up_to_the_limit() -> None:
    steps = [
        tool(
            n, "ping", f"p{n}", {"host": f"h{n}.example"}, error={"type": "Timeout", "message": ""}
        )
        for n in range(1, 6)
    ]
    session = Session.model_validate(
        {
            "name": "pings",
            "input": None,
            "steps": steps,
            "output": None,
            "error": {"type": "RuntimeError", "message": "gave up"},
        }
    )
    assert [a.step for a in analyse(session)] == [1, 2, 3, 4, 5, None]
    assert [a.step for a in analyse(session, limit=2)] == [1, 2]
    plain = analyse_step(session, 3)
    assert plain.fix == "tool_call ping failed with Timeout; the steps above led to it."


@pytest.mark.parametrize(
    ("value", "kind"),
    [
        ("q1-sales.pdf", "file"),
        ("/tmp/out/report.csv", "file"),
        ("https://example.com/a?b=1", "url"),
        ("team@company.com", "email"),
        ("2026-12-01", "date"),
        ("ORD-1042", "id"),
        ("AF1234", "id"),
        ("149.5", "number"),
        ("Rome", "word"),
        ("quarterly reports", "text"),
    ],
)
def test_kind_of(value: str, kind: str) -> None:
    assert kind_of(value) == kind


def test_a_call_refused_at_the_divergence_is_not_analysed_again() -> None:
    session = Session.model_validate(
        {
            "name": "s",
            "input": "go",
            "steps": [
                {"step": 1, "type": "tool_call", "tool": "fetch", "input": {"id": 1}, "output": 1},
                {
                    "step": 2,
                    "type": "tool_call",
                    "tool": "fetch",
                    "input": {"id": 2},
                    "error": {"type": "ReplayDivergence", "message": "called fetch with other"},
                },
            ],
            "output": None,
        }
    )
    assert analyse(session) == []
    divergence = {"step": 2, "step_type": "tool_call", "name": "fetch", "message": "m"}
    assert [a.kind for a in analyse(session, divergence=divergence)] == ["divergence"]
