"""What the translators share: SOFARPC header names, gRPC message framing, header checks,
Bolt response building and option parsing.

Nothing here keeps state between requests. Regular expressions are compiled once, at import.
"""

from __future__ import annotations

import difflib
import math
import re
import struct
from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import Any, Final

from mosn_py.codecs.base import Frame, StreamType
from mosn_py.codecs.bolt.wire import (
    CMD_RPC_REQUEST,
    CMD_RPC_RESPONSE,
    CODEC_HESSIAN2,
    CODEC_HESSIAN_LEGACY,
    CODEC_JAVA,
    CODEC_JSON,
    CODEC_PROTOBUF,
    MAX_SHORT_LEN,
    PROTO_V1,
    SOFA_REQUEST_CLASS,
    SOFA_RESPONSE_CLASS,
    TYPE_REQUEST,
    TYPE_RESPONSE,
    BoltExtra,
    RespStatus,
)
from mosn_py.errors import ConfigError, ProxyStatus
from mosn_py.translate.base import TranslationError

# --- SOFARPC header keys (reference/bolt.md §4) ----------------------------------------------

TARGET_SERVICE: Final = "sofa_head_target_service"
METHOD_NAME: Final = "sofa_head_method_name"
TARGET_APP: Final = "sofa_head_target_app"
SERVICE: Final = "service"
RESPONSE_ERROR: Final = "sofa_head_response_error"

# Keys whose canonical spelling has capitals. HTTP/2 and gRPC lower-case every field name, and
# Java servers look these up case-sensitively, so a translator into Bolt restores them. The
# trace keys are SOFA Tracer's (``rpc_trace_context.`` + the tracer's context keys).
_MIXED_CASE_KEYS: Final = tuple(
    f"rpc_trace_context.{k}"
    for k in (
        "sofaTraceId",
        "sofaRpcId",
        "sofaCallerApp",
        "sofaCallerIdc",
        "sofaCallerIp",
        "sofaCallerZone",
        "sofaPenAttrs",
        "sysPenAttrs",
    )
)
SOFA_KEY_CASE: Final[Mapping[str, str]] = MappingProxyType({k.lower(): k for k in _MIXED_CASE_KEYS})

CODEC_NAMES: Final[Mapping[int, str]] = MappingProxyType(
    {
        CODEC_HESSIAN2: "hessian2",
        CODEC_JAVA: "java",
        CODEC_HESSIAN_LEGACY: "hessian",
        CODEC_PROTOBUF: "protobuf",
        CODEC_JSON: "json",
    }
)
CODEC_BY_NAME: Final[Mapping[str, int]] = MappingProxyType(
    {name: code for code, name in CODEC_NAMES.items()}
)


def codec_label(codec: int) -> str:
    name = CODEC_NAMES.get(codec)
    return f"{codec} ({name})" if name else str(codec)


def parse_codec(value: str) -> int | None:
    """A Bolt codec byte from a name (``protobuf``, ``hessian2`` ...) or a number 0-255."""
    text = value.strip().lower()
    code = CODEC_BY_NAME.get(text)
    if code is not None:
        return code
    if text.isdigit() and text.isascii() and len(text) <= 3 and int(text) <= 0xFF:
        return int(text)
    return None


def interface_of(unique_name: str) -> str:
    """``iface:version[:uniqueId]`` -> ``iface`` (reference/bolt.md §9 step 2)."""
    return unique_name.partition(":")[0]


def resp_status_label(status: int) -> str:
    try:
        return f"{status} {RespStatus(status).name}"
    except ValueError:
        return str(status)


# gRPC method paths: proto identifiers (``pkg.Service``, ``Method``), plus ``$`` for Java
# nested interfaces. Anything else cannot be a gRPC method on the other side.
GRPC_NAME: Final = re.compile(r"[A-Za-z0-9_.$-]+")

# --- Bolt frames -----------------------------------------------------------------------------

BOLT_PROTOCOL: Final = "bolt"
EMPTY_MAP: Final[Mapping[str, str]] = MappingProxyType({})
ERROR_HEADERS: Final[Mapping[str, str]] = MappingProxyType({RESPONSE_ERROR: "true"})
SUCCESS_HEADERS: Final[Mapping[str, str]] = MappingProxyType({RESPONSE_ERROR: "false"})

_DEFAULT_REQUEST_EXTRA: Final = BoltExtra()
_response_extras: dict[tuple[int, int, int, int, int], BoltExtra] = {}
_request_extras: dict[int, BoltExtra] = {}
_EXTRA_CACHE_MAX: Final = 256


def bolt_request_kind(frame: Frame, pair: str) -> BoltExtra:
    """The ``BoltExtra`` of an RPC request (v1 protobuf when the frame has none).

    Raises ``TranslationError(CODEC_ERROR)`` for a heartbeat, a response or a frame whose
    cmdcode is not RPC_REQUEST: only RPC calls are translated (the proxy answers heartbeats).
    """
    if frame.stream_type is StreamType.RESPONSE:
        raise TranslationError(ProxyStatus.CODEC_ERROR, f"{pair}: a response is not a request")
    if frame.is_heartbeat:
        raise TranslationError(
            ProxyStatus.CODEC_ERROR,
            f"{pair}: a heartbeat is not translated (the proxy acknowledges it itself)",
        )
    extra = frame.extra
    if not isinstance(extra, BoltExtra):
        return _DEFAULT_REQUEST_EXTRA
    if extra.cmdcode != CMD_RPC_REQUEST:
        raise TranslationError(
            ProxyStatus.CODEC_ERROR,
            f"{pair}: cmdcode {extra.cmdcode} is not an RPC request (cmdcode 1)",
        )
    return extra


def bolt_request_extra(codec: int) -> BoltExtra:
    """A v1 request's ``BoltExtra`` with ``codec`` and the SofaRequest class (shared)."""
    extra = _request_extras.get(codec)
    if extra is None:
        extra = BoltExtra(
            PROTO_V1, 1, TYPE_REQUEST, CMD_RPC_REQUEST, 1, codec, 0, SOFA_REQUEST_CLASS
        )
        if len(_request_extras) < _EXTRA_CACHE_MAX:
            _request_extras[codec] = extra
    return extra


def bolt_request(
    headers: Mapping[str, str],
    content: bytes | memoryview,
    timeout_ms: int,
    codec: int,
) -> Frame:
    """A Bolt v1 RPC request as SOFARPC clients send it; ``request_id`` 0 (the pool's job)."""
    return Frame(
        StreamType.REQUEST,
        0,
        headers,
        content,
        0,
        timeout_ms,
        False,
        True,
        None,
        BOLT_PROTOCOL,
        bolt_request_extra(codec),
    )


def bolt_response(
    request: Frame, status: int, headers: Mapping[str, str], content: bytes | memoryview
) -> Frame:
    """The Bolt RPC response to ``request``: its id, and the proto/ver1/ver2/codec/switch of its
    ``BoltExtra`` mirrored (v2 with CRC answers v2 with CRC), class SofaResponse."""
    like = request.extra if isinstance(request.extra, BoltExtra) else _DEFAULT_REQUEST_EXTRA
    key = (like.proto, like.ver1, like.ver2, like.codec, like.switch)
    extra = _response_extras.get(key)
    if extra is None:
        extra = BoltExtra(
            like.proto,
            like.ver1,
            TYPE_RESPONSE,
            CMD_RPC_RESPONSE,
            like.ver2,
            like.codec,
            like.switch,
            SOFA_RESPONSE_CLASS,
        )
        if len(_response_extras) < _EXTRA_CACHE_MAX:
            _response_extras[key] = extra
    return Frame(
        StreamType.RESPONSE,
        request.request_id,
        headers,
        content,
        status,
        0,
        False,
        True,
        None,
        BOLT_PROTOCOL,
        extra,
    )


def check_header_map_size(headers: Mapping[str, str], pair: str) -> None:
    """Raise ``TranslationError(CODEC_ERROR)`` when ``headers`` would not fit a Bolt header
    map (headerLen is a signed 16-bit field, reference/bolt.md §8)."""
    rough = 0
    for k, v in headers.items():
        rough += len(k) + len(v) + 8
    if rough * 4 <= MAX_SHORT_LEN:  # even all-4-byte UTF-8 fits: skip the exact count
        return
    exact = 0
    for k, v in headers.items():
        exact += len(k.encode("utf-8", "surrogatepass")) + len(v.encode("utf-8", "surrogatepass"))
        exact += 8
    if exact > MAX_SHORT_LEN:
        raise TranslationError(
            ProxyStatus.CODEC_ERROR,
            f"{pair}: the headers make a Bolt header map of {exact} bytes, above its "
            f"{MAX_SHORT_LEN}-byte limit",
        )


# --- gRPC messages (gRPC PROTOCOL-HTTP2.md "Length-Prefixed-Message") -------------------------

_GRPC_PREFIX: Final = struct.Struct(">BI")
GRPC_PREFIX_LEN: Final = 5


class MessageError(Exception):
    """The body is not exactly one uncompressed gRPC message; ``str()`` says why."""


def grpc_frame_message(message: bytes | memoryview) -> bytes:
    """``message`` with its 5-byte prefix: compressed-flag 0, u32 length (one copy)."""
    return b"".join((_GRPC_PREFIX.pack(0, len(message)), message))


def grpc_single_message(body: bytes | memoryview) -> memoryview:
    """The one message in a unary call's body, without its prefix (a view, no copy).

    Raises ``MessageError`` for an empty body, a compressed or malformed message, or more
    than one message.
    """
    n = len(body)
    if n < GRPC_PREFIX_LEN:
        if n == 0:
            raise MessageError("no message (empty body)")
        raise MessageError(f"a truncated message prefix ({n} bytes)")
    flag, length = _GRPC_PREFIX.unpack_from(body, 0)
    if flag != 0:
        if flag == 1:
            raise MessageError(
                "a compressed message (grpc-encoding); compression is not supported, turn it "
                "off for this call"
            )
        raise MessageError(f"an invalid compressed-flag byte 0x{flag:02x}")
    end = GRPC_PREFIX_LEN + length
    if end != n:
        if end > n:
            raise MessageError(
                f"a truncated message (its prefix says {length} bytes, {n - 5} arrived)"
            )
        raise MessageError(f"{_count_messages(body)} where a unary call has one")
    view = body if isinstance(body, memoryview) else memoryview(body)
    return view[GRPC_PREFIX_LEN:]


def _count_messages(body: bytes | memoryview) -> str:
    """ "<n> messages", or "<n> messages and a truncated one" (error path only)."""
    pos = 0
    count = 0
    n = len(body)
    while pos < n:
        if pos + GRPC_PREFIX_LEN > n:
            break
        _, length = _GRPC_PREFIX.unpack_from(body, pos)
        if pos + GRPC_PREFIX_LEN + length > n:
            break
        pos += GRPC_PREFIX_LEN + length
        count += 1
    whole = f"{count} message{'' if count == 1 else 's'}"
    return whole if pos == n else f"{whole} and a truncated one"


def grpc_timeout_value(ms: int) -> str:
    """``grpc-timeout`` for ``ms`` > 0: ``<n>m``, or whole seconds (rounded up) when the
    milliseconds do not fit the 8 digits gRPC allows."""
    if ms <= 99_999_999:
        return f"{ms}m"
    return f"{-(-ms // 1000)}S"


# gRPC metadata (PROTOCOL-HTTP2.md "Custom-Metadata"): lower-case keys of digits, letters,
# ``_-.``; ``grpc-`` is reserved for gRPC itself; text values are printable ASCII; ``-bin``
# values travel base64-encoded (the encoded text is what Bolt carries, both ways).
GRPC_METADATA_KEY: Final = re.compile(r"(?!grpc-)[0-9a-z_.-]+")
GRPC_METADATA_VALUE: Final = re.compile(r"[\x20-\x7e]*")
BASE64_VALUE: Final = re.compile(r"[A-Za-z0-9+/]*={0,2}")

# --- HTTP fields (RFC 9110 §5) ---------------------------------------------------------------

# RFC 9110 §7.6.1 hop-by-hop fields, plus HTTP/2's connection-specific ones (RFC 9113
# §8.2.2): they describe one connection and never cross a proxy, let alone a translation.
HOP_BY_HOP: Final = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-connection",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "http2-settings",
    }
)
HTTP_TOKEN: Final = re.compile(r"[!#$%&'*+.^_`|~0-9a-z-]+")
# A field value with the surrounding whitespace already stripped: no CTL but HTAB.
HTTP_VALUE: Final = re.compile(r"[^\x00-\x08\x0a-\x1f\x7f]*")


def connection_tokens(headers: Mapping[str, str]) -> frozenset[str]:
    """The field names a ``Connection`` header lists (hop-by-hop too, RFC 9110 §7.6.1)."""
    value = headers.get("connection")
    if not value:
        return frozenset()
    return frozenset(t.strip().lower() for t in value.split(",") if t.strip())


def latin1_to_text(value: str) -> str:
    """An HTTP field value (octets as latin-1, see ``HeaderList``) as the text its UTF-8
    octets spell; invalid UTF-8 becomes U+FFFD."""
    if value.isascii():
        return value
    return value.encode("latin-1", "replace").decode("utf-8", "replace")


def text_to_latin1(value: str) -> str:
    """The inverse of ``latin1_to_text``: text -> its UTF-8 octets as latin-1 characters."""
    if value.isascii():
        return value
    return value.encode("utf-8", "surrogatepass").decode("latin-1")


def bolt_key(name: str) -> str:
    """A lower-cased field name as a Bolt header key (SOFA's mixed-case keys restored)."""
    return SOFA_KEY_CASE.get(name, name)


# --- options ---------------------------------------------------------------------------------


class OptionReader:
    """Reads one translator's options, collecting one ``ConfigError`` line per problem.

    Lines start with the option's name (``services['a.B']: ...``); the config loader puts
    the path of the rule's ``translate`` key in front. ``finish()`` raises when anything
    was wrong.
    """

    __slots__ = ("_errors", "_options", "_pair")

    def __init__(self, options: Mapping[str, Any] | None, known: Iterable[str], pair: str):
        self._pair = pair
        self._errors: list[str] = []
        if options is None:
            options = {}
        if not isinstance(options, Mapping):
            self._errors.append(f"expected a mapping of {pair} options, got {_describe(options)}")
            options = {}
        known = tuple(known)
        for key in options:
            if key not in known:
                close = difflib.get_close_matches(str(key), known, n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                self._errors.append(
                    f"{key}: unknown {pair} option{hint}; known: {', '.join(known)}"
                )
        self._options = options

    def error(self, key: str, message: str) -> None:
        self._errors.append(f"{key}: {message}")

    def has(self, key: str) -> bool:
        return key in self._options

    def string(
        self, key: str, default: str, *, pattern: re.Pattern[str] | None = None, what: str = ""
    ) -> str:
        """A string option; with ``pattern``, one that matches it (``what`` describes it)."""
        value = self._options.get(key, default)
        if not isinstance(value, str):
            self.error(key, f"expected a string, got {_describe(value)}")
            return default
        if pattern is not None and not pattern.fullmatch(value):
            self.error(key, f"{value!r} is not {what or 'valid here'}")
            return default
        return value

    def boolean(self, key: str, default: bool) -> bool:
        value = self._options.get(key, default)
        if not isinstance(value, bool):
            self.error(key, f"expected true or false, got {_describe(value)}")
            return default
        return value

    def name_map(self, key: str, what: str, pattern: re.Pattern[str]) -> dict[str, str]:
        """A mapping of names to names, each side matching ``pattern``."""
        value = self._options.get(key)
        if value is None:
            return {}
        if not isinstance(value, Mapping):
            self.error(key, f"expected a mapping of {what}, got {_describe(value)}")
            return {}
        out: dict[str, str] = {}
        for k, v in value.items():
            if not isinstance(k, str) or not pattern.fullmatch(k):
                self.error(f"{key}[{k!r}]", f"{k!r} is not a valid name for {what}")
            elif not isinstance(v, str) or not pattern.fullmatch(v):
                self.error(f"{key}[{k!r}]", f"{v!r} is not a valid name for {what}")
            else:
                out[k] = v
        return out

    def name_set(self, key: str) -> frozenset[str]:
        """A list of header names, lower-cased."""
        value = self._options.get(key)
        if value is None:
            return frozenset()
        if not isinstance(value, list | tuple):
            self.error(key, f"expected a list of header names, got {_describe(value)}")
            return frozenset()
        out: set[str] = set()
        for i, item in enumerate(value):
            if not isinstance(item, str) or not item.strip():
                self.error(f"{key}[{i}]", f"expected a header name, got {_describe(item)}")
            else:
                out.add(item.strip().lower())
        return frozenset(out)

    def timeout_ms(self, key: str, default_ms: int) -> int:
        """A duration (``3s``, ``250ms``; a number is seconds) as whole milliseconds, rounded
        up; ``0`` means "no timeout" and is returned as -1 (the Bolt wire's "none")."""
        if key not in self._options:
            return default_ms
        value = self._options[key]
        try:
            seconds = parse_duration(value)
        except ValueError as exc:
            self.error(key, str(exc))
            return default_ms
        ms = math.ceil(seconds * 1000)
        if ms > 0x7FFFFFFF:
            self.error(key, f"{value!r} does not fit the Bolt timeout field (int32 milliseconds)")
            return default_ms
        return ms if ms > 0 else -1

    def finish(self) -> None:
        if self._errors:
            raise ConfigError(self._errors)


# Durations as the config file writes them (config/values.py, which this layer does not
# import: it sits above the codecs and the translators): ``250ms``, ``3s``, ``1.5s``, ``1m30s``;
# a YAML number is seconds.
_DURATION_PART: Final = r"(\d+(?:\.\d*)?|\.\d+)(us|ms|s|m|h)"
_DURATION: Final = re.compile(rf"(?:{_DURATION_PART})+")
_DURATION_PARTS: Final = re.compile(_DURATION_PART)
_UNIT_SECONDS: Final[Mapping[str, float]] = MappingProxyType(
    {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
)


def parse_duration(value: object) -> float:
    """Seconds from ``250ms``, ``3s``, ``1m30s`` ... or a number of seconds; ``ValueError``
    for anything else (negatives, NaN, infinity, unitless strings)."""
    if isinstance(value, bool):
        raise ValueError(f"expected a duration such as 3s or 250ms, got {_describe(value)}")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str) and _DURATION.fullmatch(value.strip()):
        seconds = sum(
            float(num) * _UNIT_SECONDS[unit] for num, unit in _DURATION_PARTS.findall(value)
        )
    else:
        raise ValueError(f"expected a duration such as 3s or 250ms, got {_describe(value)}")
    if not math.isfinite(seconds) or seconds < 0:
        raise ValueError(f"{_describe(value)} is not a duration of zero or more")
    return seconds


def _describe(value: object) -> str:
    text = repr(value)
    if len(text) > 60:
        text = text[:57] + "..."
    return f"{type(value).__name__} {text}"
