"""Shared pieces of the Envoy -> YAML-schema conversion (``convert.py`` and ``convert_*.py``).

The converters read a set field only if they implement what it means; every other set field
is refused with a ``ConversionError`` naming the resource and the field path, so that a
control plane's intent is never silently dropped (see docs/xds.md). ``check_fields`` is that
rule, applied per message with an allow-list of the fields handled and a list of harmless
ones ignored (names, stat prefixes, buffer sizes...).

Values come out in the YAML schema of ``config/loader.py``: durations as float seconds,
addresses as ``host:port`` / ``[v6]:port`` strings. Checks the loader makes anyway
(``parse_config``) are left to it: this layer refuses what the YAML schema *cannot say*.
"""

from __future__ import annotations

import math
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from envoy.extensions.access_loggers.file.v3 import file_pb2
from envoy.extensions.access_loggers.stream.v3 import stream_pb2
from google.protobuf import any_pb2, struct_pb2
from udpa.type.v1 import typed_struct_pb2 as udpa_typed_struct_pb2
from xds.type.v3 import typed_struct_pb2 as xds_typed_struct_pb2

__all__ = [
    "ClusterPart",
    "ConversionError",
    "ListenerPart",
    "Where",
    "access_log",
    "check_fields",
    "config_source",
    "data_source_text",
    "duration",
    "join",
    "optional_duration",
    "refuse_if",
    "socket_address",
    "struct_to_data",
    "type_name",
    "typed_struct",
    "unpack",
]

_XDS_TYPED_STRUCT = "xds.type.v3.TypedStruct"
_UDPA_TYPED_STRUCT = "udpa.type.v1.TypedStruct"


class ConversionError(Exception):
    """An xDS resource mosn-py cannot take as it is (the client NACKs the response).

    ``str()`` is one line naming the resource and the field path, e.g.
    ``Cluster 'backend': lb_policy MAGLEV is not supported (expected ROUND_ROBIN, RANDOM or
    LEAST_REQUEST)``. Characters that are not printable (names and values come from the
    wire) are escaped, so the message stays one line.
    """

    def __init__(self, message: str) -> None:
        super().__init__("".join(c if c.isprintable() else repr(c)[1:-1] for c in message))


@dataclass(frozen=True)
class ListenerPart:
    """One Listener resource, converted.

    ``listener`` is a YAML listener mapping (for L7 listeners its ``route`` key names the
    route config); ``route`` an inline route config (a YAML route mapping with its ``name``)
    or None; ``rds`` the RouteConfiguration to fetch over RDS, or None;
    ``cluster_protocols`` maps the clusters this listener names to the protocol that use
    implies (tcp_proxy -> ``tcp``, redis_proxy -> ``redis``, an HTTP connection manager ->
    ``http1``), for clusters whose resource says no protocol.
    """

    name: str
    listener: dict[str, Any]
    route: dict[str, Any] | None
    rds: str | None
    cluster_protocols: dict[str, str]


@dataclass(frozen=True)
class ClusterPart:
    """One Cluster resource, converted: ``cluster`` is a YAML cluster mapping (no
    ``endpoints`` for EDS clusters; no ``protocol`` unless the resource says one); ``eds``
    the ClusterLoadAssignment name for EDS clusters, else None."""

    name: str
    cluster: dict[str, Any]
    eds: str | None


class Where:
    """The resource being converted, to name it in errors: ``Where("Cluster", "backend")``."""

    __slots__ = ("kind", "name")

    def __init__(self, kind: str, name: str) -> None:
        self.kind = kind
        self.name = name

    def error(self, text: str) -> ConversionError:
        """``ConversionError("<kind> '<name>': <text>")`` (to raise)."""
        return ConversionError(f"{self.kind} '{self.name}': {text}")

    def unsupported(self, path: str, why: str = "") -> ConversionError:
        """``<path> is not supported`` plus an optional explanation (to raise)."""
        return self.error(f"{path} is not supported{f' ({why})' if why else ''}")


def join(path: str, name: str) -> str:
    """``a.b`` + ``c`` -> ``a.b.c``; a field of the resource itself has no leading dot."""
    return f"{path}.{name}" if path else name


def check_fields(
    where: Where,
    path: str,
    msg: Any,
    handled: Collection[str],
    ignored: Collection[str] = (),
) -> None:
    """Refuse every set field of ``msg`` that is neither ``handled`` (the caller reads it)
    nor ``ignored`` (harmless for mosn-py: names, statistics, buffer tuning).

    "Set" is protobuf presence (``ListFields``): a non-default scalar, a present message or
    wrapper, a non-empty list or map, or any member of a oneof. Unknown fields (from a newer
    proto than ours) are skipped, as Envoy and gRPC do by default.
    Raises ``ConversionError``: ``<kind> '<name>': <path>.<field> is not supported``.
    """
    for fd, _ in msg.ListFields():
        if fd.name not in handled and fd.name not in ignored:
            raise where.unsupported(join(path, fd.name))


def duration(where: Where, path: str, msg: Any) -> float:
    """A ``google.protobuf.Duration`` as float seconds (exact for whole nanoseconds that a
    decimal YAML duration can write). Raises ``ConversionError`` for a negative or
    malformed one."""
    seconds, nanos = int(msg.seconds), int(msg.nanos)
    if seconds < 0 or nanos < 0 or nanos >= 1_000_000_000:
        raise where.error(f"{path}: invalid duration ({seconds}s {nanos}ns)")
    return (seconds * 1_000_000_000 + nanos) / 1e9


def optional_duration(where: Where, path: str, msg: Any) -> float | None:
    """As ``duration``, but 0 means "no limit" (Envoy's convention), returned as None."""
    value = duration(where, path, msg)
    return value if value > 0 else None


def socket_address(where: Where, path: str, msg: Any) -> str:
    """An ``envoy.config.core.v3.Address`` as ``host:port`` (``[v6]:port`` for IPv6).

    Only ``socket_address`` with a TCP ``port_value`` is taken; pipes, internal addresses,
    named ports, resolvers and UDP are refused.
    """
    kind = msg.WhichOneof("address")
    if kind is None:
        raise where.error(f"{path}: no socket_address")
    if kind != "socket_address":
        raise where.unsupported(join(path, kind), "only socket_address")
    sock = msg.socket_address
    spath = join(path, "socket_address")
    check_fields(where, spath, sock, ("address", "port_value", "protocol", "ipv4_compat"))
    if sock.protocol != 0:
        raise where.unsupported(join(spath, "protocol"), "only TCP")
    if sock.ipv4_compat:
        raise where.unsupported(join(spath, "ipv4_compat"), "mosn-py binds IPv6 sockets v6-only")
    host = str(sock.address)
    if not host:
        raise where.error(f"{join(spath, 'address')}: must not be empty")
    port = int(sock.port_value)
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def data_source_text(where: Where, path: str, msg: Any, *, want: str) -> str:
    """The one specifier of an ``envoy.config.core.v3.DataSource`` that the caller accepts:
    ``want="filename"`` (certificates, keys and CAs are read from files by the loader) or
    ``want="inline"`` (``inline_string``, or ``inline_bytes`` holding UTF-8: passwords,
    response bodies). Anything else is refused with a message saying what to give."""
    check_fields(where, path, msg, ("filename", "inline_bytes", "inline_string"))
    kind = msg.WhichOneof("specifier")
    if kind is None:
        raise where.error(f"{path}: empty data source")
    if want == "filename":
        if kind != "filename":
            raise where.unsupported(
                join(path, kind), "mosn-py reads certificates and keys from files; give filename"
            )
        return str(msg.filename)
    if kind == "inline_string":
        return str(msg.inline_string)
    if kind == "inline_bytes":
        try:
            return bytes(msg.inline_bytes).decode("utf-8")
        except UnicodeDecodeError:
            raise where.error(f"{join(path, 'inline_bytes')}: not UTF-8 text") from None
    raise where.unsupported(join(path, kind), "give inline_string")


def type_name(msg: any_pb2.Any) -> str:
    """The full protobuf name an ``Any`` holds (its type URL after the last '/')."""
    return str(msg.type_url).rpartition("/")[2]


def unpack(where: Where, path: str, msg: any_pb2.Any, cls: Any) -> Any:
    """``msg`` unpacked into a new ``cls``; ``ConversionError`` if it holds another type or
    bytes that do not parse."""
    out = cls()
    want = out.DESCRIPTOR.full_name
    if type_name(msg) != want:
        raise where.error(f"{path}: expected {want}, got {type_name(msg) or 'no type'}")
    try:
        out.ParseFromString(msg.value)
    except Exception as exc:  # DecodeError, or RecursionError-like limits of the parser
        raise where.error(f"{path}: invalid {want} ({exc})") from None
    return out


def typed_struct(where: Where, path: str, msg: any_pb2.Any) -> tuple[str, dict[str, Any]] | None:
    """``(inner type URL, value)`` if ``msg`` is a TypedStruct (``xds.type.v3`` or the legacy
    ``udpa.type.v1`` spelling), else None. The value is plain data (``struct_to_data``)."""
    name = type_name(msg)
    if name == _XDS_TYPED_STRUCT:
        ts = unpack(where, path, msg, xds_typed_struct_pb2.TypedStruct)
    elif name == _UDPA_TYPED_STRUCT:
        ts = unpack(where, path, msg, udpa_typed_struct_pb2.TypedStruct)
    else:
        return None
    return str(ts.type_url), struct_to_data(where, join(path, "value"), ts.value)


def struct_to_data(where: Where, path: str, msg: struct_pb2.Struct) -> dict[str, Any]:
    """A ``google.protobuf.Struct`` as YAML-like data: dicts, lists, str, bool, None and
    numbers, whole numbers as int (a Struct holds only doubles). Non-finite numbers are
    refused (no YAML value of ours is one)."""
    return {str(k): _value(where, f"{path}[{k!r}]", v) for k, v in msg.fields.items()}


def _value(where: Where, path: str, msg: struct_pb2.Value) -> Any:
    kind = msg.WhichOneof("kind")
    if kind == "struct_value":
        return struct_to_data(where, path, msg.struct_value)
    if kind == "list_value":
        return [_value(where, f"{path}[{i}]", v) for i, v in enumerate(msg.list_value.values)]
    if kind == "string_value":
        return str(msg.string_value)
    if kind == "bool_value":
        return bool(msg.bool_value)
    if kind == "number_value":
        number = float(msg.number_value)
        if not math.isfinite(number):
            raise where.error(f"{path}: {number} is not a finite number")
        return int(number) if number.is_integer() else number
    return None  # null_value, or no kind at all


def refuse_if(where: Where, path: str, msg: Any, names: Collection[str], bad: bool) -> None:
    """Refuse each of ``names`` (bool fields or ``BoolValue`` wrappers of ``msg``) that is
    set to ``bad``: the other value is the behaviour mosn-py has, so it is accepted."""
    for name in names:
        raw = getattr(msg, name)
        if hasattr(raw, "value"):  # a BoolValue: unset means the default, which is fine
            if not msg.HasField(name):
                continue
            raw = raw.value
        if bool(raw) is bad:
            raise where.unsupported(f"{join(path, name)} {str(bad).lower()}")


def config_source(where: Where, path: str, msg: Any) -> None:
    """An RDS/EDS ``ConfigSource`` must be ``ads`` or ``self``: mosn-py fetches everything
    over its one ADS stream (as gRPC does: "ConfigSource is not ads or self")."""
    if msg.WhichOneof("config_source_specifier") not in ("ads", "self"):
        raise where.error(f"{path}: must be ads or self (mosn-py fetches over its ADS stream)")
    check_fields(
        where, path, msg, ("ads", "self", "resource_api_version"), ("initial_fetch_timeout",)
    )
    if msg.resource_api_version == 1:  # V2
        raise where.unsupported(join(path, "resource_api_version") + " V2", "only V3")


_FILE_LOG = "envoy.extensions.access_loggers.file.v3.FileAccessLog"
_STDOUT_LOG = "envoy.extensions.access_loggers.stream.v3.StdoutAccessLog"
STDOUT_PATHS = ("/dev/stdout", "-")


def access_log(where: Where, path: str, logs: Any) -> dict[str, Any] | None:
    """``access_log`` (a list of ``AccessLog``) -> our ``{path}``: at most one logger, a
    FileAccessLog (``/dev/stdout`` = ``-``, our stdout) or a StdoutAccessLog, with no
    filter and no custom format (mosn-py writes its own JSON lines)."""
    if not logs:
        return None
    if len(logs) > 1:
        raise where.unsupported(f"{path}[1]", "one access log per listener")
    log = logs[0]
    lpath = f"{path}[0]"
    check_fields(where, lpath, log, ("typed_config",), ("name",))
    if not log.HasField("typed_config"):
        raise where.error(f"{lpath}: no typed_config")
    cpath = join(lpath, "typed_config")
    kind = type_name(log.typed_config)
    if kind == _FILE_LOG:
        cfg = unpack(where, cpath, log.typed_config, file_pb2.FileAccessLog)
        check_fields(where, cpath, cfg, ("path",))
        text = str(cfg.path)
        if not text:
            raise where.error(f"{join(cpath, 'path')}: must not be empty")
        return {"path": "-" if text in STDOUT_PATHS else text}
    if kind == _STDOUT_LOG:
        check_fields(
            where, cpath, unpack(where, cpath, log.typed_config, stream_pb2.StdoutAccessLog), ()
        )
        return {"path": "-"}
    raise where.unsupported(
        f"{cpath} {kind or 'without a type'}", "only FileAccessLog and StdoutAccessLog"
    )
