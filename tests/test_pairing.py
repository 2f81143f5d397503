"""Unit tests of opswald.pairing: which step of one session faces which of another."""

from __future__ import annotations

from typing import Any

from opswald.pairing import step_pairs
from opswald.session import AnyStep, Session


def steps(*items: dict[str, Any]) -> list[AnyStep]:
    numbered = [{"step": i, **s} for i, s in enumerate(items, start=1)]
    return Session.model_validate({"steps": numbered}).step_list


def call(x: int = 1) -> dict[str, Any]:
    return {"type": "tool_call", "tool": "t", "input": {"x": x}}


def snap(n: int, **more: Any) -> dict[str, Any]:
    return {"type": "state", "memory": {"n": n, **more}}


def test_one_of_back_to_back_snapshots_removed_is_that_one_alone() -> None:
    golden = steps(call(), snap(1), snap(2), snap(3), call(2))
    actual = steps(call(), snap(2), snap(3), call(2))
    assert step_pairs(golden, actual) == [(1, 1), (2, 0), (3, 2), (4, 3), (5, 4)]
    assert step_pairs(golden, actual, {1: 1, 4: 5}) == [(1, 1), (2, 0), (3, 2), (4, 3), (5, 4)]


def test_one_snapshot_inserted_among_back_to_back_ones_is_that_one_alone() -> None:
    golden = steps(call(), snap(1), snap(3), call(2))
    actual = steps(call(), snap(1), snap(2), snap(3), call(2))
    assert step_pairs(golden, actual) == [(1, 1), (2, 2), (0, 3), (3, 4), (4, 5)]


def test_changed_snapshots_face_the_most_similar_in_order() -> None:
    """None equal: the golden's first is gone, the other two changed a little; the two
    left face the two most like them, not the first two."""
    golden = steps(snap(1, a=1, b=1, c=1), snap(2, a=2, b=2), snap(3, a=3, b=3))
    actual = steps(snap(2, a=2, b=9), snap(3, a=3, b=9))
    assert step_pairs(golden, actual) == [(1, 0), (2, 1), (3, 2)]
    # the reverse: the run took one more, first
    assert step_pairs(actual, golden) == [(0, 1), (1, 2), (2, 3)]


def test_as_many_snapshots_on_each_side_pair_in_order_even_when_all_changed() -> None:
    golden = steps(call(), snap(1), snap(2), call(2))
    actual = steps(call(), snap(5), snap(6), call(2))
    assert step_pairs(golden, actual) == [(1, 1), (2, 2), (3, 3), (4, 4)]


def test_equal_snapshots_pair_first_and_the_rest_in_order_around_them() -> None:
    golden = steps(snap(1), snap(2), snap(3), snap(4))
    actual = steps(snap(7), snap(3), snap(8))
    # snapshot 3 faces its equal; of 1 and 2, the first faces 7 (nothing to choose by)
    assert step_pairs(golden, actual) == [(1, 1), (2, 0), (3, 2), (4, 3)]


def test_a_lone_call_among_snapshots_stands_alone_and_they_still_pair_by_content() -> None:
    golden = steps(call(), snap(1), call(9), snap(2), call(2))
    actual = steps(call(), snap(2), call(2))
    assert step_pairs(golden, actual) == [(1, 1), (2, 0), (3, 0), (4, 2), (5, 3)]


def test_snapshot_timestamps_do_not_make_them_differ() -> None:
    golden = steps({**snap(1), "timestamp": "t1"}, {**snap(2), "timestamp": "t2"})
    actual = steps({**snap(2), "timestamp": "t9", "duration_ms": 3})
    assert step_pairs(golden, actual) == [(1, 0), (2, 1)]


def test_back_to_back_snapshots_taken_in_another_order_pair_in_order() -> None:
    """A swap: paired by content, each would face its equal and the change of order (the
    state at the next call is another) would show nowhere; in order, both places differ."""
    golden = steps(call(), snap(1), snap(2), call(2))
    actual = steps(call(), snap(2), snap(1), call(2))
    assert step_pairs(golden, actual) == [(1, 1), (2, 2), (3, 3), (4, 4)]
    golden = steps(snap(1), snap(2), snap(3), call())
    actual = steps(snap(3), snap(1), call())  # 2 gone, 3 moved first
    assert step_pairs(golden, actual) == [(1, 1), (2, 2), (3, 0), (4, 3)]
