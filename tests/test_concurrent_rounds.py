"""Concurrent branches that each make several rounds of calls (`asyncio.gather` or a thread
pool of sub-agents that ask the model, call a tool, and ask again): calls that were in
flight together in the recording match in any order, so the golden's own unchanged replay
passes, however the branches interleaved when it was recorded. Calls made one after the
other still match in order."""

from __future__ import annotations

import asyncio
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

import opswald
from opswald.engine.run import Run, RunSettings, execute, judge
from opswald.session import LLMCallStep, Session, ToolCallStep

BRANCHES = ["A", "B", "C"]
ROUNDS = 2

# the latency of each recorded call, drawn from one seeded generator for every thread
# (the interleaving of the branches still differs run to run: that is what replay must
# not depend on); a few ms at least, so that calls in flight together overlap by more
# than the millisecond of a timestamp, as a model's calls do
_lock = threading.Lock()
_shared = random.Random(0)


def _next_wait() -> float:
    with _lock:  # one generator for every thread of a recording
        return _shared.uniform(0.003, 0.009)


@opswald.llm
async def ask(*, model: str, messages: list[dict[str, Any]]) -> dict[str, Any]:
    await asyncio.sleep(_next_wait())
    return {"content": "look up " + messages[0]["content"], "finish_reason": "stop"}


@opswald.tool
async def fetch(branch: str, round: int) -> dict[str, Any]:
    await asyncio.sleep(_next_wait())
    return {"branch": branch, "round": round, "found": f"{branch}{round}!"}


@opswald.llm
def ask_sync(*, model: str, messages: list[dict[str, Any]]) -> dict[str, Any]:
    time.sleep(_next_wait())
    return {"content": "look up " + messages[0]["content"], "finish_reason": "stop"}


@opswald.tool
def fetch_sync(branch: str, round: int) -> dict[str, Any]:
    time.sleep(_next_wait())
    return {"branch": branch, "round": round, "found": f"{branch}{round}!"}


def _messages(
    branch: str, round: int, last: Any, changed: str | None, rounds: tuple[int, ...]
) -> list[dict[str, Any]]:
    """A branch's request: its task, and (after the first round) the tool's last answer;
    the `changed` branches' (`"B"`, `"BC"`) is another in the `rounds` given."""
    task = f"{branch}{round}"
    if changed is not None and branch in changed and round in rounds:
        task += " (changed)"
    messages = [{"role": "user", "content": task}]
    if last is not None:
        messages.append({"role": "tool", "content": str(last["found"])})
    return messages


def gathered_agent(
    changed: str | None = None, rounds: tuple[int, ...] = (ROUNDS - 1,), extra: bool = False
) -> list[Any]:
    """Three gathered branches, each ROUNDS rounds of a model call then a tool call (the
    `changed` branch with one more model call at the end, with `extra`)."""

    async def branch(name: str) -> list[Any]:
        out: list[Any] = []
        last: Any = None
        for r in range(ROUNDS):
            await ask(model="m", messages=_messages(name, r, last, changed, rounds))
            last = await fetch(branch=name, round=r)
            out.append(last)
        if extra and name == changed:
            await ask(model="m", messages=[{"role": "user", "content": f"{name} again"}])
        return out

    async def main() -> list[Any]:
        return list(await asyncio.gather(*(branch(b) for b in BRANCHES)))

    return asyncio.run(main())


def pooled_agent(
    changed: str | None = None, rounds: tuple[int, ...] = (ROUNDS - 1,), extra: bool = False
) -> list[Any]:
    """The same branches, each in a thread of a pool."""

    def branch(name: str) -> list[Any]:
        out: list[Any] = []
        last: Any = None
        for r in range(ROUNDS):
            ask_sync(model="m", messages=_messages(name, r, last, changed, rounds))
            last = fetch_sync(branch=name, round=r)
            out.append(last)
        if extra and name == changed:
            ask_sync(model="m", messages=[{"role": "user", "content": f"{name} again"}])
        return out

    with ThreadPoolExecutor(len(BRANCHES)) as pool:
        return list(pool.map(branch, BRANCHES))


def record(agent: Any, seed: int) -> Session:
    global _shared
    _shared = random.Random(seed)
    stub = Session(name="s", input=None)
    run = execute(
        stub, lambda _: agent(), settings=RunSettings(policy="live", block_side_effects=False)
    )
    assert run.agent_traceback is None, run.agent_traceback
    return run.actual


def replay(golden: Session, agent: Any, **settings: Any) -> tuple[Run, Any]:
    run = execute(golden, lambda _: agent(), settings=RunSettings(**settings))
    return run, judge(golden, run)


def _order(golden: Session) -> str:
    """The recorded order of the branches' calls: `m` or `t`, branch, round."""
    names = []
    for step in golden.step_list:
        if isinstance(step, LLMCallStep):
            names.append("m" + str(step.input.messages[0]["content"])[:2])
        elif isinstance(step, ToolCallStep):
            names.append(f"t{step.input['branch']}{step.input['round']}")
    return " ".join(names)


def _one_branch_after_another() -> str:
    return " ".join(f"{k}{b}{r}" for b in BRANCHES for r in range(ROUNDS) for k in "mt")


@pytest.mark.parametrize("agent", [gathered_agent, pooled_agent], ids=["gather", "threads"])
def test_branches_of_several_rounds_replay_unchanged_however_they_interleaved(
    agent: Any,
) -> None:
    orders = set()
    for seed in range(8):
        golden = record(agent, seed)
        assert len(golden.step_list) == len(BRANCHES) * ROUNDS * 2
        orders.add(_order(golden))
        for _ in range(3):
            run, verdict = replay(golden, agent)
            assert verdict.passed, (seed, _order(golden), verdict.findings)
            assert run.actual.output == golden.output
            # each served call answered as the recorded call of its own branch and round
            for number, served in run.served.items():
                made = run.actual.step_list[number - 1]
                assert getattr(made, "input", None) == getattr(served, "input", None)
    # the recordings interleaved the branches (else this test proves nothing)
    assert orders - {_one_branch_after_another()}, orders


@pytest.mark.parametrize("agent", [gathered_agent, pooled_agent], ids=["gather", "threads"])
def test_a_changed_request_of_a_later_round_is_the_divergence_at_its_own_call(
    agent: Any,
) -> None:
    for seed in range(4):
        golden = record(agent, seed)
        b_last = next(
            s
            for s in golden.step_list
            if isinstance(s, LLMCallStep) and s.input.messages[0]["content"] == "B1"
        )
        _, verdict = replay(golden, lambda: agent(changed="B"))
        first = verdict.first
        assert first is not None and not verdict.passed
        assert (first.kind, first.message, first.step) == (
            "mismatch",
            "the agent sent another request",
            b_last.step,
        ), (_order(golden), first)
        assert [(d.golden, d.actual) for d in first.differences] == [("B1", "B1 (changed)")]


@opswald.llm
def plan(*, model: str, messages: list[dict[str, Any]]) -> dict[str, Any]:
    time.sleep(0.003)  # calls long enough that their recorded times cannot overlap
    return {"content": "next", "finish_reason": "stop"}


@opswald.tool
def visit(city: str) -> str:
    time.sleep(0.003)
    return f"visited {city}"


def sequential_agent(cities: list[str]) -> list[str]:
    """A model call, then its tool call, one turn after the other."""
    out = []
    for city in cities:
        plan(model="m", messages=[{"role": "user", "content": f"where after {out}?"}])
        out.append(visit(city=city))
    return out


def test_a_sequential_agent_whose_calls_come_in_another_order_still_diverges() -> None:
    golden = Session(name="s", input=None)
    golden = execute(
        golden,
        lambda _: sequential_agent(["Paris", "Oslo"]),
        settings=RunSettings(policy="live", block_side_effects=False),
    ).actual
    for _ in range(3):
        _, verdict = replay(golden, lambda: sequential_agent(["Paris", "Oslo"]))
        assert verdict.passed, verdict.findings
    _, verdict = replay(golden, lambda: sequential_agent(["Oslo", "Paris"]))
    first = verdict.first
    assert first is not None
    assert (first.kind, first.step, first.name) == ("mismatch", 2, "visit"), first
    assert [(d.golden, d.actual) for d in first.differences] == [("Paris", "Oslo")]


AGENT = """
import asyncio
import os
import random

import opswald

rng = random.Random(int(os.environ.get("SEED", "0")))


@opswald.llm
async def ask(*, model, messages):
    await asyncio.sleep(rng.uniform(0.003, 0.009))
    return {"content": "look up " + messages[0]["content"], "finish_reason": "stop"}


@opswald.tool
async def fetch(branch, round):
    await asyncio.sleep(rng.uniform(0.003, 0.009))
    return {"branch": branch, "round": round}


def run(input):
    async def branch(name):
        out = []
        for r in range(2):
            task = f"{name}{r}" + os.environ.get(f"CHANGE_{name}{r}", "")
            await ask(model="m", messages=[{"role": "user", "content": task}])
            out.append(await fetch(branch=name, round=r))
        return out

    async def main():
        return await asyncio.gather(*(branch(b) for b in input["branches"]))

    result = asyncio.run(main())
    return {"result": result, "note": os.environ.get("NOTE", "")}
"""


def test_a_recorded_golden_of_gathered_rounds_replays_from_its_file_and_updates_in_order(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Through pytest, with the golden written to disk and read back (its timestamps as
    YAML holds them): replay passes; an update of a golden that fails on its output alone
    writes every step as it was recorded, in the recorded order."""
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.delenv("NOTE", raising=False)
    pytester.makepyfile(rounds_agent=AGENT)
    pytester.makeini("[pytest]\nopswald_adapter = rounds_agent:run\npythonpath = .\n")
    pytester.mkdir("goldens")
    path = pytester.path / "goldens" / "r.golden.yaml"
    path.write_text("name: r\ninput: {branches: [A, B, C]}\n")
    pytester.runpytest("--opswald-goldens", "--opswald-mode=record").assert_outcomes(passed=1)
    recorded = path.read_text()
    assert recorded.count("type: llm_call") == 6 and recorded.count("Z'\n") >= 12, recorded
    for _ in range(3):
        result = pytester.runpytest("--opswald-goldens", "-p", "no:randomly")
        result.assert_outcomes(passed=1)
    monkeypatch.setenv("NOTE", "new")
    result = pytester.runpytest("--opswald-goldens", "--opswald-update")
    result.assert_outcomes(passed=1)
    written = path.read_text()
    path.with_name("was.yaml").write_text(written)
    assert "note: new" in written
    steps = recorded[recorded.index("steps:") : recorded.index("\noutput:")]
    assert steps in written, written  # the recorded steps, byte for byte, in their order
    # an update whose divergence is branch B's second request: that step alone is new
    monkeypatch.setenv("CHANGE_B1", " (changed)")
    pytester.runpytest("--opswald-goldens").assert_outcomes(failed=1)
    pytester.runpytest("--opswald-goldens", "--opswald-update").assert_outcomes(passed=1)
    before, after = opswald.load(path.with_name("was.yaml")), opswald.load(path)
    changed = [
        (g.step, g.type)
        for g, w in zip(before.step_list, after.step_list, strict=True)
        if g.model_dump() != w.model_dump()
    ]
    b1 = next(s.step for s in before.step_list if "B1" in str(getattr(s, "input", "")))
    assert changed == [(b1, "llm_call")], (recorded, path.read_text())


@pytest.mark.parametrize("agent", [gathered_agent, pooled_agent], ids=["gather", "threads"])
def test_an_update_keeps_the_calls_of_branches_the_divergence_did_not_touch(agent: Any) -> None:
    """An update whose divergence is a call of a concurrency region (branch B's second
    request changed) runs that call live and writes it anew; the calls of the other
    branches that were in flight with it, however they interleave with it on replay, are
    unchanged and are written as recorded (timestamps and all), not run live again."""
    from opswald.writeback import blessed

    for seed in range(4):
        golden = record(agent, seed)
        run = execute(golden, lambda _: agent(changed="B"), settings=RunSettings(policy="update"))
        assert run.agent_traceback is None, run.agent_traceback
        written = blessed(golden, run).session
        assert len(written.step_list) == len(golden.step_list)
        changed = [
            (w.step, w.type, w.input.messages[0]["content"] if isinstance(w, LLMCallStep) else w)
            for g, w in zip(golden.step_list, written.step_list, strict=True)
            if g.model_dump() != w.model_dump()
        ]
        b_last = next(
            s.step
            for s in golden.step_list
            if isinstance(s, LLMCallStep) and s.input.messages[0]["content"] == "B1"
        )
        # the changed call in its golden step's place; every other step as recorded
        assert changed == [(b_last, "llm_call", "B1 (changed)")], _order(golden)


def _content(step: Any) -> Any:
    return step.input.messages[0]["content"] if isinstance(step, LLMCallStep) else step


def _strip_lanes(golden: Session) -> Session:
    steps = [s.model_copy(update={"lane": None}) for s in golden.step_list]
    return golden.model_copy(update={"steps": steps})


@pytest.mark.parametrize(
    ("agent", "changed", "lanes"),
    [
        (gathered_agent, "B", True),
        (pooled_agent, "B", True),
        # two branches changed: each branch's calls in its own lane's places
        (gathered_agent, "BC", True),
    ],
    ids=["gather", "threads", "two-branches"],
)
def test_an_update_writes_every_changed_call_of_a_branch_in_its_golden_steps_place(
    agent: Any, changed: str, lanes: bool
) -> None:
    """Every request of branch B changed: each changed call is written in the place of the
    golden call of its lane it replaced, in the branch's order, so the other branches'
    steps keep their numbers (the calls after the first changed one, made live, used to
    be written where they happened)."""
    from opswald.writeback import blessed

    for seed in range(4):
        golden = record(agent, seed)
        if not lanes:
            golden = _strip_lanes(golden)
        run = execute(
            golden,
            lambda _: agent(changed=changed, rounds=(0, 1)),
            settings=RunSettings(policy="update"),
        )
        assert run.agent_traceback is None, run.agent_traceback
        written = blessed(golden, run).session
        written_changed = [
            (w.step, _content(w), w.lane)
            for g, w in zip(golden.step_list, written.step_list, strict=True)
            if g.model_dump() != w.model_dump()
        ]
        expected = [
            (s.step, _content(s) + " (changed)", s.lane)
            for s in golden.step_list
            if isinstance(s, LLMCallStep) and _content(s)[0] in changed
        ]
        assert len(expected) == 2 * len(changed)
        assert written_changed == expected, (seed, _order(golden), _order(written))


@pytest.mark.parametrize(
    ("changed", "extra", "lanes"),
    [("B", False, False), ("B", True, True)],
    ids=["no-lanes", "a-call-the-golden-does-not-have"],
)
def test_an_update_whose_later_changed_calls_are_not_clear_writes_them_where_they_happened(
    changed: str, extra: bool, lanes: bool
) -> None:
    """Where it is not clear which golden call a later live call replaced (a golden without
    lanes; a call the golden does not have), the first changed call is written in its
    golden step's place and the later live calls where they happened in the run. (A
    golden without lanes has its concurrency regions from its recorded times, which a
    call made now shares with none: written among them, it would split their region.)"""
    from opswald.writeback import blessed

    for seed in range(4):
        golden = record(gathered_agent, seed)
        if not lanes:
            golden = _strip_lanes(golden)
        run = execute(
            golden,
            lambda _: gathered_agent(changed=changed, rounds=(0, 1), extra=extra),
            settings=RunSettings(policy="update"),
        )
        assert run.agent_traceback is None, run.agent_traceback
        written = blessed(golden, run).session.step_list
        actual = run.actual.step_list
        live = [k for k, s in enumerate(actual) if s.step not in run.served]
        b0 = next(s.step for s in golden.step_list if _content(s) == "B0")
        assert [_content(written[b0 - 1])] == ["B0 (changed)"]
        later = [k for k in live if k != run.fork_step - 1]  # type: ignore[operator]
        assert later, (seed, _order(golden))
        for k in later:
            assert written[k].model_dump() == actual[k].model_dump(), (seed, k, _order(golden))
