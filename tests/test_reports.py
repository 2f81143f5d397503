"""JSON report, saved actual sessions and JUnit properties — serial and under xdist."""

from __future__ import annotations

import json
import os
import select
import stat
import threading
import xml.etree.ElementTree as ET
from pathlib import Path

import jsonschema
import pytest

from conftest import STUB, opswald_cli, record, write
from opswald import load
from opswald.report.json_report import REPORT_SCHEMA


def _copies(project: pytest.Pytester) -> None:
    goldens = project.path / "goldens"
    for name in ("a", "b"):
        text = (goldens / "flight.golden.yaml").read_text().replace("book_flight", f"book_{name}")
        (goldens / f"{name}.golden.yaml").write_text(text)


def _stable(report: dict[str, object]) -> dict[str, object]:
    """The report without the fields it lists as measured (`measured_fields`: wall-clock
    figures that differ run to run), so that what is left must match exactly."""
    data = json.loads(json.dumps(report))

    def drop(node: object, parts: list[str]) -> None:
        head, rest = parts[0], parts[1:]
        key, each = head.removesuffix("[]"), head.endswith("[]")
        if not isinstance(node, dict) or node.get(key) is None:
            return
        targets = node[key] if each else [node[key]]
        if not rest:
            node.pop(key)
            return
        for target in targets:
            drop(target, rest)

    for spec in data.pop("measured_fields"):
        drop(data, spec.split("."))
    return data


def test_json_report_matches_its_schema_and_xdist(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    record(project)
    _copies(project)
    b = project.path / "goldens" / "b.golden.yaml"
    b.write_text(b.read_text().replace("passenger: Alice", "passenger: Carol", 1))
    serial = project.runpytest("--opswald-goldens", "--opswald-json", "serial.json")
    serial.assert_outcomes(passed=2, failed=1)
    report = json.loads((project.path / "serial.json").read_text())
    jsonschema.validate(report, REPORT_SCHEMA)
    assert (report["total"], report["passed"], report["failed"]) == (3, 2, 1)
    assert report["success_rate"] == pytest.approx(2 / 3, abs=1e-6)
    (failed,) = report["failed_tests"]
    assert failed["name"] == "goldens/b.golden.yaml::book_b"
    assert failed["file"] == "goldens/b.golden.yaml"
    assert failed["step"] == 2, "Carol is looked up at step 2 of the golden; Alice is"
    assert failed["error"] == "called lookup with other arguments"
    assert "Carol" in failed["suggestion"]
    row = next(r for r in report["goldens"] if r["name"].endswith("book_a"))
    assert (row["steps"], row["llm_calls"], row["tool_calls"]) == (7, 3, 2)
    assert row["delta"]["cost"] == {"change": 0.0, "percent": 0.0}
    parallel = project.runpytest("--opswald-goldens", "--opswald-json", "parallel.json", "-n", "2")
    parallel.assert_outcomes(passed=2, failed=1)
    assert _stable(json.loads((project.path / "parallel.json").read_text())) == _stable(report)


def test_saved_actual_sessions_load(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    record(project)
    monkeypatch.setenv("AGENT_VARIANT", "args")
    result = project.runpytest("--opswald-goldens", "--opswald-save-actual", "actual")
    result.assert_outcomes(failed=1)
    saved = project.path / "actual" / "book_flight.actual.yaml"
    session = load(saved)
    assert [s.type for s in session.step_list][:4] == ["llm_call", "tool_call", "state", "llm_call"]
    project.runpytest("--opswald-goldens", "--collect-only", "-q").stdout.no_fnmatch_line(
        "*actual*"
    )


def test_a_long_golden_name_is_saved_under_a_short_file_name_the_viewer_pairs(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A `name:` too long for a file name (over 255 bytes with `.actual.yaml`): its actual
    is saved under the name cut short with a hash of the whole name, and `opswald html
    --actual-dir` still finds it; the other failing golden is saved and reported too."""
    import os

    record(project)
    goldens = project.path / "goldens"
    long = "L" * 300
    text = (goldens / "flight.golden.yaml").read_text()
    (goldens / "long.golden.yaml").write_text(text.replace("name: book_flight", f"name: {long}"))
    # one character more: a name sharing the first part still gets its own file
    (goldens / "longer.golden.yaml").write_text(text.replace("name: book_flight", f"name: {long}M"))
    monkeypatch.setenv("AGENT_VARIANT", "args")
    args = ["--opswald-goldens", "--opswald-save-actual=actual", "--opswald-json=r.json"]
    result = project.runpytest(*args)
    result.assert_outcomes(failed=3)
    assert "INTERNALERROR" not in result.stdout.str() + result.stderr.str()
    assert json.loads((project.path / "r.json").read_text())["failed"] == 3
    saved = sorted(p.name for p in (project.path / "actual").iterdir())
    assert len(saved) == 3 and "book_flight.actual.yaml" in saved, saved
    assert all(len(os.fsencode(name)) <= 255 for name in saved), saved
    assert sum(name.startswith("L" * 100) for name in saved) == 2, saved
    first = sorted((project.path / "actual").iterdir())
    project.runpytest(*args).assert_outcomes(failed=3)  # the same names run after run
    assert sorted((project.path / "actual").iterdir()) == first
    html = ["html", "goldens", "--actual-dir", "actual", "-o", "v.html"]
    proc = opswald_cli(*html, cwd=project.path)
    assert proc.returncode == 0, proc.stderr
    assert "3 goldens (3 differing from their actual)" in proc.stdout, proc.stdout
    assert "no golden of that name" not in proc.stdout


def test_names_that_differ_only_in_characters_a_file_name_cannot_keep_get_their_own_files(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`refund/eu`, `refund eu` and `refund_eu` all read `refund_eu` once made a file name:
    each still gets its own saved actual, and `opswald html --actual-dir` pairs each with
    its own golden."""
    from opswald.report.html_cli import _actuals_for

    record(project)
    goldens = project.path / "goldens"
    text = (goldens / "flight.golden.yaml").read_text()
    (goldens / "flight.golden.yaml").unlink()
    names = {"slash": "refund/eu", "under": "refund_eu", "space": "refund eu"}
    for who, name in names.items():
        golden = text.replace("name: book_flight", f"name: {name}").replace("Alice", who)
        (goldens / f"{who}.golden.yaml").write_text(golden)
    monkeypatch.setenv("AGENT_VARIANT", "args")
    result = project.runpytest("--opswald-goldens", "--opswald-save-actual=actual")
    result.assert_outcomes(failed=3)
    saved = sorted(p.name for p in (project.path / "actual").iterdir())
    assert len(saved) == 3 and "refund_eu.actual.yaml" in saved, saved
    for who, name in names.items():
        ((_, path),) = _actuals_for(project.path / "actual", name)
        assert load(path).input["who"] == who  # its own run, not another golden's
    html = ["html", "goldens", "--actual-dir", "actual", "-o", "v.html"]
    proc = opswald_cli(*html, cwd=project.path)
    assert proc.returncode == 0, proc.stderr
    assert "3 goldens (3 differing from their actual)" in proc.stdout, proc.stdout
    assert "no golden of that name" not in proc.stdout


def test_the_viewer_finds_the_variants_of_a_name_made_a_file_name(tmp_path: Path) -> None:
    from opswald.files import saved_actual_name
    from opswald.report.html_cli import _actuals_for

    for name, variant in (("refund eu", "big"), ("refund eu", None), ("refund_eu", "big")):
        (tmp_path / saved_actual_name(name, variant)).write_text("x")
    assert [test for test, _ in _actuals_for(tmp_path, "refund eu")] == [
        "refund eu",
        "refund eu[big]",
    ]
    assert [test for test, _ in _actuals_for(tmp_path, "refund_eu")] == ["refund_eu[big]"]


@pytest.mark.parametrize("workers", [[], ["-n", "2"]], ids=["serial", "xdist"])
def test_an_actual_that_cannot_be_saved_is_noted_and_the_run_goes_on(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, workers: list[str]
) -> None:
    record(project)
    _copies(project)
    for name in ("book_a", "book_b"):  # a folder where the file should be
        (project.path / "actual" / f"{name}.actual.yaml").mkdir(parents=True)
    monkeypatch.setenv("AGENT_VARIANT", "args")
    result = project.runpytest(
        "--opswald-goldens", "--opswald-save-actual=actual", "--opswald-json=r.json", *workers
    )
    result.assert_outcomes(failed=3)
    assert "INTERNALERROR" not in result.stdout.str() + result.stderr.str()
    result.stdout.fnmatch_lines(
        [
            "note: goldens/a.golden.yaml::book_a: --opswald-save-actual: its actual session "
            "was not saved: cannot write *book_a.actual.yaml: is a folder, not a file",
            "note: goldens/b.golden.yaml::book_b: --opswald-save-actual: *is a folder, not a file",
        ]
    )
    report = json.loads((project.path / "r.json").read_text())
    assert (report["total"], report["failed"]) == (3, 3)


def test_junit_properties(project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    record(project)
    monkeypatch.setenv("AGENT_VARIANT", "args")
    project.runpytest("--opswald-goldens", "--junitxml", "junit.xml")
    tree = ET.parse(project.path / "junit.xml")
    case = tree.find(".//testcase")
    assert case is not None
    props = {p.get("name"): p.get("value") for p in case.iter("property")}
    assert props["opswald.status"] == "failed"
    assert props["opswald.divergence_step"] == "5"
    assert float(props["opswald.cost"]) > 0
    assert int(props["opswald.total_tokens"]) > 0


def test_terminal_table_lists_failures_by_default_and_all_with_v(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    record(project)
    _copies(project)
    b = project.path / "goldens" / "b.golden.yaml"
    b.write_text(b.read_text().replace("passenger: Alice", "passenger: Carol", 1))
    result = project.runpytest("--opswald-goldens", "--opswald-slow-ms=0")
    out = result.stdout.str()
    result.stdout.fnmatch_lines(
        [
            "FAILED    goldens/b.golden.yaml::book_b",
            "          first divergence: step 2 tool_call lookup",
            "          2 steps (1 llm, 1 tool), 45 tok, $0.00040, * ms",
            "latency analysis (slow steps):",
            "  book_b: step 1 llm_call m1 * ms",
            "cost analysis (most expensive steps):",
        ]
    )
    assert "goldens/a.golden.yaml::book_a" not in out.split("--- opswald ---")[-1]
    assert all(len(line) <= 80 for line in out.split("--- opswald ---")[-1].splitlines()[:20])
    verbose = project.runpytest("--opswald-goldens", "-v").stdout.str()
    assert "PASSED    goldens/a.golden.yaml::book_a" in verbose


def test_a_cost_regression_is_listed(project: pytest.Pytester) -> None:
    record(project)
    path = project.path / "goldens" / "flight.golden.yaml"
    text = path.read_text()
    # the golden now says the calls were cheaper than they are: the run costs more
    path.write_text(text.replace("cost: 0.0004", "cost: 0.0001"))
    result = project.runpytest(
        "--opswald-goldens", "--opswald-mode=live", "--opswald-allow-side-effects"
    )
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(
        ["REGRESSED goldens/flight.golden.yaml::book_flight", "*, $0.00* (+*%), *"]
    )


def test_shards_merge_into_the_unsharded_report(project: pytest.Pytester) -> None:

    record(project)
    _copies(project)
    project.runpytest("--opswald-goldens", "--opswald-json", "all.json")
    project.runpytest("--opswald-goldens", "-k", "book_a", "--opswald-json", "shard1.json")
    project.runpytest("--opswald-goldens", "-k", "not book_a", "--opswald-json", "shard2.json")
    merged = opswald_cli(
        "report", "merge", "shard1.json", "shard2.json", "-o", "merged.json", cwd=project.path
    )
    assert merged.returncode == 0, merged.stderr
    assert "merged 2 reports: 3 goldens, 3 passed, 0 failed" in merged.stdout
    whole = json.loads((project.path / "all.json").read_text())
    combined = json.loads((project.path / "merged.json").read_text())
    assert _stable(combined) == _stable(whole)
    overlap = opswald_cli(
        "report", "merge", "all.json", "shard1.json", "-o", "bad.json", cwd=project.path
    )
    assert overlap.returncode == 4
    assert "book_a is in two shards" in overlap.stderr


@pytest.mark.parametrize(
    ("command", "label"),
    [
        (["validate"], "validating"),
        (["analyze"], "analyzing"),
        (["html", "-o", "v.html"], "reading"),
    ],
)
def test_cli_progress_on_a_terminal_only(tmp_path: Path, command: list[str], label: str) -> None:
    import shutil
    import subprocess
    import sys

    import pexpect

    root = Path(__file__).resolve().parents[1]
    folder = tmp_path / "goldens"
    shutil.copytree(root / "goldens", folder)
    argv = ["-m", "opswald.cli", command[0], str(folder), *command[1:]]
    piped = subprocess.run(
        [sys.executable, *argv],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=tmp_path,
    )
    assert piped.returncode == 0, piped.stderr
    assert label not in piped.stderr + piped.stdout
    child = pexpect.spawn(sys.executable, argv, timeout=30, encoding="utf-8", cwd=str(tmp_path))
    child.expect(rf"{label} \d+/6")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0


def test_quiet_keeps_only_the_counts(project: pytest.Pytester) -> None:
    record(project)
    _copies(project)
    b = project.path / "goldens" / "b.golden.yaml"
    b.write_text(b.read_text().replace("passenger: Alice", "passenger: Carol", 1))
    out = project.runpytest("--opswald-goldens", "-q").stdout.str()
    section = out.split("--- opswald ---")[-1]
    assert "goldens: 2 passed, 1 failed" in section
    assert "first divergence" not in section and "cost analysis" not in section


def test_very_quiet_prints_the_section_only_for_what_asks_for_action(
    project: pytest.Pytester,
) -> None:
    """-qq: pytest drops its counts line; ours goes too, unless a golden was written or a
    note says something (then only those lines)."""
    record(project)
    _copies(project)
    passing = project.runpytest("--opswald-goldens", "-qq")
    assert passing.ret == 0
    passing.stdout.fnmatch_lines(["...*"])  # pytest -qq: its dots, no counts line
    assert "opswald" not in passing.stdout.str()
    assert "goldens:" not in passing.stdout.str()
    b = project.path / "goldens" / "b.golden.yaml"
    b.write_text(b.read_text().replace("passenger: Alice", "passenger: Carol", 1))
    failing = project.runpytest("--opswald-goldens", "-qq")
    assert failing.ret == 1
    assert "--- opswald ---" not in failing.stdout.str()
    failing.stdout.fnmatch_lines(["*goldens/b.golden.yaml::book_b*"])  # pytest's own report
    updated = project.runpytest(
        "--opswald-goldens", "--opswald-update", "--opswald-allow-side-effects", "-qq"
    )
    assert updated.ret == 0
    section = updated.stdout.str().split("--- opswald ---")[-1].splitlines()
    assert section[1:] == ["1 golden updated: review it with git diff"], section


def test_many_workers_on_few_cores(project: pytest.Pytester) -> None:
    """Live runs are I/O-bound: -n 16 on a 2-core runner must work and report the same."""
    record(project)
    _copies(project)
    serial = project.runpytest("--opswald-goldens", "--opswald-json", "one.json")
    wide = project.runpytest("--opswald-goldens", "-n", "16", "--opswald-json", "wide.json")
    wide.assert_outcomes(passed=3)
    wide.stdout.fnmatch_lines(["*goldens: 3 passed, 0 failed*"])
    assert serial.ret == 0
    one = json.loads((project.path / "one.json").read_text())
    assert _stable(json.loads((project.path / "wide.json").read_text())) == _stable(one)


def test_opswald_diff_of_a_saved_actual(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    import subprocess
    import sys

    record(project)
    monkeypatch.setenv("AGENT_VARIANT", "args")
    project.runpytest(
        "--opswald-goldens",
        "--opswald-mode=live",
        "--opswald-allow-side-effects",
        "--opswald-save-actual",
        "actual",
    )
    golden, saved = "goldens/flight.golden.yaml", "actual/book_flight.actual.yaml"
    run = subprocess.run(
        [sys.executable, "-m", "opswald.cli", "diff", golden, saved],
        cwd=project.path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert run.returncode == 1, run.stderr
    assert "step 5 › input.passenger: 'Alice' → 'Bob'" in run.stdout
    assert "timestamp" not in run.stdout
    same = subprocess.run(
        [sys.executable, "-m", "opswald.cli", "diff", golden, golden],
        cwd=project.path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert same.returncode == 0 and "no differences" in same.stdout


def test_a_variant_report_is_the_same_under_xdist_but_for_its_measured_fields(
    project: pytest.Pytester,
) -> None:
    record(project)
    _copies(project)
    args = ["--opswald-goldens", "--opswald-variant", "v1:model=m1", "--opswald-variant",
            "v2:model=m2"]  # fmt: skip
    project.runpytest(*args, "--opswald-json", "one.json")
    project.runpytest(*args, "--opswald-json", "two.json", "-n", "2")
    one = json.loads((project.path / "one.json").read_text())
    two = json.loads((project.path / "two.json").read_text())
    assert "variants.variants[].mean_duration_ms" in one["measured_fields"]
    assert "goldens[].delta.duration_ms" in one["measured_fields"]
    assert len(one["variants"]["variants"]) == 2
    assert _stable(two) == _stable(one)


def test_a_file_given_as_the_save_actual_folder_is_a_usage_error(
    project: pytest.Pytester,
) -> None:
    """A file where --opswald-save-actual's folder must be lost every failed golden's actual
    (a note each, after the run); it is a usage error at startup, as for the reports."""
    (project.path / "actual").write_text("a file where the folder should be\n")
    result = project.runpytest("--opswald-goldens", "--opswald-save-actual=actual/")
    assert result.ret == pytest.ExitCode.USAGE_ERROR, result.stdout.str()
    result.stderr.fnmatch_lines(
        ["ERROR: --opswald-save-actual must be a folder: actual is a file, not a folder"]
    )


@pytest.mark.parametrize("option", ["--opswald-json", "--opswald-html"])
@pytest.mark.parametrize(
    ("given", "said"),
    [
        ("out", "out is a folder; name a file in it, such as out/{example}"),
        ("out/", "out/ is a folder; name a file in it, such as out/{example}"),
        (
            "nonexist/",
            "nonexist/ is a folder path (it ends in /), not a file name; name a file, "
            "such as nonexist/{example}",
        ),
        ("afile/r.x", "afile is a file, not a folder, in afile/r.x"),
    ],
    ids=["folder", "folder-slash", "no-folder-slash", "through-a-file"],
)
def test_a_report_path_that_cannot_be_a_file_is_a_usage_error(
    project: pytest.Pytester, option: str, given: str, said: str
) -> None:
    """A folder given as the report's file (or a file where its folder must be) crashed
    the end of the run with a traceback, losing the failures and the summary, after every
    golden had run; it is a usage error at startup, naming the option and the path. A
    path ending in / that names nothing yet was called "a folder" too: it is a folder
    path, and the message says so, and that a file name is needed."""
    record(project)
    (project.path / "out").mkdir()
    (project.path / "afile").write_text("")
    result = project.runpytest("--opswald-goldens", option, given)
    assert result.ret == pytest.ExitCode.USAGE_ERROR, result.stdout.str()
    example = "report.json" if option == "--opswald-json" else "viewer.html"
    assert [line for line in result.stderr.lines if line] == [
        f"ERROR: {option} must be a file name: {said.format(example=example)}"
    ]
    assert not (project.path / "nonexist").exists()


def test_the_json_report_and_the_viewer_at_one_path_is_a_usage_error(
    project: pytest.Pytester,
) -> None:
    result = project.runpytest("--opswald-goldens", "--opswald-json=r", "--opswald-html=./r")
    assert result.ret == pytest.ExitCode.USAGE_ERROR, result.stdout.str()
    result.stderr.fnmatch_lines(["*--opswald-json and --opswald-html both name*"])


# a folder no file system can make: its name is longer than any allows (255 bytes); and,
# on Linux, one /proc refuses (the path of the report in the issue)
_UNMAKEABLE = ["x" * 300 + "/r.out", *(["/proc/nope/r.out"] if Path("/proc/self").is_dir() else [])]


@pytest.mark.parametrize("option", ["--opswald-json", "--opswald-html", "--opswald-save-actual"])
@pytest.mark.parametrize("given", _UNMAKEABLE, ids=["long", "proc"][: len(_UNMAKEABLE)])
def test_a_report_folder_that_cannot_be_made_is_a_usage_error_before_any_golden_runs(
    project: pytest.Pytester, option: str, given: str
) -> None:
    """A report whose folder could not be made was found out only when the run ended: a
    note, exit 0, and a CI gate on the report lost it in silence. The folder is made at
    startup (pytest's --junitxml makes it at the end) and one that cannot be is a usage
    error naming the option, the path and why, before a golden runs."""
    record(project)
    project.makepyfile(test_side="def test_runs():\n    open('ran', 'w').close()\n")
    result = project.runpytest(
        "--opswald-goldens", "goldens", "test_side.py", option, given, "-n", "2"
    )
    assert result.ret == pytest.ExitCode.USAGE_ERROR, result.stdout.str()
    folder = given.rsplit("/", 1)[0] if option != "--opswald-save-actual" else given
    reason = "File name too long" if given.startswith("x") else "No such file or directory"
    assert [line for line in result.stderr.lines if line] == [
        f"ERROR: {option}: cannot write {given}: cannot make the folder {folder}: {reason}"
    ]
    assert not (project.path / "ran").exists()
    assert "passed" not in result.stdout.str()


@pytest.mark.parametrize("workers", [[], ["-n", "2"]], ids=["serial", "xdist"])
@pytest.mark.parametrize("option", ["--opswald-json", "--opswald-html", "--opswald-save-actual"])
def test_a_report_folder_is_made_at_startup_as_needed(
    project: pytest.Pytester, option: str, workers: list[str]
) -> None:
    """The folders a report needs are there before the tests run (the check that they can
    be made makes them; under xdist the controller, before its workers start)."""
    project.makepyfile(
        test_side="""
        import os

        def test_the_folder_is_there():
            assert os.path.isdir("deep/er")
        """
    )
    given = "deep/er" if option == "--opswald-save-actual" else "deep/er/r.out"
    result = project.runpytest("test_side.py", option, given, *workers)
    assert result.ret == pytest.ExitCode.OK, result.stdout.str()
    assert os.listdir(project.path / "deep" / "er") == (
        [] if option == "--opswald-save-actual" else ["r.out"]
    )


@pytest.mark.parametrize("asked", ["--help", "--version"])
def test_help_and_version_make_no_report_folder(project: pytest.Pytester, asked: str) -> None:
    """`--help` and `--version` write nothing, so they make none of the report folders
    the options name (a run checks them at startup by making them)."""
    result = project.runpytest(
        asked,
        "--opswald-goldens",
        "--opswald-json",
        "deep/r.json",
        "--opswald-save-actual",
        "saved",
    )
    assert result.ret == pytest.ExitCode.OK, result.stdout.str() + result.stderr.str()
    assert not (project.path / "deep").exists()
    assert not (project.path / "saved").exists()


@pytest.mark.parametrize("fails", [False, True])
@pytest.mark.parametrize("quiet", [[], ["-q"]], ids=["", "quiet"])
def test_a_report_that_cannot_be_written_at_the_end_fails_the_run(
    project: pytest.Pytester, fails: bool, quiet: list[str]
) -> None:
    """A write that fails when the run ends (here a folder made at the path meanwhile; a
    full disk alike) was a note and the tests' exit code (0 when they passed): a CI gate
    lost its report in silence. It is an `error:` line of the summary naming the report,
    its path and why, never a traceback; the failures are shown as usual, and the run
    exits 1 (as pytest does when it cannot write --junitxml)."""
    record(project)
    if fails:
        golden = project.path / "goldens" / "flight.golden.yaml"
        golden.write_text(golden.read_text().replace("passenger: Alice", "passenger: Carol", 1))
    project.makepyfile(
        test_meanwhile="""
        import os

        def test_makes_folders():
            os.mkdir("r.json")
            os.mkdir("v.html")
        """
    )
    result = project.runpytest(
        "--opswald-goldens", "goldens", "test_meanwhile.py", "-p", "no:randomly",
        "--opswald-json", "r.json", "--opswald-html", "v.html", *quiet,
    )  # fmt: skip
    out = result.stdout.str()
    assert result.ret == pytest.ExitCode.TESTS_FAILED, out
    assert "Traceback" not in out + result.stderr.str()
    assert "IsADirectoryError" not in out + result.stderr.str()
    result.stdout.fnmatch_lines(
        [
            "*- opswald -*",
            f"goldens: {0 if fails else 1} passed, {1 if fails else 0} failed*",
            "error: --opswald-html: the viewer was not written, so the run fails: cannot "
            "write v.html: is a folder, not a file",
            "error: --opswald-json: the report was not written, so the run fails: cannot "
            "write r.json: is a folder, not a file",
        ]
    )
    assert "note: --opswald" not in out
    if fails:
        assert "= FAILURES =" in out


PRICED_AGENT = """
import os

import opswald


@opswald.llm(provider="acme", api="acme.chat")
def chat(*, model, messages):
    cost = 0.5 if len(messages) == 1 else 0.1
    return {"content": "ok", "finish_reason": "stop", "cost": cost}


@opswald.tool
def a(n):
    return n + 1


def run(input):
    how = os.environ.get("HOW", "")
    if how == "snapshot":
        opswald.state(memory={"first": True})
    chat(model="m", messages=[{"role": "user", "content": "go"}])
    a(1)
    last = "changed" if how == "snapshot" else "again"
    chat(model="m", messages=[{"role": "user", "content": "go"}, {"role": "user", "content": last}])
    if how == "extra":
        chat(model="m", messages=[{"role": "user", "content": "more"}] * 2)
    return "done"
"""


@pytest.fixture
def priced(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    """golden: llm m ($0.50) → tool a → llm m ($0.10)."""
    monkeypatch.delenv("HOW", raising=False)
    pytester.makepyfile(pagent=PRICED_AGENT)
    pytester.makeini("[pytest]\nopswald_adapter = pagent:run\npythonpath = .\n")
    pytester.mkdir("goldens")
    (pytester.path / "goldens" / "g.golden.yaml").write_text("name: g\ninput: {q: hi}\n")
    pytester.runpytest("--opswald-goldens", "--opswald-mode=record").assert_outcomes(passed=1)
    return pytester


def test_the_cost_analysis_numbers_steps_as_the_golden_does(
    priced: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The agent now takes a snapshot first: its first model call is the run's step 2 and
    the golden's step 1. The failure names golden steps (`step 3 of 3 · llm_call m`), and
    so does the cost analysis (it said `step 2 llm_call m`, golden step 2 being tool a)."""
    monkeypatch.setenv("HOW", "snapshot")
    result = priced.runpytest("--opswald-goldens", "--opswald-json", "r.json")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "step 3 of 3 · llm_call m: *",
            "cost analysis (most expensive steps):",
            "  g: step 1 llm_call m $0.5000",
        ]
    )
    [row] = json.loads((priced.path / "r.json").read_text())["goldens"]
    assert [(s["step"], s["run_step"], s["name"]) for s in row["costly_steps"]] == [(1, False, "m")]


def test_a_costly_step_the_golden_does_not_have_is_numbered_in_the_run(
    priced: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOW", "extra")
    result = priced.runpytest(
        "--opswald-goldens", "--opswald-mode=live", "-v", "--opswald-json", "r.json",
        "--opswald-slow-ms=0",
    )  # fmt: skip
    result.stdout.fnmatch_lines(
        [
            "cost analysis (most expensive steps):",
            "  g: step 1 llm_call m $0.5000",
            "  g: step 3 llm_call m $0.1000",
            "  g: step 4 of this run llm_call m $0.1000",
        ]
    )
    out = result.stdout.str().split("latency analysis (slow steps):")[1]
    assert "  g: step 4 of this run llm_call m " in out
    [row] = json.loads((priced.path / "r.json").read_text())["goldens"]
    assert sorted((s["step"], s["run_step"]) for s in row["costly_steps"]) == [
        (1, False),
        (3, False),
        (4, True),
    ]
    jsonschema.validate(json.loads((priced.path / "r.json").read_text()), REPORT_SCHEMA)


def test_the_reports_passed_counts_updated_and_recorded_goldens(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As its schema and the README say: `passed` counts the goldens recorded or updated
    too (the terminal lists them apart), `updated` and `recorded` tell them apart."""
    result = record(project, "--opswald-json=rec.json")
    result.stdout.fnmatch_lines(["goldens: 0 passed, 0 failed, 1 recorded"])
    report = json.loads((project.path / "rec.json").read_text())
    assert (report["passed"], report["recorded"], report["failed"]) == (1, 1, 0)
    monkeypatch.setenv("AGENT_VARIANT", "prompt")
    result = project.runpytest(
        "--opswald-goldens", "--opswald-update", "--opswald-allow-side-effects",
        "--opswald-json=up.json",
    )  # fmt: skip
    result.stdout.fnmatch_lines(["goldens: 0 passed, 0 failed, 1 updated"])
    report = json.loads((project.path / "up.json").read_text())
    assert (report["passed"], report["updated"], report["success_rate"]) == (1, 1, 1.0)


def test_failed_tests_carry_the_fix_line_of_each_failure(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An update refused on CI says why on its `fix:` line (`not written: the CI
    environment variable is set…`), which the JSON report had nowhere: `suggestion` is the
    finding's hint. `failed_tests[].fix` is that line (null where a failure has none)."""
    record(project)
    write(project.path / "goldens" / "stub.golden.yaml", STUB.replace("book_flight", "stub"))
    monkeypatch.setenv("AGENT_VARIANT", "prompt")
    monkeypatch.setenv("CI", "true")
    result = project.runpytest(
        "--opswald-goldens", "--opswald-update", "--opswald-allow-side-effects",
        "--opswald-json=r.json",
    )  # fmt: skip
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines(["fix: not written: the CI environment variable is set*"])
    report = json.loads((project.path / "r.json").read_text())
    jsonschema.validate(report, REPORT_SCHEMA)
    fixes = {row["name"].split("::")[-1]: row["fix"] for row in report["failed_tests"]}
    assert fixes["book_flight"].startswith("not written: the CI environment variable is set")
    assert "--opswald-force" in fixes["book_flight"]
    # the stub is not recorded on CI (its agent not run): its fix line says how to
    assert fixes["stub"] == "record it locally and commit it, or add --opswald-force"
    monkeypatch.delenv("CI")
    project.runpytest("--opswald-goldens", "--opswald-json=r.json").assert_outcomes(failed=2)
    report = json.loads((project.path / "r.json").read_text())
    fixes = {row["name"].split("::")[-1]: row["fix"] for row in report["failed_tests"]}
    assert fixes["book_flight"].startswith(
        "if the new behaviour is intended, accept it with --opswald-update (the golden then "
        "calls book, marked side_effects=True"
    )
    assert fixes["stub"] == "run with --opswald-mode=record to record it"
    rows = {row["golden"]: row["fix"] for row in report["goldens"]}
    assert rows == fixes


def test_a_failed_test_without_a_fix_line_has_fix_null(project: pytest.Pytester) -> None:
    (project.path / "goldens" / "flight.golden.yaml").write_text("name: [unclosed\n")
    result = project.runpytest("--opswald-goldens", "--opswald-json=r.json")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    [failed] = json.loads((project.path / "r.json").read_text())["failed_tests"]
    assert "fix" in failed and failed["fix"] is None


class _Drained:
    """What is written into a FIFO, read as it comes: the FIFO is opened read-write, so a
    writer never waits for a reader and the reading never sees the end of the file."""

    def __init__(self, fifo: Path) -> None:
        self.fd = os.open(fifo, os.O_RDWR | os.O_NONBLOCK)
        self.chunks: list[bytes] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._drain, daemon=True)
        self.thread.start()

    def _drain(self) -> None:
        while True:
            ready, _, _ = select.select([self.fd], [], [], 0.05)
            if ready:
                self.chunks.append(os.read(self.fd, 65536))
            elif self.stop.is_set():
                return

    def text(self) -> str:
        self.stop.set()
        self.thread.join()
        os.close(self.fd)
        return b"".join(self.chunks).decode()


@pytest.mark.parametrize("workers", [[], ["-n", "2"]], ids=["serial", "xdist"])
@pytest.mark.parametrize("option", ["--opswald-json", "--opswald-html"])
def test_a_report_path_that_is_a_fifo_or_device_is_written_into_not_replaced(
    project: pytest.Pytester, option: str, workers: list[str]
) -> None:
    """A report path that is not a regular file — /dev/null, /dev/stdout, a FIFO, a
    process substitution's /dev/fd/63 — was replaced by a new file holding the report
    (as root, --opswald-json=/dev/null put a report where /dev/null was, for every
    program), or refused at startup as a folder no file can be made in (/dev, not root).
    The report is written into it, as pytest's --junitxml writes, and it stays what it
    was."""
    record(project)
    fifo = project.path / "reports.fifo"
    os.mkfifo(fifo)
    drained = _Drained(fifo)
    result = project.runpytest("--opswald-goldens", "goldens", option, "reports.fifo", *workers)
    text = drained.text()
    assert result.ret == pytest.ExitCode.OK, result.stdout.str() + result.stderr.str()
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)
    assert not [name for name in os.listdir(project.path) if name.endswith(".opswald-tmp")]
    if option == "--opswald-json":
        assert json.loads(text)["passed"] == 1
    else:
        assert text.startswith("<!DOCTYPE html>") and text.rstrip().endswith("</html>")


def test_both_reports_may_go_to_one_fifo_or_device(project: pytest.Pytester) -> None:
    """Both options naming one file is refused, the one written last replacing the other;
    but a device or FIFO (`/dev/null` for both) is written into, each report in turn, so
    both may name it."""
    record(project)
    fifo = project.path / "reports.fifo"
    os.mkfifo(fifo)
    drained = _Drained(fifo)
    result = project.runpytest(
        "--opswald-goldens", "goldens", "--opswald-json", "reports.fifo",
        "--opswald-html", "./reports.fifo",
    )  # fmt: skip
    text = drained.text()
    assert result.ret == pytest.ExitCode.OK, result.stdout.str() + result.stderr.str()
    page, _, report = text.partition("</html>")
    assert page.startswith("<!DOCTYPE html>")
    assert json.loads(report)["passed"] == 1


@pytest.mark.parametrize("option", ["--opswald-html", "--opswald-json", "--opswald-save-actual"])
def test_a_report_path_outside_the_project_given_as_its_own_word_is_a_usage_error(
    project: pytest.Pytester, option: str
) -> None:
    """QA (pyopts #1): pytest looks for its rootdir and config file before it knows the
    plugin's options, so `--opswald-html ../reports/v.html`, once a run wrote that file,
    was taken for a test path: the rootdir moved up past the project's config file, and
    every golden failed for want of its adapter. Said as a usage error with the `=` form;
    the `=` form works, and so does a path inside the project."""
    project.makeini("[pytest]\nopswald_adapter = agent:run\n")
    (project.path / "conftest.py").write_text("")  # the adapter comes from the ini alone
    record(project)
    outside = project.path.parent / f"{project.path.name}-reports"
    given = str(outside if option == "--opswald-save-actual" else outside / "v.out")
    first = project.runpytest("--opswald-goldens", option, given)
    assert first.ret == pytest.ExitCode.OK, first.stdout.str()
    assert os.path.exists(given)
    second = project.runpytest("--opswald-goldens", option, given)
    assert second.ret == pytest.ExitCode.USAGE_ERROR, second.stdout.str()
    said = second.stderr.str()
    assert (
        f"{option} {given}: pytest looks for its rootdir and config file before it knows "
        f"plugins' options, and took {given} (which exists) for a test path" in said
    ), said
    assert f"would have found {project.path} and {project.path / 'tox.ini'}" in said, said
    assert f"Give the value with '=': {option}={given}" in said, said
    joined = project.runpytest("--opswald-goldens", f"{option}={given}")
    assert joined.ret == pytest.ExitCode.OK, joined.stdout.str()
    inside = "in" if option == "--opswald-save-actual" else "in.out"
    for _ in range(2):
        here = project.runpytest("--opswald-goldens", option, inside)
        assert here.ret == pytest.ExitCode.OK, here.stdout.str()


def test_the_check_reads_the_values_of_other_options_as_pytest_does(
    project: pytest.Pytester,
) -> None:
    """QA (probe27 #1): `--junitxml PATH` outside the project beside `--opswald-json PATH`
    (a CI job keeping its reports in an artifacts folder): pytest reads the JUnit path as
    that option's value, but the check counted it as a test path, so the rootdir it found
    "without" the opswald value moved too, and it said nothing (the run then failed for
    want of the project's config)."""
    project.makeini("[pytest]\nopswald_adapter = agent:run\n")
    (project.path / "conftest.py").write_text("")
    record(project)
    outside = project.path.parent / f"{project.path.name}-artifacts"
    report, junit = str(outside / "report.json"), str(outside / "junit.xml")
    args = ("--opswald-goldens", "-k", "not nothing", "--junitxml", junit)
    first = project.runpytest(*args, f"--opswald-json={report}")
    assert first.ret == pytest.ExitCode.OK, first.stdout.str()
    again = project.runpytest(*args, "--opswald-json", report)
    assert again.ret == pytest.ExitCode.USAGE_ERROR, again.stdout.str()
    assert f"Give the value with '=': --opswald-json={report}" in again.stderr.str()


def test_every_option_of_the_plugin_that_takes_a_value_is_checked(
    pytestconfig: pytest.Config,
) -> None:
    """`VALUE_OPTIONS` (the words the check above looks at) lists every option of the
    plugin that takes a value."""
    from opswald.plugin import VALUE_OPTIONS

    parser = pytestconfig._parser  # its argparse parser: an action of `nargs` 0 takes no value
    arguments = getattr(parser, "optparser", None) or parser._getparser()  # pytest 9 / 8
    taking = {
        name
        for action in arguments._actions
        for name in action.option_strings
        if name.startswith("--opswald-") and action.nargs != 0
    }
    assert taking == set(VALUE_OPTIONS)
