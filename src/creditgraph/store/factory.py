"""Open the store the settings select. Entry points call this; nothing opens one at import."""

from __future__ import annotations

from creditgraph.config import Settings
from creditgraph.store.base import GraphStore
from creditgraph.store.embedded import EmbeddedStore
from creditgraph.store.neo4j import Neo4jStore


def open_store(settings: Settings, *, fail_fast: bool = False) -> GraphStore:
    """Embedded (default) or Neo4j, per ``CREDITGRAPH_STORE``, with its schema applied;
    caller closes it.

    ``fail_fast``: short connection timeouts and retries (the API's degraded mode)."""
    if settings.store == "neo4j":
        return Neo4jStore.connect(settings, fail_fast=fail_fast)
    return EmbeddedStore(settings.embedded_path)
