from __future__ import annotations

import pytest

from mosn_py.config.loader import parse_config
from mosn_py.errors import ConfigError, ProxyStatus
from mosn_py.filters.stream.fault import FaultFilterFactory, parse_fault_config


def test_parse_valid_options() -> None:
    cfg = parse_fault_config({"delay": {"duration": "50ms", "percentage": 10},
                              "abort": {"status": "timeout", "message": "m"}})
    assert cfg.delay == 0.05 and cfg.delay_percentage == 10
    assert cfg.abort is ProxyStatus.TIMEOUT and cfg.abort_percentage == 100
    assert cfg.abort_message == "m"


def test_validate_reports_filter_option_errors_with_paths() -> None:
    data = {
        "listeners": [{"name": "b", "address": "127.0.0.1:0", "protocol": "bolt", "route": "r",
                       "filters": [{"name": "fault", "config": {
                           "abort": {"status": 503, "percentage": 150}, "bogus": 1}}]}],
        "routes": [{"name": "r", "rules": [{"match": {"service": ".*"}, "cluster": "c"}]}],
        "clusters": [{"name": "c", "protocol": "bolt", "endpoints": ["127.0.0.1:1"]}],
    }
    with pytest.raises(ConfigError) as e:
        parse_config(data, known_filters={"fault": FaultFilterFactory})
    assert e.value.errors == (
        "listeners[0].filters[0].config: bogus: unknown key; expected delay, abort",
        "listeners[0].filters[0].config: abort.status: 503 is not one of route_not_found, "
        "no_healthy_upstream, upstream_connect_failed, upstream_reset, upstream_overflow, "
        "timeout, codec_error, draining, internal_error",
        "listeners[0].filters[0].config: abort.percentage: expected a number from 0 to 100, "
        "got 150",
    )
