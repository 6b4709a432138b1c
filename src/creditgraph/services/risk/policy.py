"""The transfer decision: allow, review or block, with reasons. Pure: no I/O, no state.

"Why was this transfer blocked?" is answered here. ``decide`` takes what the engine found
about the two accounts (``Facts``) and the configured weights (``RiskSettings``):

- risk is a noisy-or: ``1 - prod(1 - c)`` over the contributions
  - the receiver's fraud probability,
  - the sender's fraud probability times ``sender_weight``,
  - the receiver's strongest ring score (clipped to [0, 1]) times ``ring_weight``,
  - ``amount_weight`` when the amount is above ``amount_multiple`` times the sender's mean
    earlier transfer (a sender without history gets a note, not a penalty),
  - ``identity_weight`` when the two share identity links (a device, an address);
- a social relation between them (friends, earlier transfers either way, a common friend or
  transfer partner) then takes ``related_discount`` of the risk off;
- ``block`` at or above ``block_threshold``, ``review`` at or above ``review_threshold``,
  else ``allow``;
- a hard limit (``limits.hard_limit``: absurd amounts, the ceiling per transfer, the stricter
  ceiling for a sender without history) blocks whatever the risk;
- degraded (the store unreachable): a party not in memory has no score, and the decision is
  at least ``unknown_policy``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from creditgraph.config import RiskSettings
from creditgraph.domain import Reason, ReasonCode, reason
from creditgraph.ml.scorer import InductiveScore
from creditgraph.services.risk.limits import hard_limit
from creditgraph.services.risk.tables import RingInfo

Decision = Literal["allow", "review", "block"]
SEVERITY: dict[Decision, int] = {"allow": 0, "review": 1, "block": 2}


@dataclass(frozen=True)
class TransferCheck:
    """A transfer the payment service is about to make."""

    src: str
    dst: str
    amount: float
    currency: str | None = None
    timestamp: float | None = None
    channel: str | None = None
    #: Extra fields (device, location, merchant_category...): the transfer model's categories.
    attributes: Mapping[str, str] = field(default_factory=dict)
    #: The id the payment service will ingest the transfer with, when it says.
    transfer_id: str | None = None


@dataclass(frozen=True)
class AccountRisk:
    """One party's score as the decision used it."""

    account_id: str
    fraud_probability: float | None
    social_credit: float | None
    #: table (snapshot, batch forward), live (rescored after ingest), inductive (scored now
    #: from the store), unavailable (store down and not in memory)
    source: Literal["table", "live", "inductive", "unavailable"]
    inductive: InductiveScore | None = None
    #: New ties of the account were ingested and wait for the background rescorer: the
    #: score (``table``) predates them.
    pending: bool = False


@dataclass(frozen=True)
class Facts:
    """What the engine knows about one transfer's two accounts."""

    check: TransferCheck
    sender: AccountRisk
    receiver: AccountRisk
    #: The detected rings the receiver belongs to.
    receiver_rings: Sequence[RingInfo]
    #: The sender's earlier transfers: how many, and their mean amount.
    sender_count: int
    sender_mean: float
    #: Identity link types joining the two (SHARES_DEVICE, ...).
    shared_identity: list[str]
    #: How the two are socially related ("friends", "earlier transfers", "common neighbour").
    relation: list[str]
    #: The store was unreachable: the answer comes from memory.
    degraded: bool
    model_version: str


@dataclass(frozen=True)
class RiskDecision:
    """The answer to one transfer check."""

    decision: Decision
    risk: float
    reasons: list[Reason]
    model_version: str
    degraded: bool
    sender: AccountRisk
    receiver: AccountRisk
    #: Which policy answered: the hand-weighted ``baseline`` or the ``learned`` transfer model.
    policy: Literal["baseline", "learned"] = "baseline"
    #: The thresholds the answer was taken with (for the audit log).
    thresholds: Mapping[str, float] = field(default_factory=dict)


def band(risk: float, policy: RiskSettings) -> Decision:
    """The decision for a risk in [0, 1] by the two thresholds."""
    if risk >= policy.block_threshold:
        return "block"
    if risk >= policy.review_threshold:
        return "review"
    return "allow"


def decide(facts: Facts, policy: RiskSettings) -> RiskDecision:
    """The decision on ``facts`` under ``policy`` (see the module docstring)."""
    f, p = facts, policy
    reasons: list[Reason] = []
    keep = 1.0  # running product of (1 - contribution): risk = 1 - keep

    if f.receiver.fraud_probability is not None:
        keep *= 1.0 - f.receiver.fraud_probability
    reasons.append(_party_reason(ReasonCode.RECEIVER_RISK, "receiver", f.receiver, f.model_version))
    if f.sender.fraud_probability is not None:
        keep *= 1.0 - p.sender_weight * f.sender.fraud_probability
    reasons.append(_party_reason(ReasonCode.SENDER_RISK, "sender", f.sender, f.model_version))

    if f.receiver_rings:
        best = max(f.receiver_rings, key=lambda r: r.score)
        keep *= 1.0 - p.ring_weight * min(max(best.score, 0.0), 1.0)
        reasons.append(_ring_reason(f.receiver_rings))

    amount, count, mean = f.check.amount, f.sender_count, f.sender_mean
    if count == 0:
        reasons.append(
            reason(
                ReasonCode.SENDER_NO_HISTORY, "the sender has no earlier transfers", {"count": 0}
            )
        )
    elif amount > p.amount_multiple * mean:
        keep *= 1.0 - p.amount_weight
        reasons.append(
            reason(
                ReasonCode.AMOUNT_UNUSUAL,
                f"amount {amount:g} is more than {p.amount_multiple:g}x the sender's "
                f"mean transfer ({mean:.2f} over {count})",
                {
                    "amount": amount,
                    "sender_mean": mean,
                    "sender_count": count,
                    "multiple": p.amount_multiple,
                },
            )
        )
    else:
        reasons.append(
            reason(
                ReasonCode.AMOUNT_USUAL,
                f"amount {amount:g} is in line with the sender's history "
                f"(mean {mean:.2f} over {count})",
                {"amount": amount, "sender_mean": mean, "sender_count": count},
            )
        )

    if f.shared_identity:
        keep *= 1.0 - p.identity_weight
        reasons.append(_identity_reason(f.shared_identity))

    risk = 1.0 - keep
    if f.check.src == f.check.dst:
        reasons.append(_same_account_reason())
    elif f.relation:
        risk *= 1.0 - p.related_discount
        reasons.append(
            reason(
                ReasonCode.ACCOUNTS_RELATED,
                "the two accounts are already related: " + ", ".join(f.relation),
                {"relations": f.relation},
            )
        )
    else:
        reasons.append(
            reason(
                ReasonCode.ACCOUNTS_UNRELATED,
                "no friendship, earlier transfer or common neighbour between the two accounts",
                {},
            )
        )

    risk = float(min(max(risk, 0.0), 1.0))
    decision = band(risk, p)
    limit = hard_limit(amount, count, p)
    if limit is not None:
        decision = "block"
        reasons.insert(0, limit)
    if f.degraded:
        reasons.append(
            reason(
                ReasonCode.STORE_UNAVAILABLE,
                "the graph store is unreachable: answered from the in-memory score table",
                {},
            )
        )
        missing = [a.account_id for a in (f.sender, f.receiver) if a.source == "unavailable"]
        if missing:
            if SEVERITY[p.unknown_policy] > SEVERITY[decision]:
                decision = p.unknown_policy
            reasons.append(
                reason(
                    ReasonCode.UNKNOWN_ACCOUNT_POLICY,
                    f"account(s) {', '.join(missing)} not in "
                    f"memory: configured policy '{p.unknown_policy}'",
                    {"accounts": missing, "policy": p.unknown_policy},
                )
            )
    return RiskDecision(
        decision=decision,
        risk=round(risk, 6),
        reasons=reasons,
        model_version=f.model_version,
        degraded=f.degraded,
        sender=f.sender,
        receiver=f.receiver,
        thresholds={"review": p.review_threshold, "block": p.block_threshold},
    )


def context_reasons(
    sender: AccountRisk,
    receiver: AccountRisk,
    receiver_rings: Sequence[RingInfo],
    shared_identity: list[str],
    same_account: bool,
    model_version: str,
) -> list[Reason]:
    """Who the two are, as ``decide`` words it: its RECEIVER_RISK, SENDER_RISK,
    RECEIVER_IN_RING, SHARED_IDENTITY and SAME_ACCOUNT lines, in its order, and nothing
    else. The learned decision quotes these as context; building only them skips the
    baseline's history and relation look-ups (``tests/unit/test_risk_context.py`` checks
    they equal ``decide``'s lines)."""
    out = [
        _party_reason(ReasonCode.RECEIVER_RISK, "receiver", receiver, model_version),
        _party_reason(ReasonCode.SENDER_RISK, "sender", sender, model_version),
    ]
    if receiver_rings:
        out.append(_ring_reason(receiver_rings))
    if shared_identity:
        out.append(_identity_reason(shared_identity))
    if same_account:
        out.append(_same_account_reason())
    return out


def _ring_reason(rings: Sequence[RingInfo]) -> Reason:
    best = max(rings, key=lambda r: r.score)
    return reason(
        ReasonCode.RECEIVER_IN_RING,
        f"the receiver belongs to {len(rings)} detected ring(s); strongest "
        f"{best.ring_id} ({best.kind}, score {best.score:.2f})",
        {
            "rings": [
                {"ring_id": r.ring_id, "kind": r.kind, "score": r.score, "status": r.status}
                for r in rings
            ]
        },
    )


def _identity_reason(links: list[str]) -> Reason:
    return reason(
        ReasonCode.SHARED_IDENTITY,
        "the two accounts share identity attributes: " + ", ".join(links),
        {"links": links},
    )


def _same_account_reason() -> Reason:
    return reason(ReasonCode.SAME_ACCOUNT, "sender and receiver are the same account", {})


_HOW = {
    "table": "",
    "live": " (rescored after new data)",
    "inductive": " (scored from its neighbourhood)",
    "unavailable": "",
}


def _party_reason(code: ReasonCode, role: str, a: AccountRisk, version: str) -> Reason:
    if a.fraud_probability is None:
        return reason(
            code,
            f"the {role} {a.account_id} has no score in memory",
            {"account_id": a.account_id, "source": a.source},
        )
    evidence: dict[str, Any] = {
        "account_id": a.account_id,
        "fraud_probability": round(a.fraud_probability, 6),
        "social_credit": None if a.social_credit is None else round(a.social_credit, 4),
        "source": a.source,
        "model_version": version,
    }
    if a.inductive is not None:
        evidence["top_reasons"] = [
            {"code": r["code"], "message": r["message"]} for r in a.inductive.reasons[:3]
        ]
    how = _HOW[a.source]
    if a.pending:
        evidence["pending"] = True
        how += " (new ties since, queued for rescoring)"
    return reason(
        code,
        f"the {role}'s fraud probability is {a.fraud_probability:.3f}{how}",
        evidence,
    )
