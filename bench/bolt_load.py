#!/usr/bin/env python3
"""Bounded Bolt v1 load generator (uvloop, raw asyncio.Protocol, pipelined).

N connections, M requests in flight per connection. Each request is the captured
anthunder request frame with a per-connection incrementing requestId patched at bytes
5..8; responses are matched by requestId (they may come back out of order). The run stops
at whichever comes first: ``--requests`` sent in total or ``--duration`` seconds; then the
requests still in flight get up to ``--timeout`` seconds to answer.

Only the 20-byte response header is parsed (``struct.unpack_from``), the rest of each
frame is skipped by its lengths, so one process can out-run the proxy under test.

Prints one JSON object:
  completed   responses with respStatus 0
  errors      status_errors + timeouts + lost (in flight when a connection dropped)
  rps         completed / elapsed
  p50_ms ...  latency of the completed requests (send -> response parsed)

  python bench/bolt_load.py --port 12200 -c 8 -m 16 -n 200000 -d 5
"""

from __future__ import annotations

import argparse
import array
import asyncio
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import bolt_frames
from common import install_uvloop, percentile, require_loopback, take_batch

_perf = time.perf_counter
_MAX_ID = 0x7FFFFFFF


class _Run:
    """State shared by all connections of one load run."""

    __slots__ = (
        "inflight", "remaining", "sending", "outstanding", "lat", "completed",
        "status_errors", "timeouts", "lost", "unmatched", "protocol_errors",
        "prefix", "suffix", "done", "conns", "timeout", "t_last", "statuses",
    )

    def __init__(self, inflight: int, total: int, template: bytes, timeout: float) -> None:
        self.inflight = inflight
        self.remaining = total
        self.sending = True
        self.outstanding = 0
        self.lat = array.array("d")
        self.completed = 0
        self.status_errors = 0
        self.timeouts = 0
        self.lost = 0
        self.unmatched = 0
        self.protocol_errors = 0
        self.prefix, self.suffix = bolt_frames.split_at_request_id(template)
        self.done: asyncio.Future[None] | None = None
        self.conns: list[_BoltConn] = []
        self.timeout = timeout
        self.t_last = 0.0
        self.statuses: dict[int, int] = {}

    def maybe_done(self) -> None:
        if not self.sending and self.outstanding == 0 and self.done and not self.done.done():
            self.t_last = _perf()
            self.done.set_result(None)

    def stop_sending(self) -> None:
        self.sending = False
        self.maybe_done()


class _BoltConn(asyncio.Protocol):
    __slots__ = ("run", "transport", "next_id", "pending", "buf", "closed")

    def __init__(self, run: _Run, first_id: int = 1) -> None:
        self.run = run
        self.transport: asyncio.Transport | None = None
        self.next_id = first_id
        self.pending: dict[int, float] = {}  # requestId -> send time (insertion = send order)
        self.buf = bytearray()
        self.closed = False

    # -- asyncio callbacks -------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        run = self.run
        n = len(self.pending)
        if n:
            run.lost += n
            run.outstanding -= n
            self.pending.clear()
        if all(c.closed for c in run.conns):
            run.sending = False
        run.maybe_done()

    def data_received(self, data: bytes) -> None:
        run = self.run
        buf = self.buf
        if buf:
            buf += data
            view = buf
        else:
            view = data
        n = len(view)
        pos = 0
        now = _perf()
        pending_pop = self.pending.pop
        lat_append = run.lat.append
        unpack = bolt_frames.RESPONSE_HOT.unpack_from
        answered = 0
        while n - pos >= 20:
            if view[pos] != 1 or view[pos + 1] != 0:
                run.protocol_errors += 1
                self.transport.abort()  # type: ignore[union-attr]
                return
            rid, status, cl, hl, ctl = unpack(view, pos)
            end = pos + 20 + cl + hl + ctl
            if end > n:
                break
            pos = end
            t0 = pending_pop(rid, None)
            if t0 is None:
                run.unmatched += 1  # late answer after a timeout, or an id we never sent
                continue
            answered += 1
            if status == 0:
                lat_append(now - t0)
            else:
                run.status_errors += 1
                run.statuses[status] = run.statuses.get(status, 0) + 1
        if buf:
            del buf[:pos]
        elif pos < n:
            buf += view[pos:]
        if answered:
            run.outstanding -= answered
            if run.sending:
                self.fill()
            elif run.outstanding == 0:
                run.maybe_done()

    # -- sending ------------------------------------------------------------------------
    def fill(self) -> None:
        """Top the connection up to ``inflight`` outstanding requests (one write)."""
        run = self.run
        if self.closed or not run.sending:
            return
        k = take_batch(run, len(self.pending))
        if k <= 0:
            return
        prefix = run.prefix
        suffix = run.suffix
        pack = bolt_frames.REQUEST_ID.pack
        pending = self.pending
        parts = []
        rid = self.next_id
        now = _perf()
        for _ in range(k):
            parts.append(prefix)
            parts.append(pack(rid))
            parts.append(suffix)
            pending[rid] = now
            rid = rid + 1 if rid < _MAX_ID else 1
        self.next_id = rid
        run.outstanding += k
        self.transport.write(b"".join(parts))  # type: ignore[union-attr]

    def expire(self, now: float) -> int:
        """Drop requests older than the timeout; return how many expired."""
        limit = now - self.run.timeout
        pending = self.pending
        expired = []
        for rid, t0 in pending.items():
            if t0 > limit:
                break
            expired.append(rid)
        for rid in expired:
            del pending[rid]
        return len(expired)


async def run_bolt_load(
    host: str,
    port: int,
    *,
    connections: int = 8,
    inflight: int = 16,
    requests: int = 100_000,
    duration: float = 5.0,
    timeout: float = 3.0,
    template: bytes = bolt_frames.HELLO_REQUEST,
    connect_timeout: float = 5.0,
) -> dict:
    """Run one bounded load and return the result dict (see module docstring)."""
    if connections < 1 or inflight < 1 or requests < 1 or duration <= 0:
        raise ValueError("connections, inflight, requests and duration must be positive")
    bolt_frames.check_request(template)
    loop = asyncio.get_running_loop()
    run = _Run(inflight, requests, template, timeout)
    run.done = loop.create_future()

    async def connect(i: int) -> _BoltConn:
        _, proto = await asyncio.wait_for(
            loop.create_connection(lambda: _BoltConn(run, 1), host, port), connect_timeout)
        return proto  # type: ignore[return-value]

    try:
        run.conns = list(await asyncio.gather(*(connect(i) for i in range(connections))))
    except (OSError, TimeoutError) as exc:
        return {"error": f"connect to {host}:{port} failed: {exc!r}"}

    cpu0 = time.process_time()
    t_start = _perf()
    run.t_last = t_start
    stopper = loop.call_later(duration, run.stop_sending)

    async def sweeper() -> None:
        step = min(0.25, max(0.01, timeout / 4))
        while True:
            await asyncio.sleep(step)
            now = _perf()
            n = 0
            for c in run.conns:
                e = c.expire(now)
                if e:
                    n += e
            if n:
                run.timeouts += n
                run.outstanding -= n
                for c in run.conns:
                    c.fill()
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
    leftover = sum(len(c.pending) for c in run.conns)
    run.timeouts += leftover
    for c in run.conns:
        c.pending.clear()
        if c.transport is not None:
            c.transport.close()
    await asyncio.sleep(0)
    cpu = time.process_time() - cpu0

    lat = sorted(run.lat)
    completed = len(lat)
    sent = requests - run.remaining
    # elapsed: until the last request was settled (drain included), else until we gave up
    elapsed = max(1e-9, (run.t_last if run.done.done() else t_end) - t_start)
    errors = run.status_errors + run.timeouts + run.lost
    return {
        "tool": "bolt_load",
        "target": f"{host}:{port}",
        "connections": connections,
        "inflight": inflight,
        "sent": sent,
        "completed": completed,
        "errors": errors,
        "status_errors": run.status_errors,
        "statuses": {str(k): v for k, v in sorted(run.statuses.items())},
        "timeouts": run.timeouts,
        "lost": run.lost,
        "unmatched": run.unmatched,
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
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("-c", "--connections", type=int, default=8)
    p.add_argument("-m", "--inflight", type=int, default=16,
                   help="requests in flight per connection")
    p.add_argument("-n", "--requests", type=int, default=100_000,
                   help="total requests (upper bound)")
    p.add_argument("-d", "--duration", type=float, default=5.0, help="max seconds of sending")
    p.add_argument("--timeout", type=float, default=3.0, help="per-request timeout, seconds")
    p.add_argument("--template", help="hex file with a Bolt v1 request (default: anthunder hello)")
    p.add_argument("--pretty", action="store_true")
    a = p.parse_args(argv)
    host = require_loopback(a.host)
    template = bolt_frames.load_hex_file(a.template) if a.template else bolt_frames.HELLO_REQUEST
    loop_name = install_uvloop()
    res = asyncio.run(run_bolt_load(
        host, a.port, connections=a.connections, inflight=a.inflight, requests=a.requests,
        duration=a.duration, timeout=a.timeout, template=template))
    res["loop"] = loop_name
    print(json.dumps(res, indent=2 if a.pretty else None))
    return 1 if "error" in res else 0


if __name__ == "__main__":
    sys.exit(main())
