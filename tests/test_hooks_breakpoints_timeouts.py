"""Step hooks in conftest, --opswald-break, and --opswald-timeout, run as users run them."""

from __future__ import annotations

import sys

import pytest

from conftest import agent_project, record

HOOKS = """
import agent

EVENTS = []


def pytest_opswald_adapter(golden, config):
    return agent.run


def pytest_opswald_before_step(replay, step):
    print(f"EVENT before {step.number} {step.type} {step.name}")


def pytest_opswald_after_step(replay, step, result):
    print(f"EVENT after {step.step} {step.type} steps-so-far={len(replay.steps)}")


def pytest_opswald_on_error(replay, step, error):
    print(f"EVENT error {step.step} {error.type}")
"""


def test_step_hooks_fire_in_order(project: pytest.Pytester) -> None:
    record(project)
    project.makeconftest(HOOKS)
    result = project.runpytest("--opswald-goldens", "-s")
    result.assert_outcomes(passed=1)
    events = [line.split("EVENT ", 1)[1] for line in result.outlines if "EVENT " in line]
    assert events == [
        "before 1 llm_call m1",
        "after 1 llm_call steps-so-far=1",
        "before 2 tool_call lookup",
        "after 2 tool_call steps-so-far=2",
        "before 3 state None",
        "after 3 state steps-so-far=3",
        "before 4 llm_call m1",
        "after 4 llm_call steps-so-far=4",
        "before 5 tool_call book",
        "after 5 tool_call steps-so-far=5",
        "before 6 llm_call m1",
        "after 6 llm_call steps-so-far=6",
        "before 7 state None",
        "after 7 state steps-so-far=7",
    ]


@pytest.mark.parametrize("xdist", [[], ["-n", "2"]])
def test_breakpoint_log_and_fail(project: pytest.Pytester, xdist: list[str]) -> None:
    record(project)
    result = project.runpytest(
        "--opswald-goldens",
        "--opswald-break",
        "tool_name == 'book'",
        "--opswald-break",
        "memory.changed",
        "--opswald-break-action=log",
        *xdist,
    )
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(
        [
            "note: goldens/flight.golden.yaml::book_flight: breakpoint 'memory.changed' hit at "
            "step 3 (state)",
            "note: goldens/flight.golden.yaml::book_flight: breakpoint \"tool_name == 'book'\" "
            "hit at step 5 (tool_call)",
            "note: goldens/flight.golden.yaml::book_flight: breakpoint 'memory.changed' hit at "
            "step 7 (state)",
        ]
    )
    result = project.runpytest(
        "--opswald-goldens",
        "--opswald-break",
        "total_cost > 0.0005",
        "--opswald-break-action=fail",
        *xdist,
    )
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*breakpoint 'total_cost > 0.0005' hit at step 4*"])


@pytest.mark.parametrize("xdist", [[], ["-n", "2"]])
def test_breakpoint_log_notes_are_in_step_order(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, xdist: list[str]
) -> None:
    """Twelve state steps: the notes of a golden follow its steps (9 before 10), not the
    text order of their lines."""
    import re

    monkeypatch.delenv("CI", raising=False)
    pytester.makepyfile(
        counting="import opswald\n\n\ndef run(input):\n"
        "    for i in range(12):\n        opswald.state(memory={'i': i})\n    return 'ok'\n",
        conftest="import counting\n",
    )
    pytester.makeini("[pytest]\nopswald_adapter = counting:run\n")
    pytester.mkdir("goldens")
    (pytester.path / "goldens" / "c.golden.yaml").write_text("name: c\ninput: {}\n")
    pytester.runpytest("--opswald-goldens", "--opswald-mode=record").assert_outcomes(passed=1)
    result = pytester.runpytest(
        "--opswald-goldens", "--opswald-break", "memory.changed",
        "--opswald-break", "step % 5 == 0", "--opswald-break-action=log", *xdist,
    )  # fmt: skip
    result.assert_outcomes(passed=1)
    notes = [line for line in result.outlines if line.startswith("note: ") and "hit at" in line]
    steps = [int(re.findall(r"hit at step (\d+)", line)[0]) for line in notes]
    assert len(steps) > 12 and max(steps) >= 10, notes
    assert steps == sorted(steps), notes


@pytest.mark.parametrize(
    "expression", ["__import__('os').system('echo pwned')", "memory.__class__", "step ="]
)
def test_bad_breakpoints_are_usage_errors(project: pytest.Pytester, expression: str) -> None:
    result = project.runpytest(
        "--opswald-goldens", "--opswald-break", expression, "--opswald-break-action=log"
    )
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--opswald-break:*", "*breakpoint condition rejected*"])
    assert "pwned" not in result.stdout.str()


def test_pause_is_refused_under_xdist(project: pytest.Pytester) -> None:
    result = project.runpytest("--opswald-goldens", "--opswald-break", "step == 2", "-n", "2")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*pause needs a terminal: it cannot run under xdist*"])


def test_pause_opens_pdb_with_replay_step_and_state(project: pytest.Pytester) -> None:
    record(project)
    child = project.spawn_pytest(
        "--opswald-goldens --opswald-break 'tool_name == \"lookup\"' -p no:cacheprovider"
    )
    child.expect("breakpoint .* hit at step 2")
    child.expect(r"\(Pdb\)")
    child.sendline("p step.tool, step.step, state.tool_outputs[0]['output']['seat']")
    child.expect(r"\('lookup', 2, '12A'\)")
    child.sendline("p replay.nodeid")
    child.expect("book_flight")
    child.sendline("c")
    child.expect("1 passed")
    child.wait()


HUNG = """
import asyncio
import os
import time

import opswald


@opswald.tool
def wait_for_payment(order):
    mode = os.environ.get("HANG", "") if order == "a" else ""
    if mode == "busy":
        while True:
            pass
    if mode == "sleep":
        time.sleep(3600)
    return {"order": order, "paid": True}


@opswald.tool
async def fetch(order):
    if os.environ.get("HANG") == "future" and order == "a":
        await asyncio.get_running_loop().create_future()
    return {"order": order}


def run(input):
    wait_for_payment(input)
    if os.environ.get("HANG") == "own" and input == "a":
        time.sleep(3600)  # the tool has returned: the agent's own code hangs
    return asyncio.run(fetch(input))
"""


@pytest.mark.parametrize(
    ("hang", "where"),
    [
        ("busy", "at step 1 (tool_call wait_for_payment)"),
        ("sleep", "at step 1 (tool_call wait_for_payment)"),
        ("future", "at step 2 (tool_call fetch)"),
        ("own", "after step 1 (tool_call wait_for_payment had returned; in the agent's own code)"),
    ],
)
@pytest.mark.parametrize("xdist", [[], ["-n", "2"]])
def test_timeouts_stop_hung_agents_and_the_run_goes_on(
    pytester: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    hang: str,
    where: str,
    xdist: list[str],
) -> None:
    monkeypatch.delenv("HANG", raising=False)
    monkeypatch.delenv("CI", raising=False)
    pytester.makepyfile(hung=HUNG, conftest="import hung\n")
    pytester.makeini("[pytest]\nopswald_adapter = hung:run\n")
    pytester.mkdir("goldens")
    for name in ("a", "b"):
        (pytester.path / "goldens" / f"{name}.golden.yaml").write_text(
            f"name: {name}\ninput: {name}\n"
        )
    pytester.runpytest("--opswald-goldens", "--opswald-mode=record").assert_outcomes(passed=2)
    path = pytester.path / "goldens" / "a.golden.yaml"
    path.write_text(path.read_text().replace("name: a\n", "name: a\ntimeout: 1.5\n"))
    monkeypatch.setenv("HANG", hang)
    # only golden a hangs (and has a timeout); b must still run and pass
    result = pytester.runpytest("--opswald-goldens", "--opswald-mode=live", *xdist)
    result.assert_outcomes(failed=1, passed=1)
    out = result.stdout.str()
    assert "the agent did not finish within 1.5 s" in out
    assert f"it hung {where}" in out
    # the fix line places the stop as the message does (it said 'at step 1' of a hang in
    # the agent's own code after step 1, and 'at its first step' of one before any step)
    assert f"fix: the agent was stopped (its process killed) {where}; raise" in out
    assert "goldens: 1 passed, 1 failed" in out
    monkeypatch.delenv("HANG")
    pytester.runpytest("--opswald-goldens", "--opswald-mode=live", *xdist).assert_outcomes(passed=2)


def test_cli_timeout_with_nothing_left_running(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    import threading

    monkeypatch.delenv("CI", raising=False)
    pytester.makepyfile(hung=HUNG, conftest="import hung\n")
    pytester.makeini("[pytest]\nopswald_adapter = hung:run\n")
    pytester.mkdir("goldens")
    (pytester.path / "goldens" / "a.golden.yaml").write_text("name: a\ninput: a\n")
    pytester.runpytest("--opswald-goldens", "--opswald-mode=record").assert_outcomes(passed=1)
    threads = threading.active_count()
    monkeypatch.setenv("HANG", "busy")
    result = pytester.runpytest("--opswald-goldens", "--opswald-mode=live", "--opswald-timeout=1")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        ["*did not finish within 1.0 s; it hung at step 1 (tool_call wait_for_payment)*"]
    )
    assert threading.active_count() == threads, "no thread of the agent is left"
    assert sys.platform.startswith("linux")


@pytest.mark.parametrize("value", ["2500000", "1e9", "1e300"])
def test_a_timeout_longer_than_poll_can_wait_waits_as_long_as_the_agent_runs(
    project: pytest.Pytester, value: str
) -> None:
    """poll() takes at most 2**31-1 ms (about 24.8 days): a longer timeout (from the option
    or a golden's `timeout:`) failed every golden with OverflowError from inside opswald."""
    record(project)
    result = project.runpytest("--opswald-goldens", f"--opswald-timeout={value}")
    result.assert_outcomes(passed=1)
    golden = project.path / "goldens" / "flight.golden.yaml"
    golden.write_text(golden.read_text() + "timeout: 3000000\n")
    result = project.runpytest("--opswald-goldens")
    result.assert_outcomes(passed=1)
    assert "OverflowError" not in result.stdout.str()


PACKAGE_AGENT = """
import opswald

@opswald.llm
def chat(*, model, messages):
    return {{"content": "{label} answer", "usage": {{"input_tokens": 1, "output_tokens": 1}}}}

def run(input):
    return chat(model="{label}-model", messages=[{{"role": "user", "content": input["q"]}}])
"""

PACKAGE_CONFTEST = """
import {label}_agent

def pytest_opswald_adapter(golden, config):
    return {label}_agent.run

def pytest_opswald_after_step(replay, step, result):
    print("EVENT {label} hook saw", replay.golden.name)
"""


@pytest.mark.parametrize("xdist", [[], ["-n", "2"]], ids=["serial", "xdist"])
def test_a_packages_conftest_hooks_apply_to_its_own_goldens_only(
    pytester: pytest.Pytester, xdist: list[str]
) -> None:
    """A monorepo: each package's conftest wires its own agent and step hook. Run from the
    root, each golden is run by its package's agent and seen by its package's hook only
    (as pytest's per-directory hooks are), whatever else is collected."""
    pytester.makeini("[pytest]\ntestpaths = alpha beta\n")
    for label in ("alpha", "beta"):
        package = pytester.mkdir(label)
        (package / f"{label}_agent.py").write_text(PACKAGE_AGENT.format(label=label))
        (package / "conftest.py").write_text(PACKAGE_CONFTEST.format(label=label))
        goldens = package.joinpath("goldens")
        goldens.mkdir()
        (goldens / f"{label}.golden.yaml").write_text(f"name: {label}\ninput: {{q: hi}}\n")
    for label in ("alpha", "beta"):  # each recorded from its own folder
        result = pytester.runpytest_subprocess(
            "--opswald-goldens", "--opswald-mode=record", str(pytester.path / label)
        )
        result.assert_outcomes(passed=1)
    for label in ("alpha", "beta"):
        text = (pytester.path / label / "goldens" / f"{label}.golden.yaml").read_text()
        assert f"model: {label}-model" in text and f"{label} answer" in text
    result = pytester.runpytest_subprocess("--opswald-goldens", "-s", *xdist)
    result.assert_outcomes(passed=2)
    if not xdist:  # workers' output is not shown
        events = sorted(line.split("EVENT ", 1)[1] for line in result.outlines if "EVENT " in line)
        assert events == ["alpha hook saw alpha", "beta hook saw beta"]
    result = pytester.runpytest_subprocess("--opswald-goldens", "--opswald-mode=rerecord", *xdist)
    result.assert_outcomes(passed=2)
    text = (pytester.path / "alpha" / "goldens" / "alpha.golden.yaml").read_text()
    assert "model: alpha-model" in text and "beta" not in text


EXITING_AGENT = """
import os
import sys

import opswald


@opswald.tool
def hello(x):
    return "hi " + x


def leave():
    sys.exit(3)


def run(input):
    hello("a")
    if os.environ.get("LEAVE"):
        leave()
    return "ok"
"""


@pytest.mark.parametrize("workers", [[], ["-n", "2"]], ids=["inline", "xdist"])
def test_an_agent_leaving_with_sys_exit_reads_the_same_under_a_timeout(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, workers: list[str]
) -> None:
    """Its exception crosses back from the timeout's child process with the frames it was
    raised through: the failure shows the agent's frames, as without a timeout, and none
    of pytest's, pluggy's or opswald's."""
    monkeypatch.delenv("LEAVE", raising=False)
    agent_project(pytester, EXITING_AGENT, se="name: se\ninput: go\n")
    record(pytester)
    monkeypatch.setenv("LEAVE", "1")
    shown = []
    for args in ([], ["--opswald-timeout", "60"]):
        result = pytester.runpytest("--opswald-goldens", "-p", "no:randomly", *workers, *args)
        result.assert_outcomes(failed=1)
        lines = result.stdout.lines
        start = next(i for i, line in enumerate(lines) if "golden: se" in line)
        end = next(i for i, line in enumerate(lines) if line.startswith("E   SystemExit: 3"))
        shown.append([line for line in lines[start + 1 : end + 1] if not line.startswith("[gw")])
    assert shown[0] == shown[1]
    assert shown[0] == [
        "agent.py:19: in run",
        "    leave()",
        "agent.py:13: in leave",
        "    sys.exit(3)",
        "E   SystemExit: 3",
    ]


LOGGING_AGENT = """
import logging
import warnings

import opswald

log = logging.getLogger("shop.agent")


@opswald.tool
def lookup(order_id):
    return {"id": order_id}


def run(input):
    log.debug("AGENT-DEBUG start")
    log.warning("AGENT-WARNING slow path %s", input)
    try:
        raise ValueError("inner")
    except ValueError:
        log.exception("AGENT-ERROR with a traceback")
    warnings.warn("AGENT-USERWARNING deprecated field", UserWarning)
    return lookup(order_id=input)
"""

LOG_GUARD = """
import logging

import pytest


@pytest.fixture(autouse=True)
def no_error_logs(request, caplog, recwarn):
    yield
    errors = [r.getMessage() for r in caplog.get_records("call") if r.levelno >= logging.ERROR]
    warned = [str(w.message) for w in recwarn]
    print(f"GUARD {request.node.name} errors={errors} warned={warned}")
"""


@pytest.mark.parametrize("workers", [[], ["-n", "2"]], ids=["inline", "xdist"])
def test_what_the_agent_logs_and_warns_under_a_timeout_reaches_pytest(
    pytester: pytest.Pytester, workers: list[str]
) -> None:
    """QA (capture #1): under a timeout the agent runs in a child process, and its log
    records and warnings stayed there: no "Captured log call" section, no warnings summary,
    `caplog` and `recwarn` empty (a guard fixture failing tests that log errors passed the
    golden), while `--log-file` got the child's copy of the records. They now reach the
    test process's pytest handlers and record of warnings, once, as without a timeout."""
    agent_project(
        pytester,
        LOGGING_AGENT,
        inproc="name: inproc\ninput: o1\n",
        forked="name: forked\ninput: o1\ntimeout: 30\n",
    )
    pytester.makeconftest(LOG_GUARD)
    record(pytester).assert_outcomes(passed=2)
    result = pytester.runpytest(
        "--opswald-goldens", "-rA", "--log-file=run.log", "--log-file-level=DEBUG",
        "-p", "no:randomly", *workers,
    )  # fmt: skip
    result.assert_outcomes(passed=2)
    out = result.stdout.str()
    for name in ("inproc", "forked"):
        assert (
            f"GUARD {name} errors=['AGENT-ERROR with a traceback'] "
            "warned=['AGENT-USERWARNING deprecated field']"
        ) in out, out
    if not workers:  # (xdist's workers each write --log-file anew: the last one's is left)
        logged = (pytester.path / "run.log").read_text()
        for line in ("AGENT-DEBUG start", "AGENT-WARNING slow path o1"):
            assert logged.count(line) == 2, logged  # once a golden, not twice for forked
        assert logged.count("ValueError: inner") == 2, logged  # its traceback crossed
    (pytester.path / "conftest.py").unlink()  # no `recwarn`: the warnings summary has them
    # (this suite turns warnings into errors; the run shows them, as a project's would)
    shown = ("-W", "always::UserWarning")
    result = pytester.runpytest("--opswald-goldens", "-rA", "-p", "no:randomly", *shown, *workers)
    result.assert_outcomes(passed=2, warnings=2)
    for name in ("inproc", "forked"):
        result.stdout.fnmatch_lines(
            [f"goldens/{name}.golden.yaml::{name}", "*agent.py:*: UserWarning: AGENT-USERWARNING*"]
        )
    sections = result.stdout.str().split("= PASSES =")[1]
    for name in ("inproc", "forked"):
        part = sections.split(f"golden: {name} _")[1].split("golden: ")[0]
        assert "Captured log call" in part and "AGENT-WARNING slow path o1" in part, part


ODD_LOGGING_AGENT = """
import logging
import warnings

import opswald

log = logging.getLogger("shop.agent")


class NeedsTwo(Exception):
    def __init__(self, code, text):
        super().__init__(f"{code}: {text}")


class TwoArgWarning(UserWarning):
    def __init__(self, code, text):
        super().__init__(f"{code}: {text}")


@opswald.tool
def lookup(order_id):
    return {"id": order_id}


def run(input):
    try:
        log.warning("bad %d args", "notanint")
        formatted = "quiet"
    except TypeError:
        formatted = "raised"
    log.warning("WITH-EXTRA", extra={"thing": NeedsTwo(1, "x")})
    warnings.warn(TwoArgWarning(7, "seven"))
    return {"formatting": formatted, "order": lookup(order_id=input)}
"""


def test_odd_records_and_warnings_under_a_timeout_read_as_without_one(
    pytester: pytest.Pytester,
) -> None:
    """QA (probe22 #5, #6): under a timeout a record whose `%` arguments do not format
    printed a "Logging error" report where pytest's handler raises in the agent (the
    golden then failed), and a record or warning that pickles but does not unpickle (an
    exception whose constructor takes two arguments) was lost in the test process."""
    goldens = agent_project(pytester, ODD_LOGGING_AGENT, odd="name: odd\ninput: o1\n")
    shown = ("-W", "always::UserWarning")
    record(pytester, *shown).assert_outcomes(passed=1, warnings=1)
    assert "formatting: raised" in (goldens / "odd.golden.yaml").read_text()
    seen = []
    for timeout in ([], ["--opswald-timeout", "30"]):
        result = pytester.runpytest("--opswald-goldens", "-rA", *shown, *timeout)
        result.assert_outcomes(passed=1, warnings=1)  # the agent saw the TypeError in both
        out = result.stdout.str()
        assert "Logging error" not in out
        result.stdout.fnmatch_lines(["*agent.py:*: TwoArgWarning: 7: seven"])
        seen.append(out.split("Captured log call")[1].split("--- opswald ---")[0])
    assert seen[0] == seen[1], seen
    assert "WITH-EXTRA" in seen[1], seen
