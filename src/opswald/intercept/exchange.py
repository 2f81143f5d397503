"""One LLM call over HTTP, whoever carries it (the SDK hook or the replay server):
serve it from the golden, or record the live answer."""

from __future__ import annotations

import json
from typing import Any

RETRYABLE = frozenset({408, 409, 429}) | frozenset(range(500, 600))


def serve(ctx: Any, codec: Any, ticket: Any, llm_request: dict[str, Any], stream: bool) -> Any:
    """The recorded answer as wire bytes (a recorded HTTP error comes back as that error)."""
    from opswald.intercept.codecs.base import WireResponse

    step = ticket.served
    ctx.llm_served(ticket, llm_request)
    status = (step.attributes or {}).get("http_status")
    if step.error is not None and isinstance(status, int):
        body = json.dumps(step.raw if step.raw is not None else {"error": step.error.message})
        return WireResponse(
            status=status, headers={"content-type": "application/json"}, body=body.encode()
        )
    return codec.encode(step, stream=stream)


def record(
    ctx: Any,
    codec: Any,
    ticket: Any,
    llm_request: dict[str, Any],
    stream: bool,
    status: int,
    body: bytes,
) -> None:
    """Turn a live answer into a step; attempts the client will retry leave no step."""
    if status in RETRYABLE:
        ctx.cancel(ticket)
        return
    if status >= 400:
        _http_error(ctx, ticket, llm_request, status, body)
        return
    decoded = codec.decode(body, stream=stream)
    cost, source = decoded.cost, "provider" if decoded.cost is not None else None
    if cost is None and decoded.usage is not None:
        cost, source = _priced(ctx, decoded.model or llm_request.get("model"), decoded.usage)
    attributes = (
        {"response_model": decoded.model}
        if decoded.model and decoded.model != llm_request.get("model")
        else None
    )
    ctx.llm_step(
        ticket,
        llm_request,
        output=decoded.output,
        usage=decoded.usage,
        cost=cost,
        cost_source=source,
        raw=decoded.raw,
        error=None,
        attributes=attributes,
    )


def _http_error(
    ctx: Any, ticket: Any, llm_request: dict[str, Any], status: int, body: bytes
) -> None:
    from opswald.session import ErrorInfo

    text = body.decode("utf-8", "replace")
    try:
        raw: Any = json.loads(body)
    except ValueError:
        raw = {"error": text[:2000]}
    error = ErrorInfo(type="HTTPStatusError", message=ctx.redactor(f"HTTP {status}: {text[:500]}"))
    ctx.llm_step(
        ticket,
        llm_request,
        output=None,
        usage=None,
        cost=None,
        cost_source=None,
        raw=raw,
        error=None,
        error_info=error,
        attributes={"http_status": status},
    )


def _priced(ctx: Any, model: str | None, usage: Any) -> tuple[float | None, str | None]:
    pricer = getattr(ctx, "prices", None)
    if pricer is None:
        return None, None
    cost, source = pricer.price(model, usage)
    return cost, source
