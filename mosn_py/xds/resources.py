"""xDS resource types: type URLs, the ADS push order, and our own extension type URLs.

Envoy types come from the ``xds-protos`` package (../shared/reference/xds.md §3). Our own
protocols (Bolt, memcached, translation options, listener limits Envoy has no field for) travel
as ``xds.type.v3.TypedStruct`` (or the legacy ``udpa.type.v1.TypedStruct``) whose inner type
URL names a ``mosn_py.config.v1`` message and whose value is a ``google.protobuf.Struct`` in
the same shape as the YAML config (reference/xds.md §2.1): a control plane needs no protos of
ours to produce them.
"""

from __future__ import annotations

from typing import Any

from google.protobuf import any_pb2, json_format, struct_pb2
from udpa.type.v1 import typed_struct_pb2 as udpa_typed_struct_pb2
from xds.type.v3 import typed_struct_pb2 as xds_typed_struct_pb2

_PREFIX = "type.googleapis.com/"

LISTENER = _PREFIX + "envoy.config.listener.v3.Listener"
ROUTE = _PREFIX + "envoy.config.route.v3.RouteConfiguration"
CLUSTER = _PREFIX + "envoy.config.cluster.v3.Cluster"
ENDPOINT = _PREFIX + "envoy.config.endpoint.v3.ClusterLoadAssignment"

# Make before break (reference/xds.md §1.5): clusters, their endpoints, then the listeners
# and the routes that use them.
PUSH_ORDER: tuple[str, ...] = (CLUSTER, ENDPOINT, LISTENER, ROUTE)
# Types whose SotW responses hold the whole set (a missing resource is deleted) and that
# accept wildcard subscriptions (reference/xds.md §1.6-1.7).
FULL_STATE_TYPES: frozenset[str] = frozenset((LISTENER, CLUSTER))
SHORT_NAMES: dict[str, str] = {LISTENER: "LDS", ROUTE: "RDS", CLUSTER: "CDS", ENDPOINT: "EDS"}

# Our own extension configs (TypedStruct inner type URLs; documented in docs/xds.md)
MOSN_PROXY = _PREFIX + "mosn_py.config.v1.Proxy"  # network filter: an L7 listener of ours
MOSN_CLUSTER_OPTIONS = _PREFIX + "mosn_py.config.v1.ClusterOptions"  # protocol + extras
MOSN_LISTENER_OPTIONS = _PREFIX + "mosn_py.config.v1.ListenerOptions"  # extras on HCM/tcp
MOSN_FILTER_PREFIX = _PREFIX + "mosn_py.filters.v1."  # + stream filter name
MOSN_EXTENSION_NAME = "mosn_py"  # key in typed_extension_protocol_options / metadata

XDS_TYPED_STRUCT = _PREFIX + "xds.type.v3.TypedStruct"
UDPA_TYPED_STRUCT = _PREFIX + "udpa.type.v1.TypedStruct"


def typed_struct(type_url: str, value: dict[str, Any]) -> any_pb2.Any:
    """``Any(xds.type.v3.TypedStruct{type_url, value})`` carrying ``value`` as a Struct."""
    ts = xds_typed_struct_pb2.TypedStruct(type_url=type_url)
    ts.value.update(value)
    out = any_pb2.Any()
    out.Pack(ts)
    return out


def unpack_typed_struct(msg: any_pb2.Any) -> tuple[str, dict[str, Any]] | None:
    """``(inner type URL, value as plain Python data)`` for either TypedStruct spelling;
    None if ``msg`` is not a TypedStruct. Whole numbers come back as int (a Struct holds
    only doubles)."""
    if msg.type_url == XDS_TYPED_STRUCT:
        ts: Any = xds_typed_struct_pb2.TypedStruct()
    elif msg.type_url == UDPA_TYPED_STRUCT:
        ts = udpa_typed_struct_pb2.TypedStruct()
    else:
        return None
    msg.Unpack(ts)
    return ts.type_url, struct_to_python(ts.value)


def struct_to_python(value: struct_pb2.Struct) -> dict[str, Any]:
    return _ints(json_format.MessageToDict(value))  # type: ignore[no-any-return]


def _ints(obj: Any) -> Any:
    if isinstance(obj, float) and obj.is_integer():
        return int(obj)
    if isinstance(obj, dict):
        return {k: _ints(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_ints(v) for v in obj]
    return obj
