"""A real SOFARPC Bolt server for the tests: anthunder's AioListener serving the interop
kit's SampleServicePb (fixtures/bolt/sample_service.proto).

    python anthunder_server.py PORT [HOST]

Prints ``READY <port>`` when listening. Methods:
- ``hello``: result = "hello " + name, echoes seq and payload. A name ``sleep:<seconds>:...``
  sleeps first (slow upstream); a name ``oneway:<tag>`` is remembered.
- ``count``: result = the number of ``oneway:`` calls seen so far.
- ``fail``: raises (anthunder answers respStatus 3 UNKNOWN).
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time

logging.basicConfig(level=logging.CRITICAL)
os.environ.setdefault("NO_PROXY", "*")

from anthunder import AioListener, BaseService  # noqa: E402

from mosn_py.demo import sample_service_pb2 as pb  # noqa: E402

SERVICE = "com.alipay.rpc.common.service.facade.pb.SampleServicePb:1.0"
_oneway = 0
_lock = threading.Lock()


class SampleService(BaseService):
    def hello(self, body: bytes) -> bytes:
        global _oneway
        req = pb.SampleServicePbRequest.FromString(body)
        if req.name.startswith("sleep:"):
            time.sleep(float(req.name.split(":")[1]))
        if req.name.startswith("oneway:"):
            with _lock:
                _oneway += 1
        return pb.SampleServicePbResult(
            result="hello " + req.name, seq=req.seq, payload=req.payload
        ).SerializeToString()

    def count(self, body: bytes) -> bytes:
        with _lock:
            n = _oneway
        return pb.SampleServicePbResult(result=str(n)).SerializeToString()

    def fail(self, body: bytes) -> bytes:
        raise RuntimeError("fail on purpose")


def main() -> None:
    port = int(sys.argv[1])
    host = sys.argv[2] if len(sys.argv) > 2 else "127.0.0.1"
    listener = AioListener((host, port), "mosn-py-test-server")
    listener.handler.register_interface(SERVICE, SampleService)
    t = threading.Thread(target=listener.run_forever, daemon=True)
    t.start()
    # Wait until the port accepts connections.
    import socket

    for _ in range(200):
        try:
            socket.create_connection((host, port), timeout=0.2).close()
            break
        except OSError:
            time.sleep(0.02)
    print(f"READY {port}", flush=True)
    t.join()


if __name__ == "__main__":
    main()
