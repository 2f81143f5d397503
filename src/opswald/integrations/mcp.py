"""MCP: tool calls an agent makes through an `mcp` client session become `tool_call` steps.

Replaying a session must not need the MCP server: CI should not have to build, start or
reach it, and a server whose tools send mail or write files must not run. So replay serves
the tool calls *and* the session set-up from the golden, and never starts the server.

Seams, and why these:

- `mcp.ClientSession.call_tool` (public): every client path ends in it — a bare session,
  `mcp.Client`, `ClientSessionGroup`, frameworks built on the SDK. The step is named after
  the MCP tool, without the server's name: that is the name the model asked for and the one
  `opswald_side_effect_tools` and `expect.tool_calls` already use; the server name is only
  what the server says about itself, so a renamed server would break every golden. The
  step's input is the tool's arguments (`{}` for none); timeouts, progress callbacks and
  `_meta` are transport details and are not part of the match. A result with
  `isError: true` is an answer, not an exception, in MCP: it is recorded as the output.
  The output is the result as MCP puts it on the wire, and replay hands the agent a real
  `CallToolResult` rebuilt from it. A JSON-RPC error answer is an exception (the SDK
  raises `mcp.MCPError`): it is the step's error, recorded as this module's `MCPError`
  with the code (and data) in its message, so that replay raises an `mcp.MCPError` with
  the same code — agents, and `mcp.Client` itself, branch on `.code`.
- `ClientSession.initialize`, `ClientSession.send_discover` (the 2026 handshake that
  `mcp.Client` uses) and `ClientSession.list_tools` (public): recorded as the steps
  `mcp:initialize`, `mcp:server/discover` and `mcp:tools/list`, so the server's identity,
  instructions and tool list come from the golden too. `:` and `/` cannot occur in an MCP
  tool name, so these never collide with a tool. Their input is `{}` (a listing's cursor,
  when it has one): the protocol versions and capabilities the SDK offers are not part of
  the match, so upgrading `mcp` does not invalidate goldens.
- `mcp.client.stdio._create_platform_compatible_process` (private): `stdio_client` calls it
  to start the server. There is no public seam: agents bind `stdio_client` itself at import
  time, before any run starts. In replay it returns a stand-in process instead, so
  `stdio_client(StdioServerParameters(command=...))` works when the command does not exist,
  and the rest of the stdio transport runs unchanged. The stand-in answers `ping`; any
  other request that reaches it was not recorded, and it says so in a JSON-RPC error.
  Streamable HTTP needs no stand-in: it connects only when a message is sent, and in
  replay none is.

In update and fork runs the server is started as usual, because the run may go on live;
a handshake served from the golden is then also made with the real server, so a live call
after the fork point finds an initialised connection.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Awaitable, Callable
from typing import Any

from opswald.instrument import acall_tool
from opswald.integrations import active
from opswald.jsonable import to_jsonable

NAME = "mcp"
INITIALIZE = "mcp:initialize"
DISCOVER = "mcp:server/discover"
LIST_TOOLS = "mcp:tools/list"
METHOD_NOT_FOUND = -32601
INTERNAL_ERROR = -32603
ABSENT_PID = 2**31 - 1
"""The stand-in's pid: above every kernel's pid_max, so a stray signal reaches nothing."""

_MARK = "__opswald_mcp__"

Method = Callable[..., Awaitable[Any]]


def install() -> None:
    """Hook `ClientSession` and the stdio server spawn (idempotent)."""
    from mcp.client import stdio
    from mcp.client.session import ClientSession

    if getattr(ClientSession.call_tool, _MARK, False):
        return
    _hook(ClientSession, "call_tool", _call_tool)
    _hook(ClientSession, "initialize", _initialize)
    _hook(ClientSession, "send_discover", _send_discover)
    _hook(ClientSession, "list_tools", _list_tools)
    spawn = stdio._create_platform_compatible_process
    stdio._create_platform_compatible_process = _spawner(spawn)  # type: ignore[assignment]


def _hook(cls: type, name: str, wrap: Callable[[Method], Method]) -> None:
    original: Method = cls.__dict__[name]
    wrapper = functools.wraps(original)(wrap(original))
    setattr(wrapper, _MARK, True)
    setattr(cls, name, wrapper)


# -- steps ----------------------------------------------------------------------------------


def wire(value: Any) -> Any:
    """A result as MCP sends it (camelCase, no nulls); plain data is kept as it is."""
    dump = getattr(value, "model_dump", None)
    if callable(dump) and not isinstance(value, type):
        return dump(mode="json", by_alias=True, exclude_none=True)
    return to_jsonable(value)


class MCPError(Exception):
    """How a JSON-RPC error answer is recorded as the step's error.

    The SDK raises `mcp.MCPError` (code, message, data) for it. The recorded message keeps
    the code and data — `text must not be empty (MCP error -32602)` — so replay raises an
    `mcp.MCPError` with the same code, message and data; agents and `mcp.Client` itself
    branch on `.code`.
    """


_CODE = re.compile(
    r"^(?P<message>.*) \(MCP error (?P<code>-?\d+)(?:, data: (?P<data>.*))?\)\Z", re.S
)


def describe_error(code: int, message: str, data: Any = None) -> str:
    """The recorded message of a JSON-RPC error."""
    extra = "" if data is None else f", data: {json.dumps(to_jsonable(data))}"
    return f"{message} (MCP error {code}{extra})"


def parse_error(text: str) -> tuple[int, str, Any]:
    """(code, message, data) of a recorded message; a message edited out of that shape is
    an internal error (-32603) with the whole text."""
    match = _CODE.match(text)
    if match is None:
        return INTERNAL_ERROR, text, None
    data = match["data"]
    try:
        decoded = json.loads(data) if data is not None else None
    except ValueError:
        decoded = data
    return int(match["code"]), match["message"], decoded


async def _step(
    name: str, arguments: dict[str, Any], run: Callable[[], Awaitable[Any]], decode: Any
) -> Any:
    """One recorded or served call. While recording, the agent gets the SDK's own object
    (or exception); in replay, `decode` rebuilds the result from the recorded wire form."""
    from mcp.shared.exceptions import MCPError as SDKError

    live: list[Any] = []
    failed: list[BaseException] = []

    async def call() -> Any:
        try:
            value = await run()
        except SDKError as exc:
            failed.append(exc)
            raise MCPError(describe_error(exc.code, exc.message, exc.data)) from exc
        live.append(value)
        return wire(value)

    try:
        data = await acall_tool(name, arguments, call)
    except MCPError as exc:
        recorded = str(exc)
    else:
        return live[0] if live else decode(data)
    # raised outside the handler, so the agent's traceback does not show ours
    if failed:  # recording: the agent gets the SDK's exception itself
        raise failed[0]
    raise SDKError(*parse_error(recorded))


def _decode_tool_result(data: Any) -> Any:
    import mcp.types

    if isinstance(data, dict) and data.get("resultType") == "input_required":
        return mcp.types.InputRequiredResult.model_validate(data)
    return mcp.types.CallToolResult.model_validate(data)


def _call_tool(original: Method) -> Method:
    async def call_tool(
        self: Any, name: str, arguments: dict[str, Any] | None = None, *args: Any, **kwargs: Any
    ) -> Any:
        if active(NAME) is None:
            return await original(self, name, arguments, *args, **kwargs)
        return await _step(
            name,
            dict(arguments or {}),
            lambda: original(self, name, arguments, *args, **kwargs),
            _decode_tool_result,
        )

    return call_tool


def _initialize(original: Method) -> Method:
    async def initialize(self: Any) -> Any:
        ctx = active(NAME)
        if ctx is None or self.initialize_result is not None:
            return await original(self)
        import mcp.types

        result = await _step(
            INITIALIZE, {}, lambda: original(self), mcp.types.InitializeResult.model_validate
        )
        if self.initialize_result is None:  # served from the golden: nothing went on the wire
            if ctx.policy == "replay":
                self.adopt(result)  # the server is absent: take the recorded handshake
            else:
                await original(self)  # the run may go live and will need a real connection
        return result

    return initialize


def _send_discover(original: Method) -> Method:
    async def send_discover(self: Any, version: str) -> Any:
        if active(NAME) is None:
            return await original(self, version)
        return await _step(DISCOVER, {}, lambda: original(self, version), dict)

    return send_discover


def _list_tools(original: Method) -> Method:
    async def list_tools(self: Any, *, params: Any = None) -> Any:
        if active(NAME) is None:
            return await original(self, params=params)
        import mcp.types

        cursor = getattr(params, "cursor", None)
        return await _step(
            LIST_TOOLS,
            {"cursor": cursor} if cursor is not None else {},
            lambda: original(self, params=params),
            mcp.types.ListToolsResult.model_validate,
        )

    return list_tools


# -- the server stand-in (stdio, replay only) --------------------------------------------


def answer(line: bytes) -> bytes | None:
    """The stand-in's reply to one JSON-RPC line from the client, or None (notifications)."""
    try:
        message = json.loads(line)
    except ValueError:
        return None
    if not isinstance(message, dict) or "method" not in message or "id" not in message:
        return None
    reply: dict[str, Any] = {"jsonrpc": "2.0", "id": message["id"]}
    method = message["method"]
    if method == "ping":
        reply["result"] = {}
    else:
        reply["error"] = {
            "code": METHOD_NOT_FOUND,
            "message": f"opswald replay: the MCP server is not started during replay and "
            f"{method!r} is not recorded in the golden; only tools/call, tools/list, "
            "initialize and server/discover are served from it",
        }
    return (json.dumps(reply) + "\n").encode()


def _spawner(original: Method) -> Method:
    async def spawn(*args: Any, **kwargs: Any) -> Any:
        ctx = active(NAME)
        if ctx is not None and ctx.policy == "replay":
            return _absent_server()
        return await original(*args, **kwargs)

    return spawn


def _absent_server() -> Any:
    """A process that runs nothing: stdin requests get `answer`s on stdout, closing stdin
    ends it. Built on anyio's abstract classes (imported here: only MCP runs need them)."""
    import anyio
    from anyio.abc import ByteReceiveStream, ByteSendStream, Process

    class Stdout(ByteReceiveStream):
        def __init__(self) -> None:
            self.writer, self.reader = anyio.create_memory_object_stream[bytes](1024)

        async def receive(self, max_bytes: int = 65536) -> bytes:
            return await self.reader.receive()

        async def aclose(self) -> None:
            self.writer.close()
            self.reader.close()

    class Stdin(ByteSendStream):
        def __init__(self, stdout: Stdout, exited: anyio.Event) -> None:
            self.stdout = stdout
            self.exited = exited
            self.buffer = b""

        async def send(self, item: bytes) -> None:
            if self.exited.is_set():
                raise anyio.ClosedResourceError
            self.buffer += item
            while b"\n" in self.buffer:
                line, self.buffer = self.buffer.split(b"\n", 1)
                reply = answer(line)
                if reply is not None:
                    await self.stdout.writer.send(reply)

        async def aclose(self) -> None:
            self.exited.set()
            self.stdout.writer.close()  # the server's stdout ends when it exits

    class AbsentServer(Process):
        def __init__(self) -> None:
            self.exited = anyio.Event()
            self.out = Stdout()
            self.into = Stdin(self.out, self.exited)

        async def aclose(self) -> None:
            await self.into.aclose()
            await self.out.aclose()

        async def wait(self) -> int:
            await self.exited.wait()
            return 0

        def terminate(self) -> None:
            self.exited.set()
            self.out.writer.close()

        def kill(self) -> None:
            self.terminate()

        def send_signal(self, signal: int) -> None:
            self.terminate()

        @property
        def pid(self) -> int:
            return ABSENT_PID

        @property
        def returncode(self) -> int | None:
            return 0 if self.exited.is_set() else None

        @property
        def stdin(self) -> ByteSendStream:
            return self.into

        @property
        def stdout(self) -> ByteReceiveStream:
            return self.out

        @property
        def stderr(self) -> ByteReceiveStream | None:
            return None

    return AbsentServer()
