"""Golden files as pytest collectors and items. What a golden's run does is in
`opswald.goldenrun`, loaded when the first golden runs: collecting goldens needs the
files and their validation, not the replay engine."""

from __future__ import annotations

import difflib
import functools
import inspect
import os
import re
import types
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar, cast

import pytest
from _pytest._code.code import ExceptionInfo, TerminalRepr

from opswald import adapters, files
from opswald.plugin import INI_USEFIXTURES
from opswald.redact import Redactor
from opswald.session import RequestsExpect, Session
from opswald.terminal import escaped

if TYPE_CHECKING:
    from _pytest.nodes import Node  # the type pytest's Node.getparent is written with

    from opswald.collectcache import Entry
    from opswald.diff import DiffMode
    from opswald.goldenrun import Outcome


@dataclass(frozen=True, kw_only=True)
class Settings:
    """The plugin's options, read once per run (kept in config.stash)."""

    mode: Literal["replay", "record", "rerecord", "live"] = "replay"
    update: bool = False
    force: bool = False
    allow_side_effects: bool = False
    diff_mode: DiffMode = "detailed"
    adapter: str | None = None
    adapter_root: Path | None = None  # the folder of the config file naming the adapter
    requests: RequestsExpect = field(default_factory=RequestsExpect)
    redactor: Redactor = field(default_factory=Redactor)
    prices: Any = None  # a pricing.Pricer
    integrations: tuple[str, ...] = ()  # ini opswald_integrations
    side_effect_tools: frozenset[str] = frozenset()  # ini opswald_side_effect_tools
    langgraph_state: bool = False  # ini opswald_langgraph_state
    limits: files.Limits = files.DEFAULT_LIMITS  # ini opswald_max_golden_bytes, _depth
    modify: dict[str, Any] = field(default_factory=dict)  # --opswald-modify
    variants: tuple[tuple[str, dict[str, Any]], ...] = ()  # --opswald-variant
    fork_at: int | None = None
    timeout: float | None = None
    tolerance: Any = None  # expect.tolerant.Tolerance
    repeat: int = 1
    min_pass_rate: float = 1.0


class GoldenError(Exception):
    """A golden that failed: the text is the rendered verdict or the usage problem.

    `stopped`: for a run that was stopped (a timeout) or whose process died, how far it got,
    as plain data for the reports (see `_stopped`)."""

    def __init__(
        self, text: str, outcome: Outcome | None = None, *, stopped: dict[str, Any] | None = None
    ) -> None:
        super().__init__(text)
        self.text = text
        self.outcome = outcome
        self.stopped = stopped
        # what the agent raised, in this process (`_with_agent_frames` shows its frames)
        self.agent_exception: BaseException | None = None


# -- pytest nodes -------------------------------------------------------------------------

_BAD_ID = re.compile(r"::|[\[\]\n\r]")


def item_name(golden: Session, path: Path) -> str:
    """The golden's test name: its `name:` (else the file's stem), with what steers a
    terminal escaped as pytest escapes ids (`\x1b`, `\u202e`), and what pytest's node ids
    give a meaning to (`::`, brackets, line breaks) made `_`."""
    name = escaped(golden.name or path.name.split(".golden.")[0])
    return _BAD_ID.sub("_", name).strip() or "golden"


def _entry_of(golden: Session, path: Path) -> Entry:
    from opswald.collectcache import Entry

    return Entry(
        name=item_name(golden, path), tags=tuple(golden.tags), fixtures=tuple(golden.fixtures)
    )


class GoldenFile(pytest.File):
    """A `*.golden.yaml|yml|json` file: one golden, one item.

    Not a pytest.Module (it is no Python module, and plugins that act on every module,
    looking for snapshots or coverage, have nothing to do with it), yet the "module" of
    module-scoped fixtures: its item names it as its module (`GoldenItem.getparent`), so a
    module-scoped fixture is set up once per golden file. It has no Python object."""

    obj = None  # nothing is imported: `request.module` and `item.module` are None

    def collect(self) -> Iterable[pytest.Item]:
        from opswald.collectcache import digest_of, index_of
        from opswald.plugin import settings_of

        index = index_of(self.config)
        stat = self.path.stat()
        entry = index.lookup(self.path, stat)
        compact: bytes | None = None
        if entry is None:  # parsed and validated now: a malformed golden fails collection
            read: list[str] = []  # the digest of the bytes parsed, when the index is on
            seen = (lambda raw: read.append(digest_of(raw))) if index.on else None
            caps = settings_of(self.config).limits
            if self.config.option.collectonly:  # nothing runs: hold nothing of the golden
                golden = files.load(
                    self.path, max_bytes=caps.max_bytes, max_depth=caps.max_depth, seen=seen
                )
            else:
                golden, compact = files.load_compact(
                    self.path, max_bytes=caps.max_bytes, max_depth=caps.max_depth, seen=seen
                )
            entry = _entry_of(golden, self.path)
            now = self.path.stat()
            unchanged = (now.st_mtime_ns, now.st_size) == (stat.st_mtime_ns, stat.st_size)
            if read and unchanged:  # not written to while it was read
                index.remember(self.path, stat, entry, read[0])
        _check_plugin_markers(self.path, entry.tags, self.config)
        name = entry.name
        variants = settings_of(self.config).variants
        items = (
            [
                GoldenItem.from_parent(
                    self, name=f"{name}[{v}]", compact=compact, variant=(v, mods), entry=entry
                )
                for v, mods in variants
            ]
            if variants
            else [GoldenItem.from_parent(self, name=name, compact=compact, entry=entry)]
        )
        _check_fixtures(self.path, entry.fixtures, items[0])
        for tag in entry.tags:
            # as a mark of the item only: registering it (pytest.mark.<tag>) would let
            # ordinary tests use it under --strict-markers once a golden was collected
            mark = pytest.Mark(tag, (), {}, _ispytest=True)
            for item in items:
                item.keywords[tag] = mark
                item.own_markers.append(mark)
        yield from items

    def repr_failure(  # type: ignore[override]
        self, excinfo: ExceptionInfo[BaseException]
    ) -> str | TerminalRepr:
        if isinstance(excinfo.value, files.GoldenLoadError):
            from opswald.plugin import settings_for

            # scrubbed of the default shapes already; the run's own rules (hook, pii) too
            redactor: Redactor = settings_for(self).redactor
            return redactor.text(f"malformed golden: {excinfo.value}")
        return super().repr_failure(excinfo)


def _check_plugin_markers(path: Path, tags: Iterable[str], config: pytest.Config) -> None:
    """A tag named like an installed plugin's marker would hand the golden to that plugin
    (a bare `timeout` mark crashes pytest-timeout; `flaky` reruns it): a collection error
    at the file's `tags` line, as a tag named like pytest's own markers is."""
    from opswald.plugin import plugin_markers

    registered = plugin_markers(config)
    clash = [(i, tag) for i, tag in enumerate(tags) if tag in registered]
    if not clash:
        return
    index, tag = clash[0]
    raise files.GoldenLoadError(
        f"tag {tag!r} is the marker of an installed pytest plugin (@pytest.mark.{tag}) "
        "and would change how the golden runs; choose another name",
        path=path,
        line=_line_of_key(path, "tags"),
        field=f"tags[{index}]",  # as the load's own checks of each tag say it
    )


def _line_of_key(path: Path, key: str) -> int | None:
    """The line of the golden's top-level `key:` (YAML or JSON), if it can be found."""
    pattern = re.compile(rf"""\s*["']?{key}["']?\s*:""")
    lines = path.read_text(errors="replace").splitlines()
    return next((n for n, text in enumerate(lines, 1) if pattern.match(text)), None)


def _check_fixtures(path: Path, names: Iterable[str], item: GoldenItem) -> None:
    """A golden's `fixtures:` naming a fixture that is not visible at the golden (misspelt,
    or defined in a conftest.py of another folder): a collection error at its `fixtures:`
    line, as a tag that cannot be one is, rather than pytest's "fixture not found" at
    setup, which would point at opswald's code, not at the golden."""
    # pytest found the definitions of the names it could (the item's fixture closure)
    found = item._fixtureinfo.name2fixturedefs
    names = tuple(names)
    if "golden_replay" in names:  # the marker tests' fixture: a golden is replayed anyway
        raise files.GoldenLoadError(
            "golden_replay is the fixture of a @pytest.mark.golden test (it replays the golden "
            "the marker names); a golden file is replayed as it is, and takes no such fixture"
            "\nfix: take golden_replay out of fixtures:",
            path=path,
            line=_line_of_key(path, "fixtures"),
            field="fixtures",
        )
    missing = [name for name in names if name not in found and name != "request"]
    if not missing:
        _check_unparametrized(path, names, item)
        return
    name = missing[0]
    close = difflib.get_close_matches(name, _visible_fixtures(item), n=5, cutoff=0.6)
    candidates = "".join(f"\n- {candidate}" for candidate in close)
    raise files.GoldenLoadError(
        f"no fixture named {name!r} is visible to this golden (fixtures come from a "
        "conftest.py in the golden's folder or above, or from a plugin)"
        + (f"; did you mean:{candidates}" if close else "")
        + "\nfix: correct the name, or define the fixture in a conftest.py in the golden's "
        "folder or above",
        path=path,
        line=_line_of_key(path, "fixtures"),
        field="fixtures",
    )


def _check_unparametrized(path: Path, names: tuple[str, ...], item: GoldenItem) -> None:
    """A golden runs once, so a fixture with `params=` (named by the golden, autouse, or
    asked for by another) has no parameter to get: a collection error saying so, not
    pytest's "The requested fixture has no parameter defined" at setup."""
    info = item._fixtureinfo
    checked = item.config.stash.setdefault(_UNPARAMETRIZED, set())
    if id(info) in checked:  # shared by the goldens of a folder (GoldenItem.__init__)
        return
    found = info.name2fixturedefs
    for name in info.names_closure:
        defs = found.get(name)
        if not defs or getattr(defs[-1], "params", None) is None:
            continue
        code = getattr(getattr(defs[-1], "func", None), "__code__", None)
        where = ""
        if code is not None:
            source = Path(code.co_filename)
            if source.is_relative_to(item.config.rootpath):
                source = source.relative_to(item.config.rootpath)
            where = f" ({source}:{code.co_firstlineno})"
        own = name in names
        if own:
            how, fix = "", "give the golden a fixture without params"
        elif name in item.config.stash.get(INI_USEFIXTURES, ()):
            how = " (the ini option usefixtures names it for every test, goldens too)"
            fix = f"take {name} out of the ini option usefixtures, or give it no params"
        elif name in info.initialnames:
            how = " (an autouse fixture)"
            fix = (
                "keep the parametrized fixture out of the goldens' way: define it in the "
                "conftest.py of the tests' own folder, not in one above the goldens"
            )
        else:
            how = " (a fixture the golden uses asks for it)"
            fix = "give the golden fixtures that ask for no parametrized fixture"
        raise files.GoldenLoadError(
            f"fixture {name!r}{where} is parametrized: a golden runs once, with no parameter "
            f"to give it{how}\nfix: {fix}",
            path=path,
            line=_line_of_key(path, "fixtures") if own else None,
            field="fixtures" if own else None,
        )
    checked.add(id(info))


@functools.cache
def _shown_first_line() -> int:
    """The `co_firstlineno` pytest shows as a file's line 1 where it shows a test's
    function: 0 before pytest 9.2, which showed a function's line plus one, else 1."""
    try:
        from _pytest.compat import getlocation

        def probe() -> None: ...

        code = probe.__code__.replace(co_firstlineno=1)
        shown = getlocation(types.FunctionType(code, {}, "probe"))
    except Exception:  # a pytest without it: as the versions that have it
        return 1
    return 0 if shown.endswith(":2") else 1


def _visible_fixtures(item: pytest.Item) -> list[str]:
    """The names of the fixtures a test at `item` can use (for the suggestions)."""
    manager = getattr(item.session, "_fixturemanager", None)
    names: set[str] = set()
    # pytest before 9.2 keeps every fixture's definitions by name in one dict, later
    # versions in two (by node, by node id)
    for kept in ("_arg2fixturedefs", "_arg2node2fixturedefs", "_arg2nodeid2fixturedefs"):
        by_name = getattr(manager, kept, None)
        if isinstance(by_name, dict):
            names.update(by_name)
    if manager is None or not names:  # a pytest that keeps them elsewhere
        return []
    # pytest 8.0 finds them by the node's id, later versions by the node
    taken = inspect.signature(manager.getfixturedefs).parameters
    at: Any = item.nodeid if "nodeid" in taken else item
    return sorted(name for name in names if manager.getfixturedefs(name, at))


def _failure_repr(
    path: Path,
    error: GoldenError,
    *,
    line_only: bool = False,
    raised: BaseException | None = None,
) -> TerminalRepr:
    """The failure text as pytest's own failures are: printed as it is, with a one-line
    crash message at the golden's failing step (`path:line: message`), which `--tb=line`,
    the `-r` summary line and JUnit's `message` attribute show, and which xdist carries;
    when the failure is the agent's exception (`raised`), at the line that raised it, as
    a test's crash line is. `line_only` (`--tb=line`): that line alone, the text left
    out."""
    from _pytest._code.code import (
        ReprEntryNative,
        ReprExceptionInfo,
        ReprFileLocation,
        ReprTraceback,
    )

    text = error.text
    outcome = error.outcome
    failures = outcome.result.verdict.failures if outcome and outcome.result else ()
    # an extra call's, a blocked side effect's or a new snapshot's step is the run's: no
    # golden line for it
    step = failures[0].step if failures and not failures[0].numbered_in_run else None
    head = text.split("\n", 1)[0]
    entry = ReprEntryNative([text if text.endswith("\n") else text + "\n"])
    where = (str(path), _line_of_step(path, step))
    if raised is not None and failures and failures[0].kind in ("agent_error", "error"):
        where = _raised_at(raised) or where
    return ReprExceptionInfo(
        reprtraceback=ReprTraceback([] if line_only else [entry], None, "native"),
        reprcrash=ReprFileLocation(*where, head),
    )


def _raised_at(raised: BaseException) -> tuple[str, int] | None:
    """The file and line where `raised` was raised (its traceback's last frame); of an
    exception group (a task group's), where its first exception was raised."""
    while isinstance(raised, BaseExceptionGroup) and raised.exceptions:
        first = raised.exceptions[0]
        if first.__traceback__ is None:
            break
        raised = first
    tb = raised.__traceback__
    if tb is None:
        return None
    while tb.tb_next is not None:
        tb = tb.tb_next
    return tb.tb_frame.f_code.co_filename, tb.tb_lineno


def _shows_frames(config: pytest.Config) -> bool:
    """Whether a failure whose agent raised shows the agent's frames as pytest shows a
    test's (`--tb=long`, `--tb=native`, `-l`, `--full-trace`) rather than the last lines
    of its traceback in the hint (`--tb=auto`, `short`; `line` and `no` show neither)."""
    style = config.getoption("tbstyle", "auto")
    if style in ("line", "no"):
        return False
    return (
        style in ("long", "native")
        or bool(config.getoption("showlocals", False))
        or bool(config.getoption("fulltrace", False))
    )


_AGENT_TAIL = re.compile(
    r"(?m)^(?P<hint>\s*hint: .*?; the agent's traceback ends:)\n(?:\s{6,}.*\n?)+"
)


def _with_agent_frames(
    item: GoldenItem, agent: BaseException, ours: TerminalRepr
) -> TerminalRepr | str:
    """The agent's exception as pytest shows a test's under the run's `--tb` and `-l`
    (the user's frames only: `_traceback_filter`), secrets replaced, then the failure's
    own text, whose hint no longer repeats the traceback's last lines; the crash line
    (`--tb=line`, `-r`, JUnit's `message`) stays the failure's."""
    from _pytest._code.code import (
        ExceptionChainRepr,
        ReprEntryNative,
        ReprExceptionInfo,
        ReprTraceback,
    )

    assert isinstance(ours, ReprExceptionInfo)
    style = item.config.getoption("tbstyle", "auto")
    raised = ExceptionInfo.from_exception(agent)
    if style == "native" and not item.config.getoption("fulltrace", False):
        # Python's own format, from the agent's first frame (pytest filters only the others)
        raised.traceback = item._traceback_filter(raised)
    shown = _scrubbed_repr(item._repr_failure_py(raised, style=style), item)
    if isinstance(shown, ExceptionChainRepr):
        chain = list(shown.chain)
    elif isinstance(shown, ReprExceptionInfo):  # scrubbed: the text as one entry
        chain = [(shown.reprtraceback, shown.reprcrash, None)]
    else:  # pragma: no cover - getrepr gives one of the two
        return ours
    text = _AGENT_TAIL.sub(
        lambda m: (
            m["hint"].removesuffix(" ends:").replace("traceback", "traceback is above") + "\n"
        ),
        cast(ReprEntryNative, ours.reprtraceback.reprentries[0]).lines[0],
    )
    frames, _, descr = chain[-1]
    entries = [*frames.reprentries, ReprEntryNative([text])]
    chain[-1] = (ReprTraceback(entries, frames.extraline, frames.style), ours.reprcrash, descr)
    return ExceptionChainRepr(chain)


def _scrubbed_repr(shown: str | TerminalRepr, node: pytest.Item) -> str | TerminalRepr:
    """An exception raised by the user's code around the run (a judge whose provider
    refused the key it was given, a hook): pytest's traceback of it, as it is when it
    holds no secret, else as text with the secrets replaced (its crash line too, which
    `--tb=line`, the `-r` summary and JUnit's `message` show)."""
    from _pytest._code.code import (
        ReprEntryNative,
        ReprExceptionInfo,
        ReprFileLocation,
        ReprTraceback,
    )

    from opswald.plugin import settings_for

    redactor: Redactor = settings_for(node).redactor
    text = _rendered(shown)
    clean = redactor.text(text)
    if clean == text:
        return shown
    crash = getattr(shown, "reprcrash", None)
    if crash is None:
        return clean
    entry = ReprEntryNative([clean if clean.endswith("\n") else clean + "\n"])
    return ReprExceptionInfo(
        reprtraceback=ReprTraceback([entry], None, "native"),
        reprcrash=ReprFileLocation(crash.path, crash.lineno, redactor.text(crash.message)),
    )


def _rendered(shown: str | TerminalRepr) -> str:
    """What pytest prints of `shown`, plain (`str()` of a TerminalRepr strips the first
    line's indentation, a long traceback's source)."""
    if isinstance(shown, str):
        return shown
    import io

    from _pytest._io import TerminalWriter

    buffer = io.StringIO()
    writer = TerminalWriter(file=buffer)
    writer.hasmarkup = False
    shown.toterminal(writer)
    return buffer.getvalue().rstrip("\n")


def _line_of_step(path: Path, step: int | None) -> int:
    """The line of `- step: N` (YAML) or `"step": N` (JSON) in a golden, else 1."""
    if step is None:
        return 1
    pattern = re.compile(rf'^\s*(?:- )?"?step"?: {step}\b', re.MULTILINE)
    try:
        found = pattern.search(path.read_text(encoding="utf-8-sig"))
    except (OSError, UnicodeDecodeError):
        return 1
    return found.string.count("\n", 0, found.start()) + 1 if found else 1


_Node = TypeVar("_Node", bound="Node")


# the fixture infos (by id: each is kept by its items for the run) found to hold no
# parametrized fixture
_UNPARAMETRIZED = pytest.StashKey[set[int]]()

# per run, for the goldens of a folder with the same `fixtures:` (the folder's node id and
# the names): their stand-in function and what pytest worked out of it (a FuncFixtureInfo)
_SHARED = pytest.StashKey[dict[tuple[str, tuple[str, ...]], tuple[Callable[[], None], Any]]]()


def _stand_in(fixtures: Iterable[str]) -> Callable[[], None]:
    """The test function a golden item is to pytest's fixture system: it takes no
    arguments, and the golden's `fixtures:` are its `usefixtures` mark (one function for
    the goldens of a folder that name the same fixtures: `GoldenItem.__init__`)."""

    def golden() -> None:
        # no docstring: `pytest --co -v` shows a test's under its id, and this one would
        # be the same for every golden (GoldenItem.runtest replays it)
        return None

    names = tuple(fixtures)
    return pytest.mark.usefixtures(*names)(golden) if names else golden


def _not_found(exc: pytest.FixtureLookupError, item: GoldenItem) -> str:
    """pytest's "fixture 'x' not found" for a golden: the fixtures that asked for it, but
    not the stand-in function (opswald's code) as the test that did, which pytest shows
    first; a name the golden itself asks for (the ini option `usefixtures`) is said so."""
    shown = exc.formatrepr()
    asked = list(shown.tblines)
    if asked and asked[0].startswith(f"file {Path(__file__)}, "):
        asked = asked[2:]  # "file ..., line N" and the stand-in's `def` line
    head, *rest = (line.strip() for line in shown.errorstring.split("\n"))
    name = exc.argname
    if asked:
        where = f"{os.fspath(shown.filename)}:{shown.firstlineno + 1}"
        fix = f"fix: define {name} in a conftest.py above the golden, or correct the fixture "
        fix += "that asks for it"
    elif name in item.config.stash.get(INI_USEFIXTURES, ()):
        where = "the ini option `usefixtures` names it (it applies to every test, goldens too)"
        fix = f"fix: take {name} out of the ini option usefixtures, or define it in a conftest.py"
    else:
        where = f"asked for by {item.nodeid}"
        fix = f"fix: define {name} in a conftest.py above the golden"
    return "\n".join([head, *asked, *rest, where, fix])


class GoldenItem(pytest.Function):
    """Replays one golden through the agent.

    A pytest.Function whose function stands in for the golden, so that it takes part in
    pytest's fixture system as any test does: the autouse fixtures of the conftest.py
    files above it and of plugins, the `usefixtures` ini option, and the golden's own
    `fixtures:`, set up (in the test process, before a timeout's fork) in its setup."""

    def __init__(
        self,
        *,
        compact: bytes | None = None,
        variant: tuple[str, dict[str, Any]] | None = None,
        entry: Entry | None = None,
        **kwargs: Any,
    ) -> None:
        fixtures = entry.fixtures if entry else ()
        # What fixtures a golden gets depends on its folder (the conftests above it) and its
        # `fixtures:` alone: worked out once, with one stand-in function, for the goldens
        # that share both, as pytest does for the items of one parametrized test (per
        # golden, they cost a cold collection of 5k goldens a sixth more time)
        parent: pytest.Collector = kwargs["parent"]
        key = (parent.parent.nodeid if parent.parent else "", fixtures)
        shared = parent.config.stash.setdefault(_SHARED, {})
        if any(mark.name == "usefixtures" for mark in parent.own_markers):
            shared = {}  # a plugin marked this file: worked out for its goldens alone
        function, info = shared.get(key, (None, None))
        super().__init__(callobj=function or _stand_in(fixtures), fixtureinfo=info, **kwargs)
        shared.setdefault(key, (self.obj, self._fixtureinfo))
        # what collection read (files.load_compact), or None: taken from the collection
        # index (or --collect-only), the golden is read from its file when it runs
        self._compact = compact
        self._golden: Session | None = None
        self._entry = entry  # collectcache.Entry: the name and tags it was collected with
        self.variant = variant

    @property
    def golden(self) -> Session:
        """The golden, built on first use from what collection read, or from its file."""
        if self._golden is None:
            compact = self._compact
            self._golden = files.from_compact(compact) if compact else self._load()
        return self._golden

    def _load(self) -> Session:
        from opswald.collectcache import index_of
        from opswald.plugin import settings_of

        index = index_of(self.config)
        caps = settings_of(self.config).limits
        try:
            golden = files.load(self.path, max_bytes=caps.max_bytes, max_depth=caps.max_depth)
        except files.GoldenLoadError as exc:  # changed since collection
            index.forget(self.path)
            raise GoldenError(f"malformed golden: {exc}") from None
        if self._entry != _entry_of(golden, self.path):
            # renamed, retagged or given other fixtures in place: collect it afresh next run
            index.forget(self.path)
        return golden

    @property
    def function(self) -> Callable[..., Any]:
        """The stand-in function where pytest shows a test's function (the head of
        `--fixtures-per-test`): placed at the golden's file, not at opswald's code that the
        goldens share; made on first use."""
        shown = self.__dict__.get("_shown")
        if shown is None:
            base = self.obj
            code = base.__code__.replace(
                co_filename=os.fspath(self.path), co_firstlineno=_shown_first_line()
            )
            shown = types.FunctionType(code, base.__globals__, base.__name__)
            # its usefixtures mark, when it has one: a function's attribute dict is made on
            # first use (plugins such as anyio's ask every item for its function)
            if base.__dict__:
                shown.__dict__.update(base.__dict__)
            self.__dict__["_shown"] = shown
        return cast("Callable[..., Any]", shown)

    def getparent(self, cls: type[_Node]) -> _Node | None:
        # pytest finds the node of a module-scoped fixture (and `request.module`) as the
        # item's parent of type pytest.Module: for a golden, its golden file
        if cls is pytest.Module:
            return cast("_Node", self.parent)
        return super().getparent(cls)

    def setup(self) -> None:
        try:
            super().setup()
            return
        except pytest.FixtureLookupError as exc:
            text = _not_found(exc, self)
        # failed outside the except: the error shows this text, not pytest's chain
        pytest.fail(text, pytrace=False)

    def runtest(self) -> None:
        try:
            self._runtest()
        finally:
            # a long session keeps nothing of a golden it has run (read again if asked)
            self._golden = self._compact = None

    def _runtest(self) -> None:
        from opswald.goldenrun import HookListener, RunView, run_golden
        from opswald.plugin import OUTCOME_KEY, breakpoints_of, settings_for, suite_normalize_rules

        settings = settings_for(self)
        try:
            adapter = adapters.resolve(
                self.golden.agent,
                # the conftests of the golden's folder and above, not every conftest
                hook_result=self.ihook.pytest_opswald_adapter(
                    golden=self.golden, config=self.config
                ),
                ini_spec=settings.adapter,
                root=settings.adapter_root,
                golden_path=self.path,
            )
        except adapters.AdapterNotFound as exc:
            raise GoldenError(str(exc)) from None
        writing = settings.update or settings.mode in ("record", "rerecord")
        runs = 1 if writing else settings.repeat
        passed, failure, outcome = 0, None, None
        for _ in range(runs):
            listener = HookListener(
                self.ihook,
                RunView(golden=self.golden, nodeid=self.nodeid),
                breakpoints_of(self.config),
            )
            try:
                outcome = run_golden(
                    golden=self.golden,
                    path=self.path,
                    settings=settings,
                    adapter=adapter,
                    modify=dict(self.variant[1]) if self.variant else None,
                    variant=self.variant[0] if self.variant else None,
                    extra_normalize=suite_normalize_rules(self.config),
                    listener=listener,
                )
            except GoldenError as exc:
                failure = exc
                if exc.outcome is not None:
                    notes = (*exc.outcome.notes, *listener.notes)
                    self.stash[OUTCOME_KEY] = replace(exc.outcome, notes=notes)
                continue
            passed += 1
            self.stash[OUTCOME_KEY] = replace(outcome, notes=(*outcome.notes, *listener.notes))
        if runs == 1:
            if failure is not None:
                raise failure
            return
        self._judge_repeats(passed, runs, settings.min_pass_rate, failure, outcome)

    def _judge_repeats(
        self,
        passed: int,
        runs: int,
        min_rate: float,
        failure: GoldenError | None,
        outcome: Outcome | None,
    ) -> None:
        from opswald.plugin import OUTCOME_KEY

        rate = passed / runs
        line = (
            f"passed {passed} of {runs} runs ({rate:.0%}; --opswald-min-pass-rate {min_rate:.0%})"
        )
        if rate >= min_rate:
            if outcome is not None:
                note = f"{self.nodeid}: {line}"
                self.stash[OUTCOME_KEY] = replace(
                    outcome, status="passed", notes=(*outcome.notes, note)
                )
            return
        last = failure.text if failure is not None else ""
        raise GoldenError(
            f"{line}\nthe last failing run:\n{last}",
            failure.outcome if failure else None,
            stopped=failure.stopped if failure else None,
        )

    def repr_failure(
        self, excinfo: ExceptionInfo[BaseException], style: Any = None
    ) -> str | TerminalRepr:
        if isinstance(excinfo.value, GoldenError):
            tbstyle = self.config.getoption("tbstyle", "auto")
            agent = excinfo.value.agent_exception
            ours = _failure_repr(
                self.path, excinfo.value, line_only=tbstyle == "line", raised=agent
            )
            if agent is not None and _shows_frames(self.config):
                return _with_agent_frames(self, agent, ours)
            return ours
        # as a plain item's: pytest.Function's would show the stand-in function's frames
        shown = pytest.Item.repr_failure(self, excinfo, style=style or "short")
        return _scrubbed_repr(shown, self)

    def _traceback_filter(self, excinfo: ExceptionInfo[BaseException]) -> Any:
        """The frames of the user's code (a conftest hook, an adapter) without pytest's,
        pluggy's and opswald's own around them."""
        ours = (Path(pytest.__file__).parent.parent, Path(__file__).parent)

        def theirs(entry: Any) -> bool:
            path = Path(str(entry.path))
            return not any(base in path.parents for base in ours) and "pluggy" not in path.parts

        kept = excinfo.traceback.filter(theirs)
        if not kept:
            return excinfo.traceback
        if self.config.getoption("tbstyle", "auto") == "auto" and len(kept) > 2:
            # as pytest shows a test's: the first and last frames in full, one line each
            # for those between
            last = len(kept) - 1
            styled = (
                e if i in (0, last) else e.with_repr_style("short") for i, e in enumerate(kept)
            )
            return type(kept)(styled)
        return kept

    def reportinfo(self) -> tuple[Path, int | None, str]:
        return self.path, 0, f"golden: {self.name}"
