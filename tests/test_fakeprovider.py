"""The fake provider speaks each wire format well enough for the real SDKs."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import anthropic
import httpx
import openai
import pytest

from fakeprovider import FakeProvider, Reply

MESSAGES: list[Any] = [{"role": "user", "content": "hi"}]
TEXT = {"content": "Hello there, friend", "usage": {"input_tokens": 20, "output_tokens": 7}}
CALLS = {
    "content": None,
    "tool_calls": [
        {"name": "lookup", "arguments": {"passenger": "Alice", "seats": [1, 2]}},
        {"name": "book", "arguments": {}},
    ],
}


@pytest.fixture
def fp() -> Iterator[FakeProvider]:
    with FakeProvider(script=[TEXT, CALLS]) as provider:
        yield provider


def oai(fp: FakeProvider, **kw: Any) -> openai.OpenAI:
    return openai.OpenAI(base_url=fp.base_url + "/v1", api_key="sk-test", **kw)


def claude(fp: FakeProvider, **kw: Any) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=fp.base_url, api_key="sk-ant-test", **kw)


def test_openai_chat_text_then_tool_calls(fp: FakeProvider) -> None:
    with oai(fp) as client:
        first = client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
        second = client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
    assert first.choices[0].message.content == "Hello there, friend"
    assert first.choices[0].finish_reason == "stop"
    assert first.usage is not None
    assert (first.usage.prompt_tokens, first.usage.completion_tokens) == (20, 7)
    calls = second.choices[0].message.tool_calls or []
    assert [(c.id, c.function.name) for c in calls] == [("call_1", "lookup"), ("call_2", "book")]  # type: ignore[union-attr]
    assert json.loads(calls[0].function.arguments) == {"passenger": "Alice", "seats": [1, 2]}  # type: ignore[union-attr]
    assert second.choices[0].finish_reason == "tool_calls"
    assert [r.path for r in fp.requests] == ["/v1/chat/completions"] * 2
    assert fp.requests[0].body["model"] == "gpt-4o"
    assert fp.requests[0].headers["authorization"] == "Bearer sk-test"


def test_script_runs_out_with_done(fp: FakeProvider) -> None:
    with oai(fp) as client:
        for _ in range(2):
            client.chat.completions.create(model="m", messages=MESSAGES)
        third = client.chat.completions.create(model="m", messages=MESSAGES)
    assert third.choices[0].message.content == "done"


def test_async_clients_json_and_stream(fp: FakeProvider) -> None:
    async def run() -> tuple[str | None, list[str], str]:
        async with openai.AsyncOpenAI(base_url=fp.base_url + "/v1", api_key="sk-t") as client:
            reply = await client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
            stream = await client.chat.completions.create(
                model="gpt-4o", messages=MESSAGES, stream=True
            )
            names = [
                call.function.name
                async for chunk in stream
                for call in chunk.choices[0].delta.tool_calls or []
                if call.function and call.function.name
            ]
        async with anthropic.AsyncAnthropic(base_url=fp.base_url, api_key="sk-ant-t") as ant:
            async with ant.messages.stream(
                model="claude-haiku-4-5", max_tokens=5, messages=MESSAGES
            ) as astream:
                text = "".join([piece async for piece in astream.text_stream])
        return reply.choices[0].message.content, names, text

    assert asyncio.run(run()) == ("Hello there, friend", ["lookup", "book"], "done")


def test_openai_chat_stream_accumulates_text_and_tool_args(fp: FakeProvider) -> None:
    text, args, names, usage = "", {0: "", 1: ""}, {}, []
    with oai(fp) as client:
        for _ in range(2):
            stream = client.chat.completions.create(
                model="gpt-4o",
                messages=MESSAGES,
                stream=True,
                stream_options={"include_usage": True},
            )
            chunks = list(stream)
            usage.append(chunks[-1].usage)
            for chunk in chunks:
                for choice in chunk.choices:
                    text += choice.delta.content or ""
                    for call in choice.delta.tool_calls or []:
                        if call.function and call.function.name:
                            names[call.index] = (call.id, call.function.name)
                        args[call.index] += (call.function and call.function.arguments) or ""
    assert text == "Hello there, friend"
    assert names == {0: ("call_1", "lookup"), 1: ("call_2", "book")}
    assert json.loads(args[0]) == {"passenger": "Alice", "seats": [1, 2]}
    assert json.loads(args[1]) == {}
    assert usage[0] is not None
    assert usage[0].completion_tokens == 7
    assert len(chunks) > 4


def test_a_script_item_chooses_the_pieces_its_streamed_texts_come_in() -> None:
    reply = {"content": "Hello world", "chunks": [1, 4, 2]}
    with FakeProvider(script=[reply, reply]) as fp:
        with oai(fp) as client:
            stream = client.chat.completions.create(model="m", messages=MESSAGES, stream=True)
            chat = [c.choices[0].delta.content for c in stream if c.choices[0].delta.content]
        with claude(fp) as client:
            events = client.messages.create(
                model="m", max_tokens=10, messages=MESSAGES, stream=True
            )
            texts = [e.delta.text for e in events if e.type == "content_block_delta"]  # type: ignore[union-attr]
    assert chat == texts == ["H", "ello", " w", "o", "rld"]


def test_a_zero_in_a_script_items_chunks_sends_an_empty_piece() -> None:
    reply = {"content": "Hello world", "chunks": [0, 6]}
    with FakeProvider(script=[reply, reply]) as fp:
        with oai(fp) as client:
            stream = client.chat.completions.create(model="m", messages=MESSAGES, stream=True)
            chat = [c.choices[0].delta for c in stream if c.choices]
        with claude(fp) as client:
            events = client.messages.create(
                model="m", max_tokens=10, messages=MESSAGES, stream=True
            )
            texts = [e.delta.text for e in events if e.type == "content_block_delta"]  # type: ignore[union-attr]
    assert chat[0].role == "assistant" and chat[0].content == ""
    assert [d.content for d in chat[1:-1]] == texts == ["", "Hello ", "", "world"]
    with pytest.raises(ValueError, match="above 0"):
        Reply("x", [], 1, 1, 0, chunks=(0, 0)).pieces("x")


def test_role_joined_streams_the_role_in_the_chunk_of_the_first_piece() -> None:
    calls = {**CALLS, "role_joined": True}
    deltas = []
    with FakeProvider(script=[{**TEXT, "role_joined": True}, calls]) as fp, oai(fp) as client:
        for _ in range(2):
            stream = client.chat.completions.create(model="m", messages=MESSAGES, stream=True)
            deltas.append([c.choices[0].delta for c in stream if c.choices])
    text, call = deltas
    assert text[0].role == "assistant" and text[0].content == "Hello t"
    assert all(d.role is None for d in text[1:])
    assert "".join(d.content or "" for d in text) == TEXT["content"]
    assert call[0].role == "assistant" and call[0].content is None
    assert call[0].tool_calls is not None and call[0].tool_calls[0].id == "call_1"


def test_failed_ends_a_responses_answer_as_failed_with_its_error() -> None:
    error = {"code": "server_error", "message": "The model failed."}
    item = {"content": "Hello", "failed": error}
    with FakeProvider(script=[item, item]) as fp, oai(fp) as client:
        events = list(client.responses.create(model="m", input="hi", stream=True))
        answer = client.responses.create(model="m", input="hi")
    last = events[-1]
    assert last.type == "response.failed"
    for response in (last.response, answer):
        assert response.status == "failed"
        assert response.error is not None
        assert response.error.model_dump(exclude_none=True) == error
        assert response.output_text == "Hello"
        assert response.usage is not None


def test_openai_chat_stream_helper(fp: FakeProvider) -> None:
    with oai(fp) as client:
        client.chat.completions.create(model="m", messages=MESSAGES)
        with client.chat.completions.stream(model="m", messages=MESSAGES) as stream:
            final = stream.get_final_completion()
    calls = final.choices[0].message.tool_calls or []
    assert [c.function.arguments for c in calls] == ['{"passenger":"Alice","seats":[1,2]}', "{}"]


def test_openai_chat_n_choices_json_and_stream() -> None:
    """`n` > 1: choice i > 0 answers the item's alternatives; the stream interleaves them."""
    item = {"content": "Sunny today", "alternatives": ["Rain later"]}
    with FakeProvider(script=[item, item]) as fp, oai(fp) as client:
        plain = client.chat.completions.create(model="m", messages=MESSAGES, n=2)
        chunks = list(
            client.chat.completions.create(model="m", messages=MESSAGES, n=2, stream=True)
        )
    assert [c.message.content for c in plain.choices] == ["Sunny today", "Rain later"]
    texts: dict[int, str] = {}
    for chunk in chunks:
        for choice in chunk.choices:
            texts[choice.index] = texts.get(choice.index, "") + (choice.delta.content or "")
    assert texts == {0: "Sunny today", 1: "Rain later"}
    order = [c.choices[0].index for c in chunks if c.choices]
    assert order[:4] == [0, 1, 0, 1], "the choices interleave"


def test_openai_chat_logprobs_json_and_stream() -> None:
    with FakeProvider(script=[TEXT, TEXT]) as fp, oai(fp) as client:
        plain = client.chat.completions.create(model="m", messages=MESSAGES, logprobs=True)
        chunks = list(
            client.chat.completions.create(model="m", messages=MESSAGES, logprobs=True, stream=True)
        )
        unasked = client.chat.completions.create(model="m", messages=MESSAGES)
    assert plain.choices[0].logprobs is not None and plain.choices[0].logprobs.content
    tokens = [t.token for t in plain.choices[0].logprobs.content]
    assert "".join(tokens) == "Hello there, friend" and len(tokens) == 3
    streamed = [
        (t.token, t.logprob)
        for c in chunks
        if c.choices and c.choices[0].logprobs and c.choices[0].logprobs.content
        for t in c.choices[0].logprobs.content
    ]
    assert streamed == [(t.token, t.logprob) for t in plain.choices[0].logprobs.content]
    assert unasked.choices[0].logprobs is None


def test_openai_responses_json_and_stream(fp: FakeProvider) -> None:
    with oai(fp) as client:
        plain = client.responses.create(model="gpt-4.1", input="hi")
        stream = client.responses.create(model="gpt-4.1", input="hi", stream=True)
        events = list(stream)
    assert plain.output_text == "Hello there, friend"
    assert plain.usage is not None
    assert plain.usage.input_tokens == 20
    types = [e.type for e in events]
    assert types[0] == "response.created"
    assert types[-1] == "response.completed"
    args: dict[str, str] = {}
    for e in events:
        if e.type == "response.function_call_arguments.delta":
            args[e.item_id] = args.get(e.item_id, "") + e.delta
    assert args == {"fc_1": '{"passenger":"Alice","seats":[1,2]}', "fc_2": "{}"}
    final = events[-1].response  # type: ignore[union-attr]
    assert [(o.call_id, o.name) for o in final.output] == [("call_1", "lookup"), ("call_2", "book")]  # type: ignore[union-attr]


def test_openai_responses_stream_text(fp: FakeProvider) -> None:
    with oai(fp) as client, client.responses.stream(model="gpt-4.1", input="hi") as stream:
        deltas = [e.delta for e in stream if e.type == "response.output_text.delta"]
        final = stream.get_final_response()
    assert len(deltas) > 1
    assert "".join(deltas) == final.output_text == "Hello there, friend"


def test_anthropic_messages_json_and_stream(fp: FakeProvider) -> None:
    with claude(fp) as client:
        plain = client.messages.create(model="claude-sonnet-4", max_tokens=50, messages=MESSAGES)
        with client.messages.stream(
            model="claude-sonnet-4", max_tokens=50, messages=MESSAGES
        ) as stream:
            final = stream.get_final_message()
    assert plain.content[0].type == "text"
    assert plain.content[0].text == "Hello there, friend"
    assert plain.stop_reason == "end_turn"
    assert (plain.usage.input_tokens, plain.usage.output_tokens) == (20, 7)
    assert final.stop_reason == "tool_use"
    uses = [(b.id, b.name, b.input) for b in final.content if b.type == "tool_use"]
    assert uses == [
        ("toolu_1", "lookup", {"passenger": "Alice", "seats": [1, 2]}),
        ("toolu_2", "book", {}),
    ]
    assert [r.path for r in fp.requests] == ["/v1/messages"] * 2
    assert fp.requests[1].body["stream"] is True


def test_anthropic_stream_text_deltas(fp: FakeProvider) -> None:
    with (
        claude(fp) as client,
        client.messages.stream(model="claude-3-5-haiku", max_tokens=5, messages=MESSAGES) as stream,
    ):
        pieces = list(stream.text_stream)
    assert len(pieces) > 1
    assert "".join(pieces) == "Hello there, friend"


def test_cached_tokens_in_each_wire_format() -> None:
    usage = {"input_tokens": 100, "output_tokens": 3, "cached_tokens": 60}
    with FakeProvider(script=[{"content": "a", "usage": usage}] * 2) as fp:
        with oai(fp) as client:
            chat = client.chat.completions.create(model="m", messages=MESSAGES)
        with claude(fp) as ant:
            msg = ant.messages.create(model="m", max_tokens=5, messages=MESSAGES)
    assert chat.usage is not None
    assert chat.usage.prompt_tokens == 100
    assert chat.usage.prompt_tokens_details is not None
    assert chat.usage.prompt_tokens_details.cached_tokens == 60
    assert (msg.usage.input_tokens, msg.usage.cache_read_input_tokens) == (40, 60)


def test_plain_httpx_client(fp: FakeProvider) -> None:
    with httpx.Client(base_url=fp.base_url) as client:
        health = client.get("/health")
        reply = client.post("/v1/chat/completions", json={"model": "m", "messages": MESSAGES})
    assert (health.status_code, health.text) == (200, "ok")
    assert reply.json()["choices"][0]["message"]["content"] == "Hello there, friend"
    assert [r.method for r in fp.requests] == ["GET", "POST"]


def test_openai_retries_429_then_500() -> None:
    with FakeProvider(script=[TEXT], fail_first=[429, 500]) as fp:
        with oai(fp, max_retries=2) as client:
            reply = client.chat.completions.create(model="m", messages=MESSAGES)
        assert reply.choices[0].message.content == "Hello there, friend"
        assert len(fp.requests) == 3
        assert [r.headers.get("x-stainless-retry-count") for r in fp.requests] == ["0", "1", "2"]


def test_anthropic_retries_429_then_500() -> None:
    with FakeProvider(script=[TEXT], fail_first=[429, 500]) as fp:
        with claude(fp, max_retries=2) as client:
            reply = client.messages.create(model="m", max_tokens=5, messages=MESSAGES)
        assert reply.content[0].type == "text"
        assert reply.content[0].text == "Hello there, friend"
        assert len(fp.requests) == 3


def test_errors_have_the_provider_shape() -> None:
    with FakeProvider(fail_first=[429, 400]) as fp:
        with oai(fp, max_retries=0) as client, pytest.raises(openai.RateLimitError) as oerr:
            client.chat.completions.create(model="m", messages=MESSAGES)
        with claude(fp, max_retries=0) as ant, pytest.raises(anthropic.BadRequestError) as aerr:
            ant.messages.create(model="m", max_tokens=5, messages=MESSAGES)
    assert "scripted HTTP 429" in str(oerr.value)
    assert aerr.value.body == {
        "type": "error",
        "error": {"type": "invalid_request_error", "message": "fake provider: scripted HTTP 400"},
    }


def test_a_stream_breaks_off_with_an_error_event_after_break_after_pieces() -> None:
    item = {"content": "Hello there", "chunks": [3], "break_after": 1}
    with FakeProvider(script=[item] * 3) as fp:
        got: list[Any] = []
        with claude(fp) as ant, pytest.raises(anthropic.APIStatusError) as aerr:
            with ant.messages.stream(model="m", max_tokens=5, messages=MESSAGES) as stream:
                for text in stream.text_stream:
                    got.append(text)
        with oai(fp) as client, pytest.raises(openai.APIError) as oerr:
            for chunk in client.chat.completions.create(model="m", messages=MESSAGES, stream=True):
                got.append(chunk.choices[0].delta.content)
        with oai(fp) as client:
            events = list(client.responses.create(model="m", input="hi", stream=True))
        assert len(fp.requests) == 3, "an error inside a stream is not retried"
    assert got == ["Hel", "", "Hel"]
    assert aerr.value.body == {
        "type": "error",
        "error": {"type": "overloaded_error", "message": "Overloaded"},
    }
    assert oerr.value.body == {
        "message": "The server had an error while processing your request.",
        "type": "server_error",
        "param": None,
        "code": None,
    }
    assert [e.type for e in events][-2:] == ["response.output_text.delta", "error"]


def test_stop_joins_with_idle_keepalive_connection() -> None:
    fp = FakeProvider()
    client = httpx.Client(base_url=fp.base_url)
    assert client.get("/health").status_code == 200  # the connection stays open in the pool
    fp.stop()
    assert not fp._thread.is_alive()
    client.close()
