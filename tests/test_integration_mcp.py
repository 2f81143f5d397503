"""MCP integration: a real MCP server (examples/mcp_server.py) over stdio and streamable HTTP,
used by an agent that the real openai SDK drives against the fake provider. Record, stop the
provider and the server, replay from the golden."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

# Imported here, not only inside the projects: pytester's in-process runs drop modules first
# imported during a run, and the integration hooks the `mcp` classes once per process.
import mcp
import pytest

from fakeprovider import FakeProvider
from opswald import load
from opswald.integrations import install
from opswald.integrations.mcp import METHOD_NOT_FOUND, answer, describe_error, parse_error
from opswald.integrations.mcp import install as hook_mcp
from opswald.session import LLMCallStep, ToolCallStep

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
GOLDEN = "goldens/order.golden.yaml"
ABSENT = "/nonexistent/bin/order-desk-server"

SCRIPT = [
    {
        "content": None,
        "tool_calls": [{"name": "lookup_order", "arguments": {"order_id": "ORD-1001"}}],
    },
    {
        "content": None,
        "tool_calls": [
            {"name": "append_note", "arguments": {"order_id": "ORD-1001", "text": "asked where"}},
            {"name": "cancel_order", "arguments": {"order_id": "ORD-1001"}},
        ],
    },
    {"content": "ORD-1001 was delivered, so it cannot be cancelled."},
]
TOOLS = [
    "mcp:initialize",
    "mcp:tools/list",
    None,
    "lookup_order",
    None,
    "append_note",
    "cancel_order",
    None,
]

INI = """\
[pytest]
opswald_adapter = mcp_agent:run
opswald_side_effect_tools = append_note
"""

CLIENT_AGENT = '''
"""The high-level `mcp.Client` (2026 `server/discover` handshake), no model."""
import os
import sys

from mcp import Client, MCPError, StdioServerParameters


async def run(input):
    argv = os.environ.get("ORDER_DESK_COMMAND", f"{sys.executable} mcp_server.py").split()
    params = StdioServerParameters(
        command=argv[0], args=argv[1:], env={"MCP_NOTES_FILE": os.environ["MCP_NOTES_FILE"]}
    )
    async with Client(params) as client:
        listing = await client.list_tools()
        order = await client.call_tool("lookup_order", {"order_id": input["order"]})
        note = await client.call_tool("append_note", {"order_id": input["order"], "text": "ok"})
        if os.environ.get("ALSO_LIST_PROMPTS"):
            await client.list_prompts()
        refused = None
        if os.environ.get("EMPTY_NOTE"):
            try:
                await client.call_tool("append_note", {"order_id": input["order"], "text": ""})
            except MCPError as exc:
                refused = {"code": exc.code, "message": str(exc), "data": exc.data}
        return {
            "refused": refused,
            "tools": [t.name for t in listing.tools],
            "status": order.structured_content["status"],
            "note": note.content[0].text,
            "protocol": client.protocol_version,
            "instructions": client.instructions,
        }
'''


@pytest.fixture
def mcp_project(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    """The example agent and server, an ini enabling the integration, and a stub golden."""
    for var in ("CI", "ORDER_DESK_COMMAND", "ORDER_DESK_URL", "HTTP_PROXY", "HTTPS_PROXY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-proj-" + "M1c2P3x4" * 5)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("MCP_NOTES_FILE", str(pytester.path / "notes.log"))
    for name in ("mcp_agent.py", "mcp_server.py"):
        shutil.copy(EXAMPLES / name, pytester.path / name)
    pytester.makeconftest('"""Puts this folder on sys.path, for the adapters."""\n')
    pytester.makeini(INI + "opswald_integrations = mcp\n")
    pytester.mkdir("goldens")
    question = "Where is ORD-1001? Note that they asked, and cancel it."
    (pytester.path / GOLDEN).write_text(f"name: order_desk\ninput:\n  question: {question}\n")
    return pytester


def _record(project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, *args: str) -> FakeProvider:
    """Record the stub against the fake provider and the real server; the provider stops."""
    with FakeProvider(script=[dict(s) for s in SCRIPT]) as fp:
        monkeypatch.setenv("OPENAI_BASE_URL", fp.base_url + "/v1")
        result = project.runpytest("--opswald-goldens", "--opswald-mode=record", *args)
        assert result.ret == 0, result.stdout.str()
    assert len(fp.requests) == 3
    return fp


def _notes(project: pytest.Pytester) -> list[str]:
    path = project.path / "notes.log"
    return path.read_text().splitlines() if path.exists() else []


def _server_absent(monkeypatch: pytest.MonkeyPatch) -> None:
    assert not Path(ABSENT).exists()
    monkeypatch.setenv("ORDER_DESK_COMMAND", ABSENT)


def _change_note_argument(project: pytest.Pytester) -> None:
    """A regression in agent code: notes get a signature the golden never had."""
    agent = project.path / "mcp_agent.py"
    line = "arguments = json.loads(call.function.arguments)\n"
    source = agent.read_text()
    assert line in source
    indent = " " * 20
    signed = (
        f'{line}{indent}if "text" in arguments:\n'
        f'{indent}    arguments["text"] = "[bot] " + arguments["text"]\n'
    )
    agent.write_text(source.replace(line, signed))


# -- stdio --------------------------------------------------------------------------------


def test_record_over_stdio_then_replay_with_the_server_absent(
    mcp_project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    _record(mcp_project, monkeypatch)
    assert _notes(mcp_project) == ["ORD-1001: asked where"], "recording runs the real tools"
    session = load(mcp_project.path / GOLDEN)
    steps = session.step_list
    assert [s.tool if isinstance(s, ToolCallStep) else None for s in steps] == TOOLS
    assert [s.type for s in steps].count("llm_call") == 3
    assert session.metadata["integrations"] == ["mcp"]
    hello, listing, lookup, note, cancel = (s for s in steps if isinstance(s, ToolCallStep))
    assert hello.input == {} and hello.output["serverInfo"]["name"] == "order-desk"
    assert [t["name"] for t in listing.output["tools"]] == [
        "lookup_order",
        "append_note",
        "cancel_order",
    ]
    assert lookup.input == {"order_id": "ORD-1001"}
    assert lookup.output["structuredContent"]["status"] == "delivered"
    assert note.input == {"order_id": "ORD-1001", "text": "asked where"}
    # a tool that fails answers with isError: that is its output, not a step error
    assert cancel.error is None and cancel.output["isError"] is True
    assert "cannot be cancelled" in cancel.output["content"][0]["text"]
    # what the tool said reached the model, flagged by the agent from `result.is_error`
    last = steps[-1]
    assert isinstance(last, LLMCallStep) and last.input.messages is not None
    assert last.input.messages[-1]["content"].startswith("error: ")
    # the server's instructions, from the handshake, are in the system prompt
    assert "Look orders up" in str(last.input.messages[0]["content"])

    # provider stopped, server command gone: everything comes from the golden
    _server_absent(monkeypatch)
    result = mcp_project.runpytest("--opswald-goldens")
    result.assert_outcomes(passed=1)
    assert _notes(mcp_project) == ["ORD-1001: asked where"], "replay ran a side-effect tool"


def test_a_changed_tool_argument_diverges_at_its_step(
    mcp_project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    _record(mcp_project, monkeypatch)
    _change_note_argument(mcp_project)
    _server_absent(monkeypatch)
    result = mcp_project.runpytest("--opswald-goldens")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*step 6 of 8 · tool_call append_note: called append_note with other arguments*",
            "*step 6 › input.text: 'asked where' → '[[]bot] asked where'*",  # [[] is a literal [
        ]
    )
    assert _notes(mcp_project) == ["ORD-1001: asked where"]


def test_update_continues_on_the_real_server_after_a_served_handshake(
    mcp_project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    _record(mcp_project, monkeypatch)
    before = load(mcp_project.path / GOLDEN).step_list
    _change_note_argument(mcp_project)
    # append_note is listed in opswald_side_effect_tools: an update will not run it live...
    refused = mcp_project.runpytest("--opswald-goldens", "--opswald-update")
    refused.assert_outcomes(failed=1)
    refused.stdout.fnmatch_lines(
        [
            "step 6 of this run · tool_call append_note: append_note has side effects and "
            "would run live"
        ]
    )
    assert _notes(mcp_project) == ["ORD-1001: asked where"]
    assert load(mcp_project.path / GOLDEN).step_list == before
    # ...unless allowed. The handshake and the first turn are served; from step 6 the run is
    # live, on a server that was started and initialised although the golden answered
    # `initialize`
    with FakeProvider(script=[{"content": "Noted; it cannot be cancelled."}]) as fp:
        monkeypatch.setenv("OPENAI_BASE_URL", fp.base_url + "/v1")
        result = mcp_project.runpytest(
            "--opswald-goldens", "--opswald-update", "--opswald-allow-side-effects"
        )
        result.assert_outcomes(passed=1)
    assert len(fp.requests) == 1, "only the model turn after the divergence went live"
    assert _notes(mcp_project) == ["ORD-1001: asked where", "ORD-1001: [bot] asked where"]
    after = load(mcp_project.path / GOLDEN).step_list
    assert after[:5] == before[:5]
    note, cancel = after[5], after[6]
    assert isinstance(note, ToolCallStep) and note.input["text"] == "[bot] asked where"
    assert note.output["content"][0]["text"] == "note 2 saved"
    assert isinstance(cancel, ToolCallStep) and cancel.output["isError"] is True


def test_a_sync_adapter_replays_without_the_server_or_the_provider(
    mcp_project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    _record(mcp_project, monkeypatch, "-o", "opswald_adapter=mcp_agent:run_sync")
    _server_absent(monkeypatch)
    # the provider is up this time: replay must still not send it anything
    with FakeProvider(script=[dict(s) for s in SCRIPT]) as fp:
        monkeypatch.setenv("OPENAI_BASE_URL", fp.base_url + "/v1")
        result = mcp_project.runpytest(
            "--opswald-goldens", "-o", "opswald_adapter=mcp_agent:run_sync"
        )
        result.assert_outcomes(passed=1)
    assert fp.requests == []
    assert _notes(mcp_project) == ["ORD-1001: asked where"]


def test_without_the_integration_mcp_tools_run_as_usual(
    mcp_project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    mcp_project.makeini(INI)
    _record(mcp_project, monkeypatch)
    session = load(mcp_project.path / GOLDEN)
    assert [s.type for s in session.step_list] == ["llm_call"] * 3
    assert "integrations" not in session.metadata
    # replay serves the model but not the tools: they run on the real server again (on an
    # empty notes file, so `append_note` answers "note 1 saved" as it did when recording)
    (mcp_project.path / "notes.log").unlink()
    mcp_project.runpytest("--opswald-goldens").assert_outcomes(passed=1)
    assert _notes(mcp_project) == ["ORD-1001: asked where"]


# -- the high-level client ------------------------------------------------------------------


def test_mcp_client_with_the_discover_handshake_replays_without_the_server(
    mcp_project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    mcp_project.makepyfile(client_agent=CLIENT_AGENT)
    mcp_project.makeini(
        INI.replace("mcp_agent:run", "client_agent:run") + "opswald_integrations = mcp\n"
    )
    (mcp_project.path / GOLDEN).write_text("name: order_desk\ninput:\n  order: ORD-1002\n")
    record = mcp_project.runpytest("--opswald-goldens", "--opswald-mode=record")
    assert record.ret == 0, record.stdout.str()
    session = load(mcp_project.path / GOLDEN)
    tools = [s.tool for s in session.step_list if isinstance(s, ToolCallStep)]
    assert tools == ["mcp:server/discover", "mcp:tools/list", "lookup_order", "append_note"]
    assert session.output is not None and session.output["status"] == "processing"
    assert session.output["protocol"] == session.step_list[0].output["supportedVersions"][-1]
    assert session.output["instructions"].startswith("Look orders up")

    _server_absent(monkeypatch)
    mcp_project.runpytest("--opswald-goldens").assert_outcomes(passed=1)
    assert _notes(mcp_project) == ["ORD-1002: ok"]

    # a request the golden cannot answer fails with a message, never hangs
    monkeypatch.setenv("ALSO_LIST_PROMPTS", "1")
    result = mcp_project.runpytest("--opswald-goldens")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*'prompts/list' is not recorded in the golden*"])


def test_a_protocol_error_is_the_step_error_and_is_raised_again(
    mcp_project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A JSON-RPC error answer (invalid arguments) makes the SDK raise MCPError: that is the
    step's error, and replay raises an MCPError with the same code for the agent's `except`."""
    mcp_project.makepyfile(client_agent=CLIENT_AGENT)
    mcp_project.makeini(
        INI.replace("mcp_agent:run", "client_agent:run") + "opswald_integrations = mcp\n"
    )
    (mcp_project.path / GOLDEN).write_text("name: order_desk\ninput:\n  order: ORD-1002\n")
    monkeypatch.setenv("EMPTY_NOTE", "1")
    record = mcp_project.runpytest("--opswald-goldens", "--opswald-mode=record")
    assert record.ret == 0, record.stdout.str()
    session = load(mcp_project.path / GOLDEN)
    refused = session.step_list[-1]
    assert isinstance(refused, ToolCallStep) and refused.tool == "append_note"
    assert refused.input == {"order_id": "ORD-1002", "text": ""}
    assert refused.output is None and refused.error is not None
    assert (refused.error.type, refused.error.module) == ("MCPError", "opswald.integrations.mcp")
    assert refused.error.message == "append_note: text must not be empty (MCP error -32602)"
    assert session.output is not None
    assert session.output["refused"] == {
        "code": -32602,
        "message": "append_note: text must not be empty",
        "data": None,
    }

    _server_absent(monkeypatch)
    result = mcp_project.runpytest("--opswald-goldens")
    result.assert_outcomes(passed=1)
    assert _notes(mcp_project) == ["ORD-1002: ok"]


# -- streamable HTTP ------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _listening(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
    except OSError:
        return False
    return True


@pytest.fixture
def http_server(mcp_project: pytest.Pytester) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """examples/mcp_server.py serving streamable HTTP on a free loopback port."""
    port = _free_port()
    log = (mcp_project.path / "server.log").open("wb")
    server = subprocess.Popen(
        [sys.executable, str(mcp_project.path / "mcp_server.py"), "--http", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        for _ in range(300):  # bounded: a server that never comes up fails the test
            if _listening(port) or server.poll() is not None:
                break
            time.sleep(0.1)
        assert _listening(port), (mcp_project.path / "server.log").read_text()
        yield f"http://127.0.0.1:{port}/mcp", server
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()


def test_record_over_streamable_http_then_replay_with_the_server_down(
    mcp_project: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    http_server: tuple[str, subprocess.Popen[bytes]],
) -> None:
    url, server = http_server
    monkeypatch.setenv("ORDER_DESK_URL", url)
    _record(mcp_project, monkeypatch)
    session = load(mcp_project.path / GOLDEN)
    assert [s.tool if isinstance(s, ToolCallStep) else None for s in session.step_list] == TOOLS
    assert _notes(mcp_project) == ["ORD-1001: asked where"]

    server.terminate()
    server.wait(timeout=30)
    port = int(url.split(":")[2].split("/")[0])
    assert not _listening(port)
    mcp_project.runpytest("--opswald-goldens").assert_outcomes(passed=1)
    assert _notes(mcp_project) == ["ORD-1001: asked where"]


# -- pieces -------------------------------------------------------------------------------


def test_install_hooks_once_and_keeps_the_originals_reachable() -> None:
    install(["mcp"])
    hook_mcp()  # a second install changes nothing
    hooked = mcp.ClientSession.call_tool
    assert getattr(hooked, "__opswald_mcp__", False)
    assert not getattr(hooked.__wrapped__, "__opswald_mcp__", False)  # one layer, not two


def test_the_stand_in_server_answers_ping_and_names_what_is_not_recorded() -> None:
    pong = answer(b'{"jsonrpc": "2.0", "id": 7, "method": "ping"}')
    assert pong == b'{"jsonrpc": "2.0", "id": 7, "result": {}}\n'
    refusal = answer(b'{"jsonrpc": "2.0", "id": "a", "method": "resources/read"}')
    assert refusal is not None and refusal.endswith(b"\n")
    text = refusal.decode()
    assert f'"code": {METHOD_NOT_FOUND}' in text and "'resources/read' is not recorded" in text
    assert answer(b'{"jsonrpc": "2.0", "method": "notifications/initialized"}') is None
    assert answer(b"not json") is None


def test_recorded_mcp_errors_keep_code_message_and_data() -> None:
    supported = {"supported": ["2026-07-28"], "requested": "2027-01-01"}
    text = describe_error(-32022, "Unsupported protocol version (use one of: x)", supported)
    assert text.startswith("Unsupported protocol version (use one of: x) (MCP error -32022, data:")
    assert parse_error(text) == (-32022, "Unsupported protocol version (use one of: x)", supported)
    assert parse_error(describe_error(-32602, "bad")) == (-32602, "bad", None)
    assert parse_error("edited by hand") == (-32603, "edited by hand", None)
