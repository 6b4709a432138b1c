"""CPU of one-transfer ``POST /v1/transfers`` batches, in-process, rescoring sync vs background.

    nice -n 19 .venv/bin/python bench/ingest_route.py --data /tmp/s5-15-soak/data --rounds 3

No HTTP server: each call goes through the app's whole ASGI stack (metrics, refusal audit,
body guard, bulkheads, the route, the audit line) as uvicorn would drive it, with a payment
key and a one-transfer batch between two random snapshot accounts (a fresh ``transfer_id``
each, so every batch writes), as ``bench/soak.py`` sends them. One app, one process: blocks
of ``--requests`` calls alternate between ``rescore_mode=sync`` (both ends rescored inside
the request) and ``background`` (queued; the worker thread rescores them), ``--rounds``
times, so the two are compared under the same load. Per block: the request's CPU µs per call
(the process's CPU minus the rescorer thread's), and for background the worker's CPU per
rescored account (its ``thread_time``), accounts rescored per account touched (coalescing),
and the drain time after the block. ``--score-many N``: also, in the same process and
alternating, CPU per account of ``score_new`` one by one vs ``score_many`` over batches of N
(the batched store reads). The data is copied first (ingest writes). Prints one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import time
from pathlib import Path
from typing import Any

import orjson

from risk_route import asgi_call


def thread_cpu_s(native_id: int | None) -> float:
    """CPU seconds (user + system, clock ticks) of one of this process's threads."""
    if native_id is None:
        return 0.0
    try:
        fields = Path(f"/proc/self/task/{native_id}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def score_many_vs_one(serving: Any, batch: int, rounds: int, seed: int) -> dict[str, Any]:
    """CPU ms per account: ``score_new`` per account vs ``score_many`` per batch, alternating."""
    engine, store = serving.engine, serving.store
    ids = list(engine.account_ids)
    rng = random.Random(seed + 1)
    engine.scorer.score_many(rng.sample(ids, 8), store)  # warm
    out: dict[str, list[float]] = {"one_by_one": [], "score_many": []}
    for _ in range(rounds):
        for kind in out:
            xs = rng.sample(ids, batch)
            t0 = time.process_time()
            if kind == "one_by_one":
                for a in xs:
                    engine.scorer.score_new(a, store)
            else:
                engine.scorer.score_many(xs, store)
            out[kind].append(round((time.process_time() - t0) / batch * 1e3, 2))
    return {"batch": batch, "cpu_ms_per_account": out}


async def measure(data: Path, n: int, rounds: int, seed: int, score_many: int) -> dict[str, Any]:
    import torch

    torch.set_num_threads(1)
    from creditgraph.api.app import create_app
    from creditgraph.api.keys import create_key
    from creditgraph.config import Settings

    # No ingest rate limit: the calls come back to back from one key.
    settings = Settings(data_dir=data, rate_limit_ingest_per_s=0)
    auth = f"Bearer {create_key(settings, 'payment', 'bench-ingest')}".encode()
    app = create_app(settings)
    rng = random.Random(seed)
    blocks: list[dict[str, Any]] = []
    async with app.router.lifespan_context(app):
        serving = app.state.api.serving
        ids = list(serving.engine.account_ids)
        count = 0

        def body() -> bytes:
            nonlocal count
            count += 1
            a, b = rng.sample(ids, 2)
            item = {
                "transfer_id": f"bench-ingest-{seed}-{count}",
                "src": a,
                "dst": b,
                "amount": rng.randint(1, 500),
                "timestamp": "2026-11-30T12:00:00Z",
            }
            return orjson.dumps({"items": [item]})

        async def block(mode: str, calls: int) -> dict[str, Any]:
            serving.settings = settings.model_copy(update={"rescore_mode": mode})
            rescorer = serving.rescorer
            worker = rescorer._thread
            w0 = thread_cpu_s(None if worker is None else worker.native_id)
            done0, cpu0 = rescorer.rescored_total, rescorer.cpu_s_total
            queued = rescored = 0
            t0, wall0 = time.process_time(), time.perf_counter()
            for _ in range(calls):
                status, answer = await asgi_call(app, body(), auth, "/v1/transfers")
                if status != 200:
                    raise RuntimeError(f"status {status}: {answer[:300]!r}")
                out = orjson.loads(answer)
                queued += out.get("queued", 0)
                rescored += out["rescored"]
            cpu = time.process_time() - t0
            wall = time.perf_counter() - wall0
            worker = rescorer._thread
            w1 = thread_cpu_s(None if worker is None else worker.native_id)
            t1 = time.perf_counter()
            drained = await asyncio.to_thread(serving.flush_rescoring, 600.0)
            res: dict[str, Any] = {
                "mode": mode,
                "request_cpu_us": round((cpu - (w1 - w0)) / calls * 1e6),
                "request_wall_us": round(wall / calls * 1e6),
                "rescored_in_request": rescored,
                "queued": queued,
            }
            if mode == "background":
                kept = rescorer.rescored_total - done0
                res |= {
                    "drained": drained,
                    "drain_s": round(time.perf_counter() - t1, 2),
                    "accounts_rescored": kept,
                    "worker_cpu_ms_per_account": round(
                        (rescorer.cpu_s_total - cpu0) / max(kept, 1) * 1e3, 2
                    ),
                }
            else:
                res["cpu_ms_per_account_in_request"] = round(cpu / max(rescored, 1) * 1e3, 2)
            return res

        # Warm: lazy imports, the pseudonyms, both paths once.
        await block("sync", 20)
        await block("background", 20)
        for _ in range(rounds):
            for mode in ("sync", "background"):
                blocks.append(await block(mode, n))
                print(json.dumps(blocks[-1]), flush=True)
        compared: dict[str, Any] = {}
        if score_many:
            compared = score_many_vs_one(serving, score_many, rounds + 1, seed)
        registry = app.state.api.metrics.registry
        lag_n = registry.get_sample_value("creditgraph_rescore_lag_seconds_count") or 0
        lag_sum = registry.get_sample_value("creditgraph_rescore_lag_seconds_sum") or 0.0
    by_mode: dict[str, Any] = {}
    for mode in ("sync", "background"):
        mine = [b for b in blocks if b["mode"] == mode]
        by_mode[mode] = {
            "min_request_cpu_us": min(b["request_cpu_us"] for b in mine),
            "all_request_cpu_us": [b["request_cpu_us"] for b in mine],
        }
        if mode == "background":
            by_mode[mode]["worker_cpu_ms_per_account"] = [
                b["worker_cpu_ms_per_account"] for b in mine
            ]
        else:
            by_mode[mode]["cpu_ms_per_account_in_request"] = [
                b["cpu_ms_per_account_in_request"] for b in mine
            ]
    return {
        "requests_per_block": n,
        "rounds": rounds,
        "accounts": len(ids),
        "modes": by_mode,
        "mean_rescore_lag_s": round(lag_sum / lag_n, 3) if lag_n else None,
        **({"score_many_vs_one": compared} if score_many else {}),
        "load_avg": os.getloadavg(),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--requests", type=int, default=100)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--scratch", default="/tmp")
    ap.add_argument("--score-many", type=int, default=0, metavar="N")
    args = ap.parse_args()
    work = Path(args.scratch) / f"ingest-route-{os.getpid()}"
    shutil.rmtree(work, ignore_errors=True)
    shutil.copytree(args.data, work, ignore=shutil.ignore_patterns("audit", "decisions"))
    try:
        result = asyncio.run(measure(work, args.requests, args.rounds, args.seed, args.score_many))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
