"""Every benchmark run rebuilds the "Bars at a glance" table of bench/RESULTS.md."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[1]


def _common() -> ModuleType:
    """bench/_common.py (not a package: loaded from its file)."""
    spec = importlib.util.spec_from_file_location("bench_common", ROOT / "bench" / "_common.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("bench_common", module)
    spec.loader.exec_module(module)
    return module


RESULTS = """# Benchmark results

## Speed

Command: `python bench/bench_speed.py`  
Date: 2026-01-02 03:04 UTC  

| leg | s |
|---|---:|
| a | 1 |

- **a / b = 1.9** (bar ≤ 1.5): MISSED (best-of 1.8).
- **growth = 1.2** (bar ≤ 2.2): holds.
- a note with **bold** text but no bar.

## Pages

Date: 2026-01-03 00:00 UTC  

- **at most 300 DOM elements** (bound < 1500, the browser tests' assertion): holds.
"""


def test_glance_lists_every_bar_line_with_its_section_and_date() -> None:
    text = _common().glance(RESULTS)
    table = text.split("## Bars at a glance", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in table.splitlines() if line.startswith("| ") and "---" not in line]
    assert rows[1:] == [
        "| Speed | a / b = 1.9 | bar ≤ 1.5 | **missed** | 2026-01-02 03:04 UTC |",
        "| Speed | growth = 1.2 | bar ≤ 2.2 | holds | 2026-01-02 03:04 UTC |",
        "| Pages | at most 300 DOM elements | bound < 1500, the browser tests' assertion "
        "| holds | 2026-01-03 00:00 UTC |",
    ]
    # the table sits before the first section, which is kept whole
    assert text.index("## Bars at a glance") < text.index("## Speed")
    assert text.split("## Speed", 1)[1] == RESULTS.split("## Speed", 1)[1]


def test_glance_replaces_its_own_table_and_never_lists_it() -> None:
    run_all = _common()
    once = run_all.glance(RESULTS)
    changed = once.replace("(bar ≤ 2.2): holds", "(bar ≤ 2.2): MISSED")
    again = run_all.glance(changed)
    assert again.count("## Bars at a glance") == 1
    assert "| Speed | growth = 1.2 | bar ≤ 2.2 | **missed** |" in again
    assert "| Bars at a glance |" not in again
    assert run_all.glance(again) == again


def test_results_file_table_matches_its_sections() -> None:
    """The committed bench/RESULTS.md has its table up to date."""
    text = (ROOT / "bench" / "RESULTS.md").read_text()
    assert _common().glance(text) == text
