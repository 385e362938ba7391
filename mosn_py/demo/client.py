"""A tiny SOFARPC Bolt client for trying the proxy from a shell.

    python -m mosn_py.demo.client [HOST:PORT] [--name NAME] [--method hello] [-n COUNT]
    python -m mosn_py.demo.client --echo TEXT [HOST:PORT]      # plain TCP: send, half-close, read

It sends ``SampleServicePb.hello`` requests (the bundled demo service, and the interop kit's
sample service) shaped like anthunder's, and prints each answer's status and result.
"""

from __future__ import annotations

import argparse
import socket
import sys

from mosn_py.codecs.base import NEED_DATA, ConnectionEvent, Frame, Role, StreamType
from mosn_py.codecs.bolt import BoltCodec

SERVICE = "com.alipay.rpc.common.service.facade.pb.SampleServicePb:1.0"


def main(argv: list[str] | None = None) -> int:
    from mosn_py.demo import sample_service_pb2 as pb

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("address", nargs="?", default="127.0.0.1:12200")
    p.add_argument("--name", default="mosn-py")
    p.add_argument("--method", default="hello")
    p.add_argument("--service", default=SERVICE)
    p.add_argument("-n", "--count", type=int, default=1)
    p.add_argument("--timeout-ms", type=int, default=3000)
    p.add_argument("--echo", metavar="TEXT", help="plain TCP instead of Bolt: send TEXT, "
                   "close our side, print what comes back")
    args = p.parse_args(argv)
    host, _, port = args.address.rpartition(":")
    if args.echo is not None:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=10) as sock:
            sock.sendall(args.echo.encode() + b"\n")
            sock.shutdown(socket.SHUT_WR)
            got = b""
            while chunk := sock.recv(65536):
                got += chunk
        print(got.decode(errors="replace"), end="")
        return 0
    codec = BoltCodec(Role.CLIENT)
    with socket.create_connection((host.strip("[]"), int(port)), timeout=10) as sock:
        for i in range(args.count):
            body = pb.SampleServicePbRequest(name=args.name, seq=i).SerializeToString()
            headers = {
                "sofa_head_target_service": args.service,
                "sofa_head_method_name": args.method,
                "service": args.service,
            }
            req = Frame(StreamType.REQUEST, i + 1, headers, body, timeout_ms=args.timeout_ms)
            sock.sendall(b"".join(codec.send(req)))
            while True:
                ev = codec.next_event()
                if ev is NEED_DATA:
                    data = sock.recv(65536)
                    codec.receive_data(data)
                    continue
                if ev is ConnectionEvent.CLOSED:
                    print("connection closed by the server", file=sys.stderr)
                    return 1
                break
            if ev.status == 0:
                res = pb.SampleServicePbResult.FromString(bytes(ev.body))
                print(f"status=0 result={res.result!r} seq={res.seq}")
            else:
                msg = bytes(ev.body).decode("utf-8", "replace")
                print(f"status={ev.status} {msg}".rstrip())
    return 0


if __name__ == "__main__":
    sys.exit(main())
