"""The fast argument binder of @opswald.tool/@opswald.llm records exactly what
`Signature.bind` would, including the fallbacks for calls that do not bind."""

from __future__ import annotations

import inspect
from typing import Any

import pytest

import opswald
from opswald.instrument import _binder, _bound_arguments


class Box:
    def method(self, a: int, b: int = 2, *, c: Any, d: Any = 4) -> None: ...


def positional_only(a: int, /, b: int) -> None: ...


def variadic(*args: Any, **kwargs: Any) -> None: ...


def cls_named(cls: Any, x: int) -> None: ...


@pytest.mark.parametrize(
    ("args", "kwargs"),
    [
        ((Box(), 1, 10), {"c": 3}),
        ((Box(), 1), {"c": (1, 2), "d": {"x": [1]}}),
        ((Box(),), {"a": 1, "c": 3}),
        ((Box(), 1, 10, 20), {"c": 3}),  # too many positional arguments
        ((Box(), 1), {}),  # a required argument missing
        ((Box(), 1), {"c": 3, "zz": 1}),  # an unknown keyword
        ((Box(), 1), {"a": 2, "c": 3}),  # given twice
    ],
)
def test_same_as_signature_bind(args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    sig = inspect.signature(Box.method)
    fast, slow = _binder(sig)(args, kwargs), _bound_arguments(sig, args, kwargs)
    assert fast == slow
    assert list(fast) == list(slow), "in parameter order, as the golden writes them"
    assert "self" not in fast


@pytest.mark.parametrize(
    ("fn", "args", "kwargs"),
    [(positional_only, (1, 2), {}), (variadic, (1,), {"x": 2}), (cls_named, (1, 2), {})],
)
def test_other_shapes(fn: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    sig = inspect.signature(fn)
    assert _binder(sig)(args, kwargs) == _bound_arguments(sig, args, kwargs)


def plain(a: int, b: int = 2, *, c: Any, d: Any = 4) -> None: ...


@pytest.mark.parametrize(
    "kwargs",
    [
        {"c": 3, "a": 1},  # by keywords, out of order
        {"d": [1], "c": {"x": 1}, "b": 5, "a": 1},
        {"a": 1},  # a required argument missing: the checked path
        {"a": 1, "c": 3, "zz": 1},  # an unknown keyword: the checked path
    ],
)
def test_compare_only_binding_equals_the_recorded_one(kwargs: dict[str, Any]) -> None:
    """`ordered=False` (replay compares, never keeps) may hand back the call's own keyword
    dict, in the caller's order; it still equals what a recorded call writes."""
    sig = inspect.signature(plain)
    compared, recorded = _binder(sig)((), kwargs, False), _bound_arguments(sig, (), kwargs)
    assert compared == recorded
    assert list(_binder(sig)((), kwargs)) == list(recorded), "recorded in parameter order"


@pytest.mark.parametrize(
    ("misuse", "message"),
    [
        (
            lambda: opswald.tool("weather"),
            "@opswald.tool('weather'): the decorator takes the function, and its settings by "
            "keyword: @opswald.tool(name='weather')",
        ),
        (
            lambda: opswald.llm("acme"),
            "@opswald.llm('acme'): the decorator takes the function, and its settings by "
            "keyword: @opswald.llm(provider='acme')",
        ),
        (
            lambda: opswald.tool(side_effects=True)(3),
            "@opswald.tool decorates a function, not int 3",
        ),
    ],
)
def test_a_decorator_given_a_value_for_its_keyword_says_how(misuse: Any, message: str) -> None:
    """QA (typed #7): `@opswald.tool("weather")` raised AttributeError: 'str' object has no
    attribute '__name__'; `@opswald.llm("acme")` a TypeError from `inspect`."""
    with pytest.raises(TypeError) as raised:
        misuse()
    assert str(raised.value) == message
