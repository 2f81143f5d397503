"""Looking at sessions from the terminal: `show`, `diff`, `analyze`, `upgrade` and
`golden note`. Every table fits the terminal; `--json` gives the same data to machines."""

from __future__ import annotations

import argparse
import dataclasses
import json
import shutil
import sys
import textwrap
from pathlib import Path
from typing import TYPE_CHECKING, Any

from opswald.argtypes import milliseconds_arg, positive_int
from opswald.session import (
    AnyStep,
    LLMCallStep,
    Session,
    StateStep,
    ToolCallStep,
    cut_short,
    placed_notes,
)
from opswald.terminal import counted
from opswald.verdict import MISSING

if TYPE_CHECKING:
    from opswald.diff import DiffMode
    from opswald.sessiondiff import ReplayStop

TYPE_ALIASES = {
    "llm": "llm_call",
    "llm_call": "llm_call",
    "tool": "tool_call",
    "tool_call": "tool_call",
    "user": "user_input",
    "user_input": "user_input",
    "state": "state",
}


class CliError(Exception):
    """Bad input: printed as `error: ...`, exit status 4 (1 for unreadable goldens)."""

    def __init__(self, message: str, status: int = 4) -> None:
        super().__init__(message)
        self.status = status


def _width() -> int:
    return max(60, min(shutil.get_terminal_size((80, 24)).columns, 160))


def _clip(text: str, width: int) -> str:
    """Cut to `width` terminal columns: a wide (CJK) character takes two."""
    from opswald.terminal import clip

    return clip(text, width)


def _padded(text: str, width: int) -> str:
    """`text` padded with spaces to `width` terminal columns (a wide character takes two)."""
    from opswald.terminal import display_width

    return text + " " * max(0, width - display_width(text))


def _say_wrapped(text: str, width: int) -> None:
    """One message line broken at spaces to the width, later lines indented."""
    from opswald.terminal import wrapped

    for line in wrapped(text, width):
        print(line)


def _load(path: str) -> Session:
    from opswald.files import GoldenLoadError, load

    try:
        return load(path)
    except (GoldenLoadError, OSError) as exc:
        raise CliError(str(exc), 1) from None


def _shown(path: str) -> Session:
    """A golden to print (`show`, `diff`, `analyze`): loaded, with the secrets in it
    replaced by the project's rules (`opswald_redact`) as the viewer replaces them — a
    golden written or edited by hand may hold some, and terminal output is pasted around."""
    from opswald.projectconfig import project_redactor
    from opswald.redact import redact_session

    return redact_session(_load(path), project_redactor([path]))


def _print_json(data: Any) -> None:
    from opswald import jsontext

    # infinity as 1e999, NaN as {"$float": "NaN"}: JSON, as goldens write it
    print(jsontext.dumps(data, indent=2, default=str))


def _step_name(step: AnyStep) -> str:
    if isinstance(step, ToolCallStep):
        return step.tool
    if isinstance(step, LLMCallStep):
        return step.model or ""
    if isinstance(step, StateStep):
        return ", ".join(k for k in ("memory", "variables", "context") if getattr(step, k))
    return json.dumps(step.content, ensure_ascii=False, default=str)  # text output clips it


def _tokens(step: AnyStep) -> int | None:
    if isinstance(step, LLMCallStep) and step.usage is not None:
        return step.usage.total()
    return None


def _row(step: AnyStep) -> dict[str, Any]:
    row = {
        "step": step.step,
        "type": step.type,
        "name": _step_name(step),
        "tokens": _tokens(step),
        "cost": step.cost if isinstance(step, LLMCallStep) else None,
        "duration_ms": step.duration_ms,
        "error": step.error.text() if step.error else None,
        "description": step.description,
    }
    if step.lane is not None:  # only sessions whose calls came from more than one have lanes
        row["lane"] = step.lane
    return row


def parse_types(text: str | None) -> set[str] | None:
    if not text:
        return None
    types = set()
    for part in text.split(","):
        key = part.strip().lower()
        if key not in TYPE_ALIASES:
            raise CliError(f"--type: unknown step type {part!r}; use llm, tool, user, state")
        types.add(TYPE_ALIASES[key])
    return types


def parse_range(text: str | None, total: int) -> tuple[int, int, bool]:
    """`5-12`, `5-`, `-12` or `7` as an inclusive 1-based range within 1..total, and whether
    its end was past the session's last step (cut there, as `5-` is)."""
    if not text:
        return 1, total, False
    first, sep, last = text.partition("-")
    try:
        lo = int(first) if first.strip() else 1
        hi = (int(last) if last.strip() else total) if sep else lo
    except ValueError:
        raise CliError(f"--steps: {text!r} is not a range like 5-12") from None
    if lo < 1 or hi < lo:
        raise CliError(f"--steps: {text!r} is not a range of steps 1..{total}")
    if lo > total:
        plural = "s" if total != 1 else ""
        raise CliError(f"--steps: {text!r}: the session has {total} step{plural}")
    return lo, min(hi, total), hi > total


def _money(cost: float | None, unpriced: int = 0) -> str:
    """A cost, `≥ $x, n calls unpriced` when it is the priced part of some calls only."""
    from opswald.report.summary import shown_cost

    return "-" if cost is None else shown_cost(cost, unpriced)


def _ms(ms: float | None) -> str:
    from opswald.pricing import milliseconds

    return "-" if ms is None else milliseconds(ms)


def _token_count(total: int, without_usage: int) -> str:
    """A token count, or `no usage recorded` when calls answered and none reported one (a
    hand-written golden): its rows say `-`, not 0; `≥ 165 tokens, 1 call without usage`
    when some did (the total is a part), as a partly priced cost reads."""
    if without_usage and not total:
        return "no usage recorded"
    if without_usage:
        calls = f"{without_usage} call{'s' if without_usage != 1 else ''}"
        return f"≥ {total:,} tokens, {calls} without usage"
    return f"{total:,} tokens"


def _duration(ms: float, recorded: bool) -> str:
    return _ms(ms) if recorded else "no time recorded"


def _figures(session: Session) -> Any:
    from opswald.expect.budgets import figures

    return figures(session)


def _headline(session: Session, label: str, width: int) -> str:
    """`name: 6 steps (3 LLM, 2 tool), 1,250 tokens, $0.00072, 0.6 ms` in `width` columns:
    a long name is cut, never the figures after it (on lines of their own where they do
    not fit beside a name)."""
    from opswald.expect.budgets import figures

    fig = figures(session)
    totals = (
        f": {counted(fig.steps, 'step')} ({fig.llm_calls} LLM, "
        f"{fig.tool_calls} tool), "
        f"{_token_count(fig.total_tokens, fig.calls_without_usage)}, "
        f"{_money(fig.cost, fig.unpriced_calls)}, "
        f"{_duration(fig.duration_ms, fig.duration_recorded)}"
    )
    name = session.name or label
    if min(12, len(name)) + len(totals) <= width:  # one line: the name cut as it must be
        return _clip(name, width - len(totals)) + totals
    # the totals do not fit beside a name: the name, then the totals broken at spaces
    from opswald.terminal import wrapped

    return "\n".join([_clip(name + ":", width), *wrapped("  " + totals[2:], width)])


def _recorded_under(session: Session) -> dict[str, Any] | None:
    """The variant and the modifications a session was recorded under (`metadata.variant`,
    `metadata.modifications`); None if it was recorded with none."""
    from opswald.engine.run import recorded_variant

    modifications = session.metadata.get("modifications")
    variant = recorded_variant(session)
    if not isinstance(modifications, dict) or not modifications:
        return {"variant": variant, "modifications": {}} if variant else None
    return {"variant": variant, "modifications": modifications}


def _recorded_line(recorded: dict[str, Any]) -> str:
    listing = ", ".join(f"{k}={v}" for k, v in recorded["modifications"].items())
    if recorded["variant"] is None:
        return f"recorded under {listing}"
    return f"recorded under the variant {recorded['variant']}" + (f": {listing}" if listing else "")


# -- show -------------------------------------------------------------------------------


def cmd_show(args: argparse.Namespace) -> int:
    if args.step is not None and (args.type or args.steps):
        raise CliError("--step shows one step whole: --type and --steps do not combine with it")
    session = _shown(args.golden)
    if session.is_stub:
        stub = "a stub, not recorded yet"
        if args.step is not None or args.steps:
            raise CliError(f"{args.golden} is {stub}: it has no steps to show")
        if args.json:
            _print_json({"name": session.name, "stub": True, "total_steps": 0, "steps": []})
            return 0
        print(
            f"{session.name or args.golden}: {stub} "
            "(record it with pytest --opswald-goldens --opswald-mode=record)"
        )
        return 0
    steps = session.step_list
    if args.step is not None:
        return _show_step(session, args.step, args.json)
    types = parse_types(args.type)
    lo, hi, cut = parse_range(args.steps, len(steps))
    chosen = [s for s in steps if lo <= s.step <= hi and (types is None or s.type in types)]
    notes, loose = placed_notes(session)  # a note on a step it lacks: on the whole golden
    if args.json:
        _print_json(
            {
                "name": session.name,
                "total_steps": len(steps),
                "totals": dataclasses.asdict(_figures(session)),
                "steps": [{**_row(s), "notes": notes.get(s.step, [])} for s in chosen],
                "notes": loose,
                "recorded_under": _recorded_under(session),
                "output": session.output,
                "error": session.error.model_dump(exclude_none=True) if session.error else None,
            }
        )
        return 0
    width = _width()
    print(_headline(session, args.golden, width))
    recorded = _recorded_under(session)
    if recorded is not None:
        print(_clip(_recorded_line(recorded), width))
    for text in loose:
        print(_clip(f"note: {text}", width))
    # which thread or task made each call, for a session whose calls came from more than
    # one: the calls that ran together are told apart by it (judged on the whole session,
    # so a filtered table keeps the column)
    lanes = any(s.lane is not None for s in steps)
    lane_head = f"{'lane':>4}  " if lanes else ""
    name_w = max(8, width - 53 - len(lane_head))
    print(
        f"{'step':>4}  {lane_head}{'type':<10} {'name':<{name_w}} {'tokens':>7} {'cost':>9} "
        f"{'duration':>10}"
    )
    for s in chosen:
        tokens = _tokens(s)
        cost = s.cost if isinstance(s, LLMCallStep) else None
        lane = f"{s.lane if s.lane is not None else '-':>4}  " if lanes else ""
        line = (
            f"{s.step:>4}  {lane}{s.type:<10} {_padded(_clip(_step_name(s), name_w), name_w)} "
            f"{tokens if tokens is not None else '-':>7} {_money(cost):>9} "
            f"{_ms(s.duration_ms):>10}"
        )
        print(line.rstrip())
        if s.error is not None:
            print(_clip(f"      ! {s.error.text()}", width))
        for text in notes.get(s.step, []):
            print(_clip(f"      note: {text}", width))
    if len(chosen) < len(steps) or cut:
        end = f"; the session ends at step {len(steps)}" if cut else ""
        print(f"({len(chosen)} of {len(steps)} steps shown{end})")
    if session.error is not None:
        print(_clip(f"error: {session.error.text()}", width))
    print(_clip(f"output: {json.dumps(session.output, ensure_ascii=False, default=str)}", width))
    return 0


def _show_step(session: Session, number: int, as_json: bool) -> int:
    from opswald.engine.state import state_at, state_changes
    from opswald.files import to_data

    steps = session.step_list
    if not 1 <= number <= len(steps):
        raise CliError(f"--step {number}: the golden has steps 1..{len(steps)}")
    step = steps[number - 1]
    data = to_data(session)["steps"][number - 1]
    state = state_at(steps, number).flat()
    changes = state_changes(steps, number, full=as_json)
    notes = [n.text for n in session.notes if n.step == number]
    if as_json:
        _print_json({"step": data, "state": state, "changes": changes, "notes": notes})
        return 0
    print(f"step {number} of {len(steps)} · {step.type} {_step_name(step)}".rstrip())
    body = {k: v for k, v in data.items() if k not in ("step", "type")}
    print(_indent(_yaml(body)))
    for text in notes:
        print(f"note: {text}")
    print(f"state at step {number}:")
    view = _state_view(
        state, number, own_llm=step.type == "llm_call", sources=_sources(steps, number)
    )
    print(_indent(_yaml(view)))
    print(f"changes from step {number - 1}:" if number > 1 else "changes from the start:")
    width = _width()
    print(_indent("\n".join(_clip(line, width - 2) for line in changes) or "(none)"))
    return 0


STATE_SHOWN_WHOLE = 2000  # characters of JSON: a larger value in a state is summarised


def _sources(steps: list[AnyStep], number: int) -> dict[str, int]:
    """The step each part of the state at step `number` comes from: the snapshot's parts
    from the last snapshot at or before it, `last_output` from the last model call."""
    snapshot = next((s.step for s in reversed(steps[:number]) if isinstance(s, StateStep)), 0)
    llm = next(
        (
            s.step
            for s in reversed(steps[:number])
            if isinstance(s, LLMCallStep) and s.output is not None
        ),
        0,
    )
    return {"snapshot": snapshot, "last_output": llm}


def _state_view(
    state: dict[str, Any], number: int, *, own_llm: bool, sources: dict[str, int] | None = None
) -> dict[str, Any]:
    """The state at step `number` for reading: empty parts left out, and a value too large
    to repeat (a tool output of 50,000 rows, in the state of every step after it) as a line
    that says what it is and where it is shown whole — this step's own output is above."""
    view: dict[str, Any] = {}

    def source(part: str) -> int | None:
        return (sources or {}).get(part) or None

    for key, value in state.items():
        if value is None or (isinstance(value, list | dict) and not value):
            continue
        if key == "tool_outputs":
            view[key] = [
                {**entry, "output": _summary(entry["output"], entry["step"], number)}
                if entry.get("output") is not None
                else entry
                for entry in value
            ]
        elif key == "last_output":
            view[key] = _summary(value, number if own_llm else source("last_output"), number)
        else:
            view[key] = _summary(value, source("snapshot"), number, "snapshot")
    return view


def _summary(value: Any, step: int | None, number: int, what: str = "output") -> Any:
    """`value`, or when its JSON passes STATE_SHOWN_WHOLE characters a line saying what it
    is (its size, its start) and where it is shown whole."""
    from opswald.diff import short_repr

    text = json.dumps(value, ensure_ascii=False, default=str)
    if len(text) <= STATE_SHOWN_WHOLE:
        return value
    count = (
        f"{counted(len(value), 'item' if isinstance(value, list) else 'key')}, "
        if isinstance(value, list | dict)
        else ""
    )
    size = f"{count}{len(text.encode('utf-8', 'surrogatepass')) / 1024:,.0f} KB as JSON"
    if step == number:
        return f"(the {what} of this step, above: {size})"
    where = f"`opswald show --step {step}`" if step is not None else "`--json`"
    return f"({size}; {where} shows it whole) {short_repr(value)}"


def _yaml(data: Any) -> str:
    import yaml

    if data in ({}, None):
        return "(none)"
    text: str = yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=_width() - 4)
    return text.rstrip()


def _indent(text: str) -> str:
    return "\n".join("  " + line for line in text.splitlines())


# -- diff -------------------------------------------------------------------------------


def cmd_diff(args: argparse.Namespace) -> int:
    # the arguments themselves: usage errors, exit 2, as argparse's own (`diff A B C`)
    if args.steps is not None:
        if args.actual is not None:
            raise CliError("give either a second session or --steps A B, not both", status=2)
        return _diff_steps(args)
    if args.actual is None:
        raise CliError("diff needs two sessions (GOLDEN ACTUAL) or --steps A B", status=2)
    return _diff_sessions(args)


def _diff_steps(args: argparse.Namespace) -> int:
    from opswald.engine.state import state_diff

    session = _shown(args.golden)
    steps = session.step_list
    a, b = args.steps
    for n in (a, b):
        if n is None or not 0 <= n <= len(steps):
            raise CliError(f"--steps: the golden has steps 1..{len(steps)} (0 is the start)")
    lines = state_diff(steps, a, b, full=args.json)
    if args.json:
        _print_json({"from": a, "to": b, "changes": lines})
        return 0
    print(f"state after step {a} → state after step {b} of {len(steps)}")
    for line in lines or ["(no change)"]:
        print(_clip(line, _width()))
    return 0


def _figures_delta(golden: Session, actual: Session) -> dict[str, Any]:
    from opswald.expect.budgets import figures

    g, a = figures(golden), figures(actual)
    out: dict[str, Any] = {}
    for key in ("steps", "llm_calls", "tool_calls", "total_tokens", "cost", "duration_ms"):
        before, now = getattr(g, key), getattr(a, key)
        change = None if before is None or now is None else round(now - before, 10)
        if key == "cost" and (g.unpriced_calls or a.unpriced_calls):
            change = None  # one is the priced part only: their difference says nothing
        percent = round(change / before * 100, 1) if change is not None and before else None
        out[key] = {"golden": before, "actual": now, "change": change, "percent": percent}
        if key == "cost":
            out[key]["unpriced_calls"] = {"golden": g.unpriced_calls, "actual": a.unpriced_calls}
    return out


def _delta_text(key: str, d: dict[str, Any]) -> str:
    def fmt(v: Any) -> str:
        if v is None:
            return "?"
        if key == "duration_ms":
            return _ms(v)
        return f"{v:,}"

    pct = f" ({d['percent']:+.0f}%)" if d["percent"] is not None else ""
    if key == "cost":
        unpriced = d.get("unpriced_calls") or {}
        before = "?" if d["golden"] is None else _money(d["golden"], unpriced.get("golden", 0))
        after = "?" if d["actual"] is None else _money(d["actual"], unpriced.get("actual", 0))
        return f"cost {before} → {after}{pct}"
    return f"{key.replace('_', ' ')} {fmt(d['golden'])} → {fmt(d['actual'])}{pct}"


def _diff_sessions(args: argparse.Namespace) -> int:
    golden, actual = _shown(args.golden), _shown(args.actual)
    stop = _stop(golden, actual)
    from opswald.pairing import step_pairs
    from opswald.sessiondiff import reached_before_the_end

    rows = step_pairs(golden.step_list, actual.step_list)
    reached = reached_before_the_end(rows, actual) if stop is None else None
    found = _session_changes(
        golden, actual, args.mode, limit=args.limit + 1, stop=stop, reached=reached
    )
    deltas = _figures_delta(golden, actual)
    first = next((c for c in found if c["step"] is not None or c["step_b"] is not None), None)
    total = len(golden.step_list)
    first_step = first["step"] if first is not None else None
    first_step_b = first["step_b"] if first is not None else None
    if stop is not None:  # the first difference is the stop, as the headline says
        first_step, first_step_b = stop.golden_step or None, stop.step.step
    over = _budgets_over(golden, actual, stopped=stop is not None or reached is not None)
    ended = actual.error.text() if reached is not None and actual.error is not None else None
    if args.json:
        _print_json(
            {
                "golden": args.golden,
                "actual": args.actual,
                "equal": not found,
                "first_step": first_step,
                "first_step_b": first_step_b,
                "stop": None
                if stop is None
                else {
                    "step_b": stop.step.step,
                    "golden_step": stop.golden_step or None,
                    "reached": stop.reached,
                    "message": stop.message,
                    "text": stop.headline(total),
                },
                "differences": found[: args.limit],
                "more": len(found) > args.limit,
                "deltas": deltas,
                "budgets": over,
                # a run that did not end (its timeout): the last golden step it came to
                "ended": None if ended is None else {"reached": reached, "error": ended},
            }
        )
        return 1 if found or over or ended else 0
    if ended is not None:
        came = (
            f"it came to golden step {reached} of {total}"
            if reached
            else f"it stopped before golden step 1 of {total}"
        )
        _say_wrapped(f"{args.actual} did not end: {ended}; {came}", _width())
    if not found:
        print(
            f"no differences between {args.golden} and {args.actual} "
            "(timestamps and durations aside)"
        )
    else:
        width = _width()
        a_name, b_name = _side_names(args.golden, args.actual)
        header = (
            f"{args.golden} ({counted(total, 'step')}) → "
            f"{args.actual} ({counted(len(actual.step_list), 'step')})"
        )
        print(_clip(header, width))  # the files the user named: one line, cut to fit
        if stop is not None:  # the actual of a replay that stopped: named as pytest named it
            _say_wrapped(f"first difference: {stop.headline(total)}", width)
            _say_wrapped(
                f"the run stopped there: the golden's steps after its step {stop.reached} "
                "were not reached, and the output was not made"
                if stop.reached
                else "the run stopped there: it reached none of the golden's steps, and "
                "the output was not made",
                width,
            )
        elif first is not None and not (ended and first["change"] == "not_reached"):
            _say_wrapped(f"first difference: {_first_text(first, golden, actual, b_name)}", width)
        shown = found[: args.limit]
        legend = f"[- {a_name}] [+ {b_name}]"
        if any(not c["whole_step"] and c["step"] != c["step_b"] for c in shown):
            legend += f"; step N/M: step N of {a_name}, step M of {b_name}"
        _say_wrapped(legend, width)
        for change in shown:
            for line in change["lines"]:
                if change["whole_step"]:  # a step added or removed: its gist, one line
                    print(_clip(line, width))
                else:  # what changed, whole: a cut line may hide the change itself
                    _say_wrapped(line, width)
        if len(found) > args.limit:
            noun = "difference" if args.limit == 1 else "differences"
            print(f"... more than {args.limit} {noun}; raise --limit to see them")
    # the figures of a run that did not end are those of the part it ran: no comparison
    changed = [k for k, d in deltas.items() if d["change"]] if ended is None else []
    if changed:
        _say_wrapped("figures: " + "; ".join(_delta_text(k, deltas[k]) for k in changed), _width())
    for message in over:
        _say_wrapped(message, _width())
    return 1 if found or over or ended else 0


def _budgets_over(golden: Session, actual: Session, *, stopped: bool) -> list[str]:
    """The golden's `expect.budgets` the second session fails, as a replay's verdict says
    them (`budget exceeded: total_tokens 61 > 40`): a saved actual can fail on a budget
    alone, with no other difference."""
    from opswald.expect.budgets import check_budgets, figures

    spec = golden.expectations.budgets
    found = check_budgets(spec, figures(actual), figures(golden), partial=stopped)
    return [f.message for f in found]


def _stop(golden: Session, actual: Session) -> ReplayStop | None:
    """Where the saved actual of a replay stopped (`sessiondiff.ReplayStop`), or None."""
    from opswald.pairing import step_pairs
    from opswald.sessiondiff import replay_stop

    return replay_stop(step_pairs(golden.step_list, actual.step_list), actual)


def _side_names(a: str, b: str) -> tuple[str, str]:
    """The two files as the legend names them: by file name, by path when those agree."""
    a_name, b_name = Path(a).name, Path(b).name
    return (a, b) if a_name == b_name else (a_name, b_name)


def _first_text(change: dict[str, Any], golden: Session, actual: Session, b_name: str) -> str:
    """`step 3 of 6 · llm_call sim-small`: where the first changed step is."""
    g, a = change["step"], change["step_b"]
    if g is None:
        step = actual.step_list[a - 1]
        where = f"step {a} of {len(actual.step_list)} in {b_name}, inserted"
    else:
        step = golden.step_list[g - 1]
        where = f"step {g} of {len(golden.step_list)}"
        if a is None:
            where += ", removed"
        elif a != g:
            where += f" (step {a} in {b_name})"
    return f"{where} · {step.type} {_step_name(step)}".rstrip()


def _session_changes(
    golden: Session,
    actual: Session,
    mode: DiffMode,
    *,
    limit: int,
    stop: ReplayStop | None = None,
    reached: int | None = None,
) -> list[dict[str, Any]]:
    """Every difference between two sessions, in the first one's key order (timestamps,
    durations and how a run was made aside): a field of a step the two have both, a step
    only one has (removed: numbered in the first, inserted: in the second), a field of the
    rest. Steps are lined up as the viewer lines them up (`opswald.pairing`), so one step
    more or fewer moves no later step. Of a run that stopped (`stop`), the differences up
    to the stop, the stop, and the golden's steps after the last one reached as one line:
    not reached, neither removed nor paired with the refused call, and no output. Of a
    run that did not end (its timeout), `reached`: the last golden step it came to."""
    from opswald.diff import differences, render_difference
    from opswald.sessiondiff import compared_data

    g_data, a_data = compared_data(golden), compared_data(actual)
    if stop is not None or reached is not None:  # the output and error it never came to
        for key in ("output", "error"):
            g_data.pop(key, None)
            a_data.pop(key, None)
    out: list[dict[str, Any]] = []
    for key in [*g_data, *(k for k in a_data if k not in g_data)]:
        room = limit - len(out)
        if room <= 0:
            break
        g, a = g_data.get(key, MISSING), a_data.get(key, MISSING)
        if key == "steps" and isinstance(g, list) and isinstance(a, list):
            out.extend(_step_changes(golden, actual, g, a, mode, room, stop, reached))
            continue
        for d in differences(g, a, base=(key,), limit=room):
            lines = render_difference(d, mode)
            out.append(
                {
                    "where": d.where,
                    "step": None,
                    "step_b": None,
                    "change": d.change,
                    "whole_step": False,
                    "lines": lines,
                }
            )
    return out[:limit]


def _step_changes(
    golden: Session,
    actual: Session,
    g_steps: list[Any],
    a_steps: list[Any],
    mode: DiffMode,
    limit: int,
    stop: ReplayStop | None = None,
    reached: int | None = None,
) -> list[dict[str, Any]]:
    from opswald.pairing import step_pairs
    from opswald.sessiondiff import _step_body, request_body, stop_rows

    rows = step_pairs(golden.step_list, actual.step_list)
    refused = 0
    if stop is not None:
        rows = stop_rows(rows, stop, golden)
        refused = stop.step.step
    unreached: list[int] = []
    out: list[dict[str, Any]] = []
    for g, a in rows:
        room = limit - len(out)
        if room <= 0:
            break
        last = stop.reached if stop is not None else reached
        if last is not None and not a and g > last:
            unreached.append(g)  # never run: one line below, not a step removed
            continue
        body_g = _step_body(g_steps[g - 1]) if g else None
        body_a = _step_body(a_steps[a - 1]) if a else None
        if a and a == refused:  # the refused call: what it asked, not the refusal
            body_g, body_a = request_body(body_g), request_body(body_a)
        if g and a:
            out.extend(_field_changes(g, a, body_g, body_a, mode, room))
        else:
            out.append(_whole_step_change(golden, actual, g, a, body_g or body_a, mode))
    if unreached and len(out) < limit:
        out.append(_unreached_change(golden, unreached))
    return out


def _field_changes(
    g: int, a: int, body_g: Any, body_a: Any, mode: DiffMode, limit: int
) -> list[dict[str, Any]]:
    """The differing fields of a step both sides have, labelled `step 3` (`step 3/4`)."""
    from opswald.diff import differences, render_difference
    from opswald.paths import render

    label = f"step {g}" if g == a else f"step {g}/{a}"
    out: list[dict[str, Any]] = []
    for d in differences(body_g, body_a, limit=limit):
        lines = render_difference(d, mode)
        if lines:
            lines[0] = f"{label} › {lines[0]}"
        where = f"{label} › {render(d.path)}" if d.path else label
        out.append(
            {
                "where": where,
                "step": g,
                "step_b": a,
                "change": d.change,
                "whole_step": False,
                "lines": lines,
            }
        )
    return out


def _whole_step_change(
    golden: Session, actual: Session, g: int, a: int, data: Any, mode: DiffMode
) -> dict[str, Any]:
    """A step only one side has: `step 3 removed: ...` (A's number), `inserted` (B's)."""
    from opswald.diff import render_difference, short_repr
    from opswald.verdict import Difference

    step = golden.step_list[g - 1] if g else actual.step_list[a - 1]
    body = {k: v for k, v in data.items() if k != "type"}
    head = f"step {g or a} {'removed' if g else 'inserted'}: {step.type} {_step_name(step)}"
    head = head.rstrip()
    if mode == "short":
        lines = [f"{head} {short_repr(body)}"]
    elif mode == "detailed":
        whole = Difference(path=(), golden=body if g else MISSING, actual=MISSING if g else body)
        lines = [head, *render_difference(whole, "detailed")[1:]]
    else:
        lines = []
    return {
        "where": f"step {g or a}",
        "step": g or None,
        "step_b": a or None,
        "change": "removed" if g else "inserted",
        "whole_step": True,  # a step only one side has, not a field of one
        "lines": lines,
    }


def _unreached_change(golden: Session, numbers: list[int]) -> dict[str, Any]:
    """The golden's steps a stopped run never came to, as one line: `steps 4-6 not
    reached: llm_call m, ...` (the headline already says the run stopped before them)."""
    steps = golden.step_list
    names = "; ".join(f"{steps[n - 1].type} {_step_name(steps[n - 1])}".rstrip() for n in numbers)
    first, last = numbers[0], numbers[-1]
    where = f"step {first}" if first == last else f"steps {first}-{last}"
    if len(numbers) != last - first + 1:
        where = "steps " + ", ".join(str(n) for n in numbers)
    return {
        "where": where,
        "step": first,
        "step_b": None,
        "change": "not_reached",
        "whole_step": True,
        "steps": numbers,
        "lines": [f"{where} not reached: {names}"],
    }


# -- analyze ----------------------------------------------------------------------------


def analyse_errors(session: Session) -> list[Any]:
    """The error analysis of the viewer (opswald.analysis) for each failed step."""
    from opswald.analysis import analyse

    return analyse(session)


def analyze(session: Session, *, slow_ms: float, top: int = 5) -> dict[str, Any]:
    """Latency and cost analysis of one session, as data."""
    from opswald.expect.budgets import figures
    from opswald.report.summary import round_cost

    steps = session.step_list
    fig = figures(session)
    timed = [s for s in steps if s.duration_ms is not None]
    by_type: dict[str, dict[str, float]] = {}
    for s in steps:
        row = by_type.setdefault(s.type, {"count": 0, "duration_ms": 0.0, "cost": 0.0, "timed": 0})
        row["count"] += 1
        row["duration_ms"] += s.duration_ms or 0.0
        row["timed"] += s.duration_ms is not None  # steps that record a time
        row["cost"] += (s.cost or 0.0) if isinstance(s, LLMCallStep) else 0.0
        if isinstance(s, LLMCallStep):  # answered without a cost: the sum is a lower bound
            unpriced = s.cost is None and s.error is None
            row["unpriced_calls"] = row.get("unpriced_calls", 0) + unpriced
    for type_row in by_type.values():
        type_row["cost"] = round_cost(type_row["cost"]) or 0.0  # a sum's float noise off
    by_model: dict[str, dict[str, Any]] = {}
    for s in steps:
        if isinstance(s, LLMCallStep):
            row = by_model.setdefault(
                s.model or "?",
                {
                    "calls": 0,
                    "tokens": 0,
                    "cost": None,
                    "unpriced_calls": 0,
                    "calls_without_usage": 0,
                },
            )
            row["calls"] += 1
            row["tokens"] += s.usage.total() if s.usage else 0
            answered = s.error is None or cut_short(s) is not None
            row["calls_without_usage"] += answered and s.usage is None
            if s.cost is not None or s.error is not None:  # a failed call without one: $0
                row["cost"] = (row["cost"] or 0.0) + (s.cost or 0.0)
            else:  # answered without a cost: unknown, not $0
                row["unpriced_calls"] += 1
    for model_row in by_model.values():
        model_row["cost"] = round_cost(model_row["cost"])
    busy = sum(s.duration_ms or 0.0 for s in steps)
    return {
        "name": session.name,
        "steps": fig.steps,
        "llm_calls": fig.llm_calls,
        "tool_calls": fig.tool_calls,
        "total_tokens": fig.total_tokens,
        "cost": round_cost(fig.cost),
        "unpriced_calls": fig.unpriced_calls,
        "calls_without_usage": fig.calls_without_usage,  # total_tokens leaves them out
        "duration_ms": fig.duration_ms,
        "duration_recorded": fig.duration_recorded,  # False: duration_ms is no measured 0
        "slow_ms": slow_ms,
        "slow_steps": [_row(s) for s in timed if (s.duration_ms or 0) > slow_ms],
        "slowest_steps": [
            _row(s) for s in sorted(timed, key=lambda s: -(s.duration_ms or 0))[:top]
        ],
        "costly_steps": [
            _row(s)
            for s in sorted(
                (s for s in steps if isinstance(s, LLMCallStep) and s.cost),
                key=lambda s: -(s.cost or 0),
            )[:top]
        ],
        "by_type": by_type,
        "by_model": by_model,
        "time_in_steps_ms": busy,
        "errors": [_row(s) for s in steps if s.error is not None],
        "error_analysis": [
            {"step": a.step, "title": a.title, "error": a.error, "fix": a.fix}
            for a in analyse_errors(session)
        ],
    }


def cmd_analyze(args: argparse.Namespace) -> int:
    from opswald.cli import Progress, _iter_goldens

    paths = _iter_goldens(args.goldens)
    if not paths:
        raise CliError("no golden files found")
    progress = Progress(len(paths), "analyzing")
    results = []
    stubs: list[Path] = []
    bad: list[tuple[Path, str]] = []
    for path in paths:
        progress.tick()
        try:
            session = _shown(str(path))
        except CliError as exc:  # said, as validate says it; the rest is still analysed
            bad.append((path, str(exc)))
            continue
        if session.is_stub:
            stubs.append(path)
        else:
            results.append((path, analyze(session, slow_ms=args.slow_ms)))
    progress.done()
    status = 1 if bad else 0
    if args.json:
        _print_json(
            [{"file": str(p), "error": e} for p, e in bad]
            + [{"file": str(p), **a} for p, a in results]
        )
        return status
    width = _width()
    for path, error in bad:
        text = error if str(path) in error else f"{path}: {error}"
        for line in text.splitlines():  # whole, as validate prints it: the file:line to fix
            print(f"error: {line}")
    for path in stubs:  # nothing recorded to analyze, but said, not passed over in silence
        print(_clip(f"{path}: a stub, not recorded yet: nothing to analyze", width))
    for path, a in results:
        print(
            _clip(
                f"{a['name'] or path}: {counted(a['steps'], 'step')}, "
                f"{_token_count(a['total_tokens'], a['calls_without_usage'])}, "
                f"{_money(a['cost'], a['unpriced_calls'])}, "
                f"{_duration(a['duration_ms'], a['duration_recorded'])}",
                width,
            )
        )
        if a["slow_steps"]:
            n = len(a["slow_steps"])
            print(f"  latency: {n} step{'s' if n != 1 else ''} slower than {_ms(args.slow_ms)}")
            for r in a["slow_steps"]:
                print(
                    _clip(
                        f"    step {r['step']} {r['type']} {r['name']} {_ms(r['duration_ms'])}",
                        width,
                    )
                )
        else:
            slowest = a["slowest_steps"][:1]
            if slowest:
                r = slowest[0]
                print(
                    _clip(
                        f"  latency: no step over {_ms(args.slow_ms)}; slowest is step "
                        f"{r['step']} {r['type']} {r['name']} {_ms(r['duration_ms'])}",
                        width,
                    )
                )
        for kind, row in sorted(a["by_type"].items()):
            share = row["duration_ms"] / a["time_in_steps_ms"] * 100 if a["time_in_steps_ms"] else 0
            n = int(row["count"])
            print(
                _clip(
                    f"    {kind:<10} {n:>4} {'step, ' if n == 1 else 'steps,'} "
                    + (
                        f"{_ms(row['duration_ms']):>10} in all ({share:.0f}% of step time)"
                        if row["timed"]
                        else f"{'-':>10} (no time recorded)"
                    ),
                    width,
                )
            )
        if a["costly_steps"]:
            print("  cost: most expensive steps")
            for r in a["costly_steps"]:
                # a share of the priced part only would overstate it
                whole = a["cost"] if not a["unpriced_calls"] else None
                share = f" ({r['cost'] / whole * 100:.0f}%)" if whole else ""
                print(
                    _clip(
                        f"    step {r['step']} {r['type']} {r['name']} {_money(r['cost'])}{share}",
                        width,
                    )
                )
            for model, row in sorted(a["by_model"].items()):
                print(
                    _clip(
                        f"    {model}: {row['calls']} call{'s' if row['calls'] != 1 else ''}, "
                        f"{_token_count(row['tokens'], row['calls_without_usage'])}, "
                        f"{_money(row['cost'], row['unpriced_calls'])}",
                        width,
                    )
                )
        for e in a["error_analysis"]:
            print(_clip(f"  {e['title']}: {e['error']}", width))
            for line in textwrap.wrap(f"fix: {e['fix']}", width - 4):
                print(f"    {line}")
    return status


# -- upgrade ----------------------------------------------------------------------------


def cmd_upgrade(args: argparse.Namespace) -> int:
    from opswald.cli import _iter_goldens
    from opswald.files import GoldenLoadError, dump, load, load_data
    from opswald.session import SCHEMA_VERSION, is_newer_schema
    from opswald.upgrade import UpgradeError, upgrade_data

    paths = _iter_goldens(args.paths)
    if not paths:
        raise CliError("no golden files found")
    changed = failed = 0
    for path in paths:
        migrated: list[int]
        try:
            data = load_data(path)
            version = data.get("schema_version", SCHEMA_VERSION) if isinstance(data, dict) else 0
            if version == SCHEMA_VERSION or is_newer_schema(version):
                # nothing to migrate: loaded as validate loads it, errors at the file's line
                session, migrated = load(path), []
            else:
                session, migrated = upgrade_data(data)
        except (GoldenLoadError, OSError, UpgradeError) as exc:
            failed += 1
            print(f"error: {path}: {exc}" if str(path) not in str(exc) else f"error: {exc}")
            continue
        if not migrated:
            print(f"up to date: {path}")
            continue
        changed += 1
        if args.check:
            print(f"needs upgrade: {path} (schema {migrated[0]} → {SCHEMA_VERSION})")
        else:
            dump(session, path)
            print(f"upgraded: {path} (schema {migrated[0]} → {SCHEMA_VERSION})")
    print(
        f"{changed} {'to upgrade' if args.check else 'upgraded'}, {failed} failed, "
        f"{len(paths) - changed - failed} up to date"
    )
    return 1 if failed or (args.check and changed) else 0


# -- golden note ------------------------------------------------------------------------


def cmd_golden_note(args: argparse.Namespace) -> int:
    from opswald.comments import dropped_note
    from opswald.files import dump
    from opswald.projectconfig import project_redactor
    from opswald.session import Note

    session = _load(args.golden)
    total = len(session.step_list)
    if args.step is not None and not 1 <= args.step <= total:
        raise CliError(f"--step {args.step}: the golden has steps 1..{total}")
    text = " ".join(args.text).strip()
    if not text:
        raise CliError("the note is empty")
    session.notes = [*session.notes, Note(text=text, step=args.step)]
    # written as a recording or an update writes it: with the project's secrets replaced,
    # in the note too
    redactor = project_redactor([args.golden])
    dropped = dump(session, args.golden, keep_comments=True, redactor=redactor)
    where = f"step {args.step} of {total}" if args.step is not None else "the session"
    print(f"noted at {where} in {args.golden}")
    if redactor.text(text) != text:
        print("note: secrets in the note were replaced, as everything opswald writes")
    if dropped:
        print(f"note: {dropped_note(dropped, args.golden)}")
    return 0


EXAMPLES = {
    "show": "examples:\n  opswald show goldens/refund.golden.yaml --type llm,tool --steps 2-8\n"
    "  opswald show goldens/refund.golden.yaml --step 4        # the full step and its state",
    "diff": "examples:\n  opswald diff goldens/refund.golden.yaml actual/refund.actual.yaml\n"
    "  opswald diff goldens/refund.golden.yaml --steps 3 5     # state change between steps",
    "analyze": "example:\n  opswald analyze goldens/ --slow-ms 2000\n"
    "per step type, a line such as `llm_call  3 steps,  12,500 ms in all (100% of step\n"
    "time)`: three model calls that took 12,500 ms together",
    "upgrade": "example:\n  opswald upgrade goldens/          # or --check in CI",
    "note": "example:\n"
    '  opswald golden note goldens/refund.golden.yaml --step 4 "refund policy v2"',
}


def _help(sub: Any, name: str, help_text: str, example: str) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = sub.add_parser(
        name,
        help=help_text,
        description=help_text,
        epilog=example,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    return parser


def add_parsers(sub: Any) -> None:
    from opswald.cli import _DEFAULT_PATHS_HELP

    show = _help(sub, "show", "print a golden's steps as a table", EXAMPLES["show"])
    show.add_argument("golden")
    show.add_argument("--step", type=int, metavar="N", help="one step in full, with its state")
    show.add_argument("--type", metavar="TYPES", help="only these types: llm,tool,user,state")
    show.add_argument("--steps", metavar="RANGE", help="only steps in a range: 5-12")
    show.add_argument("--json", action="store_true", help="machine-readable output")
    show.set_defaults(func=cmd_show, inputs=("golden",))

    diff = _help(sub, "diff", "compare two sessions, or the state at two steps", EXAMPLES["diff"])
    diff.add_argument("golden")
    diff.add_argument("actual", nargs="?", default=None)
    diff.add_argument(
        "--steps",
        type=int,
        nargs=2,
        metavar=("A", "B"),
        help="the state at step A against the state at step B of GOLDEN (0: the start)",
    )
    diff.add_argument(
        "--mode",
        choices=("detailed", "short"),
        default="detailed",
        help="detailed (default): each difference with its - and + lines; short: one line "
        "each (as --opswald-diff-mode)",
    )
    diff.add_argument(
        "--limit", type=positive_int, default=50, help="differences shown (default 50)"
    )
    diff.add_argument("--json", action="store_true", help="machine-readable output")
    diff.set_defaults(func=cmd_diff, inputs=("golden", "actual"))

    analyze_p = _help(sub, "analyze", "latency and cost analysis of goldens", EXAMPLES["analyze"])
    analyze_p.add_argument("goldens", nargs="*", help=_DEFAULT_PATHS_HELP)
    analyze_p.add_argument(
        "--slow-ms",
        type=milliseconds_arg,
        default=5000.0,
        metavar="MS",
        help="steps slower than this are listed (default 5,000)",
    )
    analyze_p.add_argument("--json", action="store_true", help="machine-readable output")
    analyze_p.set_defaults(func=cmd_analyze, inputs=("goldens",))

    upgrade = _help(
        sub, "upgrade", "migrate goldens of older schema versions in place", EXAMPLES["upgrade"]
    )
    upgrade.add_argument("paths", nargs="*", help=_DEFAULT_PATHS_HELP)
    upgrade.add_argument("--check", action="store_true", help="only report; exit 1 if needed")
    upgrade.set_defaults(func=cmd_upgrade, inputs=("paths",))


def add_note_parser(golden_sub: Any) -> None:
    note = _help(
        golden_sub,
        "note",
        "add a note to a golden (shown by show and the viewer)",
        EXAMPLES["note"],
    )
    note.add_argument("golden")
    note.add_argument("text", nargs="+")
    note.add_argument("--step", type=int, metavar="N", help="the step it is about")
    note.set_defaults(func=cmd_golden_note, inputs=("golden",))


def run(func: Any, args: argparse.Namespace) -> int:
    """Run a command, turning CliError into `error: ...` on stderr and its status, and a
    file the command could not read or write (an output path in a missing or read-only
    folder, a directory given as a file) into one line, status 4."""
    from opswald.files import GoldenWriteRefused

    try:
        return int(func(args))
    except CliError as exc:
        for line in str(exc).splitlines():  # a golden's problems: an error line each
            print(f"error: {line}", file=sys.stderr)
        return exc.status
    except GoldenWriteRefused as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except BrokenPipeError:
        raise  # the reader went away (`| head`): cli.main ends quietly
    except OSError as exc:
        where = f"{exc.filename}: " if exc.filename is not None else ""
        print(f"error: {where}{exc.strerror or exc}", file=sys.stderr)
        return 4
