"""Unit tests of opswald.expect: output, arguments, trajectory, budgets and state judging."""

from __future__ import annotations

import re
from typing import Any

import pytest

from opswald.expect import (
    Figures,
    ToolCallRef,
    args_differences,
    args_match,
    check_budgets,
    compare_output,
    compare_states,
    figures,
    judge_order,
    max_matching,
    resolve_args_rule,
)
from opswald.paths import parse, render
from opswald.session import (
    BudgetsExpect,
    OutputExpect,
    Session,
    StateExpect,
    ToolCallsExpect,
)
from opswald.verdict import MISSING, Difference, Finding

# --- output ------------------------------------------------------------------------------


def out(match: str, **kw: Any) -> OutputExpect:
    return OutputExpect.model_validate({"match": match, **kw})


def test_exact_output_passes_and_fails_with_field_differences() -> None:
    golden = {"answer": "Booked.", "id": "a1"}
    assert compare_output(golden, dict(golden), out("exact")) is None
    finding = compare_output(golden, {"answer": "Sorry.", "id": "a1"}, out("exact"))
    assert finding is not None
    assert finding.kind == "output"
    assert finding.failing
    assert finding.message == "output differs (match: exact)"
    assert finding.differences == (
        Difference(path=("output", "answer"), golden="Booked.", actual="Sorry."),
    )
    assert "add it to expect.output.ignore_paths" in finding.suggestion
    assert "answer" in finding.suggestion


def test_ignore_paths_take_a_path_as_the_failure_shows_it() -> None:
    """The failure names `output.refund.amount`; copied into ignore_paths it ignores that
    field, as the bare `refund.amount` does."""
    golden = {"refund": {"amount": 10, "id": "r1"}}
    actual = {"refund": {"amount": 12, "id": "r1"}}
    finding = compare_output(golden, actual, out("exact"))
    assert finding is not None
    assert [render(d.path) for d in finding.differences] == ["output.refund.amount"]
    for written in ("output.refund.amount", "refund.amount", "output.refund.*"):
        assert compare_output(golden, actual, out("exact", ignore_paths=[written])) is None
    # a key named `output` in the output is still reached by its full path
    assert (
        compare_output(
            {"output": {"x": 1}}, {"output": {"x": 2}}, out("exact", ignore_paths=["output.x"])
        )
        is None
    )


def test_exact_output_honours_ignore_paths() -> None:
    spec = out("exact", ignore_paths=["id", "items[*].ts"])
    golden = {"answer": "ok", "id": "a1", "items": [{"ts": 1, "n": 1}]}
    actual: dict[str, Any] = {"answer": "ok", "id": "b2", "items": [{"ts": 2, "n": 1}]}
    assert compare_output(golden, actual, spec) is None
    actual["items"][0]["n"] = 2
    finding = compare_output(golden, actual, spec)
    assert finding is not None
    assert [d.path for d in finding.differences] == [("output", "items", 0, "n")]


@pytest.mark.parametrize(
    ("last", "offered"), [("NAME 299", True), ("other", False)], ids=["case only", "reworded"]
)
def test_the_normalized_hint_looks_past_the_differences_listed(last: str, offered: bool) -> None:
    golden = [f"name {i}" for i in range(300)]
    actual = [*(f"NAME {i}" for i in range(299)), last]  # 300 differ; 200 are listed
    finding = compare_output(golden, actual, out("exact"))
    assert finding is not None and len(finding.differences) == 200
    assert ("use `match: normalized`" in finding.suggestion) is offered
    short = compare_output(golden[:3], ["NAME 0", "name  1", "x"][:3], out("exact"))
    assert short is not None and "match: normalized" not in short.suggestion
    accepted = compare_output(golden[:2], ["NAME 0", " name\n1"], out("exact"))
    assert accepted is not None and "use `match: normalized`" in accepted.suggestion


def test_json_subset_is_offered_for_added_keys_only() -> None:
    """json_subset allows extra keys, not extra list elements: an element inserted in a
    list (or added at its end) is not accepted by it, so it is not offered."""
    golden = {"answer": "ok", "items": [{"n": 1}, {"n": 2}]}
    added_key = compare_output(golden, {**golden, "extra": 1}, out("exact"))
    assert added_key is not None and "`match: json_subset`" in added_key.suggestion
    for items in ([{"n": 0}, {"n": 1}, {"n": 2}], [{"n": 1}, {"n": 2}, {"n": 3}]):
        finding = compare_output(golden, {**golden, "items": items}, out("exact"))
        assert finding is not None
        assert [d.golden for d in finding.differences] == [MISSING]
        assert "json_subset" not in finding.suggestion
        assert compare_output(golden, {**golden, "items": items}, out("json_subset"))


def test_bad_ignore_path_is_explained() -> None:
    with pytest.raises(ValueError, match="bad path"):  # a golden is rejected when loaded
        out("exact", ignore_paths=["a[x"])
    # a spec built in code without validation is still explained, not raised
    finding = compare_output("a", "a", OutputExpect.model_construct(ignore_paths=["a[x"]))
    assert finding is not None
    assert "bad expect.output.ignore_paths entry" in finding.message


def test_normalized_output_collapses_whitespace_and_case() -> None:
    spec = out("normalized")
    golden = {"text": "Your flight is\n  BOOKED.", "n": [" A ", 1]}
    assert compare_output(golden, {"text": "your flight is booked.", "n": ["a", 1]}, spec) is None
    finding = compare_output(golden, {"text": "Your flight is cancelled.", "n": ["a", 1]}, spec)
    assert finding is not None
    assert finding.message == "output differs (match: normalized)"
    # shown as they really are, not in their normalised form
    assert finding.differences == (
        Difference(
            path=("output", "text"),
            golden="Your flight is\n  BOOKED.",
            actual="Your flight is cancelled.",
        ),
    )


def test_contains_uses_value_or_the_golden_output() -> None:
    assert compare_output(None, "Refund approved: $20", out("contains", value="approved")) is None
    assert compare_output("approved", "Refund approved: $20", out("contains")) is None
    finding = compare_output(None, "Refund denied", out("contains", value="approved"))
    assert finding is not None
    assert (
        finding.message
        == "output differs (match: contains): the output does not contain 'approved'"
    )
    assert finding.differences == (
        Difference(path=("output",), golden="approved", actual="Refund denied"),
    )
    # dict outputs are searched as their JSON text
    assert compare_output(None, {"status": "ok"}, out("contains", value='"status": "ok"')) is None
    assert compare_output(None, "APPROVED", out("contains", value="approved")) is not None


def test_regex_output() -> None:
    spec = out("regex", value=r"refund of \$\d+")
    assert compare_output(None, "we issued a refund of $20 today", spec) is None
    finding = compare_output(None, "no refund", spec)
    assert finding is not None
    assert finding.message.startswith("output differs (match: regex): no match for")
    with pytest.raises(ValueError, match="match: regex needs `value:`"):
        out("regex")  # refused when the golden is loaded, with its line
    unchecked = OutputExpect.model_construct(match="regex", value=None, ignore_paths=[])
    missing = compare_output("golden", "x", unchecked)  # built without validation
    assert missing is not None
    assert "needs the pattern in expect.output.value" in missing.suggestion
    with pytest.raises(ValueError, match="not a valid regular expression"):
        out("regex", value="(unclosed")
    bad = compare_output(
        None, "x", OutputExpect.model_construct(match="regex", value="(unclosed", ignore_paths=[])
    )
    assert bad is not None
    assert "bad pattern '(unclosed'" in bad.message


def test_json_subset_output() -> None:
    golden = {"status": "booked", "flight": {"no": "LH1"}, "legs": [{"from": "A"}, {"from": "B"}]}
    actual: dict[str, Any] = {
        "status": "booked",
        "flight": {"no": "LH1", "gate": "B4"},
        "legs": [{"from": "A", "t": 1}, {"from": "B", "t": 2}],
        "extra": True,
    }
    assert compare_output(golden, actual, out("json_subset")) is None
    assert compare_output(None, actual, out("json_subset", value={"flight": {"no": "LH1"}})) is None
    # a JSON string output is parsed
    assert compare_output(None, '{"a": 1, "b": 2}', out("json_subset", value={"a": 1})) is None

    finding = compare_output(golden, {**actual, "flight": {"gate": "B4"}}, out("json_subset"))
    assert finding is not None
    assert finding.message == "output differs (match: json_subset)"
    assert finding.differences == (
        Difference(path=("output", "flight", "no"), golden="LH1", actual=MISSING),
    )
    # lists: same length, compared by index
    shorter = {**actual, "legs": [{"from": "A"}]}
    finding = compare_output(golden, shorter, out("json_subset"))
    assert finding is not None
    assert finding.differences == (
        Difference(path=("output", "legs", 1), golden={"from": "B"}, actual=MISSING),
    )
    longer = {**actual, "legs": [*actual["legs"], {"from": "C"}]}
    assert compare_output(golden, longer, out("json_subset")) is not None
    # a leg inserted before others is that one difference (the later legs moved, each
    # still holding the golden's keys), at its index in the actual list
    inserted = {**actual, "legs": [{"from": "A"}, {"from": "X"}, {"from": "B", "t": 2}]}
    finding = compare_output(golden, inserted, out("json_subset"))
    assert finding is not None
    assert finding.differences == (
        Difference(path=("output", "legs", 1), actual={"from": "X"}, shifts=True),
    )
    assert finding.differences[0].change == "inserted"
    # the first leg gone: removed, at its index in the golden list
    finding = compare_output(golden, {**actual, "legs": [{"from": "B"}]}, out("json_subset"))
    assert finding is not None
    assert finding.differences == (
        Difference(path=("output", "legs", 0), golden={"from": "A"}, shifts=True),
    )
    # lists that differ in more than one place: element by element, as before
    other = {**actual, "legs": [{"from": "Z"}, {"from": "B"}, {"from": "C"}]}
    finding = compare_output(golden, other, out("json_subset"))
    assert finding is not None
    assert [d.path for d in finding.differences] == [
        ("output", "legs", 0, "from"),
        ("output", "legs", 2),
    ]
    not_json = compare_output(None, "plain text", out("json_subset", value={"a": 1}))
    assert not_json is not None
    assert "the output is not JSON" in not_json.message


def test_ignore_output() -> None:
    assert compare_output({"a": 1}, "anything", out("ignore")) is None


# --- arguments ---------------------------------------------------------------------------


def test_exact_args_with_ignored_globs() -> None:
    ignore = [parse("request_id"), parse("filters.*.ts")]
    recorded = {"city": "Paris", "request_id": "r1", "filters": [{"ts": 1, "k": "a"}]}
    actual = {"city": "Paris", "request_id": "r2", "filters": [{"ts": 2, "k": "a"}]}
    assert args_match(recorded, actual, mode="exact", ignore=ignore)
    assert not args_match(recorded, actual, mode="exact", ignore=[])
    assert not args_match(recorded, {**actual, "extra": 1}, mode="exact", ignore=ignore)
    diffs = args_differences(
        recorded, {**actual, "city": "Rome"}, mode="exact", ignore=ignore, base=("input",), step=3
    )
    assert diffs == [Difference(path=("input", "city"), golden="Paris", actual="Rome", step=3)]


def test_subset_args() -> None:
    recorded = {"city": "Paris", "opts": {"class": "eco"}}
    assert args_match(
        recorded,
        {"city": "Paris", "opts": {"class": "eco", "x": 1}, "y": 2},
        mode="subset",
        ignore=[],
    )
    assert not args_match(recorded, {"city": "Paris", "opts": {}}, mode="subset", ignore=[])
    assert not args_match(
        recorded, {"city": "Rome", "opts": {"class": "eco"}}, mode="subset", ignore=[]
    )
    diffs = args_differences(recorded, {"city": "Rome", "extra": 1}, mode="subset", ignore=[])
    assert diffs == [
        Difference(path=("city",), golden="Paris", actual="Rome"),
        Difference(path=("opts",), golden={"class": "eco"}, actual=MISSING),
    ]
    # a list argument with one element more, in the middle: that element, not the rest
    listed = {"ids": [{"id": 1}, {"id": 2}, {"id": 3}]}
    sent = {"ids": [{"id": 1, "v": 0}, {"id": 7}, {"id": 2}, {"id": 3, "v": 0}]}
    diffs = args_differences(listed, sent, mode="subset", ignore=[], base=("input",), step=2)
    assert diffs == [Difference(path=("input", "ids", 1), actual={"id": 7}, step=2, shifts=True)]


def test_ignore_args() -> None:
    assert args_match({"a": 1}, {"b": 2}, mode="ignore", ignore=[])
    assert args_differences({"a": 1}, {"b": 2}, mode="ignore", ignore=[]) == []


def test_ignore_args_take_a_path_as_the_failure_shows_it() -> None:
    """The failure names the argument `input.amount`; copied into ignore_args it ignores
    that argument, as the bare `amount` does (globally and per tool)."""
    recorded, sent = {"amount": 10, "order": "A1"}, {"amount": 12, "order": "A1"}
    for spec in (
        {"ignore_args": ["input.amount"]},
        {"tools": {"refund": {"ignore_args": ["input.amount"]}}},
    ):
        mode, ignore = resolve_args_rule(ToolCallsExpect.model_validate(spec), "refund")
        assert args_match(recorded, sent, mode=mode, ignore=ignore)
    mode, ignore = resolve_args_rule(ToolCallsExpect.model_validate({}), "refund")
    diffs = args_differences(recorded, sent, mode=mode, ignore=ignore, base=("input",))
    assert [render(d.path) for d in diffs] == ["input.amount"]


def test_resolve_args_rule_applies_per_tool_overrides() -> None:
    spec = ToolCallsExpect.model_validate(
        {
            "args": "exact",
            "ignore_args": ["request_id"],
            "tools": {"search": {"args": "subset", "ignore_args": ["date"]}, "book": {}},
        }
    )
    assert resolve_args_rule(spec, "search") == ("subset", [("request_id",), ("date",)])
    assert resolve_args_rule(spec, "book") == ("exact", [("request_id",)])
    assert resolve_args_rule(spec, "other") == ("exact", [("request_id",)])
    with pytest.raises(ValueError, match="ignore_args for x"):
        resolve_args_rule(ToolCallsExpect.model_construct(ignore_args=["a[x"], tools={}), "x")


# --- trajectory --------------------------------------------------------------------------


def calls(*items: tuple[str, Any], first: int = 1) -> list[ToolCallRef]:
    return [ToolCallRef(step=first + i, tool=t, input=a) for i, (t, a) in enumerate(items)]


def order(mode: str, **kw: Any) -> ToolCallsExpect:
    return ToolCallsExpect.model_validate({"order": mode, **kw})


SEARCH = ("search_flights", {"to": "LIS"})
BOOK = ("book_flight", {"no": "TP1"})
PAY = ("pay", {"amount": 20})


def test_exact_order() -> None:
    golden = calls(SEARCH, BOOK, PAY, first=3)
    assert judge_order(golden, calls(SEARCH, BOOK, PAY), order("exact")) is None
    finding = judge_order(golden, calls(BOOK, SEARCH, PAY), order("exact"))
    assert finding is not None
    assert finding.kind == "tool_order"
    assert finding.message == (
        "tool calls out of order (order: exact): step 3 expected search_flights, "
        "the agent called book_flight"
    )
    assert (finding.step, finding.step_type, finding.name) == (3, "tool_call", "search_flights")
    assert finding.differences == (
        Difference(path=("tool",), golden="search_flights", actual="book_flight", step=3),
    )


def test_exact_order_reports_other_arguments_missing_and_extra_calls() -> None:
    golden = calls(SEARCH, BOOK)
    finding = judge_order(golden, calls(SEARCH, ("book_flight", {"no": "XX"})), order("exact"))
    assert finding is not None
    # the call came in its place: the headline says its arguments differ, not the order
    assert finding.message.startswith("called book_flight with other arguments (order: exact):")
    assert "out of order" not in finding.message
    assert "step 2 expected book_flight with the recorded arguments" in finding.message
    assert finding.differences == (
        Difference(path=("input", "no"), golden="TP1", actual="XX", step=2),
    )
    short = judge_order(golden, calls(SEARCH), order("exact"))
    assert short is not None
    assert short.message.endswith("step 2 expected book_flight, the agent made only 1 tool call")
    extra = judge_order(golden, calls(SEARCH, BOOK, PAY), order("exact"))
    assert extra is not None
    assert extra.step is None and extra.name == "pay"
    assert "the agent called pay (its step 3) after the last recorded call" in extra.message


def test_in_order_allows_extra_calls_in_between() -> None:
    golden = calls(SEARCH, PAY)
    assert judge_order(golden, calls(BOOK, SEARCH, BOOK, PAY, BOOK), order("in_order")) is None
    finding = judge_order(golden, calls(PAY, SEARCH), order("in_order"))
    assert finding is not None
    assert finding.message == (
        "tool calls out of order (order: in_order): step 2 expected pay, "
        "the agent called it only earlier, not after step 1's call"
    )
    never = judge_order(golden, calls(SEARCH), order("in_order"))
    assert never is not None
    assert "step 2 expected pay, the agent never called it after step 1's call" in never.message


def test_any_order_accepts_permutations_only() -> None:
    golden = calls(SEARCH, BOOK, PAY)
    assert judge_order(golden, calls(PAY, SEARCH, BOOK), order("any_order")) is None
    missing = judge_order(golden, calls(PAY, SEARCH), order("any_order"))
    assert missing is not None
    assert missing.message == (
        "tool calls differ (order: any_order): step 2 expected book_flight, "
        "the agent never called it"
    )
    extra = judge_order(golden, calls(PAY, SEARCH, BOOK, BOOK), order("any_order"))
    assert extra is not None
    assert "the agent called book_flight (its step 4) which matches no recorded call" in (
        extra.message
    )
    twice = judge_order(calls(BOOK, BOOK), calls(BOOK), order("any_order"))
    assert twice is not None
    assert "the agent called it fewer times (1) than the golden records" in twice.message


# Recorded (subset) arguments for which first-fit assignment fails: the loose golden call
# grabs the only actual call the strict one could use.
LOOSE = ("search", {"city": "Paris"})
STRICT = ("search", {"city": "Paris", "date": "05-01"})
A_MAY = ("search", {"city": "Paris", "date": "05-01"})
A_JUNE = ("search", {"city": "Paris", "date": "06-01"})


def test_any_order_uses_a_maximum_matching_not_first_fit() -> None:
    spec = order("any_order", args="subset")
    golden = calls(LOOSE, STRICT)
    actual = calls(A_MAY, A_JUNE)
    assert judge_order(golden, actual, spec) is None
    # first fit would pair LOOSE with A_MAY and leave STRICT without a partner
    assert max_matching(
        golden, actual, lambda g, a: args_match(g.input, a.input, mode="subset", ignore=[])
    ) == [1, 0]
    assert judge_order(golden, calls(A_JUNE, A_JUNE), spec) is not None


def test_max_matching_needs_long_augmenting_paths() -> None:
    # left i may take right i or i+1; the last left only right 0: one chain through all
    n = 500
    left = calls(*[("t", i) for i in range(n)])
    right = calls(*[("t", i) for i in range(n)])

    def ok(g: ToolCallRef, a: ToolCallRef) -> bool:
        return a.input == 0 if g.input == n - 1 else a.input in (g.input, g.input + 1)

    assert max_matching(left, right, ok) == [*range(1, n), 0]


def test_subset_and_superset_orders() -> None:
    golden = calls(SEARCH, BOOK, PAY)
    assert judge_order(golden, calls(PAY, SEARCH), order("subset")) is None
    extra = judge_order(golden, calls(PAY, ("refund", {})), order("subset"))
    assert extra is not None
    assert extra.message == (
        "tool calls differ (order: subset): the agent called refund (its step 2) "
        "which matches no recorded call"
    )
    assert judge_order(golden, calls(PAY, BOOK, ("refund", {}), SEARCH), order("superset")) is None
    lacking = judge_order(golden, calls(PAY, ("book_flight", {"no": "X"})), order("superset"))
    assert lacking is not None
    assert lacking.message == (
        "tool calls differ (order: superset): step 1 expected search_flights, "
        "the agent never called it"
    )
    other = judge_order(calls(BOOK), calls(("book_flight", {"no": "X"})), order("superset"))
    assert other is not None
    assert "the agent called it only with other arguments (e.g. its step 1)" in other.message
    assert other.differences == (
        Difference(path=("input", "no"), golden="TP1", actual="X", step=1),
    )


def test_order_uses_per_tool_argument_rules() -> None:
    spec = order("exact", tools={"book_flight": {"ignore_args": ["no"]}})
    assert judge_order(calls(BOOK), calls(("book_flight", {"no": "ZZ"})), spec) is None
    bad = judge_order(
        calls(BOOK),
        calls(BOOK),
        ToolCallsExpect.model_construct(order="exact", args="exact", ignore_args=["[x"], tools={}),
    )
    assert bad is not None
    assert "ignore_args" in bad.message


# --- budgets -----------------------------------------------------------------------------


def session(steps: list[dict[str, Any]], **kw: Any) -> Session:
    numbered = [{"step": i, **s} for i, s in enumerate(steps, start=1)]
    return Session.model_validate({"steps": numbered, **kw})


def llm(cost: float | None = None, **usage: int) -> dict[str, Any]:
    return {"type": "llm_call", "cost": cost, "usage": usage or None, "duration_ms": 100}


TOOL = {"type": "tool_call", "tool": "t", "duration_ms": 5}


def test_figures() -> None:
    s = session(
        [
            llm(0.01, input_tokens=10, output_tokens=5),
            TOOL,
            llm(0.002, input_tokens=3, output_tokens=2, total_tokens=7),
            {"type": "state"},
        ]
    )
    f = figures(s)
    assert f.cost == pytest.approx(0.012)
    assert f == Figures(
        cost=f.cost,
        input_tokens=13,
        output_tokens=7,
        total_tokens=22,
        duration_ms=205.0,
        llm_calls=2,
        tool_calls=1,
        steps=4,
    )
    assert figures(session([llm(), TOOL])).cost is None
    assert figures(session([llm()], metadata={"duration_ms": 1234})).duration_ms == 1234.0
    assert figures(session([llm()], metadata={"duration_ms": "x"})).duration_ms == 100.0


def figs(**kw: Any) -> Figures:
    base: dict[str, Any] = dict(
        cost=0.01,
        input_tokens=100,
        output_tokens=50,
        total_tokens=150,
        duration_ms=1000.0,
        llm_calls=2,
        tool_calls=3,
        steps=6,
    )
    return Figures(**{**base, **kw})


def test_absolute_budgets() -> None:
    spec = BudgetsExpect(cost=0.01, total_tokens=150, tool_calls="<=3", duration_ms="1000")
    assert check_budgets(spec, figs(), None) == []
    found = check_budgets(
        spec, figs(cost=0.0123, total_tokens=151, tool_calls=4, duration_ms=1000.5), None
    )
    assert [f.message for f in found] == [
        "budget exceeded: cost $0.0123 > $0.0100",
        "budget exceeded: total_tokens 151 > 150",
        "budget exceeded: duration_ms 1000.5 ms > 1000 ms",
        "budget exceeded: tool_calls 4 > 3",
    ]
    assert all(f.kind == "budget" and f.failing for f in found)
    assert "raise expect.budgets.cost" in found[0].suggestion
    assert check_budgets(BudgetsExpect(cost="$0.02"), figs(), None) == []


def test_relative_budgets() -> None:
    spec = BudgetsExpect(cost="+20%", total_tokens="+10%", llm_calls="-50%")
    golden = figs(cost=0.0083, total_tokens=1001, llm_calls=2)
    assert check_budgets(spec, figs(cost=0.0099, total_tokens=1101, llm_calls=1), golden) == []
    found = check_budgets(spec, figs(cost=0.0123, total_tokens=1102, llm_calls=2), golden)
    assert [f.message for f in found] == [
        "budget exceeded: cost $0.0123 > $0.0100 (limit +20% of recorded $0.0083)",
        "budget exceeded: total_tokens 1102 > 1101.1 (limit +10% of recorded 1001)",
        "budget exceeded: llm_calls 2 > 1 (limit -50% of recorded 2)",
    ]


ARABIC_12 = "\u0661\u0662"  # digits of another script, which float() reads as 12


@pytest.mark.parametrize(
    "budget", ["+1e999%", "1e400", "<=1e999", "$1e309", ARABIC_12, "+1\u0660%"]
)
def test_a_budget_that_is_no_finite_number_is_refused_at_load(budget: str) -> None:
    """An infinite limit (a number too big for a float) or digits of another script are no
    budget: refused where the golden is loaded, not a NaN limit (+inf% of 0) at run time."""
    with pytest.raises(ValueError, match="budget"):
        BudgetsExpect(llm_calls=budget)


def test_a_huge_relative_budget_is_checked_without_overflow() -> None:
    """+1e300% of a figure too big for the product leaves no limit; of 0 it is 0."""
    spec = BudgetsExpect(llm_calls="+1e300%", total_tokens="+1e300%")
    golden = figs(llm_calls=0, total_tokens=10**300)
    assert check_budgets(spec, figs(llm_calls=3, total_tokens=10**9), golden) == [
        Finding(
            kind="budget",
            message="budget exceeded: llm_calls 3 > 0 (limit +1e300% of recorded 0)",
            suggestion="if this is intended, raise expect.budgets.llm_calls; "
            "--opswald-update never blesses a budget violation",
            name="llm_calls",
        )
    ]


def test_budgets_that_cannot_be_checked() -> None:
    no_golden = check_budgets(BudgetsExpect(cost="+20%"), figs(), None)
    assert [f.message for f in no_golden] == [
        "budget cost +20% has no recorded figure to compare with"
    ]
    no_recorded = check_budgets(BudgetsExpect(cost="+20%"), figs(), figs(cost=None))
    assert no_recorded[0].message == "budget cost +20% has no recorded figure to compare with"
    incomplete = check_budgets(
        BudgetsExpect(cost="+20%"), figs(), figs(cost=0.005, unpriced_calls=1)
    )
    assert [f.message for f in incomplete] == [
        "budget cost +20% has no recorded figure to compare with "
        "(the golden's cost is incomplete: 1 model call without a cost)"
    ]
    no_cost = check_budgets(BudgetsExpect(cost=1), figs(cost=None), None)
    assert no_cost[0].message == "budget cost cannot be checked: no step of the run reports a cost"
    with pytest.raises(ValueError, match="cannot read '20%' as a budget"):
        BudgetsExpect(cost="20%")  # refused when the golden is loaded, with its line
    unchecked = BudgetsExpect.model_construct(steps="20 percent", cost="20%")
    bad = check_budgets(unchecked, figs(), figs())
    assert [f.message for f in bad] == [
        "budget cost: cannot read '20%'",
        "budget steps: cannot read '20 percent'",
    ]
    assert '"+20%"' in bad[0].suggestion and "<=0.05" in bad[0].suggestion
    # +inf% of a recorded 0 is NaN: unread, not a crash drawing the limit
    endless = BudgetsExpect.model_construct(llm_calls="+1e999%", cost=float("inf"))
    assert [f.message for f in check_budgets(endless, figs(), figs(llm_calls=0))] == [
        "budget cost: cannot read inf",
        "budget llm_calls: cannot read '+1e999%'",
    ]


# --- state -------------------------------------------------------------------------------


def state(**snapshot: Any) -> dict[str, Any]:
    return {"type": "state", **snapshot}


GOLDEN_STATES = session(
    [
        TOOL,
        state(memory={"user_preference": "aisle", "seen": 1}, timestamp="t1"),
        TOOL,
        state(variables={"n": 1}, cart=[1]),
    ]
)


def test_state_report_mode_is_not_failing() -> None:
    actual = session(
        [
            state(memory={"user_preference": "window", "seen": 1}, timestamp="t2", duration_ms=9),
            state(variables={"n": 1}, cart=[1, 2]),
        ]
    )
    findings = compare_states(GOLDEN_STATES, actual, StateExpect())
    assert [(f.kind, f.step, f.failing) for f in findings] == [
        ("state", 2, False),
        ("state", 4, False),
    ]
    assert findings[0].message == "state snapshot differs (state: report)"
    assert findings[0].differences == (
        Difference(path=("memory", "user_preference"), golden="aisle", actual="window", step=2),
    )
    assert findings[1].differences == (
        Difference(path=("cart", 1), golden=MISSING, actual=2, step=4),
    )


def test_state_exact_mode_fails_and_ignores_step_metadata() -> None:
    same = session(
        [
            state(
                memory={"user_preference": "aisle", "seen": 1}, timestamp="other", description="d"
            ),
            state(variables={"n": 1}, cart=[1]),
        ]
    )
    assert compare_states(GOLDEN_STATES, same, StateExpect(mode="exact")) == []
    changed = session(
        [state(memory={"user_preference": "aisle", "seen": 2}), state(variables={"n": 1}, cart=[1])]
    )
    findings = compare_states(GOLDEN_STATES, changed, StateExpect.model_validate("exact"))
    assert [(f.step, f.failing) for f in findings] == [(2, True)]
    assert findings[0].message == "state snapshot differs (state: exact)"
    assert findings[0].suggestion.endswith("expect.state: [memory.seen]")  # what changed


def test_state_paths_mode_fails_only_on_watched_paths() -> None:
    spec = StateExpect.model_validate(["memory.user_preference"])
    seen_only = session(
        [state(memory={"user_preference": "aisle", "seen": 2}), state(variables={"n": 1}, cart=[1])]
    )
    findings = compare_states(GOLDEN_STATES, seen_only, spec)
    assert [(f.failing, f.message) for f in findings] == [
        (False, "state snapshot differs (state: paths, not watched)")
    ]
    both = session(
        [
            state(memory={"user_preference": "window", "seen": 2}),
            state(variables={"n": 1}, cart=[1]),
        ]
    )
    findings = compare_states(GOLDEN_STATES, both, spec)
    assert [(f.failing, [d.path for d in f.differences]) for f in findings] == [
        (True, [("memory", "user_preference")]),
        (False, [("memory", "seen")]),
    ]
    # the whole memory gone: the watched value went with it
    gone = session([state(variables={"x": 1}), state(variables={"n": 1}, cart=[1])])
    findings = compare_states(GOLDEN_STATES, gone, spec)
    assert findings[0].failing
    assert ("memory",) in [d.path for d in findings[0].differences]


def test_state_paths_mode_does_not_fail_when_the_watched_value_is_unchanged() -> None:
    golden = session([state(memory={"other": 1})])
    actual = session([state()])  # memory gone, but it never had user_preference
    findings = compare_states(
        golden, actual, StateExpect(mode="paths", paths=["memory.user_preference"])
    )
    assert [f.failing for f in findings] == [False, False]
    assert findings[0].message.startswith("expect.state watches memory.user_preference, which")


@pytest.mark.parametrize(
    ("watched", "failing"),
    [("cart[1]", True), ("cart[2].sku", True), ("cart[0]", False), ("cart[0].sku", False)],
)
def test_an_element_inserted_before_a_watched_index_moved_it(watched: str, failing: bool) -> None:
    """An item inserted at cart[1] is one difference, and the items after it moved: the
    value at a watched cart[2] is another than the golden's."""
    items = [{"sku": "a"}, {"sku": "b"}, {"sku": "c"}]
    golden = session([state(cart=items)])
    actual = session([state(cart=[items[0], {"sku": "new"}, *items[1:]])])
    (finding,) = compare_states(golden, actual, StateExpect(mode="paths", paths=[watched]))
    assert [d.change for d in finding.differences] == ["inserted"]
    assert finding.failing is failing


def test_missing_and_extra_snapshots_are_differences() -> None:
    one = session([state(memory={"user_preference": "aisle", "seen": 1})])
    findings = compare_states(GOLDEN_STATES, one, StateExpect(mode="exact"))
    assert len(findings) == 1
    assert findings[0].step == 4
    assert findings[0].message == (
        "state snapshot 2 missing: the run recorded none in its place (state: exact)"
    )
    assert findings[0].differences == (
        Difference(path=(), golden={"variables": {"n": 1}, "cart": [1]}, actual=MISSING, step=4),
    )
    assert findings[0].suggestion.endswith("expect.state: [variables]"), "not [step 4]"
    three = session(
        [
            TOOL,
            state(memory={"user_preference": "aisle", "seen": 1}),
            TOOL,
            state(variables={"n": 1}, cart=[1]),
            state(memory={"x": 1}),
        ]
    )
    findings = compare_states(GOLDEN_STATES, three, StateExpect())
    assert [(f.step, f.failing, f.run_step) for f in findings] == [(5, False, True)]
    # its step (5) is the run's: the headline says so (`step 5 of this run · ...`)
    assert findings[0].message == (
        "extra state snapshot 3: the golden has none in its place (state: report)"
    )
    assert findings[0].differences[0].golden is MISSING


GOLDEN_PHASES = session(
    [
        state(variables={"phase": "start"}),
        TOOL,
        state(variables={"phase": "middle"}),
        state(variables={"phase": "done"}),
    ]
)


@pytest.mark.parametrize("matched", [{1: 2}, None], ids=["served", "no-record"])
@pytest.mark.parametrize("mode", ["exact", "report"])
def test_a_snapshot_gone_moves_no_later_snapshot(matched: dict[int, int] | None, mode: str) -> None:
    """The run no longer takes the first snapshot: that one is missing, and the others
    still face their own (between the calls the replay served, or, with no record of
    them, between the calls lined up)."""
    actual = session(
        [TOOL, state(variables={"phase": "middle"}), state(variables={"phase": "done"})]
    )
    findings = compare_states(GOLDEN_PHASES, actual, StateExpect.model_validate(mode), matched)
    assert [(f.step, f.run_step, f.failing) for f in findings] == [(1, False, mode == "exact")]
    assert findings[0].message == (
        f"state snapshot 1 missing: the run recorded none in its place (state: {mode})"
    )
    assert findings[0].differences == (
        Difference(path=(), golden={"variables": {"phase": "start"}}, actual=MISSING, step=1),
    )


def test_snapshots_pair_by_the_golden_step_each_served_call_answered_as() -> None:
    """Two tools the run made in the other order (both served): the snapshot after them
    still faces the golden's, and one the run took between them stands alone."""
    golden = session(
        [
            {"type": "tool_call", "tool": "a"},
            {"type": "tool_call", "tool": "b"},
            state(memory={"n": 2}),
        ]
    )
    actual = session(
        [
            {"type": "tool_call", "tool": "b"},
            state(memory={"n": 1}),
            {"type": "tool_call", "tool": "a"},
            state(memory={"n": 2}),
        ]
    )
    findings = compare_states(golden, actual, StateExpect(mode="exact"), {1: 2, 3: 1})
    assert [(f.step, f.run_step) for f in findings] == [(2, True)]
    assert findings[0].message.startswith("extra state snapshot 1: the golden has none")


def test_bad_state_path_is_explained() -> None:
    findings = compare_states(
        GOLDEN_STATES, GOLDEN_STATES, StateExpect.model_construct(mode="paths", paths=["[x"])
    )
    assert len(findings) == 1 and "bad expect.state path" in findings[0].message


def test_paths_mode_judges_a_missing_snapshot_by_its_watched_values() -> None:
    spec = StateExpect(mode="paths", paths=["cart"])
    one = session([state(memory={"user_preference": "aisle", "seen": 1})])
    findings = compare_states(GOLDEN_STATES, one, spec)
    assert [(f.step, f.failing) for f in findings] == [(4, True)]
    assert findings[0].message == (
        "state snapshot 2 missing: the run recorded none in its place at watched paths "
        "(state: paths)"
    )


def test_a_relative_limit_on_a_count_is_shown_as_it_is() -> None:
    (finding,) = check_budgets(
        BudgetsExpect(total_tokens="-10%"), figs(total_tokens=5), figs(total_tokens=5)
    )
    assert finding.message == "budget exceeded: total_tokens 5 > 4.5 (limit -10% of recorded 5)"
    assert "increase" not in finding.suggestion


@pytest.mark.parametrize(
    ("budget", "over", "shown"),
    [
        ({"cost": 0.000718}, {"cost": 0.000719}, "cost $0.000719 > $0.000718"),
        ({"cost": 1.0}, {"cost": 1.00001}, "cost $1.00001 > $1"),
        ({"duration_ms": 0.0001}, {"duration_ms": 0.3}, "duration_ms 0.3 ms > 0.0001 ms"),
        ({"duration_ms": 1000}, {"duration_ms": 1000.04}, "duration_ms 1000.04 ms > 1000 ms"),
    ],
)
def test_a_figure_over_its_budget_never_reads_as_equal_to_it(
    budget: dict[str, Any], over: dict[str, Any], shown: str
) -> None:
    (found,) = check_budgets(BudgetsExpect(**budget), figs(**over), None)
    assert found.message == f"budget exceeded: {shown}"


def test_an_output_that_changed_kind_is_hinted_at_what_would_accept_it() -> None:
    finding = compare_output({"answer": "Refunded"}, None, out("exact"))
    assert finding is not None and finding.suggestion is not None
    assert "but `ignore` accepts that" in finding.suggestion
    assert "--opswald-update" in finding.suggestion
    assert compare_output({"answer": "Refunded"}, None, out("ignore")) is None  # it does


def test_a_snapshot_that_crossed_a_concurrent_call_still_faces_its_own() -> None:
    """Concurrent tools: the run took the snapshot before the second tool finished, the
    golden after. Paired between served calls they stand apart (one extra, one missing);
    as those two are each other's, they face each other: nothing differs. A snapshot
    gone with none extra stays missing."""
    golden = session(
        [
            {"type": "tool_call", "tool": "a"},
            {"type": "tool_call", "tool": "b"},
            state(memory={"n": 2}),
        ]
    )
    actual = session(
        [
            {"type": "tool_call", "tool": "a"},
            state(memory={"n": 2}),
            {"type": "tool_call", "tool": "b"},
        ]
    )
    for matched in ({1: 1, 3: 2}, None):
        assert compare_states(golden, actual, StateExpect(mode="exact"), matched) == []
    changed = session(
        [
            {"type": "tool_call", "tool": "a"},
            state(memory={"n": 3}),
            {"type": "tool_call", "tool": "b"},
        ]
    )
    findings = compare_states(golden, changed, StateExpect(mode="exact"), {1: 1, 3: 2})
    assert [(f.step, f.message) for f in findings] == [(3, "state snapshot differs (state: exact)")]


@pytest.mark.parametrize(
    ("golden", "actual"),
    [
        ({"items": ["row0", "row1"]}, {"items": ["new", "row0", "row1"]}),  # inserted
        ({"items": ["row0", "row1", "row2"]}, {"items": ["row1", "row2"]}),  # removed
        (["row0", "row1"], ["new", "row0", "row1"]),  # the output is the list
    ],
    ids=["inserted", "removed", "top-level list"],
)
def test_the_ignore_paths_hint_for_a_shifted_list_element_names_a_path_that_accepts_it(
    golden: Any, actual: Any
) -> None:
    """An index would not do: the elements after an inserted or removed one moved, and
    ignoring `items[0]` drops a different element on each side."""
    finding = compare_output(golden, actual, out("exact"))
    assert finding is not None
    assert finding.differences[0].change in ("inserted", "removed")
    named = re.search(r"add (\S+) to expect\.output\.ignore_paths", finding.suggestion)
    assert named is not None, finding.suggestion
    assert compare_output(golden, actual, out("exact", ignore_paths=[named[1]])) is None


def test_lone_snapshots_far_apart_stay_apart_as_the_viewer_shows_them() -> None:
    """A fork whose run took one snapshot more at its start and stopped a call before the
    golden's second snapshot: the run's first snapshot is extra and the golden's second is
    missing, as `opswald diff` and the viewer's rows show them. Lone snapshots face each
    other only across calls that face each other (a concurrent call crossed), never
    across a snapshot or a call one side lacks."""
    llm = {"type": "llm_call", "model": "m"}
    golden = session(
        [
            {"type": "user_input", "content": "hi"},
            llm,
            {"type": "tool_call", "tool": "lookup"},
            state(variables={"turn": 0}),
            llm,
            {"type": "tool_call", "tool": "convert"},
            state(variables={"turn": 1, "tools": ["lookup", "convert"]}),
            llm,
            state(memory={"answer": "warm"}),
        ]
    )
    actual = session(
        [
            state(variables={"extra": True}),
            {"type": "user_input", "content": "hi"},
            llm,
            {"type": "tool_call", "tool": "lookup"},
            state(variables={"turn": 0}),
            llm,
            state(memory={"answer": "cold"}),
        ]
    )
    for matched in (None, {2: 1, 3: 2, 4: 3, 6: 5}):
        findings = compare_states(golden, actual, StateExpect(mode="exact"), matched)
        assert [(f.step, f.run_step, f.message) for f in findings] == [
            (1, True, "extra state snapshot 1: the golden has none in its place (state: exact)"),
            (7, False, "state snapshot 2 missing: the run recorded none in its place "
             "(state: exact)"),
            (9, False, "state snapshot differs (state: exact)"),
        ]  # fmt: skip


def _costless(session_: Session) -> Finding:
    (finding,) = check_budgets(BudgetsExpect(cost=1), figures(session_), None)
    return finding


CUT = {"attributes": {"stream_cut": "closed early"}}


def test_a_cost_unknown_for_want_of_usage_says_so_not_that_the_model_is_unpriced() -> None:
    """A priced model's call that reported no usage has no cost because there is nothing to
    price, not for want of a price: the hint asks for usage, not for prices."""
    finding = _costless(session([{**llm(), "model": "gpt-4o-mini"}]))
    assert finding.message == (
        "budget cost cannot be checked: no step of the run reports a cost "
        "(step 1: its response reported no usage to price)"
    )
    assert finding.suggestion is not None
    assert "report usage" in finding.suggestion and "include_usage" in finding.suggestion
    assert "configure prices" not in finding.suggestion


def test_a_cost_unknown_for_a_stream_cut_short_does_not_suggest_token_budgets() -> None:
    """Token budgets count the cut step's tokens as 0: no way around an unknown cost."""
    finding = _costless(session([{**llm(), **CUT}]))
    assert "step 1: its stream was closed early" in finding.message
    assert finding.suggestion is not None
    assert "token" not in finding.suggestion and "remove the cost budget" in finding.suggestion


def test_a_cost_unknown_for_each_reason_names_each_one() -> None:
    """An unpriced model's call (usage, no cost), one without usage and a cut stream: each
    is named; a price would help one of them, so the hint still asks for it."""
    unpriced = {**llm(input_tokens=5), "model": "acme-9"}
    mixed = session([unpriced, llm(0.5), llm(), {**llm(), **CUT}, llm(), unpriced])
    finding = _costless(mixed)
    assert finding.message == (
        "budget cost cannot be checked: 5 of the run's 6 model calls have no cost: it cost at "
        "least $0.5000, how much more is unknown (steps 1 and 6: no price for model "
        "'acme-9'; steps 3 and 5: their responses reported no usage to price; step 4: its "
        "stream was closed early: the cost of an answer cut short is not known)"
    )
    assert finding.suggestion is not None and "configure prices" in finding.suggestion
