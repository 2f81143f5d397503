"""Finding and calling the user's agent (DESIGN §2 "Adapter")."""

from __future__ import annotations

import difflib
import functools
import importlib
import inspect
import pkgutil
import re
import sys
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, Protocol, TypeVar, overload

ENTRY_POINT_GROUP = "opswald.adapters"


class Adapter(Protocol):
    """Runs the agent on a golden's input and returns the session's output."""

    def __call__(self, input: Any, /) -> Any: ...


class AdapterNotFound(Exception):
    """No adapter could be resolved; the message lists what was tried."""


class AdapterWarning(UserWarning):
    """A golden's `agent:` names no adapter while others are registered: the adapter of the
    ini option ran it instead (a typo in `agent:` would otherwise go unnoticed)."""


class AdapterMismatch(AdapterNotFound):
    """The adapter cannot be called the way opswald calls one (`adapter(input)`, with
    `modifications=` when it declares that parameter). Found from its signature before it
    is called: a misconfiguration, never the agent's own error, so never recorded."""


class AdapterNotStarted(AdapterMismatch):
    """A `subprocess:` adapter's command cannot be started: empty, quoted so that it cannot
    be split into words, a program not found or not executable, a #! line naming a missing
    interpreter. The agent never ran, so this is a misconfiguration as an adapter that
    cannot be imported is, never the agent's error: never recorded, never written by an
    update. A command that cannot be split is refused when the adapter is made; the
    program is looked for when the agent is started (a fixture may put it on PATH after
    the adapter was resolved), and what Popen still refuses is raised then too."""


@dataclass
class _Registry:
    adapters: dict[str, Callable[..., Any]] = field(default_factory=dict)


_REGISTRY = _Registry()  # filled by @opswald.adapter at import time of the user's modules

F = TypeVar("F", bound=Callable[..., Any])


@overload
def adapter(fn: F, /) -> F: ...
@overload
def adapter(name: str, /) -> Callable[[F], F]: ...
def adapter(fn_or_name: F | str, /) -> F | Callable[[F], F]:
    """Register an adapter under a name (a golden's `agent:` picks it)."""
    if isinstance(fn_or_name, str):
        name = fn_or_name

        def register(fn: F) -> F:
            _REGISTRY.adapters[name] = fn
            return fn

        return register
    _REGISTRY.adapters[fn_or_name.__name__] = fn_or_name
    return fn_or_name


def registered() -> dict[str, Callable[..., Any]]:
    return dict(_REGISTRY.adapters)


def restore(adapters: dict[str, Callable[..., Any]]) -> None:
    """Put back the registry `registered()` returned: a pytest run run in-process (pytester)
    drops the modules it imported, and their adapters with them."""
    _REGISTRY.adapters = dict(adapters)


def registered_names() -> list[str]:
    """The names a golden's `agent:` can pick: registered ones and entry points."""
    return sorted({*_REGISTRY.adapters, *_entry_points(tuple(sys.path))})


def unregistered_agent(agent: str | None, used: str, golden: str = "") -> str | None:
    """What to say when the golden's `agent:` names no adapter while others are registered,
    and `used` (the ini option's adapter, named) ran it instead; None when it names one, or
    when none is registered: `agent:` is then a label (importers fill it from the trace)."""
    if not agent:
        return None
    names = registered_names()
    if not names or agent in names:
        return None
    close = difflib.get_close_matches(agent, names, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    shown = ", ".join(names[:10]) + (", ..." if len(names) > 10 else "")
    head = f"{golden}: " if golden else ""
    return (
        f"{head}agent {agent!r} is no registered adapter (registered: {shown}{hint}): "
        f"{used} ran it instead\n"
        f"fix: correct the golden's `agent:`, or register an adapter as {agent!r}; to run "
        "the ini adapter on purpose, leave `agent:` out of the golden"
    )


def warn_unregistered_agent(agent: str | None, used: str, golden_path: Path | None) -> None:
    """Warn, at the golden's `agent:` line, of `unregistered_agent`; with warnings made
    errors, raise AdapterNotFound with its text (the golden fails naming it)."""
    text = unregistered_agent(agent, used, golden_path.name if golden_path else "")
    if text is None:
        return
    where = "<golden>"
    if golden_path is not None:  # shown as pytest shows test files: from where it was run
        here = Path.cwd()
        where = str(
            golden_path.relative_to(here) if golden_path.is_relative_to(here) else golden_path
        )
    try:
        warnings.warn_explicit(
            AdapterWarning(text), AdapterWarning, where, _agent_line(golden_path)
        )
    except AdapterWarning as exc:  # -W error / filterwarnings = error
        raise AdapterNotFound(str(exc)) from None


_AGENT_KEY = re.compile(r'(agent|\s{0,2}"agent")\s*:')  # a YAML golden's or a JSON dump's


def _agent_line(path: Path | None) -> int:
    """The line of the golden's top-level `agent:` key (1 when it is not found)."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace") if path is not None else ""
    except OSError:
        return 1
    for number, line in enumerate(text.splitlines(), 1):
        if _AGENT_KEY.match(line):
            return number
    return 1


def import_string(
    spec: str, *, root: Path | None = None, setting: str | None = None, what: str = "adapter"
) -> Callable[..., Any]:
    """`package.module:callable` (or `package.module.callable`) -> the callable;
    `subprocess:COMMAND` -> an adapter running COMMAND (see `SubprocessAdapter`).

    `root` (the folder of the pytest config that names the adapter): when the module is
    not importable as things stand, it is looked for there too, so `agent:run` finds
    `agent.py` beside `pytest.ini` whether or not a conftest.py put that folder on
    sys.path. `setting` (`opswald_adapter`) is the name messages give the spec; without
    it, the caller says where the spec came from. `what` (adapter, embedder, judge): what
    the callable is for, as a message that cannot import it says."""
    if spec.startswith("subprocess:"):
        subject = f"{setting} = {spec!r}" if setting else repr(spec)
        try:
            return SubprocessAdapter(spec.removeprefix("subprocess:").strip(), source=subject)
        except AdapterNotStarted as exc:
            raise AdapterNotStarted(f"{subject}: {exc}") from None
    module_name, sep, attr = spec.partition(":")
    whole = module_name if sep else spec  # what may name a module rather than a callable
    file_fix = _file_fix(whole, attr if sep else "", root)
    if file_fix is not None:  # importlib would say `No module named 'agent/main'`, or worse
        raise AdapterNotFound(
            f"cannot import {whole!r} for {what} {spec!r}: it is a file path, not a module's "
            f"dotted name\n{file_fix}"
        )
    if not sep:
        module_name, _, attr = spec.rpartition(".")
    if not module_name or not attr:
        _refuse_module(spec, whole, root, setting)
        raise AdapterNotFound(f"{spec!r} is not of the form 'package.module:callable'")
    try:
        obj: Any = _import(module_name, root)
    except ImportError as exc:
        text = f"cannot import {module_name!r} for {what} {spec!r}: {exc}"
        fix = _import_fix(spec, module_name, exc, root)
        raise AdapterNotFound(f"{text}\n{fix}" if fix else text) from exc
    found: list[str] = []
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            if not sep:  # `package.module` split as module `package`, attribute `module`
                _refuse_module(spec, whole, root, setting)
            raise AdapterNotFound(
                _no_attribute(spec, module_name, found, part, parent=obj, setting=setting)
            ) from None
        found.append(part)
    if inspect.ismodule(obj):
        raise AdapterNotFound(_names_a_module(spec, obj, setting))
    if not callable(obj):
        raise AdapterNotFound(f"{spec!r} is not callable")
    return obj  # type: ignore[no-any-return]


def _file_fix(name: str, attr: str, root: Path | None) -> str | None:
    """The fix for a spec naming a module by its file (`my_agent/main.py`): its dotted name
    (`my_agent.main`), or None when `name` is no path."""
    if "/" not in name and "\\" not in name:
        # `agent.py` may yet be a module `py` of a package `agent`: a file only if it is one
        homes = [folder for folder in (root, Path.cwd()) if folder is not None]
        if not name.endswith(".py") or not any((home / name).is_file() for home in homes):
            return None
    path = PurePosixPath(name.replace("\\", "/"))
    if path.suffix and path.suffix != ".py" and not attr:  # `my_agent/main.run`
        attr, path = path.suffix[1:], path.with_suffix("")
    if path.suffix == ".py":
        path = path.with_suffix("")
    if path.is_absolute() and root is not None and path.is_relative_to(root.as_posix()):
        path = path.relative_to(root.as_posix())
    parts = [part for part in path.parts if part not in ("", ".")]
    target = f":{attr}" if attr else ":callable"
    if path.is_absolute() or ".." in parts or not parts:
        return (
            f"fix: name the module, not its file: add its folder to `pythonpath` in the "
            f"pytest config and name it '{path.name}{target}'"
        )
    if parts[0] == "src" and len(parts) > 1:  # a src layout: its packages start below src
        return (
            f"fix: name the module, not its file: add `pythonpath = src` to the pytest "
            f"config and name it '{'.'.join(parts[1:])}{target}'"
        )
    return f"fix: name the module, not its file: '{'.'.join(parts)}{target}'"


def _import_fix(spec: str, module_name: str, exc: ImportError, root: Path | None) -> str | None:
    """The fix line for a module that does not import: a close name among the modules that
    are there, the folder to add to `pythonpath`, or the missing module it imports."""
    missing = exc.name if isinstance(exc, ModuleNotFoundError) else None
    if not missing:
        return None  # the module's own error (a syntax error, a failed import inside it)
    if missing != module_name and not module_name.startswith(missing + "."):
        return (
            f"fix: {module_name} imports {missing}, which is not found: install it, or add "
            "the folder that holds it to `pythonpath` in the pytest config"
        )
    parent, _, leaf = missing.rpartition(".")
    rest = spec[len(missing) :]  # what the spec names below the missing module
    if parent:  # the package imported: one of its modules is misspelt
        names = sorted(m.name for m in pkgutil.iter_modules(_path_of(sys.modules.get(parent))))
        close = difflib.get_close_matches(leaf, names, n=1)
        if close:
            return f"fix: did you mean '{parent}.{close[0]}{rest}'?"
        if names:
            return f"fix: name one of the modules of {parent}: {', '.join(names[:8])}"
        return None
    home = root if root is not None else Path.cwd()
    holder = _folder_holding(missing, home)
    if holder is not None:
        return f"fix: {missing} is in {holder}: add `pythonpath = {holder}` to the pytest config"
    close = difflib.get_close_matches(missing, _module_names(home), n=1)
    if close:
        return f"fix: did you mean '{close[0]}{rest}'?"
    return (
        f"fix: add the folder that holds {missing} to `pythonpath` in the pytest config "
        "(modules beside it are found), or install the package that provides it"
    )


def _module_names(folder: Path) -> list[str]:
    """The modules and packages in `folder` (not below it)."""
    return sorted(m.name for m in pkgutil.iter_modules([str(folder)]))


def _folder_holding(name: str, home: Path) -> str | None:
    """The subfolder of `home` (one level down: `src`, `lib`, ...) holding module `name`."""
    try:
        folders = sorted(p for p in home.iterdir() if p.is_dir() and not p.name.startswith("."))
    except OSError:
        return None
    for folder in folders[:200]:
        if (folder / name / "__init__.py").is_file() or (folder / f"{name}.py").is_file():
            return folder.name
    return None


def _refuse_module(spec: str, name: str, root: Path | None, setting: str | None) -> None:
    """Raise AdapterNotFound saying `spec` names a module, when `name` imports as one."""
    if not name:
        return
    try:
        module = _import(name, root)
    except ImportError:
        return
    raise AdapterNotFound(_names_a_module(spec, module, setting))


def _no_attribute(
    spec: str, module_name: str, found: list[str], part: str, *, parent: Any, setting: str | None
) -> str:
    """`'agent' has no attribute 'nosuch'`, with what `parent` (the module, or the class or
    object named up to `part`) defines and a fix naming one of them."""
    where = f"{module_name}:{'.'.join(found)}" if found else module_name
    text = f"{where!r} has no attribute {part!r}"
    if setting:
        text = f"{setting} = {spec!r}: {text}"
    defined = _defined(parent)
    prefix = f"{where}." if found else f"{module_name}:"
    modules = [] if found else sorted(m.name for m in pkgutil.iter_modules(_path_of(parent)))
    if not defined and modules:  # a package whose modules are not imported by it
        more = ", ..." if len(modules) > 5 else ""
        return (
            f"{text}; {where} is a package, with the modules {', '.join(modules[:5])}{more}\n"
            f"fix: name a callable in one of them ('{module_name}.{modules[0]}:callable')"
        )
    if not defined:
        what = "function or class" if inspect.ismodule(parent) else "method"
        return (
            f"{text}; {where} defines no public {what}\n"
            f"fix: define {part} there, or name a callable that exists ('{prefix}callable')"
        )
    more = ", ..." if len(defined) > 5 else ""
    text = f"{text}; {where} defines {', '.join(defined[:5])}{more}"
    # the example takes the input where one does: not a class (its instance would be the
    # output), not an instance method named through its class
    takes = [n for n in defined if _takes_input(getattr(parent, n, None))] or defined
    if inspect.isclass(parent) and takes is defined:  # its methods want an instance
        return f"{text}\n{_mismatch_fix(getattr(parent, defined[0], None))}"
    example = "run" if "run" in takes else takes[0]
    return f"{text}\nfix: name one of them, for example '{prefix}{example}'"


def _path_of(module: Any) -> list[str]:
    """A package's folders (`__path__`), or [] for a plain module."""
    path = getattr(module, "__path__", None) if inspect.ismodule(module) else None
    return [str(p) for p in path] if path is not None else []


def _recorded_call(fn: Any) -> bool:
    """Whether `fn` is an `@opswald.tool` or `@opswald.llm` function: a step of the
    agent, never the agent itself."""
    from opswald import instrument

    code = getattr(fn, "__code__", None)
    return code is not None and code.co_filename == instrument.__file__


def _takes_input(fn: Any) -> bool:
    return callable(fn) and not inspect.isclass(fn) and mismatch(fn) is None


def _defined(obj: Any) -> list[str]:
    """The public callables `obj` defines: a module's own functions and classes (not what
    it imports), a class's or an object's methods."""
    if inspect.ismodule(obj):
        return [
            key
            for key, value in vars(obj).items()
            if not key.startswith("_")
            and (inspect.isfunction(value) or inspect.isclass(value))
            and getattr(value, "__module__", None) == obj.__name__
            and not _recorded_call(value)
        ]
    methods = (staticmethod, classmethod)
    return [
        key
        for key in dir(obj)
        if not key.startswith("_")
        and (
            callable(value := inspect.getattr_static(obj, key, None)) or isinstance(value, methods)
        )
    ]


def _names_a_module(spec: str, module: Any, setting: str | None) -> str:
    subject = f"{setting} = {spec!r}" if setting else repr(spec)
    name = module.__name__
    defined = _defined(module)
    text = f"{subject} names a module, not a callable: it wants 'package.module:callable'"
    if not defined:
        return text
    takes = [n for n in defined if _takes_input(getattr(module, n, None))] or defined
    example = "run" if "run" in takes else takes[0]
    more = ", ..." if len(defined) > 5 else ""
    return (
        f"{text}; {name} defines {', '.join(defined[:5])}{more}\n"
        f"fix: name one of them, for example '{name}:{example}'"
    )


def _import(module_name: str, root: Path | None) -> Any:
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        top = module_name.partition(".")[0]
        if root is None or exc.name != top or str(root) in sys.path:
            raise
        if not ((root / top).is_dir() or (root / f"{top}.py").is_file()):
            raise
        sys.path.insert(0, str(root))  # as pytest's rootdir conftest.py would have
        return importlib.import_module(module_name)


def from_entry_points(name: str) -> Callable[..., Any] | None:
    ep = _entry_points(tuple(sys.path)).get(name)
    if ep is None:
        return None
    loaded = ep.load()
    return loaded if callable(loaded) else None


@functools.lru_cache(maxsize=8)
def _entry_points(path: tuple[str, ...]) -> dict[str, Any]:
    """The `opswald.adapters` entry points by name, for one `sys.path`. Looking them up reads
    the metadata of every installed distribution (milliseconds), and a run asks once per
    golden whose `agent:` names no registered adapter."""
    from importlib.metadata import entry_points

    return {ep.name: ep for ep in reversed(list(entry_points(group=ENTRY_POINT_GROUP)))}


def resolve(
    agent: str | None,
    *,
    hook_result: Callable[..., Any] | None,
    ini_spec: str | None,
    root: Path | None = None,
    setting: str = "opswald_adapter",
    golden_path: Path | None = None,
) -> Callable[..., Any]:
    """Hook result, then the golden's `agent:` name, then the ini option (a module named
    there is also looked for in `root`, the config file's folder; `setting` is the name
    messages give it; an `agent:` naming no adapter while others are registered is warned
    of, at `golden_path`). An adapter that cannot take the golden's input raises
    `AdapterMismatch`."""
    tried = ["- the conftest hook pytest_opswald_adapter(golden, config): returned None"]
    if hook_result is not None:
        return check(hook_result, "the adapter from pytest_opswald_adapter")
    if agent:
        fn = _REGISTRY.adapters.get(agent)
        if fn is not None:
            return check(fn, f"the adapter registered as {agent!r}")
        fn = from_entry_points(agent)
        if fn is not None:
            return check(fn, f"the adapter {agent!r} of the entry-point group {ENTRY_POINT_GROUP}")
        known = ", ".join(sorted(_REGISTRY.adapters)) or "none"
        tried.append(
            f"- the golden's agent {agent!r}: not registered with @opswald.adapter "
            f"(registered: {known}) nor in the entry-point group {ENTRY_POINT_GROUP!r}"
        )
    else:
        tried.append("- the golden's `agent:` name: the golden has none")
    if ini_spec:
        fn = check(import_string(ini_spec, root=root, setting=setting), f"{setting} = {ini_spec!r}")
        # after the import: an adapter registered in the module it names counts too
        warn_unregistered_agent(agent, f"{setting} = {ini_spec!r}", golden_path)
        return fn
    tried.append("- the ini option opswald_adapter: not set")
    raise AdapterNotFound(
        "no adapter to run this golden's agent; tried:\n"
        + "\n".join(tried)
        + '\nfix: set `opswald_adapter = "package.module:callable"` in your pytest config, '
        'or register one with @opswald.adapter("name") and set `agent: name` in the golden'
    )


def _wants_modifications(fn: Callable[..., Any]) -> bool:
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False
    return "modifications" in params or any(
        p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()
    )


def name_of(fn: Any) -> str:
    """`module:qualname` of a function, method or class; else its type's, as an instance."""
    target = fn if hasattr(fn, "__qualname__") else type(fn)
    module = getattr(target, "__module__", None)
    qualname = getattr(target, "__qualname__", repr(fn))
    name = f"{module}:{qualname}" if module else qualname
    return name if target is fn else f"an instance of {name}"


def mismatch(fn: Callable[..., Any], what: str | None = None) -> str | None:
    """Why `fn` cannot be called as opswald calls an adapter, or None: its signature is
    bound to the arguments opswald passes, before anything is called. A signature that
    cannot be read, or that of a wrapper taking `*args, **kwargs`, is not judged: the call
    itself then decides, and what it raises is the agent's."""
    try:
        # a wrapper's own signature: functools.wraps would show the wrapped function's,
        # which a decorator that supplies arguments does not share
        signature = inspect.signature(fn, follow_wrapped=False)
    except (TypeError, ValueError):
        return None
    wants = _wants_modifications(fn)
    try:
        signature.bind(None, **({"modifications": {}} if wants else {}))
    except TypeError as exc:
        reason = str(exc)
    else:
        return None
    form = "adapter(input, modifications=...)" if wants else "adapter(input)"
    name = name_of(fn)
    text = (
        f"{what or 'the adapter ' + name} cannot take the golden's input: opswald calls it as "
        f"{form}, and {name} is {signature}: {reason}"
    )
    return f"{text}\n{_mismatch_fix(fn)}"


def _mismatch_fix(fn: Any) -> str:
    qualname = getattr(fn, "__qualname__", "")
    module = getattr(fn, "__module__", "module")
    if inspect.isclass(fn):
        fix = (
            f"fix: a class is called as {qualname}(input), its instance being the output; "
            "name a function that runs the agent and returns its result"
        )
        if any("__call__" in vars(base) for base in fn.__mro__[:-1]):  # not object's
            fix += (
                f"; to call its instances, name one (`runner = {qualname}()` in module "
                f"{module}, then {module}:runner)"
            )
        return fix
    params = list(inspect.signature(fn, follow_wrapped=False).parameters)
    owner, dot, method = qualname.rpartition(".")
    if inspect.isfunction(fn) and dot and "<locals>" not in method and params[:1] == ["self"]:
        return (
            f"fix: {qualname} is an instance method named through its class: name it on an "
            f"instance (`runner = {owner}()` in module {module}, then {module}:runner.{method}),"
            " or make it a @staticmethod or a function"
        )
    return (
        "fix: an adapter takes the golden's input as its one positional argument (and "
        "`modifications` as a keyword argument, when it declares one)"
    )


def check(fn: Callable[..., Any], what: str | None = None) -> Callable[..., Any]:
    """`fn`, when it can take the golden's input; else raise `AdapterMismatch` saying why
    (`what` names where it came from: the ini option, the hook, a registered name). A
    `SubprocessAdapter`'s program is not looked for here but when the agent is started:
    a fixture may put it on PATH after the adapter was resolved."""
    if isinstance(fn, SubprocessAdapter) and what:
        fn.source = what  # where it came from, for a failure to start it (`check_startable`)
    problem = mismatch(fn, what)
    if problem is not None:
        raise AdapterMismatch(problem)
    return fn


def call(fn: Callable[..., Any], input: Any, modifications: dict[str, Any]) -> Any:
    """Call an adapter (sync or async), passing modifications if it declares them. A
    generator or async generator adapter (a streaming agent) is run to its end, and the
    list of what it yielded is its output. An adapter that cannot take these arguments
    raises `AdapterMismatch` and is not called."""
    problem, wants = _shape_of(fn)
    if problem is not None:
        check(fn)
    kwargs: dict[str, Any] = {}
    if wants:
        kwargs["modifications"] = dict(modifications)
    result = fn(input, **kwargs)
    if inspect.isawaitable(result) or inspect.isasyncgen(result):
        import asyncio

        return asyncio.run(_await(result))
    if inspect.isgenerator(result):  # a streaming agent: its output is what it yielded
        return list(result)
    return result


@functools.lru_cache(maxsize=256)
def _shape(fn: Callable[..., Any]) -> tuple[str | None, bool]:
    return mismatch(fn), _wants_modifications(fn)


def takes_modifications(fn: Callable[..., Any]) -> bool:
    """Whether opswald passes the adapter `modifications` (it declares them, or **kwargs)."""
    return _shape_of(fn)[1]


def _shape_of(fn: Callable[..., Any]) -> tuple[str | None, bool]:
    """Why `fn` cannot be called as an adapter (or None), and whether it takes
    `modifications`: read from its signature once per adapter, not once per golden."""
    try:
        return _shape(fn)
    except TypeError:  # a callable that cannot be hashed
        return mismatch(fn), _wants_modifications(fn)


async def _await(awaitable: Any) -> Any:
    if inspect.isasyncgen(awaitable):
        return [item async for item in awaitable]
    return await awaitable


class SubprocessAgentError(Exception):
    """The agent's process failed; the message ends with its stderr."""

    def __init__(self, message: str, *, stderr: str = "") -> None:
        super().__init__(message)
        # what the process wrote on stderr (its own traceback, for a Python agent): what a
        # failure shows as the agent's traceback, rather than opswald's frames that ran it.
        # Private: a golden records an error's public attributes, and the message has it
        self._stderr = stderr

    @property
    def stderr(self) -> str:
        return self._stderr


class SubprocessAdapter:
    """Runs an agent written in any language as a command.

    The golden's input goes to its stdin as JSON; its stdout (JSON, or else text) is the
    output. `OPENAI_BASE_URL` and `ANTHROPIC_BASE_URL` point at a replay server on
    127.0.0.1 that answers from the golden (or forwards to the real provider and records,
    when recording); in replay, proxy variables point at a loopback proxy that refuses
    everything, so a replayed agent cannot reach the network through a well-behaved HTTP
    client (recording and live runs may reach it).
    Tool calls inside the process are not visible: only LLM calls are matched.
    """

    def __init__(
        self,
        command: str | list[str],
        *,
        cwd: str | None = None,
        env: dict[str, str] | None = None,
        timeout: float | None = None,
        source: str | None = None,
    ) -> None:
        import shlex

        if isinstance(command, str):
            try:
                self.command = shlex.split(command)
            except ValueError as exc:  # an unclosed quote, a trailing backslash
                raise AdapterNotStarted(
                    f"cannot split the command {command} into words: {exc}\n"
                    "fix: close the quote (or end the command without a backslash); to pass a "
                    "quote as it is, escape it (\\\" or \\')"
                ) from None
        else:
            self.command = list(command)
        if not self.command:
            # Popen would fail with an IndexError inside it, blamed on the agent
            raise AdapterNotStarted(
                "the command is empty\nfix: name the program after subprocess: and its "
                "arguments, for example 'subprocess:python agent.py'"
            )
        if timeout is not None and not timeout > 0:  # also NaN
            raise ValueError(f"timeout= must be a positive number of seconds, not {timeout!r}")
        self.cwd = cwd
        self.env = dict(env or {})
        self.timeout = timeout
        # where it came from (`opswald_adapter = 'subprocess:...'`), for messages
        self.source = source

    def __repr__(self) -> str:
        return f"SubprocessAdapter({self.command!r})"

    def _shown(self) -> str:
        import shlex

        return shlex.join(self.command)

    def check_startable(self) -> None:
        """Raise `AdapterNotStarted` when the program cannot be started, as far as can be
        told before starting it (as Popen looks for it: a name on the PATH of the
        environment it gets, a path relative to its `cwd`)."""
        problem = self._unstartable()
        if problem is not None:
            subject = self.source or repr(self)
            raise AdapterNotStarted(f"{subject}: cannot start the command {problem}")

    def _unstartable(self) -> str | None:
        import os
        import shutil

        program = self.command[0]
        folder = Path(self.cwd) if self.cwd is not None else Path.cwd()
        shown = self._shown()
        if self.cwd is not None and not folder.is_dir():
            return (
                f"{shown}: its folder (cwd) {self.cwd} is not a folder\n"
                "fix: give the adapter a folder that exists as its cwd"
            )
        if os.sep in program or (os.altsep and os.altsep in program):
            path = folder / program
            if not path.exists():
                where = "" if Path(program).is_absolute() else f" in {folder}"
                return (
                    f"{shown}: {program!r} does not exist{where}\n"
                    "fix: correct the path (one that is not absolute is relative to the folder "
                    "pytest runs in)"
                )
            if path.is_dir():
                return (
                    f"{shown}: {program!r} is a folder, not a program\n"
                    "fix: correct the path to name the program in it"
                )
            if not os.access(path, os.X_OK):
                return f"{shown}: {program!r} is not executable\nfix: {self._run_it(program)}"
            return None
        search = self.env.get("PATH", os.environ.get("PATH", os.defpath))
        if shutil.which(program, path=search) is not None:
            return None
        text = f"{shown}: {program!r} is not found on PATH"
        if (folder / program).is_file():
            interpreter = _INTERPRETERS.get(Path(program).suffix)
            by = f" or by its interpreter ({interpreter} {program})" if interpreter else ""
            return (
                f"{text}\nfix: a program is looked for on PATH only; a file here is run by its "
                f"path (./{program}){by}"
            )
        return (
            f"{text}\nfix: correct the program's name in the command, or give its path; it "
            "is run as is, without a shell"
        )

    def _run_it(self, program: str) -> str:
        interpreter = _INTERPRETERS.get(Path(program).suffix)
        by = f", or run it by its interpreter ({interpreter} {program})" if interpreter else ""
        return f"make it executable (chmod +x {program}){by}"

    def _not_started(self, exc: OSError) -> AdapterNotStarted:
        """What Popen raised starting the command, as the misconfiguration it is."""
        import errno

        program = self.command[0]
        folder = Path(self.cwd) if self.cwd is not None else Path.cwd()
        path = folder / program
        shown = self._shown()
        interpreter = _shebang(path) if path.is_file() else None
        if exc.errno == errno.ENOENT and interpreter is not None:
            # the file is there: it is what its #! line names that is not
            text = (
                f"{shown}: the interpreter its #! line names ({interpreter}) is not found\n"
                f"fix: correct the #! line of {program}, or run it by an interpreter that "
                f"exists (subprocess:INTERPRETER {program})"
            )
        elif exc.errno == errno.ENOEXEC:
            text = (
                f"{shown}: {program!r} is not a program this system can run (no #! line?)\n"
                f"fix: begin it with a #! line naming its interpreter, or run it by one"
            )
        else:
            problem = self._unstartable()
            text = problem or (
                f"{shown}: {exc.strerror or exc}\nfix: correct the command; it is run as "
                "is, without a shell"
            )
        return AdapterNotStarted(f"{self.source or repr(self)}: cannot start the command {text}")

    def __call__(self, input: Any) -> Any:
        import os
        from contextlib import nullcontext

        from opswald.engine.current import current
        from opswald.offline import guard_active, proxy_env, refusing_proxy
        from opswald.serve import ReplayServer

        # looked for now, on the PATH of now, before the replay server starts: a program
        # that cannot be started is refused as the misconfiguration it is (never recorded)
        self.check_startable()
        ctx = current()
        if ctx is None:
            return self._run(input, {**os.environ, **self.env})
        if ctx.tape is not None:
            ctx.tape.hide_tools()
        upstreams = {
            "openai": os.environ.get("OPENAI_BASE_URL", "https://api.openai.com/v1"),
            "anthropic": os.environ.get("ANTHROPIC_BASE_URL", "https://api.anthropic.com"),
        }
        # the network is blocked only where an in-process agent's would be (a replay, not
        # a recording, a live run or a fork): then a proxy refusing everything holds back
        # the agent's own requests
        refusing = refusing_proxy() if guard_active() else nullcontext(None)
        with ReplayServer(ctx, upstreams=upstreams) as server, refusing as proxy:
            env = {
                **os.environ,
                **self.env,
                "OPENAI_BASE_URL": server.url + "/v1",
                "ANTHROPIC_BASE_URL": server.url,
            }
            if proxy is not None:
                env.update(proxy_env(proxy))
            else:  # the agent's own proxy settings stand, but never for the replay server
                given = env.get("NO_PROXY") or env.get("no_proxy")
                local = "127.0.0.1,localhost,::1"
                env["NO_PROXY"] = env["no_proxy"] = f"{given},{local}" if given else local
            try:
                return self._run(input, env)
            except SubprocessAgentError:
                if server.divergences:
                    return None  # the divergence is already recorded; it is the headline
                raise

    def _wait(self) -> float | None:
        """communicate()'s timeout: none for one longer than its poll() can wait (2**31-1
        ms, about 24.8 days), which would raise OverflowError rather than wait."""
        if self.timeout is None or self.timeout > _LONGEST_WAIT:
            return None
        return self.timeout

    def _run(self, input: Any, env: dict[str, str]) -> Any:
        import json
        import subprocess

        try:
            process = subprocess.Popen(
                self.command,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                env=env,
                cwd=self.cwd,
            )
        except OSError as exc:  # it never ran: not the agent's error (AdapterNotStarted)
            raise self._not_started(exc) from None
        with process:  # as subprocess.run: a timeout or an interruption kills the process
            try:
                stdout, stderr = process.communicate(json.dumps(input), timeout=self._wait())
            except BaseException:
                process.kill()
                raise
        if process.returncode != 0:
            tail = "\n".join(stderr.strip().splitlines()[-15:])
            raise SubprocessAgentError(
                f"{' '.join(self.command)} exited with {process.returncode}:\n{tail}",
                stderr=stderr.strip(),
            )
        out = stdout.strip()
        try:
            return json.loads(out)
        except ValueError:
            return out


_LONGEST_WAIT = (2**31 - 1) / 1000  # seconds: poll()'s longest timeout, in milliseconds

# the interpreter a script is usually run by, for the fix line of one that cannot be started
_INTERPRETERS = {".py": "python", ".js": "node", ".mjs": "node", ".sh": "sh", ".rb": "ruby"}


def _shebang(path: Path) -> str | None:
    """The interpreter a script's #! line names, or None."""
    try:
        with path.open("rb") as file:
            first = file.readline(256)
    except OSError:
        return None
    if not first.startswith(b"#!"):
        return None
    words = first[2:].decode(errors="replace").split()
    return words[0] if words else None
