"""The Redis command table: kinds and key positions."""

from __future__ import annotations

import pytest

from mosn_py.router.redis_commands import TABLE, Kind, lookup


def keys(*args: str) -> list[str]:
    spec = lookup(args[0].lower())
    assert spec is not None
    return [k.decode() for k in spec.keys([a.encode() for a in args])]


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("GET", "k"), ["k"]),
        (("SET", "k", "v", "EX", "10"), ["k"]),
        (("MGET", "a", "b", "c"), ["a", "b", "c"]),
        (("MSET", "a", "1", "b", "2"), ["a", "b"]),
        (("DEL", "a", "b"), ["a", "b"]),
        (("RENAME", "a", "b"), ["a", "b"]),
        (("SINTER", "a", "b", "c"), ["a", "b", "c"]),
        (("BITOP", "AND", "dst", "a", "b"), ["dst", "a", "b"]),
        (("MSETNX", "a", "1", "b", "2"), ["a", "b"]),
        (("EVAL", "return 1", "2", "k1", "k2", "arg"), ["k1", "k2"]),
        (("ZUNIONSTORE", "dst", "2", "a", "b", "WEIGHTS", "1", "2"), ["dst", "a", "b"]),
        (("ZUNION", "2", "a", "b"), ["a", "b"]),
        (("EVAL", "return 1", "x"), []),  # a bad numkeys: no keys (the server says why)
    ],
)
def test_key_positions(args: tuple[str, ...], expected: list[str]) -> None:
    assert keys(*args) == expected


def test_kinds() -> None:
    assert lookup("get").kind is Kind.KEY and not lookup("get").write  # type: ignore[union-attr]
    assert lookup("set").write  # type: ignore[union-attr]
    for name in ("mget", "mset", "del", "unlink", "exists", "touch"):
        assert TABLE[name].kind is Kind.SPLIT
    for name in ("ping", "echo", "quit", "select", "auth", "hello", "command"):
        assert TABLE[name].kind is Kind.LOCAL
    for name, word in (("multi", "transactions"), ("blpop", "blocking"),
                       ("subscribe", "pub/sub"), ("keys", "whole-keyspace"),
                       ("scan", "whole-keyspace"), ("config", "administration")):
        assert TABLE[name].kind is Kind.REFUSED and word in TABLE[name].reason
    assert lookup("nosuchcommand") is None
