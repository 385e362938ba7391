"""Intercepted connections: recover where they were going, work out what they speak, and hand
them to the listener configured for that (Envoy's ``use_original_dst`` + listener filters).

A ``use_original_dst`` listener (the sidecar's 15001 outbound or 15006 inbound port) serves
every connection first with a ``Dispatcher``:

1. the original destination (``tcp_proxy.original_destination``): ``SO_ORIGINAL_DST``
   (``IP6T_SO_ORIGINAL_DST`` on IPv6) after an iptables REDIRECT, else the local address for
   a TPROXY connection (accepted by a ``transparent: true`` listener);
2. the candidates: the ``bind_to_port: false`` listeners at exactly that ip:port, else at
   ``0.0.0.0``/``[::]`` with that port;
3. when the candidates all speak ``tcp`` the connection is handed over at once; otherwise
   the first bytes are read (nothing is consumed) and matched against each candidate's codec
   (``Codec.match``: HTTP/1.x, the HTTP/2 preface, Bolt, RESP, memcached); a TLS ClientHello
   is recognised too (its SNI and ALPN are logged) and goes to a ``tcp`` candidate, since the
   application terminates that TLS itself. No bytes within ``sniff_timeout`` means a
   server-first protocol (MySQL, SMTP...): ``tcp``;
4. no candidate fits: the listener's own ``cluster`` (usually ``type: original_dst``, a
   passthrough to where the connection was going).

The hand-off swaps the transport's protocol (``transport.set_protocol``) and replays the bytes
read, so it works the same on a TLS transport: a listener with ``tls`` (the inbound side of
mutual TLS) sniffs the decrypted bytes.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from mosn_py.codecs import tls_hello
from mosn_py.codecs.base import MatchResult
from mosn_py.config.model import Address
from mosn_py.filters.network.tcp_proxy import make_tcp_protocol, original_destination
from mosn_py.observability.log import log_event

if TYPE_CHECKING:
    from mosn_py.server.listener import ListenerContext

log = logging.getLogger("mosn_py.dispatch")

SNIFF_LIMIT = 16 << 10  # bytes read at most before deciding (a TLS record fits)


class Dispatcher(asyncio.BufferedProtocol):
    """The first protocol of a connection on a ``use_original_dst`` listener."""

    __slots__ = (
        "ctx",
        "transport",
        "_buf",
        "_view",
        "_read",
        "_timer",
        "_candidates",
        "_dst",
        "_done",
        "hello",
    )

    def __init__(self, ctx: ListenerContext) -> None:
        self.ctx = ctx
        self.transport: asyncio.Transport | None = None
        self._buf: bytearray | None = None  # allocated at the first read: most connections
        self._view = memoryview(b"")  # are handed over before reading anything
        self._read = 0
        self._timer: asyncio.TimerHandle | None = None
        self._candidates: list[Any] = []
        self._dst: Address | None = None
        self._done = False
        self.hello: tls_hello.ClientHello | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = t = transport  # type: ignore[assignment]
        ctx = self.ctx
        ctx.stats.cx_total += 1
        sock = t.get_extra_info("socket")
        dst = original_destination(sock) if sock is not None else None
        if dst is None or _dialled_directly(sock, dst, ctx.config.address.port):
            # Dialled directly: a passthrough would connect back to this very listener.
            log_event(log, logging.DEBUG, "not an intercepted connection; closing",
                      listener=ctx.config.name, destination=str(dst))
            self._done = True
            t.close()
            return
        self._dst = dst
        self._candidates = ctx.runtime.virtual_listeners(dst)
        if not self._candidates or all(c.config.protocol == "tcp" for c in self._candidates):
            self._hand_off(self._candidates[0] if self._candidates else None, "tcp")
            return
        self._timer = ctx.loop.call_later(ctx.config.sniff_timeout, self._sniff_timeout)

    def get_buffer(self, sizehint: int) -> memoryview:
        if self._buf is None:
            self._buf = bytearray(SNIFF_LIMIT)
            self._view = memoryview(self._buf)
        return self._view[self._read :]

    def buffer_updated(self, nbytes: int) -> None:
        self._read += nbytes
        if self._done:
            return
        data = self._view[: self._read]
        target, protocol = self._decide(data)
        if target is MatchResult.NEED_MORE and self._read < SNIFF_LIMIT:
            return
        self._hand_off(None if target is MatchResult.NEED_MORE else target, protocol)

    def _decide(self, data: memoryview) -> tuple[Any, str]:
        """(the candidate to hand to, or None for the passthrough, or NEED_MORE; the
        protocol name for logs)."""
        undecided = False
        for c in self._candidates:
            proto = c.config.protocol
            if proto == "tcp":
                continue
            codecs = c.auto_codecs or (c.codec_cls,)
            for codec in codecs:
                m = codec.match(data) if codec is not None else MatchResult.NO_MATCH
                if m is MatchResult.MATCH:
                    return c, proto
                if m is MatchResult.NEED_MORE:
                    undecided = True
        hello = tls_hello.parse(data)
        if isinstance(hello, tls_hello.ClientHello):
            self.hello = hello
            return self._tcp_candidate(), "tls"
        if hello is MatchResult.NEED_MORE:
            undecided = True
        if undecided:
            return MatchResult.NEED_MORE, ""
        return self._tcp_candidate(), "tcp"

    def _tcp_candidate(self) -> Any:
        for c in self._candidates:
            if c.config.protocol == "tcp":
                return c
        return None

    def _sniff_timeout(self) -> None:
        self._timer = None
        if not self._done:
            self._hand_off(self._tcp_candidate(), "tcp")

    def _hand_off(self, target: Any, protocol: str) -> None:
        """Give the connection to ``target`` (a virtual listener's context), or to this
        listener's own tcp passthrough; replay what was read."""
        self._done = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        t = self.transport
        if t is None or t.is_closing():
            return
        ctx = self.ctx
        dest_ctx = target if target is not None else ctx
        factory: Callable[[Any], asyncio.BaseProtocol] = (
            ctx.runtime.protocol_factory(target.config) if target is not None
            else make_tcp_protocol  # this listener's own cluster: the passthrough
        )
        if log.isEnabledFor(logging.DEBUG):  # every intercepted connection passes here
            log_event(
                log, logging.DEBUG, "intercepted connection", listener=ctx.config.name,
                destination=str(self._dst), protocol=protocol, to=dest_ctx.config.name,
                sni=self.hello.server_name if self.hello else None,
            )
        proto = factory(dest_ctx)
        t.set_protocol(proto)
        proto.connection_made(t)
        if self._read:
            _replay(proto, bytes(self._view[: self._read]))
        self._view.release()

    def eof_received(self) -> bool | None:
        if not self._done:
            # The client said all it had to say before we could tell what it speaks.
            self._hand_off(self._tcp_candidate(), "tcp")
            proto = self.transport.get_protocol() if self.transport is not None else None
            if proto is not None and proto is not self:
                return proto.eof_received()  # type: ignore[attr-defined,no-any-return]
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self._done = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None


def _dialled_directly(sock: Any, dst: Address, port: int) -> bool:
    """A connection made to the capture port itself (not redirected): its "original"
    destination is the very address it was accepted on."""
    if dst.port != port:
        return False
    try:
        host, local_port = sock.getsockname()[:2]
    except OSError:
        return True
    return bool(local_port == port and Address(str(host), int(local_port)) == dst)


def _replay(proto: asyncio.BaseProtocol, data: bytes) -> None:
    if isinstance(proto, asyncio.BufferedProtocol):
        view = memoryview(data)
        while view:
            buf = memoryview(proto.get_buffer(len(view)))
            n = min(len(buf), len(view))
            buf[:n] = view[:n]
            proto.buffer_updated(n)
            view = view[n:]
    else:
        proto.data_received(data)  # type: ignore[attr-defined]


def make_dispatch_protocol(ctx: ListenerContext) -> Dispatcher:
    return Dispatcher(ctx)
