"""``mosn-py control-plane`` as a user runs it: a subprocess serving YAML files over ADS,
checked with a raw ``AggregatedDiscoveryServiceStub`` client.

Start-up errors (exit 2, path-precise lines), SIGTERM with streams open (exit 0), a file
edit reaching a connected client, and 1,000 clusters x 10 endpoints served complete in one
response per type. ``start_control_plane`` is shared with test_xds_proxyless.py.
"""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest
from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.core.v3 import base_pb2
from envoy.config.endpoint.v3 import endpoint_pb2
from envoy.service.discovery.v3 import ads_pb2_grpc, discovery_pb2

from mosn_py.xds import resources as rt
from tests.integration.conftest import REPO

pytestmark = pytest.mark.timeout(120)

CLI = [sys.executable, "-m", "mosn_py.cli", "control-plane"]


@dataclass
class ControlPlaneProcess:
    proc: subprocess.Popen[bytes]
    log_path: Path
    address: str = ""

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(f"control plane did not exit:\n{self.log()}") from None


def start_control_plane(tmp_path: Path, *args: str, name: str = "cp") -> ControlPlaneProcess:
    """``mosn-py control-plane ARGS --listen 127.0.0.1:0 --ready-file ...``, ready to serve."""
    ready = tmp_path / f"{name}.ready.json"
    log_path = tmp_path / f"{name}.log"
    with open(log_path, "wb") as logf:
        proc = subprocess.Popen(
            [
                *CLI,
                *args,
                "--listen",
                "127.0.0.1:0",
                "--ready-file",
                str(ready),
                "--poll-interval",
                "0.1",
            ],
            stdout=logf,
            stderr=subprocess.STDOUT,
            cwd=REPO,
        )
    cp = ControlPlaneProcess(proc, log_path)
    deadline = time.monotonic() + 30
    while not ready.exists():
        if proc.poll() is not None:
            raise AssertionError(f"control plane exited with {proc.returncode}:\n{cp.log()}")
        if time.monotonic() > deadline:
            proc.kill()
            raise AssertionError(f"control plane not ready:\n{cp.log()}")
        time.sleep(0.02)
    info = json.loads(ready.read_text())
    assert info["pid"] == proc.pid
    cp.address = info["addresses"]["xds"]
    return cp


@pytest.fixture
def control_plane(tmp_path: Path) -> Iterator[Any]:
    started: list[ControlPlaneProcess] = []

    def start(*args: str) -> ControlPlaneProcess:
        cp = start_control_plane(tmp_path, *args, name=f"cp{len(started)}")
        started.append(cp)
        return cp

    yield start
    for cp in started:
        if cp.proc.poll() is None:
            code = cp.stop()
            text = cp.log()
            assert code == 0, f"exit code {code}:\n{text}"
            assert "Traceback" not in text, text


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def cli(*args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, *args], check=False, cwd=REPO, capture_output=True, text=True, timeout=timeout
    )


GOOD = """\
    log: {level: info, format: json}
    clusters:
      - name: backend
        protocol: grpc
        endpoints: [127.0.0.1:50051]
"""


class RawClient:
    """One ADS stream over grpc.aio; responses queued by a reader task."""

    def __init__(self, address: str, node_id: str = "raw-1") -> None:
        self.channel = grpc.aio.insecure_channel(
            address, options=[("grpc.max_receive_message_length", 64 << 20)]
        )
        self.call = ads_pb2_grpc.AggregatedDiscoveryServiceStub(
            self.channel
        ).StreamAggregatedResources()
        self.node = base_pb2.Node(id=node_id)
        self.queue: asyncio.Queue[Any] = asyncio.Queue()
        self.reader = asyncio.ensure_future(self._read())

    async def _read(self) -> None:
        try:
            async for resp in self.call:
                self.queue.put_nowait(resp)
        except grpc.RpcError as e:
            self.queue.put_nowait(e)
        self.queue.put_nowait(None)

    async def send(self, type_url: str, names: list[str] | None = None, resp: Any = None) -> None:
        req = discovery_pb2.DiscoveryRequest(type_url=type_url, resource_names=names or [])
        req.node.CopyFrom(self.node)
        if resp is not None:
            req.version_info, req.response_nonce = resp.version_info, resp.nonce
        await self.call.write(req)

    async def recv(self, timeout: float = 20) -> Any:
        item = await asyncio.wait_for(self.queue.get(), timeout)
        assert isinstance(item, discovery_pb2.DiscoveryResponse), item
        return item

    async def quiet(self, timeout: float = 0.5) -> None:
        try:
            item = await asyncio.wait_for(self.queue.get(), timeout)
        except TimeoutError:
            return
        raise AssertionError(f"unexpected: {item}")

    async def close(self) -> None:
        self.call.cancel()
        self.reader.cancel()
        await self.channel.close()


def cluster_names(resp: Any) -> list[str]:
    out = []
    for a in resp.resources:
        c = cluster_pb2.Cluster()
        a.Unpack(c)
        out.append(c.name)
    return out


def endpoint_counts(resp: Any) -> dict[str, int]:
    out = {}
    for a in resp.resources:
        cla = endpoint_pb2.ClusterLoadAssignment()
        a.Unpack(cla)
        out[cla.cluster_name] = sum(len(loc.lb_endpoints) for loc in cla.endpoints)
    return out


# --- start-up errors -------------------------------------------------------------------------


def test_invalid_file_exits_2_with_path_precise_errors(tmp_path: Path) -> None:
    bad = write(
        tmp_path,
        "bad.yaml",
        """\
        clusters:
          - name: backend
            protocol: grpc
            endpoints: [not-an-address]
          - name: other
            protocl: grpc
            endpoints: [127.0.0.1:1]
    """,
    )
    r = cli("-c", str(bad), "--listen", "127.0.0.1:0")
    assert r.returncode == 2, r
    assert f"{bad}: invalid config (2 errors)" in r.stderr
    assert "clusters[0].endpoints[0]:" in r.stderr
    assert "clusters[1].protocl: unknown key (did you mean 'protocol'?)" in r.stderr
    assert "Traceback" not in r.stderr


def test_invalid_node_file_exits_2_and_names_it(tmp_path: Path) -> None:
    good = write(tmp_path, "good.yaml", GOOD)
    bad = write(tmp_path, "node.yaml", "clusters: [{name: x, endpoints: [1.2.3.4:99999]}]\n")
    r = cli("-c", str(good), "--node", f"sidecar-1={bad}", "--listen", "127.0.0.1:0")
    assert r.returncode == 2, r
    assert f"{bad}: invalid config (1 error)" in r.stderr
    assert "clusters[0].endpoints[0]" in r.stderr


def test_missing_file_and_bad_arguments_exit_2(tmp_path: Path) -> None:
    r = cli("-c", str(tmp_path / "nosuch.yaml"))
    assert r.returncode == 2
    assert "nosuch.yaml" in r.stderr
    good = write(tmp_path, "good.yaml", GOOD)
    r = cli("-c", str(good), "--node", "no-equals-sign")
    assert r.returncode == 2
    assert "--node 'no-equals-sign': expected KEY=FILE" in r.stderr
    r = cli("-c", str(good), "--node-cluster", f"team={tmp_path / 'gone.yaml'}")
    assert r.returncode == 2
    assert f"{tmp_path / 'gone.yaml'}: cannot read config: no such file" in r.stderr
    r = cli("-c", str(good), "--listen", "nonsense")
    assert r.returncode == 2
    assert "nonsense" in r.stderr


# --- serving ---------------------------------------------------------------------------------


def test_serves_pushes_an_edit_and_exits_0_on_sigterm(tmp_path: Path, control_plane: Any) -> None:
    path = write(tmp_path, "res.yaml", GOOD)
    cp = control_plane("-c", str(path))

    async def main() -> None:
        c = RawClient(cp.address)
        try:
            await c.send(rt.CLUSTER)
            cds = await c.recv()
            assert (cds.version_info, cluster_names(cds)) == ("1", ["backend"])
            await c.send(rt.CLUSTER, resp=cds)
            await c.send(rt.ENDPOINT, ["backend"])
            eds = await c.recv()
            assert endpoint_counts(eds) == {"backend": 1}
            await c.send(rt.ENDPOINT, ["backend"], resp=eds)
            await c.quiet()
            # An edit: a second endpoint -> EDS version 2 only.
            path.write_text(
                textwrap.dedent(GOOD).replace(
                    "[127.0.0.1:50051]", "[127.0.0.1:50051, 127.0.0.1:50052]"
                )
            )
            eds2 = await c.recv()
            assert (eds2.type_url, eds2.version_info) == (rt.ENDPOINT, "2")
            assert endpoint_counts(eds2) == {"backend": 2}
            await c.send(rt.ENDPOINT, ["backend"], resp=eds2)
            # A broken edit is logged and changes nothing for the client.
            path.write_text("clusters: [{name: backend, protocol: grpc, endpoints: [bad]}]\n")
            await c.quiet(1.0)
            # SIGTERM with the stream open: the stream ends cleanly, the process exits 0.
            cp.proc.send_signal(signal.SIGTERM)
            end = await asyncio.wait_for(c.queue.get(), 20)
            assert end is None, end
        finally:
            await c.close()

    asyncio.run(main())
    assert cp.proc.wait(20) == 0
    text = cp.log()
    assert "Traceback" not in text, text
    events = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
    msgs = [e["msg"] for e in events]
    assert "ready" in msgs and "stopped" in msgs
    ready = next(e for e in events if e["msg"] == "ready")
    assert ready["xds"] == cp.address
    errors = [e for e in events if e["msg"] == "config error"]
    assert errors and errors[0]["file"] == str(path)
    assert errors[0]["error"].startswith("clusters[0].endpoints[0]:")


def test_sigint_exits_0(tmp_path: Path, control_plane: Any) -> None:
    cp = control_plane("-c", str(write(tmp_path, "res.yaml", GOOD)))
    assert cp.stop(signal.SIGINT) == 0
    assert "Traceback" not in cp.log()


def test_serves_1000_clusters_of_10_endpoints_complete(tmp_path: Path, control_plane: Any) -> None:
    n, per = 1000, 10
    lines = ["log: {level: info, format: json}", "clusters:"]
    for i in range(n):
        eps = ", ".join(f"127.0.0.{1 + j}:{20000 + i}" for j in range(per))
        lines.append(f"  - {{name: c{i:04d}, protocol: grpc, endpoints: [{eps}]}}")
    path = tmp_path / "big.yaml"
    path.write_text("\n".join(lines) + "\n")
    cp = control_plane("-c", str(path))
    want = [f"c{i:04d}" for i in range(n)]

    async def main() -> None:
        c = RawClient(cp.address, "big")
        try:
            await c.send(rt.CLUSTER)
            cds = await c.recv(60)
            assert sorted(cluster_names(cds)) == want  # one response, the whole set
            await c.send(rt.CLUSTER, resp=cds)
            await c.send(rt.ENDPOINT, want)
            eds = await c.recv(60)
            assert endpoint_counts(eds) == dict.fromkeys(want, per)  # one response, all of it
            await c.send(rt.ENDPOINT, want, resp=eds)
            await c.quiet()
        finally:
            await c.close()

    asyncio.run(main())


def test_address_in_use_exits_1(tmp_path: Path, control_plane: Any) -> None:
    path = write(tmp_path, "res.yaml", GOOD)
    cp = control_plane("-c", str(path))
    r = cli("-c", str(path), "--listen", cp.address)
    assert r.returncode == 1, r
    events = [json.loads(line) for line in r.stderr.splitlines() if line.startswith("{")]
    assert [e["msg"] for e in events if e["level"] == "error"] == ["cannot start"], r.stderr
    assert cp.proc.poll() is None  # the first one still serves
