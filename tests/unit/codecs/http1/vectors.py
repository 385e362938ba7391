"""Golden HTTP/1.x vectors and the shared feed harness (STYLE 2.7, h11 ``tr()``).

Every vector is written by hand as a bytes literal, one wire line per source line, copied
from what real clients and servers send (curl 8.x, Firefox, Chrome's WebSocket handshake
from RFC 6455 §1.2, ApacheBench, nginx, Go net/http, Python's http.server). The expected
events are written by hand too; nothing here comes from our encoder.

Events are compared *normalized* (``norm``): consecutive DataFrames of one stream are
joined, so a vector gives the same list fed whole, byte by byte or split anywhere.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from mosn_py.codecs.base import (
    NEED_DATA,
    ConnectionEvent,
    DataFrame,
    Frame,
    HeaderList,
    ResetFrame,
    Role,
    StreamType,
    TrailersFrame,
)
from mosn_py.codecs.http1 import Http1Codec, Http1Extra

Norm = tuple[Any, ...]
CLOSED: Norm = ("closed",)


def H(
    sid: int,
    fields: Sequence[tuple[str, str]],
    *,
    end: bool,
    status: int = 0,
    version: str = "1.1",
    keep_alive: bool = True,
    upgrade: bool = False,
    expect: bool = False,
    interim: bool = False,
) -> Norm:
    """A normalized head: REQUEST when ``status`` is 0, else RESPONSE."""
    kind = StreamType.RESPONSE if status else StreamType.REQUEST
    extra = Http1Extra(version, keep_alive, upgrade, expect, interim)
    return ("head", kind, sid, tuple(fields), status, end, extra)


def D(sid: int, data: bytes, end: bool) -> Norm:
    return ("data", sid, data, end)


def T(sid: int, fields: Sequence[tuple[str, str]]) -> Norm:
    return ("trailers", sid, tuple(fields))


def R(sid: int) -> Norm:
    return ("reset", sid)


def norm(events: Iterable[Any]) -> list[Norm]:
    out: list[Norm] = []
    for ev in events:
        if isinstance(ev, DataFrame):
            assert isinstance(ev.data, bytes), type(ev.data)  # owned, not a view
            prev = out[-1] if out else None
            if prev is not None and prev[0] == "data" and prev[1] == ev.stream_id:
                assert not prev[3], "data after end_stream"
                out[-1] = D(ev.stream_id, prev[2] + ev.data, ev.end_stream)
            else:
                out.append(D(ev.stream_id, bytes(ev.data), ev.end_stream))
        elif isinstance(ev, Frame):
            assert ev.protocol == "http1"
            assert isinstance(ev.headers, HeaderList)
            assert ev.body == b""
            out.append(
                (
                    "head",
                    ev.stream_type,
                    ev.request_id,
                    ev.headers.items_all(),
                    ev.status,
                    ev.end_stream,
                    ev.extra,
                )
            )
        elif isinstance(ev, TrailersFrame):
            out.append(T(ev.stream_id, ev.trailers.items_all()))
        elif isinstance(ev, ResetFrame):
            out.append(R(ev.stream_id))
        elif ev is ConnectionEvent.CLOSED:
            out.append(CLOSED)
        else:  # pragma: no cover
            raise AssertionError(f"unexpected event {ev!r}")
    return out


# --- the feed harness ------------------------------------------------------------------------


def drain(codec: Http1Codec) -> list[Any]:
    """Pull events until NEED_DATA or CLOSED (included)."""
    out: list[Any] = []
    while True:
        ev = codec.next_event()
        if ev is NEED_DATA:
            return out
        out.append(ev)
        if ev is ConnectionEvent.CLOSED:
            return out


def request(method: str, path: str = "/", *extra: tuple[str, str], rid: int = 0) -> Frame:
    fields = [(":method", method), (":scheme", "http"), (":authority", "a"), (":path", path)]
    return Frame(StreamType.REQUEST, rid, HeaderList([*fields, *extra]), protocol="http1")


def client(*sent: Frame) -> Http1Codec:
    """A CLIENT codec that has sent ``sent`` (ids 1, 2, ... unless a frame has one)."""
    codec = Http1Codec(Role.CLIENT)
    for i, frame in enumerate(sent, 1):
        codec.send(frame, frame.request_id or i)
    return codec


@dataclass(frozen=True)
class Vector:
    name: str
    role: Role  # the role that decodes ``wire``
    wire: bytes
    expected: list[Norm]
    sent: tuple[Frame, ...] = ()  # CLIENT: the requests these are responses to
    eof: bool = False  # feed EOF after the wire
    doc: str = field(default="", compare=False)

    def codec(self) -> Http1Codec:
        return client(*self.sent) if self.role is Role.CLIENT else Http1Codec(Role.SERVER)


def feed(v: Vector, chunks: Iterable[bytes]) -> list[Norm]:
    codec = v.codec()
    events: list[Any] = []
    for chunk in chunks:
        codec.receive_data(chunk)
        events += drain(codec)
    if v.eof:
        codec.receive_data(b"")
        events += drain(codec)
    return norm(events)


def splits(data: bytes) -> Iterator[list[bytes]]:
    """``data`` whole, then cut in two at every offset."""
    yield [data]
    for i in range(1, len(data)):
        yield [data[:i], data[i:]]


def bytewise(data: bytes) -> list[bytes]:
    return [data[i : i + 1] for i in range(len(data))]


S = Role.SERVER
C = Role.CLIENT


def req_fields(path: str, authority: str, *rest: tuple[str, str], method: str = "GET") -> list[Any]:
    return [
        (":method", method),
        (":scheme", "http"),
        (":authority", authority),
        (":path", path),
        *rest,
    ]


GET = request("GET")


def __getattr__(name: str) -> Any:
    """``VECTORS``, ``REQUESTS`` and ``RESPONSES`` live in the golden modules (loaded lazily:
    they import this harness)."""
    if name in ("VECTORS", "REQUESTS", "RESPONSES"):
        from .golden_requests import REQUESTS
        from .golden_responses import RESPONSES

        return {"VECTORS": REQUESTS + RESPONSES, "REQUESTS": REQUESTS, "RESPONSES": RESPONSES}[name]
    raise AttributeError(name)
