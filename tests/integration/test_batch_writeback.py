"""Batch scoring's write-back and the saved snapshot (issue 11, 1M in 10 minutes).

- ``score_all`` writes, per account, exactly what the dict path wrote before: the same
  probabilities, social credit and reasons text (``orjson.dumps(Attribution.reasons)``).
- ``GraphStore.write_score_rows`` on both backends: rows round-trip; an unknown account
  refuses the whole call.
- ``graph_revision`` moves with every write ``snapshot`` could see, and not with scores,
  rings, no-op re-imports or reopening; ``score`` reuses the snapshot ``train`` saved until
  such a write, after which it exports afresh and sees the write.
- A v2 store (scores WITHOUT ROWID) is migrated with its scores kept.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest

from creditgraph.domain import AccountColumns, LabelColumns, Ring, Score, Snapshot
from creditgraph.errors import NotFound
from creditgraph.ingest.csvfile import KINDS
from creditgraph.ml.candidates import PATHS
from creditgraph.ml.reasons import served_attribution
from creditgraph.registry import ModelRegistry
from creditgraph.services.champion import load_champion
from creditgraph.services.ingest import import_file
from creditgraph.services.retrain import retrain
from creditgraph.services.scoring import score_all
from creditgraph.services.snapshots import load, load_or_export
from creditgraph.store import embedded
from creditgraph.store.base import GraphStore
from creditgraph.store.embedded import EmbeddedStore
from creditgraph.synth import generate
from creditgraph.training_config import BaselineSection, CandidatesSection, TrainingConfig
from tests.conftest import assert_same_snapshot

TREES = TrainingConfig(
    baseline=BaselineSection(max_rounds=40, early_stopping_rounds=10),
    candidates=CandidatesSection(families=["trees"], social_trees=True),
)


@pytest.fixture(scope="module")
def network(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("net")
    generate(1_200, 5, out)
    return out


# One torch thread: the same seed gives the same scores only at the same thread count.
pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture
def loaded(network: Path, tmp_path: Path) -> Iterator[EmbeddedStore]:
    store = EmbeddedStore(tmp_path / "db.sqlite")
    for kind in KINDS:
        import_file(store, kind, network / f"{kind}.csv", batch_size=5_000)
    try:
        yield store
    finally:
        store.close()


def test_score_all_writes_what_the_dict_path_wrote(loaded: EmbeddedStore, tmp_path: Path) -> None:
    registry = ModelRegistry(tmp_path / "models")
    retrain(loaded, registry, TREES)
    report = score_all(loaded, registry, batch_size=500, exact_reasons=100)
    assert report.written == report.accounts == loaded.counts().accounts

    # The reference: scores and reasons as the dicts gave them (ml.reasons + orjson).
    champion = load_champion(registry)
    snapshot = loaded.snapshot()
    features = champion.artifact.features(snapshot)
    cache: dict[str, Any] = {PATHS: True}
    scores = champion.artifact.served.score(features, cache)
    riskiest = np.argsort(-scores.fraud_probability, kind="stable")[:100]
    att = served_attribution(champion.artifact.served, features, cache, exact=riskiest)
    expected = {
        a: (float(p), float(c), orjson.dumps(r).decode())
        for a, p, c, r in zip(
            snapshot.account_ids,
            scores.fraud_probability,
            scores.social_credit,
            att.reasons(range(snapshot.num_accounts)),
            strict=True,
        )
    }
    with sqlite3.connect(loaded.path) as db:
        stored = {
            a: (p, c, r)
            for a, p, c, r in db.execute(
                "SELECT account_id, fraud_probability, social_credit, reasons FROM scores"
            )
        }
    assert stored == expected
    # Both kinds of tree reasons were compared: TreeSHAP (the 100 riskiest) and path
    # attribution (the rest).
    assert snapshot.num_accounts > 100


def test_score_rows_round_trip(store: GraphStore) -> None:
    store.upsert_accounts(AccountColumns(["A", "B"], [None, None], [{}, {}], [{}, {}]))
    reasons = [{"code": "RING_MEMBER", "message": 'a "quoted" line', "weight": 0.25}]
    rows = [
        ("A", 0.75, 12.5, "v7", orjson.dumps(reasons).decode(), 5.0),
        ("B", 0.125, 80.0, "v7", "[]", 5.0),
    ]
    assert store.write_score_rows(rows) == 2
    assert store.get_scores() == [
        Score("A", 0.75, 12.5, "v7", reasons, 5.0),
        Score("B", 0.125, 80.0, "v7", [], 5.0),
    ]
    with pytest.raises(NotFound):
        store.write_score_rows(
            [("B", 0.5, 50.0, "v8", "[]", 6.0), ("nobody", 0.5, 50.0, "v8", "[]", 6.0)]
        )
    assert store.get_scores(["B"])[0].model_version == "v7"  # nothing of the call written


def test_graph_revision_moves_with_graph_writes_only(tmp_path: Path) -> None:
    store = EmbeddedStore(tmp_path / "db.sqlite")
    accounts = AccountColumns(["A", "B"], [1.0, 2.0], [{"x": 1.0}, {}], [{}, {}])
    revisions = [store.graph_revision()]

    def moved() -> bool:
        revisions.append(store.graph_revision())
        return revisions[-1] != revisions[-2]

    store.upsert_accounts(accounts)
    assert moved()
    store.upsert_accounts(accounts)  # the same rows again: nothing changed
    assert not moved()
    store.write_scores([Score("A", 0.5, 50.0, "v1")])
    store.write_rings([Ring("R1", "cycle", 0.8, ["A", "B"], {})])
    store.update_ring("R1", "investigating")
    store.delete_rings(["R1"])
    assert not moved()
    store.upsert_labels(LabelColumns(["A"], ["fraud"], [None], [None]))
    assert moved()
    store.upsert_accounts(AccountColumns(["B"], [None], [{"x": 2.0}], [{}]))
    assert moved()
    store.erase_account("B")
    assert moved()
    store.close()
    again = EmbeddedStore(tmp_path / "db.sqlite")  # reopening (schema applied) is no write
    assert again.graph_revision() == revisions[-1]
    assert again.snapshot().revision == revisions[-1]
    again.close()
    other = EmbeddedStore(tmp_path / "other.sqlite")  # another store never shares a revision
    other.upsert_accounts(accounts)
    assert other.graph_revision() not in revisions
    other.close()


def test_score_reuses_the_snapshot_train_saved_until_a_write(
    loaded: EmbeddedStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    saved = tmp_path / "cache" / "snapshot.npz"
    registry = ModelRegistry(tmp_path / "models")
    retrain(loaded, registry, TREES, snapshot_cache=saved)
    revision = loaded.graph_revision()
    hit = load(saved, revision)
    assert hit is not None
    assert_same_snapshot(hit, loaded.snapshot())

    exports: list[Snapshot] = []
    export = loaded.snapshot

    def counted() -> Snapshot:
        exports.append(export())
        return exports[-1]

    monkeypatch.setattr(loaded, "snapshot", counted)
    first = score_all(loaded, registry, snapshot_cache=saved)
    assert exports == []  # the saved snapshot served: no export
    assert loaded.graph_revision() == revision  # writing scores left it valid
    score_all(loaded, registry, snapshot_cache=saved)
    assert exports == []

    # A new label is a write the snapshot sees: the next job exports again and sees it.
    unlabelled = next(a for a, y in zip(hit.account_ids, hit.labels, strict=True) if y < 0)
    loaded.upsert_labels(LabelColumns([unlabelled], ["fraud"], [None], [None]))
    assert load(saved, loaded.graph_revision()) is None
    second = score_all(loaded, registry, snapshot_cache=saved)
    assert len(exports) == 1
    assert exports[0].labels[exports[0].account_ids.index(unlabelled)] == 1
    assert second.unlabelled == first.unlabelled - 1
    fresh = load(saved, loaded.graph_revision())  # and saved for the job after it
    assert fresh is not None
    assert_same_snapshot(fresh, exports[0])


def test_a_broken_or_foreign_snapshot_file_is_exported_over(
    loaded: EmbeddedStore, tmp_path: Path
) -> None:
    saved = tmp_path / "snapshot.npz"
    saved.write_bytes(b"not a snapshot")
    snap = load_or_export(loaded, saved)
    assert snap.revision == loaded.graph_revision()
    hit = load(saved, loaded.graph_revision())
    assert hit is not None
    assert_same_snapshot(hit, snap)
    assert load(saved, "another-store:1") is None


def test_v2_scores_table_is_migrated_with_its_rows(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite"
    store = EmbeddedStore(path)
    store.upsert_accounts(AccountColumns(["A", "B"], [None, None], [{}, {}], [{}, {}]))
    store.write_scores([Score("A", 0.9, 10.0, "v1", [{"code": "X", "weight": 1.0}], 3.0)])
    before = store.get_scores()
    store.close()
    with sqlite3.connect(path) as db:  # back to the v2 layout
        db.executescript(
            """
            CREATE TABLE old(account_id TEXT PRIMARY KEY, fraud_probability REAL NOT NULL,
                social_credit REAL NOT NULL, model_version TEXT NOT NULL,
                reasons TEXT NOT NULL, scored_at REAL NOT NULL) WITHOUT ROWID;
            INSERT INTO old SELECT * FROM scores;
            DROP TABLE scores;
            ALTER TABLE old RENAME TO scores;
            PRAGMA user_version=2;
            """
        )
    again = EmbeddedStore(path)
    assert again.apply_schema() == [f"sqlite schema v{embedded.SCHEMA_VERSION}"]
    assert again.get_scores() == before
    with sqlite3.connect(path) as db:
        sql = db.execute("SELECT sql FROM sqlite_master WHERE name = 'scores'").fetchone()[0]
        assert "WITHOUT ROWID" not in sql.upper()
        assert db.execute("PRAGMA user_version").fetchone()[0] == embedded.SCHEMA_VERSION
    again.write_scores([Score("B", 0.1, 90.0, "v2")])
    assert [s.account_id for s in again.get_scores()] == ["A", "B"]
    again.close()
