#!/usr/bin/env python3
"""TCP echo server for benchmarks (uvloop, raw asyncio.Protocol, with backpressure).

Every byte received is written back on the same connection. When the write buffer of a
connection rises above the transport's high-water mark, reading pauses until it drains,
so a bulk stream cannot make the server buffer without bound. EOF from the client is
answered with EOF after the echoed bytes (half-close aware).

  python bench/tcp_echo.py --port 12400
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from common import install_uvloop, ready_line, require_loopback


class Echo(asyncio.Protocol):
    __slots__ = ("transport", "stats")

    def __init__(self, stats: dict) -> None:
        self.transport: asyncio.Transport | None = None
        self.stats = stats

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.transport.set_write_buffer_limits(high=256 * 1024)  # type: ignore[union-attr]

    def data_received(self, data: bytes) -> None:
        self.transport.write(data)  # type: ignore[union-attr]
        self.stats["bytes"] += len(data)

    def eof_received(self) -> bool:
        if self.transport is not None and self.transport.can_write_eof():
            self.transport.write_eof()
        return True  # keep the socket until the peer closes too

    def pause_writing(self) -> None:
        self.transport.pause_reading()  # type: ignore[union-attr]

    def resume_writing(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.resume_reading()


async def serve(host: str, port: int) -> None:
    loop = asyncio.get_running_loop()
    stats = {"bytes": 0}
    server = await loop.create_server(lambda: Echo(stats), host, port, backlog=1024,
                                      reuse_address=True)
    ready_line("tcp_echo", host, server.sockets[0].getsockname()[1])
    stop = loop.create_future()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, lambda: stop.done() or stop.set_result(None))
    try:
        await stop
    finally:
        server.close()
        print(f"tcp_echo: echoed {stats['bytes']} bytes", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=12400, help="0 = pick one (printed on stdout)")
    a = p.parse_args(argv)
    host = require_loopback(a.host)
    install_uvloop()
    asyncio.run(serve(host, a.port))
    return 0


if __name__ == "__main__":
    sys.exit(main())
