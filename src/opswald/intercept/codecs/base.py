"""What every codec shares: the wire/normalised value types, the protocol, small helpers."""

from __future__ import annotations

import datetime as dt
import json
import re
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from opswald.pricing import cost_problem
from opswald.redact import url_param_label
from opswald.session import (
    STREAM_CHUNKS,
    STREAM_CUT,
    STREAM_ERROR,
    LLMCallStep,
    LLMOutput,
    Usage,
)

JSON_HEADERS = {"content-type": "application/json"}
SSE_HEADERS = {"content-type": "text/event-stream; charset=utf-8", "cache-control": "no-cache"}


@dataclass(frozen=True, kw_only=True)
class WireResponse:
    """An HTTP response as the SDK will receive it."""

    status: int
    headers: dict[str, str]
    body: bytes


@dataclass(frozen=True, kw_only=True)
class Decoded:
    """A provider response in the golden's vocabulary."""

    output: LLMOutput
    usage: Usage | None
    cost: float | None
    raw: Any
    model: str | None
    # a stream has no body (raw is None): the body the API would have sent without
    # streaming, assembled from its events, so replay keeps ids and details either way
    assembled: Any = None
    # a stream: the lengths of the pieces each text came in, by its path in `assembled`
    # (and for Chat Completions with `n` > 1, under `choices`, the order its choices'
    # chunks came in when it was not one choice after the other)
    chunks: dict[str, Any] | None = None
    # a stream that broke off with an error event: its data (the call failed, what came
    # before it is the answer so far)
    error: StreamError | None = None
    # a response the API answered as failed (a Responses `status: "failed"`, streamed as
    # `response.failed`): the step error's message. Not a stream that broke off: the
    # answer is whole, and replays as it came
    failure: str | None = None
    # what else the step keeps of how the stream came (STREAM_USAGE)
    attributes: dict[str, Any] | None = None
    # a stream: its last event came (`[DONE]`, `message_stop`, the final lifecycle event,
    # or an error event). One the agent closed before that, or whose connection failed,
    # did not end; a JSON answer is whole
    ended: bool = True


@dataclass(frozen=True, kw_only=True)
class StreamError:
    """The error event a stream ended with: its data as JSON (its text when it is not
    JSON) and the text it came as."""

    body: Any
    text: str

    @classmethod
    def of(cls, data: str) -> StreamError:
        try:
            body: Any = json.loads(data)
        except ValueError:
            body = data
        return cls(body=body, text=data)


STREAM_ERROR_TYPE = "StreamError"  # the `error.type` of a step whose stream broke off
RESPONSE_FAILED_TYPE = "ResponseFailed"  # the `error.type` of a response that failed


def failure_message(error: Any) -> str:
    """What a step says of a response that failed with the `error` object it carries
    (`{code, message}`; null when the API gave none)."""
    said = [sub(error, key) for key in ("code", "message")]
    return ": ".join(["response failed", *(str(s) for s in said if s not in (None, ""))])


def stream_error(step: LLMCallStep) -> tuple[Any] | None:
    """(the error event's data,) of a step whose stream broke off with one, else None."""
    attributes = step.attributes or {}
    if step.error is None or STREAM_ERROR not in attributes:
        return None
    return (attributes[STREAM_ERROR],)


def stream_cut(step: LLMCallStep) -> tuple[Any, ...] | None:
    """How a replayed stream ends before its last event, if it does: (the error event's
    data,) for one that broke off with an error event; () for one the agent closed early
    or whose connection failed (STREAM_CUT: what came, then nothing more); None for a
    stream that ended."""
    broke = stream_error(step)
    if broke is not None:
        return broke
    return () if STREAM_CUT in (step.attributes or {}) else None


# The HTTP status of an error type: a stream that broke off, replayed to a call that no
# longer streams, is answered as the error it reported (the API's own table; others 500)
_ERROR_STATUS = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "permission_error": 403,
    "not_found_error": 404,
    "request_too_large": 413,
    "rate_limit_error": 429,
    "rate_limit_exceeded": 429,
    "api_error": 500,
    "server_error": 500,
    "overloaded_error": 529,
}


def error_response(body: Any) -> WireResponse:
    """A stream's error event as the HTTP error a call without streaming gets."""
    kind = sub(body, "error", "type") or sub(body, "error", "code") or sub(body, "code")
    status = _ERROR_STATUS.get(kind, 500) if isinstance(kind, str) else 500
    text = body if isinstance(body, str) else json.dumps(body, ensure_ascii=False)
    return WireResponse(status=status, headers=dict(JSON_HEADERS), body=text.encode())


class Codec(Protocol):
    """Translates one provider API between HTTP wire data and normalised `llm_call` fields."""

    provider: str
    api: str

    def handles(self, method: str, path: str) -> bool: ...

    def request(self, body: Any) -> dict[str, Any]: ...

    def header_params(self, headers: Mapping[str, str]) -> dict[str, Any]:
        """Request parameters the headers carry (`headers`: names in lowercase)."""
        ...

    def is_stream(self, body: Any) -> bool: ...

    def decode(self, body: bytes, *, stream: bool, cut: bool = False) -> Decoded:
        """The answer in the golden's vocabulary; `cut`: a stream that may have ended
        before its last event (the agent closed it, its connection failed), decoded as
        far as it came."""
        ...

    def encode(
        self, step: LLMCallStep, *, stream: bool, request: dict[str, Any] | None = None
    ) -> WireResponse:
        """The step as the SDK receives it; `request` is the engine request being answered,
        when known (what it asks for may shape the answer, e.g. a usage chunk)."""
        ...


# -- requests -------------------------------------------------------------------------------


def path_ends_with(path: str, suffix: str) -> bool:
    """`/openai/v1/chat/completions/` ends with `/chat/completions` (query ignored)."""
    clean = "/" + path.split("?", 1)[0].strip("/")
    return clean.endswith(suffix)


# `/openai/deployments/{deployment}/chat/completions`: on Azure OpenAI the deployment in
# the path selects the model (the body's `model` is not read)
_DEPLOYMENT = re.compile(r"/deployments/([^/?#]+)/")
DEPLOYMENT_PARAM = "azure_deployment"  # in engine.normalize.CARRIED_PARAMS too
QUERY_PARAM = "query"  # likewise


def _unrecorded(name: str, value: str) -> bool:
    """Query parameters that say nothing about what is asked: Azure's `api-version` (the
    client's, documented as not recorded) and the `beta=true` the anthropic SDK's beta
    namespace adds (the betas themselves come in a header: see `header_params`)."""
    return name == "api-version" or (name, value) == ("beta", "true")


def url_params(path: str) -> dict[str, Any]:
    """Request parameters the URL carries rather than the body: `azure_deployment`, the
    deployment of an Azure OpenAI path (named as the SDK's `azure_deployment=`), and
    `query`, the query's parameters (an agent's `extra_query=`; a name given more than
    once has the list of its values)."""
    route, _, query = path.partition("?")
    found = _DEPLOYMENT.search(route)
    params: dict[str, Any] = (
        {DEPLOYMENT_PARAM: urllib.parse.unquote(found.group(1))} if found else {}
    )
    pairs = urllib.parse.parse_qsl(query.partition("#")[0], keep_blank_values=True)
    values: dict[str, Any] = {}
    for name, said in pairs:
        if _unrecorded(name, said):
            continue
        # a credential by its name, hidden as in the URL's text (a mapping's `key` is not)
        label = url_param_label(name)
        value = said if label is None else f"<redacted:{label}>"
        if name in values:
            held = values[name]
            values[name] = [*held, value] if isinstance(held, list) else [held, value]
        else:
            values[name] = value
    if values:
        params[QUERY_PARAM] = values
    return params


def is_post_to(method: str, path: str, suffix: str) -> bool:
    return method.upper() == "POST" and path_ends_with(path, suffix)


def wants_stream(body: Any) -> bool:
    return isinstance(body, dict) and body.get("stream") is True


def request_dict(
    codec: Codec, body: Any, messages: list[Any] | None, tools: Any, used: set[str]
) -> dict[str, Any]:
    """The engine's request: the body's remaining keys (minus `stream`) become params."""
    data = body if isinstance(body, dict) else {}
    # the body was just parsed from the wire and is never mutated: no copies needed
    params = {k: v for k, v in data.items() if k not in used | {"stream"}}
    return {
        "provider": codec.provider,
        "api": codec.api,
        "model": data.get("model"),
        "input": {
            "messages": messages,
            "tools": tools,
            "params": params or None,
        },
    }


def system_message(content: Any) -> dict[str, Any]:
    return {"role": "system", "content": content}


# -- JSON and tool-call arguments -----------------------------------------------------------


def load_json(body: bytes, what: str) -> Any:
    """Parse a JSON response body; a clear ValueError when it is not JSON."""
    try:
        return json.loads(body)
    except ValueError as exc:
        raise ValueError(f"{what}: response body is not JSON ({exc})") from None


def parse_arguments(value: Any) -> Any:
    """Tool-call arguments as data: a JSON string is parsed, anything else kept as is."""
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def dump_arguments(value: Any) -> str:
    """Arguments as the JSON string OpenAI sends (a string that was not JSON stays itself)."""
    if isinstance(value, str):
        return value
    return json.dumps({} if value is None else value, ensure_ascii=False)


def tool_call_parts(call: Any, fallback_id: str) -> tuple[str, str, Any]:
    """(id, name, arguments) of a normalised tool call; tolerates OpenAI-shaped imports."""
    if not isinstance(call, dict):
        return fallback_id, str(call), None
    function: dict[str, Any] = call["function"] if isinstance(call.get("function"), dict) else {}
    name = call.get("name") or function.get("name") or ""
    if "arguments" in call:
        args = call["arguments"]
    elif "input" in call:
        args = call["input"]
    else:
        args = function.get("arguments")
    call_id = call.get("id") or call.get("call_id") or fallback_id
    return str(call_id), str(name), parse_arguments(args)


def text_of(content: Any) -> str | None:
    """Normalised content as the one text a response carries (lists of parts are joined)."""
    if content is None or isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = [p if isinstance(p, str) else p.get("text") for p in content if _texty(p)]
        return "".join(p for p in parts if isinstance(p, str))
    return json.dumps(content, ensure_ascii=False)


def _texty(part: Any) -> bool:
    return isinstance(part, str) or (isinstance(part, dict) and isinstance(part.get("text"), str))


def joined(texts: list[str]) -> str | None:
    """Concatenated text parts; None when there is no text at all."""
    return "".join(texts) or None


# -- usage and cost -------------------------------------------------------------------------


def as_int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def sub(data: Any, *keys: str | int) -> Any:
    """`data[k1][k2]...` through dicts and lists, or None as soon as a level is missing."""
    for key in keys:
        if isinstance(data, dict):
            data = data.get(key)
        elif isinstance(data, list) and isinstance(key, int) and -len(data) <= key < len(data):
            data = data[key]
        else:
            return None
    return data


def make_usage(**fields: int | None) -> Usage | None:
    """A Usage, or None when the provider reported no counts at all."""
    if all(v is None for v in fields.values()):
        return None
    return Usage(**fields)


def reported_cost(data: Any) -> float | None:
    """A cost the provider put in the body (`usage.cost`, as OpenRouter does, or `cost`).
    One that is no cost (a string, below 0, `Infinity`) is the provider's oddity, not the
    agent's: it is left out and the call priced as one without it."""
    for value in (sub(data, "usage", "cost"), sub(data, "cost")):
        if value is not None and cost_problem(value) is None:
            return float(value)
    return None


# -- encoding -------------------------------------------------------------------------------


def json_response(data: Any) -> WireResponse:
    body = json.dumps(data, ensure_ascii=False).encode()
    return WireResponse(status=200, headers=dict(JSON_HEADERS), body=body)


def raw_agrees(step: LLMCallStep, decoded: Decoded) -> bool:
    """The stored raw body may be served: it says what the normalised fields say."""
    if step.output is not None and decoded.output != step.output:
        return False
    return step.usage is None or usage_agrees(decoded.usage, step.usage)


def usage_agrees(decoded: Usage | None, usage: Usage) -> bool:
    """A stored body's usage says what the step's says. A step recorded before opswald
    kept the hour's cache writes apart has none: it is not compared on them."""
    hour = decoded.cache_creation_1h_tokens if decoded is not None else None
    if hour is not None and usage.cache_creation_1h_tokens is None:
        assert decoded is not None
        decoded = decoded.model_copy(update={"cache_creation_1h_tokens": None})
    return decoded == usage


def raw_dict(step: LLMCallStep) -> dict[str, Any]:
    """The stored raw body as a dict ({} when there is none)."""
    return step.raw if isinstance(step.raw, dict) else {}


def raw_usage(step: LLMCallStep, raw: Any, decode: Any) -> Any:
    """The raw usage object while it says what the step's usage says, else None (then
    the codec builds one from the normalised counts)."""
    if not isinstance(raw, dict):
        return None
    if step.usage is not None and not usage_agrees(decode(raw), step.usage):
        return None
    return raw


def epoch_seconds(timestamp: str | None) -> int:
    """The step's ISO timestamp as Unix seconds; 0 when absent or unreadable."""
    if not timestamp:
        return 0
    try:
        moment = dt.datetime.fromisoformat(timestamp)
    except ValueError:
        return 0
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return int(moment.timestamp())


def chunks(text: str, pieces: int = 3) -> list[str]:
    """`text` cut into up to `pieces` non-empty consecutive parts."""
    if not text:
        return []
    size = max(1, -(-len(text) // pieces))
    return [text[i : i + size] for i in range(0, len(text), size)]


class Pieces:
    """While a stream is read: the lengths of the pieces each text came in, by the text's
    path in the assembled body (`content[0].text`); an empty piece the provider sent is a
    0 (the caller leaves out the empty strings that are a frame's placeholders, as a
    chat role chunk's `content: ""`)."""

    def __init__(self) -> None:
        self.lengths: dict[str, list[int]] = {}

    def add(self, path: str, piece: Any) -> None:
        if isinstance(piece, str):
            self.lengths.setdefault(path, []).append(len(piece))

    def recorded(self) -> dict[str, list[int]] | None:
        return self.lengths or None


class Cuts:
    """How a replayed stream cuts its texts: into the pieces recorded with the step (its
    STREAM_CHUNKS attribute; a 0 is an empty piece) while their lengths add up to the
    text, else into a few even pieces (a golden recorded without them, or a text edited
    since)."""

    def __init__(self, step: LLMCallStep) -> None:
        found = (step.attributes or {}).get(STREAM_CHUNKS)
        self._lengths: dict[str, Any] = found if isinstance(found, dict) else {}

    def get(self, key: str) -> Any:
        """The recorded value at `key` (None when there is none)."""
        return self._lengths.get(key)

    def _sizes(self, path: str) -> list[int] | None:
        sizes = self._lengths.get(path)
        if not isinstance(sizes, list) or not sizes:
            return None
        if all(type(n) is int and n >= 0 for n in sizes):
            return sizes
        return None

    def total(self, path: str) -> int | None:
        """The recorded length of the text at `path`, if any."""
        sizes = self._sizes(path)
        return sum(sizes) if sizes is not None else None

    def recorded(self, path: str, text: str) -> list[str] | None:
        """`text` in its recorded pieces; None when none were recorded for it or their
        lengths do not add up to it."""
        sizes = self._sizes(path)
        if sizes is None or sum(sizes) != len(text):
            return None
        return _split(text, sizes)

    def beginning(self, path: str, text: str) -> list[str] | None:
        """The recorded pieces as the beginning of `text` they add up to ([] when none
        were recorded); None when they add up to more than `text`."""
        sizes = self._sizes(path) or []
        return _split(text, sizes) if sum(sizes) <= len(text) else None

    def cut(self, path: str, text: str, pieces: int = 3) -> list[str]:
        """`text` in its recorded pieces, else in up to `pieces` even ones."""
        recorded = self.recorded(path, text)
        return recorded if recorded is not None else chunks(text, pieces)

    def json_text(self, path: str, value: Any) -> str:
        """Tool-call arguments (data; None is `{}`) as the JSON text a stream sends: spaced
        as `json.dumps` writes it, unless another rendering has the recorded length:
        compact, or either with non-ASCII characters escaped (`\\u00fc`) as some
        providers send them (the golden keeps the arguments as data, not the text they
        came in)."""
        data = {} if value is None else value
        spaced = json.dumps(data, ensure_ascii=False)
        length = self.total(path)
        if length is None or length == len(spaced):
            return spaced
        for ascii_only in (False, True):
            for separators in ((",", ":"), (", ", ": ")):
                text = json.dumps(data, ensure_ascii=ascii_only, separators=separators)
                if len(text) == length:
                    return text
        return spaced


def _split(text: str, sizes: list[int]) -> list[str]:
    """The first pieces of `text`, of these lengths."""
    out: list[str] = []
    at = 0
    for size in sizes:
        out.append(text[at : at + size])
        at += size
    return out


def output_of(step: LLMCallStep) -> LLMOutput:
    return step.output or LLMOutput()
