"""HTTP/2 (h2c prior knowledge) and gRPC pass-through: curl and grpcio clients, the
stdlib http.server (HTTP/1.1 upstream: cross-version) and a grpcio server (HTTP/2 upstream)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from tests.integration.conftest import PEERS, REPO, PeerProcess, free_port
from tests.integration.test_http1_proxy import http_backend  # noqa: F401 (fixture)

SVC = "/com.alipay.rpc.common.service.facade.pb.SampleServicePb/"


@pytest.fixture
def grpc_server() -> Iterator[Any]:
    started: list[PeerProcess] = []

    def start(args: tuple[str, ...] = ()) -> PeerProcess:
        port = free_port()
        proc = subprocess.Popen(
            [sys.executable, str(PEERS / "grpc_server.py"), str(port), *args],
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


def h2_config(cluster_protocol: str, endpoints: list[str]) -> dict[str, Any]:
    return {
        "listeners": [
            {"name": "web", "address": "127.0.0.1:0", "protocol": "http2", "route": "gw"}
        ],
        "routes": [{"name": "gw", "virtual_hosts": [{"name": "all", "domains": ["*"], "rules": [
            {"match": {"path": "/healthz"}, "direct_response": {"status": 200, "body": "ok\n"}},
            {"match": {"prefix": "/"}, "cluster": "up", "timeout": "1s"},
        ]}]}],
        "clusters": [{"name": "up", "protocol": cluster_protocol, "endpoints": endpoints}],
    }


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_curl_h2c_to_http1_upstream(proxy: Any, http_backend: Any) -> None:  # noqa: F811
    b = http_backend()
    p = proxy(h2_config("http1", [b.address]))
    host, port = p.addr("web")
    base = f"http://{host}:{port}"
    r = subprocess.run(
        ["curl", "-sS", "--http2-prior-knowledge", "--max-time", "20", "-o", "/dev/null",
         "-w", "%{http_code} %{http_version} %{size_download}", base + f"/bytes/{4 << 20}"],
        capture_output=True, timeout=30,
    )
    assert r.stdout == f"200 2 {4 << 20}".encode(), r.stderr
    r = subprocess.run(["curl", "-sS", "--http2-prior-knowledge", base + "/healthz"],
                       capture_output=True, timeout=30)
    assert r.stdout == b"ok\n"


def grpc_stubs(p: Any) -> tuple[Any, Any]:
    import grpc

    from mosn_py.demo import sample_service_pb2 as pb

    host, port = p.addr("web")
    return grpc.insecure_channel(f"{host}:{port}"), pb


def test_grpc_all_four_kinds_and_errors(proxy: Any, grpc_server: Any) -> None:
    import grpc

    g = grpc_server()
    p = proxy(h2_config("http2", [g.address]))
    ch, pb = grpc_stubs(p)
    req = pb.SampleServicePbRequest
    res = pb.SampleServicePbResult.FromString
    ser = req.SerializeToString
    hello = ch.unary_unary(SVC + "hello", request_serializer=ser, response_deserializer=res)
    assert hello(req(name="grpc", seq=3), timeout=10).result == "hello grpc"
    stream = ch.unary_stream(SVC + "stream", request_serializer=ser, response_deserializer=res)
    assert [r.result for r in stream(req(name="s", seq=5), timeout=10)] == [
        f"s-{i}" for i in range(5)]
    collect = ch.stream_unary(SVC + "collect", request_serializer=ser,
                              response_deserializer=res)
    assert collect(iter([req(name=n) for n in "abc"]), timeout=10).result == "a,b,c"
    chat = ch.stream_stream(SVC + "chat", request_serializer=ser, response_deserializer=res)
    assert [r.result for r in chat(iter([req(name=n) for n in "xy"]), timeout=10)] == [
        "echo x", "echo y"]
    # The upstream's own error: grpc-status/grpc-message trailers pass through.
    with pytest.raises(grpc.RpcError) as e:
        hello(req(name="fail"), timeout=10)
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT and e.value.details() == "bad name"
    # The route timeout (1 s) answers a slow call as a gRPC error, not a bare HTTP status.
    with pytest.raises(grpc.RpcError) as e:
        hello(req(name="sleep"), timeout=10)
    assert e.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    ch.close()


def test_grpc_no_healthy_upstream_is_unavailable(proxy: Any) -> None:
    import grpc

    p = proxy(h2_config("http2", [f"127.0.0.1:{free_port()}"]))
    ch, pb = grpc_stubs(p)
    hello = ch.unary_unary(SVC + "hello", request_serializer=pb.SampleServicePbRequest
                           .SerializeToString)
    with pytest.raises(grpc.RpcError) as e:
        hello(pb.SampleServicePbRequest(name="x"), timeout=10)
    assert e.value.code() == grpc.StatusCode.UNAVAILABLE
    ch.close()


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_http1_client_to_http2_upstream(proxy: Any, http_backend: Any, tmp_path: Any) -> None:  # noqa: F811
    """curl (HTTP/1.1) -> mosn-py A (http1 listener, http2 cluster) -> mosn-py B (http2
    listener, http1 cluster) -> http.server: both cross-version directions, with bodies
    bigger than curl sends without ``Expect: 100-continue``, Content-Length and chunked."""
    import hashlib
    import json

    b = http_backend()
    inner = proxy(h2_config("http1", [b.address]))
    ih, ip = inner.addr("web")
    outer_cfg = h2_config("http2", [f"{ih}:{ip}"])
    outer_cfg["listeners"][0]["protocol"] = "http1"
    outer = proxy(outer_cfg)
    oh, op = outer.addr("web")
    body = os.urandom(3 << 20)
    f = tmp_path / "body.bin"
    f.write_bytes(body)
    for extra in ([], ["-H", "Transfer-Encoding: chunked"]):
        r = subprocess.run(
            ["curl", "-sS", "--max-time", "30", *extra, "--data-binary", f"@{f}",
             f"http://{oh}:{op}/echo"],
            capture_output=True, timeout=40,
        )
        assert r.returncode == 0, r.stderr
        info = json.loads(r.stdout)
        assert info["body_sha256"] == hashlib.sha256(body).hexdigest()
        assert "expect" not in dict(info["headers"])  # answered by the proxy, not passed on
    r = subprocess.run(["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code} %{size_download}",
                        f"http://{oh}:{op}/bytes/{5 << 20}"], capture_output=True, timeout=40)
    assert r.stdout == f"200 {5 << 20}".encode()


def test_grpc_protocol_name(proxy: Any, grpc_server: Any) -> None:
    """``protocol: grpc`` on listeners and clusters is HTTP/2 under its own name."""
    g = grpc_server()
    cfg = h2_config("grpc", [g.address])
    cfg["listeners"][0]["protocol"] = "grpc"
    p = proxy(cfg)
    ch, pb = grpc_stubs(p)
    hello = ch.unary_unary(SVC + "hello",
                           request_serializer=pb.SampleServicePbRequest.SerializeToString,
                           response_deserializer=pb.SampleServicePbResult.FromString)
    assert hello(pb.SampleServicePbRequest(name="g", seq=1), timeout=10).result == "hello g"
    ch.close()
