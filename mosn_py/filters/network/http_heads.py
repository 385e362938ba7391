"""What an HTTP proxy does to every head it forwards (Envoy's HTTP connection manager).

Requests (``prepare_request``):
- hop-by-hop fields are removed (RFC 9110 §7.6.1): ``connection`` and every field it names,
  ``keep-alive``, ``proxy-connection``, ``te`` (except ``te: trailers``, which gRPC needs),
  ``trailer``, ``transfer-encoding`` and ``upgrade`` (kept for an upgrade tunnel, which the
  upstream must see);
- ``x-forwarded-for``: the client's address is appended;
- ``x-forwarded-proto``: set to the scheme the client used (``http``/``https``), replacing
  whatever the client claimed;
- ``x-request-id``: generated (a UUID4) when absent, kept when present.

Responses (``prepare_response``): hop-by-hop fields are removed the same way (``upgrade``
and ``connection: upgrade`` stay on a ``101 Switching Protocols``).

Heads are ``HeaderList``s with HTTP/2 pseudo-headers (see ``codecs/base.py``); these
functions return new lists and never touch pseudo-headers.
"""

from __future__ import annotations

import uuid

from mosn_py.codecs.base import HeaderList

HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    }
)


def _hop_by_hop_names(headers: HeaderList, keep_upgrade: bool) -> set[str]:
    names = set(HOP_BY_HOP)
    for value in headers.get_all("connection"):
        for token in value.split(","):
            token = token.strip().lower()
            if token:
                names.add(token)
    if keep_upgrade:
        names.discard("upgrade")
    return names


def is_upgrade(headers: HeaderList) -> bool:
    """A request asking to switch protocols (``Connection: upgrade`` + ``Upgrade``)."""
    if "upgrade" not in headers:
        return False
    return any(
        "upgrade" in (t.strip().lower() for t in v.split(","))
        for v in headers.get_all("connection")
    )


def strip_hop_by_hop(headers: HeaderList, *, keep_upgrade: bool = False) -> HeaderList:
    names = _hop_by_hop_names(headers, keep_upgrade)
    te = headers.get("te")
    out = [(k, v) for k, v in headers.items_all() if k not in names]
    if te is not None and "trailers" in (t.strip().lower() for t in te.split(",")):
        out.append(("te", "trailers"))
    if keep_upgrade and "upgrade" in headers:
        out.append(("connection", "upgrade"))
    return HeaderList(out)


def prepare_request(headers: HeaderList, *, client_ip: str, scheme: str) -> HeaderList:
    """The head to send upstream for a request a client sent us (see the module doc)."""
    upgrade = is_upgrade(headers)
    h = strip_hop_by_hop(headers, keep_upgrade=upgrade)
    items = [(k, v) for k, v in h.items_all() if k not in ("x-forwarded-for", "x-forwarded-proto")]
    xff = headers.get_all("x-forwarded-for")
    chain = ", ".join([*xff, client_ip]) if client_ip else ", ".join(xff)
    if chain:
        items.append(("x-forwarded-for", chain))
    items.append(("x-forwarded-proto", scheme))
    if "x-request-id" not in h:
        items.append(("x-request-id", str(uuid.uuid4())))
    return HeaderList(items)


def prepare_response(headers: HeaderList, *, status: int) -> HeaderList:
    return strip_hop_by_hop(headers, keep_upgrade=status == 101)
