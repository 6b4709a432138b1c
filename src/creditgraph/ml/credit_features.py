"""Credit features of the five dimensions, as of a point in time (arrays in, arrays out).

Everything is computed *as of* a time ``t``: an obligation counts as resolved only when its
final status took effect before ``t``, a transfer only when it happened before ``t``. The
training job reads features at a cut ``t`` and labels from obligations opened after it, so an
outcome never explains itself; the serving path reads features at the model's ``as_of``.

Relationships enter the ``social`` dimension alone, and only over edges whose two ends both
consent (``CreditData.consent``). The other four read the account's own records: its own
obligations, the amounts and times of its own transfers (never who the counterparty is),
its own account fields.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

Dimension = Literal["credit_history", "behaviour", "capacity", "identity", "social"]
DIMENSIONS: tuple[Dimension, ...] = (
    "credit_history",
    "behaviour",
    "capacity",
    "identity",
    "social",
)
OWN_DIMENSIONS: tuple[Dimension, ...] = DIMENSIONS[:4]

DAY = 86_400.0
#: Status codes of ``CreditData.ob_status`` (final status; 0 while open).
OPEN, REPAID, LATE, DEFAULTED = 0, 1, 2, 3
STATUS_CODE = {"open": OPEN, "repaid": REPAID, "late": LATE, "defaulted": DEFAULTED}
BEHAVIOUR_DAYS = 182
CAPACITY_DAYS = 91
#: A transfer at or above this amount counts as a large payment (spending mix).
LARGE_PAYMENT = 200.0
#: Prior weight (pseudo-obligations) of the smoothed shares.
PRIOR_WEIGHT = 2.0


@dataclass(frozen=True)
class CreditData:
    """Everything the credit features read, as index arrays into ``account_ids`` (sorted)."""

    account_ids: list[str]
    created_at: FloatArray
    #: Identity columns named in the job file (NaN where missing).
    identity: FloatArray
    identity_names: list[str]
    #: True where the account's relationships may enter credit outputs.
    consent: BoolArray
    ob_account: IntArray
    ob_amount: FloatArray
    ob_opened: FloatArray
    ob_due: FloatArray
    ob_status: npt.NDArray[np.int8]
    #: When the final status took effect (NaN while open).
    ob_final_at: FloatArray
    tx_src: IntArray
    tx_dst: IntArray
    tx_amount: FloatArray
    tx_ts: FloatArray
    friend_a: IntArray
    friend_b: IntArray

    @property
    def num_accounts(self) -> int:
        return len(self.account_ids)


@dataclass(frozen=True)
class Block:
    """One dimension's design matrix (rows = the accounts asked for)."""

    names: list[str]
    x: FloatArray


FEATURE_NAMES: dict[Dimension, tuple[str, ...]] = {
    "credit_history": (
        "resolved_obligations",
        "on_time_share",
        "late_payments",
        "defaults",
        "default_share",
        "history_days",
        "days_since_default",
        "past_due_open",
        "no_history",
    ),
    "behaviour": (
        "payments_out",
        "payments_in",
        "active_weeks_share",
        "weekly_count_cv",
        "mean_payment",
        "large_payment_share",
    ),
    "capacity": (
        "inflow_90d",
        "outflow_90d",
        "inflow_monthly_cv",
        "owed",
        "owed_to_monthly_flow",
        "open_obligations",
    ),
    "identity": ("account_age_days",),
    "social": tuple(
        f"{rel}_{what}"
        for rel in ("friends", "pays", "paid_by", "all")
        for what in (
            "count",
            "with_history",
            "pooled_default_share",
            "pooled_late_share",
            "defaulter_share",
        )
    ),
}


def status_at(data: CreditData, t: float) -> npt.NDArray[np.int8]:
    """Each obligation's status as known at ``t`` (``OPEN`` before its final status took
    effect); obligations opened at or after ``t`` are -1 (not known yet)."""
    known = data.ob_opened < t
    final = (data.ob_status != OPEN) & (data.ob_final_at < t)
    out = np.where(final, data.ob_status, OPEN).astype(np.int8)
    out[~known] = -1
    return out


def _record(data: CreditData, st: npt.NDArray[np.int8]) -> tuple[FloatArray, ...]:
    """Per account: resolved, on time, late, defaulted counts of the statuses ``st``."""
    n = data.num_accounts
    a = data.ob_account

    def count(code: int) -> FloatArray:
        return np.bincount(a[st == code], minlength=n).astype(np.float64)

    repaid, late, default = count(REPAID), count(LATE), count(DEFAULTED)
    return repaid + late + default, repaid, late, default


def features_at(
    data: CreditData,
    t: float,
    rows: IntArray,
    owed_obligations: BoolArray,
    prior_default: float,
    prior_late: float,
) -> dict[Dimension, Block]:
    """The five dimensions' design matrices of ``rows`` as of ``t``.

    ``owed_obligations`` marks the obligations under assessment (the open ones when serving,
    the ones opened after the cut when training): their amounts are what the account owes.
    """
    st = status_at(data, t)
    resolved, repaid, late, default = _record(data, st)
    out: dict[Dimension, Block] = {
        "credit_history": _history(
            data, t, st, rows, resolved, repaid, late, default, prior_default
        ),
        "behaviour": _behaviour(data, t, rows),
        "capacity": _capacity(data, t, st, rows, owed_obligations),
        "identity": _identity(data, t, rows),
        "social": _social(data, t, rows, resolved, late, default, prior_default, prior_late),
    }
    return out


def _history(
    data: CreditData,
    t: float,
    st: npt.NDArray[np.int8],
    rows: IntArray,
    resolved: FloatArray,
    repaid: FloatArray,
    late: FloatArray,
    default: FloatArray,
    prior_default: float,
) -> Block:
    n = data.num_accounts
    a = data.ob_account
    seen = st >= 0
    first = np.full(n, np.inf)
    np.minimum.at(first, a[seen], data.ob_opened[seen])
    last_default = np.full(n, -np.inf)
    d = st == DEFAULTED
    np.maximum.at(last_default, a[d], data.ob_final_at[d])
    past_due = np.bincount(a[(st == OPEN) & (data.ob_due < t)], minlength=n).astype(np.float64)
    r = rows
    w = PRIOR_WEIGHT
    x = np.column_stack(
        [
            resolved[r],
            (repaid[r] + w * (1 - prior_default)) / (resolved[r] + w),
            late[r],
            default[r],
            (default[r] + w * prior_default) / (resolved[r] + w),
            np.where(np.isfinite(first[r]), (t - first[r]) / DAY, 0.0),
            np.where(np.isfinite(last_default[r]), (t - last_default[r]) / DAY, 3650.0),
            past_due[r],
            (resolved[r] == 0).astype(np.float64),
        ]
    )
    return Block(list(FEATURE_NAMES["credit_history"]), x)


def _own_transfers(data: CreditData, t: float, days: int) -> tuple[BoolArray, BoolArray]:
    lo = t - days * DAY
    window = (data.tx_ts < t) & (data.tx_ts >= lo)
    return window, data.tx_src != data.tx_dst


def _behaviour(data: CreditData, t: float, rows: IntArray) -> Block:
    n = data.num_accounts
    window, real = _own_transfers(data, t, BEHAVIOUR_DAYS)
    out = window & real
    src, dst, amt = data.tx_src, data.tx_dst, data.tx_amount
    n_out = np.bincount(src[out], minlength=n).astype(np.float64)
    n_in = np.bincount(dst[out], minlength=n).astype(np.float64)
    weeks = BEHAVIOUR_DAYS // 7
    week = np.clip(((t - data.tx_ts[out]) // (7 * DAY)).astype(np.int64), 0, weeks - 1)
    per_week = np.zeros((n, weeks))
    np.add.at(per_week, (src[out], week), 1.0)
    active = (per_week > 0).mean(axis=1)
    mean_w = per_week.mean(axis=1)
    cv = np.where(mean_w > 0, per_week.std(axis=1) / np.maximum(mean_w, 1e-9), 0.0)
    out_sum = np.bincount(src[out], weights=amt[out], minlength=n)
    large = out & (amt >= LARGE_PAYMENT)
    large_sum = np.bincount(src[large], weights=amt[large], minlength=n)
    r = rows
    x = np.column_stack(
        [
            n_out[r],
            n_in[r],
            active[r],
            cv[r],
            np.where(n_out[r] > 0, out_sum[r] / np.maximum(n_out[r], 1), 0.0),
            np.where(out_sum[r] > 0, large_sum[r] / np.maximum(out_sum[r], 1e-9), 0.0),
        ]
    )
    return Block(list(FEATURE_NAMES["behaviour"]), x)


def _capacity(
    data: CreditData,
    t: float,
    st: npt.NDArray[np.int8],
    rows: IntArray,
    owed_obligations: BoolArray,
) -> Block:
    n = data.num_accounts
    window, real = _own_transfers(data, t, CAPACITY_DAYS)
    m = window & real
    src, dst, amt = data.tx_src, data.tx_dst, data.tx_amount
    inflow = np.bincount(dst[m], weights=amt[m], minlength=n)
    outflow = np.bincount(src[m], weights=amt[m], minlength=n)
    months = 6
    w6, _ = _own_transfers(data, t, 30 * months)
    m6 = w6 & real
    month = np.clip(((t - data.tx_ts[m6]) // (30 * DAY)).astype(np.int64), 0, months - 1)
    per_month = np.zeros((n, months))
    np.add.at(per_month, (dst[m6], month), amt[m6])
    mean_m = per_month.mean(axis=1)
    cv = np.where(mean_m > 0, per_month.std(axis=1) / np.maximum(mean_m, 1e-9), 0.0)
    owing = owed_obligations | (st == OPEN)
    owed = np.bincount(data.ob_account[owing], weights=data.ob_amount[owing], minlength=n)
    n_open = np.bincount(data.ob_account[owing], minlength=n).astype(np.float64)
    monthly_flow = (inflow + outflow) / 2 / (CAPACITY_DAYS / 30)
    r = rows
    x = np.column_stack(
        [
            inflow[r],
            outflow[r],
            cv[r],
            owed[r],
            owed[r] / (monthly_flow[r] + 10.0),
            n_open[r],
        ]
    )
    return Block(list(FEATURE_NAMES["capacity"]), x)


def _identity(data: CreditData, t: float, rows: IntArray) -> Block:
    age = (t - data.created_at[rows]) / DAY
    x = np.column_stack([age, data.identity[rows]]) if data.identity.size else age[:, None]
    return Block(["account_age_days", *data.identity_names], x)


def relation_pairs(data: CreditData, t: float) -> dict[str, tuple[IntArray, IntArray]]:
    """Directed (account, neighbour) pairs per relation as of ``t``, both ends consenting:
    ``friends`` (both directions of each friendship), ``pays`` (the accounts it paid),
    ``paid_by`` (the accounts that paid it); each pair once."""
    ok = data.consent
    fa, fb = data.friend_a, data.friend_b
    keep = ok[fa] & ok[fb] & (fa != fb)
    friends = (np.r_[fa[keep], fb[keep]], np.r_[fb[keep], fa[keep]])
    m = (data.tx_ts < t) & (data.tx_src != data.tx_dst) & ok[data.tx_src] & ok[data.tx_dst]
    n = data.num_accounts
    key = np.unique(data.tx_src[m] * n + data.tx_dst[m])
    s, d = key // n, key % n
    return {"friends": friends, "pays": (s, d), "paid_by": (d, s)}


def _social(
    data: CreditData,
    t: float,
    rows: IntArray,
    resolved: FloatArray,
    late: FloatArray,
    default: FloatArray,
    prior_default: float,
    prior_late: float,
) -> Block:
    n = data.num_accounts
    pairs = relation_pairs(data, t)
    allp = (
        np.concatenate([p[0] for p in pairs.values()]),
        np.concatenate([p[1] for p in pairs.values()]),
    )
    key = np.unique(allp[0] * n + allp[1])
    pairs["all"] = (key // n, key % n)
    has_default = (default > 0).astype(np.float64)
    has_history = (resolved > 0).astype(np.float64)
    cols: list[FloatArray] = []
    w = PRIOR_WEIGHT
    for rel in ("friends", "pays", "paid_by", "all"):
        a, b = pairs[rel]
        count = np.bincount(a, minlength=n).astype(np.float64)
        hist = np.bincount(a, weights=has_history[b], minlength=n).astype(np.float64)
        res = np.bincount(a, weights=resolved[b], minlength=n)
        dfl = np.bincount(a, weights=default[b], minlength=n)
        lt = np.bincount(a, weights=late[b], minlength=n)
        dfr = np.bincount(a, weights=has_default[b], minlength=n)
        cols += [
            count[rows],
            hist[rows],
            (dfl[rows] + w * prior_default) / (res[rows] + w),
            (lt[rows] + w * prior_late) / (res[rows] + w),
            (dfr[rows] + w * prior_default) / (hist[rows] + w),
        ]
    return Block(list(FEATURE_NAMES["social"]), np.column_stack(cols))


def targets_after(
    data: CreditData, t: float, horizon_days: float, end: float, grace_days: float = 60.0
) -> tuple[BoolArray, IntArray, npt.NDArray[np.int8]]:
    """Obligations opened in ``[t, t + horizon)`` whose outcome is known at ``end`` (a due
    date at least ``grace_days`` before it, so a default has had time to be recorded), the
    accounts holding any, and per such account 1 if any of them defaulted."""
    sel = (
        (data.ob_opened >= t)
        & (data.ob_opened < t + horizon_days * DAY)
        & (data.ob_status != OPEN)
        & (data.ob_due + grace_days * DAY < end)
    )
    accounts = np.unique(data.ob_account[sel])
    defaulted = np.zeros(data.num_accounts, dtype=np.int8)
    d = sel & (data.ob_status == DEFAULTED)
    defaulted[data.ob_account[d]] = 1
    return sel, accounts.astype(np.int64), defaulted[accounts]


def prior_rates(data: CreditData, t: float) -> tuple[float, float]:
    """Default and late shares of the obligations resolved before ``t`` (smoothing priors)."""
    st = status_at(data, t)
    res = st > 0
    if not res.any():
        return 0.1, 0.1
    return float((st[res] == DEFAULTED).mean()), float((st[res] == LATE).mean())


def subset_names(blocks: dict[Dimension, Block], dims: Sequence[Dimension]) -> list[str]:
    """Column names of ``dims`` concatenated, each prefixed with its dimension."""
    return [f"{d}.{c}" for d in dims for c in blocks[d].names]
