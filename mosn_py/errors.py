"""The error tree and the generic proxy status.

Every error says whose fault it was:

- ``ConfigError``: the operator's file (fatal at start-up, a NACK on xDS);
- ``RemoteProtocolError``: the peer sent bytes we cannot accept (reply if we can, then close);
- ``LocalProtocolError``: we tried to send something invalid (a bug or a misused filter);
- ``UpstreamError``: the upstream side failed (no host, connect error, timeout, overflow).

``ProxyStatus`` is the protocol-neutral outcome of a stream. Each codec maps it to its own
wire form (Bolt respStatus, HTTP status, Redis ``-ERR`` ...), so the core never needs to know
which protocol it is answering in.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable


class ProxyStatus(enum.Enum):
    """Why the proxy answered a request itself (or ``OK``: it did not)."""

    OK = "ok"
    ROUTE_NOT_FOUND = "route_not_found"
    NO_HEALTHY_UPSTREAM = "no_healthy_upstream"
    UPSTREAM_CONNECT_FAILED = "upstream_connect_failed"
    UPSTREAM_RESET = "upstream_reset"
    UPSTREAM_OVERFLOW = "upstream_overflow"
    TIMEOUT = "timeout"
    CODEC_ERROR = "codec_error"
    DRAINING = "draining"
    INTERNAL_ERROR = "internal_error"


class ResetReason(enum.Enum):
    """Why a stream was reset (after MOSN's ``StreamResetReason``)."""

    CONNECT_FAILURE = "connect_failure"
    CONNECTION_TERMINATED = "connection_terminated"  # the peer closed with the stream in flight
    CONNECTION_FAILED = "connection_failed"  # socket error with the stream in flight
    OVERFLOW = "overflow"
    LOCAL_RESET = "local_reset"
    REMOTE_RESET = "remote_reset"
    TIMEOUT = "timeout"
    CODEC_ERROR = "codec_error"

    def to_status(self) -> ProxyStatus:
        return _RESET_STATUS[self]


_RESET_STATUS = {
    ResetReason.CONNECT_FAILURE: ProxyStatus.UPSTREAM_CONNECT_FAILED,
    ResetReason.CONNECTION_TERMINATED: ProxyStatus.UPSTREAM_RESET,
    ResetReason.CONNECTION_FAILED: ProxyStatus.UPSTREAM_RESET,
    ResetReason.OVERFLOW: ProxyStatus.UPSTREAM_OVERFLOW,
    ResetReason.LOCAL_RESET: ProxyStatus.UPSTREAM_RESET,
    ResetReason.REMOTE_RESET: ProxyStatus.UPSTREAM_RESET,
    ResetReason.TIMEOUT: ProxyStatus.TIMEOUT,
    ResetReason.CODEC_ERROR: ProxyStatus.CODEC_ERROR,
}


class ProxyError(Exception):
    """Root of every error mosn-py raises on purpose."""


class ConfigError(ProxyError):
    """The configuration is invalid.

    ``errors`` holds one line per problem, each starting with the path of the offending key
    (``listeners[0].address: 'abc' is not host:port``); ``str()`` joins them.
    """

    def __init__(self, errors: str | Iterable[str]) -> None:
        self.errors: tuple[str, ...] = (errors,) if isinstance(errors, str) else tuple(errors)
        super().__init__("\n".join(self.errors))


class UnknownExtensionError(ConfigError):
    """A name that no registry holds; the message lists what is registered."""


class ProtocolError(ProxyError):
    """Bytes on a wire that break a protocol's rules (abstract: raise a subclass).

    ``status_hint`` is the ``ProxyStatus`` a local reply should carry; ``wire_code`` is an
    optional protocol-specific code (an h2 error code, a Bolt respStatus ...).
    """

    def __init__(
        self,
        msg: str,
        *,
        protocol: str = "",
        status_hint: ProxyStatus = ProxyStatus.CODEC_ERROR,
        wire_code: int | None = None,
        request_id: int | None = None,
    ) -> None:
        super().__init__(msg)
        self.protocol = protocol
        self.status_hint = status_hint
        self.wire_code = wire_code
        # The request the bad bytes belonged to, when the header was readable: the codec
        # can then answer that very request before closing (Bolt CODEC_EXCEPTION).
        self.request_id = request_id


class RemoteProtocolError(ProtocolError):
    """The peer violated the protocol: answer if a request id is known, then close."""


class LocalProtocolError(ProtocolError):
    """We were about to send something the protocol forbids: a bug, never the peer's fault."""


class UpstreamError(ProxyError):
    status: ProxyStatus = ProxyStatus.UPSTREAM_RESET


class NoHealthyUpstream(UpstreamError):
    status = ProxyStatus.NO_HEALTHY_UPSTREAM


class UpstreamConnectError(UpstreamError):
    status = ProxyStatus.UPSTREAM_CONNECT_FAILED


class UpstreamTimeout(UpstreamError):
    status = ProxyStatus.TIMEOUT


class UpstreamOverflow(UpstreamError):
    status = ProxyStatus.UPSTREAM_OVERFLOW


class StreamReset(ProxyError):
    def __init__(self, reason: ResetReason, msg: str = "") -> None:
        super().__init__(msg or reason.value)
        self.reason = reason
