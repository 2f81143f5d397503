"""Differences between two whole sessions, steps lined up first (`opswald.pairing`), no
pytest, no syrupy: used by the syrupy extension and `opswald diff`."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import TypeAdapter, ValidationError

from opswald.diff import differences
from opswald.jsonable import to_jsonable
from opswald.session import AnyStep, Session, without_stream_chunks
from opswald.verdict import MISSING, Difference, Finding

VOLATILE_STEP_FIELDS: tuple[str, ...] = ("timestamp", "duration_ms", "lane")
VOLATILE_METADATA_FIELDS: tuple[str, ...] = (
    "recorded_at",
    "duration_ms",
    "recorded_with",
    "lane_parents",
    "lane_gathers",
)
_COUNTED = 200  # differences counted before "... and N+ more"
STOP_ERROR = "ReplayDivergence"  # the error a replay writes on the call where it stopped
STOPPED_METADATA = "stopped"  # a saved run that did not end: {kind, step, type, name}
ENDED_EARLY = ("Timeout", "ProcessDied")  # its error types


def reached_before_the_end(rows: Sequence[tuple[int, int]], actual: Session) -> int | None:
    """For a saved run that did not end (`ended_early`): the last golden step a step it
    finished pairs with in the compare `rows` (0 for none); None for any other session."""
    if ended_early(actual) is None:
        return None
    return max((g for g, a in rows if g and a), default=0)


def ended_early(actual: Session) -> dict[str, Any] | None:
    """How a saved run that did not end was stopped (its timeout, its process dying): its
    `metadata.stopped`, when the session ends with such an error; else None."""
    stopped = actual.metadata.get(STOPPED_METADATA)
    if actual.error is None or actual.error.type not in ENDED_EARLY:
        return None
    return stopped if isinstance(stopped, dict) else None


def stable_data(data: Any) -> Any:
    """Plain data of a session-like dict (or list of steps) without its volatile fields."""
    plain = to_jsonable(data)
    if isinstance(plain, dict):
        plain = dict(plain)
        if isinstance(plain.get("metadata"), dict):
            plain["metadata"] = _without(plain["metadata"], VOLATILE_METADATA_FIELDS)
        if isinstance(plain.get("steps"), list):
            plain["steps"] = _stable_steps(plain["steps"])
    elif isinstance(plain, list) and _are_steps(plain):
        plain = _stable_steps(plain)
    return plain


def _without(mapping: dict[str, Any], keys: tuple[str, ...]) -> dict[str, Any]:
    return {k: v for k, v in mapping.items() if k not in keys}


def _stable_steps(steps: list[Any]) -> list[Any]:
    return [_stable_step(s) if isinstance(s, dict) else s for s in steps]


def _stable_step(step: dict[str, Any]) -> dict[str, Any]:
    """A step without its volatile fields, nor the pieces a stream came in (delivery, not
    what the agent was told)."""
    stable = _without(step, VOLATILE_STEP_FIELDS)
    attributes = stable.get("attributes")
    if isinstance(attributes, dict) and without_stream_chunks(attributes) is not attributes:
        rest = without_stream_chunks(attributes)
        if rest is None:
            del stable["attributes"]
        else:
            stable["attributes"] = rest
    return stable


def compared_step(step: AnyStep) -> dict[str, Any]:
    """One step's data as two sessions' steps are compared (no number, no volatile
    fields): what a diff shows of a step only one side has."""
    from opswald.files import _model_data

    data = _stable_step(_model_data(step))
    data.pop("step", None)
    return data


def _are_steps(items: list[Any]) -> bool:
    return bool(items) and all(isinstance(i, dict) and "type" in i for i in items)


def session_differences(golden: Any, actual: Any, *, limit: int = _COUNTED) -> list[Difference]:
    """Differences between two sessions' plain data, steps lined up (`_step_differences`).

    Paths are in the golden's terms: `step 5 › input.passenger`, `output.answer`. Values
    that are not sessions (nor lists of steps) are compared as they are.
    """
    if isinstance(golden, list) and isinstance(actual, list):
        if _are_steps(golden) or _are_steps(actual):
            return _step_differences(golden, actual, limit)
    if not (isinstance(golden, dict) and isinstance(actual, dict)):
        return differences(golden, actual, limit=limit)
    out: list[Difference] = []
    for key in [*golden, *(k for k in actual if k not in golden)]:
        room = limit - len(out)
        if room <= 0:
            break
        g, a = golden.get(key, MISSING), actual.get(key, MISSING)
        if key == "steps" and isinstance(g, list) and isinstance(a, list):
            out.extend(_step_differences(g, a, room))
        else:
            out.extend(differences(g, a, base=(key,), limit=room))
    return out[:limit]


def _step_differences(golden: list[Any], actual: list[Any], limit: int) -> list[Difference]:
    """The steps lined up as `opswald diff` lines them up (`opswald.pairing`): a step one
    side has alone is one difference (numbered in its side), and moves no later step.
    Lists that are not valid steps are compared position by position."""
    out: list[Difference] = []
    for g_at, a_at in _pairs(golden, actual):
        room = limit - len(out)
        if room <= 0:
            break
        g = _step_body(golden[g_at - 1]) if g_at else MISSING
        a = _step_body(actual[a_at - 1]) if a_at else MISSING
        out.extend(differences(g, a, step=g_at or a_at, limit=room))
    return out


def _pairs(golden: list[Any], actual: list[Any]) -> list[tuple[int, int]]:
    """(golden position, actual position), 1-based, 0 where a side has none."""
    from opswald.pairing import step_pairs

    try:
        reader = _steps_reader()
        g_steps, a_steps = reader.validate_python(golden), reader.validate_python(actual)
    except (ValidationError, TypeError, ValueError):
        size = max(len(golden), len(actual))
        return [
            (i if i <= len(golden) else 0, i if i <= len(actual) else 0) for i in range(1, size + 1)
        ]
    # numbered by position: the pairing reads step numbers, and the data may not hold them
    g_steps = [step.model_copy(update={"step": i}) for i, step in enumerate(g_steps, start=1)]
    a_steps = [step.model_copy(update={"step": i}) for i, step in enumerate(a_steps, start=1)]
    return step_pairs(g_steps, a_steps)


def _step_body(step: Any) -> Any:
    """A step without its number: the position already says it."""
    return {k: v for k, v in step.items() if k != "step"} if isinstance(step, dict) else step


# session.FORK_METADATA, the modifications and session.VARIANT_METADATA
RUN_METADATA = ("fork", "modifications", "variant", "stopped")
"""Metadata that says how a run was made (where a fork went live, the modifications it ran
with and the variant they came from, where a run that did not end was stopped), not what
the agent did: not a difference between a golden and its actual."""


def compared_data(session: Any) -> Any:
    """A session's data as a golden and an actual are compared: no volatile fields
    (timestamps, durations) and no run metadata."""
    from opswald.files import to_data

    data = stable_data(to_data(session))
    metadata = data.get("metadata")
    if isinstance(metadata, dict):
        data["metadata"] = {k: v for k, v in metadata.items() if k not in RUN_METADATA}
        if not data["metadata"]:  # empty and absent say the same: no difference
            del data["metadata"]
    return data


@functools.cache
def _steps_reader() -> TypeAdapter[list[AnyStep]]:
    """Built once: a `TypeAdapter` costs far more to build than to use."""
    return TypeAdapter(list[AnyStep])


def stop_attributes(finding: Finding) -> dict[str, Any]:
    """What the error of a call a replay refused keeps of the finding that stopped it: the
    golden step pytest named (`golden_step`, None for a call the golden does not have),
    its type and name. The refused call is the agent's, and need not pair with that step
    (a skipped tool call: the agent went on to the model call after it), so `opswald
    diff` and the viewer read them to name the stop as pytest did."""
    return {
        "golden_step": None if finding.numbered_in_run else finding.step,
        "step_type": finding.step_type,
        "name": finding.name,
    }


@dataclass(frozen=True, kw_only=True)
class ReplayStop:
    """Where a saved actual's replay stopped: its step that carries `error:
    ReplayDivergence` (`step`, the run's number), the golden step it faced (`golden_step`,
    0 for a call the golden does not have), and the last golden step the run reached
    (`reached`): the golden's steps after it were never run, for that reason alone.
    `named`: the golden step is the one pytest named, kept with the error
    (`stop_attributes`), with its type and name (`golden_type`, `golden_name`); an
    actual saved before they were kept is read by its steps' pairing alone."""

    step: AnyStep
    golden_step: int
    reached: int
    named: bool = False
    golden_type: str | None = None
    golden_name: str | None = None

    @property
    def message(self) -> str:
        return self.step.error.message if self.step.error is not None else ""

    def headline(self, total: int) -> str:
        """`step 3 of this run · tool_call search: the agent made a call ...`, as pytest
        says it (`step 1 of 4 · llm_call m1: ...` where it faced a golden step)."""
        where = (
            f"step {self.golden_step} of {total}"
            if self.golden_step
            else f"step {self.step.step} of this run"
        )
        kind: str = self.step.type
        name = getattr(self.step, "tool", None) or getattr(self.step, "model", None) or ""
        if self.named and self.golden_type:
            kind, name = self.golden_type, self.golden_name or ""
        return f"{where} · {kind} {name}".rstrip() + f": {self.message}"


def replay_stop(rows: list[tuple[int, int]], actual: Session) -> ReplayStop | None:
    """The stop of a replay whose actual was saved (`ReplayStop`): the golden step kept with
    its error, else the one the compare rows (golden step, actual step) of the two
    sessions pair with it; None when the run did not stop so."""
    step = next(
        (s for s in actual.step_list if s.error is not None and s.error.type == STOP_ERROR),
        None,
    )
    if step is None:
        return None
    before = [g for g, a in rows if g and a and a < step.step]
    kept = _kept_stop(step, max((g for g, _ in rows), default=0))
    if kept is not None:
        faced, kind, name = kept
        return ReplayStop(
            step=step,
            golden_step=faced,
            reached=max(faced, *before, 0),
            named=True,
            golden_type=kind,
            golden_name=name,
        )
    faced = next((g for g, a in rows if a == step.step), 0)
    return ReplayStop(step=step, golden_step=faced, reached=max(faced, *before, 0))


def _kept_stop(step: AnyStep, total: int) -> tuple[int, str | None, str | None] | None:
    """The golden step, type and name `stop_attributes` kept with the refused call's
    error; None when the error holds none (an actual saved by an older version) or holds
    them in a shape it could not have written."""
    attributes = step.error.attributes if step.error is not None else None
    if not isinstance(attributes, dict) or "golden_step" not in attributes:
        return None
    faced, kind, name = (attributes.get(k) for k in ("golden_step", "step_type", "name"))
    if faced is None:
        faced = 0
    if isinstance(faced, bool) or not isinstance(faced, int) or not 0 <= faced <= total:
        return None
    return (
        faced,
        kind if isinstance(kind, str) else None,
        name if isinstance(name, str) else None,
    )


REQUEST_FIELDS = ("type", "provider", "api", "model", "tool", "input", "content")
"""The fields of a call that say what the agent asked for: all a refused call has to compare
(its output, error and usage are the refusal's, not the agent's)."""


def request_body(body: Any) -> Any:
    """A step's plain data cut to what it asked for (`REQUEST_FIELDS`)."""
    if not isinstance(body, dict):
        return body
    return {k: v for k, v in body.items() if k in REQUEST_FIELDS}


def stop_rows(
    rows: list[tuple[int, int]], stop: ReplayStop, golden: Session
) -> list[tuple[int, int]]:
    """The compare rows of a stopped run with the refused call beside the golden step it
    faced (`stop.golden_step`) and no other: alone where it faced none (a call the golden
    does not have) or one of another type (a skipped tool call: the golden step stands
    alone, not called). Steps matched by the pairing alone (the golden's later call of
    the same type, never faced) leave it."""
    refused, faced = stop.step.step, stop.golden_step
    steps = golden.step_list
    beside = bool(faced) and 0 < faced <= len(steps) and steps[faced - 1].type == stop.step.type
    out: list[tuple[int, int]] = []
    placed = False  # the refused call's row is in `out`
    for g, a in rows:
        if a == refused:
            if not placed:
                out.append((faced, a) if beside else (0, a))
                placed = True
            if g and g != faced:
                out.append((g, 0))
        elif faced and g == faced:
            if not beside:
                out.append((g, 0))
                if not placed:  # right after the step it faced, before those not reached
                    out.append((0, refused))
                    placed = True
            if a:
                out.append((0, a))
        else:
            out.append((g, a))
    return _before_unreached(out, refused, stop.reached)


def _before_unreached(
    rows: list[tuple[int, int]], refused: int, reached: int
) -> list[tuple[int, int]]:
    """The refused call's row moved up before the golden steps the run never reached
    that the pairing put ahead of it (golden only, after `reached`): the run stopped
    there, so they come after it."""
    at = next((i for i, (_, a) in enumerate(rows) if a == refused), None)
    if at is None:
        return rows
    to = at
    while to > 0 and rows[to - 1][1] == 0 and rows[to - 1][0] > reached:
        to -= 1
    if to == at:
        return rows
    return [*rows[:to], rows[at], *rows[to:at], *rows[at + 1 :]]
