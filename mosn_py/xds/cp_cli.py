"""``mosn-py control-plane``: serve YAML resources files to xDS clients (ADS, SotW).

    mosn-py control-plane -c RESOURCES.yaml [--listen 127.0.0.1:18000]
        [--node ID=FILE ...] [--node-cluster CLUSTER=FILE ...]
        [--poll-interval 0.2] [--ready-file PATH]

Each file is a proxy config (the same YAML ``mosn-py run`` reads, checked by the same
loader) rendered to Envoy resources. A client gets the file its node id names
(``--node``), else the one its node cluster names (``--node-cluster``), else ``-c``. Files
are polled; a change is pushed to every client it applies to, and a change that does not
load or is not consistent is logged and the previous snapshot kept. An invalid file at
start-up exits 2 with every error on stderr (as ``mosn-py validate`` does). SIGTERM or
SIGINT ends every stream and exits 0. The default file's ``log`` section sets the logging.

Until ``cli.py`` wires the subcommand: ``python -m mosn_py.xds.cp_cli -c FILE ...``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import signal
import sys
from collections.abc import Callable, Sequence
from typing import Any

from mosn_py import __version__
from mosn_py.config.values import parse_address
from mosn_py.errors import ConfigError
from mosn_py.observability.log import log_event, setup_logging
from mosn_py.xds.snapshot import Resources

log = logging.getLogger("mosn_py.xds.control_plane")

EXIT_CONFIG = 2
DEFAULT_LISTEN = "127.0.0.1:18000"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-c",
        "--config",
        required=True,
        metavar="RESOURCES.yaml",
        help="resources for every node no --node/--node-cluster names",
    )
    parser.add_argument(
        "--listen",
        default=DEFAULT_LISTEN,
        metavar="HOST:PORT",
        help=f"gRPC address to serve ADS on (default {DEFAULT_LISTEN}; port 0 = any free port)",
    )
    parser.add_argument(
        "--node",
        action="append",
        default=[],
        metavar="ID=FILE",
        help="resources for the node with this id (repeatable)",
    )
    parser.add_argument(
        "--node-cluster",
        action="append",
        default=[],
        metavar="CLUSTER=FILE",
        help="resources for nodes of this node.cluster (repeatable; --node wins)",
    )
    parser.add_argument(
        "--poll-interval",
        type=float,
        default=0.2,
        metavar="SECONDS",
        help="how often the files are checked for changes (default 0.2)",
    )
    parser.add_argument(
        "--ready-file",
        metavar="PATH",
        help="write {pid, addresses: {xds: HOST:PORT}} here once serving",
    )


def _pairs(values: Sequence[str], flag: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for v in values:
        key, sep, path = v.partition("=")
        if not sep or not key or not path:
            raise ValueError(f"{flag} {v!r}: expected KEY=FILE")
        out[key] = path
    return out


def make_loader() -> Callable[[str], Resources]:
    """``path -> render(load_config(path))`` with the built-in filters and translators
    (the registries ``mosn-py run`` uses)."""
    from mosn_py.config.loader import load_config
    from mosn_py.extensions import default_registries
    from mosn_py.xds.render import render

    reg = default_registries()
    filters = reg.stream_filters.as_dict()
    translations = {}
    for name, cls in reg.translators.as_dict().items():
        down, _, up = name.partition("->")
        translations[(down, up)] = cls

    def load(path: str) -> Resources:
        config = load_config(path, known_filters=filters, translations=translations)
        try:
            return render(config)
        except ValueError as e:  # options a protobuf Struct cannot carry
            raise ConfigError(str(e)) from None

    return load


def _log_settings(path: str) -> tuple[str, str]:
    from mosn_py.config.loader import load_config

    try:
        cfg = load_config(path)
    except ConfigError:
        return "info", "json"
    return cfg.log.level, cfg.log.format


def run(args: argparse.Namespace) -> int:
    from mosn_py.xds.server import ControlPlane
    from mosn_py.xds.snapshot import Profiles

    try:
        parse_address(args.listen)
        profiles = Profiles(
            default=args.config,
            by_id=_pairs(args.node, "--node"),
            by_cluster=_pairs(args.node_cluster, "--node-cluster"),
        )
        if args.poll_interval <= 0:
            raise ValueError(f"--poll-interval {args.poll_interval}: must be > 0")
    except ValueError as e:
        print(f"control-plane: {e}", file=sys.stderr)
        return EXIT_CONFIG
    cp = ControlPlane(profiles, make_loader(), poll_interval=args.poll_interval)
    failed = cp.load()
    for path, err in failed.items():  # the format of ``mosn-py validate``
        n = len(err.errors)
        print(f"{path}: invalid config ({n} error{'s' * (n != 1)})", file=sys.stderr)
        for line in err.errors:
            print(f"  {line}", file=sys.stderr)
    if failed:
        return EXIT_CONFIG
    level, fmt = _log_settings(args.config)
    setup_logging(level, fmt)
    return asyncio.run(_serve(cp, args))


async def _serve(cp: Any, args: argparse.Namespace) -> int:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        address = await cp.start(args.listen)
    except RuntimeError as e:  # grpc: "Failed to bind to address ..."
        log_event(log, logging.ERROR, "cannot start", listen=args.listen, error=str(e))
        return 1
    for s in cp.sources:
        snap = cp.cache.get(s.path)
        log_event(
            log,
            logging.INFO,
            "snapshot published",
            file=s.path,
            versions=snap.versions(),
            resources=snap.counts(),
        )
    log_event(
        log,
        logging.INFO,
        "ready",
        version=__version__,
        xds=address,
        files=[s.path for s in cp.sources],
    )
    if args.ready_file:
        tmp = args.ready_file + ".tmp"
        with open(tmp, "w") as f:
            json.dump({"pid": os.getpid(), "addresses": {"xds": address}}, f)
        os.replace(tmp, args.ready_file)
    await stop.wait()
    log_event(log, logging.INFO, "stopping", streams=cp.servicer.stream_count)
    await cp.stop()
    log_event(log, logging.INFO, "stopped")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="mosn-py control-plane", description="xDS v3 ADS (State of the World) server"
    )
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
