"""OpenAI Responses (`POST …/responses`), JSON and SSE."""

from __future__ import annotations

from typing import Any

from opswald.intercept.codecs import sse
from opswald.intercept.codecs.base import (
    Decoded,
    WireResponse,
    as_int,
    chunks,
    dump_arguments,
    epoch_seconds,
    is_post_to,
    joined,
    json_response,
    load_json,
    make_usage,
    output_of,
    parse_arguments,
    raw_agrees,
    reported_cost,
    request_dict,
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
            messages.append(system_message(data["instructions"]))
        messages += _input_items(data.get("input"))
        used = {"model", "input", "instructions", "tools"}
        return request_dict(self, body, messages or None, data.get("tools"), used)

    def is_stream(self, body: Any) -> bool:
        return wants_stream(body)

    def decode(self, body: bytes, *, stream: bool) -> Decoded:
        if stream:
            return _decode_stream(body)
        return decode_json(load_json(body, self.api))

    def encode(self, step: LLMCallStep, *, stream: bool) -> WireResponse:
        if stream:
            return sse.stream_response(_frames(step))
        if isinstance(step.raw, dict) and raw_agrees(step, decode_json(step.raw)):
            return json_response(step.raw)
        return json_response(_response(step, _items(step)))


# -- request --------------------------------------------------------------------------------


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
    return Decoded(
        output=_output(items, sub(data, "status")),
        usage=usage_from(sub(data, "usage")),
        cost=reported_cost(data),
        raw=data,
        model=sub(data, "model"),
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


def _decode_stream(body: bytes) -> Decoded:
    """The final lifecycle event carries the whole response; finished items fill in an
    `output` it leaves out."""
    final: dict[str, Any] | None = None
    done: dict[int, dict[str, Any]] = {}
    for _, event in sse.json_events(body):
        kind = event.get("type")
        if kind == "error":
            raise ValueError(f"openai.responses: the stream reported an error: {event}")
        if kind == "response.output_item.done" and isinstance(event.get("item"), dict):
            index = as_int(event.get("output_index"))
            done[len(done) if index is None else index] = event["item"]
        if kind in _FINAL_EVENTS and isinstance(event.get("response"), dict):
            final = event["response"]
    if final is None:
        return Decoded(
            output=_output([done[i] for i in sorted(done)], None),
            usage=None,
            cost=None,
            raw=None,
            model=None,
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
    )


# -- encoding -------------------------------------------------------------------------------


def _items(step: LLMCallStep) -> list[dict[str, Any]]:
    """The completed output items: one message (when there is text), then function calls."""
    status = "incomplete" if output_of(step).finish_reason == "incomplete" else "completed"
    items: list[dict[str, Any]] = []
    text = text_of(output_of(step).content)
    if text:
        items.append(_message(step, text, status))
    for index, (call_id, name, args) in enumerate(_calls(step)):
        items.append(_function_call(step, index, call_id, name, dump_arguments(args), status))
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


def _response(
    step: LLMCallStep, output: list[dict[str, Any]], status: str | None = None
) -> dict[str, Any]:
    """A complete `response` object; `status` overrides the step's (for lifecycle events)."""
    final = status is None
    status = status or _status(step)
    created = epoch_seconds(step.timestamp)
    return {
        "id": f"resp_opswald_{step.step}",
        "object": "response",
        "created_at": created,
        "completed_at": created if final and status == "completed" else None,
        "status": status,
        "error": None,
        "incomplete_details": None,
        "instructions": None,
        "metadata": {},
        "model": step.model or "unknown",
        "output": output,
        "parallel_tool_calls": True,
        "temperature": None,
        "tool_choice": "auto",
        "tools": [],
        "top_p": None,
        "usage": usage_to(step.usage) if final else None,
    }


class _Events:
    """Numbers the events of one stream (`sequence_number` counts from 0)."""

    def __init__(self) -> None:
        self.frames: list[str] = []

    def add(self, kind: str, **fields: Any) -> None:
        data = {"type": kind, "sequence_number": len(self.frames), **fields}
        self.frames.append(sse.frame(data, kind))


def _frames(step: LLMCallStep) -> list[str]:
    """created, in_progress, every output item (added, deltas, done), then the final
    lifecycle event carrying the whole response with usage."""
    out = _Events()
    out.add("response.created", response=_response(step, [], "in_progress"))
    out.add("response.in_progress", response=_response(step, [], "in_progress"))
    items = _items(step)
    for index, item in enumerate(items):
        if item["type"] == "message":
            _message_events(out, index, item)
        else:
            _call_events(out, index, item)
    status = _status(step)
    kind = f"response.{status}" if f"response.{status}" in _FINAL_EVENTS else "response.completed"
    out.add(kind, response=_response(step, items))
    return out.frames


def _message_events(out: _Events, index: int, item: dict[str, Any]) -> None:
    text = item["content"][0]["text"]
    where = {"item_id": item["id"], "output_index": index}
    out.add(
        "response.output_item.added",
        output_index=index,
        item={**item, "status": "in_progress", "content": []},
    )
    out.add("response.content_part.added", **where, content_index=0, part=_text_part(""))
    for piece in chunks(text):
        out.add("response.output_text.delta", **where, content_index=0, delta=piece, logprobs=[])
    out.add("response.output_text.done", **where, content_index=0, text=text, logprobs=[])
    out.add("response.content_part.done", **where, content_index=0, part=_text_part(text))
    out.add("response.output_item.done", output_index=index, item=item)


def _call_events(out: _Events, index: int, item: dict[str, Any]) -> None:
    where = {"item_id": item["id"], "output_index": index}
    out.add(
        "response.output_item.added",
        output_index=index,
        item={**item, "status": "in_progress", "arguments": ""},
    )
    for piece in chunks(item["arguments"], 2):
        out.add("response.function_call_arguments.delta", **where, delta=piece)
    out.add("response.function_call_arguments.done", **where, arguments=item["arguments"])
    out.add("response.output_item.done", output_index=index, item=item)
