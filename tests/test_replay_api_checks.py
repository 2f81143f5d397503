"""The Python API's arguments and edge cases: which adapter runs, what is refused and how."""

from __future__ import annotations

from contextlib import chdir
from pathlib import Path
from typing import Any

import pytest

import opswald
from opswald.adapters import AdapterNotFound, AdapterWarning
from opswald.engine.run import RunSettings, execute
from opswald.session import Session


@opswald.tool
def look(key: str) -> str:
    return f"value of {key}"


@opswald.adapter("checks-registered")
def registered_agent(input: str) -> str:
    return f"registered: {look(input)}"


def other_agent(input: str) -> str:
    return f"other: {look(input)}"


def _golden(agent: Any = registered_agent, name: str = "g") -> Session:
    stub = Session(name=name, input="k", agent="checks-registered")
    return execute(stub, agent, settings=RunSettings(policy="live")).actual


def _module(folder: Path, monkeypatch: pytest.MonkeyPatch, name: str = "checks_agent2") -> str:
    """A module `name` on sys.path whose `run2` answers as `other_agent`."""
    (folder / f"{name}.py").write_text(
        "import opswald\n\n"
        "@opswald.tool\n"
        "def look(key):\n"
        "    return f'value of {key}'\n\n"
        "def run2(input):\n"
        "    return f'other: {look(input)}'\n"
    )
    monkeypatch.syspath_prepend(str(folder))
    return f"{name}:run2"


def test_a_string_adapter_wins_over_the_registered_agent(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = _module(tmp_path, monkeypatch)
    golden = _golden()
    replay = opswald.Replay(golden, adapter=spec)
    result = replay.run()
    assert result is not None
    assert result.actual.output == "other: value of k"
    assert not result.passed  # the other agent's output differs from the golden's
    batch = opswald.batch_replay([golden], adapter=spec)
    assert batch.results["g"].actual.output == "other: value of k"


def test_an_unimportable_string_adapter_is_refused() -> None:
    with pytest.raises(AdapterNotFound, match="cannot import 'nomod' for adapter 'nomod:run'"):
        opswald.Replay(_golden(), adapter="nomod:run")


def test_a_failed_step_once_changes_nothing() -> None:
    replay = opswald.Replay(_golden(), adapter=registered_agent)
    with pytest.raises(RuntimeError, match="not paused"):
        replay.step_once()
    result = replay.run()
    assert result is not None and result.passed and replay.paused_at is None


def _unnamed_golden(folder: Path) -> Path:
    """A golden whose `agent:` names nothing registered, written in `folder/goldens`."""
    stub = Session(name="unnamed", input="k", agent="checks-nobody")
    path = folder / "goldens" / "unnamed.golden.yaml"
    path.parent.mkdir()
    opswald.dump(execute(stub, other_agent, settings=RunSettings(policy="live")).actual, path)
    return path


def test_replay_uses_the_projects_opswald_adapter(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As `opswald replay` does: the module is found beside the config file."""
    (tmp_path / "checks_agent3.py").write_text(
        "import opswald\n\n"
        "@opswald.tool\n"
        "def look(key):\n"
        "    return f'value of {key}'\n\n"
        "def run2(input):\n"
        "    return f'other: {look(input)}'\n"
    )
    (tmp_path / "pytest.ini").write_text("[pytest]\nopswald_adapter = checks_agent3:run2\n")
    path = _unnamed_golden(tmp_path)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("sys.path", list(__import__("sys").path))  # the root it adds goes
    # the golden's agent names none of the adapters this suite registers (`travel`, ...)
    with pytest.warns(AdapterWarning, match="agent 'checks-nobody' is no registered adapter"):
        replay = opswald.Replay(path)
    result = replay.run()
    assert result is not None and result.passed
    assert result.actual.output == "other: value of k"


def test_no_adapter_says_what_was_tried(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    path = _unnamed_golden(tmp_path)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(AdapterNotFound) as raised:
        opswald.Replay(path)
    text = str(raised.value)
    assert "conftest" not in text and "pytest_opswald_adapter" not in text
    assert "- adapter=: not given" in text
    assert "- the golden's agent 'checks-nobody': not registered" in text
    assert f"- the pytest config {tmp_path / 'pytest.ini'}: does not set opswald_adapter" in text


def test_get_state_checks_the_step_as_pause_at_does() -> None:
    replay = opswald.Replay(_golden(), adapter=registered_agent)
    for bad in (0, -1):
        with pytest.raises(ValueError, match=r"steps are numbered from 1"):
            replay.get_state(bad)
    with pytest.raises(TypeError, match=r"get_state takes a step number, not '1'"):
        replay.get_state("1")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"get_state\(100\): the golden has 1 step\(s\)"):
        replay.get_state(100)
    assert replay.get_state(1).tool_outputs  # before a run: the golden's


def test_get_state_past_the_runs_end_is_refused() -> None:
    """After a run, the state is the run's: a step it never reached has none (the
    golden's would pass for the run's)."""

    def shorter(input: str) -> str:
        return "no lookups"

    replay = opswald.Replay(_golden(), adapter=shorter, mode="live")
    result = replay.run()
    assert result is not None and result.actual.step_list == []
    with pytest.raises(ValueError, match=r"get_state\(1\): the run ended after 0 step\(s\)"):
        replay.get_state(1)


def test_the_errors_and_results_the_readme_names_import_from_opswald() -> None:
    from opswald import AdapterNotFound as NotFound
    from opswald import BatchResult, GoldenLoadError, GoldenWriteRefused
    from opswald.engine.replay import BatchResult as Batch
    from opswald.files import GoldenLoadError as LoadError
    from opswald.files import GoldenWriteRefused as WriteRefused

    assert (NotFound, BatchResult, GoldenLoadError, GoldenWriteRefused) == (
        AdapterNotFound,
        Batch,
        LoadError,
        WriteRefused,
    )
    assert {"AdapterNotFound", "BatchResult", "GoldenLoadError", "GoldenWriteRefused"} <= set(
        opswald.__all__
    )


def test_load_and_dump_refuse_what_is_not_a_path_or_a_session(tmp_path: Path) -> None:
    target = tmp_path / "x.golden.yaml"
    with pytest.raises(TypeError, match=r"opswald.dump takes a Session first, not 'x.yaml'"):
        opswald.dump("x.yaml", target)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"not a dict: Session.model_validate\(data\) makes one"):
        opswald.dump({"name": "a"}, target)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"opswald.dump writes to a path, not 5"):
        opswald.dump(Session(name="a"), 5)
    with pytest.raises(TypeError, match=r"opswald.load takes a path, not bytes: .*yaml.safe_load"):
        opswald.load(b"name: a")
    # a golden's text read into a str (not a path: it was a GoldenLoadError quoting the
    # whole text as a file name, 'File name too long')
    for text in ("name: a\ninput: {}\n", '{"name": "a"}'):
        with pytest.raises(TypeError, match=r"opswald.load takes a path, not a golden's text"):
            opswald.load(text)
    assert not target.exists()


def test_a_path_that_starts_with_a_bracket_is_a_path(tmp_path: Path) -> None:
    """A str starting with `[` or `{` was taken for a golden's text, and refused, though
    file names such as `[draft] refund.golden.yaml` start so; a golden's text is a mapping,
    `{...}`, or holds a newline."""
    for name in ("[draft] a.golden.yaml", "{a}.golden.yaml"):
        opswald.dump(Session(name="a", steps=[], output=1), tmp_path / name)
        assert opswald.load(str(tmp_path / name)).name == "a"
        with chdir(tmp_path):
            assert opswald.load(name).name == "a"
    with pytest.raises(TypeError, match=r"not a golden's text"):
        opswald.load(' {"name": "a", "input": {}} ')


def test_an_adapter_that_is_neither_callable_nor_a_string_is_refused() -> None:
    with pytest.raises(TypeError, match=r"adapter= takes a callable or a 'package.module:"):
        opswald.Replay(_golden(), adapter=42)  # type: ignore[arg-type]


def test_a_golden_that_does_not_load_fails_and_the_batch_goes_on(tmp_path: Path) -> None:
    good = tmp_path / "good.golden.yaml"
    opswald.dump(_golden(name="good"), good)
    bad = tmp_path / "bad.golden.yaml"
    bad.write_text("name: bad\nsteps: [oops\n")
    batch = opswald.batch_replay([bad, good], adapter=registered_agent)
    assert list(batch.results) == [str(bad), "good"]
    assert batch.failed == [str(bad)] and batch.success_rate == 0.5
    [finding] = batch.results[str(bad)].verdict.findings
    assert finding.kind == "refused" and "cannot be loaded" in finding.message


def test_batch_replay_loads_each_golden_just_before_it_runs(tmp_path: Path) -> None:
    """Each golden is read when its turn comes, not all before the first runs: one that
    the first golden's agent fixes runs fixed, one it breaks or removes fails to load (in
    its place in the results), and the batch goes on."""
    first, fixed, broken, gone = (tmp_path / f"{n}.golden.yaml" for n in "abcd")
    opswald.dump(_golden(name="a"), first)
    fixed.write_text("name: b\nsteps: [oops\n")
    opswald.dump(_golden(name="c"), broken)
    opswald.dump(_golden(name="d"), gone)
    good = fixed.with_suffix(".good")
    opswald.dump(_golden(name="b"), good)
    read: list[str] = []

    def agent(input: str) -> str:
        if not read:  # the first golden's run: the others change under it
            good.replace(fixed)
            broken.write_text("name: c\nsteps: [oops\n")
            gone.unlink()
        read.append(input)
        return registered_agent(input)

    batch = opswald.batch_replay([first, fixed, broken, gone], adapter=agent)
    assert list(batch.results) == ["a", "b", str(broken), str(gone)]
    assert batch.failed == [str(broken), str(gone)]
    for name in batch.failed:
        [finding] = batch.results[name].verdict.findings
        assert finding.kind == "refused" and "cannot be loaded" in finding.message


def test_batch_replay_of_one_path(tmp_path: Path) -> None:
    path = tmp_path / "one.golden.yaml"
    opswald.dump(_golden(name="one"), path)
    for given in (str(path), path):
        batch = opswald.batch_replay(given, adapter=registered_agent)
        assert list(batch.results) == ["one"] and batch.success_rate == 1.0


def test_batch_replay_refuses_step_modifications_in_its_own_words() -> None:
    with pytest.raises(ValueError) as raised:
        opswald.batch_replay([_golden()], adapter=registered_agent, modifications={"response": "x"})
    text = str(raised.value)
    assert text.startswith("batch_replay: modifications response changes one step")
    assert "fork_at=None" not in text and "Replay(golden, fork_at=N" in text


def test_goldens_of_one_name_are_all_told_apart() -> None:
    first, second, third = (_golden(name="flow") for _ in range(3))
    first.session_id, second.session_id = "aaa", "bbb"
    batch = opswald.batch_replay([first, second, third], adapter=registered_agent)
    assert list(batch.results) == ["flow [aaa]", "flow [bbb]", "flow [3]"]
    again = opswald.batch_replay([second, second, _golden(name="solo")], adapter=registered_agent)
    assert list(again.results) == ["flow [1]", "flow [2]", "solo"]


def test_traces_refuses_a_negative_limit(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"limit must be a whole number from 0, not -1"):
        opswald.traces(limit=-1, store=tmp_path)


def test_a_pause_breakpoint_is_logged_also_on_the_last_step() -> None:
    """A pause breakpoint holds the agent before the step after the one that hit; on the
    last step there is none, and the hit was lost: the log says it in both cases."""
    replay = opswald.Replay(_golden(), adapter=registered_agent)
    replay.add_breakpoint("tool_name == 'look'", action="pause")
    result = replay.run()
    assert result is not None and result.passed and replay.paused_at is None
    assert replay.log == [
        "breakpoint hit at step 1 (tool_call): tool_name == 'look' — pausing before the next step",
        "breakpoint at step 1 did not pause: the run ended after that step",
    ]


@opswald.tool
def pick(key: str) -> str:
    return f"picked {key}"


def test_a_fork_that_leaves_the_golden_at_its_own_step_says_so() -> None:
    """The run's call at the fork's step differs from the golden's: it left the golden at
    that step, not 'before' it."""

    def versioned(input: str, modifications: dict[str, Any] | None = None) -> str:
        pick("a")
        pick("c" if modifications else "b")
        return "done"

    golden = execute(Session(name="g", input="k"), versioned, settings=RunSettings()).actual
    replay = opswald.Replay(golden, adapter=versioned, fork_at=2, modifications={"v": "2"})
    result = replay.run()
    assert result is not None
    fork = next(f for f in result.verdict.findings if f.kind == "fork")
    assert fork.message.startswith(
        "left the golden at step 2, the fork's step, with a call that does not match it: "
    )
    assert "before the fork's step" not in fork.message


def test_replay_says_what_it_takes_for_a_golden() -> None:
    """A dict (a golden's data) or a number was passed on to the file loader, which raised
    os.stat's or pathlib's TypeError."""
    with pytest.raises(TypeError, match=r"^Replay takes a golden's path or a Session, not dict: "):
        opswald.Replay(_golden().model_dump(), adapter=lambda _: None)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"^Replay takes a golden's path or a Session, not int$"):
        opswald.Replay(3, adapter=lambda _: None)  # type: ignore[arg-type]
    # a golden's text was read as a file name: a GoldenLoadError quoting all of it
    for text in ("name: a\ninput: {}\n", '{"name": "a"}'):
        with pytest.raises(TypeError, match=r"^Replay takes .*, not a golden's text: .*safe_load"):
            opswald.Replay(text, adapter=lambda _: None)


def test_a_batch_of_no_goldens_reads_as_the_json_report_reads_a_run_of_none() -> None:
    batch = opswald.batch_replay([], adapter=lambda _: None)
    assert batch.results == {} and batch.failed == []
    assert batch.success_rate == 1.0  # the JSON report's success_rate for 0 goldens
    # modifications are checked before any golden, as Replay checks them: a batch that
    # happens to be empty (a glob that matched nothing) does not hide a wrong one
    with pytest.raises(TypeError, match="modifications must be a mapping"):
        opswald.batch_replay([], adapter=lambda _: None, modifications=["a"])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="modifications: model must be text"):
        opswald.batch_replay([], adapter=lambda _: None, modifications={"model": 4})
