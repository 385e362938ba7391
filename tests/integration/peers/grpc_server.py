"""A real gRPC server for the tests (grpcio), serving the interop kit's SampleServicePb
with a generic handler (no generated stubs needed):

    python grpc_server.py PORT

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


def hello(req_bytes: bytes, ctx: Any) -> bytes:
    req = pb.SampleServicePbRequest.FromString(req_bytes)
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
    port = server.add_insecure_port("127.0.0.1:" + sys.argv[1])
    server.start()
    print("READY", port, flush=True)
    server.wait_for_termination()


if __name__ == "__main__":
    main()
