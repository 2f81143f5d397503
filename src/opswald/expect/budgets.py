"""Cost, token, latency and count budgets (`expect.budgets`)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Literal

from opswald.pricing import money
from opswald.session import (
    BUDGET_ABSOLUTE,
    BUDGET_FORMS,
    BUDGET_RELATIVE,
    STREAM_CLOSED_EARLY,
    STREAM_CONNECTION_FAILED,
    BudgetsExpect,
    LLMCallStep,
    Session,
    ToolCallStep,
    cut_short,
)
from opswald.verdict import Finding

__all__ = [
    "Figures",
    "Limit",
    "check_budgets",
    "figures",
    "no_cost_reason",
    "parse_budget",
    "unknown_cost",
]


@dataclass(frozen=True, kw_only=True)
class Figures:
    """What a session cost: the numbers budgets are checked against."""

    # The sum of the calls' known costs; None when calls answered and none has a cost. With
    # `unpriced_calls` it is a lower bound: the cost of those calls is unknown.
    cost: float | None
    input_tokens: int
    output_tokens: int
    total_tokens: int
    duration_ms: float
    llm_calls: int
    tool_calls: int
    steps: int
    unpriced_calls: int = 0  # model calls that answered without a cost (unknown, not $0)
    # of those, the steps whose stream was cut short, and how (`closed early`, ...)
    cut_streams: tuple[tuple[int, str], ...] = ()
    # model calls that answered without a usage (a hand-written golden's, a stream cut
    # short): their tokens are unknown, and with any of them the token counts a lower bound
    calls_without_usage: int = 0
    # why the unpriced calls that were not cut short have no cost: the steps whose response
    # reported no usage (nothing to price), and those of a model with no price, with it
    no_usage: tuple[int, ...] = ()
    no_price: tuple[tuple[int, str | None], ...] = ()
    # False when neither the session nor any step records a time (a hand-written golden):
    # `duration_ms` is then 0 for want of a figure, not a measured 0
    duration_recorded: bool = True

    @property
    def usage_known(self) -> bool:
        """Whether the token counts are the whole run's (every answered call has a usage)."""
        return not self.calls_without_usage

    @property
    def cost_known(self) -> bool:
        """Whether `cost` is the whole run's cost (every answered call has one)."""
        return self.cost is not None and not self.unpriced_calls


def no_cost_reason(step: LLMCallStep, *, recorded: bool = True) -> str | None:
    """Why a model call that answered has no cost, in a few words (None: it has one, or it
    failed, which costs $0): `stream cut short`, `no usage reported`, `no price for its
    model` (when opswald `recorded` it: it prices the usage it records where it can),
    `no cost written` (a golden written by hand or imported)."""
    if step.cost is not None or (step.error is not None and cut_short(step) is None):
        return None
    if cut_short(step) is not None:
        return "stream cut short"
    if step.usage is None:
        return "no usage reported"
    return "no price for its model" if recorded else "no cost written"


def figures(session: Session) -> Figures:
    """Sum a session's cost, tokens and time, and count its calls."""
    steps = session.step_list
    llm = [s for s in steps if isinstance(s, LLMCallStep)]
    costs = [s.cost for s in llm if s.cost is not None]
    # a call that failed without a cost cost nothing; one that answered without one is
    # unknown, and so is a stream cut short, its connection failed or not: what the
    # provider counts of it is not known
    cut = tuple((s.step, how) for s in llm if s.cost is None and (how := cut_short(s)))
    answered = [s for s in llm if s.error is None or cut_short(s) is not None]
    unpriced = sum(s.cost is None for s in answered)
    costless = [s for s in answered if s.cost is None and cut_short(s) is None]
    if not costs and not unpriced:
        costs = [0.0]  # no model call answered (none made, or each one failed): $0
    usages = [s.usage for s in llm if s.usage is not None]
    recorded = session.metadata.get("duration_ms")
    timed = isinstance(recorded, int | float) and not isinstance(recorded, bool)
    if isinstance(recorded, int | float) and not isinstance(recorded, bool):
        try:
            duration = float(recorded)
        except OverflowError:  # an absurd integer in hand-written metadata
            duration = float("inf")
    else:
        duration = sum(s.duration_ms or 0.0 for s in steps)
    return Figures(
        cost=sum(costs) if costs else None,
        input_tokens=sum(u.input_tokens or 0 for u in usages),
        output_tokens=sum(u.output_tokens or 0 for u in usages),
        total_tokens=sum(u.total() for u in usages),
        duration_ms=duration,
        llm_calls=len(llm),
        tool_calls=sum(isinstance(s, ToolCallStep) for s in steps),
        steps=len(steps),
        unpriced_calls=unpriced,
        cut_streams=cut,
        calls_without_usage=sum(s.usage is None for s in answered),
        no_usage=tuple(s.step for s in costless if s.usage is None),
        no_price=tuple((s.step, s.model) for s in costless if s.usage is not None),
        duration_recorded=timed or any(s.duration_ms is not None for s in steps),
    )


@dataclass(frozen=True, kw_only=True)
class Limit:
    """A parsed budget: absolute (`percent` None) or relative to the golden's figure."""

    value: float | None = None  # the absolute limit
    percent: float | None = None  # +20 for "+20%", -10 for "-10%"
    text: str = ""


_ABSOLUTE, _RELATIVE, FORMS = BUDGET_ABSOLUTE, BUDGET_RELATIVE, BUDGET_FORMS


def parse_budget(budget: float | int | str) -> Limit | None:
    """The limit a budget sets, or None when a budget cannot be read (loading a golden
    refuses those; a spec built without validation may still hold one)."""
    if isinstance(budget, int | float) and not isinstance(budget, bool):
        limit = Limit(value=_float(budget), text=str(budget))
    elif not isinstance(budget, str):
        return None
    elif m := _ABSOLUTE.match(text := budget.strip()):
        limit = Limit(value=float(m.group(1)), text=text)
    elif m := _RELATIVE.match(text):
        sign = -1.0 if m.group(1) == "-" else 1.0
        limit = Limit(percent=sign * float(m.group(2)), text=f"{m.group(1)}{m.group(2)}%")
    else:
        return None
    number = limit.value if limit.percent is None else limit.percent
    # an infinite limit, or +inf% of a recorded 0 (NaN), would compare with nothing
    return limit if number is not None and math.isfinite(number) else None


def _float(number: float | int) -> float:
    try:
        return float(number)
    except OverflowError:  # an int of 400 digits
        return math.inf


Kind = Literal["money", "ms", "count"]


def _kind(name: str) -> Kind:
    return "money" if name == "cost" else "ms" if name == "duration_ms" else "count"


def _show(value: float, kind: Kind) -> str:
    if kind == "money":
        return money(value)
    if kind == "ms":  # a tenth of a ms, or two significant digits below that
        return f"{round(value, 1):g} ms" if abs(value) >= 0.1 or not value else f"{value:.2g} ms"
    return str(int(value // 1))  # counts are whole; flooring a limit keeps `<=` exact


def _apart(value: float, bound: float, kind: Kind) -> tuple[str, str]:
    """A value over its limit and the limit, with as many digits as it takes for them not to
    read the same (`$0.000719 > $0.000718`, not `$0.00072 > $0.00072`)."""
    shown, limit = _show(value, kind), _bound(bound, kind)
    for digits in range(2, 16):
        if shown != limit or kind == "count":
            break
        if kind == "money":
            shown, limit = f"${value:.{digits}g}", f"${bound:.{digits}g}"
        else:
            shown, limit = f"{value:.{digits}g} ms", f"{bound:.{digits}g} ms"
    return shown, limit


def _bound(bound: float, kind: Kind) -> str:
    """A limit as it is: a relative limit on a count may fall between whole numbers
    (-10% of 5 tokens is 4.5, not 4)."""
    if kind == "count" and bound != int(bound):
        return f"{bound:.2f}".rstrip("0").rstrip(".")
    return _show(bound, kind)


def check_budgets(
    spec: BudgetsExpect,
    actual: Figures,
    golden: Figures | None,
    *,
    partial: bool = False,
    update: str = "--opswald-update",
    rerecord: str | None = None,
) -> list[Finding]:
    """One failing `budget` finding per budget exceeded or impossible to check. For a
    `partial` run (stopped at a divergence) only what was already exceeded is reported:
    that its figures are incomplete is no news. `update` names how a golden is updated
    where the run was started (a hint says an update does not bless a violation);
    `rerecord`, how it is recorded again, is given when the run was served recorded model
    calls, which keep their recorded cost: a price configured since needs a new recording."""
    out: list[Finding] = []
    for field in fields(Figures):
        budget = getattr(spec, field.name, None)
        if budget is None:
            continue
        finding = _check(field.name, budget, actual, golden, update, rerecord)
        if finding is not None and (not partial or finding.message.startswith(EXCEEDED)):
            out.append(finding)
    return out


EXCEEDED = "budget exceeded: "
UNKNOWN_COST = "budget cost cannot be checked: "


CUT_SHORT = "the cost of an answer cut short is not known"


def cut_short_cost(finding: Finding) -> bool:
    """A cost budget unknown only for streams cut short: no price configured would help."""
    return unknown_cost(finding) and (finding.suggestion or "").startswith(_CUT_HINT)


def no_usage_cost(finding: Finding) -> bool:
    """A cost budget unknown only for calls that reported no usage: a price would not help."""
    return unknown_cost(finding) and (finding.suggestion or "").startswith(_USAGE_HINT)


def unknown_cost(finding: Finding) -> bool:
    """A cost budget the run could not check: no step of it reports a cost."""
    return finding.kind == "budget" and finding.message.startswith(UNKNOWN_COST)


def _check(
    name: str,
    budget: float | int | str,
    actual: Figures,
    golden: Figures | None,
    update: str,
    rerecord: str | None = None,
) -> Finding | None:
    kind = _kind(name)
    limit = parse_budget(budget)
    if limit is None:
        return _budget(f"budget {name}: cannot read {budget!r}", f"write {FORMS}", name)
    value = getattr(actual, name)
    unpriced = actual.unpriced_calls if name == "cost" else 0
    if value is None:
        return _unpriced(name, actual, rerecord)
    note = ""
    if limit.percent is not None:
        recorded = None if golden is None else getattr(golden, name)
        if golden is not None and name == "cost" and golden.unpriced_calls:
            recorded = None  # a lower bound: a limit relative to it would be one too
        if golden is not None and name in _TOKENS and golden.calls_without_usage:
            recorded = None  # no count, or a lower bound: +N% of a hand-written 0 is 0
        if name == "duration_ms" and not recorded:
            recorded = None  # a hand-written golden records no time: +N% of 0 is 0
        if recorded is None:
            return _budget(
                f"budget {name} {limit.text} has no recorded figure to compare with"
                + _why_unrecorded(name, golden),
                f"record the golden again so it has {_a_figure(name)}, or use an absolute budget",
                name,
            )
        bound = recorded * (1 + limit.percent / 100)
        note = f" (limit {limit.text} of recorded {_show(recorded, kind)})"
    else:
        assert limit.value is not None
        bound = limit.value
    if value <= bound + abs(bound) * 1e-9:
        # the priced part is within the limit; the calls without a cost may not be
        return _unpriced(name, actual, rerecord) if unpriced else None
    shown, limit_shown = _apart(value, bound, kind)
    if unpriced:  # the priced part alone is over: the whole run is all the more
        shown = f"at least {shown} ({_calls(unpriced)} without a cost)"
    return _budget(
        f"{EXCEEDED}{name} {shown} > {limit_shown}{note}",
        f"if this is intended, raise expect.budgets.{name}; "
        f"{update} never blesses a budget violation",
        name=name,
    )


def _a_figure(name: str) -> str:
    return "a usage on its model calls" if name in _TOKENS else f"a {name}"


def _calls(n: int) -> str:
    return f"{n} model call{'s' if n != 1 else ''}"


def _unpriced(name: str, actual: Figures, rerecord: str | None = None) -> Finding:
    """A cost budget that cannot be checked: some (or all) of the run's model calls that
    answered have no cost, and the run's cost is unknown, not the sum of the rest."""
    n, of = actual.unpriced_calls, actual.llm_calls
    what = (
        "no step of the run reports a cost"
        if actual.cost is None
        else f"{n} of the run's {of} model calls {'has' if n == 1 else 'have'} no cost: it "
        f"cost at least {money(actual.cost)}, how much more is unknown"
    )
    said = _why_no_cost(actual)
    if said:
        what += f" ({said})"
    again = f"record the golden again with {rerecord}" if rerecord else "record it again"
    if len(actual.cut_streams) == n:  # no price helps: the provider's count is unknown
        # nor does a token budget: it counts the cut step's unknown tokens as 0
        return _budget(
            f"budget {name} cannot be checked: {what}",
            f"{_CUT_HINT} whatever the prices: remove the cost budget, or {again} once the "
            "agent reads the stream to its end",
            name,
        )
    if not actual.no_price:  # nothing a price could apply to: the usage is missing
        return _budget(
            f"budget {name} cannot be checked: {what}",
            f"{_USAGE_HINT}: have the model client report usage (an OpenAI stream sends it "
            "with stream_options={'include_usage': True}; an @opswald.llm function returns "
            f"`usage` or `cost`), then {again}; or remove the cost budget",
            name,
        )
    configure = "configure prices for the model (or have the agent report cost)"
    if rerecord is not None:  # served calls keep the cost they were recorded with
        configure += (
            f", then record the golden again with {rerecord} (a replay, and an update, "
            "keep each recorded call's cost)"
        )
    return _budget(
        f"budget {name} cannot be checked: {what}", f"{configure}, or remove the cost budget", name
    )


_CUT_HINT = "a stream cut short has no known cost"
_USAGE_HINT = "a call without usage has no cost to work out"


def _why_no_cost(actual: Figures) -> str:
    """Why the run's calls without a cost have none, by step: no price for the model, no
    usage to price, or a stream cut short (`step 4: its stream was closed early`)."""
    parts = []
    models: dict[str | None, list[int]] = {}
    for step, model in actual.no_price:
        models.setdefault(model, []).append(step)
    for model, steps in models.items():
        parts.append(
            f"{_steps(steps)}: no price for {f'model {model!r}' if model else 'its model'}"
        )
    if actual.no_usage:
        their = "its response" if len(actual.no_usage) == 1 else "their responses"
        parts.append(f"{_steps(actual.no_usage)}: {their} reported no usage to price")
    if actual.cut_streams:
        cut = "; ".join(f"step {n}: {_cut_stream(how)}" for n, how in actual.cut_streams)
        parts.append(f"{cut}: {CUT_SHORT}")
    return "; ".join(parts)


def _steps(numbers: Sequence[int], shown: int = 5) -> str:
    """`step 3`, `steps 1 and 6`, `steps 1, 2, 3, 4, 5 and 7 more`."""
    if len(numbers) == 1:
        return f"step {numbers[0]}"
    head = ", ".join(str(n) for n in numbers[: min(shown, len(numbers) - 1)])
    rest = len(numbers) - min(shown, len(numbers) - 1)
    tail = str(numbers[-1]) if rest == 1 else f"{rest} more"
    return f"steps {head} and {tail}"


def _cut_stream(how: str) -> str:
    """What became of a stream cut short (STREAM_CUT)."""
    if how == STREAM_CONNECTION_FAILED:
        return "its stream's connection failed mid-way"
    if how == STREAM_CLOSED_EARLY:
        return "its stream was closed early"
    return f"its stream was cut short ({how})"


def _why_unrecorded(name: str, golden: Figures | None) -> str:
    if golden is None:
        return ""
    if name == "cost" and golden.unpriced_calls:
        n = golden.unpriced_calls
        return f" (the golden's cost is incomplete: {_calls(n)} without a cost)"
    if name == "duration_ms":
        return " (the golden records no duration)"
    if name in _TOKENS and golden.calls_without_usage:
        n = golden.calls_without_usage
        if n == golden.llm_calls or not golden.total_tokens:
            return " (the golden records no usage)"
        return f" (the golden's token count is incomplete: {_calls(n)} without usage)"
    return ""


_TOKENS = ("input_tokens", "output_tokens", "total_tokens")


def _budget(message: str, hint: str, name: str | None = None) -> Finding:
    return Finding(kind="budget", message=message, suggestion=hint, name=name)
