"""Matching rules: argument modes, trajectory order modes, request rules, async agents."""

from __future__ import annotations

import json

import pytest

from opswald import dump, load

PLANNER = """
import json
import os

import opswald


@opswald.tool
def fetch(name, **opts):
    return {"name": name}


def run(input):
    plan = json.loads(os.environ["PLAN"]) if os.environ.get("PLAN") else input["plan"]
    for call in plan:
        fetch(**call)
    return "done"
"""

ABC = [{"name": "a", "ts": 1}, {"name": "b", "ts": 1}, {"name": "c", "ts": 1}]


@pytest.fixture
def planner(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    monkeypatch.delenv("PLAN", raising=False)
    monkeypatch.delenv("CI", raising=False)
    pytester.makepyfile(planner=PLANNER, conftest="import planner\n")
    pytester.makeini("[pytest]\nopswald_adapter = planner:run\n")
    pytester.mkdir("goldens")
    (pytester.path / "goldens" / "plan.golden.yaml").write_text(
        "name: plan\ninput:\n  plan: " + json.dumps(ABC) + "\n"
    )
    pytester.runpytest("--opswald-goldens", "--opswald-mode=record").assert_outcomes(passed=1)
    return pytester


def _expect(pytester: pytest.Pytester, expect: str) -> None:
    path = pytester.path / "goldens" / "plan.golden.yaml"
    text = path.read_text()
    if "\nexpect:" in text:
        text = text.split("\nexpect:")[0] + "\n"
    path.write_text(text.rstrip("\n") + "\nexpect:\n" + expect)


def _run(
    pytester: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    plan: list[dict[str, object]],
    *args: str,
) -> pytest.RunResult:
    monkeypatch.setenv("PLAN", json.dumps(plan))
    return pytester.runpytest("--opswald-goldens", *args)


@pytest.mark.parametrize(
    ("expect", "plan", "passes"),
    [
        ("  tool_calls: {args: exact}\n", [ABC[0], {**ABC[1], "x": 1}, ABC[2]], False),
        ("  tool_calls: {args: subset}\n", [ABC[0], {**ABC[1], "x": 1}, ABC[2]], True),
        ("  tool_calls: {args: subset}\n", [ABC[0], {"name": "b"}, ABC[2]], False),
        ("  tool_calls: {args: ignore}\n", [{"name": "x"}, {"name": "y"}, {"name": "z"}], True),
        ("  tool_calls: {ignore_args: [ts]}\n", [{**c, "ts": 99} for c in ABC], True),
        ("  tool_calls: {ignore_args: [t*]}\n", [{**c, "ts": 99} for c in ABC], True),
        ("  tool_calls: {}\n", [{**c, "ts": 99} for c in ABC], False),
        (
            "  tool_calls: {tools: {fetch: {ignore_args: [ts]}}}\n",
            [{**c, "ts": 9} for c in ABC],
            True,
        ),
        ("  tool_calls: {order: subset}\n", ABC[:2], True),
        ("  tool_calls: {order: exact}\n", ABC[:2], False),
        # a bool is not a number (Python's == says True == 1), whatever the mode
        ("  tool_calls: {}\n", [ABC[0], {**ABC[1], "ts": True}, ABC[2]], False),
        ("  tool_calls: {args: subset}\n", [ABC[0], {**ABC[1], "ts": True}, ABC[2]], False),
        ("  tool_calls: {ignore_args: [name]}\n", [{**c, "ts": True} for c in ABC], False),
        ("  tool_calls: {args: subset}\n", [{**c, "ts": True, "x": 1} for c in ABC], False),
        # numbers compare by value, as JSON has them: 1 and 1.0 are one number
        ("  tool_calls: {}\n", [{**c, "ts": 1.0} for c in ABC], True),
        ("  tool_calls: {args: subset}\n", [{**c, "ts": 1.0, "x": 1} for c in ABC], True),
    ],
)
def test_argument_modes_in_replay(
    planner: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    expect: str,
    plan: list[dict[str, object]],
    passes: bool,
) -> None:
    _expect(planner, expect)
    result = _run(planner, monkeypatch, plan)
    result.assert_outcomes(passed=int(passes), failed=int(not passes))
    if not passes:
        assert "step " in result.stdout.str()


@pytest.mark.parametrize(
    ("order", "plan", "passes"),
    [
        ("exact", ABC, True),
        ("exact", ABC[::-1], False),
        ("any_order", ABC[::-1], True),
        ("any_order", ABC[:2], False),
        ("in_order", [ABC[0], {"name": "x"}, ABC[1], ABC[2]], True),
        ("in_order", [ABC[1], ABC[0], ABC[2]], False),
        ("subset", [ABC[2], ABC[0]], True),
        ("subset", [*ABC, {"name": "d"}], False),
        ("superset", [*ABC, {"name": "d"}], True),
        ("superset", ABC[:2], False),
    ],
)
def test_order_modes_judge_live_runs(
    planner: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    order: str,
    plan: list[dict[str, object]],
    passes: bool,
) -> None:
    _expect(planner, f"  tool_calls: {{order: {order}}}\n")
    result = _run(planner, monkeypatch, plan, "--opswald-mode=live")
    result.assert_outcomes(passed=int(passes), failed=int(not passes))
    if not passes:
        result.stdout.fnmatch_lines([f"*order: {order}*"])


DATED = """
import datetime
import uuid

import opswald


@opswald.llm
def chat(*, model, messages):
    return {"content": "ok", "tool_calls": None, "finish_reason": "stop"}


def run(input):
    stamp = f"{datetime.datetime.now().isoformat()} request {uuid.uuid4()}"
    chat(model="m", messages=[{"role": "user", "content": f"{input} at {stamp}"}])
    return "done"
"""

UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
DATE = r"\d{4}-\d\d-\d\dT[\d:.]+"


@pytest.fixture
def dated(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    monkeypatch.delenv("CI", raising=False)
    pytester.makepyfile(dated=DATED, conftest="import dated\n")
    pytester.makeini("[pytest]\nopswald_adapter = dated:run\n")
    pytester.mkdir("goldens")
    (pytester.path / "goldens" / "d.golden.yaml").write_text("name: d\ninput: hello\n")
    pytester.runpytest("--opswald-goldens", "--opswald-mode=record").assert_outcomes(passed=1)
    return pytester


def test_dates_and_uuids_diverge_without_rules(dated: pytest.Pytester) -> None:
    result = dated.runpytest("--opswald-goldens")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*step 1 of 1 · llm_call m: the agent sent another request*",
            "*step 1 › input.messages[[]0].content:*",
        ]
    )


def test_golden_normalize_rules_make_them_harmless(dated: pytest.Pytester) -> None:
    path = dated.path / "goldens" / "d.golden.yaml"
    rules = (
        f"expect:\n  requests:\n    normalize:\n      '{UUID}': <uuid>\n      '{DATE}': <date>\n"
    )
    path.write_text(path.read_text() + rules)
    dated.runpytest("--opswald-goldens").assert_outcomes(passed=1)


def test_golden_ignore_paths(dated: pytest.Pytester) -> None:
    path = dated.path / "goldens" / "d.golden.yaml"
    path.write_text(
        path.read_text() + "expect:\n  requests:\n    ignore: ['messages[*].content']\n"
    )
    dated.runpytest("--opswald-goldens").assert_outcomes(passed=1)


def test_ini_and_hook_rules(dated: pytest.Pytester) -> None:
    dated.makeini(
        f"[pytest]\nopswald_adapter = dated:run\nopswald_request_normalize =\n"
        f"    {UUID} => <uuid>\n    {DATE} => <date>\n"
    )
    dated.runpytest("--opswald-goldens").assert_outcomes(passed=1)
    dated.makeini("[pytest]\nopswald_adapter = dated:run\n")
    dated.makeconftest(
        "import dated\n\ndef pytest_opswald_normalize(config):\n"
        f"    return {{{UUID!r}: '<uuid>', {DATE!r}: '<date>'}}\n"
    )
    dated.runpytest("--opswald-goldens").assert_outcomes(passed=1)


ASYNC_AGENT = """
import asyncio
import random

import opswald


@opswald.tool
async def weather(city):
    await asyncio.sleep(random.random() / 50)
    return {"city": city, "temp": len(city)}


@opswald.llm
async def chat(*, model, messages):
    await asyncio.sleep(0)
    return {"content": f"{len(messages)} messages", "tool_calls": None, "finish_reason": "stop"}


async def run(input):
    results = await asyncio.gather(*(weather(c) for c in input["cities"]))
    summary = await chat(model="m", messages=[{"role": "user", "content": str(results)}])
    return {"summary": summary["content"], "temps": [r["temp"] for r in results]}
"""


def test_async_agent_with_tools_finishing_in_any_order(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CI", raising=False)
    pytester.makepyfile(aagent=ASYNC_AGENT, conftest="import aagent\n")
    pytester.makeini("[pytest]\nopswald_adapter = aagent:run\n")
    pytester.mkdir("goldens")
    path = pytester.path / "goldens" / "w.golden.yaml"
    path.write_text("name: w\ninput:\n  cities: [Paris, Oslo, Lisbon, Rome]\n")
    pytester.runpytest("--opswald-goldens", "--opswald-mode=record").assert_outcomes(passed=1)
    session = load(path)
    tools = [s for s in session.step_list if s.type == "tool_call"]
    assert sorted(t.input["city"] for t in tools) == ["Lisbon", "Oslo", "Paris", "Rome"]
    # the recorded order of the concurrent calls must not matter: reverse them in the file
    assert [s.type for s in session.step_list[:4]] == ["tool_call"] * 4
    reordered = [
        s.model_copy(update={"step": i})
        for i, s in enumerate(reversed(session.step_list[:4]), start=1)
    ]
    session.steps = [*reordered, *session.step_list[4:]]
    dump(session, path)
    swapped = load(path)
    assert [t.input["city"] for t in swapped.step_list if t.type == "tool_call"] == [
        t.input["city"] for t in reversed(tools)
    ]
    for _ in range(3):
        pytester.runpytest("--opswald-goldens").assert_outcomes(passed=1)


FLAGGED = """
import json
import os

import opswald


@opswald.tool
def add_to_cart(sku, quantity, gift):
    return {"ok": True}


@opswald.llm
def chat(*, model, messages, **params):
    return {"content": "ok", "tool_calls": None, "finish_reason": "stop"}


def run(input):
    sent = json.loads(os.environ.get("SENT") or json.dumps(input))
    chat(model="m", messages=[{"role": "user", "content": "hi"}], **sent["params"])
    add_to_cart("SKU-1", sent["quantity"], sent["gift"])
    return "done"
"""


@pytest.fixture
def flagged(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.delenv("SENT", raising=False)
    pytester.makepyfile(flagged=FLAGGED, conftest="import flagged\n")
    pytester.makeini("[pytest]\nopswald_adapter = flagged:run\n")
    pytester.mkdir("goldens")
    recorded = {"params": {"n": 1, "stream": False}, "quantity": 1, "gift": True}
    (pytester.path / "goldens" / "f.golden.yaml").write_text(
        f"name: f\ninput: {json.dumps(recorded)}\n"
    )
    pytester.runpytest("--opswald-goldens", "--opswald-mode=record").assert_outcomes(passed=1)
    return pytester


@pytest.mark.parametrize(
    ("sent", "where"),
    [
        ({"params": {"n": True, "stream": False}, "quantity": 1, "gift": True}, "params.n"),
        ({"params": {"n": 1, "stream": 0}, "quantity": 1, "gift": True}, "params.stream"),
        ({"params": {"n": 1, "stream": False}, "quantity": True, "gift": True}, "quantity"),
        ({"params": {"n": 1, "stream": False}, "quantity": 1, "gift": 1}, "gift"),
    ],
)
@pytest.mark.parametrize("hooked", [False, True], ids=["", "with a step hook"])
def test_a_bool_where_a_number_was_recorded_or_the_reverse_diverges(
    flagged: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    sent: object,
    where: str,
    hooked: bool,
) -> None:
    if hooked:  # each call is then matched by the rules, not looked up as recorded
        flagged.makeconftest("import flagged\n\ndef pytest_opswald_before_step(step):\n    pass\n")
    monkeypatch.setenv("SENT", json.dumps(sent))
    result = flagged.runpytest("--opswald-goldens")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([f"*step * › input.{where}: *"])


def test_numbers_equal_by_value_still_match_in_requests_and_arguments(
    flagged: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    sent = {"params": {"n": 1.0, "stream": False}, "quantity": 1.0, "gift": True}
    monkeypatch.setenv("SENT", json.dumps(sent))
    flagged.runpytest("--opswald-goldens").assert_outcomes(passed=1)


def test_the_actual_session_keeps_the_bool_sent_where_a_rule_let_it_pass(
    flagged: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = flagged.path / "goldens" / "f.golden.yaml"
    text = path.read_text().replace("\noutput: done\n", "\noutput: other\n")  # fails there
    assert "\noutput: other\n" in text
    path.write_text(
        text + "expect:\n  tool_calls: {ignore_args: [quantity]}\n"
        "  requests: {ignore: [params.n]}\n"
    )
    sent = {"params": {"n": True, "stream": False}, "quantity": True, "gift": True}
    monkeypatch.setenv("SENT", json.dumps(sent))
    result = flagged.runpytest("--opswald-goldens", "--opswald-save-actual", "actual")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*output: 'other' → 'done'*"])
    (saved,) = (flagged.path / "actual").iterdir()
    llm, tool = load(saved).step_list
    assert llm.input.params == {"n": True, "stream": False}
    assert llm.input.params["n"] is True  # what the agent sent, not the recorded 1
    assert tool.input["quantity"] is True
