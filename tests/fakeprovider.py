"""A fake LLM provider on 127.0.0.1 that the real openai / anthropic SDKs can talk to.

It speaks enough of three wire formats — OpenAI Chat Completions, OpenAI Responses and
Anthropic Messages — as JSON and as SSE (``"stream": true``), serves a script of replies
in order, and can answer the first requests with errors so SDK retries really happen::

    with FakeProvider(script=[{"content": "hi"}], fail_first=[429]) as fp:
        client = openai.OpenAI(base_url=fp.base_url + "/v1", api_key="sk-test")
        client.chat.completions.create(model="gpt-4o", messages=[...])
        assert len(fp.requests) == 2

`fail_first` statuses answer the first POSTs (GET /health is never failed; with
`echo_key=True` their message names the API key the request sent, as some gateways do,
and with `should_retry=False` they say `x-should-retry: false`, which the SDKs obey);
`request_ids=True` names every answer with `x-request-id` and `request-id` headers;
`delay_first` seconds hold the first POST answers back (client timeouts really happen).
When the script runs out, replies are the text "done". A script item may carry
`thinking` (Anthropic: a signed `thinking` block and a `redacted_thinking` block first;
Responses: a `reasoning` item with an encrypted payload first), `usage_extra` (merged
into the Anthropic usage object as sent, e.g. `service_tier`) and `chunks` (piece
lengths, used in turn and repeated, for every text a stream sends: `[1, 4, 2]` cuts
"Hello world" into "H", "ello", " w", "o", "rld"; a 0 sends an empty piece, as providers
sometimes do (`[0, 6]`: "", "Hello ", "", "world"); without it a streamed text comes in
three even pieces) and `break_after` (a stream that breaks off: after that many pieces of
its texts — tool arguments and thinking count too — it sends an error event in the API's
own shape, as the APIs report an overload that comes mid-stream, HTTP status 200, and
ends; a JSON answer is not affected). Usage in the script is normalised the
OpenTelemetry way (``input_tokens`` includes ``cached_tokens``); the Anthropic wire form
reports uncached input separately, as the real API does.

Chat Completions also honours `n` (choice i > 0 answers the item's `alternatives[i - 1]`,
else its `content`; streamed choices interleave, as the API sends them) and `logprobs`
(each streamed content piece is one token, with its log probability in its chunk; the JSON
answer lists them all). A script item with `role_joined: true` streams each choice's role
in the chunk of its first piece (`{"role": "assistant", "content": "Hel"}`, or the first
tool call's head), as some providers and proxies do, rather than in a chunk of its own;
`finish_joined: true` sends each choice's finish reason in the chunk of its last piece
rather than in a chunk of its own, and `head_joined: true` each tool call's first piece of
arguments in the chunk of its head (`{"id": ..., "function": {"name": ...,
"arguments": "{\"ci"}}`), as other providers do; `finish_empty: true` sends each finish
reason with an empty piece (`{"content": ""}`), as some inference servers do;
`usage_joined: true` sends the usage in the last choice's finish chunk, whether or not the
request asked for it, in place of a usage chunk of its own; `calls_together: true` sends
all the tool calls of a choice whole (head and arguments) in one chunk; `id_repeated: true`
sends a tool call's `id` and `type` again with every later piece of its arguments, as some
proxies and providers do.
Other providers' and gateways' stream shapes: `added_whole: true` (Responses) sends each
output item whole (its content, arguments, summary) already in `response.output_item.added`
(status `in_progress`), then its usual events; `start_joined: true` (Anthropic) sends the
first piece of a text or thinking block in its `content_block_start` and a tool input whole
in its start, with no `input_json_delta` after it; `no_ping: true` (Anthropic) sends no
`ping` after `message_start` (the API sends one); `sequence_last: true` (Responses) puts
each event's `sequence_number` last (the API puts it second, after `type`);
`no_fingerprint: true` (Chat Completions) leaves the `system_fingerprint` key out of every
chunk (the API's say it). A Responses reasoning item (`thinking`) comes as gateways send
it: `output_item.added` with an empty summary and `encrypted_content: null`, then
`output_item.done` with both, and no summary events between.
A script item with `failed` (an error object, `{"code": "server_error", "message": ...}`)
is a Responses answer that failed: `status: "failed"` with that `error` (its output items
and usage as usual), which a stream sends as its last event, `response.failed`, in place
of `response.completed`; HTTP 200 either way, as the API answers.
A script item with `hold_after` (a number of events) sends a stream's first events, then
holds the rest back until `release()` is called or the client closes the connection (a
test can see the provider still holds `unsent` events when the agent got its first
chunk); `cut_after` sends that many events, then drops the connection (the body is
shorter than its `content-length`: the client's read fails mid-stream); on a JSON answer
it sends that many bytes of the body, then drops the connection. How each stream
ended is in `stream_ends`: `sent`, `closed by client` or `cut`.
Two endpoints beside the model calls answer too, as a gateway's would: OpenAI
`POST …/embeddings` (a 3-number vector per input) and Anthropic
`POST …/messages/count_tokens`; any other POST is answered 404.
"""

from __future__ import annotations

import itertools
import json
import select
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, NamedTuple, Self

Json = dict[str, Any]
CREATED = 1_700_000_000
HOLD_TIMEOUT = 10.0  # seconds a held stream waits for release() before it sends the rest
DEFAULT_USAGE: Json = {"input_tokens": 10, "output_tokens": 5, "cached_tokens": 0}
ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    429: "rate_limit_error",
    529: "overloaded_error",
}


class Received(NamedTuple):
    """One request as the fake provider saw it."""

    method: str
    path: str
    headers: dict[str, str]
    body: Any


class Reply(NamedTuple):
    """One scripted answer, with tool-call ids already assigned."""

    content: str | None
    tool_calls: list[tuple[str, str, Json]]  # (id number, name, arguments)
    input_tokens: int
    output_tokens: int
    cached_tokens: int
    thinking: str | None = None
    usage_extra: Json | None = None
    alternatives: tuple[str, ...] = ()  # Chat Completions choices 1, 2, ... when `n` > 1
    chunks: tuple[int, ...] = ()  # piece lengths of every streamed text, repeated
    break_after: int | None = None  # a stream's error event comes after this many pieces
    role_joined: bool = False  # Chat Completions: the role comes with the first piece
    finish_joined: bool = False  # Chat Completions: the finish comes with the last piece
    head_joined: bool = False  # Chat Completions: a call's head comes with its first piece
    finish_empty: bool = False  # Chat Completions: the finish comes with an empty piece
    usage_joined: bool = False  # Chat Completions: the usage comes in the last finish chunk
    calls_together: bool = False  # Chat Completions: every tool call whole in one chunk
    id_repeated: bool = False  # Chat Completions: a call's id and type come with every piece
    failed: Json | None = None  # Responses: the response failed with this error object
    added_whole: bool = False  # Responses: output_item.added carries the item whole
    start_joined: bool = False  # Anthropic: a block's start carries its first piece / input
    no_ping: bool = False  # Anthropic: no ping after message_start
    sequence_last: bool = False  # Responses: `sequence_number` is an event's last key
    no_fingerprint: bool = False  # Chat Completions: chunks without `system_fingerprint`
    hold_after: int | None = None  # a stream holds its other events back after this many
    cut_after: int | None = None  # a stream's connection is dropped after this many events

    def pieces(self, text: str) -> list[str]:
        """`text` as this reply streams it (a 0 in `chunks` is an empty piece)."""
        if not self.chunks:
            return _pieces(text)
        if not any(self.chunks):
            raise ValueError("chunks: at least one length must be above 0")
        out: list[str] = []
        sizes = itertools.cycle(self.chunks)
        while len("".join(out)) < len(text):
            at = len("".join(out))
            out.append(text[at : at + next(sizes)])
        return out


class ChatOptions(NamedTuple):
    """What a Chat Completions request asks of the answer's shape."""

    n: int = 1
    logprobs: bool = False
    include_usage: bool = False

    @classmethod
    def of(cls, body: Json) -> ChatOptions:
        n = body.get("n")
        opts = body.get("stream_options") or {}
        return cls(
            n=n if isinstance(n, int) and n > 1 else 1,
            logprobs=body.get("logprobs") is True,
            include_usage=bool(opts.get("include_usage")),
        )


# --------------------------------------------------------------------------- helpers


def _pieces(text: str, n: int = 3) -> list[str]:
    """Split `text` into up to `n` non-empty fragments (streams send several deltas)."""
    if not text:
        return []
    size = max(1, -(-len(text) // n))
    return [text[i : i + size] for i in range(0, len(text), size)]


def _args(call: tuple[str, str, Json]) -> str:
    return json.dumps(call[2], separators=(",", ":"))


def _sse(data: Json | str, event: str | None = None) -> bytes:
    payload = data if isinstance(data, str) else json.dumps(data)
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {payload}\n\n".encode()


# --------------------------------------------------------------------------- mid-stream errors

STREAM_ERROR_MESSAGE = "The server had an error while processing your request."
ANTHROPIC_STREAM_ERROR: Json = {
    "type": "error",
    "error": {"type": "overloaded_error", "message": "Overloaded"},
}
CHAT_STREAM_ERROR: Json = {
    "error": {"message": STREAM_ERROR_MESSAGE, "type": "server_error", "param": None, "code": None}
}


def _broken(events: list[Json], r: Reply, is_piece: Any, error: Json) -> list[Json]:
    """`events` up to the reply's `break_after`-th piece (`is_piece` says which events are
    pieces), then `error`: the stream breaks off there. Unchanged without `break_after`."""
    if r.break_after is None:
        return events
    out: list[Json] = []
    count = 0
    for event in events:
        if count >= r.break_after:
            break
        out.append(event)
        count += bool(is_piece(event))
    return [*out, error]


# --------------------------------------------------------------------------- OpenAI chat


def _chat_usage(r: Reply) -> Json:
    return {
        "prompt_tokens": r.input_tokens,
        "completion_tokens": r.output_tokens,
        "total_tokens": r.input_tokens + r.output_tokens,
        "prompt_tokens_details": {"cached_tokens": r.cached_tokens, "audio_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0},
    }


def _chat_finish(r: Reply) -> str:
    return "tool_calls" if r.tool_calls else "stop"


def _token(piece: str, k: int) -> Json:
    """One token's log probability (each content piece is one token here)."""
    return {
        "token": piece,
        "logprob": round(-0.25 * (k + 1), 2),
        "bytes": list(piece.encode()),
        "top_logprobs": [],
    }


def _choice_reply(r: Reply, index: int) -> Reply:
    """Choice `index` of an `n` > 1 answer: an alternative text (tool calls only in 0)."""
    if index == 0:
        return r
    alt = r.alternatives[index - 1] if index - 1 < len(r.alternatives) else r.content
    return r._replace(content=alt, tool_calls=[])


def chat_json(r: Reply, model: str, rid: str, options: ChatOptions | None = None) -> Json:
    """A `chat.completion` object."""
    options = options or ChatOptions()
    return {
        "id": rid,
        "object": "chat.completion",
        "created": CREATED,
        "model": model,
        "choices": [
            _chat_choice(_choice_reply(r, i), i, options.logprobs) for i in range(options.n)
        ],
        "usage": _chat_usage(r),
        "system_fingerprint": "fp_fake",
    }


def _chat_choice(r: Reply, index: int, logprobs: bool) -> Json:
    calls = [
        {
            "id": f"call_{c[0]}",
            "type": "function",
            "function": {"name": c[1], "arguments": _args(c)},
        }
        for c in r.tool_calls
    ]
    message: Json = {"role": "assistant", "content": r.content, "refusal": None}
    if calls:
        message["tool_calls"] = calls
    tokens = [_token(p, k) for k, p in enumerate(r.pieces(r.content or ""))]
    return {
        "index": index,
        "message": message,
        "logprobs": {"content": tokens, "refusal": None} if logprobs else None,
        "finish_reason": _chat_finish(r),
    }


def _chat_deltas(r: Reply, logprobs: bool = False) -> Iterator[tuple[Json, Json | None]]:
    """(delta, logprobs) of each chunk of one choice; with `role_joined` the role chunk is
    the first piece's (when there is one)."""
    role: Json = {"role": "assistant", "content": "" if r.content is not None else None}
    deltas = list(_chat_pieces(r, logprobs))
    if r.role_joined and deltas:
        yield {**role, **deltas[0][0]}, deltas[0][1]
        yield from deltas[1:]
        return
    yield role, None
    yield from deltas


def _chat_pieces(r: Reply, logprobs: bool) -> Iterator[tuple[Json, Json | None]]:
    """(delta, logprobs) of the chunks of one choice after its role chunk."""
    for k, piece in enumerate(r.pieces(r.content or "")):
        yield (
            {"content": piece},
            ({"content": [_token(piece, k)], "refusal": None} if logprobs else None),
        )
    if r.calls_together and r.tool_calls:
        whole = [
            {"index": index, "id": f"call_{call[0]}", "type": "function",
             "function": {"name": call[1], "arguments": _args(call)}}
            for index, call in enumerate(r.tool_calls)
        ]  # fmt: skip
        yield {"tool_calls": whole}, None
        return
    for index, call in enumerate(r.tool_calls):
        head = {"index": index, "id": f"call_{call[0]}", "type": "function"}
        pieces = r.pieces(_args(call))
        first = pieces.pop(0) if r.head_joined and pieces else ""
        yield {"tool_calls": [{**head, "function": {"name": call[1], "arguments": first}}]}, None
        again = head if r.id_repeated else {"index": index}
        for piece in pieces:
            yield {"tool_calls": [{**again, "function": {"arguments": piece}}]}, None


def chat_sse(
    r: Reply, model: str, rid: str, include_usage: bool, options: ChatOptions | None = None
) -> Iterator[bytes]:
    """`chat.completion.chunk` events (the choices interleaved), an optional usage chunk,
    then `[DONE]`."""
    options = options or ChatOptions(include_usage=include_usage)
    base: Json = {"id": rid, "object": "chat.completion.chunk", "created": CREATED, "model": model}
    if not r.no_fingerprint:
        base["system_fingerprint"] = "fp_fake"
    if include_usage:
        base["usage"] = None
    choices = [_choice_reply(r, i) for i in range(options.n)]
    streams = [list(_chat_deltas(c, options.logprobs)) for c in choices]
    # a choice's finish joins the chunk of its last piece (a choice with none sends it alone)
    joined = [
        c.finish_joined and any(stream[-1][0].get(k) for k in ("content", "tool_calls"))
        for c, stream in zip(choices, streams, strict=True)
    ]
    chunks: list[Json] = []
    for row in itertools.zip_longest(*streams):
        for index, item in enumerate(row):
            if item is None:
                continue
            delta, logprobs = item
            last = item is streams[index][-1] and joined[index]
            finish = _chat_finish(choices[index]) if last else None
            choice = {"index": index, "delta": delta, "logprobs": logprobs, "finish_reason": finish}
            chunks.append({**base, "choices": [choice]})
    for index, c in enumerate(choices):
        if joined[index]:
            continue
        delta: Json = {"content": ""} if c.finish_empty else {}
        last = {"index": index, "delta": delta, "logprobs": None, "finish_reason": _chat_finish(c)}
        chunks.append({**base, "choices": [last]})
    if r.usage_joined:
        chunks[-1] = {**chunks[-1], "usage": _chat_usage(r)}
    elif include_usage:
        chunks.append({**base, "choices": [], "usage": _chat_usage(r)})
    for chunk in _broken(chunks, r, _chat_piece, CHAT_STREAM_ERROR):
        yield _sse(chunk)
    if r.break_after is None:
        yield _sse("[DONE]")


def _chat_piece(chunk: Json) -> bool:
    """A chunk that carries a piece of a text (not a role chunk or a call's head)."""
    delta = (chunk.get("choices") or [{}])[0].get("delta") or {}
    if delta.get("role") is not None and not delta.get("content"):
        return False  # a role chunk, unless the first piece came in it
    calls = delta.get("tool_calls") or [{}]
    arguments = (calls[0].get("function") or {}).get("arguments")
    return bool(delta.get("content") or delta.get("refusal") or "id" not in calls[0] or arguments)


# --------------------------------------------------------------------------- OpenAI responses


def _resp_items(r: Reply, rid: str) -> list[Json]:
    items: list[Json] = []
    if r.thinking is not None:
        summary = [{"type": "summary_text", "text": r.thinking}]
        items.append(
            {
                "type": "reasoning",
                "id": f"rs_{rid}",
                "summary": summary,
                "encrypted_content": f"enc:{rid}:opaque",
            }
        )
    if r.content is not None:
        text = {"type": "output_text", "text": r.content, "annotations": [], "logprobs": []}
        items.append(
            {
                "type": "message",
                "id": f"msg_{rid}",
                "status": "completed",
                "role": "assistant",
                "content": [text],
            }
        )
    for call in r.tool_calls:
        items.append(
            {
                "type": "function_call",
                "id": f"fc_{call[0]}",
                "call_id": f"call_{call[0]}",
                "name": call[1],
                "arguments": _args(call),
                "status": "completed",
            }
        )
    return items


def responses_json(
    r: Reply, model: str, rid: str, status: str = "completed", instructions: Any = None
) -> Json:
    """A `response` object (`status` in_progress has no output and no usage yet; a
    failed one has its `error`); it echoes the request's `instructions` (null without
    them), as the API does."""
    done = status == "completed"
    ended = status in ("completed", "failed")
    usage = {
        "input_tokens": r.input_tokens,
        "input_tokens_details": {"cached_tokens": r.cached_tokens, "cache_write_tokens": 0},
        "output_tokens": r.output_tokens,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": r.input_tokens + r.output_tokens,
    }
    return {
        "id": rid,
        "object": "response",
        "created_at": CREATED,
        "completed_at": CREATED if done else None,
        "status": status,
        "model": model,
        "instructions": instructions,
        "output": _resp_items(r, rid) if ended else [],
        "parallel_tool_calls": True,
        "tool_choice": "auto",
        "tools": [],
        "error": r.failed if status == "failed" else None,
        "incomplete_details": None,
        "usage": usage if ended else None,
    }


def _resp_item_events(r: Reply, item: Json, index: int) -> Iterator[Json]:
    for event in _resp_item_body(r, item, index):
        if r.added_whole and event["type"] == "response.output_item.added":
            whole = {**item, "status": "in_progress"} if "status" in item else item
            event = {**event, "item": whole}
        yield event


def _resp_item_body(r: Reply, item: Json, index: int) -> Iterator[Json]:
    if item["type"] == "reasoning":
        started = {**item, "summary": [], "encrypted_content": None}
        yield {"type": "response.output_item.added", "output_index": index, "item": started}
    elif item["type"] == "message":
        started = {**item, "status": "in_progress", "content": []}
        yield {"type": "response.output_item.added", "output_index": index, "item": started}
        part = item["content"][0]
        loc = {"item_id": item["id"], "output_index": index, "content_index": 0}
        empty = {**part, "text": ""}
        yield {"type": "response.content_part.added", **loc, "part": empty}
        for piece in r.pieces(part["text"]):
            yield {"type": "response.output_text.delta", **loc, "delta": piece, "logprobs": []}
        yield {"type": "response.output_text.done", **loc, "text": part["text"], "logprobs": []}
        yield {"type": "response.content_part.done", **loc, "part": part}
    else:
        started = {**item, "status": "in_progress", "arguments": ""}
        yield {"type": "response.output_item.added", "output_index": index, "item": started}
        loc = {"item_id": item["id"], "output_index": index}
        for piece in r.pieces(item["arguments"]):
            yield {"type": "response.function_call_arguments.delta", **loc, "delta": piece}
        done = {"type": "response.function_call_arguments.done", **loc}
        yield {**done, "name": item["name"], "arguments": item["arguments"]}
    yield {"type": "response.output_item.done", "output_index": index, "item": item}


def responses_sse(r: Reply, model: str, rid: str, instructions: Any = None) -> Iterator[bytes]:
    """response.created … response.output_text.delta … response.completed."""
    pending = responses_json(r, model, rid, "in_progress", instructions)
    events: list[Json] = [
        {"type": "response.created", "response": pending},
        {"type": "response.in_progress", "response": pending},
    ]
    for index, item in enumerate(_resp_items(r, rid)):
        events.extend(_resp_item_events(r, item, index))
    status = "failed" if r.failed is not None else "completed"
    final = responses_json(r, model, rid, status, instructions)
    events.append({"type": f"response.{status}", "response": final})
    error = {"type": "error", "code": "server_error", "message": STREAM_ERROR_MESSAGE}
    error["param"] = None
    events = _broken(events, r, lambda e: e["type"].endswith(".delta"), error)
    for seq, event in enumerate(events):
        number = {"sequence_number": seq}
        event = (
            {**event, **number} if r.sequence_last else {"type": event["type"], **number, **event}
        )
        yield _sse(event, event=event["type"])


# --------------------------------------------------------------------------- Anthropic


def _anthropic_usage(r: Reply) -> Json:
    return {
        "input_tokens": r.input_tokens - r.cached_tokens,
        "output_tokens": r.output_tokens,
        "cache_read_input_tokens": r.cached_tokens,
        "cache_creation_input_tokens": 0,
        **(r.usage_extra or {}),
    }


def _anthropic_blocks(r: Reply) -> list[Json]:
    blocks: list[Json] = []
    if r.thinking is not None:
        signature = f"sig-{len(r.thinking)}-EqQBCkYIARgCIkB0"
        blocks.append({"type": "thinking", "thinking": r.thinking, "signature": signature})
        blocks.append({"type": "redacted_thinking", "data": "EmwKAhgBEgy3va3pzix/LafPsn4a"})
    if r.content is not None:
        blocks.append({"type": "text", "text": r.content})
    for call in r.tool_calls:
        blocks.append(
            {"type": "tool_use", "id": f"toolu_{call[0]}", "name": call[1], "input": call[2]}
        )
    return blocks


def _anthropic_message(r: Reply, model: str, rid: str, content: list[Json]) -> Json:
    return {
        "id": rid,
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": "tool_use" if r.tool_calls else "end_turn",
        "stop_sequence": None,
        "usage": _anthropic_usage(r),
    }


def messages_json(r: Reply, model: str, rid: str) -> Json:
    """An Anthropic `message` object."""
    return _anthropic_message(r, model, rid, _anthropic_blocks(r))


def _block_events(r: Reply, block: Json, index: int) -> Iterator[Json]:
    if block["type"] == "thinking":
        pieces = r.pieces(block["thinking"])
        first = pieces.pop(0) if r.start_joined and pieces else ""
        head = {"type": "thinking", "thinking": first, "signature": ""}
        yield {"type": "content_block_start", "index": index, "content_block": head}
        for piece in pieces:
            delta = {"type": "thinking_delta", "thinking": piece}
            yield {"type": "content_block_delta", "index": index, "delta": delta}
        delta = {"type": "signature_delta", "signature": block["signature"]}
        yield {"type": "content_block_delta", "index": index, "delta": delta}
    elif block["type"] == "redacted_thinking":
        yield {"type": "content_block_start", "index": index, "content_block": block}
    elif block["type"] == "text":
        pieces = r.pieces(block["text"])
        first = pieces.pop(0) if r.start_joined and pieces else ""
        yield {
            "type": "content_block_start",
            "index": index,
            "content_block": {**block, "text": first},
        }
        for piece in pieces:
            delta = {"type": "text_delta", "text": piece}
            yield {"type": "content_block_delta", "index": index, "delta": delta}
    elif r.start_joined:  # the input whole in the start, no deltas
        yield {"type": "content_block_start", "index": index, "content_block": block}
    else:
        yield {
            "type": "content_block_start",
            "index": index,
            "content_block": {**block, "input": {}},
        }
        for piece in r.pieces(json.dumps(block["input"], separators=(",", ":"))):
            delta = {"type": "input_json_delta", "partial_json": piece}
            yield {"type": "content_block_delta", "index": index, "delta": delta}
    yield {"type": "content_block_stop", "index": index}


def messages_sse(r: Reply, model: str, rid: str) -> Iterator[bytes]:
    """message_start, content blocks with deltas, message_delta, message_stop."""
    start = _anthropic_message(r, model, rid, [])
    delta = {"stop_reason": start["stop_reason"], "stop_sequence": None}
    start.update(stop_reason=None, usage={**_anthropic_usage(r), "output_tokens": 1})
    events: list[Json] = [{"type": "message_start", "message": start}]
    if not r.no_ping:
        events.append({"type": "ping"})
    for index, block in enumerate(_anthropic_blocks(r)):
        events.extend(_block_events(r, block, index))
    usage = {"output_tokens": r.output_tokens}
    events.append({"type": "message_delta", "delta": delta, "usage": usage})
    events.append({"type": "message_stop"})
    events = _broken(events, r, _anthropic_piece, ANTHROPIC_STREAM_ERROR)
    for event in events:
        yield _sse(event, event=event["type"])


def _anthropic_piece(event: Json) -> bool:
    kind = event["type"] == "content_block_delta"
    return kind and event["delta"]["type"] != "signature_delta"


# --------------------------------------------------------------------------- other endpoints


def _other_endpoint(path: str, body: Json) -> Json:
    """An answer of an endpoint beside the model calls (embeddings, count_tokens)."""
    if path.endswith("/count_tokens"):
        return {"input_tokens": len(json.dumps(body.get("messages") or []))}
    texts = body.get("input")
    texts = texts if isinstance(texts, list) else [texts]
    data = [
        {"object": "embedding", "index": i, "embedding": [0.1 * (i + 1), 0.2, 0.3]}
        for i in range(len(texts))
    ]
    usage = {"prompt_tokens": len(texts), "total_tokens": len(texts)}
    return {"object": "list", "model": body.get("model"), "data": data, "usage": usage}


# --------------------------------------------------------------------------- errors


def error_body(status: int, anthropic: bool) -> Json:
    """An error body in the provider's own shape."""
    kind = ERROR_TYPES.get(status, "api_error" if anthropic else "server_error")
    message = f"fake provider: scripted HTTP {status}"
    if anthropic:
        return {"type": "error", "error": {"type": kind, "message": message}}
    return {"error": {"message": message, "type": kind, "param": None, "code": str(status)}}


# --------------------------------------------------------------------------- server


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server
    timeout = 10  # an idle keep-alive connection is dropped after this many seconds

    def log_message(self, format: str, *args: Any) -> None:
        """Stay quiet."""

    def end_headers(self) -> None:
        owner = self.server.owner
        if owner.request_ids:  # as the APIs name each answer (OpenAI, then Anthropic)
            rid = f"req_fake_{next(owner._rids):04d}"
            self.send_header("x-request-id", rid)
            self.send_header("request-id", rid)
        super().end_headers()

    def do_GET(self) -> None:
        self.server.owner._record(self, None)
        if self.path.split("?")[0] == "/health":
            self._send(200, b"ok", "text/plain")
        else:
            self._send_json(404, error_body(404, anthropic=False))

    def do_POST(self) -> None:
        raw = self._read_body()
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode("utf-8", "replace")
        self.server.owner._handle_post(self, body)

    def _read_body(self) -> bytes:
        if self.headers.get("transfer-encoding", "").lower() == "chunked":
            return self._read_chunked()
        return self.rfile.read(int(self.headers.get("content-length") or 0))

    def _read_chunked(self) -> bytes:
        out = b""
        for _ in range(1_000_000):
            size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
            if size == 0:
                self.rfile.readline()
                break
            out += self.rfile.read(size)
            self.rfile.readline()
        return out

    def _send(
        self,
        status: int,
        body: bytes,
        ctype: str,
        extra: dict[str, str] | None = None,
        cut_after: int | None = None,
    ) -> None:
        self.send_response(status)
        self.send_header("content-type", ctype)
        self.send_header("content-length", str(len(body)))
        for key, value in (extra or {}).items():
            self.send_header(key, value)
        self.end_headers()
        if cut_after is not None:  # the rest never comes: the connection is dropped
            self.wfile.write(body[:cut_after])
            self.close_connection = True
            return
        self.wfile.write(body)

    def _send_json(
        self,
        status: int,
        data: Json,
        extra: dict[str, str] | None = None,
        cut_after: int | None = None,
    ) -> None:
        self._send(status, json.dumps(data).encode(), "application/json", extra, cut_after)

    def _send_sse(self, events: Iterator[bytes], reply: Reply) -> None:
        chunks = list(events)
        owner = self.server.owner
        self.send_response(200)
        self.send_header("content-type", "text/event-stream; charset=utf-8")
        self.send_header("cache-control", "no-cache")
        self.send_header("content-length", str(sum(map(len, chunks))))
        self.end_headers()
        self.wfile.flush()
        if reply.hold_after is not None and reply.hold_after < len(chunks):
            with owner._lock:  # counted before the first event goes: the client may read
                owner.unsent = len(chunks) - reply.hold_after  # it before _hold runs
        for at, chunk in enumerate(chunks):  # one write per event: the client reads a stream
            if at == reply.cut_after:  # the rest never comes: the connection is dropped
                self.close_connection = True
                owner._ended("cut")
                return
            if at == reply.hold_after and not owner._hold(self, len(chunks) - at):
                self.close_connection = True
                owner._ended("closed by client")
                return
            self.wfile.write(chunk)
            self.wfile.flush()
        owner._ended("sent")

    def closed_by_peer(self) -> bool:
        """The client closed the connection (it sends nothing while it reads an answer:
        the socket turns readable at its end)."""
        sock = self.connection
        try:
            readable, _, _ = select.select([sock], [], [], 0)
            return bool(readable) and sock.recv(1, socket.MSG_PEEK) == b""
        except OSError:
            return True


class _Server(ThreadingHTTPServer):
    daemon_threads = False  # so server_close() joins every handler thread
    block_on_close = True

    def __init__(self, owner: FakeProvider) -> None:
        self.owner = owner
        self.open: set[socket.socket] = set()
        self.open_lock = threading.Lock()
        super().__init__(("127.0.0.1", 0), _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self.open_lock:
            self.open.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self.open_lock:
            self.open.discard(request)
        super().shutdown_request(request)

    def drop_connections(self) -> None:
        """Wake handlers blocked on idle keep-alive connections so they can be joined."""
        with self.open_lock:
            conns = list(self.open)
        for conn in conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Connections cut by clients or by stop() are normal here."""


class FakeProvider:
    """A scripted OpenAI/Anthropic-compatible server on 127.0.0.1 (see module docstring)."""

    def __init__(
        self,
        script: list[Json] | None = None,
        fail_first: list[int] | None = None,
        delay_first: list[float] | None = None,
        echo_key: bool = False,
        request_ids: bool = False,
        should_retry: bool | None = None,
    ) -> None:
        self.script = list(script or [])
        self.request_ids = request_ids  # every answer names itself: x-request-id, request-id
        self._rids = itertools.count(1)
        self.should_retry = should_retry  # a failure says x-should-retry: true / false
        self.echo_key = echo_key  # a failure's message names the key sent, as gateways do
        self.fail_first = list(fail_first or [])
        self.delay_first = list(delay_first or [])
        self._requests: list[Received] = []
        self._lock = threading.Lock()
        self._release = threading.Event()
        self.unsent = 0  # events a held stream has not sent yet
        self._ends: list[str] = []
        self._served = 0
        self._ids = itertools.count(1)
        self._server = _Server(self)
        host, port = self._server.server_address[:2]
        self.base_url = f"http://{host}:{port}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True
        )
        self._thread.start()

    @property
    def requests(self) -> list[Received]:
        """Every request received so far, in order (a copy)."""
        with self._lock:
            return list(self._requests)

    @property
    def stream_ends(self) -> list[str]:
        """How each stream answered so far ended: `sent` (all of it), `closed by client`
        (while it was held back), `cut` (its connection dropped after `cut_after`)."""
        with self._lock:
            return list(self._ends)

    def release(self) -> None:
        """Send the rest of a stream held back by `hold_after` (and of any held later)."""
        self._release.set()

    def wait_ended(self, count: int = 1, timeout: float = 10.0) -> list[str]:
        """`stream_ends` once `count` streams have ended (or `timeout` seconds passed)."""
        deadline = time.monotonic() + timeout
        while len(self.stream_ends) < count and time.monotonic() < deadline:
            time.sleep(0.01)
        return self.stream_ends

    def stop(self) -> None:
        """Stop serving, cut open connections and join every thread."""
        self._release.set()
        self._server.shutdown()
        self._server.drop_connections()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- request handling (called from handler threads)

    def _record(self, handler: _Handler, body: Any) -> None:
        """Store the request."""
        headers = {k.lower(): v for k, v in handler.headers.items()}
        with self._lock:
            self._requests.append(Received(handler.command, handler.path, headers, body))

    def _ended(self, how: str) -> None:
        with self._lock:
            self._ends.append(how)
            self.unsent = 0

    def _hold(self, handler: _Handler, unsent: int) -> bool:
        """Hold a stream's `unsent` events back until release() (or HOLD_TIMEOUT); False
        when the client closed the connection meanwhile."""
        with self._lock:
            self.unsent = unsent
        deadline = time.monotonic() + HOLD_TIMEOUT
        while not self._release.wait(0.01):
            if handler.closed_by_peer():
                return False
            if time.monotonic() > deadline:
                break
        with self._lock:
            self.unsent = 0
        return True

    def _next_failure(self) -> int | None:
        with self._lock:
            return self.fail_first.pop(0) if self.fail_first else None

    def _next_delay(self) -> float:
        with self._lock:
            return self.delay_first.pop(0) if self.delay_first else 0.0

    def _next_reply(self) -> tuple[Reply, int]:
        with self._lock:
            self._served += 1
            n = self._served
            item = self.script[n - 1] if n <= len(self.script) else {"content": "done"}
            calls = [
                (str(next(self._ids)), c["name"], dict(c.get("arguments") or {}))
                for c in item.get("tool_calls") or []
            ]
        usage = {**DEFAULT_USAGE, **(item.get("usage") or {})}
        reply = Reply(
            item.get("content"),
            calls,
            usage["input_tokens"],
            usage["output_tokens"],
            usage.get("cached_tokens") or 0,
            thinking=item.get("thinking"),
            usage_extra=item.get("usage_extra"),
            alternatives=tuple(item.get("alternatives") or ()),
            chunks=tuple(item.get("chunks") or ()),
            break_after=item.get("break_after"),
            role_joined=bool(item.get("role_joined")),
            finish_joined=bool(item.get("finish_joined")),
            head_joined=bool(item.get("head_joined")),
            finish_empty=bool(item.get("finish_empty")),
            usage_joined=bool(item.get("usage_joined")),
            calls_together=bool(item.get("calls_together")),
            id_repeated=bool(item.get("id_repeated")),
            failed=item.get("failed"),
            added_whole=bool(item.get("added_whole")),
            start_joined=bool(item.get("start_joined")),
            no_ping=bool(item.get("no_ping")),
            sequence_last=bool(item.get("sequence_last")),
            no_fingerprint=bool(item.get("no_fingerprint")),
            hold_after=item.get("hold_after"),
            cut_after=item.get("cut_after"),
        )
        return reply, n

    def _handle_post(self, handler: _Handler, body: Any) -> None:
        self._record(handler, body)
        delay = self._next_delay()
        if delay:
            time.sleep(delay)  # the client gives up first; the late answer goes nowhere
        path = handler.path.split("?")[0].rstrip("/")
        anthropic = path.endswith("/messages")
        status = self._next_failure()
        if status is not None:
            extra = {"retry-after-ms": "1", "retry-after": "0"}
            if self.should_retry is not None:
                extra["x-should-retry"] = "true" if self.should_retry else "false"
            answer = error_body(status, anthropic)
            if self.echo_key:
                sent = handler.headers.get("x-api-key") or handler.headers.get("authorization")
                answer["error"]["message"] = f"Invalid API key: {sent.split()[-1]}"
            handler._send_json(status, answer, extra)
            return
        if path.endswith(("/embeddings", "/messages/count_tokens")):
            handler._send_json(200, _other_endpoint(path, body if isinstance(body, dict) else {}))
            return
        kind = next(
            (k for k in ("/chat/completions", "/responses", "/messages") if path.endswith(k)), None
        )
        if kind is None:
            handler._send_json(404, error_body(404, anthropic))
            return
        self._answer(handler, kind, body if isinstance(body, dict) else {})

    def _answer(self, handler: _Handler, kind: str, body: Json) -> None:
        reply, n = self._next_reply()
        model = str(body.get("model") or "fake-model")
        stream = bool(body.get("stream"))
        if kind == "/chat/completions":
            rid = f"chatcmpl-{n}"
            options = ChatOptions.of(body)
            if stream:
                events = chat_sse(reply, model, rid, options.include_usage, options)
                handler._send_sse(events, reply)
            else:
                handler._send_json(
                    200, chat_json(reply, model, rid, options), cut_after=reply.cut_after
                )
        elif kind == "/responses":
            rid = f"resp_{n}"
            instructions = body.get("instructions")
            if stream:
                handler._send_sse(responses_sse(reply, model, rid, instructions), reply)
            else:
                status = "failed" if reply.failed is not None else "completed"
                answer = responses_json(reply, model, rid, status, instructions)
                handler._send_json(200, answer, cut_after=reply.cut_after)
        else:
            rid = f"msg_{n}"
            if stream:
                handler._send_sse(messages_sse(reply, model, rid), reply)
            else:
                handler._send_json(200, messages_json(reply, model, rid), cut_after=reply.cut_after)
