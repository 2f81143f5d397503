"""Replay is offline: run pytest inside a network namespace without outside routes (so no
packet can leave even if the guard failed) and check the guard's own error."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

from opswald import load

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
    # opswald replay of the same golden says what pytest says
    unshare = shutil.which("unshare")
    assert unshare is not None
    cli = subprocess.run(
        [unshare, "-rn", sys.executable, "-m", "opswald.cli", "replay", str(golden)],
        cwd=pytester.path,
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "300"},
        timeout=120,
        check=False,
    )
    said = cli.stdout + cli.stderr
    assert cli.returncode == 1, said
    assert "fix: --opswald-update cannot fix this: opswald replay is offline" in said, said
    assert "--opswald-update" not in said.replace("--opswald-update cannot fix this", ""), said


POOL_AGENT = """
import httpx

import opswald

CLIENT = httpx.Client(timeout=5)  # module-level: its connections are kept alive


@opswald.tool
def hello(x):
    return "hi " + x


def run(input):
    hello("a")
    try:
        return CLIENT.get(input["url"]).text
    except httpx.HTTPError as exc:
        return f"{type(exc).__name__}: {exc}"
"""

POOL_SERVER = """
import http.server
import sys


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        with open("served.log", "a") as log:
            log.write(self.path + "\\n")
        self.send_response(200)
        self.send_header("content-length", "2")
        self.end_headers()
        self.wfile.write(b"up")

    def log_message(self, *args):
        pass


server = http.server.ThreadingHTTPServer((sys.argv[1], 8080), Handler)
print("ready", flush=True)
server.serve_forever()
"""

POOL_RUN = """
set -e
ip link set lo up
ip addr add {remote}/32 dev lo
"$0" server.py {remote} > server.out 2>&1 &
server=$!
while ! grep -q ready server.out; do sleep 0.05; done
set +e
"$0" -m pytest -p no:cacheprovider -p no:randomly test_a_service.py goldens --opswald-goldens "$@"
status=$?
kill $server
exit $status
"""


@pytest.mark.parametrize("args", [[], ["--opswald-timeout", "60"]], ids=["inline", "timeout"])
def test_a_keep_alive_connection_opened_before_the_replay_reaches_nothing(
    pytester: pytest.Pytester, args: list[str]
) -> None:
    """An ordinary test earlier in the session used a module-level client: its connection
    is kept alive, and the agent's call during the replay would reuse it, sending without
    a connect. The guard refuses it (in the timeout's child process too); the host is a
    loopback alias in a namespace of its own, so nothing could leave either way."""
    remote = "198.51.100.1"
    pytester.makepyfile(
        agent=POOL_AGENT,
        server=POOL_SERVER,
        test_a_service=(
            "import agent\n\n"
            "def test_service_up():\n"
            f"    assert agent.CLIENT.get('http://{remote}:8080/status').text == 'up'\n"
        ),
    )
    pytester.makeini("[pytest]\nopswald_adapter = agent:run\npythonpath = .\n")
    pytester.mkdir("goldens")
    (pytester.path / "goldens" / "pool.golden.yaml").write_text(
        f"name: pool\ninput: {{url: 'http://{remote}:8080/replay'}}\nsteps:\n"
        "  - {step: 1, type: tool_call, tool: hello, input: {x: a}, output: hi a}\n"
        "output: up\n"
    )
    unshare = shutil.which("unshare")
    assert unshare is not None, "util-linux unshare is needed for the offline test"
    done = subprocess.run(
        [unshare, "-rn", "sh", "-c", POOL_RUN.format(remote=remote), sys.executable, *args],
        cwd=pytester.path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    out = done.stdout + done.stderr
    assert done.returncode == 1, out
    assert "1 failed, 1 passed" in out, out
    assert f"opswald replay is offline: blocked connection to {remote}:8080" in out, out
    assert (pytester.path / "served.log").read_text() == "/status\n", "the replay reached it"


THREAD_AGENT = """
import threading

import opswald

@opswald.tool
def hello(x):
    return "hi " + x


def run(input):
    hello("a")
    stop = threading.Event()
    worker = threading.Thread(target=stop.wait, name="late-caller", daemon=True)
    worker.start()
    if input == "joins":
        stop.set()
        worker.join()
    if input == "ending":  # told to end, not joined: on its way out (a cancelled Timer)
        stop.set()
    return "ok"
"""


def test_threads_an_agent_leaves_running_are_named_in_the_summary(
    pytester: pytest.Pytester,
) -> None:
    """A thread the agent started and left running goes on after its replay (the offline
    guard stays on for it: tests/test_offline.py): the summary says which golden's agent
    left which threads (not one it told to end that is on its way out, as AnyIO leaves
    its workers)."""
    pytester.makepyfile(threadagent=THREAD_AGENT)
    pytester.makeini("[pytest]\nopswald_adapter = threadagent:run\n")
    pytester.mkdir("goldens")
    for name in ("joins", "leaves", "ending"):
        (pytester.path / "goldens" / f"{name}.golden.yaml").write_text(
            f"name: {name}\ninput: {name}\nsteps:\n"
            "  - {step: 1, type: tool_call, tool: hello, input: {x: a}, output: hi a}\n"
            "output: ok\n"
        )
    result = pytester.runpytest("--opswald-goldens", "-p", "no:randomly")
    result.assert_outcomes(passed=3)
    out = result.stdout.str()
    result.stdout.fnmatch_lines(
        [
            "*leaves.golden.yaml: its agent left 1 thread running after its replay ended "
            "(late-caller)*the offline guard stays on for them until they end*"
        ]
    )
    assert "joins.golden.yaml: its agent left" not in out
    # a thread already ending is given a moment to end, and not named
    assert "ending.golden.yaml: its agent left" not in out
    # under a timeout the agent's threads end with the child process it ran in
    timed = pytester.runpytest("--opswald-goldens", "--opswald-timeout", "60")
    timed.assert_outcomes(passed=3)
    assert "its agent left" not in timed.stdout.str()


# A subprocess agent: its model call goes to OPENAI_BASE_URL (the replay server, on
# loopback); its own requests, to a `.invalid` host, go through the proxy variables it is
# given. Those hosts resolve nowhere, and the tests run in a network namespace with only
# loopback up, so no packet can leave even if the proxy tried.
KEY = "sk-proj-" + "K" * 40
RATES_AGENT = f"""
import json
import os
import sys
import urllib.error
import urllib.request

question = json.load(sys.stdin)["question"]
call = urllib.request.Request(
    os.environ["OPENAI_BASE_URL"] + "/chat/completions",
    data=json.dumps({{"model": "gpt-4o-mini",
                     "messages": [{{"role": "user", "content": question}}]}}).encode(),
    headers={{"content-type": "application/json", "authorization": "Bearer x"}},
)
with urllib.request.urlopen(call, timeout=10) as reply:
    out = {{"answer": json.load(reply)["choices"][0]["message"]["content"]}}
fetch = os.environ.get("FETCH")
if fetch:  # the agent's own requests, to no model provider
    errors = []
    for url in ("http://rates.invalid/v1/rates?api_key={KEY}&base=EUR",
                "https://fx.invalid/v2/convert",
                "http://hooks.invalid/t/{KEY}/send"):
        try:
            urllib.request.urlopen(url, timeout=5)
        except (urllib.error.URLError, OSError) as exc:
            errors.append(f"{{type(exc).__name__}}: {{exc}}")
    if fetch == "raise":
        sys.exit("the rates service is down: " + "; ".join(errors))
    out["errors"] = errors
print(json.dumps(out))
"""


def _loopback_namespace(
    cwd: object, *args: str, env: dict[str, str]
) -> subprocess.CompletedProcess[str]:
    """A command in a network namespace whose only interface is loopback (up, for the
    replay server and the refusing proxy): nothing can leave it."""
    unshare = shutil.which("unshare")
    assert unshare is not None, "util-linux unshare is needed for the offline test"
    assert shutil.which("ip") is not None, "iproute2 ip is needed to bring loopback up"
    return subprocess.run(
        [unshare, "-rn", "sh", "-c", 'ip link set lo up && exec "$@"', "sh", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )


@pytest.fixture
def rates_project(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    """A subprocess agent whose golden was recorded without its own requests."""
    from fakeprovider import FakeProvider

    for var in ("CI", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY", "FETCH"):
        monkeypatch.delenv(var, raising=False)
        monkeypatch.delenv(var.lower(), raising=False)
    (pytester.path / "agent.py").write_text(RATES_AGENT)
    pytester.makeini(f"[pytest]\nopswald_adapter = subprocess:{sys.executable} agent.py\n")
    pytester.mkdir("goldens")
    golden = pytester.path / "goldens" / "rates.golden.yaml"
    golden.write_text("name: rates\ninput:\n  question: EUR in USD?\n")
    with FakeProvider(script=[{"content": "1.08"}]) as fp:
        monkeypatch.setenv("OPENAI_BASE_URL", fp.base_url + "/v1")
        pytester.runpytest("--opswald-goldens", "--opswald-mode=record").assert_outcomes(passed=1)
    monkeypatch.delenv("OPENAI_BASE_URL")
    return pytester


@pytest.mark.parametrize("fetch", ["raise", "return"])
def test_requests_the_proxy_refused_a_subprocess_agent_are_named_with_their_fix(
    rates_project: pytest.Pytester, fetch: str
) -> None:
    """A subprocess agent's own requests, refused in replay by the proxy its proxy
    variables point at, failed the golden with the ordinary `fix:` line (accept it with
    --opswald-update) and no word of the proxy. The failure now names each request the
    proxy refused (method, host, path; no query string, which may hold a key, and a key in
    the path redacted) and says an
    update cannot fix it, with what can; `opswald replay` says the same."""
    env = {**os.environ, "FETCH": fetch, "COLUMNS": "300"}
    golden = rates_project.path / "goldens" / "rates.golden.yaml"
    pytest_ = (sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--opswald-goldens")
    runs = {
        " ".join(extra) or "pytest": _loopback_namespace(
            rates_project.path, *pytest_, *extra, env=env
        )
        # in an xdist worker, and in the child process of --opswald-timeout, too
        for extra in (("--opswald-json", "r.json"), ("-n", "2"), ("--opswald-timeout", "60"))
    }
    runs["opswald replay"] = _loopback_namespace(
        rates_project.path, sys.executable, "-m", "opswald.cli", "replay", str(golden), env=env
    )
    for name, done in runs.items():
        out = " ".join((done.stdout + done.stderr).split())  # opswald replay wraps its lines
        assert done.returncode == 1, f"{name}: {out}"
        assert "Tunnel connection failed: 403" in out or "HTTP Error 403" in out, out
        assert (
            "the proxy refused the agent's requests GET http://rates.invalid/v1/rates, "
            "CONNECT fx.invalid:443, GET http://hooks.invalid/t/<redacted:openai-key>/send" in out
        ), f"{name}: {out}"
        assert KEY not in out and "api_key" not in out, f"{name}: {out}"
        assert out.count("fix: ") == 1, f"{name}: {out}"
        fix = out[out.index("fix: ") :]
        assert fix.startswith(
            "fix: --opswald-update cannot fix this: opswald replay is offline: the proxy refused"
        ), f"{name}: {fix}"
        assert "and every replay refuses them again" in fix, f"{name}: {fix}"
        assert "answered only its model calls" in fix, f"{name}: {fix}"
        assert "accept it" not in out and "@opswald.tool" not in out, f"{name}: {out}"
    # the JSON report's fix is the same line
    (row,) = json.loads((rates_project.path / "r.json").read_text())["goldens"]
    assert row["fix"].startswith("--opswald-update cannot fix this: opswald replay is offline: ")
    assert "GET http://rates.invalid/v1/rates, CONNECT fx.invalid:443" in row["fix"], row
    assert KEY not in json.dumps(row) and "api_key" not in json.dumps(row), row


def test_an_update_never_writes_what_the_proxy_refused(rates_project: pytest.Pytester) -> None:
    """As for a call the in-process guard blocks: an update runs with neither the guard nor
    the refusing proxy, so the agent's own requests go out as they are (here, in a
    namespace with loopback alone, their lookups fail) and the golden written holds what
    they did then, never the proxy's 403."""
    golden = rates_project.path / "goldens" / "rates.golden.yaml"
    env = {**os.environ, "FETCH": "return"}
    pytest_ = (sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--opswald-goldens")
    replay = _loopback_namespace(rates_project.path, *pytest_, env=env)
    assert replay.returncode == 1, replay.stdout + replay.stderr
    assert "the proxy refused the agent's requests" in replay.stdout, replay.stdout
    update = _loopback_namespace(rates_project.path, *pytest_, "--opswald-update", env=env)
    assert update.returncode == 0, update.stdout + update.stderr
    assert "1 updated" in update.stdout, update.stdout
    errors = load(golden).output["errors"]
    assert len(errors) == 3 and all("403" not in error for error in errors), errors
    text = golden.read_text()
    assert "403" not in text and "proxy" not in text and KEY not in text, text
