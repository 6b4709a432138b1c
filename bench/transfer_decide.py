"""Cost of the learned transfer decision beside the hand-weighted one, in-process.

    .venv/bin/python bench/transfer_decide.py --data /tmp/t13/ds42 --requests 3000

Uses a data dir with a champion and a transfer model (``creditgraph demo``, or ``train``,
``score``, ``rings detect``, ``transfers train``). Loads the risk engine once, times the
transfer model's serving-state build step by step (with ``--old-path`` also the old path of
Python objects per transfer beside it, same process), then asks
``RiskEngine.decide`` about random pairs of known accounts, alternating the learned decision
and the baseline (the same engine with its transfer model switched off), one thread. No HTTP:
what the route adds is measured by bench/risk_api.py. Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from creditgraph.config import Settings
from creditgraph.registry import ModelRegistry
from creditgraph.services.risk import RiskEngine, TransferCheck
from creditgraph.services.transfers.columnar import ColumnarHistory, ColumnarPairs
from creditgraph.services.transfers.features import HistoryState, PairContext
from creditgraph.store.base import GraphStore
from creditgraph.store.factory import open_store


def pct(xs: list[float]) -> dict[str, float]:
    a = np.asarray(xs) * 1e3
    return {
        "p50_ms": round(float(np.percentile(a, 50)), 3),
        "p99_ms": round(float(np.percentile(a, 99)), 3),
    }


def serving_state_build(store: GraphStore, engine: RiskEngine, old_path: bool) -> dict[str, Any]:
    """Seconds to build the transfer model's serving state after the store's log: the
    columnar path the engine uses (``transfer_arrays`` + arrays), and with ``old_path`` the
    reference path of objects (``transfer_log`` + ``PairContext`` + ``HistoryState``)
    beside it, each step timed, on the same snapshot in the same process."""
    assert engine.transfers is not None
    categorical = engine.transfers.model.categorical
    snapshot = store.snapshot()
    rings = store.list_rings()
    fraud_p = dict(zip(engine.account_ids, engine.fraud_probability.tolist(), strict=True))
    out: dict[str, Any] = {}
    t = time.perf_counter()
    arrays = store.transfer_arrays(snapshot.account_ids)
    t_read = time.perf_counter() - t
    t = time.perf_counter()
    index = {a: i for i, a in enumerate(arrays.account_ids)}
    pairs = ColumnarPairs.build(snapshot, rings, fraud_p, index)
    t_pairs = time.perf_counter() - t
    t = time.perf_counter()
    state = ColumnarHistory.build(arrays, pairs, categorical, snapshot.created_at)
    t_hist = time.perf_counter() - t
    out["transfers"] = state.transfers
    out["columnar_s"] = {
        "read_arrays": round(t_read, 2),
        "pair_context": round(t_pairs, 2),
        "aggregates": round(t_hist, 2),
        "total": round(t_read + t_pairs + t_hist, 2),
    }
    del arrays, pairs, state
    if old_path:
        t = time.perf_counter()
        log = store.transfer_log()
        t_read = time.perf_counter() - t
        t = time.perf_counter()
        ctx = PairContext.build(snapshot, rings, fraud_p)
        t_pairs = time.perf_counter() - t
        t = time.perf_counter()
        HistoryState.from_log(log, ctx, categorical)
        t_hist = time.perf_counter() - t
        out["reference_objects_s"] = {
            "transfer_log": round(t_read, 2),
            "pair_context": round(t_pairs, 2),
            "aggregates": round(t_hist, 2),
            "total": round(t_read + t_pairs + t_hist, 2),
        }
    return out


def main(data: Path, n: int, old_path: bool) -> dict[str, object]:
    torch.set_num_threads(1)
    s = Settings(data_dir=data)
    store = open_store(s)
    t0 = time.perf_counter()
    engine = RiskEngine.load(store, ModelRegistry(s.models_dir), s.risk)
    load_s = time.perf_counter() - t0
    assert engine.transfers is not None, "no transfer model under the data dir"
    build = serving_state_build(store, engine, old_path)
    ids = engine.account_ids
    rng = random.Random(0)
    learned_t: list[float] = []
    base_t: list[float] = []
    decisions = {"learned": {}, "baseline": {}}  # type: dict[str, dict[str, int]]
    transfers = engine.transfers
    for i in range(2 * n):
        check = TransferCheck(
            rng.choice(ids), rng.choice(ids), round(rng.lognormvariate(4, 1.2), 2)
        )
        learned = i % 2 == 0
        engine.transfers = transfers if learned else None
        t = time.perf_counter()
        d = engine.decide(check, store)
        (learned_t if learned else base_t).append(time.perf_counter() - t)
        key = "learned" if learned else "baseline"
        decisions[key][d.decision] = decisions[key].get(d.decision, 0) + 1
    engine.transfers = transfers
    store.close()
    return {
        "data": str(data),
        "accounts": len(ids),
        "transfers_in_log": build["transfers"],
        "engine_load_s": round(load_s, 2),
        "serving_state_build": build,
        "requests_each": n,
        "learned": pct(learned_t),
        "baseline": pct(base_t),
        "decisions": decisions,
        "loadavg": os.getloadavg(),
    }


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--requests", type=int, default=3000)
    ap.add_argument(
        "--old-path",
        action="store_true",
        help="also build the serving state the old way (objects per transfer), for comparison",
    )
    args = ap.parse_args()
    print(json.dumps(main(args.data, args.requests, args.old_path)))
