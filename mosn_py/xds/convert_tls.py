"""Envoy TLS transport sockets -> the ``tls`` mappings of our YAML schema.

``DownstreamTlsContext`` (a listener's filter chain) -> listener ``tls``;
``UpstreamTlsContext`` (a cluster) -> cluster ``tls``. Certificates, keys and CAs are taken
by ``filename`` only: the loader reads and checks the files (inline PEM is refused, as is
SDS). Envoy semantics kept in mind:

- upstream, without a validation context Envoy verifies nothing: that is ``verify: false``;
  ``trusted_ca`` gives ``ca``, ``system_root_certs`` the system store (``verify: true``);
- ``trust_chain_verification: ACCEPT_UNTRUSTED`` is ``verify: false`` upstream;
- mosn-py always checks the server's name (``sni``, else the endpoint host) when it
  verifies, so the only subject-alt-name matcher taken is one DNS ``exact`` equal to ``sni``.
"""

from __future__ import annotations

from typing import Any

from envoy.extensions.transport_sockets.tls.v3 import tls_pb2

from mosn_py.xds.convert_common import (
    Where,
    check_fields,
    data_source_text,
    join,
    refuse_if,
    type_name,
    unpack,
)

__all__ = ["downstream_tls", "upstream_tls"]

_DOWNSTREAM = "envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext"
_UPSTREAM = "envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext"
_RAW_BUFFER = "envoy.extensions.transport_sockets.raw_buffer.v3.RawBuffer"

_VERSIONS = {3: "1.2", 4: "1.3"}  # TlsParameters.TlsProtocol TLSv1_2, TLSv1_3
_VERSION_NAMES = {0: "TLS_AUTO", 1: "TLSv1_0", 2: "TLSv1_1", 3: "TLSv1_2", 4: "TLSv1_3"}
_SAN_URI = 3  # SubjectAltNameMatcher.SanType.URI
_SAN_DNS = 2
_ACCEPT_UNTRUSTED = 1


def _socket(where: Where, path: str, msg: Any, want: str) -> Any | None:
    """The TLS context a ``TransportSocket`` holds (None for raw_buffer, i.e. plaintext)."""
    check_fields(where, path, msg, ("typed_config",), ("name",))
    if not msg.HasField("typed_config"):
        raise where.error(f"{path}: no typed_config")
    cpath = join(path, "typed_config")
    kind = type_name(msg.typed_config)
    if kind == _RAW_BUFFER:
        return None
    if kind != want:
        raise where.unsupported(f"{cpath} {kind or 'without a type'}", f"expected {want}")
    cls = tls_pb2.DownstreamTlsContext if want == _DOWNSTREAM else tls_pb2.UpstreamTlsContext
    return unpack(where, cpath, msg.typed_config, cls)


def _min_version(where: Where, path: str, params: Any) -> str | None:
    check_fields(
        where, path, params, ("tls_minimum_protocol_version", "tls_maximum_protocol_version")
    )
    high = int(params.tls_maximum_protocol_version)
    if high not in (0, 4):
        raise where.unsupported(
            f"{join(path, 'tls_maximum_protocol_version')} {_VERSION_NAMES.get(high, high)}",
            "mosn-py negotiates up to TLS 1.3",
        )
    low = int(params.tls_minimum_protocol_version)
    if low == 0:
        return None
    if low not in _VERSIONS:
        raise where.unsupported(
            f"{join(path, 'tls_minimum_protocol_version')} {_VERSION_NAMES.get(low, low)}",
            "expected TLSv1_2 or TLSv1_3",
        )
    return _VERSIONS[low]


def _certificates(where: Where, path: str, items: Any) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for i, cert in enumerate(items):
        p = f"{path}[{i}]"
        check_fields(where, p, cert, ("certificate_chain", "private_key"))
        if not cert.HasField("certificate_chain") or not cert.HasField("private_key"):
            raise where.error(f"{p}: needs certificate_chain and private_key")
        out.append(
            (
                data_source_text(
                    where, join(p, "certificate_chain"), cert.certificate_chain, want="filename"
                ),
                data_source_text(where, join(p, "private_key"), cert.private_key, want="filename"),
            )
        )
    return out


def _common(where: Where, path: str, msg: Any) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    """What both directions share: min_version, certificates; alpn is left to the caller."""
    check_fields(
        where, path, msg, ("tls_params", "tls_certificates", "validation_context", "alpn_protocols")
    )
    out: dict[str, Any] = {}
    if msg.HasField("tls_params"):
        version = _min_version(where, join(path, "tls_params"), msg.tls_params)
        if version is not None:
            out["min_version"] = version
    return out, _certificates(where, join(path, "tls_certificates"), msg.tls_certificates)


def downstream_tls(where: Where, path: str, msg: Any) -> tuple[dict[str, Any], list[str]] | None:
    """A listener chain's ``transport_socket`` -> (listener ``tls`` mapping, the ALPN list
    Envoy would offer, for the caller to check against the listener protocol); None for a
    plaintext (raw_buffer) socket.

    One certificate only: Envoy picks among several by the client's SNI and the
    certificates' names, which the YAML says with ``certificates[].server_names`` instead
    (so such a listener carries ``tls`` in its ListenerOptions, and this is not called).
    """
    ctx = _socket(where, path, msg, _DOWNSTREAM)
    if ctx is None:
        return None
    cpath = join(path, "typed_config")
    check_fields(
        where,
        cpath,
        ctx,
        ("common_tls_context", "require_client_certificate", "require_sni"),
        (
            "session_ticket_keys",
            "disable_stateless_session_resumption",
            "disable_stateful_session_resumption",
            "session_timeout",
            "prefer_client_ciphers",
            "full_scan_certs_on_sni_mismatch",
        ),
    )
    refuse_if(where, cpath, ctx, ("require_sni",), True)
    common_path = join(cpath, "common_tls_context")
    common = ctx.common_tls_context
    out, certs = _common(where, common_path, common)
    cert_path = join(common_path, "tls_certificates")
    if not certs:
        raise where.error(f"{cert_path}: a listener needs a certificate")
    if len(certs) > 1:
        raise where.unsupported(
            f"{cert_path}[1]",
            "several certificates are chosen by SNI with tls.certificates[].server_names in"
            " the listener's mosn_py ListenerOptions",
        )
    tls: dict[str, Any] = {"cert": certs[0][0], "key": certs[0][1]}
    if common.HasField("validation_context"):
        vpath = join(common_path, "validation_context")
        vc = common.validation_context
        check_fields(where, vpath, vc, ("trusted_ca",), ("watched_directory",))
        if vc.HasField("trusted_ca"):
            tls["ca"] = data_source_text(
                where, join(vpath, "trusted_ca"), vc.trusted_ca, want="filename"
            )
    if ctx.HasField("require_client_certificate") and ctx.require_client_certificate.value:
        tls["require_client_cert"] = True
    tls.update(out)
    return tls, [str(a) for a in common.alpn_protocols]


def upstream_tls(where: Where, path: str, msg: Any) -> dict[str, Any] | None:
    """A cluster's ``transport_socket`` -> cluster ``tls`` mapping (``{}`` = TLS with every
    default); None for a plaintext (raw_buffer) socket."""
    ctx = _socket(where, path, msg, _UPSTREAM)
    if ctx is None:
        return None
    cpath = join(path, "typed_config")
    check_fields(
        where,
        cpath,
        ctx,
        (
            "common_tls_context",
            "sni",
            "auto_host_sni",
            "auto_sni_san_validation",
            "allow_renegotiation",
        ),
        ("max_session_keys", "enforce_rsa_key_usage"),
    )
    refuse_if(
        where, cpath, ctx, ("auto_host_sni", "auto_sni_san_validation", "allow_renegotiation"), True
    )
    common_path = join(cpath, "common_tls_context")
    common = ctx.common_tls_context
    out, certs = _common(where, common_path, common)
    tls: dict[str, Any] = {}
    sni = str(ctx.sni)
    if sni:
        tls["sni"] = sni
    if len(certs) > 1:
        raise where.unsupported(
            f"{join(common_path, 'tls_certificates')}[1]", "one client certificate"
        )
    if certs:
        tls["cert"], tls["key"] = certs[0]
    verify = False  # Envoy: no validation context, no verification
    if common.HasField("validation_context"):
        verify = _upstream_validation(
            where, join(common_path, "validation_context"), common.validation_context, sni, tls
        )
    if not verify:
        tls.pop("ca", None)  # the loader refuses a ca that has no effect
        tls["verify"] = False
    if common.alpn_protocols:
        tls["alpn"] = [str(a) for a in common.alpn_protocols]
    tls.update(out)
    return tls


def _upstream_validation(where: Where, path: str, vc: Any, sni: str, tls: dict[str, Any]) -> bool:
    """Reads a cluster's CertificateValidationContext into ``tls``; returns verify."""
    check_fields(
        where,
        path,
        vc,
        (
            "trusted_ca",
            "system_root_certs",
            "match_typed_subject_alt_names",
            "trust_chain_verification",
        ),
        ("watched_directory",),
    )
    sans = list(vc.match_typed_subject_alt_names)
    if sans:
        spath = join(path, "match_typed_subject_alt_names")
        m = sans[0]
        exact = m.matcher.WhichOneof("match_pattern") == "exact" and not m.matcher.ignore_case
        if not (len(sans) == 1 and m.san_type == _SAN_DNS and exact and not m.oid
                and str(m.matcher.exact) == sni):
            # identities checked instead of the host name (a mesh peer's SPIFFE id)
            patterns: list[str] = []
            for i, m in enumerate(sans):
                kind = m.matcher.WhichOneof("match_pattern")
                if (m.san_type not in (_SAN_DNS, _SAN_URI) or m.oid or m.matcher.ignore_case
                        or kind not in ("exact", "prefix")):
                    raise where.unsupported(
                        f"{spath}[{i}]",
                        "mosn-py matches URI or DNS names, exactly or by prefix, case-sensitive",
                    )
                value = str(getattr(m.matcher, kind))
                patterns.append(value if kind == "exact" else value + "*")
            tls["subject_alt_names"] = patterns
    if vc.HasField("trusted_ca"):
        tls["ca"] = data_source_text(
            where, join(path, "trusted_ca"), vc.trusted_ca, want="filename"
        )
    elif not vc.HasField("system_root_certs"):
        if sans:
            raise where.error(f"{path}: match_typed_subject_alt_names needs trusted_ca")
        return False  # nothing to verify against: Envoy accepts any certificate
    return int(vc.trust_chain_verification) != _ACCEPT_UNTRUSTED
