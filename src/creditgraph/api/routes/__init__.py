"""Route modules; each exposes ``router``. ``create_app`` includes every router of ROUTERS."""

from __future__ import annotations

from fastapi import APIRouter

from creditgraph.api.routes import (
    accounts,
    credit,
    ingest,
    investigate,
    models,
    ops,
    reviews,
    risk,
    subjects,
)

# The risk router first: routes are matched in order, and it takes most of the traffic.
ROUTERS: list[APIRouter] = [
    risk.router,
    ops.router,
    accounts.router,
    ingest.router,
    models.router,
    investigate.router,
    credit.router,
    subjects.router,
    reviews.router,
]
