"""The fix line of a golden recorded under modifications (`metadata.modifications`, written
by an update with a variant or --opswald-modify) that a plain replay lacks: it names them
only where a difference is at a request field they set, and never offers a command that
would not replay (any --opswald-modify makes the run a fork)."""

from __future__ import annotations

import json

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
    """Written with --opswald-modify (or before variant names were written, a variant):
    no variant is named."""
    result = project.runpytest_subprocess(
        "--opswald-goldens", "--opswald-update", "--opswald-modify", "temperature=0.7"
    )
    result.stdout.fnmatch_lines(["*1 recorded*"])
    golden = yaml.safe_load((project.path / "goldens" / "g.golden.yaml").read_text())
    assert golden["metadata"]["modifications"] == {"temperature": 0.7}
    assert "variant" not in golden["metadata"]
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
            "a variant, --opswald-modify or a marker's modify=), which this run does not apply: "
            "the difference at "
            "step 1 › input.params is that; if the new behaviour is intended, accept it with "
            "--opswald-update (written without them)",
        ]
    )


def test_a_golden_written_under_a_variant_keeps_its_name_which_the_fix_line_names(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The variant's name was lost when its golden was written (only its modifications
    were kept): it is written as `metadata.variant`, beside them, and named with them."""
    _write_under(project, "hot:temperature=0.7")
    path = project.path / "goldens" / "g.golden.yaml"
    golden = yaml.safe_load(path.read_text())
    assert golden["metadata"]["variant"] == "hot"
    assert golden["metadata"]["modifications"] == {"temperature": 0.7}
    monkeypatch.setenv("NEW_TOOL", "1")
    result = project.runpytest_subprocess("--opswald-goldens")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "fix: the golden was recorded under the variant hot: temperature=0.7 "
            "(metadata.variant, metadata.modifications), which this run does not apply: the "
            "difference at step 1 › input.params is that; if the new behaviour is intended, "
            "accept it with --opswald-update (written without them)",
        ]
    )
    monkeypatch.delenv("NEW_TOOL")
    result = project.runpytest_subprocess("--opswald-goldens", "--opswald-update")
    result.stdout.fnmatch_lines(["*1 updated*"])
    golden = yaml.safe_load(path.read_text())
    assert "variant" not in golden["metadata"], "an update without the variant drops it"
    assert "modifications" not in golden["metadata"]


def test_opswald_show_says_what_a_golden_was_recorded_under(project: pytest.Pytester) -> None:
    path = "goldens/g.golden.yaml"
    _write_under(project, "hot:temperature=0.7")
    shown = project.run("opswald", "show", path)
    assert shown.ret == 0
    assert shown.stdout.lines[1] == "recorded under the variant hot: temperature=0.7"
    data = json.loads(project.run("opswald", "show", path, "--json").stdout.str())
    assert data["recorded_under"] == {"variant": "hot", "modifications": {"temperature": 0.7}}
    golden = yaml.safe_load((project.path / path).read_text())
    del golden["metadata"]["variant"]  # as written before variant names were kept
    (project.path / path).write_text(yaml.safe_dump(golden))
    shown = project.run("opswald", "show", path)
    assert shown.stdout.lines[1] == "recorded under temperature=0.7"
    data = json.loads(project.run("opswald", "show", path, "--json").stdout.str())
    assert data["recorded_under"] == {"variant": None, "modifications": {"temperature": 0.7}}
    del golden["metadata"]["modifications"]
    (project.path / path).write_text(yaml.safe_dump(golden))
    shown = project.run("opswald", "show", path)
    assert not any("recorded under" in line for line in shown.stdout.lines)
    data = json.loads(project.run("opswald", "show", path, "--json").stdout.str())
    assert data["recorded_under"] is None


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
    assert "the golden was recorded under the variant hot: temperature=0.7" in out


def test_the_variant_a_run_was_made_under_is_no_difference_from_its_golden() -> None:
    """`metadata.variant`, like the modifications beside it, says how a run was made, not
    what the agent did: `opswald diff` and the viewer do not list it."""
    from opswald.session import Session
    from opswald.sessiondiff import compared_data, session_differences

    golden = Session(name="g", steps=[], output="done", metadata={"agent_version": "1"})
    run = {"agent_version": "1", "variant": "hot", "modifications": {"temperature": 0.7}}
    actual = golden.model_copy(update={"metadata": run})
    assert session_differences(compared_data(golden), compared_data(actual)) == []
    other = golden.model_copy(update={"metadata": {**run, "agent_version": "2"}})
    differences = session_differences(compared_data(golden), compared_data(other))
    assert [d.path for d in differences] == [("metadata", "agent_version")]
