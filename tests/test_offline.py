"""The offline guard. Every blocking check runs in a network namespace with no route out."""

from __future__ import annotations

import asyncio
import errno
import http.client
import json
import pickle
import shutil
import socket
import ssl
import subprocess
import sys
import textwrap
import threading
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from opswald import offline
from opswald.offline import OfflineError, OfflineGuard, is_local_host, refusing_proxy

PATCHED_FUNCS = ("getaddrinfo", "gethostbyname", "gethostbyname_ex", "gethostbyaddr", "getnameinfo")
PATCHED_METHODS = (
    *("connect", "connect_ex", "sendto", "sendmsg", "send", "sendall", "sendfile"),
    *("recv", "recv_into", "recvfrom", "recvfrom_into", "recvmsg", "recvmsg_into"),
)
SSL_METHODS = ("send", "sendall", "recv", "recv_into")


def originals() -> dict[str, object]:
    funcs = {name: getattr(socket, name) for name in PATCHED_FUNCS}
    methods = {f"socket.{n}": socket.socket.__dict__.get(n, "absent") for n in PATCHED_METHODS}
    looked_up = {f"lookup.{n}": getattr(socket.socket, n) for n in PATCHED_METHODS}
    tls = {f"ssl.{n}": ssl.SSLSocket.__dict__.get(n, "absent") for n in SSL_METHODS}
    return {**funcs, **methods, **looked_up, **tls}


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    """A TCP server socket on 127.0.0.1 that accepts one connection."""
    with socket.create_server(("127.0.0.1", 0)) as server:
        server.settimeout(5)
        yield server


# --------------------------------------------------------------------------- in-process


def test_loopback_still_works_under_the_guard(listener: socket.socket) -> None:
    port = listener.getsockname()[1]
    with OfflineGuard() as guard:
        found = socket.getaddrinfo("localhost", port, type=socket.SOCK_STREAM)
        assert found
        assert all(is_local_host(info[4][0]) for info in found)
        assert socket.gethostbyname_ex("LOCALHOST") == ("LOCALHOST", [], ["127.0.0.1"])
        assert socket.gethostbyname("127.0.0.1") == "127.0.0.1"
        with socket.create_connection(("127.0.0.1", port), timeout=5) as client:
            conn, _ = listener.accept()
            with conn:
                client.sendall(b"ping")
                assert conn.recv(4) == b"ping"
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.bind(("127.0.0.1", 0))
            udp.sendto(b"x", udp.getsockname())
            assert udp.recv(1) == b"x"
    assert guard.blocked == []


def test_loopback_ipv6_and_unix_sockets_are_allowed(tmp_path: Path) -> None:
    path = str(tmp_path / "s")
    with OfflineGuard(), socket.socket(socket.AF_UNIX) as server:
        server.bind(path)
        server.listen()
        with socket.socket(socket.AF_UNIX) as client:
            client.connect(path)
    if socket.has_ipv6:
        try:
            server6 = socket.create_server(("::1", 0), family=socket.AF_INET6)
        except OSError:
            return  # no IPv6 loopback in this environment
        with server6, OfflineGuard():
            port = server6.getsockname()[1]
            socket.create_connection(("::1", port), timeout=5).close()


def test_asyncio_to_loopback_under_the_guard(listener: socket.socket) -> None:
    port = listener.getsockname()[1]

    async def run() -> None:
        _, writer = await asyncio.open_connection("localhost", port)
        writer.close()
        await writer.wait_closed()

    with OfflineGuard():
        asyncio.run(run())


def test_uninstall_restores_the_original_functions() -> None:
    before = originals()
    guard = OfflineGuard()
    guard.install()
    try:
        assert socket.getaddrinfo is not before["getaddrinfo"]
        assert socket.socket.connect is not before["lookup.connect"]
    finally:
        guard.uninstall()
    after = originals()
    for name, value in before.items():
        assert after[name] is value, name
    with pytest.raises(RuntimeError):
        guard.uninstall()


def test_guards_nest_and_the_last_one_restores() -> None:
    before = originals()
    outer, inner = OfflineGuard(), OfflineGuard()
    with outer:
        patched = socket.getaddrinfo
        with inner, inner:
            assert socket.getaddrinfo is patched
            assert inner.active
        assert not inner.active
        assert socket.getaddrinfo is patched
    assert originals() == before


def test_guard_is_thread_safe() -> None:
    before = originals()
    guard = OfflineGuard()

    def churn() -> None:
        for _ in range(200):
            with guard, OfflineGuard():
                pass

    threads = [threading.Thread(target=churn) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=10)
    assert originals() == before


def test_blocked_attempts_are_noted_without_touching_the_network() -> None:
    offline.check_address("api.openai.com", 443)  # no guard: nothing happens
    with OfflineGuard() as guard:
        with pytest.raises(OfflineError) as err:
            offline.check_address("api.openai.com", 443)
        offline.check_address("127.0.0.5", 80)
    assert guard.blocked == [("api.openai.com", 443)]
    assert str(err.value) == (
        "opswald replay is offline: blocked connection to api.openai.com:443. Make that "
        "call inside an @opswald.tool function, whose answer a recording keeps, and record "
        "again with --opswald-mode=rerecord; or run with --opswald-mode=live to reach the "
        "network."
    )
    assert isinstance(err.value, ConnectionRefusedError)
    assert err.value.errno == errno.ECONNREFUSED
    copy = pickle.loads(pickle.dumps(err.value))
    assert (copy.host, copy.port, str(copy)) == ("api.openai.com", 443, str(err.value))


@pytest.mark.parametrize(
    ("host", "local"),
    [
        ("localhost", True),
        ("LOCALHOST.", True),
        ("127.0.0.1", True),
        ("127.8.9.10", True),
        ("::1", True),
        ("::ffff:127.0.0.1", True),
        # the other spellings of an IPv4 address (inet_aton's), read without a lookup
        ("127.1", True),
        ("127.0.1", True),
        ("0x7f.1", True),
        ("2130706433", True),
        ("017700000001", True),
        ("128.1", False),
        ("2130706432", True),  # 127.0.0.0
        ("3232235521", False),  # 192.168.0.1
        ("127.1 evil.example", False),
        ("0x7f.1.evil", False),
        (b"127.0.0.1", True),
        (None, True),
        ("api.openai.com", False),
        ("10.0.0.1", False),
        ("::ffff:8.8.8.8", False),
        ("localhost.example.com", False),
        ("<broadcast>", False),
    ],
)
def test_is_local_host(host: object, local: bool) -> None:
    assert is_local_host(host) is local


def test_refusing_proxy_answers_403() -> None:
    # The guard is active too, so even a client ignoring the proxy could send nothing out.
    with refusing_proxy() as url, OfflineGuard() as guard:
        assert url.startswith("http://127.0.0.1:")
        with httpx.Client(proxy=url) as client:
            reply = client.get("http://example.invalid/")
            posted = client.post("http://example.invalid/v1/chat", json={"q": 1})
    assert (reply.status_code, posted.status_code) == (403, 403)
    assert "opswald replay is offline" in reply.text
    assert guard.blocked == []


def test_refusing_proxy_through_proxy_env(monkeypatch: pytest.MonkeyPatch) -> None:
    with refusing_proxy() as url, OfflineGuard() as guard:
        for name, value in offline.proxy_env(url).items():
            monkeypatch.setenv(name, value)
        # a fresh opener reads the proxy variables now (urlopen's global one caches them)
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.build_opener().open("http://example.invalid/", timeout=5)
        err.value.close()
        host, port = url.removeprefix("http://").split(":")
        conn = http.client.HTTPConnection(host, int(port), timeout=5)
        try:
            conn.request("CONNECT", "example.invalid:443")  # what HTTPS through a proxy does
            refused = conn.getresponse()
            assert (refused.status, refused.read()) == (403, offline.PROXY_BODY)
        finally:
            conn.close()
    assert err.value.code == 403
    assert guard.blocked == []
    # noted for the failure: method, host and path (a tunnel's path is never seen)
    assert guard.refused == ["GET http://example.invalid/", "CONNECT example.invalid:443"]


def test_refusing_proxy_notes_requests_without_their_secrets() -> None:
    """A query string, a fragment and credentials may hold keys: the note leaves them out,
    and a note is one line whatever the request line held."""
    with refusing_proxy() as url, OfflineGuard() as guard:
        with httpx.Client(proxy=url) as client:
            client.get("http://user:pw@rates.invalid:8080/v1/rates?api_key=sk-x#frag")
            client.delete("http://rates.invalid/v1/a%0Ab")
    assert guard.refused == [
        "GET http://rates.invalid:8080/v1/rates",
        "DELETE http://rates.invalid/v1/a%0Ab",
    ]
    assert offline.blocked_note([], guard.refused) == (
        "opswald replay is offline: the proxy refused the agent's requests "
        "GET http://rates.invalid:8080/v1/rates, DELETE http://rates.invalid/v1/a%0Ab"
    )


@pytest.mark.parametrize(
    ("method", "target", "host", "shown"),
    [
        ("CONNECT", "user:pw@fx.invalid:443", None, "CONNECT fx.invalid:443"),
        ("get", "/plain?token=x", "gw.invalid:81", "GET http://gw.invalid:81/plain"),
        ("GET", "http://[2001:db8::1]:8080", None, "GET http://[2001:db8::1]:8080/"),
        ("POST", "http://a.invalid/x y\tz", None, "POST http://a.invalid/x%20y%09z"),
        ("GET", "http://a.invalid/" + "p" * 100, None, "GET http://a.invalid/" + "p" * 78 + "…"),
        ("GET", "http://[bad/x?key=1", None, "GET http://[bad/x"),  # not a URL
    ],
)
def test_proxy_request_names_a_request_without_secrets(
    method: str, target: str, host: str | None, shown: str
) -> None:
    assert offline.proxy_request(method, target, host) == shown


def test_a_refusing_proxy_notes_only_while_a_guard_is_active() -> None:
    guard = OfflineGuard()
    with refusing_proxy() as url, httpx.Client(proxy=url) as client:
        assert client.get("http://before.invalid/").status_code == 403
        with guard:
            assert client.get("http://during.invalid/").status_code == 403
        assert client.get("http://after.invalid/").status_code == 403
    assert guard.refused == ["GET http://during.invalid/"]


# --------------------------------------------------------------------------- network namespace

CHILD = textwrap.dedent(
    """
    import asyncio, errno, json, socket, sys, urllib.request

    # Refuse to try anything unless this namespace has no interface but loopback.
    names = [name for _, name in socket.if_nameindex()]
    if names != ["lo"]:
        print(json.dumps({"isolated": names}))
        sys.exit(3)
    with open("/proc/net/route") as f:
        if len(f.read().strip().splitlines()) > 1:
            print(json.dumps({"isolated": "routes"}))
            sys.exit(3)

    import httpx, httpx2
    from opswald.offline import OfflineError, OfflineGuard

    def chain(exc):
        seen = []
        while exc is not None and len(seen) < 20:
            seen.append(exc)
            exc = exc.__cause__ or exc.__context__ or getattr(exc, "reason", None)
            exc = exc if isinstance(exc, BaseException) else None
        return seen

    def check(name, host, fn):
        try:
            fn()
        except BaseException as exc:
            links = chain(exc)
            guard = [e for e in links if isinstance(e, OfflineError)]
            result = {
                "name": name,
                "raised": type(exc).__name__,
                "by_guard": bool(guard),
                "host_named": bool(guard) and host in str(guard[0]) and host in str(exc),
                "message": str(exc),
                "errnos": [getattr(e, "errno", None) for e in links],
            }
        else:
            result = {"name": name, "raised": None}
        print(json.dumps(result), flush=True)

    def udp():
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.sendto(b"x", ("8.8.8.8", 53))

    def udp_msg():
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.sendmsg([b"x"], [], 0, ("8.8.4.4", 53))

    def connect_ex():
        with socket.socket() as s:
            rc = s.connect_ex(("93.184.216.34", 80))
        ok = rc == errno.ECONNREFUSED and guard.blocked[-1] == ("93.184.216.34", 80)
        print(json.dumps({"name": "connect_ex", "raised": f"returned {rc}", "by_guard": ok,
                          "host_named": ok, "message": "", "errnos": [rc]}), flush=True)

    def aio(host):
        async def go():
            await asyncio.wait_for(asyncio.open_connection(host, 443), 10)
        asyncio.run(go())

    def aio_resolve():
        async def go():
            await asyncio.get_running_loop().getaddrinfo("api.anthropic.com", 443)
        asyncio.run(go())

    def aio_udp():
        async def go():
            loop = asyncio.get_running_loop()
            t, _ = await loop.create_datagram_endpoint(
                asyncio.DatagramProtocol, remote_addr=("9.9.9.9", 53))
            t.close()
        asyncio.run(go())

    guard = OfflineGuard()
    with guard:
        check("getaddrinfo", "api.openai.com", lambda: socket.getaddrinfo("api.openai.com", 443))
        check("gethostbyname", "example.com", lambda: socket.gethostbyname("example.com"))
        check("gethostbyname_ex", "example.org", lambda: socket.gethostbyname_ex("example.org"))
        check("gethostbyaddr", "8.8.8.8", lambda: socket.gethostbyaddr("8.8.8.8"))
        check("create_connection", "93.184.216.34",
              lambda: socket.create_connection(("93.184.216.34", 80), timeout=5))
        check("connect_by_name", "example.net",
              lambda: socket.socket().connect(("example.net", 80)))
        connect_ex()
        check("udp_sendto", "8.8.8.8", udp)
        check("udp_sendmsg", "8.8.4.4", udp_msg)
        check("urllib", "example.com",
              lambda: urllib.request.urlopen("http://example.com", timeout=5))
        check("httpx", "api.openai.com",
              lambda: httpx.get("https://api.openai.com/v1/models", timeout=5))
        check("httpx2", "api.anthropic.com",
              lambda: httpx2.get("https://api.anthropic.com/v1/models", timeout=5))
        check("asyncio_ip", "1.1.1.1", lambda: aio("1.1.1.1"))
        check("asyncio_name", "api.openai.com", lambda: aio("api.openai.com"))
        check("loop_getaddrinfo", "api.anthropic.com", aio_resolve)
        check("asyncio_udp", "9.9.9.9", aio_udp)
    print(json.dumps({"blocked": len(guard.blocked)}))
    """
)

EXPECTED = [
    "getaddrinfo",
    "gethostbyname",
    "gethostbyname_ex",
    "gethostbyaddr",
    "create_connection",
    "connect_by_name",
    "connect_ex",
    "udp_sendto",
    "udp_sendmsg",
    "urllib",
    "httpx",
    "httpx2",
    "asyncio_ip",
    "asyncio_name",
    "loop_getaddrinfo",
    "asyncio_udp",
]


def _works(prefix: list[str]) -> bool:
    try:
        done = subprocess.run([*prefix, "true"], capture_output=True, timeout=20, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


@contextmanager
def no_route_namespace() -> Iterator[list[str]]:
    """A command prefix running its command in a fresh network namespace (no routes)."""
    if shutil.which("unshare") and _works(["unshare", "-rn"]):
        yield ["unshare", "-rn"]
        return
    name = f"opswald-test-{uuid.uuid4().hex[:8]}"
    if shutil.which("ip") and _works(["ip", "netns", "add", name]):
        try:
            yield ["ip", "netns", "exec", name]
        finally:
            subprocess.run(["ip", "netns", "delete", name], timeout=20, check=False)
        return
    pytest.fail(
        "cannot create a network namespace: neither `unshare -rn` nor `ip netns add` works "
        "here, so the offline guard cannot be tested without risking real packets. "
        "Run the tests as root or with unprivileged user namespaces enabled."
    )


def _python_without_routes(script: str) -> subprocess.CompletedProcess[str]:
    """`python -c script` in a network namespace with no route out."""
    with no_route_namespace() as prefix:
        return subprocess.run(
            [*prefix, sys.executable, "-c", script],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )


def test_guard_blocks_everything_in_a_namespace_without_routes() -> None:
    done = _python_without_routes(CHILD)
    assert done.returncode == 0, done.stdout + done.stderr
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    results = {r["name"]: r for r in lines if "name" in r}
    assert list(results) == EXPECTED
    for name, result in results.items():
        assert result["raised"] is not None, f"{name}: nothing was blocked"
        assert result["by_guard"], f"{name}: not blocked by the guard: {result}"
        assert result["host_named"], f"{name}: host not named: {result['message']}"
        # the netns itself would say ENETUNREACH / EAI_*: the guard's refusal came first
        assert errno.ENETUNREACH not in result["errnos"], result
    assert lines[-1] == {"blocked": len(EXPECTED)}
    assert "opswald replay is offline" in results["httpx"]["message"]
    assert "--opswald-mode=rerecord" in results["getaddrinfo"]["message"]


def test_real_sdks_reach_a_loopback_provider_under_the_guard() -> None:
    import anthropic
    import openai

    from fakeprovider import FakeProvider

    with FakeProvider(fail_first=[500]) as fp, OfflineGuard() as guard:
        with openai.OpenAI(base_url=fp.base_url + "/v1", api_key="sk-t") as client:
            chat = client.chat.completions.create(model="m", messages=[])
        with anthropic.Anthropic(
            base_url=fp.base_url.replace("127.0.0.1", "localhost"), api_key="sk-ant-t"
        ) as ant:
            msg = ant.messages.create(model="m", max_tokens=5, messages=[])
    assert chat.choices[0].message.content == "done"
    assert msg.content[0].type == "text"
    assert guard.blocked == []


# A namespace whose loopback also carries 198.51.100.1 (TEST-NET-2): a "remote" host that
# is reached without a packet leaving the namespace, which has no other interface.
REMOTE = "198.51.100.1"

KEEPALIVE_CHILD = textwrap.dedent(
    """
    import json, socket, ssl, sys, tempfile, threading, time
    names = [name for _, name in socket.if_nameindex()]
    with open("/proc/net/route") as f:
        routes = len(f.read().strip().splitlines())
    if names != ["lo"] or routes > 1:
        print(json.dumps({"isolated": [names, routes]}))
        sys.exit(3)

    import httpx
    from opswald.offline import OfflineError, OfflineGuard

    got = {}
    done = threading.Event()

    def handle(conn, n):
        with conn:
            while data := conn.recv(65536):
                got[n] = got.get(n, b"") + data
                if data.startswith(b"GET"):
                    conn.sendall(b"HTTP/1.1 200 OK\\r\\ncontent-length: 2\\r\\n\\r\\nup")
                if got[n].endswith(b"END"):
                    done.set()

    accepted = []

    def serve(server):
        n = 0
        while True:
            conn, _ = server.accept()
            n += 1
            threading.Thread(target=handle, args=(conn, n), daemon=True).start()
            accepted.append(n)

    remote = socket.create_server((sys.argv[1], 0))
    local = socket.create_server(("127.0.0.1", 0))
    for server in (remote, local):
        threading.Thread(target=serve, args=(server,), daemon=True).start()
    port = remote.getsockname()[1]

    # opened before the replay, as a module-level client of an earlier test would be
    client = httpx.Client(timeout=5)
    assert client.get(f"http://{sys.argv[1]}:{port}/").text == "up"
    tcp = socket.create_connection((sys.argv[1], port), timeout=5)
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.connect((sys.argv[1], 9))
    tls = ssl.create_default_context().wrap_socket(
        socket.create_connection((sys.argv[1], port), timeout=5),
        server_hostname="x", do_handshake_on_connect=False)
    beat = socket.create_connection((sys.argv[1], port), timeout=5)
    near = socket.create_connection(local.getsockname())
    pair = socket.socketpair()
    # every connection accepted, and its handler started, before the replay: a handler
    # started under the guard would be taken for a thread of the agent's (a loaded machine
    # may accept late)
    for _ in range(500):
        if len(accepted) >= 5:  # client, tcp, tls, beat; near
            break
        time.sleep(0.01)
    # a thread older than the replay (a fixture's heartbeat): its own connection is not
    # the agent's and keeps working while the guard is on
    go, beaten = threading.Event(), {}

    def heartbeat():
        go.wait(10)
        try:
            beat.sendall(b"beat")
            beaten["ok"] = True
        except BaseException as exc:
            beaten["ok"] = repr(exc)

    elder = threading.Thread(target=heartbeat, daemon=True)
    elder.start()

    def in_a_new_thread(fn):
        failed = []
        def body():
            try:
                fn()
            except BaseException as exc:
                failed.append(exc)
        t = threading.Thread(target=body)
        t.start()
        t.join(10)
        if failed:
            raise failed[0]

    def check(name, fn):
        try:
            fn()
        except BaseException as exc:
            seen, e = [], exc
            while e is not None and len(seen) < 20:
                seen.append(e)
                e = e.__cause__ or e.__context__
            guard_errs = [x for x in seen if isinstance(x, OfflineError)]
            print(json.dumps({"name": name, "by_guard": bool(guard_errs),
                              "message": str(guard_errs[0] if guard_errs else exc)}), flush=True)
        else:
            print(json.dumps({"name": name, "by_guard": False, "message": "sent"}), flush=True)

    with tempfile.TemporaryFile() as f:
        f.write(b"file")
        f.flush()
        with OfflineGuard() as guard:
            check("send", lambda: tcp.send(b"send"))
            check("sendall", lambda: tcp.sendall(b"sendall"))
            check("sendfile", lambda: tcp.sendfile(f, 0))
            check("sendmsg", lambda: tcp.sendmsg([b"sendmsg"]))
            check("udp_send", lambda: udp.send(b"x"))
            check("tls_sendall", lambda: tls.sendall(b"x"))
            check("tls_send", lambda: tls.send(b"x"))
            check("recv", lambda: tcp.recv(1))
            check("httpx_keepalive", lambda: client.get(f"http://{sys.argv[1]}:{port}/"))
            # a thread the agent starts is the agent's
            check("new_thread_send", lambda: in_a_new_thread(lambda: tcp.sendall(b"x")))
            go.set()
            elder.join(10)
            near.sendall(b"near")
            pair[0].sendall(b"pair")
            allowed = pair[1].recv(10) == b"pair"
    tcp.sendall(b"END")  # after the guard: this connection's first bytes, if none went before
    done.wait(10)
    for _ in range(100):  # the heartbeat's bytes come on a connection of their own
        if b"beat" in got.values():
            break
        time.sleep(0.05)
    print(json.dumps({"first": got.get(2, b"").decode(), "allowed": allowed,
                      "blocked": len(guard.blocked), "elder": beaten.get("ok"),
                      "beat": "beat" if b"beat" in got.values() else ""}), flush=True)
    """
)

KEEPALIVE_EXPECTED = [
    "send",
    "sendall",
    "sendfile",
    "sendmsg",
    "udp_send",
    "tls_sendall",
    "tls_send",
    "recv",
    "httpx_keepalive",
    "new_thread_send",
]


def test_a_connection_opened_before_the_guard_sends_nothing_under_it() -> None:
    """A keep-alive connection (a module-level client an earlier test used) reaches its
    host without a new connect: sending on it, and reading from it, is refused while the
    guard is active, also from a thread started under it; loopback and unix sockets still
    work, and so does a connection of a thread older than the guard (a fixture's
    heartbeat), which is not the agent's."""
    with no_route_namespace() as prefix:
        script = (
            f'ip link set lo up && ip addr add {REMOTE}/32 dev lo && exec "$0" -c "$1" {REMOTE}'
        )
        done = subprocess.run(
            [*prefix, "sh", "-c", script, sys.executable, KEEPALIVE_CHILD],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert done.returncode == 0, done.stdout + done.stderr
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    results = {r["name"]: r for r in lines if "name" in r}
    assert list(results) == KEEPALIVE_EXPECTED
    for name, result in results.items():
        assert result["by_guard"], f"{name}: not refused by the guard: {result}"
        assert f"blocked connection to {REMOTE}:" in result["message"], result
    assert lines[-1]["first"] == "END", "nothing went out on that connection before"
    assert lines[-1]["allowed"] and lines[-1]["blocked"] >= len(KEEPALIVE_EXPECTED)
    # the thread that predates the guard sent on its own connection, and it arrived
    assert lines[-1]["elder"] is True, lines[-1]
    assert lines[-1]["beat"] == "beat", lines[-1]


LEFT_RUNNING_CHILD = textwrap.dedent(
    """
    import json, socket, threading

    import opswald
    from opswald import files
    from opswald.engine.run import RunSettings, execute, judge

    ORIGINAL = socket.socket.connect
    go, out = threading.Event(), {}


    @opswald.tool
    def hello(x):
        return "hi " + x


    def attempt():
        try:
            socket.create_connection(("192.0.2.1", 80), timeout=5).close()
            return "connected"
        except OSError as exc:
            return f"{type(exc).__name__} {exc.errno}"


    def late():
        go.wait(10)
        out["late"] = attempt()


    def agent(_):
        hello(x="a")
        threading.Thread(target=late, name="late-caller", daemon=True).start()
        return "ok"


    golden = files.loads(
        "name: leaves\\ninput: null\\nsteps:\\n"
        "  - {step: 1, type: tool_call, tool: hello, input: {x: a}, output: hi a}\\n"
        "output: ok\\n"
    )
    run = execute(golden, agent, settings=RunSettings())
    out["passed"] = judge(golden, run).passed
    out["named"] = list(run.left_running)
    out["other"] = attempt()  # the test's own thread, after the replay
    go.set()
    for thread in threading.enumerate():
        if thread.name == "late-caller":
            thread.join(10)
    out["on_while_held"] = socket.socket.connect is not ORIGINAL
    again = execute(golden, lambda _: hello(x="a") and "ok", settings=RunSettings())
    out["again"] = judge(golden, again).passed
    out["off_after"] = socket.socket.connect is ORIGINAL
    print(json.dumps(out))
    """
)


def test_a_thread_the_agent_left_running_stays_offline_until_it_ends() -> None:
    """A thread the agent started and left running calls out after its replay ended: the
    guard stays on for it (refused as in the replay), not for the rest of the process
    (the test's own thread reaches the namespace's missing route), and comes off with
    the next replay once that thread has ended. Run where no route leads out."""
    done = _python_without_routes(LEFT_RUNNING_CHILD)
    assert done.returncode == 0, done.stdout + done.stderr
    out = json.loads(done.stdout.splitlines()[-1])
    assert out["passed"] and out["again"], out
    assert out["named"] == ["late-caller"], out
    assert out["late"] == f"OfflineError {errno.ECONNREFUSED}", out
    assert out["other"] == f"OSError {errno.ENETUNREACH}", out
    assert out["on_while_held"] and out["off_after"], out
