"""Config checks of the interception keys: use_original_dst, bind_to_port, sniff_timeout,
forward_client_cert."""

from __future__ import annotations

from typing import Any

import pytest

from mosn_py.config.loader import parse_config
from mosn_py.errors import ConfigError


def base(*listeners: dict[str, Any]) -> dict[str, Any]:
    return {
        "listeners": [
            {"name": "outbound", "address": "0.0.0.0:15001", "use_original_dst": True,
             "cluster": "passthrough"},
            *listeners,
        ],
        "routes": [{"name": "web", "virtual_hosts": [{"name": "a", "domains": ["*"], "rules": [
            {"match": {"prefix": "/"}, "cluster": "web"}]}]},
            {"name": "keys", "rules": [{"cluster": "cache"}]}],
        "clusters": [{"name": "passthrough", "type": "original_dst"},
                     {"name": "web", "protocol": "http1", "endpoints": ["10.0.0.2:8080"]},
                     {"name": "cache", "protocol": "redis", "endpoints": ["10.0.0.2:6379"]},
                     {"name": "raw", "endpoints": ["10.0.0.2:8080"]}],
    }


def virtual(name: str, address: str, protocol: str, **kw: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"name": name, "address": address, "bind_to_port": False,
                           "protocol": protocol, **kw}
    if protocol == "tcp":
        out["cluster"] = "raw"
    else:
        out["route"] = "web" if protocol.startswith("http") else "keys"
    return out


def errors(data: dict[str, Any]) -> list[str]:
    with pytest.raises(ConfigError) as e:
        parse_config(data)
    return list(e.value.errors)


def test_virtual_listeners_share_an_address_when_protocols_differ() -> None:
    cfg = parse_config(base(virtual("h", "0.0.0.0:8080", "http1"),
                            virtual("r", "0.0.0.0:8080", "redis"),
                            virtual("t", "0.0.0.0:8080", "tcp"),
                            virtual("exact", "10.0.0.2:8080", "http1")))
    assert [ln.bind_to_port for ln in cfg.listeners] == [True, False, False, False, False]
    assert cfg.listeners[0].use_original_dst and cfg.listeners[0].sniff_timeout == 0.1


def test_same_address_and_protocol_twice_is_an_error() -> None:
    assert errors(base(virtual("h", "0.0.0.0:8080", "http1"),
                       virtual("h2", "0.0.0.0:8080", "http1"))) == [
        "listeners[2].address: address 0.0.0.0:8080 with protocol http1 is already used by"
        " listener 'h' (listeners[1])"]


def test_interception_key_errors() -> None:
    data = base(virtual("h", "0.0.0.0:8080", "http1", tls={"cert": "x", "key": "y"}))
    assert any(e.startswith("listeners[1].tls: not allowed with bind_to_port: false")
               for e in errors(data))
    data = base()
    data["listeners"][0]["protocol"] = "http1"
    data["listeners"][0]["route"] = "web"
    del data["listeners"][0]["cluster"]
    assert errors(data)[0].startswith("listeners[0].use_original_dst: needs protocol tcp")
    data = base(virtual("h", "0.0.0.0:8080", "http1", sniff_timeout="1s"))
    assert errors(data) == ["listeners[1].sniff_timeout: applies to use_original_dst"
                            " listeners only"]
    data = base(virtual("t", "0.0.0.0:9000", "tcp", forward_client_cert="sanitize_set"))
    assert errors(data) == ["listeners[1].forward_client_cert: applies to HTTP listeners only"]
    data = base(virtual("h", "0.0.0.0:8080", "http1", forward_client_cert="always"))
    assert errors(data)[0].startswith("listeners[1].forward_client_cert: unknown value 'always'")
    data = base()
    data["listeners"][0]["bind_to_port"] = False
    assert "a use_original_dst listener must bind" in errors(data)[0]
