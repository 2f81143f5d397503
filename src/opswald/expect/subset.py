"""The "recorded ⊆ actual" comparison shared by `args: subset` and `output: json_subset`.

Dicts: every expected key must be present in the actual dict with a matching value (extra
keys allowed, recursively). Lists: the same length, elements compared by index with the
same rule (so dicts inside lists may carry extra keys); lists that differ only by elements
inserted or removed in one place report those elements, not the later ones as changed.
Anything else: JSON equality.
"""

from __future__ import annotations

from typing import Any

from opswald.diff import json_equal, lined_up
from opswald.paths import Path
from opswald.verdict import DIFFERENCE_LIMIT, MISSING, Difference

__all__ = ["is_subset", "subset_differences"]


def is_subset(expected: Any, actual: Any) -> bool:
    """True when everything in `expected` is present and equal in `actual`."""
    if isinstance(expected, dict):
        return isinstance(actual, dict) and all(
            k in actual and is_subset(v, actual[k]) for k, v in expected.items()
        )
    if isinstance(expected, list):
        return (
            isinstance(actual, list)
            and len(expected) == len(actual)
            and all(is_subset(x, y) for x, y in zip(expected, actual, strict=True))
        )
    return json_equal(expected, actual)


def subset_differences(
    expected: Any,
    actual: Any,
    *,
    base: Path = (),
    step: int | None = None,
    limit: int = DIFFERENCE_LIMIT,
) -> list[Difference]:
    """Where `actual` lacks or changes something `expected` has, in `expected`'s order."""
    out: list[Difference] = []
    _walk(expected, actual, tuple(base), step, limit, out)
    return out


def _walk(
    expected: Any, actual: Any, path: Path, step: int | None, limit: int, out: list[Difference]
) -> None:
    if len(out) >= limit:
        return
    if isinstance(expected, dict) and isinstance(actual, dict):
        for key, value in expected.items():
            if key not in actual:
                out.append(Difference(path=(*path, str(key)), golden=value, step=step))
            else:
                _walk(value, actual[key], (*path, str(key)), step, limit, out)
            if len(out) >= limit:
                return
        return
    if isinstance(expected, list) and isinstance(actual, list):
        if len(expected) != len(actual) and _one_place(expected, actual, path, step, limit, out):
            return
        for index in range(max(len(expected), len(actual))):
            if len(out) >= limit:
                return
            if index >= len(actual):
                out.append(Difference(path=(*path, index), golden=expected[index], step=step))
            elif index >= len(expected):
                out.append(Difference(path=(*path, index), actual=actual[index], step=step))
            else:
                _walk(expected[index], actual[index], (*path, index), step, limit, out)
        return
    if not json_equal(expected, actual):
        golden = MISSING if expected is MISSING else expected
        out.append(Difference(path=path, golden=golden, actual=actual, step=step))


def _one_place(
    expected: list[Any],
    actual: list[Any],
    path: Path,
    step: int | None,
    limit: int,
    out: list[Difference],
) -> bool:
    """Lists of different lengths that differ only by elements inserted or removed in one
    place (the elements before and after it matching as subsets): those elements, once
    each (an inserted one at its index in `actual`, a removed one at its index in
    `expected`), rather than every later element as changed. False, with nothing added,
    when they differ otherwise. Each element is compared once or twice: linear."""
    head, tail = lined_up(expected, actual, is_subset)
    if head + tail != min(len(expected), len(actual)):
        return False
    shifts = bool(tail)
    if len(expected) > len(actual):
        for index in range(head, len(expected) - tail):
            if len(out) >= limit:
                break
            out.append(
                Difference(path=(*path, index), golden=expected[index], step=step, shifts=shifts)
            )
    else:
        for index in range(head, len(actual) - tail):
            if len(out) >= limit:
                break
            out.append(
                Difference(path=(*path, index), actual=actual[index], step=step, shifts=shifts)
            )
    return True
