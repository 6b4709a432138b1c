"""The transfer model's card (``card.md``) and its plot (``friction.png``)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure

from creditgraph.ml.transfer_model import TransferModel
from creditgraph.store.base import GraphStore

_SOURCES = {
    "transfer_labels": "transfer outcomes (transfer_labels: chargebacks, victims' reports, "
    "review verdicts)",
    "account_labels": "FALLBACK: no (or too few) transfer outcomes, so the targets are the "
    "transfers touching labelled accounts (fraud when either end is labelled fraud). This "
    "learns who is involved more than which transfer is bad; import transfer_labels.",
}


def plot_friction(path: Path, evaluation: dict[str, Any]) -> None:
    """Fraud stopped (count and amount) against legit stopped, learned vs baseline."""
    fig = Figure(figsize=(9, 4))
    curves = evaluation["curves"]
    for i, (key, title) in enumerate(
        (
            ("fraud_stopped", "fraud transfers stopped"),
            ("fraud_amount_stopped", "fraud amount stopped"),
        )
    ):
        ax = fig.add_subplot(1, 2, i + 1)
        for name, label in (
            ("learned_loss", "learned (expected loss)"),
            ("learned_p", "learned (P(fraud))"),
            ("baseline", "hand-weighted baseline"),
        ):
            c = curves[name]
            ax.plot(c["legit_stopped"], c[key], label=label)
        ax.axvline(evaluation["baseline_friction"], color="grey", ls=":", lw=1)
        ax.set_xlabel("legit transfers stopped (friction)")
        ax.set_ylabel(title)
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1.01)
        ax.grid(alpha=0.3)
        if i == 0:
            ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def _pct(x: float) -> str:
    return "n/a" if x != x else f"{100 * x:.1f} %"


def overrides_by_reviewer(store: GraphStore) -> dict[str, Counter[str]]:
    """Closed reviews per reviewer: how many approved (overrode the model's suspicion) and
    rejected."""
    out: dict[str, Counter[str]] = {}
    offset = 0
    while True:
        page = store.list_reviews(None, limit=1000, offset=offset)
        for r in page.items:
            if r.status != "open" and r.reviewer:
                out.setdefault(r.reviewer, Counter())[r.status] += 1
        offset += len(page.items)
        if not page.items or offset >= page.total:
            return out


def write_card(folder: Path, model: TransferModel, ev: dict[str, Any], store: GraphStore) -> None:
    plot_friction(folder / "friction.png", ev)
    learned, base = ev["learned"], ev["baseline"]
    lines = [
        f"# Transfer model {model.meta.get('version')}",
        "",
        f"- Targets: {_SOURCES[model.meta['label_source']]}",
        f"- Account scores used as inputs: model {model.meta.get('account_scores')}",
        "- Features: causal (only transfers before each one), see services/transfers/features.py",
        f"- Split by time: train {ev['split']['train']}, calibrate {ev['split']['valid']}, "
        f"hold-out {ev['split']['holdout']} labelled transfers",
        "",
        f"## Hold-out ({ev['n']} transfers, {ev['fraud']} fraud, fraud amount "
        f"{ev['fraud_amount']:,.2f})",
        "",
        "| | learned | hand-weighted baseline |",
        "|---|---|---|",
        f"| AUROC | {learned['auroc']:.3f} | {base['auroc']:.3f} |",
        f"| AUPRC | {learned['auprc']:.3f} | {base['auprc']:.3f} |",
    ]
    for band in ("review", "block", "review_or_block"):
        lb, bb = learned["bands"][band], base["bands"][band]
        for k in ("precision", "fraud_stopped", "legit_stopped", "fraud_amount_stopped"):
            lines.append(f"| {band}: {k} | {_pct(lb[k])} | {_pct(bb[k])} |")
    eq = learned["at_baseline_friction_by_loss"]
    stop = base["bands"]["review_or_block"]
    hist = ev["learned_history_only"]
    lines += [
        "",
        f"At the baseline's friction ({_pct(ev['baseline_friction'])} of legit transfers "
        "stopped), the learned ranking by expected loss stops "
        f"{_pct(eq['fraud_stopped'])} of fraud transfers and {_pct(eq['fraud_amount_stopped'])} "
        f"of the fraud amount; the baseline stops {_pct(stop['fraud_stopped'])} "
        f"and {_pct(stop['fraud_amount_stopped'])}.",
        "",
        "![fraud stopped vs legit stopped](friction.png)",
        "",
        "Account scores and detected rings come from the latest batch, which saw the hold-out "
        "period: both columns above use them, so their absolute figures are optimistic. "
        "Trained without them (the transfer's own history only), the model reaches "
        f"AUROC {hist['auroc']:.3f} / AUPRC {hist['auprc']:.3f} and stops "
        f"{_pct(hist['at_baseline_friction_by_loss']['fraud_amount_stopped'])} of the fraud "
        "amount at the baseline's friction.",
        "",
        "## Review verdicts by reviewer",
        "",
    ]
    overrides = overrides_by_reviewer(store)
    if not overrides:
        lines.append("No closed reviews yet.")
    else:
        lines += ["| reviewer | approved (overrode) | rejected (confirmed) |", "|---|---|---|"]
        for who, c in sorted(overrides.items()):
            lines.append(f"| {who} | {c['approved']} | {c['rejected']} |")
    (folder / "card.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
