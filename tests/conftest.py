"""Fixtures shared by every test directory."""

from __future__ import annotations

import pytest

from tests.pki import Pki


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    """A test CA (made once per session); ``pki.issue(cn, dns=..., ips=..., uris=...)``."""
    return Pki(tmp_path_factory.mktemp("pki"), "test")
