"""``mosn-py``: the command line.

    mosn-py run [-c CONFIG.yaml] [--loop uvloop|asyncio] [--ready-file PATH]
    mosn-py validate -c CONFIG.yaml
    mosn-py control-plane -c RESOURCES.yaml [--listen 127.0.0.1:18000]
    mosn-py iptables apply|clean [...]     (docs/sidecar.md)
    mosn-py certs ca|workload [...]        (docs/sidecar.md)
    mosn-py --version

``run`` without ``-c`` serves the bundled default config (a working demo). On SIGTERM or
SIGINT it stops accepting, lets in-flight requests finish (up to ``drain_timeout``) and exits
0. An invalid config makes ``run`` and ``validate`` exit 2 with every error on stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import signal
import socket
import sys
from importlib.resources import files
from pathlib import Path
from typing import Any

from mosn_py import __version__
from mosn_py.config.model import Config
from mosn_py.errors import ConfigError
from mosn_py.observability.log import log_event, setup_logging
from mosn_py.server.loop import LOOPS, new_event_loop

log = logging.getLogger("mosn_py.cli")

EXIT_CONFIG = 2


def default_config_path() -> str:
    return str(files("mosn_py") / "defaults" / "default.yaml")


def _load(path: str | None) -> Config:
    from mosn_py.config.loader import load_config
    from mosn_py.extensions import default_registries

    reg = default_registries()
    return load_config(
        path or default_config_path(),
        known_filters=reg.stream_filters.as_dict(),
        translations=translator_pairs(reg),
    )


def translator_pairs(reg: Any) -> dict[tuple[str, str], Any]:
    """(downstream, upstream) -> translator class, from the registry's "down->up" names."""
    out: dict[tuple[str, str], Any] = {}
    for name, cls in reg.translators.as_dict().items():
        down, _, up = name.partition("->")
        out[(down, up)] = cls
    return out


def _print_config_errors(path: str, e: ConfigError) -> None:
    print(f"{path}: invalid config ({len(e.errors)} error{'s' * (len(e.errors) != 1)})",
          file=sys.stderr)
    for line in e.errors:
        print(f"  {line}", file=sys.stderr)


def cmd_validate(args: argparse.Namespace) -> int:
    try:
        cfg = _load(args.config)
    except ConfigError as e:
        _print_config_errors(args.config, e)
        return EXIT_CONFIG
    print(
        f"{args.config}: ok ({len(cfg.listeners)} listeners, {len(cfg.routes)} routes, "
        f"{len(cfg.clusters)} clusters)"
    )
    return 0


def cmd_control_plane(args: argparse.Namespace) -> int:
    from mosn_py.xds import cp_cli

    return cp_cli.run(args)


def cmd_run(args: argparse.Namespace) -> int:
    path = args.config or default_config_path()
    try:
        cfg = _load(path)
    except ConfigError as e:
        _print_config_errors(path, e)
        return EXIT_CONFIG
    setup_logging(cfg.log.level, cfg.log.format)
    log_event(log, logging.INFO, "starting", version=__version__, config=path,
              loop=args.loop, workers=cfg.workers)
    if cfg.workers > 1:
        return _run_workers(cfg, args)
    return _serve(cfg, args, sockets=None)


def _serve(cfg: Config, args: argparse.Namespace, sockets: dict[str, socket.socket] | None,
           worker: int | None = None) -> int:
    from mosn_py.extensions import default_registries
    from mosn_py.server.runtime import Runtime

    loop = new_event_loop(args.loop)
    asyncio.set_event_loop(loop)
    stop = asyncio.Event()

    async def main() -> int:
        rt = Runtime(cfg, default_registries(), loop, sockets=sockets)
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        try:
            await rt.start()
        except (OSError, ConfigError) as e:
            log_event(log, logging.ERROR, "cannot start", error=str(e))
            rt.close()
            return 1
        xds_task = None
        if cfg.xds is not None:
            xds_task = await _start_xds(rt, cfg, args.config or default_config_path())
        addrs = rt.bound_addresses()
        _tune_gc()
        log_event(log, logging.INFO, "ready", worker=worker, **addrs)
        if args.ready_file and worker in (None, 0):
            tmp = args.ready_file + ".tmp"
            with open(tmp, "w") as f:
                # The pid to signal: with workers, the supervising parent.
                pid = os.getppid() if worker is not None else os.getpid()
                json.dump({"pid": pid, "addresses": addrs}, f)
            os.replace(tmp, args.ready_file)
        await stop.wait()
        if xds_task is not None:
            xds_task.cancel()
            try:
                await xds_task  # closes the gRPC channel before the loop goes
            except asyncio.CancelledError:
                pass
        log_event(log, logging.INFO, "draining", timeout=cfg.drain_timeout, in_flight=rt.in_flight)
        await rt.drain(cfg.drain_timeout)
        await rt.shutdown()
        log_event(log, logging.INFO, "stopped")
        return 0

    try:
        return loop.run_until_complete(main())
    finally:
        loop.close()


async def _start_xds(rt: Any, cfg: Config, path: str) -> asyncio.Task[None]:
    """Start the ADS client; wait (up to ``xds.initial_fetch_timeout``) for the first
    listeners and clusters, so that ``ready`` lists the dynamic listeners too."""
    import yaml

    from mosn_py.extensions import default_registries
    from mosn_py.xds.assemble import Assembler
    from mosn_py.xds.client import XdsClient

    assert cfg.xds is not None
    with open(path, encoding="utf-8") as f:
        static = yaml.safe_load(f)
    reg = default_registries()
    assembler = Assembler(
        static, known_filters=reg.stream_filters.as_dict(), translations=translator_pairs(reg)
    )
    client = XdsClient(cfg.xds, assembler, rt.apply, rt.loop)
    rt.xds = client
    task: asyncio.Task[None] = rt.loop.create_task(client.run())
    try:
        await asyncio.wait_for(client.synced.wait(), cfg.xds.initial_fetch_timeout)
    except TimeoutError:
        log_event(log, logging.WARNING, "xds: initial fetch timed out; serving what is there",
                  server=str(cfg.xds.address), warming=client.warming)
    return task


def _tune_gc() -> None:
    """Move everything built at start-up out of the collector's sight, and collect the young
    generation less often: a proxy allocates a few short-lived objects per request, almost
    none of them in reference cycles, so frequent gen-0 passes are pure overhead."""
    import gc

    gc.collect()
    gc.freeze()
    gen0, gen1, gen2 = gc.get_threshold()
    gc.set_threshold(max(gen0, 50_000), gen1, gen2)


def _run_workers(cfg: Config, args: argparse.Namespace) -> int:
    """Bind every listener once, fork ``workers`` processes that all accept on them."""
    from mosn_py.server.listener import bind_socket

    try:
        sockets = {lc.name: bind_socket(lc) for lc in cfg.listeners
                   if not lc.api_listener and lc.bind_to_port}
    except OSError as e:
        log_event(log, logging.ERROR, "cannot start", error=str(e))
        return 1
    children: list[int] = []
    for i in range(cfg.workers):
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                # Only worker 0 runs the admin server and the demo upstreams.
                wcfg = cfg if i == 0 else _without_singletons(cfg)
                code = _serve(wcfg, args, sockets, worker=i)
            finally:
                os._exit(code)
        children.append(pid)
    for s in sockets.values():
        s.close()

    stopping = False

    def forward(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True
        for pid in children:
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    status = 0
    alive = set(children)
    while alive:
        try:
            pid, st = os.wait()
        except ChildProcessError:
            break
        except InterruptedError:
            continue
        alive.discard(pid)
        code = os.waitstatus_to_exitcode(st)
        if code != 0:
            status = 1
            if not stopping:
                # A worker died on its own (e.g. could not start): stop the others rather
                # than serve with fewer workers than configured.
                log_event(log, logging.ERROR, "worker exited; stopping all workers",
                          pid=pid, exit_code=code)
                forward(signal.SIGTERM, None)
    return status


def _without_singletons(cfg: Config) -> Config:
    from dataclasses import replace

    return replace(cfg, admin=None, demo_upstreams=())


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="mosn-py", description="mosn-py proxy data plane")
    p.add_argument("--version", action="version", version=f"mosn-py {__version__}")
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run", help="run the proxy")
    r.add_argument("-c", "--config", help="YAML config (default: the bundled demo config)")
    r.add_argument("--loop", choices=LOOPS, default=os.environ.get("MOSN_PY_LOOP", "uvloop"),
                   help="event loop (default uvloop; env MOSN_PY_LOOP)")
    r.add_argument("--ready-file", help="write the bound addresses as JSON here once serving")
    r.set_defaults(func=cmd_run)
    v = sub.add_parser("validate", help="check a config file; exit 2 on errors")
    v.add_argument("-c", "--config", required=True)
    v.set_defaults(func=cmd_validate)
    cp = sub.add_parser(
        "control-plane", help="serve a config file over xDS v3 (ADS) to proxies and gRPC clients"
    )
    cp.set_defaults(func=cmd_control_plane)
    from mosn_py.xds import cp_cli

    cp_cli.add_arguments(cp)
    from mosn_py.sidecar import certs_cli, iptables_cli

    ipt = sub.add_parser(
        "iptables", help="install or remove the sidecar's transparent-interception rules"
    )
    iptables_cli.add_arguments(ipt)
    ipt.set_defaults(func=iptables_cli.run)
    certs = sub.add_parser("certs", help="make a demo CA and SPIFFE workload certificates")
    certs_cli.add_arguments(certs)
    certs.set_defaults(func=certs_cli.run)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if getattr(args, "config", None) and not Path(args.config).exists():
        print(f"{args.config}: no such file", file=sys.stderr)
        return EXIT_CONFIG
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
