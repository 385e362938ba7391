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


# --- peers ---------------------------------------------------------------------------------


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
            except (TimeoutError, socket.timeout):
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
        except BaseException as e:  # noqa: BLE001 - reported to the test
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


# --- handlers ------------------------------------------------------------------------------


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
        except (TimeoutError, socket.timeout):
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


# --- bulk transfer and half-close -------------------------------------------------------------


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
            except BaseException as e:  # noqa: BLE001
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
