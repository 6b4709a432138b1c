"""The review queue: transfers answered ``review`` wait for an investigator's verdict, and
each verdict becomes a transfer label the next training run learns from.

Business rules:

- a ``review`` answer is queued once per check (``review_id``); the item keeps the check
  (both accounts, amount, time, channel, attributes), the risk and the reasons shown;
- a verdict closes an open item once: ``approved`` (the transfer was fine: label ``legit``)
  or ``rejected`` (fraud: label ``fraud``), with the reviewer and a note; a second verdict
  on the same item is a ``Conflict``, never a silent overwrite;
- the label is written under the transfer id the payment service gave (``transfer_id`` of
  the request) or the review's own id, source ``review:<reviewer>``: a rejected transfer is
  never ingested, an approved one joins its label when it is.
"""

from __future__ import annotations

import time
import uuid
from typing import Literal

from creditgraph.errors import InvalidInput
from creditgraph.outcomes import VERDICT_LABEL, ReviewItem, TransferLabelColumns
from creditgraph.services.risk.policy import RiskDecision, TransferCheck
from creditgraph.store.base import GraphStore

Verdict = Literal["approved", "rejected"]


def review_item(check: TransferCheck, d: RiskDecision, now: float | None = None) -> ReviewItem:
    """The queue entry for a ``review`` answer on ``check``."""
    at = time.time() if now is None else now
    review_id = f"rv_{uuid.uuid4().hex[:20]}"
    return ReviewItem(
        review_id=review_id,
        transfer_id=check.transfer_id or review_id,
        src=check.src,
        dst=check.dst,
        amount=check.amount,
        timestamp=check.timestamp if check.timestamp is not None else at,
        created_at=at,
        risk=d.risk,
        model_version=d.model_version,
        reasons=[dict(r) for r in d.reasons],
        channel=check.channel,
        attributes=dict(check.attributes),
    )


def resolve(
    store: GraphStore, review_id: str, verdict: str, reviewer: str, note: str
) -> ReviewItem:
    """Close ``review_id`` with ``verdict`` and write the transfer label it implies."""
    if verdict not in VERDICT_LABEL:
        raise InvalidInput(f"verdict must be approved or rejected, got {verdict!r}")
    v: Verdict = "approved" if verdict == "approved" else "rejected"
    done = store.resolve_review(review_id, v, reviewer, note, time.time())
    assert done.resolved_at is not None
    store.upsert_transfer_labels(
        TransferLabelColumns(
            [done.transfer_id], [VERDICT_LABEL[v]], [f"review:{reviewer}"], [done.resolved_at]
        )
    )
    return done
