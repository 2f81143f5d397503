"""Shared fixtures: a small pytest project with an instrumented agent, run for real."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

# Imported here, before any in-process pytest run (`pytester.runpytest`): such a run drops
# the modules first imported inside it. httpx2 builds its table of httpcore2 errors once,
# in the first run that connects; a later run that imported httpcore2 afresh then raised
# errors the table does not know, and a refused connection escaped the openai SDK as a raw
# `httpcore2.ConnectError` instead of `APIConnectionError` (tests/test_sdk.py, run alone).
# The same holds for the legacy `httpx` and its `httpcore`, which agents use directly: a
# refused connection escaped as `httpcore.ConnectError`, not the `httpx.ConnectError` an
# agent catches (tests/test_sdk_fidelity.py, depending on which test ran first).
# PyYAML likewise: its C parser (`yaml._yaml`, which a fresh import does not load again)
# makes events of the `yaml.events` classes it first saw, so a run that imported PyYAML
# afresh read every golden as "unexpected YAML structure". (The plugin no longer imports
# PyYAML when pytest starts, so the suite's own run does not import it first.)
import httpcore  # noqa: F401
import httpcore2  # noqa: F401
import httpx  # noqa: F401
import pytest
import yaml  # noqa: F401

AGENT = '''
"""A seven-step agent whose behaviour a test changes through AGENT_VARIANT."""
import asyncio
import os
from pathlib import Path

import opswald

SIDE_EFFECTS = Path(__file__).with_name("side_effects.log")


def variant():
    return os.environ.get("AGENT_VARIANT", "")


@opswald.llm
def chat(*, model, messages, temperature=0):
    words = sum(len(str(m["content"]).split()) for m in messages)
    return {
        "content": f"answer after {len(messages)} messages",
        "tool_calls": None,
        "finish_reason": "stop",
        "usage": {"input_tokens": 10 * words, "output_tokens": 5, "total_tokens": 10 * words + 5},
        "cost": round(0.0001 * words, 6),
    }


@opswald.tool
def lookup(passenger):
    return {"passenger": passenger, "seat": "12A"}


@opswald.tool(side_effects=True)
def book(flight, passenger):
    with SIDE_EFFECTS.open("a") as f:
        f.write(f"{flight} {passenger}\\n")
    return {"flight": flight, "passenger": passenger, "ok": True}


def run(input):
    v = variant()
    who = input["who"]
    messages = [{"role": "user", "content": input["q"]}]
    chat(model="m1", messages=messages)                       # step 1
    seat = lookup(passenger=who)                              # step 2
    if os.environ.get("AGENT_MUTATES"):  # agents change what tools give them
        seat["seat"] += "!"
    opswald.state(memory={"seat": seat["seat"]})             # step 3
    text = "book it" + (" now please" if v == "prompt" else "")
    messages.append({"role": "user", "content": text})
    if v == "temperature":
        chat(model="m1", messages=messages, temperature=0.5)
    else:
        chat(model="m1", messages=messages)                   # step 4
    if v != "drop":
        book(flight="AF1", passenger="Bob" if v == "args" else who)  # step 5
    if v == "extra":
        lookup(passenger="Zed")
    if v == "early":
        return {"answer": "stopped early"}
    if v == "raise":
        raise RuntimeError("agent broke")
    if v == "raise2":
        raise RuntimeError("agent broke badly")
    if v == "raise_other":
        raise ValueError("agent broke")
    if v == "keyerror":
        return {}["Book"]
    final = chat(model="m1", messages=messages)               # step 6
    opswald.state(memory={"seat": seat["seat"], "booked": True})  # step 7
    answer = final["content"] + (" (v2)" if v == "output" else "")
    if v == "case":
        answer = answer.upper().replace(" ", "  ")
    if v == "reworded":
        answer = answer.replace("answer", "reply")
    if v == "extra_key":
        return {"answer": answer, "who": who, "extra": 1}
    return {"answer": answer, "who": who}
'''

CONFTEST = """
import agent


def pytest_opswald_adapter(golden, config):
    return agent.run
"""

STUB = """\
name: book_flight
tags: [critical]
input:
  q: Book AF1 for me
  who: Alice
"""


# Plugins installed here for the suite's own process, which no project a test runs uses:
# langsmith's (it imports its whole client at startup), hypothesis' and pytest-benchmark's
# cost a started pytest about 1.9 s of CPU of its 2.6 s, and the suite starts hundreds (each
# xdist worker of a `-n 2` run is one).
PLUGINS_OFF = "-p no:langsmith_plugin -p no:hypothesispytest -p no:benchmark"
NESTED_ADDOPTS = f"{PLUGINS_OFF} -p no:rerunfailures -p no:anyio"


@pytest.fixture(autouse=True)
def _outside_ci(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test starts as if run on a developer's machine, also when the suite runs on CI
    (which sets `CI`, and goldens are then only written with --opswald-force). A test of
    the CI guard sets `CI` itself.

    The pytest runs a test starts (in process, in a subprocess, as xdist workers) leave
    out the third-party plugins installed here for the suite's own needs (`NESTED_ADDOPTS`).
    pytest-rerunfailures, installed beside xdist, starts a server thread and a listening
    socket in every run it is loaded in (even without --reruns), which an in-process run
    leaves behind, hundreds per worker; and the others only slow every started Python down
    (see `PLUGINS_OFF`). Set after `pytester` is made (it clears PYTEST_ADDOPTS); the tests
    that use rerunfailures or anyio set `PLUGINS_OFF` instead."""
    monkeypatch.delenv("CI", raising=False)
    if "pytester" in request.fixturenames:
        request.getfixturevalue("pytester")
    monkeypatch.setenv("PYTEST_ADDOPTS", NESTED_ADDOPTS)


@pytest.fixture
def project(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    """A project with agent.py, a conftest wiring it, and goldens/flight.golden.yaml (a stub)."""
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.delenv("AGENT_VARIANT", raising=False)
    monkeypatch.delenv("AGENT_MUTATES", raising=False)
    pytester.makepyfile(agent=AGENT, conftest=CONFTEST)
    goldens = pytester.mkdir("goldens")
    (goldens / "flight.golden.yaml").write_text(STUB)
    return pytester


def record(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    """Record every stub of the project and check it worked."""
    result = pytester.runpytest("--opswald-goldens", "--opswald-mode=record", *args)
    assert result.ret == 0, result.stdout.str()
    return result


def agent_project(pytester: pytest.Pytester, agent: str, **goldens: str) -> Path:
    """`agent.py` as the project's adapter (`opswald_adapter = agent:run`), and a golden
    `goldens/NAME.golden.yaml` of each text given; returns the goldens folder."""
    pytester.makepyfile(agent=agent)
    pytester.makeini("[pytest]\nopswald_adapter = agent:run\n")
    folder = pytester.mkdir("goldens")
    for name, text in goldens.items():
        (folder / f"{name}.golden.yaml").write_text(text)
    return folder


def write(path: Path, text: str) -> Path:
    path.write_text(textwrap.dedent(text))
    return path


def sdk_setup(
    pytester: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    *,
    module: str,
    agent: str,
    golden: str,
    stub: str,
    clear: tuple[str, ...] = (),
) -> None:
    """A project whose agent uses the real SDKs: fake keys, no proxies, loopback exempt,
    the agent as `module` (the adapter), and one stub golden."""
    for var in ("CI", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", *clear):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-proj-" + "A1b2C3d4" * 5)
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-api03-" + "Z9y8X7w6" * 5)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    pytester.makepyfile(**{module: agent}, conftest=f"import {module}\n")
    pytester.makeini(f"[pytest]\nopswald_adapter = {module}:run\n")
    pytester.mkdir("goldens")
    (pytester.path / golden).write_text(stub)


def opswald_cli(*argv: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """The `opswald` command in a subprocess (`python -m opswald.cli ARGV`)."""
    return subprocess.run(
        [sys.executable, "-m", "opswald.cli", *argv],
        cwd=cwd,
        capture_output=True,
        encoding="utf-8",
        timeout=60,
        check=False,
    )
