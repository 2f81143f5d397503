"""The ini side of framework integrations: the list is validated, recorded in the golden,
and `opswald_side_effect_tools` gives any tool the meaning of side_effects=True."""

from __future__ import annotations

import pytest

import opswald
from conftest import record


def _ini(project: pytest.Pytester, lines: str) -> None:
    project.makeini("[pytest]\n" + lines)


def test_an_unknown_integration_is_a_usage_error(project: pytest.Pytester) -> None:
    _ini(project, "opswald_integrations = langchain, crewai\n")
    result = project.runpytest("--opswald-goldens")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [
            "*opswald_integrations: unknown 'crewai'; "
            "known: langchain, openai_agents, pydantic_ai, mcp*"
        ]
    )


def test_the_integrations_in_force_are_recorded(project: pytest.Pytester) -> None:
    _ini(project, "opswald_integrations = mcp,\n  pydantic_ai\n")
    record(project)
    golden = opswald.load(project.path / "goldens" / "flight.golden.yaml")
    assert golden.metadata["integrations"] == ["mcp", "pydantic_ai"]
    project.runpytest("--opswald-goldens").assert_outcomes(passed=1)


def test_side_effect_tools_from_ini_are_not_run_live(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    record(project)
    golden = project.path / "goldens" / "flight.golden.yaml"
    before = golden.read_text()
    monkeypatch.setenv("AGENT_VARIANT", "extra")  # one more lookup after the recorded calls
    _ini(project, "opswald_side_effect_tools = lookup\n")
    result = project.runpytest("--opswald-goldens", "--opswald-update")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*lookup has side effects and would run live*"])
    assert golden.read_text() == before, "nothing blessed"
    _ini(project, "")
    project.runpytest("--opswald-goldens", "--opswald-update").assert_outcomes(passed=1)
    assert golden.read_text() != before
