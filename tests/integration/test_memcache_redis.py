"""memcached clients through the proxy to real redis-servers (``translate/memcache_redis.py``):
pymemcache and raw protocol in, redis-py reading and writing the shards directly.

A fixed command session and three seeded random ones are also played against a real
memcached and the replies compared (cas uniques by their pattern of equality), so it is
memcached's semantics that are checked, not our reading of them.
Covered: plain strings both ways, flags and their companion keys, TTLs (relative, absolute in
the past and in the near future, negative, 32-bit wrap), cas races, incr/decr (wrap, floor,
non-numeric), append/prepend, add/replace, touch/gat/gats, noreply, multi-get across shards,
non-string keys, flush_all, mirroring, a shard killed, a shard frozen (timeout), Redis error
replies.
"""

from __future__ import annotations

import random
import re
import shutil
import signal
import socket
import threading
import time
from typing import Any

import pytest

from tests.integration import test_memcache_proxy, test_redis_proxy
from tests.integration.conftest import PeerProcess
from tests.integration.test_redis_proxy import direct, start_redis

# The fixtures that start real servers, shared with the memcached and Redis proxy tests.
memcached = test_memcache_proxy.memcached
redis_servers = test_redis_proxy.redis_servers

pymemcache = pytest.importorskip("pymemcache")
redis = pytest.importorskip("redis")
from pymemcache.client.base import Client  # noqa: E402

pytestmark = pytest.mark.skipif(shutil.which("redis-server") is None,
                                reason="redis-server is needed: bash scripts/install.sh --test")
needs_memcached = pytest.mark.skipif(shutil.which("memcached") is None,
                                     reason="memcached is needed: bash scripts/install.sh --test")

C = b"\x00mc:"  # companion prefix (translate/memcache_redis.py)


def mr_config(shards: list[PeerProcess], timeout: str = "2s", **extra: Any) -> dict[str, Any]:
    rule: dict[str, Any] = {"cluster": "redis", "timeout": timeout, **extra.pop("rule", {})}
    return {
        "listeners": [{"name": "mc", "address": "127.0.0.1:0", "protocol": "memcache",
                       "route": "keys"}],
        "routes": [{"name": "keys", "rules": [rule]}],
        "clusters": [{"name": "redis", "protocol": "redis",
                      "endpoints": [s.address for s in shards]}, *extra.pop("clusters", [])],
    }


def client(p: Any, **kw: Any) -> Client:
    return Client(p.addr("mc"), connect_timeout=5, timeout=10, default_noreply=False, **kw)


def ring(shards: list[PeerProcess]) -> Any:
    from mosn_py.upstream.ketama import KetamaRing

    return KetamaRing([(s.address, 1, s) for s in shards])


def owner(shards: list[PeerProcess], key: str | bytes) -> Any:
    """redis-py on the shard that holds ``key``."""
    k = key.encode() if isinstance(key, str) else key
    return direct(ring(shards).get(k))


class Raw:
    """memcached text protocol by hand: one command, its whole reply."""

    def __init__(self, addr: tuple[str, int]) -> None:
        self.sock = socket.create_connection(addr, timeout=10)
        self.buf = b""

    def close(self) -> None:
        self.sock.close()

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def line(self) -> bytes:
        while b"\r\n" not in self.buf:
            chunk = self.sock.recv(1 << 20)
            if not chunk:
                raise ConnectionError(f"closed; buffered {self.buf!r}")
            self.buf += chunk
        line, _, self.buf = self.buf.partition(b"\r\n")
        return line + b"\r\n"

    def reply(self) -> bytes:
        """One reply: a retrieval's VALUE blocks up to END, or one line."""
        out = b""
        while True:
            line = self.line()
            out += line
            if line.startswith(b"VALUE "):
                n = int(line.split()[3])
                while len(self.buf) < n + 2:
                    self.buf += self.sock.recv(1 << 20)
                out += self.buf[:n + 2]
                self.buf = self.buf[n + 2:]
                continue
            return out

    def __call__(self, data: bytes) -> bytes:
        self.send(data)
        return self.reply()


# --- data layout: plain strings both ways -----------------------------------------------------


def test_plain_strings_both_ways_and_multi_get(proxy: Any, redis_servers: Any) -> None:
    shards = redis_servers(3)
    p = proxy(mr_config(shards))
    c = client(p)
    # written by memcached clients: a plain Redis string on the key's shard, nothing else
    assert c.set("k", b"hello") is True
    r = owner(shards, "k")
    assert r.get("k") == b"hello" and r.type("k") == b"string"
    assert r.exists(C + b"k") == 0  # flags 0, no cas handed out: no companion
    keys = [f"key:{i}" for i in range(300)]
    assert c.set_many({k: k.upper().encode() for k in keys}) == []
    for s in shards:
        mine = [k for k in keys if ring(shards).get(k.encode()) is s]
        assert mine, f"shard {s.address} got no key"
        assert direct(s).mget(mine) == [k.upper().encode() for k in mine]
    # written by Redis clients: items with flags 0
    for i in range(50):
        owner(shards, f"r:{i}").set(f"r:{i}", f"from redis {i}")
    raw = Raw(p.addr("mc"))
    assert raw(b"get r:7\r\n") == b"VALUE r:7 0 12\r\nfrom redis 7\r\nEND\r\n"
    got = c.get_many([f"r:{i}" for i in range(50)] + ["nope"])
    assert got == {f"r:{i}": f"from redis {i}".encode() for i in range(50)}
    # multi-get across shards: hits in the order asked, misses skipped, duplicates repeated
    by_shard = {id(s): [k for k in keys if ring(shards).get(k.encode()) is s] for s in shards}
    a, b, d = (by_shard[id(s)][0].encode() for s in shards)  # one key on each shard
    assert raw(b"get %s missing %s %s %s\r\n" % (b, a, d, b)) == b"".join(
        b"VALUE %s 0 %d\r\n%s\r\n" % (k, len(k), k.upper()) for k in (b, a, d, b)) + b"END\r\n"
    gets = raw(b"gets %s %s nope\r\n" % (a, d))
    assert re.fullmatch(b"VALUE %s 0 %d \\d+\r\n%s\r\nVALUE %s 0 %d \\d+\r\n%s\r\nEND\r\n"
                        % (a, len(a), a.upper(), d, len(d), d.upper()), gets), gets
    assert c.get_many(keys) == {k: k.upper().encode() for k in keys}
    # the largest value memcached allows, both ways
    big = bytes(range(256)) * 4096  # 1 MiB
    assert c.set("big", big) is True and c.get("big") == big
    assert owner(shards, "big").get("big") == big
    raw.close()


def test_flags_and_companion_keys(proxy: Any, redis_servers: Any) -> None:
    from pymemcache import serde

    shards = redis_servers(2)
    p = proxy(mr_config(shards))
    raw = Raw(p.addr("mc"))
    assert raw(b"set f 4294967295 0 3\r\nabc\r\n") == b"STORED\r\n"
    assert raw(b"get f\r\n") == b"VALUE f 4294967295 3\r\nabc\r\nEND\r\n"
    r = owner(shards, "f")
    assert r.get("f") == b"abc"  # the value stays a plain string
    meta = r.get(C + b"f")
    assert meta is not None and meta.startswith(b"4294967295 0 3:")  # flags, no cas, fp
    assert raw(b"set f 0 0 3\r\nxyz\r\n") == b"STORED\r\n"
    assert r.exists(C + b"f") == 0  # flags 0 again: the companion goes
    # a Redis client overwriting a flagged item: the stale flags no longer count
    assert raw(b"set g 7 0 5\r\nfirst\r\n") == b"STORED\r\n"
    owner(shards, "g").set("g", "second value")
    assert raw(b"get g\r\n") == b"VALUE g 0 12\r\nsecond value\r\nEND\r\n"
    # long values: the fingerprint samples both ends (Lua and Python agree)
    long = b"L" * 5000
    assert raw(b"set long 9 0 5000\r\n" + long + b"\r\n") == b"STORED\r\n"
    assert raw(b"get long\r\n") == b"VALUE long 9 5000\r\n" + long + b"\r\nEND\r\n"
    assert raw(b"append long 0 0 1\r\nM\r\n") == b"STORED\r\n"
    assert raw(b"get long\r\n").startswith(b"VALUE long 9 5001\r\n")
    owner(shards, "long").setrange("long", 0, "X")  # head changed behind our back
    assert raw(b"get long\r\n").startswith(b"VALUE long 0 5001\r\n")
    # pymemcache's serde puts the type in the flags
    sc = client(p, serde=serde.pickle_serde)
    values: dict[str, Any] = {"i": 42, "s": "text é", "d": {"a": [1, 2]}, "b": b"raw"}
    for k, v in values.items():
        assert sc.set(k, v) is True
    assert sc.get_many(list(values)) == values
    assert owner(shards, "i").get("i") == b"42"  # FLAG_INTEGER: digits, readable in Redis
    raw.close()


# --- TTL ---------------------------------------------------------------------------------------


def test_ttl(proxy: Any, redis_servers: Any) -> None:
    shards = redis_servers(2)
    p = proxy(mr_config(shards))
    raw = Raw(p.addr("mc"))
    now = int(time.time())
    assert raw(b"set rel 3 1 1\r\nr\r\n") == b"STORED\r\n"  # relative: 1 s
    r = owner(shards, "rel")
    assert 0 < r.pttl("rel") <= 1000 and 0 < r.pttl(C + b"rel") <= 1000  # companion too
    assert raw(b"set soon 5 %d 1\r\ns\r\n" % (now + 2)) == b"STORED\r\n"  # absolute, future
    assert owner(shards, "soon").expiretime("soon") == now + 2
    assert owner(shards, "soon").expiretime(C + b"soon") == now + 2
    assert raw(b"set month 0 2592000 1\r\nm\r\n") == b"STORED\r\n"  # 30 days: still relative
    assert 2591990 < owner(shards, "month").ttl("month") <= 2592000
    assert raw(b"get rel soon month\r\n") == (b"VALUE rel 3 1\r\nr\r\nVALUE soon 5 1\r\ns\r\n"
                                              b"VALUE month 0 1\r\nm\r\nEND\r\n")
    # already expired: negative, absolute in the past, over 32 bits (wraps to 2014)
    for exptime in (b"-1", b"1000000000", b"%d" % (now - 5), b"9999999999"):
        assert raw(b"set gone 1 " + exptime + b" 1\r\ng\r\n") == b"STORED\r\n"
        assert raw(b"get gone\r\n") == b"END\r\n"
        assert owner(shards, "gone").exists("gone", C + b"gone") == 0
    assert raw(b"add gone 0 -1 1\r\ng\r\n") == b"STORED\r\n"  # stored, and gone at once
    assert raw(b"get gone\r\n") == b"END\r\n"
    # touch / gat / gats change the expiry of the item and its companion
    assert raw(b"set t 4 0 1\r\nt\r\n") == b"STORED\r\n"
    rt = owner(shards, "t")
    assert rt.ttl("t") == -1
    assert raw(b"touch t 100\r\n") == b"TOUCHED\r\n"
    assert 95 < rt.ttl("t") <= 100 and 95 < rt.ttl(C + b"t") <= 100
    assert raw(b"gat 0 t\r\n") == b"VALUE t 4 1\r\nt\r\nEND\r\n"
    assert rt.ttl("t") == -1 and rt.ttl(C + b"t") == -1  # 0: never expires
    assert re.fullmatch(rb"VALUE t 4 1 \d+\r\nt\r\nEND\r\n", raw(b"gats 200 t\r\n"))
    assert 195 < rt.ttl("t") <= 200
    assert raw(b"gat -1 t\r\n") == b"VALUE t 4 1\r\nt\r\nEND\r\n"  # returned, then expired
    assert raw(b"get t\r\n") == b"END\r\n"
    assert raw(b"touch t 10\r\n") == b"NOT_FOUND\r\n"
    # incr/append keep the TTL
    assert raw(b"set n 0 100 1\r\n1\r\n") == b"STORED\r\n"
    assert raw(b"incr n 1\r\n") == b"2\r\n" and raw(b"append n 0 0 1\r\n0\r\n") == b"STORED\r\n"
    assert 95 < owner(shards, "n").ttl("n") <= 100
    time.sleep(2.2)
    assert raw(b"get rel soon month\r\n") == b"VALUE month 0 1\r\nm\r\nEND\r\n"
    assert owner(shards, "rel").exists(C + b"rel") == 0
    raw.close()


# --- cas ---------------------------------------------------------------------------------------


def test_cas_tokens_and_races(proxy: Any, redis_servers: Any) -> None:
    shards = redis_servers(2)
    p = proxy(mr_config(shards))
    c1, c2 = client(p), client(p)
    assert c1.set("x", b"0") is True
    v1, t1 = c1.gets("x")
    v2, t2 = c2.gets("x")
    assert v1 == v2 == b"0" and t1 == t2  # unchanged item: the same token
    assert c1.cas("x", b"1", t1) is True
    assert c2.cas("x", b"2", t2) is False  # EXISTS: the other client won
    assert c1.get("x") == b"1"
    assert c1.cas("missing", b"1", t1) is None  # NOT_FOUND
    # every modification changes the token; touch and gat do not
    tokens = [int(c1.gets("x")[1])]
    for change in (lambda: c1.set("x", b"5"), lambda: c1.append("x", b"0"),
                   lambda: c1.incr("x", 1), lambda: c1.prepend("x", b"1"),
                   lambda: owner(shards, "x").set("x", "99")):  # a Redis client's write too
        change()
        tokens.append(int(c1.gets("x")[1]))
    assert len(set(tokens)) == len(tokens) and tokens == sorted(tokens)
    assert c1.touch("x", 100) is True and int(c1.gets("x")[1]) == tokens[-1]
    assert c1.cas("x", b"7", tokens[0]) is False
    assert c1.cas("x", b"7", tokens[-1], flags=3) is True
    raw = Raw(p.addr("mc"))
    assert raw(b"cas x 0 0 1 0\r\nz\r\n") == b"EXISTS\r\n"  # 0 is never a token
    tok = int(raw(b"gets x\r\n").split()[4])
    assert raw(b"get x\r\n") == b"VALUE x 3 1\r\n7\r\nEND\r\n"
    assert raw(b"cas x 0 0 1 %d noreply\r\nq\r\n" % tok + b"get x\r\n") == \
        b"VALUE x 0 1\r\nq\r\nEND\r\n"
    # a cas after flush_all never matches a new item's token
    assert c1.flush_all() is True
    assert c1.set("x", b"new") is True
    assert int(c1.gets("x")[1]) > tokens[-1]
    raw.close()
    # a race: 4 clients add 1 by gets/cas; every STORED counts exactly once
    assert c1.set("counter", b"0") is True
    wins = [0] * 4

    def worker(i: int) -> None:
        mc = client(p)
        for _ in range(60):
            while True:
                value, token = mc.gets("counter")
                if mc.cas("counter", b"%d" % (int(value) + 1), token):
                    wins[i] += 1
                    break
        mc.close()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sum(wins) == 240 and c1.get("counter") == b"240"


# --- incr / decr ---------------------------------------------------------------------------


def test_incr_decr(proxy: Any, redis_servers: Any) -> None:
    shards = redis_servers(2)
    p = proxy(mr_config(shards))
    c = client(p)
    raw = Raw(p.addr("mc"))
    assert c.incr("n", 1) is None  # NOT_FOUND
    assert c.set("n", b"10") is True
    assert c.incr("n", 5) == 15 and c.decr("n", 3) == 12 and c.decr("n", 100) == 0
    assert owner(shards, "n").get("n") == b"0"  # plain digits (memcached pads: "0 ")
    assert owner(shards, "n").incr("n") == 1  # so Redis clients can INCR it
    u64 = 2 ** 64 - 1
    assert c.set("n", b"%d" % u64) is True
    assert c.incr("n", 2) == 1  # wraps at 2**64
    assert c.incr("n", u64) == 0
    assert c.set("n", b"%d" % (2 ** 63)) is True and c.incr("n", 1) == 2 ** 63 + 1  # > int64
    assert owner(shards, "n").get("n") == b"%d" % (2 ** 63 + 1)
    for value, want in ((b"007", b"8\r\n"), (b" 12 x", b"13\r\n"), (b"-0", b"1\r\n"),
                        (b"+4", b"5\r\n"), (b"12\n", b"13\r\n")):
        assert raw(b"set v 0 0 %d\r\n%s\r\n" % (len(value), value)) == b"STORED\r\n"
        assert raw(b"incr v 1\r\n") == want, value
    for value in (b"", b"abc", b"12x", b"-1", b"1.5", b"18446744073709551616"):
        assert raw(b"set v 0 0 %d\r\n%s\r\n" % (len(value), value)) == b"STORED\r\n"
        assert raw(b"incr v 1\r\n") == (b"CLIENT_ERROR cannot increment or decrement"
                                        b" non-numeric value\r\n"), value
        assert raw(b"decr v 1\r\n").startswith(b"CLIENT_ERROR"), value
    # flags survive incr; the cas changes
    assert raw(b"set fl 12 0 1\r\n5\r\n") == b"STORED\r\n"
    t1 = raw(b"gets fl\r\n").split()[4]
    assert raw(b"incr fl 10\r\n") == b"15\r\n"
    got = raw(b"gets fl\r\n")
    assert got.startswith(b"VALUE fl 12 2 ") and got.split()[4] != t1
    with pytest.raises(pymemcache.exceptions.MemcacheClientError, match="non-numeric"):
        c.set("word", b"abc")
        c.incr("word", 1)
    raw.close()


# --- storage commands, non-string keys, noreply ----------------------------------------------


def test_storage_commands_and_other_redis_types(proxy: Any, redis_servers: Any) -> None:
    shards = redis_servers(2)
    p = proxy(mr_config(shards))
    c = client(p)
    assert c.add("a", b"1") is True and c.add("a", b"2") is False
    assert c.replace("b", b"1") is False and c.get("b") is None
    assert c.replace("a", b"3") is True and c.get("a") == b"3"
    assert c.append("a", b"4") is True and c.prepend("a", b"0") is True and c.get("a") == b"034"
    assert c.append("none", b"x") is False and c.prepend("none", b"x") is False
    assert c.delete("a") is True and c.delete("a") is False and c.get("a") is None
    # append past the value limit: NOT_STORED, as memcached
    assert c.set("big", b"x" * 1_000_000) is True
    assert c.append("big", b"y" * 100_000) is False and c.prepend("big", b"y" * 48_000) is True
    # a key of another Redis type is no item: misses, NOT_STORED/NOT_FOUND, left alone ...
    r = owner(shards, "h")
    r.hset("h", "field", "v")
    assert c.get("h") is None and c.gets("h") == (None, None)
    assert c.add("h", b"1") is False and c.replace("h", b"1") is False
    assert c.append("h", b"1") is False and c.incr("h", 1) is None
    assert c.touch("h", 10) is False and c.delete("h") is False
    assert c.cas("h", b"1", 123) is None
    assert r.hgetall("h") == {b"field": b"v"} and r.ttl("h") == -1
    # ... except set, which overwrites it as SET does
    assert c.set("h", b"now a string") is True and r.get("h") == b"now a string"


def test_noreply_and_pipelines(proxy: Any, redis_servers: Any) -> None:
    shards = redis_servers(2)
    p = proxy(mr_config(shards))
    raw = Raw(p.addr("mc"))
    raw.send(b"set q1 0 0 1 noreply\r\na\r\nset q2 5 0 2 noreply\r\nbb\r\n"
             b"add q1 0 0 1 noreply\r\nz\r\nappend q2 0 0 1 noreply\r\nc\r\n"
             b"set n 0 0 1 noreply\r\n1\r\nincr n 5 noreply\r\ndecr n 1 noreply\r\n"
             b"touch q1 100 noreply\r\nset d 0 0 1 noreply\r\nd\r\ndelete d noreply\r\n"
             b"bogus\r\n"
             b"get q1 q2 n d\r\n")
    assert raw.reply() == b"ERROR\r\n"
    assert raw.reply() == b"VALUE q1 0 1\r\na\r\nVALUE q2 5 3\r\nbbc\r\nVALUE n 0 1\r\n5\r\nEND\r\n"
    assert 95 < owner(shards, "q1").ttl("q1") <= 100
    raw.close()
    c = client(p)
    assert c.set("nr", b"v", noreply=True) is True  # pymemcache: True without a reply
    c.set_many({f"p{i}": str(i).encode() for i in range(1000)}, noreply=True)
    assert c.get_many([f"p{i}" for i in range(1000)]) == {
        f"p{i}": str(i).encode() for i in range(1000)}
    assert c.get("nr") == b"v"


# --- flush_all, mirror ------------------------------------------------------------------------


def test_flush_all_and_mirror(proxy: Any, redis_servers: Any) -> None:
    shards = redis_servers(3)
    mirror = redis_servers(1)[0]
    p = proxy(mr_config(shards, rule={"mirror": "shadow"},
                        clusters=[{"name": "shadow", "protocol": "redis",
                                   "endpoints": [mirror.address]}]))
    c = client(p)
    c.set_many({f"k{i}": b"v" for i in range(100)})
    assert c.set("f", b"x", flags=3) is True
    assert all(direct(s).dbsize() > 0 for s in shards)
    m = direct(mirror)
    deadline = time.monotonic() + 5
    while m.dbsize() < 102 and time.monotonic() < deadline:  # 101 keys + f's companion
        time.sleep(0.05)
    assert m.get("k5") == b"v" and m.get(C + b"f") is not None
    raw = Raw(p.addr("mc"))
    assert raw(b"flush_all 10\r\n") == (b"SERVER_ERROR flush_all with a delay is not"
                                       b" supported by the Redis translation\r\n")
    assert c.get("k1") == b"v"
    assert raw(b"flush_all\r\n") == b"OK\r\n"
    assert all(direct(s).dbsize() == 0 for s in shards)
    assert c.get_many([f"k{i}" for i in range(100)]) == {}
    c.set("again", b"1")
    assert raw(b"flush_all 0 noreply\r\nflush_all -1\r\n") == b"OK\r\n"
    assert all(direct(s).dbsize() == 0 for s in shards)
    raw.close()


# --- failures ----------------------------------------------------------------------------------


def test_shard_down_timeout_and_error_replies(proxy: Any, redis_servers: Any) -> None:
    shards = redis_servers(3)
    p = proxy(mr_config(shards, timeout="500ms"))
    c = client(p)
    victim = shards[0]
    names = [f"d{i}" for i in range(200)]
    mine = [k for k in names if ring(shards).get(k.encode()) is victim]
    others = [k for k in names if ring(shards).get(k.encode()) is not victim]
    # a frozen shard: its commands time out at the route's timeout, the others serve
    victim.proc.send_signal(signal.SIGSTOP)
    try:
        t0 = time.monotonic()
        with pytest.raises(pymemcache.exceptions.MemcacheServerError, match="upstream timeout"):
            c.set(mine[0], b"x")
        assert 0.4 < time.monotonic() - t0 < 1.5
        assert c.set(others[0], b"ok") is True
    finally:
        victim.proc.send_signal(signal.SIGCONT)
    # a dead shard: every command for it fails at once, on every path
    victim.kill()
    raw = Raw(p.addr("mc"))
    assert c.get(others[0]) == b"ok"
    k = mine[1].encode()
    for cmd in (b"get %s\r\n", b"gets %s\r\n", b"gat 10 %s\r\n", b"set %s 0 0 1\r\nx\r\n",
                b"cas %s 0 0 1 5\r\nx\r\n", b"append %s 0 0 1\r\nx\r\n", b"incr %s 1\r\n",
                b"delete %s\r\n", b"touch %s 10\r\n", b"get " + others[1].encode() + b" %s\r\n",
                b"flush_all\r\n"):
        t0 = time.monotonic()
        line = cmd % k if b"%s" in cmd else cmd
        assert re.fullmatch(rb"SERVER_ERROR upstream (connect failed|connection reset)\r\n",
                            raw(line)), line
        assert time.monotonic() - t0 < 1.0
    assert c.get(others[0]) is None  # flush_all failed as a whole, but the live shards flushed
    back = start_redis(victim.port)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                assert c.set(mine[1], b"back") is True
                break
            except pymemcache.exceptions.MemcacheServerError:
                assert time.monotonic() < deadline
                time.sleep(0.2)
        assert c.get(mine[1]) == b"back"
        # Redis error replies -> SERVER_ERROR <text>: a companion of the wrong type ...
        direct(back).rpush(C + mine[1].encode(), "junk")
        assert raw(b"gets %s\r\n" % mine[1].encode()).startswith(b"SERVER_ERROR ")
        assert c.get(mine[1]) == b"back"  # plain get ignores it
        # ... and a shard out of memory
        direct(back).config_set("maxmemory", "1")
        reply = raw(b"set %s 0 0 1\r\ny\r\n" % mine[2].encode())
        assert reply.startswith(b"SERVER_ERROR ") and b"OOM" in reply, reply
        direct(back).config_set("maxmemory", "0")
        assert raw(b"set %s 0 0 1\r\ny\r\n" % mine[2].encode()) == b"STORED\r\n"
    finally:
        raw.close()
        back.kill()


# --- the same session against memcached --------------------------------------------------------

SESSION: list[bytes] = [
    b"set a 0 0 1\r\nA\r\n", b"get a\r\n", b"gets a\r\n", b"gets a\r\n",
    b"append a 0 0 1\r\nB\r\n", b"gets a\r\n", b"cas a 0 0 1 {0}\r\nC\r\n",
    b"cas a 3 0 1 {-1}\r\nC\r\n", b"gets a\r\n", b"prepend a 0 0 1\r\nP\r\n", b"get a\r\n",
    b"incr a 1\r\n", b"set n 5 0 2\r\n10\r\n", b"incr n 5\r\n", b"get n\r\n",
    b"decr n 100\r\n", b"incr n 18446744073709551615\r\n", b"incr n 2\r\n", b"delete n\r\n",
    b"delete n\r\n", b"incr n 1\r\n", b"decr n 1\r\n", b"add a 0 0 1\r\nz\r\n",
    b"add b 0 0 1\r\nb\r\n", b"replace c 0 0 1\r\nc\r\n", b"replace b 7 0 2\r\nbb\r\n",
    b"cas zz 0 0 1 123\r\nz\r\n", b"touch b 100\r\n", b"touch zz 1\r\n", b"gets b\r\n",
    b"gat 100 a b zz a\r\n", b"gats 0 a b\r\n", b"set neg 0 -1 1\r\nx\r\n", b"get neg\r\n",
    b"set past 0 1000000000 1\r\nx\r\n", b"get past\r\n", b"set wrap 0 9999999999 1\r\nx\r\n",
    b"get wrap\r\n", b"set rel 0 100 1\r\nx\r\n", b"get rel\r\n", b"touch rel -1\r\n",
    b"get rel\r\n", b"set e 0 0 0\r\n\r\n", b"get e\r\n", b"incr e 1\r\n",
    b"set sp 0 0 4\r\n12 x\r\n", b"incr sp 1\r\n", b"set m0 0 0 2\r\n-0\r\n", b"incr m0 5\r\n",
    b"set m1 0 0 2\r\n-1\r\n", b"incr m1 5\r\n", b"set big 0 0 20\r\n18446744073709551616\r\n",
    b"incr big 1\r\n", b"set lz 0 0 3\r\n007\r\n", b"incr lz 1\r\n", b"get a b n zz a\r\n",
    b"delete a noreply\r\n", b"get a\r\n", b"set f 4294967295 0 1\r\nx\r\n", b"gets f\r\n",
    b"incr f 1\r\n", b"set f 8 0 1\r\n1\r\n", b"incr f 1\r\n", b"get f\r\n", b"gets f b\r\n",
    b"append f 0 0 1\r\n0\r\n", b"gets f\r\n", b"gat -1 f\r\n", b"get f\r\n",
    b"set k 0 0 1 noreply\r\n1\r\n", b"get k\r\n", b"flush_all\r\n", b"get b k\r\n",
    b"gets b\r\n", b"set b 0 0 1\r\n1\r\n", b"gets b\r\n", b"cas b 0 0 1 {-1}\r\n2\r\n",
    b"cas b 0 0 1 {-1}\r\n3\r\n",
]


def random_session(seed: int, n: int = 250) -> list[bytes]:
    """``n`` commands over 4 keys: every storage command, cas with the key's latest token
    (``{=k}``) or a wrong one, incr, delete, touch and the retrievals; flags, values and
    exptimes drawn from sets that reach the corners (flags 0 / 2**32-1, values over 256
    bytes, immediate expiry). No decr and no incr that wraps: memcached pads a shorter
    result with spaces (see ``test_same_replies_as_memcached``)."""
    rnd = random.Random(seed)
    keys = [b"r0", b"r1", b"r2", b"r3"]
    values = [b"", b"abc", b"5", b"123", b"9", b"x" * 300]
    out = []
    for _ in range(n):
        k = rnd.choice(keys)
        op = rnd.choice(["set", "set", "add", "replace", "append", "prepend", "cas", "cas",
                         "incr", "delete", "touch", "get", "gets", "gets", "gat", "gats"])
        flags = rnd.choice([0, 0, 7, 4294967295])
        exp = rnd.choice([0, 0, 0, 1000, -1])
        v = rnd.choice(values)
        if op in ("set", "add", "replace", "append", "prepend"):
            out.append(b"%s %s %d %d %d\r\n%s\r\n" % (op.encode(), k, flags, exp, len(v), v))
        elif op == "cas":
            tok = rnd.choice([b"{=%s}" % k, b"{=%s}" % k, b"12345"])
            out.append(b"cas %s %d %d %d %s\r\n%s\r\n" % (k, flags, exp, len(v), tok, v))
        elif op == "incr":
            out.append(b"incr %s %d\r\n" % (k, rnd.choice([0, 1, 7])))
        elif op == "delete":
            out.append(b"delete %s\r\n" % k)
        elif op == "touch":
            out.append(b"touch %s %d\r\n" % (k, exp))
        elif op in ("get", "gets"):
            out.append(b"%s %s\r\n" % (op.encode(), b" ".join(rnd.sample(keys, 2))))
        else:
            out.append(b"%s %d %s\r\n" % (op.encode(), exp, k))
    return out


def play(addr: tuple[str, int], session: list[bytes]) -> list[bytes]:
    """Run ``session``: ``{i}`` is the i-th cas unique seen so far, ``{=k}`` the latest one
    seen for key k. Returns each command with its reply, cas uniques named by the order in
    which (key, cas) pairs first appear: only their pattern of equality is comparable."""
    raw = Raw(addr)
    seen: list[bytes] = []
    latest: dict[bytes, bytes] = {}
    names: dict[tuple[bytes, bytes], bytes] = {}
    out = []
    for template in session:
        cmd = re.sub(rb"\{(-?\d+)\}", lambda m: seen[int(m.group(1))], template)
        cmd = re.sub(rb"\{=(\S+?)\}", lambda m: latest.get(m.group(1), b"1"), cmd)
        if b" noreply\r\n" in cmd:
            raw.send(cmd)
            continue
        reply = raw(cmd)
        for key, tok in re.findall(rb"^VALUE (\S+) \d+ \d+ (\d+)\r\n", reply, re.M):
            seen.append(tok)
            latest[key] = tok
            names.setdefault((key, tok), b"<cas%d>" % len(names))
        out.append(template.split(b"\r\n")[0] + b" -> " + re.sub(
            rb"^(VALUE (\S+) \d+ \d+) (\d+)",
            lambda m: m.group(1) + b" " + names[(m.group(2), m.group(3))], reply, flags=re.M))
    raw.close()
    return out


@needs_memcached
def test_same_replies_as_memcached(proxy: Any, redis_servers: Any, memcached: Any) -> None:
    mc = memcached(1)[0]
    p = proxy(mr_config(redis_servers(2)))
    # (No session reads an incr/decr result shorter than the value before: memcached pads
    # those with spaces, the translation stores plain digits, by design.)
    for session in (SESSION, random_session(1), random_session(2), random_session(3)):
        want = play((mc.host, mc.port), session)
        got = play(p.addr("mc"), session)
        assert got == want
        assert Raw(p.addr("mc"))(b"flush_all\r\n") == Raw((mc.host, mc.port))(b"flush_all\r\n")
