"""Protocol translation through the proxy, with real peers: anthunder (SOFARPC Bolt) client
-> mosn-py -> grpcio server; grpcio client -> mosn-py -> anthunder server; curl -> mosn-py
-> anthunder server."""

from __future__ import annotations

import shutil
import subprocess
from concurrent.futures import wait
from typing import Any

import pytest

from tests.integration.conftest import (
    bolt_aio_client,
    bolt_sync_client,
    hello_request,
    hello_result,
    span,
)
from tests.integration.test_http2_proxy import SVC, grpc_server  # noqa: F401 (fixture)

SERVICE = "com.alipay.rpc.common.service.facade.pb.SampleServicePb:1.0"
GRPC_SERVICE = "com.alipay.rpc.common.service.facade.pb.SampleServicePb"


def bolt_to_grpc(endpoint: str, **rule: Any) -> dict[str, Any]:
    return {
        "listeners": [{"name": "bolt_in", "address": "127.0.0.1:0", "protocol": "bolt",
                       "route": "r"}],
        "routes": [{"name": "r", "rules": [{"match": {"service": ".*"}, "cluster": "grpc",
                                            "timeout": "5s", **rule}]}],
        "clusters": [{"name": "grpc", "protocol": "grpc", "endpoints": [endpoint]}],
    }


def test_bolt_client_to_grpc_server(proxy: Any, grpc_server: Any) -> None:  # noqa: F811
    from anthunder.exceptions import ServerError

    g = grpc_server()
    p = proxy(bolt_to_grpc(g.address))
    host, port = p.addr("bolt_in")
    client = bolt_sync_client(host, port)
    for i in range(3):
        out = client.invoke_sync(SERVICE, "hello", hello_request(f"b{i}", seq=i),
                                 spanctx=span(), timeout_ms=3000)
        res = hello_result(out)
        assert (res.result, res.seq) == (f"hello b{i}", i)
    # The gRPC server's error comes back as a Bolt error with its message.
    with pytest.raises(ServerError):
        client.invoke_sync(SERVICE, "hello", hello_request("fail"), spanctx=span(),
                           timeout_ms=3000)
    # >= 50 in flight on one pipelined connection.
    aio = bolt_aio_client(host, port)
    futures = [(i, aio.invoke_async(SERVICE, "hello", hello_request(f"p{i}", seq=i),
                                    spanctx=span(), timeout_ms=10000)) for i in range(60)]
    _, not_done = wait([f for _, f in futures], timeout=30)
    assert not not_done
    for i, f in futures:
        assert hello_result(f.result().content).result == f"hello p{i}"


def test_grpc_client_to_bolt_server(proxy: Any, anthunder_server: Any) -> None:
    import grpc

    from mosn_py.demo import sample_service_pb2 as pb

    srv = anthunder_server()
    p = proxy({
        "listeners": [{"name": "grpc_in", "address": "127.0.0.1:0", "protocol": "grpc",
                       "route": "r"}],
        "routes": [{"name": "r", "virtual_hosts": [{"name": "all", "domains": ["*"], "rules": [
            {"match": {"prefix": "/"}, "cluster": "bolt", "timeout": "5s"}]}]}],
        "clusters": [{"name": "bolt", "protocol": "bolt", "endpoints": [srv.address]}],
    })
    host, port = p.addr("grpc_in")
    ch = grpc.insecure_channel(f"{host}:{port}")
    hello = ch.unary_unary(f"/{GRPC_SERVICE}/hello",
                           request_serializer=pb.SampleServicePbRequest.SerializeToString,
                           response_deserializer=pb.SampleServicePbResult.FromString)
    assert hello(pb.SampleServicePbRequest(name="g", seq=4), timeout=10).result == "hello g"
    fail = ch.unary_unary(f"/{GRPC_SERVICE}/fail",
                          request_serializer=pb.SampleServicePbRequest.SerializeToString,
                          response_deserializer=pb.SampleServicePbResult.FromString)
    with pytest.raises(grpc.RpcError) as e:
        fail(pb.SampleServicePbRequest(name="x"), timeout=10)
    assert e.value.code() != grpc.StatusCode.OK
    ch.close()


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is needed")
def test_curl_to_bolt_server(proxy: Any, anthunder_server: Any, tmp_path: Any) -> None:
    srv = anthunder_server()
    p = proxy({
        "listeners": [{"name": "web", "address": "127.0.0.1:0", "protocol": "http1",
                       "route": "r"}],
        "routes": [{"name": "r", "virtual_hosts": [{"name": "all", "domains": ["*"], "rules": [
            {"match": {"prefix": "/"}, "cluster": "bolt", "timeout": "5s"}]}]}],
        "clusters": [{"name": "bolt", "protocol": "bolt", "endpoints": [srv.address]}],
    })
    host, port = p.addr("web")
    body = tmp_path / "req.bin"
    body.write_bytes(hello_request("curl", seq=9))
    out = tmp_path / "resp.bin"
    r = subprocess.run(["curl", "-sS", "-o", str(out), "-w", "%{http_code}",
                        "--data-binary", f"@{body}", f"http://{host}:{port}/{SERVICE}/hello"],
                       capture_output=True, text=True, timeout=20)
    assert r.stdout == "200", r.stderr
    res = hello_result(out.read_bytes())
    assert (res.result, res.seq) == ("hello curl", 9)


def test_bolt_to_grpc_example(proxy: Any, grpc_server: Any) -> None:  # noqa: F811
    """examples/bolt-to-grpc.yaml as shipped (addresses swapped), driven like its comment
    says: the demo Bolt client."""
    import yaml

    from tests.integration.conftest import REPO

    g = grpc_server()
    cfg = yaml.safe_load((REPO / "examples" / "bolt-to-grpc.yaml").read_text())
    cfg["admin"]["address"] = "127.0.0.1:0"
    cfg["listeners"][0]["address"] = "127.0.0.1:0"
    cfg["clusters"][0]["endpoints"] = [g.address]
    p = proxy(cfg)
    host, port = p.addr("sofarpc")

    def client(*args: str) -> str:
        import sys

        r = subprocess.run([sys.executable, "-m", "mosn_py.demo.client", f"{host}:{port}",
                            *args], capture_output=True, text=True, timeout=30, cwd=REPO)
        return r.stdout.strip()

    assert client("--name", "alice") == "status=0 result='hello alice' seq=0"
    assert client("--name", "fail").startswith("status=2 ")
