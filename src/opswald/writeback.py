"""What `--opswald-update` and record mode write: the golden's header, the recorded prefix
exactly as it was, and the newly recorded rest (DESIGN §3a "Update")."""

from __future__ import annotations

import os
from pathlib import Path

from opswald import files
from opswald.engine.run import Run
from opswald.session import AnyStep, Session, StateStep

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
    for step in run.actual.step_list:
        recorded = run.served.get(step.step) or _same_snapshot(golden_steps.get(step.step), step)
        if recorded is not None:
            step = (
                recorded
                if recorded.step == step.step
                else recorded.model_copy(update={"step": step.step})
            )
        steps.append(step)
    data = {k: getattr(golden, k) for k in KEPT if k in golden.model_fields_set}
    if "input" in data:  # the run's copy: the same input, with its secrets replaced
        data["input"] = run.actual.input
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
