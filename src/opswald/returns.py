"""What an instrumented function's result is recorded as, and what replay rebuilds from it.

A function with a return annotation (`-> Order`, `-> list[Reply]`, `-> tuple[int, str]`)
gets back, on replay, a value of that type: pydantic's `TypeAdapter` of the annotation
validates the recorded data, by alias and by field name. What is recorded for such a
function is the adapter's JSON form of the result when it gives the result back as it
was; otherwise the plain data form (`to_jsonable`), as for a function without an
annotation. Goldens written before this form was used still replay: a `base64:` string
(bytes that are not UTF-8) becomes bytes again, and a repr string such as
`Decimal('1.10')` or `PosixPath('/tmp/x')` is read as the text it holds.
"""

from __future__ import annotations

import ast
import base64
import binascii
import inspect
import re
import threading
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from opswald.jsonable import to_jsonable, type_name, unplain

RETURNED = "opswald.returned"
"""The step attribute naming the type a function returned when replay gives back
something else (the data form, or another type): the failure of an agent that trips over
it names the call."""

_UNRESOLVED: Any = object()
_PATH_REPR = re.compile(r"(?:Pure)?(?:Posix|Windows)?Path\(")
_REPR = re.compile(r"[A-Za-z_][\w.]*\((?P<text>'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\")\)\Z")


class Returns:
    """A function's return annotation as replay rebuilds it (callable: the decoder).

    Resolved on first use, so that an annotation naming a class defined after the
    function works. No annotation (or `Any`, `None`, a type pydantic cannot build): no
    adapter, and the agent gets the recorded data."""

    def __init__(self, function: Callable[..., Any]) -> None:
        self._function = function
        self._adapter: Any = _UNRESOLVED
        self.declared = ""  # the annotation as shown in notes (`Order`, `list[Reply]`)
        self.unusable = ""  # why an annotation the function has is not used, for notes
        self._lock = threading.Lock()

    def adapter(self) -> Any:
        """The annotation's `TypeAdapter`, or None."""
        if self._adapter is _UNRESOLVED:
            with self._lock:
                if self._adapter is _UNRESOLVED:
                    self._adapter = self._build()
        return self._adapter

    def _build(self) -> Any:
        try:
            hint = inspect.signature(self._function, eval_str=True).return_annotation
        except Exception as exc:  # unresolvable annotations: the data as recorded
            self.unusable = f"it cannot be resolved ({type(exc).__name__}: {exc})"
            return None
        if hint is inspect.Signature.empty or hint is Any or hint is None or hint is type(None):
            return None
        if _plain(hint):  # `-> dict`, `-> list[dict[str, Any]]`: the data is the value
            self.declared = _shown(hint)
            return None
        try:
            from pydantic import TypeAdapter

            adapter = TypeAdapter(hint)
        except Exception:  # not a type pydantic can build
            self.unusable = f"pydantic cannot build `{_shown(hint)}`"
            return None
        self.declared = _shown(hint)
        return adapter

    def __call__(self, data: Any) -> Any:
        return self.decode(data)[0]

    def decode(self, data: Any) -> tuple[Any, bool]:
        """(the value rebuilt from recorded `data`, True), or (`data`, False) when it does
        not validate as the annotation (or there is none)."""
        adapter = self.adapter()
        if adapter is None:
            return data, False
        revived = _revive(data, _legacy_form)
        if revived is not data:  # non-UTF-8 bytes as `base64:...`, a path as its repr
            try:
                return _validate(adapter, revived), True
            except Exception:
                pass
        try:
            return _validate(adapter, data), True
        except Exception:
            pass
        legacy = _revive(data, _repr_text)  # `Decimal('1.10')`: what goldens used to hold
        if legacy is not data:
            try:
                return _validate(adapter, legacy), True
            except Exception:
                pass
        return data, False

    def encode(self, value: Any) -> tuple[Any, bool]:
        """(what to record for `value`, whether replay gives `value` back as it was)."""
        adapter = self.adapter()
        if adapter is None:
            return to_jsonable(value), unplain(value) is None
        # by field name first, as a model dumps itself (and goldens hold models); by alias
        # where the data by name does not validate (pydantic before 2.11)
        for options in ({}, {"by_alias": True}):
            try:
                data = adapter.dump_python(value, mode="json", warnings=False, **options)
                back, rebuilt = self.decode(data)
            except Exception:  # a value the annotation's serializer cannot write
                break
            if rebuilt and same(back, value):
                return data, True
        data = to_jsonable(value)
        back, rebuilt = self.decode(data)
        return data, rebuilt and same(back, value)


def same(rebuilt: Any, value: Any) -> bool:
    """Whether `rebuilt` stands for `value`: equal, or of the same type when that type
    compares by identity (a dataclass with `eq=False`)."""
    try:
        if rebuilt == value:
            return True
        kind = type(value)
        identity: Any = object.__eq__
        return type(rebuilt) is kind and kind.__eq__ is identity
    except Exception:  # an `==` that raises or returns no bool (an array)
        return False


def _validate(adapter: Any, data: Any) -> Any:
    try:  # by alias (the form recorded) and by field name (what goldens used to hold)
        return adapter.validate_python(data, by_alias=True, by_name=True)
    except TypeError:  # pydantic before 2.11: by alias only
        return adapter.validate_python(data)


def _revive(data: Any, convert: Callable[[str], Any]) -> Any:
    """`data` with the strings `convert` turns into something else replaced; `data`
    itself when there are none."""
    if isinstance(data, str):
        return convert(data)
    if isinstance(data, dict):
        items = {k: _revive(v, convert) for k, v in data.items()}
        return items if any(items[k] is not data[k] for k in data) else data
    if isinstance(data, list):
        parts = [_revive(v, convert) for v in data]
        return parts if any(p is not v for p, v in zip(parts, data, strict=True)) else data
    return data


def _legacy_form(text: str) -> Any:
    """The bytes a `base64:` string stands for (bytes that are not UTF-8), the text of a
    path's repr (`PosixPath('/tmp/x')`, which a path field would take as it is); else
    `text`."""
    if _PATH_REPR.match(text):
        return _repr_text(text)
    if not text.startswith("base64:"):
        return text
    try:
        raw = base64.b64decode(text[7:], validate=True)
    except (binascii.Error, ValueError):
        return text
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw
    return text  # UTF-8 bytes are written as their text, never so


def _repr_text(text: str) -> Any:
    """The text inside a repr such as `Decimal('1.10')` or `PosixPath('/tmp/x')`."""
    found = _REPR.match(text)
    if found is None:
        return text
    try:
        inner = ast.literal_eval(found["text"])
    except (ValueError, SyntaxError):
        return text
    return inner if isinstance(inner, str) else text


_PLAIN_HINTS: frozenset[Any] = frozenset({str, int, float, bool, dict, list, Any, type(None)})


def _plain(hint: Any) -> bool:
    """An annotation whose values are plain data as they are (`dict`, `list[str]`,
    `dict[str, Any]`, `str | None`): replay hands the data over without validating it."""
    if hint in _PLAIN_HINTS:
        return True
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is dict:
        return not args or (args[0] is str and _plain(args[1]))
    if origin is list:
        return not args or _plain(args[0])
    if origin is typing.Union or isinstance(hint, types.UnionType):
        return all(_plain(arg) for arg in args)
    return False


def _shown(hint: Any) -> str:
    if isinstance(hint, type):
        return hint.__qualname__
    return re.sub(r"\b(?:typing|[\w.]+)\.(?=\w+\b)", "", str(hint)).replace("NoneType", "None")


@dataclass(frozen=True, kw_only=True)
class Retyped:
    """A served answer that is not what the function returned when the call was recorded:
    the golden's step, the function (tool or model), what it returned (`agent.Order`, or
    the annotation `-> Reply` that the recorded data does not validate as) and what the
    agent got instead (`dict`)."""

    step: int
    step_type: str
    name: str
    returned: str
    given: str

    @property
    def invalid(self) -> bool:
        """The recorded data does not validate as the function's annotation."""
        return self.returned.startswith("-> ")


TYPE_ERRORS = frozenset({"AttributeError", "KeyError", "TypeError", "IndexError"})
"""The errors an agent raises when it is handed data where it expects its own type."""


def _a(kind: str) -> str:
    return ("an " if kind[:1].lower() in "aeiou" else "a ") + kind


def return_note(function: str, value: Any, data: Any, declared: str, unusable: str = "") -> str:
    """The note that `function` returned what replay does not give back as it was
    (`unusable`: why the annotation it has is not used)."""
    kind = type_name(value)
    given = type_name(data)
    if declared:
        return (
            f"{function} returned {_a(kind)}, which its annotation `-> {declared}` does not "
            "give back as it was: replay hands the agent what the golden holds rebuilt as "
            f"`{declared}` where that validates, else the data ({_a(given)})"
        )
    found = unplain(value)
    part = ""
    if found is not None and found[0]:
        from opswald.paths import render

        part = f" ({found[1]} at {render(('value', *found[0]))})"
    elif found is not None and found[1] != kind:
        part = f" ({found[1]})"
    short = kind.rsplit(".", 1)[-1]
    if unusable:
        return (
            f"{function} returned {_a(kind)}{part}, which replay gives back as plain data "
            f"({_a(given)}): its return annotation is not used, as {unusable}; make it one "
            "that resolves when the function is first called (a class imported outside "
            f"`if TYPE_CHECKING:`, defined at module level) or give it decode="
        )
    return (
        f"{function} returned {_a(kind)}{part}, which replay gives back as plain data "
        f"({_a(given)}): annotate {function} with its return type (`-> {short}`) or give it "
        f"decode= to get {_a(short) if short != kind else 'it'} back"
    )
