"""Characters that hide or reorder text ("Trojan Source") are written as escapes in goldens,
saved sessions, snapshots and JSON reports, and load back as they were."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from opswald import files
from opswald.hidden import _CANDIDATE, HiddenEscapingDumper, has_hidden, hidden_positions
from opswald.report import json_report
from opswald.session import SCHEMA_URL, Session
from opswald.snapshot import SessionSnapshotExtension

EXAMPLES = sorted((Path(__file__).parents[1] / "goldens").glob("*.golden.*"))
HEADER = f"# yaml-language-server: $schema={SCHEMA_URL}\n"

BIDI = "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
INVISIBLE = "\u00ad\u034f\u200b\u2060\u2061\u2062\u2063\u2064\u3164\ufeff\U0001d173"
TAGS = "".join(chr(c) for c in range(0xE0020, 0xE0080))
JOINERS = "\u200c\u200d"
SELECTORS = "\ufe0e\ufe0f\U000e0100"
FAMILY = "\U0001f468\u200d\U0001f469\u200d\U0001f467"  # 👨‍👩‍👧
SCOTLAND = "\U0001f3f4\U000e0067\U000e0062\U000e0073\U000e0063\U000e0074\U000e007f"


def session(output: Any, **fields: Any) -> Session:
    return Session.model_validate({"name": "n", "steps": [], "output": output, **fields})


# ---------------------------------------------------------------- the exact bytes written


def test_a_right_to_left_override_is_written_as_an_escape() -> None:
    text = files.dumps(session("pay 100\u202e00 EUR"))
    body = 'schema_version: 1\nname: n\nsteps: []\noutput: "pay 100\\u202E00 EUR"\n'
    assert text == HEADER + body
    assert files.loads(text).output == "pay 100\u202e00 EUR"


def test_json_goldens_escape_them_too() -> None:
    text = files.dumps(session({"answer\u2066": "pay 100\u202e00 EUR \U000e0041"}), "json")
    assert '"answer\\u2066": "pay 100\\u202e00 EUR \\udb40\\udc41"' in text
    assert files.loads(text, fmt="json").output == {
        "answer\u2066": "pay 100\u202e00 EUR \U000e0041"
    }


def test_a_multi_line_reply_becomes_one_double_quoted_line_with_the_rest_unchanged() -> None:
    reply = "Dear Ann,\n\tyour refund of 1\u200b00 € is on its way 👍\nBest"
    text = files.dumps(session(reply))
    assert 'output: "Dear Ann,\\n\\tyour refund of 1\\u200B00 € is on its way 👍\\nBest"\n' in text
    assert files.loads(text).output == reply


def test_keys_and_nested_data_are_escaped_and_other_strings_keep_their_style() -> None:
    data = {"note\u202e": ["plain", "two\nlines", "x\u2069"], "ok": "two\nlines"}
    text = files.dumps(session(data))
    assert text.endswith(
        'output:\n  "note\\u202E":\n    - plain\n    - |-\n      two\n      lines\n'
        '    - "x\\u2069"\n  ok: |-\n    two\n    lines\n'
    )
    assert files.loads(text).output == data


# ----------------------------------------------------------- which characters, and why


@pytest.mark.parametrize(
    "text",
    [
        "Grüße, café, naïve, Ærøskøbing",
        "日本語のテキスト、中文",
        FAMILY + " and 👩‍💻 and 🏳️‍🌈",  # emoji ZWJ sequences keep their joiners
        "می‌خواهم",  # Persian: ZERO WIDTH NON-JOINER inside a word
        "क्‍ष",  # Devanagari: virama, ZERO WIDTH JOINER
        "I ❤️ it, press 1️⃣ or #️⃣, ☺︎",  # emoji and text presentation selectors
        "go " + SCOTLAND,  # a subdivision flag is spelled with tag characters
        "葛\U000e0100城",  # an ideographic variation sequence
        "  leading spaces, tabs\tand\nnew lines\n",
    ],
)
def test_ordinary_text_stays_raw(text: str) -> None:
    assert hidden_positions(text) == []
    written = files.dumps(session(text))
    assert files.loads(written).output == text
    assert "\\u" not in written and "\\U" not in written


@pytest.mark.parametrize(
    ("text", "escaped"),
    [
        *((f"a{c}b", [1]) for c in BIDI),
        *((f"a{c}b", [1]) for c in INVISIBLE),
        ("ad\u200dmin", [2]),  # a joiner between ASCII letters joins nothing visible
        ("\u200d" + FAMILY, [0]),  # ... nor at either end of the text
        ("pass\u200cword", [4]),
        ("x\ufe0f", [1]),  # a selector after a Latin letter
        ("❤\ufe0f\ufe0f\ufe01", [2, 3]),  # a run of selectors smuggles bytes
        ("A\U000e0100", [1]),  # an ideographic selector after no ideograph
        ("hi \U000e0069\U000e0067\U000e006e", [3, 4, 5]),  # tags spelling hidden text
        ("\U0001f3f4\U000e0061\U000e007f", [1, 2]),  # too short for a subdivision flag
        ("🏳️\u200d\u200d🌈", [2, 3]),  # a doubled joiner
    ],
)
def test_characters_that_hide_or_reorder_text_are_escaped(text: str, escaped: list[int]) -> None:
    assert hidden_positions(text) == escaped
    written = files.dumps(session(text))
    assert not hidden_positions(written)
    assert files.loads(written).output == text


# --------------------------------------------------------------------------- round trips

_ALPHABET = st.one_of(
    st.characters(codec="utf-8"),
    st.sampled_from(BIDI + INVISIBLE + TAGS + JOINERS + SELECTORS),
    st.sampled_from(["\U0001f468", "\U0001f3f4", "\u0915", "\u094d", "\u2764", "#", "\r", "\n"]),
)
HIDDEN_TEXT = st.text(_ALPHABET, max_size=30)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    texts=st.lists(HIDDEN_TEXT, min_size=1, max_size=4),
    fmt=st.sampled_from(["yaml", "json"]),
)
def test_text_with_hidden_characters_round_trips_and_none_is_left_raw(
    texts: list[str], fmt: files.Format
) -> None:
    data = {key: [value, {"v": value}] for key, value in zip(texts, reversed(texts), strict=True)}
    written = files.dumps(session(data, input=texts[0]), fmt)
    loaded = files.loads(written, fmt=fmt)
    assert loaded.output == data and loaded.input == texts[0]
    assert files.dumps(loaded, fmt) == written
    assert hidden_positions(written) == []


def _joined_emoji(text: str) -> bool:
    """A joiner or selector kept raw in a text with a character above U+FFFF: written
    double-quoted with that character raw, where PyYAML escapes it (see below)."""
    return bool(_CANDIDATE.search(text)) and any(ord(c) > 0xFFFF for c in text)


@pytest.mark.parametrize("fmt", ["yaml", "json"])
def test_a_joiner_kept_beside_an_emoji_stays_beside_it_in_double_quotes(fmt: files.Format) -> None:
    """A line break makes the text double-quoted, where PyYAML escapes U+10000 and up: the
    joiner, kept raw between two visible characters, was left raw beside the escape's last
    digit (an invisible character beside an ASCII one)."""
    text = "\r\U00010000\u200c\u0300"
    written = files.dumps(session({"a": text}, input=text), fmt)
    assert hidden_positions(written) == []
    assert files.loads(written, fmt=fmt).input == text


class _PyYAML(yaml.SafeDumper):
    """PyYAML's own writer, for comparison."""


@settings(max_examples=300, deadline=None)
@given(
    text=st.text(st.characters(codec="utf-8"), max_size=30).filter(
        lambda t: not has_hidden(t) and not _joined_emoji(t)
    ),
    style=st.sampled_from([None, '"', "'", "|"]),
)
def test_text_without_them_is_written_as_pyyaml_writes_it(text: str, style: str | None) -> None:
    def write(dumper: type[yaml.SafeDumper]) -> str:
        def represent(d: yaml.SafeDumper, s: str) -> yaml.ScalarNode:
            return d.represent_scalar("tag:yaml.org,2002:str", s, style=style)

        dumper.add_representer(str, represent)
        out: str = yaml.dump({text: [text]}, Dumper=dumper, allow_unicode=True, width=1 << 30)
        return out

    class Ours(HiddenEscapingDumper):
        pass

    class Theirs(_PyYAML):
        pass

    assert write(Ours) == write(Theirs)


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_the_example_goldens_are_written_as_they_are_until_a_hidden_character_comes(
    path: Path,
) -> None:
    fmt = files._format_of(path)
    golden = files.load(path)
    original = path.read_text(encoding="utf-8")
    assert files.dumps(golden, fmt) == original  # byte for byte

    tampered = golden.model_copy(update={"description": "Refund\u202e the order"})
    tampered.model_fields_set.add("description")
    written = files.dumps(tampered, fmt)
    assert "\u202e" not in written
    escape = "\\u202e" if fmt == "json" else "\\u202E"
    new_lines = [line for line in written.splitlines() if line not in original.splitlines()]
    assert len(new_lines) == 1 and escape in new_lines[0], new_lines
    assert files.loads(written, fmt=fmt) == tampered


# ------------------------------------------------------------- the other files written


def test_session_snapshots_escape_them() -> None:
    ext = SessionSnapshotExtension()
    of_session = ext.serialize(session("a\u202eb"))
    of_data = ext.serialize({"reply": "a\u202eb", "family": FAMILY})
    assert isinstance(of_session, str) and isinstance(of_data, str)
    assert 'output: "a\\u202Eb"' in of_session and "\u202e" not in of_session
    assert of_data == f'reply: "a\\u202Eb"\nfamily: {FAMILY}\n'


def test_json_reports_escape_them(tmp_path: Path) -> None:
    path = tmp_path / "report.json"
    report = {"failures": [{"message": "expected 'a\u202eb', got 'ab'", "who": "Zoë"}]}
    json_report.write(path, report)
    text = path.read_text(encoding="utf-8")
    assert "a\\u202eb" in text and "\u202e" not in text and "Zoë" in text
    assert json.loads(text) == report
