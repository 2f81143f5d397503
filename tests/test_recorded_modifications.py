"""The fix line of a golden recorded under modifications (`metadata.modifications`, written
by an update with a variant or --opswald-modify) that a plain replay lacks: it names them
only where a difference is at a request field they set, and never offers a command that
would not replay (any --opswald-modify makes the run a fork)."""

from __future__ import annotations

import pytest
import yaml

AGENT = """
import os

import opswald

TOOLS = [{"name": "search", "description": "Search rows."}]


@opswald.llm(provider="acme", api="acme.chat")
def chat(*, model, messages, tools=None, temperature=None):
    return {"content": "done", "finish_reason": "stop"}


def run(input):
    tools = list(TOOLS)
    if os.environ.get("NEW_TOOL"):
        tools.insert(0, {"name": "fetch", "description": "Fetch a page."})
    chat(model="m1", messages=[{"role": "user", "content": input["q"]}], tools=tools)
    return os.environ.get("ANSWER", "done")
"""


@pytest.fixture
def project(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.delenv("NEW_TOOL", raising=False)
    monkeypatch.delenv("ANSWER", raising=False)
    pytester.makepyfile(magent=AGENT)
    pytester.makeini("[pytest]\nopswald_adapter = magent:run\npythonpath = .\n")
    pytester.mkdir("goldens")
    (pytester.path / "goldens" / "g.golden.yaml").write_text("name: g\ninput: {q: hi}\n")
    return pytester


def _write_under(project: pytest.Pytester, variant: str) -> None:
    result = project.runpytest_subprocess(
        "--opswald-goldens", "--opswald-update", "--opswald-variant", variant
    )
    result.stdout.fnmatch_lines(["*1 recorded*"])


def test_a_request_field_the_recorded_modifications_set_is_explained_without_a_fork_command(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    _write_under(project, "hot:temperature=0.7")
    golden = yaml.safe_load((project.path / "goldens" / "g.golden.yaml").read_text())
    assert golden["metadata"]["modifications"] == {"temperature": 0.7}
    monkeypatch.setenv("NEW_TOOL", "1")
    result = project.runpytest_subprocess("--opswald-goldens")
    result.assert_outcomes(failed=1)
    out = result.stdout.str()
    # `--opswald-modify temperature=0.7` would run a fork, which passes and hides the tool
    assert "replay it as recorded" not in out
    assert "--opswald-modify temperature=0.7" not in out.split("fix:", 1)[1]
    result.stdout.fnmatch_lines(
        [
            "fix: the golden was recorded under temperature=0.7 (metadata.modifications, from "
            "a variant or --opswald-modify), which this run does not apply: the difference at "
            "step 1 › input.params is that; if the new behaviour is intended, accept it with "
            "--opswald-update (written without them)",
        ]
    )


def test_recorded_modifications_that_explain_no_difference_are_not_named(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    _write_under(project, "v2:agent_version=2")  # a key only the adapter reads
    golden = yaml.safe_load((project.path / "goldens" / "g.golden.yaml").read_text())
    assert golden["metadata"]["modifications"] == {"agent_version": 2}
    monkeypatch.setenv("ANSWER", "changed")
    result = project.runpytest_subprocess("--opswald-goldens")
    result.assert_outcomes(failed=1)
    assert "metadata.modifications" not in result.stdout.str()
    result.stdout.fnmatch_lines(
        ["fix: if the new behaviour is intended, accept it with --opswald-update"]
    )


def test_opswald_replay_names_recorded_modifications_only_as_the_cause(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    _write_under(project, "hot:temperature=0.7")
    monkeypatch.setenv("NEW_TOOL", "1")
    result = project.run("opswald", "replay", "goldens/g.golden.yaml")
    out = result.stdout.str() + result.stderr.str()
    assert result.ret == 1, out
    assert "--modify" not in out
    assert "the golden was recorded under temperature=0.7" in out
