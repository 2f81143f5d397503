"""Compare state snapshots (`expect.state`): reported by default, failing when asked."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any, cast

from opswald.diff import differences, json_equal
from opswald.pairing import step_pairs
from opswald.paths import Path, drop, matches, parse, render
from opswald.session import AnyStep, Session, StateExpect, StateStep
from opswald.verdict import MISSING, Difference, Finding

__all__ = ["compare_states", "snapshot_data"]

_PARTS = ("memory", "variables", "context")


def snapshot_data(step: StateStep) -> dict[str, Any]:
    """The snapshot's named parts (memory, variables, context, extras) that are not None."""
    data = {name: getattr(step, name) for name in _PARTS}
    data.update(step.model_extra or {})
    return {k: v for k, v in data.items() if v is not None}


def compare_states(
    golden: Session,
    actual: Session,
    spec: StateExpect,
    matched: Mapping[int, int] | None = None,
) -> list[Finding]:
    """Pair the snapshots of the two sessions and report how they differ, per `spec.mode`.

    Snapshots pair as the viewer's rows pair steps (`opswald.pairing.step_pairs`): by what
    they hold (equal ones first, then the most alike, keeping order) between the calls the
    replay served (`matched`: the golden step each served call of `actual` answered as, by
    its step number; without it the calls of the two sessions are lined up), so a snapshot
    one side has and the other has not is one difference and moves no other snapshot.
    `report`: non-failing findings; `exact`: failing; `paths`: differences touching one of
    `spec.paths` fail, the rest are reported.
    """
    try:
        watched = [parse(p) for p in spec.paths]
    except ValueError as exc:
        return [
            Finding(
                kind="state",
                message=f"bad expect.state path: {exc}",
                suggestion="write paths like `memory.user_preference` or `variables.*`",
            )
        ]
    g_states = [s for s in golden.step_list if isinstance(s, StateStep)]
    a_states = [s for s in actual.step_list if isinstance(s, StateStep)]
    findings: list[Finding] = []
    if spec.mode == "paths":
        snapshots = [snapshot_data(s) for s in [*g_states, *a_states]]
        for text, pattern in zip(spec.paths, watched, strict=True):
            if not any(drop(data, [pattern]) != data for data in snapshots):
                keys = sorted({key for data in snapshots for key in data})
                findings.append(
                    Finding(
                        kind="state",
                        message=f"expect.state watches {text}, which no snapshot has: it "
                        "cannot fail (a typo?)",
                        suggestion="check the path's spelling; the snapshots have "
                        + (", ".join(keys) if keys else "no keys"),
                        failing=False,  # an optional key may be absent; said, not failed
                    )
                )
    g_steps, a_steps = golden.step_list, actual.step_list
    # each snapshot's place among its own session's snapshots, by its position in the steps
    g_place = {i: k for k, i in enumerate(_snapshot_positions(g_steps), start=1)}
    a_place = {i: k for k, i in enumerate(_snapshot_positions(a_steps), start=1)}
    rows: list[tuple[int, int]] = []
    for stretch in _stretches(step_pairs(g_steps, a_steps, matched), g_steps, a_steps):
        # a snapshot only faces a snapshot or nothing
        snaps = [(g_at, a_at) for g_at, a_at in stretch if g_at in g_place or a_at in a_place]
        rows.extend(_rejoined(snaps, g_steps, a_steps))
    for g_at, a_at in rows:
        g = _snapshot(g_steps, g_at)
        a = _snapshot(a_steps, a_at)
        where = g if g is not None else a
        assert where is not None
        diffs = differences(
            MISSING if g is None else snapshot_data(g),
            MISSING if a is None else snapshot_data(a),
            step=where.step,
        )
        if not diffs:
            continue
        index = g_place[g_at] if g is not None else a_place[a_at]
        what = _what(index, g, a)
        ours = g is None  # a snapshot only the run has: numbered in the run
        if spec.mode == "paths":
            hit = [d for d in diffs if _touches(d, watched)]
            rest = [d for d in diffs if not _touches(d, watched)]
            if hit:
                findings.append(
                    _finding(
                        f"{what} at watched paths (state: paths)",
                        hit,
                        where,
                        True,
                        run_step=ours,
                        watched=True,
                    )
                )
            if rest:
                findings.append(
                    _finding(
                        f"{what} (state: paths, not watched)", rest, where, False, run_step=ours
                    )
                )
        else:
            failing = spec.mode == "exact"
            findings.append(
                _finding(f"{what} (state: {spec.mode})", diffs, where, failing, run_step=ours)
            )
    return findings


def _stretches(
    pairs: list[tuple[int, int]], g_steps: Sequence[AnyStep], a_steps: Sequence[AnyStep]
) -> Iterator[list[tuple[int, int]]]:
    """The rows cut where a snapshot left alone may not cross: it crosses calls that face
    each other (a concurrent call finished on its other side), never a snapshot the two
    sides share or a call one side lacks, so a snapshot the run took more at its start and
    one the golden has past where a fork stopped stay an extra one and a missing one, as
    `opswald diff` and the viewer's rows show them."""
    stretch: list[tuple[int, int]] = []
    for g_at, a_at in pairs:
        g_snap = bool(g_at) and isinstance(g_steps[g_at - 1], StateStep)
        a_snap = bool(a_at) and isinstance(a_steps[a_at - 1], StateStep)
        if (g_snap or a_snap) and not (g_at and a_at):
            stretch.append((g_at, a_at))  # a snapshot alone
        elif g_at and a_at and not (g_snap or a_snap):
            continue  # calls facing each other: crossed
        else:
            yield stretch
            yield [(g_at, a_at)]
            stretch = []
    yield stretch


def _rejoined(
    rows: list[tuple[int, int]], g_steps: Sequence[AnyStep], a_steps: Sequence[AnyStep]
) -> list[tuple[int, int]]:
    """The snapshot rows with the snapshots left alone on both sides paired after all:
    concurrent calls finish in any order, so a run takes a snapshot before a call the
    golden took it after, and the two land between other calls. Those alone in the golden
    face those alone in the run, an equal one first, then in order; a snapshot gone with
    none extra (or the reverse) stays alone."""
    lone_g = [i for i, (g_at, a_at) in enumerate(rows) if not a_at]
    lone_a = [i for i, (g_at, a_at) in enumerate(rows) if not g_at]
    if not lone_g or not lone_a:
        return rows
    joined: dict[int, int] = {}  # golden row -> run row
    free = list(lone_a)
    for i in lone_g:
        data = snapshot_data(cast(StateStep, g_steps[rows[i][0] - 1]))
        same = next(
            (j for j in free if snapshot_data(cast(StateStep, a_steps[rows[j][1] - 1])) == data),
            None,
        )
        if same is not None:
            joined[i] = same
            free.remove(same)
    rest = [i for i in lone_g if i not in joined]
    joined.update(zip(rest, free, strict=False))
    taken = set(joined.values())
    return [
        (g_at, rows[joined[i]][1]) if i in joined else (g_at, a_at)
        for i, (g_at, a_at) in enumerate(rows)
        if i not in taken
    ]


def _snapshot_positions(steps: Sequence[AnyStep]) -> list[int]:
    return [i for i, s in enumerate(steps, start=1) if isinstance(s, StateStep)]


def _snapshot(steps: Sequence[AnyStep], at: int) -> StateStep | None:
    step = steps[at - 1] if at else None
    return step if isinstance(step, StateStep) else None


def _what(index: int, g: StateStep | None, a: StateStep | None) -> str:
    """`index`: the snapshot's place among its own side's snapshots (1-based)."""
    if a is None:
        return f"state snapshot {index} missing: the run recorded none in its place"
    if g is None:
        # its step is the run's (`Finding.run_step`): the headline says so
        return f"extra state snapshot {index}: the golden has none in its place"
    return "state snapshot differs"


def _finding(
    message: str,
    diffs: list[Difference],
    where: StateStep | None,
    failing: bool,
    *,
    run_step: bool = False,
    watched: bool = False,
) -> Finding:
    watch = _watchable(diffs[0]) if diffs else "memory.user_preference"
    if watched:  # the paths are already listed: the choice left is to stop watching one
        hint = (
            "if the new state is intended, accept it with --opswald-update; if these paths "
            "may change, remove them from expect.state (or set expect.state: report)"
        )
    else:
        hint = (
            "if the new state is intended, accept it with --opswald-update; to only report "
            "state changes set expect.state: report, or list the paths that matter: "
            f"expect.state: [{watch}]"
        )
    return Finding(
        kind="state",
        message=message,
        step=where.step if where is not None else None,
        step_type="state",
        differences=tuple(diffs),
        suggestion=hint if failing else "",
        failing=failing,
        run_step=run_step,
    )


def _watchable(d: Difference) -> str:
    """A path to offer for `expect.state: [...]`: the changed one, or for a whole snapshot
    one side lacks, its first part."""
    changed = render(d.path).split("[", 1)[0]
    if not d.path:
        whole = d.golden if d.golden is not MISSING else d.actual
        changed = next(iter(whole), "") if isinstance(whole, dict) else ""
    return changed if changed and changed[0].isalpha() else "memory.user_preference"


def _touches(d: Difference, watched: Sequence[Path]) -> bool:
    """Does `d` change a value at (or under) one of the watched path patterns? An element
    inserted in a list or removed from it also moved the ones after it: a watched later
    index of that list (`cart[2]`, an element inserted at `cart[1]`) holds another one."""
    for pattern in watched:
        if matches(d.path, pattern):
            return True
        if _reaches(d.path, pattern) and not _same_selection(d, pattern):
            return True
        if d.shifts and any(_reaches(moved, pattern) for moved in _moved(d, pattern)):
            return True
    return False


def _moved(d: Difference, pattern: Path) -> Iterator[Path]:
    """The paths of the elements after `d`'s in its list that `pattern` names by index."""
    *parent, at = d.path
    for part in pattern:
        if isinstance(part, int) and isinstance(at, int) and part > at:
            yield (*parent, part)


def _same_selection(d: Difference, pattern: Path) -> bool:
    """Equal values at the pattern's matches below `d.path` on both sides."""
    g, a = _selected(d.golden, d.path, pattern), _selected(d.actual, d.path, pattern)
    return g.keys() == a.keys() and all(json_equal(v, a[k]) for k, v in g.items())


def _selected(value: Any, base: Path, pattern: Path) -> dict[Path, Any]:
    """The topmost values under `base` whose path matches `pattern`."""
    out: dict[Path, Any] = {}
    if value is MISSING:
        return out
    stack: list[tuple[Path, Any]] = [(base, value)]
    while stack:
        path, item = stack.pop()
        if matches(path, pattern):
            out[path] = item
        elif _reaches(path, pattern):
            if isinstance(item, dict):
                stack.extend(((*path, str(k)), v) for k, v in item.items())
            elif isinstance(item, list):
                stack.extend(((*path, i), v) for i, v in enumerate(item))
    return out


def _reaches(path: Path, pattern: Path) -> bool:
    """Could some path below (or at) `path` match `pattern`?"""
    if not path:
        return True
    if not pattern:
        return False
    head, rest = pattern[0], pattern[1:]
    if head == "**":
        return any(_reaches(path[i:], rest) for i in range(len(path) + 1))
    if matches(path[:1], (head,)):
        return _reaches(path[1:], rest)
    return False
