"""Calls cancelled before they finished (concurrent calls the agent's error cut short) are
steps of the golden, and replay reproduces them: an unchanged agent passes."""

from __future__ import annotations

import pytest

from conftest import sdk_setup
from fakeprovider import FakeProvider
from opswald import load

TOOLS_AGENT = """
import asyncio

import opswald


@opswald.tool
async def slow(x: str) -> str:
    await asyncio.sleep(0.2)
    return x


@opswald.tool
async def fail(x: str) -> str:
    raise ValueError("disk full")


async def run(input):
    await asyncio.gather(slow("a"), slow("c"), fail("b"))
    return {"answer": "never"}
"""

# what such a golden held before: only the call that finished
FAIL_ONLY = """\
name: g
metadata:
  recorded_with: pytest-opswald 0.1.0
input: {q: x}
steps:
  - step: 1
    type: tool_call
    error: {type: ValueError, message: disk full}
    tool: fail
    input: {x: b}
    output: null
output: null
error: {type: ValueError, message: disk full}
"""


STUB = "name: g\ninput: {q: x}\n"


def _project(pytester: pytest.Pytester, agent: str, golden: str = STUB) -> None:
    pytester.makepyfile(agent=agent)
    pytester.makeini("[pytest]\nopswald_adapter = agent:run\n")
    pytester.mkdir("goldens")
    (pytester.path / "goldens" / "g.golden.yaml").write_text(golden)


def _calls(pytester: pytest.Pytester) -> list[tuple[str, str, str | None]]:
    golden = load(pytester.path / "goldens" / "g.golden.yaml")
    return [
        (s.type, getattr(s, "tool", None) or str(getattr(s, "model", None)),
         s.error.type if s.error is not None else None)
        for s in golden.step_list
    ]  # fmt: skip


def test_calls_cancelled_by_the_agents_error_are_recorded_and_replay_passes(
    pytester: pytest.Pytester,
) -> None:
    _project(pytester, TOOLS_AGENT)
    result = pytester.runpytest("--opswald-goldens", "--opswald-mode=record")
    assert result.ret == 0, result.stdout.str()
    # in the order they began: the cancelled calls too, with no answer
    assert _calls(pytester) == [
        ("tool_call", "slow", "CancelledError"),
        ("tool_call", "slow", "CancelledError"),
        ("tool_call", "fail", "ValueError"),
    ]
    steps = load(pytester.path / "goldens" / "g.golden.yaml").step_list
    assert [getattr(s, "input", None) for s in steps] == [{"x": "a"}, {"x": "c"}, {"x": "b"}]
    assert all(getattr(s, "output", None) is None for s in steps)
    replay = pytester.runpytest("--opswald-goldens")
    replay.assert_outcomes(passed=1)


def test_an_update_writes_a_golden_that_passes_and_one_divergence_is_told_once(
    pytester: pytest.Pytester,
) -> None:
    _project(pytester, TOOLS_AGENT, FAIL_ONLY)
    failed = pytester.runpytest("--opswald-goldens")
    failed.assert_outcomes(failed=1)
    out = failed.stdout.str()
    # both `slow` calls reach the same divergence: it is reported once
    assert out.count("the golden calls fail here; the agent called slow") == 1, out
    assert out.count("hint: step 1 of the golden called fail") == 1, out
    updated = pytester.runpytest("--opswald-goldens", "--opswald-update")
    assert updated.ret == 0, updated.stdout.str()
    assert [c[2] for c in _calls(pytester)].count("CancelledError") == 2
    pytester.runpytest("--opswald-goldens").assert_outcomes(passed=1)


LLM_AGENT = """
import asyncio

import opswald


@opswald.llm
async def ask(model: str, messages: list) -> str:
    await asyncio.sleep(0.2)
    return "late"


@opswald.tool
async def fail(x: str) -> str:
    raise ValueError("disk full")


async def run(input):
    await asyncio.gather(
        ask("m", [{"role": "user", "content": "a"}]),
        ask("m", [{"role": "user", "content": "c"}]),
        fail("b"),
    )
    return {"answer": "never"}
"""


def test_model_calls_cancelled_by_the_agents_error_replay(pytester: pytest.Pytester) -> None:
    _project(pytester, LLM_AGENT)
    result = pytester.runpytest("--opswald-goldens", "--opswald-mode=record")
    assert result.ret == 0, result.stdout.str()
    assert _calls(pytester) == [
        ("llm_call", "m", "CancelledError"),
        ("llm_call", "m", "CancelledError"),
        ("tool_call", "fail", "ValueError"),
    ]
    pytester.runpytest("--opswald-goldens").assert_outcomes(passed=1)


THREAD_AGENT = """
import asyncio
import threading

import opswald

RELEASE = threading.Event()


@opswald.tool
def blocking(x: str) -> str:
    RELEASE.wait(3)
    return x


def worker():
    try:
        blocking("x")
    except asyncio.CancelledError:  # replay: the call recorded as unfinished gets no answer
        with open("got.txt", "w") as f:
            f.write("cancelled")


def run(input):
    thread = threading.Thread(target=worker, daemon=True)
    thread.start()
    thread.join(0.5)
    raise ValueError("gave up")
"""


def test_a_call_still_running_in_a_thread_when_the_run_ended(pytester: pytest.Pytester) -> None:
    _project(pytester, THREAD_AGENT)
    result = pytester.runpytest("--opswald-goldens", "--opswald-mode=record")
    assert result.ret == 0, result.stdout.str()
    assert _calls(pytester) == [("tool_call", "blocking", "CancelledError")]
    assert not (pytester.path / "got.txt").exists()
    replay = pytester.runpytest("--opswald-goldens")
    replay.assert_outcomes(passed=1)
    # a thread cannot be cancelled: its call gets a CancelledError
    assert (pytester.path / "got.txt").read_text() == "cancelled"


SDK_AGENT = """
import asyncio

import openai

import opswald


@opswald.tool
async def fail(x: str) -> str:
    await asyncio.sleep(0.05)
    raise ValueError("disk full")


@opswald.tool
async def use(text: str) -> str:
    return text


async def ask(client):
    reply = await client.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}]
    )
    return await use(reply.choices[0].message.content or "")


async def main():
    client = openai.AsyncOpenAI(max_retries=0)
    await asyncio.gather(ask(client), fail("b"))


def run(input):
    return asyncio.run(main())
"""


def test_an_sdk_call_cancelled_by_the_agents_error_replays_offline(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    sdk_setup(
        pytester, monkeypatch, module="agent", agent=SDK_AGENT,
        golden="goldens/g.golden.yaml", stub=STUB,
    )  # fmt: skip
    with FakeProvider(script=[{"content": "late"}], delay_first=[1.0]) as fp:
        monkeypatch.setenv("OPENAI_BASE_URL", fp.base_url + "/v1")
        result = pytester.runpytest("--opswald-goldens", "--opswald-mode=record")
        assert result.ret == 0, result.stdout.str()
    assert sorted(_calls(pytester)) == [  # in the order they began: the SDK's varies
        ("llm_call", "gpt-4o-mini", "CancelledError"),
        ("tool_call", "fail", "ValueError"),
    ]
    # the provider is gone: the call recorded as cancelled is not answered, and waits
    pytester.runpytest("--opswald-goldens").assert_outcomes(passed=1)
