"""The README's main job: the example goldens replay through the example agent."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

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
