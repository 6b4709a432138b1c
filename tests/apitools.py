"""Helpers for API tests (reusable by other route modules, e.g. the investigator API).

``build_network(root)`` makes a small trained network on the embedded store under
``root/data`` (synthetic, then ``services.pipeline``: imported, trained with a fast config,
scored, and with ``rings=True`` its rings detected); ``ApiClient``
wraps a ``TestClient`` of ``create_app`` with one key per role.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import torch
import uvicorn
from fastapi.testclient import TestClient

from creditgraph.api.app import create_app
from creditgraph.api.keys import ROLES, create_key
from creditgraph.config import Settings
from creditgraph.ledger.pseudonyms import PSEUDONYM_RE, Pseudonyms
from creditgraph.registry import ModelRegistry
from creditgraph.services.pipeline import PipelineReport, run_pipeline
from creditgraph.store.factory import open_store
from creditgraph.synth import generate
from creditgraph.training_config import (
    BaselineSection,
    CandidatesSection,
    OptimConfig,
    TrainingConfig,
)

#: Small and quick: enough for a champion with sensible scores in seconds.
FAST = TrainingConfig(
    optim=OptimConfig(max_epochs=40, patience=10),
    baseline=BaselineSection(enabled=False),
    # The relational GNN as champion: the request-time path these tests exercise.
    candidates=CandidatesSection(families=["gnn"]),
)
ACCOUNTS = 1_500
SEED = 7


@dataclass(frozen=True)
class Network:
    """A trained network on disk: settings point at it, ``network`` holds the CSV files."""

    settings: Settings
    network: Path
    report: PipelineReport


def build_network(
    root: Path, *, accounts: int = ACCOUNTS, settings: Settings | None = None, rings: bool = False
) -> Network:
    """Synthesise, then import, train, score and (``rings``) detect rings with the one
    pipeline ``creditgraph demo`` runs (``settings``' store; embedded by default)."""
    torch.set_num_threads(1)
    s = settings or Settings(data_dir=root / "data")
    generate(accounts, SEED, root / "net")
    store = open_store(s)
    try:
        report = run_pipeline(
            store, ModelRegistry(s.models_dir), root / "net", FAST, force=True, detect=rings
        )
    finally:
        store.close()
    return Network(settings=s, network=root / "net", report=report)


def keys_for(settings: Settings) -> dict[str, str]:
    """One fresh key per role."""
    return {role: create_key(settings, role, f"test-{role}") for role in ROLES}


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@dataclass
class ApiClient:
    """A started app (lifespan run) and a key per role."""

    client: TestClient
    keys: dict[str, str]
    settings: Settings

    def as_role(self, role: str) -> dict[str, str]:
        return bearer(self.keys[role])

    def get(self, url: str, role: str | None = None, **kw: Any) -> Any:
        return self.client.get(url, headers=self.as_role(role) if role else {}, **kw)

    def post(self, url: str, role: str | None = None, **kw: Any) -> Any:
        headers = {**(self.as_role(role) if role else {}), **kw.pop("headers", {})}
        return self.client.post(url, headers=headers, **kw)


@contextmanager
def api_client(settings: Settings) -> Iterator[ApiClient]:
    """``create_app(settings)`` started in a ``TestClient`` with a key per role."""
    keys = keys_for(settings)
    with TestClient(create_app(settings)) as client:
        yield ApiClient(client, keys, settings)


@contextmanager
def running_server(settings: Settings) -> Iterator[str]:
    """``create_app(settings)`` under a real uvicorn on a free loopback port; yields its URL."""
    server = uvicorn.Server(
        uvicorn.Config(create_app(settings), host="127.0.0.1", port=0, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the test server did not start")
        time.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def audit_entries(settings: Settings, stream: str = "audit") -> list[dict[str, Any]]:
    """The log's entries as written, with every pseudonym turned back into its account id
    (through the mapping, as an authority's export would)."""
    path = settings.audit_log_path if stream == "audit" else settings.decision_log_path
    raw = [orjson.loads(x) for x in path.read_bytes().splitlines()]
    mapping = Pseudonyms(settings.pseudonyms_file)
    try:
        back = mapping.reverse(PSEUDONYM_RE.findall(path.read_text()))
    finally:
        mapping.close()
    restored = PSEUDONYM_RE.sub(
        lambda m: back.get(m.group(0), m.group(0)), orjson.dumps(raw).decode()
    )
    out: list[dict[str, Any]] = orjson.loads(restored)
    return out
