#!/usr/bin/env python3
"""Added latency of the two-sidecar path (app -> outbound sidecar -> mutual TLS -> inbound
sidecar -> app) against the direct path, for HTTP/1.1 and Redis. Needs root (network
namespaces, iptables); builds the two pods of tests/e2e/mesh.py and removes them after.

    sudo .venv/bin/python bench/sidecar_latency.py [--requests 3000] [--json-out r.json]

HTTP/1.1: tests/e2e/pod_client.py sends N sequential GETs on one keep-alive connection from
pod A to pod B's app (`/status/200` of tests/integration/peers/http_backend.py); through the
mesh as an intercepted user (uid 65534), directly as root to a second instance on B's pod IP
whose port is excluded from interception. Redis: `redis-benchmark -c 1 -n N -t get,set`
from pod A, through the mesh (B's redis on 127.0.0.1 behind the inbound sidecar) and directly
(a second redis-server on B's pod IP). One connection, one request at a time: the figures are
per-request latency, not throughput. Both sidecars run one worker each; nothing is pinned.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import statistics
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.e2e.mesh import DIRECT_HTTP, DIRECT_REDIS, HERE, missing, two_pods  # noqa: E402


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, round(q * (len(s) - 1)))]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--requests", type=int, default=3000)
    ap.add_argument("--json-out")
    args = ap.parse_args()
    why = missing()
    if why:
        raise SystemExit(f"cannot run: {why}")
    n = args.requests
    rows: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as d, two_pods(Path(d), direct=True,
                                                       log_level="warning") as mesh:
        a, b = mesh["a"], mesh["b"]
        client = str(HERE / "pod_client.py")
        for label, port, user in (("http direct", DIRECT_HTTP, False),
                                  ("http via 2 sidecars", 8080, True)):
            out = a.run(sys.executable, client, "http-latency", b.ip, str(port), str(n),
                        user=user, timeout=600).stdout
            lat = json.loads(out)
            rows[label] = {"p50": statistics.median(lat), "p99": pct(lat, 0.99),
                           "mean": statistics.fmean(lat)}
        for label, port, user in (("redis direct", DIRECT_REDIS, False),
                                  ("redis via 2 sidecars", 6379, True)):
            out = a.run("redis-benchmark", "-h", b.ip, "-p", str(port), "-c", "1", "-n", str(n),
                        "-t", "get,set", "--csv", user=user, timeout=600).stdout
            for rec in csv.DictReader(io.StringIO(out)):
                rows[f"{label} {rec['test']}"] = {
                    "p50": float(rec["p50_latency_ms"]), "p99": float(rec["p99_latency_ms"]),
                    "mean": float(rec["avg_latency_ms"])}
    print("| path | p50 ms | p99 ms | mean ms | added p50 / p99 ms |")
    print("|---|---:|---:|---:|---:|")
    for label, r in rows.items():
        base = rows.get(label.replace("via 2 sidecars", "direct"))
        added = (f"{r['p50'] - base['p50']:.3f} / {r['p99'] - base['p99']:.3f}"
                 if base is not None and "sidecars" in label else "")
        print(f"| {label} | {r['p50']:.3f} | {r['p99']:.3f} | {r['mean']:.3f} | {added} |")
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
