"""Judging an actual session against its golden: output, tool calls, budgets, state."""

from opswald.expect.args import ArgsMode, args_differences, args_match, resolve_args_rule
from opswald.expect.budgets import Figures, check_budgets, figures, parse_budget
from opswald.expect.output import compare_output
from opswald.expect.state import compare_states, snapshot_data
from opswald.expect.subset import is_subset, subset_differences
from opswald.expect.trajectory import ToolCallRef, judge_order, max_matching

__all__ = [
    "ArgsMode",
    "Figures",
    "ToolCallRef",
    "args_differences",
    "args_match",
    "check_budgets",
    "compare_output",
    "compare_states",
    "figures",
    "is_subset",
    "judge_order",
    "max_matching",
    "parse_budget",
    "resolve_args_rule",
    "snapshot_data",
    "subset_differences",
]
