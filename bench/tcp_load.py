#!/usr/bin/env python3
"""Bounded TCP load generator against an echo server (uvloop, raw asyncio.Protocol).

small mode (default): N connections, each sending an S-byte message and waiting until S
  bytes came back before sending the next (ping-pong; ``--inflight`` > 1 pipelines).
  Bounded by ``--requests`` in total and ``--duration`` seconds. Reports req/s, p50/p99.

bulk mode: N connections each stream their share of ``--mb`` megabytes (MB = 10**6 bytes)
  in 64 KiB writes, with flow control, while reading the echo back. Bounded by ``--mb``
  and ``--duration``. Reports MB/s of payload that made the full round trip.

Prints one JSON object.

  python bench/tcp_load.py --port 12400 small -c 8 -s 64 -n 200000 -d 5
  python bench/tcp_load.py --port 12400 bulk -c 1 --mb 1000 -d 5
"""

from __future__ import annotations

import argparse
import array
import asyncio
import collections
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from common import install_uvloop, percentile, require_loopback, take_batch

_perf = time.perf_counter


# ---------------------------------------------------------------------------------------
# small messages: ping-pong


class _SmallRun:
    __slots__ = ("msg", "size", "inflight", "remaining", "sending", "outstanding", "lat",
                 "lost", "timeouts", "done", "conns", "t_last", "timeout")

    def __init__(self, size: int, inflight: int, total: int, timeout: float) -> None:
        self.msg = (b"0123456789abcdef" * (size // 16 + 1))[:size]
        self.size = size
        self.inflight = inflight
        self.remaining = total
        self.sending = True
        self.outstanding = 0
        self.lat = array.array("d")
        self.lost = 0
        self.timeouts = 0
        self.done: asyncio.Future[None] | None = None
        self.conns: list[_SmallConn] = []
        self.t_last = 0.0
        self.timeout = timeout

    def maybe_done(self) -> None:
        if not self.sending and self.outstanding == 0 and self.done and not self.done.done():
            self.t_last = _perf()
            self.done.set_result(None)

    def stop_sending(self) -> None:
        self.sending = False
        self.maybe_done()


class _SmallConn(asyncio.Protocol):
    __slots__ = ("run", "transport", "sent_at", "rx", "closed")

    def __init__(self, run: _SmallRun) -> None:
        self.run = run
        self.transport: asyncio.Transport | None = None
        self.sent_at: collections.deque[float] = collections.deque()
        self.rx = 0
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        run = self.run
        n = len(self.sent_at)
        run.lost += n
        run.outstanding -= n
        self.sent_at.clear()
        if all(c.closed for c in run.conns):
            run.sending = False
        run.maybe_done()

    def data_received(self, data: bytes) -> None:
        run = self.run
        rx = self.rx + len(data)
        size = run.size
        if rx < size:
            self.rx = rx
            return
        now = _perf()
        sent_at = self.sent_at
        lat_append = run.lat.append
        k = 0
        while rx >= size and sent_at:
            rx -= size
            lat_append(now - sent_at.popleft())
            k += 1
        self.rx = rx
        run.outstanding -= k
        if run.sending:
            self.fill()
        elif run.outstanding == 0:
            run.maybe_done()

    def fill(self) -> None:
        run = self.run
        if self.closed or not run.sending:
            return
        k = take_batch(run, len(self.sent_at))
        if k <= 0:
            return
        now = _perf()
        self.sent_at.extend([now] * k)
        run.outstanding += k
        self.transport.write(run.msg * k if k > 1 else run.msg)  # type: ignore[union-attr]

    def expired(self, now: float) -> bool:
        return bool(self.sent_at) and now - self.sent_at[0] > self.run.timeout


async def run_small(host: str, port: int, *, connections: int = 8, size: int = 64,
                    inflight: int = 1, requests: int = 100_000, duration: float = 5.0,
                    timeout: float = 3.0, connect_timeout: float = 5.0) -> dict:
    if min(connections, size, inflight, requests) < 1 or duration <= 0:
        raise ValueError("connections, size, inflight, requests and duration must be positive")
    loop = asyncio.get_running_loop()
    run = _SmallRun(size, inflight, requests, timeout)
    run.done = loop.create_future()
    try:
        run.conns = [p for _, p in await asyncio.gather(*(
            asyncio.wait_for(loop.create_connection(lambda: _SmallConn(run), host, port),
                             connect_timeout) for _ in range(connections)))]
    except (OSError, TimeoutError) as exc:
        return {"error": f"connect to {host}:{port} failed: {exc!r}"}

    cpu0 = time.process_time()
    t_start = _perf()
    stopper = loop.call_later(duration, run.stop_sending)

    async def sweeper() -> None:
        # A byte stream cannot skip a lost reply: a connection whose oldest message is
        # older than the timeout is closed and its outstanding messages count as timeouts.
        while True:
            await asyncio.sleep(0.25)
            now = _perf()
            for c in run.conns:
                if not c.closed and c.expired(now):
                    n = len(c.sent_at)
                    run.timeouts += n
                    run.lost -= n  # connection_lost will count them as lost otherwise
                    c.transport.abort()  # type: ignore[union-attr]

    sweep = loop.create_task(sweeper())
    for c in run.conns:
        c.fill()
    try:
        await asyncio.wait_for(asyncio.shield(run.done), duration + timeout + 2.0)
    except TimeoutError:
        pass
    t_end = _perf()
    stopper.cancel()
    sweep.cancel()
    leftover = sum(len(c.sent_at) for c in run.conns)
    run.timeouts += leftover
    for c in run.conns:
        c.sent_at.clear()
        if c.transport is not None:
            c.transport.close()
    await asyncio.sleep(0)
    cpu = time.process_time() - cpu0
    lat = sorted(run.lat)
    elapsed = max(1e-9, (run.t_last if run.done.done() else t_end) - t_start)
    return {
        "tool": "tcp_load",
        "mode": "small",
        "target": f"{host}:{port}",
        "connections": connections,
        "inflight": inflight,
        "size": size,
        "sent": requests - run.remaining,
        "completed": len(lat),
        "errors": run.timeouts + run.lost,
        "timeouts": run.timeouts,
        "lost": run.lost,
        "elapsed_s": round(elapsed, 4),
        "rps": round(len(lat) / elapsed, 1),
        "p50_ms": round(percentile(lat, 50) * 1e3, 3) if lat else None,
        "p90_ms": round(percentile(lat, 90) * 1e3, 3) if lat else None,
        "p99_ms": round(percentile(lat, 99) * 1e3, 3) if lat else None,
        "p999_ms": round(percentile(lat, 99.9) * 1e3, 3) if lat else None,
        "max_ms": round(lat[-1] * 1e3, 3) if lat else None,
        "load_cpu_s": round(cpu, 3),
    }


# ---------------------------------------------------------------------------------------
# bulk: stream through, read back


_CHUNK = 64 * 1024


class _BulkConn(asyncio.Protocol):
    __slots__ = ("transport", "target", "sent", "received", "paused", "stopped", "done",
                 "chunk", "closed", "t_done")

    def __init__(self, target: int, done: asyncio.Future) -> None:
        self.transport: asyncio.Transport | None = None
        self.target = target
        self.sent = 0
        self.received = 0
        self.paused = False
        self.stopped = False  # time is up: send no more
        self.done = done
        self.chunk = b"\xa5" * _CHUNK
        self.closed = False
        self.t_done = 0.0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.transport.set_write_buffer_limits(high=256 * 1024)  # type: ignore[union-attr]

    def start(self) -> None:
        self.pump()

    def pump(self) -> None:
        t = self.transport
        chunk = self.chunk
        while not self.paused and not self.stopped and self.sent < self.target:
            n = self.target - self.sent
            t.write(chunk if n >= _CHUNK else chunk[:n])  # type: ignore[union-attr]
            self.sent += min(n, _CHUNK)

    def pause_writing(self) -> None:
        self.paused = True

    def resume_writing(self) -> None:
        self.paused = False
        self.pump()

    def data_received(self, data: bytes) -> None:
        self.received += len(data)
        if self.received >= self.sent and (self.stopped or self.sent >= self.target):
            self._finish()

    def stop(self) -> None:
        self.stopped = True
        if self.received >= self.sent:
            self._finish()

    def _finish(self) -> None:
        if not self.done.done():
            self.t_done = _perf()
            self.done.set_result(None)

    def eof_received(self) -> bool:
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._finish()


async def run_bulk(host: str, port: int, *, connections: int = 1, mb: float = 1000.0,
                   duration: float = 5.0, timeout: float = 5.0,
                   connect_timeout: float = 5.0) -> dict:
    if connections < 1 or mb <= 0 or duration <= 0:
        raise ValueError("connections, mb and duration must be positive")
    loop = asyncio.get_running_loop()
    total = int(mb * 1_000_000)
    per_conn = max(1, total // connections)
    conns: list[_BulkConn] = []
    try:
        for _ in range(connections):
            fut = loop.create_future()
            _, proto = await asyncio.wait_for(
                loop.create_connection(lambda fut=fut: _BulkConn(per_conn, fut), host, port),
                connect_timeout)
            conns.append(proto)  # type: ignore[arg-type]
    except (OSError, TimeoutError) as exc:
        for c in conns:
            c.transport.close()  # type: ignore[union-attr]
        return {"error": f"connect to {host}:{port} failed: {exc!r}"}

    cpu0 = time.process_time()
    t_start = _perf()

    def stop_all() -> None:
        for c in conns:
            c.stop()

    stopper = loop.call_later(duration, stop_all)
    for c in conns:
        c.start()
    try:
        await asyncio.wait_for(asyncio.gather(*(c.done for c in conns)), duration + timeout)
    except TimeoutError:
        pass
    t_end = _perf()
    stopper.cancel()
    for c in conns:
        c.transport.close()  # type: ignore[union-attr]
    await asyncio.sleep(0)
    cpu = time.process_time() - cpu0
    sent = sum(c.sent for c in conns)
    received = sum(c.received for c in conns)
    settled = all(c.done.done() for c in conns)
    t_last = max((c.t_done for c in conns if c.t_done), default=t_end)
    elapsed = max(1e-9, (t_last if settled else t_end) - t_start)
    return {
        "tool": "tcp_load",
        "mode": "bulk",
        "target": f"{host}:{port}",
        "connections": connections,
        "sent_bytes": sent,
        "received_bytes": received,
        "missing_bytes": sent - received,
        "errors": 0 if received >= sent else 1,
        "elapsed_s": round(elapsed, 4),
        "mb_per_s": round(received / 1e6 / elapsed, 1),
        "load_cpu_s": round(cpu, 3),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("mode", nargs="?", choices=("small", "bulk"), default="small")
    p.add_argument("-c", "--connections", type=int, help="default: 8 small, 1 bulk")
    p.add_argument("-d", "--duration", type=float, default=5.0, help="max seconds of sending")
    p.add_argument("--timeout", type=float, default=None,
                   help="small: per-message timeout (3 s); bulk: drain wait (5 s)")
    g = p.add_argument_group("small mode")
    g.add_argument("-s", "--size", type=int, default=64, help="message bytes")
    g.add_argument("-m", "--inflight", type=int, default=1, help="messages in flight per conn")
    g.add_argument("-n", "--requests", type=int, default=100_000, help="total messages (bound)")
    g = p.add_argument_group("bulk mode")
    g.add_argument("--mb", type=float, default=1000.0, help="total MB (10**6 bytes) to send")
    p.add_argument("--pretty", action="store_true")
    a = p.parse_args(argv)
    host = require_loopback(a.host)
    loop_name = install_uvloop()
    if a.mode == "bulk":
        res = asyncio.run(run_bulk(host, a.port, connections=a.connections or 1, mb=a.mb,
                                   duration=a.duration,
                                   timeout=5.0 if a.timeout is None else a.timeout))
    else:
        res = asyncio.run(run_small(host, a.port, connections=a.connections or 8, size=a.size,
                                    inflight=a.inflight, requests=a.requests,
                                    duration=a.duration,
                                    timeout=3.0 if a.timeout is None else a.timeout))
    res["loop"] = loop_name
    print(json.dumps(res, indent=2 if a.pretty else None))
    return 1 if "error" in res else 0


if __name__ == "__main__":
    sys.exit(main())
