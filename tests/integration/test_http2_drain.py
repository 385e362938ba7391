"""SIGTERM drains HTTP/2 connections with GOAWAY (RFC 9113 §6.8): the stream in flight
finishes, the client is told (max id first, then the last stream taken), the connection
closes, the proxy exits 0. nghttp -v shows the frames."""

from __future__ import annotations

import re
import shutil
import signal
import subprocess
import threading
import time
from typing import Any

import httpx
import pytest

from tests.integration.conftest import free_port
from tests.integration.test_http1_proxy import http_backend  # noqa: F401 (fixture)


def config(backend: str) -> dict[str, Any]:
    return {
        "drain_timeout": "10s",
        "listeners": [{"name": "web", "address": "127.0.0.1:0", "protocol": "http2",
                       "route": "gw"}],
        "routes": [{"name": "gw", "virtual_hosts": [{"name": "all", "domains": ["*"], "rules": [
            {"match": {"prefix": "/"}, "cluster": "b", "timeout": "10s"}]}]}],
        "clusters": [{"name": "b", "protocol": "http1", "endpoints": [backend]}],
    }


@pytest.mark.skipif(shutil.which("nghttp") is None, reason="nghttp (nghttp2-client) needed")
def test_sigterm_sends_goaway_and_finishes_streams(proxy: Any, http_backend: Any) -> None:  # noqa: F811
    b = http_backend()
    p = proxy(config(b.address))
    host, port = p.addr("web")
    client = subprocess.Popen(["nghttp", "-v", "-t", "10", f"http://{host}:{port}/slow/1.5"],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 10
        while p.metric("mosn_listener_rq", listener="web") < 1:  # the request is in flight
            assert time.monotonic() < deadline, "the request never reached the proxy"
            time.sleep(0.05)
        p.proc.send_signal(signal.SIGTERM)
        out, _ = client.communicate(timeout=20)
    finally:
        client.kill()
    assert client.returncode == 0, out
    goaways = [int(x) for x in re.findall(
        r"recv GOAWAY frame[^\n]*\n\s*\(last_stream_id=(\d+), error_code=NO_ERROR", out)]
    sid = re.search(r"recv \(stream_id=(\d+)\) :status: 200", out)
    assert sid, out
    assert "slow done" in out
    # first "finish what you sent" (the max id), then the last stream really taken
    assert goaways[0] == 2**31 - 1 and goaways[-1] == int(sid.group(1)), out
    assert out.index("last_stream_id=2147483647") < out.index(":status: 200"), out
    assert p.stop() == 0
    assert "drained" in p.log()


def test_upstream_goaway_lets_streams_finish(proxy: Any, http_backend: Any) -> None:  # noqa: F811
    """An HTTP/2 upstream that drains (here: a second mosn-py on SIGTERM) sends GOAWAY: the
    request in flight on that connection still completes through the first proxy, and the
    connection is not used for new requests."""
    b = http_backend()
    back_port = free_port()
    back_cfg = config(b.address)
    back_cfg["listeners"][0]["address"] = f"127.0.0.1:{back_port}"
    back = proxy(back_cfg)
    front_cfg = config(f"127.0.0.1:{back_port}")
    front_cfg["listeners"][0]["protocol"] = "http1"
    front_cfg["clusters"][0]["protocol"] = "http2"
    front = proxy(front_cfg)
    host, port = front.addr("web")
    with httpx.Client(timeout=10) as c:
        assert c.get(f"http://{host}:{port}/echo").status_code == 200  # the h2 connection is up
        result: dict[str, Any] = {}

        def slow() -> None:
            r = c.get(f"http://{host}:{port}/slow/1.5")
            result["status"], result["body"] = r.status_code, r.text

        t = threading.Thread(target=slow)
        t.start()
        deadline = time.monotonic() + 10
        while back.metric("mosn_listener_rq", listener="web") < 2:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        back.proc.send_signal(signal.SIGTERM)
        t.join(15)
    assert result == {"status": 200, "body": "slow done"}
    assert back.stop() == 0
    with httpx.Client(timeout=10) as c:  # the back proxy is gone: a clean 503, no hang
        assert c.get(f"http://{host}:{port}/echo").status_code == 503
