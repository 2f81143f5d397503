"""The normalised form of an LLM request, the thing replay matches on (DESIGN §3a)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from opswald import paths
from opswald.intercept.codecs.openai_responses import recorded_messages
from opswald.redact import DEFAULT_REDACTOR, Redactor
from opswald.session import LLMCallStep, NormalizeRule, RequestsExpect

NOISE_PARAMS = frozenset(
    {
        "user",
        "metadata",
        "extra_headers",
        "extra_query",
        "extra_body",
        "timeout",
        "max_retries",
        "idempotency_key",
        "request_id",
        "stream_options",
        # a prompt-cache routing hint; the OpenAI Agents SDK sends api.openai.com a new
        # random `agents-sdk:run:<id>` on every run
        "prompt_cache_key",
    }
)


@dataclass(frozen=True, kw_only=True)
class RequestRules:
    """Everything that decides whether two LLM requests are the same request."""

    ignore: tuple[paths.Path, ...] = ()
    normalize: tuple[tuple[re.Pattern[str], str], ...] = ()
    redactor: Redactor = field(default=DEFAULT_REDACTOR)

    @classmethod
    def build(
        cls,
        *specs: RequestsExpect | None,
        extra_normalize: Sequence[NormalizeRule] = (),
        redactor: Redactor = DEFAULT_REDACTOR,
    ) -> RequestRules:
        ignore: list[paths.Path] = []
        norm: list[tuple[re.Pattern[str], str]] = []
        for spec in specs:
            if spec is None:
                continue
            ignore.extend(_ignore_pattern(p) for p in spec.ignore)
            norm.extend((re.compile(r.pattern), r.replace) for r in spec.normalize)
        norm.extend((re.compile(r.pattern), r.replace) for r in extra_normalize)
        return cls(ignore=tuple(ignore), normalize=tuple(norm), redactor=redactor)


def _ignore_pattern(text: str) -> paths.Path:
    """Ignore paths are written from the step (`input.params.seed`) or bare (`params.seed`)."""
    parsed = paths.parse(text)
    return (
        parsed
        if parsed[:1] in (("input",), ("model",), ("provider",), ("api",))
        else (
            "input",
            *parsed,
        )
    )


def request_of(step: LLMCallStep) -> dict[str, Any]:
    """The matchable part of an llm_call step, in the golden's field names (a step recorded
    before a codec's form changed read in today's form where it can be: see
    `openai_responses.recorded_messages`)."""
    return {
        "provider": step.provider,
        "api": step.api,
        "model": step.model,
        "input": {
            "messages": recorded_messages(step),
            "tools": step.input.tools,
            "params": step.input.params,
        },
    }


# The request fields a step may leave out; what the golden leaves out is not compared.
REQUEST_FIELDS: tuple[tuple[str, ...], ...] = (
    ("provider",),
    ("api",),
    ("model",),
    ("input", "messages"),
    ("input", "tools"),
    ("input", "params"),
)


def absent_fields(recorded: dict[str, Any]) -> tuple[tuple[str, ...], ...]:
    """The fields of `REQUEST_FIELDS` the recorded request does not have (None).

    DESIGN §3a: "Fields absent from a step are not compared" — an imported trace that did
    not capture message content or tool definitions still matches the agent's requests.
    Judged on the step as written, before normalising, so a field that only held SDK noise
    (`params: {stream_options: ...}`) still counts as present.
    """
    found: list[tuple[str, ...]] = []
    for path in REQUEST_FIELDS:
        value: Any = recorded
        for key in path:
            value = value.get(key) if isinstance(value, dict) else None
        if value is None:
            found.append(path)
    return tuple(found)


# Params the request carries outside its body: in its URL (the Azure OpenAI deployment,
# the query: see `opswald.intercept.codecs.base.url_params`) and its headers (Anthropic's
# betas: `AnthropicMessagesCodec.header_params`). A golden written by hand or imported from
# a trace may leave them out, and is not compared on them where it does; a recorded golden
# wrote each one the request sent, so one added since is a change.
CARRIED_PARAMS: tuple[str, ...] = ("azure_deployment", "query", "betas")


def without_unrecorded_carried_params(
    request: dict[str, Any], recorded: dict[str, Any]
) -> dict[str, Any]:
    """`request` without the carried params `recorded` does not have (copies what it
    changes)."""
    params = (request.get("input") or {}).get("params")
    if not isinstance(params, dict) or not any(k in params for k in CARRIED_PARAMS):
        return request
    kept = (recorded.get("input") or {}).get("params")
    kept = kept if isinstance(kept, dict) else {}
    dropped = {k for k in CARRIED_PARAMS if k in params and k not in kept}
    if not dropped:
        return request
    rest = {k: v for k, v in params.items() if k not in dropped}
    return {**request, "input": {**request["input"], "params": rest or None}}


def without_fields(request: dict[str, Any], fields: Sequence[tuple[str, ...]]) -> dict[str, Any]:
    """`request` with `fields` set to None (copies only the levels it changes)."""
    out = dict(request)
    for path in fields:
        if len(path) == 1:
            out[path[0]] = None
        else:
            section = out.get(path[0])
            out[path[0]] = {**(section if isinstance(section, dict) else {}), path[1]: None}
    return out


def normalize_request(request: dict[str, Any], rules: RequestRules) -> dict[str, Any]:
    """Drop SDK noise, number tool-call ids by position, redact, then apply the user's rules.

    Inside messages a key whose value is null counts as absent (`"content": null` beside
    tool calls, `"refusal": null` from a response object sent back as is): the providers
    read both the same way, and agents and imported traces write either.
    """
    data = rules.redactor(request)
    data = _number_call_ids(data)
    params = (data.get("input") or {}).get("params")
    if isinstance(params, dict):
        data["input"]["params"] = {
            k: v
            for k, v in sorted(params.items())
            if k not in NOISE_PARAMS and not str(k).lower().startswith("x-stainless")
        } or None
    if rules.ignore:
        data = paths.drop(data, rules.ignore)
    if rules.normalize:
        data = _substitute(data, rules.normalize)
    return dict(data)


_ID_KEYS = ("id", "tool_call_id", "call_id", "tool_use_id")


def _number_call_ids(data: Any) -> Any:
    """Replace tool-call ids inside messages by their order of first appearance (and leave
    out null-valued keys)."""
    messages = (data.get("input") or {}).get("messages") if isinstance(data, dict) else None
    if not isinstance(messages, list):
        return data
    ids: dict[str, str] = {}

    def visit(value: Any, key: str | None = None) -> Any:
        if isinstance(value, dict):
            return {k: visit(v, k) for k, v in value.items() if v is not None}
        if isinstance(value, list):
            return [visit(v) for v in value]
        if key in _ID_KEYS and isinstance(value, str):
            return ids.setdefault(value, f"<call:{len(ids)}>")
        return value

    data["input"]["messages"] = visit(messages)
    return data


def _substitute(value: Any, rules: tuple[tuple[re.Pattern[str], str], ...]) -> Any:
    if isinstance(value, str):
        for pattern, replacement in rules:
            value = pattern.sub(replacement, value)
        return value
    if isinstance(value, dict):
        return {k: _substitute(v, rules) for k, v in value.items()}
    if isinstance(value, list):
        return [_substitute(v, rules) for v in value]
    return value
