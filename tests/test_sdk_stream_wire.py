"""A replayed stream is the stream the agent got live, in other providers' and gateways'
shapes too: the events the SDK gives (whole, as parsed objects) and the SSE lines a raw
reader gets (`with_streaming_response.iter_lines()`; each data line's JSON compared with its
keys in order). Real openai/anthropic SDKs against the fake provider on 127.0.0.1, pytest
run for real."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from conftest import sdk_setup
from opswald.session import STREAM_CHUNKS, Session
from sdk_projects import TOOL_AGENT, llm_steps, record, replay_seen

AGENT = '''
"""Agents that keep all a stream gave them (MODE picks one): `*_events` the SDK's parsed
events, `*_lines` the raw SSE lines (each data line's JSON re-dumped with its keys in
order, so spacing and escapes do not count). SEEN names a file they are written to."""
import json
import os

import opswald


def _done(seen):
    _write_seen(seen)
    return {"seen": seen}


def _lines(response):
    out, datas = [], []
    for line in response.iter_lines():
        if line.startswith("data: "):
            try:
                data = json.loads(line[len("data: "):])
            except ValueError:
                out.append(line)
                continue
            datas.append(data)
            line = "data: " + json.dumps(data, ensure_ascii=False)
        out.append(line)
    return out, datas


# -- OpenAI chat completions --

def _chat_kwargs(messages):
    return dict(model="gpt-4o-mini", messages=messages, stream=True,
                stream_options={"include_usage": True},
                tools=[{"type": "function", "function": TOOL}])


def chat_lines(input):
    import openai
    messages, seen = [{"role": "user", "content": input["q"]}], []
    with openai.OpenAI(max_retries=0) as client:
        for _ in range(3):
            create = client.chat.completions.with_streaming_response.create
            with create(**_chat_kwargs(messages)) as response:
                lines, datas = _lines(response)
            seen += lines
            calls = {}
            for chunk in datas:
                for choice in chunk.get("choices") or []:
                    for tc in choice["delta"].get("tool_calls") or []:
                        entry = calls.setdefault(tc["index"], {"id": tc.get("id"), "name": "",
                                                               "args": ""})
                        function = tc.get("function") or {}
                        entry["name"] += function.get("name") or ""
                        entry["args"] += function.get("arguments") or ""
            if _chat_turn(messages, calls):
                return _done(seen)
    raise RuntimeError("too many turns")


# -- OpenAI Responses --

def _responses_kwargs(items):
    return dict(model="gpt-4.1-mini", input=items, tools=[{"type": "function", **TOOL}],
                store=False, include=["reasoning.encrypted_content"])


def responses_events(input):
    import openai
    items, seen = [{"role": "user", "content": input["q"]}], []
    with openai.OpenAI(max_retries=0) as client:
        for _ in range(3):
            final = None
            for event in client.responses.create(stream=True, **_responses_kwargs(items)):
                seen.append(event.model_dump(mode="json"))
                if event.type == "response.completed":
                    final = event.response
            output = [i.model_dump(exclude_none=True) for i in final.output]
            if _responses_turn(output, items):
                return _done(seen)
    raise RuntimeError("too many turns")


def responses_lines(input):
    import openai
    items, seen = [{"role": "user", "content": input["q"]}], []
    with openai.OpenAI(max_retries=0) as client:
        for _ in range(3):
            create = client.responses.with_streaming_response.create
            with create(stream=True, **_responses_kwargs(items)) as response:
                lines, datas = _lines(response)
            seen += lines
            [final] = [d["response"] for d in datas if d["type"] == "response.completed"]
            if _responses_turn(final["output"], items):
                return _done(seen)
    raise RuntimeError("too many turns")


# -- Anthropic messages --

def _anthropic_kwargs(messages):
    tools = [{"name": TOOL["name"], "description": TOOL["description"],
              "input_schema": TOOL["parameters"]}]
    return dict(model="claude-haiku-4-5", max_tokens=2048, messages=messages, tools=tools,
                stream=True)


def anthropic_events(input):
    """The SDK's stream helper: every event, whole; the final message goes back."""
    import anthropic
    messages, seen = [{"role": "user", "content": input["q"]}], []
    with anthropic.Anthropic(max_retries=0) as client:
        for _ in range(3):
            kwargs = {k: v for k, v in _anthropic_kwargs(messages).items() if k != "stream"}
            with client.messages.stream(**kwargs) as stream:
                for event in stream:
                    seen.append(event.model_dump(mode="json"))
                final = stream.get_final_message()
            content = [b.model_dump(exclude_none=True) for b in final.content]
            if _anthropic_turn(content, messages):
                return _done(seen)
    raise RuntimeError("too many turns")


def anthropic_lines(input):
    import anthropic
    messages, seen = [{"role": "user", "content": input["q"]}], []
    with anthropic.Anthropic(max_retries=0) as client:
        for _ in range(3):
            create = client.messages.with_streaming_response.create
            with create(**_anthropic_kwargs(messages)) as response:
                lines, datas = _lines(response)
            seen += lines
            blocks, inputs = {}, {}
            for event in datas:
                if event["type"] == "content_block_start":
                    blocks[event["index"]] = dict(event["content_block"])
                elif event["type"] == "content_block_delta":
                    block, delta = blocks[event["index"]], event["delta"]
                    if delta["type"] == "text_delta":
                        block["text"] += delta["text"]
                    elif delta["type"] == "input_json_delta":
                        inputs[event["index"]] = inputs.get(event["index"], "") + delta[
                            "partial_json"]
            for index, text in inputs.items():
                blocks[index]["input"] = json.loads(text)
            if _anthropic_turn([blocks[i] for i in sorted(blocks)], messages):
                return _done(seen)
    raise RuntimeError("too many turns")
'''
AGENT += TOOL_AGENT

GOLDEN = "goldens/wire.golden.yaml"
ANSWER = "It is 21°C and sunny in Rome."
THINKING = "The user wants Rome's weather."
SIZES = [1, 4, 2, 7, 3]


def _script(**shape: Any) -> list[dict[str, Any]]:
    """A tool call, then the answer; `shape` (fake provider options) on both turns."""
    call = {"name": "get_weather", "arguments": {"city": "Rome"}}
    return [
        {"content": None, "tool_calls": [call], "chunks": SIZES, **shape},
        {"content": ANSWER, "chunks": SIZES, **shape},
    ]


@pytest.fixture
def project(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    stub = "name: wire\ninput:\n  q: Weather in Rome?\n"
    sdk_setup(
        pytester, monkeypatch, module="wireagent", agent=AGENT, golden=GOLDEN, stub=stub,
        clear=("SEEN",),
    )  # fmt: skip
    yield pytester


def _record(
    pytester: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    mode: str,
    script: list[dict[str, Any]],
) -> Session:
    return record(pytester, monkeypatch, GOLDEN, mode, script).got


def _text(seen: Any) -> str:
    """An event or a line as text, to look for what it carries."""
    return seen if isinstance(seen, str) else json.dumps(seen, ensure_ascii=False)


def _marks(session: Session) -> list[dict[str, Any]]:
    return [(s.attributes or {}).get(STREAM_CHUNKS) or {} for s in llm_steps(session)]


# -- 1. a Responses reasoning item whose summary came only with the item done ------------


@pytest.mark.parametrize("mode", ["responses_events", "responses_lines"])
def test_a_reasoning_summary_that_came_only_in_the_item_done_replays_so(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, mode: str
) -> None:
    """A gateway sends a reasoning item's summary (and its `encrypted_content`) only in
    `response.output_item.done`, with no summary events; replay made up summary events
    and put the encrypted content in `output_item.added`, so the golden failed itself."""
    session = _record(project, monkeypatch, mode, _script(thinking=THINKING))
    seen = session.output["seen"]
    assert not any("reasoning_summary" in _text(e) for e in seen)
    assert all(m.get("output[0]") for m in _marks(session))
    assert replay_seen(project, monkeypatch) == seen


# -- 2. a block start / an item added that already carried its content ---------------------


@pytest.mark.parametrize("mode", ["anthropic_events", "anthropic_lines"])
def test_an_anthropic_block_start_that_carried_text_or_input_replays_so(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, mode: str
) -> None:
    """Some providers send a text block's first piece in its `content_block_start`, or a
    tool input whole there (no `input_json_delta`); replay sent an empty start and the
    text (the input) in deltas."""
    session = _record(project, monkeypatch, mode, _script(start_joined=True))
    seen = session.output["seen"]
    starts = [_text(e) for e in seen if "content_block_start" in _text(e)]
    assert any('"text": "I"' in s for s in starts) and any('"city": "Rome"' in s for s in starts)
    assert not any("input_json_delta" in _text(e) for e in seen)
    assert [m.get("content[0]") for m in _marks(session)] == ["with input", "with first piece"]
    assert replay_seen(project, monkeypatch) == seen


@pytest.mark.parametrize("mode", ["responses_events", "responses_lines"])
def test_a_responses_item_added_whole_replays_whole(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, mode: str
) -> None:
    """Some gateways and caches send an output item whole (its text, arguments, summary)
    already in `response.output_item.added`, then its events as usual; replay sent it
    empty there."""
    session = _record(project, monkeypatch, mode, _script(added_whole=True, thinking=THINKING))
    seen = session.output["seen"]
    added = [_text(e) for e in seen if "response.output_item.added" in _text(e)]
    assert any('"arguments": "{\\"city\\":\\"Rome\\"}"' in a for a in added)
    assert any(ANSWER in a for a in added) and any("enc:" in a for a in added)
    assert all(m.get("output[1].added") == "whole" for m in _marks(session))
    assert replay_seen(project, monkeypatch) == seen


# -- 3. what only a raw line reader sees ---------------------------------------------------


@pytest.mark.parametrize(
    ("mode", "shape", "mark"),
    [
        ("chat_lines", {"no_fingerprint": True}, "system_fingerprint"),
        ("chat_lines", {}, None),
        ("anthropic_lines", {"no_ping": True}, "ping"),
        ("anthropic_lines", {}, None),
        ("responses_lines", {"sequence_last": True}, "sequence_number"),
        ("responses_lines", {}, None),
    ],
    ids=["chat-no-fingerprint", "chat", "anthropic-no-ping", "anthropic", "responses-seq-last",
         "responses"],
)  # fmt: skip
def test_a_replayed_stream_sends_the_lines_a_raw_reader_got(
    project: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    mode: str,
    shape: dict[str, Any],
    mark: str | None,
) -> None:
    """Chat chunks without a `system_fingerprint` key (replay added `null`), an Anthropic
    stream without a `ping` (replay added one), Responses events with `sequence_number`
    last (replay moved it second): each keeps a small mark and replays as it came; a stream
    in the API's own shape keeps none."""
    session = _record(project, monkeypatch, mode, _script(**shape))
    seen = session.output["seen"]
    for marks in _marks(session):
        kept = {k for k, v in marks.items() if k in ("system_fingerprint", "ping", SEQ)}
        assert kept == ({mark} if mark else set())
    assert replay_seen(project, monkeypatch) == seen


SEQ = "sequence_number"
