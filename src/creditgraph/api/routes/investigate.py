"""Investigator endpoints: accounts, neighbourhoods, paths, rings and transfers.

Role ``investigator`` (or ``admin``). Every look-up needs a purpose, sent as the ``X-Purpose``
header (400 without it), and is audited with the key id, the purpose and a short result.
Responses are built by ``services.investigate`` as plain dicts and serialised by orjson as
they are; the response models (``api/schemas/investigate.py``) document them in OpenAPI and
are not run per request (a test validates every view against its model).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Depends, Header, HTTPException, Path, Query, Response

from creditgraph.api.audit import AuditLog
from creditgraph.api.deps import AuditDep, Principal, StateDep, StoreDep, require_role
from creditgraph.api.errors import json_response
from creditgraph.api.schemas import error_responses
from creditgraph.api.schemas.investigate import (
    AccountPublic,
    GraphPublic,
    PathsPublic,
    RingPublic,
    RingQueuePublic,
    RingUpdate,
    RingUpdated,
    TransfersPublic,
)
from creditgraph.domain import RingKind, RingStatus
from creditgraph.errors import CreditGraphError, InvalidInput, NotFound
from creditgraph.services import investigate
from creditgraph.services.viewpool import VIEWS, ViewPool
from creditgraph.store.base import MAX_HOPS, MAX_OFFSET, MAX_PAGE, MAX_PATH_HOPS

router = APIRouter(tags=["investigators"])
T = TypeVar("T")

PURPOSE_MAX = 500


@dataclass(frozen=True)
class Lookup:
    """An authorised investigator with the stated purpose; ``run`` audits one look-up."""

    principal: Principal
    purpose: str
    audit: AuditLog

    def run(
        self,
        action: str,
        target: str,
        fn: Callable[[], T],
        result: Callable[[T], str],
        accounts: Sequence[str] = (),
        *,
        shown: Callable[[T], Sequence[str]] | None = None,
        ids: Sequence[str] = (),
    ) -> T:
        """Call ``fn``; record the outcome (also a refusal: not found, invalid) and re-raise.
        ``accounts``: the ids the look-up asks about; ``shown``: every account the answer
        shows (all of a graph view's nodes), recorded beside them; ``ids``: other ids."""
        try:
            out = fn()
        except CreditGraphError as e:
            outcome = (
                "not_found"
                if isinstance(e, NotFound)
                else "invalid"
                if isinstance(e, InvalidInput)
                else "error"
            )
            self._record(action, target, outcome, accounts, ids)
            raise
        if shown is not None:
            accounts = list(dict.fromkeys([*accounts, *shown(out)]))
        self._record(action, target, result(out), accounts, ids)
        return out

    def _record(
        self, action: str, target: str, result: str, accounts: Sequence[str], ids: Sequence[str]
    ) -> None:
        self.audit.record(
            principal=self.principal,
            action=action,
            target=target,
            result=result,
            purpose=self.purpose,
            accounts=accounts,
            ids=ids,
        )


def _node_ids(view: dict[str, Any]) -> list[str]:
    return [n["id"] for n in view["nodes"]]


def _transfer_parties(view: dict[str, Any], account_id: str) -> list[str]:
    parties = (x for t in view["items"] for x in (t["src"], t["dst"]))
    return list(dict.fromkeys([account_id, *parties]))


def get_lookup(
    principal: Annotated[Principal, Depends(require_role("investigator"))],
    audit: AuditDep,
    x_purpose: Annotated[
        str | None,
        Header(
            alias="X-Purpose",
            description="Why you look (a case number, an alert id): required, and kept in "
            "the audit log with your key id",
            examples=["case 2024-117: chargeback on acc_000042"],
        ),
    ] = None,
) -> Lookup:
    """Authorise (401/403 first), then require a purpose (400)."""
    purpose = (x_purpose or "").strip()
    if not purpose:
        raise HTTPException(400, "missing X-Purpose header: say why you look (kept in the audit)")
    if len(purpose) > PURPOSE_MAX:
        raise HTTPException(400, f"X-Purpose is longer than {PURPOSE_MAX} characters")
    return Lookup(principal, purpose, audit)


LookupDep = Annotated[Lookup, Depends(get_lookup)]
AccountId = Annotated[str, Path(min_length=1, max_length=128, examples=["acc_000042"])]
RingId = Annotated[str, Path(min_length=1, max_length=128, examples=["ring_3f2a9c"])]
ERRORS = error_responses(400, 401, 403, 404, 422, 503)


def _relations(values: Sequence[str] | None) -> list[str] | None:
    """``relations=A&relations=B`` or ``relations=A,B``; None (all) when absent."""
    if not values:
        return None
    return sorted({r.strip() for v in values for r in v.split(",") if r.strip()})


def _epoch(value: datetime | None) -> float | None:
    if value is None:
        return None
    return (value if value.tzinfo else value.replace(tzinfo=UTC)).timestamp()


@router.get(
    "/v1/accounts/{account_id}",
    response_model=AccountPublic,
    summary="An account: attributes, scores, reasons, social credit explained, rings",
    responses=ERRORS,
)
def get_account(
    account_id: AccountId, store: StoreDep, state: StateDep, lookup: LookupDep
) -> Response:
    scorer = state.serving.scorer
    out = lookup.run(
        "investigate.account",
        account_id,
        lambda: investigate.account_view(store, account_id, scorer),
        lambda v: f"rings={len(v['rings'])}",
        accounts=[account_id],
    )
    return json_response(out)


@router.get(
    "/v1/accounts/{account_id}/neighbourhood",
    response_model=GraphPublic,
    summary="The account's neighbourhood as graph JSON, capped per account",
    responses=ERRORS,
)
def get_neighbourhood(
    account_id: AccountId,
    store: StoreDep,
    state: StateDep,
    lookup: LookupDep,
    hops: Annotated[int, Query(ge=1, le=MAX_HOPS, description="Rings of neighbours")] = 1,
    limit: Annotated[
        int,
        Query(ge=1, le=1000, description="Neighbours kept per expanded account, strongest first"),
    ] = 25,
    relations: Annotated[
        list[str] | None,
        Query(
            description="Only these relations: TRANSFER and/or link types (repeat or "
            "comma-separate); all when absent",
            examples=["TRANSFER,SHARES_DEVICE"],
        ),
    ] = None,
    through_hubs: Annotated[
        bool,
        Query(
            description="Walk through hubs (accounts over the hub threshold) too: slower, "
            "and a hub's neighbours crowd out the rest"
        ),
    ] = False,
) -> Response:
    rels = _relations(relations)
    hub_degree = state.settings.investigate_hub_degree
    kwargs: dict[str, Any] = {
        "hops": hops,
        "limit": limit,
        "relations": rels,
        "hub_degree": hub_degree,
        "through_hubs": through_hubs,
        "deadline_s": state.settings.investigate_deadline_s,
    }
    if state.views is not None and hops >= 2:  # seconds of Python: a worker process's
        return _offloaded(lookup, state.views, "neighbourhood", account_id, [account_id],
                          (account_id,), kwargs)  # fmt: skip
    out = lookup.run(
        "investigate.neighbourhood",
        account_id,
        lambda: investigate.neighbourhood_graph(store, account_id, **kwargs),
        VIEWS["neighbourhood"][1],
        accounts=[account_id],
        shown=_node_ids,
    )
    return json_response(out)


def _offloaded(
    lookup: Lookup,
    views: ViewPool,
    name: str,
    target: str,
    accounts: list[str],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
) -> Response:
    """View ``name`` computed by a worker process (``services.viewpool``), audited alike."""
    view = lookup.run(
        f"investigate.{name}",
        target,
        lambda: views.call(name, *args, **kwargs),
        lambda v: v.summary,
        accounts=accounts,
        shown=lambda v: v.shown,
    )
    return Response(view.body, media_type="application/json")


@router.get(
    "/v1/paths",
    response_model=PathsPublic,
    summary="Shortest paths between two accounts with the transfers along them",
    responses=ERRORS,
)
def get_paths(
    store: StoreDep,
    state: StateDep,
    lookup: LookupDep,
    src: Annotated[str, Query(alias="from", min_length=1, max_length=128)],
    dst: Annotated[str, Query(alias="to", min_length=1, max_length=128)],
    max_hops: Annotated[int, Query(ge=1, le=MAX_PATH_HOPS)] = 4,
    relations: Annotated[list[str] | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=100, description="At most this many paths")] = 10,
    through_hubs: Annotated[
        bool,
        Query(
            description="Walk through hubs (accounts over the hub threshold) too: slower, "
            "and a hub's neighbours crowd out the rest"
        ),
    ] = False,
) -> Response:
    rels = _relations(relations)
    settings = state.settings
    kwargs: dict[str, Any] = {
        "max_hops": max_hops,
        "relations": rels,
        "limit": limit,
        "hub_degree": settings.investigate_hub_degree,
        "through_hubs": through_hubs,
        "deadline_s": settings.investigate_path_deadline_s,
    }
    if state.views is not None:
        return _offloaded(lookup, state.views, "paths", f"{src}->{dst}", [src, dst],
                          (src, dst), kwargs)  # fmt: skip
    out = lookup.run(
        "investigate.paths",
        f"{src}->{dst}",
        lambda: investigate.paths_view(store, src, dst, **kwargs),
        VIEWS["paths"][1],
        accounts=[src, dst],
        shown=_node_ids,
    )
    return json_response(out)


@router.get(
    "/v1/rings",
    response_model=RingQueuePublic,
    summary="The ring alert queue, highest score first",
    responses=ERRORS,
)
def get_rings(
    store: StoreDep,
    lookup: LookupDep,
    status: Annotated[list[RingStatus] | None, Query(description="Repeat for several")] = None,
    kind: Annotated[list[RingKind] | None, Query(description="Repeat for several")] = None,
    min_score: Annotated[float | None, Query(ge=0, le=1)] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> Response:
    filters = f"status={status or '*'} kind={kind or '*'} min_score={min_score}"
    out = lookup.run(
        "investigate.rings",
        filters,
        lambda: investigate.ring_queue(
            store, statuses=status, kinds=kind, min_score=min_score, limit=limit, offset=offset
        ),
        lambda v: f"items={len(v['items'])} total={v['total']}",
        # The accounts the page shows: each ring's preview.
        shown=lambda v: [m for r in v["items"] for m in r["members_preview"]],
    )
    return json_response(out)


@router.get(
    "/v1/rings/{ring_id}",
    response_model=RingPublic,
    summary="A ring: members, evidence, timeline",
    responses=ERRORS,
)
def get_ring(ring_id: RingId, store: StoreDep, lookup: LookupDep) -> Response:
    out = lookup.run(
        "investigate.ring",
        ring_id,
        lambda: investigate.ring_detail(store, ring_id),
        lambda v: f"members={len(v['members'])} status={v['status']}",
        shown=lambda v: [m["id"] for m in v["members"]],
        ids=[ring_id],
    )
    return json_response(out)


@router.patch(
    "/v1/rings/{ring_id}",
    response_model=RingUpdated,
    summary="Set a ring's status and note; verdicts become training labels",
    responses=ERRORS,
)
def patch_ring(ring_id: RingId, update: RingUpdate, store: StoreDep, lookup: LookupDep) -> Response:
    out = lookup.run(
        "investigate.ring.status",
        ring_id,
        lambda: investigate.set_verdict(store, ring_id, update.status, update.note),
        lambda v: f"status={v['status']} labels_written={v['labels_written']}",
        ids=[ring_id],
    )
    return json_response(out)


@router.get(
    "/v1/accounts/{account_id}/transfers",
    response_model=TransfersPublic,
    summary="An account's transfers, newest first, by time and counterparty",
    responses=ERRORS,
)
def get_transfers(
    account_id: AccountId,
    store: StoreDep,
    lookup: LookupDep,
    since: Annotated[
        datetime | None, Query(description="ISO-8601 or UNIX seconds; no zone means UTC")
    ] = None,
    until: Annotated[datetime | None, Query(description="Inclusive")] = None,
    counterparty: Annotated[str | None, Query(min_length=1, max_length=128)] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> Response:
    out = lookup.run(
        "investigate.transfers",
        account_id,
        lambda: investigate.account_transfers(
            store,
            account_id,
            since=_epoch(since),
            until=_epoch(until),
            counterparty=counterparty,
            limit=limit,
            offset=offset,
        ),
        lambda v: f"items={len(v['items'])} total={v['total']}",
        accounts=[account_id, *([counterparty] if counterparty else [])],
        shown=lambda v: _transfer_parties(v, account_id),
    )
    return json_response(out)
