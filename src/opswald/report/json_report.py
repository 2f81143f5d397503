"""The JSON report (`--opswald-json PATH`): a superset of the hosted service's golden-test
result shape, documented by `REPORT_SCHEMA` (`opswald schema --report`)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from opswald.report.summary import variant_stats

PASSING = ("passed", "updated", "recorded")
MEASURED = ("duration_ms",)  # wall-clock fields: differ between runs, serial or not

_NUM = {"type": ["number", "null"]}
_FIGURES = {
    "steps": {"type": "integer"},
    "llm_calls": {"type": "integer"},
    "tool_calls": {"type": "integer"},
    "input_tokens": {"type": "integer"},
    "output_tokens": {"type": "integer"},
    "total_tokens": {"type": "integer"},
    "cost": {
        "type": ["number", "null"],
        "description": "the sum of the known costs of the run's model calls; null when calls "
        "answered and none has a cost. With unpriced_calls above 0 it is a lower bound",
    },
    "unpriced_calls": {
        "type": "integer",
        "description": "model calls that answered without a cost (no price for the model, no "
        "usage reported, or a stream cut short): "
        "their cost is unknown, not 0",
    },
    "duration_ms": _NUM,
}
_FIX = {
    "type": ["string", "null"],
    "description": "the failure's `fix:` line as pytest prints it, without the prefix (what "
    "to do, or why an update did not write the golden); null when it has none",
}
_ANALYSED_STEPS = {
    "type": "array",
    "description": "steps of the latency analysis (slower than --opswald-slow-ms, with "
    "duration_ms) or of the cost analysis (the three most expensive, with cost)",
    "items": {
        "type": "object",
        "properties": {
            "step": {
                "type": "integer",
                "description": "the golden's number of the step the run's step stands "
                "beside; the run's own number when run_step is true",
            },
            "run_step": {
                "type": "boolean",
                "description": "step is the run's number: a step the golden does not have "
                "(an extra call, a new snapshot)",
            },
            "type": {"type": "string"},
            "name": {"type": ["string", "null"]},
            "description": {"type": ["string", "null"]},
            "duration_ms": _NUM,
            "cost": _NUM,
        },
    },
}
REPORT_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": "https://opswald.dev/schema/report-v1.json",
    "title": "opswald golden run report",
    "type": "object",
    "required": [
        "total",
        "passed",
        "failed",
        "success_rate",
        "failed_tests",
        "still_failing",
        "goldens",
    ],
    "properties": {
        "total": {"type": "integer", "description": "every golden row, skipped ones included"},
        "passed": {"type": "integer", "description": "passed, updated or recorded"},
        "failed": {
            "type": "integer",
            "description": "failed goldens, malformed ones (status error) included",
        },
        "malformed": {
            "type": "integer",
            "description": "goldens that could not be loaded (status error; counted in failed)",
        },
        "updated": {"type": "integer"},
        "recorded": {"type": "integer"},
        "skipped": {
            "type": "integer",
            "description": "goldens pytest skipped (status skipped): neither passed nor failed",
        },
        "success_rate": {
            "type": "number",
            "minimum": 0,
            "maximum": 1,
            "description": "passed / (passed + failed): skipped goldens left out; 1 when "
            "none passed or failed",
        },
        "failed_tests": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["name", "file", "step", "run_step", "error", "suggestion", "fix"],
                "properties": {
                    "name": {"type": "string"},
                    "file": {"type": "string"},
                    "step": {"type": ["integer", "null"]},
                    "run_step": {
                        "type": "boolean",
                        "description": "step is the run's own number (a call the golden "
                        "does not have, a blocked side effect), not the golden's",
                    },
                    "error": {"type": ["string", "null"]},
                    "suggestion": {"type": ["string", "null"]},
                    "fix": _FIX,
                },
            },
        },
        "still_failing": {
            "type": "array",
            "items": {"type": "string"},
            "description": "goldens recorded with an error whose run still ends in one",
        },
        "notes": {
            "type": "array",
            "items": {"type": "string"},
            "description": "the summary's `note:` lines, each once (a modification that "
            "changed nothing, a model without a price, a redaction rule that failed, ...)",
        },
        "goldens": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["name", "file", "status"],
                "properties": {
                    "name": {"type": "string"},
                    "file": {"type": "string"},
                    "golden": {"type": "string"},
                    "variant": {"type": ["string", "null"]},
                    "status": {
                        "enum": ["passed", "failed", "updated", "recorded", "error", "skipped"],
                        "description": "error: a malformed golden, which never ran (its load "
                        "error in error); skipped: pytest skipped it (why in reason)",
                    },
                    "reason": {
                        "type": ["string", "null"],
                        "description": "why pytest skipped the golden (status skipped only)",
                    },
                    **_FIGURES,
                    "delta": {"type": ["object", "null"]},
                    "divergence": {"type": ["object", "null"]},
                    "error": {"type": ["string", "null"]},
                    "suggestion": {"type": ["string", "null"]},
                    "fix": _FIX,
                    "still_failing": {"type": "boolean"},
                    "slow_steps": _ANALYSED_STEPS,
                    "costly_steps": _ANALYSED_STEPS,
                    "completed": {
                        "type": "boolean",
                        "description": "the run went to its end: not stopped at a divergence "
                        "or a blocked side effect, nor by an error the golden did not have, a "
                        "timeout or a failure before it ran",
                    },
                },
            },
        },
        "variants": {
            "type": "object",
            "description": "per variant figures and, per golden (one row per golden file: "
            "its name in golden, its file in file, its test id without the variant in "
            "test), which variants passed and "
            "which of those was cheapest and fastest (only when variants ran); a variant's "
            "cost, tokens and mean duration cover its `completed` runs only (null when none "
            "completed), its unpriced_calls are their calls without a cost (its costs are then "
            "lower bounds), and a golden's cheapest is null unless it is known",
        },
        "measured_fields": {"type": "array", "items": {"type": "string"}},
    },
}


def build(
    records: Sequence[dict[str, Any]],
    variant_order: Sequence[str] = (),
    notes: Sequence[str] = (),
) -> dict[str, Any]:
    """The report from per-golden records (order-independent: sorted by name), with the
    summary's `notes` (as the terminal lists them, once each)."""
    rows = sorted(records, key=lambda r: r["name"])
    passed = [r for r in rows if r["status"] in PASSING]
    failed = [r for r in rows if r["status"] not in (*PASSING, "skipped")]
    ran = len(passed) + len(failed)  # skipped goldens did not run: no success, no failure
    report: dict[str, Any] = {
        "total": len(rows),
        "passed": len(passed),
        "failed": len(failed),
        "malformed": sum(r["status"] == "error" for r in rows),
        "updated": sum(r["status"] == "updated" for r in rows),
        "recorded": sum(r["status"] == "recorded" for r in rows),
        "skipped": sum(r["status"] == "skipped" for r in rows),
        # none passed or failed (all skipped): no failure, as pytest's exit status 0 says
        "success_rate": round(len(passed) / ran, 6) if ran else 1.0,
        "failed_tests": [
            {
                "name": r["name"],
                "file": r.get("file", ""),
                "step": (r.get("divergence") or {}).get("step"),
                "run_step": bool((r.get("divergence") or {}).get("run_step")),
                "error": r.get("error"),
                "suggestion": r.get("suggestion"),
                "fix": r.get("fix"),
            }
            for r in failed
        ],
        "still_failing": [r["name"] for r in rows if r.get("still_failing")],
        "notes": list(dict.fromkeys(notes)),
        "goldens": rows,
        "measured_fields": [
            *(f"goldens[].{f}" for f in MEASURED),
            *(f"goldens[].delta.{f}" for f in MEASURED),
        ],
    }
    if any(r.get("variant") for r in rows):
        report["variants"] = variant_stats(tuple(rows), tuple(variant_order))
        # the variant comparison's times, and who was fastest, are measured too
        report["measured_fields"] += [
            "variants.variants[].mean_duration_ms",
            "variants.goldens[].fastest",
        ]
    return report


def write(path: Path, report: dict[str, Any]) -> None:
    from opswald import jsontext
    from opswald.files import write_output_text
    from opswald.hidden import json_with_hidden_escaped

    path.parent.mkdir(parents=True, exist_ok=True)
    text = json_with_hidden_escaped(jsontext.dumps(report, indent=2))
    write_output_text(path, text + "\n")


class MergeError(ValueError):
    """Reports that cannot be merged (not a report, or the same golden in two shards)."""


def merge(reports: Sequence[dict[str, Any]], names: Sequence[str] | None = None) -> dict[str, Any]:
    """One report from the reports of several shards: equal to an unsharded run's. `names`
    (the files read, by default `input 1`, ...) name them in a MergeError.

    A malformed golden (status error) is in the report of every shard that collected it:
    the same row in several shards counts once."""
    names = names or [f"input {index + 1}" for index in range(len(reports))]
    rows: dict[str, dict[str, Any]] = {}
    shard_of: dict[str, str] = {}
    order: list[str] = []
    notes: list[str] = []  # each shard's, once each (a note every shard met is one)
    for name, report in zip(names, reports, strict=True):
        if not isinstance(report, dict) or not isinstance(report.get("goldens"), list):
            raise MergeError(
                f"{name} is not an opswald JSON report (no 'goldens'); give the files "
                "--opswald-json wrote"
            )
        for row in report["goldens"]:
            if row["name"] in rows and row.get("status") == "error" == rows[row["name"]].get(
                "status"
            ):
                continue  # a malformed golden: each shard collects it, and fails to load it
            if row["name"] in rows:
                raise MergeError(
                    f"{row['name']} is in two shards, {shard_of[row['name']]} and {name}; "
                    "shards must not overlap"
                )
            rows[row["name"]] = row
            shard_of[row["name"]] = name
        for variant in (report.get("variants") or {}).get("variants", []):
            if variant["variant"] not in order:
                order.append(variant["variant"])
        notes.extend(n for n in report.get("notes") or () if isinstance(n, str))
    return build(list(rows.values()), order, notes)
