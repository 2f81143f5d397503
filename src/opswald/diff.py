"""Field-level differences between JSON-like values (via deepdiff), rendered as plain text.

`differences` compares two values and returns `Difference`s in the golden's terms, in the
order their paths appear in the data. `render_verdict` turns a `Verdict` into the
snapshot-style text printed on failure: bounded in size, never coloured, never raising.
"""

from __future__ import annotations

import difflib
import gc
import json
import math
import sys
import threading
import unicodedata
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Literal

from opswald.jsonable import to_jsonable
from opswald.paths import Path, drop
from opswald.verdict import (
    DIFFERENCE_LIMIT,
    MISSING,
    Difference,
    Finding,
    Verdict,
)

__all__ = [
    "DiffMode",
    "differences",
    "json_equal",
    "more_differences",
    "plainly_equal",
    "pretty",
    "render_difference",
    "render_finding",
    "render_verdict",
    "short_repr",
]

DiffMode = Literal["detailed", "short", "disabled"]

SHORT_WIDTH = 80  # a value in a `where: golden → actual` line
PRETTY_WIDTH = 500  # a value in a `- golden` / `+ actual` block
MAX_TEXT_LINES = 40  # lines of one multi-line string diff
MAX_LINE_WIDTH = 300  # characters of one line of a multi-line string diff
CONTEXT_LINES = 3
_MAX_MATCHED_LINES = 2000  # lines of a changed region handed to difflib
# Containers with more children than _SPLIT_AT, or holding more values further down and
# differing, are split before deepdiff sees them; ones with few children are first compared
# whole when that takes looking at no more than _COMPARE_AT values.
_SPLIT_AT = 32
_COMPARE_AT = 1024

LEGEND = "[- golden] [+ actual]"


# --- comparing ---------------------------------------------------------------------------


def json_equal(a: Any, b: Any) -> bool:
    """Equality of JSON-like values: `1 == 1.0`, but `True != 1`; NaN equals NaN."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return a == b or (_is_nan(a) and _is_nan(b))
    if isinstance(a, dict):
        if not isinstance(b, dict) or len(a) != len(b):
            return False
        return all(k in b and json_equal(v, b[k]) for k, v in a.items())
    if isinstance(a, list | tuple):
        if not isinstance(b, list | tuple) or len(a) != len(b):
            return False
        return all(json_equal(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(b, dict | list | tuple):
        return False
    try:
        return bool(a == b)
    except Exception:  # exotic objects with a broken __eq__
        return a is b


def plainly_equal(a: Any, b: Any) -> bool:
    """A fast test that implies `json_equal(a, b)`, for values that are usually equal (a
    request or tool arguments against the recorded ones): Python's `==` first, in C, then
    a look at what `==` takes as equal and JSON does not: `True == 1`, `False == 0.0`.
    False leaves it to `json_equal` (NaN, a tuple for a list)."""
    try:
        return bool(a == b) and _kinds_alike(a, b)
    except RecursionError:
        return False


def _kinds_alike(x: Any, y: Any) -> bool:
    """Of two values equal under `==`: no bool where the other has a number."""
    kind = type(x)
    if kind is not type(y):  # two kinds of number, say
        if kind is bool or type(y) is bool:
            return False
        return json_equal(x, y) if kind in _NESTED or type(y) in _NESTED else True
    if kind is dict:
        for key, value in x.items():
            part = type(value)
            if part is str or value is None:  # equal to a str, or None, only
                continue
            if (part in _NESTED or part is not type(y[key])) and not _kinds_alike(value, y[key]):
                return False
    elif kind is list or kind is tuple:
        for value, other in zip(x, y, strict=True):
            part = type(value)
            if part is str or value is None:
                continue
            if (part in _NESTED or part is not type(other)) and not _kinds_alike(value, other):
                return False
    return True


_NESTED = frozenset({dict, list, tuple})


def _is_nan(x: Any) -> bool:
    return isinstance(x, float) and math.isnan(x)


def _same_number(a: Any, b: Any) -> bool:
    numbers = (int, float)
    if isinstance(a, bool) or isinstance(b, bool):
        return False
    return isinstance(a, numbers) and isinstance(b, numbers) and json_equal(a, b)


def differences(
    golden: Any,
    actual: Any,
    *,
    base: Path = (),
    step: int | None = None,
    ignore: Sequence[Path] = (),
    limit: int = DIFFERENCE_LIMIT,
) -> list[Difference]:
    """The fields in which `actual` differs from `golden`, first `limit` in path order.

    Paths are `base` + the path inside the values; `ignore` holds parsed glob patterns
    relative to the values' root (without `base`) whose matches are not compared.
    Lists are compared index by index (linear time), except two of other lengths that
    differ only in elements inserted or removed in one place (`lined_up`).
    """
    if golden is MISSING or actual is MISSING:
        if golden is MISSING and actual is MISSING:
            return []
        g = golden if golden is MISSING else to_jsonable(golden)
        a = actual if actual is MISSING else to_jsonable(actual)
        return [Difference(path=tuple(base), golden=g, actual=a, step=step)][: max(limit, 0)]
    # Deep copies only when parts must be dropped: `_pieces` converts what is not plain
    # JSON data where it meets it, so equal parts are never copied (copying both sides of
    # two 20k-element lists cost more than comparing them, and the collector's passes over
    # the copies grew faster than the data).
    g = drop(to_jsonable(golden), ignore) if ignore else golden
    a = drop(to_jsonable(actual), ignore) if ignore else actual
    out: list[Difference] = []
    for rel, g_part, a_part, shifts in _pieces(g, a, ()):
        if len(out) >= limit:  # pieces come in path order: the rest would come later
            break
        path = tuple(base) + rel
        if g_part is MISSING or a_part is MISSING:
            out.append(
                Difference(path=path, golden=g_part, actual=a_part, step=step, shifts=shifts)
            )
        else:
            out.extend(_deepdiff(g_part, a_part, base=path, step=step))
    return out[: max(limit, 0)]


_PLAIN = frozenset({dict, list, str, int, float, bool, type(None)})


def _pieces(g: Any, a: Any, path: Path) -> Iterator[tuple[Path, Any, Any, bool]]:
    """The differing parts of two values, in path order, large containers split up first,
    with whether a part one side lacks moved the elements after it (`Difference.shifts`).

    Lists and dicts with many children are split; ones with few are compared whole, and
    split when they differ and hold many values further down (a long list inside a small
    dict, at any depth) or lists of other lengths (deepdiff would pair their elements by
    position: `lined_up` does better). That keeps the work linear and lets deepdiff see
    only the few small parts that differ (it walks equal parts slowly). Values that are
    not plain JSON data are converted where they are met, and only differing parts are
    copied.
    """
    if type(g) not in _PLAIN:
        g = to_jsonable(g)
    if type(a) not in _PLAIN:
        a = to_jsonable(a)
    kind = type(g)
    if kind is not type(a) or (kind is not dict and kind is not list):
        if not json_equal(g, a):
            yield path, to_jsonable(g), to_jsonable(a), False
        return
    if len(g) + len(a) <= _SPLIT_AT:  # few children: compared whole first
        equal = _equal_within(g, a, _COMPARE_AT)
        if equal:
            return
        if equal is False and not _holds_more(g, a, _SPLIT_AT) and _lengths_alike(g, a):
            yield path, to_jsonable(g), to_jsonable(a), False  # small: deepdiff's
            return
    if kind is dict:
        if any(type(key) is not str for key in (*g, *a)):  # keys as JSON writes them
            g, a = to_jsonable(g), to_jsonable(a)
        for key, value in g.items():
            if key in a:
                yield from _pieces(value, a[key], (*path, key))
            else:
                yield (*path, key), to_jsonable(value), MISSING, False
        for key, value in a.items():
            if key not in g:
                yield (*path, key), MISSING, to_jsonable(value), False
    else:
        yield from _list_pieces(g, a, path)


def _list_pieces(g: list[Any], a: list[Any], path: Path) -> Iterator[tuple[Path, Any, Any, bool]]:
    """Two lists' differing parts: the elements inserted or removed when that is all
    that differs (`lined_up`), else element by element, the ones past the shorter end
    added or removed."""
    head = 0
    if len(g) != len(a):
        head, tail = lined_up(g, a)
        if head + tail == min(len(g), len(a)):
            longer, end = (g, len(g) - tail) if len(g) > len(a) else (a, len(a) - tail)
            for index in range(head, end):
                value = to_jsonable(longer[index])
                pair = (value, MISSING) if longer is g else (MISSING, value)
                yield (*path, index), *pair, bool(tail)
            return
    for index in range(head, max(len(g), len(a))):  # the first `head` are equal
        if index >= len(a):
            yield (*path, index), to_jsonable(g[index]), MISSING, False
        elif index >= len(g):
            yield (*path, index), MISSING, to_jsonable(a[index]), False
        else:
            yield from _pieces(g[index], a[index], (*path, index))


def lined_up(
    g: list[Any], a: list[Any], same: Callable[[Any, Any], bool] | None = None
) -> tuple[int, int]:
    """How many elements two lists share at their start, then at their end (not counting
    those again). When the two cover the shorter list, the longer one's other elements
    were inserted there (or removed) and the elements after them moved: a new tool or
    system message is one difference, not every later element changed. Each element is
    compared once or twice: linear, unlike lining up a longer stretch (as a text diff
    does), which would be quadratic in the worst case."""
    alike = same or _same  # `args: subset` lines lists up by its own rule
    shorter = min(len(g), len(a))
    head = 0
    while head < shorter and alike(g[head], a[head]):
        head += 1
    tail = 0
    while tail < shorter - head and alike(g[-1 - tail], a[-1 - tail]):
        tail += 1
    return head, tail


def _same(x: Any, y: Any) -> bool:
    """`json_equal` of two elements, converting ones that are not plain JSON data."""
    equal = _equal_within(x, y, sys.maxsize)
    if equal is None:  # a part that is not plain JSON data
        return json_equal(to_jsonable(x), to_jsonable(y))
    return equal


def _equal_within(g: Any, a: Any, budget: int) -> bool | None:
    """`json_equal(g, a)` of two containers, or None when that takes looking at more than
    `budget` values (or at one that is not plain JSON data): the caller splits them then,
    so a difference deep down is not searched for again and again on its way up."""
    stack = [(g, a)]
    while stack:
        x, y = stack.pop()
        kind = type(x)
        if kind is dict or kind is list:
            if type(y) is not kind:
                return None if type(y) not in _PLAIN else False
            if len(x) != len(y):
                return False
            budget -= len(x)
            if budget < 0:
                return None
            if kind is dict:
                for key, value in x.items():
                    if key not in y:
                        return False
                    stack.append((value, y[key]))
            else:
                stack.extend(zip(x, y, strict=True))
        elif kind not in _PLAIN or type(y) not in _PLAIN:
            return None
        elif type(y) is dict or type(y) is list or not json_equal(x, y):
            return False
    return True


def _lengths_alike(g: Any, a: Any) -> bool:
    """Whether every pair of lists two plain values hold at the same place is of one
    length: deepdiff pairs the elements of others by position, an insertion read as every
    later element changed."""
    stack = [(g, a)]
    while stack:
        x, y = stack.pop()
        kind = type(x)
        if kind is not type(y):
            continue
        if kind is list:
            if len(x) != len(y):
                return False
            stack.extend(zip(x, y, strict=True))
        elif kind is dict:
            stack.extend((value, y[key]) for key, value in x.items() if key in y)
    return True


def _holds_more(g: Any, a: Any, limit: int) -> bool:
    """Whether two values hold more than `limit` values between them, nested ones counted
    (counting stops there); a value that is not plain JSON data counts as more, to be
    converted where it is met."""
    size = 0
    stack = [g, a]
    while stack:
        value = stack.pop()
        kind = type(value)
        if kind is dict:
            size += len(value)
            stack.extend(value.values())
        elif kind is list:
            size += len(value)
            stack.extend(value)
        elif kind not in _PLAIN:
            return True
        if size > limit:
            return True
    return False


def _deepdiff(g: Any, a: Any, *, base: Path, step: int | None) -> list[Difference]:
    """deepdiff's reports for two differing values, as Differences in path order."""
    found: list[tuple[tuple[int, ...], Difference]] = []
    ranks: dict[tuple[int, int], dict[str, int]] = {}
    for raw, t1, t2 in _deepdiff_leaves(g, a):
        if _same_number(t1, t2):
            continue
        rel, order = _locate(raw, g, a, ranks)
        found.append((order, Difference(path=base + rel, golden=t1, actual=t2, step=step)))
    found.sort(key=lambda item: item[0])
    return [d for _, d in found]


# deepdiff reads its own path strings back with `ast.literal_eval`, and CPython 3.11 raises
# `SystemError: AST constructor recursion depth mismatch` when Python code runs in the
# middle of building the AST: a garbage collection the compiler's allocations set off,
# whose finalizers run code (an asyncio task that failed unobserved logs from its
# `__del__`; an agent's sub-agents in tasks, diverging, leave such tasks). A diff runs
# with the collector off, one at a time (the collector is the process's, not the thread's).
_DEEPDIFF_LOCK = threading.Lock()


def _deepdiff_leaves(g: Any, a: Any) -> list[tuple[list[Any], Any, Any]]:
    """(raw path, golden value or MISSING, actual value or MISSING) of each deepdiff report."""
    with _DEEPDIFF_LOCK:
        collecting = gc.isenabled()
        gc.disable()
        try:
            return _deepdiff_leaves_unlocked(g, a)
        finally:
            if collecting:
                gc.enable()


def _deepdiff_leaves_unlocked(g: Any, a: Any) -> list[tuple[list[Any], Any, Any]]:
    # Lazy: `import opswald` stays cheap.
    from deepdiff import DeepDiff  # type: ignore[import-untyped, unused-ignore]
    from deepdiff.helper import notpresent  # type: ignore[import-untyped, unused-ignore]

    tree = DeepDiff(
        g,
        a,
        view="tree",
        verbose_level=2,
        ignore_order=False,
        zip_ordered_iterables=True,  # index by index: difflib on long lists is quadratic
        threshold_to_diff_deeper=0,  # always descend into dicts, field by field
        ignore_nan_inequality=True,
        ignore_private_variables=False,
        log_frequency_in_sec=0,
    )
    out: list[tuple[list[Any], Any, Any]] = []
    for levels in tree.values():
        for level in levels:
            raw = level.path(output_format="list")
            t1 = MISSING if level.t1 is notpresent else level.t1
            t2 = MISSING if level.t2 is notpresent else level.t2
            out.append((list(raw) if raw is not None else [], t1, t2))
    return out


def _locate(
    raw: list[Any], g: Any, a: Any, ranks: dict[tuple[int, int], dict[str, int]]
) -> tuple[Path, tuple[int, ...]]:
    """Our path for a deepdiff path, and a sort key: position of each key in the data."""
    path: list[str | int] = []
    order: list[int] = []
    for key in raw:
        if isinstance(key, int) and not isinstance(g, dict) and not isinstance(a, dict):
            path.append(key)
            order.append(key)
            g = g[key] if isinstance(g, list) and 0 <= key < len(g) else MISSING
            a = a[key] if isinstance(a, list) and 0 <= key < len(a) else MISSING
            continue
        name = str(key)
        path.append(name)
        order.append(_key_rank(name, g, a, ranks))
        g = g.get(name, MISSING) if isinstance(g, dict) else MISSING
        a = a.get(name, MISSING) if isinstance(a, dict) else MISSING
    return tuple(path), tuple(order)


def _key_rank(key: str, g: Any, a: Any, ranks: dict[tuple[int, int], dict[str, int]]) -> int:
    """Golden keys in their order, then keys only the actual value has, in its order."""
    ident = (id(g), id(a))
    table = ranks.get(ident)
    if table is None:
        table = {}
        for side in (g, a):
            if isinstance(side, dict):
                for k in side:
                    table.setdefault(str(k), len(table))
        ranks[ident] = table
    return table.get(key, len(table))


# --- rendering values ----------------------------------------------------------------------


def _safe_repr(value: Any) -> str:
    try:
        return repr(value)
    except ValueError:  # ints beyond sys.get_int_max_str_digits()
        if isinstance(value, int):
            return f"<int of {value.bit_length()} bits>"
        return f"<{type(value).__name__}>"
    except Exception:
        return f"<{type(value).__name__}>"


def _json_text(value: Any) -> str:
    try:
        return json.dumps(value, ensure_ascii=False, default=_safe_repr)
    except (ValueError, TypeError, RecursionError):
        return _safe_repr(value)


def _text(value: Any) -> str:
    """Strings repr'd with quotes, containers as compact JSON, null, true and false as in
    JSON (and in the golden: as they show inside a container beside them), other scalars
    repr'd."""
    if value is MISSING:
        return "<missing>"
    if isinstance(value, dict | list | tuple):
        return _json_text(value)
    if value is None or isinstance(value, bool):
        return "null" if value is None else str(value).lower()
    return _safe_repr(value)


def short_repr(value: Any, width: int = SHORT_WIDTH) -> str:
    """A one-line view of `value`, cut to about `width` characters with `…`."""
    text = _text(value)
    return text if len(text) <= width else text[: width - 1] + "…"


def pretty(value: Any, width: int = PRETTY_WIDTH) -> str:
    """The full one-line view of `value`, cut at `width` characters with `… (N more chars)`."""
    text = _text(value)
    if len(text) <= width:
        return text
    return f"{text[:width]}… ({len(text) - width} more chars)"


def _clip(line: str) -> str:
    if len(line) <= MAX_LINE_WIDTH:
        return line
    return f"{line[:MAX_LINE_WIDTH]}… ({len(line) - MAX_LINE_WIDTH} more chars)"


def _bounded(lines: list[str]) -> list[str]:
    if len(lines) <= MAX_TEXT_LINES:
        return lines
    return [*lines[:MAX_TEXT_LINES], f"  ... ({len(lines) - MAX_TEXT_LINES} more lines)"]


def _is_text(value: Any) -> bool:
    return isinstance(value, str) and "\n" in value


def _side_lines(sign: str, value: Any) -> list[str]:
    if _is_text(value):
        return _bounded([_clip(f"{sign} {line}") for line in value.splitlines()])
    return [f"{sign} {pretty(value)}"]


def _text_diff(old: str, new: str) -> list[str]:
    """Two multi-line strings diffed line by line, with at most 3 lines of context."""
    a, b = old.splitlines(), new.splitlines()
    if a == b:  # only line endings differ: show both exactly
        return [f"- {pretty(old)}", f"+ {pretty(new)}"]
    head = 0
    while head < min(len(a), len(b)) and a[head] == b[head]:
        head += 1
    tail = 0
    while tail < min(len(a), len(b)) - head and a[-1 - tail] == b[-1 - tail]:
        tail += 1
    lead, trail = min(head, CONTEXT_LINES), min(tail, CONTEXT_LINES)
    a_mid = a[head - lead : len(a) - tail + trail]
    b_mid = b[head - lead : len(b) - tail + trail]
    cut = len(a_mid) > _MAX_MATCHED_LINES or len(b_mid) > _MAX_MATCHED_LINES
    a_mid, b_mid = a_mid[:_MAX_MATCHED_LINES], b_mid[:_MAX_MATCHED_LINES]
    out: list[str] = ["  ..."] if head > lead else []
    last = 0
    for group in difflib.SequenceMatcher(None, a_mid, b_mid).get_grouped_opcodes(CONTEXT_LINES):
        if group[0][1] > last:
            out.append("  ...")
        for tag, i1, i2, j1, j2 in group:
            if tag == "equal":
                out.extend(f"  {line}" for line in a_mid[i1:i2])
                continue
            out.extend(f"- {line}" for line in a_mid[i1:i2])
            out.extend(f"+ {line}" for line in b_mid[j1:j2])
        last = group[-1][2]
    if cut or last < len(a_mid) or tail > trail:
        out.append("  ...")
    return _bounded([_clip(line) for line in out])


def views(golden: Any, actual: Any, width: int, *, more: bool = False) -> tuple[str, str]:
    """Two differing values side by side, each about `width` characters: long texts that
    differ late are shown from a little before their first difference, and texts that
    print alike (composed and decomposed accents, look-alike spaces) with escapes. `more`:
    a cut value ends `… (N more chars)`, as `pretty` has it."""
    g, a = _text(golden), _text(actual)
    if g != a and _looks(g) == _looks(a):
        g, a = ascii(golden), ascii(actual)
    if len(g) > width or len(a) > width:
        pairs = enumerate(zip(g, a, strict=False))
        same = next((i for i, (x, y) in pairs if x != y), min(len(g), len(a)))
        start = max(0, same - width // 4) if same > width // 2 else 0
        g, a = (("…" if start else "") + t[start:] for t in (g, a))
    return _cut(g, width, more), _cut(a, width, more)


def _cut(text: str, width: int, more: bool) -> str:
    if len(text) <= width:
        return text
    return f"{text[:width]}… ({len(text) - width} more chars)" if more else text[: width - 1] + "…"


def _looks(text: str) -> str:
    """What a text looks like printed: compatibility-normalized, format characters (zero
    width spaces, joiners) left out."""
    folded = unicodedata.normalize("NFKC", text)
    return "".join(c for c in folded if unicodedata.category(c) != "Cf")


def _value_lines(golden: Any, actual: Any) -> list[str]:
    if (
        isinstance(golden, str)
        and isinstance(actual, str)
        and (_is_text(golden) or _is_text(actual))
    ):
        return _text_diff(golden, actual)
    if golden is not MISSING and actual is not MISSING:
        g, a = views(golden, actual, PRETTY_WIDTH, more=True)
        return [f"- {g}", f"+ {a}"]
    lines: list[str] = []
    if golden is not MISSING:
        lines += _side_lines("-", golden)
    if actual is not MISSING:
        lines += _side_lines("+", actual)
    return lines


# --- rendering findings --------------------------------------------------------------------


def _plain(line: str) -> str:
    """No control characters (ANSI escapes included) reach the terminal."""
    return line.translate(_CONTROL)


_CONTROL = {
    code: f"\\x{code:02x}" for code in [*range(0x20), *range(0x7F, 0xA0)] if code != 0x09
} | {0x0A: "\\n", 0x0D: "\\r"}


def render_difference(d: Difference, mode: DiffMode = "detailed") -> list[str]:
    """`where: golden → actual` (and `(cause)`, when the difference has one), then
    (detailed) `- golden` / `+ actual` value lines."""
    if mode == "disabled":
        return []
    cause = f" ({d.cause})" if d.cause else ""
    whole = _whole_step(d)
    if whole is not None:
        head, body = whole
        if mode == "short":
            return [_plain(f"{head} {short_repr(body)}{cause}")]
        golden, actual = (body, MISSING) if d.actual is MISSING else (MISSING, body)
        lines = _value_lines(golden, actual)
        return [_plain(head + cause), *(_plain(f"  {line}") for line in lines)]
    if d.golden is MISSING:
        head = f"{d.where}: {d.change}"  # added, or inserted before elements that moved
        short = f"{head} {short_repr(d.actual)}{cause}"
        head += cause
    elif d.actual is MISSING:
        head = f"{d.where}: removed"
        short = f"{head} {short_repr(d.golden)}{cause}"
        head += cause
    else:
        golden, actual = views(d.golden, d.actual, SHORT_WIDTH)
        head = short = f"{d.where}: {golden} → {actual}{cause}"
    if mode == "short":
        return [_plain(short)]
    return [_plain(head), *(_plain(f"  {line}") for line in _value_lines(d.golden, d.actual))]


_STEP_TYPES = frozenset({"user_input", "llm_call", "tool_call", "state"})


def _whole_step(d: Difference) -> tuple[str, dict[str, Any]] | None:
    """A step only one side has, named as `opswald diff` names it: the head `step 3
    inserted: tool_call audit` (numbered in the actual) or `step 3 removed: llm_call m1`
    (in the golden), and the step's fields but its type; None for any other difference."""
    if d.path or d.step is None or (d.golden is MISSING) == (d.actual is MISSING):
        return None
    one = d.actual if d.golden is MISSING else d.golden
    if not (isinstance(one, dict) and one.get("type") in _STEP_TYPES):
        return None
    name = one.get("tool") or one.get("model") or ""
    what = f"{one['type']} {name if isinstance(name, str) else ''}".rstrip()
    change = "removed" if d.actual is MISSING else "inserted"
    return f"step {d.step} {change}: {what}", {k: v for k, v in one.items() if k != "type"}


def run_step(step: int) -> str:
    """A step by the run's own numbering, which may not be the golden's: `step 6 of this
    run` (an extra call, a blocked side effect, the call a fork matched with step N)."""
    return f"step {step} of this run"


def headline(f: Finding, *, total_steps: int | None) -> str:
    """`step 5 of 7 · tool_call book_flight: message`, or the message alone; an extra
    call, which has no golden step, a blocked side effect, a call the run made live, and a
    snapshot the golden does not have by their step in the run (`step 6 of this run ·
    ...`)."""
    if f.step is None:
        return f.message
    if f.numbered_in_run:  # not in the golden's numbering
        where = run_step(f.step)
    elif total_steps is None:
        where = f"step {f.step}"
    elif f.step > total_steps:  # a step the run made past the golden's last
        where = f"step {f.step} (the golden has {_plural(total_steps, 'step')})"
    else:
        where = f"step {f.step} of {total_steps}"
    what = " ".join(part for part in (f.step_type, f.name) if part)
    return f"{where} · {what}: {f.message}" if what else f"{where} · {f.message}"


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def render_finding(
    f: Finding, *, total_steps: int | None, mode: DiffMode = "detailed", max_differences: int = 20
) -> list[str]:
    """The headline, up to `max_differences` differences, and the hint of a failing finding."""
    lines = [headline(f, total_steps=total_steps)]
    if mode != "disabled" and f.differences:
        if mode == "detailed":
            lines.append(f"  {LEGEND}")
        shown = f.differences[: max(max_differences, 0)]
        for d in shown:
            lines.extend(f"  {line}" for line in render_difference(d, mode))
        if len(f.differences) > len(shown):
            lines.append(f"  ... and {more_differences(f, len(shown))}")
    if f.failing and f.suggestion:
        first, *rest = f.suggestion.split("\n")  # a hint may quote a traceback
        lines.append(f"  hint: {first}")
        lines.extend(f"  {line}" for line in rest)
    return [_plain(line) for line in lines]


def more_differences(f: Finding, shown: int) -> str:
    """`12 more differences` past the first `shown`, or `at least 180 more differences`
    when the comparison stopped counting (`Finding.differences_cut`)."""
    text = _plural(len(f.differences) - shown, "more difference")
    return f"at least {text}" if f.differences_cut else text


def render_verdict(
    verdict: Verdict,
    *,
    total_steps: int | None,
    mode: DiffMode = "detailed",
    fix: str = "if the new behaviour is intended, accept it with --opswald-update",
    max_findings: int = 20,
    max_differences: int = 20,
) -> str:
    """Failing findings, then `also (not failing):` ones, then `fix: ...` when something failed."""
    failing = [f for f in verdict.findings if f.failing]
    others = [f for f in verdict.findings if not f.failing]
    lines: list[str] = []
    for group, indent in ((failing, ""), (others, "  ")):
        if not group:
            continue
        if indent:
            lines.append("also (not failing):")
        for f in group[: max(max_findings, 0)]:
            found = render_finding(
                f, total_steps=total_steps, mode=mode, max_differences=max_differences
            )
            lines.extend(indent + line for line in found)
        if len(group) > max_findings:
            lines.append(f"{indent}... and {_plural(len(group) - max_findings, 'more finding')}")
    if failing and fix:
        lines.append(_plain(f"fix: {fix}"))
    return "\n".join(lines)
