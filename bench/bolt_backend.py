#!/usr/bin/env python3
"""Fast Bolt v1 benchmark backend (uvloop, raw asyncio.Protocol).

Answers every RPC request (type 1, cmdcode 1) with one fixed success response: the
captured anthunder ``hello`` response with the request's id patched in at bytes 5..8.
Heartbeats (cmdcode 0) get a 20-byte heartbeat ack; oneway requests (type 2) get nothing.
Only the 22-byte request header is parsed; everything after it is skipped by its lengths.
All responses produced from one read are written with a single ``transport.write``.

  python bench/bolt_backend.py --port 12300
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import bolt_frames
from common import install_uvloop, ready_line, require_loopback

_MAX_FRAME = 16 * 1024 * 1024


class BoltBackend(asyncio.Protocol):
    __slots__ = ("transport", "buf", "prefix", "suffix", "requests")

    def __init__(self, response: bytes, stats: dict) -> None:
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.prefix, self.suffix = bolt_frames.split_at_request_id(response)
        self.requests = stats

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        buf = self.buf
        if buf:
            buf += data
            view = buf
        else:
            view = data
        n = len(view)
        pos = 0
        out: list[bytes] = []
        prefix = self.prefix
        suffix = self.suffix
        pack = bolt_frames.REQUEST_ID.pack
        unpack = bolt_frames.REQUEST_HOT.unpack_from
        count = 0
        while n - pos >= 22:
            if view[pos] != 1:
                self._bad(f"proto byte {view[pos]:#x} (only Bolt v1 is served)")
                return
            typ = view[pos + 1]
            cmd, rid, cl, hl, ctl = unpack(view, pos)
            size = 22 + cl + hl + ctl
            if size > _MAX_FRAME:
                self._bad(f"frame of {size} bytes")
                return
            end = pos + size
            if end > n:
                break
            pos = end
            if typ == 1:
                if cmd == 1:
                    out.append(prefix)
                    out.append(pack(rid))
                    out.append(suffix)
                    count += 1
                elif cmd == 0:
                    out.append(bolt_frames.heartbeat_ack(rid, view[pos - size + 9]))
            elif typ == 2:
                count += 1  # oneway: no answer
            else:
                self._bad(f"type byte {typ:#x} from a client")
                return
        if buf:
            del buf[:pos]
        elif pos < n:
            buf += view[pos:]
        if out:
            self.transport.write(b"".join(out))  # type: ignore[union-attr]
        self.requests["n"] += count

    def _bad(self, why: str) -> None:
        print(f"bolt_backend: closing connection: {why}", file=sys.stderr, flush=True)
        self.transport.abort()  # type: ignore[union-attr]


async def serve(host: str, port: int, response: bytes) -> None:
    loop = asyncio.get_running_loop()
    stats = {"n": 0}
    server = await loop.create_server(lambda: BoltBackend(response, stats), host, port,
                                      backlog=1024, reuse_address=True)
    real_port = server.sockets[0].getsockname()[1]
    ready_line("bolt_backend", host, real_port)
    stop = loop.create_future()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, lambda: stop.done() or stop.set_result(None))
    try:
        await stop
    finally:
        server.close()
        print(f"bolt_backend: served {stats['n']} requests", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=12300, help="0 = pick one (printed on stdout)")
    p.add_argument("--response", help="hex file with a Bolt v1 response template "
                   "(default: anthunder hello response)")
    a = p.parse_args(argv)
    host = require_loopback(a.host)
    response = bolt_frames.load_hex_file(a.response) if a.response else bolt_frames.HELLO_RESPONSE
    bolt_frames.check_response(response)
    install_uvloop()
    asyncio.run(serve(host, a.port, response))
    return 0


if __name__ == "__main__":
    sys.exit(main())
