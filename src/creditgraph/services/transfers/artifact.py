"""Where trained transfer models live: ``<models>/transfer/tNNNN/`` (model.json, card.md,
evaluation.json, friction.png) and ``current.json`` naming the one that serves."""

from __future__ import annotations

import os
from pathlib import Path

import orjson

from creditgraph.errors import NotFound
from creditgraph.ml.transfer_model import TransferModel


def new_version(root: Path) -> tuple[str, Path]:
    """The next version name and its (not yet created) folder."""
    root.mkdir(parents=True, exist_ok=True)
    nums = [int(p.name[1:]) for p in root.iterdir() if p.name[:1] == "t" and p.name[1:].isdigit()]
    version = f"t{max(nums, default=0) + 1:04d}"
    return version, root / version


def make_current(root: Path, version: str) -> None:
    """Point ``current.json`` at ``version`` (atomically)."""
    tmp = root / "current.json.tmp"
    tmp.write_bytes(orjson.dumps({"version": version}))
    os.replace(tmp, root / "current.json")


def load_current(root: Path) -> tuple[str, TransferModel]:
    """The current transfer model; ``NotFound`` when none was trained."""
    pointer = root / "current.json"
    if not pointer.exists():
        raise NotFound(f"no transfer model under {root}: run the retraining job")
    version = str(orjson.loads(pointer.read_bytes())["version"])
    data = orjson.loads((root / version / "model.json").read_bytes())
    return version, TransferModel.from_json(data)
