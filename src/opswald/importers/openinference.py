"""OpenInference traces (OTLP JSON) -> goldens.

OpenInference (Arize Phoenix, `openinference-instrumentation-*`) flattens messages into
span attributes (`llm.input_messages.0.message.role`, `...tool_calls.0.tool_call.function.name`)
and also records the whole request and response as `input.value` / `output.value`. The
request in `input.value` is the SDK call's own keyword arguments, so when it is there it is
used as is — normalised by the codec the interception uses — and an agent making the same
call matches exactly; otherwise the flattened attributes are rebuilt into an OpenAI chat
request. `openinference.span.kind` says what a span is: LLM -> `llm_call`, TOOL ->
`tool_call`, the top AGENT/CHAIN span -> the session's input and output. Spans are grouped
by `session.id`, else by trace.
"""

from __future__ import annotations

from typing import Any

from opswald.importers import ImportResult
from opswald.importers.otlp import (
    Draft,
    Found,
    Span,
    Turn,
    ancestors,
    as_float,
    as_int,
    assemble,
    failed_call,
    group,
    http_status,
    json_value,
    pattern,
    read,
    span_error,
    text,
)

KIND = "openinference.span.kind"
SESSION = "session.id"
USAGE = {
    "input_tokens": "llm.token_count.prompt",
    "output_tokens": "llm.token_count.completion",
    "total_tokens": "llm.token_count.total",
    "cache_read_tokens": "llm.token_count.prompt_details.cache_read",
    "cache_creation_tokens": "llm.token_count.prompt_details.cache_write",
    "reasoning_tokens": "llm.token_count.completion_details.reasoning",
}
COMMON = frozenset({KIND, SESSION, "input.value", "input.mime_type"})
LLM_MAPPED = COMMON | {
    "output.value",
    "output.mime_type",
    "llm.model_name",
    "llm.request.model_name",
    "llm.response.model_name",
    "llm.provider",
    "llm.system",
    "llm.invocation_parameters",
    "llm.finish_reason",
    "llm.cost.total",
    "llm.cost.prompt",
    "llm.cost.completion",
    *USAGE.values(),
}
LLM_PREFIXES = ("llm.input_messages.", "llm.output_messages.", "llm.tools.")
TOOL_MAPPED = COMMON | {"output.value", "output.mime_type", "tool.name", "tool_call.id"}
ROOT_MAPPED = COMMON | {"output.value", "output.mime_type", "agent.name"}
NOT_REPLAYED = frozenset(
    {"RETRIEVER", "EMBEDDING", "RERANKER", "GUARDRAIL", "EVALUATOR", "PROMPT", "UNKNOWN"}
)


def convert(data: Any) -> ImportResult:
    """One golden per `session.id` (or per trace when spans have none)."""
    telemetry = read(data)
    result = ImportResult()
    if telemetry.logs:
        result.skipped["log record (OpenInference records everything on spans)"] += len(
            telemetry.logs
        )
    for session_id, is_session, spans in group(telemetry.spans, SESSION):
        draft = Draft(
            fmt="openinference", session_id=session_id, is_conversation=is_session, spans=spans
        )
        _fill(draft, result)
        result.add(assemble(draft, result), _missing(spans))
    return result


def _missing(spans: list[Span]) -> str:
    """What a trace without model or tool calls lacked, and whether it looks like otel."""
    why = f"no span with {KIND} LLM or TOOL"
    if any("gen_ai.operation.name" in span.attributes for span in spans):
        why += "; its spans have gen_ai.operation.name: is this an otel trace?"
    return why


def _kind(span: Span) -> str | None:
    kind = span.attributes.get(KIND)
    return kind.upper() if isinstance(kind, str) and kind else None


def _fill(draft: Draft, result: ImportResult) -> None:
    by_id = {s.span_id: s for s in draft.spans}
    kinds = {s.span_id: _kind(s) for s in draft.spans}
    wrapped_llm = {  # an LLM span around another (a framework over the SDK): keep the inner
        p.span_id
        for s in draft.spans
        if kinds[s.span_id] == "LLM"
        for p in ancestors(s, by_id)
        if kinds[p.span_id] == "LLM"
    }
    for span in draft.spans:
        kind = kinds[span.span_id]
        parents = list(ancestors(span, by_id))
        if kind is None:
            result.skipped["span without openinference.span.kind"] += 1
        elif kind == "LLM" and span.span_id in wrapped_llm:
            result.skipped["LLM span wrapping another LLM span"] += 1
        elif kind == "LLM":
            draft.found.append(_llm(span, result))
        elif kind == "TOOL" and any(kinds[p.span_id] == "TOOL" for p in parents):
            result.skipped["TOOL span inside another TOOL span"] += 1
        elif kind == "TOOL":
            draft.found.append(_tool(span, result))
        elif kind in ("AGENT", "CHAIN") and not any(kinds[p.span_id] for p in parents):
            _turn(draft, span, kind, result)
        elif kind in ("AGENT", "CHAIN"):
            result.skipped[f"{kind} span inside the session (structure only)"] += 1
        else:
            result.skipped[f"{kind} span (not replayed)"] += 1
    if any(not f.fields["input"].get("messages") for f in draft.found if _llm_found(f)):
        result.warnings.append(
            f"{draft.session_id}: model call(s) without messages (hidden by the trace "
            "config?): their messages are not compared"
        )


def _llm_found(found: Found) -> bool:
    return found.fields.get("type") == "llm_call"


def _count(
    result: ImportResult, attrs: dict[str, Any], mapped: frozenset[str], prefixes: tuple[str, ...]
) -> dict[str, Any]:
    kept: dict[str, Any] = {}
    for key, value in attrs.items():
        if key in mapped or key.startswith(prefixes):
            result.mapped[pattern(key)] += 1
        else:
            result.kept[pattern(key)] += 1
            kept[key] = value
    return kept


def io_value(attrs: dict[str, Any], which: str) -> tuple[Any, bool]:
    """`input.value` / `output.value` decoded by its mime type; (value, present)."""
    if f"{which}.value" not in attrs:
        return None, False
    value = attrs[f"{which}.value"]
    mime = str(attrs.get(f"{which}.mime_type") or "")
    if mime == "application/json":
        return json_value(value, any_json=True), True
    if mime:
        return value, True
    return json_value(value), True


# -- flattened attributes ---------------------------------------------------------------


def unflatten(attrs: dict[str, Any], prefix: str) -> Any:
    """`prefix.0.message.role`-style keys as nested data (numeric levels become lists)."""
    tree: dict[str, Any] = {}
    for key, value in attrs.items():
        if not key.startswith(prefix + "."):
            continue
        parts = key[len(prefix) + 1 :].split(".")
        node = tree
        for part in parts[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                break
            node = child
        else:
            node[parts[-1]] = value
    return _listify(tree) if tree else None


def _listify(node: Any) -> Any:
    if not isinstance(node, dict):
        return node
    if node and all(k.isdigit() for k in node):
        return [_listify(node[k]) for k in sorted(node, key=int)]
    return {k: _listify(v) for k, v in node.items()}


def _wire_message(item: Any) -> dict[str, Any]:
    """An OpenInference message as an OpenAI chat message."""
    message = item.get("message") if isinstance(item, dict) else None
    message = message if isinstance(message, dict) else {}
    out: dict[str, Any] = {"role": message.get("role")}
    if "content" in message:
        out["content"] = message["content"]
    elif isinstance(message.get("contents"), list):
        out["content"] = [_wire_part(c) for c in message["contents"]]
    else:
        out["content"] = None
    calls = [
        (c.get("tool_call") or {}) for c in message.get("tool_calls") or [] if isinstance(c, dict)
    ]
    if calls:
        out["tool_calls"] = [
            {
                "id": c.get("id"),
                "type": "function",
                "function": {
                    "name": (c.get("function") or {}).get("name"),
                    "arguments": (c.get("function") or {}).get("arguments"),
                },
            }
            for c in calls
        ]
    for key in ("tool_call_id", "name"):
        if message.get(key) is not None:
            out[key] = message[key]
    if message.get("function_call_name") is not None:
        out["function_call"] = {
            "name": message["function_call_name"],
            "arguments": message.get("function_call_arguments_json"),
        }
    return out


def _wire_part(item: Any) -> Any:
    part = item.get("message_content") if isinstance(item, dict) else None
    if not isinstance(part, dict):
        return item
    if part.get("type") == "image":
        image = (part.get("image") or {}).get("image") or {}
        return {"type": "image_url", "image_url": {"url": image.get("url")}}
    if part.get("type") == "text" or "text" in part:
        return {"type": "text", "text": part.get("text")}
    return part


# -- model calls ------------------------------------------------------------------------


def _codec(provider: str | None, body: dict[str, Any]) -> Any:
    from opswald.intercept.codecs.anthropic_messages import AnthropicMessagesCodec
    from opswald.intercept.codecs.openai_chat import OpenAIChatCodec
    from opswald.intercept.codecs.openai_responses import OpenAIResponsesCodec

    if provider == "anthropic" and "messages" in body:
        return AnthropicMessagesCodec()
    if "messages" not in body and "input" in body:
        return OpenAIResponsesCodec()
    return OpenAIChatCodec()


def _provider(attrs: dict[str, Any]) -> str | None:
    name = attrs.get("llm.provider") or attrs.get("llm.system")
    return str(name).lower() if name else None


def _request(span: Span, provider: str | None) -> dict[str, Any]:
    """The request from `input.value` when it is the call's body, else from the attributes."""
    attrs = span.attributes
    body, _ = io_value(attrs, "input")
    model = text(span, attrs, "llm.request.model_name", "llm.model_name")
    if not (isinstance(body, dict) and ("messages" in body or "input" in body)):
        body = _flattened_body(attrs, model)
    elif "model" not in body and model:
        body = {**body, "model": model}
    codec = _codec(provider, body)
    request = codec.request(body)
    if provider in ("openai", "azure"):
        request["provider"] = "openai"
    elif provider != request["provider"]:
        request["provider"], request["api"] = provider, None
    return dict(request)


def _flattened_body(attrs: dict[str, Any], model: Any) -> dict[str, Any]:
    params = json_value(attrs.get("llm.invocation_parameters"))
    body: dict[str, Any] = dict(params) if isinstance(params, dict) else {}
    body.pop("messages", None)
    body["model"] = body.get("model") or model
    messages = unflatten(attrs, "llm.input_messages")
    if isinstance(messages, list):
        body["messages"] = [_wire_message(m) for m in messages]
    tools = unflatten(attrs, "llm.tools")
    if isinstance(tools, list):
        schemas = [json_value((t.get("tool") or {}).get("json_schema")) for t in tools]
        body["tools"] = [s for s in schemas if s is not None] or None
    return body


def _decoded(attrs: dict[str, Any], provider: str | None) -> Any:
    """The response decoded from `output.value` by its codec, or None."""
    from opswald.intercept.codecs import anthropic_messages, openai_chat, openai_responses

    data, _ = io_value(attrs, "output")
    if not isinstance(data, dict):
        return None
    if isinstance(data.get("choices"), list):
        return openai_chat.decode_json(data)
    if data.get("type") == "message" and provider == "anthropic":
        return anthropic_messages.decode_json(data)
    if data.get("object") == "response":
        return openai_responses.decode_json(data)
    return None


_WIRE_OBJECTS = frozenset({"chat.completion", "message", "response"})


def _output(attrs: dict[str, Any], decoded: Any, failed: bool) -> dict[str, Any] | None:
    finish = attrs.get("llm.finish_reason")
    if decoded is not None:
        out: dict[str, Any] = decoded.output.model_dump(exclude_none=True)
        if finish is not None:
            out.setdefault("finish_reason", finish)
        return out
    messages = unflatten(attrs, "llm.output_messages")
    if not isinstance(messages, list) or not messages:
        return None if failed and finish is None else {"finish_reason": finish}
    wire = _wire_message(messages[0])
    calls = [
        {
            "id": c["id"],
            "name": c["function"]["name"],
            "arguments": json_value(c["function"]["arguments"], any_json=True),
        }
        for c in wire.get("tool_calls") or []
    ]
    content = wire.get("content")
    if isinstance(content, list):
        content = "".join(p.get("text") or "" for p in content if isinstance(p, dict)) or None
    return {"content": content, "tool_calls": calls or None, "finish_reason": finish}


def _usage(attrs: dict[str, Any], decoded: Any) -> dict[str, int] | None:
    usage = {name: as_int(attrs.get(key)) for name, key in USAGE.items()}
    found = {k: v for k, v in usage.items() if v is not None}
    if found:
        return found
    if decoded is not None and decoded.usage is not None:
        return dict(decoded.usage.model_dump(exclude_none=True))
    return None


def _cost(attrs: dict[str, Any]) -> float | None:
    total = as_float(attrs.get("llm.cost.total"))
    if total is not None:
        return total
    parts = [as_float(attrs.get(k)) for k in ("llm.cost.prompt", "llm.cost.completion")]
    known = [p for p in parts if p is not None]
    return sum(known) if known else None


def _llm(span: Span, result: ImportResult) -> Found:
    attrs = span.attributes
    kept = _count(result, attrs, LLM_MAPPED, LLM_PREFIXES)
    provider = _provider(attrs)
    request = _request(span, provider)
    decoded = _decoded(attrs, provider)
    error = span_error(span)
    response_model = text(span, attrs, "llm.response.model_name") or (decoded and decoded.model)
    if response_model and response_model != request.get("model"):
        kept["response_model"] = response_model
    cost = _cost(attrs)
    fields: dict[str, Any] = {
        "type": "llm_call",
        "timestamp": span.timestamp,
        "duration_ms": span.duration_ms,
        **request,
        "output": _output(attrs, decoded, error is not None),
        "usage": _usage(attrs, decoded),
        "cost": cost,
        "cost_source": "trace" if cost is not None else None,
        "error": error,
    }
    raw = decoded.raw if decoded is not None else None
    if isinstance(raw, dict) and raw.get("object", raw.get("type")) in _WIRE_OBJECTS:
        fields["raw"] = raw
    # a call that failed with an HTTP status replays as that error
    body = failed_call(request.get("provider"), error, kept, http_status(span))
    if body is not None:
        fields["raw"] = body
    fields["attributes"] = kept or None
    return Found(start_ns=span.start_ns or 0, seq=span.seq, fields=fields)


# -- tools and the session span ---------------------------------------------------------


def _tool(span: Span, result: ImportResult) -> Found:
    attrs = span.attributes
    kept = _count(result, attrs, TOOL_MAPPED, ())
    arguments, _ = io_value(attrs, "input")
    output, _ = io_value(attrs, "output")
    call_id = text(span, attrs, "tool_call.id")
    fields = {
        "type": "tool_call",
        "timestamp": span.timestamp,
        "duration_ms": span.duration_ms,
        "tool": str(attrs.get("tool.name") or span.name or "tool"),
        "call_id": call_id,
        "input": arguments,
        "output": output,
        "error": span_error(span),
        "attributes": kept or None,
    }
    return Found(start_ns=span.start_ns or 0, seq=span.seq, fields=fields)


def _turn(draft: Draft, span: Span, kind: str, result: ImportResult) -> None:
    attrs = span.attributes
    for key in attrs:
        if key in ROOT_MAPPED:
            result.mapped[pattern(key)] += 1
        else:
            result.skipped[f"{pattern(key)} (on the {kind} span)"] += 1
    value, has_input = io_value(attrs, "input")
    output, has_output = io_value(attrs, "output")
    draft.turns.append(
        Turn(
            start_ns=span.start_ns or 0,
            seq=span.seq,
            input=value,
            has_input=has_input,
            output=output,
            has_output=has_output,
            error=span_error(span),
        )
    )
    name = text(span, attrs, "agent.name") or (span.name if kind == "AGENT" else None)
    if draft.agent is None and name:
        draft.agent = name
