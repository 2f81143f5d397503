"""The fast YAML writer writes exactly what PyYAML's emitter writes for goldens."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from opswald import files, suffixes
from opswald.blockyaml import block_yaml
from opswald.session import Session
from strategies import YAML_PIECES, jsonish, yaml_data, yaml_texts


def _both(data: dict[str, Any]) -> tuple[str | None, str]:
    fast = block_yaml(
        data, files._GoldenDumper, files._represent_str, files._YAML12_NUMBER, files._OneLine
    )
    return fast, files._pyyaml_text(data)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    data=st.dictionaries(st.sampled_from(["name", "input", "output", "k"]), yaml_data(), min_size=1)
)
def test_the_fast_writer_writes_what_pyyaml_writes(data: dict[str, Any]) -> None:
    """Any value, every string of `yaml_texts` (mapping keys among them): the same text."""
    fast, slow = _both(data)
    assert fast is not None or _odd_key(data)
    if fast is not None:
        assert fast == slow


def _odd_key(data: Any) -> bool:
    """A key the fast writer leaves to PyYAML: empty, long, or not plain or single-quoted."""
    if isinstance(data, list):
        return any(_odd_key(item) for item in data)
    if not isinstance(data, dict):
        return False
    for key, value in data.items():
        if not key or len(key) >= 100 or _odd_key(value):
            return True
        if (
            block_yaml(
                {key: 0},
                files._GoldenDumper,
                files._represent_str,
                files._YAML12_NUMBER,
                files._OneLine,
            )
            is None
        ):
            return True
    return False


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.dictionaries(yaml_texts(3), yaml_data(), max_size=3))
def test_keys_the_fast_writer_takes_are_written_as_pyyaml_writes_them(
    data: dict[str, Any],
) -> None:
    fast, slow = _both(data)
    if fast is not None:
        assert fast == slow


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_golden_shaped_data_takes_the_fast_path_and_reads_back(data: st.DataObject) -> None:
    """Sessions of `jsonish` data (keys that are names, scalars of every JSON type and
    format words): written by the fast writer, identical, and read back as they were."""
    _, nested = jsonish(
        ["id", "name", "rows", "content"], ["yes", "a: b", "l1\nl2", " x", "1e5", "_1", "0o17"]
    )
    output = data.draw(nested, label="output")
    steps = data.draw(st.lists(nested, max_size=3), label="tool outputs")
    session = Session.model_validate(
        {
            "name": "s",
            "input": {"q": "hi"},
            "steps": [
                {"step": n, "type": "tool_call", "tool": "t", "input": {}, "output": value}
                for n, value in enumerate(steps, start=1)
            ],
            "output": output,
        }
    )
    plain = files.to_data(session)
    fast, slow = _both(plain)
    assert fast is not None
    assert fast == slow
    text = files.dumps(session)
    assert files.dumps(files.loads(text)) == text


BLOCKY = st.lists(
    st.sampled_from([" ", "  ", "a", "\n", "b c", "#", ": ", "- ", "'", "\t"]), max_size=8
).map("".join)


@settings(max_examples=150, deadline=None)
@given(texts=st.lists(BLOCKY, min_size=1, max_size=4), nested=st.booleans())
def test_lines_spaces_and_indicators_are_written_as_pyyaml_writes_them(
    texts: list[str], nested: bool
) -> None:
    """Short texts of line breaks, spaces and indicators: every block hint (`|2-`, `|+`),
    quoted and plain style, in a mapping and in a list."""
    value: Any = {"k": texts, "m": {"n": texts[0]}}
    data = {"output": [value, texts] if nested else value, "last": texts[-1]}
    fast, slow = _both(data)
    assert fast == slow


def test_every_piece_and_pair_of_pieces_is_written_as_pyyaml_writes_it() -> None:
    """Each of `YAML_PIECES` alone and followed by each other, as a value, a list item and
    a key (where the fast writer takes the key)."""
    texts = [a + b for a in ("", *YAML_PIECES) for b in YAML_PIECES]
    fast, slow = _both({"values": texts, "in": {"a": [{"k": text} for text in texts]}})
    assert fast is not None
    assert fast == slow
    taken = 0
    for text in texts:
        fast, slow = _both({text: 1, "b": [text]})
        taken += fast is not None
        assert fast is None or fast == slow, text
    assert taken > len(texts) // 2


def test_the_fast_writer_leaves_to_pyyaml_what_it_does_not_write() -> None:
    for data in ({"": 1}, {"k" * 130: 1}, {"a\u202eb": 1}, {"k": "last \nline\n "}):
        fast, slow = _both(data)
        assert fast is None or fast == slow
    assert _both({"": 1})[0] is None


ROOT = Path(__file__).parent.parent
WRITTEN = sorted(
    path
    for folder in ("goldens", "tests/data", "tests/__snapshots__")
    for path in (ROOT / folder).rglob("*.y*ml")
    if suffixes.is_golden_path(path)
)


@pytest.mark.parametrize("path", WRITTEN, ids=lambda p: p.name)
def test_the_goldens_on_disk_are_written_alike(path: Path) -> None:
    data = files.to_data(files.load(path))
    fast, slow = _both(data)
    assert fast is not None
    assert fast == slow
