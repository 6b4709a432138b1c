"""What the hash-chained audit and decision logs cost the risk path.

    .venv/bin/python bench/decision_log.py [--rps 1000] [--seconds 10] [--dir /tmp/cg-dlog]

(1) CPU per call (``time.process_time``) of: one plain ``os.write`` of a JSON line (the old
    audit log), ``ChainLog.append`` (hash + flock + write), ``AuditLog.record`` with two
    pseudonymised accounts, and ``DecisionLog.risk_sync`` (pseudonyms, input HMAC, reasons).
(2) Open-loop latency at ``--rps`` on one event loop, as the risk route spends it after the
    decision: per request one decision record (the route's one log line), then, under
    ``ack=fsync``, an await of the group fsync. Modes side by side in one run: ``none`` (no
    log at all), ``written`` (the default) and ``fsync``. Latency is from the request's
    scheduled arrival to its completion, so queueing behind a slow fsync counts. Also: fsyncs
    done and lines per fsync (the group size), and the raw fsync latency of this disk.
Prints one JSON line per part.
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

import numpy as np
import orjson

from creditgraph.api.audit import AuditLog
from creditgraph.api.keys import Principal
from creditgraph.config import RiskSettings
from creditgraph.ledger import Ledger
from creditgraph.ledger.chain import ChainLog
from creditgraph.ledger.decisions import DecisionLog

WHO = Principal("bench", "bench", "payment")
REASONS: list[dict[str, Any]] = [
    {"code": "RECEIVER_RISK", "message": "receiver's fraud probability 0.03", "evidence": {
        "fraud_probability": 0.03, "source": "table"}, "weight": 0.4},
    {"code": "ACCOUNTS_RELATED", "message": "friends", "evidence": {"relation": ["friends"]}},
]  # fmt: skip
POLICY = RiskSettings()


def _cpu_us(fn: Any, n: int) -> float:
    t0 = time.process_time()
    for i in range(n):
        fn(i)
    return round((time.process_time() - t0) / n * 1e6, 2)


def _ledger(root: Path, flush_ms: float) -> Ledger:
    return Ledger(
        root / "audit" / "audit.jsonl",
        root / "decisions" / "decisions.jsonl",
        root / "subjects" / "pseudonyms.sqlite",
        flush_s=flush_ms / 1000,
    )


def parts(root: Path, accounts: list[str], n: int) -> dict[str, Any]:
    out: dict[str, Any] = {"part": "cpu_us_per_call", "calls": n}
    fd = os.open(root / "plain.jsonl", os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    line = orjson.dumps({"ts": 1.0, "key_id": "k", "action": "risk.transfer", "target": "a->b"})
    out["plain_write"] = _cpu_us(lambda _i: os.write(fd, line + b"\n"), n)
    os.close(fd)
    chain = ChainLog(root / "chain.jsonl")
    out["chain_append"] = _cpu_us(
        lambda _i: chain.append({"key_id": "k", "action": "risk.transfer", "target": "x"}), n
    )
    chain.close()
    ledger = _ledger(root / "parts", 20)
    audit, decisions = AuditLog(ledger), DecisionLog(ledger)
    ledger.pseudonyms.of(accounts)  # warm: the hot path meets known accounts

    def record(i: int) -> None:
        a, b = accounts[i % len(accounts)], accounts[(i * 7 + 1) % len(accounts)]
        audit.record(principal=WHO, action="risk.transfer", target=f"{a}->{b}",
                     result="allow risk=0.0100 model=v0001", accounts=(a, b))  # fmt: skip

    def decide(i: int) -> None:
        a, b = accounts[i % len(accounts)], accounts[(i * 7 + 1) % len(accounts)]
        decisions.risk_sync(inputs={"src": a, "dst": b, "amount": 10.0 + i}, src=a, dst=b,
                            decision="allow", risk=0.01, model_version="v0001", policy=POLICY,
                            reasons=REASONS, degraded=False, key_id="k")  # fmt: skip

    out["audit_record"] = _cpu_us(record, n)
    out["decision_record"] = _cpu_us(decide, n)
    ledger.close()
    return out


async def _load(
    ledger: Ledger | None, ack: str, rps: float, seconds: float, accounts: list[str]
) -> list[float]:
    loop = asyncio.get_running_loop()
    decisions = None if ledger is None else DecisionLog(ledger, ack=ack)
    lat: list[float] = []
    tasks: list[asyncio.Task[None]] = []
    rng = random.Random(1)

    async def one(due: float, i: int) -> None:
        a, b = rng.choice(accounts), rng.choice(accounts)
        if decisions is not None:
            seq = decisions.risk_sync(inputs={"src": a, "dst": b, "amount": float(i)}, src=a,
                                      dst=b, decision="allow", risk=0.01, model_version="v0001",
                                      policy=POLICY, reasons=REASONS, degraded=False,
                                      key_id="k")  # fmt: skip
            await decisions.settle(seq)
        lat.append(loop.time() - due)

    start = loop.time() + 0.05
    n = int(rps * seconds)
    for i in range(n):
        due = start + i / rps
        delay = due - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(due, i)))
    await asyncio.gather(*tasks)
    return lat


def load(
    root: Path, rps: float, seconds: float, accounts: list[str], flush_ms: float
) -> list[dict[str, Any]]:
    rows = []
    for mode in ("none", "written", "fsync"):
        ledger = None if mode == "none" else _ledger(root / f"load-{mode}", flush_ms)
        if ledger is not None:
            ledger.pseudonyms.of(accounts)
        lat = np.asarray(asyncio.run(_load(ledger, mode, rps, seconds, accounts))) * 1e3
        row: dict[str, Any] = {
            "part": "open_loop",
            "mode": mode,
            "rps": rps,
            "requests": len(lat),
            "p50_ms": round(float(np.percentile(lat, 50)), 3),
            "p99_ms": round(float(np.percentile(lat, 99)), 3),
            "p999_ms": round(float(np.percentile(lat, 99.9)), 3),
            "max_ms": round(float(lat.max()), 3),
        }
        if ledger is not None:
            chain = ledger.chains["decisions"]
            ledger.close()
            row["decision_fsyncs"] = chain.fsyncs
            row["lines_per_fsync"] = round(len(lat) / max(1, chain.fsyncs), 1)
        rows.append(row)
    return rows


def raw_fsync(root: Path, n: int = 200) -> dict[str, Any]:
    fd = os.open(root / "fsync.bin", os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    lat = []
    for _ in range(n):
        os.write(fd, b"x" * 400 + b"\n")
        t0 = time.perf_counter()
        os.fsync(fd)
        lat.append((time.perf_counter() - t0) * 1e3)
    os.close(fd)
    a = np.asarray(lat)
    return {"part": "raw_fsync", "n": n, "p50_ms": round(float(np.percentile(a, 50)), 3),
            "p99_ms": round(float(np.percentile(a, 99)), 3)}  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rps", type=float, default=1000)
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--calls", type=int, default=20_000)
    ap.add_argument("--flush-ms", type=float, default=20)
    ap.add_argument("--dir", type=Path, default=Path("/tmp/cg-decision-log-bench"))
    args = ap.parse_args()
    shutil.rmtree(args.dir, ignore_errors=True)
    args.dir.mkdir(parents=True)
    accounts = [f"acc_{i:07d}" for i in range(50_000)]
    print(json.dumps({"part": "machine", "load": os.getloadavg(), "cpus": os.cpu_count()}))
    print(json.dumps(raw_fsync(args.dir)))
    print(json.dumps(parts(args.dir, accounts, args.calls)))
    for row in load(args.dir, args.rps, args.seconds, accounts, args.flush_ms):
        print(json.dumps(row))
    shutil.rmtree(args.dir, ignore_errors=True)


if __name__ == "__main__":
    main()
