"""examples/redis.yaml and examples/memcache.yaml as shipped (addresses swapped for test
ones), driven the way their comments and the README say: redis-cli, and bash's /dev/tcp."""

from __future__ import annotations

import shutil
import subprocess
from typing import Any

import pytest
import yaml

from tests.integration.conftest import REPO
from tests.integration.test_memcache_proxy import memcached  # noqa: F401 (fixture)
from tests.integration.test_redis_proxy import redis_servers  # noqa: F401 (fixture)


def example(name: str) -> dict[str, Any]:
    cfg = yaml.safe_load((REPO / "examples" / name).read_text())
    cfg["admin"]["address"] = "127.0.0.1:0"
    cfg["listeners"][0]["address"] = "127.0.0.1:0"
    return dict(cfg)


@pytest.mark.skipif(shutil.which("redis-cli") is None or shutil.which("redis-server") is None,
                    reason="redis-server and redis-cli are needed")
def test_redis_example(proxy: Any, redis_servers: Any) -> None:  # noqa: F811
    shards = redis_servers(3)
    cfg = example("redis.yaml")
    cfg["clusters"][0]["endpoints"] = [s.address for s in shards]
    p = proxy(cfg)
    host, port = p.addr("redis")

    def cli(*args: str) -> str:
        r = subprocess.run(["redis-cli", "-h", host, "-p", str(port), "-a", "client-secret",
                            "--no-auth-warning", *args], capture_output=True, text=True,
                           timeout=20)
        return r.stdout.strip()

    assert cli("set", "user:1", "alice") == "OK"
    assert cli("--no-raw", "mget", "user:1", "user:2") == '1) "alice"\n2) (nil)'
    assert "whole-keyspace" in cli("keys", "*")
    assert cli("set", "user:{42}:a", "1") == "OK"
    assert cli("rename", "user:{42}:a", "user:{42}:b") == "OK"


@pytest.mark.skipif(shutil.which("memcached") is None, reason="memcached is needed")
def test_memcache_example(proxy: Any, memcached: Any) -> None:  # noqa: F811
    shards = memcached(2)
    cfg = example("memcache.yaml")
    cfg["clusters"][0]["endpoints"] = [s.address for s in shards]
    p = proxy(cfg)
    host, port = p.addr("memcache")
    script = (f"exec 3<>/dev/tcp/{host}/{port}; "
              r"printf 'set greeting 0 0 5\r\nhello\r\nget greeting other\r\n' >&3; "
              "timeout 1 cat <&3")
    r = subprocess.run(["bash", "-c", script], capture_output=True, timeout=20)
    assert r.stdout == b"STORED\r\nVALUE greeting 0 5\r\nhello\r\nEND\r\n"
