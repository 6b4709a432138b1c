"""The social dimension learned by the graph network (``[credit] social_model = "gnn"``):
consent (a withdrawn account's relationships change nothing), the ``inclusion_only`` guard,
time-awareness (an outcome never explains itself), relationship-only input (the account's
own record never comes back to it), request = batch, and the saved model."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from creditgraph.config import CreditSettings, Settings
from creditgraph.ml import credit_artifact
from creditgraph.ml.credit_features import DEFAULTED, DIMENSIONS, LATE, REPAID, CreditData
from creditgraph.ml.credit_model import CreditModel, score_data
from creditgraph.services.credit import (
    credit_data,
    credit_profile,
    credit_root,
    load_credit_model,
    score_all_credit,
    train_credit_model,
)
from creditgraph.store.embedded import EmbeddedStore
from tests.apitools import FAST, ApiClient, Network, api_client

PAYMENT_CONSENT = "/v1/accounts/{}/consent"


@pytest.fixture(scope="module")
def gnn_data(network: Network, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The test network's data with a GNN credit model as the champion, trained once."""
    root = tmp_path_factory.mktemp("gnn") / "data"
    shutil.copytree(network.settings.data_dir, root)
    s = Settings(data_dir=root)
    store = EmbeddedStore(s.embedded_path)
    try:
        credit = FAST.credit.model_copy(update={"social_model": "gnn"})
        job = FAST.model_copy(update={"credit": credit})
        train_credit_model(store, s.models_dir, job, s.credit)
    finally:
        store.close()
    return root


@pytest.fixture
def gnn_api(gnn_data: Path, tmp_path: Path) -> Iterator[ApiClient]:
    shutil.copytree(gnn_data, tmp_path / "data")
    with api_client(Settings(data_dir=tmp_path / "data", store_probe_interval_s=0.2)) as c:
        yield c


def _model_and_data(settings: Settings) -> tuple[CreditModel, CreditData, EmbeddedStore]:
    store = EmbeddedStore(settings.embedded_path)
    model = load_credit_model(settings.models_dir)
    return model, credit_data(store, model.identity_features, "granted"), store


def test_the_served_social_dimension_is_the_network(gnn_api: ApiClient) -> None:
    model, _, store = _model_and_data(gnn_api.settings)
    store.close()
    social = model.dims["social"]
    assert social.gnn is not None
    assert social.booster is None
    assert social.names[-1] == "network_model"
    r = gnn_api.get("/v1/accounts/A0000010/credit", "payment")
    assert r.status_code == 200, r.text
    dim = r.json()["dimensions"]["social"]
    assert dim["score"] is not None
    # The reasons split the network's margin: aggregates plus what it read beyond them.
    assert {x["feature"] for x in dim["reasons"]} <= set(social.names)


def test_withdrawn_account_is_blind_to_new_friendships_with_defaulters(
    gnn_api: ApiClient,
) -> None:
    model, _data, store = _model_and_data(gnn_api.settings)
    try:
        obligations = store.get_obligations()
        table = score_all_credit(store, model, CreditSettings(social_policy="symmetric"))
    finally:
        store.close()
    defaulters = sorted({o.account_id for o in obligations.values() if o.status == "defaulted"})
    recorded = {o.account_id for o in obligations.values()}
    candidates = [
        a
        for a, used in zip(table.account_ids, table.used["social"], strict=True)
        if used and a in recorded and a not in set(defaulters)
    ]
    account = candidates[len(candidates) // 2]
    put = gnn_api.client.put(
        PAYMENT_CONSENT.format(account),
        headers=gnn_api.as_role("payment"),
        json={"social_scoring": "withdrawn"},
    )
    assert put.status_code == 200
    before = gnn_api.get(f"/v1/accounts/{account}/credit", "payment").json()
    links = [{"src": account, "dst": d, "type": "FRIEND"} for d in defaulters[:25]]
    r = gnn_api.post("/v1/links", "payment", json={"items": links})
    assert r.status_code == 200
    assert r.json()["changed"] == len(links)
    assert gnn_api.get(f"/v1/accounts/{account}/credit", "payment").json() == before
    # The same friendships move the network's view of a consenting account.
    gnn_api.client.put(
        PAYMENT_CONSENT.format(account),
        headers=gnn_api.as_role("payment"),
        json={"social_scoring": "granted"},
    )
    store = EmbeddedStore(gnn_api.settings.embedded_path)
    try:
        granted = credit_profile(store, model, account, CreditSettings(social_policy="symmetric"))
    finally:
        store.close()
    assert granted["dimensions"]["social"]["used"] is True
    assert granted["dimensions"]["social"]["score"] != pytest.approx(
        table.dims["social"][table.account_ids.index(account)], abs=0.05
    )


def test_withdrawn_outputs_ignore_who_the_counterparties_are(gnn_api: ApiClient) -> None:
    model, data, store = _model_and_data(gnn_api.settings)
    store.close()
    defaulted = np.unique(data.ob_account[data.ob_status == DEFAULTED])
    has = np.bincount(data.tx_src, minlength=data.num_accounts) > 0
    i = int(np.flatnonzero(has & ~np.isin(np.arange(data.num_accounts), defaulted))[5])
    mine = np.flatnonzero(data.tx_src == i)
    dst = data.tx_dst.copy()
    dst[mine] = defaulted[np.arange(len(mine)) % len(defaulted)]
    fa = np.r_[data.friend_a, np.full(len(defaulted), i)]
    fb = np.r_[data.friend_b, defaulted]
    rows = np.array([i], dtype=np.int64)
    for consent, should_move in ((False, False), (True, True)):
        c = data.consent.copy()
        c[i] = consent
        a, _ = score_data(model, replace(data, consent=c), rows, "symmetric", 0.1)
        b, _ = score_data(
            model,
            replace(data, consent=c, tx_dst=dst, friend_a=fa, friend_b=fb),
            rows,
            "symmetric",
            0.1,
        )
        same = a.composite[0] == b.composite[0] and all(
            np.array_equal(a.scores[d], b.scores[d], equal_nan=True) for d in DIMENSIONS
        )
        assert same is not should_move, consent


def test_inclusion_only_never_lowers_a_composite(gnn_api: ApiClient) -> None:
    model, data, store = _model_and_data(gnn_api.settings)
    store.close()
    rows = np.arange(data.num_accounts, dtype=np.int64)
    guarded, _ = score_data(model, data, rows, "inclusion_only", 0.1)
    symmetric, _ = score_data(model, data, rows, "symmetric", 0.1)
    assert (guarded.composite >= guarded.composite_without_social).all()
    assert (guarded.points["social"] >= 0).all()
    assert (symmetric.composite < symmetric.composite_without_social).any()


def _margins(model: CreditModel, data: CreditData, rows: np.ndarray) -> np.ndarray:
    gnn = model.dims["social"].gnn
    assert gnn is not None
    return gnn.margins(data, model.as_of - 90 * 86_400.0, rows, 0.1, 0.1)


def test_outcomes_after_the_cut_and_the_accounts_own_record_never_enter(
    gnn_api: ApiClient,
) -> None:
    model, data, store = _model_and_data(gnn_api.settings)
    store.close()
    t = model.as_of - 90 * 86_400.0
    rows = np.arange(data.num_accounts, dtype=np.int64)
    base = _margins(model, data, rows)
    # Every outcome not yet resolved at t (labels of t's targets included) flipped: nothing.
    later = ~(data.ob_final_at < t)
    flipped = np.where(data.ob_status == DEFAULTED, REPAID, DEFAULTED).astype(np.int8)
    st = np.where(later & (data.ob_status != 0), flipped, data.ob_status).astype(np.int8)
    assert (st != data.ob_status).any()
    np.testing.assert_array_equal(_margins(model, replace(data, ob_status=st), rows), base)
    # An account's own resolved record turned to defaults: its own margin does not move
    # (relationship-only, non-backtracking), its contacts' margins do.
    earlier = data.ob_final_at < t
    owners = np.bincount(data.ob_account[earlier], minlength=data.num_accounts)
    v = int(np.argmax(owners))
    mine = earlier & (data.ob_account == v)
    st = data.ob_status.copy()
    st[mine] = DEFAULTED if (data.ob_status[mine] != DEFAULTED).any() else LATE
    moved = _margins(model, replace(data, ob_status=st), rows)
    assert moved[v] == pytest.approx(base[v], abs=1e-5)
    assert not np.allclose(moved, base, atol=1e-5)


def test_request_agrees_with_batch_and_the_model_round_trips(gnn_api: ApiClient) -> None:
    model, data, store = _model_and_data(gnn_api.settings)
    try:
        table = score_all_credit(store, model, CreditSettings())
        for account in ("A0000010", "A0000100", table.account_ids[-1]):
            i = table.account_ids.index(account)
            live = credit_profile(store, model, account, CreditSettings())
            assert live["credit_score"] == table.credit_score[i]
            assert live["p_default"] == pytest.approx(table.p_default[i], abs=1e-4)
            assert live["dimensions"]["social"]["score"] == pytest.approx(
                table.dims["social"][i], abs=0.06
            )
    finally:
        store.close()
    root = credit_root(gnn_api.settings.models_dir)
    again = credit_artifact.load(root, model.version)
    rows = np.arange(data.num_accounts, dtype=np.int64)
    np.testing.assert_array_equal(_margins(again, data, rows), _margins(model, data, rows))
