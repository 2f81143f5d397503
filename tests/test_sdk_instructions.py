"""A Responses call's `instructions` and a system message in its `input` are different
requests (the API carries input messages through `previous_response_id`, not
instructions): replay tells them apart, and goldens recorded before it did still replay.
The real openai SDK against the fake provider on 127.0.0.1, pytest run for real."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from conftest import sdk_setup
from fakeprovider import FakeProvider
from opswald import dump, load
from opswald.session import LLMCallStep, Session

AGENT = '''
"""FORM=instructions sends the rule as `instructions=`, FORM=input as a system message."""
import os

import openai


def run(input):
    with openai.OpenAI(max_retries=0) as client:  # its socket closed now, not at a later gc
        return ask(client, input)


def ask(client, input):
    if os.environ.get("FORM") == "input":
        kwargs = dict(input=[{"role": "system", "content": "Answer in French."},
                             {"role": "user", "content": input["q"]}])
    else:
        kwargs = dict(instructions="Answer in French.", input=input["q"])
    if not os.environ.get("STREAM"):
        return {"answer": client.responses.create(model="gpt-4o-mini", **kwargs).output_text}
    text = ""
    for event in client.responses.create(model="gpt-4o-mini", stream=True, **kwargs):
        if event.type == "response.output_text.delta":
            text += event.delta
    return {"answer": text}
'''

GOLDEN = "goldens/fr.golden.yaml"
MARKED = {"role": "system", "content": "Answer in French.", "type": "instructions"}
PLAIN = {"role": "system", "content": "Answer in French."}


@pytest.fixture
def project(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    stub = "name: fr\ninput:\n  q: hi\n"
    sdk_setup(
        pytester, monkeypatch, module="fragent", agent=AGENT, golden=GOLDEN, stub=stub,
        clear=("FORM", "STREAM"),
    )  # fmt: skip
    yield pytester


def _record(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, form: str) -> Session:
    monkeypatch.setenv("FORM", form)
    with FakeProvider(script=[{"content": "Bonjour."}]) as fp:
        monkeypatch.setenv("OPENAI_BASE_URL", fp.base_url + "/v1")
        result = pytester.runpytest("--opswald-goldens", "--opswald-mode=record")
        assert result.ret == 0, result.stdout.str()
    return load(pytester.path / GOLDEN)


def _replay(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, form: str) -> str:
    """Replay with the provider gone; the outcome line and output, as text."""
    monkeypatch.setenv("FORM", form)
    result = pytester.runpytest("--opswald-goldens", "-p", "no:cacheprovider")
    outcomes = result.parseoutcomes()
    return ("passed" if outcomes.get("passed") else "failed") + "\n" + result.stdout.str()


def _llm(session: Session) -> LLMCallStep:
    [step] = [s for s in session.step_list if isinstance(s, LLMCallStep)]
    return step


def _as_before(pytester: pytest.Pytester, session: Session, raw: Any = "keep") -> None:
    """Rewrite the golden as opswald wrote it before instructions were marked: the
    instructions a plain leading system message; `raw` replaces the stored response."""
    step = _llm(session)
    messages = [PLAIN if m == MARKED else m for m in step.input.messages or []]
    update: dict[str, Any] = {"input": step.input.model_copy(update={"messages": messages})}
    if raw != "keep":
        update["raw"] = raw
    session = session.model_copy(update={"steps": [step.model_copy(update=update)]})
    session.model_fields_set.add("steps")
    dump(session, pytester.path / GOLDEN)
    assert _llm(load(pytester.path / GOLDEN)).input.messages == messages


@pytest.mark.parametrize("stream", ["", "1"], ids=["json", "stream"])
def test_instructions_changed_to_an_input_system_message_fail_at_step_1(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, stream: str
) -> None:
    monkeypatch.setenv("STREAM", stream)
    session = _record(project, monkeypatch, "instructions")
    step = _llm(session)
    assert step.input.messages == [MARKED, {"role": "user", "content": "hi"}]
    assert _replay(project, monkeypatch, "instructions").startswith("passed")
    out = _replay(project, monkeypatch, "input")
    assert out.startswith("failed"), out
    assert "step 1 of 1 · llm_call" in out
    assert "step 1 › input.messages[0].type: removed\n    - 'instructions'" in out, out


def test_an_input_system_message_changed_to_instructions_fails_at_step_1(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    session = _record(project, monkeypatch, "input")
    assert _llm(session).input.messages == [PLAIN, {"role": "user", "content": "hi"}]
    assert _replay(project, monkeypatch, "input").startswith("passed")
    out = _replay(project, monkeypatch, "instructions")
    assert out.startswith("failed"), out
    assert "step 1 › input.messages[0].type: added\n    + 'instructions'" in out, out


def test_an_older_golden_recorded_with_instructions_still_replays(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Recorded before instructions were marked, by an agent that still sends them: the
    response stored with it says they were instructions (the API echoes them), so the
    golden is read that way, and the agent's change to an input message is seen."""
    session = _record(project, monkeypatch, "instructions")
    raw = _llm(session).raw
    assert isinstance(raw, dict) and raw["instructions"] == "Answer in French."
    _as_before(project, session)
    assert _replay(project, monkeypatch, "instructions").startswith("passed")
    out = _replay(project, monkeypatch, "input")
    assert "step 1 › input.messages[0].type: removed\n    - 'instructions'" in out, out


def test_an_older_golden_recorded_with_an_input_system_message_still_replays(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    session = _record(project, monkeypatch, "input")
    raw = _llm(session).raw
    assert isinstance(raw, dict) and raw["instructions"] is None
    assert _replay(project, monkeypatch, "input").startswith("passed")
    out = _replay(project, monkeypatch, "instructions")
    assert "step 1 › input.messages[0].type: added\n    + 'instructions'" in out, out


@pytest.mark.parametrize("raw", [None, {"id": "resp_1"}], ids=["no-raw", "raw-without-it"])
def test_an_older_golden_that_does_not_say_matches_either_form(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, raw: Any
) -> None:
    """Without a stored response that says (an import, a hand-written golden, a provider
    that does not echo them), an older golden's leading system message is read as before:
    instructions and an input message both match it."""
    session = _record(project, monkeypatch, "instructions")
    _as_before(project, session, raw=raw)
    assert _replay(project, monkeypatch, "instructions").startswith("passed")
    assert _replay(project, monkeypatch, "input").startswith("passed")
    # a changed text is still a change, shown as one
    monkeypatch.setenv("FORM", "instructions")
    text = (project.path / GOLDEN).read_text().replace("Answer in French.", "Answer in German.")
    (project.path / GOLDEN).write_text(text)
    out = _replay(project, monkeypatch, "instructions")
    assert "step 1 › input.messages[0].content: 'Answer in German.' → 'Answer in French.'" in out
