"""The admin API: ``/ready``, ``/metrics`` (Prometheus text), ``/config_dump``, ``/clusters``,
``/listeners``.

It runs the stdlib ``ThreadingHTTPServer`` on its own thread, so a slow scrape never stalls
the data plane's loop. Handlers only *read* runtime state: immutable config snapshots and
integer counters (a counter read while the loop updates it is at worst one event old).
Loopback by default; bind elsewhere only on purpose (there is no authentication).
"""

from __future__ import annotations

import dataclasses
import enum
import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any, cast

from mosn_py.admin.metrics import render_metrics
from mosn_py.config.model import AdminConfig

if TYPE_CHECKING:
    from mosn_py.server.runtime import Runtime


def _jsonable(obj: Any) -> Any:
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: _jsonable(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(x) for x in obj]
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, enum.Enum):
        return obj.value
    return obj


def config_dump(rt: Runtime) -> dict[str, Any]:
    """The live model; with xDS also each type's version, nonce, resources, last NACK and
    what is still warming."""
    out: dict[str, Any] = {"config": _jsonable(rt.config)}
    if rt.xds is not None:
        out["xds"] = rt.xds.view()
    if rt.retiring:
        out["draining_listeners"] = sorted(lst.config.name for lst in rt.retiring)
    return out


def clusters_view(rt: Runtime) -> dict[str, Any]:
    out = []
    for c in rt.clusters:
        out.append(
            {
                "name": c.name,
                "protocol": c.config.protocol,
                "type": c.config.type,
                "lb": c.config.lb,
                "rq_active": c.rq_active,
                "rq_total": c.rq_total,
                "rq_overflow": c.rq_overflow,
                "hosts": [
                    {
                        "address": str(h.address),
                        "weight": h.weight,
                        "healthy": not h.ejected,
                        "ejections": h.ejections,
                        "rq_active": h.rq_active,
                        "rq_total": h.rq_total,
                        "rq_error": h.rq_error,
                        "cx_active": h.cx_active,
                        "cx_total": h.cx_total,
                        "cx_connect_fail": h.cx_connect_fail,
                    }
                    for h in c.hosts
                ],
            }
        )
    return {"clusters": out}


def listeners_view(rt: Runtime) -> dict[str, Any]:
    out = []
    for lst in rt.listeners:
        host, port = lst.address
        s = lst.ctx.stats
        out.append(
            {
                "name": lst.config.name,
                "protocol": lst.config.protocol,
                "address": f"[{host}]:{port}" if ":" in host else f"{host}:{port}",
                "cx_active": s.cx_active,
                "cx_total": s.cx_total,
                "rq_total": s.rq_total,
                "draining": lst.ctx.draining,
            }
        )
    return {"listeners": out}


class AdminServer:
    def __init__(self, runtime: Runtime, config: AdminConfig) -> None:
        self.runtime = runtime
        self.config = config
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    async def start(self) -> None:
        rt = self.runtime

        class Handler(BaseHTTPRequestHandler):
            server_version = "mosn-py-admin"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _send(self, code: int, body: bytes, ctype: str) -> None:
                self.send_response(code)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            def _json(self, obj: Any) -> None:
                self._send(200, json.dumps(obj, indent=2).encode() + b"\n", "application/json")

            def do_GET(self) -> None:
                path = self.path.split("?", 1)[0]
                if path == "/ready":
                    draining = any(lst.ctx.draining for lst in rt.listeners)
                    if draining:
                        self._send(503, b"DRAINING\n", "text/plain")
                    else:
                        self._send(200, b"LIVE\n", "text/plain")
                elif path == "/metrics":
                    body, ctype = render_metrics(rt)
                    self._send(200, body, ctype)
                elif path == "/config_dump":
                    self._json(config_dump(rt))
                elif path == "/clusters":
                    self._json(clusters_view(rt))
                elif path == "/listeners":
                    self._json(listeners_view(rt))
                elif path == "/":
                    self._send(
                        200,
                        b"/ready /metrics /config_dump /clusters /listeners\n",
                        "text/plain",
                    )
                else:
                    self._send(404, b"not found\n", "text/plain")

            do_HEAD = do_GET

        addr = self.config.address

        class Server(ThreadingHTTPServer):
            address_family = socket.AF_INET6 if ":" in addr.host else socket.AF_INET
            daemon_threads = True

        try:
            self._httpd = Server((addr.host, addr.port), Handler)
        except OSError as e:
            raise OSError(e.errno, f"admin cannot bind {addr}: {e.strerror}") from e
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, name="mosn-py-admin", daemon=True
        )
        self._thread.start()

    @property
    def address_str(self) -> str:
        assert self._httpd is not None
        # An AF_INET/AF_INET6 server's address starts with (host: str, port: int).
        host, port = cast("tuple[str, int]", self._httpd.server_address[:2])
        return f"[{host}]:{port}" if ":" in str(host) else f"{host}:{port}"

    def close(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None
