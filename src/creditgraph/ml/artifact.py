"""A trained model version on disk: everything needed to score again, in one folder.

A version serves two candidates (``ml.candidates.ServedModel``): the fraud champion and the
relationship-only social candidate, and holds every model they read:
- each GNN as ``gnn-<key>.pt``, the ``state_dict`` alone (plain tensors), loaded with
  ``torch.load(weights_only=True)`` so a tampered file cannot run code;
- each LightGBM booster as ``trees-<family>.txt``, LightGBM's own text format (a seed bag
  is one merged booster, ``ml.trees.merge_boosters``);
- everything else as plain JSON in ``artifact.json``: module shapes, the fitted
  ``Standardizer``, calibrators, training configs, the stacked blend, the training labels
  that label-aware trees may read, epoch histories, metrics and the SHA-256 of every
  weights file (checked on load).
Floats survive the JSON round trip exactly, so a loaded model scores bit-for-bit like the
one that was saved. Format 1 (a single relational GNN, versions trained before the
candidates existed) is still read.
"""

from __future__ import annotations

import hashlib
import json
import pickle
from collections.abc import Collection
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import lightgbm as lgb
import torch

from creditgraph.domain import Snapshot
from creditgraph.errors import ModelNotReady
from creditgraph.ml.calibrate import Calibrator
from creditgraph.ml.candidates import ARCHITECTURE, Blend, ServedModel
from creditgraph.ml.features import FeatureSet, Standardizer, build_features
from creditgraph.ml.train import EpochStats, Scores, TrainConfig, TrainResult, build_model
from creditgraph.ml.trees import TreeModel

WEIGHTS = "weights.pt"
META = "artifact.json"
#: Bumped whenever the layout changes; an unknown format is refused, not guessed at.
FORMAT = 2
READABLE = (1, 2)


@dataclass(frozen=True)
class ModelArtifact:
    """A loaded model version: the served model and how its features must be built."""

    served: ServedModel
    #: Account columns ``build_features`` must leave out, as when the model was trained.
    sensitive: list[str]

    def features(self, snapshot: Snapshot) -> FeatureSet:
        """The snapshot's features built exactly as at training time."""
        return build_features(snapshot, self.sensitive)

    def score(self, features: FeatureSet) -> Scores:
        return self.served.score(features)

    @property
    def kind(self) -> str:
        return self.served.fraud

    @property
    def is_gnn(self) -> bool:
        """Both scores come from one GNN (fraud head and its own social head)."""
        s = self.served
        return s.fraud in ARCHITECTURE and s.social == f"{s.fraud}:social"

    @property
    def result(self) -> TrainResult:
        """The GNN serving both scores; ``ModelNotReady`` when the champion is another
        family (GNN-only paths such as per-account gradient explanations)."""
        if not self.is_gnn:
            raise ModelNotReady(
                f"the champion serves {self.served.fraud!r} (social: {self.served.social!r}),"
                " not a single GNN"
            )
        return self.served.gnns[self.served.fraud]


def save_artifact(
    folder: Path,
    served: ServedModel,
    sensitive: Collection[str],
    *,
    extra: dict[str, Any] | None = None,
) -> None:
    """Write ``served`` into ``folder`` (which must exist); ``extra`` goes into the JSON."""
    gnns: dict[str, Any] = {}
    for key, result in served.gnns.items():
        path = folder / f"gnn-{key.replace(':', '-')}.pt"
        torch.save(result.model.state_dict(), path)
        gnns[key] = {
            "file": path.name,
            "sha256": _sha256(path),
            "in_dim": len(result.standardizer.output_names),
            "relations": result.model.relations,
            "standardizer": result.standardizer.state(),
            "fraud_calibrator": result.fraud_calibrator.state(),
            "social_calibrator": result.social_calibrator.state(),
            "train_config": asdict(result.config),
            "best_epoch": result.best_epoch,
            "history": [asdict(e) for e in result.history],
            "metrics": result.metrics,
        }
    trees: dict[str, Any] = {}
    for family, model in served.trees.items():
        path = folder / f"trees-{family}.txt"
        model.booster.save_model(str(path))
        trees[family] = {
            "file": path.name,
            "sha256": _sha256(path),
            "names": model.names,
            "best_round": model.best_round,
            "member_rounds": model.member_rounds,
            "calibrator": model.calibrator.state(),
            "known": model.known,
            "folds": model.folds,
        }
    meta: dict[str, Any] = {
        "format": FORMAT,
        "fraud": served.fraud,
        "social": served.social,
        "sensitive": sorted(sensitive),
        "standardizer": served.standardizer.state(),
        "fraud_calibrator": served.fraud_calibrator.state(),
        "social_calibrator": served.social_calibrator.state(),
        "blend": None if served.blend is None else served.blend.state(),
        "stack_folds": served.stack_folds,
        "gnns": gnns,
        "trees": trees,
        **(extra or {}),
    }
    (folder / META).write_text(json.dumps(meta, indent=2), encoding="utf-8")


def load_artifact(folder: Path) -> ModelArtifact:
    """Read a saved version; ``ModelNotReady`` when it is missing, altered or unreadable."""
    try:
        meta = json.loads((folder / META).read_text(encoding="utf-8"))
        if meta.get("format") not in READABLE:
            raise ModelNotReady(f"{folder}: unsupported model format {meta.get('format')!r}")
        served = _load_v1(folder, meta) if meta["format"] == 1 else _load_v2(folder, meta)
    # The failures a missing, truncated or foreign file produces, mapped once, here.
    except (
        OSError,
        ValueError,
        KeyError,
        TypeError,
        RuntimeError,
        pickle.UnpicklingError,
        lgb.basic.LightGBMError,
    ) as e:
        raise ModelNotReady(f"{folder}: unreadable model artifact: {e}") from e
    return ModelArtifact(served=served, sensitive=list(meta["sensitive"]))


def _load_gnn(folder: Path, file: str, sha: str, meta: dict[str, Any]) -> TrainResult:
    if _sha256(folder / file) != sha:
        raise ModelNotReady(f"{folder / file}: weights do not match their checksum")
    state = torch.load(folder / file, map_location="cpu", weights_only=True)
    config = TrainConfig(**meta["train_config"])
    model = build_model(config, meta["in_dim"], meta["relations"])
    model.load_state_dict(state)
    model.eval()
    return TrainResult(
        model=model,
        standardizer=Standardizer.from_state(meta["standardizer"]),
        fraud_calibrator=Calibrator.from_state(meta["fraud_calibrator"]),
        social_calibrator=Calibrator.from_state(meta["social_calibrator"]),
        config=config,
        best_epoch=int(meta["best_epoch"]),
        history=[EpochStats(**e) for e in meta["history"]],
        metrics=meta["metrics"],
    )


def _load_v1(folder: Path, meta: dict[str, Any]) -> ServedModel:
    shape = meta["module"]
    result = _load_gnn(
        folder,
        WEIGHTS,
        meta["weights_sha256"],
        {**meta, "in_dim": shape["in_dim"], "relations": shape["relations"]},
    )
    return ServedModel(
        fraud="gnn",
        social="gnn:social",
        standardizer=result.standardizer,
        gnns={"gnn": result},
        trees={},
        fraud_calibrator=result.fraud_calibrator,
        social_calibrator=result.social_calibrator,
    )


def _load_v2(folder: Path, meta: dict[str, Any]) -> ServedModel:
    gnns = {k: _load_gnn(folder, g["file"], g["sha256"], g) for k, g in meta["gnns"].items()}
    standardizer = Standardizer.from_state(meta["standardizer"])
    trees: dict[str, TreeModel] = {}
    for family, t in meta["trees"].items():
        path = folder / t["file"]
        if _sha256(path) != t["sha256"]:
            raise ModelNotReady(f"{path}: booster does not match its checksum")
        trees[family] = TreeModel(
            family=family,
            booster=lgb.Booster(model_file=str(path)),
            standardizer=standardizer,
            calibrator=Calibrator.from_state(t["calibrator"]),
            names=list(t["names"]),
            best_round=int(t["best_round"]),
            member_rounds=[int(r) for r in t.get("member_rounds", [])],
            known={k: int(v) for k, v in t["known"].items()},
            folds=int(t["folds"]),
        )
    return ServedModel(
        fraud=meta["fraud"],
        social=meta["social"],
        standardizer=standardizer,
        gnns=gnns,
        trees=trees,
        fraud_calibrator=Calibrator.from_state(meta["fraud_calibrator"]),
        social_calibrator=Calibrator.from_state(meta["social_calibrator"]),
        blend=None if meta["blend"] is None else Blend.from_state(meta["blend"]),
        stack_folds=int(meta["stack_folds"]),
    )


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
