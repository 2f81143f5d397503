"""What the LangSmith and Langfuse importers share: chat messages turned into the shape the
OpenAI Chat Completions codec records, plus the small conversions both need (times, errors,
tags, numbers, request params).

An imported `llm_call` step must look exactly like one recorded by interception of the same
`chat.completions.create` call, or replay would report differences that are only format:
messages as sent on the wire (`role`, `content`, `tool_calls` with `type: function`, `tool`
messages with `tool_call_id`), tool-call arguments parsed into data, the output as
`{content, tool_calls: [{id, name, arguments}], finish_reason}`. Traces carry messages in
LangChain's serialised forms too; those are converted the way `langchain-openai` converts
them before sending, so the imported request is the request that went out.
"""

from __future__ import annotations

import ast
import datetime as dt
import json
import math
import re
from collections import Counter
from decimal import Decimal, InvalidOperation
from typing import Any

from opswald.intercept.codecs.base import parse_arguments, text_of
from opswald.intercept.codecs.openai_chat import OpenAIChatCodec
from opswald.session import RESERVED_TAGS, ErrorInfo, LLMOutput

OPENAI_PROVIDER = OpenAIChatCodec.provider
OPENAI_CHAT_API = OpenAIChatCodec.api

# LangChain message kinds (the `type` field, or the class name of the serialised
# constructor) and the OpenAI role each is sent as.
_ROLES = {
    "human": "user",
    "user": "user",
    "ai": "assistant",
    "assistant": "assistant",
    "system": "system",
    "developer": "developer",
    "tool": "tool",
    "function": "function",
}
_CLASS_KINDS = {
    "HumanMessage": "human",
    "HumanMessageChunk": "human",
    "AIMessage": "ai",
    "AIMessageChunk": "ai",
    "SystemMessage": "system",
    "SystemMessageChunk": "system",
    "ToolMessage": "tool",
    "ToolMessageChunk": "tool",
    "FunctionMessage": "function",
    "FunctionMessageChunk": "function",
    "ChatMessage": "chat",
    "ChatMessageChunk": "chat",
}

# Providers whose SDK posts to `…/chat/completions`: interception records their calls with
# the OpenAI chat codec, whatever the vendor. Anything else has another wire API, whose
# message shape these importers do not produce.
_CHAT_COMPLETIONS_PROVIDERS = frozenset(
    {
        "openai",
        "azure",
        "azure_openai",
        "azure-openai",
        "groq",
        "deepseek",
        "xai",
        "together",
        "fireworks",
        "mistral",
        "mistralai",
        "openrouter",
        "perplexity",
        "litellm",
        "vllm",
    }
)

# Keys of LangChain's `invocation_params` / Langfuse's `modelParameters` that interception
# does not record as request parameters: client settings, tracing bookkeeping, and `stream`
# (the codec takes it out of the body; streaming is how the answer is served, not what is
# asked).
NOT_SENT_PARAMS = frozenset(
    {
        "_type",
        "model_name",
        "stream",
        "streaming",
        "request_timeout",
        "max_retries",
        "disable_streaming",
        "messages",
        # the client's configuration, never a request body's (LangSmith's invocation
        # params carry them): credentials, where it sends, its headers
        "api_key",
        "openai_api_key",
        "anthropic_api_key",
        "openai_api_base",
        "anthropic_api_url",
        "base_url",
        "openai_organization",
        "openai_proxy",
        "default_headers",
        "default_query",
    }
)

_TAG = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,99}")


# -- messages -------------------------------------------------------------------------------


def langchain_parts(message: Any) -> tuple[str, dict[str, Any]] | None:
    """(kind, fields) of a LangChain message in any serialised form, else None.

    Forms: the `dumpd` constructor (`{"lc": 1, "type": "constructor", "id": [...,
    "HumanMessage"], "kwargs": {...}}`), `messages_to_dict` (`{"type": "human", "data":
    {...}}`), and a message's own `model_dump()` (`{"type": "ai", "content": ...}`).
    """
    if not isinstance(message, dict):
        return None
    if message.get("lc") == 1 and isinstance(message.get("kwargs"), dict):
        ident = message.get("id")
        name = ident[-1] if isinstance(ident, list) and ident else None
        kind = _CLASS_KINDS.get(str(name)) or message["kwargs"].get("type")
        return (str(kind), message["kwargs"]) if kind else None
    kind = message.get("type")
    if not isinstance(kind, str) or "role" in message:
        return None
    if isinstance(message.get("data"), dict):
        return kind, message["data"]
    if (kind in _ROLES or kind == "chat") and "content" in message:
        return kind, message
    return None


def openai_message(message: Any) -> Any:
    """One message as the OpenAI chat codec records it (tool-call arguments parsed)."""
    parts = langchain_parts(message)
    if parts is not None:
        return _from_langchain(*parts)
    if isinstance(message, dict) and isinstance(message.get("role"), str):
        return _from_role_dict(message)
    return message


def openai_messages(messages: Any) -> list[Any] | None:
    """A message list in the recorded shape; None when `messages` is not a list."""
    if not isinstance(messages, list):
        return None
    return [openai_message(m) for m in messages]


def is_chat_messages(messages: Any) -> bool:
    """A non-empty list whose items are all messages of a known form."""
    return (
        isinstance(messages, list)
        and bool(messages)
        and all(
            langchain_parts(m) is not None
            or (isinstance(m, dict) and isinstance(m.get("role"), str))
            for m in messages
        )
    )


def _from_langchain(kind: str, fields: dict[str, Any]) -> dict[str, Any]:
    """What `langchain-openai` sends for a LangChain message."""
    extra = as_dict(fields.get("additional_kwargs"))
    role = fields.get("role") if kind == "chat" else _ROLES.get(kind, kind)
    if kind == "system" and isinstance(extra.get("__openai_role__"), str):
        role = extra["__openai_role__"]
    content = fields.get("content")
    if kind == "tool":
        return {"role": "tool", "content": content, "tool_call_id": fields.get("tool_call_id")}
    out: dict[str, Any] = {"role": role, "content": content}
    name = fields.get("name") or extra.get("name")
    if name is not None:
        out["name"] = name
    if role == "assistant":
        calls = _sent_calls(
            [*_list(fields.get("tool_calls")), *_list(fields.get("invalid_tool_calls"))]
        )
        calls = calls or _sent_calls(_list(extra.get("tool_calls")))
        if calls:
            out["tool_calls"] = calls
        elif isinstance(extra.get("function_call"), dict):
            out["function_call"] = _parsed_function(extra["function_call"])
        if "tool_calls" in out or "function_call" in out:
            out["content"] = out["content"] or None  # sent as null beside calls
    return out


def _sent_calls(calls: list[Any]) -> list[dict[str, Any]]:
    """Tool calls in either LangChain's form (`{name, args, id}`) or OpenAI's, as
    `langchain-openai` sends them: `{type, id, function: {name, arguments}}`."""
    out: list[dict[str, Any]] = []
    for call in calls:
        if not isinstance(call, dict):
            continue
        function = call.get("function")
        if isinstance(function, dict):
            kept = {k: v for k, v in call.items() if k in ("id", "type", "function")}
            out.append({**kept, "function": _parsed_function(function)})
        else:
            out.append(
                {
                    "type": "function",
                    "id": call.get("id"),
                    "function": {
                        "name": call.get("name"),
                        "arguments": parse_arguments(call.get("args", call.get("arguments"))),
                    },
                }
            )
    return out


def _parsed_function(function: dict[str, Any]) -> dict[str, Any]:
    return {**function, "arguments": parse_arguments(function.get("arguments"))}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


_ROLE_KINDS = {"user": "human", "assistant": "ai", "system": "system", "tool": "tool"}


def _from_role_dict(message: dict[str, Any]) -> dict[str, Any]:
    """A message with a `role`.

    Langfuse's LangChain callback writes LangChain messages this way (with
    `additional_kwargs` and LangChain tool calls): those are converted as `langchain-openai`
    sends them. Anything else is an OpenAI message as the agent sent it, kept key for key with
    its tool-call arguments parsed, as the chat codec records a request.
    """
    calls = _list(message.get("tool_calls"))
    langchain = (
        "additional_kwargs" in message
        or "invalid_tool_calls" in message
        or any(isinstance(c, dict) and "args" in c and "function" not in c for c in calls)
    )
    if langchain:
        role = str(message["role"])
        return _from_langchain(_ROLE_KINDS.get(role, "chat"), message)
    out = dict(message)
    if calls:
        out["tool_calls"] = [
            {**c, "function": _parsed_function(c["function"])}
            if isinstance(c, dict) and isinstance(c.get("function"), dict)
            else c
            for c in calls
        ]
    if isinstance(out.get("function_call"), dict):
        out["function_call"] = _parsed_function(out["function_call"])
    return out


# -- outputs --------------------------------------------------------------------------------


def assistant_output(message: Any, finish_reason: Any = None) -> LLMOutput | None:
    """The normalised output of an LLM call from the assistant message it returned (None
    when `message` is not a message)."""
    parts = langchain_parts(message)
    if parts is not None:
        fields = parts[1]
        extra = fields.get("additional_kwargs")
        calls = _output_calls(fields.get("tool_calls"))
        if not calls and isinstance(extra, dict):
            calls = _output_calls(extra.get("tool_calls"))
        content = fields.get("content")
        meta = fields.get("response_metadata")
        if finish_reason is None and isinstance(meta, dict):
            finish_reason = meta.get("finish_reason") or meta.get("stop_reason")
    elif isinstance(message, dict) and _MESSAGE_KEYS & message.keys():
        calls = _output_calls(message.get("tool_calls"))
        content = message.get("content")
        finish_reason = finish_reason or message.get("finish_reason")
    elif isinstance(message, str):
        calls, content = [], message
    else:
        return None
    return LLMOutput(
        content=text_of(content) or None,
        tool_calls=calls or None,
        finish_reason=finish_reason if isinstance(finish_reason, str) else None,
    )


_MESSAGE_KEYS = frozenset({"role", "content", "tool_calls", "function_call"})


def _output_calls(calls: Any) -> list[dict[str, Any]]:
    """Tool calls of a response as `{id, name, arguments}` (the codec's output shape)."""
    out: list[dict[str, Any]] = []
    for call in _list(calls):
        if not isinstance(call, dict):
            continue
        function = call.get("function")
        if isinstance(function, dict):
            name, args = function.get("name"), function.get("arguments")
        else:
            name, args = call.get("name"), call.get("args", call.get("arguments"))
        out.append({"id": call.get("id"), "name": name, "arguments": parse_arguments(args)})
    return out


def tool_result(value: Any) -> Any:
    """A tool's result; a LangChain `ToolMessage` wrapped around it gives its content."""
    parts = langchain_parts(value)
    if parts is not None and parts[0] == "tool":
        return parts[1].get("content")
    return value


# -- errors ---------------------------------------------------------------------------------

_EXC_LINE = re.compile(r"([A-Za-z_][\w.]*)(?::\s?(.*))?", re.DOTALL)
_REPR = re.compile(r"([A-Za-z_][\w.]*)\((.*)\)", re.DOTALL)
_TRACEBACK = "Traceback (most recent call last):"


def error_info(text: Any, *, default_type: str = "Exception") -> ErrorInfo:
    """An error as recorded in a trace — a traceback, `repr(exc)`, `Type: message` or plain
    text — as `ErrorInfo(type, message, module)`.

    Plain text names no type: it gets `default_type`, `Exception`, the one type that is true
    of every Python error and that replay raises again as itself.
    """
    if isinstance(text, dict):
        kind = text.get("type") or text.get("name") or default_type
        return ErrorInfo(type=str(kind), message=str(text.get("message") or ""))
    raw = str(text).strip()
    if _TRACEBACK in raw:
        found = _from_traceback(raw[raw.index(_TRACEBACK) :])
        if found is not None:
            return found
    head = raw[: raw.index(_TRACEBACK)].strip() if _TRACEBACK in raw else raw
    found = _from_repr(head) or exception_line(head)
    return found or ErrorInfo(type=default_type, message=raw)


def _qualified(name: str, message: str) -> ErrorInfo:
    module, _, short = name.rpartition(".")
    return ErrorInfo(type=short, message=message, module=module or None)


def _from_traceback(text: str) -> ErrorInfo | None:
    """The last exception of a formatted traceback (the one that was raised)."""
    lines = text.splitlines()
    last_frame = max((i for i, line in enumerate(lines) if line.startswith(" ")), default=0)
    tail = "\n".join(lines[last_frame + 1 :]).strip()
    return exception_line(tail)


def exception_line(text: str) -> ErrorInfo | None:
    """`Type: message` (a name that looks like an exception class), else None."""
    match = _EXC_LINE.fullmatch(text)
    if match is None or not _looks_like_exception(match.group(1)):
        return None
    return _qualified(match.group(1), (match.group(2) or "").strip())


def _from_repr(text: str) -> ErrorInfo | None:
    """`ValueError('no such city')` as LangChain stores it."""
    match = _REPR.fullmatch(text)
    if match is None or not _looks_like_exception(match.group(1)):
        return None
    try:
        args: Any = ast.literal_eval(f"({match.group(2)},)") if match.group(2).strip() else ()
    except (ValueError, SyntaxError):
        return _qualified(match.group(1), match.group(2))
    if len(args) == 1:
        return _qualified(match.group(1), str(args[0]))
    return _qualified(match.group(1), str(args) if args else "")


def _looks_like_exception(name: str) -> bool:
    short = name.rpartition(".")[2]
    return (
        bool(short)
        and short[0].isupper()
        and (
            short.endswith(("Error", "Exception", "Exit", "Interrupt", "Timeout", "Warning"))
            or "." in name
        )
    )


# -- times and numbers ----------------------------------------------------------------------


def parse_time(value: Any) -> dt.datetime | None:
    """An ISO 8601 time (naive ones are UTC), or None."""
    if isinstance(value, dt.datetime):
        moment = value
    elif isinstance(value, str) and value:
        try:
            moment = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
    else:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def timestamp(value: Any) -> str | None:
    """A step timestamp the way the recorder writes them (UTC, milliseconds, `Z`)."""
    moment = parse_time(value)
    if moment is None:
        return None
    text = moment.astimezone(dt.UTC).isoformat(timespec="milliseconds")
    return text.replace("+00:00", "Z")


def duration_ms(start: Any, end: Any) -> float | None:
    """Milliseconds between two times; None when either is missing or time ran backwards."""
    first, last = parse_time(start), parse_time(end)
    if first is None or last is None or last < first:
        return None
    return round((last - first).total_seconds() * 1000, 3)


def number(value: Any) -> float | None:
    """A finite non-negative number from a number or a decimal string (`"0.00012"`)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        result = float(value)
    elif isinstance(value, str):
        try:
            result = float(Decimal(value.strip()))
        except (InvalidOperation, ValueError):
            return None
    else:
        return None
    return result if math.isfinite(result) and result >= 0 else None


def count(value: Any) -> int | None:
    """A token count: a non-negative integer (or an integral float), else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if value >= 0 else None
    if isinstance(value, float) and value.is_integer() and value >= 0:
        return int(value)
    return None


def parse_json_text(value: Any) -> Any:
    """A JSON object or array given as text becomes data; anything else stays as it is."""
    if isinstance(value, str) and value[:1] in ("{", "["):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


# -- session-level helpers ------------------------------------------------------------------


def marker_tags(tags: Any, skipped: Counter[str]) -> tuple[list[str], list[str]]:
    """(tags usable as pytest markers, in order and without repeats; the others).

    A tag named like one of pytest's own markers (`skip`, `xfail`) or opswald's (`golden`)
    is a valid name but would change how the golden runs: it is left out too."""
    good: list[str] = []
    bad: list[str] = []
    for tag in tags if isinstance(tags, list) else []:
        text = str(tag)
        if not _TAG.fullmatch(text):
            bad.append(text)
            skipped["tag that is not a valid pytest marker name"] += 1
        elif text in RESERVED_TAGS:
            bad.append(text)
            skipped["tag named like one of pytest's or opswald's own markers"] += 1
        elif text not in good:
            good.append(text)
    return good, bad


def provider_api(provider: Any, chat_messages: bool) -> tuple[str | None, str | None]:
    """(provider, api) as interception would record the call.

    A provider that speaks Chat Completions is recorded as `openai` / the chat codec's API;
    when the trace names no provider, chat messages mean a Chat Completions call. Another
    named provider keeps its name and gets no API: its wire format is not produced here.
    """
    name = provider.strip().lower() if isinstance(provider, str) and provider.strip() else None
    if name is None:
        return (OPENAI_PROVIDER, OPENAI_CHAT_API) if chat_messages else (None, None)
    if name in _CHAT_COMPLETIONS_PROVIDERS:
        return OPENAI_PROVIDER, OPENAI_CHAT_API
    return name, None


def request_params(params: dict[str, Any], skipped: Counter[str], where: str) -> dict[str, Any]:
    """The request parameters interception would record (see `NOT_SENT_PARAMS`)."""
    out: dict[str, Any] = {}
    for key, value in params.items():
        if key in NOT_SENT_PARAMS or str(key).startswith("ls_"):
            skipped[f"{where}.{key} (not a request parameter)"] += 1
        elif key == "stop" and value is None:
            skipped[f"{where}.stop (null: not sent)"] += 1
        else:
            out[key] = value
    return out


def unwrap_single(value: Any, key: str) -> Any:
    """`{key: x}` (how tracers wrap a non-dict value) becomes x; anything else stays."""
    if isinstance(value, dict) and len(value) == 1 and key in value:
        return value[key]
    return value


def as_dict(value: Any) -> dict[str, Any]:
    """`value` when it is an object, else an empty one (traces leave fields null)."""
    return value if isinstance(value, dict) else {}


def plain(value: Any) -> bool:
    """A value worth keeping: not None and not an empty container."""
    return value is not None and value != {} and value != []


def other_format(data: Any, this: str) -> str:
    """`; it looks like a Langfuse export: opswald import langfuse FILE` when an export
    given to the `this` importer has the keys of another format's; else ""."""
    item = data[0] if isinstance(data, list) and data else data
    if not isinstance(item, dict):
        return ""
    keys = set(map(str, item))
    looks = (
        "otel"
        if "resourceSpans" in keys or "resourceLogs" in keys
        else "langsmith"
        if keys & {"run_type", "child_runs"} or isinstance(item.get("runs"), list)
        else "langfuse"
        if keys & {"observations", "traceId"} and "run_type" not in keys
        else None
    )
    if looks is None or looks == this:
        return ""
    names = {
        "otel": "an OTLP (OpenTelemetry)",
        "langsmith": "a LangSmith",
        "langfuse": "a Langfuse",
    }
    also = " (or openinference)" if looks == "otel" else ""
    return f"; it looks like {names[looks]} export: opswald import {looks}{also} FILE"
