"""Golden files as pytest collectors and items, and the run of one golden."""

from __future__ import annotations

import difflib
import functools
import inspect
import os
import re
import types
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, NoReturn, TypeVar, cast

import pytest
from _pytest._code.code import ExceptionInfo, TerminalRepr

from opswald import adapters, files
from opswald.diff import DiffMode, render_verdict
from opswald.engine.context import (
    STEP_MODIFICATIONS,
    HookFailed,
    Policy,
    changes_one_step,
    fork_problem,
)
from opswald.engine.normalize import RequestRules
from opswald.engine.replay import call_hook
from opswald.engine.run import (
    CRASH_INTENDED,
    CRASH_NOT_BLESSED,
    NEVER_BLESSED,
    ReplayResult,
    RunSettings,
    blocked_fix,
    execute,
    fix_line,
    from_the_golden,
    golden_step_modifications,
    judge,
    keys_lost,
    missing_key,
    no_data_form,
    not_blessable,
    recorded_under,
    recorded_variant,
    rerecord_for_cost,
    side_effects_ahead,
    take_agent_exception,
    unconfigured,
)
from opswald.engine.tape import describe, step_name
from opswald.plugin import INI_USEFIXTURES
from opswald.pricing import CostError
from opswald.redact import Redactor
from opswald.session import AnyStep, Expect, NormalizeRule, RequestsExpect, Session, cut_short
from opswald.terminal import escaped
from opswald.verdict import Finding, Verdict
from opswald.writeback import blessed, write, writes_blocked

if TYPE_CHECKING:
    from _pytest.nodes import Node  # the type pytest's Node.getparent is written with

    from opswald.collectcache import Entry

Status = Literal["passed", "failed", "updated", "recorded"]


@dataclass(frozen=True, kw_only=True)
class Settings:
    """The plugin's options, read once per run (kept in config.stash)."""

    mode: Literal["replay", "record", "rerecord", "live"] = "replay"
    update: bool = False
    force: bool = False
    allow_side_effects: bool = False
    diff_mode: DiffMode = "detailed"
    adapter: str | None = None
    adapter_root: Path | None = None  # the folder of the config file naming the adapter
    requests: RequestsExpect = field(default_factory=RequestsExpect)
    redactor: Redactor = field(default_factory=Redactor)
    prices: Any = None  # a pricing.Pricer
    integrations: tuple[str, ...] = ()  # ini opswald_integrations
    side_effect_tools: frozenset[str] = frozenset()  # ini opswald_side_effect_tools
    langgraph_state: bool = False  # ini opswald_langgraph_state
    limits: files.Limits = files.DEFAULT_LIMITS  # ini opswald_max_golden_bytes, _depth
    modify: dict[str, Any] = field(default_factory=dict)  # --opswald-modify
    variants: tuple[tuple[str, dict[str, Any]], ...] = ()  # --opswald-variant
    fork_at: int | None = None
    timeout: float | None = None
    tolerance: Any = None  # expect.tolerant.Tolerance
    repeat: int = 1
    min_pass_rate: float = 1.0


@dataclass(frozen=True, kw_only=True)
class Outcome:
    status: Status
    result: ReplayResult | None
    text: str = ""
    written: str | None = None
    notes: tuple[str, ...] = ()


def _failed(text: str, result: ReplayResult, settings: Settings) -> tuple[str, Outcome]:
    """The failure text, scrubbed of secrets, and its outcome."""
    text = settings.redactor.text(text)
    return text, Outcome(status="failed", result=result, text=text)


class GoldenError(Exception):
    """A golden that failed: the text is the rendered verdict or the usage problem.

    `stopped`: for a run that was stopped (a timeout) or whose process died, how far it got,
    as plain data for the reports (see `_stopped`)."""

    def __init__(
        self, text: str, outcome: Outcome | None = None, *, stopped: dict[str, Any] | None = None
    ) -> None:
        super().__init__(text)
        self.text = text
        self.outcome = outcome
        self.stopped = stopped
        # what the agent raised, in this process (`_with_agent_frames` shows its frames)
        self.agent_exception: BaseException | None = None


@dataclass
class RunView:
    """What the step hooks see as `replay`: the golden and the steps so far."""

    golden: Session
    nodeid: str
    ctx: Any = None

    @property
    def steps(self) -> list[Any]:
        return self.ctx.actual_steps() if self.ctx is not None else []


HOOKS = ("pytest_opswald_before_step", "pytest_opswald_after_step", "pytest_opswald_on_error")


class HookListener:
    """Forwards step events to the pytest_opswald_* step hooks and the breakpoints."""

    def __init__(self, hook: Any, view: RunView, breakpoints: Any) -> None:
        # the golden's own hook relay (`item.ihook`): a conftest's step hooks apply to the
        # goldens below its folder, as pytest's per-directory hooks do
        self.hook = hook
        self.view = view
        self.breakpoints = breakpoints
        self.notes: list[str] = []
        self.hits: list[tuple[int, str]] = []
        # with no breakpoints and no plugin or conftest implementing a step hook there is
        # nothing to tell: the run goes without this listener (and takes replay's fast path)
        self.needed = breakpoints is not None or any(
            hook.get_hookimpls()
            for hook in (
                hook.pytest_opswald_before_step,
                hook.pytest_opswald_after_step,
                hook.pytest_opswald_on_error,
            )
        )

    def before_step(self, ctx: Any, info: Any) -> None:
        self.view.ctx = ctx
        call_hook(self.hook.pytest_opswald_before_step, HOOKS[0], replay=self.view, step=info)

    def after_step(self, ctx: Any, step: Any) -> None:
        from opswald.engine.replay import _result_of

        call_hook(
            self.hook.pytest_opswald_after_step,
            HOOKS[1],
            replay=self.view,
            step=step,
            result=_result_of(step),
        )
        if self.breakpoints is not None:
            self.breakpoints.check(self, ctx, step)

    def on_error(self, ctx: Any, step: Any, error: Any) -> None:
        call_hook(
            self.hook.pytest_opswald_on_error, HOOKS[2], replay=self.view, step=step, error=error
        )


def merge_expect(base: Expect | None, override: dict[str, Any] | None) -> Expect:
    """The golden's `expect:` with a marker's `expect={...}` laid over it, key by key; a
    problem of the result is a GoldenError worded as the golden loader words it."""
    from pydantic import ValidationError

    from opswald.files import schema_problem

    data = (base or Expect()).model_dump(exclude_unset=True)
    for key, value in (override or {}).items():
        if isinstance(value, dict) and isinstance(data.get(key), dict):
            data[key] = {**data[key], **value}
        else:
            data[key] = value
    try:
        return Expect.model_validate(data)
    except ValidationError as exc:
        problem = schema_problem(exc, Expect)
    # raised outside the except: the test shows this one line, not pydantic's chain
    field = f"expect.{problem.field}" if problem.field else "expect"
    raise GoldenError(f"@pytest.mark.golden: {field}: {problem.message}")


def _rules(settings: Settings, expect: Expect, extra: Iterable[NormalizeRule]) -> RequestRules:
    return RequestRules.build(
        expect.requests, settings.requests, extra_normalize=list(extra), redactor=settings.redactor
    )


def run_golden(
    *,
    golden: Session,
    path: Path,
    settings: Settings,
    adapter: Callable[..., Any],
    expect_override: dict[str, Any] | None = None,
    modify: dict[str, Any] | None = None,
    variant: str | None = None,
    extra_normalize: Iterable[NormalizeRule] = (),
    listener: HookListener | None = None,
) -> Outcome:
    """Replay, record or update one golden (`modify`: the modifications of the marker or
    of the variant named `variant`); raise GoldenError when it fails."""
    expect = merge_expect(golden.expect, expect_override)
    writing = settings.mode in ("record", "rerecord") and (
        golden.is_stub or settings.mode == "rerecord"
    )
    if golden.is_stub and not writing and not settings.update:
        raise GoldenError(
            f"{path.name}: not recorded yet (a stub: no steps, no output)\n"
            "fix: run with --opswald-mode=record to record it"
        )
    modify = {**(modify or {}), **settings.modify}  # the command line wins over the marker
    given = {k: modify.pop(k) for k in STEP_MODIFICATIONS if k in modify}
    own = golden_step_modifications(golden)  # the weakest source of them
    step_mods = {**own, **given}
    from_golden = [key for key in own if key not in given]
    if from_golden and settings.fork_at is None and (settings.update or writing):
        # an update or a recording is written, never forked (--opswald-fork-at is refused
        # with them): sending the user to give a fork step would only loop
        option = "--opswald-update" if settings.update else f"--opswald-mode={settings.mode}"
        raise GoldenError(
            f"{changes_one_step(list(step_mods))}{from_the_golden(own, given)}, and "
            f"{'an update' if settings.update else 'a recording'} cannot fork: remove "
            f"{', '.join(from_golden)} from the golden's `modifications:` (or run the fork "
            f"with --opswald-fork-at=N, without {option})"
        )
    if step_mods and settings.fork_at is None:
        raise GoldenError(
            f"{changes_one_step(list(step_mods))}: give the step with --opswald-fork-at=N"
            + from_the_golden(own, given)
        )
    policy: Policy
    if writing or golden.is_stub:
        policy = "live"
    elif settings.update:
        policy = "update"
    elif settings.mode == "live":
        policy = "live"
    elif settings.fork_at is not None or modify:
        policy = "fork"  # judged on expectations, from the first call the change touches
    else:
        policy = "replay"
    if policy == "fork" and settings.fork_at is not None:
        problem = fork_problem(
            golden, settings.fork_at, step_mods, [*modify, *golden.modifications]
        )
        if problem is not None:
            raise GoldenError(f"{path.name}: --opswald-fork-at={settings.fork_at}: {problem}")
    run_settings = RunSettings(
        policy=policy,
        allow_side_effects=settings.allow_side_effects,
        block_side_effects=not (writing or golden.is_stub),
        modifications=modify,
        fork_at=settings.fork_at if policy == "fork" else None,
        step_modifications=step_mods,
        listeners=(listener,) if listener is not None and listener.needed else (),
        rules=_rules(settings, expect, extra_normalize),
        redactor=settings.redactor,
        offline=True,
        prices=settings.prices,
        integrations=settings.integrations,
        side_effect_tools=settings.side_effect_tools,
        langgraph_state=settings.langgraph_state,
        variant=variant,
    )
    timeout = golden.timeout or settings.timeout
    try:
        if timeout:
            run, raised = _execute_with_timeout(
                golden, adapter, run_settings, expect, listener, timeout, path
            )
        else:
            run = execute(golden, adapter, settings=run_settings, expect=expect)
            # what the agent raised, frames and all (in this process only): a failure is
            # raised with its traceback, so that `pytest --pdb` stops where it raised
            raised = take_agent_exception()
    except HookFailed as failed:
        assert failed.__cause__ is not None
        if isinstance(failed.__cause__, CostError):  # a value, not a raise: no traceback
            raise GoldenError(f"{path.name}: {failed.__cause__}") from None
        raise failed.__cause__ from None
    except adapters.AdapterMismatch as exc:
        # the agent never ran (a subprocess adapter's command that could not be started):
        # a misconfiguration, as an adapter that is not found is, so nothing is written
        raise GoldenError(str(exc)) from None
    # a note whether the golden passes or not; under a timeout the threads ended with the
    # child process the agent ran in
    if run.left_running and listener is not None and not timeout:
        listener.notes.append(_left_running_note(path, run.left_running))
    verdict = judge(golden, run, expect, tolerance=settings.tolerance)
    if listener is not None and listener.hits:
        found = _breakpoint_findings(listener.hits, run.actual.step_list)
        verdict = Verdict(findings=(*verdict.findings, *found))
    result = ReplayResult(
        golden=golden,
        actual=run.actual,
        verdict=verdict,
        policy=policy,
        fork_step=run.fork_step,
        agent_traceback=run.agent_traceback,
        matched=run.matched,
        offline_note=run.offline_note,
        offline_proxy=run.offline_proxy,
    )
    total = len(golden.step_list) if not golden.is_stub else None
    wants_write = writing or golden.is_stub or (settings.update and not verdict.passed)
    if not wants_write:
        if verdict.passed:
            notes = _reported(path, verdict, total, update=settings.update)
            return Outcome(status="passed", result=result, notes=notes)
        ahead = (
            ()
            if settings.allow_side_effects
            else side_effects_ahead(golden, verdict, settings.side_effect_tools)
        )
        # the run's modifications are the new golden's too: a plain update replays without
        # them, passes, and writes nothing (step modifications need a fork, never written)
        update = "--opswald-update"
        if settings.variants:
            update += " and this --opswald-variant alone"
        elif any(key not in STEP_MODIFICATIONS for key in settings.modify):
            update += " and the same --opswald-modify"
        fix = fix_line(
            verdict,
            expect,
            forked=run_settings.fork_at is not None,
            update=update,
            side_effects=ahead,
            live=policy == "live",
            recorded=recorded_under(golden, modify),
            variant=recorded_variant(golden),
        )
        if run.offline_note is not None and policy != "live":
            fix = blocked_fix(run.offline_note, proxy=run.offline_proxy)
        text = render_verdict(verdict, total_steps=total, mode=settings.diff_mode, fix=fix)
        failure = GoldenError(*_failed(text, result, settings))
        if raised is not None and raised.__traceback__ is not None:
            failure.agent_exception = raised
            raise failure.with_traceback(raised.__traceback__)
        raise failure
    return _write(path, golden, run, result, settings, total, expect)


def _left_running_note(path: Path, names: tuple[str, ...]) -> str:
    """The summary's note on threads an agent left running after its replay ended."""
    count = f"{len(names)} thread{'s' if len(names) != 1 else ''}"
    shown = ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
    return (
        f"{path.name}: its agent left {count} running after its replay ended ({shown}); the "
        "offline guard stays on for them until they end (a call they make off loopback is "
        "refused, after the golden's result is in, so it is named nowhere). Wait for them "
        "(join) before the agent returns"
    )


class _StepReporter:
    """Tells the parent process which step the agent is at (for the timeout message), and
    logs each step into the file `log` (a descriptor shared with the parent), so that the
    reports of a run that is killed show where it was and the steps it had run."""

    def __init__(self, report: Callable[[Any], None], log: int | None = None) -> None:
        self.report = report
        self.log = log

    def before_step(self, ctx: Any, info: Any) -> None:
        from opswald.engine.isolate import Progress

        label = f"{info.type} {info.name}" if info.name else info.type
        self.report(Progress(step=info.number, description=label))
        self._log({"at": info.number, "type": info.type, "name": info.name})

    def after_step(self, ctx: Any, step: Any) -> None:
        from opswald.engine.isolate import Progress

        self.report(Progress(step=step.step, description=describe(step), done=True))
        usage = getattr(step, "usage", None)
        self._log(
            {
                "done": step.step,
                "type": step.type,
                "name": step_name(step),
                "cost": getattr(step, "cost", None),
                # a failed call without a cost cost $0; a stream cut short is unknown
                "failed": step.error is not None and cut_short(step) is None,
                "input_tokens": usage.input_tokens if usage is not None else None,
                "output_tokens": usage.output_tokens if usage is not None else None,
                "total_tokens": usage.total() if usage is not None else None,
            }
        )

    def _log(self, event: dict[str, Any]) -> None:
        import json
        import os

        if self.log is not None:
            os.write(self.log, (json.dumps(event) + "\n").encode())


def _stopped(kind: str, log: Any, progress: Any = None) -> dict[str, Any]:
    """How far a stopped run got, from the step log of its child process (and the last
    progress the child reported, which the timeout message names): the step it was at,
    and the figures of each step it finished (`report.summary.failure_record` sums them)."""
    import json

    log.seek(0)
    events = []
    for line in log.read().decode("utf-8", "replace").splitlines():
        try:
            events.append(json.loads(line))
        except ValueError:  # a line cut short when the process was killed
            continue
    ran = [e for e in events if "done" in e]
    last = events[-1] if events else {}
    step, kind_, name = last.get("at", last.get("done")), last.get("type"), last.get("name")
    if progress is not None and progress.step is not None:
        step = progress.step
        kind_, _, name = (progress.description or "").partition(" ")
    return {
        "kind": kind,
        "step": step,
        "type": kind_ or None,
        "name": name or None,
        "ran": ran,
    }


def _execute_with_timeout(
    golden: Session,
    adapter: Callable[..., Any],
    run_settings: RunSettings,
    expect: Expect,
    listener: HookListener | None,
    timeout: float,
    path: Path,
) -> tuple[Any, BaseException | None]:
    """Run the session in a forked child that is killed when `timeout` expires: the run,
    and what the agent raised, rebuilt with the child's frames (their source and, for
    `-l`, their locals' reprs), or None. (`pytest --pdb` opens in a stand-in frame.)"""
    import tempfile

    from opswald.engine.isolate import IsolationError, Timeout, arrive, carry, run_isolated

    with tempfile.TemporaryFile() as log:

        def session(report: Callable[[Any], None]) -> Any:
            listeners = (*run_settings.listeners, _StepReporter(report, log.fileno()))
            run = execute(
                golden, adapter, settings=replace(run_settings, listeners=listeners), expect=expect
            )
            raised = take_agent_exception()
            collected = (listener.hits, listener.notes) if listener is not None else None
            return run, collected, carry(raised) if raised is not None else None

        try:
            run, collected, carried = run_isolated(session, timeout=timeout)
        except Timeout as exc:
            where = exc.progress.where()  # as the message above says it
            raise GoldenError(
                f"{path.name}: {exc}\n"
                f"fix: the agent was stopped (its process killed) {where}; raise the "
                "golden's `timeout:` or --opswald-timeout if it needs longer",
                stopped=_stopped("timeout", log, exc.progress),
            ) from None
        except IsolationError as exc:
            raise GoldenError(
                f"{path.name}: the agent's process failed: {exc}",
                stopped=_stopped("process_died", log),
            ) from None
    if listener is not None and collected is not None:
        listener.hits[:], listener.notes[:] = collected
    return run, arrive(carried) if carried is not None else None


# findings that a passing golden's summary notes: state differences (`state: report`), a
# watched state path or a per-tool rule that names nothing
_NOTED = ("state", "tool_order")


def _reported(
    path: Path, verdict: Verdict, total: int | None, *, update: bool = False
) -> tuple[str, ...]:
    """What a passing golden reports without failing (state differences under the default
    `expect.state: report`): a note in the summary, so it is shown, as the README says.
    Under `update`, first a note that the golden was not rewritten and how to write them:
    an update writes failing goldens only, and these do not fail."""
    from opswald.diff import headline, render_difference

    notes = []
    reported = [f for f in verdict.findings if not f.failing and f.kind in _NOTED]
    shown = sum(bool(f.differences) for f in reported)  # not a watched path no snapshot has
    if update and shown:
        notes.append(
            f"{path.name}: not rewritten: it passed, its "
            f"{shown} state difference{'s' if shown > 1 else ''} only reported, and "
            "--opswald-update rewrites failing goldens only; to write "
            f"{'them' if shown > 1 else 'it'}, set `state: exact` under its `expect:` for "
            "one --opswald-update run, or rerecord it with --opswald-mode=rerecord"
        )
    for f in reported:
        first = render_difference(f.differences[0], "short")[0] if f.differences else ""
        more = f" (+{len(f.differences) - 1} more)" if len(f.differences) > 1 else ""
        if f.differences_cut:
            more = f" (at least {len(f.differences) - 1} more)"
        notes.append(f"{path.name}: {headline(f, total_steps=total)}: {first}{more}".rstrip(": "))
    return tuple(notes)


def _breakpoint_findings(hits: list[tuple[int, str]], steps: list[AnyStep]) -> list[Finding]:
    by_number = {s.step: s for s in steps}
    return [
        Finding(
            kind="breakpoint",
            message=f"breakpoint {expr!r} hit at step {step}",
            step=step,
            step_type=by_number[step].type if step in by_number else None,
            name=step_name(by_number[step]) if step in by_number else None,
            suggestion="remove --opswald-break or change --opswald-break-action",
        )
        for step, expr in hits
    ]


def _not_written(
    reasons: list[Finding],
    result: ReplayResult,
    settings: Settings,
    total: int | None,
    fix: str,
) -> NoReturn:
    """Fail without writing: the reasons first, in the text and for the reports (JSON,
    JUnit), which take the first failing finding as the failure's step and fix."""
    text = render_verdict(
        Verdict(findings=tuple(reasons)), total_steps=total, mode=settings.diff_mode, fix=fix
    )
    others = tuple(f for f in result.verdict.findings if f not in reasons)
    result = replace(result, verdict=Verdict(findings=(*reasons, *others)))
    raise GoldenError(*_failed(text, result, settings))


NEVER_BLESSED_FIX = (
    "not written: a budget violation, a blocked side effect or a failing breakpoint is never "
    "blessed"
)


def _refusal(reasons: list[Finding], expect: Expect, run: Any) -> str:
    """The `fix:` line of a golden left unwritten for `reasons`, what its next replay would
    fail (what the run found, or what the session to be written would meet)."""
    from opswald.expect.budgets import cut_short_cost, no_usage_cost, unknown_cost

    if any(f.kind in NEVER_BLESSED for f in reasons):
        if not any(unknown_cost(f) for f in reasons):
            return NEVER_BLESSED_FIX
        if all(cut_short_cost(f) for f in reasons):
            return "not written: a cost budget that cannot be checked is never blessed"
        how = (
            "have the model client report usage (or cost)"  # no price would help
            if any(no_usage_cost(f) for f in reasons)
            else "configure a price for the model (or have the agent report cost)"
        )
        rerecord = rerecord_for_cost(run)
        how += (
            f", then record the golden again with {rerecord} (an update keeps each recorded "
            "call's cost)"
            if rerecord
            else ", then run this command again"
        )
        if all(unknown_cost(f) for f in reasons):
            return f"not written: a cost budget that cannot be checked is never blessed; {how}"
        return f"{NEVER_BLESSED_FIX}, nor a cost budget that cannot be checked: {how}"
    needs = unconfigured(reasons)
    if needs:
        return f"not written: a missing setting is not a change of behaviour; {needs}"
    if expect.output.match == "judge" and any(f.kind == "output" for f in reasons):
        return (
            "not written: the judge rejects the new output as the golden's own (match: "
            "judge), and neither an update nor a recording changes `expect:`; fix the agent, "
            "or change expect.output.rubric"
        )
    return (
        "not written: the golden's own `expect:` fails this run whatever the golden holds "
        "(neither an update nor a recording changes `expect:`); edit expect.output or "
        "expect.error"
    )


def _write(
    path: Path,
    golden: Session,
    run: Any,
    result: ReplayResult,
    settings: Settings,
    total: int | None,
    expect: Expect,
) -> Outcome:
    cut = [f for f in result.verdict.findings if f.kind == "read_past_cut"]
    if cut:  # the truncated answer the agent got would be blessed as the golden's
        _not_written(
            [*result.verdict.failures, *cut],
            result,
            settings,
            total,
            "not written: an update cannot make up the rest of an answer the golden has "
            "only as far as it came; record the golden again with --opswald-mode=rerecord",
        )
    blockers = [f for f in result.verdict.failures if f.kind in NEVER_BLESSED]
    if blockers:
        _not_written(blockers, result, settings, total, _refusal(blockers, expect, run))
    retyped = [f for f in result.verdict.failures if f.answer_type]
    if retyped:  # the agent's crash on an answer replay handed back as another type
        _not_written(
            retyped,
            result,
            settings,
            total,
            "not written: the agent failed on what replay handed it, not on its own; "
            + retyped[0].answer_type,
        )
    if result.policy == "update" and golden.error is None and run.actual.error is not None:
        # a crash blessed would pass from then on (the agent's error only has to stay the
        # same): a bug, or a missing key, written as what the agent should do
        crashed = [f for f in result.verdict.failures if f.kind == "agent_error"]
        key = missing_key(Verdict(findings=tuple(crashed)))
        _not_written(
            crashed or list(result.verdict.failures),
            result,
            settings,
            total,
            f"not written: {CRASH_NOT_BLESSED}; {key or 'fix the agent; ' + CRASH_INTENDED}",
        )
    needs = unconfigured(result.verdict.failures)
    if needs:  # every run fails the same until it is configured, whatever the golden holds
        _not_written(
            [f for f in result.verdict.failures if f.needs],
            result,
            settings,
            total,
            f"not written: a missing setting is not a change of behaviour; {needs}",
        )
    shapeless = no_data_form(run)
    if shapeless is not None:
        _not_written(
            [shapeless],
            result,
            settings,
            total,
            "not written: a golden holding that repr would fail its own next replay",
        )
    lost = keys_lost(run)
    if lost is not None:
        _not_written(
            [lost], result, settings, total, "not written: the golden would lose those keys"
        )
    blocked = writes_blocked(force=settings.force)
    if blocked:
        text = (
            render_verdict(result.verdict, total_steps=total, mode=settings.diff_mode, fix=blocked)
            if result.verdict.failures
            else f"{path.name}: {blocked}"
        )
        raise GoldenError(*_failed(text, result, settings))
    written = blessed(golden, run)
    still = not_blessable(written.session, run, expect, settings.tolerance)
    if still:
        _not_written(still, result, settings, total, _refusal(still, expect, run))
    try:
        dropped = write(path, written, settings.limits, settings.redactor)
    except files.GoldenWriteRefused as exc:  # loading would refuse it: its next replay fails
        why = str(exc)
        if not result.verdict.failures:
            raise GoldenError(*_failed(f"{path.name}: {why}", result, settings)) from None
        _not_written(list(result.verdict.failures), result, settings, total, why)
    except OSError as exc:  # a read-only checkout, a full disk: the failure as it is, unwritten
        why = f"not written: cannot write {path}: {exc.strerror or exc}"
        if not result.verdict.failures:  # a stub recorded: nothing failed but the write
            raise GoldenError(*_failed(f"{path.name}: {why}", result, settings)) from None
        _not_written(list(result.verdict.failures), result, settings, total, why)
    status: Status = "updated" if not golden.is_stub and settings.mode != "rerecord" else "recorded"
    error = run.actual.error
    notes = [
        f"{path.name}: {status} a session that ends with {error.type}: {error.message}"
        if error is not None
        else None,
        _unrecorded_note(path, status, run.unrecorded),
        dropped,
        *(f"{path.name}: {note}" for note in run.return_notes),
    ]
    return Outcome(
        status=status, result=result, written=str(path), notes=tuple(n for n in notes if n)
    )


def _unrecorded_note(path: Path, status: str, unrecorded: tuple[str, ...]) -> str | None:
    """The SDK requests that went out live unrecorded (endpoints opswald does not record):
    the golden does not have them, and its replay stops at the first of them."""
    if not unrecorded:
        return None
    shown = ", ".join(unrecorded[:3]) + (
        f" and {len(unrecorded) - 3} more" if len(unrecorded) > 3 else ""
    )
    which = (
        "a request to an endpoint"
        if len(unrecorded) == 1
        else f"{len(unrecorded)} requests to endpoints"
    )
    return (
        f"{path.name}: {status} without {which} opswald does not record ({shown}), which "
        "went to the provider live; its replay stops at the first of them. Make such calls "
        "inside an @opswald.tool function to record their results"
    )


# -- pytest nodes -------------------------------------------------------------------------

_BAD_ID = re.compile(r"::|[\[\]\n\r]")


def item_name(golden: Session, path: Path) -> str:
    """The golden's test name: its `name:` (else the file's stem), with what steers a
    terminal escaped as pytest escapes ids (`\x1b`, `\u202e`), and what pytest's node ids
    give a meaning to (`::`, brackets, line breaks) made `_`."""
    name = escaped(golden.name or path.name.split(".golden.")[0])
    return _BAD_ID.sub("_", name).strip() or "golden"


def _entry_of(golden: Session, path: Path) -> Entry:
    from opswald.collectcache import Entry

    return Entry(
        name=item_name(golden, path), tags=tuple(golden.tags), fixtures=tuple(golden.fixtures)
    )


class GoldenFile(pytest.File):
    """A `*.golden.yaml|yml|json` file: one golden, one item.

    Not a pytest.Module (it is no Python module, and plugins that act on every module,
    looking for snapshots or coverage, have nothing to do with it), yet the "module" of
    module-scoped fixtures: its item names it as its module (`GoldenItem.getparent`), so a
    module-scoped fixture is set up once per golden file. It has no Python object."""

    obj = None  # nothing is imported: `request.module` and `item.module` are None

    def collect(self) -> Iterable[pytest.Item]:
        from opswald.collectcache import digest_of, index_of
        from opswald.plugin import settings_of

        index = index_of(self.config)
        stat = self.path.stat()
        entry = index.lookup(self.path, stat)
        compact: bytes | None = None
        if entry is None:  # parsed and validated now: a malformed golden fails collection
            read: list[str] = []  # the digest of the bytes parsed, when the index is on
            seen = (lambda raw: read.append(digest_of(raw))) if index.on else None
            caps = settings_of(self.config).limits
            if self.config.option.collectonly:  # nothing runs: hold nothing of the golden
                golden = files.load(
                    self.path, max_bytes=caps.max_bytes, max_depth=caps.max_depth, seen=seen
                )
            else:
                golden, compact = files.load_compact(
                    self.path, max_bytes=caps.max_bytes, max_depth=caps.max_depth, seen=seen
                )
            entry = _entry_of(golden, self.path)
            now = self.path.stat()
            unchanged = (now.st_mtime_ns, now.st_size) == (stat.st_mtime_ns, stat.st_size)
            if read and unchanged:  # not written to while it was read
                index.remember(self.path, stat, entry, read[0])
        _check_plugin_markers(self.path, entry.tags, self.config)
        name = entry.name
        variants = settings_of(self.config).variants
        items = (
            [
                GoldenItem.from_parent(
                    self, name=f"{name}[{v}]", compact=compact, variant=(v, mods), entry=entry
                )
                for v, mods in variants
            ]
            if variants
            else [GoldenItem.from_parent(self, name=name, compact=compact, entry=entry)]
        )
        _check_fixtures(self.path, entry.fixtures, items[0])
        for tag in entry.tags:
            # as a mark of the item only: registering it (pytest.mark.<tag>) would let
            # ordinary tests use it under --strict-markers once a golden was collected
            mark = pytest.Mark(tag, (), {}, _ispytest=True)
            for item in items:
                item.keywords[tag] = mark
                item.own_markers.append(mark)
        yield from items

    def repr_failure(  # type: ignore[override]
        self, excinfo: ExceptionInfo[BaseException]
    ) -> str | TerminalRepr:
        if isinstance(excinfo.value, files.GoldenLoadError):
            from opswald.plugin import settings_of

            # scrubbed of the default shapes already; the run's own rules (hook, pii) too
            redactor: Redactor = settings_of(self.config).redactor
            return redactor.text(f"malformed golden: {excinfo.value}")
        return super().repr_failure(excinfo)


def _check_plugin_markers(path: Path, tags: Iterable[str], config: pytest.Config) -> None:
    """A tag named like an installed plugin's marker would hand the golden to that plugin
    (a bare `timeout` mark crashes pytest-timeout; `flaky` reruns it): a collection error
    at the file's `tags` line, as a tag named like pytest's own markers is."""
    from opswald.plugin import plugin_markers

    registered = plugin_markers(config)
    clash = [(i, tag) for i, tag in enumerate(tags) if tag in registered]
    if not clash:
        return
    index, tag = clash[0]
    raise files.GoldenLoadError(
        f"tag {tag!r} is the marker of an installed pytest plugin (@pytest.mark.{tag}) "
        "and would change how the golden runs; choose another name",
        path=path,
        line=_line_of_key(path, "tags"),
        field=f"tags[{index}]",  # as the load's own checks of each tag say it
    )


def _line_of_key(path: Path, key: str) -> int | None:
    """The line of the golden's top-level `key:` (YAML or JSON), if it can be found."""
    pattern = re.compile(rf"""\s*["']?{key}["']?\s*:""")
    lines = path.read_text(errors="replace").splitlines()
    return next((n for n, text in enumerate(lines, 1) if pattern.match(text)), None)


def _check_fixtures(path: Path, names: Iterable[str], item: GoldenItem) -> None:
    """A golden's `fixtures:` naming a fixture that is not visible at the golden (misspelt,
    or defined in a conftest.py of another folder): a collection error at its `fixtures:`
    line, as a tag that cannot be one is, rather than pytest's "fixture not found" at
    setup, which would point at opswald's code, not at the golden."""
    # pytest found the definitions of the names it could (the item's fixture closure)
    found = item._fixtureinfo.name2fixturedefs
    names = tuple(names)
    if "golden_replay" in names:  # the marker tests' fixture: a golden is replayed anyway
        raise files.GoldenLoadError(
            "golden_replay is the fixture of a @pytest.mark.golden test (it replays the golden "
            "the marker names); a golden file is replayed as it is, and takes no such fixture"
            "\nfix: take golden_replay out of fixtures:",
            path=path,
            line=_line_of_key(path, "fixtures"),
            field="fixtures",
        )
    missing = [name for name in names if name not in found and name != "request"]
    if not missing:
        _check_unparametrized(path, names, item)
        return
    name = missing[0]
    close = difflib.get_close_matches(name, _visible_fixtures(item), n=5, cutoff=0.6)
    candidates = "".join(f"\n- {candidate}" for candidate in close)
    raise files.GoldenLoadError(
        f"no fixture named {name!r} is visible to this golden (fixtures come from a "
        "conftest.py in the golden's folder or above, or from a plugin)"
        + (f"; did you mean:{candidates}" if close else "")
        + "\nfix: correct the name, or define the fixture in a conftest.py in the golden's "
        "folder or above",
        path=path,
        line=_line_of_key(path, "fixtures"),
        field="fixtures",
    )


def _check_unparametrized(path: Path, names: tuple[str, ...], item: GoldenItem) -> None:
    """A golden runs once, so a fixture with `params=` (named by the golden, autouse, or
    asked for by another) has no parameter to get: a collection error saying so, not
    pytest's "The requested fixture has no parameter defined" at setup."""
    info = item._fixtureinfo
    checked = item.config.stash.setdefault(_UNPARAMETRIZED, set())
    if id(info) in checked:  # shared by the goldens of a folder (GoldenItem.__init__)
        return
    found = info.name2fixturedefs
    for name in info.names_closure:
        defs = found.get(name)
        if not defs or getattr(defs[-1], "params", None) is None:
            continue
        code = getattr(getattr(defs[-1], "func", None), "__code__", None)
        where = ""
        if code is not None:
            source = Path(code.co_filename)
            if source.is_relative_to(item.config.rootpath):
                source = source.relative_to(item.config.rootpath)
            where = f" ({source}:{code.co_firstlineno})"
        own = name in names
        if own:
            how, fix = "", "give the golden a fixture without params"
        elif name in item.config.stash.get(INI_USEFIXTURES, ()):
            how = " (the ini option usefixtures names it for every test, goldens too)"
            fix = f"take {name} out of the ini option usefixtures, or give it no params"
        elif name in info.initialnames:
            how = " (an autouse fixture)"
            fix = (
                "keep the parametrized fixture out of the goldens' way: define it in the "
                "conftest.py of the tests' own folder, not in one above the goldens"
            )
        else:
            how = " (a fixture the golden uses asks for it)"
            fix = "give the golden fixtures that ask for no parametrized fixture"
        raise files.GoldenLoadError(
            f"fixture {name!r}{where} is parametrized: a golden runs once, with no parameter "
            f"to give it{how}\nfix: {fix}",
            path=path,
            line=_line_of_key(path, "fixtures") if own else None,
            field="fixtures" if own else None,
        )
    checked.add(id(info))


@functools.cache
def _shown_first_line() -> int:
    """The `co_firstlineno` pytest shows as a file's line 1 where it shows a test's
    function: 0 before pytest 9.2, which showed a function's line plus one, else 1."""
    try:
        from _pytest.compat import getlocation

        def probe() -> None: ...

        code = probe.__code__.replace(co_firstlineno=1)
        shown = getlocation(types.FunctionType(code, {}, "probe"))
    except Exception:  # a pytest without it: as the versions that have it
        return 1
    return 0 if shown.endswith(":2") else 1


def _visible_fixtures(item: pytest.Item) -> list[str]:
    """The names of the fixtures a test at `item` can use (for the suggestions)."""
    manager = getattr(item.session, "_fixturemanager", None)
    names: set[str] = set()
    # pytest before 9.2 keeps every fixture's definitions by name in one dict, later
    # versions in two (by node, by node id)
    for kept in ("_arg2fixturedefs", "_arg2node2fixturedefs", "_arg2nodeid2fixturedefs"):
        by_name = getattr(manager, kept, None)
        if isinstance(by_name, dict):
            names.update(by_name)
    if manager is None or not names:  # a pytest that keeps them elsewhere
        return []
    # pytest 8.0 finds them by the node's id, later versions by the node
    taken = inspect.signature(manager.getfixturedefs).parameters
    at: Any = item.nodeid if "nodeid" in taken else item
    return sorted(name for name in names if manager.getfixturedefs(name, at))


def _failure_repr(
    path: Path,
    error: GoldenError,
    *,
    line_only: bool = False,
    raised: BaseException | None = None,
) -> TerminalRepr:
    """The failure text as pytest's own failures are: printed as it is, with a one-line
    crash message at the golden's failing step (`path:line: message`), which `--tb=line`,
    the `-r` summary line and JUnit's `message` attribute show, and which xdist carries;
    when the failure is the agent's exception (`raised`), at the line that raised it, as
    a test's crash line is. `line_only` (`--tb=line`): that line alone, the text left
    out."""
    from _pytest._code.code import (
        ReprEntryNative,
        ReprExceptionInfo,
        ReprFileLocation,
        ReprTraceback,
    )

    text = error.text
    outcome = error.outcome
    failures = outcome.result.verdict.failures if outcome and outcome.result else ()
    # an extra call's, a blocked side effect's or a new snapshot's step is the run's: no
    # golden line for it
    step = failures[0].step if failures and not failures[0].numbered_in_run else None
    head = text.split("\n", 1)[0]
    entry = ReprEntryNative([text if text.endswith("\n") else text + "\n"])
    where = (str(path), _line_of_step(path, step))
    if raised is not None and failures and failures[0].kind in ("agent_error", "error"):
        where = _raised_at(raised) or where
    return ReprExceptionInfo(
        reprtraceback=ReprTraceback([] if line_only else [entry], None, "native"),
        reprcrash=ReprFileLocation(*where, head),
    )


def _raised_at(raised: BaseException) -> tuple[str, int] | None:
    """The file and line where `raised` was raised (its traceback's last frame)."""
    tb = raised.__traceback__
    if tb is None:
        return None
    while tb.tb_next is not None:
        tb = tb.tb_next
    return tb.tb_frame.f_code.co_filename, tb.tb_lineno


def _shows_frames(config: pytest.Config) -> bool:
    """Whether a failure whose agent raised shows the agent's frames as pytest shows a
    test's (`--tb=long`, `--tb=native`, `-l`, `--full-trace`) rather than the last lines
    of its traceback in the hint (`--tb=auto`, `short`; `line` and `no` show neither)."""
    style = config.getoption("tbstyle", "auto")
    if style in ("line", "no"):
        return False
    return (
        style in ("long", "native")
        or bool(config.getoption("showlocals", False))
        or bool(config.getoption("fulltrace", False))
    )


_AGENT_TAIL = re.compile(
    r"(?m)^(?P<hint>\s*hint: .*?; the agent's traceback ends:)\n(?:\s{6,}.*\n?)+"
)


def _with_agent_frames(
    item: GoldenItem, agent: BaseException, ours: TerminalRepr
) -> TerminalRepr | str:
    """The agent's exception as pytest shows a test's under the run's `--tb` and `-l`
    (the user's frames only: `_traceback_filter`), secrets replaced, then the failure's
    own text, whose hint no longer repeats the traceback's last lines; the crash line
    (`--tb=line`, `-r`, JUnit's `message`) stays the failure's."""
    from _pytest._code.code import (
        ExceptionChainRepr,
        ReprEntryNative,
        ReprExceptionInfo,
        ReprTraceback,
    )

    assert isinstance(ours, ReprExceptionInfo)
    style = item.config.getoption("tbstyle", "auto")
    raised = ExceptionInfo.from_exception(agent)
    if style == "native" and not item.config.getoption("fulltrace", False):
        # Python's own format, from the agent's first frame (pytest filters only the others)
        raised.traceback = item._traceback_filter(raised)
    shown = _scrubbed_repr(item._repr_failure_py(raised, style=style), item.config)
    if isinstance(shown, ExceptionChainRepr):
        chain = list(shown.chain)
    elif isinstance(shown, ReprExceptionInfo):  # scrubbed: the text as one entry
        chain = [(shown.reprtraceback, shown.reprcrash, None)]
    else:  # pragma: no cover - getrepr gives one of the two
        return ours
    text = _AGENT_TAIL.sub(
        lambda m: (
            m["hint"].removesuffix(" ends:").replace("traceback", "traceback is above") + "\n"
        ),
        cast(ReprEntryNative, ours.reprtraceback.reprentries[0]).lines[0],
    )
    frames, _, descr = chain[-1]
    entries = [*frames.reprentries, ReprEntryNative([text])]
    chain[-1] = (ReprTraceback(entries, frames.extraline, frames.style), ours.reprcrash, descr)
    return ExceptionChainRepr(chain)


def _scrubbed_repr(shown: str | TerminalRepr, config: pytest.Config) -> str | TerminalRepr:
    """An exception raised by the user's code around the run (a judge whose provider
    refused the key it was given, a hook): pytest's traceback of it, as it is when it
    holds no secret, else as text with the secrets replaced (its crash line too, which
    `--tb=line`, the `-r` summary and JUnit's `message` show)."""
    from _pytest._code.code import (
        ReprEntryNative,
        ReprExceptionInfo,
        ReprFileLocation,
        ReprTraceback,
    )

    from opswald.plugin import settings_of

    redactor: Redactor = settings_of(config).redactor
    text = _rendered(shown)
    clean = redactor.text(text)
    if clean == text:
        return shown
    crash = getattr(shown, "reprcrash", None)
    if crash is None:
        return clean
    entry = ReprEntryNative([clean if clean.endswith("\n") else clean + "\n"])
    return ReprExceptionInfo(
        reprtraceback=ReprTraceback([entry], None, "native"),
        reprcrash=ReprFileLocation(crash.path, crash.lineno, redactor.text(crash.message)),
    )


def _rendered(shown: str | TerminalRepr) -> str:
    """What pytest prints of `shown`, plain (`str()` of a TerminalRepr strips the first
    line's indentation, a long traceback's source)."""
    if isinstance(shown, str):
        return shown
    import io

    from _pytest._io import TerminalWriter

    buffer = io.StringIO()
    writer = TerminalWriter(file=buffer)
    writer.hasmarkup = False
    shown.toterminal(writer)
    return buffer.getvalue().rstrip("\n")


def _line_of_step(path: Path, step: int | None) -> int:
    """The line of `- step: N` (YAML) or `"step": N` (JSON) in a golden, else 1."""
    if step is None:
        return 1
    pattern = re.compile(rf'^\s*(?:- )?"?step"?: {step}\b', re.MULTILINE)
    try:
        found = pattern.search(path.read_text(encoding="utf-8-sig"))
    except (OSError, UnicodeDecodeError):
        return 1
    return found.string.count("\n", 0, found.start()) + 1 if found else 1


_Node = TypeVar("_Node", bound="Node")


# the fixture infos (by id: each is kept by its items for the run) found to hold no
# parametrized fixture
_UNPARAMETRIZED = pytest.StashKey[set[int]]()

# per run, for the goldens of a folder with the same `fixtures:` (the folder's node id and
# the names): their stand-in function and what pytest worked out of it (a FuncFixtureInfo)
_SHARED = pytest.StashKey[dict[tuple[str, tuple[str, ...]], tuple[Callable[[], None], Any]]]()


def _stand_in(fixtures: Iterable[str]) -> Callable[[], None]:
    """The test function a golden item is to pytest's fixture system: it takes no
    arguments, and the golden's `fixtures:` are its `usefixtures` mark (one function for
    the goldens of a folder that name the same fixtures: `GoldenItem.__init__`)."""

    def golden() -> None:
        # no docstring: `pytest --co -v` shows a test's under its id, and this one would
        # be the same for every golden (GoldenItem.runtest replays it)
        return None

    names = tuple(fixtures)
    return pytest.mark.usefixtures(*names)(golden) if names else golden


def _not_found(exc: pytest.FixtureLookupError, item: GoldenItem) -> str:
    """pytest's "fixture 'x' not found" for a golden: the fixtures that asked for it, but
    not the stand-in function (opswald's code) as the test that did, which pytest shows
    first; a name the golden itself asks for (the ini option `usefixtures`) is said so."""
    shown = exc.formatrepr()
    asked = list(shown.tblines)
    if asked and asked[0].startswith(f"file {Path(__file__)}, "):
        asked = asked[2:]  # "file ..., line N" and the stand-in's `def` line
    head, *rest = (line.strip() for line in shown.errorstring.split("\n"))
    name = exc.argname
    if asked:
        where = f"{os.fspath(shown.filename)}:{shown.firstlineno + 1}"
        fix = f"fix: define {name} in a conftest.py above the golden, or correct the fixture "
        fix += "that asks for it"
    elif name in item.config.stash.get(INI_USEFIXTURES, ()):
        where = "the ini option `usefixtures` names it (it applies to every test, goldens too)"
        fix = f"fix: take {name} out of the ini option usefixtures, or define it in a conftest.py"
    else:
        where = f"asked for by {item.nodeid}"
        fix = f"fix: define {name} in a conftest.py above the golden"
    return "\n".join([head, *asked, *rest, where, fix])


class GoldenItem(pytest.Function):
    """Replays one golden through the agent.

    A pytest.Function whose function stands in for the golden, so that it takes part in
    pytest's fixture system as any test does: the autouse fixtures of the conftest.py
    files above it and of plugins, the `usefixtures` ini option, and the golden's own
    `fixtures:`, set up (in the test process, before a timeout's fork) in its setup."""

    def __init__(
        self,
        *,
        compact: bytes | None = None,
        variant: tuple[str, dict[str, Any]] | None = None,
        entry: Entry | None = None,
        **kwargs: Any,
    ) -> None:
        fixtures = entry.fixtures if entry else ()
        # What fixtures a golden gets depends on its folder (the conftests above it) and its
        # `fixtures:` alone: worked out once, with one stand-in function, for the goldens
        # that share both, as pytest does for the items of one parametrized test (per
        # golden, they cost a cold collection of 5k goldens a sixth more time)
        parent: pytest.Collector = kwargs["parent"]
        key = (parent.parent.nodeid if parent.parent else "", fixtures)
        shared = parent.config.stash.setdefault(_SHARED, {})
        if any(mark.name == "usefixtures" for mark in parent.own_markers):
            shared = {}  # a plugin marked this file: worked out for its goldens alone
        function, info = shared.get(key, (None, None))
        super().__init__(callobj=function or _stand_in(fixtures), fixtureinfo=info, **kwargs)
        shared.setdefault(key, (self.obj, self._fixtureinfo))
        # what collection read (files.load_compact), or None: taken from the collection
        # index (or --collect-only), the golden is read from its file when it runs
        self._compact = compact
        self._golden: Session | None = None
        self._entry = entry  # collectcache.Entry: the name and tags it was collected with
        self.variant = variant

    @property
    def golden(self) -> Session:
        """The golden, built on first use from what collection read, or from its file."""
        if self._golden is None:
            compact = self._compact
            self._golden = files.from_compact(compact) if compact else self._load()
        return self._golden

    def _load(self) -> Session:
        from opswald.collectcache import index_of
        from opswald.plugin import settings_of

        index = index_of(self.config)
        caps = settings_of(self.config).limits
        try:
            golden = files.load(self.path, max_bytes=caps.max_bytes, max_depth=caps.max_depth)
        except files.GoldenLoadError as exc:  # changed since collection
            index.forget(self.path)
            raise GoldenError(f"malformed golden: {exc}") from None
        if self._entry != _entry_of(golden, self.path):
            # renamed, retagged or given other fixtures in place: collect it afresh next run
            index.forget(self.path)
        return golden

    @property
    def function(self) -> Callable[..., Any]:
        """The stand-in function where pytest shows a test's function (the head of
        `--fixtures-per-test`): placed at the golden's file, not at opswald's code that the
        goldens share; made on first use."""
        shown = self.__dict__.get("_shown")
        if shown is None:
            base = self.obj
            code = base.__code__.replace(
                co_filename=os.fspath(self.path), co_firstlineno=_shown_first_line()
            )
            shown = types.FunctionType(code, base.__globals__, base.__name__)
            shown.__dict__.update(base.__dict__)  # its usefixtures mark
            shown.__doc__ = base.__doc__
            self.__dict__["_shown"] = shown
        return cast("Callable[..., Any]", shown)

    def getparent(self, cls: type[_Node]) -> _Node | None:
        # pytest finds the node of a module-scoped fixture (and `request.module`) as the
        # item's parent of type pytest.Module: for a golden, its golden file
        if cls is pytest.Module:
            return cast("_Node", self.parent)
        return super().getparent(cls)

    def setup(self) -> None:
        try:
            super().setup()
            return
        except pytest.FixtureLookupError as exc:
            text = _not_found(exc, self)
        # failed outside the except: the error shows this text, not pytest's chain
        pytest.fail(text, pytrace=False)

    def runtest(self) -> None:
        try:
            self._runtest()
        finally:
            # a long session keeps nothing of a golden it has run (read again if asked)
            self._golden = self._compact = None

    def _runtest(self) -> None:
        from opswald.plugin import OUTCOME_KEY, breakpoints_of, settings_of, suite_normalize_rules

        settings = settings_of(self.config)
        try:
            adapter = adapters.resolve(
                self.golden.agent,
                # the conftests of the golden's folder and above, not every conftest
                hook_result=self.ihook.pytest_opswald_adapter(
                    golden=self.golden, config=self.config
                ),
                ini_spec=settings.adapter,
                root=settings.adapter_root,
                golden_path=self.path,
            )
        except adapters.AdapterNotFound as exc:
            raise GoldenError(str(exc)) from None
        writing = settings.update or settings.mode in ("record", "rerecord")
        runs = 1 if writing else settings.repeat
        passed, failure, outcome = 0, None, None
        for _ in range(runs):
            listener = HookListener(
                self.ihook,
                RunView(golden=self.golden, nodeid=self.nodeid),
                breakpoints_of(self.config),
            )
            try:
                outcome = run_golden(
                    golden=self.golden,
                    path=self.path,
                    settings=settings,
                    adapter=adapter,
                    modify=dict(self.variant[1]) if self.variant else None,
                    variant=self.variant[0] if self.variant else None,
                    extra_normalize=suite_normalize_rules(self.config),
                    listener=listener,
                )
            except GoldenError as exc:
                failure = exc
                if exc.outcome is not None:
                    self.stash[OUTCOME_KEY] = replace(exc.outcome, notes=tuple(listener.notes))
                continue
            passed += 1
            self.stash[OUTCOME_KEY] = replace(outcome, notes=(*outcome.notes, *listener.notes))
        if runs == 1:
            if failure is not None:
                raise failure
            return
        self._judge_repeats(passed, runs, settings.min_pass_rate, failure, outcome)

    def _judge_repeats(
        self,
        passed: int,
        runs: int,
        min_rate: float,
        failure: GoldenError | None,
        outcome: Outcome | None,
    ) -> None:
        from opswald.plugin import OUTCOME_KEY

        rate = passed / runs
        line = (
            f"passed {passed} of {runs} runs ({rate:.0%}; --opswald-min-pass-rate {min_rate:.0%})"
        )
        if rate >= min_rate:
            if outcome is not None:
                note = f"{self.nodeid}: {line}"
                self.stash[OUTCOME_KEY] = replace(
                    outcome, status="passed", notes=(*outcome.notes, note)
                )
            return
        last = failure.text if failure is not None else ""
        raise GoldenError(
            f"{line}\nthe last failing run:\n{last}",
            failure.outcome if failure else None,
            stopped=failure.stopped if failure else None,
        )

    def repr_failure(
        self, excinfo: ExceptionInfo[BaseException], style: Any = None
    ) -> str | TerminalRepr:
        if isinstance(excinfo.value, GoldenError):
            tbstyle = self.config.getoption("tbstyle", "auto")
            agent = excinfo.value.agent_exception
            ours = _failure_repr(
                self.path, excinfo.value, line_only=tbstyle == "line", raised=agent
            )
            if agent is not None and _shows_frames(self.config):
                return _with_agent_frames(self, agent, ours)
            return ours
        # as a plain item's: pytest.Function's would show the stand-in function's frames
        shown = pytest.Item.repr_failure(self, excinfo, style=style or "short")
        return _scrubbed_repr(shown, self.config)

    def _traceback_filter(self, excinfo: ExceptionInfo[BaseException]) -> Any:
        """The frames of the user's code (a conftest hook, an adapter) without pytest's,
        pluggy's and opswald's own around them."""
        ours = (Path(pytest.__file__).parent.parent, Path(__file__).parent)

        def theirs(entry: Any) -> bool:
            path = Path(str(entry.path))
            return not any(base in path.parents for base in ours) and "pluggy" not in path.parts

        kept = excinfo.traceback.filter(theirs)
        if not kept:
            return excinfo.traceback
        if self.config.getoption("tbstyle", "auto") == "auto" and len(kept) > 2:
            # as pytest shows a test's: the first and last frames in full, one line each
            # for those between
            last = len(kept) - 1
            styled = (
                e if i in (0, last) else e.with_repr_style("short") for i, e in enumerate(kept)
            )
            return type(kept)(styled)
        return kept

    def reportinfo(self) -> tuple[Path, int | None, str]:
        return self.path, 0, f"golden: {self.name}"
