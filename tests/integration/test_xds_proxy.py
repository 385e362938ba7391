"""mosn-py driven over xDS by ``mosn-py control-plane``, both as real processes: routes
switched under load with no failed request, endpoints removed, a NACKed update with traffic
still flowing, the control plane restarted, Bolt and Redis listeners carried as our own /
Envoy's extension configs, and 1,000 clusters x 10 endpoints applied."""

from __future__ import annotations

import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.integration.conftest import (
    REPO,
    SERVICE,
    bolt_sync_client,
    free_port,
    hello_request,
    hello_result,
    span,
)
from tests.integration.test_http1_proxy import http_backend  # noqa: F401 (fixture)
from tests.integration.test_redis_proxy import redis_servers  # noqa: F401 (fixture)

pytestmark = pytest.mark.timeout(180)


class ControlPlane:
    def __init__(self, tmp: Path, resources: dict[str, Any], port: int | None = None) -> None:
        self.tmp = tmp
        self.file = tmp / "resources.yaml"
        self.port = port or free_port()
        self.log_path = tmp / f"cp-{self.port}-{time.monotonic_ns()}.log"
        self.write(resources)
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> ControlPlane:
        ready = self.tmp / "cp-ready.json"
        ready.unlink(missing_ok=True)
        logf = open(self.log_path, "wb")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "mosn_py.cli", "control-plane", "-c", str(self.file),
             "--listen", f"127.0.0.1:{self.port}", "--poll-interval", "0.05",
             "--ready-file", str(ready)],
            stdout=logf, stderr=subprocess.STDOUT, cwd=REPO,
        )
        logf.close()
        deadline = time.monotonic() + 20
        while not ready.exists():
            assert self.proc.poll() is None, self.log()
            assert time.monotonic() < deadline, self.log()
            time.sleep(0.02)
        return self

    def write(self, resources: dict[str, Any]) -> None:
        tmp = self.file.with_suffix(".tmp")
        tmp.write_text(yaml.safe_dump(resources, sort_keys=False))
        os.replace(tmp, self.file)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self, sig: int = signal.SIGTERM) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        return self.proc.wait(20)


@pytest.fixture
def control_plane(tmp_path: Path) -> Iterator[Callable[..., ControlPlane]]:
    started: list[ControlPlane] = []

    def start(resources: dict[str, Any], port: int | None = None) -> ControlPlane:
        cp = ControlPlane(tmp_path, resources, port).start()
        started.append(cp)
        return cp

    yield start
    for cp in started:
        if cp.proc is not None and cp.proc.poll() is None:
            assert cp.stop() == 0, cp.log()


def bootstrap(cp: ControlPlane, **extra: Any) -> dict[str, Any]:
    return {"xds": {"address": f"127.0.0.1:{cp.port}", "node": {"id": "sidecar-1", "cluster": "t"},
                    "initial_backoff": "100ms", "max_backoff": "500ms"}, **extra}


def web(port: int, target: str, backends: dict[str, Any], **listener: Any) -> dict[str, Any]:
    return {
        "listeners": [{"name": "web", "address": f"127.0.0.1:{port}", "protocol": "http1",
                       "route": "web", **listener}],
        "routes": [{"name": "web", "virtual_hosts": [{"name": "all", "domains": ["*"], "rules": [
            {"match": {"prefix": "/"}, "cluster": target, "timeout": "10s"}]}]}],
        "clusters": [{"name": name, "protocol": "http1",
                      "endpoints": [b.address for b in (bs if isinstance(bs, list) else [bs])]}
                     for name, bs in backends.items()],
    }


def who(port: int, path: str = "/echo") -> str | None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", path)
        r = conn.getresponse()
        body = r.read()
        return str(json.loads(body)["server"]) if r.status == 200 else f"status {r.status}"
    except (OSError, http.client.HTTPException):
        return None
    finally:
        conn.close()


def wait_for(cond: Callable[[], Any], what: str, timeout: float = 20) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = cond()
        if got:
            return got
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def xds_view(p: Any) -> dict[str, Any]:
    code, body = p.admin_get("/config_dump")
    assert code == 200
    return dict(json.loads(body))


class Load(threading.Thread):
    def __init__(self, port: int) -> None:
        super().__init__(daemon=True)
        self.port = port
        self.stop = threading.Event()
        self.answers: dict[str, int] = {}
        self.failures: list[str] = []

    def run(self) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        deadline = time.monotonic() + 120
        while not self.stop.is_set() and time.monotonic() < deadline:
            try:
                conn.request("GET", "/echo")
                r = conn.getresponse()
                body = r.read()
                if r.status != 200:
                    self.failures.append(f"status {r.status}: {body[:200]!r}")
                    continue
                name = json.loads(body)["server"]
                self.answers[name] = self.answers.get(name, 0) + 1
            except (OSError, http.client.HTTPException) as e:
                self.failures.append(repr(e))
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        conn.close()


def test_route_switches_under_load_fail_no_request(
    proxy: Any, control_plane: Any, http_backend: Any  # noqa: F811
) -> None:
    a, b = http_backend("a"), http_backend("b")
    port = free_port()
    cp = control_plane(web(port, "a", {"a": a, "b": b}))
    p = proxy(bootstrap(cp, admin={"address": "127.0.0.1:0"}))
    assert who(port) == "a"  # ready waited for the first snapshot
    view = xds_view(p)["xds"]
    assert view["connected"] is True
    assert {t: v["version"] != "" for t, v in view["types"].items()} == {
        "CDS": True, "EDS": True, "LDS": True, "RDS": True}
    loads = [Load(port) for _ in range(4)]
    for ld in loads:
        ld.start()
    target = "a"
    for _ in range(20):
        target = "b" if target == "a" else "a"
        cp.write(web(port, target, {"a": a, "b": b}))
        wait_for(lambda t=target: who(port) == t, f"route to {target}")
    for ld in loads:
        ld.stop.set()
        ld.join(20)
    failures = [f for ld in loads for f in ld.failures]
    assert failures == []
    total = {k: sum(ld.answers.get(k, 0) for ld in loads) for k in ("a", "b")}
    assert total["a"] > 20 and total["b"] > 20
    # the listener itself never changed: its connections lived through every switch
    assert xds_view(p)["xds"]["types"]["LDS"]["accepted"] == 1


def test_endpoint_removed_gets_no_new_requests(
    proxy: Any, control_plane: Any, http_backend: Any  # noqa: F811
) -> None:
    a, b = http_backend("a"), http_backend("b")
    port = free_port()
    cp = control_plane(web(port, "both", {"both": [a, b]}))
    p = proxy(bootstrap(cp, admin={"address": "127.0.0.1:0"}))
    seen = {who(port) for _ in range(10)}
    assert seen == {"a", "b"}
    eds_before = xds_view(p)["xds"]["types"]["EDS"]["version"]
    cp.write(web(port, "both", {"both": [a]}))
    wait_for(lambda: xds_view(p)["xds"]["types"]["EDS"]["version"] != eds_before, "EDS update")
    assert {who(port) for _ in range(20)} == {"a"}
    # only EDS changed: the cluster kept its object, CDS stayed at its version
    assert xds_view(p)["xds"]["types"]["CDS"]["accepted"] == 1


def test_nack_keeps_the_last_good_config_and_traffic_flowing(
    proxy: Any, control_plane: Any, http_backend: Any  # noqa: F811
) -> None:
    a, b = http_backend("a"), http_backend("b")
    port = free_port()
    cp = control_plane(web(port, "a", {"a": a, "b": b}))
    p = proxy(bootstrap(cp, admin={"address": "127.0.0.1:0"}))
    assert who(port) == "a"
    # valid for the control plane, but this proxy cannot bind the new listener: NACK
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        taken = busy.getsockname()[1]
        bad = web(port, "b", {"a": a, "b": b})
        bad["listeners"].append({"name": "second", "address": f"127.0.0.1:{taken}",
                                 "protocol": "http1", "route": "web"})
        cp.write(bad)
        nack = wait_for(lambda: xds_view(p)["xds"]["types"]["LDS"]["last_nack"], "an LDS NACK")
        assert "cannot bind" in nack["message"] and "second" in nack["message"]
        assert who(port) == "b"  # RDS (valid on its own) applied; LDS kept its last good set
        assert [x["name"] for x in xds_view(p)["config"]["listeners"]] == ["web"]
        wait_for(lambda: "xds nack" in cp.log() and "cannot bind" in cp.log(),
                 "the control plane logging the NACK")
    # fixed: accepted again
    good = web(port, "a", {"a": a, "b": b})
    cp.write(good)
    wait_for(lambda: who(port) == "a", "the fixed config")


def test_control_plane_restart_keeps_config_and_resubscribes(
    proxy: Any, control_plane: Any, http_backend: Any  # noqa: F811
) -> None:
    a, b = http_backend("a"), http_backend("b")
    port = free_port()
    cp = control_plane(web(port, "a", {"a": a, "b": b}))
    p = proxy(bootstrap(cp, admin={"address": "127.0.0.1:0"}))
    assert who(port) == "a"
    cp.stop(signal.SIGKILL)
    wait_for(lambda: xds_view(p)["xds"]["connected"] is False, "the stream to break")
    for _ in range(10):
        assert who(port) == "a"  # serving on the last config while the CP is gone
    streams = xds_view(p)["xds"]["streams_opened"]
    cp2 = control_plane(web(port, "b", {"a": a, "b": b}), port=cp.port)
    wait_for(lambda: who(port) == "b", "the restarted control plane's route")
    view = xds_view(p)["xds"]
    assert view["connected"] is True and view["streams_opened"] > streams
    assert cp2.proc is not None


def test_bolt_and_redis_listeners_over_xds(
    proxy: Any, control_plane: Any, anthunder_server: Any, redis_servers: Any  # noqa: F811
) -> None:
    import redis

    srv = anthunder_server()
    (shard,) = redis_servers(1)
    bolt_port, redis_port = free_port(), free_port()
    resources = {
        "listeners": [
            {"name": "bolt_in", "address": f"127.0.0.1:{bolt_port}", "protocol": "bolt",
             "route": "bolt_routes"},
            {"name": "cache", "address": f"127.0.0.1:{redis_port}", "protocol": "redis",
             "route": "keys"},
        ],
        "routes": [
            {"name": "bolt_routes", "rules": [{"match": {"service": SERVICE},
                                               "cluster": "sofa", "timeout": "3s"}]},
            {"name": "keys", "rules": [{"match": {"key_prefix": "user:"}, "cluster": "shards"},
                                       {"cluster": "shards", "timeout": "2s"}]},
        ],
        "clusters": [
            {"name": "sofa", "protocol": "bolt", "endpoints": [srv.address]},
            {"name": "shards", "protocol": "redis", "endpoints": [shard.address],
             "hash_tag": "{}"},
        ],
    }
    cp = control_plane(resources)
    p = proxy(bootstrap(cp, admin={"address": "127.0.0.1:0"}))
    client = bolt_sync_client("127.0.0.1", bolt_port)
    out = client.invoke_sync(SERVICE, "hello", hello_request("xds", seq=7), spanctx=span(),
                             timeout_ms=3000)
    assert hello_result(out).result == "hello xds"
    r = redis.Redis(host="127.0.0.1", port=redis_port, socket_timeout=10)
    assert r.set("user:1", "x") is True and r.get("user:1") == b"x"
    dump = xds_view(p)["config"]
    protocols = {c["name"]: c["protocol"] for c in dump["clusters"]}
    assert protocols == {"sofa": "bolt", "shards": "redis"}
    assert {c["name"]: c["hash_tag"] for c in dump["clusters"]}["shards"] == "{}"


def test_thousand_clusters_of_ten_endpoints(
    proxy: Any, control_plane: Any, http_backend: Any  # noqa: F811
) -> None:
    a = http_backend("a")
    port = free_port()
    resources = web(port, "a", {"a": a})
    for i in range(999):
        resources["clusters"].append({
            "name": f"c{i:04d}", "protocol": "http1",
            "endpoints": [f"127.2.{i // 200}.{(i % 200) + 1}:{9000 + j}" for j in range(10)],
        })
    cp = control_plane(resources)
    p = proxy(bootstrap(cp, admin={"address": "127.0.0.1:0"}))
    dump = xds_view(p)
    clusters = dump["config"]["clusters"]
    assert len(clusters) == 1000
    assert sum(len(c["endpoints"]) for c in clusters) == 9991
    assert dump["xds"]["types"]["EDS"]["resources"][:2] == ["a", "c0000"]
    assert len(dump["xds"]["types"]["EDS"]["resources"]) == 1000
    assert who(port) == "a"
    code, body = p.admin_get("/clusters")
    assert code == 200 and "c0998" in body


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_changed_listener_drains_while_its_request_finishes(
    proxy: Any, control_plane: Any, http_backend: Any  # noqa: F811
) -> None:
    a = http_backend("a")
    port = free_port()
    cp = control_plane(web(port, "a", {"a": a}))
    p = proxy(bootstrap(cp, admin={"address": "127.0.0.1:0"}))
    slow = subprocess.Popen(["curl", "-s", f"http://127.0.0.1:{port}/slow/1.5"],
                            stdout=subprocess.PIPE)
    time.sleep(0.3)
    cp.write(web(port, "a", {"a": a}, max_header_count=50))
    wait_for(lambda: xds_view(p)["config"]["listeners"][0]["max_header_count"] == 50,
             "the replaced listener")
    assert who(port) == "a"  # the new listener serves on the same address
    out, _ = slow.communicate(timeout=20)
    assert slow.returncode == 0 and out  # the old one finished its request


def test_examples_as_shipped(proxy: Any, control_plane: Any) -> None:
    """examples/xds/{resources,bootstrap}.yaml (addresses swapped for free ports), driven
    as their comments say: the demo client, then an edit of the method match."""
    resources = yaml.safe_load((REPO / "examples" / "xds" / "resources.yaml").read_text())
    boot = yaml.safe_load((REPO / "examples" / "xds" / "bootstrap.yaml").read_text())
    port, demo = free_port(), free_port()
    resources["listeners"][0]["address"] = f"127.0.0.1:{port}"
    resources["clusters"][0]["endpoints"] = [f"127.0.0.1:{demo}"]
    cp = control_plane(resources)
    boot["admin"]["address"] = "127.0.0.1:0"
    boot["xds"]["address"] = f"127.0.0.1:{cp.port}"
    boot["demo_upstreams"][0]["address"] = f"127.0.0.1:{demo}"
    proxy(boot)

    def call() -> str:
        r = subprocess.run([sys.executable, "-m", "mosn_py.demo.client", f"127.0.0.1:{port}",
                            "--name", "xds"], capture_output=True, text=True, cwd=REPO,
                           timeout=30)
        return r.stdout.strip()

    assert call() == "status=0 result='hello xds' seq=0"
    resources["routes"][0]["rules"][0]["match"]["method"] = "nope"
    cp.write(resources)
    wait_for(lambda: call() == "status=6 no route for this request", "the edited route")
