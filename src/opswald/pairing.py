"""Which step of one session faces which step of another: one rule for the viewer's
compare rows, the comparison of state snapshots (`expect.state`) and `opswald diff`.

Calls first. A call the replay served faces the golden step it answered as (`matched`,
the run's record: `ReplayResult.matched`). The calls between two such calls, and all calls
of two sessions with no such record (two goldens, a saved actual), are lined up as a text
diff lines up lines (`difflib.SequenceMatcher`), so one call more or fewer moves no later
call: first by the call's fingerprint (its type, its tool or model, and what replay
matches on: the request, the tool's arguments, the user's input); calls left over with the
same type and tool or model then face each other in order (a call made with other
arguments), then calls of the same type (a call to another model or tool); the rest stand
alone.

Then the snapshots, which are never matched: between two calls that face each other, a
snapshot pairs only with a snapshot, by what they hold, keeping order: equal ones first
(lined up as calls are), then, between those, as many of the rest as both sides have,
each facing the one most like it (the fewest values that differ). A snapshot one side has
and the other has not stands alone, so it moves no other snapshot: of three snapshots
taken back to back, the first one gone is that one removed, not three changed.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Hashable, Iterator, Mapping, Sequence
from difflib import SequenceMatcher
from typing import Any

from opswald.jsonable import to_jsonable
from opswald.session import AnyStep, LLMCallStep, StateStep, ToolCallStep

__all__ = ["content_key", "leaves", "step_pairs"]

Key = Callable[[AnyStep], Hashable]
_MAX_WORK = 40_000  # golden calls times actual calls of one stretch given to SequenceMatcher


def step_pairs(
    golden: Sequence[AnyStep],
    actual: Sequence[AnyStep],
    matched: Mapping[int, int] | None = None,
) -> list[tuple[int, int]]:
    """(golden step, actual step) for every step of both, by number; 0 where a side has
    none. `matched`: the golden step each served call of `actual` answered as, by the
    actual step's number."""
    return _with_snapshots(golden, actual, _call_rows(golden, actual, matched))


def _call_rows(
    golden: Sequence[AnyStep], actual: Sequence[AnyStep], matched: Mapping[int, int] | None
) -> list[tuple[int, int]]:
    """The calls lined up: a served call beside the golden step it answered as (those
    pairs stand as they are, in any order: the tools of one turn may complete in another
    order), the calls between such pairs aligned (`_aligned`)."""
    g_calls = [n for n, step in enumerate(golden, start=1) if not isinstance(step, StateStep)]
    a_calls = [n for n, step in enumerate(actual, start=1) if not isinstance(step, StateStep)]
    g_set, a_set = set(g_calls), set(a_calls)
    found = {a: g for a, g in (matched or {}).items() if a in a_set and g in g_set}
    used = set(found.values())
    rows: list[tuple[int, int]] = []
    placed: set[int] = set()
    at, loose = 0, []  # g_calls[at:]: the golden calls not yet passed
    for a in a_calls:
        g = found.get(a)
        if g is None or g in placed:
            loose.append(a)
            continue
        between = []
        while at < len(g_calls) and g_calls[at] <= g:
            if g_calls[at] not in used:
                between.append(g_calls[at])
            at += 1
        rows.extend(_aligned(between, loose, golden, actual))
        rows.append((g, a))
        placed.add(g)
        loose = []
    rest = [x for x in g_calls[at:] if x not in used]
    rows.extend(_aligned(rest, loose, golden, actual))
    return rows


def _aligned(
    g_numbers: list[int],
    a_numbers: list[int],
    golden: Sequence[AnyStep],
    actual: Sequence[AnyStep],
    keys: tuple[Key, ...] | None = None,
) -> Iterator[tuple[int, int]]:
    """Unmatched golden and actual calls lined up: equal keys face each other; what is
    left between them is lined up again by the next, coarser key; calls left at the last
    key stand alone (the golden's first)."""
    keys = _KEYS if keys is None else keys
    if not g_numbers or not a_numbers or not keys:
        yield from ((g, 0) for g in g_numbers)
        yield from ((0, a) for a in a_numbers)
        return
    key, coarser = keys[0], keys[1:]
    g_keys = [key(golden[g - 1]) for g in g_numbers]
    a_keys = [key(actual[a - 1]) for a in a_numbers]
    head = 0  # the ends the two have in common: the usual case, and linear
    while head < min(len(g_keys), len(a_keys)) and g_keys[head] == a_keys[head]:
        head += 1
    tail = 0
    while tail < min(len(g_keys), len(a_keys)) - head and g_keys[~tail] == a_keys[~tail]:
        tail += 1
    yield from zip(g_numbers[:head], a_numbers[:head], strict=True)
    g_mid, a_mid = g_numbers[head : len(g_keys) - tail], a_numbers[head : len(a_keys) - tail]
    if not g_mid or not a_mid:
        yield from _aligned(g_mid, a_mid, golden, actual, ())
    else:
        gk_mid, ak_mid = g_keys[head : len(g_keys) - tail], a_keys[head : len(a_keys) - tail]
        if len(g_mid) * len(a_mid) > _MAX_WORK:  # SequenceMatcher is quadratic
            opcodes = _greedy_opcodes(gk_mid, ak_mid)
        else:
            matcher = SequenceMatcher(None, gk_mid, ak_mid, autojunk=False)
            opcodes = [(op, g0, g1, a0, a1) for op, g0, g1, a0, a1 in matcher.get_opcodes()]
        for op, g0, g1, a0, a1 in opcodes:
            if op == "equal":
                yield from zip(g_mid[g0:g1], a_mid[a0:a1], strict=True)
            else:
                yield from _aligned(g_mid[g0:g1], a_mid[a0:a1], golden, actual, coarser)
    yield from zip(g_numbers[len(g_keys) - tail :], a_numbers[len(a_keys) - tail :], strict=True)


def _greedy_opcodes(
    g_keys: Sequence[Hashable], a_keys: Sequence[Hashable], window: int = 64
) -> list[tuple[str, int, int, int, int]]:
    """SequenceMatcher's opcodes (`equal`, and `replace` for the rest) found in one pass
    for long stretches: equal keys pair; where they differ, the nearer of the next golden
    key among the actual's following ones and the reverse (within `window`) is skipped to."""
    ops: list[tuple[str, int, int, int, int]] = []
    i = j = g_from = a_from = 0
    while i < len(g_keys) and j < len(a_keys):
        if g_keys[i] == a_keys[j]:
            if (g_from, a_from) != (i, j):
                ops.append(("replace", g_from, i, a_from, j))
            ops.append(("equal", i, i + 1, j, j + 1))
            i, j = i + 1, j + 1
            g_from, a_from = i, j
            continue
        reach = range(1, window)
        in_g = next((d for d in reach if i + d < len(g_keys) and g_keys[i + d] == a_keys[j]), 0)
        in_a = next((d for d in reach if j + d < len(a_keys) and a_keys[j + d] == g_keys[i]), 0)
        if in_g and (not in_a or in_g <= in_a):
            i += in_g
        elif in_a:
            j += in_a
        else:
            i, j = i + 1, j + 1
    if (g_from, a_from) != (len(g_keys), len(a_keys)):
        ops.append(("replace", g_from, len(g_keys), a_from, len(a_keys)))
    return ops


def _with_snapshots(
    golden: Sequence[AnyStep], actual: Sequence[AnyStep], call_rows: list[tuple[int, int]]
) -> list[tuple[int, int]]:
    """The call rows with the snapshots put in: before each pair of calls, the steps of
    each side not yet placed that come before it, a snapshot facing a snapshot as
    `_snapshot_pairs` pairs them, every other step alone."""
    g_snaps = [n for n, step in enumerate(golden, start=1) if isinstance(step, StateStep)]
    a_snaps = [n for n, step in enumerate(actual, start=1) if isinstance(step, StateStep)]
    rows: list[tuple[int, int]] = []
    gi = ai = 0  # the next snapshot of each side to place
    g_alone: list[int] = []  # calls facing nothing, waiting for the next pair of calls
    a_alone: list[int] = []
    for g, a in call_rows:
        if not (g and a):
            (g_alone if g else a_alone).append(g or a)
            continue
        g_before = []
        while gi < len(g_snaps) and g_snaps[gi] < g:
            g_before.append(g_snaps[gi])
            gi += 1
        a_before = []
        while ai < len(a_snaps) and a_snaps[ai] < a:
            a_before.append(a_snaps[ai])
            ai += 1
        rows.extend(
            _in_order(sorted(g_alone + g_before), sorted(a_alone + a_before), golden, actual)
        )
        rows.append((g, a))
        g_alone, a_alone = [], []
    rows.extend(
        _in_order(sorted(g_alone + g_snaps[gi:]), sorted(a_alone + a_snaps[ai:]), golden, actual)
    )
    return rows


def _in_order(
    g_numbers: list[int],
    a_numbers: list[int],
    golden: Sequence[AnyStep],
    actual: Sequence[AnyStep],
) -> Iterator[tuple[int, int]]:
    """Snapshots and calls facing nothing, in order: the snapshots face each other as
    `_snapshot_pairs` pairs them; a call stands alone (the golden's first), and so does a
    snapshot with no partner."""
    g_snaps = [g for g in g_numbers if isinstance(golden[g - 1], StateStep)]
    a_snaps = [a for a in a_numbers if isinstance(actual[a - 1], StateStep)]
    partner = dict(_snapshot_pairs(g_snaps, a_snaps, golden, actual))
    i = j = 0
    while i < len(g_numbers) or j < len(a_numbers):
        g = g_numbers[i] if i < len(g_numbers) else 0
        a = a_numbers[j] if j < len(a_numbers) else 0
        g_snap = bool(g) and isinstance(golden[g - 1], StateStep)
        a_snap = bool(a) and isinstance(actual[a - 1], StateStep)
        if g and a:
            if not g_snap:
                a = 0  # a call first, alone
            elif not a_snap:
                g = 0
            elif partner.get(g) != a:
                # the pairs keep order: the one of the two with no partner comes first
                g, a = (g, 0) if g not in partner else (0, a)
        i += bool(g)
        j += bool(a)
        yield g, a


def _snapshot_pairs(
    g_snaps: list[int],
    a_snaps: list[int],
    golden: Sequence[AnyStep],
    actual: Sequence[AnyStep],
) -> list[tuple[int, int]]:
    """The snapshots of a stretch between two calls that face each other, paired by what
    they hold, keeping order: equal ones first (lined up as `_aligned` lines up calls),
    then, between those, as many of the rest as both sides have, the most alike."""
    if not g_snaps or not a_snaps:
        return []
    g_keys = [content_key(golden[g - 1]) for g in g_snaps]
    a_keys = [content_key(actual[a - 1]) for a in a_snaps]
    if g_keys == a_keys:  # the usual case: nothing changed
        return list(zip(g_snaps, a_snaps, strict=True))
    if len(g_snaps) * len(a_snaps) > _MAX_WORK:  # SequenceMatcher is quadratic
        opcodes = _greedy_opcodes(g_keys, a_keys)
    else:
        matcher = SequenceMatcher(None, g_keys, a_keys, autojunk=False)
        opcodes = [(op, g0, g1, a0, a1) for op, g0, g1, a0, a1 in matcher.get_opcodes()]
    pairs: list[tuple[int, int]] = []
    for op, g0, g1, a0, a1 in opcodes:
        if op == "equal":
            pairs.extend(zip(g_snaps[g0:g1], a_snaps[a0:a1], strict=True))
        else:
            pairs.extend(_most_alike(g_snaps[g0:g1], a_snaps[a0:a1], golden, actual))
    if len(pairs) < min(len(g_snaps), len(a_snaps)):
        # snapshots left alone on both sides: taken in another order (a swap), which
        # pairing by content would hide; in order, each place shows what it holds now
        return list(zip(g_snaps, a_snaps, strict=False))
    return pairs


_MAX_ALIKE = 2_500  # snapshots times snapshots of one stretch compared one by one


def _most_alike(
    g_snaps: list[int],
    a_snaps: list[int],
    golden: Sequence[AnyStep],
    actual: Sequence[AnyStep],
) -> list[tuple[int, int]]:
    """Changed snapshots paired, keeping order: each of the fewer side faces one of the
    other's, chosen so that the values that differ are the fewest (on a tie, the earlier).
    Two sides of one size pair in order; past `_MAX_ALIKE` comparisons, so do the first."""
    if not g_snaps or not a_snaps:
        return []
    if len(g_snaps) == len(a_snaps) or len(g_snaps) * len(a_snaps) > _MAX_ALIKE:
        return list(zip(g_snaps, a_snaps, strict=False))
    flip = len(g_snaps) < len(a_snaps)
    many, few = (a_snaps, g_snaps) if flip else (g_snaps, a_snaps)
    many_steps, few_steps = (actual, golden) if flip else (golden, actual)
    many_leaves = [leaves(many_steps[n - 1]) for n in many]
    few_leaves = [leaves(few_steps[n - 1]) for n in few]
    # cost[i][j]: the fewest differing values with few[:j] each facing one of many[:i]
    none = float("inf")
    cost = [[0.0] + [none] * len(few) for _ in range(len(many) + 1)]
    for i in range(1, len(many) + 1):
        for j in range(1, min(i, len(few)) + 1):
            facing = cost[i - 1][j - 1] + len(many_leaves[i - 1] ^ few_leaves[j - 1])
            cost[i][j] = min(cost[i - 1][j], facing)  # leaving many[i - 1] alone wins ties
    pairs: list[tuple[int, int]] = []
    i, j = len(many), len(few)
    while j:
        if cost[i][j] == cost[i - 1][j]:
            i -= 1
            continue
        pairs.append((many[i - 1], few[j - 1]))
        i, j = i - 1, j - 1
    pairs.reverse()
    return [(a, g) for g, a in pairs] if flip else pairs


_VOLATILE = {"step", "timestamp", "duration_ms"}


def _content(step: AnyStep) -> Any:
    """What a snapshot holds: the step without its number and times."""
    return to_jsonable(step.model_dump(exclude=_VOLATILE, exclude_none=True))


def content_key(step: AnyStep) -> Hashable:
    """What a snapshot holds, as a key: two snapshots with equal keys hold the same."""
    return json.dumps(_content(step), sort_keys=True, default=repr)


def leaves(step: AnyStep) -> set[tuple[str, str]]:
    """A snapshot's values, each with its path: two snapshots differ by those one of them
    has and the other has not."""
    found: set[tuple[str, str]] = set()
    stack: list[tuple[str, Any]] = [("", _content(step))]
    while stack:
        path, value = stack.pop()
        if isinstance(value, dict) and value:
            stack.extend((f"{path}.{key}", item) for key, item in value.items())
        elif isinstance(value, list) and value:
            stack.extend((f"{path}[{n}]", item) for n, item in enumerate(value))
        else:
            found.add((path, json.dumps(value, sort_keys=True, default=repr)))
    return found


def _name(step: AnyStep) -> str | None:
    if isinstance(step, ToolCallStep):
        return step.tool
    if isinstance(step, LLMCallStep):
        return step.model
    return None


def _fingerprint(step: AnyStep) -> Hashable:
    """The call's type, tool or model, and a digest of what replay matches it on."""
    if isinstance(step, LLMCallStep):
        matched_on: list[Any] = [step.provider, step.api, step.model, step.input]
    elif isinstance(step, ToolCallStep):
        matched_on = [step.tool, step.input]
    else:
        matched_on = [getattr(step, "content", None)]
    text = json.dumps(to_jsonable(matched_on), sort_keys=True, default=repr)
    return (step.type, _name(step), hashlib.sha256(text.encode()).hexdigest())


_KEYS: tuple[Key, ...] = (
    _fingerprint,
    lambda step: (step.type, _name(step)),
    lambda step: step.type,
)
