"""``creditgraph transfers train`` and ``creditgraph evaluate transfers``: the transfer model."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from creditgraph.cli.common import run, settings, store_of

transfers_app = typer.Typer(
    help="The transfer model (decisions learned from outcomes).", no_args_is_help=True
)
evaluate_app = typer.Typer(help="Measure trained models on held-out data.", no_args_is_help=True)


def summary(ev: dict[str, Any]) -> dict[str, Any]:
    """The evaluation without its curves (those go to the plot)."""
    return {k: v for k, v in ev.items() if k != "curves"}


@transfers_app.command("train")
def train() -> None:
    """Train the transfer model from the stored outcomes, evaluate it on the time hold-out
    beside the hand-weighted policy, and make it current."""
    from creditgraph.services.risk.transfer_job import train_transfers

    s = settings()
    with store_of(s) as store:
        report = run(lambda: train_transfers(store, s.models_dir / "transfer", s.risk))
    typer.echo(
        json.dumps(
            {
                "version": report.version,
                "folder": str(report.folder),
                "label_source": report.source,
                "labelled_transfers": report.n_labelled,
                "seconds": round(report.seconds, 2),
                "evaluation": summary(report.evaluation),
            },
            indent=1,
        )
    )


@evaluate_app.command("transfers")
def evaluate_transfers(
    full: Annotated[bool, typer.Option(help="Include the friction curves.")] = False,
) -> None:
    """AUROC / AUPRC and per-band precision, fraud stopped, legit stopped (friction) and
    fraud amount stopped on the time hold-out, learned model beside the hand-weighted policy
    on the same transfers."""
    from creditgraph.services.risk.transfer_job import evaluate_current

    s = settings()
    with store_of(s) as store:
        ev = run(lambda: evaluate_current(store, s.models_dir / "transfer", s.risk))
    typer.echo(json.dumps(ev if full else summary(ev), indent=1))
