"""Streams cut short in shapes of their own: an Anthropic stream that stops in the middle
of a tool input, a Chat Completions stream whose connection fails before its first event,
a Responses item that came whole in `output_item.added` and was closed early; the cost of
a stream cut short; and an agent that now reads on past where its stream was closed when
recording. Real openai/anthropic SDKs against the fake provider on 127.0.0.1, pytest run
for real; replay with the provider gone."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from conftest import sdk_setup
from opswald.session import STREAM_CHUNKS, LLMCallStep, Session
from sdk_projects import WRITE_SEEN, live_run, llm_steps, record, replay, replay_seen

AGENT = '''
"""Agents that stream one call and keep what it gave them (MODE picks one); an exception
the SDK raises is kept by its class name; SEEN names a file they are written to."""
import json
import os

QUESTION = [{"role": "user", "content": "Weather in Paris?"}]


def _seen(item):
    return item.model_dump(mode="json", exclude_none=True)


def anthropic_tool(got):
    """messages.stream(): stops at the first piece of the tool input, unless READ_ALL."""
    import anthropic
    with anthropic.Anthropic(max_retries=0) as client:
        with client.messages.stream(model="claude-haiku-4-5", max_tokens=50,
                                    messages=QUESTION) as stream:
            for event in stream:
                got.append(_seen(event))
                if event.type == "input_json" and not os.environ.get("READ_ALL"):
                    break


def chat_raw(got):
    """chat.completions.create(stream=True), read to its end."""
    import openai
    with openai.OpenAI(max_retries=0) as client:
        for chunk in client.chat.completions.create(model="gpt-4o-mini", messages=QUESTION,
                                                    stream=True):
            got.append(_seen(chunk))


def chat_helper(got):
    """chat.completions.stream(): stops at the first piece of text, unless READ_ALL; then
    it reads to the end and keeps the final completion's text."""
    import openai
    with openai.OpenAI(max_retries=0) as client:
        with client.chat.completions.stream(model="gpt-4o-mini", messages=QUESTION) as stream:
            for event in stream:
                if event.type == "content.delta" and event.delta:
                    got.append(event.delta)
                    if not os.environ.get("READ_ALL"):
                        break
            if os.environ.get("READ_ALL"):
                got.append(stream.get_final_completion().choices[0].message.content)


def responses_whole(got):
    """responses.stream(): what each output_item.added carried, then stops at the first
    piece of text or arguments."""
    import openai
    with openai.OpenAI(max_retries=0) as client:
        with client.responses.stream(model="gpt-4.1-mini", input=QUESTION) as stream:
            for event in stream:
                got.append(_seen(event))
                if event.type in ("response.output_text.delta",
                                  "response.function_call_arguments.delta"):
                    break


def chat_pumped(got):
    """An async stream read ahead by a task of its own into a queue (as the OpenAI Agents
    SDK and PydanticAI's debounced text do); the agent takes the first piece of text,
    then cancels the task: the task has already asked for more than came."""
    import asyncio
    import openai

    async def main():
        async with openai.AsyncOpenAI(max_retries=0) as client:
            stream = await client.chat.completions.create(model="gpt-4o-mini",
                                                          messages=QUESTION, stream=True)
            queue = asyncio.Queue()

            async def pump():
                async for chunk in stream:
                    await queue.put(chunk)

            task = asyncio.create_task(pump())
            while True:
                chunk = await queue.get()
                if chunk.choices and chunk.choices[0].delta.content:
                    got.append(chunk.choices[0].delta.content)
                    break
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            await stream.close()

    asyncio.run(main())


def run(input):
    got = []
    try:
        globals()[os.environ["MODE"]](got)
    except Exception as exc:
        got.append({"error": type(exc).__name__})
    _write_seen(got)
    return got
'''
AGENT += WRITE_SEEN

GOLDEN = "goldens/cut.golden.yaml"
CALL = {"name": "get_weather", "arguments": {"city": "Paris"}}


@pytest.fixture
def project(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    stub = "name: cut\ninput:\n  q: Weather in Paris?\n"
    sdk_setup(
        pytester, monkeypatch, module="cutagent", agent=AGENT, golden=GOLDEN, stub=stub,
        clear=("READ_ALL", "SEEN"),
    )  # fmt: skip
    yield pytester


def _live(mode: str, script: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> Any:
    """What the agent gets without opswald."""
    return live_run(AGENT, "cutagent.py", monkeypatch, mode, [script]).got


def _record(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, mode: str, script: dict[str, Any]
) -> Session:
    return record(pytester, monkeypatch, GOLDEN, mode, [script], wait_ended=True).got


def _step(session: Session) -> LLMCallStep:
    [step] = llm_steps(session)
    return step


# -- 1. an Anthropic stream that stops in the middle of a tool input -------------------------


@pytest.mark.parametrize("how", ["hold_after", "cut_after"])
def test_an_anthropic_tool_input_cut_short_replays_in_the_pieces_it_came_in(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    """The stream stops after the first pieces of a tool input (`{"c`, ...): the step
    keeps the partial input as the text that came. Replay sent that text as a JSON string
    literal (`"{\\"cit`), and the SDK raised `Unable to parse tool parameter JSON` (in
    place of the recorded RemoteProtocolError, for a connection that failed)."""
    script = {"content": "x", "tool_calls": [CALL], "chunks": [3], how: 9}
    if how == "cut_after":  # the agent reads on, into the failed connection
        monkeypatch.setenv("READ_ALL", "1")
    live = _live("anthropic_tool", script, monkeypatch)
    session = _record(project, monkeypatch, "anthropic_tool", script)
    assert session.output == live, "recording changed what the agent got"
    pieces = [e["partial_json"] for e in live if e.get("type") == "input_json"]
    assert pieces and pieces[0] == '{"c'
    step = _step(session)
    assert step.attributes is not None
    said = {"hold_after": "closed early", "cut_after": "connection failed"}[how]
    assert step.attributes["stream_cut"] == said
    [call] = step.output.tool_calls if step.output and step.output.tool_calls else [None]
    assert isinstance(call, dict) and isinstance(call["arguments"], str)

    assert replay_seen(project, monkeypatch) == live


# -- 2. a Chat Completions stream whose connection fails before its first event -----------


def test_a_chat_stream_cut_before_its_first_event_replays_the_error_first(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Nothing came but the headers: the step has no answer to make up (no `raw` of
    nulls, no chunks), and replay raises the error before any chunk, as live; it sent a
    role chunk that never came, and the golden failed its own replay."""
    script = {"content": "hello", "cut_after": 0}
    live = _live("chat_raw", script, monkeypatch)
    assert live == [{"error": "APIConnectionError"}]
    session = _record(project, monkeypatch, "chat_raw", script)
    assert session.output == live
    step = _step(session)
    assert step.raw is None
    assert step.attributes is not None and STREAM_CHUNKS not in step.attributes
    assert step.attributes["stream_cut"] == "connection failed"
    replay(project).assert_outcomes(passed=1)


# -- 3. a Responses item added whole, closed early ------------------------------------------


@pytest.mark.parametrize(
    "script",
    [
        {"tool_calls": [CALL], "chunks": [4], "added_whole": True, "hold_after": 5},
        {"content": "Sunny in Paris", "chunks": [4], "added_whole": True, "hold_after": 7},
    ],
    ids=["function_call", "message"],
)
def test_a_responses_item_added_whole_and_closed_early_replays_as_it_came(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, script: dict[str, Any]
) -> None:
    """`output_item.added` carried the item whole, then its deltas began and the agent
    closed the stream: the item as far as it came is what `added` carried (not the whole
    text glued to the deltas), its `added: whole` mark is kept, and replay sends the added
    item whole and the deltas as they came."""
    live = _live("responses_whole", script, monkeypatch)
    session = _record(project, monkeypatch, "responses_whole", script)
    assert session.output == live, "recording changed what the agent got"
    step = _step(session)
    assert step.output is not None
    if script.get("tool_calls"):
        [call] = step.output.tool_calls or [None]
        assert isinstance(call, dict) and call["arguments"] == {"city": "Paris"}
    else:
        assert step.output.content == "Sunny in Paris"
    assert step.attributes is not None
    assert step.attributes[STREAM_CHUNKS].get("output[0].added") == "whole"
    replay(project).assert_outcomes(passed=1)


# -- 4. the cost of a stream cut short ---------------------------------------------------------


@pytest.mark.parametrize(
    ("how", "said", "why"),
    [
        ("hold_after", "closed early", "its stream was closed early"),
        ("cut_after", "connection failed", "its stream's connection failed mid-way"),
    ],
)
def test_the_cost_of_a_stream_cut_short_is_unknown_and_a_budget_says_why(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, how: str, said: str, why: str
) -> None:
    """A stream the agent closed early and one whose connection failed both have no known
    cost (the provider's count of an answer cut short is not known): a cost budget cannot
    be checked, and says the stream of step 1 is why, not that the model has no price.
    A failed connection counted $0, so any budget passed."""
    mode = "chat_helper" if how == "hold_after" else "chat_raw"
    script = {"content": "Sunny in Paris", "chunks": [3], how: 2}
    session = _record(project, monkeypatch, mode, script)
    assert _step(session).attributes["stream_cut"] == said  # type: ignore[index]
    golden = project.path / GOLDEN
    golden.write_text(golden.read_text() + "expect:\n  budgets:\n    cost: 0.0000001\n")
    result = replay(project)
    result.assert_outcomes(failed=1)
    out = result.stdout.str()
    assert "budget cost cannot be checked" in out
    assert f"step 1: {why}" in out, out
    assert "a stream cut short has no known cost" in out
    assert "configure prices" not in out, out
    assert "budget tokens" not in out, "a token budget counts the cut step as 0 tokens"


# -- 5. an agent that now reads on past where its stream was closed --------------------------


def test_an_agent_reading_past_a_stream_closed_early_fails_naming_the_step(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Recorded: the agent stopped at the first piece of text. Replayed: the agent reads to
    the end. The replayed stream ends where it was closed (that is all the golden has), so
    the agent got a truncated answer; the failure says so, naming the step, and says to
    record the call again; an update does not bless the truncated answer."""
    script = {"content": "Sunny in Paris", "chunks": [3], "hold_after": 2}
    session = _record(project, monkeypatch, "chat_helper", script)
    assert session.output == ["Sun"]
    golden = project.path / GOLDEN
    before = golden.read_text()
    monkeypatch.setenv("READ_ALL", "1")
    result = replay(project)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*output differs*",
            "*hint: step 1: record the golden again with --opswald-mode=rerecord*",
            "*step 1*the agent asked for more of a stream that was recorded closed early*",
        ]
    )
    assert "ignore_paths" not in result.stdout.str()

    updated = replay(project, "--opswald-update")
    updated.assert_outcomes(failed=1)
    updated.stdout.fnmatch_lines(["*not written*--opswald-mode=rerecord*"])
    assert golden.read_text() == before


def test_a_stream_read_ahead_by_a_task_and_closed_early_replays(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A task reads the stream ahead of the agent, which stops at the first piece of text
    and cancels the task: when recording, the task was waiting for bytes that never came;
    on replay it asks for more of what the golden has. The unchanged agent passes its own
    replay (a note says the stream was asked for more; it is no failure), and the golden
    is left as it was."""
    script = {"content": "Hello there, Rome is sunny today.", "chunks": [2], "hold_after": 3}
    session = _record(project, monkeypatch, "chat_pumped", script)
    assert session.output == ["He"]
    step = _step(session)
    assert step.attributes is not None and step.attributes["stream_cut"] == "closed early"
    golden = project.path / GOLDEN
    before = golden.read_text()
    result = replay(project)
    result.assert_outcomes(passed=1)
    assert golden.read_text() == before
