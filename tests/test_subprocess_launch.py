"""A `subprocess:` adapter whose command cannot be started (a typo in the program's name,
a script without its x bit or with a #! line naming a missing interpreter, an empty
command, an unclosed quote) is a misconfiguration, as an in-process adapter that cannot be
imported is: a failure naming the command and what to fix, never the agent's recorded
error, never written by --opswald-update or a recording. A command that starts and then
fails is the agent's, as it always was."""

from __future__ import annotations

import os
import sys
from fnmatch import fnmatch
from pathlib import Path

import pytest

import opswald
from fakeprovider import FakeProvider
from opswald import adapters
from opswald.cli import main

AGENT = """
import json
import sys

import openai

question = json.load(sys.stdin)["question"]
client = openai.OpenAI(api_key="sk-test", max_retries=0)
reply = client.chat.completions.create(
    model="gpt-4o-mini", messages=[{"role": "user", "content": question}]
)
print(json.dumps({"answer": reply.choices[0].message.content}))
"""

GOLDEN = "goldens/s.golden.yaml"
STUB = "name: s\ninput:\n  question: Capital of Italy?\n"


@pytest.fixture
def recorded(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    """A Python agent run as `subprocess:python agent.py`, with one golden recorded."""
    for var in ("CI", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
        monkeypatch.delenv(var.lower(), raising=False)
    (pytester.path / "agent.py").write_text(AGENT)
    pytester.makeini(f"[pytest]\nopswald_adapter = subprocess:{sys.executable} agent.py\n")
    pytester.mkdir("goldens")
    (pytester.path / GOLDEN).write_text(STUB)
    with FakeProvider(script=[{"content": "Rome."}]) as fp:
        monkeypatch.setenv("OPENAI_BASE_URL", fp.base_url + "/v1")
        result = pytester.runpytest("--opswald-goldens", "--opswald-mode=record")
    assert result.ret == 0, result.stdout.str()
    assert "Rome." in (pytester.path / GOLDEN).read_text()
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")  # never reached in replay
    return pytester


def _script(path: Path, text: str, *, executable: bool) -> None:
    path.write_text(text)
    path.chmod(0o755 if executable else 0o644)


# the command, what cannot be done with it (after the setting that names it) and the fix
CANNOT_START = [
    pytest.param(
        "pyhton agent.py",
        "cannot start the command pyhton agent.py: 'pyhton' is not found on PATH",
        "correct the program's name in the command*",
        id="not-found",
    ),
    pytest.param(
        "agent.py",
        "cannot start the command agent.py: 'agent.py' is not found on PATH",
        "*a file here is run by its path (./agent.py) or by its interpreter (python agent.py)*",
        id="file-without-path",
    ),
    pytest.param(
        "./agent.py",
        "cannot start the command ./agent.py: './agent.py' is not executable",
        "make it executable (chmod +x ./agent.py), or run it by its interpreter "
        "(python ./agent.py)*",
        id="not-executable",
    ),
    pytest.param(
        "./nosuch.py",
        "cannot start the command ./nosuch.py: './nosuch.py' does not exist in *",
        "correct the path*",
        id="no-such-path",
    ),
    pytest.param(
        "./goldens",
        "cannot start the command ./goldens: './goldens' is a folder, not a program",
        "correct the path*",
        id="folder",
    ),
    pytest.param(
        "",
        "the command is empty",
        "name the program after subprocess: and its arguments, for example "
        "'subprocess:python agent.py'*",
        id="empty",
    ),
    pytest.param(
        'python "agent.py',
        'cannot split the command python "agent.py into words: No closing quotation',
        "close the quote*",
        id="unclosed-quote",
    ),
    pytest.param(
        "./badbang.py",
        "cannot start the command ./badbang.py: the interpreter its #! line names "
        "(/no/such/python) is not found",
        "correct the #! line of ./badbang.py*",
        id="missing-interpreter",
    ),
]


def _setup_commands(project: pytest.Pytester) -> None:
    _script(project.path / "agent.py", AGENT, executable=False)
    _script(project.path / "badbang.py", "#!/no/such/python\n" + AGENT, executable=True)


@pytest.mark.parametrize(("command", "problem", "fix"), CANNOT_START)
def test_a_command_that_cannot_be_started_is_not_the_agents_error(
    recorded: pytest.Pytester, command: str, problem: str, fix: str
) -> None:
    _setup_commands(recorded)
    before = (recorded.path / GOLDEN).read_bytes()
    setting = ["-o", f"opswald_adapter=subprocess:{command}"]
    for extra in ([], ["--opswald-update"], ["--opswald-mode=rerecord"], ["--opswald-timeout=60"]):
        result = recorded.runpytest("--opswald-goldens", *setting, *extra)
        result.assert_outcomes(failed=1)
        result.stdout.fnmatch_lines(
            [f"*opswald_adapter = {f'subprocess:{command}'!r}: {problem}*", f"fix: {fix}"]
        )
        out = result.stdout.str()
        assert "the agent raised" not in out
        assert "accept it with --opswald-update" not in out
        assert "updated" not in out and "recorded" not in out
        assert "Traceback" not in out
        # the golden keeps every recorded step, byte for byte
        assert (recorded.path / GOLDEN).read_bytes() == before


def test_a_stub_is_not_recorded_by_a_command_that_cannot_be_started(
    pytester: pytest.Pytester,
) -> None:
    pytester.makeini("[pytest]\nopswald_adapter = subprocess:pyhton agent.py\n")
    pytester.mkdir("goldens")
    (pytester.path / GOLDEN).write_text(STUB)
    result = pytester.runpytest("--opswald-goldens", "--opswald-mode=record")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*'pyhton' is not found on PATH*"])
    assert (pytester.path / GOLDEN).read_text() == STUB


def test_a_command_that_starts_and_fails_at_once_is_the_agents_error(
    recorded: pytest.Pytester,
) -> None:
    """Exiting with a status and no output is what the agent did: a failure as an in-process
    agent's exception is, which an update would write (the process ran)."""
    (recorded.path / "quits.py").write_text("import sys\nsys.exit(3)\n")
    result = recorded.runpytest(
        "--opswald-goldens", "-o", f"opswald_adapter=subprocess:{sys.executable} quits.py"
    )
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        ["*the agent raised SubprocessAgentError: *quits.py exited with 3*"]
    )
    assert "cannot start the command" not in result.stdout.str()


@pytest.mark.parametrize(("command", "problem", "fix"), CANNOT_START)
def test_opswald_replay_refuses_a_command_that_cannot_be_started(
    recorded: pytest.Pytester,
    command: str,
    problem: str,
    fix: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _setup_commands(recorded)
    before = (recorded.path / GOLDEN).read_bytes()
    capsys.readouterr()
    spec = f"subprocess:{command}"
    # --adapter, and the pytest config's opswald_adapter
    for args, name in ((["--adapter", spec], "--adapter"), ([], "opswald_adapter")):
        (recorded.path / "pytest.ini").write_text(f"[pytest]\nopswald_adapter = {spec}\n")
        code = main(["replay", GOLDEN, *args])
        out, err = capsys.readouterr()
        assert code == 4, out + err
        assert fnmatch(err, f"error: *{problem}*\nfix: {fix}"), err
        assert name in err and spec in err, err
        assert "the agent raised" not in out + err and "Traceback" not in err
    assert (recorded.path / GOLDEN).read_bytes() == before


def test_the_replay_api_refuses_a_command_that_cannot_be_started(
    recorded: pytest.Pytester,
) -> None:
    _setup_commands(recorded)
    golden = opswald.load(recorded.path / GOLDEN)
    # refused when made: it cannot even be split into a program and its arguments
    with pytest.raises(adapters.AdapterNotFound, match="'subprocess:': the command is empty"):
        opswald.Replay(golden, adapter="subprocess:")
    # the program is looked for when the agent starts: the run raises it, records nothing
    for adapter, problem in (
        ("subprocess:pyhton agent.py", "'pyhton' is not found on PATH"),
        (adapters.SubprocessAdapter(["pyhton", "agent.py"]), "is not found on PATH"),
        (adapters.SubprocessAdapter(["./badbang.py"]), "the interpreter its #! line"),
    ):
        replay = opswald.Replay(golden, adapter=adapter)
        with pytest.raises(adapters.AdapterNotStarted, match=problem):
            replay.run()
        assert replay.result is None


def test_a_subprocess_adapter_with_no_command_is_refused_when_made() -> None:
    with pytest.raises(adapters.AdapterNotStarted, match="the command is empty"):
        adapters.SubprocessAdapter([])
    with pytest.raises(adapters.AdapterNotStarted, match="the command is empty"):
        adapters.SubprocessAdapter("   ")
    with pytest.raises(adapters.AdapterNotStarted, match="No closing quotation"):
        adapters.SubprocessAdapter("node 'agent.js")


def test_the_path_of_the_adapters_environment_is_the_one_searched(tmp_path: Path) -> None:
    """A command found only on the PATH given in `env=` starts, as Popen would run it."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    _script(bin_dir / "myagent", "#!/bin/sh\necho '\"ok\"'\n", executable=True)
    path = f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"
    adapter = adapters.SubprocessAdapter(["myagent"], env={"PATH": path})
    assert adapters.call(adapters.check(adapter), None, {}) == "ok"
    with pytest.raises(adapters.AdapterNotStarted, match="'myagent' is not found on PATH"):
        adapters.call(adapters.SubprocessAdapter(["myagent"]), None, {})


def test_a_subprocess_timeout_longer_than_poll_can_wait_waits_as_long_as_the_agent_runs(
    tmp_path: Path,
) -> None:
    """Popen.communicate() waits in poll(), which takes at most 2**31-1 ms: a longer
    timeout= raised OverflowError as if the agent had."""
    answer = tmp_path / "answer.py"
    answer.write_text("import sys\nsys.stdin.read()\nprint('\"ok\"')\n")
    for timeout in (3_000_000, 1e300, float("inf")):
        adapter = adapters.SubprocessAdapter([sys.executable, str(answer)], timeout=timeout)
        assert adapter(None) == "ok"
    for bad in (0, -1, float("nan")):
        with pytest.raises(ValueError, match="timeout= must be a positive number of seconds"):
            adapters.SubprocessAdapter([sys.executable, str(answer)], timeout=bad)


PUT_ON_PATH = """
import os

import pytest


@pytest.fixture(scope="session", autouse=True)
def built_agent(tmp_path_factory):
    # a tool built for the test session, put on PATH only now
    folder = tmp_path_factory.mktemp("bin")
    program = folder / "myagent"
    program.write_text("#!/bin/sh\\ncat >/dev/null\\necho '\\"ok\\"'\\n")
    program.chmod(0o755)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PATH", f"{folder}{os.pathsep}{os.environ['PATH']}")
        yield
"""


def test_a_program_a_fixture_puts_on_path_is_found_when_the_agent_starts(
    pytester: pytest.Pytester,
) -> None:
    """The command was looked for on PATH when the adapter was resolved: a Replay made at
    collection refused a program that a session fixture puts on PATH before the test runs.
    It is looked for when the agent is started; one still missing then is refused then,
    as a command that cannot be started, and nothing is recorded."""
    pytester.makeconftest(PUT_ON_PATH)
    pytester.mkdir("goldens")
    (pytester.path / "goldens/s.golden.yaml").write_text(
        "name: s\ninput: {question: hi}\nsteps: []\noutput: ok\n"
    )
    pytester.makepyfile(
        test_it="""
        import pytest

        import opswald
        from opswald import adapters

        BUILT = opswald.Replay("goldens/s.golden.yaml", adapter="subprocess:myagent")
        MISSING = opswald.Replay("goldens/s.golden.yaml", adapter="subprocess:notmyagent")

        def test_built():
            assert BUILT.run().passed

        def test_missing():
            with pytest.raises(adapters.AdapterNotStarted, match="'notmyagent' is not found"):
                MISSING.run()
        """
    )
    result = pytester.runpytest("-p", "no:randomly")
    result.assert_outcomes(passed=2)


def test_a_subprocess_adapter_is_checked_when_called_not_when_resolved(tmp_path: Path) -> None:
    """check() (resolution) takes it; the call refuses a program not on PATH by then, with
    the setting it came from, before anything runs."""
    adapter = adapters.check(adapters.SubprocessAdapter(["myagent"]), "opswald_adapter = 'x'")
    with pytest.raises(
        adapters.AdapterNotStarted,
        match=r"^opswald_adapter = 'x': cannot start the command myagent: 'myagent' is not found",
    ):
        adapters.call(adapter, None, {})


FAILING_AGENT = """
import json
import sys


def lookup(order):
    raise KeyError(f"no order {order}")


order = json.load(sys.stdin)["order"]
print("looking up the order", file=sys.stderr)
if order == 2:
    sys.exit("boom: the order service is down")
if order == 3:  # a traceback as Python 3.13 writes it: markers under most lines of code
    sys.stderr.write(
        "Traceback (most recent call last):\\n"
        '  File "agent.py", line 30, in <module>\\n'
        "    main(lookup(order))\\n"
        "         ~~~~~~^^^^^^^\\n"
        '  File "agent.py", line 8, in lookup\\n'
        "    return total_of(order)\\n"
        "           ~~~~~~^^^^^^^\\n"
        "KeyError: 3\\n"
    )
    sys.exit(1)
lookup(order)
"""


@pytest.mark.parametrize(
    ("order", "shown"),
    [
        pytest.param(
            1,
            [
                "*hint: the golden finished without an error; the agent's stderr ends:",
                "*    Traceback (most recent call last):",
                "*      File *agent.py*, line *, in <module>",
                "*        lookup(order)",
                *(["*        ~~~~~~^^^^^^^"] if sys.version_info >= (3, 13) else []),
                "*      File *agent.py*, line *, in lookup",
                '*    raise KeyError(f"no order {order}")',
                "*KeyError: 'no order 1'",
                "fix: *",
            ],
            id="traceback",
        ),
        pytest.param(
            2,
            [
                "*hint: the golden finished without an error; the agent's stderr ends:",
                "*    looking up the order",
                "*    boom: the order service is down",
                "fix: *",
            ],
            id="message",
        ),
        pytest.param(
            3,
            [
                "*hint: the golden finished without an error; the agent's stderr ends:",
                "*    Traceback (most recent call last):",
                '*      File "agent.py", line 30, in <module>',
                "*        main(lookup(order))",
                "*             ~~~~~~^^^^^^^",
                '*      File "agent.py", line 8, in lookup',
                "*        return total_of(order)",
                "*               ~~~~~~^^^^^^^",
                "*    KeyError: 3",
                "fix: *",
            ],
            id="markers",
        ),
    ],
)
def test_a_failed_agents_hint_shows_its_stderr_not_opswalds_frames(
    pytester: pytest.Pytester, capsys: pytest.CaptureFixture[str], order: int, shown: list[str]
) -> None:
    """The hint called opswald's own frames (adapters.py, `raise SubprocessAgentError`) the
    agent's traceback. It shows what the agent's process wrote on stderr: its traceback."""
    (pytester.path / "agent.py").write_text(FAILING_AGENT)
    pytester.makeini(f"[pytest]\nopswald_adapter = subprocess:{sys.executable} agent.py\n")
    pytester.mkdir("goldens")
    (pytester.path / GOLDEN).write_text(
        f"name: s\ninput: {{order: {order}}}\nsteps: []\noutput: ok\n"
    )
    result = pytester.runpytest("--opswald-goldens")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(shown, consecutive=True)
    capsys.readouterr()
    assert main(["replay", GOLDEN]) == 1
    cli = capsys.readouterr().out
    # the terminal's width breaks the lines naming the agent's long path
    unbroken = [line for line in shown if "File" not in line]
    pytest.LineMatcher(cli.splitlines()).fnmatch_lines(unbroken)
    for out in (result.stdout.str(), cli):
        assert "adapters.py" not in out
        assert "raise SubprocessAgentError" not in out
