"""In-process microbenchmark of the per-request HTTP work mosn-py does besides I/O.

One proxied exchange, the way ``l7_proxy`` drives the codecs, without sockets, event loop
or ``Stream``: the downstream codec decodes the request, ``http_heads`` prepares the
upstream head, the upstream codec encodes it; the upstream codec decodes the response,
its head is prepared, the downstream codec encodes it and its body.

- ``http1``: wrk's request and nginx's response (the ``http1`` scenario's), one pair of
  codecs, one exchange at a time;
- ``h2``: an h2load-like client and an nginx-like server, both python-hyper ``h2``
  endpoints (not timed), batches of 32 concurrent streams (the ``h2`` scenario's).

It reports the thread CPU time per request (``time.thread_time``, minimum over rounds), so
a machine shared with other work disturbs it far less than ``run.py``: use it to compare
code changes, and ``run.py`` for what a proxy achieves. ``--profile N`` prints the N
costliest functions (cProfile, our side only) and the Python calls per request.

    .venv/bin/python bench/http_codec_micro.py [--scenario http1|h2] [--rounds 15]
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import time
from collections.abc import Callable
from typing import Any

import h2.events as h2_events
from h2.config import H2Configuration
from h2.connection import H2Connection

from mosn_py.codecs.base import NEED_DATA, DataFrame, Frame, HeaderList, Role
from mosn_py.codecs.http1 import Http1Codec
from mosn_py.codecs.http2 import Http2Codec
from mosn_py.filters.network import http_heads, http_route_step

prepare_response = http_heads.prepare_response


def prepare_request_expect(
    headers: HeaderList, *, client_ip: str, scheme: str
) -> tuple[HeaderList, str | None]:
    """``http_heads.prepare_request_expect``, or what a tree without it did (so the same
    script measures an older revision: ``PYTHONPATH=OLD_TREE``)."""
    fn = getattr(http_heads, "prepare_request_expect", None)
    if fn is not None:
        result: tuple[HeaderList, str | None] = fn(headers, client_ip=client_ip, scheme=scheme)
        return result
    h = http_heads.prepare_request(headers, client_ip=client_ip, scheme=scheme)
    return h, h.get("expect")


def with_headers(frame: Frame, headers: HeaderList) -> Frame:
    fn = getattr(http_route_step, "with_headers", None)
    return fn(frame, headers) if fn is not None else frame.evolve(headers=headers)

H1_REQUEST = b"GET / HTTP/1.1\r\nHost: 127.0.0.1:28111\r\n\r\n"
H1_RESPONSE = (
    b"HTTP/1.1 200 OK\r\nServer: nginx/1.22.1\r\nDate: Tue, 24 Nov 2026 04:08:30 GMT\r\n"
    b"Content-Type: text/plain\r\nContent-Length: 37\r\nConnection: keep-alive\r\n\r\n"
    b"hello from the bench backend, 37 oct\n"
)
H2_REQUEST = [
    (b":method", b"GET"),
    (b":path", b"/"),
    (b":scheme", b"http"),
    (b":authority", b"127.0.0.1:28112"),
    (b"accept", b"*/*"),
    (b"accept-encoding", b"gzip, deflate"),
    (b"user-agent", b"h2load nghttp2/1.52.0"),
]
H2_RESPONSE = [
    (b":status", b"200"),
    (b"server", b"nginx/1.22.1"),
    (b"date", b"Tue, 24 Nov 2026 04:08:30 GMT"),
    (b"content-type", b"text/plain"),
    (b"content-length", b"37"),
]
H2_BODY = b"hello from the bench backend, 37 oct\n"
H2_BATCH = 32


class Timer:
    """Thread CPU time spent inside ``run()``, optionally under a profiler."""

    def __init__(self) -> None:
        self.spent = 0.0
        self.profile: cProfile.Profile | None = None

    def run(self, fn: Callable[[], Any]) -> None:
        prof = self.profile
        if prof is not None:
            prof.enable()
        t0 = time.thread_time()
        fn()
        self.spent += time.thread_time() - t0
        if prof is not None:
            prof.disable()


def http1_exchange(timer: Timer) -> Callable[[], int]:
    down = Http1Codec(Role.SERVER)
    up = Http1Codec(Role.CLIENT)
    request = memoryview(H1_REQUEST)
    response = memoryview(H1_RESPONSE)

    def exchange() -> None:
        down.receive_data(request)
        req = down.next_event()
        down.next_event()
        headers, _ = prepare_request_expect(req.headers, client_ip="127.0.0.1", scheme="http")
        up.send(with_headers(req, headers), 1)
        up.receive_data(response)
        resp = up.next_event()
        body = up.next_event()
        up.next_event()
        head = with_headers(resp, prepare_response(resp.headers, status=resp.status))
        down.send(head, req.request_id)
        down.send(DataFrame(req.request_id, body.data, body.end_stream))

    def step() -> int:
        timer.run(exchange)
        return 1

    return step


def h2_batch(timer: Timer) -> Callable[[], int]:
    client = H2Connection(H2Configuration(client_side=True, header_encoding=None))
    server = H2Connection(H2Configuration(client_side=False, header_encoding=None))
    client.initiate_connection()
    server.initiate_connection()
    down = Http2Codec(Role.SERVER)
    up = Http2Codec(Role.CLIENT)
    to_down = bytearray(client.data_to_send())
    to_client = bytearray(b"".join(down.initiate()))
    to_server = bytearray(b"".join(up.initiate()))
    to_up = bytearray(server.data_to_send())
    up_to_down: dict[int, int] = {}

    def proxy_in() -> None:
        down.receive_data(bytes(to_down))
        to_down.clear()
        while (ev := down.next_event()) is not NEED_DATA:
            if ev.__class__ is Frame:
                headers, _ = prepare_request_expect(
                    ev.headers, client_ip="127.0.0.1", scheme="http"
                )
                sid, bufs = up.send_request(with_headers(ev, headers))
                up_to_down[sid] = ev.request_id
                to_server.extend(b"".join(bufs))
        to_client.extend(b"".join(down.data_to_send()))

    def proxy_out() -> None:
        up.receive_data(bytes(to_up))
        to_up.clear()
        while (ev := up.next_event()) is not NEED_DATA:
            if ev.__class__ is Frame:
                head = with_headers(ev, prepare_response(ev.headers, status=ev.status))
                to_client.extend(b"".join(down.send(head, up_to_down[ev.request_id])))
            elif ev.__class__ is DataFrame:
                rid = up_to_down.pop(ev.stream_id)
                to_client.extend(b"".join(down.send(DataFrame(rid, ev.data, ev.end_stream))))
                if ev.data:
                    up.consumed(ev.stream_id, len(ev.data))
        to_server.extend(b"".join(up.data_to_send()))
        to_client.extend(b"".join(down.data_to_send()))

    def run_server() -> None:
        for e in server.receive_data(bytes(to_server)):
            if isinstance(e, h2_events.RequestReceived):
                server.send_headers(e.stream_id, H2_RESPONSE)
                server.send_data(e.stream_id, H2_BODY, end_stream=True)
        to_server.clear()
        to_up.extend(server.data_to_send())

    def run_client() -> None:
        for e in client.receive_data(bytes(to_client)):
            if isinstance(e, h2_events.DataReceived):
                client.acknowledge_received_data(e.flow_controlled_length, e.stream_id)
        to_client.clear()
        to_down.extend(client.data_to_send())

    def step() -> int:
        for _ in range(H2_BATCH):
            client.send_headers(client.get_next_available_stream_id(), H2_REQUEST, True)
        to_down.extend(client.data_to_send())
        timer.run(proxy_in)
        run_server()
        timer.run(proxy_out)
        run_client()
        return H2_BATCH

    return step


def measure(scenario: str, rounds: int, profile: int) -> None:
    timer = Timer()
    step = (http1_exchange if scenario == "http1" else h2_batch)(timer)
    per_round = 2000 if scenario == "http1" else 40
    for _ in range(per_round // 4):  # warm-up (HPACK tables, caches)
        step()
    results = []
    for _ in range(rounds):
        timer.spent = 0.0
        n = sum(step() for _ in range(per_round))
        results.append(timer.spent / n)
    results.sort()
    print(
        f"{scenario}: {results[0] * 1e6:.1f} us of CPU per request "
        f"(min of {rounds} rounds; median {results[len(results) // 2] * 1e6:.1f})"
    )
    if profile:
        timer.profile = cProfile.Profile()
        n = sum(step() for _ in range(per_round))
        stats = pstats.Stats(timer.profile)
        raw: dict[Any, Any] = stats.stats  # type: ignore[attr-defined]
        calls = sum(v[1] for v in raw.values())
        print(f"Python calls per request: {calls / n:.0f}")
        stats.sort_stats("tottime").print_stats(profile)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--scenario", choices=("http1", "h2", "both"), default="both")
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--profile", type=int, default=0, metavar="N")
    args = ap.parse_args()
    for scenario in ("http1", "h2") if args.scenario == "both" else (args.scenario,):
        measure(scenario, args.rounds, args.profile)


if __name__ == "__main__":
    main()
