"""pytest hooks of pytest-opswald: options, collection, the marker, the summary."""

from __future__ import annotations

import contextlib
import importlib
import math
import os
import re
import warnings
from collections.abc import Callable, Generator, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from opswald.suffixes import is_golden_path  # light: asked about every file collected

if TYPE_CHECKING:
    from opswald.session import NormalizeRule

MODES = ("replay", "record", "rerecord", "live")
DIFF_MODES = ("detailed", "short", "disabled")

OUTCOME_KEY = pytest.StashKey[Any]()
_SETTINGS_KEY = pytest.StashKey[Any]()
_NORMALIZE_KEY = pytest.StashKey["list[NormalizeRule]"]()
_OPTION_DEFAULTS: dict[str, Any] = {}  # dest: default, of each option of the plugin
_INI_DEFAULTS: dict[str, Any] = {}  # name: default, of each setting of the plugin
_INI_TYPES: dict[str, str] = {}  # name: pytest's type of the setting ("string" when none)
_PENDING_SETTINGS_KEY = pytest.StashKey[Any]()  # what builds the settings, until they are
INI_USEFIXTURES = pytest.StashKey[tuple[str, ...]]()
"""The ini option `usefixtures` as written (read when pytest is configured)."""
# set on a marker test whose golden could not be run (a stub, a step modification with no
# fork step, an adapter not found): pytest reports it as an error, and opswald's reports
# count it as a failed golden, so that their gate agrees with pytest's exit status
UNRUN_KEY = pytest.StashKey[bool]()
_RUN_NOTES_KEY = pytest.StashKey[list[str]]()
_SAVED_ACTUALS_KEY = pytest.StashKey[set[Path]]()  # saved actuals this process wrote


def run_note(config: pytest.Config, note: str) -> None:
    """A notice for the summary's `note:` lines, said once however often it is raised."""
    notes = config.stash.setdefault(_RUN_NOTES_KEY, [])
    if note not in notes:
        notes.append(note)


def take_run_notes(config: pytest.Config) -> list[str]:
    """The run's notices raised since the last call: missing prices (each model once per
    process), redaction rules that failed on a text (each once)."""
    notes = config.stash.get(_RUN_NOTES_KEY, [])
    taken = list(notes)
    notes.clear()
    return taken


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    from opswald import hookspecs

    pluginmanager.add_hookspecs(hookspecs)


_ADAPTERS_BEFORE = pytest.StashKey[dict[str, Any]]()


@pytest.hookimpl(tryfirst=True)
def pytest_load_initial_conftests(early_config: pytest.Config) -> None:
    """The adapters registered before this run's conftests load: put back at its end, so a
    run made in-process (pytester) leaves none of its own to the next one, whose goldens
    would be told their `agent:` names none of them."""
    from opswald import adapters

    early_config.stash[_ADAPTERS_BEFORE] = adapters.registered()


def pytest_unconfigure(config: pytest.Config) -> None:
    if _ADAPTERS_BEFORE in config.stash:
        from opswald import adapters

        adapters.restore(config.stash[_ADAPTERS_BEFORE])


def pytest_addoption(parser: pytest.Parser) -> None:
    from opswald.argtypes import milliseconds_arg

    group = parser.getgroup("opswald", "golden-session regression testing of AI agents")

    def add(*names: str, **attrs: Any) -> None:
        group.addoption(*names, **attrs)
        dest = attrs.get("dest") or names[0].lstrip("-").replace("-", "_")
        store_true = attrs.get("action") == "store_true"
        _OPTION_DEFAULTS[dest] = attrs.get("default", False if store_true else None)

    def ini(name: str, text: str, **attrs: Any) -> None:
        parser.addini(name, text, **attrs)
        _INI_DEFAULTS[name] = attrs.get("default", "")
        _INI_TYPES[name] = attrs.get("type") or "string"

    add(
        "--opswald-goldens",
        action="store_true",
        help="collect golden files (*.golden.yaml|yml|json) from the given paths, or from the "
        "folders of the ini option opswald_goldens when no path is given",
    )
    add(
        "--opswald-mode",
        choices=MODES,
        default=None,
        help="replay (default): answers from the golden, offline; record: record stubs, replay "
        "the rest; rerecord: record every selected golden again; live: run for real, judge on "
        "expectations, write nothing",
    )
    add(
        "--opswald-update",
        action="store_true",
        help="rewrite failing goldens: keep the steps before the first divergence, record the rest",
    )
    add(
        "--opswald-force",
        action="store_true",
        help="allow writing goldens when the CI environment variable is set",
    )
    add(
        "--opswald-allow-side-effects",
        action="store_true",
        help="let tools marked side_effects=True run during update and live runs",
    )
    add(
        "--opswald-diff-mode",
        choices=DIFF_MODES,
        default=None,
        help="how much of each difference a failure shows (default: detailed)",
    )
    add(
        "--opswald-modify",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a modification for every golden (repeatable; VALUE is read as YAML: a scalar, "
        "or a mapping or list in flow style, `tool_params={city: Oslo}`). model, "
        "temperature, top_p, max_tokens and seed are also applied to outgoing LLM requests; "
        "the run forks at the first call they change and is judged on expectations",
    )
    add(
        "--opswald-variant",
        action="append",
        default=[],
        metavar="NAME:KEY=VALUE[,KEY=VALUE]",
        help="run every golden once per variant, as name[NAME] (repeatable)",
    )
    add(
        "--opswald-fork-at",
        type=int,
        default=None,
        metavar="N",
        help="replay the calls before step N, run live from step N on (judged on expectations)",
    )
    add(
        "--opswald-json",
        default=None,
        metavar="PATH",
        help="write a JSON report of the goldens (schema: opswald schema --report)",
    )
    add(
        "--opswald-html",
        default=None,
        metavar="PATH",
        help="write the replay viewer: one self-contained HTML page for the whole run",
    )
    add(
        "--opswald-save-actual",
        default=None,
        metavar="DIR",
        help="write each failed golden's actual session (same schema, redacted) into DIR",
    )
    add(
        "--opswald-slow-ms",
        type=milliseconds_arg,  # a negative value is a usage error, as in opswald analyze
        default=5000.0,
        metavar="MS",
        help="steps slower than this are listed in the latency analysis (default 5000)",
    )
    add(
        "--opswald-repeat",
        type=int,
        default=1,
        metavar="N",
        help="run each golden N times (for live runs of a non-deterministic agent)",
    )
    add(
        "--opswald-min-pass-rate",
        type=float,
        default=1.0,
        metavar="RATE",
        help="with --opswald-repeat: a golden passes when at least this fraction of its runs "
        "pass (0..1, default 1.0)",
    )
    add(
        "--opswald-break",
        action="append",
        default=[],
        metavar="EXPR",
        help='a conditional breakpoint checked after every step, e.g. "total_cost > 0.50", '
        '"tool_name == \'send_email\'", "memory.changed" (repeatable)',
    )
    add(
        "--opswald-break-action",
        choices=("pause", "log", "fail"),
        default="pause",
        help="what a breakpoint does: pause (pdb, with replay, step and state in scope), log "
        "(a note in the summary) or fail the golden (default: pause)",
    )
    add(
        "--opswald-timeout",
        type=float,
        default=None,
        metavar="SECONDS",
        help="stop an agent that runs longer (a golden's own `timeout:` wins); the agent runs "
        "in a forked child process that is killed on timeout (POSIX only: it needs fork)",
    )
    ini(
        "opswald_goldens",
        "where --opswald-goldens looks when no path is given: folders or files relative to "
        "the rootdir, separated by spaces or lines, glob patterns allowed (as testpaths)",
        type="args",
        default=["goldens"],
    )
    ini("opswald_mode", "default for --opswald-mode", default="replay")
    ini("opswald_diff_mode", "default for --opswald-diff-mode", default="detailed")
    ini("opswald_adapter", "the agent: 'package.module:callable'", default="")
    ini(
        "opswald_request_ignore",
        "request paths ignored when matching LLM calls, for every golden (input.params.seed)",
        type="linelist",
        default=[],
    )
    ini(
        "opswald_request_normalize",
        "'REGEX => PLACEHOLDER' lines applied to requests before matching, for every golden",
        type="linelist",
        default=[],
    )
    ini(
        "opswald_embedder",
        "'package.module:callable' returning one vector per text, for match: embedding",
        default="",
    )
    ini(
        "opswald_judge",
        "'package.module:callable' judging outputs for match: judge",
        default="",
    )
    ini(
        "opswald_prices",
        "a YAML price file laid over the shipped price table (same shape)",
        default="",
    )
    ini(
        "opswald_integrations",
        "framework integrations whose tool calls are recorded and served: "
        "langchain, openai_agents, pydantic_ai, mcp",
        type="args",
        default=[],
    )
    ini(
        "opswald_side_effect_tools",
        "tool names treated as side_effects=True (framework tools, MCP tools)",
        type="args",
        default=[],
    )
    ini(
        "opswald_langgraph_state",
        "with the langchain integration: record the state each LangGraph node starts "
        "from as a state step",
        type="bool",
        default=False,
    )
    ini(
        "opswald_max_golden_bytes",
        "the largest golden file loaded or written, in bytes: 1024 or more (default "
        "20971520: 20 MB)",
        default="",
    )
    ini(
        "opswald_max_golden_depth",
        # the range the setting accepts (projectconfig.golden_limits), not only its ceiling
        "how deeply a golden's data may nest, in levels: 16 to 200 (default 64)",
        default="",
    )
    ini(
        "opswald_redact",
        "extra redaction: 'pii' also scrubs e-mail addresses and phone numbers, in what is "
        "written and in requests before they are matched",
        default="",
    )


# the options of ours that take a value: given as two words (`--opswald-html PATH`), the
# value is a word pytest may take for a test path when it looks for the rootdir
VALUE_OPTIONS = (
    "--opswald-mode",
    "--opswald-diff-mode",
    "--opswald-modify",
    "--opswald-variant",
    "--opswald-fork-at",
    "--opswald-json",
    "--opswald-html",
    "--opswald-save-actual",
    "--opswald-slow-ms",
    "--opswald-repeat",
    "--opswald-min-pass-rate",
    "--opswald-break",
    "--opswald-break-action",
    "--opswald-timeout",
)


def _check_values_not_taken_for_paths(config: pytest.Config) -> None:
    """pytest finds its rootdir and config file before it knows plugins' options, so the
    value of `--opswald-html PATH` given as a word of its own counts as a test path then
    when it names a file or folder that exists (a report a run before wrote): one outside
    the project moves the rootdir up, past the project's config file, and every golden
    then fails for want of its settings. A usage error says so when the rootdir or the
    config file pytest found is not the one it finds without those words (worked out
    with the command line's reader of pytest's rules; when that reader does not find what
    pytest found with them, nothing is said)."""
    import shlex

    if config.option.inifilename or getattr(config.option, "rootdir", None):
        return  # -c or --rootdir: no test path was looked at
    here = config.invocation_params.dir
    try:
        words = [*shlex.split(os.environ.get("PYTEST_ADDOPTS", "")), *config.invocation_params.args]
    except ValueError:
        return
    taken: list[tuple[str, str]] = []
    for i, word in enumerate(words[:-1]):
        if word in VALUE_OPTIONS:
            with contextlib.suppress(OSError, ValueError):  # a name too long, a NUL byte
                if (here / words[i + 1]).exists():
                    taken.append((word, words[i + 1]))
    if not taken:
        return
    # the test paths as pytest read them once every option was known (the values of
    # `--junitxml PATH`, `-k EXPR` and of opswald's options are not among them)
    paths = [str(arg).split("::")[0] for arg in config.option.file_or_dir or ()]
    from opswald.projectconfig import SettingError, find

    found = (config.rootpath, config.inipath)
    try:
        with_them = find([*paths, *(value for _, value in taken)], invocation_dir=here)
        without = find(paths, invocation_dir=here)
    except (SettingError, OSError):
        return
    if (with_them.rootdir, with_them.inipath) != found:
        return  # not pytest's own reading of these words
    if (without.rootdir, without.inipath) == found:
        return
    option, value = taken[0]
    config_file = str(config.inipath) if config.inipath else "no config file"
    instead = str(without.inipath) if without.inipath else "no config file"
    raise pytest.UsageError(
        f"{option} {value}: pytest looks for its rootdir and config file before it knows "
        f"plugins' options, and took {value} (which exists) for a test path: it found "
        f"rootdir {config.rootpath} and {config_file}, where it would have found "
        f"{without.rootdir} and {instead}. Give the value with '=': {option}={value}"
    )


def pytest_configure(config: pytest.Config) -> None:
    _check_values_not_taken_for_paths(config)

    # as written: pytest's fixture manager later adds the root's autouse fixtures to the
    # list getini gives (it keeps that list as the autouse names of the root)
    config.stash[INI_USEFIXTURES] = tuple(config.getini("usefixtures"))

    config.addinivalue_line(
        "markers",
        "golden(path, modify=None, expect=None, verdict=True): replay a golden session for "
        "this test; the golden_replay fixture returns the result",
    )
    _check_breakpoints(config)
    _check_report_paths(config)
    timeout = config.getoption("opswald_timeout")
    # a golden's `timeout:` is finite too; a very long one waits as long as the agent runs
    if timeout is not None and not 0 < timeout < math.inf:  # NaN fails both
        raise pytest.UsageError(
            f"--opswald-timeout must be a positive, finite number of seconds, not {timeout:g}"
        )
    fork_at = config.getoption("opswald_fork_at")
    if fork_at is not None and fork_at < 1:
        raise pytest.UsageError("--opswald-fork-at: steps are numbered from 1")
    mode: Any = config.getoption("opswald_mode") or _ini_choice(config, "opswald_mode", MODES)
    diff_mode: Any = config.getoption("opswald_diff_mode") or _ini_choice(
        config, "opswald_diff_mode", DIFF_MODES
    )
    redact = _ini_choice(config, "opswald_redact", ("", "pii"))
    if fork_at is not None and config.getoption("opswald_update"):
        raise pytest.UsageError(
            "--opswald-fork-at runs a fork, which is judged and never written: drop "
            "--opswald-update (an update already continues live from the first divergence)"
        )
    if fork_at is not None and mode in ("live", "rerecord"):
        raise pytest.UsageError(
            f"--opswald-fork-at replays the steps before the fork: it does not combine with "
            f"--opswald-mode={mode}, which runs every call live"
        )
    if fork_at is not None and mode == "record":
        raise pytest.UsageError(
            "--opswald-fork-at runs a fork, which is judged and never written: it does not "
            "combine with --opswald-mode=record, which writes the stubs it records (run the "
            "fork without it)"
        )
    if config.getoption("opswald_update") and mode in ("live", "rerecord"):
        _refuse_update_with(config, mode)
    variants = parse_variants(config.getoption("opswald_variant"))
    writes = "--opswald-update" if config.getoption("opswald_update") else None
    if mode in ("record", "rerecord"):
        writes = f"--opswald-mode={mode}"
    if len(variants) > 1 and writes is not None:
        raise pytest.UsageError(
            f"{writes} with {len(variants)} variants would write each golden once per "
            "variant, the last run winning: one golden holds one session. Compare the "
            f"variants without {writes}, then write the one you choose with "
            "--opswald-variant NAME:... (or --opswald-modify) alone"
        )
    modify = parse_assignments(config.getoption("opswald_modify"), "--opswald-modify")
    for name, variant_mods in variants:  # the command line's value wins: said, once
        over = [k for k in variant_mods if k in modify and modify[k] != variant_mods[k]]
        if over:
            given = ", ".join(f"{k}={modify[k]}" for k in over)
            its = ", ".join(f"{k}={variant_mods[k]}" for k in over)
            run_note(
                config,
                f"--opswald-modify {given} overrides the variant {name}'s {its}: the variant "
                "runs with the command line's value",
            )

    def build() -> Any:
        from opswald.files import using_limits
        from opswald.items import Settings
        from opswald.projectconfig import SettingError, golden_limits, normalize_rules
        from opswald.redact import make_redactor, using_redactor

        try:
            normalize = normalize_rules(_getini(config, "opswald_request_normalize"))
            limits = golden_limits(
                _getini(config, "opswald_max_golden_bytes"),
                _getini(config, "opswald_max_golden_depth"),
            )
        except SettingError as exc:
            raise pytest.UsageError(str(exc)) from None
        settings = Settings(
            modify=modify,
            variants=variants,
            fork_at=fork_at,
            timeout=timeout,
            tolerance=_tolerance(config),
            repeat=_repeat(config),
            min_pass_rate=_min_pass_rate(config),
            mode=mode,
            update=config.getoption("opswald_update"),
            force=config.getoption("opswald_force"),
            allow_side_effects=config.getoption("opswald_allow_side_effects"),
            diff_mode=diff_mode,
            adapter=_getini(config, "opswald_adapter") or None,
            adapter_root=_config_folder(config),
            requests=_suite_requests(config, normalize),
            prices=_pricer(config),
            integrations=_integrations(config),
            side_effect_tools=frozenset(_names(_getini(config, "opswald_side_effect_tools"))),
            langgraph_state=_ini_bool(config, "opswald_langgraph_state"),
            limits=limits,
            redactor=make_redactor(pii=redact == "pii", extra=_hook_redaction_rules(config)),
        )
        _for_the_run(config, using_limits(limits))
        _for_the_run(config, using_redactor(settings.redactor))
        return settings

    config.stash[_PENDING_SETTINGS_KEY] = build
    # a bad setting is a usage error now, before anything runs. Under pytester the engine
    # is loaded now too: an in-process run (`pytester.runpytest`) drops the modules first
    # imported inside it, and PyYAML's C parser does not load again with them
    if config.pluginmanager.has_plugin("pytester"):
        _load_engine(config)
    elif _in_use(config):
        settings_of(config)
    if config.getoption("opswald_goldens"):
        _add_default_goldens_path(config)
    else:
        _refuse_golden_args(config)
    _make_report_folders(config)
    config.pluginmanager.register(SummaryPlugin(config), "opswald-summary")
    config.pluginmanager.register(LocalRedaction(config), "opswald-local-redaction")
    config.pluginmanager.register(SnapshotDiff(), "opswald-snapshot-diff")
    if variants:
        config.pluginmanager.register(MarkerVariants(variants), "opswald-marker-variants")


# the report options that name a file written when the run ends, and the file name their
# usage errors suggest
_REPORT_FILES = {"--opswald-json": "report.json", "--opswald-html": "viewer.html"}


def _files_asked(config: pytest.Config) -> bool:
    """Whether a report or the saved actuals were asked for (else nothing to check)."""
    return any(
        config.getoption(name) for name in ("opswald_json", "opswald_html", "opswald_save_actual")
    )


def _check_report_paths(config: pytest.Config) -> None:
    """--opswald-json and --opswald-html name files written when the run ends: a folder
    there, or a file where a folder of the path must be, is a usage error now, as pytest's
    `--junitxml` gives, rather than a failed write after every golden has run."""
    if not _files_asked(config):
        return
    from opswald.files import folder_path_problem, is_special_file, report_path_problem

    here = config.invocation_params.dir
    given: dict[Path, str] = {}
    for option, example in _REPORT_FILES.items():
        value = config.getoption(option.lstrip("-").replace("-", "_"))
        if not value:
            continue
        problem = report_path_problem(here, value, example)
        if problem is not None:
            raise pytest.UsageError(f"{option} must be a file name: {problem}")
        target = Path(os.path.abspath(here / value))
        if is_special_file(target):  # /dev/null for both: written into, each in turn
            continue
        if target in given:
            raise pytest.UsageError(
                f"{given[target]} and {option} both name {value}: the one written last would "
                "replace the other; give each its own file"
            )
        given[target] = option
    folder = config.getoption("opswald_save_actual")
    if folder:
        problem = folder_path_problem(here, folder)
        if problem is not None:
            raise pytest.UsageError(f"--opswald-save-actual must be a folder: {problem}")


def _make_report_folders(config: pytest.Config) -> None:
    """The folders of the reports, made now (pytest's --junitxml makes its at the end): a
    folder that cannot be made or written in is a usage error before any golden runs, not
    a report lost when the run ends. (The controller makes them for xdist's workers.)"""
    if hasattr(config, "workerinput"):
        return
    if not _files_asked(config):
        return
    from opswald.files import output_file_problem, writable_folder_problem

    here = config.invocation_params.dir
    for option in (*_REPORT_FILES, "--opswald-save-actual"):
        value = config.getoption(option.lstrip("-").replace("-", "_"))
        if not value:
            continue
        if option == "--opswald-save-actual":
            problem = writable_folder_problem(here / value, value)
        else:  # /dev/null and the like are written into: no file is made beside them
            problem = output_file_problem(here, value)
        if problem is not None:
            raise pytest.UsageError(f"{option}: cannot write {value}: {problem}")


def _refuse_update_with(config: pytest.Config, mode: str) -> None:
    """An update with a mode that runs every call live would drop one of the two without a
    word: the update's replay turned a live run's regression into a pass, and rerecord
    rewrote passing goldens too. (record and update agree: both record a stub.)"""
    given = (
        f"--opswald-mode={mode}"
        if config.getoption("opswald_mode")
        else f"opswald_mode = {mode} (in the pytest config)"
    )
    what = (
        "a live run runs every call for real and writes nothing"
        if mode == "live"
        else "a rerecord runs every selected golden for real and writes it again from "
        "scratch, passing ones too"
    )
    raise pytest.UsageError(
        f"--opswald-update with {given}: an update replays the recorded calls up to the "
        "first divergence and rewrites failing goldens only; "
        f"{what}. Choose one: --opswald-mode=rerecord writes what a live run does, "
        "--opswald-update alone rewrites the failing goldens"
        + (", --opswald-mode=live alone judges a live run" if mode == "live" else "")
    )


def _for_the_run(config: pytest.Config, setting: contextlib.AbstractContextManager[Any]) -> None:
    """A setting in force for the run's own context until pytest unconfigures: the golden
    caps of the ini (`files.using_limits`), so that `opswald.load`, `opswald.dump` and
    `opswald.Replay` in a test apply them too, and the run's redaction rules
    (`redact.using_redactor`), so that `opswald.record` and `opswald.dump` in a test hide
    what the run's own recordings hide."""
    stack = contextlib.ExitStack()
    stack.enter_context(setting)

    def restore() -> None:
        with contextlib.suppress(ValueError, RuntimeError):  # set in another context
            stack.close()

    config.add_cleanup(restore)


def _ini_choice(config: pytest.Config, name: str, choices: tuple[str, ...]) -> str:
    """An ini value that must be one of `choices` (as the option's own values are; case
    aside): a typo such as `opswald_mode = recrod` is a usage error, not a silent default."""
    value = str(_getini(config, name))
    if value.strip().lower() in choices:
        return value.strip().lower()
    from opswald.projectconfig import SettingError, choice

    try:
        return choice(name, value, choices)
    except SettingError as exc:
        raise pytest.UsageError(str(exc)) from None


def _ini_bool(config: pytest.Config, name: str) -> bool:
    """A `bool` ini value; a value pytest cannot read is a usage error, not INTERNALERROR."""
    try:
        value = _getini(config, name)
        if isinstance(value, str):  # pytest 9's TOML table holding a string for it
            from opswald.projectconfig import truth

            return truth(value)
        return bool(value)
    except ValueError as exc:  # pytest's "invalid truth value 'x'"
        raise pytest.UsageError(f"{name}: {exc}; write true or false") from None


def _getini(config: pytest.Config, name: str) -> Any:
    """`config.getini(name)` of one of opswald's settings, also where pytest 9's native
    `[tool.pytest]` table holds it in another TOML type than the setting's: a number for a
    text setting (`opswald_max_golden_bytes = 52428800`) is read as its text, a string for
    a true/false one as an ini file's text; any other mismatch is a usage error naming the
    setting (pytest 9.0 and 9.1 raise a TypeError, an INTERNALERROR; 9.2 a usage error
    without the fix)."""
    try:
        return config.getini(name)
    except (TypeError, pytest.UsageError) as exc:
        if isinstance(exc, pytest.UsageError) and not isinstance(exc.__cause__, TypeError):
            raise
        entry = getattr(config, "_inicfg", {}).get(name)  # pytest 9: the TOML value
        raw = getattr(entry, "value", None)
        if isinstance(raw, int | float) and not isinstance(raw, bool):
            return str(raw)
        if isinstance(raw, str) and _INI_TYPES.get(name) == "bool":
            return raw
        raise pytest.UsageError(f"{exc}; write it as a TOML {_toml_kind(name)}") from None


def _toml_kind(name: str) -> str:
    kind = _INI_TYPES.get(name)
    if kind == "bool":
        return "true or false"
    if kind in ("args", "linelist", "paths"):
        return 'list of strings (["a", "b"])'
    return 'string ("...")'


def _names(values: list[str]) -> list[str]:
    """ini `args` values, also accepting commas: `a, b` and `a b` are the same list."""
    from opswald.projectconfig import names

    return names(values)


def _integrations(config: pytest.Config) -> tuple[str, ...]:
    from opswald.projectconfig import SettingError, integrations

    try:
        return integrations(_getini(config, "opswald_integrations"))
    except SettingError as exc:
        raise pytest.UsageError(str(exc)) from None


_BREAKPOINTS_KEY = pytest.StashKey[Any]()
_PLUGIN_MARKERS_KEY = pytest.StashKey[dict[str, str]]()

# markers of well-known pytest plugins that take over how a test runs: a golden tagged with
# one (while its plugin is installed) would be run by that plugin, or crash it (a bare
# `timeout` mark is an INTERNALERROR of pytest-timeout; `flaky` reruns the golden)
RUN_CHANGING_MARKERS = frozenset(
    {
        "timeout",  # pytest-timeout
        "flaky",  # pytest-rerunfailures
        "xdist_group",  # pytest-xdist (--dist loadgroup)
        "asyncio",  # pytest-asyncio
        "anyio",  # anyio's plugin
        "trio",  # pytest-trio
        "order",  # pytest-order
        "repeat",  # pytest-repeat
        "dependency",  # pytest-dependency
        "forked",  # pytest-forked
        "django_db",  # pytest-django
        "vcr",  # pytest-recording
        "block_network",  # pytest-recording
        "default_cassette",  # pytest-recording
        "allowed_hosts",  # pytest-recording
        "benchmark",  # pytest-benchmark
        "no_cover",  # pytest-cov
    }
)


def plugin_markers(config: pytest.Config) -> dict[str, str]:
    """The run-changing plugin markers registered in this run (their plugin is installed),
    by name, with the line each was registered with: golden `tags` never name them."""
    if _PLUGIN_MARKERS_KEY not in config.stash:
        registered: dict[str, str] = {}
        for line in config.getini("markers"):
            name = str(line).split(":")[0].split("(")[0].strip()
            if name in RUN_CHANGING_MARKERS:
                registered.setdefault(name, str(line).split(":")[0].strip())
        config.stash[_PLUGIN_MARKERS_KEY] = registered
    return config.stash[_PLUGIN_MARKERS_KEY]


def _check_breakpoints(config: pytest.Config) -> None:
    """Compile --opswald-break expressions now: a bad one is a usage error (exit code 4)."""
    expressions = config.getoption("opswald_break")
    if not expressions:
        return
    from opswald.engine.breakpoints import BreakpointError

    action = config.getoption("opswald_break_action")
    if action == "pause":
        if getattr(config.option, "numprocesses", None) or hasattr(config, "workerinput"):
            raise pytest.UsageError(
                "--opswald-break-action=pause needs a terminal: it cannot run under xdist (-n); "
                "use --opswald-break-action=log or fail there"
            )
        if config.getoption("opswald_timeout"):
            raise pytest.UsageError(
                "--opswald-break-action=pause cannot be combined with --opswald-timeout"
            )
    from opswald.breakpoint_plugin import Breakpoints

    try:
        config.stash[_BREAKPOINTS_KEY] = Breakpoints.compile(expressions, action)
    except BreakpointError as exc:
        raise pytest.UsageError(f"--opswald-break:\n{exc}") from None


def breakpoints_of(config: pytest.Config) -> Any:
    return config.stash.get(_BREAKPOINTS_KEY, None)


def _repeat(config: pytest.Config) -> int:
    repeat = int(config.getoption("opswald_repeat"))
    if repeat < 1:
        raise pytest.UsageError("--opswald-repeat must be at least 1")
    return repeat


def _min_pass_rate(config: pytest.Config) -> float:
    rate = float(config.getoption("opswald_min_pass_rate"))
    if not 0 <= rate <= 1:
        raise pytest.UsageError("--opswald-min-pass-rate is a fraction between 0 and 1")
    return rate


def _config_folder(config: pytest.Config) -> Path:
    """Where the modules that the ini options name are also looked for: the folder of the
    config file (as pytest's rootdir conftest.py would put it on sys.path)."""
    return config.inipath.parent if config.inipath else config.rootpath


def _tolerance(config: pytest.Config) -> Any:
    """The embedder and the judge for tolerant matching: hooks first, then the ini options
    (their modules looked for as opswald_adapter's are)."""
    from opswald.adapters import AdapterNotFound, import_string

    def imported(option: str, what: str) -> Any:
        spec = _getini(config, option)
        if not spec:
            return None
        try:
            return import_string(str(spec), root=_config_folder(config), what=what)
        except AdapterNotFound as exc:
            raise pytest.UsageError(f"{option}: {exc}") from None

    return _ConfigTolerance(
        config, imported("opswald_embedder", "embedder"), imported("opswald_judge", "judge")
    )


class _ConfigTolerance:
    """Looks the hooks up when used: conftest files below the rootdir load late."""

    def __init__(self, config: pytest.Config, ini_embedder: Any, ini_judge: Any) -> None:
        self.config = config
        self.ini_embedder = ini_embedder
        self.ini_judge = ini_judge

    @property
    def embedder(self) -> Any:
        hook = self.config.hook.pytest_opswald_embed
        if hook.get_hookimpls():
            return lambda texts: hook(texts=list(texts), config=self.config)
        return self.ini_embedder

    @property
    def judge(self) -> Any:
        hook = self.config.hook.pytest_opswald_compare_output
        if not hook.get_hookimpls():
            return self.ini_judge
        fallback = self.ini_judge

        def judge(*, golden: Any, actual: Any, rubric: Any) -> Any:
            answer = hook(golden=golden, actual=actual, rubric=rubric, config=self.config)
            if answer is None and fallback is not None:  # no hook answered: the ini judge
                return fallback(golden=golden, actual=actual, rubric=rubric)
            return answer

        return judge


def parse_assignments(items: list[str], option: str) -> dict[str, Any]:
    """`KEY=VALUE` items; each VALUE parses as YAML (`30` is an int, `{a: 1}` a mapping)."""
    if not items:
        return {}
    import yaml

    out: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise pytest.UsageError(f"{option}: {item!r} is not KEY=VALUE")
        try:
            value = yaml.safe_load(raw) if raw.strip() else ""
        except yaml.YAMLError as exc:
            if raw.lstrip().startswith(("{", "[")):  # meant as a mapping or a list
                problem = str(exc).splitlines()[0]
                raise pytest.UsageError(
                    f"{option}: {key.strip()}={raw} is not valid YAML ({problem}); quote it "
                    "to pass it as text"
                ) from None
            value = raw
        if isinstance(value, dict | list) and not raw.lstrip().startswith(("{", "[")):
            value = raw  # `response=Note: it rains` is text, not a mapping
        glued = _glued_key(value)
        if glued is not None and f'"{glued}"' not in raw and f"'{glued}'" not in raw:
            # `{city:Rome}`: YAML reads one key "city:Rome", with no value (a key quoted as
            # such is meant so)
            name, _, meant = glued.partition(":")
            raise pytest.UsageError(
                f"{option}: {key.strip()}={raw}: YAML reads {glued!r} as one key with no "
                f"value; put a space after the colon: {{{name}: {meant}}}"
            )
        from opswald.session import modification_problem

        wrong = modification_problem(key.strip(), value)
        if wrong is not None:
            raise pytest.UsageError(f"{option}: {wrong}")
        out[key.strip()] = value
    return out


def _glued_key(value: Any) -> str | None:
    """A key of a mapping (at any depth) written `a:b` with no space, which YAML reads as
    one key "a:b" with no value: the first such, or None."""
    if isinstance(value, dict):
        for k, v in value.items():
            if v is None and isinstance(k, str) and ":" in k.strip(":"):
                return k
            found = _glued_key(v)
            if found is not None:
                return found
    elif isinstance(value, list):
        for item in value:
            found = _glued_key(item)
            if found is not None:
                return found
    return None


def parse_variants(items: list[str]) -> tuple[tuple[str, dict[str, Any]], ...]:
    """`NAME:KEY=VALUE[,KEY=VALUE]` items, in the order given."""
    import re

    variants: dict[str, dict[str, Any]] = {}
    given: dict[str, str] = {}  # name -> the item that named it first
    for item in items:
        name, sep, rest = item.partition(":")
        if not sep or not re.fullmatch(r"[A-Za-z0-9_.\-]+", name):
            raise pytest.UsageError(
                f"--opswald-variant: {item!r} is not NAME:KEY=VALUE[,KEY=VALUE] "
                "(NAME of ASCII letters, digits, '_', '-', '.')"
            )
        if name in given:
            raise pytest.UsageError(
                f"--opswald-variant: the name {name!r} is given twice ({given[name]!r} and "
                f"{item!r}): give each variant its own name, and all of one variant's "
                "modifications in one NAME:KEY=VALUE,KEY=VALUE"
            )
        given[name] = item
        variants[name] = parse_assignments(
            [p for p in rest.split(",") if p.strip()], "--opswald-variant"
        )
    return tuple(variants.items())


def _pricer(config: pytest.Config) -> Any:
    """The shipped price table, the ini option opswald_prices over it, then the hook."""
    from opswald.pricing import PriceError, Pricer, PriceTable, file_problem

    table = PriceTable.load_default()
    extra = _getini(config, "opswald_prices")
    if extra:
        path = config.rootpath / str(extra)
        try:
            table = table.merged(PriceTable.from_file(path))
        except (OSError, PriceError) as exc:
            problem = file_problem(path, exc)
            raise pytest.UsageError(f"opswald_prices: cannot use {path}: {problem}") from None

    def hook(model: str, usage: Any) -> float | None:
        # what the hook raises, or a cost it returns that is none, fails the run and
        # writes nothing: raised into the agent's model call, the agent could catch it
        # and the recording pass with the call cut short
        from opswald.engine.context import HookFailed
        from opswald.pricing import CostError, hooked_cost

        try:
            result = config.hook.pytest_opswald_price(model=model, usage=usage, config=config)
        except Exception as exc:
            exc.add_note("(raised by the pytest_opswald_price hook, not by the agent)")
            raise HookFailed("pytest_opswald_price") from exc
        try:
            return hooked_cost(result, model)
        except CostError as exc:
            raise HookFailed("pytest_opswald_price") from exc

    # A missing price is reported in the summary, never raised into the agent's call.
    return Pricer(table, hook, warn=config.stash.setdefault(_RUN_NOTES_KEY, []).append)


class LocalRedaction:
    """Reads the redaction rules of a conftest as pytest loads it (at startup for the
    folders named on the command line, else as it collects the folder), so that a hook
    that returns no rules is an error naming it then. A conftest of the rootdir (or above)
    loaded only then (`--rootdir` naming a folder not collected first) joins the run's
    rules before any test runs."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.collecting = False

    @pytest.hookimpl(tryfirst=True)
    def pytest_collection(self) -> None:
        self.collecting = True

    def pytest_plugin_registered(self, plugin: object) -> None:
        config = self.config
        for impl in config.hook.pytest_opswald_redact.get_hookimpls():
            if impl.plugin is not plugin:
                continue
            try:
                if _local_conftest(plugin, config):
                    _local_rules(impl, config)
                else:
                    _late_run_rules(config, plugin)
            except pytest.UsageError as exc:
                if not self.collecting:
                    raise  # a conftest of a folder named on the command line: exit 4
                # its folder's collection error, shown as the message alone
                raise pytest.Collector.CollectError(str(exc)) from None


def _late_run_rules(config: pytest.Config, plugin: object) -> None:
    """A hook of the run's (not below the rootdir) registered after the settings were
    built: the run's redactor made again with every such hook."""
    settings = config.stash.get(_SETTINGS_KEY, None)
    held = config.stash.setdefault(_RUN_RULE_PLUGINS_KEY, set())
    if settings is None or id(plugin) in held:
        return  # built later, with it; or built with it
    from dataclasses import replace

    from opswald.redact import using_redactor

    redactor = replace(settings.redactor, extra=tuple(_hook_redaction_rules(config)))
    config.stash[_SETTINGS_KEY] = replace(settings, redactor=redactor)
    config.stash.setdefault(_LOCAL_REDACTORS_KEY, {}).clear()
    _for_the_run(config, using_redactor(redactor))


# the rules of each conftest below the rootdir (by id), and the settings of each set of them
_LOCAL_RULES_KEY = pytest.StashKey[dict[int, list[Any]]]()
_LOCAL_REDACTORS_KEY = pytest.StashKey[dict[tuple[int, ...], Any]]()
_LOCAL_FOLDERS: dict[str, bool] = {}
# the plugins whose rules the run's redactor holds
_RUN_RULE_PLUGINS_KEY = pytest.StashKey[set[int]]()


def _local_conftest(plugin: object, config: pytest.Config) -> bool:
    """Whether `plugin` is a conftest.py whose rules are its folder's: any conftest but
    those of the rootdir and the folders above it (through a symlink too), whose rules,
    as a plugin's, are the run's."""
    if not _is_conftest(plugin):
        return False
    file = str(getattr(plugin, "__file__", ""))
    key = f"{config.rootpath}\0{file}"
    local = _LOCAL_FOLDERS.get(key)
    if local is None:
        folder = Path(file).absolute().parent
        root = config.rootpath.absolute()
        above = {root, *root.parents, root.resolve(), *root.resolve().parents}
        local = _LOCAL_FOLDERS[key] = not ({folder, folder.resolve()} & above)
    return local


def _local_rules(impl: Any, config: pytest.Config) -> list[Any]:
    """The rules of a conftest's hook below the rootdir, read once."""
    known = config.stash.setdefault(_LOCAL_RULES_KEY, {})
    rules = known.get(id(impl.plugin))
    if rules is None:
        rules = known[id(impl.plugin)] = _rules_of(impl, config)
    return rules


def _depth_first(impl: Any) -> tuple[int, str]:
    """The order of folders' rules: the deepest conftest's first (as pytest calls the hooks
    of one folder's conftests), then by path, whatever order pytest loaded them in."""
    file = str(getattr(impl.plugin, "__file__", ""))
    return (-len(Path(file).parts), file)


def _local_impls(node: pytest.Item | pytest.Collector, *paths: Path) -> list[Any]:
    """The redaction hooks of the conftests between the rootdir and `node`'s folder (or
    the folders of `paths`, when given), the deepest first."""
    config = node.config
    if paths:
        ids = {id(plugin) for path in paths for plugin in _folder_conftests(path, config)}
        impls = [
            impl
            for impl in config.hook.pytest_opswald_redact.get_hookimpls()
            if id(impl.plugin) in ids
        ]
    else:
        impls = node.ihook.pytest_opswald_redact.get_hookimpls()
    found = {id(i.plugin): i for i in impls if _local_conftest(i.plugin, config)}
    return sorted(found.values(), key=_depth_first)


def _folder_conftests(path: Path, config: pytest.Config) -> list[object]:
    """The conftest modules of `path`'s folder and those above it, up to the rootdir (not
    included): loaded by pytest as it would load them to collect that folder, when the
    run has not collected it (a marker test's golden in a folder of its own)."""
    pm = config.pluginmanager
    root = config.rootpath.absolute()
    above = {root, *root.parents}
    start = path.absolute()
    found: list[object] = []
    for folder in (start.parent, *start.parent.parents):
        if folder in above:
            break
        file = folder / "conftest.py"
        if not file.is_file():
            continue
        plugin = pm.get_plugin(str(file)) or _import_conftest(file, config)
        if plugin is not None:
            found.append(plugin)
    return found


def _import_conftest(file: Path, config: pytest.Config) -> object | None:
    """A conftest.py pytest has not loaded, loaded as pytest loads one (its plugin manager's
    own loader, whose signature changed in pytest 8.1)."""
    pm: Any = config.pluginmanager
    mode = config.getoption("importmode")
    loaded: object | None
    try:
        namespaces = config.getini("consider_namespace_packages")
    except ValueError:  # pytest 8.0: no such setting
        loaded = pm._importconftest(file, mode, config.rootpath)
    else:
        loaded = pm._importconftest(
            file, mode, config.rootpath, consider_namespace_packages=namespaces
        )
    return loaded


def settings_for(node: pytest.Item | pytest.Collector, *paths: Path) -> Any:
    """The run's settings as they apply to `node` (a golden, a test, a golden file), or to
    the files `paths` (a marker test's golden): with the redaction rules of the conftests
    between the rootdir and its folder before the run's own (those of the rootdir's
    conftest, of plugins, `opswald_redact`). So a rule applies to the goldens and tests
    below its conftest, whichever tests the run selected and in whichever order pytest
    loaded the conftests."""
    settings = settings_of(node.config)
    local = _local_impls(node, *paths)
    if not local:
        return settings
    config = node.config
    key = tuple(id(impl.plugin) for impl in local)
    cache = config.stash.setdefault(_LOCAL_REDACTORS_KEY, {})
    found = cache.get(key)
    if found is None:
        from dataclasses import replace

        base = settings.redactor
        rules = [rule for impl in local for rule in _local_rules(impl, config)]
        found = cache[key] = replace(settings, redactor=replace(base, extra=(*rules, *base.extra)))
    return found


def _hook_redaction_rules(config: pytest.Config) -> list[Any]:
    """The run's rules from pytest_opswald_redact, for everything it writes and shows: those
    of plugins and of the conftests at the rootdir or above, in the order pytest calls the
    hooks (the one loaded last first). A conftest below the rootdir adds its own for its
    folder (`settings_for`). `{regex: label}` mappings or `str -> str` callables."""
    impls = [
        impl
        for impl in reversed(config.hook.pytest_opswald_redact.get_hookimpls())
        if not _local_conftest(impl.plugin, config)
    ]
    config.stash[_RUN_RULE_PLUGINS_KEY] = {id(impl.plugin) for impl in impls}
    # the conftests' first, the deepest first, as pytest calls them when it loaded them
    # in the usual order (whichever order it loaded them in this time); then plugins'
    conftests = sorted((i for i in impls if _is_conftest(i.plugin)), key=_depth_first)
    rules: list[Any] = []
    for impl in [*conftests, *(i for i in impls if not _is_conftest(i.plugin))]:
        rules += _rules_of(impl, config)
    return rules


def _is_conftest(plugin: object) -> bool:
    file = getattr(plugin, "__file__", None)
    return isinstance(file, str) and os.path.basename(file) == "conftest.py"


def _rules_of(impl: Any, config: pytest.Config) -> list[Any]:
    """The rules of one pytest_opswald_redact implementation (a pluggy HookImpl). What the
    hook raises, or rules that cannot work, are a usage error naming it."""
    file = getattr(impl.plugin, "__file__", None)
    where = f" of {file}" if file else ""
    try:
        result = impl.function(*(config for _ in impl.argnames))
    except Exception as exc:
        raise pytest.UsageError(
            f"the pytest_opswald_redact hook{where} raised {type(exc).__name__}: {exc}"
        ) from None
    if result is None:
        return []
    return _redaction_rules([result], where, _rule_notes(config))


RULE_FAILED = "<redacted:rule-failed>"
_RULE_NOTES_SAID_KEY = pytest.StashKey[set[str]]()  # the rule notes made in this process


def _rule_notes(config: pytest.Config) -> Callable[[str], None]:
    """Where a callable rule that failed on a text says so: the run's notes (the summary's
    `note:` lines, carried by the next golden's report), each once per process."""
    said = config.stash.setdefault(_RULE_NOTES_SAID_KEY, set())
    notes = config.stash.setdefault(_RUN_NOTES_KEY, [])

    def note(text: str) -> None:
        if text not in said:
            said.add(text)
            notes.append(text)

    return note


def _guarded(rule: Callable[[str], Any], where: str, note: Callable[[str], None]) -> Any:
    """A callable rule that cannot stop the run: one that raises, or gives anything but a
    str, for some text hides that whole text instead (nothing of it is written or shown),
    and the run's notes say which rule, once."""

    def guarded(text: str) -> str:
        try:
            clean = rule(text)
        except Exception as exc:
            what = f"raised {type(exc).__name__}: {exc}"
        else:
            if isinstance(clean, str):
                return clean
            what = f"gave {type(clean).__name__}"
        note(
            f"the pytest_opswald_redact hook{where}: its rule {rule!r:.80} {what} for a text; "
            f"the text was written and shown as {RULE_FAILED}. Fix the rule: it takes a str "
            "and returns a str"
        )
        return RULE_FAILED

    return guarded


def _redaction_rules(
    results: Iterable[Any], where: str = "", note: Callable[[str], None] | None = None
) -> list[Any]:
    """The rules of pytest_opswald_redact results, as `str -> str` callables. A result
    that is not rules is a usage error naming the hook (and `where`, its conftest), not a
    traceback from inside opswald; a callable rule that fails on a text later hides it
    (`_guarded`)."""
    import re

    def refused(what: str) -> pytest.UsageError:
        return pytest.UsageError(
            f"the pytest_opswald_redact hook{where} returned {what}; return "
            '{regex: label} (matches become <redacted:label>), e.g. {r"cust_[0-9]{6}": '
            '"customer-id"}, or a list of str -> str callables'
        )

    rules: list[Any] = []
    for result in results:
        if isinstance(result, dict):
            items = list(result.items())
        elif isinstance(result, (list, tuple)):
            items = [(rule, None) for rule in result]
        else:
            raise refused(f"{type(result).__name__} {result!r:.80}")
        for rule, label in items:
            if callable(rule):
                # tried once on a sample: one that raises or gives no text for any text
                # would stop every write and failure message of the run
                try:
                    tried = rule("a sample text, sk-proj-0000 cust_000000 ann@example.com")
                except Exception as exc:
                    raise refused(
                        f"the rule {rule!r:.80}, which raised {type(exc).__name__}: {exc} "
                        "on a sample text"
                    ) from None
                if not isinstance(tried, str):
                    raise refused(
                        f"the rule {rule!r:.80}, which gave {type(tried).__name__} "
                        "for a text (a rule takes a str and returns a str)"
                    )
                rules.append(_guarded(rule, where, note or (lambda text: None)))
                continue
            if not isinstance(rule, str) or not (label is None or isinstance(label, str)):
                raise refused(f"the rule {rule!r:.80}: {label!r:.80}")
            try:
                pattern = re.compile(rule)
            except re.error as exc:
                raise refused(
                    f"the regular expression {rule!r:.80}, which does not compile ({exc})"
                ) from None
            placeholder = f"<redacted:{label or 'custom'}>"
            rules.append(lambda text, p=pattern, r=placeholder: p.sub(r, text))
    return rules


def _add_default_goldens_path(config: pytest.Config) -> None:
    """With no positional paths, collect goldens from the folders of the ini option
    opswald_goldens too — where pytest itself collects from the rootdir (its testpaths, or
    the rootdir). Run in a subfolder, pytest collects that folder only, and so do goldens:
    the ones below it, whichever of the folders they are in."""
    from opswald.projectconfig import golden_folders, outermost

    if config.args_source == pytest.Config.ArgsSource.ARGS:
        return
    here = config.invocation_params.dir.resolve()
    if config.args_source == pytest.Config.ArgsSource.INVOCATION_DIR and here != (
        config.rootpath.resolve()
    ):
        return  # pytest collects this folder: its goldens are found there, and no others
    try:
        entries = _getini(config, "opswald_goldens")
    except (TypeError, ValueError) as exc:  # a TOML string, an unclosed quote
        text = str(exc)
        raise pytest.UsageError(
            text if "opswald_goldens" in text else f"opswald_goldens: {text}"
        ) from None
    goldens = golden_folders(entries, config.rootpath)
    for warning in goldens.warnings(config.rootpath):
        try:
            config.issue_config_time_warning(pytest.PytestConfigWarning(warning), stacklevel=2)
        except pytest.PytestConfigWarning as exc:  # -W error / filterwarnings = error
            raise pytest.UsageError(str(exc)) from None
    bases = []
    for arg in config.args:
        base = Path(arg.split("::")[0])
        bases.append(
            (base if base.is_absolute() else config.invocation_params.dir / base).resolve()
        )
    paths = outermost((path.resolve() for path in goldens.paths), bases)
    config.args.extend(str(path) for path in paths)


def _refuse_golden_args(config: pytest.Config) -> None:
    """A golden file named on the command line without --opswald-goldens (a failing
    golden's id pasted back): a usage error naming the flag, where pytest alone would say
    "not found" for a file that exists. Golden files are collected only with the flag, as
    doctests only with --doctest-modules, even when their file is named."""
    if config.args_source != pytest.Config.ArgsSource.ARGS:
        return
    for arg in config.args:
        name = arg.split("::")[0]
        path = Path(name)
        path = path if path.is_absolute() else config.invocation_params.dir / path
        if is_golden_path(name) and path.is_file():
            import shlex

            given = shlex.join(str(word) for word in config.invocation_params.args)
            raise pytest.UsageError(
                f"{name} is a golden file: golden files are collected only with "
                f"--opswald-goldens\nfix: pytest --opswald-goldens {given}"
            )


_LOOKED_AT_MAX = 10_000  # the files `_golden_in` looks at before it gives up


def _golden_in(folder: Path) -> Path | None:
    """A golden file under `folder` (hidden folders aside), or None; at most
    `_LOOKED_AT_MAX` files are looked at."""
    looked = 0
    for root, dirs, names in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(names):
            looked += 1
            if is_golden_path(name):
                return Path(root) / name
            if looked >= _LOOKED_AT_MAX:
                return None
    return None


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    """`pytest goldens/` without --opswald-goldens collects nothing from golden files
    (they are collected only with the flag, as a golden file named alone says): when no
    test ran, a folder named on the command line that holds golden files is named, with
    the command that collects them."""
    if exitstatus != pytest.ExitCode.NO_TESTS_COLLECTED or config.getoption("opswald_goldens"):
        return
    if config.args_source != pytest.Config.ArgsSource.ARGS:
        return
    for arg in config.args:
        folder = Path(arg.split("::")[0])
        folder = folder if folder.is_absolute() else config.invocation_params.dir / folder
        if not folder.is_dir():
            continue
        found = _golden_in(folder)
        if found is not None:
            terminalreporter.write_line(
                f"note: {arg} holds golden files ({found.name}, ...), which are collected "
                f"only with --opswald-goldens\nfix: pytest --opswald-goldens {arg}"
            )
            return


def settings_of(config: pytest.Config) -> Any:
    """The run's settings (`items.Settings`), built at their first use in a run that does
    not use opswald as far as pytest_configure can tell (`_in_use`): such a run, a project
    that only has the plugin installed, never loads the engine."""
    settings = config.stash.get(_SETTINGS_KEY, None)
    if settings is None:
        settings = config.stash[_SETTINGS_KEY] = config.stash[_PENDING_SETTINGS_KEY]()
    return settings


def _load_engine(config: pytest.Config) -> None:
    """The settings, and the run of a golden with the replay engine (which a run that only
    collects goldens does not load): under pytester, whose in-process runs drop the modules
    first imported inside them, and PyYAML's C parser does not load again with them."""
    settings_of(config)
    importlib.import_module("opswald.goldenrun")


def _in_use(config: pytest.Config) -> bool:
    """Whether the run uses opswald, as far as can be told before collection: an option
    of its given, a setting of its in the pytest config, a hook of its implemented (a
    conftest's redaction or pricing rules). Otherwise the settings are built when a
    golden or a `@pytest.mark.golden` test first needs them (a setting's usage error then
    comes with them: there is none to make without a setting)."""
    # an option of the plugin's, wherever it was given (the command line, an @argfile,
    # PYTEST_ADDOPTS, addopts), and a setting of its, in the config file or with -o
    if any(config.getoption(dest) != default for dest, default in _OPTION_DEFAULTS.items()):
        return True
    for name, default in _INI_DEFAULTS.items():
        try:
            if _getini(config, name) != default:
                return True
        except (ValueError, TypeError):  # a value pytest cannot read: said when built
            return True
    hooks = config.pluginmanager.hook
    return any(
        getattr(hooks, name).get_hookimpls()
        for name in dir(hooks)
        if name.startswith("pytest_opswald_")
    )


def _suite_requests(config: pytest.Config, normalize: list[dict[str, str]]) -> Any:
    """The ini options' request rules; a bad path or rule is a usage error naming it."""
    from opswald.projectconfig import SettingError, suite_requests

    try:
        return suite_requests(_getini(config, "opswald_request_ignore"), normalize)
    except SettingError as exc:
        raise pytest.UsageError(str(exc)) from None


def suite_normalize_rules(config: pytest.Config) -> list[NormalizeRule]:
    """Rules from the pytest_opswald_normalize hook, computed once per run; a rule that
    is not one fails the golden with the hook's name and the problem (no traceback)."""
    from pydantic import ValidationError

    from opswald.session import NormalizeRule

    if _NORMALIZE_KEY not in config.stash:
        rules: list[NormalizeRule] = []
        problem = ""
        try:
            for result in config.hook.pytest_opswald_normalize(config=config):
                if isinstance(result, dict):
                    rules.extend(NormalizeRule(pattern=k, replace=v) for k, v in result.items())
                elif isinstance(result, list):
                    rules.extend(NormalizeRule.model_validate(r) for r in result)
        except ValidationError as exc:
            first = exc.errors(include_url=False)[0]
            problem = f"{first['msg']} (got {first['input']!r})"
        if problem:  # failed outside the except: one message, no chained traceback
            pytest.fail(
                f"pytest_opswald_normalize returned a rule that is not one: {problem}",
                pytrace=False,
            )
        config.stash[_NORMALIZE_KEY] = rules
    return config.stash[_NORMALIZE_KEY]


# the fixture a marker test of a variants run is parametrized on, its value the variant
VARIANT_FIXTURE = "_opswald_variant"


def variant_of(item: pytest.Item) -> tuple[str, dict[str, Any]] | None:
    """The variant (name, modifications) a golden or a marker test runs under, if any."""
    variant: tuple[str, dict[str, Any]] | None = getattr(item, "variant", None)
    callspec = getattr(item, "callspec", None)
    if variant is None and callspec is not None:
        variant = callspec.params.get(VARIANT_FIXTURE)
    return variant


class MarkerVariants:
    """Registered in a run with --opswald-variant: every `@pytest.mark.golden` test runs once
    per variant, as every golden does (`test_weather[NAME]`), the variant's modifications
    under the marker's own. The variant is a parameter of a fixture every test uses, which
    only the marker tests are parametrized on."""

    def __init__(self, variants: tuple[tuple[str, dict[str, Any]], ...]) -> None:
        self.variants = variants

    @pytest.fixture(autouse=True, name=VARIANT_FIXTURE)
    def variant(self, request: pytest.FixtureRequest) -> tuple[str, dict[str, Any]] | None:
        return getattr(request, "param", None)

    # last: the variant's id follows the test's own parameters' (`test_x[1-NAME]`)
    @pytest.hookimpl(trylast=True)
    def pytest_generate_tests(self, metafunc: pytest.Metafunc) -> None:
        if metafunc.definition.get_closest_marker("golden") is not None:
            metafunc.parametrize(
                VARIANT_FIXTURE,
                self.variants,
                ids=[name for name, _ in self.variants],
                indirect=True,
                scope="function",
            )


class SnapshotDiff:
    """The session diff for a failed `== snapshot(extension_class=SessionSnapshotExtension)`.

    Registered in pytest_configure, after the entry-point plugins, so that among the
    `tryfirst` implementations (syrupy's is one) ours is asked first; it answers only for
    `.session.yaml` snapshots and imports nothing unless syrupy is loaded.
    """

    @pytest.hookimpl(tryfirst=True)
    def pytest_assertrepr_compare(
        self, config: pytest.Config, op: str, left: Any, right: Any
    ) -> list[str] | None:
        import sys

        if "syrupy" not in sys.modules:
            return None
        from opswald.snapshot import pytest_assertrepr_compare as session_diff

        return session_diff(config, op, left, right)


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    if not parent.config.getoption("opswald_goldens"):
        return None
    if is_golden_path(file_path):
        from opswald.items import GoldenFile

        return GoldenFile.from_parent(parent, path=file_path)
    settings = settings_of(parent.config)
    if settings.update or settings.mode in ("record", "rerecord"):
        from opswald.files import remove_if_stale_temp

        remove_if_stale_temp(file_path)  # left by a run that was killed while writing
    return None


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """`-m TAG` selects goldens by their tags. From pytest 9.2 on, `-m` under
    `--strict-markers` accepts registered markers only; a golden's tags are marks of its
    item, not registered (so that ordinary tests cannot use them), so the tags of the
    goldens collected are registered here, after collection, before `-m` is checked."""
    if not config.getoption("markexpr", None):
        return
    from opswald.items import GoldenItem

    tags = {
        tag
        for item in items
        if isinstance(item, GoldenItem) and item._entry is not None
        for tag in item._entry.tags
    }
    if not tags:
        return
    known = {line.split(":", 1)[0].split("(", 1)[0].strip() for line in config.getini("markers")}
    for tag in sorted(tags - known):
        config.addinivalue_line("markers", f"{tag}: a golden's tag")


def pytest_collection_finish(session: pytest.Session) -> None:
    if session.config.pluginmanager.has_plugin("pytester"):
        # pytester named by a test module's `pytest_plugins` (loaded as it was collected):
        # the engine loads before a test runs pytest in process (see pytest_configure)
        _load_engine(session.config)
    _save_collect_index(session.config)
    _warn_shared_saved_names(session)


def _warn_shared_saved_names(session: pytest.Session) -> None:
    """--opswald-save-actual names a file after the golden's test name: goldens in other
    folders that share a `name:` would overwrite each other's saved actual, so say so
    once, before the run, rather than lose them in silence."""
    worker = getattr(session.config, "workerinput", None)
    if not session.config.getoption("opswald_save_actual", None) or (
        worker is not None and worker.get("workerid") != "gw0"  # one worker says it
    ):
        return
    from opswald.items import GoldenItem

    files: dict[str, list[GoldenItem]] = {}
    for item in session.items:
        if isinstance(item, GoldenItem):
            files.setdefault(item.name, []).append(item)
    for name, items in sorted(files.items()):
        if len(items) > 1:
            where = [item.nodeid.split("::")[0] for item in items]
            warning = pytest.PytestConfigWarning(
                f"--opswald-save-actual: {len(where)} goldens are named {name!r} "
                f"({', '.join(where[:3])}{', ...' if len(where) > 3 else ''}); a failed "
                "one's saved actual replaces another's: give them distinct names"
            )
            try:  # shown at the second golden's file, in pytest's warnings summary
                warnings.warn_explicit(warning, type(warning), str(items[1].path), 1)
            except pytest.PytestConfigWarning as exc:  # -W error / filterwarnings = error
                raise pytest.UsageError(str(exc)) from None


def pytest_sessionfinish(session: pytest.Session) -> None:
    _save_collect_index(session.config)  # entries dropped by goldens that changed meanwhile


def _save_collect_index(config: pytest.Config) -> None:
    if config.getoption("opswald_goldens"):
        from opswald.collectcache import save

        save(config)


# -- the marker and the fixture ----------------------------------------------------------

_MARKER_RESULT = pytest.StashKey[Any]()


@pytest.fixture
def golden_replay(request: pytest.FixtureRequest) -> Any:
    """The ReplayResult of the golden named by this test's @pytest.mark.golden marker."""
    from opswald.marker import run_marker

    item = request.node
    if _MARKER_RESULT not in item.stash:
        item.stash[_MARKER_RESULT] = run_marker(item)
    return item.stash[_MARKER_RESULT].result


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item) -> Generator[None, object, object]:
    """A test below a conftest with redaction rules (below the rootdir): `opswald.record`
    and `opswald.dump` in it, its fixtures included, hide what those rules hide too."""
    if not _local_impls(item):
        return (yield)
    from opswald.redact import using_redactor

    with using_redactor(settings_for(item).redactor):
        return (yield)


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """Each attempt replays afresh: pytest-rerunfailures runs a failed item again, and a
    marker test's replay kept from the first attempt would fail every rerun with it."""
    for key in (_MARKER_RESULT, OUTCOME_KEY, UNRUN_KEY):
        if key in item.stash:
            del item.stash[key]
    if item.get_closest_marker("golden") is not None:
        from opswald.marker import check_marker

        check_marker(item)  # a misspelt keyword is refused, not ignored


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, None, None]:
    marker = item.get_closest_marker("golden")
    try:
        result = yield
    except BaseException as error:
        if marker is not None and marker.kwargs.get("verdict", True):
            from opswald.marker import explain_body_failure

            outcome = item.stash.get(_MARKER_RESULT, None)
            if outcome is not None:
                item.stash[OUTCOME_KEY] = outcome
            explain_body_failure(outcome, error)
        raise
    if marker is not None and marker.kwargs.get("verdict", True):
        from opswald.marker import enforce, run_marker

        if _MARKER_RESULT not in item.stash:
            item.stash[_MARKER_RESULT] = run_marker(item)
        item.stash[OUTCOME_KEY] = item.stash[_MARKER_RESULT]
        enforce(item.stash[_MARKER_RESULT])
    return result


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if _skipped_golden(item, call, report):
        _report_skipped(item, report)
    elif call.when in ("setup", "call") and report.failed and _marker_golden_unloaded(item, call):
        # a marker test whose golden cannot be loaded never runs: a failed row, so that
        # the JSON report's gate agrees with pytest's exit status
        report.opswald_status = "failed"  # type: ignore[attr-defined]
        _report_unjudged(item, call, report)
    elif call.when == "setup" and report.failed and item.__class__.__name__ == "GoldenItem":
        # a fixture (or a conftest's setup hook) failed: pytest reports an error and the
        # agent never ran; a failed row, so that the JSON report's gate agrees with
        # pytest's exit status
        error = call.excinfo.value if call.excinfo is not None else None
        said = error.msg if isinstance(error, pytest.fail.Exception) else None
        if said is None and call.excinfo is not None:
            said = call.excinfo.exconly()
        if said is not None:  # the error and its fix: the rest is pytest's listing
            first, *rest = said.splitlines() or [""]
            said = "\n".join([first, *(line for line in rest if line.startswith("fix:"))])
        report.opswald_status = "failed"  # type: ignore[attr-defined]
        _report_unjudged(item, call, report, prefix="error at setup: ", text=said)
    elif call.when == "teardown" and report.failed and call.excinfo is not None:
        if item.__class__.__name__ == "GoldenItem" or item.get_closest_marker("golden"):
            # a fixture failed after the golden ran: pytest adds an error to its pass, and
            # the golden's row (made at the call) turns failed where the report is tallied
            said = settings_for(item).redactor.text(call.excinfo.exconly())
            report.opswald_teardown = f"error at teardown: {said}"  # type: ignore[attr-defined]
    elif call.when == "call" and _xfailed_golden(item, report):
        # failed as an xfail marker expects: pytest counts it apart from failures and
        # exits 0, and its JUnit testcase is <skipped type="pytest.xfail">: a skipped row
        # (so that a gate on the JSON report agrees), with the failure as its reason
        outcome = item.stash.get(OUTCOME_KEY, None)
        failure = outcome.text if outcome is not None and outcome.text else ""
        if not failure and call.excinfo is not None:
            failure = call.excinfo.exconly()
        first = next((line for line in failure.splitlines() if line.strip()), "")
        why = f"xfail ({report.wasxfail})" if report.wasxfail else "xfail"
        _report_skipped(item, report, reason=f"{why}: {first}" if first else why)
    elif call.when == "call":
        outcome = item.stash.get(OUTCOME_KEY, None)
        if outcome is None and _MARKER_RESULT in item.stash:
            outcome = item.stash[_MARKER_RESULT]
        if outcome is None and item.__class__.__name__ == "GoldenItem":
            status = "passed" if report.passed else "failed"
            report.opswald_status = status  # type: ignore[attr-defined]
            if status == "failed":
                _report_unjudged(item, call, report)
        if outcome is not None:
            status = outcome.status if report.passed or outcome.status == "failed" else "failed"
            marker = item.get_closest_marker("golden")
            if (
                status == "failed"
                and report.passed
                and marker is not None
                and not marker.kwargs.get("verdict", True)
            ):  # the test judges the replay itself, and pytest's outcome is what counts
                status = "passed"  # (its row keeps the divergence it inspected)
            report.opswald_status = status  # type: ignore[attr-defined]
            notes = [*outcome.notes, *take_run_notes(item.config)]
            not_saved = _save_actual(item, outcome, status) if outcome.result is not None else None
            if not_saved:
                notes.append(not_saved)
            if notes:
                report.opswald_notes = notes  # type: ignore[attr-defined]
            if outcome.result is not None:
                from opswald.report.summary import record_of

                variant = variant_of(item)
                record = record_of(
                    outcome.result,
                    status=status,
                    variant=variant[0] if variant else None,
                    nodeid=item.nodeid,
                    slow_ms=item.config.getoption("opswald_slow_ms"),
                    text=outcome.text,
                    file=str(item.path.relative_to(item.config.rootpath))
                    if item.path.is_relative_to(item.config.rootpath)
                    else str(item.path),
                )
                _scrub(item.config, record)
                report.opswald_record = record  # type: ignore[attr-defined]
                if item.config.getoption("opswald_html"):
                    report.opswald_view = _view_of(item, outcome, status)  # type: ignore[attr-defined]
                _add_junit_properties(item, report, record)
            elif status == "failed":  # failed before its run was judged (repeats, a timeout)
                _report_unjudged(item, call, report)
    if call.when == "call" and OUTCOME_KEY in item.stash:
        # the report carries what is needed from here on; the actual session and the
        # verdict would otherwise stay alive for the rest of the run (~15 KiB a golden)
        del item.stash[OUTCOME_KEY]
    return report


def _marker_golden_unloaded(item: pytest.Item, call: pytest.CallInfo[None]) -> bool:
    """The golden of a `@pytest.mark.golden` test failed to load in its setup, or the
    marker itself is misused."""
    if item.get_closest_marker("golden") is None or call.excinfo is None:
        return False
    if item.stash.get(UNRUN_KEY, False):  # its golden could not be run (a stub, ...)
        return True
    return str(call.excinfo.value).startswith("@pytest.mark.golden")


def _skipped_golden(
    item: pytest.Item, call: pytest.CallInfo[None], report: pytest.TestReport
) -> bool:
    """A golden that pytest skipped, before its run (a skip marker, a conftest hook's
    pytest.skip in setup) or during it (pytest.skip in a hook or the adapter); an xfail,
    which pytest reports as skipped too, is not one."""
    if not report.skipped or hasattr(report, "wasxfail") or call.when == "teardown":
        return False
    return item.__class__.__name__ == "GoldenItem" or item.get_closest_marker("golden") is not None


def _xfailed_golden(item: pytest.Item, report: pytest.TestReport) -> bool:
    """A golden (or a `@pytest.mark.golden` test) that failed as an xfail marker expected
    (pytest reports it skipped, with `wasxfail`)."""
    if not (report.skipped and hasattr(report, "wasxfail")):
        return False
    return item.__class__.__name__ == "GoldenItem" or item.get_closest_marker("golden") is not None


def _report_skipped(
    item: pytest.Item, report: pytest.TestReport, reason: str | None = None
) -> None:
    """The record (JSON report, summary, JUnit) of a skipped golden: status "skipped", no
    figures, and pytest's reason for the skip (or `reason`)."""
    from opswald.report.summary import failure_record, name_without_variant

    longrepr = report.longrepr
    if reason is None:
        reason = str(longrepr[2]) if isinstance(longrepr, tuple) else report.longreprtext
    variant = variant_of(item)
    record = failure_record(
        name=item.nodeid,
        file=_shown_path(item),
        golden=name_without_variant(item.name, variant[0]) if variant else item.name,
        variant=variant[0] if variant else None,
        text="",
        status="skipped",
    )
    record["reason"] = settings_for(item).redactor.text(reason.removeprefix("Skipped: "))
    report.opswald_status = "skipped"  # type: ignore[attr-defined]
    # on the page as the golden it is, marked skipped with pytest's reason
    _report_unran(item, report, record, findings=[])


def _add_junit_properties(
    item: pytest.Item, report: pytest.TestReport, record: dict[str, Any]
) -> None:
    props = _junit_properties(record)
    report.user_properties.extend(props)
    # JUnit XML reads the last (teardown) report; an earlier attempt's (a rerun's) go
    item.user_properties[:] = [
        p for p in item.user_properties if not str(p[0]).startswith("opswald.")
    ]
    item.user_properties.extend(props)


def _add_collect_junit_properties(
    config: pytest.Config, report: pytest.CollectReport, record: dict[str, Any]
) -> None:
    """The properties of a malformed golden's <testcase> (a collection error). pytest gives
    a collect report no user_properties: they go to the testcase pytest's JUnit writer
    keeps for this report (written at the end of the session), as it does with a test's."""
    try:
        from _pytest.junitxml import xml_key
    except ImportError:  # a pytest without it: no properties, the error is still written
        return
    xml = config.stash.get(xml_key, None)
    if xml is None:  # no --junitxml (or an xdist worker: the controller writes it)
        return
    reporter = xml.node_reporter(report)  # type: ignore[arg-type]  # as junitxml passes it
    for name, value in _junit_properties(record):
        reporter.add_property(name, str(value))


def _report_unjudged(
    item: pytest.Item,
    call: pytest.CallInfo[None],
    report: pytest.TestReport,
    prefix: str = "",
    text: str | None = None,
) -> None:
    """The record (JSON report, summary, JUnit) and the viewer entry of a golden that failed
    without a judged run: not recorded yet, no adapter, a fork it cannot make, a timeout, a
    process that died, a fixture that failed (`prefix` heads its text, `text` replaces the
    exception's own). Built here, in the process that ran it, from the failure itself: the
    controller of an xdist run only sees the report's text, headed by the worker's name."""
    from opswald.items import GoldenError
    from opswald.report.summary import failure_record, name_without_variant

    error = call.excinfo.value if call.excinfo is not None else None
    stopped = None
    if text is None:
        if isinstance(error, GoldenError):
            text, stopped = error.text, error.stopped
        elif call.excinfo is not None:
            text = call.excinfo.exconly()
        else:
            text = report.longreprtext
    text = prefix + text
    variant = variant_of(item)
    name = name_without_variant(item.name, variant[0]) if variant else item.name
    record = failure_record(
        name=item.nodeid,
        file=_shown_path(item),
        golden=name,
        variant=variant[0] if variant else None,
        text=settings_for(item).redactor.text(text),
        stopped=stopped,
    )
    partial = (stopped or {}).get("session")  # a run that did not end: how far it got
    if partial is not None:
        not_saved = _save_session(item, partial)
        if not_saved:
            notes = list(getattr(report, "opswald_notes", None) or ())
            report.opswald_notes = [*notes, not_saved]  # type: ignore[attr-defined]
    _report_unran(item, report, record, findings=[_failure_finding(record)], actual=partial)


def _report_unran(
    item: pytest.Item,
    report: pytest.TestReport,
    record: dict[str, Any],
    *,
    findings: list[dict[str, Any]],
    actual: Any = None,
) -> None:
    """The record, JUnit properties and viewer entry of a golden without a run's result
    (skipped, or failed before its run was judged): the page shows the golden itself,
    beside the `actual` session as far as a run that did not end got."""
    report.opswald_record = record  # type: ignore[attr-defined]
    _add_junit_properties(item, report, record)
    golden_item = item.__class__.__name__ == "GoldenItem"
    marker = item.get_closest_marker("golden")
    if item.config.getoption("opswald_html") and (golden_item or marker is not None):
        from opswald.files import to_data

        # a marker test's golden, if it names one that is there (else the page lists the
        # test with its failure and no steps, as a malformed golden is listed)
        path = str(item.path) if golden_item else _marker_golden(item, marker)
        report.opswald_view = {  # type: ignore[attr-defined]
            "path": path,
            "file": record["file"],
            "actual": to_data(actual) if actual is not None else None,
            "findings": findings,
        }


def _marker_golden(item: pytest.Item, marker: pytest.Mark | None) -> str:
    """The path of a marker test's golden when it names an existing file, else ""."""
    if marker is None or not marker.args or not isinstance(marker.args[0], str | os.PathLike):
        return ""
    from opswald.marker import golden_path

    path = golden_path(item, os.fspath(marker.args[0]))
    return str(path) if path.is_file() else ""


def _failure_finding(record: dict[str, Any]) -> dict[str, Any]:
    from opswald.report.html import failure_finding

    return failure_finding(record)


def _view_of(item: pytest.Item, outcome: Any, status: str) -> dict[str, Any]:
    """What the controller needs to show this golden in the HTML viewer, as plain data
    (it travels from xdist workers): the golden's path, the findings, and the actual
    session when it differs from the golden file on disk."""
    from opswald.files import to_data
    from opswald.report.html import finding_data

    result = outcome.result
    golden = result.golden
    total = len(golden.step_list) if not golden.is_stub else None
    path = item.path
    marker = item.get_closest_marker("golden")
    if marker is not None and marker.args:  # a marker test: its golden file, not the test's
        from opswald.marker import golden_path

        path = golden_path(item, str(marker.args[0]))
    root = item.config.rootpath
    return {
        "path": str(path),
        "file": str(path.relative_to(root)) if path.is_relative_to(root) else str(path),
        "actual": to_data(result.actual) if status == "failed" else None,
        # the golden step each served call answered as (pairs: plain data for xdist)
        "matched": [[n, g] for n, g in result.matched.items()] if status == "failed" else None,
        "findings": [finding_data(f, total_steps=total) for f in result.verdict.findings],
    }


def _shown_path(item: pytest.Item) -> str:
    root = item.config.rootpath
    return str(item.path.relative_to(root)) if item.path.is_relative_to(root) else str(item.path)


def _junit_properties(record: dict[str, Any]) -> list[tuple[str, object]]:
    """What a golden's <testcase> carries in JUnit XML (pytest's own user_properties)."""
    divergence = record.get("divergence") or {}
    props: list[tuple[str, object]] = [
        ("opswald.status", record["status"]),
        ("opswald.cost", record["cost"] if record["cost"] is not None else ""),
        ("opswald.total_tokens", record["total_tokens"]),
        ("opswald.duration_ms", record["duration_ms"] if record["duration_ms"] is not None else ""),
        ("opswald.steps", record["steps"]),
    ]
    if record.get("unpriced_calls"):  # opswald.cost is then the priced part only
        props.append(("opswald.unpriced_calls", record["unpriced_calls"]))
    if divergence:
        props.append(("opswald.divergence_step", divergence["step"]))
    return props


def _save_actual(item: pytest.Item, outcome: Any, status: str) -> str | None:
    """--opswald-save-actual: a failed golden's actual session as `<item name>.actual.yaml`
    (not a golden suffix, so a saved run is never collected; see `saved_actual_name`).
    A file that cannot be written does not stop the run: the note that says so is
    returned, for the summary."""
    if outcome.result is None:
        return None
    return _save_session(item, outcome.result.actual, failed=status == "failed")


def _save_session(item: pytest.Item, actual: Any, *, failed: bool = True) -> str | None:
    """Save (or, for a golden that did not fail, take back) `actual`, as `_save_actual`
    says; the note of a file that could not be written, or None."""
    folder = item.config.getoption("opswald_save_actual")
    if not folder:
        return None
    from opswald.files import GoldenWriteRefused, dump, saved_actual_name
    from opswald.report.summary import name_without_variant

    variant = variant_of(item)
    name = (
        saved_actual_name(name_without_variant(item.name, variant[0]), variant[0])
        if variant
        else saved_actual_name(item.name)
    )
    target = item.config.invocation_params.dir / folder
    written = item.config.stash.setdefault(_SAVED_ACTUALS_KEY, set())
    if not failed:
        # a rerun (pytest-rerunfailures) that passes takes back what its failed attempt
        # saved: the folder holds the actuals of goldens that failed, no others
        if target / name in written:
            written.discard(target / name)
            with contextlib.suppress(OSError):
                (target / name).unlink()
        return None
    try:
        target.mkdir(parents=True, exist_ok=True)
        settings = settings_for(item)
        # the steps replay served are copied from the golden, which may hold secrets in
        # clear (written by hand, or recorded before a redaction rule covered them): the
        # whole actual goes through the run's redactor, as its input and output did
        dump(
            actual,
            target / name,
            redactor=settings.redactor,
            limits=settings.limits,
        )
    except GoldenWriteRefused as exc:  # a file `opswald diff` and `html` could not load
        return f"{item.nodeid}: --opswald-save-actual: its actual session was not saved: {exc}"
    except OSError as exc:  # a name the file system refuses, a full disk, a file as DIR
        where = exc.filename if exc.filename is not None else target / name
        return (
            f"{item.nodeid}: --opswald-save-actual: its actual session was not saved: "
            f"cannot write {where}: {exc.strerror or exc}"
        )
    written.add(target / name)
    return None


def _record_of_report(
    config: pytest.Config, report: pytest.TestReport, status: str
) -> dict[str, Any] | None:
    """A golden's record made from its report alone, on the controller: for a golden whose
    xdist worker died while running it (the report xdist makes up: `when` "???", the text
    "worker 'gw0' crashed while running ..."). None when the test is not a golden."""
    from opswald.report.summary import failure_record

    path, _, name = report.nodeid.partition("::")
    if not is_golden_path(path) or not name:
        return None
    variant = next((v for v, _ in settings_of(config).variants if name.endswith(f"[{v}]")), None)
    return _scrub(
        config,
        failure_record(
            name=report.nodeid,
            file=path,
            golden=name.removesuffix(f"[{variant}]") if variant else name,
            variant=variant,
            text=_report_text(report) if status == "failed" else "",
            status=status,
        ),
    )


def _malformed_record(config: pytest.Config, report: pytest.CollectReport) -> dict[str, Any]:
    """The record of a golden file that failed to load (a collection error): status
    "error", counted with the failed goldens. Its path is shown as in the rest of the
    report (under the rootdir), not where this checkout happens to be."""
    from opswald.report.summary import failure_record

    path = report.nodeid.split("::")[0]
    return _scrub(
        config,
        failure_record(
            name=path,
            file=path,
            golden=Path(path).name.split(".golden.")[0],
            variant=None,
            text=_report_text(report).replace(str(config.rootpath / path), path),
            status="error",
        ),
    )


def _scrub(config: pytest.Config, record: dict[str, Any]) -> dict[str, Any]:
    """A golden's record with its failure text (`error`, `suggestion`) scrubbed of secrets,
    as the terminal's failure text is: it goes to the JSON report, JUnit and the summary."""
    redactor = settings_of(config).redactor
    for key in ("error", "suggestion", "fix"):
        if isinstance(record.get(key), str):
            record[key] = redactor.text(record[key])
    return record


def _report_text(report: pytest.TestReport | pytest.CollectReport) -> str:
    """A report's failure text without the line pytest heads it with on an xdist
    controller (`[gw1] linux -- Python 3.11.7 /usr/bin/python`)."""
    text = report.longreprtext.strip()
    if hasattr(report, "node"):
        first, _, rest = text.partition("\n")
        if re.match(r"\[[\w-]+\] ", first):
            return rest.strip()
    return text


def note_order(note: str) -> tuple[str, int, str]:
    """Summary notes by golden, then by the step they name (`step 5` before `step 10`), then
    as text: the same order serial and under xdist, whichever worker finished first."""
    import re

    owner = note.split(": ", 1)[0]
    step = re.search(r"\bstep (\d+)\b", note)
    return owner, int(step.group(1)) if step else 0, note


def _bare_record(report: pytest.TestReport, status: str) -> dict[str, Any]:
    """A record for a golden that failed before it produced a session (timeout, adapter)."""
    from opswald.report.summary import fix_of

    text = report.longreprtext.strip().splitlines()
    return {
        "name": report.nodeid,
        "file": report.nodeid.split("::")[0],
        "golden": report.nodeid.split("::")[-1],
        "variant": None,
        "status": status,
        "steps": 0,
        "llm_calls": 0,
        "tool_calls": 0,
        "input_tokens": 0,
        "output_tokens": 0,
        "total_tokens": 0,
        "cost": None,
        "unpriced_calls": 0,
        "duration_ms": None,
        "delta": None,
        "divergence": None,
        "error": text[0] if text else None,
        "suggestion": text[-1] if len(text) > 1 else None,
        "fix": fix_of(report.longreprtext),
        "still_failing": False,
    }


class SummaryPlugin:
    """Counts golden outcomes (also from xdist workers, via report attributes)."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.counts: dict[str, int] = {}
        self.malformed: dict[str, dict[str, Any]] = {}  # node id: record
        self.notes: list[str] = []
        self.records: list[dict[str, Any]] = []
        self.views: list[tuple[str, str, dict[str, Any], dict[str, Any] | None]] = []
        self.html_written: tuple[Path, int, int] | None = None
        self.report_errors: list[str] = []  # reports that could not be written

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        if (
            report.failed
            and is_golden_path(report.nodeid.split("::")[0])
            and report.nodeid not in self.malformed
        ):
            # once per file (each xdist worker collects it, the controller hears it once)
            record = self.malformed[report.nodeid] = _malformed_record(self.config, report)
            _add_collect_junit_properties(self.config, report, record)

    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_runtestloop(self, session: pytest.Session) -> Generator[None, object, object]:
        # A malformed golden is a collection error, but it must not stop the other goldens
        # from running: the run goes on as with --continue-on-collection-errors, which
        # keeps counting them as failures (--maxfail). Other collection errors stop it.
        option = session.config.option
        go_on = (
            bool(self.malformed)
            and session.testsfailed <= len(self.malformed)
            and not option.continue_on_collection_errors
        )
        if go_on:
            option.continue_on_collection_errors = True
        try:
            return (yield)
        finally:
            if go_on:
                option.continue_on_collection_errors = False

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if getattr(report, "outcome", None) == "rerun":  # pytest-rerunfailures: count the last
            return
        status = getattr(report, "opswald_status", None)
        when: str = report.when
        at_teardown = getattr(report, "opswald_teardown", None)
        if at_teardown is not None and when == "teardown":
            self._failed_at_teardown(report.nodeid, at_teardown)
            return
        if status is None and when == "???" and report.failed:  # an xdist worker died
            crashed = _record_of_report(self.config, report, "failed")
            if crashed is not None:
                self.counts["failed"] = self.counts.get("failed", 0) + 1
                self.records.append(crashed)
                if self.config.getoption("opswald_html"):  # the page shows the golden itself
                    shown = {
                        "path": str(self.config.rootpath / report.nodeid.partition("::")[0]),
                        "file": crashed["file"],
                        "actual": None,
                        "findings": [_failure_finding(crashed)],
                    }
                    self.views.append((report.nodeid, "failed", shown, crashed))
            return
        unloaded = report.when == "setup" and status == "failed"  # a marker's golden
        if status is not None and (report.when == "call" or status == "skipped" or unloaded):
            self.counts[status] = self.counts.get(status, 0) + 1
            if getattr(report, "opswald_record", None) is None:  # not made where it ran
                fallback = _record_of_report(self.config, report, status)
                if fallback is not None:
                    self.records.append(fallback)
            self.notes.extend(getattr(report, "opswald_notes", None) or ())
            record = getattr(report, "opswald_record", None)
            if record is not None:
                self.records.append(record)
            view = getattr(report, "opswald_view", None)
            if view is not None:
                self.views.append((report.nodeid, status, view, record))

    def _failed_at_teardown(self, nodeid: str, error: str) -> None:
        """A golden (or marker test) whose fixture failed at teardown after it passed:
        pytest counts an error, so its row is failed too (the JSON report's gate agrees
        with pytest's exit status); a row that failed already keeps its own error."""
        from opswald.report.json_report import PASSING

        for record in self.records:
            if record.get("name") != nodeid or record["status"] not in PASSING:
                continue
            was = record["status"]
            self.counts[was] -= 1
            self.counts["failed"] = self.counts.get("failed", 0) + 1
            record.update(status="failed", error=error, suggestion=None, fix=None)
            if was in ("updated", "recorded"):  # written: what it diverged at is blessed
                record["divergence"] = None
                self.notes.append(
                    f"{record['file']}: {was} (the golden was written), then a fixture "
                    "failed at teardown: review it with git diff"
                )
            self.views = [
                (name, "failed" if name == nodeid else status, view, row)
                for name, status, view, row in self.views
            ]
            return

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        if hasattr(self.config, "workerinput"):
            return  # only the controller writes
        # the paths were checked at startup; a write that fails now (a full disk, a folder
        # made there meanwhile) is an error line of the summary, and fails the run: a CI
        # gate on the report must not pass without it (pytest fails so on --junitxml)
        html = self.config.getoption("opswald_html")
        if html:
            with self._failing_write(session, "--opswald-html", "the viewer", html):
                self._write_html(self.config.invocation_params.dir / html)
        path = self.config.getoption("opswald_json")
        if not path:
            return
        from opswald.report import json_report

        order = tuple(name for name, _ in settings_of(self.config).variants)
        # the summary's notes, as it will print them (moved here from the run's so far)
        self.notes.extend(take_run_notes(self.config))
        redact = settings_of(self.config).redactor.text
        notes = [redact(n) for n in sorted(set(self.notes), key=note_order)]
        report = json_report.build([*self.records, *self.malformed.values()], order, notes)
        with self._failing_write(session, "--opswald-json", "the report", path):
            json_report.write(self.config.invocation_params.dir / path, report)

    @contextlib.contextmanager
    def _failing_write(
        self, session: pytest.Session, option: str, what: str, path: str
    ) -> Generator[None]:
        try:
            yield
        except OSError as exc:  # named as given: the error's own file may be a temp file
            self.report_errors.append(
                f"{option}: {what} was not written, so the run fails: cannot write {path}: "
                f"{exc.strerror or exc}"
            )
            # failed tests keep their exit code (1), an interrupted run its own
            if session.exitstatus in (pytest.ExitCode.OK, pytest.ExitCode.NO_TESTS_COLLECTED):
                session.exitstatus = pytest.ExitCode.TESTS_FAILED

    def _write_html(self, path: Path) -> None:
        from opswald.files import GoldenLoadError, load
        from opswald.report.html import ViewEntry, write_report
        from opswald.session import Session

        goldens: dict[str, Session] = {}
        entries: list[tuple[str, ViewEntry]] = []
        for nodeid, status, view, record in self.views:
            if view["path"] and view["path"] not in goldens:
                try:
                    limits = settings_of(self.config).limits
                    goldens[view["path"]] = load(
                        view["path"], max_bytes=limits.max_bytes, max_depth=limits.max_depth
                    )
                except GoldenLoadError:  # broken since it ran: listed without its steps
                    pass
            golden = goldens.get(view["path"])
            if golden is None:  # no golden to show (a marker's missing one, a broken one)
                if record is None:
                    continue
                golden = Session(name=record.get("golden") or nodeid, steps=[])
            actual = view.get("actual")
            entry = ViewEntry(
                golden=golden,
                actual=Session.model_validate(actual) if actual is not None else None,
                status=status,
                name=nodeid,
                file=view["file"],
                findings=list(view.get("findings") or ()),
                record=record,
                matched={n: g for n, g in view.get("matched") or ()},
            )
            entries.append((nodeid, entry))
        for nodeid, record in self.malformed.items():
            # a golden that could not be loaded: an entry with no steps, and its load error
            malformed = ViewEntry(
                golden=Session(name=record["golden"], steps=[]),
                status="error",
                name=record["name"],
                file=record["file"],
                findings=[_failure_finding(record)],
                record=record,
            )
            entries.append((nodeid, malformed))
        entries.sort(key=lambda pair: pair[0])
        size = write_report(
            path,
            [entry for _, entry in entries],
            slow_ms=self.config.getoption("opswald_slow_ms"),
            redactor=settings_of(self.config).redactor,
        )
        self.html_written = (path, len(entries), size)

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if not (
            self.html_written or self.counts or self.malformed or self.records or self.report_errors
        ):
            return  # no golden ran (a run of ordinary tests)
        from opswald.report.summary import Summary, golden_id
        from opswald.terminal import counted

        if self.html_written is not None:
            path, count, size = self.html_written
            shown = os.path.normpath(path)  # `proj/../out/report.html` as `out/report.html`
            terminalreporter.write_sep(
                "-", f"opswald viewer: {shown} ({counted(count, 'golden')}, {size / 1024:,.0f} KiB)"
            )

        counts = dict(self.counts)
        if self.malformed:
            counts["error"] = len(self.malformed)
        records = [*self.records, *self.malformed.values()]
        # ids as pytest shows them: relative to where pytest was run, so they can be re-run
        records = [
            {**r, "name": cwd_relative(self.config, r["name"])} if r.get("name") else r
            for r in records
        ]
        self.notes.extend(take_run_notes(self.config))  # raised outside any golden's run
        summary = Summary(
            counts=counts,
            notes=tuple(sorted(set(self.notes), key=note_order)),
            errors=tuple(self.report_errors),
            records=tuple(
                sorted(records, key=lambda r: (r["golden"], golden_id(r), r["variant"] or ""))
            ),
            variant_order=tuple(name for name, _ in settings_of(self.config).variants),
            verbose=self.config.get_verbosity(),
        )
        if not summary.total:
            if self.report_errors:  # no golden ran, but a report was asked for
                terminalreporter.write_sep("-", "opswald")
                for error in self.report_errors:
                    terminalreporter.write_line(f"error: {error}")
            return
        lines = summary.lines
        if not lines:  # -qq, and nothing to act on
            return
        terminalreporter.write_sep("-", "opswald")
        for line in lines:
            terminalreporter.write_line(line)


def cwd_relative(config: pytest.Config, nodeid: str) -> str:
    """A node id (relative to the rootdir) as pytest shows it: relative to where pytest
    was run, so that it can be pasted back (`Config.cwd_relative_nodeid`, whose argument
    became a `NodeId` object in pytest 9.2)."""
    here = config.invocation_params.dir
    if here == config.rootpath:
        return nodeid
    path, sep, rest = nodeid.partition("::")
    relative = os.path.relpath(config.rootpath / path, here).replace(os.sep, "/")
    return relative + sep + rest
