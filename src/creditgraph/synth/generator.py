"""Synthetic social-payment network with planted fraud rings and ground truth.

At ~450 lines: the legitimate network's generator in one place; issue 12 reworks synth/, so it
was left whole in the renovation.

The legitimate network: accounts live in communities (sizes lognormal) inside regions;
friendships follow a Chung-Lu model with Pareto weights (heavy-tailed degrees, a few hubs)
whose second endpoint is mostly drawn from the same community, else the same region, else
anywhere. Families of two or three share a device and an address. Money moves mostly between
friends and to a small set of merchants with Zipf popularity (a legitimate fan-in hub that a
detector must not flag), plus refunds back from merchants and payments to strangers nearby.

Fraud (about 2% of accounts, see ``fraud.py``) is planted on top: rings of five kinds and
lone scammers, who also keep friendships and ordinary payments as camouflage. Features carry
a weak, noisy fraud signal; ``age_years`` is sensitive and independent of everything.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from creditgraph.domain import FloatArray, IntArray
from creditgraph.errors import InvalidInput
from creditgraph.synth import credit as cr
from creditgraph.synth import fraud as fr
from creditgraph.synth import writer as wr
from creditgraph.synth.sampling import (
    APP,
    CARD,
    CHANNELS,
    DAY,
    FRIEND,
    HOUR,
    LINK_TYPES,
    SHARES_ADDRESS,
    SHARES_DEVICE,
    WEB,
    BoolArray,
    GroupSampler,
    Int8Array,
    LinkBatch,
    TransferBatch,
    weighted_choice,
)

MIN_ACCOUNTS = 200
#: The observed year of activity: every transfer falls in [WINDOW_START, WINDOW_END).
WINDOW_START = 1_704_067_200  # 2024-01-01T00:00:00Z
WINDOW_END = 1_735_689_600  # 2025-01-01T00:00:00Z
TRANSFERS_PER_ACCOUNT = 10
FRIEND_DEGREE = 16
REGIONS: tuple[str, ...] = ("DE", "FR", "ES", "IT", "NL", "PL", "PT", "BE", "AT", "IE")
REGION_WEIGHTS = np.array([0.2, 0.17, 0.13, 0.13, 0.08, 0.1, 0.05, 0.05, 0.04, 0.05])
FEATURES: tuple[str, ...] = (
    "kyc_level",
    "num_devices",
    "avg_session_minutes",
    "failed_logins_30d",
    "age_years",
)
ACCOUNT_COLUMNS = ("account_id", "created_at", *FEATURES, "region")
TRANSFER_COLUMNS = ("transfer_id", "src", "dst", "amount", "timestamp", "currency", "channel")
LINK_COLUMNS = ("src", "dst", "type", "since")
LABEL_COLUMNS = ("account_id", "label", "source", "observed_at")
LABEL_SOURCES = ("investigation", "chargeback", "kyc_review")
TRANSFER_LABEL_COLUMNS = ("transfer_id", "label", "source", "observed_at")
TRANSFER_LABEL_SOURCES = ("chargeback", "victim_report", "review")


@dataclass(frozen=True)
class SynthSummary:
    """What ``generate`` wrote: row counts, planted fraud, and the file of each output."""

    accounts: int
    transfers: int
    links: int
    labels: int
    fraud_accounts: int
    rings: int
    rings_by_kind: dict[str, int]
    files: dict[str, Path]


@dataclass(frozen=True)
class _Population:
    community: IntArray
    n_communities: int
    region: IntArray
    merchant: BoolArray
    created: IntArray
    looks_fraud: BoolArray
    #: Propensity to pay (0 for merchants, who only receive and refund).
    activity: FloatArray


def generate(
    n_accounts: int,
    seed: int,
    out_dir: Path,
    *,
    progress: Callable[[str], None] | None = None,
) -> SynthSummary:
    """Write accounts, transfers, links, labels (CSV) and ground_truth.json into ``out_dir``.

    The same ``seed`` and ``n_accounts`` give byte-identical files. Raises ``InvalidInput``
    for fewer than ``MIN_ACCOUNTS`` accounts; below about 1,000 accounts the fraud share
    rises above 2% because one ring of every kind is always planted.
    """
    if isinstance(n_accounts, bool) or not isinstance(n_accounts, int):
        raise InvalidInput(f"n_accounts must be an integer, got {n_accounts!r}")
    if n_accounts < MIN_ACCOUNTS:
        raise InvalidInput(f"n_accounts must be at least {MIN_ACCOUNTS}, got {n_accounts}")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise InvalidInput(f"seed must be a non-negative integer, got {seed!r}")
    say = progress or (lambda _msg: None)
    rng = np.random.default_rng(seed)
    n = n_accounts

    community, n_comm, region, merchant = _structure(n, rng)
    plan = fr.plan_fraud(region, ~merchant, WINDOW_START, WINDOW_END, rng)
    pop = _population(community, n_comm, region, merchant, plan, rng)
    features = _features(pop, rng)
    say(f"accounts: {n:,} ({int(plan.fraud.sum()):,} fraudulent, {len(plan.rings):,} rings)")

    cp = fr.Counterparties(
        merchants=np.flatnonzero(merchant),
        victims=np.flatnonzero(~merchant & ~plan.fraud & (pop.created < WINDOW_START)),
    )
    fraud_tx, fraud_links = fr.ring_activity(plan, pop.created, cp, WINDOW_END, WINDOW_START, rng)
    links = LinkBatch.concat([_friendships(pop, plan.fraud, rng), _families(pop, rng), fraud_links])
    links = links.canonical(n)
    say(f"links: {len(links):,}")

    legit_count = max(0, TRANSFERS_PER_ACCOUNT * n - len(fraud_tx))
    legit_tx = _legit_transfers(pop, links, legit_count, rng)
    order = _time_order(TransferBatch.concat([fraud_tx, *legit_tx]), rng)
    transfers = TransferBatch.concat([fraud_tx, *legit_tx]).take(order)
    # Every row of the planted activity is a fraudulent transfer (ground truth, by position).
    fraud_rows = np.flatnonzero(order < len(fraud_tx))
    say(f"transfers: {len(transfers):,} ({len(fraud_rows):,} fraudulent)")
    labels = _labels(pop, plan.fraud, fraud_tx, rng)

    out_dir.mkdir(parents=True, exist_ok=True)
    files = {name: out_dir / f"{name}.csv" for name in ("accounts", "transfers", "links", "labels")}
    files["transfer_labels"] = out_dir / "transfer_labels.csv"
    files["ground_truth"] = out_dir / "ground_truth.json"
    id_width = max(7, len(str(n)))
    ids = wr.id_strings("A", np.arange(n), id_width)
    _write_accounts(files["accounts"], ids, pop, features)
    _write_transfers(files["transfers"], ids, transfers)
    _write_links(files["links"], ids, links)
    _write_labels(files["labels"], ids, labels)
    tx_width = max(9, len(str(len(transfers))))
    _write_transfer_labels(files["transfer_labels"], seed, transfers, fraud_rows, tx_width)
    _write_ground_truth(files["ground_truth"], seed, ids, plan, fraud_rows, tx_width)
    # Credit behaviour (obligations) from its own random stream: the files above stay the same.
    world = cr.CreditWorld(
        pop.community,
        pop.n_communities,
        pop.merchant,
        pop.created,
        pop.activity,
        plan.fraud,
        WINDOW_END,
    )
    files.update(cr.write_credit(world, ids, seed, out_dir).files)
    say(f"wrote {out_dir}")

    rings_by_kind: dict[str, int] = {k: sum(r.kind == k for r in plan.rings) for k in fr.RING_KINDS}
    return SynthSummary(
        accounts=n,
        transfers=len(transfers),
        links=len(links),
        labels=len(labels.account),
        fraud_accounts=int(plan.fraud.sum()),
        rings=len(plan.rings),
        rings_by_kind=rings_by_kind,
        files=files,
    )


def _structure(n: int, rng: np.random.Generator) -> tuple[IntArray, int, IntArray, BoolArray]:
    """Communities (lognormal sizes) placed in regions, and the merchant accounts."""
    n_comm = max(2, n // 150)
    community = weighted_choice(rng.lognormal(0.0, 0.8, n_comm), n, rng)
    comm_region = rng.choice(len(REGIONS), n_comm, p=REGION_WEIGHTS / REGION_WEIGHTS.sum())
    region = comm_region[community]
    # A few people live away from their social circle.
    moved = rng.random(n) < 0.03
    region[moved] = rng.integers(0, len(REGIONS), int(moved.sum()))
    merchant = np.zeros(n, dtype=bool)
    merchant[rng.choice(n, max(5, n // 500), replace=False)] = True
    return community, n_comm, region.astype(np.int64), merchant


def _population(
    community: IntArray,
    n_comm: int,
    region: IntArray,
    merchant: BoolArray,
    plan: fr.FraudPlan,
    rng: np.random.Generator,
) -> _Population:
    """Creation times and activity; a fraud-like profile marks 60% of fraud and 3% of others."""
    n = len(community)
    looks_fraud = np.where(plan.fraud, rng.random(n) < 0.6, rng.random(n) < 0.03) & ~merchant
    opened_in_window = rng.random(n) < np.where(looks_fraud, 0.55, 0.15)
    created = np.where(
        opened_in_window,
        WINDOW_START + (rng.random(n) * (WINDOW_END - 30 * DAY - WINDOW_START)),
        WINDOW_START - np.minimum(rng.exponential(900, n), 3650) * DAY - rng.random(n) * DAY,
    ).astype(np.int64)
    created[merchant] = WINDOW_START - rng.integers(90 * DAY, 3650 * DAY, int(merchant.sum()))
    fr.set_ring_creation(plan, created, rng)
    activity = rng.lognormal(0.0, 0.7, n)
    activity[merchant] = 0.0
    return _Population(community, n_comm, region, merchant, created, looks_fraud, activity)


def _features(pop: _Population, rng: np.random.Generator) -> dict[str, Any]:
    """Numeric account features: weak signal through ``looks_fraud``, none in ``age_years``."""
    lf, shop = pop.looks_fraud, pop.merchant
    n = len(lf)
    kyc = np.where(
        lf,
        rng.choice(4, n, p=[0.2, 0.4, 0.3, 0.1]),
        rng.choice(4, n, p=[0.04, 0.21, 0.5, 0.25]),
    )
    kyc[shop] = 3
    devices = 1 + rng.poisson(np.where(shop, 4.0, np.where(lf, 1.5, 0.4)))
    session = rng.lognormal(
        np.log(np.where(shop, 30.0, np.where(lf, 5.0, 9.0))), np.where(lf, 0.8, 0.6)
    )
    failed = rng.poisson(np.where(lf, 1.2, 0.3))
    # Drawn on its own so the sensitive attribute is independent of fraud and of the graph.
    age = np.clip(18 + rng.gamma(2.2, 9.0, n), 18, 90).astype(np.int64)
    return {
        "kyc_level": kyc.astype(np.int64),
        "num_devices": devices.astype(np.int64),
        "avg_session_minutes": np.round(session, 1),
        "failed_logins_30d": failed.astype(np.int64),
        "age_years": age,
    }


def _after(lo: IntArray, rng: np.random.Generator, skew: float = 1.0) -> IntArray:
    """A time in [lo, WINDOW_END - 1 day); ``skew`` > 1 favours early times."""
    span = WINDOW_END - DAY - lo
    return (lo + span * rng.random(len(lo)) ** skew).astype(np.int64)


def _friendships(pop: _Population, fraud: BoolArray, rng: np.random.Generator) -> LinkBatch:
    """Chung-Lu friendships with Pareto(2.5) weights, local by community and region."""
    n = len(pop.community)
    weight = np.minimum((1.0 - rng.random(n)) ** (-1 / 1.5), 300.0)
    weight[pop.merchant] = 0.0
    # Fraudsters keep some friends as cover, but fewer than most.
    weight[fraud] *= 0.6
    # Oversampled a little: self loops and repeated pairs are dropped later.
    n_edges = int(n * FRIEND_DEGREE / 2 * 1.06)
    a = weighted_choice(weight, n_edges, rng)
    b = np.empty(n_edges, dtype=np.int64)
    # Hubs reach past their community: its size caps how many friends it can hold.
    mode = rng.random(n_edges)
    in_comm = mode < 0.75 * np.minimum(1.0, 20.0 / weight[a])
    in_region = ~in_comm & (mode < 0.9)
    elsewhere = ~(in_comm | in_region)
    b[in_comm] = GroupSampler.build(pop.community, pop.n_communities, weight).sample(
        pop.community[a[in_comm]], rng
    )
    b[in_region] = GroupSampler.build(pop.region, len(REGIONS), weight).sample(
        pop.region[a[in_region]], rng
    )
    b[elsewhere] = weighted_choice(weight, int(elsewhere.sum()), rng)
    since = _after(np.maximum(pop.created[a], pop.created[b]) + HOUR, rng, skew=2.0)
    return LinkBatch.of(a, b, FRIEND, since)


def _families(pop: _Population, rng: np.random.Generator) -> LinkBatch:
    """Households of 2-3 in one community: friends who share a device and an address.

    They give legitimate accounts the same SHARES_DEVICE pattern that fraud clusters have.
    """
    n = len(pop.community)
    person = np.flatnonzero(~pop.merchant)
    heads = rng.choice(person, n // 60)
    eligible = (~pop.merchant).astype(np.float64)
    sampler = GroupSampler.build(pop.community, pop.n_communities, eligible)
    second = sampler.sample(pop.community[heads], rng)
    third = sampler.sample(pop.community[heads], rng)
    has_third = rng.random(len(heads)) < 0.4
    a = np.concatenate([heads, heads[has_third], second[has_third]])
    b = np.concatenate([second, third[has_third], third[has_third]])
    since = _after(np.maximum(pop.created[a], pop.created[b]) + HOUR, rng, skew=3.0)
    parts = []
    for kind, p in ((FRIEND, 0.9), (SHARES_DEVICE, 0.7), (SHARES_ADDRESS, 0.9)):
        keep = rng.random(len(a)) < p
        parts.append(LinkBatch.of(a[keep], b[keep], kind, since[keep]))
    return LinkBatch.concat(parts)


def _daytime(lo: IntArray, rng: np.random.Generator) -> IntArray:
    """Times in [lo, WINDOW_END), moved to a daytime-heavy hour of the same day when possible."""
    ts = lo + (rng.random(len(lo)) * (WINDOW_END - lo)).astype(np.int64)
    hour = (rng.normal(15.5 * HOUR, 4.5 * HOUR, len(lo)) % DAY).astype(np.int64)
    shaped = ts - ts % DAY + hour
    return np.where((shaped >= lo) & (shaped < WINDOW_END), shaped, ts)


def _legit_transfers(
    pop: _Population, links: LinkBatch, count: int, rng: np.random.Generator
) -> list[TransferBatch]:
    """Payments between friends (53%), to merchants (35%, 2% refunded) and to strangers."""
    n_merchant_tx = round(0.35 * count)
    n_refund = round(0.02 * n_merchant_tx)
    n_friend_tx = round(0.53 * count)
    n_other = count - n_merchant_tx - n_refund - n_friend_tx
    return [
        _friend_payments(pop, links, n_friend_tx, rng),
        *_merchant_payments(pop, n_merchant_tx, n_refund, rng),
        _stranger_payments(pop, n_other, rng),
    ]


def _friend_payments(
    pop: _Population, links: LinkBatch, count: int, rng: np.random.Generator
) -> TransferBatch:
    """Friends pay each other with a per-friendship intensity and direction bias."""
    friend = links.kind == FRIEND
    a, b, since = links.a[friend], links.b[friend], links.since[friend]
    intensity = rng.lognormal(0.0, 1.0, len(a)) * np.sqrt(pop.activity[a] * pop.activity[b])
    bias = rng.beta(2.0, 2.0, len(a))
    edge = weighted_choice(intensity, count, rng)
    forward = rng.random(count) < bias[edge]
    src = np.where(forward, a[edge], b[edge])
    dst = np.where(forward, b[edge], a[edge])
    ts = _daytime(np.maximum(since[edge], WINDOW_START) + HOUR, rng)
    amount = np.maximum(np.round(rng.lognormal(np.log(25), 1.0, count), 2), 1.0)
    channel = np.where(rng.random(count) < 0.75, APP, WEB)
    return TransferBatch.of(src, dst, amount, ts, channel)


def _merchant_payments(
    pop: _Population, count: int, n_refund: int, rng: np.random.Generator
) -> tuple[TransferBatch, TransferBatch]:
    """Purchases at Zipf-popular merchants, mostly in the payer's region, and a few refunds."""
    merchants = np.flatnonzero(pop.merchant)
    popularity = np.asarray((1.0 + rng.permutation(len(merchants))) ** -1.1, dtype=np.float64)
    price = rng.lognormal(np.log(25), 0.8, len(merchants))
    by_region = GroupSampler.build(pop.region[merchants], len(REGIONS), popularity)

    payer = weighted_choice(pop.activity, count, rng)
    shop = weighted_choice(popularity, count, rng)
    local = (rng.random(count) < 0.75) & by_region.has_weight(pop.region[payer])
    shop[local] = by_region.sample(pop.region[payer[local]], rng)

    ts = _daytime(np.maximum(pop.created[payer], WINDOW_START) + HOUR, rng)
    amount = np.maximum(np.round(price[shop] * rng.lognormal(0.0, 0.5, count), 2), 0.5)
    channel = rng.choice([CARD, APP, WEB], count, p=[0.6, 0.25, 0.15])
    purchases = TransferBatch.of(payer, merchants[shop], amount, ts, channel)

    refunded = rng.choice(count, min(n_refund, count), replace=False)
    refund_ts = ts[refunded] + rng.integers(DAY, 20 * DAY, len(refunded))
    refunded, refund_ts = refunded[refund_ts < WINDOW_END], refund_ts[refund_ts < WINDOW_END]
    refunds = TransferBatch.of(
        merchants[shop[refunded]],
        payer[refunded],
        amount[refunded],
        refund_ts,
        channel[refunded],
    )
    return purchases, refunds


def _stranger_payments(pop: _Population, count: int, rng: np.random.Generator) -> TransferBatch:
    """Marketplace sales, rent and the like: mostly to an active account in the same region."""
    payer = weighted_choice(pop.activity, count, rng)
    payee = weighted_choice(pop.activity, count, rng)
    local = rng.random(count) < 0.7
    payee[local] = GroupSampler.build(pop.region, len(REGIONS), pop.activity).sample(
        pop.region[payer[local]], rng
    )
    ts = _daytime(
        np.maximum(np.maximum(pop.created[payer], pop.created[payee]), WINDOW_START) + HOUR, rng
    )
    amount = np.maximum(np.round(rng.lognormal(np.log(60), 1.2, count), 2), 1.0)
    channel = np.where(rng.random(count) < 0.5, APP, WEB)
    keep = payer != payee
    return TransferBatch.of(payer, payee, amount, ts, channel).take(np.flatnonzero(keep))


def _time_ordered(tx: TransferBatch, rng: np.random.Generator) -> TransferBatch:
    """Sort by time, ties in random order, so transfer ids reveal nothing about how rows arose."""
    return tx.take(_time_order(tx, rng))


def _time_order(tx: TransferBatch, rng: np.random.Generator) -> IntArray:
    """The permutation ``_time_ordered`` applies."""
    # Timestamps fit in 32 bits; random low bits break ties within a second.
    key = (tx.ts << 32) | rng.integers(0, 1 << 32, len(tx), dtype=np.int64)
    return np.argsort(key)


@dataclass(frozen=True)
class _Labels:
    account: IntArray
    #: 1 fraud, 0 legit.
    value: Int8Array
    #: Index into ``LABEL_SOURCES``.
    source: Int8Array
    observed: IntArray


def _labels(
    pop: _Population, fraud: BoolArray, fraud_tx: TransferBatch, rng: np.random.Generator
) -> _Labels:
    """Confirmed outcomes for ~30% of accounts; investigations over-sample fraud.

    A few investigated fraudsters were cleared by mistake (3% of labelled fraud reads legit),
    as happens with real case outcomes; no legitimate account is labelled fraud. Outcomes are
    observed after the account's planted fraud, so a time split cannot see them early.
    """
    n = len(fraud)
    n_fraud = int(fraud.sum())
    p_legit = (0.30 * n - 0.55 * n_fraud) / (n - n_fraud)
    chosen = np.flatnonzero(rng.random(n) < np.where(fraud, 0.55, p_legit))
    is_fraud = fraud[chosen] & (rng.random(len(chosen)) >= 0.03)
    value = is_fraud.astype(np.int8)
    source = np.where(
        is_fraud,
        rng.choice([0, 1], len(chosen), p=[0.6, 0.4]),
        rng.choice([0, 2], len(chosen), p=[0.3, 0.7]),
    ).astype(np.int8)
    last_fraud = np.zeros(n, dtype=np.int64)
    np.maximum.at(last_fraud, fraud_tx.src, fraud_tx.ts)
    np.maximum.at(last_fraud, fraud_tx.dst, fraud_tx.ts)
    last_fraud[~fraud] = 0
    lo = np.maximum(pop.created[chosen] + 14 * DAY, WINDOW_START + 30 * DAY)
    lo = np.maximum(lo, last_fraud[chosen])
    observed = lo + (rng.random(len(chosen)) * (WINDOW_END - lo)).astype(np.int64)
    return _Labels(chosen, value, source, observed)


def _write_accounts(path: Path, ids: Any, pop: _Population, features: dict[str, Any]) -> None:
    region = pop.region.astype(np.int8)
    wr.write_csv(
        path,
        ACCOUNT_COLUMNS,
        len(ids),
        lambda s: (
            ids[s],
            wr.iso_strings(pop.created[s]),
            *(features[f][s] for f in FEATURES),
            wr.categories(region[s], REGIONS),
        ),
    )


def _write_transfers(path: Path, ids: Any, tx: TransferBatch) -> None:
    width = max(9, len(str(len(tx))))
    wr.write_csv(
        path,
        TRANSFER_COLUMNS,
        len(tx),
        lambda s: (
            wr.id_strings("T", np.arange(s.start, s.stop), width),
            ids.take(tx.src[s]),
            ids.take(tx.dst[s]),
            wr.cents(tx.amount[s]),
            wr.iso_strings(tx.ts[s]),
            wr.categories(np.zeros(s.stop - s.start, np.int8), ("EUR",)),
            wr.categories(tx.channel[s], CHANNELS),
        ),
    )


def _write_links(path: Path, ids: Any, links: LinkBatch) -> None:
    wr.write_csv(
        path,
        LINK_COLUMNS,
        len(links),
        lambda s: (
            ids.take(links.a[s]),
            ids.take(links.b[s]),
            wr.categories(links.kind[s], LINK_TYPES),
            wr.iso_strings(links.since[s]),
        ),
    )


def _write_labels(path: Path, ids: Any, labels: _Labels) -> None:
    wr.write_csv(
        path,
        LABEL_COLUMNS,
        len(labels.account),
        lambda s: (
            ids.take(labels.account[s]),
            wr.categories(labels.value[s], ("legit", "fraud")),
            wr.categories(labels.source[s], LABEL_SOURCES),
            wr.iso_strings(labels.observed[s]),
        ),
    )


def _write_transfer_labels(
    path: Path, seed: int, tx: TransferBatch, fraud_rows: IntArray, width: int
) -> None:
    """Outcomes of some transfers, as a platform has them: about half of the fraudulent ones
    come back (a chargeback or the victim's report, days to weeks later) and a few percent of
    the legitimate ones were confirmed by a review. Drawn from a generator of its own, so
    every other file stays byte-identical to what the seed gave before this file existed."""
    rng = np.random.default_rng([seed, 13])
    fraud = np.zeros(len(tx), dtype=bool)
    fraud[fraud_rows] = True
    chosen = np.flatnonzero(rng.random(len(tx)) < np.where(fraud, 0.5, 0.03))
    is_fraud = fraud[chosen]
    source = np.where(is_fraud, rng.choice([0, 1], len(chosen), p=[0.7, 0.3]), 2).astype(np.int8)
    delay = np.where(is_fraud, rng.uniform(1, 30, len(chosen)), rng.uniform(0.1, 3, len(chosen)))
    observed = tx.ts[chosen] + (delay * DAY).astype(np.int64)
    wr.write_csv(
        path,
        TRANSFER_LABEL_COLUMNS,
        len(chosen),
        lambda s: (
            wr.id_strings("T", chosen[s], width),
            wr.categories(is_fraud[s].astype(np.int8), ("legit", "fraud")),
            wr.categories(source[s], TRANSFER_LABEL_SOURCES),
            wr.iso_strings(observed[s]),
        ),
    )


def _write_ground_truth(
    path: Path, seed: int, ids: Any, plan: fr.FraudPlan, fraud_rows: IntArray, tx_width: int
) -> None:
    def names(index: IntArray) -> list[str]:
        return [str(x) for x in ids.take(np.sort(index)).to_pylist()]

    truth = {
        "seed": seed,
        "accounts": len(ids),
        "fraud_accounts": names(np.flatnonzero(plan.fraud)),
        "rings": [
            {"ring_id": f"R{i + 1:04d}", "kind": ring.kind, "members": names(ring.members)}
            for i, ring in enumerate(plan.rings)
        ],
        "fraud_transfers": [str(x) for x in wr.id_strings("T", fraud_rows, tx_width).to_pylist()],
    }
    path.write_text(json.dumps(truth, indent=1) + "\n", encoding="utf-8")
