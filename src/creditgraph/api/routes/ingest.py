"""Live ingest over HTTP: ``POST /v1/transfers|links|accounts|labels``.

Each batch is checked exactly like a CSV import (the same code), written all or nothing,
idempotent by id, and the accounts it touches are rescored from their neighbourhood at once
(up to ``rescore_limit`` per batch) so the next risk check sees the change.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, ConfigDict, Field, field_validator
from starlette.concurrency import run_in_threadpool

from creditgraph.api.deps import Principal, StateDep, require_role
from creditgraph.api.routes.schemas import ID, error_responses
from creditgraph.api.state import ApiState
from creditgraph.domain import AccountColumns, LinkColumns, TransferColumns
from creditgraph.ingest.csvfile import Kind
from creditgraph.services.ingest import import_records

router = APIRouter(tags=["ingest"])

Feeder = Annotated[Principal, Depends(require_role("payment"))]
Investigator = Annotated[Principal, Depends(require_role("investigator"))]
MAX_ITEMS = 10_000
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
ISO = Field(
    default=None,
    max_length=40,
    examples=["2026-11-24T12:00:00Z"],
    description="ISO-8601 date or date-time; no zone means UTC",
)


class _Item(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TransferCreate(_Item):
    transfer_id: str = Field(min_length=1, max_length=128, examples=["t_981"])
    src: str = ID
    dst: str = ID
    amount: float = Field(examples=[120.0], description="finite, non-negative")
    timestamp: str = Field(
        max_length=40, examples=["2026-11-24T12:00:00Z"], description="ISO-8601; no zone means UTC"
    )
    currency: str | None = Field(default=None, max_length=8, examples=["EUR"])
    channel: str | None = Field(default=None, max_length=32, examples=["app"])


class LinkCreate(_Item):
    src: str = ID
    dst: str = ID
    type: str = Field(
        max_length=63, examples=["FRIEND"], description="FRIEND or another UPPER_SNAKE relation"
    )
    since: str | None = ISO


class AccountCreate(_Item):
    account_id: str = ID
    created_at: str | None = ISO
    features: dict[str, float] = Field(default_factory=dict, examples=[{"age_years": 31}])
    properties: dict[str, str] = Field(default_factory=dict, examples=[{"country": "DE"}])

    @field_validator("features", "properties")
    @classmethod
    def _names(cls, v: dict[str, Any]) -> dict[str, Any]:
        for k in v:
            if not _NAME.match(k) or k in ("account_id", "created_at"):
                raise ValueError(f"{k!r} is not a valid column name (letters, digits, _)")
        return v


class LabelCreate(_Item):
    account_id: str = ID
    label: str = Field(examples=["fraud"], description="fraud | legit")
    source: str | None = Field(default=None, max_length=64, examples=["investigation"])
    observed_at: str | None = ISO


def _examples(item: dict[str, Any]) -> ConfigDict:
    return ConfigDict(extra="forbid", json_schema_extra={"examples": [{"items": [item]}]})


class TransferBatchCreate(BaseModel):
    model_config = _examples(
        {
            "transfer_id": "t_981",
            "src": "acc_000001",
            "dst": "acc_000042",
            "amount": 120.0,
            "timestamp": "2026-11-24T12:00:00Z",
            "currency": "EUR",
        }
    )
    items: list[TransferCreate] = Field(min_length=1, max_length=MAX_ITEMS)


class LinkBatchCreate(BaseModel):
    model_config = _examples({"src": "acc_000001", "dst": "acc_000042", "type": "FRIEND"})
    items: list[LinkCreate] = Field(min_length=1, max_length=MAX_ITEMS)


class AccountBatchCreate(BaseModel):
    model_config = _examples(
        {"account_id": "acc_900001", "created_at": "2026-11-24", "features": {"age_years": 31}}
    )
    items: list[AccountCreate] = Field(min_length=1, max_length=MAX_ITEMS)


class LabelBatchCreate(BaseModel):
    model_config = _examples(
        {"account_id": "acc_000042", "label": "fraud", "source": "investigation"}
    )
    items: list[LabelCreate] = Field(min_length=1, max_length=MAX_ITEMS)


class IngestPublic(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "kind": "transfers",
                    "received": 1,
                    "changed": 1,
                    "created_accounts": 0,
                    "rescored": 2,
                    "model_version": "v0001",
                }
            ]
        }
    )

    kind: str
    received: int
    changed: int = Field(
        description="rows inserted or changed (0 when the batch was already stored)"
    )
    created_accounts: int
    rescored: int = Field(description="accounts rescored from their neighbourhood")
    model_version: str | None


def _text(v: Any) -> str | None:
    if v is None:
        return None
    if isinstance(v, float):
        return repr(v)
    return str(v)


def _records(kind: Kind, items: Sequence[BaseModel]) -> list[dict[str, str | None]]:
    out = []
    for item in items:
        data = item.model_dump()
        if kind == "accounts":
            row = {"account_id": data["account_id"], "created_at": data["created_at"]}
            row.update({k: _text(v) for k, v in data["features"].items()})
            row.update(data["properties"])
            out.append(row)
        else:
            out.append({k: _text(v) for k, v in data.items()})
    return out


def _ingest(
    state: ApiState, kind: Kind, items: Sequence[BaseModel], create_missing: bool
) -> dict[str, Any]:
    store = state.store
    done = import_records(
        store, kind, _records(kind, items), create_missing_accounts=create_missing
    )
    batch = done.batch
    transfers: list[tuple[str, str, float]] = []
    links: list[tuple[str, str, str]] = []
    touched: list[str] = []
    if isinstance(batch, TransferColumns):
        transfers = list(zip(batch.src, batch.dst, batch.amount, strict=True))
        touched = list(dict.fromkeys([*batch.src, *batch.dst]))
    elif isinstance(batch, LinkColumns):
        links = list(zip(batch.src, batch.dst, batch.type, strict=True))
        touched = list(dict.fromkeys([*batch.src, *batch.dst]))
    elif isinstance(batch, AccountColumns):
        touched = list(dict.fromkeys(batch.account_id))
    rescored = 0
    if done.report.changed:
        rescored = state.apply_live(transfers, links, touched[: state.settings.rescore_limit])
    engine = state.engine
    return {
        "kind": kind,
        "received": len(items),
        "changed": done.report.changed,
        "created_accounts": done.report.created_accounts,
        "rescored": rescored,
        "model_version": None if engine is None else engine.model_version,
    }


CreateMissing = Annotated[
    bool,
    Query(
        description="Create bare accounts for ids the batch references but the store "
        "lacks (otherwise such items are refused, as in the CSV import)"
    ),
]


async def _run(
    state: ApiState,
    principal: Principal,
    kind: Kind,
    items: Sequence[BaseModel],
    create_missing: bool,
) -> dict[str, Any]:
    out = await run_in_threadpool(_ingest, state, kind, items, create_missing)
    state.audit.record(
        principal=principal,
        action=f"ingest.{kind}",
        target=f"{len(items)} items",
        result=f"changed={out['changed']} rescored={out['rescored']}",
    )
    return out


_RESPONSES = error_responses(401, 403, 413, 422, 503)


@router.post(
    "/v1/transfers",
    response_model=IngestPublic,
    responses=_RESPONSES,
    summary="Add transfers (idempotent by transfer_id)",
)
async def add_transfers(
    body: TransferBatchCreate,
    principal: Feeder,
    state: StateDep,
    create_missing_accounts: CreateMissing = False,
) -> dict[str, Any]:
    """Validated like transfers.csv; all or nothing; the touched accounts are rescored."""
    return await _run(state, principal, "transfers", body.items, create_missing_accounts)


@router.post(
    "/v1/links",
    response_model=IngestPublic,
    responses=_RESPONSES,
    summary="Add links (idempotent by pair and type)",
)
async def add_links(
    body: LinkBatchCreate,
    principal: Feeder,
    state: StateDep,
    create_missing_accounts: CreateMissing = False,
) -> dict[str, Any]:
    """Validated like links.csv; all or nothing; the touched accounts are rescored."""
    return await _run(state, principal, "links", body.items, create_missing_accounts)


@router.post(
    "/v1/accounts",
    response_model=IngestPublic,
    responses=_RESPONSES,
    summary="Add or update accounts (idempotent by account_id)",
)
async def add_accounts(
    body: AccountBatchCreate,
    principal: Feeder,
    state: StateDep,
) -> dict[str, Any]:
    """Validated like accounts.csv (features are numeric columns, properties text ones)."""
    return await _run(state, principal, "accounts", body.items, False)


@router.post(
    "/v1/labels",
    response_model=IngestPublic,
    responses=_RESPONSES,
    summary="Record confirmed outcomes (latest wins)",
)
async def add_labels(
    body: LabelBatchCreate,
    principal: Investigator,
    state: StateDep,
) -> dict[str, Any]:
    """Validated like labels.csv. Labels are training targets: scores change at retraining."""
    return await _run(state, principal, "labels", body.items, False)
