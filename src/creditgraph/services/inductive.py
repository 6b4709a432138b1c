"""One account scored now, from the store's current state (``ml.scorer`` does the maths).

``InductiveScorer`` pairs the champion's ``InductiveModel`` (built once from a snapshot)
with the store: ``score_new`` reads the account and its edges and hands them to the model,
so accounts the snapshot lacks, and accounts whose ties changed since, are scored in
milliseconds without a retrain. ``score`` answers for a snapshot account from memory alone.
"""

from __future__ import annotations

from collections.abc import Sequence

from creditgraph.domain import Account, GraphEdge, Snapshot
from creditgraph.errors import NotFound
from creditgraph.ml.artifact import ModelArtifact
from creditgraph.ml.inductive import DEFAULT_FANOUTS
from creditgraph.ml.scorer import InductiveModel, InductiveScore
from creditgraph.registry import ModelRegistry
from creditgraph.services.champion import load_champion
from creditgraph.store.base import GraphStore

__all__ = ["InductiveScore", "InductiveScorer", "load_inductive_scorer"]


class InductiveScorer:
    """The champion over a snapshot, scoring single accounts; read-only after ``build``, so
    one instance serves concurrent requests."""

    def __init__(self, model: InductiveModel) -> None:
        self.model = model
        self.model_version = model.model_version

    @classmethod
    def build(
        cls,
        artifact: ModelArtifact,
        model_version: str,
        snapshot: Snapshot,
        *,
        fanouts: Sequence[int] = DEFAULT_FANOUTS,
        seed: int = 0,
    ) -> InductiveScorer:
        """The scorer for ``artifact`` (registered as ``model_version``) over ``snapshot``."""
        return cls(InductiveModel(artifact, model_version, snapshot, fanouts=fanouts, seed=seed))

    @property
    def num_accounts(self) -> int:
        return self.model.num_accounts

    @property
    def account_ids(self) -> list[str]:
        """The snapshot's account ids, in the model's row order."""
        return self.model.account_ids

    def knows(self, account_id: str) -> bool:
        """Whether ``account_id`` is in the snapshot (``score`` can take it)."""
        return self.model.knows(account_id)

    def score(self, account_id: str) -> InductiveScore:
        """A snapshot account from memory; ``NotFound`` for one the snapshot lacks."""
        return self.model.score(account_id)

    def score_new(
        self, account_id: str, store: GraphStore, *, as_of: float | None = None
    ) -> InductiveScore:
        """Score ``account_id`` from the store's current edges and attributes (any id: an
        account the store does not know is scored from priors); see ``InductiveModel``."""
        try:
            account: Account | None = store.account_attributes(account_id)
        except NotFound:
            account = None
        edges = store.adjacent([account_id]) if account is not None else []
        return self.model.score_local(account_id, account, edges, as_of=as_of)

    def score_many(
        self, account_ids: Sequence[str], store: GraphStore, *, as_of: float | None = None
    ) -> list[InductiveScore]:
        """``score_new`` of each id (duplicates once, input order), with one ``adjacent``
        call for all of them inside one read view: the background rescorer's batch. Each
        account's edges are the batch's edges touching it, in the store's order, so every
        score equals its ``score_new``."""
        ids = list(dict.fromkeys(account_ids))
        accounts: dict[str, Account | None] = {}
        with store.read_view():
            for a in ids:
                try:
                    accounts[a] = store.account_attributes(a)
                except NotFound:
                    accounts[a] = None
            present = [a for a in ids if accounts[a] is not None]
            edges = store.adjacent(present) if present else []
        mine: dict[str, list[GraphEdge]] = {a: [] for a in present}
        for e in edges:
            for end in (e.src, e.dst) if e.src != e.dst else (e.src,):
                got = mine.get(end)
                if got is not None:
                    got.append(e)
        return [self.model.score_local(a, accounts[a], mine.get(a, []), as_of=as_of) for a in ids]


def load_inductive_scorer(
    store: GraphStore,
    registry: ModelRegistry,
    *,
    fanouts: Sequence[int] = DEFAULT_FANOUTS,
    seed: int = 0,
) -> InductiveScorer:
    """The champion over a fresh snapshot of ``store``; ``ModelNotReady`` without one."""
    champion = load_champion(registry)
    return InductiveScorer.build(
        champion.artifact, champion.version, store.snapshot(), fanouts=fanouts, seed=seed
    )
