"""Planted fraud: who the fraudsters are, how their rings are built and what they do.

Rings are visited in a Python loop (about two rings per thousand accounts), but the work
inside each ring is on arrays, so no loop runs per transfer.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from creditgraph.domain import FloatArray, IntArray, RingKind
from creditgraph.synth.sampling import (
    APP,
    CARD,
    DAY,
    FRIEND,
    HOUR,
    SHARES_ADDRESS,
    SHARES_DEVICE,
    WEB,
    BoolArray,
    LinkBatch,
    TransferBatch,
    all_pairs,
)

#: Share of accounts that are fraudulent (rings plus lone fraudsters).
FRAUD_RATE = 0.02
#: Share of fraud accounts acting alone rather than in a ring.
LONE_SHARE = 0.08
MIN_RING = 4
RING_KINDS: tuple[RingKind, ...] = (
    "cycle",
    "mule_fan_in",
    "mule_fan_out",
    "shared_identity",
    "collusion",
)
#: How the ring budget is spread over kinds (by rings, not members).
KIND_WEIGHTS = np.array([0.18, 0.2, 0.2, 0.22, 0.2])
MAX_SIZE: dict[RingKind, int] = {
    "cycle": 8,
    "mule_fan_in": 30,
    "mule_fan_out": 30,
    "shared_identity": 15,
    "collusion": 15,
}
#: Share of a ring's members recruited from one home region; rings are local but not closed.
LOCAL_SHARE = 0.7


@dataclass(frozen=True)
class PlannedRing:
    """A ring's members in role order (see ``ring_activity``) and when it was set up."""

    kind: RingKind
    members: IntArray
    birth: int


@dataclass(frozen=True)
class FraudPlan:
    """All planted fraud: rings, lone fraudsters, and the union as a mask."""

    rings: list[PlannedRing]
    lone: IntArray
    fraud: BoolArray


def _ring_size(kind: RingKind, rng: np.random.Generator) -> int:
    if kind == "cycle":
        return int(rng.integers(MIN_RING, MAX_SIZE[kind] + 1))
    mean_extra = {"mule_fan_in": 8, "mule_fan_out": 7, "shared_identity": 4, "collusion": 5}[kind]
    return min(MAX_SIZE[kind], MIN_RING + int(rng.poisson(mean_extra)))


def _ring_kinds_and_sizes(budget: int, rng: np.random.Generator) -> list[tuple[RingKind, int]]:
    """Kinds and sizes summing to ``budget``; one ring of every kind comes first."""
    sizes = [_ring_size(k, rng) for k in RING_KINDS]
    # Small graphs: shrink the largest first rings until they fit, keeping every kind.
    while sum(sizes) > budget:
        sizes[sizes.index(max(sizes))] -= 1
    plan: list[tuple[RingKind, int]] = list(zip(RING_KINDS, sizes, strict=True))
    left = budget - sum(sizes)
    while left >= MIN_RING:
        kind = RING_KINDS[int(rng.choice(len(RING_KINDS), p=KIND_WEIGHTS))]
        size = min(_ring_size(kind, rng), left)
        if left - size < MIN_RING:
            # Fold a remainder too small for a ring into this one, within the kind's cap.
            size = min(left, MAX_SIZE[kind])
        plan.append((kind, size))
        left -= size
    return plan


def fraud_count(n_accounts: int) -> tuple[int, int]:
    """(fraud accounts, lone fraudsters): about ``FRAUD_RATE``, never fewer than one ring each."""
    target = round(FRAUD_RATE * n_accounts)
    lone = max(1, round(LONE_SHARE * target))
    return max(target, MIN_RING * len(RING_KINDS) + lone), lone


def plan_fraud(
    region: IntArray, eligible: BoolArray, start: int, end: int, rng: np.random.Generator
) -> FraudPlan:
    """Pick fraud accounts among ``eligible`` ones and group most of them into rings.

    Half the eligible accounts, shuffled and grouped by region, feed the local part of each
    ring; the other half, shuffled, feeds the rest and the lone fraudsters, so the two never
    hand out the same account.
    """
    n = len(region)
    total, n_lone = fraud_count(n)
    candidates = rng.permutation(np.flatnonzero(eligible))
    half = len(candidates) // 2
    local = candidates[:half][np.argsort(region[candidates[:half]], kind="stable")]
    local_start = np.searchsorted(region[local], np.arange(region.max() + 2))
    local_next = local_start[:-1].copy()
    pool = candidates[half:]
    pool_next = 0

    rings: list[PlannedRing] = []
    sizes = _ring_kinds_and_sizes(total - n_lone, rng)
    # A remainder too small for another ring acts alone.
    n_lone = total - sum(size for _, size in sizes)
    for kind, size in sizes:
        home = int(region[local[rng.integers(len(local))]])
        n_local = min(round(LOCAL_SHARE * size), int(local_start[home + 1] - local_next[home]))
        near = local[local_next[home] : local_next[home] + n_local]
        local_next[home] += n_local
        far = pool[pool_next : pool_next + size - n_local]
        pool_next += size - n_local
        members = rng.permutation(np.concatenate([near, far]))
        birth = int(rng.integers(start - 240 * DAY, end - 100 * DAY))
        rings.append(PlannedRing(kind, members, birth))
    lone = pool[pool_next : pool_next + n_lone]

    fraud = np.zeros(n, dtype=bool)
    fraud[lone] = True
    for ring in rings:
        fraud[ring.members] = True
    return FraudPlan(rings, lone, fraud)


def set_ring_creation(plan: FraudPlan, created: IntArray, rng: np.random.Generator) -> None:
    """Overwrite ring members' ``created_at`` in place.

    Mules and synthetic identities are opened in a burst just before use; cycles and collusion
    groups often reuse established accounts.
    """
    for ring in plan.rings:
        k = len(ring.members)
        if ring.kind in ("mule_fan_in", "mule_fan_out", "shared_identity"):
            offset = rng.integers(0, 14 * DAY, k)
        else:
            offset = -(rng.exponential(200 * DAY, k)).astype(np.int64)
        created[ring.members] = ring.birth + offset


@dataclass(frozen=True)
class Counterparties:
    """Legitimate accounts fraud touches: merchants (cash-out) and victims (funding)."""

    merchants: IntArray
    victims: IntArray


def _uniform(lo: float, hi: float, size: int, rng: np.random.Generator) -> IntArray:
    return (lo + rng.random(size) * (hi - lo)).astype(np.int64)


def _lognormal(median: float, sigma: float, size: int, rng: np.random.Generator) -> FloatArray:
    return np.round(rng.lognormal(np.log(median), sigma, size), 2)


def _cycle(
    m: IntArray, t0: int, t1: int, cp: Counterparties, rng: np.random.Generator
) -> TransferBatch:
    """Round-tripping: each round passes a similar, slowly shrinking amount around the cycle."""
    k = len(m)
    rounds = int(rng.integers(3, 13))
    first = rng.integers(0, k, rounds)[:, None]
    hop = np.arange(k)[None, :]
    src = m[(first + hop) % k]
    dst = m[(first + hop + 1) % k]
    base = rng.lognormal(np.log(4_000), 0.7, rounds)[:, None]
    amount = np.round(base * np.cumprod(1 - rng.uniform(0.003, 0.02, (rounds, k)), axis=1), 2)
    # Capped so a round always fits in the ten days left before the activity ends.
    delay = 10 * 60 + np.minimum(rng.exponential(6 * HOUR, (rounds, k)), DAY)
    ts = _uniform(t0, t1 - 10 * DAY, rounds, rng)[:, None] + np.cumsum(delay, axis=1)
    channel = rng.choice([APP, WEB], (rounds, k))
    return TransferBatch.of(src.ravel(), dst.ravel(), amount.ravel(), ts.ravel(), channel.ravel())


def _waves(count: int, width: int, p: float, rng: np.random.Generator) -> tuple[IntArray, IntArray]:
    """(wave, participant) pairs: each participant joins each wave with probability ``p``."""
    joined = rng.random((count, width)) < p
    joined[np.arange(count), rng.integers(0, width, count)] = True
    wave, who = np.nonzero(joined)
    return wave.astype(np.int64), who.astype(np.int64)


def _mule_fan_in(
    m: IntArray, t0: int, t1: int, cp: Counterparties, rng: np.random.Generator
) -> TransferBatch:
    """Feeders (and some real victims) pay one mule, who forwards within hours to a cash-out."""
    mule, cash, feeders = m[0], m[1], m[2:]
    n_waves = int(rng.integers(2, 7))
    wave_ts = _uniform(t0, t1 - 3 * DAY, n_waves, rng)
    wave, who = _waves(n_waves, len(feeders), 0.75, rng)
    in_ts = wave_ts[wave] + _uniform(0, 36 * HOUR, len(wave), rng)
    in_amount = _lognormal(900, 0.5, len(wave), rng)
    received = np.bincount(wave, weights=in_amount, minlength=n_waves)
    last_in = np.zeros(n_waves, dtype=np.int64)
    np.maximum.at(last_in, wave, in_ts)

    splits = rng.integers(1, 4, n_waves)
    rep = np.repeat(np.arange(n_waves), splits)
    out_amount = np.round(received[rep] * rng.uniform(0.9, 0.97, len(rep)) / splits[rep], 2)
    out_ts = last_in[rep] + _uniform(20 * 60, 6 * HOUR, len(rep), rng)
    cash_ts = out_ts.max() + _uniform(HOUR, DAY, 1, rng)

    n_victims = max(1, int(rng.poisson(len(feeders) / 2)))
    victims = rng.choice(cp.victims, n_victims)
    return TransferBatch.concat(
        [
            TransferBatch.of(
                feeders[who], mule, in_amount, in_ts, rng.choice([APP, WEB], len(who))
            ),
            TransferBatch.of(mule, cash, out_amount, out_ts, APP),
            TransferBatch.of(
                cash, rng.choice(cp.merchants), np.round(0.95 * out_amount.sum(), 2), cash_ts, WEB
            ),
            TransferBatch.of(
                victims,
                mule,
                _lognormal(300, 0.8, n_victims, rng),
                _uniform(t0, t1, n_victims, rng),
                APP,
            ),
        ]
    )


def _mule_fan_out(
    m: IntArray, t0: int, t1: int, cp: Counterparties, rng: np.random.Generator
) -> TransferBatch:
    """A funded source splits money over many mules just under 1,000 EUR; mules cash out fast."""
    source, mules = m[0], m[1:]
    n_waves = int(rng.integers(2, 6))
    wave_ts = _uniform(t0 + 2 * DAY, t1 - 2 * DAY, n_waves, rng)
    wave, who = _waves(n_waves, len(mules), 0.8, rng)
    split_ts = wave_ts[wave] + _uniform(0, 12 * HOUR, len(wave), rng)
    split_amount = np.round(rng.uniform(700, 999.99, len(wave)), 2)
    funding = np.bincount(wave, weights=split_amount, minlength=n_waves)
    exits = rng.choice(cp.merchants, 2)
    return TransferBatch.concat(
        [
            TransferBatch.of(
                rng.choice(cp.victims, n_waves),
                source,
                np.round(funding * rng.uniform(1.0, 1.1, n_waves), 2),
                wave_ts - _uniform(HOUR, 2 * DAY, n_waves, rng),
                WEB,
            ),
            TransferBatch.of(source, mules[who], split_amount, split_ts, APP),
            TransferBatch.of(
                mules[who],
                rng.choice(exits, len(who)),
                np.round(split_amount * rng.uniform(0.85, 0.97, len(who)), 2),
                split_ts + _uniform(10 * 60, 4 * HOUR, len(who), rng),
                rng.choice([APP, CARD], len(who)),
            ),
        ]
    )


def _shared_identity(
    m: IntArray, t0: int, t1: int, cp: Counterparties, rng: np.random.Generator
) -> TransferBatch:
    """Synthetic identities: a quiet build-up among themselves, then a bust-out burst."""
    collector, k = m[0], len(m)
    mid = (t0 + t1) // 2
    n_build = 2 * k
    a = rng.integers(0, k, n_build)
    b = (a + rng.integers(1, k, n_build)) % k
    build = TransferBatch.of(
        m[a], m[b], _lognormal(40, 0.6, n_build, rng), _uniform(t0, mid, n_build, rng), APP
    )
    burst = int(rng.integers(mid, t1 - 3 * DAY))
    buys = rng.integers(1, 5, k)
    buyer = np.repeat(m, buys)
    n_buys = len(buyer)
    return TransferBatch.concat(
        [
            build,
            TransferBatch.of(
                buyer,
                rng.choice(cp.merchants, n_buys),
                _lognormal(700, 0.4, n_buys, rng),
                burst + _uniform(0, 3 * DAY, n_buys, rng),
                rng.choice([CARD, WEB], n_buys),
            ),
            TransferBatch.of(
                m[1:],
                collector,
                _lognormal(500, 0.5, k - 1, rng),
                burst + _uniform(0, 2 * DAY, k - 1, rng),
                APP,
            ),
        ]
    )


def _collusion(
    m: IntArray, t0: int, t1: int, cp: Counterparties, rng: np.random.Generator
) -> TransferBatch:
    """Dense mutual transfers of similar amounts (fake trades that inflate each other's record)."""
    k = len(m)
    i, j = np.nonzero(~np.eye(k, dtype=bool) & (rng.random((k, k)) < rng.uniform(0.5, 0.9)))
    times = 1 + rng.poisson(2, len(i))
    src, dst = np.repeat(m[i], times), np.repeat(m[j], times)
    n_tx = len(src)
    amount = np.round(rng.lognormal(np.log(250), 0.5) * rng.uniform(0.85, 1.15, n_tx), 2)
    return TransferBatch.of(src, dst, amount, _uniform(t0, t1, n_tx, rng), APP)


_ACTIVITY: dict[
    RingKind, Callable[[IntArray, int, int, Counterparties, np.random.Generator], TransferBatch]
] = {
    "cycle": _cycle,
    "mule_fan_in": _mule_fan_in,
    "mule_fan_out": _mule_fan_out,
    "shared_identity": _shared_identity,
    "collusion": _collusion,
}


def _ring_links(
    ring: PlannedRing, since: int, end: int, rng: np.random.Generator
) -> list[LinkBatch]:
    """Relations inside a ring: shared devices / addresses, and some friendships for cover."""
    m, k = ring.members, len(ring.members)
    out: list[LinkBatch] = []

    def add(a: IntArray, b: IntArray, kind: int) -> None:
        when = _uniform(since, min(since + 20 * DAY, end), len(a), rng)
        out.append(LinkBatch.of(a, b, kind, when))

    if ring.kind == "shared_identity":
        # A few phones each run a handful of the identities; some identities use two phones.
        n_dev = max(1, k // 3)
        device = rng.permutation(k) % n_dev
        second = rng.random(k) < 0.3
        users = np.concatenate([np.arange(k), np.flatnonzero(second)])
        devices = np.concatenate([device, rng.integers(0, n_dev, int(second.sum()))])
        for d in range(n_dev):
            add(*all_pairs(m[np.unique(users[devices == d])]), SHARES_DEVICE)
        add(
            *all_pairs(m[rng.choice(k, int(rng.integers(2, min(k, 4) + 1)), replace=False)]),
            SHARES_ADDRESS,
        )
    elif ring.kind == "collusion":
        a, b = all_pairs(m)
        keep = rng.random(len(a)) < 0.7
        add(a[keep], b[keep], FRIEND)
    elif ring.kind == "cycle":
        keep = rng.random(k) < 0.5
        add(m[keep], np.roll(m, -1)[keep], FRIEND)
    elif rng.random() < 0.5:
        # The mule herder registered a few of the accounts on one phone.
        add(
            *all_pairs(m[rng.choice(k, min(k, int(rng.integers(2, 4))), replace=False)]),
            SHARES_DEVICE,
        )
    return out


def ring_activity(
    plan: FraudPlan,
    created: IntArray,
    cp: Counterparties,
    end: int,
    window_start: int,
    rng: np.random.Generator,
) -> tuple[TransferBatch, LinkBatch]:
    """Transfers and links of every ring and lone fraudster.

    Roles by position in ``members``: cycle — cycle order; mule_fan_in — mule, cash-out,
    feeders; mule_fan_out — source, mules; shared_identity — collector first.
    Activity starts after the last member exists and lasts 30-150 days inside the window.
    """
    transfers: list[TransferBatch] = []
    links: list[LinkBatch] = []
    for ring in plan.rings:
        ready = int(created[ring.members].max())
        t0 = max(ready + int(rng.integers(DAY, 10 * DAY)), window_start)
        t1 = min(t0 + int(rng.integers(30 * DAY, 150 * DAY)), end - HOUR)
        transfers.append(_ACTIVITY[ring.kind](ring.members, t0, t1, cp, rng))
        links.extend(_ring_links(ring, ready + HOUR, end - DAY, rng))
    transfers.append(_lone(plan.lone, created, cp, end, window_start, rng))
    return TransferBatch.concat(transfers), LinkBatch.concat(links)


def _lone(
    lone: IntArray,
    created: IntArray,
    cp: Counterparties,
    end: int,
    window_start: int,
    rng: np.random.Generator,
) -> TransferBatch:
    """Lone scammers: a few victims pay them within two weeks; they cash out a day later."""
    t0 = np.maximum(created[lone] + DAY, window_start)
    t1 = np.minimum(t0 + 60 * DAY, end - HOUR)
    first = t0 + (rng.random(len(lone)) * (t1 - t0 - 16 * DAY)).astype(np.int64)
    per = rng.integers(2, 7, len(lone))
    owner = np.repeat(np.arange(len(lone)), per)
    in_ts = first[owner] + _uniform(0, 14 * DAY, len(owner), rng)
    in_amount = _lognormal(400, 0.7, len(owner), rng)
    total = np.bincount(owner, weights=in_amount, minlength=len(lone))
    last = np.zeros(len(lone), dtype=np.int64)
    np.maximum.at(last, owner, in_ts)
    return TransferBatch.concat(
        [
            TransferBatch.of(
                rng.choice(cp.victims, len(owner)), lone[owner], in_amount, in_ts, APP
            ),
            TransferBatch.of(
                lone,
                rng.choice(cp.merchants, len(lone)),
                np.round(0.9 * total, 2),
                last + _uniform(HOUR, DAY, len(lone), rng),
                WEB,
            ),
        ]
    )
