"""gRPC backend for the ``mosn-py (bolt2grpc)`` path of the bolt scenario (grpcio).

Serves ``com.alipay.rpc.common.service.facade.pb.SampleServicePb/hello`` with a generic
handler (no generated stubs): result "hello " + name, seq echoed -- the same answer as
``tests/integration/peers/grpc_server.py``, whose anthunder request bolt_load.py replays.
A thread pool of 16 so the Python server is not the narrow side at a moderate in-flight
count. Loopback only.

    python bench/grpc_backend.py --port PORT [--threads 16]
"""

from __future__ import annotations

import argparse
import os
import sys
from concurrent import futures
from typing import Any

import grpc  # type: ignore[import-untyped]

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from mosn_py.demo import sample_service_pb2 as pb

SERVICE = "com.alipay.rpc.common.service.facade.pb.SampleServicePb"


def hello(req_bytes: bytes, ctx: Any) -> bytes:
    req = pb.SampleServicePbRequest.FromString(req_bytes)
    return bytes(
        pb.SampleServicePbResult(result="hello " + req.name, seq=req.seq).SerializeToString()
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--threads", type=int, default=16)
    a = p.parse_args()
    handler = grpc.method_handlers_generic_handler(
        SERVICE, {"hello": grpc.unary_unary_rpc_method_handler(hello)})
    server = grpc.server(futures.ThreadPoolExecutor(a.threads))
    server.add_generic_rpc_handlers((handler,))
    port = server.add_insecure_port(f"127.0.0.1:{a.port}")
    server.start()
    print("READY", port, flush=True)
    server.wait_for_termination()


if __name__ == "__main__":
    main()
