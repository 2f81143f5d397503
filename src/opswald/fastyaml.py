"""A line reader for the YAML opswald writes, in front of the safe parser.

Goldens are laid out by one writer (`opswald.blockyaml`, or PyYAML with the same
settings): block mappings and lists indented by two, each scalar on its own line —
plain, quoted on one line, a literal block, `{}`/`[]` or a one-line list of integers —
and never a line folded. Reading that layout line by line is about three times faster
than libyaml's events as PyYAML hands them over, which is most of a cold collection.

`read` gives the data the safe parser would give, or None for anything it does not read
with certainty: tabs, line breaks other than `\\n`, anchors, aliases, tags, flow
collections, multi-line plain or quoted scalars, a key without a value, odd
indentation, a duplicate key, nesting at the depth cap, a second document, a trailing
comment. The caller then parses the text with the safe parser, which reads it or
reports the problem with its line. tests/test_fastyaml.py checks the identity on
generated goldens and on mutated text.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable
from typing import Any

# Characters this reader leaves to the parser: the ones YAML does not allow, tabs, and
# the line breaks other than `\n` (YAML counts `\r`, NEL, LS and PS as breaks; a `\r\n`
# is read as `\n` before this is asked).
_LEAVE = re.compile(
    "[^\n\x20-\x7e\xa0-\u2027\u202a-\ud7ff\ue000-\ufefe\uff00-\ufffd\U00010000-\U0010ffff]"
)
# A line as (indentation, its `- ` list entries, a plain key before `: ` or a final `:`,
# the rest): the key is one the writer writes plain and the parser reads as the same text
# (other keys are left in the rest, and to the parser).
_TOKENS = re.compile(
    r"^( *)((?:- )*)(?:([A-Za-z0-9_$(/.~+=<\\^;)][^:#'\n]*(?<! )):(?: |$))?(.*)", re.MULTILINE
)
# quoted scalars on one line (loops unrolled: an alternation per character is slow)
_SINGLE = re.compile(r"'([^']*(?:''[^']*)*)'")
_DOUBLE = re.compile(r'"([^"\\]*(?:\\.[^"\\]*)*)"')
_ESCAPE = re.compile(r"\\(x[0-9A-Fa-f]{2}|u[0-9A-Fa-f]{4}|U[0-9A-Fa-f]{8}|.)")
_ESCAPES = {
    "0": "\0",
    "a": "\x07",
    "b": "\x08",
    "t": "\t",
    "n": "\n",
    "v": "\x0b",
    "f": "\x0c",
    "r": "\r",
    "e": "\x1b",
    " ": " ",
    '"': '"',
    "/": "/",
    "\\": "\\",
    "N": "\x85",
    "_": "\xa0",
    "L": "\u2028",
    "P": "\u2029",
}
_INT_LIST = re.compile(r"\[(-?(?:0|[1-9][0-9]*)(?:, -?(?:0|[1-9][0-9]*))*)\]")
_LITERAL = re.compile(r"\|([1-9]?)([-+]?)")
# The first characters of a plain scalar this reader takes: none of YAML's indicators
# (`-`, `?` and `:` start plain text only before a non-space; left to the parser).
_INDICATORS = frozenset("-?:,[]{}#&*!|>'\"%@` ")
_INTERN_UP_TO = 32


class _Leave(Exception):
    """Something this reader leaves to the safe parser."""


_APPEND = object()  # a pending slot in a list


def read(
    text: str, max_depth: int, plain: Callable[[str], Any], typed_first: frozenset[str]
) -> dict[str, Any] | None:
    """The document's root mapping, or None when the safe parser must read the text.

    `plain` gives a plain scalar's value (as the safe parser's resolver and constructors
    do) and raises ValueError where the parser would refuse it; `typed_first` holds the
    first characters of the plain scalars it may read as other than a string. Both are
    the same on every call (the values of short plain scalars are remembered)."""
    if "\r" in text:  # a golden checked out with CRLF: YAML reads each as one `\n`
        text = text.replace("\r\n", "\n")
        if "\r" in text:
            return None
    if not text.endswith("\n"):
        return None
    try:
        return _Reader(text, max_depth, plain, typed_first).document()
    except (_Leave, ValueError, KeyError, IndexError, OverflowError):
        return None


# Plain keys seen valid, as one interned string each (keys repeat in every golden), and
# short plain scalars' values (`tool_call`, `openai`, `1`: they recur in every golden; a
# value depends on its text alone, and each is immutable).
_KEYS: dict[str, str] = {}
_KEYS_MAX = 4096
_PLAIN: dict[str, Any] = {}
_PLAIN_MAX = 4096
_MISS = object()


class _Reader:
    def __init__(
        self, text: str, max_depth: int, plain: Callable[[str], Any], typed_first: frozenset[str]
    ) -> None:
        self.lines = text[:-1].split("\n")
        # printable text (what Python calls so) holds none of what the reader leaves
        if not "".join(self.lines).isprintable() and _LEAVE.search(text) is not None:
            raise _Leave
        self.tokens = _TOKENS.findall(text, 0, len(text) - 1)
        if len(self.tokens) != len(self.lines):
            raise _Leave
        self.max_depth = max_depth
        self.plain = plain
        # first characters after which a plain scalar needs a closer look
        self.special = _INDICATORS | typed_first | {"'", '"'}

    def document(self) -> dict[str, Any]:
        tokens = self.tokens
        count = len(tokens)
        root: dict[str, Any] = {}
        cols = [0]  # the open containers' columns, outermost first
        conts: list[Any] = [root]
        # a key or list entry (`key:` / `- - `) whose value starts on the next line or
        # further along this one: (container, key or _APPEND, column)
        pending: tuple[Any, Any, int] | None = None
        intern = sys.intern
        keys = _KEYS
        known = _PLAIN
        special = self.special
        max_depth = self.max_depth
        i = self._start()
        while i < count:
            indent, dashes, name, rest = tokens[i]
            i += 1
            if not dashes and not name:
                if not rest:
                    if indent:
                        raise _Leave  # spaces alone
                    continue
                first = rest[0]
                if first == "#":
                    continue
            if not indent and not dashes:
                line = self.lines[i - 1]
                if line[:3] == "..." or line[:3] == "---":  # a marker, or text the parser
                    if line != "..." or any(later.strip() for later in self.lines[i:]):
                        raise _Leave  # takes for one (`... x: 1`): left to it
                    break
            col = len(indent)
            # -- list entries: `- ` at this column, then their value further along
            if dashes:
                for _ in range(len(dashes) // 2):
                    if pending is not None:
                        if col != pending[2]:
                            raise _Leave
                        if len(conts) >= max_depth:
                            raise _Leave  # the parser refuses it with the line
                        items: list[Any] = []
                        if pending[1] is _APPEND:
                            pending[0].append(items)
                        else:
                            pending[0][pending[1]] = items
                        cols.append(col)
                        conts.append(items)
                    else:
                        while cols[-1] > col:
                            cols.pop()
                            conts.pop()
                        items = conts[-1]
                        if cols[-1] != col or type(items) is not list:
                            raise _Leave
                    col += 2
                    pending = (items, _APPEND, col)
            # -- a key (with its value or a pending one), or an entry's scalar
            if name:
                key = keys.get(name)
                if key is None:
                    key = intern(name)
                    if len(keys) < _KEYS_MAX:
                        keys[name] = key
            elif not rest or rest[0] == " ":
                raise _Leave
            elif rest[0] == "'":
                match = _SINGLE.match(rest)
                if match is None:
                    raise _Leave
                end = match.end()
                if end < len(rest) and rest[end] == ":":
                    key = intern(match.group(1).replace("''", "'"))
                    after = rest[end + 1 :]
                    if after and after[0] != " ":
                        raise _Leave
                    rest = after[1:]
                else:
                    key = None
            else:
                key = None
            if key is None:  # a scalar as a list entry's value
                if pending is None or pending[1] is not _APPEND:
                    raise _Leave  # a scalar where a key belongs (or a continuation line)
                value = known.get(rest, _MISS)
                if value is _MISS:
                    value, i = self._scalar(rest, i, col, len(conts))
                pending[0].append(value)
                pending = None
                continue
            # the key's mapping: a new one (an entry's first key) or the open one
            if pending is not None:
                if col != pending[2]:
                    raise _Leave
                if len(conts) >= max_depth:
                    raise _Leave
                mapping: dict[str, Any] = {}
                if pending[1] is _APPEND:
                    pending[0].append(mapping)
                else:
                    pending[0][pending[1]] = mapping
                pending = None
                cols.append(col)
                conts.append(mapping)
            else:
                while cols[-1] > col:
                    cols.pop()
                    conts.pop()
                mapping = conts[-1]
                if cols[-1] != col or type(mapping) is not dict:
                    raise _Leave
            if key in mapping:
                raise _Leave  # a duplicate: the parser names both lines
            if not rest:
                pending = (mapping, key, col + 2)
                mapping[key] = None  # taken, so a later duplicate is seen
                continue
            value = known.get(rest, _MISS)
            if value is not _MISS:
                mapping[key] = value
            elif (
                rest[0] not in special
                and " #" not in rest
                and ": " not in rest
                and rest[-1] != " "
                and rest[-1] != ":"
            ):  # plain text: a string, as `plain` would find
                mapping[key] = intern(rest) if len(rest) <= _INTERN_UP_TO else rest
            else:
                mapping[key], i = self._scalar(rest, i, col + 2, len(conts))
        if pending is not None:
            raise _Leave  # `key:` with nothing after it
        return root

    def _start(self) -> int:
        """The index of the first line holding data, which must start a mapping at
        column 0 (no directive, marker or list)."""
        for i, line in enumerate(self.lines):
            s = line.lstrip(" ")
            if s and s[0] != "#":
                if s[0] in "-%" or len(s) != len(line) or s[:3] == "...":
                    raise _Leave
                return i
        raise _Leave  # no data at all

    def _scalar(self, text: str, i: int, indent: int, depth: int) -> tuple[Any, int]:
        """The value written as `text` to the end of its line (a literal block's lines
        follow it at `indent`; a list or mapping written there would be `depth` deep),
        and the index of the line after it."""
        first = text[0]
        if first == "'":
            match = _SINGLE.fullmatch(text)
            if match is None:
                raise _Leave
            value = match.group(1).replace("''", "'")
        elif first == '"':
            match = _DOUBLE.fullmatch(text)
            if match is None:
                raise _Leave
            value = match.group(1)
            if "\\" in value:
                value = _ESCAPE.sub(_unescape, value)
        elif first == "|":
            return self._literal(text, i, indent)
        elif first == "[" or first == "{":
            if depth >= self.max_depth:
                raise _Leave  # the parser refuses it with the line
            if text == "[]":
                return [], i
            if text == "{}":
                return {}, i
            match = _INT_LIST.fullmatch(text)
            if match is None:
                raise _Leave
            return [int(n) for n in match.group(1).split(", ")], i
        elif (
            (first in _INDICATORS and (first not in "-?:" or text[1:2] in ("", " ")))
            or " #" in text
            or ": " in text
            or text[-1] in " :"
        ):
            raise _Leave
        else:
            value = self.plain(text)
            if len(text) <= _INTERN_UP_TO and len(_PLAIN) < _PLAIN_MAX:
                _PLAIN[text] = value
            return value, i
        return (sys.intern(value) if len(value) <= _INTERN_UP_TO else value), i

    def _literal(self, header: str, i: int, indent: int) -> tuple[str, int]:
        """A literal block (`|`, with PyYAML's hints) whose lines are at `indent`."""
        match = _LITERAL.fullmatch(header)
        if match is None:
            raise _Leave
        hinted, chomp = match.groups()
        if hinted and hinted != "2":
            raise _Leave
        lines = self.lines
        count = len(lines)
        pad = " " * indent
        body: list[str] = []
        while i < count:
            line = lines[i]
            if not line:
                body.append("")
            elif line.startswith(pad):
                body.append(line[indent:])
            elif line.strip():
                break
            else:
                raise _Leave  # a line of spaces only
            i += 1
        if not any(body):  # empty lines only: what chomping keeps of their breaks
            if i < count and lines[i].lstrip(" ")[:1] == "#":
                raise _Leave  # a comment just under a block: left to the parser
            return ("\n" * len(body) if chomp == "+" else ""), i
        if not hinted and (not body[0] or body[0][0] == " "):
            raise _Leave  # the parser would find the indentation elsewhere
        if i < count and lines[i].lstrip(" ")[:1] == "#":
            raise _Leave  # a comment just under a block: left to the parser
        if chomp == "+":
            return "\n".join(body) + "\n", i
        while not body[-1]:
            body.pop()
        text = "\n".join(body)
        return (text if chomp == "-" else text + "\n"), i


def _unescape(match: re.Match[str]) -> str:
    code = match.group(1)
    if len(code) == 1:
        return _ESCAPES[code]  # KeyError: not an escape YAML knows; the parser says so
    return chr(int(code[1:], 16))
