#!/usr/bin/env python3
"""Bounded memcached text-protocol load generator (uvloop, raw asyncio.Protocol, pipelined).

N connections, M requests in flight per connection (topped up after every read, so the
pipeline stays full), each request one ``get KEY`` or one ``set KEY 0 0 SIZE`` with a
SIZE-byte value, KEY ``key:%012d`` drawn at random from ``--keyspace`` keys (the same
names redis-benchmark uses). memcached answers a connection's requests in order, so the
replies are matched by position. The run stops at whichever comes first: ``--requests``
sent in total or ``--duration`` seconds; then the requests in flight get up to
``--timeout`` seconds to answer. A connection whose oldest request is older than
``--timeout`` is closed and its requests count as timeouts (an ordered protocol cannot
skip one reply).

Replies: get -> ``END`` (miss) or ``VALUE k f n`` + data + ``END`` (hit); set ->
``STORED``. Any other line (``ERROR``, ``CLIENT_ERROR ...``, ``SERVER_ERROR ...``,
``NOT_STORED``) is an error reply and counted by its first word.

Prints one JSON object:
  completed    successful replies (get: hits + misses; set: STORED)
  errors       error replies + timeouts + lost (in flight on a closed connection)
               + protocol errors (a reply that could not be parsed)
  rps          completed / elapsed
  p50_ms ...   latency of the completed requests (send -> reply parsed)

  python bench/memcache_load.py --port 11211 --op get -c 50 -m 16 -n 500000 -d 5
"""

from __future__ import annotations

import argparse
import array
import asyncio
import collections
import json
import os
import random
import sys
import time
from typing import Any, cast

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from common import install_uvloop, percentile, require_loopback, take_batch

_perf = time.perf_counter
KEY_FORMAT = "key:%012d"
# distinct prepared requests per run; connections walk through them from different offsets
_PREPARED = 1 << 14


class _Run:
    """State shared by all connections of one load run."""

    __slots__ = (
        "inflight", "remaining", "sending", "outstanding", "lat", "hits", "misses",
        "stored", "error_replies", "timeouts", "lost", "protocol_errors", "done", "conns",
        "timeout", "t_last", "requests", "is_get",
    )

    def __init__(self, op: str, inflight: int, total: int, timeout: float, keyspace: int,
                 value_size: int, seed: int) -> None:
        self.inflight = inflight
        self.remaining = total
        self.sending = True
        self.outstanding = 0
        self.lat = array.array("d")
        self.hits = 0
        self.misses = 0
        self.stored = 0
        self.error_replies: dict[str, int] = {}
        self.timeouts = 0
        self.lost = 0
        self.protocol_errors = 0
        self.done: asyncio.Future[None] | None = None
        self.conns: list[_McConn] = []
        self.timeout = timeout
        self.t_last = 0.0
        self.is_get = op == "get"
        rng = random.Random(seed)
        value = b"x" * value_size
        keys = [(KEY_FORMAT % rng.randrange(keyspace)).encode() for _ in range(_PREPARED)]
        if self.is_get:
            self.requests = [b"get %s\r\n" % k for k in keys]
        else:
            self.requests = [b"set %s 0 0 %d\r\n%s\r\n" % (k, value_size, value) for k in keys]

    def maybe_done(self) -> None:
        if not self.sending and self.outstanding == 0 and self.done and not self.done.done():
            self.t_last = _perf()
            self.done.set_result(None)

    def stop_sending(self) -> None:
        self.sending = False
        self.maybe_done()


class _McConn(asyncio.Protocol):
    __slots__ = ("run", "transport", "sent_at", "buf", "closed", "next_req")

    def __init__(self, run: _Run, first: int) -> None:
        self.run = run
        self.transport: asyncio.Transport | None = None
        self.sent_at: collections.deque[float] = collections.deque()
        self.buf = bytearray()
        self.closed = False
        self.next_req = first

    # -- asyncio callbacks -------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._drop(lost=True)
        run = self.run
        if all(c.closed for c in run.conns):
            run.sending = False
        run.maybe_done()

    def _drop(self, *, lost: bool) -> None:
        n = len(self.sent_at)
        if n:
            if lost:
                self.run.lost += n
            else:
                self.run.timeouts += n
            self.run.outstanding -= n
            self.sent_at.clear()

    def _bad(self) -> None:
        self.run.protocol_errors += 1
        self._drop(lost=True)
        self.closed = True
        if self.transport is not None:
            self.transport.abort()

    def data_received(self, data: bytes) -> None:
        run = self.run
        buf = self.buf
        buf += data
        n = len(buf)
        pos = 0
        now = _perf()
        sent_at = self.sent_at
        lat_append = run.lat.append
        answered = 0
        bad = False
        while sent_at:
            eol = buf.find(b"\r\n", pos)
            if eol < 0:
                break
            first = buf[pos]
            if first == 86 and run.is_get and buf.startswith(b"VALUE ", pos):  # a hit
                try:
                    size = int(buf[pos:eol].split()[3])
                except (IndexError, ValueError):
                    bad = True
                    break
                end = eol + 2 + size
                if end + 7 > n:  # data, "\r\n", "END\r\n"
                    break
                if buf[end:end + 7] != b"\r\nEND\r\n":
                    bad = True
                    break
                pos = end + 7
                run.hits += 1
                lat_append(now - sent_at.popleft())
            else:
                line = bytes(buf[pos:eol])
                pos = eol + 2
                t0 = sent_at.popleft()
                if line == b"END" and run.is_get:
                    run.misses += 1
                    lat_append(now - t0)
                elif line == b"STORED" and not run.is_get:
                    run.stored += 1
                    lat_append(now - t0)
                else:
                    word = line.split(b" ", 1)[0].decode("ascii", "replace")[:40]
                    run.error_replies[word] = run.error_replies.get(word, 0) + 1
            answered += 1
        if pos:
            del buf[:pos]
        if answered:
            run.outstanding -= answered
        if bad:
            self._bad()
            run.maybe_done()
        elif answered:
            if run.sending:
                if not sent_at:  # the whole batch is answered: send the next one
                    self.fill()
            elif run.outstanding == 0:
                run.maybe_done()

    # -- sending ------------------------------------------------------------------------
    def fill(self) -> None:
        """Send the next batch: ``inflight`` requests in one write."""
        run = self.run
        if self.closed or not run.sending:
            return
        k = take_batch(run, len(self.sent_at))
        if k <= 0:
            return
        reqs = run.requests
        i = self.next_req
        end = i + k
        if end <= _PREPARED:
            out = b"".join(reqs[i:end])
        else:
            out = b"".join(reqs[i:]) + b"".join(reqs[:end - _PREPARED])
        self.next_req = end % _PREPARED
        now = _perf()
        self.sent_at.extend([now] * k)
        run.outstanding += k
        assert self.transport is not None
        self.transport.write(out)

    def expire(self, now: float) -> bool:
        """Close the connection if its oldest request is older than the timeout."""
        if self.closed or not self.sent_at or now - self.sent_at[0] <= self.run.timeout:
            return False
        self._drop(lost=False)
        self.closed = True
        if self.transport is not None:
            self.transport.abort()
        return True


async def run_memcache_load(
    host: str,
    port: int,
    *,
    op: str = "get",
    connections: int = 50,
    inflight: int = 1,
    requests: int = 100_000,
    duration: float = 5.0,
    timeout: float = 3.0,
    keyspace: int = 100_000,
    value_size: int = 3,
    seed: int = 1,
    connect_timeout: float = 5.0,
) -> dict[str, Any]:
    """Run one bounded load and return the result dict (see module docstring)."""
    if min(connections, inflight, requests, keyspace) < 1 or duration <= 0 or value_size < 0:
        raise ValueError("connections, inflight, requests, keyspace and duration must be "
                         "positive")
    if op not in ("get", "set"):
        raise ValueError(f"op must be get or set, not {op!r}")
    loop = asyncio.get_running_loop()
    run = _Run(op, inflight, requests, timeout, keyspace, value_size, seed)
    run.done = loop.create_future()
    step = max(1, _PREPARED // connections)

    async def connect(i: int) -> _McConn:
        _, proto = await asyncio.wait_for(
            loop.create_connection(lambda: _McConn(run, (i * step) % _PREPARED), host, port),
            connect_timeout)
        return proto

    try:
        run.conns = list(await asyncio.gather(*(connect(i) for i in range(connections))))
    except (OSError, TimeoutError) as exc:
        return {"error": f"connect to {host}:{port} failed: {exc!r}"}

    cpu0 = time.process_time()
    t_start = _perf()
    run.t_last = t_start
    stopper = loop.call_later(duration, run.stop_sending)

    async def sweeper() -> None:
        tick = min(0.25, max(0.01, timeout / 4))
        while True:
            await asyncio.sleep(tick)
            now = _perf()
            if any([c.expire(now) for c in run.conns]):
                if all(c.closed for c in run.conns):
                    run.sending = False
                run.maybe_done()

    sweep = loop.create_task(sweeper())
    for c in run.conns:
        c.fill()
    # Hard bound: duration + timeout + slack, whatever the peer does.
    try:
        await asyncio.wait_for(asyncio.shield(run.done), duration + timeout + 2.0)
    except TimeoutError:
        pass
    t_end = _perf()
    stopper.cancel()
    sweep.cancel()
    for c in run.conns:
        c._drop(lost=False)
        if c.transport is not None:
            c.transport.close()
    await asyncio.sleep(0)
    cpu = time.process_time() - cpu0

    lat = sorted(run.lat)
    completed = len(lat)
    sent = requests - run.remaining
    elapsed = max(1e-9, (run.t_last if run.done.done() else t_end) - t_start)
    n_err_replies = sum(run.error_replies.values())
    errors = n_err_replies + run.timeouts + run.lost + run.protocol_errors
    return {
        "tool": "memcache_load",
        "target": f"{host}:{port}",
        "op": op,
        "connections": connections,
        "inflight": inflight,
        "sent": sent,
        "completed": completed,
        "hits": run.hits,
        "misses": run.misses,
        "stored": run.stored,
        "errors": errors,
        "error_replies": dict(sorted(run.error_replies.items())),
        "timeouts": run.timeouts,
        "lost": run.lost,
        "protocol_errors": run.protocol_errors,
        "elapsed_s": round(elapsed, 4),
        "rps": round(completed / elapsed, 1),
        "p50_ms": round(percentile(lat, 50) * 1e3, 3) if lat else None,
        "p90_ms": round(percentile(lat, 90) * 1e3, 3) if lat else None,
        "p99_ms": round(percentile(lat, 99) * 1e3, 3) if lat else None,
        "p999_ms": round(percentile(lat, 99.9) * 1e3, 3) if lat else None,
        "max_ms": round(lat[-1] * 1e3, 3) if lat else None,
        "load_cpu_s": round(cpu, 3),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--op", choices=("get", "set"), default="get")
    p.add_argument("-c", "--connections", type=int, default=50)
    p.add_argument("-m", "--inflight", type=int, default=1,
                   help="requests in flight per connection (pipelined)")
    p.add_argument("-n", "--requests", type=int, default=100_000,
                   help="total requests (upper bound)")
    p.add_argument("-d", "--duration", type=float, default=5.0, help="max seconds of sending")
    p.add_argument("--timeout", type=float, default=3.0, help="per-request timeout, seconds")
    p.add_argument("--keyspace", type=int, default=100_000, help="keys key:%%012d, 0..N-1")
    p.add_argument("--value-size", type=int, default=3, help="set: value bytes")
    p.add_argument("--seed", type=int, default=1, help="random key order")
    p.add_argument("--pretty", action="store_true")
    a = p.parse_args(argv)
    host = require_loopback(a.host)
    loop_name = install_uvloop()
    try:
        res = asyncio.run(run_memcache_load(
            host, a.port, op=a.op, connections=a.connections, inflight=a.inflight,
            requests=a.requests, duration=a.duration, timeout=a.timeout,
            keyspace=a.keyspace, value_size=a.value_size, seed=a.seed))
    except ValueError as exc:
        res = {"error": str(exc)}
    res["loop"] = loop_name
    print(json.dumps(res, indent=2 if a.pretty else None))
    return 1 if "error" in res else 0


if __name__ == "__main__":
    sys.exit(main())
