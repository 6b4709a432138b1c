"""Route modules; each exposes ``router``. ``create_app`` includes every router of ROUTERS."""

from __future__ import annotations

from fastapi import APIRouter

from creditgraph.api.routes import accounts, ingest, investigate, models, ops, risk

ROUTERS: list[APIRouter] = [
    ops.router,
    risk.router,
    accounts.router,
    ingest.router,
    models.router,
    investigate.router,
]
