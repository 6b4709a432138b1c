"""One ``Idempotency-Key`` used by concurrent risk requests on a real server: only one is
decided; a different body is a 409, the same body gets the first one's answer."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from creditgraph.api.keys import create_key
from creditgraph.config import Settings
from creditgraph.services.risk import RiskDecision, TransferCheck
from creditgraph.services.serving import Serving
from tests.apitools import bearer, running_server

RISK = "/v1/risk/transfer"
BODY = {"src": "A0000001", "dst": "A0000002", "amount": 42.0}


@pytest.fixture
def decided(monkeypatch: pytest.MonkeyPatch) -> list[TransferCheck]:
    """Every decision made; each takes 0.3 s longer, so requests overlap for sure."""
    calls: list[TransferCheck] = []
    original = Serving.decide

    async def slow(self: Serving, check: TransferCheck) -> RiskDecision:
        calls.append(check)
        await asyncio.sleep(0.3)
        return await original(self, check)

    monkeypatch.setattr(Serving, "decide", slow)
    return calls


def concurrently(url: str, key: str, *bodies: dict[str, object]) -> list[httpx.Response]:
    headers = {**bearer(key), "Idempotency-Key": "pay-77"}

    async def run() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=url, timeout=30) as client:
            return list(
                await asyncio.gather(*(client.post(RISK, json=b, headers=headers) for b in bodies))
            )

    return asyncio.run(run())


def test_concurrent_different_bodies_one_is_409(
    api_settings: Settings, decided: list[TransferCheck]
) -> None:
    key = create_key(api_settings, "payment", "psp")
    with running_server(api_settings) as url:
        answers = concurrently(url, key, BODY, {**BODY, "amount": 43.0})
    assert sorted(r.status_code for r in answers) == [200, 409]
    assert len(decided) == 1


def test_concurrent_same_body_is_decided_once(
    api_settings: Settings, decided: list[TransferCheck]
) -> None:
    key = create_key(api_settings, "payment", "psp")
    with running_server(api_settings) as url:
        first, second = concurrently(url, key, BODY, BODY)
    assert (first.status_code, second.status_code) == (200, 200)
    assert first.content == second.content
    assert len(decided) == 1
    replayed = [r.headers.get("Idempotent-Replayed") for r in (first, second)]
    assert sorted(map(str, replayed)) == ["None", "true"]
