"""Unit tests of opswald.diff: field-level differences and their plain-text rendering."""

from __future__ import annotations

import math
import time
from dataclasses import replace
from typing import Any
from unittest.mock import patch

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from opswald import diff
from opswald.diff import (
    DiffMode,
    differences,
    json_equal,
    plainly_equal,
    pretty,
    render_difference,
    render_finding,
    render_verdict,
    short_repr,
)
from opswald.paths import parse
from opswald.verdict import MISSING, Difference, Finding, Verdict

# --- differences -------------------------------------------------------------------------


def test_changed_added_removed_with_base_and_step() -> None:
    golden = {"passenger": "Alice", "seats": [1, 2], "class": "economy"}
    actual = {"passenger": "Bob", "seats": [1, 2, 3]}
    diffs = differences(golden, actual, base=("input",), step=5)
    assert diffs == [
        Difference(path=("input", "passenger"), golden="Alice", actual="Bob", step=5),
        Difference(path=("input", "seats", 2), golden=MISSING, actual=3, step=5),
        Difference(path=("input", "class"), golden="economy", actual=MISSING, step=5),
    ]
    assert [d.where for d in diffs] == [
        "step 5 › input.passenger",
        "step 5 › input.seats[2]",
        "step 5 › input.class",
    ]


def test_order_follows_the_golden_then_keys_only_the_actual_has() -> None:
    golden = {"z": 1, "a": {"y": 1, "b": 1}, "m": 1}
    actual = {"new": 0, "m": 2, "a": {"b": 2, "y": 2}, "z": 2}
    paths = [d.path for d in differences(golden, actual)]
    assert paths == [("z",), ("a", "y"), ("a", "b"), ("m",), ("new",)]


def test_order_is_kept_when_large_containers_are_split() -> None:
    golden = {f"k{i}": {"n": i, "tags": [i]} for i in range(100)}
    actual = {f"k{i}": {"n": i, "tags": [i]} for i in reversed(range(100))}
    actual["k90"] = {"n": -1, "tags": [90]}
    actual["k3"] = {"n": 3, "tags": [3, 4]}
    actual["extra"] = {}
    del actual["k50"]
    paths = [d.path for d in differences(golden, actual)]
    assert paths == [("k3", "tags", 1), ("k50",), ("k90", "n"), ("extra",)]


def test_type_changes_are_differences() -> None:
    diffs = differences({"n": "1", "x": None, "l": [1]}, {"n": 1, "x": 0, "l": {"0": 1}})
    assert [(d.path, d.golden, d.actual) for d in diffs] == [
        (("n",), "1", 1),
        (("x",), None, 0),
        (("l",), [1], {"0": 1}),
    ]


def test_root_values_and_missing_sides() -> None:
    assert differences("a", "b", base=("output",)) == [
        Difference(path=("output",), golden="a", actual="b")
    ]
    assert differences(MISSING, {"m": 1}, step=3) == [
        Difference(path=(), golden=MISSING, actual={"m": 1}, step=3)
    ]
    assert differences(MISSING, MISSING) == []


def test_json_number_semantics() -> None:
    assert differences([1, 2.0, math.nan], [1.0, 2, math.nan]) == []
    assert json_equal({"a": [1, 2.0]}, {"a": [1.0, 2]})
    assert not json_equal(True, 1)
    assert not json_equal(None, False)
    assert not json_equal([1], (1, 2))
    assert [d.path for d in differences({"flag": True}, {"flag": 1})] == [("flag",)]


def test_ignore_patterns_are_relative_to_the_values_not_to_base() -> None:
    golden = {"request_id": "a", "filters": [{"ts": 1, "k": "x"}, {"ts": 2, "k": "y"}]}
    actual = {"request_id": "b", "filters": [{"ts": 9, "k": "x"}, {"ts": 8, "k": "z"}]}
    ignore = [parse("request_id"), parse("filters.*.ts")]
    diffs = differences(golden, actual, base=("input",), step=2, ignore=ignore)
    assert diffs == [Difference(path=("input", "filters", 1, "k"), golden="y", actual="z", step=2)]


def test_limit_keeps_the_first_differences() -> None:
    golden = [{"i": i} for i in range(1000)]
    actual = [{"i": -i - 1} for i in range(1000)]
    diffs = differences(golden, actual, limit=5)
    assert [d.path for d in diffs] == [(i, "i") for i in range(5)]
    assert differences(golden, actual, limit=0) == []


def test_ten_thousand_dicts_with_three_changes_diff_quickly() -> None:
    golden = [{"id": i, "name": f"n{i}", "tags": ["a", "b"], "v": i * 1.5} for i in range(10_000)]
    actual = [dict(item) for item in golden]
    actual[5] = {**actual[5], "name": "zz"}
    actual[700] = {**actual[700], "v": 2}
    actual[9000] = {**actual[9000], "tags": ["a"]}
    start = time.perf_counter()
    diffs = differences(golden, actual)
    elapsed = time.perf_counter() - start
    assert diffs == [
        Difference(path=(5, "name"), golden="n5", actual="zz"),
        Difference(path=(700, "v"), golden=1050.0, actual=2),
        Difference(path=(9000, "tags", 1), golden="b", actual=MISSING),
    ]
    assert elapsed < 2.0, f"took {elapsed:.2f}s"


@pytest.mark.parametrize(
    "wrap",
    [
        lambda rows: {"count": len(rows), "rows": rows},
        lambda rows: {"page": {"items": [{"rows": rows, "next": None}]}, "ok": True},
    ],
    ids=["in a small dict", "three levels down"],
)
def test_a_long_list_inside_small_containers_is_split_like_a_bare_one(wrap: Any) -> None:
    golden = [{"id": i, "sku": f"S{i}", "price": {"amount": i * 0.25}} for i in range(10_000)]
    actual = [dict(row) for row in golden]
    actual[5000] = {**actual[5000], "sku": "changed"}
    actual[7000] = {**actual[7000], "price": {"amount": "free"}}
    bare = differences(golden, actual)
    handed: list[int] = []
    deepdiff = diff._deepdiff

    def spy(g: Any, a: Any, *, base: Any, step: Any) -> list[Difference]:
        handed.append(len(repr(g)) + len(repr(a)))
        return deepdiff(g, a, base=base, step=step)

    with patch.object(diff, "_deepdiff", spy):
        start = time.perf_counter()
        wrapped = differences(wrap(golden), wrap(actual))
        elapsed = time.perf_counter() - start
    prefix = wrapped[0].path[: -len(bare[0].path)]
    assert [replace(d, path=d.path[len(prefix) :]) for d in wrapped] == bare
    assert [d.path[len(prefix) :] for d in wrapped] == [(5000, "sku"), (7000, "price", "amount")]
    assert len(handed) == 2 and max(handed) < 200  # only the two differing rows
    assert elapsed < 2.0, f"took {elapsed:.2f}s"


def test_a_difference_deep_in_a_chain_is_found_in_linear_time() -> None:
    def chain(leaf: str) -> Any:
        value: Any = leaf
        for _ in range(150):
            value = {"side": list(range(200)), "child": value}
        return value

    start = time.perf_counter()
    diffs = differences(chain("x"), chain("y"))
    elapsed = time.perf_counter() - start
    assert diffs == [Difference(path=("child",) * 150, golden="x", actual="y")]
    assert elapsed < 2.0, f"took {elapsed:.2f}s"


def test_scalar_lists_are_compared_index_by_index() -> None:
    golden = [0] * 10_000
    actual = [0] * 9_999 + [1]
    start = time.perf_counter()
    assert differences(golden, actual) == [Difference(path=(9999,), golden=0, actual=1)]
    assert time.perf_counter() - start < 2.0


TOOLS = [
    {"name": "lookup_order", "description": "Look an order up."},
    {"name": "check_policy", "description": "Check the refund policy."},
    {"name": "issue_refund", "description": "Refund an order."},
]
FRAUD = {"name": "fraud_check", "description": "Check for fraud."}


def test_an_element_inserted_in_a_list_is_one_difference_at_the_actual_index() -> None:
    """The elements after it moved one place on: they are not changes."""
    golden = {"messages": [{"role": "user", "content": "hi"}], "tools": TOOLS}
    actual = {"messages": golden["messages"], "tools": [TOOLS[0], FRAUD, *TOOLS[1:]]}
    diffs = differences(golden, actual, base=("input",), step=1)
    assert diffs == [
        Difference(path=("input", "tools", 1), golden=MISSING, actual=FRAUD, step=1, shifts=True)
    ]
    assert render_difference(diffs[0], "short") == [
        'step 1 › input.tools[1]: inserted {"name": "fraud_check", '
        '"description": "Check for fraud."}'
    ]
    assert render_difference(diffs[0]) == [
        "step 1 › input.tools[1]: inserted",
        '  + {"name": "fraud_check", "description": "Check for fraud."}',
    ]
    assert diffs[0].change == "inserted"


def test_an_element_removed_from_a_list_is_one_difference_at_the_golden_index() -> None:
    diffs = differences({"tools": TOOLS}, {"tools": [TOOLS[0], TOOLS[2]]})
    assert diffs == [Difference(path=("tools", 1), golden=TOOLS[1], shifts=True)]
    assert render_difference(diffs[0], "short") == [
        'tools[1]: removed {"name": "check_policy", "description": "Check the refund policy."}'
    ]
    assert diffs[0].change == "removed"


@pytest.mark.parametrize(
    ("golden", "actual", "expected"),
    [
        # a second system message: not `messages[1].role: 'user' → 'system'`
        (
            [{"role": "system", "content": "a"}, {"role": "user", "content": "q"}],
            [
                {"role": "system", "content": "a"},
                {"role": "system", "content": "b"},
                {"role": "user", "content": "q"},
            ],
            [((1,), MISSING, {"role": "system", "content": "b"}, True)],
        ),
        (["b", "c"], ["a", "b", "c"], [((0,), MISSING, "a", True)]),  # at the start
        (
            ["a", "d"],
            ["a", "b", "c", "d"],
            [((1,), MISSING, "b", True), ((2,), MISSING, "c", True)],
        ),
        (["a", "b", "c"], ["c"], [((0,), "a", MISSING, True), ((1,), "b", MISSING, True)]),
        # at the end nothing moved: added and removed as before
        (["a"], ["a", "b"], [((1,), MISSING, "b", False)]),
        (["a", "b", "b"], ["a", "b"], [((2,), "b", MISSING, False)]),
        # an insertion and a change: compared position by position, as before
        (
            ["a", "b", "c"],
            ["a", "x", "b", "d"],
            [((1,), "b", "x", False), ((2,), "c", "b", False), ((3,), MISSING, "d", False)],
        ),
        # equal lengths, one element moved: position by position
        (
            ["a", "b", "c"],
            ["b", "c", "a"],
            [((0,), "a", "b", False), ((1,), "b", "c", False), ((2,), "c", "a", False)],
        ),
    ],
)
def test_lists_of_other_lengths_line_up_at_their_common_ends(
    golden: list[Any], actual: list[Any], expected: list[tuple[Any, ...]]
) -> None:
    want = [Difference(path=p, golden=g, actual=a, shifts=s) for p, g, a, s in expected]
    assert differences(golden, actual) == want
    assert differences({"deep": {"list": golden}}, {"deep": {"list": actual}}) == [
        replace(d, path=("deep", "list", *d.path)) for d in want
    ]


def test_an_insertion_in_a_long_list_is_one_difference() -> None:
    golden = [{"id": i, "tags": [i]} for i in range(20_000)]
    actual = [*golden[:15_000], {"id": -1}, *golden[15_000:]]
    assert differences(golden, actual) == [
        Difference(path=(15_000,), actual={"id": -1}, shifts=True)
    ]
    assert differences(actual, golden) == [
        Difference(path=(15_000,), golden={"id": -1}, shifts=True)
    ]


_json = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-3, 3)
    | st.sampled_from([0.5, 1.0])
    | st.text("ab", max_size=2),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.sampled_from("abc"), inner, max_size=3)
    ),
    max_leaves=12,
)


def _at(data: Any, path: tuple[str | int, ...]) -> Any:
    for part in path:
        if isinstance(data, list) and isinstance(part, int) and part < len(data):
            data = data[part]
        elif isinstance(data, dict) and part in data:
            data = data[part]
        else:
            return MISSING
    return data


@settings(max_examples=150, deadline=None)
@given(_json, _json)
def test_differences_agree_with_json_equal_and_point_at_the_values(
    golden: Any, actual: Any
) -> None:
    diffs = differences(golden, actual, limit=10_000)
    assert (diffs == []) == json_equal(golden, actual)
    for d in diffs:
        if d.shifts:  # an element one list has, at its index there
            side, value = (actual, d.actual) if d.golden is MISSING else (golden, d.golden)
            assert json_equal(_at(side, d.path), value)
            continue
        assert json_equal(_at(golden, d.path), d.golden) or _at(golden, d.path) is d.golden
        assert json_equal(_at(actual, d.path), d.actual) or _at(actual, d.path) is d.actual
        assert not json_equal(d.golden, d.actual)


@settings(max_examples=150, deadline=None)
@given(st.lists(_json, max_size=5), st.lists(_json, min_size=1, max_size=3), st.data())
def test_elements_inserted_in_one_place_are_those_differences(
    golden: list[Any], inserted: list[Any], data: st.DataObject
) -> None:
    at = data.draw(st.integers(0, len(golden)))
    actual = [*golden[:at], *inserted, *golden[at:]]
    for diffs, gone in ((differences(golden, actual), False), (differences(actual, golden), True)):
        assert len(diffs) == len(inserted)
        indexes = [d.path[0] for d in diffs]
        assert indexes == list(range(indexes[0], indexes[0] + len(inserted)))
        for d in diffs:
            assert (d.golden if gone else d.actual) is not MISSING
            assert (d.actual if gone else d.golden) is MISSING
            assert json_equal(actual[d.path[0]], d.golden if gone else d.actual)
            assert d.shifts == (indexes[-1] < len(actual) - 1)  # elements both have after


@settings(max_examples=150, deadline=None)
@given(_json, _json)
def test_splitting_large_containers_changes_nothing(golden: Any, actual: Any) -> None:
    whole = differences(golden, actual, limit=10_000)
    with patch.object(diff, "_SPLIT_AT", 0):  # split every container before deepdiff
        assert differences(golden, actual, limit=10_000) == whole
    with patch.object(diff, "_COMPARE_AT", 0):  # no container compared whole first
        assert differences(golden, actual, limit=10_000) == whole
    with patch.object(diff, "_SPLIT_AT", 3), patch.object(diff, "_COMPARE_AT", 4):
        assert differences(golden, actual, limit=10_000) == whole


# --- rendering ---------------------------------------------------------------------------

BOOKING = Finding(
    kind="mismatch",
    message="called with other arguments",
    step=5,
    step_type="tool_call",
    name="book_flight",
    differences=(
        Difference(path=("input", "passenger"), golden="Alice", actual="Bob", step=5),
        Difference(path=("input", "seats", 1), golden=MISSING, actual=3, step=5),
        Difference(path=("input", "class"), golden="economy", actual=MISSING, step=5),
    ),
    suggestion="step 5 of the golden booked for Alice",
)

ANSWER_BEFORE = "\n".join(f"line {i}" for i in range(1, 21))
ANSWER_AFTER = ANSWER_BEFORE.replace("line 4", "LINE 4").replace("line 15", "line 15\ninserted")

OUTPUT = Finding(
    kind="output",
    message="output differs (match: exact)",
    differences=(
        Difference(path=("output", "answer"), golden=ANSWER_BEFORE, actual=ANSWER_AFTER),
        Difference(path=("output", "items"), golden=list(range(300)), actual=[1, 2]),
    ),
    suggestion="if output.answer varies between runs, add it to expect.output.ignore_paths",
)

BUDGET = Finding(
    kind="budget",
    message="budget exceeded: cost $0.0123 > $0.0100 (limit +20% of recorded $0.0083)",
    suggestion="if the increase is intended, raise expect.budgets.cost",
)

STATE = Finding(
    kind="state",
    message="state snapshot differs (state: report)",
    step=7,
    step_type="state",
    differences=(
        Difference(path=("memory", "user_preference"), golden="aisle", actual="window", step=7),
    ),
    failing=False,
)


def test_detailed_finding_in_syrupys_look(snapshot: Any) -> None:
    text = render_verdict(Verdict(findings=(BOOKING,)), total_steps=7)
    assert text.splitlines()[0] == (
        "step 5 of 7 · tool_call book_flight: called with other arguments"
    )
    assert "  [- golden] [+ actual]" in text
    assert "  step 5 › input.passenger: 'Alice' → 'Bob'\n    - 'Alice'\n    + 'Bob'" in text
    assert "  step 5 › input.seats[1]: added\n    + 3" in text
    assert "  step 5 › input.class: removed\n    - 'economy'" in text
    assert "  hint: step 5 of the golden booked for Alice" in text
    assert text.splitlines()[-1] == (
        "fix: if the new behaviour is intended, accept it with --opswald-update"
    )
    assert text == snapshot


def test_multiline_strings_are_diffed_line_by_line(snapshot: Any) -> None:
    text = render_verdict(Verdict(findings=(OUTPUT,)), total_steps=None)
    lines = text.splitlines()
    assert lines[0] == "output differs (match: exact)"
    start = lines.index("    - line 4")
    assert lines[start - 4 : start + 5] == [
        "  output.answer: " + short_repr(ANSWER_BEFORE) + " → " + short_repr(ANSWER_AFTER),
        "      line 1",
        "      line 2",
        "      line 3",
        "    - line 4",
        "    + LINE 4",
        "      line 5",
        "      line 6",
        "      line 7",
    ]
    assert lines[start + 5 : start + 13] == [
        "      ...",
        "      line 13",
        "      line 14",
        "      line 15",
        "    + inserted",
        "      line 16",
        "      line 17",
        "      line 18",
    ]
    assert "      line 11" not in lines  # outside the 3 lines of context
    assert lines.count("      ...") == 2
    assert any(line.startswith("  output.items: [0, 1, 2, 3,") for line in lines)
    long_block = next(line for line in lines if line.startswith("    - [0, 1, 2"))
    assert long_block.endswith("more chars)")
    assert text == snapshot


def test_verdict_orders_failing_first_then_not_failing(snapshot: Any) -> None:
    text = render_verdict(Verdict(findings=(STATE, BUDGET, BOOKING)), total_steps=7)
    lines = text.splitlines()
    assert lines[0] == BUDGET.message
    assert lines[1] == "  hint: if the increase is intended, raise expect.budgets.cost"
    also = lines.index("also (not failing):")
    assert lines.index("step 5 of 7 · tool_call book_flight: called with other arguments") < also
    assert lines[also + 1] == "  step 7 of 7 · state: state snapshot differs (state: report)"
    assert "    step 7 › memory.user_preference: 'aisle' → 'window'" in lines
    assert lines[-1].startswith("fix: ")
    assert text == snapshot


def test_short_mode(snapshot: Any) -> None:
    text = render_verdict(Verdict(findings=(BOOKING, OUTPUT)), total_steps=7, mode="short")
    assert "  step 5 › input.passenger: 'Alice' → 'Bob'" in text
    assert "  step 5 › input.seats[1]: added 3" in text
    assert "    - 'Alice'" not in text
    assert "[- golden]" not in text
    assert text == snapshot


def test_disabled_mode_keeps_headline_hint_and_fix() -> None:
    text = render_verdict(Verdict(findings=(BOOKING,)), total_steps=7, mode="disabled", fix="x")
    assert text.splitlines() == [
        "step 5 of 7 · tool_call book_flight: called with other arguments",
        "  hint: step 5 of the golden booked for Alice",
        "fix: x",
    ]


def test_differences_per_finding_are_capped() -> None:
    many = Finding(
        kind="output",
        message="output differs (match: exact)",
        differences=tuple(Difference(path=("output", i), golden=i, actual=-i) for i in range(30)),
    )
    lines = render_finding(many, total_steps=None, max_differences=20)
    assert "  output[19]: 19 → -19" in lines
    assert "  output[20]: 20 → -20" not in lines
    assert lines[-1] == "  ... and 10 more differences"


def test_findings_per_verdict_are_capped() -> None:
    findings = tuple(Finding(kind="budget", message=f"budget {i}") for i in range(5))
    lines = render_verdict(
        Verdict(findings=findings), total_steps=None, max_findings=3
    ).splitlines()
    assert lines == ["budget 0", "budget 1", "budget 2", "... and 2 more findings", lines[-1]]
    assert lines[-1].startswith("fix: ")


def test_passed_verdict_renders_nothing_and_no_fix() -> None:
    assert render_verdict(Verdict(), total_steps=3) == ""
    text = render_verdict(Verdict(findings=(STATE,)), total_steps=7)
    assert not any(line.startswith("fix:") for line in text.splitlines())


def test_headline_without_total_or_name() -> None:
    finding = Finding(kind="mismatch", message="m", step=2)
    assert render_finding(finding, total_steps=None)[0] == "step 2 · m"


@pytest.mark.parametrize(
    "value",
    [
        b"\xff\x00bytes",
        10**5000,
        math.nan,
        -math.inf,
        None,
        True,
        1.5,
        {"a": [None, True, 1.5, math.nan]},
        {"big": 10**5000},
        "\x1b[31mred\x1b[0m",
        "multi\x1b[31m\nline\x9b",
        "x" * 10_000,
    ],
    ids=lambda value: type(value).__name__,
)
def test_weird_values_render_plainly(value: Any) -> None:
    d = Difference(path=("output",), golden=value, actual="other\nvalue")
    modes: tuple[DiffMode, ...] = ("detailed", "short")
    for mode in modes:
        lines = render_difference(d, mode)
        text = "\n".join(lines)
        assert "\x1b" not in text
        assert "\x9b" not in text
        assert all(len(line) < 700 for line in lines)


def test_control_characters_are_escaped_in_messages_too() -> None:
    finding = Finding(kind="output", message="bad \x1b[31mred\x1b[0m\nthing", suggestion="\x07")
    text = render_verdict(Verdict(findings=(finding,)), total_steps=None)
    assert "\x1b" not in text
    assert "bad \\x1b[31mred\\x1b[0m\\nthing" in text


def test_value_views_are_bounded() -> None:
    assert short_repr("x" * 200).endswith("…")
    assert len(short_repr("x" * 200)) == 80
    assert short_repr({"a": [1, None, True]}) == '{"a": [1, null, true]}'
    assert pretty("y" * 600) == "'" + "y" * 499 + "… (102 more chars)"


def test_huge_multiline_strings_render_in_bounded_lines() -> None:
    before = "\n".join(f"row {i}" for i in range(20_000))
    after = "\n".join(f"ROW {i}" for i in range(20_000))
    start = time.perf_counter()
    lines = render_difference(Difference(path=("output",), golden=before, actual=after))
    assert time.perf_counter() - start < 2.0
    assert len(lines) <= 45
    assert lines[-1] == "    ... (3961 more lines)"


def test_a_long_text_differing_late_is_shown_around_its_difference() -> None:
    golden, actual = "x" * 1000 + "refund" + "y" * 1160, "x" * 1000 + "return" + "y" * 1160
    lines = render_difference(Difference(path=("prompt",), golden=golden, actual=actual))
    assert len(lines) == 3
    assert all("refund" in line for line in (lines[0], lines[1]))
    assert all("return" in line for line in (lines[0], lines[2]))
    assert all(len(line) < 700 for line in lines)


def test_texts_that_print_alike_are_shown_with_escapes() -> None:
    composed, decomposed = "un caf\u00e9", "un cafe\u0301"
    (head,) = render_difference(
        Difference(path=("text",), golden=composed, actual=decomposed), mode="short"
    )
    assert "\\xe9" in head and "\\u0301" in head


def test_a_finding_at_the_comparison_limit_says_at_least_how_many_more() -> None:
    golden, actual = list(range(1000)), [i + 1 for i in range(1000)]
    found = differences(golden, actual, base=("output",))
    assert len(found) == 200  # counting stops there: 1000 differ
    cut = Finding(kind="output", message="output differs", differences=tuple(found))
    assert cut.differences_cut
    assert render_finding(cut, total_steps=None)[-1] == "  ... and at least 180 more differences"
    counted = Finding(kind="output", message="output differs", differences=tuple(found[:199]))
    assert not counted.differences_cut
    assert render_finding(counted, total_steps=None)[-1] == "  ... and 179 more differences"


def test_plainly_equal_tells_bools_from_numbers_and_numbers_by_value() -> None:
    assert plainly_equal({"a": [1, {"b": 2.0}], "s": "x"}, {"s": "x", "a": [1.0, {"b": 2}]})
    assert not plainly_equal({"a": [1, {"b": 1}]}, {"a": [1, {"b": True}]})
    assert not plainly_equal([False], [0.0])
    assert not plainly_equal({"q": True}, {"q": 1})
    nan, other_nan = float("nan"), float("nan")
    assert not plainly_equal([nan], [other_nan])  # left to json_equal, which says equal
    assert json_equal([nan], [other_nan])


@settings(max_examples=200, deadline=None)
@given(_json, _json)
def test_plainly_equal_implies_json_equal(golden: Any, actual: Any) -> None:
    if plainly_equal(golden, actual):
        assert json_equal(golden, actual)
    if json_equal(golden, actual) and golden == actual:
        assert plainly_equal(golden, actual)


def test_null_true_and_false_read_as_the_golden_writes_them() -> None:
    """A golden holds `true` and `null` (YAML or JSON), and a container beside them shows
    them so: a lone one is not Python's `True`/`None`."""
    diffs = differences(
        {"order": True, "ok": False, "note": None},
        {"order": "ORD-1", "ok": None, "note": {"ok": None, "sent": True}},
        base=("output",),
    )
    lines = [render_difference(d, "short")[0] for d in diffs]
    assert lines == [
        "output.order: true → 'ORD-1'",
        "output.ok: false → null",
        'output.note: null → {"ok": null, "sent": true}',
    ]


def test_diffs_run_one_at_a_time_with_the_garbage_collector_off(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """deepdiff reads its path strings back with `ast.literal_eval`, and CPython 3.11.7
    raised `SystemError: AST constructor recursion depth mismatch` when a collection set
    off while the AST was built ran a finalizer's code (an asyncio task that failed
    unobserved logs from its `__del__`: an update of sub-agent tasks, seen twice in
    tests/test_lanes.py). Diffs run with the collector off; one at a time, so that one
    thread's diff does not turn it back on under another's."""
    import gc
    import threading
    import time

    import deepdiff

    inside = 0
    most = 0
    guard = threading.Lock()
    real = deepdiff.DeepDiff

    collector: list[bool] = []

    def watched(*args: Any, **kwargs: Any) -> Any:
        nonlocal inside, most
        collector.append(gc.isenabled())
        with guard:
            inside += 1
            most = max(most, inside)
        try:
            time.sleep(0.02)  # long enough for the other threads to arrive
            return real(*args, **kwargs)
        finally:
            with guard:
                inside -= 1

    monkeypatch.setattr(deepdiff, "DeepDiff", watched)
    found: list[int] = []

    def one(i: int) -> None:
        golden = {"rows": [{"id": n, "v": n} for n in range(20)]}
        actual = {"rows": [{"id": n, "v": n + (n == i)} for n in range(20)]}
        found.append(len(differences(golden, actual)))

    threads = [threading.Thread(target=one, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert found == [1, 1, 1, 1]
    assert most == 1
    assert collector == [False] * 4
    assert gc.isenabled()
