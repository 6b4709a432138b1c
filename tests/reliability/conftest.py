"""The API tests' trained network, shared with the reliability suite (one build per run)."""

from tests.api.conftest import api_settings, network

__all__ = ["api_settings", "network"]
