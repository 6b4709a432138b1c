"""Hard limits on a transfer that no score overrides. Pure: no I/O, no state.

- an amount that is not finite or above ``absurd_amount`` (``1e308``) is no payment: blocked;
- above ``max_amount`` a single transfer is blocked whatever the model says;
- a sender without earlier transfers has the stricter ceiling ``new_sender_max_amount``:
  an empty history is not evidence of trust, so it cannot unlock large amounts.
"""

from __future__ import annotations

import math

from creditgraph.config import RiskSettings
from creditgraph.domain import Reason, ReasonCode, reason


def hard_limit(amount: float, sender_count: int, policy: RiskSettings) -> Reason | None:
    """The reason a transfer of ``amount`` by a sender with ``sender_count`` earlier
    transfers must be blocked, or None when no limit applies."""
    if not math.isfinite(amount) or amount > policy.absurd_amount:
        return reason(
            ReasonCode.AMOUNT_ABSURD,
            f"amount {amount:g} is not a plausible payment (limit {policy.absurd_amount:g})",
            {
                "amount": amount if math.isfinite(amount) else str(amount),
                "limit": policy.absurd_amount,
            },
        )
    if amount > policy.max_amount:
        return reason(
            ReasonCode.HARD_LIMIT,
            f"amount {amount:g} is above the ceiling of {policy.max_amount:g} per transfer",
            {"amount": amount, "limit": policy.max_amount, "rule": "max_amount"},
        )
    if sender_count == 0 and amount > policy.new_sender_max_amount:
        return reason(
            ReasonCode.HARD_LIMIT,
            f"amount {amount:g} is above the ceiling of {policy.new_sender_max_amount:g} for a "
            "sender without earlier transfers",
            {"amount": amount, "limit": policy.new_sender_max_amount, "rule": "new_sender"},
        )
    return None
