"""TLS contexts from the config model.

Server side (listeners): one ``SSLContext`` per certificate, the first being the default;
an SNI callback swaps the handshake onto the context whose certificate serves the name the
client asked for (exact name first, then the longest ``*.suffix`` wildcard). Client
certificates are verified against ``ca`` and required when ``require_client_cert`` is set.

Client side (clusters): the server chain is verified against ``ca`` (or the system store) and
its name against ``sni`` (or the endpoint host), a client certificate is presented when
configured, and ALPN follows the cluster protocol.

Both are built once per listener / cluster, at config load as well (``mosn-py validate``
reports an unreadable key, a key that does not match its certificate or a bad CA file with
the config path), so a running proxy never meets a broken file.
"""

from __future__ import annotations

import hashlib
import ssl
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # annotations only: the config loader imports this module
    from mosn_py.config.model import ClusterTlsConfig, TlsCertificate, TlsConfig

_VERSIONS = {"1.2": ssl.TLSVersion.TLSv1_2, "1.3": ssl.TLSVersion.TLSv1_3}

# ALPN offered by listeners by protocol (RFC 7301), most preferred first.
ALPN_BY_PROTOCOL: dict[str, list[str]] = {
    "http1": ["http/1.1"],
    "http2": ["h2"],
    "grpc": ["h2"],
    "http": ["h2", "http/1.1"],
}

# ALPN a cluster offers by protocol when its tls section does not say.
CLUSTER_ALPN: dict[str, tuple[str, ...]] = {
    "http1": ("http/1.1",),
    "http2": ("h2",),
    "grpc": ("h2",),
}


class TlsSetupError(ValueError):
    """A certificate, key or CA file that cannot be used; the message names the file."""


def _load_chain(ctx: ssl.SSLContext, cert: str, key: str) -> None:
    try:
        ctx.load_cert_chain(cert, key)
    except ssl.SSLError as e:
        raise TlsSetupError(
            f"cannot use certificate {cert!r} with key {key!r}: {e.reason or e}"
            " (not PEM, or the key does not match the certificate)"
        ) from None
    except OSError as e:
        raise TlsSetupError(f"cannot read certificate/key ({cert}, {key}): {e.strerror}") from None


def _load_ca(ctx: ssl.SSLContext, ca: str) -> None:
    try:
        ctx.load_verify_locations(ca)
    except ssl.SSLError as e:
        raise TlsSetupError(f"cannot use CA file {ca!r}: {e.reason or e} (not PEM)") from None
    except OSError as e:
        raise TlsSetupError(f"cannot read CA file {ca!r}: {e.strerror}") from None


class SniSelector:
    """Maps a client's SNI to the context of the certificate that serves it."""

    __slots__ = ("exact", "wildcards")

    def __init__(self) -> None:
        self.exact: dict[str, ssl.SSLContext] = {}
        self.wildcards: list[tuple[str, ssl.SSLContext]] = []  # (".suffix", ctx), longest first

    def add(self, name: str, ctx: ssl.SSLContext) -> None:
        name = name.lower().rstrip(".")
        if name.startswith("*."):
            self.wildcards.append((name[1:], ctx))
            self.wildcards.sort(key=lambda item: -len(item[0]))
        else:
            self.exact.setdefault(name, ctx)

    def select(self, server_name: str | None) -> ssl.SSLContext | None:
        if not server_name:
            return None
        name = server_name.lower().rstrip(".")
        ctx = self.exact.get(name)
        if ctx is not None:
            return ctx
        for suffix, wctx in self.wildcards:
            if name.endswith(suffix) and len(name) > len(suffix):
                return wctx
        return None

    def __call__(self, sslobj: ssl.SSLObject, server_name: str | None, _: ssl.SSLContext) -> None:
        ctx = self.select(server_name)
        if ctx is not None and sslobj.context is not ctx:
            sslobj.context = ctx
        return None


def _server_ctx(tls: TlsConfig, cert: TlsCertificate, alpn: Sequence[str] | None) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.minimum_version = _VERSIONS[tls.min_version]
    if alpn:
        ctx.set_alpn_protocols(list(alpn))
    _load_chain(ctx, cert.cert, cert.key)
    if tls.ca:
        _load_ca(ctx, tls.ca)
        ctx.verify_mode = ssl.CERT_REQUIRED if tls.require_client_cert else ssl.CERT_OPTIONAL
    return ctx


def server_context(tls: TlsConfig, alpn: Sequence[str] | None = None) -> ssl.SSLContext:
    """The listener's context: the default certificate's, with SNI selection when there are
    several certificates."""
    contexts = [_server_ctx(tls, c, alpn) for c in tls.certificates]
    default = contexts[0]
    if len(contexts) > 1 or tls.certificates[0].server_names:
        selector = SniSelector()
        for cert, ctx in zip(tls.certificates, contexts, strict=True):
            for name in cert.server_names:
                selector.add(name, ctx)
        default.sni_callback = selector
    return default


def client_context(tls: ClusterTlsConfig, protocol: str) -> ssl.SSLContext:
    """A cluster's context for connecting to its endpoints."""
    ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    ctx.minimum_version = _VERSIONS[tls.min_version]
    if tls.verify:
        if tls.ca:
            _load_ca(ctx, tls.ca)
        if tls.subject_alt_names:
            ctx.check_hostname = False  # the identity is checked instead (san_mismatch)
    else:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    if tls.cert and tls.key:
        _load_chain(ctx, tls.cert, tls.key)
    alpn = tls.alpn if tls.alpn is not None else CLUSTER_ALPN.get(protocol, ())
    if alpn:
        ctx.set_alpn_protocols(list(alpn))
    return ctx


def san_mismatch(sslobj: ssl.SSLObject | ssl.SSLSocket | None,
                 patterns: tuple[str, ...]) -> str | None:
    """None when the verified peer certificate has a URI or DNS SAN matching one of
    ``patterns`` (exact, or a prefix when the pattern ends with ``*``); else why not."""
    cert: dict[str, Any] = (sslobj.getpeercert() if sslobj is not None else None) or {}
    sans = [str(v) for k, v in cert.get("subjectAltName", ()) if k in ("URI", "DNS")]
    for want in patterns:
        for have in sans:
            if have == want or (want.endswith("*") and have.startswith(want[:-1])):
                return None
    return (f"server certificate identities {sans or ['none']} match none of"
            f" {list(patterns)}")


def server_hostname(tls: ClusterTlsConfig, host: str) -> str:
    """The name a cluster connection sends as SNI and checks the certificate against."""
    return tls.sni or host


def client_cert_header(sslobj: ssl.SSLObject | ssl.SSLSocket | None) -> str | None:
    """The ``x-forwarded-client-cert`` value for a verified client certificate (Envoy's
    format: ``Hash=<sha256 hex of the DER>;URI=<URI SAN>``, or ``DNS=``/``Subject=`` when the
    certificate has no URI SAN); None without one."""
    if sslobj is None or not sslobj.getpeercert():
        return None
    der = sslobj.getpeercert(binary_form=True)
    parts = [f"Hash={hashlib.sha256(der).hexdigest()}"] if der else []
    cert: dict[str, Any] = sslobj.getpeercert() or {}
    sans = cert.get("subjectAltName", ())
    uris = [v for k, v in sans if k == "URI"]
    dns = [v for k, v in sans if k == "DNS"]
    if uris:
        parts.append(f"URI={uris[0]}")
    elif dns:
        parts.append(f"DNS={dns[0]}")
    else:
        ident = peer_identity(sslobj)
        if ident:
            parts.append(f'Subject="CN={ident}"')
    return ";".join(parts)


def peer_identity(sslobj: ssl.SSLObject | ssl.SSLSocket | None) -> str | None:
    """The verified client certificate's identity: its first URI SAN (SPIFFE style), else
    its first DNS SAN, else its subject common name. None without a verified certificate."""
    if sslobj is None:
        return None
    cert: dict[str, Any] | None = sslobj.getpeercert()
    if not cert:
        return None
    sans = cert.get("subjectAltName", ())
    for kind in ("URI", "DNS"):
        for k, v in sans:
            if k == kind:
                return str(v)
    for rdn in cert.get("subject", ()):
        for k, v in rdn:
            if k == "commonName":
                return str(v)
    return None
