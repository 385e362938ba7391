"""Prometheus exposition of the runtime's counters (prometheus-client, custom collector).

Counters live on the hot path as plain ints (listener and cluster stats); this collector
reads them at scrape time, so the data plane pays nothing per request for metrics.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST

if TYPE_CHECKING:
    from mosn_py.server.runtime import Runtime


class RuntimeCollector:
    def __init__(self, rt: Runtime) -> None:
        self.rt = rt

    def collect(self) -> Iterator[Metric]:
        rt = self.rt
        lbl = ["listener"]
        cx_total = CounterMetricFamily("mosn_listener_cx", "Downstream connections", labels=lbl)
        cx_active = GaugeMetricFamily("mosn_listener_cx_active", "Open downstream connections",
                                      labels=lbl)
        rq_total = CounterMetricFamily("mosn_listener_rq", "Downstream requests", labels=lbl)
        rq_timeout = CounterMetricFamily("mosn_listener_rq_timeout", "Requests timed out",
                                         labels=lbl)
        rq_retry = CounterMetricFamily("mosn_listener_rq_retry", "Retries", labels=lbl)
        codec_err = CounterMetricFamily("mosn_listener_codec_error", "Protocol errors",
                                        labels=lbl)
        rx = CounterMetricFamily("mosn_listener_bytes_received", "TCP bytes from clients",
                                 labels=lbl)
        tx = CounterMetricFamily("mosn_listener_bytes_sent", "TCP bytes to clients", labels=lbl)
        local = CounterMetricFamily("mosn_listener_local_reply", "Local replies by status",
                                    labels=["listener", "status"])
        for lst in rt.listeners:
            s = lst.ctx.stats
            n = [lst.config.name]
            cx_total.add_metric(n, s.cx_total)
            cx_active.add_metric(n, s.cx_active)
            rq_total.add_metric(n, s.rq_total)
            rq_timeout.add_metric(n, s.rq_timeout)
            rq_retry.add_metric(n, s.rq_retry)
            codec_err.add_metric(n, s.codec_errors)
            rx.add_metric(n, s.bytes_received)
            tx.add_metric(n, s.bytes_sent)
            for status, count in list(s.local_replies.items()):
                local.add_metric([lst.config.name, status.value], count)
        yield from (cx_total, cx_active, rq_total, rq_timeout, rq_retry, codec_err, rx, tx, local)

        hl = ["cluster", "host"]
        c_rq = CounterMetricFamily("mosn_cluster_upstream_rq", "Upstream requests",
                                   labels=["cluster"])
        c_active = GaugeMetricFamily("mosn_cluster_upstream_rq_active", "Requests in flight",
                                     labels=["cluster"])
        c_over = CounterMetricFamily("mosn_cluster_upstream_rq_overflow",
                                     "Requests refused by the circuit breaker",
                                     labels=["cluster"])
        h_rq = CounterMetricFamily("mosn_host_rq", "Requests per host", labels=hl)
        h_err = CounterMetricFamily("mosn_host_rq_error", "Resets/timeouts per host", labels=hl)
        h_cx = GaugeMetricFamily("mosn_host_cx_active", "Open upstream connections", labels=hl)
        h_cf = CounterMetricFamily("mosn_host_cx_connect_fail", "Connect failures", labels=hl)
        for c in rt.clusters:
            c_rq.add_metric([c.name], c.rq_total)
            c_active.add_metric([c.name], c.rq_active)
            c_over.add_metric([c.name], c.rq_overflow)
            for h in c.hosts:
                lab = [c.name, str(h.address)]
                h_rq.add_metric(lab, h.rq_total)
                h_err.add_metric(lab, h.rq_error)
                h_cx.add_metric(lab, h.cx_active)
                h_cf.add_metric(lab, h.cx_connect_fail)
        yield from (c_rq, c_active, c_over, h_rq, h_err, h_cx, h_cf)


def render_metrics(rt: Runtime) -> tuple[bytes, str]:
    reg = CollectorRegistry(auto_describe=False)
    reg.register(RuntimeCollector(rt))
    return generate_latest(reg), CONTENT_TYPE_LATEST
