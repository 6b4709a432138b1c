"""Ring detection as a job, and the investigator workflow on stored rings.

``detect_rings`` snapshots the store, detects rings (with stored fraud probabilities when
there are any), gives each ring a stable id and writes the result back:

* a detected ring whose members overlap a stored ring's by Jaccard >= ``MATCH_JACCARD`` takes
  over that ring's id, status and note (best pairs first, each stored ring used once), so an
  investigator's work survives re-runs and retraining;
* any other detected ring gets a new id derived from its members (``ring-<12 hex>``);
* a stored ring that nothing matched is retired (deleted) if nobody touched it (status
  ``new`` and no note); a touched ring stays as the investigator left it.

``set_ring_status`` moves a ring through ``new | investigating | confirmed | dismissed`` and
turns verdicts into training labels (source ``ring:<id>``, see docs/rings.md):

* confirmed: every member is labelled ``fraud``;
* dismissed: members without a label, or whose label this ring wrote, are labelled ``legit``;
  labels from any other source are kept (a group verdict does not overrule independent
  evidence such as a chargeback);
* other statuses write no labels and remove none.
"""

from __future__ import annotations

import hashlib
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from creditgraph.domain import LabelColumns, LabelValue, Ring
from creditgraph.rings import DetectConfig, DetectedRing, detect
from creditgraph.store.base import GraphStore, check_ring_status

MATCH_JACCARD = 0.5


@dataclass(frozen=True)
class RingReport:
    """What a detection run did."""

    detected: int
    new: int
    matched: int
    retired: int
    kept_untouched: int
    by_kind: dict[str, int]
    used_scores: bool
    accounts: int
    timings: dict[str, float]
    candidates: dict[str, int] = field(default_factory=dict)
    #: How the rings were scored (learned or unsupervised, weak-label counts, weights).
    scorer: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class StatusChange:
    """A ring after a status change, and how many labels the verdict wrote."""

    ring: Ring
    labels_written: int


def ring_id_for(members: Sequence[str]) -> str:
    """A new ring's id: a digest of its sorted members (the same group, the same id)."""
    digest = hashlib.sha1("\n".join(sorted(members)).encode(), usedforsecurity=False)
    return f"ring-{digest.hexdigest()[:12]}"


def _jaccard(a: set[str], b: set[str]) -> float:
    return len(a & b) / len(a | b) if a or b else 0.0


def match_previous(detected: Sequence[DetectedRing], previous: Sequence[Ring]) -> dict[int, Ring]:
    """Detected ring index -> the stored ring it continues (Jaccard >= ``MATCH_JACCARD``),
    greedily by decreasing Jaccard; each stored ring continues at most one detected ring."""
    by_member: dict[str, list[int]] = defaultdict(list)
    for j, r in enumerate(previous):
        for m in r.members:
            by_member[m].append(j)
    old_sets = [set(r.members) for r in previous]
    pairs: list[tuple[float, int, int]] = []
    for i, d in enumerate(detected):
        mine = set(d.members)
        for j in {j for m in d.members for j in by_member.get(m, [])}:
            jac = _jaccard(mine, old_sets[j])
            if jac >= MATCH_JACCARD:
                pairs.append((-jac, i, j))
    pairs.sort()
    out: dict[int, Ring] = {}
    used: set[int] = set()
    for _, i, j in pairs:
        if i not in out and j not in used:
            out[i] = previous[j]
            used.add(j)
    return out


def _touched(r: Ring) -> bool:
    return r.status != "new" or bool(r.note)


def detect_rings(
    store: GraphStore,
    config: DetectConfig | None = None,
    *,
    use_scores: bool = True,
    now: float | None = None,
) -> RingReport:
    """Snapshot, detect, match with stored rings, write back; see the module docstring."""
    timings: dict[str, float] = {}
    t = time.perf_counter()
    snap = store.snapshot()
    timings["snapshot"] = time.perf_counter() - t
    t = time.perf_counter()
    risk = None
    if use_scores:
        scores = store.get_scores()
        if scores:
            risk = np.full(snap.num_accounts, np.nan)
            pos = np.searchsorted(snap.account_ids, [s.account_id for s in scores])
            risk[pos] = [s.fraud_probability for s in scores]
    timings["scores"] = time.perf_counter() - t
    previous = store.list_rings()
    # Investigators' verdicts on stored rings supervise this run's scorer.
    verdicts = [(r.members, r.status) for r in previous if r.status in ("confirmed", "dismissed")]
    found = detect(snap, risk, config, verdicts=verdicts)
    timings.update({f"detect.{k}": v for k, v in found.timings.items()})
    t = time.perf_counter()
    matched = match_previous(found.rings, previous)
    stamp = time.time() if now is None else now
    rings: list[Ring] = []
    for i, d in enumerate(found.rings):
        old = matched.get(i)
        evidence = {**d.evidence, "model_scores": risk is not None}
        rings.append(
            Ring(
                ring_id=old.ring_id if old else ring_id_for(d.members),
                kind=d.kind,
                score=d.score,
                members=d.members,
                evidence=evidence,
                status=old.status if old else "new",
                note=old.note if old else "",
                detected_at=stamp,
            )
        )
    written = {r.ring_id for r in rings}
    continued = {r.ring_id for r in matched.values()}
    gone = [r for r in previous if r.ring_id not in continued and r.ring_id not in written]
    retire = [r.ring_id for r in gone if not _touched(r)]
    store.write_rings(rings)
    store.delete_rings(retire)
    timings["write"] = time.perf_counter() - t
    by_kind: dict[str, int] = defaultdict(int)
    for r in rings:
        by_kind[r.kind] += 1
    return RingReport(
        detected=len(rings),
        new=len(rings) - len(matched),
        matched=len(matched),
        retired=len(retire),
        kept_untouched=len(gone) - len(retire),
        by_kind=dict(sorted(by_kind.items())),
        used_scores=risk is not None,
        accounts=snap.num_accounts,
        timings={k: round(v, 3) for k, v in timings.items()},
        candidates=found.candidates,
        scorer=found.scorer,
    )


def verdict_labels(ring: Ring, current: LabelColumns, now: float) -> LabelColumns:
    """The labels a ring's status implies for its members, given their current labels."""
    source = f"ring:{ring.ring_id}"
    value: LabelValue
    if ring.status == "confirmed":
        value, who = "fraud", list(ring.members)
    elif ring.status == "dismissed":
        by_account = dict(zip(current.account_id, current.source, strict=True))
        value = "legit"
        who = [m for m in ring.members if m not in by_account or by_account[m] == source]
    else:
        return LabelColumns([], [], [], [])
    return LabelColumns(who, [value] * len(who), [source] * len(who), [now] * len(who))


def set_ring_status(
    store: GraphStore,
    ring_id: str,
    status: str,
    note: str | None = None,
    *,
    now: float | None = None,
) -> StatusChange:
    """Change a ring's status (and note) and write the labels its verdict implies."""
    checked = check_ring_status(status)
    ring = store.update_ring(ring_id, checked, note)
    current = store.get_labels(ring.members)
    labels = verdict_labels(ring, current, time.time() if now is None else now)
    written = store.upsert_labels(labels) if len(labels) else 0
    return StatusChange(ring, written)
