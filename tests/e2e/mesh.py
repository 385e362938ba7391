"""Two "pods" for the sidecar e2e tests and benchmark: network namespaces joined by a veth
pair, each with a mosn-py sidecar and iptables interception (see test_sidecar_netns.py for the
picture). ``two_pods(tmp)`` sets everything up and tears it down, whatever happens.

With ``direct=True`` pod B also serves an HTTP app and a redis-server on its pod IP at ports
excluded from interception (18080, 16379), so a root client in pod A (never intercepted)
measures the path without proxies (bench/sidecar_latency.py).
"""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from tests.pki import Pki

REPO = Path(__file__).resolve().parents[2]
PEERS = REPO / "tests" / "integration" / "peers"
HERE = Path(__file__).resolve().parent
NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
CLIENT_ID = "spiffe://cluster.local/ns/default/sa/client"
SERVER_ID = "spiffe://cluster.local/ns/default/sa/server"
DIRECT_HTTP, DIRECT_REDIS = 18080, 16379


def missing() -> str | None:
    """Why the e2e tests cannot run here (None: they can)."""
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


@contextlib.contextmanager
def two_pods(
    tmp: Path, *, direct: bool = False, log_level: str = "debug"
) -> Iterator[dict[str, Any]]:
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
        for port in (DIRECT_HTTP, DIRECT_REDIS):
            b.run("iptables", "-t", "nat", "-A", "PREROUTING", "-p", "tcp", "--dport", str(port),
                  "-j", "RETURN")
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
        if direct:
            b.start(py, str(PEERS / "http_backend.py"), str(DIRECT_HTTP), "app-b-direct",
                    "--bind", b.ip, ready="READY", env=env)
            b.start("redis-server", "--bind", b.ip, "--port", str(DIRECT_REDIS), "--save", "",
                    "--appendonly", "no", "--protected-mode", "no")
        for pod, cfg in ((a, sidecar_a(b.ip, certs)), (b, sidecar_b(certs))):
            cfg["log"]["level"] = log_level
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


