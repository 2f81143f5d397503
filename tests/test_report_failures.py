"""The reports (JSON, JUnit, terminal summary, viewer) of goldens that fail without a
judged run: not recorded yet, no adapter, a timeout, a crashed xdist worker, a malformed
file — serial and under xdist."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from conftest import STUB, agent_project, opswald_cli, record
from opswald import load
from opswald.report.json_report import REPORT_SCHEMA
from opswald.session import LLMCallStep
from test_reports import _stable
from test_viewer_data import page_data

ADAPTERS = """
import os
import time

import agent


def hang_after_two(input):
    messages = [{"role": "user", "content": input["q"]}]
    agent.chat(model="m1", messages=messages)   # step 1, as recorded
    agent.lookup(passenger=input["who"])         # step 2, as recorded
    while True:                                  # then the agent's own code hangs
        time.sleep(0.05)


def crash(input):
    os._exit(1)


ADAPTERS = {"hang": hang_after_two, "crash": crash, "noadapter": None}


def pytest_opswald_adapter(golden, config):
    return ADAPTERS.get(golden.name, agent.run)
"""


def _copy(project: pytest.Pytester, name: str, extra: str = "") -> Path:
    """A copy of the recorded golden named `name` (the conftest picks its adapter)."""
    goldens = project.path / "goldens"
    text = (
        (goldens / "flight.golden.yaml")
        .read_text()
        .replace("name: book_flight", extra + f"name: {name}")
    )
    path = goldens / f"{name}.golden.yaml"
    path.write_text(text)
    return path


def _junit(path: Path) -> dict[str, dict[str, str | None]]:
    cases = ET.parse(path).getroot().iter("testcase")
    return {
        str(c.get("name")): {p.get("name") or "": p.get("value") for p in c.iter("property")}
        for c in cases
    }


def _rows(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {r["golden"]: r for r in report["goldens"]}


def test_failures_without_a_verdict_report_their_message_serial_and_under_xdist(
    project: pytest.Pytester,
) -> None:
    record(project)
    project.makeconftest(ADAPTERS)
    _copy(project, "hang", extra="timeout: 1\n")
    _copy(project, "noadapter")
    (project.path / "goldens" / "stub.golden.yaml").write_text(STUB.replace("book_flight", "stub"))
    golden = load(project.path / "goldens" / "flight.golden.yaml")
    reports = {}
    for label, workers in (("serial", []), ("xdist", ["-n", "2"])):
        result = project.runpytest(
            "--opswald-goldens",
            f"--opswald-json={label}.json",
            f"--junitxml={label}.xml",
            *workers,
        )
        result.assert_outcomes(passed=1, failed=3)
        out = result.stdout.str()
        report = json.loads((project.path / f"{label}.json").read_text())
        jsonschema.validate(report, REPORT_SCHEMA)
        reports[label] = report
        rows = _rows(report)
        failed = {t["name"]: t for t in report["failed_tests"]}
        for name in ("hang", "noadapter", "stub"):
            row = rows[name]
            assert row["status"] == "failed"
            assert row["error"] and not row["error"].startswith("[gw"), row["error"]
            # the failure's own first line, as pytest shows it in the failure section
            assert row["error"] in out, (label, row["error"])
            assert failed[row["name"]]["error"] == row["error"]
            assert not (row["suggestion"] or "").startswith("fix:")
        assert "not recorded yet" in rows["stub"]["error"]
        assert "no adapter" in rows["noadapter"]["error"]
        assert "did not finish within 1" in rows["hang"]["error"]
        # the hung golden ran the golden's first two steps, then hung: that is what it reports
        hang = rows["hang"]
        first: Any = golden.step_list[0]
        assert isinstance(first, LLMCallStep) and first.usage is not None
        assert "after step 2" in hang["error"]
        assert (hang["steps"], hang["llm_calls"], hang["tool_calls"]) == (2, 1, 1)
        assert hang["total_tokens"] == first.usage.total()
        assert hang["cost"] == pytest.approx(first.cost)
        assert hang["divergence"]["step"] == 2 == failed[hang["name"]]["step"]
        assert hang["divergence"]["kind"] == "timeout"
        table = out.split("--- opswald ---")[-1]
        assert "2 steps (1 llm, 1 tool)" in table
        # JUnit: every golden's testcase carries the opswald properties, as its JSON row
        cases = _junit(project.path / f"{label}.xml")
        for name, row in rows.items():
            props = cases[name]
            assert props["opswald.status"] == row["status"]
            assert props["opswald.steps"] == str(row["steps"])
            assert props["opswald.total_tokens"] == str(row["total_tokens"])
        assert cases["hang"]["opswald.divergence_step"] == "2"
        assert cases["stub"]["opswald.cost"] == ""
    assert _stable(reports["xdist"]) == _stable(reports["serial"])


@pytest.mark.parametrize("workers", [[], ["-n", "2"]], ids=["serial", "xdist"])
def test_a_run_stopped_by_its_timeout_is_saved_as_far_as_it_got(
    project: pytest.Pytester, workers: list[str]
) -> None:
    """QA (probe27 #7): a golden stopped by its timeout had no saved actual (nothing for
    `opswald diff` or the viewer); its steps up to the hang are saved, redacted, with the
    stop as the session's error, and the viewer shows them beside the golden."""
    record(project)
    project.makeconftest(ADAPTERS)
    _copy(project, "hang", extra="timeout: 1\n")
    result = project.runpytest(
        "--opswald-goldens", "-k", "hang", "--opswald-save-actual=saved",
        "--opswald-html=v.html", *workers,
    )  # fmt: skip
    assert result.parseoutcomes().get("failed") == 1, result.stdout.str()
    saved = load(project.path / "saved" / "hang.actual.yaml")
    golden = load(project.path / "goldens" / "hang.golden.yaml")
    assert [s.type for s in saved.step_list] == ["llm_call", "tool_call"]
    assert saved.step_list[0].model_dump(exclude={"timestamp", "duration_ms"}) == (
        golden.step_list[0].model_dump(exclude={"timestamp", "duration_ms"})
    )
    assert saved.error is not None and saved.error.type == "Timeout"
    assert "did not finish within 1" in saved.error.message
    assert saved.input == golden.input and saved.output is None
    (shown,) = page_data((project.path / "v.html").read_text())["goldens"]
    assert shown["status"] == "failed" and shown["actual"] is not None
    assert len(shown["actual"]["steps"]) == 2
    assert saved.metadata["stopped"]["kind"] == "timeout"
    assert saved.metadata["duration_ms"] == 1000, "it ran for its timeout, then was killed"
    # read back (QA probe28 #1, #2): the stop is the finding, the golden's later steps were
    # not reached (not removed), and nothing offers an update that would hang again
    from opswald.report.html import ViewEntry, build_data

    (entry,) = build_data([ViewEntry(golden=golden, actual=saved)])["goldens"]
    kinds = [(f["kind"], f["step"]) for f in entry["findings"]]
    assert kinds == [("timeout", 3)], entry["findings"]
    assert "raise the golden's `timeout:`" in entry["findings"][0]["suggestion"]
    # the compare view: the golden's steps 3-7 not reached, none "removed" (QA probe29 #1)
    assert len(entry["unreached_steps"]) == 5, entry["unreached_steps"]
    assert "removed" not in json.dumps(entry["step_diffs"]), entry["step_diffs"]
    # a difference before the stop (a variant's temperature) offers no update either
    first = saved.step_list[0]
    changed = first.model_copy(update={"model": "m9"})
    varied = saved.model_copy(update={"steps": [changed, *saved.step_list[1:]]})
    (entry,) = build_data([ViewEntry(golden=golden, actual=varied)])["goldens"]
    hints = {f["kind"]: f["suggestion"] for f in entry["findings"]}
    assert set(hints) == {"mismatch", "timeout"}, entry["findings"]
    assert hints["mismatch"].startswith("the run did not end, so no update can write it")
    diff = subprocess.run(
        [sys.executable, "-m", "opswald.cli", "diff", "goldens/hang.golden.yaml",
         "saved/hang.actual.yaml"],
        cwd=project.path, capture_output=True, text=True, check=False,
        env={**os.environ, "COLUMNS": "200"},
    )  # fmt: skip
    assert diff.returncode == 1, diff.stdout + diff.stderr
    assert "saved/hang.actual.yaml did not end: Timeout: " in diff.stdout
    assert "it came to golden step 2 of 7" in diff.stdout
    assert "not reached" in diff.stdout and "removed" not in diff.stdout, diff.stdout
    assert "figures:" not in diff.stdout, "the part it ran is not compared with the whole"


def test_a_golden_that_kills_its_xdist_worker_counts_as_failed(project: pytest.Pytester) -> None:
    record(project)
    project.makeconftest(ADAPTERS)
    _copy(project, "crash")
    result = project.runpytest(
        "--opswald-goldens", "--opswald-json=r.json", "--opswald-html=v.html", "-n", "2"
    )
    result.assert_outcomes(passed=1, failed=1)
    out = result.stdout.str()
    assert "crashed while running 'goldens/crash.golden.yaml::crash'" in out
    # the page lists it as failed, with why (QA probe27 #2: it was left out, the page all green)
    page = page_data((project.path / "v.html").read_text())
    shown = {g["name"]: g for g in page["goldens"]}
    assert sorted(shown) == [
        "goldens/crash.golden.yaml::crash",
        "goldens/flight.golden.yaml::book_flight",
    ]
    crashed = shown["goldens/crash.golden.yaml::crash"]
    assert crashed["status"] == "failed"
    assert "crashed" in json.dumps(crashed["findings"])
    assert "goldens: 1 passed, 1 failed" in out.split("--- opswald ---")[-1]
    report = json.loads((project.path / "r.json").read_text())
    jsonschema.validate(report, REPORT_SCHEMA)
    assert (report["total"], report["passed"], report["failed"]) == (2, 1, 1)
    (failed,) = report["failed_tests"]
    assert failed["name"] == "goldens/crash.golden.yaml::crash"
    assert failed["file"] == "goldens/crash.golden.yaml"
    assert "crashed" in failed["error"]
    assert _rows(report)["crash"]["status"] == "failed"


BAD = "name: bad\ninput: [unclosed\n"


@pytest.mark.parametrize("workers", [[], ["-n", "2"]], ids=["serial", "xdist"])
def test_a_malformed_golden_counts_as_failed(project: pytest.Pytester, workers: list[str]) -> None:
    record(project)
    (project.path / "goldens" / "bad.golden.yaml").write_text(BAD)
    result = project.runpytest(
        "--opswald-goldens", "--opswald-json=r.json", "--junitxml=j.xml", *workers
    )
    result.assert_outcomes(passed=1, errors=1)
    assert result.ret == 1
    section = result.stdout.str().split("--- opswald ---")[-1]
    assert "goldens: 1 passed, 1 failed (1 malformed)" in section
    report = json.loads((project.path / "r.json").read_text())
    jsonschema.validate(report, REPORT_SCHEMA)
    assert (report["total"], report["passed"], report["failed"]) == (2, 1, 1)
    assert report["malformed"] == 1
    assert report["success_rate"] == 0.5
    (failed,) = report["failed_tests"]
    assert failed["file"] == "goldens/bad.golden.yaml"
    assert failed["error"].startswith("malformed golden:")
    assert re.search(r"goldens/bad\.golden\.yaml:\d+: ", failed["error"]), "file and line"
    assert str(project.path) not in failed["error"], "the path as shown, not where it ran"
    row = next(r for r in report["goldens"] if r["file"] == "goldens/bad.golden.yaml")
    assert row["status"] == "error" and row["error"] == failed["error"]
    assert "opswald validate goldens/bad.golden.yaml" in (failed["suggestion"] or "")
    # its <testcase> (the collection error) carries the properties of its JSON row
    cases = ET.parse(project.path / "j.xml").getroot().findall(".//testcase")
    (case,) = [c for c in cases if c.find("error") is not None]
    assert case.get("name") == "goldens.bad.golden.yaml"
    assert {p.get("name"): p.get("value") for p in case.iter("property")} == {
        "opswald.status": "error",
        "opswald.cost": "",
        "opswald.total_tokens": str(row["total_tokens"]),
        "opswald.duration_ms": "",
        "opswald.steps": str(row["steps"]),
    }
    assert len(cases) == 2, "one testcase for the malformed golden, also under xdist"


def test_shards_that_each_meet_a_malformed_golden_merge_into_the_unsharded_report(
    project: pytest.Pytester,
) -> None:
    record(project)
    (project.path / "goldens" / "bad.golden.yaml").write_text(BAD)
    project.runpytest("--opswald-goldens", "--opswald-json=all.json")
    project.runpytest("--opswald-goldens", "-k", "book_flight", "--opswald-json=s1.json")
    project.runpytest("--opswald-goldens", "-k", "not book_flight", "--opswald-json=s2.json")
    for shard in ("s1.json", "s2.json"):  # each shard collected the malformed golden
        assert json.loads((project.path / shard).read_text())["malformed"] == 1
    merged = opswald_cli(
        "report", "merge", "s1.json", "s2.json", "-o", "merged.json", cwd=project.path
    )
    assert merged.returncode == 0, merged.stderr
    whole = json.loads((project.path / "all.json").read_text())
    assert whole["failed"] == 1
    assert _stable(json.loads((project.path / "merged.json").read_text())) == _stable(whole)


def test_variants_with_a_golden_that_never_ran(project: pytest.Pytester) -> None:
    record(project)
    (project.path / "goldens" / "stub.golden.yaml").write_text(STUB.replace("book_flight", "stub"))
    result = project.runpytest(
        "--opswald-goldens", "--opswald-variant", "v1:model=m1", "--opswald-json=r.json"
    )
    result.assert_outcomes(passed=1, failed=1)
    assert "INTERNALERROR" not in result.stdout.str()
    report = json.loads((project.path / "r.json").read_text())
    rows = _rows(report)
    assert rows["stub"]["duration_ms"] is None
    (v1,) = report["variants"]["variants"]
    # the golden with no duration is left out of the mean, not counted as 0 (nor a crash)
    assert v1["mean_duration_ms"] == pytest.approx(rows["book_flight"]["duration_ms"], abs=1e-3)
    per_golden = {g["golden"]: g for g in report["variants"]["goldens"]}
    assert per_golden["stub"]["fastest"] is None
    assert per_golden["book_flight"]["fastest"] == "v1"


def test_cost_totals_carry_no_float_noise(project: pytest.Pytester) -> None:
    record(project)
    path = project.path / "goldens" / "flight.golden.yaml"
    costs = iter(["0.00026", "0.00041", "0.000429"])  # as floats: 0.0010990000000000002
    text = re.sub(r"(?m)^(\s+cost: ).*$", lambda m: m.group(1) + next(costs), path.read_text())
    assert next(costs, None) is None, "the golden has three priced model calls"
    path.write_text(text)
    for name in ("a", "b"):  # three of them: 3 x 0.001099 adds up to 0.0032969999999999996
        _copy(project, name)
    result = project.runpytest(
        "--opswald-goldens",
        "--opswald-json=r.json",
        "--junitxml=j.xml",
        "--opswald-html=page.html",
    )
    result.assert_outcomes(passed=3)
    report = json.loads((project.path / "r.json").read_text())
    assert [g["cost"] for g in report["goldens"]] == [0.001099] * 3
    assert _junit(project.path / "j.xml")["book_flight"]["opswald.cost"] == "0.001099"
    page = _page(project.path / "page.html")
    assert page["summary"]["cost"] == 0.003297
    for entry in page["goldens"]:
        assert entry["figures"]["golden"]["cost"] == 0.001099
        assert entry["figures"]["actual"]["cost"] == 0.001099


def _page(path: Path) -> dict[str, Any]:
    match = re.search(r'id="opswald-data">(.*?)</script>', path.read_text(), re.S)
    assert match is not None
    return json.loads(match.group(1))  # type: ignore[no-any-return]


@pytest.mark.parametrize("workers", [[], ["-n", "2"]], ids=["serial", "xdist"])
def test_the_viewer_lists_goldens_that_failed_before_any_step(
    project: pytest.Pytester, workers: list[str]
) -> None:
    record(project)
    project.makeconftest(ADAPTERS)
    _copy(project, "noadapter")
    result = project.runpytest(
        "--opswald-goldens", "--opswald-fork-at=9", "--opswald-html=page.html",
        "--opswald-json=r.json", *workers,
    )  # fmt: skip
    result.assert_outcomes(failed=2)
    rows = _rows(json.loads((project.path / "r.json").read_text()))
    page = _page(project.path / "page.html")
    assert page["summary"]["total"] == 2 and page["summary"]["counts"] == {"failed": 2}
    shown = {g["name"].rsplit("::", 1)[-1]: g for g in page["goldens"]}
    assert set(shown) == {"book_flight", "noadapter"}
    for name, entry in shown.items():
        assert entry["status"] == "failed"
        (finding,) = entry["findings"]
        assert finding["headline"] == rows[name]["error"]
    assert "--opswald-fork-at=9" in shown["book_flight"]["findings"][0]["headline"]


def test_variant_figures_cover_only_the_runs_that_completed(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run cut short (a divergence, a blocked side effect) made fewer calls: counted in a
    variant's cost and tokens, it made the failing variant look cheaper. `same` keeps the
    recorded model: `flight` passes, `dropped` (recorded without the booking) diverges at
    the booking. `other` forks at step 1 and both of its runs stop at the blocked booking."""
    record(project)
    (project.path / "goldens" / "dropped.golden.yaml").write_text(
        STUB.replace("book_flight", "dropped")
    )
    monkeypatch.setenv("AGENT_VARIANT", "drop")
    record(project, "goldens/dropped.golden.yaml")
    monkeypatch.delenv("AGENT_VARIANT")
    variants = ("--opswald-variant", "same:model=m1", "--opswald-variant", "other:model=m2")
    result = project.runpytest("--opswald-goldens", *variants, "--opswald-json=r.json")
    result.assert_outcomes(passed=1, failed=3)
    report = json.loads((project.path / "r.json").read_text())
    jsonschema.validate(report, REPORT_SCHEMA)
    rows = {(r["golden"], r["variant"]): r for r in report["goldens"]}
    # the runs cut short did run steps, with tokens and cost: those must not be counted
    assert all(row["total_tokens"] > 0 for row in rows.values())
    whole = rows["book_flight", "same"]
    same, other = report["variants"]["variants"]
    assert same["total_tokens"] == whole["total_tokens"]
    assert same["total_cost"] == same["mean_cost"] == whole["cost"]
    assert same["mean_duration_ms"] == pytest.approx(whole["duration_ms"], abs=1e-3)
    assert [other[k] for k in ("mean_cost", "total_cost", "total_tokens", "mean_duration_ms")] == [
        None
    ] * 4
    assert (same["variant"], same["passed"], same["total"], same["completed"]) == ("same", 1, 2, 1)
    assert (other["variant"], other["passed"], other["total"], other["completed"]) == (
        "other",
        0,
        2,
        0,
    )
    assert {key: row["completed"] for key, row in rows.items()} == {
        ("book_flight", "same"): True,
        ("book_flight", "other"): False,
        ("dropped", "same"): False,
        ("dropped", "other"): False,
    }
    result.stdout.re_match_lines(
        [
            r"^  variant +passed +complete +mean cost +total cost +tokens +mean ms$",
            rf"^  same +1/2 +1 +\$ +{whole['cost']:.4f} +\$ +{whole['cost']:.4f}"
            rf" +{whole['total_tokens']} +[\d.]+$",
            r"^  other +0/2 +0 +- +- +- +-$",
            r"^  cost, tokens and ms: complete runs only .*",
        ]
    )


# skips and xfails by name: `marked` and `in_call` skipped (before and in their run),
# `drifts` expected to fail, `strict` expected to fail strictly
SKIPPING = """
import agent
import pytest


def pytest_opswald_adapter(golden, config):
    return agent.run


def pytest_collection_modifyitems(items):
    for item in items:
        if item.name == "marked":
            item.add_marker(pytest.mark.skip(reason="marked by the conftest"))
        if item.name == "drifts":
            item.add_marker(pytest.mark.xfail(reason="known drift"))
        if item.name == "strict":
            item.add_marker(pytest.mark.xfail(reason="fixed since", strict=True))


def pytest_runtest_call(item):
    if item.name == "in_call":
        pytest.skip("skipped in its call")
"""


def test_an_xfailed_golden_counts_as_skipped_not_failed(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """QA (pyopts #2): a golden an xfail marker expects to fail, which does, is pytest's
    `xfailed` (exit 0; JUnit's <skipped type="pytest.xfail">): a skipped row of the
    summary and the JSON report, with the failure as its reason, so that a gate on the
    report agrees with pytest. A strict xfail that passes still fails."""
    record(project)
    _copy(project, "drifts")
    _copy(project, "strict")
    project.makeconftest(SKIPPING)
    monkeypatch.setenv("AGENT_VARIANT", "args")  # every golden diverges at step 5
    result = project.runpytest(
        "--opswald-goldens", "-k", "drifts", "--opswald-json=r.json", "--junitxml=j.xml"
    )
    result.assert_outcomes(xfailed=1)
    assert result.ret == 0
    section = result.stdout.str().split("--- opswald ---")[-1]
    assert "goldens: 0 passed, 0 failed, 1 skipped" in section, section
    assert "FAILED" not in section
    report = json.loads((project.path / "r.json").read_text())
    jsonschema.validate(report, REPORT_SCHEMA)
    assert (report["failed"], report["skipped"], report["failed_tests"]) == (0, 1, [])
    row = _rows(report)["drifts"]
    assert row["status"] == "skipped"
    assert row["reason"].startswith("xfail (known drift): step 5"), row["reason"]
    case = ET.parse(project.path / "j.xml").getroot().find(".//testcase")
    assert case is not None
    props = {p.get("name"): p.get("value") for p in case.iter("property")}
    assert props["opswald.status"] == "skipped", props
    monkeypatch.delenv("AGENT_VARIANT")
    strict = project.runpytest("--opswald-goldens", "-k", "strict", "--opswald-json=s.json")
    strict.assert_outcomes(failed=1)
    assert json.loads((project.path / "s.json").read_text())["failed"] == 1


@pytest.mark.parametrize("workers", [[], ["-n", "2"]], ids=["serial", "xdist"])
def test_a_skipped_golden_counts_as_skipped_not_failed(
    project: pytest.Pytester, workers: list[str]
) -> None:
    """Skipped before its run (a skip marker) or during it (pytest.skip in a hook): neither
    is a failure, in the summary, the JSON report, JUnit and a merge of shards."""
    record(project)
    _copy(project, "marked")
    _copy(project, "in_call")
    project.makeconftest(SKIPPING)
    result = project.runpytest(
        "--opswald-goldens", "--opswald-json=r.json", "--junitxml=j.xml",
        "--opswald-html=page.html", *workers,
    )  # fmt: skip
    result.assert_outcomes(passed=1, skipped=2)
    assert result.ret == 0
    page = _page(project.path / "page.html")
    assert page["summary"]["counts"] == {"passed": 1, "skipped": 2}
    shown = {g["name"].rsplit("::", 1)[-1]: g for g in page["goldens"]}
    assert {name: g["status"] for name, g in shown.items()} == {
        "book_flight": "passed",
        "marked": "skipped",
        "in_call": "skipped",
    }
    assert shown["marked"]["record"]["reason"] == "marked by the conftest"
    assert shown["marked"]["figures"]["actual"] is None, "a skipped golden did not run"
    assert len(shown["marked"]["golden"]["steps"]) == 7, "the golden itself is shown"
    section = result.stdout.str().split("--- opswald ---")[-1]
    assert "goldens: 1 passed, 0 failed, 2 skipped" in section
    assert "FAILED" not in section
    report = json.loads((project.path / "r.json").read_text())
    jsonschema.validate(report, REPORT_SCHEMA)
    assert (report["total"], report["passed"], report["failed"], report["skipped"]) == (3, 1, 0, 2)
    assert report["failed_tests"] == []
    assert report["success_rate"] == 1.0, "skipped goldens neither pass nor fail"
    result = project.runpytest(
        "--opswald-goldens", "-k", "not book_flight", "--opswald-json=skipped.json", *workers
    )
    result.assert_outcomes(skipped=2)
    only_skipped = json.loads((project.path / "skipped.json").read_text())
    assert (only_skipped["failed"], only_skipped["skipped"]) == (0, 2)
    assert only_skipped["success_rate"] == 1.0, "nothing failed: exit status 0, no failure"
    rows = _rows(report)
    assert {name: rows[name]["status"] for name in rows} == {
        "book_flight": "passed",
        "marked": "skipped",
        "in_call": "skipped",
    }
    assert rows["marked"]["reason"] == "marked by the conftest"
    assert rows["in_call"]["reason"] == "skipped in its call"
    assert rows["in_call"]["error"] is None
    # the page's run totals count what ran, as the JSON report's rows do: not what the
    # skipped goldens recorded
    assert rows["in_call"]["cost"] is None and rows["marked"]["duration_ms"] is None
    assert page["summary"]["cost"] == rows["book_flight"]["cost"]
    assert page["summary"]["duration_ms"] == pytest.approx(
        rows["book_flight"]["duration_ms"], abs=2e-3
    )
    junit = _junit(project.path / "j.xml")
    assert junit["marked"]["opswald.status"] == "skipped"
    assert junit["in_call"]["opswald.status"] == "skipped"
    assert junit["book_flight"]["opswald.status"] == "passed"

    project.runpytest("--opswald-goldens", "-k", "marked", "--opswald-json=s1.json", *workers)
    project.runpytest("--opswald-goldens", "-k", "not marked", "--opswald-json=s2.json", *workers)
    merged = opswald_cli("report", "merge", "s1.json", "s2.json", "-o", "m.json", cwd=project.path)
    assert merged.returncode == 0, merged.stderr
    assert "3 goldens, 1 passed, 0 failed, 2 skipped -> m.json" in merged.stdout
    assert _stable(json.loads((project.path / "m.json").read_text())) == _stable(report)


@pytest.mark.parametrize("workers", [[], ["-n", "2"]], ids=["serial", "xdist"])
def test_the_viewer_lists_a_malformed_golden_with_its_load_error(
    project: pytest.Pytester, workers: list[str]
) -> None:
    record(project)
    (project.path / "goldens" / "bad.golden.yaml").write_text(BAD)
    result = project.runpytest(
        "--opswald-goldens", "--opswald-html=page.html", "--opswald-json=r.json", *workers
    )
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["*opswald viewer: *page.html (2 goldens, *"])
    (row,) = [r for r in json.loads((project.path / "r.json").read_text())["goldens"] if
              r["status"] == "error"]  # fmt: skip
    page = _page(project.path / "page.html")
    assert page["summary"]["counts"] == {"passed": 1, "error": 1}
    entry = next(g for g in page["goldens"] if g["status"] == "error")
    assert (entry["name"], entry["file"]) == ("goldens/bad.golden.yaml", "goldens/bad.golden.yaml")
    assert entry["golden"]["steps"] == []
    (finding,) = entry["findings"]
    assert finding["headline"] == row["error"]
    assert finding["headline"].startswith("malformed golden:")
    assert re.search(r"goldens/bad\.golden\.yaml:\d+: ", finding["headline"]), "file and line"
    assert finding["suggestion"] == row["suggestion"]


TB_AGENT = """
import os

import opswald


@opswald.tool
def lookup(order_id):
    return {"id": order_id, "status": "shipped"}


def summarise(order):
    token = "sk-proj-a1B2c3D4e5F6g7H8i9J0kLmNoPqRsTuV"
    if os.environ.get("CRASH"):
        return order["missing_key"]
    return order["status"]


def run(input):
    return summarise(lookup(order_id=input["order"]))
"""


@pytest.fixture
def crashing(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    """A golden whose agent now raises in `summarise`, two frames below `run`."""
    agent_project(pytester, TB_AGENT, o="name: o\ninput: {order: 7}\n")
    record(pytester)
    monkeypatch.setenv("CRASH", "1")
    return pytester


@pytest.mark.parametrize("timeout", [[], ["--opswald-timeout", "30"]])
def test_pdb_stops_where_the_agent_raised(crashing: pytest.Pytester, timeout: list[str]) -> None:
    """QA (pyopts #3): `pytest --pdb` on a golden whose agent raised opened at opswald's
    own `raise GoldenError`, with none of the agent's frames; its failure is raised with
    the agent's traceback now, so the debugger stops in the agent's frame that raised.
    Under a timeout (the agent in a child process) the frame stands for the child's, its
    locals by their reprs."""
    result = crashing.run(
        sys.executable, "-m", "pytest", "--opswald-goldens", "--pdb", "-p", "no:cacheprovider",
        *timeout, stdin=b"p order\np sorted(locals())\nc\n", timeout=60,
    )  # fmt: skip
    out = result.stdout.str()
    assert "agent.py(14)summarise()" in out, out
    assert "(Pdb) {'id': 7, 'status': 'shipped'}" in out, out
    assert "(Pdb) ['order', 'token']" in out, out
    assert "the agent raised KeyError: 'missing_key'" in out, out  # the failure as before


@pytest.mark.parametrize("option", ["--tb=long", "-l", "--tb=native", "--full-trace"])
def test_tb_long_native_and_showlocals_show_the_agent_frames_as_pytest_does(
    crashing: pytest.Pytester, option: str
) -> None:
    """QA (pyopts #3): `--tb` and `-l` did not change how a failure whose agent raised was
    shown. The agent's frames (its own, not opswald's or pytest's) now come first as pytest
    shows a test's, then the failure's text, whose hint points up instead of repeating the
    traceback's last lines; secrets in the source or the locals are replaced."""
    result = crashing.runpytest("--opswald-goldens", option)
    result.assert_outcomes(failed=1)
    out = result.stdout.str()
    failure = out.split("FAILURES")[1].split("--- opswald ---")[0]
    if option == "--tb=native":
        lines = [
            '  File "*agent.py", line 19, in run',
            '  File "*agent.py", line 14, in summarise',
            "KeyError: 'missing_key'",
        ]
    else:
        lines = [
            "    def run(input):",
            ">*return summarise(*",
            "agent.py:19: ",
            "E * KeyError: 'missing_key'",
            "agent.py:14: KeyError",
        ]
    result.stdout.fnmatch_lines([*lines, "the agent raised KeyError: 'missing_key'"])
    assert "the agent's traceback is above" in failure
    assert "traceback ends" not in failure
    if option != "--full-trace":  # opswald's and pytest's frames are filtered out
        assert "opswald" not in failure.replace("opswald_adapter", "").split("the agent raised")[0]
        assert "/_pytest/" not in failure and "/opswald/" not in failure
    if option == "-l":
        assert "order      = {'id': 7, 'status': 'shipped'}" in failure
    assert "a1B2c3D4e5F6g7H8i9J0kLmNoPqRsTuV" not in out
    if option != "--tb=native":  # the source of the frame (and, with -l, its locals)
        assert "<redacted:openai-key>" in failure
    # the crash line stays the golden's
    result.stdout.fnmatch_lines(["FAILED goldens/o.golden.yaml::o - the agent raised KeyError*"])


@pytest.mark.parametrize(
    ("option", "shown"), [("--tb=auto", True), ("--tb=short", True), ("--tb=line", False)]
)
def test_default_and_short_keep_the_tail_in_the_hint_and_line_one_line(
    crashing: pytest.Pytester, option: str, shown: bool
) -> None:
    """`--tb=auto` and `short`: the failure's text with the traceback's last lines in its
    hint, as before. `--tb=line`: one line per failure, as pytest prints a test's, at the
    agent's line that raised (QA capture #5: it named the golden's first line)."""
    result = crashing.runpytest("--opswald-goldens", option)
    result.assert_outcomes(failed=1)
    failure = result.stdout.str().split("FAILURES")[1].split("--- opswald ---")[0]
    assert ("the agent's traceback ends:" in failure) is shown
    assert ("[- golden] [+ actual]" in failure) is shown
    assert "    def run(input):" not in failure
    if not shown:
        body = [line for line in failure.splitlines()[1:] if line.strip(" =-")]
        assert len(body) == 1 and body[0].endswith(
            "/agent.py:14: the agent raised KeyError: 'missing_key'"
        ), body


def test_the_agent_frames_cross_xdist(crashing: pytest.Pytester) -> None:
    result = crashing.runpytest("--opswald-goldens", "-n", "2", "-l")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*def summarise(order):",
            "*KeyError: 'missing_key'",
            "order      = *",
            "the agent raised KeyError*",
        ]
    )
    assert "a1B2c3D4e5F6g7H8i9J0kLmNoPqRsTuV" not in result.stdout.str()


@pytest.mark.parametrize("workers", [[], ["-n", "2"]], ids=["inline", "xdist"])
def test_the_agent_frames_and_locals_cross_from_a_timeouts_child(
    crashing: pytest.Pytester, workers: list[str]
) -> None:
    """QA (capture #2): under a timeout the agent runs in a child process, and `--tb=long`
    and `-l` showed only the hint's last lines. The agent's exception now comes back with
    its frames (their source) and their locals' reprs, shown as without a timeout."""
    args = ["--opswald-goldens", "-l", "-p", "no:randomly", *workers]
    shown = []
    for timeout in ([], ["--opswald-timeout", "30"]):
        result = crashing.runpytest(*args, *timeout)
        result.assert_outcomes(failed=1)
        out = result.stdout.str()
        assert "a1B2c3D4e5F6g7H8i9J0kLmNoPqRsTuV" not in out
        lines = result.stdout.lines
        start = next(i for i, line in enumerate(lines) if "golden: o _" in line)
        end = next(i for i, line in enumerate(lines) if line.startswith("fix: "))
        shown.append([line for line in lines[start + 1 : end] if not line.startswith("[gw")])
    inline, forked = shown
    result.stdout.fnmatch_lines(
        [
            "    def summarise(order):",
            "E * KeyError: 'missing_key'",
            "order      = {'id': 7, 'status': 'shipped'}",
            "token      = '<redacted:openai-key>'",
            "agent.py:14: KeyError",
        ]
    )
    # the same frames, source and locals as without a timeout (reprs of the child's
    # objects stand for them), but for each frame's arguments above its source and the
    # `^^^` under its line (a frame rebuilt in this process has neither)
    rebuilt = re.compile(r"^\w+ = |^\s*\^+$")
    assert [line for line in forked if line.strip(" _")] == [
        line for line in inline if line.strip(" _") and not rebuilt.match(line)
    ]


DEEP_AGENT = """
import opswald


@opswald.tool
def lookup(order_id):
    return {"id": order_id}


def parse(order):
    return order["id"]


def price(order):
    return parse(order)


def total(order):
    return price(order)


def summarise(order):
    return total(order)


def run(input):
    return summarise(lookup(order_id=input["order"]))
"""


def test_the_hints_traceback_keeps_whole_frames(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """QA (capture #4): the hint's last lines of the traceback began in the middle of a
    frame (its code without the `File` line that says where it is). Now whole frames,
    under the `Traceback` line and a count of those left out."""
    agent_project(pytester, DEEP_AGENT, d="name: d\ninput: {order: 7}\n")
    record(pytester)
    (pytester.path / "agent.py").write_text(
        DEEP_AGENT.replace('return order["id"]', 'return order["missing_key"]')
    )
    result = pytester.runpytest("--opswald-goldens", "-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    out = result.stdout.str()
    hint = out.split("the agent's traceback ends:\n")[1].split("\nfix: ")[0].splitlines()
    body = [line.strip() for line in hint if not set(line.strip()) <= set("~^")]
    assert body[0] == "Traceback (most recent call last):", hint
    assert body[1] == "... 2 frames above", hint  # run and summarise, of five
    frames = [line for line in body if line.startswith('File "')]
    assert [f.rsplit(", in ", 1)[1] for f in frames] == ["total", "price", "parse"], hint
    assert body[2].startswith('File "') and body[2].endswith("line 19, in total"), hint
    assert body[3] == "return price(order)", hint
    assert body[-1] == "KeyError: 'missing_key'", hint


WARNING_AGENT = """
import warnings

import opswald


@opswald.tool
def lookup(order_id):
    return {"id": order_id}


def run(input):
    order = lookup(order_id=input["order"])
    warnings.warn("the field `total` is deprecated", UserWarning)
    return order
"""


def test_a_warning_made_an_error_by_a_filter_says_so_in_its_fix(
    pytester: pytest.Pytester,
) -> None:
    """QA (capture #6): under `-W error::UserWarning` the failure said "the agent raised
    UserWarning" and its fix line sent the user to record the crash again."""
    agent_project(pytester, WARNING_AGENT, w="name: w\ninput: {order: 7}\n")
    record(pytester, "-W", "ignore::UserWarning")
    result = pytester.runpytest("--opswald-goldens", "-W", "error::UserWarning")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "the agent raised UserWarning: the field `total` is deprecated",
            "fix: a warnings filter (-W error, filterwarnings = error) made the agent's "
            "UserWarning an exception: let it through there (-W default::UserWarning, or an "
            "`ignore:` filter for its message), or stop the agent warning it (an update does "
            "not bless a crash the golden did not have)",
        ]
    )
    assert "--opswald-mode=rerecord" not in result.stdout.str()


def test_the_summary_row_of_a_crashed_run_says_why_and_compares_no_totals(
    crashing: pytest.Pytester,
) -> None:
    """QA (capture #6): the opswald section's row of a golden whose agent raised had no
    line saying why (a diverged one names its first divergence), and compared its totals
    with the golden's (`10 tok (-60%)`), which a run that stopped early cannot be (a
    diverged one's are not compared)."""
    result = crashing.runpytest("--opswald-goldens")
    result.assert_outcomes(failed=1)
    section = result.stdout.str().split("--- opswald ---")[1].split("short test summary")[0]
    rows = section.splitlines()
    at = rows.index("FAILED    goldens/o.golden.yaml::o")
    assert rows[at + 1] == "          failed: the agent raised KeyError: 'missing_key'", rows
    assert rows[at + 2].startswith("          1 step (0 llm, 1 tool), 0 tok, "), rows
    assert "%)" not in rows[at + 2], rows


def test_a_timeouts_native_traceback_reads_as_without_one(crashing: pytest.Pytester) -> None:
    """QA (probe22 #3): under a timeout `--tb=native` showed each agent frame at the line
    before its `def`, without its source (the frames rebuilt in the test process had the
    stand-in code's positions), so a recursion's frames all looked alike."""
    shown = []
    for timeout in ([], ["--opswald-timeout", "30"]):
        result = crashing.runpytest("--opswald-goldens", "--tb=native", *timeout)
        result.assert_outcomes(failed=1)
        lines = result.stdout.str().split("golden: o _")[1].split("the agent raised")[0]
        shown.append([line for line in lines.splitlines()[1:] if line.strip(" ~^")])
    assert shown[0] == shown[1], shown
    assert any(line.endswith("line 14, in summarise") for line in shown[1]), shown


GROUP_AGENT = """
import asyncio

import opswald


@opswald.tool
def lookup(order_id):
    return {"id": order_id}


async def failing(i):
    raise KeyError(f"task {i}")


async def both():
    async with asyncio.TaskGroup() as group:
        group.create_task(failing(1))
        group.create_task(failing(2))


def run(input):
    order = lookup(order_id=input["order"])
    if order["id"] == 8:
        asyncio.run(both())
    return order
"""


@pytest.mark.parametrize("timeout", [[], ["--opswald-timeout", "30"]])
def test_an_exception_group_is_shown_by_its_first_exception(
    pytester: pytest.Pytester, timeout: list[str]
) -> None:
    """An agent's task group that failed: the hint showed the last lines of Python's boxes
    (the second member, cut at its top) and `--tb=line` pointed at asyncio's
    `taskgroups.py`; now the hint names the group and shows its first exception's
    traceback, and `--tb=line` points at the line that raised it."""
    folder = agent_project(pytester, GROUP_AGENT, g="name: g\ninput: {order: 7}\n")
    record(pytester)
    golden = folder / "g.golden.yaml"
    golden.write_text(golden.read_text().replace("order: 7", "order: 8").replace("id: 7", "id: 8"))
    result = pytester.runpytest("--opswald-goldens", *timeout)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*hint: the golden finished without an error; the agent's traceback ends:",
            "*ExceptionGroup: unhandled errors in a TaskGroup (2 sub-exceptions); the first of*",
            "*Traceback (most recent call last):",
            '*File "*agent.py", line 12, in failing',
            '*raise KeyError(f"task {i}")',
            "*KeyError: 'task 1'",
            "fix: *",
        ]
    )
    assert "task 2" not in result.stdout.str()
    line = pytester.runpytest("--opswald-goldens", "--tb=line", *timeout)
    line.stdout.fnmatch_lines(
        [f"{pytester.path / 'agent.py'}:12: the agent raised ExceptionGroup: unhandled errors*"]
    )


def test_the_members_of_an_exception_group_keep_their_frames_under_a_timeout(
    pytester: pytest.Pytester,
) -> None:
    """QA (probe22 #4): under a timeout an ExceptionGroup's members came back without
    their tracebacks (`| KeyError: 'task 1'` alone)."""
    golden = (
        agent_project(pytester, GROUP_AGENT, g="name: g\ninput: {order: 7}\n") / "g.golden.yaml"
    )
    record(pytester)
    golden.write_text(golden.read_text().replace("order: 7", "order: 8").replace("id: 7", "id: 8"))
    for timeout in ([], ["--opswald-timeout", "30"]):
        result = pytester.runpytest("--opswald-goldens", "--tb=long", *timeout)
        result.assert_outcomes(failed=1)
        result.stdout.fnmatch_lines(
            [
                "*ExceptionGroup: unhandled errors in a TaskGroup (2 sub-exceptions)",
                "*-- 1 --*",
                '*File "*agent.py", line 12, in failing',
                "*KeyError: 'task 1'",
                "*-- 2 --*",
                '*File "*agent.py", line 12, in failing',
                "*KeyError: 'task 2'",
            ]
        )
