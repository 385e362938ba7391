"""The ``tls`` sections of the config: a listener's (termination: certificates chosen by SNI,
client certificates) and a cluster's (origination: CA, SNI, client certificate, identities).
Certificates, keys and CAs are loaded here, so that a bad file is reported at load with its
path, not when the first connection needs it. Used by ``config/loader.py``."""

from __future__ import annotations

from mosn_py.config.model import TLS_VERSIONS, ClusterTlsConfig, TlsCertificate, TlsConfig
from mosn_py.config.shape import _Errors, _field, _join, _list, _mapping
from mosn_py.config.values import (
    describe,
    one_of,
    parse_bool,
    parse_name,
    parse_readable_file,
)
from mosn_py.tls import TlsSetupError, client_context, server_context

_TLS_KEYS = ("cert", "key", "certificates", "ca", "require_client_cert", "min_version")
_CLUSTER_TLS_KEYS = (
    "sni", "ca", "cert", "key", "verify", "alpn", "min_version", "subject_alt_names",
)


def _server_name(value: object) -> str:
    name = parse_name(value).lower()
    body = name[2:] if name.startswith("*.") else name
    if not body or "*" in body or any(c.isspace() or c == "/" for c in body):
        raise ValueError(f"expected a host name or *.suffix, got {describe(value)}")
    return name


def _certificate(errs: _Errors, path: str, raw: object) -> TlsCertificate | None:
    d = _mapping(errs, path, raw, ("cert", "key", "server_names"), ("cert", "key"))
    if d is None:
        return None
    names: list[str] = []
    for i, item in enumerate(_list(errs, _join(path, "server_names"), d.get("server_names"))):
        try:
            names.append(_server_name(item))
        except ValueError as exc:
            errs.add(f"{_join(path, 'server_names')}[{i}]", str(exc))
    return TlsCertificate(
        cert=_field(errs, d, path, "cert", parse_readable_file, ""),
        key=_field(errs, d, path, "key", parse_readable_file, ""),
        server_names=tuple(names),
    )


def _tls(errs: _Errors, path: str, raw: object, alpn: list[str] | None) -> TlsConfig | None:
    d = _mapping(errs, path, raw, _TLS_KEYS)
    if d is None:
        return None
    certs: list[TlsCertificate] = []
    if "cert" in d or "key" in d:
        one = _certificate(errs, path, {k: d[k] for k in ("cert", "key") if k in d})
        if one is not None:
            certs.append(one)
    cpath = _join(path, "certificates")
    for i, item in enumerate(_list(errs, cpath, d.get("certificates"))):
        cert = _certificate(errs, f"{cpath}[{i}]", item)
        if cert is not None:
            certs.append(cert)
    if not certs and not errs.has_under(path):
        errs.add(path, "needs a certificate: cert and key, or a certificates list")
        return None
    tls = TlsConfig(
        certificates=tuple(certs),
        ca=_field(errs, d, path, "ca", parse_readable_file, None),
        require_client_cert=_field(errs, d, path, "require_client_cert", parse_bool, False),
        min_version=_field(errs, d, path, "min_version", _tls_version, "1.2"),
    )
    if tls.require_client_cert and "ca" not in d:
        errs.add(
            _join(path, "ca"),
            "required when require_client_cert is true (the CA that signs client certificates)",
        )
    if not errs.has_under(path):
        try:
            server_context(tls, alpn)  # the files parse and each key matches its certificate
        except TlsSetupError as exc:
            errs.add(path, str(exc))
    return tls


def _tls_version(value: object) -> str:
    if isinstance(value, float):  # min_version: 1.2 written unquoted
        value = f"{value:.1f}"
    return one_of(TLS_VERSIONS)(value)


def _cluster_tls(errs: _Errors, path: str, raw: object, protocol: str) -> ClusterTlsConfig | None:
    if raw is None or raw is False:
        return None
    if raw is True:
        raw = {}
    d = _mapping(errs, path, raw, _CLUSTER_TLS_KEYS)
    if d is None:
        return None
    alpn: tuple[str, ...] | None = None
    sans: tuple[str, ...] = ()
    if "subject_alt_names" in d:
        items = _list(errs, _join(path, "subject_alt_names"), d["subject_alt_names"])
        try:
            sans = tuple(parse_name(x) for x in items)
        except ValueError as exc:
            errs.add(_join(path, "subject_alt_names"), str(exc))
        if not sans and not errs.has_under(_join(path, "subject_alt_names")):
            errs.add(_join(path, "subject_alt_names"), "must not be empty (leave it out)")
    if "alpn" in d:
        items = _list(errs, _join(path, "alpn"), d["alpn"])
        try:
            alpn = tuple(parse_name(x) for x in items)
        except ValueError as exc:
            errs.add(_join(path, "alpn"), str(exc))
    tls = ClusterTlsConfig(
        sni=_field(errs, d, path, "sni", _server_name, None),
        ca=_field(errs, d, path, "ca", parse_readable_file, None),
        cert=_field(errs, d, path, "cert", parse_readable_file, None),
        key=_field(errs, d, path, "key", parse_readable_file, None),
        verify=_field(errs, d, path, "verify", parse_bool, True),
        alpn=alpn,
        min_version=_field(errs, d, path, "min_version", _tls_version, "1.2"),
        subject_alt_names=sans,
    )
    if sans and not tls.verify:
        errs.add(_join(path, "subject_alt_names"), "has no effect with verify: false")
    if ("cert" in d) != ("key" in d):
        missing = "key" if "cert" in d else "cert"
        errs.add(
            _join(path, missing),
            "required with "
            f"{'cert' if missing == 'key' else 'key'} (a client certificate needs both)",
        )
    if tls.ca and not tls.verify:
        errs.add(_join(path, "ca"), "has no effect with verify: false; remove one of them")
    if not errs.has_under(path):
        try:
            client_context(tls, protocol)
        except TlsSetupError as exc:
            errs.add(path, str(exc))
    return tls
