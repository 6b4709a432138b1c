"""Contributions to the transfer model's margin (path contributions or TreeSHAP) grouped
into named factors a person can read.

Each feature belongs to one factor (amount, sender history, velocity, receiver inflows,
relationship, rings, account scores, time of day, attributes); a factor's weight is the sum
of its features' contributions to the margin, and its sentence quotes the figures behind it
("amount is 14x the sender's largest transfer").
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from creditgraph.domain import Reason, ReasonCode, reason

FACTOR_OF: dict[str, str] = {
    "log_amount": "amount",
    "s_amount_over_mean": "amount",
    "s_amount_over_max": "amount",
    "s_amount_z": "amount",
    "r_amount_over_in_mean": "amount",
    "r_amount_over_in_max": "amount",
    "s_out_count": "sender_history",
    "s_in_count": "sender_history",
    "s_age_days": "sender_history",
    "s_out_1h": "velocity",
    "s_out_24h": "velocity",
    "r_in_count": "receiver_inflows",
    "r_in_1h": "receiver_inflows",
    "r_in_24h": "receiver_inflows",
    "r_new_payers_1h": "receiver_inflows",
    "r_out_count": "receiver_inflows",
    "r_age_days": "receiver_inflows",
    "pair_earlier": "relationship",
    "pair_reverse": "relationship",
    "first_to_receiver": "relationship",
    "friends": "relationship",
    "identity_links": "relationship",
    "common_friends": "relationship",
    "same_ring": "rings",
    "r_ring_score": "rings",
    "s_fraud_p": "account_scores",
    "r_fraud_p": "account_scores",
    "hour_of_day": "time_of_day",
}
#: How many factors a decision quotes.
TOP_FACTORS = 3


def factor_of(feature: str) -> str:
    return FACTOR_OF.get(feature, "attributes")


def _fmt(x: float) -> str:
    return f"{x:.0f}" if abs(x) >= 10 else f"{x:.1f}"


def describe(factor: str, f: Mapping[str, Any]) -> str:
    """The sentence for ``factor`` from the transfer's feature values ``f``."""

    def v(name: str) -> float:
        x = f.get(name)
        return math.nan if x is None else float(x)

    if factor == "amount":
        amount = math.expm1(v("log_amount"))
        if v("s_out_count") == 0:
            return f"amount {amount:,.2f} from a sender without earlier transfers"
        parts = []
        if not math.isnan(v("s_amount_over_max")):
            parts.append(f"{_fmt(v('s_amount_over_max'))}x the sender's largest transfer")
        if not math.isnan(v("s_amount_over_mean")):
            parts.append(f"{_fmt(v('s_amount_over_mean'))}x the sender's mean")
        if not math.isnan(v("r_amount_over_in_mean")):
            parts.append(f"{_fmt(v('r_amount_over_in_mean'))}x what the receiver usually gets")
        return f"amount {amount:,.2f} is " + ", ".join(parts) if parts else f"amount {amount:,.2f}"
    if factor == "sender_history":
        return (
            f"the sender has made {v('s_out_count'):.0f} earlier transfer(s), received "
            f"{v('s_in_count'):.0f}, account {v('s_age_days'):.0f} day(s) old"
        )
    if factor == "velocity":
        return (
            f"the sender made {v('s_out_1h'):.0f} transfer(s) in the last hour and "
            f"{v('s_out_24h'):.0f} in the last day"
        )
    if factor == "receiver_inflows":
        first = "first transfer to" if v("first_to_receiver") == 1 else "transfer to"
        return (
            f"{first} a receiver that {v('r_new_payers_1h'):.0f} new account(s) paid in the "
            f"last hour ({v('r_in_24h'):.0f} payments in the last day, "
            f"{v('r_in_count'):.0f} in all; account {v('r_age_days'):.0f} day(s) old)"
        )
    if factor == "relationship":
        bits = [
            "friends" if v("friends") == 1 else "not friends",
            f"{v('pair_earlier'):.0f} earlier transfer(s) this way, "
            f"{v('pair_reverse'):.0f} the other way",
            f"{v('common_friends'):.0f} common friend(s)",
        ]
        if v("identity_links") > 0:
            bits.append(f"{v('identity_links'):.0f} shared identity link(s)")
        return "the two accounts: " + "; ".join(bits)
    if factor == "rings":
        same = " and the sender is in the same ring" if v("same_ring") == 1 else ""
        return f"the receiver's strongest detected ring scores {v('r_ring_score'):.2f}{same}"
    if factor == "account_scores":
        return (
            f"account fraud probabilities: sender {v('s_fraud_p'):.3f}, "
            f"receiver {v('r_fraud_p'):.3f}"
        )
    if factor == "time_of_day":
        return f"made at {v('hour_of_day'):.1f} h UTC"
    cats = {k[4:]: x for k, x in f.items() if k.startswith("cat_")}
    return "attributes: " + ", ".join(f"{k}={x}" for k, x in sorted(cats.items()))


def factor_reasons(
    names: Sequence[str],
    contributions: np.ndarray[Any, Any],
    values: Mapping[str, Any],
    top: int = TOP_FACTORS,
    *,
    attribution: str = "treeshap",
) -> list[Reason]:
    """The ``top`` factors by absolute contribution (one row of contributions to the margin,
    bias last); each line's evidence names the ``attribution`` they came from ("path":
    Saabas path contributions, "treeshap")."""
    weights: dict[str, float] = {}
    for name, c in zip(names, contributions[: len(names)].tolist(), strict=True):
        k = factor_of(name)
        weights[k] = weights.get(k, 0.0) + float(c)
    ranked = sorted(weights.items(), key=lambda kv: (-abs(kv[1]), kv[0]))[:top]
    out = []
    for k, w in ranked:
        code = ReasonCode.FACTOR_RAISES_RISK if w > 0 else ReasonCode.FACTOR_LOWERS_RISK
        members = [n for n in names if factor_of(n) == k]
        evidence = {
            "factor": k,
            "attribution": attribution,
            **{n: _clean(values.get(n)) for n in members},
        }
        out.append(reason(code, describe(k, values), evidence, round(w, 4)))
    return out


def _clean(x: Any) -> Any:
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return round(x, 4) if isinstance(x, float) else x
