"""Soak: mixed traffic at a fixed rate for minutes; errors, resident memory and p99 per window.

    flock /work/coord/heavy.lock .venv/bin/python bench/soak.py --accounts 20000 --minutes 10

Loopback only, bounded (``--warmup`` + ``--minutes`` windows of ``--window`` seconds). Steps:
(1) data under ``--work`` (reused when present): a synthetic network imported into the
    embedded store, a champion trained briefly (latency does not depend on its quality) and
    every account scored with it (as a deployment runs ``creditgraph score`` after training);
(2) ``creditgraph serve`` (one uvicorn worker, as deployed) with a payment and an
    investigator key;
(3) wrk (one thread, C; a Python load generator saturates below this rate and measures
    itself) with a Lua script that draws every request from the mix: risk checks
    (``POST /v1/risk/transfer``), score look-ups (``GET /v1/accounts/{id}/score``), 2-hop
    investigator neighbourhoods (``X-Purpose`` set) and one-transfer ingest batches
    (``POST /v1/transfers``, a fresh ``transfer_id`` each, so every batch writes). Each of
    ``--connections`` connections waits an exponential think time after each answer, mean
    ``connections / rate``: arrivals close to a Poisson process at ``--rate``. This is a
    closed loop: each connection's rate is 1 / (think + latency), so the rate reached is
    ``rate * think / (think + mean latency)`` — with 50 connections (100 ms think) a mean
    latency of 8 ms alone caps 500 req/s at ~463. Many mostly idle connections (default 200:
    400 ms think) keep that cap within ~2 % while the server keeps up, as many payment-service
    threads would. A think time is capped at 4 s, under uvicorn's 5-s keep-alive (uncapped, one
    draw in ~270,000 exceeds 5 s, and wrk then writes on a connection the server closed: a socket
    error of the load generator's making);
(4) one wrk run per window, back to back; after each, the server's resident memory
    (``VmRSS`` of the API process and its worker processes together: investigator views,
    rescoring), the per-route status counts and the background rescorer's queue depth and
    mean lag from ``/metrics``.
Prints one JSON line per window and a closing JSON line: errors (socket errors, non-2xx,
server 5xx), RSS growth from the end of the first window to the end of the last, and p99
per window with the ratio of the worst to the median window.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import random
import shutil
import signal
import statistics
import subprocess
import sys
import time
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import torch

from creditgraph.api.keys import create_key
from creditgraph.config import Settings
from creditgraph.ingest.csvfile import KINDS
from creditgraph.registry import ModelRegistry
from creditgraph.services.ingest import import_file
from creditgraph.services.retrain import retrain
from creditgraph.services.scoring import score_all
from creditgraph.store.embedded import EmbeddedStore
from creditgraph.synth import generate
from creditgraph.training_config import BaselineSection, OptimConfig, TrainingConfig

REPO = Path(__file__).resolve().parents[1]

LUA = """
local accounts = {ACCOUNTS}
local pay = "Bearer {PAY}"
local inv = "Bearer {INV}"
local run = "{RUN}"
local n = 0
math.randomseed({SEED})
local function pick() return accounts[math.random(#accounts)] end
local function pair()
  local a, b = pick(), pick()
  while b == a do b = pick() end
  return a, b
end
request = function()
  n = n + 1
  local r = math.random()
  if r < {P_RISK} then
    local a, b = pair()
    return wrk.format("POST", "/v1/risk/transfer",
      {["Authorization"] = pay, ["Content-Type"] = "application/json"},
      string.format('{"src":"%s","dst":"%s","amount":%d}', a, b, math.random(1, 500)))
  elseif r < {P_SCORE} then
    return wrk.format("GET", "/v1/accounts/" .. pick() .. "/score", {["Authorization"] = pay})
  elseif r < {P_INV} then
    return wrk.format("GET", "/v1/accounts/" .. pick() .. "/neighbourhood?hops=2&limit=10",
      {["Authorization"] = inv, ["X-Purpose"] = "soak"})
  else
    local a, b = pair()
    return wrk.format("POST", "/v1/transfers",
      {["Authorization"] = pay, ["Content-Type"] = "application/json"},
      string.format('{"items":[{"transfer_id":"soak-%s-%d","src":"%s","dst":"%s",' ..
        '"amount":%d,"timestamp":"2026-11-30T12:00:00Z"}]}', run, n, a, b, math.random(1, 500)))
  end
end
-- Think times are capped at 4 s: uvicorn closes a connection idle for 5 s (keep-alive), and
-- wrk's next request on it would count as a socket error no server fault caused.
delay = function() return math.min(-math.log(1 - math.random()) * {DELAY_MS}, 4000) end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "CGJSON {\\"requests\\": %d, \\"duration_us\\": %d, \\"socket_errors\\": %d, " ..
    "\\"non2xx\\": %d, \\"p50_us\\": %d, \\"p90_us\\": %d, \\"p99_us\\": %d, " ..
    "\\"p999_us\\": %d, \\"max_us\\": %d}\\n",
    summary.requests, summary.duration, e.connect + e.read + e.write + e.timeout, e.status,
    latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency:percentile(99.9), latency.max))
end
"""


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def prepare(work: Path, accounts: int, seed: int, max_epochs: int) -> Settings:
    settings = Settings(data_dir=work / "data")
    done = work / "data" / ".prepared"
    if done.exists():
        log(f"reusing {work / 'data'}")
        scored(settings)
        return settings
    shutil.rmtree(work / "data", ignore_errors=True)
    generate(accounts, seed, work / "net")
    store = EmbeddedStore(settings.embedded_path)
    try:
        for kind in KINDS:
            import_file(store, kind, work / "net" / f"{kind}.csv")
        job = TrainingConfig(
            optim=OptimConfig(max_epochs=max_epochs, patience=max_epochs),
            baseline=BaselineSection(enabled=False),
        )
        retrain(store, ModelRegistry(settings.models_dir), job, force=True)
    finally:
        store.close()
    done.touch()
    scored(settings)
    return settings


def scored(settings: Settings) -> None:
    """``creditgraph score`` once, as a deployment runs it after training: score look-ups
    then serve the stored batch reasons, as in production. Without it every look-up of a
    known account attributes its reasons at request time (~30 ms of CPU each with a GNN
    champion at 20k), which is not the payment path a platform runs."""
    done = settings.data_dir / ".scored"
    if done.exists():
        return
    store = EmbeddedStore(settings.embedded_path)
    try:
        t0 = time.perf_counter()
        report = score_all(store, ModelRegistry(settings.models_dir))
        log(f"score: {report.written} accounts in {time.perf_counter() - t0:.1f}s")
    finally:
        store.close()
    done.touch()


@contextmanager
def serve(env: dict[str, str], port: int) -> Iterator[int]:
    cmd = [str(REPO / ".venv" / "bin" / "creditgraph"), "serve", "--port", str(port)]
    proc = subprocess.Popen(
        [*cmd, "--log-level", "warning"], env=env, stdout=subprocess.DEVNULL, stderr=sys.stderr
    )
    try:
        deadline = time.monotonic() + 600
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"server exited with {proc.returncode}")
            try:
                if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200:
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


def family(pid: int) -> list[int]:
    """``pid`` and its descendants: the server's investigator view and rescoring workers
    (``CREDITGRAPH_INVESTIGATE_PROCESSES``, ``_RESCORE_PROCESSES``) hold memory and CPU of
    the service too."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        for task in Path(f"/proc/{p}/task").glob("*/children"):
            with contextlib.suppress(OSError):
                todo += [int(c) for c in task.read_text().split()]
    return out


def _rss_one(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def rss_kib(pid: int) -> int:
    """Resident memory of the server and its worker processes together."""
    total = 0
    for p in family(pid):
        with contextlib.suppress(OSError):
            total += _rss_one(p)
    return total


def _cpu_one(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """CPU time of the server and its live worker processes together."""
    total = 0.0
    for p in family(pid):
        with contextlib.suppress(OSError):
            total += _cpu_one(p)
    return total


def rescore_state(url: str) -> dict[str, float]:
    """The background rescorer's queue depth and its lag (first touch to kept) totals."""
    want = {
        "creditgraph_rescore_pending": "pending",
        "creditgraph_rescore_lag_seconds_sum": "lag_sum_s",
        "creditgraph_rescore_lag_seconds_count": "rescored",
    }
    out: dict[str, float] = {}
    for line in httpx.get(url + "/metrics", timeout=10).text.splitlines():
        name, _, value = line.partition(" ")
        if name in want:
            out[want[name]] = float(value)
    return out


def status_counts(url: str) -> dict[str, int]:
    """Requests so far by ``route status`` from the latency histogram's ``_count`` series."""
    out: dict[str, int] = {}
    for line in httpx.get(url + "/metrics", timeout=10).text.splitlines():
        if not line.startswith("creditgraph_http_request_duration_seconds_count{"):
            continue
        labels, value = line.rsplit(" ", 1)
        parts = dict(
            kv.split("=", 1) for kv in labels[labels.index("{") + 1 : labels.rindex("}")].split(",")
        )
        key = f"{parts['method'].strip(chr(34))} {parts['route'].strip(chr(34))} "
        key += parts["status"].strip('"')
        out[key] = int(float(value))
    return out


def wrk(script: Path, url: str, *, seconds: int, connections: int) -> dict[str, Any]:
    proc = subprocess.run(
        [
            "wrk",
            "-t1",
            f"-c{connections}",
            f"-d{seconds}s",
            "--timeout",
            "5s",
            "-s",
            str(script),
            url,
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"wrk failed: {proc.stderr[-2000:]}")
    line = next(x for x in proc.stdout.splitlines() if x.startswith("CGJSON "))
    r: dict[str, Any] = json.loads(line[len("CGJSON ") :])
    r["rps"] = round(r["requests"] / (r.pop("duration_us") / 1e6), 1)
    for k in ("p50_us", "p90_us", "p99_us", "p999_us", "max_us"):
        r[k.replace("_us", "_ms")] = round(r.pop(k) / 1000, 3)
    return r


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--accounts", type=int, default=20_000)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--work", type=Path, default=Path("/tmp/cg-soak"))
    ap.add_argument("--max-epochs", type=int, default=5)
    ap.add_argument("--rate", type=float, default=500.0, help="requests/s, all kinds together")
    ap.add_argument("--connections", type=int, default=200)
    ap.add_argument("--minutes", type=float, default=10.0, help="measured time")
    ap.add_argument("--window", type=int, default=60, help="seconds per measured window")
    ap.add_argument("--warmup", type=int, default=30, help="seconds before measuring")
    ap.add_argument("--port", type=int, default=8161)
    ap.add_argument(
        "--mix",
        # Payment traffic dominates; investigators are people (a 2-hop view costs ~100x a
        # risk check), the feeder sends a one-transfer batch 20 times a second.
        default="risk=0.80,score=0.15,investigator=0.01,ingest=0.04",
        help="share of each request kind",
    )
    args = ap.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is required (Debian: apt-get install wrk)")
    mix = {k: float(v) for k, v in (kv.split("=") for kv in args.mix.split(","))}
    if set(mix) != {"risk", "score", "investigator", "ingest"} or abs(sum(mix.values()) - 1) > 1e-9:
        sys.exit("--mix: risk, score, investigator and ingest shares adding up to 1")
    torch.set_num_threads(1)
    args.work.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    settings = prepare(args.work, args.accounts, args.seed, args.max_epochs)
    log(f"data ready in {time.perf_counter() - t0:.1f}s")
    store = EmbeddedStore(settings.embedded_path)
    try:
        counts = store.counts()
        ids = list(store.snapshot().account_ids)
    finally:
        store.close()
    rng = random.Random(args.seed)
    accounts = rng.sample(ids, min(5000, len(ids)))
    pay = create_key(settings, "payment", "soak")
    inv = create_key(settings, "investigator", "soak")
    run_id = f"{int(time.time())}"
    p_risk = mix["risk"]
    p_score = p_risk + mix["score"]
    p_inv = p_score + mix["investigator"]

    def script(name: str) -> Path:
        """The Lua script of one wrk run; ``name`` keeps its transfer ids apart from every
        other run's (each wrk run restarts its counter)."""
        path: Path = args.work / f"soak-{name}.lua"
        path.write_text(
            LUA.replace("{ACCOUNTS}", "{" + ",".join(json.dumps(a) for a in accounts) + "}")
            .replace("{PAY}", pay)
            .replace("{INV}", inv)
            .replace("{RUN}", f"{run_id}-{name}")
            .replace("{SEED}", str(zlib.crc32(f"{args.seed}-{name}".encode())))
            .replace("{P_RISK}", repr(p_risk))
            .replace("{P_SCORE}", repr(p_score))
            .replace("{P_INV}", repr(p_inv))
            .replace("{DELAY_MS}", repr(1000 * args.connections / args.rate))
        )
        return path

    env = {
        **os.environ,
        "CREDITGRAPH_DATA_DIR": str(settings.data_dir),
        "CREDITGRAPH_STORE": "embedded",
    }
    url = f"http://127.0.0.1:{args.port}"
    windows: list[dict[str, Any]] = []
    with serve(env, args.port) as pid:
        log(f"server ready (pid {pid}), RSS {rss_kib(pid) / 1024:.0f} MiB; warm-up {args.warmup}s")
        warm = wrk(script("warm"), url, seconds=args.warmup, connections=args.connections)
        log(f"warm-up: {warm}")
        before = status_counts(url)
        n_windows = max(1, round(args.minutes * 60 / args.window))
        for w in range(n_windows):
            cpu0, api0 = cpu_seconds(pid), _cpu_one(pid)
            rs0 = rescore_state(url)
            r = wrk(script(f"w{w}"), url, seconds=args.window, connections=args.connections)
            rs1 = rescore_state(url)
            # Whether rescoring keeps up with ingest: the queue at the window's end and the
            # mean lag of the accounts rescored during it.
            done = rs1.get("rescored", 0.0) - rs0.get("rescored", 0.0)
            r["rescore_pending"] = int(rs1.get("pending", 0.0))
            r["rescored"] = int(done)
            lag = rs1.get("lag_sum_s", 0.0) - rs0.get("lag_sum_s", 0.0)
            r["rescore_lag_mean_s"] = round(lag / done, 2) if done else None
            r["server_cpu_share"] = round((cpu_seconds(pid) - cpu0) / args.window, 3)
            # The API process alone: one GIL, the share that bounds the rate it can serve.
            r["api_process_cpu_share"] = round((_cpu_one(pid) - api0) / args.window, 3)
            r["rss_mib"] = round(rss_kib(pid) / 1024, 1)
            r["rss_mib_api_process"] = round(_rss_one(pid) / 1024, 1)
            r["processes"] = len(family(pid))
            r["load_avg_1m"] = round(os.getloadavg()[0], 2)
            r["window"] = w + 1
            windows.append(r)
            print(json.dumps({"window": r}), flush=True)
        after = status_counts(url)
    by_route = {k: v - before.get(k, 0) for k, v in sorted(after.items()) if v - before.get(k, 0)}
    server_5xx = sum(v for k, v in by_route.items() if k.rsplit(" ", 1)[1].startswith("5"))
    p99 = [w["p99_ms"] for w in windows]
    rss = [w["rss_mib"] for w in windows]
    summary = {
        "requests": sum(w["requests"] for w in windows),
        "rps_mean": round(statistics.fmean(w["rps"] for w in windows), 1),
        "socket_errors": sum(w["socket_errors"] for w in windows),
        "non2xx": sum(w["non2xx"] for w in windows),
        "server_5xx": server_5xx,
        "by_route_status": by_route,
        "p99_ms_per_window": p99,
        "p99_worst_over_median": round(max(p99) / statistics.median(p99), 2),
        "rss_mib_per_window": rss,
        "rss_growth_pct": round(100 * (rss[-1] - rss[0]) / rss[0], 2),
        "config": {
            "rate": args.rate,
            "connections": args.connections,
            "mix": mix,
            "window_s": args.window,
            "windows": len(windows),
            "warmup_s": args.warmup,
        },
        "data": {
            "accounts": counts.accounts,
            "transfers": counts.transfers,
            "links": counts.links,
        },
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "load_avg_end": os.getloadavg(),
        },
    }
    summary["ok"] = {
        "zero_errors": summary["socket_errors"] == 0 and summary["non2xx"] == 0 and server_5xx == 0,
        "rss_growth_below_5pct": summary["rss_growth_pct"] < 5,
    }
    print(json.dumps(summary), flush=True)


if __name__ == "__main__":
    main()
