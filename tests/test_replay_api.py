"""The Python API: Replay (pause, state, resume, fork, breakpoints, hooks) and batch_replay."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import opswald
from opswald.engine.breakpoints import BreakpointError
from opswald.engine.run import RunSettings, execute
from opswald.session import Session

sent: list[str] = []


@opswald.llm
def chat(*, model: str, messages: list[dict[str, Any]]) -> dict[str, Any]:
    last = messages[-1]["content"]
    return {
        "content": f"{model} read {last}",
        "finish_reason": "stop",
        "usage": {"input_tokens": 100, "output_tokens": 20},
        "cost": 0.3,
    }


@opswald.tool
def lookup(order: str) -> dict[str, Any]:
    if order == "missing":
        raise KeyError(order)
    return {"order": order, "total": 42}


@opswald.tool(side_effects=True)
def send_email(to: str, body: str) -> str:
    sent.append(to)
    return "sent"


def agent(input: dict[str, Any]) -> dict[str, Any]:
    memory: dict[str, Any] = {}
    found = lookup(input["order"])  # step 1
    memory["total"] = found["total"]
    opswald.state(memory=dict(memory))  # step 2
    answer = chat(model="m", messages=[{"role": "user", "content": str(found)}])  # step 3
    memory["preference"] = "quarterly reports"
    opswald.state(memory=dict(memory))  # step 4
    send_email(to=input["to"], body=answer["content"])  # step 5
    return {"answer": answer["content"]}


def recorded(order: str = "A1", to: str = "team@example.com") -> Session:
    stub = Session(name=f"order-{order}", input={"order": order, "to": to})
    run = execute(stub, agent, settings=RunSettings(policy="live", block_side_effects=False))
    return run.actual


@pytest.fixture(autouse=True)
def _clear() -> None:
    sent.clear()


def test_run_steps_and_final_output() -> None:
    golden = recorded()
    sent.clear()
    replay = opswald.Replay(golden, adapter=agent)
    result = replay.run()
    assert result is not None and result.passed
    assert replay.final_output == golden.output
    assert [s.type for s in replay.steps] == [
        "tool_call",
        "state",
        "llm_call",
        "state",
        "tool_call",
    ]
    llm = replay.steps[2]
    assert (llm.cost, llm.tokens, llm.name) == (0.3, 120, "m")
    assert sent == [], "replay serves the side-effect tool"


def test_pause_at_suspends_before_the_step_runs() -> None:
    golden = recorded()
    sent.clear()
    replay = opswald.Replay(golden, adapter=agent, mode="live", allow_side_effects=True)
    assert replay.pause_at(5).run() is None
    assert replay.paused_at == 5
    assert sent == [], "the side effect of step 5 has not happened while paused"
    state = replay.get_state(4)
    assert state.memory == {"total": 42, "preference": "quarterly reports"}
    assert state.tool_outputs[0]["output"] == {"order": "A1", "total": 42}
    assert state.last_output["content"] == "m read {'order': 'A1', 'total': 42}"
    result = replay.resume()
    assert result is not None and replay.paused_at is None
    assert sent == ["team@example.com"]


@opswald.tool
def work(i: int) -> dict[str, int]:
    return {"i": i}


def pool_agent(input: dict[str, Any]) -> dict[str, Any]:
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(3) as pool:
        return {"out": list(pool.map(lambda i: work(i=i), range(3)))}


@pytest.mark.parametrize("mode", ["replay", "live"])
def test_a_pause_keeps_the_number_of_the_step_it_holds(mode: Any) -> None:
    """Other threads of the agent go on while step 2 is held: their steps show under the
    numbers they have after the run, never in the held step's place."""
    import time

    golden = execute(
        Session(name="pool", input={}), pool_agent, settings=RunSettings(policy="live")
    ).actual
    replay = opswald.Replay(golden, adapter=pool_agent, mode=mode)
    assert replay.pause_at(2).run() is None
    try:
        deadline = time.monotonic() + 10
        while len(replay.steps) < 2 and time.monotonic() < deadline:  # the other two calls
            time.sleep(0.01)
        paused = {s.number: s.step.input["i"] for s in replay.steps}
        state = replay.get_state(2)
    finally:  # a held thread of the pool would keep the process from exiting
        assert replay.resume() is not None
    assert sorted(paused) == [1, 3], paused
    assert [o["output"] for o in state.tool_outputs] == [{"i": paused[1]}]
    after = {s.number: s.step.input["i"] for s in replay.steps}
    assert sorted(after) == [1, 2, 3]
    assert {n: after[n] for n in paused} == paused, (paused, after)


def test_step_once_walks_step_by_step() -> None:
    replay = opswald.Replay(recorded(), adapter=agent)
    assert replay.pause_at(1).run() is None
    seen = []
    while replay.paused_at is not None:
        seen.append(replay.paused_at)
        replay.step_once()
    assert seen == [1, 2, 3, 4, 5]
    assert replay.result is not None and replay.result.passed


def test_resume_after_the_last_step_once_returns_the_result() -> None:
    """README's snippet: `pause_at(5)`, `step_once()`, `resume()`. When that step_once ran
    the last step, the run ended (step_once returned the result) and resume() raised
    `RuntimeError: the replay is not paused`; a finished replay's resume() and step_once()
    return its result, as run() did."""
    replay = opswald.Replay(recorded(), adapter=agent)
    assert replay.pause_at(5).run() is None and replay.paused_at == 5
    ended = replay.step_once()  # step 5 is the last: the run ends
    assert ended is not None and ended.passed and replay.paused_at is None
    assert replay.resume() is ended
    assert replay.step_once() is ended


def test_resume_before_run_is_refused() -> None:
    replay = opswald.Replay(recorded(), adapter=agent)
    with pytest.raises(RuntimeError, match=r"the replay is not paused: it has not started; run"):
        replay.resume()
    result = replay.run()
    assert result is not None and result.passed


def test_fork_from_with_a_tool_result() -> None:
    golden = recorded()
    blocked = opswald.Replay(golden, adapter=agent).fork_from(1, {"tool_result": {"total": 1}})
    result = blocked.run()
    assert result is not None and result.verdict.first is not None
    assert result.verdict.first.kind == "side_effect", "live after the fork: send_email is held"
    sent.clear()
    fork = opswald.Replay(golden, adapter=agent, allow_side_effects=True).fork_from(
        1, {"tool_result": {"order": "A1", "total": 99}}
    )
    result = fork.run()
    assert result is not None
    assert fork.get_state(2).memory == {"total": 99}
    assert fork.final_output == {"answer": "m read {'order': 'A1', 'total': 99}"}
    assert result.fork_step == 1
    assert result.verdict.first is not None and result.verdict.first.kind == "output"
    assert sent == ["team@example.com"]


def test_a_blocked_side_effect_names_the_api_keyword_that_allows_it() -> None:
    """Through the Python API the hint names Replay's own keyword, not a pytest option,
    and following it lets the tool run."""
    import inspect
    import re

    golden = recorded()
    sent.clear()
    result = opswald.Replay(golden, adapter=agent).fork_from(3).run()
    assert result is not None and result.verdict.first is not None
    first = result.verdict.first
    assert first.kind == "side_effect" and sent == []
    allow = first.suggestion.split("to let it run")[0]
    assert "--opswald" not in allow, first.suggestion
    named = re.search(r"(\w+)=True", allow)
    assert named is not None, first.suggestion
    assert named.group(1) in inspect.signature(opswald.Replay).parameters
    fork = opswald.Replay(golden, adapter=agent, **{named.group(1): True}).fork_from(3)
    result = fork.run()
    assert result is not None and result.passed, result.verdict.findings
    assert sent == ["team@example.com"]


def test_model_comparison_through_the_api() -> None:
    golden = recorded()
    original = opswald.Replay(golden, adapter=agent)
    original.run()
    other = opswald.Replay(
        golden, adapter=agent, modifications={"model": "claude-3-sonnet"}, allow_side_effects=True
    )
    other.run()
    assert original.final_output == {"answer": "m read {'order': 'A1', 'total': 42}"}
    assert other.final_output == {"answer": "claude-3-sonnet read {'order': 'A1', 'total': 42}"}


class Recorder:
    def __init__(self) -> None:
        self.events: list[tuple[str, Any, ...]] = []

    def before_step(self, step: Any) -> None:
        self.events.append(("before", step.number, step.type))

    def after_step(self, step: Any, result: Any) -> None:
        self.events.append(("after", step.step, step.type))

    def on_error(self, step: Any, error: Any) -> None:
        self.events.append(("error", step.step, error.type))


def test_hooks_fire_in_order() -> None:
    def failing_agent(input: Any) -> str:
        try:
            lookup("missing")
        except KeyError:
            pass
        opswald.state(memory={"x": 1})
        return "done"

    stub = Session(name="h", input=None)
    golden = execute(stub, failing_agent, settings=RunSettings(policy="live")).actual
    hooks = Recorder()
    opswald.Replay(golden, adapter=failing_agent, hooks=hooks).run()
    assert hooks.events == [
        ("before", 1, "tool_call"),
        ("after", 1, "tool_call"),
        ("error", 1, "KeyError"),
        ("before", 2, "state"),
        ("after", 2, "state"),
    ]


class ConftestStyle:
    """The conftest hooks' names and arguments, as the README says a hooks= object may use."""

    def __init__(self) -> None:
        self.events: list[tuple[str, int, Any]] = []

    def pytest_opswald_before_step(self, replay: Any, step: Any) -> None:
        assert isinstance(replay, opswald.Replay)
        self.events.append(("before", step.number, step.type))

    def pytest_opswald_after_step(self, replay: Any, step: Any, result: Any) -> None:
        self.events.append(("after", step.number, step.type))  # as before_step has it


def test_hooks_may_be_written_as_the_conftest_hooks() -> None:
    golden = recorded()
    hooks = ConftestStyle()
    result = opswald.Replay(golden, adapter=agent, hooks=hooks).run()
    assert result is not None and result.passed
    kinds = [s.type for s in golden.step_list]
    assert hooks.events[:2] == [("before", 1, kinds[0]), ("after", 1, kinds[0])]
    assert len(hooks.events) == 2 * len(kinds)


def test_a_hook_that_raises_is_raised_as_itself_not_as_the_agents_error() -> None:
    class Broken:
        def after_step(self, step: Any, result: Any) -> None:
            if step.step == 2:
                raise LookupError("my hook is broken")

    with pytest.raises(LookupError, match="my hook is broken") as info:
        opswald.Replay(recorded(), adapter=agent, hooks=Broken()).run()
    assert "(raised by the after_step hook, not by the agent)" in (info.value.__notes__ or [])


@pytest.mark.parametrize(
    ("step", "error"),
    [(0, ValueError), (-1, ValueError), (99, ValueError), ("x", TypeError), (True, TypeError)],
)
def test_pause_at_a_step_that_cannot_come_is_refused(step: Any, error: type) -> None:
    replay = opswald.Replay(recorded(), adapter=agent)
    with pytest.raises(error, match="pause_at"):
        replay.pause_at(step)


def test_a_stub_is_not_recorded_yet_and_its_agent_never_runs(tmp_path: Path) -> None:
    """DESIGN §3a: plain replay fails a stub with "not recorded yet", as pytest and
    `opswald replay` do; nothing can answer its calls, so the agent (and its side-effect
    tool) never starts, under replay or a fork, and batch_replay counts it as failed."""
    started: list[Any] = []

    def spy(input: dict[str, Any]) -> dict[str, Any]:
        started.append(input)
        return agent(input)

    path = tmp_path / "stub.golden.yaml"
    path.write_text("name: stub\ninput: {order: A1, to: team@example.com}\n")
    for replay in (
        opswald.Replay(path, adapter=spy),
        opswald.Replay(path, adapter=spy, modifications={"agent_version": "v2"}),
        # a fork at a step: the stub is told first, not that it has no step 1
        opswald.Replay(path, adapter=spy, fork_at=1, modifications={"response": "x"}),
        opswald.Replay(path, adapter=spy).fork_from(1, {"response": "x"}),
    ):
        result = replay.run()
        assert result is not None and not result.passed
        (finding,) = result.verdict.failures
        assert finding.kind == "not_recorded"
        assert "not recorded yet" in finding.message
        assert "--opswald-mode=record" in finding.suggestion
        assert replay.final_output is None and result.actual.step_list == []
    golden = recorded()
    sent.clear()
    batch = opswald.batch_replay([path, golden], adapter=spy)
    assert batch.failed == ["stub"] and batch.success_rate == pytest.approx(1 / 2)
    assert started == [{"order": "A1", "to": "team@example.com"}], "only the recorded one"
    assert sent == [], "the side-effect tool never ran"
    live = opswald.Replay(path, adapter=spy, mode="live", allow_side_effects=True).run()
    assert live is not None and live.actual.output == {
        "answer": "m read {'order': 'A1', 'total': 42}"
    }


@pytest.mark.parametrize(
    ("arguments", "error", "message"),
    [
        (
            {"mode": "replay", "fork_at": 5},
            ValueError,
            "fork_at=5 needs mode='fork' (or no mode), not mode='replay'",
        ),
        (
            {"mode": "live", "fork_at": 5},
            ValueError,
            "fork_at=5 needs mode='fork' (or no mode), not mode='live'",
        ),
        (
            {"mode": "bogus"},
            ValueError,
            "mode must be 'replay', 'live', 'fork' or None, not 'bogus'",
        ),
        ({"fork_at": "5"}, TypeError, "fork_at takes a step number, not '5'"),
        ({"fork_at": True}, TypeError, "fork_at takes a step number, not True"),
    ],
)
def test_conflicting_or_invalid_mode_and_fork_at_are_refused(
    arguments: dict[str, Any], error: type[Exception], message: str
) -> None:
    """`opswald replay` refuses these; so does the API, before the agent runs: a replay
    forked at step 5 would run send_email (side_effects=True) live, unguarded."""
    golden = recorded()
    sent.clear()
    with pytest.raises(error) as refused:
        opswald.Replay(golden, adapter=agent, **arguments).run()
    assert str(refused.value) == message
    if "fork_at" not in arguments:  # batch_replay takes a mode, no fork step
        with pytest.raises(error, match=message):
            opswald.batch_replay([golden], adapter=agent, **arguments)
    assert sent == []


@pytest.mark.parametrize(("step", "error"), [("4", TypeError), (2.0, TypeError), (0, ValueError)])
def test_fork_from_a_step_that_is_no_step_number_is_refused(step: Any, error: type) -> None:
    with pytest.raises(error, match=r"^fork_from"):
        opswald.Replay(recorded(), adapter=agent).fork_from(step)


def test_breakpoints_log_fail_and_pause() -> None:
    golden = recorded()
    replay = opswald.Replay(golden, adapter=agent)
    replay.add_breakpoint("memory.changed", action="log")
    replay.add_breakpoint("total_cost > 0.25", action="fail")
    result = replay.run()
    assert replay.log == [
        "breakpoint hit at step 2 (state): memory.changed",
        "breakpoint hit at step 4 (state): memory.changed",
    ]
    assert result is not None and not result.passed
    assert result.verdict.first is not None and result.verdict.first.kind == "breakpoint"
    assert result.verdict.first.step == 3

    pausing = opswald.Replay(golden, adapter=agent)
    pausing.add_breakpoint("tool_name == 'lookup'", action="pause")
    assert pausing.run() is None
    assert pausing.paused_at == 2, "paused right after the step that hit"
    assert pausing.resume() is not None


def test_bad_breakpoints_are_refused() -> None:
    replay = opswald.Replay(recorded(), adapter=agent)
    with pytest.raises(BreakpointError):
        replay.add_breakpoint("__import__('os').system('true')")
    with pytest.raises(ValueError, match="pause, log or fail"):
        replay.add_breakpoint("step == 1", action="explode")  # type: ignore[arg-type]


def test_batch_replay_success_rate_and_still_failing() -> None:
    good = recorded("A1")
    erroring = recorded("missing")
    assert erroring.error is not None
    changed = good.model_copy(update={"name": "changed", "output": {"answer": "something else"}})
    result = opswald.batch_replay([good, erroring, changed], adapter=agent)
    assert result.success_rate == pytest.approx(2 / 3)
    assert result.still_failing == ["order-missing"]
    assert result.failed == ["changed"]


def test_batch_replay_fails_a_golden_with_its_own_step_modification_and_goes_on() -> None:
    """A golden whose own `modifications:` holds a step modification needs a fork step,
    which a batch does not give: that golden fails saying so, its agent never runs, and
    the other goldens of the batch still run (pytest fails only that golden too)."""
    started: list[Any] = []

    def spy(input: dict[str, Any]) -> dict[str, Any]:
        started.append(input["order"])
        return agent(input)

    good = recorded("A1")
    forked = recorded("B2").model_copy(update={"modifications": {"response": "No"}})
    result = opswald.batch_replay([forked, good], adapter=spy)
    assert result.failed == ["order-B2"]
    assert result.success_rate == pytest.approx(1 / 2)
    (finding,) = result.results["order-B2"].verdict.failures
    assert finding.kind == "refused"
    assert "response changes one step: give the step to fork at" in finding.message
    assert "(response from the golden's own modifications:)" in finding.message
    assert started == ["A1"], "only the golden without one ran its agent"


def test_the_goldens_own_request_rules_apply() -> None:
    """`expect.requests` (ignore, normalize) hides noise in requests, as under pytest."""
    from opswald.session import Expect

    def agent_on(day: str, temperature: float) -> Any:
        def run(input: dict[str, Any]) -> Any:
            text = f"Today is {day}. {input['q']}"
            messages = [{"role": "user", "content": text}]
            return chat(model="m", messages=messages, temperature=temperature)["content"]

        return run

    @opswald.llm
    def chat(*, model: str, messages: list[dict[str, Any]], temperature: float) -> Any:
        return {"content": "ok", "finish_reason": "stop"}

    stub = Session(name="dated", input={"q": "hi"})
    live = RunSettings(policy="live")
    recorded_run = execute(stub, agent_on("2024-01-01", 0.0), settings=live).actual
    noisy = agent_on("2025-06-30", 0.7)
    assert not opswald.Replay(recorded_run, adapter=noisy).run().passed  # type: ignore[union-attr]
    rules = {
        "requests": {
            "normalize": [{"pattern": r"\d{4}-\d\d-\d\d", "replace": "<date>"}],
            "ignore": ["params.temperature"],
        }
    }
    golden = recorded_run.model_copy(update={"expect": Expect.model_validate(rules)})
    result = opswald.Replay(golden, adapter=noisy).run()
    assert result is not None and result.passed, result.verdict
    assert opswald.batch_replay([golden], adapter=noisy).success_rate == 1.0


@pytest.mark.parametrize(("speed", "expected"), [("realtime", 2.0), (4.0, 0.5), (None, None)])
def test_speed_waits_the_recorded_time(
    monkeypatch: pytest.MonkeyPatch, speed: Any, expected: float | None
) -> None:
    golden = recorded()
    steps = [
        s.model_copy(update={"duration_ms": 2000.0}) if s.type == "llm_call" else s
        for s in golden.step_list
    ]
    golden.steps = steps
    waits: list[float] = []
    import opswald.engine.replay as replay_module

    monkeypatch.setattr(replay_module.time, "sleep", waits.append)
    opswald.Replay(golden, adapter=agent, speed=speed).run()
    llm_waits = [w for w in waits if w >= 0.4]
    assert llm_waits == ([expected] if expected is not None else [])


def test_a_result_names_modifications_that_change_nothing() -> None:
    """`ReplayResult.modification_note`: a key the adapter cannot read (it takes no
    `modifications`) and opswald does not apply; None when every key is applied."""
    golden = recorded()
    result = opswald.Replay(golden, adapter=agent, modifications={"modle": "big"}).run()
    assert result is not None
    assert result.modification_note is not None
    assert result.modification_note.startswith(
        "modification 'modle' (did you mean 'model'?) changed nothing"
    )
    result = opswald.Replay(golden, adapter=agent, modifications={"model": "m"}).run()
    assert result is not None and result.modification_note is None
    # a request key the agent's model function takes no parameter for reaches no call
    result = opswald.Replay(golden, adapter=agent, modifications={"temperature": 0.5}).run()
    assert result is not None and result.modification_note is not None
    assert result.modification_note.startswith(
        "modification 'temperature' reached none of the model calls"
    )
