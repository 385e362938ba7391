"""Property: whatever data the YAML parser hands over, parse_config returns a Config or
raises ConfigError, and never anything else."""

from __future__ import annotations

import copy
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mosn_py.config import parse_config
from mosn_py.config.loader import _CLUSTER_KEYS, _LISTENER_KEYS, _TOP_KEYS
from mosn_py.config.model import Config
from mosn_py.errors import ConfigError

# A small valid config (as in test_config_loader.py; test modules here are not a package).
BASE = """
listeners:
  - {name: bolt_in, address: 127.0.0.1:12200, protocol: bolt, route: bolt_routes,
     filters: [{name: f, config: {a: 1}}], access_log: true, idle_timeout: 0}
  - {name: tcp_in, address: 127.0.0.1:12300, cluster: echo}
routes:
  - name: bolt_routes
    rules:
      - match: {service: s, headers: {a: b, c: {regex: x}, d: {present: true}}}
        cluster: bolt_backend
        retry: {attempts: 1, "on": [reset]}
clusters:
  - {name: bolt_backend, protocol: bolt, endpoints: [127.0.0.1:12201, {address: a:1, weight: 2}]}
  - {name: echo, endpoints: [127.0.0.1:12301]}
admin: {address: 127.0.0.1:1}
log: {level: info}
demo_upstreams: [{name: d, protocol: tcp, address: 127.0.0.1:2}]
"""
# Keys and scalars the schema knows, mixed with arbitrary ones, so that generated data gets
# past the first shape checks and reaches the deeper validators.
KNOWN_KEYS = sorted(
    set(_TOP_KEYS)
    | set(_LISTENER_KEYS)
    | set(_CLUSTER_KEYS)
    | {
        "rules",
        "match",
        "service",
        "method",
        "headers",
        "exact",
        "regex",
        "present",
        "timeout",
        "retry",
        "attempts",
        "on",
        "config",
        "weight",
        "cert",
        "key",
        "ca",
        "level",
        "format",
        "require_client_cert",
        "path",
    }
)
KNOWN_STRINGS = [
    "tcp",
    "bolt",
    "static",
    "original_dst",
    "round_robin",
    "auto",
    "3s",
    "-1s",
    "16MiB",
    "127.0.0.1:1",
    "[::1]:2",
    "abc",
    "(",
    ".*",
    "reset",
    "connect-failure",
    "bolt_in",
    "bolt_routes",
    "bolt_backend",
    "echo",
    "/",
    "",
    "0",
    "1e9h",
]

keys = st.one_of(st.sampled_from(KNOWN_KEYS), st.text(max_size=8))
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.sampled_from(KNOWN_STRINGS),
)
json_ish = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(keys, children, max_size=5),
    ),
    max_leaves=30,
)


def check(data: object) -> None:
    try:
        result = parse_config(data)
    except ConfigError as exc:
        assert exc.errors, "a ConfigError must carry at least one line"
        for line in exc.errors:
            assert isinstance(line, str) and ": " in line
    else:
        assert isinstance(result, Config)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(json_ish)
def test_arbitrary_data_raises_only_config_error(data: object) -> None:
    check(data)


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(node, dict):
        for k, v in node.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += _paths(v, (*prefix, i))
    return out


BASE_DATA = yaml.safe_load(BASE)
assert isinstance(parse_config(BASE_DATA), Config)
BASE_PATHS = _paths(BASE_DATA)[1:]


@settings(max_examples=400, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(BASE_PATHS), json_ish), min_size=1, max_size=3))
def test_valid_config_with_random_subtrees_raises_only_config_error(
    edits: list[tuple[tuple[Any, ...], object]],
) -> None:
    data = copy.deepcopy(BASE_DATA)
    for path, value in edits:
        node: Any = data
        try:
            for part in path[:-1]:
                node = node[part]
            node[path[-1]] = value
        except (KeyError, IndexError, TypeError):
            continue  # an earlier edit replaced this subtree
    check(data)
