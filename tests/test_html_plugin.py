"""`pytest --opswald-html`: one viewer page for the whole run, the same serial and under
xdist (workers send findings and actual sessions; only the controller writes)."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from conftest import record

DATA_BLOCK = re.compile(r'<script type="application/json" id="opswald-data">(.*?)</script>', re.S)


def _page(path: Any) -> dict[str, Any]:
    match = DATA_BLOCK.search(path.read_text())
    assert match is not None
    return json.loads(match.group(1))  # type: ignore[no-any-return]


def _two_more(project: pytest.Pytester) -> None:
    goldens = project.path / "goldens"
    text = (goldens / "flight.golden.yaml").read_text()
    (goldens / "a.golden.yaml").write_text(text.replace("book_flight", "book_a"))
    # b's golden looked Carol up: the agent looks Alice up, so b diverges at step 2
    (goldens / "b.golden.yaml").write_text(
        text.replace("book_flight", "book_b").replace("passenger: Alice", "passenger: Carol", 1)
    )


@pytest.mark.parametrize("workers", [[], ["-n", "2"]], ids=["serial", "xdist"])
def test_one_page_for_the_run(project: pytest.Pytester, workers: list[str]) -> None:
    record(project)
    _two_more(project)
    result = project.runpytest(
        "--opswald-goldens", "--opswald-html", "out/report.html", "--opswald-json=out/r.json",
        *workers,
    )  # fmt: skip
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(["*opswald viewer: */out/report.html (3 goldens, * KiB)*"])
    data = _page(project.path / "out" / "report.html")
    assert data["summary"]["total"] == 3
    assert data["summary"]["counts"] == {"passed": 2, "failed": 1}
    by_name = {g["name"]: g for g in data["goldens"]}
    failed = by_name["goldens/b.golden.yaml::book_b"]
    assert failed["status"] == "failed" and failed["file"] == "goldens/b.golden.yaml"
    assert failed["divergence"] == 2
    assert failed["start"] == 2, "the page opens on the divergence"
    assert failed["actual"] is not None, "the actual session is shown beside the golden"
    assert any("Carol" in json.dumps(f) for f in failed["findings"])
    passed = by_name["goldens/a.golden.yaml::book_a"]
    assert passed["status"] == "passed" and passed["actual"] is None
    assert passed["figures"]["golden"]["steps"] == 7
    # a passing golden shows what this run measured, the same figures as the JSON report
    report = json.loads((project.path / "out" / "r.json").read_text())
    records = {g["name"]: g for g in report["goldens"]}
    for name, golden in by_name.items():
        measured, row = golden["figures"]["actual"], records[name]
        assert measured is not None, name
        assert measured["duration_ms"] == pytest.approx(row["duration_ms"], abs=1e-3), name
        assert measured["cost"] == row["cost"] and measured["steps"] == row["steps"], name
    total = sum(row["duration_ms"] for row in records.values())
    assert data["summary"]["duration_ms"] == pytest.approx(total, abs=1e-2)


def test_no_page_without_the_option(project: pytest.Pytester) -> None:
    record(project)
    result = project.runpytest("--opswald-goldens")
    assert "opswald viewer" not in result.stdout.str()
    assert not list(project.path.rglob("*.html"))
