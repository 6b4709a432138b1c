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
    beside it, each step timed (wall and this process's CPU: the CPU figure barely moves
    with other jobs on the machine), on the same snapshot in the same process, after one
    read of the store file so neither path pays a cold page cache."""
    assert engine.transfers is not None
    categorical = engine.transfers.model.categorical
    snapshot = store.snapshot()
    rings = store.list_rings()
    fraud_p = dict(zip(engine.account_ids, engine.fraud_probability.tolist(), strict=True))
    path = getattr(store, "path", None)
    if isinstance(path, Path) and path.exists():
        with path.open("rb") as f:
            while f.read(1 << 24):
                pass
    steps: dict[str, tuple[float, float]] = {}
    clock: list[float] = []

    def tick(name: str | None) -> None:
        now = (time.perf_counter(), time.process_time())
        if name is not None:
            steps[name] = (now[0] - clock[0], now[1] - clock[1])
        clock[:] = now

    tick(None)
    arrays = store.transfer_arrays(snapshot.account_ids)
    tick("columnar.read_arrays")
    index = {a: i for i, a in enumerate(arrays.account_ids)}
    pairs = ColumnarPairs.build(snapshot, rings, fraud_p, index)
    tick("columnar.pair_context")
    state = ColumnarHistory.build(arrays, pairs, categorical, snapshot.created_at)
    tick("columnar.aggregates")
    n = state.transfers
    del arrays, pairs, state
    if old_path:
        tick(None)
        log = store.transfer_log()
        tick("reference.transfer_log")
        ctx = PairContext.build(snapshot, rings, fraud_p)
        tick("reference.pair_context")
        HistoryState.from_log(log, ctx, categorical)
        tick("reference.aggregates")
    out: dict[str, Any] = {"transfers": n}
    for prefix in ("columnar", "reference"):
        mine = {k.split(".")[1]: v for k, v in steps.items() if k.startswith(prefix + ".")}
        if mine:
            out[prefix] = {
                "wall_s": {k: round(v[0], 2) for k, v in mine.items()},
                "cpu_s": {k: round(v[1], 2) for k, v in mine.items()},
                "total_wall_s": round(sum(v[0] for v in mine.values()), 2),
                "total_cpu_s": round(sum(v[1] for v in mine.values()), 2),
            }
    return out


def booster_row_cost(engine: RiskEngine) -> dict[str, float]:
    """CPU µs of one request's booster call: the raw margin (what an allow answer needs)
    and TreeSHAP (review and block), with LightGBM's default threads and with one."""
    assert engine.transfers is not None
    model = engine.transfers.model
    x = np.random.default_rng(0).random((1, len(model.feature_names)))
    out: dict[str, float] = {}
    for name, threads in (("default_threads", None), ("one_thread", 1)):
        calls = (("margin", model.margin, 1000), ("treeshap", model.contributions, 200))
        for kind, fn, reps in calls:
            fn(x, threads)
            t = time.process_time()
            for _ in range(reps):
                fn(x, threads)
            out[f"{kind}_{name}_cpu_us"] = round((time.process_time() - t) / reps * 1e6, 1)
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
        "booster_one_row": booster_row_cost(engine),
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
