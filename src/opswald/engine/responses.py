"""Generic LLM responses (for `@opswald.llm`): data -> normalised output, and back."""

from __future__ import annotations

from typing import Any

from opswald.jsonable import plain_copy
from opswald.pricing import COST_IS, CostError, cost_problem
from opswald.session import LLMCallStep, LLMOutput, Usage

_USAGE_KEYS = {
    "input_tokens",
    "output_tokens",
    "total_tokens",
    "prompt_tokens",
    "completion_tokens",
    "cache_read_tokens",
    "cache_creation_tokens",
    "cache_creation_1h_tokens",
    "reasoning_tokens",
}


def extract(data: Any) -> tuple[LLMOutput, Usage | None, float | None]:
    """Read content, tool calls, finish reason, usage and cost from a response's data; a
    `cost` that is no number of dollars (`True`, `"0.01"`, -1, NaN) raises CostError."""
    if not isinstance(data, dict):
        return LLMOutput(content=data), None, None
    body = data
    choices = data.get("choices")
    if isinstance(choices, list) and choices and isinstance(choices[0], dict):  # chat-style
        message = choices[0].get("message") or {}
        body = {
            "content": message.get("content"),
            "tool_calls": message.get("tool_calls"),
            "finish_reason": choices[0].get("finish_reason"),
        }
    output = LLMOutput(
        content=body.get("content"),
        tool_calls=body.get("tool_calls") or None,
        finish_reason=body.get("finish_reason") or body.get("stop_reason"),
    )
    usage = _usage(data.get("usage"))
    cost = data.get("cost")
    problem = None if cost is None else cost_problem(cost)
    if problem is not None:
        raise CostError(f"returned `cost: {cost!r}` in its response ({problem}): {COST_IS}")
    return output, usage, None if cost is None else float(cost)


def _usage(value: Any) -> Usage | None:
    if not isinstance(value, dict):
        return None
    known = {k: v for k, v in value.items() if k in _USAGE_KEYS and isinstance(v, int)}
    return Usage.model_validate(known) if known else None


def generic(step: LLMCallStep) -> dict[str, Any]:
    """The response dict rebuilt from the normalised step."""
    return _generic(step.output or LLMOutput(), step.usage, step.cost)


def _generic(out: LLMOutput, usage: Usage | None, cost: float | None) -> dict[str, Any]:
    data: dict[str, Any] = {
        "content": out.content,
        "tool_calls": out.tool_calls,
        "finish_reason": out.finish_reason,
    }
    if usage is not None:
        data["usage"] = usage.model_dump(exclude_none=True)
    if cost is not None:
        data["cost"] = cost
    return data


def _agrees(raw: Any, out: LLMOutput) -> bool:
    """`extract(raw)[0] == out`, without building the models (this runs on every served
    call)."""
    if not isinstance(raw, dict):
        return False
    body = raw
    choices = raw.get("choices")
    if isinstance(choices, list) and choices and isinstance(choices[0], dict):
        body = choices[0].get("message") or {}
        finish = choices[0].get("finish_reason") or None
    else:
        finish = body.get("finish_reason") or body.get("stop_reason")
    return bool(
        body.get("content") == out.content
        and (body.get("tool_calls") or None) == out.tool_calls
        and finish == out.finish_reason
    )


def patched(raw: dict[str, Any], out: LLMOutput) -> dict[str, Any]:
    """The stored response in its own shape (chat-style `choices`, or flat) with the
    normalised content, tool calls and finish reason written into it: an edited golden or
    a forked answer reaches an agent that reads `choices[0].message` as it expects."""
    data: dict[str, Any] = plain_copy(raw)
    choices = data.get("choices")
    if isinstance(choices, list) and choices and isinstance(choices[0], dict):
        choice = choices[0]
        if not isinstance(choice.get("message"), dict):
            choice["message"] = {"role": "assistant"}
        body, finish_key = choice["message"], "finish_reason"
        choice[finish_key] = out.finish_reason
    else:
        body = data
        finish_key = (
            "stop_reason"
            if "stop_reason" in data and "finish_reason" not in data
            else ("finish_reason")
        )
        body[finish_key] = out.finish_reason
    body["content"] = out.content
    if out.tool_calls:
        body["tool_calls"] = out.tool_calls
    elif "tool_calls" in body:  # none now: keep the recorded way of saying so ([] or None)
        body["tool_calls"] = [] if isinstance(body["tool_calls"], list) else None
    return data


def serve(step: LLMCallStep) -> Any:
    """What the agent gets back: the stored raw response while it agrees with the
    normalised fields (which are the truth), else the stored response with those fields
    written in, else a response rebuilt from them."""
    out = step.output or LLMOutput()
    if step.raw is not None and _agrees(step.raw, out):
        return step.raw
    if isinstance(step.raw, dict):
        rewritten = patched(step.raw, out)
        if _agrees(rewritten, out):
            return rewritten
    if step.raw is None and out.tool_calls is None and step.attributes is not None:
        if step.attributes.get("opswald.response") == "text":
            return out.content
    return generic(step)


def raw_for(data: Any, output: LLMOutput, usage: Usage | None, cost: float | None) -> Any:
    """Keep the raw response only when the generic rebuild would not reproduce it."""
    if not isinstance(data, dict):
        return None
    return None if data == _generic(output, usage, cost) else data
