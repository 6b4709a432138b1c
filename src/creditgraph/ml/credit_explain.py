"""Explanations a person is owed: reasons per dimension, the principal reasons (points lost),
and a counterfactual (the smallest change of an actionable input that reaches the next band).

Reasons come from each dimension model's TreeSHAP contributions, turned into scorecard points
(``ml.credit_model``): "points lost" is how far a feature puts the account below an average
one. Only inputs a person can act on enter a counterfactual (what is owed, overdue payments,
regular activity, inflows); the past, account age and relationships never do: nobody should be
told to drop a friend.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from creditgraph.ml.credit_features import (
    CAPACITY_DAYS,
    DIMENSIONS,
    Block,
    Dimension,
    FloatArray,
)
from creditgraph.ml.credit_model import (
    CreditModel,
    Policy,
    Scored,
    band_of,
    next_band,
    score_blocks,
)

_REL = {
    "friends": "friends",
    "pays": "accounts it pays",
    "paid_by": "accounts that pay it",
    "all": "contacts",
}


def _social_message(name: str, v: float) -> str:
    rel, _, what = name.partition("_")
    if name.startswith("paid_by"):
        rel, what = "paid_by", name[len("paid_by_") :]
    label = _REL[rel]
    return {
        "count": f"{v:.0f} consenting {label}",
        "with_history": f"{v:.0f} of its {label} have a repayment record",
        "pooled_default_share": f"{v:.0%} of the resolved obligations of its {label} defaulted",
        "pooled_late_share": f"{v:.0%} of the resolved obligations of its {label} were late",
        "defaulter_share": f"{v:.0%} of its {label} with a record have defaulted",
    }[what]


_MESSAGES: dict[str, Callable[[float], str]] = {
    "credit_history.resolved_obligations": lambda v: f"{v:.0f} obligation(s) resolved so far",
    "credit_history.on_time_share": lambda v: f"{v:.0%} of obligations repaid on time",
    "credit_history.late_payments": lambda v: f"{v:.0f} obligation(s) repaid late",
    "credit_history.defaults": lambda v: f"{v:.0f} defaulted obligation(s) on record",
    "credit_history.default_share": lambda v: f"{v:.0%} of resolved obligations defaulted",
    "credit_history.history_days": lambda v: f"credit history of {v:.0f} days",
    "credit_history.days_since_default": lambda v: (
        "no default on record" if v >= 3650 else f"{v:.0f} days since the last default"
    ),
    "credit_history.past_due_open": lambda v: f"{v:.0f} open obligation(s) past their due date",
    "credit_history.no_history": lambda v: (
        "no resolved obligation yet (thin file)" if v else "a repayment record exists"
    ),
    "behaviour.payments_out": lambda v: f"{v:.0f} payments made in the last 182 days",
    "behaviour.payments_in": lambda v: f"{v:.0f} payments received in the last 182 days",
    "behaviour.active_weeks_share": lambda v: f"payments in {v:.0%} of the last 26 weeks",
    "behaviour.weekly_count_cv": lambda v: f"week-to-week variation of payments {v:.2f}",
    "behaviour.mean_payment": lambda v: f"average payment {v:.2f}",
    "behaviour.large_payment_share": lambda v: f"{v:.0%} of spending in payments of 200 or more",
    "capacity.inflow_90d": lambda v: f"inflows of {v:.2f} in the last 91 days",
    "capacity.outflow_90d": lambda v: f"outflows of {v:.2f} in the last 91 days",
    "capacity.inflow_monthly_cv": lambda v: f"month-to-month variation of inflows {v:.2f}",
    "capacity.owed": lambda v: f"{v:.2f} owed on open obligations",
    "capacity.owed_to_monthly_flow": lambda v: f"amount owed is {v:.1f}x the monthly money flow",
    "capacity.open_obligations": lambda v: f"{v:.0f} open obligation(s)",
    "identity.account_age_days": lambda v: f"account open for {v:.0f} days",
    "social.network_model": lambda v: (
        "what the network model read beyond these aggregates: its contacts' payment "
        "behaviour and their own contacts' repayment records"
    ),
}

Direction = Literal["down", "up"]
#: Inputs a person can change, and which way helps.
ACTIONABLE: tuple[tuple[Dimension, str, Direction, str], ...] = (
    ("credit_history", "past_due_open", "down", "settle overdue obligations"),
    ("capacity", "owed", "down", "reduce what is owed on open obligations"),
    ("capacity", "inflow_90d", "up", "raise regular inflows"),
    ("behaviour", "active_weeks_share", "up", "make payments more regularly"),
)


def message(dim: Dimension, name: str, value: float) -> str:
    key = f"{dim}.{name}"
    if key in _MESSAGES:
        return _MESSAGES[key](value)
    if dim == "social":
        return _social_message(name, value)
    return f"{name} is {value:g}"


@dataclass(frozen=True)
class Reason:
    code: str
    dimension: Dimension
    feature: str
    value: float
    points: float
    message: str

    def public(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "dimension": self.dimension,
            "feature": self.feature,
            "value": _finite(self.value),
            "points": round(self.points, 1),
            "message": self.message,
        }


def _finite(v: float) -> float | None:
    return None if not np.isfinite(v) else round(float(v), 4)


def dimension_reasons(
    dim: Dimension, block: Block, row: int, feature_points: FloatArray, k: int = 4
) -> list[Reason]:
    """The ``k`` features that moved the dimension most (either way, in the dimension's own
    points: as if its weight were 1), largest first; each
    names its evidence even when its points are near zero (the dimension found it neutral)."""
    pts = feature_points[row]
    order = np.argsort(-np.abs(pts), kind="stable")[:k]
    return [
        Reason(
            code=f"{dim}.{block.names[j]}".upper().replace(".", "__"),
            dimension=dim,
            feature=block.names[j],
            value=float(block.x[row, j]),
            points=float(pts[j]),
            message=message(dim, block.names[j], float(block.x[row, j])),
        )
        for j in order
    ]


def principal_reasons(
    scored: Scored,
    blocks: dict[Dimension, Block],
    row: int,
    weights: dict[Dimension, float],
    k: int = 4,
) -> list[Reason]:
    """Adverse-action style: the ``k`` features of counted dimensions that lost most
    composite points against an average account, most points lost first."""
    lost: list[Reason] = []
    for d in DIMENSIONS:
        if not scored.used[d][row] or (d == "social" and scored.points[d][row] >= 0):
            continue  # relationships are a principal reason only when they cost points
        pts = weights[d] * scored.feature_points[d][row]
        for j, p in enumerate(pts):
            if p < -0.05:
                name = blocks[d].names[j]
                value = float(blocks[d].x[row, j])
                lost.append(
                    Reason(
                        code=f"{d}.{name}".upper().replace(".", "__"),
                        dimension=d,
                        feature=name,
                        value=value,
                        points=float(p),
                        message=message(d, name, value),
                    )
                )
    lost.sort(key=lambda r: r.points)
    return lost[:k]


def _changed(
    blocks: dict[Dimension, FloatArray],
    names: dict[Dimension, list[str]],
    dim: Dimension,
    feature: str,
    values: FloatArray,
) -> dict[Dimension, FloatArray]:
    """Copies of one account's rows with ``feature`` set to each of ``values`` (and the
    features derived from it kept consistent)."""
    out = {d: np.repeat(b, len(values), axis=0) for d, b in blocks.items()}
    col = names[dim].index(feature)
    old = float(blocks[dim][0, col])
    out[dim][:, col] = values
    cap = names["capacity"]
    if (dim, feature) == ("capacity", "owed"):
        j = cap.index("owed_to_monthly_flow")
        ratio = float(blocks["capacity"][0, j])
        out["capacity"][:, j] = ratio * values / old if old > 0 else 0.0
    if (dim, feature) == ("capacity", "inflow_90d"):
        owed = float(blocks["capacity"][0, cap.index("owed")])
        outflow = float(blocks["capacity"][0, cap.index("outflow_90d")])
        flow = (values + outflow) / 2 / (CAPACITY_DAYS / 30)
        out["capacity"][:, cap.index("owed_to_monthly_flow")] = owed / (flow + 10.0)
    return out


def counterfactual(
    model: CreditModel,
    blocks: dict[Dimension, Block],
    row: int,
    consent: bool,
    policy: Policy,
    cap: float,
    score: float,
) -> dict[str, Any]:
    """The smallest change of one actionable input that reaches the next band, searched
    over the training distribution of that input (its quantiles), nearest first."""
    target = next_band(score)
    if target is None:
        return {"target_band": None, "message": "already in the highest band", "changes": []}
    band, lower = target
    one = {d: b.x[row : row + 1] for d, b in blocks.items()}
    names = {d: b.names for d, b in blocks.items()}
    mask = np.array([consent])
    best: tuple[float, dict[str, Any]] | None = None
    closest: tuple[float, dict[str, Any]] | None = None
    for dim, feature, direction, advice in ACTIONABLE:
        col = names[dim].index(feature)
        now = float(one[dim][0, col])
        grid = np.asarray(model.quantiles.get(f"{dim}.{feature}", []), dtype=np.float64)
        if direction == "down":
            cands = np.unique(np.r_[grid[grid < now], 0.0 if now > 0 else now])[::-1]
        else:
            cands = np.unique(grid[grid > now])
        cands = cands[cands != now]
        if len(cands) == 0:
            continue
        trial = _changed(one, names, dim, feature, cands)
        got = score_blocks(model, trial, np.repeat(mask, len(cands)), policy, cap).composite
        change = {
            "dimension": dim,
            "feature": feature,
            "from": round(now, 4),
        }
        reach = np.flatnonzero(got >= lower)
        if len(reach):
            i = int(reach[0])
            # Distance in training quantiles: comparable across inputs of any unit.
            dist = abs(_rank(grid, float(cands[i])) - _rank(grid, now))
            proposal = {**change, "to": round(float(cands[i]), 4), "advice": advice}
            if best is None or dist < best[0]:
                best = (dist, {"changes": [proposal], "new_score": round(float(got[i]), 1)})
        top = int(np.argmax(got))
        if closest is None or got[top] > closest[0]:
            closest = (
                float(got[top]),
                {**change, "to": round(float(cands[top]), 4), "advice": advice},
            )
    out: dict[str, Any] = {
        "target_band": band,
        "target_score": lower,
        "points_needed": round(lower - score, 1),
    }
    if best is not None:
        c = best[1]["changes"][0]
        out.update(best[1])
        out["reachable"] = True
        out["message"] = (
            f"{c['advice']}: {message(c['dimension'], c['feature'], c['from'])} -> "
            f"{message(c['dimension'], c['feature'], c['to'])} reaches {band} "
            f"({best[1]['new_score']:.0f} points)"
        )
        return out
    out["reachable"] = False
    out["changes"] = [closest[1]] if closest else []
    out["message"] = (
        f"no single change of an actionable input reaches {band} ({lower:.0f} points)"
        + (
            f"; the largest gain: {closest[1]['advice']} ({closest[0]:.0f} points)"
            if closest
            else ""
        )
    )
    return out


def _rank(grid: FloatArray, v: float) -> float:
    if len(grid) == 0:
        return 0.0
    return float(np.searchsorted(grid, v)) / len(grid)


def profile(
    model: CreditModel,
    account_id: str,
    scored: Scored,
    blocks: dict[Dimension, Block],
    row: int,
    consent: bool,
    policy: Policy,
    cap: float,
) -> dict[str, Any]:
    """The credit profile of one scored row, as ``GET /v1/accounts/{id}/credit`` returns it."""
    score = float(scored.composite[row])
    dims: dict[str, Any] = {}
    for d in DIMENSIONS:
        used = bool(scored.used[d][row])
        computed = bool(np.isfinite(scored.log_odds[d][row]))
        reasons = (
            [r.public() for r in dimension_reasons(d, blocks[d], row, scored.feature_points[d])]
            if computed
            else []
        )
        if d == "social":
            note = _social_note(consent, policy, computed, scored, row)
            if note:
                reasons.insert(0, note)
        dims[d] = {
            "score": round(float(scored.scores[d][row]), 1) if computed else None,
            "weight": model.weights[d] if used else 0.0,
            "points": round(float(scored.points[d][row]), 1),
            "used": used,
            "reasons": reasons,
        }
    principal = [r.public() for r in principal_reasons(scored, blocks, row, model.weights)]
    if not consent:
        principal.append(_CONSENT_NOTE)
    return {
        "account_id": account_id,
        "credit_score": round(score),
        "band": band_of(score),
        "p_default": round(float(scored.p_default[row]), 4),
        "dimensions": dims,
        "reasons": principal,
        "counterfactual": counterfactual(model, blocks, row, consent, policy, cap, score),
        "model_version": model.version,
    }


_CONSENT_NOTE: dict[str, Any] = {
    "code": "SOCIAL__CONSENT_WITHDRAWN",
    "dimension": "social",
    "feature": None,
    "value": None,
    "points": 0.0,
    "message": "consent to use relationships is withdrawn: no relationship of this account "
    "entered its credit profile; the score uses the other four dimensions",
}


def _social_note(
    consent: bool, policy: Policy, computed: bool, scored: Scored, row: int
) -> dict[str, Any] | None:
    if not consent:
        return _CONSENT_NOTE
    if policy == "off":
        text = "the social dimension is off by policy: relationships are not used"
    elif policy == "informational":
        text = "shown for information only (policy informational): not counted in the score"
    elif policy == "inclusion_only" and computed and scored.social_raw_points[row] < 0:
        text = (
            "relationships would have lowered the score by "
            f"{-scored.social_raw_points[row]:.0f} points; under the inclusion_only policy "
            "they may raise a score, never lower it, so they count 0"
        )
    else:
        return None
    return {
        "code": "SOCIAL__POLICY",
        "dimension": "social",
        "feature": None,
        "value": None,
        "points": 0.0,
        "message": text,
    }
