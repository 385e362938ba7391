"""``protocol: http``: one listener serves HTTP/1.1 and HTTP/2, chosen per connection by ALPN
over TLS and by the HTTP/2 preface in cleartext; TLS termination with a certificate made by
the test (openssl)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.integration.test_http1_proxy import http_backend  # noqa: F401 (fixture)

pytestmark = pytest.mark.skipif(
    shutil.which("curl") is None or shutil.which("openssl") is None,
    reason="curl and openssl are needed",
)


def make_cert(tmp: Path) -> tuple[Path, Path]:
    cert, key = tmp / "cert.pem", tmp / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
         "-subj", "/CN=gw.test", "-addext", "subjectAltName=DNS:gw.test,IP:127.0.0.1",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True, timeout=60,
    )
    return cert, key


def config(backend: str, tls: dict[str, str] | None) -> dict[str, Any]:
    listener: dict[str, Any] = {
        "name": "web", "address": "127.0.0.1:0", "protocol": "http", "route": "gw"}
    if tls:
        listener["tls"] = tls
    return {
        "listeners": [listener],
        "routes": [{"name": "gw", "virtual_hosts": [{"name": "all", "domains": ["*"], "rules": [
            {"match": {"prefix": "/"}, "cluster": "b"}]}]}],
        "clusters": [{"name": "b", "protocol": "http1", "endpoints": [backend]}],
    }


def curl(*args: str) -> str:
    r = subprocess.run(["curl", "-sS", "--max-time", "20", "-o", "/dev/null",
                        "-w", "%{http_code} %{http_version} %{scheme}", *args],
                       capture_output=True, timeout=30)
    assert r.returncode == 0, r.stderr
    return r.stdout.decode()


def test_tls_alpn_picks_h2_or_http1(proxy: Any, http_backend: Any, tmp_path: Path) -> None:  # noqa: F811
    b = http_backend()
    cert, key = make_cert(tmp_path)
    p = proxy(config(b.address, {"cert": str(cert), "key": str(key)}))
    host, port = p.addr("web")
    url = f"https://{host}:{port}/echo"
    assert curl("--cacert", str(cert), "--http2", url) == "200 2 HTTPS"
    assert curl("--cacert", str(cert), "--http1.1", url) == "200 1.1 HTTPS"


def test_cleartext_sniffs_the_h2_preface(proxy: Any, http_backend: Any) -> None:  # noqa: F811
    b = http_backend()
    p = proxy(config(b.address, None))
    host, port = p.addr("web")
    url = f"http://{host}:{port}/echo"
    assert curl("--http2-prior-knowledge", url) == "200 2 HTTP"
    assert curl("--http1.1", url) == "200 1.1 HTTP"
