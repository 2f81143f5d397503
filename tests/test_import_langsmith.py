"""LangSmith run exports -> goldens, on runs made by the real SDKs.

The traces come from real producers: LangChain's `LangChainTracer` around a `ChatOpenAI`
tool-calling agent, and `langsmith.traceable` + `langsmith.wrappers.wrap_openai` around the
`openai` SDK, both talking to the fake provider on 127.0.0.1 and reporting to a small
LangSmith stand-in on 127.0.0.1 (the SDK's own `Client`, posting JSON). The export is built
the way `Client.read_run(..., load_child_runs=True)` returns it: `langsmith.schemas.Run`
objects, serialised with pydantic's `model_dump(mode="json")`.
"""

from __future__ import annotations

import copy
import json
import random
import socket
import threading
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import SecretStr

from fakeprovider import FakeProvider
from opswald.engine.normalize import RequestRules, normalize_request, request_of
from opswald.files import dump, dumps, load
from opswald.importers import ImportFormatError, convert, import_file
from opswald.intercept.codecs.openai_chat import OpenAIChatCodec
from opswald.session import ErrorInfo, LLMCallStep, Session, ToolCallStep, Usage
from strategies import jsonish

SCRIPT: list[dict[str, Any]] = [
    {
        "content": None,
        "tool_calls": [{"name": "get_weather", "arguments": {"city": "Rome"}}],
        "usage": {"input_tokens": 50, "output_tokens": 12, "cached_tokens": 10},
    },
    {
        "content": "It is 21°C in Rome.",
        "tool_calls": None,
        "usage": {"input_tokens": 80, "output_tokens": 9},
    },
]
QUESTION = "Weather in Rome?"


# -- a LangSmith stand-in: the SDK's Client posts runs here ----------------------------------


class _Handler(BaseHTTPRequestHandler):
    server: _LangSmithServer

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _body(self) -> Any:
        size = int(self.headers.get("content-length") or 0)
        raw = self.rfile.read(size)
        return json.loads(raw) if raw else None

    def _ok(self) -> None:
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def do_GET(self) -> None:
        self._ok()

    def do_POST(self) -> None:
        body = self._body()
        if self.path.rstrip("/").endswith("/runs") and isinstance(body, dict):
            self.server.store(str(body["id"]), body)
        self._ok()

    def do_PATCH(self) -> None:
        body = self._body()
        if isinstance(body, dict):
            self.server.store(self.path.rstrip("/").rsplit("/", 1)[-1], body)
        self._ok()


class _LangSmithServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.runs: dict[str, dict[str, Any]] = {}
        self.lock = threading.Lock()

    def store(self, run_id: str, fields: dict[str, Any]) -> None:
        """A run as the server keeps it: the POST, then each PATCH merged in."""
        with self.lock:
            self.runs.setdefault(run_id, {}).update(fields)


@dataclass
class Traced:
    """What a traced agent run left behind: the runs LangSmith stored, the wire requests."""

    runs: dict[str, dict[str, Any]]
    requests: list[Any]
    answer: Any


def _trace(agent: Callable[[str, Any], Any]) -> Traced:
    """Run `agent(base_url, client)` against the fake provider, traced into the stand-in."""
    from langsmith import Client

    server = _LangSmithServer()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        client = Client(
            api_url=f"http://127.0.0.1:{server.server_address[1]}",
            api_key="lsv2_pt_test",
            auto_batch_tracing=False,
        )
        with FakeProvider(script=copy.deepcopy(SCRIPT)) as fp:
            answer = agent(fp.base_url + "/v1", client)
            client.flush()
            requests = [r.body for r in fp.requests if r.method == "POST"]
    finally:
        server.shutdown()
        server.server_close()
    return Traced(runs=copy.deepcopy(server.runs), requests=requests, answer=answer)


def _langchain_agent(base_url: str, client: Any) -> Any:
    """A LangChain tool-calling loop, traced by LangChain's own tracer."""
    from langchain_core.messages import HumanMessage, SystemMessage
    from langchain_core.runnables import RunnableLambda
    from langchain_core.tools import tool
    from langchain_core.tracers.langchain import LangChainTracer
    from langchain_openai import ChatOpenAI

    @tool
    def get_weather(city: str) -> dict[str, Any]:
        """weather in a city"""
        return {"city": city, "temp_c": 21}

    http = httpx.Client()  # closed below: LangChain's shared default client is never closed
    llm = ChatOpenAI(
        model="gpt-4o-mini",
        base_url=base_url,
        api_key=SecretStr("sk-test"),
        temperature=0,
        http_client=http,
    )
    bound = llm.bind_tools([get_weather])

    def agent(inputs: dict[str, Any]) -> dict[str, Any]:
        messages: list[Any] = [SystemMessage("be brief"), HumanMessage(inputs["question"])]
        for _ in range(3):
            reply = bound.invoke(messages)
            messages.append(reply)
            if not reply.tool_calls:
                return {"answer": reply.content}
            for call in reply.tool_calls:
                messages.append(get_weather.invoke(call))
        raise RuntimeError("too many turns")

    tracer = LangChainTracer(client=client, project_name="imports")
    runnable = RunnableLambda(agent).with_config(run_name="weather_agent", tags=["smoke", "a b"])
    with http:
        answer = runnable.invoke({"question": QUESTION}, config={"callbacks": [tracer]})
    tracer.wait_for_futures()
    return answer


TOOLS: list[Any] = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
        },
    }
]


def _traceable_agent(base_url: str, client: Any) -> Any:
    """`@traceable` functions and `wrap_openai` around the openai SDK (no LangChain)."""
    import openai
    from langsmith import traceable, tracing_context

    with warnings.catch_warnings():  # langsmith.wrappers imports its own deprecated module
        warnings.filterwarnings(
            "ignore", "langsmith.wrappers._openai_agents is deprecated", DeprecationWarning
        )
        from langsmith.wrappers import wrap_openai

    @traceable(run_type="tool", name="get_weather")
    def get_weather(city: str) -> dict[str, Any]:
        if city == "Atlantis":
            raise ValueError("no such city: Atlantis")
        return {"city": city, "temp_c": 21}

    @traceable(name="weather_agent", tags=["smoke"])
    def agent(question: str) -> Any:
        with openai.OpenAI(base_url=base_url, api_key="sk-test", max_retries=0) as raw:
            llm = wrap_openai(raw)
            messages: list[Any] = [{"role": "user", "content": question}]
            for _ in range(3):
                reply = llm.chat.completions.create(
                    model="gpt-4o-mini", messages=messages, tools=TOOLS, temperature=0
                )
                message = reply.choices[0].message
                if not message.tool_calls:
                    try:
                        get_weather("Atlantis")
                    except ValueError:
                        pass
                    return message.content
                messages.append(message.model_dump(exclude_none=True))
                for call in message.tool_calls:
                    assert call.type == "function"
                    result = get_weather(**json.loads(call.function.arguments))
                    messages.append(
                        {"role": "tool", "tool_call_id": call.id, "content": json.dumps(result)}
                    )
        raise RuntimeError("too many turns")

    with tracing_context(enabled=True, client=client, project_name="imports"):
        return agent(QUESTION)


@pytest.fixture(scope="module")
def langchain_trace() -> Traced:
    return _trace(_langchain_agent)


@pytest.fixture(scope="module")
def traceable_trace() -> Traced:
    return _trace(_traceable_agent)


# -- the export, as the SDK's schema classes serialise it ------------------------------------


def _server_fields(runs: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Add what the LangSmith server computes for llm runs: costs (Decimals) and the token
    counts it stores on the run. The first llm run gets a total cost, the second only the
    prompt and completion parts."""
    out = copy.deepcopy(runs)
    llm = sorted((r for r in out.values() if r["run_type"] == "llm"), key=lambda r: r["start_time"])
    llm[0].update(
        total_cost=Decimal("0.0000975"),
        prompt_cost=Decimal("0.0000075"),
        completion_cost=Decimal("0.00009"),
        prompt_tokens=50,
        completion_tokens=12,
        total_tokens=62,
        prompt_token_details={"cache_read": 10},
    )
    llm[1].update(prompt_cost=Decimal("0.000012"), completion_cost=Decimal("0.0000054"))
    return out


def _run_objects(runs: dict[str, dict[str, Any]]) -> list[Any]:
    from langsmith.schemas import Run

    return [Run(**fields) for fields in runs.values()]


def nested_export(runs: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The root `Run` with `child_runs` filled in, as `read_run(load_child_runs=True)`."""
    from langsmith.schemas import Run

    objects = _run_objects(runs)
    children: dict[Any, list[Any]] = {}
    for run in objects:
        children.setdefault(run.parent_run_id, []).append(run)

    def build(run: Any) -> Any:
        kids = sorted(children.get(run.id, []), key=lambda r: r.dotted_order)
        return run.model_copy(update={"child_runs": [build(k) for k in kids] or None})

    (root,) = children[None]
    tree = build(root)
    assert isinstance(tree, Run)
    data: dict[str, Any] = tree.model_dump(mode="json")
    return data


def flat_export(runs: dict[str, dict[str, Any]], seed: int = 7) -> list[dict[str, Any]]:
    """Every run on its own (`list_runs(trace_id=...)`), in no particular order."""
    data = [run.model_dump(mode="json") for run in _run_objects(runs)]
    random.Random(seed).shuffle(data)
    return data


def _requests_equal(step: LLMCallStep, body: Any) -> None:
    """The imported request is what interception records for the request that was sent."""
    rules = RequestRules()
    sent = normalize_request(OpenAIChatCodec().request(body), rules)
    assert normalize_request(request_of(step), rules) == sent


def _only(result: Any) -> Session:
    assert len(result.sessions) == 1, result.sessions
    session = result.sessions[0]
    assert isinstance(session, Session)
    return session


# -- LangChain runs --------------------------------------------------------------------------


def test_langchain_runs_map_field_by_field(langchain_trace: Traced) -> None:
    runs = _server_fields(langchain_trace.runs)
    result = convert("langsmith", nested_export(runs))
    session = _only(result)
    root = next(r for r in runs.values() if r.get("parent_run_id") is None)

    assert session.name == "weather_agent"
    assert session.session_id == str(root["trace_id"]) == str(root["id"])
    assert session.tags == ["smoke"], "'a b' is no pytest marker name"
    assert result.skipped["tag that is not a valid pytest marker name"] == 1
    assert any("'a b'" in w for w in result.warnings)
    assert session.input == {"question": QUESTION}
    assert session.output == {"answer": "It is 21°C in Rome."} == langchain_trace.answer
    assert session.error is None
    assert session.agent is None
    assert session.metadata["imported"] == {"format": "langsmith"}
    assert session.metadata["trace_id"] == str(root["id"])
    assert session.metadata["duration_ms"] > 0

    first, tool, last = session.step_list
    assert isinstance(first, LLMCallStep) and isinstance(last, LLMCallStep)
    assert isinstance(tool, ToolCallStep)
    assert [s.step for s in session.step_list] == [1, 2, 3]

    # the first call, field by field
    assert (first.provider, first.api, first.model) == (
        "openai",
        "openai.chat_completions",
        "gpt-4o-mini",
    )
    assert first.input.messages == [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": QUESTION},
    ]
    assert first.input.tools == [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": "weather in a city",
                "parameters": {
                    "properties": {"city": {"type": "string"}},
                    "required": ["city"],
                    "type": "object",
                },
            },
        }
    ]
    assert first.input.params == {"temperature": 0.0}
    assert first.output is not None
    assert first.output.content is None
    assert first.output.tool_calls == [
        {"id": "call_1", "name": "get_weather", "arguments": {"city": "Rome"}}
    ]
    assert first.output.finish_reason == "tool_calls"
    assert first.usage == Usage(
        input_tokens=50,
        output_tokens=12,
        total_tokens=62,
        cache_read_tokens=10,
        reasoning_tokens=0,
    )
    assert first.cost == pytest.approx(0.0000975)
    assert first.cost_source == "langsmith"
    assert first.duration_ms is not None and first.duration_ms > 0
    assert first.timestamp is not None and first.timestamp.endswith("Z")
    assert first.error is None
    attrs = first.attributes or {}
    assert attrs["langsmith.run_name"] == "ChatOpenAI"
    assert attrs["langsmith.metadata"]["lc_versions"]["langchain-openai"]
    assert attrs["langsmith.response_metadata"]["id"] == "chatcmpl-1"
    assert "langsmith.serialized" not in attrs, "constructor arguments are not imported"

    # the tool run
    assert tool.tool == "get_weather"
    assert tool.call_id == "call_1"
    assert tool.input == {"city": "Rome"}
    assert tool.output == json.dumps({"city": "Rome", "temp_c": 21}), "the ToolMessage content"
    assert tool.error is None

    # the second call carries the whole conversation
    assert last.input.messages == [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": QUESTION},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "type": "function",
                    "id": "call_1",
                    "function": {"name": "get_weather", "arguments": {"city": "Rome"}},
                }
            ],
        },
        {"role": "tool", "content": '{"city": "Rome", "temp_c": 21}', "tool_call_id": "call_1"},
    ]
    assert last.output is not None and last.output.content == "It is 21°C in Rome."
    assert last.output.finish_reason == "stop" and last.output.tool_calls is None
    assert last.usage is not None and last.usage.input_tokens == 80
    assert last.cost == pytest.approx(0.000012 + 0.0000054), "prompt + completion cost"

    # and both are exactly what interception records for the requests that were sent
    assert len(langchain_trace.requests) == 2
    _requests_equal(first, langchain_trace.requests[0])
    _requests_equal(last, langchain_trace.requests[1])

    # the account of what happened to the fields
    assert result.mapped["inputs.messages"] == 2
    assert result.mapped["outputs.generations"] == 2
    assert result.mapped["extra.invocation_params"] == 2
    assert result.mapped["extra.tool_call_id"] == 1
    assert result.mapped["root.outputs"] == 1
    assert result.kept["extra.metadata.lc_versions"] == 2
    assert result.skipped["serialized (constructor arguments of the traced object)"] == 2
    assert result.skipped["request._type (not a request parameter)"] == 2
    assert result.skipped["run token counts (said again by another usage field)"] == 1


def test_a_flat_list_of_runs_gives_the_same_session(langchain_trace: Traced) -> None:
    runs = _server_fields(langchain_trace.runs)
    nested = _only(convert("langsmith", nested_export(runs)))
    flat = _only(convert("langsmith", flat_export(runs)))
    assert flat == nested
    paged = _only(convert("langsmith", {"runs": flat_export(runs, seed=3)}))
    assert paged == nested


def test_the_export_file_is_read_as_json_and_as_json_lines(
    langchain_trace: Traced, tmp_path: Any
) -> None:
    runs = _server_fields(langchain_trace.runs)
    expected = _only(convert("langsmith", nested_export(runs)))
    as_json = tmp_path / "trace.json"
    as_json.write_text(json.dumps(nested_export(runs)))
    assert _only(import_file("langsmith", as_json)) == expected
    as_lines = tmp_path / "runs.jsonl"
    as_lines.write_text("\n".join(json.dumps(r) for r in flat_export(runs)) + "\n")
    assert _only(import_file("langsmith", as_lines)) == expected


# -- traceable + wrap_openai runs ------------------------------------------------------------


def test_traceable_and_wrap_openai_runs(traceable_trace: Traced) -> None:
    result = convert("langsmith", flat_export(traceable_trace.runs))
    session = _only(result)
    assert session.name == "weather_agent"
    assert session.tags == ["smoke"]
    assert session.input == {"question": QUESTION}
    assert session.output == "It is 21°C in Rome." == traceable_trace.answer, "unwrapped"
    assert [s.type for s in session.step_list] == ["llm_call", "tool_call", "llm_call", "tool_call"]
    first, tool, last, failed = session.step_list
    assert isinstance(first, LLMCallStep) and isinstance(last, LLMCallStep)
    assert isinstance(tool, ToolCallStep) and isinstance(failed, ToolCallStep)

    assert (first.provider, first.api, first.model) == (
        "openai",
        "openai.chat_completions",
        "gpt-4o-mini",
    )
    assert first.input.messages == [{"role": "user", "content": QUESTION}]
    assert first.input.tools == TOOLS
    assert first.input.params == {"temperature": 0}
    assert first.output is not None and first.output.tool_calls == [
        {"id": "call_1", "name": "get_weather", "arguments": {"city": "Rome"}}
    ]
    assert first.usage == Usage(
        input_tokens=50,
        output_tokens=12,
        total_tokens=62,
        cache_read_tokens=10,
        reasoning_tokens=0,
    )
    assert first.cost is None and first.cost_source is None, "no cost in this export"
    assert last.input.messages is not None and last.input.messages[1] == {
        "role": "assistant",
        "tool_calls": [
            {
                "id": "call_1",
                "function": {"arguments": {"city": "Rome"}, "name": "get_weather"},
                "type": "function",
            }
        ],
    }
    assert last.output is not None and last.output.content == "It is 21°C in Rome."
    _requests_equal(first, traceable_trace.requests[0])
    _requests_equal(last, traceable_trace.requests[1])

    assert (tool.tool, tool.input, tool.output) == (
        "get_weather",
        {"city": "Rome"},
        {"city": "Rome", "temp_c": 21},
    )
    assert tool.call_id is None, "a traceable tool run records no call id"
    assert failed.input == {"city": "Atlantis"}
    assert failed.output is None
    assert failed.error == ErrorInfo(type="ValueError", message="no such city: Atlantis")
    assert result.mapped["outputs.choices"] == 2
    assert result.mapped["outputs.usage_metadata"] == 2
    assert result.skipped["extra.metadata.usage_metadata (said again by another usage field)"] == 2


# -- runs built directly with the schema classes ---------------------------------------------


def _run(**fields: Any) -> Any:
    from langsmith.schemas import Run

    fields.setdefault("start_time", "2026-01-02T03:04:05.000001+00:00")
    return Run(**fields)


def _lc(kind: str, **kwargs: Any) -> dict[str, Any]:
    return {
        "lc": 1,
        "type": "constructor",
        "id": ["langchain", "schema", "messages", kind],
        "kwargs": kwargs,
    }


def test_chains_are_walked_and_inner_calls_are_not_steps() -> None:
    """A chain with a prompt, a retriever, an llm in `{"type", "data"}` message form, a tool
    that calls a model itself, a failed llm call and a failed root."""
    import uuid

    trace = uuid.uuid4()
    ids = {name: uuid.uuid4() for name in ("seq", "prompt", "retr", "llm", "tool", "inner", "bad")}

    def child(name: str, parent: str, run_type: str, second: int, **fields: Any) -> Any:
        return _run(
            id=ids[name],
            trace_id=trace,
            parent_run_id=ids[parent] if parent != "root" else trace,
            name=fields.pop("label", name),
            run_type=run_type,
            start_time=f"2026-01-02T03:04:{second:02d}+00:00",
            end_time=f"2026-01-02T03:04:{second:02d}.500000+00:00",
            **fields,
        )

    llm = child(
        "llm",
        "seq",
        "llm",
        12,
        label="ChatAnthropic",
        inputs={
            "messages": [
                [
                    {"type": "system", "data": {"content": "answer in French", "type": "system"}},
                    {"type": "human", "data": {"content": "Hi", "type": "human", "name": "ann"}},
                ]
            ]
        },
        outputs={
            "generations": [
                [
                    {
                        "text": "Salut",
                        "type": "ChatGeneration",
                        "generation_info": {"stop_reason": "end_turn"},
                        "message": _lc(
                            "AIMessage",
                            content=[{"type": "text", "text": "Salut"}],
                            response_metadata={"stop_reason": "end_turn", "model": "claude-x"},
                        ),
                    }
                ]
            ]
        },
        extra={
            "invocation_params": {"model": "claude-3-5-haiku-latest", "max_tokens": 64},
            "metadata": {"ls_provider": "anthropic", "ls_model_name": "claude-3-5-haiku-latest"},
        },
        prompt_tokens=20,
        completion_tokens=3,
        total_tokens=23,
        prompt_token_details={"cache_read": 4, "cache_creation": 6},
        completion_token_details={"reasoning": 1},
        total_cost=Decimal("0.0001"),
        tags=["smoke", "inner"],
    )
    runs = [
        child("seq", "root", "chain", 10, label="RunnableSequence"),
        child("prompt", "seq", "prompt", 11, label="ChatPromptTemplate"),
        child("retr", "seq", "retriever", 11, label="Docs", outputs={"documents": []}),
        llm,
        child(
            "tool",
            "root",
            "tool",
            20,
            label="summarise",
            inputs={"input": "long text"},
            outputs={"output": _lc("ToolMessage", content="short", tool_call_id="t1")},
        ),
        child("inner", "tool", "llm", 21, label="ChatOpenAI", inputs={"messages": [[]]}),
        child(
            "bad",
            "root",
            "llm",
            30,
            label="ChatOpenAI",
            inputs={"messages": [[_lc("HumanMessage", content="again")]]},
            error="openai.RateLimitError('Error code: 429')Traceback (most recent call last):\n"
            '  File "x.py", line 1, in f\n    raise e\n'
            "openai.RateLimitError: Error code: 429\n",
            extra={"metadata": {"ls_provider": "openai"}},
        ),
    ]
    root = _run(
        id=trace,
        trace_id=trace,
        name="pipeline",
        run_type="chain",
        inputs={"input": "Hi"},
        error="ValueError('gave up')",
        tags=["smoke"],
        end_time="2026-01-02T03:04:40+00:00",
        start_time="2026-01-02T03:04:09+00:00",
    )
    data = [r.model_dump(mode="json") for r in [*runs, root]]
    result = convert("langsmith", data)
    session = _only(result)

    assert session.name == "pipeline"
    assert session.input == "Hi", "{'input': x} is how the SDK wraps a plain input"
    assert session.output is None
    assert session.error == ErrorInfo(type="ValueError", message="gave up")
    assert session.metadata["duration_ms"] == 31000.0
    assert [
        (s.type, getattr(s, "tool", None) or getattr(s, "model", None)) for s in session.step_list
    ] == [
        ("llm_call", "claude-3-5-haiku-latest"),
        ("tool_call", "summarise"),
        ("llm_call", None),
    ]
    first, tool, bad = session.step_list
    assert isinstance(first, LLMCallStep) and isinstance(tool, ToolCallStep)
    assert isinstance(bad, LLMCallStep)

    assert first.input.messages == [
        {"role": "system", "content": "answer in French"},
        {"role": "user", "content": "Hi", "name": "ann"},
    ]
    assert first.input.params == {"max_tokens": 64}
    assert (first.provider, first.api) == ("anthropic", None)
    assert any("provider 'anthropic'" in w for w in result.warnings)
    assert first.output is not None
    assert (first.output.content, first.output.finish_reason) == ("Salut", "end_turn")
    assert first.usage == Usage(
        input_tokens=20,
        output_tokens=3,
        total_tokens=23,
        cache_read_tokens=4,
        cache_creation_tokens=6,
        reasoning_tokens=1,
    ), "from the token counts stored on the run"
    assert first.cost == pytest.approx(0.0001)
    assert (first.attributes or {})["langsmith.tags"] == ["smoke", "inner"]

    assert tool.input == {"input": "long text"}, "tool inputs are the arguments, not unwrapped"
    assert tool.output == "short"
    assert tool.call_id is None

    assert bad.error == ErrorInfo(type="RateLimitError", message="Error code: 429", module="openai")
    assert bad.output is None and bad.usage is None
    # replayed as the HTTP error it was, as an OTel import's is (QA probe30 #1: it replayed
    # as an empty answer, and the agent's own handling of the error never ran)
    assert (bad.attributes or {})["http_status"] == 429
    assert bad.raw == {
        "error": {"message": "Error code: 429", "type": None, "param": None, "code": None}
    }
    assert bad.input.messages == [{"role": "user", "content": "again"}]
    assert (bad.provider, bad.api) == ("openai", "openai.chat_completions")

    skipped = result.skipped
    assert skipped["chain run 'RunnableSequence' (not a call step; its children are walked)"] == 1
    assert (
        skipped["prompt run 'ChatPromptTemplate' (not a call step; its children are walked)"] == 1
    )
    assert skipped["retriever run 'Docs' (not a call step; its children are walked)"] == 1
    assert skipped["run inside a tool run (the outer call is the step)"] == 1
    assert result.mapped["run token counts"] == 1


def test_runs_without_their_root_are_one_session_per_trace() -> None:
    import uuid

    trace, parent = uuid.uuid4(), uuid.uuid4()
    runs = [
        _run(
            id=uuid.uuid4(),
            trace_id=trace,
            parent_run_id=parent,
            name=f"t{i}",
            run_type="tool",
            inputs={"n": i},
            outputs={"output": i * 2},
            start_time=f"2026-01-02T03:04:0{i}+00:00",
        ).model_dump(mode="json")
        for i in (2, 1)
    ]
    result = convert("langsmith", runs)
    session = _only(result)
    assert [(s.tool, s.output) for s in session.step_list if isinstance(s, ToolCallStep)] == [
        ("t1", 2),
        ("t2", 4),
    ], "ordered by start time"
    assert session.session_id == str(trace)
    assert session.input is None and session.output is None
    assert any("is not in the export" in w for w in result.warnings)


def test_a_parent_cycle_is_reported_not_looped() -> None:
    runs = [
        {"id": "a", "parent_run_id": "b", "run_type": "tool", "name": "x"},
        {"id": "b", "parent_run_id": "a", "run_type": "chain", "name": "y"},
    ]
    result = convert("langsmith", runs)
    assert result.sessions == []
    assert result.skipped["run in a parent_run_id cycle (no root)"] == 2
    assert "cycle" in result.errors[0]  # runs were lost: `opswald import` exits 1


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ("a run", "a JSON str"),
        ({"name": "x"}, "an object without run_type (keys: name)"),
        ([{"run_type": "chain"}, 3], "[1]: a LangSmith run must be an object, not a int"),
        ([{"name": "x", "run_type": 2}], "[0]: not a LangSmith run (no run_type string)"),
        (
            {"run_type": "chain", "child_runs": [{"run_type": "llm", "inputs": "hi"}]},
            "run.child_runs[0].inputs: expected an object, not a str",
        ),
        ({"run_type": "chain", "child_runs": {"a": 1}}, "run.child_runs: expected a list"),
        ({"runs": [{"run_type": "chain"}, {"id": 1}]}, "runs[1]: not a LangSmith run"),
    ],
)
def test_malformed_exports_say_where(data: Any, message: str) -> None:
    with pytest.raises(ImportFormatError) as info:
        convert("langsmith", data)
    assert message in str(info.value)


def test_a_file_that_is_not_json_names_the_file(tmp_path: Any) -> None:
    path = tmp_path / "broken.json"
    path.write_text('{"run_type": "chain",')
    with pytest.raises(ImportFormatError, match=r"broken\.json:1:\d+: not JSON"):
        import_file("langsmith", path)


# -- end to end: the imported golden replays against the same calls --------------------------

AGENT = '''
"""Makes the calls the traced LangChain agent made, with the openai SDK itself."""
import json
import os

import openai

import opswald


@opswald.tool
def get_weather(city):
    raise AssertionError("replay serves the recorded result; the tool never runs")


TOOLS = [{"type": "function", "function": {
    "name": "get_weather", "description": "weather in a city",
    "parameters": {"properties": {"city": {"type": "string"}}, "required": ["city"],
                   "type": "object"}}}]


def run(input):
    messages = [{"role": "system", "content": "be brief"},
                {"role": "user", "content": input["question"]}]
    with openai.OpenAI(max_retries=0) as client:
        for _ in range(3):
            reply = client.chat.completions.create(
                model="gpt-4o-mini", messages=messages, tools=TOOLS, temperature=0.0)
            message = reply.choices[0].message
            if not message.tool_calls:
                return {"answer": message.content}
            messages.append({"role": "assistant", "content": None, "tool_calls": [
                {"type": "function", "id": t.id,
                 "function": {"name": t.function.name, "arguments": t.function.arguments}}
                for t in message.tool_calls]})
            for t in message.tool_calls:
                args = json.loads(t.function.arguments)
                args["city"] = os.environ.get("CITY", args["city"])
                messages.append({"role": "tool", "tool_call_id": t.id,
                                 "content": get_weather(**args)})
    raise RuntimeError("too many turns")
'''


@pytest.fixture
def closed_port() -> Iterator[int]:
    with socket.socket() as probe:  # a loopback port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    yield port


def test_the_imported_golden_replays_against_the_same_openai_calls(
    langchain_trace: Traced,
    pytester: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    closed_port: int,
) -> None:
    for var in ("CI", "CITY", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    monkeypatch.setenv("OPENAI_BASE_URL", f"http://127.0.0.1:{closed_port}/v1")
    session = _only(convert("langsmith", nested_export(_server_fields(langchain_trace.runs))))
    pytester.makepyfile(lsagent=AGENT, conftest="import lsagent\n")
    pytester.makeini("[pytest]\nopswald_adapter = lsagent:run\n")
    goldens = pytester.mkdir("goldens")
    dump(session, goldens / "weather.golden.yaml")
    assert load(goldens / "weather.golden.yaml") == session

    result = pytester.runpytest("--opswald-goldens", "-m", "smoke")
    result.assert_outcomes(passed=1)

    monkeypatch.setenv("CITY", "Paris")
    result = pytester.runpytest("--opswald-goldens")
    result.assert_outcomes(failed=1)
    out = result.stdout.str()
    assert "step 2 of 3 · tool_call get_weather: called get_weather with other arguments" in out
    assert "step 2 › input.city: 'Rome' → 'Paris'" in out


# -- malformed runs never escape as anything but ImportFormatError ---------------------------

_RUN_KEYS = [
    "id",
    "name",
    "run_type",
    "parent_run_id",
    "trace_id",
    "dotted_order",
    "start_time",
    "end_time",
    "inputs",
    "outputs",
    "error",
    "extra",
    "tags",
    "child_runs",
    "messages",
    "generations",
    "message",
    "kwargs",
    "lc",
    "type",
    "data",
    "content",
    "tool_calls",
    "args",
    "function",
    "arguments",
    "invocation_params",
    "metadata",
    "usage_metadata",
    "input_token_details",
    "input_tokens",
    "total_cost",
    "prompt_cost",
    "completion_cost",
    "tools",
    "model",
    "choices",
    "runs",
    "output",
    "role",
]
_SCALARS, _JSONISH = jsonish(
    _RUN_KEYS,
    ["llm", "tool", "chain", "human", "ai", "constructor", "AIMessage", "2026-01-02T03:04:05Z"],
)


_MESSAGE = st.one_of(
    st.fixed_dictionaries(
        {"lc": st.just(1), "type": st.just("constructor")},
        optional={
            "id": st.lists(st.sampled_from(["AIMessage", "HumanMessage", "ToolMessage"])),
            "kwargs": _JSONISH,
        },
    ),
    st.fixed_dictionaries(
        {"role": st.sampled_from(["user", "assistant", "tool", 3])},
        optional={"content": _JSONISH, "tool_calls": _JSONISH, "additional_kwargs": _JSONISH},
    ),
    _JSONISH,
)
_RUN = st.deferred(
    lambda: st.fixed_dictionaries(
        {"run_type": st.sampled_from(["llm", "tool", "chain", "retriever", "embedding"])},
        optional={
            "id": st.sampled_from(["a", "b", "c"]),
            "parent_run_id": st.sampled_from(["a", "b", "c", None]),
            "trace_id": st.sampled_from(["a", "t", None]),
            "name": _SCALARS,
            "start_time": _SCALARS,
            "end_time": _SCALARS,
            "error": _SCALARS,
            "tags": _JSONISH,
            "total_cost": _SCALARS,
            "prompt_tokens": _SCALARS,
            "inputs": st.one_of(
                st.fixed_dictionaries(
                    {},
                    optional={
                        "messages": st.one_of(
                            st.lists(_MESSAGE, max_size=3),
                            st.lists(st.lists(_MESSAGE, max_size=3), max_size=2),
                            _JSONISH,
                        ),
                        "model": _SCALARS,
                        "tools": _JSONISH,
                    },
                ),
                _JSONISH,
            ),
            "outputs": st.one_of(
                st.fixed_dictionaries(
                    {},
                    optional={
                        "generations": st.one_of(
                            st.lists(
                                st.lists(
                                    st.fixed_dictionaries({}, optional={"message": _MESSAGE}),
                                    max_size=2,
                                ),
                                max_size=2,
                            ),
                            _JSONISH,
                        ),
                        "choices": _JSONISH,
                        "usage_metadata": _JSONISH,
                        "output": _MESSAGE,
                    },
                ),
                _JSONISH,
            ),
            "extra": st.one_of(
                st.fixed_dictionaries(
                    {},
                    optional={
                        "invocation_params": _JSONISH,
                        "metadata": _JSONISH,
                        "tool_call_id": _SCALARS,
                    },
                ),
                _JSONISH,
            ),
            "child_runs": st.one_of(st.lists(_RUN, max_size=3), _JSONISH),
        },
    )
)


@settings(max_examples=150, deadline=None, derandomize=True, database=None)
@given(data=st.one_of(_JSONISH, _RUN, st.lists(_RUN, max_size=4)))
def test_anything_converts_or_is_an_import_format_error(data: Any) -> None:
    try:
        result = convert("langsmith", data)
    except ImportFormatError:
        return
    for session in result.sessions:
        dumps(session)  # a valid, writable golden
