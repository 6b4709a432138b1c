"""Score one account in milliseconds: the champion on the account's capped neighbourhood.

Over ~450 lines on purpose: one computation (a local graph built, evaluated, attributed), whose
steps share the model's in-memory tables; the approximations it makes are listed below.

Batch scoring covers the accounts of the last snapshot. The payment path also meets accounts
that snapshot has not seen, and accounts whose ties changed since. ``InductiveModel`` is
built once from the champion artifact and a snapshot and keeps in memory what the hot path
reads: the standardised feature row of every snapshot account and, per relation, a CSR of
incoming neighbours in a fixed pseudo-random order (``ml.inductive.CSR``). No full-graph
work happens per request, and nothing here reads a store: ``services.inductive`` reads the
account and its edges and hands them in.

- ``score(account_id)``: an account of the snapshot, from its snapshot row and a capped
  sample of its neighbourhood (``fanouts`` per hop and relation, default 15 then 10). With
  no cap binding this is exactly the batch computation (same floats up to summation order).
- ``score_local(account_id, account, edges)``: from the account's CURRENT attributes and
  edges (as ``store.get_account`` and ``store.adjacent`` return them); its engineered
  features are ``build_features``' values for it, computed from those edges directly
  (``_own_features``; bit-equal to ``build_features`` on a one-account snapshot, which
  ``generic_own_row`` still runs), and its neighbours contribute their in-memory snapshot
  rows and samples. Used for accounts the snapshot lacks and for known accounts whose ties
  changed since.

Approximations of ``score_local`` (and why):
- Transfer timing features (``transfer_active_days``, ``_per_day``, ``_recency_days``,
  ``_first_after_open_days``) need per-transfer timestamps, which ``adjacent`` does not return;
  ``ml.inductive.approximate_time_features`` takes their fitted medians (per-day velocity
  from the account's exact transfer count over the median active days).
- Neighbours keep their snapshot features and neighbourhoods: a new tie is seen from the
  account's side, plus (for a new account) the echo of the account in a neighbour's own
  aggregation when that neighbour's sample is not capped, which is where the batch would put
  it exactly. Neighbours that are themselves missing from the snapshot have no row to send:
  they count in degrees and features but send no message (a reason says so).
- An account the store does not know at all is scored from priors: every feature missing
  (the fitted medians with missing indicators, as the batch treats missing values).
- The account's age is measured at the snapshot's ``as_of`` (the batch's reference time), or
  at its creation when that is later, so ages stay on the scale the model was trained on.

Reasons are cheap: one backward pass through the small computation graph gives the same
own-feature and direct-tie attributions as ``ml.explain`` (for the fraud logit), plus codes
saying how the score was obtained. Relation occlusion (one forward per relation) is left to
batch scoring and ``explain``.
"""

from __future__ import annotations

import zlib
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import torch

from creditgraph.domain import (
    Account,
    EdgeSet,
    GraphEdge,
    IntArray,
    Reason,
    ReasonCode,
    Snapshot,
    index_of,
    reason,
)
from creditgraph.errors import InvalidInput, NotFound
from creditgraph.ml.artifact import ModelArtifact
from creditgraph.ml.center import ServedCenter
from creditgraph.ml.features import DAY, F32Array, build_features
from creditgraph.ml.inductive import (
    CSR,
    DEFAULT_FANOUTS,
    CenterModel,
    ComputationGraph,
    Edges,
    approximate_time_features,
    edge_keys,
    fanout,
    localise,
    sample,
)
from creditgraph.ml.model import RelationalGNN
from creditgraph.ml.train import social_credit

RECOMPUTED = ReasonCode.FEATURES_FROM_STORE
SAMPLED = ReasonCode.NEIGHBOURHOOD_SAMPLED
UNSEEN_NEIGHBOURS = ReasonCode.NEIGHBOURS_NOT_IN_SNAPSHOT
UNKNOWN_ACCOUNT = ReasonCode.ACCOUNT_NOT_IN_STORE
#: Every code an inductive score can carry.
INDUCTIVE_REASON_CODES = frozenset(
    {
        ReasonCode.FEATURE_RAISES_RISK,
        ReasonCode.FEATURE_LOWERS_RISK,
        ReasonCode.NEIGHBOUR_RAISES_RISK,
        ReasonCode.NEIGHBOUR_LOWERS_RISK,
        ReasonCode.RELATION_RAISES_RISK,
        ReasonCode.RELATION_LOWERS_RISK,
        ReasonCode.NO_RELATIONSHIPS,
        RECOMPUTED,
        SAMPLED,
        UNSEEN_NEIGHBOURS,
        UNKNOWN_ACCOUNT,
    }
)


@dataclass(frozen=True)
class InductiveScore:
    """One account's score from its capped neighbourhood."""

    account_id: str
    fraud_probability: float
    social_credit: float
    model_version: str
    #: ``{code, message, weight, evidence}`` as batch reasons; weight 0 for informational ones.
    reasons: list[Reason]
    #: True when the account's own features were computed from the store (``score_local``),
    #: False when they are its snapshot row (``score``).
    inductive: bool
    #: True when a fan-out cap bound somewhere in the computation graph.
    sampled: bool
    fraud_logit: float
    social_logit: float


class InductiveModel:
    """Champion + snapshot in memory, for one-account scoring (see the module docstring).

    Read-only once built; one instance may serve concurrent requests.
    """

    def __init__(
        self,
        artifact: ModelArtifact,
        model_version: str,
        snapshot: Snapshot,
        *,
        fanouts: Sequence[int] = DEFAULT_FANOUTS,
        seed: int = 0,
    ) -> None:
        """The model for ``artifact`` (registered as ``model_version``) over ``snapshot``:
        builds the in-memory tables, O(accounts + edges), once."""
        for hop in range(len(fanouts)):
            fanout(fanouts, hop)
        self.artifact = artifact
        self.model_version = model_version
        self.fanouts = tuple(int(f) for f in fanouts)
        self.seed = seed
        features = artifact.features(snapshot)
        served = artifact.served
        gnn = served.gnns.get(served.fraud) if artifact.is_gnn else None
        # The relational GNN has its own fast path; every other champion is evaluated on
        # the same sampled subgraph by ``ml.center.ServedCenter``.
        self.center_model: CenterModel | None = None
        self.served_center: ServedCenter | None = None
        if gnn is not None and isinstance(gnn.model, RelationalGNN):
            self.center_model = CenterModel(gnn.model)
            self.relations = list(gnn.model.relations)
            self.num_layers = gnn.model.num_layers
        else:
            self.served_center = ServedCenter(served, features.relations)
            self.relations = list(features.relations)
            self.num_layers = self.served_center.num_layers
        self.standardizer = served.standardizer
        self.account_ids = features.account_ids
        self._index = index_of(self.account_ids)
        self.x: F32Array = self.standardizer.transform(features.x, features.names)
        n = features.num_accounts
        self.csr: dict[str, CSR] = {}
        for rel in self.relations:
            if rel not in features.edge_index:
                continue
            ei = features.edge_index[rel].numpy()
            self.csr[rel] = CSR.build(ei[0], ei[1], features.edge_weight[rel].numpy(), n, seed)
        self.as_of = _reference_time(snapshot)
        self._directed = {rel for rel, es in snapshot.edges.items() if es.directed}
        self._store_relations = sorted(snapshot.edges)
        self._reverse = self._reverse_relations()
        #: True: ``score_local`` builds the account's own row by ``build_features`` on a
        #: one-account snapshot (the earlier path, for comparisons and tests).
        self.generic_own_row = False
        # Per-edge constants of ``_ties`` (a hub has tens of thousands of edges): transfer
        # weights log1p(count) computed as ``build_features`` does, over an int64 array.
        self._log1p_counts: list[float] = np.log1p(np.arange(1 << 12, dtype=np.int64)).tolist()
        self._directed_names = {
            (base, out): f"{base}_{'out' if out else 'in'}"
            for base in snapshot.edges
            for out in (True, False)
        }

    def _reverse_relations(self) -> dict[str, str]:
        """Per model relation, the one in which a neighbour sees the account back
        (``<REL>_out`` and ``<REL>_in`` of a directed store relation swap)."""
        out = {}
        for rel in self.relations:
            out[rel] = rel
            for base in self._directed:
                if rel == f"{base}_out":
                    out[rel] = f"{base}_in"
                elif rel == f"{base}_in":
                    out[rel] = f"{base}_out"
        return out

    @property
    def num_accounts(self) -> int:
        return len(self.account_ids)

    def knows(self, account_id: str) -> bool:
        """Whether ``account_id`` is in the snapshot (``score`` can take it)."""
        return account_id in self._index

    # -- known accounts ------------------------------------------------------------------------
    def score(self, account_id: str) -> InductiveScore:
        """A snapshot account from its snapshot row and capped neighbourhood; ``NotFound``
        for an account the snapshot lacks (use ``score_local``)."""
        i = self._index.get(account_id)
        if i is None:
            raise NotFound(f"account {account_id!r} is not in the scorer's snapshot")
        center = np.array([i], dtype=np.int64)
        drawn = sample(self.csr, center, self.fanouts, self.num_layers)
        degree = {rel: float(csr.degree[i]) for rel, csr in self.csr.items()}
        counts = {rel: float(csr.indptr[i + 1] - csr.indptr[i]) for rel, csr in self.csr.items()}
        return self._finish(
            account_id,
            i,
            None,
            drawn.edges,
            degree,
            sampled=drawn.truncated,
            notes=[],
            counts=counts,
        )

    # -- accounts as the store has them now ------------------------------------------------------
    def score_local(
        self,
        account_id: str,
        account: Account | None,
        edges: Sequence[GraphEdge],
        *,
        as_of: float | None = None,
    ) -> InductiveScore:
        """Score ``account_id`` from its current attributes (None: the store does not know
        it) and all its current edges.

        Works for any id: a snapshot account is re-read (its ties may have changed), a new
        one is scored against its neighbours' in-memory rows, and an unknown one is scored
        from priors. ``as_of`` (UNIX seconds) anchors its age; by default the snapshot's
        reference time, or the account's creation if later.
        """
        edges = list(edges)
        notes: list[Reason] = []
        if account is None:
            notes.append(
                _info(
                    UNKNOWN_ACCOUNT,
                    "the account is not in the store: scored from priors (every feature "
                    "at its typical value)",
                    {},
                )
            )
        created = np.nan if account is None or account.created_at is None else account.created_at
        ref = as_of if as_of is not None else max(self.as_of, float(np.nan_to_num(created)))
        row, approximated = self._own_row(account_id, account, edges, ref)
        if account is not None:
            notes.append(
                _info(
                    RECOMPUTED,
                    "features computed from the store's current edges"
                    + (f"; approximated: {', '.join(approximated)}" if approximated else ""),
                    {"approximated": approximated, "as_of": ref},
                )
            )

        i = self._index.get(account_id)
        key = self.num_accounts if i is None else i
        ties, degree, unseen, counts = self._ties(edges, account_id)
        if unseen:
            notes.append(
                _info(
                    UNSEEN_NEIGHBOURS,
                    f"{unseen} neighbour(s) are not in the snapshot and send no message",
                    {"neighbours": unseen},
                )
            )
        hash_key = key if i is not None else zlib.crc32(account_id.encode()) & 0x7FFFFFFF
        cap = fanout(self.fanouts, 0)
        sampled = False
        first_hop: dict[str, list[Edges]] = defaultdict(list)
        seeds: list[IntArray] = []
        for rel, (nbrs, weights) in ties.items():
            if len(nbrs) > cap:
                sampled = True
                order = np.argsort(
                    edge_keys(np.full(len(nbrs), hash_key), nbrs, self.seed) >> np.uint64(32),
                    kind="stable",
                )[:cap]
                nbrs, weights = nbrs[order], weights[order]
            first_hop[rel].append(Edges(nbrs, np.full(len(nbrs), key), weights))
            seeds.append(nbrs)
            if i is None:
                self._echo(first_hop, rel, nbrs, weights, key)
        if self.num_layers > 1 and seeds:
            drawn = sample(
                self.csr,
                np.concatenate(seeds),
                self.fanouts,
                self.num_layers - 1,
                first_hop=1,
                expanded=None if i is None else np.array([i]),
            )
            sampled |= drawn.truncated
            for rel, parts in drawn.edges.items():
                first_hop[rel].extend(parts)
        return self._finish(
            account_id,
            key,
            row,
            first_hop,
            degree,
            sampled=sampled,
            notes=notes,
            inductive=True,
            counts=counts,
        )

    def _own_row(
        self, account_id: str, account: Account | None, edges: list[GraphEdge], as_of: float
    ) -> tuple[F32Array, list[str]]:
        """The account's standardised row, with ``build_features``' values for it (computed
        from its edges directly: ``_own_features``; ``_own_features_generic`` is the
        one-account snapshot path it equals); returns the row and the names of approximated
        features."""
        if self.generic_own_row:
            raw = self._own_features_generic(account_id, account, edges, as_of)
        else:
            raw = self._own_features(account_id, account, edges, as_of)
        approximated: list[str] = []
        for rel in sorted(self._directed):
            prefix = rel.lower()
            transfers = raw.get(f"{prefix}_out_count", 0.0) + raw.get(f"{prefix}_in_count", 0.0)
            filled = approximate_time_features(self.standardizer, prefix, transfers)
            raw.update(filled)
            if transfers > 0:
                approximated += [k for k in filled if k in self.standardizer.names]
        names_out = list(raw)
        x = np.array([[raw[k] for k in names_out]], dtype=np.float32)
        return self.standardizer.transform(x, names_out)[0], approximated

    def _own_features(
        self, account_id: str, account: Account | None, edges: list[GraphEdge], as_of: float
    ) -> dict[str, float]:
        """``build_features``' raw columns of the account alone, in its column order, from
        its edges: the same sums in the same order (bit-equal to ``_own_features_generic``,
        tested), without building a snapshot, tensors and per-relation arrays for one row."""
        columns: dict[str, float] = {}
        if account is not None:
            names = sorted(account.features)
            values = np.full(len(names), np.nan)
            values[:] = [account.features[k] for k in names]
            sensitive = set(self.artifact.sensitive)
            for name, value in zip(names, values.tolist(), strict=True):
                if name not in sensitive:
                    columns[name] = value
            created = np.nan if account.created_at is None else float(account.created_at)
        else:
            created = np.nan

        def add(name: str, value: float) -> None:
            if name in columns:
                raise InvalidInput(
                    f"account {account_id!r}: account column {name!r} clashes with an "
                    "engineered feature"
                )
            columns[name] = value

        add("account_age_days", (as_of - created) / DAY)
        by_relation: dict[str, list[GraphEdge]] = defaultdict(list)
        for e in edges:
            by_relation[e.relation].append(e)
        for rel in sorted(set(self._store_relations) | set(by_relation)):
            rows = [e for e in by_relation.get(rel, []) if e.src != e.dst]
            if not (rel in self._directed or any(e.directed for e in by_relation.get(rel, []))):
                ends = [e.src == account_id for e in rows] + [e.dst == account_id for e in rows]
                add(f"degree_{rel}", float(sum(ends)))
                continue
            out_count = in_count = out_amount = in_amount = 0.0
            out_partners = in_partners = mutual = 0.0
            pairs = {(e.src, e.dst) for e in rows}
            for e in rows:  # edge order, one float64 sum each: as ``np.bincount``
                if e.src == account_id:
                    out_count += float(e.count)
                    out_amount += float(e.total_amount)
                    out_partners += 1.0
                    mutual += 1.0 if (e.dst, e.src) in pairs else 0.0
                if e.dst == account_id:
                    in_count += float(e.count)
                    in_amount += float(e.total_amount)
                    in_partners += 1.0
            partners = out_partners + in_partners - mutual
            volume = out_amount + in_amount
            prefix = rel.lower()
            for name, value in (
                ("out_count", out_count),
                ("in_count", in_count),
                ("out_amount", out_amount),
                ("in_amount", in_amount),
                ("out_partners", out_partners),
                ("in_partners", in_partners),
                ("partners", partners),
                ("reciprocity", mutual / partners if partners > 0 else 0.0),
                ("flow_balance", (out_amount - in_amount) / volume if volume > 0 else 0.0),
            ):
                add(f"{prefix}_{name}", value)
        # ``build_features`` stores float32: the same rounding.
        rounded = np.array(list(columns.values()), dtype=np.float32).astype(np.float64)
        return dict(zip(columns, rounded.tolist(), strict=True))

    def _own_features_generic(
        self, account_id: str, account: Account | None, edges: list[GraphEdge], as_of: float
    ) -> dict[str, float]:
        """The account's raw columns by ``build_features`` itself, on a snapshot of the
        account and its direct ties (the earlier path; ``_own_features`` equals it)."""
        others = sorted(({e.src for e in edges} | {e.dst for e in edges}) - {account_id})
        ids = [account_id, *others]
        pos = index_of(ids)
        names = sorted(account.features) if account is not None else []
        values = np.full((len(ids), len(names)), np.nan)
        if account is not None:
            values[0] = [account.features[k] for k in names]
        created = np.full(len(ids), np.nan)
        if account is not None and account.created_at is not None:
            created[0] = account.created_at
        by_relation: dict[str, list[GraphEdge]] = defaultdict(list)
        for e in edges:
            by_relation[e.relation].append(e)
        edge_sets = {}
        for rel in sorted(set(self._store_relations) | set(by_relation)):
            rows = by_relation.get(rel, [])
            src = np.array([pos[e.src] for e in rows], dtype=np.int64)
            dst = np.array([pos[e.dst] for e in rows], dtype=np.int64)
            directed = rel in self._directed or any(e.directed for e in rows)
            edge_sets[rel] = EdgeSet(
                relation=rel,
                directed=directed,
                src=src,
                dst=dst,
                count=np.array([e.count for e in rows], dtype=np.int64) if directed else None,
                total_amount=np.array([e.total_amount for e in rows], dtype=np.float64)
                if directed
                else None,
            )
        mini = Snapshot(
            account_ids=ids,
            feature_names=names,
            features=values,
            created_at=created,
            labels=np.full(len(ids), -1, dtype=np.int8),
            edges=edge_sets,
        )
        try:
            features = build_features(mini, self.artifact.sensitive, as_of=as_of)
        except InvalidInput as e:
            raise InvalidInput(f"account {account_id!r}: {e}") from e
        return dict(zip(features.names, features.x[0].astype(np.float64).tolist(), strict=True))

    def _ties(
        self, edges: list[GraphEdge], account_id: str
    ) -> tuple[dict[str, tuple[IntArray, F32Array]], dict[str, float], int, dict[str, float]]:
        """Per model relation the account's snapshot neighbours and edge weights (as in
        ``build_features``), its full weighted degrees, how many distinct neighbours the
        snapshot lacks, and its number of neighbours per relation (all of them)."""
        nbrs: dict[str, list[int]] = defaultdict(list)
        weights: dict[str, list[float]] = defaultdict(list)
        degree: dict[str, float] = defaultdict(float)
        counts: dict[str, float] = defaultdict(float)
        unseen: set[str] = set()
        log1p, names = self._log1p_counts, self._directed_names
        for e in edges:
            if e.src == e.dst:
                continue
            if e.directed:
                out = e.src == account_id
                rel = names.get((e.relation, out)) or f"{e.relation}_{'out' if out else 'in'}"
                other = e.dst if out else e.src
                c = e.count
                w = log1p[c] if 0 <= c < len(log1p) else float(np.log1p(np.array([c]))[0])
            else:
                rel = e.relation
                other = e.dst if e.src == account_id else e.src
                w = 1.0
            if rel not in self._reverse:
                continue
            degree[rel] += w
            counts[rel] += 1.0
            j = self._index.get(other)
            if j is None:
                unseen.add(other)
                continue
            nbrs[rel].append(j)
            weights[rel].append(w)
        ties = {
            rel: (np.array(nbrs[rel], dtype=np.int64), np.array(weights[rel], dtype=np.float32))
            for rel in nbrs
        }
        return ties, dict(degree), len(unseen), dict(counts)

    def _echo(
        self,
        edges: dict[str, list[Edges]],
        rel: str,
        nbrs: IntArray,
        weights: F32Array,
        key: int,
    ) -> None:
        """The new account as a neighbour of its neighbours, where the batch would have it
        exactly: in neighbours whose reverse-relation sample is not capped."""
        reverse = self._reverse[rel]
        csr = self.csr.get(reverse)
        if csr is None or self.num_layers < 2:
            return
        room = (csr.indptr[nbrs + 1] - csr.indptr[nbrs]) < fanout(self.fanouts, 1)
        if room.any():
            edges[reverse].append(Edges(np.full(int(room.sum()), key), nbrs[room], weights[room]))

    # -- shared ----------------------------------------------------------------------------------
    def _finish(
        self,
        account_id: str,
        key: int,
        row: F32Array | None,
        edges: dict[str, list[Edges]],
        degree: dict[str, float],
        *,
        sampled: bool,
        notes: list[Reason],
        inductive: bool = False,
        counts: dict[str, float] | None = None,
    ) -> InductiveScore:
        parts = [p for ps in edges.values() for p in ps]
        nodes = np.unique(
            np.concatenate(
                [np.array([key], dtype=np.int64)]
                + [p.sender for p in parts]
                + [p.receiver for p in parts]
            )
        )
        known = nodes[nodes < self.num_accounts]
        x = self.x[known]
        if key >= self.num_accounts:
            assert row is not None
            x = np.concatenate([x, row[None, :]])
        center = int(np.searchsorted(nodes, key))
        if row is not None and key < self.num_accounts:
            x[center] = row  # ``self.x[known]`` is a copy: the shared table stays as built
        relations = self.relations
        graph = ComputationGraph(
            torch.from_numpy(x),
            center,
            *localise(nodes, edges, relations),
            np.array([degree.get(rel, 0.0) for rel in relations], dtype=np.float32),
        )
        if self.center_model is not None:
            out = self.center_model(graph, attribute=True)
            fraud_logit, social_logit = out.fraud_logit, out.social_logit
            reasons = self._feature_reasons(out.contributions, x[center])
            if out.ties is not None:
                reasons += self._tie_reasons(*out.ties, nodes)
        else:
            assert self.served_center is not None

            def ids() -> list[str]:
                return [
                    self.account_ids[j] if j < self.num_accounts else account_id
                    for j in nodes.tolist()
                ]

            full = counts or {}
            scored = self.served_center(graph, ids, full)
            fraud_logit, social_logit = scored.fraud_logit, scored.social_logit
            reasons = self._feature_reasons(scored.contributions, x[center])
            reasons += self._relation_reasons(scored.relation_fraud, scored.relation_social, full)
        served = self.artifact.served
        fraud_p = float(served.fraud_calibrator(np.array([fraud_logit]))[0])
        credit = float(social_credit(served.social_calibrator(np.array([social_logit])))[0])
        if not any(r["code"].startswith(("NEIGHBOUR", "RELATION")) for r in reasons):
            reasons.append(
                _info(ReasonCode.NO_RELATIONSHIPS, "no relationships to judge the account by", {})
            )
        if sampled:
            reasons.append(
                _info(
                    SAMPLED,
                    f"neighbourhood sampled (at most {'/'.join(map(str, self.fanouts))} "
                    "neighbours per relation and hop)",
                    {"fanouts": list(self.fanouts)},
                )
            )
        return InductiveScore(
            account_id=account_id,
            fraud_probability=fraud_p,
            social_credit=credit,
            model_version=self.model_version,
            reasons=reasons + notes,
            inductive=inductive,
            sampled=sampled,
            fraud_logit=fraud_logit,
            social_logit=social_logit,
        )

    def _feature_reasons(
        self, contributions: F32Array | None, row: F32Array, top: int = 3
    ) -> list[Reason]:
        if contributions is None:
            return []
        names = self.standardizer.output_names
        first_indicator = len(self.standardizer.names)
        out = []
        for j in np.argsort(-np.abs(contributions), kind="stable")[:top].tolist():
            weight = float(contributions[j])
            if weight == 0.0:
                break
            indicator = j >= first_indicator
            feature = names[j].removesuffix("_missing") if indicator else names[j]
            out.append(
                reason(
                    ReasonCode.FEATURE_RAISES_RISK
                    if weight > 0
                    else ReasonCode.FEATURE_LOWERS_RISK,
                    f"{feature}{' (missing)' if indicator else ''} {_verb(weight)} the fraud risk",
                    {
                        "target": "fraud",
                        "feature": feature,
                        "standardised": float(row[j]),
                        "missing": indicator,
                    },
                    weight,
                )
            )
        return out

    def _relation_reasons(
        self,
        fraud: npt.NDArray[np.float64],
        social: npt.NDArray[np.float64],
        counts: dict[str, float],
        top: int = 2,
    ) -> list[Reason]:
        """The strongest relations for each score, as batch scoring words them."""
        out: list[Reason] = []
        for target, table, what in (
            ("fraud", fraud, "fraud risk"),
            ("social", social, "relationship risk"),
        ):
            present = [k for k, rel in enumerate(self.relations) if counts.get(rel, 0.0) > 0]
            for k in sorted(present, key=lambda k: -abs(table[k]))[:top]:
                weight, rel = float(table[k]), self.relations[k]
                n = int(counts[rel])
                out.append(
                    {
                        "code": ReasonCode.RELATION_RAISES_RISK
                        if weight > 0
                        else ReasonCode.RELATION_LOWERS_RISK,
                        "message": f"the {rel} relation ({n} neighbours) {_verb(weight)} "
                        f"the {what}",
                        "weight": weight,
                        "evidence": {"target": target, "relation": rel, "neighbours": n},
                    }
                )
        return out

    def _tie_reasons(
        self,
        senders: IntArray,
        relation: IntArray,
        values: F32Array,
        nodes: IntArray,
        top: int = 3,
    ) -> list[Reason]:
        effect: dict[int, float] = defaultdict(float)
        relations: dict[int, list[str]] = defaultdict(list)
        names = self.relations
        for s, k, v in zip(senders.tolist(), relation.tolist(), values.tolist(), strict=True):
            effect[s] += v
            relations[s].append(names[k])
        out = []
        for s in sorted(effect, key=lambda k: -abs(effect[k]))[:top]:
            weight = effect[s]
            other = self.account_ids[int(nodes[s])]
            out.append(
                reason(
                    ReasonCode.NEIGHBOUR_RAISES_RISK
                    if weight > 0
                    else ReasonCode.NEIGHBOUR_LOWERS_RISK,
                    f"tie to {other} ({', '.join(relations[s])}) {_verb(weight)} the fraud risk",
                    {"target": "fraud", "account_id": other, "relations": relations[s]},
                    weight,
                )
            )
        return out


def _reference_time(snapshot: Snapshot) -> float:
    """``build_features``' default ``as_of``: the latest transfer or account creation."""
    times = [es.last_ts for es in snapshot.edges.values() if es.last_ts is not None]
    finite = [t[np.isfinite(t)] for t in [*times, snapshot.created_at]]
    return max((float(t.max()) for t in finite if t.size), default=0.0)


def _info(code: ReasonCode, message: str, evidence: dict[str, Any]) -> Reason:
    return reason(code, message, evidence, 0.0)


def _verb(weight: float) -> str:
    return "raises" if weight > 0 else "lowers"
