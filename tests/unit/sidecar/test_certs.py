"""``mosn-py certs``: real certificates made with openssl, checked by openssl and by Python's
ssl in mutual TLS (in memory, no sockets), with ``mosn_py.tls.peer_identity``."""

from __future__ import annotations

import shutil
import ssl
import stat
import subprocess
from pathlib import Path

import pytest

import mosn_py.config  # noqa: F401  (first: "import mosn_py.tls" alone is a circular import)
from mosn_py.sidecar import certs, certs_cli
from mosn_py.tls import peer_identity

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None,
                                reason="openssl is not installed (apt-get install openssl)")

WEB_ID = "spiffe://cluster.local/ns/shop/sa/web"
DB_ID = "spiffe://cluster.local/ns/shop/sa/db-reader"


@pytest.fixture(scope="module")
def mesh(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("certs")
    assert certs_cli.main(["ca", "--out", str(root / "ca")]) == 0
    assert certs_cli.main(["workload", "--ca", str(root / "ca"), "--out", str(root / "web"),
                           "--name", "web", "--namespace", "shop",
                           "--dns", "web.shop.svc.cluster.local", "--ip", "10.1.2.3"]) == 0
    assert certs_cli.main(["workload", "--ca", str(root / "ca"), "--out", str(root / "db"),
                           "--name", "db", "--namespace", "shop",
                           "--service-account", "db-reader", "--dns", "db.shop.svc"]) == 0
    # somebody else's mesh: same names, another CA
    assert certs_cli.main(["ca", "--out", str(root / "other-ca")]) == 0
    assert certs_cli.main(["workload", "--ca", str(root / "other-ca"), "--out",
                           str(root / "intruder"), "--name", "web", "--namespace", "shop",
                           "--dns", "web.shop.svc.cluster.local"]) == 0
    return {"root": root, "ca": root / "ca", "web": root / "web", "db": root / "db",
            "intruder": root / "intruder"}


def x509_text(path: Path) -> str:
    return subprocess.run(["openssl", "x509", "-in", str(path), "-noout", "-text"],
                          capture_output=True, text=True, check=True).stdout


def test_files_and_permissions(mesh: dict[str, Path]) -> None:
    assert sorted(p.name for p in mesh["ca"].iterdir()) == ["ca-key.pem", "ca.pem"]
    assert sorted(p.name for p in mesh["web"].iterdir()) == ["ca.pem", "cert.pem", "key.pem"]
    for key in (mesh["ca"] / "ca-key.pem", mesh["web"] / "key.pem"):
        assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert stat.S_IMODE((mesh["web"] / "cert.pem").stat().st_mode) == 0o644
    assert (mesh["web"] / "ca.pem").read_bytes() == (mesh["ca"] / "ca.pem").read_bytes()


def test_openssl_sees_a_ca(mesh: dict[str, Path]) -> None:
    text = x509_text(mesh["ca"] / "ca.pem")
    assert "Issuer: O = cluster.local, CN = mosn-py root CA" in text
    assert "Subject: O = cluster.local, CN = mosn-py root CA" in text
    assert "X509v3 Basic Constraints: critical\n                CA:TRUE" in text
    assert "Certificate Sign, CRL Sign" in text
    assert "URI:spiffe://cluster.local\n" in text
    assert "ASN1 OID: prime256v1" in text and "ecdsa-with-SHA256" in text


def test_openssl_sees_a_workload(mesh: dict[str, Path]) -> None:
    text = x509_text(mesh["web"] / "cert.pem")
    assert "Issuer: O = cluster.local, CN = mosn-py root CA" in text
    assert "Subject: O = cluster.local, CN = web" in text
    assert "CA:FALSE" in text
    assert "TLS Web Server Authentication, TLS Web Client Authentication" in text
    assert (f"X509v3 Subject Alternative Name: \n                URI:{WEB_ID}, "
            "DNS:web.shop.svc.cluster.local, IP Address:10.1.2.3") in text
    assert "ASN1 OID: prime256v1" in text
    r = subprocess.run(["openssl", "verify", "-CAfile", str(mesh["ca"] / "ca.pem"),
                        "-purpose", "sslclient", str(mesh["db"] / "cert.pem")],
                       capture_output=True, text=True)
    assert r.returncode == 0 and r.stdout.strip().endswith(": OK")
    r = subprocess.run(["openssl", "verify", "-CAfile", str(mesh["ca"] / "ca.pem"),
                        str(mesh["intruder"] / "cert.pem")], capture_output=True, text=True)
    assert r.returncode != 0


def _server(d: Path) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(d / "cert.pem", d / "key.pem")
    ctx.load_verify_locations(d / "ca.pem")
    ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx


def _client(d: Path, check_hostname: bool = True) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_cert_chain(d / "cert.pem", d / "key.pem")
    ctx.load_verify_locations(d / "ca.pem")
    ctx.check_hostname = check_hostname
    return ctx


def handshake(server: ssl.SSLContext, client: ssl.SSLContext,
              hostname: str | None) -> tuple[ssl.SSLObject, ssl.SSLObject]:
    """A full handshake between two in-memory TLS endpoints, plus one byte each way (in
    TLS 1.3 the server judges the client's certificate after the client thinks it is
    done). Raises the first ssl.SSLError either side meets."""
    s_in, s_out, c_in, c_out = (ssl.MemoryBIO() for _ in range(4))
    srv = server.wrap_bio(s_in, s_out, server_side=True)
    cli = client.wrap_bio(c_in, c_out, server_hostname=hostname)
    done = {"s": False, "c": False}
    for _ in range(20):
        for name, obj in (("c", cli), ("s", srv)):
            if not done[name]:
                try:
                    obj.do_handshake()
                    done[name] = True
                except ssl.SSLWantReadError:
                    pass
        s_in.write(c_out.read())
        c_in.write(s_out.read())
        if all(done.values()):
            break
    assert all(done.values()), done
    cli.write(b"x")
    s_in.write(c_out.read())
    assert srv.read(1) == b"x"
    srv.write(b"y")
    c_in.write(s_out.read())
    assert cli.read(1) == b"y"
    return srv, cli


def test_mutual_tls_both_ways_with_spiffe_identities(mesh: dict[str, Path]) -> None:
    web, db = mesh["web"], mesh["db"]
    srv, cli = handshake(_server(web), _client(db), "web.shop.svc.cluster.local")
    assert peer_identity(srv) == DB_ID  # the server sees the client's identity
    assert peer_identity(cli) == WEB_ID
    srv, cli = handshake(_server(db), _client(web), "db.shop.svc")
    assert peer_identity(srv) == WEB_ID and peer_identity(cli) == DB_ID
    # a mesh checks identities, not host names: no DNS SAN needed
    srv, cli = handshake(_server(db), _client(web, check_hostname=False), None)
    assert peer_identity(srv) == WEB_ID


def test_a_client_from_another_ca_is_refused(mesh: dict[str, Path]) -> None:
    with pytest.raises(ssl.SSLError) as e:
        handshake(_server(mesh["web"]), _client(mesh["intruder"], check_hostname=False),
                  None)
    assert "certificate" in str(e.value) or "unknown ca" in str(e.value).lower()
    # and a server from another CA is refused by our client
    with pytest.raises(ssl.SSLError, match="certificate verify failed"):
        handshake(_server(mesh["intruder"]), _client(mesh["db"]),
                  "web.shop.svc.cluster.local")


def test_the_trust_domain_comes_from_the_ca(tmp_path: Path) -> None:
    made = certs.make_ca(tmp_path / "ca", trust_domain="corp.example", days=30)
    assert made.identity == "spiffe://corp.example"
    assert certs.ca_trust_domain(tmp_path / "ca" / "ca.pem") == "corp.example"
    w = certs.make_workload(tmp_path / "ca", tmp_path / "w", "api", days=2)
    assert w.identity == "spiffe://corp.example/ns/default/sa/api"
    assert "URI:spiffe://corp.example/ns/default/sa/api" in w.description
    w = certs.make_workload(tmp_path / "ca", tmp_path / "w2", "api", trust_domain="x.y")
    assert w.identity == "spiffe://x.y/ns/default/sa/api"


def test_existing_files_and_force(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "ca"
    assert certs_cli.main(["ca", "--out", str(out)]) == 0
    first = (out / "ca.pem").read_bytes()
    assert certs_cli.main(["ca", "--out", str(out)]) == 2
    assert "ca.pem, ca-key.pem already there (--force replaces)" in capsys.readouterr().err
    assert (out / "ca.pem").read_bytes() == first
    assert certs_cli.main(["ca", "--out", str(out), "--force"]) == 0
    assert (out / "ca.pem").read_bytes() != first
    assert sorted(p.name for p in out.iterdir()) == ["ca-key.pem", "ca.pem"]  # no temp left
    assert certs_cli.main(["workload", "--ca", str(out), "--out", str(out), "--name", "a"]) == 2
    assert "the CA's own directory" in capsys.readouterr().err


def test_output_of_a_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert certs_cli.main(["ca", "--out", str(tmp_path / "ca")]) == 0
    assert certs_cli.main(["workload", "--ca", str(tmp_path / "ca"), "--out",
                           str(tmp_path / "w"), "--name", "web", "--ip", "::1"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == f"wrote {tmp_path}/ca/ca.pem, {tmp_path}/ca/ca-key.pem"
    assert lines[1:4] == ["  identity   spiffe://cluster.local",
                          "  subject    O = cluster.local, CN = mosn-py root CA",
                          "  SAN        URI:spiffe://cluster.local"]
    assert lines[4].startswith("  not after  ") and lines[4].endswith(" GMT")
    assert lines[5] == f"wrote {tmp_path}/w/cert.pem, {tmp_path}/w/key.pem, {tmp_path}/w/ca.pem"
    assert lines[6:9] == ["  identity   spiffe://cluster.local/ns/default/sa/web",
                          "  subject    O = cluster.local, CN = web",
                          "  SAN        URI:spiffe://cluster.local/ns/default/sa/web, "
                          "IP Address:0:0:0:0:0:0:0:1"]


def test_dry_run_writes_nothing_and_its_script_works(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert certs_cli.main(["ca", "--out", str(tmp_path / "ca"), "--dry-run",
                           "--trust-domain", "t.example"]) == 0
    script = capsys.readouterr().out
    assert not (tmp_path / "ca").exists()
    assert script.startswith("#!/bin/sh\n# mosn-py certs --dry-run: nothing was written")
    assert "-subj '/O=t.example/CN=mosn-py root CA'" in script
    subprocess.run(["sh", "-c", script], check=True, capture_output=True)
    assert certs.ca_trust_domain(tmp_path / "ca" / "ca.pem") == "t.example"
    assert stat.S_IMODE((tmp_path / "ca" / "ca-key.pem").stat().st_mode) == 0o600

    assert certs_cli.main(["workload", "--ca", str(tmp_path / "ca"), "--out",
                           str(tmp_path / "w"), "--name", "web", "--dns", "web.svc",
                           "--dry-run"]) == 0
    script = capsys.readouterr().out
    assert "# identity spiffe://t.example/ns/default/sa/web\n" in script
    assert "subjectAltName=URI:spiffe://t.example/ns/default/sa/web,DNS:web.svc\n" in script
    assert not (tmp_path / "w").exists()
    subprocess.run(["sh", "-c", script], check=True, capture_output=True)
    assert sorted(p.name for p in (tmp_path / "w").iterdir()) == ["ca.pem", "cert.pem",
                                                                  "key.pem"]
    assert "URI:spiffe://t.example/ns/default/sa/web, DNS:web.svc" in x509_text(
        tmp_path / "w" / "cert.pem")


@pytest.mark.parametrize(("argv", "message"), [
    (["ca", "--trust-domain", "Cluster.Local"], "--trust-domain 'Cluster.Local': use lowercase"),
    (["ca", "--trust-domain", "a/b"], "--trust-domain 'a/b'"),
    (["ca", "--days", "0"], "--days 0: between 1 and 36500"),
    (["workload", "--name", "a b"], "--name 'a b': use letters, digits"),
    (["workload", "--name", "w", "--namespace", ".."], "--namespace '..'"),
    (["workload", "--name", "w", "--service-account", "x/y"], "--service-account 'x/y'"),
    (["workload", "--name", "w", "--dns", "bad name"], "--dns 'bad name': not a DNS name"),
    (["workload", "--name", "w", "--ip", "10.0.0.256"], "--ip '10.0.0.256': not an IP"),
    (["workload", "--name", "w", "--trust-domain", "UP"], "--trust-domain 'UP'"),
])
def test_bad_arguments(tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str],
                       message: str) -> None:
    ca = tmp_path / "ca"
    if argv[0] == "workload":
        certs.make_ca(ca, days=2)
        argv = [*argv, "--ca", str(ca)]
    assert certs_cli.main([*argv, "--out", str(tmp_path / "out")]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_missing_ca(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert certs_cli.main(["workload", "--ca", str(tmp_path), "--out", str(tmp_path / "o"),
                           "--name", "w"]) == 2
    err = capsys.readouterr().err
    assert "no ca.pem (make one with: mosn-py certs ca --out DIR)" in err


def test_pure_parts() -> None:
    assert certs.spiffe_id("td", "ns1", "sa.1") == "spiffe://td/ns/ns1/sa/sa.1"
    assert certs.check_dns(["*.example.com", "a-b.c", "localhost"])
    assert certs.check_ips(["::1", "10.0.0.1"]) == ("::1", "10.0.0.1")
    assert certs.new_serial() >> 126 == 1
    ext = certs.workload_extensions("spiffe://t/ns/a/sa/b", ["x.y"], ["1.2.3.4"])
    assert ext.endswith("subjectAltName=URI:spiffe://t/ns/a/sa/b,DNS:x.y,IP:1.2.3.4\n")
    cmds = certs.workload_commands(Path("/ca"), "t", "w", 9, 0x1F)
    assert cmds == [
        ["openssl", "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
         "-out", "key.pem"],
        ["openssl", "req", "-new", "-key", "key.pem", "-subj", "/O=t/CN=w", "-out",
         "workload.csr"],
        ["openssl", "x509", "-req", "-in", "workload.csr", "-CA", "/ca/ca.pem", "-CAkey",
         "/ca/ca-key.pem", "-set_serial", "0x1f", "-days", "9", "-sha256", "-extfile",
         "workload.ext", "-out", "cert.pem"],
    ]
