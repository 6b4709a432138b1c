"""Open the store the settings select. Entry points call this; nothing opens one at import."""

from __future__ import annotations

from creditgraph.config import Settings
from creditgraph.store.base import GraphStore
from creditgraph.store.embedded import EmbeddedStore
from creditgraph.store.neo4j import Neo4jStore


def open_store(settings: Settings) -> GraphStore:
    """Embedded (default) or Neo4j, per ``CREDITGRAPH_STORE``; caller closes it."""
    if settings.store == "neo4j":
        return Neo4jStore.connect(settings)
    return EmbeddedStore(settings.embedded_path)
