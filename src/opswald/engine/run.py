"""Run an agent under a context and judge the actual session against its golden."""

from __future__ import annotations

import builtins
import difflib
import os
import re
import threading
import time
import traceback
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Literal

from opswald import adapters
from opswald.diff import differences, run_step
from opswald.engine.context import (
    REQUEST_KEYS,
    RERECORD,
    STEP_MODIFICATIONS,
    UPDATE,
    Context,
    KeysLost,
    Policy,
    ReplayDivergence,
    SideEffectBlocked,
    Surface,
    activate,
)
from opswald.engine.normalize import RequestRules
from opswald.engine.tape import describe
from opswald.expect.budgets import check_budgets, figures
from opswald.expect.output import compare_output
from opswald.expect.state import compare_states
from opswald.expect.trajectory import ToolCallRef, judge_order, unknown_tool_rules
from opswald.intercept.transport import intercepting
from opswald.jsonable import Formless, formless, lost_keys, to_jsonable
from opswald.redact import DEFAULT_REDACTOR, Redactor
from opswald.returns import TYPE_ERRORS, Retyped, hidden_remedy, usable_remedy
from opswald.session import (
    FORK_METADATA,
    LANE_GATHERS,
    LANE_PARENTS,
    VARIANT_METADATA,
    AnyStep,
    ErrorInfo,
    Expect,
    LLMCallStep,
    Session,
    ToolCallStep,
    lane_gathers,
    lane_parents,
    lane_parents_list,
    merged_gathers,
)
from opswald.verdict import MISSING, Difference, Finding, Verdict

Mode = Literal["replay", "record", "rerecord", "live"]
ErrorMode = Literal["same", "type", "any", "fixed"]  # expect.error
VERSION = "0.1.0"


def golden_step_modifications(golden: Session) -> dict[str, Any]:
    """The step modifications (`response`, `tool_result`, ...) of the golden's own
    `modifications:`. They are its weakest source, as its request-level keys are: the
    callers lay a variant's, the marker's, the command line's or the API's over them, key
    by key, and apply them at the fork step like those (with no fork step the run is
    refused: a modification is never dropped in silence)."""
    own = golden.modifications
    return {key: own[key] for key in STEP_MODIFICATIONS if key in own}


def from_the_golden(own: dict[str, Any], given: dict[str, Any]) -> str:
    """For a refused step modification: which of them the golden's own `modifications:`
    gave (the user did not type them), as a clause to append; "" when none."""
    keys = [key for key in own if key not in given]
    return f" ({', '.join(keys)} from the golden's own modifications:)" if keys else ""


def recorded_variant(session: Session) -> str | None:
    """The variant whose modifications `session` was recorded under (`metadata.variant`);
    None for one recorded without a variant, or written before variant names were kept."""
    name = session.metadata.get(VARIANT_METADATA)
    return name if isinstance(name, str) and name else None


def recorded_under(golden: Session, modifications: dict[str, Any]) -> dict[str, Any]:
    """The modifications the golden was recorded under (`metadata.modifications`, written
    by a run with --opswald-modify or a variant) that a run with `modifications` (besides
    the golden's own `modifications:`) does not have, or has with another value."""
    recorded = golden.metadata.get("modifications")
    if not isinstance(recorded, dict):
        return {}
    own = {k: v for k, v in golden.modifications.items() if k not in STEP_MODIFICATIONS}
    given = {**own, **modifications}
    return {
        key: value
        for key, value in recorded.items()
        if key not in STEP_MODIFICATIONS and (key not in given or given[key] != value)
    }


_REQUEST_PARAMS: dict[str, frozenset[str]] = {
    "temperature": frozenset({"temperature"}),
    "top_p": frozenset({"top_p"}),
    "max_tokens": frozenset({"max_tokens", "max_output_tokens"}),
    "seed": frozenset({"seed"}),
}
"""The `input.params` keys a request-level modification sets, under every API's name."""


def _sets(key: str, d: Difference) -> bool:
    """Whether the request-level modification `key` sets the field of difference `d`."""
    path = d.path
    if key == "model":
        return path == ("model",)
    params = _REQUEST_PARAMS.get(key)
    if params is None or path[:2] != ("input", "params"):
        return False
    if len(path) > 2:
        return path[2] in params
    golden = d.golden if isinstance(d.golden, dict) else {}
    actual = d.actual if isinstance(d.actual, dict) else {}
    return any(golden.get(p) != actual.get(p) for p in params)


def explained_by(recorded: dict[str, Any], verdict: Verdict) -> tuple[dict[str, Any], list[str]]:
    """Of the modifications a golden was recorded under and this run lacks, those that set
    a request field where a failing call differs (`model`, `input.params.temperature`),
    and where those differences are; an adapter-level key explains nothing we can see."""
    keys: dict[str, Any] = {}
    where: list[str] = []
    for finding in verdict.failures:
        if finding.kind != "mismatch" or finding.step_type != "llm_call":
            continue
        for d in finding.differences:
            setting = [k for k in recorded if _sets(k, d)]
            if setting:
                keys.update({k: recorded[k] for k in setting})
                where.append(d.where)
    return {k: v for k, v in recorded.items() if k in keys}, list(dict.fromkeys(where))


@dataclass(frozen=True, kw_only=True)
class RunSettings:
    """How one golden is run: the policy and the knobs that shape matching."""

    policy: Policy = "replay"
    allow_side_effects: bool = False
    block_side_effects: bool = True
    modifications: dict[str, Any] = field(default_factory=dict)
    fork_at: int | None = None
    step_modifications: dict[str, Any] = field(default_factory=dict)
    listeners: tuple[Any, ...] = ()
    rules: RequestRules = field(default_factory=RequestRules)
    redactor: Redactor = DEFAULT_REDACTOR
    offline: bool = True
    prices: Any = None
    integrations: tuple[str, ...] = ()
    side_effect_tools: frozenset[str] = frozenset()
    langgraph_state: bool = False
    surface: Surface = "pytest"  # whose option names hints give
    variant: str | None = None  # the --opswald-variant whose modifications these are


@dataclass(frozen=True, kw_only=True)
class Run:
    """What happened: the actual session and the findings made while it ran."""

    actual: Session
    findings: tuple[Finding, ...]
    fork_step: int | None  # the run's step where it went live
    served: dict[int, Any]
    unused: tuple[Any, ...]
    agent_traceback: str | None
    policy: Policy
    offline_note: str | None = None  # what the offline guard blocked, if anything
    # the note names requests the refusing proxy refused a subprocess agent: what helps
    # is not what helps an in-process agent (an @opswald.tool cannot wrap another process)
    offline_proxy: bool = False
    # SDK requests to endpoints opswald does not record, which went out live (`POST /v1/...`)
    unrecorded: tuple[str, ...] = ()
    # for the lanes of tasks whose starter waited for them, what it waited on (an id): the
    # tasks of one gather or task group share one (`Context.waited_on`)
    waited_on: dict[int, int] = field(default_factory=dict)
    # the names of threads the agent started that were still running when its replay
    # ended, after which the offline guard no longer holds them back
    left_running: tuple[str, ...] = ()
    surface: Surface = "pytest"  # where the run was started: hints name its options
    # a part of the output written only as a repr with a memory address: never written
    formless_output: Formless | None = None
    # the first tool or model function result with no data form (its name, the part)
    formless_result: tuple[str, Formless] | None = None
    formless_arguments: tuple[str, Formless] | None = None  # a tool call's, the first
    # the first data (`output`, a snapshot, a tool or model function's result, a tool's
    # arguments) whose dict keys a golden writes alike, keeping one of them: never written
    lost_keys: KeysLost | None = None
    # functions whose result replay gives back as another type (the data form): a note each
    return_notes: tuple[str, ...] = ()
    # modifications that change nothing, or likely nothing (`modification_note`)
    modification_note: str | None = None
    # an agent that raised a type error (AttributeError, KeyError, ...) after a served
    # answer that was not what its function returned: that answer (the last such)
    retyped: Retyped | None = None
    # served answers handed over as plain data where the function had returned another
    # type when recorded (a dataclass as a dict), in a run that ended without an error: if
    # its output differs, they may be why
    plain_answers: tuple[Retyped, ...] = ()
    # a fork at a step: the golden step where it left the golden (the fork step, when the
    # run reached it), the run's own number for it (the call that matched golden step N,
    # which may come after the run went live, else where it went live), and the run's step
    # the new path is compared from
    fork_golden_step: int | None = None
    fork_run_step: int | None = None
    fork_path_from: int | None = None

    @property
    def matched(self) -> dict[int, int]:
        """The golden step each served call answered as, by the run's step number."""
        return {number: step.step for number, step in self.served.items()}


@dataclass(frozen=True, kw_only=True)
class ReplayResult:
    """A golden, the session the agent produced now, and the verdict."""

    golden: Session
    actual: Session
    verdict: Verdict
    policy: Policy
    fork_step: int | None = None
    agent_traceback: str | None = None
    # the golden step each served call answered as, by the actual step number (snapshots
    # and live calls have none): how the viewer lines the two sessions up
    matched: dict[int, int] = field(default_factory=dict)
    offline_note: str | None = None  # a call of the agent's own the offline guard blocked
    offline_proxy: bool = False  # ... or requests of a subprocess agent its proxy refused
    # modifications that change nothing, or likely nothing: a typo such as `modle=`
    modification_note: str | None = None

    @classmethod
    def of(cls, golden: Session, run: Run, verdict: Verdict) -> ReplayResult:
        """The result of `run` (an `execute` of `golden`) judged as `verdict`."""
        return cls(
            golden=golden,
            actual=run.actual,
            verdict=verdict,
            policy=run.policy,
            fork_step=run.fork_step,
            agent_traceback=run.agent_traceback,
            matched=run.matched,
            offline_note=run.offline_note,
            offline_proxy=run.offline_proxy,
            modification_note=run.modification_note,
        )

    @property
    def passed(self) -> bool:
        return self.verdict.passed

    @property
    def differences(self) -> tuple[Difference, ...]:
        return self.verdict.differences


def _unreached_keys(
    modifications: Mapping[str, Any],
    steps: Sequence[AnyStep],
    served: Mapping[int, AnyStep],
    fork_at: int | None,
) -> list[str]:
    """The request-level modifications none of the run's model calls they apply to went
    out with, or was served as carrying (an `@opswald.llm` function without a parameter of
    that name, an API that takes no such parameter), in a run that made some: the calls
    of a fork at step N before golden step N are served as recorded, and not counted."""
    asked = [key for key in REQUEST_KEYS if key in modifications]
    if not asked:  # a plain replay: nothing to look for
        return []
    from opswald.engine.context import carries
    from opswald.engine.normalize import request_of

    calls = [
        request_of(s)
        for s in steps
        if isinstance(s, LLMCallStep)
        and s.error is None
        and not (fork_at is not None and s.step in served and served[s.step].step < fork_at)
    ]
    if not calls:
        return []
    return [key for key in asked if not any(carries(r, key, modifications[key]) for r in calls)]


def _modification_note(
    adapter: Callable[..., Any],
    modifications: Mapping[str, Any],
    steps: Sequence[AnyStep],
    served: Mapping[int, AnyStep],
    settings: RunSettings,
) -> str | None:
    """`modification_note` of a run: its adapter named (a subprocess agent by its command)."""
    if isinstance(adapter, adapters.SubprocessAdapter):
        name, subprocess = " ".join(adapter.command), True
    else:
        name, subprocess = adapters.name_of(adapter), False
    return modification_note(
        modifications,
        adapters.takes_modifications(adapter),
        name,
        unreached=_unreached_keys(modifications, steps, served, settings.fork_at),
        subprocess=subprocess,
    )


def modification_note(
    modifications: Mapping[str, Any],
    adapter_takes: bool,
    adapter: str | None = None,
    *,
    unreached: Sequence[str] = (),
    subprocess: bool = False,
) -> str | None:
    """A note on the modifications opswald does not apply itself that change nothing: all of
    them when the adapter (named `adapter`: the note is that adapter's goldens', and a run
    may have several) takes no `modifications`; else those named like one opswald applies
    (`modle`, `temprature`), which the adapter may yet read."""
    known = (*REQUEST_KEYS, *STEP_MODIFICATIONS)
    others = [key for key in modifications if key not in known]
    close = {
        key: found[0]
        for key in others
        if (found := difflib.get_close_matches(key, known, n=1, cutoff=0.75))
    }
    named = others if not adapter_takes else list(close)
    unsent = _unsent(unreached, adapter)
    if not named:
        return unsent
    listed = ", ".join(
        repr(key) + (f" (did you mean {close[key]!r}?)" if key in close else "") for key in named
    )
    one = len(named) == 1
    applied = f"{', '.join(REQUEST_KEYS)}; {', '.join(STEP_MODIFICATIONS)} at a fork step"
    subject = f"modification{'' if one else 's'} {listed}"
    if not adapter_takes:
        recorded = f"{'it is' if one else 'they are'} recorded in the run's metadata.modifications"
        if subprocess:
            return _joined(
                f"{subject} changed nothing in the goldens of a subprocess agent ({adapter}): "
                "such an agent is given "
                f"no modifications, and opswald itself applies only {applied} to its model "
                f"requests; {recorded} only",
                unsent,
            )
        where = f" in the goldens of {adapter}" if adapter is not None else ""
        return _joined(
            f"{subject} changed nothing{where}: the adapter takes no `modifications` "
            f"parameter, and opswald itself applies only {applied}; {recorded} only",
            unsent,
        )
    whose = f"the adapter {adapter}" if adapter is not None else "the agent's adapter"
    return _joined(
        f"{subject} {'is not one' if one else 'are not ones'} opswald applies itself "
        f"({applied}): unless {whose} reads {'it' if one else 'them'}, "
        f"{'it changes' if one else 'they change'} nothing",
        unsent,
    )


def _unsent(keys: Sequence[str], adapter: str | None) -> str | None:
    if not keys:
        return None
    one = len(keys) == 1
    listed = ", ".join(repr(k) for k in keys)
    where = f" in the goldens of {adapter}" if adapter is not None else ""
    return (
        f"modification{'' if one else 's'} {listed} reached none of the model calls{where}: an "
        "@opswald.llm function is given a request key only through a parameter of that name "
        "(or **kwargs), and an API that takes no such parameter is not sent it (Anthropic: "
        "seed); the run does not differ from the golden in it"
    )


def _joined(note: str, unsent: str | None) -> str:
    return note if unsent is None else f"{note}. Also, {unsent}"


_ENDING_GRACE = 0.2  # seconds, in all, to let threads that are ending end

# the exception the agent raised in this thread's last `execute`, frames and all (a Run
# holds its text only: a Run crosses processes by pickle): `take_agent_exception`
_AGENT_ERROR = threading.local()


def take_agent_exception() -> BaseException | None:
    """The exception the agent raised in this thread's last `execute`, once (then None):
    its traceback reaches the agent's own frames, for a debugger (`pytest --pdb`)."""
    exc: BaseException | None = getattr(_AGENT_ERROR, "exc", None)
    _AGENT_ERROR.exc = None
    return exc


def _left_running(before: set[threading.Thread]) -> list[threading.Thread]:
    """The threads started during the run that are still running after it. A thread on
    its way out (AnyIO's workers, which its loop stops without joining them; a cancelled
    `threading.Timer`) is given a moment to end first."""
    started = [t for t in threading.enumerate() if t not in before and t.is_alive()]
    deadline = time.monotonic() + _ENDING_GRACE
    for thread in started:
        thread.join(max(0.0, deadline - time.monotonic()))
    return [t for t in started if t.is_alive()]


def blocked_fix(note: str, *, proxy: bool = False) -> str:
    """The `fix:` of a replay the offline guard blocked a call of the agent's own in, or
    whose proxy refused requests of a subprocess agent's own (`proxy`), as `note` says: an
    update runs them live (no guard, no proxy) and writes what they did, but no golden
    holds their answers, so every replay blocks them again."""
    from opswald.offline import ADVICE, SUBPROCESS_ADVICE

    if proxy:
        return (
            f"--opswald-update cannot fix this: {note}, and every replay refuses them "
            f"again (no golden holds their answers). {SUBPROCESS_ADVICE}"
        )
    return (
        f"--opswald-update cannot fix this: {note}, and every replay blocks "
        f"that call again (no golden holds its answer). {ADVICE}"
    )


def execute(
    golden: Session,
    adapter: Callable[..., Any],
    *,
    settings: RunSettings,
    expect: Expect | None = None,
    context_out: Callable[[Context], None] | None = None,
) -> Run:
    """Run the agent once under a fresh context; never raises for the agent's errors."""
    expect = expect or golden.expectations
    user_inputs = golden.input.get("user_inputs") if isinstance(golden.input, dict) else None
    # the golden's own step modifications are not the adapter's: the caller gives them in
    # settings.step_modifications, as it gives those of the other sources
    own = {k: v for k, v in golden.modifications.items() if k not in STEP_MODIFICATIONS}
    modifications = {**own, **settings.modifications}
    ctx = Context(
        golden=None if golden.is_stub else golden,
        policy=settings.policy,
        rules=settings.rules,
        tool_rules=expect.tool_calls,
        allow_side_effects=settings.allow_side_effects,
        block_side_effects=settings.block_side_effects,
        modifications=modifications,
        user_inputs=user_inputs if isinstance(user_inputs, list) else None,
        redactor=settings.redactor,
        fork_at=settings.fork_at,
        step_modifications=settings.step_modifications,
        listeners=list(settings.listeners),
        integrations=settings.integrations,
        side_effect_tools=settings.side_effect_tools,
        langgraph_state=settings.langgraph_state,
        surface=settings.surface,
    )
    if settings.integrations:
        from opswald.integrations import install

        install(settings.integrations)
    output: Any = None
    error = None
    tb: str | None = None
    ctx.prices = settings.prices
    if context_out is not None:
        context_out(ctx)
    offline: Any = nullcontext()
    if settings.policy == "replay" and settings.offline:
        from opswald.offline import OfflineGuard

        offline = OfflineGuard()
    threads_before = set(threading.enumerate())
    left_running: tuple[str, ...] = ()
    _AGENT_ERROR.exc = None
    with activate(ctx), intercepting(), offline:
        # the session's time is the agent's: setting up interception and the offline guard
        # (whose first use in a process imports their modules) is not part of it
        ctx.clock.restart()
        try:
            output = adapters.call(adapter, golden.input, modifications)
        except (ReplayDivergence, SideEffectBlocked):
            pass
        except adapters.AdapterMismatch:
            raise  # a misconfiguration, found before the agent ran: not the agent's error
        except Exception as exc:
            error = ctx.error_of(exc)
            tb = ctx.redactor(_agent_traceback(exc))
            _AGENT_ERROR.exc = exc
        except BaseExceptionGroup as group:  # an async framework's task group wrapped ours
            if group.split((ReplayDivergence, SideEffectBlocked))[0] is None:
                raise
        finally:
            if settings.policy == "replay" and settings.offline:
                # threads the agent started and left running go on after the replay: the
                # guard stays on for them alone until they end (not for the tests after)
                from opswald.offline import hold_threads

                left = _left_running(threads_before)
                hold_threads(left)
                left_running = tuple(t.name for t in left)
    duration = round(ctx.clock.duration_ms(), 3)
    ctx.close_open()  # calls the run ended before they finished: cancelled steps
    steps, served = ctx.numbered()
    metadata = {
        **golden.metadata,
        "recorded_at": datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
        "recorded_with": f"pytest-opswald {VERSION}",
        "duration_ms": duration,
    }
    if modifications:
        # --opswald-modify / --opswald-variant values: written with the saved actual
        metadata["modifications"] = ctx.redactor(to_jsonable(modifications))
    else:  # the golden's were of its recording, not this run's (an update writes this)
        metadata.pop("modifications", None)
    if settings.variant is not None:
        # which variant the modifications came from: a golden written under one says so
        metadata[VARIANT_METADATA] = ctx.redactor(settings.variant)
    else:
        metadata.pop(VARIANT_METADATA, None)
    # the golden's, for the lanes of the steps it serves (a recording serves none)
    parents = lane_parents(golden.metadata.get(LANE_PARENTS)) if ctx.tape is not None else {}
    parents.update(ctx.waited_parents())
    present = {s.lane for s in steps if s.lane is not None} if parents else set()
    top = max(present, default=0)
    # of the lanes the steps written have (a golden's lane an update left no call in is
    # none of them: 0, as a lane that started none)
    parents = {lane: p for lane, p in parents.items() if lane in present and p in present}
    if parents:  # which lane started which (`regions`)
        metadata[LANE_PARENTS] = lane_parents_list(parents, top)
    else:
        metadata.pop(LANE_PARENTS, None)
    # which lanes were awaited together: an update's, as it saw them (it watches every
    # task, served or not: an agent that now runs them one after the other has none); a
    # replay's saved actual has the golden's too
    keep = ctx.tape is not None and settings.policy != "update"
    recorded = lane_gathers(golden.metadata.get(LANE_GATHERS)) if keep else []
    lanes_of = {s.lane for s in steps if s.lane is not None}
    gathers = merged_gathers([*recorded, *ctx.waited_together()], lanes_of)
    if gathers:
        metadata[LANE_GATHERS] = gathers
    else:
        metadata.pop(LANE_GATHERS, None)
    if settings.integrations:
        metadata["integrations"] = list(settings.integrations)
    else:
        metadata.pop("integrations", None)
    metadata.pop(FORK_METADATA, None)
    unreached = ctx.unreached_fork()
    if settings.policy == "fork" and settings.fork_at is not None:
        # the golden step the fork was asked for, the run's own number for it where that
        # differs, and what the fork changed there: a saved actual read without its
        # verdict (opswald html, the analysis) still knows
        fork: dict[str, Any] = {"step": settings.fork_at}
        start = ctx.fork_target  # the call the fork starts at (N, or the first after it)
        if start is not None and start.step != settings.fork_at:
            # asked at a snapshot, which a fork cannot start at: the call after it is the
            # step forked, as the fork line says, and the step asked for is kept beside it
            fork = {"step": start.step, "asked": settings.fork_at}
        if ctx.fork_applied is not None and start is not None and ctx.fork_applied != start.step:
            fork["run_step"] = ctx.fork_applied
        if unreached is not None:
            fork["reached"] = False
        elif settings.step_modifications and ctx.fork_applied is not None:
            fork["modifications"] = ctx.redactor(to_jsonable(settings.step_modifications))
        metadata[FORK_METADATA] = fork
    elif settings.policy == "fork" and ctx.fork_step is not None:
        # where a modified run went live
        metadata[FORK_METADATA] = {"step": ctx.fork_step}
    actual = golden.model_copy(
        update={
            # the input as given, with its secrets replaced like everything else written
            "input": ctx.redactor(to_jsonable(golden.input)),
            "metadata": metadata,
            "steps": steps,
            "output": ctx.redactor(to_jsonable(output)),
            "error": error,
        }
    )
    # model_copy does not mark fields as set; the actual session is never a stub.
    actual.model_fields_set.update({"steps", "output", "metadata"})
    shapeless = formless(output) if error is None else None
    if shapeless is not None:
        shapeless = shapeless._replace(text=ctx.redactor(shapeless.text))
    lost = ctx.lost_keys
    if lost is None and error is None:
        found = lost_keys(output)
        lost = KeysLost(part="output", name=None, found=found) if found is not None else None
    typed = error is not None and error.type in TYPE_ERRORS
    retyped = ctx.retyped[-1] if typed and ctx.retyped else None
    plain_answers = (
        tuple(r for r in ctx.retyped if not r.invalid and not r.hidden) if error is None else ()
    )
    fork_golden, fork_run, fork_from = ctx.fork_point()
    return Run(
        actual=actual,
        findings=(*ctx.findings, *([unreached] if unreached is not None else [])),
        fork_step=ctx.fork_step,
        fork_golden_step=fork_golden,
        fork_run_step=fork_run,
        fork_path_from=fork_from,
        served=served,
        unused=tuple(ctx.tape.unused()) if ctx.tape is not None else (),
        agent_traceback=tb,
        policy=settings.policy,
        offline_note=_blocked(offline, ctx.redactor),
        offline_proxy=bool(getattr(offline, "refused", ())),
        left_running=left_running,
        surface=settings.surface,
        formless_output=shapeless,
        formless_result=ctx.formless_result,
        formless_arguments=ctx.formless_arguments,
        unrecorded=tuple(ctx.unrecorded),
        waited_on=dict(ctx.waited_on),
        lost_keys=lost,
        return_notes=tuple(ctx.return_notes.values()),
        modification_note=_modification_note(adapter, modifications, steps, served, settings)
        if modifications
        else None,
        retyped=retyped,
        plain_answers=plain_answers,
    )


def _blocked(guard: Any, redactor: Redactor) -> str | None:
    """What the guard blocked and its proxy refused, redacted (a refused path may hold a
    key, as a query string would: the proxy leaves that out)."""
    from opswald.offline import blocked_note

    note = blocked_note(list(getattr(guard, "blocked", ())), list(getattr(guard, "refused", ())))
    return None if note is None else redactor.text(note)


def judge(
    golden: Session, run: Run, expect: Expect | None = None, tolerance: Any = None
) -> Verdict:
    """Every reason the actual session differs from the golden, first divergence first."""
    expect = expect or golden.expectations
    actual = run.actual
    findings: list[Finding] = [
        _as_fork_point(f, actual.metadata.get("modifications")) if run.policy == "fork" else f
        for f in run.findings
    ]
    diverged = any(
        f.failing and f.kind in ("mismatch", "extra_call", "side_effect", "unrecorded_endpoint")
        for f in findings
    )
    if golden.is_stub:
        return Verdict(findings=tuple(findings))
    # an update that never went live was served like a replay: the calls it left unused
    # are its news too (else it "passed" and wrote nothing, and the replay still failed)
    served_only = run.policy == "replay" or (run.policy == "update" and run.fork_step is None)
    unused = _unused(run, expect) if not diverged and served_only else []
    if not diverged:
        errors = [
            _offline(f, run.offline_note, proxy=run.offline_proxy)
            for f in _error_findings(golden, actual, expect, run.agent_traceback)
        ]
        if run.retyped is not None:
            errors = [_retyped(f, run.retyped) for f in errors]
        # an agent that raised where the golden finished: that is the news, and the
        # recorded calls it left unused follow from it
        raised = golden.error is None and actual.error is not None
        findings.extend([*errors, *unused] if raised else [*unused, *errors])
        if golden.error is None and actual.error is None:
            out = _output_finding(golden, actual, expect, tolerance)
            if out is not None and run.plain_answers:
                out = _plain_answer_hint(out, run.plain_answers[0])
            cut = next((f for f in findings if f.kind == "read_past_cut"), None)
            if out is not None and cut is not None:  # the likely cause, not ignore_paths
                out = replace(out, suggestion=f"step {cut.step}: {cut.suggestion}")
            if out is not None:  # an agent that caught the blocked call answered otherwise
                findings.append(_offline(out, run.offline_note, proxy=run.offline_proxy))
        # the tape matched every served call (tools in any completion order); the order is
        # judged where the run went live: a live run, or an update or fork past its start
        if run.policy not in ("replay", "update") or run.fork_step is not None:
            order = judge_order(_tool_refs(golden), _tool_refs(actual), expect.tool_calls)
            if order is not None:
                findings.append(order)
    if run.policy == "fork" and run.fork_run_step is not None:
        unreached = next((f.step for f in findings if f.kind == "fork_not_reached"), None)
        fork_data = actual.metadata.get(FORK_METADATA)
        asked = fork_data.get("asked") if isinstance(fork_data, dict) else None
        findings.append(
            _fork_path(
                golden,
                actual,
                run.fork_run_step,
                run.fork_golden_step,
                start=run.fork_path_from,
                unreached=unreached,
                asked=asked if isinstance(asked, int) else None,
            )
        )
    findings.extend(
        check_budgets(
            expect.budgets,
            figures(actual),
            figures(golden),
            partial=diverged,
            update=UPDATE[run.surface],
            rerecord=rerecord_for_cost(run),
        )
    )
    if not diverged:
        findings.extend(compare_states(golden, actual, expect.state, run.matched))
    if expect.tool_calls.tools:
        refs = _tool_refs(golden), _tool_refs(actual)
        findings.extend(unknown_tool_rules(*refs, expect.tool_calls))
    return Verdict(findings=tuple(findings))


def rerecord_for_cost(run: Run) -> str | None:
    """How to record the golden again, when the run was served recorded model calls: they
    keep their recorded cost (DESIGN §3a "Time and cost"), so a price configured since
    reaches a cost budget only through a new recording."""
    if not any(isinstance(step, LLMCallStep) for step in run.served.values()):
        return None
    return RERECORD[run.surface]


def _offline(finding: Finding, note: str | None, *, proxy: bool = False) -> Finding:
    """An error finding that names what the offline guard blocked (an SDK wraps the
    guard's error, e.g. as `APIConnectionError: Connection error.`), or what its proxy
    refused a subprocess agent (which says no more than `HTTP Error 403`)."""
    if note is None or note in finding.message:  # the guard's own error says it already
        return finding
    from opswald.offline import BLOCKED_ADVICE, SUBPROCESS_ADVICE

    advice = SUBPROCESS_ADVICE if proxy else BLOCKED_ADVICE
    suggestion = f"{advice}\n{finding.suggestion}" if finding.suggestion else advice
    return replace(finding, message=f"{finding.message} ({note})", suggestion=suggestion)


NEVER_BLESSED = ("budget", "side_effect", "breakpoint")
"""Failures `--opswald-update` leaves failing and unwritten (DESIGN §3a "Update")."""
EXPECT_VALUES = ("contains", "regex", "json_subset", "similar", "embedding", "judge")
"""Output matchers that judge against `expect.output.value` when it is given (else against
the golden's output): an update never changes `expect:`."""


def _against_value(expect: Expect) -> bool:
    """The output is judged against a `value:` in `expect:`, not the golden's output, which
    is all an update can change (`regex` always has one)."""
    spec = expect.output
    return spec.match in EXPECT_VALUES and spec.value is not None


def _judged_against_itself(verdict: Verdict) -> bool:
    """The judge rejected an output equal to the one it was judged against: the golden
    holds it already, so an update would write it again and the judge reject it again."""
    return any(
        d.path == ("output",) and d.golden == d.actual
        for f in verdict.failures
        if f.kind == "output"
        for d in f.differences
    )


DIVERGING = ("mismatch", "extra_call", "agent_error")
LIVE_WRITES_NOTHING = "a live run writes nothing"
LIVE_FIX = (
    f"{LIVE_WRITES_NOTHING}: if this behaviour is right, loosen the golden's `expect:` "
    "(a tolerant output match, the tool-call order, budgets) or record it again with "
    "--opswald-mode=rerecord; else fix the agent"
)


def unconfigured(findings: Iterable[Finding]) -> str:
    """What to configure before these findings can pass (`match: embedding` with no
    embedder), or "": a missing setting is not a change of behaviour, so no update or
    recording fixes it."""
    needs = list(dict.fromkeys(f.needs for f in findings if f.needs))
    return "configure " + " and ".join(needs) if needs else ""


def side_effects_ahead(
    golden: Session, verdict: Verdict, side_effect_tools: frozenset[str] = frozenset()
) -> tuple[str, ...]:
    """The side-effect tools (`side_effects=True`, or named in ini
    `opswald_side_effect_tools`) the golden calls from the step where the run left it:
    an update goes live from there, and stops at such a tool unless allowed to run it."""
    from opswald.instrument import DECLARED_SIDE_EFFECTS

    steps = [f.step for f in verdict.failures if f.kind in DIVERGING and f.step is not None]
    if not steps or golden.is_stub:
        return ()
    marked = DECLARED_SIDE_EFFECTS | side_effect_tools
    names = (
        s.tool
        for s in golden.step_list
        if s.step >= min(steps) and isinstance(s, ToolCallStep) and s.tool in marked
    )
    return tuple(dict.fromkeys(names))


# an SDK's error for a client made with no key: its environment variable, where it says it
_KEY_VARIABLE = re.compile(r"\b([A-Z][A-Z0-9_]*_API_KEY)\b")


def missing_key(verdict: Verdict) -> str:
    """What to set when the agent raised, where the golden finished, an SDK's error for
    a client made with no API key (the `openai` SDK's when the client is made, the
    `anthropic` SDK's when it sends), or "": a replay sends nothing, but the SDK wants a
    key first."""
    for finding in verdict.failures:
        if finding.kind != "agent_error":
            continue
        named = _KEY_VARIABLE.search(finding.message)
        if named is not None:
            variable = named.group(1)
        elif "authentication method" in finding.message and "api_key" in finding.message:
            variable = "ANTHROPIC_API_KEY"
        else:
            continue
        return (
            f"set {variable} to any value ({variable}=unused): the SDK wants a key before it "
            "sends a request, and a replay sends none"
        )
    return ""


_RAISED_TYPE = re.compile(r"the agent raised ([\w.]+)")


def warning_raised(verdict: Verdict) -> str:
    """What to do when what the agent raised is a warning (a builtin warning class, or a
    class named `...Warning`): a warnings filter made it an exception (`-W error`,
    `filterwarnings = error`); recording the crash again would not be the fix."""
    for finding in verdict.failures:
        found = _RAISED_TYPE.match(finding.message) if finding.kind == "agent_error" else None
        if found is None:
            continue
        name = found.group(1).rsplit(".", 1)[-1]
        builtin = getattr(builtins, name, None)
        if not (isinstance(builtin, type) and issubclass(builtin, Warning)) and not (
            name.endswith("Warning")
        ):
            continue
        return (
            f"a warnings filter (-W error, filterwarnings = error) made the agent's {name} "
            f"an exception: let it through there (-W default::{name}, or an `ignore:` "
            f"filter for its message), or stop the agent warning it ({CRASH_NOT_BLESSED})"
        )
    return ""


CRASH_NOT_BLESSED = "an update does not bless a crash the golden did not have"
CRASH_INTENDED = (
    "if failing is now what the agent should do, record the golden again with "
    "--opswald-mode=rerecord"
)
CRASH_FIX = f"fix the agent ({CRASH_NOT_BLESSED}); {CRASH_INTENDED}"


def fix_line(
    verdict: Verdict,
    expect: Expect | None = None,
    *,
    forked: bool = False,
    update: str = "--opswald-update",
    side_effects: tuple[str, ...] = (),
    allow: str = "--opswald-allow-side-effects",
    live: bool = False,
    recorded: dict[str, Any] | None = None,
    variant: str | None = None,
) -> str:
    """The `fix:` line: an update where an update helps, and never where it does not.
    `recorded` are the modifications the golden was recorded under that this run lacks
    (`recorded_under`): named, as the cause, only where a difference is at a request field
    they set (`explained_by`), since an update without them writes the golden without them;
    `variant` is the variant they came from (`recorded_variant`), named with them.
    `update` is how the update is asked for where the run started (`opswald replay` says
    `pytest --opswald-goldens --opswald-update`); `side_effects` are the side-effect tools
    the golden calls after the run left it (`side_effects_ahead`), which an update
    reaching them runs only with `allow`. A `live` run is judged on expectations only:
    an update, which replays the golden's recorded answers, is not its remedy."""
    kinds = {f.kind for f in verdict.failures}
    needs = unconfigured(verdict.failures)
    if needs:
        return f"{needs} (a missing setting, not a change of behaviour: {update} leaves it)"
    retyped = next((f.answer_type for f in verdict.failures if f.answer_type), "")
    if retyped and not live:
        return f"{retyped} ({update} would write the crash that replay caused, and does not)"
    if live and kinds <= set(NEVER_BLESSED):
        return f"{LIVE_WRITES_NOTHING}: follow the hint above"
    if live:  # judged against live answers, which an update (a replay) would not meet
        return LIVE_FIX
    accept = f"if the new behaviour is intended, accept it with {update}"
    explained, where = explained_by(recorded or {}, verdict)
    if explained:
        # no command replays a golden under them: any --opswald-modify makes the run a fork,
        # which is judged on expectations and would pass over the agent's own changes
        listing = ", ".join(f"{k}={v}" for k, v in explained.items())
        source = (
            f"the variant {variant}: {listing} (metadata.variant, metadata.modifications)"
            if variant
            else f"{listing} (metadata.modifications, from a variant, --opswald-modify or "
            "a marker's modify=)"
        )
        accept = (
            f"the golden was recorded under {source}, which this run does not apply: the "
            f"difference{'s' if len(where) > 1 else ''} at {', '.join(where[:3])}"
            f"{' …' if len(where) > 3 else ''} {'are' if len(where) > 1 else 'is'} that; "
            f"{accept} (written without them)"
        )
    if side_effects:
        tools = ", ".join(side_effects)
        accept += (
            f" (the golden then calls {tools}, marked side_effects=True: an update that "
            f"reaches {'it' if len(side_effects) == 1 else 'one'} stops there unless "
            f"given {allow})"
        )
    if "fork_not_reached" in kinds:
        return (
            "the run never reached the fork's step, so it tells nothing about a fork there "
            "(what the fork changes from that step was never applied): fork at a step this "
            "run reaches (the finding says how far it followed the golden)"
        )
    if forked:  # --opswald-fork-at: refused with --opswald-update
        return (
            "a fork is judged, never written: to make this path the golden, change the agent "
            f"and run {update} (without a fork)"
        )
    if "agent_error" in kinds:  # the agent raised where the golden finished
        return missing_key(verdict) or warning_raised(verdict) or CRASH_FIX
    if expect is not None and kinds == {"output"} and _against_value(expect):
        return (
            f"{update} cannot fix this: it rewrites the golden, never its `expect:`; "
            f"change expect.output (match: {expect.output.match}) if the new output is right"
        )
    if expect is not None and kinds == {"output"} and expect.output.match == "judge":
        if _judged_against_itself(verdict):
            return (
                f"{update} cannot fix this: the judge rejects this output as the golden's "
                "own (it holds it already), and an update never changes `expect:`; fix the "
                "agent, or change expect.output.rubric"
            )
        accept += " (written only if the judge also accepts the new output as its own golden)"
    if expect is not None and kinds == {"error"} and expect.error.match == "fixed":
        return (
            f"{update} cannot fix this: it rewrites the golden, never its `expect:`, and "
            "`error: fixed` wants a run without the error; fix the agent, or change expect.error"
        )
    if any(f.kind == "read_past_cut" for f in verdict.findings):
        return (
            f"{update} cannot fix this: the golden has that answer only as far as it came, "
            "and an update cannot make up the rest; follow the hint above"
        )
    if "unrecorded_endpoint" in kinds:
        return (
            f"{update} cannot fix this: opswald does not record that endpoint, so the "
            "replay of a new recording stops at the same call; follow the hint above"
        )
    if kinds and kinds <= set(NEVER_BLESSED):
        return (
            f"{update} does not bless this (budgets, blocked side effects and "
            "breakpoints are never written): follow the hint above"
        )
    if kinds & set(NEVER_BLESSED):
        return f"{accept} (what it does not bless, a budget, side effect or breakpoint, stays)"
    return accept


def no_data_form(run: Run) -> Finding | None:
    """The output part, else the part of a tool or model function's result, that has no
    data form, as the reason a golden is not written: its repr (with a memory address)
    would be written, and fail the golden's next replay (a result's `decode=` would get
    that text)."""
    return data_form_finding(run.formless_output, run.formless_result, run.formless_arguments)


_GENERATED = {
    "builtins.generator": "a generator function",
    "builtins.async_generator": "an async generator function",
}


def data_form_finding(
    output: Formless | None,
    result: tuple[str, Formless] | None,
    arguments: tuple[str, Formless] | None,
) -> Finding | None:
    """`no_data_form` of the parts found (also what `opswald.record` refuses to write)."""
    from opswald.paths import render

    suggestion = (
        "return plain data (dicts, lists, strings, numbers), a dataclass or a pydantic model"
    )
    found = output
    if found is not None:
        whose, where = "the agent's output", render(("output", *found.path))
        if not found.path:
            suggestion += (
                "; an adapter that is a class returns the instance it creates: name a "
                "function that returns the agent's result instead"
            )
        name = None
    elif result is not None:
        name, found = result
        whose, where = f"the result of {name}", render(("value", *found.path))
        suggestion += f" from {name}"
        made = _GENERATED.get(found.kind) if not found.path else None
        if made is not None:  # a generator function decorated: nothing returned yet
            suggestion = (
                f"{name} is {made}: a call is recorded when the function returns, and it "
                f"returns before it has produced anything; return the items (a list) "
                f"instead, and keep the generator outside {name}"
            )
    elif arguments is not None:
        name, found = arguments
        whose, where = f"the arguments of {name}", render(("input", *found.path))
        suggestion = (
            f"pass plain data (dicts, lists, strings, numbers), a dataclass or a pydantic "
            f"model to {name}"
        )
    else:
        return None
    return Finding(
        kind="output",
        message=(
            f"{whose} {'have' if whose.startswith('the arguments') else 'has'} no data "
            f"form: {where} is an instance of {found.kind}, "
            f"written only as its repr {found.text}, which changes every run"
        ),
        name=name,
        suggestion=suggestion,
    )


def keys_lost(run: Run) -> Finding | None:
    """The dict whose keys a golden writes alike (`1` and `'1'` both as `"1"`), as the
    reason a golden is not written: it would keep one of them, and its replay would hand
    the agent less than it had."""
    return lost_keys_finding(run.lost_keys)


def lost_keys_finding(lost: KeysLost | None) -> Finding | None:
    """`keys_lost` of what was found (also what `opswald.record` refuses to write)."""
    if lost is None:
        return None
    from opswald.paths import render

    found, name = lost.found, lost.name
    if lost.part == "output":
        whose, base = "the agent's output has", "output"
    elif lost.part == "state":
        whose, base = "a state snapshot has", "state"
    elif lost.part == "arguments":  # the step's `input`, where the golden writes them
        whose, base = f"the arguments of {name} have", "input"
    else:
        whose, base = f"the result of {name} has", "value"
    where = render((base, *found.path))
    first, second = found.keys
    return Finding(
        kind="output",
        message=(
            f"{whose} keys that a golden writes alike: {first} and {second} in {where} "
            f"are both written {found.written!r}, so the golden would keep only one"
        ),
        name=name,
        suggestion="use keys of one type in that dict (strings, say), so that none is lost",
    )


def not_blessable(
    blessed: Session, run: Run, expect: Expect, tolerance: Any = None
) -> list[Finding]:
    """What the next replay of `blessed` would fail, judged before it is written: neither an
    update nor a recording changes `expect:`, so neither writes a golden whose own
    `expect:` fails it. Output and error expectations whose verdict does not follow the
    golden (a `contains`/`regex`/`json_subset` value, `error: fixed`, a tolerant matcher's
    `value:`, a judge that rejects the output even as its own golden), and budgets (a
    recorded stub was never checked against them). The judge's verdict on the output
    `blessed` holds becomes its recorded verdict, which the next replay reuses."""
    from opswald.expect.tolerant import TOLERANT, Tolerance, compare_tolerant

    found = _error_findings(blessed, run.actual, expect, None)
    if blessed.error is None and run.actual.error is None:
        if expect.output.match in TOLERANT:
            output, verdict = compare_tolerant(
                blessed.output,
                blessed.output,
                expect.output,
                tolerance or Tolerance(),
                recorded=blessed.verdicts,
            )
            if verdict is not None:  # the one the next replay looks up: this output, twice
                blessed.verdicts = [verdict]
        else:
            output = compare_output(blessed.output, run.actual.output, expect.output)
        if output is not None:
            found.append(output)
    # the next replay is served what `blessed` recorded: its figures are that run's
    found.extend(
        check_budgets(
            expect.budgets,
            figures(blessed),
            figures(blessed),
            update=UPDATE[run.surface],
            rerecord=rerecord_for_cost(run),
        )
    )
    return found


def _output_finding(
    golden: Session, actual: Session, expect: Expect, tolerance: Any
) -> Finding | None:
    """Compare outputs; tolerant matchers record (and reuse) their verdicts."""
    from opswald.expect.tolerant import TOLERANT, Tolerance, compare_tolerant

    if expect.output.match not in TOLERANT:
        return compare_output(golden.output, actual.output, expect.output)
    finding, verdict = compare_tolerant(
        golden.output,
        actual.output,
        expect.output,
        tolerance or Tolerance(),
        recorded=golden.verdicts,
    )
    if verdict is not None and verdict not in actual.verdicts:
        actual.verdicts.append(verdict)
    return finding


def _as_fork_point(finding: Finding, modifications: Any = None) -> Finding:
    """In a fork, where the run leaves the golden is information, not a failure. A request
    that differs only where request-level `modifications` (`model=`, ...) set it was
    changed by opswald, not sent otherwise by the agent: said so."""
    if finding.kind not in ("mismatch", "extra_call"):
        return finding
    message = finding.message
    changed = _request_modification(finding, modifications)
    if changed is not None:
        message = _changed_by(changed)
    return replace(
        finding,
        failing=False,
        message=f"the run left the golden here: {message}",
        suggestion="",
    )


# the request fields a request-level modification sets (`max_tokens` under its API's names)
_REQUEST_FIELDS = frozenset(REQUEST_KEYS) | {"max_output_tokens"}


def _changed_by(given: dict[str, Any]) -> str:
    """`the modification model=m-large changed the request`: a difference opswald made by
    applying request-level modifications, not one the agent made."""
    listing = ", ".join(f"{k}={v}" for k, v in given.items())
    return f"the modification {listing} changed the request"


def _request_modification(finding: Finding, modifications: Any) -> dict[str, Any] | None:
    """The request-level modifications (`{"model": "m-large"}`) when every difference of a
    model call's request is at a field they set; None otherwise."""
    if finding.step_type != "llm_call" or not finding.differences:
        return None
    if not isinstance(modifications, dict):
        return None
    given = {k: v for k, v in modifications.items() if k in REQUEST_KEYS}
    fields = [
        next((p for p in reversed(d.path) if isinstance(p, str)), "") for d in finding.differences
    ]
    if not given or not all(f in _REQUEST_FIELDS for f in fields):
        return None
    return given


def _fork_path(
    golden: Session,
    actual: Session,
    fork_step: int,
    golden_step: int | None = None,
    start: int | None = None,
    unreached: int | None = None,
    asked: int | None = None,
) -> Finding:
    """How the new path differs from the golden's after the fork point: the run's step
    `fork_step`, which is the golden's step `golden_step` (the run may have recorded
    more or fewer snapshots or calls before it). The run's path is compared from its step
    `start` (`fork_step` unless a later call of a burst started first). A fork at a step
    the run never reached (`unreached`) is told where the run left the golden instead. A
    fork `asked` at a snapshot says it started at the call after it. A model call renamed
    only by the run's `model=` (`metadata.modifications`, applied from the fork on) says
    that modification changed it."""
    at = fork_step if golden_step is None else golden_step
    first = fork_step if start is None else start
    old_steps = [s for s in golden.step_list if s.step >= at]
    new_steps = [s for s in actual.step_list if s.step >= first]
    old, new = [describe(s) for s in old_steps], [describe(s) for s in new_steps]
    model = _modified_model(actual.metadata.get("modifications"))
    numbered = tuple(
        _path_difference(d, old_steps, new_steps, at, first, model) for d in differences(old, new)
    )
    where = f"step {at}" if at == fork_step else f"step {at} ({run_step(fork_step)})"
    if unreached is None:
        forked = f"forked at {where}"
        if asked is not None and asked != at:
            forked += (
                f" (step {asked}, asked for, is a state snapshot, which a fork cannot start "
                "at: it starts at the next call)"
            )
    elif at == unreached:  # its call at the fork's step is not the golden's
        forked = f"left the golden at {where}, the fork's step, with a call that does not match it"
    else:
        forked = f"left the golden at {where}, before the fork's step {unreached}"
    return Finding(
        kind="fork",
        message=f"{forked}: the golden went on with {len(old)} step(s), this run with {len(new)}",
        step=at,
        differences=numbered,
        failing=False,
    )


def _modified_model(modifications: Any) -> str | None:
    """The model the run's `model=` modification sent its requests to, if it has one."""
    if not isinstance(modifications, dict) or modifications.get("model") is None:
        return None
    return str(modifications["model"])


def _path_difference(
    d: Difference,
    old: list[AnyStep],
    new: list[AnyStep],
    at: int,
    first: int,
    model: str | None = None,
) -> Difference:
    """A difference of the two paths (lists of step descriptions from the fork point) as
    a step difference: a step only one path has is that step, whole (`step 5 removed:
    tool_call book`, numbered in the golden; `step 6 inserted: ...`, in the run), and a
    step of another kind or name reads `step 5: 'tool_call book' → 'llm_call m2'`; a
    model call that went to `model` (the run's `model=` modification, which opswald set)
    where the golden's went to another one says so."""
    if not d.path or not isinstance(d.path[0], int):
        return d
    index = d.path[0]
    if d.path[1:] or (d.golden is MISSING) == (d.actual is MISSING):
        # the values are the steps' descriptions: `llm_call m-small` → `llm_call m-large`
        renamed = (
            model is not None
            and not d.path[1:]
            and d.actual == f"llm_call {model}"
            and isinstance(d.golden, str)
            and d.golden.startswith("llm_call ")
        )
        cause = _changed_by({"model": model}) if renamed else ""
        return replace(d, path=d.path[1:], step=at + index, cause=cause)
    from opswald.sessiondiff import compared_step

    if d.actual is MISSING:
        return replace(d, path=(), step=at + index, golden=compared_step(old[index]))
    return replace(d, path=(), step=first + index, actual=compared_step(new[index]))


def _tool_refs(session: Session) -> list[ToolCallRef]:
    return [
        ToolCallRef(step=s.step, tool=s.tool, input=s.input)
        for s in session.step_list
        if isinstance(s, ToolCallStep)
    ]


def _unused(run: Run, expect: Expect) -> list[Finding]:
    unused = list(run.unused)
    if expect.tool_calls.order == "subset":
        unused = [s for s in unused if not isinstance(s, ToolCallStep)]
    if not unused:
        return []
    first = unused[0]
    listing = ", ".join(f"step {s.step} {describe(s)}" for s in unused[:5])
    more = f" and {len(unused) - 5} more" if len(unused) > 5 else ""
    return [
        Finding(
            kind="unused_calls",
            message=f"the agent ended with {len(unused)} recorded call(s) unused: {listing}{more}",
            step=first.step,
            step_type=first.type,
            name=getattr(first, "tool", None) or getattr(first, "model", None),
            suggestion=(
                f"the agent did not make step {first.step} ({describe(first)}), and made "
                "calls the golden has after it"
                if any(s.step > first.step for s in run.served.values())
                else f"the agent stopped before step {first.step}; "
                f"the golden goes on with {describe(first)}"
            ),
        )
    ]


def _error_findings(
    golden: Session, actual: Session, expect: Expect, tb: str | None
) -> list[Finding]:
    g, a = golden.error, actual.error
    if g is None:
        if a is None:
            return []
        return [
            Finding(
                kind="agent_error",
                message=f"the agent raised {a.text()}",
                differences=(Difference(path=("error",), golden=None, actual=a.text()),),
                suggestion=(
                    "the golden finished without an error"
                    + (f"; the agent's {_told_by(a)} ends:\n{_tail(tb)}" if tb else "")
                ),
            )
        ]
    mode = expect.error.match
    if mode == "fixed":
        if a is None:
            return []
        return [_error_finding("the agent still fails (expect.error: fixed)", g, a, mode)]
    if a is None:
        return [
            _error_finding(
                f"the golden expects the agent to fail with {g.type}; it finished without an error",
                g,
                a,
                mode,
            )
        ]
    if mode == "any":
        return []
    if a.type != g.type:
        return [_error_finding(f"the agent failed with {a.type}, not {g.type}", g, a, mode)]
    if mode == "same" and a.message != g.message:
        return [_error_finding(f"the agent failed with another {g.type} message", g, a, mode)]
    return []


def _plain_answer_hint(finding: Finding, answer: Retyped) -> Finding:
    """An output that differs in a run where replay handed the agent plain data in place of
    what a function returned when recorded: the hint says so, and how to get the type back,
    before an update writes an output only replay gives."""
    where = f"step {answer.step} ({answer.step_type} {answer.name})".replace(" )", ")")
    hint = (
        f"{where} handed the agent {_a(answer.given)} where the function had returned "
        f"{_a(answer.returned)}: if that is what changed the output, {_plain_remedy(answer)}; "
        "an update would write an output that only replay gives"
    )
    suggestion = f"{hint}; otherwise: {finding.suggestion}" if finding.suggestion else hint
    return replace(finding, suggestion=suggestion)


def _plain_remedy(answer: Retyped) -> str:
    """How a function's answers are rebuilt as what it returned, not handed over as data."""
    name = answer.name or "the function"
    if answer.unusable:  # it has one: why it is not used, and what makes it usable
        return (
            f"{name}'s return annotation is not used, as {answer.unusable}: "
            f"{usable_remedy(answer.unusable)} or give it decode=, so that replay "
            "rebuilds what it returned"
        )
    short = answer.returned.rsplit(".", 1)[-1]
    return (
        f"annotate {name} with its return type (`-> {short}`) or give it decode=, "
        "so that replay rebuilds what it returned"
    )


def _retyped(finding: Finding, answer: Retyped) -> Finding:
    """An agent error that follows from a served answer of another type than the function
    returned when recorded: said so first, with the remedy in place of an update."""
    where = f"step {answer.step} ({answer.step_type} {answer.name})".replace(" )", ")")
    if answer.hidden:
        message = f"{finding.message}, after {where} {_hidden_said(answer)}"
        remedy = hidden_remedy(answer.name or "the function", answer.hidden)
    elif answer.invalid:
        declared = answer.returned
        message = (
            f"{finding.message}, after {where} was handed the recorded data ({answer.given}): "
            f"it does not validate as its function's `{declared}`"
        )
        remedy = (
            f"make step {answer.step}'s recorded result valid as `{declared}` again (the "
            "golden's data or the annotation changed), or record the step again"
        )
    else:
        message = (
            f"{finding.message}, after {where} handed the agent {_a(answer.given)} where the "
            f"function had returned {_a(answer.returned)}: replay gives back plain data"
        )
        remedy = _plain_remedy(answer)
    return replace(finding, message=message, answer_type=remedy)


def _hidden_said(answer: Retyped) -> str:
    """What replay handed the agent where recording hid values by their names."""
    hidden, declared = answer.hidden, answer.returned
    many = len(hidden) > 1
    if answer.kept:
        if many:
            handed = " and ".join(
                f"`{h.placeholder}` in place of {h.where} ({h.expected})" for h in hidden
            )
            return (
                f"handed the agent {handed}, which its annotation `{declared}` expects: "
                "recording hid those values by their names, as credentials', and the golden "
                "does not hold them"
            )
        h = hidden[0]
        return (
            f"handed the agent `{h.placeholder}` in place of {h.where}, where its annotation "
            f"`{declared}` expects {h.expected}: recording hid that value by its name, as a "
            "credential's, and the golden does not hold it"
        )
    if many:
        said = "; ".join(f"`{h.placeholder}` in {h.where} is not {h.expected}" for h in hidden)
        said = f"{', '.join(h.where for h in hidden)} by their names, as credentials': {said}"
    else:
        h = hidden[0]
        said = (
            f"{h.where} by its name, as a credential's, and the placeholder "
            f"`{h.placeholder}` is not {h.expected}"
        )
    return (
        f"was handed the recorded data ({answer.given}): its function's `{declared}` cannot "
        f"be rebuilt from it, as recording hid {said}"
    )


def _a(kind: str) -> str:
    return ("an " if kind[:1].lower() in "aeiou" else "a ") + kind


def _error_finding(
    message: str, golden: ErrorInfo, actual: ErrorInfo | None, mode: ErrorMode
) -> Finding:
    return Finding(
        kind="error",
        message=message,
        differences=(
            Difference(
                path=("error",),
                golden=golden.text(),
                actual=None if actual is None else actual.text(),
            ),
        ),
        suggestion=_error_hint(golden, actual, mode),
    )


def _error_hint(golden: ErrorInfo, actual: ErrorInfo | None, mode: ErrorMode) -> str:
    """The `expect.error` values that would accept this run, other than the one set."""
    if actual is None:
        return "if the agent is meant to stop failing, set expect.error to `fixed`"
    if actual.type != golden.type:
        accepting = ["any"]
        why = "another error type is fine"
    elif actual.message != golden.message:
        accepting = ["type", "any"]
        why = "another message is fine"
    else:
        accepting = ["same", "type", "any"]
        why = ""
    if mode == "fixed":
        why = "the agent may still fail like this"
    values = [f"`{v}`" for v in accepting if v != mode]
    either = values[0] if len(values) == 1 else f"{', '.join(values[:-1])} or {values[-1]}"
    return f"if {why}, set expect.error to {either}"


_OURS = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # src/opswald


def _agent_traceback(exc: BaseException) -> str:
    """The agent's exception with its last frames, without opswald's own frames (the
    adapter call, the instrumentation wrappers): they are the same in every traceback. For
    an agent run as a process, what it wrote on stderr: its own traceback, not ours."""
    if isinstance(exc, adapters.SubprocessAgentError):
        return exc.stderr
    found = traceback.TracebackException.from_exception(exc, limit=-8)
    theirs = [frame for frame in found.stack if not frame.filename.startswith(_OURS + os.sep)]
    if theirs:
        found.stack = traceback.StackSummary.from_list(theirs)
    return "".join(found.format())


def _told_by(error: ErrorInfo) -> str:
    """What the traceback of a run that ended in `error` is: an agent run as a process
    gives its stderr (`_agent_traceback`), whatever it wrote there."""
    process = adapters.SubprocessAgentError
    if error.type == process.__qualname__ and error.module == process.__module__:
        return "stderr"
    return "traceback"


_MARKERS = re.compile(r"\s*[~^]+[~^\s]*")  # the line under a traceback's code: `~~~^^^`


def _tail(tb: str | None, lines: int = 6) -> str:
    """The end of a traceback, indented: its last frames whole (each with its `File`
    line, so the code shown can be found), as many as fit in `lines` lines of code and
    file (at least one), under the `Traceback` line and a count of the frames left out,
    then the exception. The lines that mark where in the code above them it failed
    (`~~~~^^^^`, which Python 3.13 writes under most lines of code) do not count. Text
    that is not a Python traceback (an agent process's stderr): its last `lines` lines."""
    if not tb:
        return ""
    text = tb.rstrip()
    group = _first_of_group(text)
    if group is not None:  # an exception group (a task group's): its first exception's
        head, member = group
        first = _tail(member, lines)
        return f"    {head}; the first of them:\n{first}" if first else ""
    start = text.rfind(_TRACEBACK_HEAD)  # of a chain, the last (the one raised)
    block = text[start:].splitlines() if start >= 0 else []
    frames: list[list[str]] = []
    at = 1
    while at < len(block) and block[at].startswith("  "):
        if block[at].startswith('  File "'):
            frames.append([block[at]])
        elif frames:
            frames[-1].append(block[at])
        at += 1
    error = block[at:]
    if not frames or not error:
        return _last_lines(text, lines)
    kept: list[list[str]] = []
    counted = 0
    for frame in reversed(frames):
        size = sum(not _MARKERS.fullmatch(line) for line in frame)
        if kept and counted + size > lines:
            break
        kept.insert(0, frame)
        counted += size
    shown = [block[0]]
    if len(kept) < len(frames):
        left = len(frames) - len(kept)
        shown.append(f"  ... {left} frame{'s' if left != 1 else ''} above")
    shown += [line for frame in kept for line in frame]
    shown += error if len(error) <= lines else [*error[: lines - 1], "  ..."]
    return "\n".join("    " + line for line in shown)


_TRACEBACK_HEAD = "Traceback (most recent call last):"
_GROUP_HEAD = "Exception Group Traceback (most recent call last):"


def _first_of_group(text: str) -> tuple[str, str] | None:
    """Of a traceback whose exception (the last of a chain) is an exception group, as
    Python formats one: the group's own line (`ExceptionGroup: ... (2 sub-exceptions)`)
    and the text of its first exception, a traceback of its own (nested groups read the
    same way); None for any other text. Python draws a group's members in boxes: its own
    frames `| `-prefixed at some column, each member's lines `| `-prefixed two further
    in, under a `+-+--- 1 ---` line at the group's column."""
    lines = text.splitlines()
    heads = [
        (len(line) - len(line.lstrip(" ")), i)
        for i, line in enumerate(lines)
        if line.lstrip(" ") == f"+ {_GROUP_HEAD}"
    ]
    if heads:  # the group raised: of the outermost column, the last
        col = min(c for c, _ in heads)
        start = max(i for c, i in heads if c == col)
    elif lines and lines[0] == _GROUP_HEAD:  # a group that is a member (read unboxed)
        col, start = 0, 0
    else:
        return None

    def unboxed(line: str, at: int) -> str:
        rest = line[at:]
        return rest[2:] if rest.startswith("| ") else "" if rest == "|" else rest

    first = next(
        (i for i in range(start + 1, len(lines)) if lines[i][col:].startswith("+-+")), None
    )
    if first is None or first == start + 1:
        return None
    head = unboxed(lines[first - 1], col).strip()
    inner = col + 2
    member: list[str] = []
    for line in lines[first + 1 :]:
        if line[inner:].startswith("+") and not line[inner:].startswith("+-+"):
            break  # the next member's line, or the box's end
        member.append(unboxed(line, inner))
    return (head, "\n".join(member)) if member and head else None


def _last_lines(text: str, lines: int) -> str:
    kept: list[str] = []
    counted = 0
    for line in reversed(text.splitlines()):
        if counted == lines:
            break
        kept.append("    " + line)
        counted += not _MARKERS.fullmatch(line)
    return "\n".join(reversed(kept))
