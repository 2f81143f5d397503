"""Hypothesis strategies shared by the importer fuzz tests."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from hypothesis import strategies as st


def jsonish(
    keys: Sequence[str], words: Sequence[str]
) -> tuple[st.SearchStrategy[Any], st.SearchStrategy[Any]]:
    """(scalars, nested data) close to a trace format: scalars of every JSON type plus the
    format's own `words`, nested in lists and in mappings keyed by its `keys`."""
    scalars = st.one_of(
        st.none(),
        st.booleans(),
        st.integers(-3, 100),
        st.floats(allow_nan=True, allow_infinity=True),
        st.sampled_from(list(words)),
        st.text(max_size=8),
    )
    nested = st.recursive(
        scalars,
        lambda inner: (
            st.lists(inner, max_size=4)
            | st.dictionaries(st.sampled_from(list(keys)), inner, max_size=6)
        ),
        max_leaves=30,
    )
    return scalars, nested


# Pieces of text that YAML writers treat specially: indicators, quotes, line breaks and
# the spaces around them, words YAML 1.1 or 1.2 read as other types, characters written
# only as escapes (controls, bidi overrides, a byte-order mark, a lone surrogate) and
# characters written raw (accents, emoji, joiners).
YAML_PIECES = (
    *("a", "row 1", "x", "0", "1", "17:30", "017", "0o17", "1e5", "1_000", ".5", "-", "+"),
    *("yes", "No", "ON", "null", "~", "true", "2026-01-05", ".inf", ".nan", "=", "<<", "!"),
    *(":", ": ", " #", "#", "- ", "? ", "?", ",", "[", "]", "{", "}", "&", "*", "|", ">"),
    *("'", '"', "%", "@", "`", "\\", "---", "...", " ", "  ", "\n", "\n\n", " \n", "\n "),
    *("\t", "\r", "\x85", "\u2028", "\x00", "\x1b", "\x7f", "\xa0", "\u202e", "\u200b"),
    *("\ufeff", "\ud83d", "é", "日本", "👨\u200d👩\u200d👧", "\U0001f600", "\U000e0069"),
)


def yaml_texts(max_pieces: int = 6) -> st.SearchStrategy[str]:
    """Strings joined from `YAML_PIECES` and arbitrary text."""
    piece = st.sampled_from(YAML_PIECES) | st.text(max_size=4)
    return st.lists(piece, max_size=max_pieces).map("".join)


def yaml_data() -> st.SearchStrategy[Any]:
    """Nested plain data (what a golden holds) keyed and filled with `yaml_texts`, over
    the scalars of `jsonish`."""
    scalars, _ = jsonish(["id", "name", "content"], ["yes", "17:30", "multi\nline\n"])
    leaves = scalars | yaml_texts()
    keys = st.sampled_from(["id", "name", "output", "k"]) | yaml_texts(3)
    return st.recursive(
        leaves,
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(keys, inner, max_size=5),
        max_leaves=40,
    )
