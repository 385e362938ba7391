from __future__ import annotations

import uuid

from mosn_py.codecs.base import HeaderList
from mosn_py.filters.network.http_heads import prepare_request, prepare_response

PSEUDO = [(":method", "GET"), (":scheme", "http"), (":authority", "a.example"), (":path", "/x")]


def test_request_hop_by_hop_and_forwarding_headers() -> None:
    h = HeaderList(
        [
            *PSEUDO,
            ("connection", "keep-alive, X-Custom"),
            ("keep-alive", "timeout=5"),
            ("x-custom", "drop me"),
            ("transfer-encoding", "chunked"),
            ("te", "gzip, trailers"),
            ("proxy-connection", "keep-alive"),
            ("x-forwarded-for", "10.0.0.1"),
            ("x-forwarded-proto", "https"),  # a client's claim: replaced
            ("accept", "*/*"),
        ]
    )
    out = prepare_request(h, client_ip="127.0.0.1", scheme="http")
    items = out.items_all()
    assert items[:4] == tuple(PSEUDO)  # pseudo-headers untouched, first
    assert "connection" not in out and "keep-alive" not in out and "x-custom" not in out
    assert "transfer-encoding" not in out and "proxy-connection" not in out
    assert out.get_all("te") == ["trailers"]  # gRPC needs te: trailers
    assert out["x-forwarded-for"] == "10.0.0.1, 127.0.0.1"
    assert out.get_all("x-forwarded-proto") == ["http"]
    assert uuid.UUID(out["x-request-id"]).version == 4
    assert out["accept"] == "*/*"


def test_request_id_kept_and_upgrade_kept_for_tunnels() -> None:
    h = HeaderList(
        [*PSEUDO, ("connection", "Upgrade"), ("upgrade", "websocket"), ("x-request-id", "abc")]
    )
    out = prepare_request(h, client_ip="", scheme="https")
    assert out["upgrade"] == "websocket" and out["connection"] == "upgrade"
    assert out["x-request-id"] == "abc" and "x-forwarded-for" not in out
    assert out["x-forwarded-proto"] == "https"


def test_response_hop_by_hop() -> None:
    h = HeaderList(
        [
            (":status", "200"),
            ("connection", "close"),
            ("keep-alive", "x"),
            ("content-type", "text/plain"),
        ]
    )
    assert prepare_response(h, status=200).items_all() == (
        (":status", "200"),
        ("content-type", "text/plain"),
    )
    up = HeaderList([(":status", "101"), ("connection", "upgrade"), ("upgrade", "websocket")])
    assert prepare_response(up, status=101)["upgrade"] == "websocket"
