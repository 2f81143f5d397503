"""A provider the replay server cannot reach, or whose answer breaks off before its body
ends: the server records the attempt as one that got no answer (a provisional step a retry
replaces, as the SDK hook does) and answers the agent HTTP 502 naming the problem, so the
SDK retries and then raises; the golden replays the same way. Real openai SDK as the
client (in a subprocess agent, or in-process against the server), loopback only."""

from __future__ import annotations

import json
import socket
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from typing import Any

import openai
import pytest

from fakeprovider import FakeProvider
from opswald import load
from opswald.engine.context import Context
from opswald.serve import ReplayServer
from opswald.session import LLMCallStep

AGENT = """
import json
import sys

import openai

questions = json.load(sys.stdin)["questions"]
client = openai.OpenAI(api_key="sk-test")
reply = client.chat.completions.create(
    model="gpt-4o-mini", messages=[{"role": "user", "content": questions[0]}]
)
print(json.dumps({"answer": reply.choices[0].message.content}))
"""

GOLDEN = "goldens/dead.golden.yaml"
QUESTION = [{"role": "user", "content": "Capital of Italy?"}]


@pytest.fixture(autouse=True)
def _no_proxies(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("CI", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
        monkeypatch.delenv(var.lower(), raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")


@pytest.fixture
def refused() -> Iterator[str]:
    """A base URL on 127.0.0.1 whose port refuses every connection (bound, never
    listening, so that nothing else takes the port while the test runs)."""
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        yield f"http://127.0.0.1:{held.getsockname()[1]}/v1"


@pytest.fixture
def project(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    (pytester.path / "agent_sdk.py").write_text(AGENT)
    pytester.makeini(f"[pytest]\nopswald_adapter = subprocess:{sys.executable} agent_sdk.py\n")
    pytester.mkdir("goldens")
    (pytester.path / GOLDEN).write_text("name: dead\ninput:\n  questions: [one]\n")
    return pytester


def _run(project: pytest.Pytester, *args: str) -> pytest.RunResult:
    """A pytest process of its own: what the server's threads write on stderr is seen."""
    return project.runpytest_subprocess(
        "-p", "no:cacheprovider", "--opswald-goldens", "-s", *args, timeout=120
    )


def _no_server_traceback(result: pytest.RunResult) -> None:
    """No request handler of the replay server raised (socketserver prints its traceback
    on stderr, and drops the agent's connection)."""
    said = result.stdout.str() + result.stderr.str()
    assert "Exception occurred during processing of request" not in said, said
    assert "opswald/serve.py" not in said, said


def _unreachable_step(project: pytest.Pytester, url: str) -> LLMCallStep:
    """The golden's one step: the call that never reached `url`, with its last error."""
    session = load(project.path / GOLDEN)
    (step,) = session.step_list
    assert isinstance(step, LLMCallStep)
    assert step.error is not None
    assert f"could not reach the provider at {url}/chat/completions" in step.error.message
    assert "Connection refused" in step.error.message
    assert (step.attributes or {}).get("transport_error") is True
    assert step.duration_ms is not None
    assert session.error is not None and "502" in session.error.message
    return step


def test_an_unreachable_provider_is_recorded_once_and_replays_the_same_failure(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, refused: str
) -> None:
    """The provider's port refuses the connection: every SDK attempt gets a 502 naming the
    URL (it got a traceback from the server's thread and a dropped connection, and the
    golden three steps cancelled before they finished, which its replay then left
    unused); the golden holds one step with the last error, and replays green."""
    monkeypatch.setenv("OPENAI_BASE_URL", refused)
    recorded = _run(project, "--opswald-mode=record")
    assert recorded.ret == 0, recorded.stdout.str() + recorded.stderr.str()
    _no_server_traceback(recorded)
    recorded.stdout.fnmatch_lines(
        [
            "note: dead.golden.yaml: recorded a session that ends with SubprocessAgentError:*",
            f"*InternalServerError: Error code: 502 - opswald replay server: could not reach"
            f" the provider at {refused}/chat/completions: *Connection refused",
        ]
    )
    _unreachable_step(project, refused)
    golden = (project.path / GOLDEN).read_text()
    assert "CancelledError" not in golden
    assert "sk-test" not in golden

    replayed = _run(project)
    replayed.assert_outcomes(passed=1)
    _no_server_traceback(replayed)


def test_an_update_whose_live_part_cannot_reach_the_provider_replays_the_same_failure(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, refused: str
) -> None:
    """A golden recorded with a reachable provider, its input changed, updated while the
    provider is unreachable: the agent's crash is not blessed, and the golden stays as it
    was; recorded again so, the live call is one step with the error, and the golden
    written replays green."""
    with FakeProvider(script=[{"content": "Rome."}]) as fp:
        monkeypatch.setenv("OPENAI_BASE_URL", fp.base_url + "/v1")
        first = _run(project, "--opswald-mode=record")
        assert first.ret == 0, first.stdout.str()
    golden = project.path / GOLDEN
    golden.write_text(golden.read_text().replace("[one]", "[two]").replace("- one", "- two"))
    before = golden.read_bytes()
    monkeypatch.setenv("OPENAI_BASE_URL", refused)
    updated = _run(project, "--opswald-update")
    _no_server_traceback(updated)
    updated.assert_outcomes(failed=1)
    updated.stdout.fnmatch_lines(["*not written: an update does not bless a crash*"])
    assert golden.read_bytes() == before
    rerecorded = _run(project, "--opswald-mode=rerecord")
    _no_server_traceback(rerecorded)
    assert "1 golden recorded" in rerecorded.stdout.str(), rerecorded.stdout.str()
    step = _unreachable_step(project, refused)
    assert step.input.messages == [{"role": "user", "content": "two"}]

    _run(project).assert_outcomes(passed=1)


def _live_call(fp: FakeProvider, retries: int) -> tuple[Context, Exception | str]:
    """One chat call through a replay server on a live context that forwards it to `fp`:
    (the context, the answer's text or the SDK's exception)."""
    ctx = Context(golden=None, policy="live")
    upstreams = {"openai": fp.base_url}
    with ReplayServer(ctx, upstreams=upstreams) as server:
        client = openai.OpenAI(base_url=server.url + "/v1", api_key="sk-test", max_retries=retries)
        try:
            reply = client.chat.completions.create(model="gpt-4o-mini", messages=QUESTION)
            got: Exception | str = reply.choices[0].message.content or ""
        except openai.APIError as exc:
            got = exc
        finally:
            client.close()
    ctx.close_open()  # as the run's end does: a call begun and never ended is cancelled
    return ctx, got


def test_an_answer_cut_mid_body_is_retried_and_its_retry_takes_the_step() -> None:
    """The provider drops the connection part-way through a JSON answer: the client gets a
    502, the SDK retries, and the answer the retry gets is the call's one step (the
    attempt's ticket was left unended: the run recorded it as cancelled)."""
    with FakeProvider(script=[{"content": "Rome.", "cut_after": 20}, {"content": "Rome."}]) as fp:
        ctx, got = _live_call(fp, retries=1)
        attempts = len(fp.requests)
    assert got == "Rome."
    assert attempts == 2
    (step,) = ctx.actual_steps()
    assert isinstance(step, LLMCallStep)
    assert step.error is None and step.output is not None and step.output.content == "Rome."


def test_an_answer_cut_mid_body_is_answered_502_naming_the_provider() -> None:
    with FakeProvider(script=[{"content": "Rome.", "cut_after": 20}]) as fp:
        ctx, got = _live_call(fp, retries=0)
        url = fp.base_url
    assert isinstance(got, openai.InternalServerError), got
    assert got.status_code == 502
    (step,) = ctx.actual_steps()
    assert isinstance(step, LLMCallStep)
    assert step.error is not None and step.error.type == "IncompleteRead"
    assert f"lost the connection to the provider at {url}/v1/chat/completions" in (
        step.error.message
    )
    assert (step.attributes or {}).get("transport_error") is True
    assert step.error.message in str(got.body)


def _refused_answer(
    ctx: Context, upstreams: dict[str, str] | None = None, query: str = ""
) -> tuple[Any, str]:
    """What a replay server on `ctx` answers a chat request: the HTTPError it is, and its
    body."""
    body = json.dumps({"model": "gpt-4o-mini", "messages": QUESTION}).encode()
    with ReplayServer(ctx, upstreams=upstreams) as server:
        request = urllib.request.Request(
            server.url + "/v1/chat/completions" + query,
            data=body,
            headers={"content-type": "application/json"},
            method="POST",
        )
        direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with pytest.raises(urllib.error.HTTPError) as info:
            direct.open(request, timeout=10)
        answer = info.value.read().decode()
        info.value.close()
    return info.value, answer


def test_the_502_names_no_credentials_or_query_of_the_upstream_url(refused: str) -> None:
    """An upstream URL with a user and password, and a request with a key in its query:
    neither is in what the agent is answered or the step records."""
    ctx = Context(golden=None, policy="live")
    port = urllib.parse.urlsplit(refused).port
    upstreams = {"openai": f"http://user:hunter2-secret@127.0.0.1:{port}"}
    refusal, answer = _refused_answer(ctx, upstreams, query="?api-key=k-hunter3")
    assert refusal.code == 502
    message = json.loads(answer)["error"]["message"]
    assert f"could not reach the provider at http://127.0.0.1:{port}/v1/chat/completions:" in (
        message
    )
    assert "hunter2" not in answer and "hunter3" not in answer
    ctx.close_open()
    (step,) = ctx.actual_steps()
    assert isinstance(step, LLMCallStep)
    assert step.error is not None and step.error.message == message


ECHO_AGENT = """
import json
import os
import sys

import openai

json.load(sys.stdin)
client = openai.OpenAI(api_key=os.environ["AGENT_KEY"], max_retries=0)
try:
    client.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}]
    )
except openai.AuthenticationError as exc:
    print(json.dumps({"refused": exc.status_code, "said": str(exc.message)}))
"""


def test_a_key_of_no_known_shape_echoed_through_the_server_is_not_written(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A gateway that names the key it refused in its error body: the in-process hook
    learns the key the agent sent and hides it wherever it comes back; the replay server
    (an agent in another process) did not, and the golden held it in clear."""
    key = "gw_live_9f8e7d6c5b4a39281706"
    (project.path / "agent_sdk.py").write_text(ECHO_AGENT)
    monkeypatch.setenv("AGENT_KEY", key)
    with FakeProvider(script=[{"content": "x"}], fail_first=[401], echo_key=True) as fp:
        monkeypatch.setenv("OPENAI_BASE_URL", fp.base_url + "/v1")
        result = _run(project, "--opswald-mode=record")
        assert result.ret == 0, result.stdout.str()
    text = (project.path / GOLDEN).read_text()
    assert "Invalid API key: <redacted:header>" in text, text
    assert key not in text
    monkeypatch.delenv("OPENAI_BASE_URL")
    _run(project).assert_outcomes(passed=1)


def test_a_replayed_502_asks_for_no_back_off_and_the_live_one_does() -> None:
    """The SDK waits between attempts as an answer asks; a replay's is not the agent's
    time (as a recorded HTTP error's replay says `retry-after-ms: 1`), a live one is."""
    from opswald.session import Session

    with FakeProvider(script=[{"content": "Rome.", "cut_after": 20}]) as fp:
        live, _ = _refused_answer(Context(golden=None, policy="live"), {"openai": fp.base_url})
    with FakeProvider(script=[{"content": "Rome.", "cut_after": 20}]) as fp:
        ctx, _ = _live_call(fp, retries=0)
    assert live.code == 502
    assert live.headers.get("retry-after-ms") is None
    golden = Session(name="g", input=None, steps=ctx.actual_steps(), output=None)
    replayed, _ = _refused_answer(Context(golden=golden, policy="replay"))
    assert replayed.code == 502
    assert replayed.headers.get("retry-after-ms") == "1"
