"""Ketama ring: balance, stability when a shard goes, weights, hash tags."""

from __future__ import annotations

from collections import Counter

import pytest

from mosn_py.upstream.ketama import POINTS_PER_SERVER, KetamaRing, hashed_part, key_hash

KEYS = [f"key:{i}".encode() for i in range(30_000)]


def ring(names: list[str], weights: list[int] | None = None) -> KetamaRing[str]:
    ws = weights or [1] * len(names)
    return KetamaRing([(n, w, n) for n, w in zip(names, ws, strict=True)])


def test_points_and_balance() -> None:
    r = ring(["10.0.0.1:6379", "10.0.0.2:6379", "10.0.0.3:6379"])
    assert len(r) == 3 * POINTS_PER_SERVER
    share = Counter(r.get(k) for k in KEYS)
    for n in share.values():
        assert 0.25 < n / len(KEYS) < 0.42, share


def test_removing_a_shard_moves_only_its_keys() -> None:
    names = ["a:1", "b:1", "c:1", "d:1"]
    full = ring(names)
    less = ring(names[:3])
    moved = [k for k in KEYS if full.get(k) != less.get(k)]
    assert all(full.get(k) == "d:1" for k in moved)
    assert 0.15 < len(moved) / len(KEYS) < 0.35


def test_weights() -> None:
    r = ring(["a:1", "b:1"], [1, 3])
    share = Counter(r.get(k) for k in KEYS)
    assert 2.3 < share["b:1"] / share["a:1"] < 3.8


def test_hash_tags() -> None:
    assert hashed_part(b"user:{42}:name", b"{}") == b"42"
    assert hashed_part(b"user:{}:name", b"{}") == b"user:{}:name"  # empty tag: whole key
    assert hashed_part(b"user:{42", b"{}") == b"user:{42"
    assert hashed_part(b"plain", None) == b"plain"
    r = KetamaRing([(n, 1, n) for n in ("a:1", "b:1", "c:1")], hash_tag=b"{}")
    owners = {r.get(f"user:{{42}}:{f}".encode()) for f in ("name", "mail", "age", "x", "y")}
    assert len(owners) == 1


def test_stable_across_processes() -> None:
    """Pinned: the scheme must not change between releases (data would move)."""
    assert key_hash(b"foo") == int.from_bytes(bytes.fromhex("acbd18db"), "little")
    r = ring(["127.0.0.1:6379", "127.0.0.1:6380", "127.0.0.1:6381"])
    assert [r.get(k) for k in (b"foo", b"bar", b"baz", b"key:1", b"key:2")] == PINNED


PINNED = ["127.0.0.1:6379", "127.0.0.1:6381", "127.0.0.1:6381", "127.0.0.1:6380",
          "127.0.0.1:6379"]


def test_empty_ring_is_an_error() -> None:
    with pytest.raises(ValueError):
        KetamaRing([])
