#!/usr/bin/env python3
"""Benchmark orchestrator: direct vs mosn-py vs haproxy, printed as markdown tables.

Scenarios
  bolt       Bolt v1 load (bolt_load.py) against bolt_backend.py. Paths: direct,
             mosn-py as a Bolt L7 listener, mosn-py as a plain tcp listener, haproxy (mode tcp).
  tcp-small  64-byte ping-pong (tcp_load.py small) against tcp_echo.py.
             Paths: direct, mosn-py tcp listener, haproxy.
  tcp-bulk   stream through the echo and read it back (tcp_load.py bulk): MB/s.

Pinning: the proxy under test (mosn-py or haproxy) runs on CPU --proxy-cpu (0), the load
generator, the backend and this orchestrator on CPU --load-cpu (1), all with ``taskset -c``.

Per path the orchestrator starts the proxy, waits for its port, runs a short warm-up load,
then samples the proxy's CPU seconds (/proc/PID/stat, whole process tree), runs the
measured load, samples again, stops the proxy. Ratios are computed within the same run.

  .venv/bin/python bench/run.py                       # all scenarios, ~5 s per path
  .venv/bin/python bench/run.py --scenarios bolt --paths direct,haproxy
  .venv/bin/python bench/run.py --mosn-py .venv/bin/mosn-py --json-out r.json
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
from dataclasses import dataclass, field

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, HERE)

import proc  # noqa: E402
from common import free_port  # noqa: E402

HOST = "127.0.0.1"
SCENARIOS = ("bolt", "tcp-small", "tcp-bulk")
HAPROXY_HINT = "haproxy is not installed: apt-get install -y haproxy  (Debian/Ubuntu)"


class PathFailed(Exception):
    """One path of one scenario could not be measured; the run goes on with the others."""


@dataclass
class Ctx:
    args: argparse.Namespace
    tmp: str
    procs: list[subprocess.Popen] = field(default_factory=list)
    log_paths: dict[int, str] = field(default_factory=dict)

    @property
    def python(self) -> str:
        return self.args.python

    def log(self, msg: str) -> None:
        if not self.args.quiet:
            print(f"[bench] {msg}", file=sys.stderr, flush=True)


# -- processes -------------------------------------------------------------------------------


def start_service(ctx: Ctx, name: str, cmd: list[str], cpus: int | None,
                  env: dict[str, str] | None = None, cwd: str | None = None) -> subprocess.Popen:
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


def stop(ctx: Ctx, p: subprocess.Popen | None) -> None:
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


def log_tail(ctx: Ctx, p: subprocess.Popen, lines: int = 15) -> str:
    path = ctx.log_paths.get(p.pid)
    if not path or not os.path.exists(path):
        return "(no output)"
    with open(path, "rb") as f:
        text = f.read().decode("utf-8", "replace").rstrip()
    return "\n".join("    " + ln for ln in text.splitlines()[-lines:]) or "    (no output)"


def wait_port(ctx: Ctx, p: subprocess.Popen, name: str, port: int, timeout: float) -> None:
    """Wait until ``port`` accepts a connection; fail early if the process exits."""
    deadline = time.monotonic() + timeout
    while True:
        rc = p.poll()
        if rc is not None:
            raise PathFailed(f"{name} exited with code {rc} before listening on {HOST}:{port}."
                             f"\n  command: {shlex.join(p.args)}\n  output:\n{log_tail(ctx, p)}")
        try:
            with socket.create_connection((HOST, port), timeout=0.2):
                return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise PathFailed(f"{name} did not listen on {HOST}:{port} within {timeout:.0f} s."
                             f"\n  command: {shlex.join(p.args)}\n  output:\n{log_tail(ctx, p)}")
        time.sleep(0.05)


def run_tool(ctx: Ctx, cmd: list[str], bound: float) -> dict:
    """Run a load tool pinned to the load CPU and return its JSON result."""
    p = proc.start_pinned(cmd, ctx.args.load_cpu, ctx.args.nice, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
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
    lines = out.decode().strip().splitlines()
    try:
        res = json.loads(lines[-1])
    except (IndexError, json.JSONDecodeError):
        raise PathFailed(f"load tool gave no JSON (exit {p.returncode}): "
                         f"{err.decode().strip()[-800:]}") from None
    if "error" in res:
        raise PathFailed(f"load tool: {res['error']}")
    return res


def load_cmd(ctx: Ctx, scenario: str, port: int, duration: float) -> tuple[list[str], float]:
    a = ctx.args
    if scenario == "bolt":
        cmd = [ctx.python, os.path.join(HERE, "bolt_load.py"), "--port", str(port),
               "-c", str(a.connections), "-m", str(a.inflight), "-n", str(a.requests),
               "-d", str(duration), "--timeout", str(a.timeout)]
    elif scenario == "tcp-small":
        cmd = [ctx.python, os.path.join(HERE, "tcp_load.py"), "--port", str(port), "small",
               "-c", str(a.connections), "-s", str(a.msg_size), "-m", "1",
               "-n", str(a.requests), "-d", str(duration), "--timeout", str(a.timeout)]
    else:
        cmd = [ctx.python, os.path.join(HERE, "tcp_load.py"), "--port", str(port), "bulk",
               "-c", str(a.bulk_connections), "--mb", str(a.bulk_mb), "-d", str(duration),
               "--timeout", str(a.timeout)]
    return cmd, duration + a.timeout + 30.0


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


def mosn_command(ctx: Ctx, config: str) -> tuple[list[str], dict[str, str]]:
    a = ctx.args
    base = [a.mosn_py] if a.mosn_py else [ctx.python, "-m", "mosn_py.cli"]
    env = dict(os.environ)
    # the repo checkout wins over whatever is installed, so the code under test is this tree
    env["PYTHONPATH"] = REPO + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return [*base, "run", "-c", config, *shlex.split(a.mosn_py_args or "")], env


def start_mosn(ctx: Ctx, name: str, config: str, listen_port: int) -> subprocess.Popen:
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


def start_haproxy(ctx: Ctx, name: str, listen_port: int, backend_port: int) -> subprocess.Popen:
    exe = shutil.which("haproxy")
    if not exe:
        raise PathFailed(HAPROXY_HINT)
    cfg = haproxy_config(ctx, name, listen_port, backend_port)
    p = start_service(ctx, name, [exe, "-f", cfg, "-db"], ctx.args.proxy_cpu)
    try:
        wait_port(ctx, p, "haproxy", listen_port, ctx.args.start_timeout)
    except PathFailed:
        stop(ctx, p)
        raise
    return p


# -- measuring -------------------------------------------------------------------------------


def wait_quiet(ctx: Ctx, ours: list[subprocess.Popen]) -> None:
    """Wait (at most --wait-quiet seconds) until processes outside the benchmark use less
    than 20 % of one CPU over a 0.5 s window; the machine may be shared."""
    limit = ctx.args.wait_quiet
    if limit <= 0:
        return
    deadline = time.monotonic() + limit
    told = False
    while True:
        s0 = proc.system_cpu()
        c0 = sum(proc.tree_cpu_seconds(p.pid) for p in ours)
        r0 = resource.getrusage(resource.RUSAGE_SELF)
        time.sleep(0.5)
        r1 = resource.getrusage(resource.RUSAGE_SELF)
        c1 = sum(proc.tree_cpu_seconds(p.pid) for p in ours)
        other = (proc.system_cpu().delta(s0).task["cpu"] - (c1 - c0)
                 - (r1.ru_utime + r1.ru_stime - r0.ru_utime - r0.ru_stime))
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


def measure(ctx: Ctx, scenario: str, path: str, port: int,
            proxy_p: subprocess.Popen | None, backend_p: subprocess.Popen) -> dict:
    a = ctx.args
    if a.warmup > 0:
        cmd, bound = load_cmd(ctx, scenario, port, a.warmup)
        warm = run_tool(ctx, cmd, bound)
        ok = warm.get("completed", warm.get("received_bytes", 0))
        if not ok:
            raise PathFailed(f"warm-up through {path} got no successful response: "
                             + json.dumps({k: warm.get(k) for k in (
                                 "sent", "errors", "statuses", "timeouts", "lost",
                                 "protocol_errors", "sent_bytes", "received_bytes")
                                 if k in warm}))
    wait_quiet(ctx, [p for p in (proxy_p, backend_p) if p is not None])
    cmd, bound = load_cmd(ctx, scenario, port, a.duration)
    px0 = proc.tree_cpu_split(proxy_p.pid) if proxy_p else None
    b0 = proc.tree_cpu_seconds(backend_p.pid)
    sys0 = proc.system_cpu()
    ru_kids0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    ru_self0 = resource.getrusage(resource.RUSAGE_SELF)
    w0 = time.monotonic()
    res = run_tool(ctx, cmd, bound)
    wall = time.monotonic() - w0
    ru_kids1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    ru_self1 = resource.getrusage(resource.RUSAGE_SELF)
    sysd = proc.system_cpu().delta(sys0)
    if proxy_p is not None and proxy_p.poll() is not None:
        raise PathFailed(f"{path}: the proxy exited (code {proxy_p.returncode}) during the run"
                         f"\n{log_tail(ctx, proxy_p)}")
    px1 = proc.tree_cpu_split(proxy_p.pid) if proxy_p else None
    b1 = proc.tree_cpu_seconds(backend_p.pid)
    elapsed = res["elapsed_s"]
    # the load process was reaped inside the window: its whole CPU (start-up included)
    load_total = ((ru_kids1.ru_utime + ru_kids1.ru_stime)
                  - (ru_kids0.ru_utime + ru_kids0.ru_stime))
    me = (ru_self1.ru_utime + ru_self1.ru_stime) - (ru_self0.ru_utime + ru_self0.ru_stime)
    px_user = (px1[0] - px0[0]) if proxy_p else 0.0
    px_sys = (px1[1] - px0[1]) if proxy_p else 0.0
    ours = load_total + me + (b1 - b0) + px_user + px_sys
    row = {"path": path, "load": res, "wall_s": round(wall, 3),
           "backend_cpu_s": round(b1 - b0, 3),
           "load_core_util": round((res["load_cpu_s"] + (b1 - b0)) / elapsed, 2),
           # CPU used during the window by processes that are not part of the benchmark
           "other_cpu_s": round(max(0.0, sysd.task["cpu"] - ours), 2),
           "softirq_s": round(sysd.softirq["cpu"], 2),
           "steal_s": round(sysd.steal["cpu"], 2)}
    if proxy_p is not None:
        cpu = px_user + px_sys
        row["proxy_cpu_s"] = round(cpu, 3)
        row["proxy_user_s"] = round(px_user, 3)
        row["proxy_sys_s"] = round(px_sys, 3)
        row["proxy_sys_pct"] = round(100 * px_sys / cpu) if cpu > 0 else None
        row["proxy_util"] = round(cpu / elapsed, 2)
    if scenario == "tcp-bulk":
        mb = res["received_bytes"] / 1e6
        row.update(mb_per_s=res["mb_per_s"], mb=round(mb, 1),
                   errors=res["errors"])
        if proxy_p is not None:
            row["mb_per_proxy_cpu_s"] = round(mb / cpu, 1) if cpu > 0 else None
    else:
        row.update(rps=res["rps"], p50_ms=res["p50_ms"], p99_ms=res["p99_ms"],
                   completed=res["completed"], errors=res["errors"])
        if proxy_p is not None:
            row["req_per_proxy_cpu_s"] = round(res["completed"] / cpu, 1) if cpu > 0 else None
    return row


def run_path(ctx: Ctx, scenario: str, path: str, backend_port: int,
             backend_p: subprocess.Popen) -> dict:
    ctx.log(f"{scenario}: {path} ...")
    proxy_p = None
    tag = f"{scenario}-{path}".replace(" ", "_").replace("(", "").replace(")", "")
    try:
        if path == "direct":
            port = backend_port
        elif path == "haproxy":
            port = free_port()
            proxy_p = start_haproxy(ctx, tag, port, backend_port)
        elif path.startswith("mosn-py"):
            if scenario == "bolt":
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
    ctx.log(f"{scenario}: {path} done: " + ", ".join(
        f"{k}={row[k]}" for k in ("rps", "mb_per_s", "p99_ms", "errors", "proxy_cpu_s")
        if k in row))
    return row


def scenario_paths(scenario: str, wanted: list[str]) -> list[str]:
    out = []
    for w in wanted:
        if w == "direct":
            out.append("direct")
        elif w == "mosn-py":
            out += ["mosn-py (bolt)", "mosn-py (tcp)"] if scenario == "bolt" else ["mosn-py (tcp)"]
        elif w == "mosn-py-bolt" and scenario == "bolt":
            out.append("mosn-py (bolt)")
        elif w == "mosn-py-tcp":
            out.append("mosn-py (tcp)")
        elif w == "haproxy":
            out.append("haproxy")
    return out


def run_scenario(ctx: Ctx, scenario: str) -> dict:
    backend_port = free_port()
    if scenario == "bolt":
        cmd = [ctx.python, os.path.join(HERE, "bolt_backend.py"), "--port", str(backend_port)]
        name = "bolt_backend"
    else:
        cmd = [ctx.python, os.path.join(HERE, "tcp_echo.py"), "--port", str(backend_port)]
        name = "tcp_echo"
    backend_p = start_service(ctx, f"{scenario}-{name}", cmd, ctx.args.load_cpu)
    rounds: list[list[dict]] = []
    try:
        wait_port(ctx, backend_p, name, backend_port, 10.0)
        # Paths take turns, round after round (A B C A B C ...), so a slow spell of the
        # machine hits every path alike; the table shows each path's median over rounds.
        for _rnd in range(ctx.args.rounds):
            rows: list[dict] = []
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


def median_rows(rounds: list[list[dict]]) -> list[dict]:
    """One row per path: the median of every numeric field over the rounds (a path that
    failed in any round keeps that round's error row)."""
    order: list[str] = []
    by_path: dict[str, list[dict]] = {}
    for rows in rounds:
        for r in rows:
            if r["path"] not in by_path:
                order.append(r["path"])
            by_path.setdefault(r["path"], []).append(r)
    out = []
    for path in order:
        runs = by_path[path]
        failed = [r for r in runs if "error" in r]
        if failed:
            out.append(failed[0])
            continue
        merged = dict(runs[len(runs) // 2])
        for k, v in runs[0].items():
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                vals = sorted(r[k] for r in runs if isinstance(r.get(k), (int, float)))
                if vals:
                    merged[k] = vals[len(vals) // 2]
        merged["rounds"] = len(runs)
        out.append(merged)
    return out


def add_ratios(scenario: str, rows: list[dict]) -> None:
    key = "mb_per_s" if scenario == "tcp-bulk" else "rps"
    eff = "mb_per_proxy_cpu_s" if scenario == "tcp-bulk" else "req_per_proxy_cpu_s"
    by = {r["path"]: r for r in rows if "error" not in r}
    direct = by.get("direct")
    hap = by.get("haproxy")
    for r in by.values():
        if direct and direct.get(key):
            r["vs_direct"] = round(r[key] / direct[key], 3)
        if hap and r.get(eff) and hap.get(eff):
            r["eff_vs_haproxy"] = round(r[eff] / hap[eff], 3)
        if hap and hap.get(key) and r is not direct:
            r["tput_vs_haproxy"] = round(r[key] / hap[key], 3)


# -- output ----------------------------------------------------------------------------------


def fmt(v, nd: int = 0) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    if isinstance(v, float) or nd:
        return f"{v:,.{nd}f}"
    return f"{v:,}"


def table(result: dict) -> str:
    sc = result["scenario"]
    bulk = sc == "tcp-bulk"
    if bulk:
        head = ["path", "MB/s", "x direct", "MB moved", "errors", "proxy CPU s", "proxy util",
                "proxy sys %", "MB / proxy CPU-s", "x haproxy (MB/CPU-s)", "load-core util",
                "other CPU s"]
    else:
        head = ["path", "req/s", "x direct", "p50 ms", "p99 ms", "errors", "proxy CPU s",
                "proxy util", "proxy sys %", "req / proxy CPU-s", "x haproxy (req/CPU-s)",
                "load-core util", "other CPU s"]
    out = ["| " + " | ".join(head) + " |", "|" + "|".join(
        ["---"] + ["---:"] * (len(head) - 1)) + "|"]
    for r in result["rows"]:
        if "error" in r:
            first = r["error"].splitlines()[0]
            out.append(f"| {r['path']} | failed: {first} |" + " |" * (len(head) - 2))
            continue
        if bulk:
            cells = [r["path"], fmt(r["mb_per_s"], 1), fmt(r.get("vs_direct"), 2),
                     fmt(r["mb"], 0), fmt(r["errors"]), fmt(r.get("proxy_cpu_s"), 2),
                     fmt(r.get("proxy_util"), 2), fmt(r.get("proxy_sys_pct")),
                     fmt(r.get("mb_per_proxy_cpu_s"), 0),
                     fmt(r.get("eff_vs_haproxy"), 2), fmt(r["load_core_util"], 2),
                     fmt(r["other_cpu_s"], 2)]
        else:
            cells = [r["path"], fmt(r["rps"], 0), fmt(r.get("vs_direct"), 2),
                     fmt(r["p50_ms"], 3), fmt(r["p99_ms"], 3), fmt(r["errors"]),
                     fmt(r.get("proxy_cpu_s"), 2), fmt(r.get("proxy_util"), 2),
                     fmt(r.get("proxy_sys_pct")), fmt(r.get("req_per_proxy_cpu_s"), 0),
                     fmt(r.get("eff_vs_haproxy"), 2),
                     fmt(r["load_core_util"], 2), fmt(r["other_cpu_s"], 2)]
        out.append("| " + " | ".join(cells) + " |")
    notes = []
    for r in result["rows"]:
        if r["path"].startswith("mosn-py") and "tput_vs_haproxy" in r:
            unit = "MB/s" if bulk else "req/s"
            notes.append(f"- {r['path']} vs haproxy: throughput x{r['tput_vs_haproxy']:.2f} "
                         f"({unit}), efficiency x{r.get('eff_vs_haproxy', float('nan')):.2f} "
                         f"(per proxy CPU-second)")
    noisy = [r for r in result["rows"] if "error" not in r
             and r["other_cpu_s"] > 0.1 * r["wall_s"]]
    if noisy:
        notes.append("- warning: other processes used CPU during " + ", ".join(
            f"{r['path']} ({r['other_cpu_s']:.2f} CPU-s in {r['wall_s']:.1f} s)"
            for r in noisy) + "; those numbers are disturbed, re-run on a quiet machine")
    errs = [r for r in result["rows"] if "error" in r and "\n" in r["error"]]
    for r in errs:
        notes.append(f"- {r['path']} failed:\n```\n{r['error']}\n```")
    return "\n".join(out + (["", *notes] if notes else []))


def _rounds_note(a: argparse.Namespace) -> str:
    return f"; median of {a.rounds} rounds, paths taking turns" if a.rounds > 1 else ""


def describe_scenario(ctx: Ctx, sc: str) -> str:
    a = ctx.args
    if sc == "bolt":
        return (f"Bolt v1, anthunder `hello` request template (428 B), response 93 B; "
                f"{a.connections} connections x {a.inflight} in flight; "
                f"<= {a.requests:,} requests or {a.duration:g} s per path" + _rounds_note(a))
    if sc == "tcp-small":
        return (f"{a.msg_size}-byte ping-pong over {a.connections} connections (1 in flight "
                f"each); <= {a.requests:,} messages or {a.duration:g} s per path" + _rounds_note(a))
    return (f"bulk echo: {a.bulk_connections} connection(s) stream <= {a.bulk_mb:g} MB "
            f"(MB = 10^6 B) through and read it back, <= {a.duration:g} s per path"
            + _rounds_note(a))


def environment(ctx: Ctx) -> dict:
    env = {"date": datetime.datetime.now().isoformat(timespec="seconds"),
           "kernel": platform.release(), "python": platform.python_version(),
           "cpus": os.cpu_count(), "proxy_cpu": ctx.args.proxy_cpu,
           "load_cpu": ctx.args.load_cpu}
    try:
        with open("/proc/cpuinfo") as f:
            env["cpu_model"] = next((ln.split(":", 1)[1].strip() for ln in f
                                     if ln.startswith("model name")), "?")
    except OSError:
        pass
    exe = shutil.which("haproxy")
    if exe:
        try:
            env["haproxy"] = subprocess.run([exe, "-v"], capture_output=True, text=True,
                                            timeout=5).stdout.splitlines()[0]
        except (OSError, subprocess.SubprocessError, IndexError):
            pass
    try:
        env["mosn_py_rev"] = subprocess.run(
            ["git", "-C", REPO, "rev-parse", "--short", "HEAD"], capture_output=True,
            text=True, timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        pass
    mcmd, _ = mosn_command(ctx, "CONFIG.yaml")
    env["mosn_py_cmd"] = shlex.join(mcmd)
    return env


def report(ctx: Ctx, env: dict, results: list[dict]) -> str:
    a = ctx.args
    lines = [
        "## mosn-py benchmark",
        "",
        f"{env['date']}, {env.get('cpu_model', '?')}, {env['cpus']} CPUs, "
        f"Linux {env['kernel']}, Python {env['python']}"
        + (f", {env['haproxy']}" if env.get("haproxy") else ", haproxy not installed"),
        "",
        f"Pinning (taskset -c): proxy under test (mosn-py / haproxy) on CPU {a.proxy_cpu}; "
        f"load generator, backend and orchestrator on CPU {a.load_cpu}. "
        f"Warm-up {a.warmup:g} s per path before measuring. "
        + (f"All benchmark processes run under `nice -n {a.nice}`. " if a.nice else "")
        + f"mosn-py: `{env['mosn_py_cmd']}` (rev {env.get('mosn_py_rev', '?')}); "
        "haproxy: `mode tcp`, nbthread 1, no logging.",
    ]
    for res in results:
        lines += ["", f"### {res['scenario']}", "", describe_scenario(ctx, res["scenario"]),
                  "", table(res)]
    lines += ["", "Columns: `x direct` = throughput / direct throughput; `proxy CPU s` = "
              "user+system CPU seconds of the proxy process tree during the measured load; "
              "`proxy util` = proxy CPU s / elapsed; `proxy sys %` = kernel share of proxy CPU s; "
              "`req / proxy CPU-s` = completed requests / "
              "proxy CPU s; `x haproxy` = that efficiency / haproxy's; `load-core util` = "
              "(load generator + backend CPU s) / elapsed: near 1.00 means the load side, not "
              "the proxy, was the limit; `other CPU s` = CPU time (user+system, all CPUs, "
              "from /proc/stat) "
              "used during the window by processes outside the benchmark: noise."]
    return "\n".join(lines)


# -- main ------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="direct vs mosn-py vs haproxy benchmarks",
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog=__doc__.split("\n\n", 1)[1])
    p.add_argument("--scenarios", default=",".join(SCENARIOS),
                   help="comma list of bolt,tcp-small,tcp-bulk (default: all)")
    p.add_argument("--paths", default="direct,mosn-py,haproxy",
                   help="comma list of direct,mosn-py,mosn-py-bolt,mosn-py-tcp,haproxy")
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
    p.add_argument("--bulk-mb", type=float, default=20_000.0, help="tcp-bulk MB bound per path")
    p.add_argument("--bulk-connections", type=int, default=1)
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
    known = {"direct", "mosn-py", "mosn-py-bolt", "mosn-py-tcp", "haproxy"}
    if set(a.paths) - known:
        p.error(f"unknown path(s) {sorted(set(a.paths) - known)}; choose from {sorted(known)}")
    if a.duration <= 0 or a.requests < 1 or a.connections < 1 or a.inflight < 1:
        p.error("--duration, --requests, --connections and --inflight must be positive")
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
    if "haproxy" in a.paths and not shutil.which("haproxy"):
        print(f"warning: {HAPROXY_HINT}; the haproxy path will be reported as failed",
              file=sys.stderr)
    os.sched_setaffinity(0, {a.load_cpu})  # keep the orchestrator off the proxy's CPU

    def on_term(signum, frame):  # SIGTERM -> same cleanup as Ctrl-C
        raise KeyboardInterrupt

    # SIGINT explicitly too: a shell may start background jobs with SIGINT ignored
    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    tmp = tempfile.mkdtemp(prefix="mosn-bench-")
    ctx = Ctx(a, tmp)
    results: list[dict] = []
    env: dict = {}
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
        print(report(ctx, env, results))
        if a.json_out:
            os.makedirs(os.path.dirname(os.path.abspath(a.json_out)), exist_ok=True)
            with open(a.json_out, "w") as f:
                json.dump({"environment": env, "args": {k: v for k, v in vars(a).items()},
                           "results": results}, f, indent=2)
            print(f"\n(JSON written to {a.json_out})")
    return rc


if __name__ == "__main__":
    sys.exit(main())
