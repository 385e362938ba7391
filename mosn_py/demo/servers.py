"""The demo servers: a SOFARPC Bolt ``SampleServicePb`` service and a TCP echo.

The Bolt service implements the interop kit's ``sample_service.proto``
(``com.alipay.rpc.common.service.facade.pb.SampleServicePb:1.0``):

- ``hello(SampleServicePbRequest)`` -> ``SampleServicePbResult{result: "hello " + name,
  seq, payload}``, status 0, like anthunder's listener;
- ``fail`` -> respStatus 3 (UNKNOWN), as anthunder answers a raising handler;
- any other service or method -> respStatus 6 (NO_PROCESSOR); heartbeats are acked.
"""

from __future__ import annotations

import asyncio
import logging
from typing import cast

from mosn_py.codecs.base import NEED_DATA, ConnectionEvent, Role, StreamType
from mosn_py.config.model import DemoUpstream
from mosn_py.errors import ProtocolError

log = logging.getLogger("mosn_py.demo")

SERVICE = "com.alipay.rpc.common.service.facade.pb.SampleServicePb:1.0"
STATUS_UNKNOWN = 3
STATUS_NO_PROCESSOR = 6


class _BoltDemo(asyncio.Protocol):
    def __init__(self) -> None:
        from mosn_py.codecs.bolt import BoltCodec

        self.codec = BoltCodec(Role.SERVER)
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast("asyncio.Transport", transport)

    def data_received(self, data: bytes) -> None:
        from mosn_py.demo import sample_service_pb2 as pb

        assert self.transport is not None
        codec = self.codec
        codec.receive_data(data)
        out: list[bytes | bytearray | memoryview] = []
        try:
            while True:
                ev = codec.next_event()
                if ev is NEED_DATA or ev is ConnectionEvent.CLOSED:
                    break
                if ev.is_heartbeat:
                    out += codec.send(codec.heartbeat_reply(ev))
                    continue
                service = ev.headers.get("sofa_head_target_service") or ev.headers.get("service")
                method = ev.headers.get("sofa_head_method_name")
                if service != SERVICE or method not in ("hello", "fail"):
                    resp = ev.evolve(
                        stream_type=StreamType.RESPONSE, status=STATUS_NO_PROCESSOR,
                        headers={}, body=b"", extra=None,
                    )
                elif method == "fail":
                    resp = ev.evolve(
                        stream_type=StreamType.RESPONSE, status=STATUS_UNKNOWN,
                        headers={}, body=b"", extra=None,
                    )
                else:
                    req = pb.SampleServicePbRequest.FromString(bytes(ev.body))
                    result = pb.SampleServicePbResult(
                        result="hello " + req.name, seq=req.seq, payload=req.payload
                    )
                    resp = ev.evolve(
                        stream_type=StreamType.RESPONSE, status=0, headers={},
                        body=result.SerializeToString(), extra=None,
                    )
                if ev.stream_type is not StreamType.ONEWAY:
                    out += codec.send(resp)
        except ProtocolError as e:
            log.warning("demo bolt server: protocol error: %s", e)
            self.transport.close()
        except Exception as e:  # a bad protobuf body from a client: answer, don't die
            log.warning("demo bolt server: bad request: %s", e)
            self.transport.close()
        if out:
            self.transport.writelines(out)


class _Echo(asyncio.Protocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast("asyncio.Transport", transport)

    def data_received(self, data: bytes) -> None:
        self.transport.write(data)

    def eof_received(self) -> bool:
        if self.transport.can_write_eof():
            self.transport.write_eof()
        return True


class DemoServer:
    def __init__(self, cfg: DemoUpstream, server: asyncio.Server) -> None:
        self.name = cfg.name
        self.cfg = cfg
        self._server = server

    @classmethod
    async def start(cls, cfg: DemoUpstream, loop: asyncio.AbstractEventLoop) -> DemoServer:
        factory = {"bolt": _BoltDemo, "tcp": _Echo}[cfg.protocol]
        try:
            server = await loop.create_server(factory, cfg.address.host, cfg.address.port)
        except OSError as e:
            raise OSError(
                e.errno, f"demo upstream {cfg.name!r} cannot bind {cfg.address}: {e.strerror}"
            ) from e
        return cls(cfg, server)

    @property
    def address_str(self) -> str:
        host, port = self._server.sockets[0].getsockname()[:2]
        return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"

    def close(self) -> None:
        self._server.close()
