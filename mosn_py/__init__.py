"""mosn-py: a proxy data plane in Python, in the line of MOSN and Envoy."""

from __future__ import annotations

__version__ = "0.1.0"
