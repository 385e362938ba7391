"""Envoy xDS v3 resources -> the YAML-schema mappings ``config.loader.parse_config`` takes.

The proxy's ADS client decodes every response with ``decode`` and assembles the parts
(``xds/assemble.py``) into one config document, validated as a YAML file is: so xDS and
files share one model and one set of checks (STYLE.md §2.5). The converters refuse, with a
``ConversionError`` that names the resource and the field, any set field whose behaviour
mosn-py does not have; the client NACKs with that text. The mapping, field by field, is in
docs/xds.md; ``render.py`` is the other direction.

- ``listener_from_proto`` (convert_listener.py): Listener -> ``ListenerPart``
- ``route_from_proto``: RouteConfiguration -> YAML route mapping with ``virtual_hosts``
- ``cluster_from_proto`` / ``endpoints_from_proto`` (convert_cluster.py)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.endpoint.v3 import endpoint_pb2
from envoy.config.listener.v3 import listener_pb2
from envoy.config.route.v3 import route_pb2
from envoy.service.discovery.v3 import discovery_pb2
from google.protobuf import any_pb2

from mosn_py.xds.convert_cluster import cluster_from_proto, endpoints_from_proto
from mosn_py.xds.convert_common import (
    ClusterPart,
    ConversionError,
    ListenerPart,
    Where,
    type_name,
)
from mosn_py.xds.convert_http import route_config
from mosn_py.xds.convert_listener import listener_from_proto
from mosn_py.xds.resources import CLUSTER, ENDPOINT, LISTENER, ROUTE

__all__ = [
    "ClusterPart",
    "ConversionError",
    "ListenerPart",
    "cluster_from_proto",
    "decode",
    "endpoints_from_proto",
    "listener_from_proto",
    "route_from_proto",
]

_RESOURCE_WRAPPER = "envoy.service.discovery.v3.Resource"


def route_from_proto(msg: Any) -> dict[str, Any]:
    """An ``envoy.config.route.v3.RouteConfiguration`` -> ``{"name", "virtual_hosts"}`` in
    the schema of ``config/http_schema.py``. Raises ``ConversionError``
    (``RouteConfiguration '<name>': virtual_hosts[0].routes[2].route.hash_policy is not
    supported``)."""
    where = Where("RouteConfiguration", str(msg.name))
    if not msg.name:
        raise where.error("name must not be empty")
    return route_config(where, "", msg)


# type URL -> (message class, its name field, converter, resource kind for messages)
_TYPES: dict[str, tuple[Any, str, Callable[[Any], Any], str]] = {
    LISTENER: (listener_pb2.Listener, "name", listener_from_proto, "Listener"),
    ROUTE: (route_pb2.RouteConfiguration, "name", route_from_proto, "RouteConfiguration"),
    CLUSTER: (cluster_pb2.Cluster, "name", cluster_from_proto, "Cluster"),
    ENDPOINT: (
        endpoint_pb2.ClusterLoadAssignment,
        "cluster_name",
        endpoints_from_proto,
        "ClusterLoadAssignment",
    ),
}


def decode(type_url: str, resources: Sequence[any_pb2.Any]) -> dict[str, Any]:
    """Unpack and convert the resources of one DiscoveryResponse of ``type_url``.

    Each ``Any`` must hold that type, or an ``envoy.service.discovery.v3.Resource`` wrapping
    it. Returns name -> ``ListenerPart`` (LDS), route mapping (RDS), ``ClusterPart`` (CDS)
    or endpoint list (EDS), in response order. Raises ``ConversionError`` for an unknown
    type URL, a resource of another type, bytes that do not parse, a duplicate name, or any
    conversion error (each message names the resource, or its index when it has no name).
    """
    if type_url not in _TYPES:
        raise ConversionError(f"resource type {type_url} is not supported")
    cls, name_field, convert, kind = _TYPES[type_url]
    want = type_url.rpartition("/")[2]
    out: dict[str, Any] = {}
    index_of: dict[str, int] = {}
    for i, packed in enumerate(resources):
        wrapper_name = ""
        if type_name(packed) == _RESOURCE_WRAPPER:
            wrapper = _unpack(i, packed, discovery_pb2.Resource)
            if not wrapper.HasField("resource"):
                raise ConversionError(f"resources[{i}]: a Resource wrapper without a resource")
            wrapper_name = str(wrapper.name)
            packed = wrapper.resource
        if type_name(packed) != want:
            raise ConversionError(
                f"resources[{i}]: {type_name(packed) or 'no type'} in a {kind} response"
                f" (expected {want})"
            )
        msg = _unpack(i, packed, cls)
        name = str(getattr(msg, name_field))
        if wrapper_name and wrapper_name != name:
            raise Where(kind, name).error(f"the Resource wrapper is named '{wrapper_name}'")
        if name in index_of:
            raise Where(kind, name).error(
                f"duplicate name (resources[{index_of[name]}] and resources[{i}])"
            )
        index_of[name] = i
        out[name] = convert(msg)
    return out


def _unpack(index: int, packed: any_pb2.Any, cls: Any) -> Any:
    msg = cls()
    try:
        msg.ParseFromString(packed.value)
    except Exception as exc:  # DecodeError, or the parser's nesting limit
        raise ConversionError(
            f"resources[{index}]: invalid {msg.DESCRIPTOR.full_name} ({exc})"
        ) from None
    return msg
