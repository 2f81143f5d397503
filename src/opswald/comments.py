"""The comments of a hand-annotated golden, carried into the file an update or a recording
writes where the text they annotate is written unchanged.

A golden is written in canonical form (`files.dumps`). The comments of the file it
replaces are kept with the parts of it that the new text repeats word for word: a step
an update served as recorded (under its new number, when the update renumbered it), the
`steps:` line, the lines above the first key. A top-level key that a rewrite takes from
the golden (`KEPT_KEYS`: `expect:`, `input:`, `notes:`, ...) is written as the old text
has it, comments, flow style, shorthands and all, whenever it still says the same
(`files.same_value`): the user wrote it, and a rewrite that does not change it has no
business reformatting it. A comment inside a part that changed, or in a step written in
another form than the canonical one (a flow mapping, another key order), has no place to
go: it is dropped, and counted, so that the writer can say so.

Comments are found with the YAML scanner's tokens: a `#` is a comment only outside
every token (a quoted or block scalar holds `#` as text) and after a space or at the
start of a line, as YAML has it. libyaml drops comments; what is left between tokens
is where they were.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import accumulate
from typing import Any

import yaml

try:
    from yaml import CSafeLoader as _Loader
except ImportError:  # pragma: no cover - PyYAML built without libyaml
    from yaml import SafeLoader as _Loader  # type: ignore[assignment]

# The top-level keys a rewrite takes from the golden it replaces (an update and a
# recording, `opswald.writeback`; a note changes only `notes`): written as they were
# written while they say the same.
KEPT_KEYS = (
    "name",
    "description",
    "tags",
    "session_id",
    "agent",
    "fixtures",
    "input",
    "expect",
    "modifications",
    "timeout",
    "notes",
)


@dataclass(frozen=True)
class Carried:
    """The text to write, and how many comment lines of the old text it could not keep."""

    text: str
    dropped: int


@dataclass
class _Scan:
    comments: dict[int, int]  # line → the column of its comment's `#`
    in_scalar: set[int]  # lines inside a multi-line scalar (their blank lines are text)
    keys: list[tuple[int, int, str]]  # a top-level key: its line, column, name
    items: list[tuple[int, int]]  # an item of the top-level `steps` sequence: line, column


def dropped_note(count: int, where: str) -> str:
    """What a writer says of the comment lines of `where` it could not keep."""
    lines = f"{count} comment line{'s' if count != 1 else ''}"
    return (
        f"{lines} in {where} {'were' if count != 1 else 'was'} dropped (goldens are "
        "rewritten in canonical form: comments stay only on the steps and keys written "
        "unchanged); keep review notes with `opswald golden note`"
    )


def comment_lines(text: str) -> dict[int, int]:
    """The 0-based lines of `text` that hold a comment, each with the column of its `#`."""
    return _scan(text).comments


def carry_comments(old: str, new: str, renumbered: Mapping[int, int] | None = None) -> Carried:
    """`new` (canonical text) with the comments of `old` kept on the parts of it that
    `new` repeats unchanged, and the `KEPT_KEYS` that still say the same written as `old`
    has them; `dropped` counts the comment lines of `old` it left out (the schema line
    every golden starts with is not counted). `renumbered`: the steps written as they were
    under another number (old number → new): unchanged, but for it."""
    header, _, _ = new.partition("\n")
    commented = _MAYBE_COMMENT.search(old, len(header) if old.startswith(header) else 0)
    if not commented and _kept_alike(old, new):
        return Carried(new, 0)  # nothing to carry: no scan of a large golden's text
    try:
        before = _scan(old)
    except yaml.YAMLError:  # not the file that was loaded: nothing to go by
        return Carried(new, 0)
    old_lines = old.split("\n")
    counted = {n for n in before.comments if old_lines[n].strip() != header}
    if not before.keys:
        return Carried(new, len(counted))
    new_lines = new.split("\n")
    by_text: dict[tuple[str, tuple[str, ...]], list[tuple[int, int]]] = {}
    as_written: dict[str, tuple[int, int]] = {}  # a kept key's part, as the old text has it
    for kind, start, end in _parts(old_lines, before):
        bare = _bare(old_lines, start, end, before)
        if kind == "-" and renumbered:  # a step written as it was, under its new number
            bare = _renumbered(bare, renumbered)
        by_text.setdefault((kind, bare), []).append((start, end))
        if kind in KEPT_KEYS:
            as_written[kind] = (start, end)
    out: list[str] = [header + "\n"]
    kept: set[int] = set()
    verbatim: set[str] = set()
    for n in range(before.keys[0][0]):  # above the first key: its comment lines, as they are
        if n in counted and _comment_only(old_lines, n, before):
            if _MODELINE.match(old_lines[n]) and out[0] == header + "\n":
                out[0] = old_lines[n] + "\n"  # the file's own schema line takes the place of ours
            else:
                out.append(old_lines[n] + "\n")
            kept.add(n)
    for kind, start, end in _parts(new_lines, _layout(new_lines)):
        if kind == "" and start == 0:
            continue  # the schema line, written above
        # canonical text: no comment below the schema line, blank lines only in scalars
        lines = new_lines[start:end]
        same = by_text.get((kind, tuple(lines)))
        if same:
            old_start, old_end = same.pop(0)
        elif kind in as_written and _says_the_same(kind, old_lines, as_written[kind], lines):
            old_start, old_end = as_written.pop(kind)
            verbatim.add(kind)
        else:
            out.append("".join(line + "\n" for line in lines))
            continue
        written = old_lines[old_start:old_end]
        if kind == "-" and renumbered:
            written = list(_renumbered(written, renumbered))
        out.append("".join(line + "\n" for line in written))
        kept.update(n for n in range(old_start, old_end) if n in counted)
    text = "".join(out)
    if not new.endswith("\n"):
        text = text.removesuffix("\n")
    if (kept or verbatim) and not _same_data(text, new, verbatim):  # never: a safety net
        return Carried(new, len(counted))
    return Carried(text, len(counted - kept))


def _says_the_same(
    key: str, old_lines: list[str], span: tuple[int, int], new_lines: list[str]
) -> bool:
    from opswald.files import same_value

    start, end = span
    return same_value(key, "\n".join(old_lines[start:end]), "\n".join(new_lines))


# a top-level key a rewrite keeps, at the start of a line of canonical text
_KEPT_KEY_LINE = re.compile(rf"^(?:{'|'.join(KEPT_KEYS)}):", re.MULTILINE)
# the start of the next line of canonical text that is not inside a top-level key's value
_NEXT_TOP_LINE = re.compile(r"\n(?=[^ \n])")


def _kept_alike(old: str, new: str) -> bool:
    """Whether no `KEPT_KEYS` part of `new` (canonical text) stands in `old` in another
    form that says the same: each stands in `old` as it is, whole, or `old` has no such
    key, or has it with another value. Text searches and a read of the old key's lines
    only, no scan, so that rewriting a large golden (written canonically, or with a note
    added) costs nothing more. A guess at the old key's lines that is wrong only sends
    the text through the scan, which tells."""
    from opswald.files import same_value

    old = "\n" + old
    for found in _KEPT_KEY_LINE.finditer(new):
        after = _NEXT_TOP_LINE.search(new, found.end())
        part = "\n" + new[found.start() : after.start() + 1 if after else len(new)]
        at = old.find(part)
        if at >= 0 and part.endswith("\n"):
            follows = old[at + len(part) : at + len(part) + 1]
            if follows not in (" ", "\t", "\n", "#", "-"):
                continue  # the same lines, and no more of the key's value after them
        key = found.group()[:-1]
        at = old.find(f"\n{key}:")
        if at < 0:
            continue  # a key the old text does not have
        end = _NEXT_OLD_TOP_LINE.search(old, at + 1)
        guess = old[at + 1 : end.start() + 1 if end else len(old)]
        if same_value(key, guess, part[1:]):
            return False
    return True


# the start of the next line of a hand-written golden that may start a top-level key
_NEXT_OLD_TOP_LINE = re.compile(r"\n(?=[^ \t\n#-])")


# an editor's schema line (`# yaml-language-server: $schema=…`), as a golden's first line is
_MODELINE = re.compile(r"\s*#\s*yaml-language-server:")

# a `#` after a blank or at a line's start: maybe a comment (the scan tells)
_MAYBE_COMMENT = re.compile(r"(?:^|[ \t])#", re.MULTILINE)

_OPEN = (
    yaml.BlockMappingStartToken,
    yaml.BlockSequenceStartToken,
    yaml.FlowMappingStartToken,
    yaml.FlowSequenceStartToken,
)
_CLOSE = (yaml.BlockEndToken, yaml.FlowMappingEndToken, yaml.FlowSequenceEndToken)


def _scan(text: str) -> _Scan:
    """Where the comments of `text` are, and the lines of its top-level keys and of the
    items of its `steps` sequence."""
    starts: list[int] = []  # the spans of the tokens, in order: no comment lies inside one
    ends: list[int] = []
    in_scalar: set[int] = set()
    keys: list[tuple[int, int, str]] = []
    items: list[tuple[int, int]] = []
    depth = 0
    key_next = False
    steps_depth: int | None = None
    token: Any
    for token in yaml.scan(text, Loader=_Loader):
        cls = type(token)
        start_mark, end_mark = token.start_mark, token.end_mark
        if cls is yaml.ScalarToken:
            start, end = start_mark.index, end_mark.index
            if token.style in ("|", ">"):
                # a block scalar's header line may end in a comment; its body is text
                start = text.find("\n", start, end)
                start = end if start < 0 else start
            starts.append(start)
            ends.append(end)
            if start_mark.line < end_mark.line:
                in_scalar.update(range(start_mark.line + 1, end_mark.line + 1))
            if key_next:
                line, column, _ = keys[-1]
                keys[-1] = (line, column, token.value)
                key_next = False
            continue
        key_next = False
        if cls is yaml.KeyToken:
            if depth == 1:
                key_next = True
                keys.append((start_mark.line, start_mark.column, ""))
        elif cls is yaml.BlockEntryToken:
            if steps_depth == depth:
                items.append((start_mark.line, start_mark.column))
        elif cls in _OPEN:
            depth += 1
            if (
                depth == 2
                and cls is yaml.BlockSequenceStartToken
                and keys
                and keys[-1][2] == "steps"
            ):
                steps_depth = depth
        elif cls in _CLOSE:
            if steps_depth == depth:
                steps_depth = None
            depth -= 1
        elif start_mark.index < end_mark.index:  # a tag, an anchor, an alias, a directive
            starts.append(start_mark.index)
            ends.append(end_mark.index)
    line_starts = [0, *accumulate(len(line) + 1 for line in text.split("\n"))]
    comments: dict[int, int] = {}
    for found in _MAYBE_COMMENT.finditer(text):
        at = found.end() - 1
        i = bisect.bisect_right(starts, at) - 1
        if i >= 0 and at < ends[i]:
            continue
        line = bisect.bisect_right(line_starts, at) - 1
        comments.setdefault(line, at - line_starts[line])
    if depth != 0 or any(column != 0 for _, column, _ in keys):
        keys = []  # not a block mapping at the top: no parts to tell apart
    return _Scan(comments=comments, in_scalar=in_scalar, keys=keys, items=items)


def _layout(lines: list[str]) -> _Scan:
    """The top-level keys and `steps` items of canonical text, by its lines: a key starts
    a line, an item of `steps` is `  - ` under it, and nothing else is written there (a
    scalar's lines are indented under its key, a string is one line)."""
    keys: list[tuple[int, int, str]] = []
    items: list[tuple[int, int]] = []
    in_steps = False
    for n, line in enumerate(lines):
        if line[:1] not in ("", " ", "#", "-"):
            keys.append((n, 0, line.split(":", 1)[0]))
            in_steps = line == "steps:"
        elif in_steps and line.startswith("  - "):
            items.append((n, 2))
    return _Scan(comments={}, in_scalar=set(), keys=keys, items=items)


def _parts(lines: list[str], scan: _Scan) -> list[tuple[str, int, int]]:
    """The text's parts, as (kind, first line, end line): a top-level key with its value
    (kind: the key), the `steps:` line (kind `steps`) and each of its items (kind `-`).
    The comment lines just above a part are its own, unless indented further than it
    (then they belong to the part above them). The part before the first key has kind ''."""
    starts: list[tuple[str, int, int]] = []  # kind, line, column
    items = iter(scan.items)
    item = next(items, None)
    for line, column, name in scan.keys:
        starts.append((name, line, column))
        while item is not None and item[0] <= line:
            item = next(items, None)
        if name == "steps":
            following = [k for k in scan.keys if k[0] > line]
            limit = following[0][0] if following else len(lines)
            while item is not None and item[0] < limit:
                starts.append(("-", item[0], item[1]))
                item = next(items, None)
    firsts: list[int] = []
    for i, (_, line, column) in enumerate(starts):
        first = line
        floor = starts[i - 1][1] + 1 if i else line  # the first key takes nothing above it
        while first - 1 >= floor and _comment_only(lines, first - 1, scan):
            if scan.comments[first - 1] > column:
                break
            first -= 1
        firsts.append(first)
    parts = [("", 0, firsts[0])] if firsts and firsts[0] > 0 else []
    for i, (kind, _, _) in enumerate(starts):
        end = firsts[i + 1] if i + 1 < len(starts) else len(lines)
        parts.append((kind, firsts[i], end))
    # an end-of-text newline leaves an empty last line: no part of anything
    if parts and lines and lines[-1] == "":
        kind, start, end = parts[-1]
        parts[-1] = (kind, start, min(end, len(lines) - 1))
    return parts


# a step's own `step:` key: on its item's `- ` line, or a line of its own under it (and
# then maybe a comment)
_STEP_KEY = re.compile(r"( *)(- )?step: (\d+)((?:[ \t]+#.*)?[ \t]*)")


def _renumbered(lines: Sequence[str], renumbered: Mapping[int, int]) -> tuple[str, ...]:
    """The lines of a `steps` item (comments and all, or bare) as they read under the
    number `renumbered` gives the step, or as they are if it gives none. Its `step:` key
    is the first at the column of the item's keys, two past the `- ` of its first line."""
    first = next((line for line in lines if line.lstrip().startswith("- ")), None)
    if first is None:
        return tuple(lines)
    keys_at = len(first) - len(first.lstrip()) + 2
    for n, line in enumerate(lines):
        found = _STEP_KEY.fullmatch(line)
        if found is None or len(found[1]) + len(found[2] or "") != keys_at:
            continue
        number = renumbered.get(int(found[3]))
        if number is None:
            break
        return (*lines[:n], line[: found.start(3)] + str(number) + found[4], *lines[n + 1 :])
    return tuple(lines)


def _comment_only(lines: list[str], n: int, scan: _Scan) -> bool:
    return n in scan.comments and not lines[n][: scan.comments[n]].strip()


def _bare(lines: list[str], start: int, end: int, scan: _Scan) -> tuple[str, ...]:
    """The lines of a part without their comments, and without the lines only a comment
    or blank space held (outside a multi-line scalar, whose blank lines are its text)."""
    bare: list[str] = []
    for n in range(start, end):
        line = lines[n]
        if n in scan.comments:
            line = line[: scan.comments[n]].rstrip()
            if not line.strip():
                continue
        elif not line.strip() and n not in scan.in_scalar:
            continue
        bare.append(line)
    return tuple(bare)


def _same_data(text: str, canonical: str, verbatim: set[str]) -> bool:
    """`text` reads as the canonical text does: the same data, but for the `verbatim`
    keys, written as the old text had them, which only say the same."""
    from opswald.files import DEFAULT_MAX_DEPTH, _parse, same_field

    try:
        written = _parse(text, "yaml", DEFAULT_MAX_DEPTH)
        expected = _parse(canonical, "yaml", DEFAULT_MAX_DEPTH)
    except Exception:  # any failure to read it back keeps the canonical text
        return False
    if written.keys() != expected.keys():
        return False
    return all(
        same_field(key, written[key], expected[key])
        if key in verbatim
        else written[key] == expected[key]
        for key in expected
    )
