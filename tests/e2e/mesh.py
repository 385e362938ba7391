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
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from tests.e2e.netns import Netns, Network, skip_reason

REPO = Path(__file__).resolve().parents[2]
PEERS = REPO / "tests" / "integration" / "peers"
HERE = Path(__file__).resolve().parent
NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
CLIENT_ID = "spiffe://cluster.local/ns/default/sa/client"
SERVER_ID = "spiffe://cluster.local/ns/default/sa/server"
DIRECT_HTTP, DIRECT_REDIS = 18080, 16379


NOBODY = 65534  # the applications' uid: not the proxy's, so their traffic is intercepted


def missing() -> str | None:
    """Why the e2e tests cannot run here (None: they can)."""
    return skip_reason("setpriv", "curl", "redis-server", "redis-cli")


class Pod:
    """A network namespace with an address: run commands in it, start processes (stopped
    with the ``Network`` that owns the namespace)."""

    def __init__(self, netns: Netns, ip: str) -> None:
        self.netns = netns
        self.ns = netns.name
        self.ip = ip

    def run(self, *cmd: str, user: bool = False, check: bool = True,
            timeout: float = 30) -> subprocess.CompletedProcess[str]:
        """Run to completion (as the applications' uid with ``user``)."""
        return self.netns.run(*cmd, user=NOBODY if user else None, check=check,
                              timeout=timeout)

    def start(self, *cmd: str, ready: str | None = None, log: Path | None = None,
              env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        """Start in the background; with ``ready``, wait for its first line to start so."""
        out: Any = open(log, "wb") if log else subprocess.PIPE  # noqa: SIM115
        proc: subprocess.Popen[bytes] = self.netns.popen(
            *cmd, stdout=out, stderr=subprocess.STDOUT if log else subprocess.DEVNULL,
            env={**os.environ, **(env or {})}, cwd=REPO)
        if log:
            out.close()  # the child has its own copy
        if ready is not None:
            assert proc.stdout is not None
            line = proc.stdout.readline().decode()
            assert line.startswith(ready), f"{cmd}: {line!r}"
        return proc


def example(name: str, replace: dict[str, str]) -> dict[str, Any]:
    """examples/sidecar/NAME as shipped, with the strings in ``replace`` swapped."""
    text = (REPO / "examples" / "sidecar" / name).read_text()
    for old, new in replace.items():
        text = text.replace(old, new)
    return dict(yaml.safe_load(text))


def sidecar_a(server_ip: str, pki: dict[str, Path]) -> dict[str, Any]:
    return example("client-pod.yaml", {
        "10.0.0.2:": f"{server_ip}:",
        "/etc/mosn-py/certs/ca.pem": str(pki["ca"]),
        "/etc/mosn-py/certs/cert.pem": str(pki["client_cert"]),
        "/etc/mosn-py/certs/key.pem": str(pki["client_key"]),
    })


def sidecar_b(pki: dict[str, Path]) -> dict[str, Any]:
    return example("server-pod.yaml", {
        "/etc/mosn-py/certs/ca.pem": str(pki["ca"]),
        "/etc/mosn-py/certs/cert.pem": str(pki["server_cert"]),
        "/etc/mosn-py/certs/key.pem": str(pki["server_key"]),
    })


def make_certs(root: Path, mosn: list[str]) -> dict[str, Path]:
    """A mesh CA and the two workloads' certificates, made with ``mosn-py certs``."""
    subprocess.run([*mosn, "certs", "ca", "--out", str(root / "ca")], check=True,
                   capture_output=True, timeout=30)
    for name in ("client", "server"):
        subprocess.run([*mosn, "certs", "workload", "--ca", str(root / "ca"),
                        "--out", str(root / name), "--name", name],
                       check=True, capture_output=True, timeout=30)
    for p in root.rglob("*"):
        os.chmod(p, 0o755 if p.is_dir() else 0o644)
    os.chmod(root, 0o755)
    return {"ca": root / "client" / "ca.pem",
            "client_cert": root / "client" / "cert.pem", "client_key": root / "client" / "key.pem",
            "server_cert": root / "server" / "cert.pem", "server_key": root / "server" / "key.pem"}


def pod_pair(net: Network, prefix: str, *,
             ipv6: tuple[str, str] | None = None) -> tuple[Pod, Pod]:
    """Two pods, ``<prefix>.1`` and ``<prefix>.2`` (/24), joined by a veth pair; IPv6
    addresses (/64) too if given."""
    a, b = net.netns(), net.netns()
    dev_a, dev_b = net.veth(a, b, f"{prefix}.1/24", f"{prefix}.2/24")
    if ipv6 is not None:
        net.add_address(a, dev_a, f"{ipv6[0]}/64")
        net.add_address(b, dev_b, f"{ipv6[1]}/64")
    return Pod(a, f"{prefix}.1"), Pod(b, f"{prefix}.2")


def start_sidecar(pod: Pod, cfg: dict[str, Any], tmp: Path) -> None:
    """``mosn-py run`` with ``cfg`` inside ``pod``; returns once it is ready."""
    path = tmp / f"{pod.ns}.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    ready = tmp / f"{pod.ns}.ready"
    pod.start(sys.executable, "-m", "mosn_py.cli", "run", "-c", str(path), "--ready-file",
              str(ready), log=tmp / f"{pod.ns}.log")
    deadline = time.monotonic() + 30
    while not ready.exists():
        assert time.monotonic() < deadline, (tmp / f"{pod.ns}.log").read_text()
        time.sleep(0.05)


@contextlib.contextmanager
def two_pods(
    tmp: Path, *, direct: bool = False, log_level: str = "debug"
) -> Iterator[dict[str, Any]]:
    os.chmod(tmp, 0o755)
    mosn = [sys.executable, "-m", "mosn_py.cli"]
    certs = make_certs(tmp / "certs", mosn)
    with Network() as net:
        a, b = pod_pair(net, f"10.78.{random.randint(10, 250)}")
        # Interception, installed the way a pod's init container does. The sidecars run as
        # root here, so uid 0 is the proxy's; the applications run as uid 65534.
        a.run(*mosn, "iptables", "apply", "--proxy-uid", "0")
        b.run(*mosn, "iptables", "apply", "--proxy-uid", "0",
              "--exclude-inbound-ports", f"{DIRECT_HTTP},{DIRECT_REDIS}")
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
            start_sidecar(pod, cfg, tmp)
        deadline = time.monotonic() + 15
        while b.run("redis-cli", "ping", check=False).stdout.strip() != "PONG":
            assert time.monotonic() < deadline, "redis-server did not start"
            time.sleep(0.1)
        yield {"a": a, "b": b, "tmp": tmp}




def demo() -> int:
    """``sudo .venv/bin/python -m tests.e2e.mesh`` (from the repository): the README's
    sidecar walk-through. Builds
    the two pods, calls pod B's services from pod A as an application would (curl, redis-cli),
    prints what came back and what the sidecars counted, and removes everything."""
    import json
    import tempfile

    why = missing()
    if why:
        print(f"cannot run the demo: {why}", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory() as d, two_pods(Path(d), log_level="info") as m:
        a, b = m["a"], m["b"]
        print(f"pod A {a.ip} (netns {a.ns}), pod B {b.ip} (netns {b.ns})")
        echo = json.loads(a.run("curl", "-s", f"http://{b.ip}:8080/echo", user=True).stdout)
        xfcc = dict((k.lower(), v) for k, v in echo["headers"])["x-forwarded-client-cert"]
        print(f"$ curl http://{b.ip}:8080/echo   (in pod A, as uid 65534)")
        print(f"  answered by {echo['server']}; x-forwarded-client-cert: {xfcc}")
        for cmd in (("set", "greeting", "hello-mesh"), ("get", "greeting")):
            out = a.run("redis-cli", "-h", b.ip, *cmd, user=True).stdout.strip()
            print(f"$ redis-cli -h {b.ip} {' '.join(cmd)}   -> {out}")
        for pod, side in ((a, "outbound"), (b, "inbound")):
            text = pod.run("curl", "-s", "http://127.0.0.1:15000/metrics").stdout
            counts = []
            for ln in text.splitlines():
                if ln.startswith("mosn_listener_cx_total{") and not ln.endswith(" 0.0"):
                    name = ln.split('listener="')[1].split('"')[0]
                    counts.append(f"{name}={ln.rsplit(' ', 1)[1]}")
            print(f"sidecar {side} ({pod.ns}) connections: " + ", ".join(counts))
    return 0


if __name__ == "__main__":
    sys.exit(demo())
