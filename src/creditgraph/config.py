"""Settings from the environment (prefix ``CREDITGRAPH_``); build one per entry point."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


def default_cache_dir() -> Path:
    """Where fetched third-party artefacts (the Neo4j jars) live: outside any clone."""
    return Path.home() / ".cache" / "creditgraph"


class Settings(BaseSettings):
    """Runtime configuration; every field can be set as ``CREDITGRAPH_<FIELD>``."""

    model_config = SettingsConfigDict(env_prefix="CREDITGRAPH_", extra="ignore")

    env: Literal["development", "test", "production"] = "development"
    store: Literal["embedded", "neo4j"] = "embedded"
    data_dir: Path = Path("data")

    neo4j_uri: str = "bolt://127.0.0.1:7687"
    neo4j_user: str = "neo4j"
    neo4j_password: SecretStr = SecretStr("creditgraph-dev")
    neo4j_database: str = "neo4j"
    neo4j_home: Path = Field(default_factory=lambda: default_cache_dir() / "neo4j-home")
    neo4j_version: str = "5.26.30"
    neo4j_heap: str = "2g"
    neo4j_pagecache: str = "4g"
    neo4j_bolt_port: int = 7687
    neo4j_http_port: int = 7474
    neo4j_start_timeout_s: float = Field(default=120.0, gt=0)

    schema_dir: Path = Field(
        default_factory=lambda: Path(__file__).resolve().parents[2] / "graph_schema",
        description="Numbered Cypher files applied to Neo4j before every import",
    )
    import_batch_size: int = Field(default=20_000, ge=1, le=1_000_000)

    @property
    def embedded_path(self) -> Path:
        """SQLite file of the embedded store."""
        return self.data_dir / "creditgraph.sqlite"
