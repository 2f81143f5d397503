"""Judge the final output against the golden's (`expect.output`)."""

from __future__ import annotations

import json
import re
from typing import Any

from opswald.diff import differences, short_repr
from opswald.expect.subset import subset_differences
from opswald.jsonable import to_jsonable
from opswald.paths import Path, as_written, drop, render
from opswald.session import OutputExpect
from opswald.verdict import DIFFERENCE_LIMIT, MISSING, Difference, Finding

__all__ = ["as_text", "compare_output", "normalize_text"]

BASE: Path = ("output",)


def normalize_text(value: Any) -> Any:
    """Strings with whitespace runs collapsed and case folded, recursively in dicts and lists."""
    if isinstance(value, str):
        return " ".join(value.split()).casefold()
    if isinstance(value, dict):
        return {k: normalize_text(v) for k, v in value.items()}
    if isinstance(value, list):
        return [normalize_text(v) for v in value]
    return value


def as_text(value: Any) -> str:
    """A string as is; None as ""; anything else as its JSON text."""
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    try:
        return json.dumps(value, ensure_ascii=False, default=repr)
    except (ValueError, TypeError):  # e.g. ints beyond the str conversion limit
        return short_repr(value, width=10_000)


def compare_output(golden: Any, actual: Any, spec: OutputExpect) -> Finding | None:
    """A failing `output` finding, or None when the output matches under `spec.match`.

    `ignore_paths` (relative to the output) are dropped from both sides in every mode.
    """
    if spec.match == "ignore":
        return None
    try:
        ignore = [path for p in spec.ignore_paths for path in as_written(p, "output")]
    except ValueError as exc:
        return _finding(
            spec,
            f"bad expect.output.ignore_paths entry: {exc}",
            (),
            "write paths like `answer.id` or `items[*].ts`",
        )
    golden = drop(to_jsonable(golden), ignore)
    actual = drop(to_jsonable(actual), ignore)
    value = None if spec.value is None else drop(to_jsonable(spec.value), ignore)
    if spec.match == "exact":
        return _exact(golden, actual, spec)
    if spec.match == "normalized":
        return _normalized(golden, actual, spec)
    if spec.match == "json_subset":
        return _json_subset(golden if value is None else value, actual, spec)
    return _text_match(golden if value is None else value, actual, spec)


def _finding(
    spec: OutputExpect, detail: str, diffs: tuple[Difference, ...] | list[Difference], hint: str
) -> Finding:
    return Finding(
        kind="output",
        message=f"output differs (match: {spec.match}){': ' + detail if detail else ''}",
        differences=tuple(diffs),
        suggestion=hint,
    )


def _hint(golden: Any, actual: Any, diffs: list[Difference], mode: str) -> str:
    """What would accept this output, judged by the change itself: `normalized` only when
    the outputs differ in whitespace and case alone (all it folds)."""
    if mode == "exact" and _folding_accepts(golden, actual, diffs):
        return "only whitespace or case changed: use `match: normalized`"
    hints: list[str] = []
    inner = [d for d in diffs if len(d.path) > len(BASE)]
    if inner:
        hints.append(_ignore_hint(inner[0]))
        # json_subset allows extra keys, not extra list elements
        if isinstance(golden, dict) and all(d.change == "added" and _keyed(d) for d in inner):
            hints.append("if the agent may add keys, use `match: json_subset`")
    if any(isinstance(d.golden, str) and isinstance(d.actual, str) for d in diffs):
        hints.append(
            "if the wording may change, use `match: similar`, or `contains` or `regex` "
            "with the part that must appear as `value:`"
        )
    if not hints:
        return (
            f"the output is now {_kind(actual)}, not {_kind(golden)}; no expect.output.match "
            "but `ignore` accepts that: if the change is intended, accept it with "
            "--opswald-update"
        )
    return "; ".join(hints)


def _ignore_hint(d: Difference) -> str:
    """The ignore_paths entry that accepts difference `d`. An element inserted or removed
    before others (`shifts`) moved them: ignoring its index would drop a different element
    on each side, so the hint names the whole list (`items`, or `[*]` for an output that is
    the list)."""
    where = render(d.path[len(BASE) :])
    if not (d.shifts and isinstance(d.path[-1], int)):
        return f"if {where} varies between runs, add it to expect.output.ignore_paths"
    listed = render(d.path[len(BASE) : -1])
    return (
        f"if the elements of {listed or 'the output'} vary between runs, add "
        f"{listed or '[*]'} to expect.output.ignore_paths (not {where}: the elements "
        "after it moved)"
    )


def _keyed(d: Difference) -> bool:
    """Whether a difference is at a dict key, not at a list element."""
    return isinstance(d.path[-1], str)


def _folding_accepts(golden: Any, actual: Any, diffs: list[Difference]) -> bool:
    """Whether `match: normalized` accepts the output. Each difference must be two texts
    alike once folded; when the list may stop short of all of them, the whole output is
    compared as that match compares it (Python's == takes True for 1 and 1.0)."""
    for d in diffs:
        if not (isinstance(d.golden, str) and isinstance(d.actual, str)):
            return False
        if normalize_text(d.golden) != normalize_text(d.actual):
            return False
    if len(diffs) < DIFFERENCE_LIMIT:
        return True
    return not differences(normalize_text(golden), normalize_text(actual))


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return "a string"
    return f"the {type(value).__name__} {short_repr(value)}"


def _exact(golden: Any, actual: Any, spec: OutputExpect) -> Finding | None:
    diffs = differences(golden, actual, base=BASE)
    return _finding(spec, "", diffs, _hint(golden, actual, diffs, "exact")) if diffs else None


def _lookup(data: Any, path: Path) -> Any:
    for part in path:
        if isinstance(part, int) and isinstance(data, list) and 0 <= part < len(data):
            data = data[part]
        elif isinstance(data, dict) and str(part) in data:
            data = data[str(part)]
        else:
            return MISSING
    return data


def _normalized(golden: Any, actual: Any, spec: OutputExpect) -> Finding | None:
    diffs = differences(normalize_text(golden), normalize_text(actual), base=BASE)
    if not diffs:
        return None
    # Show the values as they really are, not their normalised forms.
    shown = [
        Difference(
            path=d.path,
            golden=_lookup(golden, d.path[len(BASE) :]),
            actual=_lookup(actual, d.path[len(BASE) :]),
            step=d.step,
        )
        for d in diffs
    ]
    return _finding(spec, "", shown, _hint(golden, actual, shown, "normalized"))


def _json_subset(expected: Any, actual: Any, spec: OutputExpect) -> Finding | None:
    if isinstance(expected, dict | list) and isinstance(actual, str):
        try:
            actual = json.loads(actual)
        except ValueError:
            diff = Difference(path=BASE, golden=expected, actual=actual)
            return _finding(
                spec,
                "the output is not JSON",
                [diff],
                "json_subset needs a dict/list output or a JSON string",
            )
    diffs = subset_differences(expected, actual, base=BASE)
    if not diffs:
        return None
    hint = (
        "every expected key must be present with an equal value (lists: same length, "
        "compared by index); drop keys that may change from expect.output.value"
    )
    return _finding(spec, "", diffs, hint)


def _text_match(expected: Any, actual: Any, spec: OutputExpect) -> Finding | None:
    text = as_text(actual)
    if spec.match == "contains":
        needle = as_text(expected)
        if needle in text:
            return None
        diff = Difference(path=BASE, golden=needle, actual=actual)
        return _finding(
            spec,
            f"the output does not contain {short_repr(needle)}",
            [diff],
            "set expect.output.value to the part that must appear (case-sensitive)",
        )
    pattern = spec.value
    if not isinstance(pattern, str):
        return _finding(
            spec, "no pattern", [], "match: regex needs the pattern in expect.output.value"
        )
    try:
        found = re.search(pattern, text)
    except re.error as exc:
        return _finding(
            spec,
            f"bad pattern {pattern!r}: {exc}",
            [],
            "fix the regular expression in expect.output.value",
        )
    if found:
        return None
    diff = Difference(path=BASE, golden=pattern, actual=actual)
    return _finding(
        spec,
        f"no match for {short_repr(pattern)}",
        [diff],
        "loosen the pattern in expect.output.value (re.search, anywhere in the text)",
    )
