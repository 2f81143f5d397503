"""What `--opswald-update` and record mode write: the golden's header, the recorded prefix
exactly as it was, and the newly recorded rest (DESIGN §3a "Update")."""

from __future__ import annotations

import os
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from opswald import files
from opswald.comments import KEPT_KEYS, dropped_note
from opswald.engine.run import Run
from opswald.engine.tape import epoch_ms, regions
from opswald.pairing import content_key, leaves, step_pairs
from opswald.redact import Redactor
from opswald.session import (
    LANE_GATHERS,
    LANE_PARENTS,
    AnyStep,
    Note,
    Session,
    StateStep,
    lane_gathers,
    lane_parents,
)

# what an update or a recording takes from the golden (written as the golden has it while
# it says the same: `opswald.comments`)
KEPT = KEPT_KEYS


@dataclass(frozen=True, kw_only=True)
class Blessed:
    """What an update or a recording writes, and where the steps it kept went."""

    session: Session
    # a step written as recorded (served, or an unchanged snapshot): its number in the
    # golden → in `session`; the comments on it follow it there (`opswald.comments`)
    renumbered: Mapping[int, int]


def blessed(golden: Session, run: Run) -> Blessed:
    """The session to write: served steps as recorded, live steps as they happened."""
    steps: list[AnyStep] = []
    golden_steps = {s.step: s for s in golden.step_list}
    moved: dict[int, int] = {}  # a kept recorded step's number in the golden → in the new one
    snapshots: dict[int, AnyStep] = {}  # an unchanged snapshot kept as recorded: as taken now
    kept: set[int] = set()  # where in `steps` a step is written as recorded
    facing = _facing_snapshots(golden, run) if run.policy == "update" else {}
    actual = run.actual.step_list
    # the served calls in the order the golden has them: calls that were in flight
    # together when recorded may be made in another order on replay (that order is not
    # the agent's), and the steps an update keeps are written as they were
    # (an update that diverged at a call of such a stretch writes the call that replaced
    # the golden's in that call's place, and the calls in flight with it around it; the
    # later changed calls of its branch too, where it is clear which golden call each
    # replaced: `_replaced`)
    rank = {
        k: run.served[step.step].step for k, step in enumerate(actual) if step.step in run.served
    }
    replaced = _replaced(run, actual, golden)
    rank.update({k: g for k, (g, _) in replaced.items()})
    # the snapshots taken by the branches of a concurrency region, paired with the golden's
    # of that region (`_region_snapshots`), go to their golden places with the calls
    # around them: a branch's snapshot follows its own served call on replay, which was
    # not where the recording took it
    regional = _region_snapshots(golden, run, replaced) if run.policy == "update" else {}
    if regional:
        taken = set(regional.values())
        facing = {a: g for a, g in facing.items() if g not in taken}
        facing.update({actual[k].step: g for k, g in regional.items()})
        rank.update(regional)
    source = dict(zip(sorted(rank), sorted(rank, key=rank.__getitem__), strict=True))
    # a golden without lanes whose update run made calls from more than one thread or
    # task: written with the lanes of the run, the served calls' too (`Context._lanes_anew`)
    anew = run.policy == "update" and all(s.lane is None for s in golden.step_list)
    anew = anew and any(s.lane is not None for s in actual)
    order = [source.get(k, k) for k in range(len(actual))]  # the run's step in each place
    if run.policy == "update":
        order = _added_to_regions(golden, run, order, replaced)
    placed: dict[int, int] = {}  # a golden step a live call replaced → that call's number
    regional_at: set[int] = set()  # where in `steps` the snapshots of regions went
    for k, here in enumerate(actual):
        j = order[k]  # the step of the run written in this place
        step, number = actual[j], actual[j].step
        recorded = run.served.get(number)
        if j in replaced:  # a call that replaced the golden's
            golden_number, lane = replaced[j]
            step = step.model_copy(update={"step": here.step, **lane})
            placed[golden_number] = here.step
        elif number != here.step:  # a served call, or a snapshot of a region, moved here
            step = step.model_copy(update={"step": here.step})
        if j in regional:
            regional_at.add(len(steps))
        if recorded is None and number in facing:  # a recording writes all anew
            recorded = _same_snapshot(golden_steps.get(facing[number]), step)
            if recorded is not None:
                snapshots[len(steps)] = step
        if recorded is not None:
            moved[recorded.step] = here.step
            kept.add(len(steps))
            step = (
                recorded
                if recorded.step == here.step
                else recorded.model_copy(update={"step": here.step})
            )
            if anew and not isinstance(step, StateStep):
                step = step.model_copy(update={"lane": actual[j].lane})
        steps.append(step)
    _keep_time_in_order(steps, snapshots, kept, regional_at)
    renumbered = {
        old: new
        for old, new in moved.items()
        if new - 1 in kept  # not a snapshot written as taken now after all
    }
    data = {k: getattr(golden, k) for k in KEPT if k in golden.model_fields_set}
    if "input" in data:  # the run's copy: the same input, with its secrets replaced
        data["input"] = run.actual.input
    if golden.notes:
        moved.update(placed)
        moved.update(_paired(golden.step_list, steps, moved))
        data["notes"] = [
            _moved_note(note, moved, golden_steps, len(steps)) for note in golden.notes
        ]
    metadata = run.actual.metadata
    if kept and "recorded_with" not in golden.metadata and "recorded_with" in metadata:
        # a golden written by hand keeps saying so while it holds steps as written: replay
        # leaves out of the comparison the fields such steps do not carry (DESIGN §3a),
        # which `recorded_with` would turn on for them
        metadata = {k: v for k, v in metadata.items() if k != "recorded_with"}
    session = Session.model_validate(
        {
            **{k: v for k, v in data.items()},
            "metadata": metadata,
            "steps": [],
            "output": run.actual.output,
            "error": run.actual.error,
            "verdicts": run.actual.verdicts,
        }
    )
    session.steps = steps
    return Blessed(session=session, renumbered=renumbered)


def _lane_metadata(session: Session) -> tuple[dict[int, int], list[list[int]]]:
    """A session's `lane_parents` and `lane_gathers`, as `regions` takes them."""
    metadata = session.metadata
    return lane_parents(metadata.get(LANE_PARENTS)), lane_gathers(metadata.get(LANE_GATHERS))


def _added_to_regions(
    golden: Session, run: Run, order: list[int], replaced: dict[int, Placed]
) -> list[int]:
    """`order` (the run's step written in each place) with each branch an update ran live
    that would be written next to a concurrency region, and not in it, moved into it.

    A branch an update adds to a gather (or whose calls all changed) makes its calls live
    while the other branches' calls are served at once: they may all be made before its
    first, so it would be written after their region, with no call of another lane
    between, and the golden written would hold its calls to after the others' on the next
    replay, which makes them in any order. So its first call is written before the
    region's last one (or its last call after the region's first, when it came before
    the region): its lane then ran together with the region's. Not for a lane that
    started the region's lanes (a starter's next call after a gather), nor for a lane the
    golden has outside any region (a sub-agent run after the gather, in order then)."""
    actual = run.actual.step_list

    def lane_at(j: int) -> int | None:
        if j in replaced:
            return replaced[j][1].get("lane", actual[j].lane)
        return actual[j].lane

    calls = [k for k, j in enumerate(order) if not isinstance(actual[j], StateStep)]
    made_live = (lane_at(order[k]) for k in calls if actual[order[k]].step not in run.served)
    live = {lane for lane in made_live if lane is not None}  # the lanes with live calls
    g_calls: list[AnyStep] = [s for s in golden.step_list if not isinstance(s, StateStep)]
    if any(s.lane is not None for s in g_calls):
        g_region, _ = regions(g_calls, *_lane_metadata(golden))
        joined = {c.lane for c, r in zip(g_calls, g_region, strict=True) if r >= 0}
        live -= {c.lane for c in g_calls} - joined  # in order when recorded: left so
    if not live:
        return order
    parents, gathers = _lane_metadata(run.actual)
    order = list(order)
    for _ in range(len(live)):  # each move may bring the next branch next to a region
        written: list[AnyStep] = []
        for k in calls:
            j = order[k]
            step, lane = run.served.get(actual[j].step) or actual[j], lane_at(j)
            written.append(step if step.lane == lane else step.model_copy(update={"lane": lane}))
        region_of, _ = regions(written, parents, gathers)
        lanes: dict[int, list[int]] = {}  # by lane: where its calls are in `written`
        for i, step in enumerate(written):
            if step.lane is not None:
                lanes.setdefault(step.lane, []).append(i)
        moved = False
        for lane in sorted(live):
            at = lanes.get(lane)
            if not at:
                continue
            # (a region's calls are one run: the call next to a lane's first or last call
            # is in another region only when that call begins or ends its own region, or
            # the lane is in none; two branches added together make a region of their own)
            first, last = at[0], at[-1]
            before = region_of[first - 1] if first > 0 else -1
            after = region_of[last + 1] if last + 1 < len(written) else -1
            if before >= 0 and before != region_of[first]:  # just after a region
                r, source, to = before, first, first - 1  # its first call before the last
            elif after >= 0 and after != region_of[last]:  # just before one
                r, source, to = after, last, last + 1  # its last call after the first
            else:
                continue
            members = {written[i].lane for i in range(len(written)) if region_of[i] == r}
            if lane in _ancestors(members, parents):
                continue  # the lane that started the region's: its next call after them
            waits = {run.waited_on.get(m) for m in members if m is not None} - {None}
            if lane in run.waited_on and waits and run.waited_on[lane] not in waits:
                continue  # waited for on its own (a sub-agent after the gather): in order
            k_from, k_to = calls[source], calls[to]
            order.insert(k_to, order.pop(k_from))
            moved = True
            break
        if not moved:
            break
    return order


def _ancestors(lanes: set[int | None], parents: Mapping[int, int]) -> set[int]:
    """The lanes that started `lanes` and waited for them, and those that started those."""
    out: set[int] = set()
    todo = [parents.get(lane) for lane in lanes if lane is not None]
    while todo:
        parent = todo.pop()
        if parent and parent not in out:
            out.add(parent)
            todo.append(parents.get(parent))
    return out


# a call an update replaced: the golden step it was written in the place of, and the lane
# to write it in (none: as it was made)
Placed = tuple[int, dict[str, int]]


def _replaced(run: Run, actual: list[AnyStep], golden: Session) -> dict[int, Placed]:
    """The calls an update made live in the place of golden calls, by where they are in
    `actual`: the call where it went live, compared with a golden call (a changed request,
    or other arguments); and, when it is clear which golden call each replaced, the live
    calls after it (`_later_replaced`)."""
    first = _first_replaced(run, actual, golden)
    if first is None:
        return {}
    later = _later_replaced(run, actual, golden, first)
    if later is None:
        return {first[0]: (first[1], {})}
    return later


def _first_replaced(run: Run, actual: list[AnyStep], golden: Session) -> tuple[int, int] | None:
    """Where in `actual` an update went live at a call compared with a golden call (a
    changed request, or other arguments), and that golden step's number. In a golden with
    lanes, only a call in that golden call's lane replaced it: a branch the update added,
    or the starter's call after a gather that lost a branch, was only compared with it,
    and is written where it happened."""
    if run.policy != "update" or run.fork_step is None:
        return None
    finding = next((f for f in run.findings if f.kind in ("mismatch", "extra_call")), None)
    if finding is None or finding.kind != "mismatch" or finding.step is None:
        return None
    k = run.fork_step - 1
    if not 0 <= k < len(actual):
        return None
    step = actual[k]
    if step.step in run.served or step.type != finding.step_type:
        return None
    compared = next((s for s in golden.step_list if s.step == finding.step), None)
    if compared is not None and compared.lane is not None and compared.lane != step.lane:
        return None
    return k, finding.step


def _later_replaced(
    run: Run, actual: list[AnyStep], golden: Session, first: tuple[int, int]
) -> dict[int, Placed] | None:
    """Each live call of the update paired with the golden call it replaced, the first
    included, when that is clear: the golden calls no served call used and the live calls
    are as many, and each live call has one of the same kind (type, tool or model) in its
    lane, taken in the lane's order, with the lane's calls, served and live, in the
    golden's order. Else None: a call the golden does not have, a call more or fewer, a
    lane the run numbered otherwise.

    A golden without lanes: None. Its concurrency regions are the calls whose recorded
    times overlap; a call made live now overlaps none of them, and written among them it
    would split their region, holding the calls around it to their recorded order on
    the next replay. Where it happened, after them, it splits less."""
    if all(s.lane is None for s in golden.step_list):
        return None
    used = {step.step for step in run.served.values()}
    live = [k for k, s in enumerate(actual) if s.type != "state" and s.step not in run.served]
    unused: list[AnyStep] = [
        s for s in golden.step_list if s.type != "state" and s.step not in used
    ]
    by_number = {s.step: s for s in unused}
    k0, g0 = first
    if len(live) != len(unused) or k0 not in live or g0 not in by_number:
        return None
    pairs = _in_lanes(actual, live, unused, first, by_number[g0].lane)
    if pairs is None or not _lanes_in_order(run, actual, pairs, by_number):
        return None
    return {k: (g, _lane_of(by_number[g])) for k, g in pairs.items()}


def _in_lanes(
    actual: list[AnyStep],
    live: list[int],
    unused: list[AnyStep],
    first: tuple[int, int],
    first_lane: int | None,
) -> dict[int, int] | None:
    """The live calls paired with the unused golden calls of their lane, in order: a
    thread or task whose first call was served has that call's recorded lane; the one
    that went live first has the lane of the golden call it was compared with."""
    k0, g0 = first
    run_lane = actual[k0].lane
    if run_lane is None or first_lane is None:
        return None
    calls: dict[int, list[int]] = {}
    for k in live:
        lane = actual[k].lane
        if lane is None:
            return None
        calls.setdefault(first_lane if lane == run_lane else lane, []).append(k)
    recorded: dict[int | None, list[AnyStep]] = {}
    for step in unused:
        recorded.setdefault(step.lane, []).append(step)
    if set(calls) != set(recorded):
        return None
    pairs: dict[int, int] = {}
    for lane, ks in calls.items():
        steps = recorded[lane]
        if len(ks) != len(steps):
            return None
        for k, step in zip(ks, steps, strict=True):
            if _kind(actual[k]) != _kind(step):
                return None
            pairs[k] = step.step
    return pairs if pairs.get(k0) == g0 else None


def _lanes_in_order(
    run: Run, actual: list[AnyStep], pairs: dict[int, int], by_number: dict[int, AnyStep]
) -> bool:
    """Whether each lane's calls, served and live, were made in the golden's order (the
    place of each is then its golden step's)."""
    numbers: dict[int | None, list[int]] = {}
    for k, step in enumerate(actual):
        served = run.served.get(step.step)
        if served is not None:
            numbers.setdefault(served.lane, []).append(served.step)
        elif k in pairs:
            numbers.setdefault(by_number[pairs[k]].lane, []).append(pairs[k])
    return all(seen == sorted(seen) for seen in numbers.values())


def _lane_of(step: AnyStep) -> dict[str, int]:
    return {"lane": step.lane} if step.lane is not None else {}


def _facing_snapshots(golden: Session, run: Run) -> dict[int, int]:
    """The golden snapshot each snapshot of the run faces (`opswald.pairing`), by the
    run's step number: a snapshot the run took one step earlier or later is still kept as
    recorded when it is unchanged."""
    g_steps, a_steps = golden.step_list, run.actual.step_list
    return {
        a_steps[a - 1].step: g_steps[g - 1].step
        for g, a in step_pairs(g_steps, a_steps, run.matched)
        if g and a and isinstance(a_steps[a - 1], StateStep)
    }


def _region_snapshots(golden: Session, run: Run, replaced: dict[int, Placed]) -> dict[int, int]:
    """The snapshots of the run taken within a concurrency region of a golden with lanes
    (`tape.regions`), paired with the golden's snapshots of that region, by where they are
    in the run's steps: each with the first golden snapshot of its region not taken yet
    that holds the same (timestamps aside), whatever the calls around them, as a region's
    calls come in any order; then, when a region has as many snapshots left on each side
    (changed ones), those, the most alike (`_most_alike`). A snapshot the run took more or
    fewer in a region leaves that region's changed ones unpaired, written where the run
    took them: snapshots carry no lane, so which branch took it is not known.

    A snapshot is in the region of the call before it, or when that call is in none (or,
    in the run, was made live and replaced no golden call), of the call after it: a
    branch's last snapshot may come after the region's last call, and its first before
    the region's first call."""
    g_steps, actual = golden.step_list, run.actual.step_list
    parents, gathers = _lane_metadata(golden)
    if all(s.lane is None for s in g_steps):
        # a golden without lanes that the update writes with the run's (`Blessed`): its
        # calls in the lanes of the calls of the run that they answered or that replaced
        # them, so its regions are those of the golden written
        answered = [
            (k, run.served[a.step].step) for k, a in enumerate(actual) if a.step in run.served
        ]
        answered += [(k, number) for k, (number, _) in replaced.items()]
        lane_of = {number: actual[k].lane for k, number in answered if actual[k].lane is not None}
        if not lane_of:
            return {}
        g_steps = [
            s.model_copy(update={"lane": lane_of[s.step]}) if s.step in lane_of else s
            for s in g_steps
        ]
        parents, gathers = _lane_metadata(run.actual)
    calls: list[AnyStep] = [s for s in g_steps if not isinstance(s, StateStep)]
    region_of, _ = regions(calls, parents, gathers)
    if not any(r >= 0 for r in region_of):
        return {}
    region = {call.step: r for call, r in zip(calls, region_of, strict=True)}
    recorded: dict[int, list[tuple[Hashable, AnyStep]]] = {}  # by region, in golden order
    for i, r in _snapshot_regions(g_steps, lambda i: region[g_steps[i].step]).items():
        recorded.setdefault(r, []).append((content_key(g_steps[i]), g_steps[i]))

    def of_golden(k: int) -> int:
        served = run.served.get(actual[k].step)
        number = served.step if served is not None else replaced.get(k, (0, {}))[0]
        return region.get(number, -1)

    pairs: dict[int, int] = {}
    left: dict[int, list[int]] = {}  # by region: the run's snapshots paired with none
    for k, r in _snapshot_regions(actual, of_golden).items():
        snaps = recorded.get(r)
        if snaps is None:
            continue
        key = content_key(actual[k])
        same = next((n for n, (held, _) in enumerate(snaps) if held == key), None)
        if same is None:
            left.setdefault(r, []).append(k)
        else:
            pairs[k] = snaps.pop(same)[1].step
    for r, ks in left.items():
        if len(ks) == len(recorded[r]):
            pairs.update(_most_alike(actual, ks, [step for _, step in recorded[r]]))
    return pairs


_MAX_ALIKE = 2_500  # snapshots times snapshots of one region compared one by one


def _most_alike(actual: list[AnyStep], ks: list[int], snaps: list[AnyStep]) -> dict[int, int]:
    """Changed snapshots of the run (`ks`, where they are in `actual`) paired with as many
    golden ones: each golden one in turn with the one of the run left that differs from it
    in the fewest values (on a tie, the one taken first); past `_MAX_ALIKE` comparisons,
    in order."""
    if len(ks) * len(snaps) > _MAX_ALIKE:
        return {k: step.step for k, step in zip(ks, snaps, strict=True)}
    values = {k: leaves(actual[k]) for k in ks}
    pairs: dict[int, int] = {}
    for step in snaps:
        held = leaves(step)
        k = min(values, key=lambda k: len(values[k] ^ held))
        del values[k]
        pairs[k] = step.step
    return pairs


def _snapshot_regions(steps: list[AnyStep], region: Callable[[int], int]) -> dict[int, int]:
    """The region of each snapshot in `steps` that is in one, by its index (`region`: of
    the call at an index, -1 for none): the region of the call before it, else of the
    call after it."""
    found: dict[int, int] = {}
    before = -1  # the region of the last call
    waiting: list[int] = []  # snapshots after a call of no region
    for i, step in enumerate(steps):
        if isinstance(step, StateStep):
            if before >= 0:
                found[i] = before
            else:
                waiting.append(i)
            continue
        before = region(i)
        if before >= 0:
            found.update((w, before) for w in waiting)
        waiting = []
    return found


def _kind(step: AnyStep) -> tuple[str, str | None]:
    return step.type, getattr(step, "tool", None) or getattr(step, "model", None)


def _places(steps: list[AnyStep]) -> dict[int, tuple[int, int]]:
    """Each model call's place: its turn (user inputs before it) and how many model calls
    of that turn came before it."""
    places: dict[int, tuple[int, int]] = {}
    turn, nth = 0, 0
    for step in steps:
        if step.type == "user_input":
            turn, nth = turn + 1, 0
        elif step.type == "llm_call":
            places[step.step] = (turn, nth)
            nth += 1
    return places


def _paired(
    old: list[AnyStep],
    new: list[AnyStep],
    kept: dict[int, int],
) -> dict[int, int]:
    """The recorded steps an update replaced, paired with the new steps that took their
    place: the new call of the same kind (type and tool or model) with the same arguments,
    else the model call of the same model at the same place in its turn, else the next one
    of that kind in order, else (a model call) the model call at the same place in its
    turn, whatever its model: a model upgrade leaves each call where it was. A step with
    none of these was removed."""
    taken = set(kept.values())
    fresh = [step for step in new if step.step not in taken]
    left = [step for step in old if step.step not in kept]
    pairs: dict[int, int] = {}

    def pair(step: AnyStep, match: AnyStep) -> None:
        pairs[step.step] = match.step
        fresh.remove(match)
        left.remove(step)

    old_places, new_places = _places(old), _places(new)
    at_place = {place: number for number, place in new_places.items()}
    tries: list[Callable[[AnyStep, AnyStep], bool]] = [
        lambda s, m: _kind(m) == _kind(s) and _call_of(m) == _call_of(s),
        lambda s, m: _kind(m) == _kind(s) and _same_place(s, m, old_places, at_place),
        lambda s, m: _kind(m) == _kind(s),
        lambda s, m: m.type == "llm_call" == s.type and _same_place(s, m, old_places, at_place),
    ]
    for fits in tries:
        for step in list(left):
            match = next((m for m in fresh if fits(step, m)), None)
            if match is not None:
                pair(step, match)
    return pairs


def _same_place(
    step: AnyStep,
    match: AnyStep,
    old_places: dict[int, tuple[int, int]],
    at_place: dict[tuple[int, int], int],
) -> bool:
    place = old_places.get(step.step)
    return place is not None and at_place.get(place) == match.step


def _call_of(step: AnyStep) -> object:
    """What a step was asked: a tool's arguments, a model call's input."""
    return getattr(step, "input", None)


def _moved_note(
    note: Note, moved: dict[int, int], golden_steps: dict[int, AnyStep], written: int
) -> Note:
    """A note follows its step to its new number; a note on a step the update replaced
    becomes a note on the session that says where it was, so that nothing is lost and the
    review sees it. A note on a step the golden did not have (step 9 of 7, step 0) was on
    no step: it stays as it is while the session written (`written` steps) has no such
    step either, and else goes on the session, so as not to land on a step it never was
    about."""
    if note.step is None or moved.get(note.step) == note.step:
        return note
    if note.step in moved:
        return note.model_copy(update={"step": moved[note.step]})
    old = golden_steps.get(note.step)
    if old is None:
        if not 1 <= note.step <= written:
            return note
        return Note(text=f"(on step {note.step}, a step the golden did not have) {note.text}")
    what = " ".join(part for part in _kind(old) if part)
    text = f"(on step {note.step}, {what}, before an update replaced it) {note.text}"
    return Note(text=text)


_VOLATILE = {"step", "timestamp", "duration_ms"}


def _same_snapshot(recorded: AnyStep | None, step: AnyStep) -> AnyStep | None:
    """A recorded state step whose snapshot is unchanged (timestamps aside) is kept as is."""
    if not isinstance(recorded, StateStep) or not isinstance(step, StateStep):
        return None
    old = recorded.model_dump(exclude=_VOLATILE, exclude_none=True)
    new = step.model_dump(exclude=_VOLATILE, exclude_none=True)
    return recorded if old == new else None


def _keep_time_in_order(
    steps: list[AnyStep], snapshots: dict[int, AnyStep], kept: set[int], moved: set[int]
) -> None:
    """An unchanged snapshot keeps its recorded timestamp (a small diff) only where that
    time still lies between its neighbours' in the session written; elsewhere it is
    written as taken now. A snapshot written as taken now before a step kept as recorded
    (the calls before the divergence keep their recorded times, from the day the golden
    was recorded) is timed where it was taken among them: when the step before it ended,
    and not after the kept step that follows it. So the timeline never goes backwards.
    `kept`: where a step is written as recorded; an unchanged snapshot that cannot keep its
    time leaves it. `moved`: where a snapshot of a concurrency region was moved to its
    golden place (`_region_snapshots`), which may be after a live step made later than it
    was taken."""
    while True:
        _time_new_snapshots(steps, kept, moved)
        late = False
        for i, now in snapshots.items():
            if i in kept and not _in_order(steps, i):
                steps[i] = now
                kept.discard(i)
                late = True
        if not late:
            return


def _in_order(steps: list[AnyStep], i: int) -> bool:
    """Whether step `i`'s time lies between its neighbours' (or is not known)."""
    when = epoch_ms(steps[i].timestamp)
    before = epoch_ms(steps[i - 1].timestamp) if i > 0 else None
    after = epoch_ms(steps[i + 1].timestamp) if i + 1 < len(steps) else None
    return when is None or ((before is None or before <= when) and (after is None or when <= after))


def _time_new_snapshots(steps: list[AnyStep], kept: set[int], moved: set[int]) -> None:
    """Each snapshot not kept as recorded whose time is not between the step before it and
    the next kept step: timed at the end of the step before it, or at the next kept
    step's time when that is earlier (or there is no step before it with a time). The
    live steps after the last kept one keep the times they had in this run, but for a
    snapshot `moved` there that was taken before the step now before it: timed at that
    step's end."""
    anchors = [i for i in sorted(kept) if epoch_ms(steps[i].timestamp) is not None]
    ahead = 0  # the first anchor at or after i
    last = max(moved, default=-1)
    for i, step in enumerate(steps):
        while ahead < len(anchors) and anchors[ahead] < i:
            ahead += 1
        if ahead == len(anchors) and i > last:
            return
        when = epoch_ms(step.timestamp)
        if i in kept or not isinstance(step, StateStep) or when is None:
            continue
        before = epoch_ms(steps[i - 1].timestamp) if i > 0 else None
        if ahead == len(anchors):
            if i in moved and before is not None and when < before:
                end = before + (steps[i - 1].duration_ms or 0.0)
                steps[i] = step.model_copy(update={"timestamp": _stamp(end)})
            continue
        limit = epoch_ms(steps[anchors[ahead]].timestamp)
        assert limit is not None
        if (before is None or before <= when) and when <= limit:
            continue
        end = before + (steps[i - 1].duration_ms or 0.0) if before is not None else limit
        steps[i] = step.model_copy(update={"timestamp": _stamp(min(end, limit))})


def _stamp(ms: float) -> str:
    """A timestamp as opswald writes them: UTC, to the millisecond, with a `Z`."""
    when = datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds")
    return when.replace("+00:00", "Z")


_NOT_CI = frozenset({"", "0", "false", "no", "off"})


def on_ci() -> bool:
    """Whether the `CI` environment variable says this run is on CI: set to anything but
    empty, `0`, `false`, `no` or `off` (in any case; CI services set `true`, `1` or a
    name, and `CI=false` is how a shell says it is not one)."""
    return os.environ.get("CI", "").strip().lower() not in _NOT_CI


def writes_blocked(*, force: bool) -> str | None:
    """Why writing is not allowed here, or None."""
    if on_ci() and not force:
        return (
            "not written: the CI environment variable is set; goldens are only written on CI "
            "with --opswald-force"
        )
    return None


def write(
    path: Path,
    written: Blessed,
    limits: files.Limits | None = None,
    redactor: Redactor | None = None,
) -> str | None:
    """Write the session over the golden at `path`, its comments kept where the text they
    annotate is written unchanged (on a step, also when it was renumbered); what was
    dropped, said for the summary, or None. Raises `files.GoldenWriteRefused` for a golden
    loading would refuse (over `limits`). With `redactor`, the secrets in it are replaced:
    steps kept from the golden may hold them in clear (written by hand, or recorded
    before a redaction rule covered them)."""
    dropped = files.dump(
        written.session,
        path,
        redactor=redactor,
        keep_comments=True,
        renumbered=written.renumbered,
        limits=limits,
    )
    return dropped_note(dropped, path.name) if dropped else None
