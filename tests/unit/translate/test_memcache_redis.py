"""``translate/memcache_redis.py`` without a network: exptimes as memcached reads them, the
Redis command each memcached command becomes, Redis replies back to memcached replies, and
the companion fingerprint. The scripts themselves run against real redis-servers in
``tests/integration/test_memcache_redis.py`` (replies compared with a real memcached)."""

from __future__ import annotations

import hashlib

import pytest

from mosn_py.codecs.base import Frame, StreamType
from mosn_py.codecs.memcache import MemcacheCommand, MemcacheItem
from mosn_py.codecs.redis import RedisError
from mosn_py.errors import ConfigError, LocalProtocolError
from mosn_py.translate.memcache_redis import (
    CAS_COUNTER,
    COMPANION_PREFIX,
    SCRIPTS,
    MemcacheToRedis,
    expiry,
    fingerprint,
    get_items,
    get_request,
    int32,
    write_reply,
    write_request,
)

C = COMPANION_PREFIX


@pytest.mark.parametrize(
    ("exptime", "want"),
    [
        (0, (b"n", b"0")),
        (1, (b"EX", b"1")),
        (2592000, (b"EX", b"2592000")),  # 30 days: still relative (protocol.txt)
        (2592001, (b"EXAT", b"2592001")),  # a unix time (long past: Redis deletes at once)
        (1795000000, (b"EXAT", b"1795000000")),
        (-1, (b"d", b"0")),
        (-(2**31), (b"d", b"0")),
        (9999999999, (b"EXAT", b"1410065407")),  # memcached keeps 32 bits: 2014, expired
        (2**32, (b"n", b"0")),  # ... so this one never expires, as in memcached
        (2**31, (b"d", b"0")),
    ],
)
def test_expiry(exptime: int, want: tuple[bytes, bytes]) -> None:
    assert expiry(exptime) == want
    assert -(2**31) <= int32(exptime) < 2**31


def test_fingerprint_samples_long_values() -> None:
    assert fingerprint(b"hello") == b"5:" + hashlib.sha1(b"hello").hexdigest().encode()
    v = bytes(range(256)) * 3
    assert fingerprint(v) == b"768:" + hashlib.sha1(v[:128] + v[-128:]).hexdigest().encode()
    assert fingerprint(b"x" * 256) == b"256:" + hashlib.sha1(b"x" * 256).hexdigest().encode()
    assert fingerprint(b"") == b"0:" + hashlib.sha1(b"").hexdigest().encode()


def args(frame: Frame) -> list[bytes]:
    out: list[bytes] = frame.extra.args
    assert frame.raw is not None and frame.stream_type is StreamType.REQUEST
    return out


def test_get_requests() -> None:
    assert args(get_request([b"a", b"b"], False, None)) == [b"MGET", b"a", C + b"a", b"b", C + b"b"]
    gets = args(get_request([b"a"], True, None))
    assert gets[:3] == [b"EVAL", SCRIPTS["get"], b"3"]
    assert gets[3:] == [b"a", C + b"a", CAS_COUNTER, b"1", b"", b""]
    gat = args(get_request([b"a"], False, 100))
    assert gat[3:] == [b"a", C + b"a", CAS_COUNTER, b"0", b"EX", b"100"]


def command(name: str, **kw: object) -> MemcacheCommand:
    return MemcacheCommand(name, [b"k"], **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("cmd", "script", "argv"),
    [
        (command("set", flags=5, exptime=10, value=memoryview(b"v")), "store",
         [b"set", b"v", b"5", b"EX", b"10", b""]),
        (command("cas", exptime=-1, cas=77, value=b"v"), "store",
         [b"cas", b"v", b"0", b"d", b"0", b"77"]),
        (command("add", exptime=2592001, value=b""), "store",
         [b"add", b"", b"0", b"EXAT", b"2592001", b""]),
        (command("prepend", value=b"p"), "append", [b"prepend", b"p", b"1024"]),
        (command("incr", delta=2**64 - 1), "incr", [b"incr", b"18446744073709551615"]),
        (command("decr", delta=0), "incr", [b"decr", b"0"]),
        (command("delete"), "delete", []),
        (command("touch", exptime=0), "touch", [b"n", b"0"]),
    ],
)
def test_write_requests(cmd: MemcacheCommand, script: str, argv: list[bytes]) -> None:
    assert args(write_request(cmd, 1024)) == [b"EVAL", SCRIPTS[script], b"2", b"k", C + b"k",
                                              *argv]


def test_write_request_refuses_what_has_no_translation() -> None:
    with pytest.raises(LocalProtocolError):
        write_request(MemcacheCommand("verbosity", []), 1024)


def reply(value: object, status: int = 0) -> Frame:
    return Frame(StreamType.RESPONSE, 1, {}, status=status, extra=value)


def test_write_replies() -> None:
    for word in (b"STORED", b"NOT_STORED", b"EXISTS", b"NOT_FOUND", b"DELETED", b"TOUCHED"):
        assert write_reply(9, reply(word)).raw == word + b"\r\n"
    assert write_reply(9, reply(b"18446744073709551615")).raw == b"18446744073709551615\r\n"
    assert write_reply(9, reply(b"NON_NUMERIC")).raw == (
        b"CLIENT_ERROR cannot increment or decrement non-numeric value\r\n")
    oom = RedisError("OOM command not allowed when used memory > 'maxmemory'.")
    assert write_reply(9, reply(oom, 1)).raw == (
        b"SERVER_ERROR OOM command not allowed when used memory > 'maxmemory'.\r\n")
    assert write_reply(9, reply(7)).raw.startswith(b"SERVER_ERROR unexpected reply")
    assert write_reply(9, reply(b"OK")).request_id == 9


def test_get_items_from_mget() -> None:
    fp = fingerprint(b"v1")
    value = [b"v1", b"5 0 " + fp, None, None, b"v3", b"5 0 " + fingerprint(b"old"),
             b"v4", b"junk", b"v1", b"99999999999 0 " + fp]
    got = get_items([b"a", b"b", b"c", b"d", b"e"], reply(value), False, False)
    assert got == [MemcacheItem(b"a", 5, b"v1"), None,
                   MemcacheItem(b"c", 0, b"v3"),  # stale companion: a Redis client wrote c
                   MemcacheItem(b"d", 0, b"v4"),  # not a companion
                   MemcacheItem(b"e", 0, b"v1")]  # flags beyond u32
    with pytest.raises(ValueError):
        get_items([b"a"], reply([b"v"]), False, False)
    with pytest.raises(ValueError):
        get_items([b"a"], reply(b"v"), False, False)


def test_get_items_from_the_script() -> None:
    value = [b"v", b"3", 1795000000000001, None, None, None, b"w", b"0", b"17"]
    assert get_items([b"a", b"b", b"c"], reply(value), True, True) == [
        MemcacheItem(b"a", 3, b"v", 1795000000000001), None, MemcacheItem(b"c", 0, b"w", 17)]
    assert get_items([b"a"], reply([b"v", b"3", None]), False, True) == [
        MemcacheItem(b"a", 3, b"v", None)]  # gat: no cas asked
    with pytest.raises(ValueError):
        get_items([b"a", b"b"], reply([b"v", b"3", None]), False, True)


def test_options() -> None:
    assert MemcacheToRedis.from_options(None) is MemcacheToRedis
    assert MemcacheToRedis.from_options({}) is MemcacheToRedis
    with pytest.raises(ConfigError, match="'flush'"):
        MemcacheToRedis.from_options({"flush": "no"})
    assert (MemcacheToRedis.downstream, MemcacheToRedis.upstream) == ("memcache", "redis")


def test_scripts_are_small_lua() -> None:
    for name, src in SCRIPTS.items():
        assert 100 < len(src) < 4096, name
        assert b"\r" not in src and src.isascii()


def test_config_accepts_a_memcache_listener_on_a_redis_cluster() -> None:
    from mosn_py.cli import translator_pairs
    from mosn_py.config import parse_config
    from mosn_py.extensions import default_registries

    def config(**rule: object) -> dict[str, object]:
        return {
            "listeners": [{"name": "mc", "address": "127.0.0.1:0", "protocol": "memcache",
                           "route": "r"}],
            "routes": [{"name": "r", "rules": [{"cluster": "redis", **rule}]}],
            "clusters": [{"name": "redis", "protocol": "redis", "endpoints": ["127.0.0.1:1"]}],
        }

    pairs = translator_pairs(default_registries())
    assert pairs[("memcache", "redis")] is MemcacheToRedis
    parse_config(config(), translations=pairs)
    with pytest.raises(ConfigError, match=r"rules\[0\]\.translate: unknown option 'x'"):
        parse_config(config(translate={"x": 1}), translations=pairs)
    with pytest.raises(ConfigError, match="no translator from memcache to redis"):
        parse_config(config(), translations={})
