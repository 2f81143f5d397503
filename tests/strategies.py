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
