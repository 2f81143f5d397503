"""Characters that hide or reorder text, written as escapes in the files a reviewer reads.

Goldens are reviewed in `git diff`. A bidirectional control (U+202E RIGHT-TO-LEFT
OVERRIDE, the embeddings, isolates and implicit marks) shows the rest of its line in an
order other than the one it holds, and an invisible character (zero-width space, word
joiner, soft hyphen, the tag characters that spell whole sentences no one sees) holds
text a reader cannot see: CVE-2021-42574, "Trojan Source". PyYAML and
`json.dumps(ensure_ascii=False)` take them for printable and write them raw; goldens,
saved actual sessions, session snapshots and JSON reports write them as escapes instead
(`"\\u202E"` in YAML, `"\\u202e"` in JSON), and load back the same text.

Which characters: Unicode's Default_Ignorable_Code_Point set, the characters a renderer
shows as nothing (it holds every bidi control), listed here as of Unicode 15.1 so that a
session is written the same way under every Python. Three kinds of them are part of
ordinary text and stay raw where they do that job, so that emoji, Persian and Hindi stay
readable:

- ZERO WIDTH JOINER and NON-JOINER between two visible characters from U+0300 up:
  emoji ZWJ sequences (👩‍💻, 👨‍👩‍👧, 🏳️‍🌈), Persian and Urdu words (می‌خواهم), Indic
  conjuncts. Next to ASCII, Latin letters, white space or either end of the string they
  join nothing a reader sees, and are escaped (`ad\\u200Dmin`).
- a variation selector right after the character whose form it selects: U+FE00–U+FE0F
  after a visible non-ASCII character or a keycap base (`#`, `*`, a digit: ❤️, 1️⃣),
  the Mongolian ones after a Mongolian letter, U+E0100–U+E01EF after a CJK ideograph. One
  after a Latin letter, after white space or after another selector is escaped: runs of
  selectors are how bytes are smuggled inside an emoji.
- tag characters that spell an emoji subdivision flag: 🏴, 2 to 6 tag letters or digits,
  CANCEL TAG (the flags of England, Scotland, Wales). Every other tag is escaped.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

import yaml

__all__ = [
    "IGNORABLE",
    "HiddenEscapingDumper",
    "has_hidden",
    "hidden_positions",
    "json_with_hidden_escaped",
]

# Default_Ignorable_Code_Point (Unicode 15.1, DerivedCoreProperties.txt), inclusive ranges
IGNORABLE: tuple[tuple[int, int], ...] = (
    (0x00AD, 0x00AD),  # SOFT HYPHEN
    (0x034F, 0x034F),  # COMBINING GRAPHEME JOINER
    (0x061C, 0x061C),  # ARABIC LETTER MARK
    (0x115F, 0x1160),  # HANGUL CHOSEONG/JUNGSEONG FILLER
    (0x17B4, 0x17B5),  # KHMER VOWEL INHERENT AQ/AA
    (0x180B, 0x180F),  # MONGOLIAN FREE VARIATION SELECTORS, VOWEL SEPARATOR
    (0x200B, 0x200F),  # ZERO WIDTH SPACE, ZWNJ, ZWJ, LRM, RLM
    (0x202A, 0x202E),  # LRE, RLE, PDF, LRO, RLO
    (0x2060, 0x206F),  # WORD JOINER, invisible operators, LRI, RLI, FSI, PDI, deprecated
    (0x3164, 0x3164),  # HANGUL FILLER
    (0xFE00, 0xFE0F),  # VARIATION SELECTOR-1..16
    (0xFEFF, 0xFEFF),  # ZERO WIDTH NO-BREAK SPACE (byte-order mark)
    (0xFFA0, 0xFFA0),  # HALFWIDTH HANGUL FILLER
    (0xFFF0, 0xFFF8),  # unassigned
    (0x1BCA0, 0x1BCA3),  # SHORTHAND FORMAT controls
    (0x1D173, 0x1D17A),  # MUSICAL SYMBOL BEGIN/END BEAM, TIE, SLUR, PHRASE
    (0xE0000, 0xE0FFF),  # tags, VARIATION SELECTOR-17..256, unassigned
)
_ASTRAL = re.compile("[\U00010000-\U0010ffff]")
_CANDIDATE = re.compile(
    "[" + "".join(f"{chr(a)}-{chr(b)}" if a < b else chr(a) for a, b in IGNORABLE) + "]"
)

_ZWNJ, _ZWJ = "\u200c", "\u200d"
_KEYCAP_BASES = frozenset("#*0123456789")
# an emoji subdivision flag: WAVING BLACK FLAG, tag letters or digits, CANCEL TAG
_FLAG = re.compile("\U0001f3f4[\U000e0030-\U000e0039\U000e0061-\U000e007a]{2,6}\U000e007f")


def _visible(ch: str, lowest: int) -> bool:
    """A character from `lowest` up that shows as something: no white space, no
    ignorable character, no surrogate or noncharacter."""
    return (
        ord(ch) >= lowest
        and not ch.isspace()
        and not _CANDIDATE.match(ch)
        and not ("\ud800" <= ch <= "\udfff" or ch in "\ufffe\uffff")
    )


def _selector_base(ch: str, selector: int) -> bool:
    """Whether `selector` right after `ch` selects a form of it."""
    if 0xFE00 <= selector <= 0xFE0F:
        return ch in _KEYCAP_BASES or _visible(ch, 0xA0)
    if 0xE0100 <= selector <= 0xE01EF:
        c = ord(ch)
        return (
            0x3400 <= c <= 0x4DBF
            or 0x4E00 <= c <= 0x9FFF
            or 0xF900 <= c <= 0xFAFF
            or (0x20000 <= c <= 0x3FFFF)
        )
    if 0x180B <= selector <= 0x180D or selector == 0x180F:
        return 0x1820 <= ord(ch) <= 0x18AA
    return False


def _is_selector(ch: str) -> bool:
    c = ord(ch)
    return 0xFE00 <= c <= 0xFE0F or 0xE0100 <= c <= 0xE01EF or c in (0x180B, 0x180C, 0x180D, 0x180F)


def hidden_positions(text: str) -> list[int]:
    """The indices of the characters of `text` that are written escaped (see the module's
    docstring), in order; empty for almost every string."""
    first = _CANDIDATE.search(text)
    if first is None:
        return []
    flags: set[int] = set()
    if "\U0001f3f4" in text:
        for match in _FLAG.finditer(text):
            flags.update(range(match.start() + 1, match.end()))
    hidden: list[int] = []
    kept_selector = -1  # index of the last selector kept raw
    for match in _CANDIDATE.finditer(text, first.start()):
        i = match.start()
        ch = text[i]
        before = text[i - 1] if i else ""
        if ch in (_ZWNJ, _ZWJ):
            after = text[i + 1] if i + 1 < len(text) else ""
            left = bool(before) and (_visible(before, 0x300) or kept_selector == i - 1)
            keep = left and bool(after) and _visible(after, 0x300)
        elif _is_selector(ch):
            keep = bool(before) and _selector_base(before, ord(ch))
            if keep:
                kept_selector = i
        else:
            keep = i in flags
        if not keep:
            hidden.append(i)
    return hidden


def has_hidden(text: str) -> bool:
    """Whether `text` holds a character that is written escaped."""
    return bool(hidden_positions(text))


# ------------------------------------------------------------------------------- YAML


def _yaml_raw(ch: str) -> bool:
    """Whether a YAML double-quoted scalar may hold `ch` as it is: printable, not a quote,
    backslash or line break."""
    if " " <= ch <= "~":
        return ch not in '"\\'
    if ch < "\xa0" or "\ud800" <= ch <= "\udfff":
        return False
    return ch not in "\u2028\u2029\ufeff\ufffe\uffff"


def _yaml_escape(ch: str, named: Mapping[str, str]) -> str:
    if ch in named:
        return "\\" + named[ch]
    c = ord(ch)
    if c <= 0xFF:
        return f"\\x{c:02X}"
    if c <= 0xFFFF:
        return f"\\u{c:04X}"
    return f"\\U{c:08X}"


class HiddenEscapingDumper(yaml.SafeDumper):
    """A safe dumper whose double-quoted scalars write hidden characters as escapes.

    A string with none is written as PyYAML writes it, byte for byte. One with some (the
    representer must ask for the double-quoted style: `has_hidden`) is written on one line
    with those and the characters YAML cannot hold raw escaped, and everything else as it
    is, emoji included (which PyYAML escapes in double quotes). It is never folded: the
    dumpers that use this write with an unbounded width."""

    def write_double_quoted(self, text: str, split: bool = True) -> None:
        hidden = hidden_positions(text)
        if not hidden and not (_CANDIDATE.search(text) and _ASTRAL.search(text)):
            super().write_double_quoted(text, split)
            return
        # (with none hidden, a joiner or selector kept raw beside an emoji: PyYAML would
        # escape the emoji, leaving the joiner raw beside the escape's last digit)
        named: Mapping[str, str] = self.ESCAPE_REPLACEMENTS
        escaped = set(hidden)
        body = "".join(
            _yaml_escape(ch, named) if i in escaped or not _yaml_raw(ch) else ch
            for i, ch in enumerate(text)
        )
        self.write_indicator('"', True)
        self.column += len(body)
        self.stream.write(body.encode(self.encoding) if self.encoding else body)
        self.write_indicator('"', False)


# ------------------------------------------------------------------------------- JSON

_JSON_STRING = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)


def _json_string(text: str) -> str:
    """`text` as a JSON string, hidden characters as `\\u` escapes (surrogate pairs above
    U+FFFF), the rest as `json.dumps(ensure_ascii=False)` writes it."""
    parts: list[str] = []
    start = 0
    for i in hidden_positions(text):
        parts.append(json.dumps(text[start:i], ensure_ascii=False)[1:-1])
        parts.append(json.dumps(text[i])[1:-1])  # ASCII: `\u202e`, `\udb40\udc41`
        start = i + 1
    parts.append(json.dumps(text[start:], ensure_ascii=False)[1:-1])
    return '"' + "".join(parts) + '"'


def json_with_hidden_escaped(text: str) -> str:
    """JSON text from `json.dumps(ensure_ascii=False)` with the hidden characters of its
    strings (keys and values) escaped; the same text when it has none."""
    if _CANDIDATE.search(text) is None:
        return text

    def escape(match: re.Match[str]) -> str:
        token = match.group()
        if _CANDIDATE.search(token) is None:
            return token
        value: Any = json.loads(token)
        return _json_string(value)

    return _JSON_STRING.sub(escape, text)
