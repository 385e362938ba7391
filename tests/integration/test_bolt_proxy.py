"""Bolt (SOFARPC) through the proxy with real anthunder clients and servers."""

from __future__ import annotations

import socket
import struct
import threading
import time
from concurrent.futures import wait
from pathlib import Path
from typing import Any

import pytest

from tests.integration.conftest import (
    SERVICE,
    bolt_aio_client,
    bolt_sync_client,
    hello_request,
    hello_result,
    span,
    split_addr,
)

FIXTURES = Path(__file__).resolve().parents[3] / "shared" / "fixtures" / "bolt"


def fixture_bytes(name: str) -> bytes:
    return bytes.fromhex((FIXTURES / name).read_text().strip())


def bolt_config(upstreams: list[str], **route_extra: Any) -> dict[str, Any]:
    rule: dict[str, Any] = {"match": {"service": SERVICE}, "cluster": "backend"}
    rule.update(route_extra)
    return {
        "listeners": [
            {"name": "bolt_in", "address": "127.0.0.1:0", "protocol": "bolt", "route": "r"}
        ],
        "routes": [{"name": "r", "rules": [rule]}],
        "clusters": [{"name": "backend", "protocol": "bolt", "endpoints": upstreams}],
    }


def recv_frames(sock: socket.socket, count: int, timeout: float = 10.0) -> list[bytes]:
    """Read ``count`` Bolt v1 response frames from a raw socket."""
    sock.settimeout(timeout)
    buf = b""
    frames = []
    while len(frames) < count:
        while len(buf) >= 20:
            cl, hl, bl = struct.unpack_from(">HHI", buf, 12)
            n = 20 + cl + hl + bl
            if len(buf) < n:
                break
            frames.append(buf[:n])
            buf = buf[n:]
            if len(frames) == count:
                return frames
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError(f"closed after {len(frames)} frames")
        buf += chunk
    return frames


def resp_status(frame: bytes) -> int:
    return int(struct.unpack_from(">H", frame, 10)[0])


def resp_id(frame: bytes) -> int:
    return int(struct.unpack_from(">I", frame, 5)[0])


def request_frame(rid: int, name: str, *, timeout_ms: int = 3000, service: str = SERVICE,
                  method: str = "hello") -> bytes:
    """A request shaped like the captured anthunder one, with our own service/method/body.
    (Test input, not a golden vector: expectations never come from our encoder.)"""
    hdr = b""
    for k, v in (("sofa_head_target_service", service), ("sofa_head_method_name", method),
                 ("service", service)):
        kb, vb = k.encode(), v.encode()
        hdr += struct.pack(">I", len(kb)) + kb + struct.pack(">I", len(vb)) + vb
    cls = b"com.alipay.sofa.rpc.core.request.SofaRequest"
    body = hello_request(name)
    return (
        struct.pack(">BBHBIBiHHI", 1, 1, 1, 1, rid, 11, timeout_ms, len(cls), len(hdr), len(body))
        + cls + hdr + body
    )


def test_hello_sync_client(proxy: Any, anthunder_server: Any) -> None:
    srv = anthunder_server()
    p = proxy(bolt_config([srv.address]))
    client = bolt_sync_client(*p.addr("bolt_in"))
    for i in range(5):
        out = client.invoke_sync(SERVICE, "hello", hello_request(f"n{i}", seq=i),
                                 spanctx=span(), timeout_ms=3000)
        res = hello_result(out)
        assert res.result == f"hello n{i}" and res.seq == i


def test_many_in_flight_many_connections(proxy: Any, anthunder_server: Any) -> None:
    """4 anthunder AioClients (one connection each), 100 requests in flight on each,
    multiplexed onto one upstream connection with rewritten ids and out-of-order replies."""
    srv = anthunder_server()
    p = proxy(bolt_config([srv.address]))
    host, port = p.addr("bolt_in")
    clients = [bolt_aio_client(host, port) for _ in range(4)]
    futures = []
    for c_i, c in enumerate(clients):
        for i in range(100):
            # Every 7th request sleeps so responses come back out of order.
            name = f"sleep:0.2:{c_i}-{i}" if i % 7 == 0 else f"{c_i}-{i}"
            fut = c.invoke_async(SERVICE, "hello", hello_request(name, seq=i, payload=b"x" * i),
                                 spanctx=span(), timeout_ms=10000)
            futures.append((name, i, fut))
    _done, not_done = wait([f for _, _, f in futures], timeout=30)
    assert not not_done
    for name, i, fut in futures:
        resp = fut.result()
        res = hello_result(resp.content)
        assert res.result == "hello " + name and res.seq == i and res.payload == b"x" * i
    # All 400 requests shared the cluster's single upstream connection.
    import json

    clusters = json.loads(p.admin_get("/clusters")[1])["clusters"]
    (host_stats,) = clusters[0]["hosts"]
    assert host_stats["rq_total"] == 400 and host_stats["cx_total"] == 1


def test_heartbeat_answered_by_proxy(proxy: Any) -> None:
    """No upstream at all: the proxy itself acks a real anthunder heartbeat, byte for byte
    what anthunder's own server answered in the capture."""
    dead = f"127.0.0.1:{_closed_port()}"
    p = proxy(bolt_config([dead]))
    with socket.create_connection(p.addr("bolt_in")) as s:
        s.sendall(fixture_bytes("anthunder__heartbeat.request.hex"))
        (ack,) = recv_frames(s, 1)
    assert ack == fixture_bytes("anthunder__heartbeat.response.hex")


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_upstream_application_errors_pass_through(proxy: Any, anthunder_server: Any) -> None:
    from anthunder.exceptions import ServerError

    srv = anthunder_server()
    p = proxy(bolt_config([srv.address]))
    client = bolt_sync_client(*p.addr("bolt_in"))
    with pytest.raises(ServerError, match="RESPSTATUS=3"):
        client.invoke_sync(SERVICE, "fail", hello_request("x"), spanctx=span(), timeout_ms=3000)
    with pytest.raises(ServerError, match="RESPSTATUS=6"):
        client.invoke_sync(SERVICE, "nosuch", hello_request("x"), spanctx=span(),
                           timeout_ms=3000)
    # Both answers came from the upstream, not from the proxy.
    assert p.metric("mosn_listener_local_reply") == 0
    assert p.metric("mosn_host_rq") == 2


def test_no_route_gets_6_from_proxy(proxy: Any, anthunder_server: Any) -> None:
    from anthunder.exceptions import ServerError

    srv = anthunder_server()
    p = proxy(bolt_config([srv.address]))
    client = bolt_sync_client(*p.addr("bolt_in"))
    with pytest.raises(ServerError, match="RESPSTATUS=6"):
        client.invoke_sync("com.example.Unknown:1.0", "hello", hello_request("x"),
                           spanctx=span(), timeout_ms=3000)
    assert p.metric("mosn_listener_local_reply", status="route_not_found") == 1
    assert p.metric("mosn_host_rq") == 0


def test_upstream_down_gets_error_reply(proxy: Any) -> None:
    from anthunder.exceptions import ServerError

    p = proxy(bolt_config([f"127.0.0.1:{_closed_port()}"]))
    client = bolt_sync_client(*p.addr("bolt_in"))
    with pytest.raises(ServerError, match="RESPSTATUS=6"):
        client.invoke_sync(SERVICE, "hello", hello_request("x"), spanctx=span(), timeout_ms=3000)
    assert p.metric("mosn_listener_local_reply", status="upstream_connect_failed") == 1


def test_upstream_killed_mid_flight_answers_all_pending(proxy: Any, anthunder_server: Any) -> None:
    """20 slow requests in flight; the server dies; every one is answered with the reset
    status (6), not left to its 30 s timeout (which would answer 7)."""
    srv = anthunder_server()
    p = proxy(bolt_config([srv.address], timeout="30s"))
    with socket.create_connection(p.addr("bolt_in")) as s:
        s.sendall(b"".join(request_frame(1000 + i, "sleep:20", timeout_ms=30000)
                           for i in range(20)))
        time.sleep(0.5)
        srv.kill()
        frames = recv_frames(s, 20, timeout=10)
    assert sorted(resp_id(f) for f in frames) == [1000 + i for i in range(20)]
    assert {resp_status(f) for f in frames} == {6}


def test_route_timeout_gets_7(proxy: Any, anthunder_server: Any) -> None:
    """Frame timeout <= 0: the route's timeout applies."""
    srv = anthunder_server()
    p = proxy(bolt_config([srv.address], timeout="300ms"))
    with socket.create_connection(p.addr("bolt_in")) as s:
        s.sendall(request_frame(7, "sleep:3", timeout_ms=-1))
        (f,) = recv_frames(s, 1)
    assert resp_id(f) == 7 and resp_status(f) == 7
    assert p.metric("mosn_listener_rq_timeout") == 1


def test_frame_timeout_overrides_route(proxy: Any, anthunder_server: Any) -> None:
    """Frame timeout > 0 wins over a longer route timeout."""
    srv = anthunder_server()
    p = proxy(bolt_config([srv.address], timeout="30s"))
    with socket.create_connection(p.addr("bolt_in")) as s:
        s.sendall(request_frame(8, "sleep:5", timeout_ms=300))
        (f,) = recv_frames(s, 1, timeout=4)
    assert resp_id(f) == 8 and resp_status(f) == 7


def test_malformed_frame_gets_codec_exception_then_close(proxy: Any, anthunder_server: Any) -> None:
    srv = anthunder_server()
    p = proxy(bolt_config([srv.address]))
    good = request_frame(5, "x")
    # headerLen claims more bytes than the header block really holds: a corrupt map.
    bad = bytearray(request_frame(6, "y"))
    struct.pack_into(">I", bad, 22 + 44, 0x7FFF)  # first key length far beyond the block
    with socket.create_connection(p.addr("bolt_in")) as s:
        s.sendall(good + bytes(bad))
        frames = recv_frames(s, 2)
        # The bad request is answered at once; the good one, already upstream, still gets
        # its answer before the proxy closes (Bolt replies may come in any order).
        assert {resp_id(f): resp_status(f) for f in frames} == {5: 0, 6: 9}
        s.settimeout(5)
        assert s.recv(100) == b""  # then the proxy closes
    assert p.metric("mosn_listener_codec_error") == 1


def test_oneway_reaches_upstream(proxy: Any, anthunder_server: Any) -> None:
    srv = anthunder_server()
    p = proxy(bolt_config([srv.address]))
    client = bolt_sync_client(*p.addr("bolt_in"))
    for i in range(3):
        client.invoke_oneway(SERVICE, "hello", hello_request(f"oneway:{i}"), spanctx=span())
    deadline = time.monotonic() + 10
    while True:
        out = client.invoke_sync(SERVICE, "count", b"", spanctx=span(), timeout_ms=3000)
        if hello_result(out).result == "3" or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert hello_result(out).result == "3"


def test_overflow_gets_4(proxy: Any, anthunder_server: Any) -> None:
    srv = anthunder_server()
    cfg = bolt_config([srv.address])
    cfg["clusters"][0]["max_requests"] = 2
    p = proxy(cfg)
    with socket.create_connection(p.addr("bolt_in")) as s:
        s.sendall(b"".join(request_frame(i, "sleep:1") for i in range(3)))
        frames = recv_frames(s, 3)
    by_id = {resp_id(f): resp_status(f) for f in frames}
    assert by_id == {0: 0, 1: 0, 2: 4}


def test_retry_on_connect_failure_reaches_live_host(proxy: Any, anthunder_server: Any) -> None:
    srv = anthunder_server()
    dead = f"127.0.0.1:{_closed_port()}"
    cfg = bolt_config([dead, srv.address], retry={"attempts": 1, "on": ["connect-failure"]})
    p = proxy(cfg)
    client = bolt_sync_client(*p.addr("bolt_in"))
    for i in range(6):
        out = client.invoke_sync(SERVICE, "hello", hello_request(f"r{i}"), spanctx=span(),
                                 timeout_ms=3000)
        assert hello_result(out).result == f"hello r{i}"
    assert p.metric("mosn_listener_rq_retry") >= 1


def test_fault_filter_abort_and_delay(proxy: Any, anthunder_server: Any) -> None:
    srv = anthunder_server()
    cfg = bolt_config([srv.address])
    cfg["listeners"][0]["filters"] = [
        {"name": "fault", "config": {"delay": {"duration": "50ms"},
                                     "abort": {"status": "upstream_overflow"}}}
    ]
    p = proxy(cfg)
    with socket.create_connection(p.addr("bolt_in")) as s:
        s.sendall(request_frame(3, "x"))
        (f,) = recv_frames(s, 1)
    assert resp_id(f) == 3 and resp_status(f) == 4
    assert p.metric("mosn_host_rq") == 0


def test_ipv6_listener_and_upstream(proxy: Any, anthunder_server: Any) -> None:
    if not socket.has_ipv6:
        pytest.skip("no IPv6 on this kernel")
    try:
        socket.socket(socket.AF_INET6).bind(("::1", 0))
    except OSError:
        pytest.skip("::1 not configured")
    srv = anthunder_server(host="::1")
    cfg = bolt_config([srv.address])
    cfg["listeners"][0]["address"] = "[::1]:0"
    p = proxy(cfg)
    host, port = split_addr(p.addresses["bolt_in"])
    assert host == "::1"
    # (anthunder's sync client pool is IPv4-only; its AioClient is not.)
    client = bolt_aio_client(host, port)
    resp = client.invoke_async(SERVICE, "hello", hello_request("v6"), spanctx=span(),
                               timeout_ms=3000).result(10)
    assert hello_result(resp.content).result == "hello v6"


def test_sigterm_drains_in_flight_requests(proxy: Any, anthunder_server: Any) -> None:
    srv = anthunder_server()
    p = proxy(bolt_config([srv.address]))
    addr = p.addr("bolt_in")
    results: list[bytes] = []

    def client() -> None:
        with socket.create_connection(addr) as s:
            s.sendall(b"".join(request_frame(i, "sleep:1") for i in range(5)))
            results.extend(recv_frames(s, 5))

    t = threading.Thread(target=client)
    t.start()
    time.sleep(0.4)
    p.proc.send_signal(__import__("signal").SIGTERM)
    time.sleep(0.2)
    with pytest.raises(OSError):
        socket.create_connection(addr, timeout=2)  # no longer accepting
    t.join(15)
    assert [resp_status(f) for f in results] == [0] * 5
    assert p.stop() == 0


def test_cluster_idle_timeout_closes_idle_upstream_connections(
    proxy: Any, anthunder_server: Any
) -> None:
    import json

    srv = anthunder_server()
    cfg = bolt_config([srv.address])
    cfg["clusters"][0]["idle_timeout"] = "200ms"
    p = proxy(cfg)
    with socket.create_connection(p.addr("bolt_in")) as s:
        s.sendall(request_frame(1, "a"))
        assert resp_status(recv_frames(s, 1)[0]) == 0
        deadline = time.monotonic() + 10
        while True:
            (host,) = json.loads(p.admin_get("/clusters")[1])["clusters"][0]["hosts"]
            if host["cx_active"] == 0 or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        assert host["cx_active"] == 0 and host["cx_total"] == 1
        # The next request opens a new upstream connection.
        s.sendall(request_frame(2, "b"))
        assert resp_status(recv_frames(s, 1)[0]) == 0
    (host,) = json.loads(p.admin_get("/clusters")[1])["clusters"][0]["hosts"]
    assert host["cx_total"] == 2


def test_retry_may_reuse_the_only_host(proxy: Any) -> None:
    """One endpoint that resets the first connection: the retry goes to it again."""
    import threading as th

    lsock = socket.socket()
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(8)
    port = lsock.getsockname()[1]
    real = fixture_bytes("anthunder_aio__hello.response.hex")

    def serve() -> None:
        c1, _ = lsock.accept()
        c1.recv(65536)
        c1.close()  # reset the first attempt
        c2, _ = lsock.accept()
        data = c2.recv(65536)
        resp = bytearray(real)
        resp[5:9] = data[5:9]  # answer with the proxy's upstream request id
        c2.sendall(bytes(resp))
        time.sleep(1)
        c2.close()

    t = th.Thread(target=serve, daemon=True)
    t.start()
    p = proxy(bolt_config([f"127.0.0.1:{port}"], retry={"attempts": 1, "on": ["reset"]}))
    with socket.create_connection(p.addr("bolt_in")) as s:
        s.sendall(request_frame(9, "x"))
        (f,) = recv_frames(s, 1)
    assert resp_id(f) == 9 and resp_status(f) == 0
    t.join(5)
    lsock.close()
