"""``RiskEngine``: the champion's scores, the snapshot tables and the live overlays, wired to
the decision policy. Built once per champion model from one snapshot.

A decision for two known accounts touches neither the store nor torch: the champion's
calibrated fraud probability and social credit of every snapshot account come from one
full-graph forward at load, the ties and histories from ``SnapshotTables``.

Accounts the snapshot lacks are scored by the ``InductiveScorer`` from the store's current
edges (a few milliseconds) and that score is reused for ``risk.inductive_cache_s`` (a new
receiver is typically asked about many times in a row; HTTP ingest touching the account
drops it at once, ties written to the store by other means count once it expires). HTTP
ingest calls ``record_ties``: the new ties join small in-memory overlays at once (pair
evidence: friends, earlier transfers, shared identity). The touched accounts are rescored the
same way and kept as overrides (``live``), so a new transfer or friendship changes the next
decision without a retrain: inside the request (``rescore``, ``rescore_mode=sync``) or soon
after by the serving's background ``Rescorer`` (``score_accounts`` then ``keep_scores``).
While an account waits for it, ``pending`` holds its id: its earlier live score is dropped
(it predates the new tie) and its table score answers, marked ``pending``. A reload builds a
new engine from a new snapshot, which already holds what the overlays held.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Container, Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import orjson

from creditgraph.config import RiskSettings
from creditgraph.domain import Reason, Ring, Snapshot
from creditgraph.errors import ModelNotReady
from creditgraph.registry import ModelRegistry
from creditgraph.services.champion import load_champion
from creditgraph.services.inductive import InductiveScore, InductiveScorer
from creditgraph.services.risk import policy as risk_policy
from creditgraph.services.risk.learned import decide_learned
from creditgraph.services.risk.live import Overlay, TtlCache
from creditgraph.services.risk.policy import AccountRisk, Facts, RiskDecision, TransferCheck
from creditgraph.services.risk.tables import FRIENDS, RECEIVED, SENT, RingInfo, SnapshotTables
from creditgraph.services.transfers.scorer import PreparedScore, TransferScorer
from creditgraph.store.base import GraphStore

F64Array = np.ndarray[Any, np.dtype[np.float64]]


@dataclass(frozen=True, slots=True)
class PendingDecision:
    """A learned decision waiting for the booster's margin (``RiskEngine.begin``)."""

    scorer: TransferScorer
    check: TransferCheck
    sender: AccountRisk
    receiver: AccountRisk
    context: list[Reason]
    prepared: PreparedScore


class RiskEngine:
    """Champion + snapshot tables + live overlays for decisions; see the module docstring."""

    def __init__(
        self,
        scorer: InductiveScorer,
        snapshot: Snapshot,
        fraud_probability: F64Array,
        social_credit: F64Array,
        rings: Sequence[Ring],
        policy: RiskSettings,
        transfers: TransferScorer | None = None,
    ) -> None:
        self.scorer = scorer
        #: The learned transfer model; None: the hand-weighted policy decides.
        self.transfers = transfers
        self.policy = policy
        self.model_version = scorer.model_version
        self.loaded_at = time.time()
        self.tables = SnapshotTables(snapshot, rings)
        self.account_ids = self.tables.account_ids
        self.index = self.tables.index
        self.fraud_probability = fraud_probability
        self.social_credit = social_credit
        self._overlay = Overlay()
        self._lock = threading.Lock()
        #: Ids queued for background rescoring (the serving's ``Rescorer``): new ties of
        #: theirs are written and in the overlays, not yet in their score.
        self.pending: Container[str] = frozenset()
        #: Request-time inductive scores as JSON bytes rather than objects: a tuple of atoms
        #: is invisible to the cyclic collector, whereas tens of thousands of reason dicts
        #: made each full collection tens of ms.
        self._recent: TtlCache[bytes] = TtlCache(
            lambda: self.policy.inductive_cache_s, lambda: self.policy.inductive_cache_size
        )

    # -- building ------------------------------------------------------------------------------
    @classmethod
    def load(cls, store: GraphStore, registry: ModelRegistry, policy: RiskSettings) -> RiskEngine:
        """The champion over a fresh snapshot; ``ModelNotReady`` without a champion."""
        champion = load_champion(registry)
        artifact = champion.artifact
        snapshot = store.snapshot()
        if snapshot.num_accounts == 0:
            raise ModelNotReady("the store holds no accounts: import some first")
        features = artifact.features(snapshot)
        scores = artifact.score(features)
        if features.account_ids != snapshot.account_ids:
            raise ModelNotReady("feature rows are not in snapshot order")  # a broken invariant
        scorer = InductiveScorer.build(artifact, champion.version, snapshot)
        # The first requests after a (re)load would each wait on cold store pages: read
        # them once here instead (under a second per 200k accounts, docs/benchmarks.md).
        store.warm_request_pages()
        fraud = np.asarray(scores.fraud_probability, dtype=np.float64)
        rings = store.list_rings()
        transfers = (
            TransferScorer.build(
                store,
                registry.root / "transfer",
                snapshot,
                rings,
                dict(zip(snapshot.account_ids, fraud.tolist(), strict=True)),
                policy.transfer_reasons,
            )
            if policy.transfer_model
            else None
        )
        return cls(
            scorer,
            snapshot,
            fraud,
            np.asarray(scores.social_credit, dtype=np.float64),
            rings,
            policy,
            transfers,
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
                pending=account_id in self.pending,
            )
        if store is None:
            return AccountRisk(account_id, None, None, "unavailable")
        blob = self._recent.get(account_id)
        if blob is not None:
            s = InductiveScore(**orjson.loads(blob))
        else:
            s = self.scorer.score_new(account_id, store)
            self._recent.put(account_id, orjson.dumps(asdict(s), option=orjson.OPT_SERIALIZE_NUMPY))
        return AccountRisk(account_id, s.fraud_probability, s.social_credit, "inductive", s)

    # -- the decision ------------------------------------------------------------------------------
    def decide(self, check: TransferCheck, store: GraphStore | None) -> RiskDecision:
        """Decide on ``check``; ``store`` None means degraded (answer from memory only)."""
        begun = self.begin(check, store)
        if isinstance(begun, RiskDecision):
            return begun
        return self.finish(begun, begun.scorer.margin(begun.prepared))

    def begin(
        self, check: TransferCheck, store: GraphStore | None
    ) -> RiskDecision | PendingDecision:
        """``decide``, but for a learned answer everything before the booster: the
        ``PendingDecision`` that ``finish`` completes with the booster's raw margin (which
        ``TransferScorer.margins`` gives for several at once)."""
        sender = self.account_risk(check.src, store)
        receiver = self.account_risk(check.dst, store)
        i, j = self.index.get(check.src), self.index.get(check.dst)
        bits = self.tables.ties_between(i, j)
        same = check.src == check.dst
        shared = self.shared_identity(check.src, check.dst, bits)
        rings = self.rings_of(check.dst)
        degraded = store is None or "unavailable" in (sender.source, receiver.source)
        t = self.transfers
        if t is not None and not degraded:
            # The baseline's account lines only, as context: its decision is not needed.
            context = risk_policy.context_reasons(
                sender, receiver, rings, shared, same, self.model_version
            )
            ts = check.timestamp if check.timestamp is not None else time.time()
            prepared = t.prepare(
                check.src,
                check.dst,
                check.amount,
                ts,
                check.channel,
                check.attributes,
                sender.fraud_probability,
                receiver.fraud_probability,
            )
            return PendingDecision(t, check, sender, receiver, context, prepared)
        total, count = self.tables.sent(i)
        extra = self._overlay.sent.get(check.src)
        if extra is not None:
            total, count = total + extra[0], count + extra[1]
        facts = Facts(
            check=check,
            sender=sender,
            receiver=receiver,
            receiver_rings=rings,
            sender_count=count,
            sender_mean=total / count if count else 0.0,
            shared_identity=shared,
            relation=[] if same else self.relation(check.src, check.dst, bits),
            degraded=degraded,
            model_version=self.model_version,
        )
        return risk_policy.decide(facts, self.policy)  # the named baseline, and the fallback

    def finish(self, pending: PendingDecision, margin: float) -> RiskDecision:
        """The transfer model's decision from the booster's raw ``margin``; the baseline's
        account lines stay as context."""
        t, check = pending.scorer, pending.check
        scored = t.finish(pending.prepared, margin)
        learned = decide_learned(scored, check.amount, self.policy, t.version)
        return RiskDecision(
            decision=learned.decision,
            risk=round(learned.probability, 6),
            reasons=[*learned.reasons, *pending.context],
            model_version=f"{self.model_version}/{t.version}",
            degraded=False,
            sender=pending.sender,
            receiver=pending.receiver,
            policy="learned",
            thresholds=learned.thresholds,
        )

    def record_transfers(self, rows: Iterable[tuple[str, str, float, float]]) -> None:
        """Transfers that were made (src, dst, amount, ts): the transfer model's aggregates."""
        if self.transfers is not None:
            for src, dst, amount, ts in rows:
                self.transfers.record(src, dst, amount, ts)

    def rings_of(self, account_id: str) -> list[RingInfo]:
        """The detected rings (not dismissed) ``account_id`` belongs to."""
        return self.tables.rings.get(account_id, [])

    def shared_identity(self, a: str, b: str, bits: int | None = None) -> list[str]:
        """Link types other than FRIEND joining ``a`` and ``b`` (shared device, address...);
        ``bits``: the pair table's entry for the two when the caller has it."""
        if bits is None:
            bits = self.tables.ties_between(self.index.get(a), self.index.get(b))
        return sorted(self._overlay.identity_links(a, b) | set(self.tables.identity_links(bits)))

    def relation(self, a: str, b: str, bits: int | None = None) -> list[str]:
        """How ``a`` and ``b`` are socially related: friends, earlier transfers, a common
        friend or transfer partner."""
        out: list[str] = []
        ov = self._overlay
        i, j = self.index.get(a), self.index.get(b)
        if bits is None:
            bits = self.tables.ties_between(i, j)
        if bits & FRIENDS or ov.friends_of(a, b):
            out.append("friends")
        if bits & (SENT | RECEIVED) or ov.transferred(a, b):
            out.append("earlier transfers")
        # A direct tie is one of the two above; otherwise, a friend or partner in common.
        if not out and self._common_neighbour(a, b, i, j):
            out.append("common neighbour")
        return out

    def _common_neighbour(self, a: str, b: str, i: int | None, j: int | None) -> bool:
        ov = self._overlay
        na = ov.neighbours.get(a, set())
        nb = ov.neighbours.get(b, set())
        if na & nb:
            return True
        if i is not None and j is not None and self.tables.share_neighbour(i, j):
            return True
        # A live tie of one side to a snapshot neighbour of the other.
        for mine, other in ((na, j), (nb, i)):
            if other is not None and mine:
                row = set(self.tables.row(other).tolist())
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
        """Add new ties to the overlays (transfers as (src, dst, amount); links (a, b, type))
        and drop the request-time scores of their ends, whose neighbourhood just changed."""
        transfers, links = list(transfers), list(links)
        with self._lock:
            self._recent.discard(a for src, dst, _ in transfers for a in (src, dst))
            self._recent.discard(a for x, y, _ in links for a in (x, y))
            self._overlay.add(transfers, links)

    def rescore(self, account_ids: Sequence[str], store: GraphStore) -> list[str]:
        """Rescore ``account_ids`` from the store's current state and keep the results."""
        scored = self.score_accounts(account_ids, store)
        self.keep_scores(scored)
        return [a for a, _ in scored]

    def score_accounts(
        self, account_ids: Sequence[str], store: GraphStore
    ) -> list[tuple[str, InductiveScore]]:
        """``account_ids`` (once each) scored from the store's current state; nothing kept."""
        ids = list(dict.fromkeys(account_ids))
        return list(zip(ids, self.scorer.score_many(ids, store), strict=True))

    def keep_scores(self, scored: Iterable[tuple[str, InductiveScore]]) -> None:
        """Keep these as the accounts' live scores (they include every tie written so far)."""
        scored = list(scored)
        with self._lock:
            for a, s in scored:
                self._overlay.scores[a] = s
        self._recent.discard([a for a, _ in scored])

    def drop_live(self, account_ids: Iterable[str]) -> None:
        """Drop the live scores of accounts whose ties changed after them (queued for
        rescoring): an answer must not call a score "rescored after new data" that
        predates the newest tie."""
        with self._lock:
            for a in account_ids:
                self._overlay.scores.pop(a, None)

    def forget(self, account_ids: Sequence[str]) -> list[str]:
        """Drop what the engine holds under these ids (erased people): their table rows can
        no longer be found, live ties and scores and cached scores go. The rows stay in the
        arrays, without an id, until the next reload builds tables without them. Returns
        the ids that were known."""
        known = []
        with self._lock:
            for a in account_ids:
                if self.index.pop(a, None) is not None or a in self._overlay.scores:
                    known.append(a)
                self._overlay.forget(a)
                self.tables.rings.pop(a, None)
        self._recent.discard(account_ids)
        return known

    def held_ids(self) -> list[str]:
        """Every account id the engine can answer for from memory."""
        return [*self.index, *self._overlay.scores, *(str(k) for k in self._recent)]

    def live_accounts(self) -> int:
        return len(self._overlay.scores)


def check_store(store: GraphStore) -> None:
    """A cheap round trip; ``StoreUnavailable`` when the store does not answer."""
    store.missing_accounts(["__creditgraph_probe__"])
