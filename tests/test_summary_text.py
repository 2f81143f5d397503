"""The terminal summary's full text, snapshotted for the four runs users see most: all
passing (-v), a failure, a cost regression and a slow step. Measured wall times are masked;
everything else — layout, counts, figures, deltas, divergence lines — is compared exactly."""

from __future__ import annotations

import re
from typing import Any

import pytest

from conftest import record

FIGURES = re.compile(r"^ +\d+ steps? \(")
MEASURED = re.compile(r"[\d,]+(\.\d+)? ms( \([+-]?\d+(\.\d+)?%\))?")


def _summary(result: pytest.RunResult) -> str:
    """The `opswald` section of pytest's output, wall times masked."""
    lines = result.stdout.lines
    start = next(i for i, line in enumerate(lines) if re.match(r"^-+ opswald -+$", line))
    end = next(
        (i for i in range(start + 1, len(lines)) if re.match(r"^[=-]{3,} .* [=-]{3,}$", lines[i])),
        len(lines),
    )
    section = lines[start:end]
    assert all(len(line) <= 80 for line in section), section
    # only a run's total duration is measured; a served step keeps its recorded duration
    return "\n".join(
        MEASURED.sub("<ms>", line) if FIGURES.match(line) else line for line in section
    )


def _slow_golden(project: pytest.Pytester) -> None:
    """Make the golden say its first LLM call took 6.2 s: replay keeps recorded durations."""
    path = project.path / "goldens" / "flight.golden.yaml"
    text = path.read_text()
    steps = text.index("\nsteps:")
    first = re.compile(r"duration_ms: [\d.]+").search(text, steps)
    assert first is not None
    path.write_text(text[: first.start()] + "duration_ms: 6200.0" + text[first.end() :])


def test_summary_of_a_passing_run_with_v(project: pytest.Pytester, snapshot: Any) -> None:
    record(project)
    result = project.runpytest("--opswald-goldens", "-v", "-p", "no:randomly")
    result.assert_outcomes(passed=1)
    assert _summary(result) == snapshot


def test_summary_of_a_failing_run(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, snapshot: Any
) -> None:
    record(project)
    monkeypatch.setenv("AGENT_VARIANT", "args")
    result = project.runpytest("--opswald-goldens")
    result.assert_outcomes(failed=1)
    text = _summary(result)
    assert "first divergence: step 5 tool_call book" in text
    assert text == snapshot


def test_summary_of_a_cost_regression(project: pytest.Pytester, snapshot: Any) -> None:
    record(project)
    path = project.path / "goldens" / "flight.golden.yaml"
    path.write_text(path.read_text().replace("cost: 0.0004", "cost: 0.0001"))
    result = project.runpytest(
        "--opswald-goldens", "--opswald-mode=live", "--opswald-allow-side-effects"
    )
    result.assert_outcomes(passed=1)
    text = _summary(result)
    assert "REGRESSED" in text
    assert text == snapshot


def test_summary_of_a_slow_step(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, snapshot: Any
) -> None:
    record(project)
    _slow_golden(project)
    monkeypatch.setenv("AGENT_VARIANT", "args")  # failing, so the golden is listed
    result = project.runpytest("--opswald-goldens")
    result.assert_outcomes(failed=1)
    text = _summary(result)
    assert "book_flight: step 1 llm_call m1 6,200 ms" in text
    assert text == snapshot


def test_ids_in_the_summary_can_be_rerun_from_where_pytest_ran(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    record(project)
    monkeypatch.setenv("AGENT_VARIANT", "args")
    sub = project.mkdir("sub")
    monkeypatch.chdir(sub)
    result = project.runpytest("--opswald-goldens", "..")
    result.assert_outcomes(failed=1)
    shown = [line.split()[1] for line in result.stdout.lines if line.startswith("FAILED    ")]
    assert shown == ["../goldens/flight.golden.yaml::book_flight"]
    monkeypatch.delenv("AGENT_VARIANT")
    project.runpytest("--opswald-goldens", shown[0]).assert_outcomes(passed=1)


def test_a_run_under_a_millisecond_does_not_read_as_0_ms(project: pytest.Pytester) -> None:
    """The golden's recorded durations made 0: the replay then takes only the agent's own
    time, a fraction of a millisecond, which the -v line showed as `0 ms`."""
    import json

    from opswald.pricing import milliseconds

    record(project)
    path = project.path / "goldens" / "flight.golden.yaml"
    path.write_text(re.sub(r"duration_ms: [\d.]+", "duration_ms: 0.0", path.read_text()))
    result = project.runpytest("--opswald-goldens", "-v", "--opswald-json=r.json")
    result.assert_outcomes(passed=1)
    (row,) = json.loads((project.path / "r.json").read_text())["goldens"]
    took = row["duration_ms"]  # well under 10 ms (not asserted: a loaded machine may not be)
    assert took, "measured"
    line = next(line for line in result.stdout.lines if FIGURES.match(line))
    assert line.endswith(f", {milliseconds(took)}"), (line, took)
    assert not line.endswith(" 0 ms")


def test_a_row_of_a_golden_without_usage_says_so_not_0_tokens() -> None:
    """QA (probe26 #10): a golden whose model calls report no usage (written by hand) read
    `0 tok` in the summary's rows, where `show` and `analyze` say `no usage recorded`."""
    from opswald.report.summary import _figures_line

    row = {
        "steps": 2, "llm_calls": 1, "tool_calls": 1, "total_tokens": 0, "cost": None,
        "duration_ms": 0, "deltas": {},
    }  # fmt: skip
    assert _figures_line(row) == "2 steps (1 llm, 1 tool), no usage recorded, cost n/a"
    assert _figures_line({**row, "llm_calls": 0, "steps": 1, "tool_calls": 1}).startswith(
        "1 step (0 llm, 1 tool), 0 tok"
    )
    assert _figures_line({**row, "total_tokens": 40}).startswith("2 steps (1 llm, 1 tool), 40 tok")


def test_a_golden_that_never_ran_has_no_figures_line(project: pytest.Pytester) -> None:
    """QA (probe28 #8): a stub that failed before running ("not recorded yet", or refused
    on CI) had a figures line `0 steps (0 llm, 0 tool), 0 tok, cost n/a`: nothing ran."""
    result = project.runpytest("--opswald-goldens")
    result.assert_outcomes(failed=1)
    section = result.stdout.str().split("--- opswald ---")[-1]
    assert "not recorded yet" in section
    assert "0 tok" not in section and "cost n/a" not in section, section


def test_updates_of_one_golden_by_two_tests_say_how_many_goldens_were_written() -> None:
    """QA (probe28 #8): a golden item and a marker test replaying the same golden both
    update it: `2 goldens updated` where one file changed; the line says so."""
    from opswald.report.summary import Summary

    row = {
        "status": "updated", "golden": "book_flight", "file": "goldens/flight.golden.yaml",
        "name": "goldens/flight.golden.yaml::book_flight", "variant": None,
    }  # fmt: skip
    marker = {**row, "file": "tests/test_m.py", "name": "tests/test_m.py::test_m"}
    summary = Summary(counts={"updated": 2}, records=(row, marker))
    assert "2 goldens updated (1 golden written): review them with git diff" in summary.lines
    other = {**row, "golden": "other", "name": "goldens/other.golden.yaml::other"}
    summary = Summary(counts={"updated": 2}, records=(row, other))
    assert "2 goldens updated: review them with git diff" in summary.lines
