"""Integration fixtures: the proxy as a real process, real peers on 127.0.0.1.

- ``proxy``: a factory starting ``mosn-py run -c <yaml>`` on the loop under test (every test
  using it runs on uvloop AND on the stdlib asyncio loop), waiting for its ready file, and on
  teardown sending SIGTERM and asserting a clean exit (code 0, no traceback in its log).
- ``anthunder_server``: a factory starting anthunder's AioListener (a real SOFARPC Bolt
  server) in its own process, so a test can kill it.
- ``bolt_client``: anthunder clients aimed at an address.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
PEERS = Path(__file__).resolve().parent / "peers"
SERVICE = "com.alipay.rpc.common.service.facade.pb.SampleServicePb:1.0"


def free_port(host: str = "127.0.0.1") -> int:
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(fam, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def wait_port(host: str, port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection((host, port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.02)
    raise TimeoutError(f"{host}:{port} not accepting after {timeout}s")


def split_addr(addr: str) -> tuple[str, int]:
    host, _, port = addr.rpartition(":")
    return host.strip("[]"), int(port)


@dataclass
class ProxyProcess:
    proc: subprocess.Popen[bytes]
    config_path: Path
    log_path: Path
    addresses: dict[str, str] = field(default_factory=dict)
    stopped: bool = False

    def addr(self, name: str) -> tuple[str, int]:
        return split_addr(self.addresses[name])

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(
                f"proxy did not exit after signal {sig}:\n{self.log()}"
            ) from None
        self.stopped = True
        return code

    def admin_get(self, path: str) -> tuple[int, str]:
        import urllib.request

        host, port = self.addr("admin")
        try:
            with urllib.request.urlopen(f"http://{host}:{port}{path}", timeout=5) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode()

    def metric(self, name: str, **labels: str) -> float:
        """The value of one Prometheus sample from /metrics (0 when absent)."""
        _, text = self.admin_get("/metrics")
        want = ",".join(f'{k}="{v}"' for k, v in labels.items())
        for line in text.splitlines():
            if line.startswith("#"):
                continue
            head, _, val = line.rpartition(" ")
            if head.split("{")[0] not in (name, name + "_total"):
                continue
            if all(f'{k}="{v}"' in head for k, v in labels.items()) or not want:
                return float(val)
        return 0.0


@pytest.fixture(params=["uvloop", "asyncio"])
def loop_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def proxy(tmp_path: Path, loop_kind: str) -> Iterator[Any]:
    started: list[ProxyProcess] = []

    def start(config: dict[str, Any] | str, *, expect_fail: bool = False,
              extra_args: tuple[str, ...] = ()) -> ProxyProcess:
        n = len(started)
        cfg_path = tmp_path / f"proxy{n}.yaml"
        if isinstance(config, str):
            cfg_path.write_text(textwrap.dedent(config))
        else:
            config = dict(config)
            config.setdefault("log", {"level": "info", "format": "json"})
            config.setdefault("admin", {"address": "127.0.0.1:0"})
            cfg_path.write_text(yaml.safe_dump(config, sort_keys=False))
        ready = tmp_path / f"ready{n}.json"
        log_path = tmp_path / f"proxy{n}.log"
        logf = open(log_path, "wb")  # noqa: SIM115
        proc = subprocess.Popen(
            [sys.executable, "-m", "mosn_py.cli", "run", "-c", str(cfg_path),
             "--loop", loop_kind, "--ready-file", str(ready), *extra_args],
            stdout=logf, stderr=subprocess.STDOUT, cwd=REPO,
        )
        logf.close()
        p = ProxyProcess(proc, cfg_path, log_path)
        started.append(p)
        if expect_fail:
            proc.wait(20)
            return p
        deadline = time.monotonic() + 20
        while not ready.exists():
            if proc.poll() is not None:
                raise AssertionError(f"proxy exited with {proc.returncode}:\n{p.log()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"proxy not ready:\n{p.log()}")
            time.sleep(0.02)
        p.addresses = json.loads(ready.read_text())["addresses"]
        return p

    yield start
    for p in started:
        if p.stopped:
            continue
        code = p.stop()
        text = p.log()
        assert code == 0, f"proxy exit code {code}:\n{text}"
        assert "Traceback" not in text, f"proxy logged a traceback:\n{text}"


@dataclass
class PeerProcess:
    proc: subprocess.Popen[bytes]
    host: str
    port: int

    @property
    def address(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


@pytest.fixture
def anthunder_server() -> Iterator[Any]:
    started: list[PeerProcess] = []

    def start(host: str = "127.0.0.1", port: int | None = None) -> PeerProcess:
        port = port or free_port(host)
        env = dict(os.environ, PYTHONPATH=str(REPO))
        proc = subprocess.Popen(
            [sys.executable, str(PEERS / "anthunder_server.py"), str(port), host],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env,
        )
        assert proc.stdout is not None
        line = proc.stdout.readline().decode()
        if not line.startswith("READY"):
            proc.kill()
            raise AssertionError(f"anthunder server did not start: {line!r}")
        peer = PeerProcess(proc, host, port)
        started.append(peer)
        return peer

    yield start
    for p in started:
        p.kill()


def hello_request(name: str, seq: int = 0, payload: bytes = b"") -> bytes:
    from mosn_py.demo import sample_service_pb2 as pb

    return pb.SampleServicePbRequest(name=name, seq=seq, payload=payload).SerializeToString()


def hello_result(body: bytes) -> Any:
    from mosn_py.demo import sample_service_pb2 as pb

    return pb.SampleServicePbResult.FromString(body)


def bolt_sync_client(host: str, port: int) -> Any:
    """anthunder's blocking ``Client`` aimed at host:port (raises ServerError on status != 0)."""
    from anthunder import Client

    class _Client(Client):  # type: ignore[misc]
        def _get_address(self, interface: str) -> tuple[str, int]:
            return (host, port)

    return _Client("mosn-py-test")


def bolt_aio_client(host: str, port: int) -> Any:
    """anthunder's ``AioClient`` (one pipelined connection, its own loop thread)."""
    from anthunder import AioClient

    class _AioClient(AioClient):  # type: ignore[misc]
        def _get_address(self, interface: str) -> tuple[str, int]:
            return (host, port)

    return _AioClient("mosn-py-test")


def span() -> Any:
    from mytracer import SpanContext

    return SpanContext()
