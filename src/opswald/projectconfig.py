"""The project's pytest configuration, for the `opswald` command line.

The command line finds the config file pytest would use for the same paths — pytest.ini,
pyproject.toml (`[tool.pytest.ini_options]`), tox.ini (`[pytest]`), setup.cfg
(`[tool:pytest]`), and under pytest 9 pytest.toml and pyproject's `[tool.pytest]` —
searched upward from the paths' common folder as pytest finds its rootdir and inifile, and
reads the ini settings in it with pytest's rules for each type of value. pytest has no
public API for this short of starting a whole run (which would load every plugin and
conftest.py), hence this reader. conftest.py files are not loaded, nor is `addopts`.

The settings shared with the plugin are checked here, so that a value is read and refused
alike under pytest (plugin.py turns `SettingError` into a usage error) and in the command
line.
"""

from __future__ import annotations

import functools
import glob
import os
import re
import shlex
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from opswald.files import Limits
    from opswald.redact import Redactor
    from opswald.session import RequestsExpect

CONFIG_NAMES = ("pytest.ini", ".pytest.ini", "pyproject.toml", "tox.ini", "setup.cfg")
MODES = ("replay", "record", "rerecord", "live")
DIFF_MODES = ("detailed", "short", "disabled")
NORECURSEDIRS = ("*.egg", ".*", "_darcs", "build", "CVS", "dist", "node_modules", "venv", "{arch}")
GOLDENS = ("goldens",)  # opswald_goldens's default


class SettingError(ValueError):
    """A config file that cannot be read, or a setting whose value is not one."""


@dataclass(frozen=True)
class ProjectConfig:
    """The config file pytest would use (if any), its folder's rootdir, and its values."""

    rootdir: Path
    inipath: Path | None = None
    values: dict[str, Any] = field(default_factory=dict)
    toml: bool = False  # values in native TOML types (pytest.toml, [tool.pytest])

    @property
    def folder(self) -> Path:
        """Where a module named by a setting is looked for: the config file's folder."""
        return self.inipath.parent if self.inipath is not None else self.rootdir

    def problem(self, name: str, message: str) -> SettingError:
        where = f"{self.inipath}: " if self.inipath is not None else ""
        return SettingError(f"{where}{name}: {message}")

    def is_set(self, name: str) -> bool:
        return name in self.values

    def string(self, name: str, default: str = "") -> str:
        if name not in self.values:
            return default
        value = self.values[name]
        if not isinstance(value, str):
            raise self.problem(name, f"expects a string, got {value!r}")
        return value

    def lines(self, name: str) -> list[str]:
        """A `linelist` value: one item a line (ini), or a list (TOML)."""
        value = self.values.get(name, [])
        if isinstance(value, str) and not self.toml:
            return [line.strip() for line in value.split("\n") if line.strip()]
        return self._strings(name, value)

    def args(self, name: str, default: Sequence[str] = ()) -> list[str]:
        """An `args` value: split as a shell splits words (ini), or a list (TOML)."""
        if name not in self.values:
            return list(default)
        value = self.values[name]
        if isinstance(value, str) and not self.toml:
            try:
                return shlex.split(value)
            except ValueError as exc:
                raise self.problem(name, str(exc)) from None
        return self._strings(name, value)

    def paths(self, name: str) -> list[Path]:
        """A `paths` value: `args`, each relative to the config file's folder."""
        return [self.folder / item for item in self.args(name)]

    def flag(self, name: str, default: bool = False) -> bool:
        if name not in self.values:
            return default
        value = self.values[name]
        if isinstance(value, bool):
            return value
        if self.toml and not isinstance(value, str | int | float):
            raise self.problem(name, f"expects a bool, got {value!r}")
        try:  # a TOML string or number read as an ini file's text, as the plugin reads it
            return truth(str(value))
        except ValueError as exc:
            raise self.problem(name, f"{exc}; write true or false") from None

    def _strings(self, name: str, value: Any) -> list[str]:
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self.problem(name, f"expects a list of strings, got {value!r}")
        return list(value)


def truth(value: str) -> bool:
    """pytest's reading of an ini `bool` (`true`/`false`, `yes`/`no`, `1`/`0`, `on`/`off`)."""
    text = value.strip().lower()
    if text in ("y", "yes", "t", "true", "on", "1"):
        return True
    if text in ("n", "no", "f", "false", "off", "0"):
        return False
    raise ValueError(f"invalid truth value {value!r}")


# -- finding the config file, as pytest does (its rootdir and inifile) ---------------------
def find(
    paths: Iterable[str | os.PathLike[str]] = (),
    *,
    config_file: str | os.PathLike[str] | None = None,
    invocation_dir: Path | None = None,
) -> ProjectConfig:
    """The config pytest would use when run as `pytest PATHS` from `invocation_dir` (the
    current directory), or with `-c CONFIG_FILE`."""
    here = _absolute(invocation_dir if invocation_dir is not None else Path.cwd())
    if config_file is not None:
        inipath = _absolute(Path(config_file))
        if not inipath.is_file():
            raise SettingError(f"{config_file}: no such config file")
        loaded = _load(inipath)
        values, toml = loaded if loaded is not None else ({}, False)
        return ProjectConfig(rootdir=inipath.parent, inipath=inipath, values=values, toml=toml)
    dirs = []
    for raw in paths:
        path = _absolute(Path(raw))
        if _exists(path):
            dirs.append(path if path.is_dir() else path.parent)
    ancestor = _common_ancestor(here, dirs)
    found = _locate([ancestor])
    if found is not None:
        return found
    for base in (ancestor, *ancestor.parents):
        if (base / "setup.py").is_file():
            return ProjectConfig(rootdir=base)
    if dirs != [ancestor]:
        found = _locate(dirs)
        if found is not None:
            return found
    rootdir = _common_ancestor(here, [here, ancestor])
    if os.path.splitdrive(str(rootdir))[1] == os.sep:  # the file system's root
        rootdir = ancestor
    return ProjectConfig(rootdir=rootdir)


@functools.cache
def _pytest_version() -> tuple[int, int]:
    """pytest's (major, minor), read without importing pytest (a tenth of a second)."""
    try:
        from _pytest._version import version
    except ImportError:
        from importlib.metadata import version as installed

        version = installed("pytest")
    major, minor = ([*version.split(".")[:2], "0"])[:2]
    return int(major), int("".join(c for c in minor if c.isdigit()) or 0)


def _pytest_9() -> bool:
    """pytest.toml and pyproject's [tool.pytest] table (native TOML types) came with
    pytest 9."""
    return _pytest_version() >= (9, 0)


def config_names() -> tuple[str, ...]:
    """The files pytest reads its config from, in its order of preference."""
    return (("pytest.toml", ".pytest.toml") if _pytest_9() else ()) + CONFIG_NAMES


def _absolute(path: Path) -> Path:
    return Path(os.path.abspath(path))  # as pytest: `..` folded, symlinks kept


def _exists(path: Path) -> bool:
    try:
        return path.exists()
    except OSError:
        return False


def _common_ancestor(here: Path, paths: Iterable[Path]) -> Path:
    common: Path | None = None
    for path in paths:
        if not path.exists():
            continue
        if common is None:
            common = path
        elif common in path.parents or path == common:
            continue
        elif path in common.parents:
            common = path
        else:
            try:
                common = Path(os.path.commonpath((str(path), str(common))))
            except ValueError:  # different drives
                continue
    if common is None:
        return here
    return common.parent if common.is_file() else common


def _locate(starts: Sequence[Path]) -> ProjectConfig | None:
    """The first config file with a pytest section, from each start folder upward; else
    the first pyproject.toml met (pytest 8.1 and later take it for the rootdir), with no
    values."""
    pyproject: Path | None = None
    for start in starts:
        for base in (start, *start.parents):
            for name in config_names():
                path = base / name
                if not path.is_file():
                    continue
                if name == "pyproject.toml" and pyproject is None:
                    pyproject = path
                loaded = _load(path)
                if loaded is not None:
                    values, toml = loaded
                    return ProjectConfig(rootdir=base, inipath=path, values=values, toml=toml)
    if pyproject is not None and _pytest_version() >= (8, 1):  # pytest 8.0 passes it over
        return ProjectConfig(rootdir=pyproject.parent, inipath=pyproject)
    return None


def _load(path: Path) -> tuple[dict[str, Any], bool] | None:
    """`(values, toml)` of a file holding pytest configuration; None if it holds none."""
    if path.suffix in (".ini", ".cfg"):
        import iniconfig

        try:
            parsed = iniconfig.IniConfig(str(path))
        except iniconfig.ParseError as exc:
            raise SettingError(str(exc)) from None
        except OSError as exc:
            raise SettingError(f"{path}: {exc.strerror or exc}") from None
        if path.suffix == ".ini":
            if "pytest" in parsed:
                return dict(parsed["pytest"].items()), False
            return ({}, False) if path.name in ("pytest.ini", ".pytest.ini") else None
        if "tool:pytest" in parsed:
            return dict(parsed["tool:pytest"].items()), False
        if "pytest" in parsed:
            raise SettingError(
                f"{path}: [pytest] section in setup.cfg files is no longer supported, "
                "change to [tool:pytest] instead"
            )
        return None
    if path.suffix != ".toml":
        return None
    import tomllib

    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise SettingError(f"{path}: {exc}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SettingError(f"{path}: {getattr(exc, 'strerror', None) or exc}") from None
    if path.name in ("pytest.toml", ".pytest.toml"):
        table = data.get("pytest", {})
        return (dict(table), True) if isinstance(table, dict) else ({}, True)
    tool = data.get("tool", {})
    section = tool.get("pytest", {}) if isinstance(tool, dict) else {}
    if not isinstance(section, dict):
        return None
    native = {k: v for k, v in section.items() if k != "ini_options"} if _pytest_9() else {}
    ini = section.get("ini_options")
    if native and ini is not None:
        raise SettingError(
            f"{path}: Cannot use both [tool.pytest] (native TOML types) and "
            "[tool.pytest.ini_options] (string-based INI format) simultaneously"
        )
    if native:
        return native, True
    if isinstance(ini, dict):
        # as pytest: TOML's other types are read as text in ini mode, lists as lists
        return {k: v if isinstance(v, list) else str(v) for k, v in ini.items()}, False
    return None


# -- opswald's settings, read alike by the plugin and the command line --------------------
def choice(name: str, value: str, choices: Sequence[str]) -> str:
    """A value that must be one of `choices` (case aside): a typo is refused, not ignored."""
    text = str(value).strip().lower()
    if text not in choices:
        shown = ", ".join(repr(c) for c in choices if c) + (" or empty" if "" in choices else "")
        raise SettingError(f"{name}: {text!r} is not one of {shown}")
    return text


def names(values: Iterable[str]) -> list[str]:
    """ini `args` values, also accepting commas: `a, b` and `a b` are the same list."""
    return [name for value in values for name in value.split(",") if name.strip()]


def integrations(values: Iterable[str]) -> tuple[str, ...]:
    from opswald.integrations import KNOWN

    listed = [n.strip() for n in names(values)]
    unknown = [n for n in listed if n not in KNOWN]
    if unknown:
        raise SettingError(
            f"opswald_integrations: unknown {', '.join(map(repr, unknown))}; "
            f"known: {', '.join(KNOWN)}"
        )
    return tuple(dict.fromkeys(listed))


def normalize_rules(lines: Iterable[str]) -> list[dict[str, str]]:
    """`REGEX => PLACEHOLDER` lines of opswald_request_normalize."""
    rules = []
    for line in lines:
        pattern, sep, placeholder = line.partition("=>")
        if not sep:
            raise SettingError(f"opswald_request_normalize: {line!r} is not 'REGEX => PLACEHOLDER'")
        try:
            re.compile(pattern.strip())
        except re.error as exc:
            raise SettingError(
                f"opswald_request_normalize: {pattern.strip()!r} is not a valid regular "
                f"expression: {exc}"
            ) from None
        rules.append({"pattern": pattern.strip(), "replace": placeholder.strip()})
    return rules


def suite_requests(ignore: list[str], normalize: list[dict[str, str]]) -> RequestsExpect:
    """The suite-wide request rules; a bad path or rule is refused naming its setting."""
    from pydantic import ValidationError

    from opswald.files import schema_problem
    from opswald.session import RequestsExpect

    try:
        return RequestsExpect.model_validate({"ignore": ignore, "normalize": normalize})
    except ValidationError as exc:
        problem = schema_problem(exc)
        option = (
            "opswald_request_ignore"
            if problem.field and "ignore" in problem.field
            else "opswald_request_normalize"
        )
        raise SettingError(f"{option}: {problem.message}") from None


MIN_GOLDEN_BYTES = 1024
MIN_GOLDEN_DEPTH = 16


def golden_limits(max_bytes: object, max_depth: object) -> Limits:
    """The caps of opswald_max_golden_bytes and opswald_max_golden_depth (an empty value:
    the default), each a whole number in its range; anything else is refused naming it."""
    from opswald.files import (
        DEFAULT_MAX_BYTES,
        DEFAULT_MAX_DEPTH,
        DEPTH_CEILING,
        MAX_BYTES_SETTING,
        MAX_DEPTH_SETTING,
        Limits,
    )

    return Limits(
        max_bytes=_whole(
            MAX_BYTES_SETTING, max_bytes, DEFAULT_MAX_BYTES, MIN_GOLDEN_BYTES, None, "bytes"
        ),
        max_depth=_whole(
            MAX_DEPTH_SETTING,
            max_depth,
            DEFAULT_MAX_DEPTH,
            MIN_GOLDEN_DEPTH,
            DEPTH_CEILING,
            "levels",
        ),
    )


def _whole(name: str, value: object, default: int, low: int, high: int | None, unit: str) -> int:
    if value is None or (isinstance(value, str) and not value.strip()):
        return default
    number: int | None = None
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, str) and re.fullmatch(r"[0-9]+", value.strip()):
        number = int(value.strip())
    span = f"from {low:,}" + (f" to {high:,}" if high is not None else " up")
    if number is None:
        raise SettingError(
            f"{name}: {value!r} is not a whole number of {unit}; write one {span} "
            f"(default {default:,})"
        )
    if number < low or (high is not None and number > high):
        raise SettingError(f"{name}: {number:,} {unit} is out of range; write a number {span}")
    return number


@dataclass(frozen=True)
class GoldenFolders:
    """The folders (and files) that opswald_goldens names, absolute, in its order."""

    paths: list[Path]
    missing: list[str]  # entries naming nothing (the default `goldens` aside)
    unmatched: list[str]  # glob patterns matching nothing

    def warnings(self, rootdir: Path) -> list[str]:
        """A folder named that does not exist is warned about; a pattern that matches
        nothing only when nothing at all is found (as pytest's testpaths)."""
        notes = [
            f"opswald_goldens = {entry}: no such file or folder under {rootdir}; no goldens "
            "are collected from it"
            for entry in self.missing
        ]
        if self.unmatched and not self.paths:
            notes.append(
                f"opswald_goldens = {' '.join(self.unmatched)}: no files or folders match "
                f"under {rootdir}; no goldens are collected from it"
            )
        return notes


def golden_folders(entries: Iterable[str], rootdir: Path) -> GoldenFolders:
    """opswald_goldens's entries as pytest reads `testpaths`: each relative to the rootdir,
    a glob pattern (`*`, `?`, `[...]`, `**`) expanded to its matches in name order; each
    path listed once."""
    found: dict[Path, None] = {}
    missing: list[str] = []
    unmatched: list[str] = []
    for entry in entries:
        if any(c in entry for c in "*?["):
            matches = sorted(glob.glob(entry, root_dir=rootdir, recursive=True))
            if not matches:
                unmatched.append(entry)
            found.update((_absolute(rootdir / match), None) for match in matches)
            continue
        path = _absolute(rootdir / entry)
        if _exists(path):
            found[path] = None
        elif entry not in GOLDENS:  # the default, when there is no such folder: silent
            missing.append(entry)
    return GoldenFolders(list(found), missing, unmatched)


def outermost(paths: Iterable[Path], inside: Iterable[Path] = ()) -> list[Path]:
    """`paths` less those in (or equal to) another of them or one of `inside`: a folder
    and a folder below it are collected once, with the outer one."""
    listed = list(dict.fromkeys(paths))
    bases = list(inside)
    return [
        path
        for path in listed
        if not any(base == path or base in path.parents for base in bases)
        and not any(other in path.parents for other in listed)
    ]


def default_paths(config: ProjectConfig, here: Path) -> tuple[list[Path], list[str]]:
    """What `pytest --opswald-goldens` collects when given no paths, run in `here`, and the
    warnings about opswald_goldens: run in a subfolder of the rootdir, that folder (and
    so the goldens below it only); in the rootdir, pytest's `testpaths` (else the rootdir)
    with the folders of opswald_goldens."""
    here = _absolute(here)
    if here != config.rootdir:
        return [here], []
    try:
        testpaths = config.args("testpaths")
        entries = config.args("opswald_goldens", GOLDENS)
    except SettingError as exc:
        raise _in_file(config, exc) from None
    tests = [
        _absolute(here / match)
        for pattern in testpaths
        for match in sorted(glob.glob(pattern, root_dir=here, recursive=True))
    ] or [here]
    goldens = golden_folders(entries, config.rootdir)
    return tests + outermost(goldens.paths, tests), goldens.warnings(config.rootdir)


# -- the command line's view of them ------------------------------------------------------
@dataclass(frozen=True, kw_only=True)
class CliSettings:
    """opswald's settings in the project's pytest config, as `opswald replay` and `opswald
    serve` apply them. A setting the config does not hold keeps its pytest default."""

    config: ProjectConfig
    adapter: str | None = None
    mode: str = "replay"
    diff_mode: str = "detailed"
    requests: RequestsExpect | None = None
    redactor: Redactor
    prices: Any = None  # a pricing.Pricer
    integrations: tuple[str, ...] | None = None  # None: the golden's recorded ones
    side_effect_tools: frozenset[str] = frozenset()
    langgraph_state: bool = False
    embedder: str | None = None
    judge: str | None = None
    pythonpath: tuple[Path, ...] = ()

    @property
    def adapter_root(self) -> Path:
        return self.config.folder

    def tolerance(self) -> Any:
        """The embedder and the judge of opswald_embedder and opswald_judge, imported
        (after `importable`, as pytest imports them once its `pythonpath` is set)."""
        from opswald.adapters import AdapterNotFound, import_string
        from opswald.expect.tolerant import Tolerance

        def imported(name: str, spec: str | None, what: str) -> Any:
            if not spec:
                return None
            try:
                return import_string(spec, root=self.adapter_root, what=what)
            except AdapterNotFound as exc:
                raise self.config.problem(name, str(exc)) from None

        return Tolerance(
            embedder=imported("opswald_embedder", self.embedder, "embedder"),
            judge=imported("opswald_judge", self.judge, "judge"),
        )


def project_redactor(paths: Iterable[str | os.PathLike[str]] = ()) -> Redactor:
    """What `opswald.record` and `opswald.dump` hide: in a pytest run, the run's rules
    (`opswald_redact` and the `pytest_opswald_redact` hooks); elsewhere the
    `opswald_redact` of the config pytest would use for `paths` (hooks need pytest). A
    config that cannot be read is a warning, and the default rules apply."""
    import warnings

    from opswald.redact import DEFAULT_REDACTOR, make_redactor, run_redactor

    active = run_redactor()
    if active is not None:
        return active
    try:
        # a file about to be written is not there yet: its folder (or cwd) places it
        config = find(Path(p) if Path(p).exists() else Path(p).parent for p in paths)
        redact = choice("opswald_redact", config.string("opswald_redact"), ("", "pii"))
    except SettingError as exc:
        warnings.warn(f"opswald: {exc}; using the default redaction rules", stacklevel=3)
        return DEFAULT_REDACTOR
    return make_redactor(pii=True) if redact == "pii" else DEFAULT_REDACTOR


def project_pricer(
    paths: Iterable[str | os.PathLike[str]] = (), *, who: str, stacklevel: int = 3
) -> Any:
    """What the Python API (`who`) prices a call with when its response reports no cost,
    as under pytest: the shipped price table with the `opswald_prices` of the config
    pytest would use for `paths` laid over it (hooks need pytest). A price file that
    cannot be used is a warning, and the shipped table prices the calls."""
    import warnings

    from opswald.pricing import Pricer, PriceTable

    def unpriced(note: str) -> None:
        """A model no table prices: its steps have no cost (no warning per run)."""

    try:
        return pricer(find(paths), unpriced)
    except SettingError as exc:
        warnings.warn(f"{who}: {exc}; using the shipped price table", stacklevel=stacklevel)
        return Pricer(PriceTable.load_default(), None, unpriced)


def api_settings(paths: Iterable[str | os.PathLike[str]] = ()) -> CliSettings:
    """The settings the Python API (`opswald.Replay`, `batch_replay`) applies, read from
    the config pytest would use for `paths` as `opswald replay` reads them; a bad value
    raises SettingError naming the file and the setting, as `opswald replay` refuses it.
    In a pytest run, the run's redaction rules (its `pytest_opswald_redact` hooks too), as
    `opswald.record` takes them. Prices are left to `project_pricer` (a price file that
    cannot be used is a warning there)."""
    from dataclasses import replace

    from opswald.redact import run_redactor

    settings = cli_settings(find(paths), priced=False)
    active = run_redactor()
    return settings if active is None else replace(settings, redactor=active)


def cli_settings(config: ProjectConfig, *, warn: Any = None, priced: bool = True) -> CliSettings:
    """The settings of `config`; a bad value raises SettingError naming the file and the
    setting. `warn(text)` gets the notes of prices missing for a model; without `priced`
    the price file is not read (`prices` is None)."""
    from opswald.redact import make_redactor

    try:
        requests = suite_requests(
            config.lines("opswald_request_ignore"),
            normalize_rules(config.lines("opswald_request_normalize")),
        )
        redact = choice("opswald_redact", config.string("opswald_redact"), ("", "pii"))
        mode = choice("opswald_mode", config.string("opswald_mode", "replay"), MODES)
        diff_mode = choice(
            "opswald_diff_mode", config.string("opswald_diff_mode", "detailed"), DIFF_MODES
        )
        listed = (
            integrations(config.args("opswald_integrations"))
            if config.is_set("opswald_integrations")
            else None
        )
    except SettingError as exc:
        raise _in_file(config, exc) from None
    return CliSettings(
        config=config,
        adapter=config.string("opswald_adapter").strip() or None,
        mode=mode,
        diff_mode=diff_mode,
        requests=requests,
        redactor=make_redactor(pii=redact == "pii"),
        prices=pricer(config, warn) if priced else None,
        integrations=listed,
        side_effect_tools=frozenset(
            n.strip() for n in names(config.args("opswald_side_effect_tools"))
        ),
        langgraph_state=config.flag("opswald_langgraph_state"),
        embedder=config.string("opswald_embedder").strip() or None,
        judge=config.string("opswald_judge").strip() or None,
        pythonpath=tuple(config.paths("pythonpath")),
    )


def config_limits(config: ProjectConfig) -> Limits:
    """The golden caps the config file sets (`golden_limits`), refused naming the file."""
    from opswald.files import MAX_BYTES_SETTING, MAX_DEPTH_SETTING

    try:
        return golden_limits(
            config.values.get(MAX_BYTES_SETTING), config.values.get(MAX_DEPTH_SETTING)
        )
    except SettingError as exc:
        raise _in_file(config, exc) from None


def _in_file(config: ProjectConfig, exc: SettingError) -> SettingError:
    text = str(exc)
    if config.inipath is not None and not text.startswith(str(config.inipath)):
        text = f"{config.inipath}: {text}"
    return SettingError(text)


def pricer(config: ProjectConfig, warn: Any) -> Any:
    """The shipped price table with opswald_prices (relative to the rootdir) laid over it."""
    from opswald.pricing import PriceError, Pricer, PriceTable, file_problem

    table = PriceTable.load_default()
    extra = config.string("opswald_prices")
    if extra:
        path = config.rootdir / extra
        try:
            table = table.merged(PriceTable.from_file(path))
        except (OSError, PriceError) as exc:
            problem = file_problem(path, exc)
            raise config.problem("opswald_prices", f"cannot use {path}: {problem}") from None
    return Pricer(table, None, warn) if warn is not None else Pricer(table)


def importable(settings: CliSettings) -> None:
    """The user's modules import as under pytest: pytest's `pythonpath` folders first,
    then the current directory."""
    cwd = os.getcwd()
    if cwd not in sys.path:
        sys.path.insert(0, cwd)
    for path in reversed(settings.pythonpath):
        if str(path) not in sys.path:
            sys.path.insert(0, str(path))
