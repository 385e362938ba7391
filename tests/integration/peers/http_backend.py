"""A real HTTP/1.1 origin server for the tests (the stdlib's http.server, threaded).

    python http_backend.py PORT [NAME] [--bind HOST] [--tls CERT KEY [CLIENT_CA]]

With ``--tls`` it serves HTTPS (ALPN http/1.1); with CLIENT_CA it requires a client
certificate signed by it, and ``/echo`` reports the client's identity as ``peer``.

Prints ``READY <port>``. Endpoints:
- ``GET /echo...``      200, JSON of method, path, headers and the server NAME
- ``POST/PUT /echo``    200, JSON including the sha256 and length of the request body
                         (read with Content-Length or chunked)
- ``GET /bytes/N``      N bytes (deterministic pattern), Content-Length
- ``GET /chunked/N``    N bytes as chunked transfer coding, in 16 KiB chunks
- ``GET /status/N``     status N, empty body
- ``GET /slow/S``       sleeps S seconds, then 200
- ``HEAD`` of any path   like GET without the body
"""

from __future__ import annotations

import hashlib
import json
import ssl
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

NAME = sys.argv[2] if len(sys.argv) > 2 and not sys.argv[2].startswith("-") else "backend"


def pattern(n: int) -> bytes:
    block = bytes(range(256)) * 64
    out = block * (n // len(block) + 1)
    return out[:n]


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:
        pass

    def _body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            out = b""
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return out
                out += self.rfile.read(size)
                self.rfile.readline()
        n = int(self.headers.get("Content-Length", "0") or 0)
        return self.rfile.read(n) if n else b""

    def _send(self, status: int, body: bytes, ctype: str = "application/json",
              head_only: bool = False) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Backend", NAME)
        self.end_headers()
        if not head_only:
            self.wfile.write(body)

    def _handle(self, head_only: bool = False) -> None:
        path = self.path.split("?")[0]
        body = self._body() if self.command in ("POST", "PUT") else b""
        if path.startswith("/bytes/"):
            return self._send(200, pattern(int(path[7:])), "application/octet-stream", head_only)
        if path.startswith("/status/"):
            return self._send(int(path[8:]), b"", "text/plain", head_only)
        if path.startswith("/slow/"):
            time.sleep(float(path[6:]))
            return self._send(200, b"slow done", "text/plain", head_only)
        if path.startswith("/chunked/"):
            n = int(path[9:])
            data = pattern(n)
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.send_header("X-Backend", NAME)
            self.end_headers()
            if not head_only:
                for i in range(0, n, 16384):
                    piece = data[i:i + 16384]
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
                self.wfile.write(b"0\r\n\r\n")
            return None
        info = {
            "server": NAME,
            "method": self.command,
            "path": self.path,
            "headers": [[k.lower(), v] for k, v in self.headers.items()],
            "body_len": len(body),
            "body_sha256": hashlib.sha256(body).hexdigest(),
            "peer": self._peer(),
        }
        return self._send(200, json.dumps(info).encode(), "application/json", head_only)

    def _peer(self) -> str:
        getpeercert = getattr(self.connection, "getpeercert", None)
        cert: Any = getpeercert() if getpeercert is not None else None
        if not cert:
            return ""
        for kind, value in cert.get("subjectAltName", ()):
            if kind == "URI":
                return str(value)
        return str(dict(x[0] for x in cert["subject"]).get("commonName", ""))

    def do_GET(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def do_PUT(self) -> None:
        self._handle()

    def do_HEAD(self) -> None:
        self._handle(head_only=True)


def main() -> None:
    port = int(sys.argv[1])
    ThreadingHTTPServer.request_queue_size = 256  # the default 5 drops SYNs under a burst
    host = sys.argv[sys.argv.index("--bind") + 1] if "--bind" in sys.argv else "127.0.0.1"
    srv = ThreadingHTTPServer((host, port), Handler)
    srv.daemon_threads = True
    if "--tls" in sys.argv:
        i = sys.argv.index("--tls")
        files = sys.argv[i + 1:]
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(files[0], files[1])
        ctx.set_alpn_protocols(["http/1.1"])
        if len(files) > 2:
            ctx.load_verify_locations(files[2])
            ctx.verify_mode = ssl.CERT_REQUIRED
        srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    print(f"READY {port}", flush=True)
    srv.serve_forever()


if __name__ == "__main__":
    main()
