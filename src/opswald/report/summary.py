"""The terminal summary, built as data with a `lines` property (no pytest here)."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from opswald.diff import run_step
from opswald.pricing import milliseconds, money, money_decimals
from opswald.verdict import RUN_NUMBERED

ORDER = ("passed", "failed", "updated", "recorded", "skipped")
FAILING = ("failed", "error")  # "error": a malformed golden, which never ran

COST_DECIMALS = 12  # a total of costs is rounded to this: no float noise (0.0010990000000000002)
MS_DECIMALS = 3


def round_cost(value: float | None) -> float | None:
    """A cost total as reported: rounded to `COST_DECIMALS` (None stays unknown)."""
    return None if value is None or not math.isfinite(value) else round(value, COST_DECIMALS)


def total_cost(values: Iterable[float | None]) -> float | None:
    """The sum of the known costs, rounded; None when none is known."""
    known = [v for v in values if v is not None]
    return round_cost(math.fsum(known)) if known else None


@dataclass(frozen=True, kw_only=True)
class Summary:
    counts: dict[str, int] = field(default_factory=dict)
    notes: tuple[str, ...] = ()
    errors: tuple[str, ...] = ()  # what failed the run beside the goldens (a report unwritten)
    records: tuple[dict[str, Any], ...] = ()
    variant_order: tuple[str, ...] = ()
    verbose: int = 0
    width: int = 80

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    @property
    def lines(self) -> list[str]:
        malformed = self.counts.get("error", 0)
        failed = self.counts.get("failed", 0) + malformed
        parts = [
            f"{self.counts.get('passed', 0)} passed",
            f"{failed} failed" + (f" ({malformed} malformed)" if malformed else ""),
        ]
        parts += [f"{self.counts[k]} {k}" for k in ORDER[2:] if self.counts.get(k)]
        lines = ["goldens: " + ", ".join(parts)]
        if self.counts.get("updated"):
            n = self.counts["updated"]
            # a golden and a marker test replaying it may both update it: one golden
            files = {r.get("golden") for r in self.records if r.get("status") == "updated"}
            written = (
                f" ({len(files)} golden{'s' if len(files) != 1 else ''} written)"
                if 0 < len(files) < n
                else ""
            )
            them = "them" if n != 1 else "it"
            lines.append(
                f"{n} golden{'s' if n != 1 else ''} updated{written}: review {them} with git diff"
            )
        if self.counts.get("recorded"):
            n = self.counts["recorded"]
            lines.append(f"{n} golden{'s' if n != 1 else ''} recorded")
        lines.extend(f"note: {note}" for note in self.notes)
        lines.extend(f"error: {error}" for error in self.errors)
        if self.verbose < -1:  # -qq: only what asks for action (pytest drops its counts)
            return lines[1:]
        variants = any(r["variant"] for r in self.records)
        if self.verbose < 0:  # -q: the counts and notes, and a variants run's result
            if variants:
                lines.extend(variant_comparison(self.records, self.variant_order))
            return lines
        lines.extend(self.table())
        lines.extend(self.analysis())
        if variants:
            lines.extend(variant_comparison(self.records, self.variant_order))
        return lines

    def listed(self) -> list[dict[str, Any]]:
        """Failures and regressions by default; every golden with -v."""
        if self.verbose > 0:
            return list(self.records)
        return [r for r in self.records if r["status"] in FAILING or regressed(r)]

    def table(self) -> list[str]:
        rows = self.listed()
        if not rows:
            return []
        lines = []
        for r in rows:
            status = "REGRESSED" if r["status"] not in FAILING and regressed(r) else r["status"]
            lines.append(_fit(f"{status.upper():<9} {r['name']}", self.width))
            if r["status"] in ("error", "skipped"):  # it never ran: no figures (pytest says why)
                continue
            div = r.get("divergence")
            if div:
                where = f"{div.get('type') or ''} {div.get('name') or ''}".strip()
                kind = div.get("kind")
                label = "first divergence" if kind in _DIVERGING else f"failed ({kind})"
                # an extra call's, a blocked side effect's or a new snapshot's step is the
                # run's (a record from before `run_step`: by its kind)
                ours = div.get("run_step", kind in RUN_NUMBERED)
                at = run_step(div["step"]) if ours else f"step {div['step']}"
                lines.append(_fit(f"          {label}: {at} {where}".rstrip(), self.width))
            elif r["status"] in FAILING and r.get("error"):  # at no step: the agent raised
                said = str(r["error"]).splitlines()[0]
                lines.append(_fit(f"          failed: {said}", self.width))
            if r["steps"] or r["llm_calls"] or r["duration_ms"]:  # a run ran: its figures
                lines.append(_fit("          " + _figures_line(r), self.width))
        return lines

    def analysis(self) -> list[str]:
        rows = self.listed()
        ids = self._ids_by_name()

        def label(record: dict[str, Any]) -> str:
            return self._run_label(record, ids)

        slow = [(r, s) for r in rows for s in r.get("slow_steps") or []]
        costly = sorted(
            ((r, s) for r in rows for s in r.get("costly_steps") or []),
            key=lambda pair: -pair[1]["cost"],
        )[:5]
        lines = []
        if slow:
            lines.append("latency analysis (slow steps):")
            for r, s in slow:
                about = f" - {s['description']}" if s.get("description") else ""
                lines.append(
                    _fit(
                        f"  {label(r)}: {analysed_step(s)} {s['type']} "
                        f"{s.get('name') or ''} {milliseconds(s['duration_ms'])}{about}",
                        self.width,
                    )
                )
        if costly:
            lines.append("cost analysis (most expensive steps):")
            for r, s in costly:
                lines.append(
                    _fit(
                        f"  {label(r)}: {analysed_step(s)} {s['type']} "
                        f"{s.get('name') or ''} {money(s['cost'])}",
                        self.width,
                    )
                )
            totals = {
                label(r): shown_cost(r["cost"], unpriced(r)) for r in rows if r["cost"] is not None
            }
            lines.append(
                _fit(
                    "  totals: " + ", ".join(f"{g} {c}" for g, c in totals.items()),
                    self.width,
                )
            )
        return lines

    @staticmethod
    def _run_label(record: dict[str, Any], ids: dict[str, set[str]]) -> str:
        """A run in the analysis lines: the golden's name, its test id when other goldens
        share the name, then `[variant]` (the runs of one golden's variants and goldens
        of one name each keep their own line and total)."""
        golden = record["golden"]
        variant = record.get("variant")
        if len(ids.get(golden, ())) > 1 and record.get("name"):
            return str(record["name"])  # the test id, its variant's part as pytest put it
        base = golden_id(record) if len(ids.get(golden, ())) > 1 else golden
        return f"{base}[{variant}]" if variant else base

    def _ids_by_name(self) -> dict[str, set[str]]:
        ids: dict[str, set[str]] = {}
        for record in self.records:
            ids.setdefault(record["golden"], set()).add(golden_id(record))
        return ids


REGRESSION = 10.0  # percent more cost or tokens than recorded


def regressed(record: dict[str, Any]) -> bool:
    """More cost or tokens than the golden recorded, by more than REGRESSION percent."""
    delta = record.get("delta") or {}
    for key in ("cost", "total_tokens"):
        change = delta.get(key) or {}
        percent = change.get("percent")
        if percent is not None and percent > REGRESSION:
            return True
    return False


def _fit(line: str, width: int) -> str:
    return line if len(line) <= width else line[: width - 1] + "…"


_DIVERGING = ("mismatch", "extra_call", "unused_calls", "fork", "agent_error", None)
"""Finding kinds where the run left the golden's path (a budget, a breakpoint or a state
check fails at a step without a divergence)."""


def _delta(record: dict[str, Any], key: str) -> str:
    if record.get("completed") is False or (record.get("divergence") or {}).get("kind") in (
        "mismatch",
        "extra_call",
    ):
        return ""  # the run stopped early (diverged, crashed): its totals are not comparable
    change = (record.get("delta") or {}).get(key) or {}
    percent = change.get("percent")
    return f" ({percent:+.0f}%)" if percent is not None and percent != 0 else ""


def unpriced(record: dict[str, Any]) -> int:
    """How many of a run's model calls answered without a cost (0 in reports that predate
    the field): its `cost` is then the known part only."""
    return int(record.get("unpriced_calls") or 0)


def shown_cost(cost: float | None, unpriced_calls: int = 0) -> str:
    """A run's cost for people: `≥ $0.00021, 1 call unpriced` when some of its model calls
    have no cost (what is shown is the priced part), `cost n/a` when none has one."""
    if cost is None:
        return "cost n/a"
    if not unpriced_calls:
        return money(cost)
    return f"≥ {money(cost)}, {unpriced_calls} call{'s' if unpriced_calls != 1 else ''} unpriced"


def _figures_line(r: dict[str, Any]) -> str:
    n = unpriced(r)
    cost = shown_cost(r["cost"], n) + ("" if n else _delta(r, "cost"))
    ms = f"{milliseconds(r['duration_ms'])}{_delta(r, 'duration_ms')}" if r["duration_ms"] else ""
    parts = [
        f"{r['steps']} step{'s' if r['steps'] != 1 else ''} "
        f"({r['llm_calls']} llm, {r['tool_calls']} tool)",
        # model calls and not one token: none reported its usage (a hand-written golden)
        "no usage recorded"
        if r["llm_calls"] and not r["total_tokens"]
        else f"{r['total_tokens']} tok{_delta(r, 'total_tokens')}",
        cost,
        ms,
    ]
    return ", ".join(p for p in parts if p)


def record_of(
    result: Any,
    *,
    status: str,
    variant: str | None,
    nodeid: str = "",
    file: str = "",
    slow_ms: float = 5000.0,
    text: str = "",
) -> dict[str, Any]:
    """The JSON-safe figures of one golden's run (sent from xdist workers on the report).
    A failed run without a failing finding (a recorded stub that could not be written)
    takes its error and suggestion from its failure `text`."""
    from opswald.expect.budgets import figures

    actual = figures(result.actual)
    golden = figures(result.golden) if not result.golden.is_stub else None
    numbers = golden_numbers(result)
    first = result.verdict.first
    error, suggestion = (
        (first.message, first.suggestion) if first is not None else error_and_fix(text)
    )
    return {
        "name": nodeid,
        "file": file,
        "golden": result.golden.name or "",
        "variant": variant,
        "status": status,
        "steps": actual.steps,
        "llm_calls": actual.llm_calls,
        "tool_calls": actual.tool_calls,
        "input_tokens": actual.input_tokens,
        "output_tokens": actual.output_tokens,
        "total_tokens": actual.total_tokens,
        "cost": round_cost(actual.cost),
        "unpriced_calls": actual.unpriced_calls,
        "duration_ms": round(actual.duration_ms, MS_DECIMALS),
        "delta": _deltas(actual, golden),
        "divergence": _divergence(first),
        "error": error if status == "failed" else None,
        "suggestion": suggestion if status == "failed" else None,
        "fix": fix_of(text) if status == "failed" else None,
        "still_failing": result.golden.error is not None and result.actual.error is not None,
        "completed": completed(result.actual, result.golden),
        "slow_steps": _slow_steps(result.actual, slow_ms, numbers),
        "costly_steps": _costly_steps(result.actual, numbers),
    }


def error_and_fix(text: str) -> tuple[str | None, str | None]:
    """A failure message's error (its first line) and suggestion (its `fix:` line without
    the prefix, else its last line)."""
    lines = [line for line in text.strip().splitlines() if line.strip()]
    suggestion = fix_of(text)
    if suggestion is None and len(lines) > 1:
        suggestion = lines[-1]
    return (lines[0] if lines else None), suggestion


def fix_of(text: str) -> str | None:
    """A failure message's `fix:` line without the prefix (its last, after the first
    line), or None when it has none."""
    lines = [line for line in text.strip().splitlines() if line.strip()]
    fixes = [line for line in lines[1:] if line.startswith("fix:")]
    return fixes[-1].removeprefix("fix:").strip() if fixes else None


def failure_record(
    *,
    name: str,
    file: str,
    golden: str,
    variant: str | None,
    text: str,
    status: str = "failed",
    stopped: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The record of a golden that failed without a judged run: not recorded yet, no
    adapter, a fork it cannot make, a timeout, a process that died, a malformed file.

    The message's first line is the error; its `fix:` line (without the prefix) is the
    suggestion. `stopped` says how far a run that was stopped got (`Stopped.data()` of
    opswald.goldenrun): the step it was at, and the figures of the steps it finished.
    """
    error, suggestion = error_and_fix(text)
    if status == "error" and fix_of(text) is None:
        # a malformed golden: a line for each of its problems, no fix
        error, suggestion = text.strip() or None, None
    if suggestion is None and status == "error":
        suggestion = (
            f"correct {file} where the error points (`opswald validate {file}` checks it), "
            "or restore it from version control"
        )
    ran: list[dict[str, Any]] = list((stopped or {}).get("ran") or ())
    llm = [s for s in ran if s.get("type") == "llm_call"]
    at = (stopped or {}).get("step")
    return {
        "name": name,
        "file": file,
        "golden": golden,
        "variant": variant,
        "status": status,
        "steps": len(ran),
        "llm_calls": len(llm),
        "tool_calls": sum(s.get("type") == "tool_call" for s in ran),
        "input_tokens": sum(s.get("input_tokens") or 0 for s in llm),
        "output_tokens": sum(s.get("output_tokens") or 0 for s in llm),
        "total_tokens": sum(s.get("total_tokens") or 0 for s in llm),
        "cost": total_cost(s.get("cost") for s in llm),
        "unpriced_calls": sum(s.get("cost") is None and not s.get("failed") for s in llm),
        "duration_ms": None,  # unknown: the run did not end (or never started)
        "delta": None,
        "divergence": {
            "step": at,
            "type": (stopped or {}).get("type"),
            "name": (stopped or {}).get("name"),
            "kind": (stopped or {}).get("kind"),
        }
        if at is not None
        else None,
        "error": error,
        "suggestion": suggestion,
        "fix": fix_of(text),
        "still_failing": False,
        "completed": False,  # it did not run to its end (or never started)
        "slow_steps": [],
        "costly_steps": [],
    }


REFUSED = ("ReplayDivergence", "SideEffectBlocked")
"""The error types of a call the engine refused, which stops the run there."""


def completed(actual: Any, golden: Any) -> bool:
    """Whether a run went to its end: no call of it was refused (a divergence, a blocked
    side effect) and the agent did not raise where the golden did not. A run cut short has
    fewer calls, tokens and cost than one that finished: its figures do not compare."""
    if any(s.error is not None and s.error.type in REFUSED for s in actual.step_list):
        return False
    return actual.error is None or golden.error is not None


def golden_numbers(result: Any) -> dict[int, int] | None:
    """The golden step each step of the run stands beside (by the run's number), as the
    viewer and `opswald diff` line them up (a served call beside the step it answered
    as); None for a stub recorded, whose run's numbers are the new golden's."""
    if result.golden.is_stub:
        return None
    from opswald.pairing import step_pairs

    rows = step_pairs(result.golden.step_list, result.actual.step_list, result.matched)
    return {a: g for g, a in rows if g and a}


def _step_ref(step: Any, numbers: dict[int, int] | None) -> dict[str, Any]:
    """A step of the run in the analysis: by the golden's number where it stands beside a
    golden step, else by the run's (`run_step`: an extra call, a new snapshot)."""
    name = getattr(step, "tool", None) or getattr(step, "model", None)
    golden = step.step if numbers is None else numbers.get(step.step)
    return {
        "step": golden or step.step,
        "run_step": golden is None,
        "type": step.type,
        "name": name,
        "description": step.description,
    }


def _slow_steps(
    session: Any, slow_ms: float, numbers: dict[int, int] | None
) -> list[dict[str, Any]]:
    return [
        {**_step_ref(s, numbers), "duration_ms": s.duration_ms}
        for s in session.step_list
        if s.duration_ms is not None and s.duration_ms > slow_ms
    ]


def _costly_steps(
    session: Any, numbers: dict[int, int] | None, top: int = 3
) -> list[dict[str, Any]]:
    priced = [s for s in session.step_list if getattr(s, "cost", None)]
    priced.sort(key=lambda s: -s.cost)
    return [{**_step_ref(s, numbers), "cost": s.cost} for s in priced[:top]]


def analysed_step(ref: dict[str, Any]) -> str:
    """`step 3` (the golden's number) or `step 4 of this run` (`run_step`: a step the
    golden does not have; a record from before the flag: its number as it is)."""
    return run_step(ref["step"]) if ref.get("run_step") else f"step {ref['step']}"


def _deltas(actual: Any, golden: Any) -> dict[str, Any] | None:
    """Changes against the golden's recorded figures (absolute and relative)."""
    if golden is None:
        return None
    out: dict[str, Any] = {}
    for key in ("cost", "total_tokens", "duration_ms", "steps"):
        now, before = getattr(actual, key), getattr(golden, key)
        if key == "cost" and (actual.unpriced_calls or golden.unpriced_calls):
            now = None  # a lower bound: its change would say nothing
        if now is None or before is None:
            out[key] = None
            continue
        out[key] = {
            "change": round(now - before, 10),
            "percent": round((now - before) / before * 100, 1) if before else None,
        }
    return out


def _divergence(first: Any) -> dict[str, Any] | None:
    if first is None or first.step is None:
        return None
    return {
        "step": first.step,
        "type": first.step_type,
        "name": first.name,
        "kind": first.kind,
        "run_step": first.numbered_in_run,  # `step` is the run's number, not the golden's
    }


def _mean_known(values: Iterable[float | None]) -> float | None:
    """The mean of the known values (a golden that never ran has no duration): None when
    none is known."""
    known = [v for v in values if v is not None]
    return round(math.fsum(known) / len(known), MS_DECIMALS) if known else None


def _completed_row(row: dict[str, Any]) -> bool:
    """A record's `completed`; a report written before it had the field: a passing run."""
    done = row.get("completed")
    return bool(done) if done is not None else row["status"] in ("passed", "updated", "recorded")


_UNRAN = ("error", "skipped")  # malformed goldens never ran, skipped ones were not run


def golden_id(record: dict[str, Any]) -> str:
    """The golden a record is a run of, as a test id: its node id without the variant part
    (`goldens/x.golden.yaml::name[A]` is `goldens/x.golden.yaml::name`). Two golden files may
    share a `name`; they are two goldens."""
    nodeid, variant = record.get("name") or "", record.get("variant")
    if nodeid and variant:
        nodeid = name_without_variant(nodeid, variant)
    return nodeid or f"{record.get('file') or ''}::{record['golden']}"


def name_without_variant(name: str, variant: str) -> str:
    """A run's test name or id without its variant's part: `weather[A]` is `weather`, and a
    marker test of its own parameters, `test_x[1-A]`, is `test_x[1]` (the variant's id is
    the last)."""
    if name.endswith(f"[{variant}]"):
        return name.removesuffix(f"[{variant}]")
    return name.removesuffix(f"-{variant}]") + "]" if name.endswith(f"-{variant}]") else name


def _by_golden(records: tuple[dict[str, Any], ...]) -> dict[str, list[dict[str, Any]]]:
    """The records grouped by golden (`golden_id`), in the order they come."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for r in records:
        groups.setdefault(golden_id(r), []).append(r)
    return groups


def variant_stats(
    records: tuple[dict[str, Any], ...], order: tuple[str, ...] = ()
) -> dict[str, Any]:
    """Per variant: pass rate, cost, tokens, latency; per golden: who passed, and which of
    those was cheapest and fastest.

    A variant's cost, tokens and duration cover only its runs that completed (`completed`
    of them): a run cut short at a divergence, a blocked side effect or an error made fewer
    calls, and would make a failing variant look cheaper and faster. With none completed
    they are None."""
    ok_status = ("passed", "updated", "recorded")
    by_variant: dict[str, list[dict[str, Any]]] = {name: [] for name in order}
    records = _compared(records)
    for r in records:
        by_variant.setdefault(r["variant"], []).append(r)
    variants = []
    for name, rows in by_variant.items():
        if not rows:
            continue
        done = [r for r in rows if _completed_row(r)]
        costs = [r["cost"] for r in done if r["cost"] is not None]
        # calls without a cost make the totals lower bounds, over every complete run
        missing = sum(unpriced(r) for r in done)
        total = total_cost(costs)
        ok = sum(r["status"] in ok_status for r in rows)
        variants.append(
            {
                "variant": name,
                "passed": ok,
                "total": len(rows),
                "pass_rate": ok / len(rows),
                "completed": len(done),
                "mean_cost": (
                    round_cost(total / (len(done) if missing else len(costs)))
                    if total is not None
                    else None
                ),
                "total_cost": total,
                "unpriced_calls": missing,
                "total_tokens": sum(r["total_tokens"] for r in done) if done else None,
                "mean_duration_ms": _mean_known(r["duration_ms"] for r in done),
            }
        )
    goldens = []
    for test, rows in _by_golden(records).items():
        # only runs that passed are ranked: a failed run may have been cut short (a blocked
        # side effect, a divergence, an error), and of course cost less and took less time
        passed = [r for r in rows if r["status"] in ok_status]
        timed = [r for r in passed if r["duration_ms"] is not None]
        goldens.append(
            {
                "golden": rows[0]["golden"],
                "file": rows[0].get("file", ""),
                # the test id without the variant: marker tests of one golden in one file
                # share its name and file
                "test": test,
                "passed": [r["variant"] for r in passed],
                "cheapest": _cheapest(passed),
                "fastest": min(timed, key=lambda r: r["duration_ms"])["variant"] if timed else None,
            }
        )
    return {"variants": variants, "goldens": goldens}


def _cheapest(runs: list[dict[str, Any]]) -> str | None:
    """The variant of the cheapest run, when it is known to be: among the runs whose whole
    cost is known, and cheaper than what every other run cost at least (a run with calls
    without a cost may have cost anything from its priced part up)."""
    priced = [r for r in runs if r["cost"] is not None and not unpriced(r)]
    if not priced:
        return None
    best = min(priced, key=lambda r: r["cost"])
    if sum(r["cost"] == best["cost"] for r in priced) > 1:  # a tie: none is the cheapest
        return None
    unknown = [r for r in runs if r["cost"] is None or unpriced(r)]
    if any((r["cost"] or 0.0) <= best["cost"] for r in unknown):
        return None
    return str(best["variant"])


def _compared(records: tuple[dict[str, Any], ...]) -> tuple[dict[str, Any], ...]:
    """The runs the comparison compares: those made under a variant (every golden and
    marker test of a variants run is), not one that never ran (malformed, skipped)."""
    return tuple(r for r in records if r["status"] not in _UNRAN and r["variant"])


def variant_comparison(
    records: tuple[dict[str, Any], ...], order: tuple[str, ...] = ()
) -> list[str]:
    """The variant comparison as summary lines."""
    stats = variant_stats(records, order)
    means = _dollar_column("mean cost", [(v["mean_cost"], v) for v in stats["variants"]])
    totals = _dollar_column("total cost", [(v["total_cost"], v) for v in stats["variants"]])
    lines = [
        "variants:",
        f"  {'variant':<12} {'passed':>9} {'complete':>8} {means[0]} {totals[0]}"
        f" {'tokens':>8} {'mean ms':>9}",
    ]
    for v, mean, total in zip(stats["variants"], means[1:], totals[1:], strict=True):
        ms, tokens = v["mean_duration_ms"], v["total_tokens"]
        lines.append(
            f"  {v['variant']:<12} {v['passed']:>4}/{v['total']:<4} {v['completed']:>8}"
            f" {mean} {total}"
            f" {tokens if tokens is not None else '-':>8}"
            f" {milliseconds(ms).removesuffix(' ms') if ms is not None else '-':>9}"
        )
    if any(v["completed"] < v["total"] for v in stats["variants"]):
        lines.append("  cost, tokens and ms: complete runs only (a run cut short at a")
        lines.append("  divergence, a blocked side effect or an error would cost less)")
    for v in stats["variants"]:
        if v["unpriced_calls"]:
            n = v["unpriced_calls"]
            # its row shows `≥$` where part of its cost is known, `-` where none is
            known = v["total_cost"] is not None
            lines.append(
                f"  {'≥ a lower bound' if known else 'cost unknown'}: {v['variant']} made {n} "
                f"model call{'s' if n != 1 else ''} without a cost"
            )
    lines.append("  per golden:")
    # a name that several goldens share is shown as each one's test id (file::name)
    tests = list(_by_golden(_compared(records)))
    named = Counter(g["golden"] for g in stats["goldens"])
    for g, test in zip(stats["goldens"], tests, strict=True):
        label = g["golden"] if named[g["golden"]] == 1 else test
        lines.append(
            f"    {label}: passed {', '.join(g['passed']) or 'none'}; "
            f"cheapest {g['cheapest'] or '-'}; fastest {g['fastest'] or '-'}"
        )
    return lines


def _dollar_column(heading: str, cells: list[tuple[float | None, dict[str, Any]]]) -> list[str]:
    """A column of costs, heading first, right-aligned: every cost with the decimals its
    smallest needs for two significant digits (as `money` shows it), so that a small cost
    does not read as `$0.0000` and the rows compare digit by digit. A variant whose runs
    made calls without a cost shows a lower bound (`≥$`)."""
    known = [value for value, _ in cells if value is not None]
    decimals = max((money_decimals(value) for value in known), default=4)
    numbers = [f"{value:.{decimals}f}" if value is not None else "" for value, _ in cells]
    width = max([10, *(len(n) + 1 for n in numbers)])  # the `$` at the same place in all
    shown = []
    for (value, variant), number in zip(cells, numbers, strict=True):
        if value is None:
            shown.append("-")
        elif variant.get("unpriced_calls"):
            shown.append(f"≥${number:>{width - 1}}")
        else:
            shown.append(f"${number:>{width}}")
    column = max([11, *(len(cell) for cell in shown)])
    return [f"{heading:>{column}}", *(f"{cell:>{column}}" for cell in shown)]
