"""Business rules of obligation writes, shared by every backend (pure: no I/O).

An obligation's terms (account, kind, amount, opened_at, due_at) never change once stored.
Its status only moves forward: ``open`` to one of ``repaid | late | defaulted``, and those are
final. Re-sending what is stored changes nothing (imports stay idempotent); anything else is
refused for the whole write, so a store never holds half a file.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from creditgraph.domain import Obligation, ObligationColumns, StatusChange, status_time
from creditgraph.errors import ObligationConflict, RefusedObligation

TERMS = ("account_id", "kind", "amount", "opened_at", "due_at")


@dataclass(frozen=True, slots=True)
class ObligationPlan:
    """Rows of a batch to insert (new ids) and to advance (open -> final), by index."""

    new: list[int]
    advance: list[int]

    @property
    def changed(self) -> int:
        return len(self.new) + len(self.advance)


def plan_obligations(batch: ObligationColumns, stored: Mapping[str, Obligation]) -> ObligationPlan:
    """What writing ``batch`` over ``stored`` (id -> obligation) does; ``ObligationConflict``
    naming every refused row when a term would change or a status move backwards."""
    new: list[int] = []
    advance: list[int] = []
    refused: list[RefusedObligation] = []
    for i, oid in enumerate(batch.obligation_id):
        old = stored.get(oid)
        if old is None:
            new.append(i)
            continue
        row = (
            batch.account_id[i],
            batch.kind[i],
            batch.amount[i],
            batch.opened_at[i],
            batch.due_at[i],
        )
        before = (old.account_id, old.kind, old.amount, old.opened_at, old.due_at)
        changed = [t for t, a, b in zip(TERMS, row, before, strict=True) if a != b]
        status = batch.status[i]
        if changed:
            refused.append(
                RefusedObligation(
                    oid,
                    f"stored with a different {', '.join(changed)} (terms never change: "
                    "send a new obligation_id)",
                    i,
                )
            )
        elif status == old.status:
            if batch.closed_at[i] != old.closed_at:
                refused.append(
                    RefusedObligation(oid, f"already {old.status} with another closed_at", i)
                )
        elif old.status != "open":
            refused.append(
                RefusedObligation(
                    oid,
                    f"is {old.status} (final since {_iso(old)}); it cannot become {status}"
                    + (" (a status never moves backwards)" if status == "open" else ""),
                    i,
                )
            )
        else:
            advance.append(i)
    if refused:
        raise ObligationConflict(refused)
    return ObligationPlan(new, advance)


def changes_of_new(batch: ObligationColumns, i: int, now: float) -> list[StatusChange]:
    """The history a newly stored row starts with: opened, and its final status if any."""
    opened = StatusChange("open", batch.opened_at[i], now)
    if batch.status[i] == "open":
        return [opened]
    return [opened, _change(batch, i, now)]


def change_of_advance(batch: ObligationColumns, i: int, now: float) -> StatusChange:
    """The status change an ``advance`` row records."""
    return _change(batch, i, now)


def _change(batch: ObligationColumns, i: int, now: float) -> StatusChange:
    s = batch.status[i]
    return StatusChange(
        s, status_time(s, batch.opened_at[i], batch.due_at[i], batch.closed_at[i]), now
    )


def _iso(o: Obligation) -> str:
    at = o.history[-1].at if o.history else o.due_at
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%d")
