"""The transfer model at request time: ``TransferScorer`` holds the trained model and the
serving state after the stored log (``columnar.ColumnarHistory``, built from the store's
transfer columns), and scores one transfer: P(fraud) from the booster's raw margin, one
call of LightGBM's single-row C path (``ml.fast_row``). Contributions to the margin are
computed by ``TransferScore.explain`` only when asked: the decision asks for review and
block answers, whose reasons name the top factors; an allow answer is the calibrated margin
alone. Two attributions (``RiskSettings.transfer_reasons``):

- ``path`` (default): path contributions (Saabas, ``ml.pathattr``): the leaf each tree
  sends the row to (one single-row C call) and a gather of per-leaf contribution vectors
  computed once at load, ~0.05 ms. Additive and exact in total like TreeSHAP (they sum to
  the raw margin), but a split's interaction is credited to the feature split on, so close
  factors can rank differently: measured on held-out rows, the top factor agrees with
  TreeSHAP on ~98 %, the set of three on ~60 % (``tests/api/test_transfer_model_api.py``
  asserts a floor, docs/benchmarks.md has the figures);
- ``treeshap``: LightGBM's exact TreeSHAP (``pred_contrib``), ~0.8 ms a row.

The decision policy over that score is ``services.risk.learned``; the decision itself never
depends on the attribution (P(fraud) comes from the raw margin either way).
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from creditgraph.domain import Ring, Snapshot
from creditgraph.errors import NotFound
from creditgraph.ml.fast_row import FastRow, FastRows
from creditgraph.ml.pathattr import leaf_table
from creditgraph.ml.transfer_model import TransferModel
from creditgraph.services.transfers.artifact import load_current
from creditgraph.services.transfers.columnar import ColumnarHistory, ColumnarPairs
from creditgraph.services.transfers.features import NUMERIC, HistoryState
from creditgraph.store.base import GraphStore

_S_FRAUD_P = NUMERIC.index("s_fraud_p")
_R_FRAUD_P = NUMERIC.index("r_fraud_p")
_S_OUT_COUNT = NUMERIC.index("s_out_count")
#: From this many rows one ``FastRows`` call beats a ``FastRow`` call per row: the matrix
#: call's ~12 µs of set-up against ~6 µs a row (300 trees, this machine kind).
_BATCH_FROM = 8


@dataclass(frozen=True)
class TransferScore:
    """P(fraud) of one transfer, with what it was computed from. ``contributions`` is None
    until ``explain`` computed them (or the scorer was asked to, ``explain=True``)."""

    probability: float
    #: The model's numeric inputs (one row, ``NUMERIC`` order) and categorical values.
    numeric: np.ndarray[Any, Any]
    categorical: dict[str, str | None]
    contributions: np.ndarray[Any, Any] | None
    names: list[str]
    sender_count: int
    design: np.ndarray[Any, Any] | None = None
    explainer: Callable[[np.ndarray[Any, Any]], np.ndarray[Any, Any]] | None = None
    #: How ``explain`` attributes: "path" or "treeshap" (see the module docstring).
    attribution: str = "treeshap"

    @property
    def features(self) -> dict[str, Any]:
        """The inputs by name (Python floats, as ``float(x[j])`` gives them; ``cat_<name>``
        for the categorical ones). Built on demand: only review and block answers, whose
        factors quote them, need it, and an allow answer is most of the traffic."""
        values: dict[str, Any] = dict(zip(NUMERIC, self.numeric.tolist(), strict=True))
        for c, v in self.categorical.items():
            values[f"cat_{c}"] = v
        return values

    def explain(self) -> np.ndarray[Any, Any]:
        """The contributions to the margin (one per input, then the bias), by
        ``attribution``."""
        if self.contributions is not None:
            return self.contributions
        assert self.explainer is not None
        assert self.design is not None
        return self.explainer(self.design)


class TransferScorer:
    """The transfer model plus the aggregates it reads at request time."""

    def __init__(
        self,
        model: TransferModel,
        state: ColumnarHistory | HistoryState,
        version: str,
        attribution: Literal["path", "treeshap"] = "path",
    ) -> None:
        self.model = model
        self.state = state
        self.version = version
        self.attribution = attribution
        self._lock = threading.Lock()
        # One request's row through the booster without ``Booster.predict``'s set-up.
        ncol = len(model.feature_names)
        self._margin = FastRow(model.booster, ncol)
        self._margins = FastRows(model.booster, ncol)
        self._contrib = FastRow(model.booster, ncol, contrib=True)
        self._leaves = FastRow(model.booster, ncol, leaves=True)
        # Path contributions: one group per model column, per leaf of every tree.
        self._paths = leaf_table(model.booster, np.arange(ncol, dtype=np.int64), ncol)
        self._explain = self.path_contributions if attribution == "path" else self._contrib

    def path_contributions(self, design: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
        """Path contributions of one design row to its raw margin: one per input, then the
        bias (the model's expected raw output), as TreeSHAP's layout; they sum to the
        margin."""
        leaves = self._leaves(design).astype(np.int64)
        table = self._paths
        out = np.empty(table.table.shape[1] + 1)
        out[:-1] = table.table.take(leaves + table.offset[: len(leaves)], axis=0).sum(axis=0)
        out[-1] = table.expected
        return out

    @classmethod
    def build(
        cls,
        store: GraphStore,
        root: Path,
        snapshot: Snapshot,
        rings: Sequence[Ring],
        fraud_p: Mapping[str, float],
        attribution: Literal["path", "treeshap"] = "path",
    ) -> TransferScorer | None:
        """The current transfer model over the store's log, or None when none is trained
        (the hand-weighted policy then decides)."""
        try:
            version, model = load_current(root)
        except NotFound:
            return None
        state = serving_state(store, snapshot, rings, fraud_p, model.categorical)
        return cls(model, state, version, attribution)

    def record(self, src: str, dst: str, amount: float, ts: float) -> None:
        """A transfer that was made (ingested): later requests see it in the aggregates."""
        with self._lock:
            self.state.add(src, dst, amount, ts)

    def score(
        self,
        src: str,
        dst: str,
        amount: float,
        ts: float,
        channel: str | None,
        attributes: Mapping[str, str],
        sender_p: float | None,
        receiver_p: float | None,
        *,
        explain: bool = False,
    ) -> TransferScore:
        """P(fraud) of the transfer; its contributions now only with ``explain`` (else
        ``TransferScore.explain`` computes them when a decision needs its reasons)."""
        prepared = self.prepare(src, dst, amount, ts, channel, attributes, sender_p, receiver_p)
        design = prepared.design
        if explain and self.attribution == "treeshap":
            contrib: np.ndarray[Any, Any] | None = self._contrib(design)
            assert contrib is not None
            margin = float(contrib.sum())
        else:
            contrib = self._explain(design) if explain else None
            margin = self.margin(prepared)
        return self.finish(prepared, margin, contrib)

    def prepare(
        self,
        src: str,
        dst: str,
        amount: float,
        ts: float,
        channel: str | None,
        attributes: Mapping[str, str],
        sender_p: float | None,
        receiver_p: float | None,
    ) -> PreparedScore:
        """``score`` up to the booster: the inputs and the design row."""
        rows = self.state.features(src, dst, amount, ts, channel, attributes)
        x = rows.numeric
        # Request-time account scores (live, inductive) beat the context's table.
        if sender_p is not None:
            x[0, _S_FRAUD_P] = sender_p
        if receiver_p is not None:
            x[0, _R_FRAUD_P] = receiver_p
        return PreparedScore(x, rows.categorical, self.model.matrix(x, rows.categorical))

    def margin(self, prepared: PreparedScore) -> float:
        """The booster's raw margin for one prepared row (LightGBM's single-row path)."""
        return float(self._margin(prepared.design)[0])

    def margins(self, prepared: Sequence[PreparedScore]) -> list[float]:
        """The raw margins of several prepared rows, in one booster call: each is bit for
        bit the margin ``score`` computes for its row alone."""
        if len(prepared) < _BATCH_FROM:
            return [self.margin(p) for p in prepared]
        out: list[float] = self._margins(np.vstack([p.design for p in prepared])).tolist()
        return out

    def finish(
        self,
        prepared: PreparedScore,
        margin: float,
        contrib: np.ndarray[Any, Any] | None = None,
    ) -> TransferScore:
        """``score`` from the booster's raw ``margin`` for ``prepared``."""
        x, categorical = prepared.numeric, prepared.categorical
        prob = 1.0 / (
            1.0 + math.exp(-max(min(self.model.calib_a * margin + self.model.calib_b, 700), -700))
        )
        return TransferScore(
            prob,
            x[0],
            {c: categorical[c][0] for c in self.model.categorical},
            contrib,
            self.model.feature_names,
            int(x[0, _S_OUT_COUNT]),
            prepared.design,
            self._explain,
            self.attribution,
        )


@dataclass(frozen=True, slots=True)
class PreparedScore:
    """One transfer's model inputs (one row, ``NUMERIC`` order, and the categorical values)
    and its design row, before the booster."""

    numeric: np.ndarray[Any, Any]
    categorical: Mapping[str, Sequence[str | None]]
    design: np.ndarray[Any, Any]


def serving_state(
    store: GraphStore,
    snapshot: Snapshot,
    rings: Sequence[Ring],
    fraud_p: Mapping[str, float],
    categorical: Sequence[str],
) -> ColumnarHistory:
    """The serving state after the store's log: its transfer columns coded by snapshot
    position, the snapshot's links and the rings, in arrays."""
    arrays = store.transfer_arrays(snapshot.account_ids)
    index = {a: i for i, a in enumerate(arrays.account_ids)}
    pairs = ColumnarPairs.build(snapshot, rings, fraud_p, index)
    return ColumnarHistory.build(arrays, pairs, categorical, snapshot.created_at)
