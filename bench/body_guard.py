"""What ``BodyGuard`` (auth and body limits before routing) costs a risk request, in-process.

    .venv/bin/python bench/body_guard.py [--calls 20000]

Side by side in one run, CPU per ASGI call (``time.process_time``) of a trivial app that
reads the body and answers, called (a) directly and (b) behind ``BodyGuard``, with a
risk-shaped request (valid payment key, ~110-byte JSON body); rounds alternate so machine
load hits both alike. Also: ``KeyRing.verify`` alone (the per-request key check, with its
0.5 s file-change look). Prints one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

from starlette.types import Message, Receive, Scope, Send

from creditgraph.api.keys import KeyRing, create_key
from creditgraph.api.limits import BodyGuard
from creditgraph.config import Settings

BODY = b'{"src": "acc_000001", "dst": "acc_000042", "amount": 120.0, "currency": "EUR"}'


async def inner(scope: Scope, receive: Receive, send: Send) -> None:
    body = b""
    while True:
        m = await receive()
        body += m.get("body", b"")
        if not m.get("more_body"):
            break
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"{}"})


async def measure(app: object, scope: Scope, calls: int) -> float:
    async def receive() -> Message:
        return {"type": "http.request", "body": BODY, "more_body": False}

    async def send(message: Message) -> None:
        return None

    call = app  # an ASGI callable
    t0 = time.process_time()
    for _ in range(calls):
        await call(dict(scope), receive, send)  # type: ignore[operator]
    return (time.process_time() - t0) / calls * 1e6


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--calls", type=int, default=20_000)
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(data_dir=Path(tmp))
        key = create_key(settings, "payment", "bench")
        ring = KeyRing(settings.api_keys_path)
        app_obj = SimpleNamespace(state=SimpleNamespace(api=SimpleNamespace(keys=ring)))
        scope: Scope = {
            "type": "http",
            "method": "POST",
            "path": "/v1/risk/transfer",
            "app": app_obj,
            "headers": [
                (b"host", b"x"),
                (b"content-type", b"application/json"),
                (b"authorization", f"Bearer {key}".encode()),
                (b"content-length", str(len(BODY)).encode()),
            ],
        }
        guarded = BodyGuard(inner, settings)
        bare_us: list[float] = []
        guard_us: list[float] = []
        for _ in range(args.rounds):
            bare_us.append(asyncio.run(measure(inner, scope, args.calls)))
            guard_us.append(asyncio.run(measure(guarded, scope, args.calls)))
        t0 = time.process_time()
        for _ in range(args.calls):
            ring.verify(key)
        verify_us = (time.process_time() - t0) / args.calls * 1e6
    print(
        json.dumps(
            {
                "calls_per_round": args.calls,
                "rounds": args.rounds,
                "bare_us_min": round(min(bare_us), 2),
                "guarded_us_min": round(min(guard_us), 2),
                "guard_overhead_us": round(min(guard_us) - min(bare_us), 2),
                "keyring_verify_us": round(verify_us, 2),
                "load1": os.getloadavg()[0],
            }
        )
    )


if __name__ == "__main__":
    main()
