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
    assert lines[2] == (
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
