"""What steers a terminal (control sequences, bidi overrides) in golden names and session
content is printed escaped, by pytest's ids and summary and by the `opswald` command."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

import opswald
from conftest import opswald_cli
from opswald.engine.run import RunSettings, execute
from opswald.session import Session
from opswald.terminal import escaped

HOSTILE = "\x1b[2J\x1b[H\x1b]0;PWNED\x07\x1b]8;;http://evil.example/\x07click\u202etxt.exe\r"
STEERING = ("\x1b", "\x07", "\u202e", "\r")

AGENT = textwrap.dedent(
    """
    import opswald

    REPLY = {reply!r}
    MODEL = {model!r}


    @opswald.llm(provider="sim")
    def chat(*, model, messages):
        return {{"content": REPLY, "finish_reason": "stop",
                "usage": {{"input_tokens": 3, "output_tokens": 2}}}}


    @opswald.tool
    def fetch(url):
        return {{"body": REPLY}}


    def run(input):
        print("\\x1b[32magent's own colour\\x1b[0m")
        reply = chat(model=MODEL, messages=[{{"role": "user", "content": input["q"]}}])
        page = fetch(url="http://x/")
        return {{"answer": reply["content"], "page": page["body"]}}
    """
)


def test_escaped_keeps_text_and_escapes_what_steers() -> None:
    assert escaped("tab\tline\nnaïve 日本 עברית 😀") == "tab\tline\nnaïve 日本 עברית 😀"
    assert escaped("\x1b[2J\x07\x9b\u202e\u2066\r") == "\\x1b[2J\\x07\\u009b\\u202e\\u2066\\x0d"


def test_escaped_shows_invisible_characters_as_goldens_write_them() -> None:
    """A zero-width space or a tag character hides text on a terminal as in a diff: shown
    as its escape, as the golden writes it; the joiners inside an emoji stay."""
    assert escaped("ad\u200bmin") == "ad\\u200bmin"
    assert escaped("tag \U000e0041\U000e0042") == "tag \\U000e0041\\U000e0042"
    family = "\U0001f469\u200d\U0001f469\u200d\U0001f467"
    assert escaped(f"family {family} ok") == f"family {family} ok"


def _recorded(folder: Path, name: str) -> Path:
    (folder / "hostile_agent.py").write_text(AGENT.format(reply=HOSTILE, model="m"))
    golden = folder / "goldens" / "evil.golden.yaml"
    golden.parent.mkdir()
    import importlib.util

    spec = importlib.util.spec_from_file_location("hostile_agent", folder / "hostile_agent.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    run = execute(
        Session(name=name, input={"q": "hi"}),
        module.run,
        settings=RunSettings(policy="live", block_side_effects=False),
    )
    opswald.dump(run.actual, golden)
    return golden


def test_a_golden_name_that_steers_the_terminal_is_escaped_in_ids_and_summary(
    pytester: pytest.Pytester,
) -> None:
    name = "evil\x1b]0;PWNED\x07\x1b[2Jname\u202etxt.exe"
    _recorded(pytester.path, name)
    pytester.makeini("[pytest]\nopswald_adapter = hostile_agent:run\n")
    (pytester.path / "hostile_agent.py").write_text(AGENT.format(reply=HOSTILE, model="m2"))
    result = pytester.runpytest_subprocess("--opswald-goldens", "-v", "-rA")
    result.assert_outcomes(failed=1)
    out = result.stdout.str()
    shown = "evil\\x1b_0;PWNED\\x07\\x1b_2Jname\\u202etxt.exe"  # brackets are _ in ids
    assert f"goldens/evil.golden.yaml::{shown} FAILED" in out
    assert f"golden: {shown}" in out
    assert f"FAILED    goldens/evil.golden.yaml::{shown}" in out
    for char in STEERING:
        assert char not in out.replace("\x1b[32magent's own colour\x1b[0m", ""), repr(char)
    again = pytester.runpytest_subprocess(
        "--opswald-goldens", f"goldens/evil.golden.yaml::{shown}"
    )  # the id as printed selects the golden
    again.assert_outcomes(failed=1)


def test_the_command_line_escapes_session_content_but_not_the_agents_own_output(
    tmp_path: Path,
) -> None:
    golden = _recorded(tmp_path, "hostile")
    show = opswald_cli("show", str(golden), "--step", "1", cwd=tmp_path)
    replay = opswald_cli("replay", str(golden), "--adapter", "hostile_agent:run", cwd=tmp_path)
    assert show.returncode == 0, show.stderr
    assert replay.returncode == 0, replay.stdout + replay.stderr
    assert "\\x1b[2J" in replay.stdout and "llm_call m" in replay.stdout
    assert "\x1b[32magent's own colour\x1b[0m" in replay.stdout, "the agent's output is its own"
    for out in (show.stdout, replay.stdout.replace("\x1b[32magent's own colour\x1b[0m", "")):
        for char in STEERING:
            assert char not in out, (repr(char), out)
