"""Turn what agents pass around into plain JSON-like data (a deep copy, taken at call time)."""

from __future__ import annotations

import base64
import copy
import dataclasses
import datetime as dt
import enum
import json
import marshal
import re
from collections.abc import Mapping
from typing import Any, NamedTuple

_SCALARS = (str, int, float, bool, type(None))


def to_jsonable(value: Any, _depth: int = 0) -> Any:
    """A JSON-like deep copy of `value`: dicts, lists, str, int, float, bool, None."""
    if isinstance(value, _SCALARS):
        return value
    if _depth == 0 and isinstance(value, dict | list):
        # plain JSON data (the common case) copies fastest through the C encoder
        try:
            return json.loads(json.dumps(value, check_circular=False))
        except (TypeError, ValueError, RecursionError):
            pass
    if _depth > 200:
        return repr(value)
    nxt = _depth + 1
    if isinstance(value, Mapping):
        return {json_key(k): to_jsonable(v, nxt) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_jsonable(v, nxt) for v in value]
    if isinstance(value, set | frozenset):
        items = [to_jsonable(v, nxt) for v in value]
        try:
            return sorted(items)
        except TypeError:
            return sorted(items, key=repr)
    if callable(getattr(value, "model_dump", None)) and not isinstance(value, type):
        return to_jsonable(_model_data(value), nxt)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_jsonable(getattr(value, f.name), nxt) for f in dataclasses.fields(value)}
    if isinstance(value, enum.Enum):
        return to_jsonable(value.value, nxt)
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, bytes | bytearray):
        try:
            return bytes(value).decode("utf-8")
        except UnicodeDecodeError:
            return "base64:" + base64.b64encode(bytes(value)).decode("ascii")
    return repr(value)


def _model_data(model: Any) -> Any:
    """A pydantic model's JSON data; where its own serializer cannot write JSON (bytes that
    are not UTF-8 under the default `ser_json_bytes`), its Python data, which `to_jsonable`
    then writes (such bytes as `base64:` text)."""
    try:
        return model.model_dump(mode="json")
    except Exception:  # whatever the model's serializer raises
        return model.model_dump()


def json_key(key: Any) -> str:
    """A dict key as JSON writes it (`None` → `null`, `True` → `true`, `1.5` → `1.5`): the
    same spelling whether or not the rest of the value is plain JSON data. Other keys (a
    tuple, a date) as `str()`."""
    if isinstance(key, str):
        return str.__str__(key)
    if key is None or isinstance(key, bool):
        return "null" if key is None else "true" if key else "false"
    if isinstance(key, int):
        return int.__repr__(key)
    if isinstance(key, float):
        return json.dumps(float(key))  # NaN, Infinity as JSON writes them
    return str(key)


class LostKeys(NamedTuple):
    """Keys of one dict that the data form writes alike, so that a golden keeps one."""

    path: tuple[str | int, ...]
    keys: tuple[str, ...]  # their reprs (`1`, `'1'`)
    written: str  # how each is written


def lost_keys(value: Any, _path: tuple[str | int, ...] = (), _depth: int = 0) -> LostKeys | None:
    """The first dict in `value` whose keys `to_jsonable` writes alike (`1` and `'1'` both
    as `"1"`, `None` and `'null'`): written as data, all but one of them would be lost.
    None when no keys collide. Only keys that are not strings can collide."""
    if isinstance(value, _SCALARS) or _depth > 200:
        return None
    nxt = _depth + 1
    parts: Any = ()
    if isinstance(value, Mapping):
        if not all(type(key) is str for key in value):  # only other keys can collide
            written: dict[str, Any] = {}
            for key in value:
                spelled = json_key(key)
                if spelled in written:
                    return LostKeys(_path, (repr(written[spelled]), repr(key)), spelled)
                written[spelled] = key
        parts = ((json_key(k), v) for k, v in value.items())
    elif isinstance(value, list | tuple | set | frozenset):
        parts = enumerate(value)
    elif callable(getattr(value, "model_dump", None)) and not isinstance(value, type):
        # its fields by name; a `dict[int | str, X]` field keeps keys that are not strings
        try:
            dumped = value.model_dump()
        except Exception:  # a model whose serializer fails: written as `to_jsonable` can
            return None
        return lost_keys(dumped, _path, nxt) if isinstance(dumped, Mapping) else None
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        parts = ((f.name, getattr(value, f.name)) for f in dataclasses.fields(value))
    else:
        return None
    for key, part in parts:
        found = lost_keys(part, (*_path, key), nxt)
        if found is not None:
            return found
    return None


_PLAIN_TYPES = (str, int, float, bool, type(None))


def unplain(
    value: Any, _path: tuple[str | int, ...] = (), _depth: int = 0
) -> tuple[tuple[str | int, ...], str] | None:
    """The first part of `value` that is not plain JSON data (dicts with string keys,
    lists, strings, numbers, booleans, None, each of exactly that type), with what it is
    (`agent.Order`, `tuple`, `int key 7`): what replay, which hands back data, would give
    back as something else. None for plain data."""
    kind = type(value)
    if kind in _PLAIN_TYPES:
        return None
    if _depth > 200:
        return None
    nxt = _depth + 1
    if kind is dict:
        for key, part in value.items():
            if type(key) is not str:
                return (*_path, json_key(key)), f"{type_name(key)} key {key!r}"
            found = unplain(part, (*_path, key), nxt)
            if found is not None:
                return found
        return None
    if kind is list:
        for index, part in enumerate(value):
            found = unplain(part, (*_path, index), nxt)
            if found is not None:
                return found
        return None
    return _path, type_name(value)


def type_name(value: Any) -> str:
    """`agent.Order`; builtins without their module (`tuple`, `bytes`)."""
    kind = type(value)
    if kind.__module__ == "builtins":
        return kind.__qualname__
    return f"{kind.__module__}.{kind.__qualname__}"


_ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+")


class Formless(NamedTuple):
    """A part of a value that has no data form: where it is, its type, its repr."""

    path: tuple[str | int, ...]
    kind: str  # `module.Qualname` of its type
    text: str  # its repr, which holds a memory address


def formless(value: Any, _path: tuple[str | int, ...] = (), _depth: int = 0) -> Formless | None:
    """The first part of `value` that `to_jsonable` can write only as a repr holding a
    memory address (`<agent.Agent object at 0x7f…>`, a function, a generator): a form that
    changes every run, so a golden holding it fails its own replay. None when every part
    has a data form (plain data, dataclasses, pydantic models, enums, dates, bytes, or an
    object whose repr holds no address, such as `Decimal('1.5')`). Strings are data, also
    one that reads like such a repr."""
    if isinstance(value, _SCALARS):
        return None
    if _depth == 0 and isinstance(value, dict | list):
        try:  # plain JSON data (the common case) has a data form throughout
            json.dumps(value, check_circular=False)
            return None
        except (TypeError, ValueError, RecursionError):
            pass
    if _depth > 200:
        return None  # to_jsonable gives up there too
    nxt = _depth + 1
    parts: Any = ()
    if isinstance(value, Mapping):
        parts = ((json_key(k), v) for k, v in value.items())
    elif isinstance(value, list | tuple | set | frozenset):
        parts = enumerate(value)
    elif callable(getattr(value, "model_dump", None)) and not isinstance(value, type):
        return formless(_model_data(value), _path, nxt)
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        parts = ((f.name, getattr(value, f.name)) for f in dataclasses.fields(value))
    elif isinstance(value, enum.Enum):
        return formless(value.value, _path, nxt)
    elif isinstance(value, dt.datetime | dt.date | dt.time | bytes | bytearray):
        return None
    else:
        text = repr(value)
        if not _ADDRESS.search(text):
            return None
        kind = type(value)
        return Formless(_path, f"{kind.__module__}.{kind.__qualname__}", text)
    for key, part in parts:
        found = formless(part, (*_path, key), nxt)
        if found is not None:
            return found
    return None


_ATOMS = (str, int, float, type(None))  # bool is an int; a tuple checks faster than a union


def plain_copy(value: Any) -> Any:
    """A deep copy of recorded data (what replay hands the agent, so that an agent changing
    what it was given cannot change the golden). Plain data copies through `marshal`, about
    4x faster than a JSON round trip; anything else through `copy.deepcopy`."""
    if isinstance(value, _ATOMS):
        return value
    try:
        return marshal.loads(marshal.dumps(value))
    except (ValueError, TypeError):  # an object marshal does not know, or too deep
        return copy.deepcopy(value)
