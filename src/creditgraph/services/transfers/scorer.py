"""The transfer model at request time: ``TransferScorer`` holds the trained model and the
serving state after the stored log (``columnar.ColumnarHistory``, built from the store's
transfer columns), and scores one transfer: P(fraud) from the booster's raw margin, one
call of LightGBM's single-row C path (``ml.fast_row``). TreeSHAP contributions (~1 ms a
row) are computed by ``TransferScore.explain``
only when asked: the decision asks for review and block answers, whose reasons name the top
factors; an allow answer is the calibrated margin alone. The decision policy over that score
is ``services.risk.learned``.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from creditgraph.domain import Ring, Snapshot
from creditgraph.errors import NotFound
from creditgraph.ml.fast_row import FastRow
from creditgraph.ml.transfer_model import TransferModel
from creditgraph.services.transfers.artifact import load_current
from creditgraph.services.transfers.columnar import ColumnarHistory, ColumnarPairs
from creditgraph.services.transfers.features import NUMERIC, HistoryState
from creditgraph.store.base import GraphStore

_S_FRAUD_P = NUMERIC.index("s_fraud_p")
_R_FRAUD_P = NUMERIC.index("r_fraud_p")
_S_OUT_COUNT = NUMERIC.index("s_out_count")


@dataclass(frozen=True)
class TransferScore:
    """P(fraud) of one transfer, with what it was computed from. ``contributions`` is None
    until ``explain`` computed them (or the scorer was asked to, ``explain=True``)."""

    probability: float
    features: dict[str, Any]
    contributions: np.ndarray[Any, Any] | None
    names: list[str]
    sender_count: int
    design: np.ndarray[Any, Any] | None = None
    explainer: Callable[[np.ndarray[Any, Any]], np.ndarray[Any, Any]] | None = None

    def explain(self) -> np.ndarray[Any, Any]:
        """The TreeSHAP contributions to the margin (one per input, then the bias)."""
        if self.contributions is not None:
            return self.contributions
        assert self.explainer is not None
        assert self.design is not None
        return self.explainer(self.design)


class TransferScorer:
    """The transfer model plus the aggregates it reads at request time."""

    def __init__(
        self, model: TransferModel, state: ColumnarHistory | HistoryState, version: str
    ) -> None:
        self.model = model
        self.state = state
        self.version = version
        self._lock = threading.Lock()
        # One request's row through the booster without ``Booster.predict``'s set-up.
        ncol = len(model.feature_names)
        self._margin = FastRow(model.booster, ncol)
        self._contrib = FastRow(model.booster, ncol, contrib=True)

    @classmethod
    def build(
        cls,
        store: GraphStore,
        root: Path,
        snapshot: Snapshot,
        rings: Sequence[Ring],
        fraud_p: Mapping[str, float],
    ) -> TransferScorer | None:
        """The current transfer model over the store's log, or None when none is trained
        (the hand-weighted policy then decides)."""
        try:
            version, model = load_current(root)
        except NotFound:
            return None
        state = serving_state(store, snapshot, rings, fraud_p, model.categorical)
        return cls(model, state, version)

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
        rows = self.state.features(src, dst, amount, ts, channel, attributes)
        x = rows.numeric
        # Request-time account scores (live, inductive) beat the context's table.
        if sender_p is not None:
            x[0, _S_FRAUD_P] = sender_p
        if receiver_p is not None:
            x[0, _R_FRAUD_P] = receiver_p
        design = self.model.matrix(x, rows.categorical)
        if explain:
            contrib: np.ndarray[Any, Any] | None = self._contrib(design)
            assert contrib is not None
            margin = float(contrib.sum())
        else:
            contrib = None
            margin = float(self._margin(design)[0])
        prob = 1.0 / (
            1.0 + math.exp(-max(min(self.model.calib_a * margin + self.model.calib_b, 700), -700))
        )
        names = self.model.feature_names
        row: list[float] = x[0].tolist()  # Python floats, as float(x[0, j]) gives them
        values: dict[str, Any] = dict(zip(NUMERIC, row, strict=True))
        for c in self.model.categorical:
            values[f"cat_{c}"] = rows.categorical[c][0]
        return TransferScore(
            prob, values, contrib, names, int(row[_S_OUT_COUNT]), design, self._contrib
        )


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
