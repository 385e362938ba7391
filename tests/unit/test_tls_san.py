"""Cluster TLS that knows the server by its identity (``subject_alt_names``): the host
name is not checked, the certificate's URI/DNS SANs are, exactly or by prefix."""

from __future__ import annotations

import ssl
from pathlib import Path

from mosn_py.config.model import ClusterTlsConfig
from mosn_py.tls import client_context, san_mismatch
from tests.pki import Pki


def handshake(client: ssl.SSLContext, cert: Path, key: Path) -> ssl.SSLObject:
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(cert, key)
    c_in, c_out, s_in, s_out = (ssl.MemoryBIO() for _ in range(4))
    c = client.wrap_bio(c_in, c_out, server_hostname="10.9.9.9")  # not in the certificate
    s = server.wrap_bio(s_in, s_out, server_side=True)
    for _ in range(10):
        for obj in (c, s):
            try:
                obj.do_handshake()
            except ssl.SSLWantReadError:
                pass
        s_in.write(c_out.read())
        c_in.write(s_out.read())
    c.do_handshake()
    return c


def test_identity_checked_instead_of_the_host_name(tmp_path: Path) -> None:
    pki = Pki(tmp_path, "mesh")
    cert, key = pki.issue("server", uris=("spiffe://cluster.local/ns/shop/sa/cart",))
    patterns = ("spiffe://cluster.local/ns/shop/sa/cart",)
    ctx = client_context(ClusterTlsConfig(ca=str(pki.ca), subject_alt_names=patterns), "tcp")
    obj = handshake(ctx, cert, key)  # the host name 10.9.9.9 is not checked
    assert san_mismatch(obj, patterns) is None
    assert san_mismatch(obj, ("spiffe://cluster.local/ns/shop/*",)) is None
    assert san_mismatch(obj, ("spiffe://cluster.local/ns/other/*", "cart")) == (
        "server certificate identities ['spiffe://cluster.local/ns/shop/sa/cart'] match none"
        " of ['spiffe://cluster.local/ns/other/*', 'cart']")
    assert san_mismatch(None, patterns) is not None
