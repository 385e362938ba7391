#!/usr/bin/env python3
"""xDS benchmark: how long from editing the control plane's file to the proxy serving the
new route, with a large config live, under load.

    .venv/bin/python bench/xds_switch.py [--clusters 1000] [--endpoints 10] [--switches 20]
        [--load-conns 4] [--mosn-py .venv/bin/mosn-py] [--json-out r.json]

Set-up: two HTTP backends (tests/integration/peers/http_backend.py, named a and b),
``mosn-py control-plane`` serving a resources file, ``mosn-py run`` bootstrapped with only an
``xds`` section and an admin listener. The file holds one HTTP listener whose route sends
``/`` to cluster a or b, plus filler clusters (``--clusters`` in all, each with
``--endpoints`` endpoints on 127.1.0.0/16 that are never dialled).

1. The proxy starts against a small file (clusters a and b only): RSS "before".
2. The file grows to the full set: time until the proxy's /config_dump shows it; RSS "after".
3. ``--load-conns`` keep-alive connections send GETs without pause (each counts its
   non-200 answers and connection errors) while the route is switched ``--switches`` times
   between a and b: for each switch, the time from the file's replacement (os.replace) to
   the first answer of the new backend on a separate probe connection (polled every 2 ms).

The control plane polls its file every 0.2 s (its default), so up to 0.2 s of each figure is
the poll; the table says so. Every loop is bounded in count and time.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[1]
BACKEND = REPO / "tests" / "integration" / "peers" / "http_backend.py"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_backend(name: str) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, str(BACKEND), str(port), name],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    assert proc.stdout is not None
    line = proc.stdout.readline().decode()
    if not line.startswith("READY"):
        raise SystemExit(f"backend {name} did not start: {line!r}")
    return proc, port


def resources(listen: int, target: str, ports: dict[str, int], n_clusters: int,
              n_endpoints: int) -> dict[str, Any]:
    clusters: list[dict[str, Any]] = [
        {"name": name, "protocol": "http1", "endpoints": [f"127.0.0.1:{port}"]}
        for name, port in ports.items()
    ]
    for i in range(max(0, n_clusters - len(clusters))):
        clusters.append({
            "name": f"filler-{i:05d}", "protocol": "http1",
            "endpoints": [f"127.1.{(i * n_endpoints + j) // 250}.{(i * n_endpoints + j) % 250 + 1}"
                          f":{8000 + j}" for j in range(n_endpoints)],
        })
    return {
        "listeners": [{"name": "web", "address": f"127.0.0.1:{listen}", "protocol": "http1",
                       "route": "web"}],
        "routes": [{"name": "web", "virtual_hosts": [{"name": "all", "domains": ["*"], "rules": [
            {"match": {"prefix": "/"}, "cluster": target}]}]}],
        "clusters": clusters,
    }


def write_atomically(path: Path, data: dict[str, Any]) -> float:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(yaml.safe_dump(data, sort_keys=False))
    os.replace(tmp, path)
    return time.monotonic()


def wait_ready(path: Path, proc: subprocess.Popen[bytes], timeout: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"{proc.args} did not become ready (exit {proc.poll()})")
        time.sleep(0.02)
    return dict(json.loads(path.read_text()))


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def admin_json(admin: str, path: str) -> dict[str, Any]:
    with urllib.request.urlopen(f"http://{admin}{path}", timeout=10) as r:
        return dict(json.loads(r.read()))


class Probe:
    """One keep-alive connection; ``who()`` = the name of the backend that answered."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)

    def who(self) -> str | None:
        try:
            self.conn.request("GET", "/echo")
            r = self.conn.getresponse()
            body = r.read()
            if r.status != 200:
                return None
            return str(json.loads(body)["server"])
        except (OSError, http.client.HTTPException, ValueError):
            self.conn.close()
            self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
            return None


class Load(threading.Thread):
    def __init__(self, port: int, stop: threading.Event) -> None:
        super().__init__(daemon=True)
        self.port, self.stop = port, stop
        self.ok = self.failed = 0
        self.errors: list[str] = []

    def run(self) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
        deadline = time.monotonic() + 600
        while not self.stop.is_set() and time.monotonic() < deadline:
            try:
                conn.request("GET", "/echo")
                r = conn.getresponse()
                r.read()
                if r.status == 200:
                    self.ok += 1
                else:
                    self.failed += 1
                    self.errors.append(f"status {r.status}")
            except (OSError, http.client.HTTPException) as e:
                self.failed += 1
                self.errors.append(repr(e))
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
        conn.close()


def percentile(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, max(0, round(q * (len(s) - 1))))]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--clusters", type=int, default=1000)
    ap.add_argument("--endpoints", type=int, default=10)
    ap.add_argument("--switches", type=int, default=20)
    ap.add_argument("--load-conns", type=int, default=4)
    ap.add_argument("--mosn-py", default=None, help="the mosn-py executable (default: -m)")
    ap.add_argument("--json-out")
    args = ap.parse_args()
    cmd = [args.mosn_py] if args.mosn_py else [sys.executable, "-m", "mosn_py.cli"]

    with contextlib.ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        (pa, port_a), (pb, port_b) = start_backend("a"), start_backend("b")
        stack.callback(pa.kill)
        stack.callback(pb.kill)
        ports = {"a": port_a, "b": port_b}
        listen = free_port()
        res = tmp / "resources.yaml"
        write_atomically(res, resources(listen, "a", ports, 2, 1))
        cp = subprocess.Popen([*cmd, "control-plane", "-c", str(res), "--listen", "127.0.0.1:0",
                               "--ready-file", str(tmp / "cp.json")],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        stack.callback(cp.wait, 10)
        stack.callback(cp.terminate)
        xds = wait_ready(tmp / "cp.json", cp)["addresses"]["xds"]
        boot = tmp / "bootstrap.yaml"
        boot.write_text(yaml.safe_dump({
            "admin": {"address": "127.0.0.1:0"}, "log": {"level": "warning"},
            "xds": {"address": xds, "node": {"id": "bench", "cluster": "bench"}},
        }))
        proxy = subprocess.Popen([*cmd, "run", "-c", str(boot), "--ready-file",
                                  str(tmp / "proxy.json")],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        stack.callback(proxy.wait, 30)
        stack.callback(proxy.terminate)
        admin = wait_ready(tmp / "proxy.json", proxy)["addresses"]["admin"]
        probe = Probe(listen)
        deadline = time.monotonic() + 30
        while probe.who() != "a":
            if time.monotonic() > deadline:
                raise SystemExit("the proxy never served the first route")
            time.sleep(0.05)
        rss_before = rss_mib(proxy.pid)

        t0 = write_atomically(res, resources(listen, "a", ports, args.clusters, args.endpoints))
        deadline = time.monotonic() + 120
        while True:
            dump = admin_json(admin, "/config_dump")
            if len(dump["config"]["clusters"]) >= args.clusters:
                break
            if time.monotonic() > deadline:
                raise SystemExit("the full config never arrived")
            time.sleep(0.01)
        full_load = time.monotonic() - t0
        rss_after = rss_mib(proxy.pid)

        stop = threading.Event()
        loads = [Load(listen, stop) for _ in range(args.load_conns)]
        for ld in loads:
            ld.start()
        time.sleep(0.5)
        latencies: list[float] = []
        current = "a"
        for _ in range(args.switches):
            current = "b" if current == "a" else "a"
            t0 = write_atomically(
                res, resources(listen, current, ports, args.clusters, args.endpoints))
            deadline = t0 + 30
            while probe.who() != current:
                if time.monotonic() > deadline:
                    raise SystemExit(f"switch to {current} never happened")
                time.sleep(0.002)
            latencies.append(time.monotonic() - t0)
            time.sleep(0.3)
        stop.set()
        for ld in loads:
            ld.join(10)

    ok = sum(ld.ok for ld in loads)
    failed = sum(ld.failed for ld in loads)
    out = {
        "clusters": args.clusters, "endpoints_per_cluster": args.endpoints,
        "full_config_applied_s": round(full_load, 3),
        "switch_p50_ms": round(statistics.median(latencies) * 1000, 1),
        "switch_p99_ms": round(percentile(latencies, 0.99) * 1000, 1),
        "switch_max_ms": round(max(latencies) * 1000, 1),
        "switches": len(latencies), "requests_ok": ok, "requests_failed": failed,
        "errors": sorted(set(e for ld in loads for e in ld.errors))[:5],
        "proxy_rss_before_mib": round(rss_before, 1), "proxy_rss_after_mib": round(rss_after, 1),
    }
    print(f"| clusters x endpoints | {args.clusters} x {args.endpoints} |")
    print("|---|---:|")
    print("| full config applied (file written -> in /config_dump) | "
          f"{out['full_config_applied_s']} s |")
    print(f"| route switch p50 / p99 / max (file written -> new backend answers; "
          f"includes the 0.2 s file poll) | {out['switch_p50_ms']} / {out['switch_p99_ms']} / "
          f"{out['switch_max_ms']} ms |")
    print(f"| requests under load during {len(latencies)} switches: ok / failed | "
          f"{ok} / {failed} |")
    print(f"| proxy RSS before / after | {out['proxy_rss_before_mib']} / "
          f"{out['proxy_rss_after_mib']} MiB |")
    if out["errors"]:
        print("errors:", out["errors"])
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(out, indent=2))
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
