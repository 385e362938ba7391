"""HTTP/1.1 through the proxy: curl and httpx clients, the stdlib's http.server as origin."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from tests.integration.conftest import PEERS, REPO, PeerProcess, free_port

pytestmark = pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")


@pytest.fixture
def http_backend() -> Iterator[Any]:
    started: list[PeerProcess] = []

    def start(name: str = "backend", args: tuple[str, ...] = ()) -> PeerProcess:
        port = free_port()
        proc = subprocess.Popen(
            [sys.executable, str(PEERS / "http_backend.py"), str(port), name, *args],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
            env=dict(os.environ, PYTHONPATH=str(REPO)),
        )
        assert proc.stdout is not None
        line = proc.stdout.readline().decode()
        assert line.startswith("READY"), line
        peer = PeerProcess(proc, "127.0.0.1", port)
        started.append(peer)
        return peer

    yield start
    for p in started:
        p.kill()


def http_config(vhosts: list[dict[str, Any]], clusters: dict[str, list[str]]) -> dict[str, Any]:
    return {
        "listeners": [
            {"name": "web", "address": "127.0.0.1:0", "protocol": "http1", "route": "gw"}
        ],
        "routes": [{"name": "gw", "virtual_hosts": vhosts}],
        "clusters": [
            {"name": n, "protocol": "http1", "endpoints": eps} for n, eps in clusters.items()
        ],
    }


def simple(backend: PeerProcess) -> dict[str, Any]:
    return http_config(
        [{"name": "all", "domains": ["*"], "rules": [{"match": {"prefix": "/"}, "cluster": "b"}]}],
        {"b": [backend.address]},
    )


def curl(url: str, *args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        ["curl", "-sS", "--max-time", "20", *args, url], capture_output=True, timeout=30
    )


def base(p: Any) -> str:
    host, port = p.addr("web")
    return f"http://{host}:{port}"


def test_curl_get_and_forwarding_headers(proxy: Any, http_backend: Any) -> None:
    b = http_backend()
    p = proxy(simple(b))
    r = curl(base(p) + "/echo?x=1", "-H", "Connection: keep-alive, X-Drop", "-H", "X-Drop: 1")
    assert r.returncode == 0, r.stderr
    info = json.loads(r.stdout)
    headers = dict(info["headers"])
    assert info["path"] == "/echo?x=1" and info["method"] == "GET"
    assert headers["x-forwarded-for"] == "127.0.0.1"
    assert headers["x-forwarded-proto"] == "http"
    assert "x-request-id" in headers and "x-drop" not in headers
    assert headers["host"] == f"127.0.0.1:{p.addr('web')[1]}"


def test_httpx_keep_alive_post_and_large_bodies(proxy: Any, http_backend: Any) -> None:
    import httpx

    b = http_backend()
    p = proxy(simple(b))
    with httpx.Client(base_url=base(p), timeout=20) as c:
        for i in range(20):
            r = c.get(f"/echo?i={i}")
            assert r.status_code == 200 and r.json()["path"] == f"/echo?i={i}"
        body = os.urandom(3 << 20)
        r = c.post("/echo", content=body)
        assert r.json()["body_sha256"] == hashlib.sha256(body).hexdigest()
        r = c.get(f"/bytes/{20 << 20}")
        assert len(r.content) == 20 << 20
        r = c.get(f"/chunked/{5 << 20}")
        assert len(r.content) == 5 << 20
        r = c.head("/bytes/100")
        assert r.status_code == 200 and r.headers["content-length"] == "100" and r.content == b""
    # keep-alive: one client connection carried all of it
    assert p.metric("mosn_listener_cx", listener="web") == 1


def test_chunked_upload_with_curl(proxy: Any, http_backend: Any, tmp_path: Any) -> None:
    b = http_backend()
    p = proxy(simple(b))
    f = tmp_path / "up.bin"
    data = os.urandom(1 << 20)
    f.write_bytes(data)
    r = curl(base(p) + "/echo", "-H", "Transfer-Encoding: chunked", "--data-binary", f"@{f}")
    assert r.returncode == 0, r.stderr
    info = json.loads(r.stdout)
    assert info["body_sha256"] == hashlib.sha256(data).hexdigest()


def test_local_replies_direct_response_and_redirect(proxy: Any, http_backend: Any) -> None:
    b = http_backend()
    cfg = http_config(
        [
            {"name": "api", "domains": ["api.test"], "rules": [
                {"match": {"path": "/healthz"}, "direct_response": {"status": 200, "body": "ok\n"}},
                {"match": {"prefix": "/old/"}, "redirect": {"path": "/new", "code": 302}},
                {"match": {"prefix": "/"}, "cluster": "b"},
            ]},
            {"name": "down", "domains": ["down.test"], "rules": [
                {"match": {"prefix": "/"}, "cluster": "dead"}]},
        ],
        {"b": [b.address], "dead": [f"127.0.0.1:{free_port()}"]},
    )
    p = proxy(cfg)
    r = curl(base(p) + "/healthz", "-H", "Host: api.test", "-i")
    assert r.stdout.startswith(b"HTTP/1.1 200") and r.stdout.endswith(b"\r\n\r\nok\n")
    r = curl(base(p) + "/old/x", "-H", "Host: api.test", "-o", "/dev/null",
             "-w", "%{http_code} %{redirect_url}")
    assert r.stdout.decode().startswith("302 http://api.test")
    assert r.stdout.decode().endswith("/new")
    r = curl(base(p) + "/", "-H", "Host: nobody.test", "-o", "/dev/null", "-w", "%{http_code}")
    assert r.stdout == b"404"
    r = curl(base(p) + "/", "-H", "Host: down.test", "-o", "/dev/null", "-w", "%{http_code}")
    assert r.stdout == b"503"


def test_pipelined_requests_answered_in_order(proxy: Any, http_backend: Any) -> None:
    b = http_backend()
    p = proxy(simple(b))
    reqs = b"".join(
        b"GET /echo?n=%d HTTP/1.1\r\nHost: x\r\n\r\n" % i for i in range(3)
    ) + b"GET /echo?n=3 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    with socket.create_connection(p.addr("web"), timeout=20) as s:
        s.sendall(reqs)
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    bodies = [json.loads(part.split(b"\r\n\r\n", 1)[1].split(b"HTTP/1.1")[0])
              for part in data.split(b"HTTP/1.1 200 OK")[1:]]
    assert [x["path"] for x in bodies] == [f"/echo?n={i}" for i in range(4)]


def _raw_exchange(p: Any, data: bytes) -> bytes:
    with socket.create_connection(p.addr("web"), timeout=20) as s:
        s.sendall(data)
        got = b""
        try:
            while chunk := s.recv(65536):
                got += chunk
        except ConnectionResetError:
            pass
    return got


@pytest.mark.parametrize(
    ("request_bytes", "status"),
    [
        # Content-Length and Transfer-Encoding together (request smuggling)
        (b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n"
         b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
        # two different Content-Length values
        (b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd",
         400),
        # obs-fold (a header continued on the next line)
        (b"GET /echo HTTP/1.1\r\nHost: x\r\nX-A: 1\r\n  folded\r\n\r\n", 400),
        # a header section over the 64 KiB default limit
        (b"GET /echo HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * (70 << 10) + b"\r\n\r\n", 431),
        # more header fields than the 100 allowed
        (b"GET /echo HTTP/1.1\r\nHost: x\r\n"
         + b"".join(b"X-%d: v\r\n" % i for i in range(120)) + b"\r\n", 431),
    ],
    ids=["cl-and-te", "duplicate-cl", "obs-fold", "header-bytes", "header-count"],
)
def test_bad_requests_get_their_status_and_close(
    proxy: Any, http_backend: Any, request_bytes: bytes, status: int
) -> None:
    b = http_backend()
    p = proxy(simple(b))
    got = _raw_exchange(p, request_bytes)  # returns once the proxy closed the connection
    assert got.startswith(b"HTTP/1.1 %d " % status), got[:200]
    assert b"connection: close" in got.lower()
    # nothing reached the upstream
    assert p.metric("mosn_cluster_upstream_rq", cluster="b") == 0
