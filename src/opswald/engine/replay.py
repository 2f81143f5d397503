"""Replays for notebooks and scripts: `opswald.Replay` and `opswald.batch_replay`."""

from __future__ import annotations

import inspect
import os
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from opswald.engine.context import (
    STEP_MODIFICATIONS,
    Context,
    HookFailed,
    StepInfo,
    changes_one_step,
    fork_problem,
)
from opswald.engine.run import (
    ReplayResult,
    RunSettings,
    execute,
    from_the_golden,
    golden_step_modifications,
    judge,
)
from opswald.engine.state import State, state_at
from opswald.jsonable import to_jsonable
from opswald.projectconfig import project_pricer
from opswald.redact import DEFAULT_REDACTOR, Redactor
from opswald.session import (
    AnyStep,
    ErrorInfo,
    LLMCallStep,
    RequestsExpect,
    Session,
    StateStep,
    ToolCallStep,
)
from opswald.verdict import Finding, Verdict

Action = Literal["pause", "log", "fail"]
Mode = Literal["replay", "live", "fork"]
MODES: tuple[Mode, ...] = ("replay", "live", "fork")


def mode_problem(
    mode: str | None, fork_at: int | None, surface: Literal["api", "cli"] = "api"
) -> str | None:
    """Why `fork_at` cannot go with `mode` (None if it can), in the words of `surface`
    (`opswald replay --fork-at --mode`, or Replay's `fork_at=`, `mode=`): a replay would
    run live from that step under replay's rules, with side-effect tools not held, and a
    live run would drop it."""
    if fork_at is None or mode in (None, "fork"):
        return None
    if surface == "cli":
        at, fork, none, given = "--fork-at", "--mode fork", "--mode", f"--mode {mode}"
    else:
        at, fork, none, given = f"fork_at={fork_at}", "mode='fork'", "mode", f"mode={mode!r}"
    return f"{at} needs {fork} (or no {none}), not {given}"


def _step_number(name: str, step: object) -> int:
    """`step` if it is a step number (an int, not a bool), else a TypeError naming `name`."""
    if isinstance(step, bool) or not isinstance(step, int):
        raise TypeError(f"{name} takes a step number, not {step!r}")
    return step


def _adapter_for(
    golden: Session, adapter: Callable[..., Any] | str | None, where: list[str | Path]
) -> Callable[..., Any]:
    """The adapter a Replay runs, in `opswald replay`'s order: `adapter=` (a callable or a
    `package.module:callable` string) wins; else the golden's `agent:` among registered
    adapters and entry points; else the `opswald_adapter` of the pytest config pytest would
    use for `where` (its module also looked for beside the config file). Raises
    AdapterNotFound saying what was tried, or AdapterMismatch."""
    from opswald import adapters
    from opswald.projectconfig import SettingError, find

    if isinstance(adapter, str):
        found = adapters.import_string(adapter, root=_config_folder(where))
        return adapters.check(found, f"adapter={adapter!r}")
    if adapter is not None:
        if not callable(adapter):  # else blamed on the agent when called
            raise TypeError(
                f"adapter= takes a callable or a 'package.module:callable' string, not {adapter!r}"
            )
        return adapters.check(adapter)
    tried = ["- adapter=: not given"]
    agent = golden.agent
    if agent:
        registered = adapters.registered().get(agent) or adapters.from_entry_points(agent)
        if registered is not None:
            return adapters.check(registered, f"the adapter registered as {agent!r}")
        known = ", ".join(sorted(adapters.registered())) or "none"
        tried.append(
            f"- the golden's agent {agent!r}: not registered with @opswald.adapter "
            f"(registered: {known}) nor in the entry-point group {adapters.ENTRY_POINT_GROUP!r}"
        )
    else:
        tried.append("- the golden's `agent:` name: the golden has none")
    try:
        config = find(where)
        spec = config.string("opswald_adapter").strip()
    except SettingError as exc:
        raise adapters.AdapterNotFound(f"cannot read opswald_adapter: {exc}") from None
    if spec:
        fn = adapters.import_string(spec, root=config.folder, setting="opswald_adapter")
        inipath = f"{config.inipath}: " if config.inipath is not None else ""
        fn = adapters.check(fn, f"{inipath}opswald_adapter = {spec!r}")
        source = Path(where[0]) if where else None
        adapters.warn_unregistered_agent(agent, f"opswald_adapter = {spec!r}", source)
        return fn
    tried.append(
        f"- the pytest config {config.inipath}: does not set opswald_adapter"
        if config.inipath is not None
        else "- opswald_adapter: no pytest config file found"
    )
    raise adapters.AdapterNotFound(
        "no adapter to run this golden's agent; tried:\n"
        + "\n".join(tried)
        + "\nfix: pass adapter= (a callable, or 'package.module:callable'), set "
        '`opswald_adapter = "package.module:callable"` in your pytest config, or register '
        'one with @opswald.adapter("name") and set `agent: name` in the golden'
    )


def _config_folder(where: list[str | Path]) -> Path | None:
    """The folder of the pytest config pytest would use for `where`, if it has one."""
    from opswald.projectconfig import SettingError, find

    try:
        config = find(where)
    except SettingError:
        return None
    return config.folder if config.inipath is not None else None


def not_recorded(golden: Session, redactor: Redactor, policy: Mode) -> ReplayResult:
    """The result of replaying a stub (DESIGN §3a "Stubs"): failed, with the agent never
    started — nothing recorded can answer its calls, and a live call would run unguarded."""
    finding = Finding(
        kind="not_recorded",
        message=f"{golden.name or 'the golden'}: not recorded yet (a stub: no steps, no output)",
        suggestion="record it with pytest --opswald-goldens --opswald-mode=record "
        "(or run it with mode='live')",
    )
    return _unrun(golden, finding, redactor, policy)


def refused(golden: Session, why: str, redactor: Redactor) -> ReplayResult:
    """The result of a golden that cannot run as asked: failed, saying why, with the agent
    never started."""
    finding = Finding(kind="refused", message=f"{golden.name or 'the golden'}: {why}")
    return _unrun(golden, finding, redactor, "replay")


def _unrun(golden: Session, finding: Finding, redactor: Redactor, policy: Mode) -> ReplayResult:
    """A failed result whose agent never started: the actual session is the golden's input
    (redacted, like all written) with no steps and no output."""
    actual = golden.model_copy(
        update={"input": redactor(to_jsonable(golden.input)), "steps": [], "output": None}
    )
    return ReplayResult(
        golden=golden, actual=actual, verdict=Verdict(findings=(finding,)), policy=policy
    )


@dataclass(frozen=True, kw_only=True)
class StepView:
    """One step of a replay, as the API shows it."""

    number: int
    type: str
    name: str | None
    description: str | None
    duration_ms: float | None
    cost: float | None
    tokens: int | None
    error: ErrorInfo | None
    step: AnyStep

    @property
    def duration(self) -> float | None:
        return self.duration_ms


def view(step: AnyStep) -> StepView:
    name = step.tool if isinstance(step, ToolCallStep) else getattr(step, "model", None)
    usage = step.usage if isinstance(step, LLMCallStep) else None
    return StepView(
        number=step.step,
        type=step.type,
        name=name,
        description=step.description,
        duration_ms=step.duration_ms,
        cost=step.cost if isinstance(step, LLMCallStep) else None,
        tokens=usage.total() if usage is not None else None,
        error=step.error,
        step=step,
    )


def variables_for(ctx: Context, step: AnyStep) -> dict[str, Any]:
    """What a breakpoint condition sees after `step` (DESIGN §3a)."""
    from opswald.engine.breakpoints import Snapshot

    steps = ctx.actual_steps()
    llm = [s for s in steps if isinstance(s, LLMCallStep)]
    now, before = state_at(steps, step.step), state_at(steps, step.step - 1)
    usage = step.usage if isinstance(step, LLMCallStep) else None
    return {
        "step": step.step,
        "type": step.type,
        "tool_name": step.tool if isinstance(step, ToolCallStep) else None,
        "model": step.model if isinstance(step, LLMCallStep) else None,
        "cost": step.cost if isinstance(step, LLMCallStep) else None,
        "total_cost": sum(s.cost or 0.0 for s in llm),
        "duration_ms": step.duration_ms,
        "tokens": usage.total() if usage is not None else None,
        "total_tokens": sum(s.usage.total() for s in llm if s.usage is not None),
        "error": step.error.model_dump(exclude_none=True) if step.error else None,
        "memory": Snapshot(
            now.memory if isinstance(now.memory, dict) else {}, changed=now.memory != before.memory
        ),
        "variables": Snapshot(
            now.variables if isinstance(now.variables, dict) else {},
            changed=now.variables != before.variables,
        ),
    }


@dataclass(frozen=True, kw_only=True)
class Suite:
    """What a pytest run sets for all its goldens (the ini options), for a replay started
    outside pytest: `opswald replay` reads them from the project's pytest config. Request
    rules apply after the golden's own `expect.requests`."""

    requests: RequestsExpect | None = None
    redactor: Redactor = DEFAULT_REDACTOR
    prices: Any = None  # a pricing.Pricer for calls that run live (None: the project's)
    langgraph_state: bool = False
    tolerance: Any = None  # expect.tolerant.Tolerance


def _project_suite(
    where: list[str | Path],
    integrations: tuple[str, ...] | list[str] | None,
    side_effect_tools: tuple[str, ...] | list[str] | None,
) -> tuple[Suite, tuple[str, ...] | list[str] | None, tuple[str, ...] | list[str]]:
    """The suite-wide settings of the pytest config pytest would use for `where` (request
    rules, redaction, LangGraph states, the embedder and judge), with its integrations and
    side-effect tools where the caller gave none. A bad value raises SettingError."""
    from opswald.projectconfig import api_settings

    project = api_settings(where)
    suite = Suite(
        requests=project.requests,
        redactor=project.redactor,
        langgraph_state=project.langgraph_state,
        tolerance=project.tolerance(),
    )
    if integrations is None:
        integrations = project.integrations  # None still: the golden's recorded ones
    if side_effect_tools is None:
        side_effect_tools = tuple(project.side_effect_tools)
    return suite, integrations, side_effect_tools


@dataclass
class Breakpoint:
    condition: Any  # breakpoints.Condition
    action: Action
    hits: list[int] = field(default_factory=list)


def call_hook(hook: Callable[..., Any], name: str, /, **arguments: Any) -> None:
    """Call a step hook, turning what it raises into HookFailed (with a note naming it)."""
    try:
        hook(**arguments)
    except Exception as exc:
        exc.add_note(f"(raised by the {name} hook, not by the agent)")
        raise HookFailed(name) from exc


def _user_hook(hooks: Any, replay: Replay, event: str, **arguments: Any) -> None:
    """A `hooks=` object's method for `event` (`before_step`, or the conftest hook's name
    `pytest_opswald_before_step`), called with the arguments it names — the conftest
    hooks' `(replay, step, ...)` — or, for methods written as `before_step(step)`,
    `after_step(step, result)`, `on_error(step, error)`, positionally."""
    method = getattr(hooks, event, None) or getattr(hooks, f"pytest_opswald_{event}", None)
    if method is None:
        return
    offered = {"replay": replay, **arguments}
    try:
        names = list(inspect.signature(method).parameters)
    except (TypeError, ValueError):
        names = []
    if names and set(names) <= set(offered):
        call_hook(method, event, **{n: offered[n] for n in names})
    else:
        values = list(arguments.values())
        call_hook(lambda: method(*values), event)


class _Listener:
    """Connects a Replay to its context: pauses, breakpoints, hooks, speed."""

    def __init__(self, replay: Replay) -> None:
        self.replay = replay

    def before_step(self, ctx: Context, info: StepInfo) -> None:
        replay = self.replay
        if info.number in replay._pause_steps or replay._pause_next:
            replay._pause_next = False
            replay._break_pending = None
            replay._suspend(info.number)
        if replay.hooks is not None:
            _user_hook(replay.hooks, replay, "before_step", step=info)

    def after_step(self, ctx: Context, step: AnyStep) -> None:
        replay = self.replay
        if replay.hooks is not None:
            _user_hook(replay.hooks, replay, "after_step", step=step, result=_result_of(step))
        served = step.step in ctx.served
        if served and replay.speed is not None and step.duration_ms:
            factor = 1.0 if replay.speed == "realtime" else float(replay.speed)
            time.sleep(step.duration_ms / 1000 / max(factor, 1e-6))
        if replay.breakpoints:
            replay._check_breakpoints(ctx, step)

    def on_error(self, ctx: Context, step: AnyStep, error: ErrorInfo) -> None:
        if self.replay.hooks is not None:
            _user_hook(self.replay.hooks, self.replay, "on_error", step=step, error=error)


def _result_of(step: AnyStep) -> Any:
    if isinstance(step, ToolCallStep):
        return step.output
    if isinstance(step, LLMCallStep):
        return step.output
    if isinstance(step, StateStep):
        return step.model_dump(exclude={"step", "type", "timestamp"}, exclude_none=True)
    return getattr(step, "content", None)


class Replay:
    """Replay one golden through an agent, step by step if you like.

    >>> replay = opswald.Replay("goldens/refund.golden.yaml", adapter=run)
    >>> replay.pause_at(4).run()          # returns once the agent is held before step 4
    >>> replay.get_state(3).memory
    >>> replay.resume()                   # runs to the end (or the next pause)
    >>> replay.final_output
    """

    def __init__(
        self,
        golden: Session | str | os.PathLike[str],
        *,
        adapter: Callable[..., Any] | str | None = None,
        modifications: dict[str, Any] | None = None,
        hooks: Any = None,
        speed: Literal["realtime"] | float | None = None,
        mode: Mode | None = None,
        fork_at: int | None = None,
        allow_side_effects: bool = False,
        integrations: tuple[str, ...] | list[str] | None = None,
        side_effect_tools: tuple[str, ...] | list[str] | None = None,
        surface: Literal["api", "cli"] = "api",
        suite: Suite | None = None,
        golden_path: str | os.PathLike[str] | None = None,
    ) -> None:
        """`integrations`, `side_effect_tools` and `suite` (request rules, redaction,
        prices, tolerance) default to the project's pytest config, found for the golden's
        path — `golden_path` for a `Session` loaded from a file, else the working
        directory — as `opswald replay` finds it; given, they win over it."""
        from opswald import files

        if mode is not None and mode not in MODES:
            raise ValueError(f"mode must be 'replay', 'live', 'fork' or None, not {mode!r}")
        if fork_at is not None:
            _step_number("fork_at", fork_at)
        conflict = mode_problem(mode, fork_at)
        if conflict is not None:
            raise ValueError(conflict)
        if files.is_golden_text(golden):
            raise TypeError(
                "Replay takes a golden's path or a Session, not a golden's text: "
                "Session.model_validate(yaml.safe_load(text)) makes a Session of it"
            )
        if not isinstance(golden, Session | str | os.PathLike):
            hint = (
                ": Session.model_validate(data) makes a Session of it"
                if isinstance(golden, dict)
                else ""
            )
            raise TypeError(
                f"Replay takes a golden's path or a Session, not {type(golden).__name__}{hint}"
            )
        self.golden = golden if isinstance(golden, Session) else files.load(golden)
        source = golden_path if isinstance(golden, Session) else golden
        where: list[str | Path] = [] if source is None else [Path(os.fspath(source))]
        # one that cannot take the input: raised now
        self.adapter = _adapter_for(self.golden, adapter, where)
        mods = _checked_modifications(modifications)
        given = {k: mods.pop(k) for k in STEP_MODIFICATIONS if k in mods}
        own = golden_step_modifications(self.golden)  # the weakest source of them
        self.step_modifications = {**own, **given}
        self.modifications = mods
        self.hooks = hooks
        self.speed = speed
        self.fork_at = fork_at
        self.allow_side_effects = allow_side_effects
        self.surface: Literal["api", "cli"] = surface  # hints name its options
        if suite is None:
            # what pytest and `opswald replay` apply to every golden: the same verdict here
            suite, integrations, side_effect_tools = _project_suite(
                where, integrations, side_effect_tools
            )
        self.suite = suite
        if self.suite.prices is None:
            # calls that run live are priced as under pytest (`opswald replay` gives its own)
            priced = project_pricer(where, who="opswald.Replay")
            self.suite = replace(self.suite, prices=priced)
        # by default the integrations the golden was recorded with (metadata.integrations)
        recorded = self.golden.metadata.get("integrations")
        if integrations is None:
            integrations = recorded if isinstance(recorded, list) else ()
        self.integrations = tuple(str(name) for name in integrations)
        self.side_effect_tools = frozenset(side_effect_tools or ())
        if mode is None:
            mode = "fork" if (mods or fork_at is not None) else "replay"
        self.mode = mode
        # a stub is never run but live: its replay or fork fails `not_recorded` (run())
        stub = self.golden.is_stub and mode != "live"
        if (mode == "fork" or self.step_modifications) and not stub:
            problem = fork_problem(
                self.golden,
                fork_at,
                self.step_modifications,
                [*mods, *self.golden.modifications],
            )
            if problem is not None:
                raise ValueError(f"fork_at={fork_at}: {problem}{from_the_golden(own, given)}")
        if speed is not None and speed != "realtime":
            if isinstance(speed, bool) or not isinstance(speed, int | float) or not speed > 0:
                raise ValueError(f"speed must be 'realtime' or a positive factor, not {speed!r}")
        self.breakpoints: list[Breakpoint] = []
        self.log: list[str] = []
        self.result: ReplayResult | None = None
        self._pause_steps: set[int] = set()
        self._pause_next = False
        self._break_pending: int | None = None  # a pause breakpoint's step, not paused yet
        self._paused_at: int | None = None
        self._ctx: Context | None = None
        self._thread: threading.Thread | None = None
        self._changed = threading.Condition()
        self._go = threading.Event()
        self._error: BaseException | None = None

    # -- control ------------------------------------------------------------------------
    def pause_at(self, step: int) -> Replay:
        """Hold the agent before step `step` executes (nothing of that step has run). The
        thread that reached it is held; other threads of the agent go on."""
        if _step_number("pause_at", step) < 1:
            raise ValueError(f"pause_at({step}): steps are numbered from 1")
        total = len(self.golden.step_list)
        if self.mode == "replay" and step > total:  # a fork or live run may go further
            raise ValueError(f"pause_at({step}): the golden has {total} step(s)")
        self._pause_steps.add(step)
        return self

    def add_breakpoint(self, condition: str, action: Action = "pause") -> Replay:
        """Pause, log or fail when `condition` holds after a step (`total_cost > 0.5`)."""
        from opswald.engine.breakpoints import compile_condition

        if action not in ("pause", "log", "fail"):
            raise ValueError(f"breakpoint action must be pause, log or fail, not {action!r}")
        self.breakpoints.append(Breakpoint(condition=compile_condition(condition), action=action))
        return self

    def run(self) -> ReplayResult | None:
        """Run until the end (returns the result) or until a pause (returns None)."""
        if self._thread is not None:
            raise RuntimeError("this replay has already started; use resume()")
        self._thread = threading.Thread(target=self._main, name="opswald-replay", daemon=True)
        self._thread.start()
        return self._wait()

    def resume(self) -> ReplayResult | None:
        """Continue a paused replay until the end or the next pause. A replay that has
        ended (a `step_once()` ran its last step) returns its result, as run() did."""
        if self._paused_at is None:
            return self._ended()
        with self._changed:
            self._paused_at = None
        self._go.set()
        return self._wait()

    def step_once(self) -> ReplayResult | None:
        """Resume and pause again before the next step; the result once the run ends (at
        once, for a replay that has ended)."""
        if self._paused_at is None:  # refused before anything is set for the next run
            return self._ended()
        self._pause_next = True
        return self.resume()

    def _ended(self) -> ReplayResult | None:
        """What resume() gives when the replay is not paused: the result of a run that has
        ended (its error raised again); a replay not started yet is refused."""
        if self._thread is None:
            raise RuntimeError("the replay is not paused: it has not started; run() it first")
        if not self._finished():  # running, from another thread: run() or resume() waits
            raise RuntimeError("the replay is not paused: it is running")
        return self._wait()

    @property
    def paused_at(self) -> int | None:
        return self._paused_at

    def fork_from(self, step: int, modifications: dict[str, Any] | None = None) -> Replay:
        """A new replay of the same golden: calls before `step` replayed, live from `step`
        on, with `modifications` (step modifications apply at `step`)."""
        if _step_number("fork_from", step) < 1:
            raise ValueError(f"fork_from({step}): steps are numbered from 1")
        return Replay(
            self.golden,
            adapter=self.adapter,
            modifications={**self.modifications, **_checked_modifications(modifications)},
            hooks=self.hooks,
            speed=self.speed,
            mode="fork",
            fork_at=step,
            allow_side_effects=self.allow_side_effects,
            integrations=self.integrations,
            side_effect_tools=tuple(self.side_effect_tools),
            surface=self.surface,
            suite=self.suite,
        )

    # -- inspection ---------------------------------------------------------------------
    @property
    def steps(self) -> list[StepView]:
        source = self._run_steps() if self._ctx is not None else self.golden.step_list
        return [view(s) for s in source]

    @property
    def final_output(self) -> Any:
        return self.result.actual.output if self.result is not None else None

    @property
    def verdict(self) -> Verdict | None:
        return self.result.verdict if self.result is not None else None

    def get_state(self, step: int) -> State:
        """The state at `step` (DESIGN §3a): before a run, the golden's; during a pause,
        the run's up to the step it reached, the golden's after it; after the run, the
        run's (a step past its end is refused: the golden's state would pass for the
        run's). `step` is checked as `pause_at` checks it."""
        if _step_number("get_state", step) < 1:
            raise ValueError(f"get_state({step}): steps are numbered from 1")
        actual = self._run_steps() if self._ctx is not None else []
        if self.result is not None and self._ctx is not None:
            if not actual or step > actual[-1].step:
                reached = actual[-1].step if actual else 0
                raise ValueError(f"get_state({step}): the run ended after {reached} step(s)")
            return state_at(actual, step)
        if actual and step <= actual[-1].step:
            return state_at(actual, step)
        total = len(self.golden.step_list)
        if step > total:
            raise ValueError(f"get_state({step}): the golden has {total} step(s)")
        return state_at(self.golden.step_list, step)

    def _run_steps(self) -> list[AnyStep]:
        """The run's steps by the numbers they have after it: during a pause the call it
        holds (and another thread's call under way) keeps its number."""
        assert self._ctx is not None
        return self._ctx.actual_steps() if self.result is not None else self._ctx.steps_so_far()

    # -- machinery ----------------------------------------------------------------------
    def _main(self) -> None:
        from opswald.engine.normalize import RequestRules

        suite = self.suite
        settings = RunSettings(
            policy="live" if self.mode == "live" else self.mode,
            allow_side_effects=self.allow_side_effects,
            modifications=self.modifications,
            fork_at=self.fork_at,
            step_modifications=self.step_modifications,
            listeners=(_Listener(self),),
            # the golden's own `expect.requests` (ignore, normalize), as under pytest
            rules=RequestRules.build(
                self.golden.expectations.requests, suite.requests, redactor=suite.redactor
            ),
            redactor=suite.redactor,
            prices=suite.prices,
            integrations=self.integrations,
            side_effect_tools=self.side_effect_tools,
            langgraph_state=suite.langgraph_state,
            surface=self.surface,
        )
        try:
            if self.golden.is_stub and self.mode != "live":
                self.result = not_recorded(self.golden, suite.redactor, self.mode)
                return
            run = execute(self.golden, self.adapter, settings=settings, context_out=self._attach)
            if self._break_pending is not None:  # hit on the last step: no step to pause at
                self.log.append(
                    f"breakpoint at step {self._break_pending} did not pause: the run ended "
                    "after that step"
                )
            verdict = judge(self.golden, run, tolerance=suite.tolerance)
            extra = tuple(self._breakpoint_findings())
            if extra:
                verdict = Verdict(findings=(*verdict.findings, *extra))
            self.result = ReplayResult.of(self.golden, run, verdict)
        except HookFailed as failed:  # the hook's own exception, in the caller's thread
            self._error = failed.__cause__ or failed
        except BaseException as exc:  # surfaced in the caller's thread
            self._error = exc
        finally:
            with self._changed:
                self._changed.notify_all()

    def _attach(self, ctx: Context) -> None:
        self._ctx = ctx

    def _suspend(self, number: int) -> None:
        with self._changed:
            self._paused_at = number
            self._go.clear()
            self._changed.notify_all()
        self._go.wait()

    def _wait(self) -> ReplayResult | None:
        with self._changed:
            self._changed.wait_for(lambda: self._paused_at is not None or self._finished())
        if self._error is not None:
            raise self._error
        return self.result if self._finished() else None

    def _finished(self) -> bool:
        return self.result is not None or self._error is not None

    def _check_breakpoints(self, ctx: Context, step: AnyStep) -> None:
        variables = variables_for(ctx, step)
        for bp in self.breakpoints:
            if not bp.condition.evaluate(variables):
                continue
            bp.hits.append(step.step)
            line = f"breakpoint hit at step {step.step} ({step.type}): {bp.condition.expression}"
            if bp.action == "log":
                self.log.append(line)
            elif bp.action == "pause":  # held before the next step, as pytest's pdb is after
                self.log.append(f"{line} — pausing before the next step")
                self._pause_next = True
                self._break_pending = step.step

    def _breakpoint_findings(self) -> Iterable[Finding]:
        for bp in self.breakpoints:
            if bp.action == "fail" and bp.hits:
                yield Finding(
                    kind="breakpoint",
                    message=f"breakpoint {bp.condition.expression!r} hit at step "
                    f"{', '.join(map(str, bp.hits))}",
                    step=bp.hits[0],
                )


@dataclass(frozen=True, kw_only=True)
class BatchResult:
    results: dict[str, ReplayResult]
    still_failing: list[str]

    @property
    def success_rate(self) -> float:
        if not self.results:  # nothing failed: as the JSON report reads a run of none
            return 1.0
        return sum(r.passed for r in self.results.values()) / len(self.results)

    @property
    def failed(self) -> list[str]:
        return [name for name, r in self.results.items() if not r.passed]


def batch_replay(
    goldens: Iterable[Session | str | os.PathLike[str]] | Session | str | os.PathLike[str],
    *,
    adapter: Callable[..., Any] | str | None = None,
    modifications: dict[str, Any] | None = None,
    mode: Mode | None = None,
) -> BatchResult:
    """Replay many goldens (or one path or Session); success = the golden passes its
    expectations under this run. `still_failing` names goldens recorded with an error
    whose run still ends in one. A golden that cannot be loaded, or that cannot run as
    asked, fails with a `refused` finding and the others still run. Results are keyed by
    the golden's name; goldens sharing a name are told apart, all of them, by their
    `session_id` (when theirs is unique among them) or else their place in the batch."""
    from collections import Counter

    if isinstance(goldens, str | os.PathLike | Session):  # one golden, not its characters
        goldens = [goldens]
    modifications = _checked_modifications(modifications)
    given = [key for key in STEP_MODIFICATIONS if key in modifications]
    if given:
        raise ValueError(
            f"batch_replay: modifications {changes_one_step(given)}, and a batch takes no "
            "step to fork at; replay that golden with Replay(golden, fork_at=N, "
            "modifications=...)"
        )
    # each golden is loaded just before it runs: the first runs without waiting for the
    # whole batch to be read, and a golden is read as it is when its turn comes. Names
    # (several goldens of one name told apart) are settled once all are known.
    ran: list[tuple[str, str | None, ReplayResult, bool]] = []  # base, id, result, still
    for source in goldens:
        golden, result = _run_one(source, adapter, modifications, mode)
        base = (
            golden.name
            if golden is not None and golden.name
            else os.fspath(source)
            if not isinstance(source, Session)
            else str(source.name)
        )
        sid = golden.session_id if golden is not None else None
        still = golden is not None and golden.error is not None
        ran.append((base, sid, result, still and result.actual.error is not None))
    repeated = Counter(base for base, _, _, _ in ran)
    ids = Counter((base, sid) for base, sid, _, _ in ran if sid)
    results: dict[str, ReplayResult] = {}
    still_failing: list[str] = []
    for position, (base, sid, result, still) in enumerate(ran, 1):
        name = base
        if repeated[base] > 1:  # several goldens (traces) of one name: tell all apart
            name = f"{base} [{sid if sid and ids[(base, sid)] == 1 else position}]"
        results[name] = result
        if still:
            still_failing.append(name)
    return BatchResult(results=results, still_failing=still_failing)


def _run_one(
    source: Session | str | os.PathLike[str],
    adapter: Callable[..., Any] | str | None,
    modifications: dict[str, Any] | None,
    mode: Mode | None,
) -> tuple[Session | None, ReplayResult]:
    """One golden of a batch, loaded now (None if it cannot be), and its result."""
    from opswald import files

    if isinstance(source, Session):
        golden, path = source, None
    else:
        try:
            golden, path = files.load(source), source
        except (files.GoldenLoadError, OSError) as exc:
            why = f"cannot be loaded: {exc}"
            return None, refused(Session(name=os.fspath(source)), why, Suite().redactor)
    own = golden_step_modifications(golden)
    if own and not golden.is_stub:
        # its own step modification needs a fork step, which a batch does not give:
        # this golden fails, as under pytest, and the others still run
        why = (
            f"{changes_one_step(list(own))}: give the step to fork at with "
            f"Replay(..., fork_at=N){from_the_golden(own, {})}"
        )
        return golden, refused(golden, why, Suite().redactor)
    replay = Replay(
        golden, adapter=adapter, modifications=modifications, mode=mode, golden_path=path
    )
    result = replay.run()
    assert result is not None
    return golden, result


def _checked_modifications(modifications: Any) -> dict[str, Any]:
    """`modifications` as a dict, refused with a plain message when it is not a mapping of
    names to values or a value is of the wrong kind (`model=42`)."""
    from collections.abc import Mapping

    from opswald.session import modification_problem

    if modifications is None:
        return {}
    if not isinstance(modifications, Mapping):
        raise TypeError(
            "modifications must be a mapping of names to values, e.g. "
            f"{{'model': 'gpt-4o-mini'}}; got {type(modifications).__name__}"
        )
    for key, value in modifications.items():
        problem = modification_problem(str(key), value)
        if problem is not None:
            raise ValueError(f"modifications: {problem}")
    return dict(modifications)
