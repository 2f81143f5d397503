"""The run of one golden under pytest: replay, record or update it, judge the run, write
what is blessed. Imported when the first golden runs (collecting goldens does not need the
engine): `GoldenItem` and the `golden_replay` marker call `run_golden`."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal, NoReturn

from opswald import adapters, files
from opswald.diff import render_verdict
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
from opswald.items import GoldenError, Settings
from opswald.pricing import CostError
from opswald.session import AnyStep, Expect, NormalizeRule, Session, cut_short
from opswald.verdict import Finding, Verdict
from opswald.writeback import blessed, write, writes_blocked

Status = Literal["passed", "failed", "updated", "recorded"]


@dataclass(frozen=True, kw_only=True)
class Outcome:
    status: Status
    result: ReplayResult | None
    text: str = ""
    written: str | None = None
    notes: tuple[str, ...] = ()


def _failed(text: str, result: ReplayResult, settings: Settings) -> tuple[str, Outcome]:
    """The failure text, scrubbed of secrets, and its outcome."""
    text = settings.redactor.text(text) + _hidden_note(result, settings)
    return text, Outcome(status="failed", result=result, text=text, notes=_unread(result))


def _unread(result: ReplayResult) -> tuple[str, ...]:
    """The note on modifications that change nothing, if any: the same text for every
    golden of an adapter (the summary prints it once)."""
    return (result.modification_note,) if result.modification_note else ()


def _hidden_note(result: ReplayResult, settings: Settings) -> str:
    """A line for differences that read the same once redacted: the golden holds in clear
    what a redaction rule now hides (a rule added since it was recorded), so the diff,
    redacted for the screen, shows two equal sides."""
    redact = settings.redactor.text
    seen = False
    for finding in result.verdict.failures:
        for d in finding.differences:
            if not (isinstance(d.golden, str) and isinstance(d.actual, str)):
                return ""
            if redact(d.golden) != redact(d.actual):
                return ""
            seen = True
    if not seen:
        return ""
    return (
        "\nnote: the golden holds in clear what a redaction rule now hides (each side above "
        "reads the same once redacted): accept it with --opswald-update, which writes the "
        "placeholder"
    )


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
    # on CI without --opswald-force nothing is written: a run that is live only to be
    # written (a recording) is not made at all (its model calls cost, its side-effect
    # tools act, for nothing), and an update replays, as a plain run does
    blocked = writes_blocked(force=settings.force)
    if blocked is not None and (writing or golden.is_stub):
        what = (
            "not recorded yet (a stub: no steps, no output); it is not recorded"
            if golden.is_stub
            else f"not re-recorded (--opswald-mode={settings.mode})"
        )
        raise GoldenError(
            f"{path.name}: {what}: the CI environment variable is set, and goldens are only "
            "written on CI with --opswald-force (the agent was not run: a recording runs it "
            "live)\nfix: record it locally and commit it, or add --opswald-force"
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
    if blocked is not None and settings.update and modify:
        # an update under modifications runs live from the first call they change, to
        # write what it gets: on CI, where it is not written, it is not run either
        listing = ", ".join(f"{k}={v}" for k, v in modify.items())
        raise GoldenError(
            f"{path.name}: not updated: the CI environment variable is set, and goldens are "
            f"only written on CI with --opswald-force; an update under modifications "
            f"({listing}) runs the agent live to write what it gets (the agent was not run)\n"
            "fix: update it locally and commit it, or add --opswald-force; to check the "
            "modified run here, run it without --opswald-update"
        )
    policy: Policy
    if writing or golden.is_stub:
        policy = "live"
    elif settings.update and blocked is None:
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
        # a recording runs every tool; an update recording a stub runs those with side
        # effects only when allowed, as it does from an updated golden's divergence on
        block_side_effects=not writing,
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
    result = ReplayResult.of(golden, run, verdict)
    total = len(golden.step_list) if not golden.is_stub else None
    wants_write = writing or golden.is_stub or (settings.update and not verdict.passed)
    if not wants_write:
        if verdict.passed:
            notes = (*_reported(path, verdict, total, update=settings.update), *_unread(result))
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
                # the step itself, redacted: a run that is killed is saved as far as it got
                # (--opswald-save-actual, the viewer)
                "data": ctx.redactor(step.model_dump(mode="json", exclude_none=True)),
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
    ran = [{k: v for k, v in e.items() if k != "data"} for e in events if "done" in e]
    steps = sorted((e["data"] for e in events if isinstance(e.get("data"), dict)), key=_number)
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
        "steps": steps,
    }


def _number(step: dict[str, Any]) -> int:
    number = step.get("step")
    return number if isinstance(number, int) else 0


def _with_session(
    stopped: dict[str, Any],
    golden: Session,
    text: str,
    settings: RunSettings,
    timeout: float | None = None,
) -> dict[str, Any]:
    """`stopped` with the run's session as far as it got (`stopped_session`) as "session"."""
    return {**stopped, "session": stopped_session(golden, stopped, text, settings, timeout)}


def stopped_session(
    golden: Session,
    stopped: dict[str, Any],
    text: str,
    settings: RunSettings | None = None,
    timeout: float | None = None,
) -> Session | None:
    """The actual session of a run that did not end (a timeout, a process that died), as
    far as it got: the steps it finished, the stop as its error and in `metadata.stopped`
    (where it was), what it was run under (a variant, modifications) and, for a timeout,
    the time it ran: the timeout; None when none of its steps can be read back."""
    from datetime import UTC, datetime

    from pydantic import TypeAdapter

    from opswald.engine.run import VERSION
    from opswald.jsonable import to_jsonable
    from opswald.session import VARIANT_METADATA, AnyStep, ErrorInfo
    from opswald.sessiondiff import STOPPED_METADATA

    kind = "Timeout" if stopped.get("kind") == "timeout" else "ProcessDied"
    metadata: dict[str, Any] = {
        "recorded_at": datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
        "recorded_with": f"pytest-opswald {VERSION}",
        STOPPED_METADATA: {k: stopped.get(k) for k in ("kind", "step", "type", "name")},
    }
    if timeout is not None:
        metadata["duration_ms"] = round(timeout * 1000, 3)
    if settings is not None and settings.modifications:
        metadata["modifications"] = settings.redactor(dict(settings.modifications))
    if settings is not None and settings.variant is not None:
        metadata[VARIANT_METADATA] = settings.variant
    try:
        steps = TypeAdapter(list[AnyStep]).validate_python(stopped.get("steps") or [])
    except ValueError:
        return None
    redact: Callable[[Any], Any] = settings.redactor if settings is not None else (lambda v: v)
    actual = golden.model_copy(  # as a run's actual is made: the golden's, with the run's
        update={
            "input": redact(to_jsonable(golden.input)),
            "metadata": metadata,
            "steps": steps,
            "output": None,
            "error": ErrorInfo(type=kind, message=text.splitlines()[0] if text else kind),
        }
    )
    actual.model_fields_set.update({"steps", "output", "metadata"})  # never a stub
    return actual


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
            said = f"{path.name}: {exc}"
            raise GoldenError(
                f"{said}\n"
                f"fix: the agent was stopped (its process killed) {where}; raise the "
                "golden's `timeout:` or --opswald-timeout if it needs longer",
                stopped=_with_session(
                    _stopped("timeout", log, exc.progress), golden, said, run_settings, timeout
                ),
            ) from None
        except IsolationError as exc:
            said = f"{path.name}: the agent's process failed: {exc}"
            stopped = _with_session(_stopped("process_died", log), golden, said, run_settings)
            raise GoldenError(said, stopped=stopped) from None
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
        *_unread(result),
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
