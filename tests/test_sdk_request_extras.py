"""What a request carries outside its body is part of the request: Anthropic `betas=`
(the `anthropic-beta` header) and the query an agent adds (`extra_query=`). Recorded, an
unchanged replay passes, a change diverges at that step naming the field (also one added
where the recorded request had none), and a hand-written golden that leaves them out still
replays. Real SDKs against the fake provider on 127.0.0.1, pytest run for real."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from conftest import sdk_setup
from opswald import dump
from sdk_projects import llm_steps, record, replay

AGENT = '''
import json
import os

import opswald


def _listed(name, default):
    return json.loads(os.environ.get(name) or default)


def anthropic_betas(input):
    """`betas=` from BETAS (a JSON list; `[]`: none), through the SDK's beta namespace."""
    import anthropic
    with anthropic.Anthropic(max_retries=0) as client:
        betas = _listed("BETAS", '["context-1m-2025-08-07"]')
        kwargs = {"betas": betas} if betas else {}
        reply = client.beta.messages.create(
            model="claude-sonnet-4-5", max_tokens=100,
            messages=[{"role": "user", "content": input["q"]}], **kwargs)
    return {"answer": "".join(b.text for b in reply.content if b.type == "text")}


def chat_query(input):
    """`extra_query=` from QUERY (a JSON object; `{}`: none)."""
    import openai
    with openai.OpenAI(max_retries=0) as client:
        query = _listed("QUERY", '{"tenant": "acme"}')
        kwargs = {"extra_query": query} if query else {}
        reply = client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": input["q"]}], **kwargs)
    return {"answer": reply.choices[0].message.content}


def run(input):
    return globals()[os.environ["MODE"]](input)
'''

GOLDEN = "goldens/agent.golden.yaml"


@pytest.fixture
def project(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    stub = "name: agent\ninput:\n  q: Weather in Rome?\n"
    sdk_setup(
        pytester, monkeypatch, module="extrasagent", agent=AGENT, golden=GOLDEN, stub=stub,
        clear=("BETAS", "QUERY"),
    )  # fmt: skip
    yield pytester


def _without(project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, mode: str, key: str,
             *, by_hand: bool) -> None:  # fmt: skip
    """Record, then take `key` out of the step's params: as a golden recorded while the
    agent sent none has it, or (`by_hand`, without `metadata.recorded_with`) as a golden
    written by hand or imported leaves it out."""
    session = record(project, monkeypatch, GOLDEN, mode, [{"content": "Sunny."}]).got
    [step] = llm_steps(session)
    params = {k: v for k, v in (step.input.params or {}).items() if k != key}
    older = step.model_copy(update={"input": step.input.model_copy(update={"params": params})})
    session.steps = [older]
    if by_hand:
        session.metadata = {k: v for k, v in session.metadata.items() if k != "recorded_with"}
    dump(session, project.path / GOLDEN)
    assert key not in (project.path / GOLDEN).read_text()


# -- Anthropic betas --------------------------------------------------------------------


def test_anthropic_betas_are_recorded_and_other_betas_diverge(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    session, fp, _ = record(project, monkeypatch, GOLDEN, "anthropic_betas", [{"content": "Hi"}])
    assert fp.requests[0].headers.get("anthropic-beta") == "context-1m-2025-08-07"
    [step] = llm_steps(session)
    assert step.input.params == {"max_tokens": 100, "betas": ["context-1m-2025-08-07"]}
    replay(project).assert_outcomes(passed=1)

    monkeypatch.setenv("BETAS", '["interleaved-thinking-2025-05-14"]')
    result = replay(project)
    result.assert_outcomes(failed=1)
    out = result.stdout.str()
    assert "step 1 of 1 · llm_call claude-sonnet-4-5: the agent sent another request" in out
    assert (
        "step 1 › input.params.betas[0]: 'context-1m-2025-08-07' → "
        "'interleaved-thinking-2025-05-14'" in out
    )


def test_dropping_the_betas_diverges(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    record(project, monkeypatch, GOLDEN, "anthropic_betas", [{"content": "Hi"}])
    monkeypatch.setenv("BETAS", "[]")
    result = replay(project)
    result.assert_outcomes(failed=1)
    assert "step 1 › input.params.betas: removed" in result.stdout.str()


def test_betas_added_where_the_recorded_request_had_none_diverge(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    _without(project, monkeypatch, "anthropic_betas", "betas", by_hand=False)
    result = replay(project)
    result.assert_outcomes(failed=1)
    assert "step 1 › input.params.betas: added" in result.stdout.str()


def test_a_hand_written_golden_without_the_betas_still_replays(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    _without(project, monkeypatch, "anthropic_betas", "betas", by_hand=True)
    replay(project).assert_outcomes(passed=1)


# -- the query an agent adds ------------------------------------------------------------


def test_an_extra_query_is_recorded_and_a_changed_one_diverges(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    session, fp, _ = record(project, monkeypatch, GOLDEN, "chat_query", [{"content": "Hi"}])
    assert fp.requests[0].path.endswith("/chat/completions?tenant=acme")
    [step] = llm_steps(session)
    assert step.input.params == {"query": {"tenant": "acme"}}
    replay(project).assert_outcomes(passed=1)

    monkeypatch.setenv("QUERY", '{"tenant": "globex"}')
    result = replay(project)
    result.assert_outcomes(failed=1)
    assert "step 1 › input.params.query.tenant: 'acme' → 'globex'" in result.stdout.str()


def test_a_query_added_where_the_recorded_request_had_none_diverges(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    _without(project, monkeypatch, "chat_query", "query", by_hand=False)
    result = replay(project)
    result.assert_outcomes(failed=1)  # the step had no params but the query
    result.stdout.fnmatch_lines(
        ["  step 1 › input.params: added", '    + {"query": {"tenant": "acme"}}']
    )


def test_a_hand_written_golden_without_the_query_still_replays(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    _without(project, monkeypatch, "chat_query", "query", by_hand=True)
    replay(project).assert_outcomes(passed=1)


def test_a_secret_in_the_query_is_not_written(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A key sent as a query parameter is redacted like any other, and still matches."""
    key = "AIza" + "Sy0123456789abcdefghijklmnopqrstu"
    monkeypatch.setenv("QUERY", f'{{"key": "{key}", "tenant": "acme"}}')
    record(project, monkeypatch, GOLDEN, "chat_query", [{"content": "Hi"}])
    text = (project.path / GOLDEN).read_text()
    assert key not in text
    assert "tenant: acme" in text
    replay(project).assert_outcomes(passed=1)
