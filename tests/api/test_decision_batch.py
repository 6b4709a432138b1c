"""Risk decisions made in one event-loop pass have their decision lines written together
(``ledger.decisions.LineBatch``): one ``write`` for the batch, every line in the chain, each
answer recorded before it leaves; a batch that cannot be written answers 503 to every request
in it and leaves no line behind."""

from __future__ import annotations

import asyncio
import errno
import os
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import orjson
import pytest

from creditgraph.api.app import create_app
from creditgraph.api.keys import create_key
from creditgraph.config import Settings
from creditgraph.ledger.chain import entries, verify
from creditgraph.services.risk import RiskDecision, TransferCheck
from creditgraph.services.serving import Serving
from tests.apitools import bearer

RISK = "/v1/risk/transfer"
N = 8


class Gate:
    """While ``on``, decisions wait until ``N`` are in flight, then all go on in the same
    loop pass (one ``Event.set`` wakes them together): their lines are submitted in one pass
    for sure. Off, decisions pass straight through."""

    def __init__(self) -> None:
        self.on = True
        self.arrived = 0
        self.opened: asyncio.Event | None = None


@pytest.fixture
def gate(monkeypatch: pytest.MonkeyPatch) -> Gate:
    original = Serving.decide
    g = Gate()

    async def gated(self: Serving, check: TransferCheck) -> RiskDecision:
        decision = await original(self, check)
        if not g.on:
            return decision
        if g.opened is None:
            g.opened = asyncio.Event()
        g.arrived += 1
        if g.arrived == N:
            g.opened.set()
        await asyncio.wait_for(g.opened.wait(), 10)
        return decision

    monkeypatch.setattr(Serving, "decide", gated)
    return g


def run_app(settings: Settings, work: Callable[[Any, httpx.AsyncClient], Awaitable[Any]]) -> Any:
    app = create_app(settings)

    async def main() -> Any:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
                return await work(app.state.api, client)

    return asyncio.run(main())


def bodies(_settings: Settings) -> list[dict[str, object]]:
    return [
        {"src": f"A{i:07d}", "dst": f"A{i + 1:07d}", "amount": 10.0 + i} for i in range(1, N + 1)
    ]


def risk_lines(settings: Settings) -> list[dict[str, Any]]:
    path = settings.decision_log_path
    if not path.exists():
        return []
    return [e for e in entries(path) if e.get("kind") == "risk.transfer"]


def test_lines_of_one_pass_share_one_write(api_settings: Settings, gate: Gate) -> None:
    key = create_key(api_settings, "payment", "psp")

    async def work(state: Any, client: httpx.AsyncClient) -> tuple[list[httpx.Response], int]:
        chain = state.decisions.chain
        writes0 = chain.writes
        answers = await asyncio.gather(
            *(client.post(RISK, json=b, headers=bearer(key)) for b in bodies(api_settings))
        )
        return list(answers), chain.writes - writes0

    answers, writes = run_app(api_settings, work)
    assert [r.status_code for r in answers] == [200] * N
    assert writes == 1  # eight lines, one write
    lines = risk_lines(api_settings)
    assert len(lines) == N
    assert [e["seq"] for e in lines] == list(range(lines[0]["seq"], lines[0]["seq"] + N))
    # Each answer is the one its line records (the lines name pseudonyms, not accounts).
    assert sorted((r.json()["decision"], r.json()["risk"]) for r in answers) == sorted(
        (e["decision"], e["risk"]) for e in lines
    )
    assert verify(api_settings.decision_log_path).ok


def test_a_batch_that_cannot_be_written_is_a_503_for_each_and_leaves_no_line(
    api_settings: Settings, gate: Gate, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = create_key(api_settings, "payment", "psp")
    real_write = os.write
    full = {"on": False}

    def write(fd: int, data: bytes) -> int:
        if full["on"]:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(fd, data)

    async def work(state: Any, client: httpx.AsyncClient) -> tuple[list[httpx.Response], Any]:
        gate.on = False
        # One decision first, so the log file and its chain exist before the disk "fills".
        before = await client.post(
            RISK, json={"src": "A0000001", "dst": "A0000003", "amount": 5.0}, headers=bearer(key)
        )
        assert before.status_code == 200
        full["on"] = gate.on = True
        try:
            failed = await asyncio.gather(
                *(client.post(RISK, json=b, headers=bearer(key)) for b in bodies(api_settings))
            )
        finally:
            full["on"] = gate.on = False
        after = await client.post(
            RISK, json={"src": "A0000002", "dst": "A0000004", "amount": 6.0}, headers=bearer(key)
        )
        return list(failed), after

    monkeypatch.setattr("creditgraph.ledger.chain.os.write", write)
    failed, after = run_app(api_settings, work)
    assert [r.status_code for r in failed] == [503] * N
    for r in failed:
        assert "cannot write" in orjson.loads(r.content)["error"]["message"]
    assert after.status_code == 200
    lines = risk_lines(api_settings)
    assert len(lines) == 2  # the one before and the one after: nothing of the failed batch
    assert lines[1]["seq"] == lines[0]["seq"] + 1
    assert verify(api_settings.decision_log_path).ok
