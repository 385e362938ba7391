"""Ketama consistent hashing (libketama's scheme, as twemproxy and most memcached clients use
it): where a key lives among a cluster's shards, stable as shards come and go.

Ring: for every host, ``160 x weight / mean weight`` points (rounded down to a multiple of
4). Point group ``i`` of a host named ``NAME`` (``host:port``) is the MD5 digest of
``"NAME-i"``; each 16-byte digest gives 4 points (bytes 0-3, 4-7, 8-11, 12-15, each read
little-endian as an unsigned 32-bit integer). Key: the first 4 bytes of MD5(key),
little-endian; it belongs to the first point at or after its hash, wrapping around.

Adding or removing one of N equal shards moves about 1/N of the keys; the other keys keep
their shard. ``hash_tag`` (two characters, e.g. ``"{}"``): when the key contains the opening
character followed later by the closing one with something between them, only that part is
hashed, so ``user:{42}:name`` and ``user:{42}:mail`` share a shard (the Redis Cluster and
twemproxy convention).
"""

from __future__ import annotations

import bisect
import hashlib
from collections.abc import Sequence
from typing import Generic, TypeVar

POINTS_PER_SERVER = 160

T = TypeVar("T")


def key_hash(key: bytes) -> int:
    return int.from_bytes(hashlib.md5(key, usedforsecurity=False).digest()[:4], "little")


def hashed_part(key: bytes, hash_tag: bytes | None) -> bytes:
    """The part of ``key`` that is hashed (the hash tag's content, when present)."""
    if not hash_tag:
        return key
    start = key.find(hash_tag[:1])
    if start < 0:
        return key
    end = key.find(hash_tag[1:2], start + 1)
    if end <= start + 1:
        return key
    return key[start + 1 : end]


class KetamaRing(Generic[T]):
    """A ring over ``(name, weight, item)`` entries; ``get(key)`` -> the item owning key."""

    __slots__ = ("_points", "_items", "_cache", "hash_tag", "_only")

    def __init__(
        self, entries: Sequence[tuple[str, int, T]], hash_tag: bytes | None = None
    ) -> None:
        if not entries:
            raise ValueError("a ketama ring needs at least one entry")
        self.hash_tag = hash_tag
        total = sum(w for _, w, _ in entries)
        n = len(entries)
        ring: list[tuple[int, int]] = []  # (point, entry index)
        for index, (name, weight, _) in enumerate(entries):
            share = weight / total
            groups = int(share * POINTS_PER_SERVER / 4 * n + 1e-10)
            for i in range(groups):
                digest = hashlib.md5(f"{name}-{i}".encode(), usedforsecurity=False).digest()
                for k in range(4):
                    point = int.from_bytes(digest[4 * k : 4 * k + 4], "little")
                    ring.append((point, index))
        ring.sort()
        self._points = [p for p, _ in ring]
        self._items = [entries[i][2] for _, i in ring]
        self._cache: dict[bytes, T] = {}
        # One shard (or several points of one host only): every key is its own; no hashing.
        self._only: T | None = entries[0][2] if n == 1 else None

    def get(self, key: bytes) -> T:
        """The entry owning ``key``. Recent keys are cached (bounded)."""
        only = self._only
        if only is not None:
            return only
        found = self._cache.get(key)
        if found is not None:
            return found
        h = key_hash(hashed_part(key, self.hash_tag))
        i = bisect.bisect_left(self._points, h)
        item = self._items[i if i < len(self._items) else 0]
        cache = self._cache
        if len(cache) >= 65536:
            cache.clear()
        cache[key] = item
        return item

    def __len__(self) -> int:
        return len(self._points)
