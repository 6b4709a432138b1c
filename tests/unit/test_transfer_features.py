"""Causal transfer features: the batch path (training) and the incremental state (serving)
give the same numbers, and nothing after a transfer leaks into its features."""

from __future__ import annotations

import math

import numpy as np
import pytest

from creditgraph.outcomes import TransferLog
from creditgraph.services.transfers.features import (
    NUMERIC,
    HistoryState,
    PairContext,
    batch_features,
)

T0 = 1_704_067_200.0


def random_log(n: int = 400, accounts: int = 25, seed: int = 3) -> TransferLog:
    rng = np.random.default_rng(seed)
    ts = T0 + np.sort(rng.choice(40 * 86400, n, replace=False)).astype(np.float64)
    # Bursts: some transfers minutes apart, so the hour windows are not all empty.
    ts[::7] = ts[::7] - 0  # keep distinct seconds
    src = [f"a{int(x)}" for x in rng.integers(0, accounts, n)]
    dst = [f"a{int(x)}" for x in rng.integers(0, accounts, n)]
    amount = np.round(rng.lognormal(4, 1, n), 2)
    channel = [str(c) for c in rng.choice(["app", "web"], n)]
    props = [{"device": f"d{int(x)}"} if x < 3 else {} for x in rng.integers(0, 6, n)]
    return TransferLog([f"t{i:04d}" for i in range(n)], src, dst, amount, ts, list(channel), props)


def context() -> PairContext:
    return PairContext(
        friends={"a1": {"a2", "a3"}, "a2": {"a1", "a3"}, "a3": {"a1", "a2"}},
        identity={("a1", "a2"): 1},
        rings={"a2": [("R1", 0.7)], "a1": [("R1", 0.7)]},
        fraud_p={"a1": 0.2, "a2": 0.9},
        created_at={"a1": T0 - 86400 * 3},
    )


def test_serving_state_gives_the_batch_features_of_the_next_transfer() -> None:
    log = random_log()
    ctx = context()
    batch = batch_features(log, np.arange(len(log)), ctx)
    state = HistoryState(ctx, ["channel", "device"])
    for i in range(len(log)):
        live = state.features(
            log.src[i],
            log.dst[i],
            float(log.amount[i]),
            float(log.ts[i]),
            log.channel[i],
            log.properties[i],
        )
        np.testing.assert_allclose(
            live.numeric[0], batch.numeric[i], rtol=1e-9, equal_nan=True, err_msg=f"row {i}"
        )
        assert live.categorical["device"][0] == batch.categorical["device"][i]
        state.add(log.src[i], log.dst[i], float(log.amount[i]), float(log.ts[i]))


def test_features_ignore_everything_after_the_transfer() -> None:
    log = random_log()
    rows = np.arange(0, 200)
    full = batch_features(log, rows, context()).numeric
    cut = TransferLog(
        log.transfer_id[:200],
        log.src[:200],
        log.dst[:200],
        log.amount[:200],
        log.ts[:200],
        log.channel[:200],
        log.properties[:200],
    )
    # Equal up to the rounding of prefix sums over a shorter log.
    np.testing.assert_allclose(full, batch_features(cut, rows, context()).numeric, rtol=1e-8)


def test_the_figures_are_what_they_say() -> None:
    day = 86400.0
    log = TransferLog(
        ["t1", "t2", "t3", "t4"],
        ["a1", "a1", "a2", "a1"],
        ["a2", "a3", "a1", "a2"],
        np.array([100.0, 50.0, 10.0, 1400.0]),
        np.array([T0, T0 + 600, T0 + 1200, T0 + 1800 + day * 0]),
        ["app", "app", "web", "app"],
        [{}, {}, {}, {}],
    )
    f = batch_features(log, np.array([3]), context()).numeric[0]
    v = dict(zip(NUMERIC, f.tolist(), strict=True))
    assert v["s_out_count"] == 2
    assert v["s_amount_over_max"] == pytest.approx(14.0)
    assert v["s_amount_over_mean"] == pytest.approx(1400 / 75)
    assert v["s_out_1h"] == 2
    assert v["s_in_count"] == 1
    assert (v["pair_earlier"], v["pair_reverse"], v["first_to_receiver"]) == (1, 1, 0)
    assert (v["friends"], v["identity_links"], v["same_ring"]) == (1, 1, 1)
    assert v["common_friends"] == 1  # a3
    assert v["r_ring_score"] == pytest.approx(0.7)
    assert (v["s_fraud_p"], v["r_fraud_p"]) == pytest.approx((0.2, 0.9))
    assert v["s_age_days"] == pytest.approx(3 + 1800 / day)
    assert (v["r_in_count"], v["r_out_count"]) == (1, 1)
    assert math.isnan(
        batch_features(log, np.array([0]), context()).numeric[0][NUMERIC.index("s_amount_z")]
    )


def test_the_state_built_from_a_log_equals_one_fed_transfer_by_transfer() -> None:
    log = random_log(n=300)
    ctx = context()
    fed = HistoryState(ctx, ["channel", "device"])
    for i in range(len(log)):
        fed.add(log.src[i], log.dst[i], float(log.amount[i]), float(log.ts[i]))
    built = HistoryState.from_log(log, ctx, ["channel", "device"])
    end = float(log.ts[-1])
    for k, (s, d) in enumerate([("a1", "a2"), ("a3", "a1"), ("a7", "a9"), ("a1", "new")]):
        for later in (1.0, 1800.0, 7200.0):
            args = (s, d, 50.0 + k, end + later, "app", {"device": "d1"})
            np.testing.assert_allclose(
                built.features(*args).numeric, fed.features(*args).numeric, equal_nan=True
            )
