"""`opswald replay GOLDEN`: replay a golden through the agent in a terminal, one line per
step, optionally pausing before every step (`--interactive`)."""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from opswald.pricing import milliseconds, money
from opswald.session import (
    STEP_FIELDS,
    AnyStep,
    LLMCallStep,
    Session,
    StateStep,
    ToolCallStep,
    UserInputStep,
)
from opswald.terminal import clip, counted, display_width, escaped, raw_streams, wrapped

if TYPE_CHECKING:
    from opswald.engine.replay import Replay
    from opswald.engine.run import ReplayResult
    from opswald.projectconfig import CliSettings

USAGE = 4
QUIT = 1
INTERRUPTED = 130
MIN_WIDTH, MAX_WIDTH = 60, 100
STATE_PARTS = ("memory", "variables", "context")

HELP = """\
  n, Enter   run the next step and pause again
  c          continue to the end without pausing
  s          show the state at the previous step
  d          show what changed in the state at the previous step
  q          quit now (the replay does not finish; exit status 1)
  ?          this help"""


class UsageProblem(Exception):
    """A problem with the command line (exit status 4)."""


def run_replay(args: argparse.Namespace) -> int:
    """The `replay` subcommand: 0 if the golden passed, 1 if not, 4 on usage errors."""
    # the agent runs in this process: its own output (colours, progress) is its own, so it
    # goes out as written, and what opswald prints is escaped line by line (`_say`)
    with raw_streams():
        return _run_replay(args)


def _run_replay(args: argparse.Namespace) -> int:
    try:
        golden, adapter, options, settings = _prepare(args)
    except UsageProblem as exc:
        print(escaped(f"error: {exc}"), file=sys.stderr)
        return USAGE
    from opswald import adapters
    from opswald.engine.replay import Replay

    total = 0 if golden.is_stub else len(golden.step_list)
    # the golden's own `timeout:`, as pytest applies it (this command has no option of its
    # own to fall back on, as pytest has --opswald-timeout)
    timeout = golden.timeout
    if timeout and args.interactive:
        print(
            escaped(
                f"note: the golden's `timeout: {timeout}` is not applied under --interactive: "
                "the pauses wait for you, and would count against it"
            ),
            file=sys.stderr,
        )
        timeout = None
    printer = (
        TimedPrinter(total=total, width=_width())
        if timeout
        else StepPrinter(total=total, width=_width())
    )
    replay = Replay(golden, adapter=adapter, hooks=printer, **options)
    mode = f", mode {replay.mode}" if replay.mode != "replay" else ""
    size = "a stub" if golden.is_stub else counted(total, "step")
    heading = f"replaying {args.golden}: {golden.name or '(unnamed)'}, {size}{mode}"
    _say("\n".join(wrapped(heading, printer.width)))
    try:
        if args.interactive:
            finished = _interactive(replay, total, printer.width)
            if not finished:
                _say("quit: the replay was stopped before the end (no verdict)")
                return QUIT
            result = replay.result
        elif timeout:
            assert isinstance(printer, TimedPrinter)
            result = _run_timed(replay, printer, timeout)
        else:
            result = replay.run()
    except KeyboardInterrupt:
        _say("\ninterrupted: the replay was stopped before the end (no verdict)")
        return INTERRUPTED
    except adapters.AdapterMismatch as exc:
        # the agent never ran (a subprocess adapter's command that could not be started,
        # found only when starting it): the command line's or the config's to fix
        print(escaped(f"error: {exc}"), file=sys.stderr)
        return USAGE
    except Stopped as exc:
        _say("FAILED")
        text = f"{args.golden}: {exc}"
        _say("\n".join(part for line in text.splitlines() for part in wrapped(line, printer.width)))
        return 1
    assert result is not None
    forked = options["fork_at"] is not None  # never written; a modified run may be
    return _report(
        result,
        total,
        printer.width,
        forked=forked,
        modifications=dict(options["modifications"]),
        settings=settings,
    )


class Stopped(Exception):
    """The agent's process was stopped by the golden's timeout, or died: the golden fails."""


def _run_timed(replay: Replay, printer: TimedPrinter, timeout: float) -> ReplayResult:
    """Run the replay in a forked child process that is killed when the golden's `timeout:`
    expires, as pytest runs it: what the agent raises comes back as raised in-process."""
    from opswald.engine.isolate import IsolationError, Report, Timeout, run_isolated

    def session(report: Report) -> ReplayResult | None:
        printer.report = report
        return replay.run()

    try:
        result = run_isolated(session, timeout=timeout)
    except Timeout as exc:
        where = exc.progress.where()
        raise Stopped(
            f"{exc}\nfix: the agent was stopped (its process killed) {where}; raise the "
            "golden's `timeout:` if it needs longer"
        ) from None
    except IsolationError as exc:
        raise Stopped(f"the agent's process failed: {exc}") from None
    assert result is not None
    return result


# -- preparing the run ------------------------------------------------------------------
def _prepare(
    args: argparse.Namespace,
) -> tuple[Session, Callable[..., Any], dict[str, Any], CliSettings]:
    from opswald import files
    from opswald.engine.context import STEP_MODIFICATIONS, changes_one_step, fork_problem
    from opswald.engine.replay import Suite, mode_problem
    from opswald.engine.run import from_the_golden, golden_step_modifications

    path = Path(args.golden)
    try:
        golden = files.load(path)
    except files.GoldenLoadError as exc:
        raise UsageProblem(str(exc)) from None
    except OSError as exc:
        raise UsageProblem(f"cannot read golden {args.golden}: {exc.strerror or exc}") from None
    settings = project_settings([path], getattr(args, "config_file", None))
    fork_at = getattr(args, "fork_at", None)
    mode = args.mode
    if mode is None and fork_at is None and settings.mode == "live":
        mode = "live"  # the config's opswald_mode (record modes write: never here)
    if golden.is_stub and mode != "live":
        raise UsageProblem(
            f"{args.golden} is a stub, not recorded yet: record it with "
            "pytest --opswald-goldens --opswald-mode=record (or run it with --mode live)"
        )
    adapter = _adapter(args.adapter, golden.agent, settings, path.name)
    try:
        tolerance = settings.tolerance()
    except ValueError as exc:  # projectconfig.SettingError
        raise UsageProblem(str(exc)) from None
    modifications = _modifications(args.modify or [])
    if fork_at is not None and fork_at < 1:
        raise UsageProblem("--fork-at: steps are numbered from 1")
    given = {k: modifications[k] for k in STEP_MODIFICATIONS if k in modifications}
    own = golden_step_modifications(golden)  # the weakest source of them
    step_mods = [k for k in STEP_MODIFICATIONS if k in given or k in own]
    if step_mods and fork_at is None:
        raise UsageProblem(
            f"{'--modify ' if given else ''}{changes_one_step(step_mods)}: give the step "
            f"with --fork-at N{from_the_golden(own, given)}"
        )
    conflict = mode_problem(mode, fork_at, "cli")
    if conflict is not None:
        raise UsageProblem(conflict)
    problem = fork_problem(golden, fork_at, step_mods, [*modifications, *golden.modifications])
    if problem is not None:
        raise UsageProblem(f"--fork-at {fork_at}: {problem}{from_the_golden(own, given)}")
    options: dict[str, Any] = {
        "modifications": modifications,
        "speed": _speed(args.speed),
        "mode": mode,
        "fork_at": fork_at,
        "allow_side_effects": bool(getattr(args, "allow_side_effects", False)),
        "surface": "cli",
        "integrations": settings.integrations,
        "side_effect_tools": tuple(settings.side_effect_tools),
        "suite": Suite(
            requests=settings.requests,
            redactor=settings.redactor,
            prices=settings.prices,
            langgraph_state=settings.langgraph_state,
            tolerance=tolerance,
        ),
    }
    return golden, adapter, options, settings


def project_settings(paths: list[Path], config_file: str | None) -> CliSettings:
    """opswald's settings in the pytest config that pytest would use for `paths` (or
    `config_file`), with the user's modules made importable as under pytest."""
    from opswald import projectconfig

    def note(text: str) -> None:
        print(escaped(f"note: {text}"), file=sys.stderr)

    try:
        config = projectconfig.find(paths, config_file=config_file)
        settings = projectconfig.cli_settings(config, warn=note)
    except projectconfig.SettingError as exc:
        raise UsageProblem(str(exc)) from None
    projectconfig.importable(settings)
    return settings


def _adapter(
    spec: str | None, agent: str | None, settings: CliSettings, golden: str
) -> Callable[..., Any]:
    """`--adapter`, else the golden's `agent:` among registered adapters and entry points,
    else the config's opswald_adapter: pytest's order, with the command line first. A
    module is also looked for in the config file's folder, as under pytest; an `agent:`
    naming no adapter while others are registered is warned of on stderr."""
    from opswald import adapters

    root = settings.adapter_root
    if spec:
        try:
            imported = adapters.import_string(spec, root=root)
        except adapters.AdapterNotFound as exc:  # also a subprocess: command refused as given
            raise UsageProblem(f"--adapter: {exc}") from None
        try:
            return adapters.check(imported, f"--adapter {spec}")
        except adapters.AdapterMismatch as exc:
            raise UsageProblem(str(exc)) from None
    found = None
    if agent:
        found = adapters.registered().get(agent)
        if found is None:
            try:
                found = adapters.from_entry_points(agent)
            except Exception as exc:  # the entry point's module failed to import
                raise UsageProblem(f"cannot load the adapter {agent!r}: {exc}") from None
    if found is not None:
        try:
            return adapters.check(found, f"the adapter {agent!r}")
        except adapters.AdapterMismatch as exc:
            raise UsageProblem(str(exc)) from None
    inipath = settings.config.inipath
    if settings.adapter:
        try:
            imported = adapters.import_string(settings.adapter, root=root)
        except adapters.AdapterNotFound as exc:  # also a subprocess: command refused as given
            raise UsageProblem(f"{inipath}: opswald_adapter: {exc}") from None
        try:
            fn = adapters.check(imported, f"{inipath}: opswald_adapter = {settings.adapter}")
        except adapters.AdapterMismatch as exc:
            raise UsageProblem(str(exc)) from None
        # after the import: an adapter registered in the module it names counts too
        used = f"opswald_adapter = {settings.adapter!r}"
        warning = adapters.unregistered_agent(agent, used, golden)
        if warning is not None:
            print(escaped(f"warning: {warning}"), file=sys.stderr)
        return fn
    problem = (
        f"the golden's agent {agent!r} is neither registered with @opswald.adapter nor "
        f"in the entry-point group {adapters.ENTRY_POINT_GROUP!r}"
        if agent
        else "the golden names no agent (`agent:`)"
    )
    config = f"the pytest config {inipath} sets" if inipath else "no pytest config file sets"
    raise UsageProblem(
        f"{problem}, no --adapter was given and {config} no opswald_adapter\n"
        "fix: pass --adapter package.module:callable, or set opswald_adapter in the pytest "
        "config (modules in the current directory and beside the config file import); "
        "`opswald replay` does not load conftest.py, so adapters registered there are not seen"
    )


def _modifications(items: list[str]) -> dict[str, Any]:
    import pytest

    from opswald.plugin import parse_assignments

    try:
        return parse_assignments(items, "--modify")
    except pytest.UsageError as exc:
        raise UsageProblem(str(exc)) from None


def _speed(raw: str | None) -> Literal["realtime"] | float | None:
    if raw is None:
        return None
    if raw.strip().lower() == "realtime":
        return "realtime"
    try:
        factor = float(raw)
    except ValueError:
        factor = -1.0
    if not factor > 0 or factor == float("inf"):
        raise UsageProblem(
            f"--speed: {raw!r} is neither 'realtime' nor a positive factor (2 = twice as fast)"
        )
    return factor


def _width() -> int:
    """The terminal's width (60 to 100 columns): COLUMNS when set, else the terminal's,
    else 100 (output that is not a terminal)."""
    columns = shutil.get_terminal_size((MAX_WIDTH, 24)).columns
    return max(MIN_WIDTH, min(MAX_WIDTH, columns))


def _say(text: str) -> None:
    print(escaped(text), flush=True)


# -- interactive control ----------------------------------------------------------------
def _interactive(replay: Replay, total: int, width: int) -> bool:
    """Pause before every step until the user continues; False if they quit."""
    echo = not sys.stdin.isatty()
    result = replay.pause_at(1).run()
    while result is None:
        number = replay.paused_at or 1
        try:
            line = input(f"[{_label(number, total)}] (n)ext (c)ontinue (s)tate (d)iff (q)uit > ")
        except EOFError:
            _say("(end of input: continuing to the end)")
            result = replay.resume()
            continue
        command = line.strip().lower()
        if echo:
            _say(line.rstrip("\n"))
        if command in ("", "n", "next"):
            result = replay.step_once()
        elif command in ("c", "continue"):
            result = replay.resume()
        elif command in ("s", "state"):
            _say(render_state(replay, number - 1, width))
        elif command in ("d", "diff"):
            _say(render_changes(replay, number - 1))
        elif command in ("q", "quit"):
            return False
        elif command in ("?", "h", "help"):
            _say(HELP)
        else:
            _say(f"unknown command {line.strip()!r}; ? for help")
    return True


def render_state(replay: Replay, step: int, width: int) -> str:
    """The state at `step` (DESIGN §3a), one line per part."""
    if step < 1:
        return "state: nothing has run yet"
    state = replay.get_state(step)
    lines = [f"state at step {step}:"]
    parts: dict[str, Any] = {name: getattr(state, name) for name in STATE_PARTS}
    parts.update(state.extras)
    for name, value in parts.items():
        if value is not None:
            lines.append(_clip(f"  {name}: {_json(value)}", width))
    for out in state.tool_outputs:
        shown = (
            f"{out['error'].get('type')}: {out['error'].get('message', '')}"
            if "error" in out
            else _json(out["output"])
        )
        lines.append(_clip(f"  tool output, step {out['step']} {out['tool']}: {shown}", width))
    if state.last_output is not None:
        lines.append(_clip(f"  last LLM output: {_json(state.last_output)}", width))
    if len(lines) == 1:
        lines.append("  (empty: no snapshot, tool output or LLM output yet)")
    return "\n".join(lines)


def render_changes(replay: Replay, step: int) -> str:
    """What changed in the state from step-1 to step."""
    from opswald.engine.state import state_changes

    if step < 1:
        return "diff: nothing has run yet"
    steps = [v.step for v in replay.steps]
    changes = state_changes(steps, step)
    span = f"from step {step - 1} to step {step}" if step > 1 else "from the start to step 1"
    if not changes:
        return f"no change in the state {span}"
    return "\n".join([f"state changes {span}:"] + [f"  {line}" for line in changes])


# -- the end ----------------------------------------------------------------------------
def _report(
    result: ReplayResult,
    total: int,
    width: int,
    *,
    forked: bool = False,
    modifications: dict[str, Any] | None = None,
    settings: CliSettings | None = None,
) -> int:
    from opswald.diff import render_verdict

    actual = result.actual
    if result.passed and actual.error is not None:
        _say(_clip(f"agent error (as recorded): {actual.error.text()}", width))
    elif result.passed:
        _say(_clip(f"output: {_json(actual.output)}", width))
    from opswald.engine.context import STEP_MODIFICATIONS
    from opswald.engine.run import (
        blocked_fix,
        fix_line,
        recorded_under,
        recorded_variant,
        side_effects_ahead,
    )

    if result.modification_note is not None:  # a typo in --modify, say
        print(escaped(f"note: {result.modification_note}"), file=sys.stderr, flush=True)
    modifications = modifications or {}

    update = "pytest --opswald-goldens --opswald-update"
    # pytest writes a run with the same modifications as its new golden; a step
    # modification it refuses there (it needs a fork, and a fork is never written)
    kept = [key for key in modifications if key not in STEP_MODIFICATIONS]
    if kept and len(kept) == len(modifications):
        update += " and the same --opswald-modify"
    elif kept:
        update += " and the same " + " ".join(f"--opswald-modify {key}=…" for key in kept)
    fix = fix_line(
        result.verdict,
        result.golden.expect,
        forked=forked,
        update=update,
        live=result.policy == "live",
        recorded=recorded_under(
            result.golden,
            {k: v for k, v in modifications.items() if k not in STEP_MODIFICATIONS},
        ),
        variant=recorded_variant(result.golden),
        side_effects=side_effects_ahead(
            result.golden,
            result.verdict,
            settings.side_effect_tools if settings is not None else frozenset(),
        ),
    )
    if result.offline_note is not None and result.policy != "live":
        # as pytest says it: an update cannot help
        fix = blocked_fix(result.offline_note, proxy=result.offline_proxy)
    diff_mode: Any = settings.diff_mode if settings is not None else "detailed"
    text = render_verdict(result.verdict, total_steps=total or None, mode=diff_mode, fix=fix)
    if settings is not None:  # secrets (and with opswald_redact = pii, personal data) scrubbed
        text = settings.redactor.text(text)
    # the verdict's lines (a hint, a value) can be far wider than the terminal
    text = "\n".join(part for line in text.splitlines() for part in wrapped(line, width))
    if result.passed:
        _say("passed")
        if text:
            _say(text)
        return 0
    _say("FAILED")
    _say(text)
    return 1


# -- one line per step ------------------------------------------------------------------
_BODY_ROOM = 20  # columns a step line keeps for what the step did, cutting a long name


class StepPrinter:
    """Replay hooks: prints each step when it has happened (called on the agent's thread)."""

    def __init__(self, *, total: int, width: int = MAX_WIDTH) -> None:
        self.total = total
        self.width = width

    def after_step(self, step: AnyStep, result: Any) -> None:
        _say(self.line(step))

    def line(self, step: AnyStep) -> str:
        label = _label(step.step, self.total)
        tail = f"  ({milliseconds(step.duration_ms)})" if step.duration_ms is not None else ""
        if isinstance(step, ToolCallStep):
            head = f"{label} · tool_call {step.tool}  "
            result = step.error.text() if step.error is not None else _json(step.output)
            body = self._pair(_json(step.input), result, len(head) + len(tail))
        elif isinstance(step, LLMCallStep):
            head = f"{label} · llm_call {step.model or step.provider or '?'}  "
            body = self._llm(step, len(head) + len(tail))
        elif isinstance(step, UserInputStep):
            head = f"{label} · user_input  "
            body = _one_line(step.content)
        else:
            assert isinstance(step, StateStep)
            head = f"{label} · state  "
            body = _state_parts(step)
        room = self.width - display_width(head) - len(tail)
        if room < _BODY_ROOM:  # a long tool or model name: cut it, so what it did shows
            head = _clip(head.rstrip(), self.width - len(tail) - _BODY_ROOM - 2) + "  "
            room = self.width - display_width(head) - len(tail)
        return f"{head}{_clip(body, room)}{tail}".rstrip()

    def _pair(self, left: str, right: str, used: int) -> str:
        """`left → right`, each cut so the two share the room left on the line."""
        room = max(self.width - used - 3, 20)
        left_width, right_width = display_width(left), display_width(right)
        if left_width + right_width > room:
            half = room // 2
            if left_width <= half:
                right = _clip(right, room - left_width)
            elif right_width <= half:
                left = _clip(left, room - right_width)
            else:
                left, right = _clip(left, half), _clip(right, room - half)
        return f"{left} → {right}"

    def _llm(self, step: LLMCallStep, used: int) -> str:
        facts: list[str] = []
        if step.usage is not None:
            facts.append(f"{step.usage.total()} tokens")
        if step.cost is not None:
            facts.append(_cost(step.cost))
        lead = "  ".join(facts)
        if step.error is not None:
            answer = step.error.text()
        else:
            answer = _answer(step)
        return f"{lead}  → {answer}" if lead else f"→ {answer}"


class TimedPrinter(StepPrinter):
    """A StepPrinter in the child process of a timeout: it also tells the parent which step
    the agent is at, so that a timeout's message names it."""

    report: Callable[[Any], None] | None = None

    def before_step(self, step: Any) -> None:
        from opswald.engine.isolate import Progress

        if self.report is not None:
            label = f"{step.type} {step.name}" if step.name else step.type
            self.report(Progress(step=step.number, description=label))

    def after_step(self, step: AnyStep, result: Any) -> None:
        from opswald.engine.isolate import Progress
        from opswald.engine.tape import describe

        super().after_step(step, result)
        if self.report is not None:
            self.report(Progress(step=step.step, description=describe(step), done=True))


def _label(number: int | None, total: int) -> str:
    if number is None:
        return "step ?"
    return f"step {number} of {total}" if 0 < number <= total else f"step {number}"


def _answer(step: LLMCallStep) -> str:
    out = step.output
    if out is None:
        return "(no output)"
    if out.tool_calls:
        calls = []
        for call in out.tool_calls:
            if isinstance(call, dict):
                name = call.get("name") or (call.get("function") or {}).get("name") or "?"
                args = call.get("arguments")
                if args is None:
                    args = (call.get("function") or {}).get("arguments")
                if isinstance(args, str):
                    try:
                        args = json.loads(args)
                    except ValueError:
                        pass
                calls.append(f"{name}({_json(args) if args is not None else ''})")
            else:
                calls.append(_json(call))
        return ", ".join(calls)
    text = _content_text(out.content)
    if text is None:
        return f"({out.finish_reason or 'no content'})"
    first = text.strip().splitlines()[0] if text.strip() else ""
    more = " …" if len(text.strip().splitlines()) > 1 else ""
    return f'"{first}"{more}'


def _content_text(content: Any) -> str | None:
    if content is None:
        return None
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # content blocks
        texts = [
            b["text"] for b in content if isinstance(b, dict) and isinstance(b.get("text"), str)
        ]
        if texts:
            return "\n".join(texts)
    return _json(content)


def _state_parts(step: StateStep) -> str:
    parts: dict[str, Any] = {name: getattr(step, name) for name in STATE_PARTS}
    parts.update((k, v) for k, v in (step.model_extra or {}).items() if k not in STEP_FIELDS)
    shown = []
    for name, value in parts.items():
        if value is None:
            continue
        if isinstance(value, dict):
            keys = ", ".join(str(k) for k in value)
            shown.append(f"{name} ({keys})" if keys else f"{name} (empty)")
        else:
            shown.append(name)
    return ", ".join(shown) if shown else "(empty snapshot)"


def _one_line(value: Any) -> str:
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    return _json(value)


def _json(value: Any) -> str:
    try:
        return json.dumps(value, ensure_ascii=False, default=str)
    except (TypeError, ValueError, RecursionError):
        return repr(value)


def _clip(text: str, width: int) -> str:
    """Cut to `width` terminal columns (at least 8): a wide (CJK) character takes two."""
    return clip(text, max(width, 8))


def _cost(cost: float) -> str:
    """As `show` and the summary write a cost (`pricing.money`: two significant digits
    under a tenth of a cent)."""
    return "$0" if cost == 0 else money(cost)
