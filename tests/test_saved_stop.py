"""A saved actual of a replay that stopped (its last step carries `error:
ReplayDivergence`): `opswald diff` and the viewer's findings name that stop as pytest named
it, and do not list what the stop left out (the golden's later steps, its output) as
findings of their own."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

import opswald
from opswald.cli import main
from opswald.report.html import ViewEntry, build_data

AGENT = """
import os

import opswald


@opswald.llm(provider="acme", api="acme.chat")
def chat(*, model, messages):
    return {"content": "done", "finish_reason": "stop"}


@opswald.tool
def search(query):
    return ["row0"]


def run(input):
    search(query="q")
    if os.environ.get("AGAIN"):
        search(query="again")
    chat(model="m1", messages=[{"role": "user", "content": "go"}])
    opswald.state(memory={"done": True})
    return "done"
"""

EXTRA = "the agent made a call the golden does not have"


@pytest.fixture(autouse=True)
def _wide(monkeypatch: pytest.MonkeyPatch) -> None:
    """A wide terminal: these tests read diff's message lines whole, not broken to fit."""
    monkeypatch.setenv("COLUMNS", "160")


@pytest.fixture
def saved(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.delenv("AGAIN", raising=False)
    pytester.makepyfile(sagent=AGENT)
    pytester.makeini("[pytest]\nopswald_adapter = sagent:run\npythonpath = .\n")
    pytester.mkdir("goldens")
    golden = pytester.path / "goldens" / "s.golden.yaml"
    golden.write_text("name: s\ninput: {q: hi}\n")
    pytester.runpytest("--opswald-goldens", "--opswald-mode=record").assert_outcomes(passed=1)
    monkeypatch.setenv("AGAIN", "1")
    result = pytester.runpytest("--opswald-goldens", "--opswald-save-actual", "actual")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([f"step 2 of this run · tool_call search: {EXTRA}*"])
    return golden, pytester.path / "actual" / "s.actual.yaml"


def test_diff_names_the_stop_of_a_saved_actual_as_pytest_does(
    saved: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    golden, actual = saved
    assert main(["diff", str(golden), str(actual)]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert lines[1].startswith(f"first difference: step 2 of this run · tool_call search: {EXTRA}")
    assert next(line for line in lines if line.startswith("the run stopped")) == (
        "the run stopped there: the golden's steps after its step 1 were not reached, and "
        "the output was not made"
    )


def test_diff_json_gives_the_stop_of_a_saved_actual(
    saved: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    golden, actual = saved
    assert main(["diff", str(golden), str(actual), "--json"]) == 1
    stop = json.loads(capsys.readouterr().out)["stop"]
    assert {k: stop[k] for k in ("step_b", "golden_step", "reached")} == {
        "step_b": 2,
        "golden_step": None,
        "reached": 1,
    }
    assert stop["message"].startswith(EXTRA)
    assert stop["text"].startswith(f"step 2 of this run · tool_call search: {EXTRA}")


def test_diff_json_of_two_goldens_has_no_stop(
    saved: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    golden, _ = saved
    assert main(["diff", str(golden), str(golden), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["stop"] is None


def test_the_viewer_names_the_stop_and_not_what_it_left_out(saved: tuple[Path, Path]) -> None:
    golden, actual = saved
    entry = ViewEntry(golden=opswald.load(golden), actual=opswald.load(actual), status="failed")
    [data] = build_data([entry])["goldens"]
    findings = data["findings"]
    assert [(f["kind"], f["step"], f["run_step"]) for f in findings] == [("extra_call", 2, True)], (
        json.dumps(findings, indent=1)[:2000]
    )
    assert findings[0]["message"].startswith(EXTRA)
    assert data["divergence"] == next(
        at for at, (g, a) in enumerate(data["rows"], start=1) if a == 2 and not g
    )


SKIPPING_AGENT = """
import os

import opswald


@opswald.llm(provider="acme", api="acme.chat")
def chat(*, model, messages):
    return {"content": "done", "finish_reason": "stop"}


@opswald.tool
def a(n):
    return n + 1


def run(input):
    if not os.environ.get("SKIP_A"):
        a(1)
    chat(model="m", messages=[{"role": "user", "content": "go"}])
    return "done"
"""

SKIPPED = "the agent did not call a and went on to a llm_call"


@pytest.fixture
def skipped(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    """golden: tool a(1), then a model call; the agent no longer calls a."""
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.delenv("SKIP_A", raising=False)
    pytester.makepyfile(kagent=SKIPPING_AGENT)
    pytester.makeini("[pytest]\nopswald_adapter = kagent:run\npythonpath = .\n")
    pytester.mkdir("goldens")
    golden = pytester.path / "goldens" / "g.golden.yaml"
    golden.write_text("name: g\ninput: {q: hi}\n")
    pytester.runpytest("--opswald-goldens", "--opswald-mode=record").assert_outcomes(passed=1)
    monkeypatch.setenv("SKIP_A", "1")
    result = pytester.runpytest("--opswald-goldens", "--opswald-save-actual", "act")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([f"step 1 of 2 · tool_call a: {SKIPPED}*"])
    return golden, pytester.path / "act" / "g.actual.yaml"


def test_diff_names_the_golden_step_a_skipped_call_stopped_at_as_pytest_does(
    skipped: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    """The refused call (the model call) pairs with golden step 2 by the steps alone, but
    pytest stopped at golden step 1, the tool call the agent skipped: the saved actual
    carries the step pytest named, and diff names it so."""
    golden, actual = skipped
    assert main(["diff", str(golden), str(actual)]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert lines[1].startswith(f"first difference: step 1 of 2 · tool_call a: {SKIPPED}"), lines
    assert lines[2].startswith("the run stopped there: the golden's steps after its step 1 "), lines
    assert main(["diff", str(golden), str(actual), "--json"]) == 1
    stop = json.loads(capsys.readouterr().out)["stop"]
    assert {k: stop[k] for k in ("step_b", "golden_step", "reached")} == {
        "step_b": 1,
        "golden_step": 1,
        "reached": 1,
    }
    assert stop["text"].startswith(f"step 1 of 2 · tool_call a: {SKIPPED}")


def test_the_viewer_names_the_skipped_step_as_pytest_does(skipped: tuple[Path, Path]) -> None:
    golden, actual = skipped
    entry = ViewEntry(golden=opswald.load(golden), actual=opswald.load(actual), status="failed")
    [data] = build_data([entry])["goldens"]
    findings = data["findings"]
    assert [(f["kind"], f["step"], f["run_step"], f["step_type"], f["name"]) for f in findings] == [
        ("mismatch", 1, False, "tool_call", "a")
    ], json.dumps(findings, indent=1)[:2000]
    assert findings[0]["message"].startswith(SKIPPED)
    assert data["divergence"] == next(
        at for at, (g, _) in enumerate(data["rows"], start=1) if g == 1
    )


def test_an_actual_saved_before_the_stop_was_kept_is_still_read(
    skipped: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    """An actual saved by an older version has no record of the golden step pytest named:
    it loads, and diff names the stop by the steps it pairs, as before."""
    golden, actual = skipped
    text = actual.read_text()
    old = re.sub(r"\n( *)attributes:\n(?:\1  .*\n)+", "\n", text)
    assert old != text
    actual.write_text(old)
    assert main(["diff", str(golden), str(actual)]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert lines[1].startswith("first difference: step 2 of 2 · llm_call m: "), lines


LOOKING_AGENT = """
import os

import opswald


@opswald.llm(provider="acme", api="acme.chat")
def chat(*, model, messages):
    return {"content": "done", "finish_reason": "stop"}


@opswald.tool
def lookup(order):
    return {"order": order, "total": 5}


@opswald.tool
def refund(amount):
    return {"refunded": amount}


def run(input):
    chat(model="m1", messages=[{"role": "user", "content": "go"}])
    if os.environ.get("LOOKUP"):
        lookup(order=1)
    chat(model="m2", messages=[{"role": "user", "content": "next"}])
    refund(amount=5)
    chat(model="m3", messages=[{"role": "user", "content": "end"}])
    opswald.state(memory={"done": True})
    return "done"
"""


@pytest.fixture
def looked_up(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    """golden: m1, m2, refund(5), m3, a snapshot; the agent now looks the order up after m1,
    a tool call the golden does not have (the golden has a later tool call, refund)."""
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.delenv("LOOKUP", raising=False)
    pytester.makepyfile(lagent=LOOKING_AGENT)
    pytester.makeini("[pytest]\nopswald_adapter = lagent:run\npythonpath = .\n")
    pytester.mkdir("goldens")
    golden = pytester.path / "goldens" / "l.golden.yaml"
    golden.write_text("name: l\ninput: {q: hi}\n")
    pytester.runpytest("--opswald-goldens", "--opswald-mode=record").assert_outcomes(passed=1)
    monkeypatch.setenv("LOOKUP", "1")
    result = pytester.runpytest("--opswald-goldens", "--opswald-save-actual", "act")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([f"step 2 of this run · tool_call lookup: {EXTRA}*"])
    return golden, pytester.path / "act" / "l.actual.yaml"


def test_diff_of_a_stop_at_an_extra_call_pairs_it_with_no_golden_step(
    looked_up: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    """The refused call is the stop, a call the golden does not have: not paired with the
    golden's later tool call (refund, never faced), and the golden's steps after the last
    one reached are not listed as removed, nor the output the run never made."""
    golden, actual = looked_up
    assert main(["diff", str(golden), str(actual)]) == 1
    out = capsys.readouterr().out
    lines = out.splitlines()
    body = lines[next(i for i, line in enumerate(lines) if line.startswith("[- ")) + 1 :]
    assert body[:3] == [
        "step 2 inserted: tool_call lookup",
        '  + {"tool": "lookup", "input": {"order": 1}}',
        "steps 2-5 not reached: llm_call m2; tool_call refund; llm_call m3; state memory",
    ], out
    assert not any(
        word in out for word in ("removed", "refunded", "ReplayDivergence", "output:")
    ), out
    assert main(["diff", str(golden), str(actual), "--json"]) == 1
    data = json.loads(capsys.readouterr().out)
    assert (data["first_step"], data["first_step_b"]) == (None, 2)
    assert [(d["step"], d["step_b"], d["change"]) for d in data["differences"]] == [
        (None, 2, "inserted"),
        (2, None, "not_reached"),
    ]
    assert data["differences"][1]["steps"] == [2, 3, 4, 5]


def test_diff_of_a_stop_at_a_skipped_call_shows_the_golden_step_not_called(
    skipped: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    golden, actual = skipped
    assert main(["diff", str(golden), str(actual), "--json"]) == 1
    data = json.loads(capsys.readouterr().out)
    assert (data["first_step"], data["first_step_b"]) == (1, 1)
    assert [(d["step"], d["step_b"], d["change"]) for d in data["differences"]] == [
        (1, None, "removed"),
        (None, 1, "inserted"),
        (2, None, "not_reached"),
    ]
    assert "ReplayDivergence" not in json.dumps(data["differences"])


def test_the_viewer_pairs_a_stop_at_an_extra_call_with_no_golden_step(
    looked_up: tuple[Path, Path],
) -> None:
    golden, actual = looked_up
    entry = ViewEntry(golden=opswald.load(golden), actual=opswald.load(actual), status="failed")
    [data] = build_data([entry])["goldens"]
    assert [3, 2] not in data["rows"], data["rows"]
    assert [0, 2] in data["rows"]
    [finding] = data["findings"]
    assert (finding["kind"], finding["step"], finding["run_step"]) == ("extra_call", 2, True)
    assert not any("ReplayDivergence" in line or "refund" in line for line in finding["diff"]), (
        finding["diff"]
    )


def test_the_viewer_compares_only_the_request_of_the_refused_call(
    looked_up: tuple[Path, Path],
) -> None:
    golden, actual = looked_up
    entry = ViewEntry(golden=opswald.load(golden), actual=opswald.load(actual), status="failed")
    [data] = build_data([entry])["goldens"]
    at = data["rows"].index([0, 2]) + 1
    lines = data["step_diffs"][str(at)]
    assert lines and not any("ReplayDivergence" in line for line in lines), lines
    later = data["rows"].index([3, 0]) + 1  # refund: never reached, not removed
    assert data["step_diffs"][str(later)] == ["step 3 not reached: the run stopped before it"]
    # the step list labels it so too (`(not reached)`, not `(golden only)`)
    # every golden step after the stop (m2, refund, m3, the snapshot), after the stop's row
    stop = data["rows"].index([0, 2]) + 1
    assert [data["rows"][at - 1] for at in data["unreached_steps"]] == [
        [2, 0],
        [3, 0],
        [4, 0],
        [5, 0],
    ]
    assert min(data["unreached_steps"]) > stop


def test_the_json_report_says_a_failed_tests_step_is_the_runs(
    saved: tuple[Path, Path], pytester: pytest.Pytester
) -> None:
    """The stop at a call the golden does not have is numbered in the run (step 2 of this
    run): `failed_tests[].run_step` says so, as the golden row's divergence does."""
    pytester.runpytest("--opswald-goldens", "--opswald-json=r.json").assert_outcomes(failed=1)
    report = json.loads((pytester.path / "r.json").read_text())
    [failed] = report["failed_tests"]
    assert (failed["step"], failed["run_step"]) == (2, True)
    [row] = report["goldens"]
    assert row["divergence"]["run_step"] is True
    # a golden that fails at one of its own steps: the golden's number, run_step false
    golden, _ = saved
    golden.write_text(golden.read_text().replace("query: q", "query: other", 1))
    pytester.runpytest("--opswald-goldens", "--opswald-json=r.json").assert_outcomes(failed=1)
    [failed] = json.loads((pytester.path / "r.json").read_text())["failed_tests"]
    assert (failed["step"], failed["run_step"]) == (1, False)


def test_the_refused_call_of_a_skipped_tool_stands_right_after_the_step_it_faced() -> None:
    """The refused model call pairs by the steps alone with a later golden model step (5),
    past golden steps the run never reached: its row comes right after the tool step it
    faced (2), before those, as opswald diff orders it (the viewer showed it after
    'step 3/4 not reached')."""
    from opswald.session import LLMCallStep, Session, ToolCallStep
    from opswald.sessiondiff import ReplayStop, stop_rows

    def llm(n: int) -> dict[str, object]:
        return {"step": n, "type": "llm_call", "model": "m", "input": {}, "output": {}}

    def tool(n: int, name: str) -> dict[str, object]:
        return {"step": n, "type": "tool_call", "tool": name, "input": {}, "output": 1}

    golden = Session.model_validate(
        {
            "name": "flow",
            "input": {},
            "steps": [llm(1), tool(2, "search"), llm(3), tool(4, "book"), llm(5)],
        }
    )
    refused = LLMCallStep.model_validate(llm(2))
    assert not isinstance(refused, ToolCallStep)
    stop = ReplayStop(step=refused, golden_step=2, reached=2)
    rows = [(1, 1), (2, 0), (3, 0), (4, 0), (5, 2)]
    assert stop_rows(rows, stop, golden) == [(1, 1), (2, 0), (0, 2), (3, 0), (4, 0), (5, 0)]


def test_the_viewers_analysis_of_an_extra_call_numbers_it_in_the_run(
    saved: tuple[Path, Path],
) -> None:
    """The first divergence is a call the golden does not have (step 2 of this run): the
    analysis named golden step 2 (another step) and traced the call's arguments as values
    'the run passed'; it names the run's step and says what the finding says."""
    golden, actual = saved
    entry = ViewEntry(golden=opswald.load(golden), actual=opswald.load(actual), status="failed")
    [data] = build_data([entry])["goldens"]
    [analysis] = [a for a in data["analyses"] if a["kind"] == "divergence"]
    assert analysis["title"] == "step 2 of this run · tool_call search: first divergence", analysis
    assert "the run passed" not in analysis["fix"], analysis["fix"]
    assert analysis["traces"] == [], analysis


SKIPPING_MODEL_AGENT = """
import os

import opswald


@opswald.llm(provider="acme", api="acme.chat")
def chat(*, model, messages):
    return {"content": f"turn {len(messages)}", "finish_reason": "stop"}


@opswald.tool
def search(q):
    return {"hits": [q]}


@opswald.tool
def fetch(page):
    return {"page": page, "live": True}


def run(input):
    messages = [{"role": "user", "content": "go"}]
    chat(model="m", messages=messages)
    messages.append({"role": "tool", "content": str(search(q="a"))})
    if not os.environ.get("SKIP_MODEL"):
        chat(model="m", messages=messages)
    messages.append({"role": "tool", "content": str(fetch(page=1))})
    chat(model="m", messages=messages)
    return "done"
"""

# the call is the golden's step 4, of the turn of model step 3 that the agent skipped
AHEAD = (
    "step 3 of this run · tool_call fetch: the agent made a call the golden has later, as "
    'its step 4, with {"page": 1}, after the golden\'s step 2 (tool_call search)'
)


@pytest.fixture
def skipped_model(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> tuple[Path, pytest.RunResult]:
    """golden: m, search, m, fetch, m; the agent no longer makes the second model call and
    calls fetch (golden step 4, of the turn of model step 3) right after search."""
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.delenv("SKIP_MODEL", raising=False)
    pytester.makepyfile(magent=SKIPPING_MODEL_AGENT)
    pytester.makeini("[pytest]\nopswald_adapter = magent:run\npythonpath = .\n")
    pytester.mkdir("goldens")
    golden = pytester.path / "goldens" / "k.golden.yaml"
    golden.write_text("name: k\ninput: {q: hi}\n")
    pytester.runpytest("--opswald-goldens", "--opswald-mode=record").assert_outcomes(passed=1)
    types = [s.type for s in opswald.load(golden).step_list]
    assert types == ["llm_call", "tool_call", "llm_call", "tool_call", "llm_call"]
    monkeypatch.setenv("SKIP_MODEL", "1")
    result = pytester.runpytest(
        "--opswald-goldens", "--opswald-save-actual", "act", "--opswald-json", "r.json"
    )
    result.assert_outcomes(failed=1)
    return golden, result


def test_a_tool_call_of_a_skipped_model_turn_is_not_served_out_of_turn(
    skipped_model: tuple[Path, pytest.RunResult], pytester: pytest.Pytester
) -> None:
    """DESIGN §3a: a tool call matches within the model turn that asked for it. Golden
    step 4 (fetch) is the turn of model step 3, which the agent skipped: the fetch the
    agent makes after search matches nothing recorded in its turn, and is the divergence,
    numbered in the run (it was served step 4's answer, and pytest blamed the next model
    call, at golden step 3, for a request with fetch's answer in it)."""
    _, result = skipped_model
    result.stdout.fnmatch_lines([f"{AHEAD}*"])
    result.stdout.no_fnmatch_line("*the agent sent another request*")
    actual = opswald.load(pytester.path / "act" / "k.actual.yaml")
    last = actual.step_list[-1]
    assert (len(actual.step_list), last.type, last.error is not None) == (3, "tool_call", True)
    assert getattr(last, "output", None) is None  # neither served step 4's answer nor run
    [failed] = json.loads((pytester.path / "r.json").read_text())["failed_tests"]
    assert (failed["step"], failed["run_step"]) == (3, True)
    assert failed["error"].startswith("the agent made a call the golden has later, as its step 4")


def test_every_surface_names_the_skipped_model_turns_divergence_as_pytest_does(
    skipped_model: tuple[Path, pytest.RunResult],
    pytester: pytest.Pytester,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """opswald diff of the saved actual, opswald replay and the viewer name the same first
    divergence as pytest (diff said 'after its step 4 not reached' with its first
    difference at step 3, replay printed the fetch as 'step 3 of 5 · tool_call fetch')."""
    golden, _ = skipped_model
    actual = pytester.path / "act" / "k.actual.yaml"
    assert main(["diff", str(golden), str(actual)]) == 1
    out = capsys.readouterr().out
    head = " ".join(line.strip() for line in out.split("\n[- ")[0].splitlines()[1:])
    assert head.startswith(f"first difference: {AHEAD} the run stopped there: the golden's "), out
    assert "after its step 2 were not reached" in head and "after its step 4" not in head, out
    assert main(["diff", str(golden), str(actual), "--json"]) == 1
    data = json.loads(capsys.readouterr().out)
    assert (data["first_step"], data["first_step_b"]) == (None, 3), data
    assert {k: data["stop"][k] for k in ("step_b", "golden_step", "reached")} == {
        "step_b": 3,
        "golden_step": None,
        "reached": 2,
    }
    assert main(["replay", str(golden)]) == 1
    out = capsys.readouterr().out
    assert "step 3 of 5 · tool_call fetch" not in out, out
    assert f"FAILED {AHEAD}" in " ".join(line.strip() for line in out.splitlines()), out
    entry = ViewEntry(golden=opswald.load(golden), actual=opswald.load(actual), status="failed")
    [view] = build_data([entry])["goldens"]
    [finding] = view["findings"]
    assert (finding["kind"], finding["step"], finding["run_step"]) == ("extra_call", 3, True)
    assert finding["headline"].startswith(AHEAD), finding["headline"]
    [analysis] = [a for a in view["analyses"] if a["kind"] == "divergence"]
    assert analysis["title"] == "step 3 of this run · tool_call fetch: first divergence"
    assert [0, 3] in view["rows"], view["rows"]
