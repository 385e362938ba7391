"""The Redis proxy with real redis-servers as shards: redis-py (sync and asyncio), pipelines,
multi-key splits, key distribution checked on the servers, local and refused commands, AUTH
both ways, RESP3 after HELLO 3, write mirroring, a shard killed and restarted, and
redis-benchmark's default suite with zero errors."""

from __future__ import annotations

import asyncio
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.integration.conftest import PeerProcess, free_port, wait_port

redis = pytest.importorskip("redis")
pytestmark = pytest.mark.skipif(shutil.which("redis-server") is None,
                                reason="redis-server is needed: bash scripts/install.sh --test")


def start_redis(port: int, *extra: str) -> PeerProcess:
    proc = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
         "--appendonly", "no", "--daemonize", "no", *extra],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    wait_port("127.0.0.1", port)
    return PeerProcess(proc, "127.0.0.1", port)


@pytest.fixture
def redis_servers() -> Iterator[Any]:
    started: list[PeerProcess] = []

    def start(n: int, *extra: str) -> list[PeerProcess]:
        out = [start_redis(free_port(), *extra) for _ in range(n)]
        started.extend(out)
        return out

    yield start
    for p in started:
        p.kill()


def cache_config(shards: list[PeerProcess], **extra: Any) -> dict[str, Any]:
    listener: dict[str, Any] = {"name": "cache", "address": "127.0.0.1:0", "protocol": "redis",
                                "route": "keys"}
    listener.update(extra.pop("listener", {}))
    cluster: dict[str, Any] = {"name": "shards", "protocol": "redis",
                               "endpoints": [s.address for s in shards]}
    cluster.update(extra.pop("cluster", {}))
    rules: list[dict[str, Any]] = extra.pop("rules", [])
    return {
        "listeners": [listener],
        "routes": [{"name": "keys", "rules": [*rules, {"cluster": "shards", "timeout": "2s"}]}],
        "clusters": [cluster, *extra.pop("clusters", [])],
    }


def client(p: Any, **kw: Any) -> Any:
    host, port = p.addr("cache")
    return redis.Redis(host=host, port=port, socket_timeout=10, **kw)


def direct(s: PeerProcess, **kw: Any) -> Any:
    return redis.Redis(host=s.host, port=s.port, socket_timeout=10, **kw)


def test_commands_pipelines_and_distribution(proxy: Any, redis_servers: Any) -> None:
    shards = redis_servers(3)
    p = proxy(cache_config(shards, cluster={"hash_tag": "{}"}))
    r = client(p)
    assert r.ping() is True
    assert r.set("a", "1") is True and r.get("a") == b"1"
    assert r.incr("counter") == 1 and r.incrby("counter", 5) == 6
    keys = [f"key:{i}" for i in range(300)]
    assert r.mset({k: k.upper() for k in keys}) is True
    assert r.mget(keys) == [k.upper().encode() for k in keys]
    assert r.mget(["key:1", "nope", "key:2"]) == [b"KEY:1", None, b"KEY:2"]
    assert r.exists(*keys[:10], "nope") == 10
    assert r.delete(*keys[:100]) == 100
    assert r.mget(keys[:3]) == [None, None, None]
    # Every shard holds keys, and exactly the ones ketama gives it (checked on the servers).
    from mosn_py.upstream.ketama import KetamaRing

    ring = KetamaRing([(s.address, 1, s.address) for s in shards], hash_tag=b"{}")
    for s in shards:
        held = {k.decode() for k in direct(s).keys("key:*")}
        assert held, f"shard {s.address} got no key"
        assert held == {k for k in keys[100:] if ring.get(k.encode()) == s.address}
    # A pipeline of 1,000 commands, answered in order.
    pipe = r.pipeline(transaction=False)
    for i in range(1000):
        pipe.set(f"p:{i}", i) if i % 2 == 0 else pipe.get(f"p:{i - 1}")
    out = pipe.execute()
    assert out == [True if i % 2 == 0 else str(i - 1).encode() for i in range(1000)]
    # Hash, list, set, sorted set commands route by their key.
    assert r.hset("h", mapping={"f1": "v1", "f2": "v2"}) == 2
    assert r.hgetall("h") == {b"f1": b"v1", b"f2": b"v2"}
    assert r.rpush("l", 1, 2, 3) == 3 and r.lrange("l", 0, -1) == [b"1", b"2", b"3"]
    assert r.zadd("z", {"x": 1, "y": 2}) == 2 and r.zrange("z", 0, -1) == [b"x", b"y"]
    # Same-shard multi-key commands with a hash tag; across shards they are refused.
    assert r.set("{u1}:a", "x") and r.rename("{u1}:a", "{u1}:b") is True
    with pytest.raises(redis.ResponseError, match="same shard"):
        r.sinter("set-one", "set-two-on-another-shard", "third", "fourth", "fifth")


def test_asyncio_clients(proxy: Any, redis_servers: Any) -> None:
    import redis.asyncio as aredis

    shards = redis_servers(2)
    p = proxy(cache_config(shards))
    host, port = p.addr("cache")

    async def main() -> list[bytes | None]:
        r = aredis.Redis(host=host, port=port, max_connections=250)
        try:
            await asyncio.gather(*(r.set(f"as:{i}", i) for i in range(200)))
            return list(await asyncio.gather(*(r.get(f"as:{i}") for i in range(200))))
        finally:
            await r.aclose()

    assert asyncio.run(asyncio.wait_for(main(), 30)) == [str(i).encode() for i in range(200)]


def test_local_and_refused_commands(proxy: Any, redis_servers: Any) -> None:
    p = proxy(cache_config(redis_servers(2)))
    r = client(p)
    assert r.echo("hi") == b"hi"
    assert r.execute_command("PING") is True
    assert r.execute_command("SELECT", 0) is True
    with pytest.raises(redis.ResponseError, match="out of range"):
        r.execute_command("SELECT", 1)
    assert r.client_setname("me") is True and r.client_getname() == "me"
    assert r.command_count() > 100
    for cmd, word in ((("MULTI",), "transactions"), (("KEYS", "*"), "whole-keyspace"),
                      (("BLPOP", "l", 0), "blocking"), (("SUBSCRIBE", "ch"), "pub/sub"),
                      (("CONFIG", "GET", "save"), "administration")):
        with pytest.raises(redis.ResponseError, match=word):
            r.execute_command(*cmd)
    with pytest.raises(redis.ResponseError, match="unknown or unsupported command 'NOSUCH'"):
        r.execute_command("NOSUCH", "a")
    with pytest.raises(redis.ResponseError, match="wrong number of arguments"):
        r.execute_command("GET")
    assert r.get("still-fine") is None  # errors never close the connection


def test_auth_both_ways_and_resp3(proxy: Any, redis_servers: Any) -> None:
    shards = redis_servers(2, "--requirepass", "upstream-secret")
    p = proxy(cache_config(shards, listener={"password": "client-secret"},
                           cluster={"password": "upstream-secret"}))
    anon = client(p)
    with pytest.raises(redis.AuthenticationError):
        anon.get("x")
    with pytest.raises(redis.AuthenticationError):
        client(p, password="wrong").get("x")
    r = client(p, password="client-secret")
    assert r.set("k", "v") is True and r.get("k") == b"v"
    # RESP3: maps come back as maps (redis-py 5 decodes them only with protocol=3).
    r3 = client(p, password="client-secret", protocol=3)
    r3.hset("h3", mapping={"a": "1"})
    assert r3.hgetall("h3") == {b"a": b"1"}
    raw = socket.create_connection(p.addr("cache"), timeout=5)
    raw.sendall(b"HELLO 3 AUTH default client-secret\r\nHGETALL h3\r\n")
    data = b""
    while not data.endswith(b"$1\r\n1\r\n"):
        chunk = raw.recv(65536)
        assert chunk, data
        data += chunk
    raw.close()
    assert data.startswith(b"%7\r\n") and data.endswith(b"%1\r\n$1\r\na\r\n$1\r\n1\r\n")


def test_mirror_writes(proxy: Any, redis_servers: Any) -> None:
    shards = redis_servers(2)
    (shadow,) = redis_servers(1)
    p = proxy(cache_config(
        shards, rules=[{"match": {"key_prefix": "m:"}, "cluster": "shards", "mirror": "shadow"}],
        clusters=[{"name": "shadow", "protocol": "redis", "endpoints": [shadow.address]}]))
    r = client(p)
    r.set("m:1", "one")
    r.mset({"m:2": "two", "m:3": "three"})
    r.set("other", "x")
    assert r.get("m:1") == b"one"
    s = direct(shadow)
    deadline = time.monotonic() + 5
    while s.dbsize() < 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert sorted(s.keys("*")) == [b"m:1", b"m:2", b"m:3"]


def test_shard_down_and_back(proxy: Any, redis_servers: Any) -> None:
    shards = redis_servers(3)
    p = proxy(cache_config(shards))
    r = client(p)
    from mosn_py.upstream.ketama import KetamaRing

    ring = KetamaRing([(s.address, 1, s) for s in shards])
    victim = shards[1]
    mine = [k for k in (f"d:{i}" for i in range(200)) if ring.get(k.encode()) is victim]
    others = [k for k in (f"d:{i}" for i in range(200)) if ring.get(k.encode()) is not victim]
    for k in mine + others:
        r.set(k, k)
    victim.kill()
    t0 = time.monotonic()
    with pytest.raises(redis.ResponseError, match="upstream"):
        r.get(mine[0])
    assert time.monotonic() - t0 < 1.5  # promptly, not after a timeout
    assert r.get(others[0]) == others[0].encode()  # the other shards keep serving
    with pytest.raises(redis.ResponseError):
        r.mget([mine[1], others[1]])  # a split touching the dead shard fails as a whole
    start_redis(victim.port)  # back, empty
    deadline = time.monotonic() + 10
    while True:
        try:
            assert r.get(mine[0]) is None
            break
        except redis.ResponseError:
            assert time.monotonic() < deadline
            time.sleep(0.2)
    assert r.set(mine[0], "again") and r.get(mine[0]) == b"again"
    subprocess.run(["redis-cli", "-p", str(victim.port), "shutdown", "nosave"],
                   capture_output=True, timeout=10)


def test_protocol_errors(proxy: Any, redis_servers: Any) -> None:
    p = proxy(cache_config(redis_servers(1)))
    s = socket.create_connection(p.addr("cache"), timeout=5)
    s.sendall(b"*1\r\n$4\r\nPING\r\n*2\r\n$-5\r\n")
    data = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
    s.close()
    assert data.startswith(b"+PONG\r\n-ERR Protocol error"), data


@pytest.mark.skipif(shutil.which("redis-benchmark") is None, reason="redis-benchmark needed")
def test_redis_benchmark_default_suite(proxy: Any, redis_servers: Any) -> None:
    p = proxy(cache_config(redis_servers(3)))
    host, port = p.addr("cache")
    r = subprocess.run(
        ["redis-benchmark", "-h", host, "-p", str(port), "-n", "2000", "-c", "20", "-q",
         "--csv"],
        capture_output=True, text=True, timeout=300,
    )
    assert r.returncode == 0, r.stdout + r.stderr
    lines = [ln for ln in r.stdout.splitlines() if ln.startswith('"')]
    tests = {ln.split(",")[0].strip('"') for ln in lines[1:]}
    for name in ("PING_INLINE", "PING_MBULK", "SET", "GET", "INCR", "LPUSH", "RPUSH", "LPOP",
                 "RPOP", "SADD", "HSET", "SPOP", "ZADD", "ZPOPMIN",
                 "LRANGE_100 (first 100 elements)", "MSET (10 keys)"):
        assert name in tests, r.stdout
    assert "ERR" not in r.stdout + r.stderr, r.stdout + r.stderr


def test_pipeline_beyond_the_reorder_bound(proxy: Any, redis_servers: Any) -> None:
    """10,000 commands in one write: more than the 4,096 replies the proxy lets a client
    owe; it stops decoding, then resumes as replies go out. Nothing stalls or reorders."""
    p = proxy(cache_config(redis_servers(2)))
    s = socket.create_connection(p.addr("cache"), timeout=20)
    n = 10_000
    s.sendall(b"".join(b"*3\r\n$3\r\nSET\r\n$%d\r\nk%d\r\n$1\r\nv\r\n" % (len(str(i)) + 1, i)
                       for i in range(n)) + b"*2\r\n$3\r\nGET\r\n$2\r\nk7\r\n")
    want = b"+OK\r\n" * n + b"$1\r\nv\r\n"
    data = b""
    while len(data) < len(want):
        chunk = s.recv(1 << 20)
        assert chunk, len(data)
        data += chunk
    s.close()
    assert data == want


def test_route_timeout_answers_a_frozen_shard(proxy: Any, redis_servers: Any) -> None:
    import os
    import signal

    (shard,) = redis_servers(1)
    cfg = cache_config([shard])
    cfg["routes"][0]["rules"][-1]["timeout"] = "500ms"
    p = proxy(cfg)
    r = client(p)
    assert r.set("t", "1") is True
    os.kill(shard.proc.pid, signal.SIGSTOP)
    try:
        t0 = time.monotonic()
        with pytest.raises(redis.ResponseError, match="timeout"):
            r.get("t")
        assert time.monotonic() - t0 < 3
    finally:
        os.kill(shard.proc.pid, signal.SIGCONT)
    assert p.metric("mosn_listener_rq_timeout", listener="cache") >= 1
