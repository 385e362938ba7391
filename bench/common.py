"""Small helpers shared by the benchmark tools (no third-party imports except uvloop)."""

from __future__ import annotations

import asyncio
import ipaddress
import math
import socket
import sys
from collections.abc import Sequence
from typing import Any


def require_loopback(host: str) -> str:
    """Refuse anything but a loopback address: the benchmarks never leave the machine."""
    if host == "localhost":
        return "127.0.0.1"
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        raise SystemExit(f"error: {host!r} is not an IP address (loopback only)") from None
    if not ip.is_loopback:
        raise SystemExit(f"error: {host} is not a loopback address; benchmarks stay on loopback")
    return host


def install_uvloop(required: bool = True) -> str:
    """Use uvloop's event loop policy; return the loop name actually used."""
    try:
        import uvloop
    except ImportError:
        if required:
            raise SystemExit("error: uvloop is not installed (pip install uvloop)") from None
        return "asyncio"
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    return f"uvloop {getattr(uvloop, '__version__', '?')}"


def take_batch(run: Any, in_flight: int) -> int:
    """How many requests one connection of a bounded load sends now: up to ``run.inflight``
    outstanding, within ``run.remaining`` (the run's count). Takes them from
    ``run.remaining``, clears ``run.sending`` when that is used up, and calls
    ``run.maybe_done()`` when there was nothing left to send. 0: send nothing."""
    k = run.inflight - in_flight
    if k <= 0:
        return 0
    if k >= run.remaining:
        k = run.remaining
        run.sending = False
    run.remaining -= k
    if k <= 0:
        run.maybe_done()
        return 0
    return int(k)


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile of an ascending sequence (q in 0..100); NaN when empty."""
    n = len(sorted_values)
    if n == 0:
        return math.nan
    rank = max(1, math.ceil(q / 100.0 * n))
    return sorted_values[min(rank, n) - 1]


def free_port(host: str = "127.0.0.1") -> int:
    """An unused TCP port on ``host`` (bound then released; tiny race accepted)."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def ready_line(name: str, host: str, port: int) -> None:
    """Announce readiness on stdout (one line, flushed) for orchestrators that watch it."""
    print(f"READY {name} {host}:{port}", flush=True)
    sys.stdout.flush()
