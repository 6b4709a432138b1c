"""Synthetic credit behaviour: obligations that import, a fifth thin-file, community shocks
visible in outcomes, ground truth for the held-out open obligations, and network files that
do not depend on it."""

from __future__ import annotations

import csv
from collections import defaultdict
from pathlib import Path

import pytest

from creditgraph.services.ingest import import_file
from creditgraph.store.embedded import EmbeddedStore
from creditgraph.synth import credit, generate
from creditgraph.synth.credit import CreditSummary, CreditWorld

N = 3_000
SEED = 11
NETWORK = ("accounts", "transfers", "links", "labels", "ground_truth")


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("credit") / "out"
    generate(N, SEED, path)
    return path


def test_network_files_do_not_depend_on_the_credit_layer(
    out: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def nothing(world: CreditWorld, ids: object, seed: int, out_dir: Path) -> CreditSummary:
        return CreditSummary(0, 0, 0, 0.0, {})

    monkeypatch.setattr(credit, "write_credit", nothing)
    bare = generate(N, SEED, tmp_path / "bare")
    for name in NETWORK:
        assert bare.files[name].read_bytes() == (out / bare.files[name].name).read_bytes(), name
    assert not (tmp_path / "bare" / "obligations.csv").exists()


def test_obligations_import_cleanly(out: Path, tmp_path: Path) -> None:
    store = EmbeddedStore(tmp_path / "s.db")
    try:
        import_file(store, "accounts", out / "accounts.csv")
        report = import_file(store, "obligations", out / "obligations.csv")
        assert report.changed == len(_rows(out / "obligations.csv"))
    finally:
        store.close()


def test_thin_files_shocks_and_truth(out: Path) -> None:
    obligations = _rows(out / "obligations.csv")
    truth = _rows(out / "credit_truth.csv")
    accounts = _rows(out / "credit_accounts_truth.csv")
    thin = [a for a in accounts if a["thin_file"] == "1"]
    assert 0.15 < len(thin) / len(accounts) < 0.27
    resolved = {o["account_id"] for o in obligations if o["status"] != "open"}
    assert not any(a["account_id"] in resolved for a in thin)
    open_ids = {o["obligation_id"] for o in obligations if o["status"] == "open"}
    assert {t["obligation_id"] for t in truth} == open_ids
    assert {t["outcome"] for t in truth} <= {"repaid", "late", "defaulted"}
    # Every account with credit holds at least one held-out obligation.
    assert {t["account_id"] for t in truth} == {a["account_id"] for a in accounts}
    # Shocked communities default more, in the held-out outcomes.
    shocked = {a["account_id"] for a in accounts if float(a["shock"]) > 0.8}
    rate: dict[bool, list[int]] = defaultdict(list)
    for t in truth:
        rate[t["account_id"] in shocked].append(int(t["defaulted"]))
    high, low = (sum(rate[k]) / len(rate[k]) for k in (True, False))
    assert high > 1.5 * low
    assert 0.05 < low < 0.3
