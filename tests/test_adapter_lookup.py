"""How a golden finds its agent when something is misspelt: a golden's `agent:` naming no
registered adapter, an adapter given as a file path or a module that does not import, and
the embedder and judge settings, which are looked up as the adapter is."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

MAIN = """
import opswald


def run(input):
    return {"by": "ini", "echo": input}


def embed(texts):
    return [[float(len(t)), 1.0] for t in texts]
"""

SUPPORT = """
import opswald


@opswald.adapter("support")
def support(input):
    return {"by": "support", "echo": input}
"""


def _project(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, agent: str) -> Path:
    """my_agent/main.py named by the ini; a golden whose `agent:` is `agent`, recorded from
    the ini adapter."""
    monkeypatch.delenv("CI", raising=False)
    pytester.mkpydir("my_agent")
    (pytester.path / "my_agent" / "main.py").write_text(MAIN)
    pytester.makeini("[pytest]\nopswald_adapter = my_agent.main:run\n")
    goldens = pytester.mkdir("goldens")
    golden = goldens / "ticket.golden.yaml"
    golden.write_text(
        f"name: ticket\nagent: {agent}\ninput: hi\nsteps: []\noutput: {{by: ini, echo: hi}}\n"
    )
    return golden


# run in a subprocess: this suite's conftest registers the example agent's adapter
SHOWN = ("-W", "always::UserWarning")


def test_a_golden_naming_no_registered_adapter_warns_when_others_are_registered(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`agent: suport` while the conftest registers `support`: the ini adapter ran without
    a word. It still runs (README's order), with a warning at the golden's `agent:` line
    naming the agent, the registered adapters with a did-you-mean, and what ran instead."""
    _project(pytester, monkeypatch, "suport")
    pytester.makeconftest(SUPPORT)
    pytester.makepyfile(
        test_marked="""
        import pytest

        @pytest.mark.golden("goldens/ticket.golden.yaml")
        def test_ticket(golden_replay):
            assert golden_replay.actual.output["by"] == "ini"
        """
    )
    result = pytester.runpytest_subprocess("--opswald-goldens", *SHOWN)
    result.assert_outcomes(passed=2, warnings=2)
    result.stdout.fnmatch_lines(
        [
            "  goldens/ticket.golden.yaml:2: AdapterWarning: ticket.golden.yaml: agent 'suport' "
            "is no registered adapter (registered: support; did you mean 'support'?): "
            "opswald_adapter = 'my_agent.main:run' ran it instead",
        ]
    )
    # warnings made errors: the golden fails with the message, not a traceback
    result = pytester.runpytest_subprocess(
        "--opswald-goldens", "-W", "error::opswald.adapters.AdapterWarning"
    )
    result.assert_outcomes(failed=1, errors=1)  # the marker's golden_replay: at its setup
    result.stdout.fnmatch_lines(["*agent 'suport' is no registered adapter*"] * 2)
    assert "Traceback" not in result.stdout.str()


def test_an_agent_that_is_a_free_label_is_not_warned_about(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With no adapter registered at all, `agent:` is a label (importers fill it from the
    trace): the ini adapter runs it in silence. So does a correctly named one."""
    _project(pytester, monkeypatch, "support_bot")
    result = pytester.runpytest_subprocess("--opswald-goldens", *SHOWN)
    result.assert_outcomes(passed=1)
    assert "AdapterWarning" not in result.stdout.str()
    pytester.makeconftest(SUPPORT)
    golden = pytester.path / "goldens" / "ticket.golden.yaml"
    golden.write_text(
        golden.read_text().replace("support_bot", "support").replace("ini", "support")
    )
    result = pytester.runpytest_subprocess("--opswald-goldens", *SHOWN)
    result.assert_outcomes(passed=1)
    assert "AdapterWarning" not in result.stdout.str()


def test_opswald_replay_warns_of_an_agent_naming_no_registered_adapter(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`opswald replay` loads no conftest.py, but an adapter registered in the module the
    config names is seen once that module is imported."""
    _project(pytester, monkeypatch, "suport")
    (pytester.path / "my_agent" / "main.py").write_text(
        MAIN + SUPPORT.replace("import opswald", "")
    )
    proc = subprocess.run(
        [sys.executable, "-m", "opswald.cli", "replay", "goldens/ticket.golden.yaml"],
        cwd=pytester.path,
        capture_output=True,
        encoding="utf-8",
        env={**os.environ, "COLUMNS": "100"},
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (
        "warning: ticket.golden.yaml: agent 'suport' is no registered adapter (registered: "
        "support; did you mean 'support'?): "
    ) in proc.stderr, proc.stderr


def test_the_replay_api_warns_of_an_agent_naming_no_registered_adapter(tmp_path: Path) -> None:
    """`opswald.Replay` finds the adapter as `opswald replay` does, and warns alike (this
    suite's conftest registers `travel`, the example agent's adapter)."""
    import opswald
    from opswald.adapters import AdapterWarning

    root = Path(__file__).resolve().parents[1]
    text = (root / "goldens" / "weather.golden.yaml").read_text(encoding="utf-8")
    golden = tmp_path / "weather.golden.yaml"
    golden.write_text(text.replace("\nagent: travel\n", "\nagent: travl\n"), encoding="utf-8")
    (tmp_path / "pytest.ini").write_text("[pytest]\nopswald_adapter = examples.travel_agent:run\n")
    with pytest.warns(AdapterWarning) as caught:
        replay = opswald.Replay(golden)
    [warning] = caught
    assert (warning.filename, warning.lineno) == (
        str(golden),
        text.split("\n").index("agent: travel") + 1,
    )
    text = str(warning.message)  # other tests of this process may have registered more
    assert text.startswith("weather.golden.yaml: agent 'travl' is no registered adapter (")
    assert text.split("\n")[0].endswith(
        "did you mean 'travel'?): opswald_adapter = 'examples.travel_agent:run' ran it instead"
    )
    assert replay.run().passed


def _failing_spec(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, spec: str) -> Path:
    golden = _project(pytester, monkeypatch, "ticket")
    golden.write_text(golden.read_text().replace("agent: ticket\n", ""))
    pytester.makeini(f"[pytest]\nopswald_adapter = {spec}\n")
    return golden


@pytest.mark.parametrize(
    ("spec", "lines"),
    [
        (  # a file path: the module's dotted name
            "my_agent/main.py:run",
            [
                "cannot import 'my_agent/main.py' for adapter 'my_agent/main.py:run': it is a "
                "file path, not a module's dotted name",
                "fix: name the module, not its file: 'my_agent.main:run'",
            ],
        ),
        (
            "./my_agent/main.py",
            ["fix: name the module, not its file: 'my_agent.main:callable'"],
        ),
        (  # a typo in the package: the module that is there
            "my_agnt.main:run",
            [
                "cannot import 'my_agnt.main' for adapter 'my_agnt.main:run': No module named "
                "'my_agnt'",
                "fix: did you mean 'my_agent.main:run'?",
            ],
        ),
        (  # a typo in the module: the package's modules
            "my_agent.mian:run",
            ["*No module named 'my_agent.mian'", "fix: did you mean 'my_agent.main:run'?"],
        ),
        (  # nothing like it: where modules are looked for
            "elsewhere.agent:run",
            [
                "*No module named 'elsewhere'",
                "fix: add the folder that holds elsewhere to `pythonpath` in the pytest config "
                "(modules beside it are found), or install the package that provides it",
            ],
        ),
    ],
)
def test_an_adapter_that_does_not_import_gets_a_fix_line(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, spec: str, lines: list[str]
) -> None:
    _failing_spec(pytester, monkeypatch, spec)
    result = pytester.runpytest_subprocess("--opswald-goldens")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(lines)


def test_an_adapter_in_a_src_folder_says_to_set_pythonpath(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    _failing_spec(pytester, monkeypatch, "my_agent.main:run")
    pytester.mkdir("src")
    (pytester.path / "my_agent").rename(pytester.path / "src" / "my_agent")
    result = pytester.runpytest_subprocess("--opswald-goldens")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        ["fix: my_agent is in src: add `pythonpath = src` to the pytest config"]
    )
    pytester.makeini("[pytest]\nopswald_adapter = my_agent.main:run\npythonpath = src\n")
    pytester.runpytest_subprocess("--opswald-goldens").assert_outcomes(passed=1)


def test_a_module_the_adapter_imports_that_is_missing_is_named_in_the_fix(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    _failing_spec(pytester, monkeypatch, "my_agent.main:run")
    main = pytester.path / "my_agent" / "main.py"
    main.write_text("import nosuchdep\n" + main.read_text())
    result = pytester.runpytest_subprocess("--opswald-goldens")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "cannot import 'my_agent.main' for adapter 'my_agent.main:run': No module named "
            "'nosuchdep'",
            "fix: my_agent.main imports nosuchdep, which is not found: install it, or add the "
            "folder that holds it to `pythonpath` in the pytest config",
        ]
    )


def test_a_module_named_by_its_file_beside_the_config_gets_its_module_name(
    tmp_path: Path,
) -> None:
    from opswald.adapters import AdapterNotFound, import_string

    (tmp_path / "agentfile.py").write_text("def run(input):\n    return input\n")
    with pytest.raises(AdapterNotFound) as raised:
        import_string("agentfile.py:run", root=tmp_path)
    assert str(raised.value).splitlines() == [
        "cannot import 'agentfile.py' for adapter 'agentfile.py:run': it is a file path, not "
        "a module's dotted name",
        "fix: name the module, not its file: 'agentfile:run'",
    ]


EMBEDDING = """name: ticket
input: hi
steps: []
output: {by: ini, echo: hi}
expect:
  output: {match: embedding, threshold: 0.9}
"""


def test_the_embedder_and_the_judge_are_found_beside_the_config_as_the_adapter_is(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """pyproject names `my_agent.main:run`, no `pythonpath`: the adapter imported (looked
    for beside the config file), the embedder in the same module did not ('No module named
    my_agent', 'for adapter'). Both are found now, and their messages name them."""
    golden = _project(pytester, monkeypatch, "ticket")
    golden.write_text(EMBEDDING)
    (pytester.path / "tox.ini").unlink()
    pytester.makepyprojecttoml('[tool.pytest.ini_options]\nopswald_adapter = "my_agent.main:run"\n')
    sub = pytester.mkdir("elsewhere")  # run from another folder: the project is not on sys.path
    monkeypatch.chdir(sub)
    args = ("--rootdir", str(pytester.path), "-c", str(pytester.path / "pyproject.toml"))
    args = (*args, str(golden), "--opswald-goldens")
    result = pytester.runpytest_subprocess(*args, "-o", "opswald_embedder=my_agent.main:embed")
    result.assert_outcomes(passed=1)
    result = pytester.runpytest_subprocess(*args, "-o", "opswald_embedder=my_agent.mian:embed")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [
            "ERROR: opswald_embedder: cannot import 'my_agent.mian' for embedder "
            "'my_agent.mian:embed': No module named 'my_agent.mian'",
            "fix: did you mean 'my_agent.main:embed'?",
        ]
    )
    result = pytester.runpytest_subprocess(*args, "-o", "opswald_judge=nosuch:x")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["ERROR: opswald_judge: cannot import 'nosuch' for judge 'nosuch:x': No module named*"]
    )
