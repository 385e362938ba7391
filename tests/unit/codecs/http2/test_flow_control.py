"""Flow control both ways (RFC 9113 §5.2, §6.9) against a real h2 peer: pending DATA waits
inside the codec for WINDOW_UPDATE, the receive window reopens only on ``consumed()``,
and a slow reader behind a proxy stalls the sender end to end."""

from __future__ import annotations

import h2.events as ev

from mosn_py.codecs.base import DataFrame, Frame, HeaderList, ResetFrame, Role, StreamType
from mosn_py.codecs.http2 import Http2Codec

from .peer import GET, REQUEST, SETTING, Link, b, heads, new_peer, of, parse_frames, server_link

WINDOW = 65535


def answer(sid: int, body: bytes | memoryview, *, end: bool = True) -> Frame:
    return Frame(
        StreamType.RESPONSE, sid, HeaderList([(":status", "200")]), body, 200, end_stream=end
    )


def open_get(link: Link, *sids: int) -> None:
    for sid in sids:
        link.peer.send_headers(sid, b(GET), end_stream=True)
    link.run()
    assert [f.request_id for f in heads(link.take())] == list(sids)


# --- sending: pending data -----------------------------------------------------------------


def test_large_body_waits_for_window_updates() -> None:
    link = server_link()
    link.peer_acks = False  # a slow reader: acknowledges only when told below
    open_get(link, 1)
    body = bytes(range(256)) * 4096  # 1 MiB
    link.send(answer(1, memoryview(body)))
    codec = link.codec
    received = len(link.peer_body(1))
    assert received == WINDOW  # the peer's initial windows, no more (§6.9.2)
    assert codec.pending(1) == len(body) - received == codec.pending_total
    acked = 0
    for _ in range(200):
        if received == len(body):
            break
        # the codec never holds more than the part of the body not yet on the wire
        assert codec.pending(1) == len(body) - received
        link.peer.acknowledge_received_data(received - acked, 1)
        acked = received
        link.run()
        received = len(link.peer_body(1))
    assert link.peer_body(1) == body
    assert codec.pending(1) == 0 and codec.pending_total == 0
    assert of(link.peer_events, ev.StreamEnded)
    assert codec.active_streams == 0
    # DATA frames never exceed the peer's SETTINGS_MAX_FRAME_SIZE (16384, §4.2)
    sizes = [len(f.data) for f in parse_frames(bytes(link.wire_to_peer)) if f.type == 0]
    assert max(sizes) == 16384


def test_settings_raising_the_window_flushes_pending() -> None:
    link = server_link(settings={SETTING.INITIAL_WINDOW_SIZE: 1000})
    link.peer_acks = False
    open_get(link, 1)
    link.send(answer(1, b"x" * 5000))
    assert len(link.peer_body(1)) == 1000 and link.codec.pending(1) == 4000
    link.peer.update_settings({SETTING.INITIAL_WINDOW_SIZE: 100_000})
    link.run()
    assert link.peer_body(1) == b"x" * 5000 and link.codec.pending_total == 0


def test_connection_window_update_serves_blocked_streams_in_turn() -> None:
    link = server_link(settings={SETTING.INITIAL_WINDOW_SIZE: 1 << 20})
    link.peer_acks = False
    open_get(link, 1, 3)
    link.send(answer(1, b"a" * 200_000))
    link.send(answer(3, b"b" * 200_000))
    assert len(link.peer_body(1)) == WINDOW and link.peer_body(3) == b""  # connection window
    assert link.codec.pending_total == 400_000 - WINDOW
    served = []
    for _ in range(4):
        before = (len(link.peer_body(1)), len(link.peer_body(3)))
        link.peer.increment_flow_control_window(16384)  # stream 0 only
        link.run()
        after = (len(link.peer_body(1)), len(link.peer_body(3)))
        served.append(1 if after[0] > before[0] else 3)
    assert served == [1, 3, 1, 3]  # round robin, one large body cannot starve the other


def test_waiting_data_does_not_alias_the_callers_buffer() -> None:
    link = server_link()
    link.peer_acks = False
    open_get(link, 1)
    buf = bytearray(b"A" * 100_000)
    link.send(answer(1, b"", end=False))
    link.send(DataFrame(1, memoryview(buf), end_stream=True))
    buf[:] = b"B" * 100_000  # the transport reuses its buffer after send() returned
    link.peer.acknowledge_received_data(WINDOW, 1)
    link.peer_acks = True
    link.run()
    assert link.peer_body(1) == b"A" * 100_000


def test_reset_releases_pending_and_send_after_reset_fails() -> None:
    link = server_link()
    link.peer_acks = False
    open_get(link, 1, 3)
    link.send(answer(1, b"a" * 100_000))
    link.send(answer(3, b"b" * 10_000))
    assert link.codec.pending(1) == 100_000 - WINDOW
    assert link.codec.pending(3) == 10_000
    link.send(ResetFrame(1, 0x8))
    assert link.codec.pending(1) == 0 and link.codec.pending_total == 10_000
    assert of(link.peer_events, ev.StreamReset)[0].error_code == 0x8


# --- receiving: the consumer opens the window --------------------------------------------


def _upload(link: Link, sid: int, data: bytes) -> int:
    """The peer sends as much of ``data`` as its windows allow; returns octets sent."""
    room = min(link.peer.local_flow_control_window(sid), len(data))
    for i in range(0, room, 16384):
        link.peer.send_data(sid, data[i : min(room, i + 16384)])
    return room


def test_receive_window_opens_only_when_consumed() -> None:
    codec = Http2Codec(Role.SERVER)
    link = Link(codec, new_peer(True), auto_consume=False)
    link.run()
    link.peer.send_headers(1, b(REQUEST))
    body = bytes(range(256)) * 800  # 204800 octets
    sent = _upload(link, 1, body)
    link.run()
    assert sent == WINDOW and link.peer.local_flow_control_window(1) == 0
    assert len(link.body(1)) == WINDOW
    assert _upload(link, 1, body[sent:]) == 0  # stalled: nothing consumed
    consumed = 0
    while sent < len(body):
        delivered = len(link.body(1))
        codec.consumed(1, delivered - consumed)
        consumed = delivered
        link.run()  # WINDOW_UPDATE reaches the peer
        n = _upload(link, 1, body[sent:])
        assert n > 0
        sent += n
        link.run()
    assert link.body(1) == body


def test_stalled_stream_does_not_block_the_connection() -> None:
    codec = Http2Codec(Role.SERVER, settings={SETTING.MAX_CONCURRENT_STREAMS: 50})
    link = Link(codec, new_peer(True), auto_consume=False)
    link.run()
    sids = list(range(1, 60, 2))  # 30 streams x 64 KiB = 1.9 MiB > the connection window
    for sid in sids:
        link.peer.send_headers(sid, b(REQUEST))
        assert _upload(link, sid, b"z" * WINDOW) == WINDOW
        link.run()
    for sid in sids:
        assert len(link.body(sid)) == WINDOW  # each stream full, none consumed
        assert link.peer.local_flow_control_window(sid) == 0
    # more than the whole connection window arrived unconsumed: it was handed back at
    # decode time (in h2's batches of half a window)
    assert sum(len(link.body(sid)) for sid in sids) > 1 << 20
    assert link.peer.outbound_flow_control_window >= (1 << 19) - WINDOW


def test_consumed_is_capped_and_ignores_unknown_streams() -> None:
    codec = Http2Codec(Role.SERVER)
    link = Link(codec, new_peer(True), auto_consume=False)
    link.run()
    link.peer.send_headers(1, b(REQUEST))
    _upload(link, 1, b"q" * 40_000)
    link.run()
    codec.consumed(1, 10**9)  # more than delivered: capped to 40000
    codec.consumed(99, 100)  # unknown: ignored
    codec.consumed(1, -5)
    link.run()
    assert link.peer.local_flow_control_window(1) == WINDOW  # exactly back, not beyond


def test_padding_is_acknowledged_without_the_consumer() -> None:
    codec = Http2Codec(Role.SERVER)
    link = Link(codec, new_peer(True), auto_consume=False)
    link.run()
    link.peer.send_headers(1, b(REQUEST))
    for _ in range(4):
        link.peer.send_data(1, b"p" * 10_000, pad_length=200)
    link.run()
    assert len(link.body(1)) == 40_000
    assert link.peer.local_flow_control_window(1) == WINDOW - 40_000 - 4 * 201
    codec.consumed(1, 40_000)
    link.run()
    assert link.peer.local_flow_control_window(1) == WINDOW


# --- end to end through a proxy: slow upstream reader ---------------------------------------


def test_slow_upstream_reader_stalls_the_downstream_sender() -> None:
    """downstream h2 client -> [server codec | proxy loop | client codec] -> slow h2 server.

    The proxy forwards each DataFrame upstream and calls ``consumed()`` downstream only
    while the upstream codec's ``pending`` is under a watermark. Memory in the proxy stays
    bounded by one stream window however large the upload is.
    """
    down = Link(Http2Codec(Role.SERVER), new_peer(True), auto_consume=False)
    up = Link(Http2Codec(Role.CLIENT), new_peer(False), peer_acks=False)
    down.run()
    up.run()
    body = bytes(range(251)) * 2000  # 502000 octets
    down.peer.send_headers(1, b(REQUEST))
    sent = 0
    held: list[int] = []  # downstream octets forwarded but not yet consumed()
    usid = 0
    watermark = 32768
    up_received = 0
    max_pending = 0
    for _ in range(500):
        if sent < len(body):
            sent += _upload(down, 1, body[sent:])
            if sent == len(body):
                down.peer.end_stream(1)
        down.run()
        for e in down.take():
            if isinstance(e, Frame):
                usid, bufs = up.codec.send_request(e.evolve(end_stream=False))
                up._peer_fed(b"".join(bufs))
            elif isinstance(e, DataFrame):
                up._peer_fed(b"".join(up.codec.send(DataFrame(usid, e.data, e.end_stream))))
                held.append(len(e.data))
        # backpressure: consume downstream only while upstream keeps up
        while held and up.codec.pending(usid) < watermark:
            down.codec.consumed(1, held.pop(0))
        max_pending = max(max_pending, up.codec.pending_total)
        up.run()
        # the upstream application reads 20000 octets per round
        got = len(up.peer_body(1))
        if got > up_received:
            step = min(20_000, got - up_received)
            up.peer.acknowledge_received_data(step, 1)
            up_received += step
        if up_received == len(body):
            break
    assert up.peer_body(1) == body
    assert of(up.peer_events, ev.StreamEnded)
    assert max_pending <= WINDOW + 16384  # bounded by a stream window, not by the body
    assert down.peer.local_flow_control_window(1) >= 0
