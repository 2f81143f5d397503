"""Runtime results of judging an actual session against its golden (plain frozen dataclasses)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from opswald.paths import Path, render


class _Missing:
    """Marks a value absent on one side of a difference."""

    _instance: _Missing | None = None

    def __new__(cls) -> _Missing:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "<missing>"

    def __bool__(self) -> bool:
        return False


MISSING: Any = _Missing()

FindingKind = Literal[
    "mismatch",  # a call that matches nothing recorded at that point
    "extra_call",  # the agent made a call the golden does not have
    "unused_calls",  # the agent finished with recorded calls unused
    "not_recorded",  # a stub replayed without recording
    "refused",  # a golden that cannot run as asked (its own step modification, no fork step)
    "output",
    "error",
    "tool_order",
    "budget",
    "state",
    "side_effect",
    "agent_error",  # the agent raised where the golden finished
    "fork",  # where a fork left the golden, and how its path differs
    "fork_not_reached",  # a fork at step N that no call of the run matched
    "breakpoint",  # a breakpoint with action `fail` was hit
    "timeout",  # the agent did not finish in time
    "unrecorded_endpoint",  # replay: an SDK request to an endpoint opswald does not record
    "read_past_cut",  # replay: the agent read to the end of a stream recorded closed early
]

DifferenceKind = Literal["changed", "added", "inserted", "removed"]

DIFFERENCE_LIMIT = 200
"""Differences one comparison lists at most (it stops looking there): a finding holding
that many may stand for more, whose number is not known."""

RUN_NUMBERED: frozenset[str] = frozenset({"extra_call", "side_effect"})
"""Finding kinds whose `step` is the run's own step, not the golden's: a call the golden
does not have there, a side-effect call the run would have made live."""


@dataclass(frozen=True, kw_only=True)
class Difference:
    """One field that differs. `path` is in the golden's terms; `step` is 1-based or None.

    `shifts`: a list element one side has and the other has not, with elements both have
    after it, which moved one place (`inserted`, `removed`). An inserted element's path
    holds its index in the actual list, a removed one's its index in the golden list.

    `cause`: what made the values differ when it is not the agent's doing, said after the
    line (`the modification model=m-large changed the request`); empty otherwise.
    """

    path: Path
    golden: Any = MISSING
    actual: Any = MISSING
    step: int | None = None
    shifts: bool = False
    cause: str = ""

    @property
    def change(self) -> DifferenceKind:
        """`changed`, `added` (a key, or an element at the end of a list), `inserted` (an
        element before others: `shifts`) or `removed`."""
        if self.golden is MISSING:
            return "inserted" if self.shifts else "added"
        return "removed" if self.actual is MISSING else "changed"

    @property
    def where(self) -> str:
        """`step 5 › input.passenger` or `output.answer`."""
        rendered = render(self.path)
        if self.step is None:
            return rendered or "value"
        return f"step {self.step} › {rendered}" if rendered else f"step {self.step}"


@dataclass(frozen=True, kw_only=True)
class Finding:
    """One reason a run differs from its golden; `failing=False` findings are only reported."""

    kind: FindingKind
    message: str
    step: int | None = None
    step_type: str | None = None
    name: str | None = None  # tool name or model
    differences: tuple[Difference, ...] = ()
    suggestion: str = ""
    failing: bool = True
    # a setting the run could not be judged without (`match: embedding` with no embedder
    # configured): what to configure, for the fix line; an update cannot stand in for it
    needs: str = ""
    # `step` is the run's own number, not the golden's: a snapshot the golden does not have
    # (an extra call, kind `extra_call`, is always numbered in the run)
    run_step: bool = False
    # the agent failed on a served answer of another type than its function returned when
    # recorded (a dataclass handed back as a dict): the remedy, for the fix line; an
    # update, which would write the crash, is not one
    answer_type: str = ""

    @property
    def numbered_in_run(self) -> bool:
        """Whether `step` is the run's own number: a snapshot the golden does not have, an
        extra call, a blocked side effect (`RUN_NUMBERED`)."""
        return self.run_step or self.kind in RUN_NUMBERED

    @property
    def differences_cut(self) -> bool:
        """Whether `differences` may be the first of more: a comparison lists at most
        `DIFFERENCE_LIMIT` and stops looking there."""
        return len(self.differences) >= DIFFERENCE_LIMIT


@dataclass(frozen=True, kw_only=True)
class Verdict:
    findings: tuple[Finding, ...] = field(default_factory=tuple)

    @property
    def passed(self) -> bool:
        return not any(f.failing for f in self.findings)

    @property
    def failures(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.failing)

    @property
    def first(self) -> Finding | None:
        failures = self.failures
        return failures[0] if failures else None

    @property
    def differences(self) -> tuple[Difference, ...]:
        return tuple(d for f in self.findings for d in f.differences)
