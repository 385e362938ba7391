"""Markdown for the cache scenarios of bench/run.py (redis, memcache).

A cache result is ``{"scenario": NAME, "groups": [GROUP, ...], ...}``; a group is one
(test, pipeline) pair, ``{"test": "get", "pipeline": 16, "rows": [ROW, ...]}``, its rows the
medians over rounds of each path (``report.median_rows``), or ``{"path": ..., "error": ...}``
for a path that could not be measured. Ratios are taken within a group: the same test at
the same pipeline depth, measured seconds apart.
"""

from __future__ import annotations

import argparse
from typing import Any

from report import fmt as _fmt

Row = dict[str, Any]

CACHE_SCENARIOS = ("redis", "memcache")
REFERENCE = "twemproxy"
# mosn-py's efficiency target against twemproxy, per scenario and test (none: not set)
TARGET: dict[str, dict[str, float]] = {"redis": {"get": 0.5, "set": 0.5}}

HEAD = ["test", "-P", "path", "req/s", "x direct", "p50 ms", "p99 ms", "errors",
        "backend cmds / req", "proxy CPU s", "proxy util", "proxy sys %",
        "req / proxy CPU-s", f"x {REFERENCE} (req/CPU-s)", "load-core util", "other CPU s"]


def add_cache_ratios(rows: list[Row]) -> None:
    """Throughput vs direct, and throughput and efficiency vs twemproxy, within one group."""
    by = {r["path"]: r for r in rows if "error" not in r}
    direct = by.get("direct")
    ref = by.get(REFERENCE)
    for r in by.values():
        if direct and direct.get("rps"):
            r["vs_direct"] = round(r["rps"] / direct["rps"], 3)
        if ref and r.get("req_per_proxy_cpu_s") and ref.get("req_per_proxy_cpu_s"):
            r["eff_vs_ref"] = round(r["req_per_proxy_cpu_s"] / ref["req_per_proxy_cpu_s"], 3)
        if ref and ref.get("rps") and r is not direct:
            r["tput_vs_ref"] = round(r["rps"] / ref["rps"], 3)


def target(scenario: str, test: str) -> float | None:
    return TARGET.get(scenario, {}).get(test)


def _test_name(scenario: str, test: str, mget_keys: int | None = None) -> str:
    if scenario == "redis" and test == "mget":
        return f"MGET ({mget_keys} keys)" if mget_keys else "MGET"
    return test.upper() if scenario == "redis" else test


def _cells(name: str, pipeline: int, r: Row) -> list[str]:
    if "error" in r:
        first = r["error"].splitlines()[0]
        return [name, str(pipeline), r["path"], f"failed: {first}"] + [""] * (len(HEAD) - 4)
    return [name, str(pipeline), r["path"], _fmt(r["rps"], 0), _fmt(r.get("vs_direct"), 2),
            _fmt(r["p50_ms"], 3), _fmt(r["p99_ms"], 3), _fmt(r["errors"]),
            _fmt(r.get("backend_cmds_per_req"), 2), _fmt(r.get("proxy_cpu_s"), 2),
            _fmt(r.get("proxy_util"), 2), _fmt(r.get("proxy_sys_pct")),
            _fmt(r.get("req_per_proxy_cpu_s"), 0), _fmt(r.get("eff_vs_ref"), 2),
            _fmt(r["load_core_util"], 2), _fmt(r["other_cpu_s"], 2)]


def _mosn(rows: list[Row]) -> Row | None:
    return next((r for r in rows if r["path"].startswith("mosn-py")), None)


def summary(scenario: str, groups: list[Row], mget_keys: int | None = None) -> list[str]:
    """The key figure per group: mosn-py vs twemproxy per proxy CPU-second, and the target."""
    out = ["| test | -P | mosn-py req / CPU-s | twemproxy req / CPU-s | efficiency x twemproxy "
           "| throughput x twemproxy | target | met |", "|---|---:|---:|---:|---:|---:|---|---|"]
    for g in groups:
        rows = g["rows"]
        m = _mosn(rows)
        ref = next((r for r in rows if r["path"] == REFERENCE), None)
        tgt = target(scenario, g["test"])
        name = _test_name(scenario, g["test"], mget_keys)
        m_ok = m is not None and "error" not in m
        ref_ok = ref is not None and "error" not in ref
        eff = m.get("eff_vs_ref") if m_ok and m is not None else None
        if tgt is None:
            met = "no target"
        elif eff is None:
            met = "not evaluated (" + ("mosn-py failed" if not m_ok else
                                       f"{REFERENCE} row missing") + ")"
        else:
            met = "met" if eff >= tgt else "**not met**"
        out.append("| " + " | ".join([
            name, str(g["pipeline"]),
            _fmt(m.get("req_per_proxy_cpu_s"), 0) if m_ok and m is not None else "-",
            _fmt(ref.get("req_per_proxy_cpu_s"), 0) if ref_ok and ref is not None else "-",
            f"**{eff:.2f}**" if eff is not None else "-",
            _fmt(m.get("tput_vs_ref"), 2) if m_ok and m is not None else "-",
            f">= {tgt:.2f}x" if tgt is not None else "-", met]) + " |")
    return out


def table(result: Row, mget_keys: int | None = None) -> str:
    sc = result["scenario"]
    out = ["| " + " | ".join(HEAD) + " |",
           "|" + "|".join(["---", "---:", "---"] + ["---:"] * (len(HEAD) - 3)) + "|"]
    notes: list[str] = []
    noisy: list[str] = []
    for g in result["groups"]:
        name = _test_name(sc, g["test"], mget_keys)
        for r in g["rows"]:
            out.append("| " + " | ".join(_cells(name, g["pipeline"], r)) + " |")
            if "error" not in r and r.get("errors"):
                detail = r.get("error_detail") or r["errors"]
                notes.append(f"- errors, {name} -P {g['pipeline']} through {r['path']} "
                             f"(largest count of any round): {detail}")
            if "error" not in r and r["other_cpu_s"] > 0.1 * r["wall_s"]:
                noisy.append(f"{name} -P {g['pipeline']} {r['path']} ({r['other_cpu_s']:.2f} "
                             f"CPU-s in {r['wall_s']:.1f} s)")
            if "error" in r and "\n" in r["error"]:
                notes.append(f"- {name} -P {g['pipeline']} through {r['path']} failed:\n```\n"
                             f"{r['error']}\n```")
    if noisy:
        notes.append("- warning: other processes used CPU during " + ", ".join(noisy)
                     + "; those numbers are disturbed, re-run on a quiet machine")
    lines = [*out, "", f"Key figure, mosn-py vs {REFERENCE} (same test and pipeline depth, "
             "same run):", "", *summary(sc, result["groups"], mget_keys)]
    if notes:
        lines += ["", *notes]
    return "\n".join(lines)


def _rounds_note(a: argparse.Namespace) -> str:
    return f"; median of {a.rounds} rounds, paths taking turns" if a.rounds > 1 else ""


def describe(a: argparse.Namespace, sc: str) -> str:
    common = (f"{a.cache_clients} connections; keys `key:%012d` drawn at random from "
              f"{a.keyspace:,} (all stored before measuring), {a.value_size}-byte values; "
              f"each test at each pipeline depth ({', '.join(map(str, a.pipelines))}) is its "
              f"own measurement with a fresh proxy" + _rounds_note(a))
    if sc == "redis":
        return (f"redis-benchmark (one thread, `--csv`), one test per run: `-t get`, `-t set`, "
                f"and `MGET` with {a.mget_keys} random keys (redis-benchmark 7.0 has no mget "
                f"test); {common}; `-n` sized from the warm-up rate to last "
                f"~{a.duration:g} s (<= {a.requests:,}). One redis-server "
                "(`--save \"\" --appendonly no`) on the load core. Efficiency target: "
                "mosn-py GET and SET >= 0.5x twemproxy at every pipeline depth.")
    return (f"memcache_load.py (bench/, one process, uvloop), memcached text protocol, "
            f"`get KEY` / `set KEY 0 0 {a.value_size}`; `-P N`: N requests per write, the "
            f"next batch once all N are answered; {common}; <= {a.requests:,} requests or "
            f"{a.duration:g} s per run. One memcached (`-t 1`) on the load core. No target "
            "set; twemproxy is the reference peer.")


def peers_line(env: Row, scenarios: list[str]) -> str:
    """The cache part of the report header: the peers and the tool versions."""
    parts = ["twemproxy (nutcracker): one pool, ketama, fnv1a_64, auto_eject_hosts false, "
             "one server; mosn-py: one `redis`/`memcache` listener -> one-server cluster, "
             "1 worker"]
    tools = ", ".join(str(env[k]) for k in ("redis-server", "redis-benchmark", "nutcracker",
                                            "memcached") if env.get(k))
    return "; ".join(parts) + "." + (f" Versions: {tools}." if tools else "")


COLUMNS = ("Cache columns: `backend cmds / req` = commands the backend counted during the "
           "window (redis `total_commands_processed`, memcached `cmd_get + cmd_set`) / "
           "completed requests: 1.00 = every request reached the server as one command; "
           "`errors` (redis) is 0 for a completed run, since redis-benchmark stops at the "
           "first error reply (the row then fails with its message); memcache: error "
           "replies + timeouts + requests lost on a closed connection; "
           "`x twemproxy` = req / proxy CPU-s over twemproxy's in the same group.")


def is_cache(result: Row) -> bool:
    return "groups" in result

