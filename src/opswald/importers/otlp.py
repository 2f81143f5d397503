"""OTLP JSON, the container both trace importers read (`otel` and `openinference`).

Accepted documents: an OTLP export request (`{"resourceSpans": [...]}` and/or
`{"resourceLogs": [...]}`, camelCase as the OTLP/JSON encoding writes it or snake_case as
`json_format.MessageToDict(..., preserving_proto_field_name=True)` does), JSON Lines of such
requests (a collector's file exporter), or a bare list of spans — OTLP span objects or the
OpenTelemetry SDK's `span.to_json()` form (what `ConsoleSpanExporter` prints).

Ids may be hex (the OTLP/JSON rule) or base64 (protobuf's generic JSON mapping); 64-bit
integers may be quoted or not; enums may be numbers or names. Everything is decoded into
plain `Span` and `LogRecord` values; a malformed document raises `ImportFormatError` naming
where (`resourceSpans[0].scopeSpans[0].spans[3].attributes[2]`).

The second half holds what both importers share once spans are mapped to steps: grouping
spans into sessions, errors from span status, and assembling the `Session`.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from opswald.importers import ImportFormatError, ImportResult
from opswald.session import ErrorInfo, Session

# -- decoded values ---------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class SpanEvent:
    """A span event (`exception`, `gen_ai.user.message`, ...)."""

    name: str
    time_ns: int | None
    attributes: dict[str, Any]


@dataclass(kw_only=True)
class Span:
    """One span, ids in lower-case hex, times in Unix nanoseconds."""

    trace_id: str
    span_id: str
    parent_id: str | None
    name: str
    kind: str | None  # INTERNAL, SERVER, CLIENT, PRODUCER, CONSUMER
    start_ns: int | None
    end_ns: int | None
    attributes: dict[str, Any]
    events: list[SpanEvent] = field(default_factory=list)
    status: str = "UNSET"  # UNSET, OK, ERROR
    status_message: str = ""
    resource: dict[str, Any] = field(default_factory=dict)
    scope: str | None = None
    where: str = ""  # its place in the document, for errors
    seq: int = 0  # position in the document: ties in start time keep document order

    @property
    def timestamp(self) -> str | None:
        return iso(self.start_ns)

    @property
    def duration_ms(self) -> float | None:
        if self.start_ns is None or self.end_ns is None or self.end_ns < self.start_ns:
            return None
        return round((self.end_ns - self.start_ns) / 1e6, 3)


@dataclass(frozen=True, kw_only=True)
class LogRecord:
    """A log record; GenAI producers emit events this way (`event_name` says which)."""

    trace_id: str | None
    span_id: str | None
    time_ns: int | None
    event_name: str | None
    attributes: dict[str, Any]
    body: Any


@dataclass(kw_only=True)
class Telemetry:
    spans: list[Span] = field(default_factory=list)
    logs: list[LogRecord] = field(default_factory=list)

    def logs_of(self) -> dict[str, list[LogRecord]]:
        """Log records by the span they were emitted in, in document order."""
        out: dict[str, list[LogRecord]] = {}
        for record in self.logs:
            if record.span_id:
                out.setdefault(record.span_id, []).append(record)
        return out


# -- reading ----------------------------------------------------------------------------


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)([A-Z])", r"_\1", name).lower()


def _get(obj: Mapping[str, Any], name: str, default: Any = None) -> Any:
    """`obj[name]`, accepting the snake_case spelling of a camelCase field too."""
    if name in obj:
        return obj[name]
    return obj.get(_snake(name), default)


def _fail(where: str, message: str) -> ImportFormatError:
    return ImportFormatError(f"{where}: {message}" if where else message)


def _list(value: Any, where: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise _fail(where, f"expected a list, got {type(value).__name__}")
    return value


def _dict(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _fail(where, f"expected an object, got {type(value).__name__}")
    return value


def read(data: Any) -> Telemetry:
    """Decode any accepted document shape (see the module docstring)."""
    out = Telemetry()
    if isinstance(data, dict):
        _read_request(data, "", out)
    elif isinstance(data, list):
        _read_list(data, out)
    else:
        raise _fail("", f"expected an OTLP JSON object or a list, got {type(data).__name__}")
    return out  # no spans: no traces, which `convert` says as for every format


def _read_list(items: list[Any], out: Telemetry) -> None:
    for index, item in enumerate(items):
        where = f"[{index}]"
        item = _dict(item, where)
        if _is_request(item):
            _read_request(item, f"document {index + 1}", out)
        elif "context" in item:
            out.spans.append(_sdk_span(item, where, len(out.spans)))
        elif any(k in item for k in ("spanId", "span_id", "traceId", "trace_id")):
            out.spans.append(_span(item, where, {}, None, len(out.spans)))
        else:
            raise _fail(where, "neither an OTLP document (resourceSpans) nor a span")


_REQUEST_KEYS = ("resourceSpans", "resource_spans", "resourceLogs", "resource_logs")


def _is_request(doc: dict[str, Any]) -> bool:
    return any(key in doc for key in _REQUEST_KEYS)


def _read_request(doc: dict[str, Any], where: str, out: Telemetry) -> None:
    prefix = f"{where}: " if where else ""
    if not _is_request(doc):
        raise _fail(where, "not an OTLP document: no resourceSpans or resourceLogs")
    for i, rs in enumerate(_list(_get(doc, "resourceSpans"), f"{prefix}resourceSpans")):
        at = f"{prefix}resourceSpans[{i}]"
        rs = _dict(rs, at)
        resource = _resource(rs, at)
        for j, ss in enumerate(_list(_get(rs, "scopeSpans"), f"{at}.scopeSpans")):
            sat = f"{at}.scopeSpans[{j}]"
            ss = _dict(ss, sat)
            scope = _scope_name(ss, sat)
            for k, span in enumerate(_list(_get(ss, "spans"), f"{sat}.spans")):
                span_at = f"{sat}.spans[{k}]"
                out.spans.append(_span(span, span_at, resource, scope, len(out.spans)))
    for i, rl in enumerate(_list(_get(doc, "resourceLogs"), f"{prefix}resourceLogs")):
        at = f"{prefix}resourceLogs[{i}]"
        rl = _dict(rl, at)
        for j, sl in enumerate(_list(_get(rl, "scopeLogs"), f"{at}.scopeLogs")):
            sat = f"{at}.scopeLogs[{j}]"
            sl = _dict(sl, sat)
            for k, record in enumerate(_list(_get(sl, "logRecords"), f"{sat}.logRecords")):
                out.logs.append(_log(record, f"{sat}.logRecords[{k}]"))


def _resource(container: dict[str, Any], where: str) -> dict[str, Any]:
    resource = _get(container, "resource")
    if resource is None:
        return {}
    return attributes(_get(_dict(resource, f"{where}.resource"), "attributes"), where)


def _scope_name(container: dict[str, Any], where: str) -> str | None:
    scope = _get(container, "scope") or _get(container, "instrumentationLibrary")
    if scope is None:
        return None
    name = _dict(scope, f"{where}.scope").get("name")
    return name if isinstance(name, str) else None


def _span(raw: Any, where: str, resource: dict[str, Any], scope: str | None, seq: int) -> Span:
    span = _dict(raw, where)
    trace_id = hex_id(_get(span, "traceId"), 16, f"{where}.traceId")
    span_id = hex_id(_get(span, "spanId"), 8, f"{where}.spanId")
    if trace_id is None or span_id is None:
        raise _fail(where, "a span needs a traceId and a spanId")
    status = _dict(_get(span, "status") or {}, f"{where}.status")
    return Span(
        trace_id=trace_id,
        span_id=span_id,
        parent_id=hex_id(_get(span, "parentSpanId"), 8, f"{where}.parentSpanId"),
        name=str(span.get("name") or ""),
        kind=_enum(span.get("kind"), _KINDS, "SPAN_KIND_", f"{where}.kind"),
        start_ns=nanos(_get(span, "startTimeUnixNano"), f"{where}.startTimeUnixNano"),
        end_ns=nanos(_get(span, "endTimeUnixNano"), f"{where}.endTimeUnixNano"),
        attributes=attributes(span.get("attributes"), where),
        events=[
            _event(e, f"{where}.events[{i}]")
            for i, e in enumerate(_list(span.get("events"), f"{where}.events"))
        ],
        status=_enum(status.get("code"), _CODES, "STATUS_CODE_", f"{where}.status.code") or "UNSET",
        status_message=str(status.get("message") or ""),
        resource=resource,
        scope=scope,
        seq=seq,
        where=where,
    )


def _event(raw: Any, where: str) -> SpanEvent:
    event = _dict(raw, where)
    return SpanEvent(
        name=str(event.get("name") or ""),
        time_ns=nanos(_get(event, "timeUnixNano"), f"{where}.timeUnixNano"),
        attributes=attributes(event.get("attributes"), where),
    )


def _log(raw: Any, where: str) -> LogRecord:
    record = _dict(raw, where)
    attrs = attributes(record.get("attributes"), where)
    name = _get(record, "eventName") or attrs.get("event.name")
    time_ns = nanos(_get(record, "timeUnixNano"), f"{where}.timeUnixNano")
    if not time_ns:
        time_ns = nanos(_get(record, "observedTimeUnixNano"), f"{where}.observedTimeUnixNano")
    body = _get(record, "body")
    return LogRecord(
        trace_id=hex_id(_get(record, "traceId"), 16, f"{where}.traceId"),
        span_id=hex_id(_get(record, "spanId"), 8, f"{where}.spanId"),
        time_ns=time_ns,
        event_name=name if isinstance(name, str) else None,
        attributes=attrs,
        body=any_value(body, f"{where}.body") if body is not None else None,
    )


def _sdk_span(span: dict[str, Any], where: str, seq: int) -> Span:
    """The SDK's `ReadableSpan.to_json()` form: `context`, ISO times, plain attributes."""
    context = _dict(span.get("context"), f"{where}.context")
    trace_id = hex_id(context.get("trace_id"), 16, f"{where}.context.trace_id")
    span_id = hex_id(context.get("span_id"), 8, f"{where}.context.span_id")
    if trace_id is None or span_id is None:
        raise _fail(f"{where}.context", "a span needs a trace_id and a span_id")
    status = _dict(span.get("status") or {}, f"{where}.status")
    kind = str(span.get("kind") or "").rsplit(".", 1)[-1] or None
    resource = _dict(span.get("resource") or {}, f"{where}.resource")
    return Span(
        trace_id=trace_id,
        span_id=span_id,
        parent_id=hex_id(span.get("parent_id"), 8, f"{where}.parent_id"),
        name=str(span.get("name") or ""),
        kind=kind,
        start_ns=_iso_nanos(span.get("start_time"), f"{where}.start_time"),
        end_ns=_iso_nanos(span.get("end_time"), f"{where}.end_time"),
        attributes=dict(_dict(span.get("attributes") or {}, f"{where}.attributes")),
        events=[
            SpanEvent(
                name=str(_dict(e, f"{where}.events[{i}]").get("name") or ""),
                time_ns=_iso_nanos(e.get("timestamp"), f"{where}.events[{i}].timestamp"),
                attributes=dict(e.get("attributes") or {}),
            )
            for i, e in enumerate(_list(span.get("events"), f"{where}.events"))
        ],
        status=str(status.get("status_code") or "UNSET").upper(),
        status_message=str(status.get("description") or ""),
        resource=dict(resource.get("attributes") or {}),
        seq=seq,
        where=where,
    )


_KINDS = ("UNSPECIFIED", "INTERNAL", "SERVER", "CLIENT", "PRODUCER", "CONSUMER")
_CODES = ("UNSET", "OK", "ERROR")


def _enum(value: Any, names: tuple[str, ...], prefix: str, where: str) -> str | None:
    """An OTLP enum given as its number (the OTLP/JSON rule) or its name."""
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < len(names):
        return None if names[value] == "UNSPECIFIED" else names[value]
    if isinstance(value, str):
        name = value.upper().removeprefix(prefix)
        if name in names:
            return None if name == "UNSPECIFIED" else name
    raise _fail(where, f"unknown value {value!r} (expected one of {', '.join(names)})")


def hex_id(value: Any, size: int, where: str) -> str | None:
    """A trace (16 bytes) or span (8 bytes) id as lower-case hex; None when empty or zero."""
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise _fail(where, f"expected an id string, got {type(value).__name__}")
    text = value.lower().removeprefix("0x")
    if len(text) == 2 * size and all(c in "0123456789abcdef" for c in text):
        return None if set(text) == {"0"} else text
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) == size:
        return None if not any(raw) else raw.hex()
    raise _fail(where, f"{value!r} is not a {size}-byte id (hex or base64)")


def nanos(value: Any, where: str) -> int | None:
    """A fixed64 nanosecond time, quoted (the JSON rule for 64-bit ints) or not."""
    if value is None or value == "":
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    raise _fail(where, f"expected nanoseconds since the epoch, got {value!r}")


def _iso_nanos(value: Any, where: str) -> int | None:
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        raise _fail(where, f"expected an ISO time, got {value!r}") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    delta = moment - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1000


def iso(ns: int | None) -> str | None:
    """Unix nanoseconds as the ISO form steps use (`2025-01-31T10:00:00.123Z`)."""
    if ns is None:
        return None
    moment = datetime.fromtimestamp(ns / 1e9, tz=UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


# -- AnyValue ---------------------------------------------------------------------------


def attributes(items: Any, where: str) -> dict[str, Any]:
    """OTLP `[{"key": ..., "value": AnyValue}]` as a dict (a plain mapping is taken as is)."""
    if items is None:
        return {}
    if isinstance(items, dict):
        return dict(items)
    out: dict[str, Any] = {}
    for index, item in enumerate(_list(items, f"{where}.attributes")):
        at = f"{where}.attributes[{index}]"
        item = _dict(item, at)
        key = item.get("key")
        if not isinstance(key, str):
            raise _fail(at, "an attribute needs a string key")
        value = item.get("value")
        out[key] = None if value is None else any_value(value, f"{at}.value")
    return out


_SCALARS = ("stringValue", "boolValue", "intValue", "doubleValue", "bytesValue")


def any_value(value: Any, where: str) -> Any:
    """Decode an OTLP AnyValue: scalars, arrayValue as a list, kvlistValue as a dict."""
    if not isinstance(value, dict):
        raise _fail(where, f"expected an AnyValue object, got {type(value).__name__}")
    if not value:
        return None
    for name in _SCALARS:
        for key in (name, _snake(name)):
            if key in value:
                return _scalar(name, value[key], where)
    for key in ("arrayValue", "array_value"):
        if key in value:
            items = _get(_dict(value[key] or {}, f"{where}.{key}"), "values")
            return [
                any_value(v, f"{where}.{key}.values[{i}]")
                for i, v in enumerate(_list(items, f"{where}.{key}.values"))
            ]
    for key in ("kvlistValue", "kvlist_value"):
        if key in value:
            items = _get(_dict(value[key] or {}, f"{where}.{key}"), "values")
            return attributes(_list(items, f"{where}.{key}.values"), f"{where}.{key}")
    raise _fail(
        where,
        f"unknown AnyValue {sorted(value)} (expected stringValue, boolValue, intValue, "
        "doubleValue, bytesValue, arrayValue or kvlistValue)",
    )


def _scalar(kind: str, raw: Any, where: str) -> Any:
    if kind == "stringValue" and isinstance(raw, str):
        return raw
    if kind == "boolValue" and isinstance(raw, bool):
        return raw
    if kind == "intValue":
        if isinstance(raw, int) and not isinstance(raw, bool):
            return raw
        if isinstance(raw, str) and re.fullmatch(r"-?\d+", raw.strip()):
            return int(raw)
    if kind == "doubleValue":
        if isinstance(raw, int | float) and not isinstance(raw, bool):
            return float(raw)
        if isinstance(raw, str):
            try:
                return float(raw)
            except ValueError:
                pass
    if kind == "bytesValue" and isinstance(raw, str):
        return raw  # base64, kept as the text the document carries
    raise _fail(where, f"{kind} {raw!r} is not a valid {kind[:-5]}")


# -- values inside attributes -----------------------------------------------------------


def json_value(value: Any, *, any_json: bool = False) -> Any:
    """A JSON string attribute decoded; objects and arrays only unless `any_json`
    (a tool that returned the text "42" keeps returning text)."""
    if not isinstance(value, str):
        return value
    text = value.strip()
    if not any_json and not text.startswith(("{", "[")):
        return value
    try:
        parsed = json.loads(text)
    except ValueError:
        return value
    return parsed if any_json or isinstance(parsed, dict | list) else value


def pattern(key: str) -> str:
    """An attribute name with its indices as `*`: `llm.input_messages.*.message.role`."""
    return re.sub(r"(?<=\.)\d+(?=\.|$)", "*", key)


def as_int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and re.fullmatch(r"-?\d+", value.strip()):
        return int(value)
    return None


def as_float(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


# -- span trees and grouping ------------------------------------------------------------


def ancestors(span: Span, by_id: Mapping[str, Span]) -> Iterator[Span]:
    """The span's parents, nearest first (cycles in a broken document end the walk)."""
    seen = {span.span_id}
    parent = by_id.get(span.parent_id or "")
    while parent is not None and parent.span_id not in seen:
        yield parent
        seen.add(parent.span_id)
        parent = by_id.get(parent.parent_id or "")


def group(spans: Iterable[Span], session_key: str) -> list[tuple[str, bool, list[Span]]]:
    """Spans per session: by the `session_key` attribute when a span of the trace has one
    (traces sharing it merge), else per trace. Returns (id, is_session_id, spans)."""
    by_trace: dict[str, list[Span]] = {}
    for span in spans:
        by_trace.setdefault(span.trace_id, []).append(span)
    groups: dict[tuple[str, bool], list[Span]] = {}
    for trace_id, members in by_trace.items():
        own = next((str(s.attributes[session_key]) for s in members if _has(s, session_key)), None)
        for span in members:
            key = (str(span.attributes[session_key]), True) if _has(span, session_key) else None
            key = key or ((own, True) if own is not None else (trace_id, False))
            groups.setdefault(key, []).append(span)
    return [(key, flag, members) for (key, flag), members in groups.items()]


def _has(span: Span, key: str) -> bool:
    return span.attributes.get(key) not in (None, "")


# -- errors -----------------------------------------------------------------------------

_CLASS_REPR = re.compile(r"^<class '([^']+)'>$")
_STATUS_IN_MESSAGE = re.compile(r"\bError code: (\d{3})\b")
# The openai and anthropic SDKs' exception classes, for traces that name only the class.
_SDK_STATUS = {
    "BadRequestError": 400,
    "AuthenticationError": 401,
    "PermissionDeniedError": 403,
    "NotFoundError": 404,
    "ConflictError": 409,
    "UnprocessableEntityError": 422,
    "RateLimitError": 429,
    "InternalServerError": 500,
    "OverloadedError": 529,
}


def text(span: Span, attrs: dict[str, Any], *keys: str) -> str | None:
    """The first of `keys` set in `attrs` (a span's attributes): a name, model or id, which
    must be a string; another value is a malformed document, an error naming the span."""
    for key in keys:
        value = attrs.get(key)
        if value is None or value == "":
            continue
        if not isinstance(value, str):
            raise _fail(
                span.where,
                f"attribute {key}: expected a string, got {type(value).__name__} {value!r}",
            )
        return value
    return None


def span_error(span: Span, error_type_key: str = "error.type") -> ErrorInfo | None:
    """The span's error: the `exception` event if any, else `error.type` + status message."""
    declared = span.attributes.get(error_type_key)
    if span.status != "ERROR" and declared in (None, ""):
        return None
    exception = next((e for e in span.events if e.name == "exception"), None)
    attrs = exception.attributes if exception else {}
    name = str(attrs.get("exception.type") or declared or "Error")
    if name == "_OTHER":
        name = "Error"
    if name == "Error" and not attrs.get("exception.message"):
        # The SDK's status for an exception that escaped the span is `Type: message`; the
        # type is what a replay raises again (a golden expecting `Error` could never pass).
        from opswald.importers._messages import exception_line

        found = exception_line(span.status_message.strip())
        if found is not None:
            return found
    matched = _CLASS_REPR.match(name)
    name = matched.group(1) if matched else name
    module, _, short = name.rpartition(".")
    message = str(attrs.get("exception.message") or span.status_message or "")
    if message.startswith(f"{short}: "):
        message = message[len(short) + 2 :]
    return ErrorInfo(type=short or "Error", message=message, module=module or None)


def http_status(span: Span) -> int | None:
    """The HTTP status a span carries (`http.response.status_code`), if any."""
    return as_int(span.attributes.get("http.response.status_code"))


def status_of(error: ErrorInfo) -> int | None:
    """The HTTP status a failed model call's error shows (`Error code: 429 - ...`, or an
    SDK's exception class for one), for traces that carry no status of their own."""
    found = _STATUS_IN_MESSAGE.search(error.message)
    if found:
        return int(found.group(1))
    return _SDK_STATUS.get(error.type)


def failed_call(
    provider: str | None,
    error: ErrorInfo | None,
    attributes: dict[str, Any],
    status: int | None = None,
) -> dict[str, Any] | None:
    """For a model call that failed with an HTTP status (`status`, the trace's own, else
    the one its error shows): that status put in `attributes` (`http_status`) and the error
    body to serve, so that its replay raises the SDK's error for it, as a recorded one
    does; None (and `attributes` unchanged) otherwise."""
    if error is None:
        return None
    status = status if status is not None else status_of(error)
    if status is None:
        return None
    attributes["http_status"] = status
    return error_body(provider, error)


def error_body(provider: str | None, error: ErrorInfo) -> dict[str, Any]:
    """An error body in the provider's shape, so the SDK raises what it raised then: the
    body the message quotes when it quotes one (`Error code: 429 - {'error': {'message':
    ..., 'type': 'requests', 'code': 'rate_limit_exceeded'}}`, as the SDKs word it), so that
    `e.code` and `e.type` are what they were; else one around the message."""
    text = re.sub(r"^Error code: \d{3} - ", "", error.message)
    quoted = _quoted_body(text)
    if quoted is not None:
        return quoted
    if provider == "anthropic":
        return {"type": "error", "error": {"type": "api_error", "message": text}}
    return {"error": {"message": text, "type": None, "param": None, "code": None}}


def _quoted_body(text: str) -> dict[str, Any] | None:
    """The error body an SDK's message quotes (a Python dict's repr, or JSON), when it is
    one in the shape the SDKs read (`{"error": {...}}`); else None."""
    text = text.strip()
    if not text.startswith("{") or len(text) > 100_000:
        return None
    import ast

    body: Any = None
    try:
        body = json.loads(text)
    except ValueError:
        try:
            body = ast.literal_eval(text)  # literals only: nothing in it is run
        except (ValueError, SyntaxError, MemoryError, RecursionError):
            return None
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        from opswald.jsonable import to_jsonable

        plain = to_jsonable(body)
        return plain if isinstance(plain, dict) else None
    return None


# -- assembling a session ---------------------------------------------------------------


@dataclass(kw_only=True)
class Found:
    """A step found in the trace, before steps are numbered."""

    start_ns: int
    seq: int
    fields: dict[str, Any]  # a step's fields, without `step`
    after: int = 0  # a step placed after the one at (start_ns, seq): its 1st, 2nd, ...


@dataclass(kw_only=True)
class Turn:
    """A top-level agent invocation: its input and output, when the trace has them."""

    start_ns: int
    seq: int
    input: Any = None
    has_input: bool = False
    output: Any = None
    has_output: bool = False
    error: ErrorInfo | None = None


@dataclass(kw_only=True)
class Draft:
    """Everything a format module found for one session."""

    fmt: str
    session_id: str
    is_conversation: bool
    spans: list[Span]
    found: list[Found] = field(default_factory=list)
    turns: list[Turn] = field(default_factory=list)
    agent: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    expect: dict[str, Any] | None = None


def assemble(draft: Draft, result: ImportResult) -> Session:
    """Order the steps by start time, number them, and fill the session fields."""
    turns = sorted(draft.turns, key=lambda t: (t.start_ns, t.seq))
    found = list(draft.found)
    with_input = [t for t in turns if t.has_input]
    for turn in with_input[1:]:  # later turns of a conversation: the user spoke again
        found.append(
            Found(
                start_ns=turn.start_ns,
                seq=-1,
                fields={
                    "type": "user_input",
                    "content": turn.input,
                    "timestamp": iso(turn.start_ns),
                },
            )
        )
    if not any(f.fields.get("type") == "tool_call" for f in found):
        found += conversation_tools(found, result)
    found.sort(key=lambda f: (f.start_ns, f.seq, f.after))
    steps = [{"step": n, **f.fields} for n, f in enumerate(found, start=1)]
    with_output = [t for t in turns if t.has_output]
    data: dict[str, Any] = {
        "name": _name(draft),
        "description": _description(draft),
        "session_id": draft.session_id,
        "agent": draft.agent,
        "metadata": {**draft.metadata, "imported": _provenance(draft)},
        "input": with_input[0].input if with_input else _first_user_text(steps),
        "steps": steps,
        "output": with_output[-1].output if with_output else _last_llm_text(steps),
        "error": next((t.error for t in reversed(turns) if t.error is not None), None),
    }
    if draft.expect:
        data["expect"] = draft.expect
    return Session.model_validate(data)  # without steps it is an error (ImportResult.add)


def conversation_tools(found: list[Found], result: ImportResult) -> list[Found]:
    """`tool_call` steps rebuilt from the conversation, for a trace without tool spans.

    Instrumentations of the model SDKs alone (`opentelemetry-instrumentation-openai-v2`,
    `openinference-instrumentation-openai`) trace no tool spans, yet the agent's tools ran
    between its model calls: an `@opswald.tool` tool replayed against a golden without them
    is an unexpected call. A tool call one model call asked for (an assistant message's tool
    call) and a later model call answered (the tool message with the same id) becomes a step
    between the two, its name, arguments and answer taken from the messages.
    """
    calls = sorted((f for f in found if f.fields.get("type") == "llm_call"), key=_order)
    asked: dict[str, tuple[Any, Any]] = {}  # call id -> (name, arguments)
    done: set[str] = set()
    out: list[Found] = []
    for k, call in enumerate(calls):
        messages = (call.fields.get("input") or {}).get("messages") or []
        for message in messages:
            asked.update(_asked(message))
        placed = 0
        for call_id, answer in _answered(messages):
            if call_id in done:
                continue  # already a step: later calls repeat the conversation
            done.add(call_id)
            if k == 0 or call_id not in asked:
                continue  # asked and answered before the trace began
            before = calls[k - 1]
            name, arguments = asked[call_id]
            placed += 1
            out.append(
                Found(
                    start_ns=before.start_ns,
                    seq=before.seq,
                    after=placed,
                    fields={
                        "type": "tool_call",
                        "timestamp": _end(before),
                        "tool": str(name or "tool"),
                        "call_id": call_id,
                        "input": arguments,
                        "output": json_value(answer),
                    },
                )
            )
        for tool_call in (call.fields.get("output") or {}).get("tool_calls") or []:
            if isinstance(tool_call, dict) and isinstance(tool_call.get("id"), str):
                asked[tool_call["id"]] = (tool_call.get("name"), tool_call.get("arguments"))
    if out:
        result.mapped["tool call from the conversation (no tool spans)"] += len(out)
    unanswered = len(asked.keys() - done)
    if unanswered:
        result.skipped["tool call never answered in the trace (no tool_call step)"] += unanswered
    return out


def _order(found: Found) -> tuple[int, int]:
    return found.start_ns, found.seq


def _end(found: Found) -> str | None:
    duration = found.fields.get("duration_ms")
    if not found.start_ns or not isinstance(duration, int | float):
        return iso(found.start_ns or None)
    return iso(found.start_ns + int(duration * 1_000_000))


def _asked(message: Any) -> dict[str, tuple[Any, Any]]:
    """The tool calls of an assistant message (Chat Completions or Anthropic wire form)."""
    out: dict[str, tuple[Any, Any]] = {}
    if not isinstance(message, dict) or message.get("role") != "assistant":
        return out
    for tool_call in message.get("tool_calls") or []:  # Chat Completions
        if isinstance(tool_call, dict) and isinstance(tool_call.get("id"), str):
            function = tool_call.get("function") or {}
            arguments = function.get("arguments")
            out[tool_call["id"]] = (function.get("name"), json_value(arguments))
    content = message.get("content")
    for block in content if isinstance(content, list) else []:  # Anthropic
        if isinstance(block, dict) and block.get("type") == "tool_use":
            if isinstance(block.get("id"), str):
                out[block["id"]] = (block.get("name"), block.get("input"))
    return out


def _answered(messages: list[Any]) -> Iterator[tuple[str, Any]]:
    """(call id, answer) of the tool messages (Chat Completions `tool` messages, Anthropic
    `tool_result` blocks), in order; an answer in text blocks is their text."""
    for message in messages:
        if not isinstance(message, dict):
            continue
        if message.get("role") == "tool" and isinstance(message.get("tool_call_id"), str):
            yield message["tool_call_id"], _block_text(message.get("content"))
        content = message.get("content")
        for block in content if isinstance(content, list) else []:
            if isinstance(block, dict) and block.get("type") == "tool_result":
                if isinstance(block.get("tool_use_id"), str):
                    yield block["tool_use_id"], _block_text(block.get("content"))


def _block_text(content: Any) -> Any:
    if isinstance(content, list) and all(
        isinstance(b, dict) and b.get("type") == "text" for b in content
    ):
        return "".join(str(b.get("text") or "") for b in content)
    return content


def _provenance(draft: Draft) -> dict[str, Any]:
    traces = sorted({s.trace_id for s in draft.spans})
    services = sorted(
        {str(s.resource["service.name"]) for s in draft.spans if s.resource.get("service.name")}
    )
    out: dict[str, Any] = {"format": draft.fmt, "trace_ids": traces}
    if services:
        out["services"] = services
    return out


def _name(draft: Draft) -> str:
    roots = [s for s in draft.spans if s.parent_id is None] or draft.spans
    label = draft.agent or min(roots, key=lambda s: (s.start_ns or 0, s.seq)).name or "trace"
    slug = re.sub(r"[^A-Za-z0-9]+", "_", label).strip("_").lower() or "trace"
    return f"{slug}_{re.sub(r'[^A-Za-z0-9]+', '', draft.session_id)[:8]}"


def _description(draft: Draft) -> str:
    what = "conversation" if draft.is_conversation else "trace"
    source = {"otel": "OpenTelemetry GenAI", "openinference": "OpenInference"}.get(draft.fmt)
    return f"Imported from {source or draft.fmt} {what} {draft.session_id}"


def _first_user_text(steps: list[dict[str, Any]]) -> Any:
    for step in steps:
        if step.get("type") != "llm_call":
            continue
        for message in (step.get("input") or {}).get("messages") or []:
            if isinstance(message, dict) and message.get("role") == "user":
                return text_of(message.get("content"))
    return None


def _last_llm_text(steps: list[dict[str, Any]]) -> Any:
    for step in reversed(steps):
        output = step.get("output") if step.get("type") == "llm_call" else None
        if isinstance(output, dict) and output.get("content") is not None:
            return output["content"]
    return None


def text_of(content: Any) -> Any:
    """Message content as one text when it is text (a string, or text parts)."""
    if isinstance(content, list):
        texts = [p.get("text") for p in content if isinstance(p, dict)]
        if texts and all(isinstance(t, str) for t in texts):
            return "".join(t for t in texts if isinstance(t, str))
    return content
