"""`opswald import`: goldens written, the account of what was mapped, kept and skipped,
names never reused, and exit codes for unreadable input."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import opswald
from opswald.cli import main

DEPRECATED = Path(__file__).parent / "data" / "import_otel" / "deprecated.json"


def test_import_prints_its_account(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    snapshot: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    out_dir = tmp_path / "goldens"
    assert main(["import", "otel", str(DEPRECATED), "-o", str(out_dir)]) == 0
    out = capsys.readouterr().out
    assert all(len(line) <= 80 for line in out.splitlines() if not line.startswith("wrote "))
    assert out.replace(str(tmp_path), "<tmp>") == snapshot
    written = sorted(out_dir.iterdir())
    assert len(written) == 2
    sessions = [opswald.load(p) for p in written]
    assert all(p.name == f"{s.name}.golden.yaml" for p, s in zip(written, sessions, strict=True))
    # a second import never overwrites: the names get a suffix
    assert main(["import", "otel", str(DEPRECATED), "-o", str(out_dir)]) == 0
    second = capsys.readouterr().out
    assert "_2.golden.yaml" in second
    assert len(list(out_dir.iterdir())) == 4


def test_import_of_unreadable_files_exits_1(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    broken = tmp_path / "broken.json"
    broken.write_text('{"resourceSpans": [')
    code = main(["import", "otel", str(broken), str(DEPRECATED), "-o", str(tmp_path / "out")])
    captured = capsys.readouterr()
    assert code == 1
    errors = captured.err.splitlines()
    assert errors[0].startswith(f"error: {broken}:1:")
    assert "2 goldens from otel" in captured.out  # the readable file is still imported
    # a file that is not there is a usage error, as `pytest absent.json`: nothing imported
    absent = str(tmp_path / "absent.json")
    code = main(["import", "otel", str(DEPRECATED), absent, "-o", str(tmp_path / "again")])
    captured = capsys.readouterr()
    assert (code, captured.out) == (4, "")
    assert captured.err == f"error: file or folder not found: {absent}\n"
    assert not (tmp_path / "again").exists()
    # an empty export says so (QA probe30 #7e: it read "not JSON: Expecting value")
    empty = tmp_path / "empty.json"
    empty.write_text("\n")
    code = main(["import", "langfuse", str(empty), "-o", str(tmp_path / "none")])
    captured = capsys.readouterr()
    assert (code, captured.err) == (1, f"error: {empty}: empty: no trace export in it\n")
    with pytest.raises(SystemExit) as exit_info:
        main(["import", "zipkin", str(broken)])
    assert exit_info.value.code == 2
    assert "invalid choice: 'zipkin'" in capsys.readouterr().err


def test_imported_goldens_hold_no_secrets(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """Production traces carry keys (in prompts, answers, attributes): every imported
    golden is scrubbed before it is written, as recorded ones are."""
    aws, openai_key = "AKIA" + "IOSFODNN7EXAMPLQ", "sk-proj-" + "Q1w2E3r4T5y6" * 3
    password, google = "S3cr3tPassw0rdValue", "AIza" + "SyDxK3Lq9Wm2Xp7Rt5Yv8Bn4Hj6Gd1Fs0Ac"
    text = DEPRECATED.read_text(encoding="utf-8")
    text = text.replace("You are terse.", f"You are terse. Key {openai_key}")
    text = text.replace("Weather in Oslo?", f"Weather in Oslo? {aws}")
    # an attribute named by a key: kept raw in the step's attributes, listed by the account
    doc = json.loads(text)
    span = doc["resourceSpans"][0]["scopeSpans"][0]["spans"][0]
    span["attributes"].append({"key": openai_key, "value": {"stringValue": "x"}})
    # and credentials in a URL: a password, a key in its query
    url = f"https://user:{password}@api.example/v1?key={google}"
    span["attributes"].append({"key": "url.full", "value": {"stringValue": url}})
    text = json.dumps(doc)
    assert aws in text and openai_key in text
    source = tmp_path / "trace.json"
    source.write_text(text, encoding="utf-8")
    out_dir = tmp_path / "goldens"
    assert main(["import", "otel", str(source), "-o", str(out_dir)]) == 0
    printed = capsys.readouterr()
    assert "kept raw in attributes" in printed.out
    assert openai_key[:20] not in printed.out + printed.err
    written = "".join(p.read_text(encoding="utf-8") for p in sorted(out_dir.iterdir()))
    assert aws not in written and openai_key not in written
    assert password not in written and google not in written
    assert (
        "url.full: https://user:<redacted:password>@api.example/v1?key=<redacted:google-key>"
        in (written)
    )
    assert "<redacted:aws-key>" in written and "<redacted:openai-key>" in written


# Secrets of several shapes, each planted in one place of a trace.
OPENAI = "sk-proj-" + "Q1w2E3r4T5y6" * 3  # session metadata (or input)
ANTHROPIC = "sk-ant-api03-" + "Zx9Yw8Vu7Ts6" * 3  # a model call's invocation parameters
BEARER = "tok3nAbcDEFghi123xyz"  # an authorization header
AWS = "AKIA" + "IOSFODNN7EXAMPLR"  # tool arguments
GITHUB = "ghp_" + "A1b2C3d4E5f6" * 3  # a tool's result
JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.SflKxwRJSMeKKF2QT4fwpMeJf36P"  # error
GOOGLE = "AIza" + "SyDxK3Lq9Wm2Xp7Rt5Yv8Bn4Hj6Gd1Fs0Ac"  # a URL's query in tool arguments
TAG = "sk-proj-" + "T4g5T4g5T4g5" * 2  # a tag: a valid marker name, but a key
SECRETS = (OPENAI, ANTHROPIC, BEARER, AWS, GITHUB, JWT, GOOGLE, TAG)
HEADERS = {"Authorization": f"Bearer {BEARER}"}
URL = f"https://api.example/v1?key={GOOGLE}"


def test_import_writes_with_the_projects_redaction_rules(tmp_path: Path) -> None:
    """QA (probe30 #2): with `opswald_redact = pii` in the project, an import wrote a
    customer's email and phone number in clear (and `opswald show` printed them hidden,
    so a reviewer saw a clean file). Written with the project's rules, as `opswald.dump`
    writes."""
    text = DEPRECATED.read_text(encoding="utf-8")
    email, phone = "jane.doe@example.com", "+49 30 1234567"
    assert "Weather in Oslo?" in text
    text = text.replace("Weather in Oslo?", f"Weather in Oslo? Mail {email}, call {phone}.")
    project = tmp_path / "project"
    project.mkdir()
    (project / "pytest.ini").write_text("[pytest]\nopswald_redact = pii\n")
    source = project / "trace.json"
    source.write_text(text, encoding="utf-8")
    from conftest import opswald_cli  # a process of its own, as users run it (not pytest's)

    done = opswald_cli("import", "otel", "trace.json", "-o", "goldens", cwd=project)
    assert done.returncode == 0, done.stdout + done.stderr
    written = "".join(p.read_text(encoding="utf-8") for p in (project / "goldens").iterdir())
    assert email not in written and "1234567" not in written, written
    assert "<redacted:email>" in written


def test_importing_a_trace_again_says_so(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """QA (probe30 #7a): a second import of the same export wrote `_2` copies without a
    word (a nightly import piles them up); each copy names the golden it repeats."""
    out = tmp_path / "goldens"
    assert main(["import", "otel", str(DEPRECATED), "-o", str(out)]) == 0
    first = sorted(p.name for p in out.iterdir())
    capsys.readouterr()
    assert main(["import", "otel", str(DEPRECATED), "-o", str(out)]) == 0
    printed = capsys.readouterr().out
    notes = [line for line in printed.splitlines() if line.startswith("note: trace ")]
    assert len(notes) == len(first) == 2, printed
    for name in first:
        assert any(f"was imported before as {name}: written again as " in n for n in notes)


def _langsmith() -> dict[str, Any]:
    def run(run_id: str, name: str, kind: str, second: int, **fields: Any) -> dict[str, Any]:
        return {
            "id": run_id,
            "name": name,
            "run_type": kind,
            "parent_run_id": "r1",
            "trace_id": "r1",
            "start_time": f"2024-05-01T10:00:0{second}",
            "end_time": f"2024-05-01T10:00:0{second}.5",
            **fields,
        }

    return {
        **run("r1", f"agent {AWS}", "chain", 0),
        "parent_run_id": None,
        "end_time": "2024-05-01T10:00:04",
        "inputs": {"input": "hi"},
        "outputs": {"output": "yo"},
        "tags": ["nightly", TAG],
        "extra": {"metadata": {"note": f"key {OPENAI}"}},
        "child_runs": [
            run(
                "r2",
                "ChatOpenAI",
                "llm",
                1,
                inputs={"messages": [{"role": "user", "content": "hi"}]},
                outputs={"generations": [[{"text": "ok"}]]},
                extra={
                    "invocation_params": {
                        "model": "gpt-4o",
                        "user": ANTHROPIC,
                        "default_headers": HEADERS,
                    },
                    "metadata": {"ls_provider": "openai"},
                },
            ),
            run("r3", "lookup", "tool", 2, inputs={"q": AWS}, outputs={"output": GITHUB}),
            run("r4", "fetch", "tool", 3, inputs={"url": URL}, error=f"PermissionError: {JWT}"),
        ],
    }


def _langfuse() -> dict[str, Any]:
    def obs(obs_id: str, kind: str, name: str, second: int, **fields: Any) -> dict[str, Any]:
        return {
            "id": obs_id,
            "traceId": "t1",
            "type": kind,
            "name": name,
            "startTime": f"2024-06-01T09:00:0{second}.100Z",
            "endTime": f"2024-06-01T09:00:0{second}.200Z",
            **fields,
        }

    return {
        "id": "t1",
        "name": f"desk {AWS}",
        "tags": ["nightly", TAG],
        "metadata": {"note": OPENAI},
        "observations": [
            obs(
                "g1",
                "GENERATION",
                "chat",
                1,
                model="gpt-4o",
                modelParameters={"temperature": "0.2", "user": ANTHROPIC},
                metadata={"headers": HEADERS},
                input=[{"role": "user", "content": "hi"}],
                output={"role": "assistant", "content": "ok"},
            ),
            obs("o1", "TOOL", "lookup", 2, input={"q": AWS}, output={"found": GITHUB}),
            obs(
                "o2",
                "TOOL",
                "fetch",
                3,
                input={"url": URL},
                level="ERROR",
                statusMessage=f"PermissionError: {JWT}",
            ),
        ],
    }


def _span(span_id: str, name: str, n: int, attributes: dict[str, str], **extra: Any) -> Any:
    start = 1_700_000_000_000_000_000 + n * 100_000_000
    return {
        "traceId": "4bf92f3577b34da6a3ce929d0e0e4736",
        "spanId": span_id * 16,
        **({"parentSpanId": "1" * 16} if span_id != "1" else {}),
        "name": name,
        "startTimeUnixNano": str(start),
        "endTimeUnixNano": str(start + 50_000_000),
        "attributes": [{"key": k, "value": {"stringValue": v}} for k, v in attributes.items()],
        **extra,
    }


def _failed(message: str) -> dict[str, Any]:
    attributes = {"exception.type": "PermissionError", "exception.message": message}
    return {
        "status": {"code": 2, "message": "failed"},
        "events": [
            {
                "name": "exception",
                "timeUnixNano": "1700000000320000000",
                "attributes": [
                    {"key": k, "value": {"stringValue": v}} for k, v in attributes.items()
                ],
            }
        ],
    }


def _otel() -> dict[str, Any]:
    chat = {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "openai",
        "gen_ai.request.model": "gpt-4o",
        "gen_ai.request.user": ANTHROPIC,
        "http.request.header.authorization": HEADERS["Authorization"],
        "gen_ai.input.messages": json.dumps(
            [{"role": "user", "parts": [{"type": "text", "content": f"hi {OPENAI}"}]}]
        ),
        "gen_ai.output.messages": json.dumps(
            [{"role": "assistant", "parts": [{"type": "text", "content": "ok"}]}]
        ),
    }

    def tool(name: str, arguments: Any) -> dict[str, str]:
        return {
            "gen_ai.operation.name": "execute_tool",
            "gen_ai.tool.name": name,
            "gen_ai.tool.call.arguments": json.dumps(arguments),
        }

    spans = [
        _span("1", "invoke_agent desk", 0, {"gen_ai.operation.name": "invoke_agent"}),
        _span("2", "chat gpt-4o", 1, chat),
        _span(
            "3",
            "execute_tool lookup",
            2,
            {**tool("lookup", {"q": AWS}), "gen_ai.tool.call.result": json.dumps(GITHUB)},
        ),
        _span("4", "execute_tool fetch", 3, tool("fetch", {"url": URL}), **_failed(JWT)),
    ]
    return {"resourceSpans": [{"scopeSpans": [{"spans": spans}]}]}


def _openinference() -> dict[str, Any]:
    llm = {
        "openinference.span.kind": "LLM",
        "llm.provider": "openai",
        "llm.model_name": "gpt-4o",
        "llm.invocation_parameters": json.dumps(
            {"model": "gpt-4o", "user": ANTHROPIC, "extra_headers": HEADERS}
        ),
        "llm.input_messages.0.message.role": "user",
        "llm.input_messages.0.message.content": "hi",
        "llm.output_messages.0.message.role": "assistant",
        "llm.output_messages.0.message.content": "ok",
    }

    def tool(name: str, arguments: Any) -> dict[str, str]:
        return {
            "openinference.span.kind": "TOOL",
            "tool.name": name,
            "input.value": json.dumps(arguments),
            "input.mime_type": "application/json",
        }

    root = {"openinference.span.kind": "CHAIN", "input.value": f"hi {OPENAI}"}
    spans = [
        _span("1", "desk", 0, root),
        _span("2", "ChatCompletion", 1, llm),
        _span("3", "lookup", 2, {**tool("lookup", {"q": AWS}), "output.value": GITHUB}),
        _span("4", "fetch", 3, tool("fetch", {"url": URL}), **_failed(JWT)),
    ]
    return {"resourceSpans": [{"scopeSpans": [{"spans": spans}]}]}


SECRET_TRACES = {
    "otel": _otel,
    "openinference": _openinference,
    "langsmith": _langsmith,
    "langfuse": _langfuse,
}


@pytest.mark.parametrize("fmt", sorted(SECRET_TRACES))
def test_every_format_imports_a_trace_full_of_secrets_redacted(
    fmt: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Secrets in a trace's metadata, a model call's parameters and headers, tool
    arguments, results and errors: the import writes a golden (no traceback), with each
    one replaced where it was; the sessions `import_file` returns hold none either."""
    from opswald.importers import import_file
    from opswald.session import LLMCallStep, ToolCallStep

    source = tmp_path / "trace.json"
    source.write_text(json.dumps(SECRET_TRACES[fmt]()), encoding="utf-8")
    assert all(secret in source.read_text(encoding="utf-8") for secret in SECRETS[:-1])
    out_dir = tmp_path / "goldens"
    assert main(["import", fmt, str(source), "-o", str(out_dir)]) == 0
    printed = capsys.readouterr()
    (path,) = out_dir.iterdir()
    written = path.read_text(encoding="utf-8")
    for secret in SECRETS:
        assert secret not in written + printed.out + printed.err
    golden = opswald.load(path)
    llm, lookup, fetch = golden.step_list
    assert isinstance(llm, LLMCallStep)
    assert isinstance(lookup, ToolCallStep) and isinstance(fetch, ToolCallStep)
    session_level = [golden.metadata, golden.input, llm.input.messages]
    assert "<redacted:openai-key>" in json.dumps(session_level)
    params = json.dumps([llm.input.params, llm.attributes])
    assert "<redacted:anthropic-key>" in params
    if fmt == "langsmith":  # the client's headers: its configuration, not a request's
        assert "default_headers" not in params and "Bearer" not in params
    else:
        assert "<redacted:header>" in params or "Bearer <redacted:bearer>" in params
    assert lookup.input == {"q": "<redacted:aws-key>"}
    assert "<redacted:github-token>" in json.dumps(lookup.output)
    assert fetch.input == {"url": "https://api.example/v1?key=<redacted:google-key>"}
    assert fetch.error is not None and fetch.error.type == "PermissionError"
    assert "<redacted:jwt>" in fetch.error.message
    if fmt in ("langsmith", "langfuse"):  # names and tags come from the trace
        assert path.name.endswith("_redacted_aws_key.golden.yaml")
        assert golden.tags == ["nightly"], "a tag that is a key is left out"
        assert "1 tag held a secret and was left out" in printed.out, "and said so"
    # the API: what `import_file` returns, account included, holds no secret either
    result = import_file(fmt, source)
    shown = repr(result)
    assert "<redacted:aws-key>" in shown
    for secret in SECRETS:
        assert secret not in shown


@pytest.mark.parametrize(
    ("given", "content", "hint"),
    [
        (
            "langsmith",
            {"id": "t", "observations": []},
            "a Langfuse export: opswald import langfuse",
        ),
        ("langsmith", {"resourceSpans": []}, "an OTLP (OpenTelemetry) export: opswald import otel"),
        (
            "langfuse",
            [{"id": "r", "run_type": "llm"}],
            "a LangSmith export: opswald import langsmith",
        ),
        ("langfuse", {"resourceSpans": []}, "an OTLP (OpenTelemetry) export: opswald import otel"),
    ],
)
def test_an_export_of_another_format_names_it(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, given: str, content: Any, hint: str
) -> None:
    """QA (probe30 #7e): a Langfuse file given to `langsmith` (and the like) said what was
    missing, not which format its keys show."""
    path = tmp_path / "export.json"
    path.write_text(json.dumps(content))
    assert main(["import", given, str(path), "-o", str(tmp_path / "out")]) == 1
    assert f"; it looks like {hint}" in capsys.readouterr().err
