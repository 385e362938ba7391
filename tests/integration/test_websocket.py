"""HTTP/1.1 Upgrade through the proxy: WebSocket tunnels with a real client and server (the
``websockets`` library), tunnels outliving the route timeout but not the idle timeout, an
upgrade the upstream refuses, and upgrades the proxy ignores (``h2c``, HTTP/2 clusters)."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.integration.conftest import PEERS, REPO, PeerProcess, free_port

websockets = pytest.importorskip("websockets")
from websockets.asyncio.client import connect  # noqa: E402
from websockets.exceptions import ConnectionClosed, InvalidStatus  # noqa: E402


@pytest.fixture
def ws_server() -> Iterator[PeerProcess]:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, str(PEERS / "ws_server.py"), str(port)],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
        env=dict(os.environ, PYTHONPATH=str(REPO)),
    )
    assert proc.stdout is not None
    line = proc.stdout.readline().decode()
    assert line.startswith("READY"), line
    peer = PeerProcess(proc, "127.0.0.1", port)
    yield peer
    peer.kill()


def ws_config(upstream: str, *, idle: str = "5m", cluster_protocol: str = "http1",
              extra_listeners: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {
        "listeners": [
            {"name": "web", "address": "127.0.0.1:0", "protocol": "http1", "route": "gw",
             "idle_timeout": idle},
            *(extra_listeners or []),
        ],
        "routes": [
            {"name": "gw", "virtual_hosts": [{"name": "all", "domains": ["*"], "rules": [
                {"match": {"prefix": "/"}, "cluster": "up", "timeout": "1s"}]}]},
            {"name": "local", "virtual_hosts": [{"name": "all", "domains": ["*"], "rules": [
                {"match": {"prefix": "/"},
                 "direct_response": {"status": 200, "body": "from h2\n"}}]}]},
        ],
        "clusters": [{"name": "up", "protocol": cluster_protocol, "endpoints": [upstream]}],
    }


def run(coro: Any) -> Any:
    return asyncio.run(asyncio.wait_for(coro, 30))


def test_websocket_echo_outlives_the_route_timeout(proxy: Any, ws_server: PeerProcess) -> None:
    p = proxy(ws_config(ws_server.address))
    host, port = p.addr("web")

    async def session() -> None:
        async with connect(f"ws://{host}:{port}/echo", max_size=8 << 20) as ws:
            for i in range(20):
                await ws.send(f"hello {i}")
                assert await ws.recv() == f"hello {i}"
            big = os.urandom(3 << 20)  # many TCP reads and writes each way
            await ws.send(big)
            assert await ws.recv() == big
            await asyncio.sleep(1.5)  # beyond the route's 1 s timeout: a tunnel has none
            await ws.send("still here")
            assert await ws.recv() == "still here"
        assert ws.close_code == 1000  # the closing handshake went through both ways

    run(session())
    # Several tunnels at once, each on its own upstream connection.

    async def one(i: int) -> str:
        async with connect(f"ws://{host}:{port}/echo") as ws:
            await ws.send(f"m{i}")
            return str(await ws.recv())

    async def many() -> list[str]:
        return list(await asyncio.gather(*(one(i) for i in range(10))))

    assert run(many()) == [f"m{i}" for i in range(10)]
    assert p.metric("mosn_listener_rq", listener="web") >= 11


def test_tunnel_idle_timeout_counts_both_directions(proxy: Any, ws_server: PeerProcess) -> None:
    p = proxy(ws_config(ws_server.address, idle="1s"))
    host, port = p.addr("web")

    async def pushed() -> int:
        # The server talks every 0.3 s, the client never does: not idle.
        n = 0
        async with connect(f"ws://{host}:{port}/push") as ws:
            deadline = time.monotonic() + 3
            while time.monotonic() < deadline:
                assert (await ws.recv()).startswith("tick")
                n += 1
        return n

    assert run(pushed()) >= 8

    async def silent() -> float:
        # Nobody talks (ping frames off): the proxy closes the tunnel after ~1-1.5 s.
        async with connect(f"ws://{host}:{port}/echo", ping_interval=None) as ws:
            t0 = time.monotonic()
            with pytest.raises(ConnectionClosed):
                await ws.recv()
            return time.monotonic() - t0

    assert 0.8 < run(silent()) < 6


def raw_exchange(host: str, port: int, requests: bytes, expect: int) -> bytes:
    """Send ``requests`` on one connection; read until ``expect`` responses are in."""
    with socket.create_connection((host, port), timeout=10) as s:
        s.sendall(requests)
        data = b""
        while data.count(b"HTTP/1.1 ") < expect or not data.endswith(b"\n"):
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
        return data


UPGRADE = (b"GET %s HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
           b"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n")


def test_upgrade_refused_by_the_upstream(proxy: Any, ws_server: PeerProcess) -> None:
    p = proxy(ws_config(ws_server.address))
    host, port = p.addr("web")

    async def refused() -> int:
        with pytest.raises(InvalidStatus) as e:
            async with connect(f"ws://{host}:{port}/reject"):
                pass
        return int(e.value.response.status_code)

    assert run(refused()) == 403
    # The connection stays HTTP: a request pipelined after the refused upgrade is served.
    after = b"GET /after HTTP/1.1\r\nHost: x\r\n\r\n"
    data = raw_exchange(host, port, UPGRADE % b"/reject" + after, 2)
    assert data.startswith(b"HTTP/1.1 403 ")
    assert data.endswith(b"plain /after\n")


def test_upgrades_the_proxy_ignores(proxy: Any, ws_server: PeerProcess) -> None:
    """``Upgrade: h2c`` is never passed on; an Upgrade to an HTTP/2 cluster becomes a plain
    request (RFC 9110 §7.8); CONNECT to an HTTP/2 cluster is answered 501."""
    h2_port = free_port()
    h2_listener = {"name": "h2", "address": f"127.0.0.1:{h2_port}", "protocol": "http2",
                   "route": "local"}
    p = proxy(ws_config(ws_server.address))
    host, port = p.addr("web")
    if shutil.which("curl"):
        r = subprocess.run(["curl", "-sS", "--http2", "-w", " %{http_version}",
                            f"http://{host}:{port}/x"], capture_output=True, text=True,
                           timeout=20)
        assert r.stdout == "plain /x\n 1.1", r.stderr
    # Upgrade to an HTTP/2 cluster: the upstream answers a plain GET; the next request on
    # the connection is served too.
    p2 = proxy(ws_config(f"127.0.0.1:{h2_port}", cluster_protocol="http2",
                         extra_listeners=[h2_listener]))
    host2, port2 = p2.addr("web")
    data = raw_exchange(host2, port2, UPGRADE % b"/ws" + b"GET /n HTTP/1.1\r\nHost: x\r\n\r\n", 2)
    assert data.startswith(b"HTTP/1.1 200 ") and data.count(b"from h2\n") == 2, data

    async def ws_to_h2() -> int:
        with pytest.raises(InvalidStatus) as e:
            async with connect(f"ws://{host2}:{port2}/ws"):
                pass
        return int(e.value.response.status_code)

    assert run(ws_to_h2()) == 200  # not a 101: the client knows it got no WebSocket
    data = raw_exchange(host2, port2, b"CONNECT example.test:443 HTTP/1.1\r\n"
                        b"Host: example.test:443\r\n\r\n", 1)
    assert data.startswith(b"HTTP/1.1 501 ") and b"CONNECT is not proxied" in data
