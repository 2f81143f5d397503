"""Updates that are killed or raced: every golden ends as the old or the new version, valid,
and nothing left behind is collected as a golden."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import opswald
from conftest import record

COUNT = 200


def _many(project: pytest.Pytester, count: int) -> dict[Path, bytes]:
    """`count` recorded goldens (copies of the project's one), by path with their bytes."""
    record(project)
    goldens = project.path / "goldens"
    source = goldens / "flight.golden.yaml"
    text = source.read_text()
    source.unlink()
    originals = {}
    for i in range(count):
        path = goldens / f"g{i:03}.golden.yaml"
        path.write_text(text.replace("name: book_flight", f"name: golden_{i:03}", 1))
        originals[path] = path.read_bytes()
    return originals


def _pytest(project: pytest.Pytester, *args: str, errors: bool = False) -> subprocess.Popen[bytes]:
    env = {**os.environ, "AGENT_VARIANT": "output", "PYTHONPATH": str(project.path)}
    env.pop("CI", None)
    return subprocess.Popen(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--opswald-goldens", *args],
        cwd=project.path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE if errors else subprocess.DEVNULL,
        start_new_session=True,  # its own process group: the workers die with it
    )


def _check(originals: dict[Path, bytes]) -> int:
    """Every golden is the original or a valid updated version; returns how many updated."""
    updated = 0
    for path, before in originals.items():
        now = path.read_bytes()
        if now == before:
            continue
        session = opswald.load(path)  # valid, or this raises with the file named
        assert session.output["answer"].endswith(" (v2)"), path
        assert session.name == path.name.split(".")[0].replace("g", "golden_", 1)
        updated += 1
    return updated


def _changed(originals: dict[Path, bytes]) -> int:
    return sum(1 for path, before in originals.items() if path.read_bytes() != before)


def _collected(project: pytest.Pytester) -> int:
    result = project.runpytest_subprocess("--opswald-goldens", "--collect-only", "-q")
    return sum(1 for line in result.outlines if ".golden.yaml::" in line)


def test_sigkill_during_update_leaves_old_or_new_goldens(project: pytest.Pytester) -> None:
    originals = _many(project, COUNT)
    rng = random.Random(20261127)
    seen: list[int] = []
    for _ in range(4):
        before = seen[-1] if seen else 0
        proc = _pytest(project, "--opswald-update", "-n", "2")
        deadline = time.monotonic() + 120
        # wait until this run is writing, then kill it at a random moment of the writing
        while proc.poll() is None and _changed(originals) <= before:
            assert time.monotonic() < deadline, "the update never started writing"
            time.sleep(0.005)
        time.sleep(rng.uniform(0.0, 0.15))
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=60)
        seen.append(_check(originals))
    print("updated after each kill:", seen)
    assert any(0 < n < COUNT for n in seen), "at least one kill landed mid-update"
    assert seen == sorted(seen), "an update never goes back to an older version"
    assert _collected(project) == COUNT, "no leftover temp file is collected as a golden"
    strays = [p.name for p in (project.path / "goldens").iterdir() if p not in originals]
    assert all(name.startswith(".") and name.endswith(".opswald-tmp") for name in strays), strays
    # a final, uninterrupted run completes the update and removes stale temp files
    stale = time.time() - 120
    for name in strays:
        os.utime(project.path / "goldens" / name, (stale, stale))
    finish = _pytest(project, "--opswald-update", "-n", "2", errors=True)
    _, errors = finish.communicate(timeout=300)
    assert finish.returncode == 0, errors.decode()
    assert _check(originals) == COUNT
    assert sorted((project.path / "goldens").iterdir()) == sorted(originals)


def test_two_concurrent_updates_end_with_valid_goldens(project: pytest.Pytester) -> None:
    originals = _many(project, 40)
    first = _pytest(project, "--opswald-update")
    second = _pytest(project, "--opswald-update")
    codes = [first.wait(timeout=300), second.wait(timeout=300)]
    assert all(code in (0, 1) for code in codes), codes
    assert _check(originals) == 40, "every golden ends updated and valid"
    assert _collected(project) == 40
