"""The line reader gives what the safe parser gives, or leaves the text to it."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from opswald import fastyaml, files
from opswald.session import Session
from strategies import YAML_PIECES, jsonish, yaml_data

ROOT = Path(__file__).resolve().parent.parent


def _fast(text: str, max_depth: int = 64) -> Any:
    return fastyaml.read(text, max_depth, files._plain_value, files._RESOLVED_FIRST)


def _safe(text: str, max_depth: int = 64) -> Any:
    """The safe parser's data, or the exception it raises."""
    try:
        return files._parsed_yaml_data(text, max_depth)
    except files.GoldenLoadError as exc:
        return exc


def _same(a: Any, b: Any) -> bool:
    """Equal with types told apart (True is not 1, 1 is not 1.0) and NaN equal to NaN."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return list(a) == list(b) and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float) and math.isnan(a):
        return math.isnan(b)
    return bool(a == b)


def _agrees(text: str, max_depth: int = 64) -> Any:
    """The reader's data, asserted to be the parser's (None: left to the parser)."""
    fast = _fast(text, max_depth)
    if fast is not None:
        safe = _safe(text, max_depth)
        assert not isinstance(safe, Exception), f"read {fast!r} where the parser says {safe}"
        assert _same(fast, safe), (fast, safe)
    return fast


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.dictionaries(st.sampled_from(["name", "input", "output", "k"]), yaml_data()))
def test_any_written_data_reads_as_the_parser_reads_it(data: dict[str, Any]) -> None:
    """Every string of `yaml_texts` (keys among them), every scalar type, as opswald's
    writer lays it out: the reader gives the parser's data or leaves the text to it."""
    assume(data)
    text = files._text(data, "yaml")
    _agrees(text)
    _agrees(files._pyyaml_text(data))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_golden_shaped_data_is_read_by_the_reader(data: st.DataObject) -> None:
    """Keys that are names and scalars of every JSON type, format words and short text
    (controls, line breaks, quotes): always read by the reader, never left to the parser."""
    _, nested = jsonish(
        ["id", "name", "rows", "content"],
        ["yes", "a: b", "l1\nl2", "l1\n\n", "\nx\n", " x", "1e5", "_1", "0o17", "-1", "- a"],
    )
    output = data.draw(nested, label="output")
    steps = data.draw(st.lists(nested, max_size=3), label="tool outputs")
    session = Session.model_validate(
        {
            "name": "s",
            "input": {"q": data.draw(nested, label="input")},
            "steps": [
                {"step": n, "type": "tool_call", "tool": "t", "input": {"x": 1}, "output": out}
                for n, out in enumerate(steps, start=1)
            ],
            "output": output,
        }
    )
    text = files.dumps(session)
    assert _agrees(text) is not None, text
    assert files.dumps(files.loads(text)) == text  # read back as it was (NaN included)


def _goldens() -> list[Path]:
    found = sorted(ROOT.glob("goldens/**/*.golden.yaml"))
    found += sorted(ROOT.glob("examples/**/*.golden.yaml"))
    return found


@pytest.mark.parametrize("path", _goldens(), ids=lambda p: str(p.relative_to(ROOT)))
def test_the_repository_goldens_are_read_by_the_reader(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    assert _agrees(text) is not None
    # checked out with CRLF line endings (git on Windows): the same data, still read here
    crlf = text.replace("\n", "\r\n")
    assert _agrees(crlf) is not None
    assert _same(_fast(crlf), _fast(text))


_MUTATIONS = ("insert", "delete", "indent", "dedent", "duplicate", "swap", "blank")


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_mutated_goldens_are_read_as_the_parser_reads_them_or_left_to_it(
    data: st.DataObject,
) -> None:
    """Goldens with pieces inserted, characters deleted, lines re-indented, repeated or
    swapped: what the reader reads, the parser reads the same; what the parser refuses,
    the reader leaves to it (so the error and its line come from the parser)."""
    paths = _goldens()
    path = data.draw(st.sampled_from(paths), label="golden")
    lines = path.read_text(encoding="utf-8").split("\n")
    for _ in range(data.draw(st.integers(1, 3), label="mutations")):
        at = data.draw(st.integers(0, len(lines) - 1), label="line")
        kind = data.draw(st.sampled_from(_MUTATIONS), label="kind")
        line = lines[at]
        if kind == "insert":
            piece = data.draw(st.sampled_from(YAML_PIECES) | st.text(max_size=3), label="piece")
            pos = data.draw(st.integers(0, len(line)), label="pos")
            lines[at] = line[:pos] + piece + line[pos:]
        elif kind == "delete" and line:
            pos = data.draw(st.integers(0, len(line) - 1), label="pos")
            lines[at] = line[:pos] + line[pos + 1 :]
        elif kind == "indent":
            lines[at] = " " * data.draw(st.integers(1, 4), label="by") + line
        elif kind == "dedent":
            by = data.draw(st.integers(1, 4), label="by")
            lines[at] = line[by:] if line[:1] == " " else line
        elif kind == "duplicate":
            lines.insert(at, line)
        elif kind == "swap" and at + 1 < len(lines):
            lines[at], lines[at + 1] = lines[at + 1], line
        elif kind == "blank":
            lines.insert(at, data.draw(st.sampled_from(["", " ", "#", "  # note"]), label="b"))
    _agrees("\n".join(lines))


@pytest.mark.parametrize(
    "text",
    [
        "a: 1\na: 2\n",  # a duplicate key: the parser names both lines
        "a: &x 1\nb: *x\n",  # an anchor and an alias
        "a: !!str 1\n",  # a tag
        "a: [1, x]\n",  # a flow list that is not numbers
        "a: {b: 1}\n",  # a flow mapping
        "a:\n  b\n  c\n",  # a multi-line plain scalar
        "a: b\n  c\n",  # a continuation line
        "a:\n",  # a key with nothing after it
        "a:\nb: 1\n",  # a key with nothing under it
        "- a\n",  # not a mapping
        "a: 'x\n  y'\n",  # a quoted scalar over two lines
        "a: b # note\n",  # a trailing comment
        "a:\tb\n",  # a tab
        "a: b\rc: d\n",  # a carriage return alone
        "a: b\r\nc: |\r\n  x\r  y\r\n",  # one inside a block
        "a: 1\n---\nb: 2\n",  # a second document
        "a: >\n  folded\n",  # a folded block
        "a: |\n  x\n # note\n",  # a comment under a block
        "a: b",  # no final line break
        'a: "\\q"\n',  # an escape YAML does not know
        "? a\n: b\n",  # an explicit key
        "...\n",  # a document end with no document
        "# emptied\n...\n",  # the same after a comment
        "a: 1\n... x: 2\n",  # a document end the parser refuses (not a key `... x`)
        "a: 1\n--- x\n",  # a second document's start
        "a: |2+\n\n# note\nb: 1\n",  # a comment just under an empty block
    ],
)
def test_what_the_reader_leaves_to_the_parser(text: str) -> None:
    assert _fast(text) is None


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("a: |2+\n", ""),  # a block with no text
        ("a: |2+\nb: 1\n", ""),
        ("a: |2+\n\nb: 1\n", "\n"),  # "\n", as the writer writes it: its breaks kept
        ("a: |2+\n\n\n", "\n\n"),
        ("a: |2-\n\nb: 1\n", ""),  # stripped
        ("a: |2\n\nb: 1\n", ""),  # clipped
        ("a: |+\n  \n", "\n"),  # a line of the block's indentation alone
    ],
)
def test_a_block_of_empty_lines_reads_as_the_parser_reads_it(text: str, value: Any) -> None:
    """A string of line breaks alone (`"\\n"`) is written as a block of empty lines; the
    reader took every such block to the parser, so a golden holding one was not read by
    it (hypothesis found it under PyYAML 6.0)."""
    read = _agrees(text)
    assert (read if read is None else read["a"]) == value


def test_a_list_entry_block_of_no_text_before_a_document_end_reads_as_the_parser() -> None:
    assert _agrees("a:\n  - |2+\n...\n") == {"a": [""]}


@pytest.mark.parametrize("text", ["a: []\n", "a: {}\n", "a: [1, 2]\n", "a:\n  - []\n"])
def test_an_empty_or_one_line_collection_at_the_depth_cap_is_left_to_the_parser(
    text: str,
) -> None:
    depth = 1 if text.startswith("a: ") else 2
    assert _fast(text, max_depth=depth) is None
    assert isinstance(_safe(text, max_depth=depth), files.GoldenLoadError)
    assert _agrees(text, max_depth=depth + 1) is not None


def test_nesting_at_the_depth_cap_is_left_to_the_parser() -> None:
    deep = "a:\n  b:\n    c:\n      d: 1\n"
    assert _same(_fast(deep, max_depth=4), {"a": {"b": {"c": {"d": 1}}}})
    assert _fast(deep, max_depth=3) is None
    assert isinstance(_safe(deep, max_depth=3), files.GoldenLoadError)


@pytest.mark.parametrize(
    ("text", "data"),
    [
        ("a: 'it''s: x'\n", {"a": "it's: x"}),
        ('a: "tab\\there \\u00e9 \\x41 \\U0001F600 \\N \\/"\n', {"a": "tab\there é A 😀 \x85 /"}),
        ("a: |-\n  l1\n\n  l2\n", {"a": "l1\n\nl2"}),
        ("a: |2\n   x\n  y\n", {"a": " x\ny\n"}),
        ("a: |+\n  x\n\n...\n", {"a": "x\n\n"}),
        (
            "a:\n  - - 1\n    - -2\n  - k: [1, -2, 30]\n    j: {}\n",
            {"a": [[1, -2], {"k": [1, -2, 30], "j": {}}]},
        ),
        ("'a b': yes\nc: 0o17\nd: .inf\ne: ~\nf: 1_000\ng: 17:30\n", None),
    ],
)
def test_what_the_reader_reads(text: str, data: Any) -> None:
    read = _agrees(text)
    assert read is not None
    if data is not None:
        assert _same(read, data)
