"""``BoltToGrpc``: SOFARPC (Bolt, protobuf) clients calling a gRPC server.

Registered as ``bolt->grpc``. The recipe is reference/bolt.md §9, checked there against real
clients and a grpcio server: the Bolt content of a protobuf call *is* the request message,
and the gRPC reply message *is* the Bolt response content, so neither is re-encoded.

Request (Bolt RPC request -> gRPC request head, body and ``end_stream`` in one ``Frame``)::

    Bolt                                        gRPC (HTTP/2)
    cmdcode 1, codec 11 (protobuf)              refused otherwise: TranslationError(CODEC_ERROR)
    sofa_head_target_service, else service      :path /<service>/<method>
      "iface:version[:uniqueId]" -> iface         service = services[unique name]
      (reference/bolt.md §9 step 2)                 or services[iface] or iface
    sofa_head_method_name (missing: refused,      method = methods[method] or method
      a hessian2-style request)
    -                                           :method POST, :scheme http, te trailers,
                                                content-type application/grpc
    -                                           :authority = option ``authority`` or service
    timeout (ms) > 0                            grpc-timeout <ms>m (whole seconds "S" above
                                                8 digits); -1 / 0: no grpc-timeout
    other header keys                           metadata, key lower-cased; dropped when not a
      (rpc_trace_context.*, uid, ...)           legal gRPC key, reserved (grpc-*, te,
                                                content-type, content-length, hop-by-hop),
                                                listed in ``drop_headers``, or the value is
                                                not printable ASCII (``-bin`` keys: base64)
    content                                     body: 00 + u32 length + content, unchanged
    type 2 (oneway)                             the same request, stream type ONEWAY kept

Response (whole gRPC response -> Bolt response to the original request; same proto, ver1,
ver2, codec, switch as the request, so a v2 CRC request is answered in v2 with a CRC)::

    gRPC                                        Bolt
    :status 200, grpc-status 0, one message     respStatus 0, content = the message;
                                                header map empty (anthunder), or
                                                sofa_head_response_error=false with
                                                ``response_error_header: true`` (sofa-bolt-node)
    grpc-status != 0 (trailers, or the head     respStatus per the table below,
      of a Trailers-Only response)              sofa_head_response_error=true, content =
                                                grpc-message percent-decoded, UTF-8 (empty:
                                                "gRPC status <n> <NAME>")
    :status != 200                              the status a gRPC client derives from it
                                                (404 -> UNIMPLEMENTED, else UNAVAILABLE /
                                                UNKNOWN ...), then the table
    no grpc-status; OK with 0, 2+, compressed   SERVER_EXCEPTION, a message saying which
      or truncated messages

    gRPC status           Bolt respStatus (reference/bolt.md §9)
    OK                    0x00 SUCCESS
    DEADLINE_EXCEEDED     0x07 TIMEOUT
    UNIMPLEMENTED         0x06 NO_PROCESSOR
    RESOURCE_EXHAUSTED    0x04 SERVER_THREADPOOL_BUSY
    anything else         0x02 SERVER_EXCEPTION

Options (``from_options``)::

    services: {<interface or unique name>: <gRPC full service name>}
    methods:  {<Bolt method>: <gRPC method>}
    authority: <:authority>                       default: the gRPC service name
    drop_headers: [<Bolt header key>, ...]        not forwarded as metadata
    response_error_header: false                  true: successes carry
                                                  sofa_head_response_error=false
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, ClassVar, Final

from mosn_py.codecs.base import Frame, HeaderList, StreamType
from mosn_py.codecs.bolt.wire import CODEC_PROTOBUF, RespStatus
from mosn_py.codecs.http2.grpc import (
    GRPC_CONTENT_TYPE,
    GrpcStatus,
    decode_grpc_message,
    grpc_status_from_http,
)
from mosn_py.errors import ProxyStatus
from mosn_py.translate._common import (
    BASE64_VALUE,
    EMPTY_MAP,
    ERROR_HEADERS,
    GRPC_METADATA_KEY,
    GRPC_METADATA_VALUE,
    GRPC_NAME,
    HOP_BY_HOP,
    METHOD_NAME,
    SERVICE,
    SUCCESS_HEADERS,
    TARGET_SERVICE,
    MessageError,
    OptionReader,
    bolt_request_kind,
    bolt_response,
    codec_label,
    grpc_frame_message,
    grpc_single_message,
    grpc_timeout_value,
    interface_of,
)
from mosn_py.translate.base import TranslationError

_PAIR = "bolt->grpc"
HTTP2_PROTOCOL: Final = "http2"

# gRPC status -> Bolt respStatus (reference/bolt.md §9); anything else: SERVER_EXCEPTION.
BOLT_STATUS_BY_GRPC: Final[Mapping[int, int]] = MappingProxyType(
    {
        GrpcStatus.OK: RespStatus.SUCCESS,
        GrpcStatus.DEADLINE_EXCEEDED: RespStatus.TIMEOUT,
        GrpcStatus.UNIMPLEMENTED: RespStatus.NO_PROCESSOR,
        GrpcStatus.RESOURCE_EXHAUSTED: RespStatus.SERVER_THREADPOOL_BUSY,
    }
)

# Bolt keys the gRPC path already carries: not metadata.
_ROUTING_KEYS: Final = frozenset({SERVICE, TARGET_SERVICE, METHOD_NAME})
# Fields a gRPC request must not take from the caller: HTTP/2 connection plumbing, and what
# the translator sets itself (content-length would contradict the prefixed body).
_RESERVED_METADATA: Final = HOP_BY_HOP | {"content-type", "content-length", "host"}


# Keys of ``services``: an interface (a gRPC-like name) or a unique name ``iface:ver[:uid]``.
_SERVICE_KEY: Final = re.compile(r"[A-Za-z0-9_.$-]+(?::[^:\s]+){0,2}")


def bolt_status_for_grpc(code: int) -> int:
    return int(BOLT_STATUS_BY_GRPC.get(code, RespStatus.SERVER_EXCEPTION))


def _grpc_status_name(code: int) -> str:
    try:
        return GrpcStatus(code).name
    except ValueError:
        return "?"


class BoltToGrpc:
    """Bolt (SOFARPC protobuf) downstream, gRPC upstream. See the module docstring."""

    downstream: ClassVar[str] = "bolt"
    upstream: ClassVar[str] = "grpc"
    OPTIONS: ClassVar[tuple[str, ...]] = (
        "services",
        "methods",
        "authority",
        "drop_headers",
        "response_error_header",
    )

    __slots__ = ("_authority", "_drop", "_methods", "_ok_headers", "_services")

    def __init__(
        self,
        *,
        services: Mapping[str, str] | None = None,
        methods: Mapping[str, str] | None = None,
        authority: str = "",
        drop_headers: frozenset[str] = frozenset(),
        response_error_header: bool = False,
    ) -> None:
        self._services = dict(services or {})
        self._methods = dict(methods or {})
        self._authority = authority
        self._drop = _RESERVED_METADATA | drop_headers
        self._ok_headers = SUCCESS_HEADERS if response_error_header else EMPTY_MAP

    @classmethod
    def from_options(cls, options: Mapping[str, Any] | None) -> BoltToGrpc:
        """Validate ``options`` (module docstring); raises ``ConfigError``, one line per
        problem, each starting with the option's name."""
        r = OptionReader(options, cls.OPTIONS, _PAIR)
        services = r.name_map("services", "a SOFARPC interface -> gRPC service", _SERVICE_KEY)
        for k, v in services.items():
            if ":" in v:
                r.error(f"services[{k!r}]", f"{v!r}: a gRPC service name has no ':'")
        methods = r.name_map("methods", "a Bolt method -> gRPC method", GRPC_NAME)
        authority = r.string("authority", "")
        if any(c in authority for c in " \t\r\n/?#@"):
            r.error("authority", f"{authority!r} is not a host[:port]")
        drop = r.name_set("drop_headers")
        flag = r.boolean("response_error_header", False)
        r.finish()
        return cls(
            services=services,
            methods=methods,
            authority=authority,
            drop_headers=drop,
            response_error_header=flag,
        )

    # --- request -------------------------------------------------------------------------

    def request(self, frame: Frame) -> Frame:
        """The gRPC call for Bolt request ``frame`` (a whole HTTP/2 request: head, prefixed
        body, ``end_stream``). Raises ``TranslationError``: CODEC_ERROR for a heartbeat, a
        non-RPC frame, a non-protobuf codec or a request without service or method header;
        ROUTE_NOT_FOUND when the service or method cannot be a gRPC name."""
        extra = bolt_request_kind(frame, _PAIR)
        if extra.codec != CODEC_PROTOBUF:
            raise TranslationError(
                ProxyStatus.CODEC_ERROR,
                f"{_PAIR}: the request content is serialized with codec "
                f"{codec_label(extra.codec)}; only protobuf (codec 11) content is a gRPC "
                "message",
            )
        headers = frame.headers
        drop = self._drop
        metadata: list[tuple[str, str]] = []
        # One pass over the map (a decoded frame's BoltHeaders decodes it once, here); the
        # routing keys are read afterwards from the decoded map.
        for k, v in headers.items():
            if k in _ROUTING_KEYS:
                continue
            key = k.lower()
            if key in drop or not GRPC_METADATA_KEY.fullmatch(key):
                continue
            if key.endswith("-bin"):
                if not BASE64_VALUE.fullmatch(v):
                    continue
            elif not GRPC_METADATA_VALUE.fullmatch(v):
                continue
            metadata.append((key, v))

        unique = headers.get(TARGET_SERVICE) or headers.get(SERVICE)
        if not unique:
            raise TranslationError(
                ProxyStatus.CODEC_ERROR,
                f"{_PAIR}: the request names no service (no {TARGET_SERVICE} or {SERVICE} header)",
            )
        method = headers.get(METHOD_NAME)
        if not method:
            raise TranslationError(
                ProxyStatus.CODEC_ERROR,
                f"{_PAIR}: the request has no {METHOD_NAME} header (a hessian2-style call?); "
                "a gRPC call needs the method name",
            )
        iface = interface_of(unique)
        service = iface
        services = self._services
        if services:
            service = services.get(unique) or services.get(iface) or iface
        if self._methods:
            method = self._methods.get(method, method)
        if not GRPC_NAME.fullmatch(service) or not GRPC_NAME.fullmatch(method):
            raise TranslationError(
                ProxyStatus.ROUTE_NOT_FOUND,
                f"{_PAIR}: {service[:100]!r} / {method[:100]!r} cannot name a gRPC method",
            )
        pairs = [
            (":method", "POST"),
            (":scheme", "http"),
            (":path", f"/{service}/{method}"),
            (":authority", self._authority or service),
            ("te", "trailers"),
        ]
        timeout = frame.timeout_ms
        if timeout > 0:
            pairs.append(("grpc-timeout", grpc_timeout_value(timeout)))
        pairs.append(("content-type", GRPC_CONTENT_TYPE))
        if metadata:
            pairs += metadata
        return Frame(
            frame.stream_type if frame.stream_type is StreamType.ONEWAY else StreamType.REQUEST,
            0,
            HeaderList(pairs),
            grpc_frame_message(frame.body),
            0,
            timeout if timeout > 0 else 0,
            False,
            True,
            None,
            HTTP2_PROTOCOL,
        )

    # --- response ------------------------------------------------------------------------

    def response(self, whole: Frame, request: Frame) -> Frame:
        """The Bolt response to ``request`` for the whole gRPC response ``whole``.

        Never raises: whatever the upstream sent becomes a Bolt response (an error status
        with a message when it is not a well-formed unary reply).
        """
        head = whole.headers
        http_status = whole.status or _int(head.get(":status"))
        if http_status != 200:
            derived = grpc_status_from_http(http_status)
            return self._error(
                request,
                derived,
                f"the gRPC upstream answered HTTP {http_status} (gRPC {derived.name})",
            )
        status_text = head.get("grpc-status")  # a Trailers-Only response
        message = head.get("grpc-message")
        trailers = whole.trailers
        if status_text is None and trailers:
            status_text = trailers.get("grpc-status")
            message = trailers.get("grpc-message")
        if status_text is None:
            return self._error(
                request,
                GrpcStatus.UNKNOWN,
                "the gRPC upstream's response has no grpc-status (no trailers)",
            )
        code = _int(status_text.strip())
        if code < 0:
            return self._error(
                request, GrpcStatus.UNKNOWN, f"the gRPC upstream sent grpc-status {status_text!r}"
            )
        if code != GrpcStatus.OK:
            text = decode_grpc_message(message) if message else ""
            if not text:
                text = f"gRPC status {code} {_grpc_status_name(code)}"
            return self._error(request, code, text)
        try:
            content = grpc_single_message(whole.body)
        except MessageError as exc:
            return self._error(request, GrpcStatus.INTERNAL, f"the gRPC upstream sent {exc}")
        return bolt_response(request, 0, self._ok_headers, content)

    def _error(self, request: Frame, code: int, text: str) -> Frame:
        # ``code`` is never OK here; should it be, the reply still says "error".
        status = bolt_status_for_grpc(code) or RespStatus.SERVER_EXCEPTION
        return bolt_response(
            request,
            status,
            ERROR_HEADERS,
            text.encode("utf-8", "replace"),
        )


def _int(text: str | None) -> int:
    """A non-negative decimal, or -1 when ``text`` is not one."""
    if text and text.isdigit() and text.isascii() and len(text) <= 9:
        return int(text)
    return -1
