"""A faster writer of golden YAML: the text PyYAML's emitter writes, byte for byte, for the
plain data goldens hold.

PyYAML's emitter is pure Python and walks every character of every scalar through a state
machine: a golden with a 50,000-row tool result took 15 seconds to write, one with a 5 MB
string 4.5. libyaml's C emitter cannot stand in for it: it writes a list under a key at
the key's indentation, where goldens indent it (and the characters that hide text are
escaped by a Python override). This writer lays out the block structure itself and
decides each scalar's style with PyYAML's own rules, asking PyYAML's analysis and
resolver wherever a string is not plainly safe. It returns None for what it does not
write (a flow-style list, a string written in single quotes over several lines, a key
that is empty or long): the caller then uses PyYAML. tests/test_blockyaml.py checks the
identity over generated data.
"""

from __future__ import annotations

import io
import re
import typing
from collections.abc import Callable
from typing import Any

import yaml

_STR = "tag:yaml.org,2002:str"
_FLOAT = "tag:yaml.org,2002:float"
# A string PyYAML writes plain in block context (when its resolver takes it for a
# string): printable ASCII, no leading indicator, no `:` at all, no ` #`, no space at
# either end. Others are analysed as PyYAML analyses them.
_EASY = re.compile(r"[A-Za-z0-9_(/](?:[ -9;-~]*[!-9;-~])?")
# The characters PyYAML's analysis counts as special (written only in double quotes) with
# allow_unicode: all but printable ones, and the byte-order mark.
_SPECIAL = re.compile("[^\n\x20-\x7e\x85\xa0-\ud7ff\ue000-\ufffd\U00010000-\U0010fffe]|\ufeff")
_SHORT_KEY = 100  # PyYAML writes a key of fewer than 128 characters (with `!!str`) simply


class _Unsupported(Exception):
    """A part this writer leaves to PyYAML."""


def block_yaml(
    data: dict[str, Any],
    dumper: type[yaml.SafeDumper],
    represent: Callable[[Any, str], yaml.ScalarNode],
    number: re.Pattern[str],
    one_line: type[list[Any]],
) -> str | None:
    """What `yaml.dump(data, Dumper=dumper, sort_keys=False, allow_unicode=True,
    default_flow_style=False, width=<unbounded>)` writes, for a dumper that indents lists
    under their key, writes strings with `represent` (which wishes no style for printable
    ASCII on one line unless `number` matches it), and writes `one_line` lists in flow
    style; None when `data` holds something this writer leaves to PyYAML."""
    if type(data) is not dict or not data:
        return None
    writer = _Writer(dumper, represent, number, one_line)
    try:
        writer.mapping(data, 0, inline=False)
    except _Unsupported:
        return None
    if writer.open_ended:
        writer.out.append("...\n")
    return "".join(writer.out)


class _Writer:
    def __init__(
        self,
        dumper: type[yaml.SafeDumper],
        represent: Callable[[Any, str], yaml.ScalarNode],
        number: re.Pattern[str],
        one_line: type[list[Any]],
    ) -> None:
        self.dumper_class = dumper
        self.represent = represent
        self.one_line = one_line
        self.emitter = dumper(io.StringIO(), allow_unicode=True, width=1 << 30)
        self.number = number
        self.out: list[str] = []
        self.open_ended = False  # the text ends in a `|+` block: PyYAML then adds `...`
        self.resolve = typing.cast(Callable[[type, str, Any], str], self.emitter.resolve)
        first = self.emitter.yaml_implicit_resolvers
        self.resolved_first = frozenset(key for key, found in first.items() if found and key)

    # -- structure --------------------------------------------------------------------
    def mapping(self, data: dict[str, Any], indent: int, *, inline: bool) -> None:
        """A non-empty mapping with its keys at `indent`; `inline`: its first key goes on
        the current line (after a list's `- `)."""
        pad = " " * indent
        out = self.out
        first = True
        for key, value in data.items():
            if type(key) is not str:
                raise _Unsupported
            out.append(self.key(key) if first and inline else pad + self.key(key))
            first = False
            self.value(value, indent, ":")

    def sequence(self, data: list[Any], indent: int, *, inline: bool) -> None:
        pad = " " * indent
        out = self.out
        first = True
        for item in data:
            out.append("-" if first and inline else pad + "-")
            first = False
            self.value(item, indent, "-")

    def value(self, value: Any, indent: int, after: str) -> None:
        """A value after a key's `:` or a list's `-` at `indent`."""
        kind = type(value)
        out = self.out
        self.open_ended = False
        if kind is dict:
            if not value:
                out.append(" {}\n")
            elif after == ":":
                out.append("\n")
                self.mapping(value, indent + 2, inline=False)
            else:
                out.append(" ")
                self.mapping(value, indent + 2, inline=True)
        elif kind is list:
            if not value:
                out.append(" []\n")
            elif after == ":":
                out.append("\n")
                self.sequence(value, indent + 2, inline=False)
            else:
                out.append(" ")
                self.sequence(value, indent + 2, inline=True)
        elif kind is str:
            out.append(" ")
            self.string(value, indent + 2)
        elif kind is self.one_line and all(type(n) is int for n in value):
            out.append(" [" + ", ".join(map(str, value)) + "]\n")
        else:
            out.append(" " + self.other(value) + "\n")

    # -- scalars ----------------------------------------------------------------------
    def other(self, value: Any) -> str:
        kind = type(value)
        if value is None:
            return "null"
        if kind is bool:
            return "true" if value else "false"
        if kind is int:
            return str(value)
        if kind is float:
            node = self.emitter.represent_float(value)
            if self.resolve(yaml.ScalarNode, node.value, (True, False)) != _FLOAT:
                raise _Unsupported
            return str(node.value)
        raise _Unsupported

    def key(self, text: str) -> str:
        if not text or len(text) >= _SHORT_KEY or "\n" in text:
            raise _Unsupported
        style, text = self.style(text, key=True)
        if style == "":
            return text + ":"
        if style == "'":
            return "'" + text.replace("'", "''") + "':"
        raise _Unsupported

    def string(self, text: str, indent: int) -> None:
        """A string value whose block lines (if it is written as one) go at `indent`."""
        style, text = self.style(text, key=False)
        out = self.out
        if style == "":
            out.append(text + "\n")
        elif style == "'":
            if "\n" in text:
                raise _Unsupported  # over several lines, laid out by indentation
            out.append("'" + text.replace("'", "''") + "'\n")
        elif style == "|":
            out.append(self.literal(text, indent))
        else:
            out.append(self.double_quoted(text) + "\n")

    def style(self, text: str, *, key: bool) -> tuple[str, str]:
        """PyYAML's style for the string, given the golden representer's wish, and the text
        it writes (lone surrogates mended): '', "'", '|' or '"'."""
        if _EASY.fullmatch(text) and " #" not in text and not self.number.fullmatch(text):
            # the representer wishes no style for it (printable ASCII on one line that is
            # no number): plain when the resolver reads it as a string
            if text[0] not in self.resolved_first or self.is_text(text):
                return "", text
        node = self.represent(self.emitter, text)
        wish, text = node.style, str(node.value)
        if wish == '"':
            return '"', text
        if wish == "|" and not key:
            if not (_SPECIAL.search(text) or " \n" in text or text.endswith(" ")):
                return "|", text  # allow_block, as PyYAML's analysis finds it
        analysis = self.emitter.analyze_scalar(text)
        if wish is None and self.is_text(text):
            if not (key and (analysis.empty or analysis.multiline)) and analysis.allow_block_plain:
                return "", text
        if wish == "|" and not key and analysis.allow_block:
            return "|", text
        if wish in (None, "'") and analysis.allow_single_quoted:
            if not (key and analysis.multiline):
                return "'", text
        return '"', text

    def is_text(self, text: str) -> bool:
        """The resolver reads the plain scalar as a string (no tag needed)."""
        return self.resolve(yaml.ScalarNode, text, (True, False)) == _STR

    def literal(self, text: str, indent: int) -> str:
        """`|` with PyYAML's hints, then the lines at `indent` (empty ones empty)."""
        hints = ""
        if text[0] in " \n":
            hints += "2"
        if text[-1] != "\n":
            hints += "-"
        elif len(text) == 1 or text[-2] == "\n":
            hints += "+"
            self.open_ended = True
        pad = " " * indent
        lines = text.split("\n")
        body = "".join(pad + line + "\n" if line else "\n" for line in lines[:-1])
        if lines[-1]:
            body += pad + lines[-1] + "\n"
        return f"|{hints}\n{body}"

    def double_quoted(self, text: str) -> str:
        """A double-quoted scalar as PyYAML writes it (the same wherever it stands, since
        lines are never folded)."""
        written: str = yaml.dump(
            [text],
            Dumper=self.dumper_class,
            allow_unicode=True,
            default_flow_style=False,
            width=1 << 30,
        )
        if not written.startswith('- "') or not written.endswith('"\n'):
            raise _Unsupported
        return written[2:-1]
