"""One codec per provider API: HTTP wire data <-> the golden's normalised `llm_call`."""

from __future__ import annotations

from opswald.intercept.codecs.anthropic_messages import AnthropicMessagesCodec
from opswald.intercept.codecs.base import Codec, Decoded, WireResponse
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
]

CODECS: tuple[Codec, ...] = (OpenAIChatCodec(), OpenAIResponsesCodec(), AnthropicMessagesCodec())


def codec_for(method: str, path: str) -> Codec | None:
    """The codec whose provider API this request is for, if any."""
    return next((codec for codec in CODECS if codec.handles(method, path)), None)
