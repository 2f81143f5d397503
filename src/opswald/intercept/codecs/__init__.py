"""One codec per provider API: HTTP wire data <-> the golden's normalised `llm_call`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from opswald.intercept.codecs.anthropic_messages import AnthropicMessagesCodec
from opswald.intercept.codecs.base import Codec, Decoded, WireResponse, url_params
from opswald.intercept.codecs.openai_chat import OpenAIChatCodec
from opswald.intercept.codecs.openai_responses import OpenAIResponsesCodec

__all__ = [
    "CODECS",
    "AnthropicMessagesCodec",
    "Codec",
    "Decoded",
    "OpenAIChatCodec",
    "OpenAIResponsesCodec",
    "WireResponse",
    "codec_for",
    "made_over_http",
    "request_for",
]

CODECS: tuple[Codec, ...] = (OpenAIChatCodec(), OpenAIResponsesCodec(), AnthropicMessagesCodec())


def codec_for(method: str, path: str) -> Codec | None:
    """The codec whose provider API this request is for, if any."""
    return next((codec for codec in CODECS if codec.handles(method, path)), None)


def request_for(
    codec: Codec, path: str, body: Any, headers: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """The engine request of an HTTP request: the body's, plus the parameters its URL
    carries (an Azure OpenAI deployment, which selects the model there; the query) and
    those its `headers` carry (Anthropic's betas)."""
    request = codec.request(body)
    lowered = {k.lower(): v for k, v in (headers or {}).items()}
    carried = {**url_params(path), **codec.header_params(lowered)}
    if carried:
        section = request["input"]
        section["params"] = {**(section.get("params") or {}), **carried}
    return request


def made_over_http(provider: str | None, api: str | None, *, recorded: bool) -> bool:
    """Whether an HTTP client can make a golden's model call of this provider and API, so
    that a replay server can answer it: a call recorded through a codec's API; in a golden
    written by hand or imported, one that names no API and a provider a codec speaks for,
    or none. A call a `@opswald.llm` function made (its own provider and API, or none in a
    `recorded` golden, where every intercepted call names both) cannot be."""
    if api is not None:
        return any(codec.api == api for codec in CODECS)
    if recorded:
        return False
    return provider is None or any(codec.provider == provider for codec in CODECS)
