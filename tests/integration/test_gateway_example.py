"""examples/gateway.yaml, as shipped (only addresses and the certificate swapped for test
ones): one TLS listener, HTTP/1.1 and HTTP/2 by ALPN, routing by host and path to an
HTTP/1.1 cluster, an HTTP/2 cluster and a gRPC cluster."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.integration.conftest import REPO
from tests.integration.test_http1_proxy import http_backend  # noqa: F401 (fixture)
from tests.integration.test_http2_proxy import SVC, grpc_server, h2_config  # noqa: F401

pytestmark = pytest.mark.skipif(
    shutil.which("curl") is None or shutil.which("openssl") is None,
    reason="curl and openssl are needed",
)


def test_gateway_example(proxy: Any, http_backend: Any, grpc_server: Any,  # noqa: F811
                         tmp_path: Path) -> None:
    import grpc

    from mosn_py.demo import sample_service_pb2 as pb

    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
         "-subj", "/CN=gw.example", "-addext",
         "subjectAltName=DNS:gw.example,DNS:api.gw.example,DNS:grpc.gw.example",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True, timeout=60,
    )
    h1 = http_backend("h1")
    h2_origin_backend = http_backend("h2")
    h2_origin = proxy(h2_config("http1", [h2_origin_backend.address]))  # an h2c service
    g = grpc_server()

    cfg = yaml.safe_load((REPO / "examples" / "gateway.yaml").read_text())
    cfg["admin"]["address"] = "127.0.0.1:0"
    lst = cfg["listeners"][0]
    lst["address"] = "127.0.0.1:0"
    lst["tls"] = {"cert": str(cert), "key": str(key)}
    lst["access_log"] = False
    clusters = {c["name"]: c for c in cfg["clusters"]}
    clusters["api_h1"]["endpoints"] = [h1.address]
    h2_host, h2_port = h2_origin.addr("web")
    clusters["api_h2"]["endpoints"] = [f"{h2_host}:{h2_port}"]
    clusters["grpc_backend"]["endpoints"] = [g.address]
    p = proxy(cfg)
    host, port = p.addr("public_tls")

    def curl(name: str, path: str, *args: str) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run(
            ["curl", "-sS", "--max-time", "20", "--cacert", str(cert),
             "--resolve", f"{name}:{port}:{host}", *args, f"https://{name}:{port}{path}"],
            capture_output=True, timeout=30,
        )

    # HTTP/1.1 cluster, reached over HTTP/2 from the client, with the rule's header added
    r = curl("api.gw.example", "/users?id=7", "--http2", "-D", "-")
    head, _, body = r.stdout.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/2 200"), r.stderr
    assert b"strict-transport-security: max-age=31536000" in head
    info = json.loads(body)
    assert info["server"] == "h1" and info["path"] == "/users?id=7"
    assert dict(info["headers"])["x-gateway"] == "mosn-py"
    assert dict(info["headers"])["x-forwarded-proto"] == "https"
    # HTTP/2 cluster with the prefix rewritten, from an HTTP/1.1 client
    r = curl("api.gw.example", "/v2/echo", "--http1.1")
    info = json.loads(r.stdout)
    assert info["server"] == "h2" and info["path"] == "/echo"
    # direct response and redirect on the default virtual host
    assert curl("gw.example", "/healthz", "--http2").stdout == b"ok\n"
    r = curl("gw.example", "/x", "-o", "/dev/null", "-w", "%{http_code} %{redirect_url}")
    # (a redirect to another host drops the request's port, as Envoy's host_redirect does)
    assert r.stdout.decode() == "302 https://api.gw.example/x"
    # gRPC over TLS
    creds = grpc.ssl_channel_credentials(root_certificates=cert.read_bytes())
    ch = grpc.secure_channel(f"{host}:{port}", creds,
                             options=[("grpc.ssl_target_name_override", "grpc.gw.example")])
    hello = ch.unary_unary(SVC + "hello",
                           request_serializer=pb.SampleServicePbRequest.SerializeToString,
                           response_deserializer=pb.SampleServicePbResult.FromString)
    assert hello(pb.SampleServicePbRequest(name="tls"), timeout=10).result == "hello tls"
    ch.close()
