#!/usr/bin/env python3
"""Benchmark orchestrator: direct vs mosn-py vs peer proxies, printed as markdown tables.

Scenarios
  bolt       Bolt v1 load (bolt_load.py) against bolt_backend.py. Paths: direct,
             mosn-py as a Bolt L7 listener, mosn-py as a plain tcp listener, haproxy (mode tcp);
             opt-in mosn-py-bolt2grpc: a Bolt listener routed to a grpc cluster (Bolt -> gRPC
             translation) backed by grpc_backend.py (grpcio) on the load CPU.
  tcp-small  64-byte ping-pong (tcp_load.py small) against tcp_echo.py.
             Paths: direct, mosn-py tcp listener, haproxy.
  tcp-bulk   stream through the echo and read it back (tcp_load.py bulk): MB/s.
  http1      wrk, HTTP/1.1 keep-alive GETs, against an nginx backend answering 200.
             Paths: direct, mosn-py http1 listener, haproxy (mode http), nginx (proxy_pass).
  h2         h2load, h2c with prior knowledge, many streams per connection, against the
             nginx backend over h2c. Paths: direct, mosn-py http2 listener, haproxy
             (mode http, proto h2), nghttpx.
  redis      redis-benchmark GET, SET, MGET at -P 1 and -P 16 against one redis-server.
             Paths: direct, mosn-py redis listener, twemproxy (nutcracker). Not in the
             default set: --scenarios redis
  memcache   memcache_load.py get and set, 1 and 16 pipelined, against one memcached.
             Paths: direct, mosn-py memcache listener, twemproxy. --scenarios memcache
             mosn-py-mc2redis (only when named): the memcache listener routed to a redis
             cluster (memcached -> Redis translation), one redis-server on the load CPU.

Pinning: the proxy under test runs on CPU --proxy-cpu (0), the load generator, the backend
and this orchestrator on CPU --load-cpu (1), all with ``taskset -c``.

Per path the orchestrator starts the proxy, waits for its port, runs a short warm-up load,
then samples the proxy's CPU seconds (/proc/PID/stat, whole process tree), runs the
measured load, samples again, stops the proxy. Ratios are computed within the same run.

  .venv/bin/python bench/run.py                       # all scenarios, ~5 s per path
  .venv/bin/python bench/run.py --scenarios bolt --paths direct,haproxy
  .venv/bin/python bench/run.py --scenarios http1,h2 --mosn-py .venv/bin/mosn-py
  .venv/bin/python bench/run.py --mosn-py .venv/bin/mosn-py --json-out r.json
  .venv/bin/python bench/run.py --scenarios redis,memcache --mosn-py .venv/bin/mosn-py
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import platform
import resource
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, HERE)

import cache_load  # noqa: E402
import cache_peers  # noqa: E402
import cache_report  # noqa: E402
import http_load  # noqa: E402
import http_peers  # noqa: E402
import proc  # noqa: E402
from common import free_port  # noqa: E402
from report import HTTP_SCENARIOS, add_ratios, median_rows, report  # noqa: E402

HOST = "127.0.0.1"
SCENARIOS = ("bolt", "tcp-small", "tcp-bulk", "http1", "h2", "redis", "memcache")
DEFAULT_SCENARIOS = "bolt,tcp-small,tcp-bulk,http1,h2"
CACHE_SCENARIOS = cache_report.CACHE_SCENARIOS
PATHS = ("direct", "mosn-py", "mosn-py-bolt", "mosn-py-tcp", "mosn-py-bolt2grpc", "haproxy",
         "nginx", "nghttpx", "twemproxy", "mosn-py-mc2redis")
# the bolt path whose route sends to a grpc cluster (Bolt -> gRPC translation)
BOLT2GRPC = "mosn-py (bolt2grpc)"
# the memcache path whose route sends to a redis cluster (memcached -> Redis translation)
MC2REDIS = "mosn-py (mc2redis)"
GRPC_SERVICE = "com.alipay.rpc.common.service.facade.pb.SampleServicePb"
DEFAULT_PATHS = "direct,mosn-py,haproxy,nginx,nghttpx,twemproxy"
HAPROXY_HINT = "haproxy is not installed: apt-get install -y haproxy  (Debian/Ubuntu)"
# h2: the unmeasured probe that tells how many requests (-n) fill the warm-up and the run
H2_PROBE_REQUESTS = 2000

Row = dict[str, Any]
Popen = subprocess.Popen[bytes]


class PathFailed(Exception):
    """One path of one scenario could not be measured; the run goes on with the others."""


@dataclass
class Ctx:
    args: argparse.Namespace
    tmp: str
    procs: list[Popen] = field(default_factory=list)
    log_paths: dict[int, str] = field(default_factory=dict)

    @property
    def python(self) -> str:
        return str(self.args.python)

    def log(self, msg: str) -> None:
        if not self.args.quiet:
            print(f"[bench] {msg}", file=sys.stderr, flush=True)


# -- processes -------------------------------------------------------------------------------


def start_service(ctx: Ctx, name: str, cmd: list[str], cpus: int | None,
                  env: dict[str, str] | None = None, cwd: str | None = None) -> Popen:
    log_path = os.path.join(ctx.tmp, f"{name}.log")
    with open(log_path, "ab") as logf:  # the child keeps its own copy of the descriptor
        try:
            p = proc.start_pinned(cmd, cpus, ctx.args.nice, stdout=logf,
                                  stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
                                  cwd=cwd)
        except FileNotFoundError as exc:
            raise PathFailed(f"{name}: cannot execute {cmd[0]!r}: {exc}") from None
    ctx.procs.append(p)
    ctx.log_paths[p.pid] = log_path
    return p


def stop(ctx: Ctx, p: Popen | None) -> None:
    if p is None:
        return
    proc.stop_process(p)
    if p in ctx.procs:
        ctx.procs.remove(p)


def stop_all(ctx: Ctx) -> None:
    for p in reversed(list(ctx.procs)):
        try:
            proc.stop_process(p)
        except Exception as exc:  # never leave the others running
            print(f"[bench] could not stop pid {p.pid}: {exc}", file=sys.stderr)
    ctx.procs.clear()


def log_tail(ctx: Ctx, p: Popen, lines: int = 15) -> str:
    path = ctx.log_paths.get(p.pid)
    if not path or not os.path.exists(path):
        return "(no output)"
    with open(path, "rb") as f:
        text = f.read().decode("utf-8", "replace").rstrip()
    return "\n".join("    " + ln for ln in text.splitlines()[-lines:]) or "    (no output)"


def _cmdline(p: Popen) -> str:
    args = p.args
    return shlex.join(args) if isinstance(args, list) else str(args)


def wait_port(ctx: Ctx, p: Popen, name: str, port: int, timeout: float) -> None:
    """Wait until ``port`` accepts a connection; fail early if the process exits."""
    deadline = time.monotonic() + timeout
    while True:
        rc = p.poll()
        if rc is not None:
            raise PathFailed(f"{name} exited with code {rc} before listening on {HOST}:{port}."
                             f"\n  command: {_cmdline(p)}\n  output:\n{log_tail(ctx, p)}")
        try:
            with socket.create_connection((HOST, port), timeout=0.2):
                return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise PathFailed(f"{name} did not listen on {HOST}:{port} within {timeout:.0f} s."
                             f"\n  command: {_cmdline(p)}\n  output:\n{log_tail(ctx, p)}")
        time.sleep(0.05)


Parser = Callable[[str], Row]


def run_tool(ctx: Ctx, cmd: list[str], bound: float, parse: Parser | None = None) -> Row:
    """Run a load tool pinned to the load CPU and return its result.

    Without ``parse`` the tool's last stdout line is its JSON result (our Python tools);
    with it, ``parse(stdout)`` reads the output of a foreign tool (wrk, h2load). A result
    without ``load_cpu_s`` gets the tool's CPU seconds from ``getrusage(RUSAGE_CHILDREN)``.
    """
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    try:
        p = proc.start_pinned(cmd, ctx.args.load_cpu, ctx.args.nice, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
    except FileNotFoundError as exc:
        raise PathFailed(f"cannot execute the load tool {cmd[0]!r}: {exc}") from None
    ctx.procs.append(p)
    try:
        out, err = p.communicate(timeout=bound)
    except subprocess.TimeoutExpired:
        proc.stop_process(p)
        raise PathFailed(f"load tool exceeded {bound:.0f} s: {shlex.join(cmd)}") from None
    except BaseException:  # Ctrl-C / SIGTERM: do not leave the load running
        proc.stop_process(p, grace=1.0)
        raise
    finally:
        if p in ctx.procs:
            ctx.procs.remove(p)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    stdout = out.decode("utf-8", "replace")
    res: Row
    if parse is not None:
        try:
            res = parse(stdout)
        except http_load.LoadOutputError as exc:
            raise PathFailed(f"{exc} (exit {p.returncode}): "
                             f"{(err.decode('utf-8', 'replace') or stdout).strip()[-800:]}"
                             ) from None
    else:
        lines = stdout.strip().splitlines()
        try:
            res = json.loads(lines[-1])
        except (IndexError, json.JSONDecodeError):
            raise PathFailed(f"load tool gave no JSON (exit {p.returncode}): "
                             f"{err.decode().strip()[-800:]}") from None
        if "error" in res:
            raise PathFailed(f"load tool: {res['error']}")
    res.setdefault("load_cpu_s", round(after.ru_utime + after.ru_stime
                                       - before.ru_utime - before.ru_stime, 3))
    return res


def load_cmd(ctx: Ctx, scenario: str, port: int, duration: float,
             requests: int | None = None) -> tuple[list[str], float, Parser | None]:
    """The load tool's command line, its time bound and its output parser.

    ``requests`` is the count bound; by default ``--requests``. wrk has no count option, so
    http1 is bounded by ``duration`` (wrk's ``-d``) and the subprocess timeout.
    """
    a = ctx.args
    n = a.requests if requests is None else requests
    bound = duration + a.timeout + 30.0
    parse: Parser | None = None
    if scenario == "bolt":
        cmd = [ctx.python, os.path.join(HERE, "bolt_load.py"), "--port", str(port),
               "-c", str(a.connections), "-m", str(a.inflight), "-n", str(n),
               "-d", str(duration), "--timeout", str(a.timeout)]
    elif scenario == "tcp-small":
        cmd = [ctx.python, os.path.join(HERE, "tcp_load.py"), "--port", str(port), "small",
               "-c", str(a.connections), "-s", str(a.msg_size), "-m", "1",
               "-n", str(n), "-d", str(duration), "--timeout", str(a.timeout)]
    elif scenario == "tcp-bulk":
        cmd = [ctx.python, os.path.join(HERE, "tcp_load.py"), "--port", str(port), "bulk",
               "-c", str(a.bulk_connections), "--mb", str(a.bulk_mb), "-d", str(duration),
               "--timeout", str(a.timeout)]
    elif scenario == "http1":
        exe = shutil.which("wrk")
        if not exe:
            raise PathFailed(http_load.WRK_HINT)
        cmd = http_load.wrk_command(exe, port, connections=a.http_connections,
                                    seconds=duration, timeout=a.timeout)
        bound = math.ceil(duration) + math.ceil(a.timeout) + 30.0
        parse = http_load.parse_wrk
    else:
        exe = shutil.which("h2load")
        if not exe:
            raise PathFailed(http_load.H2LOAD_HINT)
        log_file = os.path.join(ctx.tmp, "h2load-requests.log")
        cmd = http_load.h2load_command(exe, port, clients=a.h2_clients, streams=a.h2_streams,
                                       requests=n, log_file=log_file)
        # -n was sized for ``duration`` from a measured rate; allow for a slower spell
        bound = 3 * duration + a.timeout + 30.0

        def parse_h2(stdout: str) -> Row:
            try:
                return http_load.parse_h2load(stdout, log_file)
            finally:
                if os.path.exists(log_file):
                    os.unlink(log_file)

        parse = parse_h2
    return cmd, bound, parse


# -- proxies ---------------------------------------------------------------------------------


def mosn_config(ctx: Ctx, name: str, *, bolt_port: int | None, bolt_backend: int | None,
                tcp_port: int | None, tcp_backend: int | None) -> str:
    """Write a mosn-py YAML config (schema of DESIGN.md section 4) and return its path."""
    lines = ["log: {level: warning, format: text}", "listeners:"]
    if bolt_port is not None:
        lines.append(f"  - {{name: bolt_in, address: {HOST}:{bolt_port}, protocol: bolt, "
                     f"route: r}}")
    if tcp_port is not None:
        lines.append(f"  - {{name: tcp_in, address: {HOST}:{tcp_port}, protocol: tcp, "
                     f"cluster: tcp_backend}}")
    if bolt_port is not None:
        lines += ["routes:", "  - name: r",
                  "    rules: [{match: {service: \".*\"}, cluster: bolt_backend}]"]
    lines.append("clusters:")
    if bolt_backend is not None:
        lines.append(f"  - {{name: bolt_backend, protocol: bolt, "
                     f"endpoints: [\"{HOST}:{bolt_backend}\"]}}")
    if tcp_backend is not None:
        lines.append(f"  - {{name: tcp_backend, protocol: tcp, "
                     f"endpoints: [\"{HOST}:{tcp_backend}\"]}}")
    path = os.path.join(ctx.tmp, f"{name}.yaml")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    return path


def mosn_bolt2grpc_config(ctx: Ctx, name: str, bolt_port: int, grpc_backend: int) -> str:
    """A mosn-py config: a bolt listener whose route translates to a grpc cluster
    (examples/bolt-to-grpc.yaml, the interface mapped to the gRPC service name)."""
    lines = ["log: {level: warning, format: text}", "listeners:",
             f"  - {{name: bolt_in, address: {HOST}:{bolt_port}, protocol: bolt, route: r}}",
             "routes:", "  - name: r", "    rules:",
             "      - match: {service: \".*\"}", "        cluster: grpc_backend",
             "        translate:", "          services:",
             f"            \"{GRPC_SERVICE}:1.0\": {GRPC_SERVICE}",
             "clusters:",
             f"  - {{name: grpc_backend, protocol: grpc, endpoints: [\"{HOST}:{grpc_backend}\"]}}"]
    path = os.path.join(ctx.tmp, f"{name}.yaml")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    return path


def start_grpc_backend(ctx: Ctx, name: str) -> tuple[int, Popen]:
    """grpc_backend.py (grpcio, 16 threads) on the load CPU; its port and process."""
    port = free_port()
    cmd = [ctx.python, os.path.join(HERE, "grpc_backend.py"), "--port", str(port)]
    p = start_service(ctx, name, cmd, ctx.args.load_cpu)
    try:
        wait_port(ctx, p, "grpc_backend", port, 15.0)
    except PathFailed:
        stop(ctx, p)
        raise
    return port, p


def mosn_command(ctx: Ctx, config: str) -> tuple[list[str], dict[str, str]]:
    a = ctx.args
    base = [a.mosn_py] if a.mosn_py else [ctx.python, "-m", "mosn_py.cli"]
    env = dict(os.environ)
    # the repo checkout wins over whatever is installed, so the code under test is this tree
    env["PYTHONPATH"] = REPO + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return [*base, "run", "-c", config, *shlex.split(a.mosn_py_args or "")], env


def start_mosn(ctx: Ctx, name: str, config: str, listen_port: int) -> Popen:
    cmd, env = mosn_command(ctx, config)
    p = start_service(ctx, name, cmd, ctx.args.proxy_cpu, env=env, cwd=REPO)
    try:
        wait_port(ctx, p, "mosn-py", listen_port, ctx.args.start_timeout)
    except PathFailed as exc:
        stop(ctx, p)
        raise PathFailed(f"the mosn-py proxy did not start, so this path was not measured.\n"
                         f"  {exc}\n  config: {config}") from None
    return p


def haproxy_config(ctx: Ctx, name: str, listen_port: int, backend_port: int) -> str:
    text = f"""# generated by bench/run.py: one tcp frontend/backend, one thread, no logging
global
    nbthread 1
    maxconn 4000

defaults
    mode tcp
    timeout connect 5s
    timeout client 60s
    timeout server 60s

frontend fe
    bind {HOST}:{listen_port}
    default_backend be

backend be
    server s1 {HOST}:{backend_port}
"""
    path = os.path.join(ctx.tmp, f"{name}.cfg")
    with open(path, "w") as f:
        f.write(text)
    return path


def start_haproxy(ctx: Ctx, name: str, scenario: str, listen_port: int,
                  backend_port: int) -> Popen:
    """haproxy on the proxy CPU: ``mode tcp`` for bolt/tcp, ``mode http`` for http1/h2."""
    exe = shutil.which("haproxy")
    if not exe:
        raise PathFailed(HAPROXY_HINT)
    if scenario in HTTP_SCENARIOS:
        cfg = http_peers.haproxy_http_config(os.path.join(ctx.tmp, f"{name}.cfg"), listen_port,
                                             backend_port, h2=scenario == "h2")
    else:
        cfg = haproxy_config(ctx, name, listen_port, backend_port)
    return start_peer(ctx, "haproxy", name, [exe, "-f", cfg, "-db"], listen_port,
                      ctx.args.proxy_cpu)


def start_peer(ctx: Ctx, what: str, name: str, cmd: list[str], port: int,
               cpus: int) -> Popen:
    """Start a peer process pinned to ``cpus`` and wait until ``port`` accepts."""
    p = start_service(ctx, name, cmd, cpus)
    try:
        wait_port(ctx, p, what, port, ctx.args.start_timeout)
    except PathFailed:
        stop(ctx, p)
        raise
    return p


def start_nginx(ctx: Ctx, name: str, port: int, cpus: int, *,
                backend_port: int | None = None, h2: bool = False) -> Popen:
    """nginx in the foreground with its own prefix dir: the HTTP backend when
    ``backend_port`` is None, else an HTTP/1.1 reverse proxy to that port."""
    exe = shutil.which("nginx")
    if not exe:
        raise PathFailed(http_peers.NGINX_HINT)
    prefix = os.path.join(ctx.tmp, name)
    if backend_port is None:
        cfg = http_peers.nginx_backend_config(prefix, port, h2=h2)
    else:
        cfg = http_peers.nginx_proxy_config(prefix, port, backend_port)
    return start_peer(ctx, "nginx", name, http_peers.nginx_command(exe, prefix, cfg), port,
                      cpus)


def start_nghttpx(ctx: Ctx, name: str, port: int, backend_port: int) -> Popen:
    exe = shutil.which("nghttpx")
    if not exe:
        raise PathFailed(http_peers.NGHTTPX_HINT)
    conf = http_peers.nghttpx_empty_conf(os.path.join(ctx.tmp, f"{name}.conf"))
    return start_peer(ctx, "nghttpx", name,
                      http_peers.nghttpx_command(exe, conf, port, backend_port), port,
                      ctx.args.proxy_cpu)


# -- measuring -------------------------------------------------------------------------------


def wait_quiet(ctx: Ctx) -> None:
    """Wait (at most --wait-quiet seconds) until processes outside the benchmark (outside
    this orchestrator's process tree) use less than 20 % of one CPU over a 0.5 s window;
    the machine may be shared."""
    limit = ctx.args.wait_quiet
    if limit <= 0:
        return
    deadline = time.monotonic() + limit
    told = False
    me = os.getpid()
    while True:
        o0 = proc.outside_cpu(me)
        time.sleep(0.5)
        other = proc.outside_delta(o0, proc.outside_cpu(me))
        if other < 0.1:
            return
        if time.monotonic() > deadline:
            ctx.log(f"machine still busy ({other / 0.5:.0%} of a CPU used by other processes);"
                    " measuring anyway")
            return
        if not told:
            ctx.log(f"other processes use {other / 0.5:.0%} of a CPU; waiting up to "
                    f"{limit:g} s for quiet")
            told = True


def _check_warm(path: str, warm: Row) -> None:
    if not warm.get("completed", warm.get("received_bytes", 0)):
        raise PathFailed(f"warm-up through {path} got no successful response: "
                         + json.dumps({k: warm.get(k) for k in (
                             "sent", "errors", "statuses", "timeouts", "lost",
                             "protocol_errors", "sent_bytes", "received_bytes", "non_2xx",
                             "socket_errors", "socket_error_detail", "h2load_counts")
                             if k in warm}))


def warm_up(ctx: Ctx, scenario: str, path: str, port: int) -> int | None:
    """Run the unmeasured load; return the request count for the measured h2 run.

    h2load is bounded by a request count only, so for h2 a short probe measures the rate
    first, the warm-up lasts about --warmup seconds at that rate, and the measured run gets
    as many requests as the warm-up's rate fills in --duration (at most --requests).
    """
    a = ctx.args
    if scenario == "h2":
        cmd, bound, parse = load_cmd(ctx, scenario, port, a.warmup,
                                     min(H2_PROBE_REQUESTS, a.requests))
        warm = run_tool(ctx, cmd, bound, parse)
        _check_warm(path, warm)
        if a.warmup > 0:
            n = http_load.requests_for(warm["rps"], a.warmup, a.requests)
            cmd, bound, parse = load_cmd(ctx, scenario, port, a.warmup, n)
            warm = run_tool(ctx, cmd, bound, parse)
            _check_warm(path, warm)
        return http_load.requests_for(warm["rps"], a.duration, a.requests)
    if a.warmup > 0:
        cmd, bound, parse = load_cmd(ctx, scenario, port, a.warmup)
        _check_warm(path, run_tool(ctx, cmd, bound, parse))
    return None


def measure_window(ctx: Ctx, path: str, cmd: list[str], bound: float, parse: Parser | None,
                   proxy_p: Popen | None, backend_p: Popen) -> tuple[Row, Row, float]:
    """Run the measured load once and sample every CPU counter around it.

    Returns the load tool's result, the row with the fields every scenario has (CPU of
    the proxy, the backend and the rest of the machine), and the proxy's CPU seconds.
    """
    px0 = proc.tree_cpu_split(proxy_p.pid) if proxy_p else None
    b0 = proc.tree_cpu_seconds(backend_p.pid)
    sys0 = proc.system_cpu()
    out0 = proc.outside_cpu(os.getpid())
    ru_kids0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    ru_self0 = resource.getrusage(resource.RUSAGE_SELF)
    w0 = time.monotonic()
    res = run_tool(ctx, cmd, bound, parse)
    wall = time.monotonic() - w0
    ru_kids1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    ru_self1 = resource.getrusage(resource.RUSAGE_SELF)
    sysd = proc.system_cpu().delta(sys0)
    other = proc.outside_delta(out0, proc.outside_cpu(os.getpid()))
    if proxy_p is not None and proxy_p.poll() is not None:
        raise PathFailed(f"{path}: the proxy exited (code {proxy_p.returncode}) during the run"
                         f"\n{log_tail(ctx, proxy_p)}")
    px1 = proc.tree_cpu_split(proxy_p.pid) if proxy_p else None
    b1 = proc.tree_cpu_seconds(backend_p.pid)
    elapsed = res["elapsed_s"] or 1e-9
    # the load process was reaped inside the window: its whole CPU (start-up included)
    load_total = ((ru_kids1.ru_utime + ru_kids1.ru_stime)
                  - (ru_kids0.ru_utime + ru_kids0.ru_stime))
    me = (ru_self1.ru_utime + ru_self1.ru_stime) - (ru_self0.ru_utime + ru_self0.ru_stime)
    px_user = (px1[0] - px0[0]) if px1 and px0 else 0.0
    px_sys = (px1[1] - px0[1]) if px1 and px0 else 0.0
    ours = load_total + me + (b1 - b0) + px_user + px_sys
    row: Row = {"path": path, "load": res, "wall_s": round(wall, 3),
           "backend_cpu_s": round(b1 - b0, 3),
           "load_core_util": round((res["load_cpu_s"] + (b1 - b0)) / elapsed, 2),
           # CPU used during the window by processes that are not part of the benchmark
           "other_cpu_s": round(other, 2),
           # the older estimate, /proc/stat minus ours: blind to softirq ticks (proc.py)
           "other_cpu_s_stat": round(max(0.0, sysd.task["cpu"] - ours), 2),
           "softirq_s": round(sysd.softirq["cpu"], 2),
           "steal_s": round(sysd.steal["cpu"], 2)}
    cpu = 0.0
    if proxy_p is not None:
        cpu = px_user + px_sys
        row["proxy_cpu_s"] = round(cpu, 3)
        row["proxy_user_s"] = round(px_user, 3)
        row["proxy_sys_s"] = round(px_sys, 3)
        row["proxy_sys_pct"] = round(100 * px_sys / cpu) if cpu > 0 else None
        row["proxy_util"] = round(cpu / elapsed, 2)
    return res, row, cpu


def measure(ctx: Ctx, scenario: str, path: str, port: int,
            proxy_p: Popen | None, backend_p: Popen) -> Row:
    a = ctx.args
    requests = warm_up(ctx, scenario, path, port)
    wait_quiet(ctx)
    cmd, bound, parse = load_cmd(ctx, scenario, port, a.duration, requests)
    res, row, cpu = measure_window(ctx, path, cmd, bound, parse, proxy_p, backend_p)
    if scenario == "tcp-bulk":
        mb = res["received_bytes"] / 1e6
        row.update(mb_per_s=res["mb_per_s"], mb=round(mb, 1),
                   errors=res["errors"])
        if proxy_p is not None:
            row["mb_per_proxy_cpu_s"] = round(mb / cpu, 1) if cpu > 0 else None
    else:
        row.update(rps=res["rps"], p50_ms=res["p50_ms"], p99_ms=res["p99_ms"],
                   completed=res["completed"], errors=res["errors"])
        if scenario in HTTP_SCENARIOS:
            row.update(non_2xx=res["non_2xx"], socket_errors=res["socket_errors"],
                       error_detail=http_load.error_detail(res))
        if proxy_p is not None:
            row["req_per_proxy_cpu_s"] = round(res["completed"] / cpu, 1) if cpu > 0 else None
    return row


def run_path(ctx: Ctx, scenario: str, path: str, backend_port: int,
             backend_p: Popen) -> Row:
    ctx.log(f"{scenario}: {path} ...")
    proxy_p: Popen | None = None
    grpc_p: Popen | None = None
    tag = f"{scenario}-{path}".replace(" ", "_").replace("(", "").replace(")", "")
    try:
        if path == "direct":
            port = backend_port
        elif path == "haproxy":
            port = free_port()
            proxy_p = start_haproxy(ctx, tag, scenario, port, backend_port)
        elif path == "nginx":
            port = free_port()
            proxy_p = start_nginx(ctx, tag, port, ctx.args.proxy_cpu, backend_port=backend_port)
        elif path == "nghttpx":
            port = free_port()
            proxy_p = start_nghttpx(ctx, tag, port, backend_port)
        elif path == BOLT2GRPC:
            # its own backend, a gRPC server on the load CPU; its CPU is the row's backend CPU
            grpc_port, grpc_p = start_grpc_backend(ctx, f"{tag}-grpc_backend")
            backend_p = grpc_p
            port = free_port()
            cfg = mosn_bolt2grpc_config(ctx, tag, port, grpc_port)
            proxy_p = start_mosn(ctx, tag, cfg, port)
        elif path.startswith("mosn-py"):
            if scenario in HTTP_SCENARIOS:
                port = free_port()
                cfg = http_peers.mosn_http_config(os.path.join(ctx.tmp, f"{tag}.yaml"), port,
                                                  backend_port, h2=scenario == "h2")
            elif scenario == "bolt":
                # One config with both listeners (the schema's example); the bolt path loads
                # bolt_in (L7: decode, route, re-encode), the tcp path loads tcp_in (relay).
                bolt_port, tcp_port = free_port(), free_port()
                cfg = mosn_config(ctx, tag, bolt_port=bolt_port, bolt_backend=backend_port,
                                  tcp_port=tcp_port, tcp_backend=backend_port)
                port = bolt_port if path == "mosn-py (bolt)" else tcp_port
            else:
                port = free_port()
                cfg = mosn_config(ctx, tag, bolt_port=None, bolt_backend=None,
                                  tcp_port=port, tcp_backend=backend_port)
            proxy_p = start_mosn(ctx, tag, cfg, port)
        else:
            raise PathFailed(f"unknown path {path!r}")
        row = measure(ctx, scenario, path, port, proxy_p, backend_p)
    except PathFailed as exc:
        ctx.log(f"{scenario}: {path} FAILED: {str(exc).splitlines()[0]}")
        return {"path": path, "error": str(exc)}
    finally:
        stop(ctx, proxy_p)
        stop(ctx, grpc_p)
    ctx.log(f"{scenario}: {path} done: " + ", ".join(
        f"{k}={row[k]}" for k in ("rps", "mb_per_s", "p99_ms", "errors", "proxy_cpu_s",
                                  "req_per_proxy_cpu_s", "other_cpu_s") if k in row))
    return row


def scenario_paths(scenario: str, wanted: list[str]) -> list[str]:
    """The paths of ``scenario`` among the --paths asked for, in their order."""
    if scenario in CACHE_SCENARIOS:
        names = {"mosn-py": f"mosn-py ({scenario})", "mosn-py-mc2redis": MC2REDIS}
        return [names.get(w, w) for w in wanted
                if w in ("direct", "mosn-py", "twemproxy")
                or (w == "mosn-py-mc2redis" and scenario == "memcache")]
    http = scenario in HTTP_SCENARIOS
    out = []
    for w in wanted:
        if w in ("direct", "haproxy"):
            out.append(w)
        elif w == "mosn-py":
            if http:
                out.append(f"mosn-py ({scenario})")
            else:
                out += (["mosn-py (bolt)", "mosn-py (tcp)"] if scenario == "bolt"
                        else ["mosn-py (tcp)"])
        elif w == "mosn-py-bolt" and scenario == "bolt":
            out.append("mosn-py (bolt)")
        elif w == "mosn-py-bolt2grpc" and scenario == "bolt":
            out.append(BOLT2GRPC)
        elif w == "mosn-py-tcp" and not http:
            out.append("mosn-py (tcp)")
        elif (w == "nginx" and scenario == "http1") or (w == "nghttpx" and scenario == "h2"):
            out.append(w)
    return out


def start_backend(ctx: Ctx, scenario: str, port: int) -> tuple[str, Popen]:
    """The scenario's backend, pinned to the load CPU, listening on ``port``."""
    if scenario in HTTP_SCENARIOS:
        name = "nginx_backend"
        return name, start_nginx(ctx, f"{scenario}-{name}", port, ctx.args.load_cpu,
                                 h2=scenario == "h2")
    if scenario == "bolt":
        cmd = [ctx.python, os.path.join(HERE, "bolt_backend.py"), "--port", str(port)]
        name = "bolt_backend"
    else:
        cmd = [ctx.python, os.path.join(HERE, "tcp_echo.py"), "--port", str(port)]
        name = "tcp_echo"
    p = start_service(ctx, f"{scenario}-{name}", cmd, ctx.args.load_cpu)
    try:
        wait_port(ctx, p, name, port, 10.0)
    except PathFailed:
        stop(ctx, p)
        raise
    return name, p


def run_scenario(ctx: Ctx, scenario: str) -> Row:
    if scenario in CACHE_SCENARIOS:
        return run_cache_scenario(ctx, scenario)
    backend_port = free_port()
    rounds: list[list[Row]] = []
    name = "backend"
    backend_p: Popen | None = None
    try:
        name, backend_p = start_backend(ctx, scenario, backend_port)
        # Paths take turns, round after round (A B C A B C ...), so a slow spell of the
        # machine hits every path alike; the table shows each path's median over rounds.
        for _rnd in range(ctx.args.rounds):
            rows: list[Row] = []
            rounds.append(rows)
            for path in scenario_paths(scenario, ctx.args.paths):
                rows.append(run_path(ctx, scenario, path, backend_port, backend_p))
                if path == "direct" and "error" in rows[-1]:
                    ctx.log(f"{scenario}: direct path failed, skipping the scenario")
                    break
            if rows and rows[0].get("path") == "direct" and "error" in rows[0]:
                break
    except PathFailed as exc:
        rounds.append([{"path": "direct", "error": f"backend: {exc}"}])
    finally:
        stop(ctx, backend_p)
    rows = median_rows(rounds)
    add_ratios(scenario, rows)
    return {"scenario": scenario, "backend": name, "rows": rows, "rounds": len(rounds)}


# -- cache scenarios: redis, memcache ----------------------------------------------------------
#
# One backend (redis-server or memcached on the load CPU) for the whole scenario, its key
# space filled first so GETs hit. Every (test, pipeline) pair is its own measurement with a
# fresh proxy: for each round, for each pair, the paths take turns (direct, mosn-py,
# twemproxy), so the ratio of a pair compares measurements taken seconds apart.


def cache_variants(ctx: Ctx, scenario: str) -> list[tuple[str, int]]:
    tests = ctx.args.redis_tests if scenario == "redis" else ctx.args.memcache_tests
    return [(t, p) for t in tests for p in ctx.args.pipelines]


def cache_load_cmd(ctx: Ctx, scenario: str, test: str, pipeline: int, port: int,
                   duration: float, requests: int) -> tuple[list[str], float, Parser | None]:
    """redis: one redis-benchmark test bounded by ``requests`` (``-n``) and a subprocess
    timeout; memcache: memcache_load.py bounded by ``requests`` and ``duration``."""
    a = ctx.args
    if scenario == "redis":
        exe = shutil.which("redis-benchmark")
        if not exe:
            raise PathFailed(cache_peers.REDIS_BENCHMARK_HINT)
        cmd = cache_load.redis_benchmark_command(
            exe, port, test=test, clients=a.cache_clients, pipeline=pipeline,
            requests=requests, keyspace=a.keyspace, value_size=a.value_size,
            mget_keys=a.mget_keys)

        def parse(stdout: str) -> Row:
            return cache_load.parse_redis_benchmark(stdout, requests)

        # -n was sized for ``duration`` from a measured rate; allow for a slower spell
        return cmd, 3 * duration + a.timeout + 30.0, parse
    cmd = cache_load.memcache_load_command(
        ctx.python, port, test=test, connections=a.cache_clients, inflight=pipeline,
        requests=requests, duration=duration, timeout=a.timeout, keyspace=a.keyspace,
        value_size=a.value_size)
    return cmd, duration + a.timeout + 30.0, None


def cache_warm_up(ctx: Ctx, scenario: str, test: str, pipeline: int, path: str,
                  port: int) -> int:
    """Unmeasured load first; return the request bound of the measured run.

    redis-benchmark has a request count only, so (as for h2load) a short probe measures
    the rate, the warm-up lasts about --warmup seconds at that rate, and the measured run
    gets as many requests as the warm-up's rate fills in --duration (at most --requests).
    """
    a = ctx.args
    if scenario == "redis":
        probe = min(a.requests, max(2000, 4 * a.cache_clients * pipeline))
        cmd, bound, parse = cache_load_cmd(ctx, scenario, test, pipeline, port, a.warmup or 1,
                                           probe)
        warm = run_tool(ctx, cmd, bound, parse)
        _check_warm(path, warm)
        rate = warm["rps"]
        if a.warmup > 0:
            n = http_load.requests_for(rate, a.warmup, a.requests)
            cmd, bound, parse = cache_load_cmd(ctx, scenario, test, pipeline, port, a.warmup,
                                               n)
            warm = run_tool(ctx, cmd, bound, parse)
            _check_warm(path, warm)
            # the faster of the two: a slow spell of a shared machine during the warm-up
            # would otherwise shrink the measured window (a slower run takes longer instead,
            # within the subprocess timeout)
            rate = max(rate, warm["rps"])
        return http_load.requests_for(rate, a.duration, a.requests)
    if a.warmup > 0:
        cmd, bound, parse = cache_load_cmd(ctx, scenario, test, pipeline, port, a.warmup,
                                           a.requests)
        warm = run_tool(ctx, cmd, bound, parse)
        _check_warm(path, warm)
        if warm.get("errors"):
            raise PathFailed(f"warm-up through {path} had errors: "
                             f"{cache_load.error_detail(warm)}")
    return int(a.requests)


def measure_cache(ctx: Ctx, scenario: str, test: str, pipeline: int, path: str, port: int,
                  proxy_p: Popen | None, backend_p: Popen, backend_port: int,
                  backend_kind: str | None = None) -> Row:
    """``backend_kind``: the backend's protocol when it is not ``scenario``'s (mc2redis)."""
    a = ctx.args
    kind = backend_kind or scenario
    requests = cache_warm_up(ctx, scenario, test, pipeline, path, port)
    wait_quiet(ctx)
    cmd, bound, parse = cache_load_cmd(ctx, scenario, test, pipeline, port, a.duration,
                                       requests)
    try:
        c0 = cache_load.server_commands(kind, backend_port)
        res, row, cpu = measure_window(ctx, path, cmd, bound, parse, proxy_p, backend_p)
        c1 = cache_load.server_commands(kind, backend_port)
    except (OSError, KeyError, ValueError) as exc:
        raise PathFailed(f"reading the backend's command counters failed: {exc!r}") from None
    # redis counts the first INFO once it has finished, so it is inside the difference
    backend_cmds = c1 - c0 - (1 if kind == "redis" else 0)
    completed = res["completed"]
    row.update(test=test, pipeline=pipeline, rps=res["rps"], p50_ms=res["p50_ms"],
               p99_ms=res["p99_ms"], completed=completed, errors=res["errors"],
               error_detail=cache_load.error_detail(res), backend_cmds=backend_cmds,
               backend_cmds_per_req=round(backend_cmds / completed, 2) if completed else None)
    if proxy_p is not None:
        row["req_per_proxy_cpu_s"] = round(completed / cpu, 1) if cpu > 0 else None
    return row


def start_twemproxy(ctx: Ctx, name: str, scenario: str, port: int, backend_port: int) -> Popen:
    exe = shutil.which("nutcracker")
    if not exe:
        raise PathFailed(cache_peers.NUTCRACKER_HINT)
    workdir = os.path.join(ctx.tmp, name)
    os.makedirs(workdir, exist_ok=True)
    cfg = cache_peers.nutcracker_config(os.path.join(workdir, "nutcracker.yml"), port,
                                        backend_port, redis=scenario == "redis")
    cmd = cache_peers.nutcracker_command(exe, cfg, free_port(), workdir)
    return start_peer(ctx, "nutcracker", name, cmd, port, ctx.args.proxy_cpu)


def run_cache_path(ctx: Ctx, scenario: str, test: str, pipeline: int, path: str,
                   backend_port: int, backend_p: Popen,
                   redis: tuple[int, Popen] | None = None) -> Row:
    """``redis``: (port, process) of the redis-server behind the mc2redis path."""
    label = f"{scenario} {test} -P {pipeline}"
    ctx.log(f"{label}: {path} ...")
    proxy_p: Popen | None = None
    tag = (f"{scenario}-{test}-P{pipeline}-{path}".replace(" ", "_").replace("(", "")
           .replace(")", ""))
    kind = None
    try:
        if path == MC2REDIS:
            if redis is None:
                raise PathFailed("mc2redis: no redis-server")
            backend_port, backend_p = redis
            kind = "redis"
            port = free_port()
            cfg = cache_peers.mosn_cache_config(os.path.join(ctx.tmp, f"{tag}.yaml"), port,
                                                backend_port, protocol=scenario,
                                                cluster_protocol="redis")
            proxy_p = start_mosn(ctx, tag, cfg, port)
        elif path == "direct":
            port = backend_port
        elif path == "twemproxy":
            port = free_port()
            proxy_p = start_twemproxy(ctx, tag, scenario, port, backend_port)
        elif path.startswith("mosn-py"):
            port = free_port()
            cfg = cache_peers.mosn_cache_config(os.path.join(ctx.tmp, f"{tag}.yaml"), port,
                                                backend_port, protocol=scenario)
            proxy_p = start_mosn(ctx, tag, cfg, port)
        else:
            raise PathFailed(f"unknown path {path!r}")
        row = measure_cache(ctx, scenario, test, pipeline, path, port, proxy_p, backend_p,
                            backend_port, kind)
    except PathFailed as exc:
        ctx.log(f"{label}: {path} FAILED: {str(exc).splitlines()[0]}")
        return {"path": path, "test": test, "pipeline": pipeline, "error": str(exc)}
    finally:
        stop(ctx, proxy_p)
    ctx.log(f"{label}: {path} done: " + ", ".join(
        f"{k}={row[k]}" for k in ("rps", "p99_ms", "errors", "proxy_cpu_s",
                                  "req_per_proxy_cpu_s", "backend_cmds_per_req",
                                  "other_cpu_s") if k in row))
    return row


def start_cache_backend(ctx: Ctx, scenario: str, port: int) -> tuple[str, Popen]:
    """redis-server or memcached on the load CPU, listening on ``port``, key space filled."""
    if scenario == "redis":
        name, hint = "redis-server", cache_peers.REDIS_SERVER_HINT
        exe = shutil.which(name)
        cmd = (cache_peers.redis_server_command(exe, port, os.path.join(ctx.tmp, "redis"))
               if exe else [])
    else:
        name, hint = "memcached", cache_peers.MEMCACHED_HINT
        exe = shutil.which(name)
        cmd = cache_peers.memcached_command(exe, port) if exe else []
    if not exe:
        raise PathFailed(hint)
    p = start_service(ctx, f"{scenario}-{name}", cmd, ctx.args.load_cpu)
    try:
        wait_port(ctx, p, name, port, 10.0)
        cache_load.fill(scenario, port, ctx.args.keyspace, ctx.args.value_size)
    except (PathFailed, OSError) as exc:
        stop(ctx, p)
        raise PathFailed(f"{name}: {exc}") from None
    return name, p


def run_cache_scenario(ctx: Ctx, scenario: str) -> Row:
    a = ctx.args
    backend_port = free_port()
    variants = cache_variants(ctx, scenario)
    paths = scenario_paths(scenario, a.paths)
    by_variant: dict[tuple[str, int], list[list[Row]]] = {v: [] for v in variants}
    name = "redis-server" if scenario == "redis" else "memcached"
    backend_p: Popen | None = None
    tool = "redis-benchmark" if scenario == "redis" else None
    redis: tuple[int, Popen] | None = None
    try:
        if tool and not shutil.which(tool):  # nothing can run: say so in every row
            raise PathFailed(cache_peers.REDIS_BENCHMARK_HINT)
        name, backend_p = start_cache_backend(ctx, scenario, backend_port)
        if MC2REDIS in paths:
            # a second backend for the translating path: redis-server on the load CPU, its
            # keys SET as plain strings (memcached items with flags 0), so gets hit
            redis_port = free_port()
            try:
                _, redis_p = start_cache_backend(ctx, "redis", redis_port)
            except PathFailed as exc:
                ctx.log(f"{scenario}: {MC2REDIS} skipped: {exc}")
                paths = [p for p in paths if p != MC2REDIS]
            else:
                redis = (redis_port, redis_p)
        for _rnd in range(a.rounds):
            for test, pipeline in variants:
                rows: list[Row] = []
                by_variant[(test, pipeline)].append(rows)
                for path in paths:
                    rows.append(run_cache_path(ctx, scenario, test, pipeline, path,
                                               backend_port, backend_p, redis))
    except PathFailed as exc:
        for (test, pipeline), rounds in by_variant.items():
            rounds.append([{"path": p, "test": test, "pipeline": pipeline,
                            "error": f"{exc}"} for p in paths])
    finally:
        stop(ctx, backend_p)
        if redis is not None:
            stop(ctx, redis[1])
    groups = []
    for (test, pipeline), rounds in by_variant.items():
        rows = median_rows(rounds)
        cache_report.add_cache_ratios(rows)
        groups.append({"test": test, "pipeline": pipeline, "rows": rows})
    return {"scenario": scenario, "backend": name, "groups": groups,
            "rounds": max((len(r) for r in by_variant.values()), default=0)}


def _version(cmd: list[str]) -> str | None:
    """First line a tool prints about its version (stdout or stderr), or None."""
    exe = shutil.which(cmd[0])
    if not exe:
        return None
    try:
        r = subprocess.run([exe, *cmd[1:]], capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    lines = (r.stdout or r.stderr).strip().splitlines()
    return lines[0].strip() if lines else None


def environment(ctx: Ctx) -> Row:
    env: Row = {"date": datetime.datetime.now().isoformat(timespec="seconds"),
           "kernel": platform.release(), "python": platform.python_version(),
           "cpus": os.cpu_count(), "proxy_cpu": ctx.args.proxy_cpu,
           "load_cpu": ctx.args.load_cpu}
    try:
        with open("/proc/cpuinfo") as f:
            env["cpu_model"] = next((ln.split(":", 1)[1].strip() for ln in f
                                     if ln.startswith("model name")), "?")
    except OSError:
        pass
    versions = {"haproxy": ["haproxy", "-v"], "wrk": ["wrk", "-v"],
                "h2load": ["h2load", "--version"], "nginx": ["nginx", "-v"],
                "nghttpx": ["nghttpx", "--version"]}
    for name, cmd in versions.items():
        if name in ("haproxy", "nginx") or any(s in HTTP_SCENARIOS for s in ctx.args.scenarios):
            v = _version(cmd)
            if v:
                env[name] = v
    cache_versions = {"redis-server": ["redis-server", "--version"],
                      "redis-benchmark": ["redis-benchmark", "--version"],
                      "nutcracker": ["nutcracker", "--version"],
                      "memcached": ["memcached", "-V"]}
    for name, cmd in cache_versions.items():
        if any(s in CACHE_SCENARIOS for s in ctx.args.scenarios):
            v = _version(cmd)
            if v:
                env[name] = v
    try:
        env["mosn_py_rev"] = subprocess.run(
            ["git", "-C", REPO, "rev-parse", "--short", "HEAD"], capture_output=True,
            text=True, timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        pass
    mcmd, _ = mosn_command(ctx, "CONFIG.yaml")
    env["mosn_py_cmd"] = shlex.join(mcmd)
    return env


# -- main ------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="direct vs mosn-py vs peer proxy benchmarks",
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog=__doc__.split("\n\n", 1)[1])
    p.add_argument("--scenarios", default=DEFAULT_SCENARIOS,
                   help=f"comma list of {','.join(SCENARIOS)} (default: {DEFAULT_SCENARIOS}; "
                   "redis and memcache only when named)")
    p.add_argument("--paths", default=DEFAULT_PATHS,
                   help=f"comma list of {','.join(PATHS)} (default: {DEFAULT_PATHS}); "
                   "each scenario runs the ones it has (nginx: http1, nghttpx: h2)")
    p.add_argument("--duration", type=float, default=5.0, help="seconds per measured path")
    p.add_argument("--rounds", type=int, default=1,
                   help="run every path this many times, taking turns; report medians")
    p.add_argument("--warmup", type=float, default=1.0, help="warm-up seconds per path (0=off)")
    p.add_argument("--requests", type=int, default=10_000_000,
                   help="request bound per measured path (duration usually ends it first)")
    p.add_argument("--connections", type=int, default=8, help="bolt and tcp-small connections")
    p.add_argument("--inflight", type=int, default=16, help="bolt requests in flight per conn")
    p.add_argument("--timeout", type=float, default=3.0, help="per-request timeout, seconds")
    p.add_argument("--msg-size", type=int, default=64, help="tcp-small message bytes")
    p.add_argument("--http-connections", type=int, default=50,
                   help="http1: wrk keep-alive connections")
    p.add_argument("--h2-clients", type=int, default=8, help="h2: h2load connections (-c)")
    p.add_argument("--h2-streams", type=int, default=32,
                   help="h2: concurrent streams per connection (h2load -m)")
    p.add_argument("--bulk-mb", type=float, default=20_000.0, help="tcp-bulk MB bound per path")
    p.add_argument("--bulk-connections", type=int, default=1)
    p.add_argument("--cache-clients", type=int, default=50,
                   help="redis, memcache: client connections (redis-benchmark -c)")
    p.add_argument("--pipelines", default="1,16",
                   help="redis, memcache: comma list of pipeline depths (redis-benchmark -P; "
                   "memcache_load.py -m), each measured on its own")
    p.add_argument("--redis-tests", default="get,set,mget",
                   help="redis: comma list of get, set, mget")
    p.add_argument("--memcache-tests", default="get,set", help="memcache: get, set")
    p.add_argument("--keyspace", type=int, default=100_000,
                   help="redis, memcache: keys key:%%012d, all stored before measuring")
    p.add_argument("--value-size", type=int, default=3,
                   help="redis, memcache: value bytes (redis-benchmark -d)")
    p.add_argument("--mget-keys", type=int, default=10, help="redis mget: keys per MGET")
    p.add_argument("--proxy-cpu", type=int, default=0)
    p.add_argument("--load-cpu", type=int, default=1)
    p.add_argument("--python", default=sys.executable,
                   help="interpreter for the load tools, backends and `-m mosn_py.cli`")
    p.add_argument("--mosn-py", default=None,
                   help="mosn-py executable (default: PYTHON -m mosn_py.cli)")
    p.add_argument("--mosn-py-args", default="",
                   help="extra arguments appended to `mosn-py run -c CONFIG` (one string)")
    p.add_argument("--start-timeout", type=float, default=15.0,
                   help="seconds a proxy gets to start listening")
    p.add_argument("--nice", type=int, default=0,
                   help="run proxy, backend and load under `nice -n N` (e.g. -10 as root on a "
                   "shared machine, so other processes disturb the measurement less)")
    p.add_argument("--wait-quiet", type=float, default=3.0,
                   help="before each measurement wait up to this many seconds until other "
                   "processes use < 20%% of a CPU (0 = do not wait)")
    p.add_argument("--json-out", help="write all results (raw load output included) here")
    p.add_argument("--keep-tmp", action="store_true", help="keep the configs and logs")
    p.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    a = p.parse_args(argv)
    a.scenarios = [s.strip() for s in a.scenarios.split(",") if s.strip()]
    bad = [s for s in a.scenarios if s not in SCENARIOS]
    if bad:
        p.error(f"unknown scenario(s) {bad}; choose from {', '.join(SCENARIOS)}")
    a.paths = [s.strip() for s in a.paths.split(",") if s.strip()]
    if set(a.paths) - set(PATHS):
        p.error(f"unknown path(s) {sorted(set(a.paths) - set(PATHS))}; choose from "
                f"{', '.join(PATHS)}")
    if min(a.duration, a.requests, a.connections, a.inflight, a.http_connections,
           a.h2_clients, a.h2_streams, a.rounds) <= 0:
        p.error("--duration, --requests, --connections, --inflight, --http-connections, "
                "--h2-clients, --h2-streams and --rounds must be positive")
    try:
        a.pipelines = [int(x) for x in a.pipelines.split(",") if x.strip()]
    except ValueError:
        p.error("--pipelines: comma list of integers, e.g. 1,16")
    a.redis_tests = [t.strip() for t in a.redis_tests.split(",") if t.strip()]
    a.memcache_tests = [t.strip() for t in a.memcache_tests.split(",") if t.strip()]
    if (set(a.redis_tests) - set(cache_load.REDIS_TESTS)
            or set(a.memcache_tests) - set(cache_load.MEMCACHE_TESTS)):
        p.error(f"--redis-tests: {','.join(cache_load.REDIS_TESTS)}; --memcache-tests: "
                f"{','.join(cache_load.MEMCACHE_TESTS)}")
    if (not a.pipelines or min(a.pipelines) <= 0
            or min(a.cache_clients, a.keyspace, a.mget_keys) <= 0 or a.value_size < 0):
        p.error("--pipelines, --cache-clients, --keyspace and --mget-keys must be positive")
    return a


def main(argv: list[str] | None = None) -> int:
    a = parse_args(argv)
    cpus = proc.available_cpus()
    if not proc.have_taskset():
        print("error: taskset not found (apt-get install -y util-linux)", file=sys.stderr)
        return 2
    if a.proxy_cpu not in cpus or a.load_cpu not in cpus:
        print(f"error: CPUs {a.proxy_cpu}/{a.load_cpu} not available (have {cpus})",
              file=sys.stderr)
        return 2
    if a.proxy_cpu == a.load_cpu:
        print("warning: proxy and load share one CPU; numbers mix both sides",
              file=sys.stderr)
    if ("haproxy" in a.paths and any(s not in CACHE_SCENARIOS for s in a.scenarios)
            and not shutil.which("haproxy")):
        print(f"warning: {HAPROXY_HINT}; the haproxy path will be reported as failed",
              file=sys.stderr)
    for exe, hint, needed in (
            ("wrk", http_load.WRK_HINT, "http1" in a.scenarios),
            ("h2load", http_load.H2LOAD_HINT, "h2" in a.scenarios),
            ("nginx", http_peers.NGINX_HINT, any(s in HTTP_SCENARIOS for s in a.scenarios)),
            ("nghttpx", http_peers.NGHTTPX_HINT, "h2" in a.scenarios and "nghttpx" in a.paths),
            ("redis-server", cache_peers.REDIS_SERVER_HINT, "redis" in a.scenarios),
            ("redis-benchmark", cache_peers.REDIS_BENCHMARK_HINT, "redis" in a.scenarios),
            ("memcached", cache_peers.MEMCACHED_HINT, "memcache" in a.scenarios),
            ("nutcracker", cache_peers.NUTCRACKER_HINT,
             any(s in CACHE_SCENARIOS for s in a.scenarios) and "twemproxy" in a.paths)):
        if needed and not shutil.which(exe):
            print(f"warning: {hint}; the scenarios that need it will report it as failed",
                  file=sys.stderr)
    os.sched_setaffinity(0, {a.load_cpu})  # keep the orchestrator off the proxy's CPU

    def on_term(signum: int, frame: object) -> None:  # SIGTERM -> same cleanup as Ctrl-C
        raise KeyboardInterrupt

    # SIGINT explicitly too: a shell may start background jobs with SIGINT ignored
    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    tmp = tempfile.mkdtemp(prefix="mosn-bench-")
    ctx = Ctx(a, tmp)
    results: list[Row] = []
    env: Row = {}
    rc = 0
    try:
        env = environment(ctx)
        for sc in a.scenarios:
            results.append(run_scenario(ctx, sc))
    except KeyboardInterrupt:
        print("\n[bench] interrupted: stopping everything", file=sys.stderr)
        rc = 130
    finally:
        stop_all(ctx)
        if a.keep_tmp:
            print(f"[bench] configs and logs kept in {tmp}", file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    if results:
        print(report(a, env, results))
        if a.json_out:
            os.makedirs(os.path.dirname(os.path.abspath(a.json_out)), exist_ok=True)
            with open(a.json_out, "w") as f:
                json.dump({"environment": env, "args": {k: v for k, v in vars(a).items()},
                           "results": results}, f, indent=2)
            print(f"\n(JSON written to {a.json_out})")
    return rc


if __name__ == "__main__":
    sys.exit(main())
