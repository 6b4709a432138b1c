"""``GET /v1/accounts/{id}/credit``: every field, role and consent state; consent withdrawn
means relationships change nothing; ``inclusion_only`` never lowers a composite."""

from __future__ import annotations

import csv
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pydantic import ValidationError
from typer.testing import CliRunner

from creditgraph.cli import app as cli
from creditgraph.config import CreditSettings
from creditgraph.ledger.chain import verify
from creditgraph.ml.credit_features import DIMENSIONS
from creditgraph.ml.credit_model import BANDS, band_of, next_band, score_data
from creditgraph.registry import ModelRegistry
from creditgraph.services.credit import (
    add_credit_columns,
    credit_data,
    credit_profile,
    load_credit_model,
    score_all_credit,
)
from creditgraph.services.scoring import score_all
from creditgraph.store.embedded import EmbeddedStore
from creditgraph.training_config import CREDIT_WEIGHTS, CreditSection, TrainingConfig
from tests.apitools import ApiClient, Network, audit_entries

FIELDS = {
    "account_id",
    "credit_score",
    "band",
    "p_default",
    "dimensions",
    "reasons",
    "counterfactual",
    "model_version",
}
DIM_FIELDS = {"score", "weight", "points", "used", "reasons"}
PURPOSE = {"X-Purpose": "case 14: credit complaint"}


def _get(api: ApiClient, account: str, role: str = "payment", **headers: str) -> Any:
    return api.client.get(
        f"/v1/accounts/{account}/credit", headers={**api.as_role(role), **headers}
    )


def _consent(api: ApiClient, account: str, value: str) -> None:
    r = api.client.put(
        f"/v1/accounts/{account}/consent",
        headers=api.as_role("payment"),
        json={"social_scoring": value},
    )
    assert r.status_code == 200, r.text


def _store(api: ApiClient) -> EmbeddedStore:
    return EmbeddedStore(api.settings.embedded_path)


def _defaulters_and_social_accounts(api: ApiClient) -> tuple[list[str], str]:
    """Accounts with a default on record, and an account whose social dimension counts."""
    store = _store(api)
    try:
        obligations = store.get_obligations()
        defaulters = sorted({o.account_id for o in obligations.values() if o.status == "defaulted"})
        model = load_credit_model(api.settings.models_dir)
        table = score_all_credit(store, model, CreditSettings(social_policy="symmetric"))
    finally:
        store.close()
    with_history = {o.account_id for o in obligations.values()}
    candidates = [
        a
        for a, used in zip(table.account_ids, table.used["social"], strict=True)
        if used and a in with_history and a not in set(defaulters)
    ]
    return defaulters, candidates[len(candidates) // 2]


def test_network_has_a_credit_model(network: Network) -> None:
    assert network.report.credit is not None
    assert network.report.credit.version == "c0001"


def test_every_field(api: ApiClient) -> None:
    r = _get(api, "A0000010")
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) == FIELDS
    assert body["account_id"] == "A0000010"
    assert 350 <= body["credit_score"] <= 950
    assert body["band"] == band_of(body["credit_score"])
    assert 0.0 < body["p_default"] < 1.0
    assert body["model_version"] == "c0001"
    assert set(body["dimensions"]) == set(DIMENSIONS)
    for name, dim in body["dimensions"].items():
        assert set(dim) == DIM_FIELDS, name
        assert dim["used"] is True
        assert 0.0 <= dim["score"] <= 100.0
        assert dim["weight"] == CREDIT_WEIGHTS[name]
        assert dim["reasons"], name
        assert all(x["dimension"] == name for x in dim["reasons"] if x["feature"])
    # Principal reasons: at most four, each a point loss, most lost first, never generic.
    reasons = body["reasons"]
    assert len(reasons) <= 4
    points = [x["points"] for x in reasons]
    assert points == sorted(points)
    assert all(p < 0 for p in points)
    assert all(x["feature"] and "score too low" not in x["message"] for x in reasons)
    # Under inclusion_only relationships never cost points, so never a principal reason.
    assert all(x["dimension"] != "social" for x in reasons)
    cf = body["counterfactual"]
    nxt = next_band(body["credit_score"])
    if nxt is None:
        assert cf["target_band"] is None
    else:
        assert cf["target_band"] == nxt[0]
        assert cf["points_needed"] == pytest.approx(nxt[1] - body["credit_score"], abs=0.6)
        if cf["reachable"]:
            assert cf["new_score"] >= nxt[1]
            (change,) = cf["changes"]
            assert (change["dimension"], change["feature"]) in {
                ("credit_history", "past_due_open"),
                ("capacity", "owed"),
                ("capacity", "inflow_90d"),
                ("behaviour", "active_weeks_share"),
            }


def test_bands_cover_the_range() -> None:
    assert [b for b, _ in BANDS] == ["very_poor", "poor", "fair", "good", "excellent"]
    assert band_of(350) == "very_poor"
    assert band_of(949) == "excellent"
    assert next_band(949) is None


def test_roles_and_purpose(api: ApiClient) -> None:
    assert api.client.get("/v1/accounts/A0000010/credit").status_code == 401
    assert _get(api, "A0000010", "admin").status_code == 200
    assert _get(api, "A0000010", "investigator").status_code == 400
    ok = _get(api, "A0000010", "investigator", **PURPOSE)
    assert ok.status_code == 200
    assert _get(api, "nobody", "payment").status_code == 404
    audit = audit_entries(api.settings)
    credit = [e for e in audit if e["action"] == "account.credit"]
    assert [e["role"] for e in credit] == ["admin", "investigator", "payment"]
    assert credit[1]["purpose"] == PURPOSE["X-Purpose"]
    assert credit[2]["result"] == "refused: NotFound"
    # The fraud score's look-ups are another action of the log, untouched by credit.
    assert not any(e["action"] == "account.score" for e in audit)
    # Each credit output answered is in the decision log, as a credit profile.
    decisions = [
        d for d in audit_entries(api.settings, "decisions") if d["kind"] == "credit.profile"
    ]
    assert len(decisions) == 2  # the two answered: admin and investigator
    assert {d["model_version"] for d in decisions} == {"c0001"}
    assert all(350 <= d["output"]["credit_score"] <= 950 for d in decisions)


def test_consent_states(api: ApiClient) -> None:
    default = _get(api, "A0000010").json()
    _consent(api, "A0000010", "granted")
    granted = _get(api, "A0000010").json()
    assert granted == default  # the default setting is granted
    _consent(api, "A0000010", "withdrawn")
    withdrawn = _get(api, "A0000010").json()
    social = withdrawn["dimensions"]["social"]
    assert social["used"] is False
    assert social["score"] is None
    assert social["weight"] == 0.0
    assert social["points"] == 0.0
    assert social["reasons"][0]["code"] == "SOCIAL__CONSENT_WITHDRAWN"
    assert any(r["code"] == "SOCIAL__CONSENT_WITHDRAWN" for r in withdrawn["reasons"])
    # The composite is the other four: the granted composite less its social points.
    own = sum(v["points"] for k, v in granted["dimensions"].items() if k != "social")
    assert sum(v["points"] for v in withdrawn["dimensions"].values()) == pytest.approx(own)
    for d in ("credit_history", "behaviour", "capacity", "identity"):
        assert withdrawn["dimensions"][d] == granted["dimensions"][d]


def test_withdrawn_account_is_blind_to_new_relationships_with_defaulters(
    api: ApiClient,
) -> None:
    defaulters, account = _defaulters_and_social_accounts(api)
    friends = defaulters[:25]
    _consent(api, account, "withdrawn")
    before = _get(api, account).json()
    r = api.post(
        "/v1/links",
        "payment",
        json={"items": [{"src": account, "dst": d, "type": "FRIEND"} for d in friends]},
    )
    assert r.status_code == 200
    assert r.json()["changed"] == len(friends)
    assert _get(api, account).json() == before
    # The same friendships move a consenting account's profile: the test can fail.
    _consent(api, account, "granted")
    symmetric = api.settings.model_copy(
        update={"credit": CreditSettings(social_policy="symmetric")}
    )
    store = _store(api)
    try:
        model = load_credit_model(api.settings.models_dir)
        granted = credit_profile(store, model, account, symmetric.credit)
    finally:
        store.close()
    assert granted["dimensions"]["social"]["used"] is True
    assert granted["dimensions"]["social"]["score"] != pytest.approx(
        before["dimensions"]["social"]["score"] or -1.0
    )


def test_withdrawn_outputs_ignore_who_the_counterparties_are(api: ApiClient) -> None:
    """Transfers to defaulters instead of to others (same amounts, same times): nothing of
    a withdrawn account's outputs moves; a consenting account's social dimension does."""
    defaulters, account = _defaulters_and_social_accounts(api)
    store = _store(api)
    try:
        model = load_credit_model(api.settings.models_dir)
        data = credit_data(store, model.identity_features, "granted")
    finally:
        store.close()
    i = data.account_ids.index(account)
    ix = {a: k for k, a in enumerate(data.account_ids)}
    bad = np.array([ix[d] for d in defaulters], dtype=np.int64)
    mine = np.flatnonzero(data.tx_src == i)
    assert len(mine) > 0
    dst = data.tx_dst.copy()
    dst[mine] = bad[np.arange(len(mine)) % len(bad)]
    fa = np.r_[data.friend_a, np.full(len(bad), i)]
    fb = np.r_[data.friend_b, bad]
    rows = np.array([i], dtype=np.int64)
    for consent, should_move in ((False, False), (True, True)):
        c = data.consent.copy()
        c[i] = consent
        base = replace(data, consent=c)
        moved = replace(data, consent=c, tx_dst=dst, friend_a=fa, friend_b=fb)
        a, _ = score_data(model, base, rows, "symmetric", 0.1)
        b, _ = score_data(model, moved, rows, "symmetric", 0.1)
        same = a.composite[0] == b.composite[0] and all(
            np.array_equal(a.scores[d], b.scores[d], equal_nan=True) for d in DIMENSIONS
        )
        assert same is not should_move, consent
        assert np.isclose(a.p_default[0], b.p_default[0]) is not should_move


def test_inclusion_only_never_lowers_a_composite(api: ApiClient) -> None:
    store = _store(api)
    try:
        model = load_credit_model(api.settings.models_dir)
        data = credit_data(store, model.identity_features, "granted")
    finally:
        store.close()
    rows = np.arange(data.num_accounts, dtype=np.int64)
    guarded, _ = score_data(model, data, rows, "inclusion_only", 0.1)
    symmetric, _ = score_data(model, data, rows, "symmetric", 0.1)
    assert (guarded.composite >= guarded.composite_without_social).all()
    assert (guarded.points["social"] >= 0).all()
    assert (guarded.points["social"] <= 0.1 * 600 + 1e-9).all()
    # Relationships would lower some composites if allowed (so the guard is doing work).
    lower = symmetric.composite < symmetric.composite_without_social
    assert lower.any()
    assert (guarded.composite[lower] == guarded.composite_without_social[lower]).all()
    for policy in ("informational", "off"):
        s, _ = score_data(model, data, rows, policy, 0.1)
        assert (s.composite == s.composite_without_social).all()
        assert not s.used["social"].any()
    off, _ = score_data(model, data, rows, "off", 0.1)
    assert np.isnan(off.scores["social"]).all()


def test_batch_and_request_agree(api: ApiClient) -> None:
    store = _store(api)
    try:
        model = load_credit_model(api.settings.models_dir)
        table = score_all_credit(store, model, CreditSettings())
    finally:
        store.close()
    for account in ("A0000010", "A0000100", table.account_ids[-1]):
        i = table.account_ids.index(account)
        live = _get(api, account).json()
        assert live["credit_score"] == table.credit_score[i]
        assert live["p_default"] == pytest.approx(table.p_default[i], abs=1e-4)
        for d in DIMENSIONS:
            assert live["dimensions"][d]["score"] == pytest.approx(table.dims[d][i], abs=0.06)


def test_sensitive_column_changes_nothing(api: ApiClient) -> None:
    before = _get(api, "A0000010").json()
    # Changing a recorded value takes an admin key (a payment key may only add facts).
    r = api.post(
        "/v1/accounts",
        "admin",
        json={"items": [{"account_id": "A0000010", "features": {"age_years": 99}}]},
    )
    assert r.status_code == 200
    assert r.json()["changed"] == 1
    assert _get(api, "A0000010").json() == before


def test_policy_setting_reaches_the_profile(api: ApiClient) -> None:
    store = _store(api)
    try:
        model = load_credit_model(api.settings.models_dir)
        off = credit_profile(store, model, "A0000010", CreditSettings(social_policy="off"))
        info = credit_profile(
            store, model, "A0000010", CreditSettings(social_policy="informational")
        )
    finally:
        store.close()
    assert off["dimensions"]["social"]["score"] is None
    assert off["dimensions"]["social"]["reasons"][0]["code"] == "SOCIAL__POLICY"
    assert info["dimensions"]["social"]["score"] is not None
    assert info["dimensions"]["social"]["used"] is False
    assert off["credit_score"] == info["credit_score"]


def test_score_out_gains_credit_columns(api: ApiClient, tmp_path: Path) -> None:
    out = tmp_path / "scores.csv"
    store = _store(api)
    try:
        score_all(store, ModelRegistry(api.settings.models_dir), out=out)
        fraud_only = out.read_text().splitlines()
        model = load_credit_model(api.settings.models_dir)
        _consent(api, "A0000010", "withdrawn")
        add_credit_columns(out, score_all_credit(store, model, CreditSettings()))
    finally:
        store.close()
    with out.open(newline="") as f:
        rows = {r["account_id"]: r for r in csv.DictReader(f)}
    header = out.read_text().splitlines()[0].replace('"', "").split(",")
    assert header[: len(fraud_only[0].split(","))] == fraud_only[0].replace('"', "").split(",")
    assert header[-7:] == ["p_default", "credit_score", *(f"dim_{d}" for d in DIMENSIONS)]
    assert len(rows) == len(fraud_only) - 1
    r = rows["A0000010"]
    assert r["dim_social"] == ""  # consent withdrawn: not used
    assert 350 <= float(r["credit_score"]) <= 950
    assert 0 < float(r["p_default"]) < 1
    assert all(r[f"dim_{d}"] != "" for d in DIMENSIONS if d != "social")
    assert any(v["dim_social"] != "" for v in rows.values())


def test_job_file_refuses_sensitive_identity_features() -> None:
    with pytest.raises(ValidationError, match="sensitive"):
        TrainingConfig(credit=CreditSection(identity_features=["kyc_level", "age_years"]))


def test_batch_credit_outputs_are_in_the_decision_log(api: ApiClient, tmp_path: Path) -> None:
    """`creditgraph score --out` logs every credit output it writes, as the GET does."""
    _consent(api, "A0000010", "withdrawn")
    out = tmp_path / "scores.csv"
    env = {"CREDITGRAPH_DATA_DIR": str(api.settings.data_dir)}
    result = CliRunner().invoke(cli, ["score", "--out", str(out)], env=env)
    assert result.exit_code == 0, result.output
    with out.open(newline="") as f:
        rows = {r["account_id"]: r for r in csv.DictReader(f)}
    logged = [
        d
        for d in audit_entries(api.settings, "decisions")
        if d["kind"] == "credit.profile" and d["output"] is not None
    ]
    assert len(logged) == len(rows)
    by_account = {d["subjects"][0]: d for d in logged}
    assert set(by_account) == set(rows)
    for account in ("A0000010", "A0000100"):
        entry, row = by_account[account], rows[account]
        assert entry["output"]["credit_score"] == int(float(row["credit_score"]))
        assert entry["output"]["p_default"] == pytest.approx(float(row["p_default"]), abs=1e-4)
        assert entry["output"]["band"] == band_of(float(row["credit_score"]))
        assert entry["model_version"] == "c0001"
        assert entry["input_hash"]
    # Consent withdrawn: the social dimension is neither output nor logged.
    assert by_account["A0000010"]["output"]["social_used"] is False
    assert by_account["A0000010"]["output"]["dimensions"]["social"] is None
    assert any(d["output"]["social_used"] for d in logged)
    assert verify(api.settings.decision_log_path).ok
