"""Replayed time under budgets: goldens without recorded time, and runs under a timeout."""

from __future__ import annotations

import pytest


@pytest.fixture
def plain(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    monkeypatch.delenv("CI", raising=False)
    pytester.makepyfile(tagent="def run(input):\n    return 'ok'\n")
    pytester.makeini("[pytest]\nopswald_adapter = tagent:run\npythonpath = .\n")
    pytester.mkdir("goldens")
    return pytester


def test_a_relative_duration_budget_on_a_golden_without_recorded_time_cannot_be_checked(
    plain: pytest.Pytester,
) -> None:
    """A hand-written golden records no time: `+100%` of nothing is no limit, and a run
    is not over it by its first tenth of a millisecond."""
    (plain.path / "goldens" / "d.golden.yaml").write_text(
        "name: d\ninput: {q: x}\nsteps: []\noutput: ok\n"
        'expect:\n  budgets:\n    duration_ms: "+100%"\n'
    )
    result = plain.runpytest("--opswald-goldens")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "budget duration_ms +100% has no recorded figure to compare with "
            "(the golden records no duration)",
            "*record the golden again so it has a duration_ms, or use an absolute budget",
        ]
    )
    assert "budget exceeded" not in result.stdout.str()


CHAIN_AGENT = """
import opswald


@opswald.llm(provider="acme", api="acme.chat")
def chat(*, model, messages):
    return {"content": "echo " + messages[-1]["content"], "finish_reason": "stop",
            "usage": {"input_tokens": 10, "output_tokens": 2}, "cost": 0.001}


def run(input):
    a = chat(model="m", messages=[{"role": "user", "content": "first"}])
    b = chat(model="m", messages=[{"role": "user", "content": a["content"]}])
    return {"answer": b["content"]}
"""

SLOW_HOOKS = """
import time


def pytest_opswald_before_step(replay, step):
    time.sleep(0.15)


def pytest_opswald_after_step(replay, step, result):
    time.sleep(0.15)
"""


@pytest.mark.parametrize("timeout", [[], ["--opswald-timeout", "30"]])
def test_the_time_of_step_hooks_and_of_a_timeout_is_not_the_agents(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, timeout: list[str]
) -> None:
    """A replay's duration is the recorded call time plus the agent's own: step hooks that
    take 0.6 s over two steps, and the progress a run under --opswald-timeout reports from
    its child process after each step, are not the agent's time, and a relative duration
    budget does not fail on them."""
    import json

    monkeypatch.delenv("CI", raising=False)
    pytester.makepyfile(cagent=CHAIN_AGENT)
    pytester.makeini("[pytest]\nopswald_adapter = cagent:run\npythonpath = .\n")
    golden = pytester.mkdir("goldens") / "t.golden.yaml"
    golden.write_text("name: t\ninput: {q: x}\n")
    pytester.runpytest("--opswald-goldens", "--opswald-mode=record").assert_outcomes(passed=1)
    golden.write_text(golden.read_text() + "expect:\n  budgets:\n    duration_ms: 250\n")
    pytester.makeconftest(SLOW_HOOKS)
    result = pytester.runpytest("--opswald-goldens", *timeout, "--opswald-json", "r.json")
    result.assert_outcomes(passed=1)
    (row,) = json.loads((pytester.path / "r.json").read_text())["goldens"]
    assert row["duration_ms"] < 250
