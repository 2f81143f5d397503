"""Goldens beside other pytest plugins, run for real: pytest-rerunfailures."""

from __future__ import annotations

import json
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from conftest import PLUGINS_OFF, record

FLAKY = """
import os
from pathlib import Path

import agent

MARK = Path(__file__).with_name("flaky.mark")


def flaky(input):
    # the first run after the mark is made sends another prompt at step 4 (and fails)
    if MARK.exists():
        MARK.unlink()
        os.environ["AGENT_VARIANT"] = "prompt"
        try:
            return agent.run(input)
        finally:
            del os.environ["AGENT_VARIANT"]
    return agent.run(input)


def pytest_opswald_adapter(golden, config):
    return flaky if golden.name == "book_flight" else agent.run
"""

MARKER_TEST = """
import pytest

@pytest.mark.golden("goldens/flight.golden.yaml")
def test_flight(golden_replay):
    assert golden_replay.passed
"""


def _statuses(path: Path, name: str) -> list[list[str]]:
    """The opswald.status properties of each <testcase> named `name` (pytest-rerunfailures
    writes one per attempt)."""
    cases = [c for c in ET.parse(path).getroot().iter("testcase") if c.get("name") == name]
    return [
        [p.get("value") or "" for p in c.iter("property") if p.get("name") == "opswald.status"]
        for c in cases
    ]


@pytest.mark.parametrize("workers", [[], ["-n", "2"]], ids=["serial", "xdist"])
def test_a_golden_that_passes_on_a_rerun_counts_once_as_passed(
    project: pytest.Pytester, workers: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`--reruns`: pytest says `2 passed, 1 rerun` and exits 0; the opswald summary, the
    JSON report (its CI gate `.failed == 0`) and JUnit's properties agree."""
    monkeypatch.setenv("PYTEST_ADDOPTS", PLUGINS_OFF)  # pytest-rerunfailures and anyio loaded
    record(project)
    goldens = project.path / "goldens"
    shutil.copy(goldens / "flight.golden.yaml", goldens / "steady.golden.yaml")
    (goldens / "steady.golden.yaml").write_text(
        (goldens / "steady.golden.yaml").read_text().replace("name: book_flight", "name: steady")
    )
    project.makeconftest(FLAKY)
    (project.path / "flaky.mark").touch()
    result = project.runpytest(
        "--opswald-goldens", "--reruns=2", "--opswald-json=r.json", "--junitxml=j.xml", *workers
    )
    assert result.ret == 0
    outcomes = result.parseoutcomes()
    assert (outcomes.get("passed"), outcomes.get("rerun"), outcomes.get("failed")) == (2, 1, None)
    assert not (project.path / "flaky.mark").exists(), "the first attempt ran the flaky path"
    section = result.stdout.str().split("--- opswald ---")[-1]
    assert "goldens: 2 passed, 0 failed" in section
    assert "FAILED" not in section
    report = json.loads((project.path / "r.json").read_text())
    assert (report["total"], report["passed"], report["failed"]) == (2, 2, 0)
    assert sorted((g["golden"], g["status"]) for g in report["goldens"]) == [
        ("book_flight", "passed"),
        ("steady", "passed"),
    ]
    assert _statuses(project.path / "j.xml", "book_flight") == [["failed"], ["passed"]], (
        "each attempt carries its own properties, not the earlier ones too"
    )


@pytest.mark.parametrize("workers", [[], ["-n", "2"]], ids=["serial", "xdist"])
def test_a_rerun_that_passes_takes_back_the_saved_actual_of_its_failed_attempt(
    project: pytest.Pytester, workers: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`--opswald-save-actual` with `--reruns`: the folder holds the actuals of goldens
    that failed in the end; a rerun that passes removes the one its failed attempt wrote,
    and an actual left there by an earlier run is not this run's to remove."""
    monkeypatch.setenv("PYTEST_ADDOPTS", PLUGINS_OFF)  # pytest-rerunfailures and anyio loaded
    record(project)
    project.makeconftest(FLAKY)
    (project.path / "flaky.mark").touch()
    actual = project.path / "actual"
    actual.mkdir()
    (actual / "earlier.actual.yaml").write_text("kept: true\n")
    result = project.runpytest(
        "--opswald-goldens", "--reruns=1", "--opswald-save-actual=actual", *workers
    )
    assert result.ret == 0
    assert result.parseoutcomes().get("rerun") == 1
    assert sorted(p.name for p in actual.iterdir()) == ["earlier.actual.yaml"]

    (project.path / "flaky.mark").touch()
    result = project.runpytest(
        "--opswald-goldens", "--reruns=0", "--opswald-save-actual=actual", *workers
    )
    assert result.ret == 1
    assert sorted(p.name for p in actual.iterdir()) == [
        "book_flight.actual.yaml",
        "earlier.actual.yaml",
    ], "without a rerun the failed golden's actual stays"


def test_a_marker_test_rerun_replays_its_golden_again(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A rerun runs the test afresh, its golden's replay included (it was kept from the
    first attempt, so every rerun failed with the first attempt's divergence)."""
    monkeypatch.setenv("PYTEST_ADDOPTS", PLUGINS_OFF)  # pytest-rerunfailures and anyio loaded
    record(project)
    project.makeconftest(FLAKY)
    project.makepyfile(test_flight=MARKER_TEST)
    (project.path / "flaky.mark").touch()
    result = project.runpytest("test_flight.py", "--reruns=2")
    assert result.ret == 0, result.stdout.str()
    outcomes = result.parseoutcomes()
    assert (outcomes.get("passed"), outcomes.get("rerun")) == (1, 1)
    assert "goldens: 1 passed, 0 failed" in result.stdout.str().split("--- opswald ---")[-1]
