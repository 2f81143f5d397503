"""The tape serves a replay that makes the golden's calls one after the other, exactly as
recorded, without laying out its groups (turns, bursts, concurrency regions); the first call
that is not the next recorded one lays them out, with the calls made so far counted. These
tests replay goldens whose calls come in order for a while and then do not, and check that
what follows is served, or named, as a replay that had the groups from the start would."""

from __future__ import annotations

import asyncio
from typing import Any

import opswald
from opswald.engine.normalize import RequestRules
from opswald.engine.run import Run, RunSettings, execute, judge
from opswald.engine.tape import Tape
from opswald.session import (
    LLMCallStep,
    LLMInput,
    LLMOutput,
    Session,
    ToolCallsExpect,
    ToolCallStep,
)


@opswald.llm
async def ask(*, model: str, messages: list[dict[str, Any]]) -> dict[str, Any]:
    await asyncio.sleep(_latency.get(messages[0]["content"], 0.0))
    return {"content": "about " + messages[0]["content"], "finish_reason": "stop"}


@opswald.tool
async def look_up(topic: str) -> dict[str, Any]:
    await asyncio.sleep(_latency.get(topic, 0.0))
    return {"topic": topic, "found": topic.upper()}


_latency: dict[str, float] = {}


def agent(branches: list[str], *, prologue: int = 3, change: str | None = None) -> Any:
    """`prologue` rounds one after the other (ask, look up), then the branches gathered,
    each a round of two calls."""

    async def round_of(topic: str) -> Any:
        sent = topic + (" (changed)" if topic == change else "")
        await ask(model="m", messages=[{"role": "user", "content": sent}])
        return await look_up(topic=topic)

    async def main() -> list[Any]:
        out = [await round_of(f"step{i}") for i in range(prologue)]
        gathered = await asyncio.gather(*(round_of(b) for b in branches))
        return out + sorted(gathered, key=lambda found: found["topic"])

    return asyncio.run(main())


def record() -> Session:
    # the branches' calls overlap in the recording by several ms: a concurrency region
    _latency.update({"A": 0.012, "B": 0.006, "C": 0.009})
    try:
        run = execute(
            Session(name="s", input=None),
            lambda _: agent(["A", "B", "C"]),
            settings=RunSettings(policy="live", block_side_effects=False),
        )
    finally:
        _latency.clear()
    assert run.agent_traceback is None, run.agent_traceback
    return run.actual


def replay(golden: Session, **kw: Any) -> tuple[Run, Any]:
    branches = kw.pop("branches", ["A", "B", "C"])
    run = execute(golden, lambda _: agent(branches, **kw), settings=RunSettings())
    return run, judge(golden, run)


def test_gathered_calls_after_calls_made_in_order_replay_in_another_order() -> None:
    golden = record()
    assert len(golden.step_list) == 12
    # replayed, the branches start in another order than they were recorded in: their
    # first call is not the next recorded one, and the six calls before it came in order
    run, verdict = replay(golden, branches=["C", "B", "A"])
    assert verdict.passed, verdict.differences
    assert run.actual.output == golden.output
    assert len(run.actual.step_list) == 12


def test_a_changed_request_after_calls_made_in_order_is_named_at_its_golden_step() -> None:
    golden = record()
    wanted = next(
        s.step
        for s in golden.step_list
        if isinstance(s, LLMCallStep) and s.input.messages[0]["content"] == "B"
    )
    _, verdict = replay(golden, branches=["C", "B", "A"], change="B")
    assert not verdict.passed
    divergence = verdict.first
    assert divergence is not None
    assert (divergence.kind, divergence.step, divergence.step_type) == (
        "mismatch",
        wanted,
        "llm_call",
    )
    assert any("(changed)" in repr(d.actual) for d in divergence.differences)


def test_a_call_made_out_of_order_where_the_golden_has_none_is_still_a_divergence() -> None:
    golden = record()
    # the prologue's second round is skipped: its calls come in order until then
    _, verdict = replay(golden, prologue=1)
    assert not verdict.passed
    divergence = verdict.first
    assert divergence is not None
    assert divergence.kind == "mismatch"
    assert divergence.step == 3  # the golden's second model call, step1's
    assert divergence.step_type == "llm_call"


def _step(n: int, kind: str, what: str) -> LLMCallStep | ToolCallStep:
    stamp = f"2026-01-05T09:30:{n:02d}.000Z"  # a second apart: one after the other
    if kind == "llm":
        return LLMCallStep(
            step=n,
            timestamp=stamp,
            duration_ms=5.0,
            model="m",
            input=LLMInput(messages=[{"role": "user", "content": what}]),
            output=LLMOutput(content="ok"),
        )
    return ToolCallStep(step=n, timestamp=stamp, duration_ms=5.0, tool=what, input={"q": n})


def test_the_tape_counts_the_calls_made_in_order_when_it_lays_out_its_turns() -> None:
    golden = Session(
        name="s",
        input=None,
        steps=[
            _step(1, "llm", "one"),
            _step(2, "tool", "first"),
            _step(3, "tool", "second"),
            _step(4, "llm", "two"),
            _step(5, "tool", "third"),
        ],
    )
    tape = Tape(golden, rules=RequestRules(), tools=ToolCallsExpect())
    one = golden.step_list[0]
    assert isinstance(one, LLMCallStep)
    from opswald.engine.normalize import request_of

    assert tape.exact("llm_call", request_of(one)) is one
    # the turn's second tool call before its first: not the next recorded call, so the
    # tape lays its turns out; it is a call of the turn whose model call was made
    second = tape.exact("tool_call", {"tool": "second", "input": {"q": 3}})
    assert second is not None and second.step == 3
    # the model call of the next turn is not served while the first tool call is unused
    two = golden.step_list[3]
    assert isinstance(two, LLMCallStep)
    assert tape.exact("llm_call", request_of(two)) is None
    match = tape.next_call("llm_call", request_of(two), actual_step=3)
    assert match.step is None and match.finding is not None
    assert match.finding.step == 2 and "did not call first" in match.finding.message
    first = tape.tool_call("first", {"q": 2}, actual_step=3)
    assert first.step is not None and first.step.step == 2
    assert tape.exact("llm_call", request_of(two)) is two
    assert [s.step for s in tape.unused()] == [5]
    # a tape that lays out its turns before the first call serves alike
    fresh = Tape(golden, rules=RequestRules(), tools=ToolCallsExpect())
    assert fresh.tool_call("first", {"q": 2}, actual_step=1).finding is not None
