"""``register_translators``: one registry name per (downstream, upstream) pair, each class
serving exactly the pair it names; and the config loader validating a rule's ``translate``
options through ``from_options`` (errors carry the rule's path)."""

from __future__ import annotations

from typing import Any

import pytest

from mosn_py.config import parse_config
from mosn_py.errors import ConfigError
from mosn_py.registry import Registries
from mosn_py.translate import BUILTIN_TRANSLATORS, register_translators, registry_name

EXPECTED = {
    "bolt->grpc": "BoltToGrpc",
    "grpc->bolt": "GrpcToBolt",
    "http1->bolt": "HttpToBolt",
    "http2->bolt": "Http2ToBolt",
    "http->bolt": "AnyHttpToBolt",
    "bolt->http1": "BoltToHttp",
    "bolt->http2": "BoltToHttp2",
}


def registries() -> Registries:
    reg = Registries()
    register_translators(reg)
    return reg


def test_names() -> None:
    got = registries().translators.as_dict()
    assert {name: cls.__name__ for name, cls in got.items()} == EXPECTED
    for name, cls in got.items():
        assert registry_name(cls.downstream, cls.upstream) == name


def test_twice_is_a_double_registration() -> None:
    reg = registries()
    with pytest.raises(ConfigError, match="double registration"):
        register_translators(reg)


@pytest.mark.parametrize("cls", BUILTIN_TRANSLATORS)
def test_every_class_builds_from_no_options(cls: Any) -> None:
    for options in (None, {}):
        t = cls.from_options(options)
        assert callable(t.request) and callable(t.response)
        assert not hasattr(t, "__dict__")  # slotted: no per-request state can hide there


def _config(rule_extra: dict[str, Any]) -> dict[str, Any]:
    return {
        "listeners": [
            {"name": "bolt_in", "address": "127.0.0.1:0", "protocol": "bolt", "route": "r"}
        ],
        "routes": [
            {
                "name": "r",
                "rules": [{"match": {"service": ".*"}, "cluster": "g", **rule_extra}],
            }
        ],
        "clusters": [{"name": "g", "protocol": "grpc", "endpoints": ["127.0.0.1:50051"]}],
    }


def _pairs() -> dict[tuple[str, str], Any]:
    out: dict[tuple[str, str], Any] = {}
    for name, cls in registries().translators.as_dict().items():
        down, _, up = name.partition("->")
        out[(down, up)] = cls
    return out


def test_config_accepts_valid_options() -> None:
    rule = {"translate": {"services": {"a.B": "pkg.B"}, "methods": {"hello": "Hello"}}}
    parse_config(_config(rule), translations=_pairs())


def test_config_reports_bad_options_under_the_rules_path() -> None:
    rule = {"translate": {"methods": {"hello": "bad name"}, "servics": {}}}
    with pytest.raises(ConfigError) as info:
        parse_config(_config(rule), translations=_pairs())
    text = str(info.value)
    assert "routes[0].rules[0].translate" in text
    assert "methods['hello']" in text
    assert "did you mean 'services'?" in text
