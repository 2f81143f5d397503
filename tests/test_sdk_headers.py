"""The response headers an agent reads through the real SDKs — the request id of an
answer or an error, the server's word on retrying — are on replay what they were live."""

from __future__ import annotations

import pytest

from conftest import sdk_setup
from fakeprovider import FakeProvider

AGENT = """
import os

import anthropic
import httpx
import httpx2
import openai

ATTEMPTS = []


def count(request):
    ATTEMPTS.append(request.url.path)


def run(input):
    ATTEMPTS.clear()
    sdk, fail = os.environ["SDK"], os.environ.get("FAIL")
    hooks = {"request": [count]}
    seen = {}
    try:
        if sdk == "openai":
            with openai.OpenAI(max_retries=2, http_client=httpx.Client(event_hooks=hooks)) as c:
                raw = c.chat.completions.with_raw_response.create(
                    model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
                seen["header"] = raw.headers.get("x-request-id")
                seen["id"] = raw.parse()._request_id
        else:
            with anthropic.Anthropic(max_retries=2,
                                     http_client=httpx2.Client(event_hooks=hooks)) as c:
                message = c.messages.create(model="claude-3-5-haiku-latest", max_tokens=8,
                                            messages=[{"role": "user", "content": "hi"}])
                seen["id"] = message._request_id
    except (openai.APIStatusError, anthropic.APIStatusError) as exc:
        seen["error"] = [type(exc).__name__, exc.status_code, exc.request_id]
    seen["attempts"] = len(ATTEMPTS)
    return seen
"""

GOLDEN = "goldens/h.golden.yaml"


@pytest.mark.parametrize("sdk", ["openai", "anthropic"])
@pytest.mark.parametrize(
    "fail", [[], [500, 500, 500], [500]], ids=["answer", "retries-used-up", "no-retry"]
)
def test_request_ids_and_the_retry_word_replay_as_they_came(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, sdk: str, fail: list[int]
) -> None:
    """Request ids were None on replay (`_request_id`, `x-request-id`, an error's
    `request_id`), so a golden whose agent kept one failed its own first replay; and a
    failure that said `x-should-retry: false` was retried on replay (1 attempt live, 3
    replayed)."""
    sdk_setup(
        pytester, monkeypatch, module="hagent", agent=AGENT, golden=GOLDEN,
        stub="name: h\ninput: {q: x}\n", clear=("FAIL",),
    )  # fmt: skip
    monkeypatch.setenv("SDK", sdk)
    no_retry = len(fail) == 1
    provider = FakeProvider(
        script=[{"content": "hi"}],
        fail_first=fail,
        request_ids=True,
        should_retry=False if no_retry else None,
    )
    with provider as fp:
        monkeypatch.setenv("OPENAI_BASE_URL", fp.base_url + "/v1")
        monkeypatch.setenv("ANTHROPIC_BASE_URL", fp.base_url)
        result = pytester.runpytest("--opswald-goldens", "--opswald-mode=record")
        assert result.ret == 0, result.stdout.str()
    from opswald import load

    session = load(pytester.path / GOLDEN)
    live = session.output
    [step] = session.step_list
    assert (step.attributes or {}).get("http_headers", {}).get("x-request-id")
    # delivery, not behaviour: not in a syrupy snapshot of the session
    from opswald.snapshot import stable_session

    [stable] = stable_session(session).step_list
    assert "http_headers" not in (stable.attributes or {})
    if not fail:
        assert live["id"] == "req_fake_0001" and live["attempts"] == 1
    else:
        attempts = 1 if no_retry else 3
        assert live["attempts"] == attempts, "the SDK obeyed the server"
        assert live["error"][1:] == [500, f"req_fake_{attempts:04d}"]
    result = pytester.runpytest("--opswald-goldens", "-vv")
    result.assert_outcomes(passed=1)
