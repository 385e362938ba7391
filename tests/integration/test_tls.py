"""TLS with real peers: certificates chosen by SNI, client-certificate verification (mTLS) on
a listener, and TLS origination to clusters (CA and name verification, SNI, client
certificate, ALPN h2 for gRPC). Certificates come from a CA made by the test (tests/pki.py)."""

from __future__ import annotations

import json
import shutil
import socket
import ssl
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.integration.test_http1_proxy import http_backend  # noqa: F401 (fixture)
from tests.integration.test_http2_proxy import SVC, grpc_server  # noqa: F401 (fixture)
from tests.pki import Pki

pytestmark = pytest.mark.skipif(shutil.which("curl") is None, reason="curl is needed")

SPIFFE_CLIENT = "spiffe://mesh.test/ns/default/sa/client"


def direct_ok(protocol: str = "http1") -> dict[str, Any]:
    return {"name": "gw", "virtual_hosts": [{"name": "all", "domains": ["*"], "rules": [
        {"match": {"prefix": "/"}, "direct_response": {"status": 200, "body": "tls ok\n"}}]}]}


def proxied(cluster: dict[str, Any], listener_protocol: str = "http1") -> dict[str, Any]:
    return {
        "listeners": [{"name": "web", "address": "127.0.0.1:0", "protocol": listener_protocol,
                       "route": "gw"}],
        "routes": [{"name": "gw", "virtual_hosts": [{"name": "all", "domains": ["*"], "rules": [
            {"match": {"prefix": "/"}, "cluster": "up", "timeout": "5s"}]}]}],
        "clusters": [{"name": "up", **cluster}],
    }


def curl(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["curl", "-sS", "--max-time", "10", *args],
                          capture_output=True, text=True, timeout=20)


def served_cn(port: int, server_name: str | None, ca: Path) -> str:
    """The CN of the certificate the listener serves for ``server_name`` (None: no SNI)."""
    ctx = ssl.create_default_context(cafile=str(ca))
    ctx.check_hostname = False
    raw = socket.create_connection(("127.0.0.1", port), timeout=5)
    with ctx.wrap_socket(raw, server_hostname=server_name) as s:
        cert = s.getpeercert()
    assert cert
    return str(dict(x[0] for x in cert["subject"])["commonName"])


def test_certificate_chosen_by_sni(proxy: Any, pki: Pki) -> None:
    default = pki.issue("default", dns=("default.test",), ips=("127.0.0.1",))
    wild = pki.issue("wild", dns=("*.b.test",))
    exact = pki.issue("exact", dns=("a.test",))
    listener = {
        "name": "web", "address": "127.0.0.1:0", "protocol": "http", "route": "gw",
        "tls": {
            "cert": str(default[0]), "key": str(default[1]),
            "certificates": [
                {"cert": str(wild[0]), "key": str(wild[1]), "server_names": ["*.b.test"]},
                {"cert": str(exact[0]), "key": str(exact[1]), "server_names": ["a.test"]},
            ],
        },
    }
    p = proxy({"listeners": [listener], "routes": [direct_ok()]})
    _, port = p.addr("web")
    assert served_cn(port, None, pki.ca) == "default"
    assert served_cn(port, "x.b.test", pki.ca) == "wild"
    assert served_cn(port, "deep.x.b.test", pki.ca) == "wild"
    assert served_cn(port, "A.TEST", pki.ca) == "exact"
    assert served_cn(port, "b.test", pki.ca) == "default"  # *.b.test needs a label before
    assert served_cn(port, "unknown.test", pki.ca) == "default"
    # curl verifies the chain and the name against the certificate it was given, on h2
    # and on HTTP/1.1 (ALPN), so the SNI switch kept the listener's ALPN.
    for name in ("a.test", "x.b.test"):
        for flag in ("--http2", "--http1.1"):
            r = curl(flag, "--cacert", str(pki.ca), "--resolve", f"{name}:{port}:127.0.0.1",
                     "-w", "%{http_version}", f"https://{name}:{port}/")
            assert r.returncode == 0, r.stderr
            assert r.stdout == "tls ok\n" + ("2" if flag == "--http2" else "1.1")


def test_mtls_listener_requires_a_client_certificate(proxy: Any, pki: Pki,
                                                     tmp_path: Path) -> None:
    server = pki.issue("mtls-server", dns=("gw.test",))
    client = pki.issue("mtls-client", uris=(SPIFFE_CLIENT,))
    stranger_pki = Pki(tmp_path / "other", "other")
    stranger = stranger_pki.issue("stranger", uris=("spiffe://other/x",))
    listener = {
        "name": "web", "address": "127.0.0.1:0", "protocol": "http1", "route": "gw",
        "tls": {"cert": str(server[0]), "key": str(server[1]), "ca": str(pki.ca),
                "require_client_cert": True},
    }
    p = proxy({"listeners": [listener], "routes": [direct_ok()]})
    _, port = p.addr("web")
    base = ("--cacert", str(pki.ca), "--resolve", f"gw.test:{port}:127.0.0.1",
            f"https://gw.test:{port}/")
    ok = curl("--cert", str(client[0]), "--key", str(client[1]), *base)
    assert (ok.returncode, ok.stdout) == (0, "tls ok\n"), ok.stderr
    no_cert = curl(*base)
    assert no_cert.returncode != 0 and no_cert.stdout == ""
    wrong_ca = curl("--cert", str(stranger[0]), "--key", str(stranger[1]), *base)
    assert wrong_ca.returncode != 0 and wrong_ca.stdout == ""
    # The failed handshakes did not disturb the listener.
    again = curl("--cert", str(client[0]), "--key", str(client[1]), *base)
    assert (again.returncode, again.stdout) == (0, "tls ok\n"), again.stderr


def test_tls_to_an_http1_cluster_with_client_certificate(
    proxy: Any, pki: Pki, http_backend: Any, tmp_path: Path  # noqa: F811
) -> None:
    server = pki.issue("backend", dns=("backend.test",))
    client = pki.issue("sidecar", uris=(SPIFFE_CLIENT,))
    b = http_backend("tls-backend", ("--tls", str(server[0]), str(server[1]), str(pki.ca)))
    tls = {"sni": "backend.test", "ca": str(pki.ca), "cert": str(client[0]),
           "key": str(client[1])}
    p = proxy(proxied({"protocol": "http1", "endpoints": [b.address], "tls": tls}))
    host, port = p.addr("web")
    for _ in range(3):  # the TLS connection is pooled and reused
        r = curl(f"http://{host}:{port}/echo")
        assert r.returncode == 0, r.stderr
        info = json.loads(r.stdout)
        assert (info["server"], info["peer"]) == ("tls-backend", SPIFFE_CLIENT)
    big = curl(f"http://{host}:{port}/bytes/3000000", "-o", str(tmp_path / "big"))
    assert big.returncode == 0 and (tmp_path / "big").stat().st_size == 3_000_000


@pytest.mark.parametrize(
    "tls_case", ["untrusted-ca", "wrong-name", "no-client-cert"]
)
def test_tls_origination_refused(
    proxy: Any, pki: Pki, http_backend: Any, tmp_path: Path, tls_case: str  # noqa: F811
) -> None:
    """A server the cluster must not trust (or that refuses us) is a connect failure: 503,
    and the log says why."""
    server = pki.issue("strict-backend", dns=("backend.test",))
    client = pki.issue("strict-client", uris=(SPIFFE_CLIENT,))
    b = http_backend("strict", ("--tls", str(server[0]), str(server[1]), str(pki.ca)))
    tls: dict[str, Any] = {"sni": "backend.test", "ca": str(pki.ca), "cert": str(client[0]),
                           "key": str(client[1])}
    if tls_case == "untrusted-ca":
        tls["ca"] = str(Pki(tmp_path / "other", "other").ca)
    elif tls_case == "wrong-name":
        tls["sni"] = "other.test"
    else:
        del tls["cert"], tls["key"]
    p = proxy(proxied({"protocol": "http1", "endpoints": [b.address], "tls": tls}))
    host, port = p.addr("web")
    r = curl("-o", "/dev/null", "-w", "%{http_code}", f"http://{host}:{port}/echo")
    assert r.stdout == "503", (r.stdout, r.stderr)
    if tls_case != "no-client-cert":  # with TLS 1.3 the server's refusal arrives later
        assert "certificate verify failed" in p.log() or "CERTIFICATE_VERIFY_FAILED" in p.log()


def test_grpc_over_tls_to_the_cluster(proxy: Any, pki: Pki, grpc_server: Any) -> None:  # noqa: F811
    import grpc

    from mosn_py.demo import sample_service_pb2 as pb

    server = pki.issue("grpc-backend", dns=("grpc.test",))
    client = pki.issue("grpc-sidecar", uris=(SPIFFE_CLIENT,))
    g = grpc_server(("--tls", str(server[0]), str(server[1]), str(pki.ca)))
    tls = {"sni": "grpc.test", "ca": str(pki.ca), "cert": str(client[0]), "key": str(client[1])}
    p = proxy(proxied({"protocol": "http2", "endpoints": [g.address], "tls": tls}, "http2"))
    host, port = p.addr("web")
    ch = grpc.insecure_channel(f"{host}:{port}")
    ser = pb.SampleServicePbRequest.SerializeToString
    res = pb.SampleServicePbResult.FromString
    hello = ch.unary_unary(SVC + "hello", request_serializer=ser, response_deserializer=res)
    reply, call = hello.with_call(pb.SampleServicePbRequest(name="tls", seq=1), timeout=10)
    assert reply.result == "hello tls"
    assert dict(call.trailing_metadata())["x-peer-identity"] == SPIFFE_CLIENT
    stream = ch.unary_stream(SVC + "stream", request_serializer=ser, response_deserializer=res)
    assert [r.result for r in stream(pb.SampleServicePbRequest(name="s", seq=3), timeout=10)] == [
        "s-0", "s-1", "s-2"]
    ch.close()


def test_tcp_listener_originates_tls(proxy: Any, pki: Pki, http_backend: Any) -> None:  # noqa: F811
    """L4: plain TCP in, TLS out (the byte stream is HTTP, the proxy does not look at it)."""
    server = pki.issue("tcp-backend", dns=("backend.test",))
    b = http_backend("tcp-tls", ("--tls", str(server[0]), str(server[1])))
    p = proxy({
        "listeners": [{"name": "web", "address": "127.0.0.1:0", "protocol": "tcp",
                       "cluster": "up"}],
        "clusters": [{"name": "up", "protocol": "tcp", "endpoints": [b.address],
                      "tls": {"sni": "backend.test", "ca": str(pki.ca)}}],
    })
    host, port = p.addr("web")
    r = curl(f"http://{host}:{port}/echo")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["server"] == "tcp-tls"
