"""Which lines of a golden hold comments, and which of them a rewrite can keep."""

from __future__ import annotations

from opswald.comments import carry_comments, comment_lines

HEADER = "# yaml-language-server: $schema=https://opswald.dev/schema/golden-v1.json\n"


def test_a_hash_is_a_comment_only_outside_the_yaml_tokens() -> None:
    text = (
        "a: 'x # quoted'  # one\n"  # 0
        'b: "y # quoted"\n'  # 1
        "c: d#e\n"  # 2: no space before it: part of the plain scalar
        "e: |  # on the header of a literal block\n"  # 3
        "  text # in the block\n"  # 4
        "  # still the block\n"  # 5
        "# at the start of a line\n"  # 6
        "f: [1, 2]  # after a flow list\n"  # 7
        "g: >-\n"  # 8
        "  folded # text\n"  # 9
    )
    assert comment_lines(text) == {0: 17, 3: 6, 6: 0, 7: 11}


def test_comments_stay_on_the_parts_written_unchanged() -> None:
    old = (
        HEADER + "# owned by the billing team\n"
        "name: one  # the name\n"
        "steps:\n"
        "  # the lookup\n"
        "  - step: 1\n"
        "    tool: a\n"
        "    # about its output, indented as its fields\n"
        "  - step: 2\n"
        "    tool: b  # will change\n"
        "expect: {budgets: {steps: 5}}  # hand-formatted\n"
    )
    new = (
        HEADER + "name: one\n"
        "steps:\n"
        "  - step: 1\n"
        "    tool: a\n"
        "  - step: 2\n"
        "    tool: c\n"
        "expect:\n"
        "  budgets:\n"
        "    steps: 5\n"
    )
    carried = carry_comments(old, new)
    assert carried.text == (
        HEADER + "# owned by the billing team\n"
        "name: one  # the name\n"
        "steps:\n"
        "  # the lookup\n"
        "  - step: 1\n"
        "    tool: a\n"
        "    # about its output, indented as its fields\n"
        "  - step: 2\n"
        "    tool: c\n"
        "expect:\n"
        "  budgets:\n"
        "    steps: 5\n"
    )
    assert carried.dropped == 2  # on step 2, which changed; on `expect:`, written otherwise


def test_comments_follow_a_step_written_unchanged_under_another_number() -> None:
    """Step 2 is written as it was, as step 3: its comments go with it (one on its
    `step:` line too); a `step:` key deeper in it is data, not its number. Without
    `renumbered`, or for a step it does not name, the number is a change."""
    old = (
        HEADER + "name: one\n"
        "steps:\n"
        "  - step: 1\n"
        "    tool: a\n"
        "  # the charge\n"
        "  - step: 2  # reviewed\n"
        "    tool: b  # SUP-42\n"
        "    input:\n"
        "      step: 2\n"
    )
    new = (
        HEADER + "name: one\n"
        "steps:\n"
        "  - step: 1\n"
        "    tool: a\n"
        "  - step: 2\n"
        "    tool: audit\n"
        "  - step: 3\n"
        "    tool: b\n"
        "    input:\n"
        "      step: 2\n"
    )
    carried = carry_comments(old, new, {1: 1, 2: 3})
    assert carried.text == (
        HEADER + "name: one\n"
        "steps:\n"
        "  - step: 1\n"
        "    tool: a\n"
        "  - step: 2\n"
        "    tool: audit\n"
        "  # the charge\n"
        "  - step: 3  # reviewed\n"
        "    tool: b  # SUP-42\n"
        "    input:\n"
        "      step: 2\n"
    )
    assert carried.dropped == 0
    assert carry_comments(old, new).dropped == 3
    assert carry_comments(old, new, {1: 1}).dropped == 3


def test_text_without_comments_is_written_as_it_is() -> None:
    old = HEADER + "name: one\nsteps:\n  - step: 1\n    output: '# no'\n"
    new = HEADER + "name: two\nsteps:\n  - step: 1\n    output: '# no'\n"
    assert carry_comments(old, new).text == new
    assert carry_comments(old, new).dropped == 0


def test_the_files_own_schema_line_takes_the_place_of_ours() -> None:
    """A golden whose first line points at another schema (or holds a comment after it)
    keeps that line, once: not ours above it."""
    body = "name: one  # the name\nsteps: []\n"
    new = HEADER + "name: one\nsteps: []\n"
    for own in (
        "# yaml-language-server: $schema=./golden-schema.json\n",
        HEADER.rstrip("\n") + "  # mine\n",
    ):
        carried = carry_comments(own + body, new)
        assert carried.text == own + body, carried.text
        assert carried.text.count("yaml-language-server") == 1
        assert carried.dropped == 0
