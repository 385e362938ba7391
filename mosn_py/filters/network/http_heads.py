"""What an HTTP proxy does to every head it forwards (Envoy's HTTP connection manager).

Requests (``prepare_request``):
- hop-by-hop fields are removed (RFC 9110 §7.6.1): ``connection`` and every field it names,
  ``keep-alive``, ``proxy-connection``, ``te`` (except ``te: trailers``, which gRPC needs),
  ``trailer``, ``transfer-encoding`` and ``upgrade`` (kept for an upgrade tunnel, which the
  upstream must see);
- ``x-forwarded-for``: the client's address is appended;
- ``x-forwarded-client-cert``: dropped; set (``forward_client_cert: sanitize_set``) to the
  verified client certificate of the connection: ``Hash=<sha256 of its DER>;URI=<URI SAN>``
  (or ``DNS=``/``Subject=`` without one), as Envoy writes it;
- ``x-forwarded-proto``: set to the scheme the client used (``http``/``https``), replacing
  whatever the client claimed;
- ``x-request-id``: generated when absent (``request_id()``: formatted as a version-4 UUID),
  kept when present.

Responses (``prepare_response``): hop-by-hop fields are removed the same way (``upgrade``
and ``connection: upgrade`` stay on a ``101 Switching Protocols``).

Heads are ``HeaderList``s with HTTP/2 pseudo-headers (see ``codecs/base.py``); these
functions never touch pseudo-headers and never change their argument. Each is one pass
over the fields (they run twice per proxied request): a head without hop-by-hop fields
comes back from ``strip_hop_by_hop``/``prepare_response`` as the same object.
"""

from __future__ import annotations

import itertools
import os

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
_FORWARDED = frozenset({"x-forwarded-for", "x-forwarded-proto"})
# Names prepare_request looks at in its single pass: dropped (hop-by-hop, x-forwarded-*) or
# needed (x-request-id kept as is, expect reported, upgrade kept for a tunnel).
XFCC = "x-forwarded-client-cert"
_REQUEST_WATCH = HOP_BY_HOP | _FORWARDED | {"x-request-id", "expect", XFCC}

# --- x-request-id ----------------------------------------------------------------------------
#
# uuid.uuid4() costs a urandom read and a UUID object per request (3.5 % of an HTTP/1.1
# request's CPU in a py-spy profile). What a request id needs is uniqueness, not
# unpredictability, so each process draws 74 random bits once -- the first four groups, with
# the version-4 and RFC 4122 variant bits in place -- and numbers its requests in the last
# group (48 bits, from a random start). Ids stay in the UUID text form and parse as version-4
# UUIDs. Within a process they never repeat (2**48 requests); across processes (and forked
# workers, which reseed) they differ in the random prefix. They are sequential: like any
# request id they are no secret and no capability.

_ID_MASK = (1 << 48) - 1
_id_prefix = ""
_id_counter: itertools.count[int] = itertools.count()


def _reseed_request_ids() -> None:
    global _id_prefix, _id_counter
    r = int.from_bytes(os.urandom(16), "big")
    a = r >> 96  # 32 bits
    b = (r >> 80) & 0xFFFF
    c = 0x4000 | ((r >> 68) & 0x0FFF)  # version 4
    d = 0x8000 | ((r >> 54) & 0x3FFF)  # variant 10xx (RFC 4122 §4.1.1)
    _id_prefix = f"{a:08x}-{b:04x}-{c:04x}-{d:04x}-"
    _id_counter = itertools.count(r & _ID_MASK)


_reseed_request_ids()
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reseed_request_ids)


def request_id() -> str:
    """A new request id, unique per process and formatted as a version-4 UUID (see above)."""
    return f"{_id_prefix}{next(_id_counter) & _ID_MASK:012x}"


# --- hop-by-hop -------------------------------------------------------------------------------


def _connection_tokens(values: list[str]) -> set[str]:
    names: set[str] = set()
    for value in values:
        for token in value.split(","):
            token = token.strip().lower()
            if token:
                names.add(token)
    return names


_STRIP_NAMES: dict[tuple[tuple[str, ...] | None, bool], frozenset[str]] = {}


def _strip_names(conn: list[str] | None, keep_upgrade: bool) -> frozenset[str]:
    """The names ``strip_hop_by_hop`` drops, given the Connection values (remembered: peers
    repeat theirs, e.g. nginx's ``keep-alive``)."""
    key = (None if conn is None else tuple(conn), keep_upgrade)
    names = _STRIP_NAMES.get(key)
    if names is None:
        found = HOP_BY_HOP if conn is None else HOP_BY_HOP | _connection_tokens(conn)
        names = found - {"upgrade"} if keep_upgrade else found
        if sum(map(len, key[0] or ())) <= 256:
            if len(_STRIP_NAMES) >= 256:
                _STRIP_NAMES.clear()
            _STRIP_NAMES[key] = names
    return names


def is_upgrade(headers: HeaderList) -> bool:
    """A request asking to switch protocols (``Connection: upgrade`` + ``Upgrade``)."""
    if "upgrade" not in headers:
        return False
    return any(
        "upgrade" in (t.strip().lower() for t in v.split(","))
        for v in headers.get_all("connection")
    )


def _trailers_wanted(te: str | None) -> bool:
    return te is not None and "trailers" in (t.strip().lower() for t in te.split(","))


def strip_hop_by_hop(headers: HeaderList, *, keep_upgrade: bool = False) -> HeaderList:
    """``headers`` without hop-by-hop fields; ``te: trailers`` and (``keep_upgrade``)
    ``upgrade`` + ``connection: upgrade`` survive, appended. ``headers`` itself when it has
    no hop-by-hop field at all."""
    items = headers.items_all()
    conn: list[str] | None = None
    te: str | None = None
    found = False
    upgrade = False
    for k, v in items:
        if k in HOP_BY_HOP:
            found = True
            if k == "connection":
                if conn is None:
                    conn = [v]
                else:
                    conn.append(v)
            elif k == "te":
                if te is None:
                    te = v
            elif k == "upgrade":
                upgrade = True
    if not found:
        return headers
    names = _strip_names(conn, keep_upgrade)
    out = [kv for kv in items if kv[0] not in names]
    if _trailers_wanted(te):
        out.append(("te", "trailers"))
    if keep_upgrade and upgrade:
        out.append(("connection", "upgrade"))
    return HeaderList(out)


def prepare_request(headers: HeaderList, *, client_ip: str, scheme: str) -> HeaderList:
    """The head to send upstream for a request a client sent us (see the module doc)."""
    return prepare_request_expect(headers, client_ip=client_ip, scheme=scheme)[0]


def prepare_request_expect(
    headers: HeaderList, *, client_ip: str, scheme: str, client_cert: str | None = None
) -> tuple[HeaderList, str | None]:
    """``prepare_request``, and the first ``expect`` value the prepared head carries (None:
    none), found in the same pass. A client's ``x-forwarded-client-cert`` is always dropped
    (only the proxy that verified a certificate may vouch for it); ``client_cert`` is the
    value to send instead (``forward_client_cert: sanitize_set``)."""
    out: list[tuple[str, str]] = []
    conn: list[str] | None = None
    xff: list[str] | None = None
    te: str | None = None
    expect: str | None = None
    has_rid = False
    upgrade_field = False
    watch = _REQUEST_WATCH
    for kv in headers.items_all():
        k = kv[0]
        if k in watch:
            if k == "connection":
                if conn is None:
                    conn = [kv[1]]
                else:
                    conn.append(kv[1])
                continue
            if k == "x-forwarded-for":
                if xff is None:
                    xff = [kv[1]]
                else:
                    xff.append(kv[1])
                continue
            if k == "x-request-id":
                has_rid = True
            elif k == "expect":
                if expect is None:
                    expect = kv[1]
            elif k == "upgrade":
                upgrade_field = True  # kept for now: an upgrade tunnel needs it
            elif k == XFCC:
                continue
            else:
                if k == "te" and te is None:
                    te = kv[1]
                continue  # other hop-by-hop fields, x-forwarded-proto
        out.append(kv)
    upgrade = False
    if conn is not None:
        tokens = _connection_tokens(conn)
        upgrade = upgrade_field and "upgrade" in tokens
        tokens.discard("upgrade")
        drop = tokens - HOP_BY_HOP - _FORWARDED  # fields the client's Connection names
        if upgrade_field and not upgrade:
            drop.add("upgrade")
        if drop:
            out = [kv for kv in out if kv[0] not in drop]
            if "x-request-id" in drop:
                has_rid = False
            if "expect" in drop:
                expect = None
    elif upgrade_field:
        out = [kv for kv in out if kv[0] != "upgrade"]
    if _trailers_wanted(te):
        out.append(("te", "trailers"))
    if upgrade:
        out.append(("connection", "upgrade"))
    if xff is not None:
        if client_ip:
            xff.append(client_ip)
        chain = ", ".join(xff)
        if chain:
            out.append(("x-forwarded-for", chain))
    elif client_ip:
        out.append(("x-forwarded-for", client_ip))
    out.append(("x-forwarded-proto", scheme))
    if client_cert is not None:
        out.append((XFCC, client_cert))
    if not has_rid:
        out.append(("x-request-id", request_id()))
    return HeaderList(out), expect


def prepare_response(headers: HeaderList, *, status: int) -> HeaderList:
    return strip_hop_by_hop(headers, keep_upgrade=status == 101)
