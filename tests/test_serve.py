"""Agents in any language: the loopback replay server and the subprocess adapter, shown
with a Node.js agent that uses plain fetch."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from fakeprovider import FakeProvider
from opswald import load

NODE = shutil.which("node")

AGENT_JS = """
const fs = require("fs");
const input = JSON.parse(fs.readFileSync(0, "utf8"));
async function main() {
  const res = await fetch(`${process.env.OPENAI_BASE_URL}/chat/completions`, {
    method: "POST",
    headers: {"content-type": "application/json",
              "authorization": `Bearer ${process.env.OPENAI_API_KEY}`},
    body: JSON.stringify({model: "gpt-4o-mini",
                          messages: [{role: "user", content: input.question}]}),
  });
  if (!res.ok) {
    console.error(`HTTP ${res.status}: ${await res.text()}`);
    process.exit(2);
  }
  const data = await res.json();
  console.log(JSON.stringify({answer: data.choices[0].message.content}));
}
main();
"""

GOLDEN = "goldens/node.golden.yaml"


def _node() -> str:
    assert NODE is not None, "node is needed for the language-agnostic path (DESIGN §7)"
    return NODE


@pytest.fixture
def node_project(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> Iterator[pytest.Pytester]:
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-proj-" + "Q" * 40)
    (pytester.path / "agent.js").write_text(AGENT_JS)
    pytester.makeini(f"[pytest]\nopswald_adapter = subprocess:{_node()} agent.js\n")
    pytester.mkdir("goldens")
    (pytester.path / GOLDEN).write_text("name: node\ninput:\n  question: Capital of Italy?\n")
    yield pytester


def _record(project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    script = [
        {"content": "Rome.", "tool_calls": None, "usage": {"input_tokens": 9, "output_tokens": 2}}
    ]
    with FakeProvider(script=script) as fp:
        monkeypatch.setenv("OPENAI_BASE_URL", fp.base_url + "/v1")
        result = project.runpytest("--opswald-goldens", "--opswald-mode=record")
        assert result.ret == 0, result.stdout.str()
        assert len(fp.requests) == 1
    monkeypatch.delenv("OPENAI_BASE_URL")


def test_subprocess_node_agent_records_and_replays(
    node_project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    _record(node_project, monkeypatch)
    session = load(node_project.path / GOLDEN)
    assert [s.type for s in session.step_list] == ["llm_call"]
    assert session.output == {"answer": "Rome."}
    assert "sk-proj-" not in (node_project.path / GOLDEN).read_text()
    node_project.runpytest("--opswald-goldens").assert_outcomes(passed=1)


def test_subprocess_divergence_is_answered_400_and_named(
    node_project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    _record(node_project, monkeypatch)
    golden = node_project.path / GOLDEN
    golden.write_text(
        golden.read_text().replace("question: Capital of Italy?", "question: Capital of France?")
    )
    result = node_project.runpytest("--opswald-goldens")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*step 1 of 1 · llm_call gpt-4o-mini: the agent sent another request*",
            "*'Capital of Italy?' → 'Capital of France?'*",
        ]
    )


class Served:
    """`opswald serve` on a recorded golden, started as users start it."""

    def __init__(self, golden: Path, *options: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "opswald.cli", "serve", str(golden), *options],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        self.banner = self.proc.stdout.readline()
        assert "replaying" in self.banner, self.banner
        self.url = self.banner.rsplit(" on ", 1)[1].strip()

    def stop(self) -> tuple[int, str, str]:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        out, err = self.proc.communicate(timeout=10)
        return self.proc.returncode, out, err


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    golden = tmp_path / "node.golden.yaml"
    golden.write_text(
        "name: node\ninput: {question: Capital of Italy?}\nsteps:\n"
        "  - step: 1\n    type: llm_call\n    provider: openai\n    api: openai.chat_completions\n"
        "    model: gpt-4o-mini\n    input:\n      messages:\n"
        "        - {role: user, content: Capital of Italy?}\n"
        "    output: {content: Rome., finish_reason: stop}\n"
        "output: {answer: Rome.}\n"
    )
    server = Served(golden)
    try:
        yield server
    finally:
        server.stop()


def _run_node(url: str, question: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "OPENAI_BASE_URL": url + "/v1", "OPENAI_API_KEY": "sk-test"}
    return subprocess.run(
        [_node(), "-e", AGENT_JS],
        input=json.dumps({"question": question}),
        capture_output=True,
        text=True,
        env=env,
        timeout=30,
        check=False,
    )


def test_opswald_serve_answers_a_node_agent(served: Served) -> None:
    result = _run_node(served.url, "Capital of Italy?")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"answer": "Rome."}
    code, out, err = served.stop()
    assert code == 0, out + err
    assert "served 1 of 1 LLM calls, 0 divergence(s)" in out


def test_opswald_serve_answers_a_divergence_with_400(served: Served) -> None:
    result = _run_node(served.url, "Capital of Spain?")
    assert result.returncode == 2
    assert "HTTP 400" in result.stderr
    assert "the agent sent another request" in result.stderr
    assert "Capital of Spain?" in result.stderr
    code, out, err = served.stop()
    assert code == 1
    assert "1 divergence(s)" in out and "1 recorded call(s) unused" in out
    assert "opswald: divergence" in err and "Capital of Spain?" in err


def test_serve_refuses_non_loopback(tmp_path: Path) -> None:
    golden = tmp_path / "g.golden.yaml"
    golden.write_text("name: g\ninput: 1\nsteps: []\noutput: 1\n")
    result = subprocess.run(
        [sys.executable, "-m", "opswald.cli", "serve", str(golden), "--host", "0.0.0.0"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 4
    assert "loopback only" in result.stderr


def test_serve_on_ipv6_loopback_answers_a_client(tmp_path: Path) -> None:
    """`--host ::1` (documented) binds an IPv6 socket; the URL it prints has brackets."""
    assert socket.has_ipv6
    with socket.socket(socket.AF_INET6) as probe:
        probe.bind(("::1", 0))  # this machine has IPv6 loopback: the test must not skip
    golden = tmp_path / "g.golden.yaml"
    golden.write_text(
        "name: g\ninput: 1\nsteps:\n" + HTTP_CALL.replace("step: 2", "step: 1") + "output: 1\n"
    )
    served = Served(golden, "--host", "::1")
    try:
        assert re.fullmatch(r"http://\[::1\]:\d+", served.url), served.banner
        env = served.proc.stdout.readline() if served.proc.stdout else ""
        assert f"OPENAI_BASE_URL={served.url}/v1" in env
        assert f"ANTHROPIC_BASE_URL={served.url}" in env
        direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with direct.open(served.url + "/health", timeout=5) as reply:
            assert reply.read() == b"ok"
        status, body = _post_chat(served.url, "Capital of Italy?")
        assert status == 200 and body["choices"][0]["message"]["content"] == "Rome."
    finally:
        code, out, err = served.stop()
    assert code == 0, out + err
    assert "served 1 of 1 LLM calls, 0 divergence(s)" in out


def test_health_endpoint(served: Served) -> None:
    url = served.url
    direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with direct.open(url + "/health", timeout=5) as reply:
        assert reply.read() == b"ok"
    with pytest.raises(urllib.error.HTTPError) as info:
        direct.open(url + "/nothing", timeout=5)
    assert info.value.code == 404
    info.value.close()


def test_serve_replays_a_call_that_failed_every_attempt(tmp_path: Path) -> None:
    """The golden's one call got HTTP 500 on every attempt: each retry of it is served the
    same failure with no new step, so the SDK gives up as it did, and nothing diverged."""
    import openai

    from opswald.engine.context import Context
    from opswald.files import load
    from opswald.serve import ReplayServer

    golden = tmp_path / "fail.golden.yaml"
    golden.write_text(
        "name: fail\ninput: {question: Capital of Italy?}\nsteps:\n"
        "  - step: 1\n    type: llm_call\n    provider: openai\n    api: openai.chat_completions\n"
        "    model: gpt-4o-mini\n    input:\n      messages:\n"
        "        - {role: user, content: Capital of Italy?}\n"
        "    error: {type: HTTPStatusError, message: 'HTTP 500: overloaded'}\n"
        "    attributes: {http_status: 500}\n"
        "    raw: {error: {message: overloaded, type: server_error}}\n"
        "output: null\nerror: {type: InternalServerError, message: overloaded}\n"
    )
    ctx = Context(golden=load(golden), policy="replay")
    with ReplayServer(ctx) as server:
        client = openai.OpenAI(base_url=server.url + "/v1", api_key="unused", max_retries=2)
        with pytest.raises(openai.InternalServerError):
            client.chat.completions.create(
                model="gpt-4o-mini", messages=[{"role": "user", "content": "Capital of Italy?"}]
            )
        client.close()
    assert server.divergences == []
    assert sorted(ctx.served) == [1] and len([s for s in ctx.steps if s is not None]) == 1


PY_AGENT = """
import json
import re
import sys

import openai

question = json.load(sys.stdin)["question"]
client = openai.OpenAI(max_retries=0)
reply = client.chat.completions.create(
    model="gpt-4o-mini", messages=[{"role": "user", "content": question}], temperature=0.2,
    extra_query={"tenant": "acme"},
)
print(json.dumps({"answer": reply.choices[0].message.content}))
"""


@pytest.mark.parametrize("mode", [[], ["--opswald-mode=live"]], ids=["fork", "live"])
def test_subprocess_agent_request_modifications_reach_the_provider(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, mode: list[str]
) -> None:
    """--opswald-modify model=... temperature=...: the step records the modified request,
    and the body the replay server forwards upstream is the modified one, as the
    in-process interceptor sends it (a replay with a changed model forks at step 1)."""
    for var in ("CI", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-proj-" + "Q" * 40)
    (pytester.path / "agent.py").write_text(PY_AGENT)
    pytester.makeini(f"[pytest]\nopswald_adapter = subprocess:{sys.executable} agent.py\n")
    pytester.mkdir("goldens")
    (pytester.path / "goldens" / "py.golden.yaml").write_text(
        "name: py\ninput:\n  question: Capital of Italy?\n"
    )
    with FakeProvider(script=[{"content": "Rome."}, {"content": "Rome, Italy."}]) as fp:
        monkeypatch.setenv("OPENAI_BASE_URL", fp.base_url + "/v1")
        recorded = pytester.runpytest("--opswald-goldens", "--opswald-mode=record")
        assert recorded.ret == 0, recorded.stdout.str()
        result = pytester.runpytest(
            "--opswald-goldens",
            *mode,
            "--opswald-modify",
            "model=gpt-4o",
            "--opswald-modify",
            "temperature=0.7",
            "--opswald-save-actual=actual",
        )
        first, second = fp.requests
    assert result.ret == 1, result.stdout.str()  # the answer differs from the recorded one
    assert (first.body["model"], first.body["temperature"]) == ("gpt-4o-mini", 0.2)
    assert (second.body["model"], second.body["temperature"]) == ("gpt-4o", 0.7)
    assert second.body["messages"] == first.body["messages"]
    assert first.path.endswith("?tenant=acme") and second.path.endswith("?tenant=acme"), (
        "the query goes upstream with the request"
    )
    (step,) = load(pytester.path / "actual" / "py.actual.yaml").step_list
    assert step.model == second.body["model"]
    assert step.input.params["temperature"] == second.body["temperature"]
    assert step.input.params["query"] == {"tenant": "acme"}


def test_serve_applies_the_request_rules_of_the_pytest_config(tmp_path: Path) -> None:
    """`opswald serve` matches requests with the suite-wide rules of the config pytest
    would use for the golden (here, a date in the prompt), as a pytest run does."""
    golden = tmp_path / "goldens" / "dated.golden.yaml"
    golden.parent.mkdir()
    golden.write_text(
        "name: dated\ninput: {question: hello}\nsteps:\n"
        "  - step: 1\n    type: llm_call\n    provider: openai\n    api: openai.chat_completions\n"
        "    model: gpt-4o-mini\n    input:\n      messages:\n"
        "        - {role: user, content: Today is 2024-01-01. hello}\n"
        "    output: {content: Hi., finish_reason: stop}\n"
        "output: {answer: Hi.}\n"
    )
    (tmp_path / "pyproject.toml").write_text(
        "[tool.pytest.ini_options]\n"
        "opswald_request_normalize = ['\\d{4}-\\d\\d-\\d\\d => <date>']\n"
    )
    server = Served(golden)
    direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    body = {
        "model": "gpt-4o-mini",
        "messages": [{"role": "user", "content": "Today is 2025-06-30. hello"}],
    }
    request = urllib.request.Request(
        server.url + "/v1/chat/completions",
        data=json.dumps(body).encode(),
        headers={"content-type": "application/json"},
        method="POST",
    )
    try:
        with direct.open(request, timeout=10) as reply:
            answer = json.loads(reply.read())
    finally:
        code, out, err = server.stop()
    assert answer["choices"][0]["message"]["content"] == "Hi."
    assert code == 0, out + err
    assert "served 1 of 1 LLM calls, 0 divergence(s)" in out


PROXY_AGENT = """
import json
import os
import sys
import urllib.error
import urllib.request

json.load(sys.stdin)
proxy = os.environ.get("HTTPS_PROXY") or os.environ.get("HTTP_PROXY")
out = {"proxied": bool(proxy)}
if proxy:  # the refusing proxy answers: nothing is looked up, nothing leaves
    try:
        urllib.request.urlopen("http://example.invalid/", timeout=5)
    except urllib.error.HTTPError as exc:
        out["refused"] = exc.read().decode()
print(json.dumps(out))
"""


def test_a_subprocess_agent_reaches_the_network_when_recording_and_live_only(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Network is allowed in record and live mode (DESIGN's mode table): the agent gets
    no refusing proxy then. In replay it does, and what it refuses says what to do for an
    agent of any language."""
    for var in ("CI", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
        monkeypatch.delenv(var.lower(), raising=False)
    pytester.makepyfile(agent=PROXY_AGENT)
    pytester.makeini(f"[pytest]\nopswald_adapter = subprocess:{sys.executable} agent.py\n")
    pytester.mkdir("goldens")
    golden = pytester.path / "goldens" / "p.golden.yaml"
    golden.write_text("name: p\ninput: go\n")
    pytester.runpytest("--opswald-goldens", "--opswald-mode=record").assert_outcomes(passed=1)
    assert "proxied: false" in golden.read_text()
    live = pytester.runpytest("--opswald-goldens", "--opswald-mode=live")
    live.assert_outcomes(passed=1)
    replay = pytester.runpytest("--opswald-goldens")
    replay.assert_outcomes(failed=1)
    out = replay.stdout.str()
    assert "opswald replay is offline: this proxy refuses every request" in out
    assert "an agent run as a subprocess is answered only its model calls" in out
    assert "@opswald.tool" not in out


def _post_chat(url: str, question: str) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(
        url + "/v1/chat/completions",
        data=json.dumps(
            {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": question}]}
        ).encode(),
        headers={"content-type": "application/json", "authorization": "Bearer sk-test"},
    )
    direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with direct.open(request, timeout=10) as reply:
            return reply.status, json.loads(reply.read())
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, json.loads(exc.read())


FUNCTION_CALL = (
    "  - step: 1\n    type: llm_call\n{who}    model: planner-1\n"
    "    input:\n      messages: [{{role: user, content: plan it}}]\n"
    "    output: {{content: a plan, finish_reason: stop}}\n"
)
HTTP_CALL = (
    "  - step: 2\n    type: llm_call\n    provider: openai\n    api: openai.chat_completions\n"
    "    model: gpt-4o-mini\n    input:\n      messages:\n"
    "        - {role: user, content: Capital of Italy?}\n"
    "    output: {content: Rome., finish_reason: stop}\n"
)


@pytest.mark.parametrize(
    ("metadata", "who", "shown"),
    [
        # an `@opswald.llm(provider="sim", api="sim.chat")` function's call
        ("", "    provider: sim\n    api: sim.chat\n", "provider sim"),
        # a plain `@opswald.llm` function's call, in a golden opswald recorded
        ("metadata: {recorded_with: pytest-opswald 0.1.0}\n", "", "provider none"),
    ],
    ids=["own-provider", "recorded-without-provider"],
)
def test_serve_leaves_calls_of_llm_functions_to_in_process_replay(
    tmp_path: Path, metadata: str, who: str, shown: str
) -> None:
    """A golden whose agent called a model through an `@opswald.llm` function and then
    OpenAI: the server answers the OpenAI call (the first it is sent, matched against the
    OpenAI step, not the function's), says which call it does not serve, and the run ends
    with nothing unused."""
    golden = tmp_path / "mixed.golden.yaml"
    golden.write_text(
        f"name: mixed\n{metadata}input: {{question: Capital of Italy?}}\nsteps:\n"
        + FUNCTION_CALL.format(who=who)
        + HTTP_CALL
        + "output: {answer: Rome.}\n"
    )
    server = Served(golden)
    try:
        assert "(1 LLM calls)" in server.banner, server.banner
        assert server.proc.stdout is not None  # read here: `communicate` skips what is buffered
        env, note = server.proc.stdout.readline(), server.proc.stdout.readline()
        assert "OPENAI_BASE_URL=" in env
        status, body = _post_chat(server.url, "Capital of Italy?")
        assert status == 200, body
        assert body["choices"][0]["message"]["content"] == "Rome."
    finally:
        code, out, err = server.stop()
    assert "served 1 of 1 LLM calls, 0 divergence(s)" in out, out + err
    assert "unused" not in out
    assert code == 0, out + err
    assert "not served: 1 model call(s) made by `@opswald.llm` functions" in note
    assert f"(step 1; {shown})" in note


def test_serve_answers_a_hand_written_call_that_names_no_provider(tmp_path: Path) -> None:
    """A hand-written step naming neither provider nor API may be any client's call: it is
    served (only a golden opswald recorded says such a call was a function's)."""
    golden = tmp_path / "hand.golden.yaml"
    golden.write_text(
        "name: hand\ninput: {question: Capital of Italy?}\nsteps:\n"
        + HTTP_CALL.replace("step: 2", "step: 1")
        .replace("    provider: openai\n", "")
        .replace("    api: openai.chat_completions\n", "")
        + "output: {answer: Rome.}\n"
    )
    server = Served(golden)
    try:
        status, body = _post_chat(server.url, "Capital of Italy?")
        assert status == 200, body
        assert server.proc.stdout is not None
        env = server.proc.stdout.readline()
        assert "OPENAI_BASE_URL=" in env
    finally:
        code, out, err = server.stop()
    assert "served 1 of 1 LLM calls, 0 divergence(s)" in out, out + err
    assert "(1 LLM calls)" in server.banner, server.banner
    assert code == 0


def test_a_modification_for_a_subprocess_agent_is_said_to_reach_nothing_but_requests(
    node_project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """QA (probe26 #7): the note told a subprocess agent's user of a `modifications`
    parameter there is none to add: such an agent is given no modifications."""
    _record(node_project, monkeypatch)
    result = node_project.runpytest("--opswald-goldens", "--opswald-modify", "style=loud")
    result.assert_outcomes(passed=1)
    text = " ".join(result.stdout.str().split())
    assert (
        f"note: modification 'style' changed nothing in the goldens of a subprocess agent "
        f"({_node()} agent.js): such an agent is given no modifications" in text
    ), result.stdout.str()


@pytest.mark.parametrize(
    ("steps", "why"),
    [
        (
            FUNCTION_CALL.format(who="    provider: sim\n    api: sim.chat\n"),
            "its 1 model call was made",
        ),
        (
            "  - step: 1\n    type: tool_call\n    tool: lookup\n    input: {}\n    output: 1\n",
            "it has no model call",
        ),
    ],
    ids=["llm-functions-only", "no-model-call"],
)
def test_serve_refuses_a_golden_with_nothing_to_serve(tmp_path: Path, steps: str, why: str) -> None:
    """QA (probe26 #2): a golden whose model calls were all `@opswald.llm` functions'
    served nothing and answered each request with a misleading divergence ("every
    recorded call was already used"), and exited 0 when none came; refused as a stub is."""
    golden = tmp_path / "g.golden.yaml"
    golden.write_text("name: g\ninput: {q: 1}\nsteps:\n" + steps + "output: done\n")
    result = subprocess.run(
        [sys.executable, "-m", "opswald.cli", "serve", str(golden)],
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    assert result.returncode == 1, result.stdout + result.stderr
    assert result.stdout == ""
    assert result.stderr.startswith(
        f"error: {golden} has no call an HTTP client can make to serve: {why}"
    )
