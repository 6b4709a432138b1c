"""A trained model version on disk: everything needed to score again, in one folder.

``weights.pt`` holds the ``state_dict`` alone (plain tensors), so loading uses
``torch.load(weights_only=True)`` and a tampered file cannot run code. Everything else is
plain JSON in ``artifact.json``: the module's shape and relations, the fitted ``Standardizer``,
both calibrators, the training config, the columns left out as sensitive, the epoch history,
test metrics and the SHA-256 of the weights (checked on load). Floats survive the JSON round
trip exactly, so a loaded model scores bit-for-bit like the one that was saved.
"""

from __future__ import annotations

import hashlib
import json
import pickle
from collections.abc import Collection
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from creditgraph.domain import Snapshot
from creditgraph.errors import ModelNotReady
from creditgraph.ml.calibrate import Calibrator
from creditgraph.ml.features import FeatureSet, Standardizer, build_features
from creditgraph.ml.model import RelationalGNN
from creditgraph.ml.train import EpochStats, TrainConfig, TrainResult

WEIGHTS = "weights.pt"
META = "artifact.json"
#: Bumped whenever the layout changes; an unknown format is refused, not guessed at.
FORMAT = 1


@dataclass(frozen=True)
class ModelArtifact:
    """A loaded model version: the trained model and how its features must be built."""

    result: TrainResult
    #: Account columns ``build_features`` must leave out, as when the model was trained.
    sensitive: list[str]

    def features(self, snapshot: Snapshot) -> FeatureSet:
        """The snapshot's features built exactly as at training time."""
        return build_features(snapshot, self.sensitive)


def save_artifact(folder: Path, result: TrainResult, sensitive: Collection[str]) -> None:
    """Write ``result`` into ``folder`` (which must exist)."""
    model = result.model
    weights = folder / WEIGHTS
    torch.save(model.state_dict(), weights)
    meta: dict[str, Any] = {
        "format": FORMAT,
        "module": {
            "in_dim": len(result.standardizer.output_names),
            "relations": model.relations,
            "hidden": result.config.hidden,
            "layers": result.config.layers,
            "dropout": result.config.dropout,
        },
        "weights_sha256": _sha256(weights),
        "sensitive": sorted(sensitive),
        "standardizer": result.standardizer.state(),
        "fraud_calibrator": result.fraud_calibrator.state(),
        "social_calibrator": result.social_calibrator.state(),
        "train_config": asdict(result.config),
        "best_epoch": result.best_epoch,
        "history": [asdict(e) for e in result.history],
        "metrics": result.metrics,
    }
    (folder / META).write_text(json.dumps(meta, indent=2), encoding="utf-8")


def load_artifact(folder: Path) -> ModelArtifact:
    """Read a saved version; ``ModelNotReady`` when it is missing, altered or unreadable."""
    try:
        meta = json.loads((folder / META).read_text(encoding="utf-8"))
        if meta.get("format") != FORMAT:
            raise ModelNotReady(f"{folder}: unsupported model format {meta.get('format')!r}")
        if _sha256(folder / WEIGHTS) != meta["weights_sha256"]:
            raise ModelNotReady(f"{folder / WEIGHTS}: weights do not match their checksum")
        state = torch.load(folder / WEIGHTS, map_location="cpu", weights_only=True)
        shape = meta["module"]
        model = RelationalGNN(
            shape["in_dim"], shape["relations"], shape["hidden"], shape["layers"], shape["dropout"]
        )
        model.load_state_dict(state)
        model.eval()
        result = TrainResult(
            model=model,
            standardizer=Standardizer.from_state(meta["standardizer"]),
            fraud_calibrator=Calibrator.from_state(meta["fraud_calibrator"]),
            social_calibrator=Calibrator.from_state(meta["social_calibrator"]),
            config=TrainConfig(**meta["train_config"]),
            best_epoch=int(meta["best_epoch"]),
            history=[EpochStats(**e) for e in meta["history"]],
            metrics=meta["metrics"],
        )
    # The failures a missing, truncated or foreign file produces, mapped once, here.
    except (OSError, ValueError, KeyError, TypeError, RuntimeError, pickle.UnpicklingError) as e:
        raise ModelNotReady(f"{folder}: unreadable model artifact: {e}") from e
    return ModelArtifact(result=result, sensitive=list(meta["sensitive"]))


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
