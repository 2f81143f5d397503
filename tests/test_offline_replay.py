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
