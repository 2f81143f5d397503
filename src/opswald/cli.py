"""The `opswald` command line."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import typing
from collections.abc import Generator, Sequence
from pathlib import Path
from typing import Any

from opswald.terminal import EscapingStream, counted

if typing.TYPE_CHECKING:
    from opswald.session import LLMCallStep


class Progress:
    """`validating 120/5000` on a terminal's stderr; nothing at all in pipes and logs."""

    def __init__(self, total: int, label: str) -> None:
        self.total = total
        self.label = label
        self.count = 0
        self.enabled = sys.stderr.isatty() and total > 1

    def tick(self) -> None:
        self.count += 1
        if self.enabled:
            stream = getattr(sys.stderr, "raw", sys.stderr)  # past the escaping (its \r)
            stream.write(f"\r{self.label} {self.count}/{self.total}")
            stream.flush()

    def done(self) -> None:
        if self.enabled:
            stream = getattr(sys.stderr, "raw", sys.stderr)
            stream.write("\r" + " " * (len(self.label) + 24) + "\r")
            stream.flush()


def _iter_goldens(paths: Sequence[str]) -> list[Path]:
    """The golden files named and those in the folders named, found as pytest collects
    them: folders are walked in name order, symlinked folders followed (a link back into a
    folder being walked is not), and a folder matching `norecursedirs` (the project's
    pytest config's, else pytest's default: hidden folders, build, dist, venv,
    node_modules, ...), a virtualenv or __pycache__ is skipped unless it was named (or
    holds what was named). Files named are always taken; each path is listed once. No
    paths: those `pytest --opswald-goldens` collects when given none (see `walked`)."""
    return walked(paths)[0]


def walked(paths: Sequence[str]) -> tuple[list[Path], list[str]]:
    """The golden files of `_iter_goldens`, and the paths walked: those given, else in the
    rootdir pytest's testpaths (else the rootdir) and the folders of opswald_goldens, in a
    subfolder of it that folder — each shown relative to the current directory."""
    from opswald import projectconfig
    from opswald.cli_inspect import CliError

    try:
        config = projectconfig.find(paths)  # none: from the current directory, as pytest
        patterns = config.args("norecursedirs", projectconfig.NORECURSEDIRS)
        if not paths:
            here = Path.cwd()
            defaults, warnings = projectconfig.default_paths(config, here)
            for warning in warnings:
                print(f"warning: {warning}", file=sys.stderr)
            paths = [
                os.path.relpath(path) if path == here or here in path.parents else str(path)
                for path in defaults
            ]
    except projectconfig.SettingError as exc:
        raise CliError(str(exc)) from None
    named: set[Path] = set()
    for raw in paths:
        absolute = Path(os.path.abspath(raw))
        named.update((absolute, *absolute.parents))
    found: dict[Path, None] = {}
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            _walk(path, patterns, named, frozenset({os.path.realpath(path)}), found)
        else:
            found[path] = None
    return list(found), list(paths)


def _walk(
    folder: Path,
    patterns: list[str],
    named: set[Path],
    walking: frozenset[str],
    found: dict[Path, None],
) -> None:
    from opswald.suffixes import is_golden_path

    try:
        with os.scandir(folder) as listing:
            entries = sorted(listing, key=lambda entry: entry.name)
    except OSError:  # unreadable, or gone since it was listed
        return
    for entry in entries:
        path = folder / entry.name
        if _is_dir(entry):
            if Path(os.path.abspath(path)) not in named and _skipped(path, patterns):
                continue
            real = os.path.realpath(path)
            if real not in walking:  # a symlink back into a folder being walked: a loop
                _walk(path, patterns, named, walking | {real}, found)
        elif is_golden_path(path) and _is_file(entry):
            found[path] = None


def _is_dir(entry: os.DirEntry[str]) -> bool:
    try:
        return entry.is_dir()  # follows symlinks, as pytest's collection does
    except OSError:
        return False


def _is_file(entry: os.DirEntry[str]) -> bool:
    try:
        return entry.is_file()
    except OSError:
        return False


def _skipped(folder: Path, patterns: list[str]) -> bool:
    """A folder pytest does not collect from: __pycache__, a virtualenv, `norecursedirs`."""
    if folder.name == "__pycache__":
        return True
    if _in_venv(folder):
        return True
    absolute = Path(os.path.abspath(folder))
    return any(_fnmatch_ex(pattern, absolute) for pattern in patterns)


def _in_venv(folder: Path) -> bool:
    """A virtualenv, as the installed pytest tells one (pytest 8.0 looks for an activate
    script in bin/, later ones for pyvenv.cfg or conda-meta/history): the folders
    `opswald validate` skips are the ones pytest's collection skips."""
    try:
        from _pytest.main import _in_venv as pytests
    except ImportError:  # moved: the marks pytest has used since 8.1
        try:
            return (folder / "pyvenv.cfg").is_file() or (
                folder / "conda-meta" / "history"
            ).is_file()
        except OSError:
            return False
    return bool(pytests(folder))


def _fnmatch_ex(pattern: str, path: Path) -> bool:
    """pytest's match of a `norecursedirs` pattern: a pattern without a path separator
    matches the name, one with a separator the end of the whole path."""
    import fnmatch

    if os.sep not in pattern:
        return fnmatch.fnmatch(path.name, pattern)
    if not os.path.isabs(pattern):
        pattern = f"*{os.sep}{pattern}"
    return fnmatch.fnmatch(str(path), pattern)


def cmd_schema(args: argparse.Namespace) -> int:
    if args.report:
        from opswald.report.json_report import REPORT_SCHEMA

        print(json.dumps(REPORT_SCHEMA, indent=2))
        return 0
    from opswald.session import json_schema

    print(json.dumps(json_schema(), indent=2))
    return 0


def cmd_validate(args: argparse.Namespace) -> int:
    from opswald.files import GoldenLoadError, load

    goldens = _iter_goldens(args.paths)
    if not goldens:
        print("error: no golden files found", file=sys.stderr)
        return 4
    bad = 0
    rows: list[dict[str, object]] = []
    progress = Progress(len(goldens), "validating")
    for path in goldens:
        progress.tick()
        try:
            session = load(path)
        except GoldenLoadError as exc:
            bad += 1
            rows.append(_invalid(path, exc.problems, exc.unshown))
            continue
        except OSError as exc:
            bad += 1
            rows.append(_invalid(path, [f"{path}: {exc.strerror or exc}"], 0))
            continue
        row: dict[str, object] = {
            "path": str(path),
            "ok": True,
            "stub": session.is_stub,
            "steps": None if session.is_stub else len(session.step_list),
        }
        warnings = _warnings(path)
        if warnings:
            row["warning"] = warnings[0]  # the first, as before there could be several
            row["warnings"] = warnings
        rows.append(row)
    progress.done()
    if args.json:
        print(json.dumps({"valid": len(goldens) - bad, "invalid": bad, "goldens": rows}, indent=2))
        return 1 if bad else 0
    for row in rows:
        if not row["ok"]:
            for problem in typing.cast(list[str], row["errors"]):
                print(f"error: {problem}")
            more = typing.cast(int, row["more_errors"])
            if more:
                print(f"error: {row['path']}: ... and {counted(more, 'more problem')}")
        else:
            kind = (
                "stub (not recorded yet)"
                if row["stub"]
                else counted(typing.cast(int, row["steps"]), "step")
            )
            print(f"ok: {row['path']} ({kind})")
            for warning in typing.cast(list[str], row.get("warnings", [])):
                print(f"warning: {warning}")
    print(f"{len(goldens) - bad} valid, {bad} invalid")
    return 1 if bad else 0


def _invalid(path: Path, problems: list[str], unshown: int) -> dict[str, object]:
    """`validate`'s row of a golden it cannot load: its first problem as `error`, each
    shown (up to files.SHOWN_PROBLEMS) in `errors`, how many more in `more_errors`."""
    return {
        "path": str(path),
        "ok": False,
        "error": problems[0],
        "errors": problems,
        "more_errors": unshown,
    }


def _warnings(path: Path) -> list[str]:
    """What `validate` says of a valid golden that may not read as its author meant."""
    from opswald.files import yaml_version_differences

    try:
        text = path.read_bytes().decode("utf-8")
    except (OSError, UnicodeDecodeError):
        return []
    hidden = _raw_hidden_warning(path, text)
    notes = [hidden] if hidden else []
    if not path.name.lower().endswith(".json"):
        notes.extend(f"{path}:{line}: {note}" for line, note in yaml_version_differences(text))
    return notes


def _raw_hidden_warning(path: Path, text: str) -> str | None:
    """What `validate` says of a golden that holds, raw, characters that hide or reorder
    text (`opswald.hidden`; written by hand, since opswald writes them as escapes): a
    reviewer's diff of it may show text in another order, or not at all."""
    import unicodedata

    from opswald.hidden import hidden_positions

    found = [i for i in hidden_positions(text) if i or text[0] != "\ufeff"]  # not a BOM
    if not found:
        return None
    first = text[found[0]]
    code = ord(first)
    name = unicodedata.name(first, "unassigned")
    line = text.count("\n", 0, found[0]) + 1
    escape = f"\\u{code:04X}" if code <= 0xFFFF else f"\\U{code:08X}"
    what = f"U+{code:04X} {name}"
    if len(found) == 1:
        return (
            f"{path}:{line}: {what}, which can hide or reorder text in a diff, is written "
            f'raw; write it as "{escape}" in a double-quoted string'
        )
    return (
        f"{path}:{line}: {len(found)} characters that can hide or reorder text in a diff are "
        f"written raw, the first {what}; write them as escapes in double-quoted strings "
        f'("{escape}")'
    )


def cmd_serve(args: argparse.Namespace) -> int:
    import signal
    import threading

    from opswald.engine.context import Context
    from opswald.engine.normalize import RequestRules
    from opswald.files import GoldenLoadError, load
    from opswald.serve import ReplayServer, host_problem

    problem = host_problem(args.host)  # a usage error, whatever the golden holds
    if problem is not None:
        print(f"error: {problem}", file=sys.stderr)
        return 4
    try:
        golden = load(args.golden)
    except (GoldenLoadError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if golden.is_stub:
        print(f"error: {args.golden} is a stub: record it first", file=sys.stderr)
        return 1
    from opswald import projectconfig

    try:  # the suite-wide request rules and redaction of the project's pytest config
        config = projectconfig.find([args.golden], config_file=args.config_file)
        settings = projectconfig.cli_settings(config)
    except projectconfig.SettingError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 4
    expect = golden.expectations
    ctx = Context(
        golden=golden,
        policy="replay",
        rules=RequestRules.build(expect.requests, settings.requests, redactor=settings.redactor),
        tool_rules=expect.tool_calls,
        redactor=settings.redactor,
    )
    assert ctx.tape is not None
    from opswald.intercept.codecs import made_over_http
    from opswald.session import LLMCallStep

    models = [s for s in golden.step_list if isinstance(s, LLMCallStep)]
    recorded = golden.recorded_by_opswald
    unseen = [s for s in models if not made_over_http(s.provider, s.api, recorded=recorded)]
    ctx.tape.hide_tools([s.step for s in unseen])
    calls = len(models) - len(unseen)
    if not calls:  # as for a stub: every request would diverge
        why = (
            f"its {counted(len(unseen), 'model call')} {'was' if len(unseen) == 1 else 'were'} "
            "made by `@opswald.llm` functions, not over an OpenAI or Anthropic API"
            if unseen
            else "it has no model call"
        )
        print(
            f"error: {args.golden} has no call an HTTP client can make to serve: {why}; "
            "replay it in-process (pytest --opswald-goldens, opswald replay)",
            file=sys.stderr,
        )
        return 1

    def report(text: str) -> None:
        print(f"opswald: divergence\n{text}", file=sys.stderr, flush=True)

    try:
        server = ReplayServer(ctx, host=args.host, port=args.port, on_divergence=report)
    except (ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 4
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    with server:
        print(f"opswald: replaying {args.golden} ({calls} LLM calls) on {server.url}")
        print(f"  OPENAI_BASE_URL={server.url}/v1  ANTHROPIC_BASE_URL={server.url}", flush=True)
        if unseen:
            print(_not_served(unseen), flush=True)
        stop.wait()
    served = len(ctx.served)
    unused = [s for s in ctx.tape.unused()]
    print(
        f"opswald: served {served} of {calls} LLM calls, {len(server.divergences)} divergence(s)"
        + (
            f", {len(unused)} recorded call(s) unused (first: step {unused[0].step})"
            if unused
            else ""
        ),
        flush=True,
    )
    return 1 if server.divergences or unused else 0


def _not_served(steps: Sequence[LLMCallStep]) -> str:
    """The banner's line on the golden's model calls no HTTP client makes."""
    numbers = ", ".join(str(s.step) for s in steps[:8]) + (", ..." if len(steps) > 8 else "")
    providers = sorted({s.provider or "none" for s in steps})
    return (
        f"  not served: {len(steps)} model call(s) made by `@opswald.llm` functions, not over "
        f"an OpenAI or Anthropic API (step {numbers}; provider {', '.join(providers)}): "
        "replay those in-process (pytest --opswald-goldens, opswald replay)"
    )


def cmd_replay(args: argparse.Namespace) -> int:
    from opswald.cli_replay import run_replay

    return run_replay(args)


def output_problem(output: str, example: str) -> str | None:
    """Why `-o OUTPUT` cannot be written, as the text of an `error:` line, or None. Checked
    before any input is read, as pytest's --opswald-json is at startup: a folder given as
    the file, and a folder that cannot be made (it is made now) or written in, rather than
    a write that fails after every golden was read. `example` is a file name to suggest."""
    from opswald.files import output_file_problem, report_path_problem

    problem = report_path_problem(Path.cwd(), output, example)
    if problem is not None:
        return f"-o must be a file name: {problem}"
    problem = output_file_problem(Path.cwd(), output)
    if problem is not None:
        return f"-o: cannot write {output}: {problem}"
    return None


@contextlib.contextmanager
def writing_output(output: str, what: str) -> Generator[None]:
    """A write of `-o OUTPUT` that still fails (a full disk): CliError naming -o, what was
    not written and the path as given (the error's own file may be a temp file)."""
    from opswald.cli_inspect import CliError

    try:
        yield
    except OSError as exc:
        raise CliError(
            f"-o: {what} was not written: cannot write {output}: {exc.strerror or exc}"
        ) from None


class _Version(argparse.Action):
    """`--version`: the installed pytest-opswald's version, looked up only when asked (the
    lookup reads the installed packages' metadata, ~15 ms of every start otherwise)."""

    def __init__(self, option_strings: list[str], dest: str, **kwargs: Any) -> None:
        super().__init__(option_strings, dest, nargs=0, help="print the version and exit")

    def __call__(self, parser: argparse.ArgumentParser, *args: Any) -> None:
        from importlib.metadata import PackageNotFoundError, version

        try:
            found = version("pytest-opswald")
        except PackageNotFoundError:  # run from a checkout that is not installed
            found = "(not installed)"
        print(f"opswald {found}")
        parser.exit()


def cmd_report_merge(args: argparse.Namespace) -> int:
    from opswald import jsontext
    from opswald.report.json_report import MergeError, merge, write

    problem = output_problem(args.output, "report.json")
    if problem is not None:
        print(f"error: {problem}", file=sys.stderr)
        return 4
    given: dict[str, str] = {}
    for name in args.reports:  # the same file twice would read as two overlapping shards
        first = given.setdefault(os.path.realpath(name), name)
        if first != name or args.reports.count(name) > 1:
            also = f" (as {first})" if first != name else ""
            print(
                f"error: {name} is given twice{also}: give each shard's report once",
                file=sys.stderr,
            )
            return 4
    reports = []
    for name in args.reports:
        try:
            reports.append(jsontext.loads(Path(name).read_text(encoding="utf-8")))
        except OSError as exc:  # worded as validate, show and html word it
            print(f"error: {name}: cannot read the file: {exc.strerror or exc}", file=sys.stderr)
            return 4
        except ValueError as exc:  # worded as import words a file that is not JSON
            where = f":{exc.lineno}:{exc.colno}" if isinstance(exc, json.JSONDecodeError) else ""
            reason = exc.msg if isinstance(exc, json.JSONDecodeError) else str(exc)
            print(
                f"error: {name}{where}: not JSON ({reason}): not an opswald JSON report; give "
                "the files --opswald-json wrote",
                file=sys.stderr,
            )
            return 4
    try:
        merged = merge(reports, args.reports)
    except MergeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 4
    with writing_output(args.output, "the merged report"):
        write(Path(args.output), merged)
    skipped = merged.get("skipped") or 0
    print(
        f"merged {counted(len(reports), 'report')}: {counted(merged['total'], 'golden')}, "
        f"{merged['passed']} passed, "
        f"{merged['failed']} failed"
        + (f", {skipped} skipped" if skipped else "")
        + f" -> {args.output}"
    )
    return 0


def _port(raw: str) -> int:
    """An argparse type: a TCP port, 0 (any free port) to 65535."""
    try:
        value = int(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{raw!r} is not a port number") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"{raw}: ports are 0 (a free one) to 65535")
    return value


class _Parser(argparse.ArgumentParser):
    """A subcommand's parser that takes options between positionals (`opswald diff A
    --json B`), as most command-line tools do; argparse's default stops at the first
    option and then rejects B."""

    _plain = False

    def parse_known_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> tuple[argparse.Namespace, list[str]]:
        nested = any(a.nargs in (argparse.PARSER, argparse.REMAINDER) for a in self._actions)
        if self._plain or nested:
            return super().parse_known_args(args, namespace)
        self._plain = True  # parse_known_intermixed_args calls back into this method
        try:
            parsed, extra = self.parse_known_intermixed_args(args, namespace)
        finally:
            self._plain = False
        if extra:  # refused by `main` with this subcommand's usage, not the top level's
            parsed._extra_for = self
        return parsed, extra


def _config_file_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-c",
        "--config-file",
        metavar="FILE",
        help="the pytest config file whose opswald settings apply (as pytest's -c); by "
        "default the one pytest finds for the golden: pytest.ini, pyproject.toml, tox.ini "
        "or setup.cfg in its folder or above",
    )


_DEFAULT_PATHS_HELP = (
    "files or folders; none: those `pytest --opswald-goldens` collects with no paths "
    "(testpaths and opswald_goldens of the pytest config)"
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="opswald", description="golden sessions of AI agents")
    parser.add_argument("--version", action=_Version)
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    schema = sub.add_parser("schema", help="print the JSON Schema of golden files")
    schema.add_argument("--report", action="store_true", help="the JSON report's schema instead")
    schema.set_defaults(func=cmd_schema)
    report = sub.add_parser("report", help="work with JSON reports")
    report_sub = report.add_subparsers(dest="report_command", required=True)
    merge = report_sub.add_parser("merge", help="combine the JSON reports of several shards")
    merge.add_argument("reports", nargs="+")
    merge.add_argument("-o", "--output", required=True)
    merge.set_defaults(func=cmd_report_merge, inputs=("reports",))
    validate = sub.add_parser("validate", help="check golden files (files or folders)")
    validate.add_argument("paths", nargs="*", help=_DEFAULT_PATHS_HELP)
    validate.add_argument("--json", action="store_true", help="machine-readable output")
    validate.set_defaults(func=cmd_validate, inputs=("paths",))
    serve = sub.add_parser(
        "serve", help="answer OpenAI/Anthropic API calls from a golden on 127.0.0.1"
    )
    serve.add_argument("golden")
    serve.add_argument("--port", type=_port, default=0, help="default: a free port")
    serve.add_argument("--host", default="127.0.0.1", help="loopback only")
    _config_file_option(serve)
    serve.set_defaults(func=cmd_serve, inputs=("golden",))
    replay = sub.add_parser(
        "replay", help="replay a golden through the agent, one line per step (or step by step)"
    )
    replay.add_argument("golden")
    replay.add_argument(
        "--adapter",
        help="package.module:callable (default: the golden's agent, else opswald_adapter in "
        "the pytest config)",
    )
    replay.add_argument("--interactive", "-i", action="store_true", help="pause before each step")
    replay.add_argument("--mode", choices=("replay", "live", "fork"), default=None)
    replay.add_argument(
        "--modify", action="append", default=[], metavar="KEY=VALUE", help="VALUE is YAML"
    )
    replay.add_argument("--fork-at", type=int, metavar="N", help="run live from step N on")
    replay.add_argument(
        "--allow-side-effects",
        action="store_true",
        help="let tools marked side_effects=True run live in a fork or --mode live "
        "(blocked by default)",
    )
    replay.add_argument("--speed", metavar="realtime|FACTOR", help="sleep recorded durations")
    _config_file_option(replay)
    replay.set_defaults(func=cmd_replay, inputs=("golden",))
    from opswald import cli_inspect, cli_traces
    from opswald.report import html_cli

    cli_inspect.add_parsers(sub)
    cli_traces.add_parsers(sub)
    html_cli.add_parser(sub)
    helps = _helps(parser)
    for name, command in _commands(parser):
        if not command.description and helps.get(name):  # --help says what it does
            command.description = helps[name]
        if not command.epilog and name in EXAMPLES:
            command.epilog = "example:\n  " + EXAMPLES[name].replace("\n", "\n  ")
            command.formatter_class = argparse.RawDescriptionHelpFormatter
    return parser


EXAMPLES = {
    "schema": "opswald schema > golden.schema.json\nopswald schema --report > report.schema.json",
    "report": "opswald report merge shard1.json shard2.json -o report.json",
    "report merge": "opswald report merge shard*.json -o report.json",
    "validate": "opswald validate goldens/ --json",
    "serve": "opswald serve goldens/refund.golden.yaml --port 8765\n"
    "OPENAI_BASE_URL=http://127.0.0.1:8765/v1 node agent.js",
    "replay": "opswald replay goldens/refund.golden.yaml --adapter examples.travel_agent:run -i",
    "traces": "opswald traces list --error --limit 20",
    "traces list": "opswald traces list --error --tag billing --limit 20",
    "traces prune": "opswald traces prune --older-than 30d",
    "golden": 'opswald golden note goldens/refund.golden.yaml --step 4 "refund policy v2"',
    "golden create": "opswald golden create 3f9c2a --name q1_report_missing --tags reports,bugs",
    "import": "opswald import otel trace.json -o goldens/",
    "html": "opswald html goldens/ --actual-dir actual/ -o report.html",
}


def _helps(parser: argparse.ArgumentParser, prefix: str = "") -> dict[str, str]:
    """Every (sub)command's one-line help by its full name, as the list of commands says it."""
    out: dict[str, str] = {}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for choice in action._choices_actions:
                full = f"{prefix} {choice.dest}".strip()
                if choice.help:
                    out[full] = str(choice.help)
                out.update(_helps(action.choices[choice.dest], full))
    return out


def _commands(parser: argparse.ArgumentParser, prefix: str = "") -> list[tuple[str, Any]]:
    """Every (sub)command parser by its full name ("traces list")."""
    out: list[tuple[str, Any]] = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, command in action.choices.items():
                full = f"{prefix} {name}".strip()
                out.append((full, command))
                out.extend(_commands(command, full))
    return out


_PATH_ARGUMENTS = ("paths", "goldens", "golden", "output")


def not_found(args: argparse.Namespace) -> list[str]:
    """The paths given to the command to read (its parser's `inputs`) that name nothing, as
    given (a folder's trailing / kept). As `pytest nope` is, such a path is a usage error
    (exit 4, nothing run), not an unreadable golden: a typo in a folder's name would
    otherwise read as one invalid golden, or a viewer page of one error row. A dangling
    symlink names something, a link: it is read, and said unreadable, as a golden; `a.yaml/`
    (a file named as a folder) names nothing."""
    given: list[str] = []
    for name in getattr(args, "inputs", ()):
        value = getattr(args, name, None)
        given.extend([value] if isinstance(value, str) else value or [])
    return [path for path in given if not os.path.lexists(path)]


def with_golden_limits(args: argparse.Namespace) -> int:
    """The command, once every path it is given to read names something (`not_found`),
    with the golden caps (opswald_max_golden_bytes, opswald_max_golden_depth) of the pytest
    config found for the paths it is given in force for what it loads and writes."""
    from opswald import projectconfig
    from opswald.cli_inspect import CliError
    from opswald.files import using_limits

    missing = not_found(args)
    if missing:  # before anything is read or written: no page, no report, no golden
        for path in missing:
            print(f"error: file or folder not found: {path}", file=sys.stderr)
        return 4
    if args.func in (cmd_schema, cmd_report_merge):  # they read and write no golden
        return int(args.func(args))
    paths: list[str] = []
    for name in _PATH_ARGUMENTS:
        value = getattr(args, name, None)
        paths.extend([value] if isinstance(value, str) else value or [])
    try:
        config = projectconfig.find(paths, config_file=getattr(args, "config_file", None))
        limits = projectconfig.config_limits(config)
    except projectconfig.SettingError as exc:
        raise CliError(str(exc)) from None
    with using_limits(limits):
        return int(args.func(args))


def main(argv: Sequence[str] | None = None) -> int:
    from opswald.cli_inspect import run

    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra:
        refusing: argparse.ArgumentParser = getattr(args, "_extra_for", parser)
        refusing.error(f"unrecognized arguments: {' '.join(extra)}")
    vars(args).pop("_extra_for", None)
    # golden names and session content (model output is untrusted) are printed escaped:
    # a control sequence or a bidi override in them never reaches the terminal as such
    out, err = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = EscapingStream(out), EscapingStream(err)
    try:
        status = run(with_golden_limits, args)
        sys.stdout.flush()
    except BrokenPipeError:
        # the reader of our output went away (`opswald show ... | head`): stop quietly, as
        # command-line tools do, and keep Python from complaining again at exit
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
        return 141  # 128 + SIGPIPE, what a shell reports for a tool killed by the pipe
    finally:
        sys.stdout, sys.stderr = out, err
    return status


if __name__ == "__main__":
    raise SystemExit(main())
