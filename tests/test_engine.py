"""The engine without pytest: instrumentation, matching, normalisation, time and cost."""

from __future__ import annotations

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any

import pytest

import opswald
from opswald.engine.normalize import RequestRules, normalize_request
from opswald.engine.run import Run, RunSettings, execute, judge
from opswald.session import LLMCallStep, RequestsExpect, Session, ToolCallStep


def record(adapter: Any, input: Any = None) -> Session:
    stub = Session(name="s", input=input)
    run = execute(stub, adapter, settings=RunSettings(policy="live", block_side_effects=False))
    return run.actual


def replay(golden: Session, adapter: Any, **settings: Any) -> tuple[Run, Any]:
    run = execute(golden, adapter, settings=RunSettings(**settings))
    return run, judge(golden, run)


@opswald.llm
def echo_llm(*, model: str, messages: list[dict[str, Any]], **params: Any) -> dict[str, Any]:
    return {
        "content": messages[-1]["content"].upper(),
        "finish_reason": "stop",
        "usage": {"prompt_tokens": 7, "completion_tokens": 3},
        "cost": 0.25,
    }


class Boom(Exception):
    pass


calls: list[str] = []


@opswald.tool
def flaky(kind: str) -> str:
    calls.append(kind)
    if kind == "key":
        raise KeyError("missing-id")
    if kind == "custom":
        raise Boom("custom failure")
    return "fine"


def test_instrumentation_is_a_no_op_outside_a_run() -> None:
    calls.clear()
    assert flaky("ok") == "fine"
    assert calls == ["ok"]
    assert echo_llm(model="m", messages=[{"role": "user", "content": "hi"}])["content"] == "HI"
    opswald.state(memory={"a": 1})  # nothing to record into; must not fail or leak


def test_usage_aliases_cost_and_served_response() -> None:
    def agent(input: str) -> str:
        return str(echo_llm(model="m", messages=[{"role": "user", "content": input}])["content"])

    golden = record(agent, "hello")
    step = golden.step_list[0]
    assert isinstance(step, LLMCallStep)
    assert step.usage is not None
    assert (step.usage.input_tokens, step.usage.output_tokens) == (7, 3)
    assert step.cost == 0.25 and step.cost_source == "provider"
    assert golden.output == "HELLO"
    # the normalised fields are the truth: an edited response text is what the agent gets
    assert step.output is not None
    edited = step.model_copy(
        update={"output": step.output.model_copy(update={"content": "EDITED"})}
    )
    golden.steps = [edited]
    golden = golden.model_copy(update={"output": "EDITED"})
    run, verdict = replay(golden, agent)
    assert verdict.passed, verdict
    assert run.actual.output == "EDITED"


def test_recorded_tool_errors_are_raised_again() -> None:
    seen: list[str] = []

    def agent(input: Any) -> list[str]:
        for kind in ("key", "custom"):
            try:
                flaky(kind)
            except KeyError as exc:
                seen.append(f"KeyError:{exc.args[0]}")
            except opswald.ReplayedToolError as exc:
                seen.append(f"replayed:{exc.type_name}:{exc.message}")
            except Boom as exc:
                seen.append(f"Boom:{exc}")
        return seen

    golden = record(agent)
    tool_steps = [s for s in golden.step_list if isinstance(s, ToolCallStep)]
    assert [s.error.type for s in tool_steps if s.error] == ["KeyError", "Boom"]
    assert seen == ["KeyError:missing-id", "Boom:custom failure"]
    seen.clear()
    calls.clear()
    golden = golden.model_copy(
        update={"output": ["KeyError:missing-id", "replayed:Boom:custom failure"]}
    )
    _, verdict = replay(golden, agent)
    assert calls == [], "replay must not run the tool"
    assert seen == ["KeyError:missing-id", "replayed:Boom:custom failure"]
    assert verdict.passed, verdict


def test_request_is_captured_at_call_time() -> None:
    def agent(input: Any) -> str:
        messages = [{"role": "user", "content": "first"}]
        echo_llm(model="m", messages=messages)
        messages.append({"role": "user", "content": "mutated later"})
        messages[0]["content"] = "changed"
        return "done"

    golden = record(agent)
    step = golden.step_list[0]
    assert isinstance(step, LLMCallStep)
    assert step.input.messages == [{"role": "user", "content": "first"}]


@opswald.llm
def chat_style(*, model: str, messages: list[dict[str, Any]]) -> dict[str, Any]:
    """A chat-completions-shaped response: stored raw, served as recorded."""
    return {
        "id": "resp-1",
        "choices": [
            {
                "message": {"role": "assistant", "content": "ok", "tool_calls": None},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 3, "completion_tokens": 1},
    }


@opswald.tool
def rows(n: int) -> list[dict[str, int]]:
    return [{"id": i} for i in range(n)]


def test_served_answers_are_copies_the_agent_may_change() -> None:
    def agent(input: Any) -> Any:
        messages = [{"role": "user", "content": input["q"]}]
        found = rows(n=2)
        found.append({"id": 99})
        found[0]["id"] = -1
        reply = chat_style(model="m", messages=messages)
        reply["choices"][0]["message"]["content"] += "!"
        reply["usage"]["prompt_tokens"] = 0
        messages.append({"role": "user", "content": "changed after the call"})
        answer = opswald.user_input("more?")
        answer["extra"] = True
        return {"rows": found, "reply": reply["choices"][0]["message"]["content"]}

    golden = record(agent, {"q": "hi", "user_inputs": [{"more": "no"}]})
    before = golden.model_dump()
    assert golden.step_list[0].output == [{"id": 0}, {"id": 1}]
    first, verdict = replay(golden, agent)
    assert verdict.passed, verdict
    second, verdict = replay(golden, agent)
    assert verdict.passed, verdict
    assert golden.model_dump() == before, "the agent changed the golden through a served value"
    assert second.actual.output == first.actual.output == golden.output
    assert second.actual.output == {"rows": [{"id": -1}, {"id": 1}, {"id": 99}], "reply": "ok!"}
    served_rows = second.actual.step_list[0]
    assert isinstance(served_rows, ToolCallStep)
    assert served_rows.output == [{"id": 0}, {"id": 1}]
    served_chat = second.actual.step_list[1]
    assert isinstance(served_chat, LLMCallStep)
    assert served_chat.input.messages == [{"role": "user", "content": "hi"}]


def test_outermost_instrumentation_wins() -> None:
    @opswald.tool
    def inner(x: int) -> int:
        return x + 1

    @opswald.tool
    def outer(x: int) -> int:
        return inner(x) * 2

    golden = record(lambda _: outer(1))
    assert [(s.type, getattr(s, "tool", None)) for s in golden.step_list] == [
        ("tool_call", "outer")
    ]
    assert golden.output == 4


def test_threads_started_by_the_agent_are_recorded() -> None:
    @opswald.tool
    def work(n: int) -> int:
        return n * n

    def agent(input: Any) -> list[int]:
        with ThreadPoolExecutor(max_workers=3) as pool:
            return list(pool.map(lambda n: work(n), range(3)))

    golden = record(agent)
    assert sorted(s.input["n"] for s in golden.step_list if isinstance(s, ToolCallStep)) == [
        0,
        1,
        2,
    ]
    _, verdict = replay(golden, agent)
    assert verdict.passed
    assert threading.active_count() >= 1


def test_normalisation_drops_noise_and_numbers_call_ids() -> None:
    def request(call_id: str, user: str) -> dict[str, Any]:
        return {
            "model": "m",
            "input": {
                "messages": [
                    {"role": "assistant", "tool_calls": [{"id": call_id, "name": "t"}]},
                    {"role": "tool", "tool_call_id": call_id, "content": "sk-" + "a" * 30},
                ],
                "params": {"temperature": 0, "user": user, "x-stainless-retry-count": 2},
            },
        }

    rules = RequestRules()
    a = normalize_request(request("call_abc", "u1"), rules)
    b = normalize_request(request("call_xyz", "u2"), rules)
    assert a == b
    assert a["input"]["messages"][1]["tool_call_id"] == "<call:0>"
    assert a["input"]["messages"][1]["content"] == "<redacted:openai-key>"
    assert a["input"]["params"] == {"temperature": 0}


def test_user_rules_normalise_and_ignore() -> None:
    spec = RequestsExpect.model_validate(
        {"ignore": ["params.seed"], "normalize": {r"\d{4}-\d\d-\d\d": "<date>"}}
    )
    rules = RequestRules.build(spec)
    one = {"model": "m", "input": {"messages": ["on 2026-01-01"], "params": {"seed": 1}}}
    two = {"model": "m", "input": {"messages": ["on 2027-12-31"], "params": {"seed": 2}}}
    assert normalize_request(one, rules) == normalize_request(two, rules)
    assert normalize_request(one, rules)["input"]["messages"] == ["on <date>"]


def test_a_secret_in_a_prompt_is_redacted_and_does_not_diverge() -> None:
    secrets = iter(["sk-ant-" + "x" * 20, "sk-ant-" + "y" * 20])

    def agent(input: Any) -> str:
        key = next(secrets)
        echo_llm(model="m", messages=[{"role": "user", "content": f"my key is {key}"}])
        return "ok"

    golden = record(agent)
    step = golden.step_list[0]
    assert isinstance(step, LLMCallStep) and step.input.messages is not None
    assert step.input.messages[0]["content"] == "my key is <redacted:anthropic-key>"
    _, verdict = replay(golden, agent)
    assert verdict.passed


def test_replay_duration_uses_recorded_call_times() -> None:
    def agent(input: Any) -> str:
        echo_llm(model="m", messages=[{"role": "user", "content": "x"}])
        return "ok"

    golden = record(agent)
    step = golden.step_list[0]
    golden.steps = [step.model_copy(update={"duration_ms": 5000.0})]
    run, _ = replay(golden, agent)
    assert 5000 <= run.actual.metadata["duration_ms"] < 5000 + 1000


def test_divergence_is_not_swallowed_by_the_agent() -> None:
    def agent(input: Any) -> str:
        try:
            flaky("ok" if input == "a" else "other")
        except Exception:
            return "swallowed"
        return "fine"

    calls.clear()
    golden = record(agent, "a")
    golden = golden.model_copy(update={"input": "b"})
    run, verdict = replay(golden, agent)
    assert run.actual.output is None
    assert verdict.first is not None and verdict.first.kind == "mismatch"
    assert verdict.first.step == 1


@pytest.mark.parametrize("policy", ["replay", "update"])
def test_user_input_is_served(policy: str) -> None:
    def agent(input: Any) -> list[str]:
        return [str(opswald.user_input("q1?")), str(opswald.user_input("q2?"))]

    golden = record(agent, {"user_inputs": ["yes", "no"]})
    assert [s.type for s in golden.step_list] == ["user_input", "user_input"]
    assert golden.output == ["yes", "no"]
    run, verdict = replay(golden.model_copy(update={"input": {}}), agent, policy=policy)
    assert verdict.passed and run.actual.output == ["yes", "no"]


def test_a_replayed_custom_error_is_still_caught_by_its_class() -> None:
    def agent(input: Any) -> str:
        try:
            flaky("custom")
        except Boom as exc:
            assert isinstance(exc, opswald.ReplayedToolError) or type(exc) is Boom
            return f"caught {exc}"
        return "not raised"

    golden = record(agent)
    assert golden.output == "caught custom failure"
    calls.clear()
    run, verdict = replay(golden, agent)
    assert calls == []
    assert run.actual.output == "caught custom failure"
    assert verdict.passed


def test_matching_time_is_not_the_agents_time(monkeypatch: pytest.MonkeyPatch) -> None:
    """Replayed duration = recorded call durations + the agent's own time: the engine's
    matching (and diffing a divergence, which may import deepdiff) is excluded."""
    import opswald.engine.context as context_module
    from opswald.engine.tape import Tape

    now = [1000.0]
    fake_time = type("T", (), {"perf_counter": staticmethod(lambda: now[0])})
    monkeypatch.setattr(context_module, "time", fake_time)
    slow_match = Tape.next_call

    def next_call(self: Tape, *args: Any, **kwargs: Any) -> Any:
        now[0] += 10.0  # ten "seconds" spent matching
        return slow_match(self, *args, **kwargs)

    monkeypatch.setattr(Tape, "next_call", next_call)
    exact_match = Tape.exact

    def exact(self: Tape, *args: Any, **kwargs: Any) -> Any:
        now[0] += 10.0  # the fast path of a call sent as recorded
        return exact_match(self, *args, **kwargs)

    monkeypatch.setattr(Tape, "exact", exact)

    def agent(input: Any) -> str:
        echo_llm(model="m", messages=[{"role": "user", "content": input}])
        return "ok"

    golden = record(agent, "x")
    golden.steps = [golden.step_list[0].model_copy(update={"duration_ms": 40.0})]
    run, verdict = replay(golden, agent)
    assert verdict.passed
    assert run.actual.metadata["duration_ms"] == pytest.approx(40.0)
    diverged, verdict = replay(golden.model_copy(update={"input": "y"}), agent)
    assert not verdict.passed
    assert diverged.actual.metadata["duration_ms"] == pytest.approx(0.0)


@opswald.tool
def fetch_page(url: str, *, page: int = 1, size: int = 10) -> dict[str, Any]:
    return {"url": url, "page": page, "rows": list(range(size))}


def test_calls_by_keyword_in_any_order_replay_and_record_in_parameter_order() -> None:
    def recorded(_: Any) -> Any:
        return fetch_page(url="u", page=2, size=3)

    def reordered(_: Any) -> Any:
        return fetch_page(size=3, page=2, url="u")  # the same call, keywords reordered

    def changed(_: Any) -> Any:
        return fetch_page(size=4, page=2, url="u")  # another call, keywords reordered

    golden = record(recorded)
    run, verdict = replay(golden, reordered)
    assert verdict.passed, verdict.differences
    assert run.actual.output == {"url": "u", "page": 2, "rows": [0, 1, 2]}

    run, verdict = replay(golden, changed)
    assert not verdict.passed
    step = run.actual.step_list[0]
    assert isinstance(step, ToolCallStep)
    assert list(step.input) == ["url", "page", "size"], "written in parameter order"
    assert step.input == {"url": "u", "page": 2, "size": 4}


@opswald.llm
def chat_with_tools(*, model: str, messages: list[dict[str, Any]]) -> dict[str, Any]:
    """A client returning OpenAI's chat-completion shape, with a tool call first."""
    if len(messages) == 1:
        call = {
            "id": "c1",
            "type": "function",
            "function": {"name": "lookup", "arguments": '{"key": "a"}'},
        }
        message: dict[str, Any] = {"role": "assistant", "content": None, "tool_calls": [call]}
        finish = "tool_calls"
    else:
        message, finish = (
            {"role": "assistant", "content": "found " + messages[-1]["content"]},
            "stop",
        )
    return {"id": "x", "object": "chat.completion",
            "choices": [{"index": 0, "message": message, "finish_reason": finish}]}  # fmt: skip


@opswald.tool
def lookup(key: str) -> str:
    return f"value of {key}"


def chat_agent(task: str) -> dict[str, Any]:
    messages = [{"role": "user", "content": task}]
    first = chat_with_tools(model="m", messages=messages)["choices"][0]["message"]
    call = first["tool_calls"][0]["function"]
    result = lookup(**json.loads(call["arguments"]))
    messages.append({"role": "tool", "content": result})
    final = chat_with_tools(model="m", messages=messages)["choices"][0]
    return {"answer": final["message"]["content"], "finish": final["finish_reason"]}


def test_an_edited_or_forked_answer_keeps_the_recorded_response_shape() -> None:
    """Normalised fields win, written into the stored response's own shape: an agent that
    reads `choices[0].message` gets the edited answer, not a KeyError."""
    golden = record(chat_agent, "find a")
    assert golden.output == {"answer": "found value of a", "finish": "stop"}
    last = golden.step_list[-1]
    assert isinstance(last, LLMCallStep) and last.output is not None and last.raw is not None
    edited = golden.model_copy(deep=True)
    edited_last = edited.step_list[-1]
    assert isinstance(edited_last, LLMCallStep) and edited_last.output is not None
    edited_last.output = edited_last.output.model_copy(update={"content": "edited"})
    run, _ = replay(edited, chat_agent)
    assert run.agent_traceback is None and run.actual.output == {
        "answer": "edited",
        "finish": "stop",
    }
    forked = opswald.Replay(golden, adapter=chat_agent).fork_from(3, {"response": "Nope"}).run()
    assert forked is not None and forked.actual.output == {"answer": "Nope", "finish": "stop"}
    # a new tool choice is given in the recorded call's shape (arguments as a JSON string)
    chosen = opswald.Replay(golden, adapter=chat_agent).fork_from(1, {"tool_params": {"key": "b"}})
    result = chosen.run()
    assert result is not None and result.actual.output == {
        "answer": "found value of b",
        "finish": "stop",
    }
    assert golden.step_list[-1] == last, "the golden itself is untouched"


@opswald.llm
async def summarise(*, model: str, messages: list[dict[str, Any]]) -> dict[str, Any]:
    return {"content": "summary of " + messages[-1]["content"], "finish_reason": "stop"}


@opswald.tool
def publish(text: str) -> str:
    return f"published {len(text)} chars"


def burst_agent(parts: list[str]) -> dict[str, Any]:
    """Summarise every part at once (start order left to chance), then publish, then one
    more model call: a burst, a tool turn, and a later call."""
    import asyncio
    import random

    async def one(part: str) -> str:
        await asyncio.sleep(random.random() / 500)  # the start order differs run to run
        answer = await summarise(model="m", messages=[{"role": "user", "content": part}])
        return str(answer["content"])

    async def main() -> dict[str, Any]:
        summaries = await asyncio.gather(*(one(p) for p in parts))
        published = publish(text=" / ".join(summaries))
        final = await summarise(model="m", messages=[{"role": "user", "content": published}])
        return {"summaries": summaries, "final": final["content"]}

    return asyncio.run(main())


def test_a_burst_of_concurrent_model_calls_replays_in_any_start_order() -> None:
    parts = [f"part {i}" for i in range(6)]
    golden = record(burst_agent, parts)
    assert [s.type for s in golden.step_list] == ["llm_call"] * 6 + ["tool_call", "llm_call"]
    for _ in range(8):
        run, verdict = replay(golden, burst_agent)
        assert verdict.passed, verdict.findings
        assert run.actual.output == golden.output
    # still a divergence when a request is not among the burst's
    other = [*parts[:5], "part X"]
    run = execute(golden, lambda _: burst_agent(other), settings=RunSettings())
    first = judge(golden, run).first
    assert first is not None and first.kind == "mismatch" and first.step is not None


@opswald.llm
async def slow_model(*, model: str, messages: list[dict[str, Any]]) -> dict[str, Any]:
    import asyncio

    await asyncio.sleep(0.02)  # when recorded; replay answers at once
    return {"content": "look up " + messages[-1]["content"], "finish_reason": "stop"}


@opswald.tool
async def look_up(city: str) -> dict[str, Any]:
    return {"city": city, "sky": "clear"}


def branches_agent(cities: list[str]) -> list[Any]:
    """Branches that each ask the model, then call a tool, gathered: recorded as the model
    calls back to back, then the tools; replayed with each branch's tool call first."""
    import asyncio

    async def branch(city: str) -> Any:
        await slow_model(model="m", messages=[{"role": "user", "content": city}])
        return await look_up(city=city)

    async def main() -> list[Any]:
        return list(await asyncio.gather(*(branch(c) for c in cities)))

    return asyncio.run(main())


def test_gathered_branches_of_a_model_call_then_a_tool_call_replay() -> None:
    cities = ["Paris", "Oslo", "Rome"]
    golden = record(branches_agent, cities)
    assert [s.type for s in golden.step_list] == ["llm_call"] * 3 + ["tool_call"] * 3
    for _ in range(3):
        run, verdict = replay(golden, lambda _: branches_agent(cities))
        assert verdict.passed, verdict.findings
        assert run.actual.output == golden.output
    # a branch that calls its tool with other arguments is still a divergence
    run, verdict = replay(golden, lambda _: branches_agent(["Paris", "Oslo", "ROME"]))
    assert not verdict.passed


def planned_agent(skip: bool) -> list[Any]:
    """Asks the model, looks Paris up, asks again (unless `skip`), looks Oslo up, then
    gathers two branches (a model call, then a tool call each)."""
    ask = [{"role": "user", "content": "plan"}]
    out = [echo_llm(model="m", messages=ask), look_up_sync(city="Paris")]
    if not skip:
        out.append(echo_llm(model="m", messages=[{"role": "user", "content": "again"}]))
    out.append(look_up_sync(city="Oslo"))
    return [*out, *branches_agent(["Rome", "Bern"])]


@opswald.tool
def look_up_sync(city: str) -> dict[str, Any]:
    return {"city": city, "sky": "live"}


def test_a_tool_call_of_a_later_turn_is_not_served_when_its_model_call_is_skipped() -> None:
    """DESIGN §3a: tool calls match within the model turn that asked for them. Oslo's
    look-up is the turn of the second model call (step 3, after Paris's look-up, no burst):
    an agent that skips that call is not served step 4's answer; its look-up is the
    divergence, numbered in the run. The gathered branches after it (a burst) still
    replay with each branch's tool call before the other branch's model call."""
    golden = record(lambda _: planned_agent(skip=False))
    kinds = [s.type for s in golden.step_list]
    assert kinds == ["llm_call", "tool_call", "llm_call", "tool_call", *kinds[4:]]
    for _ in range(3):
        _, verdict = replay(golden, lambda _: planned_agent(skip=False))
        assert verdict.passed, verdict.findings
    run, verdict = replay(golden, lambda _: planned_agent(skip=True))
    first = verdict.failures[0]
    assert (first.kind, first.step, first.step_type, first.name) == (
        "extra_call",
        3,
        "tool_call",
        "look_up_sync",
    ), first
    assert 4 not in run.matched.values() and 4 not in {s.step for s in run.served.values()}


@opswald.tool
async def weather_of(city: str) -> dict[str, Any]:
    return {"city": city, "sky": "clear"}


def cities_agent(cities: list[str]) -> list[Any]:
    import asyncio

    async def main() -> list[Any]:
        return list(await asyncio.gather(*(weather_of(city=c) for c in cities)))

    return asyncio.run(main())


@opswald.tool
def slow_lookup(key: str) -> str:
    time.sleep(0.03 if key == "slow" else 0)
    return key


def test_a_recorded_steps_timestamp_is_when_it_began() -> None:
    """As in imported goldens (a span's start): the step's time runs from `timestamp` for
    `duration_ms`, so the 30 ms call ends before the next, quick one begins."""

    def agent(_: Any) -> str:
        return str(slow_lookup(key="slow")) + str(slow_lookup(key="fast"))

    first, second = record(agent).step_list
    began = [datetime.fromisoformat(s.timestamp or "").timestamp() * 1000 for s in (first, second)]
    assert (first.duration_ms or 0) >= 30
    assert began[0] + (first.duration_ms or 0) <= began[1] + 1  # timestamps have ms precision


def test_calls_that_overlapped_in_the_recording_count_once_in_the_replayed_duration() -> None:
    """Three tools that ran side by side for a second each took one second, not three:
    an unchanged replay keeps the golden's duration and its duration budget."""
    golden = record(cities_agent, ["Paris", "Oslo", "Rome"])
    steps = [
        step.model_copy(
            update={"timestamp": f"2026-01-01T00:00:00.{10 * i:03d}Z", "duration_ms": 1000.0}
        )
        for i, step in enumerate(golden.step_list)
    ]
    data = golden.model_dump()
    data.update(
        steps=[step.model_dump() for step in steps],
        metadata={"duration_ms": 1020.0},
        expect={"budgets": {"duration_ms": "+10%"}},
    )
    golden = Session.model_validate(data)
    run, verdict = replay(golden, lambda _: cities_agent(["Paris", "Oslo", "Rome"]))
    assert verdict.passed, verdict.findings
    duration = run.actual.metadata["duration_ms"]
    assert 1020.0 <= duration < 1122.0  # the union of the three spans, and the agent's own time


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        (["OSLO", "Paris"], [(2, "Oslo", "OSLO")]),  # only Oslo changed, and it ran first
        (["PARIS", "OSLO"], [(1, "Paris", "PARIS"), (2, "Oslo", "OSLO")]),  # both changed
    ],
)
def test_a_diverging_concurrent_tool_call_is_shown_beside_its_closest_recorded_call(
    now: list[str], expected: list[tuple[int, str, str]]
) -> None:
    golden = record(cities_agent, ["Paris", "Oslo"])
    _, verdict = replay(golden, lambda _: cities_agent(now))
    shown = [
        (d.step, d.golden, d.actual)
        for f in verdict.findings
        if f.kind == "mismatch"
        for d in f.differences
    ]
    assert shown[0] == expected[0]
    assert len({step for step, _, _ in shown}) == len(shown), "no recorded call shown twice"


def test_the_session_clock_starts_with_the_agent_not_with_the_setup() -> None:
    """Installing interception and the offline guard (which import their modules on first
    use) is not the agent's time: the clock starts after them, when the agent is called."""
    import time

    golden = record(chat_agent, "find a")
    seen: dict[str, Any] = {}

    def before(ctx: Any) -> None:  # called before the setup
        seen["ctx"], seen["setup_began"] = ctx, time.perf_counter()

    def agent(task: str) -> Any:
        seen["agent_began"] = time.perf_counter()
        return chat_agent(task)

    execute(golden, agent, settings=RunSettings(), context_out=before)
    assert seen["setup_began"] <= seen["ctx"].clock.start <= seen["agent_began"]


@opswald.llm
def plain_chat(*, model: str, messages: list[dict[str, Any]]) -> dict[str, Any]:
    return {"content": "hi " + messages[-1]["content"], "tool_calls": [], "finish_reason": "stop"}


def counting_agent(question: str) -> dict[str, Any]:
    answer = plain_chat(model="m", messages=[{"role": "user", "content": question}])
    return {"answer": answer["content"], "calls": len(answer["tool_calls"])}


def test_a_forked_answer_keeps_the_recorded_empty_tool_calls_and_shows_in_the_actual() -> None:
    golden = record(counting_agent, "there")
    assert golden.output == {"answer": "hi there", "calls": 0}
    result = opswald.Replay(golden, adapter=counting_agent).fork_from(1, {"response": "NEW"}).run()
    assert result is not None and result.agent_traceback is None
    assert result.actual.output == {"answer": "NEW", "calls": 0}  # [] stays [], not None
    step = result.actual.step_list[0]
    assert isinstance(step, LLMCallStep) and isinstance(step.raw, dict)
    assert step.raw["content"] == "NEW", "the saved actual shows what the agent was given"


def test_an_output_changed_by_a_blocked_call_the_agent_caught_names_the_block() -> None:
    """The agent catches the offline guard's error and answers otherwise: the output
    finding says what replay blocked (nothing leaves this host: the guard refuses before
    any packet)."""
    import urllib.request

    def agent(_: Any) -> str:
        try:
            urllib.request.urlopen("http://192.0.2.1/status", timeout=1)  # TEST-NET-1
        except Exception:
            return "offline fallback"
        return "online"

    golden = Session.model_validate({"name": "o", "input": None, "steps": [], "output": "online"})
    run = execute(golden, agent, settings=RunSettings(offline=True))
    first = judge(golden, run).first
    assert first is not None and first.kind == "output"
    assert "opswald replay is offline: blocked connection to 192.0.2.1:80" in first.message


def test_a_generator_adapter_runs_to_its_end_and_its_output_is_what_it_yielded() -> None:
    def streaming(input: Any) -> Any:
        for word in input.split():
            yield echo_llm(model="m", messages=[{"role": "user", "content": word}])["content"]

    async def async_streaming(input: Any) -> Any:
        for word in input.split():
            yield echo_llm(model="m", messages=[{"role": "user", "content": word}])["content"]

    for agent in (streaming, async_streaming):
        golden = record(agent, "a b")
        assert golden.output == ["A", "B"]
        assert [s.type for s in golden.step_list] == ["llm_call", "llm_call"]
        _, verdict = replay(golden, agent)
        assert verdict.passed, verdict.findings


def test_a_run_with_no_model_call_costs_nothing_for_a_cost_budget() -> None:
    """An agent that now answers without asking the model spent $0: its cost budget holds
    (the run fails for its unused calls, not for a cost it 'cannot check')."""
    from opswald.expect.budgets import figures

    def asks(input: Any) -> Any:
        return echo_llm(model="m", messages=[{"role": "user", "content": input}])["content"]

    golden = record(asks, "hi")
    data = golden.model_dump()
    data["expect"] = {"budgets": {"cost": 1.0}}
    golden = Session.model_validate(data)
    run, verdict = replay(golden, lambda input: "HI")
    assert figures(run.actual).cost == 0.0
    assert [f.kind for f in verdict.findings if f.kind == "budget"] == []
    assert not verdict.passed  # its recorded call went unused


def test_before_step_numbers_of_calls_that_begin_at_once_in_threads_are_distinct() -> None:
    """Each thread's before_step sees its own step number: it is reserved before the
    listeners are told (the four calls wait for each other inside before_step)."""
    barrier = threading.Barrier(4, timeout=10)
    seen: list[int] = []

    class Listener:
        def before_step(self, ctx: Any, info: Any) -> None:
            seen.append(info.number)
            barrier.wait()

    def agent(_: Any) -> list[Any]:
        def ask(i: int) -> Any:
            return echo_llm(model="m", messages=[{"role": "user", "content": f"q{i}"}])

        with ThreadPoolExecutor(4) as pool:
            return [a["content"] for a in pool.map(ask, range(4))]

    stub = Session(name="s", input=None)
    settings = RunSettings(policy="live", block_side_effects=False, listeners=(Listener(),))
    run = execute(stub, agent, settings=settings)
    assert sorted(seen) == [1, 2, 3, 4]
    assert [s.step for s in run.actual.step_list] == [1, 2, 3, 4]


def test_each_diverging_call_of_a_gathered_burst_is_shown_beside_its_own_recording() -> None:
    """Three gathered model calls that all changed: three findings, at three different
    steps, each comparing a request with the recorded one it came from."""
    import asyncio

    def gathered(parts: list[str]) -> list[Any]:
        async def main() -> list[Any]:
            calls = (summarise(model="m", messages=[{"role": "user", "content": p}]) for p in parts)
            return list(await asyncio.gather(*calls))

        return asyncio.run(main())

    parts = ["first part", "second part", "third part"]
    golden = record(gathered, parts)
    _, verdict = replay(golden, lambda _: gathered([f"{p} please" for p in parts]))
    shown = sorted(
        (f.step, d.golden, d.actual)
        for f in verdict.findings
        if f.kind == "mismatch"
        for d in f.differences
    )
    assert shown == [(i + 1, p, f"{p} please") for i, p in enumerate(parts)]


def test_a_diverging_call_of_a_chain_is_compared_with_the_next_recorded_call() -> None:
    """Model calls one after the other (no tools between, not in flight together) are no
    burst: a changed first request is shown beside step 1, the call it replaces, not
    beside the later call it happens to resemble most."""

    def chain(first: str) -> Any:
        for text in (first, "summarise that", "hello world, again"):
            echo_llm(model="m", messages=[{"role": "user", "content": text}])
        return "done"

    golden = record(lambda _: chain("hello"))
    _, verdict = replay(golden, lambda _: chain("hello world, again!"))
    (finding,) = [f for f in verdict.findings if f.kind == "mismatch"]
    assert finding.step == 1
    assert [(d.golden, d.actual) for d in finding.differences] == [("hello", "hello world, again!")]


@opswald.llm
async def answers_later_the_earlier_asked(
    *, model: str, messages: list[dict[str, Any]]
) -> dict[str, Any]:
    import asyncio

    i = int(messages[-1]["content"][-1])
    await asyncio.sleep(0.01 * (3 - i))  # recorded: the last asked answers first
    return {"content": f"a{i}", "finish_reason": "stop"}


def test_an_update_of_a_passing_golden_with_gathered_branches_judges_it_as_replay_does() -> None:
    """Recorded, the tools ran in the order the model answered (C2, C1, C0); replayed, in
    the order asked. The tape serves them in any completion order, so an update (which
    replays until a divergence) finds nothing to rewrite, as replay does."""
    import asyncio

    def agent(_: Any) -> list[Any]:
        async def branch(i: int) -> Any:
            question = {"role": "user", "content": f"question {i}"}
            await answers_later_the_earlier_asked(model="m", messages=[question])
            return await look_up(city=f"C{i}")

        async def main() -> list[Any]:
            return list(await asyncio.gather(*(branch(i) for i in range(3))))

        return asyncio.run(main())

    golden = record(agent)
    assert [getattr(s, "input", {}).get("city") for s in golden.step_list[3:]] == ["C2", "C1", "C0"]
    for policy in ("replay", "update"):
        _, verdict = replay(golden, agent, policy=policy, block_side_effects=False)
        assert verdict.passed, (policy, verdict.findings)


def test_a_tool_call_the_function_refuses_records_what_it_was_given() -> None:
    """QA (probe26 #9): `weather(town="Oslo")` for `weather(city)` recorded `{args: [],
    town: Oslo}`: a stray empty `args`. What it was given, as given; positional arguments
    under `args` only when there are some."""

    @opswald.tool
    def weather(city: str) -> str:
        return f"sun in {city}"

    def agent(input: Any) -> Any:
        for call in ({"town": "Oslo"}, {"args": ("Oslo", "x")}):
            try:
                weather(*call.get("args", ()), **{k: v for k, v in call.items() if k != "args"})
            except TypeError:
                pass
        return "done"

    run = execute(
        Session(name="bad", input={}),
        agent,
        settings=RunSettings(policy="live", block_side_effects=False),
    )
    inputs = [s.input for s in run.actual.step_list if isinstance(s, ToolCallStep)]
    assert inputs == [{"town": "Oslo"}, {"args": ["Oslo", "x"]}]
    assert all(s.error is not None for s in run.actual.step_list)
