"""Live ingest over HTTP: ``POST /v1/transfers|links|accounts|labels``.

Each batch is checked exactly like a CSV import (the same code), written all or nothing,
idempotent by id, and its ties join the serving engine at once, so the next risk check sees
the new relation (friends, earlier transfers, shared identity). The accounts it touches (up
to ``rescore_limit`` per batch) are rescored from their neighbourhood by the background
rescorer shortly after the answer (``queued``; ``rescore_mode=background``, the default) or
before it (``rescored``; ``rescore_mode=sync``, ~30 ms CPU per account at 20k accounts).
Until an account is rescored its score is the previous one, marked ``pending``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict
from functools import partial
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from creditgraph.api.deps import Principal, StateDep, require_role
from creditgraph.api.schemas import error_responses
from creditgraph.api.schemas.credit import ObligationBatchCreate
from creditgraph.api.schemas.ingest import (
    AccountBatchCreate,
    IngestPublic,
    LabelBatchCreate,
    LinkBatchCreate,
    TransferBatchCreate,
    TransferLabelBatchCreate,
)
from creditgraph.api.state import ApiState
from creditgraph.errors import CreditGraphError
from creditgraph.ingest.csvfile import Kind
from creditgraph.store.base import Revision

router = APIRouter(tags=["ingest"])

Feeder = Annotated[Principal, Depends(require_role("payment"))]
Investigator = Annotated[Principal, Depends(require_role("investigator"))]


def _text(v: Any) -> str | None:
    if v is None:
        return None
    if isinstance(v, float):
        return repr(v)
    return str(v)


def _records(kind: Kind, items: Sequence[BaseModel]) -> list[dict[str, str | None]]:
    """Items as the rows of the kind's CSV file would read (text; None = missing)."""
    out = []
    for item in items:
        data = item.model_dump()
        if kind == "accounts":
            row = {"account_id": data["account_id"], "created_at": data["created_at"]}
            row.update({k: _text(v) for k, v in data["features"].items()})
            row.update(data["properties"])
            out.append(row)
        elif kind == "transfers":
            attributes = data.pop("attributes")
            row = {k: _text(v) for k, v in data.items()}
            row.update(attributes)
            out.append(row)
        else:
            out.append({k: _text(v) for k, v in data.items()})
    return out


CreateMissing = Annotated[
    bool,
    Query(
        description="Create bare accounts for ids the batch references but the store "
        "lacks (otherwise such items are refused, as in the CSV import)"
    ),
]


def touched(kind: Kind, items: Sequence[BaseModel]) -> tuple[list[str], list[str]]:
    """The accounts a batch names (logged as pseudonyms) and its transfer ids, for the audit
    entry: who changed what, not "N items". A link has no id of its own: its two accounts
    say it (a ``src|dst|type`` key would put account ids in clear text)."""
    accounts: dict[str, None] = {}
    ids: list[str] = []
    for item in items:
        data = {
            k: str(v).strip()  # as ingest stores them
            for k, v in item.model_dump(include={"account_id", "src", "dst", "transfer_id"}).items()
        }
        if "account_id" in data:
            accounts[data["account_id"]] = None
        elif "src" in data:
            accounts[data["src"]] = None
            accounts[data["dst"]] = None
        if "transfer_id" in data:  # transfers, and transfer outcomes (named by transfer only)
            ids.append(data["transfer_id"])
    return list(accounts), ids


#: What the feeder (a payment key) may change on an existing account: the person's consent to
#: social scoring, which is theirs to give and withdraw. Anything else it may only add.
FEEDER_MAY_CHANGE = frozenset({"properties.social_scoring"})


def revision_of(principal: Principal) -> Revision:
    """Admins may change any recorded attribute; the feeder adds facts (and consent)."""
    return Revision(
        actor=f"key:{principal.key_id}",
        reason=f"POST /v1/accounts by {principal.role} key {principal.name!r}",
        may_change=None if principal.role == "admin" else FEEDER_MAY_CHANGE,
    )


async def _run(
    state: ApiState,
    principal: Principal,
    kind: Kind,
    items: Sequence[BaseModel],
    create_missing: bool,
) -> dict[str, Any]:
    accounts, ids = touched(kind, items)
    revision = revision_of(principal) if kind == "accounts" else None
    try:
        out = asdict(
            await run_in_threadpool(
                partial(state.serving.ingest, create_missing=create_missing, revision=revision),
                kind,
                _records(kind, items),
            )
        )
    except CreditGraphError as e:
        state.audit.record(
            principal=principal,
            action=f"ingest.{kind}",
            target=f"{len(items)} items",
            result=f"refused: {type(e).__name__}",
            accounts=accounts,
            ids=ids,
        )
        raise
    state.audit.record(
        principal=principal,
        action=f"ingest.{kind}",
        target=f"{len(items)} items",
        result=f"changed={out['changed']} rescored={out['rescored']} queued={out['queued']}",
        accounts=accounts,
        ids=ids,
    )
    return out


_RESPONSES = error_responses(401, 403, 413, 422, 429, 503)


@router.post(
    "/v1/transfers",
    response_model=IngestPublic,
    # 409: a stored transfer_id sent again with other content.
    responses={**_RESPONSES, **error_responses(409)},
    summary="Add transfers (idempotent by transfer_id)",
)
async def add_transfers(
    body: TransferBatchCreate,
    principal: Feeder,
    state: StateDep,
    create_missing_accounts: CreateMissing = False,
) -> dict[str, Any]:
    """Validated like transfers.csv; all or nothing; the new ties count in the next risk
    check at once and the touched accounts are rescored (in the background by default:
    ``queued``; see the module docstring)."""
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
    """Validated like links.csv; all or nothing; the new ties count in the next risk check
    at once and the touched accounts are rescored (in the background by default)."""
    return await _run(state, principal, "links", body.items, create_missing_accounts)


@router.post(
    "/v1/accounts",
    response_model=IngestPublic,
    responses=error_responses(401, 403, 409, 413, 422, 429, 503),
    summary="Add accounts and attributes; only admins change recorded ones (versioned)",
)
async def add_accounts(
    body: AccountBatchCreate,
    principal: Feeder,
    state: StateDep,
) -> dict[str, Any]:
    """Validated like accounts.csv (features are numeric columns, properties text ones).

    A payment key creates accounts and adds attributes an account lacks; sending another
    value for one it has (``created_at``, a feature, a property other than the
    ``social_scoring`` consent) is a 409 naming the fields, and nothing is written. An admin
    key may change them: each change is kept (values before and after, when, which key) and
    listed by ``GET /v1/accounts/{id}/history``."""
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


@router.post(
    "/v1/transfer-labels",
    response_model=IngestPublic,
    responses=error_responses(401, 403, 413, 422, 503),
    summary="Record outcomes of single transfers (latest wins)",
)
async def add_transfer_labels(
    body: TransferLabelBatchCreate,
    principal: Investigator,
    state: StateDep,
) -> dict[str, Any]:
    """Validated like transfer_labels.csv (every transfer must be stored); chargebacks,
    victims' reports, confirmed reviews. Training targets of the transfer model."""
    return await _run(state, principal, "transfer_labels", body.items, False)


@router.post(
    "/v1/obligations",
    response_model=IngestPublic,
    responses=error_responses(401, 403, 409, 413, 422, 503),
    summary="Add obligations or advance their status (forward only)",
)
async def add_obligations(
    body: ObligationBatchCreate,
    principal: Feeder,
    state: StateDep,
) -> dict[str, Any]:
    """Validated like obligations.csv; all or nothing. A stored obligation's status may move
    from open to repaid, late or defaulted (each change kept with its time); a changed term
    or a backward status is a 409 and nothing of the batch is written."""
    return await _run(state, principal, "obligations", body.items, False)
