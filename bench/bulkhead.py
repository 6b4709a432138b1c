"""The payment path beside heavy investigator work: risk and score p99 alone vs under load.

    flock /work/coord/heavy.lock .venv/bin/python bench/bulkhead.py --work /tmp/cg-bulkhead \
        --accounts 200000 [--code /path/to/other/checkout/src ...]

Loopback only, bounded in time. Steps: (1) data under ``--work`` (reused when present; the
same preparation as bench/risk_api.py: synthetic network, embedded store, a briefly trained
champion), or ``--data-dir`` for a prepared one; (2) for each ``--code`` source tree (default:
this checkout) one API server (``creditgraph serve``, one uvicorn worker) on the same data;
(3) per server two phases of ``--duration`` seconds, side by side in one run:
- ``alone``: wrk paces ``POST /v1/risk/transfer`` at ``--rate`` requests/s while one client
  thread looks up payment-side scores (``GET /v1/accounts/{id}/score`` with the payment key)
  back to back with ``--score-gap`` seconds between them;
- ``investigators``: the same, while ``--heavy`` client threads send 3-hop neighbourhoods
  (``--hops``, ``--limit``) of the busiest accounts back to back, each answered (200, 422
  past the deadline, 429 from the bulkhead: all counted).
Prints a table and a closing JSON line. The machine is shared: ``uptime`` goes beside.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from creditgraph.api.keys import create_key
from creditgraph.config import Settings
from creditgraph.store.embedded import EmbeddedStore
from risk_api import RISK, prepare, server, start_wrk, wrk_result

REPO = Path(__file__).resolve().parents[1]


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    s = sorted(values)
    return round(s[min(len(s) - 1, int(q / 100 * len(s)))], 3)


def busiest(settings: Settings, k: int) -> list[str]:
    store = EmbeddedStore(settings.embedded_path)
    try:
        rows = store._db.execute(
            "SELECT account_id FROM degrees GROUP BY account_id ORDER BY sum(n) DESC LIMIT ?",
            (k,),
        ).fetchall()
        return [r[0] for r in rows]
    finally:
        store.close()


def sample(settings: Settings, n: int, rng: random.Random) -> list[str]:
    store = EmbeddedStore(settings.embedded_path)
    try:
        ids = [r[0] for r in store._db.execute("SELECT account_id FROM accounts")]
    finally:
        store.close()
    return rng.sample(ids, min(n, len(ids)))


class Loop(threading.Thread):
    """One client calling ``url_of(i)`` back to back until ``stop``; latencies in ms."""

    def __init__(
        self,
        base: str,
        key: str,
        urls: list[str],
        stop: threading.Event,
        *,
        gap_s: float = 0.0,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(daemon=True)
        self.client = httpx.Client(
            base_url=base,
            headers={"Authorization": f"Bearer {key}", **(headers or {})},
            timeout=120,
        )
        self.urls = urls
        self.stop = stop
        self.gap_s = gap_s
        self.ms: list[float] = []
        self.status: Counter[int] = Counter()

    def run(self) -> None:
        i = 0
        while not self.stop.is_set():
            t0 = time.perf_counter()
            r = self.client.get(self.urls[i % len(self.urls)])
            self.ms.append((time.perf_counter() - t0) * 1e3)
            self.status[r.status_code] += 1
            i += 1
            if self.gap_s:
                self.stop.wait(self.gap_s)
        self.client.close()


def phase(
    name: str,
    url: str,
    keys: dict[str, str],
    bodies: list[str],
    score_urls: list[str],
    heavy_urls: list[str],
    args: argparse.Namespace,
) -> dict[str, Any]:
    stop = threading.Event()
    scorer = Loop(url, keys["payment"], score_urls, stop, gap_s=args.score_gap)
    heavy = [
        Loop(
            url,
            keys["investigator"],
            heavy_urls[k:] + heavy_urls[:k],
            stop,
            headers={"X-Purpose": "bench: bulkhead"},
        )
        for k in range(args.heavy if name == "investigators" else 0)
    ]
    for t in heavy:
        t.start()
    if heavy:
        time.sleep(1.0)  # the heavy requests are running before the measured window opens
    scorer.start()
    wrk = start_wrk(
        f"bulkhead-{name}",
        url,
        RISK,
        bodies,
        keys["payment"],
        duration=args.duration,
        connections=args.connections,
        delay_ms=args.connections / args.rate * 1000,
        work=args.work,
    )
    risk = wrk_result(wrk)
    stop.set()
    scorer.join()
    for t in heavy:
        t.join()
    inv_ms = [m for t in heavy for m in t.ms]
    inv_status: Counter[int] = Counter()
    for t in heavy:
        inv_status.update(t.status)
    return {
        "risk": risk,
        "score": {
            "requests": len(scorer.ms),
            "status": dict(scorer.status),
            "p50_ms": pct(scorer.ms, 50),
            "p99_ms": pct(scorer.ms, 99),
            "max_ms": round(max(scorer.ms), 3) if scorer.ms else None,
        },
        "investigator": {
            "threads": len(heavy),
            "requests": len(inv_ms),
            "status": {str(k): v for k, v in sorted(inv_status.items())},
            "p50_ms": pct(inv_ms, 50),
            "max_ms": round(max(inv_ms), 3) if inv_ms else None,
        },
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--work", type=Path, default=Path("/tmp/cg-bulkhead"))
    ap.add_argument("--accounts", type=int, default=200_000)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--max-epochs", type=int, default=5)
    ap.add_argument("--data-dir", type=Path, help="a prepared data dir (store + champion)")
    ap.add_argument("--code", type=Path, action="append", help="a src/ tree to serve from")
    ap.add_argument("--port", type=int, default=8141)
    ap.add_argument("--duration", type=int, default=20)
    ap.add_argument("--rate", type=float, default=200.0)
    ap.add_argument("--connections", type=int, default=8)
    ap.add_argument("--score-gap", type=float, default=0.05)
    ap.add_argument("--heavy", type=int, default=4)
    ap.add_argument("--hops", type=int, default=3)
    ap.add_argument("--limit", type=int, default=200)
    args = ap.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    if args.data_dir is not None:
        settings = Settings(data_dir=args.data_dir)
    else:
        settings = prepare(args.work, args.accounts, args.seed, args.max_epochs)
    keys = {
        role: create_key(settings, role, f"bench-{role}") for role in ("payment", "investigator")
    }
    rng = random.Random(args.seed)
    known = sample(settings, 5000, rng)
    bodies = [
        json.dumps(
            {
                "src": rng.choice(known),
                "dst": rng.choice(known),
                "amount": round(rng.uniform(1, 500), 2),
                "currency": "EUR",
            }
        )
        for _ in range(2000)
    ]
    score_urls = [f"/v1/accounts/{a}/score" for a in known[:500]]
    centres = busiest(settings, 20) + known[:20]
    heavy_urls = [
        f"/v1/accounts/{a}/neighbourhood?hops={args.hops}&limit={args.limit}" for a in centres
    ]
    codes = args.code or [REPO / "src"]
    url = f"http://127.0.0.1:{args.port}"
    out: dict[str, Any] = {
        "command": " ".join(sys.argv),
        "machine": f"{platform.machine()} {os.cpu_count()} cpus",
        "uptime_before": subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip(),
        "data_dir": str(settings.data_dir),
        "runs": {},
    }
    for code in codes:
        env = {
            **os.environ,
            "PYTHONPATH": str(code),
            "CREDITGRAPH_DATA_DIR": str(settings.data_dir),
            "CREDITGRAPH_STORE": "embedded",
        }
        cmd = [
            sys.executable,
            "-m",
            "creditgraph.entry",
            "serve",
            "--port",
            str(args.port),
            "--log-level",
            "warning",
        ]
        log(f"serving from {code}")
        with server(cmd, env, url, "/readyz"):
            warm = phase(
                "warm",
                url,
                keys,
                bodies,
                score_urls,
                heavy_urls,
                argparse.Namespace(**{**vars(args), "duration": 5, "heavy": 0}),
            )
            del warm
            run = {
                name: phase(name, url, keys, bodies, score_urls, heavy_urls, args)
                for name in ("alone", "investigators")
            }
        out["runs"][str(code)] = run
        for name, r in run.items():
            log(
                f"{code} {name}: risk p50 {r['risk']['p50_ms']} p99 {r['risk']['p99_ms']} "
                f"max {r['risk']['max_ms']} ms ({r['risk']['rps']} req/s, non2xx "
                f"{r['risk']['non2xx']}); score p99 {r['score']['p99_ms']} max "
                f"{r['score']['max_ms']} ms; investigator {r['investigator']['status']} "
                f"p50 {r['investigator']['p50_ms']} ms"
            )
    out["uptime_after"] = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    print(json.dumps(out))


if __name__ == "__main__":
    main()
