"""Fixtures for API tests: one trained network per session, a fresh copy per test."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from creditgraph.config import Settings
from tests.apitools import ApiClient, Network, api_client, build_network


@pytest.fixture(scope="session")
def network(tmp_path_factory: pytest.TempPathFactory) -> Network:
    """A small trained and scored network (embedded store), built once."""
    return build_network(tmp_path_factory.mktemp("api-network"))


@pytest.fixture
def api_settings(network: Network, tmp_path: Path) -> Settings:
    """Settings over a private copy of the network's data (tests may write)."""
    shutil.copytree(network.settings.data_dir, tmp_path / "data")
    return Settings(data_dir=tmp_path / "data", store_probe_interval_s=0.2)


@pytest.fixture
def api(api_settings: Settings) -> Iterator[ApiClient]:
    """The app started over ``api_settings`` with one key per role."""
    with api_client(api_settings) as client:
        yield client
