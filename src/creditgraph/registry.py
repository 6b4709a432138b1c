"""Model registry on disk: one folder per version, a champion pointer, a promotion gate.

Layout under ``root``::

    v0003/               everything the version needs (weights, scaler, card, plots)
    v0003/meta.json      ModelRecord: metrics, config, data summary, timestamps
    champion.json        {"version": "v0003", "promoted_at": ..., "reason": ...}
    history.jsonl        one line per promotion (append-only)

Writes go to a temporary file first and are moved into place with ``os.replace``, so a crash
never leaves a half-written record or pointer.
"""

from __future__ import annotations

import os
import re
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import orjson

from creditgraph.errors import Conflict, InvalidInput, NotFound

_VERSION_RE = re.compile(r"^v(\d{4,})$")


@dataclass(frozen=True)
class ModelRecord:
    """What the registry knows of one trained version."""

    version: str
    created_at: float
    metrics: dict[str, float]
    config: dict[str, Any]
    data_summary: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class GateDecision:
    """Whether a challenger may replace the champion, and why."""

    promote: bool
    metric: str
    challenger: float
    champion: float | None
    tolerance: float
    reason: str


def gate(
    challenger: dict[str, float],
    champion: dict[str, float] | None,
    *,
    metric: str = "auprc",
    tolerance: float = 0.01,
) -> GateDecision:
    """Promote unless the challenger is worse than the champion by more than ``tolerance``
    on ``metric``, both measured on the same held-out labels."""
    if metric not in challenger:
        raise InvalidInput(f"challenger has no metric {metric!r}")
    value = challenger[metric]
    if champion is None:
        return GateDecision(True, metric, value, None, tolerance, "no champion yet")
    if metric not in champion:
        raise InvalidInput(f"champion has no metric {metric!r}")
    best = champion[metric]
    if value + tolerance < best:
        return GateDecision(
            False,
            metric,
            value,
            best,
            tolerance,
            f"{metric} {value:.4f} is worse than the champion's {best:.4f} by more than "
            f"{tolerance}",
        )
    return GateDecision(
        True, metric, value, best, tolerance, f"{metric} {value:.4f} vs champion {best:.4f}"
    )


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    with tmp.open("rb") as f:
        os.fsync(f.fileno())
    os.replace(tmp, path)


class ModelRegistry:
    """Versions under one folder; safe against crashes, not against concurrent trainers
    (retraining jobs are scheduled one at a time)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)

    def new_version(self) -> tuple[str, Path]:
        """Reserve the next version number and its (empty) folder."""
        numbers = [int(m.group(1)) for p in self.root.iterdir() if (m := _VERSION_RE.match(p.name))]
        version = f"v{(max(numbers) + 1) if numbers else 1:04d}"
        path = self.root / version
        path.mkdir()
        return version, path

    def path(self, version: str) -> Path:
        """Folder of a registered version."""
        if not _VERSION_RE.match(version):
            raise InvalidInput(f"not a model version: {version!r}")
        path = self.root / version
        if not (path / "meta.json").exists():
            raise NotFound(f"model version {version!r} not found")
        return path

    def register(self, record: ModelRecord) -> ModelRecord:
        """Write the record of a version whose files are already in its folder."""
        folder = self.root / record.version
        if not folder.is_dir():
            raise NotFound(f"no folder for model version {record.version!r}")
        if (folder / "meta.json").exists():
            raise Conflict(f"model version {record.version!r} is already registered")
        _write_atomic(
            folder / "meta.json", orjson.dumps(asdict(record), option=orjson.OPT_INDENT_2)
        )
        return record

    def get(self, version: str) -> ModelRecord:
        data = orjson.loads((self.path(version) / "meta.json").read_bytes())
        return ModelRecord(**data)

    def records(self) -> list[ModelRecord]:
        """Registered versions, oldest first."""
        versions = sorted(
            (p.name for p in self.root.iterdir() if _VERSION_RE.match(p.name)),
            key=lambda v: int(v[1:]),
        )
        return [self.get(v) for v in versions if (self.root / v / "meta.json").exists()]

    def champion_version(self) -> str | None:
        pointer = self.root / "champion.json"
        if not pointer.exists():
            return None
        return str(orjson.loads(pointer.read_bytes())["version"])

    def champion(self) -> ModelRecord | None:
        version = self.champion_version()
        return None if version is None else self.get(version)

    def promote(self, version: str, reason: str) -> ModelRecord:
        """Make ``version`` the champion; the reason is kept in the promotion history."""
        record = self.get(version)
        entry = {"version": version, "promoted_at": time.time(), "reason": reason}
        _write_atomic(self.root / "champion.json", orjson.dumps(entry))
        with (self.root / "history.jsonl").open("ab") as f:
            f.write(orjson.dumps(entry) + b"\n")
        return record

    def history(self) -> list[dict[str, Any]]:
        path = self.root / "history.jsonl"
        if not path.exists():
            return []
        return [orjson.loads(line) for line in path.read_bytes().splitlines() if line]
