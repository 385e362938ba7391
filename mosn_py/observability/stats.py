"""Counters kept on the hot path as plain integers; the admin API exports them."""

from __future__ import annotations

from mosn_py.errors import ProxyStatus


class ListenerStats:
    __slots__ = (
        "cx_total",
        "cx_active",
        "rq_total",
        "rq_timeout",
        "rq_retry",
        "codec_errors",
        "bytes_received",
        "bytes_sent",
        "local_replies",
    )

    def __init__(self) -> None:
        self.cx_total = 0
        self.cx_active = 0
        self.rq_total = 0
        self.rq_timeout = 0
        self.rq_retry = 0
        self.codec_errors = 0
        self.bytes_received = 0
        self.bytes_sent = 0
        self.local_replies: dict[ProxyStatus, int] = {}

    def local_reply(self, status: ProxyStatus) -> None:
        self.local_replies[status] = self.local_replies.get(status, 0) + 1

    def cx_closed(self, received: int, sent: int) -> None:
        self.bytes_received += received
        self.bytes_sent += sent
