"""Synthetic credit behaviour on top of a generated network: obligations and their outcomes.

Written by ``synth.generator.generate`` after the network files, from its own random stream
(``[seed, 14]``), so the network files of a seed stay byte-identical with or without it.

The world (docs/credit.md has the picture):
- every non-merchant account has a latent **capacity** ``c`` (standard normal), seen only
  noisily: it moves the account's spending activity (so its transfers) and the size of the
  obligations it takes on;
- a persistent personal propensity ``u`` that only the account's own repayment record reveals;
- **community shocks**: a fifth of the communities carry a shock (a closed employer, a local
  crisis) that raises the default odds of all their members; no feature shows it, only the
  repayment records of the community (the account's friends and counterparties) do;
- about a fifth of the accounts are **thin-file**: their credit life starts in the last two
  months, so at the end of the window they hold open obligations and no resolved one.

Outcomes follow an ordered logit: ``z = logit + logistic noise``; ``z > 0`` defaults,
``z > -LATE_GAP`` is paid late, otherwise on time. At ``NOW`` (the end of the network's
window) obligations whose outcome is not yet known are ``open``; ``credit_truth.csv`` holds
their true outcome (the held-out evaluation set), ``credit_accounts_truth.csv`` the latent
variables of every account.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from creditgraph.domain import FloatArray, IntArray
from creditgraph.synth import writer as wr
from creditgraph.synth.sampling import DAY, BoolArray

OBLIGATION_COLUMNS = (
    "obligation_id",
    "account_id",
    "kind",
    "amount",
    "opened_at",
    "due_at",
    "status",
    "closed_at",
)
TRUTH_COLUMNS = ("obligation_id", "account_id", "outcome", "defaulted")
ACCOUNT_TRUTH_COLUMNS = ("account_id", "capacity", "community", "shock", "thin_file")
KINDS: tuple[str, ...] = ("pay_later", "consumer_loan", "rent", "phone_plan")
KIND_P = np.array([0.5, 0.15, 0.2, 0.15])
KIND_TERM_DAYS = np.array([30, 180, 30, 30])
KIND_LOG_AMOUNT = np.array([4.5, 7.2, 6.6, 3.6])
STATUSES: tuple[str, ...] = ("open", "repaid", "late", "defaulted")
OPEN, REPAID, LATE, DEFAULTED = 0, 1, 2, 3
#: Share of non-merchant accounts with any credit life, and of those the thin-file share.
CREDIT_SHARE = 0.9
THIN_SHARE = 0.13
SHOCKED_COMMUNITIES = 0.2
BASE_LOGIT = -3.1
LATE_GAP = 1.3
#: A default becomes known this long after the due date.
DEFAULT_KNOWN_AFTER = 60 * DAY


@dataclass(frozen=True)
class CreditWorld:
    """Inputs the credit layer reads from the generated network (index arrays)."""

    community: IntArray
    n_communities: int
    merchant: BoolArray
    created: IntArray
    activity: FloatArray
    fraud: BoolArray
    now: int


@dataclass(frozen=True)
class CreditSummary:
    obligations: int
    open_obligations: int
    thin_file_accounts: int
    default_rate_open: float
    files: dict[str, Path]


def write_credit(world: CreditWorld, ids: Any, seed: int, out_dir: Path) -> CreditSummary:
    """Write obligations.csv, credit_truth.csv and credit_accounts_truth.csv to ``out_dir``."""
    rng = np.random.default_rng([seed, 14])
    n = len(world.community)
    eligible = ~world.merchant & (rng.random(n) < CREDIT_SHARE)
    log_act = np.log(np.maximum(world.activity, 1e-3)) / 0.7
    capacity = 0.8 * np.where(world.merchant, 0.0, log_act) + 0.6 * rng.standard_normal(n)
    propensity = 0.6 * rng.standard_normal(n)
    shocked = rng.random(world.n_communities) < SHOCKED_COMMUNITIES
    comm_shock = np.where(
        shocked,
        1.6 * rng.uniform(0.6, 1.4, world.n_communities),
        rng.normal(0, 0.2, world.n_communities),
    )
    shock = comm_shock[world.community]
    thin = eligible & (rng.random(n) < THIN_SHARE)
    now = world.now
    start = np.where(
        thin,
        now - rng.uniform(5, 55, n) * DAY,
        np.maximum(world.created + 7 * DAY, now - rng.uniform(150, 1100, n) * DAY),
    ).astype(np.int64)
    start = np.minimum(start, now - 2 * DAY)

    # History: obligations opened between the start and two months before now (none for
    # thin files), then one recent obligation per account that is open at ``now``.
    span = np.maximum(now - 60 * DAY - start, 0)
    k_hist = np.where(eligible & ~thin & (span > 0), rng.poisson(span / (120 * DAY)), 0)
    owner = np.concatenate([np.repeat(np.arange(n), k_hist), np.flatnonzero(eligible)])
    m = len(owner)
    n_hist = int(k_hist.sum())
    opened = np.empty(m, dtype=np.int64)
    opened[:n_hist] = start[owner[:n_hist]] + (rng.random(n_hist) * span[owner[:n_hist]])
    recent_lo = np.maximum(start[owner[n_hist:]], now - 50 * DAY)
    opened[n_hist:] = recent_lo + rng.random(m - n_hist) * (now - DAY - recent_lo)
    kind = rng.choice(len(KINDS), m, p=KIND_P).astype(np.int8)
    term = KIND_TERM_DAYS[kind] * DAY
    # The recent one is due after ``now`` so it is still open.
    term[n_hist:] = np.maximum(term[n_hist:], now - opened[n_hist:] + 14 * DAY)
    due = opened + term
    size_noise = rng.normal(0, 0.5, m)
    amount = np.round(np.exp(KIND_LOG_AMOUNT[kind] + 0.3 * capacity[owner] + size_noise), 2)

    logit = (
        BASE_LOGIT
        - 0.9 * capacity[owner]
        + propensity[owner]
        + shock[owner]
        + 0.4 * size_noise
        + 1.0 * world.fraud[owner]
    )
    z = logit + rng.logistic(0, 1, m)
    outcome = np.where(z > 0, DEFAULTED, np.where(z > -LATE_GAP, LATE, REPAID)).astype(np.int8)
    paid_at = np.where(
        outcome == REPAID,
        opened + (0.2 + 0.8 * rng.random(m)) * (due - opened),
        due + rng.uniform(3, 60, m) * DAY,
    ).astype(np.int64)
    known = np.where(outcome == DEFAULTED, due + DEFAULT_KNOWN_AFTER, paid_at) < now
    known[n_hist:] = False  # the recent one is the held-out target: outcome after ``now``
    status = np.where(known, outcome, OPEN).astype(np.int8)

    order = np.lexsort((opened, owner))
    owner, opened, due, kind, amount = (
        owner[order],
        opened[order],
        due[order],
        kind[order],
        amount[order],
    )
    outcome, paid_at, status = outcome[order], paid_at[order], status[order]
    closed = np.isin(status, (REPAID, LATE))

    out_dir.mkdir(parents=True, exist_ok=True)
    files = {
        "obligations": out_dir / "obligations.csv",
        "credit_truth": out_dir / "credit_truth.csv",
        "credit_accounts_truth": out_dir / "credit_accounts_truth.csv",
    }
    oid_width = max(8, len(str(m)))
    oids = wr.id_strings("O", np.arange(m), oid_width)
    closed_text = _optional_iso(paid_at, closed)
    wr.write_csv(
        files["obligations"],
        OBLIGATION_COLUMNS,
        m,
        lambda s: (
            oids[s],
            ids.take(owner[s]),
            wr.categories(kind[s], KINDS),
            wr.cents(amount[s]),
            wr.iso_strings(opened[s]),
            wr.iso_strings(due[s]),
            wr.categories(status[s], STATUSES),
            closed_text[s],
        ),
    )
    held = np.flatnonzero(status == OPEN)
    wr.write_csv(
        files["credit_truth"],
        TRUTH_COLUMNS,
        len(held),
        lambda s: (
            oids.take(held[s]),
            ids.take(owner[held[s]]),
            wr.categories(outcome[held[s]], STATUSES),
            (outcome[held[s]] == DEFAULTED).astype(np.int64),
        ),
    )
    resolved = np.zeros(n, dtype=bool)
    resolved[owner[status != OPEN]] = True
    has_credit = np.zeros(n, dtype=bool)
    has_credit[owner] = True
    thin_file = has_credit & ~resolved
    accounts = np.flatnonzero(has_credit)
    wr.write_csv(
        files["credit_accounts_truth"],
        ACCOUNT_TRUTH_COLUMNS,
        len(accounts),
        lambda s: (
            ids.take(accounts[s]),
            np.round(capacity[accounts[s]], 4),
            world.community[accounts[s]],
            np.round(shock[accounts[s]], 4),
            thin_file[accounts[s]].astype(np.int64),
        ),
    )
    return CreditSummary(
        obligations=m,
        open_obligations=len(held),
        thin_file_accounts=int(thin_file.sum()),
        default_rate_open=float((outcome[held] == DEFAULTED).mean()) if len(held) else 0.0,
        files=files,
    )


def _optional_iso(ts: IntArray, present: BoolArray) -> Any:
    """ISO strings where ``present``, empty elsewhere."""
    text = wr.iso_strings(ts)
    return pc.if_else(pa.array(present), text, pa.scalar("", pa.string()))
