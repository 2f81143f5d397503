"""`opswald html`: the replay viewer for golden files and saved actual sessions.

    opswald html GOLDEN [--actual ACTUAL] [--redact] -o out.html
    opswald html goldens/ [--actual-dir actual/] [--redact] -o out.html

A saved actual (`--opswald-save-actual DIR`) is named `<test name>.actual.yaml`, the test
name being the golden's item name (its `name`, else its file name without `.golden.*`), as
`opswald.files.saved_actual_name` makes it a file name; a run with variants saves
`<name>[<variant>].actual.yaml`, and each becomes its own entry.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from opswald.session import Session

DEFAULT_OUTPUT = "opswald-replay.html"


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register `html` on the `opswald` command's subparsers."""
    from opswald.argtypes import milliseconds_arg

    parser: argparse.ArgumentParser = subparsers.add_parser(
        "html",
        help="write the replay viewer: one self-contained HTML page for goldens and actuals",
        description="Write one self-contained HTML page (no network, opens from disk) to step "
        "through golden sessions, compare them with actual sessions and analyse errors, "
        "cost and latency.",
    )
    from opswald.cli import _DEFAULT_PATHS_HELP

    parser.add_argument("paths", nargs="*", metavar="GOLDEN", help=_DEFAULT_PATHS_HELP)
    parser.add_argument(
        "--actual", metavar="ACTUAL", help="the actual session of a single GOLDEN (a saved run)"
    )
    parser.add_argument(
        "--actual-dir",
        metavar="DIR",
        action="append",
        help="saved actual sessions (--opswald-save-actual DIR), matched to goldens by name; "
        "repeat it for the folders of several runs (CI shards)",
    )
    parser.add_argument(
        "--redact", action="store_true", help="also scrub personal data (emails, phone numbers)"
    )
    parser.add_argument(
        "-o", "--output", default=DEFAULT_OUTPUT, help=f"the page to write ({DEFAULT_OUTPUT})"
    )
    parser.add_argument("--title", default=None, help="the page title")
    parser.add_argument(
        "--slow-ms",
        type=milliseconds_arg,
        default=5000.0,
        help="steps slower than this are flagged (default 5,000)",
    )
    parser.set_defaults(func=cmd_html, inputs=("paths", "actual", "actual_dir"))
    return parser


def _actuals_for(folder: Path, test_name: str) -> list[tuple[str, Path]]:
    """(test name, file) of the saved actuals of one golden, its variants included."""
    from opswald.files import ACTUAL_SUFFIX, saved_actual_name

    exact = folder / saved_actual_name(test_name)
    found = [(test_name, exact)] if exact.is_file() else []
    prefix = saved_actual_name(test_name)[: -len(ACTUAL_SUFFIX)] + "["
    for path in sorted(folder.glob("*" + ACTUAL_SUFFIX)):
        stem = path.name[: -len(ACTUAL_SUFFIX)]
        if stem.startswith(prefix) and stem.endswith("]"):
            found.append((f"{test_name}{stem[len(prefix) - 1 :]}", path))
    return found


def cmd_html(args: argparse.Namespace) -> int:
    from opswald.cli import output_problem, walked, writing_output
    from opswald.items import item_name
    from opswald.report.html import ViewEntry, write_report

    # a folder given as the page (`-o reports/`), or one that cannot be made or written
    # in, is refused before any golden is read
    problem = output_problem(args.output, DEFAULT_OUTPUT)
    if problem is not None:
        print(f"error: {problem}", file=sys.stderr)
        return 4
    goldens, args.paths = walked(args.paths)  # none given: those pytest would collect
    if not goldens:
        print("error: no golden files found", file=sys.stderr)
        return 4
    single = len(args.paths) == 1 and not Path(args.paths[0]).is_dir()
    if args.actual and args.actual_dir:
        print(
            "error: --actual (one actual for one golden) and --actual-dir (the actuals of many) "
            "do not combine: give one of them",
            file=sys.stderr,
        )
        return 2
    if args.actual and not single:
        print(
            "error: --actual goes with exactly one GOLDEN file (use --actual-dir)", file=sys.stderr
        )
        return 2
    actual_dirs: list[Path] = []
    for given in args.actual_dir or ():  # a folder given twice (`actual`, `./actual/`): once
        if all(os.path.realpath(given) != os.path.realpath(d) for d in actual_dirs):
            actual_dirs.append(Path(given))
    for folder in actual_dirs:
        if not folder.is_dir():
            print(f"error: --actual-dir {folder}: not a folder", file=sys.stderr)
            return 4
    entries: list[ViewEntry] = []
    problems = 0
    matched: set[Path] = set()
    from opswald.cli import Progress

    progress = Progress(len(goldens), "reading")
    unread: dict[Path, str] = {}
    for path in goldens:
        progress.tick()
        golden = _read(path, unread)
        if golden is None:  # listed with its load error, as pytest's page lists it
            problems += 1
            entries.append(_unread(path, unread[path]))
            continue
        name = item_name(golden, path)
        pairs: list[tuple[str, Path]] = []
        if args.actual:
            pairs = [(name, Path(args.actual))]
        for folder in actual_dirs:
            for test, found in _actuals_for(folder, name):
                first = next((seen for t, seen in pairs if t == test), None)
                if first is None:
                    pairs.append((test, found))
                else:  # two runs of one test (shards that overlapped): the first is shown
                    matched.add(found.resolve())
                    print(f"note: {found}: {test} has an actual in {first} too; shown: {first}")
        compared = 0
        for test, actual_path in pairs:
            matched.add(actual_path.resolve())  # it has its golden, readable or not
            actual = _read(actual_path)
            if actual is None:
                problems += 1
                continue
            entries.append(_compared(golden, actual, name=test, file=str(path)))
            compared += 1
        if not compared:  # no actual, or none readable: the golden is still shown
            entries.append(ViewEntry(golden=golden, name=name, file=str(path)))
    progress.done()
    from opswald.files import ACTUAL_SUFFIX

    for folder in actual_dirs:
        for extra in sorted(folder.glob("*" + ACTUAL_SUFFIX)):
            if extra.resolve() not in matched:
                print(f"note: {extra}: no golden of that name among {', '.join(args.paths)}")
    title = args.title or ("opswald replay: " + ", ".join(args.paths))
    with writing_output(args.output, "the page"):
        size = write_report(
            args.output, entries, title=title, redact=args.redact, slow_ms=args.slow_ms
        )
    failed = [e for e in entries if e.status == "failed"]
    over = [e for e in failed if any(f.get("kind") == "budget" for f in e.findings)]
    differing = [e for e in failed if any(f.get("kind") != "budget" for f in e.findings)]
    counted = (
        f"{len(failed)} failing against their actual: {len(differing)} differing, "
        f"{len(over)} over a budget"
        if over
        else f"{len(failed)} differing from their actual"
    )
    print(
        f"wrote {args.output}: {len(entries)} golden{'s' if len(entries) != 1 else ''}"
        f" ({counted}), {size / 1024:,.0f} KiB"
    )
    return 1 if problems else 0


def _compared(golden: Any, actual: Any, *, name: str, file: str) -> Any:
    """A golden and a saved actual: failed when they differ (timestamps and durations aside),
    with the differences as findings."""
    from opswald.redact import redact_session
    from opswald.report.html import ViewEntry, findings_from_diff

    # both redacted before they are compared, as a replay compares them: a golden holding
    # a secret in clear would otherwise differ from its (redacted) actual there, and the
    # difference show the secret
    golden, actual = redact_session(golden), redact_session(actual)
    findings = findings_from_diff(golden, actual)
    status = "failed" if any(f.get("failing", True) for f in findings) else "passed"
    return ViewEntry(
        golden=golden, actual=actual, status=status, name=name, file=file, findings=findings
    )


def _read(path: Path, problems: dict[Path, str] | None = None) -> Session | None:
    """The session in `path`, or None after saying on stderr why it cannot be read (and
    keeping that in `problems`)."""
    from opswald.files import GoldenLoadError, load

    try:
        session: Session = load(path)
    except (GoldenLoadError, OSError) as exc:
        for line in _problem(exc, path).splitlines():  # each of a golden's problems
            print(f"error: {line}", file=sys.stderr)
        if problems is not None:
            problems[path] = _problem(exc, path)
        return None
    return session


def _unread(path: Path, problem: str) -> Any:
    """The entry of a golden that could not be loaded: status error, no steps, its load
    error as the finding (the record pytest's page gives a malformed golden). A path given
    that names nothing never gets here (a usage error, `cli.not_found`); a golden gone
    since its folder was walked is listed, saying no golden is there."""
    from opswald.report.html import ViewEntry, failure_finding
    from opswald.report.summary import failure_record
    from opswald.session import Session

    there = path.exists() or path.is_symlink()
    text = (
        f"malformed golden: {problem}"
        if there
        else f"no golden there: {problem}\n"
        f"fix: check the path {path}, or restore the golden from version control"
    )
    record = failure_record(
        name=str(path),
        file=str(path),
        golden=path.name.split(".golden.")[0],
        variant=None,
        text=text,
        status="error",
    )
    return ViewEntry(
        golden=Session(name=record["golden"], steps=[]),
        status="error",
        name=str(path),
        file=str(path),
        findings=[failure_finding(record)],
        record=record,
    )


def _problem(exc: Exception, path: Path) -> str:
    if isinstance(exc, OSError) and not str(exc).startswith(str(path)):
        return f"{exc.filename or path}: {exc.strerror or exc}"
    return str(exc)


def main(argv: Sequence[str] | None = None) -> int:
    """`opswald html ...` without the main command's parser (`argv` starts with `html`)."""
    parser = argparse.ArgumentParser(prog="opswald")
    add_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    from opswald.cli import with_golden_limits
    from opswald.cli_inspect import run

    return run(with_golden_limits, args)


if __name__ == "__main__":
    raise SystemExit(main())
