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


def test_the_viewer_line_counts_one_golden_in_the_singular(project: pytest.Pytester) -> None:
    """`opswald viewer: report.html (1 goldens, 69 KiB)`: one golden is `1 golden`."""
    record(project)
    result = project.runpytest("--opswald-goldens", "--opswald-html", "report.html")
    result.stdout.fnmatch_lines(["*opswald viewer: *report.html (1 golden, * KiB)*"])


def test_the_viewer_line_names_the_page_without_dot_dot(project: pytest.Pytester) -> None:
    """QA (probe25 #8): `--opswald-html=sub/../out/report.html` was named so in the line."""
    record(project)
    project.mkdir("sub")
    result = project.runpytest("--opswald-goldens", "--opswald-html=sub/../out/report.html")
    assert (project.path / "out" / "report.html").is_file()
    line = next(line for line in result.outlines if "opswald viewer:" in line)
    assert "/.." not in line
    assert f"opswald viewer: {project.path / 'out' / 'report.html'} (1 golden, " in line


def test_no_page_without_the_option(project: pytest.Pytester) -> None:
    record(project)
    result = project.runpytest("--opswald-goldens")
    assert "opswald viewer" not in result.stdout.str()
    assert not list(project.path.rglob("*.html"))


PAIRING_AGENT = """
import os

import opswald


@opswald.llm
def chat(*, model, messages):
    return {"content": "ok", "finish_reason": "stop"}


@opswald.tool
def lookup(name):
    return {"name": name}


def run(input):
    chat(model="m1", messages=[{"role": "user", "content": "look both up"}])
    names = ["Alice", "Bob"]
    if os.environ.get("REVERSED"):
        names.reverse()
    for name in names:
        lookup(name=name)
    if os.environ.get("SNAPSHOT"):
        opswald.state(memory={"looked_up": names})
    chat(model="m1", messages=[{"role": "user", "content": os.environ.get("ASK", "book")}])
    return {"ok": True}
"""


@pytest.mark.parametrize("workers", [[], ["-n", "2"]], ids=["serial", "xdist"])
def test_steps_pair_by_the_call_each_served(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, workers: list[str]
) -> None:
    """The run makes the two lookups in the other order (served all the same) and records
    no snapshot: the page lines each step up with the golden step it answered as, which
    the run knows, not with the step at its position."""
    project.makepyfile(agent=PAIRING_AGENT)
    monkeypatch.setenv("SNAPSHOT", "1")
    record(project)
    monkeypatch.delenv("SNAPSHOT")
    monkeypatch.setenv("REVERSED", "1")
    monkeypatch.setenv("ASK", "cancel")  # the last call differs: the run fails there
    result = project.runpytest("--opswald-goldens", "--opswald-html", "out.html", *workers)
    result.assert_outcomes(failed=1)
    (page,) = _page(project.path / "out.html")["goldens"]
    # golden: chat, lookup Alice, lookup Bob, snapshot, chat; the run: chat, lookup Bob,
    # lookup Alice, chat
    assert page["rows"] == [[1, 1], [3, 2], [2, 3], [4, 0], [5, 4]]
    assert page["rows"][page["divergence"] - 1] == [5, 4], "the last chat, on both sides"
    assert page["diff_steps"] == [4, 5]  # the snapshot the run did not record, the chat
