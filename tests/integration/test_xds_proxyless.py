"""gRPC's own xDS client against ``mosn-py control-plane`` (reference/xds.md §4).

Two grpcio backends (tests/integration/peers/grpc_server.py, each tagging its answers with
a ``x-backend`` trailer so the client can tell them apart), the control plane serving a copy
of examples/xds/proxyless-grpc.yaml aimed at the first, and a *separate* Python process
(gRPC reads GRPC_XDS_BOOTSTRAP once per process) calling ``xds:///greeter.test`` in a loop
and printing which backend answered. Then the YAML is edited to name the second backend
and the calls must move there, without a failed call on the way.
"""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from mosn_py.config.loader import load_config
from tests.integration.conftest import PEERS, REPO, PeerProcess, free_port
from tests.integration.test_control_plane import control_plane  # noqa: F401  (fixture)

pytestmark = pytest.mark.timeout(150)

EXAMPLE = REPO / "examples" / "xds" / "proxyless-grpc.yaml"
SERVICE = "com.alipay.rpc.common.service.facade.pb.SampleServicePb"

# grpc_server.py with its ``hello`` wrapped to add a trailer naming the backend.
BACKEND = """\
import sys
sys.path.insert(0, {peers!r})
import grpc_server

name, port = sys.argv[1], sys.argv[2]
inner = grpc_server.hello

def hello(req, ctx):
    ctx.set_trailing_metadata((("x-backend", name),))
    return inner(req, ctx)

grpc_server.hello = hello
sys.argv = [sys.argv[0], port]
grpc_server.main()
"""

# The xDS client: one channel to xds:///greeter.test, a call every 50 ms, one line each.
CLIENT = """\
import sys, time
import grpc
from mosn_py.demo import sample_service_pb2 as pb

channel = grpc.insecure_channel("xds:///greeter.test")
hello = channel.unary_unary(
    "/{service}/hello",
    request_serializer=lambda m: m.SerializeToString(),
    response_deserializer=pb.SampleServicePbResult.FromString,
)
deadline = time.monotonic() + float(sys.argv[1])
seq = 0
while time.monotonic() < deadline:
    seq += 1
    try:
        resp, call = hello.with_call(pb.SampleServicePbRequest(name="xds", seq=seq), timeout=5)
        backend = dict(call.trailing_metadata()).get("x-backend", "?")
        print("OK", backend, resp.result, resp.seq, flush=True)
    except grpc.RpcError as e:
        print("ERR", e.code().name, (e.details() or "").replace("\\n", " "), flush=True)
    time.sleep(0.05)
print("DONE", flush=True)
"""


def test_example_loads_as_shipped() -> None:
    cfg = load_config(EXAMPLE)
    (listener,) = cfg.listeners
    assert (listener.name, listener.api_listener, listener.protocol, listener.route) == (
        "greeter.test",
        True,
        "grpc",
        "greeter_route",
    )
    (route,) = cfg.routes
    (vh,) = route.virtual_hosts
    assert vh.domains == ("greeter.test",)
    assert [(r.match.prefix, r.cluster) for r in vh.rules] == [("/", "greeter")]
    (cluster,) = cfg.clusters
    assert (cluster.name, cluster.protocol) == ("greeter", "grpc")
    assert [str(e.address) for e in cluster.endpoints] == ["127.0.0.1:50051"]


@pytest.fixture
def backends(tmp_path: Path) -> Iterator[Any]:
    started: list[PeerProcess] = []
    script = tmp_path / "backend.py"
    script.write_text(BACKEND.format(peers=str(PEERS)))

    def start(name: str) -> PeerProcess:
        port = free_port()
        env = dict(os.environ, PYTHONPATH=str(REPO))
        proc = subprocess.Popen(
            [sys.executable, str(script), name, str(port)],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=env,
        )
        assert proc.stdout is not None
        line = proc.stdout.readline().decode()
        if not line.startswith("READY"):
            proc.kill()
            raise AssertionError(f"backend {name} did not start: {line!r}")
        peer = PeerProcess(proc, "127.0.0.1", port)
        started.append(peer)
        return peer

    yield start
    for p in started:
        p.kill()


class Lines:
    """A subprocess's stdout lines, read by a thread, taken with a timeout."""

    def __init__(self, proc: subprocess.Popen[bytes]) -> None:
        self.proc = proc
        self.q: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            self.q.put(raw.decode(errors="replace").rstrip("\n"))
        self.q.put("EOF")

    def next(self, deadline: float) -> str:
        line = self.q.get(timeout=max(0.01, deadline - time.monotonic()))
        self.seen.append(line)
        return line

    def wait_for(self, backend: str, count: int, within: float) -> list[str]:
        """Lines until ``count`` consecutive answers from ``backend``; every line read."""
        deadline = time.monotonic() + within
        run, lines = 0, []
        while run < count:
            try:
                line = self.next(deadline)
            except queue.Empty:
                raise AssertionError(
                    f"no {count} answers from {backend} within {within}s:\n"
                    + "\n".join(self.seen[-30:])
                ) from None
            if line in ("EOF", "DONE"):
                raise AssertionError("client ended early:\n" + "\n".join(self.seen[-30:]))
            lines.append(line)
            run = run + 1 if line.startswith(f"OK {backend} ") else 0
        return lines


def test_grpc_xds_client_follows_the_control_plane(
    tmp_path: Path,
    backends: Any,
    control_plane: Any,  # noqa: F811
) -> None:
    a, b = backends("A"), backends("B")
    resources = yaml.safe_load(EXAMPLE.read_text())
    resources["clusters"][0]["endpoints"] = [a.address]
    res_path = tmp_path / "resources.yaml"
    res_path.write_text(yaml.safe_dump(resources, sort_keys=False))
    cp = control_plane("-c", str(res_path))

    bootstrap = tmp_path / "bootstrap.json"
    bootstrap.write_text(
        json.dumps(
            {
                "xds_servers": [
                    {
                        "server_uri": cp.address,
                        "channel_creds": [{"type": "insecure"}],
                        "server_features": ["xds_v3"],
                    }
                ],
                "node": {
                    "id": "grpc-proxyless-1",
                    "cluster": "test",
                    "locality": {"region": "local", "zone": "a"},
                    "metadata": {},
                },
            }
        )
    )
    client_script = tmp_path / "client.py"
    client_script.write_text(CLIENT.format(service=SERVICE))
    env = dict(os.environ, PYTHONPATH=str(REPO), GRPC_XDS_BOOTSTRAP=str(bootstrap))
    env.pop("GRPC_XDS_BOOTSTRAP_CONFIG", None)
    client = subprocess.Popen(
        [sys.executable, str(client_script), "90"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=env,
        cwd=tmp_path,
    )
    try:
        out = Lines(client)
        before = out.wait_for("A", 5, within=30)
        first_ok = next(i for i, line in enumerate(before) if line.startswith("OK "))
        assert all(line.startswith("OK A hello xds ") for line in before[first_ok:]), before

        # Point the cluster at B: EDS version 2 reaches the client, calls move to B.
        resources["clusters"][0]["endpoints"] = [b.address]
        res_path.write_text(yaml.safe_dump(resources, sort_keys=False))
        after = out.wait_for("B", 10, within=30)
        assert all(line.startswith(("OK A ", "OK B ")) for line in after), after
    finally:
        client.kill()
        client.wait(10)
    log = cp.log()
    assert '"xds nack"' not in log, log  # gRPC accepted every resource it was sent
    events = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
    opened = [e for e in events if e["msg"] == "xds stream opened"]
    assert opened and opened[0]["node"] == "grpc-proxyless-1"
