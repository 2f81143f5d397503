"""The README's main job: the example goldens replay through the example agent."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]


def test_example_goldens_replay_offline(tmp_path: Path) -> None:
    work = tmp_path / "repo"
    for part in ("examples", "goldens"):
        shutil.copytree(ROOT / part, work / part, ignore=shutil.ignore_patterns("*.log"))
    shutil.copy(ROOT / "conftest.py", work / "conftest.py")
    before = {p.name: p.read_bytes() for p in (work / "goldens").iterdir()}
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "--opswald-goldens",
            "goldens/",
            "-p",
            "no:cacheprovider",
            "-v",
            "--strict-markers",
        ],
        cwd=work,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    for name in (
        "book_cheapest_flight",
        "refund_unknown_order",
        "weather_three_cities",
        "refund_flow",
        "change_booking_then_weather",
        "card_declined",
    ):
        assert f"::{name} PASSED" in result.stdout
    assert "goldens: 6 passed, 0 failed" in result.stdout
    assert not (work / "examples" / "bookings.log").exists(), "replay ran a side-effect tool"
    assert {p.name: p.read_bytes() for p in (work / "goldens").iterdir()} == before


def test_a_changed_example_agent_fails_at_the_changed_step(tmp_path: Path) -> None:
    work = tmp_path / "repo"
    shutil.copytree(ROOT / "examples", work / "examples", ignore=shutil.ignore_patterns("*.log"))
    shutil.copytree(ROOT / "goldens", work / "goldens")
    shutil.copy(ROOT / "conftest.py", work / "conftest.py")
    agent = work / "examples" / "travel_agent.py"
    # a regression in agent code: passenger names are now upper-cased before booking
    source = agent.read_text()
    old = 'return SYNC_TOOLS[call["name"]](**call["arguments"])'
    assert old in source
    agent.write_text(
        source.replace(
            old,
            'args = {k: v.upper() if k == "passenger" else v\n'
            '                for k, v in call["arguments"].items()}\n'
            '        return SYNC_TOOLS[call["name"]](**args)',
        )
    )
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "--opswald-goldens",
            "goldens/flight_booking.golden.yaml",
            "-p",
            "no:cacheprovider",
        ],
        cwd=work,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 1, result.stdout
    assert "step 5 of 7 · tool_call book_flight: called book_flight with other arguments" in (
        result.stdout
    )
    assert "step 5 › input.passenger: 'Alice' → 'ALICE'" in result.stdout


@pytest.mark.parametrize("name", ["flight_booking.golden.yaml", "conversation.golden.yaml"])
def test_example_goldens_are_canonical(name: str) -> None:
    from opswald import files

    path = ROOT / "goldens" / name
    assert files.dumps(files.load(path)) == path.read_text()


def test_example_model_comparison_needs_no_agent_change(tmp_path: Path) -> None:
    work = tmp_path / "repo"
    for part in ("examples", "goldens"):
        shutil.copytree(ROOT / part, work / part, ignore=shutil.ignore_patterns("*.log"))
    shutil.copy(ROOT / "conftest.py", work / "conftest.py")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "--opswald-goldens",
            "goldens/weather.golden.yaml",
            "-p",
            "no:cacheprovider",
            "--opswald-variant",
            "small:model=sim-small",
            "--opswald-variant",
            "large:model=sim-large",
        ],
        cwd=work,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    out = result.stdout
    assert "weather_three_cities[small] PASSED" in out or "1 failed, 1 passed" in out, out
    assert "Certainly. Weather: Paris 14°C cloudy" in out, "sim-large answered in the fork"
    assert "small           1/1" in out and "large           0/1" in out


def _example_project(pytester: pytest.Pytester) -> Path:
    """A copy of the repo's example agent and goldens in pytester's folder."""
    for part in ("examples", "goldens"):
        shutil.copytree(ROOT / part, pytester.path / part, ignore=shutil.ignore_patterns("*.log"))
    shutil.copy(ROOT / "conftest.py", pytester.path / "conftest.py")
    return pytester.path


def _plain(step: dict[str, Any]) -> dict[str, Any]:
    """A step without its number (served calls of a burst are numbered as they came)."""
    return {key: value for key, value in step.items() if key != "step"}


def test_the_readmes_fork_at_step_4_with_another_model_forks_each_example_at_step_4(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`pytest --opswald-goldens --opswald-fork-at=4 --opswald-modify model=sim-large`, as
    the README has it, on the example goldens: each golden with a call at or after step 4
    forks there, after its first three steps as recorded (the example agent left the model
    to opswald: it asked for sim-large from its first call, and every fork left the golden
    at step 1 or 2), and the other model answers from step 4 on; the two goldens that
    cannot fork at step 4 (two steps; a last snapshot at step 4) are refused, saying why."""
    monkeypatch.delenv("CI", raising=False)
    work = _example_project(pytester)
    command = ["--opswald-goldens", "--opswald-fork-at=4", "--opswald-modify", "model=sim-large"]
    result = pytester.runpytest_subprocess(*command)
    out = result.stdout.str()
    result.assert_outcomes(failed=6)  # sim-large answers otherwise; side-effect tools stop
    assert "never reached" not in out and "left the golden" not in out, out
    assert out.count("forked at step 4: the golden went on with") == 4, out
    result.stdout.fnmatch_lines_random(
        [
            "card_declined.golden.json: --opswald-fork-at=4: the golden has 2 step(s): "
            "there is no step 4 to fork at",
            "order_not_found.golden.yaml: --opswald-fork-at=4: model changes the model calls "
            "from step 4 on, and the golden has no model call from its step 4 (state) on: "
            "fork at step 3 or before*",
        ]
    )
    pytester.runpytest_subprocess(*command, "--opswald-save-actual", "actual")
    answered_later = 0
    for name in ("conversation", "flight_booking", "refund", "weather"):
        golden = yaml.safe_load((work / "goldens" / f"{name}.golden.yaml").read_text())
        (saved,) = (work / "actual").glob(f"{golden['name']}.actual.yaml")
        actual = yaml.safe_load(saved.read_text())
        assert actual["metadata"]["fork"] == {"step": 4}, name
        recorded = [_plain(s) for s in golden["steps"] if s["step"] < 4]
        steps = [_plain(s) for s in actual["steps"]]
        assert all(step in steps for step in recorded), f"{name}: steps 1-3 as recorded"
        later = [s for s in steps if s["type"] == "llm_call" and s not in recorded]
        assert {s["model"] for s in later} <= {"sim-large"}, name
        answered_later += bool(later)
    assert answered_later == 3, "refund's fork stopped at its side-effect tool, at step 4"


def test_the_readmes_fork_from_with_another_model_keeps_the_steps_before_it() -> None:
    """`replay.fork_from(step=3, modifications={"model": ...})` with the example agent:
    steps 1-2 as recorded, the other model from step 3 on (the example agent asked for
    the other model itself, from step 1)."""
    import opswald
    from examples import travel_agent

    golden = opswald.load(ROOT / "goldens" / "refund.golden.yaml")
    replay = opswald.Replay(golden, adapter=travel_agent.run)
    result = replay.fork_from(step=3, modifications={"model": "sim-large"}).run()
    assert result is not None
    assert result.actual.step_list[:2] == golden.step_list[:2]
    assert result.fork_step == 3
    assert result.actual.step_list[2].model == "sim-large"  # type: ignore[union-attr]
    assert result.actual.metadata["fork"] == {"step": 3}
    assert not [f for f in result.verdict.failures if f.kind == "fork_not_reached"]


def test_a_golden_written_under_a_variant_says_so_when_replayed_without_it(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Written with `--opswald-update --opswald-variant large:model=sim-large`, as the
    README suggests after comparing variants, the golden holds sim-large's calls and
    `metadata.modifications: {model: sim-large}` and `metadata.variant: large`. A plain
    replay fails at step 1 and says the golden was recorded under that variant's
    modification, which explains the difference at the model, and offers the update, which
    would write it back without the modification (and says so). It offers no
    `--opswald-modify model=sim-large`: that runs a fork, which is judged on expectations
    and would pass over any other change of the agent."""
    monkeypatch.delenv("CI", raising=False)
    work = _example_project(pytester)
    golden = "goldens/order_not_found.golden.yaml"
    variant = ["--opswald-variant", "large:model=sim-large"]
    result = pytester.runpytest_subprocess(
        "--opswald-goldens", golden, "--opswald-update", *variant
    )
    result.stdout.fnmatch_lines(["*1 updated*"])
    written = yaml.safe_load((work / golden).read_text())
    assert written["metadata"]["modifications"] == {"model": "sim-large"}
    assert written["metadata"]["variant"] == "large"
    result = pytester.runpytest_subprocess("--opswald-goldens", golden)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "step 1 of 4 · llm_call sim-large: the agent sent another request",
            "fix: the golden was recorded under the variant large: model=sim-large "
            "(metadata.variant, metadata.modifications), which this run does not apply: the "
            "difference* at step 1 › model* that; if the new behaviour is intended, accept "
            "it with --opswald-update (written without them)",
        ]
    )
    # an update without the modification writes the golden without it, metadata included
    result = pytester.runpytest_subprocess("--opswald-goldens", golden, "--opswald-update")
    result.stdout.fnmatch_lines(["*1 updated*"])
    rewritten = yaml.safe_load((work / golden).read_text())
    assert "modifications" not in rewritten["metadata"]
    assert "variant" not in rewritten["metadata"]
    assert {s.get("model") for s in rewritten["steps"] if s["type"] == "llm_call"} == {"sim-small"}
    pytester.runpytest_subprocess("--opswald-goldens", golden).assert_outcomes(passed=1)
