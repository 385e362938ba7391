"""The sans-IO codec contract, shared by every protocol.

A codec is one object per connection and role. It never touches a socket, a loop or a clock:

    codec = BoltCodec(Role.SERVER, limits=CodecLimits(max_frame_size=16 << 20))
    codec.receive_data(chunk)          # b"" means EOF
    while (ev := codec.next_event()) is not NEED_DATA:
        ...                            # a Frame or a ConnectionEvent
    transport.writelines(codec.send(frame))

``next_event()`` raises ``RemoteProtocolError`` on bad input, after which the codec is in the
``ERROR`` state and every further ``next_event()`` raises again. ``send()`` raises
``LocalProtocolError`` when asked to emit something illegal.

Roles: ``Role.SERVER`` is the downstream side (decodes requests, encodes responses),
``Role.CLIENT`` the upstream side (encodes requests, decodes responses).
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar, Protocol, runtime_checkable

from mosn_py.errors import ProxyStatus


class _NeedData:
    __slots__ = ()

    def __repr__(self) -> str:
        return "NEED_DATA"

    def __reduce__(self) -> str:
        return "NEED_DATA"


NEED_DATA: Any = _NeedData()
"""Sentinel from ``next_event()``: feed more bytes before asking again."""


class Role(enum.Enum):
    SERVER = "server"  # downstream: requests in, responses out
    CLIENT = "client"  # upstream: requests out, responses in


class MatchResult(enum.Enum):
    MATCH = "match"
    NO_MATCH = "no_match"
    NEED_MORE = "need_more"


class StreamType(enum.IntEnum):
    REQUEST = 0
    ONEWAY = 1  # a request that gets no response
    RESPONSE = 2


class PoolMode(enum.Enum):
    MULTIPLEX = "multiplex"  # many streams per connection, matched by request id (Bolt, h2)
    PINGPONG = "pingpong"  # one stream at a time per connection, responses in order (HTTP/1.1)
    PIPELINE = "pipeline"  # many requests in flight per connection, responses in request order


class CodecState(enum.Enum):
    """A codec's receive state: decoding, the peer ended cleanly, or a protocol error."""

    OPEN = "open"
    CLOSED = "closed"
    ERROR = "error"


class ConnectionEvent(enum.Enum):
    """Non-frame events a codec can report."""

    CLOSED = "closed"  # the peer sent EOF at a frame boundary
    GOAWAY = "goaway"  # the peer asked us to stop opening streams


@dataclass(slots=True)
class Frame:
    """One protocol-neutral request or response.

    Treat a frame as immutable: filters and translators build a new one with
    ``frame.evolve(...)``. (It is not ``frozen=True`` only because a frozen dataclass costs
    about five times as much to construct, and a proxy builds several frames per request.)

    ``raw`` holds the exact bytes the frame was decoded from, when it was decoded at all.
    A codec whose ``send()`` gets a frame with ``raw`` set may forward those bytes instead of
    re-encoding; ``evolve()`` clears ``raw`` for any change except the request id, which
    codecs are expected to patch in place (MOSN does the same for Bolt).
    """

    stream_type: StreamType
    request_id: int
    headers: Mapping[str, str]
    body: bytes | memoryview = b""
    status: int = 0  # protocol status on responses (Bolt respStatus, HTTP status ...)
    timeout_ms: int = 0  # <= 0: the frame asks for no timeout
    is_heartbeat: bool = False
    end_stream: bool = True
    trailers: Mapping[str, str] | None = None
    protocol: str = ""
    extra: Any = None  # protocol-specific typed data (e.g. BoltExtra)
    raw: bytes | memoryview | None = field(default=None, repr=False)

    def evolve(self, **changes: Any) -> Frame:
        """A copy with ``changes`` applied; ``raw`` survives only a request-id change."""
        if "raw" not in changes and any(k != "request_id" for k in changes):
            changes["raw"] = None
        return replace(self, **changes)

    def with_request_id(self, request_id: int) -> Frame:
        """The same frame under another id (fast path: ``raw`` kept, the codec patches it)."""
        return Frame(
            self.stream_type,
            request_id,
            self.headers,
            self.body,
            self.status,
            self.timeout_ms,
            self.is_heartbeat,
            self.end_stream,
            self.trailers,
            self.protocol,
            self.extra,
            self.raw,
        )


# --- streaming protocols (HTTP/1.1, HTTP/2, gRPC) -----------------------------------------
#
# A single-frame protocol (Bolt, Redis, memcached) carries a whole request or response in one
# ``Frame``. A streaming protocol emits, per stream: one ``Frame`` with the head (its
# ``headers`` a ``HeaderList``; ``end_stream`` True when no body follows), then zero or more
# ``DataFrame``s, then optionally one ``TrailersFrame``; the last of these has
# ``end_stream=True``. A ``ResetFrame`` ends a stream abnormally at any point. The same
# objects go to ``send()`` in the other direction. ``Frame.request_id`` / ``stream_id`` is
# the codec's stream identifier: the HTTP/2 stream id, or for HTTP/1.1 a per-connection
# counter (1, 2, 3 ... in pipeline order).
#
# HTTP heads use HTTP/2's pseudo-headers in both versions, so translating between them is
# a matter of the codec: requests carry ``:method``, ``:scheme``, ``:authority`` (Host),
# ``:path`` (origin-form target, with the query); responses carry ``:status`` (and
# ``Frame.status`` holds the same number as an int). Pseudo-headers come first.


class HeaderList(Mapping[str, str]):
    """An ordered, multi-valued header list with lower-case names (HTTP semantics).

    As a ``Mapping``, ``h[name]`` / ``h.get(name)`` give the *first* value; ``get_all(name)``
    gives every value in order; ``items_all()`` gives every ``(name, value)`` pair. Values are
    ``str`` decoded as latin-1 (so any octet round-trips; RFC 9110 §5.5 obs-text). Immutable:
    ``with_(...)``/``without(...)`` return new lists.
    """

    __slots__ = ("_items", "_index")

    def __init__(self, items: Iterable[tuple[str, str]] = ()) -> None:
        self._items: tuple[tuple[str, str], ...] = tuple(items)
        self._index: dict[str, str] | None = None

    def _idx(self) -> dict[str, str]:
        idx = self._index
        if idx is None:
            idx = {}
            for k, v in self._items:
                idx.setdefault(k, v)
            self._index = idx
        return idx

    def __getitem__(self, name: str) -> str:
        return self._idx()[name]

    def get(self, name: str, default: Any = None) -> Any:
        return self._idx().get(name, default)

    def __contains__(self, name: object) -> bool:
        return name in self._idx()

    def __iter__(self) -> Iterator[str]:
        return iter(self._idx())

    def __len__(self) -> int:
        return len(self._idx())

    def get_all(self, name: str) -> list[str]:
        return [v for k, v in self._items if k == name]

    def items_all(self) -> tuple[tuple[str, str], ...]:
        return self._items

    def with_(self, *pairs: tuple[str, str]) -> HeaderList:
        """A copy with ``pairs`` appended."""
        return HeaderList(self._items + tuple(pairs))

    def without(self, *names: str) -> HeaderList:
        """A copy without any header named in ``names``."""
        drop = set(names)
        return HeaderList(kv for kv in self._items if kv[0] not in drop)

    def replace(self, name: str, value: str) -> HeaderList:
        """A copy where ``name`` has the single value ``value`` (at its first position)."""
        out: list[tuple[str, str]] = []
        done = False
        for k, v in self._items:
            if k == name:
                if not done:
                    out.append((k, value))
                    done = True
                continue
            out.append((k, v))
        if not done:
            out.append((name, value))
        return HeaderList(out)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, HeaderList):
            return self._items == other._items
        return Mapping.__eq__(self, other)

    def __hash__(self) -> int:
        return hash(self._items)

    def __repr__(self) -> str:
        return f"HeaderList({list(self._items)!r})"


@dataclass(slots=True)
class DataFrame:
    """A chunk of a stream's body. ``data`` may be a memoryview the receiver must not keep
    beyond the call that delivered it unless it copies it (codecs hand out views of their
    buffers only where they document it)."""

    stream_id: int
    data: bytes | memoryview
    end_stream: bool = False


@dataclass(slots=True)
class TrailersFrame:
    """Trailing headers; always ends the stream."""

    stream_id: int
    trailers: HeaderList


@dataclass(slots=True)
class ResetFrame:
    """The stream ended abnormally (HTTP/2 RST_STREAM; HTTP/1.1: the connection broke
    mid-message). ``code`` is the protocol's error code where it has one (h2 error code)."""

    stream_id: int
    code: int = 0
    reason: str = ""


@dataclass(slots=True, frozen=True)
class CodecLimits:
    """Per-codec bounds; exceeding one raises ``RemoteProtocolError`` with a status hint."""

    max_frame_size: int = 16 << 20  # bytes, whole frame (single-frame protocols)
    max_header_size: int = 64 << 10  # bytes of header block (HTTP: 431 when exceeded)
    max_pending_frames: int = 4096  # decoded but not yet pulled (pipelining bound)
    max_header_count: int = 100  # HTTP: header fields per head (431 when exceeded)
    max_body_size: int = 0  # HTTP: bytes of one message body, 0 = unlimited (413)
    max_concurrent_streams: int = 100  # HTTP/2: SETTINGS_MAX_CONCURRENT_STREAMS we advertise


@runtime_checkable
class Codec(Protocol):
    """What every codec offers. See the module docstring for the call sequence."""

    protocol: ClassVar[str]
    pool_mode: ClassVar[PoolMode]

    def __init__(self, role: Role, *, limits: CodecLimits = ...) -> None: ...

    def receive_data(self, data: bytes | bytearray | memoryview) -> None:
        """Buffer ``data`` (copied; the caller may reuse its buffer). ``b""`` means EOF."""

    def next_event(self) -> Frame | ConnectionEvent | Any:
        """The next complete frame, a ``ConnectionEvent``, or ``NEED_DATA``.

        Raises ``RemoteProtocolError`` (state becomes ERROR) on bad input, including a
        truncated frame at EOF.
        """

    def send(
        self, frame: Frame, request_id: int | None = None
    ) -> list[bytes | bytearray | memoryview]:
        """Wire buffers for ``frame``, for ``transport.writelines()``.

        ``request_id``, when given, replaces ``frame.request_id`` on the wire (multiplexing
        proxies rewrite ids on every frame; codecs patch ``raw`` in place rather than
        re-encode). Protocols without request ids ignore it.
        """

    def local_reply(self, request: Frame, status: ProxyStatus, message: str = "") -> Frame:
        """A response to ``request`` that tells its client ``status`` in protocol terms."""

    @classmethod
    def match(cls, prefix: bytes | bytearray | memoryview) -> MatchResult:
        """Does a connection starting with ``prefix`` speak this protocol?"""


@runtime_checkable
class HeartbeatCapable(Protocol):
    """Codecs whose protocol has keepalive frames the proxy answers itself."""

    def heartbeat(self, request_id: int) -> Frame:
        """A heartbeat request frame (sent upstream by an idle pool)."""

    def heartbeat_reply(self, request: Frame) -> Frame:
        """The ack for a heartbeat ``request``."""
