"""A real gRPC server for the tests (grpcio), serving the interop kit's SampleServicePb
with a generic handler (no generated stubs needed):

    python grpc_server.py PORT [--tls CERT KEY [CLIENT_CA]]

With ``--tls`` it serves gRPC over TLS (ALPN h2); with CLIENT_CA it requires a client
certificate signed by it and returns the client's identity (URI SAN, else CN) in the
trailing metadata ``x-peer-identity`` of ``hello``.

Prints ``READY <port>``. Methods (messages from fixtures/bolt/sample_service.proto):
- ``hello`` (unary): result "hello " + name, echoes seq; name "fail" -> INVALID_ARGUMENT
  "bad name"; name "sleep" -> sleeps 2 s first;
- ``stream`` (server streaming): seq results "name-i";
- ``collect`` (client streaming): joins the names it received;
- ``chat`` (bidi): answers every message with "echo " + name.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from concurrent import futures
from typing import Any

import grpc

from mosn_py.demo import sample_service_pb2 as pb

SERVICE = "com.alipay.rpc.common.service.facade.pb.SampleServicePb"


def peer_identity(ctx: Any) -> str:
    auth = ctx.auth_context()
    for key in ("x509_subject_alternative_name", "x509_common_name"):
        values = auth.get(key)
        if values:
            return "|".join(v.decode() for v in values)
    return ""


def hello(req_bytes: bytes, ctx: Any) -> bytes:
    req = pb.SampleServicePbRequest.FromString(req_bytes)
    ident = peer_identity(ctx)
    if ident:
        ctx.set_trailing_metadata((("x-peer-identity", ident),))
    if req.name == "fail":
        ctx.abort(grpc.StatusCode.INVALID_ARGUMENT, "bad name")
    if req.name == "sleep":
        time.sleep(2)
    return bytes(
        pb.SampleServicePbResult(result="hello " + req.name, seq=req.seq).SerializeToString()
    )


def stream(req_bytes: bytes, ctx: Any) -> Iterator[bytes]:
    req = pb.SampleServicePbRequest.FromString(req_bytes)
    for i in range(req.seq):
        yield bytes(pb.SampleServicePbResult(result=f"{req.name}-{i}", seq=i).SerializeToString())


def collect(it: Iterator[bytes], ctx: Any) -> bytes:
    names = [pb.SampleServicePbRequest.FromString(b).name for b in it]
    return bytes(pb.SampleServicePbResult(result=",".join(names), seq=len(names))
                 .SerializeToString())


def chat(it: Iterator[bytes], ctx: Any) -> Iterator[bytes]:
    for b in it:
        req = pb.SampleServicePbRequest.FromString(b)
        yield bytes(pb.SampleServicePbResult(result="echo " + req.name, seq=req.seq)
                    .SerializeToString())


def main() -> None:
    handler = grpc.method_handlers_generic_handler(SERVICE, {
        "hello": grpc.unary_unary_rpc_method_handler(hello),
        "stream": grpc.unary_stream_rpc_method_handler(stream),
        "collect": grpc.stream_unary_rpc_method_handler(collect),
        "chat": grpc.stream_stream_rpc_method_handler(chat),
    })
    server = grpc.server(futures.ThreadPoolExecutor(8))
    server.add_generic_rpc_handlers((handler,))
    addr = "127.0.0.1:" + sys.argv[1]
    if "--tls" in sys.argv:
        i = sys.argv.index("--tls")
        files = [open(f, "rb").read() for f in sys.argv[i + 1:]]  # noqa: SIM115
        cert, key = files[0], files[1]
        ca = files[2] if len(files) > 2 else None
        creds = grpc.ssl_server_credentials(
            [(key, cert)], root_certificates=ca, require_client_auth=ca is not None
        )
        port = server.add_secure_port(addr, creds)
    else:
        port = server.add_insecure_port(addr)
    server.start()
    print("READY", port, flush=True)
    server.wait_for_termination()


if __name__ == "__main__":
    main()
