"""``GrpcToBolt``: gRPC clients calling a SOFARPC (Bolt, protobuf) server.

Registered as ``grpc->bolt``. The reverse of ``bolt_grpc.py`` (reference/bolt.md §9 read
backwards): the gRPC request message becomes the Bolt content unchanged, and the Bolt
request looks like one from a real SOFARPC client (anthunder's header set and order,
reference/bolt.md §4), so any SOFARPC server accepts it.

Request (whole gRPC request: head, body of prefixed messages -> Bolt v1 request)::

    gRPC                                        Bolt
    :method POST, content-type application/     refused otherwise (CODEC_ERROR)
      grpc[+proto][;...]
    :path /<service>/<method>                   refused unless exactly two non-empty
                                                segments (ROUTE_NOT_FOUND: UNIMPLEMENTED)
      service -> services[service] or service   sofa_head_target_service and service =
        ("iface" or "iface:version[:uid]")        iface:version ("version" option, 1.0),
                                                  or the mapped unique name as given
      method -> methods[method] or method       sofa_head_method_name
    -                                           sofa_head_target_app = option target_app ("")
    grpc-timeout (Frame.timeout_ms)             timeout ms; absent: option timeout (3s, as
                                                anthunder); option 0: -1 (none)
    body: exactly one uncompressed message      content = the message (no copy); zero,
                                                several, compressed or truncated: refused
                                                (CODEC_ERROR: INTERNAL)
    other metadata                              header map entries after the four above;
                                                names as sent (lower case) but SOFA's
                                                mixed-case trace keys restored
                                                (rpc_trace_context.sofaTraceId ...); dropped:
                                                pseudo-headers, grpc-*, te, content-type,
                                                content-length, user-agent, hop-by-hop,
                                                ``drop_headers``, the four keys above; a
                                                repeated key: values joined with ", ";
                                                ``-bin`` values stay base64 text
    -                                           codec 11 (protobuf), class
                                                com.alipay.sofa.rpc.core.request.SofaRequest,
                                                type 1, cmdcode 1, ver2 1

Response (Bolt response -> gRPC response for the original call)::

    Bolt                                        gRPC
    respStatus 0, no sofa_head_response_error   :status 200, content-type application/grpc,
      =true                                     Bolt response headers as metadata (legal ones),
                                                body = prefix + content,
                                                trailers grpc-status 0
    respStatus != 0, or sofa_head_response_     Trailers-Only: :status 200, grpc-status per
      error=true                                the table, grpc-message = the content as
                                                UTF-8 text (first 1024 characters), or
                                                "bolt respStatus <n> <NAME>" when empty

    Bolt respStatus                      gRPC status
    0x00 SUCCESS + response_error=true   UNKNOWN       (a Java SOFARPC application error)
    0x01 ERROR                           UNKNOWN
    0x02 SERVER_EXCEPTION                UNKNOWN       (what gRPC servers answer when the
    0x03 UNKNOWN                         UNKNOWN        handler raises)
    0x04 SERVER_THREADPOOL_BUSY          RESOURCE_EXHAUSTED
    0x05 ERROR_COMM                      UNAVAILABLE
    0x06 NO_PROCESSOR                    UNIMPLEMENTED
    0x07 TIMEOUT                         DEADLINE_EXCEEDED
    0x08 CLIENT_SEND_ERROR               INTERNAL      (the server refused the request the
    0x09 CODEC_EXCEPTION                 INTERNAL       proxy built, or could not read or
    0x11 SERVER_SERIAL_EXCEPTION         INTERNAL       write a message)
    0x12 SERVER_DESERIAL_EXCEPTION       INTERNAL
    0x10 CONNECTION_CLOSED               UNAVAILABLE
    anything else                        UNKNOWN

Options (``from_options``)::

    services: {<gRPC full service name>: <interface> or <interface:version[:uniqueId]>}
    methods:  {<gRPC method>: <Bolt method>}
    version: "1.0"                 appended to interfaces without one
    target_app: ""                 sofa_head_target_app
    timeout: 3s                    when the call has no grpc-timeout; 0: none (-1)
    drop_headers: [<metadata key>, ...]
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
    parse_grpc_timeout,
    trailers_only,
)
from mosn_py.errors import ProxyStatus
from mosn_py.translate._common import (
    BASE64_VALUE,
    GRPC_METADATA_KEY,
    GRPC_METADATA_VALUE,
    GRPC_NAME,
    HOP_BY_HOP,
    METHOD_NAME,
    RESPONSE_ERROR,
    SERVICE,
    TARGET_APP,
    TARGET_SERVICE,
    MessageError,
    OptionReader,
    bolt_key,
    bolt_request,
    check_header_map_size,
    grpc_frame_message,
    grpc_single_message,
    latin1_to_text,
    resp_status_label,
)
from mosn_py.translate.base import TranslationError

_PAIR = "grpc->bolt"
HTTP2_PROTOCOL: Final = "http2"
DEFAULT_TIMEOUT_MS: Final = 3000  # anthunder's and sofa-bolt-node's default (fixtures)
DEFAULT_VERSION: Final = "1.0"  # SOFARPC's default service version (reference/bolt.md §4)
MAX_MESSAGE_CHARS: Final = 1024  # grpc-message is a header: keep it well inside header limits

# Bolt respStatus -> gRPC status (module docstring); anything else: UNKNOWN.
GRPC_STATUS_BY_BOLT: Final[Mapping[int, GrpcStatus]] = MappingProxyType(
    {
        RespStatus.ERROR: GrpcStatus.UNKNOWN,
        RespStatus.SERVER_EXCEPTION: GrpcStatus.UNKNOWN,
        RespStatus.UNKNOWN: GrpcStatus.UNKNOWN,
        RespStatus.SERVER_THREADPOOL_BUSY: GrpcStatus.RESOURCE_EXHAUSTED,
        RespStatus.ERROR_COMM: GrpcStatus.UNAVAILABLE,
        RespStatus.NO_PROCESSOR: GrpcStatus.UNIMPLEMENTED,
        RespStatus.TIMEOUT: GrpcStatus.DEADLINE_EXCEEDED,
        RespStatus.CLIENT_SEND_ERROR: GrpcStatus.INTERNAL,
        RespStatus.CODEC_EXCEPTION: GrpcStatus.INTERNAL,
        RespStatus.CONNECTION_CLOSED: GrpcStatus.UNAVAILABLE,
        RespStatus.SERVER_SERIAL_EXCEPTION: GrpcStatus.INTERNAL,
        RespStatus.SERVER_DESERIAL_EXCEPTION: GrpcStatus.INTERNAL,
    }
)

# Metadata that is HTTP/2 or gRPC plumbing, or that the translator writes itself.
_NOT_FORWARDED: Final = HOP_BY_HOP | {
    "content-type",
    "content-length",
    "host",
    "user-agent",
    SERVICE,
    TARGET_SERVICE,
    METHOD_NAME,
    TARGET_APP,
}
_VERSION: Final = re.compile(r"[^:\s]+")
# Values of ``services``: an interface, optionally with ":version[:uniqueId]".
_UNIQUE_NAME: Final = re.compile(r"[A-Za-z0-9_.$-]+(?::[^:\s]+){0,2}")
_OK_TRAILERS: Final = HeaderList([("grpc-status", "0")])


def grpc_status_for_bolt(status: int) -> GrpcStatus:
    return GRPC_STATUS_BY_BOLT.get(status, GrpcStatus.UNKNOWN)


class GrpcToBolt:
    """gRPC downstream, Bolt (SOFARPC protobuf) upstream. See the module docstring."""

    downstream: ClassVar[str] = "grpc"
    upstream: ClassVar[str] = "bolt"
    OPTIONS: ClassVar[tuple[str, ...]] = (
        "services",
        "methods",
        "version",
        "target_app",
        "timeout",
        "drop_headers",
    )

    __slots__ = ("_drop", "_methods", "_services", "_target_app", "_timeout", "_version")

    def __init__(
        self,
        *,
        services: Mapping[str, str] | None = None,
        methods: Mapping[str, str] | None = None,
        version: str = DEFAULT_VERSION,
        target_app: str = "",
        timeout_ms: int = DEFAULT_TIMEOUT_MS,
        drop_headers: frozenset[str] = frozenset(),
    ) -> None:
        self._services = dict(services or {})
        self._methods = dict(methods or {})
        self._version = version
        self._target_app = target_app
        self._timeout = timeout_ms
        self._drop = _NOT_FORWARDED | drop_headers

    @classmethod
    def from_options(cls, options: Mapping[str, Any] | None) -> GrpcToBolt:
        """Validate ``options`` (module docstring); raises ``ConfigError``, one line per
        problem, each starting with the option's name."""
        r = OptionReader(options, cls.OPTIONS, _PAIR)
        services = r.name_map("services", "a gRPC service -> SOFARPC interface", _UNIQUE_NAME)
        for k in services:
            if ":" in k:
                r.error(f"services[{k!r}]", f"{k!r}: a gRPC service name has no ':'")
        methods = r.name_map("methods", "a gRPC method -> Bolt method", GRPC_NAME)
        version = r.string(
            "version", DEFAULT_VERSION, pattern=_VERSION, what="a version such as 1.0"
        )
        target_app = r.string("target_app", "")
        timeout = r.timeout_ms("timeout", DEFAULT_TIMEOUT_MS)
        drop = r.name_set("drop_headers")
        r.finish()
        return cls(
            services=services,
            methods=methods,
            version=version,
            target_app=target_app,
            timeout_ms=timeout,
            drop_headers=drop,
        )

    # --- request -------------------------------------------------------------------------

    def request(self, frame: Frame) -> Frame:
        """The Bolt request for the whole gRPC call ``frame``. Raises ``TranslationError``:
        CODEC_ERROR for a response, a call that is not POST application/grpc(+proto), or a
        body that is not exactly one uncompressed message; ROUTE_NOT_FOUND for a path that
        is not ``/<service>/<method>``."""
        if frame.stream_type is StreamType.RESPONSE:
            raise TranslationError(ProxyStatus.CODEC_ERROR, f"{_PAIR}: a response is not a call")
        head = frame.headers
        method_verb = head.get(":method")
        if method_verb != "POST":
            raise TranslationError(
                ProxyStatus.CODEC_ERROR,
                f"{_PAIR}: a gRPC call is a POST, not {method_verb!r}",
            )
        ctype = head.get("content-type") or ""
        base = ctype.partition(";")[0].strip().lower()
        if base != GRPC_CONTENT_TYPE and base != "application/grpc+proto":
            raise TranslationError(
                ProxyStatus.CODEC_ERROR,
                f"{_PAIR}: content-type {ctype!r} is not a protobuf gRPC call "
                "(application/grpc or application/grpc+proto)",
            )
        path = head.get(":path") or ""
        service, sep, method = path[1:].partition("/")
        if (
            path[:1] != "/"
            or not sep
            or not GRPC_NAME.fullmatch(service)
            or not GRPC_NAME.fullmatch(method)
        ):
            raise TranslationError(
                ProxyStatus.ROUTE_NOT_FOUND,
                f"{_PAIR}: :path {path[:200]!r} is not /<service>/<method>",
            )
        try:
            content = grpc_single_message(frame.body)
        except MessageError as exc:
            raise TranslationError(
                ProxyStatus.CODEC_ERROR, f"{_PAIR}: the call carries {exc}"
            ) from None

        mapped = self._services.get(service, service) if self._services else service
        unique = mapped if ":" in mapped else f"{mapped}:{self._version}"
        if self._methods:
            method = self._methods.get(method, method)
        headers: dict[str, str] = {
            TARGET_SERVICE: unique,
            METHOD_NAME: method,
            TARGET_APP: self._target_app,
            SERVICE: unique,
        }
        drop = self._drop
        names = head.items_all() if isinstance(head, HeaderList) else head.items()
        for name, value in names:
            if name[:1] == ":" or name in drop or not GRPC_METADATA_KEY.fullmatch(name):
                continue
            key = bolt_key(name)
            text = latin1_to_text(value)
            old = headers.get(key)
            headers[key] = text if old is None else f"{old}, {text}"
        check_header_map_size(headers, _PAIR)

        timeout = frame.timeout_ms
        if timeout <= 0:
            timeout = parse_grpc_timeout(head.get("grpc-timeout")) or self._timeout
        return bolt_request(headers, content, min(timeout, 0x7FFFFFFF), CODEC_PROTOBUF)

    # --- response ------------------------------------------------------------------------

    def response(self, whole: Frame, request: Frame) -> Frame:
        """The gRPC response to call ``request`` for the Bolt response ``whole``: a head with
        the message and ``grpc-status 0`` trailers, or a Trailers-Only error. Never raises."""
        status = whole.status
        headers = whole.headers
        if status == 0 and headers.get(RESPONSE_ERROR) != "true":
            pairs = [(":status", "200"), ("content-type", GRPC_CONTENT_TYPE)]
            if headers:
                for k, v in headers.items():
                    key = k.lower()
                    if (
                        key != RESPONSE_ERROR
                        and key not in self._drop
                        and GRPC_METADATA_KEY.fullmatch(key)
                        and (
                            BASE64_VALUE.fullmatch(v)
                            if key.endswith("-bin")
                            else GRPC_METADATA_VALUE.fullmatch(v)
                        )
                    ):
                        pairs.append((key, v))
            return Frame(
                StreamType.RESPONSE,
                request.request_id,
                HeaderList(pairs),
                grpc_frame_message(whole.body),
                200,
                0,
                False,
                True,
                _OK_TRAILERS,
                HTTP2_PROTOCOL,
            )
        code = grpc_status_for_bolt(status)
        body = whole.body
        text = bytes(body[: MAX_MESSAGE_CHARS * 4]).decode("utf-8", "replace") if body else ""
        if len(text) > MAX_MESSAGE_CHARS:
            text = text[:MAX_MESSAGE_CHARS]
        if not text:
            text = f"bolt respStatus {resp_status_label(status)}"
        return trailers_only(request.request_id, code, text)
