"""An OpenAI- and Anthropic-compatible server on 127.0.0.1 that answers from a run context:
agents in any language replay a golden by pointing their base URL at it."""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

from opswald.engine.context import Context, ReplayDivergence, SideEffectBlocked
from opswald.intercept import exchange
from opswald.intercept.codecs import codec_for, request_for

DEFAULT_UPSTREAMS = {"openai": "https://api.openai.com", "anthropic": "https://api.anthropic.com"}
_HOP_HEADERS = {"host", "content-length", "connection", "accept-encoding", "transfer-encoding"}


class ReplayServer:
    """Serves LLM calls from `ctx` (replay) or forwards them upstream and records (live)."""

    def __init__(
        self,
        ctx: Context,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        upstreams: dict[str, str] | None = None,
        on_divergence: Callable[[str], None] | None = None,
    ) -> None:
        if host not in ("127.0.0.1", "localhost", "::1"):
            raise ValueError(f"the replay server binds to loopback only, not {host!r}")
        self.ctx = ctx
        self.upstreams = {**DEFAULT_UPSTREAMS, **(upstreams or {})}
        self.divergences: list[str] = []
        self.on_divergence = on_divergence
        self._opener = urllib.request.build_opener()  # proxy variables as they are now
        self._server = ThreadingHTTPServer((host, port), _handler(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> ReplayServer:
        self._thread.start()
        return self

    def stop(self) -> None:
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
    ) -> tuple[int, dict[str, str], bytes]:
        codec = codec_for(method, path)
        if codec is None:
            return _error(404, f"opswald replay server: no LLM API at {method} {path}")
        try:
            payload = json.loads(body or b"null")
        except ValueError:
            return _error(400, "opswald replay server: the request body is not JSON")
        request = request_for(codec, path, payload)
        stream = codec.is_stream(payload)
        # a retry of a recorded failed call (the rule in intercept/exchange.py): served the
        # same failure again, with no new step, so the client gives up as it did then
        lowered = {key.lower(): value for key, value in headers.items()}
        failure = exchange.retry_of(self.ctx, request, lowered)
        if failure is not None and failure.served:
            wire = exchange.serve(self.ctx, codec, failure.ticket, request, stream, again=True)
            return wire.status, dict(wire.headers), wire.body
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
            wire = exchange.serve(self.ctx, codec, ticket, request, stream)
            return wire.status, dict(wire.headers), wire.body
        mods = self.ctx.request_modifications if ticket.modified else {}
        sent = _modified(body, payload, codec.api, mods)
        status, reply_headers, reply = self._forward(codec.provider, method, path, headers, sent)
        exchange.record(self.ctx, codec, ticket, request, stream, status, reply, keep_failed=True)
        return status, reply_headers, reply

    def _forward(
        self, provider: str, method: str, path: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, dict[str, str], bytes]:
        upstream = self.upstreams.get(provider, DEFAULT_UPSTREAMS["openai"]).rstrip("/")
        base_path = urllib.parse.urlsplit(upstream).path.rstrip("/")
        if base_path and path.startswith(base_path):
            path = path[len(base_path) :]
        sent = {k: v for k, v in headers.items() if k.lower() not in _HOP_HEADERS}
        request = urllib.request.Request(upstream + path, data=body, headers=sent, method=method)
        try:
            with self._opener.open(request, timeout=600) as reply:
                return reply.status, _content_type(reply.headers), reply.read()
        except urllib.error.HTTPError as exc:
            try:
                return exc.code, _content_type(exc.headers), exc.read()
            finally:
                exc.close()


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


def _error(status: int, message: str) -> tuple[int, dict[str, str], bytes]:
    body = {
        "type": "error",
        "error": {"type": "invalid_request_error", "message": message, "code": "opswald"},
    }
    return status, {"content-type": "application/json"}, json.dumps(body).encode()


def _handler(server: ReplayServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            body = self.rfile.read(length)
            status, headers, reply = server.handle(
                "POST", self.path.split("?", 1)[0], dict(self.headers.items()), body
            )
            self.send_response(status)
            for key, value in headers.items():
                self.send_header(key, value)
            self.send_header("content-length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)

        def do_GET(self) -> None:
            status, headers, reply = _error(404, f"opswald replay server: no GET {self.path}")
            if self.path == "/health":
                status, headers, reply = 200, {"content-type": "text/plain"}, b"ok"
            self.send_response(status)
            for key, value in headers.items():
                self.send_header(key, value)
            self.send_header("content-length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler
