"""The SERVER role's reorder buffer: responses leave in request order.

memcached has no request ids: a client matches replies to requests by position. A proxy in
front of several shards gets answers back in any order, so each two-way request opens a
*slot* when it is decoded, and ``release(request_id, buffers)`` returns everything that
became sendable::

    slots   [3, 4, 6, 7]          (5 was noreply: no slot)
    release(6, r6) -> []          held: {6: r6}
    release(3, r3) -> [r3]
    release(4, r4) -> [r4, r6]    6 follows 4 and was waiting

The number of open slots is bounded by the codec (``CodecLimits.max_pending_frames``): when
it is reached the codec stops decoding requests until slots are released, so the held
responses are bounded too.
"""

from __future__ import annotations

from collections import deque

from mosn_py.codecs.memcache.wire import PROTOCOL, Buffers
from mosn_py.errors import LocalProtocolError


class ResponseOrder:
    """Open response slots, in request order, and the responses that arrived early."""

    __slots__ = ("slots", "opened", "_early")

    def __init__(self) -> None:
        # The ids of open slots, in order, and as a set. The request reader appends to both
        # directly (its hot path); everything else goes through open() and release().
        self.slots: deque[int] = deque()
        self.opened: set[int] = set()
        self._early: dict[int, Buffers] = {}

    def __len__(self) -> int:
        """Open slots (requests still owed a response)."""
        return len(self.slots)

    @property
    def held(self) -> int:
        """Responses released out of order, waiting for an earlier one."""
        return len(self._early)

    def open(self, request_id: int) -> None:
        """A new two-way request; ids must increase."""
        self.slots.append(request_id)
        self.opened.add(request_id)

    def release(self, request_id: int, buffers: Buffers) -> Buffers:
        """The response to ``request_id``; returns every buffer now sendable, in order.

        Raises ``LocalProtocolError`` when ``request_id`` has no open slot (unknown, a
        noreply request, or answered already).
        """
        slots = self.slots
        if slots and slots[0] == request_id:
            slots.popleft()
            self.opened.discard(request_id)
            early = self._early
            if not early:
                return buffers
            out = list(buffers)
            while slots and slots[0] in early:
                rid = slots.popleft()
                self.opened.discard(rid)
                out.extend(early.pop(rid))
            return out
        if request_id not in self.opened or request_id in self._early:
            raise LocalProtocolError(
                f"no response slot open for request {request_id} "
                "(unknown, noreply, or already answered)",
                protocol=PROTOCOL,
            )
        self._early[request_id] = buffers
        return []
