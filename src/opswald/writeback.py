"""What `--opswald-update` and record mode write: the golden's header, the recorded prefix
exactly as it was, and the newly recorded rest (DESIGN §3a "Update")."""

from __future__ import annotations

import os
from pathlib import Path

from opswald import files
from opswald.engine.run import Run
from opswald.session import AnyStep, Note, Session, StateStep

KEPT = (
    "name",
    "description",
    "tags",
    "session_id",
    "agent",
    "input",
    "expect",
    "modifications",
    "timeout",
    "notes",
)


def blessed(golden: Session, run: Run) -> Session:
    """The session to write: served steps as recorded, live steps as they happened."""
    steps: list[AnyStep] = []
    golden_steps = {s.step: s for s in golden.step_list}
    moved: dict[int, int] = {}  # a kept recorded step's number in the golden → in the new one
    for step in run.actual.step_list:
        recorded = run.served.get(step.step) or _same_snapshot(golden_steps.get(step.step), step)
        if recorded is not None:
            moved[recorded.step] = step.step
            step = (
                recorded
                if recorded.step == step.step
                else recorded.model_copy(update={"step": step.step})
            )
        steps.append(step)
    data = {k: getattr(golden, k) for k in KEPT if k in golden.model_fields_set}
    if "input" in data:  # the run's copy: the same input, with its secrets replaced
        data["input"] = run.actual.input
    if golden.notes:
        moved.update(_paired(golden.step_list, steps, moved))
        data["notes"] = [_moved_note(note, moved, golden_steps) for note in golden.notes]
    session = Session.model_validate(
        {
            **{k: v for k, v in data.items()},
            "metadata": run.actual.metadata,
            "steps": [],
            "output": run.actual.output,
            "error": run.actual.error,
            "verdicts": run.actual.verdicts,
        }
    )
    session.steps = steps
    return session


def _kind(step: AnyStep) -> tuple[str, str | None]:
    return step.type, getattr(step, "tool", None) or getattr(step, "model", None)


def _paired(old: list[AnyStep], new: list[AnyStep], kept: dict[int, int]) -> dict[int, int]:
    """The recorded steps an update replaced, paired with its new steps of the same kind
    (type and tool or model): the new call with the same arguments, else the next one of
    that kind in order."""
    fresh: dict[tuple[str, str | None], list[AnyStep]] = {}
    taken = set(kept.values())
    for step in new:
        if step.step not in taken:
            fresh.setdefault(_kind(step), []).append(step)
    pairs: dict[int, int] = {}
    for step in old:
        same_kind = fresh.get(_kind(step))
        if step.step in kept or not same_kind:
            continue
        # the same call (same arguments) wherever it now is, else the next of its kind
        match = next((s for s in same_kind if _call_of(s) == _call_of(step)), same_kind[0])
        same_kind.remove(match)
        pairs[step.step] = match.step
    return pairs


def _call_of(step: AnyStep) -> object:
    """What a step was asked: a tool's arguments, a model call's input."""
    return getattr(step, "input", None)


def _moved_note(note: Note, moved: dict[int, int], golden_steps: dict[int, AnyStep]) -> Note:
    """A note follows its step to its new number; a note on a step the update replaced
    becomes a note on the session that says where it was, so that nothing is lost and the
    review sees it."""
    if note.step is None or moved.get(note.step) == note.step:
        return note
    if note.step in moved:
        return note.model_copy(update={"step": moved[note.step]})
    old = golden_steps.get(note.step)
    what = " ".join(part for part in (_kind(old) if old else ("a step", None)) if part)
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


def writes_blocked(*, force: bool) -> str | None:
    """Why writing is not allowed here, or None."""
    if os.environ.get("CI") and not force:
        return (
            "not written: the CI environment variable is set; goldens are only written on CI "
            "with --opswald-force"
        )
    return None


def write(path: Path, session: Session) -> None:
    files.dump(session, path)
