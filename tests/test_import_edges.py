"""`opswald import` on input that is odd but real: tags named like pytest's own markers, files
that are not UTF-8, traces without a model or tool call, malformed message attributes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import opswald
from opswald.cli import main


def _ls_trace(tags: list[str]) -> list[dict[str, Any]]:
    """A LangSmith chain run with one LLM run inside it."""
    times = {"start_time": "2025-01-01T00:00:00", "end_time": "2025-01-01T00:00:01"}
    return [
        {"id": "r1", "trace_id": "r1", "run_type": "chain", "name": "bot", "tags": tags,
         "inputs": {"q": "hi"}, "outputs": {"a": "hello"}, "dotted_order": "1", **times},
        {"id": "r2", "trace_id": "r1", "parent_run_id": "r1", "run_type": "llm", "name": "m",
         "dotted_order": "1.2",
         "inputs": {"messages": [{"role": "user", "content": "hi"}]},
         "outputs": {"choices": [{"message": {"role": "assistant", "content": "hello"}}]},
         **times},
    ]  # fmt: skip


def _lf_trace(tags: list[str]) -> dict[str, Any]:
    return {
        "id": "t1",
        "name": "bot",
        "tags": tags,
        "observations": [
            {
                "id": "o1",
                "traceId": "t1",
                "type": "GENERATION",
                "name": "m",
                "model": "gpt-4o-mini",
                "input": [{"role": "user", "content": "hi"}],
                "output": {"role": "assistant", "content": "hello"},
                "startTime": "2025-01-01T00:00:00Z",
                "endTime": "2025-01-01T00:00:01Z",
            }
        ],
    }


@pytest.mark.parametrize("fmt", ["langsmith", "langfuse"])
def test_tags_named_like_pytest_markers_are_left_out_with_a_warning(
    fmt: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    tags = ["smoke", "skip", "xfail", "golden", "a b"]
    trace = _ls_trace(tags) if fmt == "langsmith" else _lf_trace(tags)
    source = tmp_path / "t.json"
    source.write_text(json.dumps(trace))
    assert main(["import", fmt, str(source), "-o", str(tmp_path / "g")]) == 0
    out = " ".join(capsys.readouterr().out.split())  # the account's lines are wrapped
    (written,) = (tmp_path / "g").iterdir()
    assert opswald.load(written).tags == ["smoke"]
    assert "tag named like one of pytest's or opswald's own markers x3" in out
    assert "tag that is not a valid pytest marker name" in out
    assert "'skip', 'xfail', 'golden', 'a b'" in out


def test_a_file_that_is_not_utf8_is_an_error_and_a_utf8_bom_is_read(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    utf16 = tmp_path / "u16.json"
    utf16.write_bytes(b"\xff\xfe{\x00}\x00")
    assert main(["import", "otel", str(utf16), "-o", str(tmp_path / "g")]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"error: {utf16}: not UTF-8 text")
    assert "Traceback" not in err
    bom = tmp_path / "bom.json"
    bom.write_bytes(b"\xef\xbb\xbf" + json.dumps(_lf_trace([])).encode())
    assert main(["import", "langfuse", str(bom), "-o", str(tmp_path / "g")]) == 0
    assert len(list((tmp_path / "g").iterdir())) == 1


def _spans(*spans: dict[str, str], trace: str = "4bf92f3577b34da6a3ce929d0e0e4736") -> Any:
    """An OTLP export of one trace; the first span is the root, the others its children."""
    out = []
    for n, attributes in enumerate(spans):
        start = 1_700_000_000_000_000_000 + n * 100_000_000
        out.append(
            {
                "traceId": trace,
                "spanId": f"{n + 1:016x}",
                **({"parentSpanId": f"{1:016x}"} if n else {}),
                "name": f"span {n}",
                "startTimeUnixNano": str(start),
                "endTimeUnixNano": str(start + 50_000_000),
                "attributes": [
                    {"key": k, "value": {"stringValue": v}} for k, v in attributes.items()
                ],
            }
        )
    return {"resourceSpans": [{"scopeSpans": [{"spans": out}]}]}


def _parts(role: str, text: str) -> str:
    return json.dumps([{"role": role, "parts": [{"type": "text", "content": text}]}])


_MESSAGES = {
    "gen_ai.input.messages": _parts("user", "hi"),
    "gen_ai.output.messages": _parts("assistant", "ok"),
}
OTEL_CHAT = {"gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai",
             "gen_ai.request.model": "gpt-4o", **_MESSAGES}  # fmt: skip
OI_LLM = {"openinference.span.kind": "LLM", "llm.provider": "openai", "llm.model_name": "gpt-4o",
          "llm.input_messages.0.message.role": "user",
          "llm.input_messages.0.message.content": "hi"}  # fmt: skip


def _import(fmt: str, data: Any, tmp_path: Path) -> tuple[int, list[Path]]:
    source = tmp_path / "trace.json"
    source.write_text(json.dumps(data) if not isinstance(data, str) else data)
    code = main(["import", fmt, str(source), "-o", str(tmp_path / "g")])
    written = sorted((tmp_path / "g").iterdir()) if (tmp_path / "g").exists() else []
    return code, written


@pytest.mark.parametrize(
    ("fmt", "data", "why"),
    [
        ("openinference", _spans({"gen_ai.operation.name": "invoke_agent"}, OTEL_CHAT),
         "no span with openinference.span.kind LLM or TOOL; its spans have "
         "gen_ai.operation.name: is this an otel trace?"),
        ("otel", _spans({"openinference.span.kind": "CHAIN"}, OI_LLM),
         "no span with gen_ai.operation.name chat, text_completion, generate_content or "
         "execute_tool; its spans have openinference.span.kind: is this an openinference "
         "trace?"),
        ("otel", _spans({"http.method": "GET"}),
         "no span with gen_ai.operation.name chat, text_completion, generate_content or "
         "execute_tool"),
        ("langfuse", {"id": "t1", "name": "bot", "observations": []},
         "no GENERATION or TOOL observation"),
        ("langsmith", [_ls_trace([])[0]], "no run with run_type llm or tool"),
    ],
)  # fmt: skip
def test_a_trace_without_model_or_tool_calls_is_an_error_and_no_golden(
    fmt: str, data: Any, why: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, written = _import(fmt, data, tmp_path)
    captured = capsys.readouterr()
    assert code == 1
    assert written == []
    (error,) = captured.err.splitlines()
    trace = {"langfuse": "t1", "langsmith": "r1"}.get(fmt, "4bf92f3577b34da6a3ce929d0e0e4736")
    assert error.startswith(f"error: {tmp_path / 'trace.json'}: trace {trace}")
    assert f": no model or tool calls ({why}); no golden written" in error
    assert "0 goldens from" in captured.out


def test_the_traces_with_calls_are_written_beside_one_without(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    data = _spans({"http.method": "GET"}, trace="a" * 32)
    data["resourceSpans"] += _spans(OTEL_CHAT, trace="b" * 32)["resourceSpans"]
    code, written = _import("otel", data, tmp_path)
    captured = capsys.readouterr()
    assert code == 1
    assert len(written) == 1 and opswald.load(written[0]).session_id == "b" * 32
    assert f"trace {'a' * 32}" in captured.err


@pytest.mark.parametrize(
    ("fmt", "data"),
    [
        ("otel", "[]"),
        ("otel", '{"resourceSpans": []}'),
        ("openinference", "[]"),
        ("langsmith", "[]"),
        ("langsmith", '{"runs": []}'),
        ("langfuse", "[]"),
        ("langfuse", '{"data": []}'),
    ],
)
def test_an_empty_export_is_the_same_error_in_every_format(
    fmt: str, data: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, written = _import(fmt, data, tmp_path)
    assert (code, written) == (1, [])
    assert capsys.readouterr().err == f"error: {tmp_path / 'trace.json'}: no traces in it\n"


@pytest.mark.parametrize(
    ("value", "why"),
    [
        (
            '[{"role": "user", "parts": [{"type": "text", "content": "What',
            "is not JSON: truncated?",
        ),
        (json.dumps({"role": "user", "parts": []}), "is not a list of messages"),
        (json.dumps([{"role": "user", "parts": "hello"}]), "item [0]: parts is not a list"),
        (json.dumps(["hello"]), "item [0] is not a message object"),
    ],
)
@pytest.mark.parametrize("key", ["gen_ai.input.messages", "gen_ai.output.messages"])
def test_malformed_genai_messages_are_a_warning_not_mapped(
    key: str, value: str, why: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, written = _import("otel", _spans({**OTEL_CHAT, key: value}), tmp_path)
    assert code == 0
    (step,) = opswald.load(written[0]).step_list
    out = " ".join(capsys.readouterr().out.split())
    trace, span = "4bf92f3577b34da6a3ce929d0e0e4736", f"{1:016x}"
    assert f"warning: trace {trace} span {span} (span 0): {key} {why}" in out
    mapped = out.split("mapped (")[1].split(" skipped")[0]
    assert key not in mapped
    assert f"malformed {key}" in out.split("skipped (")[1]
    data = step.model_dump()
    if key == "gen_ai.input.messages":
        assert (data["input"] or {}).get("messages") is None
    else:
        assert data["output"] is None or not data["output"].get("content")


def _failed_root(data: Any, message: str) -> Any:
    data["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["status"] = {
        "code": 2,
        "message": message,
    }
    return data


@pytest.mark.parametrize(
    ("fmt", "root", "call"),
    [
        ("otel", {"gen_ai.operation.name": "invoke_agent"}, OTEL_CHAT),
        ("openinference", {"openinference.span.kind": "AGENT"}, OI_LLM),
    ],
)
def test_an_error_status_written_type_colon_message_keeps_its_type(
    fmt: str, root: dict[str, str], call: dict[str, str], tmp_path: Path
) -> None:
    # what the OTel SDK writes for an exception escaping a span: no exception event needed
    message = "BadRequestError: Error code: 400 - context too long"
    code, written = _import(fmt, _failed_root(_spans(root, call), message), tmp_path)
    assert code == 0
    error = opswald.load(written[0]).error
    assert error is not None
    assert (error.type, error.message) == ("BadRequestError", "Error code: 400 - context too long")
    # a message that names no exception type stays the message of a plain error
    code, written = _import(fmt, _failed_root(_spans(root, call), "context too long"), tmp_path)
    error = opswald.load(sorted(written)[-1]).error
    assert error is not None and (error.type, error.message) == ("Error", "context too long")


@pytest.mark.parametrize(
    ("fmt", "call", "key"),
    [
        ("otel", OTEL_CHAT, "gen_ai.request.model"),
        ("otel", OTEL_CHAT, "gen_ai.response.model"),
        ("otel", {"gen_ai.operation.name": "execute_tool"}, "gen_ai.tool.name"),
        ("otel", {"gen_ai.operation.name": "execute_tool"}, "gen_ai.tool.call.id"),
        ("otel", {"gen_ai.operation.name": "invoke_agent"}, "gen_ai.agent.name"),
        ("openinference", OI_LLM, "llm.model_name"),
        ("openinference", {"openinference.span.kind": "TOOL"}, "tool_call.id"),
    ],
)
def test_a_name_attribute_that_is_not_text_is_an_error_naming_the_span(
    fmt: str, call: dict[str, str], key: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    data = _spans({"http.method": "GET"}, call)
    attributes = data["resourceSpans"][0]["scopeSpans"][0]["spans"][1]["attributes"]
    attributes[:] = [a for a in attributes if a["key"] != key]
    attributes.append({"key": key, "value": {"intValue": "4"}})
    code, written = _import(fmt, data, tmp_path)
    assert (code, written) == (1, [])
    err = capsys.readouterr().err
    assert err == (
        f"error: {tmp_path / 'trace.json'}: resourceSpans[0].scopeSpans[0].spans[1]: "
        f"attribute {key}: expected a string, got int 4\n"
    )


def _sdk_span(span_id: str, parent: str | None, attributes: dict[str, Any]) -> dict[str, Any]:
    """A span as the OpenTelemetry SDK's `span.to_json()` writes it."""
    return {
        "name": "span",
        "context": {"trace_id": "0x" + "d2" * 16, "span_id": "0x" + span_id * 16},
        "kind": "SpanKind.CLIENT",
        "parent_id": "0x" + parent * 16 if parent else None,
        "start_time": "2026-01-01T00:00:00.000000Z",
        "end_time": "2026-01-01T00:00:01.000000Z",
        "status": {"status_code": "UNSET"},
        "attributes": attributes,
        "events": [],
        "links": [],
        "resource": {"attributes": {"service.name": "bot"}, "schema_url": ""},
    }


def test_console_span_exporter_output_is_read(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    # ConsoleSpanExporter prints each span's to_json() (indented) one after another
    spans = [_sdk_span("2", "1", OTEL_CHAT), _sdk_span("1", None, {"gen_ai.operation.name": "x"})]
    code, written = _import("otel", "\n".join(json.dumps(s, indent=4) for s in spans), tmp_path)
    assert code == 0
    (step,) = opswald.load(written[0]).step_list
    assert step.type == "llm_call" and step.model == "gpt-4o"
    # a broken document in such a sequence is named where it breaks
    broken = json.dumps(spans[0], indent=4) + "\n{oops}\n"
    code, _ = _import("otel", broken, tmp_path)
    assert code == 1
    lines = len(json.dumps(spans[0], indent=4).splitlines())
    assert capsys.readouterr().err.startswith(f"error: {tmp_path / 'trace.json'}:{lines + 1}:")


def test_runs_whose_parent_is_missing_say_whether_the_root_run_was_imported() -> None:
    from opswald.importers import convert

    root, llm = _ls_trace([])
    lost = {**llm, "id": "r3", "parent_run_id": "gone", "dotted_order": "1.3"}
    result = convert("langsmith", [root, llm, lost])
    assert [len(s.step_list) for s in result.sessions] == [1, 1]
    (warning,) = result.warnings
    assert warning == (
        "[2]: parent run gone is not in the export; its runs in trace r1 are imported as a "
        "golden of their own, apart from the root run's (no session input or output)"
    )
    result = convert("langsmith", [lost])
    (warning,) = result.warnings
    assert warning == (
        "[0]: parent run gone is not in the export; trace r1 is imported without its root "
        "run (no session input or output)"
    )


def test_anthropic_tool_calls_without_tool_spans_come_from_the_conversation() -> None:
    from opswald.importers import convert

    call = {
        "type": "tool_call",
        "id": "toolu_1",
        "name": "get_weather",
        "arguments": {"city": "Paris"},
    }
    answer = {"type": "tool_call_response", "id": "toolu_1", "response": '{"temp_c": 21}'}
    later = {"type": "tool_call", "id": "toolu_2", "name": "get_time", "arguments": {}}
    user = {"role": "user", "parts": [{"type": "text", "content": "Weather?"}]}
    chat = {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "anthropic",
        "gen_ai.request.model": "claude-3-5-haiku-latest",
    }
    first = {
        **chat,
        "gen_ai.input.messages": json.dumps([user]),
        "gen_ai.output.messages": json.dumps([{"role": "assistant", "parts": [call]}]),
    }
    second = {
        **chat,
        "gen_ai.input.messages": json.dumps(
            [user, {"role": "assistant", "parts": [call]}, {"role": "user", "parts": [answer]}]
        ),
        "gen_ai.output.messages": json.dumps([{"role": "assistant", "parts": [later]}]),
    }
    result = convert("otel", _spans({"http.method": "POST"}, first, second))  # fmt: skip
    steps = result.sessions[0].step_list
    assert [s.type for s in steps] == ["llm_call", "tool_call", "llm_call"]
    tool = steps[1]
    assert tool.model_dump(include={"tool", "call_id", "input", "output"}) == {
        "tool": "get_weather",
        "call_id": "toolu_1",
        "input": {"city": "Paris"},
        "output": {"temp_c": 21},
    }
    # the last call's tool call was never answered in the trace: no step for it, counted
    assert result.skipped["tool call never answered in the trace (no tool_call step)"] == 1


def test_a_clients_configuration_is_not_a_request_parameter() -> None:
    """QA (probe30 #7b): LangSmith's invocation params carry the client's configuration
    (`openai_api_key`, `base_url`, `default_headers`): imported as request parameters, an
    agent making the same call diverged on them (`input.params.openai_api_key: removed`)."""
    from collections import Counter

    from opswald.importers._messages import request_params

    skipped: Counter[str] = Counter()
    given = {
        "temperature": 0.2,
        "openai_api_key": "**********",
        "base_url": "https://gateway.example/v1",
        "default_headers": {"x-team": "a"},
        "openai_organization": "org-1",
    }
    assert request_params(given, skipped, "request") == {"temperature": 0.2}
    assert skipped["request.openai_api_key (not a request parameter)"] == 1
    assert skipped["request.default_headers (not a request parameter)"] == 1
