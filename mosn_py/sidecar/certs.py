"""Certificates for a mesh of mosn-py sidecars: a CA, and workload certificates whose
identity is a SPIFFE ID in a URI SAN, ``spiffe://<trust domain>/ns/<namespace>/sa/<service
account>`` (the form Istio uses), which ``mosn_py.tls.peer_identity`` reports.

Made with the ``openssl`` command line (on every Debian; no Python dependency). The command
lists are built by pure functions (``ca_commands``, ``workload_commands``), so what
``mosn-py certs --dry-run`` prints is what runs. Keys are EC P-256. The CA certificate
carries the trust domain itself as its URI SAN (``spiffe://cluster.local``; the SPIFFE
X.509-SVID spec allows a signing certificate to), which is where ``workload`` reads it
from. A workload certificate can serve and be a client (serverAuth + clientAuth).

Files: ``ca.pem`` + ``ca-key.pem`` for the CA; ``cert.pem`` + ``key.pem`` + ``ca.pem`` (a
copy of the CA certificate, the trust bundle) for a workload. Private keys are written
0600; every file appears whole or not at all (made in a private temporary directory, then
renamed into place). Existing files are never overwritten without ``force``.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from ipaddress import ip_address
from pathlib import Path

CA_CERT = "ca.pem"
CA_KEY = "ca-key.pem"
CERT = "cert.pem"
KEY = "key.pem"
CSR = "workload.csr"
EXT = "workload.ext"
DEFAULT_TRUST_DOMAIN = "cluster.local"
CA_DAYS = 3650
WORKLOAD_DAYS = 365
CA_CN = "mosn-py root CA"
TIMEOUT = 30.0

# SPIFFE ID spec: trust domain [a-z0-9._-], path segments [A-Za-z0-9._-] (not "." or "..")
_TRUST_DOMAIN = re.compile(r"[a-z0-9._-]{1,255}")
_SEGMENT = re.compile(r"[A-Za-z0-9._-]{1,253}")
_DNS = re.compile(r"(\*\.)?([A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?\.)*"
                  r"[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?\.?")


class CertError(Exception):
    """Something the user can fix; ``usage`` is True for a bad argument (exit 2) and False
    for a failure while making the files (exit 1)."""

    def __init__(self, message: str, *, usage: bool = True) -> None:
        super().__init__(message)
        self.usage = usage


@dataclass(frozen=True, slots=True)
class Made:
    """Files written (absolute paths) and the certificate's description."""

    files: tuple[Path, ...]
    identity: str
    description: str


def check_trust_domain(value: str) -> str:
    if not _TRUST_DOMAIN.fullmatch(value) or value.strip(".") != value:
        raise CertError(f"--trust-domain {value!r}: use lowercase letters, digits, '.', '-' "
                        "and '_' (a SPIFFE trust domain, e.g. cluster.local)")
    return value


def check_segment(value: str, flag: str) -> str:
    if not _SEGMENT.fullmatch(value) or value in (".", ".."):
        raise CertError(f"{flag} {value!r}: use letters, digits, '.', '-' and '_'")
    return value


def spiffe_id(trust_domain: str, namespace: str, service_account: str) -> str:
    """``spiffe://TD/ns/NS/sa/SA``; raises CertError naming a bad part."""
    check_trust_domain(trust_domain)
    check_segment(namespace, "--namespace")
    check_segment(service_account, "--service-account")
    return f"spiffe://{trust_domain}/ns/{namespace}/sa/{service_account}"


def check_dns(names: Sequence[str]) -> tuple[str, ...]:
    for n in names:
        if len(n) > 253 or not _DNS.fullmatch(n):
            raise CertError(f"--dns {n!r}: not a DNS name")
    return tuple(names)


def check_ips(values: Sequence[str]) -> tuple[str, ...]:
    out = []
    for v in values:
        try:
            out.append(str(ip_address(v)))
        except ValueError:
            raise CertError(f"--ip {v!r}: not an IP address") from None
    return tuple(out)


def check_days(days: int, flag: str = "--days") -> int:
    if not 1 <= days <= 36500:
        raise CertError(f"{flag} {days}: between 1 and 36500")
    return days


_EC_KEY = ["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"]


def ca_commands(trust_domain: str, days: int) -> list[list[str]]:
    """openssl argv lists that make ``ca-key.pem`` and ``ca.pem`` in the current
    directory."""
    return [
        ["openssl", *_EC_KEY, "-out", CA_KEY],
        ["openssl", "req", "-x509", "-new", "-key", CA_KEY, "-sha256", "-days", str(days),
         "-subj", f"/O={trust_domain}/CN={CA_CN}",
         "-addext", "basicConstraints=critical,CA:TRUE",
         "-addext", "keyUsage=critical,keyCertSign,cRLSign",
         "-addext", f"subjectAltName=URI:spiffe://{trust_domain}",
         "-out", CA_CERT],
    ]


def workload_extensions(identity: str, dns: Sequence[str] = (),
                        ips: Sequence[str] = ()) -> str:
    """The ``-extfile`` text: a leaf for both TLS roles, the SPIFFE ID first among the SANs
    (``peer_identity`` takes the first URI)."""
    sans = [f"URI:{identity}", *(f"DNS:{d}" for d in dns), *(f"IP:{i}" for i in ips)]
    return "\n".join([
        "basicConstraints=critical,CA:FALSE",
        "keyUsage=critical,digitalSignature",
        "extendedKeyUsage=serverAuth,clientAuth",
        "subjectKeyIdentifier=hash",
        "authorityKeyIdentifier=keyid",
        "subjectAltName=" + ",".join(sans),
    ]) + "\n"


def workload_commands(ca_dir: Path, trust_domain: str, name: str, days: int,
                      serial: int) -> list[list[str]]:
    """openssl argv lists that make ``key.pem`` and ``cert.pem`` in the current directory
    (with ``workload.ext`` there already), signed by the CA in ``ca_dir``."""
    return [
        ["openssl", *_EC_KEY, "-out", KEY],
        ["openssl", "req", "-new", "-key", KEY, "-subj", f"/O={trust_domain}/CN={name}",
         "-out", CSR],
        ["openssl", "x509", "-req", "-in", CSR, "-CA", str(ca_dir / CA_CERT),
         "-CAkey", str(ca_dir / CA_KEY), "-set_serial", f"{serial:#x}", "-days", str(days),
         "-sha256", "-extfile", EXT, "-out", CERT],
    ]


def new_serial() -> int:
    """A positive 127-bit serial (RFC 5280: at most 20 octets, unpredictable)."""
    return secrets.randbits(127) | 1 << 126


def _openssl(argv: list[str], cwd: Path) -> str:
    if shutil.which(argv[0]) is None:
        raise CertError("openssl is not installed (Debian: apt-get install openssl)",
                        usage=False)
    try:
        r = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        raise CertError(f"{' '.join(argv[:3])}: no answer within {TIMEOUT:.0f}s",
                        usage=False) from None
    if r.returncode != 0:
        raise CertError(f"{' '.join(argv)} exited {r.returncode}: {r.stderr.strip()}",
                        usage=False)
    return r.stdout


def describe(cert: Path) -> str:
    """Subject, SANs and expiry of a certificate, as openssl prints them."""
    out = _openssl(["openssl", "x509", "-in", str(cert), "-noout", "-subject", "-enddate",
                    "-ext", "subjectAltName"], cwd=cert.parent)
    lines = [x.strip() for x in out.splitlines() if x.strip()]
    subject = next((x[len("subject="):].strip() for x in lines if x.startswith("subject=")), "")
    after = next((x[len("notAfter="):] for x in lines if x.startswith("notAfter=")), "")
    i = next((n for n, x in enumerate(lines) if x.startswith("X509v3 Subject Alternative")),
             None)
    sans = lines[i + 1] if i is not None and i + 1 < len(lines) else ""
    return f"  subject    {subject}\n  SAN        {sans}\n  not after  {after}"


def ca_trust_domain(ca_cert: Path) -> str | None:
    """The trust domain a CA made by ``make_ca`` names in its URI SAN, else None."""
    out = _openssl(["openssl", "x509", "-in", str(ca_cert), "-noout", "-ext",
                    "subjectAltName"], cwd=ca_cert.parent)
    m = re.search(r"URI:spiffe://([^/,\s]+)", out)
    return m.group(1) if m else None


def _check_free(out: Path, names: Sequence[str], force: bool) -> None:
    if out.exists() and not out.is_dir():
        raise CertError(f"--out {out}: not a directory")
    if force:
        return
    taken = [n for n in names if (out / n).exists()]
    if taken:
        raise CertError(f"--out {out}: {', '.join(taken)} already there (--force replaces)")


def _install(work: Path, out: Path, names: Sequence[str], secret: Sequence[str]) -> None:
    for n in secret:
        os.chmod(work / n, 0o600)
    for n in names:
        if n not in secret:
            os.chmod(work / n, 0o644)
        os.replace(work / n, out / n)


def make_ca(out: Path, trust_domain: str = DEFAULT_TRUST_DOMAIN, days: int = CA_DAYS,
            force: bool = False) -> Made:
    """Write ``ca.pem`` and ``ca-key.pem`` into ``out`` (created if missing)."""
    check_trust_domain(trust_domain)
    check_days(days)
    out = out.resolve()
    _check_free(out, (CA_CERT, CA_KEY), force)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out, prefix=".certs-") as tmp:
        work = Path(tmp)
        for argv in ca_commands(trust_domain, days):
            _openssl(argv, work)
        _install(work, out, (CA_CERT, CA_KEY), secret=(CA_KEY,))
    return Made((out / CA_CERT, out / CA_KEY), f"spiffe://{trust_domain}",
                describe(out / CA_CERT))


def workload_plan(
    ca_dir: Path, name: str, namespace: str = "default", service_account: str | None = None,
    dns: Sequence[str] = (), ips: Sequence[str] = (), days: int = WORKLOAD_DAYS,
    trust_domain: str | None = None,
) -> tuple[str, str, str]:
    """(trust domain, SPIFFE ID, extension file text) for a workload; checks every
    argument and that ``ca_dir`` holds a CA."""
    check_segment(name, "--name")
    check_days(days)
    for f in (CA_CERT, CA_KEY):
        if not (ca_dir / f).is_file():
            raise CertError(f"--ca {ca_dir}: no {f} (make one with: mosn-py certs ca --out DIR)")
    td = trust_domain or ca_trust_domain(ca_dir / CA_CERT) or DEFAULT_TRUST_DOMAIN
    identity = spiffe_id(td, namespace, service_account or name)
    return td, identity, workload_extensions(identity, check_dns(dns), check_ips(ips))


def make_workload(
    ca_dir: Path, out: Path, name: str, namespace: str = "default",
    service_account: str | None = None, dns: Sequence[str] = (), ips: Sequence[str] = (),
    days: int = WORKLOAD_DAYS, trust_domain: str | None = None, force: bool = False,
) -> Made:
    """Write ``cert.pem``, ``key.pem`` and ``ca.pem`` into ``out`` for the identity
    ``spiffe://TD/ns/NAMESPACE/sa/SERVICE_ACCOUNT`` (the service account defaults to
    ``name``; the trust domain to the CA's)."""
    ca_dir = ca_dir.resolve()
    td, identity, ext = workload_plan(ca_dir, name, namespace, service_account, dns, ips,
                                      days, trust_domain)
    out = out.resolve()
    names = (CERT, KEY, CA_CERT)
    if out == ca_dir:
        raise CertError(f"--out {out}: the CA's own directory (its ca.pem stays the CA's)")
    _check_free(out, names, force)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out, prefix=".certs-") as tmp:
        work = Path(tmp)
        (work / EXT).write_text(ext)
        for argv in workload_commands(ca_dir, td, name, days, new_serial()):
            _openssl(argv, work)
        shutil.copyfile(ca_dir / CA_CERT, work / CA_CERT)
        _install(work, out, names, secret=(KEY,))
    return Made(tuple(out / n for n in names), identity, describe(out / CERT))
