"""Two "pods" in network namespaces joined by a veth pair, each with a mosn-py sidecar and
iptables interception, and applications that know nothing about the proxies:

    ns A (10.78.N.1)                                   ns B (10.78.N.2)
    curl / grpcio / redis-cli / anthunder / pymemcache / raw TCP, as uid 65534
      |  dials 10.78.N.2:PORT; OUTPUT REDIRECT (not uid 0) -> 15001
      v
    sidecar A :15001 (use_original_dst, sniffing)  --mutual TLS-->  PREROUTING REDIRECT -> 15006
                                                                    sidecar B :15006 (tls, client
                                                                    cert required, sniffing)
                                                                      |  127.0.0.1:PORT
                                                                      v
                                                                    the applications

The server side sees the client pod's verified SPIFFE identity (x-forwarded-client-cert for
HTTP), both sidecars' metrics count the traffic, and a client without the mesh certificate is
refused.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from tests.e2e.mesh import CLIENT_ID, HERE, Pod, missing, two_pods
from tests.pki import Pki

pytestmark = [pytest.mark.timeout(240)]
_SKIP = missing()
if _SKIP:
    pytestmark.append(pytest.mark.skip(reason=_SKIP))


@pytest.fixture(scope="module")
def mesh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    with two_pods(tmp_path_factory.mktemp("mesh")) as m:
        yield m


def metrics(pod: Pod) -> dict[str, float]:
    text = pod.run("curl", "-s", "http://127.0.0.1:15000/metrics").stdout
    out: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith("mosn_listener_cx_total{"):
            name = line.split('listener="')[1].split('"')[0]
            out[name] = float(line.rsplit(" ", 1)[1])
    return out


def test_http_with_curl_carries_the_verified_identity(mesh: dict[str, Any]) -> None:
    a, b = mesh["a"], mesh["b"]
    out = a.run("curl", "-s", "--max-time", "10", f"http://{b.ip}:8080/echo", user=True).stdout
    echo = json.loads(out)
    assert echo["server"] == "app-b"
    xfcc = dict((k.lower(), v) for k, v in echo["headers"])["x-forwarded-client-cert"]
    assert f"URI={CLIENT_ID}" in xfcc and "Hash=" in xfcc
    # a client cannot forge it: the outbound side drops any it sends
    out = a.run("curl", "-s", "--max-time", "10", "-H", "x-forwarded-client-cert: URI=evil",
                f"http://{b.ip}:8080/echo", user=True).stdout
    headers = [(k.lower(), v) for k, v in json.loads(out)["headers"]]
    assert [v for k, v in headers if k == "x-forwarded-client-cert"] == [xfcc]


def test_grpc_bolt_redis_memcache_and_unknown_tcp(mesh: dict[str, Any]) -> None:
    a, b = mesh["a"], mesh["b"]
    client = str(HERE / "pod_client.py")
    py = sys.executable
    assert a.run(py, client, "grpc", b.ip, "50051", user=True).stdout.strip() == "grpc hello mesh"
    assert a.run(py, client, "bolt", b.ip, "12200", user=True).stdout.strip() == "bolt hello mesh"
    assert a.run("redis-cli", "-h", b.ip, "-p", "6379", "set", "k", "mesh",
                 user=True).stdout.strip() == "OK"
    assert a.run("redis-cli", "-h", b.ip, "-p", "6379", "get", "k",
                 user=True).stdout.strip() == "mesh"
    assert b.run("redis-cli", "get", "k").stdout.strip() == "mesh"  # it reached B's redis
    # memcached client, Redis server: translated by the outbound sidecar
    assert a.run(py, client, "memcache", b.ip, "11211",
                 user=True).stdout.strip() == "memcache via-memcache"
    assert b.run("redis-cli", "get", "greeting").stdout.strip() == "via-memcache"
    # a server-first protocol nobody configured: passthrough, still over mutual TLS
    out = a.run(py, client, "banner", b.ip, "9000", user=True).stdout.strip()
    assert out.startswith("banner HELLO ") and out.endswith(" PING")
    ma, mb = metrics(a), metrics(b)
    for name in ("out_http_8080", "out_grpc_50051", "out_redis_6379", "out_bolt_12200",
                 "out_memcache_11211"):
        assert ma.get(name, 0) >= 1, (name, ma)
    assert ma["outbound"] >= 7
    for name in ("in_grpc_50051", "in_redis_6379", "in_bolt_12200"):
        assert mb.get(name, 0) >= 1, (name, mb)
    assert mb["inbound"] >= 7  # every connection above arrived over mutual TLS


def test_inbound_refuses_clients_without_a_mesh_certificate(mesh: dict[str, Any]) -> None:
    a, b = mesh["a"], mesh["b"]
    # root is not intercepted on A: a plain connection straight to B's pod IP
    r = a.run("curl", "-s", "--max-time", "5", f"http://{b.ip}:8080/echo", check=False)
    assert r.returncode != 0 and "app-b" not in r.stdout
    # TLS with a certificate from another CA
    other = Pki(mesh["tmp"] / "other", "other")
    cert, key = other.issue("intruder", uris=("spiffe://evil/ns/x/sa/y",))
    r = a.run("curl", "-sk", "--max-time", "5", "--cert", str(cert), "--key", str(key),
              f"https://{b.ip}:8080/echo", check=False)
    assert r.returncode != 0 and "app-b" not in r.stdout
    # B counted nothing for these on its HTTP listener
    before = metrics(b).get("in_http_8080", 0)
    a.run("curl", "-s", "--max-time", "5", f"http://{b.ip}:8080/echo", check=False)
    assert metrics(b).get("in_http_8080", 0) == before


def test_admin_shows_the_intercepted_listeners(mesh: dict[str, Any]) -> None:
    a = mesh["a"]
    out = json.loads(a.run("curl", "-s", "http://127.0.0.1:15000/listeners").stdout)
    names = {x["name"] for x in out["listeners"]}
    assert {"outbound", "out_http_8080", "out_memcache_11211"} <= names
