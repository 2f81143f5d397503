"""The replay viewer: one self-contained HTML page to step through sessions.

`build_data` turns goldens (and the actual sessions of a run) into plain JSON-able data: every
step with its category, name, duration, cost and tokens, the state references and the
`+`/`-`/`~` state changes of each step (DESIGN §3a, the same lines as
`opswald.engine.state.state_changes`), notes at their steps, findings, the first
divergence, the steps where golden and actual differ, error analyses, totals and deltas.
`render` puts that data into the page: the template, the inline stylesheet and script of
`opswald/report/viewer/` (hand-written, no build step), and the data as JSON in a
`<script type="application/json">` block with `<`, `>`, `&`, U+2028 and U+2029 escaped, so
session content can never close the block. A Content-Security-Policy allows exactly the
inline script and stylesheet by their SHA-256 hashes and nothing else: no network, no other
script. The page shows every piece of session content as text (`textContent`).

The data, per golden (`data["goldens"][i]`):

- `id` (URL-safe, unique: the hash is `#golden=<id>&step=<n>`), `name`, `file`, `status`,
  `description`, `tags`, `rows` (with an actual: the compare view's rows, `[golden step,
  actual step]`, 0 where a side has none, `step_rows`; null: one row per golden step),
  `start` (the row selected first), `divergence` (its row), `diff_steps` (rows where the
  two differ), `step_diffs` (`{row: [diff lines]}`, the last `… and N more differences`
  past the 20 shown), `findings` (`run_step`: the step is
  the run's number; each of their `differences` has a `path`, keys as strings and list
  indexes as numbers, and a `change`: `changed`, `added`, `inserted` or `removed`),
  `analyses`, `figures`, `record`;
- `golden` and `actual` (or null): a session view with `steps` (one row per step: `n`, `type`,
  `cat` user/llm/tool/state/error, `name`, `ms`, `cost`, `tok`, `ts`, `slow`, `err`, `desc`,
  `notes`, `data` (the step as written in a golden, `raw` left out), `st` = [snapshot step,
  last-output step, tool outputs so far], `chg` = the state change lines, and `lane` on a
  step that has one: the thread or task that made the call), `lanes` (how many lanes the
  session has, 0 without), and the parts the state is assembled from: `snapshots`,
  `outputs`, `tool_outputs`.

`data["ignorable"]`: the code point ranges of `opswald.hidden`, whose characters the page
shows as escapes (with that module's exceptions).
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import math
import re
import unicodedata
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import MISSING as NO_DEFAULT
from dataclasses import dataclass, field, fields, replace
from importlib import resources
from pathlib import Path
from typing import Any

from opswald import jsontext
from opswald.analysis import BLOCKED_SIDE_EFFECT, Analysis, analyse
from opswald.diff import differences, headline, render_difference, short_repr
from opswald.engine.state import SNAPSHOT_PARTS
from opswald.expect.budgets import Figures, check_budgets, figures, no_cost_reason
from opswald.expect.state import compare_states
from opswald.files import to_data, write_output_text
from opswald.hidden import IGNORABLE
from opswald.jsonable import to_jsonable
from opswald.pairing import step_pairs
from opswald.redact import DEFAULT_REDACTOR, Redactor, make_redactor, redact_session
from opswald.report.summary import MS_DECIMALS, round_cost, total_cost
from opswald.session import (
    FORK_METADATA,
    STEP_FIELDS,
    VARIANT_METADATA,
    AnyStep,
    LLMCallStep,
    Session,
    StateStep,
    ToolCallStep,
    placed_notes,
)
from opswald.sessiondiff import (
    _step_body,
    compared_data,
    ended_early,
    reached_before_the_end,
    replay_stop,
    request_body,
    session_differences,
    stop_rows,
)
from opswald.terminal import escaped
from opswald.verdict import MISSING, Difference, Finding, FindingKind

__all__ = ["ViewEntry", "build_data", "finding_data", "render", "write_report"]

FORMAT = 1
MAX_DIFFERENCES = 20  # differences of one finding kept (and rendered) for the page
MAX_VALUE_CHARS = 2000  # a difference's values travel along when their JSON is this short
MAX_STEP_DIFFS = 50  # steps of golden vs actual whose field diff is kept
MAX_COUNTED = 200  # differences counted in one step whose diff the page keeps
TOP = 5  # slowest and costliest steps listed per session
MAX_CHANGE_LINES = 200  # state change lines of one step (the same cap as state_changes)


@dataclass(frozen=True)
class ViewEntry:
    """One golden on the page, with the actual session of its run when there is one."""

    golden: Session
    actual: Session | None = None
    status: str = "loaded"  # passed | failed | updated | recorded | error | skipped | loaded
    name: str | None = None  # display name / test id; default: golden.name or the file stem
    file: str | None = None  # the golden's path as shown
    findings: list[dict[str, Any]] = field(default_factory=list)  # from finding_data()
    record: dict[str, Any] | None = None  # the JSON report's record of this golden's run
    # the golden step each served call of `actual` answered as, by its step number
    # (`ReplayResult.matched`); None for a saved actual, whose steps pair in order
    matched: Mapping[int, int] | None = None


# --- findings ----------------------------------------------------------------------------


def finding_data(finding: Finding, *, total_steps: int | None) -> dict[str, Any]:
    """JSON-safe form of a Finding: computed in pytest-xdist workers and sent to the
    controller, so plain data only (the diff already rendered, short values kept for the
    error analysis)."""
    shown = finding.differences[:MAX_DIFFERENCES]
    return {
        "kind": finding.kind,
        "message": finding.message,
        "step": finding.step,
        "step_type": finding.step_type,
        "name": finding.name,
        "failing": finding.failing,
        "suggestion": finding.suggestion,
        "headline": headline(finding, total_steps=total_steps),
        "diff": [line for d in shown for line in render_difference(d)],
        "differences": [_difference_data(d) for d in shown],
        "more_differences": len(finding.differences) - len(shown),
        "more_uncounted": finding.differences_cut,  # "at least N more": counting stopped
        # the step is the run's number (a call or snapshot the golden does not have)
        "run_step": finding.run_step or finding.kind == "extra_call",
    }


def failure_finding(record: dict[str, Any]) -> dict[str, Any]:
    """A failure without a verdict (a golden's report record: not recorded yet, a
    malformed file, ...), in the shape of `finding_data`."""
    divergence = record.get("divergence") or {}
    return {
        "kind": divergence.get("kind") or "error",
        "message": record["error"] or "",
        "step": divergence.get("step"),
        "step_type": divergence.get("type"),
        "name": divergence.get("name"),
        "failing": True,
        "suggestion": record["suggestion"],
        "headline": (record["error"] or "").split("\n")[0],  # a malformed golden's first
        "diff": [],
        "differences": [],
        "more_differences": 0,
        "more_uncounted": False,
    }


def _difference_data(d: Difference) -> dict[str, Any]:
    # a list index stays a number: as a string it could not be told from a key named "1"
    out: dict[str, Any] = {"where": d.where, "step": d.step, "path": list(d.path)}
    for side in ("golden", "actual"):
        value = getattr(d, side)
        if value is MISSING:
            continue
        plain = to_jsonable(value)
        if len(json.dumps(plain, ensure_ascii=False, default=str)) <= MAX_VALUE_CHARS:
            out[side] = plain
    # a side left out may be missing or too long: the change says which (`inserted`: the
    # path holds the element's index in the actual list, `removed` in the golden's)
    out["change"] = d.change
    if d.cause:  # not the agent's doing: the modification that made it, say
        out["cause"] = d.cause
    return out


def step_rows(
    golden: Session, actual: Session, matched: Mapping[int, int] | None = None
) -> list[tuple[int, int]]:
    """The rows of the compare view: (golden step, actual step), 0 where a side has none.

    A call the replay served sits beside the golden step it answered as (`matched`, from
    the run: `ReplayResult.matched`); the steps between such calls line up as
    `opswald.pairing` says: snapshots (never matched) by what they hold, keeping order, a
    snapshot only with a snapshot, so one snapshot more or fewer moves no other step.
    Without `matched` (a saved actual) the whole sessions line up that way. The call a
    replay refused sits beside the golden step it faced, or alone (`stop_rows`)."""
    rows = step_pairs(golden.step_list, actual.step_list, matched)
    stop = replay_stop(rows, actual)
    return stop_rows(rows, stop, golden) if stop is not None else rows


def _positions(rows: Sequence[tuple[int, int]]) -> tuple[dict[int, int], dict[int, int]]:
    """Each golden step's and each actual step's row (1-based)."""
    g_at = {g: at for at, (g, _) in enumerate(rows, start=1) if g}
    a_at = {a: at for at, (_, a) in enumerate(rows, start=1) if a}
    return g_at, a_at


def findings_from_diff(
    golden: Session, actual: Session, matched: Mapping[int, int] | None = None
) -> list[dict[str, Any]]:
    """Findings for a saved actual without a verdict: the golden-vs-actual differences
    (timestamps, durations and how the run was made aside), one finding per differing
    call (its steps paired as the compare view pairs them, `step_rows`), the state
    snapshots as the verdict compares them (`expect.state`: reported, failing only when
    the golden asks), then the rest."""
    g_data, a_data = compared_data(golden), compared_data(actual)
    g_steps, a_steps = g_data.pop("steps", None) or [], a_data.pop("steps", None) or []
    steps = golden.step_list
    total = len(steps)
    hint = accept_hint(actual)
    rows = step_rows(golden, actual, matched)
    # a replay that stopped (`error: ReplayDivergence` on its last call) never ran the
    # golden's later steps nor made its output: the stop is the finding, not those
    stop = replay_stop(rows, actual)
    unreached = stop.reached if stop is not None else total
    # so did a fork or live run stopped at a side-effect tool it refused to run live
    blocked = _blocked_stop(actual)
    if blocked is not None and stop is None:
        unreached = max((g for g, a in rows if g and a and a <= blocked.step), default=0)
    # and a run that did not end (its timeout, its process dying): the golden's steps after
    # those it finished were not reached, the stop is the finding, and no update is offered
    # (it would not be written: what the run did is not whole)
    early = reached_before_the_end(rows, actual) if stop is None and blocked is None else None
    if early is not None:
        unreached = early
        hint = (
            "the run did not end, so no update can write it: see the stop below (what the "
            "agent did when it was stopped)"
        )
    placed: list[tuple[int, Finding]] = []
    for at, (g, a) in enumerate(rows, start=1):
        recorded = steps[g - 1] if g else None
        made = actual.step_list[a - 1] if a else None
        if not a and g > unreached:
            continue
        if made is not None and made is blocked:
            placed.append((at, _blocked_finding(made)))
            continue
        if isinstance(recorded, StateStep) or isinstance(made, StateStep):
            continue  # snapshots: compared below, as the verdict compares them
        stopped = stop is not None and made is not None and made.step == stop.step.step
        body_g = _step_body(g_steps[g - 1]) if g else MISSING
        body_a = _step_body(a_steps[a - 1]) if a else MISSING
        if stopped:  # the refused call: what it asked, not the refusal's error and output
            body_g, body_a = request_body(body_g), request_body(body_a)
        diffs = differences(body_g, body_a, step=g or a)
        if not diffs:
            continue
        if stop is not None and stop.named:
            # the stop kept the golden step pytest named: the finding is there, with the
            # stop's message, whatever the refused call pairs with (a skipped tool call:
            # the model call after it); the refused call is no finding of its own
            stopped = g == stop.golden_step if stop.golden_step else stopped
            if made is not None and made.step == stop.step.step and not stopped:
                continue
            if stopped and not stop.golden_step:
                recorded = None  # a call the golden does not have, as pytest said
        if recorded is not None:
            f = Finding(
                kind="mismatch",
                message=stop.message
                if stop is not None and stopped
                else "the actual session differs from the golden here"
                if made is not None
                else "the actual session has no step here",
                step=g,
                step_type=recorded.type,
                name=_step_name(recorded),
                differences=tuple(diffs),
                suggestion=hint,
            )
        else:
            assert made is not None
            f = Finding(
                kind="extra_call",
                message=stop.message
                if stop is not None and stopped
                else "the actual session has a step the golden does not have",
                step=a,
                step_type=made.type,
                name=_step_name(made),
                differences=tuple(diffs),
                suggestion=hint,
            )
        placed.append((at, f))
    g_at, a_at = _positions(rows)
    for f in compare_states(golden, actual, golden.expectations.state, matched):
        if not f.run_step and (f.step or 0) > unreached:
            continue
        if f.suggestion.startswith(_STATE_ACCEPT) and hint != DEFAULT_ACCEPT:
            f = replace(f, suggestion=f"{hint}{f.suggestion.removeprefix(_STATE_ACCEPT)}")
        placed.append(((a_at if f.run_step else g_at).get(f.step or 0, 0), f))
    if early is not None and actual.error is not None:
        reached = min(unreached + 1, total) if total else None
        timed_out = actual.error.type == "Timeout"
        placed.append(
            (
                g_at.get(reached or 0, len(rows) + 1),
                Finding(
                    kind="timeout" if timed_out else "error",
                    message=actual.error.message,
                    step=reached,
                    step_type=steps[reached - 1].type if reached else None,
                    name=_step_name(steps[reached - 1]) if reached else None,
                    suggestion=(
                        "the agent was stopped (its process killed) before it finished; raise "
                        "the golden's `timeout:` or --opswald-timeout if it needs longer"
                        if timed_out
                        else "the agent's process died before it finished: see its stderr"
                    ),
                ),
            )
        )
    out = [finding_data(f, total_steps=total) for _, f in sorted(placed, key=lambda p: p[0])]
    if stop is not None or blocked is not None or early is not None:  # never came to these
        for key in ("output", "error"):
            g_data.pop(key, None)
            a_data.pop(key, None)
    rest = session_differences(g_data, a_data)
    for key in dict.fromkeys(_top(d) for d in rest):
        kind: FindingKind = (
            "output" if key == "output" else "error" if key == "error" else "mismatch"
        )
        allowed = key == "output" and _output_allowed(golden, actual)
        f = Finding(
            kind=kind,
            message=f"{key} differs"
            + (
                f" (as expect.output allows: {golden.expectations.output.match})" if allowed else ""
            ),
            differences=tuple(d for d in rest if _top(d) == key),
            suggestion="" if allowed else hint,
            failing=not allowed,
        )
        out.append(finding_data(f, total_steps=total))
    # the golden's budgets, as the run's verdict judged them: an actual saved because it
    # went over one need differ in nothing else (a run stopped short: what it exceeded)
    from opswald.engine.context import UPDATE

    for f in check_budgets(
        golden.expectations.budgets,
        figures(actual),
        figures(golden),
        partial=stop is not None or blocked is not None or early is not None,
        update=UPDATE["cli"],
    ):
        out.append(finding_data(f, total_steps=total))
    return out


def _output_allowed(golden: Session, actual: Session) -> bool:
    """Whether the golden's `expect.output` takes the actual's output as it is (`ignore`,
    `contains`, `json_subset`, ...; the tolerant matches, which need an embedder or a
    judge, are not judged here: their difference stays failing)."""
    from opswald.expect.output import compare_output

    spec = golden.expectations.output
    if spec.match in ("similar", "embedding", "judge"):
        return False
    return compare_output(golden.output, actual.output, spec) is None


DEFAULT_ACCEPT = "if the new behaviour is intended, accept it with --opswald-update"
_STATE_ACCEPT = "if the new state is intended, accept it with --opswald-update"


def accept_hint(actual: Session) -> str:
    """How to make a saved actual's behaviour the golden, as pytest said it for that run: a
    variant by an update with that variant alone, a fork never (it is judged, never
    written), a run with modifications by an update with the same ones."""
    fork = _fork_of(actual)
    variant = actual.metadata.get(VARIANT_METADATA)
    mods = actual.metadata.get("modifications")
    listing = ",".join(f"{k}={v}" for k, v in mods.items()) if isinstance(mods, dict) else ""
    if fork is not None and fork.get("modifications"):  # a step's answer rewritten
        return (
            "a fork is judged, never written: to make this path the golden, change the "
            "agent and run --opswald-update (without a fork)"
        )
    if isinstance(variant, str) and listing:
        return (
            f"this run was the variant {variant}: if the new behaviour is intended, accept "
            f"it with --opswald-update --opswald-variant {variant}:{listing} alone"
        )
    if fork is not None and listing:
        return (
            "a fork is judged, never written: if the new behaviour is intended, accept it "
            f"with --opswald-update and the same --opswald-modify ({listing}), without "
            "--opswald-fork-at"
        )
    if fork is not None:
        return (
            "a fork is judged, never written: to make this path the golden, change the "
            "agent and run --opswald-update (without a fork)"
        )
    if listing:
        return f"{DEFAULT_ACCEPT} and the same --opswald-modify ({listing})"
    return DEFAULT_ACCEPT


def _blocked_stop(actual: Session) -> AnyStep | None:
    """The side-effect call a fork or live run refused to run live, when the run ended
    there (the agent did not go on past the refusal)."""
    steps = actual.step_list
    last = steps[-1] if steps else None
    if last is None or last.error is None or last.error.type != BLOCKED_SIDE_EFFECT:
        return None
    return last


def _blocked_finding(step: AnyStep) -> Finding:
    """The refused side-effect call, as pytest said it (numbered in the run)."""
    from opswald.engine.context import ALLOW_SIDE_EFFECTS

    assert step.error is not None
    return Finding(
        kind="side_effect",
        message=step.error.message,
        step=step.step,
        step_type=step.type,
        name=_step_name(step),
        suggestion=f"{ALLOW_SIDE_EFFECTS['pytest']} to let it run",
        run_step=True,
    )


def _top(d: Difference) -> str:
    return str(d.path[0]) if d.path else "value"


def _step_name(step: AnyStep) -> str | None:
    if isinstance(step, ToolCallStep):
        return step.tool
    if isinstance(step, LLMCallStep):
        return step.model
    return None


# --- sessions ---------------------------------------------------------------------------


def _category(step: AnyStep) -> str:
    if step.error is not None:
        return "error"
    return {"user_input": "user", "llm_call": "llm", "tool_call": "tool"}.get(step.type, "state")


def _tokens(step: AnyStep) -> int | None:
    if isinstance(step, LLMCallStep) and step.usage is not None:
        return step.usage.total()
    return None


def _error_text(step: AnyStep) -> str | None:
    if step.error is None:
        return None
    e = step.error
    return e.text()


def _figures_data(f: Figures) -> dict[str, Any]:
    data = {x.name: _finite(getattr(f, x.name)) for x in fields(f)}
    data["cost"] = round_cost(data["cost"])  # a sum: no float noise (0.0010990000000000002)
    return data


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _deltas(actual: Figures, golden: Figures) -> dict[str, Any]:
    """Actual minus golden, absolute and in percent of the golden's figure."""
    out: dict[str, Any] = {}
    for key in ("cost", "total_tokens", "duration_ms", "steps", "llm_calls", "tool_calls"):
        now, before = _finite(getattr(actual, key)), _finite(getattr(golden, key))
        if key == "cost" and (actual.unpriced_calls or golden.unpriced_calls):
            now = None  # the priced part of one of them only: no change to show
        if now is None or before is None:
            out[key] = None
            continue
        out[key] = {
            "change": round(now - before, 10),
            "percent": round((now - before) / before * 100, 1) if before else None,
        }
    return out


def _state_parts(step: StateStep) -> dict[str, Any]:
    """What a snapshot contributes to the state (State.flat() without tool outputs)."""
    extras = {k: v for k, v in (step.model_extra or {}).items() if k not in STEP_FIELDS}
    return {"memory": step.memory, "variables": step.variables, "context": step.context, **extras}


_EMPTY_PARTS: dict[str, Any] = {"memory": None, "variables": None, "context": None}
_TOOLS = object()  # where `tool_outputs` sits in a flat state (handled by count)


def _flat(parts: dict[str, Any], last: Any) -> dict[str, Any]:
    """The key order of `State.flat()`, with the tool outputs as a marker."""
    return {**parts, "tool_outputs": _TOOLS, "last_output": last}


def _changes(
    before: dict[str, Any],
    after: dict[str, Any],
    tools_before: int,
    tool_outputs: Sequence[dict[str, Any]],
) -> list[str]:
    """`state_changes` lines from one step to the next, in linear time: tool outputs only
    grow, so only the new ones are compared (`tests/test_viewer_data.py` checks these lines
    against `state_changes` step by step)."""
    out: list[Difference] = []
    for key in [*before, *(k for k in after if k not in before)]:
        room = MAX_CHANGE_LINES - len(out)
        if room <= 0:
            break
        g, a = before.get(key, MISSING), after.get(key, MISSING)
        if key in SNAPSHOT_PARTS:  # a part no snapshot has given yet is absent (state_diff)
            g = MISSING if g is None else g
            a = MISSING if a is None else a
        if g is _TOOLS and a is _TOOLS:
            out.extend(
                Difference(path=("tool_outputs", i), golden=MISSING, actual=tool_outputs[i])
                for i in range(tools_before, min(len(tool_outputs), tools_before + room))
            )
        elif g is not a:
            out.extend(differences(g, a, base=(key,), limit=room))
    return [_change_line(d) for d in out[:MAX_CHANGE_LINES]]


def _change_line(d: Difference) -> str:
    """The `+`/`-`/`~` line of `state_changes` for one difference."""
    if d.actual is not MISSING and d.golden is MISSING:
        return f"+ {d.where} = {short_repr(d.actual)}"
    if d.actual is MISSING:
        return f"- {d.where}"
    return f"~ {d.where}: {short_repr(d.golden)} → {short_repr(d.actual)}"


def _state_rows(steps: Sequence[AnyStep]) -> Iterator[tuple[list[int], list[str]]]:
    """Per step: [snapshot step, last-output step, tool outputs so far] and its change lines,
    walking the session once (state_at semantics, DESIGN §3a)."""
    parts, last, snap, last_step = dict(_EMPTY_PARTS), None, 0, 0
    tool_outputs: list[dict[str, Any]] = []
    before = _flat(parts, last)
    for step in steps:
        tools_before = len(tool_outputs)
        if isinstance(step, StateStep):
            parts, snap = _state_parts(step), step.step
        elif isinstance(step, ToolCallStep):
            tool_outputs.append(_tool_entry(step))
        elif isinstance(step, LLMCallStep) and step.output is not None:
            last, last_step = step.output.model_dump(exclude_none=True), step.step
        after = _flat(parts, last)
        yield (
            [snap, last_step, len(tool_outputs)],
            _changes(before, after, tools_before, tool_outputs),
        )
        before = after


def _tool_entry(step: ToolCallStep) -> dict[str, Any]:
    """A tool output as the state holds it (`state_at`)."""
    return {
        "step": step.step,
        "tool": step.tool,
        "output": step.output if step.error is None else None,
        **({"error": step.error.model_dump(exclude_none=True)} if step.error else {}),
    }


def session_view(session: Session, *, slow_ms: float) -> dict[str, Any]:
    """Everything the page shows of one session."""
    steps = session.step_list
    plain = to_data(session)
    plain_steps = plain.get("steps") or []
    notes, loose = placed_notes(session)
    recorded = session.recorded_by_opswald  # else written by hand or imported
    rows = []
    for step, data, (refs, changes) in zip(steps, plain_steps, _state_rows(steps), strict=True):
        if "raw" in data:
            raw = json.dumps(data.pop("raw"), ensure_ascii=False, default=str)
            data["raw"] = f"<raw wire body: {len(raw):,} characters, not shown>"
        ms = _finite(step.duration_ms)
        rows.append(
            {
                "n": step.step,
                "type": step.type,
                "cat": _category(step),
                "name": _step_name(step),
                "ms": ms,
                "cost": _finite(getattr(step, "cost", None)),
                # a model call that answered without a cost: not $0, unknown (as in
                # totals); why, as the page says it (`cost unknown (no usage reported)`)
                "unpriced": (
                    no_cost_reason(step, recorded=recorded)
                    if isinstance(step, LLMCallStep)
                    else None
                ),
                "tok": _tokens(step),
                "ts": step.timestamp,
                "slow": ms is not None and ms > slow_ms,
                "err": _error_text(step),
                "desc": step.description,
                "notes": notes.get(step.step, []),
                "data": data,
                "st": refs,
                "chg": changes,
            }
        )
        if step.lane is not None:  # a session whose calls came from more than one
            rows[-1]["lane"] = step.lane
    snapshots = {str(s.step): _state_parts(s) for s in steps if isinstance(s, StateStep)}
    outputs = {
        str(s.step): s.output.model_dump(exclude_none=True)
        for s in steps
        if isinstance(s, LLMCallStep) and s.output is not None
    }
    durations = [r["ms"] for r in rows if r["ms"] is not None]
    costs = [r["cost"] for r in rows if r["cost"] is not None]
    slowest = sorted((r for r in rows if r["ms"]), key=lambda r: (-r["ms"], r["n"]))
    costliest = sorted((r for r in rows if r["cost"]), key=lambda r: (-r["cost"], r["n"]))
    return {
        "name": session.name,
        "description": session.description,
        "agent": session.agent,
        "tags": list(session.tags),
        "input": plain.get("input"),
        "output": plain.get("output"),
        "error": plain.get("error"),
        "metadata": plain.get("metadata") or {},
        "modifications": plain.get("modifications") or {},
        "notes": loose,
        "stub": session.is_stub,
        "steps": rows,
        "lanes": len({s.lane for s in steps if s.lane is not None}),
        "snapshots": snapshots,
        "outputs": outputs,
        "tool_outputs": [_tool_entry(s) for s in steps if isinstance(s, ToolCallStep)],
        "figures": _figures_data(figures(session)),
        "max_ms": max(durations, default=0.0),
        "max_cost": max(costs, default=0.0),
        "slowest": [r["n"] for r in slowest[:TOP]],
        "costliest": [r["n"] for r in costliest[:TOP]],
    }


# --- analyses ---------------------------------------------------------------------------


def analysis_data(a: Analysis, *, side: str) -> dict[str, Any]:
    """An Analysis as plain data; the page shows the state before it from `state_step`."""
    return {
        "side": side,
        "kind": a.kind,
        "step": a.step,
        "title": a.title,
        "error": a.error,
        "state_step": a.state_step,
        "call": to_jsonable(a.call),
        "leads": [{"step": x.step, "type": x.type, "name": x.name, "why": x.why} for x in a.leads],
        "traces": [
            {
                "value": t.value,
                "where": t.where,
                "produced_by": list(t.produced_by),
                "asked_by": list(t.asked_by),
                "alike": [[s, v] for s, v in t.alike],
            }
            for t in a.traces
        ],
        "fix": a.fix,
    }


def _analyses(entry: ViewEntry, divergence: dict[str, Any] | None) -> list[dict[str, Any]]:
    fork = _fork_of(entry.actual)
    modifications = entry.actual.metadata.get("modifications") if entry.actual else None
    out = [
        analysis_data(a, side="golden")
        for a in analyse(
            entry.golden,
            divergence=divergence,
            fork=fork,
            modifications=modifications if isinstance(modifications, dict) else None,
        )
        if not entry.golden.is_stub
    ]
    if entry.actual is not None:
        out.extend(
            analysis_data(a, side="actual")
            for a in analyse(entry.actual, fork=fork)
            if a.kind != "divergence"
        )
    return out


# --- the page data ----------------------------------------------------------------------


def _slug(text: str) -> str:
    """A URL-safe id from a display name: the test name of a node id, ASCII, short."""
    name = text.rsplit("::", 1)[-1]
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9._-]+", "-", ascii_name.lower()).strip("-.")[:60].strip("-.")
    return slug or "golden"


def _display_name(entry: ViewEntry) -> str:
    if entry.name:
        return entry.name
    if entry.golden.name:
        return entry.golden.name
    if entry.file:
        return Path(entry.file).name.split(".golden.")[0]
    return "golden"


def _fork_of(actual: Session | None) -> dict[str, Any] | None:
    """The actual session's `metadata.fork` (`step`, the golden's step it forked at, and
    `modifications`, `run_step`, `reached`), if it was a fork."""
    fork = actual.metadata.get(FORK_METADATA) if actual is not None else None
    return fork if isinstance(fork, dict) else None


def _divergence(
    findings: Sequence[dict[str, Any]],
    golden: Session,
    actual: Session | None,
    matched: Mapping[int, int] | None,
) -> dict[str, Any] | None:
    """The first failing finding at a step; for a fork, whose verdict does not fail where it
    leaves the golden, the first step that differs, as for its saved actual alone."""
    if _fork_of(actual) is not None and actual is not None:
        first = next(
            (
                f
                for f in findings_from_diff(golden, actual, matched)
                if f.get("step") and f.get("failing", True)
            ),
            None,
        )
        if first is not None:
            return first
    return next((f for f in findings if f.get("failing", True) and f.get("step")), None)


def _stopped_there(divergence: Mapping[str, Any] | None, actual: Session | None) -> bool:
    """Whether the first failing finding is where the run was stopped (its timeout, its
    process dying), not a call that differed."""
    if divergence is None:
        return False
    if divergence.get("kind") in ("timeout", "process_died"):
        return True
    if actual is None or actual.error is None or ended_early(actual) is None:
        return False
    return bool(divergence.get("message") == actual.error.message)


def _step_diffs(
    golden: Session, actual: Session, rows: Sequence[tuple[int, int]]
) -> tuple[list[int], dict[str, list[str]], list[int]]:
    """Rows of the compare view where golden and actual differ, and their field diff
    lines (in the golden's step numbers; a step only the run has, in the run's), ending
    with how many more differences there are past those shown; and the rows of golden
    steps the run never came to (it stopped before them: not reached, not removed).

    Each step has its own budget: one step that differs in thousands of fields leaves
    every later differing step marked. A step whose diff is kept is compared up to
    `MAX_COUNTED` differences; past `MAX_STEP_DIFFS` such steps only whether it differs."""
    g_steps = compared_data(golden).get("steps") or []
    a_steps = compared_data(actual).get("steps") or []
    order: list[int] = []
    lines: dict[str, list[str]] = {}
    unreached: list[int] = []
    stop = replay_stop(list(rows), actual)
    refused = stop.step.step if stop is not None else 0
    # where it stopped: a refused call, or a run that did not end (its timeout)
    reached = stop.reached if stop is not None else reached_before_the_end(rows, actual)
    for at, (g, a) in enumerate(rows, start=1):
        kept = len(order) < MAX_STEP_DIFFS
        if reached is not None and g > reached and not a:  # never run: not removed
            order.append(at)
            unreached.append(at)
            if kept:
                lines[str(at)] = [f"step {g} not reached: the run stopped before it"]
            continue
        body_g = _step_body(g_steps[g - 1]) if g else MISSING
        body_a = _step_body(a_steps[a - 1]) if a else MISSING
        if a and a == refused:  # the refused call: what it asked, not the refusal
            body_g, body_a = request_body(body_g), request_body(body_a)
        found = differences(
            body_g,
            body_a,
            step=g or a,
            limit=MAX_COUNTED if kept else 1,
        )
        if not found:
            continue
        order.append(at)
        if kept:
            lines[str(at)] = _diff_lines(found)
    return order, lines, unreached


def _diff_lines(found: Sequence[Difference]) -> list[str]:
    """The lines of a step's first differences, and `… and N more differences` (`at least`
    when counting stopped at `MAX_COUNTED`), as the terminal says it."""
    shown: list[str] = []
    count = 0
    for d in found[:MAX_DIFFERENCES]:
        if len(shown) >= 3 * MAX_DIFFERENCES:
            break
        shown.extend(render_difference(d))
        count += 1
    more = len(found) - count
    if more:
        text = f"{more} more difference{'s' if more != 1 else ''}"
        shown.append(f"… and {'at least ' if len(found) >= MAX_COUNTED else ''}{text}")
    return shown


def _at(
    finding: dict[str, Any] | None, g_at: Mapping[int, int], a_at: Mapping[int, int]
) -> int | None:
    """The row of the compare view a finding's step is on."""
    step = (finding or {}).get("step")
    if not isinstance(step, int) or step < 1:
        return None
    first, second = (a_at, g_at) if (finding or {}).get("run_step") else (g_at, a_at)
    return first.get(step) or second.get(step)


def _entry_data(entry: ViewEntry, *, slow_ms: float) -> dict[str, Any]:
    golden, actual = entry.golden, entry.actual
    findings = list(entry.findings)
    if not findings and actual is not None:
        findings = findings_from_diff(golden, actual, entry.matched)
    divergence = _divergence(findings, golden, actual, entry.matched)
    diff_steps: list[int] = []
    step_diffs: dict[str, list[str]] = {}
    unreached: list[int] = []
    rows: list[tuple[int, int]] | None = None
    if actual is not None:
        rows = step_rows(golden, actual, entry.matched)
        diff_steps, step_diffs, unreached = _step_diffs(golden, actual, rows)
        g_at, a_at = _positions(rows)
    else:
        g_at = a_at = {s.step: s.step for s in golden.step_list}
    g_fig = figures(golden)
    if actual is not None:
        a_fig: Figures | None = figures(actual)
    else:  # a skipped golden did not run: no figures of a run
        a_fig = _measured(entry.record) if entry.status != "skipped" else None
    errors = [
        pos
        for pos in (
            (a_at if actual is not None else g_at).get(s.step)
            for s in (actual or golden).step_list
            if s.error is not None
        )
        if pos
    ]
    at = _at(divergence, g_at, a_at)
    golden_view = session_view(golden, slow_ms=slow_ms)
    actual_view = session_view(actual, slow_ms=slow_ms) if actual is not None else None
    return {
        "name": _display_name(entry),
        "file": entry.file,
        "status": entry.status,
        "description": golden.description,
        "tags": list(golden.tags),
        "start": at or (min(errors) if errors else 1),
        "divergence": at,
        # a run stopped there (its timeout, its process dying), not a call that differed
        "stopped": _stopped_there(divergence, actual),
        "rows": [list(r) for r in rows] if rows is not None else None,
        "diff_steps": diff_steps,
        "step_diffs": step_diffs,
        "unreached_steps": unreached,
        "findings": findings,
        "analyses": _analyses(entry, divergence),
        "figures": {
            "golden": _figures_data(g_fig),
            "actual": _figures_data(a_fig) if a_fig is not None else None,
            "delta": _deltas(a_fig, g_fig) if a_fig is not None else None,
        },
        "record": to_jsonable(entry.record) if entry.record is not None else None,
        "golden": golden_view,
        "actual": actual_view,
        "top_steps": _top_steps(golden_view, actual_view, rows),
    }


def _top_steps(
    golden: dict[str, Any],
    actual: dict[str, Any] | None,
    rows: Sequence[tuple[int, int]] | None,
) -> dict[str, Any]:
    """The slowest and most expensive steps the page lists: the run's when there is one
    (what this run spent), each numbered as the golden step it faces, else in the run
    (`run_step`); the golden's own without a run. `n` is the step on its `side`."""
    if actual is None or rows is None:
        side, view, faced = "golden", golden, None
    else:
        side, view, faced = "actual", actual, {a: g for g, a in rows if g and a}

    def numbered(ns: Sequence[int]) -> list[dict[str, Any]]:
        if faced is None:
            return [{"n": n, "step": n, "run_step": False} for n in ns]
        return [{"n": n, "step": faced.get(n, n), "run_step": n not in faced} for n in ns]

    return {
        "side": side,
        "slowest": numbered(view["slowest"]),
        "costliest": numbered(view["costliest"]),
    }


def _measured(record: dict[str, Any] | None) -> Figures | None:
    """A run's figures from its report record, for a golden whose actual session is not on
    the page (a passing one): the page then shows what this run measured, as the JSON
    report and JUnit do, not only what the golden recorded."""
    if record is None:
        return None
    try:
        # a report written before a figure was recorded lacks it: its default
        known = [f.name for f in fields(Figures) if f.name in record or f.default is NO_DEFAULT]
        return Figures(**{name: record[name] for name in known})
    except (KeyError, TypeError):
        return None


def build_data(
    entries: Sequence[ViewEntry],
    *,
    title: str = "opswald replay",
    redact: bool = False,
    slow_ms: float = 5000.0,
    redactor: Redactor | None = None,
) -> dict[str, Any]:
    """All the data the page shows, as plain JSON-able data. Secrets are always scrubbed
    (by `redactor`, the run's rules, else the default ones); `redact=True` also scrubs
    personal data (emails, phone numbers) for sharing."""
    run_rules = redactor if redactor is not None else DEFAULT_REDACTOR
    redactor = make_redactor(pii=True, extra=run_rules.extra) if redact else run_rules
    goldens = []
    used: set[str] = set()
    for entry in entries:
        data = _redacted(_entry_data(_scrubbed(entry, redactor), slow_ms=slow_ms), redactor)
        base = _slug(data["name"])
        ident, n = base, 2
        while ident in used:
            ident, n = f"{base}-{n}", n + 1
        used.add(ident)
        goldens.append({"id": ident, **data})
    counts: dict[str, int] = {}
    for g in goldens:
        counts[g["status"]] = counts.get(g["status"], 0) + 1
    spent = [f for f in map(_spent, goldens) if f is not None]
    return {
        "format": FORMAT,
        "title": redactor(title),
        "slow_ms": slow_ms,
        "redacted": redact,
        "summary": {
            "total": len(goldens),
            "counts": counts,
            "cost": _total(spent),
            "unpriced_calls": sum(f.get("unpriced_calls") or 0 for f in spent),
            "duration_ms": round(math.fsum(f["duration_ms"] or 0.0 for f in spent), MS_DECIMALS),
        },
        "goldens": goldens,
        # the characters the page shows as escapes (opswald.hidden), as code point ranges
        "ignorable": [list(r) for r in IGNORABLE],
    }


_NOT_SPENT = ("skipped", "error", "failed")  # without a run's figures: none to count


def _spent(golden: dict[str, Any]) -> dict[str, Any] | None:
    """The figures a golden adds to the page's totals, as its JSON report row has them: what
    its run measured; without a measurement, what the golden recorded when that is what the
    run spent (it passed, or the page shows goldens without a run), else nothing (a skipped
    golden, one that failed before it ran)."""
    actual: dict[str, Any] | None = golden["figures"]["actual"]
    recorded: dict[str, Any] = golden["figures"]["golden"]
    if actual is None and golden["status"] not in _NOT_SPENT:
        return recorded
    return actual


def _total(figs: Iterable[dict[str, Any]]) -> float | None:
    return total_cost(f["cost"] for f in figs)


def _scrubbed(entry: ViewEntry, redactor: Redactor) -> ViewEntry:
    """The entry with its sessions redacted before they are compared, as the terminal
    compares them: a golden holding a secret in clear (written by hand, or recorded before
    a rule covered it) would otherwise differ from its redacted run there, and the
    difference's line show the secret."""
    actual = entry.actual
    return replace(
        entry,
        golden=redact_session(entry.golden, redactor),
        actual=redact_session(actual, redactor) if actual is not None else None,
    )


def _redacted(data: dict[str, Any], redactor: Redactor) -> dict[str, Any]:
    """Session content scrubbed; the status stays a status."""
    out: dict[str, Any] = redactor(data)
    out["status"] = data["status"]
    return out


# --- the page ---------------------------------------------------------------------------

_ESCAPES = {
    "<": "\\u003c",
    ">": "\\u003e",
    "&": "\\u0026",
    "\u2028": "\\u2028",
    "\u2029": "\\u2029",
}
_UNSAFE = re.compile("[<>&\u2028\u2029]")


def embed_json(data: Any) -> str:
    """JSON that can sit inside `<script type="application/json">`: no `<`, `>`, `&` or
    line separators left, so no `</script>` or `<!--` can end or change the block.
    Infinity and NaN as goldens write them (`opswald.jsontext`), read back by the page."""
    text = jsontext.dumps(data, separators=(",", ":"))
    return _UNSAFE.sub(lambda m: _ESCAPES[m.group(0)], text)


def _asset(name: str) -> str:
    return (resources.files("opswald.report") / "viewer" / name).read_text(encoding="utf-8")


def _sha256(text: str) -> str:
    return "sha256-" + base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode()


def content_security_policy(script: str, style: str) -> str:
    """Nothing but the page's own inline script and stylesheet, by hash."""
    return (
        f"default-src 'none'; script-src '{_sha256(script)}'; style-src '{_sha256(style)}'; "
        "img-src 'none'; font-src 'none'; connect-src 'none'; media-src 'none'; "
        "object-src 'none'; frame-src 'none'; worker-src 'none'; base-uri 'none'; "
        "form-action 'none'"
    )


def render(data: dict[str, Any]) -> str:
    """The page: template + inline CSS + inline JS + the data."""
    script, style = _asset("viewer.js"), _asset("viewer.css")
    parts = {
        "CSP": html.escape(content_security_policy(script, style), quote=False).replace(
            '"', "&quot;"
        ),
        # the tab's title as the terminal shows it: hidden characters escaped
        "TITLE": html.escape(escaped(str(data.get("title") or "opswald replay")), quote=True),
        "STYLE": style,
        "SCRIPT": script,
        "DATA": embed_json(data),
    }
    # one pass: text put in is never searched for placeholders again
    return re.sub(r"\{\{([A-Z]+)\}\}", lambda m: parts[m.group(1)], _asset("template.html"))


def write_report(
    path: str | Path,
    entries: Sequence[ViewEntry],
    *,
    title: str = "opswald replay",
    redact: bool = False,
    slow_ms: float = 5000.0,
    redactor: Redactor | None = None,
) -> int:
    """Write the page atomically; return the bytes written."""
    text = render(
        build_data(entries, title=title, redact=redact, slow_ms=slow_ms, redactor=redactor)
    )
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    write_output_text(target, text)
    return len(text.encode("utf-8"))
