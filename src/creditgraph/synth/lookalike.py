"""A harder synthetic world for ring detection: hidden fraud among legitimate look-alikes.

The default generator (``generator.py``) plants rings that behave the way our detector was
first written for. This module writes worlds in the same CSV contract where that is not
enough: a fixed number of planted rings of four kinds (money cycles, mule fan-in, shared
identities, collusion), of which half have no labelled member and half are built from bought,
aged accounts that look ordinary, hidden among many legitimate groups that look like rings:

* **family**: 3-7 people sharing devices, addresses and phones, long-standing friends paying
  each other small amounts and round pocket money all year;
* **roommates**: 3-5 people at one address splitting the rent in turn (one pays the landlord
  a round sum, the others pay that one their share);
* **business**: a shop paid once by many one-off customers that passes most of the money on
  to its owner and suppliers, a few days later;
* **club**: 5-10 friends paying a treasurer round sums in monthly rounds, the pot going to one
  member in turn;
* **night_owls**: 4-8 long-standing friends paying each other, mostly round sums, at night.

The fraud hides: mules are paid *once* by each scam victim and forward the money within hours,
with their ordinary background activity as camouflage; aged rings reuse accounts that were
opened years earlier and keep their old friends; a labelled ring has only some members
labelled. ``WORLDS`` holds two differently parameterised worlds: ``tuning`` (for choosing
thresholds and models) and ``heldout`` (other sizes, amounts, timings, label rates and
look-alike mix, for checking only). The background network is the default generator's.

``ground_truth.json`` lists the planted rings (with ``labelled`` and ``aged`` flags) and the
look-alike groups (``lookalikes``), so a benchmark can count look-alikes wrongly flagged.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from creditgraph.domain import IntArray, RingKind
from creditgraph.errors import InvalidInput
from creditgraph.synth import fraud as fr
from creditgraph.synth import generator as gen
from creditgraph.synth import writer as wr
from creditgraph.synth.sampling import (
    APP,
    CARD,
    DAY,
    HOUR,
    WEB,
    LinkBatch,
    TransferBatch,
    all_pairs,
)

#: Link types of these worlds (one more than the default generator: a shared phone number).
LINK_NAMES: tuple[str, ...] = ("FRIEND", "SHARES_DEVICE", "SHARES_ADDRESS", "SHARES_PHONE")
FRIEND, DEVICE, ADDRESS, PHONE = 0, 1, 2, 3
RING_KINDS: tuple[RingKind, ...] = ("cycle", "mule_fan_in", "shared_identity", "collusion")
LOOKALIKE_KINDS: tuple[str, ...] = ("family", "roommates", "business", "club", "night_owls")
START, END = gen.WINDOW_START, gen.WINDOW_END
MIN_ACCOUNTS = 20_000


@dataclass(frozen=True)
class World:
    """Parameters of one world; ranges are (low, high) drawn uniformly per ring or group."""

    name: str
    rings_per_kind: int = 15
    lookalikes: int = 1300
    lookalike_mix: tuple[float, ...] = (0.3, 0.2, 0.2, 0.15, 0.15)
    unlabelled_share: float = 0.5
    aged_share: float = 0.5
    #: Share of a labelled ring's members that carry a fraud label (at least one).
    ring_label_share: float = 0.4
    legit_label_share: float = 0.3
    lone_fraud: int = 200
    ring_size: tuple[int, int] = (4, 9)
    #: Money scale of ring activity (1.0: cycles around 3,000, victims around 600).
    money: float = 1.0
    mules: tuple[int, int] = (2, 5)
    victims_per_mule: tuple[int, int] = (5, 15)
    dwell_hours: tuple[float, float] = (0.5, 12.0)
    cycle_rounds: tuple[int, int] = (2, 6)
    cycle_decay: tuple[float, float] = (0.01, 0.04)
    activity_days: tuple[int, int] = (5, 45)
    night_share: float = 0.8
    business_customers: tuple[int, int] = (15, 60)
    extra: dict[str, Any] = field(default_factory=dict)


WORLDS: dict[str, World] = {
    "tuning": World("tuning"),
    "heldout": World(
        "heldout",
        lookalike_mix=(0.2, 0.15, 0.3, 0.2, 0.15),
        ring_label_share=0.3,
        legit_label_share=0.25,
        lone_fraud=300,
        ring_size=(3, 12),
        money=1.8,
        mules=(1, 6),
        victims_per_mule=(4, 25),
        dwell_hours=(0.2, 30.0),
        cycle_rounds=(2, 9),
        cycle_decay=(0.003, 0.06),
        activity_days=(3, 70),
        night_share=0.65,
        business_customers=(8, 90),
    ),
}


@dataclass
class _Out:
    tx: list[TransferBatch] = field(default_factory=list)
    links: list[LinkBatch] = field(default_factory=list)

    def pay(self, src: Any, dst: Any, amount: Any, ts: Any, channel: Any = APP) -> None:
        # At least 1-d: a single payment of scalars must still concatenate with the rest.
        one = np.atleast_1d
        self.tx.append(TransferBatch.of(one(src), dst, one(np.round(amount, 2)), one(ts), channel))

    def link(self, members: IntArray, kind: int, since: int) -> None:
        a, b = all_pairs(members)
        self.links.append(LinkBatch.of(a, b, kind, since))


def _span(world_days: tuple[int, int], ready: int, rng: np.random.Generator) -> tuple[int, int]:
    """An activity period of the world's length that starts after the members exist."""
    days = int(rng.integers(world_days[0], world_days[1] + 1))
    lo = max(ready, START + 20 * DAY)
    hi = max(lo + 1, END - (days + 5) * DAY)
    t0 = int(rng.integers(lo, hi))
    return t0, min(t0 + days * DAY, END - 2 * DAY)


def _night(ts: IntArray, rng: np.random.Generator) -> IntArray:
    """The same days, moved to 22:00-04:00."""
    hour = ((22 + rng.random(len(ts)) * 6) % 24 * HOUR).astype(np.int64)
    return np.asarray(ts - ts % DAY + hour, dtype=np.int64)


def _round(x: Any, unit: float) -> Any:
    return np.maximum(unit, np.round(np.asarray(x) / unit) * unit)


def generate_world(n_accounts: int, seed: int, out_dir: Path, world: str = "tuning") -> Path:
    """Write accounts, transfers, links, labels (CSV) and ground_truth.json into ``out_dir``."""
    if world not in WORLDS:
        raise InvalidInput(f"unknown world {world!r}; use one of {', '.join(WORLDS)}")
    if n_accounts < MIN_ACCOUNTS:
        raise InvalidInput(f"n_accounts must be at least {MIN_ACCOUNTS}, got {n_accounts}")
    w = WORLDS[world]
    rng = np.random.default_rng(seed)
    n = n_accounts
    community, n_comm, region, merchant = gen._structure(n, rng)
    person = rng.permutation(np.flatnonzero(~merchant))
    cursor = 0

    def take(k: int) -> IntArray:
        nonlocal cursor
        got = person[cursor : cursor + k]
        cursor += k
        if len(got) < k:
            raise InvalidInput(f"{n} accounts are too few for world {world!r}")
        return got

    # -- who: rings, lone fraudsters, look-alike groups ----------------------------------------
    kinds = [k for k in RING_KINDS for _ in range(w.rings_per_kind)]
    rings: list[fr.PlannedRing] = []
    for kind in kinds:
        size = int(rng.integers(w.ring_size[0], w.ring_size[1] + 1))
        if kind == "mule_fan_in":
            size = int(rng.integers(w.mules[0], w.mules[1] + 1)) + int(rng.integers(1, 3))
        rings.append(fr.PlannedRing(kind, take(max(3, size)), int(rng.integers(START, END))))
    aged = rng.permutation(len(rings)) < round(w.aged_share * len(rings))
    unlabelled = rng.permutation(len(rings)) < round(w.unlabelled_share * len(rings))
    lone = take(w.lone_fraud)
    fraud = np.zeros(n, dtype=bool)
    fraud[lone] = True
    for r in rings:
        fraud[r.members] = True
    plan = fr.FraudPlan(rings, lone, fraud)

    pop = gen._population(community, n_comm, region, merchant, plan, rng)
    created = pop.created
    old = START - (rng.uniform(400, 2500, n) * DAY).astype(np.int64)
    for r, is_aged in zip(rings, aged.tolist(), strict=True):
        t0 = START + int(rng.integers(30 * DAY, 250 * DAY))
        if is_aged:
            created[r.members] = old[r.members]
        else:
            created[r.members] = t0 + rng.integers(0, 14 * DAY, len(r.members))
    aged_member = np.zeros(n, dtype=bool)
    for r, is_aged in zip(rings, aged.tolist(), strict=True):
        aged_member[r.members] = is_aged
    # Bought aged accounts look ordinary; fresh fraud shows the weak profile half the time.
    looks = np.where(fraud & ~aged_member, rng.random(n) < 0.5, rng.random(n) < 0.03)
    pop = dataclasses.replace(pop, looks_fraud=looks & ~merchant)
    features = gen._features(pop, rng)

    old_person = person[cursor:][created[person[cursor:]] < START - 90 * DAY]
    shops = np.flatnonzero(merchant)
    out = _Out()
    lookalikes: list[tuple[str, IntArray]] = []
    mix = np.asarray(w.lookalike_mix) / np.sum(w.lookalike_mix)
    la_kinds = rng.choice(len(LOOKALIKE_KINDS), w.lookalikes, p=mix)
    pos = 0
    for code in la_kinds.tolist():
        kind = LOOKALIKE_KINDS[code]
        if pos + 12 > len(old_person):
            raise InvalidInput(f"{n} accounts are too few for world {world!r}")
        group, pos = _LOOKALIKES[kind](out, old_person, pos, shops, created, w, rng)
        lookalikes.append((kind, group))
    victims_pool = old_person[pos:]

    for r in rings:
        t0 = max(int(created[r.members].max()) + DAY, START + DAY)
        _RINGS[r.kind](out, r.members, t0, victims_pool, shops, w, rng)
    out.tx.append(fr._lone(lone, created, fr.Counterparties(shops, victims_pool), END, START, rng))

    friends = gen._friendships(pop, fraud, rng)
    families = gen._families(pop, rng)
    links = _canonical(LinkBatch.concat([friends, families, *out.links]), n)
    ring_tx = TransferBatch.concat(out.tx)
    keep = (ring_tx.ts >= START) & (ring_tx.ts < END) & (ring_tx.src != ring_tx.dst)
    ring_tx = ring_tx.take(np.flatnonzero(keep))
    legit = gen._legit_transfers(
        pop, links, max(0, gen.TRANSFERS_PER_ACCOUNT * n - len(ring_tx)), rng
    )
    transfers = gen._time_ordered(TransferBatch.concat([ring_tx, *legit]), rng)

    labelled_fraud: list[IntArray] = []
    for r, hide in zip(rings, unlabelled.tolist(), strict=True):
        if not hide:
            k = max(1, round(w.ring_label_share * len(r.members)))
            labelled_fraud.append(rng.choice(r.members, k, replace=False))
    lone_lab = lone[rng.random(len(lone)) < 0.5]
    legit_lab = np.flatnonzero(~fraud & ~merchant & (rng.random(n) < w.legit_label_share))
    fraud_lab = np.concatenate([*labelled_fraud, lone_lab])
    acc = np.concatenate([fraud_lab, legit_lab])
    value = np.concatenate([np.ones(len(fraud_lab)), np.zeros(len(legit_lab))]).astype(np.int8)
    source = np.where(value == 1, 0, 2).astype(np.int8)
    observed = np.full(len(acc), END - DAY, dtype=np.int64)
    labels = gen._Labels(acc, value, source, observed)

    out_dir.mkdir(parents=True, exist_ok=True)
    ids = wr.id_strings("A", np.arange(n), max(7, len(str(n))))
    gen._write_accounts(out_dir / "accounts.csv", ids, pop, features)
    gen._write_transfers(out_dir / "transfers.csv", ids, transfers)
    wr.write_csv(
        out_dir / "links.csv",
        gen.LINK_COLUMNS,
        len(links),
        lambda s: (
            ids.take(links.a[s]),
            ids.take(links.b[s]),
            wr.categories(links.kind[s], LINK_NAMES),
            wr.iso_strings(links.since[s]),
        ),
    )
    gen._write_labels(out_dir / "labels.csv", ids, labels)
    labelled_set = set(fraud_lab.tolist())

    def names(index: IntArray) -> list[str]:
        return [str(x) for x in ids.take(np.sort(index)).to_pylist()]

    truth = {
        "seed": seed,
        "world": world,
        "accounts": n,
        "fraud_accounts": names(np.flatnonzero(fraud)),
        "rings": [
            {
                "ring_id": f"R{i + 1:04d}",
                "kind": r.kind,
                "members": names(r.members),
                "labelled": bool(labelled_set & set(r.members.tolist())),
                "aged": bool(a),
            }
            for i, (r, a) in enumerate(zip(rings, aged.tolist(), strict=True))
        ],
        "lookalikes": [
            {"group_id": f"L{i + 1:05d}", "kind": k, "members": names(g)}
            for i, (k, g) in enumerate(lookalikes)
        ],
    }
    (out_dir / "ground_truth.json").write_text(json.dumps(truth, indent=1) + "\n", "utf-8")
    return out_dir


def _canonical(links: LinkBatch, n: int) -> LinkBatch:
    keep = links.a != links.b
    lo = np.minimum(links.a, links.b)[keep]
    hi = np.maximum(links.a, links.b)[keep]
    kind = links.kind[keep]
    key = (lo * n + hi) * len(LINK_NAMES) + kind
    _, first = np.unique(key, return_index=True)
    return LinkBatch(lo[first], hi[first], kind[first], links.since[keep][first])


# -- look-alikes ------------------------------------------------------------------------------
# Each takes members from ``pool[pos:]`` and returns (group members, new pos). Activity runs
# over months of the window, between long-standing accounts and friends.

_Args = tuple[_Out, IntArray, int, IntArray, IntArray, World, np.random.Generator]


def _months(rng: np.random.Generator, lo: int = 5, hi: int = 12) -> IntArray:
    k = int(rng.integers(lo, hi + 1))
    first = START + int(rng.integers(0, 30 * DAY))
    return np.asarray(first + np.arange(k) * 30 * DAY + rng.integers(0, 3 * DAY, k), np.int64)


def _daytime(ts: IntArray, rng: np.random.Generator) -> IntArray:
    hour = (rng.uniform(8, 21, len(ts)) * HOUR).astype(np.int64)
    return np.asarray(ts - ts % DAY + hour, dtype=np.int64)


def _tie_since(created: IntArray, m: IntArray, rng: np.random.Generator) -> int:
    return int(created[m].max()) + int(rng.integers(DAY, 200 * DAY))


def _family(
    out: _Out,
    pool: IntArray,
    pos: int,
    shops: IntArray,
    created: IntArray,
    w: World,
    rng: np.random.Generator,
) -> tuple[IntArray, int]:
    k = int(rng.integers(3, 8))
    m = pool[pos : pos + k]
    since = _tie_since(created, m, rng)
    out.link(m, FRIEND, since)
    out.link(m, ADDRESS, since)
    shared = m[rng.random(k) < 0.7]
    out.link(shared if len(shared) >= 2 else m, DEVICE, since)
    if rng.random() < 0.6:
        out.link(m, PHONE, since)
    n_tx = int(rng.integers(3 * k, 10 * k))
    a = rng.integers(0, k, n_tx)
    b = (a + rng.integers(1, k, n_tx)) % k
    ts = _daytime(rng.integers(START, END - DAY, n_tx), rng)
    out.pay(m[a], m[b], rng.lognormal(np.log(40), 0.9, n_tx), ts)
    # Pocket money: a parent pays the children the same round sum every month.
    for child in m[1:].tolist():
        months = _months(rng)
        out.pay(m[0], child, _round(rng.uniform(20, 150), 10), months)
    return m, pos + k


def _roommates(
    out: _Out,
    pool: IntArray,
    pos: int,
    shops: IntArray,
    created: IntArray,
    w: World,
    rng: np.random.Generator,
) -> tuple[IntArray, int]:
    k = int(rng.integers(3, 6))
    m = pool[pos : pos + k]
    landlord = pool[pos + k]
    since = _tie_since(created, m, rng)
    out.link(m, ADDRESS, since)
    if rng.random() < 0.6:
        out.link(m, FRIEND, since)
    rent = float(_round(rng.uniform(900, 2400), 50))
    share = float(_round(rent / k, 10))
    for i, t in enumerate(_months(rng, 6, 12).tolist()):
        payer = m[i % k]
        others = m[m != payer]
        out.pay(payer, landlord, rent, t, WEB)
        out.pay(others, payer, share, t + rng.integers(HOUR, 4 * DAY, len(others)))
    return m, pos + k + 1


def _business(
    out: _Out,
    pool: IntArray,
    pos: int,
    shops: IntArray,
    created: IntArray,
    w: World,
    rng: np.random.Generator,
) -> tuple[IntArray, int]:
    n_sup = int(rng.integers(1, 3))
    core = pool[pos : pos + 2 + n_sup]  # shop, owner, suppliers
    c = int(rng.integers(w.business_customers[0], w.business_customers[1] + 1))
    # Customers are anyone (they may belong to other groups too); only the core is the group.
    customers = rng.choice(pool, c, replace=False)
    shop, owner, suppliers = core[0], core[1], core[2:]
    # Mostly one-off customers, a few regulars.
    visits = np.where(rng.random(len(customers)) < 0.8, 1, rng.integers(2, 6, len(customers)))
    who = np.repeat(customers, visits)
    ts = _daytime(rng.integers(START, END - 10 * DAY, len(who)), rng)
    amount = rng.lognormal(np.log(60), 0.8, len(who))
    out.pay(who, shop, amount, ts, rng.choice([APP, CARD], len(who)))
    # Weekly payouts to the owner and suppliers, a few days after the takings.
    weeks = np.arange(START + 7 * DAY, END - DAY, 7 * DAY)
    week_sum = np.zeros(len(weeks))
    np.add.at(week_sum, np.clip(np.searchsorted(weeks, ts), 0, len(weeks) - 1), amount)
    paid = np.flatnonzero(week_sum > 0)
    to = np.concatenate([[owner], suppliers])[rng.integers(0, 1 + n_sup, len(paid))]
    out.pay(
        shop,
        to,
        week_sum[paid] * rng.uniform(0.7, 0.95, len(paid)),
        weeks[paid] + rng.integers(DAY, 4 * DAY, len(paid)),
        WEB,
    )
    since = _tie_since(created, core[:2], rng)
    out.link(core[:2], FRIEND, since)
    return core, pos + 2 + n_sup


def _club(
    out: _Out,
    pool: IntArray,
    pos: int,
    shops: IntArray,
    created: IntArray,
    w: World,
    rng: np.random.Generator,
) -> tuple[IntArray, int]:
    k = int(rng.integers(5, 11))
    m = pool[pos : pos + k]
    since = _tie_since(created, m, rng)
    out.link(m, FRIEND, since)
    treasurer, rest = m[0], m[1:]
    stake = float(_round(rng.choice([50, 100, 200, 250, 500]), 50))
    for i, t in enumerate(_months(rng, 6, 12).tolist()):
        out.pay(rest, treasurer, stake, t + rng.integers(0, 3 * DAY, len(rest)), APP)
        winner = m[(i + 1) % k]
        if winner != treasurer:
            out.pay(treasurer, winner, stake * (k - 1), t + 5 * DAY, APP)
    return m, pos + k


def _night_owls(
    out: _Out,
    pool: IntArray,
    pos: int,
    shops: IntArray,
    created: IntArray,
    w: World,
    rng: np.random.Generator,
) -> tuple[IntArray, int]:
    k = int(rng.integers(4, 9))
    m = pool[pos : pos + k]
    since = _tie_since(created, m, rng)
    out.link(m, FRIEND, since)
    n_tx = int(rng.integers(4 * k, 12 * k))
    a = rng.integers(0, k, n_tx)
    b = (a + rng.integers(1, k, n_tx)) % k
    ts = _night(rng.integers(START, END - DAY, n_tx), rng)
    amount = rng.lognormal(np.log(30), 0.8, n_tx)
    amount = np.where(rng.random(n_tx) < 0.6, _round(amount, 10), amount)
    out.pay(m[a], m[b], amount, ts)
    return m, pos + k


_LOOKALIKES = {
    "family": _family,
    "roommates": _roommates,
    "business": _business,
    "club": _club,
    "night_owls": _night_owls,
}


# -- hidden fraud -----------------------------------------------------------------------------


def _cover(out: _Out, m: IntArray, t0: int, rng: np.random.Generator) -> None:
    """A few fresh friendships inside the ring (cover), made just before the activity."""
    keep = rng.random(len(m)) < 0.4
    if keep.sum() >= 2:
        out.link(m[keep], FRIEND, t0 - int(rng.integers(DAY, 20 * DAY)))


def _cycle_ring(
    out: _Out,
    m: IntArray,
    ready: int,
    victims: IntArray,
    shops: IntArray,
    w: World,
    rng: np.random.Generator,
) -> None:
    k = len(m)
    t0, t1 = _span(w.activity_days, ready, rng)
    rounds = int(rng.integers(w.cycle_rounds[0], w.cycle_rounds[1] + 1))
    base = rng.lognormal(np.log(3000 * w.money), 0.6, rounds)[:, None]
    decay = rng.uniform(*w.cycle_decay)
    amount = base * (1 - decay) ** np.arange(k)[None, :]
    hop = np.arange(k)[None, :]
    src, dst = m[hop % k], m[(hop + 1) % k]
    delay = np.cumsum(rng.uniform(10 * 60, 8 * HOUR, (rounds, k)), axis=1)
    starts = np.sort(rng.integers(t0, max(t0 + DAY, t1), rounds))[:, None]
    out.pay(
        np.broadcast_to(src, (rounds, k)).ravel(),
        np.broadcast_to(dst, (rounds, k)).ravel(),
        amount.ravel(),
        (starts + delay).astype(np.int64).ravel(),
    )
    # The money enters from outside and leaves again.
    out.pay(rng.choice(victims), m[0], base[0, 0] * 1.02, starts[0, 0] - HOUR, WEB)
    _cover(out, m, t0, rng)


def _mule_ring(
    out: _Out,
    m: IntArray,
    ready: int,
    victims: IntArray,
    shops: IntArray,
    w: World,
    rng: np.random.Generator,
) -> None:
    n_col = 1 if len(m) < 4 else int(rng.integers(1, 3))
    collectors, mules = m[:n_col], m[n_col:]
    t0, t1 = _span(w.activity_days, ready, rng)
    exits = rng.choice(shops, 2)
    for mule in mules.tolist():
        v = int(rng.integers(w.victims_per_mule[0], w.victims_per_mule[1] + 1))
        payers = rng.choice(victims, v, replace=False)
        ts = rng.integers(t0, max(t0 + DAY, t1), v)
        amount = rng.lognormal(np.log(600 * w.money), 0.6, v)
        out.pay(payers, mule, amount, ts, rng.choice([APP, WEB], v))
        dwell = (rng.uniform(*w.dwell_hours, v) * HOUR).astype(np.int64)
        to = rng.choice(collectors, v)
        out.pay(mule, to, amount * rng.uniform(0.85, 0.98, v), ts + dwell, APP)
    # Collectors cash out to an exit (a merchant: crypto, gift cards) within a day or two.
    for c in collectors.tolist():
        ts = rng.integers(t0 + DAY, max(t0 + 2 * DAY, t1 + DAY), 3)
        out.pay(c, rng.choice(exits, 3), rng.lognormal(np.log(2000 * w.money), 0.5, 3), ts, WEB)
    if rng.random() < 0.5:
        out.link(m[rng.choice(len(m), min(len(m), 2), replace=False)], DEVICE, t0 - DAY)


def _identity_ring(
    out: _Out,
    m: IntArray,
    ready: int,
    victims: IntArray,
    shops: IntArray,
    w: World,
    rng: np.random.Generator,
) -> None:
    k = len(m)
    t0, t1 = _span(w.activity_days, ready, rng)
    n_dev = max(1, k // 3)
    device = rng.permutation(k) % n_dev
    for d in range(n_dev):
        grp = m[device == d]
        if len(grp) >= 2:
            out.link(grp, DEVICE if rng.random() < 0.6 else PHONE, t0 - DAY)
    # One member per device group also shares the operator's phone or address.
    bridge = m[np.unique(device, return_index=True)[1]]
    if len(bridge) >= 2:
        out.link(bridge, ADDRESS if rng.random() < 0.5 else PHONE, t0 - DAY)
    n_build = 2 * k
    a = rng.integers(0, k, n_build)
    b = (a + rng.integers(1, k, n_build)) % k
    out.pay(m[a], m[b], rng.lognormal(np.log(40), 0.6, n_build), rng.integers(t0, t1, n_build))
    burst = int(rng.integers(t0, t1))
    buys = np.repeat(m, rng.integers(1, 5, k))
    out.pay(
        buys,
        rng.choice(shops, len(buys)),
        rng.lognormal(np.log(700 * w.money), 0.4, len(buys)),
        burst + rng.integers(0, 3 * DAY, len(buys)),
        rng.choice([CARD, WEB], len(buys)),
    )
    out.pay(
        m[1:],
        m[0],
        rng.lognormal(np.log(500 * w.money), 0.5, k - 1),
        burst + rng.integers(0, 2 * DAY, k - 1),
    )


def _collusion_ring(
    out: _Out,
    m: IntArray,
    ready: int,
    victims: IntArray,
    shops: IntArray,
    w: World,
    rng: np.random.Generator,
) -> None:
    k = len(m)
    t0, t1 = _span(w.activity_days, ready, rng)
    i, j = np.nonzero(~np.eye(k, dtype=bool) & (rng.random((k, k)) < rng.uniform(0.45, 0.85)))
    times = 1 + rng.poisson(2, len(i))
    src, dst = np.repeat(m[i], times), np.repeat(m[j], times)
    ts = rng.integers(t0, max(t0 + DAY, t1), len(src))
    night = rng.random(len(ts)) < w.night_share
    ts = np.where(night, _night(ts, rng), ts)
    unit = float(rng.choice([50, 100]))
    amount = _round(rng.lognormal(np.log(300 * w.money), 0.5, len(src)), unit)
    out.pay(src, dst, amount, ts)
    _cover(out, m, t0, rng)


_RINGS = {
    "cycle": _cycle_ring,
    "mule_fan_in": _mule_ring,
    "shared_identity": _identity_ring,
    "collusion": _collusion_ring,
}
