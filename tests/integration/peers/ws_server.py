"""A real WebSocket server for the tests (the ``websockets`` library).

    python ws_server.py PORT

Prints ``READY <port>``. ``/echo`` echoes every message; ``/push`` sends "tick N" every
0.3 s and reads nothing; ``/reject`` refuses the handshake with 403; any request without
an Upgrade is answered 200 "plain <path>" (so a refused upgrade gets an ordinary response).
"""

from __future__ import annotations

import asyncio
import sys
from http import HTTPStatus
from typing import Any

from websockets.asyncio.server import ServerConnection, serve
from websockets.datastructures import Headers
from websockets.http11 import Request, Response


def plain(status: HTTPStatus, body: str) -> Response:
    data = body.encode()
    headers = Headers([("Content-Type", "text/plain"), ("Content-Length", str(len(data)))])
    return Response(status.value, status.phrase, headers, data)


def process_request(conn: ServerConnection, request: Request) -> Response | None:
    if request.path == "/reject":
        return plain(HTTPStatus.FORBIDDEN, "no websocket for you\n")
    if "upgrade" not in request.headers.get("Connection", "").lower():
        return plain(HTTPStatus.OK, f"plain {request.path}\n")
    return None


async def handler(ws: ServerConnection) -> None:
    path = ws.request.path if ws.request is not None else ""
    if path == "/push":
        for i in range(1000):
            await ws.send(f"tick {i}")
            await asyncio.sleep(0.3)
        return
    async for message in ws:
        await ws.send(message)


async def main(port: int) -> None:
    kw: dict[str, Any] = {"process_request": process_request, "max_size": 8 << 20}
    async with serve(handler, "127.0.0.1", port, **kw):
        print("READY", port, flush=True)
        await asyncio.Future()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1])))
