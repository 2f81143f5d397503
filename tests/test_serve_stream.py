"""Streams through the replay server (`opswald serve`, and the one a subprocess agent
gets), as an in-process agent gets them: a golden's stream cut short replays as it came
(what came, then the end, or the connection dropped there), and a live streamed call is
passed on chunk by chunk and recorded when its stream ends. Real openai/anthropic SDKs
as the server's clients, the fake provider on 127.0.0.1 upstream."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import anthropic
import openai
import pytest

import opswald
from fakeprovider import FakeProvider
from opswald import load
from opswald.engine.context import Context
from opswald.serve import ReplayServer
from opswald.session import LLMCallStep, Session

QUESTION = [{"role": "user", "content": "Weather in Rome?"}]
SCRIPT: dict[str, Any] = {"content": "Hello there", "chunks": [3]}
# the events each API sends up to its first piece of text
FIRST_PIECE = {"chat": 2, "responses": 5, "anthropic": 4}
APIS = ["chat", "responses", "anthropic"]


@pytest.fixture(autouse=True)
def _no_proxies(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")


def _client(api: str, base: str) -> Any:
    if api == "anthropic":
        return anthropic.Anthropic(base_url=base, api_key="sk-ant-test")
    return openai.OpenAI(base_url=base + "/v1", api_key="sk-test")


def _open(api: str, client: Any) -> Any:
    if api == "anthropic":
        return client.messages.create(
            model="claude-haiku-4-5", max_tokens=50, messages=QUESTION, stream=True
        )
    if api == "chat":
        return client.chat.completions.create(model="gpt-4o-mini", messages=QUESTION, stream=True)
    return client.responses.create(model="gpt-4.1-mini", input=QUESTION, stream=True)


def _piece(item: Any) -> str | None:
    """The text piece of a chunk or event, else None."""
    choices = getattr(item, "choices", None)
    if choices:
        return choices[0].delta.content or None
    if getattr(item, "type", None) == "response.output_text.delta":
        return str(item.delta)
    delta = getattr(item, "delta", None)
    text = getattr(delta, "text", None)
    return text if isinstance(text, str) else None


def _agent(api: str, base: str, *, stop: bool = False, on_first: Any = None) -> dict[str, Any]:
    """Stream one call and keep what came (`stop`: stop at the first piece of text and
    close the stream; `on_first` is called once the first chunk came), up to the
    exception the SDK raises."""
    got: list[Any] = []
    with _client(api, base) as client:
        try:
            with _open(api, client) as stream:
                for item in stream:
                    got.append(item.model_dump(mode="json", exclude_none=True))
                    if on_first is not None and len(got) == 1:
                        on_first()
                    if stop and _piece(item) is not None:
                        break
        except Exception as exc:
            return {"got": got, "error": type(exc).__name__}
    return {"got": got}


def _recorded_in_process(
    tmp_path: Path, api: str, script: dict[str, Any], *, stop: bool
) -> tuple[Session, dict[str, Any]]:
    """A golden recorded by an in-process agent, and what that agent got."""
    path = tmp_path / f"{api}.golden.yaml"
    with FakeProvider(script=[script]) as fp, opswald.record(path, input="q") as rec:
        rec.output = _agent(api, fp.base_url, stop=stop)
        fp.wait_ended()
    return load(path), rec.output


def _step(steps: Any) -> LLMCallStep:
    [step] = [s for s in steps if isinstance(s, LLMCallStep)]
    return step


# -- 1. a golden's stream cut short, replayed by the server -------------------------------


@pytest.mark.parametrize("api", APIS)
@pytest.mark.parametrize("how", ["cut_after", "hold_after"])
def test_the_server_replays_a_stream_cut_short_as_it_came(
    tmp_path: Path, api: str, how: str
) -> None:
    """A golden whose stream's connection failed after the first piece of text: the
    server sends what came, then drops the connection, so the SDK raises to the agent
    after those chunks, as live, after one attempt; it answered HTTP 502 to every
    attempt, and the agent got no chunk. A stream closed early sends what came, then
    ends."""
    script = {**SCRIPT, how: FIRST_PIECE[api]}
    session, live = _recorded_in_process(tmp_path, api, script, stop=how == "hold_after")
    said = {"cut_after": "connection failed", "hold_after": "closed early"}[how]
    assert (_step(session.step_list).attributes or {})["stream_cut"] == said
    assert live["got"], "nothing came before the stream was cut"

    ctx = Context(golden=session, policy="replay")
    with ReplayServer(ctx) as server:
        replayed = _agent(api, server.url, stop=how == "hold_after")
    assert replayed == live
    assert server.divergences == []
    assert sorted(ctx.served) == [1]


# -- 2. a live streamed call, passed on as it comes ---------------------------------------


def _live_ctx() -> Context:
    return Context(golden=None, policy="live")


def _through(ctx: Context, fp: FakeProvider, api: str, **how: Any) -> dict[str, Any]:
    """The agent's call through a replay server on `ctx` that forwards it to `fp`."""
    upstreams = {"openai": fp.base_url, "anthropic": fp.base_url}
    with ReplayServer(ctx, upstreams=upstreams) as server:
        return _agent(api, server.url, **how)


@pytest.mark.parametrize("api", APIS)
def test_the_server_passes_a_live_stream_on_as_the_provider_sends_it(api: str) -> None:
    """The provider sends one event, then holds the rest back until the agent has its
    first chunk: the server must pass that chunk on, not wait for the whole answer (it
    did, and the agent got its first chunk only once the provider sent them all). The
    step is recorded whole when the stream ends."""
    held: list[int] = []
    ctx = _live_ctx()
    with FakeProvider(script=[{**SCRIPT, "hold_after": 1}]) as fp:

        def first_came() -> None:
            held.append(fp.unsent)
            fp.release()

        got = _through(ctx, fp, api, on_first=first_came)
        ends = fp.wait_ended()
    assert "error" not in got
    assert ends == ["sent"]
    assert held[0] > 0, "the agent got its first chunk only once the provider sent them all"
    step = _step(ctx.steps)
    assert step.output is not None and step.output.content == "Hello there"
    assert step.output.finish_reason is not None and step.error is None
    assert "stream_cut" not in (step.attributes or {})


@pytest.mark.parametrize("api", APIS)
def test_an_agent_that_stops_reading_closes_the_live_stream_upstream_too(api: str) -> None:
    """The provider holds the rest back after the first piece of text; the agent stops
    there and closes the stream: the server closes the upstream connection, so the
    provider sends nothing more (it waited for the whole answer, and the agent with it),
    and records the step as far as it came, closed early."""
    script = {**SCRIPT, "hold_after": FIRST_PIECE[api]}
    with FakeProvider(script=[script]) as fp:
        live = _agent(api, fp.base_url, stop=True)
        fp.wait_ended()
    ctx = _live_ctx()
    with FakeProvider(script=[script]) as fp:
        got = _through(ctx, fp, api, stop=True)
        ends = fp.wait_ended()
    assert got == live
    assert ends == ["closed by client"], "the server read the rest of the answer"
    step = _step(ctx.steps)
    assert step.error is None and step.usage is None
    assert step.output is not None and step.output.content == "Hel"
    assert (step.attributes or {})["stream_cut"] == "closed early"


@pytest.mark.parametrize("api", APIS)
def test_a_live_stream_whose_connection_fails_fails_the_client_after_what_came(api: str) -> None:
    """The provider drops the connection after the first piece of text: the agent gets
    the chunks that came, then the SDK's exception, after one attempt, as without the
    server (it answered HTTP 502, which the SDK retried). The step holds what came and
    the error."""
    script = {**SCRIPT, "cut_after": FIRST_PIECE[api]}
    with FakeProvider(script=[script]) as fp:
        live = _agent(api, fp.base_url)
    ctx = _live_ctx()
    with FakeProvider(script=[script]) as fp:
        got = _through(ctx, fp, api)
        attempts = len(fp.requests)
    assert "error" in live and live["got"]
    assert got == live
    assert attempts == 1
    step = _step(ctx.steps)
    assert step.error is not None and step.error.type == "IncompleteRead"
    assert step.output is not None and step.output.content == "Hel"
    assert step.usage is None
    attributes = step.attributes or {}
    assert attributes["stream_cut"] == "connection failed"
    assert attributes["transport_error"] is True


def test_a_live_stream_left_open_when_the_server_stops_is_recorded_as_far_as_it_came() -> None:
    """The agent reads the first chunk and keeps the stream open (the provider holds the
    rest back) while the server stops, as at the end of a subprocess agent's run: the
    step is recorded then, closed early, and the provider sends nothing more."""
    ctx = _live_ctx()
    with FakeProvider(script=[{**SCRIPT, "hold_after": 1}]) as fp:
        upstreams = {"openai": fp.base_url, "anthropic": fp.base_url}
        server = ReplayServer(ctx, upstreams=upstreams).start()
        client = _client("chat", server.url)
        stream = _open("chat", client)
        first = next(iter(stream))
        assert ctx.steps == [None], "the stream has not ended yet"
        server.stop()  # the agent still holds its stream open
        ends = fp.wait_ended()
        stream.close()
        client.close()
    assert first.choices[0].delta.role == "assistant"
    assert ends == ["closed by client"]
    step = _step(ctx.steps)
    assert (step.attributes or {})["stream_cut"] == "closed early"
    assert step.output is not None and step.output.content is None, "only the role came"


# -- a subprocess agent's stream cut short, recorded and replayed through the server ------

SUB_AGENT = """
import json
import os
import sys

import openai

json.load(sys.stdin)
got = []
with openai.OpenAI() as client:
    try:
        with client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "Hi?"}], stream=True
        ) as stream:
            for chunk in stream:
                got.append(chunk.model_dump(mode="json", exclude_none=True))
                if os.environ.get("STOP") and chunk.choices and chunk.choices[0].delta.content:
                    break
    except Exception as exc:
        got.append({"error": type(exc).__name__})
print(json.dumps(got))
"""


@pytest.mark.parametrize("how", ["hold_after", "cut_after"])
def test_a_subprocess_agents_stream_cut_short_records_and_replays(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    """A subprocess agent stops reading at the first piece of text (the provider holds
    the rest back), or its stream's connection fails there: the step is recorded as far
    as it came, the provider sent nothing more, and the golden replays with the provider
    gone (the agent gets what came, then the end or the failed connection, as live)."""
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-proj-" + "Q" * 40)
    if how == "hold_after":
        monkeypatch.setenv("STOP", "1")
    (pytester.path / "agent.py").write_text(SUB_AGENT)
    pytester.makeini(f"[pytest]\nopswald_adapter = subprocess:{sys.executable} agent.py\n")
    pytester.mkdir("goldens")
    golden = pytester.path / "goldens" / "sub.golden.yaml"
    golden.write_text("name: sub\ninput:\n  q: Hi?\n")
    with FakeProvider(script=[{**SCRIPT, how: FIRST_PIECE["chat"]}]) as fp:
        monkeypatch.setenv("OPENAI_BASE_URL", fp.base_url + "/v1")
        recorded = pytester.runpytest("--opswald-goldens", "--opswald-mode=record")
        assert recorded.ret == 0, recorded.stdout.str()
        ends = fp.wait_ended()
    monkeypatch.delenv("OPENAI_BASE_URL")
    assert ends == [{"hold_after": "closed by client", "cut_after": "cut"}[how]]
    session = load(golden)
    step = _step(session.step_list)
    said = {"hold_after": "closed early", "cut_after": "connection failed"}[how]
    assert (step.attributes or {})["stream_cut"] == said
    assert step.output is not None and step.output.content == "Hel"
    assert isinstance(session.output, list)
    chunks = session.output[:2]  # the role chunk, then the first piece of text
    assert chunks[-1]["choices"][0]["delta"]["content"] == "Hel"
    errors = {"hold_after": [], "cut_after": [{"error": "APIConnectionError"}]}
    assert session.output[2:] == errors[how]

    pytester.runpytest("--opswald-goldens", "-p", "no:cacheprovider").assert_outcomes(passed=1)
