"""Running mosn-py as a sidecar: interception rules (``mosn-py iptables``) and workload
certificates (``mosn-py certs``). See docs/sidecar.md."""

from __future__ import annotations
