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
    sh(*mosn, "certs", "ca", "--out", str(root / "ca"))
    for name in ("client", "server"):
        sh(*mosn, "certs", "workload", "--ca", str(root / "ca"), "--out", str(root / name),
           "--name", name)
    for p in root.rglob("*"):
        os.chmod(p, 0o755 if p.is_dir() else 0o644)
    os.chmod(root, 0o755)
    return {"ca": root / "client" / "ca.pem",
            "client_cert": root / "client" / "cert.pem", "client_key": root / "client" / "key.pem",
            "server_cert": root / "server" / "cert.pem", "server_key": root / "server" / "key.pem"}


def link(a: Pod, b: Pod, tag: str, *, ipv6: tuple[str, str] | None = None) -> None:
    """Create both namespaces and a veth pair between them with the pods' addresses (/24),
    and IPv6 ones (/64) if given."""
    for pod in (a, b):
        sh("ip", "netns", "add", pod.ns)
        pod.run("ip", "link", "set", "lo", "up")
    sh("ip", "link", "add", f"va{tag}", "netns", a.ns, "type", "veth", "peer", "name",
       f"vb{tag}", "netns", b.ns)
    for i, (pod, dev) in enumerate(((a, f"va{tag}"), (b, f"vb{tag}"))):
        pod.run("ip", "addr", "add", f"{pod.ip}/24", "dev", dev)
        if ipv6 is not None:
            pod.run("ip", "-6", "addr", "add", f"{ipv6[i]}/64", "dev", dev, "nodad")
        pod.run("ip", "link", "set", dev, "up")


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


def new_tag() -> str:
    return f"{os.getpid() % 10000}{random.randint(100, 999)}"


@contextlib.contextmanager
def two_pods(
    tmp: Path, *, direct: bool = False, log_level: str = "debug"
) -> Iterator[dict[str, Any]]:
    os.chmod(tmp, 0o755)
    net = random.randint(10, 250)
    tag = new_tag()
    a, b = Pod(f"mosnpy-a{tag}", f"10.78.{net}.1"), Pod(f"mosnpy-b{tag}", f"10.78.{net}.2")
    mosn = [sys.executable, "-m", "mosn_py.cli"]
    certs = make_certs(tmp / "certs", mosn)
    try:
        link(a, b, tag)
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
    finally:
        for pod in (a, b):
            pod.stop()
            sh("ip", "netns", "del", pod.ns, check=False)




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
