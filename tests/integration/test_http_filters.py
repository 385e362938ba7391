"""Body hooks over real codecs: a test-only stream filter, installed the way third-party
filters are (a ``mosn_py.extensions`` entry point, found on ``PYTHONPATH`` by the proxy
process), rewrites request and response bodies on HTTP/1.1 and HTTP/2 (h2c, prior
knowledge); curl is the client, ``peers/http_backend.py`` the origin.

The filter holds each head (``STOP_ITERATION``), keeps the body (``STOP_BUFFER``) until its
end, then changes head and body and lets both go (``CONTINUE``): the request body upper-cased
with ``!`` appended and ``content-length`` fixed, the response with ``x-response-bytes``. The
listener's ``max_frame_size`` (64 KiB) bounds what the stream keeps: above it a request is
answered 413, a response 500.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import textwrap
from pathlib import Path
from typing import Any

import pytest

from tests.integration.conftest import REPO
from tests.integration.peers.http_backend import pattern
from tests.integration.test_http1_proxy import http_backend  # noqa: F401

pytestmark = pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")

LIMIT = 64 << 10

EXTENSION = '''
from __future__ import annotations

from mosn_py.filters.chain import DataStatus, HeadersStatus, Phase, StreamFilter


class BodyRewrite(StreamFilter):
    phase = Phase.AFTER_ROUTE  # after routing, which answers Expect: 100-continue

    def decode_headers(self, frame, end_stream):
        return HeadersStatus.CONTINUE if end_stream else HeadersStatus.STOP_ITERATION

    def decode_data(self, data, end_stream):
        if not end_stream:
            return DataStatus.STOP_BUFFER
        body = bytes(data).upper() + b"!"
        req = self.callbacks.request
        headers = req.headers.replace("content-length", str(len(body)))
        headers = headers.with_(("x-body-rewrite", str(len(data))))
        self.callbacks.replace_request(req.evolve(headers=headers))
        self.callbacks.replace_decoded_data(body)
        return DataStatus.CONTINUE  # the held head goes on, then the body

    def encode_headers(self, frame, end_stream):
        return HeadersStatus.CONTINUE if end_stream else HeadersStatus.STOP_ITERATION

    def encode_data(self, data, end_stream):
        if not end_stream:
            return DataStatus.STOP_BUFFER
        resp = self.callbacks.response
        headers = resp.headers.with_(("x-response-bytes", str(len(data))))
        self.callbacks.replace_response(resp.evolve(headers=headers))
        return DataStatus.CONTINUE


class BodyRewriteFactory:
    name = "test_body_rewrite"
    phase = Phase.AFTER_ROUTE

    @classmethod
    def from_config(cls, options):
        return BodyRewrite


def register(registries):
    registries.stream_filters.register(BodyRewriteFactory.name, BodyRewriteFactory)
'''


@pytest.fixture
def extension_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A package dir with the filter module and its dist-info (entry point), on the proxy
    process's PYTHONPATH (the ``proxy`` fixture inherits the environment)."""
    ext = tmp_path / "ext"
    dist = ext / "mosn_py_test_body_rewrite-0.dist-info"
    dist.mkdir(parents=True)
    (ext / "mosn_py_test_body_rewrite.py").write_text(EXTENSION)
    (dist / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: mosn-py-test-body-rewrite\nVersion: 0\n"
    )
    (dist / "entry_points.txt").write_text(textwrap.dedent("""\
        [mosn_py.extensions]
        test_body_rewrite = mosn_py_test_body_rewrite:register
        """))
    old = os.environ.get("PYTHONPATH")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(ext), old or str(REPO)]))
    return ext


def config(backend: Any) -> dict[str, Any]:
    return {
        "listeners": [{
            "name": "web", "address": "127.0.0.1:0", "protocol": "http", "route": "gw",
            "max_frame_size": LIMIT, "filters": [{"name": "test_body_rewrite"}],
        }],
        "routes": [{"name": "gw", "virtual_hosts": [{"name": "all", "domains": ["*"], "rules": [
            {"match": {"prefix": "/"}, "cluster": "b"}]}]}],
        "clusters": [{"name": "b", "protocol": "http1", "endpoints": [backend.address]}],
    }


def curl(version: str, url: str, *args: str) -> tuple[int, dict[str, str], bytes]:
    flag = "--http2-prior-knowledge" if version == "2" else "--http1.1"
    r = subprocess.run(
        ["curl", "-sS", flag, "--max-time", "20", "-D", "-", *args, url],
        capture_output=True, timeout=30,
    )
    assert r.returncode == 0, r.stderr
    head, _, body = r.stdout.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    assert lines[0].startswith(f"HTTP/{version}"), lines[0]
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()
    return int(lines[0].split()[1]), headers, body


@pytest.mark.parametrize("version", ["1.1", "2"])
def test_filter_rewrites_bodies_and_the_limit_holds(
    proxy: Any, http_backend: Any, extension_path: Path, tmp_path: Path, version: str  # noqa: F811
) -> None:
    p = proxy(config(http_backend()))
    assert "loading extension test_body_rewrite" in p.log()
    host, port = p.addr("web")
    base = f"http://{host}:{port}"

    # Request: held, kept whole (several chunks), rewritten, then sent with its new length.
    data = os.urandom(40000)
    upload = tmp_path / "up.bin"
    upload.write_bytes(data)
    status, headers, body = curl(version, base + "/echo", "--data-binary", f"@{upload}")
    assert status == 200
    info = json.loads(body)
    sent = data.upper() + b"!"
    assert info["body_len"] == len(sent)
    assert info["body_sha256"] == hashlib.sha256(sent).hexdigest()
    upstream_headers = dict(info["headers"])
    assert upstream_headers["x-body-rewrite"] == "40000"
    assert upstream_headers["content-length"] == str(len(sent))
    assert headers["x-response-bytes"] == str(len(body))

    # Response: held until its body is whole, then the head goes out with the count.
    status, headers, body = curl(version, base + "/bytes/50000")
    assert status == 200 and body == pattern(50000)
    assert headers["x-response-bytes"] == "50000"

    # No body: the hooks are not involved.
    status, headers, body = curl(version, base + "/status/204")
    assert status == 204 and "x-response-bytes" not in headers

    # Over the limit: the request is answered 413 (its last chunk crosses the limit, so the
    # whole upload was read), a response the filter keeps 500.
    (tmp_path / "big.bin").write_bytes(os.urandom(LIMIT + 1))
    status, _, _ = curl(version, base + "/echo", "--data-binary", f"@{tmp_path / 'big.bin'}")
    assert status == 413
    status, _, _ = curl(version, base + f"/bytes/{2 * LIMIT}")
    assert status == 500

    # And the proxy serves on.
    status, headers, body = curl(version, base + "/bytes/10")
    assert status == 200 and headers["x-response-bytes"] == "10"
