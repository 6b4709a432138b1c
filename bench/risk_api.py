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
    account; then saturation runs (no delay, ``--sat-connections``) for the floor and the API;
(5) ``--policy``: who decides — ``model`` (the transfer model), ``baseline`` (the
    hand-weighted policy: ``CREDITGRAPH_RISK_TRANSFER_MODEL=false``) or ``model,baseline``:
    one API server per policy in turn, each with its own floor runs beside it in the same
    minutes (the floor server stays up).
Prints progress and a closing JSON line: one object per policy (its runs, what answered,
``saturation_vs_floor``), then ``data`` and ``machine``.
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
from creditgraph.services.risk.transfer_job import train_transfers
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


def prepare(
    work: Path, accounts: int, seed: int, max_epochs: int, transfer_model: bool = True
) -> Settings:
    settings = Settings(data_dir=work / "data")
    done = work / "data" / ".prepared"
    if done.exists():
        log(f"reusing {work / 'data'}")
        if transfer_model:
            prepare_transfer_model(settings, work / "net")
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
    if transfer_model:
        prepare_transfer_model(settings, work / "net")
    return settings


def prepare_transfer_model(settings: Settings, net: Path) -> None:
    """A transfer model under the data dir, so the API serves learned decisions: the synth's
    ``transfer_labels.csv`` imported (when the store has none yet) and ``transfers train``
    run, once (marker ``.transfer-prepared``). No ``creditgraph score`` first: the training
    rows then have no stored account scores (latency does not depend on that)."""
    done = settings.data_dir / ".transfer-prepared"
    if done.exists() or (settings.models_dir / "transfer" / "current.json").exists():
        return
    store = EmbeddedStore(settings.embedded_path)
    try:
        labels = net / "transfer_labels.csv"
        if len(store.transfer_labels()) == 0:
            if not labels.exists():
                sys.exit(f"no transfer labels in the store and no {labels}: cannot train")
            t0 = time.perf_counter()
            import_file(store, "transfer_labels", labels)
            log(f"import transfer_labels: {time.perf_counter() - t0:.1f}s")
        t0 = time.perf_counter()
        report = train_transfers(store, settings.models_dir / "transfer", settings.risk)
        log(f"transfers train ({report.n_labelled} labelled): {time.perf_counter() - t0:.1f}s")
    finally:
        store.close()
    done.touch()


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
math.randomseed({SEED})
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


def start_wrk(
    name: str,
    url: str,
    path: str,
    bodies: list[str],
    key: str,
    *,
    duration: int,
    connections: int,
    delay_ms: float | None,
    work: Path,
    seed: int = 1,
) -> subprocess.Popen[str]:
    """Start one wrk run (one thread) rotating through ``bodies``; ``delay_ms`` paces each
    connection (mean think time after a response), None saturates."""
    lua = (
        LUA.replace("{BODIES}", "{" + ",".join(json.dumps(b) for b in bodies) + "}")
        .replace("{KEY}", key)
        .replace("{PATH}", path)
        .replace("{SEED}", str(seed))
        # Think time drawn from an exponential distribution (mean ``delay_ms``): arrivals
        # close to a Poisson process, and connections start staggered instead of all at once
        # (a fixed delay sent every connection's first request in the same instant).
        .replace(
            "{DELAY}",
            f"delay = function() return -math.log(1 - math.random()) * {delay_ms} end"
            if delay_ms
            else "",
        )
    )
    script = work / f"bench-{name}.lua"
    script.write_text(lua)
    return subprocess.Popen(
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
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wrk_result(proc: subprocess.Popen[str]) -> dict[str, Any]:
    """Wait for a ``start_wrk`` run; its summary with percentiles in ms and the rate."""
    out, err = proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError(f"wrk failed: {err[-2000:]}")
    line = next(x for x in out.splitlines() if x.startswith("CGJSON "))
    r: dict[str, Any] = json.loads(line[len("CGJSON ") :])
    r["rps"] = round(r["requests"] / (r["duration_us"] / 1e6), 1)
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
    ap.add_argument("--rate", type=int, default=1000)
    ap.add_argument("--inductive-rate", type=int, default=200)
    ap.add_argument("--mix-inductive-rate", type=int, default=50)
    ap.add_argument(
        "--repeat-accounts", type=int, default=300, help="receivers the repeat run rotates"
    )
    ap.add_argument("--connections", type=int, default=40)
    ap.add_argument("--sat-connections", type=int, default=32)
    ap.add_argument("--duration", type=int, default=30)
    ap.add_argument("--port", type=int, default=18080)
    ap.add_argument(
        "--transfer-model",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="train (once) and serve a transfer model: learned decisions (issue 13)",
    )
    ap.add_argument(
        "--policy",
        default="model",
        help="who decides: model (the transfer model), baseline (the hand-weighted policy, "
        "CREDITGRAPH_RISK_TRANSFER_MODEL=false) or both in one run: model,baseline",
    )
    ap.add_argument(
        "--runs",
        default="floor_paced,risk_known_paced,risk_inductive_paced,risk_inductive_repeat_paced,"
        "risk_mixed_paced,floor_saturation,risk_saturation",
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
    policies = args.policy.split(",")
    if not policies or any(p not in ("model", "baseline") for p in policies):
        sys.exit(f"--policy: model, baseline or model,baseline (got {args.policy!r})")
    torch.set_num_threads(1)
    args.work.mkdir(parents=True, exist_ok=True)
    settings = prepare(args.work, args.accounts, args.seed, args.max_epochs, args.transfer_model)
    key = create_key(settings, "payment", "bench")
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
    results: dict[str, Any] = {}
    floor_url = f"http://127.0.0.1:{args.port + 1}"
    cmd_floor = [sys.executable, __file__, "--serve-floor", "--port", str(args.port + 1)]
    env = {
        **os.environ,
        "CREDITGRAPH_DATA_DIR": str(settings.data_dir),
        "CREDITGRAPH_STORE": "embedded",
    }
    first_sight = 0
    with server(cmd_floor, env, floor_url, "/docs") as floor_pid:
        # One API server per policy, one after the other (memory: one snapshot at a time),
        # each beside its own floor runs in the same minutes.
        for policy in policies:
            out, first_sight = run_policy(
                args, policy, settings, key, known, pairs_from, rng, floor_url, floor_pid, env
            )
            results[policy] = out
    results["policies"] = policies
    results["data"] = {
        "accounts": counts.accounts,
        "transfers": counts.transfers,
        "links": counts.links,
        "new_accounts_per_policy": first_sight,
    }
    results["machine"] = {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "load_avg_end": os.getloadavg(),
    }
    print(json.dumps(results))


def run_policy(
    args: argparse.Namespace,
    policy: str,
    settings: Settings,
    key: str,
    known: list[str],
    pairs_from: list[str],
    rng: random.Random,
    floor_url: str,
    floor_pid: int,
    env: dict[str, str],
) -> tuple[dict[str, Any], int]:
    """The runs of ``--runs`` with ``policy`` deciding; (results, first-sight accounts)."""
    results: dict[str, Any] = {}
    api_url = f"http://127.0.0.1:{args.port}"
    floor_bodies = known[:1000]
    cmd_api = [
        str(REPO / ".venv" / "bin" / "creditgraph"),
        "serve",
        "--port",
        str(args.port),
        "--log-level",
        "warning",
    ]
    env = {k: v for k, v in env.items() if k != "CREDITGRAPH_RISK_TRANSFER_MODEL"}
    if policy == "baseline":  # unset for the model: code before the switch refuses the name
        env["CREDITGRAPH_RISK_TRANSFER_MODEL"] = "false"
    t0 = time.perf_counter()
    with server(cmd_api, env, api_url, "/readyz") as api_pid:
        log(f"{policy}: API ready in {time.perf_counter() - t0:.1f}s")
        results["servers_ready_s"] = round(time.perf_counter() - t0, 1)
        # Which policy answers (learned when a transfer model is serving), and how often
        # each decision comes back for the known-account bodies.
        probe = [
            httpx.post(
                api_url + RISK,
                content=b,
                headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
            ).json()
            for b in known[:200]
        ]
        learned = all("/" in str(r.get("model_version")) for r in probe)
        results["serving"] = {
            # A learned answer names both models: "<champion>/<transfer model>".
            "learned": learned,
            "model_version": sorted({str(r.get("model_version")) for r in probe}),
            "decisions_of_200_known": {
                d: sum(r.get("decision") == d for r in probe) for d in ("allow", "review", "block")
            },
        }
        log(f"{policy}: serving {results['serving']}")
        if learned != (policy == "model"):
            raise RuntimeError(f"--policy {policy} but the answers say learned={learned}")
        wanted = set(args.runs.split(","))
        # Every first-sight request names an account no request named before: the paced run
        # at --inductive-rate and the mixed run at --mix-inductive-rate, with 10 % to spare.
        # Written after this server loaded its snapshot (the next policy's server has them).
        first_sight = int(1.1 * args.duration * (args.inductive_rate + args.mix_inductive_rate))
        t1 = time.perf_counter()
        new_ids = add_new_accounts(settings, pairs_from, first_sight, args.seed)
        log(f"{len(new_ids)} new accounts written in {time.perf_counter() - t1:.1f}s")

        def transfers_to(receivers: list[str]) -> list[str]:
            return [
                json.dumps(
                    {
                        "src": rng.choice(pairs_from),
                        "dst": n,
                        "amount": round(rng.uniform(1, 500), 2),
                    }
                )
                for n in receivers
            ]

        split = int(1.1 * args.duration * args.inductive_rate)
        inductive, mixed_new = transfers_to(new_ids[:split]), transfers_to(new_ids[split:])
        repeat = inductive[: args.repeat_accounts]
        # Warm both (first requests build caches, import lazily).
        for url, path, bodies in ((floor_url, FLOOR, floor_bodies), (api_url, RISK, known)):
            wrk_result(
                start_wrk(
                    "warm",
                    url,
                    path,
                    bodies,
                    key,
                    duration=3,
                    connections=4,
                    delay_ms=None,
                    work=args.work,
                )
            )
        pid = {floor_url: floor_pid, api_url: api_pid}

        def pace(rate: int, connections: int) -> float:
            return 1000 * connections / rate

        runs = [
            ("floor_paced", floor_url, FLOOR, floor_bodies, args.connections, args.rate),
            ("risk_known_paced", api_url, RISK, known, args.connections, args.rate),
            (
                "risk_inductive_paced",
                api_url,
                RISK,
                inductive,
                args.connections,
                args.inductive_rate,
            ),
            (
                "risk_inductive_repeat_paced",
                api_url,
                RISK,
                repeat,
                args.connections,
                args.inductive_rate,
            ),
            ("floor_saturation", floor_url, FLOOR, floor_bodies, args.sat_connections, None),
            ("risk_saturation", api_url, RISK, known, args.sat_connections, None),
        ]
        for name, url, path, bodies, conns, rate in runs:
            if name not in wanted:
                continue
            cpu0 = cpu_seconds(pid[url])
            results[name] = wrk_result(
                start_wrk(
                    name,
                    url,
                    path,
                    bodies,
                    key,
                    duration=args.duration,
                    connections=conns,
                    delay_ms=pace(rate, conns) if rate else None,
                    work=args.work,
                )
            )
            # Server CPU per request: unlike latency, barely moved by other jobs.
            results[name]["server_cpu_us_per_req"] = round(
                (cpu_seconds(pid[url]) - cpu0) / results[name]["requests"] * 1e6, 1
            )
            log(f"{policy} {name}: {results[name]}")
        if "risk_mixed_paced" in wanted:
            # Known pairs and first-sight receivers at the same time, each from its own wrk
            # (so each reports its own percentiles), adding up to --rate.
            known_rate = args.rate - args.mix_inductive_rate
            conns_new = max(2, args.connections * args.mix_inductive_rate // args.rate)
            procs = {
                "known": start_wrk(
                    "mixed-known",
                    api_url,
                    RISK,
                    known,
                    key,
                    duration=args.duration,
                    connections=args.connections,
                    delay_ms=pace(known_rate, args.connections),
                    work=args.work,
                    seed=2,
                ),
                "inductive": start_wrk(
                    "mixed-new",
                    api_url,
                    RISK,
                    mixed_new,
                    key,
                    duration=args.duration,
                    connections=conns_new,
                    delay_ms=pace(args.mix_inductive_rate, conns_new),
                    work=args.work,
                    seed=3,
                ),
            }
            results["risk_mixed_paced"] = {k: wrk_result(v) for k, v in procs.items()}
            log(f"{policy} risk_mixed_paced: {results['risk_mixed_paced']}")
    if {"floor_saturation", "risk_saturation"} <= results.keys():
        floor, risk = results["floor_saturation"], results["risk_saturation"]
        results["cpu_per_request_floor_vs_risk"] = round(
            floor["server_cpu_us_per_req"] / risk["server_cpu_us_per_req"], 3
        )
        results["saturation_vs_floor"] = round(risk["rps"] / floor["rps"], 3)
    return results, first_sight


if __name__ == "__main__":
    main()
