"""Text for a terminal: content that could steer it is shown escaped, never obeyed.

Golden names, model replies and tool results come from files others write and from
models; printed raw, a control sequence in them can clear the screen, set the window
title, open a hyperlink or hide what follows, and a bidirectional override can show a
line in another order than it holds. pytest escapes such characters in the test ids it
builds; opswald's ids and command-line output do too.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TextIO

# C0 controls but tab and newline, DEL, C1 controls, and the Unicode format characters that
# reorder text (bidi embeddings, overrides and isolates, and the implicit marks)
_STEERING = (
    [c for c in range(0x20) if c not in (0x09, 0x0A)]
    + [0x7F]
    + list(range(0x80, 0xA0))
    + [0x061C, 0x200E, 0x200F]
    + list(range(0x202A, 0x202F))
    + list(range(0x2066, 0x206A))
)
_TABLE = {c: (f"\\x{c:02x}" if c < 0x80 else f"\\u{c:04x}") for c in _STEERING}


def escaped(text: str) -> str:
    """`text` with every character that steers a terminal written as its escape
    (`\\x1b`, `\\u202e`), and the invisible ones a golden writes escaped too (a zero-width
    space, tag characters: `opswald.hidden`); tabs and newlines kept."""
    text = text.translate(_TABLE)
    if text.isascii():
        return text
    from opswald.hidden import hidden_positions

    positions = hidden_positions(text)
    if not positions:
        return text
    chars = list(text)
    for i in positions:
        code = ord(chars[i])
        chars[i] = f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"
    return "".join(chars)


class EscapingStream:
    """A text stream that escapes what it is given (`escaped`) before writing it; `raw` is
    the stream itself, for the command's own carriage returns (progress lines)."""

    def __init__(self, raw: TextIO) -> None:
        self.raw = raw

    def write(self, text: str) -> int:
        return self.raw.write(escaped(text))

    def __getattr__(self, name: str) -> Any:
        return getattr(self.raw, name)


@contextmanager
def raw_streams() -> Iterator[None]:
    """sys.stdout and sys.stderr unwrapped (`EscapingStream.raw`) for a while: a command
    that runs the user's agent in process leaves the agent's own output as it writes it,
    and escapes its own lines itself."""
    out, err = sys.stdout, sys.stderr
    sys.stdout = getattr(out, "raw", out)
    sys.stderr = getattr(err, "raw", err)
    try:
        yield
    finally:
        sys.stdout, sys.stderr = out, err


def display_width(text: str) -> int:
    """The columns `text` takes on a terminal: two for a wide or fullwidth character (CJK,
    most emoji: `unicodedata.east_asian_width` W or F), none for a combining mark, one for
    the rest."""
    if text.isascii():
        return len(text)
    import unicodedata

    return sum(
        0 if unicodedata.combining(c) else 2 if unicodedata.east_asian_width(c) in ("W", "F") else 1
        for c in text
    )


def clip(text: str, width: int) -> str:
    """`text` cut to `width` columns (`display_width`), ending in `…` where it was cut."""
    if display_width(text) <= width:
        return text
    room = max(0, width - 1)
    used = 0
    for i, c in enumerate(text):
        used += display_width(c)
        if used > room:
            return text[:i] + "…"
    return text


def wrapped(text: str, width: int) -> list[str]:
    """`text`, one line of a message, broken at spaces into lines of at most `width`
    columns, the later lines indented two more than the first; a word longer than a line
    goes on over as many lines as it needs (nothing is cut)."""
    if display_width(text) <= width:
        return [text]
    indent = " " * (len(text) - len(text.lstrip(" ")))
    later = indent + "  "
    lines: list[str] = []
    line = ""
    for word in text.strip(" ").split(" "):
        candidate = f"{line} {word}" if line else f"{later if lines else indent}{word}"
        if display_width(candidate) <= width:
            line = candidate
            continue
        if line:
            lines.append(line)
        lead, rest = (later if lines else indent), word
        while display_width(lead + rest) > width:  # a word wider than a line: in pieces
            piece = _fitting(rest, width - display_width(lead))
            lines.append(lead + piece)
            lead, rest = later, rest[len(piece) :]
        line = lead + rest
    lines.append(line)
    return lines


def _fitting(text: str, columns: int) -> str:
    """The longest start of `text` that takes at most `columns` columns (one character at
    least, so that a narrow line still moves on)."""
    used = 0
    for i, c in enumerate(text):
        used += display_width(c)
        if used > columns:
            return text[: max(i, 1)]
    return text


def counted(n: int, noun: str) -> str:
    """`1 step`, `2 steps`, `1,000 keys`."""
    return f"{n:,} {noun}{'' if n == 1 else 's'}"
