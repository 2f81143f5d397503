"""`opswald traces`, `opswald golden create` and `opswald import`: sessions from outside
pytest (the local trace store, other tracing tools) turned into goldens."""

from __future__ import annotations

import argparse
import re
import shlex
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from opswald.pricing import money
from opswald.terminal import counted


def _when(info: Any) -> str:
    return str(info.recorded_at.strftime("%Y-%m-%d %H:%M:%S"))


def cmd_traces_list(args: argparse.Namespace) -> int:
    from opswald.tracestore import list_traces

    found = list_traces(
        args.store, error=True if args.error else None, tag=args.tag, limit=args.limit
    )
    if args.json:
        from opswald import jsontext

        rows = [
            {**vars(t), "path": str(t.path), "recorded_at": t.recorded_at.isoformat()}
            for t in found
        ]
        print(jsontext.dumps(rows, indent=2))
        return 0
    if not found:
        print(_none_listed(args), file=sys.stderr)
        return 0
    for t in found:
        cost = money(t.cost) if t.cost is not None else "$?"
        if t.cost is not None and t.unpriced_calls:  # the priced part only
            cost = f"≥{cost}"
        tags = f" [{', '.join(t.tags)}]" if t.tags else ""
        line = f"{t.id}  {_when(t)}  {t.name}{tags}  {counted(t.steps, 'step')}  {cost}"
        if t.error:
            line += f"  ERROR {t.error}"
        print(line[:200])
    return 0


def _none_listed(args: argparse.Namespace) -> str:
    """Why `traces list` lists nothing: an empty store, or filters that match none of it."""
    from opswald.tracestore import store_dir, stored

    folder = store_dir(args.store)
    held = stored(args.store)
    filters = [
        *(["--error"] if args.error else []),
        *(["--tag", args.tag] if args.tag is not None else []),
    ]
    if not held or not filters:
        return f"no traces in {folder}"
    return (
        f"no traces match {shlex.join(filters)} ({held} trace{'s' if held != 1 else ''} in "
        f"{folder}); opswald traces list without filters lists them all"
    )


def cmd_traces_prune(args: argparse.Namespace) -> int:
    from opswald.tracestore import parse_age, prune, store_dir

    try:
        age = parse_age(args.older_than)
    except ValueError as exc:
        print(f"error: --older-than: {exc}", file=sys.stderr)
        return 2
    gone = prune(age, args.store)
    print(f"removed {len(gone)} trace{'s' if len(gone) != 1 else ''} from {store_dir(args.store)}")
    return 0


def cmd_golden_create(args: argparse.Namespace) -> int:
    from opswald.tracestore import TraceError, promote

    tags = [t.strip() for t in args.tags.split(",") if t.strip()] if args.tags else None
    try:
        target = promote(
            args.trace,
            name=args.name,
            description=args.description,
            tags=tags,
            goldens=args.goldens,
            store=args.store,
        )
    # bad input to a valid command, exit 4 (README's table): a trace id that names no
    # trace, a --name or --tags a golden cannot have, a target that exists, a --goldens
    # that is a file or read-only
    except (TraceError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 4
    except OSError as exc:
        where = f"{exc.filename}: " if exc.filename and exc.strerror else ""
        print(f"error: {where}{exc.strerror if where else exc}", file=sys.stderr)
        return 4
    print(f"wrote {target}: review it, then run pytest --opswald-goldens")
    return 0


def _golden_name(session: Any, taken: set[str]) -> str:
    base = re.sub(r"\W+", "_", session.name or session.session_id or "imported").strip("_")
    if not base or base[0].isdigit():
        base = f"trace_{base}"
    name, n = base[:80], 2
    while name in taken:
        name, n = f"{base[:80]}_{n}", n + 1
    taken.add(name)
    return name


def _imported_before(folder: Path) -> dict[str, str]:
    """The `session_id` of each golden already in `folder` (an import writes the trace id
    there), read from the head of the file: a nightly import names what it imports again."""
    found: dict[str, str] = {}
    if not folder.is_dir():
        return found
    line = re.compile(r"^session_id: ['\"]?([^'\"\n]+)['\"]?\s*$", re.M)
    for path in sorted(folder.glob("*.golden.*")):
        try:
            with path.open(encoding="utf-8", errors="replace") as f:
                head = f.read(4096)
        except OSError:
            continue
        match = line.search(head)
        if match:
            found.setdefault(match.group(1), path.name)
    return found


def _counts(title: str, counts: Counter[str], limit: int = 12) -> list[str]:
    if not counts:
        return []
    items = counts.most_common()  # scrubbed by the import, as the goldens are
    shown = ", ".join(f"{key} x{n}" if n > 1 else key for key, n in items[:limit])
    more = f", … {len(items) - limit} more" if len(items) > limit else ""
    import shutil
    import textwrap

    width = max(60, min(shutil.get_terminal_size((80, 24)).columns, 160))
    return textwrap.wrap(
        f"{title} ({sum(counts.values())}): {shown}{more}",
        width,
        initial_indent="  ",
        subsequent_indent="    ",
        break_on_hyphens=False,
    )


def cmd_import(args: argparse.Namespace) -> int:
    from opswald.cli import Progress
    from opswald.files import dump
    from opswald.importers import ImportFormatError, ImportResult, import_file

    out = Path(args.output)
    if out.exists() and not out.is_dir():
        print(
            f"error: -o {out}: a file; -o names the folder goldens are written to",
            file=sys.stderr,
        )
        return 4
    total = ImportResult()
    failed = 0
    progress = Progress(len(args.files), "importing")
    for file in args.files:
        progress.tick()
        try:
            result = import_file(args.format, file)
        except ImportFormatError as exc:
            failed += 1
            print(f"error: {exc}", file=sys.stderr)
            continue
        except OSError as exc:
            failed += 1
            print(f"error: {file}: {exc.strerror or exc}", file=sys.stderr)
            continue
        for error in result.errors:  # a trace without calls: no golden
            failed += 1
            print(f"error: {error}", file=sys.stderr)
        total.merge(result)
    progress.done()
    taken = {p.name.split(".golden.")[0] for p in out.glob("*.golden.*")} if out.is_dir() else set()
    written = []
    from opswald.projectconfig import project_redactor

    # imported sessions have their secrets hidden; written with the project's rules too
    # (`opswald_redact = pii`: personal data), as `opswald.dump` and an update write them
    redactor = project_redactor([out])
    before = _imported_before(out)  # session_id -> the golden a trace was imported as
    for session in total.sessions:
        name = _golden_name(session, taken)
        earlier = before.get(session.session_id or "")
        if earlier is not None:
            print(
                f"note: trace {session.session_id} was imported before as {earlier}: written "
                f"again as {name}.golden.yaml (delete one of them)"
            )
        session = session.model_copy(update={"name": name})
        target = out / f"{name}.golden.yaml"
        out.mkdir(parents=True, exist_ok=True)
        dump(session, target, redactor=redactor)
        written.append((target, session))
    for target, session in written:
        error = " (ended in an error)" if session.error is not None else ""
        n = len(session.step_list)
        print(f"wrote {target}: {n} step{'s' if n != 1 else ''}{error}")
    print(f"{len(written)} golden{'s' if len(written) != 1 else ''} from {args.format}")
    for line in (
        *_counts("mapped", total.mapped),
        *_counts("kept raw in attributes", total.kept),
        *_counts("skipped", total.skipped),
    ):
        print(line)
    for warning in total.warnings:
        print(f"  warning: {warning}")
    return 1 if failed else 0


def add_parsers(sub: Any) -> None:
    from opswald.argtypes import positive_int
    from opswald.importers import FORMATS

    traces = sub.add_parser("traces", help="the local trace store (opswald.record without a path)")
    traces_sub = traces.add_subparsers(dest="traces_command", required=True)
    listing = traces_sub.add_parser("list", help="stored traces, newest first")
    listing.add_argument("--error", action="store_true", help="only traces that ended in an error")
    listing.add_argument("--tag", help="only traces with this tag")
    listing.add_argument("--limit", type=positive_int, default=None, metavar="N")
    listing.add_argument("--store", default=None, help="default: .opswald/traces")
    listing.add_argument("--json", action="store_true", help="machine-readable output")
    listing.set_defaults(func=cmd_traces_list)
    pruning = traces_sub.add_parser("prune", help="delete old traces")
    pruning.add_argument("--older-than", required=True, metavar="AGE", help="30d, 12h, 2w, ...")
    pruning.add_argument("--store", default=None)
    pruning.set_defaults(func=cmd_traces_prune)

    golden = sub.add_parser("golden", help="work with goldens")
    golden_sub = golden.add_subparsers(dest="golden_command", required=True)
    create = golden_sub.add_parser("create", help="promote a stored trace to a golden")
    create.add_argument("trace", help="trace id (or unique prefix), file name or path")
    create.add_argument("--name", required=True, help="the golden's name (its test id)")
    create.add_argument("--description", default=None)
    create.add_argument("--tags", default=None, help="comma-separated: a,b")
    create.add_argument("--goldens", default="goldens", help="folder (default: goldens)")
    create.add_argument("--store", default=None)
    create.set_defaults(func=cmd_golden_create)
    from opswald.cli_inspect import add_note_parser

    add_note_parser(golden_sub)

    imp = sub.add_parser(
        "import",
        help="turn exported traces into goldens",
        description="turn exported traces into goldens, one per trace, in the -o folder",
    )
    imp.add_argument("format", choices=FORMATS)
    imp.add_argument("files", nargs="+", help="JSON or JSON Lines files")
    imp.add_argument("-o", "--output", default="goldens", help="folder (default: goldens)")
    imp.set_defaults(func=cmd_import, inputs=("files",))
