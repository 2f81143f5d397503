"""One LLM call over HTTP, whoever carries it (the SDK hook or the replay server):
serve it from the golden, or record the live answer.

Failed attempts (the rule): an attempt that fails the way clients retry — a 408/409/429/5xx
answer, or no answer at all (refused connection, timeout) — is recorded as a *provisional*
step: an `llm_call` with the error. When the client retries that same request (the SDKs
say so in `x-stainless-retry-count`; without that header, when no other step began since),
the retry takes the provisional step's place, so a call that finally succeeds is one
step, as if it had never failed, and a call whose every attempt failed is one step with
the last error. Replay mirrors it: a recorded failure is served to the first attempt and
again, with no new step, to every retry of the same request, so the SDK raises the same
exception after the same number of attempts. A stream whose connection fails after its
answer began (the SDK hook and the replay server pass streams on as they come:
intercept/tee.py, serve.py) is no such attempt: the SDKs retry none of it, and its step,
with what came and the error, is final.
"""

from __future__ import annotations

import json
import threading
import weakref
from dataclasses import dataclass, replace
from time import perf_counter
from typing import Any

from opswald.session import HTTP_HEADERS

RETRYABLE = frozenset({408, 409, 429}) | frozenset(range(500, 600))
TRANSPORT_ERROR = "transport_error"  # attribute of a step whose call got no HTTP answer
# The response headers a step keeps (attribute HTTP_HEADERS) and replay sends again: the
# request id the SDKs give the agent (`completion._request_id`, `APIStatusError.request_id`,
# `with_raw_response.headers`), and the server's word on retrying an error (which the SDKs
# follow: `x-should-retry: false` is one attempt). No other header is stored.
KEPT_HEADERS = ("x-request-id", "request-id", "x-should-retry")


def kept_headers(ctx: Any, headers: Any) -> dict[str, str]:
    """The KEPT_HEADERS of a live answer, redacted as all else recorded."""
    if headers is None:
        return {}
    kept = {name: headers.get(name) for name in KEPT_HEADERS}
    return {name: ctx.redactor(value) for name, value in kept.items() if isinstance(value, str)}


def _with_kept(step: Any, headers: dict[str, str]) -> dict[str, str]:
    """`headers` and the response headers the step kept (see KEPT_HEADERS)."""
    kept = (step.attributes or {}).get(HTTP_HEADERS)
    if not isinstance(kept, dict):
        return headers
    names = set(KEPT_HEADERS)
    return {**headers, **{k: v for k, v in kept.items() if k in names and isinstance(v, str)}}


RETRY_HEADER = "x-stainless-retry-count"


@dataclass(frozen=True, kw_only=True)
class Cut:
    """A stream that ended before its last event, as it may have: the agent closed it
    (or left it unread), or its connection failed with `error`."""

    error: BaseException | None = None


@dataclass(frozen=True, kw_only=True)
class Failure:
    """A failed attempt a retry of the same request may follow."""

    ticket: Any
    served: bool  # replay: serve the failure again; live: the retry takes its step


_FAILURES: weakref.WeakKeyDictionary[Any, dict[str, Failure]] = weakref.WeakKeyDictionary()
_LOCK = threading.Lock()


def _key(llm_request: dict[str, Any]) -> str:
    return json.dumps(llm_request, sort_keys=True, default=str)


def _note_failure(ctx: Any, llm_request: dict[str, Any], ticket: Any, *, served: bool) -> None:
    with _LOCK:
        _FAILURES.setdefault(ctx, {})[_key(llm_request)] = Failure(ticket=ticket, served=served)


def retry_of(ctx: Any, llm_request: dict[str, Any], headers: Any) -> Failure | None:
    """The failed attempt this request retries, if any (it is forgotten: the retry either
    succeeds or is noted as the failure in its turn)."""
    if not _FAILURES.get(ctx):  # the common case: nothing failed, no key to build
        return None
    key = _key(llm_request)
    with _LOCK:
        failures = _FAILURES.get(ctx) or {}
        failure = failures.get(key)
        if failure is None or not _is_retry(ctx, failure, headers):
            return None
        del failures[key]
    return failure


def _is_retry(ctx: Any, failure: Failure, headers: Any) -> bool:
    count = headers.get(RETRY_HEADER) if headers is not None else None
    if count is not None:  # the SDKs count their attempts: 0 is a new call
        return str(count).strip().isdigit() and int(str(count).strip()) > 0
    return bool(failure.ticket.number == len(ctx.steps))  # nothing else began since


def resume(failure: Failure) -> Any:
    """The ticket a live retry answers on: the failed attempt's step, timed afresh."""
    return replace(failure.ticket, started=perf_counter())


def transport_failure(step: Any) -> Any:
    """The recorded error of a step whose call got no HTTP answer (or whose stream's
    connection failed mid-way), else None."""
    if step is not None and step.error is not None and (step.attributes or {}).get(TRANSPORT_ERROR):
        return step.error
    return None


def failed_mid_stream(step: Any) -> bool:
    """The step's stream came in part, then its connection failed (STREAM_CUT)."""
    from opswald.session import STREAM_CONNECTION_FAILED, STREAM_CUT

    cut = (step.attributes or {}).get(STREAM_CUT) if step is not None else None
    return cut == STREAM_CONNECTION_FAILED and transport_failure(step) is not None


def closed_early(step: Any) -> bool:
    """The step's stream was closed by the agent before its last event (STREAM_CUT)."""
    from opswald.session import STREAM_CLOSED_EARLY, STREAM_CUT

    cut = (step.attributes or {}).get(STREAM_CUT) if step is not None else None
    return bool(cut == STREAM_CLOSED_EARLY and step.error is None)


def serve(
    ctx: Any,
    codec: Any,
    ticket: Any,
    llm_request: dict[str, Any],
    stream: bool,
    *,
    again: bool = False,
    mid_stream: bool = False,
) -> Any:
    """The recorded answer as wire bytes (a recorded HTTP error comes back as that error).

    `again`: a retry of a recorded failure, served without a new step. The answer is
    framed for the request as sent now (a JSON recording replayed as a stream, say).
    `mid_stream`: the caller fails a stream whose connection failed after what came
    where it failed (the SDK hook raises the recorded error, the replay server drops the
    connection): served is what came; else such a call is answered as one that got no
    answer."""
    from opswald.intercept.codecs.base import WireResponse

    step = ticket.served
    if not again:
        ctx.llm_served(ticket, llm_request)
    status = (step.attributes or {}).get("http_status")
    lost = transport_failure(step) is not None
    if lost and mid_stream and stream and failed_mid_stream(step):
        # what came, then the caller fails it there; the SDK retries none of it
        return _encoded(codec, step, stream, llm_request)
    if step.error is not None and (lost or status in RETRYABLE):
        _note_failure(ctx, llm_request, ticket, served=True)
    if lost:  # the SDK hook raises it; the server says 502
        return no_answer(step.error, replayed=True)
    if step.error is not None and isinstance(status, int):
        body = json.dumps(step.raw if step.raw is not None else {"error": step.error.message})
        # a replayed retry need not wait: the SDK's back-off is not the agent's time
        headers = {"content-type": "application/json", "retry-after-ms": "1"}
        return WireResponse(status=status, headers=_with_kept(step, headers), body=body.encode())
    wire = _encoded(codec, step, stream, llm_request)
    if step.error is not None and wire.status in RETRYABLE:
        # a stream that broke off, replayed to a call that no longer streams: its error,
        # served to every attempt as a recorded HTTP error is
        _note_failure(ctx, llm_request, ticket, served=True)
        wire = replace(wire, headers={**wire.headers, "retry-after-ms": "1"})
    return wire


def _encoded(codec: Any, step: Any, stream: bool, llm_request: dict[str, Any]) -> Any:
    wire = codec.encode(step, stream=stream, request=llm_request)
    return replace(wire, headers=_with_kept(step, wire.headers))


def record(
    ctx: Any,
    codec: Any,
    ticket: Any,
    llm_request: dict[str, Any],
    stream: bool,
    status: int,
    body: bytes,
    *,
    keep_failed: bool = False,
    headers: Any = None,
    cut: Cut | None = None,
) -> None:
    """Turn a live answer into a step. An attempt the client will retry leaves no step,
    or with `keep_failed` a provisional one (see the module docstring). Of its `headers`
    the step keeps KEPT_HEADERS. `cut`: a stream that stopped before its end as far as
    the reader knows (closed, failed); when its last event came after all it is whole."""
    if status in RETRYABLE and not keep_failed:
        ctx.withdraw(ticket)
        return
    kept = kept_headers(ctx, headers)
    if status >= 400:
        _http_error(ctx, ticket, llm_request, status, body, kept)
        if status in RETRYABLE:
            _note_failure(ctx, llm_request, ticket, served=False)
        return
    from opswald.session import STREAM_CHUNKS, STREAM_ERROR

    decoded = codec.decode(body, stream=stream, cut=cut is not None)
    if decoded.ended:  # its last event came: whatever closed it then took nothing away
        cut = None
    cost, source = decoded.cost, "provider" if decoded.cost is not None else None
    if cost is None and decoded.usage is not None:
        cost, source = _priced(ctx, decoded.model or llm_request.get("model"), decoded.usage)
    usage = decoded.usage
    if cut is not None:  # what the provider counts (and bills) of an answer cut short
        usage, cost, source = None, None, None
    attributes: dict[str, Any] = {}
    # the model asked for, as sent (a `model=` modification applied): the step records it
    sent_model = (getattr(ticket, "request", None) or llm_request).get("model")
    if decoded.model and decoded.model != sent_model:
        attributes["response_model"] = decoded.model
    chunks = _unredacted_chunks(ctx, decoded) if decoded.chunks else None
    if chunks:  # a stream: how its texts were cut, so that replay cuts them so
        attributes[STREAM_CHUNKS] = chunks
    attributes.update(decoded.attributes or {})
    if kept:
        attributes[HTTP_HEADERS] = kept
    error = None
    if decoded.error is not None:  # the stream broke off: what came, and the error event
        attributes[STREAM_ERROR] = decoded.error.body
        error = _stream_error(ctx, decoded.error.text)
    elif decoded.failure is not None:  # the API answered that the response failed
        error = _failed_response(ctx, decoded.failure)
    if cut is not None:
        attributes.update(_cut_attributes(cut))
        error = ctx.error_of(cut.error)
    ctx.llm_step(
        ticket,
        llm_request,
        output=decoded.output,
        usage=usage,
        cost=cost,
        cost_source=source,
        raw=decoded.raw if decoded.raw is not None else decoded.assembled,
        error=None,
        error_info=error,
        attributes=attributes or None,
    )


def _cut_attributes(cut: Cut) -> dict[str, Any]:
    """What a step says of a stream that ended before its last event (STREAM_CUT)."""
    from opswald.session import STREAM_CLOSED_EARLY, STREAM_CONNECTION_FAILED, STREAM_CUT

    if cut.error is None:
        return {STREAM_CUT: STREAM_CLOSED_EARLY}
    return {STREAM_CUT: STREAM_CONNECTION_FAILED, TRANSPORT_ERROR: True}


def _stream_error(ctx: Any, text: str) -> Any:
    """The step error of a stream that broke off: its error event, as an HTTP error is
    its status and body."""
    from opswald.intercept.codecs.base import STREAM_ERROR_TYPE
    from opswald.session import ErrorInfo

    return ErrorInfo(type=STREAM_ERROR_TYPE, message=ctx.redactor(f"stream error: {text[:500]}"))


def _failed_response(ctx: Any, message: str) -> Any:
    """The step error of a response the API answered as failed (HTTP 200): the SDK
    raises nothing, but the call did not give the agent an answer."""
    from opswald.intercept.codecs.base import RESPONSE_FAILED_TYPE
    from opswald.session import ErrorInfo

    return ErrorInfo(type=RESPONSE_FAILED_TYPE, message=ctx.redactor(message[:500]))


def _unredacted_chunks(ctx: Any, decoded: Any) -> dict[str, Any] | None:
    """The piece lengths of the streamed texts redaction leaves as they came: a text with
    a secret replaced would not add up (and its lengths would tell the secret's)."""
    from opswald import paths
    from opswald.intercept.codecs.base import sub

    body, chunks = decoded.assembled, decoded.chunks
    clean = ctx.redactor(body)
    if clean == body:
        return dict(chunks)
    kept = {}
    for path, lengths in chunks.items():
        keys = paths.parse(path)
        if sub(body, *keys) == sub(clean, *keys):
            kept[path] = lengths
    return kept or None


def failed(
    ctx: Any,
    ticket: Any,
    llm_request: dict[str, Any],
    error: Exception | None,
    *,
    error_info: Any = None,
) -> Any:
    """A live attempt that got no HTTP answer (refused, timed out): a provisional step
    with the error (or `error_info`, as the replay server words it), which replay raises
    again (same class) to the SDK, or the replay server answers with `no_answer`."""
    step = ctx.llm_failed(
        ticket, llm_request, error, error_info=error_info, attributes={TRANSPORT_ERROR: True}
    )
    _note_failure(ctx, llm_request, ticket, served=False)
    return step


def no_answer(error: Any, *, replayed: bool = False) -> Any:
    """The replay server's answer to a call that got no HTTP answer (its step's `error`),
    live and replayed alike: HTTP 502 with the error, which the SDKs retry; `replayed`,
    with no back-off asked for (the SDK's back-off is not the agent's time)."""
    from opswald.intercept.codecs.base import WireResponse

    body = json.dumps({"error": {"message": error.message, "type": error.type}})
    headers = {"content-type": "application/json"}
    if replayed:
        headers["retry-after-ms"] = "1"
    return WireResponse(status=502, headers=headers, body=body.encode())


def _http_error(
    ctx: Any,
    ticket: Any,
    llm_request: dict[str, Any],
    status: int,
    body: bytes,
    kept: dict[str, str] | None = None,
) -> None:
    from opswald.session import ErrorInfo

    text = body.decode("utf-8", "replace")
    try:
        raw: Any = json.loads(body)
    except ValueError:
        raw = {"error": text[:2000]}
    error = ErrorInfo(type="HTTPStatusError", message=ctx.redactor(f"HTTP {status}: {text[:500]}"))
    attributes: dict[str, Any] = {"http_status": status}
    if kept:
        attributes[HTTP_HEADERS] = kept
    ctx.llm_failed(ticket, llm_request, None, error_info=error, raw=raw, attributes=attributes)


def _priced(ctx: Any, model: str | None, usage: Any) -> tuple[float | None, str | None]:
    pricer = getattr(ctx, "prices", None)
    if pricer is None:
        return None, None
    cost, source = pricer.price(model, usage)
    return cost, source
