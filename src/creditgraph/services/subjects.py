"""Data-subject rights: everything held about a person (``export``), and forgetting them
(``erase``), for the CLI (``creditgraph subject export|erase``) and the API
(``GET|DELETE /v1/subjects/{id}``).

Erasure, in order, each step idempotent so a re-run after a crash finishes the job:
1. the store drops the account with its transfers (and their outcomes), links, label,
   score, versions, obligations, the review items naming it and its ring memberships, and
   keeps a tombstone (one transaction; ``GraphStore.erase_account``), so the next
   training snapshot lacks the person and a re-import is refused unless forced;
2. the ledger forgets the account's pseudonym (crypto-shredding): the audit and decision
   lines about the person stay byte for byte (the hash chains still verify) but nothing
   links them to the person any more;
3. the model registry's per-account files (``candidate_scores.npz`` of every version) lose
   the person's row;
4. the erasure is logged (without the id) and announced in ``erasures.log`` (digests
   only), which a running server reads within its probe interval to drop what it holds in
   memory about the account (``Serving.forget``).
"""

from __future__ import annotations

import os
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from creditgraph.errors import NotFound
from creditgraph.ledger import Ledger
from creditgraph.services.retrain import CANDIDATE_SCORES
from creditgraph.store.base import MAX_PAGE, GraphStore, tombstone_of

#: Transfers listed per export (newest first); ``transfers_total`` says how many exist.
MAX_EXPORT_TRANSFERS = 100_000


def export(store: GraphStore, ledger: Ledger, account_id: str) -> dict[str, Any]:
    """Everything held about ``account_id``: attributes (with their change history) and
    consent, ties, transfers with their outcomes, label, scores with reasons, rings,
    obligations with their status history, review items, credit outputs, and every audit
    and decision entry about them (who looked them up, when and why). Rings are listed
    without their evidence, which names other people. ``NotFound`` if the store does not
    hold the account."""
    account = store.get_account(account_id)
    transfers: list[dict[str, Any]] = []
    total = 0
    while len(transfers) < MAX_EXPORT_TRANSFERS:
        page = store.transfers_of(account_id, limit=MAX_PAGE, offset=len(transfers))
        total = page.total
        transfers += [asdict(t) for t in page.items]
        if not page.items or len(transfers) >= total:
            break
    labels = store.get_labels([account_id])
    outcomes = store.transfer_labels_of([t["transfer_id"] for t in transfers])
    lookups: list[dict[str, Any]] = []
    decisions: list[dict[str, Any]] = []
    for e in ledger.about(account_id):
        (lookups if e["stream"] == "audit" else decisions).append(e)
    obligations = store.get_obligations(account_ids=[account_id])
    return {
        "account_id": account_id,
        "attributes": {
            "created_at": account.created_at,
            "features": account.features,
            "properties": account.properties,
        },
        "consent": {"social_scoring": account.properties.get("social_scoring")},
        "ties": [asdict(e) for e in store.adjacent([account_id])],
        "transfers": transfers,
        "transfers_total": total,
        "labels": [
            {"label": lab, "source": src, "observed_at": at}
            for lab, src, at in zip(labels.label, labels.source, labels.observed_at, strict=True)
        ],
        "scores": [asdict(s) for s in store.get_scores([account_id])],
        "rings": [
            {
                "ring_id": r.ring_id,
                "kind": r.kind,
                "score": r.score,
                "status": r.status,
                "members": len(r.members),
                "detected_at": r.detected_at,
            }
            for r in store.rings_of(account_id)
        ],
        "transfer_labels": [
            {"transfer_id": t, "label": lab, "source": src, "observed_at": at}
            for t, lab, src, at in zip(
                outcomes.transfer_id,
                outcomes.label,
                outcomes.source,
                outcomes.observed_at,
                strict=True,
            )
        ],
        "obligations": [asdict(obligations[k]) for k in sorted(obligations)],
        "history": [asdict(v) for v in store.account_history(account_id)],
        "reviews": [asdict(r) for r in store.reviews_of(account_id)],
        # Credit outputs are not stored: each answered one is a decision-log line.
        "credit_outputs": [d for d in decisions if str(d.get("kind", "")).startswith("credit.")],
        "lookups": lookups,
        "decisions": decisions,
        "generated_at": time.time(),
    }


def erasures_path(ledger: Ledger) -> Path:
    """Digests of erased accounts, one per line, for running servers to act on."""
    return ledger.pseudonyms.path.with_name("erasures.log")


def erase(
    store: GraphStore,
    ledger: Ledger,
    account_id: str,
    *,
    who: dict[str, Any],
    purpose: str,
    models_dir: Path | None = None,
) -> dict[str, Any]:
    """Erase ``account_id`` everywhere (see the module docstring); returns what was removed.
    ``who``: the key id, name and role of whoever erases (logged). ``NotFound`` if the store
    holds neither the account nor its tombstone."""
    try:
        done: dict[str, Any] = asdict(store.erase_account(account_id))
        done["already_erased"] = False
    except NotFound:
        if not store.erased([account_id]):
            raise
        done = {"account_id": account_id, "already_erased": True}
    pseudonym = ledger.pseudonyms.forget(account_id)
    if models_dir is not None:
        done["model_files_scrubbed"] = scrub_model_files(models_dir, account_id)
    digest = tombstone_of(account_id)
    summary = {k: v for k, v in done.items() if k not in ("account_id", "already_erased")}
    ledger.append(
        "audit",
        {
            **who,
            "action": "subject.erase",
            "target": "<erased>",
            "result": orjson.dumps(summary).decode() if summary else "already erased",
            "purpose": purpose,
        },
    )
    path = erasures_path(ledger)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, digest.encode() + b"\n")
        os.fsync(fd)
    finally:
        os.close(fd)
    done["pseudonym_forgotten"] = pseudonym is not None
    done["tombstone"] = digest
    return done


def scrub_model_files(models_dir: Path, account_id: str) -> int:
    """Drop ``account_id``'s row from every registered version's ``candidate_scores.npz``
    (rewritten beside, then renamed over); returns how many files held it."""
    changed = 0
    for path in sorted(models_dir.glob(f"*/{CANDIDATE_SCORES}")):
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
        keep = arrays["account_id"] != account_id
        if keep.all():
            continue
        tmp = path.with_suffix(".tmp.npz")
        np.savez_compressed(tmp, **{k: v[keep] for k, v in arrays.items()})
        os.replace(tmp, path)
        changed += 1
    return changed


class ErasureWatch:
    """Reads ``erasures.log`` as it grows (a running server's view of erasures made by the
    CLI or by another process)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._offset = self._size()

    def _size(self) -> int:
        try:
            return os.stat(self.path).st_size
        except FileNotFoundError:
            return 0

    def new_digests(self) -> set[str]:
        """Digests appended since the last call (none: one ``stat``)."""
        size = self._size()
        if size <= self._offset:
            self._offset = min(self._offset, size)
            return set()
        with open(self.path, "rb") as f:
            f.seek(self._offset)
            data = f.read(size - self._offset)
        cut = data.rfind(b"\n") + 1
        self._offset += cut
        return {line.decode() for line in data[:cut].split(b"\n") if line}
