"""Run one agent session in a forked child process, under a timeout that really stops it.

Why a process
-------------
Python cannot stop a thread from outside: a thread spinning in ``while True: pass``, blocked
in ``time.sleep(3600)`` or ``socket.recv``, awaiting a future that never resolves, or stuck in
a C call that never checks for signals runs until the interpreter exits. A process, though,
can always be killed. So `run_isolated` runs the session in a child process and, when the
time is up, kills it (DESIGN §6: "a hung agent is stopped by --opswald-timeout — really
stopped, no thread of it left running — and the run continues").

How
---
1. The parent flushes ``sys.stdout``/``sys.stderr`` (so nothing buffered is written twice),
   makes two pipes and calls ``os.fork()`` — the ``fork`` start method. The child inherits
   everything already loaded: the imported agent, the conftest hooks, the parsed golden, the
   settings, closures. Nothing is pickled on the way in; ``fn`` may be a lambda.
2. The child moves into a process group of its own, asks the kernel (Linux) to kill it if
   the parent dies, resets SIGTERM to its default action, has `faulthandler` dump the stacks
   of all its threads into the second pipe when SIGTERM arrives, and calls ``fn(report)``.
3. The child talks through the first pipe in length-prefixed frames: `Progress` whenever
   ``report`` is called, output written to a ``sys.stdout``/``sys.stderr`` that has no file
   descriptor (pytest's ``capsys`` or ``--capture=sys``; streams backed by a descriptor —
   ``--capture=fd``, ``capfd``, ``-s`` — are simply shared and made line-buffered), and last
   the pickled return value, or the pickled exception with its frames and its cause (which
   pickling drops; the parent rebuilds a traceback through frames named and numbered like
   the child's, so that pytest shows the exception as raised in-process), or a message
   saying why neither could be sent. Then it leaves with ``os._exit``: no atexit handlers,
   no finalizers, no second flush of pytest's capture buffers.
4. The parent reads the pipe *while* it waits (a result of many megabytes never blocks the
   child on a full pipe), keeps the latest progress, and watches the child through a pidfd
   (Linux; a short poll elsewhere).
5. When the deadline passes, the parent sends SIGTERM to the child's process group, waits a
   short grace (`faulthandler` writes the stacks; a child with SIG_DFL dies at once, even in
   a C loop), then sends SIGKILL to the group, reaps the child and raises `Timeout` carrying
   the seconds, the last progress, the child's pid and the stacks. After a result, too, the
   group is killed (processes the session left behind) and the child reaped, so when
   `run_isolated` returns or raises nothing of the session is left running. The parent never
   starts a thread. An exception or interrupt in the parent (KeyboardInterrupt) kills the
   child the same way.

Limits
------
- POSIX only (``os.fork``): not on Windows. Where fork is missing `IsolationError` says so.
- Side effects outside the process stay: files written, messages sent, rows inserted.
- Changes the session makes to in-memory state (module globals, caches, a mock's list of
  calls, what a conftest hook collects) happen in the child and never reach the parent; only
  the return value (or exception) comes back. Return everything the parent needs.
- The return value and exceptions cross by pickle. A result that cannot be pickled raises
  `IsolationError` naming its type; an exception that cannot be pickled or unpickled comes
  back as `RemoteError` with the original type name, message and traceback.
- File descriptors are inherited: the child shares the parent's open files, sockets and
  database connections, and using them from the child can disturb the parent's protocol
  state.
- Only the forking thread exists in the child. A lock another thread of the parent held at
  the moment of the fork stays locked in the child; if the session needs it, it hangs and the
  timeout stops it. (Python ≥ 3.12 warns about forking a multi-threaded process; the warning
  is silenced for this fork.)
- Output buffered inside C libraries (``printf`` without ``fflush``) is lost at ``os._exit``;
  on a timeout, Python output not yet flushed (at most a line) is lost too.
- Processes the session starts in a new session or process group (``start_new_session=True``,
  ``setsid``) escape the group kill. A process in uninterruptible sleep (a dead NFS mount)
  ignores even SIGKILL: the parent stops waiting for it after a few seconds and raises
  anyway, leaving it behind. Processes the session started are killed but reaped by init
  (in a container whose PID 1 does not reap they stay as zombies, which run nothing).
- An agent that installs its own SIGTERM handler gets no stack dump; SIGKILL still stops it
  after the grace period.
- Each call costs a fork (a few milliseconds, memory shared copy-on-write). Called from a
  coroutine it blocks the event loop until it returns.
"""

from __future__ import annotations

import io
import logging
import math
import os
import pickle
import reprlib
import select
import signal
import struct
import sys
import threading
import time
import traceback
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from types import FrameType, TracebackType
from typing import Any, NoReturn, TypeVar, cast

__all__ = [
    "IsolationError",
    "Progress",
    "RemoteError",
    "Report",
    "Timeout",
    "arrive",
    "carry",
    "run_isolated",
]

T = TypeVar("T")

_HEADER = struct.Struct("!cQ")  # frame kind, payload length
_PROGRESS = b"p"  # pickled (step, description, done)
_STDOUT = b"o"  # utf-8 text for the parent's sys.stdout
_STDERR = b"e"  # utf-8 text for the parent's sys.stderr
_LOG = b"l"  # a pickled log record's attributes, for the parent's pytest log handlers
_WARNING = b"w"  # a pickled warning, for the parent's record of warnings (pytest's)
_RESULT = b"r"  # the pickled return value
_RAISED = b"x"  # pickled (pickled exception or None, type name, message, traceback text)
_FAILED = b"f"  # utf-8 message: why neither a result nor the exception could be sent
_FINAL = (_RESULT, _RAISED, _FAILED)

GRACE = 0.5  # seconds between SIGTERM and SIGKILL
_EXIT_AFTER_RESULT = 2.0  # how long a child that sent its result may take to exit
_REAP_WAIT = 5.0  # how long to wait for a SIGKILLed child to disappear
_CHUNK = 1 << 20
_POLL = 0.02  # seconds between checks when the platform has no pidfd
_ORPHANED = 75  # exit status of a child whose parent went away


@dataclass(frozen=True, kw_only=True)
class Progress:
    """The last thing the child reported: the step it was at, and what that step is."""

    step: int | None = None  # 1-based; None before the first step
    description: str | None = None  # e.g. "tool_call send_email"
    done: bool = False  # the step had finished: the agent's own code was running

    def where(self) -> str:
        """``"at step 3 (tool_call send_email)"``, ``"after step 3 (tool_call send_email
        had returned; in the agent's own code)"`` or ``"before its first step"``."""
        if self.step is None:
            return "before its first step"
        if self.done:
            what = f"{self.description} had returned; " if self.description else ""
            return f"after step {self.step} ({what}in the agent's own code)"
        place = f"at step {self.step}"
        return f"{place} ({self.description})" if self.description else place


Report = Callable[[Progress], None]


class IsolationError(RuntimeError):
    """The isolation itself failed (no fork here, the child died, a result could not cross)."""

    def __init__(self, message: str, *, pid: int | None = None) -> None:
        super().__init__(message)
        self.pid = pid


class Timeout(Exception):
    """The session did not finish in time; its process (group) has been killed and reaped.

    ``str()``: "the agent did not finish within 2.0 s; it hung at step 3 (tool_call send_email)".
    """

    def __init__(
        self, seconds: float, progress: Progress, *, pid: int, stack: str | None = None
    ) -> None:
        super().__init__(seconds, progress)
        self.seconds = seconds
        self.progress = progress
        self.pid = pid  # the child's pid; that process no longer exists
        self.stack = stack  # the child's thread stacks when it was stopped, when dumped

    def __str__(self) -> str:
        return f"the agent did not finish within {self.seconds} s; it hung {self.progress.where()}"

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (type(self), (), self.__dict__))


class RemoteError(Exception):
    """Stands in for an exception of the session that could not cross back as itself."""

    def __init__(self, type_name: str, message: str) -> None:
        super().__init__(type_name, message)
        self.type_name = type_name
        self.message = message

    def __str__(self) -> str:
        return f"{self.type_name}: {self.message}" if self.message else self.type_name


def _rebuild(cls: type[BaseException], args: tuple[Any, ...], state: dict[str, Any]) -> Any:
    exc = cls.__new__(cls)
    BaseException.__init__(exc, *args)
    exc.__dict__.update(state)
    return exc


def run_isolated(fn: Callable[[Report], T], *, timeout: float, grace: float = GRACE) -> T:
    """Call ``fn(report)`` in a forked child; its return value, or raise what it raised.

    ``report(Progress(...))`` may be called from ``fn`` (from any of its threads) whenever a
    step starts. When ``timeout`` seconds pass first, the child's process group gets SIGTERM,
    ``grace`` seconds later SIGKILL, the child is reaped and `Timeout` is raised.
    """
    if not hasattr(os, "fork"):
        raise IsolationError(
            f"--opswald-timeout runs each session in a forked child process, and this "
            f"platform ({sys.platform}) has no fork; run without a timeout"
        )
    if not timeout > 0:  # also rejects NaN
        raise ValueError(f"timeout must be a positive number of seconds, not {timeout!r}")
    if not grace >= 0:
        raise ValueError(f"grace must be zero or more seconds, not {grace!r}")
    timeout = float(timeout)
    libc = _libc()
    _flush_std_streams()
    read_fd, write_fd = os.pipe()
    dump_read, dump_write = os.pipe()
    parent = os.getpid()
    try:
        pid = _fork()
    except BaseException:
        for fd in (read_fd, write_fd, dump_read, dump_write):
            os.close(fd)
        raise
    if pid == 0:  # the child; never returns
        _child(fn, read_fd, write_fd, dump_read, dump_write, parent, libc)
    os.close(write_fd)
    os.close(dump_write)
    try:
        os.setpgid(pid, pid)  # also done by the child: whichever runs first wins the race
    except OSError:
        pass
    child = _Child(pid, dump_read, grace)
    try:
        kind, payload = child.wait(read_fd, time.monotonic() + timeout)
        if kind == "timeout":
            child.stop(dump=True)
            err = Timeout(timeout, child.progress, pid=pid, stack=child.stack())
            if err.stack:
                err.add_note(f"where the agent was when it was stopped:\n{err.stack.rstrip()}")
            raise err
        if kind == "died":
            child.stop()
            raise IsolationError(
                f"the agent's process (pid {pid}) {child.how_it_ended()} without sending "
                f"back a result; it was {child.progress.where()}",
                pid=pid,
            )
        child.finish()
        return cast(T, _outcome(kind, payload, pid))
    finally:
        try:
            child.stop()  # a no-op unless the parent was interrupted (KeyboardInterrupt)
        finally:
            child.close()
            os.close(read_fd)
            os.close(dump_read)


# -- the child ----------------------------------------------------------------------------


class _Sender:
    """The child's end of the pipe: frames written whole, from any thread."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.pid = os.getpid()
        self.lock = threading.Lock()

    def send(self, kind: bytes, payload: bytes) -> None:
        if os.getpid() != self.pid:  # a process the session forked: not ours to report
            return
        with self.lock:
            self._write(_HEADER.pack(kind, len(payload)))
            self._write(payload)

    def _write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            try:
                written = os.write(self.fd, view)
            except BrokenPipeError:  # the parent is gone or has given up on us
                os._exit(_ORPHANED)
            view = view[written:]

    def report(self, progress: Progress) -> None:
        if not isinstance(progress, Progress):
            raise TypeError(f"report() takes a Progress, not {type(progress).__name__}")
        self.send(_PROGRESS, pickle.dumps((progress.step, progress.description, progress.done)))


class _Forward(io.TextIOBase):
    """A ``sys.stdout``/``sys.stderr`` for the child that sends what is written to the parent."""

    encoding = "utf-8"

    def __init__(self, sender: _Sender, kind: bytes) -> None:
        super().__init__()
        self._sender = sender
        self._kind = kind

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        if not isinstance(text, str):
            raise TypeError(f"write() argument must be str, not {type(text).__name__}")
        if text:
            self._sender.send(self._kind, text.encode("utf-8", "surrogatepass"))
        return len(text)


def _child(
    fn: Callable[[Report], Any],
    read_fd: int,
    write_fd: int,
    dump_read: int,
    dump_write: int,
    parent: int,
    libc: Any,
) -> NoReturn:
    status = 70
    try:
        os.close(read_fd)
        os.close(dump_read)
        sender = _Sender(write_fd)
        _settle(sender, dump_write, parent, libc)
        try:
            value = fn(sender.report)
        except BaseException as exc:
            _send_exception(sender, exc)
        else:
            _send_result(sender, value)
        status = 0
    except BaseException:
        status = 71
    finally:
        try:
            _flush_std_streams()
        finally:
            os._exit(status)


def _settle(sender: _Sender, dump_fd: int, parent: int, libc: Any) -> None:
    """Make the fresh child a session of its own: group, parent-death signal, SIGTERM, output."""
    import faulthandler

    try:
        os.setpgid(0, 0)
    except OSError:
        pass
    if libc is not None:
        try:
            libc.prctl(1, int(signal.SIGKILL), 0, 0, 0)  # PR_SET_PDEATHSIG
        except Exception:
            pass
        if os.getppid() != parent:  # the parent died before prctl took effect
            os._exit(_ORPHANED)
    try:
        signal.set_wakeup_fd(-1)  # the parent's event loop, if any, is not ours
    except (ValueError, OSError):
        pass
    try:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)  # the parent's handler is not ours
    except (ValueError, OSError):
        pass
    try:  # dump every thread's stack on SIGTERM, then die of it (SIG_DFL, chained)
        faulthandler.register(signal.SIGTERM, file=dump_fd, all_threads=True, chain=True)
    except (ValueError, OSError, RuntimeError):
        pass
    for name, kind in (("stdout", _STDOUT), ("stderr", _STDERR)):
        stream = getattr(sys, name)
        if stream is None:
            continue
        if _has_fd(stream):
            try:
                stream.reconfigure(line_buffering=True)
            except Exception:
                pass
        else:
            setattr(sys, name, _Forward(sender, kind))
    _forward_logging(sender)
    _forward_warnings(sender)


def _collecting(handler: logging.Handler) -> bool:
    """A handler of the parent's that collects what a test logs: pytest's (the report's
    "Captured log" sections, `caplog`, `--log-cli-level`, `--log-file`). Its copy in the
    child would keep records the parent never sees, or write them beside the parent's."""
    return type(handler).__module__.startswith("_pytest.")


class _LogForward(logging.Handler):
    """The child's stand-in, on the root logger, for the parent's collecting handlers: each
    record they would have taken is sent to the parent, which hands it to them (`_note`)."""

    def __init__(self, sender: _Sender, level: int) -> None:
        super().__init__(level)
        self._sender = sender

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self._sender.send(_LOG, _record_bytes(record))
        except Exception:
            # as pytest's own handlers do in the test process: a record that cannot be
            # formatted (`log.warning("%d", "x")`) raises in the agent, not a printed report
            if logging.raiseExceptions:
                raise
            self.handleError(record)


def _record_bytes(record: logging.LogRecord) -> bytes:
    """A record as it crosses: its message formatted (its `args` may not pickle), its
    exception as text; an attribute that does not pickle (an `extra=` object) as its repr."""
    data = dict(record.__dict__)
    data["msg"], data["args"] = record.getMessage(), None
    if record.exc_info:
        data["exc_text"] = record.exc_text or logging.Formatter().formatException(record.exc_info)
    data["exc_info"] = None
    try:
        return _round_trip(data)
    except Exception:  # a value that does not pickle, or does not unpickle (the parent's)
        for key, value in data.items():
            try:
                _round_trip(value)
            except Exception:
                data[key] = _safe_repr(value)
        return pickle.dumps(data)


def _round_trip(value: Any) -> bytes:
    """`value` pickled, once it is known to unpickle: the parent must be able to read it
    (an exception whose constructor takes other arguments pickles, and fails to load)."""
    payload = pickle.dumps(value)
    pickle.loads(payload)
    return payload


def _safe_repr(value: Any) -> str:
    try:
        return repr(value)
    except Exception:
        return f"<{_type_name(type(value))}>"


def _forward_logging(sender: _Sender) -> None:
    """The child's records reach the parent's pytest handlers (the ones the run collects
    into), not their copies here; the agent's own handlers stay in the child and write
    from there, once."""
    root = logging.getLogger()
    collecting = [h for h in root.handlers if _collecting(h)]
    if not collecting:
        return
    for handler in collecting:
        root.removeHandler(handler)
    root.addHandler(_LogForward(sender, min(h.level for h in collecting)))


def _forward_warnings(sender: _Sender) -> None:
    """A warning the child's filters let through goes to the parent's record of warnings
    (pytest's, for the warnings summary) instead of the child's copy of it. Filters (`-W
    error`) already ran here: the parent only records it."""

    def forward(
        message: Warning | str,
        category: type[Warning],
        filename: str,
        lineno: int,
        file: Any = None,
        line: str | None = None,
    ) -> None:
        try:
            payload = _round_trip((message, category, filename, lineno, line))
        except Exception:  # a warning that does not cross: its text, of its category
            try:
                payload = _round_trip((_safe_str(message), category, filename, lineno, line))
            except Exception:  # nor its category: as a UserWarning that names it
                text = f"{_type_name(category)}: {_safe_str(message)}"
                payload = pickle.dumps((text, UserWarning, filename, lineno, line))
        sender.send(_WARNING, payload)

    warnings.showwarning = forward


def _send_result(sender: _Sender, value: Any) -> None:
    try:
        payload = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
    except Exception as err:
        message = (
            f"the agent session returned a {_type_name(type(value))}, which cannot be pickled "
            f"to send it back from its child process: {type(err).__name__}: {_safe_str(err)}"
        )
        sender.send(_FAILED, message.encode("utf-8", "replace"))
        return
    sender.send(_RESULT, payload)


# An exception, as it crosses the pipe: (pickled exception or None, type name, message,
# traceback text, its frames, its cause in the same form or None, and for an exception
# group its members in the same form, or None).
Crossing = tuple[bytes | None, str, str, str, list["ChildFrame"], Any, list[Any] | None]
# A frame of the child's traceback: file, line, function, the function's first line, and
# its local variables as their reprs (for pytest's `-l`).
ChildFrame = tuple[str, int, str, int, dict[str, str]]
MAX_LOCALS = 64  # local variables kept of each frame, each repr cut at LOCAL_REPR chars
LOCAL_REPR = 240
MAX_CAUSES = 8  # causes sent along with an exception (a hook's error under HookFailed)
MAX_MEMBERS = 32  # the members of an exception group sent with their frames


def _send_exception(sender: _Sender, exc: BaseException) -> None:
    tb = exc.__traceback__
    tb = tb.tb_next if tb is not None and tb.tb_next is not None else tb  # not _child's
    sender.send(_RAISED, pickle.dumps(_crossing(exc, tb)))


def _crossing(exc: BaseException, tb: TracebackType | None, depth: int = 0) -> Crossing:
    """`exc` in a form that crosses the pipe whole: pickling drops an exception's traceback
    and its `__cause__`, which the parent rebuilds from these."""
    try:
        text = "".join(traceback.format_exception(type(exc), exc, tb, chain=False))
        frames = _frames(tb)
    except Exception:
        text, frames = f"{_type_name(type(exc))}: {_safe_str(exc)}\n", []
    blob: bytes | None
    try:
        blob = pickle.dumps(exc, protocol=pickle.HIGHEST_PROTOCOL)
    except Exception:
        blob = None
    cause = exc.__cause__
    sent = (
        _crossing(cause, cause.__traceback__, depth + 1)
        if cause is not None and depth < MAX_CAUSES
        else None
    )
    members = (
        [_crossing(sub, sub.__traceback__, depth + 1) for sub in exc.exceptions[:MAX_MEMBERS]]
        if isinstance(exc, BaseExceptionGroup) and depth < MAX_CAUSES
        else None
    )
    return blob, _type_name(type(exc)), _safe_str(exc), text, frames, sent, members


# -- the parent ---------------------------------------------------------------------------


class _Child:
    """The parent's handle on the child: its frames, its progress, its death."""

    def __init__(self, pid: int, dump_fd: int, grace: float) -> None:
        self.pid = pid
        self.grace = grace
        self.progress = Progress()
        self.status: int | None = None  # os.waitstatus_to_exitcode; set once reaped
        self.reaped = False
        self.dump_fd = dump_fd
        self.dump = bytearray()
        self.pidfd: int | None = None
        os.set_blocking(dump_fd, False)
        pidfd_open = getattr(os, "pidfd_open", None)
        if pidfd_open is not None:
            try:
                self.pidfd = pidfd_open(pid)
            except OSError:  # an old kernel, or a sandbox that forbids it
                self.pidfd = None

    def close(self) -> None:
        if self.pidfd is not None:
            os.close(self.pidfd)
            self.pidfd = None

    # -- waiting

    def wait(self, fd: int, deadline: float) -> tuple[str, bytes]:
        """Read frames until a final one, the child's death, or the deadline."""
        os.set_blocking(fd, False)
        buffer = bytearray()
        poller = select.poll()
        poller.register(fd, select.POLLIN)
        if self.pidfd is not None:
            poller.register(self.pidfd, select.POLLIN)
        open_ = True
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return "timeout", b""
            if self.pidfd is None:
                left = min(left, _POLL)
            dead = False
            for ready, _ in poller.poll(_milliseconds(left)):
                if ready == fd:
                    open_ = _pump(fd, buffer)
                    if not open_:
                        poller.unregister(fd)
                else:
                    dead = True
            if self.pidfd is None and not dead:
                dead = self.exited()
            if dead and open_:
                _pump(fd, buffer)  # what it wrote just before it went
            final = self._frames(buffer)
            if final is not None:
                return final
            if dead:
                return "died", b""

    def _frames(self, buffer: bytearray) -> tuple[str, bytes] | None:
        at = 0
        final: tuple[str, bytes] | None = None
        while len(buffer) - at >= _HEADER.size:
            kind, size = _HEADER.unpack_from(buffer, at)
            start = at + _HEADER.size
            if len(buffer) - start < size:
                break
            payload = bytes(buffer[start : start + size])
            at = start + size
            if kind in _FINAL:
                final = (kind.decode(), payload)
                break
            self._note(kind, payload)
        del buffer[:at]
        return final

    def _note(self, kind: bytes, payload: bytes) -> None:
        if kind == _PROGRESS:
            try:
                step, description, done = pickle.loads(payload)
            except Exception:
                return
            self.progress = Progress(
                step=step,
                description=None if description is None else str(description),
                done=bool(done),
            )
        elif kind == _LOG:
            _handle_record(payload)
        elif kind == _WARNING:
            try:
                message, category, filename, lineno, line = pickle.loads(payload)
                warnings.showwarning(message, category, filename, lineno, None, line)
            except Exception:
                pass
        elif kind in (_STDOUT, _STDERR):
            stream = sys.stdout if kind == _STDOUT else sys.stderr
            if stream is not None:
                try:
                    stream.write(payload.decode("utf-8", "replace"))
                except Exception:
                    pass

    # -- ending

    def exited(self) -> bool:
        """Whether the child has ended; it stays a zombie (its pid and group kept) when possible."""
        if self.reaped:
            return True
        if hasattr(os, "waitid"):
            try:
                info = os.waitid(os.P_PID, self.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
            except ChildProcessError:  # someone else reaped it
                self.reaped = True
                return True
            return info is not None
        return self._reap_now()

    def _reap_now(self) -> bool:
        try:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
        except ChildProcessError:
            self.reaped = True
            return True
        if pid == 0:
            return False
        self.reaped = True
        self.status = os.waitstatus_to_exitcode(status)
        return True

    def _signal(self, sig: int) -> None:
        """Signal the child's whole process group (it and whatever it started)."""
        if self.reaped:
            return  # its pid and group id may belong to someone else by now
        try:
            os.killpg(self.pid, sig)
            return
        except (ProcessLookupError, PermissionError):
            pass
        try:
            os.kill(self.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass

    def finish(self) -> None:
        """After a final frame: let the child exit by itself, then clear up as `stop` does."""
        self._until(time.monotonic() + _EXIT_AFTER_RESULT)
        self.stop()

    def stop(self, *, dump: bool = False) -> None:
        """SIGTERM, a grace period, SIGKILL to the group, reap. Idempotent."""
        if self.reaped:
            return
        if not self.exited():
            self._signal(signal.SIGTERM)
            self._until(time.monotonic() + self.grace, dump=dump)
        self._signal(signal.SIGKILL)  # the child if still alive; what it left in its group
        end = time.monotonic() + _REAP_WAIT
        while not self._reap_now() and time.monotonic() < end:
            self._drain_dump()
            time.sleep(0.005)
        self._drain_dump()

    def _until(self, end: float, *, dump: bool = False) -> None:
        """Wait until the child has exited or ``end``, reading its stack dump meanwhile."""
        poller = select.poll()
        if dump:
            poller.register(self.dump_fd, select.POLLIN)
        if self.pidfd is not None:
            poller.register(self.pidfd, select.POLLIN)
        while not self.exited():
            left = end - time.monotonic()
            if left <= 0:
                return
            if self.pidfd is None:
                left = min(left, _POLL)
            for ready, _ in poller.poll(_milliseconds(left)):
                if ready == self.dump_fd and not self._drain_dump():
                    poller.unregister(self.dump_fd)

    def _drain_dump(self) -> bool:
        """Read what faulthandler wrote; False at the end of the pipe."""
        return _pump(self.dump_fd, self.dump)

    def stack(self) -> str | None:
        text = self.dump.decode("utf-8", "replace").strip("\n")
        return text or None

    def how_it_ended(self) -> str:
        if self.status is None:
            return "ended"
        if self.status < 0:
            try:
                name = signal.Signals(-self.status).name
            except ValueError:
                name = "?"
            return f"was killed by signal {-self.status} ({name})"
        return f"exited with status {self.status}"


def _handle_record(payload: bytes) -> None:
    """A record the child logged, to the parent's collecting handlers, as if logged here
    (the child's logger levels and filters already let it through)."""
    try:
        record = logging.makeLogRecord(pickle.loads(payload))
    except Exception:
        return
    for handler in logging.getLogger().handlers:
        if _collecting(handler) and record.levelno >= handler.level:
            handler.handle(record)


def _outcome(kind: str, payload: bytes, pid: int) -> Any:
    """The value a final frame stands for; raises what the child raised."""
    if kind == "r":
        try:
            return pickle.loads(payload)
        except Exception as err:
            raise IsolationError(
                f"the agent session's result could not be unpickled in the parent process: "
                f"{type(err).__name__}: {_safe_str(err)}",
                pid=pid,
            ) from None
    if kind == "f":
        raise IsolationError(payload.decode("utf-8", "replace"), pid=pid)
    raise _arrived(pickle.loads(payload), pid)


def _frames(tb: TracebackType | None) -> list[ChildFrame]:
    frames: list[ChildFrame] = []
    while tb is not None:
        code = tb.tb_frame.f_code
        shown = _local_reprs(tb.tb_frame)
        frames.append((code.co_filename, tb.tb_lineno, code.co_name, code.co_firstlineno, shown))
        tb = tb.tb_next
    return frames


_OURS = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep  # src/opswald/


def _local_reprs(frame: FrameType) -> dict[str, str]:
    """A frame's local variables as short reprs (a module's frame: none, its locals are
    its globals; nor opswald's own frames, which a failure does not show and whose locals
    hold the whole golden)."""
    if frame.f_code.co_name == "<module>" or frame.f_code.co_filename.startswith(_OURS):
        return {}
    try:
        names = list(frame.f_locals.items())[:MAX_LOCALS]
    except Exception:
        return {}
    return {name: _short_repr(value) for name, value in names}


def _short_repr(value: Any) -> str:
    """`value`'s repr, bounded as it is built for containers and strings (a local holding
    a long list is not rendered whole), cut at LOCAL_REPR characters."""
    try:
        text = _REPR.repr(value)
    except Exception:
        text = f"<{_type_name(type(value))} object (repr failed)>"
    return text if len(text) <= LOCAL_REPR else text[: LOCAL_REPR - 3] + "..."


_REPR = reprlib.Repr()
_REPR.maxstring = _REPR.maxother = LOCAL_REPR
_REPR.maxlist = _REPR.maxtuple = _REPR.maxdict = _REPR.maxset = 16


def carry(exc: BaseException) -> Crossing:
    """An exception of the child's, with its traceback and cause, as plain data that
    pickles (to return with a result); `arrive` rebuilds it in the parent."""
    return _crossing(exc, exc.__traceback__)


def arrive(sent: Crossing) -> BaseException:
    """The exception `carry` packed, rebuilt as `_outcome` rebuilds one the child raised."""
    return _arrived(sent, None)


def _arrived(sent: Crossing, pid: int | None) -> BaseException:
    """The exception the child sent, with the traceback it was raised through (and its
    cause, with its own): shown by pytest as it would show it raised in this process."""
    blob, type_name, message, text, frames, cause, members = sent
    exc: BaseException | None = None
    why = "could not be pickled"
    if blob is not None:
        try:
            exc = pickle.loads(blob)
        except Exception as err:
            why = f"could not be unpickled ({type(err).__name__}: {_safe_str(err)})"
        if exc is not None and not isinstance(exc, BaseException):
            exc = None
    if exc is None:
        exc = RemoteError(type_name, message)
        exc.add_note(f"(the agent raised {type_name}, which {why}; RemoteError stands in for it)")
    rebuilt = _traceback(frames)
    if rebuilt is not None:
        exc = exc.with_traceback(rebuilt)
    else:  # no frame could be rebuilt: the child's traceback as text
        where = "the agent's child process" + (f" (pid {pid})" if pid is not None else "")
        exc.add_note(f"traceback in {where}:\n{text.rstrip()}")
    if cause is not None:
        exc.__cause__ = _arrived(cause, pid)
    if members and isinstance(exc, BaseExceptionGroup):
        # the members came with the group, without their frames: given them again
        for member, sent_member in zip(exc.exceptions, members, strict=False):
            _dress(member, sent_member, pid)
    return exc


def _dress(exc: BaseException, sent: Crossing, pid: int | None) -> None:
    """A member of an exception group, unpickled with it: its traceback, cause and own
    members as the child sent them."""
    *_, frames, cause, members = sent
    rebuilt = _traceback(frames)
    if rebuilt is not None:
        exc.__traceback__ = rebuilt
    if cause is not None:
        exc.__cause__ = _arrived(cause, pid)
    if members and isinstance(exc, BaseExceptionGroup):
        for member, sent_member in zip(exc.exceptions, members, strict=False):
            _dress(member, sent_member, pid)


def _traceback(frames: list[ChildFrame]) -> TracebackType | None:
    """A traceback through the child's `frames`: each a frame of a code object named and
    placed like the child's, at the child's line, so that pytest shows (and filters) them
    as it would the child's own, with their source."""
    tb: TracebackType | None = None
    try:
        for filename, lineno, name, first, *more in reversed(frames):
            shown = more[0] if more else {}
            # no instruction (lasti -1): Python's traceback module then reads the line
            # from `lineno` (the stand-in code's positions are not the child's)
            tb = TracebackType(tb, _frame(filename, name, first, shown), -1, lineno)
    except Exception:
        return None
    return tb


def _frame(filename: str, name: str, first: int, shown: dict[str, str]) -> FrameType:
    """A frame named and placed like the child's; its locals (what pytest's `-l` shows)
    stand for the child's by their reprs."""
    code = compile("raise _Here", filename, "exec").replace(
        co_name=name, co_qualname=name, co_firstlineno=max(first, 1)
    )
    local = {key: _Shown(text) for key, text in shown.items()}
    try:
        exec(code, {"_Here": _Here, "__name__": "__opswald_child__"}, local)
    except _Here as here:
        tb = here.__traceback__
        assert tb is not None and tb.tb_next is not None
        return tb.tb_next.tb_frame
    raise AssertionError("unreachable")


class _Here(Exception):
    """Raised by `_frame`'s code to catch its frame."""


class _Shown:
    """A local variable of the child's, as its repr."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return self.text


def _pump(fd: int, buffer: bytearray) -> bool:
    """Append what can be read now without blocking; False at end of file."""
    for _ in range(64):  # a chatty child must not keep the parent from its deadline
        try:
            chunk = os.read(fd, _CHUNK)
        except BlockingIOError:
            return True
        if not chunk:
            return False
        buffer += chunk
    return True


_MAX_POLL_MS = 2**31 - 1  # what poll() takes (a C int): about 24.8 days


def _milliseconds(seconds: float) -> int | None:
    """poll()'s timeout for `seconds`. A wait longer than poll() takes is cut to its
    longest: the callers loop until their deadline, so a timeout of a month (or 1e300 s)
    waits in turns, as long as the agent runs, rather than raising OverflowError."""
    if math.isinf(seconds):
        return None
    return max(1, min(_MAX_POLL_MS, math.ceil(seconds * 1000)))


# -- both ---------------------------------------------------------------------------------


def _fork() -> int:
    if sys.version_info < (3, 12):
        return os.fork()
    with warnings.catch_warnings():
        # Python ≥ 3.12 warns when a multi-threaded process forks; see the module's limits.
        warnings.filterwarnings(
            "ignore", message=r".*multi-threaded.*fork", category=DeprecationWarning
        )
        return os.fork()


_LIBC: list[Any] = []


def _libc() -> Any:
    """libc through ctypes on Linux (for prctl), loaded in the parent before any fork."""
    if not _LIBC:
        libc = None
        if sys.platform.startswith("linux"):
            try:
                import ctypes

                libc = ctypes.CDLL(None, use_errno=True)
            except (ImportError, OSError):
                libc = None
        _LIBC.append(libc)
    return _LIBC[0]


def _flush_std_streams() -> None:
    for stream in (sys.stdout, sys.stderr):
        if stream is not None:
            try:
                stream.flush()
            except Exception:
                pass


def _has_fd(stream: Any) -> bool:
    try:
        return int(stream.fileno()) >= 0
    except (AttributeError, OSError, ValueError):
        return False


def _type_name(cls: type) -> str:
    module = getattr(cls, "__module__", None)
    name = str(getattr(cls, "__qualname__", None) or getattr(cls, "__name__", repr(cls)))
    return name if module in (None, "builtins") else f"{module}.{name}"


def _safe_str(obj: object) -> str:
    try:
        return str(obj)
    except Exception:
        return f"<{type(obj).__name__} whose str() failed>"
