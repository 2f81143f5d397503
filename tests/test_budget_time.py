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


def test_a_budget_a_float_cannot_hold_is_an_error_at_its_line(plain: pytest.Pytester) -> None:
    """`+1e999%` of a recorded 0 is NaN, and `1e400` an infinite limit: neither is a
    budget anyone means, so the golden is not loaded, as with any budget it cannot read."""
    (plain.path / "goldens" / "n.golden.yaml").write_text(
        "name: n\ninput: {q: x}\nsteps: []\noutput: ok\nexpect:\n  budgets:\n"
        '    steps: 3\n    llm_calls: "+1e999%"\n'
    )
    (plain.path / "goldens" / "i.golden.yaml").write_text(
        'name: i\ninput: {q: x}\nsteps: []\noutput: ok\nexpect:\n  budgets:\n    cost: "1e400"\n'
    )
    (plain.path / "goldens" / "a.golden.yaml").write_text(
        "name: a\ninput: {q: x}\nsteps: []\noutput: ok\nexpect:\n  budgets:\n"
        '    total_tokens: "\u0661\u0662"\n'
    )
    result = plain.runpytest("--opswald-goldens")
    result.assert_outcomes(errors=3)
    result.stdout.fnmatch_lines_random(
        [
            "*n.golden.yaml:8*'+1e999%' is too big for a budget: a limit is a finite number",
            "*i.golden.yaml:7*'1e400' is too big for a budget: a limit is a finite number",
            "*a.golden.yaml:7*cannot read '\u0661\u0662' as a budget*",
        ]
    )


def test_a_relative_budget_on_a_figure_of_zero_is_a_limit_of_zero(
    plain: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A golden that made no model call recorded 0 calls and $0: that is a figure, and
    +50% of it is 0 — met by a run that makes none, exceeded by one that makes one."""
    plain.makepyfile(
        tagent="import opswald, os\n\n"
        "@opswald.llm(provider='acme', api='acme.chat')\n"
        "def chat(*, model, messages):\n"
        "    return {'content': 'hi', 'finish_reason': 'stop', 'cost': 0.001}\n\n"
        "def run(input):\n"
        "    if os.environ.get('CALL'):\n"
        "        chat(model='m', messages=[{'role': 'user', 'content': 'x'}])\n"
        "    return 'ok'\n"
    )
    (plain.path / "goldens" / "z.golden.yaml").write_text(
        "name: z\ninput: {q: x}\nsteps: []\noutput: ok\nexpect:\n  budgets:\n"
        '    llm_calls: "+50%"\n    cost: "+50%"\n'
    )
    plain.runpytest("--opswald-goldens").assert_outcomes(passed=1)
    monkeypatch.setenv("CALL", "1")
    result = plain.runpytest("--opswald-goldens", "--opswald-mode=live")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines_random(
        [
            "*budget exceeded: llm_calls 1 > 0 (limit +50% of recorded 0)",
            "*budget exceeded: cost $0.0010 > $0 (limit +50% of recorded $0)",
        ]
    )


USAGE_AGENT = """
import opswald


@opswald.llm(provider="acme", api="acme.chat")
def chat(*, model, messages):
    return {"content": "ok", "finish_reason": "stop",
            "usage": {"input_tokens": 1000, "output_tokens": 500}}


def run(input):
    for q in input["qs"]:
        chat(model="m", messages=[{"role": "user", "content": q}])
    return "ok"
"""


def _call(n: int, q: str, usage: str = "") -> str:
    return (
        f"  - step: {n}\n    type: llm_call\n    provider: acme\n    api: acme.chat\n"
        f"    model: m\n    input: {{messages: [{{role: user, content: {q}}}]}}\n"
        f"    output: {{content: ok, finish_reason: stop}}\n{usage}"
    )


def test_a_relative_token_budget_on_a_golden_without_usage_cannot_be_checked(
    plain: pytest.Pytester,
) -> None:
    """A hand-written golden whose calls report no usage recorded no token count: `+20%`
    of it is no limit of 0 (`total_tokens 1500 > 0`), as with cost and duration; one where
    only some calls report it recorded a lower bound, no figure either."""
    plain.makepyfile(tagent=USAGE_AGENT)
    budgets = 'expect:\n  budgets:\n    total_tokens: "+20%"\n    input_tokens: "+20%"\n'
    (plain.path / "goldens" / "none.golden.yaml").write_text(
        f"name: none\ninput: {{qs: [a]}}\nsteps:\n{_call(1, 'a')}output: ok\n{budgets}"
    )
    usage = "    usage: {input_tokens: 1000, output_tokens: 500}\n"
    (plain.path / "goldens" / "some.golden.yaml").write_text(
        f"name: some\ninput: {{qs: [a, b]}}\nsteps:\n{_call(1, 'a', usage)}{_call(2, 'b')}"
        f"output: ok\n{budgets}"
    )
    result = plain.runpytest("--opswald-goldens", "--opswald-mode=live")
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines_random(
        [
            "budget total_tokens +20% has no recorded figure to compare with "
            "(the golden records no usage)",
            "budget input_tokens +20% has no recorded figure to compare with "
            "(the golden records no usage)",
            "budget total_tokens +20% has no recorded figure to compare with "
            "(the golden's token count is incomplete: 1 model call without usage)",
            "*record the golden again so it has a usage on its model calls, or use an "
            "absolute budget",
        ]
    )
    assert "budget exceeded" not in result.stdout.str()
