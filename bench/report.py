"""Results of bench/run.py: medians over rounds, ratios, and the markdown tables.

A result is ``{"scenario": NAME, "rows": [ROW, ...], ...}`` where each row is the dict
``run.measure`` built (medians over rounds), or ``{"path": ..., "error": TEXT}`` for a path
that could not be measured.
"""

from __future__ import annotations

import argparse
import math
from typing import Any

Row = dict[str, Any]

HTTP_SCENARIOS = ("http1", "h2")
# the peer each scenario's efficiency ratio divides by, and mosn-py's target against it
REFERENCE = {"http1": "haproxy", "h2": "nghttpx"}
TARGET = {"http1": 0.4, "h2": 0.3}


def reference(scenario: str) -> str:
    """The peer whose efficiency a scenario's ratio column divides by."""
    return REFERENCE.get(scenario, "haproxy")


# -- merging rounds, ratios ----------------------------------------------------------------


ERROR_KEYS = ("errors", "non_2xx", "socket_errors")
PER_ROUND = ("rps", "mb_per_s", "p99_ms", "errors", "proxy_cpu_s", "req_per_proxy_cpu_s",
             "mb_per_proxy_cpu_s", "other_cpu_s")


def median_rows(rounds: list[list[Row]]) -> list[Row]:
    """One row per path: the median of every numeric field over the rounds, except the
    error counts, which show the largest count of any round (a median would hide errors
    that happened in one round only). A path that failed in any round keeps that round's
    error row."""
    order: list[str] = []
    by_path: dict[str, list[Row]] = {}
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
                    merged[k] = vals[-1] if k in ERROR_KEYS else vals[len(vals) // 2]
        details = [f"round {i + 1}: {r['error_detail']}" for i, r in enumerate(runs)
                   if r.get("error_detail")]
        if details:
            merged["error_detail"] = "; ".join(details)
        merged["rounds"] = len(runs)
        if len(runs) > 1:  # the spread behind each median, for the JSON
            merged["per_round"] = {k: [r.get(k) for r in runs] for k in PER_ROUND if k in runs[0]}
        out.append(merged)
    return out


def add_ratios(scenario: str, rows: list[Row]) -> None:
    key = "mb_per_s" if scenario == "tcp-bulk" else "rps"
    eff = "mb_per_proxy_cpu_s" if scenario == "tcp-bulk" else "req_per_proxy_cpu_s"
    by = {r["path"]: r for r in rows if "error" not in r}
    direct = by.get("direct")
    ref = by.get(reference(scenario))
    for r in by.values():
        if direct and direct.get(key):
            r["vs_direct"] = round(r[key] / direct[key], 3)
        if ref and r.get(eff) and ref.get(eff):
            r["eff_vs_ref"] = round(r[eff] / ref[eff], 3)
        if ref and ref.get(key) and r is not direct:
            r["tput_vs_ref"] = round(r[key] / ref[key], 3)


# -- markdown --------------------------------------------------------------------------------


def fmt(v: object, nd: int = 0) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    if isinstance(v, (int, float)):
        if isinstance(v, float) or nd:
            return f"{v:,.{nd}f}"
        return f"{v:,}"
    return str(v)


def _head(sc: str, ref: str) -> list[str]:
    if sc == "tcp-bulk":
        return ["path", "MB/s", "x direct", "MB moved", "errors", "proxy CPU s", "proxy util",
                "proxy sys %", "MB / proxy CPU-s", f"x {ref} (MB/CPU-s)", "load-core util",
                "other CPU s"]
    errors = ["non-2xx", "socket errors"] if sc in HTTP_SCENARIOS else ["errors"]
    return ["path", "req/s", "x direct", "p50 ms", "p99 ms", *errors, "proxy CPU s",
            "proxy util", "proxy sys %", "req / proxy CPU-s", f"x {ref} (req/CPU-s)",
            "load-core util", "other CPU s"]


def _cells(sc: str, r: Row) -> list[str]:
    if sc == "tcp-bulk":
        return [r["path"], fmt(r["mb_per_s"], 1), fmt(r.get("vs_direct"), 2),
                fmt(r["mb"], 0), fmt(r["errors"]), fmt(r.get("proxy_cpu_s"), 2),
                fmt(r.get("proxy_util"), 2), fmt(r.get("proxy_sys_pct")),
                fmt(r.get("mb_per_proxy_cpu_s"), 0), fmt(r.get("eff_vs_ref"), 2),
                fmt(r["load_core_util"], 2), fmt(r["other_cpu_s"], 2)]
    if sc in HTTP_SCENARIOS:
        errors = [fmt(r["non_2xx"]), fmt(r["socket_errors"])]
    else:
        errors = [fmt(r["errors"])]
    return [r["path"], fmt(r["rps"], 0), fmt(r.get("vs_direct"), 2),
            fmt(r["p50_ms"], 3), fmt(r["p99_ms"], 3), *errors,
            fmt(r.get("proxy_cpu_s"), 2), fmt(r.get("proxy_util"), 2),
            fmt(r.get("proxy_sys_pct")), fmt(r.get("req_per_proxy_cpu_s"), 0),
            fmt(r.get("eff_vs_ref"), 2), fmt(r["load_core_util"], 2),
            fmt(r["other_cpu_s"], 2)]


def _ratio_notes(sc: str, rows: list[Row]) -> list[str]:
    ref = reference(sc)
    unit = "MB/s" if sc == "tcp-bulk" else "req/s"
    eff_key = "mb_per_proxy_cpu_s" if sc == "tcp-bulk" else "req_per_proxy_cpu_s"
    ok = {r["path"]: r for r in rows if "error" not in r}
    notes = []
    for r in ok.values():
        if not r["path"].startswith("mosn-py"):
            continue
        if "tput_vs_ref" not in r:
            if sc in TARGET:
                notes.append(f"- {r['path']} vs {ref}: no ratio, the {ref} row is missing; "
                             f"target >= {TARGET[sc]:.2f}x not evaluated")
            continue
        eff = r.get("eff_vs_ref", math.nan)
        line = (f"- {r['path']} vs {ref}: throughput x{r['tput_vs_ref']:.2f} ({unit}), "
                f"efficiency x{eff:.2f} (per proxy CPU-second)")
        if sc in TARGET:
            met = "met" if eff >= TARGET[sc] else "**not met**"
            line += f"; target >= {TARGET[sc]:.2f}x: {met}"
        others = [(p, o) for p, o in ok.items() if p not in (r["path"], ref, "direct")
                  and not p.startswith("mosn-py") and o.get(eff_key) and r.get(eff_key)]
        if others:
            line += "; efficiency vs " + ", ".join(
                f"{p} x{r[eff_key] / o[eff_key]:.2f}" for p, o in others)
        notes.append(line)
    return notes


def table(result: Row) -> str:
    sc = result["scenario"]
    head = _head(sc, reference(sc))
    out = ["| " + " | ".join(head) + " |", "|" + "|".join(
        ["---"] + ["---:"] * (len(head) - 1)) + "|"]
    for r in result["rows"]:
        if "error" in r:
            first = r["error"].splitlines()[0]
            out.append(f"| {r['path']} | failed: {first} |" + " |" * (len(head) - 2))
            continue
        out.append("| " + " | ".join(_cells(sc, r)) + " |")
    notes = _ratio_notes(sc, result["rows"])
    for r in result["rows"]:
        if "error" not in r and r.get("errors"):
            notes.append(f"- errors through {r['path']} (largest count of any round in the "
                         f"table): {r.get('error_detail') or r['errors']}")
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


def describe_scenario(a: argparse.Namespace, sc: str) -> str:
    if sc == "bolt":
        return (f"Bolt v1, anthunder `hello` request template (428 B), response 93 B; "
                f"{a.connections} connections x {a.inflight} in flight; "
                f"<= {a.requests:,} requests or {a.duration:g} s per path" + _rounds_note(a))
    if sc == "tcp-small":
        return (f"{a.msg_size}-byte ping-pong over {a.connections} connections (1 in flight "
                f"each); <= {a.requests:,} messages or {a.duration:g} s per path"
                + _rounds_note(a))
    if sc == "http1":
        return (f"wrk, 1 thread, {a.http_connections} keep-alive HTTP/1.1 connections, "
                f"`GET /` answered `200` with a 37-byte body by nginx; "
                f"{math.ceil(a.duration)} s per path (wrk `-d`)" + _rounds_note(a)
                + f". Efficiency target: mosn-py >= {TARGET[sc]}x {reference(sc)}.")
    if sc == "h2":
        return (f"h2load, 1 thread, h2c prior knowledge, {a.h2_clients} connections x "
                f"{a.h2_streams} concurrent streams, `GET /` answered `200` with a 37-byte "
                f"body by nginx; `-n` sized from the warm-up rate to last ~{a.duration:g} s "
                f"(<= {a.requests:,})" + _rounds_note(a)
                + f". Efficiency target: mosn-py >= {TARGET[sc]}x {reference(sc)}.")
    return (f"bulk echo: {a.bulk_connections} connection(s) stream <= {a.bulk_mb:g} MB "
            f"(MB = 10^6 B) through and read it back, <= {a.duration:g} s per path"
            + _rounds_note(a))


def _peers_line(env: Row, scenarios: list[str]) -> str:
    parts = []
    cache = [s for s in scenarios if s in ("redis", "memcache")]
    scenarios = [s for s in scenarios if s not in cache]
    tcp = [s for s in scenarios if s not in HTTP_SCENARIOS]
    http = [s for s in scenarios if s in HTTP_SCENARIOS]
    if tcp:
        parts.append("haproxy `mode tcp` (bolt, tcp), nbthread 1, no logging")
    if http:
        parts.append("haproxy `mode http`, nbthread 1, no logging"
                     + (" (h2: `proto h2` on the bind and server lines)" if "h2" in http else ""))
    if "http1" in http:
        parts.append("nginx: 1 worker, `proxy_pass` to an upstream with `keepalive`")
    if "h2" in http:
        parts.append("nghttpx `--workers=1`, h2c frontend, `proto=h2` backend")
    if http:
        parts.append("backend for http1/h2: nginx, 1 worker, `return 200`")
    tools = ", ".join(str(env[k]) for k in ("wrk", "h2load", "nginx", "nghttpx") if env.get(k))
    line = "; ".join(parts) + "." + (f" Versions: {tools}." if tools else "") if parts else ""
    if cache:
        import cache_report

        line = (line + " " if line else "") + cache_report.peers_line(env, cache)
    return line


def report(a: argparse.Namespace, env: Row, results: list[Row]) -> str:
    scenarios = [r["scenario"] for r in results]
    lines = [
        "## mosn-py benchmark",
        "",
        f"{env['date']}, {env.get('cpu_model', '?')}, {env['cpus']} CPUs, "
        f"Linux {env['kernel']}, Python {env['python']}"
        + (f", {env['haproxy']}" if env.get("haproxy") else ", haproxy not installed"),
        "",
        f"Pinning (taskset -c): proxy under test on CPU {a.proxy_cpu}; "
        f"load generator, backend and orchestrator on CPU {a.load_cpu}. "
        f"Warm-up {a.warmup:g} s per path before measuring. "
        + (f"All benchmark processes run under `nice -n {a.nice}`. " if a.nice else "")
        + f"mosn-py: `{env['mosn_py_cmd']}` (rev {env.get('mosn_py_rev', '?')}); "
        + _peers_line(env, scenarios),
    ]
    for res in results:
        if "groups" in res:  # redis, memcache: one row group per test and pipeline depth
            import cache_report  # it imports this module: import it when needed

            lines += ["", f"### {res['scenario']}", "", cache_report.describe(a, res["scenario"]),
                      "", cache_report.table(res, a.mget_keys)]
            continue
        lines += ["", f"### {res['scenario']}", "", describe_scenario(a, res["scenario"]),
                  "", table(res)]
    if any("groups" in res for res in results):
        import cache_report

        lines += ["", cache_report.COLUMNS]
    lines += ["", "Columns: `x direct` = throughput / direct throughput; `proxy CPU s` = "
              "user+system CPU seconds of the proxy process tree during the measured load; "
              "`proxy util` = proxy CPU s / elapsed; `proxy sys %` = kernel share of proxy "
              "CPU s; `req / proxy CPU-s` = completed requests (http: 2xx responses) / "
              "proxy CPU s; `x PEER` = that efficiency / the reference peer's (haproxy; "
              "nghttpx for h2); `non-2xx`, `socket errors` (http): error responses, and "
              "connect/read/write failures, timeouts, reset streams, requests never answered "
              "(largest count of any round); `load-core util` = "
              "(load generator + backend CPU s) / elapsed: near 1.00 means the load side, not "
              "the proxy, was the limit; `other CPU s` = CPU time (user+system, from "
              "/proc/PID/stat) used during the window by processes outside the benchmark's "
              "process tree: noise."]
    return "\n".join(lines)
