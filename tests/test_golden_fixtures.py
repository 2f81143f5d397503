"""Golden items take part in pytest's fixture system: autouse fixtures, the `usefixtures`
ini option and a golden's own `fixtures:`, with their scopes, finalizers and errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

# The agent's answer is what the environment says: a golden passes only when a fixture
# has set GREETING before the agent runs (the agent runs for real in replay; only its
# calls are served).
AGENT = """
import os
from pathlib import Path

LOG = Path(__file__).with_name("fixture.log")


def run(input):
    with LOG.open("a") as f:
        f.write(f"agent {input['who']} pid={os.getpid()}\\n")
    return {"answer": f"{os.environ.get('GREETING', 'no greeting')}, {input['who']}"}
"""

CONFTEST = """
import os
from pathlib import Path

import pytest

import agent

LOG = Path(__file__).with_name("fixture.log")


def note(text):
    with LOG.open("a") as f:
        f.write(text + "\\n")


def pytest_opswald_adapter(golden, config):
    return agent.run


@pytest.fixture
def greeting(monkeypatch):
    monkeypatch.setenv("GREETING", "hello")
"""

GOLDEN = """\
name: {name}
input: {{who: {who}}}
steps: []
output: {{answer: 'hello, {who}'}}
"""


def golden(project: pytest.Pytester, name: str, who: str, extra: str = "") -> Path:
    path = project.path / "goldens" / f"{name}.golden.yaml"
    path.write_text(GOLDEN.format(name=name, who=who) + extra)
    return path


def log(project: pytest.Pytester) -> list[str]:
    path = project.path / "fixture.log"
    return path.read_text().splitlines() if path.exists() else []


@pytest.fixture
def fixtures_project(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    """An agent answering from GREETING, a conftest wiring it, and goldens/ (empty)."""
    monkeypatch.delenv("GREETING", raising=False)
    pytester.makepyfile(agent=AGENT)
    pytester.mkdir("goldens")
    return pytester


def conftest(project: pytest.Pytester, extra: str = "") -> None:
    project.makeconftest(CONFTEST + extra)


AUTOUSE = """
@pytest.fixture(autouse=True)
def _greet(greeting):
    note("autouse setup")
    yield
    note("autouse teardown")
"""


@pytest.mark.parametrize("workers", [[], ["-n", "2"]], ids=["serial", "xdist"])
def test_autouse_fixtures_of_a_conftest_run_for_each_golden(
    fixtures_project: pytest.Pytester, workers: list[str]
) -> None:
    project = fixtures_project
    golden(project, "alice", "Alice")
    golden(project, "bob", "Bob")
    conftest(project)
    project.runpytest("--opswald-goldens", *workers).assert_outcomes(failed=2)  # no fixture
    (project.path / "fixture.log").unlink()
    conftest(project, AUTOUSE)
    result = project.runpytest("--opswald-goldens", *workers)
    result.assert_outcomes(passed=2)
    lines = log(project)
    assert lines.count("autouse setup") == lines.count("autouse teardown") == 2
    assert sum(line.startswith("agent ") for line in lines) == 2


def test_a_conftest_below_applies_only_to_the_goldens_under_it(
    fixtures_project: pytest.Pytester,
) -> None:
    project = fixtures_project
    conftest(project)
    golden(project, "top", "Top")
    (project.path / "goldens" / "sub").mkdir()
    (project.path / "goldens" / "sub" / "conftest.py").write_text(
        "import pytest\n\n\n@pytest.fixture(autouse=True)\ndef _greet(greeting):\n    pass\n"
    )
    (project.path / "goldens" / "sub" / "low.golden.yaml").write_text(
        GOLDEN.format(name="low", who="Low")
    )
    result = project.runpytest("--opswald-goldens", "-rA")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["PASSED goldens/sub/low.golden.yaml::low"])


def test_setup_show_lists_the_fixtures_of_a_golden(fixtures_project: pytest.Pytester) -> None:
    project = fixtures_project
    golden(project, "alice", "Alice")
    conftest(project, AUTOUSE)
    result = project.runpytest("--opswald-goldens", "--setup-show")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(
        [
            "*SETUP    F monkeypatch*",
            "*SETUP    F greeting (fixtures used: monkeypatch)*",
            "*SETUP    F _greet (fixtures used: greeting)*",
            "*goldens/alice.golden.yaml::alice (fixtures used: _greet, *greeting, monkeypatch*",
            "*TEARDOWN F _greet*",
        ]
    )


SCOPES = """
@pytest.fixture(scope="session", autouse=True)
def server():
    note("session setup")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("GREETING", "hello")
        yield
    note("session teardown")


@pytest.fixture(scope="module", autouse=True)
def per_file(request):
    note(f"module setup {request.node.name} module={request.module}")
    yield
    note(f"module teardown {request.node.name}")


@pytest.fixture(autouse=True)
def per_golden(request, server):
    note(f"function setup {request.node.name}")
    request.addfinalizer(lambda: note(f"finalizer {request.node.name}"))
    yield
    note(f"function teardown {request.node.name}")
"""


def test_session_module_and_function_scopes_set_up_and_tear_down_in_order(
    fixtures_project: pytest.Pytester,
) -> None:
    """The golden file is the module of module-scoped fixtures; a session fixture is set up
    once, before the first golden, and torn down after the last, with its finalizers."""
    project = fixtures_project
    golden(project, "alice", "Alice")
    golden(project, "bob", "Bob")
    conftest(project, SCOPES)
    result = project.runpytest("--opswald-goldens", "-p", "no:randomly")
    result.assert_outcomes(passed=2)
    lines = [line.split(" pid=")[0] for line in log(project)]
    assert lines == [
        "session setup",
        "module setup alice.golden.yaml module=None",  # a golden file imports nothing
        "function setup alice",
        "agent Alice",
        "function teardown alice",
        "finalizer alice",
        "module teardown alice.golden.yaml",
        "module setup bob.golden.yaml module=None",
        "function setup bob",
        "agent Bob",
        "function teardown bob",
        "finalizer bob",
        "module teardown bob.golden.yaml",
        "session teardown",
    ]


@pytest.mark.parametrize("scope", ["function", "module", "session"])
def test_a_fixture_that_fails_is_an_error_at_setup_and_the_agent_never_runs(
    fixtures_project: pytest.Pytester, scope: str
) -> None:
    project = fixtures_project
    golden(project, "alice", "Alice")
    golden(project, "bob", "Bob")
    conftest(
        project,
        f"""
@pytest.fixture(scope="{scope}", autouse=True)
def database():
    raise RuntimeError("the database did not start")
""",
    )
    result = project.runpytest("--opswald-goldens", "--opswald-json", "report.json")
    result.assert_outcomes(errors=2)
    out = result.stdout.str()
    assert "INTERNALERROR" not in out
    result.stdout.fnmatch_lines(
        [
            "*ERROR at setup of golden: alice*",
            "*def database():*",
            "*RuntimeError: the database did not start*",
        ]
    )
    result.stdout.fnmatch_lines(
        ["ERROR goldens/alice.golden.yaml::alice - RuntimeError: the database did not*"]
    )
    assert not any(line.startswith("agent ") for line in log(project))
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    report = json.loads((project.path / "report.json").read_text())
    rows = {row["golden"]: row for row in report["goldens"]}
    assert set(rows) == {"alice", "bob"}
    # in the report as failed goldens (they did not pass), so that a gate on the report
    # agrees with pytest's exit status; `error` says what stopped them
    assert {row["status"] for row in rows.values()} == {"failed"}
    assert rows["alice"]["error"] == "error at setup: RuntimeError: the database did not start"
    assert (report["passed"], report["failed"], report["malformed"]) == (0, 2, 0)


@pytest.mark.parametrize("workers", [[], ["-n", "2"]], ids=["serial", "xdist"])
def test_a_fixture_failing_at_teardown_fails_the_golden_s_row(
    fixtures_project: pytest.Pytester, workers: list[str]
) -> None:
    project = fixtures_project
    golden(project, "alice", "Alice")
    golden(project, "bob", "Bob")
    conftest(
        project,
        AUTOUSE
        + """
@pytest.fixture(autouse=True)
def cleanup(request):
    yield
    if request.node.name == "alice":
        raise RuntimeError("the temp dir could not be removed")
""",
    )
    result = project.runpytest("--opswald-goldens", "--opswald-json", "report.json", *workers)
    # pytest: alice passed and then errored at teardown, bob passed
    result.assert_outcomes(passed=2, errors=1)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    report = json.loads((project.path / "report.json").read_text())
    rows = {row["golden"]: row for row in report["goldens"]}
    # the report's gate agrees with pytest's exit status: alice's row is failed
    assert (rows["alice"]["status"], rows["bob"]["status"]) == ("failed", "passed")
    assert rows["alice"]["error"] == (
        "error at teardown: RuntimeError: the temp dir could not be removed"
    )
    assert (report["passed"], report["failed"]) == (1, 1)
    result.stdout.fnmatch_lines(["goldens: 1 passed, 1 failed*"])  # opswald's summary


def test_an_update_whose_fixture_fails_at_teardown_says_the_golden_was_written(
    fixtures_project: pytest.Pytester,
) -> None:
    project = fixtures_project
    path = golden(project, "alice", "Alice")
    path.write_text(path.read_text().replace("'hello, Alice'", "'bye, Alice'"))
    conftest(
        project,
        AUTOUSE
        + """
@pytest.fixture(autouse=True)
def cleanup():
    yield
    raise RuntimeError("the temp dir could not be removed")
""",
    )
    result = project.runpytest(
        "--opswald-goldens", "--opswald-update", "--opswald-json", "report.json"
    )
    result.assert_outcomes(passed=1, errors=1)
    assert "answer: hello, Alice" in path.read_text()  # written
    result.stdout.fnmatch_lines(
        [
            "note: goldens/alice.golden.yaml: updated (the golden was written), then a "
            "fixture failed at teardown: review it with git diff"
        ]
    )
    [row] = json.loads((project.path / "report.json").read_text())["goldens"]
    assert (row["status"], row["divergence"]) == ("failed", None)
    assert row["error"].startswith("error at teardown: RuntimeError")


@pytest.mark.parametrize("workers", [[], ["-n", "2"]], ids=["serial", "xdist"])
def test_the_usefixtures_ini_option_applies_to_goldens(
    fixtures_project: pytest.Pytester, workers: list[str]
) -> None:
    project = fixtures_project
    golden(project, "alice", "Alice")
    golden(project, "bob", "Bob")
    conftest(project)
    project.makeini("[pytest]\nusefixtures = greeting\n")
    project.runpytest("--opswald-goldens", *workers).assert_outcomes(passed=2)


@pytest.mark.parametrize("workers", [[], ["-n", "2"]], ids=["serial", "xdist"])
def test_a_golden_names_the_fixtures_it_uses(
    fixtures_project: pytest.Pytester, workers: list[str]
) -> None:
    project = fixtures_project
    golden(project, "alice", "Alice", "fixtures: [greeting]\n")
    golden(project, "bob", "Bob")  # names none: the fixture is not set up for it
    conftest(project)
    result = project.runpytest("--opswald-goldens", "-rA", *workers)
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["PASSED goldens/alice.golden.yaml::alice"])
    result.stdout.fnmatch_lines(["FAILED goldens/bob.golden.yaml::bob*"])
    result = project.runpytest("--opswald-goldens", "--setup-show", "-k", "alice")
    result.stdout.fnmatch_lines(["*SETUP    F greeting*"])


def test_a_golden_naming_a_fixture_that_does_not_exist_is_an_error_at_its_line(
    fixtures_project: pytest.Pytester,
) -> None:
    """As a tag that cannot be one: a collection error at the `fixtures:` line, naming the
    fixtures that are there, the closest first; the other goldens run."""
    project = fixtures_project
    golden(project, "alice", "Alice", "fixtures: [greting]\n")
    golden(project, "bob", "Bob", "fixtures: [greeting]\n")
    conftest(project)
    result = project.runpytest("--opswald-goldens", "--opswald-json", "report.json")
    result.assert_outcomes(passed=1, errors=1)
    assert "INTERNALERROR" not in result.stdout.str()
    result.stdout.fnmatch_lines(
        [
            "*malformed golden: *goldens/alice.golden.yaml:5: fixtures: no fixture named "
            "'greting' is visible to this golden*",
            "*- greeting*",
        ]
    )
    report = json.loads((project.path / "report.json").read_text())
    assert report["malformed"] == 1


def test_a_parametrized_fixture_is_an_error_naming_the_golden_and_the_fixture(
    fixtures_project: pytest.Pytester,
) -> None:
    """A golden runs once: a fixture with `params=` has no parameter to get there. Said at
    collection, at the golden's `fixtures:` line when the golden names it, rather than
    pytest's "The requested fixture has no parameter defined" pointing into pytest."""
    project = fixtures_project
    golden(project, "alice", "Alice", "fixtures: [flavoured]\n")
    golden(project, "bob", "Bob", "fixtures: [greeting]\n")
    conftest(
        project,
        """
@pytest.fixture(params=["a", "b"])
def flavoured(request, greeting):
    pass
""",
    )
    result = project.runpytest("--opswald-goldens")
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(
        [
            "*malformed golden: *goldens/alice.golden.yaml:5: fixtures: fixture 'flavoured' "
            "(conftest.py:*) is parametrized: a golden runs once, with no parameter to give it*"
        ]
    )
    assert "has no parameter defined" not in result.stdout.str()


@pytest.mark.parametrize("route", ["ini", "autouse", "asked"])
def test_a_parametrized_fixture_the_golden_does_not_name_says_how_it_applies(
    fixtures_project: pytest.Pytester, route: str
) -> None:
    project = fixtures_project
    golden(project, "alice", "Alice", "fixtures: [uses]\n" if route == "asked" else "")
    autouse = ", autouse=True" if route == "autouse" else ""
    conftest(
        project,
        f"""
@pytest.fixture(params=["a", "b"]{autouse})
def flavoured(request):
    pass


@pytest.fixture
def uses(flavoured):
    pass
""",
    )
    if route == "ini":
        project.makeini("[pytest]\nusefixtures = flavoured\n")
    result = project.runpytest("--opswald-goldens")
    result.assert_outcomes(errors=1)
    how, fix = {
        "ini": (
            "(the ini option usefixtures names it for every test, goldens too)",
            "fix: take flavoured out of the ini option usefixtures, or give it no params",
        ),
        "autouse": ("(an autouse fixture)", "fix: keep the parametrized fixture out of *"),
        "asked": (
            "(a fixture the golden uses asks for it)",
            "fix: give the golden fixtures that ask for no parametrized fixture",
        ),
    }[route]
    result.stdout.fnmatch_lines(
        [f"*fixture 'flavoured' (conftest.py:*) is parametrized:*{how}", fix]
    )


def test_golden_replay_and_a_usefixtures_tag_are_errors_that_point_at_fixtures(
    fixtures_project: pytest.Pytester,
) -> None:
    project = fixtures_project
    golden(project, "alice", "Alice", "fixtures: [golden_replay]\n")
    golden(project, "bob", "Bob", "tags: [usefixtures]\n")
    conftest(project, AUTOUSE)
    result = project.runpytest("--opswald-goldens")
    result.assert_outcomes(errors=2)
    result.stdout.fnmatch_lines(
        [
            "*alice.golden.yaml:5: fixtures: golden_replay is the fixture of a "
            "@pytest.mark.golden test*",
            "fix: take golden_replay out of fixtures:",
        ]
    )
    result.stdout.fnmatch_lines(
        ["*bob.golden.yaml:5: tags?0?: tag 'usefixtures' is one of pytest's own markers*; "
         "list the fixtures the golden uses under fixtures:"]
    )  # fmt: skip


def test_fixtures_must_be_a_list_of_names(fixtures_project: pytest.Pytester) -> None:
    project = fixtures_project
    golden(project, "alice", "Alice", "fixtures: greeting\n")
    conftest(project)
    result = project.runpytest("--opswald-goldens")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*goldens/alice.golden.yaml:5: fixtures*list*"])


TIMEOUT_CONFTEST = """
@pytest.fixture(autouse=True)
def _greet(greeting):
    note(f"setup pid={os.getpid()}")
    yield
    note(f"teardown pid={os.getpid()}")
"""


@pytest.mark.parametrize(
    "how", [["--opswald-timeout", "60"], []], ids=["option", "golden's timeout"]
)
def test_under_a_timeout_the_fixtures_are_set_up_before_the_fork(
    fixtures_project: pytest.Pytester, how: list[str]
) -> None:
    """The agent runs in a forked child: it sees what the fixtures set up in the test
    process, and their teardown runs there, once."""
    project = fixtures_project
    golden(project, "alice", "Alice", "" if how else "timeout: 60\n")
    conftest(project, TIMEOUT_CONFTEST)
    result = project.runpytest("--opswald-goldens", *how)
    result.assert_outcomes(passed=1)
    lines = log(project)
    assert [line.split(" pid=")[0] for line in lines] == ["setup", "agent Alice", "teardown"]
    pids = [line.split(" pid=")[1] for line in lines]
    assert pids[0] == pids[2] != pids[1]  # the agent ran in another (the forked) process


def test_an_update_and_a_recording_run_with_the_fixtures_and_keep_the_field(
    fixtures_project: pytest.Pytester,
) -> None:
    project = fixtures_project
    conftest(project)
    stub = project.path / "goldens" / "alice.golden.yaml"
    stub.write_text("name: alice\nfixtures: [greeting]\ninput: {who: Alice}\n")
    result = project.runpytest("--opswald-goldens", "--opswald-mode=record")
    result.assert_outcomes(passed=1)
    text = stub.read_text()
    assert "hello, Alice" in text
    # the keys taken from the stub are written as the stub has them
    assert "\nname: alice\nfixtures: [greeting]\nmetadata:" in text
    assert "\ninput: {who: Alice}\nsteps:" in text
    stale = text.replace("hello, Alice", "hi, Alice")
    stub.write_text(stale)
    project.runpytest("--opswald-goldens").assert_outcomes(failed=1)
    project.runpytest("--opswald-goldens", "--opswald-update").assert_outcomes(passed=1)
    updated = stub.read_text()
    assert "hello, Alice" in updated
    assert "\nfixtures: [greeting]\n" in updated
    project.runpytest("--opswald-goldens").assert_outcomes(passed=1)


def test_a_missing_fixture_the_ini_or_a_conftest_asks_for_is_an_error_at_setup(
    fixtures_project: pytest.Pytester,
) -> None:
    """pytest's "fixture not found", naming who asked for it, not opswald's own code."""
    project = fixtures_project
    golden(project, "alice", "Alice")
    conftest(project)
    project.makeini("[pytest]\nusefixtures = greting\n")
    result = project.runpytest("--opswald-goldens", "--opswald-json", "report.json")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        [
            "*ERROR at setup of golden: alice*",
            "fixture 'greting' not found",
            "available fixtures: *greeting*",
            "the ini option `usefixtures` names it (it applies to every test, goldens too)",
            "fix: take greting out of the ini option usefixtures, or define it in a conftest.py",
        ]
    )
    assert "items.py" not in result.stdout.str()
    [row] = json.loads((project.path / "report.json").read_text())["goldens"]
    assert row["error"] == "error at setup: fixture 'greting' not found"
    assert row["suggestion"] == (
        "take greting out of the ini option usefixtures, or define it in a conftest.py"
    )
    project.makeini("[pytest]\n")
    conftest(project, AUTOUSE.replace("_greet(greeting)", "_greet(greting)"))
    result = project.runpytest("--opswald-goldens", "--opswald-json", "report.json")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        ["fixture 'greting' not found", "file *conftest.py, line *", "  def _greet(greting):"]
    )
    # the suggestion is what to do, not the last line of pytest's listing (a file's line)
    [row] = json.loads((project.path / "report.json").read_text())["goldens"]
    assert row["suggestion"] == (
        "define greting in a conftest.py above the golden, or correct the fixture that asks for it"
    )
    assert "items.py" not in result.stdout.str()


def test_fixtures_per_test_heads_a_golden_with_its_own_file(
    fixtures_project: pytest.Pytester,
) -> None:
    """`--fixtures-per-test` heads each test's fixtures with where the test is: for a
    golden, its golden file (not opswald's code, which all goldens share)."""
    project = fixtures_project
    golden(project, "alice", "Alice")
    golden(project, "bob", "Bob")
    conftest(project, AUTOUSE)
    result = project.runpytest("--opswald-goldens", "--fixtures-per-test")
    assert result.ret == 0, result.stdout.str()
    result.stdout.fnmatch_lines(
        [
            "*fixtures used by alice*",
            "*(goldens/alice.golden.yaml:1)*",
            "greeting -- conftest.py:*",
            "*fixtures used by bob*",
            "*(goldens/bob.golden.yaml:1)*",
        ]
    )
    assert "items.py" not in result.stdout.str()
