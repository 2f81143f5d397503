"""The offline guard: replay may reach loopback and nothing else (DESIGN §3a "Offline").

While an `OfflineGuard` is active, in this process, name resolution of anything but
loopback names and connections or datagrams to anything but loopback addresses raise
`OfflineError` before a packet is sent. Unix sockets are allowed. Agents run as
subprocesses are outside the guard's reach: in replay, point their proxy variables at
`refusing_proxy()` (see `proxy_env`) — that covers clients that honour proxy variables.
"""

from __future__ import annotations

import contextlib
import errno
import ipaddress
import re
import socket
import threading
import urllib.parse
import weakref
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self

LOCAL_NAMES = frozenset({"localhost", "localhost."})
# (--opswald-mode=record replays a recorded golden: the call would be blocked again)
ADVICE = (
    "Make that call inside an @opswald.tool function, whose answer a recording keeps, and "
    "record again with --opswald-mode=rerecord; or run with --opswald-mode=live to reach "
    "the network."
)
_MODULE_FUNCS = ("getaddrinfo", "gethostbyname", "gethostbyname_ex", "gethostbyaddr", "getnameinfo")
_SOCKET_METHODS = ("connect", "connect_ex", "sendto", "sendmsg")
# Sending on a socket connected already (before the guard: a keep-alive connection of a
# client an earlier test used) checks where it is connected to; so does reading from it,
# as a client that cannot send reads the answer anyway (httpcore does), which would wait
# for its timeout instead of saying why. ssl's sockets send and read through their own
# methods, not socket.socket's.
_PEER_METHODS = (
    "send",
    "sendall",
    "sendfile",
    "recv",
    "recv_into",
    "recvfrom",
    "recvfrom_into",
    "recvmsg",
    "recvmsg_into",
)
_SSL_METHODS = ("send", "sendall", "recv", "recv_into")
_MISSING = object()


class OfflineError(ConnectionRefusedError):
    """A connection or lookup the offline guard refused (an `OSError`, ECONNREFUSED)."""

    def __init__(self, host: str, port: int | str | None) -> None:
        self.host = host
        self.port = port
        super().__init__(errno.ECONNREFUSED, offline_message(host, port))

    def __str__(self) -> str:
        return str(self.strerror)

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.host, self.port))


def offline_message(host: str, port: int | str | None) -> str:
    """The message of an `OfflineError`: what was blocked and how to get past it."""
    return f"opswald replay is offline: blocked connection to {_target(host, port)}. {ADVICE}"


def blocked_note(
    blocked: list[tuple[str, int | str | None]], refused: list[str] | None = None
) -> str | None:
    """What the guard blocked and its proxy refused (`refused`, as `proxy_request` names
    them) during a run, in one line (None when nothing was)."""
    parts = []
    targets = list(dict.fromkeys(_target(host, port) for host, port in blocked))
    if targets:
        parts.append(f"blocked connection to {_first_three(targets)}")
    requests = list(dict.fromkeys(refused or ()))
    if requests:
        parts.append(f"the proxy refused the agent's requests {_first_three(requests)}")
    return f"opswald replay is offline: {'; '.join(parts)}" if parts else None


def _first_three(items: list[str]) -> str:
    more = f" and {len(items) - 3} more" if len(items) > 3 else ""
    return ", ".join(items[:3]) + more


BLOCKED_ADVICE = (
    "in replay only recorded calls are answered (LLM calls to chat completions, responses "
    "and messages, and instrumented tools); anything else that needs the network is "
    f"blocked. {ADVICE}"
)


def _target(host: str, port: int | str | None) -> str:
    shown = f"[{host}]" if ":" in host else host
    return shown if port is None else f"{shown}:{port}"


def _host_text(host: object) -> str:
    if isinstance(host, bytes | bytearray):
        return bytes(host).decode("ascii", "replace")
    return "" if host is None else str(host)


def is_local_host(host: object) -> bool:
    """True for loopback names and addresses (127.0.0.0/8, ::1), and for "any" (bind)."""
    text = _host_text(host).strip().lower()
    if text in ("", "0.0.0.0", "::") or text in LOCAL_NAMES:
        return True
    try:
        ip: ipaddress.IPv4Address | ipaddress.IPv6Address = ipaddress.ip_address(
            text.split("%", 1)[0]
        )
    except ValueError:
        shorthand = _ipv4_shorthand(text)
        if shorthand is None:
            return False
        ip = shorthand
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_loopback


_INET_ATON = re.compile(r"[0-9a-fx.]+")


def _ipv4_shorthand(text: str) -> ipaddress.IPv4Address | None:
    """The IPv4 address of the other spellings the C library reads as one, without a
    lookup (`127.1`, `0x7f.1`, `2130706433`); None for a name."""
    if not _INET_ATON.fullmatch(text):  # inet_aton ignores what follows a space
        return None
    try:
        return ipaddress.IPv4Address(socket.inet_aton(text))
    except OSError:
        return None


class _Patch:
    """The process-wide patch of `socket`; installed while any guard is active."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.guards: list[OfflineGuard] = []
        self.saved: dict[tuple[object, str], object] = {}
        # per socket: (its fileno then, (host, port) of a peer not loopback, else None)
        self.peers: weakref.WeakKeyDictionary[socket.socket, tuple[int, tuple[str, int] | None]]
        self.peers = weakref.WeakKeyDictionary()
        # threads alive when the patch went on, but the one installing it (the replay's):
        # connections they hold are theirs (a database heartbeat a fixture started, a
        # telemetry exporter), not the agent's, and keep working during the replay
        self.elders: frozenset[threading.Thread] = frozenset()
        # threads a replay's agent left running (`hold`): guarded until they end, also
        # when no guard is active any more (the patch stays on while one is alive)
        self.held: weakref.WeakSet[threading.Thread] = weakref.WeakSet()

    def applies(self) -> bool:
        """Whether a lookup or connection made now is checked: while a guard is active,
        and in a thread a replay's agent left running."""
        return bool(self.guards) or threading.current_thread() in self.held

    def hold(self, threads: Iterable[threading.Thread]) -> None:
        """Keep `threads` guarded after the guards are off, until they end."""
        with self.lock:
            self.held.update(t for t in threads if t.is_alive())

    def deny(self, host: object, port: object) -> OfflineError:
        """Note a blocked attempt in every active guard and build its error."""
        name = _host_text(host)
        shown_port = port if isinstance(port, int | str) else None
        with self.lock:
            for guard in self.guards:
                guard.blocked.append((name, shown_port))
        return OfflineError(name, shown_port)

    def refuse(self, request: str) -> None:
        """Note a request the refusing proxy refused in every active guard."""
        with self.lock:
            for guard in self.guards:
                guard.refused.append(request)

    def check(self, host: object, port: object) -> None:
        """Raise `OfflineError` unless `host` is loopback."""
        if not is_local_host(host):
            raise self.deny(host, port)

    def check_socket(self, sock: socket.socket, address: object) -> None:
        """Check a socket-level destination (unix sockets and other families pass)."""
        if sock.family not in (socket.AF_INET, socket.AF_INET6):
            return
        if isinstance(address, tuple) and len(address) >= 2:
            self.check(address[0], address[1])

    def check_peer(self, sock: socket.socket) -> None:
        """Raise `OfflineError` if `sock` is connected to an address that is not loopback.
        The answer is kept per socket (a connect through the guard forgets it), so sending
        on a loopback or unix socket costs one look-up."""
        if threading.current_thread() in self.elders:
            return  # a thread older than the replay: its connection is not the agent's
        try:
            fileno = sock.fileno()
            known = self.peers.get(sock)
        except TypeError:  # a socket-like object that cannot be weakly referenced
            fileno, known = -1, None
        if known is not None and known[0] == fileno:
            peer = known[1]
        else:
            peer = None
            if sock.family in (socket.AF_INET, socket.AF_INET6):
                try:
                    address = sock.getpeername()
                except OSError:  # not connected: sending fails by itself
                    address = None
                if isinstance(address, tuple) and not is_local_host(address[0]):
                    peer = (address[0], address[1])
            with contextlib.suppress(TypeError):
                self.peers[sock] = (fileno, peer)
        if peer is not None:
            raise self.deny(*peer)

    def forget(self, sock: socket.socket) -> None:
        """`sock` connects anew: where it was connected to no longer counts."""
        with contextlib.suppress(TypeError, KeyError):
            del self.peers[sock]

    def add(self, guard: OfflineGuard) -> None:
        with self.lock:
            if not self.guards:
                if self.saved:  # still on for held threads
                    self.elders = self._elders()
                    self.peers.clear()
                else:
                    self._install()
            self.guards.append(guard)

    def remove(self, guard: OfflineGuard) -> None:
        with self.lock:
            self.guards.remove(guard)
            if not self.guards:
                if any(t.is_alive() for t in self.held):
                    self.elders = frozenset()
                else:
                    self._uninstall()

    def _elders(self) -> frozenset[threading.Thread]:
        """The threads alive now but this one and those held: their connections are not
        the agent's."""
        here = threading.current_thread()
        return frozenset(t for t in threading.enumerate() if t is not here and t not in self.held)

    def _install(self) -> None:
        self.elders = self._elders()
        for name in _MODULE_FUNCS:
            self._replace(socket, name, _wrap_lookup(self, name, getattr(socket, name)))
        for name in _SOCKET_METHODS:
            self._replace(socket.socket, name, _wrap_method(self, getattr(socket.socket, name)))
        for name in _PEER_METHODS:
            self._replace(socket.socket, name, _wrap_send(self, getattr(socket.socket, name)))
        try:
            import ssl
        except ImportError:  # a Python built without it has no TLS sockets to guard
            return
        for name in _SSL_METHODS:
            self._replace(ssl.SSLSocket, name, _wrap_send(self, getattr(ssl.SSLSocket, name)))

    def _replace(self, owner: object, name: str, new: object) -> None:
        self.saved[(owner, name)] = vars(owner).get(name, _MISSING)
        setattr(owner, name, new)

    def _uninstall(self) -> None:
        for (owner, name), old in self.saved.items():
            if old is _MISSING:
                delattr(owner, name)
            else:
                setattr(owner, name, old)
        self.saved.clear()
        self.peers.clear()
        self.elders = frozenset()
        self.held = weakref.WeakSet()


def _lookup_target(name: str, args: tuple[Any, ...]) -> tuple[object, object]:
    """The (host, port) a resolver function was asked about."""
    if name == "getaddrinfo":
        return args[0], args[1] if len(args) > 1 else None
    if name == "getnameinfo":
        sockaddr = args[0] if args else None
        if isinstance(sockaddr, tuple) and len(sockaddr) >= 2:
            return sockaddr[0], sockaddr[1]
        return sockaddr, None
    return (args[0] if args else None), None


_GAI_PARAMS = ("host", "port", "family", "type", "proto", "flags")


def _gai_args(args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, ...]:
    """getaddrinfo's arguments, all positional: (host, port, family, type, proto, flags)."""
    given = dict(zip(_GAI_PARAMS, args, strict=False)) | kwargs
    defaults = {"host": None, "port": None, "family": 0, "type": 0, "proto": 0, "flags": 0}
    return tuple(given.get(p, defaults[p]) for p in _GAI_PARAMS)


def _is_local_name(host: object) -> bool:
    return _host_text(host).strip().lower() in LOCAL_NAMES


def _local_addrinfo(original: Callable[..., Any], args: tuple[Any, ...]) -> Any:
    """getaddrinfo for "localhost" from the loopback literals: no resolver, no DNS."""
    _, port, family, type_, proto, flags = args
    found: list[Any] = []
    for literal, fam in (("127.0.0.1", socket.AF_INET), ("::1", socket.AF_INET6)):
        if family in (0, fam):
            try:
                found += original(literal, port, fam, type_, proto, flags | socket.AI_NUMERICHOST)
            except OSError:
                continue  # e.g. no IPv6 here
    if not found:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
    return found


def _wrap_lookup(patch: _Patch, name: str, original: Callable[..., Any]) -> Callable[..., Any]:
    def guarded(*args: Any, **kwargs: Any) -> Any:
        if not patch.applies():
            return original(*args, **kwargs)
        if name == "getaddrinfo":
            args, kwargs = _gai_args(args, kwargs), {}
        host, port = _lookup_target(name, args)
        patch.check(host, port)
        if _is_local_name(host):  # answered here, so a missing hosts entry sends no DNS query
            if name == "getaddrinfo":
                return _local_addrinfo(original, args)
            if name == "gethostbyname":
                return "127.0.0.1"
            if name == "gethostbyname_ex":
                return (_host_text(host), [], ["127.0.0.1"])
        return original(*args, **kwargs)

    guarded.__name__ = guarded.__qualname__ = name
    guarded.__doc__ = original.__doc__
    guarded.__wrapped__ = original  # type: ignore[attr-defined]
    return guarded


def _destination(name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> object:
    """The address argument of connect / connect_ex / sendto / sendmsg, if any."""
    if name in ("connect", "connect_ex"):
        return args[0] if args else kwargs.get("address")
    if name == "sendto":
        return args[-1] if len(args) >= 2 else None
    return args[3] if len(args) >= 4 else kwargs.get("address")


def _wrap_method(patch: _Patch, original: Callable[..., Any]) -> Callable[..., Any]:
    name = original.__name__

    def guarded(self: socket.socket, *args: Any, **kwargs: Any) -> Any:
        if not patch.applies():
            return original(self, *args, **kwargs)
        destination = _destination(name, args, kwargs)
        try:
            if destination is None and name == "sendmsg":  # to where it is connected
                patch.check_peer(self)
            else:
                patch.check_socket(self, destination)
        except OfflineError as exc:
            if name == "connect_ex":  # reports errors by value, as the original does
                return exc.errno
            raise
        if name in ("connect", "connect_ex"):
            patch.forget(self)
        return original(self, *args, **kwargs)

    guarded.__name__ = name
    guarded.__qualname__ = f"socket.{name}"
    guarded.__doc__ = original.__doc__
    guarded.__wrapped__ = original  # type: ignore[attr-defined]
    return guarded


def _wrap_send(patch: _Patch, original: Callable[..., Any]) -> Callable[..., Any]:
    """Sending and reading: refused on a socket connected to other than loopback."""

    def guarded(self: socket.socket, *args: Any, **kwargs: Any) -> Any:
        if patch.applies():
            patch.check_peer(self)
        return original(self, *args, **kwargs)

    guarded.__name__ = original.__name__
    guarded.__qualname__ = original.__qualname__
    guarded.__doc__ = original.__doc__
    guarded.__wrapped__ = original  # type: ignore[attr-defined]
    return guarded


_PATCH = _Patch()


class OfflineGuard:
    """Blocks non-loopback lookups and connections while active; nests and ref-counts.

    Use as a context manager or with `install()` / `uninstall()`; `blocked` lists the
    `(host, port)` attempts refused while this guard was active, `refused` the requests a
    `refusing_proxy()` refused meanwhile (a subprocess agent's, as `proxy_request` names
    them).
    """

    def __init__(self) -> None:
        self.blocked: list[tuple[str, int | str | None]] = []
        self.refused: list[str] = []
        self._depth = 0
        self._lock = threading.Lock()

    @property
    def active(self) -> bool:
        return self._depth > 0

    def install(self) -> None:
        """Activate (again); the socket patch stays until the last guard uninstalls."""
        with self._lock:
            self._depth += 1
            if self._depth == 1:
                _PATCH.add(self)

    def uninstall(self) -> None:
        """Undo one `install()`; restores the original `socket` functions at the last."""
        with self._lock:
            if self._depth == 0:
                raise RuntimeError("OfflineGuard.uninstall() without install()")
            self._depth -= 1
            if self._depth == 0:
                _PATCH.remove(self)

    def __enter__(self) -> Self:
        self.install()
        return self

    def __exit__(self, *exc: object) -> None:
        self.uninstall()


def guard_active() -> bool:
    """Whether an offline guard is active in this process (a replay is running)."""
    with _PATCH.lock:
        return bool(_PATCH.guards)


def check_address(host: object, port: object = None) -> None:
    """Raise `OfflineError` (and note it) if a guard is active, or the calling thread is
    one a replay's agent left running (`hold_threads`), and `host` is not loopback."""
    with _PATCH.lock:
        active = _PATCH.applies()
    if active:
        _PATCH.check(host, port)


def hold_threads(threads: Iterable[threading.Thread]) -> None:
    """Keep the threads a replay's agent left running guarded after the replay, until
    they end (call while its guard is active): what they reach later is refused as in
    the replay. Other threads are not held back once the guards are off."""
    _PATCH.hold(threads)


# --------------------------------------------------------------------------- proxy

# Said to a subprocess agent, of any language: an @opswald.tool cannot help it.
SUBPROCESS_ADVICE = (
    "In replay, an agent run as a subprocess is answered only its model calls to "
    "OPENAI_BASE_URL and ANTHROPIC_BASE_URL (from the golden); its own requests are not "
    "recorded, so nothing can answer them: have the agent reach such services on loopback "
    "(a local stub), or run with --opswald-mode=live to reach the network."
)
PROXY_BODY = (
    f"opswald replay is offline: this proxy refuses every request. {SUBPROCESS_ADVICE}\n"
).encode()


class _RefusingHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 10

    def __getattr__(self, name: str) -> Any:
        if name.startswith("do_"):  # every method, CONNECT included
            return self._refuse
        raise AttributeError(name)

    def _refuse(self) -> None:
        # noted before the answer goes out: when the agent has read it, the run knows
        _PATCH.refuse(proxy_request(self.command, self.path, self.headers.get("host")))
        length = int(self.headers.get("content-length") or 0)
        if 0 < length <= 1 << 20:
            self.rfile.read(length)
        self.send_response(403, "Forbidden")
        self.send_header("content-type", "text/plain; charset=utf-8")
        self.send_header("content-length", str(len(PROXY_BODY)))
        self.send_header("connection", "close")
        self.end_headers()
        self.wfile.write(PROXY_BODY)
        self.close_connection = True

    def log_message(self, format: str, *args: Any) -> None:
        """Stay quiet."""


_SHOWN_PATH = 80  # characters of a refused request's path a note shows


def proxy_request(method: str, target: str, host: str | None = None) -> str:
    """A request the proxy refused, as a note names it: `GET http://host:port/path` (from
    the absolute URL a client asks a proxy for; `host` is the Host header, for a path
    alone), `CONNECT host:443` for a tunnel (HTTPS: its path is never seen). The query
    string, a fragment and credentials are left out: they may hold keys."""
    target = _printable(target)  # escaped first: urlsplit drops tabs and newlines
    if method.upper() == "CONNECT":
        return f"CONNECT {target.rpartition('@')[2]}"
    try:
        parts = urllib.parse.urlsplit(target)
    except ValueError:  # not a URL (`http://[bad`): named as it came, up to its query
        return f"{_printable(method.upper())} {_clipped(re.split('[?#]', target)[0])}"
    netloc = parts.netloc or _printable(host or "")
    origin = f"{parts.scheme or 'http'}://{netloc.rpartition('@')[2]}"
    return f"{_printable(method.upper())} {origin}{_clipped(parts.path or '/')}"


def _clipped(path: str) -> str:
    return path if len(path) <= _SHOWN_PATH else path[: _SHOWN_PATH - 1] + "…"


def _printable(text: str) -> str:
    """`text` with control characters and spaces escaped: a note is one line."""
    return "".join(c if c.isprintable() and not c.isspace() else f"%{ord(c):02X}" for c in text)


class _RefusingServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client hanging up early is not our problem."""


@contextmanager
def refusing_proxy() -> Iterator[str]:
    """Run an HTTP proxy on 127.0.0.1 that answers everything `403`, without a lookup or a
    connection of its own, and notes each request it refused in the active offline guards
    (`OfflineGuard.refused`); yield its URL."""
    server = _RefusingServer(("127.0.0.1", 0), _RefusingHandler)
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True
    )
    thread.start()
    try:
        host, port = server.server_address[:2]
        yield f"http://{_host_text(host)}:{port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def proxy_env(url: str) -> dict[str, str]:
    """Environment variables sending a subprocess's HTTP(S) traffic to `url`."""
    env: dict[str, str] = {}
    for name in ("http_proxy", "https_proxy", "all_proxy"):
        env[name] = env[name.upper()] = url
    env["no_proxy"] = env["NO_PROXY"] = "localhost,127.0.0.1,::1"
    return env
