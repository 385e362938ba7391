"""A coarse timer wheel for per-request timeouts.

One loop timer serves every request timeout of a process: deadlines are rounded up to
``resolution`` (10 ms) and kept in per-tick sets, so scheduling and cancelling a timeout cost
a set insert and a set discard instead of a loop timer each (a uvloop ``call_later`` allocates
a handle and a libuv timer per call). A timeout fires at most ``resolution`` late, never early.

Objects scheduled here implement ``on_deadline()``.
"""

from __future__ import annotations

import asyncio
from typing import Any


class TimerWheel:
    __slots__ = ("_loop", "_res", "_buckets", "_handle", "_armed")

    def __init__(self, loop: asyncio.AbstractEventLoop, resolution: float = 0.01) -> None:
        self._loop = loop
        self._res = resolution
        self._buckets: dict[int, set[Any]] = {}
        self._handle: asyncio.TimerHandle | None = None
        self._armed = 0  # tick the loop timer is set for

    def schedule(self, obj: Any, delay: float) -> int:
        """Call ``obj.on_deadline()`` after ``delay`` seconds; returns a token for cancel()."""
        tick = int((self._loop.time() + delay) / self._res) + 1
        bucket = self._buckets.get(tick)
        if bucket is None:
            bucket = self._buckets[tick] = set()
            if self._handle is None or tick < self._armed:
                self._arm(tick)
        bucket.add(obj)
        return tick

    def cancel(self, obj: Any, token: int) -> None:
        bucket = self._buckets.get(token)
        if bucket is not None:
            bucket.discard(obj)

    def _arm(self, tick: int) -> None:
        if self._handle is not None:
            self._handle.cancel()
        self._armed = tick
        self._handle = self._loop.call_at(tick * self._res, self._fire)

    def _fire(self) -> None:
        self._handle = None
        now = int(self._loop.time() / self._res)
        buckets = self._buckets
        for tick in sorted(t for t in buckets if t <= now):
            for obj in buckets.pop(tick):
                obj.on_deadline()
        if buckets:
            self._arm(min(buckets))

    def __len__(self) -> int:
        return sum(len(b) for b in self._buckets.values())

    def close(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        self._buckets.clear()
