"""The main job, one function: import a network's contract files, train, score, detect rings.

``creditgraph demo``, the API tests' network and the browser tests' server all run exactly
this, so what they exercise is what an operator runs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from creditgraph.config import CreditSettings, RiskSettings
from creditgraph.errors import ModelNotReady
from creditgraph.ingest.csvfile import IMPORT_KINDS, KINDS
from creditgraph.registry import ModelRegistry
from creditgraph.services.credit import CreditTrainReport, train_credit_model
from creditgraph.services.ingest import ImportReport, import_file
from creditgraph.services.retrain import RetrainReport, retrain
from creditgraph.services.rings import RingReport, detect_rings
from creditgraph.services.risk.transfer_job import TransferTrainReport, train_transfers
from creditgraph.services.scoring import ScoreReport, score_all
from creditgraph.store.base import GraphStore
from creditgraph.training_config import TrainingConfig

Step = Literal["import", "train", "score", "rings", "transfers"]
#: Told of each step as it starts and finishes: (step, a line for a person).
Progress = Callable[[Step, str], None]


@dataclass(frozen=True)
class PipelineReport:
    imports: list[ImportReport]
    trained: RetrainReport
    scored: ScoreReport
    #: None when ring detection was not asked for.
    rings: RingReport | None
    #: The transfer model (None when not asked for or not trainable: the hand-weighted
    #: policy then decides).
    transfers: TransferTrainReport | None = None
    #: The credit model trained on the network's obligations; None without obligations.
    credit: CreditTrainReport | None = None


def run_pipeline(
    store: GraphStore,
    registry: ModelRegistry,
    network: Path,
    job: TrainingConfig,
    *,
    force: bool = True,
    detect: bool = True,
    progress: Progress | None = None,
    transfers: RiskSettings | None = None,
    credit: CreditSettings | None = None,
) -> PipelineReport:
    """Import ``network``'s contract files (``accounts.csv``, ``transfers.csv``,
    ``links.csv``, ``labels.csv``), retrain with ``job`` (``force``: promote whatever the
    gate says), score every account, then (``detect``) find rings with the new scores and
    (``transfers``: the risk settings to evaluate with) train the transfer model."""

    def tell(step: Step, line: str) -> None:
        if progress is not None:
            progress(step, line)

    imports = []
    for kind in IMPORT_KINDS:
        path = network / f"{kind}.csv"
        if kind not in KINDS and not path.exists():
            continue  # optional: transfer outcomes and credit data, most networks lack them
        tell("import", f"importing {path} into the {store.backend} store")
        report = import_file(store, kind, path)
        tell("import", f"    {report.rows} rows, {report.changed} changed, {report.write_s:.1f}s")
        imports.append(report)
    tell("train", "training")
    # One export for both steps: nothing writes to the store between them.
    snapshot = store.snapshot()
    trained = retrain(store, registry, job, force=force, snapshot=snapshot)
    tell("train", f"    {trained.outcome}")
    tell("score", "scoring every account")
    scored = score_all(store, registry, snapshot=snapshot)
    del snapshot
    tell("score", f"    {scored.written} scores written ({scored.model_version})")
    credit_report = None
    if job.credit.enabled and any(r.kind == "obligations" and r.rows for r in imports):
        tell("score", "training the credit model (a separate model: repayment outcomes)")
        credit_report = train_credit_model(store, registry.root, job, credit or CreditSettings())
        tell("score", f"    credit model {credit_report.version} as of {credit_report.as_of}")
    rings = None
    if detect:
        tell("rings", "detecting fraud rings (with the new scores)")
        rings = detect_rings(store)
        tell("rings", f"    {rings.detected} rings: {rings.by_kind}")
    learned = None
    if transfers is not None:
        tell("transfers", "training the transfer model (decisions learned from outcomes)")
        try:
            learned = train_transfers(store, registry.root / "transfer", transfers)
        except ModelNotReady as e:
            tell("transfers", f"    not trained ({e}): the hand-weighted policy decides")
        else:
            ours, base = learned.evaluation["learned"], learned.evaluation["baseline"]
            tell(
                "transfers",
                f"    {learned.version} from {learned.source}: hold-out AUPRC "
                f"{ours['auprc']:.3f} (hand-weighted baseline {base['auprc']:.3f})",
            )
    return PipelineReport(imports, trained, scored, rings, learned, credit_report)
