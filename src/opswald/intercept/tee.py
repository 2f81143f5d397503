"""A streamed answer on its way to the SDK: passed on chunk by chunk as the provider sends
it, while a copy is kept, so the agent reads each chunk when it comes (time to first
token, an early stop, a read timeout between chunks are the agent's, as without opswald).
The step is recorded when the stream ends: read to its end, closed by the agent before
that, failed mid-way, or left unread when the run ends. And, for replay, a stream whose
connection failed while recording: what came, then the same error."""

from __future__ import annotations

import functools
import importlib
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

from opswald.intercept import exchange


def passed_on(
    ctx: Any, codec: Any, ticket: Any, llm_request: dict[str, Any], response: Any, *, is_async: bool
) -> Any:
    """`response` with its stream teed: the step is recorded when the stream ends (or,
    when the agent never ends it, when the run does)."""
    end = _End(ctx, codec, ticket, llm_request, response)
    ctx.unended[ticket.number] = end.left
    response.stream = _tee_class(_library(response), is_async)(response.stream, end)
    return response


class _End:
    """The body as far as it came, recorded as the step once, when the stream ends."""

    def __init__(
        self, ctx: Any, codec: Any, ticket: Any, llm_request: dict[str, Any], response: Any
    ) -> None:
        self.ctx, self.codec, self.ticket, self.llm_request = ctx, codec, ticket, llm_request
        self.response = response
        self.parts: list[bytes] = []
        self._lock = threading.Lock()
        self._ended = False

    def keep(self, chunk: bytes) -> None:
        self.parts.append(chunk)

    def __call__(self, cut: exchange.Cut | None) -> None:
        """The stream ended: whole (`cut` None), or closed or failed before its end as far
        as the reader knows (the codec says whether its last event came)."""
        with self._lock:
            if self._ended:
                return
            self._ended = True
        self.ctx.unended.pop(self.ticket.number, None)
        response = self.response
        exchange.record(
            self.ctx,
            self.codec,
            self.ticket,
            self.llm_request,
            True,
            response.status_code,
            _content(response, b"".join(self.parts)),
            keep_failed=True,
            headers=response.headers,
            cut=cut,
        )

    def left(self) -> None:
        """The run ended with the stream neither read to its end nor closed."""
        self(exchange.Cut())


class _SyncTee:
    """Every chunk of `inner` passed on, and kept."""

    def __init__(self, inner: Any, end: _End) -> None:
        self._inner = inner
        self._end = end

    def __iter__(self) -> Iterator[bytes]:
        try:
            for chunk in self._inner:
                self._end.keep(chunk)
                yield chunk
        except Exception as exc:  # the connection failed: the SDK raises it to the agent
            self._end(exchange.Cut(error=exc))
            raise
        self._end(None)

    def close(self) -> None:
        try:
            self._end(exchange.Cut())
        finally:
            self._inner.close()


class _AsyncTee:
    """Every chunk of `inner` passed on, and kept."""

    def __init__(self, inner: Any, end: _End) -> None:
        self._inner = inner
        self._end = end

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._inner:
                self._end.keep(chunk)
                yield chunk
        except Exception as exc:  # the connection failed: the SDK raises it to the agent
            self._end(exchange.Cut(error=exc))
            raise
        self._end(None)

    async def aclose(self) -> None:
        try:
            self._end(exchange.Cut())
        finally:
            await self._inner.aclose()


class _Failing:
    """A replayed stream whose connection failed mid-way: what came, then the error."""

    def __init__(self, body: bytes, error: Exception) -> None:
        self._body = body
        self._error = error

    def __iter__(self) -> Iterator[bytes]:
        if self._body:
            yield self._body
        raise self._error

    async def __aiter__(self) -> AsyncIterator[bytes]:
        if self._body:
            yield self._body
        raise self._error

    def close(self) -> None:
        """Nothing to release."""

    async def aclose(self) -> None:
        """Nothing to release."""


class _Ending:
    """A replayed stream the agent closed early when recording: what came, then its end,
    which tells `on_end` when the agent reads to it (it read past where it stopped)."""

    def __init__(self, body: bytes, on_end: Callable[[], None]) -> None:
        self._body = body
        self._on_end = on_end

    def __iter__(self) -> Iterator[bytes]:
        if self._body:
            yield self._body
        self._on_end()

    async def __aiter__(self) -> AsyncIterator[bytes]:
        if self._body:
            yield self._body
        self._on_end()

    def close(self) -> None:
        """Nothing to release."""

    async def aclose(self) -> None:
        """Nothing to release."""


def ending(request: Any, body: bytes, on_end: Callable[[], None]) -> Any:
    """A stream for a replayed response to `request` that sends `body`, then calls
    `on_end` if the reader asks for more (the recorded stream was closed early there)."""
    library = importlib.import_module(type(request).__module__.split(".")[0])
    return _ending_class(library.__name__)(body, on_end)


@functools.cache
def _ending_class(library: str) -> Any:
    module = importlib.import_module(library)
    return type("EndingStream", (_Ending, module.SyncByteStream, module.AsyncByteStream), {})


def failing(request: Any, body: bytes, error: Exception) -> Any:
    """A stream for a replayed response to `request` that sends `body`, then raises
    `error` where the recorded connection failed."""
    library = importlib.import_module(type(request).__module__.split(".")[0])
    return _failing_class(library.__name__)(body, error)


@functools.cache
def _tee_class(library: str, is_async: bool) -> Any:
    """The tee as the HTTP library's byte stream (its Response checks the type)."""
    module = importlib.import_module(library)
    if is_async:
        return type("TeeStream", (_AsyncTee, module.AsyncByteStream), {})
    return type("TeeStream", (_SyncTee, module.SyncByteStream), {})


@functools.cache
def _failing_class(library: str) -> Any:
    module = importlib.import_module(library)
    return type("FailingStream", (_Failing, module.SyncByteStream, module.AsyncByteStream), {})


def _library(response: Any) -> str:
    return type(response).__module__.split(".")[0]


def _content(response: Any, raw: bytes) -> bytes:
    """The body as the SDK read it: `raw`, decoded as its `content-encoding` says."""
    encodings = response.headers.get_list("content-encoding", split_commas=True)
    if all(value.strip().lower() in ("", "identity") for value in encodings):
        return raw
    module = importlib.import_module(_library(response))
    try:
        decoded = module.Response(200, headers=response.headers, content=raw).content
    except Exception:  # a compressed stream cut short that does not decode: nothing came
        return b""
    return bytes(decoded)
