"""An upstream host: an address, a weight, and the counters load balancers read."""

from __future__ import annotations

from mosn_py.config.model import Address


class Host:
    __slots__ = (
        "address",
        "weight",
        "rq_active",
        "rq_total",
        "cx_active",
        "cx_total",
        "cx_connect_fail",
        "rq_error",
        "consecutive_connect_failures",
        "ejections",
        "ejected",
    )

    def __init__(self, address: Address, weight: int = 1) -> None:
        self.address = address
        self.weight = weight
        self.rq_active = 0  # requests in flight (least_request reads this)
        self.rq_total = 0
        self.rq_error = 0  # local replies caused by this host (reset, timeout)
        self.cx_active = 0
        self.cx_total = 0
        self.cx_connect_fail = 0
        # passive health (see Cluster.report_connect_failure)
        self.consecutive_connect_failures = 0
        self.ejections = 0
        self.ejected = False

    @property
    def key(self) -> tuple[str, int]:
        return (self.address.host, self.address.port)

    def __repr__(self) -> str:
        return f"Host({self.address}, weight={self.weight})"
