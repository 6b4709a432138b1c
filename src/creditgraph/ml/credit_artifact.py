"""Credit model versions on disk: one folder per version under ``<models_dir>/credit``.

Separate from the fraud registry on purpose (a separate model, card and log). A version is
``model.json`` (weights, calibration, quantiles, metrics, and each dimension's LightGBM model
as text, or the social graph network's weights as numbers: no pickle) and ``card.md``;
``CHAMPION`` names the version served.
"""

from __future__ import annotations

import os
from dataclasses import asdict
from pathlib import Path
from typing import Any

import lightgbm as lgb
import orjson

from creditgraph.ml.credit_features import DIMENSIONS
from creditgraph.ml.credit_gnn import SocialGNNModel
from creditgraph.ml.credit_model import CreditModel, DimensionModel

MODEL_FILE = "model.json"
CARD_FILE = "card.md"
CHAMPION_FILE = "CHAMPION"


def next_version(root: Path) -> str:
    existing = sorted(p.name for p in root.glob("c[0-9][0-9][0-9][0-9]") if p.is_dir())
    n = int(existing[-1][1:]) + 1 if existing else 1
    return f"c{n:04d}"


def save(model: CreditModel, root: Path, card: str) -> Path:
    """Write ``model`` as a new version folder and make it the champion (atomic rename)."""
    folder = root / model.version
    folder.mkdir(parents=True, exist_ok=False)
    doc: dict[str, Any] = {
        "version": model.version,
        "as_of": model.as_of,
        "prior_default": model.prior_default,
        "prior_late": model.prior_late,
        "weights": model.weights,
        "identity_features": model.identity_features,
        "final_a": model.final_a,
        "final_b": model.final_b,
        "calibrated_policy": model.calibrated_policy,
        "calibrated_cap": model.calibrated_cap,
        "quantiles": model.quantiles,
        "metrics": model.metrics,
        "dims": {
            d: {
                "names": m.names,
                "a": m.a,
                "b": m.b,
                "val_auroc": m.val_auroc,
                "booster": m.booster.model_to_string() if m.booster is not None else None,
                **({"gnn": asdict(m.gnn)} if m.gnn is not None else {}),
            }
            for d, m in model.dims.items()
        },
    }
    (folder / MODEL_FILE).write_bytes(orjson.dumps(doc, option=orjson.OPT_SERIALIZE_NUMPY))
    (folder / CARD_FILE).write_text(card, encoding="utf-8")
    tmp = root / f".{CHAMPION_FILE}.tmp"
    tmp.write_text(model.version + "\n", encoding="utf-8")
    os.replace(tmp, root / CHAMPION_FILE)
    return folder


def champion_version(root: Path) -> str | None:
    path = root / CHAMPION_FILE
    if not path.exists():
        return None
    return path.read_text(encoding="utf-8").strip() or None


def load(root: Path, version: str) -> CreditModel:
    doc = orjson.loads((root / version / MODEL_FILE).read_bytes())
    dims = {
        d: DimensionModel(
            d,
            list(doc["dims"][d]["names"]),
            (
                lgb.Booster(model_str=doc["dims"][d]["booster"])
                if doc["dims"][d]["booster"] is not None
                else None
            ),
            float(doc["dims"][d]["a"]),
            float(doc["dims"][d]["b"]),
            float(
                doc["dims"][d]["val_auroc"] if doc["dims"][d]["val_auroc"] is not None else "nan"
            ),
            gnn=SocialGNNModel(**doc["dims"][d]["gnn"]) if doc["dims"][d].get("gnn") else None,
        )
        for d in DIMENSIONS
    }
    return CreditModel(
        version=doc["version"],
        as_of=float(doc["as_of"]),
        prior_default=float(doc["prior_default"]),
        prior_late=float(doc["prior_late"]),
        weights={d: float(doc["weights"][d]) for d in DIMENSIONS},
        identity_features=list(doc["identity_features"]),
        dims=dims,
        final_a=float(doc["final_a"]),
        final_b=float(doc["final_b"]),
        calibrated_policy=doc["calibrated_policy"],
        calibrated_cap=float(doc["calibrated_cap"]),
        quantiles={k: list(v) for k, v in doc["quantiles"].items()},
        metrics=dict(doc["metrics"]),
    )


def card_of(root: Path, version: str) -> str:
    return (root / version / CARD_FILE).read_text(encoding="utf-8")
