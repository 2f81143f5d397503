"""A stream that breaks off with an error event (the API answered HTTP 200, then reported
an overload or a server error inside the stream): recording leaves the agent what it got
live — the SDK's own exception, after one attempt — and the call is one step holding
what came and the error, which replay serves again. And the usage an Anthropic stream's
events carried replays as it came. Real openai/anthropic SDKs against the fake provider
on 127.0.0.1, pytest run for real."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from conftest import opswald_cli, sdk_setup
from fakeprovider import ANTHROPIC_STREAM_ERROR, CHAT_STREAM_ERROR, STREAM_ERROR_MESSAGE
from opswald import dump, load
from opswald.session import STREAM_CHUNKS, LLMCallStep, Session
from sdk_projects import RUN_BY_MODE, live_run, llm_steps, record, replay

AGENT = '''
"""Agents that stream a call and keep what they got, up to the SDK's exception (MODE
picks one). The SDKs retry as they do by default: a retried call would show."""
import json
import os

QUESTION = [{"role": "user", "content": "Weather in Rome?"}]


def _failed(got, exc):
    return {"got": got, "error": type(exc).__name__, "body": exc.body, "message": str(exc)}


def anthropic_helper(input):
    import anthropic
    got = []
    with anthropic.Anthropic() as client:
        try:
            with client.messages.stream(model="claude-haiku-4-5", max_tokens=50,
                                        messages=QUESTION) as stream:
                for text in stream.text_stream:
                    got.append(text)
        except anthropic.APIStatusError as exc:
            return _failed(got, exc)
    return {"got": got}


def _anthropic_event(event, got):
    """Every event as the agent sees it, usage included."""
    if event.type == "message_start":
        got.append(["message_start", event.message.id,
                    event.message.usage.model_dump(exclude_none=True)])
    elif event.type == "content_block_delta":
        got.append(["delta", event.index, event.delta.text])
    elif event.type == "message_delta":
        got.append(["message_delta", event.delta.stop_reason,
                    event.usage.model_dump(exclude_none=True)])
    else:
        got.append([event.type])


def anthropic_raw(input):
    import anthropic
    got = []
    with anthropic.Anthropic() as client:
        try:
            for event in client.messages.create(model="claude-haiku-4-5", max_tokens=50,
                                                messages=QUESTION, stream=True):
                _anthropic_event(event, got)
        except anthropic.APIStatusError as exc:
            return _failed(got, exc)
    return {"got": got}


async def anthropic_async(input):
    import anthropic
    got = []
    async with anthropic.AsyncAnthropic() as client:
        try:
            stream = await client.messages.create(model="claude-haiku-4-5", max_tokens=50,
                                                  messages=QUESTION, stream=True)
            async for event in stream:
                _anthropic_event(event, got)
        except anthropic.APIStatusError as exc:
            return _failed(got, exc)
    return {"got": got}


def chat(input):
    import openai
    got = []
    with openai.OpenAI() as client:
        try:
            for chunk in client.chat.completions.create(model="gpt-4o-mini", messages=QUESTION,
                                                        stream=True):
                got.append([chunk.choices[0].delta.content, chunk.choices[0].finish_reason])
        except openai.APIError as exc:
            return _failed(got, exc)
    return {"got": got}


async def chat_async(input):
    import openai
    got = []
    async with openai.AsyncOpenAI() as client:
        try:
            stream = await client.chat.completions.create(model="gpt-4o-mini",
                                                          messages=QUESTION, stream=True)
            async for chunk in stream:
                got.append([chunk.choices[0].delta.content, chunk.choices[0].finish_reason])
        except openai.APIError as exc:
            return _failed(got, exc)
    return {"got": got}


def responses(input):
    """The Responses stream reports its error as an event; the SDK raises nothing."""
    import openai
    got = []
    with openai.OpenAI() as client:
        for event in client.responses.create(model="gpt-4.1-mini", input=QUESTION,
                                             stream=True):
            if event.type == "response.output_text.delta":
                got.append([event.type, event.delta])
            elif event.type == "error":
                got.append([event.type, event.code, event.message])
            elif event.type == "response.failed":
                error = event.response.error
                got.append([event.type, event.response.status, error.code, error.message])
            elif hasattr(event, "response"):  # created, in_progress: no error yet
                error = event.response.error
                got.append([event.type, event.response.status, error and error.message])
            else:
                got.append([event.type])
    return {"got": got}


def responses_helper(input):
    """The SDK's stream helper: a failed response is no final response to it."""
    import openai
    got = []
    with openai.OpenAI() as client:
        try:
            with client.responses.stream(model="gpt-4.1-mini", input=QUESTION) as stream:
                for event in stream:
                    got.append([event.type])
                stream.get_final_response()
        except RuntimeError as exc:
            return {"got": got, "error": type(exc).__name__, "message": str(exc)}
    return {"got": got}


def responses_json(input):
    """Without streaming the SDK returns the failed response; it raises nothing."""
    import openai
    with openai.OpenAI() as client:
        reply = client.responses.create(model="gpt-4.1-mini", input=QUESTION)
    error = reply.error.model_dump(exclude_none=True) if reply.error else None
    return {"status": reply.status, "error": error, "text": reply.output_text}


def chat_json(input):
    """The same call without streaming."""
    import openai
    with openai.OpenAI(max_retries=1) as client:
        try:
            reply = client.chat.completions.create(model="gpt-4o-mini", messages=QUESTION)
        except openai.APIStatusError as exc:
            return {"error": type(exc).__name__, "status": exc.status_code, "body": exc.body}
    return {"answer": reply.choices[0].message.content}
'''
AGENT += RUN_BY_MODE

GOLDEN = "goldens/broken.golden.yaml"
BROKEN = [{"content": "Hello there", "chunks": [3], "break_after": 1}]
MODES = ["anthropic_helper", "anthropic_raw", "anthropic_async", "chat", "chat_async"]
MODES += ["responses"]


@pytest.fixture
def project(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    stub = "name: broken\ninput:\n  q: Weather in Rome?\n"
    sdk_setup(
        pytester, monkeypatch, module="brokenagent", agent=AGENT, golden=GOLDEN, stub=stub
    )  # fmt: skip
    yield pytester


def _live(mode: str, script: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch) -> Any:
    """What the agent gets without opswald, and how many calls it made."""
    output, fp, _ = live_run(AGENT, "brokenagent.py", monkeypatch, mode, script)
    return output, len(fp.requests)


def _record(
    pytester: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    mode: str,
    script: list[dict[str, Any]],
) -> tuple[Session, int]:
    session, fp, _ = record(pytester, monkeypatch, GOLDEN, mode, script)
    return session, len(fp.requests)


def _error_event(mode: str) -> Any:
    if mode.startswith("anthropic"):
        return ANTHROPIC_STREAM_ERROR
    if mode.startswith("chat"):
        return CHAT_STREAM_ERROR
    return {"code": "server_error", "message": STREAM_ERROR_MESSAGE}


@pytest.mark.parametrize("mode", MODES)
def test_a_stream_that_breaks_off_is_recorded_as_it_came_and_replayed(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, mode: str
) -> None:
    live, live_calls = _live(mode, BROKEN, monkeypatch)
    assert live_calls == 1, "the SDK does not retry an error inside a stream"
    session, calls = _record(project, monkeypatch, mode, BROKEN)
    assert calls == 1, "recording made the SDK retry"
    assert session.output == live, "recording changed what the agent got"
    assert session.error is None
    if mode != "responses":
        assert session.output["error"] in ("APIStatusError", "APIError")

    [step] = session.step_list
    assert isinstance(step, LLMCallStep)
    assert step.error is not None and step.error.type == "StreamError"
    assert step.error.message.startswith("stream error: {")
    assert step.output is not None and step.output.content == "Hel"
    assert step.output.finish_reason is None
    assert step.attributes is not None
    body = step.attributes["stream_error"]
    assert {k: body[k] for k in _error_event(mode)} == _error_event(mode)
    assert list(step.attributes[STREAM_CHUNKS].values()) == [[3]]

    result = replay(project)
    result.assert_outcomes(passed=1)
    assert "CancelledCall" not in result.stdout.str()


@pytest.mark.parametrize("mode", ["anthropic_raw", "chat"])
def test_a_replayed_broken_stream_sends_what_came_before_the_error(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, mode: str
) -> None:
    """The events of the open block (or choice) stop where the error came: no block stop,
    no finish, no closing events, which the agent would have seen."""
    session, _ = _record(project, monkeypatch, mode, BROKEN)
    got = session.output["got"] if session.output else None
    if mode == "chat":
        assert got == [["", None], ["Hel", None]]
    else:
        usage = {"input_tokens": 10, "output_tokens": 1}
        usage |= {"cache_read_input_tokens": 0, "cache_creation_input_tokens": 0}
        start = ["message_start", "msg_1", usage]
        assert got == [start, ["content_block_start"], ["delta", 0, "Hel"]]
    replay(project).assert_outcomes(passed=1)


def test_an_error_as_the_first_event_replays_alone(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    script = [{"content": "Hello", "break_after": 0}]
    session, _ = _record(project, monkeypatch, "anthropic_raw", script)
    assert session.output is not None and session.output["got"] == []
    [step] = llm_steps(session)
    assert step.error is not None and step.raw is None
    replay(project).assert_outcomes(passed=1)


def test_a_broken_stream_replayed_to_a_call_without_streaming_is_its_error(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The agent no longer streams: the recorded error comes as an HTTP error, with the
    body the stream reported, to every attempt of the SDK."""
    _record(project, monkeypatch, "chat", BROKEN)
    session = load(project.path / GOLDEN)
    output = {"error": "InternalServerError", "status": 500, "body": CHAT_STREAM_ERROR["error"]}
    dump(session.model_copy(update={"output": output}), project.path / GOLDEN)
    monkeypatch.setenv("MODE", "chat_json")
    replay(project).assert_outcomes(passed=1)


# -- a Responses answer that failed (HTTP 200, `status: "failed"`) ----------------------

FAILURE = {"code": "server_error", "message": STREAM_ERROR_MESSAGE}
FAILED = [{"content": "Hello there", "failed": FAILURE}]


@pytest.mark.parametrize("mode", ["responses", "responses_helper", "responses_json"])
def test_a_failed_response_is_an_error_step_and_replays_as_it_came(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, mode: str
) -> None:
    """A Responses stream ending in `response.failed`, or the same answer without
    streaming: the SDK raises nothing (its stream helper has no final response), and the
    step says the response failed, with the code and message the API gave."""
    live, live_calls = _live(mode, FAILED, monkeypatch)
    session, calls = _record(project, monkeypatch, mode, FAILED)
    assert calls == live_calls == 1
    assert session.output == live, "recording changed what the agent got"
    if mode == "responses":
        assert live["got"][-1] == ["response.failed", "failed", *FAILURE.values()]
        assert live["got"][:2] == [
            ["response.created", "in_progress", None],
            ["response.in_progress", "in_progress", None],
        ]
    elif mode == "responses_helper":
        assert live["error"] == "RuntimeError"
    else:
        assert live["status"] == "failed" and live["error"] == FAILURE
    assert session.error is None

    [step] = llm_steps(session)
    assert step.error is not None and step.error.type == "ResponseFailed"
    assert step.error.message == f"response failed: server_error: {STREAM_ERROR_MESSAGE}"
    assert step.output is not None and step.output.content == "Hello there"
    assert step.output.finish_reason == "failed"
    assert step.usage is not None and step.usage.total_tokens == 15, "the usage it reported"
    assert step.cost is not None and step.cost > 0
    assert "stream_error" not in (step.attributes or {}), "not a stream that broke off"
    shown = opswald_cli("show", GOLDEN, cwd=project.path)
    assert "! ResponseFailed: response failed: server_error: The server" in shown.stdout

    result = replay(project)
    result.assert_outcomes(passed=1)


# -- the usage each event of an Anthropic stream carried -------------------------------

USAGE_SCRIPT = [{"content": "Hello", "usage": {"input_tokens": 10, "output_tokens": 5}}]


def _usages(got: list[Any]) -> dict[str, Any]:
    return {e[0]: e[-1] for e in got if e[0] in ("message_start", "message_delta")}


def test_an_anthropic_stream_replays_the_usage_of_each_event_as_it_came(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    live, _ = _live("anthropic_raw", USAGE_SCRIPT, monkeypatch)
    session, _ = _record(project, monkeypatch, "anthropic_raw", USAGE_SCRIPT)
    assert session.output == live
    usages = _usages(session.output["got"])
    assert usages["message_start"]["output_tokens"] == 1
    assert usages["message_delta"] == {"output_tokens": 5}
    replay(project).assert_outcomes(passed=1)

    # they replay only while they add up to the step's usage: an edited usage is served
    # rebuilt from it
    [step] = llm_steps(session)
    assert step.usage is not None
    usage = step.usage.model_copy(update={"output_tokens": 7, "total_tokens": 17})
    edited = session.model_copy(update={"steps": [step.model_copy(update={"usage": usage})]})
    dump(edited, project.path / GOLDEN)
    result = replay(project)
    result.assert_outcomes(failed=1)
    assert "output_tokens: 5 → 7" in result.stdout.str(), "the usage as edited"
    assert "output_tokens: 1 → 0" in result.stdout.str(), "message_start's rebuilt"


def test_an_anthropic_stream_recorded_without_its_event_usage_replays_as_before(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A golden recorded before the events' usage was kept: message_start carries the
    whole usage with no output tokens yet, message_delta the whole usage."""
    _record(project, monkeypatch, "anthropic_raw", USAGE_SCRIPT)
    session = load(project.path / GOLDEN)
    [step] = llm_steps(session)
    assert step.attributes is not None and "stream_usage" in step.attributes
    old = {k: v for k, v in step.attributes.items() if k != "stream_usage"}
    whole = {"input_tokens": 10, "output_tokens": 5}
    whole |= {"cache_read_input_tokens": 0, "cache_creation_input_tokens": 0}
    usage_events = ("message_start", "message_delta")
    got = [e for e in (session.output or {})["got"] if e[0] not in usage_events]
    got.insert(0, ["message_start", "msg_1", {**whole, "output_tokens": 0}])
    got.insert(-1, ["message_delta", "end_turn", whole])
    edited = session.model_copy(
        update={"steps": [step.model_copy(update={"attributes": old})], "output": {"got": got}}
    )
    dump(edited, project.path / GOLDEN)
    replay(project).assert_outcomes(passed=1)
