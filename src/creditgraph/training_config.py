"""``TrainingConfig``: one retraining job, read from a TOML file in ``training/``.

Every section refuses unknown keys, so a typo (``hiden = 64``) fails the job with the file
and the key named instead of silently training with the default. The defaults are the job
``training/default.toml`` describes; a test keeps the two equal.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from creditgraph.errors import InvalidInput

#: Metrics the gate may compare; all are "higher is better" ranking metrics on test labels.
GateMetric = Literal["auprc", "auroc", "recall_at_k"]
#: Model families a job can train (``ml.candidates``).
Family = Literal["gnn", "wavelet", "trees", "labels", "stacked"]
FAMILIES: tuple[Family, ...] = ("gnn", "wavelet", "trees", "labels", "stacked")


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SplitConfig(_Section):
    """Shares of the labelled accounts held out for validation and test (stratified)."""

    val: float = Field(default=0.2, gt=0.0, lt=1.0)
    test: float = Field(default=0.2, gt=0.0, lt=1.0)

    @model_validator(mode="after")
    def _leaves_training_labels(self) -> SplitConfig:
        if self.val + self.test >= 1.0:
            raise ValueError("val + test must be below 1 so that some labels remain for training")
        return self


class ModelConfig(_Section):
    """Shape of the relational GNN."""

    hidden: int = Field(default=32, ge=1, le=1024)
    layers: int = Field(default=2, ge=1, le=6)
    dropout: float = Field(default=0.2, ge=0.0, lt=1.0)
    #: Weight of the relationship-only (social credit) loss next to the fraud loss.
    social_weight: float = Field(default=0.5, ge=0.0)


class OptimConfig(_Section):
    """Optimiser, early stopping and calibration of the GNN."""

    lr: float = Field(default=0.005, gt=0.0)
    weight_decay: float = Field(default=1e-4, ge=0.0)
    max_epochs: int = Field(default=300, ge=1)
    patience: int = Field(default=30, ge=1)
    #: Validate (one extra forward pass) every this many epochs; large graphs save time.
    validate_every: int = Field(default=1, ge=1)
    calibration: Literal["platt", "isotonic"] = "platt"


class BaselineSection(_Section):
    """LightGBM settings of every tree family (``trees``, ``labels``, ``stacked``,
    ``social_trees``). ``enabled = false`` drops the tree families from the candidates."""

    enabled: bool = True
    learning_rate: float = Field(default=0.05, gt=0.0)
    num_leaves: int = Field(default=15, ge=2)
    max_rounds: int = Field(default=1000, ge=1)
    early_stopping_rounds: int = Field(default=50, ge=1)
    #: Boosters per tree family that differ only in seed (seed + k), each early-stopped on
    #: validation, merged into one booster serving their mean raw margin (variance
    #: reduction; ``ml.trees.merge_boosters``). 5 is the common a-priori bag size, not tuned
    #: on any reported graph; 1 = one booster as before. Tree training costs ~bag times.
    bag: int = Field(default=5, ge=1, le=50)


class CandidatesSection(_Section):
    """Which model families the job trains on the same split; the champion is the best on
    validation AUPRC (ties: AUROC, then training time). See ``ml.candidates``."""

    families: list[Family] = Field(default_factory=lambda: list(FAMILIES), min_length=1)
    #: Also train trees on neighbour aggregates alone as a social-credit candidate.
    social_trees: bool = True
    #: GNN trainings of ``stacked``'s out-of-fold logits.
    stack_folds: int = Field(default=3, ge=2, le=10)
    #: Folds of the out-of-fold label-aware neighbour columns.
    label_folds: int = Field(default=5, ge=2, le=20)
    #: The heterophily-aware GNN: hidden width and wavelet order (= hops).
    wavelet_hidden: int = Field(default=32, ge=1, le=1024)
    wavelet_order: int = Field(default=2, ge=1, le=4)


class EvaluationConfig(_Section):
    """How test metrics are computed."""

    #: recall@k uses k = this share of the test accounts.
    recall_k_fraction: float = Field(default=0.05, gt=0.0, le=1.0)


class GateConfig(_Section):
    """Champion/challenger gate: refuse a challenger worse than the champion on ``metric``
    by more than ``tolerance``, both measured on the same held-out labels."""

    metric: GateMetric = "auprc"
    tolerance: float = Field(default=0.01, ge=0.0, le=1.0)


CreditDimension = Literal["credit_history", "behaviour", "capacity", "identity", "social"]
#: Published weights of the dimensions' log-odds in the credit composite (docs/credit.md),
#: chosen on a development world (synthetic seed 101, 5,000 accounts: ``bench/credit_eval.py
#: --choose``), never on a world that is reported. Zero: shown, not counted.
CREDIT_WEIGHTS: dict[CreditDimension, float] = {
    "credit_history": 0.9,
    "behaviour": 0.0,
    "capacity": 0.9,
    "identity": 0.0,
    "social": 1.2,
}


class CreditSection(_Section):
    """The credit profile's model (``ml.credit_model``), trained when the store holds
    obligations. Sensitive columns may not be named as identity features."""

    enabled: bool = True
    weights: dict[CreditDimension, float] = Field(default_factory=lambda: dict(CREDIT_WEIGHTS))
    #: Account columns of the identity dimension (verification features), beside account age.
    identity_features: list[str] = Field(default_factory=lambda: ["kyc_level"])
    #: Feature cuts, days before the data's end: labels come from obligations opened after.
    cuts_days: list[int] = Field(default_factory=lambda: [120, 210, 300, 390], min_length=1)
    horizon_days: int = Field(default=60, ge=7, le=365)
    #: The social dimension's learner: "gnn" (the relation-aware graph network,
    #: ml/credit_gnn.py; chosen on the development world at 10k and 20k accounts, see
    #: docs/credit.md) or "trees" (one-hop neighbour aggregates; large.toml, since the
    #: network trains full-batch).
    social_model: Literal["trees", "gnn"] = "gnn"

    @model_validator(mode="after")
    def _every_weight(self) -> CreditSection:
        missing = sorted(set(CREDIT_WEIGHTS) - set(self.weights))
        if missing:
            raise ValueError(f"weights missing for {', '.join(missing)}")
        if any(w < 0 for w in self.weights.values()):
            raise ValueError("weights must not be negative")
        return self


class TrainingConfig(_Section):
    """A retraining job. ``seed`` fixes the split, the GNN's initialisation and the trees."""

    description: str = ""
    seed: int = Field(default=0, ge=0)
    #: Account columns the models never see (protected attributes); they stay in the store
    #: for fairness audits only.
    sensitive: list[str] = Field(default_factory=lambda: ["age_years"])
    split: SplitConfig = SplitConfig()
    model: ModelConfig = ModelConfig()
    optim: OptimConfig = OptimConfig()
    baseline: BaselineSection = BaselineSection()
    candidates: CandidatesSection = CandidatesSection()
    evaluation: EvaluationConfig = EvaluationConfig()
    gate: GateConfig = GateConfig()
    credit: CreditSection = CreditSection()

    @model_validator(mode="after")
    def _no_sensitive_credit_inputs(self) -> TrainingConfig:
        bad = sorted(set(self.credit.identity_features) & set(self.sensitive))
        if bad:
            raise ValueError(f"credit.identity_features names sensitive column(s) {bad}")
        return self


def load_training_config(path: Path) -> TrainingConfig:
    """Read and validate a job file; ``InvalidInput`` names the file and each bad key."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InvalidInput(f"{path}: training config not found") from None
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
        raise InvalidInput(f"{path}: not a readable TOML file: {e}") from None
    try:
        return TrainingConfig.model_validate(data)
    except ValidationError as e:
        raise InvalidInput(f"{path}: {_describe(e)}") from None


def _describe(error: ValidationError) -> str:
    problems = []
    for err in error.errors():
        key = ".".join(str(part) for part in err["loc"]) or "(top level)"
        if err["type"] == "extra_forbidden":
            problems.append(f"unknown key {key!r}")
        else:
            problems.append(f"{key!r}: {err['msg']}")
    return "; ".join(problems)
