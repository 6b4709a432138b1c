"""Production refuses a weak Neo4j password and unencrypted Bolt to a remote host unless
explicitly allowed (exit 2, the variable named), and serves no CDN-scripted docs pages."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from creditgraph.api.app import create_app
from creditgraph.cli import app
from creditgraph.config import load_settings
from creditgraph.errors import ConfigError

STRONG = "a-long-enough-secret-42"


def _prod(**kw: object) -> dict[str, object]:
    return {"env": "production", "store": "neo4j", "neo4j_password": STRONG, **kw}


def test_production_refuses_a_short_neo4j_password() -> None:
    with pytest.raises(ConfigError) as e:
        load_settings(**_prod(neo4j_password="x"))
    assert "CREDITGRAPH_NEO4J_PASSWORD is shorter than 12 characters" in str(e.value)
    assert "CREDITGRAPH_NEO4J_ALLOW_WEAK_PASSWORD" in str(e.value)
    assert "'x'" not in str(e.value)  # the secret itself is never echoed
    allowed = load_settings(**_prod(neo4j_password="x", neo4j_allow_weak_password=True))
    assert allowed.neo4j_password.get_secret_value() == "x"
    # Development keeps its defaults; so does production on the embedded store.
    assert load_settings(env="development", store="neo4j", neo4j_password="x").env == "development"
    assert load_settings(env="production", store="embedded").store == "embedded"


@pytest.mark.parametrize(
    "uri", ["bolt://db.internal:7687", "neo4j://10.0.0.5:7687", "bolt://[2001:db8::1]:7687"]
)
def test_production_refuses_unencrypted_remote_bolt(uri: str) -> None:
    with pytest.raises(ConfigError) as e:
        load_settings(**_prod(neo4j_uri=uri))
    assert "is unencrypted Bolt to a remote host" in str(e.value)
    assert "CREDITGRAPH_NEO4J_ALLOW_UNENCRYPTED=true" in str(e.value)
    assert load_settings(**_prod(neo4j_uri=uri, neo4j_allow_unencrypted=True)).neo4j_uri == uri


@pytest.mark.parametrize(
    "uri",
    [
        "bolt+s://db.internal:7687",
        "neo4j+ssc://db.internal:7687",
        "bolt://127.0.0.1:7687",
        "bolt://localhost:7687",
        "bolt://[::1]:7687",
    ],
)
def test_production_accepts_encrypted_or_loopback_bolt(uri: str) -> None:
    assert load_settings(**_prod(neo4j_uri=uri)).neo4j_uri == uri


def test_a_command_under_insecure_production_settings_exits_2(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for name, value in {
        "ENV": "production",
        "STORE": "neo4j",
        "NEO4J_PASSWORD": "neo4j",
        "DATA_DIR": str(tmp_path),
    }.items():
        monkeypatch.setenv(f"CREDITGRAPH_{name}", value)
    result = CliRunner().invoke(app, ["stats", "--json"])
    assert result.exit_code == 2
    assert "shorter than 12 characters" in result.stderr
    monkeypatch.setenv("CREDITGRAPH_NEO4J_PASSWORD", STRONG)
    monkeypatch.setenv("CREDITGRAPH_NEO4J_URI", "bolt://db.internal:7687")
    result = CliRunner().invoke(app, ["stats", "--json"])
    assert result.exit_code == 2
    assert "unencrypted Bolt to a remote host" in result.stderr


def test_production_serves_no_docs_pages(tmp_path: Path) -> None:
    prod = TestClient(create_app(load_settings(env="production", data_dir=tmp_path)))
    assert prod.get("/docs").status_code == 404
    assert prod.get("/redoc").status_code == 404
    assert prod.get("/openapi.json").status_code == 200  # the machine-readable spec stays
    on = TestClient(create_app(load_settings(env="production", api_docs=True, data_dir=tmp_path)))
    assert on.get("/docs").status_code == 200
    dev = TestClient(create_app(load_settings(data_dir=tmp_path)))
    assert dev.get("/docs").status_code == 200
