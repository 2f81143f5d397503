"""Provider codecs: wire data <-> normalised `llm_call` fields, checked against the real SDKs."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterable
from typing import Any

import anthropic
import httpx2
import openai
import pytest
from anthropic.types import Message
from openai.types.chat import ChatCompletion
from openai.types.responses import Response

from opswald.intercept.codecs import (
    CODECS,
    AnthropicMessagesCodec,
    Codec,
    OpenAIChatCodec,
    OpenAIResponsesCodec,
    WireResponse,
    codec_for,
    request_for,
)
from opswald.intercept.codecs import sse as sse_mod
from opswald.session import STREAM_CHUNKS, LLMCallStep, LLMOutput, Usage

CHAT, RESPONSES, ANTHROPIC = CODECS

TEXT = "The weather in Paris is sunny, 21 °C — enjoy\u2028your day."
CALLS = [
    {"id": "call_1", "name": "get_weather", "arguments": {"city": "Paris", "units": "metric"}},
    {"id": "call_2", "name": "get_time", "arguments": {"tz": "Europe/Paris"}},
]
USAGE = Usage(
    input_tokens=2006,
    output_tokens=300,
    total_tokens=2306,
    cache_read_tokens=1920,
    cache_creation_tokens=64,
    reasoning_tokens=256,
)
FINISH = {
    "openai.chat_completions": ("stop", "tool_calls"),
    "openai.responses": ("completed", "completed"),
    "anthropic.messages": ("end_turn", "tool_use"),
}


def _step(codec: Codec, *, tools: bool, **extra: Any) -> LLMCallStep:
    text_finish, tool_finish = FINISH[codec.api]
    output = LLMOutput(
        content=None if tools else TEXT,
        tool_calls=CALLS if tools else None,
        finish_reason=tool_finish if tools else text_finish,
    )
    fields: dict[str, Any] = {
        "step": 3,
        "provider": codec.provider,
        "api": codec.api,
        "model": "model-x",
        "timestamp": "2025-03-10T01:25:52Z",
        "output": output,
        "usage": USAGE,
        **extra,
    }
    return LLMCallStep(**fields)


def _body(wire: WireResponse) -> Any:
    assert wire.status == 200
    assert wire.headers["content-type"] == "application/json"
    return json.loads(wire.body)


# -- routing --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "api"),
    [
        ("POST", "/v1/chat/completions", "openai.chat_completions"),
        ("POST", "/openai/v1/chat/completions", "openai.chat_completions"),
        ("POST", "/openai/deployments/gpt4/chat/completions", "openai.chat_completions"),
        ("post", "/chat/completions/", "openai.chat_completions"),
        ("POST", "/v1/responses", "openai.responses"),
        ("POST", "/api/openai/v1/responses?x=1", "openai.responses"),
        ("POST", "/v1/messages", "anthropic.messages"),
        ("POST", "/anthropic/v1/messages?beta=true", "anthropic.messages"),
        ("GET", "/v1/chat/completions", None),
        ("POST", "/v1/chat/completions/chatcmpl-1", None),
        ("POST", "/v1/responses/input_tokens", None),
        ("GET", "/v1/responses/resp_1", None),
        ("POST", "/v1/messages/count_tokens", None),
        ("POST", "/v1/messages/batches", None),
        ("POST", "/v1/threads/thread_1/messages", None),
        ("POST", "/v1/embeddings", None),
    ],
)
def test_codec_for_routes_by_method_and_path_suffix(
    method: str, path: str, api: str | None
) -> None:
    codec = codec_for(method, path)
    assert (codec.api if codec else None) == api


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("/openai/deployments/gpt4o-prod/chat/completions", {"azure_deployment": "gpt4o-prod"}),
        (
            "/openai/deployments/my%20model/chat/completions?v=1",
            {"azure_deployment": "my model", "query": {"v": "1"}},
        ),
        ("/v1/chat/completions?x=/deployments/a/", {"query": {"x": "/deployments/a/"}}),
        ("/v1/chat/completions", {}),
    ],
)  # fmt: skip
def test_the_azure_deployment_in_the_path_is_a_request_param(
    path: str, params: dict[str, str]
) -> None:
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}], "n": 1}
    request = request_for(CHAT, path, body)
    assert request["input"]["params"] == {"n": 1, **params}
    assert request["model"] == "gpt-4o-mini"


@pytest.mark.parametrize(
    ("query", "params"),
    [
        ("api-version=2024-10-21", {}),
        ("api-version=2024-10-21&tenant=acme", {"query": {"tenant": "acme"}}),
        ("tag=a&tag=b%20c&tag=", {"query": {"tag": ["a", "b c", ""]}}),
        ("beta=true", {}),  # the anthropic SDK's beta namespace: its betas are a header
        ("beta=false", {"query": {"beta": "false"}}),
        ("key=AIzaSyA1&Access_Token=t0k&tenant=acme", {"query": {
            "key": "<redacted:credential>", "Access_Token": "<redacted:credential>",
            "tenant": "acme"}}),
    ],
)  # fmt: skip
def test_the_query_is_a_request_param_without_the_api_version_or_secrets(
    query: str, params: dict[str, Any]
) -> None:
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
    request = request_for(CHAT, f"/v1/chat/completions?{query}", body)
    assert request["input"]["params"] == (params or None)


@pytest.mark.parametrize(
    ("headers", "params"),
    [
        ({"Anthropic-Beta": "context-1m-2025-08-07"}, {"betas": ["context-1m-2025-08-07"]}),
        ({"anthropic-beta": "b-2, a-1,"}, {"betas": ["b-2", "a-1"]}),
        ({"anthropic-beta": ""}, {}),
        ({"anthropic-version": "2023-06-01"}, {}),
    ],
)
def test_anthropic_betas_come_from_the_header(
    headers: dict[str, str], params: dict[str, Any]
) -> None:
    body = {"model": "claude-sonnet-4-5", "max_tokens": 9, "messages": []}
    request = request_for(ANTHROPIC, "/v1/messages", body, headers)
    assert request["input"]["params"] == {"max_tokens": 9, **params}
    assert request_for(CHAT, "/v1/chat/completions", {}, headers)["input"]["params"] is None


def test_codecs_cover_three_apis() -> None:
    assert isinstance(CHAT, OpenAIChatCodec)
    assert isinstance(RESPONSES, OpenAIResponsesCodec)
    assert isinstance(ANTHROPIC, AnthropicMessagesCodec)
    assert [(c.provider, c.api) for c in CODECS] == [
        ("openai", "openai.chat_completions"),
        ("openai", "openai.responses"),
        ("anthropic", "anthropic.messages"),
    ]


# -- requests -------------------------------------------------------------------------------


def test_chat_request_parses_tool_arguments_and_keeps_params() -> None:
    body = {
        "model": "gpt-4.1",
        "stream": True,
        "stream_options": {"include_usage": True},
        "temperature": 0.2,
        "tool_choice": "auto",
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Weather in Paris?"},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "call_a",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
                    },
                    {
                        "id": "call_b",
                        "type": "function",
                        "function": {"name": "broken", "arguments": "{not json"},
                    },
                ],
            },
            {"role": "tool", "tool_call_id": "call_a", "content": "sunny"},
        ],
        "tools": [{"type": "function", "function": {"name": "get_weather", "parameters": {}}}],
    }
    original = json.loads(json.dumps(body))
    request = CHAT.request(body)
    assert body == original  # not mutated
    assert request["provider"] == "openai"
    assert request["api"] == "openai.chat_completions"
    assert request["model"] == "gpt-4.1"
    calls = request["input"]["messages"][2]["tool_calls"]
    assert calls[0]["function"]["arguments"] == {"city": "Paris"}
    assert calls[1]["function"]["arguments"] == "{not json"
    assert request["input"]["tools"] == body["tools"]
    assert request["input"]["params"] == {
        "stream_options": {"include_usage": True},
        "temperature": 0.2,
        "tool_choice": "auto",
    }
    assert CHAT.is_stream(body)
    assert not CHAT.is_stream({**body, "stream": False})


def test_chat_request_without_params_has_none() -> None:
    request = CHAT.request({"model": "m", "messages": [{"role": "user", "content": "hi"}]})
    assert request["input"] == {
        "messages": [{"role": "user", "content": "hi"}],
        "tools": None,
        "params": None,
    }


def test_responses_request_string_input_and_instructions() -> None:
    body = {
        "model": "gpt-5",
        "instructions": "Be brief.",
        "input": "Hi",
        "reasoning": {"effort": "low"},
        "stream": True,
    }
    request = RESPONSES.request(body)
    assert request["input"] == {
        "messages": [
            {"role": "system", "content": "Be brief.", "type": "instructions"},
            {"role": "user", "content": "Hi"},
        ],
        "tools": None,
        "params": {"reasoning": {"effort": "low"}},
    }
    assert RESPONSES.is_stream(body)


def test_responses_request_item_list_parses_function_call_arguments() -> None:
    items: list[dict[str, Any]] = [
        {"role": "user", "content": [{"type": "input_text", "text": "Weather?"}]},
        {
            "type": "function_call",
            "call_id": "call_a",
            "name": "get_weather",
            "arguments": '{"city": "Paris"}',
        },
        {"type": "function_call_output", "call_id": "call_a", "output": "sunny"},
    ]
    tools = [{"type": "function", "name": "get_weather", "parameters": {}, "strict": True}]
    request = RESPONSES.request({"model": "gpt-5", "input": items, "tools": tools})
    messages = request["input"]["messages"]
    assert messages[0] == items[0]
    assert messages[1]["arguments"] == {"city": "Paris"}
    assert items[1]["arguments"] == '{"city": "Paris"}'
    assert request["input"]["tools"] == tools
    assert request["input"]["params"] is None


@pytest.mark.parametrize(
    "system",
    [
        "You are terse.",
        [{"type": "text", "text": "You are terse.", "cache_control": {"type": "ephemeral"}}],
    ],
)
def test_anthropic_request_system_becomes_leading_message(system: Any) -> None:
    body = {
        "model": "claude-sonnet-4-5",
        "max_tokens": 1024,
        "system": system,
        "messages": [{"role": "user", "content": "Hi"}],
        "tools": [{"name": "get_weather", "input_schema": {"type": "object"}}],
        "stream": True,
    }
    request = ANTHROPIC.request(body)
    assert request["provider"] == "anthropic"
    assert request["input"]["messages"] == [
        {"role": "system", "content": system},
        {"role": "user", "content": "Hi"},
    ]
    assert request["input"]["tools"] == body["tools"]
    assert request["input"]["params"] == {"max_tokens": 1024}
    assert ANTHROPIC.is_stream(body)
    assert not ANTHROPIC.is_stream(None)


def test_request_of_a_non_object_body_is_empty() -> None:
    for codec in CODECS:
        assert codec.request(None)["input"] == {"messages": None, "tools": None, "params": None}


# -- decoding realistic live bodies ---------------------------------------------------------

CHAT_JSON: dict[str, Any] = {
    "id": "chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT",
    "object": "chat.completion",
    "created": 1741569952,
    "model": "gpt-4.1-2025-04-14",
    "choices": [
        {
            "index": 0,
            "message": {
                "role": "assistant",
                "content": None,
                "refusal": None,
                "annotations": [],
                "tool_calls": [
                    {
                        "id": "call_Wd1",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
                    },
                    {
                        "id": "call_Xk2",
                        "type": "function",
                        "function": {"name": "get_time", "arguments": '{"tz":"Europe/Paris"}'},
                    },
                ],
            },
            "logprobs": None,
            "finish_reason": "tool_calls",
        }
    ],
    "usage": {
        "prompt_tokens": 2006,
        "completion_tokens": 300,
        "total_tokens": 2306,
        "prompt_tokens_details": {"cached_tokens": 1920, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": 256,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    },
    "service_tier": "default",
    "system_fingerprint": "fp_b376dfbbd5",
}


def test_decode_chat_json_with_cached_and_reasoning_tokens() -> None:
    ChatCompletion.model_validate(CHAT_JSON)  # the sample is what the SDK expects
    decoded = CHAT.decode(json.dumps(CHAT_JSON).encode(), stream=False)
    assert decoded.output == LLMOutput(
        content=None,
        tool_calls=[
            {"id": "call_Wd1", "name": "get_weather", "arguments": {"city": "Paris"}},
            {"id": "call_Xk2", "name": "get_time", "arguments": {"tz": "Europe/Paris"}},
        ],
        finish_reason="tool_calls",
    )
    assert decoded.usage == Usage(
        input_tokens=2006,
        output_tokens=300,
        total_tokens=2306,
        cache_read_tokens=1920,
        reasoning_tokens=256,
    )
    assert decoded.raw == CHAT_JSON
    assert decoded.model == "gpt-4.1-2025-04-14"
    assert decoded.cost is None


def test_decode_chat_json_reports_provider_cost() -> None:
    data = {**CHAT_JSON, "usage": {**CHAT_JSON["usage"], "cost": 0.0042}}
    assert CHAT.decode(json.dumps(data).encode(), stream=False).cost == 0.0042


def test_decode_rejects_a_body_that_is_not_json() -> None:
    with pytest.raises(ValueError, match="not JSON"):
        CHAT.decode(b"<html>bad gateway</html>", stream=False)


def _chat_chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> str:
    data = {
        "id": "chatcmpl-C1",
        "object": "chat.completion.chunk",
        "created": 1741569952,
        "model": "gpt-4.1-2025-04-14",
        "system_fingerprint": "fp_b376dfbbd5",
        "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
        "usage": None,
        "obfuscation": "xyz",
        **extra,
    }
    return "data: " + json.dumps(data) + "\n\n"


CHAT_SSE = (
    _chat_chunk({"role": "assistant", "content": "", "refusal": None})
    + _chat_chunk({"content": "Checking "})
    + _chat_chunk({"content": "both."})
    + _chat_chunk(
        {
            "tool_calls": [
                {
                    "index": 0,
                    "id": "call_Wd1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": ""},
                }
            ]
        }
    )
    + _chat_chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"ci'}}]})
    + _chat_chunk(
        {
            "tool_calls": [
                {
                    "index": 1,
                    "id": "call_Xk2",
                    "type": "function",
                    "function": {"name": "get_time", "arguments": ""},
                }
            ]
        }
    )
    + _chat_chunk({"tool_calls": [{"index": 0, "function": {"arguments": 'ty":"Paris"}'}}]})
    + _chat_chunk({"tool_calls": [{"index": 1, "function": {"arguments": '{"tz":"UTC"}'}}]})
    + _chat_chunk({}, "tool_calls")
    + "data: "
    + json.dumps(
        {
            "id": "chatcmpl-C1",
            "object": "chat.completion.chunk",
            "created": 1741569952,
            "model": "gpt-4.1-2025-04-14",
            "choices": [],
            "usage": {
                "prompt_tokens": 900,
                "completion_tokens": 60,
                "total_tokens": 960,
                "prompt_tokens_details": {"cached_tokens": 768},
                "completion_tokens_details": {"reasoning_tokens": 0},
            },
        }
    )
    + "\n\n"
    + "data: [DONE]\n\n"
).encode()


def test_decode_chat_stream_accumulates_fragments_by_index_and_usage_chunk() -> None:
    decoded = CHAT.decode(CHAT_SSE, stream=True)
    assert decoded.output == LLMOutput(
        content="Checking both.",
        tool_calls=[
            {"id": "call_Wd1", "name": "get_weather", "arguments": {"city": "Paris"}},
            {"id": "call_Xk2", "name": "get_time", "arguments": {"tz": "UTC"}},
        ],
        finish_reason="tool_calls",
    )
    assert decoded.usage == Usage(
        input_tokens=900,
        output_tokens=60,
        total_tokens=960,
        cache_read_tokens=768,
        reasoning_tokens=0,
    )
    assert decoded.raw is None
    assert decoded.model == "gpt-4.1-2025-04-14"


def test_decode_chat_stream_without_usage_chunk() -> None:
    body = (
        _chat_chunk({"role": "assistant", "content": "Hi"})
        + _chat_chunk({}, "stop")
        + "data: [DONE]\n\n"
    ).encode()
    decoded = CHAT.decode(body, stream=True)
    assert decoded.output == LLMOutput(content="Hi", finish_reason="stop")
    assert decoded.usage is None


def _choice_chunk(index: int, delta: dict[str, Any], finish: str | None = None) -> str:
    choice = {"index": index, "delta": delta, "logprobs": None, "finish_reason": finish}
    return _chat_chunk({}, choices=[choice])


N_CHOICES_SSE = (
    _choice_chunk(0, {"role": "assistant", "content": ""})
    + _choice_chunk(1, {"role": "assistant", "content": ""})
    + _choice_chunk(0, {"content": "Sunny"})
    + _choice_chunk(1, {"content": "Rain"})
    + _choice_chunk(1, {"content": " later"})
    + _choice_chunk(0, {}, "stop")
    + _choice_chunk(1, {}, "length")
    + "data: [DONE]\n\n"
).encode()


def test_decode_chat_stream_assembles_every_choice() -> None:
    """`n` > 1: the normalised output is the first choice; the assembled body has all."""
    decoded = CHAT.decode(N_CHOICES_SSE, stream=True)
    assert decoded.output == LLMOutput(content="Sunny", finish_reason="stop")
    choices = decoded.assembled["choices"]
    assert [(c["index"], c["message"]["content"], c["finish_reason"]) for c in choices] == [
        (0, "Sunny", "stop"),
        (1, "Rain later", "length"),
    ]
    assert ChatCompletion.model_validate(decoded.assembled).choices[1].message.content == (
        "Rain later"
    )


def test_encode_chat_stream_sends_every_recorded_choice_while_the_raw_agrees() -> None:
    decoded = CHAT.decode(N_CHOICES_SSE, stream=True)
    step = LLMCallStep(step=1, model="m", output=decoded.output, raw=decoded.assembled)
    again = CHAT.decode(CHAT.encode(step, stream=True).body, stream=True)
    assert again.assembled["choices"] == decoded.assembled["choices"]

    # an edited answer is the truth: the body it no longer agrees with is not served
    edited = decoded.output.model_copy(update={"content": "Snow"})
    step = step.model_copy(update={"output": edited})
    again = CHAT.decode(CHAT.encode(step, stream=True).body, stream=True)
    assert [c["message"]["content"] for c in again.assembled["choices"]] == ["Snow"]


def _token(text: str, logprob: float) -> dict[str, Any]:
    return {"token": text, "logprob": logprob, "bytes": list(text.encode()), "top_logprobs": []}


def test_decode_chat_stream_keeps_the_log_probabilities() -> None:
    def chunk(piece: str, logprob: float) -> str:
        tokens = {"content": [_token(piece, logprob)], "refusal": None}
        choice = {"index": 0, "delta": {"content": piece}, "logprobs": tokens}
        return _chat_chunk({}, choices=[{**choice, "finish_reason": None}])

    body = (
        _choice_chunk(0, {"role": "assistant", "content": ""})
        + chunk("Hi", -0.1)
        + chunk(" there", -0.2)
        + _choice_chunk(0, {}, "stop")
        + "data: [DONE]\n\n"
    ).encode()
    decoded = CHAT.decode(body, stream=True)
    assert decoded.assembled["choices"][0]["logprobs"] == {
        "content": [_token("Hi", -0.1), _token(" there", -0.2)],
        "refusal": None,
    }
    # without logprobs asked, the assembled body says so, as the JSON answer does
    assert CHAT.decode(N_CHOICES_SSE, stream=True).assembled["choices"][0]["logprobs"] is None


def _completion_with(message: dict[str, Any], logprobs: Any) -> dict[str, Any]:
    choice = {"index": 0, "message": message, "logprobs": logprobs, "finish_reason": "stop"}
    return {"id": "chatcmpl-L", "object": "chat.completion", "created": 1, "model": "m",
            "choices": [choice]}  # fmt: skip


@pytest.mark.parametrize(
    "tokens",
    [
        [_token("Caf", -0.1), _token("é", -0.2), _token(" ok", -0.3)],
        # byte-level tokens that do not spell the text: all served with the first piece
        [_token("Caf", -0.1), _token("bytes:\\xc3", -0.2), _token("bytes:\\xa9 ok", -0.3)],
    ],
    ids=["spelled", "byte-tokens"],
)
def test_encode_chat_stream_serves_the_recorded_log_probabilities(tokens: Any) -> None:
    raw = _completion_with(
        {"role": "assistant", "content": "Café ok", "refusal": None},
        {"content": tokens, "refusal": None},
    )
    decoded = CHAT.decode(json.dumps(raw).encode(), stream=False)
    step = LLMCallStep(step=1, model="m", output=decoded.output, raw=raw)
    wire = CHAT.encode(step, stream=True)
    again = CHAT.decode(wire.body, stream=True)
    assert again.output.content == "Café ok"
    assert again.assembled["choices"][0]["logprobs"] == raw["choices"][0]["logprobs"]
    with _openai(Served(wire)) as client:  # the SDK's stream helper joins the chunks' lists
        with client.chat.completions.stream(**CHAT_ARGS) as stream:
            final = stream.get_final_completion()
    logprobs = final.choices[0].logprobs
    assert logprobs is not None and logprobs.content is not None
    assert [t.token for t in logprobs.content] == [t["token"] for t in tokens]


def test_encode_chat_stream_serves_a_recorded_refusal() -> None:
    raw = _completion_with(
        {"role": "assistant", "content": None, "refusal": "I can't help with that."},
        {"content": None, "refusal": [_token("I can't", -0.1), _token(" help with that.", -0.2)]},
    )
    decoded = CHAT.decode(json.dumps(raw).encode(), stream=False)
    step = LLMCallStep(step=1, model="m", output=decoded.output, raw=raw)
    again = CHAT.decode(CHAT.encode(step, stream=True).body, stream=True)
    assert again.assembled["choices"][0]["message"]["refusal"] == "I can't help with that."
    assert again.assembled["choices"][0]["logprobs"] == raw["choices"][0]["logprobs"]


RESPONSE_JSON: dict[str, Any] = {
    "id": "resp_67ccd2bed1ec8190b14f964abc0542670bb6a6b452d3795b",
    "object": "response",
    "created_at": 1741476542,
    "status": "completed",
    "completed_at": 1741476545,
    "error": None,
    "incomplete_details": None,
    "instructions": None,
    "max_output_tokens": None,
    "model": "gpt-5-2025-08-07",
    "output": [
        {"id": "rs_1", "type": "reasoning", "summary": [], "status": "completed"},
        {
            "id": "msg_67ccd2bf17f0819081ff3bb2cf6508e6",
            "type": "message",
            "status": "completed",
            "role": "assistant",
            "content": [
                {"type": "output_text", "text": "Let me check ", "annotations": []},
                {"type": "output_text", "text": "that.", "annotations": []},
            ],
        },
        {
            "id": "fc_12345xyz",
            "type": "function_call",
            "status": "completed",
            "call_id": "call_12345xyz",
            "name": "get_weather",
            "arguments": '{"location":"Paris, France"}',
        },
    ],
    "parallel_tool_calls": True,
    "previous_response_id": None,
    "reasoning": {"effort": "medium", "summary": None},
    "store": True,
    "temperature": 1.0,
    "text": {"format": {"type": "text"}},
    "tool_choice": "auto",
    "tools": [
        {
            "type": "function",
            "name": "get_weather",
            "parameters": {"type": "object"},
            "strict": True,
            "description": None,
        }
    ],
    "top_p": 1.0,
    "truncation": "disabled",
    "usage": {
        "input_tokens": 1536,
        "input_tokens_details": {"cached_tokens": 1024, "cache_write_tokens": 0},
        "output_tokens": 300,
        "output_tokens_details": {"reasoning_tokens": 128},
        "total_tokens": 1836,
    },
    "user": None,
    "metadata": {},
}
RESPONSE_OUTPUT = LLMOutput(
    content="Let me check that.",
    tool_calls=[
        {"id": "call_12345xyz", "name": "get_weather", "arguments": {"location": "Paris, France"}}
    ],
    finish_reason="completed",
)
RESPONSE_USAGE = Usage(
    input_tokens=1536,
    output_tokens=300,
    total_tokens=1836,
    cache_read_tokens=1024,
    cache_creation_tokens=0,
    reasoning_tokens=128,
)


def test_decode_responses_json() -> None:
    Response.model_validate(RESPONSE_JSON)
    decoded = RESPONSES.decode(json.dumps(RESPONSE_JSON).encode(), stream=False)
    assert decoded.output == RESPONSE_OUTPUT
    assert decoded.usage == RESPONSE_USAGE
    assert decoded.model == "gpt-5-2025-08-07"
    assert decoded.raw == RESPONSE_JSON


@pytest.mark.parametrize(
    ("error", "failure"),
    [
        (
            {"code": "server_error", "message": "It broke."},
            "response failed: server_error: It broke.",
        ),
        (None, "response failed"),
    ],
)
def test_a_failed_response_decodes_with_its_failure(error: Any, failure: str) -> None:
    failed = {**RESPONSE_JSON, "status": "failed", "error": error}
    Response.model_validate(failed)
    decoded = RESPONSES.decode(json.dumps(failed).encode(), stream=False)
    assert decoded.failure == failure
    assert decoded.output.finish_reason == "failed"
    assert decoded.usage == RESPONSE_USAGE, "the usage it reports is kept"
    assert RESPONSES.decode(json.dumps(RESPONSE_JSON).encode(), stream=False).failure is None


def _responses_sse(final_output: bool) -> bytes:
    base = {
        **RESPONSE_JSON,
        "status": "in_progress",
        "output": [],
        "usage": None,
        "completed_at": None,
    }
    message, call = RESPONSE_JSON["output"][1], RESPONSE_JSON["output"][2]
    events: list[dict[str, Any]] = [
        {"type": "response.created", "response": base},
        {"type": "response.in_progress", "response": base},
        {
            "type": "response.output_item.added",
            "output_index": 0,
            "item": {"id": "rs_1", "type": "reasoning", "summary": []},
        },
        {
            "type": "response.output_item.done",
            "output_index": 0,
            "item": RESPONSE_JSON["output"][0],
        },
        {
            "type": "response.output_item.added",
            "output_index": 1,
            "item": {**message, "status": "in_progress", "content": []},
        },
        {
            "type": "response.content_part.added",
            "item_id": message["id"],
            "output_index": 1,
            "content_index": 0,
            "part": {"type": "output_text", "text": "", "annotations": []},
        },
        {
            "type": "response.output_text.delta",
            "item_id": message["id"],
            "output_index": 1,
            "content_index": 0,
            "delta": "Let me check ",
            "logprobs": [],
        },
        {
            "type": "response.output_text.done",
            "item_id": message["id"],
            "output_index": 1,
            "content_index": 0,
            "text": "Let me check ",
            "logprobs": [],
        },
        {"type": "response.output_item.done", "output_index": 1, "item": message},
        {
            "type": "response.output_item.added",
            "output_index": 2,
            "item": {**call, "status": "in_progress", "arguments": ""},
        },
        {
            "type": "response.function_call_arguments.delta",
            "item_id": call["id"],
            "output_index": 2,
            "delta": '{"location":',
        },
        {
            "type": "response.function_call_arguments.delta",
            "item_id": call["id"],
            "output_index": 2,
            "delta": '"Paris, France"}',
        },
        {
            "type": "response.function_call_arguments.done",
            "item_id": call["id"],
            "output_index": 2,
            "arguments": call["arguments"],
        },
        {"type": "response.output_item.done", "output_index": 2, "item": call},
    ]
    final = dict(RESPONSE_JSON)
    if not final_output:
        del final["output"]
    events.append({"type": "response.completed", "response": final})
    return "".join(
        f"event: {e['type']}\ndata: {json.dumps({**e, 'sequence_number': n})}\n\n"
        for n, e in enumerate(events)
    ).encode()


@pytest.mark.parametrize("final_output", [True, False])
def test_decode_responses_stream_uses_the_final_response(final_output: bool) -> None:
    decoded = RESPONSES.decode(_responses_sse(final_output), stream=True)
    assert decoded.output == RESPONSE_OUTPUT
    assert decoded.usage == RESPONSE_USAGE
    assert decoded.model == "gpt-5-2025-08-07"
    assert decoded.raw is None


ANTHROPIC_JSON: dict[str, Any] = {
    "id": "msg_01XFDUDYJgAACzvnptvVoYEL",
    "type": "message",
    "role": "assistant",
    "model": "claude-sonnet-4-5-20250929",
    "content": [
        {"type": "thinking", "thinking": "The user wants weather.", "signature": "EqQB"},
        {"type": "text", "text": "I'll look that up."},
        {
            "type": "tool_use",
            "id": "toolu_01A09q90qw90lq917835lq9",
            "name": "get_weather",
            "input": {"location": "San Francisco, CA", "unit": "celsius"},
        },
    ],
    "stop_reason": "tool_use",
    "stop_sequence": None,
    "usage": {
        "input_tokens": 50,
        "cache_creation_input_tokens": 200,
        "cache_read_input_tokens": 1800,
        "cache_creation": {"ephemeral_5m_input_tokens": 200, "ephemeral_1h_input_tokens": 0},
        "output_tokens": 420,
        "output_tokens_details": {"thinking_tokens": 300},
        "service_tier": "standard",
    },
}
ANTHROPIC_OUTPUT = LLMOutput(
    content="I'll look that up.",
    tool_calls=[
        {
            "id": "toolu_01A09q90qw90lq917835lq9",
            "name": "get_weather",
            "arguments": {"location": "San Francisco, CA", "unit": "celsius"},
        }
    ],
    finish_reason="tool_use",
)
ANTHROPIC_USAGE = Usage(
    input_tokens=2050,
    output_tokens=420,
    total_tokens=2470,
    cache_read_tokens=1800,
    cache_creation_tokens=200,
    reasoning_tokens=300,
)


def test_decode_anthropic_json_counts_cache_tokens_into_input() -> None:
    Message.model_validate(ANTHROPIC_JSON)
    decoded = ANTHROPIC.decode(json.dumps(ANTHROPIC_JSON).encode(), stream=False)
    assert decoded.output == ANTHROPIC_OUTPUT
    assert decoded.usage == ANTHROPIC_USAGE
    assert decoded.model == "claude-sonnet-4-5-20250929"


def _anthropic_event(data: dict[str, Any]) -> str:
    return f"event: {data['type']}\ndata: {json.dumps(data)}\n\n"


ANTHROPIC_EVENTS: list[dict[str, Any]] = [
    {
        "type": "message_start",
        "message": {
            **ANTHROPIC_JSON,
            "content": [],
            "stop_reason": None,
            "usage": {
                "input_tokens": 50,
                "cache_creation_input_tokens": 200,
                "cache_read_input_tokens": 1800,
                "output_tokens": 1,
            },
        },
    },
    {"type": "ping"},
    {
        "type": "content_block_start",
        "index": 0,
        "content_block": {"type": "thinking", "thinking": "", "signature": ""},
    },
    {
        "type": "content_block_delta",
        "index": 0,
        "delta": {"type": "thinking_delta", "thinking": "The user wants weather."},
    },
    {
        "type": "content_block_delta",
        "index": 0,
        "delta": {"type": "signature_delta", "signature": "EqQB"},
    },
    {"type": "content_block_stop", "index": 0},
    {"type": "content_block_start", "index": 1, "content_block": {"type": "text", "text": ""}},
    {
        "type": "content_block_delta",
        "index": 1,
        "delta": {"type": "text_delta", "text": "I'll look "},
    },
    {
        "type": "content_block_delta",
        "index": 1,
        "delta": {"type": "text_delta", "text": "that up."},
    },
    {"type": "content_block_stop", "index": 1},
    {
        "type": "content_block_start",
        "index": 2,
        "content_block": {
            "type": "tool_use",
            "id": "toolu_01A09q90qw90lq917835lq9",
            "name": "get_weather",
            "input": {},
        },
    },
    {
        "type": "content_block_delta",
        "index": 2,
        "delta": {"type": "input_json_delta", "partial_json": ""},
    },
    {
        "type": "content_block_delta",
        "index": 2,
        "delta": {"type": "input_json_delta", "partial_json": '{"location": "San Fra'},
    },
    {
        "type": "content_block_delta",
        "index": 2,
        "delta": {"type": "input_json_delta", "partial_json": 'ncisco, CA", "unit": "celsius"}'},
    },
    {"type": "content_block_stop", "index": 2},
    {
        "type": "message_delta",
        "delta": {"stop_reason": "tool_use", "stop_sequence": None},
        "usage": {"output_tokens": 420, "output_tokens_details": {"thinking_tokens": 300}},
    },
    {"type": "message_stop"},
]
ANTHROPIC_SSE = "".join(_anthropic_event(e) for e in ANTHROPIC_EVENTS).encode()


def test_decode_anthropic_stream_with_input_json_deltas() -> None:
    decoded = ANTHROPIC.decode(ANTHROPIC_SSE, stream=True)
    assert decoded.output == ANTHROPIC_OUTPUT
    assert decoded.usage == ANTHROPIC_USAGE
    assert decoded.model == "claude-sonnet-4-5-20250929"
    assert decoded.raw is None


def test_decode_anthropic_stream_error_event_is_the_stream_breaking_off() -> None:
    error = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
    decoded = ANTHROPIC.decode(_anthropic_event(error).encode(), stream=True)
    assert decoded.error is not None and decoded.error.body == error
    assert decoded.assembled is None, "nothing came before it"
    # what came before it is the answer so far; what follows it is not read
    body = "".join(_anthropic_event(e) for e in ANTHROPIC_EVENTS[:4]) + _anthropic_event(error)
    decoded = ANTHROPIC.decode((body + ANTHROPIC_SSE.decode()).encode(), stream=True)
    assert decoded.error is not None and decoded.error.body == error
    assert decoded.assembled is not None and decoded.assembled["stop_reason"] is None


def test_an_sse_frame_of_text_over_several_lines_reads_back_as_it_was() -> None:
    [event] = sse_mod.events(sse_mod.frame("line one\nline two", "error").encode())
    assert (event.name, event.data) == ("error", "line one\nline two")


def test_sse_parser_handles_crlf_comments_and_multiline_data() -> None:
    body = b': keep-alive\r\nevent: a\r\ndata: {"x":\r\ndata: 1}\r\n\r\ndata: [DONE]\r\n\r\n'
    events = list(sse_mod.events(body))
    assert [(e.name, e.json()) for e in events] == [("a", {"x": 1}), (None, None)]


# -- encoding: JSON bodies the SDK types accept ---------------------------------------------


@pytest.mark.parametrize("tools", [False, True], ids=["text", "tools"])
def test_encode_chat_json_is_a_valid_chat_completion(tools: bool) -> None:
    wire = CHAT.encode(_step(CHAT, tools=tools), stream=False)
    completion = ChatCompletion.model_validate(_body(wire))
    assert completion.id == "chatcmpl-opswald-3"
    assert completion.created == 1741569952
    assert completion.model == "model-x"
    message = completion.choices[0].message
    if tools:
        assert message.content is None
        assert [
            (c.id, c.function.name, json.loads(c.function.arguments))
            for c in message.tool_calls or []
            if c.type == "function"
        ] == [(c["id"], c["name"], c["arguments"]) for c in CALLS]
        assert completion.choices[0].finish_reason == "tool_calls"
    else:
        assert message.content == TEXT
    assert completion.usage is not None
    assert completion.usage.prompt_tokens == 2006
    assert completion.usage.prompt_tokens_details is not None
    assert completion.usage.prompt_tokens_details.cached_tokens == 1920
    assert completion.usage.completion_tokens_details is not None
    assert completion.usage.completion_tokens_details.reasoning_tokens == 256


@pytest.mark.parametrize("tools", [False, True], ids=["text", "tools"])
def test_encode_responses_json_is_a_valid_response(tools: bool) -> None:
    wire = RESPONSES.encode(_step(RESPONSES, tools=tools), stream=False)
    response = Response.model_validate(_body(wire))
    assert response.id == "resp_opswald_3"
    assert response.status == "completed"
    if tools:
        calls = [o for o in response.output if o.type == "function_call"]
        assert [(c.call_id, c.name, json.loads(c.arguments)) for c in calls] == [
            (c["id"], c["name"], c["arguments"]) for c in CALLS
        ]
    else:
        assert response.output_text == TEXT
    assert response.usage is not None
    assert response.usage.input_tokens_details.cached_tokens == 1920
    assert response.usage.output_tokens_details.reasoning_tokens == 256


@pytest.mark.parametrize("tools", [False, True], ids=["text", "tools"])
def test_encode_anthropic_json_is_a_valid_message(tools: bool) -> None:
    wire = ANTHROPIC.encode(_step(ANTHROPIC, tools=tools), stream=False)
    message = Message.model_validate(_body(wire))
    assert message.id == "msg_opswald_3"
    if tools:
        assert [(b.id, b.name, b.input) for b in message.content if b.type == "tool_use"] == [
            (c["id"], c["name"], c["arguments"]) for c in CALLS
        ]
        assert message.stop_reason == "tool_use"
    else:
        assert [b.text for b in message.content if b.type == "text"] == [TEXT]
    # Anthropic's input_tokens exclude cache reads and writes
    assert message.usage.input_tokens == 2006 - 1920 - 64
    assert message.usage.cache_read_input_tokens == 1920
    assert message.usage.cache_creation_input_tokens == 64


VALIDATORS: dict[str, Callable[[Any], Any]] = {
    "openai.chat_completions": ChatCompletion.model_validate,
    "openai.responses": Response.model_validate,
    "anthropic.messages": Message.model_validate,
}


@pytest.mark.parametrize("codec", CODECS, ids=lambda c: c.api)
def test_encode_steps_imported_without_output_or_usage(codec: Codec) -> None:
    bare = LLMCallStep(step=1)
    VALIDATORS[codec.api](_body(codec.encode(bare, stream=False)))
    decoded = codec.decode(codec.encode(bare, stream=True).body, stream=True)
    assert decoded.output.content is None
    assert decoded.output.tool_calls is None
    no_content = LLMCallStep(step=2, model="m", output=LLMOutput(finish_reason=None))
    VALIDATORS[codec.api](_body(codec.encode(no_content, stream=False)))


@pytest.mark.parametrize("codec", CODECS, ids=lambda c: c.api)
def test_encode_synthesises_stable_ids_for_tool_calls_without_ids(codec: Codec) -> None:
    call = {"name": "lookup", "arguments": {"q": "x"}}
    step = LLMCallStep(step=7, model="m", output=LLMOutput(tool_calls=[call, call]))
    first = codec.decode(codec.encode(step, stream=False).body, stream=False)
    again = codec.decode(codec.encode(step, stream=True).body, stream=True)
    ids = [c["id"] for c in first.output.tool_calls or []]
    assert len(set(ids)) == 2
    assert all("opswald_7" in i for i in ids)
    assert [c["id"] for c in again.output.tool_calls or []] == ids


# -- encoding: raw bodies are served only while they agree ----------------------------------

LIVE = [
    (CHAT, CHAT_JSON),
    (RESPONSES, RESPONSE_JSON),
    (ANTHROPIC, ANTHROPIC_JSON),
]


@pytest.mark.parametrize(("codec", "raw"), LIVE, ids=lambda v: getattr(v, "api", ""))
def test_encode_serves_raw_while_it_agrees(codec: Codec, raw: dict[str, Any]) -> None:
    decoded = codec.decode(json.dumps(raw).encode(), stream=False)
    step = LLMCallStep(step=1, model="m", output=decoded.output, usage=decoded.usage, raw=raw)
    assert _body(codec.encode(step, stream=False)) == raw


@pytest.mark.parametrize(("codec", "raw"), LIVE, ids=lambda v: getattr(v, "api", ""))
def test_encode_rebuilds_when_the_normalised_fields_were_edited(
    codec: Codec, raw: dict[str, Any]
) -> None:
    decoded = codec.decode(json.dumps(raw).encode(), stream=False)
    edited = decoded.output.model_copy(update={"content": "edited by hand"})
    step = LLMCallStep(step=1, model="m", output=edited, usage=decoded.usage, raw=raw)
    again = codec.decode(codec.encode(step, stream=False).body, stream=False)
    assert again.output == edited
    assert again.usage == decoded.usage

    assert decoded.usage is not None
    fewer = decoded.usage.model_copy(
        update={"output_tokens": 1, "total_tokens": (decoded.usage.input_tokens or 0) + 1}
    )
    step = LLMCallStep(step=1, model="m", output=decoded.output, usage=fewer, raw=raw)
    assert codec.decode(codec.encode(step, stream=False).body, stream=False).usage == fewer


@pytest.mark.parametrize(("codec", "raw"), LIVE, ids=lambda v: getattr(v, "api", ""))
def test_encode_serves_raw_for_steps_without_normalised_output(
    codec: Codec, raw: dict[str, Any]
) -> None:
    step = LLMCallStep(step=1, raw=raw)
    assert _body(codec.encode(step, stream=False)) == raw


# -- round trips ----------------------------------------------------------------------------


@pytest.mark.parametrize("stream", [False, True], ids=["json", "sse"])
@pytest.mark.parametrize("tools", [False, True], ids=["text", "tools"])
@pytest.mark.parametrize("codec", CODECS, ids=lambda c: c.api)
def test_round_trip(codec: Codec, tools: bool, stream: bool) -> None:
    step = _step(codec, tools=tools)
    wire = codec.encode(step, stream=stream)
    expected = "text/event-stream; charset=utf-8" if stream else "application/json"
    assert wire.headers["content-type"] == expected
    decoded = codec.decode(wire.body, stream=stream)
    assert decoded.output == step.output
    assert decoded.usage == step.usage
    assert decoded.model == "model-x"


@pytest.mark.parametrize("codec", CODECS, ids=lambda c: c.api)
def test_round_trip_of_text_and_tool_calls_together(codec: Codec) -> None:
    output = LLMOutput(
        content="Let me check.", tool_calls=CALLS, finish_reason=FINISH[codec.api][1]
    )
    step = _step(codec, tools=True, output=output)
    for stream in (False, True):
        assert codec.decode(codec.encode(step, stream=stream).body, stream=stream).output == output


@pytest.mark.parametrize("codec", [CHAT, RESPONSES], ids=lambda c: c.api)
def test_round_trip_keeps_non_json_arguments_as_strings(codec: Codec) -> None:
    """OpenAI sends arguments as a string that need not be JSON; it survives as a string."""
    calls = [{"id": "c1", "name": "raw", "arguments": "{not json"}]
    step = _step(
        codec, tools=True, output=LLMOutput(tool_calls=calls, finish_reason=FINISH[codec.api][1])
    )
    for stream in (False, True):
        decoded = codec.decode(codec.encode(step, stream=stream).body, stream=stream)
        assert decoded.output.tool_calls == calls


def test_anthropic_round_trip_of_usage_without_cache_counts() -> None:
    usage = Usage(input_tokens=10, output_tokens=5, total_tokens=15)
    step = _step(ANTHROPIC, tools=False, usage=usage)
    for stream in (False, True):
        decoded = ANTHROPIC.decode(ANTHROPIC.encode(step, stream=stream).body, stream=stream)
        assert decoded.usage == usage


# -- encoded streams through the real SDK clients -------------------------------------------


class Served:
    """A MockTransport handler answering every request with one WireResponse."""

    def __init__(self, wire: WireResponse) -> None:
        self.wire = wire
        self.bodies: list[Any] = []
        self.paths: list[str] = []

    def __call__(self, request: httpx2.Request) -> httpx2.Response:
        self.bodies.append(json.loads(request.content))
        self.paths.append(request.url.path)
        return httpx2.Response(self.wire.status, headers=self.wire.headers, content=self.wire.body)


def _openai(served: Served) -> openai.OpenAI:
    transport = httpx2.MockTransport(served)
    return openai.OpenAI(
        api_key="sk-test",
        base_url="http://test/v1",
        http_client=httpx2.Client(transport=transport),
        max_retries=0,
        _strict_response_validation=True,
    )


def _anthropic(served: Served) -> anthropic.Anthropic:
    transport = httpx2.MockTransport(served)
    return anthropic.Anthropic(
        api_key="sk-ant-test",
        base_url="http://test",
        http_client=httpx2.Client(transport=transport),
        max_retries=0,
        _strict_response_validation=True,
    )


def _args(calls: Iterable[tuple[str, str, str]]) -> list[tuple[str, str, Any]]:
    return [(i, n, json.loads(a)) for i, n, a in calls]


EXPECTED_CALLS = [(c["id"], c["name"], c["arguments"]) for c in CALLS]
CHAT_ARGS: dict[str, Any] = {"model": "model-x", "messages": [{"role": "user", "content": "hi"}]}


@pytest.mark.parametrize("tools", [False, True], ids=["text", "tools"])
def test_openai_chat_stream_through_the_sdk(tools: bool) -> None:
    served = Served(CHAT.encode(_step(CHAT, tools=tools), stream=True))
    client = _openai(served)
    stream = client.chat.completions.create(
        **CHAT_ARGS, stream=True, stream_options={"include_usage": True}
    )
    text, usage, finish = "", None, None
    fragments: dict[int, list[str]] = {}
    for chunk in stream:
        usage = chunk.usage or usage
        for choice in chunk.choices:
            text += choice.delta.content or ""
            finish = choice.finish_reason or finish
            for frag in choice.delta.tool_calls or []:
                entry = fragments.setdefault(frag.index, ["", "", ""])
                entry[0] += frag.id or ""
                entry[1] += (frag.function and frag.function.name) or ""
                entry[2] += (frag.function and frag.function.arguments) or ""
    assert served.paths == ["/v1/chat/completions"]
    assert CHAT.is_stream(served.bodies[0])
    assert codec_for("POST", served.paths[0]) is CHAT
    if tools:
        assert _args((v[0], v[1], v[2]) for _, v in sorted(fragments.items())) == EXPECTED_CALLS
        assert finish == "tool_calls"
    else:
        assert text == TEXT
        assert finish == "stop"
    assert usage is not None
    assert (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens) == (2006, 300, 2306)
    assert usage.prompt_tokens_details is not None
    assert usage.prompt_tokens_details.cached_tokens == 1920


def test_openai_chat_stream_helper_final_completion() -> None:
    served = Served(
        CHAT.encode(
            _step(
                CHAT,
                tools=True,
                output=LLMOutput(
                    content="Let me check.", tool_calls=CALLS, finish_reason="tool_calls"
                ),
            ),
            stream=True,
        )
    )
    with _openai(served).chat.completions.stream(**CHAT_ARGS) as stream:
        final = stream.get_final_completion()
    assert CHAT.is_stream(served.bodies[0])
    message = final.choices[0].message
    assert message.content == "Let me check."
    assert (
        _args((c.id, c.function.name, c.function.arguments) for c in message.tool_calls or [])
        == EXPECTED_CALLS
    )
    assert final.usage is not None
    assert final.usage.completion_tokens_details is not None
    assert final.usage.completion_tokens_details.reasoning_tokens == 256


def test_openai_chat_json_through_the_sdk() -> None:
    served = Served(CHAT.encode(_step(CHAT, tools=True), stream=False))
    completion = _openai(served).chat.completions.create(**CHAT_ARGS)
    assert not CHAT.is_stream(served.bodies[0])
    assert (
        _args(
            (c.id, c.function.name, c.function.arguments)
            for c in completion.choices[0].message.tool_calls or []
            if c.type == "function"
        )
        == EXPECTED_CALLS
    )


def test_openai_chat_stream_through_the_async_sdk() -> None:
    served = Served(CHAT.encode(_step(CHAT, tools=False), stream=True))

    async def run() -> str:
        client = openai.AsyncOpenAI(
            api_key="sk-test",
            base_url="http://test/v1",
            http_client=httpx2.AsyncClient(transport=httpx2.MockTransport(served)),
            max_retries=0,
            _strict_response_validation=True,
        )
        text = ""
        stream = await client.chat.completions.create(**CHAT_ARGS, stream=True)
        async for chunk in stream:
            text += "".join(c.delta.content or "" for c in chunk.choices)
        await client.close()
        return text

    assert asyncio.run(run()) == TEXT


def _response_calls(response: Response) -> list[tuple[str, str, Any]]:
    return _args(
        (o.call_id, o.name, o.arguments) for o in response.output if o.type == "function_call"
    )


@pytest.mark.parametrize("tools", [False, True], ids=["text", "tools"])
def test_openai_responses_stream_through_the_sdk(tools: bool) -> None:
    served = Served(RESPONSES.encode(_step(RESPONSES, tools=tools), stream=True))
    stream = _openai(served).responses.create(model="model-x", input="hi", stream=True)
    text, kinds, final = "", [], None
    for event in stream:
        kinds.append(event.type)
        if event.type == "response.output_text.delta":
            text += event.delta
        if event.type == "response.completed":
            final = event.response
    assert served.paths == ["/v1/responses"]
    assert RESPONSES.is_stream(served.bodies[0])
    assert kinds[:2] == ["response.created", "response.in_progress"]
    assert final is not None
    assert text == ("" if tools else TEXT)
    assert final.output_text == ("" if tools else TEXT)
    assert _response_calls(final) == (EXPECTED_CALLS if tools else [])
    assert final.usage is not None
    assert final.usage.input_tokens_details.cached_tokens == 1920


def test_openai_responses_stream_helper_final_response() -> None:
    output = LLMOutput(content="Let me check.", tool_calls=CALLS, finish_reason="completed")
    served = Served(RESPONSES.encode(_step(RESPONSES, tools=True, output=output), stream=True))
    with _openai(served).responses.stream(model="model-x", input="hi") as stream:
        deltas = [e.delta for e in stream if e.type == "response.output_text.delta"]
        final = stream.get_final_response()
    assert RESPONSES.is_stream(served.bodies[0])
    assert "".join(deltas) == "Let me check."
    assert final.output_text == "Let me check."
    assert _response_calls(final) == EXPECTED_CALLS
    assert final.usage is not None
    assert final.usage.output_tokens_details.reasoning_tokens == 256


def _tool_uses(message: Any) -> list[tuple[str, str, Any]]:
    return [(b.id, b.name, b.input) for b in message.content if b.type == "tool_use"]


ANTHROPIC_ARGS: dict[str, Any] = {
    "model": "model-x",
    "max_tokens": 100,
    "messages": [{"role": "user", "content": "hi"}],
}


@pytest.mark.parametrize("tools", [False, True], ids=["text", "tools"])
def test_anthropic_stream_through_the_sdk(tools: bool) -> None:
    served = Served(ANTHROPIC.encode(_step(ANTHROPIC, tools=tools), stream=True))
    stream = _anthropic(served).messages.create(**ANTHROPIC_ARGS, stream=True)
    text, stop, usage, output_tokens = "", None, None, None
    json_parts: dict[int, str] = {}
    names: dict[int, tuple[str, str]] = {}
    for event in stream:
        if event.type == "message_start":
            usage = event.message.usage
        elif event.type == "content_block_start" and event.content_block.type == "tool_use":
            names[event.index] = (event.content_block.id, event.content_block.name)
        elif event.type == "content_block_delta":
            if event.delta.type == "text_delta":
                text += event.delta.text
            elif event.delta.type == "input_json_delta":
                json_parts[event.index] = json_parts.get(event.index, "") + event.delta.partial_json
        elif event.type == "message_delta":
            stop, output_tokens = event.delta.stop_reason, event.usage.output_tokens
    assert served.paths == ["/v1/messages"]
    assert ANTHROPIC.is_stream(served.bodies[0])
    calls = [(*names[i], json.loads(json_parts[i])) for i in sorted(names)]
    assert calls == (EXPECTED_CALLS if tools else [])
    assert text == ("" if tools else TEXT)
    assert stop == ("tool_use" if tools else "end_turn")
    assert usage is not None
    assert usage.input_tokens == 2006 - 1920 - 64
    assert usage.cache_read_input_tokens == 1920
    assert output_tokens == 300


def test_anthropic_stream_helper_final_message() -> None:
    output = LLMOutput(content="Let me check.", tool_calls=CALLS, finish_reason="tool_use")
    served = Served(ANTHROPIC.encode(_step(ANTHROPIC, tools=True, output=output), stream=True))
    with _anthropic(served).messages.stream(**ANTHROPIC_ARGS) as stream:
        final = stream.get_final_message()
    assert ANTHROPIC.is_stream(served.bodies[0])
    assert [b.text for b in final.content if b.type == "text"] == ["Let me check."]
    assert _tool_uses(final) == EXPECTED_CALLS
    assert final.stop_reason == "tool_use"
    assert final.usage.output_tokens == 300
    assert final.usage.cache_creation_input_tokens == 64
    assert final.usage.output_tokens_details is not None
    assert final.usage.output_tokens_details.thinking_tokens == 256


def test_anthropic_json_through_the_sdk() -> None:
    served = Served(ANTHROPIC.encode(_step(ANTHROPIC, tools=True), stream=False))
    message = _anthropic(served).messages.create(**ANTHROPIC_ARGS)
    assert not ANTHROPIC.is_stream(served.bodies[0])
    assert _tool_uses(message) == EXPECTED_CALLS


@pytest.mark.parametrize("codec", CODECS, ids=lambda c: c.api)
def test_recorded_sdk_request_round_trips_through_request(codec: Codec) -> None:
    """What the real SDK sends is what `request()` reads: model, messages, tools, params."""
    served = Served(codec.encode(_step(codec, tools=False), stream=False))
    tools_chat: Any = [{"type": "function", "function": {"name": "f", "parameters": {}}}]
    params: dict[str, Any]
    if codec is CHAT:
        _openai(served).chat.completions.create(**CHAT_ARGS, temperature=0, tools=tools_chat)
        params, tools = {"temperature": 0}, tools_chat
    elif codec is RESPONSES:
        _openai(served).responses.create(
            model="model-x", input="hi", instructions="sys", temperature=0
        )
        params, tools = {"temperature": 0}, None
    else:
        _anthropic(served).messages.create(**ANTHROPIC_ARGS, system="sys", stop_sequences=["E"])
        params, tools = {"max_tokens": 100, "stop_sequences": ["E"]}, None
    request = codec.request(served.bodies[0])
    assert request["model"] == "model-x"
    assert request["input"]["messages"][-1] == {"role": "user", "content": "hi"}
    assert request["input"]["params"] == params
    assert request["input"]["tools"] == tools
    if codec is not CHAT:
        first = {"role": "system", "content": "sys"}
        if codec is RESPONSES:  # `instructions`, not a system message sent in `input`
            first["type"] = "instructions"
        assert request["input"]["messages"][0] == first


# -- a replayed stream comes in the pieces the recorded one came in --------------------------

REFUSAL = "I can't help with that."
SUMMARY = "Looking up the forecast."


def _choice_order(wire: WireResponse) -> list[int]:
    return [c["index"] for frame in _chat_frames(wire) for c in frame["choices"]]


def test_an_n_stream_replays_its_choices_interleaved_as_they_came() -> None:
    """The order the choices' chunks came in is kept (`choices`, as runs) when it was not
    one choice after the other, and replay sends them in it."""
    decoded = CHAT.decode(N_CHOICES_SSE, stream=True)
    step = LLMCallStep(
        step=1,
        model="m",
        output=decoded.output,
        raw=decoded.assembled,
        attributes={STREAM_CHUNKS: decoded.chunks},
    )
    wire = CHAT.encode(step, stream=True)
    assert _choice_order(wire) == [0, 1, 0, 1, 1, 0, 1]
    assert CHAT.decode(wire.body, stream=True).chunks == decoded.chunks


@pytest.mark.parametrize(
    "order",
    ["0,1*3", "0,1*2 1 0", "0,1*2 1 0,1 0", "0,1*2 1 1,1", "0,1*-2", "x", "0,1*99999999", 7],
)
def test_an_order_that_does_not_fit_the_choices_sends_one_choice_after_the_other(
    order: Any,
) -> None:
    decoded = CHAT.decode(N_CHOICES_SSE, stream=True)
    attributes = {STREAM_CHUNKS: {**(decoded.chunks or {}), "choices": order}}
    step = LLMCallStep(
        step=1, model="m", output=decoded.output, raw=decoded.assembled, attributes=attributes
    )
    assert _choice_order(CHAT.encode(step, stream=True)) == [0, 0, 0, 1, 1, 1, 1]


@pytest.mark.parametrize(
    ("order", "text"),
    [
        ([0, 0, 0, 1, 1, 2], None),
        ([0, 1, 0, 1, 0, 1], "0,1*3"),
        ([0, 1, 2, 0, 1, 2, 1, 1, 0, 2], "0,1,2*2 1*2 0,2"),
        ([1, 0, 0, 1], "1 0 0,1"),
    ],
)
def test_the_order_of_an_n_streams_chunks_is_written_as_runs(
    order: list[int], text: str | None
) -> None:
    from opswald.intercept.codecs.openai_chat import order_of, order_text

    assert order_text(order) == text
    if text is not None:
        assert order_of(text, len(order)) == order
        assert order_of(text, len(order) - 1) is None


def _with_pieces(codec: Codec, raw: dict[str, Any], pieces: Any) -> LLMCallStep:
    """A step recorded as `raw`, its stream's pieces as `pieces` (the attribute as written)."""
    decoded = codec.decode(json.dumps(raw).encode(), stream=False)
    return LLMCallStep(
        step=1,
        api=codec.api,
        model="m",
        output=decoded.output,
        usage=decoded.usage,
        raw=raw,
        attributes={STREAM_CHUNKS: pieces, "response_model": "m-2025"},
    )


def _chat_refusal_raw() -> dict[str, Any]:
    tokens = [_token("Caf", -0.1), _token("é", -0.2), _token(" ok", -0.3)]
    raw = _completion_with(
        {"role": "assistant", "content": "Café ok", "refusal": REFUSAL},
        {"content": tokens, "refusal": None},
    )
    call = {"id": "call_1", "type": "function",
            "function": {"name": "f", "arguments": '{"city":"Rome"}'}}  # fmt: skip
    raw["choices"][0]["message"]["tool_calls"] = [call]
    return raw


def _responses_raw() -> dict[str, Any]:
    message = {
        "id": "msg_1", "type": "message", "status": "completed", "role": "assistant",
        "content": [
            {"type": "output_text", "text": "Hello there", "annotations": []},
            {"type": "refusal", "refusal": REFUSAL},
        ],
    }  # fmt: skip
    reasoning = {"id": "rs_1", "type": "reasoning",
                 "summary": [{"type": "summary_text", "text": SUMMARY}]}  # fmt: skip
    call = {"id": "fc_1", "type": "function_call", "status": "completed", "call_id": "call_1",
            "name": "f", "arguments": '{"city": "Rome"}'}  # fmt: skip
    return {**RESPONSE_JSON, "output": [reasoning, message, call]}


def _anthropic_raw() -> dict[str, Any]:
    return {
        "id": "msg_1", "type": "message", "role": "assistant", "model": "m",
        "content": [
            {"type": "thinking", "thinking": SUMMARY, "signature": "sig"},
            {"type": "text", "text": "Hello there"},
            {"type": "tool_use", "id": "toolu_1", "name": "f", "input": {"city": "Rome"}},
        ],
        "stop_reason": "tool_use", "stop_sequence": None,
        "usage": {"input_tokens": 3, "output_tokens": 4},
    }  # fmt: skip


PIECES = [
    (
        CHAT,
        _chat_refusal_raw,
        {
            "choices[0].message.content": [4, 3],
            "choices[0].message.refusal": [1, 1, 5, 16],
            "choices[0].message.tool_calls[0].function.arguments": [9, 1, 5],
        },
    ),
    (
        RESPONSES,
        _responses_raw,
        {
            "output[0].summary[0].text": [7, 4, 13],
            "output[1].content[0].text": [1, 10],
            "output[1].content[1].refusal": [20, 3],
            "output[2].arguments": [3, 3, 3, 3, 4],
        },
    ),
    (
        ANTHROPIC,
        _anthropic_raw,
        {
            "content[0].thinking": [2, 22],
            "content[1].text": [6, 5],
            "content[2].input": [0, 2, 6, 7],  # the compact form of {"city": "Rome"}
        },
    ),
]


@pytest.mark.parametrize(("codec", "raw", "pieces"), PIECES, ids=[c.api for c, _, _ in PIECES])
def test_a_stream_is_served_and_read_back_in_its_recorded_pieces(
    codec: Codec, raw: Any, pieces: dict[str, list[int]]
) -> None:
    """Text, refusal, reasoning summary, thinking and tool arguments: each comes in the
    recorded pieces, and reading the replayed stream records the same lengths again."""
    step = _with_pieces(codec, raw(), pieces)
    again = codec.decode(codec.encode(step, stream=True).body, stream=True)
    assert again.chunks == pieces
    assert again.output == step.output


def _chat_frames(wire: WireResponse) -> list[dict[str, Any]]:
    return [e for _, e in sse_mod.json_events(wire.body) if e.get("choices")]


def test_recorded_pieces_carry_the_log_probabilities_of_the_tokens_that_start_in_them() -> None:
    step = _with_pieces(CHAT, _chat_refusal_raw(), {"choices[0].message.content": [4, 3]})
    sent = [
        (c["delta"]["content"], [t["token"] for t in c["logprobs"]["content"]])
        for frame in _chat_frames(CHAT.encode(step, stream=True))
        for c in frame["choices"]
        if c["delta"].get("content")
    ]
    assert sent == [("Café", ["Caf", "é"]), (" ok", [" ok"])]


def test_a_recorded_0_is_an_empty_piece_sent_again() -> None:
    """A delta with an empty text is a piece the provider sent: the role chunk's
    `content: ""` and a tool call's head (`arguments: ""`) are the frames' own and stay so."""
    pieces = {
        "choices[0].message.content": [0, 4, 0, 3],
        REFUSAL_AT: [23, 0],
        "choices[0].message.tool_calls[0].function.arguments": [0, 15],
    }
    step = _with_pieces(CHAT, _chat_refusal_raw(), pieces)
    wire = CHAT.encode(step, stream=True)
    deltas = [c["delta"] for frame in _chat_frames(wire) for c in frame["choices"]]
    assert deltas[0] == {"role": "assistant", "content": ""}
    assert [d["content"] for d in deltas if "content" in d][1:] == ["", "Café", "", " ok"]
    assert [d["refusal"] for d in deltas if "refusal" in d][-1] == ""
    arguments = [f["function"]["arguments"] for d in deltas for f in d.get("tool_calls") or []]
    assert arguments == ["", "", '{"city":"Rome"}'], "the head, an empty piece, the rest"
    assert CHAT.decode(wire.body, stream=True).chunks == pieces


def test_recorded_tool_arguments_are_sent_as_they_came() -> None:
    """The argument string the provider sent (its spacing) while it says the same."""
    step = _with_pieces(CHAT, _chat_refusal_raw(), {})
    again = CHAT.decode(CHAT.encode(step, stream=True).body, stream=True)
    message = again.assembled["choices"][0]["message"]
    assert message["tool_calls"][0]["function"]["arguments"] == '{"city":"Rome"}'


REFUSAL_AT = "choices[0].message.refusal"


@pytest.mark.parametrize(
    "pieces",
    [
        {REFUSAL_AT: [4, 4]},  # does not add up: the text was edited
        {REFUSAL_AT: [24, -1]},
        {REFUSAL_AT: [True, 22]},
        {REFUSAL_AT: [20.0, 3]},
        {REFUSAL_AT: "20 3"},
        {REFUSAL_AT: []},
        [REFUSAL_AT, 20, 3],
        "20 3",
        None,
    ],
)
def test_pieces_that_do_not_fit_the_text_are_ignored(pieces: Any) -> None:
    """Three even pieces instead, as before pieces were recorded; never an error."""
    step = _with_pieces(CHAT, _chat_refusal_raw(), pieces)
    again = CHAT.decode(CHAT.encode(step, stream=True).body, stream=True)
    assert again.chunks is not None
    assert again.chunks[REFUSAL_AT] == [8, 8, 7]
    assert again.output == step.output
    assert again.assembled["choices"][0]["message"]["refusal"] == REFUSAL


def test_a_stream_decoded_without_text_records_no_pieces() -> None:
    assert CHAT.decode(N_CHOICES_SSE, stream=True).chunks == {
        "choices[0].message.content": [5],
        "choices[1].message.content": [4, 6],
        "choices": "0,1*2 1 0,1",
    }, "the role chunk's empty content is no piece"
    assert CHAT.decode(json.dumps(_chat_refusal_raw()).encode(), stream=False).chunks is None
