"""Server-sent events: read a whole recorded stream, write one for replay."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from opswald.intercept.codecs.base import SSE_HEADERS, WireResponse

_LINES = re.compile(r"\r\n|\r|\n")  # not str.splitlines: JSON text may hold U+2028


@dataclass(frozen=True, kw_only=True)
class Event:
    """One dispatched event: its `event:` name (None when absent) and its `data:` text."""

    name: str | None
    data: str

    def json(self) -> Any:
        """The data as JSON, or None for `[DONE]`, empty or non-JSON data."""
        if not self.data or self.data.startswith("[DONE]"):
            return None
        try:
            return json.loads(self.data)
        except ValueError:
            return None


def events(body: bytes) -> Iterator[Event]:
    """Parse an SSE body per the WHATWG rules (comments, multi-line data, CR/LF/CRLF)."""
    name: str | None = None
    data: list[str] = []
    for line in _LINES.split(body.decode("utf-8", errors="replace")):
        if not line:
            if data or name is not None:
                yield Event(name=name, data="\n".join(data))
            name, data = None, []
            continue
        if line.startswith(":"):
            continue
        field, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if field == "event":
            name = value
        elif field == "data":
            data.append(value)
    if data or name is not None:
        yield Event(name=name, data="\n".join(data))


def json_events(body: bytes) -> Iterator[tuple[str | None, dict[str, Any]]]:
    """(event name, JSON object) for every event whose data is a JSON object."""
    for event in events(body):
        data = event.json()
        if isinstance(data, dict):
            yield event.name, data


def frame(data: Any, name: str | None = None) -> str:
    """One SSE frame; `data` is JSON-encoded unless it is already a string (a text of
    several lines is sent as several `data:` lines, which the reader joins again)."""
    text = data if isinstance(data, str) else json.dumps(data, ensure_ascii=False)
    head = f"event: {name}\n" if name else ""
    lines = "".join(f"data: {line}\n" for line in _LINES.split(text))
    return f"{head}{lines}\n"


def stream_response(frames: list[str]) -> WireResponse:
    return WireResponse(status=200, headers=dict(SSE_HEADERS), body="".join(frames).encode())
