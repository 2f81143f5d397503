"""Replay is offline: run pytest inside a network namespace without outside routes (so no
packet can leave even if the guard failed) and check the guard's own error."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest

AGENT = """
import socket
import urllib.request

import httpx


def run(input):
    failures = {}
    for name, attempt in (
        ("httpx", lambda: httpx.get("https://api.example.com/v1/data", timeout=5)),
        ("urllib", lambda: urllib.request.urlopen("http://config.example.org/x", timeout=5)),
        ("dns", lambda: socket.getaddrinfo("telemetry.example.net", 443)),
        ("udp", lambda: socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(
            b"x", ("10.1.2.3", 53))),
    ):
        try:
            attempt()
            failures[name] = "reached the network"
        except Exception as exc:
            failures[name] = f"{type(exc).__name__}: {exc}"
    return failures
"""


def test_replay_blocks_the_network_with_a_named_host(pytester: pytest.Pytester) -> None:
    unshare = shutil.which("unshare")
    assert unshare is not None, "util-linux unshare is needed for the offline test"
    pytester.makepyfile(netagent=AGENT)
    pytester.makeini("[pytest]\nopswald_adapter = netagent:run\n")
    pytester.mkdir("goldens")
    (pytester.path / "goldens" / "n.golden.yaml").write_text(
        "name: n\ninput: 1\nsteps: []\noutput: {}\nexpect:\n  output: {match: ignore}\n"
    )
    pytester.makeconftest(
        "import json\n\n"
        "def pytest_opswald_adapter(golden, config):\n"
        "    import netagent\n"
        "    def run(input):\n"
        "        out = netagent.run(input)\n"
        "        print('FAILURES=' + json.dumps(out))\n"
        "        return out\n"
        "    return run\n"
    )
    result = subprocess.run(
        [
            unshare,
            "-rn",
            sys.executable,
            "-m",
            "pytest",
            "--opswald-goldens",
            "-s",
            "-p",
            "no:cacheprovider",
        ],
        cwd=pytester.path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    out = result.stdout + result.stderr
    assert result.returncode == 0, out
    line = next(li for li in out.splitlines() if "FAILURES=" in li)
    failures = json.loads(line.split("FAILURES=", 1)[1].rsplit("}", 1)[0] + "}")
    for name, host in (
        ("httpx", "api.example.com"),
        ("urllib", "config.example.org"),
        ("dns", "telemetry.example.net"),
        ("udp", "10.1.2.3"),
    ):
        assert "opswald replay is offline" in failures[name], failures[name]
        assert host in failures[name], failures[name]


FETCH_AGENT = """
import os
import urllib.request

import opswald


@opswald.tool
def lookup(q):
    return {"q": q, "hits": 3}


def run(input):
    found = lookup(q=input["q"])
    if os.environ.get("FETCH"):  # a call of the agent's own, outside any tool
        try:
            urllib.request.urlopen("http://lookup.example.org/x", timeout=5)
        except Exception as exc:
            raise RuntimeError("the lookup service is down") from exc
    return {"hits": found["hits"]}
"""


def _in_namespace(cwd: object, *args: str) -> subprocess.CompletedProcess[str]:
    """pytest in a network namespace with no route out: no packet can leave."""
    unshare = shutil.which("unshare")
    assert unshare is not None, "util-linux unshare is needed for the offline test"
    return subprocess.run(
        [unshare, "-rn", sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_a_call_the_offline_guard_blocked_is_not_sent_to_an_update(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A call of the agent's own blocked in replay made it raise: the `fix:` line offered
    `--opswald-update` (which runs the call live and writes what it did, but no golden
    holds its answer, so the next replay blocks it again) and the hint --opswald-mode=record
    (which replays a recorded golden, blocking the call again). Both now point at a tool."""
    monkeypatch.delenv("CI", raising=False)
    pytester.makepyfile(fetchagent=FETCH_AGENT)
    pytester.makeini("[pytest]\nopswald_adapter = fetchagent:run\n")
    pytester.mkdir("goldens")
    golden = pytester.path / "goldens" / "f.golden.yaml"
    golden.write_text("name: f\ninput: {q: rome}\n")
    pytester.runpytest("--opswald-goldens", "--opswald-mode=record").assert_outcomes(passed=1)
    monkeypatch.setenv("FETCH", "1")
    result = _in_namespace(pytester.path, "--opswald-goldens")
    out = result.stdout + result.stderr
    assert result.returncode == 1, out
    assert "blocked connection to lookup.example.org:80" in out
    assert "fix: --opswald-update cannot fix this: opswald replay is offline" in out, out
    assert "accept it with --opswald-update" not in out
    assert "--opswald-mode=rerecord" in out and "@opswald.tool" in out
    assert "--opswald-mode=record," not in out
