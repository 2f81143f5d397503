"""What the plugin costs a project that only has it installed: pytest loads it through its
entry point in every run, so a run that uses nothing of opswald must not load its engine
(pydantic models, PyYAML, the replay engine): that took ~0.2 s of every pytest start, ~0.6 s
where Python writes no bytecode cache (pytest rewrites the plugin's modules each time)."""

from __future__ import annotations

import pytest

# a test that reports which modules the run has loaded by the time tests run
PROBE = """
import sys


def test_probe():
    loaded = sorted(m for m in sys.modules if m.startswith("opswald"))
    print("LOADED", ",".join(loaded))
    print("HEAVY", ",".join(m for m in ("pydantic", "yaml", "deepdiff") if m in sys.modules))
"""

# what a run that uses nothing of opswald loads: the plugin, its hook specifications, the
# adapters registry (put back when a run ends) and the two modules its options need
LIGHT = {
    "opswald",
    "opswald.adapters",
    "opswald.argtypes",
    "opswald.hookspecs",
    "opswald.plugin",
    "opswald.suffixes",
}


def _loaded(result: pytest.RunResult) -> tuple[set[str], set[str]]:
    # (the first line follows the file name of pytest's progress line)
    line = next(line for line in result.outlines if "LOADED " in line)
    heavy = next(line for line in result.outlines if line.startswith("HEAVY"))
    return set(line.split("LOADED ", 1)[1].split(",")), set(filter(None, heavy[6:].split(",")))


def test_a_run_that_uses_nothing_of_opswald_loads_none_of_its_engine(
    pytester: pytest.Pytester,
) -> None:
    """QA (typed #1)."""
    pytester.makepyfile(test_probe=PROBE)
    result = pytester.runpytest_subprocess("-s", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    loaded, heavy = _loaded(result)
    assert loaded == LIGHT, loaded - LIGHT
    assert heavy == set(), heavy  # (the suite's nested runs turn heavy plugins off)


@pytest.mark.parametrize(
    ("setting", "expected"),
    [
        (["-o", "opswald_diff_mode=short"], "pydantic"),  # a setting of opswald's (-o)
        (["--opswald-json", "r.json"], "pydantic"),  # an option of opswald's
    ],
)
def test_a_run_that_uses_opswald_builds_its_settings_at_startup(
    pytester: pytest.Pytester, setting: list[str], expected: str
) -> None:
    """A setting or option of opswald's: the settings are built when pytest starts, so a bad
    one is a usage error before anything runs."""
    pytester.makepyfile(test_probe=PROBE)
    result = pytester.runpytest_subprocess("-s", "-p", "no:cacheprovider", *setting)
    result.assert_outcomes(passed=1)
    assert expected in _loaded(result)[1]


def test_a_setting_in_the_config_file_builds_the_settings_at_startup(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(test_probe=PROBE)
    pytester.makeini("[pytest]\nopswald_side_effect_tools = send_email\n")
    result = pytester.runpytest_subprocess("-s", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    assert "pydantic" in _loaded(result)[1]


def test_a_bad_setting_is_still_a_usage_error_at_startup(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_probe=PROBE)
    pytester.makeini("[pytest]\nopswald_max_golden_bytes = lots\n")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: opswald_max_golden_bytes*"])


# a conftest that says, at the end of collection and of the run, whether the replay engine
# (the run of a golden, the diff, deepdiff) has been loaded
ENGINE_PROBE = """
import sys

ENGINE = ("opswald.goldenrun", "opswald.engine.run", "opswald.diff", "deepdiff")


def pytest_collection_finish(session):
    print("AFTER COLLECTION", ",".join(m for m in ENGINE if m in sys.modules))


def pytest_sessionfinish(session):
    print("AFTER THE RUN", ",".join(m for m in ENGINE if m in sys.modules))
"""

ECHO = "name: echo\nagent: echo\ninput: hi\nsteps: []\noutput: {echo: hi}\n"


def _engine_line(result: pytest.RunResult, head: str) -> set[str]:
    # (the line may follow pytest's progress line)
    line = next(line for line in result.outlines if head in line)
    return set(filter(None, line.split(head, 1)[1].strip().split(",")))


def test_collecting_goldens_does_not_load_the_replay_engine(pytester: pytest.Pytester) -> None:
    """`pytest --opswald-goldens --collect-only` (an IDE's test discovery) reads and
    validates every golden, but runs none: the engine loads when the first golden runs
    (it was a tenth of a second of every such start, half of opswald's)."""
    pytester.makeconftest(ENGINE_PROBE)
    pytester.makepyfile(agent="def run(input):\n    return {'echo': input}\n")
    pytester.makeini("[pytest]\nopswald_adapter = agent:run\n")
    pytester.mkdir("goldens")
    (pytester.path / "goldens" / "echo.golden.yaml").write_text(ECHO)
    args = ("-s", "-p", "no:cacheprovider", "--opswald-goldens")
    collected = pytester.runpytest_subprocess(*args, "--collect-only")
    assert collected.ret == pytest.ExitCode.OK
    collected.stdout.fnmatch_lines(["*<GoldenItem echo>*"])
    assert _engine_line(collected, "AFTER COLLECTION") == set()
    assert _engine_line(collected, "AFTER THE RUN") == set()
    ran = pytester.runpytest_subprocess(*args)
    ran.assert_outcomes(passed=1)
    assert _engine_line(ran, "AFTER COLLECTION") == set()
    assert {"opswald.goldenrun", "opswald.engine.run"} <= _engine_line(ran, "AFTER THE RUN")
    # and a golden that fails shows its diff as before
    golden = pytester.path / "goldens" / "echo.golden.yaml"
    golden.write_text(ECHO.replace("{echo: hi}", "{echo: bye}"))
    failed = pytester.runpytest_subprocess(*args)
    failed.assert_outcomes(failed=1)
    failed.stdout.fnmatch_lines(["*output differs*"])


MARKED = """
import opswald
import pytest


@opswald.adapter("echo")
def echo(input):
    return {"echo": input}


@pytest.mark.golden("goldens/echo.golden.yaml")
def test_echo(golden_replay):
    assert golden_replay.passed
"""


def test_a_marker_test_in_a_project_without_opswald_settings_builds_them_when_it_runs(
    pytester: pytest.Pytester,
) -> None:
    """No setting, option or hook of opswald's: the run starts as light as one without it,
    and a `@pytest.mark.golden` test builds the settings when it first needs them."""
    pytester.makepyfile(test_marked=MARKED)
    pytester.mkdir("goldens")
    (pytester.path / "goldens" / "echo.golden.yaml").write_text(
        "name: echo\nagent: echo\ninput: hi\nsteps: []\noutput: {echo: hi}\n"
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    changed = pytester.path / "goldens" / "echo.golden.yaml"
    changed.write_text(changed.read_text().replace("{echo: hi}", "{echo: bye}"))
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*output differs*"])


INNER_AGENT = """
import opswald


@opswald.tool
def lookup(order_id):
    return {"amount": 12.5}


def run(input):
    return {"answer": lookup(input["order"])["amount"]}
"""

# a plugin author's suite: in-process pytest runs of goldens, twice in one test, from a
# test module that imports nothing of opswald or PyYAML
TWICE = '''
AGENT = """{agent}"""


def test_twice(pytester):
    pytester.makepyfile(agent=AGENT)
    pytester.makeini("[pytest]\\nopswald_adapter = agent:run\\n")
    pytester.mkdir("goldens")
    (pytester.path / "goldens" / "a.golden.yaml").write_text("name: a\\ninput: {{order: X}}\\n")
    pytester.runpytest("--opswald-goldens", "--opswald-mode=record").assert_outcomes(passed=1)
    pytester.runpytest("--opswald-goldens").assert_outcomes(passed=1)
    (pytester.path / "agent.py").write_text(AGENT.replace('["amount"]', '["amount"] * 2'))
    failed = pytester.runpytest("--opswald-goldens")
    failed.assert_outcomes(failed=1)
    failed.stdout.fnmatch_lines(["*output differs*"])
'''


@pytest.mark.parametrize("where", ["conftest", "module"])
def test_in_process_pytest_runs_of_goldens_run_again_alike(
    pytester: pytest.Pytester, where: str
) -> None:
    """QA (probe22 #1, #2): once the plugin loaded its engine lazily, a suite that ran
    goldens in process twice (`pytester.runpytest`) broke: pytester drops the modules first
    imported inside a run, PyYAML's C parser does not load again with them (INTERNALERROR,
    "could not determine a constructor"), and the package kept its first run's
    `opswald.instrument`, whose decorators then answered to no run (a golden judged as if
    the agent made no call). Under pytester the engine loads when pytest starts, and the
    package's names are looked up by module name."""
    plugins = 'pytest_plugins = ["pytester"]\n'
    test = TWICE.format(agent=INNER_AGENT)
    if where == "conftest":  # loaded before pytest_configure
        pytester.makeconftest(plugins)
    else:  # loaded as the module is collected
        test = plugins + test
    pytester.makepyfile(test_twice=test)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
