"""The data the replay viewer is built from, the page around it, and `opswald html`."""

from __future__ import annotations

import base64
import hashlib
import json
import re
from pathlib import Path
from typing import Any

import pytest

import opswald
from conftest import record
from opswald.engine.run import RunSettings, execute, judge
from opswald.engine.state import state_at, state_changes
from opswald.report import html_cli
from opswald.report.html import (
    ViewEntry,
    build_data,
    embed_json,
    finding_data,
    findings_from_diff,
    render,
    step_rows,
    write_report,
)
from opswald.session import Session
from opswald.verdict import Difference, Finding

DATA_BLOCK = re.compile(r'<script type="application/json" id="opswald-data">(.*?)</script>', re.S)

TOOLS = [
    {"type": "function", "function": {"name": "get_profile", "parameters": {"type": "object"}}},
    {"type": "function", "function": {"name": "book_flight", "parameters": {"type": "object"}}},
]


def llm(
    n: int, messages: list[dict[str, Any]], output: dict[str, Any], **extra: Any
) -> dict[str, Any]:
    return {
        "step": n,
        "type": "llm_call",
        "provider": "openai",
        "api": "openai.chat",
        "model": "gpt-4o-mini",
        "timestamp": f"2026-03-17T14:15:{n:02d}.000Z",
        "duration_ms": 900.0 * n,
        "input": {"messages": messages, "tools": TOOLS, "params": {"temperature": 0}},
        "output": output,
        "usage": {"input_tokens": 100 * n, "output_tokens": 20, "total_tokens": 100 * n + 20},
        "cost": 0.001 * n,
        "cost_source": "price_table",
        **extra,
    }


def travel_session(passenger: str = "Alice") -> Session:
    """Nine steps of a booking agent: user input, model calls, tools, snapshots, notes."""
    ask = [{"role": "user", "content": "Book AF1 for Alice, reach me at alice@example.com"}]
    profile = {"name": "Alice", "tier": "gold", "manager": "Bob"}
    return Session.model_validate(
        {
            "name": "book_flight",
            "description": "books a flight for a known traveller",
            "tags": ["critical"],
            "agent": "travel",
            "metadata": {"recorded_at": "2026-03-17T14:15:00Z"},
            "input": {"request": "Book AF1 for Alice"},
            "steps": [
                {"step": 1, "type": "user_input", "content": ask[0]["content"]},
                llm(
                    2,
                    ask,
                    {
                        "tool_calls": [
                            {"id": "c1", "name": "get_profile", "arguments": {"name": "Alice"}}
                        ],
                        "finish_reason": "tool_calls",
                    },
                ),
                {
                    "step": 3,
                    "type": "tool_call",
                    "tool": "get_profile",
                    "call_id": "c1",
                    "input": {"name": "Alice"},
                    "output": profile,
                    "duration_ms": 12.5,
                },
                {
                    "step": 4,
                    "type": "state",
                    "memory": {"traveller": "Alice", "tier": "gold"},
                    "context": {"pending": ["book"]},
                    "plan": ["profile", "book"],
                },
                llm(
                    5,
                    [*ask, {"role": "tool", "content": json.dumps(profile)}],
                    {
                        "tool_calls": [
                            {
                                "id": "c2",
                                "name": "book_flight",
                                "arguments": {"flight": "AF1", "passenger": passenger},
                            }
                        ],
                        "finish_reason": "tool_calls",
                    },
                    raw={"id": "chatcmpl-1", "choices": []},
                ),
                {
                    "step": 6,
                    "type": "tool_call",
                    "tool": "book_flight",
                    "call_id": "c2",
                    "input": {"flight": "AF1", "passenger": passenger},
                    "error": {"type": "TimeoutError", "message": "booking service timed out"},
                    "duration_ms": 30000.0,
                },
                {
                    "step": 7,
                    "type": "tool_call",
                    "tool": "book_flight",
                    "call_id": "c3",
                    "input": {"flight": "AF1", "passenger": passenger},
                    "output": {"ok": True, "booking": "BK-1"},
                    "duration_ms": 40.0,
                },
                {
                    "step": 8,
                    "type": "state",
                    "memory": {"traveller": "Alice", "booking": "BK-1"},
                    "context": {"pending": []},
                },
                llm(9, [*ask], {"content": "Booked AF1 (BK-1).", "finish_reason": "stop"}),
            ],
            "output": {"answer": "Booked AF1 (BK-1)."},
            "notes": [
                {"step": 6, "text": "the booking API times out once; the retry at 7 works"},
                {"text": "recorded against the staging API"},
                {"step": 99, "text": "a note past the end"},
            ],
        }
    )


def long_session(n_tools: int = 40) -> Session:
    """Many tool outputs (more than diff.py splits at), snapshots that add, drop and change
    keys, extras that come and go, a failed tool, a model call without output."""
    steps: list[dict[str, Any]] = []
    for i in range(n_tools):
        n = len(steps) + 1
        steps.append(
            {
                "step": n,
                "type": "tool_call",
                "tool": "fetch",
                "input": {"page": i},
                "output": {"items": [i, i + 1]},
                "duration_ms": 5.0 + i,
                **(
                    {"error": {"type": "IOError", "message": f"page {i} missing"}}
                    if i % 13 == 5
                    else {}
                ),
            }
        )
        if i % 7 == 3:
            n = len(steps) + 1
            memory: dict[str, Any] = {"seen": i, "pages": list(range(i % 4))}
            if i % 2:
                memory["flag"] = True
            extra = {"scratch": {"i": i}} if i % 3 == 0 else {}
            steps.append({"step": n, "type": "state", "memory": memory, **extra})
        if i % 9 == 4:
            n = len(steps) + 1
            output = None if i % 2 else {"content": f"summary {i}", "finish_reason": "stop"}
            steps.append(
                {
                    "step": n,
                    "type": "llm_call",
                    "model": "m",
                    "input": {"messages": [{"role": "user", "content": "go"}]},
                    "output": output,
                }
            )
    return Session.model_validate({"name": "long", "input": None, "steps": steps, "output": "ok"})


def only(data: dict[str, Any]) -> dict[str, Any]:
    (golden,) = data["goldens"]
    assert isinstance(golden, dict)
    return golden


def rebuilt_state(view: dict[str, Any], k: int) -> dict[str, Any]:
    """The state at step k as viewer.js assembles it from the references."""
    if k == 0:
        return {
            "memory": None,
            "variables": None,
            "context": None,
            "tool_outputs": [],
            "last_output": None,
        }
    snap, last, tools = view["steps"][k - 1]["st"]
    parts = (
        view["snapshots"][str(snap)]
        if snap
        else {
            "memory": None,
            "variables": None,
            "context": None,
        }
    )
    return {
        **parts,
        "tool_outputs": view["tool_outputs"][:tools],
        "last_output": view["outputs"][str(last)] if last else None,
    }


def page_data(page: str) -> Any:
    match = DATA_BLOCK.search(page)
    assert match is not None
    return json.loads(match.group(1))


# --- sessions ------------------------------------------------------------------------------


def test_step_rows() -> None:
    view = only(build_data([ViewEntry(golden=travel_session())], slow_ms=5000))["golden"]
    rows = view["steps"]
    assert [r["n"] for r in rows] == list(range(1, 10))
    assert [r["cat"] for r in rows] == [
        "user",
        "llm",
        "tool",
        "state",
        "llm",
        "error",
        "tool",
        "state",
        "llm",
    ]
    assert [r["name"] for r in rows][:3] == [None, "gpt-4o-mini", "get_profile"]
    assert rows[1]["ms"] == 1800.0 and rows[1]["cost"] == 0.002 and rows[1]["tok"] == 220
    assert [r["n"] for r in rows if r["slow"]] == [6, 9]  # 30 s and 8.1 s > 5 s
    assert rows[5]["err"] == "TimeoutError: booking service timed out"
    assert rows[5]["notes"] == ["the booking API times out once; the retry at 7 works"]
    assert view["notes"] == [
        "recorded against the staging API",
        "step 99 (the golden has steps 1..9): a note past the end",
    ]
    assert rows[4]["data"]["raw"].startswith("<raw wire body: ")  # the wire body stays out
    assert rows[4]["data"]["output"]["tool_calls"][0]["arguments"]["passenger"] == "Alice"
    assert view["figures"]["llm_calls"] == 3 and view["figures"]["tool_calls"] == 3
    assert view["max_ms"] == 30000.0
    assert view["slowest"] == [6, 9, 5, 2, 7]
    assert view["costliest"] == [9, 5, 2]


@pytest.mark.parametrize("session", [travel_session(), long_session()], ids=["travel", "long"])
def test_state_of_every_step_is_state_at(session: Session) -> None:
    view = json.loads(json.dumps(only(build_data([ViewEntry(golden=session)]))["golden"]))
    steps = session.step_list
    for k in range(len(steps) + 1):
        expected = json.loads(json.dumps(state_at(steps, k).flat()))
        assert rebuilt_state(view, k) == expected, f"state at step {k}"


@pytest.mark.parametrize("session", [travel_session(), long_session()], ids=["travel", "long"])
def test_state_changes_of_every_step_are_state_changes(session: Session) -> None:
    rows = only(build_data([ViewEntry(golden=session)]))["golden"]["steps"]
    steps = session.step_list
    for row in rows:
        assert row["chg"] == state_changes(steps, row["n"]), f"step {row['n']}"


def test_compare_lines_of_a_snapshot() -> None:
    rows = only(build_data([ViewEntry(golden=travel_session())]))["golden"]["steps"]
    assert rows[3]["chg"] == [
        '+ memory = {"traveller": "Alice", "tier": "gold"}',
        '+ context = {"pending": ["book"]}',
        '+ plan = ["profile", "book"]',
    ]
    assert rows[7]["chg"] == [
        "- memory.tier",
        "+ memory.booking = 'BK-1'",
        "- context.pending[0]",
        "- plan",
    ]
    assert rows[2]["chg"][0].startswith("+ tool_outputs[0] = ")


# --- findings, divergence, analysis ---------------------------------------------------------


def _booking_agent(passenger: list[str]) -> Any:
    @opswald.llm
    def chat(*, model: str, messages: list[dict[str, Any]]) -> dict[str, Any]:
        return {
            "content": None,
            "tool_calls": [{"id": "p", "name": "profile", "arguments": {"name": "Alice"}}],
            "finish_reason": "tool_calls",
            "usage": {"input_tokens": 40, "output_tokens": 8},
            "cost": 0.0004,
        }

    @opswald.tool
    def profile(name: str) -> dict[str, Any]:
        return {"name": name, "manager": "Bob"}

    @opswald.tool
    def book(flight: str, who: str) -> dict[str, Any]:
        return {"ok": True, "flight": flight, "who": who}

    def run(input: Any) -> Any:
        chat(model="sim", messages=[{"role": "user", "content": input["q"]}])
        who = profile(name="Alice")[passenger[0]]
        opswald.state(memory={"who": who})
        return book(flight="AF1", who=who)

    return run


def failed_run() -> tuple[Session, Session, list[dict[str, Any]]]:
    """A golden recorded from a real agent and a replay that books for the wrong person."""
    field = ["name"]
    agent = _booking_agent(field)
    stub = Session.model_validate({"name": "book", "input": {"q": "book AF1"}})
    golden = execute(stub, agent, settings=RunSettings(policy="live")).actual
    field[0] = "manager"
    run = execute(golden, agent, settings=RunSettings())
    verdict = judge(golden, run)
    total = len(golden.step_list)
    return golden, run.actual, [finding_data(f, total_steps=total) for f in verdict.findings]


def test_failed_run_opens_at_its_divergence() -> None:
    golden, actual, findings = failed_run()
    entry = ViewEntry(golden=golden, actual=actual, status="failed", findings=findings)
    g = only(build_data([entry]))
    assert g["status"] == "failed"
    assert g["divergence"] == 4 and g["start"] == 4
    first = g["findings"][0]
    assert first["headline"] == "step 4 of 4 · tool_call book: called book with other arguments"
    assert first["diff"] == [
        "step 4 › input.who: 'Alice' → 'Bob'",
        "  - 'Alice'",
        "  + 'Bob'",
    ]
    assert first["suggestion"]
    analysis = g["analyses"][0]
    assert analysis["kind"] == "divergence" and analysis["step"] == 4
    assert analysis["state_step"] == 3
    assert "Step 2 (tool_call profile) produced `Bob`" in analysis["fix"]
    # the replay stopped at the divergence: the actual session ends with the call it refused
    # (what the agent sent, unanswered), and its snapshot at step 3 already holds the other
    # traveller
    assert len(g["actual"]["steps"]) == 4
    refused = g["actual"]["steps"][3]
    assert (refused["n"], refused["type"], refused["name"]) == (4, "tool_call", "book")
    assert refused["data"]["input"]["who"] == "Bob"
    assert refused["err"] == "ReplayDivergence: called book with other arguments"
    assert g["diff_steps"] == [3, 4]
    assert g["step_diffs"]["3"][0] == "step 3 › memory.who: 'Alice' → 'Bob'"
    assert g["figures"]["delta"]["steps"] == {"change": 0, "percent": 0.0}


def test_finding_data_is_plain_json() -> None:
    f = Finding(
        kind="mismatch",
        message="called book with other arguments",
        step=5,
        step_type="tool_call",
        name="book",
        differences=(
            Difference(path=("input", "who"), golden="Alice", actual="Bob", step=5),
            Difference(path=("input", "seat"), actual="12A", step=5),
            Difference(path=("input", "blob"), golden="x" * 5000, actual="y", step=5),
            Difference(path=("input", "tools", 1), actual={"name": "x"}, step=5, shifts=True),
        ),
        suggestion="look at step 3",
    )
    data = finding_data(f, total_steps=7)
    assert json.loads(json.dumps(data)) == data
    assert data["headline"] == "step 5 of 7 · tool_call book: called book with other arguments"
    assert data["differences"][0] == {
        "where": "step 5 › input.who",
        "step": 5,
        "path": ["input", "who"],
        "golden": "Alice",
        "actual": "Bob",
        "change": "changed",
    }
    assert [d["change"] for d in data["differences"]] == [
        "changed",
        "added",
        "changed",
        "inserted",
    ]
    assert "step 5 › input.tools[1]: inserted" in data["diff"]
    assert "golden" not in data["differences"][1]  # missing on the golden side
    assert "golden" not in data["differences"][2] and data["differences"][2]["actual"] == "y"
    assert data["diff"][3:5] == ["step 5 › input.seat: added", "  + '12A'"]
    assert data["more_differences"] == 0
    assert data["more_uncounted"] is False


def test_finding_data_says_when_the_comparison_stopped_counting() -> None:
    def finding(n: int) -> Finding:
        diffs = tuple(Difference(path=("output", i), golden=i, actual=-i) for i in range(n))
        return Finding(kind="output", message="output differs", differences=diffs)

    cut, counted = (
        finding_data(finding(200), total_steps=1),
        finding_data(finding(30), total_steps=1),
    )
    assert (cut["more_differences"], cut["more_uncounted"]) == (180, True)
    assert (counted["more_differences"], counted["more_uncounted"]) == (10, False)


def test_saved_actual_without_findings_is_diffed() -> None:
    golden, changed = travel_session("Alice"), travel_session("Bob")
    changed = changed.model_copy(update={"output": {"answer": "Booked AF1 for Bob."}})
    findings = findings_from_diff(golden, changed)
    assert [(f["step"], f["kind"]) for f in findings] == [
        (5, "mismatch"),
        (6, "mismatch"),
        (7, "mismatch"),
        (None, "output"),
    ]
    assert findings[0]["diff"][0] == (
        "step 5 › output.tool_calls[0].arguments.passenger: 'Alice' → 'Bob'"
    )
    g = only(build_data([ViewEntry(golden=golden, actual=changed, status="failed")]))
    assert g["divergence"] == 5 and g["diff_steps"] == [5, 6, 7]
    assert g["step_diffs"]["6"][0] == "step 6 › input.passenger: 'Alice' → 'Bob'"
    kinds = [(a["side"], a["kind"], a["step"]) for a in g["analyses"]]
    assert ("golden", "divergence", 5) in kinds
    assert ("golden", "step_error", 6) in kinds and ("actual", "step_error", 6) in kinds


def _steps_session(*steps: dict[str, Any]) -> Session:
    numbered = [{"step": i, **step} for i, step in enumerate(steps, start=1)]
    return Session.model_validate({"name": "one", "steps": numbered, "output": "done"})


def test_saved_actual_with_a_step_more_and_a_snapshot_fewer_lines_up() -> None:
    """A saved actual (no record of which call answered as which golden step) with one tool
    call more and the first snapshot gone: one row each, and no later step differs."""

    def tool(name: str, x: int) -> dict[str, Any]:
        return {"type": "tool_call", "tool": name, "input": {"x": x}, "output": x}

    def snap(phase: str) -> dict[str, Any]:
        return {"type": "state", "variables": {"phase": phase}}

    golden = _steps_session(snap("start"), tool("a", 1), tool("b", 2), snap("done"))
    actual = _steps_session(tool("a", 1), tool("audit", 1), tool("b", 2), snap("done"))
    findings = findings_from_diff(golden, actual)
    assert [(f["step"], f["kind"], f["run_step"]) for f in findings] == [
        (1, "state", False),
        (2, "extra_call", True),
    ]
    assert findings[0]["message"] == (
        "state snapshot 1 missing: the run recorded none in its place (state: report)"
    )
    g = only(build_data([ViewEntry(golden=golden, actual=actual, status="failed")]))
    assert g["rows"] == [[1, 0], [2, 1], [0, 2], [3, 3], [4, 4]]
    assert g["diff_steps"] == [1, 3]


@pytest.mark.parametrize("n", [20, 600])  # 600: past what SequenceMatcher is given
def test_a_call_inserted_among_calls_that_all_changed_moves_no_later_step(n: int) -> None:
    """Every model call's request differs (another prompt) and the run makes one tool call
    more half-way: the calls still face their own, of the same model or tool, and the new
    one has a row of its own."""

    def steps(prompt: str, inserted: bool) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for i in range(n):
            if inserted and i == n // 2:
                out.append({"type": "tool_call", "tool": "audit", "input": {}})
            if i % 2:
                out.append({"type": "tool_call", "tool": "t", "input": {"i": i}})
            else:
                message = {"role": "user", "content": f"{prompt} {i}"}
                out.append({"type": "llm_call", "model": "m", "input": {"messages": [message]}})
        return out

    golden = _steps_session(*steps("book", False))
    actual = _steps_session(*steps("cancel", True))
    middle = n // 2 + 1
    expected = [(k, k) for k in range(1, middle)] + [(0, middle)]
    expected += [(k, k + 1) for k in range(middle, n + 1)]
    assert step_rows(golden, actual) == expected


def test_figures_totals_and_deltas() -> None:
    golden = travel_session()
    cheaper = golden.model_copy(update={"steps": golden.step_list[:5]})
    data = build_data(
        [
            ViewEntry(golden=golden, actual=cheaper, status="failed"),
            ViewEntry(golden=golden, status="passed", name="again"),
        ]
    )
    g = data["goldens"][0]
    assert g["figures"]["golden"]["cost"] == pytest.approx(0.016)
    assert g["figures"]["actual"]["cost"] == pytest.approx(0.007)
    assert g["figures"]["delta"]["cost"]["percent"] == -56.2
    assert g["figures"]["delta"]["steps"] == {"change": -4, "percent": -44.4}
    assert data["summary"]["counts"] == {"failed": 1, "passed": 1}
    assert data["summary"]["cost"] == pytest.approx(0.007 + 0.016)


def test_totals_leave_out_goldens_that_did_not_run() -> None:
    """A skipped golden, and one that failed before it ran, spent nothing: their recorded
    figures are not the run's (a golden shown without a run, or that passed, still counts)."""
    golden = travel_session()
    data = build_data(
        [
            ViewEntry(golden=golden, status="passed", name="ran"),
            ViewEntry(golden=golden, status="skipped", name="skipped"),
            ViewEntry(golden=golden, status="error", name="never ran"),
        ]
    )
    recorded = data["goldens"][0]["figures"]["golden"]
    assert data["summary"]["cost"] == recorded["cost"] == pytest.approx(0.016)
    assert data["summary"]["duration_ms"] == recorded["duration_ms"]
    assert [g["figures"]["actual"] for g in data["goldens"][1:]] == [None, None]
    skipped_only = build_data([ViewEntry(golden=golden, status="skipped")])["summary"]
    assert (skipped_only["cost"], skipped_only["duration_ms"]) == (None, 0.0)
    loaded = build_data([ViewEntry(golden=golden), ViewEntry(golden=golden, name="b")])
    assert loaded["summary"]["cost"] == pytest.approx(2 * 0.016)


def test_ids_are_unique_and_url_safe() -> None:
    s = travel_session()
    data = build_data(
        [
            ViewEntry(golden=s),
            ViewEntry(golden=s),
            ViewEntry(golden=s, name="goldens/x.golden.yaml::Ärger & <tags>[v1]"),
            ViewEntry(golden=s.model_copy(update={"name": None}), file="g/refund.golden.yaml"),
        ]
    )
    assert [g["id"] for g in data["goldens"]] == [
        "book_flight",
        "book_flight-2",
        "arger-tags-v1",
        "refund",
    ]


def test_secrets_always_and_personal_data_on_request_are_scrubbed() -> None:
    s = travel_session()
    key = "sk-proj-" + "A1b2" * 8
    s = s.model_copy(update={"input": {"request": f"use {key}"}})
    plain = json.dumps(build_data([ViewEntry(golden=s, status="failed")]))
    assert key not in plain and "<redacted:openai-key>" in plain
    assert "alice@example.com" in plain
    shared = build_data([ViewEntry(golden=s, status="failed")], redact=True, title="x@y.io")
    text = json.dumps(shared)
    assert "alice@example.com" not in text and "<redacted:email>" in text
    assert shared["title"] == "<redacted:email>" and shared["redacted"] is True
    assert shared["goldens"][0]["status"] == "failed"


# a gather: the task that asked first (lane 1) and its two branches (lanes 2 and 3), whose
# calls interleaved; a snapshot (never made by a call: no lane) after them
FAN_OUT = """name: fan_out
input: {cities: [Rome, Oslo]}
steps:
  - {step: 1, type: llm_call, lane: 1, model: m, output: {content: search both}}
  - {step: 2, type: tool_call, lane: 2, tool: search, input: {city: Rome}, output: [AF1]}
  - {step: 3, type: tool_call, lane: 3, tool: search, input: {city: Oslo}, output: [SK2]}
  - {step: 4, type: llm_call, lane: 3, model: m, output: {content: SK2}}
  - {step: 5, type: llm_call, lane: 2, model: m, output: {content: AF1}}
  - {step: 6, type: state, memory: {found: 2}}
output: AF1, SK2
"""


def test_each_step_carries_its_lane_to_the_page(tmp_path: Path) -> None:
    """A session whose calls came from more than one thread or task: each step row has its
    `lane` (a snapshot, made by no call, none) and the session how many lanes it has, in
    the data embedded in the page; the step as recorded keeps `lane` too."""
    golden = tmp_path / "fan_out.golden.yaml"
    golden.write_text(FAN_OUT)
    out = tmp_path / "view.html"
    assert html_cli.main(["html", str(golden), "-o", str(out)]) == 0
    view = only(page_data(out.read_text()))["golden"]
    assert [r.get("lane") for r in view["steps"]] == [1, 2, 3, 3, 2, None]
    assert "lane" not in view["steps"][5]
    assert view["lanes"] == 3
    assert view["steps"][4]["data"]["lane"] == 2
    assert view["steps"][5]["chg"] == ['+ memory = {"found": 2}']  # lane is no state


def test_a_session_without_lanes_carries_none() -> None:
    view = only(build_data([ViewEntry(golden=travel_session())]))["golden"]
    assert all("lane" not in r and "lane" not in r["data"] for r in view["steps"])
    assert view["lanes"] == 0


# --- the page -------------------------------------------------------------------------------

PAYLOAD = "</script><script>window.__pwned=1</script><!-- <img src=x onerror=alert(1)>"


def test_page_embeds_data_that_cannot_close_its_block() -> None:
    s = travel_session()
    s = s.model_copy(
        update={"name": PAYLOAD, "output": {"answer": PAYLOAD + "\u2028\u2029 & done"}}
    )
    data = build_data([ViewEntry(golden=s)], title=PAYLOAD)
    page = render(data)
    assert page.count("</script>") == 2  # the data block's and the viewer script's
    assert "<script>window" not in page and "<img" not in page and "<!--" not in page
    assert "\u2028" not in page and "\u2029" not in page
    assert page_data(page) == json.loads(json.dumps(data))
    assert "<title>&lt;/script&gt;&lt;script&gt;" in page


def test_page_policy_allows_only_its_own_script_and_style() -> None:
    page = render(build_data([ViewEntry(golden=travel_session())]))
    csp = re.search(r'http-equiv="Content-Security-Policy" content="([^"]+)"', page)
    assert csp is not None
    policy = csp.group(1)
    script = re.search(r"<script>(.*?)</script>", page, re.S)
    style = re.search(r"<style>(.*?)</style>", page, re.S)
    assert script is not None and style is not None

    def sha(text: str) -> str:
        return "sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode()

    assert f"script-src '{sha(script.group(1))}'" in policy
    assert f"style-src '{sha(style.group(1))}'" in policy
    assert policy.startswith("default-src 'none';")
    assert "unsafe" not in policy and "http" not in policy
    assert not re.search(r"\b(src|href)\s*=", page.split('id="opswald-data"')[0])
    assert "innerHTML" not in script.group(1) and "eval(" not in script.group(1)


def test_infinity_and_nan_are_embedded_as_goldens_write_them() -> None:
    """JSON (no `Infinity` or `NaN`, which `JSON.parse` refuses), read back by the page."""
    assert embed_json(
        {"x": float("nan"), "y": [float("inf"), -float("inf")], "z": "<&>", "$float": 1}
    ) == ('{"x":{"$float":"NaN"},"y":[1e999,-1e999],"z":"\\u003c\\u0026\\u003e","$$float":1}')


def test_write_report_is_atomic_and_counts_bytes(tmp_path: Path) -> None:
    target = tmp_path / "out" / "report.html"
    size = write_report(target, [ViewEntry(golden=travel_session(), status="passed")])
    assert size == target.stat().st_size > 10_000
    assert [p.name for p in target.parent.iterdir()] == ["report.html"]
    assert page_data(target.read_text())["goldens"][0]["status"] == "passed"


def test_stub_and_empty_reports_render() -> None:
    stub = Session.model_validate({"name": "todo", "input": {"q": 1}})
    g = only(build_data([ViewEntry(golden=stub)]))
    assert g["golden"]["stub"] is True and g["golden"]["steps"] == []
    assert page_data(render(build_data([])))["goldens"] == []


# --- opswald html ------------------------------------------------------------------------------


def test_cli_one_golden_with_its_actual(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    golden, actual = tmp_path / "book.golden.yaml", tmp_path / "book.actual.yaml"
    opswald.dump(travel_session("Alice"), golden)
    opswald.dump(travel_session("Bob"), actual)
    out = tmp_path / "view.html"
    code = html_cli.main(["html", str(golden), "--actual", str(actual), "-o", str(out)])
    assert code == 0
    assert f"wrote {out}: 1 golden (1 differing from their actual)" in capsys.readouterr().out
    g = only(page_data(out.read_text()))
    assert (g["name"], g["status"], g["divergence"]) == ("book_flight", "failed", 5)
    assert g["file"] == str(golden)


def test_cli_redact(tmp_path: Path) -> None:
    golden = tmp_path / "book.golden.yaml"
    opswald.dump(travel_session(), golden)
    out = tmp_path / "shared.html"
    assert html_cli.main(["html", str(golden), "--redact", "-o", str(out)]) == 0
    text = out.read_text()
    assert "alice@example.com" not in text and "<redacted:email>" in text.replace(
        "\\u003c", "<"
    ).replace("\\u003e", ">")


def test_cli_refuses_actual_with_a_folder(tmp_path: Path) -> None:
    opswald.dump(travel_session(), tmp_path / "a.golden.yaml")
    actual = tmp_path / "x.yaml"
    opswald.dump(travel_session(), actual)
    code = html_cli.main(["html", str(tmp_path), "--actual", str(actual), "-o", "o.html"])
    assert code == 2


def test_cli_folder_with_a_malformed_golden(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    goldens = tmp_path / "goldens"
    goldens.mkdir()
    opswald.dump(travel_session(), goldens / "book.golden.yaml")
    (goldens / "broken.golden.yaml").write_text("name: [unclosed\n")
    out = tmp_path / "o.html"
    assert html_cli.main(["html", str(goldens), "-o", str(out)]) == 1
    assert "broken.golden.yaml" in capsys.readouterr().err
    rows = page_data(out.read_text())["goldens"]
    assert [g["status"] for g in rows] == ["loaded", "error"]  # listed, as pytest's page lists it
    broken = rows[1]
    assert broken["file"] == str(goldens / "broken.golden.yaml")
    [finding] = broken["findings"]
    assert finding["message"].startswith(f"malformed golden: {goldens / 'broken.golden.yaml'}:2: ")
    assert "opswald validate" in finding["suggestion"]


@pytest.mark.parametrize("given", ["nope.golden.yaml", "nope/"])
def test_cli_a_path_that_names_nothing_writes_no_page(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    given: str,
) -> None:
    """A path that names nothing was an `error` row of a page written anyway ("1 golden"
    for a mistyped folder), exit 1. As `pytest nope`, it is a usage error: said as given,
    exit 4, and no page is written, nor an existing one overwritten, alone or among
    goldens that are there."""
    monkeypatch.chdir(tmp_path)
    goldens = tmp_path / "goldens"
    goldens.mkdir()
    opswald.dump(travel_session(), goldens / "book.golden.yaml")
    out = tmp_path / "o.html"
    out.write_text("the last page")
    for paths in (["goldens", given], [given]):
        assert html_cli.main(["html", *paths, "-o", str(out)]) == 4
        captured = capsys.readouterr()
        assert (captured.out, captured.err) == ("", f"error: file or folder not found: {given}\n")
        assert out.read_text() == "the last page"


def test_cli_folder_of_malformed_goldens_only_writes_the_page(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "a.golden.yaml").write_text("name: [unclosed\n")
    (tmp_path / "b.golden.yaml").write_text("steps: 3\n")
    out = tmp_path / "o.html"
    assert html_cli.main(["html", str(tmp_path), "-o", str(out)]) == 1
    assert f"wrote {out}: 2 goldens" in capsys.readouterr().out
    assert [g["status"] for g in page_data(out.read_text())["goldens"]] == ["error", "error"]


def test_cli_matches_actuals_saved_by_a_real_run(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    record(project)
    (project.path / "goldens" / "other.golden.yaml").write_text(
        (project.path / "goldens" / "flight.golden.yaml")
        .read_text()
        .replace("name: book_flight", "name: other_flight")
    )
    monkeypatch.setenv("AGENT_VARIANT", "args")
    result = project.runpytest(
        "--opswald-goldens", "--opswald-save-actual", "actual", "-p", "no:cacheprovider"
    )
    result.assert_outcomes(failed=2)
    (project.path / "actual" / "other_flight.actual.yaml").unlink()
    (project.path / "actual" / "stray.actual.yaml").write_text(
        (project.path / "actual" / "book_flight.actual.yaml").read_text()
    )
    monkeypatch.chdir(project.path)
    code = html_cli.main(["html", "goldens", "--actual-dir", "actual", "-o", "out.html"])
    assert code == 0
    assert "note: actual/stray.actual.yaml: no golden of that name" in capsys.readouterr().out
    data = page_data((project.path / "out.html").read_text())
    rows = {g["name"]: g for g in data["goldens"]}
    assert rows["book_flight"]["status"] == "failed"
    assert rows["book_flight"]["divergence"] == 5  # the booking got another passenger
    assert rows["book_flight"]["actual"] is not None
    assert rows["other_flight"]["status"] == "loaded" and rows["other_flight"]["actual"] is None


def test_every_differing_step_is_marked_after_a_step_with_many_differences() -> None:
    """A step that differs in 300 fields used to spend the page's whole budget of counted
    differences: later differing steps went unmarked, and the step's diff stopped at 20
    differences without saying that more followed."""

    def tool(x: Any) -> dict[str, Any]:
        return {"type": "tool_call", "tool": "t", "input": {"x": 1}, "output": x}

    golden = _steps_session(tool(list(range(300))), tool("a"), tool("b"), tool("c"))
    actual = _steps_session(tool([i + 1 for i in range(300)]), tool("a"), tool("B"), tool("C"))
    g = only(build_data([ViewEntry(golden=golden, actual=actual, status="failed")]))
    assert g["diff_steps"] == [1, 3, 4]
    first = g["step_diffs"]["1"]
    assert first[-1] == "… and at least 180 more differences"
    assert sum(line.startswith("step 1 › ") for line in first) == 20
    assert g["step_diffs"]["3"][0] == "step 3 › output: 'b' → 'B'"
    assert not any(line.startswith("… and") for line in g["step_diffs"]["3"])


def test_a_difference_path_keeps_its_indexes_as_numbers() -> None:
    """`["input", "terms", 1]`, as `opswald.paths` holds a path: an index as a string could
    not be told from a key named "1"."""
    d = Difference(path=("input", "terms", 1), golden="y", actual="q", step=2)
    f = Finding(kind="mismatch", message="m", step=2, differences=(d,))
    [data] = finding_data(f, total_steps=3)["differences"]
    assert data["path"] == ["input", "terms", 1]
    assert json.loads(json.dumps(data))["path"][2] == 1


def test_a_step_only_one_side_has_reads_as_opswald_diff_names_it() -> None:
    """`step 2 inserted: tool_call audit`, as `opswald diff` says it, not `step 2: added`."""

    def tool(name: str) -> dict[str, Any]:
        return {"type": "tool_call", "tool": name, "input": {"x": 1}, "output": 1}

    golden = _steps_session(tool("a"), tool("b"))
    actual = _steps_session(tool("a"), tool("audit"), tool("b"))
    g = only(build_data([ViewEntry(golden=golden, actual=actual, status="failed")]))
    assert g["step_diffs"]["2"] == [
        "step 2 inserted: tool_call audit",
        '  + {"tool": "audit", "input": {"x": 1}, "output": 1}',
    ]
    g = only(build_data([ViewEntry(golden=actual, actual=golden, status="failed")]))
    assert g["step_diffs"]["2"][0] == "step 2 removed: tool_call audit"
