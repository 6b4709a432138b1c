"""Where one ``POST /v1/risk/transfer`` spends its CPU, in-process, end to end (issue 13).

    nice -n 19 .venv/bin/python bench/risk_route.py --data /tmp/w20k/data \
        --policy model,baseline --code /tmp/base/src,src --rounds 3

No HTTP server: each call goes through the app's whole ASGI stack (metrics, refusal audit,
body guard, bulkheads, the risk fast path, the route, the decision log) exactly as uvicorn
would drive it, with the ``Authorization`` header of a payment key and a known-account body.
Per (code tree, policy) it reports CPU µs per call (``time.process_time``), minimum over
``--rounds`` alternating rounds, so the trees are compared in one run under the same load.
``--code``: source trees (``src`` folders) to import ``creditgraph`` from, each measured in
its own subprocess (e.g. the branch point's ``src`` exported with ``git archive``).
``--profile FILE``: instead, one cProfile of the current tree's calls, top functions printed.
``--parts``: also time the route's steps one by one (parse, decide, decision line, JSON).
``--concurrency N``: N calls in flight at once (review answers then share review-queue
commits); with 1 (default) the CPU of each call is also reported by the answer it gave.
The data is a ``bench/risk_api.py`` work folder's ``data`` (a copy is used: the decision
log grows). Prints one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import hashlib
import io
import json
import os
import pstats
import random
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import orjson


async def asgi_call(
    app: Any, body: bytes, auth: bytes, path: str = "/v1/risk/transfer"
) -> tuple[int, bytes]:
    """One POST to ``path`` through ``app``'s ASGI stack; (status, response body)."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", b"bench"),
            (b"content-type", b"application/json"),
            (b"authorization", auth),
            (b"content-length", str(len(body)).encode()),
        ],
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
        return {"type": "http.disconnect"}

    status = 0
    out: list[bytes] = []

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = int(message["status"])
        elif message["type"] == "http.response.body":
            out.append(message.get("body", b""))

    await app(scope, receive, send)
    return status, b"".join(out)


def bodies_for(ids: list[str], n: int, seed: int) -> list[bytes]:
    """Known-account bodies drawn as ``bench/risk_api.py`` draws them."""
    rng = random.Random(seed)
    return [
        orjson.dumps(
            {
                "src": rng.choice(ids),
                "dst": rng.choice(ids),
                "amount": round(rng.uniform(1, 500), 2),
                "currency": "EUR",
            }
        )
        for _ in range(n)
    ]


def thread_cpu() -> dict[str, float]:
    """CPU seconds (user + system) of each of this process's threads, by Python name."""
    names = {t.native_id: t.name for t in threading.enumerate()}
    tick = os.sysconf("SC_CLK_TCK")
    out: dict[str, float] = {}
    for task in Path("/proc/self/task").iterdir():
        try:
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        name = names.get(int(task.name), "other")
        name = name.split("(")[0].rstrip("-_0123456789") or name
        out[name] = out.get(name, 0.0) + (int(fields[11]) + int(fields[12])) / tick
    return out


async def measure(
    data: Path, policy: str, n: int, profile: Path | None, parts: bool, concurrency: int = 1
) -> Any:
    """The child's work: one app over ``data`` serving ``policy``."""
    import torch

    torch.set_num_threads(1)
    if policy == "baseline":
        os.environ["CREDITGRAPH_RISK_TRANSFER_MODEL"] = "false"
    from creditgraph.api.app import create_app
    from creditgraph.api.keys import create_key
    from creditgraph.config import Settings

    settings = Settings(data_dir=data)
    key = create_key(settings, "payment", "bench-route")
    auth = f"Bearer {key}".encode()
    app = create_app(settings)
    out: dict[str, Any] = {"policy": policy}
    async with app.router.lifespan_context(app):
        state = app.state.api
        engine = state.serving.engine
        out["learned"] = engine.transfers is not None
        bodies = bodies_for(list(engine.account_ids), n, seed=0)
        # Warm on the same bodies (lazy imports, caches, the pseudonyms of the accounts they
        # name): the measured pass is what wrk's rotation through its bodies sees.
        for b in bodies:
            status, _ = await asgi_call(app, b, auth)
            assert status == 200, status
        decisions: dict[str, int] = {}
        prof = cProfile.Profile() if profile is not None else None
        threads0 = thread_cpu()
        t0 = time.process_time()
        if prof is not None:
            prof.enable()
        by_answer: dict[str, float] = {}
        for k in range(0, n, concurrency):
            c0 = time.process_time()
            group = bodies[k : k + concurrency]
            results = await asyncio.gather(*(asgi_call(app, b, auth) for b in group))
            spent = (time.process_time() - c0) / len(group)
            for status, answer in results:
                if status != 200:
                    raise RuntimeError(f"status {status}: {answer[:300]!r}")
                d = orjson.loads(answer)["decision"]
                decisions[d] = decisions.get(d, 0) + 1
                by_answer[d] = by_answer.get(d, 0.0) + spent
        if prof is not None:
            prof.disable()
        out["asgi_cpu_us"] = round((time.process_time() - t0) / n * 1e6, 1)
        if concurrency == 1:
            # CPU of the process during each call (its writer threads' work included), by
            # the answer it gave: review answers pay for factors and the review queue.
            out["cpu_us_by_answer"] = {
                d: round(by_answer[d] / decisions[d] * 1e6, 1) for d in sorted(decisions)
            }
        writer = getattr(state.serving, "_reviews", None)
        if writer is not None:
            out["review_batches"] = {"batches": writer.batches, "items": writer.items}
        threads1 = thread_cpu()
        # Which threads spent it (the event loop is MainThread; clock ticks: ~10 ms grain).
        out["threads_cpu_us"] = {
            k: round((v - threads0.get(k, 0.0)) / n * 1e6, 1)
            for k, v in threads1.items()
            if v - threads0.get(k, 0.0) > 0
        }
        out["decisions"] = decisions
        if prof is not None and profile is not None:
            prof.dump_stats(str(profile))
            text = io.StringIO()
            stats = pstats.Stats(prof, stream=text)
            stats.sort_stats("tottime").print_stats(30)
            stats.sort_stats("cumulative").print_stats(45)
            print(text.getvalue(), file=sys.stderr)
        # The answers themselves, byte for byte, to compare code trees: bodies with a fixed
        # timestamp (the transfer model's time features then do not move with the clock).
        digest = hashlib.sha256()
        # The decision fields alone (decision, risk, model version, degraded, the reason
        # codes in order): equal across trees that change only how reasons are worded or
        # attributed.
        decided = hashlib.sha256()
        for b in bodies[:500]:
            fixed = orjson.loads(b) | {"timestamp": "2026-12-01T12:00:00Z"}
            status, answer = await asgi_call(app, orjson.dumps(fixed), auth)
            digest.update(str(status).encode() + b" " + answer + b"\n")
            a = orjson.loads(answer)
            fields = [a["decision"], a["risk"], a["model_version"], a["degraded"]]
            fields.append([r["code"] for r in a["reasons"]])
            decided.update(orjson.dumps([status, fields]) + b"\n")
        out["answers_sha256_500"] = digest.hexdigest()[:16]
        out["decisions_sha256_500"] = decided.hexdigest()[:16]
        if parts:
            out["parts_us"] = _parts(state, bodies)
            out["stubbed_us"] = await _stubbed(app, state, bodies, auth)
    return out


async def _stubbed(app: Any, state: Any, bodies: list[bytes], auth: bytes) -> dict[str, float]:
    """CPU µs per ASGI call with parts of the route stubbed out (attribution only: the
    answers are then wrong): no decision line; a fixed decision (one computed before) and
    no line, i.e. what the middleware and the route's own glue cost."""
    serving, decisions = state.serving, state.decisions
    fixed = await serving.decide(serving_check(bodies[0]))

    async def fixed_decide(_check: Any) -> Any:
        return fixed

    async def passes() -> float:
        t0 = time.process_time()
        for b in bodies:
            await asgi_call(app, b, auth)
        return round((time.process_time() - t0) / len(bodies) * 1e6, 1)

    out = {"full": await passes()}
    gc.disable()
    try:
        out["full_gc_off"] = await passes()
    finally:
        gc.enable()
    real_line, real_decide = decisions.risk_sync, serving.decide
    spent = {"line": 0.0, "decide": 0.0}

    def timed_line(**kw: Any) -> int:
        t0 = time.process_time()
        try:
            return int(real_line(**kw))
        finally:
            spent["line"] += time.process_time() - t0

    async def timed_decide(check: Any) -> Any:
        t0 = time.process_time()
        try:
            return await real_decide(check)
        finally:
            spent["decide"] += time.process_time() - t0

    try:
        decisions.risk_sync, serving.decide = timed_line, timed_decide
        out["timed_full"] = await passes()
        out["timed_line"] = round(spent["line"] / len(bodies) * 1e6, 1)
        out["timed_decide"] = round(spent["decide"] / len(bodies) * 1e6, 1)
        decisions.risk_sync = lambda **_kw: 0
        out["no_decision_line"] = await passes()
        serving.decide = fixed_decide
        out["fixed_decision_no_line"] = await passes()
    finally:
        decisions.risk_sync, serving.decide = real_line, real_decide
    return out


def serving_check(body: bytes) -> Any:
    from creditgraph.services.risk import TransferCheck

    d = orjson.loads(body)
    return TransferCheck(d["src"], d["dst"], d["amount"], currency=d.get("currency"))


def _parts(state: Any, bodies: list[bytes]) -> dict[str, float]:
    """The route's steps one by one, CPU µs each (same bodies)."""
    from creditgraph.api.routes.risk import decision_payload
    from creditgraph.api.schemas.risk import TransferRiskCreate
    from creditgraph.services.risk import TransferCheck

    serving = state.serving
    engine = serving.engine
    store = serving.live_store()
    n = len(bodies)

    def cpu(fn: Any, items: list[Any]) -> float:
        t0 = time.process_time()
        for x in items:
            fn(x)
        return round((time.process_time() - t0) / n * 1e6, 1)

    parsed = [TransferRiskCreate.model_validate_json(b) for b in bodies]
    checks = [TransferCheck(p.src, p.dst, p.amount, currency=p.currency) for p in parsed]
    decided = [engine.decide(c, store) for c in checks]
    res = {
        "parse": cpu(TransferRiskCreate.model_validate_json, bodies),
        "inputs_dump": cpu(lambda p: p.model_dump(mode="json"), parsed),
        "decide": cpu(lambda c: engine.decide(c, store), checks),
        "answer_json": cpu(lambda d: orjson.dumps(decision_payload(d)), decided),
    }
    pairs = list(zip(parsed, decided, strict=True))

    def line(pd: Any) -> None:
        p, d = pd
        state.decisions.risk_sync(
            inputs=p.model_dump(mode="json"),
            src=p.src,
            dst=p.dst,
            decision=d.decision,
            risk=d.risk,
            model_version=d.model_version,
            policy=serving.policy,
            reasons=d.reasons,
            degraded=d.degraded,
            key_id="bench",
            applied={"decision_policy": d.policy, "thresholds": dict(d.thresholds)},
        )

    res["decision_line"] = cpu(line, pairs)
    return res


def child(args: argparse.Namespace) -> None:
    # The data is copied per child: each run appends to its own decision log.
    work = Path(args.scratch) / f"route-{os.getpid()}"
    shutil.rmtree(work, ignore_errors=True)
    shutil.copytree(args.data, work, ignore=shutil.ignore_patterns("audit", "decisions"))
    try:
        result = asyncio.run(
            measure(work, args.policy, args.requests, args.profile, args.parts, args.concurrency)
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print("ROUTEJSON " + json.dumps(result), flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--requests", type=int, default=3000)
    ap.add_argument("--policy", default="model", help="model, baseline or both: model,baseline")
    ap.add_argument("--code", default="", help="comma-separated src trees (default: this one)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--parts", action="store_true")
    ap.add_argument(
        "--concurrency",
        type=int,
        default=1,
        help="measured calls in flight at once (asyncio.gather groups); 1: one at a time, "
        "with CPU per answer kind",
    )
    ap.add_argument("--profile", type=Path, default=None)
    ap.add_argument("--scratch", default="/tmp")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args)
        return
    trees: list[Path | None] = [Path(c).resolve() for c in args.code.split(",") if c] or [None]
    policies = args.policy.split(",")
    runs: dict[str, list[dict[str, Any]]] = {}
    for r in range(args.rounds):
        for tree in trees:
            for policy in policies:
                env = dict(os.environ)
                if tree is not None:
                    env["PYTHONPATH"] = str(tree)
                cmd = [sys.executable, __file__, "--child", "--data", str(args.data)]
                cmd += ["--requests", str(args.requests), "--policy", policy]
                cmd += ["--scratch", args.scratch, "--concurrency", str(args.concurrency)]
                if args.parts:
                    cmd.append("--parts")
                if args.profile is not None:
                    cmd += ["--profile", str(args.profile)]
                proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
                if proc.returncode != 0:
                    sys.exit(f"child failed ({tree}, {policy}):\n{proc.stderr[-4000:]}")
                if args.profile is not None:
                    print(proc.stderr, file=sys.stderr)
                line = next(x for x in proc.stdout.splitlines() if x.startswith("ROUTEJSON "))
                res = json.loads(line[len("ROUTEJSON ") :])
                res["round"] = r
                runs.setdefault(f"{tree or 'this'}|{policy}", []).append(res)
                print(f"[{time.strftime('%H:%M:%S')}] {tree} {policy}: {res}", file=sys.stderr)
    summary = {
        k: {
            "min_asgi_cpu_us": min(x["asgi_cpu_us"] for x in v),
            "all_asgi_cpu_us": [x["asgi_cpu_us"] for x in v],
            "learned": v[0]["learned"],
            "decisions": v[0]["decisions"],
            "answers_sha256_500": sorted({x["answers_sha256_500"] for x in v}),
            "decisions_sha256_500": sorted({x["decisions_sha256_500"] for x in v}),
            "threads_cpu_us": v[-1]["threads_cpu_us"],
            **{k2: v[-1][k2] for k2 in ("cpu_us_by_answer", "review_batches") if k2 in v[-1]},
            "all_cpu_us_by_answer": [x.get("cpu_us_by_answer") for x in v],
            **({"parts_us": v[-1]["parts_us"]} if "parts_us" in v[-1] else {}),
            **({"stubbed_us": v[-1]["stubbed_us"]} if "stubbed_us" in v[-1] else {}),
        }
        for k, v in runs.items()
    }
    print(json.dumps({"requests": args.requests, "load_avg": os.getloadavg(), "runs": summary}))


if __name__ == "__main__":
    main()
