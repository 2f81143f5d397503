"""What an instrumented function's result is recorded as, and what replay rebuilds from it.

A function with a return annotation (`-> Order`, `-> list[Reply]`, `-> tuple[int, str]`)
gets back, on replay, a value of that type: pydantic's `TypeAdapter` of the annotation
validates the recorded data, by alias and by field name. What is recorded for such a
function is the adapter's JSON form of the result when it gives the result back as it
was; otherwise the plain data form (`to_jsonable`), as for a function without an
annotation. Goldens written before this form was used still replay: where the annotation
expects bytes, a `base64:` string (bytes that are not UTF-8) becomes bytes again, and
where it expects a path, a `Decimal`, a UUID, ..., a repr string such as `Decimal('1.10')`
or `PosixPath('/tmp/x')` is read as the text it holds; a `str` keeps any such text.
"""

from __future__ import annotations

import ast
import base64
import binascii
import dataclasses
import inspect
import re
import threading
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import PurePath
from typing import Any

from opswald.jsonable import json_key, to_jsonable, type_name, unplain
from opswald.paths import render
from opswald.redact import PLACEHOLDER

RETURNED = "opswald.returned"
"""The step attribute naming the type a function returned when replay gives back
something else (the data form, or another type): the failure of an agent that trips over
it names the call."""

UNUSABLE = "opswald.unusable"
"""The step attribute, beside RETURNED, saying why the return annotation the function has
is not used (unresolvable, or no type pydantic builds): the failure of an agent that trips
over the plain data names that, not a missing annotation."""

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
            self.unusable = f"{_UNBUILT} `{_shown(hint)}`"
            return None
        self.declared = _shown(hint)
        return adapter

    def __call__(self, data: Any) -> Any:
        return self.decode(data)[0]

    def decode(self, data: Any) -> tuple[Any, bool]:
        """(the value rebuilt from recorded `data`, True), or (`data`, False) when it does
        not validate as the annotation (or there is none)."""
        back = self.rebuild(data)
        return back.value, back.rebuilt

    def rebuild(self, data: Any) -> Rebuilt:
        """The value rebuilt from recorded `data`, or `data` when it does not validate.

        What goldens used to hold is read where the annotation expects its type, never in
        a `str`: a repr (`Decimal('1.10')`) or `base64:` bytes where the text does not
        validate, a path's repr where the annotation makes a path of it, `base64:` text
        where it makes bytes. A placeholder that recording put in place of a credential
        (`<redacted:header>` for an `api_key: int`) is kept where the type cannot take it:
        the golden never held the value, and the agent gets what the golden holds."""
        adapter = self.adapter()
        if adapter is None:
            return Rebuilt(value=data, rebuilt=False)
        from pydantic import ValidationError

        current, hidden = data, _Hiding()
        for _ in range(len(_STAND_INS) + 3):  # each pass revives or stands in something more
            try:
                value = _validate(adapter, current)
            except ValidationError as exc:
                mended = hidden.mend(current, exc.errors())
                if mended is current:
                    break
                current = mended
                continue
            value = _typed_legacy(adapter, current, value, hidden.paths)
            kept = hidden.put_back(value)
            if kept is _MISSING:
                break
            return Rebuilt(value=kept, rebuilt=True, hidden=hidden.found())
        return Rebuilt(value=data, rebuilt=False, hidden=hidden.found(failed=True))

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


@dataclass(frozen=True, kw_only=True)
class Hidden:
    """A `<redacted:…>` placeholder in recorded data where the annotation expects another
    type: recording hid the value by its name (a credential's), and the golden never held
    it. `where`: the path in the result (`api_key`, `accounts[0].token`); `expected`:
    what the annotation expects there, in pydantic's words (`a valid integer`)."""

    where: str
    placeholder: str
    expected: str


@dataclass(frozen=True, kw_only=True)
class Rebuilt:
    """What replay hands over for recorded data: `value`, whether it is the annotation's
    type (`rebuilt`), and the placeholders in it (or that kept it from validating)."""

    value: Any
    rebuilt: bool
    hidden: tuple[Hidden, ...] = ()


_MISSING: Any = object()
_UNBUILT = "pydantic cannot build"
# what stands in for a placeholder while the annotation validates the rest: the type it
# expects takes one of these (a number, a date or a bool; a list, a set or a tuple; a
# mapping or a model with defaults; a UUID), then the placeholder is put back in its place
_STAND_INS: tuple[Any, ...] = (0, [], {}, "00000000-0000-0000-0000-000000000000")
_WHAT = re.compile(r"Input should be (?P<what>[^,]+)")


class _Hiding:
    """The placeholders that stand in a validation's way, and what stands in for each."""

    def __init__(self) -> None:
        self.paths: dict[tuple[str | int, ...], tuple[Hidden, int]] = {}
        self.failed: set[tuple[str | int, ...]] = set()

    def mend(self, data: Any, errors: list[Any]) -> Any:
        """`data` with what the errors point at mended (a legacy form read, a placeholder
        given a stand-in, or its next one); `data` itself when nothing can be."""
        for error in errors:
            found = error["input"]
            path = _data_path(data, error["loc"], found)
            if path is None or path in self.failed:
                continue
            if path in self.paths:
                hidden, tried = self.paths[path]
                if tried + 1 >= len(_STAND_INS):
                    self.failed.add(path)  # the type takes none: the data as recorded
                    continue
                self.paths[path] = (hidden, tried + 1)
                data = _replaced(data, path, _STAND_INS[tried + 1])
            elif not isinstance(found, str):
                continue
            elif PLACEHOLDER.fullmatch(found) and path:
                what = _WHAT.match(str(error.get("msg", "")))
                expected = what["what"] if what else f"what {error.get('type')} expects"
                hidden = Hidden(where=render(path), placeholder=found, expected=expected)
                self.paths[path] = (hidden, 0)
                data = _replaced(data, path, _STAND_INS[0])
            else:
                legacy = _legacy_form(found)
                if legacy is found or isinstance(legacy, str):
                    legacy = _repr_text(found)
                if legacy is not found:
                    data = _replaced(data, path, legacy)
        return data

    def put_back(self, value: Any) -> Any:
        """`value` with each placeholder where its stand-in was; _MISSING when one has no
        place to go back to (a set's member, a frozen container)."""
        for path, (hidden, _) in self.paths.items():
            value = _put(value, path, hidden.placeholder)
            if value is _MISSING:
                return _MISSING
        return value

    def found(self, *, failed: bool = False) -> tuple[Hidden, ...]:
        """The placeholders met; `failed`: those no stand-in fits, when there are any (what
        kept the data from validating), else all."""
        met = [(path, hidden) for path, (hidden, _) in self.paths.items()]
        stuck = [hidden for path, hidden in met if path in self.failed]
        return tuple(stuck if failed and stuck else [hidden for _, hidden in met])


def _data_path(data: Any, loc: tuple[Any, ...], found: Any) -> tuple[str | int, ...] | None:
    """Where in `data` a validation error's `loc` points (a union's tags skipped), when
    what is there is the error's input; else None."""
    path: list[str | int] = []
    node = data
    for part in loc:
        if isinstance(node, dict) and isinstance(part, str) and part in node:
            node = node[part]
            path.append(part)
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            node = node[part]
            path.append(part)
        elif not isinstance(node, dict | list):
            return None
    return tuple(path) if type(node) is type(found) and node == found else None


def _replaced(data: Any, path: tuple[str | int, ...], new: Any) -> Any:
    """A copy of `data` with `new` at `path` (the rest shared)."""
    if not path:
        return new
    key, rest = path[0], path[1:]
    if isinstance(data, dict):
        return {**data, key: _replaced(data[key], rest, new)}
    items = list(data)
    items[key] = _replaced(items[key], rest, new)  # type: ignore[index]
    return items


def _field(obj: Any, key: str | int) -> str | None:
    """The attribute of a model or dataclass that recorded `key` (its name or alias) is."""
    fields = getattr(type(obj), "__pydantic_fields__", None)
    if isinstance(fields, dict):
        for name, info in fields.items():
            if key in (name, getattr(info, "alias", None), getattr(info, "validation_alias", None)):
                return str(name)
        return None
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        names = {f.name for f in dataclasses.fields(obj)}
        return key if isinstance(key, str) and key in names else None
    return None


def _children(obj: Any, key: str | int) -> list[Any]:
    """What in a rebuilt value recorded `key` under `obj` became (every member of a set,
    which has no order); none when it cannot be told."""
    if isinstance(obj, dict):
        return [v for k, v in obj.items() if k == key or json_key(k) == key][:1]
    if isinstance(obj, list | tuple):
        return [obj[key]] if isinstance(key, int) and -len(obj) <= key < len(obj) else []
    if isinstance(obj, set | frozenset):
        return list(obj)
    name = _field(obj, key)
    return [] if name is None else [getattr(obj, name)]


def _put(obj: Any, path: tuple[str | int, ...], new: Any) -> Any:
    """`obj` with `new` at recorded `path` (models and dataclasses set in place, a tuple
    made anew); _MISSING when there is no such place."""
    if not path:
        return _MISSING  # the whole result a placeholder: nothing of its type to hand over
    key, rest = path[0], path[1:]
    if isinstance(obj, dict):
        keys = [k for k in obj if k == key or json_key(k) == key][:1]
        if not keys:
            return _MISSING
        child = _put(obj[keys[0]], rest, new) if rest else new
        if child is not _MISSING:
            obj[keys[0]] = child
        return obj if child is not _MISSING else _MISSING
    if isinstance(obj, list | tuple):
        if not isinstance(key, int) or not -len(obj) <= key < len(obj):
            return _MISSING
        child = _put(obj[key], rest, new) if rest else new
        if child is _MISSING:
            return _MISSING
        items = list(obj)
        items[key] = child
        if isinstance(obj, list):
            obj[:] = items
            return obj
        made = getattr(type(obj), "_make", None)  # a named tuple
        return made(items) if made is not None else type(obj)(items)
    name = _field(obj, key)
    if name is None:
        return _MISSING
    child = _put(getattr(obj, name), rest, new) if rest else new
    if child is _MISSING:
        return _MISSING
    if hasattr(obj, "__pydantic_fields__") and hasattr(obj, "__dict__"):
        obj.__dict__[name] = child  # a model, frozen or not: no validation of the placeholder
    else:
        object.__setattr__(obj, name, child)  # a dataclass, frozen or not
    return obj


def _typed_legacy(
    adapter: Any, data: Any, value: Any, skip: dict[tuple[str | int, ...], Any]
) -> Any:
    """`value` validated again where `data` holds a path's repr that became a path, or
    `base64:` text that became bytes (both validate as they are): the legacy forms, read
    only where the annotation made that type of them."""
    mended = data
    for path, text in _strings(data):
        if path in skip:
            continue
        legacy = _legacy_form(text)
        if legacy is text:
            continue
        kind: type[Any] = bytes if isinstance(legacy, bytes) else PurePath
        made = [value]
        for key in path:
            made = [child for node in made for child in _children(node, key)]
        if any(isinstance(m, kind) for m in made):
            mended = _replaced(mended, path, legacy)
    if mended is data:
        return value
    try:
        return _validate(adapter, mended)
    except Exception:  # never so: the same types, given what they were made from
        return value


def _strings(data: Any) -> list[tuple[tuple[str | int, ...], str]]:
    """Every string in `data` and where it is."""
    found: list[tuple[tuple[str | int, ...], str]] = []
    stack: list[tuple[tuple[str | int, ...], Any]] = [((), data)]
    while stack:
        path, node = stack.pop()
        if isinstance(node, str):
            found.append((path, node))
        elif isinstance(node, dict):
            stack.extend(((*path, k), v) for k, v in node.items() if isinstance(k, str))
        elif isinstance(node, list):
            stack.extend(((*path, i), v) for i, v in enumerate(node))
    return found


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
    hidden: tuple[Hidden, ...] = ()  # placeholders where the annotation expects another type
    kept: bool = False  # rebuilt with those placeholders in place, not handed over as data
    unusable: str = ""  # why the function's return annotation is not used, when it has one

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
            f"({_a(given)}): its return annotation is not used, as {unusable}; "
            f"{usable_remedy(unusable)} or give it decode="
        )
    return (
        f"{function} returned {_a(kind)}{part}, which replay gives back as plain data "
        f"({_a(given)}): annotate {function} with its return type (`-> {short}`) or give it "
        f"decode= to get {_a(short) if short != kind else 'it'} back"
    )


def usable_remedy(unusable: str) -> str:
    """How to make an annotation that is not used, as `unusable` says, one replay uses."""
    if unusable.startswith(_UNBUILT):
        return "make it a type pydantic builds (a dataclass, a pydantic model)"
    return (
        "make it one that resolves when the function is first called (a class imported "
        "outside `if TYPE_CHECKING:`, defined at module level)"
    )


def hidden_note(function: str, value: Any, back: Rebuilt, declared: str) -> str:
    """The note that recording hid values of `function`'s result by their names where its
    annotation `declared` expects another type (`back`: what replay makes of the data)."""
    hidden = back.hidden
    parts = [
        f"{h.where} (`{h.placeholder}`"
        + (" in the golden, where the annotation" if i == 0 else ", where it")
        + f" expects {h.expected})"
        for i, h in enumerate(hidden)
    ]
    many = len(hidden) > 1
    names = ", ".join(parts[:-1]) + " and " + parts[-1] if many else parts[0]
    whose = "their names, as credentials" if many else "its name, as a credential's"
    placeholders = "placeholders" if many else "placeholder"
    if back.rebuilt:
        outcome = f"replay hands the agent the {placeholders} there"
    else:
        outcome = (
            f"replay cannot rebuild `{declared}` with the {placeholders} there and hands the "
            f"agent the data ({_a(type_name(back.value))})"
        )
    return (
        f"{function} returned {_a(type_name(value))} whose {names} recording hid by {whose}: "
        f"{outcome}; {hidden_remedy(function, hidden)}"
    )


def hidden_remedy(function: str, hidden: tuple[Hidden, ...]) -> str:
    """What to do about values recording hid by their names where another type is expected."""
    if len(hidden) > 1:
        names = ", ".join(h.where for h in hidden[:-1]) + " and " + hidden[-1].where
        return (
            f"{names} are hidden in the golden by their names: rename those that hold no "
            "secret (see the names redaction hides under Secrets in the README) and record "
            f"the golden again; else give {function} decode= to fill them in for replay"
        )
    names = hidden[0].where
    return (
        f"{names} is hidden in the golden by its name: if it holds no secret, rename it (see "
        "the names redaction hides under Secrets in the README) and record the golden again; "
        f"else give {function} decode= to fill it in for replay"
    )
