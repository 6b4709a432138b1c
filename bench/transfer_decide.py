"""Cost of the learned transfer decision beside the hand-weighted one, in-process.

    .venv/bin/python bench/transfer_decide.py --data /tmp/t13/ds42 --requests 3000

Uses a data dir with a champion and a transfer model (``creditgraph demo``, or ``train``,
``score``, ``rings detect``, ``transfers train``). Loads the risk engine once (timing the
transfer model's part: reading the log and building the per-account aggregates), then asks
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

import numpy as np
import torch

from creditgraph.config import Settings
from creditgraph.registry import ModelRegistry
from creditgraph.services.risk import RiskEngine, TransferCheck
from creditgraph.services.transfers.scorer import TransferScorer
from creditgraph.store.factory import open_store


def pct(xs: list[float]) -> dict[str, float]:
    a = np.asarray(xs) * 1e3
    return {
        "p50_ms": round(float(np.percentile(a, 50)), 3),
        "p99_ms": round(float(np.percentile(a, 99)), 3),
    }


def main(data: Path, n: int) -> dict[str, object]:
    torch.set_num_threads(1)
    s = Settings(data_dir=data)
    store = open_store(s)
    t0 = time.perf_counter()
    engine = RiskEngine.load(store, ModelRegistry(s.models_dir), s.risk)
    load_s = time.perf_counter() - t0
    assert engine.transfers is not None, "no transfer model under the data dir"
    t1 = time.perf_counter()
    TransferScorer.build(
        store,
        s.models_dir / "transfer",
        store.snapshot(),
        store.list_rings(),
        dict(zip(engine.account_ids, engine.fraud_probability.tolist(), strict=True)),
    )
    scorer_s = time.perf_counter() - t1
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
        "transfers_in_log": sum(a.out_n for a in transfers.state._acc.values()),
        "engine_load_s": round(load_s, 2),
        "transfer_scorer_build_s": round(scorer_s, 2),
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
    args = ap.parse_args()
    print(json.dumps(main(args.data, args.requests)))
