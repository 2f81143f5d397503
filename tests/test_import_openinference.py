"""`opswald.importers.openinference`: OpenInference traces -> goldens.

Real traces from `openinference-instrumentation-openai` around the real `openai` SDK talking
to the fake provider (agent and tool spans from `openinference-instrumentation`'s own
tracer), exported with the SDK's in-memory exporter and encoded with the OTLP protobuf
encoder + `json_format.MessageToDict`; the imported golden is replayed by a pytester project
whose agent makes the same calls. Then hand-written flattened attributes for what the
OpenAI instrumentor does not produce (content parts, costs, chains, retrievers).
"""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from opswald.importers import ImportFormatError, import_file
from opswald.importers.openinference import convert
from opswald.session import LLMCallStep, Session, ToolCallStep, UserInputStep
from test_import_otel import (
    AGENT,
    ANSWER,
    CONFTEST,
    QUESTION,
    load_agent,
    otlp_json,
    replay_offline,
    run_against_fake,
)

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather in a city.",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}


class OIHooks:
    """Agent and tool spans made with OpenInference's own tracer."""

    def __init__(self, tracer: Any) -> None:
        self.tracer = tracer

    @contextlib.contextmanager
    def agent(self, question: str) -> Iterator[Callable[[str], None]]:
        with self.tracer.start_as_current_span(
            "weather-agent", openinference_span_kind="agent"
        ) as span:
            span.set_input(question)
            yield lambda answer: span.set_output(answer)

    @contextlib.contextmanager
    def tool(self, call: Any) -> Iterator[Callable[[Any], None]]:
        with self.tracer.start_as_current_span(
            call.function.name, openinference_span_kind="tool"
        ) as span:
            span.set_tool(
                name=call.function.name,
                description="Weather in a city.",
                parameters=WEATHER_TOOL["function"]["parameters"],
            )
            span.set_input(json.loads(call.function.arguments))
            yield lambda result: span.set_output(result)


def make_trace(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, *, spec: bool
) -> list[dict[str, Any]]:
    """Run the agent in a session under the real instrumentation; OTLP JSON documents."""
    from openinference.instrumentation import TracerProvider, using_session
    from openinference.instrumentation.openai import OpenAIInstrumentor
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    provider = TracerProvider(shutdown_on_exit=False)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    agent = load_agent(tmp_path, f"oi_trace_agent_{spec}")
    instrumentor = OpenAIInstrumentor()
    instrumentor.instrument(tracer_provider=provider)
    try:
        agent.TRACE = OIHooks(provider.get_tracer("weather-agent"))
        with using_session("support-42"):
            assert run_against_fake(agent, monkeypatch) == ANSWER
    finally:
        instrumentor.uninstrument()
        sys.modules.pop(agent.__name__, None)
    return otlp_json(exporter.get_finished_spans(), spec=spec)


def only_session(data: Any) -> Session:
    result = convert(data)
    assert len(result.sessions) == 1, result.sessions
    return result.sessions[0]


SYSTEM = {"role": "system", "content": "Be brief."}
USER = {"role": "user", "content": QUESTION}


@pytest.mark.parametrize("spec", [True, False], ids=["otlp-json", "protobuf-json"])
def test_real_openinference_trace_maps_field_by_field(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, spec: bool
) -> None:
    result = convert(make_trace(monkeypatch, tmp_path, spec=spec))
    import inspect
    import types

    import openai

    request = inspect.getattr_static(openai.OpenAI, "request")
    assert type(request) is types.FunctionType, "uninstrumented again"
    (session,) = result.sessions
    assert session.session_id == "support-42"
    assert session.agent == "weather-agent"
    assert (session.input, session.output) == (QUESTION, ANSWER)
    steps = session.step_list
    assert [s.type for s in steps] == ["llm_call", "tool_call", "llm_call", "llm_call", "llm_call"]
    stamps = [s.timestamp or "" for s in steps]
    assert stamps == sorted(stamps)
    first, tool, second, streamed, rejected = steps
    assert isinstance(first, LLMCallStep) and first.output is not None
    assert (first.provider, first.api, first.model) == (
        "openai",
        "openai.chat_completions",
        "gpt-4o-mini",
    )
    assert first.input.messages == [SYSTEM, USER]
    assert first.input.tools == [WEATHER_TOOL]
    assert first.input.params == {"temperature": 0, "seed": 7}
    assert first.output.tool_calls == [
        {"id": "call_1", "name": "get_weather", "arguments": {"city": "Paris"}}
    ]
    assert first.output.finish_reason == "tool_calls"
    assert first.usage is not None
    assert first.usage.model_dump(exclude_none=True) == {
        "input_tokens": 50,
        "output_tokens": 7,
        "total_tokens": 57,
        "cache_read_tokens": 20,
        "reasoning_tokens": 0,
    }
    assert isinstance(first.raw, dict) and first.raw["id"] == "chatcmpl-1"
    assert (first.attributes or {})["llm.token_count.prompt_details.audio"] == 0

    assert isinstance(tool, ToolCallStep)
    assert (tool.tool, tool.input, tool.output) == (
        "get_weather",
        {"city": "Paris"},
        {"city": "Paris", "temp_c": 21},
    )
    assert (tool.attributes or {})["tool.description"] == "Weather in a city."

    assert isinstance(second, LLMCallStep) and second.output is not None
    assert second.input.messages is not None and second.input.messages[2:] == [
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_1",
                    "function": {"arguments": {"city": "Paris"}, "name": "get_weather"},
                    "type": "function",
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": '{"city": "Paris", "temp_c": 21}'},
    ]
    assert second.output.content == ANSWER

    assert isinstance(streamed, LLMCallStep) and streamed.output is not None
    assert streamed.output.content == "Paris: 21°C."
    assert streamed.input.params == {"stream_options": {"include_usage": True}}

    assert isinstance(rejected, LLMCallStep) and rejected.error is not None
    assert (rejected.error.type, rejected.error.module) == ("BadRequestError", "openai")
    assert rejected.error.message.startswith("Error code: 400")
    assert (rejected.attributes or {})["http_status"] == 400
    assert session.expect is None, "OpenInference records every parameter: all compared"
    assert result.mapped["llm.input_messages.*.message.role"] >= 4
    assert not result.warnings


@pytest.fixture
def replay_project(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.delenv("SUMMARY_SUFFIX", raising=False)
    pytester.makepyfile(agent=AGENT, conftest=CONFTEST)
    pytester.mkdir("goldens")
    return pytester


def test_imported_openinference_golden_replays_and_a_changed_prompt_fails_at_its_step(
    replay_project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    golden = only_session(make_trace(monkeypatch, tmp_path, spec=True))
    replay_offline(replay_project, monkeypatch, golden)


def test_tool_calls_of_a_trace_without_tool_spans_come_from_the_conversation(
    replay_project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # the instrumentation alone makes no tool spans; the agent's @opswald.tool still runs
    from openinference.instrumentation import TracerProvider
    from openinference.instrumentation.openai import OpenAIInstrumentor
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    provider = TracerProvider(shutdown_on_exit=False)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    agent = load_agent(tmp_path, "oi_no_tool_spans_agent")
    instrumentor = OpenAIInstrumentor()
    instrumentor.instrument(tracer_provider=provider)
    try:  # the calls share a trace under a request span exported elsewhere (a web server's)
        server = TracerProvider(shutdown_on_exit=False).get_tracer("server")
        with server.start_as_current_span("POST /ask"):
            assert run_against_fake(agent, monkeypatch) == ANSWER
    finally:
        instrumentor.uninstrument()
        sys.modules.pop(agent.__name__, None)
    result = convert(otlp_json(exporter.get_finished_spans(), spec=True))
    (golden,) = result.sessions
    steps = golden.step_list
    assert [s.type for s in steps] == ["llm_call", "tool_call", "llm_call", "llm_call", "llm_call"]
    tool = steps[1]
    assert isinstance(tool, ToolCallStep)
    assert (tool.tool, tool.input, tool.output) == (
        "get_weather",
        {"city": "Paris"},
        {"city": "Paris", "temp_c": 21},
    )
    # without an agent span the trace never saw what the agent returned (the import takes
    # the last model answer); the test sets it, as a user reviewing the golden would
    replay_offline(replay_project, monkeypatch, golden.model_copy(update={"output": ANSWER}))


# -- hand-written documents -----------------------------------------------------------------

START = 1_738_317_600_000_000_000


def _span(
    span_id: str,
    attributes: dict[str, Any],
    *,
    trace: str = "c" * 32,
    parent: str | None = None,
    offset_ms: int = 0,
    **extra: Any,
) -> dict[str, Any]:
    start = START + offset_ms * 1_000_000
    return {
        "traceId": trace,
        "spanId": span_id,
        **({"parentSpanId": parent} if parent else {}),
        "name": extra.pop("name", "span"),
        "kind": "SPAN_KIND_INTERNAL",
        "startTimeUnixNano": str(start),
        "endTimeUnixNano": str(start + 100_000_000),
        "attributes": [{"key": k, "value": _value(v)} for k, v in attributes.items()],
        **extra,
    }


def _value(v: Any) -> dict[str, Any]:
    if isinstance(v, bool):
        return {"boolValue": v}
    if isinstance(v, int):
        return {"intValue": str(v)}
    if isinstance(v, float):
        return {"doubleValue": v}
    if isinstance(v, list):
        return {"arrayValue": {"values": [_value(x) for x in v]}}
    return {"stringValue": v}


def _doc(*spans: dict[str, Any]) -> dict[str, Any]:
    return {"resourceSpans": [{"scopeSpans": [{"spans": list(spans)}]}]}


ROOT = "1" * 16


def _chain(**extra: Any) -> dict[str, Any]:
    return _span(
        ROOT,
        {
            "openinference.span.kind": "CHAIN",
            "input.value": '{"ticket": 7}',
            "input.mime_type": "application/json",
            "output.value": "Refunded.",
            "metadata": '{"team": "billing"}',
        },
        name="refund-flow",
        **extra,
    )


def _flattened_llm() -> dict[str, Any]:
    msg = "llm.input_messages"
    return _span(
        "2" * 16,
        {
            "openinference.span.kind": "LLM",
            "llm.provider": "openai",
            "llm.model_name": "gpt-4o",
            "llm.invocation_parameters": '{"temperature": 0.1, "model": "gpt-4o"}',
            f"{msg}.0.message.role": "system",
            f"{msg}.0.message.content": "You refund orders.",
            f"{msg}.1.message.role": "user",
            f"{msg}.1.message.contents.0.message_content.type": "text",
            f"{msg}.1.message.contents.0.message_content.text": "Refund ticket 7.",
            f"{msg}.1.message.contents.1.message_content.type": "image",
            f"{msg}.1.message.contents.1.message_content.image.image.url": "https://x/r.png",
            "llm.tools.0.tool.json_schema": json.dumps(
                {"type": "function", "function": {"name": "refund"}}
            ),
            "llm.output_messages.0.message.role": "assistant",
            "llm.output_messages.0.message.tool_calls.0.tool_call.id": "t1",
            "llm.output_messages.0.message.tool_calls.0.tool_call.function.name": "refund",
            "llm.output_messages.0.message.tool_calls.0.tool_call.function.arguments": (
                '{"ticket": 7}'
            ),
            "llm.token_count.prompt": 900,
            "llm.token_count.completion": 20,
            "llm.token_count.prompt_details.cache_read": 512,
            "llm.token_count.prompt_details.cache_write": 128,
            "llm.cost.prompt": 0.002,
            "llm.cost.completion": 0.0005,
            "tag.tags": ["vip"],
        },
        parent=ROOT,
        offset_ms=10,
    )


def _tool_span() -> dict[str, Any]:
    return _span(
        "3" * 16,
        {
            "openinference.span.kind": "TOOL",
            "tool.name": "refund",
            "input.value": '{"ticket": 7}',
            "input.mime_type": "application/json",
            "output.value": "ok",
            "output.mime_type": "text/plain",
            "tool.parameters": '{"type": "object"}',
        },
        parent=ROOT,
        offset_ms=20,
    )


def test_flattened_attributes_chain_tool_cost_and_skipped_kinds() -> None:
    retriever = _span("4" * 16, {"openinference.span.kind": "RETRIEVER"}, parent=ROOT, offset_ms=5)
    inner_chain = _span("5" * 16, {"openinference.span.kind": "CHAIN"}, parent=ROOT)
    plain = _span("6" * 16, {"http.method": "GET"}, parent=ROOT)
    result = convert(_doc(_chain(), _flattened_llm(), _tool_span(), retriever, inner_chain, plain))
    (session,) = result.sessions
    assert (session.input, session.output) == ({"ticket": 7}, "Refunded.")
    assert session.agent is None and session.session_id == "c" * 32
    llm, tool = session.step_list
    assert isinstance(llm, LLMCallStep) and llm.output is not None
    assert (llm.provider, llm.api, llm.model) == ("openai", "openai.chat_completions", "gpt-4o")
    assert llm.input.messages == [
        {"role": "system", "content": "You refund orders."},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "Refund ticket 7."},
                {"type": "image_url", "image_url": {"url": "https://x/r.png"}},
            ],
        },
    ]
    assert llm.input.tools == [{"type": "function", "function": {"name": "refund"}}]
    assert llm.input.params == {"temperature": 0.1}
    assert llm.output.tool_calls == [{"id": "t1", "name": "refund", "arguments": {"ticket": 7}}]
    assert llm.usage is not None
    assert (llm.usage.cache_read_tokens, llm.usage.cache_creation_tokens) == (512, 128)
    assert llm.cost == pytest.approx(0.0025) and llm.cost_source == "trace"
    assert llm.attributes == {"tag.tags": ["vip"]}
    assert isinstance(tool, ToolCallStep)
    assert (tool.tool, tool.input, tool.output) == ("refund", {"ticket": 7}, "ok")
    assert tool.attributes == {"tool.parameters": '{"type": "object"}'}
    assert result.skipped["RETRIEVER span (not replayed)"] == 1
    assert result.skipped["CHAIN span inside the session (structure only)"] == 1
    assert result.skipped["span without openinference.span.kind"] == 1
    assert result.skipped["metadata (on the CHAIN span)"] == 1
    assert result.kept["tag.tags"] == 1
    assert result.mapped["llm.cost.prompt"] == 1


def test_an_llm_span_wrapping_the_sdk_span_is_skipped() -> None:
    outer = _span(
        "7" * 16,
        {"openinference.span.kind": "LLM", "llm.model_name": "framework-view"},
        parent=ROOT,
        offset_ms=9,
    )
    inner = _flattened_llm()
    inner["parentSpanId"] = "7" * 16
    result = convert(_doc(_chain(), outer, inner))
    (step,) = result.sessions[0].step_list
    assert isinstance(step, LLMCallStep) and step.model == "gpt-4o"
    assert result.skipped["LLM span wrapping another LLM span"] == 1


def test_anthropic_request_from_input_value_goes_through_its_codec() -> None:
    body = {
        "model": "claude-sonnet-4",
        "max_tokens": 64,
        "system": "Be brief.",
        "messages": [{"role": "user", "content": "Hi"}],
    }
    reply = {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "model": "claude-sonnet-4",
        "content": [{"type": "text", "text": "Hello."}],
        "stop_reason": "end_turn",
        "usage": {"input_tokens": 5, "output_tokens": 2, "cache_read_input_tokens": 10},
    }
    span = _span(
        "8" * 16,
        {
            "openinference.span.kind": "LLM",
            "llm.provider": "anthropic",
            "input.value": json.dumps(body),
            "input.mime_type": "application/json",
            "output.value": json.dumps(reply),
            "output.mime_type": "application/json",
        },
    )
    (step,) = only_session(_doc(span)).step_list
    assert isinstance(step, LLMCallStep) and step.output is not None
    assert (step.provider, step.api, step.model) == (
        "anthropic",
        "anthropic.messages",
        "claude-sonnet-4",
    )
    assert step.input.messages == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hi"},
    ]
    assert step.input.params == {"max_tokens": 64}
    assert (step.output.content, step.output.finish_reason) == ("Hello.", "end_turn")
    assert step.usage is not None
    assert (step.usage.input_tokens, step.usage.cache_read_tokens) == (15, 10)
    assert step.raw == reply


def test_session_id_groups_traces_and_later_agent_inputs_are_user_turns() -> None:
    def agent(span_id: str, trace: str, offset: int, said: str) -> dict[str, Any]:
        return _span(
            span_id,
            {
                "openinference.span.kind": "AGENT",
                "agent.name": "concierge",
                "session.id": "s-9",
                "input.value": said,
                "output.value": f"re: {said}",
            },
            trace=trace,
            offset_ms=offset,
            name="agent-run",
        )

    lonely = _span("9" * 16, {"openinference.span.kind": "TOOL", "tool.name": "ping"})
    first = agent("a" * 16, "a" * 32, 0, "hello")
    second = agent("b" * 16, "b" * 32, 900, "bye")
    look = _span(  # a call in the first turn: a conversation without one gives no golden
        "d" * 16,
        {"openinference.span.kind": "TOOL", "tool.name": "look", "session.id": "s-9"},
        trace="a" * 32,
        parent="a" * 16,
        offset_ms=10,
    )
    result = convert([_doc(first, look), _doc(second), _doc(lonely)])
    by_id = {s.session_id: s for s in result.sessions}
    assert set(by_id) == {"s-9", "c" * 32}
    talk = by_id["s-9"]
    assert (talk.agent, talk.input, talk.output) == ("concierge", "hello", "re: bye")
    called, turn = talk.step_list
    assert isinstance(called, ToolCallStep) and called.tool == "look"
    assert isinstance(turn, UserInputStep) and turn.content == "bye"
    (ping,) = by_id["c" * 32].step_list
    assert isinstance(ping, ToolCallStep) and ping.tool == "ping"


def test_malformed_input_names_the_file_and_where(tmp_path: Path) -> None:
    span = _span("2" * 16, {"openinference.span.kind": "LLM"})
    span["attributes"][0]["value"] = {"doubleValue": "lots"}
    path = tmp_path / "oi.json"
    path.write_text(json.dumps(_doc(span)))
    with pytest.raises(
        ImportFormatError,
        match=rf"^{path}: resourceSpans\[0\]\.scopeSpans\[0\]\.spans\[0\]\.attributes\[0\]"
        r"\.value: doubleValue 'lots' is not a valid double",
    ):
        import_file("openinference", path)
