"""HTTP load for the benchmarks: wrk (HTTP/1.1) and h2load (HTTP/2) commands and results.

Both tools are C programs from Debian (``wrk``, ``nghttp2-client``); this module only
builds their command lines and turns their output into the result shape the orchestrator
uses for every load tool (``completed``, ``errors``, ``rps``, ``p50_ms``, ``p99_ms``,
``elapsed_s``). Nothing here starts a process.

wrk: ``-t 1`` (one thread: the load core is one CPU), keep-alive connections, a plain GET,
``--latency``; the totals come from ``wrk_json.lua`` (one JSON line printed by its ``done``
hook, so no Lua runs per request). wrk has no request-count option: its bounds are ``-d``
and the caller's subprocess timeout. Error accounting follows wrk: a response with a status
>= 400 is a ``status`` error, connect/read/write failures and requests older than
``--timeout`` are socket errors.

h2load: h2c with prior knowledge (an ``http://`` URI), ``-c`` clients x ``-m`` streams,
bounded by ``-n`` requests; the caller adds a subprocess timeout, and picks ``-n`` from a
rate it measured (see ``requests_for``) so a run lasts about the wanted seconds. Latency
percentiles come from ``--log-file`` (one line per request: start, status, microseconds to
the end of the response); h2load's own summary only gives min/max/mean/sd.
"""

from __future__ import annotations

import json
import math
import os
import re
from typing import Any

from common import percentile

HERE = os.path.dirname(os.path.abspath(__file__))
WRK_SCRIPT = os.path.join(HERE, "wrk_json.lua")

WRK_HINT = "wrk is not installed: apt-get install -y wrk  (Debian/Ubuntu)"
H2LOAD_HINT = "h2load is not installed: apt-get install -y nghttp2-client  (Debian/Ubuntu)"

# h2load: never fewer requests than this in a calibrated run (a few per stream)
H2_MIN_REQUESTS = 1000

Result = dict[str, Any]


class LoadOutputError(Exception):
    """The tool's output could not be read (it failed before printing its summary)."""


def _whole_seconds(seconds: float) -> str:
    # wrk reads durations as integers with a unit ("5s"); round up so the bound is kept
    return f"{max(1, math.ceil(seconds))}s"


# -- wrk -------------------------------------------------------------------------------------


def wrk_command(exe: str, port: int, *, connections: int, seconds: float,
                timeout: float, host: str = "127.0.0.1", path: str = "/") -> list[str]:
    """``wrk`` with one thread and ``connections`` keep-alive connections for ``seconds``."""
    return [exe, "-t", "1", "-c", str(connections), "-d", _whole_seconds(seconds),
            "--timeout", _whole_seconds(timeout), "--latency", "-s", WRK_SCRIPT,
            f"http://{host}:{port}{path}"]


def parse_wrk(stdout: str) -> Result:
    """Read the JSON line of ``wrk_json.lua`` (the last line of wrk's stdout).

    Raises ``LoadOutputError`` when it is missing (wrk could not connect at all, for one).
    """
    lines = stdout.strip().splitlines()
    try:
        raw = json.loads(lines[-1])
    except (IndexError, json.JSONDecodeError):
        raise LoadOutputError("wrk printed no summary") from None
    if not isinstance(raw, dict) or raw.get("tool") != "wrk":
        raise LoadOutputError("wrk printed no summary")
    elapsed = raw["duration_us"] / 1e6
    socket_errors = raw["connect"] + raw["read"] + raw["write"] + raw["timeout"]
    completed = raw["requests"] - raw["status"]
    return {
        "tool": "wrk",
        "completed": completed,
        "errors": raw["status"] + socket_errors,
        "non_2xx": raw["status"],
        "socket_errors": socket_errors,
        "socket_error_detail": {k: raw[k] for k in ("connect", "read", "write", "timeout")},
        "rps": round(completed / elapsed, 1) if elapsed > 0 else 0.0,
        "p50_ms": raw["p50_us"] / 1000, "p90_ms": raw["p90_us"] / 1000,
        "p99_ms": raw["p99_us"] / 1000, "max_ms": raw["max_us"] / 1000,
        "elapsed_s": round(elapsed, 3),
        "bytes": raw["bytes"],
    }


# -- h2load ----------------------------------------------------------------------------------


def h2load_command(exe: str, port: int, *, clients: int, streams: int, requests: int,
                   log_file: str, host: str = "127.0.0.1", path: str = "/") -> list[str]:
    """``h2load`` over h2c (prior knowledge), one thread, ``requests`` in total."""
    return [exe, "-t", "1", "-c", str(clients), "-m", str(streams), "-n", str(requests),
            f"--log-file={log_file}", f"http://{host}:{port}{path}"]


def requests_for(rate: float, seconds: float, cap: int) -> int:
    """How many requests keep h2load busy for about ``seconds`` at ``rate`` req/s."""
    want = math.ceil(max(rate, 0.0) * seconds)
    return max(1, min(cap, max(H2_MIN_REQUESTS, want)))


_UNITS = {"us": 1e-6, "ms": 1e-3, "s": 1.0}
_FINISHED = re.compile(r"^finished in ([0-9.]+)(us|ms|s),", re.M)
_REQUESTS = re.compile(
    r"^requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, "
    r"(\d+) errored, (\d+) timeout", re.M)
_STATUS = re.compile(r"^status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx", re.M)


def _latencies_ms(log_file: str) -> list[float]:
    """Sorted latencies (ms) of the 2xx responses in an h2load ``--log-file``."""
    out: list[float] = []
    try:
        with open(log_file) as f:
            for line in f:
                cols = line.split("\t")
                if len(cols) >= 3 and cols[1].startswith("2"):
                    out.append(int(cols[2]) / 1000)
    except FileNotFoundError:
        return []
    out.sort()
    return out


def parse_h2load(stdout: str, log_file: str) -> Result:
    """Read h2load's summary and its per-request log.

    ``completed`` counts 2xx responses; ``errors`` = requested - completed, split into
    ``non_2xx`` (other statuses) and ``socket_errors`` (streams reset or timed out, and
    requests never answered because a connection failed). Raises ``LoadOutputError`` when
    the summary is missing.
    """
    fin, req, st = _FINISHED.search(stdout), _REQUESTS.search(stdout), _STATUS.search(stdout)
    if not (fin and req and st):
        raise LoadOutputError("h2load printed no summary")
    elapsed = float(fin.group(1)) * _UNITS[fin.group(2)]
    total, started, done, succeeded, failed, errored, timeout = map(int, req.groups())
    s2, s3, s4, s5 = map(int, st.groups())
    non_2xx = s3 + s4 + s5
    errors = total - s2
    lat = _latencies_ms(log_file)
    return {
        "tool": "h2load",
        "requested": total,
        "completed": s2,
        "errors": errors,
        "non_2xx": non_2xx,
        "socket_errors": errors - non_2xx,
        "h2load_counts": {"started": started, "done": done, "succeeded": succeeded,
                          "failed": failed, "errored": errored, "timeout": timeout,
                          "3xx": s3, "4xx": s4, "5xx": s5},
        "rps": round(s2 / elapsed, 1) if elapsed > 0 else 0.0,
        "p50_ms": percentile(lat, 50), "p90_ms": percentile(lat, 90),
        "p99_ms": percentile(lat, 99), "max_ms": lat[-1] if lat else math.nan,
        "elapsed_s": round(elapsed, 3),
    }


def error_detail(res: Result) -> str:
    """One line naming every kind of error in a parsed result ("" when there are none)."""
    if not res.get("errors"):
        return ""
    if res.get("tool") == "wrk":
        sock = ", ".join(f"{k} {v}" for k, v in res["socket_error_detail"].items() if v)
        return (f"wrk: {res['non_2xx']} responses with status >= 400"
                + (f"; socket errors: {sock}" if sock else ""))
    c = res["h2load_counts"]
    return (f"h2load: {res['requested']} requested, {res['completed']} answered 2xx; "
            f"3xx {c['3xx']}, 4xx {c['4xx']}, 5xx {c['5xx']}; "
            f"streams errored {c['errored']}, timed out {c['timeout']}; "
            f"started {c['started']}, done {c['done']}")
