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
import os
import random
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.pki import Pki

REPO = Path(__file__).resolve().parents[2]
PEERS = REPO / "tests" / "integration" / "peers"
HERE = Path(__file__).resolve().parent
NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
CLIENT_ID = "spiffe://cluster.local/ns/default/sa/client"
SERVER_ID = "spiffe://cluster.local/ns/default/sa/server"


def _missing() -> str | None:
    if os.geteuid() != 0:
        return "needs root (network namespaces, iptables)"
    for tool in ("ip", "iptables", "setpriv", "curl", "redis-server", "redis-cli"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (bash scripts/install.sh --test)"
    probe = f"mosnpy-probe-{os.getpid()}"
    r = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True)
    if r.returncode != 0:
        return f"cannot create a network namespace: {r.stderr.strip()}"
    try:
        r = subprocess.run(["ip", "netns", "exec", probe, "iptables", "-t", "nat", "-L"],
                           capture_output=True, text=True)
        if r.returncode != 0:
            return f"iptables nat does not work in a namespace: {r.stderr.strip()}"
    finally:
        subprocess.run(["ip", "netns", "del", probe], capture_output=True)
    return None


pytestmark = [pytest.mark.timeout(240)]
_SKIP = _missing()
if _SKIP:
    pytestmark.append(pytest.mark.skip(reason=_SKIP))


def sh(*cmd: str, check: bool = True, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if check and r.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} -> {r.returncode}: {r.stderr}{r.stdout}")
    return r


class Pod:
    def __init__(self, name: str, ip: str) -> None:
        self.ns = name
        self.ip = ip
        self.procs: list[subprocess.Popen[bytes]] = []

    def run(self, *cmd: str, user: bool = False, check: bool = True,
            timeout: float = 30) -> subprocess.CompletedProcess[str]:
        prefix = ["ip", "netns", "exec", self.ns, *(NOBODY if user else [])]
        return sh(*prefix, *cmd, check=check, timeout=timeout)

    def start(self, *cmd: str, ready: str | None = None, log: Path | None = None,
              env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        out: Any = open(log, "wb") if log else subprocess.PIPE  # noqa: SIM115
        proc = subprocess.Popen(["ip", "netns", "exec", self.ns, *cmd], stdout=out,
                                stderr=subprocess.STDOUT if log else subprocess.DEVNULL,
                                env={**os.environ, **(env or {})}, cwd=REPO)
        self.procs.append(proc)
        if ready is not None:
            assert proc.stdout is not None
            line = proc.stdout.readline().decode()
            assert line.startswith(ready), f"{cmd}: {line!r}"
        return proc

    def stop(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                p.terminate()
        for p in self.procs:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()


def sidecar_a(server_ip: str, pki: dict[str, Path]) -> dict[str, Any]:
    tls = {"ca": str(pki["ca"]), "cert": str(pki["client_cert"]), "key": str(pki["client_key"])}

    def to_b(name: str, port: int, protocol: str, **extra: Any) -> dict[str, Any]:
        return {"name": name, "protocol": protocol, "endpoints": [f"{server_ip}:{port}"],
                "tls": tls, **extra}

    def virtual(name: str, port: int, protocol: str, route: str) -> dict[str, Any]:
        return {"name": name, "address": f"0.0.0.0:{port}", "bind_to_port": False,
                "protocol": protocol, "route": route}

    def to(cluster: str) -> dict[str, Any]:
        return {"name": cluster, "rules": [{"cluster": cluster, "timeout": "5s"}]}

    return {
        "admin": {"address": "127.0.0.1:15000"},
        "log": {"level": "debug", "format": "text"},
        "listeners": [
            {"name": "outbound", "address": "0.0.0.0:15001", "protocol": "tcp",
             "use_original_dst": True, "cluster": "passthrough"},
            virtual("out_http_8080", 8080, "http1", "web"),
            virtual("out_grpc_50051", 50051, "grpc", "grpc"),
            virtual("out_redis_6379", 6379, "redis", "redis"),
            virtual("out_bolt_12200", 12200, "bolt", "bolt"),
            virtual("out_memcache_11211", 11211, "memcache", "memcache"),
        ],
        "routes": [
            {"name": "web", "virtual_hosts": [{"name": "all", "domains": ["*"], "rules": [
                {"match": {"prefix": "/"}, "cluster": "web", "timeout": "5s"}]}]},
            {"name": "grpc", "virtual_hosts": [{"name": "all", "domains": ["*"], "rules": [
                {"match": {"prefix": "/"}, "cluster": "grpc", "timeout": "5s"}]}]},
            to("redis"), to("bolt"),
            {"name": "memcache", "rules": [{"cluster": "redis", "timeout": "5s"}]},
        ],
        "clusters": [
            {"name": "passthrough", "type": "original_dst", "tls": tls},
            to_b("web", 8080, "http1"), to_b("grpc", 50051, "grpc"),
            to_b("redis", 6379, "redis"), to_b("bolt", 12200, "bolt"),
        ],
    }


def sidecar_b(pki: dict[str, Path]) -> dict[str, Any]:
    def virtual(name: str, port: int, protocol: str, route: str, **kw: Any) -> dict[str, Any]:
        return {"name": name, "address": f"0.0.0.0:{port}", "bind_to_port": False,
                "protocol": protocol, "route": route, **kw}

    def local(name: str, port: int, protocol: str) -> dict[str, Any]:
        return {"name": name, "protocol": protocol, "endpoints": [f"127.0.0.1:{port}"]}

    def to(cluster: str) -> dict[str, Any]:
        return {"name": cluster, "rules": [{"cluster": cluster, "timeout": "5s"}]}

    return {
        "admin": {"address": "127.0.0.1:15000"},
        "log": {"level": "debug", "format": "text"},
        "listeners": [
            {"name": "inbound", "address": "0.0.0.0:15006", "protocol": "tcp",
             "use_original_dst": True, "cluster": "inbound_passthrough",
             "tls": {"cert": str(pki["server_cert"]), "key": str(pki["server_key"]),
                     "ca": str(pki["ca"]), "require_client_cert": True}},
            virtual("in_http_8080", 8080, "http1", "web", forward_client_cert="sanitize_set"),
            virtual("in_grpc_50051", 50051, "grpc", "grpc"),
            virtual("in_redis_6379", 6379, "redis", "redis"),
            virtual("in_bolt_12200", 12200, "bolt", "bolt"),
        ],
        "routes": [
            {"name": "web", "virtual_hosts": [{"name": "all", "domains": ["*"], "rules": [
                {"match": {"prefix": "/"}, "cluster": "web", "timeout": "5s"}]}]},
            {"name": "grpc", "virtual_hosts": [{"name": "all", "domains": ["*"], "rules": [
                {"match": {"prefix": "/"}, "cluster": "grpc", "timeout": "5s"}]}]},
            to("redis"), to("bolt"),
        ],
        "clusters": [
            {"name": "inbound_passthrough", "type": "original_dst"},
            local("web", 8080, "http1"), local("grpc", 50051, "grpc"),
            local("redis", 6379, "redis"), local("bolt", 12200, "bolt"),
        ],
    }


@pytest.fixture(scope="module")
def mesh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("mesh")
    os.chmod(tmp, 0o755)
    net = random.randint(10, 250)
    tag = f"{os.getpid() % 10000}{random.randint(100, 999)}"
    a, b = Pod(f"mosnpy-a{tag}", f"10.78.{net}.1"), Pod(f"mosnpy-b{tag}", f"10.78.{net}.2")
    pki = Pki(tmp / "pki", "mesh")
    client_cert, client_key = pki.issue("client", uris=(CLIENT_ID,))
    server_cert, server_key = pki.issue("server", uris=(SERVER_ID,), ips=(b.ip,),
                                        dns=("server.default.svc",))
    certs = {"ca": pki.ca, "client_cert": client_cert, "client_key": client_key,
             "server_cert": server_cert, "server_key": server_key}
    for p in (tmp / "pki").iterdir():
        os.chmod(p, 0o644)
    try:
        for pod in (a, b):
            sh("ip", "netns", "add", pod.ns)
            pod.run("ip", "link", "set", "lo", "up")
        sh("ip", "link", "add", f"va{tag}", "netns", a.ns, "type", "veth", "peer", "name",
           f"vb{tag}", "netns", b.ns)
        for pod, dev in ((a, f"va{tag}"), (b, f"vb{tag}")):
            pod.run("ip", "addr", "add", f"{pod.ip}/24", "dev", dev)
            pod.run("ip", "link", "set", dev, "up")
        # Interception: A's applications' outbound TCP to B, B's inbound TCP.
        a.run("iptables", "-t", "nat", "-A", "OUTPUT", "-p", "tcp", "-d", f"{b.ip}/32",
              "-m", "owner", "!", "--uid-owner", "0", "-j", "REDIRECT", "--to-ports", "15001")
        b.run("iptables", "-t", "nat", "-A", "PREROUTING", "-p", "tcp", "-d", f"{b.ip}/32",
              "-j", "REDIRECT", "--to-ports", "15006")
        # B's applications, on loopback (and the server-first one on every address)
        py = sys.executable
        env = {"PYTHONPATH": str(REPO)}
        b.start(py, str(PEERS / "http_backend.py"), "8080", "app-b", ready="READY", env=env)
        b.start(py, str(PEERS / "grpc_server.py"), "50051", ready="READY", env=env)
        b.start(py, str(PEERS / "anthunder_server.py"), "12200", "127.0.0.1", ready="READY",
                env=env)
        b.start(py, str(HERE / "banner_server.py"), "0.0.0.0", "9000", ready="READY")
        b.start("redis-server", "--bind", "127.0.0.1", "--port", "6379", "--save", "",
                "--appendonly", "no")
        for pod, cfg in ((a, sidecar_a(b.ip, certs)), (b, sidecar_b(certs))):
            path = tmp / f"{pod.ns}.yaml"
            path.write_text(yaml.safe_dump(cfg, sort_keys=False))
            ready = tmp / f"{pod.ns}.ready"
            pod.start(py, "-m", "mosn_py.cli", "run", "-c", str(path), "--ready-file",
                      str(ready), log=tmp / f"{pod.ns}.log")
            deadline = time.monotonic() + 30
            while not ready.exists():
                assert time.monotonic() < deadline, (tmp / f"{pod.ns}.log").read_text()
                time.sleep(0.05)
        deadline = time.monotonic() + 15
        while b.run("redis-cli", "ping", check=False).stdout.strip() != "PONG":
            assert time.monotonic() < deadline, "redis-server did not start"
            time.sleep(0.1)
        yield {"a": a, "b": b, "tmp": tmp, "pki": pki}
    finally:
        for pod in (a, b):
            pod.stop()
            sh("ip", "netns", "del", pod.ns, check=False)


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
