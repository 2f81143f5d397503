"""OpenTelemetry GenAI traces (OTLP JSON) -> goldens.

Reads the GenAI semantic conventions as producers write them today — `gen_ai.input.messages`
/ `gen_ai.output.messages` with `parts`, on the span, or in a
`gen_ai.client.inference.operation.details` event (span event or log record) — and the
deprecated forms: `gen_ai.system`, `gen_ai.usage.prompt_tokens`/`completion_tokens`, and the
per-message events `gen_ai.{system,user,assistant,tool}.message` / `gen_ai.choice`, which
`opentelemetry-instrumentation-openai-v2` emitted as log records.

Each model call becomes the `llm_call` step the interception would have recorded for the
same SDK call: the conversation is rebuilt in the provider's wire form (OpenAI chat, or
Anthropic messages) and normalised by the same codec the interception uses, so an agent that
makes the same calls matches it on replay. What the trace did not carry (content not
captured, no tool definitions) stays absent and is not compared. The conventions record only
some request parameters, so an imported golden ignores `input.params` when matching
(`expect.requests.ignore`; delete that line once the golden has been re-recorded).
"""

from __future__ import annotations

import json
from typing import Any

from opswald.importers import ImportResult
from opswald.importers.otlp import (
    Draft,
    Found,
    LogRecord,
    Span,
    Turn,
    ancestors,
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

OP = "gen_ai.operation.name"
LLM_OPERATIONS = frozenset({"chat", "text_completion", "generate_content"})
DETAILS_EVENT = "gen_ai.client.inference.operation.details"
LEGACY_ROLES = {
    "gen_ai.system.message": "system",
    "gen_ai.user.message": "user",
    "gen_ai.assistant.message": "assistant",
    "gen_ai.tool.message": "tool",
}
CHOICE_EVENT = "gen_ai.choice"
OPENAI_PROVIDERS = frozenset({"openai", "azure.ai.openai", "az.ai.openai", "azure_openai"})

# request parameter attribute -> (OpenAI chat name, Anthropic messages name)
PARAMS = {
    "gen_ai.request.temperature": ("temperature", "temperature"),
    "gen_ai.request.top_p": ("top_p", "top_p"),
    "gen_ai.request.top_k": ("top_k", "top_k"),
    "gen_ai.request.max_tokens": ("max_tokens", "max_tokens"),
    "gen_ai.request.presence_penalty": ("presence_penalty", "presence_penalty"),
    "gen_ai.request.frequency_penalty": ("frequency_penalty", "frequency_penalty"),
    "gen_ai.request.seed": ("seed", "seed"),
    "gen_ai.openai.request.seed": ("seed", "seed"),
    "gen_ai.request.stop_sequences": ("stop", "stop_sequences"),
    "gen_ai.request.choice.count": ("n", "n"),
}
USAGE = {
    "input_tokens": ("gen_ai.usage.input_tokens", "gen_ai.usage.prompt_tokens"),
    "output_tokens": ("gen_ai.usage.output_tokens", "gen_ai.usage.completion_tokens"),
    "total_tokens": ("gen_ai.usage.total_tokens",),
    "cache_read_tokens": (
        "gen_ai.usage.cache_read.input_tokens",
        "gen_ai.usage.cache_read_input_tokens",
    ),
    "cache_creation_tokens": (
        "gen_ai.usage.cache_creation.input_tokens",
        "gen_ai.usage.cache_write.input_tokens",
        "gen_ai.usage.cache_creation_input_tokens",
    ),
    "reasoning_tokens": (
        "gen_ai.usage.reasoning.output_tokens",
        "gen_ai.usage.reasoning_tokens",
    ),
}
LLM_MAPPED = frozenset(
    {
        OP,
        "gen_ai.provider.name",
        "gen_ai.system",
        "gen_ai.request.model",
        "gen_ai.response.model",
        "gen_ai.input.messages",
        "gen_ai.output.messages",
        "gen_ai.system_instructions",
        "gen_ai.tool.definitions",
        "gen_ai.response.finish_reasons",
        "gen_ai.conversation.id",
        "gen_ai.request.stream",
        "error.type",
        *PARAMS,
        *(name for names in USAGE.values() for name in names),
    }
)
TOOL_MAPPED = frozenset(
    {
        OP,
        "gen_ai.tool.name",
        "gen_ai.tool.call.id",
        "gen_ai.tool.call.arguments",
        "gen_ai.tool.call.result",
        "gen_ai.conversation.id",
        "error.type",
    }
)
AGENT_MAPPED = frozenset(
    {
        OP,
        "gen_ai.agent.name",
        "gen_ai.agent.version",
        "gen_ai.input.messages",
        "gen_ai.output.messages",
        "gen_ai.conversation.id",
        "error.type",
    }
)


def convert(data: Any) -> ImportResult:
    """One golden per trace, or per `gen_ai.conversation.id` when the spans carry one."""
    telemetry = read(data)
    result = ImportResult()
    logs = telemetry.logs_of()
    linked = {s.span_id for s in telemetry.spans}
    for record in telemetry.logs:
        if record.span_id not in linked:
            result.skipped["log record not linked to a span of the document"] += 1
    for session_id, is_conversation, spans in group(telemetry.spans, "gen_ai.conversation.id"):
        draft = Draft(
            fmt="otel", session_id=session_id, is_conversation=is_conversation, spans=spans
        )
        _fill(draft, logs, result)
        result.add(assemble(draft, result), _missing(spans))
    return result


def _missing(spans: list[Span]) -> str:
    """What a trace without model or tool calls lacked, and whether it looks like OpenInference."""
    why = (
        "no span with gen_ai.operation.name chat, text_completion, generate_content or execute_tool"
    )
    if any("openinference.span.kind" in span.attributes for span in spans):
        why += "; its spans have openinference.span.kind: is this an openinference trace?"
    return why


# -- one session ------------------------------------------------------------------------


def _operation(span: Span) -> str | None:
    op = span.attributes.get(OP)
    if isinstance(op, str) and op:
        return op
    if span.attributes.get("gen_ai.system") or span.attributes.get("gen_ai.provider.name"):
        return "chat"  # conventions before gen_ai.operation.name existed
    return None


def _fill(draft: Draft, logs: dict[str, list[LogRecord]], result: ImportResult) -> None:
    by_id = {s.span_id: s for s in draft.spans}
    ops = {s.span_id: _operation(s) for s in draft.spans}
    wrapped_llm = {  # an LLM span around another one (a framework over the SDK): keep the inner
        p.span_id
        for s in draft.spans
        if ops[s.span_id] in LLM_OPERATIONS
        for p in ancestors(s, by_id)
        if ops[p.span_id] in LLM_OPERATIONS
    }
    calls: dict[str, dict[str, Any]] = {}  # tool-call id -> arguments / response seen
    tools: list[Span] = []
    agents: list[Span] = []  # the top-level invoke_agent spans (a conversation's turns)
    missing_content = 0
    for span in draft.spans:
        op = ops[span.span_id]
        if op is None:
            result.skipped["span without gen_ai.operation.name"] += 1
        elif op in LLM_OPERATIONS and span.span_id in wrapped_llm:
            result.skipped["model span wrapping another model span"] += 1
        elif op in LLM_OPERATIONS:
            found, captured = _llm(span, logs.get(span.span_id, []), calls, result)
            draft.found.append(found)
            missing_content += not captured
        elif op == "execute_tool":
            if any(ops[p.span_id] == "execute_tool" for p in ancestors(span, by_id)):
                result.skipped["tool span inside another tool span"] += 1
            else:
                tools.append(span)
        elif op == "invoke_agent":
            if any(ops[p.span_id] == "invoke_agent" for p in ancestors(span, by_id)):
                result.skipped["nested invoke_agent span (its calls are steps here)"] += 1
            else:
                agents.append(span)
                _turn(draft, span, logs.get(span.span_id, []), result)
        else:
            result.skipped[f"{op} span (not replayed)"] += 1
    draft.found.extend(_tool(span, calls, result) for span in tools)
    side_by_side = _side_by_side(agents)
    if side_by_side:
        result.warnings.append(
            f"{draft.session_id}: {len(side_by_side)} agents ran side by side "
            f"({', '.join(side_by_side)}): imported as one golden, the later ones' inputs as "
            "user_input steps and the last one's output as its output; export each agent's "
            "spans as a trace of its own, or edit the golden, to test them apart"
        )
    if missing_content:
        result.warnings.append(
            f"{draft.session_id}: {missing_content} model call(s) without message content "
            "(content capture was off?): their messages are not compared and their answers "
            "replay without text or tool calls"
        )
    if any(f.fields.get("input", {}).get("params") for f in draft.found if _is_llm(f)):
        draft.expect = {"requests": {"ignore": ["input.params"]}}


def _side_by_side(agents: list[Span]) -> list[str]:
    """The names of top-level agent spans that ran at the same time (two agents of one
    request, not the turns of a conversation, which follow one another); [] for none."""
    timed = sorted((a for a in agents if a.start_ns is not None), key=lambda a: a.start_ns or 0)
    overlapping: list[Span] = []
    latest: Span | None = None  # of the spans so far, the one that ended last
    for span in timed:
        start = span.start_ns or 0
        if latest is not None and latest.end_ns is not None and start < latest.end_ns:
            overlapping.extend(s for s in (latest, span) if s not in overlapping)
        if latest is None or (span.end_ns or 0) > (latest.end_ns or 0):
            latest = span
    return [str(a.attributes.get("gen_ai.agent.name") or a.name) for a in overlapping]


def _is_llm(found: Found) -> bool:
    return found.fields.get("type") == "llm_call"


def _details(span: Span, records: list[LogRecord]) -> dict[str, Any]:
    """Attributes of the operation-details event (span event or log record) of a span."""
    merged: dict[str, Any] = {}
    for event in span.events:
        if event.name == DETAILS_EVENT:
            merged.update(event.attributes)
    for record in records:
        if record.event_name == DETAILS_EVENT:
            merged.update(record.attributes)
    return merged


def _count(result: ImportResult, keys: dict[str, Any], mapped: frozenset[str]) -> dict[str, Any]:
    """Count each attribute as mapped or kept; return the kept ones."""
    kept: dict[str, Any] = {}
    for key, value in keys.items():
        if key in mapped:
            result.mapped[pattern(key)] += 1
        else:
            result.kept[pattern(key)] += 1
            kept[key] = value
    return kept


# -- model calls ------------------------------------------------------------------------


def _llm(
    span: Span, records: list[LogRecord], calls: dict[str, dict[str, Any]], result: ImportResult
) -> tuple[Found, bool]:
    """The llm_call step of a model span, and whether its messages were captured."""
    attrs = {**_details(span, records), **span.attributes}
    for key in MESSAGE_KEYS:
        problem = _malformed(attrs.get(key))
        if problem is not None:  # dropped, said, and not counted as mapped
            del attrs[key]
            result.skipped[f"malformed {key} (see warnings)"] += 1
            result.warnings.append(
                f"trace {span.trace_id} span {span.span_id} ({span.name}): {key} {problem}; "
                "left out of the step (not compared)"
            )
    kept = _count(result, attrs, LLM_MAPPED)
    inputs = _messages(attrs.get("gen_ai.input.messages"))
    outputs = _messages(attrs.get("gen_ai.output.messages"))
    if inputs is None and outputs is None:
        inputs, outputs = _legacy(span, records, result)
    _remember_calls(inputs, outputs, calls)
    provider_attr = attrs.get("gen_ai.provider.name") or attrs.get("gen_ai.system")
    provider, api = _api(
        str(provider_attr) if provider_attr else None, str(attrs.get(OP) or "chat")
    )
    response_model = text(span, attrs, "gen_ai.response.model")
    model = text(span, attrs, "gen_ai.request.model") or response_model
    request = _request(api, provider, model, attrs, inputs)
    if response_model and response_model != model:
        kept["response_model"] = response_model
    error = span_error(span)
    fields: dict[str, Any] = {
        "type": "llm_call",
        "timestamp": span.timestamp,
        "duration_ms": span.duration_ms,
        **request,
        "output": _native_finish(_output(outputs, attrs, error is not None), provider),
        "usage": _usage(attrs),
        "error": error,
    }
    body = failed_call(provider, error, kept, http_status(span))  # replayed as that error
    if body is not None:
        fields["raw"] = body
    fields["attributes"] = kept or None
    found = Found(start_ns=span.start_ns or 0, seq=span.seq, fields=fields)
    return found, inputs is not None or outputs is not None


def _api(provider: str | None, operation: str) -> tuple[str | None, str | None]:
    """(provider, api) as the interception records a call to that provider."""
    if provider in OPENAI_PROVIDERS:
        return "openai", "openai.chat_completions" if operation == "chat" else None
    if provider == "anthropic":
        return "anthropic", "anthropic.messages" if operation == "chat" else None
    return provider, None


MESSAGE_KEYS = ("gen_ai.input.messages", "gen_ai.output.messages", "gen_ai.system_instructions")


def _malformed(value: Any) -> str | None:
    """What is wrong with a GenAI messages (or instructions) attribute, or None.

    Producers cut long attribute values at OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT, which leaves
    JSON that does not parse; other producers write another shape. Either way the messages
    cannot be rebuilt, and a step without them silently compares nothing."""
    if value is None:
        return None
    if isinstance(value, str):
        text = value.strip()
        if not text.startswith(("[", "{")):
            return None  # plain text: system instructions may be written so
        try:
            value = json.loads(text)
        except ValueError as exc:
            return f"is not JSON: truncated? (OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT; {exc})"
    if not isinstance(value, list):
        return "is not a list of messages"
    for i, message in enumerate(value):
        if not isinstance(message, dict):
            return f"item [{i}] is not a message object"
        parts = message.get("parts", [])
        if parts is not None and not isinstance(parts, list):
            return f"item [{i}]: parts is not a list"
    return None


def _messages(value: Any) -> list[dict[str, Any]] | None:
    """GenAI messages (a JSON string or structured value) as a list of dicts with parts."""
    value = json_value(value)
    if not isinstance(value, list):
        return None
    messages = [m for m in value if isinstance(m, dict)]
    return messages or None


def _request(
    api: str | None,
    provider: str | None,
    model: Any,
    attrs: dict[str, Any],
    inputs: list[dict[str, Any]] | None,
) -> dict[str, Any]:
    """The normalised request, built through the codec the interception uses."""
    from opswald.intercept.codecs.anthropic_messages import AnthropicMessagesCodec
    from opswald.intercept.codecs.openai_chat import OpenAIChatCodec

    anthropic = api == "anthropic.messages"
    system = _parts(attrs.get("gen_ai.system_instructions"))
    body: dict[str, Any] = {"model": model}
    if anthropic:
        messages, system_text = _to_anthropic(inputs, system)
        if system_text is not None:
            body["system"] = system_text
    else:
        messages = _to_openai(inputs, system)
    if messages is not None:
        body["messages"] = messages
    tools = _tools(attrs.get("gen_ai.tool.definitions"), anthropic=anthropic)
    if tools is not None:
        body["tools"] = tools
    for key, names in PARAMS.items():
        value = attrs.get(key)
        if value is not None:
            body.setdefault(names[1] if anthropic else names[0], value)
    codec = AnthropicMessagesCodec() if anthropic else OpenAIChatCodec()
    request = codec.request(body)
    request["provider"], request["api"] = provider, api
    return request


def _parts(value: Any) -> list[dict[str, Any]] | None:
    value = json_value(value)
    if isinstance(value, str):
        return [{"type": "text", "content": value}]
    if isinstance(value, list):
        return [p for p in value if isinstance(p, dict)] or None
    return None


def _texts(parts: list[dict[str, Any]]) -> list[str]:
    return [str(p.get("content")) for p in parts if p.get("type") == "text"]


def _openai_content(parts: list[dict[str, Any]]) -> Any:
    """Text parts as one string (the usual request form), anything else as content parts."""
    if not parts:
        return None
    if all(p.get("type") == "text" for p in parts):
        texts = _texts(parts)
        if len(texts) == 1:
            return texts[0]
        return [{"type": "text", "text": t} for t in texts]
    return [_openai_part(p) for p in parts]


def _openai_part(part: dict[str, Any]) -> dict[str, Any]:
    kind = part.get("type")
    if kind == "text":
        return {"type": "text", "text": part.get("content")}
    if kind == "uri" and part.get("modality") == "image":
        return {"type": "image_url", "image_url": {"url": part.get("uri")}}
    if kind == "blob" and part.get("modality") == "image":
        url = f"data:{part.get('mime_type') or 'image/png'};base64,{part.get('content')}"
        return {"type": "image_url", "image_url": {"url": url}}
    return dict(part)


def _to_openai(
    inputs: list[dict[str, Any]] | None, system: list[dict[str, Any]] | None
) -> list[dict[str, Any]] | None:
    """GenAI messages in OpenAI Chat Completions wire form."""
    if inputs is None:
        return None
    out: list[dict[str, Any]] = []
    if system:
        out.append({"role": "system", "content": _openai_content(system)})
    for message in inputs:
        parts = [p for p in message.get("parts") or [] if isinstance(p, dict)]
        calls = [p for p in parts if p.get("type") == "tool_call"]
        answers = [p for p in parts if p.get("type") == "tool_call_response"]
        content = [p for p in parts if p.get("type") not in _NOT_CONTENT]
        if content or calls or not answers:
            wire: dict[str, Any] = {"role": message.get("role") or "user"}
            wire["content"] = _openai_content(content)
            if calls:
                wire["tool_calls"] = [
                    {
                        "id": c.get("id"),
                        "type": "function",
                        "function": {"name": c.get("name"), "arguments": c.get("arguments")},
                    }
                    for c in calls
                ]
            if message.get("name"):
                wire["name"] = message["name"]
            out.append(wire)
        for answer in answers:
            out.append(
                {
                    "role": "tool",
                    "tool_call_id": answer.get("id"),
                    "content": _tool_text(answer.get("response")),
                }
            )
    return out


_NOT_CONTENT = frozenset({"tool_call", "tool_call_response", "reasoning"})


def _tool_text(response: Any) -> Any:
    """A tool answer as message content: text as is, structured data as JSON text."""
    import json

    if response is None or isinstance(response, str):
        return response
    if isinstance(response, list) and all(isinstance(p, dict) and "type" in p for p in response):
        return response
    return json.dumps(response, ensure_ascii=False)


def _to_anthropic(
    inputs: list[dict[str, Any]] | None, system: list[dict[str, Any]] | None
) -> tuple[list[dict[str, Any]] | None, Any]:
    """GenAI messages in Anthropic Messages wire form: (messages, system)."""
    system_texts = _texts(system or [])
    if inputs is None:
        return None, "\n".join(system_texts) if system_texts else None
    out: list[dict[str, Any]] = []
    for message in inputs:
        parts = [p for p in message.get("parts") or [] if isinstance(p, dict)]
        role = message.get("role") or "user"
        if role == "system":
            system_texts += _texts(parts)
            continue
        blocks = [_anthropic_block(p) for p in parts if p.get("type") != "reasoning"]
        if role == "tool" or any(b.get("type") == "tool_result" for b in blocks):
            role = "user"
        if out and out[-1]["role"] == role == "user" and _all_results(blocks, out[-1]):
            out[-1]["content"] += blocks
            continue
        plain = len(blocks) == 1 and blocks[0].get("type") == "text"
        out.append({"role": role, "content": blocks[0]["text"] if plain else blocks})
    return out, "\n".join(system_texts) if system_texts else None


def _all_results(blocks: list[dict[str, Any]], previous: dict[str, Any]) -> bool:
    content = previous.get("content")
    return (
        isinstance(content, list)
        and all(b.get("type") == "tool_result" for b in blocks)
        and all(isinstance(b, dict) and b.get("type") == "tool_result" for b in content)
    )


def _anthropic_block(part: dict[str, Any]) -> dict[str, Any]:
    kind = part.get("type")
    if kind == "text":
        return {"type": "text", "text": part.get("content")}
    if kind == "tool_call":
        return {
            "type": "tool_use",
            "id": part.get("id"),
            "name": part.get("name"),
            "input": json_value(part.get("arguments")),
        }
    if kind == "tool_call_response":
        return {
            "type": "tool_result",
            "tool_use_id": part.get("id"),
            "content": _tool_text(part.get("response")),
        }
    return dict(part)


def _tools(value: Any, *, anthropic: bool) -> list[Any] | None:
    """`gen_ai.tool.definitions` (flat `{type, name, description, parameters}`) in wire form."""
    value = json_value(value)
    if not isinstance(value, list) or not value:
        return None
    out: list[Any] = []
    for tool in value:
        if not isinstance(tool, dict) or "function" in tool or "input_schema" in tool:
            out.append(tool)
            continue
        spec = {k: v for k, v in tool.items() if k != "type"}
        if anthropic:
            schema = spec.pop("parameters", None)
            out.append({**spec, **({"input_schema": schema} if schema is not None else {})})
        else:
            out.append({"type": tool.get("type") or "function", "function": spec})
    return out


def _output(
    outputs: list[dict[str, Any]] | None, attrs: dict[str, Any], failed: bool
) -> dict[str, Any] | None:
    reasons = attrs.get("gen_ai.response.finish_reasons")
    reasons = [reasons] if isinstance(reasons, str) else reasons
    first_reason = reasons[0] if isinstance(reasons, list) and reasons else None
    if not outputs:
        if failed and first_reason is None:
            return None
        return {"finish_reason": first_reason}
    message = outputs[0]
    parts = [p for p in message.get("parts") or [] if isinstance(p, dict)]
    texts = _texts(parts)
    calls = [
        {"id": p.get("id"), "name": p.get("name"), "arguments": json_value(p.get("arguments"))}
        for p in parts
        if p.get("type") == "tool_call"
    ]
    return {
        "content": "".join(texts) if texts else None,
        "tool_calls": calls or None,
        "finish_reason": message.get("finish_reason") or first_reason,
    }


# The semantic conventions' finish reasons, as each provider's API says them: the codec
# rebuilds the wire response from the normalised step, and an agent branches on the
# provider's own word (`finish_reason == "tool_calls"`, `stop_reason != "tool_use"`).
_FINISH = {
    "openai": {"tool_call": "tool_calls"},
    "anthropic": {"tool_call": "tool_use", "stop": "end_turn", "length": "max_tokens"},
}


def _native_finish(output: dict[str, Any] | None, provider: str | None) -> dict[str, Any] | None:
    family = "openai" if provider in OPENAI_PROVIDERS else provider
    table = _FINISH.get(family or "")
    if output is None or table is None or output.get("finish_reason") not in table:
        return output
    return {**output, "finish_reason": table[output["finish_reason"]]}


def _usage(attrs: dict[str, Any]) -> dict[str, int] | None:
    usage: dict[str, int] = {}
    for name, keys in USAGE.items():
        value = next((as_int(attrs[k]) for k in keys if as_int(attrs.get(k)) is not None), None)
        if value is not None:
            usage[name] = value
    return usage or None


def _remember_calls(
    inputs: list[dict[str, Any]] | None,
    outputs: list[dict[str, Any]] | None,
    calls: dict[str, dict[str, Any]],
) -> None:
    """Tool-call arguments and answers seen in the conversation, by call id."""
    for message in [*(inputs or []), *(outputs or [])]:
        for part in message.get("parts") or []:
            if not isinstance(part, dict) or not isinstance(part.get("id"), str):
                continue
            if part.get("type") == "tool_call" and part.get("arguments") is not None:
                calls.setdefault(part["id"], {})["arguments"] = json_value(part["arguments"])
            elif part.get("type") == "tool_call_response":
                calls.setdefault(part["id"], {})["response"] = part.get("response")


# -- deprecated per-message events ------------------------------------------------------


def _legacy(
    span: Span, records: list[LogRecord], result: ImportResult
) -> tuple[list[dict[str, Any]] | None, list[dict[str, Any]] | None]:
    """Messages from `gen_ai.*.message` / `gen_ai.choice` span events or log records."""
    bodies: list[tuple[str, Any]] = []
    for event in span.events:
        if event.name in LEGACY_ROLES or event.name == CHOICE_EVENT:
            bodies.append((event.name, _event_body(event.attributes)))
    for record in records:
        if record.event_name in LEGACY_ROLES or record.event_name == CHOICE_EVENT:
            bodies.append((record.event_name, record.body if isinstance(record.body, dict) else {}))
    inputs: list[dict[str, Any]] = []
    outputs: list[dict[str, Any]] = []
    for name, body in bodies:
        result.mapped[name] += 1
        if name == CHOICE_EVENT:
            if as_int(body.get("index")) in (None, 0):
                message = body.get("message") if isinstance(body.get("message"), dict) else {}
                out = _legacy_message("assistant", message)
                out["finish_reason"] = body.get("finish_reason")
                outputs.append(out)
        else:
            inputs.append(_legacy_message(LEGACY_ROLES[name], body))
    has_parts = any(m["parts"] for m in inputs + outputs)
    if not has_parts:  # events without content: the messages were not captured
        return None, None
    return inputs or None, outputs or None


def _event_body(attributes: dict[str, Any]) -> dict[str, Any]:
    """A span event's body: `gen_ai.event.content` (JSON) or its attributes."""
    content = json_value(attributes.get("gen_ai.event.content"))
    if isinstance(content, dict):
        return content
    return {k: v for k, v in attributes.items() if k not in ("gen_ai.system", "event.name")}


def _legacy_message(role: str, body: dict[str, Any]) -> dict[str, Any]:
    parts: list[dict[str, Any]] = []
    role = str(body.get("role") or role)
    content = body.get("content")
    if role == "tool":
        parts.append({"type": "tool_call_response", "id": body.get("id"), "response": content})
        return {"role": role, "parts": parts}
    if isinstance(content, str):
        parts.append({"type": "text", "content": content})
    elif isinstance(content, list):
        for item in content:
            text = item.get("text") if isinstance(item, dict) else item
            if isinstance(text, str):
                parts.append({"type": "text", "content": text})
    for call in body.get("tool_calls") or []:
        function = call.get("function") if isinstance(call, dict) else None
        if isinstance(function, dict):
            parts.append(
                {
                    "type": "tool_call",
                    "id": call.get("id"),
                    "name": function.get("name"),
                    "arguments": json_value(function.get("arguments"), any_json=True),
                }
            )
    return {"role": role, "parts": parts}


# -- tools and agents -------------------------------------------------------------------


def _tool(span: Span, calls: dict[str, dict[str, Any]], result: ImportResult) -> Found:
    """An execute_tool span; arguments and result not captured on it are taken from the
    conversation (the model's tool call and the tool message with the same call id)."""
    attrs = span.attributes
    kept = _count(result, attrs, TOOL_MAPPED)
    name = text(span, attrs, "gen_ai.tool.name") or span.name.removeprefix("execute_tool ").strip()
    call_id = text(span, attrs, "gen_ai.tool.call.id")
    seen = calls.get(call_id, {}) if call_id is not None else {}
    arguments = attrs.get("gen_ai.tool.call.arguments")
    output = attrs.get("gen_ai.tool.call.result")
    fields = {
        "type": "tool_call",
        "timestamp": span.timestamp,
        "duration_ms": span.duration_ms,
        "tool": str(name or "tool"),
        "call_id": call_id,
        "input": json_value(arguments) if arguments is not None else seen.get("arguments"),
        "output": json_value(output) if output is not None else json_value(seen.get("response")),
        "error": span_error(span),
        "attributes": kept or None,
    }
    return Found(start_ns=span.start_ns or 0, seq=span.seq, fields=fields)


def _turn(draft: Draft, span: Span, records: list[LogRecord], result: ImportResult) -> None:
    attrs = {**_details(span, records), **span.attributes}
    for key in attrs:
        if key in AGENT_MAPPED:
            result.mapped[pattern(key)] += 1
        else:
            result.skipped[f"{pattern(key)} (on the agent span)"] += 1
    inputs = _messages(attrs.get("gen_ai.input.messages"))
    outputs = _messages(attrs.get("gen_ai.output.messages"))
    draft.turns.append(
        Turn(
            start_ns=span.start_ns or 0,
            seq=span.seq,
            input=_turn_value(inputs),
            has_input=inputs is not None,
            output=_turn_value(outputs),
            has_output=outputs is not None,
            error=span_error(span),
        )
    )
    name = text(span, attrs, "gen_ai.agent.name")
    if draft.agent is None and name:
        draft.agent = name
    version = attrs.get("gen_ai.agent.version")
    if version is not None:
        draft.metadata.setdefault("agent_version", version)


def _turn_value(messages: list[dict[str, Any]] | None) -> Any:
    """An agent's input or output: its text when it is one text message, else the messages."""
    if not messages:
        return None
    if len(messages) == 1:
        parts = [p for p in messages[0].get("parts") or [] if isinstance(p, dict)]
        if parts and all(p.get("type") == "text" for p in parts):
            return "".join(_texts(parts))
    return _to_openai(messages, None)
