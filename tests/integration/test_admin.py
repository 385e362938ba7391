"""The admin API of a running proxy: /ready, /metrics, /config_dump, /clusters, /listeners,
after real traffic (raw TCP through a tcp listener, anthunder Bolt through a bolt one)."""

from __future__ import annotations

import json
import socket
import socketserver
import threading
import time
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.integration.conftest import (
    SERVICE,
    bolt_sync_client,
    hello_request,
    hello_result,
    span,
)

TCP_CONNECTIONS = 5
BOLT_REQUESTS = 7


class _Echo(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        self.request.settimeout(30)
        while data := self.request.recv(65536):
            self.request.sendall(data)


class _EchoServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    block_on_close = False


@pytest.fixture
def echo_server() -> Iterator[str]:
    srv = _EchoServer(("127.0.0.1", 0), _Echo)
    t = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    t.start()
    yield f"127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()
    srv.server_close()


def admin_config(echo: str, bolt_upstream: str) -> dict[str, Any]:
    return {
        "listeners": [
            {"name": "tcp_in", "address": "127.0.0.1:0", "protocol": "tcp", "cluster": "echo",
             "idle_timeout": "30s"},
            {"name": "bolt_in", "address": "127.0.0.1:0", "protocol": "bolt", "route": "r"},
        ],
        "routes": [{"name": "r", "rules": [{"match": {"service": SERVICE},
                                            "cluster": "bolt_backend", "timeout": "3s"}]}],
        "clusters": [
            {"name": "echo", "protocol": "tcp", "endpoints": [echo], "lb": "random"},
            {"name": "bolt_backend", "protocol": "bolt",
             "endpoints": [{"address": bolt_upstream, "weight": 2}]},
        ],
    }


@pytest.fixture
def served(proxy: Any, echo_server: str, anthunder_server: Any) -> Any:
    """A proxy that has carried TCP_CONNECTIONS echo sessions (i+1 bytes on the i-th) and
    BOLT_REQUESTS anthunder requests, all finished."""
    bolt = anthunder_server()
    p = proxy(admin_config(echo_server, bolt.address))
    p.echo, p.bolt = echo_server, bolt.address
    for i in range(TCP_CONNECTIONS):
        with socket.create_connection(p.addr("tcp_in"), timeout=5) as c:
            c.sendall(b"x" * (i + 1))
            got = b""
            while len(got) < i + 1:
                got += c.recv(100)
            assert got == b"x" * (i + 1)
    client = bolt_sync_client(*p.addr("bolt_in"))
    for i in range(BOLT_REQUESTS):
        out = client.invoke_sync(SERVICE, "hello", hello_request(f"m{i}"), spanctx=span(),
                                 timeout_ms=3000)
        assert hello_result(out).result == f"hello m{i}"
    # TCP sessions are counted when both sides closed, just after the client's close.
    deadline = time.monotonic() + 5
    while p.metric("mosn_listener_cx_active", listener="tcp_in") and time.monotonic() < deadline:
        time.sleep(0.02)
    return p


def get_json(p: Any, path: str) -> Any:
    status, body = p.admin_get(path)
    assert status == 200, body
    return json.loads(body)


def test_ready(proxy: Any, echo_server: str) -> None:
    p = proxy(admin_config(echo_server, echo_server))
    assert p.admin_get("/ready") == (200, "LIVE\n")


def test_metrics_prometheus_text(served: Any) -> None:
    host, port = served.addr("admin")
    with urllib.request.urlopen(f"http://{host}:{port}/metrics", timeout=5) as r:
        # prometheus-client's own exposition type (0.0.4, or 1.0.0 in newer releases).
        assert r.headers["Content-Type"].startswith("text/plain; version=")
        text = r.read().decode()
    samples: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    families = {}
    for fam in text_string_to_metric_families(text):
        families[fam.name] = fam.type
        for s in fam.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value

    def value(name: str, **labels: str) -> float:
        return samples[(name, tuple(sorted(labels.items())))]

    assert families["mosn_listener_cx"] == "counter"
    assert families["mosn_listener_cx_active"] == "gauge"
    assert value("mosn_listener_cx_total", listener="tcp_in") == TCP_CONNECTIONS
    assert value("mosn_listener_cx_active", listener="tcp_in") == 0
    # anthunder's socket pool keeps spare connections open, so only a lower bound here.
    assert value("mosn_listener_cx_total", listener="bolt_in") >= 1
    assert value("mosn_listener_rq_total", listener="bolt_in") == BOLT_REQUESTS
    tcp_bytes = sum(range(1, TCP_CONNECTIONS + 1))
    assert value("mosn_listener_bytes_received_total", listener="tcp_in") == tcp_bytes
    assert value("mosn_listener_bytes_sent_total", listener="tcp_in") == tcp_bytes
    assert value("mosn_cluster_upstream_rq_total", cluster="bolt_backend") == BOLT_REQUESTS
    assert value("mosn_cluster_upstream_rq_active", cluster="bolt_backend") == 0
    assert value("mosn_host_rq_total", cluster="bolt_backend", host=served.bolt) == BOLT_REQUESTS
    assert value("mosn_host_cx_active", cluster="bolt_backend", host=served.bolt) == 1
    assert value("mosn_host_cx_connect_fail_total", cluster="echo", host=served.echo) == 0


def test_config_dump_matches_file(served: Any) -> None:
    cfg = get_json(served, "/config_dump")["config"]
    listeners = {x["name"]: x for x in cfg["listeners"]}
    assert set(listeners) == {"tcp_in", "bolt_in"}
    assert listeners["tcp_in"]["protocol"] == "tcp" and listeners["tcp_in"]["cluster"] == "echo"
    assert listeners["tcp_in"]["idle_timeout"] == 30
    assert listeners["bolt_in"]["route"] == "r"
    assert listeners["bolt_in"]["address"] == {"host": "127.0.0.1", "port": 0}  # as configured
    clusters = {c["name"]: c for c in cfg["clusters"]}
    assert set(clusters) == {"echo", "bolt_backend"}
    assert clusters["echo"]["lb"] == "random"
    host, port = served.bolt.rsplit(":", 1)
    assert clusters["bolt_backend"]["endpoints"] == [
        {"address": {"host": host, "port": int(port)}, "weight": 2}
    ]
    (route,) = cfg["routes"]
    assert route["rules"][0]["cluster"] == "bolt_backend" and route["rules"][0]["timeout"] == 3


def test_clusters_lists_hosts_with_counters(served: Any) -> None:
    clusters = {c["name"]: c for c in get_json(served, "/clusters")["clusters"]}
    (echo_host,) = clusters["echo"]["hosts"]
    assert echo_host["address"] == served.echo
    assert echo_host["cx_total"] == TCP_CONNECTIONS and echo_host["cx_active"] == 0
    assert echo_host["cx_connect_fail"] == 0 and echo_host["healthy"] is True
    # A tcp session counts as one request (least_request balances on rq_active).
    assert echo_host["rq_total"] == TCP_CONNECTIONS and echo_host["rq_active"] == 0
    (bolt_host,) = clusters["bolt_backend"]["hosts"]
    assert bolt_host["address"] == served.bolt and bolt_host["weight"] == 2
    assert bolt_host["rq_total"] == BOLT_REQUESTS and bolt_host["rq_active"] == 0
    assert bolt_host["cx_total"] == 1
    assert clusters["bolt_backend"]["rq_total"] == BOLT_REQUESTS


def test_listeners_lists_bound_addresses(served: Any) -> None:
    listeners = {x["name"]: x for x in get_json(served, "/listeners")["listeners"]}
    assert set(listeners) == {"tcp_in", "bolt_in"}
    for name, x in listeners.items():
        assert x["address"] == served.addresses[name]
        assert not x["address"].endswith(":0")  # the bound port, not the configured 0
        assert x["draining"] is False
    assert listeners["tcp_in"]["protocol"] == "tcp"
    assert listeners["tcp_in"]["cx_total"] == TCP_CONNECTIONS
    assert listeners["bolt_in"]["rq_total"] == BOLT_REQUESTS


def test_unknown_path_404(proxy: Any, echo_server: str) -> None:
    p = proxy(admin_config(echo_server, echo_server))
    assert p.admin_get("/nope")[0] == 404
    assert p.admin_get("/metrics/extra")[0] == 404
    assert p.admin_get("/ready?verbose=1") == (200, "LIVE\n")  # a query string is ignored


def _ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


@pytest.mark.skipif(not _ipv6_loopback(), reason="no IPv6 loopback (::1) on this host")
def test_admin_on_ipv6_loopback(proxy: Any, echo_server: str) -> None:
    cfg = admin_config(echo_server, echo_server)
    cfg["admin"] = {"address": "[::1]:0"}
    p = proxy(cfg)
    assert p.addresses["admin"].startswith("[::1]:")
    assert p.admin_get("/ready") == (200, "LIVE\n")
