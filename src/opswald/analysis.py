"""Error analysis: why a step failed, told with this session's own steps and values.

For a failed step (a step that recorded an error, the first divergence of a run, or the
session's error after its last step) an `Analysis` holds the error, the state before it
(`state_at(k - 1)`, DESIGN §3a), the steps that led to it (the model call that asked for a
tool call, the tool outputs that model call read, the user's message, the snapshot in force)
and a suggested fix derived from the session, not canned text: the values the failure is
about are traced back through earlier steps ("no earlier step produced `q1-sales.pdf`;
step 8 produced `summary.txt` and `charts.png`"). The viewer shows it; an `opswald analyze`
command can print it, since nothing here depends on HTML.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from rapidfuzz import fuzz

from opswald.engine.state import State, state_at
from opswald.paths import render, walk
from opswald.session import (
    AnyStep,
    ErrorInfo,
    LLMCallStep,
    Session,
    StateStep,
    ToolCallStep,
    UserInputStep,
)
from opswald.sessiondiff import ENDED_EARLY

__all__ = [
    "Analysis",
    "Lead",
    "Trace",
    "analyse",
    "analyse_divergence",
    "analyse_session_error",
    "analyse_step",
    "describe",
]

AnalysisKind = Literal["step_error", "divergence", "session_error"]
BLOCKED_SIDE_EFFECT = "SideEffectBlocked"  # the error type of a refused side-effect call

MAX_ANALYSES = 20  # error steps analysed per session (the first ones)
MAX_LEAVES = 2000  # values looked at per step: a huge tool result stays cheap
MAX_SUSPECTS = 3  # values of the failed step traced back
MAX_SHOWN = 6  # values of the same kind named in a fix
SIMILAR = 70.0  # rapidfuzz ratio from which two values count as alike
CLOSE = 80.0  # ... and from which one is named as the likely intended value


@dataclass(frozen=True, kw_only=True)
class Lead:
    """A step that led to the failure, and how."""

    step: int
    type: str
    name: str | None
    why: str


@dataclass(frozen=True, kw_only=True)
class Trace:
    """Where a value the failure is about came from, in the steps before the failure."""

    value: str
    where: str  # `input.attachments[0]`, or `error message`
    key_lookup: bool = False  # the value names a missing key (KeyError), not a value
    produced_by: tuple[int, ...] = ()  # steps whose outputs hold it (0: the session input)
    asked_by: tuple[int, ...] = ()  # model calls that asked for it
    alike: tuple[tuple[int, str], ...] = ()  # (step, value) of the same kind, best first
    closest: tuple[int, str] | None = None


@dataclass(frozen=True, kw_only=True)
class Analysis:
    """One failed step explained."""

    kind: AnalysisKind
    step: int | None  # the failed step (1-based); None: after the last step
    total_steps: int
    title: str
    error: str
    state_before: State
    leads: tuple[Lead, ...] = ()
    traces: tuple[Trace, ...] = ()
    fix: str = ""
    call: dict[str, Any] = field(default_factory=dict)  # what the step did: tool and input

    @property
    def state_step(self) -> int:
        """The step whose state is `state_before` (0: before the first step)."""
        return self.state_before.step


# --- entry points ---------------------------------------------------------------------


def analyse(
    session: Session,
    *,
    divergence: Mapping[str, Any] | None = None,
    fork: Mapping[str, Any] | None = None,
    modifications: Mapping[str, Any] | None = None,
    limit: int = MAX_ANALYSES,
) -> list[Analysis]:
    """Every failure of a session: the divergence (when given), error steps, the session error.

    `divergence` is a finding as plain data (`opswald.report.html.finding_data`): `step`,
    `step_type`, `name`, `message`, `suggestion` and `differences` with `golden`/`actual`.
    `fork` is the run's `metadata.fork` (`step`, `modifications`) when it was a fork: a
    divergence at a step the fork modified is the modification, not the agent's doing.
    `modifications` is the run's `metadata.modifications`: the request-level ones (`model=`,
    `temperature=`, ...) opswald applied to the requests from the fork's step on.
    """
    # a call refused at the divergence carries the divergence as its error: the divergence's
    # own analysis (with the golden beside it) covers it
    steps = [s for s in session.step_list if s.error is None or s.error.type != "ReplayDivergence"]
    out: list[Analysis] = []
    diverged = divergence is not None and divergence.get("step") is not None
    if not diverged and session.error is None and all(s.error is None for s in steps):
        return out  # nothing failed: no need to index the session's values
    index = _Index(session)
    if divergence is not None and diverged:
        out.append(
            analyse_divergence(
                session, divergence, index=index, fork=fork, modifications=modifications
            )
        )
    for step in steps:
        if len(out) >= limit:
            break
        if step.error is not None and not any(a.step == step.step for a in out):
            out.append(analyse_step(session, step.step, index=index, forked=fork is not None))
    if session.error is not None and len(out) < limit:
        last = steps[-1] if steps else None
        if last is None or last.error is None or last.error != session.error:
            out.append(analyse_session_error(session, index=index))
    return out


def analyse_step(
    session: Session, k: int, *, index: _Index | None = None, forked: bool = False
) -> Analysis:
    """A step that recorded an error (`step.error`); `forked`: the session is a fork's run."""
    steps = session.step_list
    step = steps[k - 1]
    index = index or _Index(session)
    error = _error_text(step.error) if step.error else "no error recorded"
    message = step.error.message if step.error else ""
    suspects = list(_suspects_of_call(step, message))
    if not suspects and step.error is not None:
        suspects = list(_suspects_in_text(message, step.error.type))
    if step.error is not None and step.error.type == BLOCKED_SIDE_EFFECT:
        suspects = []  # the tool never ran: its arguments are not what went wrong
    traces = tuple(index.trace(value, where, k, key_lookup=kl) for value, where, kl in suspects)
    leads = _leads(steps, k, traces)
    fix = (
        _blocked_fix(steps, step, leads, forked=forked)
        if step.error is not None and step.error.type == BLOCKED_SIDE_EFFECT
        else _fix(steps, step, k, traces, leads, error)
    )
    return Analysis(
        kind="step_error",
        step=k,
        total_steps=len(steps),
        title=f"step {k} of {len(steps)} · {describe(step)} failed",
        error=error,
        state_before=state_at(steps, k - 1),
        leads=leads,
        traces=traces,
        fix=fix,
        call=_call_of(step),
    )


def analyse_divergence(
    session: Session,
    finding: Mapping[str, Any],
    *,
    index: _Index | None = None,
    fork: Mapping[str, Any] | None = None,
    modifications: Mapping[str, Any] | None = None,
) -> Analysis:
    """The first divergence of a run, in the golden's terms: traced through the golden's steps
    before it (a replay served exactly those to the agent). At the step a fork modified,
    the difference is the modification: said so, and not traced; so is a difference at or
    after the step a request-level modification applied from (`model=`: opswald changed
    the request, and the live answer's cost, usage and ids follow from it)."""
    steps = session.step_list
    k = int(finding["step"])
    index = index or _Index(session)
    # a step the golden does not have there (an extra call or snapshot) is numbered in the
    # run: no golden step of that number is it, and none of its values were passed on
    run_numbered = bool(finding.get("run_step"))
    step = steps[k - 1] if 0 < k <= len(steps) and not run_numbered else None
    label = (
        describe(step)
        if step
        else " ".join(str(p) for p in (finding.get("step_type"), finding.get("name")) if p)
    )
    pairs = list(_changed_values(finding.get("differences") or ()))
    traces: list[Trace] = []
    golden_sources: dict[str, Trace] = {}
    if run_numbered:  # a request-level modification changes calls from the fork's call on
        live_from = (fork.get("run_step") or fork.get("step")) if fork else None
        modified: dict[str, Any] = {}
        calls = finding.get("step_type") in ("llm_call", "tool_call")
        requested = _request_modifications({"step": live_from}, modifications, k) if calls else {}
    else:
        modified = _fork_modifications(fork, k)
        requested = _request_modifications(fork, modifications, k)
    leads: tuple[Lead, ...] = ()
    if modified:  # the fork's own change: nothing to trace
        fix = _fork_fix(k, pairs, modified)
    elif requested:  # opswald changed the request: nothing the agent passed to trace
        start = int(fork.get("run_step") or fork["step"]) if fork and run_numbered else None
        fix = _request_fix(k, start or (int(fork["step"]) if fork else k), pairs, requested)
    elif run_numbered:
        hint = str(finding.get("suggestion") or "")
        fix = hint or f"step {k} of this run ({label}) is a step the golden does not have there"
    else:
        for where, golden_value, actual_value in pairs[:MAX_SUSPECTS]:
            if actual_value is not None:
                traces.append(index.trace(actual_value, where, k))
            if golden_value is not None:
                golden_sources[where] = index.trace(golden_value, where, k)
        leads = _leads(steps, k, tuple(traces)) if step else ()
        fix = _divergence_fix(steps, k, pairs, traces, golden_sources, finding)
    return Analysis(
        kind="divergence",
        step=k,
        total_steps=len(steps),
        title=(
            f"step {k} of {'this run' if run_numbered else len(steps)} · {label}: first divergence"
        ).replace(" · :", ":"),
        error=str(finding.get("message") or "the run differs from the golden here"),
        state_before=state_at(steps, k - 1),
        leads=leads,
        traces=tuple(traces),
        fix=fix,
        call=_call_of(step) if step else {},
    )


def analyse_session_error(session: Session, *, index: _Index | None = None) -> Analysis:
    """The error the session ended with, after its last step."""
    steps = session.step_list
    n = len(steps)
    error = session.error or ErrorInfo(type="Error")
    index = index or _Index(session)
    if error.type in ENDED_EARLY:  # the run was stopped: not a value the agent lacked
        return _stopped_analysis(session, error)
    suspects = list(_suspects_in_text(error.message, error.type))
    traces = tuple(index.trace(v, where, n + 1, key_lookup=kl) for v, where, kl in suspects)
    leads = list(_leads(steps, n + 1, traces))
    if steps and not any(lead.step == n for lead in leads):
        last = steps[-1]
        leads.append(Lead(step=n, type=last.type, name=_name(last), why="the last step before"))
    leads.sort(key=lambda lead: lead.step)
    text = _error_text(error)
    return Analysis(
        kind="session_error",
        step=None,
        total_steps=n,
        title=f"the session ended with {error.type} after step {n} of {n}",
        error=text,
        state_before=state_at(steps, n),
        leads=tuple(leads),
        traces=traces,
        fix=_session_fix(steps, traces, text),
    )


def _stopped_analysis(session: Session, error: ErrorInfo) -> Analysis:
    """A saved run that did not end (`sessiondiff.ENDED_EARLY`): where it stopped, the
    state then, and what to do; no trace of the message's words through the steps."""
    steps = session.step_list
    n = len(steps)
    timed_out = error.type == "Timeout"
    how = "stopped by its timeout" if timed_out else "ended by its process dying"
    after = f"after {_ref(steps, n)}" if steps else "before its first step"
    fix = (
        f"the agent did not finish in time and was stopped {after}: see what it was doing "
        "then (the step after is where it was), or raise the golden's `timeout:` or "
        "--opswald-timeout if it needs longer"
        if timed_out
        else f"the agent's process died {after}: see its stderr"
    )
    leads = []
    if steps:
        last = steps[-1]
        leads.append(Lead(step=n, type=last.type, name=_name(last), why="the last step finished"))
    return Analysis(
        kind="session_error",
        step=None,
        total_steps=n,
        title=f"the run was {how} {after}",
        error=_error_text(error),
        state_before=state_at(steps, n),
        leads=tuple(leads),
        traces=(),
        fix=fix,
    )


# --- describing steps -----------------------------------------------------------------


def describe(step: AnyStep) -> str:
    """`tool_call send_email`, `llm_call gpt-4o`, `user_input`, `state`."""
    name = _name(step)
    return f"{step.type} {name}" if name else step.type


def _name(step: AnyStep) -> str | None:
    if isinstance(step, ToolCallStep):
        return step.tool
    if isinstance(step, LLMCallStep):
        return step.model
    return None


def _ref(steps: Sequence[AnyStep], n: int) -> str:
    """`step 8 (tool_call make_files)`, or `the session input` for step 0."""
    if n == 0:
        return "the session input"
    return f"step {n} ({describe(steps[n - 1])})"


def _error_text(error: ErrorInfo | None) -> str:
    if error is None:
        return ""
    return error.text()


def _call_of(step: AnyStep) -> dict[str, Any]:
    if isinstance(step, ToolCallStep):
        return {"tool": step.tool, "input": step.input}
    if isinstance(step, LLMCallStep):
        return {"model": step.model, "messages": len(step.input.messages or [])}
    return {"type": step.type}


def _q(value: str, width: int = 60) -> str:
    text = value if len(value) <= width else value[: width - 1] + "…"
    return f"`{text}`"


def _and(values: Sequence[str]) -> str:
    shown = [_q(v) for v in values]
    if len(shown) <= 1:
        return "".join(shown)
    return ", ".join(shown[:-1]) + " and " + shown[-1]


# --- what a failure is about ------------------------------------------------------------

_FILE = re.compile(r"(?<![\w.\-/@:])(?:~?/)?[\w][\w.\-/]*\.[A-Za-z][A-Za-z0-9]{0,7}(?![\w\-/@])")
_URL = re.compile(r"https?://[^\s'\"<>`]+")
_EMAIL = re.compile(r"[\w.+\-]+@[\w\-]+\.[\w.\-]+")
_DATE = re.compile(r"\d{4}-\d\d-\d\d(?:[T ][\d:.]+Z?)?")
_ID = re.compile(r"(?<![\w\-])(?=[\w\-]*\d)(?=[\w\-]*[A-Za-z])[A-Za-z0-9][\w\-]{1,39}(?![\w\-])")
_QUOTED = re.compile(r"'([^'\n]{1,200})'|\"([^\"\n]{1,200})\"|`([^`\n]{1,200})`")
_KEY_ERRORS = ("KeyError", "AttributeError")


def kind_of(value: str) -> str:
    """What sort of value a string is: url, email, date, file, id, number, word or text."""
    if _URL.fullmatch(value):
        return "url"
    if _EMAIL.fullmatch(value):
        return "email"
    if _DATE.fullmatch(value):
        return "date"
    if _FILE.fullmatch(value) and not re.fullmatch(r"[\d.]+", value):
        return "file"
    if re.fullmatch(r"[+\-]?\d+(?:\.\d+)?", value):
        return "number"
    if _ID.fullmatch(value):
        return "id"
    return "text" if re.search(r"\s", value) else "word"


_TOKENS = {"url": _URL, "email": _EMAIL, "date": _DATE, "file": _FILE, "id": _ID}


def _tokens(text: str, kind: str) -> list[str]:
    """Values of `kind` inside a longer text (`Created summary.txt` holds a file)."""
    pattern = _TOKENS.get(kind)
    if pattern is None:
        return [text] if kind_of(text) == kind else []
    return [m.group(0) for m in pattern.finditer(text)]


def _suspects_of_call(step: AnyStep, message: str) -> Iterator[tuple[str, str, bool]]:
    """Argument values of a failed call that its error message names: (value, where, False)."""
    if not isinstance(step, ToolCallStep):
        return
    folded = message.casefold()
    seen = 0
    for path, value in walk(step.input, ("input",)):
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            continue
        text = str(value)
        if len(text) >= 2 and text.casefold() in folded:
            yield text, render(path), False
            seen += 1
            if seen >= MAX_SUSPECTS:
                return


def _suspects_in_text(message: str, error_type: str) -> Iterator[tuple[str, str, bool]]:
    """Values an error message names: quoted ones, files, URLs, ids."""
    found: list[str] = []
    for m in _QUOTED.finditer(message):
        found.append(next(g for g in m.groups() if g is not None))
    for kind in ("url", "email", "file", "id"):
        found.extend(_tokens(message, kind))
    key_lookup = error_type in _KEY_ERRORS
    seen: set[str] = set()
    for value in found:
        value = value.strip()
        if len(value) < 2 or value in seen or any(value in s for s in seen):
            continue
        seen.add(value)
        yield value, "error message", key_lookup and kind_of(value) in ("word", "id")
        if len(seen) >= MAX_SUSPECTS:
            return


def _changed_values(differences: Iterable[Mapping[str, Any]]) -> Iterator[tuple[str, Any, Any]]:
    """(where, golden text or None, actual text or None) of each short changed leaf value."""
    for d in differences:
        where = str(d.get("where") or "value")
        golden, actual = d.get("golden"), d.get("actual")
        if isinstance(golden, dict | list) or isinstance(actual, dict | list):
            pairs = _leaf_pairs(golden, actual)
            for rel, g, a in pairs:
                yield (f"{where}{rel}", g, a)
            continue
        g, a = _short_text(golden), _short_text(actual)
        if g is not None or a is not None:
            yield where, g, a


def _leaf_pairs(golden: Any, actual: Any) -> list[tuple[str, str | None, str | None]]:
    g_leaves = {render(p): v for p, v in walk(golden) if _short_text(v) is not None}
    a_leaves = {render(p): v for p, v in walk(actual) if _short_text(v) is not None}
    out = []
    for key in [*a_leaves, *(k for k in g_leaves if k not in a_leaves)]:
        g, a = _short_text(g_leaves.get(key)), _short_text(a_leaves.get(key))
        if g != a:
            sep = "" if not key or key.startswith("[") else "."
            out.append((f"{sep}{key}" if key else "", g, a))
    return out[:MAX_SUSPECTS]


def _short_text(value: Any) -> str | None:
    """A value worth tracing: a short string or a number (no prose, no containers)."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, str) and 2 <= len(value) <= 200 and value.count(" ") <= 6:
        return value
    return None


# --- where values come from ------------------------------------------------------------

_Role = Literal["input", "user", "tool", "state", "llm"]
_PRODUCERS: frozenset[str] = frozenset({"input", "user", "tool", "state"})


@dataclass(frozen=True)
class _Leaf:
    step: int
    role: _Role
    key: str | None  # the last mapping key on its path
    text: str
    is_key: bool = False


class _Index:
    """The short values of a session, by step: who produced what, who asked for what."""

    def __init__(self, session: Session) -> None:
        self.steps = session.step_list
        self.leaves: list[_Leaf] = list(_values(0, "input", session.input))
        for step in self.steps:
            self.leaves.extend(_step_leaves(step))

    def trace(self, value: str, where: str, before: int, *, key_lookup: bool = False) -> Trace:
        """Where `value` appears in steps before `before`, and values like it."""
        folded = value.casefold()
        earlier = [leaf for leaf in self.leaves if leaf.step < before]
        produced: list[int] = []
        asked: list[int] = []
        for leaf in earlier:
            if leaf.is_key != key_lookup:
                continue
            if not (leaf.text == value if key_lookup else _holds(leaf.text, folded)):
                continue
            target = produced if leaf.role in _PRODUCERS else asked
            if leaf.step not in target:
                target.append(leaf.step)
        alike = self._alike(value, where, earlier, key_lookup)
        best = max(alike, key=lambda pair: fuzz.ratio(value, pair[1]), default=None)
        closest = best if best is not None and fuzz.ratio(value, best[1]) >= CLOSE else None
        return Trace(
            value=value,
            where=where,
            key_lookup=key_lookup,
            produced_by=tuple(produced),
            asked_by=tuple(asked),
            alike=alike,
            closest=closest,
        )

    def _alike(
        self, value: str, where: str, earlier: list[_Leaf], key_lookup: bool
    ) -> tuple[tuple[int, str], ...]:
        """Values of the same kind earlier steps produced: same sort (file, id, ...), same
        argument key, or similar text; the most alike first, one entry per value."""
        kind = kind_of(value)
        key = _last_key(where)
        scored: dict[str, tuple[float, int]] = {}
        for leaf in earlier:
            if leaf.role not in _PRODUCERS or leaf.is_key != key_lookup:
                continue
            found = [leaf.text] if key_lookup else _tokens(leaf.text, kind)
            if not key_lookup and key is not None and leaf.key == key and leaf.text not in found:
                found.append(leaf.text)
            for candidate in found:
                if candidate.casefold() == value.casefold() or candidate in scored:
                    continue
                score = fuzz.ratio(value, candidate)
                if key_lookup and score < SIMILAR - 20:
                    continue
                if kind in ("word", "text", "number") and leaf.key != key and score < SIMILAR:
                    continue
                scored[candidate] = (score + (25.0 if leaf.key == key else 0.0), leaf.step)
        ranked = sorted(scored.items(), key=lambda item: (-item[1][0], item[1][1]))[:MAX_SHOWN]
        chosen = {text for text, _ in ranked}
        # shown in the order the session produced them
        return tuple((step, text) for text, (_, step) in scored.items() if text in chosen)


def _holds(text: str, folded: str) -> bool:
    """`text` is the value, or (for values long enough to be specific) contains it."""
    low = text.casefold()
    return low == folded or (len(folded) >= 4 and folded in low)


def _last_key(where: str) -> str | None:
    if where == "error message":
        return None
    m = re.search(r"([A-Za-z_][\w\-]*)(?:\[\d+\])*$", where)
    return m.group(1) if m else None


def _values(step: int, role: _Role, data: Any, *, keys: bool = True) -> Iterator[_Leaf]:
    count = 0
    for path, value in walk(data):
        count += 1
        if count > MAX_LEAVES:
            return
        key = next((p for p in reversed(path) if isinstance(p, str)), None)
        if isinstance(value, dict):
            if keys:
                for name in value:
                    yield _Leaf(step, role, key, str(name), is_key=True)
            continue
        if isinstance(value, bool) or value is None or isinstance(value, list):
            continue
        if isinstance(value, int | float | str):
            yield _Leaf(step, role, key, str(value))


def _step_leaves(step: AnyStep) -> Iterator[_Leaf]:
    n = step.step
    if isinstance(step, ToolCallStep):
        if step.error is None:
            yield from _values(n, "tool", step.output)
    elif isinstance(step, UserInputStep):
        yield from _values(n, "user", step.content)
    elif isinstance(step, StateStep):
        parts = {"memory": step.memory, "variables": step.variables, "context": step.context}
        parts.update(step.model_extra or {})
        yield from _values(n, "state", parts)
    elif isinstance(step, LLMCallStep) and step.output is not None:
        yield from _values(n, "llm", step.output.content, keys=False)
        for call in step.output.tool_calls or []:
            yield from _values(n, "llm", _call_arguments(call), keys=False)


def _call_arguments(call: Any) -> Any:
    """The arguments of a tool call as an LLM output holds it (parsed when a JSON string)."""
    if not isinstance(call, dict):
        return None
    args = call.get("arguments", call.get("input", call.get("args")))
    function = call.get("function")
    if args is None and isinstance(function, dict):
        args = function.get("arguments")
    if isinstance(args, str):
        try:
            return json.loads(args)
        except ValueError:
            return args
    return args


def _call_name(call: Any) -> str | None:
    if not isinstance(call, dict):
        return None
    name = call.get("name")
    function = call.get("function")
    if name is None and isinstance(function, dict):
        name = function.get("name")
    return name if isinstance(name, str) else None


# --- the steps that led to a failure ---------------------------------------------------


def _requester(steps: Sequence[AnyStep], step: ToolCallStep) -> LLMCallStep | None:
    """The model call that asked for this tool call: same call id, else same name and
    arguments, else same name, looking back from the call."""
    fallback: LLMCallStep | None = None
    for earlier in reversed(steps[: step.step - 1]):
        if not isinstance(earlier, LLMCallStep) or earlier.output is None:
            continue
        for call in earlier.output.tool_calls or []:
            if _call_name(call) != step.tool:
                continue
            if step.call_id is not None and isinstance(call, dict) and call.get("id"):
                if call.get("id") == step.call_id:
                    return earlier
                continue
            if _call_arguments(call) == step.input:
                return earlier
            fallback = fallback or earlier
    return fallback


def _fed(steps: Sequence[AnyStep], llm: int) -> list[AnyStep]:
    """The steps whose results a model call at step `llm` read: every tool call and user
    input since the previous model call."""
    out: list[AnyStep] = []
    for earlier in reversed(steps[: llm - 1]):
        if isinstance(earlier, LLMCallStep):
            break
        if isinstance(earlier, ToolCallStep | UserInputStep):
            out.append(earlier)
    return out[::-1]


def _leads(steps: Sequence[AnyStep], k: int, traces: Sequence[Trace]) -> tuple[Lead, ...]:
    leads: dict[int, Lead] = {}

    def add(step: AnyStep, why: str) -> None:
        if step.step not in leads:
            leads[step.step] = Lead(step=step.step, type=step.type, name=_name(step), why=why)

    failed = steps[k - 1] if 0 < k <= len(steps) else None
    llm: LLMCallStep | None = None
    if isinstance(failed, ToolCallStep):
        llm = _requester(steps, failed)
        if llm is not None:
            add(llm, f"asked for this call to {failed.tool}")
    elif isinstance(failed, LLMCallStep):
        for fed in _fed(steps, k):
            add(fed, _fed_why(fed, k))
        llm = next((s for s in reversed(steps[: k - 1]) if isinstance(s, LLMCallStep)), None)
        if llm is not None:
            add(llm, "the previous model call")
    if llm is not None and isinstance(failed, ToolCallStep):
        for fed in _fed(steps, llm.step):
            add(fed, _fed_why(fed, llm.step))
    for trace in traces:
        if _source(trace.produced_by):
            add(steps[_source(trace.produced_by) - 1], f"produced {_q(trace.value)}")
        for n in trace.asked_by[:1]:
            add(steps[n - 1], f"asked for {_q(trace.value)}")
        if not trace.produced_by and trace.alike:
            latest = max(s for s, _ in trace.alike)
            if latest:
                made = [text for s, text in trace.alike if s == latest]
                add(steps[latest - 1], f"produced {_and(made)}, like {_q(trace.value)}")
    snapshot = next((s for s in reversed(steps[: k - 1]) if isinstance(s, StateStep)), None)
    if snapshot is not None:
        add(snapshot, "the state snapshot in force")
    return tuple(sorted(leads.values(), key=lambda lead: lead.step))


def _fed_why(step: AnyStep, llm: int) -> str:
    if isinstance(step, UserInputStep):
        return f"the user's message that step {llm} read"
    return f"its output was in the request of step {llm}"


# --- suggested fixes --------------------------------------------------------------------


def _source(steps: Sequence[int]) -> int:
    """The step a value most likely came from: the latest that had it (the session input,
    0, only when no step did)."""
    return max(steps, default=0)


def _alike_text(trace: Trace) -> str:
    """`step 8 produced `summary.txt` and `charts.png``; per step, in step order."""
    by_step: dict[int, list[str]] = {}
    for step, text in trace.alike:
        by_step.setdefault(step, []).append(text)
    noun = "keys " if trace.key_lookup else ""
    parts = []
    for step in sorted(by_step):
        who = "the session input" if step == 0 else f"step {step}"
        values = by_step[step]
        word = noun if len(values) > 1 or not noun else "key "
        parts.append(f"{who} {'has' if step == 0 else 'produced'} {word}{_and(values)}")
    return "; ".join(parts)


def _origin(steps: Sequence[AnyStep], trace: Trace) -> str:
    """`step 3 (tool_call search) produced `AF1``, or `no earlier step produced `x``."""
    what = f"a key {_q(trace.value)}" if trace.key_lookup else _q(trace.value)
    if trace.produced_by:
        source = _source(trace.produced_by)
        verb = "has" if source == 0 else "produced"
        return f"{_ref(steps, source)} {verb} {what}"
    text = f"no earlier step produced {what}"
    if trace.alike:
        text += f"; {_alike_text(trace)}"
    return text


def _fix(
    steps: Sequence[AnyStep],
    step: AnyStep,
    k: int,
    traces: Sequence[Trace],
    leads: Sequence[Lead],
    error: str,
) -> str:
    """Values no earlier step produced come first (the likely cause); when every value
    existed, the failure is the called tool's own."""
    missing = [t for t in traces if not t.produced_by]
    sentences: list[str] = []
    for trace in missing:
        sentences.append(_origin(steps, trace))
        noun = "file" if kind_of(trace.value) == "file" else "value"
        if trace.asked_by:
            asker = trace.asked_by[-1]
            start = max((s for s, _ in trace.alike if s < asker), default=asker)
            span = f"steps {start}–{asker}" if 0 < start < asker else f"step {asker}"
            sentences.append(
                f"{_ref(steps, asker)} asked for it, so the agent used a {noun} no step "
                f"created: check {span} for the step that should create {_q(trace.value)}"
                + (", or use one of the values that exist" if trace.alike else "")
            )
        if trace.closest is not None:
            sentences.append(f"closest: {_q(trace.closest[1])} ({_ref(steps, trace.closest[0])})")
    existed = [t for t in traces if t.produced_by]
    by_source: dict[int, list[Trace]] = {}
    for trace in existed:
        by_source.setdefault(_source(trace.produced_by), []).append(trace)
    for source, group in by_source.items():
        plain = [t.value for t in group if not t.key_lookup]
        if plain:
            verb = "has" if source == 0 else "produced"
            sentences.append(f"{_ref(steps, source)} {verb} {_and(plain)}")
        sentences.extend(_origin(steps, t) for t in group if t.key_lookup)
    if existed and not missing:
        what = "the value" if len(existed) == 1 else "these values"
        sentences.append(
            f"{what} existed before step {k}, so the failure is in {describe(step)} "
            f"itself or in what it expects ({error})"
        )
    if not sentences:
        sentences.append(_plain_fix(steps, step, k, leads, error))
    return _join(sentences)


def _blocked_fix(
    steps: Sequence[AnyStep], step: AnyStep, leads: Sequence[Lead], *, forked: bool = False
) -> str:
    """A side-effect tool the run refused to call live: a safety stop, not the tool failing.
    A fork blocks it whatever the golden holds: recording the golden again is no remedy."""
    from opswald.engine.context import ALLOW_SIDE_EFFECTS

    name = getattr(step, "tool", None) or describe(step)
    asked = next((lead for lead in leads if lead.why.startswith("asked for this call")), None)
    by = f" ({_ref(steps, asked.step)} asked for it)" if asked is not None else ""
    allow = ALLOW_SIDE_EFFECTS
    return (
        f"{name} was not run{by}: it is marked side_effects=True, and the run was live at "
        f"this step (a fork or a live run), where it would really act, so opswald blocked it; "
        f"nothing here points at {name} itself. To let it run: {allow['pytest']} (pytest), "
        f"{allow['cli']}, or {allow['api']}" + ("" if forked else "; or record the golden again")
    )


def _plain_fix(
    steps: Sequence[AnyStep], step: AnyStep, k: int, leads: Sequence[Lead], error: str
) -> str:
    """No value to trace: say which steps fed the failed one, and what they sent."""
    if isinstance(step, LLMCallStep):
        fed = _fed(steps, k)
        messages = step.input.messages or []
        size = len(json.dumps(messages, default=str, ensure_ascii=False))
        text = f"step {k}'s request carried {len(messages)} messages ({size:,} characters)"
        if fed:
            big = max(fed, key=lambda s: _size(s))
            text += (
                f"; the largest input came from {_ref(steps, big.step)} ({_size(big):,} characters)"
            )
        return f"{text}: if {error} is about the request, start there"
    asked = next((lead for lead in leads if lead.why.startswith("asked for this call")), None)
    if isinstance(step, ToolCallStep) and asked is not None:
        return (
            f"{_ref(steps, asked.step)} asked for {step.tool} with {_args_text(step.input)}; "
            f"every argument value appears in earlier steps, so look at {step.tool} itself "
            f"({error})"
        )
    return f"{describe(step)} failed with {error}; the steps above led to it"


def _args_text(value: Any) -> str:
    text = json.dumps(value, default=str, ensure_ascii=False)
    return _q(text, 80)


def _size(step: AnyStep) -> int:
    data = step.output if isinstance(step, ToolCallStep) else getattr(step, "content", None)
    return len(json.dumps(data, default=str, ensure_ascii=False))


def _divergence_fix(
    steps: Sequence[AnyStep],
    k: int,
    pairs: Sequence[tuple[str, Any, Any]],
    traces: Sequence[Trace],
    golden_sources: Mapping[str, Trace],
    finding: Mapping[str, Any],
) -> str:
    sentences: list[str] = []
    for trace in traces:
        golden_value = next((g for w, g, _ in pairs if w == trace.where), None)
        head = f"{trace.where}: the run passed {_q(trace.value)}"
        if golden_value is not None:
            head += f" where the golden has {_q(golden_value)}"
        sentences.append(head)
        sentences.append(_origin(steps, trace))
        source = golden_sources.get(trace.where)
        if source is not None:
            sentences.append(_golden_origin(steps, source, trace.where))
    if not sentences:
        hint = str(finding.get("suggestion") or "")
        sentences.append(hint or f"step {k} differs from the golden")
    return _join(sentences)


def _fork_modifications(fork: Mapping[str, Any] | None, k: int) -> dict[str, Any]:
    """The step modifications a fork applied at step `k` (none when it modified no step)."""
    if not fork or fork.get("step") != k:
        return {}
    mods = fork.get("modifications")
    return dict(mods) if isinstance(mods, Mapping) else {}


def _request_modifications(
    fork: Mapping[str, Any] | None, modifications: Mapping[str, Any] | None, k: int
) -> dict[str, Any]:
    """The request-level modifications (`model`, `temperature`, ...) in force at step `k`:
    opswald applies them to every request from where the run went live (`fork.step`)."""
    from opswald.engine.context import REQUEST_KEYS

    if not fork or not isinstance(modifications, Mapping):
        return {}
    start = fork.get("step")
    if not isinstance(start, int) or k < start:
        return {}
    return {key: modifications[key] for key in REQUEST_KEYS if key in modifications}


def _request_fix(
    k: int, start: int, pairs: Sequence[tuple[str, Any, Any]], requested: Mapping[str, Any]
) -> str:
    """A difference at or after the step a request-level modification applied from: the
    modification's doing (and the live model's answer to it), not the agent's."""
    given = ", ".join(f"{key}={_q(str(v))}" for key, v in requested.items())
    since = f"step {k}" if k == start else f"step {start} on (step {k} included)"
    sentences = [
        f"opswald applied {given} to the requests from {since}: the request changed by "
        "the modification, not something the agent did"
    ]
    own = [(w, g, a) for w, g, a in pairs if _last_key(w) in _REQUEST_FIELDS]
    for where, golden_value, actual_value in own[:MAX_SUSPECTS]:
        sentences.append(f"{where}: {_q(golden_value)} in the golden, {_q(actual_value)} now")
    rest = [w for w, _, _ in pairs if _last_key(w) not in _REQUEST_FIELDS]
    if rest:
        names = _and([w.split(" › ", 1)[-1] for w in rest[:MAX_SHOWN]])
        one = len(rest) == 1
        sentences.append(
            f"{names} {'comes' if one else 'come'} with the live answer to the changed "
            "request (its cost, usage and ids): the model's doing, not the agent's"
            if k == start
            else f"{names} {'differs' if one else 'differ'} as the run went on from the live "
            "answers to the changed requests, not from a value the agent made up"
        )
    sentences.append("the steps after it show how the agent went on with the live answers")
    return _join(sentences)


# the request fields a request-level modification sets (`max_tokens` under its API's names)
_REQUEST_FIELDS = frozenset(
    {"model", "temperature", "top_p", "max_tokens", "max_output_tokens", "seed"}
)


def _fork_fix(k: int, pairs: Sequence[tuple[str, Any, Any]], modified: Mapping[str, Any]) -> str:
    """The divergence at the step a fork modified: the change asked for, not a regression."""
    given = ", ".join(
        f"{key}={_q(v if isinstance(v, str) else json.dumps(v, ensure_ascii=False, default=str))}"
        for key, v in modified.items()
    )
    sentences = [
        f"step {k} is where the run was forked, with {given}: the change at this step is "
        "the fork's modification, not something the agent did"
    ]
    for where, golden_value, actual_value in pairs[:MAX_SUSPECTS]:
        if actual_value is not None and golden_value is not None:
            sentences.append(f"{where}: {_q(golden_value)} in the golden, {_q(actual_value)} now")
    sentences.append("the steps after it show how the agent went on from the changed step")
    return _join(sentences)


def _golden_origin(steps: Sequence[AnyStep], source: Trace, where: str) -> str:
    """Where the golden's value came from, and what to check in the agent."""
    if not (source.produced_by or source.asked_by):
        return f"the golden's {_q(source.value)} came from no earlier step either"
    origin = _source(source.produced_by or source.asked_by)
    if origin == 0:
        return f"the golden's {_q(source.value)} came from the session input"
    verb = "produced" if source.produced_by else "asked for"
    key = _last_key(where) or "the value"
    return (
        f"the golden's {_q(source.value)} came from {_ref(steps, origin)}, which {verb} it: "
        f"check how the agent builds `{key}` from step {origin} now"
    )


def _session_fix(steps: Sequence[AnyStep], traces: Sequence[Trace], error: str) -> str:
    sentences = [_origin(steps, trace) for trace in traces]
    for trace in traces:
        if trace.closest is not None:
            sentences.append(f"closest: {_q(trace.closest[1])} ({_ref(steps, trace.closest[0])})")
    if not sentences:
        if steps:
            last = steps[-1]
            sentences.append(
                f"the agent raised {error} after {_ref(steps, last.step)}; "
                "its output is what the agent read last"
            )
        else:
            sentences.append(f"the agent raised {error} before its first step")
    return _join(sentences)


def _join(sentences: Sequence[str]) -> str:
    text = ". ".join(s[0].upper() + s[1:] if i else s for i, s in enumerate(sentences) if s)
    return text + "."
