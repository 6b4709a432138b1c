"""Bulkheads (issue 15, defect 3): investigator work never holds up the payment path.

Investigator requests are held in flight by wrapping the real service function (it waits
on an event, then does its real work), so what is tested is the real middleware, routes
and scoring slots around it."""

from __future__ import annotations

import shutil
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from creditgraph.config import Settings
from creditgraph.services import investigate
from creditgraph.services.serving import Serving
from tests.apitools import ApiClient, Network, api_client

A, B = "A0000001", "A0000002"
RISK = "/v1/risk/transfer"
PURPOSE = {"X-Purpose": "case 15: bulkheads"}
HOLD_S = 10.0  # how long a held request waits at most (only reached when a test fails)


@pytest.fixture
def make_api(network: Network, tmp_path: Path) -> Iterator[Callable[..., ApiClient]]:
    """Start the app over a private copy of the trained network with extra settings."""
    stack: list[Any] = []

    def make(**overrides: Any) -> ApiClient:
        data = tmp_path / f"data{len(stack)}"
        shutil.copytree(network.settings.data_dir, data)
        cm = api_client(Settings(data_dir=data, **overrides))
        stack.append(cm)
        return cm.__enter__()

    yield make
    for cm in reversed(stack):
        cm.__exit__(None, None, None)


def _in_thread(fn: Callable[[], Any]) -> tuple[threading.Thread, list[Any]]:
    out: list[Any] = []
    t = threading.Thread(target=lambda: out.append(fn()), daemon=True)
    t.start()
    return t, out


def test_full_investigator_slots_answer_429_and_payments_go_on(
    make_api: Callable[..., ApiClient], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The view is held in this process (the wrapper), not in a worker (tests/api/test_view_pool).
    api = make_api(investigate_concurrency=1, bulkhead_queue_s=0.0, investigate_processes=0)
    entered, release = threading.Event(), threading.Event()
    real = investigate.neighbourhood_graph

    def held(*args: Any, **kwargs: Any) -> Any:
        entered.set()
        release.wait(HOLD_S)
        return real(*args, **kwargs)

    monkeypatch.setattr(investigate, "neighbourhood_graph", held)
    url = f"/v1/accounts/{A}/neighbourhood?hops=2"
    first, first_out = _in_thread(lambda: api.get(url, "investigator", headers=PURPOSE))
    assert entered.wait(HOLD_S)
    try:
        second = api.get(url, "investigator", headers=PURPOSE)
        risk = api.post(RISK, "payment", json={"src": A, "dst": B, "amount": 5})
        score = api.get(f"/v1/accounts/{B}/score", "payment")
        ring_queue = api.get("/v1/rings", "investigator", headers=PURPOSE)
    finally:
        release.set()
        first.join(HOLD_S)
    assert second.status_code == 429, second.text
    error = second.json()["error"]
    assert error["code"] == "too_many_requests"
    assert error["cap"] == "investigate_concurrency"
    assert "CREDITGRAPH_INVESTIGATE_CONCURRENCY" in error["message"]
    assert int(second.headers["Retry-After"]) >= 1
    assert ring_queue.status_code == 429  # one lane: every investigator route shares it
    assert risk.status_code == 200, risk.text
    assert score.status_code == 200, score.text
    assert first_out[0].status_code == 200
    # The slot is free again once the first request is done.
    assert api.get(url, "investigator", headers=PURPOSE).status_code == 200


def test_a_queued_investigator_request_gets_the_freed_slot(
    make_api: Callable[..., ApiClient], monkeypatch: pytest.MonkeyPatch
) -> None:
    api = make_api(investigate_concurrency=1, bulkhead_queue_s=30.0)
    entered, release = threading.Event(), threading.Event()
    calls: list[str] = []
    real = investigate.ring_queue

    def held(*args: Any, **kwargs: Any) -> Any:
        calls.append("in")
        entered.set()
        release.wait(HOLD_S)
        return real(*args, **kwargs)

    monkeypatch.setattr(investigate, "ring_queue", held)
    first, first_out = _in_thread(lambda: api.get("/v1/rings", "investigator", headers=PURPOSE))
    assert entered.wait(HOLD_S)
    second, second_out = _in_thread(lambda: api.get("/v1/rings", "admin", headers=PURPOSE))
    second.join(0.5)
    assert calls == ["in"]  # the second waits for the slot, it does not run beside
    release.set()
    first.join(HOLD_S)
    second.join(HOLD_S)
    assert [first_out[0].status_code, second_out[0].status_code] == [200, 200]
    assert calls == ["in", "in"]


def test_payment_score_look_ups_do_not_share_the_investigators_scoring_slot(
    make_api: Callable[..., ApiClient], monkeypatch: pytest.MonkeyPatch
) -> None:
    api = make_api()
    entered, release = threading.Event(), threading.Event()
    real = Serving._account_score

    def held(self: Serving, account_id: str) -> Any:
        if account_id == A:  # the investigator's look-up holds its slot
            entered.set()
            release.wait(HOLD_S)
        return real(self, account_id)

    monkeypatch.setattr(Serving, "_account_score", held)
    inv, inv_out = _in_thread(
        lambda: api.get(f"/v1/accounts/{A}/score", "investigator", headers=PURPOSE)
    )
    assert entered.wait(HOLD_S)
    pay, pay_out = _in_thread(lambda: api.get(f"/v1/accounts/{B}/score", "payment"))
    pay.join(HOLD_S / 2)
    payment_done_while_held = not pay.is_alive()
    release.set()
    inv.join(HOLD_S)
    pay.join(HOLD_S)
    assert payment_done_while_held
    assert pay_out[0].status_code == 200
    assert inv_out[0].status_code == 200


def test_per_key_rate_limit_answers_429_with_retry_after(
    make_api: Callable[..., ApiClient],
) -> None:
    # One token, refilled in 20 s: the Retry-After is what is left of those 20 s.
    api = make_api(rate_limit_investigator_per_s=0.05, rate_limit_burst_s=20.0)
    url = f"/v1/accounts/{A}"
    assert api.get(url, "investigator", headers=PURPOSE).status_code == 200
    over = api.get(url, "investigator", headers=PURPOSE)
    assert over.status_code == 429
    assert over.json()["error"]["cap"] == "rate_limit_investigator_per_s"
    assert "CREDITGRAPH_RATE_LIMIT_INVESTIGATOR_PER_S" in over.json()["error"]["message"]
    assert 10 <= int(over.headers["Retry-After"]) <= 20
    # Per key: another key still has its tokens, and the payment lane is not limited.
    assert api.get(url, "admin", headers=PURPOSE).status_code == 200
    for _ in range(5):
        r = api.post(RISK, "payment", json={"src": A, "dst": B, "amount": 5})
        assert r.status_code == 200


def test_payment_rate_limit_is_a_setting(make_api: Callable[..., ApiClient]) -> None:
    api = make_api(rate_limit_payment_per_s=1.0, rate_limit_burst_s=1.0)
    body = {"src": A, "dst": B, "amount": 5}
    assert api.post(RISK, "payment", json=body).status_code == 200
    over = api.post(RISK, "payment", json=body)
    assert over.status_code == 429
    assert over.json()["error"]["cap"] == "rate_limit_payment_per_s"
    assert "Retry-After" in over.headers


def test_an_expensive_neighbourhood_past_the_deadline_is_a_4xx_naming_the_cap(
    make_api: Callable[..., ApiClient],
) -> None:
    api = make_api(investigate_deadline_s=1e-9)
    r = api.get(f"/v1/accounts/{A}/neighbourhood?hops=3&limit=200", "investigator", headers=PURPOSE)
    assert r.status_code == 422, r.text
    error = r.json()["error"]
    assert error["code"] == "too_expensive"
    assert error["cap"] == "investigate_deadline_s"
    assert "cap on investigator queries" in error["message"]
