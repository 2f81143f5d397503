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


def record_of(result: Any, *, status: str, variant: str | None) -> dict[str, Any]:
    """The JSON-safe figures of one golden's run (sent from xdist workers on the report)."""
    from opswald.expect.budgets import figures

    actual = figures(result.actual)
    return {
        "golden": result.golden.name or "",
        "variant": variant,
        "status": status,
        "cost": actual.cost,
        "total_tokens": actual.total_tokens,
        "duration_ms": round(actual.duration_ms, 3),
        "steps": actual.steps,
    }


def _mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else 0.0


def variant_comparison(
    records: tuple[dict[str, Any], ...], order: tuple[str, ...] = ()
) -> list[str]:
    """Per variant: pass rate, cost, tokens, latency; per golden: who passed, cheaper, faster."""
    by_variant: dict[str, list[dict[str, Any]]] = {name: [] for name in order}
    for r in records:
        by_variant.setdefault(r["variant"] or "-", []).append(r)
    lines = [
        "variants:",
        f"  {'variant':<12} {'passed':>9} {'mean cost':>11} {'total cost':>11}"
        f" {'tokens':>8} {'mean ms':>9}",
    ]
    for name, rows in by_variant.items():
        if not rows:
            continue
        ok = sum(r["status"] in ("passed", "updated", "recorded") for r in rows)
        costs = [r["cost"] for r in rows if r["cost"] is not None]
        tokens = sum(r["total_tokens"] for r in rows)
        latency = _mean([r["duration_ms"] for r in rows])
        lines.append(
            f"  {name:<12} {ok:>4}/{len(rows):<4} ${_mean(costs):>10.4f} ${sum(costs):>10.4f}"
            f" {tokens:>8} {latency:>9.1f}"
        )
    by_golden: dict[str, list[dict[str, Any]]] = {}
    for r in records:
        by_golden.setdefault(r["golden"], []).append(r)
    lines.append("  per golden:")
    for golden, rows in by_golden.items():
        winners = [r["variant"] for r in rows if r["status"] in ("passed", "updated", "recorded")]
        priced = [r for r in rows if r["cost"] is not None]
        cheapest = min(priced, key=lambda r: r["cost"])["variant"] if priced else "-"
        fastest = min(rows, key=lambda r: r["duration_ms"])["variant"]
        lines.append(
            f"    {golden}: passed {', '.join(winners) or 'none'}; cheapest {cheapest}; "
            f"fastest {fastest}"
        )
    return lines
