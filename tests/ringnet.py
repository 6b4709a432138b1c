"""A small hand-built payment network with one planted group of every ring pattern, usable
as a ``Snapshot`` (unit tests) or as contract CSV files (store and CLI tests)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from creditgraph.domain import Snapshot
from creditgraph.store.snapshot import SnapshotBuilder

DAY = 86_400
T0 = 1_704_067_200  # 2024-01-01

CYCLE = ["C1", "C2", "C3", "C4"]
FAN_IN = ["M1", "K1", "F1", "F2", "F3", "F4", "F5", "F6"]  # mule, cash-out, feeders
FAN_OUT = ["S0", "U1", "U2", "U3", "U4", "U5"]  # source, mules
SHARED = ["I1", "I2", "I3", "I4", "I5"]
COLLUSION = ["L1", "L2", "L3", "L4", "L5", "L6"]
BACKGROUND = [f"B{i:02d}" for i in range(60)]
EXIT = "X1"


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class Net:
    """Accounts, transfers, links and labels, built up by hand."""

    accounts: dict[str, float] = field(default_factory=dict)
    transfers: list[tuple[str, str, float, float]] = field(default_factory=list)
    links: list[tuple[str, str, str]] = field(default_factory=list)
    labels: dict[str, str] = field(default_factory=dict)

    def add(self, *ids: str, created: float = T0 - 400 * DAY) -> None:
        for a in ids:
            self.accounts.setdefault(a, created)

    def pay(self, src: str, dst: str, amount: float, ts: float, times: int = 1) -> None:
        self.add(src, dst)
        for i in range(times):
            self.transfers.append((src, dst, amount, ts + i * DAY))

    def link(self, a: str, b: str, kind: str) -> None:
        self.add(a, b)
        self.links.append((min(a, b), max(a, b), kind))

    def snapshot(self) -> Snapshot:
        ids = sorted(self.accounts)
        b = SnapshotBuilder(ids, [self.accounts[a] for a in ids], [{} for _ in ids])
        b.set_labels(self.labels.items())
        if self.transfers:
            s, d, amt, ts = zip(*self.transfers, strict=True)
            b.add_raw_transfers(list(s), list(d), list(amt), list(ts))
        b.add_links(sorted(set(self.links)))
        return b.build()

    def write_csv(self, directory: Path) -> dict[str, Path]:
        directory.mkdir(parents=True, exist_ok=True)
        files = {k: directory / f"{k}.csv" for k in ("accounts", "transfers", "links", "labels")}
        files["accounts"].write_text(
            "account_id,created_at\n"
            + "".join(f"{a},{iso(c)}\n" for a, c in sorted(self.accounts.items()))
        )
        files["transfers"].write_text(
            "transfer_id,src,dst,amount,timestamp\n"
            + "".join(
                f"T{i:05d},{s},{d},{a:.2f},{iso(t)}\n"
                for i, (s, d, a, t) in enumerate(self.transfers)
            )
        )
        files["links"].write_text(
            "src,dst,type\n" + "".join(f"{a},{b},{k}\n" for a, b, k in sorted(set(self.links)))
        )
        files["labels"].write_text(
            "account_id,label\n" + "".join(f"{a},{v}\n" for a, v in sorted(self.labels.items()))
        )
        return files


def background(net: Net, seed: int = 0) -> None:
    """Ordinary small payments and friendships among background accounts."""
    rng = np.random.default_rng(seed)
    net.add(*BACKGROUND)
    for _ in range(240):
        a, b = rng.choice(len(BACKGROUND), 2, replace=False)
        amount = float(np.round(rng.uniform(5, 60), 2))
        net.pay(BACKGROUND[a], BACKGROUND[b], amount, T0 + float(rng.integers(0, 300)) * DAY)
    for i in range(0, len(BACKGROUND) - 1, 2):
        net.link(BACKGROUND[i], BACKGROUND[i + 1], "FRIEND")


def plant_cycle(net: Net, members: list[str] = CYCLE, start: float = T0 + 50 * DAY) -> None:
    """Three rounds of ~5,000 passed around the cycle, each hop hours after the previous."""
    for r in range(3):
        for h, (a, b) in enumerate(zip(members, members[1:] + members[:1], strict=True)):
            net.pay(a, b, 5_000 - 20 * h, start + r * 10 * DAY + h * 3_600)


def plant_fan_in(net: Net) -> None:
    mule, cash, feeders = FAN_IN[0], FAN_IN[1], FAN_IN[2:]
    net.add(*FAN_IN, created=T0 + 20 * DAY)
    for w in range(2):
        for f in feeders:
            net.pay(f, mule, 900, T0 + (80 + 7 * w) * DAY)
        net.pay(mule, cash, 0.95 * 900 * len(feeders), T0 + (80 + 7 * w) * DAY + 7_200)
    net.pay(cash, EXIT, 9_000, T0 + 100 * DAY)


def plant_fan_out(net: Net) -> None:
    source, mules = FAN_OUT[0], FAN_OUT[1:]
    net.add(*FAN_OUT, created=T0 + 30 * DAY)
    net.pay("B00", source, 5_000, T0 + 119 * DAY)
    for m in mules:
        net.pay(source, m, 950, T0 + 120 * DAY)
        net.pay(m, EXIT, 900, T0 + 120 * DAY + 3_600)


def plant_shared(net: Net, link_type: str = "SHARES_PHONE") -> None:
    """Synthetic identities on two phones and one address, with a little money among them."""
    net.add(*SHARED, created=T0 + 40 * DAY)
    a, b, c, d, e = SHARED
    for x, y in ((a, b), (a, c), (b, c), (d, e), (c, d)):
        net.link(x, y, link_type)
    net.link(a, e, "SHARES_ADDRESS")
    for x in SHARED[1:]:
        net.pay(x, a, 2_000, T0 + 150 * DAY)


def plant_collusion(net: Net) -> None:
    for i, a in enumerate(COLLUSION):
        for j, b in enumerate(COLLUSION):
            if a != b and (i + j) % 5 != 0:
                net.pay(a, b, 400 + i, T0 + (60 + i + j) * DAY, times=2)
        if i + 1 < len(COLLUSION):
            net.link(a, COLLUSION[i + 1], "FRIEND")


def planted() -> Net:
    """Background plus one group of every pattern."""
    net = Net()
    background(net)
    plant_cycle(net)
    plant_fan_in(net)
    plant_fan_out(net)
    plant_shared(net)
    plant_collusion(net)
    return net
