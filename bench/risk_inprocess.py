"""Where the risk endpoint's time goes, in-process (no HTTP server, no load generator).

    .venv/bin/python bench/risk_inprocess.py --data /tmp/cg-riskbench-200k/data

Uses the data ``bench/risk_api.py`` prepared. Measures, with one torch thread:
(1) CPU per ASGI call (``time.process_time``) of the floor's ``POST /floor``, the app's
    ``GET /healthz`` and ``POST /v1/risk/transfer`` for random snapshot account pairs;
(2) parts of the risk route: body parsing, ``RiskEngine.decide``, the response JSON, one audit
    line;
(3) ``InductiveScorer.score_new`` latency for 200 accounts the snapshot lacks (copies of
    random accounts written to the store after the app loaded), store reads included.
Prints one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import torch
from fastapi import FastAPI

from creditgraph.api.app import create_app
from creditgraph.api.audit import AuditLog
from creditgraph.api.keys import Principal, create_key
from creditgraph.api.routes.risk import decision_payload
from creditgraph.api.schemas.risk import TransferRiskCreate
from creditgraph.config import Settings
from creditgraph.ledger import Ledger
from creditgraph.services.risk import RiskEngine, TransferCheck

sys.path.insert(0, str(Path(__file__).resolve().parent))
from risk_api import add_new_accounts, floor_app


async def _call(app: FastAPI, method: str, path: str, body: bytes, key: str) -> int:
    headers = [
        (b"host", b"bench"),
        (b"content-type", b"application/json"),
        (b"authorization", f"Bearer {key}".encode()),
        (b"content-length", str(len(body)).encode()),
    ]
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": headers,
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 80),
        "state": {},
        "app": app,
    }
    sent = False

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.sleep(3600)
        return {"type": "http.disconnect"}

    status = 0

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = int(message["status"])

    await app(scope, receive, send)  # type: ignore[arg-type]
    return status


def _cpu_us(fn: Callable[[bytes], Any], items: list[bytes]) -> float:
    t0 = time.process_time()
    for item in items:
        fn(item)
    return round((time.process_time() - t0) / len(items) * 1e6, 1)


async def main(data: Path, n: int) -> dict[str, Any]:
    settings = Settings(data_dir=data)
    key = create_key(settings, "payment", "bench-inprocess")
    app = create_app(settings)
    floor = floor_app()
    out: dict[str, Any] = {}
    async with app.router.lifespan_context(app):
        engine: RiskEngine = app.state.api.serving.engine
        store = app.state.api.serving.store
        rng = random.Random(0)
        ids = engine.account_ids
        bodies = [
            orjson.dumps({"src": rng.choice(ids), "dst": rng.choice(ids), "amount": 10.0})
            for _ in range(n)
        ]
        for name, target, method, path in (
            ("floor_post", floor, "POST", "/floor"),
            ("app_healthz", app, "GET", "/healthz"),
            ("risk_known", app, "POST", "/v1/risk/transfer"),
        ):
            for b in bodies[:200]:
                await _call(target, method, path, b, key)
            t0 = time.process_time()
            for b in bodies:
                status = await _call(target, method, path, b, key)
                assert status == 200, (name, status)
            out[f"asgi_cpu_us_{name}"] = round((time.process_time() - t0) / n * 1e6, 1)
        parsed = [TransferRiskCreate.model_validate_json(b) for b in bodies]
        it = iter(parsed * 2)
        out["part_us_parse"] = _cpu_us(TransferRiskCreate.model_validate_json, bodies)

        def decide(_b: bytes) -> None:
            p = next(it)
            engine.decide(TransferCheck(p.src, p.dst, p.amount), store)

        out["part_us_decide"] = _cpu_us(decide, bodies)
        d = engine.decide(TransferCheck(parsed[0].src, parsed[0].dst, 1.0), store)
        out["part_us_response_json"] = _cpu_us(lambda _b: orjson.dumps(decision_payload(d)), bodies)
        ledger = Ledger(
            data / "bench-audit.jsonl", data / "bench-decisions.jsonl", data / "bench-pseudo.sqlite"
        )
        audit = AuditLog(ledger)
        who = Principal("bench", "bench", "payment")
        out["part_us_audit_line"] = _cpu_us(
            lambda _b: audit.record(
                principal=who,
                action="risk.transfer",
                target="a->b",
                result="allow risk=0.0100 model=v0001",
            ),
            bodies,
        )
        ledger.close()
        new = add_new_accounts(settings, ids, 200, seed=1)  # after the snapshot was taken
        lat: list[float] = []
        for a in new:
            t0 = time.perf_counter()
            engine.scorer.score_new(a, store)
            lat.append((time.perf_counter() - t0) * 1e3)
        if lat:
            out["score_new_accounts"] = len(lat)
            out["score_new_p50_ms"] = round(float(np.percentile(lat, 50)), 3)
            out["score_new_p99_ms"] = round(float(np.percentile(lat, 99)), 3)
        out["accounts"] = len(ids)
    return out


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, default=Path("/tmp/cg-riskbench-200k/data"))
    ap.add_argument("--requests", type=int, default=3000)
    args = ap.parse_args()
    torch.set_num_threads(1)
    print(json.dumps(asyncio.run(main(args.data, args.requests))))
