"""NaN and Infinity in an ingest batch (Python's JSON reader accepts both) are a 422 naming
the field, and nothing is written; before, a NaN feature was stored as the text 'nan'."""

from __future__ import annotations

import pytest

from tests.apitools import ApiClient

JSON = {"Content-Type": "application/json"}


@pytest.mark.parametrize("value", ["NaN", "Infinity", "-Infinity"])
def test_a_non_finite_feature_is_a_422_naming_it(api: ApiClient, value: str) -> None:
    body = '{"items": [{"account_id": "nf-1", "features": {"age": 30, "income": ' + value + "}}]}"
    r = api.post("/v1/accounts", "payment", content=body, headers=JSON)
    assert r.status_code == 422, r.text
    locs = [f["loc"] for f in r.json()["error"]["fields"]]
    assert ["body", "items", 0, "features", "income"] in locs
    assert api.get("/v1/accounts/nf-1/score", "payment").status_code == 404


def test_a_non_finite_amount_is_a_422_naming_it(api: ApiClient) -> None:
    body = (
        '{"items": [{"transfer_id": "nf-t", "src": "A0000001", "dst": "A0000002", '
        '"amount": NaN, "timestamp": "2026-11-30T12:00:00Z"}]}'
    )
    r = api.post("/v1/transfers", "payment", content=body, headers=JSON)
    assert r.status_code == 422, r.text
    locs = [f["loc"] for f in r.json()["error"]["fields"]]
    assert ["body", "items", 0, "amount"] in locs
