"""The ``mosn-py`` command line as a user runs it: ``python -m mosn_py.cli`` in a subprocess.

validate / run exit codes and messages, ``--version``, the bundled default config serving
real traffic, ``workers: 2``, and SIGTERM draining.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import socketserver
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from mosn_py import __version__
from tests.integration.conftest import (
    REPO,
    SERVICE,
    bolt_sync_client,
    hello_request,
    hello_result,
    span,
    split_addr,
)

CLI = [sys.executable, "-m", "mosn_py.cli"]
DEFAULT_PORTS = (12200, 12300, 12201, 12301, 34901)


def cli(*args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], check=False, cwd=REPO, capture_output=True, text=True,
                          timeout=timeout)


def write(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return str(path)


# --- peers and running proxies ---------------------------------------------------------------


class _Echo(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        self.request.settimeout(30)
        while data := self.request.recv(65536):
            self.request.sendall(data)


class _EchoServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    block_on_close = False


@pytest.fixture
def echo_server() -> Iterator[str]:
    srv = _EchoServer(("127.0.0.1", 0), _Echo)
    t = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    t.start()
    yield f"127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()
    srv.server_close()


class Running:
    """A ``mosn-py run`` process started by a test; killed at teardown if still alive."""

    def __init__(self, proc: subprocess.Popen[bytes], log_path: Path) -> None:
        self.proc = proc
        self.log_path = log_path
        self.addresses: dict[str, str] = {}

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def addr(self, name: str) -> tuple[str, int]:
        return split_addr(self.addresses[name])

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> tuple[int, float]:
        """Signal, wait: (exit code, seconds it took)."""
        t0 = time.monotonic()
        self.proc.send_signal(sig)
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(f"no exit {timeout}s after signal {sig}:\n{self.log()}") from None
        return code, time.monotonic() - t0

    def assert_clean_exit(self, sig: int = signal.SIGTERM, within: float = 30) -> float:
        code, took = self.stop(sig, within)
        text = self.log()
        assert code == 0, f"exit code {code}:\n{text}"
        assert "Traceback" not in text, text
        return took


@pytest.fixture
def run_proxy(tmp_path: Path, loop_kind: str) -> Iterator[Any]:
    started: list[Running] = []

    def start(*args: str) -> Running:
        n = len(started)
        ready = tmp_path / f"ready{n}.json"
        log_path = tmp_path / f"run{n}.log"
        with open(log_path, "wb") as logf:
            proc = subprocess.Popen(
                [*CLI, "run", *args, "--loop", loop_kind, "--ready-file", str(ready)],
                stdout=logf, stderr=subprocess.STDOUT, cwd=REPO,
            )
        r = Running(proc, log_path)
        started.append(r)
        deadline = time.monotonic() + 20
        while not ready.exists():
            if proc.poll() is not None:
                return r  # the caller looks at the exit code and the log
            if time.monotonic() > deadline:
                raise AssertionError(f"not ready after 20 s:\n{r.log()}")
            time.sleep(0.02)
        r.addresses = json.loads(ready.read_text())["addresses"]
        return r

    yield start
    for r in started:
        if r.proc.poll() is None:
            r.proc.kill()
            r.proc.wait(10)


def tcp_config(tmp_path: Path, upstream: str, **top: Any) -> str:
    cfg = {
        "log": {"level": "info", "format": "json"},
        "admin": {"address": "127.0.0.1:0"},
        **top,
        "listeners": [
            {"name": "tcp_in", "address": "127.0.0.1:0", "protocol": "tcp", "cluster": "c"}
        ],
        "clusters": [{"name": "c", "protocol": "tcp", "endpoints": [upstream]}],
    }
    path = tmp_path / "tcp.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return str(path)


def echo_once(addr: tuple[str, int], payload: bytes = b"ping") -> bytes:
    with socket.create_connection(addr, timeout=5) as c:
        c.sendall(payload)
        got = b""
        while len(got) < len(payload):
            chunk = c.recv(65536)
            if not chunk:
                break
            got += chunk
        return got


def children(pid: int) -> list[int]:
    """Live child processes of ``pid`` (from /proc; zombies excluded)."""
    out = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # pid (comm) state ppid ...; comm may contain spaces, so split after the last ')'.
        state, ppid = stat.rpartition(")")[2].split()[:2]
        if int(ppid) == pid and state != "Z":
            out.append(int(entry.name))
    return sorted(out)


# --- validate --------------------------------------------------------------------------------

BAD_CONFIG = """\
listeners:
  - name: tcp_in
    address: 127.0.0.1:99999
    protocl: tcp
    cluster: c
    idle_timeout: 5 parsecs
  - name: tcp_in
    address: abc
    protocol: bolt
    route: r
routes:
  - name: r
    rules:
      - match: {service: x}
        cluster: missing_cluster
clusters:
  - name: c
    protocol: tcp
    endpoints: [127.0.0.1:1]
    connect_timeout: soon
    lb: round_robbin
"""

BAD_CONFIG_MESSAGES = (
    "listeners[0].protocl: unknown key (did you mean 'protocol'?)",
    "listeners[0].address: '127.0.0.1:99999'",
    "listeners[0].idle_timeout: '5 parsecs' is not a duration",
    "listeners[1].address: 'abc' is not host:port",
    "listeners[1].name: duplicate listener name 'tcp_in'",
    "routes[0].rules[0].cluster: no cluster named 'missing_cluster'",
    "clusters[0].connect_timeout: 'soon' is not a duration",
    "clusters[0].lb: unknown value 'round_robbin' (did you mean 'round_robin'?)",
)


def test_validate_valid_file(tmp_path: Path) -> None:
    path = write(tmp_path, "ok.yaml", """\
        listeners:
          - {name: tcp_in, address: 127.0.0.1:0, protocol: tcp, cluster: c,
             idle_timeout: 300ms, access_log: true}
        clusters:
          - name: c
            protocol: tcp
            endpoints: ["127.0.0.1:1", {address: "127.0.0.1:2", weight: 3}]
            lb: least_request
            connect_timeout: 1s
        """)
    r = cli("validate", "-c", path)
    assert r.returncode == 0, r.stderr
    assert "ok (1 listeners, 0 routes, 1 clusters)" in r.stdout


def test_validate_bundled_default_config() -> None:
    r = cli("validate", "-c", str(REPO / "mosn_py" / "defaults" / "default.yaml"))
    assert r.returncode == 0, r.stderr


def test_validate_reports_every_mistake_with_its_path(tmp_path: Path) -> None:
    path = write(tmp_path, "bad.yaml", BAD_CONFIG)
    r = cli("validate", "-c", path)
    assert r.returncode == 2
    assert r.stdout == ""
    assert f"{path}: invalid config (8 errors)" in r.stderr
    for msg in BAD_CONFIG_MESSAGES:
        assert msg in r.stderr, f"missing {msg!r} in:\n{r.stderr}"
    assert len(r.stderr.strip().splitlines()) == 9  # the header + one line per error
    assert "Traceback" not in r.stderr


def test_validate_yaml_syntax_error_names_the_line(tmp_path: Path) -> None:
    path = write(tmp_path, "syntax.yaml", """\
        listeners:
          - name: a
            address: [127.0.0.1:1
          foo: : bar
        """)
    r = cli("validate", "-c", path)
    assert r.returncode == 2
    assert f"{path}:4:" in r.stderr and "invalid YAML" in r.stderr
    assert "Traceback" not in r.stderr


def test_validate_missing_file(tmp_path: Path) -> None:
    r = cli("validate", "-c", str(tmp_path / "nope.yaml"))
    assert r.returncode == 2
    assert "nope.yaml: no such file" in r.stderr


def test_run_refuses_bad_config(tmp_path: Path) -> None:
    path = write(tmp_path, "bad.yaml", BAD_CONFIG)
    r = cli("run", "-c", path, timeout=20)
    assert r.returncode == 2
    for msg in BAD_CONFIG_MESSAGES:
        assert msg in r.stderr, f"missing {msg!r} in:\n{r.stderr}"
    assert "Traceback" not in r.stderr + r.stdout


def test_version() -> None:
    r = cli("--version")
    assert r.returncode == 0
    assert r.stdout.strip() == f"mosn-py {__version__}"


def test_run_cannot_bind_exits_nonzero(run_proxy: Any, tmp_path: Path) -> None:
    """A listener port already taken: a clear message naming the listener, a non-zero
    exit, no traceback."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        path = write(tmp_path, "busy.yaml", f"""\
            listeners:
              - {{name: tcp_in, address: 127.0.0.1:{port}, protocol: tcp, cluster: c}}
            clusters:
              - {{name: c, protocol: tcp, endpoints: ["127.0.0.1:1"]}}
            """)
        r = run_proxy("-c", path)
        assert r.proc.wait(20) == 1
    assert "listener 'tcp_in' cannot bind" in r.log()
    assert "Traceback" not in r.log()


# --- run: the bundled default config ---------------------------------------------------------


def _ports_free(ports: tuple[int, ...]) -> bool:
    for port in ports:
        with socket.socket() as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                return False
    return True


def test_run_default_config_serves_demo(run_proxy: Any) -> None:
    """``mosn-py run`` with no -c: Bolt through 12200 to the demo service, bytes echoed
    through 12300, the admin API on 34901; SIGTERM exits 0."""
    if not _ports_free(DEFAULT_PORTS):
        pytest.skip(f"default demo ports {DEFAULT_PORTS} are in use")
    r = run_proxy()
    if r.proc.poll() is not None:
        if "cannot bind" in r.log():
            pytest.skip(f"default demo ports taken meanwhile:\n{r.log()}")
        raise AssertionError(f"exit {r.proc.returncode}:\n{r.log()}")
    assert r.addresses["bolt_in"] == "127.0.0.1:12200"
    assert r.addresses["tcp_in"] == "127.0.0.1:12300"
    assert r.addresses["admin"] == "127.0.0.1:34901"
    client = bolt_sync_client("127.0.0.1", 12200)
    for i in range(3):
        out = client.invoke_sync(SERVICE, "hello", hello_request(f"world{i}", seq=i),
                                 spanctx=span(), timeout_ms=3000)
        res = hello_result(out)
        assert res.result == f"hello world{i}" and res.seq == i
    assert echo_once(("127.0.0.1", 12300), b"echo me\n" * 1000) == b"echo me\n" * 1000
    import urllib.request

    with urllib.request.urlopen("http://127.0.0.1:34901/ready", timeout=5) as resp:
        assert resp.read() == b"LIVE\n"
    r.assert_clean_exit()


# --- workers ---------------------------------------------------------------------------------


def test_two_workers_both_accept(run_proxy: Any, tmp_path: Path, echo_server: str) -> None:
    """``workers: 2``: two child processes serve the same listener. Stopping either one
    (SIGSTOP) leaves every new connection to the other, so each must accept on its own;
    SIGTERM to the parent stops both, exit 0."""
    r = run_proxy("-c", tcp_config(tmp_path, echo_server, workers=2))
    assert r.proc.poll() is None, r.log()
    addr = r.addr("tcp_in")
    deadline = time.monotonic() + 10
    while len(kids := children(r.proc.pid)) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)  # the ready file comes from worker 0; worker 1 may lag a little
    assert len(kids) == 2, kids
    # Worker 1 may still be starting: wait until it logged ready.
    while r.log().count('"msg":"ready"') < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert r.log().count('"msg":"ready"') == 2, r.log()
    for stopped in kids:
        os.kill(stopped, signal.SIGSTOP)
        try:
            for i in range(10):
                payload = b"worker test %d " % i * 100
                assert echo_once(addr, payload) == payload
        finally:
            os.kill(stopped, signal.SIGCONT)
    assert all(echo_once(addr) == b"ping" for _ in range(20))
    r.assert_clean_exit(within=20)
    assert children(r.proc.pid) == []
    for pid in kids:
        assert not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text()


# --- SIGTERM and draining --------------------------------------------------------------------


def test_sigterm_with_idle_tcp_connection_exits_after_drain_timeout(
    run_proxy: Any, tmp_path: Path, echo_server: str
) -> None:
    """A long-lived idle connection does not hold the proxy past ``drain_timeout``."""
    r = run_proxy("-c", tcp_config(tmp_path, echo_server, drain_timeout="1s"))
    with socket.create_connection(r.addr("tcp_in"), timeout=10) as c:
        c.sendall(b"hi")
        assert c.recv(10) == b"hi"
        took = r.assert_clean_exit(within=15)
        assert 0.9 <= took < 10
        c.settimeout(5)
        try:
            assert c.recv(10) == b""  # the proxy closed it on the way out
        except ConnectionResetError:
            pass


def test_sigterm_drains_open_connection(run_proxy: Any, tmp_path: Path, echo_server: str) -> None:
    """During the drain the open connection still works, new ones are refused, /ready says
    DRAINING; once the client closes the proxy exits without waiting out the timeout."""
    import urllib.error
    import urllib.request

    r = run_proxy("-c", tcp_config(tmp_path, echo_server, drain_timeout="20s"))
    admin = "http://{}:{}".format(*r.addr("admin"))
    with socket.create_connection(r.addr("tcp_in"), timeout=10) as c:
        c.sendall(b"before")
        assert c.recv(10) == b"before"
        t0 = time.monotonic()
        r.proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 5
        status = 0
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(admin + "/ready", timeout=2)
            except urllib.error.HTTPError as e:
                status = e.code
                break
            time.sleep(0.02)
        assert status == 503
        with pytest.raises(OSError):
            socket.create_connection(r.addr("tcp_in"), timeout=2).close()
        c.sendall(b"during")
        assert c.recv(10) == b"during"
    code = r.proc.wait(15)
    took = time.monotonic() - t0
    assert code == 0 and "Traceback" not in r.log(), r.log()
    assert took < 10, f"waited {took:.1f}s after the last connection closed"


def test_sigint_exits_zero(run_proxy: Any, tmp_path: Path, echo_server: str) -> None:
    r = run_proxy("-c", tcp_config(tmp_path, echo_server))
    assert echo_once(r.addr("tcp_in")) == b"ping"
    r.assert_clean_exit(signal.SIGINT, within=15)
