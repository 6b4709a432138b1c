"""``creditgraph credit train|show``: the credit profile, a separate model from fraud."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Annotated

import typer

from creditgraph.cli.common import err, run, settings, store_of
from creditgraph.resources import training_job
from creditgraph.training_config import load_training_config

credit_app = typer.Typer(help="Credit profiles: five dimensions and a 350-950 composite.")


@credit_app.command("train")
def credit_train(
    config: Annotated[
        Path | None, typer.Option(help="Job file (its [credit] section); default: default.toml.")
    ] = None,
) -> None:
    """Train a credit model version on the store's obligations and serve it."""
    from creditgraph.services.credit import train_credit_model

    s = settings()
    job = run(lambda: load_training_config(config or training_job("default.toml")))
    with store_of(s) as store:
        report = run(lambda: train_credit_model(store, s.models_dir, job, s.credit))
    err.print(f"credit model {report.version} as of {report.as_of}: {report.path}")
    typer.echo(json.dumps(asdict(report), default=str))


@credit_app.command("show")
def credit_show(account: Annotated[str, typer.Argument(help="An account id.")]) -> None:
    """An account's credit profile (as GET /v1/accounts/{id}/credit returns it)."""
    from creditgraph.services.credit import credit_profile, load_credit_model

    s = settings()
    model = run(lambda: load_credit_model(s.models_dir))
    with store_of(s) as store:
        out = run(lambda: credit_profile(store, model, account, s.credit))
    typer.echo(json.dumps(out, indent=1))
