"""A throwaway PKI for tests, made with the openssl CLI: a CA and leaf certificates with the
SANs a test asks for (DNS names, IPs, SPIFFE-style URIs). EC P-256 keys keep it fast."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path


def _openssl(*args: str, cwd: Path) -> None:
    if shutil.which("openssl") is None:
        raise RuntimeError("openssl is needed by the TLS tests: bash scripts/install.sh --test")
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=30)


_EC = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes")


class Pki:
    """``Pki(dir, "test")`` makes ``test-ca.pem``; ``issue`` signs leaves with it."""

    def __init__(self, root: Path, name: str = "test") -> None:
        self.root = root
        self.name = name
        root.mkdir(parents=True, exist_ok=True)
        self.ca = root / f"{name}-ca.pem"
        self.ca_key = root / f"{name}-ca.key"
        _openssl(
            "req", "-x509", *_EC, "-keyout", self.ca_key.name, "-out", self.ca.name,
            "-days", "2", "-subj", f"/CN={name} test CA",
            "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign",
            cwd=root,
        )

    def issue(
        self,
        cn: str,
        *,
        dns: tuple[str, ...] = (),
        ips: tuple[str, ...] = (),
        uris: tuple[str, ...] = (),
    ) -> tuple[Path, Path]:
        """(certificate, key) for ``cn``, usable as a server and as a client certificate."""
        stem = f"{self.name}-{cn}".replace("*", "star").replace("/", "_").replace(":", "_")
        cert, key, csr = (self.root / f"{stem}{ext}" for ext in (".pem", ".key", ".csr"))
        ext = self.root / f"{stem}.ext"
        sans = [f"DNS:{d}" for d in dns] + [f"IP:{i}" for i in ips] + [f"URI:{u}" for u in uris]
        lines = ["basicConstraints=CA:FALSE", "extendedKeyUsage=serverAuth,clientAuth"]
        if sans:
            lines.append("subjectAltName=" + ",".join(sans))
        ext.write_text("\n".join(lines) + "\n")
        _openssl("req", "-new", *_EC, "-keyout", key.name, "-out", csr.name,
                 "-subj", f"/CN={cn}", cwd=self.root)
        _openssl("x509", "-req", "-in", csr.name, "-CA", self.ca.name, "-CAkey",
                 self.ca_key.name, "-CAcreateserial", "-out", cert.name, "-days", "2",
                 "-extfile", ext.name, cwd=self.root)
        return cert, key
