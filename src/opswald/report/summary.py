"""The terminal summary, built as data with a `lines` property (no pytest here)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

ORDER = ("passed", "failed", "updated", "recorded")


@dataclass(frozen=True, kw_only=True)
class Summary:
    counts: dict[str, int] = field(default_factory=dict)
    notes: tuple[str, ...] = ()
    records: tuple[dict[str, Any], ...] = ()
    variant_order: tuple[str, ...] = ()

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    @property
    def lines(self) -> list[str]:
        parts = [f"{self.counts.get(k, 0)} {k}" for k in ORDER[:2]]
        parts += [f"{self.counts[k]} {k}" for k in ORDER[2:] if self.counts.get(k)]
        lines = ["goldens: " + ", ".join(parts)]
        if self.counts.get("updated"):
            n = self.counts["updated"]
            lines.append(f"{n} golden{'s' if n != 1 else ''} updated: review them with git diff")
        if self.counts.get("recorded"):
            n = self.counts["recorded"]
            lines.append(f"{n} golden{'s' if n != 1 else ''} recorded")
        lines.extend(f"note: {note}" for note in self.notes)
        if any(r["variant"] for r in self.records):
            lines.extend(variant_comparison(self.records, self.variant_order))
        return lines


def record_of(
    result: Any, *, status: str, variant: str | None, nodeid: str = "", file: str = ""
) -> dict[str, Any]:
    """The JSON-safe figures of one golden's run (sent from xdist workers on the report)."""
    from opswald.expect.budgets import figures

    actual = figures(result.actual)
    golden = figures(result.golden) if not result.golden.is_stub else None
    first = result.verdict.first
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
        "cost": actual.cost,
        "duration_ms": round(actual.duration_ms, 3),
        "delta": _deltas(actual, golden),
        "divergence": _divergence(first),
        "error": first.message if first is not None and status == "failed" else None,
        "suggestion": first.suggestion if first is not None and status == "failed" else None,
        "still_failing": result.golden.error is not None and result.actual.error is not None,
    }


def _deltas(actual: Any, golden: Any) -> dict[str, Any] | None:
    """Changes against the golden's recorded figures (absolute and relative)."""
    if golden is None:
        return None
    out: dict[str, Any] = {}
    for key in ("cost", "total_tokens", "duration_ms", "steps"):
        now, before = getattr(actual, key), getattr(golden, key)
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
    return {"step": first.step, "type": first.step_type, "name": first.name, "kind": first.kind}


def _mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else 0.0


def variant_stats(
    records: tuple[dict[str, Any], ...], order: tuple[str, ...] = ()
) -> dict[str, Any]:
    """Per variant: pass rate, cost, tokens, latency; per golden: who passed, cheaper, faster."""
    ok_status = ("passed", "updated", "recorded")
    by_variant: dict[str, list[dict[str, Any]]] = {name: [] for name in order}
    for r in records:
        by_variant.setdefault(r["variant"] or "-", []).append(r)
    variants = []
    for name, rows in by_variant.items():
        if not rows:
            continue
        costs = [r["cost"] for r in rows if r["cost"] is not None]
        ok = sum(r["status"] in ok_status for r in rows)
        variants.append(
            {
                "variant": name,
                "passed": ok,
                "total": len(rows),
                "pass_rate": ok / len(rows),
                "mean_cost": _mean(costs),
                "total_cost": sum(costs),
                "total_tokens": sum(r["total_tokens"] for r in rows),
                "mean_duration_ms": _mean([r["duration_ms"] for r in rows]),
            }
        )
    by_golden: dict[str, list[dict[str, Any]]] = {}
    for r in records:
        by_golden.setdefault(r["golden"], []).append(r)
    goldens = []
    for golden, rows in by_golden.items():
        priced = [r for r in rows if r["cost"] is not None]
        goldens.append(
            {
                "golden": golden,
                "passed": [r["variant"] for r in rows if r["status"] in ok_status],
                "cheapest": min(priced, key=lambda r: r["cost"])["variant"] if priced else None,
                "fastest": min(rows, key=lambda r: r["duration_ms"])["variant"],
            }
        )
    return {"variants": variants, "goldens": goldens}


def variant_comparison(
    records: tuple[dict[str, Any], ...], order: tuple[str, ...] = ()
) -> list[str]:
    """The variant comparison as summary lines."""
    stats = variant_stats(records, order)
    lines = [
        "variants:",
        f"  {'variant':<12} {'passed':>9} {'mean cost':>11} {'total cost':>11}"
        f" {'tokens':>8} {'mean ms':>9}",
    ]
    for v in stats["variants"]:
        lines.append(
            f"  {v['variant']:<12} {v['passed']:>4}/{v['total']:<4} ${v['mean_cost']:>10.4f}"
            f" ${v['total_cost']:>10.4f} {v['total_tokens']:>8} {v['mean_duration_ms']:>9.1f}"
        )
    lines.append("  per golden:")
    for g in stats["goldens"]:
        lines.append(
            f"    {g['golden']}: passed {', '.join(g['passed']) or 'none'}; "
            f"cheapest {g['cheapest'] or '-'}; fastest {g['fastest']}"
        )
    return lines
