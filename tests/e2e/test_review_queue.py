"""The review queue on the investigator page: transfers answered ``review`` are listed with
their reasons and both accounts; rejecting one records a fraud label for the transfer."""

from __future__ import annotations

import time

import pytest
from playwright.sync_api import Page, expect

from creditgraph.config import Settings
from creditgraph.outcomes import ReviewItem
from creditgraph.store.factory import open_store
from tests.e2e.conftest import ARTIFACTS, Server
from tests.e2e.test_investigator_page import api, sign_in

pytestmark = pytest.mark.e2e


def queued(review_id: str, transfer_id: str, amount: float) -> ReviewItem:
    now = time.time()
    return ReviewItem(
        review_id=review_id,
        transfer_id=transfer_id,
        src="A0000001",
        dst="A0000002",
        amount=amount,
        timestamp=now,
        created_at=now,
        risk=0.42,
        model_version="v0001/t0001",
        reasons=[
            {
                "code": "FACTOR_RAISES_RISK",
                "message": "amount 900.00 is 14x the sender's largest transfer",
                "evidence": {"factor": "amount"},
                "weight": 1.5,
            }
        ],
    )


def test_reviewer_rejects_a_transfer_and_the_verdict_becomes_a_label(
    page: Page, server: Server
) -> None:
    store = open_store(Settings(data_dir=server.data_dir))
    try:
        store.add_review(queued("rv_e2e_1", "t-e2e-1", 900.0))
        store.add_review(queued("rv_e2e_2", "t-e2e-2", 35.5))
    finally:
        store.close()
    sign_in(page, server, server.investigator_key)
    page.get_by_test_id("tab-reviews").click()
    items = page.get_by_test_id("review-item")
    expect(items).to_have_count(2)
    first = items.filter(has_text="t-e2e-1")
    expect(first.get_by_test_id("review-reasons")).to_contain_text("14x the sender's largest")
    expect(first).to_contain_text("A0000001")
    expect(first).to_contain_text("A0000002")
    expect(first.get_by_test_id("review-amount")).to_have_text("900.00")
    page.screenshot(path=ARTIFACTS / "10-review-queue.png")

    first.get_by_test_id("review-note").fill("victim reported the payment")
    first.get_by_test_id("review-reject").click()
    expect(items).to_have_count(1)
    expect(items.first).to_contain_text("t-e2e-2")

    closed = api(server, "/v1/reviews", status="rejected")
    mine = [r for r in closed["items"] if r["transfer_id"] == "t-e2e-1"]
    assert len(mine) == 1
    assert mine[0]["note"] == "victim reported the payment"
    assert mine[0]["reviewer"] == "e2e-investigator"
    store = open_store(Settings(data_dir=server.data_dir))
    try:
        labels = store.transfer_labels()
        k = labels.transfer_id.index("t-e2e-1")
        assert (labels.label[k], labels.source[k]) == ("fraud", "review:e2e-investigator")
    finally:
        store.close()
