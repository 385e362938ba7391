"""The L4 ``tcp_proxy`` with real peers: plain socket servers on 127.0.0.1 (and ::1), each
connection handled on its own thread, and a blocking socket client in the test.

Every network wait is bounded: sockets carry timeouts, loops count and check a deadline.
"""

from __future__ import annotations

import hashlib
import json
import random
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.conftest import split_addr

MiB = 1 << 20
CHUNK = 256 << 10


# --- peers -----------------------------------------------------------------------------------


class Peer:
    """A threaded TCP server on ``host``:0 running ``handler(conn)`` for every connection.

    Handler exceptions are kept in ``errors`` (the test decides whether they matter);
    ``results`` is free for handlers to report into.
    """

    def __init__(self, handler: Callable[[socket.socket], Any], host: str = "127.0.0.1") -> None:
        fam = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.sock = socket.socket(fam, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, 0))
        self.sock.listen(256)
        self.sock.settimeout(0.1)
        self.host = host
        self.port = int(self.sock.getsockname()[1])
        self.handler = handler
        self.accepted = 0
        self.errors: list[BaseException] = []
        self.results: list[Any] = []
        self.conns: list[socket.socket] = []
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._acceptor = threading.Thread(target=self._accept_loop, daemon=True)
        self._acceptor.start()

    @property
    def address(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    def _accept_loop(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.accepted += 1
            self.conns.append(conn)
            t = threading.Thread(target=self._run, args=(conn,), daemon=True)
            self._threads.append(t)
            t.start()

    def _run(self, conn: socket.socket) -> None:
        conn.settimeout(30)
        try:
            self.handler(conn)
        except BaseException as e:  # reported to the test
            self.errors.append(e)
        finally:
            conn.close()

    def join(self, timeout: float = 30) -> None:
        """Wait for the handlers started so far to return."""
        deadline = time.monotonic() + timeout
        for t in list(self._threads):
            t.join(max(0.0, deadline - time.monotonic()))
        assert not any(t.is_alive() for t in self._threads), "peer handler still running"

    def close(self) -> None:
        self._stop.set()
        self._acceptor.join(5)
        self.sock.close()
        for c in self.conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


@pytest.fixture
def peer() -> Iterator[Callable[..., Peer]]:
    started: list[Peer] = []

    def start(handler: Callable[[socket.socket], Any], host: str = "127.0.0.1") -> Peer:
        p = Peer(handler, host)
        started.append(p)
        return p

    yield start
    for p in started:
        p.close()


def closed_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on (bound then released)."""
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(fam, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


# --- handlers --------------------------------------------------------------------------------


def echo(conn: socket.socket) -> None:
    while data := conn.recv(CHUNK):
        conn.sendall(data)


def named_echo(name: bytes) -> Callable[[socket.socket], None]:
    """Greets with ``name + b"\\n"`` (so the client learns which host it reached), then echoes."""

    def handler(conn: socket.socket) -> None:
        conn.sendall(name + b"\n")
        echo(conn)

    return handler


def recv_exactly(sock: socket.socket, n: int) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ConnectionError(f"EOF after {len(buf)} of {n} bytes")
        buf += chunk
    return bytes(buf)


def recv_to_eof(sock: socket.socket, limit: int = 1 << 30) -> tuple[int, str]:
    """Read until EOF: (byte count, sha256 hex). The socket's timeout bounds every read."""
    h = hashlib.sha256()
    n = 0
    while n <= limit:
        chunk = sock.recv(CHUNK)
        if not chunk:
            return n, h.hexdigest()
        h.update(chunk)
        n += len(chunk)
    raise AssertionError(f"more than {limit} bytes")


def send_random(sock: socket.socket, total: int, seed: int) -> str:
    """Send ``total`` pseudo-random bytes; the sha256 hex of what was sent."""
    rnd = random.Random(seed)
    h = hashlib.sha256()
    left = total
    while left:
        block = rnd.randbytes(min(MiB, left))
        h.update(block)
        sock.sendall(block)
        left -= len(block)
    return h.hexdigest()


def ends_within(sock: socket.socket, timeout: float) -> bool:
    """True when the connection ends (EOF or reset) within ``timeout``, discarding data."""
    deadline = time.monotonic() + timeout
    while (left := deadline - time.monotonic()) > 0:
        sock.settimeout(left)
        try:
            if not sock.recv(65536):
                return True
        except (ConnectionResetError, BrokenPipeError):
            return True
        except TimeoutError:
            return False
    return False


def tcp_config(endpoints: list[Any], *, lb: str = "round_robin",
               **listener: Any) -> dict[str, Any]:
    return {
        "listeners": [
            {"name": "tcp_in", "address": "127.0.0.1:0", "protocol": "tcp", "cluster": "c",
             **listener}
        ],
        "clusters": [
            {"name": "c", "protocol": "tcp", "endpoints": endpoints, "lb": lb,
             "connect_timeout": "1s"}
        ],
    }


def connect(p: Any, name: str = "tcp_in", timeout: float = 10) -> socket.socket:
    return socket.create_connection(p.addr(name), timeout=timeout)


def read_access_log(path: Path, count: int, timeout: float = 5) -> list[dict[str, Any]]:
    """The first ``count`` lines of a JSON access log (the proxy writes a session's line
    when both sides are closed, which may be just after the client saw EOF)."""
    deadline = time.monotonic() + timeout
    while True:
        lines = path.read_text().splitlines() if path.exists() else []
        if len(lines) >= count or time.monotonic() > deadline:
            return [json.loads(line) for line in lines]
        time.sleep(0.02)


# --- bulk transfer and half-close ------------------------------------------------------------


def test_100mb_each_way_with_half_close(proxy: Any, peer: Any) -> None:
    """100 MiB up, then the client half-closes; the server sees EOF and only then sends
    100 MiB back, which the client reads to EOF. Checksums match both ways."""
    size = 100 * MiB

    def sink_then_source(conn: socket.socket) -> None:
        n, digest = recv_to_eof(conn)  # returns on the client's FIN, relayed by the proxy
        peer_srv.results.append(("received", n, digest))
        sent = send_random(conn, size, seed=2)
        peer_srv.results.append(("sent", sent))

    peer_srv = peer(sink_then_source)
    p = proxy(tcp_config([peer_srv.address]))
    with connect(p, timeout=30) as c:
        sent = send_random(c, size, seed=1)
        c.shutdown(socket.SHUT_WR)
        n, got = recv_to_eof(c)
    peer_srv.join()
    assert not peer_srv.errors
    assert peer_srv.results[0] == ("received", size, sent)
    assert (n, got) == (size, peer_srv.results[1][1])


def test_full_duplex_echo(proxy: Any, peer: Any) -> None:
    """Sending and receiving at once (an echo): 64 MiB each way, both directions under
    backpressure at the same time, no deadlock, no byte lost or reordered."""
    size = 64 * MiB
    srv = peer(echo)
    p = proxy(tcp_config([srv.address]))
    with connect(p, timeout=30) as c:
        sent: list[str] = []
        errors: list[BaseException] = []

        def sender() -> None:
            try:
                sent.append(send_random(c, size, seed=3))
                c.shutdown(socket.SHUT_WR)
            except BaseException as e:  # reported to the test
                errors.append(e)

        t = threading.Thread(target=sender, daemon=True)
        t.start()
        n, got = recv_to_eof(c)
        t.join(30)
    assert not errors and not t.is_alive()
    assert (n, got) == (size, sent[0])
    srv.join()
    assert not srv.errors


def test_server_first_half_close(proxy: Any, peer: Any) -> None:
    """The upstream greets and closes its write side; the client reads the greeting and EOF,
    and can still send: the upstream receives it all."""

    def greeter(conn: socket.socket) -> None:
        conn.sendall(b"220 hello\r\n")
        conn.shutdown(socket.SHUT_WR)
        srv.results.append(recv_to_eof(conn))

    srv = peer(greeter)
    p = proxy(tcp_config([srv.address]))
    payload = b"after your FIN " * 10000
    with connect(p) as c:
        greeting = b""
        while chunk := c.recv(100):
            greeting += chunk
        assert greeting == b"220 hello\r\n"  # and then EOF
        c.sendall(payload)
        c.shutdown(socket.SHUT_WR)
        assert ends_within(c, 5)
    srv.join()
    assert not srv.errors
    assert srv.results == [(len(payload), hashlib.sha256(payload).hexdigest())]


def test_upstream_banner_then_close(proxy: Any, peer: Any) -> None:
    """An upstream that writes a line and closes at once (before the proxy may even have
    finished setting the session up): the client still gets the line, then EOF."""

    def banner(conn: socket.socket) -> None:
        conn.sendall(b"busy, try later\r\n")

    srv = peer(banner)
    p = proxy(tcp_config([srv.address]))
    for _ in range(5):
        with connect(p) as c:
            assert recv_to_eof(c)[0] == len(b"busy, try later\r\n")


# --- hosts, failover, load balancing ---------------------------------------------------------


def hello_through(p: Any, payload: bytes = b"ping") -> bytes:
    """One connection to a ``named_echo`` upstream: the host's name (after an echo check)."""
    with connect(p) as c:
        f = c.makefile("rb")
        name = f.readline().strip()
        c.sendall(payload)
        assert recv_exactly(c, len(payload)) == payload
        return bytes(name)


def test_connect_failure_tries_next_host(proxy: Any, peer: Any) -> None:
    """Two endpoints, one of them a closed port: every connection still reaches the live
    one (the LB starts at a random position, so some try the dead host first)."""
    srv = peer(named_echo(b"live"))
    dead = f"127.0.0.1:{closed_port()}"
    p = proxy(tcp_config([dead, srv.address]))
    assert [hello_through(p) for _ in range(10)] == [b"live"] * 10
    _, body = p.admin_get("/clusters")
    hosts = {h["address"]: h for h in json.loads(body)["clusters"][0]["hosts"]}
    # Three consecutive connect failures eject the dead host (outlier detection default):
    # later connections no longer try it first.
    assert hosts[dead]["cx_connect_fail"] == 3
    assert hosts[dead]["healthy"] is False and hosts[dead]["ejections"] == 1
    assert hosts[srv.address]["cx_total"] == 10 and hosts[srv.address]["healthy"] is True


def test_outlier_detection_disabled_keeps_trying(proxy: Any, peer: Any) -> None:
    srv = peer(named_echo(b"live"))
    dead = f"127.0.0.1:{closed_port()}"
    cfg = tcp_config([dead, srv.address])
    cfg["clusters"][0]["outlier_detection"] = {"consecutive_connect_failures": 0}
    p = proxy(cfg)
    assert [hello_through(p) for _ in range(10)] == [b"live"] * 10
    _, body = p.admin_get("/clusters")
    hosts = {h["address"]: h for h in json.loads(body)["clusters"][0]["hosts"]}
    assert hosts[dead]["cx_connect_fail"] >= 4 and hosts[dead]["healthy"] is True


def test_all_hosts_down_closes_client(proxy: Any) -> None:
    dead = [f"127.0.0.1:{closed_port()}" for _ in range(2)]
    p = proxy(tcp_config(dead))
    for _ in range(3):
        with connect(p) as c:
            c.sendall(b"anyone?")
            assert ends_within(c, 3)
    assert "upstream connect failed" in p.log()


@pytest.fixture
def blackhole() -> Iterator[str]:
    """An address whose connects hang: a listener that never accepts, its queue full (the
    kernel then drops further SYNs)."""
    lsock = socket.socket()
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(0)
    addr = lsock.getsockname()
    fill = []
    for _ in range(3):
        c = socket.socket()
        c.setblocking(False)
        c.connect_ex(addr)
        fill.append(c)
    try:
        with socket.socket() as probe:
            probe.settimeout(0.3)
            probe.connect(addr)
        pytest.skip("cannot make a connect hang here (listen queue overflow not dropped)")
    except TimeoutError:
        pass
    yield f"127.0.0.1:{addr[1]}"
    for c in fill:
        c.close()
    lsock.close()


def test_connect_timeout_tries_next_host(proxy: Any, peer: Any, blackhole: str) -> None:
    srv = peer(named_echo(b"live"))
    cfg = tcp_config([blackhole, srv.address])
    cfg["clusters"][0]["connect_timeout"] = "200ms"
    p = proxy(cfg)
    assert [hello_through(p) for _ in range(4)] == [b"live"] * 4
    hosts = json.loads(p.admin_get("/clusters")[1])["clusters"][0]["hosts"]
    # Each failed try also moves the round robin on, so most connections try the
    # blackhole first (no health checking here); all of them timed out and moved on.
    assert {h["address"]: h["cx_connect_fail"] for h in hosts}[blackhole] >= 3


def test_client_leaves_while_connecting(proxy: Any, blackhole: str) -> None:
    """The client gives up while the proxy is still connecting: the session ends no later
    than the connect attempt (the downstream is not read while connecting, so its FIN is
    seen then), leaving nothing open and no traceback."""
    cfg = tcp_config([blackhole])
    cfg["clusters"][0]["connect_timeout"] = "500ms"
    p = proxy(cfg)
    for _ in range(3):
        with connect(p) as c:
            c.sendall(b"hello?")
    deadline = time.monotonic() + 5
    while p.metric("mosn_listener_cx_active", listener="tcp_in") and \
            time.monotonic() < deadline:
        time.sleep(0.02)
    assert p.metric("mosn_listener_cx_active", listener="tcp_in") == 0
    assert p.metric("mosn_listener_cx", listener="tcp_in") == 3


def test_round_robin_weights(proxy: Any, peer: Any) -> None:
    a, b = peer(named_echo(b"a")), peer(named_echo(b"b"))
    p = proxy(tcp_config([{"address": a.address, "weight": 3}, b.address]))
    names = [hello_through(p) for _ in range(40)]
    assert names.count(b"a") == 30 and names.count(b"b") == 10
    # Smooth weighted round robin: never more than three a's in a row.
    assert b"aaaa" not in b"".join(names)


@pytest.mark.parametrize("lb", ["random", "least_request"])
def test_other_lb_policies(proxy: Any, peer: Any, lb: str) -> None:
    a, b = peer(named_echo(b"a")), peer(named_echo(b"b"))
    p = proxy(tcp_config([a.address, b.address], lb=lb))
    names = [hello_through(p) for _ in range(40)]
    assert set(names) == {b"a", b"b"}  # all 40 succeeded; both hosts used


def test_least_request_balances_open_connections(proxy: Any, peer: Any) -> None:
    """least_request on a tcp cluster weighs hosts by their open sessions (Envoy counts a
    tcp_proxy connection as an active request): 100 held connections split nearly evenly
    (power of two choices keeps |a - b| <= 10 except with odds ~1e-5), and after closing
    every connection to one host, new ones mostly go to that host."""
    a, b = peer(named_echo(b"a")), peer(named_echo(b"b"))
    p = proxy(tcp_config([a.address, b.address], lb="least_request"))
    held: dict[bytes, list[socket.socket]] = {b"a": [], b"b": []}

    def open_one() -> bytes:
        c = connect(p)
        name = recv_exactly(c, 2)[:1]  # the greeting "a\n" / "b\n"
        held[name].append(c)
        return name

    try:
        names = [open_one() for _ in range(100)]
        assert abs(names.count(b"a") - names.count(b"b")) <= 10, names
        for c in held[b"a"]:
            c.close()
        held[b"a"].clear()
        # Wait until the proxy saw those sessions end (the host's counter drops).
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            hosts = json.loads(p.admin_get("/clusters")[1])["clusters"][0]["hosts"]
            if {h["address"]: h["cx_active"] for h in hosts}[a.address] == 0:
                break
            time.sleep(0.02)
        # a is behind for all 40: each pick goes to a with odds 3/4 (random: 1/2).
        names = [open_one() for _ in range(40)]
        assert names.count(b"a") > 20, names
    finally:
        for conns in held.values():
            for c in conns:
                c.close()


# --- access log ------------------------------------------------------------------------------


def test_access_log_one_line_per_connection(proxy: Any, peer: Any, tmp_path: Path) -> None:
    """Exact byte counts each way, the upstream host, a duration and the outcome."""

    def reply_then_close(conn: socket.socket) -> None:
        n, _ = recv_to_eof(conn)
        conn.sendall(b"r" * (2 * n + 1))

    srv = peer(reply_then_close)
    log_path = tmp_path / "access.log"
    p = proxy(tcp_config([srv.address], access_log={"path": str(log_path)}))
    sizes = [0, 1, 1000, 300_000]
    for n in sizes:
        with connect(p) as c:
            c.sendall(b"q" * n)
            c.shutdown(socket.SHUT_WR)
            assert recv_to_eof(c)[0] == 2 * n + 1
    dead = proxy(tcp_config([f"127.0.0.1:{closed_port()}"], access_log={"path": str(log_path)}))
    with connect(dead) as c:
        assert ends_within(c, 3)
    entries = read_access_log(log_path, len(sizes) + 1)
    assert len(entries) == len(sizes) + 1
    for n, e in zip(sizes, entries, strict=False):  # the last entry is the dead upstream's
        assert e["listener"] == "tcp_in"
        assert e["bytes_received"] == n and e["bytes_sent"] == 2 * n + 1
        assert e["upstream"] == srv.address
        assert e["result"] == "done"
        assert split_addr(e["downstream"])[0] == "127.0.0.1"
        assert 0 <= e["duration_ms"] < 10_000
    failed = entries[-1]
    assert failed["result"] == "connect_failed" and failed["upstream"] == ""
    assert failed["bytes_received"] == failed["bytes_sent"] == 0


def test_access_log_to_stdout(proxy: Any, peer: Any) -> None:
    """``access_log: true``: the same JSON line, on the process's standard output (the
    fixture captures stdout and stderr together)."""
    srv = peer(echo)
    p = proxy(tcp_config([srv.address], access_log=True))
    with connect(p) as c:
        c.sendall(b"12345")
        assert recv_exactly(c, 5) == b"12345"
    deadline = time.monotonic() + 5
    access: list[dict[str, Any]] = []
    while not access and time.monotonic() < deadline:
        time.sleep(0.02)
        lines = [json.loads(x) for x in p.log().splitlines() if x.startswith("{")]
        access = [x for x in lines if "bytes_received" in x]
    (entry,) = access
    assert entry["bytes_received"] == 5 and entry["bytes_sent"] == 5
    assert entry["upstream"] == srv.address and entry["result"] == "done"


# --- idle timeout ----------------------------------------------------------------------------


def test_idle_timeout_closes_both_sides(proxy: Any, peer: Any, tmp_path: Path) -> None:
    def wait_for_end(conn: socket.socket) -> None:
        t0 = time.monotonic()
        srv.results.append((recv_to_eof(conn), time.monotonic() - t0))

    srv = peer(wait_for_end)
    log_path = tmp_path / "access.log"
    p = proxy(tcp_config([srv.address], idle_timeout="300ms",
                         access_log={"path": str(log_path)}))
    with connect(p) as c:
        c.sendall(b"x")
        t0 = time.monotonic()
        assert ends_within(c, 5)
        assert time.monotonic() - t0 >= 0.25
    srv.join(5)
    [((n, _digest), _took)] = srv.results
    assert n == 1  # the upstream got the byte, then EOF
    (entry,) = read_access_log(log_path, 1)
    assert entry["result"] == "idle_timeout"


def test_traffic_keeps_connection_open(proxy: Any, peer: Any) -> None:
    """A ping every 100 ms under a 300 ms idle timeout: still open after 1.2 s."""
    srv = peer(echo)
    p = proxy(tcp_config([srv.address], idle_timeout="300ms"))
    with connect(p, timeout=2) as c:
        t0 = time.monotonic()
        for i in range(12):
            c.sendall(b"%02d" % i)
            assert recv_exactly(c, 2) == b"%02d" % i
            time.sleep(0.1)
        assert time.monotonic() - t0 > 1.2
        c.sendall(b"end")
        assert recv_exactly(c, 3) == b"end"


def test_one_way_traffic_keeps_connection_open(proxy: Any, peer: Any) -> None:
    """Traffic in one direction only (the upstream streams, the client never writes) is
    activity too."""

    def ticker(conn: socket.socket) -> None:
        for i in range(12):
            conn.sendall(b"%02d" % i)
            time.sleep(0.1)

    srv = peer(ticker)
    p = proxy(tcp_config([srv.address], idle_timeout="300ms"))
    with connect(p, timeout=2) as c:
        assert recv_to_eof(c)[0] == 24


# --- backpressure ----------------------------------------------------------------------------


def vm_rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def write_until_stalled(sock: socket.socket, h: Any, limit: int = 64 * MiB,
                        stall: float = 2.0, timeout: float = 30.0) -> int:
    """Write pseudo-random bytes without blocking until ``limit`` bytes are written or a
    send has been refused for ``stall`` seconds; feed what was sent to ``h``. Returns the
    count. Leaves the socket blocking again (with a 30 s timeout)."""
    sock.setblocking(False)
    rnd = random.Random(5)
    written = 0
    block = b""
    stalled_since: float | None = None
    deadline = time.monotonic() + timeout
    while written < limit and time.monotonic() < deadline:
        if not block:
            block = rnd.randbytes(min(MiB, limit - written))
        try:
            n = sock.send(block)
        except BlockingIOError:
            now = time.monotonic()
            stalled_since = stalled_since or now
            if now - stalled_since > stall:
                break
            time.sleep(0.01)
            continue
        stalled_since = None
        h.update(block[:n])
        written += n
        block = block[n:]
    sock.settimeout(30)
    return written


def assert_proxy_held_back(pid: int, base_rss: int, written: int) -> None:
    assert written < 64 * MiB, "64 MiB went into a peer that does not read"
    grown = vm_rss(pid) - base_rss
    assert grown < 60 * MiB and grown < written / 2, (
        f"proxy RSS grew {grown} bytes while the writer got {written} bytes in"
    )


def test_backpressure_client_to_upstream(proxy: Any, peer: Any) -> None:
    """An upstream that accepts but does not read: the proxy must stop reading the client
    rather than buffer what the client writes. Then the upstream reads it all, intact."""
    go = threading.Event()

    def slow_sink(conn: socket.socket) -> None:
        assert go.wait(60)
        srv.results.append(recv_to_eof(conn))

    srv = peer(slow_sink)
    p = proxy(tcp_config([srv.address]))
    with connect(p) as c:
        h = hashlib.sha256(b"warm-up")
        c.sendall(b"warm-up")  # let the session set up before the baseline
        time.sleep(0.2)
        base = vm_rss(p.proc.pid)
        written = 7 + write_until_stalled(c, h)
        assert_proxy_held_back(p.proc.pid, base, written)
        go.set()  # the upstream reads now: everything the client wrote arrives, in order
        c.shutdown(socket.SHUT_WR)
        assert ends_within(c, 30)
    srv.join()
    assert srv.results == [(written, h.hexdigest())]


def test_backpressure_upstream_to_client(proxy: Any, peer: Any) -> None:
    """The mirror case: the upstream streams, the client does not read."""
    begin, stalled = threading.Event(), threading.Event()

    def flood(conn: socket.socket) -> None:
        h = hashlib.sha256()
        recv_exactly(conn, 7)
        assert begin.wait(30)
        srv.results.append((write_until_stalled(conn, h), h.hexdigest()))
        stalled.set()
        conn.shutdown(socket.SHUT_WR)
        recv_to_eof(conn)

    srv = peer(flood)
    p = proxy(tcp_config([srv.address]))
    with connect(p) as c:
        c.sendall(b"warm-up")
        time.sleep(0.2)
        base = vm_rss(p.proc.pid)
        begin.set()
        assert stalled.wait(40)
        ((written, digest),) = srv.results
        assert_proxy_held_back(p.proc.pid, base, written)
        c.settimeout(30)
        assert recv_to_eof(c) == (written, digest)


# --- resets ----------------------------------------------------------------------------------


def rst_close(conn: socket.socket) -> None:
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    conn.close()


def test_upstream_reset_propagates(proxy: Any, peer: Any, tmp_path: Path) -> None:
    def reset_after_hello(conn: socket.socket) -> None:
        recv_exactly(conn, 5)
        rst_close(conn)

    srv = peer(reset_after_hello)
    log_path = tmp_path / "access.log"
    p = proxy(tcp_config([srv.address], access_log={"path": str(log_path)}))
    with connect(p) as c:
        c.sendall(b"hello")
        assert ends_within(c, 5)
    (entry,) = read_access_log(log_path, 1)
    assert entry["result"] == "reset"


def test_client_reset_propagates(proxy: Any, peer: Any) -> None:
    got_hello = threading.Event()

    def wait_for_end(conn: socket.socket) -> None:
        recv_exactly(conn, 5)
        got_hello.set()
        srv.results.append(ends_within(conn, 5))

    srv = peer(wait_for_end)
    p = proxy(tcp_config([srv.address]))
    c = connect(p)
    c.sendall(b"hello")
    assert got_hello.wait(5)
    rst_close(c)
    srv.join(10)
    assert srv.results == [True]


# --- IPv6 ------------------------------------------------------------------------------------


def ipv6_loopback() -> bool:
    if not socket.has_ipv6:
        return False
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


@pytest.mark.skipif(not ipv6_loopback(), reason="no IPv6 loopback (::1) on this host")
def test_ipv6_listener_and_upstream(proxy: Any, peer: Any, tmp_path: Path) -> None:
    srv = peer(named_echo(b"v6"), host="::1")
    log_path = tmp_path / "access.log"
    cfg = tcp_config([srv.address], access_log={"path": str(log_path)})
    cfg["listeners"][0]["address"] = "[::1]:0"
    p = proxy(cfg)
    assert p.addresses["tcp_in"].startswith("[::1]:")
    assert hello_through(p, b"over v6" * 1000) == b"v6"
    (entry,) = read_access_log(log_path, 1)
    assert entry["upstream"] == srv.address and entry["downstream"].startswith("[::1]:")
