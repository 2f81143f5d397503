"""Golden files on disk: safe loading (YAML or JSON), canonical dumping, atomic writes.

Loading never trusts the file: the size is checked before reading, YAML is read from
the parser's event stream without recursion (aliases, tags other than plain data,
duplicate keys and deep nesting are refused on the spot), and every problem becomes
one `GoldenLoadError` that names the file, the line and the field.
"""

from __future__ import annotations

import codecs
import contextlib
import contextvars
import dataclasses
import difflib
import enum
import errno
import functools
import gc
import hashlib
import json
import marshal
import math
import os
import re
import secrets
import stat
import sys
import time
import types
import typing
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails
from yaml import events as ev
from yaml.nodes import ScalarNode

from opswald import fastyaml, jsontext
from opswald.blockyaml import block_yaml
from opswald.hidden import HiddenEscapingDumper, has_hidden, json_with_hidden_escaped
from opswald.jsonable import to_jsonable
from opswald.paths import render
from opswald.redact import DEFAULT_REDACTOR, SURROGATE, Redactor, mend_surrogates, redact_data
from opswald.session import (
    LANE_GATHERS,
    LANE_PARENTS,
    MODIFICATION,
    SCHEMA_URL,
    STEP_NUMBERING,
    STREAM_CHUNKS,
    BudgetsExpect,
    ErrorExpect,
    Expect,
    LLMCallStep,
    NormalizeRule,
    OutputExpect,
    RequestsExpect,
    Session,
    StateExpect,
    StateStep,
    StepType,
    ToolCallsExpect,
    ToolCallStep,
    ToolOverride,
    UserInputStep,
    is_newer_schema,
    newer_schema_message,
)

try:
    from yaml import CSafeLoader as _SafeLoader
except ImportError:  # pragma: no cover - PyYAML built without libyaml
    from yaml import SafeLoader as _SafeLoader  # type: ignore[assignment]

DEFAULT_MAX_BYTES = 20 * 1024 * 1024
DEFAULT_MAX_DEPTH = 64
# the ini settings that raise (or lower) the caps, named in every message about them
MAX_BYTES_SETTING = "opswald_max_golden_bytes"
MAX_DEPTH_SETTING = "opswald_max_golden_depth"
# the deepest nesting a setting may allow: the writer, the diff and the redaction walk a
# golden's data recursively, well within Python's stack at this depth
DEPTH_CEILING = 200

Format = Literal["yaml", "json"]
StrPath = str | os.PathLike[str]
_Loc = tuple[str | int, ...]
# ("open", is_mapping, line) | ("close", None, line) | ("leaf", text, line)
_Event = tuple[str, Any, int]

_TMP_SUFFIX = ".opswald-tmp"
_SHAPE = "a golden must be a mapping with at least `input` (its file name names it if no `name`)"
_STEP_TYPES = ", ".join(typing.get_args(StepType))
_NO_WRAP = 1 << 30

_YAML = "tag:yaml.org,2002:"
_STR = _YAML + "str"
_KEPT_RESOLVERS = frozenset(_YAML + name for name in ("null", "bool", "int", "float"))
_COLLECTION_TAGS = frozenset({None, "!", _YAML + "map", _YAML + "seq"})
_SCALAR_CONSTRUCTORS = {
    _YAML + "null": "construct_yaml_null",
    _YAML + "bool": "construct_yaml_bool",
    _YAML + "int": "construct_yaml_int",
    _YAML + "float": "construct_yaml_float",
}
# Characters a literal block or single-quoted scalar would not give back intact.
_NEEDS_ESCAPES = re.compile("[\r\x85\u2028\u2029]")
_JSON_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"|[{}\[\]]|[^\s{}\[\],:"]+', re.DOTALL)


@dataclasses.dataclass(frozen=True, kw_only=True)
class Limits:
    """How large a golden file may be and how deeply its data may nest: loading refuses a
    file over either cap, and writing refuses a session whose file would be over one (its
    next replay would fail to load it). Set by `opswald_max_golden_bytes` and
    `opswald_max_golden_depth`."""

    max_bytes: int = DEFAULT_MAX_BYTES
    max_depth: int = DEFAULT_MAX_DEPTH


DEFAULT_LIMITS = Limits()
# The caps of the project's pytest config while the `opswald` command runs (the plugin
# passes its own explicitly); loading and writing outside either use the defaults.
_LIMITS: contextvars.ContextVar[Limits] = contextvars.ContextVar(
    "opswald_golden_limits", default=DEFAULT_LIMITS
)


def limits_in_force() -> Limits:
    """The caps that `load` and `dump` apply when given none."""
    return _LIMITS.get()


@contextlib.contextmanager
def using_limits(limits: Limits) -> Iterator[None]:
    """`limits` in force for the loads and writes inside the block."""
    token = _LIMITS.set(limits)
    try:
        yield
    finally:
        _LIMITS.reset(token)


class GoldenWriteRefused(ValueError):
    """A session that is not written: its file would be over a cap that loading applies."""


# the problems of one golden said (in pytest, `opswald validate`, its --json): enough to
# fix a file in one go, not a screenful of one mistake repeated
SHOWN_PROBLEMS = 10


class GoldenLoadError(Exception):
    """A golden that cannot be read, parsed or validated: `file:line: field: message`, a
    line for each of its problems (`more`: those after the first, each with its own line
    and field; `SHOWN_PROBLEMS` said, then how many more)."""

    def __init__(
        self,
        message: str,
        *,
        path: StrPath | None = None,
        line: int | None = None,
        field: str | None = None,
        source: str | None = None,
        more: list[GoldenLoadError] | None = None,
    ) -> None:
        # the message may quote the offending value (a key pasted into the wrong field):
        # it reaches the terminal, every report and `opswald validate`, so it is scrubbed
        message = DEFAULT_REDACTOR.text(message)
        field = DEFAULT_REDACTOR.text(field) if field else field
        super().__init__(message)
        self.message = message
        self.line = line
        self.field = field
        self.path: Path | None = Path(path) if path is not None else None
        self.source = source if source is not None or path is None else os.fspath(path)
        self.more: list[GoldenLoadError] = more or []

    def _said(self, source: str | None) -> str:
        where = source or ""
        if self.line is not None:
            where = f"{where}:{self.line}" if where else f"line {self.line}"
        head = f"{where}: " if where else ""
        field = f"{self.field}: " if self.field else ""
        return f"{head}{field}{self.message}"

    @property
    def problems(self) -> list[str]:
        """Each problem on a line of its own, `file:line: field: message`, the first
        `SHOWN_PROBLEMS` of them."""
        return [self._said(self.source)] + [
            problem._said(self.source) for problem in self.more[: SHOWN_PROBLEMS - 1]
        ]

    @property
    def unshown(self) -> int:
        """How many problems `problems` leaves out."""
        return max(0, 1 + len(self.more) - SHOWN_PROBLEMS)

    def __str__(self) -> str:
        lines = self.problems
        if self.unshown:
            head = f"{self.source}: " if self.source else ""
            plural = "s" if self.unshown > 1 else ""
            lines.append(f"{head}... and {self.unshown} more problem{plural}")
        return "\n".join(lines)

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.message,), self.__dict__)


# --------------------------------------------------------------------------- loading


def load_data(path: StrPath, *, max_bytes: int | None = None, max_depth: int | None = None) -> Any:
    """Read and parse a golden file into plain data, without schema validation. The caps
    not given are those in force (`limits_in_force`)."""
    max_bytes, max_depth = _caps(max_bytes, max_depth)
    with _blame(path):
        return _parse(_read_text(path, max_bytes), _format_of(path), max_depth)


def _caps(max_bytes: int | None, max_depth: int | None) -> tuple[int, int]:
    limits = _LIMITS.get()
    return (
        limits.max_bytes if max_bytes is None else max_bytes,
        limits.max_depth if max_depth is None else max_depth,
    )


def is_golden_text(value: object) -> bool:
    """A str that holds a golden's text, not a path: a newline, or a mapping written out
    (`{...}`: a golden is one). A file name may start with `[` or `{` and still be one."""
    if not isinstance(value, str):
        return False
    stripped = value.strip()
    return "\n" in value or (stripped.startswith("{") and stripped.endswith("}"))


def load(
    path: StrPath,
    *,
    max_bytes: int | None = None,
    max_depth: int | None = None,
    seen: Callable[[bytes], object] | None = None,
) -> Session:
    """Read, parse and validate a golden file; `seen` is given the bytes read, before they
    are parsed (the collection index digests them: one read for both). The caps not given
    are those in force (`limits_in_force`)."""
    max_bytes, max_depth = _caps(max_bytes, max_depth)
    with _blame(path), _no_cycle_collection():
        text = _read_text(path, max_bytes, seen)
        fmt = _format_of(path)
        return _validate(_parse(text, fmt, max_depth), text, fmt)


@contextlib.contextmanager
def _no_cycle_collection() -> Iterator[None]:
    """The cyclic garbage collector paused while a golden is built: loading makes no
    cycles (plain data and models; what it drops is freed by reference counting), but
    its thousands of new containers would set the collector off several times per
    golden, each pass walking every object the process holds — with 5,000 goldens
    collected, a seventh of the run. Left as it was when it was off already."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def load_compact(
    path: StrPath,
    *,
    max_bytes: int | None = None,
    max_depth: int | None = None,
    seen: Callable[[bytes], object] | None = None,
) -> tuple[Session, bytes]:
    """`load`, plus the golden's parsed data packed in one bytes object (`marshal`, about
    half the file's size): what a collected item keeps until it runs, instead of the
    `Session` (ten times the file, and thousands of objects for the garbage collector to
    walk). `from_compact` gives the `Session` back in a few dozen microseconds."""
    max_bytes, max_depth = _caps(max_bytes, max_depth)
    with _blame(path), _no_cycle_collection():
        text = _read_text(path, max_bytes, seen)
        fmt = _format_of(path)
        data = _parse(text, fmt, max_depth)
        session = _validate(data, text, fmt)
        return session, marshal.dumps(data)


def from_compact(blob: bytes) -> Session:
    """The `Session` of `load_compact`'s bytes (validated when they were made)."""
    with _no_cycle_collection():
        return Session.model_validate(marshal.loads(blob))


def loads(text: str, *, fmt: Format = "yaml", source: str = "<string>") -> Session:
    """Parse and validate golden text; errors name `source` in place of a file."""
    with _blame(None, source):
        text = text.removeprefix("\ufeff")
        return _validate(_parse(text, fmt, _LIMITS.get().max_depth), text, fmt)


@contextlib.contextmanager
def _blame(path: StrPath | None, source: str | None = None) -> Iterator[None]:
    """Fill in the file of a `GoldenLoadError` raised inside."""
    try:
        yield
    except GoldenLoadError as err:
        if err.source is None:
            err.path = Path(path) if path is not None else None
            err.source = source if source is not None else os.fspath(path or "")
        raise


def _format_of(path: StrPath) -> Format:
    return "json" if os.fspath(path).lower().endswith(".json") else "yaml"


def _read_text(path: StrPath, max_bytes: int, seen: Callable[[bytes], object] | None = None) -> str:
    """The file as text; the size cap is checked before a byte is read. `seen` gets the
    bytes of a file within the cap."""
    try:
        size = os.stat(path).st_size
        if size > max_bytes:
            raise GoldenLoadError(_too_big(size, max_bytes))
        with open(path, "rb") as handle:
            # sized from the stat: a read of `max_bytes` would allocate the whole cap first
            # (20 MB, about 20 µs per golden); a file grown since is read on, to the cap
            raw = handle.read(size + 1)
            if len(raw) > size:
                raw += handle.read(max_bytes + 1 - len(raw))
    except OSError as exc:
        raise GoldenLoadError(f"cannot read the file: {exc.strerror or exc}") from exc
    if len(raw) > max_bytes:
        raise GoldenLoadError(_too_big(len(raw), max_bytes))
    if seen is not None:
        seen(raw)
    return _decode(raw)


def _too_big(size: int, cap: int) -> str:
    return (
        f"file is {_size(size)}, over the limit of {_size(cap)} ({MAX_BYTES_SETTING}); "
        f"raise {MAX_BYTES_SETTING} in the pytest config to load it"
    )


def _size(count: int) -> str:
    """`21,000,411 bytes (20.0 MB)`; under a megabyte in KB (`1,514 bytes (1.5 KB)`)."""
    if count < 1024 * 1024:
        return f"{count:,} bytes ({count / 1024:.1f} KB)"
    return f"{count:,} bytes ({count / 1024 / 1024:.1f} MB)"


def _decode(raw: bytes) -> str:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        message = f"not valid UTF-8 (byte 0x{raw[exc.start]:02x}); save the file as UTF-8"
        raise GoldenLoadError(message, line=line) from None
    return text.removeprefix("\ufeff")


def _parse(text: str, fmt: Format, max_depth: int) -> dict[str, Any]:
    """Plain data of a golden's text; only a mapping is a golden."""
    nul = text.find("\0")
    if nul >= 0:
        message = "NUL byte in the file; a golden is a UTF-8 text file"
        raise GoldenLoadError(message, line=text.count("\n", 0, nul) + 1)
    data = _parse_checked(text, fmt, max_depth)
    if _SURROGATE_ESCAPE.search(text):
        _reject_lone_surrogates(data, text)
    return data


_SURROGATE_ESCAPE = re.compile(r"\\[uU]0{0,4}[dD][89a-fA-F]")


def _reject_lone_surrogates(data: Any, text: str) -> None:
    """An escaped lone surrogate (`"\\ud800"`) is no text: it cannot be written or printed."""
    stack = [data]
    while stack:
        value = stack.pop()
        if isinstance(value, dict):
            stack.extend(value.keys())
            stack.extend(value.values())
        elif isinstance(value, list):
            stack.extend(value)
        elif isinstance(value, str):
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                match = _SURROGATE_ESCAPE.search(text)
                line = text.count("\n", 0, match.start()) + 1 if match else None
                raise GoldenLoadError(
                    "an escaped lone surrogate (\\ud800-\\udfff) is not text; remove it",
                    line=line,
                ) from None


def _parse_checked(text: str, fmt: Format, max_depth: int) -> dict[str, Any]:
    try:
        if fmt == "yaml":
            return _yaml_data(text, max_depth)
        if fmt == "json":
            return _json_data(text, max_depth)
    except GoldenLoadError:
        conflict = _CONFLICT_MARKER.search(text)
        if conflict is None:
            raise
        raise GoldenLoadError(
            f"unresolved merge conflict (a {conflict.group(1)[:7]} line): resolve it, or take "
            "one side and run --opswald-update",
            line=text.count("\n", 0, conflict.start()) + 1,
        ) from None
    raise ValueError(f"unknown golden format {fmt!r}; expected 'yaml' or 'json'")


# git's conflict markers, at the start of a line (`=======` alone on its line)
_CONFLICT_MARKER = re.compile(r"^(<{7} |<{7}$|\|{7} |={7}$|>{7} |>{7}$)", re.MULTILINE)


def _root_mapping(data: Any, line: int) -> dict[str, Any]:
    if isinstance(data, dict):
        return data
    if data is None:
        raise GoldenLoadError(f"empty document; {_SHAPE}", line=line)
    raise GoldenLoadError(f"{_SHAPE}, not {_kind(data)}", line=line)


def _kind(value: Any) -> str:
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return "a string" if isinstance(value, str) else f"a {type(value).__name__}"


def _too_deep(max_depth: int) -> str:
    return (
        f"nested deeper than {max_depth} levels ({MAX_DEPTH_SETTING}); raise "
        f"{MAX_DEPTH_SETTING} in the pytest config (at most {DEPTH_CEILING}) to load it"
    )


# ------------------------------------------------------------------------------ YAML


class _GoldenLoader(_SafeLoader):
    """The safe loader resolving plain scalars to null, bool, int and float only."""


# A copy for this class alone: PyYAML's own resolvers stay untouched.
_GoldenLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag in _KEPT_RESOLVERS]
    for first, resolvers in _SafeLoader.yaml_implicit_resolvers.items()
}
# A plain scalar whose first character starts no implicit resolver is a string, and a
# quoted or block scalar always is: `_YamlBuilder.scalar` skips the resolver for those.
_RESOLVED_FIRST = frozenset(
    first for first, resolvers in _GoldenLoader.yaml_implicit_resolvers.items() if resolvers
)
assert None not in _RESOLVED_FIRST and not _GoldenLoader.yaml_path_resolvers
# The resolver's answers for short plain scalars it was asked about (a plain scalar's tag
# depends on its text alone: no path resolvers), bounded.
_RESOLVED_TAG: dict[str, str] = {}
_RESOLVED_TAG_MAX = 4096
# Decimal integers and fractions that int() and float() read exactly as PyYAML's resolver
# and constructors do (no 0x, 0o, leading zeros, `_`, `:`, exponents, `+`).
_PLAIN_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?")


class _PlainResolver(yaml.resolver.BaseResolver):
    """The golden loader's resolver, without a loader around it (the parser's scalars and
    the line reader's are resolved and constructed alike, by module-level instances)."""

    yaml_implicit_resolvers = _GoldenLoader.yaml_implicit_resolvers


_PLAIN_RESOLVE = typing.cast(Callable[[type, str, Any], str], _PlainResolver().resolve)
_PLAIN_CONSTRUCTOR = yaml.constructor.SafeConstructor()
_PLAIN_CONVERT: dict[str, Callable[[ScalarNode], Any]] = {
    tag: getattr(_PLAIN_CONSTRUCTOR, name) for tag, name in _SCALAR_CONSTRUCTORS.items()
}


def _plain_tag(text: str) -> str:
    """The resolver's tag for a plain scalar, remembered for short ones (it depends on the
    text alone: "Oslo", "openai", "function" recur in every golden)."""
    tag = _RESOLVED_TAG.get(text)
    if tag is None:
        tag = _PLAIN_RESOLVE(ScalarNode, text, (True, False))
        if len(text) <= _INTERN_UP_TO and len(_RESOLVED_TAG) < _RESOLVED_TAG_MAX:
            _RESOLVED_TAG[text] = tag
    return tag


def _plain_value(text: str) -> Any:
    """A plain scalar's value, as `_YamlBuilder.scalar` gives it; ValueError where the
    safe parser refuses it (the line reader then leaves the text to the parser)."""
    if text[0] not in _RESOLVED_FIRST:
        return sys.intern(text) if len(text) <= _INTERN_UP_TO else text
    if len(text) < 19 and _PLAIN_NUMBER.fullmatch(text):
        return float(text) if "." in text else int(text)
    tag = _plain_tag(text)
    if tag == _STR:
        return sys.intern(text) if len(text) <= _INTERN_UP_TO else text
    convert = _PLAIN_CONVERT.get(tag)
    if convert is None:
        raise ValueError(tag)
    try:
        return convert(ScalarNode(tag, text))
    except (KeyError, TypeError) as exc:
        raise ValueError(text) from exc


def _yaml_data(text: str, max_depth: int) -> dict[str, Any]:
    """The document's data: read line by line where the text is laid out as goldens are
    written (`fastyaml`), else by the safe parser, which also reports every problem."""
    data = fastyaml.read(text, max_depth, _plain_value, _RESOLVED_FIRST)
    return data if data is not None else _parsed_yaml_data(text, max_depth)


def _parsed_yaml_data(text: str, max_depth: int) -> dict[str, Any]:
    try:
        loader = _GoldenLoader(text)
    except yaml.YAMLError as exc:  # the pure-Python reader checks characters up front
        raise _yaml_error(exc, text) from None
    try:
        return _YamlBuilder(loader, text, max_depth).document()
    except yaml.YAMLError as exc:
        raise _yaml_error(exc, text) from None
    finally:
        loader.dispose()


def _line(event: ev.Event) -> int:
    mark = event.start_mark
    return int(mark.line) + 1 if mark is not None else 1


_INTERN_UP_TO = 32  # short string values (types, roles, names) are shared between goldens


class _ItemMarker:
    """Stands for "append to the list" where a mapping would hold a pending key."""


class _KeyMarker:
    """Stands for "the next scalar is a key" in a mapping."""


_ITEM = _ItemMarker()
_KEY = _KeyMarker()


class _YamlBuilder:
    """Plain data from parser events, built iteratively so no input can exhaust the stack."""

    def __init__(self, loader: _GoldenLoader, text: str, max_depth: int) -> None:
        self.loader = loader
        self.text = text
        self.max_depth = max_depth
        self.get = typing.cast(Callable[[], ev.Event], loader.get_event)

    def document(self) -> dict[str, Any]:
        """The one document of the stream, which must be a mapping."""
        get = self.get
        get()  # StreamStartEvent
        start = get()
        if isinstance(start, ev.StreamEndEvent):
            raise GoldenLoadError(f"empty file; {_SHAPE}", line=1)
        data, line = self.node()
        get()  # DocumentEndEvent
        after = get()
        if isinstance(after, ev.DocumentStartEvent):
            message = "a second YAML document starts here; a golden file holds exactly one"
            raise GoldenLoadError(message, line=_line(after))
        return _root_mapping(data, line)

    def node(self) -> tuple[Any, int]:
        """The next node's data and first line."""
        get = self.get
        intern = sys.intern
        holder: list[Any] = []
        stack: list[tuple[Any, Any]] = []
        container: Any = holder
        key: Any = _ITEM
        first = get()
        event = first
        resolved_first = _RESOLVED_FIRST
        while True:
            if isinstance(event, ev.ScalarEvent):  # most events: inline, no calls
                if key is _KEY:
                    if event.tag is None:
                        key = intern(event.value)
                        if key in container:
                            raise _duplicate_error(_yaml_events(self.text))
                    else:
                        key = self.key(event, container)
                else:
                    text = event.value
                    if event.tag is None and (
                        not event.implicit[0] or (text and text[0] not in resolved_first)
                    ):  # a string, as `scalar` would find
                        value = intern(text) if len(text) <= _INTERN_UP_TO else text
                    else:
                        value = self.scalar(event)
                    if key is _ITEM:
                        container.append(value)
                    else:
                        container[key] = value
                        key = _KEY
            elif type(event) is ev.MappingEndEvent or type(event) is ev.SequenceEndEvent:
                container, key = stack.pop()
            elif key is _KEY:
                key = self.key(event, container)  # not a scalar: refused there
            else:
                value = self.value(event, len(stack))  # a new dict or list (or refused)
                if key is _ITEM:
                    container.append(value)
                else:
                    container[key] = value
                    key = _KEY
                stack.append((container, key))
                container, key = value, (_KEY if type(value) is dict else _ITEM)
            if not stack:
                return holder[0], _line(first)
            event = get()

    def key(self, event: ev.Event, mapping: dict[str, Any]) -> str:
        """A mapping key: a scalar, kept as written, seen once."""
        if isinstance(event, ev.AliasEvent):
            raise _alias_error(event)
        if not isinstance(event, ev.ScalarEvent):
            message = "a mapping key must be a plain string, not a list or a mapping"
            raise GoldenLoadError(message, line=_line(event))
        if event.tag not in (None, "!", _STR) and event.tag not in _PLAIN_CONVERT:
            raise GoldenLoadError(_bad_tag(event.tag), line=_line(event))
        # keys repeat in every step of every golden: one string object each (memory)
        name = sys.intern(str(event.value))
        if name in mapping:
            raise _duplicate_error(_yaml_events(self.text))
        return name

    def value(self, event: ev.Event, depth: int) -> Any:
        """A scalar's value, or a new empty dict or list for a collection."""
        kind = type(event)
        if kind is ev.ScalarEvent:
            return self.scalar(typing.cast(ev.ScalarEvent, event))
        if kind is ev.MappingStartEvent or kind is ev.SequenceStartEvent:
            if depth >= self.max_depth:
                raise GoldenLoadError(_too_deep(self.max_depth), line=_line(event))
            tag = typing.cast(ev.CollectionStartEvent, event).tag
            if tag not in _COLLECTION_TAGS:
                raise GoldenLoadError(_bad_tag(tag), line=_line(event))
            return {} if kind is ev.MappingStartEvent else []
        if kind is ev.AliasEvent:
            raise _alias_error(event)
        raise GoldenLoadError("unexpected YAML structure", line=_line(event))

    def scalar(self, event: ev.ScalarEvent) -> Any:
        tag = event.tag
        if tag is None or tag == "!":
            value = event.value
            if not event.implicit[0] or (value and value[0] not in _RESOLVED_FIRST):
                tag = _STR  # what the resolver says, without asking it
            elif len(value) < 19 and _PLAIN_NUMBER.fullmatch(value):
                # what the resolver and PyYAML's constructors make of it, without them (long
                # digit strings take the checked path below)
                return float(value) if "." in value else int(value)
            else:
                tag = _plain_tag(value)
        if tag == _STR:
            value = event.value
            return sys.intern(value) if len(value) <= _INTERN_UP_TO else value
        convert = _PLAIN_CONVERT.get(tag or "")
        if convert is None:
            raise GoldenLoadError(_bad_tag(tag), line=_line(event))
        try:
            return convert(ScalarNode(tag, event.value))
        except (ValueError, KeyError, TypeError, IndexError):  # IndexError: `!!int ""`
            message = f"cannot read {event.value!r} as {_short_tag(tag)}"
            raise GoldenLoadError(message, line=_line(event)) from None


def _scalar_text(node: ScalarNode) -> str:
    return str(node.value)


_PLAIN_CONVERT[_YAML + "timestamp"] = _scalar_text


def _short_tag(tag: str | None) -> str:
    return "!!" + tag.removeprefix(_YAML) if tag and tag.startswith(_YAML) else str(tag)


def _bad_tag(tag: str | None) -> str:
    return (
        f"unsupported YAML tag {_short_tag(tag)}; a golden holds plain data "
        "(mappings, lists, strings, numbers, booleans, null)"
    )


def _alias_error(event: ev.Event) -> GoldenLoadError:
    name = typing.cast(ev.AliasEvent, event).anchor
    message = f"YAML aliases are not allowed in a golden (found *{name}); write the value out"
    return GoldenLoadError(message, line=_line(event))


def _yaml_error(exc: yaml.YAMLError, text: str) -> GoldenLoadError:
    """A YAML parse error as a `GoldenLoadError` with a 1-based line."""
    if isinstance(exc, yaml.reader.ReaderError):
        char = chr(exc.character) if isinstance(exc.character, int) else ""
        at = text.find(char) if char else -1
        line = text.count("\n", 0, at) + 1 if at >= 0 else None
        code = f"U+{exc.character:04X}" if char else repr(exc.character)
        return GoldenLoadError(f"invalid YAML: character {code} is not allowed", line=line)
    if isinstance(exc, yaml.MarkedYAMLError):
        mark = exc.problem_mark or exc.context_mark
        message = f"invalid YAML: {exc.problem or exc.context or 'cannot be parsed'}"
        if exc.problem and exc.context and exc.context_mark:
            message += f" ({exc.context} at line {exc.context_mark.line + 1})"
        return GoldenLoadError(message, line=mark.line + 1 if mark else None)
    return GoldenLoadError(f"invalid YAML: {exc}")


def _yaml_events(text: str) -> Iterator[_Event]:
    """The first document as simple events; ends quietly at a parse error."""
    try:
        loader = _GoldenLoader(text)
    except yaml.YAMLError:
        return
    get = typing.cast(Callable[[], ev.Event], loader.get_event)
    try:
        while True:
            event = get()
            kind = type(event)
            if kind is ev.MappingStartEvent or kind is ev.SequenceStartEvent:
                yield ("open", kind is ev.MappingStartEvent, _line(event))
            elif kind is ev.MappingEndEvent or kind is ev.SequenceEndEvent:
                yield ("close", None, _line(event))
            elif kind is ev.ScalarEvent or kind is ev.AliasEvent:
                yield ("leaf", getattr(event, "value", "*"), _line(event))
            elif kind is ev.DocumentEndEvent or kind is ev.StreamEndEvent:
                return
    except yaml.YAMLError:
        return
    finally:
        loader.dispose()


# ------------------------------------------- plain scalars YAML 1.1 and 1.2 read apart

# The YAML 1.2 core schema's readings of a plain scalar (any other text is a string).
_CORE_NULL = frozenset({"", "~", "null", "Null", "NULL"})
_CORE_BOOL = {"true": True, "True": True, "TRUE": True, "false": False, "False": False}
_CORE_BOOL.update({"FALSE": False})
_CORE_INT = re.compile(r"[-+]?[0-9]+")
_CORE_OCT = re.compile(r"0o([0-7]+)")
_CORE_HEX = re.compile(r"0x([0-9a-fA-F]+)")
_CORE_FLOAT = re.compile(r"[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?")
_CORE_INF = re.compile(r"([-+]?)\.(?:inf|Inf|INF)")
_CORE_NAN = frozenset({".nan", ".NaN", ".NAN"})


def _yaml12_value(text: str) -> Any:
    """What a YAML 1.2 reader (core schema: yq, most other languages' parsers) makes of a
    plain scalar."""
    if text in _CORE_NULL:
        return None
    if text in _CORE_BOOL:
        return _CORE_BOOL[text]
    if _CORE_INT.fullmatch(text):
        return int(text)
    for pattern, base in ((_CORE_OCT, 8), (_CORE_HEX, 16)):
        found = pattern.fullmatch(text)
        if found:
            return int(found.group(1), base)
    if _CORE_FLOAT.fullmatch(text):
        return float(text)
    inf = _CORE_INF.fullmatch(text)
    if inf:
        return -math.inf if inf.group(1) == "-" else math.inf
    return math.nan if text in _CORE_NAN else text


def _same_reading(a: Any, b: Any) -> bool:
    if type(a) is not type(b):
        return False
    return bool(a == b) or (isinstance(a, float) and math.isnan(a) and math.isnan(b))


def _reading(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "the boolean " + ("true" if value else "false")
    if isinstance(value, int | float):
        return f"the number {value!r}"
    return f"the text {value!r}"


def _written(value: Any) -> str:
    if value is None or isinstance(value, bool):
        return "null" if value is None else ("true" if value else "false")
    return repr(value) if isinstance(value, int | float) else f"'{value}'"


def yaml_version_differences(text: str) -> list[tuple[int, str]]:
    """The plain (unquoted) values of YAML golden text that opswald, which reads YAML 1.1
    as PyYAML does, reads otherwise than a YAML 1.2 tool would (`NO` is false for one and
    text for the other, `17:30` the number 1050 or text, `017` 15 or 17, `1_000` a number
    or text, `0o17` text or 15): each as its line and a sentence saying both readings and
    how to quote it. Such a golden is valid; only its reader may be surprised. Keys are
    always read as text and are not listed. Text that does not parse gives none."""
    try:
        loader = _GoldenLoader(text)
    except yaml.YAMLError:
        return []
    builder = _YamlBuilder(loader, text, _NO_WRAP)
    get = typing.cast(Callable[[], ev.Event], loader.get_event)
    found: list[tuple[int, str]] = []
    # per open collection: its last key (a mapping) or None (a list), and whether a key
    # comes next
    stack: list[list[Any]] = []
    try:
        while True:
            event = get()
            kind = type(event)
            if kind is ev.StreamEndEvent or kind is ev.DocumentEndEvent:
                break
            top = stack[-1] if stack else None
            is_key = top is not None and top[1]
            if top is not None and top[0] is not _ITEM:
                top[1] = not top[1]  # a mapping: key, value, key, ...
            if kind is ev.MappingStartEvent or kind is ev.SequenceStartEvent:
                stack.append([None, True] if kind is ev.MappingStartEvent else [_ITEM, False])
            elif kind is ev.MappingEndEvent or kind is ev.SequenceEndEvent:
                stack.pop()
                if stack and stack[-1][0] is not _ITEM:
                    stack[-1][1] = True
            elif kind is ev.ScalarEvent:
                scalar = typing.cast(ev.ScalarEvent, event)
                if is_key and top is not None:
                    top[0] = scalar.value
                elif not scalar.style and scalar.tag is None and scalar.implicit[0]:
                    note = _difference(builder, scalar, top)
                    if note:
                        found.append((_line(event), note))
    except (yaml.YAMLError, GoldenLoadError):
        pass
    finally:
        loader.dispose()
    return found


def _difference(builder: _YamlBuilder, event: ev.ScalarEvent, top: list[Any] | None) -> str:
    """The sentence about a plain scalar that YAML 1.1 and 1.2 read apart, else ''."""
    raw = event.value
    old = builder.scalar(event)
    new = _yaml12_value(raw)
    if _same_reading(old, new):
        return ""
    shown = f"{top[0]}: {raw}" if top is not None and top[0] is not _ITEM else f"- {raw}"
    quoted = "'" + raw.replace("'", "''") + "'"
    if isinstance(old, str):
        fix = f"quote it ({quoted}) so that every reader takes the text"
    else:
        fix = f"quote it ({quoted}) if you mean the text, or write {_written(old)}"
    return (
        f"`{shown}` reads as {_reading(old)} in opswald (YAML 1.1) but as {_reading(new)} "
        f"in YAML 1.2 tools such as yq; {fix}"
    )


# ------------------------------------------------------------------------------ JSON


class _DuplicateKeyError(Exception):
    pass


def _unique_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    data = dict(pairs)
    if len(data) != len(pairs):
        raise _DuplicateKeyError
    return data


def _unique_decoded_pairs(pairs: list[tuple[str, Any]]) -> Any:
    _unique_pairs(pairs)
    return jsontext.decode_pairs(pairs)


def _json_data(text: str, max_depth: int) -> dict[str, Any]:
    if not text.strip():
        raise GoldenLoadError(f"empty file; {_SHAPE}", line=1)
    # NaN as `{"$float": "NaN"}`, keys named `$float` with a `$` more (see jsontext)
    hook = _unique_decoded_pairs if jsontext.needs_decoding(text) else _unique_pairs
    try:
        data = json.loads(text, object_pairs_hook=hook)
    except json.JSONDecodeError as exc:
        raise GoldenLoadError(f"invalid JSON: {exc.msg}", line=exc.lineno) from None
    except _DuplicateKeyError:
        raise _duplicate_error(_json_events(text)) from None
    except RecursionError:
        raise _too_deep_error(_json_events(text), max_depth) from None
    except ValueError as exc:  # an integer with too many digits, for one
        raise GoldenLoadError(f"invalid JSON: {exc}") from None
    if _deeper_than(data, max_depth):
        raise _too_deep_error(_json_events(text), max_depth)
    return _root_mapping(data, text.count("\n", 0, len(text) - len(text.lstrip())) + 1)


def _deeper_than(data: Any, max_depth: int) -> bool:
    """True when containers nest more than `max_depth` levels: one level at a time, without
    recursion (JSON's parser, and `to_data` for a golden about to be written, make plain
    dicts and lists only, so `type` is exact)."""
    level = [data] if type(data) is dict or type(data) is list else []
    depth = 0
    while level:
        depth += 1
        if depth > max_depth:
            return True
        inner: list[Any] = []
        for value in level:
            for child in value.values() if type(value) is dict else value:
                if type(child) is dict or type(child) is list:
                    inner.append(child)
        level = inner
    return False


def _json_events(text: str) -> Iterator[_Event]:
    """JSON text as simple events with lines (for locating problems only)."""
    line, pos = 1, 0
    for match in _JSON_TOKEN.finditer(text):
        line += text.count("\n", pos, match.start())
        pos = match.start()
        token = match.group()
        if token in ("{", "["):
            yield ("open", token == "{", line)
        elif token in ("}", "]"):
            yield ("close", None, line)
        else:
            yield ("leaf", _json_string(token), line)


def _json_string(token: str) -> str:
    if not token.startswith('"'):
        return token
    try:
        return str(json.loads(token))
    except ValueError:
        return token[1:-1]


# ------------------------------------------------------------ locating in either format


@dataclasses.dataclass(slots=True)
class _Frame:
    path: _Loc
    is_mapping: bool
    index: int = 0
    key: str | None = None
    key_line: int = 0


def _nodes(events: Iterable[_Event]) -> Iterator[tuple[_Loc, int, bool]]:
    """(path, line, is_container) of every node; a mapping value gets its key's line."""
    frames: list[_Frame] = []
    for kind, value, line in events:
        if kind == "close":
            if frames:
                frames.pop()
            continue
        frame = frames[-1] if frames else None
        if frame is not None and frame.is_mapping and frame.key is None:
            frame.key, frame.key_line = (str(value), line) if kind == "leaf" else ("?", line)
            if kind == "open":  # a complex key: walk through it under a stand-in name
                frames.append(_Frame((*frame.path, "?"), bool(value)))
            continue
        path, where = _child(frame, line)
        yield path, where, kind == "open"
        if kind == "open":
            frames.append(_Frame(path, bool(value)))


def _child(frame: _Frame | None, line: int) -> tuple[_Loc, int]:
    if frame is None:
        return (), line
    if frame.is_mapping:
        key, where = frame.key or "", frame.key_line
        frame.key = None
        return (*frame.path, key), where
    frame.index += 1
    return (*frame.path, frame.index - 1), line


def _locate(events: Iterable[_Event], target: _Loc) -> int | None:
    """The line of `target`, or of its deepest existing parent."""
    best: int | None = None
    for path, line, _ in _nodes(events):
        if path == target[: len(path)]:
            best = line
            if len(path) == len(target):
                break
    return best


def _duplicate_error(events: Iterable[_Event]) -> GoldenLoadError:
    seen: dict[_Loc, int] = {}
    for path, line, _ in _nodes(events):
        if path in seen:
            key = path[-1]
            message = f"duplicate key {key!r} (first at line {seen[path]}); keys must be unique"
            return GoldenLoadError(message, line=line, field=golden_place(path))
        seen[path] = line
    return GoldenLoadError("duplicate key in a mapping; keys must be unique")


def _too_deep_error(events: Iterable[_Event], max_depth: int) -> GoldenLoadError:
    for path, line, is_container in _nodes(events):
        if is_container and len(path) >= max_depth:
            return GoldenLoadError(_too_deep(max_depth), line=line)
    return GoldenLoadError(_too_deep(max_depth))


# ------------------------------------------------------------------------ validation


def _validate(data: dict[str, Any], text: str, fmt: Format) -> Session:
    version = data.get("schema_version") if isinstance(data, dict) else None
    if is_newer_schema(version):  # not a typo but a newer writer: said as upgrade says it
        assert isinstance(version, int)
        events = _yaml_events(text) if fmt == "yaml" else _json_events(text)
        line = _locate(events, ("schema_version",))
        raise GoldenLoadError(newer_schema_message(version), line=line)
    try:
        return Session.model_validate(data)
    except ValidationError as exc:
        raise _schema_error(exc, text, fmt, data=data) from None


def _schema_error(
    exc: ValidationError,
    text: str | None,
    fmt: Format,
    root: type[BaseModel] = Session,
    data: Any = None,
) -> GoldenLoadError:
    """One error for each field with a problem, in the golden's terms, with its line (when
    the golden's `text` is given): the first, holding the others as `more`; `root`: the
    model that was validated, `data` what it was given (the places are named as written
    there)."""
    errors = exc.errors(include_url=False)
    by_field: dict[_Loc, list[ErrorDetails]] = {}
    owners: dict[_Loc, Any] = {}
    for error in errors:
        field, owner = _field_of(error, root)
        field = _as_written(field, data)
        if error["type"] in (LANE_PARENTS, LANE_GATHERS) and field == ("metadata",):
            field = ("metadata", error["type"])  # the key's line, not `metadata:`'s
        by_field.setdefault(field, []).append(error)
        owners.setdefault(field, owner)
    events: list[_Event] | None = None
    if text is not None:
        events = list(_yaml_events(text) if fmt == "yaml" else _json_events(text))
    problems = []
    for field, same in by_field.items():
        message = _explain(same, owners[field])
        if not field:
            problems.append(GoldenLoadError(message))
            continue
        line = _locate(events, field) if events is not None else None
        problems.append(GoldenLoadError(message, line=line, field=golden_place(field)))
    first = problems[0]
    first.more = problems[1:]
    return first


def golden_place(path: _Loc) -> str:
    """A place in a golden as its author reads it: a step by the number the file gives it
    (`step 1 › type`, as a diff reads), never the 0-based `steps[0].type`."""
    if len(path) >= 2 and path[0] == "steps" and isinstance(path[1], int):
        step = f"step {path[1] + 1}"
        return f"{step} › {render(path[2:])}" if path[2:] else step
    return render(path)


def schema_problem(exc: ValidationError, root: type[BaseModel] = Session) -> GoldenLoadError:
    """A session's validation error as the loader words it (`field: message`, one line),
    for data that has no file text to point into (a migrated golden, a promoted trace);
    `root`: the model validated, when it is a part of a session (a marker's `expect`)."""
    return _schema_error(exc, None, "json", root)


def _field_of(error: ErrorDetails, root: type[BaseModel] = Session) -> tuple[_Loc, Any]:
    """The error's place with union tags dropped, and the type that owns its last part."""
    parts: list[str | int] = []
    kind: Any = root
    owner: Any = None
    for part in error["loc"]:
        members = _union_members(kind)
        if len(members) > 1:  # pydantic names the union member it tried: not a field
            kind = _member(members, part)
            continue
        owner = members[0]
        parts.append(part)
        kind = _child_type(owner, part)
    if error["type"] in ("union_tag_invalid", "union_tag_not_found"):
        owner = kind
        parts.append(str((error.get("ctx") or {}).get("discriminator", "type")).strip("'"))
    if error["type"] == STEP_NUMBERING:  # the step whose number is wrong, not the list
        parts.extend((int((error.get("ctx") or {})["position"]) - 1, "step"))
    return tuple(parts), owner


def _as_written(field: _Loc, data: Any) -> _Loc:
    """`field` as far as the golden wrote it: a part written as a mapping that opswald
    reads as a list (`normalize: {pattern: placeholder}`) is named as the mapping
    (`expect.requests.normalize`), not as the list's `normalize[0].pattern`."""
    if data is None:
        return field
    value = data
    for n, part in enumerate(field):
        if isinstance(part, int) and isinstance(value, dict):
            return field[:n]
        if isinstance(value, dict):
            value = value.get(part)
        elif isinstance(value, list) and isinstance(part, int) and -len(value) <= part < len(value):
            value = value[part]
        else:
            break
    return field


def _strip_annotated(tp: Any) -> Any:
    return typing.get_args(tp)[0] if typing.get_origin(tp) is typing.Annotated else tp


def _union_members(tp: Any) -> list[Any]:
    tp = _strip_annotated(tp)
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        return [_strip_annotated(arg) for arg in typing.get_args(tp) if arg is not type(None)]
    return [tp]


def _is_model(tp: Any) -> bool:
    return typing.get_origin(tp) is None and isinstance(tp, type) and issubclass(tp, BaseModel)


def _member(members: list[Any], tag: str | int) -> Any:
    for member in members:
        field = member.model_fields.get("type") if _is_model(member) else None
        if (field is not None and field.default == tag) or getattr(member, "__name__", 0) == tag:
            return member
    return None


def _child_type(tp: Any, part: str | int) -> Any:
    if _is_model(tp):
        field = tp.model_fields.get(str(part))
        return field.annotation if field is not None else None
    args = typing.get_args(tp)
    if typing.get_origin(tp) is list and args:
        return args[0]
    if typing.get_origin(tp) is dict and len(args) == 2:
        return args[1]
    return None


def _explain(errors: list[ErrorDetails], owner: Any) -> str:
    """A short message for the errors that share one field."""
    first = errors[0]
    kind = first["type"]
    if kind == "union_tag_invalid":
        tag = (first.get("ctx") or {}).get("tag")
        return f"unknown step type {tag!r}; expected one of: {_STEP_TYPES}"
    if kind == "union_tag_not_found":
        return f"step has no `type`; expected one of: {_STEP_TYPES}"
    if kind == "missing":
        return "required field is missing"
    if kind == "extra_forbidden":
        return _unknown_field(first["loc"][-1], owner)
    if kind == "model_type" and first["loc"]:  # pydantic's message names our model class
        return _takes(_child_type(owner, first["loc"][-1])) + _got(first["input"])
    messages = [error["msg"].removeprefix("Value error, ") for error in errors]
    shows_input = first["loc"] and kind not in (
        STEP_NUMBERING,
        MODIFICATION,
        LANE_PARENTS,
        LANE_GATHERS,
    )  # named
    if kind == "value_error" and _quoted(first["input"], messages[0]):
        shows_input = False  # the check's message names the value already
    return _merged(messages) + (_got(first["input"]) if shows_input else "")


def _quoted(value: Any, message: str) -> bool:
    """Whether a check's message names `value`: a list or mapping it checked names the
    element at fault (`bad path 'a..b'`), a scalar is quoted in it."""
    return isinstance(value, list | dict) or repr(value) in message


# the parts of a golden that may be written otherwise than as a mapping, and how
_SHORTHANDS: dict[Any, str] = {
    OutputExpect: "a match name (exact, contains, regex, ...)",
    StateExpect: "report, exact, a list of paths",
    ErrorExpect: "same, type, any, fixed",
}


def _takes(part: Any) -> str:
    """What a part of a golden (a mapping, or one of its shorthands) is written as."""
    members = _union_members(part)
    model = members[0] if len(members) == 1 and _is_model(members[0]) else None
    if model is None:
        return "must be a mapping"
    keys = f"a mapping, with any of: {', '.join(model.model_fields)}"
    shorthand = _SHORTHANDS.get(model)
    return f"must be {shorthand} or {keys}" if shorthand else f"must be {keys}"


def _unknown_field(name: str | int, owner: Any) -> str:
    fields = list(owner.model_fields) if _is_model(owner) else []
    close = difflib.get_close_matches(str(name), fields, n=1)
    if close:
        return f"unknown field; did you mean {close[0]!r}?"
    if fields:
        return f"unknown field; expected one of: {', '.join(fields)}"
    return "unknown field"


def _merged(messages: list[str]) -> str:
    """`Input should be a valid number or a valid string` from one message per union member."""
    unique = list(dict.fromkeys(messages))
    prefix = "Input should be "
    if len(unique) < 2 or not all(message.startswith(prefix) for message in unique):
        return unique[0]
    tails = [message.removeprefix(prefix) for message in unique]
    return prefix + ", ".join(tails[:-1]) + " or " + tails[-1]


def _got(value: Any) -> str:
    if isinstance(value, dict | list):
        return f" (got {_kind(value)})"
    shown = json.dumps(value, ensure_ascii=False, default=repr)
    return f" (got {shown if len(shown) <= 60 else shown[:57] + '...'})"


# --------------------------------------------------------------------------- dumping


_SCALAR_TYPES = frozenset({str, int, float, bool, type(None)})
_ALWAYS_KEPT: dict[type[BaseModel], frozenset[str]] = {
    Session: frozenset({"schema_version"}),
    UserInputStep: frozenset({"type", "content"}),
    LLMCallStep: frozenset({"type"}),
    ToolCallStep: frozenset({"type", "input", "output"}),
    StateStep: frozenset({"type"}),
}


class _Required:
    """Stands for "this field has no default"."""


_REQUIRED = _Required()


def to_data(session: Session) -> dict[str, Any]:
    """The session as canonical plain data: schema order, defaults left out, no aliases."""
    return _model_data(session)


def _model_data(model: BaseModel) -> dict[str, Any]:
    kept = _kept(model)
    defaults = _plain_defaults(type(model))
    out: dict[str, Any] = {}
    for name in _field_order(type(model)):
        plain = _plain(getattr(model, name))
        default = defaults[name]
        if name in kept or type(plain) is not type(default) or plain != default:
            out[name] = plain
    for name, value in (model.model_extra or {}).items():
        out[str(name)] = _plain(value)
    return out


def _kept(model: BaseModel) -> frozenset[str]:
    """Fields written even when they hold their default."""
    kept = next((_ALWAYS_KEPT[c] for c in type(model).__mro__ if c in _ALWAYS_KEPT), frozenset())
    if isinstance(model, Session) and (model.steps is not None or not model.is_stub):
        kept |= {"output"}
    if type(model) in _EXPECTATIONS:  # what a reviewer wrote stays, defaults included
        kept |= model.model_fields_set
    return kept


_EXPECTATIONS = frozenset(
    {
        Expect,
        OutputExpect,
        StateExpect,
        ErrorExpect,
        BudgetsExpect,
        ToolCallsExpect,
        ToolOverride,
        RequestsExpect,
        NormalizeRule,
    }
)


@functools.cache
def _field_order(cls: type[BaseModel]) -> tuple[str, ...]:
    """Schema order, except that a step's `type` comes right after its `step`."""
    names = list(cls.model_fields)
    if "step" in names and "type" in names:
        names.remove("type")
        names.insert(names.index("step") + 1, "type")
    return tuple(names)


@functools.cache
def _plain_defaults(cls: type[BaseModel]) -> dict[str, Any]:
    return {
        name: _REQUIRED
        if field.is_required()
        else _plain(field.get_default(call_default_factory=True))
        for name, field in cls.model_fields.items()
    }


def _plain(value: Any) -> Any:
    """JSON-like data with the key order kept: tuples become lists, models plain dicts."""
    kind = type(value)
    if kind in _SCALAR_TYPES:
        return value
    if kind is dict or isinstance(value, Mapping):
        out = {_plain_key(key): _plain(item) for key, item in value.items()}
        if len(out) != len(value):  # `1` and `'1'` both written "1": one was lost
            _COLLIDED.set(True)
        return out
    if kind is list or isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    if isinstance(value, BaseModel) and kind.__module__ == Session.__module__:
        return _shorthand(value, _model_data(value))
    if isinstance(value, enum.Enum):
        return _plain(value.value)
    if isinstance(value, int | float):
        return (float if isinstance(value, float) else int)(value)
    if isinstance(value, str):
        return str.__str__(value)
    return _plain(to_jsonable(value))


def _shorthand(model: BaseModel, data: dict[str, Any]) -> Any:
    """`expect.state`, `expect.output` and `expect.error` in the short forms the README
    writes (`state: exact`, `state: [memory.x]`, `output: contains`, `error: type`) when
    they say no more than that, so an update keeps a hand-written shorthand instead of
    expanding it."""
    if isinstance(model, StateExpect):
        if set(data) <= {"mode"}:
            return data.get("mode", "report")
        if set(data) == {"mode", "paths"} and data["mode"] == "paths":
            return data["paths"]
    if isinstance(model, OutputExpect) and set(data) <= {"match"}:
        return data.get("match", "exact")
    if isinstance(model, ErrorExpect) and set(data) <= {"match"}:
        return data.get("match", "same")
    return data


def _plain_key(key: Any) -> str:
    """A mapping key as a string, the way JSON writes it."""
    if type(key) is str:
        return key
    if isinstance(key, enum.Enum):
        key = key.value
    if isinstance(key, str):
        return str.__str__(key)
    if key is None or isinstance(key, bool | int | float):
        return json.dumps(key)
    return str(key)


def dumps(session: Session, fmt: Format = "yaml", *, redactor: Redactor | None = None) -> str:
    """The canonical text of a session: the same session always gives the same text. With
    a `redactor`, the text has the secrets in the session replaced (`redact_data`)."""
    return _text(_canonical(session, redactor), fmt)


# Set by `_plain` when a dict had keys written alike; `dump` refuses to write such data.
_COLLIDED: contextvars.ContextVar[bool] = contextvars.ContextVar("_COLLIDED", default=False)


def _canonical(session: Session, redactor: Redactor | None) -> dict[str, Any]:
    data = to_data(session)
    return redact_data(data, redactor) if redactor is not None else data


def _collision_refusal(session: Session) -> str:
    """What `dump` says of a session holding a dict whose keys a golden writes alike."""
    from opswald.jsonable import lost_keys
    from opswald.paths import render

    found = lost_keys(session)
    where = ""
    if found is not None:
        first, second = found.keys
        place = render(found.path) or "the session"
        path = found.path
        if len(path) >= 2 and path[0] == "steps" and isinstance(path[1], int):
            # in the golden's terms, as a diff reads: `step 2 › input.filters`
            number = session.step_list[path[1]].step
            place = f"step {number} › {render(path[2:])}" if path[2:] else f"step {number}"
        where = f": {first} and {second} in {place} are both written {found.written!r}"
    return (
        f"the session has keys that a golden writes alike{where}, so the golden would keep "
        "only one; use keys of one type in that dict (strings, say), so that none is lost"
    )


def _text(data: dict[str, Any], fmt: Format) -> str:
    if fmt == "json":
        return json_with_hidden_escaped(jsontext.dumps(data, indent=2)) + "\n"
    if fmt != "yaml":
        raise ValueError(f"unknown golden format {fmt!r}; expected 'yaml' or 'json'")
    _one_line_lengths(data)
    fast = block_yaml(data, _GoldenDumper, _represent_str, _YAML12_NUMBER, _OneLine)
    if fast is not None:
        return f"# yaml-language-server: $schema={SCHEMA_URL}\n{fast}"
    return f"# yaml-language-server: $schema={SCHEMA_URL}\n{_pyyaml_text(data)}"


def _pyyaml_text(data: dict[str, Any]) -> str:
    """The document as PyYAML's emitter writes it (what `block_yaml` matches)."""
    body: str = yaml.dump(
        data,
        Dumper=_GoldenDumper,
        sort_keys=False,
        allow_unicode=True,
        default_flow_style=False,
        width=_NO_WRAP,
    )
    return body


class _OneLine(list[Any]):
    """A list YAML writes on one line: `[12, 3, 7]`."""


def _one_line_lengths(data: dict[str, Any]) -> None:
    """The piece lengths of streamed steps (`attributes.stream_chunks`, one list of numbers
    per text) each on one line rather than one line per number."""
    for step in data.get("steps") or []:
        attributes = step.get("attributes") if isinstance(step, dict) else None
        found = attributes.get(STREAM_CHUNKS) if isinstance(attributes, dict) else None
        if not isinstance(found, dict):
            continue
        for path, lengths in found.items():
            if isinstance(lengths, list) and all(type(n) is int for n in lengths):
                found[path] = _OneLine(lengths)


def dump(
    session: Session,
    path: StrPath,
    *,
    redactor: Redactor | None = None,
    keep_comments: bool = False,
    renumbered: Mapping[int, int] | None = None,
    limits: Limits | None = None,
    exclusive: bool = False,
) -> int:
    """Write a session canonically and atomically; `.json` files get JSON, others YAML.
    With `exclusive`, a file at `path` is never replaced, even one that appears while the
    session is written: FileExistsError instead (`atomic_write_text`). A
    file written before with CRLF line endings or a byte-order mark keeps them, so that its
    diff shows what changed and nothing else. Missing folders are made. With a `redactor`,
    the secrets in the session are replaced in what is written. With `keep_comments`, the
    comments of the YAML file replaced stay on the parts written unchanged
    (`opswald.comments`), a step's also where `renumbered` (its number in the file
    replaced → in `session`) says it moved, and the top-level keys a rewrite keeps
    (`comments.KEPT_KEYS`) are written as that file has them while they say the same (in
    a JSON file: their values, as written); the number of its comment lines that could
    not stay is returned (else 0).

    A session whose file loading would refuse — nested deeper or larger than `limits`
    (else those in force) allow — is not written: `GoldenWriteRefused` says which cap,
    by how much, and what to do."""
    limits = limits or _LIMITS.get()
    fmt = _format_of(path)
    token = _COLLIDED.set(False)
    try:
        data = _canonical(session, redactor)
        if _COLLIDED.get():
            raise GoldenWriteRefused(_collision_refusal(session))
    finally:
        _COLLIDED.reset(token)
    if _deeper_than(data, limits.max_depth):
        raise GoldenWriteRefused(_deep_refusal(data, limits.max_depth))
    old = _old_text(path) if keep_comments else None
    if old is not None and fmt == "json":
        data = _as_written_json(old, data)
    text = _text(data, fmt)
    dropped = 0
    if old is not None and fmt == "yaml":
        from opswald.comments import carry_comments

        carried = carry_comments(old, text, renumbered)
        text, dropped = carried.text, carried.dropped
    bom, crlf = _text_form(path)
    if crlf:
        text = text.replace("\n", "\r\n")
    if bom:
        text = "\ufeff" + text
    size = len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass"))
    if size > limits.max_bytes:
        raise GoldenWriteRefused(_big_refusal(data, size, limits.max_bytes))
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, text, exclusive=exclusive)
    return dropped


def same_value(key: str, old: str, new: str) -> bool:
    """Whether two YAML texts of a golden's top-level `key` (`key: ...`, maybe with
    comments) say the same: read and checked as loading reads and checks them, so that
    `output: {match: exact}` says what `output: exact` does."""
    try:
        before = _parse(old, "yaml", DEFAULT_MAX_DEPTH)
        after = _parse(new, "yaml", DEFAULT_MAX_DEPTH)
    except Exception:  # not a part that reads alone: not known to be the same
        return False
    return list(before) == [key] == list(after) and same_field(key, before[key], after[key])


def same_field(key: str, old: Any, new: Any) -> bool:
    """Whether two values of a golden's top-level `key` (plain data, as read) say the same
    once loaded: their canonical data is identical, types and key order included."""
    try:
        written = [to_data(Session.model_validate({key: value})).get(key) for value in (old, new)]
    except (ValidationError, ValueError, TypeError):
        return False
    return repr(written[0]) == repr(written[1])


def _as_written_json(old: str, data: dict[str, Any]) -> dict[str, Any]:
    """`data` (canonical) with the top-level keys a rewrite keeps (`comments.KEPT_KEYS`)
    as the old JSON text has them, where they say the same: JSON has no comments to keep,
    but a hand-written form (`"output": {"match": "exact"}`, a `normalize` mapping) stays."""
    from opswald.comments import KEPT_KEYS

    try:  # the C reader: the file was loaded (and checked) before; only values are taken
        before = json.loads(old)
    except ValueError:  # not the file that was loaded: nothing to go by
        return data
    if not isinstance(before, dict):
        return data
    kept = {
        key: before[key]
        for key in KEPT_KEYS
        if key in before
        and key in data
        and repr(before[key]) != repr(data[key])
        and same_field(key, before[key], data[key])
    }
    return {key: kept.get(key, value) for key, value in data.items()} if kept else data


def _old_text(path: StrPath) -> str | None:
    """The text of the file about to be replaced, with `\n` line ends, if it is one."""
    try:
        raw = Path(path).read_bytes()
    except OSError:
        return None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return None
    return text.removeprefix("\ufeff").replace("\r\n", "\n")


def _deepest(data: Any) -> tuple[int, _Loc]:
    """How many levels containers nest, and the place of one of the deepest."""
    level: list[tuple[Any, _Loc]] = [(data, ())]
    depth, where = 0, typing.cast(_Loc, ())
    while level:
        depth, where = depth + 1, level[0][1]
        inner: list[tuple[Any, _Loc]] = []
        for value, path in level:
            items = value.items() if isinstance(value, dict) else enumerate(value)
            inner.extend(
                (child, (*path, key)) for key, child in items if isinstance(child, dict | list)
            )
        level = inner
    return depth, where


def _deep_refusal(data: Any, max_depth: int) -> str:
    depth, where = _deepest(data)
    shown = _written_place(data, where[:3]) + ("..." if len(where) > 3 else "")
    return (
        f"not written: the session nests {depth} levels deep (at {shown}), deeper than the "
        f"{max_depth} levels a golden may have ({MAX_DEPTH_SETTING}): its next replay would "
        f"fail to load it. Have the agent return flatter data, or raise {MAX_DEPTH_SETTING} "
        f"in the pytest config (at most {DEPTH_CEILING})"
    )


def _big_refusal(data: dict[str, Any], size: int, cap: int) -> str:
    part, part_size = _largest_part(data)
    largest = f"; the largest part is {part} (about {_size(part_size)})" if part else ""
    return (
        f"not written: the golden would be {_size(size)}, over the limit of {_size(cap)} "
        f"({MAX_BYTES_SETTING}): its next replay would fail to load it{largest}. Have the "
        f"agent record less, or raise {MAX_BYTES_SETTING} in the pytest config"
    )


def _largest_part(data: dict[str, Any]) -> tuple[str, int]:
    """The step field or top-level field that takes the most room (measured as JSON)."""
    sizes: dict[str, int] = {}
    for key, value in data.items():
        if key == "steps" and isinstance(value, list):
            for index, step in enumerate(value):
                for name, field_value in step.items() if isinstance(step, dict) else ():
                    sizes[_written_place(data, ("steps", index, name))] = _json_size(field_value)
        else:
            sizes[key] = _json_size(value)
    if not sizes:
        return "", 0
    part = max(sizes, key=lambda name: sizes[name])
    return part, sizes[part]


def _written_place(data: dict[str, Any], path: _Loc) -> str:
    """`golden_place` of a session about to be written: a step by its own `step` number."""
    steps = data.get("steps")
    if len(path) >= 2 and path[0] == "steps" and isinstance(path[1], int) and steps:
        number = steps[path[1]].get("step") if isinstance(steps[path[1]], dict) else None
        if isinstance(number, int) and not isinstance(number, bool):
            path = ("steps", number - 1, *path[2:])
    return golden_place(path)


def _json_size(value: Any) -> int:
    return len(json.dumps(value, ensure_ascii=False, default=str))


def _text_form(path: StrPath) -> tuple[bool, bool]:
    """Whether an existing file starts with a byte-order mark, and whether its first line
    ends with CRLF."""
    try:
        with open(path, "rb") as f:
            head = f.readline(1 << 16)
    except OSError:
        return False, False
    return head.startswith(codecs.BOM_UTF8), head.endswith(b"\r\n")


class _GoldenDumper(HiddenEscapingDumper):
    """Block style with list items indented under their key, never an anchor, and the
    characters that hide or reorder text escaped (`opswald.hidden`)."""

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        super().increase_indent(flow, False)

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _represent_str(dumper: yaml.SafeDumper, text: str) -> yaml.ScalarNode:
    """Multi-line strings as literal blocks; odd line breaks and characters that hide or
    reorder text (`opswald.hidden`) escaped in double quotes; strings that YAML 1.2 tools
    (yq, other languages' parsers) would read as numbers quoted, though PyYAML's YAML 1.1
    reads them as strings (`1e5`, `0o17`, `.5`)."""
    if not text.isascii() and SURROGATE.search(text):
        text = mend_surrogates(text)  # else written as an escape no YAML reader takes
    style = None
    if _NEEDS_ESCAPES.search(text) or has_hidden(text):
        style = '"'
    elif "\n" in text:
        style = "|"
    elif _YAML12_NUMBER.fullmatch(text):
        style = "'"
    return dumper.represent_scalar(_STR, text, style=style)


# The YAML 1.2 core schema's numbers (and a leading `_`/`+` some parsers take too)
_YAML12_NUMBER = re.compile(
    r"[-+]?(?:_?[0-9][0-9_]*|0o[0-7_]+|0x[0-9a-fA-F_]+)"
    r"|[-+]?(?:\.[0-9]+|[0-9][0-9_]*(?:\.[0-9_]*)?)(?:[eE][-+]?[0-9]+)?"
    r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN)"
)


_GoldenDumper.add_representer(str, _represent_str)
_GoldenDumper.add_representer(
    _OneLine,
    lambda dumper, data: dumper.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=True),
)


# ---------------------------------------------------------------- saved actual sessions

ACTUAL_SUFFIX = ".actual.yaml"
_NOT_IN_SAVED_NAME = re.compile(r"[^\w.\-\[\]]+")
# A saved name's part before the variant: short enough that `[variant].actual.yaml` fits
# within the 255 bytes a file name may have, and file systems with shorter names too.
SAVED_STEM_BYTES = 120
_HASH_HEX = 10


def saved_actual_name(test_name: str, variant: str | None = None) -> str:
    """The file name `--opswald-save-actual` gives a test's actual session (and by which
    `opswald html --actual-dir` finds it): `<test name>[<variant>].actual.yaml`.

    A name with characters other than letters, digits, `.`, `-`, `[`, `]` has them made
    `_`, and a name longer than SAVED_STEM_BYTES (in UTF-8) is cut; either then ends in `~`
    and a hash of the whole name, so that names a file name cannot tell apart (`refund/eu`,
    `refund eu`, `refund_eu`; long names that start the same) get files of their own. `~`
    is one of the characters made `_`, so no other name gives that file name."""
    stem = _NOT_IN_SAVED_NAME.sub("_", test_name)
    if stem != test_name or _utf8_len(stem) > SAVED_STEM_BYTES:
        digest = hashlib.sha256(test_name.encode("utf-8", "surrogatepass")).hexdigest()
        stem = f"{cut_to_bytes(stem, SAVED_STEM_BYTES - 1 - _HASH_HEX)}~{digest[:_HASH_HEX]}"
    return stem + (f"[{variant}]" if variant else "") + ACTUAL_SUFFIX


def cut_to_bytes(text: str, limit: int) -> str:
    """`text` cut at a character so that it takes at most `limit` bytes in UTF-8: what a
    file name takes on Linux and macOS, and no less than on Windows."""
    text = text[: max(limit, 0)]  # every character takes a byte at least
    while text and _utf8_len(text) > limit:
        text = text[:-1]
    return text


def _utf8_len(text: str) -> int:
    return len(text.encode("utf-8", "surrogatepass"))


# ---------------------------------------------------------------------- atomic write


def atomic_write_text(path: StrPath, text: str, *, exclusive: bool = False) -> None:
    """Replace `path` with `text` (UTF-8) so that readers see the old or the new file.
    With `exclusive`, a file that is there when the text is put in place is left alone and
    FileExistsError raised: the temp file is hard-linked as `path`, which no other writer
    can have taken in between (where links are not supported, `path` is created with
    O_EXCL first, then replaced)."""
    target = Path(path)
    if target.is_symlink():
        target = Path(os.path.realpath(target))
    if target.is_dir():  # before any temp file: os.replace would refuse it only at the end
        raise IsADirectoryError(errno.EISDIR, "is a folder, not a file", os.fspath(path))
    mode = _mode_of(target)
    temp, fd = _create_temp(target)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        if mode is not None:
            os.chmod(temp, mode)
        if exclusive:
            _link_new(temp, target)
        else:
            os.replace(temp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise
    _fsync_dir(target.parent)


def _link_new(temp: Path, target: Path) -> None:
    """Put `temp` in place as `target`, which must not exist: FileExistsError if it does."""
    try:
        os.link(temp, target)
    except FileExistsError:
        raise FileExistsError(errno.EEXIST, "exists", os.fspath(target)) from None
    except OSError:  # no hard links here: take the name first, then fill it atomically
        os.close(os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
        os.replace(temp, target)
    else:
        os.unlink(temp)


def _mode_of(path: Path) -> int | None:
    try:
        return stat.S_IMODE(os.stat(path).st_mode)
    except OSError:
        return None


NAME_MAX_BYTES = 255  # the longest file name Linux, macOS and Windows file systems take


def _create_temp(target: Path) -> tuple[Path, int]:
    """A new, exclusive temp file beside `target` that can never be taken for a golden:
    `.<target's name>.<16 hex>.opswald-tmp`, the name cut short when the whole would not
    fit a file name (the random part and O_EXCL keep it unique)."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    for _ in range(100):
        token = secrets.token_hex(8)
        room = NAME_MAX_BYTES - len(f"..{token}{_TMP_SUFFIX}")
        temp = target.with_name(f".{cut_to_bytes(target.name, room)}.{token}{_TMP_SUFFIX}")
        try:
            return temp, os.open(temp, flags, 0o666)
        except FileExistsError:
            continue
    raise FileExistsError(f"cannot create a temporary file beside {target}")


def write_output_text(path: StrPath, text: str) -> None:
    """Write a report or a page at `path`: a file is replaced atomically, as a golden is,
    but what is neither a file nor a folder (/dev/null, /dev/stdout, a FIFO, a process
    substitution's /dev/fd/63) is written into and stays what it was. Replacing it would
    put a file where a device was: as root, the report where /dev/null was, for every
    program (pytest's --junitxml writes into it as well)."""
    if is_special_file(Path(path)):
        with open(path, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
        return
    atomic_write_text(path, text)


def is_special_file(path: Path) -> bool:
    """Whether `path` (its links followed) is there and neither a file nor a folder: a
    device, a FIFO or a socket."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return False
    return not (stat.S_ISREG(mode) or stat.S_ISDIR(mode))


def output_file_problem(here: Path, value: str) -> str | None:
    """Why the report or page `value` (relative to `here`, a file name: see
    `report_path_problem`) cannot be written, or None: its folder is made as needed and
    must take a new file, as the atomic write makes one there. A device or FIFO there
    (`write_output_text` writes into it) need only be writable by us."""
    target = here / value
    if is_special_file(target):
        return None if os.access(target, os.W_OK) else os.strerror(errno.EACCES)
    shown = os.path.dirname(value) or "."
    return writable_folder_problem(here / shown, shown)


def report_path_problem(here: Path, value: str, example: str) -> str | None:
    """Why a report file cannot be written at `value` (relative to `here`), or None.
    `example` is a file name the message suggests (`report.json`)."""
    if _kind_of(here / value) == "folder":
        return f"{value} is a folder; name a file in it, such as {os.path.join(value, example)}"
    if value.endswith(("/", os.sep)):  # a folder path, there or not: Path() drops the end
        return (
            f"{value} is a folder path (it ends in {value[-1]}), not a file name; "
            f"name a file, such as {value}{example}"
        )
    return _file_on_the_way(here, value)


def folder_path_problem(here: Path, value: str) -> str | None:
    """Why `value` (relative to `here`) cannot be a folder to write files in, or None."""
    if _kind_of(here / value) == "file":
        return f"{value.rstrip('/' + os.sep)} is a file, not a folder"
    return _file_on_the_way(here, value)


def _file_on_the_way(here: Path, value: str) -> str | None:
    for parent in Path(value).parents:  # as given, so the message names it as given
        kind = _kind_of(here / parent)
        if kind == "folder":
            return None
        if kind == "file":  # a file, or a link to nothing
            return f"{parent} is a file, not a folder, in {value}"
    return None


def _kind_of(path: Path) -> Literal["folder", "file"] | None:
    """What is at `path` ("file" for anything but a folder, a dangling link too), None
    when nothing is or it cannot be looked at (a name too long: making it will say why)."""
    try:
        return "folder" if stat.S_ISDIR(os.stat(path).st_mode) else "file"
    except OSError:
        return "file" if os.path.islink(path) else None


def writable_folder_problem(folder: Path, shown: str) -> str | None:
    """Make `folder` (and the folders above it) as needed and check that a file can be
    created in it; None when it can, else why not (`shown` names the folder). A report
    written when a run ends is checked so before the run, not found unwritable after it."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        return f"cannot make the folder {shown}: {exc.strerror or exc}"
    try:  # a temp file as every write makes one: read-only folders refuse it
        temp, fd = _create_temp(folder / "write-check")
    except OSError as exc:
        return f"cannot create a file in {shown}: {exc.strerror or exc}"
    os.close(fd)
    with contextlib.suppress(OSError):
        os.unlink(temp)
    return None


STALE_TEMP_SECONDS = 60.0


def remove_if_stale_temp(path: Path, *, older_than: float = STALE_TEMP_SECONDS) -> bool:
    """Delete `path` if it is one of our temp files untouched for `older_than` seconds: a
    write that a killed process never finished (a live write takes milliseconds)."""
    if not (path.name.startswith(".") and path.name.endswith(_TMP_SUFFIX)):
        return False
    try:
        if time.time() - path.stat().st_mtime < older_than:
            return False
        path.unlink()
    except OSError:
        return False
    return True


def _fsync_dir(folder: Path) -> None:
    """Make the rename durable; platforms that cannot open a folder skip this."""
    try:
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
