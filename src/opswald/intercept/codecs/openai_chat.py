"""OpenAI Chat Completions (`POST …/chat/completions`), JSON and SSE."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from opswald.intercept.codecs import sse
from opswald.intercept.codecs.base import (
    Cuts,
    Decoded,
    Pieces,
    StreamError,
    WireResponse,
    as_int,
    chunks,
    dump_arguments,
    epoch_seconds,
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
    text_of,
    tool_call_parts,
    wants_stream,
)
from opswald.session import LLMCallStep, LLMOutput, Usage


class OpenAIChatCodec:
    """`chat.completions.create`: messages in, one choice's message out."""

    provider: str = "openai"
    api: str = "openai.chat_completions"

    def handles(self, method: str, path: str) -> bool:
        return is_post_to(method, path, "/chat/completions")

    def request(self, body: Any) -> dict[str, Any]:
        data = body if isinstance(body, dict) else {}
        messages = data.get("messages")
        parsed = [_parsed_message(m) for m in messages] if isinstance(messages, list) else None
        return request_dict(self, body, parsed, data.get("tools"), {"model", "messages", "tools"})

    def header_params(self, headers: Mapping[str, str]) -> dict[str, Any]:
        return {}  # nothing in this API's headers changes what is asked

    def is_stream(self, body: Any) -> bool:
        return wants_stream(body)

    def decode(self, body: bytes, *, stream: bool, cut: bool = False) -> Decoded:
        if stream:
            return _decode_stream(body, cut)
        return decode_json(load_json(body, self.api))

    def encode(
        self, step: LLMCallStep, *, stream: bool, request: dict[str, Any] | None = None
    ) -> WireResponse:
        broke = stream_cut(step)
        if stream:
            return sse.stream_response(_frames(step, _include_usage(request), broke))
        if broke:
            return error_response(broke[0])
        if isinstance(step.raw, dict) and raw_agrees(step, decode_json(step.raw)):
            return json_response(step.raw)
        return json_response(_completion(step))


# -- request --------------------------------------------------------------------------------


def _include_usage(request: dict[str, Any] | None) -> bool:
    """Whether a stream ends with the usage chunk: only when the request asks for it
    (`stream_options.include_usage`), as the API does; True when the request is unknown."""
    if request is None:
        return True
    options = sub(request, "input", "params", "stream_options")
    return isinstance(options, dict) and options.get("include_usage") is True


def _parsed_message(message: Any) -> Any:
    """An assistant message with its tool-call argument strings parsed into data.

    Copies only what changes (the body was just parsed and is not shared); the message
    passed in is never mutated.
    """
    if not isinstance(message, dict):
        return message
    calls = message.get("tool_calls")
    function_call = message.get("function_call")
    if not calls and not isinstance(function_call, dict):
        return message
    message = dict(message)
    if isinstance(calls, list):
        message["tool_calls"] = [_parsed_call(c) for c in calls]
    if isinstance(function_call, dict):
        message["function_call"] = {
            **function_call,
            "arguments": parse_arguments(function_call.get("arguments")),
        }
    return message


def _parsed_call(call: Any) -> Any:
    if not (isinstance(call, dict) and isinstance(call.get("function"), dict)):
        return call
    function = call["function"]
    return {
        **call,
        "function": {**function, "arguments": parse_arguments(function.get("arguments"))},
    }


# -- decoding -------------------------------------------------------------------------------


def decode_json(data: Any) -> Decoded:
    """A `chat.completion` object (already parsed) in normalised terms."""
    choice = sub(data, "choices", 0)
    message = sub(choice, "message") or {}
    calls = [_tool_call(c) for c in message.get("tool_calls") or [] if isinstance(c, dict)]
    content = message.get("content")
    output = LLMOutput(
        content=text_of(content) or None,
        tool_calls=calls or None,
        finish_reason=sub(choice, "finish_reason"),
    )
    return Decoded(
        output=output,
        usage=usage_from(sub(data, "usage")),
        cost=reported_cost(data),
        raw=data,
        model=sub(data, "model"),
    )


def _tool_call(call: dict[str, Any]) -> dict[str, Any]:
    function = call.get("function") or call.get("custom") or {}
    args = function.get("arguments", function.get("input"))
    return {"id": call.get("id"), "name": function.get("name"), "arguments": parse_arguments(args)}


def usage_from(usage: Any) -> Usage | None:
    """OpenAI `CompletionUsage` -> Usage (prompt_tokens already include cached tokens)."""
    if not isinstance(usage, dict):
        return None
    return make_usage(
        input_tokens=as_int(usage.get("prompt_tokens")),
        output_tokens=as_int(usage.get("completion_tokens")),
        total_tokens=as_int(usage.get("total_tokens")),
        cache_read_tokens=as_int(sub(usage, "prompt_tokens_details", "cached_tokens")),
        cache_creation_tokens=as_int(sub(usage, "prompt_tokens_details", "cache_write_tokens")),
        reasoning_tokens=as_int(sub(usage, "completion_tokens_details", "reasoning_tokens")),
    )


def _message_path(index: int) -> str:
    return f"choices[{index}].message"


def _arguments_path(index: int, position: Any) -> str:
    return f"{_message_path(index)}.tool_calls[{position}].function.arguments"


# The STREAM_CHUNKS value, under a choice's `choices[i].message.role`, of a stream that
# sent the choice's role in the chunk of its first piece (`{"role": "assistant",
# "content": "Hel"}`, or with the first tool call's head), as some providers and proxies
# do; without it the role comes in a chunk of its own, as the API sends it.
ROLE_JOINED = "with first piece"


def _role_path(index: int) -> str:
    return f"{_message_path(index)}.role"


# The STREAM_CHUNKS value, under a choice's `choices[i].finish_reason`, of a stream that
# sent the choice's finish reason in the chunk of its last piece, and under a tool call's
# `choices[i].message.tool_calls[j]`, ROLE_JOINED when its head (id, name) came with the
# first piece of its arguments: other providers stream so; the API sends each in a chunk
# of its own, as replay does without them.
FINISH_JOINED = "with last piece"

# The STREAM_CHUNKS value, under a tool call's `choices[i].message.tool_calls[j].id` (and
# `.type`), of a stream that sent the call's id (its type) again with every later piece of
# its arguments, as some proxies and providers do; the API sends them in the head only.
REPEATED = "with every piece"

# The STREAM_CHUNKS key and value of a stream that sent its usage in the chunk of the last
# choice's finish (as some providers do, asked for it or not) instead of in a chunk of its
# own after them (only when the request asked for it, as the API does).
USAGE = "usage"
USAGE_JOINED = "with last finish"

# The STREAM_CHUNKS value, under a choice's `choices[i].message.content`, of a stream whose
# role chunk said `content: ""` and no text came after it (an empty answer): replay's role
# chunk says `content: null` when the answer has no text, as the API's does before tool
# calls, unless it has this.
EMPTY_TEXT = "empty"


# The STREAM_CHUNKS value, under a choice's `choices[i].message.tool_calls`, of a stream
# that sent all the choice's tool calls (two or more) whole, heads and arguments, in one
# chunk; replay sends each call in chunks of its own without it, as the API does.
CALLS_TOGETHER = "whole in one chunk"

# The STREAM_CHUNKS key and value of a stream whose chunks had no `system_fingerprint` key
# at all (some providers leave it out); the API's say it, null or not, as replay's do
# without it.
FINGERPRINT = "system_fingerprint"
FINGERPRINT_ABSENT = "absent"


def _finish_path(index: int) -> str:
    return f"choices[{index}].finish_reason"


def _call_path(index: int, position: Any) -> str:
    return f"{_message_path(index)}.tool_calls[{position}]"


def _carries_piece(delta: dict[str, Any]) -> bool:
    """The delta carries a piece of the answer: text, a refusal or a tool call."""
    return bool(delta.get("content") or delta.get("refusal") or delta.get("tool_calls"))


class _ChoiceState:
    """Accumulates the deltas of one choice (its `index`) of a stream."""

    def __init__(self, index: int, pieces: Pieces) -> None:
        self.index = index
        self.path = _message_path(index)
        self.pieces = pieces
        self.texts: list[str] = []
        self.refusal: list[str] = []
        self.calls: dict[int, dict[str, Any]] = {}
        self.finish: str | None = None
        self.logprobs: dict[str, Any] | None = None  # None: the chunks carried none
        self.started = False  # a chunk of this choice was read
        self.role_joined = False  # the role came in the chunk of the first piece
        self.finish_joined = False  # the finish reason came in the chunk of the last piece
        self.heads_joined: set[int] = set()  # calls whose head came with their first piece
        self.repeated: dict[int, set[str]] = {}  # head keys a call's later pieces came with
        self.role_text = False  # the role chunk said `content: ""`
        self.call_chunks = 0  # chunks that carried tool-call fragments
        self.calls_whole = False  # one chunk carried two or more calls, each whole

    def add(self, choice: dict[str, Any]) -> None:
        delta = choice.get("delta") or {}
        # the role chunk's `content: ""` is its placeholder, sent again on replay; an
        # empty string in any other chunk is an empty piece the provider sent
        role_chunk = delta.get("role") is not None and not self.started
        self.started = True
        if role_chunk and _carries_piece(delta):
            self.role_joined = True
        if role_chunk and delta.get("content") == "":
            self.role_text = True
        for key, parts in (("content", self.texts), ("refusal", self.refusal)):
            piece = delta.get(key)
            if isinstance(piece, str):
                parts.append(piece)
                if piece or not role_chunk:
                    self.pieces.add(f"{self.path}.{key}", piece)
        fragments = [f for f in delta.get("tool_calls") or [] if isinstance(f, dict)]
        if fragments:
            self.call_chunks += 1
            self.calls_whole = len(fragments) > 1 and all(
                f.get("id") is not None and (f.get("function") or {}).get("arguments")
                for f in fragments
            )
        for fragment in fragments:
            self._add_tool_fragment(fragment)
        if choice.get("finish_reason"):
            self.finish = choice["finish_reason"]
            # anything in its delta (a piece, an empty one, the role): not a chunk of its own
            self.finish_joined = any(value is not None for value in delta.values())
        if isinstance(choice.get("logprobs"), dict):
            self._add_logprobs(choice["logprobs"])

    def _add_tool_fragment(self, fragment: dict[str, Any]) -> None:
        position = fragment.get("index", 0)
        # a call's head is its first fragment (later ones may carry its id again)
        head = position not in self.calls
        call = self.calls.setdefault(position, {"id": None, "name": "", "args": ""})
        call["id"] = fragment.get("id") or call["id"]
        function = fragment.get("function") or {}
        call["name"] += function.get("name") or ""
        call["args"] += function.get("arguments") or ""
        arguments = function.get("arguments")
        if arguments or not head:  # a call's head has `arguments: ""`
            self.pieces.add(_arguments_path(self.index, position), arguments)
            if arguments and head:
                self.heads_joined.add(position)
        if not head:
            keys = {key for key in ("id", "type") if fragment.get(key) is not None}
            self.repeated.setdefault(position, set()).update(keys)

    def _add_logprobs(self, logprobs: dict[str, Any]) -> None:
        """Each chunk carries the log probabilities of its own tokens: the whole answer's
        are their concatenation, as the JSON answer lists them."""
        if self.logprobs is None:
            self.logprobs = {"content": None, "refusal": None}
        for key in ("content", "refusal"):
            tokens = logprobs.get(key)
            if isinstance(tokens, list):
                self.logprobs[key] = [*(self.logprobs.get(key) or []), *tokens]

    def tool_calls(self) -> list[dict[str, Any]]:
        return [
            {"id": c["id"], "name": c["name"], "arguments": parse_arguments(c["args"])}
            for _, c in sorted(self.calls.items())
        ]

    def output(self) -> LLMOutput:
        calls = self.tool_calls()
        return LLMOutput(
            content=joined(self.texts), tool_calls=calls or None, finish_reason=self.finish
        )

    def completed(self, index: int) -> dict[str, Any]:
        """The choice as the same call would have answered it without streaming."""
        message: dict[str, Any] = {
            "role": "assistant",
            "content": joined(self.texts),
            "refusal": joined(self.refusal),
        }
        if self.calls:
            message["tool_calls"] = [
                {
                    "id": c["id"],
                    "type": "function",
                    "function": {"name": c["name"], "arguments": c["args"]},
                }
                for _, c in sorted(self.calls.items())
            ]
        return {
            "index": index,
            "message": message,
            "logprobs": self.logprobs,
            "finish_reason": self.finish,
        }


class _StreamState:
    """Accumulates `chat.completion.chunk`s, every choice by its `index` (`n` > 1); the
    normalised output is the first choice's, as for a JSON answer."""

    def __init__(self, cut: bool = False) -> None:
        self.cut = cut  # it may have ended before its last event (closed, failed)
        self.choices: dict[int, _ChoiceState] = {}
        self.pieces = Pieces()
        self.order: list[int] = []  # the choice index of each chunk, in turn
        self.usage: Any = None
        self.cost: float | None = None
        self.model: str | None = None
        self.envelope: dict[str, Any] = {}
        self.error: StreamError | None = None
        self.usage_joined = False  # the usage came in a chunk with a choice (its finish)
        self.fingerprint = False  # a chunk had the `system_fingerprint` key

    def add(self, chunk: dict[str, Any]) -> None:
        self.model = chunk.get("model") or self.model
        self.fingerprint = self.fingerprint or FINGERPRINT in chunk
        for key in ("id", "created", "system_fingerprint", "service_tier"):
            if chunk.get(key) is not None:
                self.envelope[key] = chunk[key]
        if isinstance(chunk.get("usage"), dict):
            self.usage, self.cost = chunk["usage"], reported_cost(chunk)
            self.usage_joined = bool(chunk.get("choices"))  # not a chunk of its own
        for choice in chunk.get("choices") or []:
            if isinstance(choice, dict):
                index = as_int(choice.get("index")) or 0
                if index not in self.choices:
                    self.choices[index] = _ChoiceState(index, self.pieces)
                self.choices[index].add(choice)
                self.order.append(index)

    def decoded(self) -> Decoded:
        first = self.choices.get(0) or _ChoiceState(0, Pieces())
        chunks: dict[str, Any] | None = self.pieces.recorded()
        order = order_text(self.order)
        if order is not None:
            chunks = {**(chunks or {}), ORDER: order}
        if self.usage_joined:
            chunks = {**(chunks or {}), USAGE: USAGE_JOINED}
        if self.choices and not self.fingerprint:
            chunks = {**(chunks or {}), FINGERPRINT: FINGERPRINT_ABSENT}
        for index, choice in sorted(self.choices.items()):
            joins = {_call_path(index, position): ROLE_JOINED for position in choice.heads_joined}
            for position, keys in choice.repeated.items():
                joins.update({f"{_call_path(index, position)}.{key}": REPEATED for key in keys})
            if choice.role_joined:
                joins[_role_path(index)] = ROLE_JOINED
            if choice.finish_joined:
                joins[_finish_path(index)] = FINISH_JOINED
            if choice.calls_whole and choice.call_chunks == 1:
                joins[f"{_message_path(index)}.tool_calls"] = CALLS_TOGETHER
            if choice.role_text and not any(choice.texts):
                joins[f"{_message_path(index)}.content"] = EMPTY_TEXT
            if joins:
                chunks = {**(chunks or {}), **joins}
        came = bool(self.choices or self.envelope or self.usage is not None)
        # nothing came before an error chunk, or before a stream cut short ended: there is
        # no completion to assemble (one of nulls would be served as a chunk that never came)
        whole = came or (self.error is None and not self.cut)
        return Decoded(
            output=first.output(),
            usage=usage_from(self.usage),
            cost=self.cost,
            raw=None,
            model=self.model,
            assembled=self._completion() if whole else None,
            chunks=chunks,
            error=self.error,
        )

    def _completion(self) -> dict[str, Any]:
        """The `chat.completion` the same call would have answered without streaming."""
        choices = [c.completed(i) for i, c in sorted(self.choices.items())]
        data: dict[str, Any] = {
            "id": self.envelope.get("id"),
            "object": "chat.completion",
            "created": self.envelope.get("created"),
            "model": self.model,
            "choices": choices or [_ChoiceState(0, Pieces()).completed(0)],
            "system_fingerprint": self.envelope.get("system_fingerprint"),
        }
        if "service_tier" in self.envelope:
            data["service_tier"] = self.envelope["service_tier"]
        if self.usage is not None:
            data["usage"] = self.usage
        return data


# The STREAM_CHUNKS key of the order an `n` > 1 stream's choices sent their chunks in,
# kept only when it is not the one replay falls back to (each choice after the other): a
# text of runs, each run the choice indexes of consecutive chunks joined by commas, with
# `*N` when it repeats N times. "0,1*12" is twelve rounds of a chunk of choice 0, then one
# of choice 1; "0,1*3 1*2 0,1" has choice 1 send two chunks in a row after three rounds.
ORDER = "choices"


def order_text(order: list[int]) -> str | None:
    """The order of `order` (choice indexes, one per chunk) as its runs; None when each
    choice's chunks came after the previous choice's (the order replay falls back to)."""
    if order == sorted(order):
        return None
    rounds: list[list[int]] = []
    for index in order:
        if rounds and index > rounds[-1][-1]:
            rounds[-1].append(index)
        else:
            rounds.append([index])
    runs: list[list[Any]] = []
    for group in rounds:
        if runs and runs[-1][0] == group:
            runs[-1][1] += 1
        else:
            runs.append([group, 1])
    return " ".join(
        ",".join(map(str, group)) + (f"*{times}" if times > 1 else "") for group, times in runs
    )


def order_of(text: Any, limit: int) -> list[int] | None:
    """The choice index of each chunk that `text` (see ORDER) says, in turn; None when it
    is not such a text or says more than `limit` chunks."""
    if not isinstance(text, str):
        return None
    out: list[int] = []
    for run in text.split():
        group, _, times = run.partition("*")
        try:
            indexes = [int(i) for i in group.split(",")]
            repeat = int(times) if times else 1
        except ValueError:
            return None
        if repeat < 1 or min(indexes) < 0 or len(out) + len(indexes) * repeat > limit:
            return None
        out += indexes * repeat
    return out or None


def _decode_stream(body: bytes, cut: bool = False) -> Decoded:
    """The chunks up to `[DONE]`, or to a chunk that is an error (`{"error": {...}}`, which
    the SDK raises as `APIError`): the stream broke off there. `cut`: a stream that may
    have ended before its last event (see `_StreamState.decoded`)."""
    state = _StreamState(cut)
    ended = False
    for event in sse.events(body):
        chunk = event.json()
        if isinstance(chunk, dict) and chunk.get("error"):
            state.error = StreamError.of(event.data)
            ended = True
            break
        if isinstance(chunk, dict):
            state.add(chunk)
        ended = ended or event.data.startswith("[DONE]")
    return replace(state.decoded(), ended=ended)


# -- encoding -------------------------------------------------------------------------------


def _calls(step: LLMCallStep) -> list[tuple[str, str, Any]]:
    calls = output_of(step).tool_calls or []
    return [tool_call_parts(c, f"call_opswald_{step.step}_{i}") for i, c in enumerate(calls)]


def _finish(step: LLMCallStep) -> str:
    out = output_of(step)
    return out.finish_reason or ("tool_calls" if out.tool_calls else "stop")


def usage_to(usage: Usage | None) -> dict[str, Any] | None:
    """Usage -> OpenAI `CompletionUsage` (detail objects only for counts that are known)."""
    if usage is None:
        return None
    data: dict[str, Any] = {
        "prompt_tokens": usage.input_tokens or 0,
        "completion_tokens": usage.output_tokens or 0,
        "total_tokens": usage.total(),
    }
    prompt = {
        "cached_tokens": usage.cache_read_tokens,
        "cache_write_tokens": usage.cache_creation_tokens,
    }
    if any(v is not None for v in prompt.values()):
        data["prompt_tokens_details"] = {k: v for k, v in prompt.items() if v is not None}
    if usage.reasoning_tokens is not None:
        data["completion_tokens_details"] = {"reasoning_tokens": usage.reasoning_tokens}
    return data


def _completion(step: LLMCallStep) -> dict[str, Any]:
    message: dict[str, Any] = {
        "role": "assistant",
        "content": text_of(output_of(step).content),
        "refusal": None,
    }
    calls = _calls(step)
    if calls:
        message["tool_calls"] = [
            {"id": i, "type": "function", "function": {"name": n, "arguments": dump_arguments(a)}}
            for i, n, a in calls
        ]
    data = _envelope(step, "chat.completion")
    data["choices"] = [
        {"index": 0, "message": message, "logprobs": None, "finish_reason": _finish(step)}
    ]
    usage = _usage(step)
    if usage is not None:
        data["usage"] = usage
    return data


def _usage(step: LLMCallStep) -> dict[str, Any] | None:
    """The recorded usage object (all its detail fields) while it agrees, else rebuilt."""
    recorded = raw_usage(step, raw_dict(step).get("usage"), usage_from)
    return recorded if recorded is not None else usage_to(step.usage)


def _envelope(step: LLMCallStep, kind: str) -> dict[str, Any]:
    """id, created, model and fingerprint: the recorded ones when there is a raw body
    (the normalised step has no field for them), else made up from the step."""
    raw = raw_dict(step)
    created = raw.get("created")
    data = {
        "id": raw.get("id") or f"chatcmpl-opswald-{step.step}",
        "object": kind,
        "created": created if isinstance(created, int) else epoch_seconds(step.timestamp),
        "model": raw.get("model") or step.model or "unknown",
        "system_fingerprint": raw.get("system_fingerprint"),
    }
    if "service_tier" in raw:
        data["service_tier"] = raw["service_tier"]
    return data


@dataclass(frozen=True, kw_only=True)
class _Choice:
    """One choice as a stream sends it."""

    index: int
    text: str | None
    calls: list[tuple[str, str, Any]]
    finish: str | None  # None: its finish never came (the stream broke off)
    refusal: str | None = None
    logprobs: dict[str, Any] | None = None  # {"content": [...], "refusal": [...]}


class _Chunks:
    """`chat.completion.chunk` frames sharing one envelope."""

    def __init__(self, step: LLMCallStep, include_usage: bool) -> None:
        self.cuts = Cuts(step)
        self.base = _envelope(step, "chat.completion.chunk")
        if self.cuts.get(FINGERPRINT) == FINGERPRINT_ABSENT:
            del self.base[FINGERPRINT]
        if include_usage:
            self.base["usage"] = None  # as the API sends it on every chunk but the last
        self.chunks: list[dict[str, Any]] = []

    def add(
        self,
        delta: dict[str, Any],
        finish: str | None = None,
        *,
        index: int = 0,
        logprobs: dict[str, Any] | None = None,
    ) -> None:
        choice = {"index": index, "delta": delta, "logprobs": logprobs, "finish_reason": finish}
        self.chunks.append({**self.base, "choices": [choice]})

    def choice(self, c: _Choice) -> None:
        """One choice: its role chunk, content pieces (with their tokens' log probabilities
        when the call asked for them), refusal pieces, each tool call (head, then argument
        pieces) and its finish; texts are cut as recorded while that adds up. The role
        comes in the chunk of the first piece when it came so (ROLE_JOINED)."""
        said = c.text or self.cuts.get(f"{_message_path(c.index)}.content") == EMPTY_TEXT
        role = {"role": "assistant", "content": "" if said else None}
        pieces = self._pieces(c)
        joined = self.cuts.get(_finish_path(c.index)) == FINISH_JOINED
        if pieces and self.cuts.get(_role_path(c.index)) == ROLE_JOINED:
            first, logprobs = pieces[0]
            pieces[0] = ({**role, **first}, logprobs)
        else:
            pieces.insert(0, (role, None))
        last = len(pieces) - 1
        for at, (delta, logprobs) in enumerate(pieces):
            finish = c.finish if joined and at == last else None
            self.add(delta, finish, index=c.index, logprobs=logprobs)
        if c.finish is not None and not joined:
            self.add({}, c.finish, index=c.index)

    def _pieces(self, c: _Choice) -> list[tuple[dict[str, Any], dict[str, Any] | None]]:
        """(delta, log probabilities) of each chunk of the choice between its role chunk
        and its finish."""
        out: list[tuple[dict[str, Any], dict[str, Any] | None]] = []
        path = _message_path(c.index)
        for key in ("content", "refusal"):
            text = (c.text if key == "content" else c.refusal) or ""
            tokens = c.logprobs.get(key) if c.logprobs is not None else None
            recorded = self.cuts.recorded(f"{path}.{key}", text)
            for piece, own in _pieces(text, tokens, recorded):
                logprobs = None
                if own is not None:
                    logprobs = {"content": None, "refusal": None, key: own}
                out.append(({key: piece}, logprobs))
        together = self.cuts.get(f"{path}.tool_calls") == CALLS_TOGETHER and len(c.calls) > 1
        if together:  # every call whole, in one chunk
            whole = []
            for position, (call_id, name, args) in enumerate(c.calls):
                where = _arguments_path(c.index, position)
                text = args if isinstance(args, str) else self.cuts.json_text(where, args)
                function = {"name": name, "arguments": text}
                whole.append(
                    {"index": position, "id": call_id, "type": "function", "function": function}
                )
            out.append(({"tool_calls": whole}, None))
        for position, (call_id, name, args) in enumerate([] if together else c.calls):
            where = _arguments_path(c.index, position)
            text = args if isinstance(args, str) else self.cuts.json_text(where, args)
            cut = self.cuts.cut(where, text, 2)
            first = ""
            if cut and cut[0] and self.cuts.get(_call_path(c.index, position)) == ROLE_JOINED:
                first = cut.pop(0)  # the head came with the first piece of its arguments
            head = {
                "index": position,
                "id": call_id,
                "type": "function",
                "function": {"name": name, "arguments": first},
            }
            out.append(({"tool_calls": [head]}, None))
            at = _call_path(c.index, position)
            again = {k: head[k] for k in ("id", "type") if self.cuts.get(f"{at}.{k}") == REPEATED}
            for piece in cut:
                fragment = {"index": position, **again, "function": {"arguments": piece}}
                out.append(({"tool_calls": [fragment]}, None))
        if c.calls and not c.text and self.cuts.get(_finish_path(c.index)) == FINISH_JOINED:
            # a call's empty text came as the finish's `content: ""`, after the calls
            empty = [item for item in out if item[0] == {"content": ""}]
            out = [item for item in out if item[0] != {"content": ""}] + empty
        return out


def _pieces(
    text: str, tokens: Any, recorded: list[str] | None = None
) -> list[tuple[str, list[Any] | None]]:
    """The text's pieces (the `recorded` ones when given), each with the log probabilities
    its chunk carries: when the tokens spell the text, each token in the piece it starts
    in (one piece per token when no pieces were recorded, as the API streams them), else
    every token in the first piece (a consumer that joins the chunks' lists gets the
    recorded list either way). None: the call asked for no log probabilities."""
    cut = recorded if recorded is not None else chunks(text)
    if not isinstance(tokens, list):
        return [(piece, None) for piece in cut]
    spelled = [t.get("token") if isinstance(t, dict) else None for t in tokens]
    words = [t for t in spelled if isinstance(t, str) and t]
    if tokens and len(words) == len(tokens) and "".join(words) == text:
        if recorded is None:
            return [(word, [token]) for word, token in zip(words, tokens, strict=True)]
        return _tokens_by_piece(recorded, words, tokens)
    pieces: list[tuple[str, list[Any] | None]] = [(p, []) for p in cut]
    if pieces:
        pieces[0] = (pieces[0][0], list(tokens))
    return pieces


def _tokens_by_piece(
    pieces: list[str], words: list[str], tokens: list[Any]
) -> list[tuple[str, list[Any] | None]]:
    """Each piece with the tokens that start in it."""
    out: list[tuple[str, list[Any] | None]] = []
    start, end, at = 0, 0, 0
    for piece in pieces:
        end += len(piece)
        own: list[Any] = []
        while at < len(words) and start < end:
            own.append(tokens[at])
            start += len(words[at])
            at += 1
        out.append((piece, own))
    return out


def _recorded_choices(step: LLMCallStep) -> dict[int, dict[str, Any]]:
    """The recorded choices by index, while the raw body agrees with the step: the
    normalised step holds the first choice's answer only, not its log probabilities,
    refusal or the other choices of an `n` > 1 call."""
    if not (isinstance(step.raw, dict) and raw_agrees(step, decode_json(step.raw))):
        return {}
    choices = step.raw.get("choices")
    if not isinstance(choices, list):
        return {}
    return {c["index"]: c for c in choices if as_int(sub(c, "index")) is not None}


def _raw_choice(step: LLMCallStep, choice: dict[str, Any], broke: bool = False) -> _Choice:
    """A recorded choice, as it came (`broke`: its stream broke off, so it may have no
    finish)."""
    message = choice.get("message")
    if not isinstance(message, dict):
        message = {}
    index = choice["index"]
    calls = [
        tool_call_parts(_tool_call(c), f"call_opswald_{step.step}_{index}_{i}")
        for i, c in enumerate(message.get("tool_calls") or [])
        if isinstance(c, dict)
    ]
    calls = _as_recorded(calls, message)
    finish = choice.get("finish_reason")
    return _Choice(
        index=index,
        text=text_of(message.get("content")),
        calls=calls,
        finish=finish if isinstance(finish, str) else None if broke else "stop",
        refusal=_refusal(message),
        logprobs=_logprobs(choice),
    )


def _as_recorded(calls: list[tuple[str, str, Any]], message: Any) -> list[tuple[str, str, Any]]:
    """The calls with each argument string as recorded (its spacing and escapes) while it
    still says what the call's arguments say."""
    recorded = message.get("tool_calls") if isinstance(message, dict) else None
    if not isinstance(recorded, list):
        return calls
    out = []
    for position, (call_id, name, args) in enumerate(calls):
        text = sub(recorded, position, "function", "arguments")
        if isinstance(text, str) and not isinstance(args, str) and parse_arguments(text) == args:
            args = text
        out.append((call_id, name, args))
    return out


def _refusal(message: Any) -> str | None:
    refusal = message.get("refusal") if isinstance(message, dict) else None
    return refusal if isinstance(refusal, str) and refusal else None


def _logprobs(choice: Any) -> dict[str, Any] | None:
    logprobs = choice.get("logprobs") if isinstance(choice, dict) else None
    return logprobs if isinstance(logprobs, dict) else None


def _frames(
    step: LLMCallStep, include_usage: bool = True, broke: tuple[Any, ...] | None = None
) -> list[str]:
    """Every choice (the first from the normalised step, with what only the raw body
    holds; the others as recorded), the usage chunk (empty `choices`; only when the request
    asked for it) and `[DONE]`. A stream that broke off (`broke`: its error chunk's data;
    empty for one closed early or whose connection failed) sends what came — a choice's
    finish only when it came — then its error chunk."""
    if broke is not None and step.raw is None and not _calls(step) and not _text(step):
        return [sse.frame(data) for data in broke]  # the error was all that came
    out = _Chunks(step, include_usage)
    recorded = _recorded_choices(step)
    first = recorded.get(0)
    finish = output_of(step).finish_reason if broke is not None else _finish(step)
    choices = [
        _Choice(
            index=0,
            text=text_of(output_of(step).content),
            calls=_as_recorded(_calls(step), sub(first, "message")),
            finish=finish,
            refusal=_refusal(sub(first, "message")),
            logprobs=_logprobs(first),
        )
    ]
    choices += [
        _raw_choice(step, c, broke is not None) for i, c in sorted(recorded.items()) if i != 0
    ]
    by_choice: dict[int, list[dict[str, Any]]] = {}
    for choice in choices:
        start = len(out.chunks)
        out.choice(choice)
        by_choice[choice.index] = out.chunks[start:]
    chunks = _interleaved(by_choice, out.cuts.get(ORDER))
    usage = _usage(step)
    if usage is not None and chunks and out.cuts.get(USAGE) == USAGE_JOINED and broke is None:
        chunks[-1] = {**chunks[-1], "usage": usage}  # in the last finish, as it came
    elif usage is not None and include_usage:
        chunks.append({**out.base, "choices": [], "usage": usage})
    frames = [sse.frame(chunk) for chunk in chunks]
    if broke is not None:
        return [*frames, *(sse.frame(data) for data in broke)]
    return [*frames, sse.frame("[DONE]")]


def _text(step: LLMCallStep) -> str | None:
    return text_of(output_of(step).content)


def _interleaved(by_choice: dict[int, list[dict[str, Any]]], order: Any) -> list[dict[str, Any]]:
    """The choices' chunks in the recorded order while it has as many chunks of each
    choice as replay sends, else each choice's after the previous one's."""
    total = sum(len(frames) for frames in by_choice.values())
    indexes = order_of(order, total)
    counts = {index: len(frames) for index, frames in by_choice.items()}
    if indexes is None or Counter(indexes) != Counter(counts):
        return [frame for frames in by_choice.values() for frame in frames]
    queues = {index: iter(frames) for index, frames in by_choice.items()}
    return [next(queues[index]) for index in indexes]
