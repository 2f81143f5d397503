"""The `opswald` command line (more subcommands arrive with later features)."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path


def _iter_goldens(paths: Sequence[str]) -> list[Path]:
    from opswald.files import is_golden_path

    found: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found.extend(sorted(p for p in path.rglob("*") if is_golden_path(p)))
        else:
            found.append(path)
    return found


def cmd_schema(args: argparse.Namespace) -> int:
    from opswald.session import json_schema

    print(json.dumps(json_schema(), indent=2))
    return 0


def cmd_validate(args: argparse.Namespace) -> int:
    from opswald.files import GoldenLoadError, load

    goldens = _iter_goldens(args.paths)
    if not goldens:
        print("no golden files found", file=sys.stderr)
        return 4
    bad = 0
    for path in goldens:
        try:
            session = load(path)
        except GoldenLoadError as exc:
            bad += 1
            print(f"error: {exc}")
            continue
        except OSError as exc:
            bad += 1
            print(f"error: {path}: {exc.strerror or exc}")
            continue
        kind = "stub (not recorded yet)" if session.is_stub else f"{len(session.step_list)} steps"
        print(f"ok: {path} ({kind})")
    print(f"{len(goldens) - bad} valid, {bad} invalid")
    return 1 if bad else 0


def cmd_show(args: argparse.Namespace) -> int:
    from opswald.files import GoldenLoadError, load
    from opswald.session import LLMCallStep, StateStep, ToolCallStep, UserInputStep

    try:
        session = load(args.golden)
    except (GoldenLoadError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    total = len(session.step_list)
    print(f"{session.name or args.golden}: {total} steps")
    for step in session.step_list:
        head = f"step {step.step} of {total} · {step.type}"
        if isinstance(step, ToolCallStep):
            detail = f"{step.tool}({json.dumps(step.input, ensure_ascii=False)[:80]})"
            if step.error is not None:
                detail += f" -> {step.error.type}: {step.error.message}"
        elif isinstance(step, LLMCallStep):
            out = step.output
            calls = len(out.tool_calls or []) if out else 0
            detail = f"{step.model or ''} " + (
                f"{calls} tool call(s)" if calls else repr(out.content if out else None)[:80]
            )
        elif isinstance(step, UserInputStep):
            detail = repr(step.content)[:80]
        else:
            assert isinstance(step, StateStep)
            detail = ", ".join(k for k in ("memory", "variables", "context") if getattr(step, k))
        print(f"  {head} {detail}".rstrip())
    print(f"output: {json.dumps(session.output, ensure_ascii=False)[:200]}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="opswald", description="golden sessions of AI agents")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("schema", help="print the JSON Schema of golden files").set_defaults(
        func=cmd_schema
    )
    validate = sub.add_parser("validate", help="check golden files (files or folders)")
    validate.add_argument("paths", nargs="+")
    validate.set_defaults(func=cmd_validate)
    show = sub.add_parser("show", help="print a golden's steps")
    show.add_argument("golden")
    show.set_defaults(func=cmd_show)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    raise SystemExit(main())
