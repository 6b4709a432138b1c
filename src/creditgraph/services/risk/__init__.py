"""Pre-transfer risk decisions: allow, review or block, with reasons, in milliseconds.

The one door: ``RiskEngine`` (``engine``) and the types of a decision. Inside:
``tables`` (lookups built from a snapshot), ``live`` (overlays of new ties, the TTL cache),
``policy`` (the decision itself, a pure function: read it to know why a transfer was
blocked) and ``engine`` (wires them to the champion's scores and the store).
"""

from __future__ import annotations

from creditgraph.services.risk.engine import PendingDecision, RiskEngine, check_store
from creditgraph.services.risk.live import TtlCache
from creditgraph.services.risk.policy import (
    SEVERITY,
    AccountRisk,
    Decision,
    RiskDecision,
    TransferCheck,
    band,
)

__all__ = [
    "SEVERITY",
    "AccountRisk",
    "Decision",
    "PendingDecision",
    "RiskDecision",
    "RiskEngine",
    "TransferCheck",
    "TtlCache",
    "band",
    "check_store",
]
