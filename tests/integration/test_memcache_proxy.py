"""The memcached proxy with real memcached shards and pymemcache: every command, multi-get
across shards (merged in key order), cas, noreply, flush_all fan-out, per-request errors as
memcached gives them, key distribution checked on the servers, a shard down and back."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.integration.conftest import PeerProcess, free_port, wait_port

pymemcache = pytest.importorskip("pymemcache")
from pymemcache.client.base import Client  # noqa: E402

pytestmark = pytest.mark.skipif(shutil.which("memcached") is None,
                                reason="memcached is needed: bash scripts/install.sh --test")


def start_memcached(port: int) -> PeerProcess:
    proc = subprocess.Popen(
        ["memcached", "-l", "127.0.0.1", "-p", str(port), "-U", "0", "-u", "root", "-m", "64"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    wait_port("127.0.0.1", port)
    return PeerProcess(proc, "127.0.0.1", port)


@pytest.fixture
def memcached() -> Iterator[Any]:
    started: list[PeerProcess] = []

    def start(n: int) -> list[PeerProcess]:
        out = [start_memcached(free_port()) for _ in range(n)]
        started.extend(out)
        return out

    yield start
    for p in started:
        p.kill()


def mc_config(shards: list[PeerProcess], **extra: Any) -> dict[str, Any]:
    return {
        "listeners": [{"name": "mc", "address": "127.0.0.1:0", "protocol": "memcache",
                       "route": "keys"}],
        "routes": [{"name": "keys", "rules": [*extra.pop("rules", []),
                                              {"cluster": "shards", "timeout": "2s"}]}],
        "clusters": [{"name": "shards", "protocol": "memcache",
                      "endpoints": [s.address for s in shards]}, *extra.pop("clusters", [])],
    }


def client(p: Any) -> Client:
    return Client(p.addr("mc"), connect_timeout=5, timeout=10, default_noreply=False)


def test_commands_and_multi_get(proxy: Any, memcached: Any) -> None:
    shards = memcached(3)
    p = proxy(mc_config(shards))
    c = client(p)
    assert c.set("a", b"1", expire=0) is True and c.get("a") == b"1"
    assert c.add("a", b"2") is False and c.add("b", b"2") is True
    assert c.replace("b", b"3") is True and c.get("b") == b"3"
    assert c.append("b", b"4") is True and c.prepend("b", b"0") is True
    assert c.get("b") == b"034"
    assert c.incr("n", 1) is None  # NOT_FOUND
    c.set("n", b"10")
    assert c.incr("n", 5) == 15 and c.decr("n", 20) == 0
    assert c.touch("a", 100) is True and c.touch("zz", 100) is False
    assert c.delete("a") is True and c.get("a") is None
    value, token = c.gets("b")
    assert value == b"034"
    assert c.cas("b", b"new", token) is True
    assert c.cas("b", b"newer", token) is False  # EXISTS: the token is stale
    assert c.get("b") == b"new"
    keys = [f"k{i}" for i in range(200)]
    c.set_many({k: k.upper().encode() for k in keys})
    got = c.get_many([*keys, "missing"])
    assert got == {k: k.upper().encode() for k in keys}
    # The merged reply keeps the order of the keys asked for (raw protocol).
    s = socket.create_connection(p.addr("mc"), timeout=5)
    s.sendall(b"get k5 missing k1 k150\r\n")
    data = b""
    while not data.endswith(b"END\r\n"):
        data += s.recv(65536)
    s.close()
    assert data == (b"VALUE k5 0 2\r\nK5\r\nVALUE k1 0 2\r\nK1\r\n"
                    b"VALUE k150 0 4\r\nK150\r\nEND\r\n")
    # Every shard holds keys, exactly the ones ketama gives it.
    from mosn_py.upstream.ketama import KetamaRing

    ring = KetamaRing([(sh.address, 1, sh.address) for sh in shards])
    for sh in shards:
        direct = Client((sh.host, sh.port), timeout=5)
        mine = [k for k in keys if ring.get(k.encode()) == sh.address]
        assert mine and direct.get_many(mine) == {k: k.upper().encode() for k in mine}
        assert not set(direct.get_many([k for k in keys if k not in mine]))
    assert c.version().startswith(b"mosn-py")
    assert c.flush_all() is True
    assert c.get_many(keys[:20]) == {}


def test_noreply_errors_and_pipelines(proxy: Any, memcached: Any) -> None:
    p = proxy(mc_config(memcached(2)))
    s = socket.create_connection(p.addr("mc"), timeout=5)
    s.sendall(b"set q1 0 0 1 noreply\r\na\r\nset q2 5 0 2 noreply\r\nbb\r\n"
              b"get q1 q2\r\n"
              b"bogus command\r\n"
              b"get " + b"k" * 251 + b"\r\n"
              b"set big 0 0 2000000\r\n" + b"x" * 2_000_000 + b"\r\n"
              b"set bad 0 0 3\r\nabcde\r\n"
              b"incr q1 1\r\n")
    want = (b"VALUE q1 0 1\r\na\r\nVALUE q2 5 2\r\nbb\r\nEND\r\n"
            b"ERROR\r\n"
            b"CLIENT_ERROR bad command line format\r\n"
            b"SERVER_ERROR object too large for cache\r\n"
            b"CLIENT_ERROR bad data chunk\r\n")
    data = b""
    deadline = time.monotonic() + 10
    while len(data) < len(want) + 3 and time.monotonic() < deadline:
        data += s.recv(65536)
    s.close()
    assert data.startswith(want), data[:400]
    assert data[len(want):].startswith(b"CLIENT_ERROR") or b"\r\n" in data[len(want):]
    # 1,000 pipelined commands through pymemcache
    c = client(p)
    c.set_many({f"p{i}": str(i).encode() for i in range(1000)}, noreply=False)
    assert c.get_many([f"p{i}" for i in range(1000)]) == {
        f"p{i}": str(i).encode() for i in range(1000)}


def test_shard_down_and_back(proxy: Any, memcached: Any) -> None:
    shards = memcached(3)
    p = proxy(mc_config(shards))
    c = client(p)
    from mosn_py.upstream.ketama import KetamaRing

    ring = KetamaRing([(sh.address, 1, sh) for sh in shards])
    victim = shards[0]
    mine = [k for k in (f"d{i}" for i in range(100)) if ring.get(k.encode()) is victim]
    others = [k for k in (f"d{i}" for i in range(100)) if ring.get(k.encode()) is not victim]
    victim.kill()
    t0 = time.monotonic()
    with pytest.raises(pymemcache.exceptions.MemcacheServerError, match="upstream"):
        c.get(mine[0])
    assert time.monotonic() - t0 < 1.5
    assert c.set(others[0], b"ok") is True and c.get(others[0]) == b"ok"
    start_memcached(victim.port)
    deadline = time.monotonic() + 10
    while True:
        try:
            assert c.set(mine[0], b"back") is True
            break
        except pymemcache.exceptions.MemcacheServerError:
            assert time.monotonic() < deadline
            time.sleep(0.2)
    assert c.get(mine[0]) == b"back"
    subprocess.run(["pkill", "-f", f"memcached -l 127.0.0.1 -p {victim.port} "],
                   capture_output=True, timeout=10)
