"""A snapshot saved beside the store, reused by the next batch job while the store is unchanged.

``creditgraph train`` and ``creditgraph score`` are separate commands, and each exported the
whole graph (at a million accounts and ten million transfers, ~110 s each). ``train`` now
leaves its snapshot in ``<data_dir>/cache/snapshot.npz`` keyed by the store's
``graph_revision`` (read inside the export's own transaction); a later job whose store
reports the same revision loads that file (seconds) instead of exporting again. Any write
that may change what ``snapshot`` reads (accounts, transfers, links, labels, erasure, ...)
advances the revision, so the next job exports afresh and replaces the file; writes of
scores and rings do not, so ``score`` after ``train`` finds the file. A backend that cannot
tell its revision (``None``) always exports. A file that cannot be read is ignored (and
replaced): it is a cache, never the record.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from creditgraph.domain import EdgeSet, Snapshot
from creditgraph.store.base import GraphStore

log = logging.getLogger(__name__)

#: Layout of the file; a file of another layout is a miss.
FORMAT = 1
_EDGE_FIELDS = ("src", "dst", "count", "total_amount", "first_ts", "last_ts")


def cache_path(data_dir: Path) -> Path:
    return data_dir / "cache" / "snapshot.npz"


def load_or_export(store: GraphStore, path: Path | None) -> Snapshot:
    """The store's snapshot: from ``path`` when it holds the store's current revision, else
    a fresh export (then saved to ``path``). ``path`` None: always a fresh export."""
    if path is None:
        return store.snapshot()
    revision = store.graph_revision()
    if revision is not None:
        hit = load(path, revision)
        if hit is not None:
            return hit
    snapshot = store.snapshot()
    if snapshot.revision is not None:
        save(snapshot, path)
    return snapshot


def save(snapshot: Snapshot, path: Path) -> None:
    """Write ``snapshot`` to ``path`` atomically (aside, then renamed into place)."""
    fields = {
        rel: [f for f in _EDGE_FIELDS if getattr(es, f) is not None]
        for rel, es in snapshot.edges.items()
    }
    meta = {
        "format": FORMAT,
        "revision": snapshot.revision,
        "feature_names": snapshot.feature_names,
        "edges": {
            rel: {"directed": es.directed, "fields": fields[rel]}
            for rel, es in snapshot.edges.items()
        },
    }
    arrays: dict[str, Any] = {
        "meta": np.frombuffer(orjson.dumps(meta), dtype=np.uint8),
        "account_ids": np.frombuffer(orjson.dumps(snapshot.account_ids), dtype=np.uint8),
        "features": snapshot.features,
        "created_at": snapshot.created_at,
        "labels": snapshot.labels,
    }
    for k, (rel, es) in enumerate(snapshot.edges.items()):
        for f in fields[rel]:
            arrays[f"e{k}_{f}"] = getattr(es, f)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as out:
            np.savez(out, **arrays)
        os.replace(tmp, path)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        log.warning("snapshot not saved to %s (%s): the next job exports again", path, e)


def load(path: Path, revision: str) -> Snapshot | None:
    """The snapshot saved at ``path`` if it was taken at ``revision``, else None."""
    if not path.exists():
        return None
    try:
        with np.load(path, allow_pickle=False) as z:
            meta = orjson.loads(z["meta"].tobytes())
            if meta.get("format") != FORMAT or meta.get("revision") != revision:
                return None
            edges = {}
            for k, (rel, spec) in enumerate(meta["edges"].items()):
                fields = {f: z[f"e{k}_{f}"] for f in spec["fields"]}
                edges[rel] = EdgeSet(relation=rel, directed=spec["directed"], **fields)
            return Snapshot(
                account_ids=orjson.loads(z["account_ids"].tobytes()),
                feature_names=meta["feature_names"],
                features=z["features"],
                created_at=z["created_at"],
                labels=z["labels"],
                edges=edges,
                revision=revision,
            )
    except (OSError, ValueError, KeyError, TypeError, orjson.JSONDecodeError) as e:
        log.warning("ignoring the saved snapshot %s (%s): exporting afresh", path, e)
        return None
