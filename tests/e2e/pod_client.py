"""Application clients for the sidecar e2e tests, run inside the client pod's network
namespace as an unprivileged user (so iptables sends their connections to the sidecar). They
dial the server pod's IP as if no proxy existed and print one line per result.

    python pod_client.py grpc|bolt|memcache|banner HOST PORT
    python pod_client.py http-latency HOST PORT N     (bench: N sequential keep-alive GETs;
                                                       prints the latencies in ms as JSON)
"""

from __future__ import annotations

import socket
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

SVC = "com.alipay.rpc.common.service.facade.pb.SampleServicePb"


def grpc_call(host: str, port: int) -> None:
    import grpc

    from mosn_py.demo import sample_service_pb2 as pb

    with grpc.insecure_channel(f"{host}:{port}") as ch:
        hello = ch.unary_unary(f"/{SVC}/hello",
                               request_serializer=pb.SampleServicePbRequest.SerializeToString,
                               response_deserializer=pb.SampleServicePbResult.FromString)
        print("grpc", hello(pb.SampleServicePbRequest(name="mesh", seq=4), timeout=10).result)


def bolt_call(host: str, port: int) -> None:
    from anthunder import Client
    from mytracer import SpanContext

    from mosn_py.demo import sample_service_pb2 as pb

    class Direct(Client):  # type: ignore[misc]
        def _get_address(self, interface: str) -> tuple[str, int]:
            return (host, port)

    body = pb.SampleServicePbRequest(name="mesh", seq=5).SerializeToString()
    out = Direct("e2e").invoke_sync(f"{SVC}:1.0", "hello", body, spanctx=SpanContext(),
                                    timeout_ms=5000)
    print("bolt", pb.SampleServicePbResult.FromString(out).result)


def memcache_call(host: str, port: int) -> None:
    from pymemcache.client.base import Client

    c = Client((host, port), connect_timeout=5, timeout=5)
    c.set("greeting", b"via-memcache")
    print("memcache", c.get("greeting").decode())


def banner(host: str, port: int) -> None:
    """A server-first protocol: the server speaks first, then echoes one line."""
    with socket.create_connection((host, port), timeout=10) as s:
        f = s.makefile("rwb")
        first = f.readline().decode().strip()
        f.write(b"ping\n")
        f.flush()
        print("banner", first, f.readline().decode().strip())


def http_latency(host: str, port: int, n: int) -> None:
    import http.client
    import json
    import time

    conn = http.client.HTTPConnection(host, port, timeout=10)
    out = []
    for i in range(n + n // 10):  # the first tenth warms up and is not kept
        t0 = time.perf_counter()
        conn.request("GET", "/status/200")
        r = conn.getresponse()
        r.read()
        if r.status != 200:
            raise SystemExit(f"status {r.status}")
        if i >= n // 10:
            out.append((time.perf_counter() - t0) * 1000)
    print(json.dumps(out))


if __name__ == "__main__":
    kind, host, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
    if kind == "http-latency":
        http_latency(host, port, int(sys.argv[4]))
        raise SystemExit(0)
    {"grpc": grpc_call, "bolt": bolt_call, "memcache": memcache_call, "banner": banner}[kind](
        host, port)
