"""Paths into session data, written in the golden's terms: `input.messages[1].content`."""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from fnmatch import fnmatchcase
from typing import Any

Path = tuple[str | int, ...]

_TOKEN = re.compile(r"\[(\*\*|\*|-?\d+)\]|\.?([^.\[\]]+)")


def render(path: Sequence[str | int]) -> str:
    """`("input", "messages", 1, "content")` -> `input.messages[1].content`."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def parse(pattern: str) -> tuple[str | int, ...]:
    """Parse a path or glob pattern; `*` matches one segment, `**` any number."""
    parts: list[str | int] = []
    pos = 0
    pattern = pattern.strip()
    while pos < len(pattern):
        m = _TOKEN.match(pattern, pos)
        if m is None or m.end() == pos:
            raise ValueError(f"bad path {pattern!r} at position {pos}")
        index, key = m.group(1), m.group(2)
        if index is not None:
            parts.append(index if index in ("*", "**") else int(index))
        else:
            parts.append(key)
        pos = m.end()
    return tuple(parts)


def as_written(pattern: str, base: str) -> list[Path]:
    """An ignore path relative to a part of a step (the output, a tool call's arguments),
    written bare (`refund.amount`) or as a failure shows it, from the step (`output.refund
    .amount`, `input.amount` under `base`): the parsed pattern, and without `base` when it
    starts so (both are dropped: a key that is itself named `base` is still reached)."""
    parsed = parse(pattern)
    if len(parsed) > 1 and parsed[0] == base:
        return [parsed, parsed[1:]]
    return [parsed]


def matches(path: Sequence[str | int], pattern: Sequence[str | int]) -> bool:
    """True when `path` matches the parsed glob `pattern` (whole path, or a prefix of it)."""
    return _match(tuple(path), tuple(pattern), prefix_ok=True)


def _match(path: Path, pattern: Path, *, prefix_ok: bool) -> bool:
    if not pattern:
        return prefix_ok or not path
    head, rest = pattern[0], pattern[1:]
    if head == "**":
        return any(_match(path[i:], rest, prefix_ok=prefix_ok) for i in range(len(path) + 1))
    if not path:
        return False
    seg = path[0]
    if head == "*" or head == seg:
        return _match(path[1:], rest, prefix_ok=prefix_ok)
    if isinstance(head, str) and isinstance(seg, str) and fnmatchcase(seg, head):
        return _match(path[1:], rest, prefix_ok=prefix_ok)
    return False


def any_matches(path: Sequence[str | int], patterns: Sequence[Sequence[str | int]]) -> bool:
    return any(matches(path, p) for p in patterns)


def walk(data: Any, base: Path = ()) -> Iterator[tuple[Path, Any]]:
    """Every (path, value) in nested dicts/lists, leaves and containers alike, parents first."""
    stack: list[tuple[Path, Any]] = [(base, data)]
    while stack:
        path, value = stack.pop()
        yield path, value
        if isinstance(value, dict):
            stack.extend(((*path, str(k)), v) for k, v in reversed(list(value.items())))
        elif isinstance(value, list):
            stack.extend(((*path, i), v) for i, v in reversed(list(enumerate(value))))


def drop(data: Any, patterns: Sequence[Sequence[str | int]], base: Path = ()) -> Any:
    """A copy of `data` without the parts whose path matches one of `patterns`."""
    if not patterns:
        return data
    if isinstance(data, dict):
        return {
            k: drop(v, patterns, (*base, str(k)))
            for k, v in data.items()
            if not any(_match((*base, str(k)), tuple(p), prefix_ok=False) for p in patterns)
        }
    if isinstance(data, list):
        return [
            drop(v, patterns, (*base, i))
            for i, v in enumerate(data)
            if not any(_match((*base, i), tuple(p), prefix_ok=False) for p in patterns)
        ]
    return data
