"""An OpenAI- and Anthropic-compatible server on 127.0.0.1 that answers from a run context:
agents in any language replay a golden by pointing their base URL at it."""

from __future__ import annotations

import http.client
import json
import queue
import select
import socket
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

from opswald.engine.context import Context, ReplayDivergence, SideEffectBlocked
from opswald.engine.current import LANE, OutsideFlow
from opswald.intercept import exchange
from opswald.intercept.codecs import codec_for, request_for
from opswald.session import ErrorInfo

DEFAULT_UPSTREAMS = {"openai": "https://api.openai.com", "anthropic": "https://api.anthropic.com"}
_HOP_HEADERS = {"host", "content-length", "connection", "accept-encoding", "transfer-encoding"}
_POLL = 0.05  # seconds between two looks at whether a client reading a stream went away


class _IPv6Server(ThreadingHTTPServer):
    """The threading HTTP server on an IPv6 socket (`--host ::1`)."""

    address_family = socket.AF_INET6


def host_problem(host: str) -> str | None:
    """Why the replay server cannot bind to `host`, or None: it binds to loopback only."""
    if host not in ("127.0.0.1", "localhost", "::1"):
        return f"the replay server binds to loopback only, not {host!r}"
    return None


class ReplayServer:
    """Serves LLM calls from `ctx` (replay) or forwards them upstream and records (live;
    a streamed answer is passed on as it comes: `Relay`)."""

    def __init__(
        self,
        ctx: Context,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        upstreams: dict[str, str] | None = None,
        on_divergence: Callable[[str], None] | None = None,
    ) -> None:
        problem = host_problem(host)
        if problem is not None:
            raise ValueError(problem)
        self.ctx = ctx
        self.upstreams = {**DEFAULT_UPSTREAMS, **(upstreams or {})}
        self.divergences: list[str] = []
        # the calls of the agent in another process: one flow (its own threads and tasks
        # are not seen; the server's threads are per connection)
        self.flow = OutsideFlow()
        self.on_divergence = on_divergence
        self._opener = urllib.request.build_opener()  # proxy variables as they are now
        self._lock = threading.Lock()
        self._relays: set[Relay] = set()  # live streams being passed on
        # ThreadingHTTPServer's socket is IPv4: an IPv6 host needs an IPv6 socket
        server_class = _IPv6Server if ":" in host else ThreadingHTTPServer
        self._server = server_class((host, port), _handler(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        host = str(host)
        return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"

    def start(self) -> ReplayServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        with self._lock:
            relays = list(self._relays)
        for relay in relays:  # streams still open are recorded as far as they came
            relay.left()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> ReplayServer:
        return self.start()

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # -- one request --------------------------------------------------------------------
    def handle(
        self, method: str, path: str, headers: dict[str, str], body: bytes
    ) -> Answer | Relay:
        codec = codec_for(method, path)
        if codec is None:
            return _error(404, f"opswald replay server: no LLM API at {method} {path}")
        try:
            payload = json.loads(body or b"null")
        except ValueError:
            return _error(400, "opswald replay server: the request body is not JSON")
        request = request_for(codec, path, payload, headers)
        self.ctx.learn_credentials(headers)  # an error body may name the key sent
        stream = codec.is_stream(payload)
        # a retry of a recorded failed call (the rule in intercept/exchange.py): served the
        # same failure again, with no new step, so the client gives up as it did then
        lowered = {key.lower(): value for key, value in headers.items()}
        failure = exchange.retry_of(self.ctx, request, lowered)
        if failure is not None and failure.served:
            wire = exchange.serve(self.ctx, codec, failure.ticket, request, stream, again=True)
            return Answer(status=wire.status, headers=dict(wire.headers), body=wire.body)
        try:
            ticket = (
                exchange.resume(failure)
                if failure is not None
                else self.ctx.begin("llm_call", request)
            )
        except (ReplayDivergence, SideEffectBlocked) as exc:
            text = _divergence_text(exc, self.ctx)
            self.divergences.append(text)
            if self.on_divergence is not None:
                self.on_divergence(text)
            return _error(400, text)
        if ticket.served is not None:
            wire = exchange.serve(self.ctx, codec, ticket, request, stream, mid_stream=True)
            # a stream whose connection failed when recording: what came, then the
            # connection dropped there, so the client fails where it failed then
            dropped = stream and exchange.failed_mid_stream(ticket.served)
            return Answer(
                status=wire.status, headers=dict(wire.headers), body=wire.body, dropped=dropped
            )
        mods = self.ctx.request_modifications if ticket.modified else {}
        sent = _modified(body, payload, codec.api, mods)
        url = self._upstream(codec.provider, path)
        try:
            status, reply = self._forward(url, method, headers, sent)
        except _NO_ANSWER as exc:
            return self._unanswered(ticket, request, exc, url, "could not reach the provider")
        if stream and status < 400:  # passed on as it comes, recorded when it ends
            return Relay(self, codec, ticket, request, status, reply)
        try:
            answer = reply.read()
        except _NO_ANSWER as exc:
            lost = "lost the connection to the provider"
            return self._unanswered(ticket, request, exc, url, lost, "while reading its answer")
        finally:
            reply.close()
        exchange.record(self.ctx, codec, ticket, request, stream, status, answer, keep_failed=True)
        return Answer(status=status, headers=_content_type(reply.headers), body=answer)

    def _upstream(self, provider: str, path: str) -> str:
        """The URL a request to `path` goes on to (its query too)."""
        upstream = self.upstreams.get(provider, DEFAULT_UPSTREAMS["openai"]).rstrip("/")
        base_path = urllib.parse.urlsplit(upstream).path.rstrip("/")
        if base_path and path.startswith(base_path):
            path = path[len(base_path) :]
        return upstream + path

    def _forward(
        self, url: str, method: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, Any]:
        """(status, the upstream answer, still open: the caller reads its body). Raises
        one of _NO_ANSWER when no HTTP answer came."""
        sent = {k: v for k, v in headers.items() if k.lower() not in _HOP_HEADERS}
        request = urllib.request.Request(url, data=body, headers=sent, method=method)
        try:
            reply = self._opener.open(request, timeout=600)
        except urllib.error.HTTPError as exc:
            return exc.code, exc
        return reply.status, reply

    def _unanswered(
        self,
        ticket: Any,
        llm_request: dict[str, Any],
        exc: Exception,
        url: str,
        what: str,
        when: str = "",
    ) -> Answer:
        """An attempt that got no whole answer from the provider, as the SDK hook records
        one: a provisional step with the error, which a retry of the same request replaces
        (intercept/exchange.py), answered HTTP 502 with the error, as replay answers it, so
        the SDK retries and then raises as it would without the server."""
        error = _no_answer_error(self.ctx, exc, url, what, when)
        step = exchange.failed(self.ctx, ticket, llm_request, None, error_info=error)
        wire = exchange.no_answer(step.error)
        return Answer(status=wire.status, headers=dict(wire.headers), body=wire.body)


@dataclass(frozen=True, kw_only=True)
class Answer:
    """A whole answer to one request (`dropped`: the connection is closed after its body,
    before the body's end)."""

    status: int
    headers: dict[str, str]
    body: bytes
    dropped: bool = False


class Relay:
    """A live streamed answer passed on to the client chunk by chunk as the provider sends
    it, while a copy is kept, so the agent reads each chunk when it comes (an early stop,
    a read timeout between chunks are the agent's, as without opswald). The step is
    recorded when the stream ends: sent whole; closed by the client before that (the
    upstream connection is closed too, so the provider sends nothing more); failed
    upstream mid-way (the client's connection is then dropped after what came); or left
    open when the run ends or the server stops."""

    def __init__(
        self,
        server: ReplayServer,
        codec: Any,
        ticket: Any,
        llm_request: dict[str, Any],
        status: int,
        reply: Any,
    ) -> None:
        self.server, self.codec, self.ticket, self.llm_request = server, codec, ticket, llm_request
        self.status = status
        self.reply = reply
        self.parts: list[bytes] = []
        self._lock = threading.Lock()
        self._ended = False
        server.ctx.unended[ticket.number] = self.left
        with server._lock:
            server._relays.add(self)

    def pass_on(self, handler: BaseHTTPRequestHandler) -> None:
        """Send the stream to the client as it comes; record it when it ends."""
        try:
            handler.send_response(self.status)
            for key, value in _content_type(self.reply.headers).items():
                handler.send_header(key, value)
            handler.send_header("cache-control", "no-cache")
            handler.send_header("transfer-encoding", "chunked")
            handler.end_headers()
            handler.wfile.flush()
            ended = self._relayed(handler)
        except OSError:  # the client went away between two looks
            ended = False
        if not ended:
            self.left()
            handler.close_connection = True

    def _relayed(self, handler: BaseHTTPRequestHandler) -> bool:
        """Pass each piece on until the stream ends: True when it ended upstream (whole,
        or failed there: the client's connection is then dropped after what came), False
        when the client closed it first."""
        came: queue.Queue[bytes | BaseException | None] = queue.Queue()
        threading.Thread(target=self._pump, args=(came,), daemon=True).start()
        while not _closed_by_peer(handler.connection):
            try:
                item = came.get(timeout=_POLL)
            except queue.Empty:
                continue
            if isinstance(item, BaseException):
                self.end(exchange.Cut(error=item))
                handler.close_connection = True
                return True
            if item is None:
                self.end(None)
                handler.wfile.write(b"0\r\n\r\n")
                return True
            self.parts.append(item)
            handler.wfile.write(_chunk(item))
        return False

    def _pump(self, came: queue.Queue[bytes | BaseException | None]) -> None:
        """Every piece of the upstream body as it comes, then None at its end (or the
        exception its connection failed with)."""
        reply = self.reply
        read: list[bytes] = []
        try:
            while True:
                piece = reply.read1(65536)
                if piece:
                    read.append(piece)
                    came.put(piece)
                    continue
                if reply.length:  # a body with a length that stopped short of it
                    raise http.client.IncompleteRead(b"".join(read), reply.length)
                came.put(None)
                return
        except Exception as exc:
            came.put(exc)
        finally:
            reply.close()

    def end(self, cut: exchange.Cut | None) -> None:
        """The stream ended: whole (`cut` None), or before its end as far as the relay
        knows (the codec says whether its last event came). Recorded once."""
        with self._lock:
            if self._ended:
                return
            self._ended = True
        ctx = self.server.ctx
        ctx.unended.pop(self.ticket.number, None)
        with self.server._lock:
            self.server._relays.discard(self)
        exchange.record(
            ctx,
            self.codec,
            self.ticket,
            self.llm_request,
            True,
            self.status,
            b"".join(self.parts),
            keep_failed=True,
            cut=cut,
        )

    def left(self) -> None:
        """The stream was closed before its end, or left open when the run ended or the
        server stopped: recorded as far as it came, and the provider stops sending."""
        self.end(exchange.Cut())
        _shut(_socket_of(self.reply))


def _chunk(data: bytes) -> bytes:
    """`data` as one chunk of a chunked body."""
    return b"%x\r\n%s\r\n" % (len(data), data)


def _closed_by_peer(sock: socket.socket) -> bool:
    """The client closed its connection (it sends nothing while it reads an answer: its
    socket turns readable at its end)."""
    try:
        readable, _, _ = select.select([sock], [], [], 0)
        return bool(readable) and sock.recv(1, socket.MSG_PEEK) == b""
    except OSError:
        return True


def _socket_of(reply: Any) -> socket.socket | None:
    """The socket an upstream answer is read from (`http.client` keeps it behind the
    file it reads), so that another thread can end a read blocked on it."""
    sock = getattr(getattr(getattr(reply, "fp", None), "raw", None), "_sock", None)
    return sock if isinstance(sock, socket.socket) else None


def _shut(sock: socket.socket | None) -> None:
    if sock is None:
        return
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:  # already closed
        pass


# what forwarding a request raises when no (whole) HTTP answer came: a refused connection,
# a name not found, a timeout (URLError and the socket's own errors), a connection reset
# or an answer cut short (http.client's), a URL urllib cannot open (ValueError)
_NO_ANSWER = (OSError, http.client.HTTPException, ValueError)


def _no_answer_error(ctx: Context, exc: Exception, url: str, what: str, when: str) -> ErrorInfo:
    """The step error of an attempt that got no answer from `url`: the class of what went
    wrong (`ConnectionRefusedError`, `TimeoutError`, `IncompleteRead`; urllib's URLError
    is unwrapped), and a message that says which URL the server could not reach — with
    neither the credentials a URL may hold nor its query (keys go there too) — redacted as
    all else recorded."""
    reason: Any = exc.reason if isinstance(exc, urllib.error.URLError) else exc
    cause = reason if isinstance(reason, BaseException) else exc
    parts = urllib.parse.urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    shown = urllib.parse.urlunsplit((parts.scheme, host, parts.path, "", ""))
    said = str(reason)
    for secret in (parts.netloc.rpartition("@")[0], parts.password, parts.query):
        if secret:
            said = said.replace(secret, "***")
    where = f"{shown} {when}" if when else shown
    message = f"opswald replay server: {what} at {where}: {said}"
    module = type(cause).__module__
    return ErrorInfo(
        type=type(cause).__qualname__,
        message=ctx.redactor(message),
        module=None if module == "builtins" else module,
    )


def _modified(body: bytes, payload: Any, api: str | None, mods: dict[str, Any]) -> bytes:
    """The body as it goes upstream, with the request-level modifications (`model`,
    `temperature`, ...) in it, as the in-process interceptor sends it: the step records the
    modified request, so the provider must get it too."""
    from opswald.engine.context import request_overrides

    overrides = request_overrides(api, mods) if mods and isinstance(payload, dict) else {}
    if not overrides:
        return body
    return json.dumps({**payload, **overrides}).encode()


def _content_type(headers: Any) -> dict[str, str]:
    return {"content-type": headers.get("content-type", "application/json")}


def _divergence_text(exc: ReplayDivergence | SideEffectBlocked, ctx: Context) -> str:
    from opswald.diff import render_verdict
    from opswald.verdict import Verdict

    total = len(ctx.golden.step_list) if ctx.golden is not None else None
    text = render_verdict(
        Verdict(findings=(exc.finding,)),
        total_steps=total,
        fix="if the new behaviour is intended, record the golden again",
    )
    return ctx.redactor.text(text)


def _error(status: int, message: str) -> Answer:
    body = {
        "type": "error",
        "error": {"type": "invalid_request_error", "message": message, "code": "opswald"},
    }
    headers = {"content-type": "application/json"}
    return Answer(status=status, headers=headers, body=json.dumps(body).encode())


def _handler(server: ReplayServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            LANE.set(server.flow)  # this connection's thread is not the agent's
            length = int(self.headers.get("content-length") or 0)
            body = self.rfile.read(length)
            # the whole path: its query is part of the request (and goes on upstream)
            answer = server.handle("POST", self.path, dict(self.headers.items()), body)
            if isinstance(answer, Relay):
                answer.pass_on(self)
            elif answer.dropped:
                self._dropped(answer)
            else:
                self._whole(answer)

        def do_GET(self) -> None:
            answer = _error(404, f"opswald replay server: no GET {self.path}")
            if self.path == "/health":
                answer = Answer(status=200, headers={"content-type": "text/plain"}, body=b"ok")
            self._whole(answer)

        def _whole(self, answer: Answer) -> None:
            self.send_response(answer.status)
            for key, value in answer.headers.items():
                self.send_header(key, value)
            self.send_header("content-length", str(len(answer.body)))
            self.end_headers()
            self.wfile.write(answer.body)

        def _dropped(self, answer: Answer) -> None:
            """The body, then the connection closed before the body's end: chunked, with
            no last chunk, so the client reads what came, then fails as it did live."""
            self.send_response(answer.status)
            for key, value in answer.headers.items():
                self.send_header(key, value)
            self.send_header("transfer-encoding", "chunked")
            self.end_headers()
            if answer.body:
                self.wfile.write(_chunk(answer.body))
            self.close_connection = True

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler
