"""Credentials a tool returns (or the model puts in a tool call) and the agent sends on —
as JSON text, as a dict in an f-string, as tool arguments — through the real openai and
anthropic SDKs: never in the golden, and the golden passes its own replay."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from conftest import sdk_setup
from fakeprovider import FakeProvider

KEY = "sk-proj-" + "Qw3rTy6uIo9pAs2dFg5h" * 2
CREDS = {
    "api_key": KEY,
    "password": "hunter2-xyz",
    "db_password": "pw-db-value-1",
    "GITHUB_TOKEN": "gh-plain-token-value",
    "pin_password": 918273,
    "client_secret": ["cs-part-one", "cs-part-two"],
    "refresh_token": None,
    "user": "ada",
}
SESSION = "sess-plain-value-7"
SECRETS = (
    KEY,
    "hunter2-xyz",
    "pw-db-value-1",
    "gh-plain-token-value",
    "918273",
    "cs-part-",
    SESSION,
)

AGENT = f"""
import json
import os

import opswald

CREDS = {CREDS!r}


@opswald.tool
def settings():
    return dict(CREDS)


@opswald.tool
def login(**creds):
    return {{"ok": True, "user": creds.get("user"), "session_token": {SESSION!r},
            "api_key": {KEY!r}}}


TOOL = {{"name": "login", "description": "log in",
        "parameters": {{"type": "object", "properties": {{}}}}}}


def prompt(shape):
    if shape == "json":
        return "Settings: " + json.dumps(settings())
    if shape == "fstring":
        s = settings()
        return f"Use these settings: {{s}}"
    if shape == "bare":  # the values alone, without their names
        s = settings()
        return (f"key {{s['api_key']}}, password {{s['password']}}, "
                f"db {{s['db_password']}}, token {{s['GITHUB_TOKEN']}}")
    return "log me in"


def openai_chat(shape):
    import openai
    with openai.OpenAI(max_retries=0) as client:
        messages = [{{"role": "user", "content": prompt(shape)}}]
        for _ in range(3):
            reply = client.chat.completions.create(
                model="gpt-4o-mini", messages=messages,
                tools=[{{"type": "function", "function": TOOL}}])
            msg = reply.choices[0].message
            if not msg.tool_calls:
                return {{"answer": msg.content}}
            messages.append({{"role": "assistant", "content": msg.content, "tool_calls": [
                {{"id": tc.id, "type": "function",
                  "function": {{"name": tc.function.name, "arguments": tc.function.arguments}}}}
                for tc in msg.tool_calls]}})
            for tc in msg.tool_calls:
                out = login(**json.loads(tc.function.arguments))
                messages.append({{"role": "tool", "tool_call_id": tc.id,
                                 "content": json.dumps(out)}})
    raise RuntimeError("too many turns")


def anthropic_messages(shape):
    import anthropic
    with anthropic.Anthropic(max_retries=0) as client:
        messages = [{{"role": "user", "content": prompt(shape)}}]
        tools = [{{"name": TOOL["name"], "description": TOOL["description"],
                  "input_schema": TOOL["parameters"]}}]
        for _ in range(3):
            reply = client.messages.create(model="claude-3-5-haiku-latest", max_tokens=64,
                                           messages=messages, tools=tools)
            uses = [b for b in reply.content if b.type == "tool_use"]
            if not uses:
                return {{"answer": "".join(b.text for b in reply.content if b.type == "text")}}
            messages.append({{"role": "assistant",
                             "content": [b.model_dump() for b in reply.content]}})
            messages.append({{"role": "user", "content": [
                {{"type": "tool_result", "tool_use_id": u.id,
                  "content": json.dumps(login(**u.input))}} for u in uses]}})
    raise RuntimeError("too many turns")


def run(input):
    sdk = {{"openai": openai_chat, "anthropic": anthropic_messages}}[os.environ["SDK"]]
    return sdk(os.environ["SHAPE"])
"""

GOLDEN = "goldens/leak.golden.yaml"


@pytest.fixture
def project(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> Iterator[pytest.Pytester]:
    sdk_setup(
        pytester, monkeypatch, module="keyagent", agent=AGENT, golden=GOLDEN,
        stub="name: leak\ninput: {q: x}\n",
    )  # fmt: skip
    yield pytester


@pytest.mark.parametrize("sdk", ["openai", "anthropic"])
@pytest.mark.parametrize("shape", ["json", "fstring", "args", "bare"])
def test_credentials_sent_on_are_redacted_alike_and_replay_passes(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, sdk: str, shape: str
) -> None:
    monkeypatch.setenv("SDK", sdk)
    monkeypatch.setenv("SHAPE", shape)
    if shape == "args":
        call = {"name": "login", "arguments": CREDS}
        script = [{"content": None, "tool_calls": [call]}, {"content": "logged in"}]
    else:
        script = [{"content": "noted"}]
    with FakeProvider(script=script) as fp:
        monkeypatch.setenv("OPENAI_BASE_URL", fp.base_url + "/v1")
        monkeypatch.setenv("ANTHROPIC_BASE_URL", fp.base_url)
        result = project.runpytest("--opswald-goldens", "--opswald-mode=record")
        assert result.ret == 0, result.stdout.str()
    sent = "".join(str(r.body) for r in fp.requests)
    assert KEY in sent and "hunter2-xyz" in sent, "the agent really sent the credentials"
    text = (project.path / GOLDEN).read_text()
    for secret in SECRETS:
        assert secret not in text, f"{secret!r} leaked into the golden"
    assert "<redacted:header>" in text and "<redacted:credential>" in text
    # the provider is stopped: replay is offline, and the golden matches its own run
    result = project.runpytest("--opswald-goldens", "-vv")
    assert result.ret == 0, result.stdout.str()
    result.assert_outcomes(passed=1)
    if shape == "json":
        # written before the key's name won in text, the prompt held the key's pattern
        # label: matched again, it is redacted by the name as the agent's request is
        old = text.replace('"api_key": "<redacted:header>"', '"api_key": "<redacted:openai-key>"')
        assert old.count("<redacted:openai-key>") == 1
        (project.path / GOLDEN).write_text(old)
        result = project.runpytest("--opswald-goldens", "-vv")
        assert result.ret == 0, result.stdout.str()
    if shape == "bare":
        # values a tool returned under a credential's name, sent on alone: hidden by that
        # name's placeholder (none of them but the key has a shape a rule knows)
        assert "key <redacted:header>, password <redacted:credential>" in text
        assert "db <redacted:credential>, token <redacted:credential>" in text
        # a golden written before, with the key's pattern label in the prompt, matches too
        old = text.replace("key <redacted:header>", "key <redacted:openai-key>")
        assert old != text
        (project.path / GOLDEN).write_text(old)
        result = project.runpytest("--opswald-goldens", "-vv")
        assert result.ret == 0, result.stdout.str()


ECHO_AGENT = """
import os


def run(input):
    import anthropic
    import openai

    key = os.environ["AGENT_KEY"]
    try:
        if os.environ["SDK"] == "openai":
            with openai.OpenAI(api_key=key, max_retries=0) as client:
                client.chat.completions.create(
                    model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
        else:
            with anthropic.Anthropic(api_key=key, max_retries=0) as client:
                client.messages.create(model="claude-3-5-haiku-latest", max_tokens=8,
                                       messages=[{"role": "user", "content": "hi"}])
    except (openai.AuthenticationError, anthropic.AuthenticationError) as exc:
        return {"refused": exc.status_code, "said": str(exc.message)}
"""


@pytest.mark.parametrize("sdk", ["openai", "anthropic"])
@pytest.mark.parametrize(
    "key", ["gw_live_9f8e7d6c5b4a39281706", "0123456789abcdef0123456789abcdef"]
)
def test_a_key_of_no_known_shape_echoed_by_the_provider_is_not_written(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, sdk: str, key: str
) -> None:
    """A provider or gateway that names the key it refused (`Invalid API key: ...`) in its
    error body: a key of no shape a rule knows (a gateway's, an Azure key) was written in
    clear; the key the agent sent in its request headers is hidden wherever it comes back."""
    sdk_setup(
        pytester, monkeypatch, module="echoagent", agent=ECHO_AGENT, golden=GOLDEN,
        stub="name: leak\ninput: {q: x}\n",
    )  # fmt: skip
    monkeypatch.setenv("SDK", sdk)
    monkeypatch.setenv("AGENT_KEY", key)
    with FakeProvider(script=[{"content": "x"}], fail_first=[401], echo_key=True) as fp:
        monkeypatch.setenv("OPENAI_BASE_URL", fp.base_url + "/v1")
        monkeypatch.setenv("ANTHROPIC_BASE_URL", fp.base_url)
        result = pytester.runpytest("--opswald-goldens", "--opswald-mode=record")
        assert result.ret == 0, result.stdout.str()
    text = (pytester.path / GOLDEN).read_text()
    assert "Invalid API key: <redacted:header>" in text
    assert key not in text
    result = pytester.runpytest("--opswald-goldens")
    result.assert_outcomes(passed=1)


def _image_b64(size: int) -> str:
    """Valid base64 (its length a multiple of 4) of `size` characters that happens to hold
    a Google key's and an AWS key's shapes, as ~4% of real 1 MB images do."""
    import random

    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    rng = random.Random(7)
    body = "".join(rng.choice(alphabet) for _ in range(size))
    google = "AIza" + "SyDxK3Lq9Wm2Xp7Rt5Yv8Bn4Hj6Gd1Fs0Ac"  # 39 characters
    aws = "AKIA" + "IOSFODNN7EXAMPLE"  # 20
    return body[:400] + google + "+" + aws + body[460 : size - size % 4]


IMAGE = _image_b64(8000)
IMAGE_KEY = "sk-proj-" + "Im4gEk3yPr0mPt9Xq2Wz" * 2

IMAGE_AGENT = f"""
import os

IMAGE = {IMAGE!r}
PROMPT = "describe it; my key is {IMAGE_KEY}"


def openai_chat():
    import openai
    with openai.OpenAI(max_retries=0) as client:
        reply = client.chat.completions.create(model="gpt-4o-mini", messages=[
            {{"role": "user", "content": [
                {{"type": "text", "text": PROMPT}},
                {{"type": "image_url",
                  "image_url": {{"url": "data:image/jpeg;base64," + IMAGE}}}}]}}])
        return {{"answer": reply.choices[0].message.content}}


def anthropic_messages():
    import anthropic
    with anthropic.Anthropic(max_retries=0) as client:
        reply = client.messages.create(model="claude-3-5-haiku-latest", max_tokens=64,
            messages=[{{"role": "user", "content": [
                {{"type": "text", "text": PROMPT}},
                {{"type": "image", "source": {{"type": "base64", "media_type": "image/jpeg",
                                             "data": IMAGE}}}}]}}])
        return {{"answer": reply.content[0].text}}


def run(input):
    return {{"openai": openai_chat, "anthropic": anthropic_messages}}[os.environ["SDK"]]()
"""


@pytest.mark.parametrize("fmt", ["yaml", "json"])
@pytest.mark.parametrize("sdk", ["openai", "anthropic"])
def test_an_image_sent_as_base64_is_stored_whole_and_the_key_beside_it_is_not(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, sdk: str, fmt: str
) -> None:
    """Base64 data (a data: URL's payload, an Anthropic image block's `data`) is data: the
    key shapes that turn up in it by chance are no secrets, so the golden holds the image
    as sent, while a key in the prompt beside it is redacted."""
    import base64
    import json

    import yaml

    golden = f"goldens/image.golden.{fmt}"
    sdk_setup(
        pytester, monkeypatch, module="imageagent", agent=IMAGE_AGENT, golden=golden,
        stub="name: image\ninput: {}\n" if fmt == "yaml" else '{"name": "image", "input": {}}',
    )  # fmt: skip
    monkeypatch.setenv("SDK", sdk)
    with FakeProvider(script=[{"content": "a cat"}]) as fp:
        monkeypatch.setenv("OPENAI_BASE_URL", fp.base_url + "/v1")
        monkeypatch.setenv("ANTHROPIC_BASE_URL", fp.base_url)
        result = pytester.runpytest("--opswald-goldens", "--opswald-mode=record")
        assert result.ret == 0, result.stdout.str()
    assert IMAGE in str(fp.requests[0].body), "the agent really sent the image"
    text = (pytester.path / golden).read_text()
    assert IMAGE_KEY not in text and "<redacted:openai-key>" in text
    assert "<redacted:google-key>" not in text and "<redacted:aws-key>" not in text
    data = json.loads(text) if fmt == "json" else yaml.safe_load(text)
    (content,) = [m["content"] for m in data["steps"][0]["input"]["messages"]]
    image = content[1]
    stored = (
        image["image_url"]["url"].removeprefix("data:image/jpeg;base64,")
        if sdk == "openai"
        else image["source"]["data"]
    )
    assert stored == IMAGE
    assert base64.b64decode(stored, validate=True) == base64.b64decode(IMAGE)
    # the provider is stopped: the golden replays offline against its own run
    result = pytester.runpytest("--opswald-goldens", "-vv")
    assert result.ret == 0, result.stdout.str()
    result.assert_outcomes(passed=1)
    # written before, the golden's image held placeholders: it still matches the image
    google, aws = IMAGE[400:439], IMAGE[440:460]
    old = text.replace(f"{google}+{aws}", "<redacted:google-key>+<redacted:aws-key>")
    assert old.count("<redacted:") == text.count("<redacted:") + 2
    (pytester.path / golden).write_text(old)
    result = pytester.runpytest("--opswald-goldens", "-vv")
    assert result.ret == 0, result.stdout.str()
    # and another image does not
    (pytester.path / golden).write_text(old.replace(IMAGE[:400], IMAGE[1:401]))
    result = pytester.runpytest("--opswald-goldens")
    assert result.ret == 1, result.stdout.str()
    result.stdout.fnmatch_lines(["*input.messages*"])
