"""Cache load for the benchmarks: redis-benchmark and memcache_load.py command lines, their
results, and the small synchronous helpers the orchestrator uses on the backend directly
(filling the key space, reading the server's command counters). Nothing here starts a
process.

redis-benchmark (Debian ``redis-tools``, 7.0) runs one test per invocation, so each
(test, pipeline) pair gets its own measured window and proxy CPU figure:

- ``set`` / ``get``: ``-t set`` / ``-t get`` with ``-r KEYSPACE`` (keys ``key:%012d``,
  random) and ``-d SIZE`` byte values;
- ``mget``: redis-benchmark 7.0 has no ``mget`` test (only ``mset``), so it runs the
  command ``MGET key:__rand_int__ ...`` with ``--mget-keys`` random keys (default 10, as
  its ``mset`` test), given on its command line.

It is bounded by a request count (``-n``) only; the caller sizes ``-n`` from a measured
rate and adds a subprocess timeout. It reports requests/s and latency percentiles (CSV);
it stops with exit code 1 at the first error reply ("Error from server: ..." on stderr),
so a run that completes had no error reply, and one that did not is reported as failed
with that message. ``-P N`` sends N commands per write and waits for all N replies.

memcache_load.py (this directory) is the memcached text-protocol load: N connections x M
requests in flight, bounded by count and duration itself; it prints one JSON line.
"""

from __future__ import annotations

import csv
import io
import math
import os
import socket
import sys
from collections.abc import Callable
from typing import Any

from http_load import LoadOutputError

HERE = os.path.dirname(os.path.abspath(__file__))
HOST = "127.0.0.1"

Result = dict[str, Any]

REDIS_TESTS = ("get", "set", "mget")
MEMCACHE_TESTS = ("get", "set")
KEY_FORMAT = "key:%012d"  # what redis-benchmark's key:__rand_int__ expands to


# -- redis-benchmark -------------------------------------------------------------------------


def redis_benchmark_command(exe: str, port: int, *, test: str, clients: int, pipeline: int,
                            requests: int, keyspace: int, value_size: int,
                            mget_keys: int) -> list[str]:
    """One redis-benchmark test (``get``, ``set`` or ``mget``), CSV output."""
    cmd = [exe, "-h", HOST, "-p", str(port), "-c", str(clients), "-n", str(requests),
           "-P", str(pipeline), "-r", str(keyspace), "-d", str(value_size), "--csv"]
    if test in ("get", "set"):
        return [*cmd, "-t", test]
    if test == "mget":
        return [*cmd, "MGET", *["key:__rand_int__"] * mget_keys]
    raise ValueError(f"unknown redis test {test!r}")


def parse_redis_benchmark(stdout: str, requests: int) -> Result:
    """Read redis-benchmark's ``--csv`` line; ``requests`` is the ``-n`` it was given.

    Raises ``LoadOutputError`` when there is no result line (redis-benchmark stopped at an
    error reply or could not connect; its stderr says why).
    """
    rows = [r for r in csv.reader(io.StringIO(stdout)) if r and r[0] != "test"]
    if not rows:
        raise LoadOutputError("redis-benchmark printed no result")
    r = rows[-1]
    try:
        rps = float(r[1])
        avg, p50, p99, mx = float(r[2]), float(r[4]), float(r[6]), float(r[7])
    except (IndexError, ValueError):
        raise LoadOutputError(f"redis-benchmark result not understood: {r!r}") from None
    return {
        "tool": "redis-benchmark",
        "test": r[0],
        "requested": requests,
        "completed": requests,  # it exits at the first error reply, so all were answered
        "errors": 0,
        "rps": round(rps, 1),
        "avg_ms": avg, "p50_ms": p50, "p99_ms": p99, "max_ms": mx,
        "elapsed_s": round(requests / rps, 3) if rps > 0 else math.nan,
    }


# -- memcache_load.py ------------------------------------------------------------------------


def memcache_load_command(python: str, port: int, *, test: str, connections: int,
                          inflight: int, requests: int, duration: float, timeout: float,
                          keyspace: int, value_size: int) -> list[str]:
    return [python, os.path.join(HERE, "memcache_load.py"), "--port", str(port),
            "--op", test, "-c", str(connections), "-m", str(inflight), "-n", str(requests),
            "-d", str(duration), "--timeout", str(timeout), "--keyspace", str(keyspace),
            "--value-size", str(value_size)]


def error_detail(res: Result) -> str:
    """One line naming every kind of error of a memcache_load result ("" when none)."""
    if not res.get("errors"):
        return ""
    kinds = [f"{v} x {k}" for k, v in res.get("error_replies", {}).items()]
    kinds += [f"{res[k]} {k}" for k in ("timeouts", "lost", "protocol_errors") if res.get(k)]
    return "memcache_load: " + ", ".join(kinds)


# -- talking to the backend directly ---------------------------------------------------------


def _conn(port: int, timeout: float) -> socket.socket:
    return socket.create_connection((HOST, port), timeout=timeout)


def _read_until(s: socket.socket, buf: bytearray, done: Callable[[bytearray], bool]) -> None:
    while not done(buf):
        chunk = s.recv(1 << 16)
        if not chunk:
            raise ConnectionError("the server closed the connection")
        buf += chunk


def fill(kind: str, port: int, keyspace: int, value_size: int, timeout: float = 30.0) -> None:
    """Store every key ``key:%012d`` (0 .. keyspace-1) with a ``value_size``-byte value, so
    GETs in the benchmark hit. Pipelined, 1000 commands per write."""
    value = b"x" * value_size
    with _conn(port, timeout) as s:
        for start in range(0, keyspace, 1000):
            keys = [(KEY_FORMAT % i).encode() for i in range(start, min(keyspace, start + 1000))]
            if kind == "redis":
                out = b"".join(b"*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n"
                               % (len(k), k, len(value), value) for k in keys)
                want = b"+OK\r\n" * len(keys)
            else:
                out = b"".join(b"set %s 0 0 %d\r\n%s\r\n" % (k, len(value), value)
                               for k in keys)
                want = b"STORED\r\n" * len(keys)
            s.sendall(out)
            buf = bytearray()
            size = len(want)
            _read_until(s, buf, lambda b: len(b) >= size)  # noqa: B023 (used right here)
            if bytes(buf) != want:
                raise ConnectionError(f"fill: unexpected reply {bytes(buf[:80])!r}")


def server_commands(kind: str, port: int, timeout: float = 5.0) -> int:
    """Commands the backend has processed so far: redis ``INFO stats``
    ``total_commands_processed`` (the INFO itself counted once it finished); memcached
    ``stats`` ``cmd_get + cmd_set`` (keys fetched + stores)."""
    with _conn(port, timeout) as s:
        buf = bytearray()
        if kind == "redis":
            s.sendall(b"*2\r\n$4\r\nINFO\r\n$5\r\nstats\r\n")

            def whole(b: bytearray) -> bool:
                head = b.find(b"\r\n")
                return head > 0 and len(b) >= head + 2 + int(b[1:head]) + 2

            _read_until(s, buf, whole)
            fields = dict(ln.split(":", 1) for ln in buf.decode().splitlines()
                          if ":" in ln)
            return int(fields["total_commands_processed"])
        s.sendall(b"stats\r\n")
        _read_until(s, buf, lambda b: b.endswith(b"END\r\n"))
        stats = {p[1]: p[2] for p in (ln.split() for ln in buf.decode().splitlines())
                 if len(p) == 3 and p[0] == "STAT"}
        return int(stats["cmd_get"]) + int(stats["cmd_set"])


if __name__ == "__main__":  # a quick look at a running backend: cache_load.py redis 6379
    print(server_commands(sys.argv[1], int(sys.argv[2])))
