"""The main job, one function: import a network's contract files, train, score, detect rings.

``creditgraph demo``, the API tests' network and the browser tests' server all run exactly
this, so what they exercise is what an operator runs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from creditgraph.config import CreditSettings
from creditgraph.ingest.csvfile import ALL_KINDS, KINDS
from creditgraph.registry import ModelRegistry
from creditgraph.services.credit import CreditTrainReport, train_credit_model
from creditgraph.services.ingest import ImportReport, import_file
from creditgraph.services.retrain import RetrainReport, retrain
from creditgraph.services.rings import RingReport, detect_rings
from creditgraph.services.scoring import ScoreReport, score_all
from creditgraph.store.base import GraphStore
from creditgraph.training_config import TrainingConfig

Step = Literal["import", "train", "score", "rings"]
#: Told of each step as it starts and finishes: (step, a line for a person).
Progress = Callable[[Step, str], None]


@dataclass(frozen=True)
class PipelineReport:
    imports: list[ImportReport]
    trained: RetrainReport
    scored: ScoreReport
    #: None when ring detection was not asked for.
    rings: RingReport | None
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
    credit: CreditSettings | None = None,
) -> PipelineReport:
    """Import ``network``'s contract files (``accounts.csv``, ``transfers.csv``,
    ``links.csv``, ``labels.csv``), retrain with ``job`` (``force``: promote whatever the
    gate says), score every account, then (``detect``) find rings with the new scores."""

    def tell(step: Step, line: str) -> None:
        if progress is not None:
            progress(step, line)

    imports = []
    optional = [k for k in ALL_KINDS if k not in KINDS]
    for kind in (*KINDS, *optional):
        path = network / f"{kind}.csv"
        if kind in optional and not path.exists():
            continue  # a network without credit data is still a network
        tell("import", f"importing {path} into the {store.backend} store")
        report = import_file(store, kind, path)
        tell("import", f"    {report.rows} rows, {report.changed} changed, {report.write_s:.1f}s")
        imports.append(report)
    tell("train", "training")
    trained = retrain(store, registry, job, force=force)
    tell("train", f"    {trained.outcome}")
    tell("score", "scoring every account")
    scored = score_all(store, registry)
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
    return PipelineReport(imports, trained, scored, rings, credit_report)
