"""Lanes: which thread or asyncio task made each call, recorded for sessions whose calls
came from more than one. Calls of threads or tasks that ran together may come in any
order on replay even when their recorded spans did not overlap (quick model answers and a
branch's own work between its calls: a replay, answering at once, interleaves the
branches another way)."""

from __future__ import annotations

import asyncio
import json
import re
import sys
import textwrap
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

import opswald
from opswald import files
from opswald.engine.run import RunSettings, execute, judge
from opswald.engine.tape import regions
from opswald.session import (
    LLMCallStep,
    Session,
    ToolCallStep,
    UserInputStep,
    lane_gathers,
    lane_parents,
)

# --------------------------------------------------------------- the regions lanes make


def _calls(lanes: list[Any]) -> list[Any]:
    return [
        UserInputStep(step=i + 1) if lane == "U" else LLMCallStep(step=i + 1, lane=lane)
        for i, lane in enumerate(lanes)
    ]


def _region_runs(lanes: list[Any], parents: dict[int, int]) -> list[list[int]]:
    """The call indices of each region, in order."""
    region_of, starts = regions(_calls(lanes), parents)
    return [[i for i, r in enumerate(region_of) if r == k] for k in range(len(starts))]


WAITED_2_3 = {2: 1, 3: 1}


@pytest.mark.parametrize(
    ("lanes", "parents", "runs"),
    [
        # a task that asks first, gathers two branches (and waits for them), and asks
        # again after them: its first and last calls keep their places; the branches'
        # calls are one region
        ([1, 2, 3, 2, 3, 1], WAITED_2_3, [[1, 2, 3, 4]]),
        ([1, 1, 2, 3, 2, 3, 1, 1], WAITED_2_3, [[2, 3, 4, 5]]),
        # ... unless it made a call while they ran: then all its calls are free of theirs
        ([1, 2, 3, 1, 2, 3, 1], WAITED_2_3, [[0, 1, 2, 3, 4, 5, 6]]),
        # sibling branches whose runs overlap, however few calls interleave
        ([1, 2, 1, 1, 2, 2], {}, [[0, 1, 2, 3, 4, 5]]),
        ([1, 2, 1, 2, 1], {}, [[0, 1, 2, 3, 4]]),
        # sub-agents run as tasks one after the other and awaited, the one that started
        # them calling between and after: in order
        ([1, 2, 2, 1, 3, 3, 1], WAITED_2_3, []),
        ([1, 2, 2, 3, 3, 1], WAITED_2_3, []),
        # ... the same calls from tasks left running while their starter worked on (it did
        # not wait for them): free
        ([1, 2, 2, 1, 3, 3, 1], {}, [[0, 1, 2, 3, 4, 5, 6]]),
        # `asyncio.wait_for` around each call (a task of one call each, awaited)
        ([1, 2, 3, 4, 1], {2: 1, 3: 1, 4: 1}, []),
        # lanes one after the other (a thread that took over): in order
        ([1, 1, 2, 2], {}, []),
        # one lane, or none (goldens recorded before lanes, or written by hand)
        ([1, 1, 1], {}, []),
        ([None, None, None], {}, []),
        # a user input made in one lane does not split the region of the others (it is
        # still answered in order)
        ([1, 2, 1, 2, "U", 2, 1, 2, 1], {}, [[0, 1, 2, 3, 4, 5, 6, 7, 8]]),
    ],
)
def test_regions_of_lanes(lanes: list[Any], parents: dict[int, int], runs: list[list[int]]) -> None:
    assert _region_runs(lanes, parents) == runs


def test_with_lanes_timestamps_make_no_region() -> None:
    """Calls whose recorded spans overlap make a region in a golden without lanes; with
    lanes, two calls of one lane were made one after the other (a stream read on while
    another call was made), whatever their times say."""
    stamp = "2026-01-05T09:30:12.{:03d}Z"
    steps = [
        LLMCallStep(step=1, timestamp=stamp.format(0), duration_ms=10),
        LLMCallStep(step=2, timestamp=stamp.format(1), duration_ms=10),
        LLMCallStep(step=3, timestamp=stamp.format(100), duration_ms=1),
    ]
    assert regions(steps)[0] == [0, 0, -1]
    laned = [s.model_copy(update={"lane": 1}) for s in steps]
    assert regions(laned)[0] == [-1, -1, -1]


# --------------------------------------------------------------- recording lanes


@opswald.llm
async def ask(*, model: str, messages: list[dict[str, Any]]) -> dict[str, Any]:
    await asyncio.sleep(0.002)
    return {"content": "look up " + messages[0]["content"], "finish_reason": "stop"}


@opswald.tool
async def work(task: str) -> str:
    return task + " done"


@opswald.llm
def ask_sync(*, model: str, messages: list[dict[str, Any]]) -> dict[str, Any]:
    time.sleep(0.002)
    return {"content": "look up " + messages[0]["content"], "finish_reason": "stop"}


@opswald.tool
def work_sync(task: str) -> str:
    return task + " done"


def _task_of(step: Any) -> str:
    if isinstance(step, LLMCallStep):
        return str(step.input.messages[0]["content"])
    assert isinstance(step, ToolCallStep)
    return str(step.input["task"])


def gathered(_: Any) -> list[Any]:
    async def branch(name: str) -> list[str]:
        out = []
        for r in range(2):
            await ask(model="m", messages=[{"role": "user", "content": f"{name}{r}"}])
            out.append(await work(task=f"{name}{r}"))
        return out

    async def main() -> list[Any]:
        first = await ask(model="m", messages=[{"role": "user", "content": "plan"}])
        out = await asyncio.gather(*(branch(b) for b in "ABC"))
        await ask(model="m", messages=[{"role": "user", "content": "sum up"}])
        return [first["content"], *out]

    return asyncio.run(main())


def pooled(_: Any) -> list[Any]:
    together = threading.Barrier(3)  # three threads, one a branch (none reused)

    def branch(name: str) -> list[str]:
        together.wait(5)
        out = []
        for r in range(2):
            ask_sync(model="m", messages=[{"role": "user", "content": f"{name}{r}"}])
            out.append(work_sync(task=f"{name}{r}"))
        return out

    ask_sync(model="m", messages=[{"role": "user", "content": "plan"}])
    with ThreadPoolExecutor(3) as pool:
        out = list(pool.map(branch, "ABC"))
    ask_sync(model="m", messages=[{"role": "user", "content": "sum up"}])
    return out


def sequential(_: Any) -> list[str]:
    out = []
    for name in "ABC":
        ask_sync(model="m", messages=[{"role": "user", "content": f"{name}0"}])
        out.append(work_sync(task=f"{name}0"))
    return out


def _record(agent: Any) -> Session:
    run = execute(
        Session(name="s", input=None),
        agent,
        settings=RunSettings(policy="live", block_side_effects=False),
    )
    assert run.agent_traceback is None, run.agent_traceback
    return run.actual


@pytest.mark.parametrize("agent", [gathered, pooled], ids=["gather", "threads"])
def test_each_branch_records_its_own_lane(agent: Any) -> None:
    golden = _record(agent)
    by_branch: dict[str, set[Any]] = {}
    for step in golden.step_list:
        by_branch.setdefault(_task_of(step)[0], set()).add(step.lane)
    # the calls of each branch share one lane, and no two branches share one; the
    # planning and summing calls are the lane that started the branches
    lanes = {name: seen.pop() for name, seen in by_branch.items() if len(seen) == 1}
    assert set(lanes) == {"p", "s", "A", "B", "C"}, by_branch
    assert lanes["p"] == lanes["s"] == 1
    assert len({lanes["A"], lanes["B"], lanes["C"], 1}) == 4
    assert sorted(set(lanes.values())) == [1, 2, 3, 4]
    text = files.dumps(golden)
    assert text.count("    lane: ") == len(golden.step_list)
    again = files.loads(text)
    assert [s.lane for s in again.step_list] == [s.lane for s in golden.step_list]


def test_a_sequential_session_writes_no_lanes() -> None:
    golden = _record(sequential)
    assert [s.lane for s in golden.step_list] == [None] * 6
    assert "lane" not in files.dumps(golden)


def test_a_sequential_agent_run_in_a_thread_of_its_own_writes_no_lanes() -> None:
    def agent(x: Any) -> Any:
        with ThreadPoolExecutor(1) as pool:
            return pool.submit(sequential, x).result()

    assert "lane" not in files.dumps(_record(agent))


@pytest.mark.parametrize("agent", [gathered, pooled], ids=["gather", "threads"])
def test_a_replay_keeps_the_recorded_lanes_and_passes(agent: Any) -> None:
    golden = _record(agent)
    for _ in range(3):
        run = execute(golden, agent, settings=RunSettings())
        verdict = judge(golden, run)
        assert verdict.passed, verdict.findings
        assert sorted((_task_of(s), s.lane) for s in run.actual.step_list) == sorted(
            (_task_of(s), s.lane) for s in golden.step_list
        )


def test_a_bad_lane_is_a_load_error_at_its_line() -> None:
    text = textwrap.dedent(
        """\
        name: g
        steps:
          - step: 1
            type: tool_call
            tool: t
            lane: 0
        output: null
        """
    )
    with pytest.raises(files.GoldenLoadError) as info:
        files.loads(text)
    assert str(info.value).startswith("<string>:6: step 1 › lane: "), str(info.value)
    # a lane number past the highest a golden may have (QA: `lane: 300000000` loaded, then
    # the replay built a list as long to write the lanes' parents, and ran out of memory)
    with pytest.raises(files.GoldenLoadError, match=r"step 1 › lane: .*1000000"):
        files.loads(text.replace("lane: 0", "lane: 300000000"))


@pytest.mark.parametrize(
    ("written", "said"),
    [
        ("3", "must be a list with, for lanes 1, 2, ... in turn, the lane that started it"),
        ("{a: 1}", ", not a mapping"),
        ("[0, 1, 5]", "entry 3 is 5, not a lane number from 0 to 3"),
        ("[0, -1]", "entry 2 is -1, not a lane number from 0 to 2"),
        ("[0, x]", "entry 2 is 'x', not a lane number"),
        ("[0, true]", "entry 2 is True, not a lane number"),
        ("[0, 2]", "lane 2 cannot have started itself"),
    ],
)
def test_bad_lane_parents_are_a_load_error_naming_them(written: str, said: str) -> None:
    """QA: any value was taken (what was not a lane number counted as none), so a hand
    edit that broke it went unnoticed by `opswald validate`."""
    text = f"name: g\nmetadata:\n  lane_parents: {written}\nsteps: []\noutput: null\n"
    with pytest.raises(files.GoldenLoadError) as info:
        files.loads(text)
    message = str(info.value)
    # at the key's line (not `metadata:`'s)
    assert message.startswith("<string>:3: metadata.lane_parents: lane_parents"), message
    assert said in message, message
    assert "(got" not in message, message
    for fine in ("[0, 1, 0]", "[]", "null"):
        assert files.loads(text.replace(written, fine)).steps == []


# ------------------------------------------- replay when recorded spans did not overlap

# Two gathered branches. Branch A thinks for 30 ms between its model call and its tool
# call; branch B does not. The golden below was recorded with model answers taking long
# enough that A's tool call and second model call came before B's tool call; their spans
# did not overlap (1 ms each, gaps between). Replay answers at once, so B's tool call and
# second model call now come before A's tool call.
SPLIT_GOLDEN = """\
schema_version: 1
name: split
metadata:
  recorded_at: '2026-01-05T09:30:12Z'
  recorded_with: pytest-opswald 0.1.0
  duration_ms: 60.0
{parents}input: null
steps:
{steps}output:
  - [A0 done]
  - [B0 done]
"""

_ORDER = [("A", 0, "llm_call"), ("B", 0, "llm_call"), ("A", 0, "tool_call"),
          ("A", 1, "llm_call"), ("B", 0, "tool_call"), ("B", 1, "llm_call")]  # fmt: skip


def _split_golden(
    lanes: bool, order: list[tuple[str, int, str]] = _ORDER, parents: str = "[0, 0]"
) -> str:
    steps = []
    for k, (branch, r, kind) in enumerate(order, start=1):
        lane = f"    lane: {1 if branch == 'A' else 2}\n" if lanes else ""
        head = (
            f"  - step: {k}\n    type: {kind}\n"
            f"    timestamp: '2026-01-05T09:30:12.{10 * k:03d}Z'\n    duration_ms: 1.0\n{lane}"
        )
        if kind == "llm_call":
            body = (
                f"    model: m\n    input:\n      messages:\n"
                f"        - role: user\n          content: {branch}{r}\n"
                f"    output:\n      content: look up {branch}{r}\n      finish_reason: stop\n"
            )
        else:
            body = (
                f"    tool: work\n    input:\n      task: {branch}{r}\n"
                f"    output: {branch}{r} done\n"
            )
        steps.append(head + body)
    started = f"  lane_parents: {parents}\n" if lanes else ""
    return SPLIT_GOLDEN.format(steps="".join(steps), parents=started)


def split_agent(_: Any, think_a: float = 0.03, think_b: float = 0.0) -> list[Any]:
    async def branch(name: str, think: float) -> list[str]:
        await ask(model="m", messages=[{"role": "user", "content": f"{name}0"}])
        await asyncio.sleep(think)
        done = await work(task=f"{name}0")
        if name == "A":
            await ask(model="m", messages=[{"role": "user", "content": "A1"}])
        else:
            await ask(model="m", messages=[{"role": "user", "content": "B1"}])
        return [done]

    async def main() -> list[Any]:
        return list(await asyncio.gather(branch("A", think_a), branch("B", think_b)))

    return asyncio.run(main())


def test_branches_whose_calls_did_not_overlap_replay_in_another_order_with_lanes() -> None:
    with_lanes = files.loads(_split_golden(lanes=True))
    for _ in range(3):
        verdict = judge(with_lanes, execute(with_lanes, split_agent, settings=RunSettings()))
        assert verdict.passed, verdict.findings
    # the same golden without its lanes: timestamps alone take the calls for calls made
    # one after the other, and the replay, in another order, fails (what lanes fix)
    without = files.loads(_split_golden(lanes=False))
    verdict = judge(without, execute(without, split_agent, settings=RunSettings()))
    assert not verdict.passed


_WITHIN = [("A", 0, "llm_call"), ("B", 0, "llm_call"), ("B", 0, "tool_call"),
           ("B", 1, "llm_call"), ("A", 0, "tool_call"), ("A", 1, "llm_call")]  # fmt: skip


def test_a_branch_whose_calls_all_came_between_two_of_another_branch_is_free_of_them() -> None:
    """Recorded with branch B quick and A slow: B made all its calls while A worked on its
    own between two calls, as a task that A started and waited for would. Both were
    started by the run's own flow (`lane_parents`: gathered branches), so replayed with A
    quick and B slow, A's tool call and last call may come before B's tool call."""
    golden = files.loads(_split_golden(lanes=True, order=_WITHIN))
    for _ in range(3):
        run = execute(golden, lambda x: split_agent(x, 0.0, 0.03), settings=RunSettings())
        made = [_task_of(s) + s.type[0] for s in run.actual.step_list]
        assert made == ["A0l", "B0l", "A0t", "A1l", "B0t", "B1l"], made
        verdict = judge(golden, run)
        assert verdict.passed, verdict.findings
    # the same golden with B started by A (a task A ran and waited for): A's calls after
    # B's run came after it, and a replay in which they come before diverges
    nested = files.loads(_split_golden(lanes=True, order=_WITHIN, parents="[0, 1]"))
    verdict = judge(
        nested, execute(nested, lambda x: split_agent(x, 0.0, 0.03), settings=RunSettings())
    )
    assert not verdict.passed


def test_tasks_run_and_waited_for_one_after_the_other_keep_their_order() -> None:
    """Sub-agents run as tasks one after the other (`await asyncio.create_task(...)`), and
    `asyncio.wait_for` around model calls (a task each on Python 3.11): each in a lane of
    its own, started by the one that waited for it; calls in another order diverge. From
    Python 3.12 on, `wait_for` awaits in the caller's task: one flow, no lanes.
    (Model calls back to back with no tool call between them may start in any order
    whatever their lanes: a burst, see README.)"""

    def agent(order: str, wrap: bool) -> Any:
        def run(_: Any) -> Any:
            async def sub(name: str) -> None:
                await ask(model="m", messages=[{"role": "user", "content": f"{name}0"}])
                await work(task=f"{name}0")

            async def main() -> None:
                await ask(model="m", messages=[{"role": "user", "content": "plan"}])
                for name in order:
                    if wrap:
                        await asyncio.wait_for(
                            ask(model="m", messages=[{"role": "user", "content": name}]), 5
                        )
                        await work(task=name)
                    else:
                        await asyncio.create_task(sub(name))
                await ask(model="m", messages=[{"role": "user", "content": "sum up"}])

            asyncio.run(main())

        return run

    for wrap in (False, True):
        golden = _record(agent("ABC", wrap))
        if wrap and sys.version_info >= (3, 12):
            # Python 3.12's wait_for awaits in the task that calls it: one flow, no lanes
            assert {s.lane for s in golden.step_list} == {None}, golden.step_list
            assert "lane_parents" not in golden.metadata, golden.metadata
        else:
            assert len({s.lane for s in golden.step_list}) == 4, golden.step_list
            # lane 1 is the agent's main task, started by the run itself (0)
            assert golden.metadata["lane_parents"] == [0, 1, 1, 1], golden.metadata
            text = files.dumps(golden)
            assert files.loads(text).metadata["lane_parents"] == [0, 1, 1, 1], text
        verdict = judge(golden, execute(golden, agent("ABC", wrap), settings=RunSettings()))
        assert verdict.passed, verdict.findings
        verdict = judge(golden, execute(golden, agent("ACB", wrap), settings=RunSettings()))
        assert not verdict.passed, wrap


# --------------------------------------------------------------- through pytest

AGENT = """
import asyncio, os
import opswald

CHANGED = os.environ.get("CHANGED", "")

@opswald.llm
async def ask(*, model, messages):
    await asyncio.sleep(0.005)
    return {"content": "call work for " + messages[0]["content"], "finish_reason": "stop"}

@opswald.tool
async def work(task):
    with open("live.log", "a") as log:
        log.write(task + "\\n")
    return task + " done"

async def branch(b):
    out = []
    for r in range(2):
        task = f"{b}{r}" + ("!" if b == CHANGED else "")
        await ask(model="m", messages=[{"role": "user", "content": task}])
        await asyncio.sleep(float(os.environ.get("THINK_" + b, "0")))
        out.append(await work(task=f"{b}{r}"))
    return out

def run(input):
    async def main():
        return await asyncio.gather(*(branch(b) for b in input["branches"]))
    return asyncio.run(main())
"""


def _project(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> Path:
    for var in ("CI", "CHANGED", "THINK_A", "THINK_B", "THINK_C"):
        monkeypatch.delenv(var, raising=False)
    pytester.makepyfile(lanes_agent=AGENT)
    pytester.makeini("[pytest]\nopswald_adapter = lanes_agent:run\npythonpath = .\n")
    pytester.mkdir("goldens")
    path = pytester.path / "goldens" / "g.golden.yaml"
    path.write_text("name: g\ninput: {branches: ABC}\n")
    return path


def test_a_golden_recorded_with_lanes_replays_when_the_branches_change_pace(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Recorded with every branch thinking 10 ms between its calls; replayed with branch
    B thinking no more (a replay's answers come at once, other work takes its own time):
    the branches interleave another way, and the golden still passes."""
    path = _project(pytester, monkeypatch)
    for b in "ABC":
        monkeypatch.setenv("THINK_" + b, "0.01")
    pytester.runpytest("--opswald-goldens", "--opswald-mode=record").assert_outcomes(passed=1)
    text = path.read_text()
    assert len(set(re.findall(r"lane: (\d+)", text))) == 3, text
    monkeypatch.setenv("THINK_B", "0")
    for _ in range(3):
        pytester.runpytest("--opswald-goldens", "-p", "no:randomly").assert_outcomes(passed=1)
    pytester.runpytest("--opswald-goldens", "-n", "2").assert_outcomes(passed=1)


def test_a_changed_branch_is_the_only_finding_and_an_update_leaves_the_others_as_recorded(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _project(pytester, monkeypatch)
    for b in "ABC":
        monkeypatch.setenv("THINK_" + b, "0.003")
    pytester.runpytest("--opswald-goldens", "--opswald-mode=record").assert_outcomes(passed=1)
    before = opswald.load(path)
    monkeypatch.setenv("THINK_B", "0")
    monkeypatch.setenv("CHANGED", "B")
    result = pytester.runpytest("--opswald-goldens", "-p", "no:randomly")
    result.assert_outcomes(failed=1)
    b0 = next(s.step for s in before.step_list if _task_of(s) == "B0" and s.type == "llm_call")
    headlines = [line for line in result.outlines if re.match(r"step \d+ of 12 · ", line)]
    assert headlines == [f"step {b0} of 12 · llm_call m: the agent sent another request"], (
        result.stdout.str()
    )
    (pytester.path / "live.log").unlink()
    pytester.runpytest("--opswald-goldens", "--opswald-update").assert_outcomes(passed=1)
    # no tool ran live: branch B's tool calls have their recorded arguments, the other
    # branches were served as recorded
    assert not (pytester.path / "live.log").exists()
    after = opswald.load(path)
    changed = sorted(
        _task_of(a)
        for a in after.step_list
        if not any(a.model_dump(exclude={"step"}) == g.model_dump(exclude={"step"})
                   for g in before.step_list)
    )  # fmt: skip
    assert changed == ["B0!", "B1!"], changed
    pytester.runpytest("--opswald-goldens").assert_outcomes(passed=1)


SDK_AGENT = """
import os, time
from concurrent.futures import ThreadPoolExecutor
import anthropic
import opswald

@opswald.tool
def work(task):
    time.sleep(float(os.environ.get("THINK", "0.003")))
    return task + " done"

def run(input):
    client = anthropic.Anthropic(max_retries=0)
    def branch(b):
        out = []
        for r in range(2):
            client.messages.create(
                model="claude-x", max_tokens=50,
                messages=[{"role": "user", "content": f"{b}{r}"}],
            )
            out.append(work(task=f"{b}{r}"))
        return out
    with ThreadPoolExecutor(3) as pool:
        return list(pool.map(branch, "ABC"))
"""


def test_a_thread_pool_of_real_sdk_calls_replays_with_its_lanes(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The real anthropic client in a thread pool, recorded against the fake provider
    (which answers within a millisecond, so the branches' calls barely overlap): the
    replay passes however the threads now interleave, also when the branches' own work
    takes another time. (Without its lanes such a golden failed its replay when the
    branches' calls happened not to overlap in the recording.)"""
    from conftest import sdk_setup
    from fakeprovider import FakeProvider

    monkeypatch.delenv("THINK", raising=False)
    sdk_setup(
        pytester,
        monkeypatch,
        module="pool_agent",
        agent=SDK_AGENT,
        golden="goldens/g.golden.yaml",
        stub="name: g\ninput: null\n",
    )
    with FakeProvider(script=[]) as fp:
        monkeypatch.setenv("ANTHROPIC_BASE_URL", fp.base_url)
        result = pytester.runpytest("--opswald-goldens", "--opswald-mode=record")
        result.assert_outcomes(passed=1)
    text = (pytester.path / "goldens" / "g.golden.yaml").read_text()
    assert sorted(set(re.findall(r"lane: (\d+)", text))) == ["1", "2", "3"], text
    for think in ("0", "0.003", "0.02"):
        monkeypatch.setenv("THINK", think)
        pytester.runpytest("--opswald-goldens", "-p", "no:randomly").assert_outcomes(passed=1)
    pytester.runpytest("--opswald-goldens", "-n", "2").assert_outcomes(passed=1)


def test_an_update_writes_each_changed_call_of_a_branch_in_its_golden_steps_place(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Both of branch B's requests changed: each changed call is written in the place of
    the golden step it replaced (same lane, same model, in the branch's order), so every
    other step keeps its number, a comment and a note on a step after them stay on it,
    and a note on a changed call stays on the call that replaced it. (The second changed
    call, made live after the others were served, used to be written where it happened,
    renumbering the steps of branches A and C.)"""
    path = _project(pytester, monkeypatch)
    for b in "ABC":
        monkeypatch.setenv("THINK_" + b, "0.003")
    pytester.runpytest("--opswald-goldens", "--opswald-mode=record").assert_outcomes(passed=1)
    before = opswald.load(path)
    b1 = next(s.step for s in before.step_list if _task_of(s) == "B1" and s.type == "llm_call")
    # the last step: a comment on it and a note on it must stay on it
    last = before.step_list[-1]
    assert last.step > b1 and _task_of(last)[0] != "B", [_task_of(s) for s in before.step_list]
    text = path.read_text()
    head = f"  - step: {last.step}\n"
    assert head in text
    text = text.replace(head, f"  # checked by hand\n{head}")
    text += f"notes:\n  - step: {last.step}\n    text: looked at\n"
    text += f"  - step: {b1}\n    text: asks for B1\n"
    path.write_text(text)
    monkeypatch.setenv("THINK_B", "0")
    monkeypatch.setenv("CHANGED", "B")
    result = pytester.runpytest("--opswald-goldens", "--opswald-update", "-p", "no:randomly")
    result.assert_outcomes(passed=1)
    after = opswald.load(path)
    assert len(after.step_list) == len(before.step_list)
    changed = []
    for g, w in zip(before.step_list, after.step_list, strict=True):
        if w.model_dump() == g.model_dump():
            continue
        changed.append((w.step, w.type, _task_of(w), w.lane))
        # a changed call of branch B, in the place of the golden call it replaced
        assert (w.type, _task_of(w), w.lane) == (g.type, _task_of(g) + "!", g.lane), (g, w)
    b0 = next(s.step for s in before.step_list if _task_of(s) == "B0" and s.type == "llm_call")
    lane = next(s.lane for s in before.step_list if _task_of(s) == "B0")
    assert changed == [(b0, "llm_call", "B0!", lane), (b1, "llm_call", "B1!", lane)], [
        (s.step, _task_of(s)) for s in after.step_list
    ]
    written = path.read_text()
    assert f"  # checked by hand\n{head}" in written, written
    # a note on a changed call follows the call that replaced it
    assert [(n.step, n.text) for n in after.notes] == [
        (last.step, "looked at"),
        (b1, "asks for B1"),
    ]
    for args in ([], ["-n", "2"]):
        pytester.runpytest("--opswald-goldens", *args).assert_outcomes(passed=1)


def _pooled_changed(changed: str) -> Any:
    def agent(_: Any) -> list[Any]:
        together = threading.Barrier(3)  # a thread a branch (a loaded machine may start
        # one thread only, which runs the three one after the other: no lanes then)

        def branch(name: str) -> list[str]:
            together.wait(5)
            out = []
            for r in range(2):
                task = f"{name}{r}" + ("!" if name == changed else "")
                ask_sync(model="m", messages=[{"role": "user", "content": task}])
                out.append(work_sync(task=f"{name}{r}"))
            return out

        with ThreadPoolExecutor(3) as pool:
            return list(pool.map(branch, "ABC"))

    return agent


@pytest.mark.parametrize("changed", ["A", "B", "C"])
def test_an_update_whose_first_call_of_a_branch_changed_keeps_each_branch_in_one_lane(
    changed: str,
) -> None:
    """The thread whose first call changed runs it live: it takes the lane of the golden
    call it replaced, not a new number that another thread takes from a served call."""
    golden = _record(_pooled_changed(""))
    for _ in range(3):
        run = execute(golden, _pooled_changed(changed), settings=RunSettings(policy="update"))
        assert run.agent_traceback is None, run.agent_traceback
        by_branch: dict[str, set[Any]] = {}
        for step in run.actual.step_list:
            by_branch.setdefault(_task_of(step)[0], set()).add(step.lane)
        recorded = {_task_of(s)[0]: s.lane for s in golden.step_list}
        assert by_branch == {b: {recorded[b]} for b in "ABC"}, (by_branch, recorded)


def _background_agent(branch_work: float) -> Any:
    def run(_: Any) -> Any:
        async def branch(name: str) -> None:
            await ask(model="m", messages=[{"role": "user", "content": f"{name}0"}])
            await asyncio.sleep(branch_work)  # the branch's own work
            await work(task=name)
            await ask(model="m", messages=[{"role": "user", "content": f"{name}1"}])

        async def main() -> None:
            await ask(model="m", messages=[{"role": "user", "content": "before"}])
            tasks = [asyncio.create_task(branch(b)) for b in "AB"]  # in the background
            await asyncio.sleep(0.03)  # the main task's own work meanwhile
            await work(task="during")
            await ask(model="m", messages=[{"role": "user", "content": "during"}])
            await asyncio.gather(*tasks)

        asyncio.run(main())

    return run


def test_tasks_left_running_while_their_starter_works_on_are_free_of_its_calls() -> None:
    """Branches started in the background that happened to end before the main task's
    next call (it was working on its own, not waiting for them): slower at replay, their
    calls come after that call, and the golden still passes (QA conc4)."""
    golden = _record(_background_agent(0.001))
    assert "lane_parents" not in golden.metadata, golden.metadata  # none was waited for
    order = [_task_of(s) for s in golden.step_list]
    assert order.index("during") > max(order.index("A1"), order.index("B1")), order
    for _ in range(2):
        run = execute(golden, _background_agent(0.05), settings=RunSettings())
        made = [_task_of(s) for s in run.actual.step_list]
        assert made.index("during") < made.index("A1"), made  # another order than recorded
        verdict = judge(golden, run)
        assert verdict.passed, verdict.findings


def _after_gather_agent(swap: bool) -> Any:
    def run(_: Any) -> Any:
        async def main() -> None:
            await asyncio.gather(
                *(ask(model="m", messages=[{"role": "user", "content": b}]) for b in "AB")
            )
            for name in ["archive", "report"] if swap else ["report", "archive"]:
                await work(task=name)
                await ask(model="m", messages=[{"role": "user", "content": "did " + name}])

        asyncio.run(main())

    return run


def _to_thread_agent(order: str) -> Any:
    def run(_: Any) -> Any:
        async def main() -> None:
            await ask(model="m", messages=[{"role": "user", "content": "plan"}])
            for name in order:
                await asyncio.to_thread(work_sync, task=name)
                await ask(model="m", messages=[{"role": "user", "content": "after " + name}])

        asyncio.run(main())

    return run


@pytest.mark.parametrize(
    ("agent", "changed"),
    [
        (_after_gather_agent, True),
        (_to_thread_agent, "CBA"),
    ],
    ids=["calls-after-a-gather", "to_thread-one-after-another"],
)
def test_calls_made_one_after_the_other_around_concurrency_still_diverge_in_another_order(
    agent: Any, changed: Any
) -> None:
    """The task that gathered branches makes its later calls one after the other: swapped,
    they diverge (timestamps chained them into the gather's region: a call begun within a
    millisecond of its end joined it, and the next within one of that call's end...); so
    do calls sent to a thread one at a time with `asyncio.to_thread`, each a run of its own
    that the task waited for (one worker thread's lane used to span them all) (QA conc4)."""
    unchanged = False if changed is True else "ABC"
    golden = _record(agent(unchanged))
    verdict = judge(golden, execute(golden, agent(unchanged), settings=RunSettings()))
    assert verdict.passed, verdict.findings
    verdict = judge(golden, execute(golden, agent(changed), settings=RunSettings()))
    assert not verdict.passed


def test_a_recording_writes_the_lane_parents_of_its_own_run_only() -> None:
    """Recording a golden again (`--opswald-mode=rerecord`) writes which lanes waited for
    which in the new run, not the old file's (QA conc5: stale `lane_parents` made the new
    recording's background task a waited-for one)."""
    stale = Session(name="s", input=None, metadata={"lane_parents": [0, 1, 1]})
    run = execute(
        stale,
        _background_agent(0.001),
        settings=RunSettings(policy="live", block_side_effects=False),
    )
    assert run.agent_traceback is None, run.agent_traceback
    assert "lane_parents" not in run.actual.metadata, run.actual.metadata


SNAPSHOT_AGENT = """
import asyncio, os, time
from concurrent.futures import ThreadPoolExecutor
import opswald

CHANGED = os.environ.get("CHANGED", "")
STATE = os.environ.get("STATE", "")

def _second(b):
    return b + "1" + ("!" if b == CHANGED else "")

def _snapshot(b):
    opswald.state(variables={"branch": b, "seen": "again" if b in STATE else "once"})

@opswald.llm
async def ask(*, model, messages):
    await asyncio.sleep(0.002)
    return {"content": "ok " + messages[0]["content"], "finish_reason": "stop"}

@opswald.tool
async def work(task):
    await asyncio.sleep(0.001)
    return task + " done"

@opswald.llm
def ask_sync(*, model, messages):
    time.sleep(0.002)
    return {"content": "ok " + messages[0]["content"], "finish_reason": "stop"}

@opswald.tool
def work_sync(task):
    time.sleep(0.001)
    return task + " done"

async def branch(b):
    await ask(model="m", messages=[{"role": "user", "content": b + "0"}])
    _snapshot(b)
    await asyncio.sleep(0.01)
    await work(task=b)
    await ask(model="m", messages=[{"role": "user", "content": _second(b)}])

def branch_sync(b):
    ask_sync(model="m", messages=[{"role": "user", "content": b + "0"}])
    _snapshot(b)
    time.sleep(0.01)
    work_sync(task=b)
    ask_sync(model="m", messages=[{"role": "user", "content": _second(b)}])

def run(input):
    if os.environ.get("POOL"):
        with ThreadPoolExecutor(3) as pool:
            list(pool.map(branch_sync, "ABC"))
        return "ok"
    async def main():
        await asyncio.gather(*(branch(b) for b in "ABC"))
        return "ok"
    return asyncio.run(main())
"""


def _step_texts(text: str) -> tuple[list[str], dict[int, str]]:
    """A golden's text: the lines before its steps, and each step's lines by number."""
    head, _, rest = text.partition("\nsteps:\n")
    blocks = re.split(r"(?m)^  - step: ", rest)[1:]
    return head.splitlines(), {int(b.split("\n", 1)[0]): b for b in blocks}


@pytest.mark.parametrize("pool", [False, True], ids=["gather", "threads"])
@pytest.mark.parametrize(
    "state", ["", "B", "AB"], ids=["snapshots-unchanged", "B-snapshot-changed", "A-and-B-changed"]
)
def test_an_update_keeps_the_snapshots_of_concurrent_branches_in_their_places(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, pool: bool, state: str
) -> None:
    """Three branches each take a snapshot after their first call; recorded, the three
    snapshots come after the three first calls. On replay a branch's snapshot follows its
    own served call (the answers come at once), so an update that went live at branch C's
    second call wrote each snapshot where the run took it: A0, state A, B0, state B, ...,
    renumbering steps before the divergence. Now each snapshot of the region is paired
    with the recorded one it equals and kept in its place, byte for byte, and a snapshot
    whose content changed (branch B's; A's and B's, each in the place of the recorded one
    most like it) is written as taken now in the place of the one it replaced: the
    update's diff is those snapshots and C's changed call."""
    for var in ("CI", "CHANGED", "STATE", "POOL"):
        monkeypatch.delenv(var, raising=False)
    if pool:
        monkeypatch.setenv("POOL", "1")
    pytester.makepyfile(snap_agent=SNAPSHOT_AGENT)
    pytester.makeini("[pytest]\nopswald_adapter = snap_agent:run\npythonpath = .\n")
    pytester.mkdir("goldens")
    path = pytester.path / "goldens" / "s.golden.yaml"
    path.write_text("name: s\ninput: {}\n")
    pytester.runpytest("--opswald-goldens", "--opswald-mode=record").assert_outcomes(passed=1)
    before = path.read_text()
    golden = opswald.load(path)
    assert sorted(s.type for s in golden.step_list).count("state") == 3, before
    pytester.runpytest("--opswald-goldens", "-p", "no:randomly").assert_outcomes(passed=1)
    monkeypatch.setenv("CHANGED", "C")
    if state:
        monkeypatch.setenv("STATE", state)
    result = pytester.runpytest("--opswald-goldens", "--opswald-update", "-p", "no:randomly")
    result.assert_outcomes(passed=1)
    assert "1 golden updated" in result.stdout.str()
    after = path.read_text()
    head, steps = _step_texts(before)
    new_head, new_steps = _step_texts(after)
    # the header as it was, but for when and how long the new run was
    volatile = ("  recorded_at: ", "  duration_ms: ")
    assert [line for line in new_head if not line.startswith(volatile)] == [
        line for line in head if not line.startswith(volatile)
    ], after
    assert sorted(new_steps) == sorted(steps), after

    def number(kind: str, what: str) -> int:
        return next(
            s.step
            for s in golden.step_list
            if s.type == kind
            and (getattr(s, "variables", None) or {}).get("branch", "")
            + (_task_of(s) if kind != "state" else "")
            == what
        )

    c1 = number("llm_call", "C1")
    changed = {c1} | {number("state", b) for b in state}
    for n, text in steps.items():
        if n in changed:
            assert new_steps[n] != text, (n, after)
        else:
            assert new_steps[n] == text, (n, after)  # byte for byte, at the same number
    assert "content: C1!" in new_steps[c1]
    for b in state:
        assert f"branch: {b}\n      seen: again" in new_steps[number("state", b)], after
    # everything before C's changed call, but a changed snapshot, as it was
    first = min(changed)

    def steps_before_first(text: str) -> str:
        return text.partition("\nsteps:\n")[2].split(f"  - step: {first}\n")[0]

    assert steps_before_first(after) == steps_before_first(before)
    pytester.runpytest("--opswald-goldens", "-p", "no:randomly").assert_outcomes(passed=1)


def _snapshots_at_the_end(changed: str) -> Any:
    def run(_: Any) -> Any:
        async def branch(name: str) -> None:
            await ask(model="m", messages=[{"role": "user", "content": f"{name}0"}])
            await asyncio.sleep(0.01)  # the branch's own work
            await work(task=name)
            second = f"{name}1" + ("!" if name == changed else "")
            await ask(model="m", messages=[{"role": "user", "content": second}])
            opswald.state(variables={"branch": name})

        async def main() -> None:
            await asyncio.gather(*(branch(b) for b in "ABC"))

        asyncio.run(main())

    return run


def test_an_update_keeps_the_branches_last_snapshots_after_their_region_in_order() -> None:
    """Each branch takes a snapshot after its last call: recorded, the three come after
    the region's last call, C1; replayed, each follows its own branch's calls. The update
    that went live at C1 writes them in their recorded places after the changed call, and
    as that call was made now, later than they were recorded, they are timed after it."""
    from opswald.engine.tape import epoch_ms
    from opswald.writeback import blessed

    golden = files.loads(files.dumps(_record(_snapshots_at_the_end(""))))

    def what(step: Any) -> str:
        return f"state {step.variables['branch']}" if step.type == "state" else _task_of(step)

    recorded = [what(s) for s in golden.step_list]
    assert recorded[-3:] == ["state A", "state B", "state C"], recorded
    run = execute(golden, _snapshots_at_the_end("C"), settings=RunSettings(policy="update"))
    assert run.agent_traceback is None, run.agent_traceback
    made = [what(s) for s in run.actual.step_list]
    assert made.index("state A") < made.index("C1!"), made  # taken elsewhere than recorded
    written = blessed(golden, run).session.step_list
    c1 = recorded.index("C1")
    assert [what(s) for s in written] == [*recorded[:c1], "C1!", *recorded[c1 + 1 :]]
    assert written[:c1] == golden.step_list[:c1]
    times = [epoch_ms(s.timestamp) or 0.0 for s in written[c1:]]
    assert times == sorted(times), [s.timestamp for s in written]


# ------------------------------------------ branches of one call each, in flight together


def test_lanes_whose_calls_were_in_flight_together_ran_together() -> None:
    """A gather of tasks that make one call each: each lane has one call, so no lane's
    run (first call to last) overlaps another's, but the calls were in flight together:
    one region. The same calls one after the other in time (`asyncio.wait_for` around
    each, awaited) keep their order; and one lane's calls overlapping in time (a stream
    read on while it made another call) make no region."""
    stamp = "2026-01-05T09:30:12.{:03d}Z"

    def steps(starts: list[int], lanes: list[int]) -> list[Any]:
        return [
            LLMCallStep(step=i + 1, lane=lane, timestamp=stamp.format(at), duration_ms=20)
            for i, (at, lane) in enumerate(zip(starts, lanes, strict=True))
        ]

    parents = {2: 1, 3: 1, 4: 1}
    gathered_calls = steps([0, 30, 31, 31, 60], [1, 2, 3, 4, 1])
    assert regions(gathered_calls, parents)[0] == [-1, 0, 0, 0, -1]
    in_turn = steps([0, 30, 60, 90, 120], [1, 2, 3, 4, 1])
    assert regions(in_turn, parents)[0] == [-1] * 5
    # a call begun as another ended (within the millisecond timestamps round to): not
    # known to have overlapped it
    touching = steps([0, 30, 50, 70, 90], [1, 2, 3, 4, 1])
    assert regions(touching, parents)[0] == [-1] * 5
    assert regions(steps([0, 5, 10], [1, 1, 1]), {})[0] == [-1] * 3


@opswald.llm
async def ask_slowly(*, model: str, messages: list[dict[str, Any]]) -> dict[str, Any]:
    await asyncio.sleep(0.02)
    return {"content": "answer to " + messages[0]["content"], "finish_reason": "stop"}


def _one_call_branches(changed: str = "", first: str = "") -> Any:
    """A plan call, then three tasks gathered that ask one question each (`changed`'s
    question changed; `first`'s asked before the others, which wait a little), then a
    summing call."""

    def agent(_: Any) -> list[Any]:
        async def branch(name: str) -> str:
            if first and name != first:
                await asyncio.sleep(0.01)
            q = f"question {name}" + (" (changed)" if name == changed else "")
            reply = await ask_slowly(model="m", messages=[{"role": "user", "content": q}])
            return str(reply["content"])

        async def main() -> list[Any]:
            await ask_slowly(model="m", messages=[{"role": "user", "content": "plan"}])
            out = await asyncio.gather(*(branch(b) for b in "ABC"))
            await ask_slowly(model="m", messages=[{"role": "user", "content": "sum up"}])
            return list(out)

        return asyncio.run(main())

    return agent


@pytest.mark.parametrize("changed", ["A", "B", "C"])
def test_a_changed_branch_of_one_call_diverges_at_its_own_step(changed: str) -> None:
    """QA: with one call a branch, the branches' lanes did not overlap by call, so they
    were taken for calls made in order: a changed branch that came first was reported
    beside another branch's step."""
    golden = _record(_one_call_branches())
    assert golden.step_list[0].lane == 1
    assert len({s.lane for s in golden.step_list}) == 4
    step_of = {_task_of(s): s.step for s in golden.step_list}
    for first in "ABC":
        run = execute(golden, _one_call_branches(changed, first), settings=RunSettings())
        verdict = judge(golden, run)
        assert not verdict.passed
        found = verdict.failures[0]
        assert found.step == step_of[f"question {changed}"], (first, found)


@pytest.mark.parametrize("changed", ["A", "B", "C"])
def test_an_update_of_a_branch_of_one_call_runs_only_that_call_live(changed: str) -> None:
    golden = _record(_one_call_branches())
    for first in "ABC":
        agent = _one_call_branches(changed, first)
        run = execute(golden, agent, settings=RunSettings(policy="update"))
        assert run.agent_traceback is None, run.agent_traceback
        live = [_task_of(s) for s in run.actual.step_list if s.step not in run.served]
        assert live == [f"question {changed} (changed)", "sum up"], (first, live)


def _regions(session: Session, calls: list[Any]) -> tuple[list[int], list[int]]:
    """`regions` of a session's calls, with the lanes' parents and gathers it holds."""
    metadata = session.metadata
    return regions(
        calls,
        lane_parents(metadata.get("lane_parents")),
        lane_gathers(metadata.get("lane_gathers")),
    )


def _without_lanes(text: str) -> str:
    """A golden as opswald wrote it before steps had lanes."""
    text = re.sub(r"(?m)^    lane: \d+\n", "", text)
    text = re.sub(r"(?m)^  lane_gathers:\n(?:    (?:- |  )- \d+\n)+", "", text)
    return re.sub(r"(?m)^  lane_parents:\n(?:    - \d+\n)+", "", text)


def test_an_update_of_a_golden_without_lanes_inside_its_gather_writes_one_that_replays(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """QA: a golden recorded before lanes, whose regions come from its timestamps; an
    update that changed a call of one gathered branch wrote that call with the time it
    was made now, outside the region of the recorded times, so the next replay held the
    branches to an order they do not keep, and failed. The update writes the run's lanes
    on every call (the served ones too): the golden it writes replays."""
    path = _project(pytester, monkeypatch)
    for b in "ABC":
        monkeypatch.setenv("THINK_" + b, "0.003")
    pytester.runpytest("--opswald-goldens", "--opswald-mode=record").assert_outcomes(passed=1)
    path.write_text(_without_lanes(path.read_text()))
    before = path.read_text()
    assert "lane" not in before
    pytester.runpytest("--opswald-goldens").assert_outcomes(passed=1)
    monkeypatch.setenv("CHANGED", "B")
    pytester.runpytest("--opswald-goldens", "--opswald-update").assert_outcomes(passed=1)
    after = opswald.load(path)
    calls = [s for s in after.step_list if s.type != "state"]
    assert all(s.lane is not None for s in calls), path.read_text()
    lanes = {_task_of(s)[0]: set() for s in calls}
    for s in calls:
        lanes[_task_of(s)[0]].add(s.lane)
    assert sorted(len(seen) for seen in lanes.values()) == [1, 1, 1], lanes
    # the other branches' steps hold what they held, with a lane line added
    assert _without_lanes(path.read_text()).count("B0!") >= 1
    for b in "AC":
        for r in "01":
            assert f"content: {b}{r}\n" in path.read_text()
    for pace in ("0", "0.006"):
        monkeypatch.setenv("THINK_A", pace)
        for _ in range(3):
            result = pytester.runpytest("--opswald-goldens", "-p", "no:randomly")
            result.assert_outcomes(passed=1)


# ------------------------------------------------------- an agent in another process

URLLIB_AGENT = """
import json, os, sys, threading, time, urllib.request

def ask(question, pause):
    time.sleep(pause)
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": question}]}
    request = urllib.request.Request(  # a connection of its own for each call
        os.environ["OPENAI_BASE_URL"] + "/chat/completions",
        data=json.dumps(body).encode(),
        headers={"content-type": "application/json", "authorization": "Bearer sk-test"},
    )
    with urllib.request.urlopen(request, timeout=30) as reply:
        return json.load(reply)["choices"][0]["message"]["content"]

given = json.load(sys.stdin)
questions, pause = given["questions"], float(os.environ.get("PAUSE", "0"))
if given.get("threads"):
    answers = [None] * len(questions)
    def run(i):
        answers[i] = ask(questions[i], pause * (len(questions) - i))
    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(questions))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
else:
    answers = [ask(q, 0) for q in questions]
print(json.dumps({"answers": answers}))
"""


@pytest.mark.parametrize("threads", [False, True], ids=["in-turn", "threads"])
def test_an_agent_in_another_process_records_no_lanes(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, threads: bool
) -> None:
    """QA: the replay server takes each connection on a thread of its own, and those
    threads were taken for the agent's: a sequential agent opening a connection a call
    was recorded with a lane a call, and concurrent ones with lanes that followed the
    connections, not the agent's threads. Calls from another process are one flow: no
    lanes (concurrency comes from the timestamps), and the golden replays."""
    import sys

    from fakeprovider import FakeProvider

    monkeypatch.delenv("CI", raising=False)
    monkeypatch.delenv("PAUSE", raising=False)
    pytester.makefile(".py", agent=URLLIB_AGENT)
    pytester.makeini(f"[pytest]\nopswald_adapter = subprocess:{sys.executable} agent.py\n")
    pytester.mkdir("goldens")
    path = pytester.path / "goldens" / "g.golden.yaml"
    flag = "true" if threads else "false"
    path.write_text(f"name: g\ninput: {{questions: [one, two, three], threads: {flag}}}\n")
    with FakeProvider(script=[{"content": f"answer {n}"} for n in range(3)]) as fp:
        monkeypatch.setenv("OPENAI_BASE_URL", fp.base_url + "/v1")
        result = pytester.runpytest("--opswald-goldens", "--opswald-mode=record")
        result.assert_outcomes(passed=1)
        assert len(fp.requests) == 3
    monkeypatch.delenv("OPENAI_BASE_URL")
    text = path.read_text()
    assert text.count("type: llm_call") == 3, text
    assert "lane" not in text, text
    for pause in ("0", "0.02"):  # the threads' calls come in another order
        monkeypatch.setenv("PAUSE", pause)
        pytester.runpytest("--opswald-goldens", "-p", "no:randomly").assert_outcomes(passed=1)
    assert path.read_text() == text


def _waves(changed: str = "") -> Any:
    """A plan call, eight tasks gathered under a semaphore of three (so in waves, whose
    calls do not overlap the next wave's), each asking one question, then a summing
    call."""

    def agent(_: Any) -> list[Any]:
        async def main() -> list[Any]:
            gate = asyncio.Semaphore(3)

            async def branch(name: str) -> str:
                async with gate:
                    q = f"question {name}" + (" (changed)" if name == changed else "")
                    reply = await ask(model="m", messages=[{"role": "user", "content": q}])
                    return str(reply["content"])

            await ask(model="m", messages=[{"role": "user", "content": "plan"}])
            out = await asyncio.gather(*(branch(b) for b in "ABCDEFGH"))
            await ask(model="m", messages=[{"role": "user", "content": "sum up"}])
            return list(out)

        return asyncio.run(main())

    return agent


@pytest.mark.parametrize("changed", ["B", "E", "H"])
def test_an_update_of_a_gather_run_in_waves_runs_only_the_changed_branch_live(
    changed: str,
) -> None:
    """QA: the waves of a gather under a semaphore do not overlap, so they make no one
    region; replay serves them in any order (model calls recorded back to back), but an
    update that diverged in one wave ran every later wave's unchanged calls live. Those
    of the diverging task's siblings (started by the same task) are served as recorded;
    the starter's own call after the gather still runs live, as the calls after a
    divergence do."""
    from opswald.writeback import blessed

    golden = files.loads(files.dumps(_record(_waves())))
    for _ in range(3):
        run = execute(golden, _waves(changed), settings=RunSettings(policy="update"))
        assert run.agent_traceback is None, run.agent_traceback
        live = [_task_of(s) for s in run.actual.step_list if s.step not in run.served]
        assert live == [f"question {changed} (changed)", "sum up"], live
        written = blessed(golden, run).session
        kept = [s for s in written.step_list if _task_of(s) not in live]
        assert kept == [s for s in golden.step_list if _task_of(s) != f"question {changed}"][:-1]
        again = execute(written, _waves(changed), settings=RunSettings())
        assert judge(written, again).passed


def _turns_around_a_gather(changed: bool = False, swap: bool = False) -> Any:
    """Two turns (a model call, then a tool call) made one after the other, a gather of
    three branches of one turn each (each working a little first), then a last turn."""

    def agent(_: Any) -> str:
        async def turn(p: str) -> None:
            await ask(model="m", messages=[{"role": "user", "content": p}])
            await work(task=p)

        async def main() -> str:
            for p in ["pre2", "pre1"] if swap else ["pre1", "pre2"]:
                await turn(p)

            async def branch(i: int) -> None:
                await asyncio.sleep(0.001 * (i + 1))  # the branch's own work
                await turn(f"branch {i}")

            await asyncio.gather(*(branch(i) for i in range(3)))
            await turn("post" + (" changed" if changed else ""))
            return "ok"

        return asyncio.run(main())

    return agent


def test_an_update_that_writes_lanes_into_a_golden_without_them_writes_which_waited() -> None:
    """QA: the lanes an update wrote into a golden without them came without
    `metadata.lane_parents` when the call after the gather was the changed one (its start
    was taken after the divergence's diff was made, too late for the gather's end), so
    the calls before the gather were no longer held to their order."""
    from opswald.writeback import blessed

    recorded = _record(_turns_around_a_gather())
    golden = files.loads(_without_lanes(files.dumps(recorded)))
    assert all(s.lane is None for s in golden.step_list)
    run = execute(
        golden, _turns_around_a_gather(changed=True), settings=RunSettings(policy="update")
    )
    assert run.agent_traceback is None, run.agent_traceback
    written = files.loads(files.dumps(blessed(golden, run).session))
    assert written.metadata.get("lane_parents") == [0, 1, 1, 1], written.metadata
    swapped = execute(
        written, _turns_around_a_gather(changed=True, swap=True), settings=RunSettings()
    )
    assert not judge(written, swapped).passed
    same = execute(written, _turns_around_a_gather(changed=True), settings=RunSettings())
    assert judge(written, same).passed


def _branches_with_snapshots(changed: str = "") -> Any:
    def agent(_: Any) -> None:
        async def main() -> None:
            await ask(model="m", messages=[{"role": "user", "content": "plan"}])

            async def branch(i: int) -> None:
                await asyncio.sleep(0.001 * ((i * 3) % 4))  # the branch's own work
                q = f"q{i}" + (" changed" if str(i) == changed else "")
                # calls long enough to overlap by more than the millisecond of timestamps
                await ask_slowly(model="m", messages=[{"role": "user", "content": q}])
                opswald.state(variables={"branch": i})

            await asyncio.gather(*(branch(i) for i in range(4)))
            await ask(model="m", messages=[{"role": "user", "content": "sum up"}])

        asyncio.run(main())

    return agent


def test_an_update_that_writes_lanes_into_a_golden_without_them_keeps_its_snapshots() -> None:
    """QA: the snapshots of a region are paired by what they hold only in a golden with
    lanes; an update that wrote lanes into a golden without them moved every branch's
    unchanged snapshot to where the run took it (the golden it wrote has lanes: its
    regions are those of its lanes)."""
    from opswald.writeback import blessed

    def what(step: Any) -> str:
        return f"state {step.variables['branch']}" if step.type == "state" else _task_of(step)

    golden = files.loads(_without_lanes(files.dumps(_record(_branches_with_snapshots()))))
    before = [what(s) for s in golden.step_list]
    run = execute(golden, _branches_with_snapshots("2"), settings=RunSettings(policy="update"))
    assert run.agent_traceback is None, run.agent_traceback
    written = blessed(golden, run).session.step_list
    assert [what(s) for s in written] == [w.replace("q2", "q2 changed") for w in before]
    for old, new in zip(golden.step_list, written, strict=True):
        if old.type == "state":
            assert new.model_dump(exclude={"timestamp"}) == old.model_dump(exclude={"timestamp"})


async def _turn(p: str) -> None:
    """A model call, then the tool call it asks for."""
    await ask(model="m", messages=[{"role": "user", "content": p}])
    await work(task=p)


def _pre_moved_after_the_gather() -> Any:
    """The call the golden has before the gather (`pre2`) made after it: the gathered
    branches come where the golden has it."""

    def agent(_: Any) -> str:
        async def main() -> str:
            await _turn("pre1")
            await asyncio.gather(*(_turn(f"branch {i}") for i in range(3)))
            await _turn("pre2")
            return "ok"

        return asyncio.run(main())

    return agent


def test_calls_made_at_the_same_time_that_diverge_at_one_step_are_one_finding() -> None:
    """QA: each gathered branch that came where the golden has a call made before the
    gather was a finding of its own, all at the same step, each blaming another branch."""

    def recorded_agent(_: Any) -> str:
        async def main() -> str:
            for p in ("pre1", "pre2"):
                await _turn(p)
            await asyncio.gather(*(_turn(f"branch {i}") for i in range(3)))
            return "ok"

        return asyncio.run(main())

    golden = _record(recorded_agent)
    run = execute(golden, _pre_moved_after_the_gather(), settings=RunSettings())
    verdict = judge(golden, run)
    mismatches = [f for f in verdict.failures if f.kind == "mismatch"]
    assert len(mismatches) == 1, mismatches
    (found,) = mismatches
    assert found.step == 3  # pre2's model call (pre1's tool call is step 2)
    shown = {d.actual for d in found.differences}
    others = {f"'branch {i}'" for i in range(3)} - {f"'{a}'" for a in shown}
    assert "2 other calls made at the same time differ from step 3 too (" in found.suggestion
    for value in others:
        assert value in found.suggestion, found.suggestion


# ------------------------------------------------------- siblings, starters, added branches


def _sync_with_one_async_call(changed: bool = False) -> Any:
    """A sync agent: a call, one call made through `asyncio.run` (a task of its own),
    then two more calls of its own."""

    def agent(_: Any) -> list[str]:
        def say(text: str) -> str:
            return str(ask_sync(model="m", messages=[{"role": "user", "content": text}])["content"])

        async def once() -> str:
            x = "x changed" if changed else "x"
            return str((await ask(model="m", messages=[{"role": "user", "content": x}]))["content"])

        return [say("plan"), asyncio.run(once()), say("post1"), say("post2")]

    return agent


def test_an_update_runs_the_starters_own_later_calls_live() -> None:
    """QA: the run's own thread, which started the task whose call diverged, was taken for
    that task's sibling, so its later calls were served as recorded by an update."""
    golden = _record(_sync_with_one_async_call())
    run = execute(golden, _sync_with_one_async_call(True), settings=RunSettings(policy="update"))
    assert run.agent_traceback is None, run.agent_traceback
    live = [_task_of(s) for s in run.actual.step_list if s.step not in run.served]
    assert live == ["x changed", "post1", "post2"], live


def _asyncio_run_per_call(changed: str = "") -> Any:
    def agent(_: Any) -> list[str]:
        async def once(text: str) -> str:
            text += " changed" if text == changed else ""
            return str(
                (await ask(model="m", messages=[{"role": "user", "content": text}]))["content"]
            )

        return [asyncio.run(once(text)) for text in ("s1", "s2", "s3")]

    return agent


def test_an_update_runs_live_the_calls_after_one_made_by_asyncio_run_one_after_another() -> None:
    """QA: a sync agent that makes each call through its own `asyncio.run`: each is a task
    started by the run's thread, so the calls after the changed one were taken for its
    siblings' and served; tasks of different event loops are not siblings."""
    golden = _record(_asyncio_run_per_call())
    run = execute(golden, _asyncio_run_per_call("s2"), settings=RunSettings(policy="update"))
    live = [_task_of(s) for s in run.actual.step_list if s.step not in run.served]
    assert live == ["s2 changed", "s3"], live


def _retrying(changed: bool = False) -> Any:
    """A sequential agent that asks again, otherwise, when a call fails."""

    def agent(_: Any) -> list[str]:
        out = []
        for x in ("s1", "s2", "s3"):
            for attempt in range(3):
                text = (x if attempt == 0 else f"{x} again {attempt}") + (
                    " changed" if changed and x == "s2" else ""
                )
                try:
                    reply = ask_sync(model="m", messages=[{"role": "user", "content": text}])
                except BaseException as exc:  # the replay's divergence too
                    out.append(type(exc).__name__)
                    continue
                out.append(str(reply["content"]))
                break
        return out

    return agent


def test_calls_one_after_the_other_diverging_at_one_step_are_not_said_to_be_at_once() -> None:
    golden = _record(_retrying())
    run = execute(golden, _retrying(True), settings=RunSettings())
    findings = [f for f in judge(golden, run).failures if f.kind == "mismatch"]
    assert findings, findings
    assert not any("same time" in f.suggestion for f in findings), findings


def _gather_of(n: int) -> Any:
    def agent(_: Any) -> None:
        async def main() -> None:
            await ask(model="m", messages=[{"role": "user", "content": "plan"}])
            await asyncio.gather(
                *(ask(model="m", messages=[{"role": "user", "content": f"b{i}"}]) for i in range(n))
            )
            await ask(model="m", messages=[{"role": "user", "content": "post"}])

        asyncio.run(main())

    return agent


def test_an_update_that_adds_a_branch_gives_it_a_lane_of_its_own() -> None:
    """QA: a branch an update added was compared with the call its starter makes after the
    gather, and took that call's lane (the starter's), so the golden said the starter
    made it."""
    from opswald.writeback import blessed

    golden = _record(_gather_of(3))
    run = execute(golden, _gather_of(5), settings=RunSettings(policy="update"))
    assert run.agent_traceback is None, run.agent_traceback
    written = blessed(golden, run).session.step_list
    lane_of = {_task_of(s): s.lane for s in written}
    assert lane_of["plan"] == lane_of["post"] == 1
    branches = [lane_of[f"b{i}"] for i in range(5)]
    assert len(set(branches)) == 5 and 1 not in branches, lane_of


def test_a_first_call_left_out_is_said_to_be_skipped_not_where_the_agent_stopped() -> None:
    """QA: an agent that made every call but the first (the calls after it served, a
    burst of model calls) was told it stopped before step 1."""
    golden = _record(_gather_of(3))

    def skipping(_: Any) -> None:
        async def main() -> None:
            await asyncio.gather(
                *(ask(model="m", messages=[{"role": "user", "content": f"b{i}"}]) for i in range(3))
            )
            await ask(model="m", messages=[{"role": "user", "content": "post"}])

        asyncio.run(main())

    verdict = judge(golden, execute(golden, skipping, settings=RunSettings()))
    unused = [f for f in verdict.failures if f.kind == "unused_calls"]
    assert [f.step for f in unused] == [1], verdict.failures
    assert unused[0].suggestion == (
        "the agent did not make step 1 (llm_call m), and made calls the golden has after it"
    )


def _turns_gathered(names: str, post_first: bool = False) -> Any:
    def agent(_: Any) -> None:
        async def main() -> None:
            if post_first:
                await _turn("post")
            await _turn("plan")
            await asyncio.gather(*(_turn(b) for b in names))
            if not post_first:
                await _turn("post")

        asyncio.run(main())

    return agent


def test_an_update_that_drops_a_branch_keeps_the_starters_next_call_in_its_lane() -> None:
    """QA: with a branch gone, the starter's call after the gather was compared with that
    branch's call, and an update wrote it in the branch's lane and place, before the other
    branches' tool calls: the golden then let it come before the gather."""
    from opswald.writeback import blessed

    golden = _record(_turns_gathered("ABC"))
    run = execute(golden, _turns_gathered("AB"), settings=RunSettings(policy="update"))
    assert run.agent_traceback is None, run.agent_traceback
    written = files.loads(files.dumps(blessed(golden, run).session))
    steps = written.step_list
    assert [_task_of(s) for s in steps][-2:] == ["post", "post"], [_task_of(s) for s in steps]
    assert {s.lane for s in steps if _task_of(s) in ("plan", "post")} == {1}
    assert judge(written, execute(written, _turns_gathered("AB"), settings=RunSettings())).passed
    moved = execute(written, _turns_gathered("AB", post_first=True), settings=RunSettings())
    assert not judge(written, moved).passed


def _gather_then_thread(reorder: bool = False) -> Any:
    def agent(_: Any) -> None:
        def in_thread() -> None:
            ask_sync(model="m", messages=[{"role": "user", "content": "thr"}])

        async def main() -> None:
            await _turn("plan")
            if reorder:
                await asyncio.to_thread(in_thread)
                await _turn("post")
            await asyncio.gather(*(_turn(b) for b in "ABC"))
            if not reorder:
                await asyncio.to_thread(in_thread)
                await _turn("post")

        asyncio.run(main())

    return agent


def test_a_gather_followed_by_a_thread_run_was_waited_for() -> None:
    """QA: the starter's next call after a gather was the first call of a function it sent
    to a thread (another lane), so the gathered tasks got no parent that waited for them,
    and an agent that made the thread's call and the last turn before the gather passed."""
    golden = _record(_gather_then_thread())
    parents = golden.metadata.get("lane_parents")
    lane_of = {_task_of(s): s.lane for s in golden.step_list}
    assert parents is not None, parents
    for b in "ABC":
        assert parents[lane_of[b] - 1] == lane_of["plan"], (parents, lane_of)
    assert judge(golden, execute(golden, _gather_then_thread(), settings=RunSettings())).passed
    moved = execute(golden, _gather_then_thread(reorder=True), settings=RunSettings())
    assert not judge(golden, moved).passed


def _branches(names: str, *, late: str = "", threads: bool = False, together: bool = False) -> Any:
    """A gather of branches of two turns each; the branches in `late` start 50 ms after
    the others (so their calls come after all of the others' when those are served);
    `together`: threads that all begin at once (a loaded machine may start one only once
    another has ended)."""

    def agent(_: Any) -> None:
        barrier = threading.Barrier(len(names)) if together else None

        def in_thread(name: str) -> None:
            if barrier is not None:
                barrier.wait(5)
            time.sleep(0.05 if name in late else 0)
            for r in range(2):
                ask_sync(model="m", messages=[{"role": "user", "content": f"{name}{r}"}])
                work_sync(task=f"{name}{r}")

        async def branch(name: str) -> None:
            await asyncio.sleep(0.05 if name in late else 0)
            for r in range(2):
                await _turn(f"{name}{r}")

        async def main() -> None:
            await _turn("plan")
            if threads:
                await asyncio.gather(*(asyncio.to_thread(in_thread, b) for b in names))
            else:
                await asyncio.gather(*(branch(b) for b in names))
            await _turn("post")

        asyncio.run(main())

    return agent


@pytest.mark.parametrize("added", ["D", "DE"])
@pytest.mark.parametrize("threads", [False, True], ids=["tasks", "threads"])
def test_an_update_that_adds_a_branch_writes_it_in_the_region_of_the_others(
    threads: bool, added: str
) -> None:
    """QA: a branch an update added made its calls live after the other branches' calls,
    served at once, were all made; it was written after their region, so the golden held
    its calls to after theirs, and its replay failed when the branch came first. Two
    branches added made a region of their own, after the others'."""
    from opswald.writeback import blessed

    names = "ABC" + added
    golden = _record(_branches("ABC", threads=threads, together=True))
    update = execute(
        golden, _branches(names, late=added, threads=threads), settings=RunSettings(policy="update")
    )
    assert update.agent_traceback is None, update.agent_traceback
    written = files.loads(files.dumps(blessed(golden, update).session))
    steps = written.step_list
    lanes: dict[str, set[Any]] = {}
    for s in steps:
        lanes.setdefault(_task_of(s)[0], set()).add(s.lane)
    assert all(len(v) == 1 for v in lanes.values()), lanes
    assert len({lanes[b].pop() for b in names} | lanes["p"]) == len(names) + 1, lanes
    calls = [s for s in steps if s.type != "state"]
    region_of, _ = _regions(written, calls)
    by_task = {_task_of(c) + c.type: r for c, r in zip(calls, region_of, strict=True)}
    assert {
        by_task[f"{b}{r}{t}"] for b in added for r in range(2) for t in ("llm_call", "tool_call")
    } == {by_task["A0llm_call"]}, by_task
    for late in ("", "ABC"):  # the added branches last, as when updated, and first
        again = execute(
            written, _branches(names, late=late, threads=threads), settings=RunSettings()
        )
        assert judge(written, again).passed, (late, judge(written, again).failures)


def test_a_branch_an_update_adds_before_another_begins_does_not_share_its_lane() -> None:
    """QA: the added branch's first call, made live before another branch's first, was
    compared with that branch's call and took its lane; that branch's served calls then
    went on in it too, so the golden had two branches in one lane."""
    from opswald.writeback import blessed

    golden = _record(_branches("ABC"))
    update = execute(golden, _branches("ABCD", late="B"), settings=RunSettings(policy="update"))
    assert update.agent_traceback is None, update.agent_traceback
    written = blessed(golden, update).session
    lanes: dict[str, set[Any]] = {}
    for s in written.step_list:
        lanes.setdefault(_task_of(s)[0], set()).add(s.lane)
    assert [len(lanes[b]) for b in "ABCD"] == [1, 1, 1, 1], lanes
    assert len(set().union(*(lanes[b] for b in "ABCD"))) == 4, lanes
    assert {s.lane for s in written.step_list if _task_of(s)[0] == "B"} == {
        s.lane for s in golden.step_list if _task_of(s)[0] == "B"
    }
    parents = written.metadata.get("lane_parents")
    assert parents is not None and len(parents) == 5, parents
    assert parents[lanes["D"].pop() - 1] == 1, parents


def _sub_agent_after_gather(changed: str = "") -> Any:
    """A gather of two branches, then a sub-agent task awaited, then a last turn."""

    def agent(_: Any) -> None:
        async def main() -> None:
            await _turn("plan")
            await asyncio.gather(*(_turn(b) for b in "AB"))
            await asyncio.create_task(_turn("C" + ("x" if changed == "C" else "")))
            await _turn("post" + ("x" if changed == "post" else ""))

        asyncio.run(main())

    return agent


@pytest.mark.parametrize("changed", ["C", "post"])
def test_an_update_leaves_calls_made_after_a_gather_in_order_after_it(changed: str) -> None:
    """A sub-agent the golden has run after a gather, and the starter's own next call,
    changed in an update: written after the gather's region, in order, not in it."""
    from opswald.writeback import blessed

    golden = _record(_sub_agent_after_gather())
    update = execute(
        golden, _sub_agent_after_gather(changed), settings=RunSettings(policy="update")
    )
    assert update.agent_traceback is None, update.agent_traceback
    written = blessed(golden, update).session
    calls = [s for s in written.step_list if s.type != "state"]
    region_of, _ = _regions(written, calls)
    after = [r for c, r in zip(calls, region_of, strict=True) if _task_of(c)[0] in "Cp"]
    assert after == [-1] * 6, list(zip([_task_of(c) for c in calls], region_of, strict=True))
    sub, post = ("Cx", "post") if changed == "C" else ("C", "postx")
    assert [_task_of(c) for c in calls][-4:] == [sub, sub, post, post]


def _waits_then_works(how: str, post_first: bool = False) -> Any:
    """Branches the main task waits for (`how`), then 5 ms of its own work (reading
    their results) before its next call; `post_first`: that call made before them."""

    def agent(_: Any) -> None:
        async def main() -> None:
            await _turn("plan")
            if post_first:
                await _turn("post")
            if how == "gather":
                await asyncio.gather(*(_turn(b) for b in "AB"))
            elif how == "taskgroup":
                async with asyncio.TaskGroup() as group:
                    for b in "AB":
                        group.create_task(_turn(b))
            elif how == "wait":
                await asyncio.wait([asyncio.create_task(_turn(b)) for b in "AB"])
            else:  # each task awaited in turn
                for task in [asyncio.create_task(_turn(b)) for b in "AB"]:
                    await task
            time.sleep(0.005)  # the main task's own work, after they ended
            if not post_first:
                await _turn("post")

        asyncio.run(main())

    return agent


@pytest.mark.parametrize("how", ["gather", "taskgroup", "wait", "await"])
def test_tasks_waited_for_are_known_so_when_their_starter_works_before_its_next_call(
    how: str,
) -> None:
    """QA: a gather's tasks were taken for waited for only when the main task's next call
    came within a millisecond of their end; any work between (reading their results) left
    them free of its calls, and an agent that made its last call before the gather passed."""
    golden = _record(_waits_then_works(how))
    lane_of = {_task_of(s): s.lane for s in golden.step_list}
    parents = golden.metadata.get("lane_parents")
    assert parents is not None, golden.metadata
    assert [parents[lane_of[b] - 1] for b in "AB"] == [lane_of["plan"]] * 2, (parents, lane_of)
    assert judge(golden, execute(golden, _waits_then_works(how), settings=RunSettings())).passed
    moved = execute(golden, _waits_then_works(how, post_first=True), settings=RunSettings())
    assert not judge(golden, moved).passed


def test_a_call_made_before_a_gather_that_the_golden_has_after_it_is_said_to_be_later() -> None:
    """QA: the starter's call after a gather, made before it, was shown as another request
    of one of the gather's calls (with the hint to ignore noise), though it was, field for
    field, the golden's own later step."""
    golden = _record(_waits_then_works("gather"))
    post = next(s.step for s in golden.step_list if _task_of(s) == "post" and s.type == "llm_call")
    run = execute(golden, _waits_then_works("gather", post_first=True), settings=RunSettings())
    first = judge(golden, run).first
    assert first is not None
    assert f"the agent made a call the golden has later, as its step {post}" in first.message
    assert "noise" not in first.suggestion, first.suggestion


def _sub_agent_added(sub: str) -> Any:
    """A gather of two branches, then (`sub`: "after") a sub-agent task awaited, or
    ("before") the same sub-agent run before the gather, then a last turn."""

    def agent(_: Any) -> None:
        async def main() -> None:
            await _turn("plan")
            if sub == "before":
                await asyncio.create_task(_turn("C"))
            await asyncio.gather(*(_turn(b) for b in "AB"))
            if sub == "after":
                await asyncio.create_task(_turn("C"))
            await _turn("post")

        asyncio.run(main())

    return agent


def test_a_sub_agent_an_update_adds_after_a_gather_stays_in_order_after_it() -> None:
    """QA: a sub-agent task an update added after a gather (awaited on its own) was taken
    into the gather's region, so the golden written let it move before the gather."""
    from opswald.writeback import blessed

    golden = _record(_sub_agent_added(""))
    update = execute(golden, _sub_agent_added("after"), settings=RunSettings(policy="update"))
    assert update.agent_traceback is None, update.agent_traceback
    written = files.loads(files.dumps(blessed(golden, update).session))
    calls = [s for s in written.step_list if s.type != "state"]
    region_of, _ = _regions(written, calls)
    assert [r for c, r in zip(calls, region_of, strict=True) if _task_of(c) == "C"] == [-1, -1]
    again = execute(written, _sub_agent_added("after"), settings=RunSettings())
    assert judge(written, again).passed, judge(written, again).failures
    moved = execute(written, _sub_agent_added("before"), settings=RunSettings())
    assert not judge(written, moved).passed


def test_an_update_that_drops_a_branch_says_its_lane_started_by_none() -> None:
    """QA: the lane of a branch an update dropped kept its parent in `lane_parents`,
    though no step of the golden written was made in it."""
    from opswald.writeback import blessed

    golden = _record(_turns_gathered("ABC"))
    dropped = next(s.lane for s in golden.step_list if _task_of(s) == "B")
    parents = golden.metadata["lane_parents"]
    assert parents[dropped - 1] != 0, parents
    update = execute(golden, _turns_gathered("AC"), settings=RunSettings(policy="update"))
    written = blessed(golden, update).session
    lanes = {s.lane for s in written.step_list}
    after = written.metadata["lane_parents"]
    assert dropped not in lanes and dropped <= len(after), (lanes, after)
    assert after[dropped - 1] == 0, after
    assert [after[s.lane - 1] for s in written.step_list if _task_of(s) in "AC"] == [1] * 4


def _summed(names: str) -> Any:
    """A gather of one turn a branch, then a call that sums up what they answered."""

    def agent(_: Any) -> None:
        async def main() -> None:
            await _turn("plan")
            said = await asyncio.gather(
                *(ask(model="m", messages=[{"role": "user", "content": b}]) for b in names)
            )
            summary = " | ".join(str(s["content"]) for s in said)
            await ask(model="m", messages=[{"role": "user", "content": "post " + summary}])

        asyncio.run(main())

    return agent


@pytest.mark.parametrize("agent", [_summed, _turns_gathered], ids=["changed", "later"])
def test_a_branch_left_out_of_a_gather_is_named_with_its_lane_and_steps(agent: Any) -> None:
    """QA: an agent that no longer ran a branch was told the starter's next call differed
    from a call of that branch (or came early), without a word of the branch left out."""
    golden = _record(agent("ABC"))
    lane = next(s.lane for s in golden.step_list if _task_of(s) == "B")
    steps = ", ".join(str(s.step) for s in golden.step_list if _task_of(s) == "B")
    first = judge(golden, execute(golden, agent("AC"), settings=RunSettings())).first
    assert first is not None
    assert (
        f"the agent made no call of a branch the golden has in this region (lane {lane}: "
        f"steps {steps}), and calls of the others" in first.suggestion
    ), first


def _four_branches(changed: str) -> Any:
    """A gather of four branches (a turn, a tool call, a turn each); `changed` asks its
    first question in other words."""

    def agent(_: Any) -> None:
        async def branch(name: str) -> None:
            said = f"{name}0" + (" again" if name == changed else "")
            await ask(model="m", messages=[{"role": "user", "content": said}])
            await work(task=f"{name}0")
            await ask(model="m", messages=[{"role": "user", "content": f"{name}1"}])

        async def main() -> None:
            await _turn("plan")
            await asyncio.gather(*(branch(name) for name in "ABCD"))
            await _turn("sum up")

        asyncio.run(main())

    return agent


@pytest.mark.parametrize("changed", ["A", "C", "D"])
def test_a_changed_branch_is_not_called_a_branch_left_out(changed: str) -> None:
    """QA (py3x #3): a branch whose first call changed stopped the agent at once; the hint
    named that branch's lane, and the lanes the agent had not come to yet, as branches
    "it no longer runs". No branch had run to its end: nothing was left out."""
    golden = _record(_four_branches(""))
    run = execute(golden, _four_branches(changed), settings=RunSettings())
    verdict = judge(golden, run)
    first = verdict.first
    assert first is not None and first.kind == "mismatch", verdict.findings
    assert _task_of(golden.step_list[first.step - 1])[0] == changed, first
    made = [(s.step, s.lane, _task_of(s)) for s in run.actual.step_list]
    assert "made no call of" not in first.suggestion, (first.suggestion, made)


def _nested_gathers(late: bool) -> Any:
    """Two groups gathered; each asks once, then gathers two branches of its own (a turn
    each). `late`: group 1 waits 50 ms before its first call (group 0's branches then run
    before it)."""

    def agent(_: Any) -> None:
        async def group(g: int) -> None:
            if late and g == 1:
                await asyncio.sleep(0.05)
            await ask(model="m", messages=[{"role": "user", "content": f"g{g}"}])
            await asyncio.gather(*(_turn(f"g{g}.{b}") for b in range(2)))

        async def main() -> None:
            await _turn("plan")
            await asyncio.gather(group(0), group(1))
            await _turn("sum up")

        asyncio.run(main())

    return agent


def test_nested_gathers_replay_whichever_group_is_slower() -> None:
    """QA (py3x #1): a group's branches come after its own first call, not after the other
    group's: a task runs, for the lanes it ran beside, until the tasks it started and
    waited for ended. Two groups whose first calls ended before their branches began were
    taken as calls made before all four branches, and a replay in which one group was
    slower failed."""
    golden = _record(_nested_gathers(late=False))
    assert len({s.lane for s in golden.step_list}) == 7, golden.step_list
    for late in (False, True):
        verdict = judge(golden, execute(golden, _nested_gathers(late), settings=RunSettings()))
        assert verdict.passed, (late, verdict.findings)
    # the groups' and branches' calls are one region; the starter's turns stay in order
    calls = [s for s in golden.step_list if s.type != "state"]
    region_of, _ = _regions(golden, calls)
    by_task = {_task_of(c): r for c, r in zip(calls, region_of, strict=True)}
    assert by_task["plan"] == by_task["sum up"] == -1, by_task
    inside = {r for task, r in by_task.items() if task.startswith("g")}
    assert len(inside) == 1 and inside != {-1}, by_task


def _one_at_a_time(order: str, turns: bool = True) -> Any:
    """A gather of five branches under `asyncio.Semaphore(1)`: they run one after the
    other, in the order they get the semaphore (`order`, by their start); `turns`: the
    task that gathers them makes calls of its own before and after."""

    def agent(_: Any) -> None:
        async def branch(name: str, lock: asyncio.Semaphore) -> None:
            await asyncio.sleep(0.002 * order.index(name))
            async with lock:
                await _turn(f"branch {name}")

        async def main() -> None:
            if turns:
                await _turn("plan")
            lock = asyncio.Semaphore(1)
            await asyncio.gather(*(branch(name, lock) for name in "ABCDE"))
            if turns:
                await _turn("sum up")

        asyncio.run(main())

    return agent


def test_a_gather_under_a_semaphore_replays_in_any_order_of_its_waves() -> None:
    """QA (py3x #2): branches of one gather that a semaphore let run one after the other
    never overlapped, so they were taken for calls made in order, and a replay in which
    the event loop gave the semaphore in another order failed. The lanes a gather awaited
    together are written (`metadata.lane_gathers`) and are one region; sub-agents awaited
    one at a time keep their order (see above)."""
    golden = _record(_one_at_a_time("ABCDE"))
    by_task = {_task_of(s): s.lane for s in golden.step_list}
    branches = sorted(by_task[f"branch {name}"] for name in "ABCDE")
    assert golden.metadata["lane_gathers"] == [branches], golden.metadata
    text = files.dumps(golden)
    assert "lane_gathers:" in text and files.loads(text).metadata["lane_gathers"] == [branches]
    for order in ("ABCDE", "EDCBA", "CAEBD"):
        verdict = judge(golden, execute(golden, _one_at_a_time(order), settings=RunSettings()))
        assert verdict.passed, (order, verdict.findings)
    # an update keeps them (the golden's, and what the run saw)
    update = execute(golden, _one_at_a_time("EDCBA"), settings=RunSettings(policy="update"))
    assert update.actual.metadata["lane_gathers"] == [branches], update.actual.metadata
    # a golden written before lane_gathers was gets it from an update
    older = golden.model_copy(
        update={"metadata": {k: v for k, v in golden.metadata.items() if k != "lane_gathers"}}
    )
    update = execute(older, _one_at_a_time("ABCDE"), settings=RunSettings(policy="update"))
    assert update.actual.metadata["lane_gathers"] == [branches], update.actual.metadata
    # the starter's own turns stay in order around them

    def early(_: Any) -> None:
        async def main() -> None:
            await _turn("plan")
            await _turn("sum up")

        asyncio.run(main())

    assert not judge(golden, execute(golden, early, settings=RunSettings())).passed


def test_a_gather_by_a_task_that_makes_no_call_is_written_as_one_too() -> None:
    """The task that gathers the branches made no call (an async adapter that only
    gathers): the branches' starter is not known by its calls; the task of the loop that
    waits for them is."""
    golden = _record(_one_at_a_time("ABCDE", turns=False))
    assert golden.metadata["lane_gathers"] == [[1, 2, 3, 4, 5]], golden.metadata
    for order in ("EDCBA", "BADEC"):
        run = execute(golden, _one_at_a_time(order, turns=False), settings=RunSettings())
        assert judge(golden, run).passed, (order, judge(golden, run).findings)


def _awaited_in_turn(
    order: str,
    *,
    started: str = "together",
    wait: str = "list",
    turns: bool = True,
    crowd: int = 0,
    changed: str = "",
) -> Any:
    """A plan call, five sub-agent tasks that take turns by a lock, each awaited alone,
    then a last call. `started="together"`: all five are started first, then awaited
    one at a time (`wait="list"`: `[await t for t in tasks]`; `"loop"`: a for loop over
    them; `"as_completed"`: as they end), and they take the lock in the order of `order`
    (by their start);
    `started="in turn"`: each is started after the one before ended, in `order`.
    `turns=False`: the task that starts them makes no call of its own; `crowd`: first a
    gather of that many tasks of one tool call each; `changed`: that branch asks another
    question."""

    def agent(_: Any) -> None:
        async def branch(name: str, lock: asyncio.Lock, wait_s: float) -> None:
            await asyncio.sleep(wait_s)
            async with lock:
                await _turn(f"branch {name}" + (" (changed)" if name == changed else ""))

        async def quick(i: int) -> None:
            await work(task=f"quick {i}")

        async def main() -> None:
            if turns:
                await _turn("plan")
            if crowd:
                await asyncio.gather(*(quick(i) for i in range(crowd)))
            lock = asyncio.Lock()
            if started == "in turn":
                for name in order:
                    await asyncio.create_task(branch(name, lock, 0))
            else:
                tasks = [
                    asyncio.create_task(branch(name, lock, 0.002 * order.index(name)))
                    for name in "ABCDE"
                ]
                if wait == "list":
                    [await task for task in tasks]
                elif wait == "as_completed":
                    for done in asyncio.as_completed(tasks):
                        await done
                else:
                    for task in tasks:
                        await task
            if turns:
                await _turn("sum up")

        asyncio.run(main())

    return agent


@pytest.mark.parametrize("recorded", ["ABCDE", "EDCBA", "BDACE"])
@pytest.mark.parametrize("wait", ["list", "loop", "as_completed"])
def test_tasks_started_together_and_awaited_one_at_a_time_replay_in_any_order(
    recorded: str, wait: str
) -> None:
    """Tasks all started before the first is awaited ran together, whatever order they
    are awaited in: a replay in which they took turns in another order failed (each
    awaited alone, they were taken for sub-agents run one after the other). Tasks of one
    starter alive at once are written as one of `metadata.lane_gathers`, also when they
    ran in the order they are awaited in (`ABCDE`)."""
    golden = files.loads(files.dumps(_record(_awaited_in_turn(recorded, wait=wait))))
    by_task = {_task_of(s): s.lane for s in golden.step_list}
    branches = sorted(by_task[f"branch {name}"] for name in "ABCDE")
    assert golden.metadata.get("lane_gathers") == [branches], golden.metadata
    for order in ("ABCDE", "EDCBA", "CAEBD"):
        run = execute(golden, _awaited_in_turn(order, wait=wait), settings=RunSettings())
        assert judge(golden, run).passed, (order, judge(golden, run).findings)
    # the starter's own calls stay in order around them
    calls = [s for s in golden.step_list if s.type != "state"]
    region_of, _ = _regions(golden, calls)
    by_region = {_task_of(c): r for c, r in zip(calls, region_of, strict=True)}
    assert by_region["plan"] == by_region["sum up"] == -1, by_region
    assert len({by_region[f"branch {name}"] for name in "ABCDE"} - {-1}) == 1, by_region


def test_tasks_started_together_by_a_task_that_makes_no_call_replay_in_any_order() -> None:
    """QA (alive #1): an async adapter that only starts sub-agents and awaits them one
    at a time (no call of its own, so no lane: the tasks' starter is the run's thread):
    they ran together, as when it gathers them."""
    golden = _record(_awaited_in_turn("ABCDE", turns=False))
    assert golden.metadata.get("lane_gathers") == [[1, 2, 3, 4, 5]], golden.metadata
    for order in ("EDCBA", "CAEBD"):
        run = execute(golden, _awaited_in_turn(order, turns=False), settings=RunSettings())
        assert judge(golden, run).passed, (order, judge(golden, run).findings)


def test_the_task_that_awaits_them_one_at_a_time_is_not_one_of_them() -> None:
    """A task that makes no call before it starts sub-agents together (it has their
    starter's flow) and calls after awaiting them one at a time: it waits for them, it
    does not run beside them, so its call stays after theirs."""

    def agent(first: bool) -> Any:
        def run(_: Any) -> None:
            async def branch(name: str, lock: asyncio.Lock) -> None:
                async with lock:
                    await _turn(f"branch {name}")

            async def main() -> None:
                if first:
                    await _turn("sum up")
                lock = asyncio.Lock()
                tasks = [asyncio.create_task(branch(name, lock)) for name in "ABC"]
                [await task for task in tasks]
                if not first:
                    await _turn("sum up")

            asyncio.run(main())

        return run

    golden = _record(agent(first=False))
    by_task = {_task_of(s): s.lane for s in golden.step_list}
    branches = sorted(by_task[f"branch {name}"] for name in "ABC")
    assert golden.metadata["lane_gathers"] == [branches], golden.metadata
    assert judge(golden, execute(golden, agent(first=False), settings=RunSettings())).passed
    assert not judge(golden, execute(golden, agent(first=True), settings=RunSettings())).passed


def test_tasks_alive_together_are_not_looked_at_once_a_loop_had_a_crowd() -> None:
    """README (Limits): once a look found more than 256 tasks in the loop, the run looks
    no more (each look passes over every task the loop keeps, ended ones too): sub-agents
    started together after a gather of 300 keep their recorded order, and the same after
    a gather of 200 are free of it."""
    for crowd, free in ((200, True), (300, False)):
        golden = _record(_awaited_in_turn("ABCDE", crowd=crowd))
        by_task = {_task_of(s): s.lane for s in golden.step_list}
        branches = sorted(by_task[f"branch {name}"] for name in "ABCDE")
        assert (branches in golden.metadata["lane_gathers"]) is free, crowd
        run = execute(golden, _awaited_in_turn("EDCBA", crowd=crowd), settings=RunSettings())
        assert judge(golden, run).passed is free, (crowd, judge(golden, run).findings)


def test_an_update_writes_the_lanes_alive_together_of_its_own_run() -> None:
    """QA (alive #3): recorded with sub-agents started together, the agent now runs them
    one after the other (and one asks another question): the update writes no lanes
    together, as a recording of the new agent would not, so a replay that swaps them
    fails. Before, the golden's were kept beside the run's."""
    golden = _record(_awaited_in_turn("ABCDE"))
    assert golden.metadata.get("lane_gathers"), golden.metadata
    now = _awaited_in_turn("ABCDE", started="in turn", changed="D")
    run = execute(golden, now, settings=RunSettings(policy="update"))
    assert run.agent_traceback is None, run.agent_traceback
    written = files.loads(files.dumps(run.actual))
    assert "lane_gathers" not in written.metadata, written.metadata
    assert judge(written, execute(written, now, settings=RunSettings())).passed
    swapped = _awaited_in_turn("BACDE", started="in turn", changed="D")
    assert not judge(written, execute(written, swapped, settings=RunSettings())).passed


def test_tasks_started_one_after_the_other_keep_their_order() -> None:
    """Each task started after the one before ended (sub-agents run in turn as tasks):
    no lanes are written together, and a replay that runs them in another order
    fails at the first call out of order."""
    golden = _record(_awaited_in_turn("ABCDE", started="in turn"))
    assert "lane_gathers" not in golden.metadata, golden.metadata
    run = execute(golden, _awaited_in_turn("ABCDE", started="in turn"), settings=RunSettings())
    assert judge(golden, run).passed, judge(golden, run).findings
    swapped = execute(golden, _awaited_in_turn("BACDE", started="in turn"), settings=RunSettings())
    verdict = judge(golden, swapped)
    assert not verdict.passed
    first_a = next(s.step for s in golden.step_list if _task_of(s) == "branch A")
    assert verdict.failures[0].step == first_a, verdict.failures


@pytest.mark.parametrize(
    ("value", "said"),
    [
        ({"2": [3]}, "lane_gathers must be a list of lists of lane numbers"),
        ([[2, "x"]], "gather 1 holds 'x', not a lane number from 1 to 1000000"),
        ([[2, 0]], "gather 1 holds 0, not a lane number"),
        ([2, 3], "lane_gathers must be a list of lists of lane numbers"),
    ],
)
def test_a_malformed_lane_gathers_is_a_load_error_at_its_line(value: Any, said: str) -> None:
    golden = _record(_one_at_a_time("ABCDE"))
    data = golden.model_dump(mode="json", exclude_none=True)
    data["metadata"]["lane_gathers"] = value
    with pytest.raises(files.GoldenLoadError, match=re.escape(said)) as info:
        files.loads(json.dumps(data, indent=1), fmt="json", source="g.golden.json")
    line = next(
        n
        for n, text in enumerate(json.dumps(data, indent=1).splitlines(), 1)
        if '"lane_gathers"' in text
    )
    assert str(info.value).startswith(f"g.golden.json:{line}: metadata.lane_gathers: "), info


def _waves_of(shape: str, order: str) -> Any:
    """Branches under `asyncio.Semaphore(1)`, taking it in `order` (by their start):
    `groups`: two groups (A, B) gathered, each asking once, then gathering two branches
    of its own; `wait`: three branches (A, B, C) awaited by a loop of
    `asyncio.wait(..., return_when=FIRST_COMPLETED)`; `hidden`: three branches gathered
    by a sub-agent task that makes no call of its own, awaited by one that does."""

    def agent(_: Any) -> None:
        async def held(name: str, lock: asyncio.Semaphore, work: Any) -> None:
            await asyncio.sleep(0.002 * order.index(name[0]))
            async with lock:
                await work

        async def group(name: str, lock: asyncio.Semaphore) -> None:
            await ask(model="m", messages=[{"role": "user", "content": f"group {name}"}])
            await asyncio.gather(*(_turn(f"{name}{b}") for b in range(2)))

        async def main() -> None:
            await _turn("plan")
            lock = asyncio.Semaphore(1)
            if shape == "groups":
                await asyncio.gather(*(held(n, lock, group(n, lock)) for n in "AB"))
            elif shape == "wait":
                left = {asyncio.create_task(held(n, lock, _turn(n))) for n in "ABC"}
                while left:
                    _, left = await asyncio.wait(left, return_when=asyncio.FIRST_COMPLETED)
            else:

                async def sub() -> None:
                    await asyncio.gather(*(held(n, lock, _turn(n)) for n in "ABC"))

                await asyncio.create_task(sub())
            await _turn("sum up")

        asyncio.run(main())

    return agent


@pytest.mark.parametrize(
    ("shape", "orders"),
    [("groups", ("AB", "BA")), ("wait", ("ABC", "CBA", "BCA")), ("hidden", ("ABC", "CAB"))],
)
def test_waves_of_other_gathers_replay_in_any_order(shape: str, orders: tuple[str, ...]) -> None:
    """QA (gathers #1-#3): a gather of groups under a semaphore held each group's branches
    behind the other group; a loop of `asyncio.wait(FIRST_COMPLETED)` wrote only the
    tasks of the wait each was seen in (a new set each time round) as awaited together;
    a gather by a task that makes no call of its own was not written at all. Each wave
    order replays."""
    golden = _record(_waves_of(shape, orders[0]))
    assert golden.metadata.get("lane_gathers"), golden.metadata
    for order in orders:
        verdict = judge(golden, execute(golden, _waves_of(shape, order), settings=RunSettings()))
        assert verdict.passed, (order, verdict.findings)
