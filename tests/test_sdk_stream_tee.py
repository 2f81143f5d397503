"""While recording, a streamed answer reaches the agent as the provider sends it: the agent
gets its first chunk while the provider still holds the rest, an agent that stops reading
closes the connection (the rest is never sent), and a connection that fails mid-stream
fails in the agent's hands, after the chunks that came. The step is recorded when the
stream ends, and its replay gives the agent what it got live. Real openai/anthropic SDKs
against the fake provider on 127.0.0.1."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import openai
import pytest

import opswald
from conftest import sdk_setup
from fakeprovider import FakeProvider
from opswald import load
from opswald.intercept.exchange import TRANSPORT_ERROR
from opswald.session import STREAM_CHUNKS, Session
from sdk_projects import live_run, llm_steps, record, replay

QUESTION = [{"role": "user", "content": "Weather in Rome?"}]
OPENAI_KEY = "sk-proj-" + "A1b2C3d4" * 5
ANTHROPIC_KEY = "sk-ant-api03-" + "Z9y8X7w6" * 5
SCRIPT: dict[str, Any] = {"content": "Hello there", "chunks": [3]}


@pytest.fixture(autouse=True)
def _no_proxies(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")


# -- (1) the first chunk comes before the provider sent the rest -------------------------


def _client(api: str, base: str, is_async: bool) -> Any:
    if api == "anthropic":
        kind: Any = anthropic.AsyncAnthropic if is_async else anthropic.Anthropic
        return kind(base_url=base, api_key=ANTHROPIC_KEY)
    kind = openai.AsyncOpenAI if is_async else openai.OpenAI
    return kind(base_url=base + "/v1", api_key=OPENAI_KEY)


def _open(api: str, client: Any) -> Any:
    """The stream of one call (awaitable with an async client)."""
    if api == "anthropic":
        return client.messages.create(
            model="claude-haiku-4-5", max_tokens=50, messages=QUESTION, stream=True
        )
    if api == "chat":  # with its usage chunk, whose usage and cost the step keeps
        return client.chat.completions.create(
            model="gpt-4o-mini",
            messages=QUESTION,
            stream=True,
            stream_options={"include_usage": True},
        )
    return client.responses.create(model="gpt-4.1-mini", input=QUESTION, stream=True)


def _seen(item: Any) -> Any:
    """What the agent keeps of one chunk or event."""
    return item.model_dump(mode="json", exclude_none=True)


def _read(
    api: str, base: str, fp: FakeProvider | None, is_async: bool, held: list[int]
) -> list[Any]:
    """The agent: its first chunk, then (`held`: how many events the provider still held
    back then; `fp` is None on replay) the rest of the stream."""

    def first_came() -> None:
        if fp is not None:
            held.append(fp.unsent)
            fp.release()

    if not is_async:
        with _client(api, base, is_async) as client, _open(api, client) as stream:
            items = iter(stream)
            got = [_seen(next(items))]
            first_came()
            got += [_seen(item) for item in items]
        return got

    async def run() -> list[Any]:
        async with _client(api, base, is_async) as client:
            stream = await _open(api, client)
            async with stream:
                items = stream.__aiter__()
                got = [_seen(await items.__anext__())]
                first_came()
                got += [_seen(item) async for item in items]
        return got

    return asyncio.run(run())


def _recorded(
    tmp_path: Path, name: str, script: dict[str, Any], api: str, is_async: bool
) -> tuple[Session, list[str], list[int], str]:
    path = tmp_path / f"{name}.golden.yaml"
    held: list[int] = []
    with FakeProvider(script=[script]) as fp, opswald.record(path, input="q") as rec:
        rec.output = _read(api, fp.base_url, fp, is_async, held)
        ends = fp.wait_ended()
    return load(path), ends, held, fp.base_url


@pytest.mark.parametrize("is_async", [False, True], ids=["sync", "async"])
@pytest.mark.parametrize("api", ["chat", "responses", "anthropic"])
def test_the_agent_gets_the_first_chunk_before_the_provider_sent_the_rest(
    tmp_path: Path, api: str, is_async: bool
) -> None:
    """The provider sends one event, then holds the rest back until the agent has its
    first chunk: recording must pass that chunk on, not wait for the whole answer. The
    step is the one a stream sent at once records, and it replays."""
    script = {**SCRIPT, "hold_after": 1}
    session, ends, [held], base = _recorded(tmp_path, "held", script, api, is_async)
    assert ends == ["sent"]
    assert held > 0, "the agent got its first chunk only once the provider sent them all"

    whole, _, _, _ = _recorded(tmp_path, "whole", SCRIPT, api, is_async)
    [step], [reference] = llm_steps(session), llm_steps(whole)
    assert step.output is not None and step.output.content == "Hello there"
    assert step.usage is not None and step.cost is not None
    assert step.attributes is not None
    assert list(step.attributes[STREAM_CHUNKS].values()) == [[3, 3, 3, 2]]
    assert "stream_cut" not in step.attributes
    kept = ("output", "usage", "cost", "raw", "attributes", "error", "input")
    assert step.model_dump(include=set(kept)) == reference.model_dump(include=set(kept))

    replayed = opswald.Replay(session, adapter=lambda _: _read(api, base, None, is_async, []))
    result = replayed.run()
    assert result is not None and result.passed, replayed.log
    assert session.output == whole.output
    assert replayed.final_output == session.output


def test_a_stream_left_unread_when_the_run_ends_is_recorded_as_far_as_it_came(
    tmp_path: Path,
) -> None:
    """The agent reads one chunk and returns with the stream still open (the provider
    holds the rest back): the step is recorded when the run ends, closed early, in its
    place; its replay gives the agent that chunk again."""
    path = tmp_path / "left.golden.yaml"
    script = {**SCRIPT, "hold_after": 1}  # the role chunk, then nothing until released
    with FakeProvider(script=[script]) as fp, _client("chat", fp.base_url, False) as client:
        with opswald.record(path, input="q") as rec:
            stream = _open("chat", client)
            rec.output = [_seen(next(iter(stream)))]
            assert rec.steps == [], "the stream has not ended yet"
        fp.release()
        stream.close()
    session = load(path)
    [step] = llm_steps(session)
    assert step.attributes is not None and step.attributes["stream_cut"] == "closed early"
    assert step.output is not None and step.output.content is None, "only the role came"
    assert step.usage is None and step.cost is None

    def agent(_: Any) -> Any:
        with _client("chat", fp.base_url, False) as client:
            stream = _open("chat", client)
            got = [_seen(next(iter(stream)))]
            stream.close()
            return got

    replayed = opswald.Replay(session, adapter=agent)
    result = replayed.run()
    assert result is not None and result.passed, replayed.log


# -- (2) an agent that stops reading, (3) a connection that fails mid-stream ------------

AGENT = '''
"""Agents that stream one call and keep what they got (MODE picks one). With STOP=1 they
stop reading at the first piece of text (the stream is closed); else they read on, up to
the exception the SDK raises."""
import asyncio
import os

QUESTION = [{"role": "user", "content": "Weather in Rome?"}]


def _piece(item):
    """The text piece of a chunk or event, else None."""
    choices = getattr(item, "choices", None)
    if choices:
        return choices[0].delta.content or None
    if getattr(item, "type", None) == "response.output_text.delta":
        return item.delta
    delta = getattr(item, "delta", None)
    return getattr(delta, "text", None)


def _keep(got, item):
    """True when the agent stops reading here."""
    got.append(item.model_dump(mode="json", exclude_none=True))
    return bool(os.environ.get("STOP")) and _piece(item) is not None


def _failed(got, exc):
    return {"got": got, "error": type(exc).__name__, "message": str(exc)}


def _open(api, client):
    if api == "anthropic":
        return client.messages.create(model="claude-haiku-4-5", max_tokens=50,
                                      messages=QUESTION, stream=True)
    if api == "chat":
        return client.chat.completions.create(model="gpt-4o-mini", messages=QUESTION,
                                              stream=True)
    return client.responses.create(model="gpt-4.1-mini", input=QUESTION, stream=True)


def sync(api):
    import anthropic, openai
    got = []
    with anthropic.Anthropic() if api == "anthropic" else openai.OpenAI() as client:
        try:
            with _open(api, client) as stream:
                for item in stream:
                    if _keep(got, item):
                        break
        except Exception as exc:
            return _failed(got, exc)
    return {"got": got}


async def async_(api):
    import anthropic, openai
    got = []
    async with anthropic.AsyncAnthropic() if api == "anthropic" else openai.AsyncOpenAI() as client:
        try:
            stream = await _open(api, client)
            async with stream:
                async for item in stream:
                    if _keep(got, item):
                        break
        except Exception as exc:
            return _failed(got, exc)
    return {"got": got}


def run(input):
    api, kind = os.environ["MODE"].split("-")
    if kind == "async":
        return asyncio.run(async_(api))
    return sync(api)
'''

GOLDEN = "goldens/teed.golden.yaml"
# the events each API sends up to its first piece of text (Anthropic: message_start, a
# ping, content_block_start, the first delta)
FIRST_PIECE = {"chat": 2, "responses": 5, "anthropic": 4}
MODES = ["chat-sync", "chat-async", "responses-sync", "anthropic-sync", "anthropic-async"]


@pytest.fixture
def project(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    stub = "name: teed\ninput:\n  q: Weather in Rome?\n"
    sdk_setup(pytester, monkeypatch, module="teeagent", agent=AGENT, golden=GOLDEN, stub=stub)
    monkeypatch.delenv("STOP", raising=False)
    yield pytester


def _live(mode: str, script: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> Any:
    """What the agent gets without opswald, and how the provider's stream ended."""
    output, fp, ends = live_run(AGENT, "teeagent.py", monkeypatch, mode, [script], wait_ended=True)
    return output, ends, len(fp.requests)


def _record(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, mode: str, script: dict[str, Any]
) -> tuple[Session, list[str], int]:
    session, fp, ends = record(pytester, monkeypatch, GOLDEN, mode, [script], wait_ended=True)
    return session, ends, len(fp.requests)


@pytest.mark.parametrize("mode", MODES)
def test_an_agent_that_stops_reading_closes_the_stream_and_its_golden_replays(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, mode: str
) -> None:
    """The provider holds the rest of the answer back after the first piece of text: the
    agent stops there and closes the stream, so the provider sees the connection closed
    and never sends the rest. The step holds what came, says it was closed early, and has
    no usage (the provider's count of an answer cut short is unknown)."""
    api = mode.partition("-")[0]
    script = {**SCRIPT, "hold_after": FIRST_PIECE[api]}
    monkeypatch.setenv("STOP", "1")
    live, live_ends, _ = _live(mode, script, monkeypatch)
    assert live_ends == ["closed by client"]
    session, ends, calls = _record(project, monkeypatch, mode, script)
    assert ends == ["closed by client"], "recording read the rest of the answer"
    assert calls == 1
    assert session.output == live, "recording changed what the agent got"
    assert session.error is None

    [step] = llm_steps(session)
    assert step.error is None
    assert step.output is not None and step.output.content == "Hel"
    assert step.output.finish_reason is None
    assert step.usage is None and step.cost is None
    assert step.attributes is not None and step.attributes["stream_cut"] == "closed early"
    assert list(step.attributes[STREAM_CHUNKS].values()) == [[3]]

    result = replay(project)
    result.assert_outcomes(passed=1)


@pytest.mark.parametrize("mode", MODES)
def test_a_connection_that_fails_mid_stream_is_recorded_and_fails_again_on_replay(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, mode: str
) -> None:
    """The provider drops the connection after the first piece of text: the agent gets
    that piece, then the SDK's exception, after one attempt (the SDKs do not retry a
    stream they already gave the agent). The step holds what came and the error; replay
    sends what came, then raises the same error where it came."""
    api = mode.partition("-")[0]
    script = {**SCRIPT, "cut_after": FIRST_PIECE[api]}
    live, _, live_calls = _live(mode, script, monkeypatch)
    assert live_calls == 1 and "error" in live
    session, ends, calls = _record(project, monkeypatch, mode, script)
    assert ends == ["cut"]
    assert calls == 1, "recording made the SDK retry"
    assert session.output == live, "recording changed what the agent got"

    [step] = llm_steps(session)
    assert step.error is not None and step.error.type == "RemoteProtocolError"
    assert step.output is not None and step.output.content == "Hel"
    assert step.usage is None and step.cost is None
    assert step.attributes is not None
    assert step.attributes["stream_cut"] == "connection failed"
    assert step.attributes[TRANSPORT_ERROR] is True

    result = replay(project)
    result.assert_outcomes(passed=1)
