"""The terminal summary, built as data with a `lines` property (no pytest here)."""

from __future__ import annotations

from dataclasses import dataclass, field

ORDER = ("passed", "failed", "updated", "recorded")


@dataclass(frozen=True, kw_only=True)
class Summary:
    counts: dict[str, int] = field(default_factory=dict)
    notes: tuple[str, ...] = ()

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
        return lines
