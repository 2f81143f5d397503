"""OpenAI Responses (`POST …/responses`), JSON and SSE."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from opswald.intercept.codecs import sse
from opswald.intercept.codecs.base import (
    Cuts,
    Decoded,
    Pieces,
    StreamError,
    WireResponse,
    as_int,
    dump_arguments,
    epoch_seconds,
    error_response,
    failure_message,
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
from opswald.session import LLMCallStep, LLMOutput, Usage

_FINAL_EVENTS = ("response.completed", "response.incomplete", "response.failed")


class OpenAIResponsesCodec:
    """`responses.create`: input items in, output items out."""

    provider: str = "openai"
    api: str = "openai.responses"

    def handles(self, method: str, path: str) -> bool:
        return is_post_to(method, path, "/responses")

    def request(self, body: Any) -> dict[str, Any]:
        data = body if isinstance(body, dict) else {}
        messages: list[Any] = []
        if data.get("instructions") is not None:
            messages.append(instructions_message(data["instructions"]))
        messages += _input_items(data.get("input"))
        used = {"model", "input", "instructions", "tools"}
        return request_dict(self, body, messages or None, data.get("tools"), used)

    def header_params(self, headers: Mapping[str, str]) -> dict[str, Any]:
        return {}  # nothing in this API's headers changes what is asked

    def is_stream(self, body: Any) -> bool:
        return wants_stream(body)

    def decode(self, body: bytes, *, stream: bool, cut: bool = False) -> Decoded:
        if stream:
            return _decode_stream(body, cut=cut)
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
        return json_response(_response(step, _items(step)))


# -- request --------------------------------------------------------------------------------

# `instructions` are the first message, a system message marked `type: instructions`: a
# system message sent in `input` is another request (the API carries input messages
# through `previous_response_id`, never instructions), so replay must tell them apart.
INSTRUCTIONS = "instructions"


def instructions_message(content: Any) -> dict[str, Any]:
    return {**system_message(content), "type": INSTRUCTIONS}


def _plain_lead(messages: Any) -> bool:
    """The messages start with a plain `{role: system, content}` and hold no marked
    instructions: how a step recorded before instructions were marked wrote them (and
    how a system message sent in `input` as a bare dict is written still)."""
    if not isinstance(messages, list) or not messages:
        return False
    first = messages[0]
    if not isinstance(first, dict) or set(first) != {"role", "content"}:
        return False
    return first["role"] == "system" and not any(_is_instructions(m) for m in messages)


def _is_instructions(message: Any) -> bool:
    return isinstance(message, dict) and message.get("type") == INSTRUCTIONS


def _echoed(step: LLMCallStep) -> tuple[bool, Any]:
    """`(True, value)` when the stored response says what instructions the call had (the
    API echoes them in every response object: null without them), else `(False, None)`."""
    raw = step.raw
    if isinstance(raw, dict) and INSTRUCTIONS in raw:
        return True, raw[INSTRUCTIONS]
    return False, None


def recorded_messages(step: LLMCallStep) -> list[Any] | None:
    """The step's messages as replay compares them. A step recorded before instructions
    were marked is read in today's form where its stored response says its leading system
    message was the call's `instructions`."""
    messages = step.input.messages
    if step.api != OpenAIResponsesCodec.api or not _plain_lead(messages):
        return messages
    assert messages is not None
    known, echoed = _echoed(step)
    if known and echoed is not None and echoed == messages[0]["content"]:
        return [instructions_message(echoed), *messages[1:]]
    return messages


def as_recorded(request: dict[str, Any], step: LLMCallStep) -> dict[str, Any]:
    """`request` as `step` can be compared with it. A step recorded before instructions
    were marked whose stored response does not say that it had none (an import, a
    hand-written golden, a provider that does not echo them) matches instructions and
    an input system message alike, as it did: the request's instructions are compared as
    the plain system message it wrote them as. Copies what it changes."""
    section = request.get("input")
    messages = section.get("messages") if isinstance(section, dict) else None
    if not isinstance(messages, list) or not messages or not _is_instructions(messages[0]):
        return request
    if step.api != OpenAIResponsesCodec.api or not _plain_lead(recorded_messages(step)):
        return request
    known, echoed = _echoed(step)
    if known and echoed is None:  # the call had no instructions: the difference is real
        return request
    plain = {k: v for k, v in messages[0].items() if k != "type"}
    assert isinstance(section, dict)
    return {**request, "input": {**section, "messages": [plain, *messages[1:]]}}


def _input_items(value: Any) -> list[Any]:
    """`input` as a list of items; a string is one user message."""
    if value is None:
        return []
    if isinstance(value, str):
        return [{"role": "user", "content": value}]
    if not isinstance(value, list):
        return [value]
    return [_parsed_item(item) for item in value]


def _parsed_item(item: Any) -> Any:
    """A function_call item with its argument string parsed; the item passed in is kept."""
    if isinstance(item, dict) and item.get("type") == "function_call":
        return {**item, "arguments": parse_arguments(item.get("arguments"))}
    return item


# -- decoding -------------------------------------------------------------------------------


def decode_json(data: Any) -> Decoded:
    """A `response` object (already parsed) in normalised terms."""
    items = [i for i in sub(data, "output") or [] if isinstance(i, dict)]
    failed = sub(data, "status") == "failed"
    return Decoded(
        output=_output(items, sub(data, "status")),
        usage=usage_from(sub(data, "usage")),
        cost=reported_cost(data),
        raw=data,
        model=sub(data, "model"),
        failure=failure_message(sub(data, "error")) if failed else None,
    )


def _output(items: list[dict[str, Any]], status: Any) -> LLMOutput:
    texts = [
        part["text"]
        for item in items
        if item.get("type") == "message"
        for part in item.get("content") or []
        if isinstance(part, dict) and part.get("type") == "output_text"
    ]
    calls = [
        {
            "id": item.get("call_id"),
            "name": item.get("name"),
            "arguments": parse_arguments(item.get("arguments")),
        }
        for item in items
        if item.get("type") == "function_call"
    ]
    return LLMOutput(
        content=joined(texts),
        tool_calls=calls or None,
        finish_reason=status if isinstance(status, str) else None,
    )


def usage_from(usage: Any) -> Usage | None:
    """Responses `ResponseUsage` -> Usage (input_tokens already include cached tokens)."""
    if not isinstance(usage, dict):
        return None
    return make_usage(
        input_tokens=as_int(usage.get("input_tokens")),
        output_tokens=as_int(usage.get("output_tokens")),
        total_tokens=as_int(usage.get("total_tokens")),
        cache_read_tokens=as_int(sub(usage, "input_tokens_details", "cached_tokens")),
        cache_creation_tokens=as_int(sub(usage, "input_tokens_details", "cache_write_tokens")),
        reasoning_tokens=as_int(sub(usage, "output_tokens_details", "reasoning_tokens")),
    )


def _item(index: int) -> str:
    return f"output[{index}]"


def _item_path(index: int, part: str) -> str:
    return f"{_item(index)}.{part}"


def _delta_path(kind: Any, event: dict[str, Any]) -> str | None:
    """The path of the text a delta event adds to (in its output item), else None."""
    index = as_int(event.get("output_index"))
    content, summary = as_int(event.get("content_index")), as_int(event.get("summary_index"))
    if index is None:
        return None
    if kind == "response.output_text.delta" and content is not None:
        return _item_path(index, f"content[{content}].text")
    if kind == "response.refusal.delta" and content is not None:
        return _item_path(index, f"content[{content}].refusal")
    if kind == "response.function_call_arguments.delta":
        return _item_path(index, "arguments")
    if kind == "response.reasoning_summary_text.delta" and summary is not None:
        return _item_path(index, f"summary[{summary}].text")
    return None


# The STREAM_CHUNKS value, under an output item's `output[i]`, of an item that came as its
# `response.output_item.added` and `response.output_item.done` with nothing between them
# (no content part, delta or summary events: its text came whole in the `done` item), as
# gateways send a reasoning item's summary; replay streams its texts between them without.
ONLY_ADDED_DONE = "added and done only"

# The STREAM_CHUNKS key (under `output[i].added`) and values of an item whose
# `response.output_item.added` did not carry what the API's does (its texts empty, a
# reasoning item's `encrypted_content` already there): ADDED_WHOLE, the item's content,
# arguments, summary and encrypted content as they were when done (some gateways and
# caches send the whole item first, then its events as usual); ADDED_EMPTY, a reasoning
# item's `encrypted_content: null` (it came with the item done).
ADDED = "added"
ADDED_WHOLE = "whole"
ADDED_EMPTY = "empty"

# The STREAM_CHUNKS key and value of a stream whose events had `sequence_number` as their
# last key; replay puts it second (after `type`), as the API does, without it.
SEQUENCE = "sequence_number"
SEQUENCE_LAST = "last"


def _added(item: dict[str, Any], how: Any = None) -> dict[str, Any]:
    """The item as its `response.output_item.added` carries it: as the API sends it (its
    texts empty, status `in_progress`), or as ADDED_WHOLE / ADDED_EMPTY say."""
    kind = item.get("type")
    if how == ADDED_WHOLE:
        return {**item, "status": "in_progress"} if kind in _NORMALISED_ITEMS else item
    if kind == "message":
        return {**item, "status": "in_progress", "content": []}
    if kind == "function_call":
        return {**item, "status": "in_progress", "arguments": ""}
    if kind == "reasoning":
        started = {**item, "summary": []}
        if how == ADDED_EMPTY and "encrypted_content" in item:
            started["encrypted_content"] = None
        return started
    return item


def _carried_whole(item: dict[str, Any]) -> bool:
    """An added event's item that carries its content (texts, arguments, summary), as
    ADDED_WHOLE says, where the API's carries it empty."""
    return item != _added(item) and item == _added(item, ADDED_WHOLE)


def _streams_between(item: dict[str, Any]) -> bool:
    """Replay sends events between the item's added and done (without ONLY_ADDED_DONE)."""
    kind = item.get("type")
    if kind == "function_call":
        return True
    field = {"message": "content", "reasoning": "summary"}.get(str(kind))
    return field is not None and any(isinstance(p, dict) for p in item.get(field) or [])


def _decode_stream(body: bytes, *, cut: bool = False) -> Decoded:
    """The final lifecycle event carries the whole response; finished items fill in an
    `output` it leaves out. A stream that broke off with an error event (or, `cut`, ended
    before its final event) is the response as it began (`response.created`) with the
    items as far as they came."""
    final: dict[str, Any] | None = None
    partial = _Partial()
    for event in sse.events(body):
        data = event.json()
        kind = sub(data, "type")
        if event.name == "error" or kind == "error":
            return partial.decoded(StreamError.of(event.data))
        if not isinstance(data, dict):
            continue
        partial.add(kind, data)
        if kind in _FINAL_EVENTS and isinstance(data.get("response"), dict):
            final = data["response"]
    done = partial.done
    if final is None and cut:
        return partial.decoded(None)
    if final is None:
        return Decoded(
            output=_output([done[i] for i in sorted(done)], None),
            usage=None,
            cost=None,
            raw=None,
            model=None,
            chunks=partial.chunks(),
            ended=False,
        )
    if not isinstance(final.get("output"), list):
        final = {**final, "output": [done[i] for i in sorted(done)]}
    decoded = decode_json(final)
    return Decoded(
        output=decoded.output,
        usage=decoded.usage,
        cost=decoded.cost,
        raw=None,
        model=decoded.model,
        assembled=final,
        chunks=partial.chunks(),
        failure=decoded.failure,
    )


class _Partial:
    """The events of a stream: its pieces, the items it finished and, for a stream that
    breaks off, the response it began and the items as far as they came."""

    def __init__(self) -> None:
        self.pieces = Pieces()
        self.done: dict[int, dict[str, Any]] = {}
        self.begun: dict[str, Any] | None = None  # response.created / in_progress
        self.items: dict[int, dict[str, Any]] = {}
        self.added: dict[int, dict[str, Any]] = {}  # each item as its added event said
        self.between: dict[int, int] = {}  # events of each item between added and done
        # items whose added event carried them whole (ADDED_WHOLE): their deltas repeat
        # what the item holds, so an item cut short is what that event carried
        self.whole: set[int] = set()
        self.orders: set[str] = set()  # where events had `sequence_number`: second, last

    def add(self, kind: Any, event: dict[str, Any]) -> None:
        keys = list(event)
        if SEQUENCE in keys and len(keys) > 2:  # where it is tells only beside two others
            self.orders.add(SEQUENCE_LAST if keys[-1] == SEQUENCE else str(keys.index(SEQUENCE)))
        index = as_int(event.get("output_index"))
        if kind not in ("response.output_item.added", "response.output_item.done"):
            if index is not None and index in self.added and index not in self.done:
                self.between[index] = self.between.get(index, 0) + 1
        path = _delta_path(kind, event)
        if path is not None:
            self.pieces.add(path, event.get("delta"))
            if index not in self.whole:
                self._grow(kind, event)
        item = event.get("item")
        if kind == "response.output_item.done" and isinstance(item, dict):
            at = len(self.done) if index is None else index
            self.done[at] = self.items[at] = item
        elif kind == "response.output_item.added" and isinstance(item, dict):
            at = len(self.items) if index is None else index
            # as it came: the parts of the item begun are grown in place by the deltas
            self.items[at], self.added[at] = dict(item), copy.deepcopy(item)
            if _carried_whole(item):
                self.whole.add(at)
        elif kind in ("response.content_part.added", "response.reasoning_summary_part.added"):
            if index not in self.whole:
                self._part(kind, event)
        elif kind in ("response.created", "response.in_progress"):
            if isinstance(event.get("response"), dict):
                self.begun = event["response"]

    def _part(self, kind: Any, event: dict[str, Any]) -> None:
        """A content (or reasoning summary) part begun: in its place in its item."""
        item = self.items.get(as_int(event.get("output_index")) or 0)
        part = event.get("part")
        field = "content" if kind == "response.content_part.added" else "summary"
        at = as_int(event.get("content_index" if field == "content" else "summary_index"))
        if item is None or not isinstance(part, dict) or at is None:
            return
        parts = list(item.get(field) or [])
        parts += [{} for _ in range(at + 1 - len(parts))]
        parts[at] = dict(part)
        item[field] = parts

    def _grow(self, kind: Any, event: dict[str, Any]) -> None:
        """An item begun: its text as far as the deltas came."""
        item = self.items.get(as_int(event.get("output_index")) or 0)
        delta = event.get("delta")
        if item is None or not isinstance(delta, str):
            return
        if kind == "response.function_call_arguments.delta":
            item["arguments"] = (item.get("arguments") or "") + delta
            return
        field, key, at = "content", "text", as_int(event.get("content_index"))
        if kind == "response.refusal.delta":
            key = "refusal"
        elif kind == "response.reasoning_summary_text.delta":
            field, at = "summary", as_int(event.get("summary_index"))
        parts = item.get(field)
        if isinstance(parts, list) and at is not None and at < len(parts):
            parts[at][key] = (parts[at].get(key) or "") + delta

    def chunks(self) -> dict[str, Any] | None:
        """The pieces, and how the items and events came where replay would send them
        otherwise (ONLY_ADDED_DONE, ADDED, SEQUENCE)."""
        marks: dict[str, Any] = {}
        for index, item in sorted(self.done.items()):
            added = self.added.get(index)
            if added is None:
                continue
            if not self.between.get(index) and _streams_between(item):
                marks[_item(index)] = ONLY_ADDED_DONE
            if added != _added(item):
                how = next(
                    (h for h in (ADDED_WHOLE, ADDED_EMPTY) if added == _added(item, h)), None
                )
                if how is not None:
                    marks[_item_path(index, ADDED)] = how
        for index in self.whole - set(self.done):  # cut short: it is what its added carried
            marks[_item_path(index, ADDED)] = ADDED_WHOLE
        if self.orders == {SEQUENCE_LAST}:
            marks[SEQUENCE] = SEQUENCE_LAST
        return {**(self.pieces.recorded() or {}), **marks} or None

    def decoded(self, error: StreamError | None) -> Decoded:
        """The response as far as it came: up to `error`, or to where it was cut."""
        items = [self.items[i] for i in sorted(self.items)]
        assembled = None
        if self.begun is not None or items:
            assembled = {**(self.begun or {}), "output": items}
        return Decoded(
            output=_output(items, None),
            usage=None,
            cost=None,
            raw=None,
            model=sub(self.begun, "model"),
            assembled=assembled,
            chunks=self.chunks(),
            error=error,
            ended=error is not None,
        )


# -- encoding -------------------------------------------------------------------------------


_NORMALISED_ITEMS = ("message", "function_call")


def _agreeing_raw(step: LLMCallStep, broke: bool = False) -> dict[str, Any] | None:
    """The stored response object while it says what the normalised fields say (`broke`:
    of a stream that broke off, whose answer has no finish)."""
    raw = step.raw
    if isinstance(raw, dict) and raw_agrees(
        step, decode_json({**raw, "status": None} if broke else raw)
    ):
        return raw
    return None


def _raw_items(step: LLMCallStep) -> list[dict[str, Any]]:
    output = raw_dict(step).get("output")
    return [i for i in output if isinstance(i, dict)] if isinstance(output, list) else []


def _items(step: LLMCallStep) -> list[dict[str, Any]]:
    """The completed output items: the recorded items the normalised step has no words
    for (`reasoning`, built-in tool calls) as recorded, one message (when there is text),
    then function calls; recorded item ids are kept."""
    status = "incomplete" if output_of(step).finish_reason == "incomplete" else "completed"
    recorded = _raw_items(step)
    items = [i for i in recorded if i.get("type") not in _NORMALISED_ITEMS]
    text = text_of(output_of(step).content)
    if text:
        message = _message(step, text, status)
        old = next((i for i in recorded if i.get("type") == "message" and i.get("id")), None)
        items.append(message if old is None else {**message, "id": old["id"]})
    ids = {i.get("call_id"): i.get("id") for i in recorded if i.get("type") == "function_call"}
    for index, (call_id, name, args) in enumerate(_calls(step)):
        item = _function_call(step, index, call_id, name, dump_arguments(args), status)
        items.append({**item, "id": ids.get(call_id) or item["id"]})
    return items


def _calls(step: LLMCallStep) -> list[tuple[str, str, Any]]:
    calls = output_of(step).tool_calls or []
    return [tool_call_parts(c, f"call_opswald_{step.step}_{i}") for i, c in enumerate(calls)]


def _message(step: LLMCallStep, text: str, status: str) -> dict[str, Any]:
    return {
        "id": f"msg_opswald_{step.step}",
        "type": "message",
        "status": status,
        "role": "assistant",
        "content": [_text_part(text)],
    }


def _text_part(text: str) -> dict[str, Any]:
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}


def _function_call(
    step: LLMCallStep, index: int, call_id: str, name: str, args: str, status: str
) -> dict[str, Any]:
    return {
        "id": f"fc_opswald_{step.step}_{index}",
        "type": "function_call",
        "status": status,
        "call_id": call_id,
        "name": name,
        "arguments": args,
    }


def usage_to(usage: Usage | None) -> dict[str, Any] | None:
    """Usage -> `ResponseUsage`; its detail objects are required, unknown counts become 0."""
    if usage is None:
        return None
    return {
        "input_tokens": usage.input_tokens or 0,
        "input_tokens_details": {
            "cached_tokens": usage.cache_read_tokens or 0,
            "cache_write_tokens": usage.cache_creation_tokens or 0,
        },
        "output_tokens": usage.output_tokens or 0,
        "output_tokens_details": {"reasoning_tokens": usage.reasoning_tokens or 0},
        "total_tokens": usage.total(),
    }


def _status(step: LLMCallStep) -> str:
    return output_of(step).finish_reason or "completed"


def _usage(step: LLMCallStep) -> dict[str, Any] | None:
    """The recorded usage object while it agrees with the step's, else rebuilt."""
    recorded = raw_usage(step, raw_dict(step).get("usage"), usage_from)
    return recorded if recorded is not None else usage_to(step.usage)


def _response(
    step: LLMCallStep, output: list[dict[str, Any]], status: str | None = None
) -> dict[str, Any]:
    """A complete `response` object; `status` overrides the step's (for lifecycle events).
    The envelope (id, created_at, model, ...) is the recorded one when there is a raw body:
    an agent chaining `previous_response_id` sends back the id it was given."""
    final = status is None
    status = status or _status(step)
    raw = raw_dict(step)
    created = raw.get("created_at")
    if not isinstance(created, int | float):
        created = epoch_seconds(step.timestamp)
    envelope = {k: v for k, v in raw.items() if k not in _PER_STATE}
    return {
        **_default_response(step, created),
        **envelope,
        "status": status,
        "completed_at": _completed_at(raw, created) if final and status == "completed" else None,
        "output": output,
        "usage": _usage(step) if final else None,
    }


def _completed_at(raw: dict[str, Any], created: Any) -> Any:
    done = raw.get("completed_at")
    return done if isinstance(done, int | float) else created


_PER_STATE = ("status", "completed_at", "output", "usage", "output_text")


def _default_response(step: LLMCallStep, created: Any) -> dict[str, Any]:
    return {
        "id": f"resp_opswald_{step.step}",
        "object": "response",
        "created_at": created,
        "error": None,
        "incomplete_details": None,
        "instructions": None,
        "metadata": {},
        "model": step.model or "unknown",
        "parallel_tool_calls": True,
        "temperature": None,
        "tool_choice": "auto",
        "tools": [],
        "top_p": None,
    }


class _Events:
    """Numbers the events of one stream (`sequence_number` counts from 0); its texts are
    cut as recorded while that adds up."""

    def __init__(self, step: LLMCallStep, left_open: int | None = None) -> None:
        self.frames: list[str] = []
        self.cuts = Cuts(step)
        self.last = self.cuts.get(SEQUENCE) == SEQUENCE_LAST
        self.open = left_open  # the index of the item a stream cut short left open

    def pieces(self, index: int, path: str, text: str, pieces: int = 3) -> list[str]:
        """`text` in its recorded pieces (else in even ones); of the item left open, when
        its added event carried it whole, the pieces that came after it: the beginning
        of `text` they add up to (none when none came)."""
        if index == self.open and self.cuts.get(_item_path(index, ADDED)) == ADDED_WHOLE:
            came = self.cuts.beginning(path, text)
            if came is not None:
                return came
        return self.cuts.cut(path, text, pieces)

    def add(self, kind: str, **fields: Any) -> None:
        number = {SEQUENCE: len(self.frames)}
        data = (
            {"type": kind, **fields, **number} if self.last else {"type": kind, **number, **fields}
        )
        self.frames.append(sse.frame(data, kind))

    def added(self, index: int, item: dict[str, Any]) -> dict[str, Any]:
        """The item as its added event carries it (as it came: ADDED)."""
        return _added(item, self.cuts.get(_item_path(index, ADDED)))

    def left_open(self, begun: int) -> None:
        """The item whose events begin at frame `begun` never finished: its closing
        `.done` events are dropped (the stream broke off after its last delta)."""
        while len(self.frames) > begun and _is_done(self.frames[-1]):
            self.frames.pop()

    def error(self, data: Any) -> None:
        """The recorded error event, numbered in turn."""
        if isinstance(data, dict) and "sequence_number" in data:
            data = {**data, "sequence_number": len(self.frames)}
        self.frames.append(sse.frame(data, "error"))


def _is_done(frame: str) -> bool:
    return frame.startswith("event: ") and frame.split("\n", 1)[0].endswith(".done")


def _frames(step: LLMCallStep, broke: tuple[Any, ...] | None = None) -> list[str]:
    """created, in_progress, every output item (added, deltas, done), then the final
    lifecycle event carrying the whole response with usage. The stored response object
    is streamed as it is while it agrees with the normalised fields. A stream that broke
    off (`broke`: its error event's data; empty for one closed early or whose connection
    failed) sends what came — its last item left open, a final event only when it came —
    then its error event."""
    raw = _agreeing_raw(step, broke is not None)
    if raw is not None and isinstance(raw.get("output"), list):
        final = raw
        items = [i for i in raw["output"] if isinstance(i, dict)]
    else:
        items = _items(step)
        final = _response(step, items)
    out = _Events(step, len(items) - 1 if broke is not None else None)
    if broke is not None and step.raw is None and not items:  # the error was all that came
        for data in broke:
            out.error(data)
        return out.frames
    pending = {**final, "status": "in_progress", "output": [], "usage": None}
    if "completed_at" in pending:
        pending["completed_at"] = None
    if "error" in pending:  # a failed response's error comes with its end, not before
        pending["error"] = None
    out.add("response.created", response=pending)
    out.add("response.in_progress", response=pending)
    for index, item in enumerate(items):
        begun = len(out.frames)
        kind = item.get("type")
        if out.cuts.get(_item(index)) == ONLY_ADDED_DONE:
            out.add("response.output_item.added", output_index=index, item=out.added(index, item))
            out.add("response.output_item.done", output_index=index, item=item)
        elif kind == "message":
            _message_events(out, index, item)
        elif kind == "function_call":
            _call_events(out, index, item)
        elif kind == "reasoning":
            _reasoning_events(out, index, item)
        else:
            out.add("response.output_item.added", output_index=index, item=item)
            out.add("response.output_item.done", output_index=index, item=item)
        if broke is not None and index == len(items) - 1:
            out.left_open(begun)
    kind = f"response.{final.get('status')}"
    if broke is None:
        out.add(kind if kind in _FINAL_EVENTS else "response.completed", response=final)
        return out.frames
    if kind in _FINAL_EVENTS:  # it came before the error
        out.add(kind, response=final)
    for data in broke:
        out.error(data)
    return out.frames


def _message_events(out: _Events, index: int, item: dict[str, Any]) -> None:
    where = {"item_id": item.get("id"), "output_index": index}
    out.add("response.output_item.added", output_index=index, item=out.added(index, item))
    parts = [p for p in item.get("content") or [] if isinstance(p, dict)]
    for at, part in enumerate(parts):
        where_part = {**where, "content_index": at}
        if part.get("type") == "output_text" and isinstance(part.get("text"), str):
            text = part["text"]
            out.add("response.content_part.added", **where_part, part={**part, "text": ""})
            path = _item_path(index, f"content[{at}].text")
            for piece in out.pieces(index, path, text):
                out.add("response.output_text.delta", **where_part, delta=piece, logprobs=[])
            logprobs = part.get("logprobs") or []
            out.add("response.output_text.done", **where_part, text=text, logprobs=logprobs)
        elif part.get("type") == "refusal" and isinstance(part.get("refusal"), str):
            out.add("response.content_part.added", **where_part, part={**part, "refusal": ""})
            path = _item_path(index, f"content[{at}].refusal")
            for piece in out.pieces(index, path, part["refusal"]):
                out.add("response.refusal.delta", **where_part, delta=piece)
            out.add("response.refusal.done", **where_part, refusal=part["refusal"])
        else:
            out.add("response.content_part.added", **where_part, part=part)
        out.add("response.content_part.done", **where_part, part=part)
    out.add("response.output_item.done", output_index=index, item=item)


def _call_events(out: _Events, index: int, item: dict[str, Any]) -> None:
    where = {"item_id": item.get("id"), "output_index": index}
    path = _item_path(index, "arguments")
    arguments = item.get("arguments")
    if not isinstance(arguments, str):
        arguments = out.cuts.json_text(path, arguments)
    out.add("response.output_item.added", output_index=index, item=out.added(index, item))
    for piece in out.pieces(index, path, arguments, 2):
        out.add("response.function_call_arguments.delta", **where, delta=piece)
    # the API names the function here too (the SDK's model keeps it as an extra field)
    named = {"name": item["name"]} if isinstance(item.get("name"), str) else {}
    out.add("response.function_call_arguments.done", **where, **named, arguments=arguments)
    out.add("response.output_item.done", output_index=index, item=item)


def _reasoning_events(out: _Events, index: int, item: dict[str, Any]) -> None:
    """A reasoning item: its summary parts streamed, then the whole item (with its
    `encrypted_content`) as `output_item.done`, which agents send back next turn."""
    where = {"item_id": item.get("id"), "output_index": index}
    out.add("response.output_item.added", output_index=index, item=out.added(index, item))
    summary = [p for p in item.get("summary") or [] if isinstance(p, dict)]
    for at, part in enumerate(summary):
        text = part["text"] if isinstance(part.get("text"), str) else ""
        spot = {**where, "summary_index": at}
        out.add("response.reasoning_summary_part.added", **spot, part={**part, "text": ""})
        for piece in out.pieces(index, _item_path(index, f"summary[{at}].text"), text):
            out.add("response.reasoning_summary_text.delta", **spot, delta=piece)
        out.add("response.reasoning_summary_text.done", **spot, text=text)
        out.add("response.reasoning_summary_part.done", **spot, part=part)
    out.add("response.output_item.done", output_index=index, item=item)
