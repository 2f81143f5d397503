"""`opswald.importers.otel`: OpenTelemetry GenAI traces -> goldens.

Real traces first: `opentelemetry-instrumentation-openai-v2` (and `opentelemetry-util-genai`
for the agent and tool spans) around the real `openai` SDK talking to the fake provider,
exported with the SDK's in-memory exporters and encoded with the OTLP protobuf encoder +
`json_format.MessageToDict` — once as protobuf's JSON mapping gives it (base64 ids, enum
names) and once as the OTLP/JSON rules say (hex ids, enum numbers). Then the imported golden
is replayed by a pytester project whose agent makes the same calls. Then hand-written
documents for the deprecated names and the edge cases.
"""

from __future__ import annotations

import base64
import contextlib
import importlib.util
import json
import socket
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from fakeprovider import FakeProvider
from opswald import dump
from opswald.engine.normalize import RequestRules
from opswald.engine.tape import Tape
from opswald.importers import ImportFormatError, import_file
from opswald.importers.otel import convert
from opswald.session import LLMCallStep, Session, ToolCallsExpect, ToolCallStep, UserInputStep

DATA = Path(__file__).parent / "data" / "import_otel"
QUESTION = "What is the weather in Paris?"
ANSWER = "It is 21°C in Paris."
SCRIPT = [
    {
        "content": None,
        "tool_calls": [{"name": "get_weather", "arguments": {"city": "Paris"}}],
        "usage": {"input_tokens": 50, "output_tokens": 7, "cached_tokens": 20},
    },
    {"content": ANSWER, "usage": {"input_tokens": 80, "output_tokens": 9}},
    {"content": "Paris: 21°C.", "usage": {"input_tokens": 12, "output_tokens": 4}},
]

AGENT = '''
"""A weather agent: asks the model, runs the tool it picks, asks again, streams a summary,
and carries on when a second provider rejects its request (HTTP 400)."""
import contextlib
import json
import os

import openai
import opswald

TRACE = None  # the trace producer's hooks, set only while a trace is being made

TOOLS = [{"type": "function", "function": {
    "name": "get_weather", "description": "Weather in a city.",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}]


@opswald.tool
def get_weather(city):
    return {"city": city, "temp_c": 21}


def _tool(call):
    args = json.loads(call.function.arguments)
    if TRACE is None:
        return get_weather(**args)
    with TRACE.tool(call) as done:
        result = get_weather(**args)
        done(result)
    return result


def run(question):
    if TRACE is None:
        return _run(question)
    with TRACE.agent(question) as finish:
        answer = _run(question)
        finish(answer)
    return answer


def _run(question):
    client = openai.OpenAI(max_retries=0)
    messages = [{"role": "system", "content": "Be brief."},
                {"role": "user", "content": question}]
    reply = client.chat.completions.create(
        model="gpt-4o-mini", messages=messages, tools=TOOLS, temperature=0, seed=7)
    message = reply.choices[0].message
    messages.append({"role": "assistant", "content": message.content,
                     "tool_calls": [c.model_dump() for c in message.tool_calls]})
    for call in message.tool_calls:
        messages.append(
            {"role": "tool", "tool_call_id": call.id, "content": json.dumps(_tool(call))})
    reply = client.chat.completions.create(
        model="gpt-4o-mini", messages=messages, tools=TOOLS, temperature=0)
    answer = reply.choices[0].message.content
    topic = "Summarise: " + answer + os.environ.get("SUMMARY_SUFFIX", "")
    stream = client.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": topic}], stream=True,
        stream_options={"include_usage": True})
    summary = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    rejecting = openai.OpenAI(base_url=os.environ["REJECTING_BASE_URL"], max_retries=0)
    try:
        rejecting.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "Rate: " + summary}])
    except openai.BadRequestError:
        pass
    rejecting.close()  # no socket left for a later gc
    client.close()
    return answer
'''

CONFTEST = """
import agent


def pytest_opswald_adapter(golden, config):
    return agent.run
"""


# -- making real traces ---------------------------------------------------------------------


def load_agent(tmp_path: Path, name: str) -> Any:
    """The agent source as a fresh module (its own name: pytester imports it as `agent`)."""
    path = tmp_path / f"{name}.py"
    path.write_text(AGENT)
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def run_against_fake(agent: Any, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run the agent for real against the fake provider (and a second one that answers 400)."""
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    with (
        FakeProvider(script=[dict(s) for s in SCRIPT]) as fp,
        FakeProvider(fail_first=[400]) as rejecting,
    ):
        monkeypatch.setenv("OPENAI_BASE_URL", fp.base_url + "/v1")
        monkeypatch.setenv("REJECTING_BASE_URL", rejecting.base_url + "/v1")
        answer = str(agent.run(QUESTION))
        assert len(fp.requests) == 3 and len(rejecting.requests) == 1
    return answer


def _hex_ids(data: Any) -> Any:
    """protobuf's JSON mapping writes bytes as base64; OTLP/JSON wants hex ids."""
    if isinstance(data, dict):
        return {
            k: base64.b64decode(v).hex() if k in _ID_KEYS and v else _hex_ids(v)
            for k, v in data.items()
        }
    if isinstance(data, list):
        return [_hex_ids(v) for v in data]
    return data


_ID_KEYS = frozenset({"traceId", "spanId", "parentSpanId"})


def otlp_json(
    spans: Any, logs: Any = (), *, spec: bool, snake: bool = False
) -> list[dict[str, Any]]:
    """Traces (and logs) as OTLP JSON documents, encoded by the OTLP exporter's encoder:
    the OTLP/JSON rules (`spec`), or protobuf's JSON mapping, camelCase or `snake`_case."""
    from google.protobuf.json_format import MessageToDict
    from opentelemetry.exporter.otlp.proto.common._log_encoder import encode_logs
    from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans

    messages = [encode_spans(spans)] + ([encode_logs(list(logs))] if logs else [])
    docs = [
        MessageToDict(m, use_integers_for_enums=spec, preserving_proto_field_name=snake)
        for m in messages
    ]
    return [_hex_ids(d) for d in docs] if spec else docs


class OTelHooks:
    """Agent and tool spans made by `opentelemetry-util-genai`, as frameworks make them."""

    def __init__(self, handler: Any) -> None:
        self.handler = handler

    @contextlib.contextmanager
    def agent(self, question: str) -> Iterator[Callable[[str], None]]:
        from opentelemetry.util.genai.types import InputMessage, OutputMessage, Text

        with self.handler.invoke_local_agent(
            agent_name="weather-agent", request_model="gpt-4o-mini"
        ) as invocation:
            invocation.input_messages = [InputMessage(role="user", parts=[Text(content=question)])]

            def finish(answer: str) -> None:
                invocation.output_messages = [
                    OutputMessage(
                        role="assistant", parts=[Text(content=answer)], finish_reason="stop"
                    )
                ]

            yield finish

    @contextlib.contextmanager
    def tool(self, call: Any) -> Iterator[Callable[[Any], None]]:
        with self.handler.tool(call.function.name, tool_call_id=call.id) as invocation:
            invocation.arguments = call.function.arguments

            def done(result: Any) -> None:
                invocation.tool_result = result

            yield done


@contextlib.contextmanager
def instrumented(monkeypatch: pytest.MonkeyPatch, capture: str) -> Iterator[tuple[Any, Any, Any]]:
    """openai-v2 instrumentation on private providers; always uninstrumented afterwards."""
    from opentelemetry.instrumentation.openai_v2 import OpenAIInstrumentor
    from opentelemetry.sdk._logs import LoggerProvider
    from opentelemetry.sdk._logs.export import (
        InMemoryLogRecordExporter,
        SimpleLogRecordProcessor,
    )
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    from opentelemetry.util.genai.handler import TelemetryHandler

    monkeypatch.setenv("OTEL_SEMCONV_STABILITY_OPT_IN", "gen_ai_latest_experimental")
    monkeypatch.setenv("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", capture)
    spans, logs = InMemorySpanExporter(), InMemoryLogRecordExporter()
    tracer_provider = TracerProvider(shutdown_on_exit=False)
    tracer_provider.add_span_processor(SimpleSpanProcessor(spans))
    logger_provider = LoggerProvider(shutdown_on_exit=False)
    logger_provider.add_log_record_processor(SimpleLogRecordProcessor(logs))
    instrumentor = OpenAIInstrumentor()
    instrumentor.instrument(tracer_provider=tracer_provider, logger_provider=logger_provider)
    try:
        handler = TelemetryHandler(tracer_provider=tracer_provider, logger_provider=logger_provider)
        yield handler, spans, logs
    finally:
        instrumentor.uninstrument()


def make_trace(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capture: str,
    *,
    spec: bool,
    snake: bool = False,
) -> list[dict[str, Any]]:
    """Run the agent under the real instrumentation; its trace as OTLP JSON documents."""
    agent = load_agent(tmp_path, f"otel_trace_agent_{capture}_{spec}_{snake}")
    try:
        with instrumented(monkeypatch, capture) as (handler, spans, logs):
            agent.TRACE = OTelHooks(handler)
            assert run_against_fake(agent, monkeypatch) == ANSWER
        return otlp_json(
            spans.get_finished_spans(), logs.get_finished_logs(), spec=spec, snake=snake
        )
    finally:
        sys.modules.pop(agent.__name__, None)


def only_session(data: Any) -> Session:
    result = convert(data)
    assert len(result.sessions) == 1, result.sessions
    return result.sessions[0]


# -- real producer: field by field ----------------------------------------------------------


SYSTEM = {"role": "system", "content": "Be brief."}
USER = {"role": "user", "content": QUESTION}
CALL = {"id": "call_1", "name": "get_weather", "arguments": {"city": "Paris"}}


@pytest.mark.parametrize(
    ("spec", "snake"),
    [(True, False), (False, False), (False, True)],
    ids=["otlp-json", "protobuf-json", "protobuf-snake-case"],
)
@pytest.mark.parametrize("capture", ["span_only", "event_only"])
def test_real_openai_v2_trace_maps_field_by_field(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capture: str, spec: bool, snake: bool
) -> None:
    docs = make_trace(monkeypatch, tmp_path, capture, spec=spec, snake=snake)
    import types

    import openai

    create = vars(openai.resources.chat.completions.Completions)["create"]
    assert type(create) is types.FunctionType, "uninstrumented again"
    if capture == "event_only":  # content travels in log records, not on the spans
        assert ("resource_logs" if snake else "resourceLogs") in docs[1]
        assert "gen_ai.input.messages" not in json.dumps(docs[0])
    path = tmp_path / "trace.jsonl"  # as a collector's file exporter writes it: one per line
    path.write_text("\n".join(json.dumps(d) for d in docs) + "\n")
    result = import_file("otel", path)
    assert len(result.sessions) == 1
    session = result.sessions[0]
    assert session.agent == "weather-agent"
    assert session.input == QUESTION
    assert session.metadata["imported"]["format"] == "otel"
    assert session.session_id == session.metadata["imported"]["trace_ids"][0]
    steps = session.step_list
    assert [s.type for s in steps] == ["llm_call", "tool_call", "llm_call", "llm_call", "llm_call"]
    stamps = [s.timestamp or "" for s in steps]
    assert stamps == sorted(stamps) and all(s.duration_ms is not None for s in steps)

    first, tool, second, streamed, rejected = steps
    assert isinstance(first, LLMCallStep) and isinstance(tool, ToolCallStep)
    assert (first.provider, first.api, first.model) == (
        "openai",
        "openai.chat_completions",
        "gpt-4o-mini",
    )
    assert first.input.messages == [SYSTEM, USER]
    assert first.input.tools is None, "this producer does not record tool definitions"
    assert first.input.params == {"temperature": 0, "seed": 7}
    assert first.output is not None and first.output.tool_calls == [CALL]
    assert first.output.content is None and first.output.finish_reason == "tool_calls"
    assert first.usage is not None
    assert (first.usage.input_tokens, first.usage.output_tokens) == (50, 7)
    assert (first.attributes or {}).get("gen_ai.response.id") == "chatcmpl-1"

    assert (tool.tool, tool.call_id) == ("get_weather", "call_1")
    assert tool.input == {"city": "Paris"}
    assert tool.output == {"city": "Paris", "temp_c": 21}

    assert isinstance(second, LLMCallStep) and second.output is not None
    assert second.input.messages == [
        SYSTEM,
        USER,
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": {"city": "Paris"}},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": '{"city": "Paris", "temp_c": 21}'},
    ]
    assert second.output.content == ANSWER and second.output.finish_reason == "stop"

    assert isinstance(streamed, LLMCallStep) and streamed.output is not None
    assert streamed.input.messages == [{"role": "user", "content": f"Summarise: {ANSWER}"}]
    assert streamed.output.content == "Paris: 21°C."
    assert streamed.usage is not None and streamed.usage.output_tokens == 4

    assert isinstance(rejected, LLMCallStep) and rejected.error is not None
    assert (rejected.error.type, rejected.error.module) == ("BadRequestError", "openai")
    assert "400" in rejected.error.message
    assert rejected.output is None and (rejected.attributes or {})["http_status"] == 400

    if capture == "span_only":
        assert session.output == ANSWER, "from the agent span's output"
    else:  # the agent span carries no content in event_only: the last model answer
        assert session.output == "Paris: 21°C."
    assert session.expectations.requests.ignore == ["input.params"]
    assert result.mapped["gen_ai.usage.input_tokens"] == 3
    assert result.kept["gen_ai.response.id"] == 3
    assert not result.warnings


def test_real_trace_without_content_keeps_what_it_has(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    session_result = convert(make_trace(monkeypatch, tmp_path, "NO_CONTENT", spec=True))
    session = session_result.sessions[0]
    first = session.step_list[0]
    assert isinstance(first, LLMCallStep)
    assert first.input.messages is None, "not captured: absent, so not compared"
    assert first.output is not None and first.output.finish_reason == "tool_calls"
    assert first.usage is not None and first.usage.input_tokens == 50
    tool = session.step_list[1]
    assert isinstance(tool, ToolCallStep) and tool.input is None
    assert any("without message content" in w for w in session_result.warnings)


def test_sdk_json_span_list_is_read(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The SDK's own `span.to_json()` form (what ConsoleSpanExporter prints), as a list."""
    agent = load_agent(tmp_path, "otel_sdk_json_agent")
    try:
        with instrumented(monkeypatch, "span_only") as (handler, spans, _):
            agent.TRACE = OTelHooks(handler)
            run_against_fake(agent, monkeypatch)
        data = [json.loads(s.to_json()) for s in spans.get_finished_spans()]
    finally:
        sys.modules.pop(agent.__name__, None)
    session = only_session(data)
    assert [s.type for s in session.step_list][:2] == ["llm_call", "tool_call"]
    assert session.output == ANSWER
    last = session.step_list[-1]
    assert last.error is not None and last.error.type == "BadRequestError"


# -- real producer: the imported golden replays ---------------------------------------------


@pytest.fixture
def replay_project(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    """A project whose agent makes the same calls; every provider URL is a closed port."""
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.delenv("SUMMARY_SUFFIX", raising=False)
    pytester.makepyfile(agent=AGENT, conftest=CONFTEST)
    pytester.mkdir("goldens")
    return pytester


def replay_offline(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, golden: Session
) -> None:
    dump(golden, project.path / "goldens" / "imported.golden.yaml")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    monkeypatch.setenv("OPENAI_BASE_URL", f"http://127.0.0.1:{closed_port()}/v1")
    monkeypatch.setenv("REJECTING_BASE_URL", f"http://127.0.0.1:{closed_port()}/v1")
    result = project.runpytest("--opswald-goldens")
    result.assert_outcomes(passed=1)

    monkeypatch.setenv("SUMMARY_SUFFIX", " In French.")
    result = project.runpytest("--opswald-goldens")
    result.assert_outcomes(failed=1)
    out = result.stdout.str()
    assert "step 4 of 5 · llm_call" in out
    assert f"step 4 › input.messages[0].content: 'Summarise: {ANSWER}' → " in out


def test_imported_otel_golden_replays_and_a_changed_prompt_fails_at_its_step(
    replay_project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    golden = only_session(make_trace(monkeypatch, tmp_path, "span_only", spec=True))
    replay_offline(replay_project, monkeypatch, golden)


def test_tool_calls_of_a_trace_without_tool_spans_come_from_the_conversation(
    replay_project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # the instrumentation alone makes no tool spans; the agent's @opswald.tool still runs
    from opentelemetry.sdk.trace import TracerProvider

    agent = load_agent(tmp_path, "otel_no_tool_spans_agent")
    try:
        with instrumented(monkeypatch, "span_only") as (_, spans, _logs):
            # the calls share a trace under a request span exported elsewhere (a web server's)
            server = TracerProvider(shutdown_on_exit=False).get_tracer("server")
            with server.start_as_current_span("POST /ask"):
                assert run_against_fake(agent, monkeypatch) == ANSWER
        data = otlp_json(spans.get_finished_spans(), spec=True)
    finally:
        sys.modules.pop(agent.__name__, None)
    result = convert(data)
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
    assert tool.call_id is not None and tool.call_id.startswith("call_")
    assert result.mapped["tool call from the conversation (no tool spans)"] == 1
    # without an agent span the trace never saw what the agent returned (the import takes
    # the last model answer); the test sets it, as a user reviewing the golden would
    replay_offline(replay_project, monkeypatch, golden.model_copy(update={"output": ANSWER}))


# -- hand-written documents -----------------------------------------------------------------


def test_deprecated_names_and_per_message_events() -> None:
    """`gen_ai.system`, prompt/completion tokens, no operation name, and the old message
    events both as span events and as log records; quoted and bare 64-bit ints."""
    result = import_file("otel", DATA / "deprecated.json")
    by_id = {s.session_id: s for s in result.sessions}
    assert set(by_id) == {"0af7651916cd43dd8448eb211c80319c", "1bf7651916cd43dd8448eb211c80319c"}
    for session in by_id.values():
        first = session.step_list[0]
        assert isinstance(first, LLMCallStep)
        assert (first.provider, first.api, first.model) == (
            "openai",
            "openai.chat_completions",
            "gpt-4",
        )
        assert first.input.messages == [
            {"role": "system", "content": "You are terse."},
            {"role": "user", "content": "Weather in Oslo?"},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "call_9",
                        "type": "function",
                        "function": {"name": "weather", "arguments": {"city": "Oslo"}},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": "call_9", "content": "rainy"},
        ]
        assert first.input.params == {"temperature": 0.5, "seed": 42, "max_tokens": 100}
        assert first.output is not None
        assert (first.output.content, first.output.finish_reason) == ("Rainy, 4°C.", "stop")
        assert first.usage is not None
        assert (first.usage.input_tokens, first.usage.output_tokens) == (31, 6)
        assert first.timestamp == "2025-01-31T10:00:00.000Z" and first.duration_ms == 1500.0
        assert session.input == "Weather in Oslo?", "the first user message"
        assert session.output == "Rainy, 4°C.", "the last model answer"
    assert result.mapped["gen_ai.user.message"] == 2
    assert result.mapped["gen_ai.usage.prompt_tokens"] == 2
    assert result.skipped["span without gen_ai.operation.name"] == 1


def _attr(key: str, value: dict[str, Any]) -> dict[str, Any]:
    return {"key": key, "value": value}


def _s(text: str) -> dict[str, Any]:
    return {"stringValue": text}


def _span(
    span_id: str,
    attributes: list[dict[str, Any]],
    *,
    trace: str = "a" * 32,
    parent: str = "",
    start: int | str = 1_738_317_600_000_000_000,
    name: str = "chat",
    **extra: Any,
) -> dict[str, Any]:
    end = int(start) + 250_000_000 if str(start).isdigit() else start
    return {
        "traceId": trace,
        "spanId": span_id,
        "parentSpanId": parent,
        "name": name,
        "kind": 3,
        "startTimeUnixNano": str(start),
        "endTimeUnixNano": str(end),
        "attributes": attributes,
        **extra,
    }


def _doc(*spans: dict[str, Any]) -> dict[str, Any]:
    resource = {"attributes": [_attr("service.name", _s("travel"))]}
    return {"resourceSpans": [{"resource": resource, "scopeSpans": [{"spans": list(spans)}]}]}


def _kv(**values: Any) -> dict[str, Any]:
    return {"kvlistValue": {"values": [_attr(k, v) for k, v in values.items()]}}


def _arr(*values: Any) -> dict[str, Any]:
    return {"arrayValue": {"values": list(values)}}


def test_current_names_with_structured_values_cache_and_reasoning_tokens() -> None:
    """Messages as kvlist/array values, int64 quoted and bare, double, bool, bytes;
    system instructions, tool definitions, cache and reasoning tokens, reasoning parts."""
    text = _kv(type=_s("text"), content=_s("Book a table for two."))
    user = _kv(role=_s("user"), parts=_arr(text))
    thought = _kv(type=_s("reasoning"), content=_s("need the tool"))
    call = _kv(
        type=_s("tool_call"),
        id=_s("c1"),
        name=_s("book"),
        arguments=_kv(people={"intValue": "2"}, terrace={"boolValue": True}),
    )
    out = _kv(role=_s("assistant"), parts=_arr(thought, call), finish_reason=_s("tool_calls"))
    tools = json.dumps([{"type": "function", "name": "book", "parameters": {"type": "object"}}])
    span = _span(
        "b" * 16,
        [
            _attr("gen_ai.operation.name", _s("chat")),
            _attr("gen_ai.provider.name", _s("openai")),
            _attr("gen_ai.request.model", _s("gpt-4.1")),
            _attr("gen_ai.response.model", _s("gpt-4.1-2025-04-14")),
            _attr("gen_ai.request.temperature", {"doubleValue": 0.2}),
            _attr("gen_ai.request.max_tokens", {"intValue": 300}),
            _attr("gen_ai.request.stop_sequences", _arr(_s("END"))),
            _attr("gen_ai.system_instructions", _s('[{"type":"text","content":"Be polite."}]')),
            _attr("gen_ai.tool.definitions", _s(tools)),
            _attr("gen_ai.input.messages", _arr(user)),
            _attr("gen_ai.output.messages", _arr(out)),
            _attr("gen_ai.usage.input_tokens", {"intValue": "1200"}),
            _attr("gen_ai.usage.output_tokens", {"intValue": 40}),
            _attr("gen_ai.usage.cache_read.input_tokens", {"intValue": "1024"}),
            _attr("gen_ai.usage.cache_creation.input_tokens", {"intValue": "0"}),
            _attr("gen_ai.usage.reasoning.output_tokens", {"intValue": "12"}),
            _attr("server.address", _s("api.openai.com")),
            _attr("custom.blob", {"bytesValue": "AAEC"}),
            _attr("custom.settings", _kv(region=_s("eu"), retries={"intValue": "3"})),
        ],
    )
    result = convert(_doc(span))
    (session,) = result.sessions
    (step,) = session.step_list
    assert isinstance(step, LLMCallStep)
    assert step.input.messages == [
        {"role": "system", "content": "Be polite."},
        {"role": "user", "content": "Book a table for two."},
    ]
    assert step.input.tools == [
        {"type": "function", "function": {"name": "book", "parameters": {"type": "object"}}}
    ]
    assert step.input.params == {"temperature": 0.2, "max_tokens": 300, "stop": ["END"]}
    assert step.output is not None and step.output.content is None
    assert step.output.tool_calls == [
        {"id": "c1", "name": "book", "arguments": {"people": 2, "terrace": True}}
    ]
    assert step.usage is not None
    assert step.usage.model_dump(exclude_none=True) == {
        "input_tokens": 1200,
        "output_tokens": 40,
        "cache_read_tokens": 1024,
        "cache_creation_tokens": 0,
        "reasoning_tokens": 12,
    }
    assert step.attributes == {
        "server.address": "api.openai.com",
        "custom.blob": "AAEC",
        "custom.settings": {"region": "eu", "retries": 3},
        "response_model": "gpt-4.1-2025-04-14",
    }
    assert session.metadata["imported"]["services"] == ["travel"]
    assert result.kept["custom.settings"] == 1 and result.mapped["gen_ai.tool.definitions"] == 1


def test_anthropic_calls_are_rebuilt_in_the_messages_api_form() -> None:
    user = _kv(role=_s("user"), parts=_arr(_kv(type=_s("text"), content=_s("Hi"))))
    asked = _kv(
        role=_s("assistant"),
        parts=_arr(
            _kv(type=_s("text"), content=_s("Checking.")),
            _kv(type=_s("tool_call"), id=_s("tu_1"), name=_s("clock"), arguments=_kv()),
        ),
    )
    answered = _kv(
        role=_s("tool"),
        parts=_arr(_kv(type=_s("tool_call_response"), id=_s("tu_1"), response=_s("noon"))),
    )
    span = _span(
        "c" * 16,
        [
            _attr("gen_ai.operation.name", _s("chat")),
            _attr("gen_ai.provider.name", _s("anthropic")),
            _attr("gen_ai.request.model", _s("claude-sonnet-4")),
            _attr("gen_ai.request.max_tokens", {"intValue": "256"}),
            _attr("gen_ai.system_instructions", _s("Be brief.")),
            _attr("gen_ai.input.messages", _arr(user, asked, answered)),
        ],
    )
    (step,) = only_session(_doc(span)).step_list
    assert isinstance(step, LLMCallStep)
    assert (step.provider, step.api) == ("anthropic", "anthropic.messages")
    assert step.input.messages == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hi"},
        {
            "role": "assistant",
            "content": [
                {"type": "text", "text": "Checking."},
                {"type": "tool_use", "id": "tu_1", "name": "clock", "input": {}},
            ],
        },
        {
            "role": "user",
            "content": [{"type": "tool_result", "tool_use_id": "tu_1", "content": "noon"}],
        },
    ]
    assert step.input.params == {"max_tokens": 256}


@pytest.mark.parametrize(
    ("provider", "spec", "native"),
    [
        ("openai", "tool_call", "tool_calls"),
        ("openai", "stop", "stop"),
        ("anthropic", "tool_call", "tool_use"),
        ("anthropic", "stop", "end_turn"),
        ("anthropic", "length", "max_tokens"),
        ("anthropic", "end_turn", "end_turn"),  # a native value stays
    ],
)
def test_finish_reasons_are_the_providers_own_words(provider: str, spec: str, native: str) -> None:
    """The conventions say `tool_call`/`stop`/`length`; the SDK an agent reads must get
    what the provider's API says (`tool_calls`, `tool_use`, `end_turn`, `max_tokens`)."""
    out = json.dumps(
        [{"role": "assistant", "parts": [{"type": "text", "content": "x"}], "finish_reason": spec}]
    )
    span = _span(
        "d" * 16,
        [
            _attr("gen_ai.operation.name", _s("chat")),
            _attr("gen_ai.provider.name", _s(provider)),
            _attr("gen_ai.request.model", _s("m")),
            _attr("gen_ai.output.messages", _s(out)),
        ],
    )
    (step,) = only_session(_doc(span)).step_list
    assert isinstance(step, LLMCallStep) and step.output is not None
    assert step.output.finish_reason == native


def _agent_span(span_id: str, trace: str, start: int, question: str, answer: str) -> dict[str, Any]:
    def message(role: str, text: str) -> str:
        return json.dumps([{"role": role, "parts": [{"type": "text", "content": text}]}])

    return _span(
        span_id,
        [
            _attr("gen_ai.operation.name", _s("invoke_agent")),
            _attr("gen_ai.agent.name", _s("concierge")),
            _attr("gen_ai.agent.version", _s("2.1")),
            _attr("gen_ai.conversation.id", _s("conv-7")),
            _attr("gen_ai.input.messages", _s(message("user", question))),
            _attr("gen_ai.output.messages", _s(message("assistant", answer))),
        ],
        trace=trace,
        start=start,
        name="invoke_agent concierge",
    )


def _chat(span_id: str, trace: str, parent: str, start: int, text: str) -> dict[str, Any]:
    output = json.dumps([{"role": "assistant", "parts": [{"type": "text", "content": text}]}])
    return _span(
        span_id,
        [
            _attr("gen_ai.operation.name", _s("chat")),
            _attr("gen_ai.provider.name", _s("openai")),
            _attr("gen_ai.request.model", _s("gpt-4o")),
            _attr("gen_ai.output.messages", _s(output)),
        ],
        trace=trace,
        parent=parent,
        start=start,
    )


def test_traces_of_one_conversation_make_one_golden_with_user_turns() -> None:
    t1, t2, t3 = "1" * 32, "2" * 32, "3" * 32
    start = 1_738_317_600_000_000_000
    data = [  # JSON Lines: one export request per line
        _doc(_agent_span("1" * 16, t1, start, "Table for two?", "Booked.")),
        _doc(_chat("a1" * 8, t1, "1" * 16, start + 10, "Booked.")),
        _doc(
            _agent_span("2" * 16, t2, start + 5_000_000_000, "Make it three.", "Changed."),
            _chat("a2" * 8, t2, "2" * 16, start + 5_000_000_010, "Changed."),
        ),
        _doc(_chat("a3" * 8, t3, "", start + 9_000_000_000, "Unrelated.")),
    ]
    result = convert(data)
    by_id = {s.session_id: s for s in result.sessions}
    assert set(by_id) == {"conv-7", t3}
    conversation = by_id["conv-7"]
    assert conversation.agent == "concierge"
    assert conversation.metadata["agent_version"] == "2.1"
    assert conversation.input == "Table for two?"
    assert [s.type for s in conversation.step_list] == ["llm_call", "user_input", "llm_call"]
    turn = conversation.step_list[1]
    assert isinstance(turn, UserInputStep) and turn.content == "Make it three."
    assert conversation.output == "Changed."
    assert sorted(conversation.metadata["imported"]["trace_ids"]) == [t1, t2]
    assert by_id[t3].output == "Unrelated." and by_id[t3].input is None
    assert not any("side by side" in w for w in result.warnings), "turns follow one another"


def test_agents_side_by_side_in_one_trace_are_warned_about() -> None:
    """QA (probe30 #3): two agents of one request (sibling invoke_agent spans that ran at
    the same time) became one golden, the second agent's input a user_input and its output
    the golden's, without a word."""
    trace, start = "4" * 32, 1_738_317_600_000_000_000
    planner = _agent_span("5" * 16, trace, start, "plan: refund ORD-7", "planned")
    researcher = _agent_span("6" * 16, trace, start + 100_000_000, "research ORD-7", "done")
    researcher["attributes"][1] = _attr("gen_ai.agent.name", _s("researcher"))
    data = _doc(
        planner,
        researcher,
        _chat("b1" * 8, trace, "5" * 16, start + 10, "planned"),
        _chat("b2" * 8, trace, "6" * 16, start + 100_000_010, "done"),
    )
    result = convert(data)
    assert any(
        "2 agents ran side by side (concierge, researcher): imported as one golden" in w
        for w in result.warnings
    ), result.warnings


def test_errors_from_status_and_exception_events() -> None:
    tool = _span(
        "d" * 16,
        [
            _attr("gen_ai.operation.name", _s("execute_tool")),
            _attr("gen_ai.tool.name", _s("charge")),
            _attr("gen_ai.tool.call.arguments", _s('{"amount": 12}')),
            _attr("error.type", _s("payments.Declined")),
        ],
        status={"code": "STATUS_CODE_ERROR", "message": "card declined"},
        events=[
            {
                "name": "exception",
                "timeUnixNano": "1738317600100000000",
                "attributes": [
                    _attr("exception.type", _s("payments.Declined")),
                    _attr("exception.message", _s("card 4242 declined")),
                ],
            }
        ],
        name="execute_tool charge",
    )
    chat = _span(
        "e" * 16,
        [
            _attr("gen_ai.operation.name", _s("chat")),
            _attr("gen_ai.system", _s("openai")),
            _attr("gen_ai.request.model", _s("gpt-4o")),
            _attr("error.type", _s("RateLimitError")),
        ],
        start=1_738_317_601_000_000_000,
        status={"code": 2, "message": "slow down"},
    )
    tool_step, chat_step = only_session(_doc(chat, tool)).step_list
    assert isinstance(tool_step, ToolCallStep) and tool_step.error is not None
    assert tool_step.error.model_dump(exclude_none=True) == {
        "type": "Declined",
        "message": "card 4242 declined",
        "module": "payments",
    }
    assert tool_step.input == {"amount": 12} and tool_step.output is None
    assert isinstance(chat_step, LLMCallStep) and chat_step.error is not None
    assert (chat_step.error.type, chat_step.error.message) == ("RateLimitError", "slow down")
    assert (chat_step.attributes or {})["http_status"] == 429


def test_spans_that_are_not_calls_are_skipped_and_counted() -> None:
    spans = [
        _span("1" * 16, [_attr("gen_ai.operation.name", _s("embeddings"))]),
        _span("2" * 16, [_attr("gen_ai.operation.name", _s("create_agent"))]),
        _span("3" * 16, [_attr("http.request.method", _s("POST"))], name="POST"),
    ]
    result = convert(_doc(*spans))
    assert result.skipped == {
        "embeddings span (not replayed)": 1,
        "create_agent span (not replayed)": 1,
        "span without gen_ai.operation.name": 1,
    }
    assert result.sessions == []  # nothing to replay: no golden, an error
    assert "no model or tool calls" in result.errors[0]


@pytest.mark.parametrize(
    ("document", "where"),
    [
        ("[1, 2]", r"\[0\]: expected an object"),
        ('{"resourceSpans": {}}', r"resourceSpans: expected a list"),
        ('{"spans": []}', "no resourceSpans or resourceLogs"),
        ('{"resourceSpans": []}', "no traces in it"),
        (
            json.dumps(_doc(_span("b" * 16, [_attr("k", {"intValue": "12x"})]))),
            r"resourceSpans\[0\]\.scopeSpans\[0\]\.spans\[0\]\.attributes\[0\]\.value: "
            "intValue '12x' is not a valid int",
        ),
        (
            json.dumps(_doc(_span("b" * 16, [_attr("k", {"mapValue": {}})]))),
            r"attributes\[0\]\.value: unknown AnyValue \['mapValue'\]",
        ),
        (
            json.dumps(_doc(_span("xyz", []))),
            r"spans\[0\]\.spanId: 'xyz' is not a 8-byte id",
        ),
        (
            json.dumps(_doc(_span("b" * 16, [], start="soon"))),
            r"spans\[0\]\.startTimeUnixNano: expected nanoseconds",
        ),
        (
            json.dumps(_doc(_span("b" * 16, [], kind=9))),
            r"spans\[0\]\.kind: unknown value 9",
        ),
        ('{"resourceSpans": [1]}\n{"resourceSpans": []}', r"document 1: resourceSpans\[0\]: "),
    ],
)
def test_malformed_input_names_the_file_and_where(
    tmp_path: Path, document: str, where: str
) -> None:
    path = tmp_path / "trace.json"
    path.write_text(document)
    with pytest.raises(ImportFormatError, match=f"^{path}: .*{where}"):
        import_file("otel", path)


# -- the engine: fields absent from a golden step are not compared --------------------------


def _tape(step: dict[str, Any]) -> Tape:
    golden = Session.model_validate(
        {"name": "g", "input": None, "steps": [{"step": 1, "type": "llm_call", **step}]}
    )
    return Tape(golden, rules=RequestRules(), tools=ToolCallsExpect())


def _request(**input_: Any) -> dict[str, Any]:
    return {
        "provider": "openai",
        "api": "openai.chat_completions",
        "model": "gpt-4o",
        "input": {"messages": None, "tools": None, "params": None, **input_},
    }


HEAD = {"provider": "openai", "api": "openai.chat_completions", "model": "gpt-4o"}
SENT = [{"role": "user", "content": "hi"}]
TOOLS = [{"type": "function", "function": {"name": "f"}}]


def test_engine_does_not_compare_request_fields_the_golden_step_lacks() -> None:
    request = _request(messages=SENT, tools=TOOLS, params={"temperature": 1})
    assert _tape(HEAD).next_call("llm_call", request, 1).finding is None
    assert _tape({}).next_call("llm_call", request, 1).finding is None


def test_engine_still_compares_the_fields_the_golden_step_has() -> None:
    step = {**HEAD, "input": {"messages": SENT, "tools": TOOLS}}
    changed = _request(messages=[{"role": "user", "content": "hello"}], tools=TOOLS)
    finding = _tape(step).next_call("llm_call", changed, 1).finding
    assert finding is not None and finding.step == 1
    assert [d.where for d in finding.differences] == ["step 1 › input.messages[0].content"]
    fewer_tools = _request(messages=SENT, tools=None)
    assert _tape(step).next_call("llm_call", fewer_tools, 1).finding is not None
    noise_only = {**HEAD, "input": {"messages": SENT, "params": {"stream_options": {}}}}
    added = _request(messages=SENT, params={"stream_options": {}, "temperature": 1})
    assert _tape(noise_only).next_call("llm_call", added, 1).finding is not None


def test_engine_reads_null_and_missing_message_keys_alike() -> None:
    recorded = [
        {"role": "assistant", "content": None, "tool_calls": [{"id": "a", "type": "function"}]}
    ]
    sent = [{"role": "assistant", "refusal": None, "tool_calls": [{"id": "b", "type": "function"}]}]
    step = {**HEAD, "input": {"messages": recorded}}
    assert _tape(step).next_call("llm_call", _request(messages=sent), 1).finding is None


def test_a_golden_recorded_by_opswald_compares_absent_fields() -> None:
    """A recorded request without tools had no tools: an agent that now sends tools
    changed, unless the golden was imported (where absence means "not captured")."""
    request = _request(messages=SENT, tools=TOOLS)
    step = {**HEAD, "input": {"messages": SENT}}
    for metadata, lenient in [
        ({"recorded_with": "pytest-opswald 0.1.0"}, False),
        ({"recorded_with": "opswald.record"}, False),
        ({"recorded_with": "pytest-opswald 0.1.0", "imported": {"format": "otel"}}, True),
        ({"recorded_with": "pytest-opswald 0.1.0", "imported": {"format": "langsmith"}}, True),
        ({}, True),  # written by hand
    ]:
        golden = Session.model_validate(
            {
                "name": "g",
                "input": None,
                "metadata": metadata,
                "steps": [{"step": 1, "type": "llm_call", **step}],
            }
        )
        tape = Tape(golden, rules=RequestRules(), tools=ToolCallsExpect())
        finding = tape.next_call("llm_call", request, 1).finding
        assert (finding is None) is lenient, metadata
        if finding is not None:
            assert [d.where for d in finding.differences] == ["step 1 › input.tools"]
