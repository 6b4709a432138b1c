"""Batch scoring: the champion scores every account of a snapshot, with reasons, and the
scores go back to the store (and optionally to a CSV file).

Labelled and unlabelled accounts are scored alike: labels are training targets, never model
inputs. Reasons come from ``ml.reasons`` (GNN attribution passes and, for tree members,
TreeSHAP for the ``exact_reasons`` riskiest accounts, the ones a review queue shows, and path
attribution read off the scoring pass for every other account; all accounts at once);
the per-account gradient explanation (``ml.explain``) stays for on-demand questions. Score
objects are built and written one batch at a time, so memory holds the arrays of the whole
graph but the Python objects of only one batch.
"""

from __future__ import annotations

import gc
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.csv as pacsv

from creditgraph.domain import Snapshot
from creditgraph.ml.candidates import PATHS
from creditgraph.ml.reasons import served_attribution
from creditgraph.ml.reasons_text import reasons_json
from creditgraph.registry import ModelRegistry
from creditgraph.services.champion import load_champion
from creditgraph.services.laps import Laps
from creditgraph.services.snapshots import load_or_export
from creditgraph.store.base import GraphStore

#: Columns of the ``--out`` CSV file; the first four are the public data contract.
CSV_COLUMNS = (
    "account_id",
    "fraud_probability",
    "social_credit",
    "model_version",
    "top_reason",
)


#: Accounts whose tree reasons are TreeSHAP in a batch run: a day's review queue and more;
#: TreeSHAP for a million accounts would take longer than the retrain (ml.pathattr).
EXACT_REASONS = 2_000


@dataclass(frozen=True)
class ScoreReport:
    """What a scoring run did."""

    model_version: str
    accounts: int
    unlabelled: int
    written: int
    out: Path | None
    timings: dict[str, float]


def score_all(
    store: GraphStore,
    registry: ModelRegistry,
    *,
    out: Path | None = None,
    batch_size: int = 20_000,
    snapshot: Snapshot | None = None,
    exact_reasons: int = EXACT_REASONS,
    snapshot_cache: Path | None = None,
) -> ScoreReport:
    """Score every stored account with the champion and write the scores back.

    With ``out``, also write a CSV (``CSV_COLUMNS``; ``top_reason`` is the message of the
    reason with the largest weight). ``snapshot`` defaults to a fresh export of ``store``.
    ``exact_reasons``: how many of the riskiest accounts get TreeSHAP reasons from tree
    members (the others: path attribution, ``ml.pathattr``). ``snapshot_cache``: a saved snapshot
    to reuse while the store is unchanged (``services.snapshots``).
    Raises ``ModelNotReady`` when no champion exists.
    """
    champion = load_champion(registry)
    version, artifact = champion.version, champion.artifact
    laps = Laps()
    lap, timings = laps.lap, laps.timings
    if snapshot is None:
        snapshot = load_or_export(store, snapshot_cache)
    lap("snapshot_s")
    features = artifact.features(snapshot)
    # One cache for both passes: tree families build their columns once, and their
    # scoring pass leaves the path attributions behind.
    cache: dict[str, Any] = {PATHS: True}
    scores = artifact.served.score(features, cache)
    lap("score_s")
    riskiest = np.argsort(-scores.fraud_probability, kind="stable")[:exact_reasons]
    attribution = served_attribution(artifact.served, features, cache, exact=riskiest)
    del cache
    lap("attribution_s")

    scored_at = time.time()
    top_reason: list[str] = []
    written = 0
    ids = snapshot.account_ids
    fraud = scores.fraud_probability.astype(np.float64).tolist()
    social = scores.social_credit.astype(np.float64).tolist()
    with _collector_paused():
        for begin in range(0, snapshot.num_accounts, batch_size):
            end = min(begin + batch_size, snapshot.num_accounts)
            # Reasons go straight to their JSON text (``ml.reasons_text``), the rows to the
            # store as tuples: no dict per reason, no ``Score`` per account.
            texts = reasons_json(attribution, range(begin, end))
            written += store.write_score_rows(
                list(
                    zip(
                        ids[begin:end],
                        fraud[begin:end],
                        social[begin:end],
                        [version] * (end - begin),
                        texts,
                        [scored_at] * (end - begin),
                        strict=True,
                    )
                )
            )
            if out is not None:
                top_reason += [
                    max(orjson.loads(t), key=lambda x: abs(x["weight"]))["message"] for t in texts
                ]
    lap("write_s")
    if out is not None:
        table = pa.table(
            {
                "account_id": pa.array(snapshot.account_ids, pa.string()),
                "fraud_probability": pa.array(scores.fraud_probability, pa.float64()),
                "social_credit": pa.array(scores.social_credit, pa.float64()),
                "model_version": pa.array([version] * snapshot.num_accounts, pa.string()),
                "top_reason": pa.array(top_reason, pa.string()),
            }
        )
        _write_csv_atomic(table, out)
        lap("csv_s")
    return ScoreReport(
        model_version=version,
        accounts=snapshot.num_accounts,
        unlabelled=int((snapshot.labels < 0).sum()),
        written=written,
        out=out,
        timings=timings,
    )


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Python's cyclic garbage collector off while a batch of rows is built: millions of
    fresh lists and tuples made it traverse the whole heap again and again (a third of the
    write-back at 50k accounts), and nothing built here is a cycle."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _write_csv_atomic(table: pa.Table, path: Path) -> None:
    # A reader (or a crash) never sees half a file: write aside, then rename into place.
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    pacsv.write_csv(table, tmp)
    os.replace(tmp, path)
