"""HTTP <-> Bolt, in the spirit of MOSN's http2bolt / bolt2http.

``HttpToBolt`` (HTTP/1.1 or HTTP/2 clients calling a SOFARPC server; registered as
``http1->bolt``, ``http2->bolt`` and ``http->bolt``) and ``BoltToHttp`` (SOFARPC clients
calling an HTTP service; ``bolt->http1``, and ``BoltToHttp2`` as ``bolt->http2``).

One convention serves both directions: a Bolt header ``<key>`` travels as the HTTP field
``x-mosn-bolt-<key>`` (lower case: HTTP field names are case-insensitive; SOFA's mixed-case
trace keys are restored on the way back), and four reserved fields carry what is not a
header in Bolt. So Bolt -> HTTP -> Bolt gives back the same request and the same response,
and HTTP -> Bolt -> HTTP the same path and body, and the status for 200, 404, 500, 502, 503
and 504 (other 2xx come back as 200, other errors as 500)::

    x-mosn-bolt-service     the service unique name ``iface:version`` (it *is* Bolt's
                            ``service`` header)
    x-mosn-bolt-method      the method (requests; otherwise the path says it)
    x-mosn-bolt-codec       the Bolt codec: a number or protobuf / hessian2 / json / java
    x-mosn-bolt-timeout     the Bolt timeout in milliseconds (requests)
    x-mosn-bolt-status      the Bolt respStatus (responses)

A Bolt header named ``method``, ``codec``, ``timeout`` or ``status`` cannot travel (its
field would be read as the reserved one) and is dropped.

HTTP -> Bolt request (``HttpToBolt.request``)::

    HTTP                                       Bolt
    x-mosn-bolt-service, else path segment 1   service and sofa_head_target_service;
      (after path_prefix), percent-decoded       "iface" gets ":<version>" (option, 1.0)
    x-mosn-bolt-method, else path segment 2    sofa_head_method_name (omitted when neither
                                                 gives one: hessian2 calls carry it inside)
    path with a segment missing or extra       refused: ROUTE_NOT_FOUND (404)
    x-mosn-bolt-codec, else option codec       codec (default protobuf, 11); bad: 400
    x-mosn-bolt-timeout, else option timeout   timeout ms (default 3000; option 0: -1, none);
                                                 bad: 400
    x-mosn-bolt-<key>                          header <key> (overrides the computed ones);
                                                 a repeated field: values joined with ", "
    other fields (``plain_headers: true``)     header <name>, never overriding the above;
                                                 dropped: pseudo-headers, hop-by-hop and
                                                 what Connection names, host, content-type,
                                                 content-length, expect, ``drop_headers``
                                                 (which also drops x-mosn-bolt-<key> by key)
    body                                       content, unchanged (no copy)
    -                                          v1, type 1 (REQUEST), cmdcode 1, class SofaRequest,
                                                 ``sofa_head_target_app`` = option target_app
                                                 when set

Bolt -> HTTP response (``HttpToBolt.response``)::

    respStatus 0 and no                        200, content-type option (octet-stream)
      sofa_head_response_error=true
    otherwise                                  the table below, content-type text/plain
                                                 (octet-stream when the content is not UTF-8)
    always                                     x-mosn-bolt-status <respStatus>,
                                                 x-mosn-bolt-<key> per response header,
                                                 body = content unchanged

    respStatus                                 HTTP      back to Bolt (BoltToHttp, no
                                                         x-mosn-bolt-status)
    0 + sofa_head_response_error=true, 1, 2,   500       500 -> SERVER_EXCEPTION
      3, 0x11, other
    0x04 SERVER_THREADPOOL_BUSY                503       503, 429 -> SERVER_THREADPOOL_BUSY
    0x05 ERROR_COMM, 0x08 CLIENT_SEND_ERROR,   502       502 -> ERROR_COMM
      0x09 CODEC_EXCEPTION, 0x10 CONN._CLOSED
    0x06 NO_PROCESSOR                          404       404 -> NO_PROCESSOR
    0x07 TIMEOUT                               504       504, 408 -> TIMEOUT
    0x12 SERVER_DESERIAL_EXCEPTION             400       other non-2xx -> SERVER_EXCEPTION

Bolt -> HTTP request (``BoltToHttp.request``)::

    sofa_head_target_service, else service     :path <path_prefix>/<iface>[/<method>]
      (iface = before the first ':'),            (percent-encoded), :method POST,
      sofa_head_method_name                      :scheme http, :authority option or iface;
                                                 no service: refused (CODEC_ERROR)
    every header <key>                         x-mosn-bolt-<key lower> when <key> is an HTTP
                                                 token and the value has no control
                                                 characters (UTF-8 octets on the wire)
    codec, timeout                             x-mosn-bolt-codec, x-mosn-bolt-timeout
    content                                    body, content-type option (octet-stream)
    heartbeat / non-RPC                        refused (CODEC_ERROR)

HTTP -> Bolt response (``BoltToHttp.response``): x-mosn-bolt-status when present and a
number 0..65535 is the respStatus; otherwise 2xx -> 0 and an error per the table above (with
``sofa_head_response_error=true``). Header map = the x-mosn-bolt-* response fields, prefix
removed; content = the body unchanged (an error's text). The response mirrors the request's
proto/ver1/ver2/codec/switch.

Options: ``HttpToBolt``: ``version``, ``codec``, ``timeout``, ``target_app``,
``content_type``, ``path_prefix``, ``plain_headers``, ``drop_headers``. ``BoltToHttp``:
``authority``, ``content_type``, ``path_prefix``, ``drop_headers``. See docs/translation.md.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, ClassVar, Final
from urllib.parse import quote, unquote

from mosn_py.codecs.base import Frame, HeaderList, StreamType
from mosn_py.codecs.bolt.wire import CODEC_PROTOBUF, RespStatus
from mosn_py.errors import ProxyStatus
from mosn_py.translate._common import (
    HOP_BY_HOP,
    HTTP_TOKEN,
    HTTP_VALUE,
    METHOD_NAME,
    RESPONSE_ERROR,
    SERVICE,
    TARGET_APP,
    TARGET_SERVICE,
    OptionReader,
    bolt_key,
    bolt_request,
    bolt_request_kind,
    bolt_response,
    check_header_map_size,
    connection_tokens,
    interface_of,
    latin1_to_text,
    parse_codec,
    text_to_latin1,
)
from mosn_py.translate.base import TranslationError

PREFIX: Final = "x-mosn-bolt-"
_PLEN: Final = len(PREFIX)
SERVICE_FIELD: Final = PREFIX + "service"
METHOD_FIELD: Final = PREFIX + "method"
CODEC_FIELD: Final = PREFIX + "codec"
TIMEOUT_FIELD: Final = PREFIX + "timeout"
STATUS_FIELD: Final = PREFIX + "status"
# x-mosn-bolt-<key> names that are not header-map entries (``service`` is both).
_RESERVED_KEYS: Final = frozenset({"method", "codec", "timeout", "status"})
# ... and the ones HttpToBolt reads before it walks the fields.
_CONSUMED_KEYS: Final = _RESERVED_KEYS | {SERVICE}

DEFAULT_CONTENT_TYPE: Final = "application/octet-stream"
TEXT_CONTENT_TYPE: Final = "text/plain; charset=utf-8"
DEFAULT_TIMEOUT_MS: Final = 3000
DEFAULT_VERSION: Final = "1.0"

# Bolt respStatus -> HTTP status (errors); anything else: 500.
HTTP_STATUS_BY_BOLT: Final[Mapping[int, int]] = MappingProxyType(
    {
        RespStatus.SERVER_THREADPOOL_BUSY: 503,
        RespStatus.ERROR_COMM: 502,
        RespStatus.NO_PROCESSOR: 404,
        RespStatus.TIMEOUT: 504,
        RespStatus.CLIENT_SEND_ERROR: 502,
        RespStatus.CODEC_EXCEPTION: 502,
        RespStatus.CONNECTION_CLOSED: 502,
        RespStatus.SERVER_DESERIAL_EXCEPTION: 400,
    }
)
# HTTP status (non-2xx) -> Bolt respStatus; anything else: SERVER_EXCEPTION.
BOLT_STATUS_BY_HTTP: Final[Mapping[int, int]] = MappingProxyType(
    {
        404: RespStatus.NO_PROCESSOR,
        503: RespStatus.SERVER_THREADPOOL_BUSY,
        429: RespStatus.SERVER_THREADPOOL_BUSY,
        504: RespStatus.TIMEOUT,
        408: RespStatus.TIMEOUT,
        502: RespStatus.ERROR_COMM,
    }
)

# Plain request fields that describe the HTTP message, not the call.
_HTTP_PLUMBING: Final = HOP_BY_HOP | {"host", "content-type", "content-length", "expect"}
_PATH_PREFIX: Final = re.compile(r"(/[^/?#%\s]+)*/?")
_CONTENT_TYPE: Final = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+/[^\x00-\x1f\x7f]+")
_VERSION: Final = re.compile(r"[^:\s]+")
# Characters left as they are in a path segment (beyond the unreserved ones).
_SEGMENT_SAFE: Final = "$"


def http_status_for_bolt(status: int) -> int:
    return HTTP_STATUS_BY_BOLT.get(status, 500)


def bolt_status_for_http(code: int) -> int:
    if 200 <= code < 300:
        return int(RespStatus.SUCCESS)
    return int(BOLT_STATUS_BY_HTTP.get(code, RespStatus.SERVER_EXCEPTION))


def _int_field(text: str | None, low: int, high: int) -> int | None:
    if text is None:
        return None
    text = text.strip()
    digits = text[1:] if text[:1] == "-" else text
    if not digits.isdigit() or not digits.isascii() or len(digits) > 10:
        return None
    value = int(text)
    return value if low <= value <= high else None


def _items(headers: Mapping[str, str]) -> Any:
    return headers.items_all() if isinstance(headers, HeaderList) else headers.items()


class HttpToBolt:
    """HTTP downstream (either version), Bolt upstream. See the module docstring."""

    downstream: ClassVar[str] = "http1"
    upstream: ClassVar[str] = "bolt"
    OPTIONS: ClassVar[tuple[str, ...]] = (
        "version",
        "codec",
        "timeout",
        "target_app",
        "content_type",
        "path_prefix",
        "plain_headers",
        "drop_headers",
    )

    __slots__ = (
        "_codec",
        "_content_type",
        "_drop",
        "_drop_keys",
        "_path_prefix",
        "_plain",
        "_target_app",
        "_timeout",
        "_version",
    )

    def __init__(
        self,
        *,
        version: str = DEFAULT_VERSION,
        codec: int = CODEC_PROTOBUF,
        timeout_ms: int = DEFAULT_TIMEOUT_MS,
        target_app: str | None = None,
        content_type: str = DEFAULT_CONTENT_TYPE,
        path_prefix: str = "",
        plain_headers: bool = True,
        drop_headers: frozenset[str] = frozenset(),
    ) -> None:
        self._version = version
        self._codec = codec
        self._timeout = timeout_ms
        self._target_app = target_app
        self._content_type = content_type
        self._path_prefix = path_prefix.rstrip("/")
        self._plain = plain_headers
        self._drop_keys = drop_headers  # x-mosn-bolt-<key>: only what the operator listed
        self._drop = _HTTP_PLUMBING | drop_headers  # plain fields

    @classmethod
    def from_options(cls, options: Mapping[str, Any] | None) -> HttpToBolt:
        """Validate ``options`` (module docstring); raises ``ConfigError``, one line per
        problem, each starting with the option's name."""
        r = OptionReader(options, cls.OPTIONS, f"{cls.downstream}->bolt")
        version = r.string(
            "version", DEFAULT_VERSION, pattern=_VERSION, what="a version such as 1.0"
        )
        codec = CODEC_PROTOBUF
        if r.has("codec"):
            raw = (options or {})["codec"]
            parsed = parse_codec(str(raw)) if isinstance(raw, str | int) else None
            if parsed is None or isinstance(raw, bool):
                r.error("codec", f"{raw!r} is not a Bolt codec (protobuf, hessian2, json, 0-255)")
            else:
                codec = parsed
        timeout = r.timeout_ms("timeout", DEFAULT_TIMEOUT_MS)
        target_app = r.string("target_app", "") if r.has("target_app") else None
        ctype = r.string(
            "content_type", DEFAULT_CONTENT_TYPE, pattern=_CONTENT_TYPE, what="a media type"
        )
        prefix = r.string("path_prefix", "", pattern=_PATH_PREFIX, what="a path such as /rpc")
        plain = r.boolean("plain_headers", True)
        drop = r.name_set("drop_headers")
        r.finish()
        return cls(
            version=version,
            codec=codec,
            timeout_ms=timeout,
            target_app=target_app,
            content_type=ctype,
            path_prefix=prefix,
            plain_headers=plain,
            drop_headers=drop,
        )

    def _pair(self) -> str:
        return f"{self.downstream}->bolt"

    # --- request -------------------------------------------------------------------------

    def request(self, frame: Frame) -> Frame:
        """The Bolt request for the whole HTTP request ``frame``. Raises
        ``TranslationError``: ROUTE_NOT_FOUND (404) when no service can be found or the
        path does not fit; CODEC_ERROR (400) for a bad codec or timeout field."""
        if frame.stream_type is StreamType.RESPONSE:
            raise TranslationError(
                ProxyStatus.CODEC_ERROR, f"{self._pair()}: a response is not a request"
            )
        head = frame.headers
        service = head.get(SERVICE_FIELD)
        method = head.get(METHOD_FIELD)
        if service is not None:
            service = latin1_to_text(service.strip())
        if method is not None:
            method = latin1_to_text(method.strip())
        if service is None or method is None:
            service, method = self._from_path(head.get(":path") or "", service, method)
        if not service or service[:1] == ":":
            raise TranslationError(
                ProxyStatus.ROUTE_NOT_FOUND,
                f"{self._pair()}: no service: use the path /<service>/<method> or the "
                f"{SERVICE_FIELD} field",
            )
        unique = service if ":" in service else f"{service}:{self._version}"

        codec = self._codec
        text = head.get(CODEC_FIELD)
        if text is not None:
            parsed = parse_codec(text)
            if parsed is None:
                raise TranslationError(
                    ProxyStatus.CODEC_ERROR,
                    f"{self._pair()}: {CODEC_FIELD} {text[:40]!r} is not a Bolt codec "
                    "(protobuf, hessian2, json, java or 0-255)",
                )
            codec = parsed
        timeout = self._timeout
        text = head.get(TIMEOUT_FIELD)
        if text is not None:
            value = _int_field(text, -(2**31), 2**31 - 1)
            if value is None:
                raise TranslationError(
                    ProxyStatus.CODEC_ERROR,
                    f"{self._pair()}: {TIMEOUT_FIELD} {text[:40]!r} is not a number of "
                    "milliseconds",
                )
            timeout = value

        headers: dict[str, str] = {TARGET_SERVICE: unique}
        if method:
            headers[METHOD_NAME] = method
        if self._target_app is not None:
            headers[TARGET_APP] = self._target_app
        headers[SERVICE] = unique
        drop = self._drop
        if "connection" in head:
            drop = drop | connection_tokens(head)
        drop_keys = self._drop_keys
        plain = self._plain
        prefixed: set[str] = set()
        for name, value in _items(head):
            if name[:1] == ":":
                continue
            if name.startswith(PREFIX):
                key = name[_PLEN:]
                if key in _CONSUMED_KEYS or key in drop_keys:
                    continue
                key = bolt_key(key)
                text = latin1_to_text(value)
                if key in prefixed:
                    headers[key] = f"{headers[key]}, {text}"
                else:
                    headers[key] = text
                    prefixed.add(key)
            elif plain and name not in drop:
                key = bolt_key(name)
                if key not in headers:
                    headers[key] = latin1_to_text(value)
        check_header_map_size(headers, self._pair())
        return bolt_request(headers, frame.body, timeout, codec)

    def _from_path(
        self, path: str, service: str | None, method: str | None
    ) -> tuple[str, str | None]:
        """Fill in ``service`` / ``method`` (whichever is None) from ``/<service>/<method>``
        under ``path_prefix``; the path's segments are percent-decoded UTF-8."""
        path = latin1_to_text(path.partition("?")[0].partition("#")[0])
        prefix = self._path_prefix
        if prefix:
            if path != prefix and not path.startswith(prefix + "/"):
                raise TranslationError(
                    ProxyStatus.ROUTE_NOT_FOUND,
                    f"{self._pair()}: path {path[:200]!r} is not under {prefix!r}",
                )
            path = path[len(prefix) :]
        rest = path[1:] if path[:1] == "/" else path
        segments = rest.split("/") if rest else []
        if len(segments) > 2:
            raise TranslationError(
                ProxyStatus.ROUTE_NOT_FOUND,
                f"{self._pair()}: path {path[:200]!r} is not /<service>/<method> (or give "
                f"the {SERVICE_FIELD} and {METHOD_FIELD} fields)",
            )
        if service is None:
            service = unquote(segments[0]) if segments else ""
        if method is None and len(segments) == 2:
            method = unquote(segments[1])
        return service, method

    # --- response ------------------------------------------------------------------------

    def response(self, whole: Frame, request: Frame) -> Frame:
        """The HTTP response to ``request`` for the Bolt response ``whole``. Never raises."""
        status = whole.status
        headers = whole.headers
        content = whole.body
        if status == 0 and headers.get(RESPONSE_ERROR) != "true":
            code = 200
            ctype = self._content_type
        else:
            code = http_status_for_bolt(status)
            ctype = TEXT_CONTENT_TYPE
            try:
                bytes(content).decode("utf-8")
            except UnicodeDecodeError:
                ctype = "application/octet-stream"
        pairs = [(":status", str(code)), ("content-type", ctype), (STATUS_FIELD, str(status))]
        if headers:
            for k, v in headers.items():
                key = k.lower()
                if key in _RESERVED_KEYS or not HTTP_TOKEN.fullmatch(key):
                    continue
                value = text_to_latin1(v.strip(" \t"))
                if HTTP_VALUE.fullmatch(value):
                    pairs.append((PREFIX + key, value))
        return Frame(
            StreamType.RESPONSE,
            request.request_id,
            HeaderList(pairs),
            content,
            code,
            0,
            False,
            True,
            None,
            request.protocol or self.downstream,
        )


class Http2ToBolt(HttpToBolt):
    """``HttpToBolt`` for an HTTP/2 listener (same mapping)."""

    downstream: ClassVar[str] = "http2"
    __slots__ = ()


class AnyHttpToBolt(HttpToBolt):
    """``HttpToBolt`` for a listener that speaks either version (``protocol: http``)."""

    downstream: ClassVar[str] = "http"
    __slots__ = ()


class BoltToHttp:
    """Bolt downstream, HTTP/1.1 upstream (``BoltToHttp2``: HTTP/2). Module docstring."""

    downstream: ClassVar[str] = "bolt"
    upstream: ClassVar[str] = "http1"
    OPTIONS: ClassVar[tuple[str, ...]] = (
        "authority",
        "content_type",
        "path_prefix",
        "drop_headers",
    )

    __slots__ = ("_authority", "_content_type", "_drop", "_path_prefix")

    def __init__(
        self,
        *,
        authority: str = "",
        content_type: str = DEFAULT_CONTENT_TYPE,
        path_prefix: str = "",
        drop_headers: frozenset[str] = frozenset(),
    ) -> None:
        self._authority = authority
        self._content_type = content_type
        self._path_prefix = path_prefix.rstrip("/")
        self._drop = _RESERVED_KEYS | drop_headers

    @classmethod
    def from_options(cls, options: Mapping[str, Any] | None) -> BoltToHttp:
        """Validate ``options`` (module docstring); raises ``ConfigError``, one line per
        problem, each starting with the option's name."""
        r = OptionReader(options, cls.OPTIONS, f"bolt->{cls.upstream}")
        authority = r.string("authority", "")
        if any(c in authority for c in " \t\r\n/?#@"):
            r.error("authority", f"{authority!r} is not a host[:port]")
        ctype = r.string(
            "content_type", DEFAULT_CONTENT_TYPE, pattern=_CONTENT_TYPE, what="a media type"
        )
        prefix = r.string("path_prefix", "", pattern=_PATH_PREFIX, what="a path such as /rpc")
        drop = r.name_set("drop_headers")
        r.finish()
        return cls(authority=authority, content_type=ctype, path_prefix=prefix, drop_headers=drop)

    def _pair(self) -> str:
        return f"bolt->{self.upstream}"

    def request(self, frame: Frame) -> Frame:
        """The HTTP request for Bolt request ``frame``. Raises ``TranslationError``
        (CODEC_ERROR) for a heartbeat, a non-RPC frame or a request naming no service."""
        extra = bolt_request_kind(frame, self._pair())
        headers = frame.headers
        drop = self._drop
        fields: list[tuple[str, str]] = []
        for k, v in headers.items():
            key = k.lower()
            if key in drop or not HTTP_TOKEN.fullmatch(key):
                continue
            value = text_to_latin1(v.strip(" \t"))
            if HTTP_VALUE.fullmatch(value):
                fields.append((PREFIX + key, value))
        unique = headers.get(TARGET_SERVICE) or headers.get(SERVICE)
        iface = interface_of(unique) if unique else ""
        if not iface:
            raise TranslationError(
                ProxyStatus.CODEC_ERROR,
                f"{self._pair()}: the request names no service (no {TARGET_SERVICE} or "
                f"{SERVICE} header)",
            )
        method = headers.get(METHOD_NAME)
        path = f"{self._path_prefix}/{quote(iface, safe=_SEGMENT_SAFE)}"
        if method:
            path = f"{path}/{quote(method, safe=_SEGMENT_SAFE)}"
        authority = self._authority or quote(iface, safe=_SEGMENT_SAFE)
        pairs = [
            (":method", "POST"),
            (":scheme", "http"),
            (":authority", authority),
            (":path", path),
            ("content-type", self._content_type),
            (CODEC_FIELD, str(extra.codec)),
            (TIMEOUT_FIELD, str(frame.timeout_ms)),
        ]
        pairs += fields
        return Frame(
            frame.stream_type if frame.stream_type is StreamType.ONEWAY else StreamType.REQUEST,
            0,
            HeaderList(pairs),
            frame.body,
            0,
            frame.timeout_ms if frame.timeout_ms > 0 else 0,
            False,
            True,
            None,
            self.upstream,
        )

    def response(self, whole: Frame, request: Frame) -> Frame:
        """The Bolt response to ``request`` for the whole HTTP response ``whole``. Never
        raises."""
        head = whole.headers
        code = whole.status or (_int_field(head.get(":status"), 100, 599) or 502)
        out: dict[str, str] = {}
        for name, value in _items(head):
            if name.startswith(PREFIX):
                key = name[_PLEN:]
                if key in _RESERVED_KEYS:
                    continue
                out[bolt_key(key)] = latin1_to_text(value)
        status = _int_field(head.get(STATUS_FIELD), 0, 0xFFFF)
        if status is None:
            status = bolt_status_for_http(code)
            if status:
                out[RESPONSE_ERROR] = "true"
        return bolt_response(request, status, out, whole.body)


class BoltToHttp2(BoltToHttp):
    """``BoltToHttp`` with an HTTP/2 upstream (same mapping)."""

    upstream: ClassVar[str] = "http2"
    __slots__ = ()
