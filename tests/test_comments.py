"""Which lines of a golden hold comments, and which of them a rewrite can keep."""

from __future__ import annotations

from opswald.comments import Carried, _kept_alike, carry_comments, comment_lines

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
        "expect: {budgets: {steps: 5}}  # hand-formatted\n"
    )
    assert carried.dropped == 1  # on step 2, which changed; `expect:` says the same


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


def test_a_kept_key_that_says_the_same_is_written_as_it_was_written() -> None:
    """`tags`, `expect` and `input` in another form than the canonical one, without a
    comment: written as they were while they say the same (a shorthand's long form, a
    `normalize` mapping, flow style); a key that changed, or one a rewrite does not keep
    (`metadata`), is written canonically."""
    old = (
        HEADER + "name: one\n"
        "tags: [a, b]\n"
        "metadata: {k: 1}\n"
        "input: {q: hi}\n"
        "steps: []\n"
        "expect:\n"
        "  output: {match: exact}\n"
        "  requests:\n"
        "    normalize: {'\\d+': <n>}\n"
    )
    new = (
        HEADER + "name: one\n"
        "tags:\n  - a\n  - b\n"
        "metadata:\n  k: 1\n"
        "input:\n  q: hi\n"
        "steps: []\n"
        "expect:\n"
        "  output: exact\n"
        "  requests:\n"
        "    normalize:\n"
        "      - pattern: \\d+\n"
        "        replace: <n>\n"
    )
    assert carry_comments(old, new) == Carried(old.replace(" {k: 1}", "\n  k: 1"), 0)
    changed = new.replace("  - b\n", "  - c\n").replace("  q: hi\n", "  q: '[REDACTED]'\n")
    carried = carry_comments(old, changed)
    assert "tags:\n  - a\n  - c\n" in carried.text
    assert "input:\n  q: '[REDACTED]'\n" in carried.text  # never the old text's value
    assert "  output: {match: exact}\n" in carried.text


def test_a_golden_written_canonically_is_not_scanned() -> None:
    """The kept keys of canonical text stand in the old text as they are: nothing to do."""
    old = HEADER + "name: one\ntags:\n  - a\nsteps: []\nexpect:\n  output: exact\n"
    new = old.replace("steps: []", "steps: []\noutput: 2")
    assert _kept_alike(old, new)
    # a kept key whose value changed is written canonically: nothing to carry over either
    assert _kept_alike(old.replace("  - a\n", "  - a\n  - b\n"), new)
    assert not _kept_alike(old.replace("  output: exact", "  output: {match: exact}"), new)
    assert carry_comments(old, new) == Carried(new, 0)
