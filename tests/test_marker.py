"""@pytest.mark.golden on ordinary tests and the golden_replay fixture."""

from __future__ import annotations

import pytest

from conftest import record

TESTS = """
import pytest


@pytest.mark.golden("goldens/flight.golden.yaml")
def test_enforced(golden_replay):
    assert golden_replay.actual.output["who"] == "Alice"


@pytest.mark.golden("goldens/flight.golden.yaml", verdict=False)
def test_inspect_only(golden_replay):
    assert not golden_replay.verdict.passed
    first = golden_replay.verdict.first
    assert first.step == 5 and first.kind == "mismatch"
    assert golden_replay.differences[0].where == "step 5 › input.passenger"


@pytest.mark.golden("goldens/flight.golden.yaml", expect={"tool_calls": {"args": "ignore"}})
def test_relaxed(golden_replay):
    assert golden_replay.passed


@pytest.mark.golden("goldens/flight.golden.yaml")
def test_without_fixture():
    pass
"""


def test_marker_with_and_without_verdict(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    record(project)
    project.makepyfile(test_marked=TESTS)
    project.runpytest("test_marked.py").assert_outcomes(passed=3, failed=1)  # inspect-only fails
    monkeypatch.setenv("AGENT_VARIANT", "args")
    result = project.runpytest("test_marked.py", "-v")
    result.assert_outcomes(passed=2, failed=2)
    result.stdout.fnmatch_lines(
        [
            "*test_enforced FAILED*",
            "*test_inspect_only PASSED*",
            "*test_relaxed PASSED*",
            "*test_without_fixture FAILED*",
        ],
        consecutive=False,
    )
    result.stdout.fnmatch_lines(["*step 5 › input.passenger: 'Alice' → 'Bob'*"])


def test_marker_tests_are_on_the_viewer_page_with_their_golden(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run of marker tests only: each is on the --opswald-html page, showing the
    golden file it replays (the test file is no golden: the page had none of them)."""
    import json
    import re

    record(project)
    project.makepyfile(**{"tests/test_marked": TESTS})
    monkeypatch.setenv("AGENT_VARIANT", "args")
    result = project.runpytest("tests/test_marked.py", "--opswald-html=page.html")
    result.assert_outcomes(passed=2, failed=2)
    result.stdout.fnmatch_lines(["*opswald viewer: *page.html (4 goldens, *"])
    text = (project.path / "page.html").read_text()
    match = re.search(r'id="opswald-data">(.*?)</script>', text, re.S)
    assert match is not None
    page = json.loads(match.group(1))
    shown = {g["name"].rsplit("::", 1)[-1]: g for g in page["goldens"]}
    assert set(shown) == {
        "test_enforced",
        "test_inspect_only",
        "test_relaxed",
        "test_without_fixture",
    }
    for entry in shown.values():
        assert entry["file"] == "goldens/flight.golden.yaml"
        assert len(entry["golden"]["steps"]) == 7
    assert shown["test_enforced"]["status"] == "failed"
    assert shown["test_enforced"]["divergence"] == 5


def test_marker_with_a_bad_path_fails_clearly(project: pytest.Pytester) -> None:
    project.makepyfile(
        test_bad="""
        import pytest

        @pytest.mark.golden("goldens/nope.golden.yaml")
        def test_x(golden_replay):
            pass
        """
    )
    result = project.runpytest()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*cannot load*nope.golden.yaml*"])
    out = result.stdout.str()
    assert out.count("nope.golden.yaml") == 1, "the path is said once"
    assert "During handling of the above exception" not in out
    assert "direct cause" not in out


def test_a_marker_golden_that_cannot_load_is_a_failed_row_of_the_reports(
    project: pytest.Pytester,
) -> None:
    """The test errors at setup and pytest exits 1: the JSON report said total 0, failed 0
    (a `jq -e '.failed == 0'` gate passed) and the summary counted nothing; it is a failed
    row now, in the JSON report, the summary and JUnit."""
    import json

    record(project)
    project.makepyfile(
        test_bad="""
        import pytest

        @pytest.mark.golden("goldens/nope.golden.yaml")
        def test_x(golden_replay):
            pass

        @pytest.mark.golden("goldens/flight.golden.yaml")
        def test_ok(golden_replay):
            pass
        """
    )
    result = project.runpytest("test_bad.py", "--opswald-json=r.json", "--junitxml=j.xml")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.assert_outcomes(errors=1, passed=1)
    result.stdout.fnmatch_lines(["goldens: 1 passed, 1 failed"])
    report = json.loads((project.path / "r.json").read_text())
    assert (report["total"], report["passed"], report["failed"]) == (2, 1, 1)
    [row] = report["failed_tests"]
    assert row["name"].endswith("test_bad.py::test_x") and "nope.golden.yaml" in row["error"]
    assert 'name="opswald.status" value="failed"' in (project.path / "j.xml").read_text()


def test_a_body_failing_after_a_divergence_shows_the_divergence(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The body trips over what the diverged run returned: its failure also carries the
    golden's verdict, the likely reason, instead of hiding it."""
    record(project)
    project.makepyfile(
        test_body="""
        import pytest

        @pytest.mark.golden("goldens/flight.golden.yaml")
        def test_body(golden_replay):
            assert golden_replay.actual.output["who"] == "Alice"
        """
    )
    assert project.runpytest("test_body.py").ret == 0
    monkeypatch.setenv("AGENT_VARIANT", "args")
    result = project.runpytest("test_body.py")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "E       TypeError: 'NoneType' object is not subscriptable",
            "E       the golden's verdict failed too (it may explain this):",
            "*step 5 › input.passenger: 'Alice' → 'Bob'*",
        ],
        consecutive=False,
    )


def test_the_fixture_without_a_marker_says_what_it_needs(project: pytest.Pytester) -> None:
    project.makepyfile(test_bare="def test_x(golden_replay):\n    pass\n")
    result = project.runpytest()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*golden_replay fixture needs a golden*@pytest.mark.golden(*"])
    assert "AssertionError" not in result.stdout.str()


def test_a_passing_verdict_false_test_counts_as_passed_in_the_reports(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """verdict=False leaves the verdict to the test: the summary, the JSON report (the CI
    gate `jq -e '.failed == 0'`) and JUnit count pytest's outcome, as its exit code does."""
    import json

    record(project)
    project.makepyfile(test_marked=TESTS)
    monkeypatch.setenv("AGENT_VARIANT", "args")  # the golden's verdict fails at step 5
    result = project.runpytest(
        "test_marked.py", "-k", "inspect_only", "--opswald-json", "r.json", "--junitxml", "j.xml"
    )
    result.assert_outcomes(passed=1, deselected=3)
    assert result.ret == 0
    result.stdout.fnmatch_lines(["goldens: 1 passed, 0 failed"])
    report = json.loads((project.path / "r.json").read_text())
    assert (report["passed"], report["failed"], report["failed_tests"]) == (1, 0, [])
    assert report["goldens"][0]["status"] == "passed"
    assert 'name="opswald.status" value="passed"' in (project.path / "j.xml").read_text()
    # its body failing is a failure, counted as one
    monkeypatch.delenv("AGENT_VARIANT")  # the verdict passes: `assert not passed` fails
    result = project.runpytest("test_marked.py", "-k", "inspect_only", "--opswald-json", "r.json")
    result.assert_outcomes(failed=1, deselected=3)
    report = json.loads((project.path / "r.json").read_text())
    assert (report["passed"], report["failed"]) == (0, 1)


MISUSED = """
import pytest


@pytest.mark.golden("goldens/flight.golden.yaml", expekt={"output": {"match": "ignore"}})
def test_typo(golden_replay):
    pass


@pytest.mark.golden("goldens/flight.golden.yaml", verdict=False, modfy={"model": "m"})
def test_typo_unjudged():
    pass


@pytest.mark.golden("goldens/flight.golden.yaml", colour="red")
def test_far_off(golden_replay):
    pass


@pytest.mark.golden()
def test_no_path(golden_replay):
    pass


@pytest.mark.golden("goldens/flight.golden.yaml", "goldens/other.golden.yaml")
def test_two_paths(golden_replay):
    pass


@pytest.mark.golden(42)
def test_not_a_path():
    pass


@pytest.mark.golden("goldens/flight.golden.yaml", expect="contains")
def test_expect_not_a_mapping(golden_replay):
    pass


@pytest.mark.golden("goldens/flight.golden.yaml", verdict="no")
def test_verdict_not_a_bool(golden_replay):
    pass
"""


def test_a_misused_marker_is_an_error_naming_what_is_wrong(project: pytest.Pytester) -> None:
    """An unknown keyword was ignored (`expekt=` ran the golden with its own expectations
    and passed); wrong positional arguments and values of the wrong kind are refused too,
    before the test runs, each naming the marker and the fix."""
    import json

    record(project)
    project.makepyfile(test_misused=MISUSED)
    result = project.runpytest("test_misused.py", "--opswald-json=r.json")
    result.assert_outcomes(errors=8)
    expected = {
        "test_typo": "@pytest.mark.golden: unknown keyword 'expekt'; did you mean 'expect'?",
        "test_typo_unjudged": "@pytest.mark.golden: unknown keyword 'modfy'; did you mean "
        "'modify'?",
        "test_far_off": "@pytest.mark.golden: unknown keyword 'colour'; it takes modify=, "
        "expect=, verdict=",
        "test_no_path": "@pytest.mark.golden needs the golden's path as its first argument*",
        "test_two_paths": "@pytest.mark.golden takes one positional argument, the golden's "
        "path; got 2: 'goldens/flight.golden.yaml', 'goldens/other.golden.yaml'",
        "test_not_a_path": "@pytest.mark.golden: the golden's path must be a string or a "
        "path, got int 42",
        "test_expect_not_a_mapping": "@pytest.mark.golden: expect= must be a dict of the "
        "golden's `expect:` keys, got str 'contains'",
        "test_verdict_not_a_bool": "@pytest.mark.golden: verdict= must be True or False, "
        "got str 'no'",
    }
    lines = [
        line for name, text in expected.items() for line in (f"*ERROR at setup of {name} *", text)
    ]
    result.stdout.fnmatch_lines(lines, consecutive=False)
    out = result.stdout.str()
    assert "Traceback" not in out and "opswald/" not in out
    # each is a failed row of the reports, as pytest's exit status says
    report = json.loads((project.path / "r.json").read_text())
    assert (report["total"], report["failed"]) == (8, 8)


MARKER_EXPECT = """
import pytest


@pytest.mark.golden("goldens/flight.golden.yaml", expect={"outptu": {"match": "regex"}})
def test_unknown_field(golden_replay):
    pass


@pytest.mark.golden("goldens/flight.golden.yaml", expect={"output": {"match": "regx"}})
def test_bad_value():
    pass


@pytest.mark.golden("goldens/flight.golden.yaml", expect={"output": {"match": "regex"}})
def test_incomplete(golden_replay):
    pass


@pytest.mark.golden(
    "goldens/flight.golden.yaml", expect={"output": {"match": "regex", "value": "zzz"}}
)
def test_spelled_right(golden_replay):
    pass
"""


def test_a_bad_expect_of_the_marker_says_what_the_golden_file_would(
    project: pytest.Pytester,
) -> None:
    """`expect={...}` was validated raw: pydantic's ValidationError and a traceback through
    our internals. Its problems now read as the golden loader words them, headed by the
    marker, and fail the test."""
    record(project)
    project.makepyfile(test_marker_bad_expect=MARKER_EXPECT)
    result = project.runpytest("test_marker_bad_expect.py")
    result.assert_outcomes(failed=2, errors=2)
    result.stdout.fnmatch_lines(
        [
            "*ERROR at setup of test_unknown_field *",
            "@pytest.mark.golden: expect.outptu: unknown field; did you mean 'output'?",
            "*ERROR at setup of test_incomplete *",
            "@pytest.mark.golden: expect.output: match: regex needs `value:`*",
            "*_ test_bad_value _*",
            "@pytest.mark.golden: expect.output.match: Input should be 'exact', *'regex'* "
            '(got "regx")',
            "*_ test_spelled_right _*",
        ],
        consecutive=False,
    )
    out = result.stdout.str()
    assert "ValidationError" not in out and "pydantic" not in out and "merge_expect" not in out


def test_a_marker_expect_part_that_is_not_a_mapping_names_no_class_of_ours(
    project: pytest.Pytester,
) -> None:
    """`expect={"budgets": None}` said `Input should be a valid dictionary or instance of
    BudgetsExpect`: it says what `expect.budgets` is written as, as a golden file's would."""
    record(project)
    project.makepyfile(
        test_marker_budgets="""
        import pytest

        @pytest.mark.golden("goldens/flight.golden.yaml", expect={"budgets": None})
        def test_budgets(golden_replay):
            pass
        """
    )
    result = project.runpytest("test_marker_budgets.py")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        ["@pytest.mark.golden: expect.budgets: must be a mapping, with any of: cost, *(got null)"]
    )
    assert "BudgetsExpect" not in result.stdout.str()


UNRUNNABLE = """
import pytest


@pytest.mark.golden("goldens/flight.golden.yaml", modify={"response": "x"})
def test_step_modification_without_a_fork_step(golden_replay):
    pass


@pytest.mark.golden("goldens/stub.golden.yaml")
def test_a_stub(golden_replay):
    pass


@pytest.mark.golden("goldens/stub.golden.yaml")
def test_a_stub_without_the_fixture():
    pass


@pytest.mark.golden("goldens/flight.golden.yaml")
def test_runs(golden_replay):
    pass
"""


def test_a_marker_golden_that_cannot_run_is_a_failed_row_of_the_reports(
    project: pytest.Pytester,
) -> None:
    """A marker test whose golden cannot be run (a stub, a step modification with no fork
    step) is pytest's error; opswald's summary and JSON report counted none of them, so the
    JSON gate read green while pytest failed."""
    import json

    record(project)
    (project.path / "goldens" / "stub.golden.yaml").write_text("name: s\ninput: {}\n")
    project.makepyfile(test_unrunnable=UNRUNNABLE)
    result = project.runpytest("test_unrunnable.py", "--opswald-json=r.json", "-p", "no:randomly")
    result.assert_outcomes(passed=1, errors=2, failed=1)
    result.stdout.fnmatch_lines(["*goldens: 1 passed, 3 failed*"])
    report = json.loads((project.path / "r.json").read_text())
    assert (report["total"], report["passed"], report["failed"]) == (4, 1, 3)
    rows = {r["name"].rsplit("::", 1)[-1]: r["status"] for r in report["goldens"]}
    assert rows == {
        "test_step_modification_without_a_fork_step": "failed",
        "test_a_stub": "failed",
        "test_a_stub_without_the_fixture": "failed",
        "test_runs": "passed",
    }


def test_marker_tests_that_cannot_run_are_on_the_viewer_page(project: pytest.Pytester) -> None:
    """QA (probe28 #6): a marker test whose golden is a stub, or missing, errors at setup
    and has its JSON row, but the --opswald-html page left it out: all green while pytest
    failed. Each is listed, failed, with why (a missing golden's entry has no steps)."""
    import json

    from test_viewer_data import page_data

    record(project)
    (project.path / "goldens" / "stub.golden.yaml").write_text("name: s\ninput: {}\n")
    project.makepyfile(
        test_unrunnable=UNRUNNABLE
        + '\n\n@pytest.mark.golden("goldens/nope.golden.yaml")\n'
        + "def test_missing(golden_replay):\n    pass\n"
    )
    result = project.runpytest(
        "test_unrunnable.py", "--opswald-html=page.html", "-p", "no:randomly"
    )
    result.assert_outcomes(passed=1, errors=3, failed=1)
    page = page_data((project.path / "page.html").read_text())
    shown = {g["name"].rsplit("::", 1)[-1]: g for g in page["goldens"]}
    assert {name: g["status"] for name, g in shown.items()} == {
        "test_step_modification_without_a_fork_step": "failed",
        "test_a_stub": "failed",
        "test_a_stub_without_the_fixture": "failed",
        "test_runs": "passed",
        "test_missing": "failed",
    }
    assert "not recorded yet" in json.dumps(shown["test_a_stub"]["findings"])
    assert shown["test_missing"]["golden"]["steps"] == []
    assert "nope.golden.yaml" in json.dumps(shown["test_missing"]["findings"])
