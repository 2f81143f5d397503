"""Anthropic Messages (`POST …/v1/messages`), JSON and SSE."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from opswald.intercept.codecs import sse
from opswald.intercept.codecs.base import (
    Cuts,
    Decoded,
    Pieces,
    StreamError,
    WireResponse,
    as_int,
    error_response,
    is_post_to,
    joined,
    json_response,
    load_json,
    make_usage,
    output_of,
    parse_arguments,
    raw_agrees,
    raw_dict,
    raw_usage,
    reported_cost,
    request_dict,
    stream_cut,
    sub,
    system_message,
    text_of,
    tool_call_parts,
    wants_stream,
)
from opswald.session import STREAM_USAGE, LLMCallStep, LLMOutput, Usage

BETA_HEADER = "anthropic-beta"
BETAS_PARAM = "betas"  # in engine.normalize.CARRIED_PARAMS too


class AnthropicMessagesCodec:
    """`messages.create` / `messages.stream`: system + messages in, content blocks out."""

    provider: str = "anthropic"
    api: str = "anthropic.messages"

    def handles(self, method: str, path: str) -> bool:
        # OpenAI's Assistants API has `…/threads/{id}/messages`; that is not this API.
        return is_post_to(method, path, "/messages") and "/threads/" not in path

    def request(self, body: Any) -> dict[str, Any]:
        data = body if isinstance(body, dict) else {}
        messages: list[Any] = []
        if data.get("system") not in (None, "", []):
            messages.append(system_message(data["system"]))
        if isinstance(data.get("messages"), list):
            messages += data["messages"]  # just parsed from the wire; never mutated
        used = {"model", "messages", "system", "tools"}
        return request_dict(self, body, messages or None, data.get("tools"), used)

    def header_params(self, headers: Mapping[str, str]) -> dict[str, Any]:
        """`betas`: the beta features the request turns on (the SDK's `betas=`, sent as
        the `anthropic-beta` header, comma-separated), in the order given. They change
        what the API does, so they are part of the request."""
        sent = headers.get(BETA_HEADER)
        betas = [b.strip() for b in sent.split(",") if b.strip()] if sent else []
        return {BETAS_PARAM: betas} if betas else {}

    def is_stream(self, body: Any) -> bool:
        return wants_stream(body)

    def decode(self, body: bytes, *, stream: bool, cut: bool = False) -> Decoded:
        if stream:
            return _decode_stream(body)
        return decode_json(load_json(body, self.api))

    def encode(
        self, step: LLMCallStep, *, stream: bool, request: dict[str, Any] | None = None
    ) -> WireResponse:
        broke = stream_cut(step)
        if stream:
            return sse.stream_response(_frames(step, broke))
        if broke:
            return error_response(broke[0])
        if _agreeing_raw(step) is not None:
            return json_response(step.raw)
        return json_response(_message(step, _blocks(step), final=True))


# -- decoding -------------------------------------------------------------------------------


def decode_json(data: Any) -> Decoded:
    """A `message` object (already parsed) in normalised terms."""
    blocks = [b for b in sub(data, "content") or [] if isinstance(b, dict)]
    return Decoded(
        output=_output(blocks, sub(data, "stop_reason")),
        usage=usage_from(sub(data, "usage")),
        cost=reported_cost(data),
        raw=data,
        model=sub(data, "model"),
    )


def _output(blocks: list[dict[str, Any]], stop_reason: Any) -> LLMOutput:
    texts = [t for b in blocks if b.get("type") == "text" and isinstance(t := b.get("text"), str)]
    calls = [
        {"id": b.get("id"), "name": b.get("name"), "arguments": b.get("input")}
        for b in blocks
        if b.get("type") == "tool_use"
    ]
    return LLMOutput(
        content=joined(texts),
        tool_calls=calls or None,
        finish_reason=stop_reason if isinstance(stop_reason, str) else None,
    )


def usage_from(usage: Any) -> Usage | None:
    """Anthropic usage -> Usage; its `input_tokens` exclude cache reads and writes, ours
    include them."""
    if not isinstance(usage, dict):
        return None
    uncached = as_int(usage.get("input_tokens"))
    read = as_int(usage.get("cache_read_input_tokens"))
    written = as_int(usage.get("cache_creation_input_tokens"))
    output = as_int(usage.get("output_tokens"))
    # the part written for an hour (`cache_creation`), kept when there is one: it costs more
    hour = as_int(sub(usage, "cache_creation", "ephemeral_1h_input_tokens")) or None
    known = [n for n in (uncached, read, written) if n is not None]
    total_in = sum(known) if known else None
    return make_usage(
        input_tokens=total_in,
        output_tokens=output,
        total_tokens=None
        if total_in is None and output is None
        else (total_in or 0) + (output or 0),
        cache_read_tokens=read,
        cache_creation_tokens=written,
        cache_creation_1h_tokens=hour,
        reasoning_tokens=as_int(sub(usage, "output_tokens_details", "thinking_tokens")),
    )


# The STREAM_CHUNKS value, under a block's `content[i]`, of a block whose
# `content_block_start` carried the first piece of its text (`{"type": "text", "text":
# "It "}`, or of its thinking), as some providers and proxies send it; the API's start
# carries an empty text, and replay's does without it.
START_JOINED = "with first piece"

# The STREAM_CHUNKS value, under a tool use block's `content[i]`, of a block whose
# `content_block_start` carried its whole input (the API's carries `input: {}` and streams
# the input as `input_json_delta`s, as replay does without it); the deltas that came after
# it, if any, are its recorded pieces.
START_INPUT = "with input"

# The STREAM_CHUNKS key and value of a stream that had no `ping` event; the API sends one
# after `message_start`, as replay does without it.
PING = "ping"
NO_PING = "none"


def _block_mark(index: int) -> str:
    return f"content[{index}]"


class _StreamState:
    """Accumulates message_start / content_block_* / message_delta events."""

    def __init__(self) -> None:
        self.message: dict[str, Any] = {}
        self.usage: dict[str, Any] = {}
        self.events_usage: dict[str, Any] = {}  # each event's usage object, as it came
        self.error: StreamError | None = None
        self.blocks: dict[int, dict[str, Any]] = {}
        self.json: dict[int, str] = {}
        self.stop_reason: Any = None
        self.stop_sequence: Any = None
        self.pieces = Pieces()
        self.marks: dict[str, str] = {}
        self.pinged = False

    def add(self, event: dict[str, Any]) -> None:
        kind = event.get("type")
        if kind == "message_start" and isinstance(event.get("message"), dict):
            self.message = event["message"]
            self.usage.update(_present(self.message.get("usage")))
            self._keep_usage(kind, self.message.get("usage"))
        elif kind == "ping":
            self.pinged = True
        elif kind == "content_block_start" and isinstance(event.get("content_block"), dict):
            self._start(as_int(event.get("index")) or 0, event["content_block"])
        elif kind == "content_block_delta":
            self._delta(as_int(event.get("index")) or 0, event.get("delta") or {})
        elif kind == "message_delta":
            self.stop_reason = sub(event, "delta", "stop_reason") or self.stop_reason
            self.stop_sequence = sub(event, "delta", "stop_sequence") or self.stop_sequence
            self.usage.update(_present(event.get("usage")))
            self._keep_usage(kind, event.get("usage"))

    def _start(self, index: int, block: dict[str, Any]) -> None:
        """A block begun; what its start carried beyond the API's empty text or input is
        a piece (START_JOINED) or the whole input (START_INPUT)."""
        self.blocks[index] = dict(block)
        kind = block.get("type")
        field = {"text": "text", "thinking": "thinking"}.get(str(kind))
        if field is not None and isinstance(block.get(field), str) and block[field]:
            self.pieces.add(_block_path(index, field), block[field])
            self.marks[_block_mark(index)] = START_JOINED
        elif kind in _TOOL_USES and block.get("input") not in (None, {}):
            self.marks[_block_mark(index)] = START_INPUT

    def _keep_usage(self, kind: str, usage: Any) -> None:
        if isinstance(usage, dict):
            self.events_usage[kind] = usage

    def _delta(self, index: int, delta: dict[str, Any]) -> None:
        block = self.blocks.setdefault(index, {"type": "text", "text": ""})
        kind = delta.get("type")
        if kind == "text_delta":
            block["text"] = (block.get("text") or "") + (delta.get("text") or "")
            self.pieces.add(_block_path(index, "text"), delta.get("text"))
        elif kind == "input_json_delta":
            self.json[index] = self.json.get(index, "") + (delta.get("partial_json") or "")
            self.pieces.add(_block_path(index, "input"), delta.get("partial_json"))
        elif kind == "thinking_delta":
            block["thinking"] = (block.get("thinking") or "") + (delta.get("thinking") or "")
            self.pieces.add(_block_path(index, "thinking"), delta.get("thinking"))
        elif kind == "signature_delta":
            block["signature"] = (block.get("signature") or "") + (delta.get("signature") or "")
        elif kind == "citations_delta" and isinstance(delta.get("citation"), dict):
            block["citations"] = [*(block.get("citations") or []), delta["citation"]]

    def decoded(self) -> Decoded:
        for index, text in self.json.items():
            self.blocks[index]["input"] = parse_arguments(text) if text else {}
        blocks = [self.blocks[i] for i in sorted(self.blocks)]
        model = self.message.get("model")
        data = {"usage": self.usage}
        message = {
            **self.message,
            "content": blocks,
            "stop_reason": self.stop_reason,
            "stop_sequence": self.stop_sequence,
            "usage": self.usage,
        }
        came = bool(self.message or blocks)  # an error as the first event: nothing came
        chunks = {**(self.pieces.recorded() or {}), **self.marks}
        if self.message and not self.pinged:
            chunks[PING] = NO_PING
        return Decoded(
            output=_output(blocks, self.stop_reason),
            usage=usage_from(self.usage) if self.usage else None,
            cost=reported_cost(data),
            raw=None,
            model=model if isinstance(model, str) else None,
            assembled=message if came else None,
            chunks=chunks or None,
            error=self.error,
            attributes={STREAM_USAGE: self.events_usage} if self.events_usage else None,
        )


def _block_path(index: int, field: str) -> str:
    """A block's streamed text (`input`: the JSON text of the tool input)."""
    return f"content[{index}].{field}"


def _present(usage: Any) -> dict[str, Any]:
    """A usage object's non-null counts (message_delta counts are cumulative: they replace)."""
    return {k: v for k, v in usage.items() if v is not None} if isinstance(usage, dict) else {}


def _decode_stream(body: bytes) -> Decoded:
    """The events up to the end, or to an error event (the stream broke off there)."""
    state = _StreamState()
    ended = False
    for event in sse.events(body):
        data = event.json()
        if event.name == "error" or sub(data, "type") == "error":
            state.error = StreamError.of(event.data)
            ended = True
            break
        if isinstance(data, dict):
            state.add(data)
        ended = ended or "message_stop" in (event.name, sub(data, "type"))
    return replace(state.decoded(), ended=ended)


# -- encoding -------------------------------------------------------------------------------


def usage_to(usage: Usage | None) -> dict[str, Any]:
    """Usage -> Anthropic usage: `input_tokens` = input - cache reads - cache writes."""
    if usage is None:
        return {"input_tokens": 0, "output_tokens": 0}
    read, written = usage.cache_read_tokens, usage.cache_creation_tokens
    data: dict[str, Any] = {
        "input_tokens": max(0, (usage.input_tokens or 0) - (read or 0) - (written or 0)),
        "output_tokens": usage.output_tokens or 0,
    }
    if read is not None:
        data["cache_read_input_tokens"] = read
    if written is not None:
        data["cache_creation_input_tokens"] = written
    hour = usage.cache_creation_1h_tokens
    if hour is not None:
        data["cache_creation"] = {
            "ephemeral_5m_input_tokens": max(0, (written or 0) - hour),
            "ephemeral_1h_input_tokens": hour,
        }
    if usage.reasoning_tokens is not None:
        data["output_tokens_details"] = {"thinking_tokens": usage.reasoning_tokens}
    return data


def _stop_reason(step: LLMCallStep) -> str:
    out = output_of(step)
    return out.finish_reason or ("tool_use" if out.tool_calls else "end_turn")


_NORMALISED_BLOCKS = ("text", "tool_use")


def _agreeing_raw(step: LLMCallStep) -> dict[str, Any] | None:
    """The stored message while it says what the normalised fields say."""
    raw = step.raw
    if isinstance(raw, dict) and raw_agrees(step, decode_json(raw)):
        return raw
    return None


def _blocks(step: LLMCallStep) -> list[dict[str, Any]]:
    """The content blocks: the recorded blocks the normalised step has no words for
    (`thinking` with its signature, `redacted_thinking`, server tools) as recorded, the
    text (when there is any), then one `tool_use` per call."""
    out = output_of(step)
    content = raw_dict(step).get("content")
    recorded = [b for b in content if isinstance(b, dict)] if isinstance(content, list) else []
    blocks = [b for b in recorded if b.get("type") not in _NORMALISED_BLOCKS]
    text = text_of(out.content)
    if text:
        blocks.append({"type": "text", "text": text})
    for index, call in enumerate(out.tool_calls or []):
        call_id, name, args = tool_call_parts(call, f"toolu_opswald_{step.step}_{index}")
        blocks.append({"type": "tool_use", "id": call_id, "name": name, "input": _input(args)})
    return blocks


def _input(args: Any) -> Any:
    """`tool_use.input` is an object; absent arguments are `{}`."""
    return {} if args is None or args == "" else args


def _usage(step: LLMCallStep) -> dict[str, Any]:
    """The recorded usage object (service tier, cache details, ...) while it agrees."""
    recorded = raw_usage(step, raw_dict(step).get("usage"), usage_from)
    return recorded if recorded is not None else usage_to(step.usage)


def _message(step: LLMCallStep, blocks: list[dict[str, Any]], *, final: bool) -> dict[str, Any]:
    """A `message`; its id (and model) are the recorded ones when there is a raw body."""
    raw = raw_dict(step)
    return {
        "id": raw.get("id") or f"msg_opswald_{step.step}",
        "type": "message",
        "role": "assistant",
        "model": raw.get("model") or step.model or "unknown",
        "content": blocks,
        "stop_reason": _stop_reason(step) if final else None,
        "stop_sequence": None,
        "usage": _usage(step),
    }


def _frames(step: LLMCallStep, broke: tuple[Any, ...] | None = None) -> list[str]:
    """message_start, ping, each block (start, deltas, stop), message_delta, message_stop;
    the stored message is streamed as it is while it agrees with the normalised fields.
    A stream that broke off (`broke`: its error event's data; empty for one closed early
    or whose connection failed) sends what came — its last block left open, the
    message_delta only when it came — then its error event."""
    raw = _agreeing_raw(step)
    if raw is not None and isinstance(raw.get("content"), list):
        whole = {**raw, "usage": _usage(step)}
        blocks = [b for b in raw["content"] if isinstance(b, dict)]
    else:
        blocks = _blocks(step)
        whole = _message(step, blocks, final=broke is None)
    if broke is not None and step.raw is None and not blocks:  # the error was all that came
        return [_event_data("error", data) for data in broke]
    usage: dict[str, Any] = whole["usage"] if isinstance(whole["usage"], dict) else usage_to(None)
    start_usage, delta_usage = _events_usage(step, usage)
    start = {**whole, "content": [], "stop_reason": None, "stop_sequence": None}
    start["usage"] = start_usage
    cuts = Cuts(step)
    frames = [_event("message_start", message=start)]
    if cuts.get(PING) != NO_PING:
        frames.append(_event("ping"))
    for index, block in enumerate(blocks):
        block_frames = _block_frames(index, block, cuts)
        if broke is not None and index == len(blocks) - 1:
            block_frames.pop()  # its content_block_stop: the error came first
        frames += block_frames
    delta = {"stop_reason": whole.get("stop_reason"), "stop_sequence": whole.get("stop_sequence")}
    if broke is None or delta["stop_reason"] is not None:
        frames.append(_event("message_delta", delta=delta, usage=delta_usage))
    if broke is not None:
        return [*frames, *(_event_data("error", data) for data in broke)]
    frames.append(_event("message_stop"))
    return frames


def _events_usage(step: LLMCallStep, usage: dict[str, Any]) -> tuple[dict[str, Any], Any]:
    """The usage objects of message_start and message_delta: as they came while they add
    up to `usage` (the usage served), else message_start's is `usage` with no output
    tokens yet and message_delta's is `usage` (a golden recorded without them, or a usage
    edited since)."""
    came = (step.attributes or {}).get(STREAM_USAGE)
    start, delta = sub(came, "message_start"), sub(came, "message_delta")
    if isinstance(start, dict) and (delta is None or isinstance(delta, dict)):
        if {**_present(start), **_present(delta)} == usage:
            return start, delta if delta is not None else usage
    rebuilt = {k: v for k, v in usage.items() if k != "output_tokens_details"}
    return {**rebuilt, "output_tokens": 0}, usage


_TOOL_USES = ("tool_use", "server_tool_use", "mcp_tool_use")


def _block_frames(index: int, block: dict[str, Any], cuts: Cuts) -> list[str]:
    """One block's events; its text is cut as recorded while that adds up, and its start
    carries what it carried (START_JOINED, START_INPUT)."""
    kind = block.get("type")
    joined = cuts.get(_block_mark(index))
    deltas: list[dict[str, Any]]
    if kind in ("text", "thinking"):
        field = str(kind)
        head: dict[str, Any] = (
            {"type": "text", "text": ""}
            if kind == "text"
            else {"type": "thinking", "thinking": "", "signature": ""}
        )
        path, text = _block_path(index, field), block.get(field) or ""
        pieces = cuts.recorded(path, text) if joined == START_JOINED else None
        if pieces:
            head[field] = pieces.pop(0)
        else:
            pieces = cuts.cut(path, text)
        deltas = [{"type": f"{field}_delta", field: p} for p in pieces]
        if kind == "text":
            citations = block.get("citations") or []
            deltas += [{"type": "citations_delta", "citation": c} for c in citations]
        elif block.get("signature"):
            deltas.append({"type": "signature_delta", "signature": block["signature"]})
    elif kind in _TOOL_USES:
        path = _block_path(index, "input")
        given = block.get("input")
        # an input kept as text is one a stream cut short in the middle of: the text that
        # came, sent as it came (its JSON string literal would not parse as an input)
        text = given if isinstance(given, str) else cuts.json_text(path, given or {})
        if joined == START_INPUT:  # the input came whole in the start: no deltas but those
            head, cut = block, cuts.recorded(path, text) or []
        else:
            head, cut = {**block, "input": {}}, cuts.cut(path, text, 2)
        deltas = [{"type": "input_json_delta", "partial_json": p} for p in cut]
    else:  # redacted_thinking, tool results, ...: whole in the start event
        head, deltas = block, []
    return [
        _event("content_block_start", index=index, content_block=head),
        *[_event("content_block_delta", index=index, delta=d) for d in deltas],
        _event("content_block_stop", index=index),
    ]


def _event(kind: str, **fields: Any) -> str:
    return sse.frame({"type": kind, **fields}, kind)


def _event_data(kind: str, data: Any) -> str:
    """An event whose data is as recorded (JSON or text)."""
    return sse.frame(data, kind)
