"""Pre-transfer risk decisions: allow, review or block, with reasons, in milliseconds.

``RiskEngine`` is built once per champion model from one snapshot and keeps in memory what
the hot path reads, so a decision for two known accounts touches neither the store nor torch:

- the champion's calibrated fraud probability and social credit of every snapshot account
  (one full-graph forward at load);
- an undirected adjacency (CSR of friendships and transfers) for "do the two share a
  neighbour?", sorted pair keys for friendships, earlier transfers and identity links
  (SHARES_DEVICE and the like), and each sender's transfer history (count and mean amount);
- which detected rings each account belongs to (``store.list_rings`` at load).

Accounts the snapshot lacks are scored by the ``InductiveScorer`` from the store's current
edges (a few milliseconds) and that score is reused for ``risk_inductive_cache_s`` (a new
receiver is typically asked about many times in a row; HTTP ingest touching the account
drops it at once, ties written to the store by other means count once it expires). HTTP
ingest calls ``refresh``: the touched accounts are rescored
the same way and kept as overrides, and the new ties join small in-memory overlays, so a new
transfer or friendship changes the next decision without a retrain. A reload builds a new
engine from a new snapshot, which already holds what the overlays held.

The decision (all weights and thresholds in ``Settings``, ``risk_*``): a noisy-or of the
receiver's fraud probability, the sender's (weighted), the receiver's best ring score
(weighted), an unusual amount (weighted) and identity links between the two (weighted); a
social relation between them (friends, earlier transfers, a common friend or partner) takes a
share off. ``block`` at or above the block threshold,
``review`` at or above the review threshold, else ``allow``. When the store is unreachable and
an account is not in memory, the configured policy decides (never less severe than the rest).
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np
import orjson
import scipy.sparse as sp

from creditgraph.config import Settings
from creditgraph.domain import FRIEND, TRANSFER, IntArray, Ring, Snapshot
from creditgraph.errors import ModelNotReady
from creditgraph.ml.artifact import load_artifact
from creditgraph.registry import ModelRegistry
from creditgraph.services.inductive import InductiveScore, InductiveScorer
from creditgraph.store.base import GraphStore

Decision = Literal["allow", "review", "block"]
SEVERITY: dict[Decision, int] = {"allow": 0, "review": 1, "block": 2}

RECEIVER_RISK = "RECEIVER_RISK"
SENDER_RISK = "SENDER_RISK"
RECEIVER_IN_RING = "RECEIVER_IN_RING"
AMOUNT_UNUSUAL = "AMOUNT_UNUSUAL"
AMOUNT_USUAL = "AMOUNT_USUAL"
SENDER_NO_HISTORY = "SENDER_NO_HISTORY"
RELATED = "ACCOUNTS_RELATED"
UNRELATED = "ACCOUNTS_UNRELATED"
SHARED_IDENTITY = "SHARED_IDENTITY"
STORE_UNAVAILABLE = "STORE_UNAVAILABLE"
UNKNOWN_ACCOUNT_POLICY = "UNKNOWN_ACCOUNT_POLICY"
SAME_ACCOUNT = "SAME_ACCOUNT"
#: Rows longer than this are sampled (their CSR order) for the common-neighbour check.
NEIGHBOUR_CAP = 2_000
#: Ring statuses that do not count against the receiver.
IGNORED_RING_STATUSES = frozenset({"dismissed"})


@dataclass(frozen=True)
class TransferCheck:
    """A transfer the payment service is about to make."""

    src: str
    dst: str
    amount: float
    currency: str | None = None
    timestamp: float | None = None


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


@dataclass(frozen=True)
class RiskDecision:
    """The answer to one transfer check."""

    decision: Decision
    risk: float
    reasons: list[dict[str, Any]]
    model_version: str
    degraded: bool
    sender: AccountRisk
    receiver: AccountRisk


@dataclass(frozen=True)
class RiskPolicy:
    """Thresholds and weights of the decision (from ``Settings``)."""

    review: float = 0.5
    block: float = 0.85
    sender_weight: float = 0.6
    ring_weight: float = 0.5
    amount_multiple: float = 5.0
    amount_weight: float = 0.2
    related_discount: float = 0.15
    identity_weight: float = 0.1
    unknown_policy: Decision = "review"
    #: Reuse of request-time inductive scores (``Settings.risk_inductive_cache_s``).
    inductive_cache_s: float = 30.0
    inductive_cache_size: int = 20_000

    @classmethod
    def from_settings(cls, s: Settings) -> RiskPolicy:
        return cls(
            review=s.risk_review_threshold,
            block=s.risk_block_threshold,
            sender_weight=s.risk_sender_weight,
            ring_weight=s.risk_ring_weight,
            amount_multiple=s.risk_amount_multiple,
            amount_weight=s.risk_amount_weight,
            related_discount=s.risk_related_discount,
            identity_weight=s.risk_identity_weight,
            unknown_policy=s.risk_unknown_policy,
            inductive_cache_s=s.risk_inductive_cache_s,
            inductive_cache_size=s.risk_inductive_cache_size,
        )

    def decide(self, risk: float) -> Decision:
        if risk >= self.block:
            return "block"
        if risk >= self.review:
            return "review"
        return "allow"


@dataclass(frozen=True)
class RingInfo:
    ring_id: str
    kind: str
    score: float
    status: str


@dataclass
class _Overlay:
    """What HTTP ingest added since the snapshot (small; replaced at reload)."""

    scores: dict[str, InductiveScore] = field(default_factory=dict)
    friends: set[tuple[str, str]] = field(default_factory=set)
    identity: dict[tuple[str, str], set[str]] = field(default_factory=lambda: defaultdict(set))
    transfers: set[tuple[str, str]] = field(default_factory=set)
    neighbours: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    sent: dict[str, tuple[float, int]] = field(default_factory=dict)


class RiskEngine:
    """Champion + snapshot tables for decisions; see the module docstring."""

    def __init__(
        self,
        scorer: InductiveScorer,
        snapshot: Snapshot,
        fraud_probability: np.ndarray[Any, np.dtype[np.float64]],
        social_credit: np.ndarray[Any, np.dtype[np.float64]],
        rings: Sequence[Ring],
        policy: RiskPolicy,
    ) -> None:
        self.scorer = scorer
        self.policy = policy
        self.model_version = scorer.model_version
        self.loaded_at = time.time()
        self.account_ids = list(snapshot.account_ids)
        self.index = {a: i for i, a in enumerate(self.account_ids)}
        self.fraud_probability = fraud_probability
        self.social_credit = social_credit
        n = len(self.account_ids)
        self._n = np.int64(n)
        rows: list[np.ndarray[Any, np.dtype[np.int64]]] = []
        cols: list[np.ndarray[Any, np.dtype[np.int64]]] = []
        # Every tie between two snapshot accounts in one sorted table of ordered pair keys
        # (i * n + j) with a bit per kind of tie, so a decision answers "friends? earlier
        # transfers either way? which identity links?" with one binary search.
        keys: list[np.ndarray[Any, np.dtype[np.int64]]] = []
        bits: list[np.ndarray[Any, np.dtype[np.int64]]] = []

        def tie(src: IntArray, dst: IntArray, forward: int, backward: int) -> None:
            keys.extend([src * n + dst, dst * n + src])
            bits.extend([np.full(len(src), forward), np.full(len(src), backward)])

        self._identity_bits: dict[str, int] = {}
        for rel, es in sorted(snapshot.edges.items()):
            if not len(es):
                continue
            if rel == FRIEND:
                tie(es.src, es.dst, _FRIENDS, _FRIENDS)
            elif rel == TRANSFER:
                tie(es.src, es.dst, _SENT, _RECEIVED)
            else:
                if len(self._identity_bits) == 58:  # bits 3..60 of an int64
                    raise ModelNotReady("more than 58 identity link types: pair table is full")
                bit = self._identity_bits[rel] = _FIRST_IDENTITY << len(self._identity_bits)
                tie(es.src, es.dst, bit, bit)
                continue  # a shared device is no sign of trust: not a social neighbour
            rows += [es.src, es.dst]
            cols += [es.dst, es.src]
        self._pair_keys, self._pair_bits = _pair_table(keys, bits)
        r = np.concatenate(rows) if rows else np.zeros(0, np.int64)
        c = np.concatenate(cols) if cols else np.zeros(0, np.int64)
        adj = sp.csr_matrix((np.ones(len(r), np.int8), (r, c)), shape=(n, n))
        adj.sum_duplicates()
        self._indptr = adj.indptr.astype(np.int64)
        self._indices = adj.indices.astype(np.int64)
        tr = snapshot.edges.get(TRANSFER)
        if tr is not None and len(tr) and tr.count is not None and tr.total_amount is not None:
            self._sent_total = np.bincount(tr.src, tr.total_amount, minlength=n).astype(np.float64)
            self._sent_count = np.bincount(tr.src, tr.count, minlength=n).astype(np.int64)
        else:
            self._sent_total = np.zeros(n, np.float64)
            self._sent_count = np.zeros(n, np.int64)
        self.rings: dict[str, list[RingInfo]] = defaultdict(list)
        for ring in rings:
            if ring.status in IGNORED_RING_STATUSES:
                continue
            info = RingInfo(ring.ring_id, ring.kind, float(ring.score), ring.status)
            for m in ring.members:
                self.rings[m].append(info)
        self._overlay = _Overlay()
        self._lock = threading.Lock()
        #: account -> (monotonic time scored, score as JSON): request-time inductive scores,
        #: oldest first (insertion order), so eviction drops the entry closest to expiry. JSON
        #: bytes rather than objects: a tuple of atoms is invisible to the cyclic collector,
        #: whereas tens of thousands of reason dicts made each full collection tens of ms.
        self._recent: dict[str, tuple[float, bytes]] = {}

    # -- building ------------------------------------------------------------------------------
    @classmethod
    def load(cls, store: GraphStore, registry: ModelRegistry, policy: RiskPolicy) -> RiskEngine:
        """The champion over a fresh snapshot; ``ModelNotReady`` without a champion."""
        version = registry.champion_version()
        if version is None:
            raise ModelNotReady("no champion model: train one first (creditgraph train)")
        artifact = load_artifact(registry.path(version))
        snapshot = store.snapshot()
        if snapshot.num_accounts == 0:
            raise ModelNotReady("the store holds no accounts: import some first")
        features = artifact.features(snapshot)
        scores = artifact.score(features)
        if features.account_ids != snapshot.account_ids:
            raise ModelNotReady("feature rows are not in snapshot order")  # a broken invariant
        scorer = InductiveScorer.build(artifact, version, snapshot)
        return cls(
            scorer,
            snapshot,
            np.asarray(scores.fraud_probability, dtype=np.float64),
            np.asarray(scores.social_credit, dtype=np.float64),
            store.list_rings(),
            policy,
        )

    # -- scores ----------------------------------------------------------------------------------
    def knows(self, account_id: str) -> bool:
        return account_id in self.index or account_id in self._overlay.scores

    def account_risk(self, account_id: str, store: GraphStore | None) -> AccountRisk:
        """The account's score: live override, table row, or inductive from ``store``.

        With ``store`` None (degraded) an account not in memory comes back ``unavailable``;
        ``StoreUnavailable`` from the store propagates.
        """
        live = self._overlay.scores.get(account_id)
        if live is not None:
            return AccountRisk(account_id, live.fraud_probability, live.social_credit, "live", live)
        i = self.index.get(account_id)
        if i is not None:
            return AccountRisk(
                account_id,
                float(self.fraud_probability[i]),
                float(self.social_credit[i]),
                "table",
            )
        if store is None:
            return AccountRisk(account_id, None, None, "unavailable")
        s = self._recently_scored(account_id)
        if s is None:
            s = self.scorer.score_new(account_id, store)
            self._remember(account_id, s)
        return AccountRisk(account_id, s.fraud_probability, s.social_credit, "inductive", s)

    def _recently_scored(self, account_id: str) -> InductiveScore | None:
        ttl = self.policy.inductive_cache_s
        if ttl <= 0:
            return None
        with self._lock:
            hit = self._recent.get(account_id)
            if hit is None:
                return None
            if time.monotonic() - hit[0] >= ttl:
                del self._recent[account_id]
                return None
        return InductiveScore(**orjson.loads(hit[1]))

    def _remember(self, account_id: str, score: InductiveScore) -> None:
        if self.policy.inductive_cache_s <= 0:
            return
        blob = orjson.dumps(asdict(score), option=orjson.OPT_SERIALIZE_NUMPY)
        with self._lock:
            self._recent.pop(account_id, None)  # re-inserted last: the newest entry
            self._recent[account_id] = (time.monotonic(), blob)
            while len(self._recent) > self.policy.inductive_cache_size:
                del self._recent[next(iter(self._recent))]

    def _forget(self, account_ids: Iterable[str]) -> None:
        """Drop request-time scores whose neighbourhood just changed (caller holds the lock)."""
        for a in account_ids:
            self._recent.pop(a, None)

    # -- the decision ------------------------------------------------------------------------------
    def decide(self, check: TransferCheck, store: GraphStore | None) -> RiskDecision:
        """Decide on ``check``; ``store`` None means degraded (answer from memory only)."""
        p = self.policy
        degraded = store is None
        sender = self.account_risk(check.src, store)
        receiver = self.account_risk(check.dst, store)
        degraded = degraded or "unavailable" in (sender.source, receiver.source)
        reasons: list[dict[str, Any]] = []
        keep = 1.0  # running product of (1 - contribution): risk = 1 - keep

        if receiver.fraud_probability is not None:
            keep *= 1.0 - receiver.fraud_probability
        reasons.append(_party_reason(RECEIVER_RISK, "receiver", receiver, self.model_version))
        if sender.fraud_probability is not None:
            keep *= 1.0 - p.sender_weight * sender.fraud_probability
        reasons.append(_party_reason(SENDER_RISK, "sender", sender, self.model_version))

        rings = self.rings.get(check.dst, [])
        if rings:
            best = max(rings, key=lambda r: r.score)
            keep *= 1.0 - p.ring_weight * min(max(best.score, 0.0), 1.0)
            reasons.append(
                _reason(
                    RECEIVER_IN_RING,
                    f"the receiver belongs to {len(rings)} detected ring(s); strongest "
                    f"{best.ring_id} ({best.kind}, score {best.score:.2f})",
                    {
                        "rings": [
                            {
                                "ring_id": r.ring_id,
                                "kind": r.kind,
                                "score": r.score,
                                "status": r.status,
                            }
                            for r in rings
                        ]
                    },
                )
            )

        count, mean = self._history(check.src)
        if count == 0:
            reasons.append(
                _reason(SENDER_NO_HISTORY, "the sender has no earlier transfers", {"count": 0})
            )
        elif check.amount > p.amount_multiple * mean:
            keep *= 1.0 - p.amount_weight
            reasons.append(
                _reason(
                    AMOUNT_UNUSUAL,
                    f"amount {check.amount:g} is more than {p.amount_multiple:g}x the sender's "
                    f"mean transfer ({mean:.2f} over {count})",
                    {
                        "amount": check.amount,
                        "sender_mean": mean,
                        "sender_count": count,
                        "multiple": p.amount_multiple,
                    },
                )
            )
        else:
            reasons.append(
                _reason(
                    AMOUNT_USUAL,
                    f"amount {check.amount:g} is in line with the sender's history "
                    f"(mean {mean:.2f} over {count})",
                    {"amount": check.amount, "sender_mean": mean, "sender_count": count},
                )
            )

        bits = self._ties_between(self.index.get(check.src), self.index.get(check.dst))
        shared = self.shared_identity(check.src, check.dst, bits)
        if shared:
            keep *= 1.0 - p.identity_weight
            reasons.append(
                _reason(
                    SHARED_IDENTITY,
                    "the two accounts share identity attributes: " + ", ".join(shared),
                    {"links": shared},
                )
            )

        risk = 1.0 - keep
        if check.src == check.dst:
            reasons.append(_reason(SAME_ACCOUNT, "sender and receiver are the same account", {}))
        else:
            relation = self.relation(check.src, check.dst, bits)
            if relation:
                risk *= 1.0 - p.related_discount
                reasons.append(
                    _reason(
                        RELATED,
                        "the two accounts are already related: " + ", ".join(relation),
                        {"relations": relation},
                    )
                )
            else:
                reasons.append(
                    _reason(
                        UNRELATED,
                        "no friendship, earlier transfer or common neighbour "
                        "between the two accounts",
                        {},
                    )
                )

        risk = float(min(max(risk, 0.0), 1.0))
        decision = p.decide(risk)
        if degraded:
            reasons.append(
                _reason(
                    STORE_UNAVAILABLE,
                    "the graph store is unreachable: answered from the in-memory score table",
                    {},
                )
            )
            missing = [a.account_id for a in (sender, receiver) if a.source == "unavailable"]
            if missing:
                if SEVERITY[p.unknown_policy] > SEVERITY[decision]:
                    decision = p.unknown_policy
                reasons.append(
                    _reason(
                        UNKNOWN_ACCOUNT_POLICY,
                        f"account(s) {', '.join(missing)} not in "
                        f"memory: configured policy '{p.unknown_policy}'",
                        {"accounts": missing, "policy": p.unknown_policy},
                    )
                )
        return RiskDecision(
            decision=decision,
            risk=round(risk, 6),
            reasons=reasons,
            model_version=self.model_version,
            degraded=degraded,
            sender=sender,
            receiver=receiver,
        )

    def _history(self, account_id: str) -> tuple[int, float]:
        """(transfers sent, mean amount) from the snapshot plus live ingest."""
        i = self.index.get(account_id)
        total, count = (
            (float(self._sent_total[i]), int(self._sent_count[i])) if i is not None else (0.0, 0)
        )
        extra = self._overlay.sent.get(account_id)
        if extra is not None:
            total += extra[0]
            count += extra[1]
        return count, (total / count if count else 0.0)

    def _ties_between(self, i: int | None, j: int | None) -> int:
        """The pair table's bits for snapshot accounts ``i`` -> ``j`` (0 if either is None)."""
        if i is None or j is None:
            return 0
        key = i * self._n + j
        pos = int(self._pair_keys.searchsorted(key))
        if pos < len(self._pair_keys) and int(self._pair_keys[pos]) == int(key):
            return int(self._pair_bits[pos])
        return 0

    def shared_identity(self, a: str, b: str, bits: int | None = None) -> list[str]:
        """Link types other than FRIEND joining ``a`` and ``b`` (shared device, address...);
        ``bits``: ``_ties_between`` of the two when the caller has it."""
        if bits is None:
            bits = self._ties_between(self.index.get(a), self.index.get(b))
        out = set(self._overlay.identity.get((min(a, b), max(a, b)), ()))
        out.update(rel for rel, bit in self._identity_bits.items() if bits & bit)
        return sorted(out)

    def relation(self, a: str, b: str, bits: int | None = None) -> list[str]:
        """How ``a`` and ``b`` are socially related: friends, earlier transfers, a common
        friend or transfer partner."""
        out: list[str] = []
        ov = self._overlay
        i, j = self.index.get(a), self.index.get(b)
        if bits is None:
            bits = self._ties_between(i, j)
        if bits & _FRIENDS or (min(a, b), max(a, b)) in ov.friends:
            out.append("friends")
        if bits & (_SENT | _RECEIVED) or (a, b) in ov.transfers or (b, a) in ov.transfers:
            out.append("earlier transfers")
        # A direct tie is one of the two above; otherwise, a friend or partner in common.
        if not out and self._common_neighbour(a, b, i, j):
            out.append("common neighbour")
        return out

    def _row(self, i: int) -> np.ndarray[Any, np.dtype[np.int64]]:
        row: np.ndarray[Any, np.dtype[np.int64]] = self._indices[
            self._indptr[i] : self._indptr[i + 1]
        ]
        return row[:NEIGHBOUR_CAP]

    def _common_neighbour(self, a: str, b: str, i: int | None, j: int | None) -> bool:
        ov = self._overlay
        na = ov.neighbours.get(a, set())
        nb = ov.neighbours.get(b, set())
        if na & nb:
            return True
        if i is not None and j is not None:
            ri, rj = self._row(i), self._row(j)
            # Typical rows are a few dozen ids: Python sets beat intersect1d's sort there.
            if len(ri) + len(rj) < 256:
                if not set(ri.tolist()).isdisjoint(rj.tolist()):
                    return True
            elif len(np.intersect1d(ri, rj, assume_unique=True)):
                return True
        # A live tie of one side to a snapshot neighbour of the other.
        for mine, other in ((na, j), (nb, i)):
            if other is not None and mine:
                row = set(self._row(other).tolist())
                # tuple(): one C call, so an ingest thread adding ties cannot change the set
                # while this loop walks it.
                if any(self.index.get(x, -1) in row for x in tuple(mine)):
                    return True
        return False

    # -- live updates --------------------------------------------------------------------------
    def record_ties(
        self,
        *,
        transfers: Iterable[tuple[str, str, float]] = (),
        links: Iterable[tuple[str, str, str]] = (),
    ) -> None:
        """Add new ties to the overlays (transfers as (src, dst, amount); links (a, b, type))."""
        ov = self._overlay
        transfers, links = list(transfers), list(links)
        with self._lock:
            self._forget(a for src, dst, _ in transfers for a in (src, dst))
            self._forget(a for x, y, _ in links for a in (x, y))
            for src, dst, amount in transfers:
                ov.transfers.add((src, dst))
                total, count = ov.sent.get(src, (0.0, 0))
                ov.sent[src] = (total + amount, count + 1)
                ov.neighbours[src].add(dst)
                ov.neighbours[dst].add(src)
            for a, b, kind in links:
                if kind != FRIEND:
                    ov.identity[(min(a, b), max(a, b))].add(kind)
                    continue
                ov.friends.add((min(a, b), max(a, b)))
                ov.neighbours[a].add(b)
                ov.neighbours[b].add(a)

    def rescore(self, account_ids: Sequence[str], store: GraphStore) -> list[str]:
        """Rescore ``account_ids`` from the store's current state and keep the results."""
        done = []
        for a in account_ids:
            s = self.scorer.score_new(a, store)
            with self._lock:
                self._overlay.scores[a] = s
                self._recent.pop(a, None)
            done.append(a)
        return done

    def live_accounts(self) -> int:
        return len(self._overlay.scores)


#: Bits of the pair table (``RiskEngine._ties_between``); identity link types take the bits
#: from ``_FIRST_IDENTITY`` up, one per type.
_FRIENDS, _SENT, _RECEIVED, _FIRST_IDENTITY = 1, 2, 4, 8


def _pair_table(
    keys: list[np.ndarray[Any, np.dtype[np.int64]]],
    bits: list[np.ndarray[Any, np.dtype[np.int64]]],
) -> tuple[np.ndarray[Any, np.dtype[np.int64]], np.ndarray[Any, np.dtype[np.int64]]]:
    """Sorted unique pair keys and the OR of the bits given for each."""
    if not keys:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    k, b = np.concatenate(keys), np.concatenate(bits)
    order = np.argsort(k, kind="stable")
    k, b = k[order], b[order]
    starts = np.flatnonzero(np.r_[True, k[1:] != k[:-1]])
    return k[starts], np.bitwise_or.reduceat(b, starts)


def _reason(code: str, message: str, evidence: dict[str, Any]) -> dict[str, Any]:
    return {"code": code, "message": message, "evidence": evidence}


def _party_reason(code: str, role: str, a: AccountRisk, version: str) -> dict[str, Any]:
    if a.fraud_probability is None:
        return _reason(
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
    how = {
        "table": "",
        "live": " (rescored after new data)",
        "inductive": " (scored from its neighbourhood)",
        "unavailable": "",
    }[a.source]
    if a.inductive is not None:
        evidence["top_reasons"] = [
            {"code": r["code"], "message": r["message"]} for r in a.inductive.reasons[:3]
        ]
    return _reason(
        code,
        f"the {role}'s fraud probability is {a.fraud_probability:.3f}{how}",
        evidence,
    )


def check_store(store: GraphStore) -> None:
    """A cheap round trip; ``StoreUnavailable`` when the store does not answer."""
    store.missing_accounts(["__creditgraph_probe__"])
