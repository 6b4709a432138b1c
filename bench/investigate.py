"""Investigator reads through ``creditgraph serve`` over loopback, with the payment path beside.

    .venv/bin/python bench/investigate.py --data-dir /tmp/inv/1m/data --store embedded
    CREDITGRAPH_NEO4J_URI=... .venv/bin/python bench/investigate.py --data-dir D --store neo4j

The data directory holds the store (embedded) or at least the models and keys (Neo4j: the
graph is in the server the ``CREDITGRAPH_NEO4J_*`` variables name); a champion model makes the
risk endpoint answer. Steps: (1) pick ``--samples`` random accounts (seeded), random pairs of
them, the ``--hubs`` accounts with the most relationships and random rings; (2) start the API
(one uvicorn worker) on that store; (3) a paced wrk run of ``POST /v1/risk/transfer`` alone
(``--risk-rate`` requests/s) for the payment path's baseline; (4) one client, sequential, every
investigator request kind for every sample (a few warm-up requests first), while wrk keeps the
same paced risk load in ``--risk-window`` second windows; (5) p50 / p95 / max per kind, the
risk p99 of each window, and a closing JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from creditgraph.api.keys import create_key
from creditgraph.config import Settings
from creditgraph.store.base import GraphStore
from creditgraph.store.embedded import EmbeddedStore
from creditgraph.store.neo4j import Neo4jStore
from risk_api import RISK, server, start_wrk, wrk_result

REPO = Path(__file__).resolve().parents[1]
# Transfers and friendships only (the synthetic network's bulk): pass --hub-ids to compare.
TOP_HUBS_NEO4J = """
MATCH (a:Account)
WITH a, COUNT { (a)-[:TRANSFERRED]-() } + COUNT { (a)-[:FRIEND]-() } AS d
ORDER BY d DESC LIMIT $k
RETURN a.account_id AS id, d
"""

# Every node and relationship record with its properties, and the account-id index, read once.
PREWARM_NEO4J = (
    "MATCH (a:Account) WHERE a.account_id >= '' RETURN count(*)",
    "MATCH (a) RETURN sum(size(keys(properties(a))))",
    "MATCH ()-[r]->() RETURN sum(size(keys(properties(r))))",
)


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def open_store(settings: Settings) -> GraphStore:
    if settings.store == "neo4j":
        return Neo4jStore.connect(settings)
    return EmbeddedStore(settings.embedded_path)


def sample_accounts(store: GraphStore, n: int, rng: random.Random) -> list[str]:
    """Random stored accounts, drawn by the synthetic id format (A0000001...)."""
    total = store.counts().accounts
    out: list[str] = []
    while len(out) < n:
        ids = [f"A{rng.randint(1, total):07d}" for _ in range(4 * n)]
        missing = set(store.missing_accounts(ids))
        out += [a for a in dict.fromkeys(ids) if a not in missing and a not in out]
    return out[:n]


def top_hubs(store: GraphStore, k: int) -> list[tuple[str, int]]:
    """The accounts with the most relationships (degrees, never the edge lists)."""
    if isinstance(store, EmbeddedStore):
        rows = store._db.execute(
            "SELECT account_id, sum(n) FROM degrees GROUP BY account_id ORDER BY 2 DESC LIMIT ?",
            (k,),
        ).fetchall()
        return [(a, int(d)) for a, d in rows]
    assert isinstance(store, Neo4jStore)
    with store._driver.session(database=store._database) as s:
        return [(r["id"], int(r["d"])) for r in s.run(TOP_HUBS_NEO4J, k=k)]


def pct(values: list[float], q: float) -> float:
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data-dir", type=Path, required=True)
    ap.add_argument("--store", choices=["embedded", "neo4j"], default="embedded")
    ap.add_argument("--samples", type=int, default=20)
    ap.add_argument("--hubs", type=int, default=3)
    ap.add_argument("--rings", type=int, default=10)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--port", type=int, default=18180)
    ap.add_argument("--risk-rate", type=int, default=100, help="paced risk requests/s")
    ap.add_argument("--risk-window", type=int, default=30, help="seconds per wrk window")
    ap.add_argument("--connections", type=int, default=8)
    ap.add_argument("--kinds", default="", help="comma-separated subset of request kinds")
    ap.add_argument(
        "--hub-ids", default="", help="comma-separated hubs to use instead of the top ones"
    )
    ap.add_argument("--work", type=Path, default=Path("/tmp/cg-invbench"))
    ap.add_argument(
        "--warmup",
        type=int,
        default=10,
        help="accounts (none of the timed ones) whose views are requested once before timing",
    )
    ap.add_argument(
        "--prewarm",
        action="store_true",
        help="Neo4j: read every node and relationship once first (Community has no page-cache"
        " warm-up on restart; a long-running server has its store in the page cache)",
    )
    args = ap.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    os.environ["CREDITGRAPH_STORE"] = args.store
    os.environ["CREDITGRAPH_DATA_DIR"] = str(args.data_dir)
    settings = Settings()
    rng = random.Random(args.seed)

    t0 = time.perf_counter()
    load_start = os.getloadavg()
    store = open_store(settings)
    try:
        counts = store.counts()
        accounts = sample_accounts(store, args.samples * 3 + args.warmup, rng)
        accounts, warm = accounts[: args.samples * 3], accounts[args.samples * 3 :]
        hubs = (
            [(h, store.expand([h], None, 0)[h].total) for h in args.hub_ids.split(",")]
            if args.hub_ids
            else top_hubs(store, args.hubs)
        )
        if args.prewarm and isinstance(store, Neo4jStore):
            t1 = time.perf_counter()
            with store._driver.session(database=store._database) as s:
                for q in PREWARM_NEO4J:
                    s.run(q).consume()
            log(f"prewarm: {time.perf_counter() - t1:.1f}s")
        page = store.find_rings(limit=1000)
        rings = [r.ring_id for r in page.items]
    finally:
        store.close()
    rng.shuffle(rings)
    rings = rings[: args.rings]
    singles, others = accounts[: args.samples], accounts[args.samples :]
    pairs = list(zip(others[: args.samples], others[args.samples :], strict=True))
    log(
        f"{counts.accounts} accounts, hubs {hubs}, {len(rings)} rings"
        f" ({time.perf_counter() - t0:.1f}s)"
    )

    inv_key = create_key(settings, "investigator", "bench-investigate")
    pay_key = create_key(settings, "payment", "bench-investigate")
    env = dict(os.environ)
    url = f"http://127.0.0.1:{args.port}"
    cmd = [
        str(REPO / ".venv/bin/creditgraph"),
        "serve",
        "--port",
        str(args.port),
        "--log-level",
        "warning",
    ]
    t0 = time.perf_counter()
    headers = {"Authorization": f"Bearer {inv_key}", "X-Purpose": "bench/investigate.py"}
    hub_ids = [h for h, _ in hubs]
    kinds: dict[str, list[tuple[str, dict[str, Any]]]] = {
        "account": [(f"/v1/accounts/{a}", {}) for a in singles],
        "transfers": [(f"/v1/accounts/{a}/transfers", {}) for a in singles],
        "neighbourhood_1": [(f"/v1/accounts/{a}/neighbourhood", {"hops": 1}) for a in singles],
        "neighbourhood_2": [(f"/v1/accounts/{a}/neighbourhood", {"hops": 2}) for a in singles],
        "neighbourhood_3": [(f"/v1/accounts/{a}/neighbourhood", {"hops": 3}) for a in singles],
        "paths_4": [("/v1/paths", {"from": a, "to": b, "max_hops": 4}) for a, b in pairs],
        "paths_6": [("/v1/paths", {"from": a, "to": b, "max_hops": 6}) for a, b in pairs],
        "ring": [(f"/v1/rings/{r}", {}) for r in rings],
        "hub_account": [(f"/v1/accounts/{h}", {}) for h in hub_ids],
        "hub_transfers": [(f"/v1/accounts/{h}/transfers", {}) for h in hub_ids],
        "hub_neighbourhood_1": [(f"/v1/accounts/{h}/neighbourhood", {"hops": 1}) for h in hub_ids],
        "hub_neighbourhood_2": [(f"/v1/accounts/{h}/neighbourhood", {"hops": 2}) for h in hub_ids],
        "hub_paths_4": [
            ("/v1/paths", {"from": h, "to": a, "max_hops": 4})
            for h, a in zip(hub_ids, singles, strict=False)
        ],
    }
    if args.kinds:
        kinds = {k: v for k, v in kinds.items() if k in args.kinds.split(",")}
    bodies = [
        json.dumps(
            {
                "src": rng.choice(accounts),
                "dst": rng.choice(accounts),
                "amount": round(rng.uniform(1, 500), 2),
                "currency": "EUR",
            }
        )
        for _ in range(500)
    ]
    results: dict[str, Any] = {}
    risk_windows: list[dict[str, Any]] = []
    with server(cmd, env, url, "/healthz") as pid:
        client = httpx.Client(base_url=url, headers=headers, timeout=120)
        ready = False
        deadline = time.monotonic() + 900  # the engine loads a snapshot of the whole store
        while time.monotonic() < deadline:
            r = client.get("/readyz")
            if r.status_code == 200:
                ready = True
                break
            if r.json().get("error"):
                break
            time.sleep(1)
        log(f"API up in {time.perf_counter() - t0:.1f}s, model loaded: {ready}")
        delay = args.connections / args.risk_rate * 1000
        baseline = None
        if ready:
            baseline = wrk_result(
                start_wrk(
                    "inv-risk-alone",
                    url,
                    RISK,
                    bodies,
                    pay_key,
                    duration=args.risk_window,
                    connections=args.connections,
                    delay_ms=delay,
                    work=args.work,
                )
            )
            log(f"risk alone: {baseline}")
        # Warm-up: the views of accounts the timed runs do not use (query plans, code paths,
        # index pages), never the timed accounts' own records.
        t0 = time.perf_counter()
        warm_status: dict[int, int] = {}
        for a, b in zip(warm, warm[1:] + warm[:1], strict=True):
            warm_requests: list[tuple[str, dict[str, Any]]] = [
                (f"/v1/accounts/{a}", {}),
                (f"/v1/accounts/{a}/transfers", {}),
                (f"/v1/accounts/{a}/neighbourhood", {"hops": 1}),
                (f"/v1/accounts/{a}/neighbourhood", {"hops": 2}),
                ("/v1/paths", {"from": a, "to": b, "max_hops": 4}),
            ]
            for path, params in warm_requests:
                code = client.get(path, params=params).status_code
                warm_status[code] = warm_status.get(code, 0) + 1
        log(f"warm-up on {len(warm)} accounts: {time.perf_counter() - t0:.1f}s, {warm_status}")
        wrk = None
        wrk_started = 0.0

        def rotate_wrk(final: bool = False) -> None:
            nonlocal wrk, wrk_started
            if not ready:
                return
            if wrk is not None and (final or time.monotonic() - wrk_started >= args.risk_window):
                risk_windows.append(wrk_result(wrk))
                wrk = None
            if wrk is None and not final:
                wrk_started = time.monotonic()
                wrk = start_wrk(
                    f"inv-risk-{len(risk_windows)}",
                    url,
                    RISK,
                    bodies,
                    pay_key,
                    duration=args.risk_window,
                    connections=args.connections,
                    delay_ms=delay,
                    work=args.work,
                )

        cpu0 = _cpu(pid)
        for kind, requests in kinds.items():
            if not requests:  # e.g. a store without rings
                log(f"{kind}: nothing to request")
                continue
            times: list[float] = []
            extra: dict[str, list[Any]] = {"status": [], "nodes": [], "complete": [], "found": []}
            for path, params in requests:
                rotate_wrk()
                t = time.perf_counter()
                r = client.get(path, params=params)
                body = r.content
                times.append((time.perf_counter() - t) * 1000)
                extra["status"].append(r.status_code)
                if r.status_code != 200:
                    log(f"{kind} {path} {params}: {r.status_code} {body[:300]!r}")
                if r.status_code == 200 and ("neighbourhood" in kind or "paths" in kind):
                    j = json.loads(body)
                    extra["nodes"].append(len(j["nodes"]))
                    if "paths" in kind:
                        extra["complete"].append(j["complete"])
                        extra["found"].append(j["found"])
            row: dict[str, Any] = {
                "n": len(times),
                "p50_ms": round(pct(times, 50), 1),
                "p95_ms": round(pct(times, 95), 1),
                "max_ms": round(max(times), 1),
                "errors": sum(1 for s in extra["status"] if s != 200),
            }
            failed = sorted({s for s in extra["status"] if s != 200})
            if failed:
                row["error_status"] = {s: extra["status"].count(s) for s in failed}
            if extra["nodes"]:
                row["nodes_mean"] = round(statistics.mean(extra["nodes"]), 1)
            if extra["complete"]:
                row["complete"] = sum(extra["complete"])
                row["found"] = sum(extra["found"])
            results[kind] = row
            log(f"{kind}: {row}")
        rotate_wrk(final=True)
        cpu = _cpu(pid) - cpu0
        client.close()
    risk_p99 = [w["p99_ms"] for w in risk_windows]
    out = {
        "store": args.store,
        "accounts": counts.accounts,
        "transfers": counts.transfers,
        "links": counts.links,
        "hubs": hubs,
        "results": results,
        "risk_rate": args.risk_rate,
        "risk_alone": baseline,
        "risk_windows": risk_windows,
        "risk_p99_max_ms": max(risk_p99) if risk_p99 else None,
        "api_cpu_s": round(cpu, 1),
        "load_start": load_start,
        "load": os.getloadavg(),
        "prewarm": args.prewarm,
        "warmup_accounts": len(warm),
        "machine": f"{platform.machine()} {os.cpu_count()} cores",
    }
    print_table(out)
    print(json.dumps(out))


def _cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def print_table(out: dict[str, Any]) -> None:
    print(
        f"\n{out['store']}, {out['accounts']:,} accounts, load {out['load_start']} at the start,"
        f" {out['load']} at the end; warm-up on {out['warmup_accounts']} accounts,"
        f" prewarm {out['prewarm']}"
    )
    print("| request | n | p50 ms | p95 ms | max ms | notes |")
    print("|---|---|---|---|---|---|")
    for kind, r in out["results"].items():
        notes = []
        if "nodes_mean" in r:
            notes.append(f"{r['nodes_mean']} nodes on average")
        if "complete" in r:
            notes.append(f"found {r['found']}/{r['n']}, complete {r['complete']}/{r['n']}")
        if r["errors"]:
            codes = ", ".join(f"{n}x {s}" for s, n in r["error_status"].items())
            notes.append(f"{r['errors']} errors ({codes})")
        print(
            f"| {kind} | {r['n']} | {r['p50_ms']} | {r['p95_ms']} | {r['max_ms']} |"
            f" {'; '.join(notes)} |"
        )
    if out["risk_alone"]:
        print(
            f"risk at {out['risk_rate']}/s: alone p99 {out['risk_alone']['p99_ms']} ms; during the"
            f" investigator run p99 per window {[w['p99_ms'] for w in out['risk_windows']]} ms"
        )
    sys.stdout.flush()


if __name__ == "__main__":
    main()
