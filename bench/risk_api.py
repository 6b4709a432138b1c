"""Latency and throughput of ``POST /v1/risk/transfer`` beside a bare FastAPI floor.

    .venv/bin/python bench/risk_api.py --accounts 200000 --seed 42 --work /tmp/cg-riskbench

Loopback only, bounded in time (each wrk run lasts ``--duration`` seconds). Steps:
(1) data under ``--work`` (reused when present): synthetic network, import into the embedded
    store, a champion trained briefly (``--max-epochs``; latency does not depend on model
    quality, the architecture is the default one);
(2) two servers started alike (uvicorn, one worker, JSON logs off the hot path): the API
    (``creditgraph serve``) and a floor app whose POST endpoint does nothing;
(3) ``--new`` accounts (copies of random accounts' attributes and transfers) written straight
    into the store AFTER the API loaded its snapshot, so requests naming them are scored
    inductively from the store on every call;
(4) wrk (one thread, on the other core) with a Lua script that rotates through request bodies:
    paced runs at ``--rate`` requests/s (wrk's ``delay()`` per connection: ``--connections``
    connections each waiting connections/rate seconds after a response; the achieved rate is
    reported) for the floor, the API on known accounts and the API with the receiver a new
    account; then saturation runs (no delay, ``--sat-connections``) for the floor and the API.
Prints progress and a closing JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import torch
import uvicorn
from fastapi import FastAPI

from creditgraph.api.keys import create_key
from creditgraph.config import Settings
from creditgraph.domain import AccountColumns, TransferColumns
from creditgraph.ingest.csvfile import KINDS
from creditgraph.registry import ModelRegistry
from creditgraph.services.ingest import import_file
from creditgraph.services.retrain import retrain
from creditgraph.store.embedded import EmbeddedStore
from creditgraph.synth import generate
from creditgraph.training_config import BaselineSection, OptimConfig, TrainingConfig

REPO = Path(__file__).resolve().parents[1]
RISK = "/v1/risk/transfer"
FLOOR = "/floor"


def floor_app() -> FastAPI:
    """The floor: FastAPI routing a POST to an endpoint that does nothing."""
    app = FastAPI()

    @app.post(FLOOR)
    async def floor() -> dict[str, bool]:
        return {"ok": True}

    return app


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def prepare(work: Path, accounts: int, seed: int, max_epochs: int) -> Settings:
    settings = Settings(data_dir=work / "data")
    done = work / "data" / ".prepared"
    if done.exists():
        log(f"reusing {work / 'data'}")
        return settings
    shutil.rmtree(work / "data", ignore_errors=True)
    t0 = time.perf_counter()
    generate(accounts, seed, work / "net")
    log(f"synth {accounts} accounts: {time.perf_counter() - t0:.1f}s")
    store = EmbeddedStore(settings.embedded_path)
    try:
        t0 = time.perf_counter()
        for kind in KINDS:
            import_file(store, kind, work / "net" / f"{kind}.csv")
        log(f"import: {time.perf_counter() - t0:.1f}s")
        t0 = time.perf_counter()
        job = TrainingConfig(
            optim=OptimConfig(max_epochs=max_epochs, patience=max_epochs),
            baseline=BaselineSection(enabled=False),
        )
        retrain(store, ModelRegistry(settings.models_dir), job, force=True)
        log(f"train ({max_epochs} epochs): {time.perf_counter() - t0:.1f}s")
    finally:
        store.close()
    done.touch()
    return settings


@contextmanager
def server(cmd: list[str], env: dict[str, str], url: str, ready: str) -> Iterator[int]:
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 600
        while True:
            if proc.poll() is not None:
                err = proc.stderr.read().decode()[-2000:] if proc.stderr else ""
                raise RuntimeError(f"server exited: {err}")
            try:
                if httpx.get(url + ready, timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("server did not become ready")
            time.sleep(0.5)
        yield proc.pid
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()


def add_new_accounts(settings: Settings, pool: list[str], n: int, seed: int) -> list[str]:
    """Copies of random accounts (attributes and outgoing/incoming transfers), written
    straight to the store so the running API's snapshot lacks them."""
    rng = random.Random(seed)
    run = int(time.time())  # fresh ids per run: a reused store keeps earlier runs' copies
    store = EmbeddedStore(settings.embedded_path)
    try:
        ids: list[str] = []
        for k in range(n):
            original = store.get_account(rng.choice(pool))
            new_id = f"NEW{run}_{k:06d}"
            store.upsert_accounts(
                AccountColumns([new_id], [original.created_at], [original.features], [{}])
            )
            edges = store.adjacent([original.account_id], frozenset({"TRANSFER"}))
            rows = []
            for j, e in enumerate(edges):
                src = new_id if e.src == original.account_id else e.src
                dst = new_id if e.dst == original.account_id else e.dst
                rows.append((f"NEWT{run}_{k:06d}_{j}", src, dst, e.total_amount / max(e.count, 1)))
            if rows:
                store.upsert_transfers(
                    TransferColumns(
                        [r[0] for r in rows],
                        [r[1] for r in rows],
                        [r[2] for r in rows],
                        [r[3] for r in rows],
                        [time.time()] * len(rows),
                        [None] * len(rows),
                        [None] * len(rows),
                    )
                )
            ids.append(new_id)
    finally:
        store.close()
    return ids


LUA = """
local bodies = {BODIES}
local i = 0
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer {KEY}"
request = function()
  i = i + 1
  return wrk.format(nil, "{PATH}", nil, bodies[(i % #bodies) + 1])
end
{DELAY}
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "CGJSON {\\"requests\\": %d, \\"duration_us\\": %d, \\"socket_errors\\": %d, " ..
    "\\"non2xx\\": %d, \\"p50_us\\": %d, \\"p90_us\\": %d, \\"p99_us\\": %d, " ..
    "\\"p999_us\\": %d, \\"max_us\\": %d, \\"mean_us\\": %.1f}\\n",
    summary.requests, summary.duration, e.connect + e.read + e.write + e.timeout, e.status,
    latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency:percentile(99.9), latency.max, latency.mean))
end
"""


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wrk(
    url: str,
    path: str,
    bodies: list[str],
    key: str,
    *,
    duration: int,
    connections: int,
    delay_ms: int | None,
    work: Path,
    pid: int | None = None,
) -> dict[str, Any]:
    lua = (
        LUA.replace("{BODIES}", "{" + ",".join(json.dumps(b) for b in bodies) + "}")
        .replace("{KEY}", key)
        .replace("{PATH}", path)
        .replace("{DELAY}", f"delay = function() return {delay_ms} end" if delay_ms else "")
    )
    script = work / "bench.lua"
    script.write_text(lua)
    cpu0 = cpu_seconds(pid) if pid else 0.0
    out = subprocess.run(
        [
            "wrk",
            "-t1",
            f"-c{connections}",
            f"-d{duration}s",
            "--timeout",
            "5s",
            "-s",
            str(script),
            url + path,
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    line = next(x for x in out.splitlines() if x.startswith("CGJSON "))
    r: dict[str, Any] = json.loads(line[len("CGJSON ") :])
    r["rps"] = round(r["requests"] / (r["duration_us"] / 1e6), 1)
    if pid:
        # Server CPU per request: unlike latency, barely moved by other jobs on the machine.
        r["server_cpu_us_per_req"] = round((cpu_seconds(pid) - cpu0) / r["requests"] * 1e6, 1)
    for k in ("p50_us", "p90_us", "p99_us", "p999_us", "max_us"):
        r[k.replace("_us", "_ms")] = round(r.pop(k) / 1000, 3)
    r["mean_ms"] = round(r.pop("mean_us") / 1000, 3)
    r.pop("duration_us")
    return r


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--accounts", type=int, default=200_000)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--work", type=Path, default=Path("/tmp/cg-riskbench"))
    ap.add_argument("--max-epochs", type=int, default=5)
    ap.add_argument("--new", type=int, default=300, help="accounts scored inductively")
    ap.add_argument("--rate", type=int, default=1000)
    ap.add_argument("--inductive-rate", type=int, default=200)
    ap.add_argument("--connections", type=int, default=40)
    ap.add_argument("--sat-connections", type=int, default=32)
    ap.add_argument("--duration", type=int, default=30)
    ap.add_argument("--port", type=int, default=18080)
    ap.add_argument(
        "--runs",
        default="floor_paced,risk_known_paced,risk_inductive_paced,floor_saturation,"
        "risk_saturation",
        help="comma-separated subset of the runs",
    )
    ap.add_argument("--serve-floor", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve_floor:
        uvicorn.run(
            floor_app(),
            host="127.0.0.1",
            port=args.port,
            log_config=None,
            access_log=False,
            log_level="warning",
        )
        return
    if shutil.which("wrk") is None:
        sys.exit("wrk is required (Debian: apt-get install wrk)")
    torch.set_num_threads(1)
    args.work.mkdir(parents=True, exist_ok=True)
    settings = prepare(args.work, args.accounts, args.seed, args.max_epochs)
    key = create_key(settings, "payment", "bench")
    env = {
        **os.environ,
        "CREDITGRAPH_DATA_DIR": str(settings.data_dir),
        "CREDITGRAPH_STORE": "embedded",
    }
    api_url = f"http://127.0.0.1:{args.port}"
    floor_url = f"http://127.0.0.1:{args.port + 1}"
    rng = random.Random(args.seed)
    store = EmbeddedStore(settings.embedded_path)
    try:
        counts = store.counts()
        pairs_from = list(store.snapshot().account_ids)
    finally:
        store.close()
    known = [
        json.dumps(
            {
                "src": rng.choice(pairs_from),
                "dst": rng.choice(pairs_from),
                "amount": round(rng.uniform(1, 500), 2),
                "currency": "EUR",
            }
        )
        for _ in range(5000)
    ]
    floor_bodies = known[:1000]
    pace = 1000 * args.connections // args.rate
    results: dict[str, Any] = {}
    cmd_api = [
        str(REPO / ".venv" / "bin" / "creditgraph"),
        "serve",
        "--port",
        str(args.port),
        "--log-level",
        "warning",
    ]
    cmd_floor = [sys.executable, __file__, "--serve-floor", "--port", str(args.port + 1)]
    t0 = time.perf_counter()
    with (
        server(cmd_api, env, api_url, "/readyz") as api_pid,
        server(cmd_floor, env, floor_url, "/docs") as floor_pid,
    ):
        log(f"servers ready in {time.perf_counter() - t0:.1f}s")
        new_ids = add_new_accounts(settings, pairs_from, args.new, args.seed)
        inductive = [
            json.dumps(
                {"src": rng.choice(pairs_from), "dst": n, "amount": round(rng.uniform(1, 500), 2)}
            )
            for n in new_ids
        ]
        # Warm both (first requests build caches, import lazily).
        wrk(
            floor_url,
            FLOOR,
            floor_bodies,
            key,
            duration=3,
            connections=4,
            delay_ms=None,
            work=args.work,
        )
        wrk(api_url, RISK, known, key, duration=3, connections=4, delay_ms=None, work=args.work)
        pid = {floor_url: floor_pid, api_url: api_pid}
        inductive_pace = 1000 * args.connections // args.inductive_rate
        runs = [
            ("floor_paced", floor_url, FLOOR, floor_bodies, args.connections, pace),
            ("risk_known_paced", api_url, RISK, known, args.connections, pace),
            ("risk_inductive_paced", api_url, RISK, inductive, args.connections, inductive_pace),
            ("floor_saturation", floor_url, FLOOR, floor_bodies, args.sat_connections, None),
            ("risk_saturation", api_url, RISK, known, args.sat_connections, None),
        ]
        wanted = set(args.runs.split(","))
        for name, url, path, bodies, conns, delay in runs:
            if name not in wanted:
                continue
            results[name] = wrk(
                url,
                path,
                bodies,
                key,
                duration=args.duration,
                connections=conns,
                delay_ms=delay,
                work=args.work,
                pid=pid[url],
            )
            log(f"{name}: {results[name]}")
    if {"floor_saturation", "risk_saturation"} <= results.keys():
        floor, risk = results["floor_saturation"], results["risk_saturation"]
        results["cpu_per_request_floor_vs_risk"] = round(
            floor["server_cpu_us_per_req"] / risk["server_cpu_us_per_req"], 3
        )
        results["saturation_vs_floor"] = round(risk["rps"] / floor["rps"], 3)
    results["data"] = {
        "accounts": counts.accounts,
        "transfers": counts.transfers,
        "links": counts.links,
        "new_accounts": args.new,
    }
    results["machine"] = {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "load_avg_end": os.getloadavg(),
    }
    print(json.dumps(results))


if __name__ == "__main__":
    main()
