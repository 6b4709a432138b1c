"""The synthetic network generator: file contract, determinism and the planted structure."""

from __future__ import annotations

import csv
import json
import re
from collections import Counter, defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from creditgraph.errors import InvalidInput
from creditgraph.synth import SynthSummary, generate

N = 3_000
SEED = 7
ISO = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")
RING_KINDS = {"cycle", "mule_fan_in", "mule_fan_out", "shared_identity", "collusion"}


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def _header(path: Path) -> list[str]:
    with path.open(encoding="utf-8") as f:
        return f.readline().rstrip("\n").split(",")


def _ts(text: str) -> float:
    assert ISO.match(text), text
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp()


class Data:
    """One generated data set, parsed once for all tests."""

    def __init__(self, out: Path, summary: SynthSummary) -> None:
        self.out = out
        self.summary = summary
        self.accounts = _rows(out / "accounts.csv")
        self.transfers = _rows(out / "transfers.csv")
        self.links = _rows(out / "links.csv")
        self.labels = _rows(out / "labels.csv")
        self.truth: dict[str, Any] = json.loads((out / "ground_truth.json").read_text("utf-8"))
        self.created = {a["account_id"]: _ts(a["created_at"]) for a in self.accounts}
        self.fraud = set(self.truth["fraud_accounts"])


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Data:
    out = tmp_path_factory.mktemp("synth") / "out"
    messages: list[str] = []
    summary = generate(N, SEED, out, progress=messages.append)
    assert messages, "progress callback never called"
    return Data(out, summary)


def test_same_seed_gives_byte_identical_files(data: Data, tmp_path: Path) -> None:
    again = generate(N, SEED, tmp_path / "again")
    for name, path in data.summary.files.items():
        assert again.files[name].read_bytes() == path.read_bytes(), name


def test_other_seed_gives_other_data(data: Data, tmp_path: Path) -> None:
    other = generate(N, SEED + 1, tmp_path / "other")
    assert other.files["transfers"].read_bytes() != data.summary.files["transfers"].read_bytes()


@pytest.mark.parametrize(
    ("n_accounts", "seed"), [(199, 1), (0, 1), (-5, 1), (1000, -1), (2.5e3, 1), (True, 1)]
)
def test_rejects_bad_arguments(n_accounts: Any, seed: int, tmp_path: Path) -> None:
    with pytest.raises(InvalidInput):
        generate(n_accounts, seed, tmp_path / "x")
    assert not (tmp_path / "x").exists()


def test_headers(data: Data) -> None:
    assert _header(data.out / "accounts.csv") == [
        "account_id",
        "created_at",
        "kyc_level",
        "num_devices",
        "avg_session_minutes",
        "failed_logins_30d",
        "age_years",
        "region",
    ]
    assert _header(data.out / "transfers.csv") == [
        "transfer_id",
        "src",
        "dst",
        "amount",
        "timestamp",
        "currency",
        "channel",
    ]
    assert _header(data.out / "links.csv") == ["src", "dst", "type", "since"]
    assert _header(data.out / "labels.csv") == ["account_id", "label", "source", "observed_at"]


def test_summary_matches_files(data: Data) -> None:
    s = data.summary
    assert s.accounts == len(data.accounts) == N == data.truth["accounts"]
    assert s.transfers == len(data.transfers)
    assert s.links == len(data.links)
    assert s.labels == len(data.labels)
    assert s.fraud_accounts == len(data.fraud)
    assert s.rings == len(data.truth["rings"]) == sum(s.rings_by_kind.values())
    assert data.truth["seed"] == SEED
    assert all(p.parent == data.out and p.exists() for p in s.files.values())


def test_accounts(data: Data) -> None:
    ids = [a["account_id"] for a in data.accounts]
    assert len(set(ids)) == N
    assert all(re.fullmatch(r"A\d{7}", i) for i in ids)
    for a in data.accounts:
        assert a["kyc_level"] in {"0", "1", "2", "3"}
        assert int(a["num_devices"]) >= 1
        assert float(a["avg_session_minutes"]) > 0
        assert 18 <= int(a["age_years"]) <= 90
        assert re.fullmatch(r"[A-Z]{2}", a["region"])
    assert len({a["region"] for a in data.accounts}) > 3


def test_transfers(data: Data) -> None:
    ids = [t["transfer_id"] for t in data.transfers]
    assert len(set(ids)) == len(ids)
    assert all(re.fullmatch(r"T\d{9}", i) for i in ids)
    assert 9 * N <= len(ids) <= 11 * N
    for t in data.transfers:
        assert t["src"] != t["dst"]
        assert re.fullmatch(r"\d+\.\d{2}", t["amount"])
        assert float(t["amount"]) > 0
        assert t["currency"] == "EUR"
        assert t["channel"] in {"app", "web", "card"}
    times = [_ts(t["timestamp"]) for t in data.transfers]
    assert times == sorted(times), "transfer ids follow time"
    assert max(times) - min(times) > 300 * 86_400


def test_amounts_heavy_tailed(data: Data) -> None:
    amounts = sorted(float(t["amount"]) for t in data.transfers)
    median = amounts[len(amounts) // 2]
    assert amounts[-1] > 50 * median
    assert amounts[int(0.99 * len(amounts))] > 5 * median


def test_every_reference_exists(data: Data) -> None:
    known = set(data.created)
    assert {t["src"] for t in data.transfers} | {t["dst"] for t in data.transfers} <= known
    assert {x["src"] for x in data.links} | {x["dst"] for x in data.links} <= known
    assert {x["account_id"] for x in data.labels} <= known
    assert data.fraud <= known
    assert {m for r in data.truth["rings"] for m in r["members"]} <= known


def test_links_are_canonical_and_unique(data: Data) -> None:
    keys = [(x["src"], x["dst"], x["type"]) for x in data.links]
    assert all(src < dst for src, dst, _ in keys), "no self loops, smaller id first"
    assert len(set(keys)) == len(keys)
    assert {x["type"] for x in data.links} == {"FRIEND", "SHARES_DEVICE", "SHARES_ADDRESS"}


def test_times_follow_account_creation(data: Data) -> None:
    created = data.created
    for t in data.transfers:
        ts = _ts(t["timestamp"])
        assert ts >= max(created[t["src"]], created[t["dst"]]), t
    for x in data.links:
        assert _ts(x["since"]) >= max(created[x["src"]], created[x["dst"]]), x
    for x in data.labels:
        assert _ts(x["observed_at"]) > created[x["account_id"]], x


def test_fraud_share_and_rings(data: Data) -> None:
    assert 0.01 <= len(data.fraud) / N <= 0.03
    rings = data.truth["rings"]
    assert {r["kind"] for r in rings} == RING_KINDS
    members = [m for r in rings for m in r["members"]]
    assert len(members) == len(set(members)), "rings are disjoint"
    assert set(members) <= data.fraud
    assert data.fraud - set(members), "some fraudsters act alone"
    for r in rings:
        assert re.fullmatch(r"R\d{4}", r["ring_id"])
        assert 4 <= len(r["members"]) <= 30


def test_small_graph_still_plants_every_kind(tmp_path: Path) -> None:
    summary = generate(200, 3, tmp_path)
    assert all(summary.rings_by_kind[kind] >= 1 for kind in RING_KINDS)


def test_labels(data: Data) -> None:
    labels = {x["account_id"]: x for x in data.labels}
    assert len(labels) == len(data.labels)
    assert 0.25 <= len(labels) / N <= 0.35
    assert {x["label"] for x in data.labels} == {"fraud", "legit"}
    assert {x["source"] for x in data.labels} <= {"investigation", "chargeback", "kyc_review"}
    labelled_fraud = {a for a, x in labels.items() if x["label"] == "fraud"}
    assert labelled_fraud <= data.fraud
    share = len(labelled_fraud) / len(labels)
    assert len(data.fraud) / N <= share <= 4 * len(data.fraud) / N


def _ring_transfers(data: Data, members: set[str]) -> list[tuple[str, str]]:
    return [
        (t["src"], t["dst"]) for t in data.transfers if t["src"] in members and t["dst"] in members
    ]


def _rings(data: Data, kind: str) -> list[set[str]]:
    return [set(r["members"]) for r in data.truth["rings"] if r["kind"] == kind]


def test_cycles_pass_money_round(data: Data) -> None:
    for members in _rings(data, "cycle"):
        flows = Counter(_ring_transfers(data, members))
        # Members may also be friends who pay each other now and then; the repeated rounds
        # make the cycle hop the most frequent flow out of every member.
        succ: dict[str, str] = {}
        for src, dst in (pair for pair, _ in flows.most_common()):
            succ.setdefault(src, dst)
        start = next(iter(members))
        node, seen = start, set()
        while node not in seen:
            seen.add(node)
            node = succ[node]
        assert node == start
        assert seen == members
        assert min(flows[m, succ[m]] for m in members) >= 3


def test_mules(data: Data) -> None:
    for members in _rings(data, "mule_fan_in"):
        senders: dict[str, set[str]] = defaultdict(set)
        for src, dst in _ring_transfers(data, members):
            senders[dst].add(src)
        assert max(len(s) for s in senders.values()) >= (len(members) - 2) // 2
    for members in _rings(data, "mule_fan_out"):
        receivers: dict[str, set[str]] = defaultdict(set)
        for src, dst in _ring_transfers(data, members):
            receivers[src].add(dst)
        assert max(len(r) for r in receivers.values()) >= (len(members) - 1) // 2


def test_shared_identities_share_devices(data: Data) -> None:
    device: dict[str, set[str]] = defaultdict(set)
    for x in data.links:
        if x["type"] == "SHARES_DEVICE":
            device[x["src"]].add(x["dst"])
            device[x["dst"]].add(x["src"])
    for members in _rings(data, "shared_identity"):
        assert all(len(device[m] & members) >= 2 for m in members)
    legit_sharing = [a for a in device if a not in data.fraud]
    assert len(legit_sharing) > sum(len(m) for m in _rings(data, "shared_identity")), (
        "families share devices too, so a shared device is no giveaway"
    )


def test_collusion_is_dense(data: Data) -> None:
    for members in _rings(data, "collusion"):
        pairs = set(_ring_transfers(data, members))
        k = len(members)
        assert len(pairs) >= 0.4 * k * (k - 1)


def test_merchant_hub_fan_in_is_legit(data: Data) -> None:
    fan_in: dict[str, set[str]] = defaultdict(set)
    for t in data.transfers:
        fan_in[t["dst"]].add(t["src"])
    top = sorted(fan_in, key=lambda a: len(fan_in[a]), reverse=True)[:5]
    assert all(a not in data.fraud for a in top)
    assert len(fan_in[top[0]]) > 0.1 * N


def test_friend_degrees_heavy_tailed(data: Data) -> None:
    degree: Counter[str] = Counter()
    for x in data.links:
        if x["type"] == "FRIEND":
            degree[x["src"]] += 1
            degree[x["dst"]] += 1
    mean = sum(degree.values()) / N
    assert 8 <= mean <= 20
    assert max(degree.values()) > 5 * mean


def test_fraudsters_keep_legit_cover(data: Data) -> None:
    legit_friends = sum(
        1
        for x in data.links
        if x["type"] == "FRIEND" and (x["src"] in data.fraud) != (x["dst"] in data.fraud)
    )
    assert legit_friends > len(data.fraud)


def _mean(values: list[float]) -> float:
    return sum(values) / len(values)


def test_features_weak_signal_but_age_is_blind(tmp_path: Path) -> None:
    generate(20_000, 11, tmp_path)
    fraud = set(json.loads((tmp_path / "ground_truth.json").read_text("utf-8"))["fraud_accounts"])
    accounts = _rows(tmp_path / "accounts.csv")

    def by_class(col: str) -> tuple[list[float], list[float]]:
        bad = [float(a[col]) for a in accounts if a["account_id"] in fraud]
        good = [float(a[col]) for a in accounts if a["account_id"] not in fraud]
        return bad, good

    bad, good = by_class("failed_logins_30d")
    assert _mean(bad) > 1.5 * _mean(good)
    bad, good = by_class("age_years")
    spread = (_mean([(x - _mean(good)) ** 2 for x in good]) / len(bad)) ** 0.5
    assert abs(_mean(bad) - _mean(good)) < 3 * spread
