"""Zero-code interception of LLM SDK traffic through `httpx` and `httpx2` clients.

While a run context is active, `Client._send_single_request` (sync and async) of both
libraries is wrapped: a request to a known provider API becomes an `llm_call` step —
served from the golden in replay, recorded from the live response otherwise. Nothing is
patched at import time, and everything is restored when the last run ends.
"""

from __future__ import annotations

import asyncio
import builtins
import importlib
import json
import re
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from opswald.engine.current import current, inside
from opswald.intercept import exchange, tee

_LIBRARIES = ("httpx", "httpx2")


class _Patches:
    """Reference-counted installation of the wrappers (runs may nest, e.g. the marker)."""

    lock = threading.Lock()
    depth = 0
    originals: dict[tuple[type, str], Any] = {}  # noqa: RUF012 - class-level registry


def _clients() -> list[tuple[Any, bool]]:
    """(client class, is_async) for every importable HTTP library."""
    found: list[tuple[Any, bool]] = []
    for name in _LIBRARIES:
        try:
            module = importlib.import_module(name)
        except ImportError:
            continue
        found.append((module.Client, False))
        found.append((module.AsyncClient, True))
    return found


def install() -> None:
    with _Patches.lock:
        _Patches.depth += 1
        if _Patches.depth > 1:
            return
        for cls, is_async in _clients():
            original = cls.__dict__["_send_single_request"]
            _Patches.originals[(cls, "_send_single_request")] = original
            wrapper = _async_wrapper(original) if is_async else _sync_wrapper(original)
            cls._send_single_request = wrapper


def uninstall() -> None:
    with _Patches.lock:
        _Patches.depth -= 1
        if _Patches.depth > 0:
            return
        for (cls, attr), original in _Patches.originals.items():
            setattr(cls, attr, original)
        _Patches.originals.clear()


@contextmanager
def intercepting() -> Iterator[None]:
    install()
    try:
        yield
    finally:
        uninstall()


# -- the wrappers -------------------------------------------------------------------------


def _prepare(request: Any) -> tuple[Any, Any, dict[str, Any], bool] | None:
    """(context, codec, engine request, stream) when this request is an LLM call to take."""
    ctx = current()
    if ctx is None or inside().get():
        return None
    from opswald.intercept.codecs import codec_for, request_for

    codec = codec_for(request.method, request.url.path)
    if codec is None:
        if _from_sdk(request):
            ctx.unrecorded_call(request.method, request.url.path, _host(request.url))
        return None
    try:
        body = json.loads(request.read() or b"null")
    except ValueError:
        return None
    ctx.learn_credentials(request.headers)  # an error body may name the key sent
    query = request.url.query.decode("latin-1")
    path = f"{request.url.path}?{query}" if query else request.url.path
    llm_request = request_for(codec, path, body, request.headers)
    return ctx, codec, llm_request, codec.is_stream(body)


# the openai and anthropic SDKs' clients (`OpenAI/Python 3.57.0`, `AsyncAnthropic/Python ...`,
# `AzureOpenAI`, `AnthropicBedrock`, ...), which also send `x-stainless-*` headers
_SDK_AGENT = re.compile(r"\w*(?:OpenAI|Anthropic)\w*/Python\b")


def _from_sdk(request: Any) -> bool:
    """A request the openai or anthropic SDK sends (not a tool's own HTTP traffic)."""
    headers = request.headers
    return "x-stainless-lang" in headers and bool(_SDK_AGENT.match(headers.get("user-agent", "")))


def _host(url: Any) -> str:
    port = url.port
    return f"{url.host}:{port}" if port is not None else str(url.host)


def _modified(request: Any, ctx: Any, codec: Any, ticket: Any) -> Any:
    """The request as it goes out live, with request-level modifications in its body when
    they apply to this call (a fork at a step: from golden step N on)."""
    if not ticket.modified or not ctx.request_modifications:
        return request
    from opswald.engine.context import request_overrides

    body = json.loads(request.content)
    body.update(request_overrides(codec.api, ctx.request_modifications))
    headers = {k: v for k, v in request.headers.items() if k.lower() != "content-length"}
    return type(request)(
        request.method,
        request.url,
        headers=headers,
        content=json.dumps(body).encode(),
        extensions=request.extensions,
    )


def _start(
    ctx: Any, codec: Any, llm_request: dict[str, Any], stream: bool, request: Any
) -> tuple[Any, Any]:
    """(response, None) when the call is answered from the golden (or a recorded failure
    is raised again), else (None, ticket) for the live attempt."""
    failure = exchange.retry_of(ctx, llm_request, request.headers)
    if failure is not None and failure.served:  # a retry of a replayed failure: no step
        return _served(ctx, codec, failure.ticket, llm_request, stream, request, again=True), None
    if failure is not None:  # a live retry takes the failed attempt's step
        return None, exchange.resume(failure)
    ticket = ctx.begin("llm_call", llm_request)
    if ticket.served is not None:
        return _served(ctx, codec, ticket, llm_request, stream, request), None
    return None, ticket


def _sync_wrapper(original: Callable[..., Any]) -> Callable[..., Any]:
    def _send_single_request(self: Any, request: Any) -> Any:
        prepared = _prepare(request)
        if prepared is None:
            return original(self, request)
        ctx, codec, llm_request, stream = prepared
        answered, ticket = _start(ctx, codec, llm_request, stream, request)
        if ticket is None:
            return answered
        token = inside().set(True)
        try:
            response = original(self, _modified(request, ctx, codec, ticket))
            if not _streamed(stream, response):
                response.read()
        except Exception as exc:
            exchange.failed(ctx, ticket, llm_request, exc)  # provisional: a retry replaces it
            raise
        finally:
            inside().reset(token)
        if _streamed(stream, response):
            return tee.passed_on(ctx, codec, ticket, llm_request, response, is_async=False)
        return _recorded(ctx, codec, ticket, llm_request, stream, response)

    return _send_single_request


def _async_wrapper(original: Callable[..., Any]) -> Callable[..., Any]:
    async def _send_single_request(self: Any, request: Any) -> Any:
        prepared = _prepare(request)
        if prepared is None:
            return await original(self, request)
        ctx, codec, llm_request, stream = prepared
        try:
            answered, ticket = _start(ctx, codec, llm_request, stream, request)
        except _served_cancelled():  # recorded as cancelled: it waits to be cancelled again
            from opswald.engine.context import until_cancelled

            return await until_cancelled()
        if ticket is None:
            return answered
        token = inside().set(True)
        try:
            response = await original(self, _modified(request, ctx, codec, ticket))
            if not _streamed(stream, response):
                await response.aread()
        except Exception as exc:
            exchange.failed(ctx, ticket, llm_request, exc)  # provisional: a retry replaces it
            raise
        except asyncio.CancelledError as exc:  # cut short: a step with no answer
            ctx.llm_failed(ticket, llm_request, exc)
            raise
        finally:
            inside().reset(token)
        if _streamed(stream, response):
            return tee.passed_on(ctx, codec, ticket, llm_request, response, is_async=True)
        return _recorded(ctx, codec, ticket, llm_request, stream, response)

    return _send_single_request


def _streamed(stream: bool, response: Any) -> bool:
    """A streamed answer the SDK reads as it comes: passed on as it comes, and recorded
    when it ends (intercept/tee.py). An error answer is read whole first, as before: the
    SDK reads it whole, and a retry must find its provisional step."""
    return stream and response.status_code < 400


def _served_cancelled() -> type[BaseException]:
    """What replay raises for a call recorded as cancelled (evaluated only when an
    exception is on its way)."""
    from opswald.engine.context import CancelledCall

    return CancelledCall


def _response_class(request: Any) -> Any:
    module = importlib.import_module(type(request).__module__.split(".")[0])
    return module.Response


def _served(
    ctx: Any,
    codec: Any,
    ticket: Any,
    llm_request: dict[str, Any],
    stream: bool,
    request: Any,
    *,
    again: bool = False,
) -> Any:
    from opswald.engine.context import CancelledCall, was_cancelled

    if was_cancelled(ticket.served):  # the recorded call got no answer: neither does this
        if not again:
            ctx.llm_served(ticket, llm_request)
        raise CancelledCall()
    wire = exchange.serve(ctx, codec, ticket, llm_request, stream, again=again, mid_stream=True)
    error = exchange.transport_failure(ticket.served)
    if error is not None and stream and exchange.failed_mid_stream(ticket.served):
        # the recorded stream's connection failed: what came, then the same exception
        failing = tee.failing(request, wire.body, _transport_error(error, request))
        return _response_class(request)(
            wire.status, headers=wire.headers, stream=failing, request=request
        )
    if error is not None:  # the recorded call got no answer: the same exception again
        raise _transport_error(error, request)
    if stream and exchange.closed_early(ticket.served):
        # what came, then the end: an agent that reads to it reads past where it stopped
        ended = tee.ending(request, wire.body, lambda: ctx.read_past_cut(ticket))
        return _response_class(request)(
            wire.status, headers=wire.headers, stream=ended, request=request
        )
    return _response_class(request)(
        wire.status, headers=wire.headers, content=wire.body, request=request
    )


def _recorded(
    ctx: Any, codec: Any, ticket: Any, llm_request: dict[str, Any], stream: bool, response: Any
) -> Any:
    exchange.record(
        ctx,
        codec,
        ticket,
        llm_request,
        stream,
        response.status_code,
        response.content,
        keep_failed=True,
        headers=response.headers,
    )
    return response


def _transport_error(error: Any, request: Any) -> Exception:
    """The recorded exception raised again, as the class it had when that can be found
    without importing anything: the HTTP library's own (`ReadTimeout`, `ConnectError`, ...,
    of the library making this request), a builtin (a `RuntimeError: Event loop is closed`
    of a client reused across event loops), or the class in its module when that module
    is already loaded (a golden never makes replay import a module). Else the library's
    `TransportError`. The SDK handles it as it did when recording: it wraps and retries
    the library's errors and lets anything else through."""
    library = importlib.import_module(type(request).__module__.split(".")[0])
    # a builtin is recorded without a module; `sys.modules` holds what is loaded already
    places: list[Any] = [builtins] if error.module is None else []
    places += [library, sys.modules.get(error.module or "")]
    found = (_exception_class(place, error.type) for place in places if place is not None)
    cls = next((c for c in found if c is not None), None)
    fallback: Any = getattr(library, "TransportError", ConnectionError)
    attempts: list[Callable[[], Any]] = [
        lambda: (cls or fallback)(error.message, request=request),
        lambda: (cls or fallback)(error.message),
        lambda: fallback(error.message, request=request),
    ]
    for make in attempts:
        try:
            made = make()
        except TypeError:
            continue
        if isinstance(made, Exception):
            return made
    return ConnectionError(error.message)


def _exception_class(module: Any, qualname: str) -> Any:
    found: Any = module
    for part in qualname.split("."):
        found = getattr(found, part, None)
    return found if isinstance(found, type) and issubclass(found, Exception) else None
