"""Bad input at the Bolt listener never crashes or hangs the proxy: random bytes, mutated
real frames, oversize frames and half-sent frames each end with an error reply and/or a
closed connection, and the proxy keeps serving good clients."""

from __future__ import annotations

import random
import socket
import struct
from typing import Any

from tests.integration.test_bolt_proxy import (
    bolt_config,
    fixture_bytes,
    recv_frames,
    request_frame,
    resp_id,
    resp_status,
)


def _drain_until_closed(sock: socket.socket, timeout: float = 5.0) -> bytes:
    sock.settimeout(timeout)
    got = b""
    try:
        while chunk := sock.recv(65536):
            got += chunk
    except ConnectionResetError:
        pass
    return got


def test_garbage_never_breaks_the_proxy(proxy: Any, anthunder_server: Any) -> None:
    srv = anthunder_server()
    cfg = bolt_config([srv.address])
    cfg["listeners"][0]["max_frame_size"] = "64KiB"
    cfg["listeners"][0]["idle_timeout"] = "1s"
    p = proxy(cfg)
    addr = p.addr("bolt_in")
    rng = random.Random(1234)
    real = fixture_bytes("anthunder_aio__hello.request.hex")
    cases: list[bytes] = []
    for _ in range(40):  # random bytes
        cases.append(bytes(rng.randrange(256) for _ in range(rng.randrange(1, 300))))
    for _ in range(40):  # a real frame with a few bytes flipped
        b = bytearray(real)
        for _ in range(rng.randrange(1, 4)):
            b[rng.randrange(len(b))] = rng.randrange(256)
        cases.append(bytes(b))
    big = bytearray(real)
    struct.pack_into(">I", big, 18, 1 << 20)  # contentLen 1 MiB > the 64 KiB limit
    cases.append(bytes(big))
    for data in cases:
        with socket.create_connection(addr) as s:
            s.sendall(data)
            s.shutdown(socket.SHUT_WR)  # EOF: a truncated frame is an error, not a wait
            got = _drain_until_closed(s)
        # Whatever came back is whole Bolt responses (answers or error replies).
        while got:
            assert got[0] == 1 and len(got) >= 20, got[:40]
            cl, hl, bl = struct.unpack_from(">HHI", got, 12)
            got = got[20 + cl + hl + bl:]
    # The oversize frame was refused at its header with CODEC_EXCEPTION for its id.
    with socket.create_connection(addr) as s:
        s.sendall(bytes(big))
        (f,) = recv_frames(s, 1)
        assert resp_status(f) == 9 and resp_id(f) == struct.unpack_from(">I", big, 5)[0]
    # A client that sends half a frame and goes quiet is closed by the idle timeout.
    with socket.create_connection(addr) as s:
        s.sendall(real[:100])
        assert _drain_until_closed(s, timeout=10) == b""
    # And the proxy still serves.
    with socket.create_connection(addr) as s:
        s.sendall(request_frame(42, "still-alive"))
        (f,) = recv_frames(s, 1)
    assert resp_id(f) == 42 and resp_status(f) == 0
    assert p.proc.poll() is None
